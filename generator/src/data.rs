//! Structured data: every JSON, YAML, TOML and CSV file under `data/`, loaded into named
//! collections of records with located parse errors.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::error::{Diagnostic, line_col};

/// One record and the file it came from.
#[derive(Debug, Clone)]
pub struct Record {
    /// The record's fields (with `slug` filled in).
    pub fields: Map<String, Value>,
    /// Source file, relative to the site.
    pub file: PathBuf,
}

/// Collections by name, in name order.
pub type Collections = IndexMap<String, Vec<Record>>;

const EXTENSIONS: [&str; 5] = ["json", "yaml", "yml", "toml", "csv"];

/// Loads `SITE/data/`. A missing folder is an empty set of collections.
pub fn load(site_dir: &Path) -> Result<Collections, Vec<Diagnostic>> {
    let data_dir = site_dir.join("data");
    if !data_dir.is_dir() {
        return Ok(Collections::new());
    }
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in walkdir::WalkDir::new(&data_dir).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            vec![Diagnostic::file(
                &data_dir,
                format!("cannot walk data folder: {e}"),
            )]
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if !EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) {
            continue;
        }
        let rel = path.strip_prefix(&data_dir).unwrap_or(path);
        let Some(first) = rel.components().next() else {
            continue;
        };
        let first = Path::new(first.as_os_str());
        let name = if rel.components().count() == 1 {
            first.file_stem()
        } else {
            first.file_name()
        };
        let Some(name) = name.and_then(|n| n.to_str()) else {
            continue;
        };
        files.push((name.to_string(), path.to_path_buf()));
    }
    let parsed: Vec<Result<(String, Vec<Record>), Diagnostic>> = files
        .par_iter()
        .map(|(name, path)| {
            let rel = path.strip_prefix(site_dir).unwrap_or(path).to_path_buf();
            let records = parse_file(path, &rel)?;
            Ok((name.clone(), records))
        })
        .collect();
    let mut out = Collections::new();
    let mut errors = Vec::new();
    for p in parsed {
        match p {
            Ok((name, records)) => out.entry(name).or_default().extend(records),
            Err(d) => errors.push(d),
        }
    }
    if errors.is_empty() {
        out.sort_keys();
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Parses one data file into its records.
fn parse_file(path: &Path, rel: &Path) -> Result<Vec<Record>, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| Diagnostic::io(rel, &e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, col) = line_col(
            &String::from_utf8_lossy(e.as_bytes()),
            e.utf8_error().valid_up_to(),
        );
        Diagnostic::at(rel, line, col, "not valid UTF-8").help("save the file as UTF-8")
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let value: Value = match ext.as_str() {
        "json" => serde_json::from_str(&text)
            .map_err(|e| Diagnostic::at(rel, e.line(), e.column(), format!("invalid JSON: {e}")))?,
        "yaml" | "yml" => serde_saphyr::from_str(&text).map_err(|e| {
            let (line, col) = e
                .location()
                .map_or((1, 1), |l| (l.line() as usize, l.column() as usize));
            let msg = e.to_string();
            Diagnostic::at(
                rel,
                line,
                col.max(1),
                format!("invalid YAML: {}", msg.lines().next().unwrap_or("")),
            )
        })?,
        "toml" => {
            let mut v: Value = toml::from_str(&text).map_err(|e| {
                let (line, col) = e.span().map_or((1, 1), |s| line_col(&text, s.start));
                Diagnostic::at(
                    rel,
                    line,
                    col,
                    format!("invalid TOML: {}", e.message().trim()),
                )
            })?;
            untoml(&mut v);
            v
        }
        _ => parse_csv(&text, rel)?,
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("record")
        .to_string();
    let items = match value {
        Value::Array(items) => items,
        Value::Object(map) if map.len() == 1 && map.values().all(Value::is_array) => map
            .into_iter()
            .flat_map(|(_, v)| match v {
                Value::Array(items) => items,
                _ => Vec::new(),
            })
            .collect(),
        other => vec![other],
    };
    let single = items.len() == 1;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(mut fields) = item else {
                return Err(Diagnostic::file(
                    rel,
                    format!("record {} is not an object (a map of fields)", i + 1),
                )
                .help("each record must be an object such as {\"name\": \"...\"}"));
            };
            if !matches!(fields.get("slug"), Some(Value::String(_))) {
                let base = ["name", "title"]
                    .iter()
                    .find_map(|k| fields.get(*k).and_then(Value::as_str))
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        if single {
                            stem.clone()
                        } else {
                            format!("{stem}-{}", i + 1)
                        }
                    });
                fields.insert("slug".into(), Value::String(slug::slugify(base)));
            } else if let Some(Value::String(s)) = fields.get("slug") {
                let normalized = slug::slugify(s);
                fields.insert("slug".into(), Value::String(normalized));
            }
            Ok(Record {
                fields,
                file: rel.to_path_buf(),
            })
        })
        .collect()
}

