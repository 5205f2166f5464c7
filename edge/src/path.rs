//! Request paths: decoded once, checked, normalized. The result is only ever looked up
//! in a deploy's manifest, never joined to a filesystem path.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Why a request path is refused (all answered with 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// Not starting with `/`, or a bad percent escape.
    Malformed,
    /// An encoded `/` or `\`, a raw `\`, NUL or another control character.
    ForbiddenByte,
    /// Not valid UTF-8 once decoded (overlong forms included).
    NotUtf8,
    /// A `.` or `..` segment.
    DotSegment,
}

/// Decodes and normalizes a request path.
///
/// Returns the decoded path with repeated slashes collapsed, starting with `/` and
/// ending with `/` when the request did. `.` and `..` segments, encoded slashes or
/// backslashes, any backslash, NUL and control bytes, and invalid UTF-8 are refused.
/// One pass over a path that starts with `/`: printable ASCII, nothing to decode
/// (`%`), no backslash, no empty (`//`), `.` or `..` segment.
fn is_plain(bytes: &[u8]) -> bool {
    // Length of the current segment and whether it is all dots so far.
    let mut seg_len = 0usize;
    let mut dots = true;
    for (i, &b) in bytes.iter().enumerate() {
        if !(0x20..0x7f).contains(&b) || b == b'%' || b == b'\\' {
            return false;
        }
        if b == b'/' {
            if i > 0 && (seg_len == 0 || (dots && seg_len <= 2)) {
                return false;
            }
            seg_len = 0;
            dots = true;
        } else {
            seg_len += 1;
            dots &= b == b'.';
        }
    }
    !(dots && (1..=2).contains(&seg_len))
}

pub fn normalize(raw: &str) -> Result<String, BadPath> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(BadPath::Malformed);
    }
    // Fast path: printable ASCII with nothing to decode, collapse or refuse is already
    // in normal form (one allocation instead of two passes).
    if is_plain(bytes) {
        return Ok(raw.to_owned());
    }
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| hex(*c));
            let lo = bytes.get(i + 2).and_then(|c| hex(*c));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(BadPath::Malformed);
            };
            let v = hi << 4 | lo;
            if v == b'/' || v == b'\\' || v < 0x20 || v == 0x7f {
                return Err(BadPath::ForbiddenByte);
            }
            decoded.push(v);
            i += 3;
        } else {
            if b == b'\\' || b < 0x20 || b == 0x7f {
                return Err(BadPath::ForbiddenByte);
            }
            decoded.push(b);
            i += 1;
        }
    }
    let text = String::from_utf8(decoded).map_err(|_| BadPath::NotUtf8)?;
    let mut out = String::with_capacity(text.len());
    for seg in text.split('/') {
        if seg.is_empty() {
            continue;
        }
        if seg == "." || seg == ".." {
            return Err(BadPath::DotSegment);
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || text.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Characters escaped when a decoded path goes back into a `Location` header.
const PATH_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Percent-encodes a decoded path for use in a `Location` header.
pub fn encode(path: &str) -> String {
    utf8_percent_encode(path, PATH_ESCAPE).to_string()
}

/// Makes a local redirect target safe: it must start with exactly one `/` followed by
/// something other than `/` or `\`, so a browser can never read it as another host.
/// Absolute `http(s)://` targets written by the site owner pass through.
pub fn safe_location(target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        return target.to_string();
    }
    let rest = target.trim_start_matches(['/', '\\']);
    let rest = rest.replace('\\', "%5C");
    format!("/{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_pass_check_agrees_with_the_segment_rules() {
        let reference = |raw: &str| {
            raw.bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'%' && b != b'\\')
                && !raw.contains("//")
                && !raw.split('/').any(|seg| seg == "." || seg == "..")
        };
        for p in [
            "/",
            "/a",
            "/a/",
            "/a/b.html",
            "/.",
            "/..",
            "/...",
            "/./",
            "/../",
            "/a/.",
            "/a/..",
            "/a/./b",
            "/a/../b",
            "/a//b",
            "//",
            "/.a",
            "/a.",
            "/a..b/",
            "/%2e",
            "/a\\b",
            "/a b",
            "/\u{7f}",
            "/\u{1}",
            "/é",
            "/.well-known/x",
            "/a/.../b",
            "/a/b//",
        ] {
            assert_eq!(is_plain(p.as_bytes()), reference(p), "{p:?}");
        }
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize("/").unwrap(), "/");
        assert_eq!(normalize("//a///b/").unwrap(), "/a/b/");
        assert_eq!(normalize("/a%20b").unwrap(), "/a b");
        assert_eq!(normalize("/caf%C3%A9").unwrap(), "/café");
        // The fast path (nothing to decode) agrees with the full one.
        for p in [
            "/a/b",
            "/a/b/",
            "/.well-known/x",
            "/..a",
            "/a..",
            "/a b",
            "/x.html",
        ] {
            assert_eq!(normalize(p).unwrap(), p);
        }
        for p in ["/a/.", "/a/..", "/./a", "/../a", "/a/../b"] {
            assert_eq!(normalize(p), Err(BadPath::DotSegment), "{p}");
        }
        assert_eq!(normalize("/a/b\\c"), Err(BadPath::ForbiddenByte));
        assert_eq!(normalize("/a\u{7f}"), Err(BadPath::ForbiddenByte));
    }

    #[test]
    fn refuses_hostile() {
        assert_eq!(normalize("/%2e%2e/etc/passwd"), Err(BadPath::DotSegment));
        assert_eq!(normalize("/..%2fetc"), Err(BadPath::ForbiddenByte));
        assert_eq!(normalize("/a\\..\\b"), Err(BadPath::ForbiddenByte));
        assert_eq!(normalize("/a%5cb"), Err(BadPath::ForbiddenByte));
        assert_eq!(normalize("/a%00"), Err(BadPath::ForbiddenByte));
        assert_eq!(normalize("/%c0%ae%c0%ae/x"), Err(BadPath::NotUtf8));
        assert_eq!(normalize("/a/./b"), Err(BadPath::DotSegment));
        assert_eq!(normalize("/%zz"), Err(BadPath::Malformed));
        assert_eq!(normalize("x"), Err(BadPath::Malformed));
    }

    #[test]
    fn locations_stay_local() {
        assert_eq!(safe_location("//evil.com"), "/evil.com");
        assert_eq!(safe_location("/\\evil.com"), "/evil.com");
        assert_eq!(safe_location("/a\\b"), "/a%5Cb");
        assert_eq!(safe_location("https://x.test/"), "https://x.test/");
        assert_eq!(encode("/a b?"), "/a%20b%3F");
    }
}
