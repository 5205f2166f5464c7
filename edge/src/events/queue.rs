//! One sink's queue: batches in memory up to `memory_max_bytes`, then on disk in the
//! sink's spool directory up to `spool_max_bytes`, then dropped (counted). Once
//! anything is spooled every later batch is spooled too, until the spool is drained,
//! so the sink sees batches in the order they were made. Spool files hold the encoded
//! lines only (visitor already hashed, no address) and are named by the batch's
//! creation time and sequence, `<ns>-<seq>-<events>.ndjson`, so a restart replays the
//! leftovers first and in order.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::metrics::EventCounters;

/// A batch of encoded events (NDJSON lines).
#[derive(Debug)]
pub(crate) struct Batch {
    /// Creation key: wall-clock nanoseconds and a sequence; orders spool files.
    pub key: (u128, u64),
    pub data: Bytes,
    pub events: u64,
    /// The batch's lines in runs of one site each, in order, when the batcher made
    /// them for a sink that groups by site; empty otherwise (and for spooled batches).
    pub sites: Vec<SiteRun>,
}

/// Lines of one site lying back to back in a batch: they end at `end` (the previous
/// run's end, or 0, is where they start), and the site's name is
/// `data[site_at..site_at + site_len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SiteRun {
    pub end: u32,
    pub lines: u32,
    pub site_at: u32,
    pub site_len: u32,
}

/// A batch handed to a sink worker, and where it came from.
pub(crate) enum Item {
    Memory(Arc<Batch>),
    Spooled(Arc<Batch>),
}

impl Item {
    pub(crate) fn batch(&self) -> &Arc<Batch> {
        match self {
            Item::Memory(b) | Item::Spooled(b) => b,
        }
    }
}

/// What [`SinkQueue::next`] found.
pub(crate) enum Next {
    Item(Item),
    Idle,
    Closed,
}

struct Segment {
    path: PathBuf,
    bytes: u64,
    events: u64,
}

#[derive(Default)]
struct State {
    memory: VecDeque<Arc<Batch>>,
    memory_bytes: u64,
    spool: VecDeque<Segment>,
    spool_bytes: u64,
    closed: bool,
}

/// The queue between the batcher and one sink's worker.
pub(crate) struct SinkQueue {
    pub index: usize,
    pub name: &'static str,
    dir: PathBuf,
    memory_max: u64,
    spool_max: u64,
    state: Mutex<State>,
    notify: Notify,
    counters: Arc<EventCounters>,
}

