//! Untrusted HTML (raw HTML inside AI-written Markdown): removes scripts, frames,
//! embedded objects, forms, event handlers and `javascript:` URLs with ammonia, and
//! counts what it removed so the build report can say so.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Elements that are removed with their content.
const DROPPED: [&str; 11] = [
    "script", "style", "iframe", "object", "embed", "form", "frame", "frameset", "noscript",
    "template", "base",
];

fn cleaner() -> &'static ammonia::Builder<'static> {
    static BUILDER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    BUILDER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        b.add_generic_attributes(["id", "class", "title", "lang", "dir"])
            .add_tags([
                "input",
                "section",
                "figure",
                "figcaption",
                "details",
                "summary",
                "mark",
                "picture",
                "source",
                "video",
                "audio",
                "track",
            ])
            .add_tag_attributes("input", ["type", "checked", "disabled"])
            .add_tag_attributes("pre", ["data-lang"])
            .add_tag_attributes("th", ["style"])
            .add_tag_attributes("td", ["style"])
            .add_tag_attributes(
                "img",
                ["width", "height", "loading", "decoding", "srcset", "sizes"],
            )
            .add_tag_attributes("source", ["srcset", "sizes", "type", "media", "src"])
            .add_tag_attributes(
                "video",
                [
                    "src",
                    "controls",
                    "width",
                    "height",
                    "poster",
                    "muted",
                    "loop",
                    "playsinline",
                ],
            )
            .add_tag_attributes("audio", ["src", "controls"])
            .add_tag_attributes("track", ["src", "kind", "srclang", "label"])
            .add_tag_attributes("a", ["rel"])
            .add_tag_attributes("details", ["open"])
            .clean_content_tags(HashSet::from(["script", "style"]))
            .link_rel(None)
            .url_schemes(HashSet::from(["http", "https", "mailto", "tel"]));
        b
    })
}

/// Sanitizes `html`, returning the clean HTML and how many dangerous things were removed
/// (elements, event-handler attributes, `javascript:` URLs).
pub fn clean(html: &str) -> (String, usize) {
    (cleaner().clean(html).to_string(), count_dangers(html))
}

fn count_dangers(html: &str) -> usize {
    let count = std::cell::Cell::new(0usize);
    let selector = DROPPED.join(", ");
    let _ = lol_html::rewrite_str(
        html,
        lol_html::RewriteStrSettings::new()
            .append_element_content_handler(lol_html::element!(&selector, |_el| {
                count.set(count.get() + 1);
                Ok(())
            }))
            .append_element_content_handler(lol_html::element!("*", |el| {
                for attr in el.attributes() {
                    let name = attr.name();
                    let value = attr.value().trim().to_ascii_lowercase();
                    if name.starts_with("on")
                        || ((name == "href"
                            || name == "src"
                            || name == "action"
                            || name == "formaction")
                            && (value.starts_with("javascript:")
                                || value.starts_with("vbscript:")
                                || value.starts_with("data:text/html")))
                    {
                        count.set(count.get() + 1);
                    }
                }
                Ok(())
            })),
    );
    count.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_and_counts_dangers() {
        let (out, n) = clean(
            "<p onclick=\"x()\">Hi <a href=\"javascript:alert(1)\">x</a></p><script>bad()</script><iframe src=\"https://e.test\"></iframe><img src=\"/a.png\" alt=\"a\" onerror=\"y()\">",
        );
        assert!(!out.contains("script") && !out.contains("bad()"), "{out}");
        assert!(!out.contains("iframe"));
        assert!(!out.contains("onclick") && !out.contains("onerror"));
        assert!(!out.contains("javascript:"));
        assert!(out.contains("<img src=\"/a.png\" alt=\"a\">"), "{out}");
        assert_eq!(n, 5);
    }

    #[test]
    fn keeps_markdown_output() {
        let md = crate::markdown::render(
            "## T {#t}\n\n| a |\n|:-:|\n| 1 |\n\n- [x] done\n\nx[^1]\n\n[^1]: f\n\n```rust\nfn a() {}\n```\n",
            true,
        );
        let (out, n) = clean(&md.html);
        assert_eq!(n, 0);
        // Only the serialization of void elements differs (`<input ...>` vs `<input .../>`).
        assert_eq!(out, md.html.replace("\"/>", "\">"));
    }
}
