//! Turns raw events into NDJSON lines (schema version [`SCHEMA_VERSION`], see
//! docs/events.md) with a hand-written writer appending to one buffer: no
//! intermediate strings, no serde. Assigns each event its id: a random per-process
//! prefix and a sequence number, so ids are unique across nodes and restarts and
//! increase in emission order within a process.

use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::SCHEMA_VERSION;
use super::config::Cidr;
use super::derive::{UaClass, UaClassifier, WordHash, client_ip, referrer_host};
use super::record::RawEvent;
use super::visitor::Visitor;

/// Longest path, host, content type or referrer host written (longer ones are cut).
const MAX_FIELD: usize = 1024;

/// The batcher's encoding state.
pub(crate) struct Encoder {
    /// `{"v":1,"id":"` and the id's random prefix.
    head: Vec<u8>,
    seq: u64,
    /// `,"node":<node>,"site":"`.
    node: Vec<u8>,
    trusted: Vec<Cidr>,
    /// The last `ts` written and its digits (consecutive events mostly share it).
    last_ts: (u64, [u8; 20], usize),
    /// `,"proto":"…","tls":"…","cache":"…","ctype":` for each (version, tls, cache).
    flags: Vec<Box<[u8]>>,
    visitor: Visitor,
    ua: UaClassifier,
    referrers: RefCache,
}

/// Recent `Referer` values and their encoded `"ref"` (a JSON string of the lowercased
/// host), in a small direct-mapped table: real traffic repeats a few referrers (search
/// engines, social sites), so most events copy a cached answer.
struct RefCache {
    hash: WordHash,
    /// (referrer, encoded host)
    slots: Vec<RefSlot>,
}

type RefSlot = (Box<[u8]>, Box<[u8]>);

/// Slots of [`RefCache`] (a power of two).
const REF_SLOTS: usize = 256;
/// Longer referrers are not cached.
const REF_CACHED_MAX: usize = 256;

impl RefCache {
    fn new(key: u64) -> RefCache {
        RefCache {
            hash: WordHash::new(key),
            slots: vec![(Box::default(), Box::from(&b"\"\""[..])); REF_SLOTS],
        }
    }

    /// Appends the JSON string of `referer`'s host to `out`.
    fn write(&mut self, out: &mut Vec<u8>, referer: &[u8]) {
        if referer.is_empty() || referer.len() > REF_CACHED_MAX {
            lower_string(out, referrer_host(referer));
            return;
        }
        let i = self.hash.bytes(referer) as usize & (REF_SLOTS - 1);
        let slot = &mut self.slots[i];
        if *slot.0 != *referer {
            let mut v = Vec::new();
            lower_string(&mut v, referrer_host(referer));
            *slot = (referer.into(), v.into());
        }
        out.extend_from_slice(&slot.1);
    }
}

/// A wall-clock reading taken once per batch: an event's time is this minus how long
/// ago its request started, so requests never read the wall clock.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    wall_ms: u64,
    /// Nanoseconds since the record buffers' base instant.
    now_ns: u64,
}

impl Clock {
    pub(crate) fn now(base: Instant) -> Clock {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let d = base.elapsed();
        Clock {
            wall_ms,
            now_ns: d.as_secs() * 1_000_000_000 + u64::from(d.subsec_nanos()),
        }
    }

    fn ms_of(&self, start_ns: u64) -> u64 {
        self.wall_ms
            .saturating_sub(self.now_ns.saturating_sub(start_ns) / 1_000_000)
    }

    pub(crate) fn wall_ms(&self) -> u64 {
        self.wall_ms
    }
}

impl Encoder {
    pub(crate) fn new(node: &str, trusted: Vec<Cidr>, visitor: Visitor, prefix: u64) -> Encoder {
        let mut p = [0u8; 16];
        hex_u64(&mut p, prefix);
        let mut head = format!("{{\"v\":{SCHEMA_VERSION},\"id\":\"").into_bytes();
        head.extend_from_slice(&p);
        let mut n = b",\"node\":".to_vec();
        string(&mut n, node.as_bytes());
        n.extend_from_slice(b",\"site\":\"");
        let mut flags = Vec::with_capacity(FLAG_COMBOS);
        for i in 0..FLAG_COMBOS {
            let (version, tls, cache) = (i / 9, i / 3 % 3, i % 3);
            let proto = [
                "HTTP/0.9", "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3", "other",
            ][version];
            let tls = ["", "TLSv1.2", "TLSv1.3"][tls];
            let cache = ["none", "hit", "miss"][cache];
            let text = format!(
                ",\"proto\":\"{proto}\",\"tls\":\"{tls}\",\"cache\":\"{cache}\",\"ctype\":"
            );
            flags.push(text.into_bytes().into_boxed_slice());
        }
        Encoder {
            head,
            seq: 0,
            node: n,
            trusted,
            last_ts: (u64::MAX, [0; 20], 0),
            flags,
            visitor,
            ua: UaClassifier::new(prefix.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15),
            referrers: RefCache::new(prefix.rotate_left(41) ^ 0x2545_f491_4f6c_dd1d),
        }
    }

