//! Links between processes: one TLS connection per directed link, carrying
//! length-prefixed frames ([`super::frame`]) one way after the handshake.
//!
//! - [`TcpRx`] reads frames on the receiving party's thread; a read that sees nothing
//!   for the link's timeout fails with [`TransportError::TimedOut`].
//! - [`TcpTx`] hands frames to a writer thread through a bounded queue of `depth`
//!   frames: sending blocks only when the queue is full (backpressure), so two servers
//!   that each send a whole wave of openings before reading never deadlock on full
//!   socket buffers. The writer flushes whenever its queue runs empty.
//! - A [`LinkCloser`] outlives its `TcpTx`: [`LinkCloser::finish`] waits until every
//!   queued frame is written and closes the connection with a TLS close_notify;
//!   [`LinkCloser::abort`] sends an abort frame with the session's error instead, so
//!   the peer reports why the session stopped rather than a bare disconnection.

use super::frame::{self, Frame, FrameError};
use super::tls::{Identity, Role, TlsError, check_peer_role};
use super::{Link, Rx, TransportError, Tx, buffers};
use crossbeam_channel::{Receiver, Sender, bounded};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A byte stream a link runs on: a TLS stream in deployment, anything readable and
/// writable in tests.
pub trait Stream: Read + Write + Send + 'static {
    /// Ends the stream cleanly (TLS close_notify, then TCP shutdown); best effort.
    fn close(&mut self);
}

macro_rules! tls_stream {
    ($t:ty) => {
        impl Stream for $t {
            fn close(&mut self) {
                self.conn.send_close_notify();
                let _ = self.flush();
                let _ = self.sock.shutdown(Shutdown::Write);
            }
        }
    };
}
tls_stream!(super::tls::ServerStream);
tls_stream!(super::tls::ClientStream);

/// Sets `timeout` on both directions of `sock` (`None`: wait forever).
pub fn set_timeouts(sock: &TcpStream, timeout: Option<Duration>) -> io::Result<()> {
    sock.set_read_timeout(timeout)?;
    sock.set_write_timeout(timeout)
}

fn stream_error(link: Link, e: FrameError, timeout: Option<Duration>) -> TransportError {
    match e {
        FrameError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            TransportError::TimedOut { link, seconds: timeout.map_or(0, |t| t.as_secs()) }
        }
        FrameError::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ) =>
        {
            TransportError::Disconnected { link }
        }
        e => TransportError::Broken { link, detail: e.to_string() },
    }
}

/// The receiving half of a link over a stream.
pub struct TcpRx {
    link: Link,
    stream: Box<dyn Stream>,
    max_frame: usize,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for TcpRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpRx").field("link", &self.link).finish_non_exhaustive()
    }
}

impl TcpRx {
    /// Receives `link` on `stream`, refusing frames above `max_frame` bytes. `timeout`
    /// is the stream's read timeout, for the error message.
    pub fn new(link: Link, stream: Box<dyn Stream>, max_frame: usize, timeout: Option<Duration>) -> Self {
        TcpRx { link, stream, max_frame, timeout }
    }
}

impl Rx for TcpRx {
    fn recv(&mut self) -> Result<Vec<u8>, TransportError> {
        match frame::read_frame(&mut self.stream, self.max_frame) {
            Ok(Some(Frame::Data(f))) => Ok(f),
            Ok(Some(Frame::Abort(reason))) => Err(TransportError::Aborted { link: self.link, reason }),
            Ok(None) => Err(TransportError::Disconnected { link: self.link }),
            Err(e) => Err(stream_error(self.link, e, self.timeout)),
        }
    }
    fn link(&self) -> Link {
        self.link
    }
}

enum Msg {
    Frame(Vec<u8>),
    Abort(String),
}

/// The first error the writer met, shared with the senders.
type Failure = Arc<Mutex<Option<TransportError>>>;

/// The sending half of a link over a stream (see the module docs).
pub struct TcpTx {
    link: Link,
    queue: Sender<Msg>,
    failure: Failure,
}

impl std::fmt::Debug for TcpTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTx").field("link", &self.link).finish_non_exhaustive()
    }
}

/// Closes a link once its sender is done: see the module docs.
pub struct LinkCloser {
    link: Link,
    queue: Sender<Msg>,
    writer: JoinHandle<()>,
    /// Disconnected when the writer thread ends.
    ended: Receiver<()>,
    failure: Failure,
}

