//! Appending to a file with most of its bytes written by direct I/O (`O_DIRECT`),
//! past the page cache. Event files are written once and read later by other
//! programs; copying them into the page cache costs the edge kernel CPU for every
//! byte (more than the encoding itself) and evicts pages the sites are served from.
//!
//! Direct writes need block-aligned offsets, lengths and memory, so an append is cut
//! in three: the bytes up to the next block boundary and the bytes after the last
//! whole block go through an ordinary (buffered) handle, the whole blocks between
//! through the direct one, from the caller's memory when it is block-aligned there
//! (batches are made so, see [`align_front`]) or else from an aligned copy. Where the
//! file system refuses `O_DIRECT`, every write is buffered.
//!
//! A large append of lines may be *padded*: its last line gets spaces before its
//! newline up to the block's end, so its last partial block goes out by direct I/O as
//! well and the file ends on a block boundary, where the next append's blocks start
//! aligned in memory and in the file (no copy at all). Spaces before a newline leave
//! every line the same JSON value; small appends are never padded (at most a block per
//! append, only for appends of [`PAD_MIN`] or more, under 2% of what they hold).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment of direct writes: offsets, lengths and memory (a multiple of every
/// common logical block size).
const BLOCK: usize = 4096;

/// Smallest append that is padded to a block boundary (see the module's comment).
const PAD_MIN: usize = 256 << 10;

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

    /// Appends `data`, using `staging` for aligned copies (kept by the caller from
    /// one file to the next, so its memory is not allocated and faulted in again);
    /// with `pad`, a `data` of [`PAD_MIN`] bytes or more that ends in a newline is
    /// padded to a block boundary. Returns the bytes the file grew by. On an error the
    /// file may hold a prefix of `data`.
    pub(crate) fn append(
        &mut self,
        data: &[u8],
        staging: &mut Staging,
        pad: bool,
    ) -> io::Result<u64> {
        let before = self.len;
        let to_boundary = (BLOCK - (self.len % BLOCK as u64) as usize) % BLOCK;
        let head = to_boundary.min(data.len());
        let whole = (data.len() - head) / BLOCK * BLOCK;
        let tail = &data[head + whole..];
        let pad = pad && data.len() >= PAD_MIN && !tail.is_empty() && data.ends_with(b"\n");
        if self.direct.is_none() || (whole == 0 && !pad) {
            self.buffered(data)?;
            return Ok(self.len - before);
        }
        self.buffered(&data[..head])?;
        let body = &data[head..head + whole];
        if !body.is_empty() {
            if body.as_ptr().align_offset(BLOCK) == 0 {
                self.direct_or_buffered(body, body)?;
            } else {
                let aligned = staging.get(whole);
                aligned.copy_from_slice(body);
                self.direct_or_buffered(aligned, body)?;
            }
        }
        if pad && self.direct.is_some() {
            // The last line's newline moves to the block's end, spaces before it.
            let block = staging.get(BLOCK);
            let line_end = tail.len() - 1;
            block[..line_end].copy_from_slice(&tail[..line_end]);
            block[line_end..BLOCK - 1].fill(b' ');
            block[BLOCK - 1] = b'\n';
            self.direct_or_buffered(block, tail)?;
        } else {
            self.buffered(tail)?;
        }
        Ok(self.len - before)
    }

    /// Writes `aligned` (whole blocks in aligned memory) at the end by direct I/O;
    /// where that fails in a way a buffered write can finish, writes `bytes` (the
    /// same bytes, or for a padded block its line without the padding) through the
    /// page cache.
    fn direct_or_buffered(&mut self, aligned: &[u8], bytes: &[u8]) -> io::Result<()> {
        let Some(direct) = &self.direct else {
            return self.buffered(bytes);
        };
        match direct.write_at(aligned, self.len) {
            Ok(n) if n == aligned.len() => self.len += n as u64,
            Ok(n) => {
                // A short direct write (a full disk, say): finish through the page
                // cache, without the rest of any padding: what a padded block's line
                // still lacks past its bytes is its newline.
                self.len += n as u64;
                self.buffered(if n < bytes.len() { &bytes[n..] } else { b"\n" })?;
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // Accepted at open, refused at write: nothing was written.
                tracing::debug!(error = %e, "direct writes refused; writing through the page cache");
                self.direct = None;
                self.buffered(bytes)?;
            }
            Err(e) => return Err(e),
        }
        Ok(())
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

/// Makes `buf` (cleared) ready for an append of up to about `want` bytes that
/// [`Appender::append`] can write without copying it: filler bytes up to a block
/// boundary, after which the caller appends its data; returns the filler's length
/// (the data starts there). A buffer too small is replaced; a large one's aligned
/// interior is advised to be backed by huge pages before it is first touched (the
/// same saving as [`Staging`]'s). Should the data outgrow the buffer, it moves and
/// is copied once more when written, as an unaligned append is.
pub(crate) fn align_front(buf: &mut Vec<u8>, want: usize) -> usize {
    buf.clear();
    if buf.capacity() < want + BLOCK && want < PAD_MIN {
        // Small: an ordinary allocation (it grows as needed).
        *buf = Vec::with_capacity(want + BLOCK);
    } else if buf.capacity() < want + BLOCK {
        let size = want.div_ceil(HUGE) * HUGE;
        *buf = Vec::with_capacity(size + HUGE);
        let at = buf.as_ptr().align_offset(HUGE);
        // SAFETY: the range lies within the vector's allocation; the advice is only
        // a hint about how to back it (no effect on its contents).
        unsafe { libc::madvise(buf.as_mut_ptr().add(at).cast(), size, libc::MADV_HUGEPAGE) };
    }
    let filler = buf.as_ptr().align_offset(BLOCK);
    buf.resize(filler, 0);
    filler
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
            let grew = a.append(&chunk, &mut staging, false).unwrap();
            assert_eq!(grew, size as u64, "never padded");
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

    /// `n` NDJSON lines of varied lengths, numbered from `first`.
    fn lines(first: usize, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in first..first + n {
            out.extend_from_slice(
                format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 300)).as_bytes(),
            );
        }
        out
    }

    #[test]
    fn large_appends_are_padded_to_blocks_and_keep_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.ndjson.open");
        let mut a = Appender::create_new(&path).unwrap();
        let direct = a.is_direct();
        let mut staging = Staging::new();
        let mut expected = Vec::new();
        let mut first = 0;
        let mut buf = Vec::new();
        // Small (never padded), then large from aligned memory (see align_front) and
        // from unaligned memory, then small again.
        for (n, aligned) in [
            (10, false),
            (3000, true),
            (2500, true),
            (2000, false),
            (7, false),
        ] {
            let data = lines(first, n);
            first += n;
            let at = if aligned {
                let f = align_front(&mut buf, data.len());
                buf.extend_from_slice(&data);
                assert_eq!(buf[f..].as_ptr().align_offset(BLOCK), 0);
                f
            } else {
                buf = vec![0];
                buf.extend_from_slice(&data);
                1
            };
            let len_before = std::fs::metadata(&path).unwrap().len();
            let grew = a.append(&buf[at..], &mut staging, true).unwrap();
            let len_after = std::fs::metadata(&path).unwrap().len();
            assert_eq!(len_after - len_before, grew);
            if direct && data.len() >= PAD_MIN {
                assert_eq!(
                    len_after % BLOCK as u64,
                    0,
                    "a large append ends on a block"
                );
                assert!(grew >= data.len() as u64 && grew < (data.len() + BLOCK) as u64);
            } else {
                assert_eq!(grew, data.len() as u64, "small appends are not padded");
            }
            expected.extend_from_slice(&data);
        }
        a.sync_data().unwrap();
        // The same lines, in order, each the same JSON value.
        let on_disk = std::fs::read(&path).unwrap();
        let got: Vec<serde_json::Value> = on_disk
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let want: Vec<serde_json::Value> = expected
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(got.len(), first);
        assert!(got == want, "lines differ");
        // Padding is only spaces before a newline.
        let stripped: Vec<u8> = on_disk
            .split(|b| *b == b'\n')
            .flat_map(|l| l.trim_ascii_end().iter().copied().chain([b'\n']))
            .collect();
        assert_eq!(&stripped[..expected.len()], &expected[..]);
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
