//! Shortcodes in Markdown: `{{ name(key="v") }}` and `{% name(key="v") %}body{% end %}`.
//! They are cut out before Markdown parsing (leaving placeholders that Markdown cannot
//! alter), rendered by a Tera template, and put back into the HTML afterwards.
//! Fenced code blocks and inline code are left alone.

use serde_json::{Map, Value};

/// One shortcode use found in a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Template name (without `shortcodes/` and `.html`).
    pub name: String,
    /// Arguments.
    pub args: Map<String, Value>,
    /// The Markdown between the opening tag and `{% end %}`, for body shortcodes.
    pub body: Option<String>,
    /// 1-based line in the document where the call starts.
    pub line: usize,
}

/// A document with shortcodes replaced by placeholders.
#[derive(Debug, Default)]
pub struct Extracted {
    /// The Markdown to render.
    pub markdown: String,
    /// The calls, in order; call `i` is at placeholder [`placeholder`]`(i)`.
    pub calls: Vec<Call>,
}

/// The placeholder text standing for call `i`.
pub fn placeholder(i: usize) -> String {
    format!("QPAGESHORTCODE{i}X")
}

/// A shortcode syntax error: (line, column, message).
pub type SyntaxError = (usize, usize, String);

/// Cuts the shortcodes out of `text`.
pub fn extract(text: &str) -> Result<Extracted, Vec<SyntaxError>> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(Extracted {
            markdown: text.to_string(),
            calls: Vec::new(),
        });
    }
    let mut out = Extracted::default();
    let mut errors = Vec::new();
    let mut fence: Option<String> = None;
    let mut pos = 0;
    let bytes = text.len();
    while pos < bytes {
        let line_end = text[pos..].find('\n').map_or(bytes, |i| pos + i + 1);
        let line = &text[pos..line_end];
        let trimmed = line.trim_start();
        if let Some(f) = &fence {
            if trimmed.starts_with(f.as_str()) {
                fence = None;
            }
            out.markdown.push_str(line);
            pos = line_end;
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            let marker: String = trimmed
                .chars()
                .take_while(|c| *c == '`' || *c == '~')
                .collect();
            fence = Some(marker);
            out.markdown.push_str(line);
            pos = line_end;
            continue;
        }
        // Scan this line for calls outside inline code.
        let mut i = pos;
        let mut in_code = false;
        let mut advanced_to = line_end;
        while i < line_end {
            let rest = &text[i..];
            if rest.starts_with('`') {
                in_code = !in_code;
                out.markdown.push('`');
                i += 1;
                continue;
            }
            if !in_code && (rest.starts_with("{{") || rest.starts_with("{%")) {
                let line_no = text[..i].matches('\n').count() + 1;
                let col = i - pos + 1;
                match parse_call(text, i) {
                    Ok(Some((mut call, end))) => {
                        call.line = line_no;
                        out.markdown.push_str(&placeholder(out.calls.len()));
                        out.calls.push(call);
                        i = end;
                        if end > line_end {
                            advanced_to = text[end..].find('\n').map_or(bytes, |k| end + k + 1);
                            out.markdown.push_str(&text[end..advanced_to]);
                            i = advanced_to;
                            break;
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(msg) => {
                        errors.push((line_no, col, msg));
                        advanced_to = line_end;
                        i = line_end;
                        break;
                    }
                }
            }
            let c = rest.chars().next().map_or(1, char::len_utf8);
            out.markdown.push_str(&text[i..i + c]);
            i += c;
        }
        pos = advanced_to.max(i);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Parses a call starting at `start` (at `{{` or `{%`). Ok(None): not a shortcode
/// (plain text that merely starts like one).
fn parse_call(text: &str, start: usize) -> Result<Option<(Call, usize)>, String> {
    let is_body = text[start..].starts_with("{%");
    let mut p = Cursor {
        s: text,
        i: start + 2,
    };
    p.skip_ws();
    let name = p.ident();
    if name.is_empty() || !p.eat('(') {
        return Ok(None);
    }
    let mut args = Map::new();
    loop {
        p.skip_ws();
        if p.eat(')') {
            break;
        }
        let key = p.ident();
        if key.is_empty() {
            return Err(format!(
                "shortcode `{name}`: expected an argument name or `)`"
            ));
        }
        p.skip_ws();
        if !p.eat('=') {
            return Err(format!("shortcode `{name}`: expected `=` after `{key}`"));
        }
        p.skip_ws();
        let value = p
            .value()
            .map_err(|e| format!("shortcode `{name}`, argument `{key}`: {e}"))?;
        args.insert(key.clone(), value);
        p.skip_ws();
        if p.eat(',') {
            continue;
        }
        if p.eat(')') {
            break;
        }
        return Err(format!(
            "shortcode `{name}`: expected `,` or `)` after `{key}`"
        ));
    }
    p.skip_ws();
    let close = if is_body { "%}" } else { "}}" };
    if !p.eat_str(close) {
        return Err(format!("shortcode `{name}`: expected `{close}`"));
    }
    let mut body = None;
    if is_body {
        let Some(rel) = find_end(&text[p.i..]) else {
            return Err(format!(
                "shortcode `{name}` has a body but no `{{% end %}}`; close it with {{% end %}}"
            ));
        };
        body = Some(text[p.i..p.i + rel.0].trim_matches('\n').to_string());
        p.i += rel.1;
    }
    Ok(Some((
        Call {
            name,
            args,
            body,
            line: 0,
        },
        p.i,
    )))
}

/// Finds `{% end %}`: (start of the tag, end of the tag), relative.
fn find_end(s: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(k) = s[from..].find("{%") {
        let at = from + k;
        let inner = &s[at + 2..];
        if let Some(close) = inner.find("%}")
            && inner[..close].trim() == "end"
        {
            return Some((at, at + 2 + close + 2));
        }
        from = at + 2;
    }
    None
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.i += c.len_utf8();
            } else {
                break;
            }
        }
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn eat_str(&mut self, s: &str) -> bool {
        if self.s[self.i..].starts_with(s) {
            self.i += s.len();
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> String {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                self.i += 1;
            } else {
                break;
            }
        }
        self.s[start..self.i].to_string()
    }
    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => return Err("unterminated string".into()),
                        Some('\\') => {
                            self.i += 1;
                            if let Some(c) = self.peek() {
                                out.push(c);
                                self.i += c.len_utf8();
                            }
                        }
                        Some(c) if c == q => {
                            self.i += 1;
                            return Ok(Value::String(out));
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += c.len_utf8();
                        }
                    }
                }
            }
            Some('[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.eat(']') {
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    self.skip_ws();
                    if !self.eat(',') && self.peek() != Some(']') {
                        return Err("expected `,` or `]` in list".into());
                    }
                }
            }
            _ => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+' {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                let word = &self.s[start..self.i];
                match word {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => {
                        if let Ok(n) = word.parse::<i64>() {
                            Ok(Value::from(n))
                        } else if let Ok(f) = word.parse::<f64>() {
                            Ok(Value::from(f))
                        } else {
                            Err(format!(
                                "`{word}` is not a value (use \"text\", a number, true/false or [a, b])"
                            ))
                        }
                    }
                }
            }
        }
    }
}

