//! The request side's queue: one byte ring per worker thread, into which a request
//! appends its event as a compact binary record (fixed fields, then length-prefixed
//! byte strings copied from the request). The ring has one writer (its thread) and one
//! reader (the batcher): the writer copies a record in and publishes it with a release
//! store of the ring's tail, the batcher decodes what lies between head and tail and
//! gives the space back with a release store of the head. On the request path there is
//! no lock, no atomic read-modify-write, no allocation, no channel operation and no
//! system call. A ring holds at most `queue_max_bytes`: beyond, the event is dropped
//! and counted. Every eighth of that written wakes the batcher, so at high request
//! rates it drains the rings long before they are full instead of waiting for its
//! timer; and once the writer is a quarter into the ring and the reader has caught up,
//! the writer goes back to the ring's start, so that at a steady rate only the ring's
//! first quarter or so is in use (the same memory, warm in the caches, instead of all
//! of it in turn).
//!
//! Request values are copied, not referenced: a header value from hyper shares the
//! connection's read buffer, and holding it until the batcher runs would keep hyper
//! from reusing that buffer.

use std::cell::{RefCell, UnsafeCell};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Instant;

use tokio::sync::Notify;

/// Longest byte string kept from a request (longer ones are cut).
const MAX_FIELD: usize = 1024;
/// Fixed part of a record: start, duration, status, bytes, version, tls, cache, address.
const FIXED: usize = 8 + 8 + 2 + 8 + 1 + 1 + 1 + 1 + 16;
const FIELDS: usize = 8;
/// Fixed part and the fields' lengths.
const HEAD: usize = FIXED + 2 * FIELDS;
/// A record's length prefix that means "the rest of this lap is unused".
const WRAP: u32 = u32::MAX;

/// Keeps what follows on a cache line of its own (the reader's and the writer's
/// positions would otherwise share one and bounce between cores).
#[repr(align(128))]
struct Line<T>(T);

/// One thread's records. Positions count bytes from the ring's creation; a record
/// never straddles the ring's end (the writer skips the rest of a lap with a
/// [`WRAP`] mark, or leaves fewer than 4 bytes, which the reader skips too).
struct Ring {
    data: Box<[UnsafeCell<u8>]>,
    owner: ThreadId,
    /// Written by the owner thread only.
    tail: Line<AtomicUsize>,
    /// The owner's copy of `head` (refreshed when the ring looks full) and the tail
    /// at its last wake-up of the batcher: only the owner touches these.
    seen_head: AtomicUsize,
    woken_at: AtomicUsize,
    /// Written by the batcher only.
    head: Line<AtomicUsize>,
}

// SAFETY: the bytes in `data` are written by the owner thread only, in the region
// between `tail` and `head + len` that the reader does not read, and published with
// a release store of `tail`; the reader reads only between `head` and an acquired
// `tail`, and gives that region back with a release store of `head`.
unsafe impl Sync for Ring {}

impl Ring {
    fn new(cap: usize) -> Ring {
        let zeroed: Box<[u8]> = vec![0u8; cap].into_boxed_slice();
        // SAFETY: `UnsafeCell<u8>` has the layout of `u8` (repr(transparent)).
        let data = unsafe { Box::from_raw(Box::into_raw(zeroed) as *mut [UnsafeCell<u8>]) };
        Ring {
            data,
            owner: std::thread::current().id(),
            tail: Line(AtomicUsize::new(0)),
            seen_head: AtomicUsize::new(0),
            woken_at: AtomicUsize::new(0),
            head: Line(AtomicUsize::new(0)),
        }
    }

    fn cap(&self) -> usize {
        self.data.len()
    }

    fn ptr(&self, at: usize) -> *mut u8 {
        UnsafeCell::raw_get(self.data[at..].as_ptr())
    }

    /// Owner only: room for `need` more bytes after position `to` (refreshing the
    /// reader's position if the cached one says no).
    fn room(&self, to: usize, need: usize) -> bool {
        let cap = self.cap();
        to + need - self.seen_head.load(Ordering::Relaxed) <= cap
            || to + need - self.refresh_head() <= cap
    }

