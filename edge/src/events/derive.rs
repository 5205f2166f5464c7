//! What the batcher derives from an event's raw header values: the client address
//! (behind trusted proxies), the user-agent class and the referrer's host.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr};

use super::config::Cidr;

/// A user agent's class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UaClass {
    /// A web browser.
    Browser,
    /// A crawler or other bot, with its name.
    Bot(Box<str>),
    /// Anything else (scripts, libraries, no user agent).
    Other,
}

impl UaClass {
    pub(crate) fn bot_name(&self) -> &str {
        match self {
            UaClass::Bot(n) => n,
            _ => "",
        }
    }
}

/// Well-known bots: a lowercase substring and the name reported.
const BOTS: &[(&str, &str)] = &[
    ("googlebot", "Googlebot"),
    ("google-inspectiontool", "Google-InspectionTool"),
    ("adsbot-google", "AdsBot-Google"),
    ("mediapartners-google", "Mediapartners-Google"),
    ("bingbot", "Bingbot"),
    ("applebot", "Applebot"),
    ("duckduckbot", "DuckDuckBot"),
    ("yandexbot", "YandexBot"),
    ("baiduspider", "Baiduspider"),
    ("gptbot", "GPTBot"),
    ("chatgpt-user", "ChatGPT-User"),
    ("oai-searchbot", "OAI-SearchBot"),
    ("claudebot", "ClaudeBot"),
    ("claude-user", "Claude-User"),
    ("perplexitybot", "PerplexityBot"),
    ("ccbot", "CCBot"),
    ("bytespider", "Bytespider"),
    ("amazonbot", "Amazonbot"),
    ("facebookexternalhit", "facebookexternalhit"),
    ("meta-externalagent", "meta-externalagent"),
    ("twitterbot", "Twitterbot"),
    ("linkedinbot", "LinkedInBot"),
    ("slackbot", "Slackbot"),
    ("discordbot", "Discordbot"),
    ("telegrambot", "TelegramBot"),
    ("yahoo! slurp", "Yahoo! Slurp"),
    ("ahrefsbot", "AhrefsBot"),
    ("semrushbot", "SemrushBot"),
    ("mj12bot", "MJ12bot"),
    ("dotbot", "DotBot"),
    ("petalbot", "PetalBot"),
    ("uptimerobot", "UptimeRobot"),
    ("headlesschrome", "HeadlessChrome"),
];

/// Words that mark a bot whose name is not in [`BOTS`].
const BOT_WORDS: &[&str] = &[
    "bot",
    "spider",
    "crawl",
    "slurp",
    "externalhit",
    "headless",
    "fetcher",
    "scanner",
];

/// A keyed, word-at-a-time hasher for the user-agent cache (the cache is bounded and
/// the key random, so crafted user agents cannot make its lookups slow).
#[derive(Clone, Copy)]
pub(crate) struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(26) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        let w = tail_word(chunks.remainder());
        h = (h.rotate_left(26) ^ w ^ (bytes.len() as u64)).wrapping_mul(K);
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// `b` (at most 8 bytes) as a little-endian word, zero-padded: read with at most
/// three loads instead of copied byte by byte into a stack word, whose wider reload
/// right after stalls the CPU (the store cannot be forwarded to it).
#[inline(always)]
pub(crate) fn tail_word(b: &[u8]) -> u64 {
    let n = b.len();
    debug_assert!(n <= 8);
    let u32_at = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[i..i + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    match n {
        0 => 0,
        // The first four bytes and the last four, overlapping below eight.
        4..=8 => u32_at(0) | u32_at(n - 4) << ((n - 4) * 8),
        // The first byte, the middle one and the last, overlapping below three.
        _ => {
            u64::from(b[0])
                | u64::from(b[n / 2]) << (n / 2 * 8)
                | u64::from(b[n - 1]) << ((n - 1) * 8)
        }
    }
}

/// Builds [`WordHasher`]s from a random key.
#[derive(Clone, Copy)]
pub(crate) struct WordHash(u64);

impl WordHash {
    pub(crate) fn new(key: u64) -> WordHash {
        WordHash(key)
    }

    /// The hash of `b` (one write, no length prefix).
    pub(crate) fn bytes(&self, b: &[u8]) -> u64 {
        let mut h = WordHasher(self.0);
        h.write(b);
        h.finish()
    }
}

impl BuildHasher for WordHash {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher(self.0)
    }
}

