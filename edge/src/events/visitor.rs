//! The cookieless visitor hash: SipHash-1-3 keyed with a random 128-bit salt of the
//! day (UTC) over site, client address and the user agent's own keyed hash (computed
//! once per distinct user agent and day, and cached with its class). The salt is kept in
//! `<events dir>/salt` (mode 0600) so a restart keeps the day's hashes stable; at the
//! first event of a new day it is replaced by a fresh random one and the old one is
//! overwritten, so hashes of different days cannot be linked. Client addresses are
//! hashed here, in memory, and never written anywhere.

use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;

use super::derive::tail_word;

/// The current salt and the day it belongs to.
pub(crate) struct Visitor {
    path: PathBuf,
    day: u64,
    salt: [u8; 16],
}

/// Random bytes from the kernel.
pub(crate) fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

impl Visitor {
    /// Loads today's salt from `path`, or makes one.
    pub(crate) fn open(path: PathBuf, today: u64) -> std::io::Result<Visitor> {
        let mut v = Visitor {
            path,
            day: u64::MAX,
            salt: [0; 16],
        };
        if let Ok(text) = std::fs::read_to_string(&v.path)
            && let Some((day, hex)) = text.trim().split_once(' ')
            && day.parse() == Ok(today)
            && let Some(salt) = unhex(hex)
        {
            v.day = today;
            v.salt = salt;
        } else {
            v.rotate(today)?;
        }
        Ok(v)
    }

    fn rotate(&mut self, today: u64) -> std::io::Result<()> {
        self.salt = random()?;
        self.day = today;
        let tmp = self.path.with_extension("tmp");
        let text = format!("{today} {}\n", hex(&self.salt));
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
    }

    fn ensure_day(&mut self, today: u64) {
        if today != self.day
            && let Err(e) = self.rotate(today)
        {
            // The new salt is in use even if it could not be saved.
            tracing::warn!(path = %self.path.display(), error = %e, "cannot save the visitor salt");
        }
    }

    /// The keyed hash of a user agent on day `today` (cached per user agent by the caller).
    pub(crate) fn ua_key(&mut self, today: u64, ua: &[u8]) -> u64 {
        self.ensure_day(today);
        sip13(&self.salt, ua)
    }

    /// The visitor hash for a request on day `today` (days since the Unix epoch), with
    /// `ua_key` from [`Visitor::ua_key`] for the same day.
    pub(crate) fn hash(&mut self, today: u64, site: &[u8], ip: IpAddr, ua_key: u64) -> u64 {
        self.ensure_day(today);
        // SipHash-1-3 of site (at most 64 bytes), 0xff, address (16 bytes), user agent key.
        let ip = match ip.to_canonical() {
            IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
            IpAddr::V6(a) => a.to_bits(),
        };
        let mut h = Sip13::new(&self.salt);
        h.bytes(&site[..site.len().min(64)]);
        h.word(0xff, 1);
        // The address's octets in order: its big-endian bits, byte-swapped.
        h.word(((ip >> 64) as u64).swap_bytes(), 8);
        h.word((ip as u64).swap_bytes(), 8);
        h.word(ua_key, 8);
        h.finish()
    }
}

/// SipHash-1-3 (the function of `SipHasher13::new_with_key`), fed in words: the
/// message's bytes go from their source straight into registers, where a message
/// first copied into a stack buffer is reloaded word by word right after the copy's
/// byte-sized stores, which stalls the CPU.
struct Sip13 {
    v: [u64; 4],
    /// Bytes not yet compressed (`pending` of them, low first) and the length so far.
    tail: u64,
    pending: usize,
    len: usize,
}

impl Sip13 {
    fn new(key: &[u8; 16]) -> Sip13 {
        let mut k = [0u8; 8];
        k.copy_from_slice(&key[..8]);
        let k0 = u64::from_le_bytes(k);
        k.copy_from_slice(&key[8..]);
        let k1 = u64::from_le_bytes(k);
        Sip13 {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            pending: 0,
            len: 0,
        }
    }

    fn round(&mut self) {
        let v = &mut self.v;
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }

    fn compress(&mut self, w: u64) {
        self.v[3] ^= w;
        self.round();
        self.v[0] ^= w;
    }