    /// Owner only: whether the reader has read everything up to `tail`.
    fn caught_up(&self, tail: usize) -> bool {
        self.seen_head.load(Ordering::Relaxed) == tail || self.refresh_head() == tail
    }

    /// Owner only: the reader's position, read afresh and kept in `seen_head`.
    fn refresh_head(&self) -> usize {
        let head = self.head.0.load(Ordering::Acquire);
        self.seen_head.store(head, Ordering::Relaxed);
        head
    }

    /// Owner only: marks the rest of the lap from `tail` unused; returns the next
    /// lap's start.
    fn skip_lap(&self, tail: usize) -> usize {
        let cap = self.cap();
        let at = tail % cap;
        if cap - at >= 4 {
            // SAFETY: owner only, inside the free region (checked by `room`).
            unsafe { std::ptr::copy_nonoverlapping(WRAP.to_le_bytes().as_ptr(), self.ptr(at), 4) };
        }
        tail + (cap - at)
    }

    /// Reader only: calls `f` with the records between head and tail, in runs of
    /// whole records of about [`RELEASE_BYTES`], giving each run's space back once
    /// `f` returns; returns the bytes read.
    fn drain(&self, f: &mut dyn FnMut(&[u8])) -> usize {
        let cap = self.cap();
        let start = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Acquire);
        let mut at = start;
        while at < tail {
            let i = at % cap;
            let lap_end = tail.min(at - i + cap);
            // SAFETY: between head and the acquired tail, published by the writer,
            // which does not write there until `head` passes it.
            let lap = unsafe { std::slice::from_raw_parts(self.ptr(i), lap_end - at) };
            // Whole records up to about RELEASE_BYTES, or up to a lap's end mark.
            let mut end = 0;
            let mut fetched = 0;
            while end < RELEASE_BYTES {
                fetched = prefetch_ahead(lap, fetched, end + PREFETCH_BYTES);
                let Some(len) = lap.get(end..end + 4) else {
                    end = lap.len();
                    break;
                };
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
                if len == WRAP {
                    end = lap.len();
                    break;
                }
                end += 4 + len as usize;
            }
            let end = end.min(lap.len());
            f(&lap[..end]);
            at += end;
            self.head.0.store(at, Ordering::Release);
        }
        tail - start
    }
}

/// How much the batcher decodes before giving the space back to the writer.
const RELEASE_BYTES: usize = 64 << 10;

/// How far ahead of the record it reads the batcher asks for the ring's memory.
/// Records were written by other threads, mostly long enough ago to have left the
/// caches near this core, and where each one starts is known only from the length of
/// the one before: read one by one, every record is a cache miss waited for in turn.
/// Asked for ahead, in order, the misses overlap.
const PREFETCH_BYTES: usize = 8 << 10;

/// Asks for the cache lines of `lap` from `from` up to `to` (as far as the lap goes);
/// returns where that stopped.
#[inline(always)]
fn prefetch_ahead(lap: &[u8], from: usize, to: usize) -> usize {
    let to = to.min(lap.len());
    let mut at = from;
    while at < to {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch only hints the cache and does not fault; the address
        // lies within `lap`.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(lap.as_ptr().add(at).cast());
        }
        at += 64;
    }
    at
}