/// Puts rendered shortcodes back into rendered HTML. A shortcode alone in a paragraph
/// replaces the whole `<p>` (its output is usually a block).
pub fn restore(html: &mut String, rendered: &[String]) {
    for (i, out) in rendered.iter().enumerate().rev() {
        let ph = placeholder(i);
        let para = format!("<p>{ph}</p>");
        if html.contains(&para) {
            *html = html.replace(&para, out);
        } else {
            *html = html.replace(&ph, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_body_calls() {
        let e = extract("Hi {{ yt(id=\"a b\", n=3, ok=true, l=[1, \"x\"]) }}!\n\n{% note(kind='tip') %}\n**Bold**\n{% end %}\nafter\n")
            .expect("valid");
        assert_eq!(e.calls.len(), 2);
        assert_eq!(e.calls[0].name, "yt");
        assert_eq!(e.calls[0].args["id"], "a b");
        assert_eq!(e.calls[0].args["n"], 3);
        assert_eq!(e.calls[0].args["l"][1], "x");
        assert_eq!(e.calls[1].body.as_deref(), Some("**Bold**"));
        assert_eq!(e.calls[1].line, 3);
        assert!(e.markdown.contains("QPAGESHORTCODE0X!"));
        assert!(e.markdown.contains("QPAGESHORTCODE1X\nafter"));
    }

    #[test]
    fn code_is_left_alone() {
        let src = "```\n{{ yt(id=\"a\") }}\n```\nand `{{ x() }}`\n";
        let e = extract(src).expect("valid");
        assert!(e.calls.is_empty());
        assert_eq!(e.markdown, src);
    }

    #[test]
    fn errors_are_located() {
        let e = extract("ok\n{{ yt(id=) }}\n").expect_err("bad");
        assert_eq!(e[0].0, 2);
        let e = extract("{% note() %}\nno end\n").expect_err("bad");
        assert!(e[0].2.contains("end"));
    }

    #[test]
    fn restore_replaces_paragraphs() {
        let mut html = format!("<p>{}</p><p>a {} b</p>", placeholder(0), placeholder(1));
        restore(&mut html, &["<div>X</div>".into(), "<b>Y</b>".into()]);
        assert_eq!(html, "<div>X</div><p>a <b>Y</b> b</p>");
    }
}
