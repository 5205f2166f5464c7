//! A site's `_redirects` and `_headers` files, in Netlify's grammar (the supported
//! subset is listed in docs/edge.md). Parsed once at import, where a malformed line is
//! an error naming the line; matched against the same normalized path as file lookup.

use http::{HeaderName, HeaderValue};

use crate::error::{EdgeError, Result};
use crate::path;

/// Most rules one file may hold.
const MAX_RULES: usize = 10_000;

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Param(String),
    Splat,
}

/// A path pattern: literal segments, `:name` placeholders and a trailing `*` splat.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    segs: Vec<Seg>,
}

/// Values captured by a match.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Captures {
    params: Vec<(String, String)>,
    splat: Option<String>,
}

impl Pattern {
    fn parse(text: &str) -> std::result::Result<Pattern, String> {
        if text.starts_with("http://") || text.starts_with("https://") {
            return Err(
                "rules matching a host are not supported; use a path starting with /".into(),
            );
        }
        if !text.starts_with('/') {
            return Err(format!("path {text:?} must start with /"));
        }
        let normalized = path::normalize(text).map_err(|e| format!("bad path {text:?}: {e:?}"))?;
        let mut segs = Vec::new();
        let parts: Vec<&str> = normalized.split('/').filter(|s| !s.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            if *part == "*" {
                if i + 1 != parts.len() {
                    return Err("* is only supported as the last segment".into());
                }
                segs.push(Seg::Splat);
            } else if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("bad placeholder {part:?}"));
                }
                segs.push(Seg::Param(name.to_string()));
            } else if part.contains('*') {
                return Err("* is only supported as a whole segment".into());
            } else {
                segs.push(Seg::Lit((*part).to_string()));
            }
        }
        Ok(Pattern { segs })
    }

    /// Matches a normalized path; a trailing slash is not significant.
    pub fn matches(&self, path: &str) -> Option<Captures> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut caps = Captures::default();
        for (i, seg) in self.segs.iter().enumerate() {
            match seg {
                Seg::Splat => {
                    caps.splat = Some(parts.get(i..).map(|p| p.join("/")).unwrap_or_default());
                    return Some(caps);
                }
                Seg::Lit(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Seg::Param(name) => {
                    let v = parts.get(i)?;
                    caps.params.push((name.clone(), (*v).to_string()));
                }
            }
        }
        (parts.len() == self.segs.len()).then_some(caps)
    }
}

/// A query-string condition of a redirect rule.
#[derive(Debug, Clone, PartialEq)]
enum QueryCond {
    /// `key=:name`: the key must be present; its value is captured as `:name`.
    Capture(String, String),
    /// `key=value`: the key must have this value.
    Equals(String, String),
}

/// One `_redirects` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    from: Pattern,
    query: Vec<QueryCond>,
    to: String,
    /// 200 (rewrite), 301, 302, 303, 307, 308, 404 or 410.
    pub status: u16,
    /// `!`: applies even when a file exists at the path.
    pub force: bool,
}

/// A matched redirect with its target filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectHit {
    /// The rule's status.
    pub status: u16,
    /// Whether the rule is forced.
    pub force: bool,
    /// Target with placeholders substituted (percent-encoded), possibly absolute.
    pub target: String,
    /// Whether the request's query string is appended to a redirect's target: when the
    /// target has none of its own and the rule had no query conditions.
    pub keep_query: bool,
}

/// The parsed `_redirects` file of a deploy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redirects {
    rules: Vec<Redirect>,
}

impl Redirects {
    /// Parses a `_redirects` file.
    pub fn parse(text: &str) -> Result<Redirects> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| EdgeError::Rule {
                file: "_redirects",
                line,
                message,
            };
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            if rules.len() >= MAX_RULES {
                return Err(err(format!("more than {MAX_RULES} rules")));
            }
            rules.push(parse_redirect(content).map_err(err)?);
        }
        Ok(Redirects { rules })
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Finds the first rule matching `path` and `query`; `file_exists` decides whether a
    /// rule that is not forced applies (it is shadowed by an existing file).
    pub fn find(
        &self,
        path: &str,
        query: Option<&str>,
        file_exists: impl Fn() -> bool,
    ) -> Option<RedirectHit> {
        let mut exists: Option<bool> = None;
        for rule in &self.rules {
            let Some(mut caps) = rule.from.matches(path) else {
                continue;
            };
            if !match_query(&rule.query, query, &mut caps) {
                continue;
            }
            if !rule.force {
                let e = *exists.get_or_insert_with(&file_exists);
                if e {
                    continue;
                }
            }
            let target = substitute(&rule.to, &caps);
            let keep_query = !target.contains('?') && rule.query.is_empty();
            return Some(RedirectHit {
                status: rule.status,
                force: rule.force,
                target,
                keep_query,
            });
        }
        None
    }
}

