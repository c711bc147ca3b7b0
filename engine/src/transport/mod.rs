//! How parties talk: framed byte messages over directed links.
//!
//! A party holds a [`Tx`] for each link it sends on and an [`Rx`] for each it receives
//! on, gathered in its ends ([`ClientEnds`], [`ServerEnds`], [`DealerEnds`]); protocol
//! code sees nothing else. Byte counting is a wrapper ([`Counted`]) around any `Tx`, so
//! every byte of every frame is counted once, per directed link, where it is sent.
//! [`inproc`] connects four parties inside one process with crossbeam channels; [`tcp`]
//! connects parties in different processes over TCP with mutual TLS ([`tls`]). Both
//! implement the same two traits, so every protocol runs over both.

pub mod buffers;
#[cfg(feature = "dev-certs")]
pub mod certs;
pub mod frame;
pub mod inproc;
pub mod tcp;
pub mod tls;

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

    /// The link's position in [`Link::ALL`] (also its code on the wire).
    pub fn index(self) -> usize {
        Link::ALL.iter().position(|l| *l == self).expect("every link is listed")
    }
}

impl Link {
    /// Which party sends and which receives on the link.
    pub fn roles(self) -> (tls::Role, tls::Role) {
        use tls::Role::{Client, Dealer, Server0, Server1};
        match self {
            Link::ClientToS0 => (Client, Server0),
            Link::ClientToS1 => (Client, Server1),
            Link::S0ToS1 => (Server0, Server1),
            Link::S1ToS0 => (Server1, Server0),
            Link::DealerToS0 => (Dealer, Server0),
            Link::DealerToS1 => (Dealer, Server1),
            Link::S0ToClient => (Server0, Client),
            Link::S1ToClient => (Server1, Client),
        }
    }

    /// The link with the given [`Link::index`].
    pub fn from_index(i: usize) -> Option<Link> {
        Link::ALL.get(i).copied()
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
    /// The peer stopped its session and said why.
    #[error("link {link}: the peer aborted the session: {reason}")]
    Aborted {
        /// The link.
        link: Link,
        /// The peer's own error.
        reason: String,
    },
    /// Nothing arrived (or nothing could be sent) for too long.
    #[error("link {link}: no progress for {seconds} s (timed out)")]
    TimedOut {
        /// The link.
        link: Link,
        /// The timeout.
        seconds: u64,
    },
    /// The byte stream broke: an I/O or TLS error, a truncated or oversized frame.
    #[error("link {link}: {detail}")]
    Broken {
        /// The link.
        link: Link,
        /// What was wrong.
        detail: String,
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

    /// Counts `n` bytes on `link` (for messages that are not frames of a [`Tx`]).
    pub fn add(&self, link: Link, n: u64) {
        self.0[link.index()].fetch_add(n, Ordering::Relaxed);
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

impl<T: fmt::Debug> fmt::Debug for Counted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counted").field("inner", &self.inner).finish_non_exhaustive()
    }
}

/// A sending half of any transport.
pub type BoxTx = Box<dyn Tx>;
/// A receiving half of any transport.
pub type BoxRx = Box<dyn Rx>;

fn links<'a>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    tx: impl Iterator<Item = &'a BoxTx>,
    rx: impl Iterator<Item = &'a BoxRx>,
) -> fmt::Result {
    let sends: Vec<Link> = tx.map(|t| t.link()).collect();
    let receives: Vec<Link> = rx.map(|r| r.link()).collect();
    f.debug_struct(name).field("sends", &sends).field("receives", &receives).finish()
}

/// The client's ends.
pub struct ClientEnds {
    /// To server 0 and 1.
    pub to_server: [BoxTx; 2],
    /// From server 0 and 1.
    pub from_server: [BoxRx; 2],
}

/// One server's ends.
pub struct ServerEnds {
    /// From the client.
    pub from_client: BoxRx,
    /// From the dealer.
    pub from_dealer: BoxRx,
    /// To the other server.
    pub to_peer: BoxTx,
    /// From the other server.
    pub from_peer: BoxRx,
    /// To the client.
    pub to_client: BoxTx,
}

/// The dealer's ends.
pub struct DealerEnds {
    /// To server 0 and 1.
    pub to_server: [BoxTx; 2],
}

impl fmt::Debug for ClientEnds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        links(f, "ClientEnds", self.to_server.iter(), self.from_server.iter())
    }
}

impl fmt::Debug for ServerEnds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tx = [&self.to_peer, &self.to_client];
        let rx = [&self.from_client, &self.from_dealer, &self.from_peer];
        links(f, "ServerEnds", tx.into_iter(), rx.into_iter())
    }
}

impl fmt::Debug for DealerEnds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        links(f, "DealerEnds", self.to_server.iter(), std::iter::empty())
    }
}