    /// Appends one event as a JSON line to `out`; returns where in `out` the site's
    /// name (`ev.site`, written as it is) starts.
    pub(crate) fn encode(&mut self, ev: &RawEvent<'_>, clock: &Clock, out: &mut Vec<u8>) -> usize {
        self.seq += 1;
        let ts = clock.ms_of(ev.start_ns);
        let day = ts / 86_400_000;
        let site = ev.site;
        let ua = ev.user_agent;
        let ip: IpAddr = if self.trusted.is_empty() {
            ev.peer
        } else {
            client_ip(
                ev.peer,
                Some(ev.forwarded_for).filter(|v| !v.is_empty()),
                Some(ev.forwarded).filter(|v| !v.is_empty()),
                &self.trusted,
            )
        };
        let visitor = &mut self.visitor;
        let info = self.ua.get(ua, day, |u| visitor.ua_key(day, u));
        let class = &info.class;
        let visitor = self.visitor.hash(day, site, ip, info.key);

        out.reserve(256 + ev.path.len() + ev.host.len() + ev.content_type.len());
        // `{"v":1,"id":"<prefix>`, then the sequence.
        out.extend_from_slice(&self.head);
        let mut q = [0u8; 16];
        hex_u64(&mut q, self.seq);
        out.extend_from_slice(&q);
        out.extend_from_slice(b"\",\"ts\":");
        if self.last_ts.0 != ts {
            let mut b = itoa::Buffer::new();
            let digits = b.format(ts).as_bytes();
            self.last_ts.1[..digits.len()].copy_from_slice(digits);
            self.last_ts.0 = ts;
            self.last_ts.2 = digits.len();
        }
        out.extend_from_slice(&self.last_ts.1[..self.last_ts.2]);
        // `,"node":"<node>","site":"`
        out.extend_from_slice(&self.node);
        // Site names are [a-z0-9-] (checked when a site is created).
        let site_at = out.len();
        out.extend_from_slice(site);
        out.push(b'"');
        out.extend_from_slice(b",\"host\":");
        string(out, ev.host);
        out.extend_from_slice(b",\"path\":");
        string(out, ev.path);
        out.extend_from_slice(b",\"status\":");
        status(out, ev.status);
        out.extend_from_slice(b",\"bytes\":");
        uint(out, ev.bytes);
        out.extend_from_slice(b",\"dur_us\":");
        uint(out, ev.dur_us);
        let version = usize::from(ev.version.min(5));
        let tls = usize::from(if ev.tls > 2 { 0 } else { ev.tls });
        let cache = usize::from(if ev.cache > 2 { 0 } else { ev.cache });
        out.extend_from_slice(&self.flags[version * 9 + tls * 3 + cache]);
        string(out, ev.content_type);
        out.extend_from_slice(b",\"ref\":");
        self.referrers.write(out, ev.referer);
        out.extend_from_slice(match class {
            UaClass::Browser => b",\"ua\":\"browser\",\"bot\":" as &[u8],
            UaClass::Bot(_) => b",\"ua\":\"bot\",\"bot\":",
            UaClass::Other => b",\"ua\":\"other\",\"bot\":",
        });
        let bot = class.bot_name().as_bytes();
        if bot.is_empty() {
            out.extend_from_slice(b"\"\"");
        } else {
            string(out, bot);
        }
        out.extend_from_slice(b",\"visitor\":\"");
        let mut v = [0u8; 16];
        hex_u64(&mut v, visitor);
        out.extend_from_slice(&v);
        out.extend_from_slice(b"\"}\n");
        site_at
    }
}

/// The two hex digits of every byte.
const HEX2: [[u8; 2]; 256] = {
    let hex = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [hex[i >> 4], hex[i & 15]];
        i += 1;
    }
    t
};

