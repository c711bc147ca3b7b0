//! Four parties in one process: one bounded crossbeam channel per directed link.
//!
//! Bounded channels give backpressure: the dealer can run at most `depth` frames ahead
//! of a server. Dropping a party's endpoints (its thread ended, or failed) disconnects
//! its links, which its peers see as [`TransportError::Disconnected`].

use super::{BoxRx, BoxTx, ClientEnds, Counted, Counters, DealerEnds, Link, Rx, ServerEnds, TransportError, Tx};
use crossbeam_channel::{Receiver, Sender, bounded};

/// Sending half of an in-process link.
#[derive(Debug)]
pub struct ChanTx {
    link: Link,
    tx: Sender<Vec<u8>>,
    tap: Option<Sender<Vec<u8>>>,
}

/// Receiving half of an in-process link.
#[derive(Debug)]
pub struct ChanRx {
    link: Link,
    rx: Receiver<Vec<u8>>,
}

impl Tx for ChanTx {
    fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        if let Some(tap) = &self.tap {
            let _ = tap.send(frame.clone());
        }
        self.tx.send(frame).map_err(|_| TransportError::Disconnected { link: self.link })
    }
    fn link(&self) -> Link {
        self.link
    }
}

impl Rx for ChanRx {
    fn recv(&mut self) -> Result<Vec<u8>, TransportError> {
        self.rx.recv().map_err(|_| TransportError::Disconnected { link: self.link })
    }
    fn link(&self) -> Link {
        self.link
    }
}

/// A complete in-process network.
#[derive(Debug)]
pub struct Network {
    /// The client's ends.
    pub client: ClientEnds,
    /// Server 0's and server 1's ends.
    pub servers: [ServerEnds; 2],
    /// The dealer's ends.
    pub dealer: DealerEnds,
    /// Bytes sent per link.
    pub counters: Counters,
}

/// Builds the network. Links from the dealer hold at most `dealer_depth` frames (the
/// dealer's lead); every other link holds `depth` (at least one wave of frames, so two
/// servers sending a wave's openings to each other never both block). `tap`, if
/// given, receives a copy of every frame sent on that link (for tests of what a party
/// sees).
pub fn network(depth: usize, dealer_depth: usize, tap: Option<(Link, Sender<Vec<u8>>)>) -> Network {
    let counters = Counters::default();
    let made = Network::wire(counters.clone(), |link| {
        let cap = if matches!(link, Link::DealerToS0 | Link::DealerToS1) { dealer_depth } else { depth };
        let tap = tap.as_ref().filter(|(l, _)| *l == link).map(|(_, s)| s.clone());
        let (tx, rx) = link_pair(link, cap, tap);
        let tx: BoxTx = Box::new(Counted::new(tx, counters.clone()));
        let rx: BoxRx = Box::new(rx);
        Ok::<_, std::convert::Infallible>((tx, rx))
    });
    match made {
        Ok(net) => net,
        Err(e) => match e {},
    }
}

impl Network {
    /// The four parties' ends from one sending and one receiving end per link, made by
    /// `make` (in [`Link::ALL`] order; the first error is returned); `counters` are the
    /// ones the sending ends count into.
    pub fn wire<E>(counters: Counters, mut make: impl FnMut(Link) -> Result<(BoxTx, BoxRx), E>) -> Result<Network, E> {
        let (c0, c0r) = make(Link::ClientToS0)?;
        let (c1, c1r) = make(Link::ClientToS1)?;
        let (p01, p01r) = make(Link::S0ToS1)?;
        let (p10, p10r) = make(Link::S1ToS0)?;
        let (d0, d0r) = make(Link::DealerToS0)?;
        let (d1, d1r) = make(Link::DealerToS1)?;
        let (o0, o0r) = make(Link::S0ToClient)?;
        let (o1, o1r) = make(Link::S1ToClient)?;
        Ok(Network {
            client: ClientEnds { to_server: [c0, c1], from_server: [o0r, o1r] },
            servers: [
                ServerEnds { from_client: c0r, from_dealer: d0r, to_peer: p01, from_peer: p10r, to_client: o0 },
                ServerEnds { from_client: c1r, from_dealer: d1r, to_peer: p10, from_peer: p01r, to_client: o1 },
            ],
            dealer: DealerEnds { to_server: [d0, d1] },
            counters,
        })
    }
}

/// One in-process link holding at most `depth` frames (at least one); `tap`, if given,
/// receives a copy of every frame sent.
pub fn link_pair(link: Link, depth: usize, tap: Option<Sender<Vec<u8>>>) -> (ChanTx, ChanRx) {
    let (tx, rx) = bounded(depth.max(1));
    (ChanTx { link, tx, tap }, ChanRx { link, rx })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_counted_per_link_and_drops_disconnect() {
        let mut net = network(4, 4, None);
        net.client.to_server[0].send(vec![1, 2, 3]).unwrap();
        assert_eq!(net.servers[0].from_client.recv().unwrap(), vec![1, 2, 3]);
        assert_eq!(net.counters.bytes(Link::ClientToS0), 3);
        assert_eq!(net.counters.bytes(Link::ClientToS1), 0);
        let Network { servers: [s0, _s1], dealer, .. } = net;
        drop(dealer);
        let mut s0 = s0;
        assert_eq!(s0.from_dealer.recv(), Err(TransportError::Disconnected { link: Link::DealerToS0 }));
    }
}