    /// Appends `n` bytes (1 to 8): the low bytes of `w`, whose other bytes are zero.
    #[inline(always)]
    fn word(&mut self, w: u64, n: usize) {
        self.len += n;
        self.tail |= w << (8 * self.pending);
        if self.pending + n < 8 {
            self.pending += n;
            return;
        }
        self.compress(self.tail);
        // What of `w` did not fit in the word just compressed.
        self.tail = if self.pending == 0 {
            0
        } else {
            w >> (8 * (8 - self.pending))
        };
        self.pending = self.pending + n - 8;
    }

    fn bytes(&mut self, b: &[u8]) {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w), 8);
        }
        let r = chunks.remainder();
        if !r.is_empty() {
            self.word(tail_word(r), r.len());
        }
    }

    fn finish(mut self) -> u64 {
        self.compress(((self.len as u64) << 56) | self.tail);
        self.v[2] ^= 0xff;
        self.round();
        self.round();
        self.round();
        self.v[0] ^ self.v[1] ^ self.v[2] ^ self.v[3]
    }
}

/// SipHash-1-3 of `m` keyed with `key`.
fn sip13(key: &[u8; 16], m: &[u8]) -> u64 {
    let mut h = Sip13::new(key);
    h.bytes(m);
    h.finish()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use siphasher::sip::SipHasher13;
    use std::hash::Hasher;

    #[test]
    fn one_shot_siphash_is_siphash_1_3() {
        let key: [u8; 16] = *b"0123456789abcdef";
        let m: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..m.len() {
            let mut h = SipHasher13::new_with_key(&key);
            h.write(&m[..len]);
            assert_eq!(sip13(&key, &m[..len]), h.finish(), "length {len}");
        }
        // Fed in pieces of every size at every offset, as `Visitor::hash` does.
        for first in 0..20 {
            for n in 1..=8 {
                let mut h = Sip13::new(&key);
                h.bytes(&m[..first]);
                let mut w = [0u8; 8];
                w[..n].copy_from_slice(&m[first..first + n]);
                h.word(u64::from_le_bytes(w), n);
                h.bytes(&m[first + n..first + n + 9]);
                let mut whole = SipHasher13::new_with_key(&key);
                whole.write(&m[..first + n + 9]);
                assert_eq!(h.finish(), whole.finish(), "{first} bytes, then {n}");
            }
        }
    }

    #[test]
    fn visitor_hash_is_siphash_of_site_marker_address_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = Visitor::open(dir.path().join("salt"), 100).unwrap();
        for (site, ip) in [
            (&b"alpha"[..], "203.0.113.7"),
            (b"a-much-longer-site-name-0123456789", "2001:db8::17"),
            (b"", "::ffff:198.51.100.2"),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let octets = match ip.to_canonical() {
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                IpAddr::V6(a) => a.octets(),
            };
            let mut m = site.to_vec();
            m.push(0xff);
            m.extend_from_slice(&octets);
            m.extend_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
            let mut whole = SipHasher13::new_with_key(&v.salt);
            whole.write(&m);
            assert_eq!(v.hash(100, site, ip, 0x0123_4567_89ab_cdef), whole.finish());
        }
    }

    #[test]
    fn salt_is_daily_and_kept_within_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("salt");
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let mut v = Visitor::open(path.clone(), 100).unwrap();
        let ua = v.ua_key(100, b"ua");
        let a = v.hash(100, b"alpha", ip, ua);
        assert_eq!(a, v.hash(100, b"alpha", ip, ua));
        assert_ne!(a, v.hash(100, b"beta", ip, ua));
        assert_ne!(a, v.hash(100, b"alpha", "203.0.113.8".parse().unwrap(), ua));
        let ub = v.ua_key(100, b"ub");
        assert_ne!(a, v.hash(100, b"alpha", ip, ub));
        // A restart the same day keeps the salt.
        let mut again = Visitor::open(path.clone(), 100).unwrap();
        assert_eq!(ua, again.ua_key(100, b"ua"));
        assert_eq!(a, again.hash(100, b"alpha", ip, ua));
        // The next day: a new salt, and the old one is gone from the file.
        let old = std::fs::read_to_string(&path).unwrap();
        let ua2 = again.ua_key(101, b"ua");
        assert_ne!(ua, ua2);
        let b = again.hash(101, b"alpha", ip, ua2);
        assert_ne!(a, b);
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(new.starts_with("101 "));
        assert_ne!(old.split(' ').nth(1), new.split(' ').nth(1));
        // No address in the file.
        assert!(!new.contains("203.0.113.7"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