fn parse_redirect(content: &str) -> std::result::Result<Redirect, String> {
    let mut toks = content.split_whitespace();
    let from_text = toks.next().ok_or("empty rule")?;
    let from = Pattern::parse(from_text)?;
    let mut query = Vec::new();
    let mut to = None;
    for tok in toks.by_ref() {
        if tok.starts_with('/') || tok.starts_with("http://") || tok.starts_with("https://") {
            to = Some(tok.to_string());
            break;
        }
        let (k, v) = tok.split_once('=').ok_or_else(|| {
            format!("expected a target path or a query condition key=value, found {tok:?}")
        })?;
        if k.is_empty() {
            return Err(format!("empty query key in {tok:?}"));
        }
        match v.strip_prefix(':') {
            Some(name) if !name.is_empty() => query.push(QueryCond::Capture(k.into(), name.into())),
            _ => query.push(QueryCond::Equals(k.into(), v.into())),
        }
    }
    let to = to.ok_or("missing target: a rule is `FROM [key=value...] TO [STATUS[!]]`")?;
    let mut status = 301;
    let mut force = false;
    if let Some(tok) = toks.next() {
        let (num, bang) = match tok.strip_suffix('!') {
            Some(n) => (n, true),
            None => (tok, false),
        };
        status = num
            .parse::<u16>()
            .map_err(|_| format!("bad status {tok:?}: expected e.g. 301 or 200!"))?;
        force = bang;
        if !matches!(status, 200 | 301 | 302 | 303 | 307 | 308 | 404 | 410) {
            return Err(format!(
                "status {status} is not supported (use 200, 301, 302, 303, 307, 308, 404 or 410)"
            ));
        }
    }
    if let Some(extra) = toks.next() {
        return Err(format!(
            "unsupported condition {extra:?}: country, language, role and cookie conditions are not supported"
        ));
    }
    let absolute = to.starts_with("http://") || to.starts_with("https://");
    if absolute && matches!(status, 200 | 404 | 410) {
        return Err(
            "proxying to another host (a 200/404/410 rule with an absolute URL) is not supported"
                .into(),
        );
    }
    if !absolute {
        let p = to.split('?').next().unwrap_or("");
        if p.starts_with("//") || p.starts_with("/\\") || p.contains('\\') {
            return Err(format!("target {to:?} could send visitors to another host"));
        }
    }
    if to.chars().any(|c| c.is_control()) {
        return Err("control character in target".into());
    }
    Ok(Redirect {
        from,
        query,
        to,
        status,
        force,
    })
}

fn match_query(conds: &[QueryCond], query: Option<&str>, caps: &mut Captures) -> bool {
    for cond in conds {
        let (key, want) = match cond {
            QueryCond::Capture(k, _) => (k, None),
            QueryCond::Equals(k, v) => (k, Some(v)),
        };
        let found = query.unwrap_or("").split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == key).then_some(v)
        });
        let Some(value) = found else { return false };
        match (cond, want) {
            (QueryCond::Equals(..), Some(w)) if w != value => return false,
            (QueryCond::Capture(_, name), _) => {
                let decoded = percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned();
                caps.params.push((name.clone(), decoded));
            }
            _ => {}
        }
    }
    true
}

fn substitute(to: &str, caps: &Captures) -> String {
    let mut out = String::with_capacity(to.len() + 16);
    let mut rest = to;
    while let Some(pos) = rest.find(':') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..len];
        let value = if name == "splat" {
            caps.splat.as_deref()
        } else if name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            caps.params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        } else {
            None
        };
        match value {
            Some(v) => out.push_str(&path::encode(v)),
            None => {
                out.push(':');
                out.push_str(name);
            }
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Headers that frame the message: a site's `_headers` may not set them.
const FRAMING_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "content-encoding",
    "content-range",
    "date",
];

/// One `_headers` block: a path pattern and the headers it sets.
#[derive(Debug, Clone, PartialEq)]
struct HeaderRule {
    pattern: Pattern,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// The parsed `_headers` file of a deploy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers {
    rules: Vec<HeaderRule>,
}

