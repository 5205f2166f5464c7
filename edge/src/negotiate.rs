//! Request header logic of HTTP semantics: Accept-Encoding with q-values, conditional
//! requests (If-None-Match, If-Modified-Since, If-Range) and single byte ranges.

use std::time::SystemTime;

use crate::store::Variant;

/// Picks the body encoding from `Accept-Encoding`: the highest q-value among the
/// variants available; ties go to br, then gzip, then identity. Identity is the answer
/// when nothing else is acceptable.
pub(crate) fn choose_encoding(accept: Option<&[u8]>, has_br: bool, has_gz: bool) -> Variant {
    let Some(accept) = accept else {
        return Variant::Identity;
    };
    if !has_br && !has_gz {
        return Variant::Identity;
    }
    let (mut q_br, mut q_gz, mut q_id, mut q_star) = (None, None, None, None);
    for item in accept.split(|b| *b == b',') {
        let mut parts = item.split(|b| *b == b';');
        let token = trim(parts.next().unwrap_or(b""));
        let mut q = 1000u32;
        for param in parts {
            let param = trim(param);
            if param.len() >= 2 && param[..2].eq_ignore_ascii_case(b"q=") {
                q = parse_q(&param[2..]).unwrap_or(0);
            }
        }
        let slot = if token.eq_ignore_ascii_case(b"br") {
            &mut q_br
        } else if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
            &mut q_gz
        } else if token.eq_ignore_ascii_case(b"identity") {
            &mut q_id
        } else if token == b"*" {
            &mut q_star
        } else {
            continue;
        };
        *slot = Some(q);
    }
    let br = if has_br {
        q_br.or(q_star).unwrap_or(0)
    } else {
        0
    };
    let gz = if has_gz {
        q_gz.or(q_star).unwrap_or(0)
    } else {
        0
    };
    let id = q_id.or(q_star.filter(|q| *q == 0)).unwrap_or(1);
    if br > 0 && br >= gz && br >= id {
        Variant::Br
    } else if gz > 0 && gz >= id {
        Variant::Gzip
    } else {
        Variant::Identity
    }
}

/// q-value in thousandths.
fn parse_q(v: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(v).ok()?;
    let f: f32 = s.parse().ok()?;
    (0.0..=1.0)
        .contains(&f)
        .then(|| (f * 1000.0).round() as u32)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Whether `If-None-Match` matches the blob `hash` (weak comparison; any variant's tag).
pub(crate) fn none_match(header: &[u8], hash: &str) -> bool {
    header.split(|b| *b == b',').any(|tag| {
        let tag = trim(tag);
        if tag == b"*" {
            return true;
        }
        let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
        let Some(inner) = tag.strip_prefix(b"\"").and_then(|t| t.strip_suffix(b"\"")) else {
            return false;
        };
        let base = inner
            .strip_suffix(b"-br")
            .or_else(|| inner.strip_suffix(b"-gz"))
            .unwrap_or(inner);
        base == hash.as_bytes()
    })
}

/// Whether `If-Modified-Since` says the client's copy is current.
pub(crate) fn not_modified_since(header: &[u8], modified: SystemTime) -> bool {
    let Some(since) = std::str::from_utf8(header)
        .ok()
        .and_then(|s| httpdate::parse_http_date(s).ok())
    else {
        return false;
    };
    modified <= since
}

/// Whether `If-Range` allows the range: a strong ETag equal to the identity tag, or a
/// date equal to Last-Modified.
pub(crate) fn if_range_ok(header: &[u8], etag: &[u8], last_modified: &[u8]) -> bool {
    let h = trim(header);
    if h.starts_with(b"\"") {
        h == etag
    } else if h.starts_with(b"W/") {
        false
    } else {
        h == last_modified
    }
}

/// The outcome of a `Range` header against a body of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeResult {
    /// No usable single range: send the whole body.
    Full,
    /// Send bytes `start..end` (end exclusive).
    Partial(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// Parses a single `bytes=` range. Several ranges or an unparseable header give `Full`.
pub(crate) fn parse_range(header: &[u8], size: u64) -> RangeResult {
    let Ok(h) = std::str::from_utf8(header) else {
        return RangeResult::Full;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeResult::Full;
    };
    if spec.contains(',') {
        return RangeResult::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeResult::Full;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim().is_empty(), num(a), num(b)) {
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                RangeResult::Unsatisfiable
            } else {
                RangeResult::Partial(size.saturating_sub(suffix), size)
            }
        }
        (false, Some(start), end) => {
            if !b.trim().is_empty() && end.is_none() {
                return RangeResult::Full;
            }
            if let Some(e) = end
                && e < start
            {
                return RangeResult::Full;
            }
            if start >= size {
                return RangeResult::Unsatisfiable;
            }
            let end = end.map_or(size, |e| e.saturating_add(1).min(size));
            RangeResult::Partial(start, end)
        }
        _ => RangeResult::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let c = |h: &str| choose_encoding(Some(h.as_bytes()), true, true);
        assert_eq!(c("gzip, deflate, br"), Variant::Br);
        assert_eq!(c("br;q=0.5, gzip"), Variant::Gzip);
        assert_eq!(c("br;q=0, gzip;q=0"), Variant::Identity);
        assert_eq!(c("*"), Variant::Br);
        assert_eq!(c("identity"), Variant::Identity);
        assert_eq!(c("gzip;q=0.5, identity;q=0.9"), Variant::Identity);
        assert_eq!(c("GZIP"), Variant::Gzip);
        assert_eq!(choose_encoding(Some(b"br"), false, true), Variant::Identity);
        assert_eq!(choose_encoding(None, true, true), Variant::Identity);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(b"bytes=0-9", 100), RangeResult::Partial(0, 10));
        assert_eq!(
            parse_range(b"bytes=90-", 100),
            RangeResult::Partial(90, 100)
        );
        assert_eq!(
            parse_range(b"bytes=-10", 100),
            RangeResult::Partial(90, 100)
        );
        assert_eq!(
            parse_range(b"bytes=-1000", 100),
            RangeResult::Partial(0, 100)
        );
        assert_eq!(
            parse_range(b"bytes=50-1000", 100),
            RangeResult::Partial(50, 100)
        );
        assert_eq!(parse_range(b"bytes=100-", 100), RangeResult::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-1,5-6", 100), RangeResult::Full);
        assert_eq!(parse_range(b"items=0-1", 100), RangeResult::Full);
        assert_eq!(parse_range(b"bytes=5-1", 100), RangeResult::Full);
        assert_eq!(
            parse_range(b"bytes=0-18446744073709551615", 100),
            RangeResult::Partial(0, 100)
        );
        assert_eq!(
            parse_range(b"bytes=0-99999999999999999999", 100),
            RangeResult::Full
        );
    }

    #[test]
    fn conditionals() {
        assert!(none_match(b"\"abc\"", "abc"));
        assert!(none_match(b"W/\"x\", \"abc-br\"", "abc"));
        assert!(!none_match(b"\"abd\"", "abc"));
        assert!(none_match(b"*", "abc"));
    }
}