/// What is known about one user agent: its class and its keyed hash for the visitor
/// hash under the salt of `day`.
pub(crate) struct UaInfo {
    pub class: UaClass,
    pub key: u64,
    day: u64,
}

/// Classifies user agents, remembering recent answers (real traffic repeats a few
/// thousand distinct strings).
pub(crate) struct UaClassifier {
    seen: HashMap<Box<[u8]>, u32, WordHash>,
    infos: Vec<UaInfo>,
    lower: String,
}

const UA_CACHE: usize = 4096;

impl UaClassifier {
    pub(crate) fn new(key: u64) -> UaClassifier {
        UaClassifier {
            seen: HashMap::with_hasher(WordHash(key)),
            infos: Vec::new(),
            lower: String::new(),
        }
    }

    /// The class of `ua` and its visitor key for `day` (`ua_key` computes a new one).
    pub(crate) fn get(
        &mut self,
        ua: &[u8],
        day: u64,
        ua_key: impl FnOnce(&[u8]) -> u64,
    ) -> &UaInfo {
        let i = match self.seen.get(ua) {
            Some(&i) => i as usize,
            None => {
                if self.infos.len() >= UA_CACHE {
                    self.seen.clear();
                    self.infos.clear();
                }
                let class = if ua.is_empty() {
                    UaClass::Other
                } else {
                    self.classify_new(ua)
                };
                self.infos.push(UaInfo {
                    class,
                    key: ua_key(ua),
                    day,
                });
                let i = self.infos.len() - 1;
                self.seen.insert(ua.into(), i as u32);
                return &self.infos[i];
            }
        };
        let info = &mut self.infos[i];
        if info.day != day {
            info.key = ua_key(ua);
            info.day = day;
        }
        info
    }

    #[cfg(test)]
    fn classify(&mut self, ua: &[u8]) -> UaClass {
        self.get(ua, 0, |_| 0).class.clone()
    }

    fn classify_new(&mut self, ua: &[u8]) -> UaClass {
        self.lower.clear();
        self.lower
            .extend(ua.iter().take(512).map(|b| b.to_ascii_lowercase() as char));
        let l = self.lower.as_str();
        if BOT_WORDS.iter().any(|w| l.contains(w)) {
            if let Some((_, name)) = BOTS.iter().find(|(k, _)| l.contains(k)) {
                return UaClass::Bot((*name).into());
            }
            return UaClass::Bot(bot_token(ua).into());
        }
        if l.starts_with("mozilla/")
            && [
                "gecko", "chrome/", "safari/", "firefox/", "edg/", "opr/", "msie", "trident/",
            ]
            .iter()
            .any(|w| l.contains(w))
        {
            return UaClass::Browser;
        }
        UaClass::Other
    }
}

/// A bot's name from its user agent: the token that names it (`+http...` links and
/// the `Mozilla/5.0 (compatible; ...)` wrapper skipped), at most 40 characters.
fn bot_token(ua: &[u8]) -> String {
    let s = String::from_utf8_lossy(ua);
    let inner = s
        .split_once("compatible;")
        .map(|(_, r)| r)
        .unwrap_or(&s)
        .trim_start();
    let name: String = inner
        .split(['/', ';', ' ', '(', ')'])
        .find(|t| !t.is_empty() && !t.eq_ignore_ascii_case("mozilla"))
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect();
    if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}