impl Headers {
    /// Parses a `_headers` file.
    pub fn parse(text: &str) -> Result<Headers> {
        let mut rules: Vec<HeaderRule> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| EdgeError::Rule {
                file: "_headers",
                line,
                message,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indented = raw.starts_with([' ', '\t']);
            if !indented || trimmed.starts_with('/') {
                if rules.len() >= MAX_RULES {
                    return Err(err(format!("more than {MAX_RULES} rules")));
                }
                let pattern = Pattern::parse(trimmed).map_err(err)?;
                rules.push(HeaderRule {
                    pattern,
                    headers: Vec::new(),
                });
                continue;
            }
            let rule = rules
                .last_mut()
                .ok_or_else(|| err("a header line must follow a path line".into()))?;
            let (name, value) = trimmed
                .split_once(':')
                .ok_or_else(|| err(format!("expected `Name: value`, found {trimmed:?}")))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| err(format!("invalid header name {:?}", name.trim())))?;
            if FRAMING_HEADERS.contains(&name.as_str()) {
                return Err(err(format!(
                    "{name} is set by the server and cannot be changed in _headers"
                )));
            }
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| err(format!("invalid value for header {name}")))?;
            rule.headers.push((name, value));
        }
        Ok(Headers { rules })
    }

    /// Headers for `path`: every matching block in file order; a name set by several
    /// blocks gets their values joined by `, `.
    pub fn for_path(&self, path: &str) -> Vec<(HeaderName, HeaderValue)> {
        let mut out: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for rule in &self.rules {
            if rule.pattern.matches(path).is_none() {
                continue;
            }
            for (name, value) in &rule.headers {
                if let Some(slot) = out.iter_mut().find(|(n, _)| n == name) {
                    let mut joined = slot.1.as_bytes().to_vec();
                    joined.extend_from_slice(b", ");
                    joined.extend_from_slice(value.as_bytes());
                    if let Ok(v) = HeaderValue::from_bytes(&joined) {
                        slot.1 = v;
                    }
                } else {
                    out.push((name.clone(), value.clone()));
                }
            }
        }
        out
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_grammar() {
        let r = Redirects::parse(
            "# comment\n/old /new\n/news/* /blog/:splat 302\n/p/:year/:slug /posts/:year-:slug 308\n/store id=:id /items/:id 301\n/spa/* /index.html 200\n/gone /gone.html 410\n/f /x 301!\n",
        )
        .unwrap();
        let no = || false;
        assert_eq!(r.find("/old", None, no).unwrap().target, "/new");
        let h = r.find("/news/a/b", None, no).unwrap();
        assert_eq!((h.status, h.target.as_str()), (302, "/blog/a/b"));
        assert_eq!(
            r.find("/p/2024/hi", None, no).unwrap().target,
            "/posts/2024-hi"
        );
        assert_eq!(
            r.find("/store", Some("id=7&x=1"), no).unwrap().target,
            "/items/7"
        );
        assert!(r.find("/store", Some("x=1"), no).is_none());
        assert!(
            r.find("/old", None, || true).is_none(),
            "shadowed by a file"
        );
        assert!(r.find("/f", None, || true).is_some(), "forced");
        assert_eq!(r.find("/gone", None, no).unwrap().status, 410);
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let e = Redirects::parse("/a /b\n/c\n").unwrap_err().to_string();
        assert!(e.starts_with("_redirects:2:"), "{e}");
        let e = Redirects::parse("/a /b 999\n").unwrap_err().to_string();
        assert!(e.contains(":1:"), "{e}");
        let e = Redirects::parse("/a //evil.com 301\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("another host"), "{e}");
        let e = Headers::parse("  X-A: b\n").unwrap_err().to_string();
        assert!(e.starts_with("_headers:1:"), "{e}");
        let e = Headers::parse("/a\n  Content-Length: 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("_headers:2:"), "{e}");
        let e = Headers::parse("/a\n  nocolon\n").unwrap_err().to_string();
        assert!(e.starts_with("_headers:2:"), "{e}");
    }

    #[test]
    fn headers_merge() {
        let h = Headers::parse("/*\n  X-A: 1\n/a/*\n  X-A: 2\n  X-B: 3\n").unwrap();
        let got = h.for_path("/a/b");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, "1, 2");
        assert_eq!(h.for_path("/c").len(), 1);
    }
}
