//! The bundle's JSON Schema (`docs/bundle.schema.json`, embedded: one source of truth)
//! and validation against it, with every error translated into a JSON pointer to the
//! offending value and a message saying what is wrong and what is expected.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, ValidationError, Validator};
use serde_json::Value;

use super::Problem;

/// The schema text, exactly as published in `docs/bundle.schema.json`.
pub const SCHEMA: &str = include_str!("../../../docs/bundle.schema.json");

/// The parsed schema.
pub fn schema() -> &'static Value {
    static SCHEMA_VALUE: OnceLock<Value> = OnceLock::new();
    SCHEMA_VALUE.get_or_init(|| {
        serde_json::from_str(SCHEMA).expect("docs/bundle.schema.json is valid JSON")
    })
}

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft202012::new(schema())
            .expect("docs/bundle.schema.json is a valid draft 2020-12 schema")
    })
}

/// Every way `bundle` differs from the schema (empty when it is valid).
pub fn validate(bundle: &Value) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for e in validator().iter_errors(bundle) {
        for p in translate(&e) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Escapes one JSON-pointer reference token.
pub(crate) fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The schema of the value a failed keyword belongs to: the keyword's schema path
/// without its last segment (`/properties/pages/items/pattern` -> `.../items`).
fn owner_schema(e: &ValidationError<'_>) -> Option<&'static Value> {
    let path = e.schema_path().as_str();
    let parent = &path[..path.rfind('/')?];
    schema().pointer(parent)
}

fn translate(e: &ValidationError<'_>) -> Vec<Problem> {
    let at = e.instance_path().as_str().to_string();
    let owner = owner_schema(e);
    let hint = owner
        .and_then(|s| s.get("description"))
        .and_then(Value::as_str)
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    let instance = e.instance();
    match e.kind() {
        ValidationErrorKind::Type { kind } => vec![Problem::new(
            at,
            format!(
                "expected {}, found {}{hint}",
                expected_types(kind),
                describe(instance)
            ),
        )],
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let prop = owner
                .and_then(|s| s.get("properties"))
                .and_then(|p| p.get(name));
            let types = prop.map(types_of).unwrap_or_default();
            let advice = if types.iter().any(|t| t == "null") {
                "; use null when it does not apply"
            } else if types.iter().any(|t| t == "array") {
                "; use [] when there is nothing to list"
            } else {
                ""
            };
            let what = prop
                .and_then(|p| p.get("description"))
                .and_then(Value::as_str)
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            vec![Problem::new(
                format!("{at}/{}", escape_token(name)),
                format!("missing: `{name}` is required{advice}{what}"),
            )]
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed: Vec<&str> = owner
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            unexpected
                .iter()
                .map(|name| {
                    Problem::new(
                        format!("{at}/{}", escape_token(name)),
                        format!(
                            "unknown property `{name}`; the properties allowed here are: {}",
                            allowed.join(", ")
                        ),
                    )
                })
                .collect()
        }
        ValidationErrorKind::Enum { options } => {
            let choices: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(compact).collect())
                .unwrap_or_default();
            vec![Problem::new(
                at,
                format!(
                    "{} is not allowed; expected one of: {}",
                    compact(instance),
                    choices.join(", ")
                ),
            )]
        }
        ValidationErrorKind::Pattern { .. } => vec![Problem::new(
            at,
            format!("{} is not in the expected form{hint}", compact(instance)),
        )],
        ValidationErrorKind::Minimum { limit } => vec![Problem::new(
            at,
            format!(
                "{} is less than the minimum {limit}{hint}",
                compact(instance)
            ),
        )],
        ValidationErrorKind::Maximum { limit } => vec![Problem::new(
            at,
            format!(
                "{} is more than the maximum {limit}{hint}",
                compact(instance)
            ),
        )],
        _ => vec![Problem::new(at, format!("{e}{hint}"))],
    }
}

fn types_of(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

fn type_name(t: JsonType) -> &'static str {
    match t {
        JsonType::Null => "null",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::String => "a string",
        JsonType::Array => "an array",
        JsonType::Object => "an object",
    }
}

fn expected_types(kind: &TypeKind) -> String {
    let names: Vec<&str> = match kind {
        TypeKind::Single(t) => vec![type_name(*t)],
        TypeKind::Multiple(set) => set.iter().map(type_name).collect(),
    };
    names.join(" or ")
}

/// "a string (`abc`)", "an object", ...: what was found instead.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(_) => format!("a string ({})", compact(v)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A value as short JSON, for messages.
fn compact(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        let head: String = text.chars().take(57).collect();
        format!("{head}...")
    } else {
        text
    }
}
