//! The request side's queue: one buffer per worker thread, into which a request
//! appends its event as a compact binary record (fixed fields, then length-prefixed
//! byte strings copied from the request). Appending takes the thread's own,
//! uncontended lock; there is no allocation once the buffer has grown, no channel
//! operation and no system call. The batcher swaps each buffer for an empty one
//! (keeping capacities, so neither side allocates in steady state) and decodes the
//! records. A thread's buffer holds at most `queue_max_bytes`: beyond, the event is
//! dropped and counted. The first record that takes a buffer past an eighth of that
//! wakes the batcher (one wake-up per buffer fill), so at high request rates it drains
//! the buffers long before they are full instead of waiting for its timer.
//!
//! Request values are copied, not referenced: a header value from hyper shares the
//! connection's read buffer, and holding it until the batcher runs would keep hyper
//! from reusing that buffer.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// Longest byte string kept from a request (longer ones are cut).
const MAX_FIELD: usize = 1024;
/// Fixed part of a record: start, duration, status, bytes, version, tls, cache, address.
const FIXED: usize = 8 + 8 + 2 + 8 + 1 + 1 + 1 + 1 + 16;
const FIELDS: usize = 8;
/// Fixed part and the fields' lengths.
const HEAD: usize = FIXED + 2 * FIELDS;

/// One thread's pending records.
#[derive(Default)]
pub(crate) struct Pending {
    pub buf: Vec<u8>,
    pub count: usize,
    /// The batcher was woken for this buffer.
    woken: bool,
}

/// Every thread's buffer, for one events pipeline.
pub(crate) struct Buffers {
    id: u64,
    slots: Mutex<Vec<Arc<Mutex<Pending>>>>,
    pub(crate) base: Instant,
    max_bytes: usize,
    wake_bytes: usize,
    closed: AtomicBool,
    /// Wakes the batcher when a buffer passes `wake_bytes`.
    pub(crate) wake: Notify,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static SLOT: RefCell<Option<(u64, Arc<Mutex<Pending>>)>> = const { RefCell::new(None) };
}

/// An event as the request path sees it.
pub(crate) struct Record<'a> {
    pub start: Instant,
    pub dur_us: u64,
    pub status: u16,
    pub bytes: u64,
    pub version: u8,
    pub tls: u8,
    pub cache: u8,
    pub peer: IpAddr,
    /// site, host, path, content type, referer, user agent, x-forwarded-for, forwarded.
    pub fields: [&'a [u8]; FIELDS],
}

/// A decoded record, borrowing from the batcher's buffer.
pub(crate) struct RawEvent<'a> {
    /// Nanoseconds from [`Buffers::base`] to the request's start.
    pub start_ns: u64,
    pub dur_us: u64,
    pub status: u16,
    pub bytes: u64,
    pub version: u8,
    pub tls: u8,
    pub cache: u8,
    pub peer: IpAddr,
    pub site: &'a [u8],
    pub host: &'a [u8],
    pub path: &'a [u8],
    pub content_type: &'a [u8],
    pub referer: &'a [u8],
    pub user_agent: &'a [u8],
    pub forwarded_for: &'a [u8],
    pub forwarded: &'a [u8],
}

impl Buffers {
    /// Buffers of at most `max_bytes` each.
    pub(crate) fn new(max_bytes: usize) -> Buffers {
        Buffers {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            slots: Mutex::new(Vec::new()),
            base: Instant::now(),
            max_bytes,
            wake_bytes: max_bytes / 8,
            closed: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Appends a record to this thread's buffer; false if it is full or closed.
    pub(crate) fn push(&self, r: &Record<'_>) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        SLOT.with(|cell| {
            let mut cell = cell.borrow_mut();
            if !matches!(&*cell, Some((id, _)) if *id == self.id) {
                let slot = Arc::new(Mutex::new(Pending::default()));
                self.slots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(slot.clone());
                *cell = Some((self.id, slot));
            }
            let Some((_, slot)) = cell.as_ref() else {
                return false;
            };
            let mut p = slot.lock().unwrap_or_else(|p| p.into_inner());
            if !encode(&mut p.buf, r, self.base, self.max_bytes) {
                return false;
            }
            p.count += 1;
            if p.woken || p.buf.len() < self.wake_bytes {
                return true;
            }
            p.woken = true;
            drop(p);
            self.wake.notify_one();
            true
        })
    }

    /// Swaps every thread's buffer with one from `spares` (or a new one); returns the
    /// filled buffers.
    pub(crate) fn take(&self, spares: &mut Vec<Vec<u8>>) -> Vec<Pending> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = Vec::new();
        for s in slots {
            let mut p = s.lock().unwrap_or_else(|p| p.into_inner());
            if p.count == 0 {
                continue;
            }
            let fresh = Pending {
                buf: spares.pop().unwrap_or_default(),
                count: 0,
                woken: false,
            };
            out.push(std::mem::replace(&mut *p, fresh));
        }
        out
    }

    /// Refuses further records.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

