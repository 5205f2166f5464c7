//! `<picture>` markup for a processed image, and the blurred placeholder URI.

use std::fmt::Write;

use super::{Format, Processed, Variant};

/// How to render a [`Processed`] image as `<picture>`.
#[derive(Debug, Clone, Default)]
pub struct PictureOptions<'a> {
    /// The `alt` text (`Some("")` for decorative images). `None` emits no `alt`, so an
    /// audit still sees an `<img>` whose author forgot it.
    pub alt: Option<&'a str>,
    /// The `sizes` attribute; `None` means "as wide as the viewport, at most the image's
    /// own width": `(max-width: Wpx) 100vw, Wpx`.
    pub sizes: Option<&'a str>,
    /// Prepended to each file name to make its URL, e.g. `/images/`.
    pub url_prefix: &'a str,
    /// Above the fold (a hero image): `loading="eager" fetchpriority="high"` instead of
    /// `loading="lazy"`.
    pub eager: bool,
    /// More attributes for the `<img>` (e.g. `class`, `title`, `id` kept from the original
    /// tag). Names that are not plain attribute names, and the ones this function sets,
    /// are ignored; values are escaped.
    pub attrs: Vec<(&'a str, &'a str)>,
}

/// Escapes text for a double-quoted HTML attribute value.
pub fn escape_attr(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A URL safe inside a srcset list: spaces and commas would split it.
fn srcset_url(prefix: &str, file_name: &str) -> String {
    let mut url = String::new();
    for c in prefix.chars().chain(file_name.chars()) {
        match c {
            ' ' => url.push_str("%20"),
            ',' => url.push_str("%2C"),
            c => url.push(c),
        }
    }
    url
}

fn srcset(prefix: &str, variants: &[&Variant]) -> String {
    variants
        .iter()
        .map(|v| format!("{} {}w", srcset_url(prefix, &v.file_name), v.width))
        .collect::<Vec<_>>()
        .join(", ")
}

const OWN_ATTRS: [&str; 11] = [
    "src",
    "srcset",
    "sizes",
    "width",
    "height",
    "alt",
    "loading",
    "decoding",
    "fetchpriority",
    "style",
    "type",
];

fn valid_attr_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))
        && !name.to_ascii_lowercase().starts_with("on")
        && !OWN_ATTRS.contains(&name.to_ascii_lowercase().as_str())
}

/// `<picture>` with an AVIF `<source srcset sizes>` (when any AVIF was kept) and the
/// fallback `<img>` with `src`, `srcset`, `sizes`, `width`, `height`, `alt`, `loading`,
/// `decoding` (no layout shift: width and height give the aspect ratio). Every attribute
/// value is escaped.
///
/// The AVIF `srcset` lists, for each width, the smaller of the AVIF and the fallback, so a
/// width whose AVIF was dropped (not smaller) still offers its full resolution.
pub fn picture_html(processed: &Processed, options: &PictureOptions<'_>) -> String {
    let fallback = processed.fallback();
    let fallbacks: Vec<&Variant> = processed.fallbacks().collect();
    let best = processed.best_per_width();
    let default_sizes;
    let sizes = match options.sizes {
        Some(s) => s,
        None => {
            default_sizes = format!("(max-width: {w}px) 100vw, {w}px", w = fallback.width);
            &default_sizes
        }
    };
    let prefix = options.url_prefix;
    let mut html = String::from("<picture>");
    if best.iter().any(|v| v.format == Format::Avif) {
        let _ = write!(
            html,
            r#"<source type="image/avif" srcset="{}" sizes="{}">"#,
            escape_attr(&srcset(prefix, &best)),
            escape_attr(sizes)
        );
    }
    let _ = write!(
        html,
        r#"<img src="{}""#,
        escape_attr(&srcset_url(prefix, &fallback.file_name))
    );
    if fallbacks.len() > 1 {
        let _ = write!(
            html,
            r#" srcset="{}" sizes="{}""#,
            escape_attr(&srcset(prefix, &fallbacks)),
            escape_attr(sizes)
        );
    }
    let _ = write!(
        html,
        r#" width="{}" height="{}""#,
        fallback.width, fallback.height
    );
    if let Some(alt) = options.alt {
        let _ = write!(html, r#" alt="{}""#, escape_attr(alt));
    }
    if options.eager {
        html.push_str(r#" loading="eager" fetchpriority="high" decoding="async""#);
    } else {
        html.push_str(r#" loading="lazy" decoding="async""#);
    }
    if let Some(uri) = &processed.placeholder {
        let _ = write!(
            html,
            r#" style="{}""#,
            escape_attr(&format!(
                "background-size:cover;background-image:url(\"{uri}\")"
            ))
        );
    }
    for (name, value) in &options.attrs {
        if valid_attr_name(name) {
            let _ = write!(
                html,
                r#" {}="{}""#,
                name.to_ascii_lowercase(),
                escape_attr(value)
            );
        }
    }
    html.push_str("></picture>");
    html
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An SVG `data:` URI that draws `tiny_png` stretched to `width` x `height` through a
/// Gaussian blur (edges kept opaque), to show while the real image loads.
pub(crate) fn placeholder_uri(tiny_png: &[u8], width: u32, height: u32) -> String {
    let svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}'>\
         <filter id='b' color-interpolation-filters='sRGB'>\
         <feGaussianBlur stdDeviation='{sd}'/>\
         <feComponentTransfer><feFuncA type='discrete' tableValues='1 1'/></feComponentTransfer>\
         </filter><image preserveAspectRatio='none' filter='url(#b)' width='100%' height='100%' \
         href='data:image/png;base64,{b64}'/></svg>",
        sd = (width.max(height) / 20).max(1),
        b64 = base64(tiny_png),
    );
    let mut uri = String::from("data:image/svg+xml,");
    for c in svg.chars() {
        match c {
            '<' => uri.push_str("%3C"),
            '>' => uri.push_str("%3E"),
            '#' => uri.push_str("%23"),
            '"' => uri.push_str("%22"),
            '%' => uri.push_str("%25"),
            c => uri.push(c),
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
