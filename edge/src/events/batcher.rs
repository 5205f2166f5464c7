//! The events thread: a single-threaded runtime running the batcher and one worker
//! per sink. The batcher wakes every `flush_interval_ms`, or sooner when a request
//! finds its thread's buffer an eighth full (see [`super::record`]), takes what the
//! requests queued, encodes it in batches of at most `batch_max_events` and pushes
//! each batch to every sink's queue.
//! A worker delivers its queue in order, retrying a failed batch with backoff while
//! later batches pile up in memory and then in the spool. At shutdown the batcher
//! takes the last events, the workers deliver what they can within a grace period,
//! and whatever a failing sink still holds is spooled for the next start.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::clickhouse::ClickHouseSink;
use super::config::EventsConfig;
use super::encode::{Clock, Encoder};
use super::file::FileSink;
use super::nats::NatsSink;
use super::queue::{Batch, Next, SinkQueue};
use super::record::{Buffers, decode};
use super::visitor::{Visitor, random};
use crate::metrics::{EventCounters, SINK_CLICKHOUSE, SINK_FILE, SINK_NATS};

/// Time the sinks get at shutdown to deliver what is queued before it is spooled.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Longest wait between retries of a failing sink.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Longest a single delivery may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

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

impl Sink {
    async fn deliver(&mut self, batch: &Batch) -> Result<(), String> {
        match self {
            Sink::File(s) => s.deliver(batch).map_err(|e| format!("write: {e}")),
            Sink::Nats(s) => s.deliver(batch).await,
            Sink::ClickHouse(s) => s.deliver(batch).await,
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
    let mut tasks = Vec::new();
    for (q, sink) in sinks {
        tasks.push(tokio::spawn(deliver_loop(q, sink, counters.clone())));
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    let mut spares: Vec<Vec<u8>> = Vec::new();
    let mut out = Vec::new();
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = buffers.wake.notified() => false,
            _ = &mut stop => true,
        };
        if stopping {
            buffers.close();
        }
        let taken = buffers.take(&mut spares);
        let clock = Clock::now(buffers.base);
        let mut n = 0u64;
        let emit = |out: &mut Vec<u8>, n: &mut u64, seq: &mut u64| {
            if *n == 0 {
                return;
            }
            *seq += 1;
            let batch = Arc::new(Batch {
                key: (u128::from(clock.wall_ms()) * 1_000_000, *seq),
                data: Bytes::from(std::mem::take(out)),
                events: *n,
            });
            counters.emitted_n(*n);
            for q in &queues {
                q.push(batch.clone());
            }
            *n = 0;
        };
        for mut pending in taken {
            for ev in decode(&pending.buf) {
                if out.capacity() == 0 {
                    out.reserve(max.min(pending.count) * 512);
                }
                encoder.encode(&ev, &clock, &mut out);
                n += 1;
                if n as usize >= max {
                    emit(&mut out, &mut n, &mut seq);
                }
            }
            pending.buf.clear();
            spares.push(pending.buf);
        }
        emit(&mut out, &mut n, &mut seq);
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
                q.spool_rest(Some(item));
                break;
            }
        }
        loop {
            let timeout = if q.is_closed() {
                SHUTDOWN_GRACE
            } else {
                DELIVERY_TIMEOUT
            };
            let r = match tokio::time::timeout(timeout, sink.deliver(item.batch())).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
            };
            match r {
                Ok(()) => {
                    q.done(&item);
                    counters.delivered(q.index, item.batch().events);
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
                            q.spool_rest(Some(item));
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