impl std::fmt::Debug for LinkCloser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkCloser").field("link", &self.link).finish_non_exhaustive()
    }
}

/// Starts the writer thread of `link` on `stream`, with a queue of `depth` frames.
pub fn sender(link: Link, mut stream: Box<dyn Stream>, depth: usize, timeout: Option<Duration>) -> (TcpTx, LinkCloser) {
    let (queue, rx): (Sender<Msg>, Receiver<Msg>) = bounded(depth.max(1));
    let failure: Failure = Arc::default();
    let failed = failure.clone();
    let (ending, ended) = bounded::<()>(0);
    let writer = std::thread::Builder::new()
        .name(format!("pmsm-tx-{link}"))
        .spawn(move || {
            let _ending = ending;
            let result = (|| -> Result<(), FrameError> {
                loop {
                    let msg = match rx.try_recv() {
                        Ok(m) => m,
                        Err(_) => {
                            stream.flush()?;
                            match rx.recv() {
                                Ok(m) => m,
                                Err(_) => break,
                            }
                        }
                    };
                    match msg {
                        Msg::Frame(f) => {
                            frame::write_data(&mut stream, &f)?;
                            buffers::recycle(f);
                        }
                        Msg::Abort(reason) => {
                            frame::write_abort(&mut stream, &reason)?;
                            break;
                        }
                    }
                }
                stream.flush()?;
                Ok(())
            })();
            if let Err(e) = result {
                let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
                f.get_or_insert(stream_error(link, e, timeout));
            }
            stream.close();
        })
        .expect("spawn a link writer thread");
    (TcpTx { link, queue: queue.clone(), failure: failure.clone() }, LinkCloser { link, queue, writer, ended, failure })
}

impl Tx for TcpTx {
    fn send(&mut self, frame: Vec<u8>) -> Result<(), TransportError> {
        let stored = |f: &Failure| f.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(e) = stored(&self.failure) {
            return Err(e);
        }
        self.queue
            .send(Msg::Frame(frame))
            .map_err(|_| stored(&self.failure).unwrap_or(TransportError::Disconnected { link: self.link }))
    }
    fn link(&self) -> Link {
        self.link
    }
}

impl LinkCloser {
    /// Waits until every frame sent so far is written, then closes the connection.
    /// Returns the first write error, if any. The link's [`TcpTx`] must be dropped
    /// first (else this waits for it).
    pub fn finish(self) -> Result<(), TransportError> {
        drop(self.queue);
        let _ = self.writer.join();
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).take().map_or(Ok(()), Err)
    }

    /// Sends an abort frame carrying `reason` after the frames already queued, and
    /// closes the connection. Best effort, and bounded: after 5 s for queueing and 5 s
    /// for writing (a peer that stopped reading), the writer is left to its own write
    /// timeout.
    pub fn abort(self, reason: &str) {
        let wait = Duration::from_secs(5);
        let _ = self.queue.send_timeout(Msg::Abort(reason.to_string()), wait);
        drop(self.queue);
        if self.ended.recv_timeout(wait) == Err(crossbeam_channel::RecvTimeoutError::Disconnected) {
            let _ = self.writer.join();
        }
    }

    /// The link.
    pub fn link(&self) -> Link {
        self.link
    }
}

