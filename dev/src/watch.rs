//! Watching a site folder: notify's recommended watcher, recursive, with events
//! gathered into batches (a batch ends when the folder has been quiet for a short
//! while, or after a longer bound), so one save that writes a file in several steps
//! is one rebuild. A file closed after writing (where the platform reports it) has
//! been saved: its batch ends as soon as nothing else follows at once. Paths the build
//! writes or caches are left out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};

/// How long a batch waits for more events after a file was closed after writing.
const AFTER_CLOSE: Duration = Duration::from_millis(1);

/// A running watcher; dropping it stops the watching.
pub struct SiteWatcher {
    _watcher: notify::RecommendedWatcher,
    /// Changed paths, and whether the change was a file closed after writing.
    rx: mpsc::Receiver<(PathBuf, bool)>,
    quiet: Duration,
    max_wait: Duration,
}

impl SiteWatcher {
    /// Watches `site_dir`, leaving out everything under `ignore` (absolute paths).
    pub fn new(
        site_dir: &Path,
        ignore: Vec<PathBuf>,
        quiet: Duration,
    ) -> notify::Result<SiteWatcher> {
        let (tx, rx) = mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(event) => {
                    let closed = match event.kind {
                        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                        EventKind::Access(_) => return,
                        _ => false,
                    };
                    for p in event.paths {
                        if !ignore.iter().any(|i| p.starts_with(i)) {
                            let _ = tx.send((p, closed));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "file watching error"),
            })?;
        watcher.watch(site_dir, RecursiveMode::Recursive)?;
        Ok(SiteWatcher {
            _watcher: watcher,
            rx,
            quiet,
            max_wait: Duration::from_millis(500).max(quiet * 4),
        })
    }

    /// The next batch of changed paths, waiting up to `timeout` for its first one;
    /// `None` when nothing changed in that time (or the watcher is gone).
    pub fn next_batch(&self, timeout: Duration) -> Option<Vec<PathBuf>> {
        let (first, mut closed) = self.rx.recv_timeout(timeout).ok()?;
        let started = Instant::now();
        let mut batch = BTreeSet::from([first]);
        loop {
            let left = self.max_wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            let quiet = if closed { AFTER_CLOSE } else { self.quiet };
            match self.rx.recv_timeout(quiet.min(left)) {
                Ok((p, c)) => {
                    batch.insert(p);
                    closed = c;
                }
                Err(_) => break,
            }
        }
        Some(batch.into_iter().collect())
    }
}