fn parse_csv(text: &str, rel: &Path) -> Result<Value, Diagnostic> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Diagnostic::at(rel, 1, 1, format!("invalid CSV header: {e}")))?
        .clone();
    let mut rows = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(1, |p| p.line() as usize);
            Diagnostic::at(rel, line, 1, format!("invalid CSV row: {e}"))
                .help("every row needs as many fields as the header")
        })?;
        let mut map = Map::new();
        for (h, v) in headers.iter().zip(row.iter()) {
            map.insert(h.to_string(), Value::String(v.to_string()));
        }
        rows.push(Value::Object(map));
    }
    Ok(Value::Array(rows))
}

/// Turns TOML datetimes (which serde sees as a private map) into plain strings.
pub(crate) fn untoml(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.len() == 1
                && let Some(Value::String(s)) = map.get("$__toml_private_datetime")
            {
                *v = Value::String(s.clone());
                return;
            }
            map.values_mut().for_each(untoml);
        }
        Value::Array(items) => items.iter_mut().for_each(untoml),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    #[test]
    fn loads_every_format() {
        let dir = tempfile::tempdir().expect("tmp");
        write(
            dir.path(),
            "data/products/tea.json",
            r#"{"name": "Green Tea", "price": "3.50"}"#,
        );
        write(
            dir.path(),
            "data/products/mug.yaml",
            "name: Big Mug\nslug: The Mug\n",
        );
        write(
            dir.path(),
            "data/faqs.yaml",
            "- question: Q1\n  answer: A1\n- question: Q2\n  answer: A2\n",
        );
        write(
            dir.path(),
            "data/places.csv",
            "name,city\nA Place,Oslo\nB,Rome\n",
        );
        write(
            dir.path(),
            "data/business.toml",
            "name = \"Bakery\"\nopened = 2020-01-02\n",
        );
        let c = load(dir.path()).expect("valid");
        assert_eq!(
            c.keys().collect::<Vec<_>>(),
            vec!["business", "faqs", "places", "products"]
        );
        assert_eq!(c["products"].len(), 2);
        assert_eq!(c["products"][0].fields["slug"], "the-mug");
        assert_eq!(c["products"][1].fields["slug"], "green-tea");
        assert_eq!(c["faqs"].len(), 2);
        assert_eq!(c["places"][1].fields["city"], "Rome");
        assert_eq!(c["business"][0].fields["opened"], "2020-01-02");
    }

    #[test]
    fn errors_name_file_and_line() {
        let dir = tempfile::tempdir().expect("tmp");
        write(
            dir.path(),
            "data/a.json",
            "{\n  \"name\": \"x\",\n  oops\n}",
        );
        write(dir.path(), "data/b.csv", "a,b\n1,2\n3\n");
        let errs = load(dir.path()).expect_err("invalid");
        assert_eq!(errs.len(), 2);
        let a = errs
            .iter()
            .find(|d| d.file.ends_with("a.json"))
            .expect("a.json error");
        assert_eq!(a.line, Some(3));
        let b = errs
            .iter()
            .find(|d| d.file.ends_with("b.csv"))
            .expect("b.csv error");
        assert_eq!(b.line, Some(3));
    }
}