/// Every thread's ring, for one events pipeline.
pub(crate) struct Buffers {
    id: u64,
    rings: Mutex<Vec<Arc<Ring>>>,
    pub(crate) base: Instant,
    max_bytes: usize,
    wake_bytes: usize,
    closed: AtomicBool,
    /// Wakes the batcher when a thread has written `wake_bytes` since its last wake-up.
    pub(crate) wake: Notify,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's ring of the pipeline it last recorded to.
    static RING: RefCell<Option<(u64, Arc<Ring>)>> = const { RefCell::new(None) };
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
    /// Rings of `max_bytes` each.
    pub(crate) fn new(max_bytes: usize) -> Buffers {
        Buffers {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            rings: Mutex::new(Vec::new()),
            base: Instant::now(),
            max_bytes,
            wake_bytes: max_bytes / 8,
            closed: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// This thread's ring: made on its first record (or found again when the thread
    /// recorded to another pipeline since, as tests running two edges do).
    fn ring_of_thread(&self) -> Arc<Ring> {
        let me = std::thread::current().id();
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = rings.iter().find(|r| r.owner == me) {
            return r.clone();
        }
        let r = Arc::new(Ring::new(self.max_bytes));
        rings.push(r.clone());
        r
    }

    /// Appends a record to this thread's ring; false if it is full or closed.
    pub(crate) fn push(&self, r: &Record<'_>) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        RING.with(|cell| {
            let mut cell = cell.borrow_mut();
            let ring = match &*cell {
                Some((id, ring)) if *id == self.id => ring,
                _ => &cell.insert((self.id, self.ring_of_thread())).1,
            };
            self.append(ring, r)
        })
    }

    /// Owner only: `r` into `ring`, waking the batcher every `wake_bytes`.
    fn append(&self, ring: &Ring, r: &Record<'_>) -> bool {
        let fields = r.fields.map(|f| &f[..f.len().min(MAX_FIELD)]);
        let len = HEAD + fields.iter().map(|f| f.len()).sum::<usize>();
        let need = 4 + len;
        let cap = ring.cap();
        let mut tail = ring.tail.0.load(Ordering::Relaxed);
        let mut at = tail % cap;
        // Back to the ring's start once the writer is two wake-ups into it and the
        // reader has caught up, so that a steady flow reuses the same (cached) bytes
        // instead of walking the whole ring. The skipped bytes count as used until
        // the reader passes them, so the writer then has as much room as it had
        // written in the lap; the reader is woken at once to pass them.
        let rewind = at >= 2 * self.wake_bytes && ring.caught_up(tail);
        let mut wake = false;
        if rewind || cap - at < need {
            if !ring.room(tail + (cap - at), need) {
                return false;
            }
            tail = ring.skip_lap(tail);
            at = 0;
            wake = true;
        } else if !ring.room(tail, need) {
            return false;
        }
        // SAFETY: owner only; `room` checked that `at..at + need` is free, and it lies
        // within the ring (`cap - at >= need`).
        unsafe {
            let mut p = ring.ptr(at);
            write_head(p, r, self.base, &fields, len);
            p = p.add(4 + HEAD);
            for f in fields {
                std::ptr::copy_nonoverlapping(f.as_ptr(), p, f.len());
                p = p.add(f.len());
            }
        }
        let tail = tail + need;
        ring.tail.0.store(tail, Ordering::Release);
        if wake || tail - ring.woken_at.load(Ordering::Relaxed) >= self.wake_bytes {
            ring.woken_at.store(tail, Ordering::Relaxed);
            self.wake.notify_one();
        }
        true
    }

    /// Calls `f` with the records the threads have written since the last call, in
    /// runs of whole records (in order within a thread), giving each run's space
    /// back once `f` returns; returns the bytes read.
    pub(crate) fn drain(&self, mut f: impl FnMut(&[u8])) -> usize {
        let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner()).clone();
        rings.iter().map(|r| r.drain(&mut f)).sum()
    }

    /// The backlog under which the batcher yields its core between runs: a quarter
    /// of one ring.
    pub(crate) fn polite_backlog(&self) -> usize {
        self.max_bytes / 4
    }

    /// Bytes written to the rings and not yet drained.
    pub(crate) fn pending(&self) -> usize {
        let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings
            .iter()
            .map(|r| r.tail.0.load(Ordering::Acquire) - r.head.0.load(Ordering::Relaxed))
            .sum()
    }

    /// Refuses further records.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

