//! Turns raw events into NDJSON lines (schema version [`SCHEMA_VERSION`], see
//! docs/events.md) with a hand-written writer appending to one buffer: no
//! intermediate strings, no serde. Assigns each event its id: a random per-process
//! prefix and a sequence number, so ids are unique across nodes and restarts and
//! increase in emission order within a process.

use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::Version;

use super::config::Cidr;
use super::derive::{UaClassifier, client_ip};
use super::visitor::Visitor;
use super::{CacheUse, RawEvent, SCHEMA_VERSION};

/// Longest path, host, content type or referrer host written (longer ones are cut).
const MAX_FIELD: usize = 1024;

/// The batcher's encoding state.
pub(crate) struct Encoder {
    prefix: [u8; 16],
    seq: u64,
    node: Vec<u8>,
    trusted: Vec<Cidr>,
    visitor: Visitor,
    ua: UaClassifier,
}

/// A wall-clock reading taken once per batch: an event's time is this minus how long
/// ago its request started, so requests never read the wall clock.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    wall_ms: u64,
    mono: Instant,
}

impl Clock {
    pub(crate) fn now() -> Clock {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            wall_ms,
            mono: Instant::now(),
        }
    }

    fn ms_of(&self, t: Instant) -> u64 {
        let ago = self.mono.saturating_duration_since(t).as_millis() as u64;
        self.wall_ms.saturating_sub(ago)
    }

    pub(crate) fn wall_ms(&self) -> u64 {
        self.wall_ms
    }
}

impl Encoder {
    pub(crate) fn new(node: &str, trusted: Vec<Cidr>, visitor: Visitor, prefix: u64) -> Encoder {
        let mut p = [0u8; 16];
        hex_u64(&mut p, prefix);
        let mut n = Vec::new();
        string(&mut n, node.as_bytes());
        Encoder {
            prefix: p,
            seq: 0,
            node: n,
            trusted,
            visitor,
            ua: UaClassifier::default(),
        }
    }

    /// Appends one event as a JSON line to `out`.
    pub(crate) fn encode(&mut self, ev: RawEvent, clock: &Clock, out: &mut Vec<u8>) {
        self.seq += 1;
        let ts = clock.ms_of(ev.start);
        let day = ts / 86_400_000;
        let site: &str = ev.site.as_deref().unwrap_or("");
        let ua = ev.user_agent.as_bytes();
        let class = self.ua.classify(ua);
        let ip: IpAddr = client_ip(
            ev.peer,
            ev.forwarded_for.as_deref(),
            ev.forwarded.as_deref(),
            &self.trusted,
        );
        let visitor = self.visitor.hash(day, site, ip, ua);

        out.extend_from_slice(b"{\"v\":");
        uint(out, u64::from(SCHEMA_VERSION));
        out.extend_from_slice(b",\"id\":\"");
        out.extend_from_slice(&self.prefix);
        let mut s = [0u8; 16];
        hex_u64(&mut s, self.seq);
        out.extend_from_slice(&s);
        out.extend_from_slice(b"\",\"ts\":");
        uint(out, ts);
        out.extend_from_slice(b",\"node\":");
        out.extend_from_slice(&self.node);
        out.extend_from_slice(b",\"site\":");
        string(out, site.as_bytes());
        out.extend_from_slice(b",\"host\":");
        string(out, ev.host.as_bytes());
        out.extend_from_slice(b",\"path\":");
        string(out, ev.path.as_bytes());
        out.extend_from_slice(b",\"status\":");
        uint(out, u64::from(ev.status));
        out.extend_from_slice(b",\"bytes\":");
        uint(out, ev.bytes);
        out.extend_from_slice(b",\"dur_us\":");
        uint(out, ev.duration.as_micros() as u64);
        out.extend_from_slice(b",\"proto\":\"");
        out.extend_from_slice(match ev.version {
            Version::HTTP_09 => b"HTTP/0.9",
            Version::HTTP_10 => b"HTTP/1.0",
            Version::HTTP_11 => b"HTTP/1.1",
            Version::HTTP_2 => b"HTTP/2",
            Version::HTTP_3 => b"HTTP/3",
            _ => b"other",
        });
        out.extend_from_slice(b"\",\"tls\":\"");
        out.extend_from_slice(ev.tls.map(|t| t.as_str()).unwrap_or("").as_bytes());
        out.extend_from_slice(b"\",\"cache\":\"");
        out.extend_from_slice(match ev.cache {
            CacheUse::None => b"none",
            CacheUse::Hit => b"hit",
            CacheUse::Miss => b"miss",
        });
        out.extend_from_slice(b"\",\"ctype\":");
        string(
            out,
            ev.content_type
                .as_ref()
                .map(|v| v.as_bytes())
                .unwrap_or(b""),
        );
        out.extend_from_slice(b",\"ref\":");
        lower_string(out, ev.referer.as_bytes());
        out.extend_from_slice(b",\"ua\":\"");
        out.extend_from_slice(class.as_str().as_bytes());
        out.extend_from_slice(b"\",\"bot\":");
        string(out, class.bot_name().as_bytes());
        out.extend_from_slice(b",\"visitor\":\"");
        let mut v = [0u8; 16];
        hex_u64(&mut v, visitor);
        out.extend_from_slice(&v);
        out.extend_from_slice(b"\"}\n");
    }
}