/// Appends `r` to `buf` unless that would take it past `max` bytes.
fn encode(buf: &mut Vec<u8>, r: &Record<'_>, base: Instant, max: usize) -> bool {
    let start = r.start.saturating_duration_since(base);
    let start_ns = start.as_secs() * 1_000_000_000 + u64::from(start.subsec_nanos());
    let fields = r.fields.map(|f| &f[..f.len().min(MAX_FIELD)]);
    // One header (fixed part and the eight lengths), then the fields back to back.
    let mut head = [0u8; 4 + HEAD];
    let len = HEAD + fields.iter().map(|f| f.len()).sum::<usize>();
    if buf.len() + 4 + len > max {
        return false;
    }
    head[..4].copy_from_slice(&(len as u32).to_le_bytes());
    head[4..12].copy_from_slice(&start_ns.to_le_bytes());
    head[12..20].copy_from_slice(&r.dur_us.to_le_bytes());
    head[20..22].copy_from_slice(&r.status.to_le_bytes());
    head[22..30].copy_from_slice(&r.bytes.to_le_bytes());
    let (fam, ip) = match r.peer {
        IpAddr::V4(a) => (4u8, a.to_ipv6_mapped().octets()),
        IpAddr::V6(a) => (6u8, a.octets()),
    };
    head[30..34].copy_from_slice(&[r.version, r.tls, r.cache, fam]);
    head[34..50].copy_from_slice(&ip);
    for (i, f) in fields.iter().enumerate() {
        head[50 + 2 * i..52 + 2 * i].copy_from_slice(&(f.len() as u16).to_le_bytes());
    }
    buf.reserve(4 + len);
    buf.extend_from_slice(&head);
    for f in fields {
        if !f.is_empty() {
            buf.extend_from_slice(f);
        }
    }
    true
}

/// The records of a taken buffer, in order.
pub(crate) fn decode(buf: &[u8]) -> impl Iterator<Item = RawEvent<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let len = u32::from_le_bytes(rest[..4].try_into().ok()?) as usize;
        let rec = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        let u64_at = |i: usize| u64::from_le_bytes(rec[i..i + 8].try_into().unwrap_or([0; 8]));
        let ip: [u8; 16] = rec[FIXED - 16..FIXED].try_into().ok()?;
        let peer = if rec[FIXED - 17] == 4 {
            let v6 = Ipv6Addr::from(ip);
            IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED))
        } else {
            IpAddr::V6(Ipv6Addr::from(ip))
        };
        let mut fields: [&[u8]; FIELDS] = [&[]; FIELDS];
        let mut at = HEAD;
        for (i, f) in fields.iter_mut().enumerate() {
            let l = FIXED + 2 * i;
            let n = u16::from_le_bytes([*rec.get(l)?, *rec.get(l + 1)?]) as usize;
            *f = rec.get(at..at + n)?;
            at += n;
        }
        Some(RawEvent {
            start_ns: u64_at(0),
            dur_us: u64_at(8),
            status: u16::from_le_bytes([rec[16], rec[17]]),
            bytes: u64_at(18),
            version: rec[26],
            tls: rec[27],
            cache: rec[28],
            peer,
            site: fields[0],
            host: fields[1],
            path: fields[2],
            content_type: fields[3],
            referer: fields[4],
            user_agent: fields[5],
            forwarded_for: fields[6],
            forwarded: fields[7],
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_the_buffer_is_bounded() {
        // Room for the first two records below (112 and 1,134 bytes), not a third.
        let b = Buffers::new(1300);
        let start = Instant::now();
        let long = vec![b'x'; 5000];
        let rec = |peer: &str, path: &'static [u8]| Record {
            start,
            dur_us: 7,
            status: 404,
            bytes: 1 << 40,
            version: 2,
            tls: 1,
            cache: 2,
            peer: peer.parse().unwrap(),
            fields: [
                b"alpha",
                b"alpha.test",
                path,
                b"text/html",
                b"https://r.example/",
                b"ua",
                b"",
                b"",
            ],
        };
        assert!(b.push(&rec("203.0.113.9", b"/a")));
        let woken = |b: &Buffers| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(50), b.wake.notified())
                    .await
                    .is_ok()
            })
        };
        assert!(!woken(&b), "112 bytes are below an eighth of 1,300");
        let mut r2 = rec("2001:db8::1", b"/b");
        r2.fields[5] = &long;
        assert!(b.push(&r2));
        assert!(woken(&b), "past an eighth: the batcher is woken");
        assert!(!b.push(&rec("203.0.113.9", b"/c")), "full");
        let mut spares = Vec::new();
        let taken = b.take(&mut spares);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].count, 2);
        let evs: Vec<_> = decode(&taken[0].buf).collect();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].peer, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(evs[1].peer, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(evs[0].path, b"/a");
        assert_eq!(evs[0].status, 404);
        assert_eq!(evs[0].bytes, 1 << 40);
        assert_eq!(
            (evs[0].version, evs[0].tls, evs[0].cache, evs[0].dur_us),
            (2, 1, 2, 7)
        );
        assert_eq!(evs[0].site, b"alpha");
        assert_eq!(evs[0].referer, b"https://r.example/");
        assert_eq!(evs[1].user_agent.len(), MAX_FIELD);
        assert!(evs[0].start_ns < 10_000_000_000);
        // Room again after the take.
        assert!(b.push(&rec("203.0.113.9", b"/c")));
        b.close();
        assert!(!b.push(&rec("203.0.113.9", b"/d")));
    }
}