fn hex_u64(out: &mut [u8; 16], v: u64) {
    for (pair, b) in out.chunks_exact_mut(2).zip(v.to_be_bytes()) {
        pair.copy_from_slice(&HEX2[usize::from(b)]);
    }
}

/// Combinations of version (6), TLS (3) and cache use (3) in [`Encoder::flags`].
const FLAG_COMBOS: usize = 6 * 3 * 3;

/// A status code's digits (always three for a real one).
fn status(out: &mut Vec<u8>, s: u16) {
    if (100..1000).contains(&s) {
        out.extend_from_slice(&[
            b'0' + (s / 100) as u8,
            b'0' + (s / 10 % 10) as u8,
            b'0' + (s % 10) as u8,
        ]);
    } else {
        uint(out, u64::from(s));
    }
}

fn uint(out: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// A JSON string of `b` lowercased (ASCII), in one pass over the copied bytes.
fn lower_string(out: &mut Vec<u8>, b: &[u8]) {
    let b = &b[..b.len().min(MAX_FIELD)];
    out.push(b'"');
    let start = out.len();
    out.extend_from_slice(b);
    let mut plain = true;
    for c in &mut out[start..] {
        if c.is_ascii_uppercase() {
            *c += b'a' - b'A';
        } else if *c < 0x20 || *c >= 0x7f || *c == b'"' || *c == b'\\' {
            plain = false;
        }
    }
    if !plain {
        out.truncate(start);
        escape(out, &b.to_ascii_lowercase());
    }
    out.push(b'"');
}

/// Whether `b` is printable ASCII without `"` or `\\` (eight bytes at a time; a false
/// `false` only costs the escaping path).
fn plain(b: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let bad = |c: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        (x & HI)
            | (x.wrapping_sub(LO * 0x20) & !x & HI)
            | zero(x ^ (LO * 0x22))
            | zero(x ^ (LO * 0x5c))
            | zero(x ^ (LO * 0x7f))
            != 0
    };
    if b.len() < 8 {
        return b
            .iter()
            .all(|&c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\');
    }
    let mut chunks = b.chunks_exact(8);
    if chunks.any(bad) {
        return false;
    }
    // The tail: the last eight bytes, overlapping what was checked.
    chunks.remainder().is_empty() || !bad(&b[b.len() - 8..])
}

/// A JSON string of `b` (cut to [`MAX_FIELD`] bytes); invalid UTF-8 becomes U+FFFD.
fn string(out: &mut Vec<u8>, b: &[u8]) {
    let b = &b[..b.len().min(MAX_FIELD)];
    out.push(b'"');
    if plain(b) {
        out.extend_from_slice(b);
    } else {
        escape(out, b);
    }
    out.push(b'"');
}

#[cold]
fn escape(out: &mut Vec<u8>, b: &[u8]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A request of site `alpha` from 192.0.2.1 answered 200, with these values.
    fn served<'a>(
        host: &'a [u8],
        path: &'a [u8],
        content_type: &'a [u8],
        referer: &'a [u8],
        user_agent: &'a [u8],
    ) -> RawEvent<'a> {
        RawEvent {
            start_ns: 0,
            dur_us: 1,
            status: 200,
            bytes: 0,
            version: 2,
            tls: 0,
            cache: 0,
            peer: "192.0.2.1".parse().unwrap(),
            site: b"alpha",
            host,
            path,
            content_type,
            referer,
            user_agent,
            forwarded_for: b"",
            forwarded: b"",
        }
    }

    #[test]
    fn strings_are_valid_json() {
        let mut out = Vec::new();
        string(&mut out, b"a\"b\\c\n\x01\xff\xc3\xa9");
        let v: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, "a\"b\\c\n\u{1}\u{fffd}é");
    }

    #[test]
    fn hostile_request_values_stay_valid_json() {
        let dir = tempfile::tempdir().unwrap();
        let base = Instant::now();
        let clock = Clock::now(base);
        let visitor = Visitor::open(dir.path().join("salt"), clock.wall_ms() / 86_400_000).unwrap();
        let mut enc = Encoder::new("n", vec![], visitor, 1);
        let path = b"/a\"b\\c\n\r\t\x00\x1f\x7f\xff\xfe/\xc3\xa9/\xe2\x82";
        let ua = b"Mozilla/5.0 \"}\n{\"v\":2\\ \x01\xc0\x80 (compatible; Evil\"Bot/1.0)";
        let referer = b"https://EV\"IL\\.Example\x02\xff/x";
        let host = b"h\"o\\st\n";
        let ctype = b"text/html\"\x7f";
        let ev = served(host, path, ctype, referer, ua);
        let mut out = Vec::new();
        // Twice: the second time the referrer comes from the cache.
        enc.encode(&ev, &clock, &mut out);
        enc.encode(&ev, &clock, &mut out);
        let text = String::from_utf8(out).expect("lines are UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one line per event: {text}");
        for line in lines {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            assert_eq!(e["v"], 1);
            assert_eq!(e["path"], lossy(path));
            assert_eq!(e["host"], lossy(host));
            assert_eq!(e["ctype"], lossy(ctype));
            assert_eq!(
                e["ref"],
                lossy(&referrer_host(referer).to_ascii_lowercase())
            );
            assert_eq!(e["ua"], "bot");
            assert_eq!(
                e.as_object().unwrap().len(),
                18,
                "no injected field: {line}"
            );
        }
    }

    #[test]
    fn escaped_values_longer_than_the_reserved_room_stay_whole() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::now(Instant::now());
        let visitor = Visitor::open(dir.path().join("salt"), clock.wall_ms() / 86_400_000).unwrap();
        let mut enc = Encoder::new("n", vec![], visitor, 1);
        // Each control byte becomes six (`\u0001`), each quote two: past what
        // `encode` reserves for the line.
        let path = vec![1u8; MAX_FIELD];
        let host = vec![b'"'; MAX_FIELD];
        let ev = served(&host, &path, b"text/html", b"", b"curl/8");
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(b"before\n");
        enc.encode(&ev, &clock, &mut out);
        let text = String::from_utf8(out).unwrap();
        let (first, line) = text.split_once('\n').unwrap();
        assert_eq!(first, "before");
        assert!(line.len() > 6 * MAX_FIELD + 2 * MAX_FIELD, "{}", line.len());
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["path"], "\u{1}".repeat(MAX_FIELD));
        assert_eq!(e["host"], "\"".repeat(MAX_FIELD));
        assert_eq!(e["visitor"].as_str().unwrap().len(), 16);
    }

    #[test]
    fn plain_detection() {
        assert!(plain(b"/some/long/path/name.html"));
        assert!(plain(b""));
        assert!(plain(b"/a.b"));
        assert!(plain(b"12345678"));
        for bad in [
            &b"a\"b"[..],
            b"ab\\",
            b"\x1f",
            b"12345678\xff",
            b"1234567\n",
            &b"/some/long/pa\"h/x"[..],
            b"/some/long/pa\\h",
            b"0123456789\x01",
            b"\x7f",
            b"\xc3\xa9aaaaaaaaaaa",
        ] {
            assert!(!plain(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_event_line() {
        let dir = tempfile::tempdir().unwrap();
        let base = Instant::now();
        let clock = Clock::now(base);
        let day = clock.wall_ms() / 86_400_000;
        let visitor = Visitor::open(dir.path().join("salt"), day).unwrap();
        let mut enc = Encoder::new("node-1", vec![], visitor, 0xabc);
        let ev = || RawEvent {
            start_ns: 0,
            dur_us: 1234,
            status: 200,
            bytes: 42,
            version: 2,
            tls: 2,
            cache: 1,
            peer: "198.51.100.23".parse().unwrap(),
            site: b"alpha",
            host: b"alpha.test",
            path: b"/a%20b/",
            content_type: b"text/html; charset=utf-8",
            referer: b"https://News.Example/x?y",
            user_agent: b"Mozilla/5.0 (compatible; bingbot/2.0)",
            forwarded_for: b"",
            forwarded: b"",
        };
        let mut out = Vec::new();
        enc.encode(&ev(), &Clock::now(base), &mut out);
        enc.encode(&ev(), &Clock::now(base), &mut out);
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
        // Referrers from the cache and past it agree; a new one replaces a slot.
        let mut out = Vec::new();
        for r in [
            &b"https://News.Example/x?y"[..],
            b"https://news.example/other",
            b"http://A.b/",
            b"",
            b"https://News.Example/x?y",
        ] {
            enc.referrers.write(&mut out, r);
            out.push(b' ');
        }
        let long = format!("https://Long.Example/{}", "x".repeat(300));
        enc.referrers.write(&mut out, long.as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"news.example\" \"news.example\" \"a.b\" \"\" \"news.example\" \"long.example\""
        );
    }
}