/// A whole network over loopback TCP with mutual TLS 1.3, every party in this process:
/// one connection per directed link, the sender dialing with its role's identity and the
/// receiver accepting it only from a certificate for that role (as between processes).
/// For measuring a protocol over real sockets and TLS without starting processes.
/// `identity(role)` gives each party's identity; links from the dealer hold
/// `dealer_depth` frames and the others `depth` ([`super::inproc::network`]).
pub fn loopback(
    identity: impl Fn(Role) -> Result<Identity, TlsError>,
    depth: usize,
    dealer_depth: usize,
) -> Result<super::inproc::Network, TlsError> {
    use super::{Counted, Counters};
    let counters = Counters::default();
    let ids: Vec<(Role, Identity)> =
        Role::ALL.iter().map(|&r| identity(r).map(|i| (r, i))).collect::<Result<_, _>>()?;
    let id = |r: Role| &ids.iter().find(|(x, _)| *x == r).expect("every role").1;
    let io = |e: io::Error| TlsError(format!("loopback: {e}"));
    let make = |link: Link| -> Result<(super::BoxTx, super::BoxRx), TlsError> {
        let (from, to) = link.roles();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let acceptor = id(to);
        let (accepted, dialed) = std::thread::scope(|scope| {
            let accepted = scope.spawn(|| -> Result<super::tls::ServerStream, TlsError> {
                let (sock, _) = listener.accept().map_err(io)?;
                sock.set_nodelay(true).map_err(io)?;
                let mut s = acceptor.accept(sock)?;
                let chain = s.conn.peer_certificates().ok_or_else(|| TlsError("no client certificate".into()))?;
                check_peer_role(chain, from).map_err(TlsError)?;
                // An empty frame back, as a process answers a hello: reading it, the
                // dialer also takes in the TLS records the handshake left for it (session
                // tickets), which unread would make its close a reset that loses frames.
                frame::write_data(&mut s, &[]).and_then(|()| s.flush()).map_err(io)?;
                Ok(s)
            });
            let dialed = TcpStream::connect(addr)
                .and_then(|sock| sock.set_nodelay(true).map(|()| sock))
                .map_err(io)
                .and_then(|sock| id(from).connect(sock, to))
                .and_then(|mut s| match frame::read_frame(&mut s, 16) {
                    Ok(Some(Frame::Data(f))) if f.is_empty() => Ok(s),
                    other => Err(TlsError(format!("loopback {link}: no answer to the handshake ({other:?})"))),
                });
            (accepted.join().unwrap_or_else(|_| Err(TlsError("loopback accept panicked".into()))), dialed)
        });
        let cap = if matches!(link, Link::DealerToS0 | Link::DealerToS1) { dealer_depth } else { depth };
        // The acceptor's error first: it names a certificate of the wrong role.
        let rx = TcpRx::new(link, Box::new(accepted?), frame::MAX_FRAME, None);
        let (tx, _closer) = sender(link, Box::new(dialed?), cap, None);
        Ok((Box::new(Counted::new(tx, counters.clone())), Box::new(rx)))
    };
    super::inproc::Network::wire(counters.clone(), make)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A stream writing into a shared buffer.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Read for Shared {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }
    }
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Stream for Shared {
        fn close(&mut self) {}
    }
    struct Bytes(Cursor<Vec<u8>>);
    impl Read for Bytes {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.0.read(b)
        }
    }
    impl Write for Bytes {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Stream for Bytes {
        fn close(&mut self) {}
    }

    fn rx_of(bytes: Vec<u8>) -> TcpRx {
        TcpRx::new(Link::S0ToS1, Box::new(Bytes(Cursor::new(bytes))), 1 << 20, None)
    }

    #[test]
    fn frames_sent_arrive_in_order_then_the_link_ends_cleanly() {
        let buf = Shared::default();
        let (mut tx, closer) = sender(Link::S0ToS1, Box::new(buf.clone()), 2, None);
        for i in 0..10u8 {
            tx.send(vec![i; i as usize]).unwrap();
        }
        drop(tx);
        closer.finish().unwrap();
        let mut rx = rx_of(buf.0.lock().unwrap().clone());
        for i in 0..10u8 {
            assert_eq!(rx.recv().unwrap(), vec![i; i as usize]);
        }
        assert_eq!(rx.recv(), Err(TransportError::Disconnected { link: Link::S0ToS1 }));
    }

    #[test]
    fn an_abort_reaches_the_receiver_as_the_peer_error() {
        let buf = Shared::default();
        let (mut tx, closer) = sender(Link::S0ToS1, Box::new(buf.clone()), 2, None);
        tx.send(vec![1]).unwrap();
        drop(tx);
        closer.abort("server 0: bad frame");
        let mut rx = rx_of(buf.0.lock().unwrap().clone());
        assert_eq!(rx.recv().unwrap(), vec![1]);
        assert_eq!(
            rx.recv(),
            Err(TransportError::Aborted { link: Link::S0ToS1, reason: "server 0: bad frame".into() })
        );
    }

    #[test]
    fn a_truncated_stream_is_a_broken_link() {
        let mut bytes = Vec::new();
        frame::write_data(&mut bytes, &[9; 20]).unwrap();
        bytes.truncate(12);
        let err = rx_of(bytes).recv().unwrap_err();
        assert!(
            matches!(&err, TransportError::Broken { detail, .. } if detail.contains("ended inside a frame")),
            "{err}"
        );
    }
}
