//! Themes and templates: loads a theme (the embedded default or a folder), lays the
//! site's own `templates/` over it, parses everything once into Tera, registers qpage's
//! filters and functions, and turns Tera errors into located diagnostics.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use include_dir::{Dir, include_dir};
use tera::{Kwargs, State, Tera, Value};

use crate::content::ShortcodeRenderer;
use crate::error::Diagnostic;
use crate::shortcode::Call;

static DEFAULT_THEME: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../themes/default");

/// Name of the theme compiled into qpage.
pub const DEFAULT_THEME_NAME: &str = "default";

/// A file of a theme or site: where it came from and its bytes.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to its root (`page.html`, `style.css`).
    pub rel: String,
    /// Path shown in errors.
    pub origin: PathBuf,
    /// Contents.
    pub bytes: Arc<[u8]>,
}

/// A theme's templates and static files.
#[derive(Debug, Clone)]
pub struct Theme {
    /// Templates by name.
    pub templates: Vec<SourceFile>,
    /// Files copied to the output root.
    pub statics: Vec<SourceFile>,
}

impl Theme {
    /// The theme compiled into the binary.
    pub fn embedded() -> Theme {
        let mut templates = Vec::new();
        let mut statics = Vec::new();
        collect_embedded(&DEFAULT_THEME, &mut templates, &mut statics);
        templates.sort_by(|a, b| a.rel.cmp(&b.rel));
        statics.sort_by(|a, b| a.rel.cmp(&b.rel));
        Theme { templates, statics }
    }

    /// A theme in a folder with `templates/` and `static/`.
    pub fn from_dir(dir: &Path, shown_as: &Path) -> Result<Theme, Diagnostic> {
        if !dir.is_dir() {
            return Err(Diagnostic::file(shown_as, "theme folder not found").help(
                "set theme = \"default\" in site.toml, or put the theme in SITE/themes/NAME",
            ));
        }
        Ok(Theme {
            templates: read_tree(&dir.join("templates"), &shown_as.join("templates"))?,
            statics: read_tree(&dir.join("static"), &shown_as.join("static"))?,
        })
    }
}

fn collect_embedded(
    dir: &Dir<'static>,
    templates: &mut Vec<SourceFile>,
    statics: &mut Vec<SourceFile>,
) {
    for file in dir.files() {
        let path = file.path();
        let origin = Path::new("themes/default").join(path);
        let bytes: Arc<[u8]> = Arc::from(file.contents());
        if let Ok(rest) = path.strip_prefix("templates") {
            templates.push(SourceFile {
                rel: unix(rest),
                origin,
                bytes,
            });
        } else if let Ok(rest) = path.strip_prefix("static") {
            statics.push(SourceFile {
                rel: unix(rest),
                origin,
                bytes,
            });
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, templates, statics);
    }
}

fn unix(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads every file under `root` (missing root: none).
pub fn read_tree(root: &Path, shown_as: &Path) -> Result<Vec<SourceFile>, Diagnostic> {
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|e| Diagnostic::file(shown_as, format!("cannot walk: {e}")))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        if rel
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let origin = shown_as.join(rel);
        let bytes = std::fs::read(entry.path()).map_err(|e| Diagnostic::io(&origin, &e))?;
        out.push(SourceFile {
            rel: unix(rel),
            origin,
            bytes: Arc::from(bytes),
        });
    }
    Ok(out)
}

/// Prefix of the global-context keys holding what `get_page` returns, one key per page
/// (`__qpage_page:/blog/post/`), so one page's value can be replaced on its own.
pub const PAGES_KEY: &str = "__qpage_page:";
/// The same for `get_section`.
pub const SECTIONS_KEY: &str = "__qpage_section:";

/// Parsed templates for one site, with where each came from.
#[derive(Clone)]
pub struct Templates {
    /// The Tera instance.
    pub tera: Tera,
    origins: Arc<HashMap<String, PathBuf>>,
    sources: Arc<HashMap<String, String>>,
}

