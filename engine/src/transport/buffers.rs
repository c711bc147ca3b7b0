//! Recycled frame buffers: one small process-wide pool of large byte buffers.
//!
//! The dealer writes every round's correlations into a fresh frame of a few hundred
//! KiB, and a server drops it a few rounds later on another thread. Through the
//! allocator, each new frame came back as freshly faulted pages: zeroing them and the
//! page faults were 6 % of the DLP benchmark's CPU (perf). Frames are returned here
//! instead ([`recycle`]) and handed out again, zeroed, by [`zeroed`].
//!
//! Invariants: a buffer handed out is always fully zeroed, so no byte of an earlier
//! frame (which may have been the other server's keys) can reach a new one; the pool
//! holds at most [`KEEP`] buffers and [`KEEP_BYTES`] bytes, so its memory is bounded
//! whatever the frame sizes. Buffers under [`MIN_BYTES`] are left to the allocator,
//! which serves small blocks from its own free lists.

use std::sync::Mutex;

/// Most buffers kept. The frames in flight swing by a few dozen as the dealer and the
/// servers take turns: of the DLP benchmark's ~2,500 frames, a pool of 16 missed 452
/// times, one of 64 missed 127 (68 of them while the pipeline first fills).
pub const KEEP: usize = 64;
/// Most bytes of capacity kept, over all buffers.
pub const KEEP_BYTES: usize = 64 << 20;
/// Smallest buffer worth pooling.
pub const MIN_BYTES: usize = 16 << 10;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn pool() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    // A panic elsewhere while holding the lock leaves the list itself intact.
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A buffer of `len` zero bytes: the smallest pooled one that holds `len`, else a new
/// allocation. Costs one `memset` of `len` bytes either way.
pub fn zeroed(len: usize) -> Vec<u8> {
    match take(len) {
        Some(mut b) => {
            b.clear();
            b.resize(len, 0);
            b
        }
        None => vec![0; len],
    }
}

/// The smallest pooled buffer whose capacity holds `len`, if `len` is worth pooling.
fn take(len: usize) -> Option<Vec<u8>> {
    if len < MIN_BYTES {
        return None;
    }
    let mut p = pool();
    let best = (0..p.len()).filter(|&i| p[i].capacity() >= len).min_by_key(|&i| p[i].capacity())?;
    Some(p.swap_remove(best))
}

/// Gives `buf` back for reuse. The pool keeps the largest buffers it is given (each can
/// serve any smaller frame): when full, `buf` replaces the smallest kept one if it is
/// larger, and is dropped otherwise, as is a buffer under [`MIN_BYTES`].
pub fn recycle(buf: Vec<u8>) {
    let cap = buf.capacity();
    if !(MIN_BYTES..=KEEP_BYTES).contains(&cap) {
        return;
    }
    let mut p = pool();
    if p.len() == KEEP {
        let i = smallest(&p);
        if p[i].capacity() >= cap {
            return;
        }
        p.swap_remove(i);
    }
    while !p.is_empty() && p.iter().map(Vec::capacity).sum::<usize>() + cap > KEEP_BYTES {
        let i = smallest(&p);
        p.swap_remove(i);
    }
    p.push(buf);
}

/// Index of the pooled buffer with the least capacity; `p` is not empty.
fn smallest(p: &[Vec<u8>]) -> usize {
    (0..p.len()).min_by_key(|&i| p[i].capacity()).expect("a non-empty pool")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycled_buffers_come_back_zeroed_and_bounded() {
        // Other tests may use the pool concurrently: check only what holds regardless.
        let mut b = zeroed(MIN_BYTES * 2);
        assert!(b.iter().all(|&x| x == 0));
        b.fill(0xa5);
        recycle(b);
        for len in [MIN_BYTES, MIN_BYTES * 2, MIN_BYTES + 3] {
            let b = zeroed(len);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&x| x == 0), "a recycled buffer kept old bytes");
            recycle(b);
        }
        for _ in 0..KEEP * 2 {
            recycle(vec![0xa5; MIN_BYTES]);
        }
        let p = pool();
        assert!(p.len() <= KEEP);
        assert!(p.iter().map(Vec::capacity).sum::<usize>() <= KEEP_BYTES);
    }

    #[test]
    fn small_buffers_are_not_pooled() {
        let b = zeroed(10);
        assert_eq!(b, vec![0; 10]);
        recycle(vec![1; 10]);
        assert!(pool().iter().all(|b| b.capacity() >= MIN_BYTES));
    }
}
