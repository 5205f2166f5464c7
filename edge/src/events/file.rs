//! The file sink: NDJSON in `<events dir>/files/`. The file being written is
//! `events-<UTC start>-<node>.ndjson.open`; it is closed (renamed to `.ndjson`) once
//! it holds `max_bytes` or is `max_age_secs` old, and with `gzip` the closed file is
//! then compressed to `.ndjson.gz` on a separate thread. A batch is appended at once,
//! its whole 4 KiB blocks past the page cache, a large one padded to a block boundary
//! with spaces before its last newline ([`super::direct`]).
//! Files left `.open` by a crash are closed at start.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::config::FileSinkConfig;
use super::direct::Appender;
use super::queue::Batch;

pub(crate) struct FileSink {
    dir: PathBuf,
    node: String,
    cfg: FileSinkConfig,
    current: Option<Current>,
    /// The aligned copy of direct writes, kept across files.
    staging: super::direct::Staging,
}

struct Current {
    file: Appender,
    path: PathBuf,
    opened: Instant,
    bytes: u64,
}

impl FileSink {
    pub(crate) fn open(dir: &Path, node: &str, cfg: &FileSinkConfig) -> std::io::Result<FileSink> {
        std::fs::create_dir_all(dir)?;
        let sink = FileSink {
            dir: dir.to_path_buf(),
            node: node
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
            cfg: cfg.clone(),
            current: None,
            staging: super::direct::Staging::new(),
        };
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "open") {
                sink.finish(&path);
            } else if path.extension().is_some_and(|e| e == "tmp") {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(sink)
    }

    pub(crate) fn deliver(&mut self, batch: &Batch) -> std::io::Result<()> {
        if batch.data.is_empty() {
            return Ok(());
        }
        self.rotate_if_due(batch.data.len() as u64);
        if self.current.is_none() {
            self.current = Some(self.create()?);
        }
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        match cur.file.append(&batch.data, &mut self.staging, true) {
            Ok(grew) => cur.bytes += grew,
            Err(e) => {
                // A partial write leaves a torn line: start a new file for the retry.
                self.close();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Closes the current file if it is too old, even with no new events.
    pub(crate) fn idle(&mut self) {
        self.rotate_if_due(0);
    }

    fn rotate_if_due(&mut self, adding: u64) {
        let due = self.current.as_ref().is_some_and(|c| {
            (c.bytes > 0 && c.bytes + adding > self.cfg.max_bytes)
                || c.opened.elapsed() >= Duration::from_secs(self.cfg.max_age_secs)
        });
        if due {
            self.close();
        }
    }

    fn create(&self) -> std::io::Result<Current> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut n = 0;
        loop {
            let name = format!(
                "events-{}-{}{}.ndjson.open",
                utc_stamp(now.as_secs()),
                self.node,
                if n == 0 {
                    String::new()
                } else {
                    format!("-{n}")
                }
            );
            let path = self.dir.join(&name);
            let closed = path.with_extension("");
            let gz = closed.with_extension("ndjson.gz");
            if path.exists() || closed.exists() || gz.exists() {
                n += 1;
                continue;
            }
            let file = Appender::create_new(&path)?;
            return Ok(Current {
                file,
                path,
                opened: Instant::now(),
                bytes: 0,
            });
        }
    }

    /// Closes the current file (rename, then gzip if configured).
    pub(crate) fn close(&mut self) {
        if let Some(cur) = self.current.take() {
            let _ = cur.file.sync_data();
            drop(cur.file);
            self.finish(&cur.path);
        }
    }

    fn finish(&self, open: &Path) {
        let closed = open.with_extension("");
        if let Err(e) = std::fs::rename(open, &closed) {
            tracing::error!(path = %open.display(), error = %e, "cannot close an event file");
            return;
        }
        if self.cfg.gzip {
            let spawned = std::thread::Builder::new()
                .name("qpage-events-gzip".into())
                .spawn(move || {
                    if let Err(e) = gzip(&closed) {
                        tracing::error!(path = %closed.display(), error = %e, "cannot gzip an event file");
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the gzip thread");
            }
        }
    }
}

/// `x.ndjson` -> `x.ndjson.gz` (through a `.tmp`), then removes `x.ndjson`.
fn gzip(path: &Path) -> std::io::Result<()> {
    let gz = path.with_extension("ndjson.gz");
    let tmp = path.with_extension("ndjson.gz.tmp");
    {
        let mut input = File::open(path)?;
        let out = File::create(&tmp)?;
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        std::io::copy(&mut input, &mut enc)?;
        enc.finish()?.sync_all()?;
    }
    std::fs::rename(&tmp, &gz)?;
    std::fs::remove_file(path)
}

/// `20261204T203100Z` for a Unix time.
pub(crate) fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_709_210_096), "20240229T123456Z");
        assert_eq!(utc_stamp(1_798_761_599), "20261231T235959Z");
    }

    fn batch(lines: &str) -> Batch {
        Batch {
            key: (0, 0),
            data: Bytes::from(lines.to_string()),
            events: lines.lines().count() as u64,
            sites: Vec::new(),
        }
    }

    #[test]
    fn rotates_by_size_and_gzips_closed_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FileSinkConfig {
            enabled: true,
            max_bytes: 30,
            max_age_secs: 3600,
            gzip: true,
        };
        let mut s = FileSink::open(dir.path(), "n1", &cfg).unwrap();
        s.deliver(&batch("{\"a\":1}\n{\"a\":2}\n")).unwrap(); // 16 bytes
        s.deliver(&batch("{\"a\":3}\n{\"a\":4}\n")).unwrap(); // 32 > 30: new file
        s.close();
        let mut lines = Vec::new();
        for _ in 0..200 {
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            if names.len() == 2
                && names
                    .iter()
                    .all(|p| p.to_string_lossy().ends_with(".ndjson.gz"))
            {
                for p in names {
                    let mut text = String::new();
                    std::io::Read::read_to_string(
                        &mut flate2::read::GzDecoder::new(File::open(p).unwrap()),
                        &mut text,
                    )
                    .unwrap();
                    lines.extend(text.lines().map(String::from));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        lines.sort();
        assert_eq!(lines, ["{\"a\":1}", "{\"a\":2}", "{\"a\":3}", "{\"a\":4}"]);
    }

    #[test]
    fn rotates_by_age_and_closes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("events-x-n1.ndjson.open"), "{}\n").unwrap();
        let cfg = FileSinkConfig {
            enabled: true,
            max_bytes: 1 << 20,
            max_age_secs: 1,
            gzip: false,
        };
        let mut s = FileSink::open(dir.path(), "n1", &cfg).unwrap();
        assert!(dir.path().join("events-x-n1.ndjson").exists());
        s.deliver(&batch("{}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        s.idle();
        let open = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "open")
            })
            .count();
        assert_eq!(open, 0);
        let closed = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(closed, 2);
    }
}