impl Templates {
    /// Parses the theme's templates with the site's overrides on top.
    pub fn new(theme: &Theme, overrides: &[SourceFile]) -> Result<Templates, Vec<Diagnostic>> {
        let mut chosen: HashMap<&str, &SourceFile> = HashMap::new();
        for f in theme.templates.iter().chain(overrides) {
            chosen.insert(f.rel.as_str(), f);
        }
        let mut names: Vec<&str> = chosen.keys().copied().collect();
        names.sort_unstable();
        let mut origins = HashMap::new();
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        for name in names {
            let f = chosen[name];
            origins.insert(name.to_string(), f.origin.clone());
            match std::str::from_utf8(&f.bytes) {
                Ok(s) => sources.push((name, s)),
                Err(_) => errors.push(Diagnostic::file(&f.origin, "template is not valid UTF-8")),
            }
        }
        let origins = Arc::new(origins);
        let mut tera = Tera::new();
        register(&mut tera);
        if errors.is_empty()
            && let Err(e) = tera.add_raw_templates(sources.iter().copied())
        {
            // Find every syntax error, not only the first.
            for (name, src) in &sources {
                let mut one = Tera::new();
                if let Err(e) = one.add_raw_template(name, src)
                    && matches!(e.kind(), tera::ErrorKind::SyntaxError(_))
                {
                    errors.push(diagnose(&e, &origins, None));
                }
            }
            if errors.is_empty() {
                errors.extend(diagnose_all(&e, &origins));
            }
        }
        if errors.is_empty() {
            let sources = Arc::new(
                sources
                    .iter()
                    .map(|(n, s)| (n.to_string(), s.to_string()))
                    .collect(),
            );
            Ok(Templates {
                tera,
                origins,
                sources,
            })
        } else {
            Err(errors)
        }
    }

    /// For every template, the templates it extends, includes or imports, directly
    /// or not (itself included): what a change to a template file reaches.
    pub fn closure(&self) -> HashMap<String, std::collections::BTreeSet<String>> {
        let direct: HashMap<&str, Vec<String>> = self
            .sources
            .iter()
            .map(|(name, src)| (name.as_str(), referenced_templates(src)))
            .collect();
        let mut out = HashMap::new();
        for name in direct.keys() {
            let mut seen = std::collections::BTreeSet::new();
            let mut stack = vec![name.to_string()];
            while let Some(n) = stack.pop() {
                if seen.insert(n.clone())
                    && let Some(next) = direct.get(n.as_str())
                {
                    stack.extend(next.iter().cloned());
                }
            }
            out.insert(name.to_string(), seen);
        }
        out
    }

    /// The source of a template.
    pub fn source(&self, name: &str) -> Option<&str> {
        self.sources.get(name).map(String::as_str)
    }

    /// True when a template of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.tera.contains_template(name)
    }

    /// Renders a template; errors name the template file and line, and the content
    /// file being rendered.
    pub fn render(
        &self,
        name: &str,
        ctx: &tera::Context,
        for_file: &Path,
    ) -> Result<String, Diagnostic> {
        self.tera
            .render(name, ctx)
            .map_err(|e| diagnose(&e, &self.origins, Some(for_file)))
    }
}

/// The template names a template's source refers to with `extends`, `include` or
/// `import` (string literals only).
fn referenced_templates(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tag in src.split("{%").skip(1) {
        let tag = tag.trim_start_matches(['-', ' ', '\t', '\n', '\r']);
        let Some(rest) = ["extends", "include", "import"]
            .iter()
            .find_map(|k| tag.strip_prefix(k))
        else {
            continue;
        };
        let body = &rest[..rest.find("%}").unwrap_or(rest.len())];
        for quote in ['"', '\''] {
            let mut parts = body.split(quote);
            parts.next();
            while let Some(name) = parts.next() {
                out.push(name.to_string());
                parts.next();
            }
        }
    }
    out
}

/// The error for a page whose template does not exist.
pub fn missing_template(file: &Path, name: &str) -> Diagnostic {
    Diagnostic::file(file, format!("template `{name}` not found"))
        .help("use a template of the theme, or add it to the site's templates/ folder")
}

