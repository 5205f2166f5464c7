//! The events thread: a single-threaded runtime running the batcher and one worker
//! per sink. The batcher wakes every `flush_interval_ms`, or sooner when a thread has
//! written an eighth of its ring (see [`super::record`]), reads what the requests
//! queued, encodes it in batches of at most `batch_max_events` and pushes each batch
//! to every sink's queue. After every [`YIELD_BYTES`] of records (about 500 events,
//! ~0.2 ms of work) it yields its core to request workers waiting for it, as long as
//! it is keeping up (less than a quarter of a ring behind): a megabyte of records is
//! otherwise a millisecond or more during which requests sharing the core wait (in
//! the events benchmark without pipelining, p99 latency with events on fell from
//! 1.31 ms to 0.58-0.81 ms, against 0.53-0.75 ms with events off). Yielding every
//! 64 KiB instead cost the events thread 20-30 ns more per event.
//! A worker delivers its queue in order, retrying a failed batch with backoff while
//! later batches pile up in memory and then in the spool. At shutdown the batcher
//! takes the last events, the workers deliver what they can within a grace period,
//! and whatever a failing sink still holds is spooled for the next start.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::clickhouse::ClickHouseSink;
use super::config::EventsConfig;
use super::direct;
use super::encode::{Clock, Encoder};
use super::file::FileSink;
use super::nats::NatsSink;
use super::queue::{Batch, Item, Next, SinkQueue, SiteRun};
use super::record::{Buffers, decode};
use super::visitor::{Visitor, random};
use crate::metrics::{EventCounters, SINK_CLICKHOUSE, SINK_FILE, SINK_NATS};

/// Record bytes the batcher encodes between two yields of its core (see the module
/// comment).
const YIELD_BYTES: usize = 128 << 10;

/// How often a gathering sink's wait looks at its queue.
const GATHER_POLL: Duration = Duration::from_millis(50);

/// Time the sinks get at shutdown to deliver what is queued before it is spooled.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Longest wait between retries of a failing sink.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Longest a single delivery may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Encoded batches' buffers kept for reuse, at most this many: enough for what is
/// in flight at full rate (a gathered ClickHouse insert holds a second's batches,
/// some twenty at 75,000 events a second, and as many queue behind it).
const POOL_MAX: usize = 48;

/// Buffers of encoded batches, given back once every sink is done with a batch:
/// a buffer of a megabyte or two, freed and allocated again for every batch, goes
/// back to the system and costs a page fault per 4 KiB when it is written again.
#[derive(Clone, Default)]
struct BufPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl BufPool {
    fn get(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// `buf` as batch data; the buffer returns to the pool when the last clone of
    /// the data is dropped.
    fn bytes(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: self.clone(),
        })
    }
}

struct Pooled {
    buf: Vec<u8>,
    pool: BufPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut pool = self.pool.0.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    }
}

/// The running events thread.
pub(crate) struct Worker {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

enum Sink {
    File(FileSink),
    Nats(NatsSink),
    ClickHouse(ClickHouseSink),
}

/// How a sink that takes several batches at once gathers them.
#[derive(Clone, Copy)]
struct Gather {
    /// Shortest time between the starts of two deliveries while events flow.
    gap: Duration,
    /// Most bytes of batches in one delivery.
    max_bytes: u64,
}

impl Sink {
    /// Delivers `items` (one, except for a sink that [`Sink::gathers`]), in order.
    async fn deliver(&mut self, items: &[Item]) -> Result<(), String> {
        match self {
            Sink::File(s) => {
                for i in items {
                    s.deliver(i.batch()).map_err(|e| format!("write: {e}"))?;
                }
                Ok(())
            }
            Sink::Nats(s) => {
                for i in items {
                    s.deliver(i.batch()).await?;
                }
                Ok(())
            }
            Sink::ClickHouse(s) => {
                let batches: Vec<&Batch> = items.iter().map(|i| &**i.batch()).collect();
                s.deliver(&batches).await
            }
        }
    }

    /// ClickHouse makes a part (a directory of files, merged later) of every insert
    /// and advises few, large inserts: it gets one every `insert_interval_ms` while
    /// events flow, each with what queued up meanwhile.
    fn gathers(&self) -> Option<Gather> {
        match self {
            Sink::ClickHouse(s) => Some(Gather {
                gap: Duration::from_millis(s.config().insert_interval_ms),
                max_bytes: s.config().insert_max_bytes,
            }),
            _ => None,
        }
    }

    fn idle(&mut self) {
        if let Sink::File(s) = self {
            s.idle();
        }
    }

    fn close(&mut self) {
        if let Sink::File(s) = self {
            s.close();
        }
    }
}

/// The host name, for the default node id.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "edge".into())
}

