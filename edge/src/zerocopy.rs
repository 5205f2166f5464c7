//! Zero-copy bodies: cached blob bodies of at least [`SENDFILE_MIN`] bytes keep their
//! store file open, and the connection's writer sends them with `sendfile(2)` from the
//! page cache instead of copying them from user memory into the socket.
//!
//! hyper only hands the writer byte slices. A file-backed body is a [`Bytes`] whose
//! memory region is registered here together with its file; a slice the writer is asked
//! to send that lies inside a registered region is sent with `sendfile` at the same
//! offset (blobs are immutable, named by their hash, so file and memory hold the same
//! bytes). Everything else is written as usual. A region is registered for exactly as
//! long as its memory and its file are alive (the owner deregisters before either is
//! freed), and a slice being written keeps its `Bytes`, hence its region, alive.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::RwLock;
use std::task::{Context, Poll};

use bytes::Bytes;

/// Bodies at least this large are sent with `sendfile`; below it a copy is cheaper
/// than the extra system call.
pub(crate) const SENDFILE_MIN: usize = 16 * 1024;

/// At most this many files are held open for zero-copy bodies (the rest are copied),
/// and never more than a quarter of the process's file-descriptor limit, so that
/// connections keep the rest.
const MAX_OPEN: usize = 4096;

fn max_open() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        #[cfg(unix)]
        {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: `lim` is a valid, writable rlimit.
            if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
                let quarter = usize::try_from(lim.rlim_cur / 4).unwrap_or(usize::MAX);
                return quarter.min(MAX_OPEN);
            }
            0
        }
        #[cfg(not(unix))]
        {
            0
        }
    })
}

/// Registered regions: start address -> (length, file descriptor).
static REGIONS: RwLock<BTreeMap<usize, (usize, i32)>> = RwLock::new(BTreeMap::new());

/// Owns a body's memory and its open store file while the region is registered.
struct FileBacked {
    data: Box<[u8]>,
    _file: File,
}

impl AsRef<[u8]> for FileBacked {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for FileBacked {
    fn drop(&mut self) {
        let mut regions = REGIONS.write().unwrap_or_else(|p| p.into_inner());
        regions.remove(&(self.data.as_ptr() as usize));
        // `data` and the file are freed after this, once the region is gone.
    }
}

/// The body `data` (the whole content of `file`) as [`Bytes`]; registered for
/// `sendfile` when it is large enough and the open-file budget allows.
pub(crate) fn body(data: Vec<u8>, file: File) -> Bytes {
    if data.len() < SENDFILE_MIN {
        return Bytes::from(data);
    }
    let data = data.into_boxed_slice();
    let start = data.as_ptr() as usize;
    let len = data.len();
    {
        let mut regions = REGIONS.write().unwrap_or_else(|p| p.into_inner());
        if regions.len() >= max_open() {
            return Bytes::from(data);
        }
        regions.insert(start, (len, raw_fd(&file)));
    }
    Bytes::from_owner(FileBacked { data, _file: file })
}

#[cfg(unix)]
fn raw_fd(f: &File) -> i32 {
    use std::os::fd::AsRawFd;
    f.as_raw_fd()
}

#[cfg(not(unix))]
fn raw_fd(_f: &File) -> i32 {
    -1
}

/// The file and offset behind a slice, if it lies in a registered region.
fn lookup(slice: &[u8]) -> Option<(i32, usize)> {
    if slice.len() < SENDFILE_MIN {
        return None;
    }
    let p = slice.as_ptr() as usize;
    let regions = REGIONS.read().unwrap_or_else(|p| p.into_inner());
    let (&start, &(len, fd)) = regions.range(..=p).next_back()?;
    (fd >= 0 && p + slice.len() <= start + len).then_some((fd, p - start))
}

/// Writes `bufs` to `stream`, sending a file-backed slice with `sendfile`. `None` when
/// no slice is file-backed: the caller writes them as usual.
#[cfg(target_os = "linux")]
pub(crate) fn poll_write(
    stream: &tokio::net::TcpStream,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Option<Poll<io::Result<usize>>> {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;

    let (i, (file_fd, offset)) = bufs
        .iter()
        .enumerate()
        .find_map(|(i, b)| lookup(b).map(|l| (i, l)))?;
    let sock = stream.as_raw_fd();
    let head = &bufs[..i];
    let head_len: usize = head.iter().map(|b| b.len()).sum();
    let body_len = bufs[i].len();
    Some(loop {
        match stream.poll_write_ready(cx) {
            Poll::Pending => break Poll::Pending,
            Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {}
        }
        let r = stream.try_io(Interest::WRITABLE, || {
            let mut sent = 0usize;
            if head_len > 0 {
                // The head goes out with MSG_MORE so it shares a packet with the body.
                let msg = libc::msghdr {
                    msg_name: std::ptr::null_mut(),
                    msg_namelen: 0,
                    msg_iov: head.as_ptr() as *mut libc::iovec,
                    msg_iovlen: head.len() as _,
                    msg_control: std::ptr::null_mut(),
                    msg_controllen: 0,
                    msg_flags: 0,
                };
                // SAFETY: IoSlice is ABI-compatible with iovec; the slices outlive the call.
                let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_MORE | libc::MSG_NOSIGNAL) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                sent = n as usize;
                if sent < head_len {
                    return Ok(sent);
                }
            }
            let mut off = offset as libc::off_t;
            // SAFETY: both descriptors are open (the socket by `stream`, the file by the
            // region's owner, alive while the slice is); `off` is a valid pointer.
            let n = unsafe { libc::sendfile(sock, file_fd, &mut off, body_len) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
            if n == 0 && body_len > 0 {
                // The file is shorter than its memory copy: never expected for a blob.
                return if sent > 0 {
                    Ok(sent)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob file shorter than its cached body",
                    ))
                };
            }
            Ok(sent + n as usize)
        });
        match r {
            Ok(n) => break Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => break Poll::Ready(Err(e)),
        }
    })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn poll_write(
    _stream: &tokio::net::TcpStream,
    _cx: &mut Context<'_>,
    _bufs: &[io::IoSlice<'_>],
) -> Option<Poll<io::Result<usize>>> {
    None
}