/// Converts a load-time Tera error, which may hold several reports (unknown filters,
/// missing blocks...), into one diagnostic per report.
fn diagnose_all(e: &tera::Error, origins: &HashMap<String, PathBuf>) -> Vec<Diagnostic> {
    let tera::ErrorKind::Msg(text) = e.kind() else {
        return vec![diagnose(e, origins, None)];
    };
    let mut out = Vec::new();
    for report in text.split("\n\n") {
        let message = report
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_string();
        let location = report
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("--> "));
        let Some((name, line, col)) = location.and_then(parse_location) else {
            continue;
        };
        out.push(Diagnostic {
            file: origins
                .get(name)
                .cloned()
                .unwrap_or_else(|| PathBuf::from(name)),
            line: Some(line),
            column: Some(col),
            message: format!("template error: {message}"),
            help: Some("fix the template (a site's templates/ file overrides the theme's)".into()),
        });
    }
    if out.is_empty() {
        out.push(diagnose(e, origins, None));
    }
    out
}

/// Parses `name:line:col`.
fn parse_location(s: &str) -> Option<(&str, usize, usize)> {
    let mut parts = s.trim().rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?, line, col))
}

/// Converts a Tera error into a diagnostic at the template's file and line.
fn diagnose(
    e: &tera::Error,
    origins: &HashMap<String, PathBuf>,
    for_file: Option<&Path>,
) -> Diagnostic {
    let mut chain = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let _ = write!(chain, ": {s}");
        source = s.source();
    }
    let suffix = for_file.map_or(String::new(), |f| {
        format!(" (while rendering {})", f.display())
    });
    let (file, line, col, msg) = match e.kind() {
        tera::ErrorKind::SyntaxError(r) | tera::ErrorKind::RenderingError(r) => {
            let file = origins
                .get(r.filename())
                .cloned()
                .unwrap_or_else(|| PathBuf::from(r.filename()));
            (
                file,
                Some(r.span().start_line),
                Some(r.span().start_col + 1),
                r.message().to_string(),
            )
        }
        tera::ErrorKind::TemplateNotFound(name) => (
            for_file
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(name)),
            None,
            None,
            format!("template `{name}` not found"),
        ),
        _ => (
            for_file
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("templates")),
            None,
            None,
            e.to_string(),
        ),
    };
    Diagnostic {
        file,
        line,
        column: col,
        message: format!("template error: {msg}{chain}{suffix}"),
        help: Some("fix the template (a site's templates/ file overrides the theme's)".into()),
    }
}

