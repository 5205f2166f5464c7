//! Appending to a file with most of its bytes written by direct I/O (`O_DIRECT`),
//! past the page cache. Event files are written once and read later by other
//! programs; copying them into the page cache costs the edge kernel CPU for every
//! byte (more than the encoding itself) and evicts pages the sites are served from.
//!
//! Direct writes need block-aligned offsets, lengths and memory, so an append is cut
//! in three: the bytes up to the next block boundary and the bytes after the last
//! whole block go through an ordinary (buffered) handle, the whole blocks between
//! through the direct one, from an aligned copy. Every byte is written once, in
//! order, and the file's length is always exactly what was appended, so a reader (or
//! a crash) never sees padding. Where the file system refuses `O_DIRECT`, every
//! write is buffered.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment of direct writes: offsets, lengths and memory (a multiple of every
/// common logical block size).
const BLOCK: usize = 4096;

/// A file being appended to.
pub(crate) struct Appender {
    /// Buffered handle: the partial blocks at either end of an append.
    file: File,
    /// Direct handle, when the file system allows one.
    direct: Option<File>,
    len: u64,
}

impl Appender {
    /// Creates `path`, which must not exist.
    pub(crate) fn create_new(path: &Path) -> io::Result<Appender> {
        let file = OpenOptions::new().create_new(true).write(true).open(path)?;
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok();
        Ok(Appender {
            file,
            direct,
            len: 0,
        })
    }

    /// Whether whole blocks go past the page cache.
    #[cfg(test)]
    pub(crate) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Appends `data`, using `staging` for the aligned copy (kept by the caller from
    /// one file to the next, so its memory is not allocated and faulted in again).
    /// On an error the file may hold a prefix of `data`.
    pub(crate) fn append(&mut self, data: &[u8], staging: &mut Staging) -> io::Result<()> {
        let to_boundary = (BLOCK - (self.len % BLOCK as u64) as usize) % BLOCK;
        let head = to_boundary.min(data.len());
        let whole = (data.len() - head) / BLOCK * BLOCK;
        if self.direct.is_none() || whole == 0 {
            return self.buffered(data);
        }
        self.buffered(&data[..head])?;
        let body = &data[head..head + whole];
        let aligned = staging.get(whole);
        aligned.copy_from_slice(body);
        let Some(direct) = &self.direct else {
            return self.buffered(&data[head..]);
        };
        match direct.write_at(aligned, self.len) {
            Ok(n) if n == whole => self.len += whole as u64,
            Ok(n) => {
                // A short direct write (a full disk, say): finish through the page cache.
                self.len += n as u64;
                self.buffered(&body[n..])?;
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // Accepted at open, refused at write: nothing was written.
                tracing::debug!(error = %e, "direct writes refused; writing through the page cache");
                self.direct = None;
                self.buffered(body)?;
            }
            Err(e) => return Err(e),
        }
        self.buffered(&data[head + whole..])
    }

    fn buffered(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(data, self.len)?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// Flushes the file's data to disk.
    pub(crate) fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Huge-page size and alignment of [`Staging`].
const HUGE: usize = 2 << 20;

/// The aligned memory direct writes are made from: whole 2 MiB huge pages where the
/// kernel gives them (`MADV_HUGEPAGE`), so that pinning the buffer for each write and
/// describing it to the disk take one step per 2 MiB instead of one per 4 KiB (in a
/// profile of the events benchmark, the write system call's cost per event fell from
/// 66 to 41 ns).
pub(crate) struct Staging(Vec<u8>);

impl Staging {
    pub(crate) fn new() -> Staging {
        Staging(Vec::new())
    }

    /// `len` bytes starting at a 2 MiB boundary (the buffer grows if short).
    fn get(&mut self, len: usize) -> &mut [u8] {
        let mut at = self.0.as_ptr().align_offset(HUGE);
        if self.0.len() < at.saturating_add(len) {
            let size = len.div_ceil(HUGE) * HUGE;
            // Zeroed memory straight from the system (not touched yet), so the advice
            // comes before its pages are faulted in.
            self.0 = vec![0; size + HUGE];
            at = self.0.as_ptr().align_offset(HUGE);
            // SAFETY: the range lies within the vector's allocation; the advice is only
            // a hint about how to back it (no effect on its contents).
            unsafe {
                libc::madvise(
                    self.0.as_mut_ptr().add(at).cast(),
                    size,
                    libc::MADV_HUGEPAGE,
                )
            };
        }
        &mut self.0[at..at + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appends(a: &mut Appender, path: &Path) {
        let mut expected = Vec::new();
        let mut n = 0u32;
        let mut staging = Staging::new();
        for size in [
            0usize,
            1,
            4095,
            4096,
            4097,
            3,
            10_000,
            8192,
            1 << 20,
            4093,
            12_288,
            5,
        ] {
            let chunk: Vec<u8> = (0..size)
                .map(|_| {
                    n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (n >> 16) as u8
                })
                .collect();
            a.append(&chunk, &mut staging).unwrap();
            expected.extend_from_slice(&chunk);
            let on_disk = std::fs::read(path).unwrap();
            assert_eq!(
                on_disk.len(),
                expected.len(),
                "after appending {size} bytes"
            );
            assert!(on_disk == expected, "contents after appending {size} bytes");
        }
        a.sync_data().unwrap();
    }

    #[test]
    fn appends_land_in_order_with_the_exact_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.ndjson.open");
        let mut a = Appender::create_new(&path).unwrap();
        // On Linux file systems that take O_DIRECT (ext4, xfs, btrfs; tmpfs since
        // 6.6) the whole blocks went past the page cache; elsewhere all is buffered.
        eprintln!("direct: {}", a.is_direct());
        appends(&mut a, &path);
        assert!(Appender::create_new(&path).is_err(), "an existing file");
    }

    #[test]
    fn without_direct_io_every_write_is_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut a = Appender::create_new(&path).unwrap();
        a.direct = None;
        appends(&mut a, &path);
    }
}
