//! [`EncodeBudget`]: bounds concurrent AVIF encodes by memory as well as by count.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Estimated peak memory of encoding one pixel with ravif/rav1e (bytes), measured on this
/// pipeline's settings (see docs/images.md): frame planes, reference and reconstruction
/// buffers, and rav1e's per-tile state.
pub const AVIF_BYTES_PER_PIXEL: u64 = 60;

/// Fixed overhead of one AVIF encode (bytes): rav1e's context and thread pool.
pub const AVIF_BYTES_BASE: u64 = 8 << 20;

/// A semaphore weighted by bytes: an encode asks for its estimated peak memory and waits
/// until that much of the budget is free (and a slot is free). An encode larger than the
/// whole budget still runs, alone.
#[derive(Debug)]
pub struct EncodeBudget {
    memory_bytes: u64,
    max_concurrent: usize,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    used_bytes: u64,
    running: usize,
    peak_bytes: u64,
    peak_running: usize,
}

/// A granted share of an [`EncodeBudget`], given back on drop.
#[derive(Debug)]
pub struct Permit<'a> {
    budget: &'a EncodeBudget,
    bytes: u64,
}

impl EncodeBudget {
    /// A budget of `memory_bytes` shared by at most `max_concurrent` encodes (both at
    /// least 1).
    pub fn new(memory_bytes: u64, max_concurrent: usize) -> Self {
        EncodeBudget {
            memory_bytes: memory_bytes.max(1),
            max_concurrent: max_concurrent.max(1),
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    /// The default: 1 GiB, and as many encodes as the current rayon pool has threads.
    pub fn default_for_machine() -> Self {
        EncodeBudget::new(1 << 30, rayon::current_num_threads())
    }

    /// The configured memory budget in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// The configured maximum of concurrent encodes.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// Estimated peak memory of an AVIF encode of `width` x `height`.
    pub fn estimate_avif(width: u32, height: u32) -> u64 {
        AVIF_BYTES_BASE + u64::from(width) * u64::from(height) * AVIF_BYTES_PER_PIXEL
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `bytes` (clamped to the whole budget) and one slot are free, and takes
    /// them until the permit is dropped.
    pub fn acquire(&self, bytes: u64) -> Permit<'_> {
        let bytes = bytes.min(self.memory_bytes);
        let mut state = self.lock();
        while state.running >= self.max_concurrent || state.used_bytes + bytes > self.memory_bytes {
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.used_bytes += bytes;
        state.running += 1;
        state.peak_bytes = state.peak_bytes.max(state.used_bytes);
        state.peak_running = state.peak_running.max(state.running);
        Permit {
            budget: self,
            bytes,
        }
    }

    /// The most bytes and the most encodes ever held at once (for tests and reports).
    pub fn peaks(&self) -> (u64, usize) {
        let state = self.lock();
        (state.peak_bytes, state.peak_running)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = self.budget.lock();
        state.used_bytes -= self.bytes;
        state.running -= 1;
        drop(state);
        self.budget.freed.notify_all();
    }
}
