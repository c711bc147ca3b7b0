//! How parties talk: framed byte messages over directed links.
//!
//! A party holds a [`Tx`] for each link it sends on and an [`Rx`] for each it receives
//! on; protocol code sees nothing else. Byte counting is a wrapper ([`Counted`]) around
//! any `Tx`, so every byte is counted once, per directed link, where it is sent.
//! [`inproc`] connects four parties inside one process with crossbeam channels; a
//! network transport implements the same two traits.

pub mod inproc;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The eight directed links between client, servers and dealer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// Client → server 0.
    ClientToS0,
    /// Client → server 1.
    ClientToS1,
    /// Server 0 → server 1.
    S0ToS1,
    /// Server 1 → server 0.
    S1ToS0,
    /// Dealer → server 0.
    DealerToS0,
    /// Dealer → server 1.
    DealerToS1,
    /// Server 0 → client.
    S0ToClient,
    /// Server 1 → client.
    S1ToClient,
}

impl Link {
    /// All links, in report order.
    pub const ALL: [Link; 8] = [
        Link::ClientToS0,
        Link::ClientToS1,
        Link::S0ToS1,
        Link::S1ToS0,
        Link::DealerToS0,
        Link::DealerToS1,
        Link::S0ToClient,
        Link::S1ToClient,
    ];

    /// The snake-case name used in reports (`client_to_s0`, …).
    pub fn name(self) -> &'static str {
        match self {
            Link::ClientToS0 => "client_to_s0",
            Link::ClientToS1 => "client_to_s1",
            Link::S0ToS1 => "s0_to_s1",
            Link::S1ToS0 => "s1_to_s0",
            Link::DealerToS0 => "dealer_to_s0",
            Link::DealerToS1 => "dealer_to_s1",
            Link::S0ToClient => "s0_to_client",
            Link::S1ToClient => "s1_to_client",
        }
    }

    fn index(self) -> usize {
        Link::ALL.iter().position(|l| *l == self).expect("every link is listed")
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What can go wrong moving a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The other end is gone (its party stopped or failed).
    #[error("link {link}: the peer disconnected")]
    Disconnected {
        /// The link.
        link: Link,
    },
}

/// The sending half of a directed link.
pub trait Tx: Send {
    /// Sends one frame.
    fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError>;
    /// The link this half sends on.
    fn link(&self) -> Link;
}

/// The receiving half of a directed link.
pub trait Rx: Send {
    /// Receives the next frame, blocking until one arrives or the sender is gone.
    fn recv(&mut self) -> Result<Vec<u8>, TransportError>;
    /// The link this half receives on.
    fn link(&self) -> Link;
}

/// Bytes sent on every link, shared by all the [`Counted`] senders of one run.
#[derive(Clone, Debug, Default)]
pub struct Counters(Arc<[AtomicU64; 8]>);

impl Counters {
    /// Bytes sent so far on `link`.
    pub fn bytes(&self, link: Link) -> u64 {
        self.0[link.index()].load(Ordering::Relaxed)
    }
}

/// A [`Tx`] that counts the bytes of every frame it sends.
pub struct Counted<T> {
    inner: T,
    counters: Counters,
}

impl<T: Tx> Counted<T> {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: T, counters: Counters) -> Self {
        Counted { inner, counters }
    }
}

impl<T: Tx> Tx for Counted<T> {
    fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        let n = frame.len() as u64;
        self.inner.send(frame)?;
        self.counters.0[self.inner.link().index()].fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
    fn link(&self) -> Link {
        self.inner.link()
    }
}
