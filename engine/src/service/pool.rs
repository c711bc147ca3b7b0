//! Correlation pools: numbered, single-use lookup correlations of one width, dealt
//! ahead of any session (DESIGN §9).
//!
//! A lookup's correlation (a mask share and a point-function share) depends only on
//! the lookup's width, never on the session or the input, so the dealer fills a pool
//! per width at each server in the same order, in blocks of [`BLOCK`]. Correlation
//! number `k` of a pool is lookup `k % BLOCK` of block `k / BLOCK` at both servers. The
//! leader assigns each wave the next `count` numbers of its width and names the first
//! in the wave's plan; the follower checks that its own pool is at the same number.
//!
//! A pool hands every number out once: its cursor only moves forward, and a block's
//! frame goes back to the buffer pool when the last wave that used part of it is done.
//! The pool's `epoch` (drawn from the CSPRNG when the pool's link is made) prefixes
//! every number, so a plan from before a link was re-established cannot name a
//! correlation of the new one.
//!
//! # Performance
//! A pool is a queue of decoded blocks: taking `count` correlations is a copy of their
//! mask shares and at most `count / BLOCK + 2` shared references to key frames; keys are
//! decoded a group at a time when the wave's lookups expand them (as in a batch round).

use crate::party::sharing::Sharing;
use crate::protocol::ProtocolError;
use crate::protocol::wire::{EncodedKeys, decode_correlations};
use crate::transport::BoxRx;
use pmsm_kernels::Party;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

/// Correlations per dealer block (one frame per server).
pub const BLOCK: usize = 1024;

/// A decoded block, partly consumed.
struct Block<S: Sharing> {
    /// Number of the block's first correlation.
    first: u64,
    masks: Vec<u64>,
    keys: Arc<EncodedKeys<S::Leaf>>,
    /// Correlations of the block already handed out.
    used: usize,
}

/// Part of a dealer frame: the keys `range` of it.
pub type KeyPart<S> = (Arc<EncodedKeys<<S as Sharing>::Leaf>>, Range<usize>);

/// The correlations a wave consumes: numbers `first..first + masks.len()`, their mask
/// shares, and where their keys lie (parts of one or more dealer frames, in order).
pub struct Taken<S: Sharing> {
    /// Number of the first correlation.
    pub first: u64,
    /// This server's mask shares, one per lookup.
    pub masks: Vec<u64>,
    /// The keys: `(frame, range in it)`, covering the lookups in order.
    pub parts: Vec<KeyPart<S>>,
}

impl<S: Sharing> std::fmt::Debug for Taken<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Taken({} correlations from {}, <redacted>)", self.masks.len(), self.first)
    }
}

/// One width's pool at one server, fed by the dealer over `from_dealer`.
pub struct Pool<S: Sharing> {
    width: u32,
    epoch: u64,
    /// Next number to hand out.
    next: u64,
    /// Number of the next block expected from the dealer.
    next_block: u64,
    blocks: VecDeque<Block<S>>,
    /// The server this pool belongs to (keys for the other are refused).
    party: Party,
    from_dealer: BoxRx,
}

impl<S: Sharing> std::fmt::Debug for Pool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool(width {}, next {}, {} blocks queued)", self.width, self.next, self.blocks.len())
    }
}

impl<S: Sharing> Pool<S> {
    /// An empty pool of `width`-bit correlations in `epoch` for server `party`, filled
    /// from `from_dealer`.
    pub fn new(width: u32, epoch: u64, party: Party, from_dealer: BoxRx) -> Self {
        Pool { width, epoch, next: 0, next_block: 0, blocks: VecDeque::new(), party, from_dealer }
    }

    /// Bits of the lookups this pool serves.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The pool's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The next number this pool hands out.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Correlations received and not yet handed out.
    pub fn available(&self) -> usize {
        self.blocks.iter().map(|b| b.masks.len() - b.used).sum()
    }

    /// Hands out the next `count` correlations, waiting for the dealer's blocks as
    /// needed (backpressure: a wave waits, it does not fail, while the dealer catches
    /// up). A malformed or misnumbered block is a frame error on the dealer's link.
    pub fn take(&mut self, count: usize) -> Result<Taken<S>, ProtocolError> {
        while self.available() < count {
            self.receive()?;
        }
        let first = self.next;
        let mut taken = Taken { first, masks: Vec::with_capacity(count), parts: Vec::new() };
        let mut left = count;
        while left > 0 {
            let block = self.blocks.front_mut().expect("enough correlations were received");
            let n = left.min(block.masks.len() - block.used);
            let range = block.used..block.used + n;
            taken.masks.extend_from_slice(&block.masks[range.clone()]);
            taken.parts.push((Arc::clone(&block.keys), range));
            block.used += n;
            left -= n;
            if block.used == block.masks.len() {
                self.blocks.pop_front();
            }
        }
        self.next += count as u64;
        debug_assert_eq!(self.blocks.front().map_or(self.next, |b| b.first + b.used as u64), self.next);
        Ok(taken)
    }

    /// Receives the dealer's next block.
    fn receive(&mut self) -> Result<(), ProtocolError> {
        let link = self.from_dealer.link();
        let frame = self.from_dealer.recv()?;
        // Frames name their block (mod 2^32); the count is fixed.
        let corrs = decode_correlations::<S::Leaf>(frame, link, self.party, self.next_block as u32, BLOCK, self.width)?;
        let (masks, keys) = corrs.into_parts();
        let first = self.next_block * BLOCK as u64;
        self.blocks.push_back(Block { first, masks, keys: Arc::new(keys), used: 0 });
        self.next_block += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::party::dealer::deal;
    use crate::party::sharing::Xor;
    use crate::transport::inproc::link_pair;
    use crate::transport::{Link, Tx};
    use pmsm_kernels::rng::SecretRng;

    #[test]
    fn numbers_are_handed_out_once_and_in_order_across_blocks() {
        let (mut tx, rx) = link_pair(Link::DealerToS0, 8, None);
        let mut rng = SecretRng::from_os();
        for b in 0..3 {
            let [f0, _] = deal::<Xor>(b, BLOCK, 12, &mut rng).unwrap();
            tx.send(f0).unwrap();
        }
        let mut pool = Pool::<Xor>::new(12, 7, Party::P0, Box::new(rx));
        let mut seen = 0u64;
        for count in [1, 1000, 24, 0, 1500, 547] {
            let t = pool.take(count).unwrap();
            assert_eq!((t.first, t.masks.len()), (seen, count));
            assert_eq!(t.parts.iter().map(|p| p.1.len()).sum::<usize>(), count);
            seen += count as u64;
        }
        assert_eq!((pool.next(), pool.available()), (3 * BLOCK as u64, 0));
        // The dealer is gone: the next take fails instead of reusing anything.
        drop(tx);
        assert!(pool.take(1).unwrap_err().to_string().contains("disconnected"));
    }

    #[test]
    fn a_misnumbered_block_is_refused() {
        let (mut tx, rx) = link_pair(Link::DealerToS1, 4, None);
        let [_, f1] = deal::<Xor>(5, BLOCK, 9, &mut SecretRng::from_os()).unwrap();
        tx.send(f1).unwrap();
        let mut pool = Pool::<Xor>::new(9, 1, Party::P1, Box::new(rx));
        let e = pool.take(3).unwrap_err().to_string();
        assert!(e.contains("dealer_to_s1") && e.contains("frame for round/chunk 5 where 0 was expected"), "{e}");
    }
}