fn register(tera: &mut Tera) {
    tera.register_filter(
        "date",
        |value: &str, kwargs: Kwargs, _: &State| -> tera::TeraResult<String> {
            let format = kwargs.get::<&str>("format")?.unwrap_or("%Y-%m-%d");
            let head = value.get(..10).unwrap_or(value);
            let date = chrono::NaiveDate::parse_from_str(head, "%Y-%m-%d").map_err(|_| {
                tera::Error::message(format!("date filter: `{value}` is not a YYYY-MM-DD date"))
            })?;
            let items: Vec<_> = chrono::format::StrftimeItems::new(format).collect();
            let mut out = String::new();
            write!(out, "{}", date.format_with_items(items.into_iter()))
                .map_err(|_| tera::Error::message(format!("date filter: bad format `{format}`")))?;
            Ok(out)
        },
    );
    tera.register_filter("markdown", |value: &str, _: Kwargs, _: &State| {
        Value::safe_string(&crate::markdown::render(value, true).html)
    });
    tera.register_filter("slugify", |value: &str, _: Kwargs, _: &State| {
        slug::slugify(value)
    });
    tera.register_filter(
        "json",
        |value: &Value, _: Kwargs, _: &State| -> tera::TeraResult<Value> {
            let s = serde_json::to_string(value).map_err(tera::Error::message)?;
            Ok(Value::safe_string(&script_safe(&s)))
        },
    );
    tera.register_function(
        "url",
        |kwargs: Kwargs, state: &State| -> tera::TeraResult<String> {
            let path = kwargs.must_get::<&str>("path")?;
            if path.starts_with("http://") || path.starts_with("https://") {
                return Ok(path.to_string());
            }
            let config = state.get::<Value>("config")?.unwrap_or_else(Value::none);
            let base = config
                .as_map()
                .and_then(|m| m.get(&tera::value::Key::Str("base_url")))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            Ok(if path.starts_with('/') {
                format!("{base}{path}")
            } else {
                format!("{base}/{path}")
            })
        },
    );
    // `image(src, alt, sizes?, eager?)`: an `<img>` that the rewriting pass turns into a
    // responsive `<picture>` (AVIF srcset, width/height, lazy unless eager).
    tera.register_function(
        "image",
        |kwargs: Kwargs, _: &State| -> tera::TeraResult<Value> {
            let src = kwargs.must_get::<&str>("src")?;
            let alt = kwargs.get::<&str>("alt")?.unwrap_or("");
            let esc = crate::markdown::escape_attr;
            let mut html = format!(r#"<img src="{}" alt="{}""#, esc(src), esc(alt));
            if let Some(sizes) = kwargs.get::<&str>("sizes")? {
                html.push_str(&format!(
                    r#" {}="{}""#,
                    crate::rewrite::SIZES_ATTR,
                    esc(sizes)
                ));
            }
            if let Some(class) = kwargs.get::<&str>("class")? {
                html.push_str(&format!(r#" class="{}""#, esc(class)));
            }
            let eager = kwargs.get::<bool>("eager")?.unwrap_or(false);
            html.push_str(if eager {
                r#" loading="eager">"#
            } else {
                r#" loading="lazy">"#
            });
            Ok(Value::safe_string(&html))
        },
    );
    tera.register_function("get_page", |kwargs: Kwargs, state: &State| {
        lookup(kwargs, state, PAGES_KEY, "get_page", "page")
    });
    tera.register_function("get_section", |kwargs: Kwargs, state: &State| {
        lookup(kwargs, state, SECTIONS_KEY, "get_section", "section")
    });
}

thread_local! {
    /// The lookups made by the render running on this thread, when recorded.
    static LOOKUPS: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (one render, on this thread) and returns what it looked up through
/// `get_page` / `get_section`, as `page:/path/` and `section:/path/`.
pub fn record_lookups<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let outer = LOOKUPS.with(|l| l.borrow_mut().replace(Vec::new()));
    let out = f();
    let reads = LOOKUPS.with(|l| std::mem::replace(&mut *l.borrow_mut(), outer));
    (out, reads.unwrap_or_default())
}

fn lookup(
    kwargs: Kwargs,
    state: &State,
    key: &str,
    func: &str,
    what: &str,
) -> tera::TeraResult<Value> {
    let path = kwargs.must_get::<&str>("path")?;
    LOOKUPS.with(|l| {
        if let Some(list) = l.borrow_mut().as_mut() {
            list.push(format!("{what}:{path}"));
        }
    });
    let found = state.get::<Value>(&format!("{key}{path}"))?;
    found.ok_or_else(|| tera::Error::message(format!("{func}: no {what} at `{path}`")))
}

/// Escapes JSON so that it cannot close a `<script>` element.
pub fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

impl ShortcodeRenderer for Templates {
    fn render(&self, call: &Call, body_html: Option<&str>) -> Result<String, String> {
        let name = format!("shortcodes/{}.html", call.name);
        if !self.has(&name) {
            return Err(format!(
                "unknown shortcode `{}`: no template {name} in the theme or the site's templates/",
                call.name
            ));
        }
        let mut ctx = tera::Context::new();
        for (k, v) in &call.args {
            ctx.insert(k.clone(), v);
        }
        if let Some(body) = body_html {
            ctx.insert_value("body", Value::safe_string(body));
        }
        self.tera
            .render(&name, &ctx)
            .map_err(|e| diagnose(&e, &self.origins, None).message)
    }
}