impl Worker {
    /// Opens the sinks and spools under `dir` and starts the thread.
    pub(crate) fn spawn(
        cfg: &EventsConfig,
        dir: &Path,
        counters: Arc<EventCounters>,
        buffers: Arc<Buffers>,
    ) -> std::io::Result<Worker> {
        std::fs::create_dir_all(dir)?;
        let node = if cfg.node_id.is_empty() {
            host_name()
        } else {
            cfg.node_id.clone()
        };
        let today = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            / 86_400;
        let visitor = Visitor::open(dir.join("salt"), today)?;
        let encoder = Encoder::new(
            &node,
            cfg.trusted(),
            visitor,
            u64::from_le_bytes(random::<8>()?),
        );
        let mut sinks = Vec::new();
        let queue = |i, name| {
            SinkQueue::open(
                i,
                name,
                &dir.join("spool").join(name),
                cfg.memory_max_bytes,
                cfg.spool_max_bytes,
                counters.clone(),
            )
            .map(Arc::new)
        };
        if cfg.file.enabled {
            let s = FileSink::open(&dir.join("files"), &node, &cfg.file)?;
            sinks.push((queue(SINK_FILE, "file")?, Sink::File(s)));
        }
        if !cfg.nats.url.is_empty() {
            sinks.push((
                queue(SINK_NATS, "nats")?,
                Sink::Nats(NatsSink::new(&cfg.nats)),
            ));
        }
        if !cfg.clickhouse.url.is_empty() {
            sinks.push((
                queue(SINK_CLICKHOUSE, "clickhouse")?,
                Sink::ClickHouse(ClickHouseSink::new(&cfg.clickhouse)),
            ));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let interval = Duration::from_millis(cfg.flush_interval_ms);
        let max = cfg.batch_max_events;
        let thread = std::thread::Builder::new()
            .name("qpage-events".into())
            .spawn(move || {
                rt.block_on(run(
                    buffers, encoder, sinks, counters, interval, max, stop_rx,
                ));
            })?;
        Ok(Worker { stop, thread })
    }

    /// Stops the thread after the last events are delivered or spooled (blocking).
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::error!("the events thread panicked");
        }
    }
}

/// Longest [`SiteRun`] the batcher makes: a sink that cuts a site's lines into
/// messages walks the lines of at most one run per message (see [`super::nats`]).
const RUN_MAX_BYTES: usize = 64 << 10;

/// The current batch's [`SiteRun`]s, noted line by line as the batcher encodes them.
#[derive(Default)]
pub(super) struct SiteRuns {
    runs: Vec<SiteRun>,
}

impl SiteRuns {
    /// Notes the line that `batch` (the batch so far) ends with, which has its site's
    /// name at `site_at`, `site_len` bytes long.
    pub(super) fn note(&mut self, batch: &[u8], site_at: usize, site_len: usize) {
        let end = batch.len();
        // The last run starts where the one before it ends.
        let last_start = match self.runs.len() {
            0 | 1 => 0,
            n => self.runs[n - 2].end as usize,
        };
        if let Some(last) = self.runs.last_mut()
            && end - last_start <= RUN_MAX_BYTES
            && last.site_len as usize == site_len
            && batch[last.site_at as usize..][..site_len] == batch[site_at..][..site_len]
        {
            last.end = end as u32;
            last.lines += 1;
            return;
        }
        self.runs.push(SiteRun {
            end: end as u32,
            lines: 1,
            site_at: site_at as u32,
            site_len: site_len as u32,
        });
    }

    /// The runs of the batch just made; starts the next batch's.
    pub(super) fn take(&mut self) -> Vec<SiteRun> {
        std::mem::take(&mut self.runs)
    }
}