/// Writes a record's header at `p`: its length prefix (`len`), fixed part and the
/// lengths of `fields` (already cut to [`MAX_FIELD`]). Written in place, value by
/// value: a header assembled on the stack and then copied is reloaded in wide loads
/// right after its narrow stores, which stalls the CPU.
///
/// # Safety
/// `p` must be valid for `4 + HEAD` bytes of writes.
unsafe fn write_head(
    p: *mut u8,
    r: &Record<'_>,
    base: Instant,
    fields: &[&[u8]; FIELDS],
    len: usize,
) {
    let start = r.start.saturating_duration_since(base);
    let start_ns = start.as_secs() * 1_000_000_000 + u64::from(start.subsec_nanos());
    let (fam, ip) = match r.peer {
        IpAddr::V4(a) => (4u8, a.to_ipv6_mapped().to_bits()),
        IpAddr::V6(a) => (6u8, a.to_bits()),
    };
    // SAFETY: every write lies in `p..p + 4 + HEAD` (the offsets and sizes below add
    // up to 4 + FIXED + 2 * FIELDS); unaligned writes need no alignment.
    unsafe {
        p.cast::<u32>().write_unaligned((len as u32).to_le());
        p.add(4).cast::<u64>().write_unaligned(start_ns.to_le());
        p.add(12).cast::<u64>().write_unaligned(r.dur_us.to_le());
        p.add(20).cast::<u16>().write_unaligned(r.status.to_le());
        p.add(22).cast::<u64>().write_unaligned(r.bytes.to_le());
        p.add(30)
            .cast::<[u8; 4]>()
            .write_unaligned([r.version, r.tls, r.cache, fam]);
        // The address's octets in order.
        p.add(34).cast::<u128>().write_unaligned(ip.to_be());
        for (i, f) in fields.iter().enumerate() {
            p.add(4 + FIXED + 2 * i)
                .cast::<u16>()
                .write_unaligned((f.len() as u16).to_le());
        }
    }
}

/// The records of a run (see [`Buffers::drain`]), in order; stops at a [`WRAP`] mark.
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
        let mut run = Vec::new();
        let read = b.drain(|r| run.extend_from_slice(r));
        assert_eq!(read, 112 + 1134);
        let evs: Vec<_> = decode(&run).collect();
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
        // Room again after the drain: the writer goes back to the ring's start.
        assert!(b.push(&rec("203.0.113.9", b"/c")));
        b.close();
        assert!(!b.push(&rec("203.0.113.9", b"/d")));
    }

    #[test]
    fn a_reader_on_another_thread_gets_every_accepted_record_in_order() {
        // 64 KiB rings: records of 60 to 1,100 bytes wrap the ring many times, and a
        // reader slower than the writer makes it find the ring full now and then.
        let b = Arc::new(Buffers::new(64 << 10));
        const N: u64 = 200_000;
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (b, done) = (b.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                loop {
                    let finished = done.load(Ordering::Acquire);
                    b.drain(|run| {
                        for ev in decode(run) {
                            let n: u64 = std::str::from_utf8(ev.path).unwrap().parse().unwrap();
                            assert_eq!(ev.user_agent.len() as u64, n % 1000, "record {n}");
                            assert_eq!(ev.bytes, n);
                            seen.push(n);
                        }
                    });
                    if finished {
                        return seen;
                    }
                    if seen.len() % 7 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let filler = vec![b'u'; 1000];
        let mut full = 0u64;
        let start = Instant::now();
        for n in 0..N {
            let path = n.to_string();
            let rec = Record {
                start,
                dur_us: 1,
                status: 200,
                bytes: n,
                version: 2,
                tls: 0,
                cache: 1,
                peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
                fields: [
                    b"s",
                    b"h",
                    path.as_bytes(),
                    b"",
                    b"",
                    &filler[..(n % 1000) as usize],
                    b"",
                    b"",
                ],
            };
            // A full ring takes the record once the reader has made room.
            let deadline = Instant::now() + std::time::Duration::from_secs(10);
            while !b.push(&rec) {
                full += 1;
                assert!(Instant::now() < deadline, "record {n}: no room for 10 s");
                std::thread::yield_now();
            }
        }
        done.store(true, Ordering::Release);
        let seen = reader.join().unwrap();
        eprintln!("{full} pushes found the ring full");
        assert_eq!(
            seen,
            (0..N).collect::<Vec<_>>(),
            "every record, once, in order"
        );
    }
}