fn hex_u64(out: &mut [u8; 16], v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

fn uint(out: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

fn lower_string(out: &mut Vec<u8>, b: &[u8]) {
    if b.iter().any(u8::is_ascii_uppercase) {
        string(out, &b.to_ascii_lowercase());
    } else {
        string(out, b);
    }
}

/// A JSON string of `b` (cut to [`MAX_FIELD`] bytes); invalid UTF-8 becomes U+FFFD.
fn string(out: &mut Vec<u8>, b: &[u8]) {
    let b = &b[..b.len().min(MAX_FIELD)];
    out.push(b'"');
    if b.iter()
        .all(|c| (0x20..0x7f).contains(c) && *c != b'"' && *c != b'\\')
    {
        out.extend_from_slice(b);
    } else {
        let s = String::from_utf8_lossy(b);
        for c in s.chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = std::io::Write::write_fmt(out, format_args!("\\u{:04x}", c as u32));
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::TlsVersion;
    use crate::events::Small;
    use http::HeaderValue;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn strings_are_valid_json() {
        let mut out = Vec::new();
        string(&mut out, b"a\"b\\c\n\x01\xff\xc3\xa9");
        let v: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, "a\"b\\c\n\u{1}\u{fffd}é");
    }

    #[test]
    fn an_event_line() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::now();
        let day = clock.wall_ms() / 86_400_000;
        let visitor = Visitor::open(dir.path().join("salt"), day).unwrap();
        let mut enc = Encoder::new("node-1", vec![], visitor, 0xabc);
        let ev = || RawEvent {
            start: Instant::now(),
            duration: Duration::from_micros(1234),
            site: Some(Arc::from("alpha")),
            path: Small::new(b"/a%20b/"),
            host: Small::new(b"alpha.test"),
            status: 200,
            bytes: 42,
            version: Version::HTTP_11,
            tls: Some(TlsVersion::Tls13),
            cache: CacheUse::Hit,
            content_type: Some(HeaderValue::from_static("text/html; charset=utf-8")),
            referer: Small::new(b"News.Example"),
            user_agent: Small::new(b"Mozilla/5.0 (compatible; bingbot/2.0)"),
            peer: "198.51.100.23".parse().unwrap(),
            forwarded_for: None,
            forwarded: None,
        };
        let mut out = Vec::new();
        enc.encode(ev(), &Clock::now(), &mut out);
        enc.encode(ev(), &Clock::now(), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("198.51.100.23"));
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let e = &lines[0];
        assert_eq!(e["v"], 1);
        assert_eq!(e["id"], "0000000000000abc0000000000000001");
        assert_eq!(lines[1]["id"], "0000000000000abc0000000000000002");
        assert_eq!(e["node"], "node-1");
        assert_eq!(e["site"], "alpha");
        assert_eq!(e["host"], "alpha.test");
        assert_eq!(e["path"], "/a%20b/");
        assert_eq!(e["status"], 200);
        assert_eq!(e["bytes"], 42);
        assert_eq!(e["dur_us"], 1234);
        assert_eq!(e["proto"], "HTTP/1.1");
        assert_eq!(e["tls"], "TLSv1.3");
        assert_eq!(e["cache"], "hit");
        assert_eq!(e["ctype"], "text/html; charset=utf-8");
        assert_eq!(e["ref"], "news.example");
        assert_eq!(e["ua"], "bot");
        assert_eq!(e["bot"], "Bingbot");
        assert_eq!(e["visitor"].as_str().unwrap().len(), 16);
        assert_eq!(e["visitor"], lines[1]["visitor"]);
        let ts = e["ts"].as_u64().unwrap();
        assert!(ts.abs_diff(clock.wall_ms()) < 5_000);
    }
}