async fn run(
    buffers: Arc<Buffers>,
    mut encoder: Encoder,
    sinks: Vec<(Arc<SinkQueue>, Sink)>,
    counters: Arc<EventCounters>,
    interval: Duration,
    max: usize,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let queues: Vec<Arc<SinkQueue>> = sinks.iter().map(|(q, _)| q.clone()).collect();
    // Site runs are kept only for a sink that groups lines by site.
    let mut runs = sinks
        .iter()
        .any(|(_, s)| matches!(s, Sink::Nats(_)))
        .then(SiteRuns::default);
    let mut tasks = Vec::new();
    for (q, sink) in sinks {
        tasks.push(tokio::spawn(deliver_loop(q, sink, counters.clone())));
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    let pool = BufPool::default();
    let mut out = Vec::new();
    // Filler bytes at `out`'s front, so that the batch starts block-aligned.
    let mut filler = 0;
    // Record bytes encoded since the batcher last yielded its core.
    let mut since_yield = 0;
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = buffers.wake.notified() => false,
            _ = &mut stop => true,
        };
        if stopping {
            buffers.close();
        }
        let clock = Clock::now(buffers.base);
        // A line is about as long as its record.
        let want = (buffers.pending() * 5 / 4).min(max * 512);
        let mut n = 0u64;
        let emit = |out: &mut Vec<u8>,
                    filler: usize,
                    n: &mut u64,
                    seq: &mut u64,
                    runs: &mut Option<SiteRuns>| {
            if *n == 0 {
                return;
            }
            *seq += 1;
            let batch = Arc::new(Batch {
                key: (u128::from(clock.wall_ms()) * 1_000_000, *seq),
                data: pool.bytes(std::mem::take(out)).slice(filler..),
                events: *n,
                sites: runs.as_mut().map(SiteRuns::take).unwrap_or_default(),
            });
            counters.emitted_n(*n);
            for q in &queues {
                q.push(batch.clone());
            }
            *n = 0;
        };
        buffers.drain(|records| {
            for ev in decode(records) {
                if out.capacity() == 0 {
                    out = pool.get();
                    filler = direct::align_front(&mut out, want.max(records.len()));
                }
                let site_at = encoder.encode(&ev, &clock, &mut out);
                if let Some(r) = runs.as_mut() {
                    r.note(&out[filler..], site_at - filler, ev.site.len());
                }
                n += 1;
                if n as usize >= max {
                    emit(&mut out, filler, &mut n, &mut seq, &mut runs);
                }
            }
            // Give the core back between runs while keeping up (see the module comment).
            since_yield += records.len();
            if since_yield >= YIELD_BYTES && buffers.pending() < buffers.polite_backlog() {
                std::thread::yield_now();
                since_yield = 0;
            }
        });
        emit(&mut out, filler, &mut n, &mut seq, &mut runs);
        if stopping {
            break;
        }
    }
    for q in &queues {
        q.close();
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn deliver_loop(q: Arc<SinkQueue>, mut sink: Sink, counters: Arc<EventCounters>) {
    let mut backoff = Duration::from_millis(100);
    let mut failing = false;
    let mut closing_since: Option<tokio::time::Instant> = None;
    let mut last_start: Option<tokio::time::Instant> = None;
    loop {
        let item = match q.next(Duration::from_secs(1)).await {
            Next::Item(i) => i,
            Next::Idle => {
                sink.idle();
                continue;
            }
            Next::Closed => break,
        };
        if q.is_closed() {
            let since = *closing_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= SHUTDOWN_GRACE {
                // A long replay does not hold up shutdown: the rest waits on disk.
                q.spool_rest(vec![item]);
                break;
            }
        }
        let mut held = vec![item];
        if let (Some(gather), Item::Memory(first)) = (sink.gathers(), &held[0]) {
            // Fewer, larger deliveries: wait out the sink's gap since the last one
            // (unless shutting down, or a delivery's worth or half the memory queue
            // is waiting), then take what queued up behind this batch.
            // The queue is looked at every GATHER_POLL while waiting.
            let enough = gather.max_bytes.min(q.memory_max() / 2);
            loop {
                let wait =
                    last_start.map_or(Duration::ZERO, |t| gather.gap.saturating_sub(t.elapsed()));
                if wait.is_zero() || q.is_closed() || q.memory_bytes() >= enough {
                    break;
                }
                tokio::time::sleep(wait.min(GATHER_POLL)).await;
            }
            let room = gather.max_bytes.saturating_sub(first.data.len() as u64);
            held.extend(q.take_memory(room).into_iter().map(Item::Memory));
        }
        last_start = Some(tokio::time::Instant::now());
        let events: u64 = held.iter().map(|i| i.batch().events).sum();
        loop {
            let timeout = if q.is_closed() {
                SHUTDOWN_GRACE
            } else {
                DELIVERY_TIMEOUT
            };
            let r = match tokio::time::timeout(timeout, sink.deliver(&held)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
            };
            match r {
                Ok(()) => {
                    for item in &held {
                        q.done(item);
                    }
                    counters.delivered(q.index, events);
                    if failing {
                        tracing::info!(sink = q.name, "event sink is back");
                    }
                    failing = false;
                    backoff = Duration::from_millis(100);
                    break;
                }
                Err(e) => {
                    counters.sink_error(q.index);
                    if !failing {
                        tracing::warn!(sink = q.name, error = %e, "event sink failed; spooling and retrying");
                    } else {
                        tracing::debug!(sink = q.name, error = %e, "event sink still failing");
                    }
                    failing = true;
                    if q.is_closed() {
                        let since = *closing_since.get_or_insert_with(tokio::time::Instant::now);
                        if since.elapsed() >= SHUTDOWN_GRACE {
                            // Keep the rest for the next start.
                            q.spool_rest(held);
                            sink.close();
                            return;
                        }
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
    sink.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_buffers_return_to_the_pool_when_the_last_clone_is_dropped() {
        let pool = BufPool::default();
        let mut buf = pool.get();
        assert_eq!(buf.capacity(), 0, "an empty pool gives a new buffer");
        buf.extend_from_slice(b"{\"a\":1}\n{\"a\":2}\n");
        let cap = buf.capacity();
        let data = pool.bytes(buf);
        let part = data.slice(8..);
        drop(data);
        assert_eq!(&part[..], b"{\"a\":2}\n");
        assert!(pool.0.lock().unwrap().is_empty(), "a slice still holds it");
        drop(part);
        let again = pool.get();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), cap, "the same buffer, emptied");
        // At most POOL_MAX buffers are kept.
        let held: Vec<Bytes> = (0..POOL_MAX + 3)
            .map(|_| pool.bytes(Vec::with_capacity(64)))
            .collect();
        drop(held);
        assert_eq!(pool.0.lock().unwrap().len(), POOL_MAX);
    }
}