/// The host of a `Referer` URL, without user info or port (case kept); empty when
/// there is none. One scalar pass: referrers are short.
pub(crate) fn referrer_host(r: &[u8]) -> &[u8] {
    let Some(i) = r.iter().position(|&b| b == b':') else {
        return b"";
    };
    if r.get(i + 1..i + 3) != Some(b"//") {
        return b"";
    }
    let rest = &r[i + 3..];
    // The authority ends at the path, query or fragment; the host starts after the
    // last `@` in it.
    let mut start = 0;
    let mut end = rest.len();
    for (j, &b) in rest.iter().enumerate() {
        match b {
            b'/' | b'?' | b'#' => {
                end = j;
                break;
            }
            b'@' => start = j + 1,
            _ => {}
        }
    }
    let auth = &rest[start..end];
    if auth.first() == Some(&b'[') {
        // [v6]:port
        return match auth.iter().position(|&b| b == b']') {
            Some(e) => &auth[..=e],
            None => b"",
        };
    }
    match auth.iter().position(|&b| b == b':') {
        Some(c) => &auth[..c],
        None => auth,
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case
/// the nearest untrusted hop of `X-Forwarded-For` (or, without it, `Forwarded`'s
/// `for=`); when every hop is trusted, the farthest one.
pub(crate) fn client_ip(
    peer: IpAddr,
    xff: Option<&[u8]>,
    fwd: Option<&[u8]>,
    trusted: &[Cidr],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| match ip {
        // Only the four bytes of an IPv4 address are read (see `Cidr::contains_v4`).
        IpAddr::V4(a) => trusted.iter().any(|c| c.contains_v4(a)),
        IpAddr::V6(_) => trusted.iter().any(|c| c.contains(ip)),
    };
    let peer = peer.to_canonical();
    if !is_trusted(peer) {
        return peer;
    }
    // Right to left: the nearest hop first; no allocation.
    let mut last = peer;
    match (xff, fwd) {
        (Some(x), _) => {
            // The usual cases first: the header is one plain IPv4 address (one proxy
            // in front), or its nearest hop is, and it is not a proxy's.
            let nearest = parse_v4(x).or_else(|| {
                let near = match memchr::memrchr(b',', x) {
                    Some(i) => &x[i + 1..],
                    None => x,
                };
                parse_v4(near.trim_ascii())
            });
            if let Some(a) = nearest
                && !trusted.iter().any(|c| c.contains_v4(a))
            {
                return IpAddr::V4(a);
            }
            for hop in x.rsplit(|b| *b == b',') {
                if let Some(ip) = parse_hop(hop.trim_ascii()) {
                    if !is_trusted(ip) {
                        return ip;
                    }
                    last = ip;
                }
            }
        }
        (None, Some(f)) => {
            for elem in f.rsplit(|b| *b == b',') {
                let ip = split_hops(elem, b';').find_map(|pair| {
                    let (k, v) = split_once(pair, b'=')?;
                    if k.eq_ignore_ascii_case(b"for") {
                        parse_hop(v)
                    } else {
                        None
                    }
                });
                if let Some(ip) = ip {
                    if !is_trusted(ip) {
                        return ip;
                    }
                    last = ip;
                }
            }
        }
        (None, None) => {}
    }
    last
}

fn split_hops(v: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    v.split(move |b| *b == sep).map(|s| s.trim_ascii())
}

fn split_once(v: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = v.iter().position(|b| *b == sep)?;
    Some((v[..i].trim_ascii(), v[i + 1..].trim_ascii()))
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`, `"[...]"`.
fn parse_hop(h: &[u8]) -> Option<IpAddr> {
    // Most hops are plain IPv4 addresses: read them without the general parser.
    if let Some(a) = parse_v4(h) {
        return Some(IpAddr::V4(a));
    }
    let s = std::str::from_utf8(h).ok()?.trim();
    let s = if s.starts_with('"') {
        s.trim_matches('"')
    } else {
        s
    };
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        return rest[..end].parse::<IpAddr>().ok().map(|i| i.to_canonical());
    }
    let (a, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    a.parse::<IpAddr>().ok().map(|i| i.to_canonical())
}

/// A dotted-quad IPv4 address exactly as std's parser accepts it (four decimal
/// octets of at most three digits, no leading zero, at most 255), else `None`.
fn parse_v4(h: &[u8]) -> Option<Ipv4Addr> {
    // The octets so far, in a register (bytes stored one by one and reloaded as a
    // word stall the CPU, as in [`tail_word`]).
    let mut bits = 0u32;
    let mut n = 0usize;
    let mut val = 0u32;
    let mut digits = 0u32;
    for &b in h {
        if b.is_ascii_digit() {
            if digits == 1 && val == 0 {
                return None; // leading zero
            }
            val = val * 10 + u32::from(b - b'0');
            digits += 1;
            if digits > 3 {
                return None;
            }
        } else if b == b'.' && digits > 0 && n < 3 {
            bits = bits << 8 | u32::from(u8::try_from(val).ok()?);
            n += 1;
            val = 0;
            digits = 0;
        } else {
            return None;
        }
    }
    if n != 3 || digits == 0 {
        return None;
    }
    bits = bits << 8 | u32::from(u8::try_from(val).ok()?);
    Some(Ipv4Addr::from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_words_are_the_bytes_zero_padded() {
        let b = b"\x01\x02\x03\x04\x05\x06\x07\x08";
        for n in 0..=8 {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&b[..n]);
            assert_eq!(tail_word(&b[..n]), u64::from_le_bytes(w), "{n} bytes");
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn user_agents() {
        let mut c = UaClassifier::new(7);
        let chrome = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
        assert_eq!(c.classify(chrome), UaClass::Browser);
        assert_eq!(c.classify(chrome), UaClass::Browser);
        let gb = b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert_eq!(c.classify(gb), UaClass::Bot("Googlebot".into()));
        let odd = b"Mozilla/5.0 (compatible; WeirdoBot/0.1; +https://weirdo.example)";
        assert_eq!(c.classify(odd), UaClass::Bot("WeirdoBot".into()));
        assert_eq!(c.classify(b"curl/8.5.0"), UaClass::Other);
        assert_eq!(c.classify(b""), UaClass::Other);
        assert_eq!(
            c.classify(b"Mozilla/5.0 (X11; rv:133.0) Gecko/20100101 Firefox/133.0"),
            UaClass::Browser
        );
    }

    #[test]
    fn referrers() {
        assert_eq!(
            referrer_host(b"https://www.Google.com/search?q=x"),
            b"www.Google.com"
        );
        assert_eq!(
            referrer_host(b"http://user:pw@example.org:8080/a"),
            b"example.org"
        );
        assert_eq!(
            referrer_host(b"https://[2001:db8::1]:443/"),
            b"[2001:db8::1]"
        );
        assert_eq!(referrer_host(b"android-app://com.x"), b"com.x");
        assert_eq!(referrer_host(b"/relative"), b"");
        assert_eq!(referrer_host(b"https://a.example#x@y"), b"a.example");
        assert_eq!(referrer_host(b"https://u@b.example?x"), b"b.example");
    }

    #[test]
    fn the_ipv4_fast_path_agrees_with_std() {
        for s in [
            "1.2.3.4",
            "255.255.255.255",
            "0.0.0.0",
            "198.51.100.250",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "1.2.3.",
            ".1.2.3",
            "1.2.3.1000",
            "1.2.3.4 ",
            "",
            "a.b.c.d",
            "10.0.0.010",
        ] {
            assert_eq!(parse_v4(s.as_bytes()), s.parse::<Ipv4Addr>().ok(), "{s:?}");
        }
    }

    #[test]
    fn forwarded_only_from_trusted_peers() {
        let trusted = vec![Cidr::parse("10.0.0.0/8").unwrap()];
        let xff = Some(&b"203.0.113.9, 198.51.100.1, 10.0.0.5"[..]);
        // Untrusted peer: its headers are ignored.
        assert_eq!(
            client_ip(ip("192.0.2.1"), xff, None, &trusted),
            ip("192.0.2.1")
        );
        // Trusted: the nearest untrusted hop (a client can prepend anything).
        assert_eq!(
            client_ip(ip("10.1.1.1"), xff, None, &trusted),
            ip("198.51.100.1")
        );
        let fwd = Some(&b"for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\""[..]);
        assert_eq!(
            client_ip(ip("10.1.1.1"), None, fwd, &trusted),
            ip("2001:db8:cafe::17")
        );
        // Only trusted hops: the farthest.
        assert_eq!(
            client_ip(ip("10.1.1.1"), Some(b"10.2.2.2"), None, &trusted),
            ip("10.2.2.2")
        );
        // Garbage: the peer.
        assert_eq!(
            client_ip(ip("10.1.1.1"), Some(b"nonsense"), None, &trusted),
            ip("10.1.1.1")
        );
        assert_eq!(client_ip(ip("10.1.1.1"), None, None, &[]), ip("10.1.1.1"));
    }
}