impl SinkQueue {
    /// Opens the queue of sink `name`, taking in what its spool holds from before.
    pub(crate) fn open(
        index: usize,
        name: &'static str,
        dir: &Path,
        memory_max: u64,
        spool_max: u64,
        counters: Arc<EventCounters>,
    ) -> std::io::Result<SinkQueue> {
        std::fs::create_dir_all(dir)?;
        let mut segs = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".ndjson") else {
                if name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(entry.path());
                }
                continue;
            };
            let Some(events) = stem.rsplit('-').next().and_then(|n| n.parse().ok()) else {
                continue;
            };
            segs.push((
                name.clone(),
                Segment {
                    path: entry.path(),
                    bytes: entry.metadata()?.len(),
                    events,
                },
            ));
        }
        segs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut state = State::default();
        for (_, s) in segs {
            state.spool_bytes += s.bytes;
            state.spool.push_back(s);
        }
        if !state.spool.is_empty() {
            tracing::info!(
                sink = name,
                batches = state.spool.len(),
                "replaying spooled events"
            );
        }
        Ok(SinkQueue {
            index,
            name,
            dir: dir.to_path_buf(),
            memory_max,
            spool_max,
            state: Mutex::new(state),
            notify: Notify::new(),
            counters,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a batch: in memory if nothing is spooled and there is room, else spooled,
    /// else dropped (counted).
    pub(crate) fn push(&self, batch: Arc<Batch>) {
        let mut st = self.lock();
        let len = batch.data.len() as u64;
        if st.spool.is_empty() && st.memory_bytes + len <= self.memory_max {
            st.memory_bytes += len;
            st.memory.push_back(batch);
        } else {
            self.spool_locked(&mut st, &batch);
        }
        drop(st);
        self.notify.notify_one();
    }

    fn spool_locked(&self, st: &mut State, batch: &Batch) {
        let len = batch.data.len() as u64;
        if st.spool_bytes + len > self.spool_max {
            self.counters.dropped(self.index, batch.events);
            return;
        }
        let name = format!(
            "{:039}-{:020}-{}.ndjson",
            batch.key.0, batch.key.1, batch.events
        );
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let written = std::fs::write(&tmp, &batch.data).and_then(|_| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => {
                // Keep the spool sorted: a batch put back at shutdown is older than
                // what was spooled while it was being delivered.
                let pos = st
                    .spool
                    .iter()
                    .position(|s| s.path > path)
                    .unwrap_or(st.spool.len());
                st.spool.insert(
                    pos,
                    Segment {
                        path,
                        bytes: len,
                        events: batch.events,
                    },
                );
                st.spool_bytes += len;
                self.counters.spooled(self.index, batch.events);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::error!(sink = self.name, error = %e, "cannot spool events; dropped");
                self.counters.dropped(self.index, batch.events);
            }
        }
    }

    /// The next batch for the worker, oldest first; [`Next::Idle`] after `idle` with
    /// nothing to do, [`Next::Closed`] once closed and empty.
    pub(crate) async fn next(&self, idle: std::time::Duration) -> Next {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = self.lock();
                if let Some(b) = st.memory.pop_front() {
                    st.memory_bytes -= b.data.len() as u64;
                    return Next::Item(Item::Memory(b));
                }
                while let Some(seg) = st.spool.front() {
                    match std::fs::read(&seg.path) {
                        Ok(data) => {
                            let batch = Batch {
                                key: (0, 0),
                                data: Bytes::from(data),
                                events: seg.events,
                                sites: Vec::new(),
                            };
                            return Next::Item(Item::Spooled(Arc::new(batch)));
                        }
                        Err(e) => {
                            tracing::error!(sink = self.name, path = %seg.path.display(), error = %e, "unreadable spool file; its events are dropped");
                            let events = seg.events;
                            let bytes = seg.bytes;
                            st.spool.pop_front();
                            st.spool_bytes -= bytes;
                            self.counters.dropped(self.index, events);
                        }
                    }
                }
                if st.closed {
                    return Next::Closed;
                }
            }
            if tokio::time::timeout(idle, notified).await.is_err() {
                return Next::Idle;
            }
        }
    }

    /// Takes the batches waiting in memory, oldest first, as long as they add up to
    /// at most `max_bytes` (for a sink that delivers several at once; spooled
    /// batches are never behind them, so the order holds).
    pub(crate) fn take_memory(&self, max_bytes: u64) -> Vec<Arc<Batch>> {
        let mut st = self.lock();
        let mut out = Vec::new();
        let mut total = 0;
        while let Some(b) = st.memory.front() {
            let len = b.data.len() as u64;
            if total + len > max_bytes {
                break;
            }
            total += len;
            st.memory_bytes -= len;
            out.extend(st.memory.pop_front());
        }
        out
    }

    /// Bytes of the batches waiting in memory.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.lock().memory_bytes
    }

    /// The memory bound (`events.memory_max_bytes`).
    pub(crate) fn memory_max(&self) -> u64 {
        self.memory_max
    }

    /// The worker delivered `item`.
    pub(crate) fn done(&self, item: &Item) {
        if let Item::Spooled(_) = item {
            let mut st = self.lock();
            if let Some(seg) = st.spool.pop_front() {
                st.spool_bytes -= seg.bytes;
                if let Err(e) = std::fs::remove_file(&seg.path) {
                    tracing::warn!(sink = self.name, error = %e, "cannot remove a replayed spool file");
                }
            }
        }
    }

    /// At shutdown with the sink failing: puts the `held` batches that came from
    /// memory and every batch still in memory on disk, in order.
    pub(crate) fn spool_rest(&self, held: Vec<Item>) {
        let mut st = self.lock();
        for item in held {
            if let Item::Memory(b) = item {
                self.spool_locked(&mut st, &b);
            }
        }
        while let Some(b) = st.memory.pop_front() {
            st.memory_bytes -= b.data.len() as u64;
            self.spool_locked(&mut st, &b);
        }
    }

    /// No more batches will come.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}
