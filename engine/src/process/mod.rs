//! Parties as processes: the servers, the dealer and clients on different machines,
//! over TCP with mutual TLS.
//!
//! ```text
//!            client ──(dials)──▶ server 0 ◀──(dials)── server 1 ◀──(dials)── client
//!                                    │                     │
//!                                    └──(dial)──▶ dealer ◀─(dial)─┘
//! ```
//!
//! Every directed link of [`Link::ALL`] is its own TLS connection, carrying frames one
//! way after the handshake ([`hello`]). Servers and the dealer listen; the client dials
//! both servers (two connections each: inputs in, outputs back), server 1 dials server
//! 0 (one connection per direction) and each server dials the dealer. A session is
//! named by a random 128-bit [`SessionId`] the client draws; the client's input
//! connection opens it at each server and carries the session [`spec`], which the
//! servers pass on to each other and to the dealer so that all four agree on the
//! schedule. Acceptors check the dialer's certificate role against the link, the
//! machine's [`Fingerprint`] and the handshake version, and answer each hello only once
//! the session claims the connection: connections for a session nobody opened are
//! refused after the session timeout ("unknown session").
//!
//! Within a session the parties run exactly the in-process code ([`crate::Engine::serve`],
//! [`crate::Engine::deal`], [`crate::Engine::client`]) over [`crate::transport::tcp`]
//! links, so every protocol runs over both transports and frames (and their byte counts)
//! are identical. A party whose session fails sends the error on its outgoing links as
//! an abort frame, so its peers report the root cause.

pub mod client;
pub mod dealer;
pub mod hello;
pub mod listen;
pub mod server;
pub mod spec;
pub mod timestamp;

use crate::dfa::Dfa;
use crate::transport::frame::{self, Frame};
use crate::transport::tcp::{self, LinkCloser, Stream, TcpRx, TcpTx};
use crate::transport::tls::{ClientStream, Identity, Role, ServerStream};
use crate::transport::{BoxRx, BoxTx, Counted, Counters, Link};
use hello::{Ack, Hello, VERSION};
use pmsm_kernels::rng::{RngCore, SecretRng};
use std::fmt;
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A session's name: 128 random bits drawn by the client.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// A fresh random id (from the CSPRNG, so ids cannot be predicted and hijacked).
    pub fn random() -> SessionId {
        let mut b = [0u8; 16];
        SecretRng::from_os().fill_bytes(&mut b);
        SessionId(b)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// SHA-256 of a machine's canonical JSON table ([`crate::dfa::json::table_json_string`]:
/// its natural output, a default for showing answers, is not covered).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of `dfa`.
    pub fn of(dfa: &Dfa) -> Fingerprint {
        let json = crate::dfa::json::table_json_string(dfa);
        let d = ring::digest::digest(&ring::digest::SHA256, json.as_bytes());
        Fingerprint(d.as_ref().try_into().expect("32 bytes"))
    }

    /// The fingerprint of a machine set: its policy, and per group its rules' ids, its
    /// machine's fingerprint and its states' labels.
    pub fn of_set(set: &crate::dfa::set::MachineSet) -> Fingerprint {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"pmsm machine set\0");
        ctx.update(set.policy().name().as_bytes());
        for g in set.groups() {
            ctx.update(&(g.rules.len() as u64).to_le_bytes());
            for id in g.rules.iter().map(|&r| &set.ids()[r]) {
                ctx.update(&(id.len() as u64).to_le_bytes());
                ctx.update(id.as_bytes());
            }
            ctx.update(&Fingerprint::of(&g.dfa).0);
            g.labels.iter().for_each(|l| ctx.update(&l.to_le_bytes()));
        }
        Fingerprint(ctx.finish().as_ref().try_into().expect("32 bytes"))
    }
}

impl fmt::Display for Fingerprint {
    /// The first 8 bytes in hex (enough to tell machines apart in a message).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0[..8].iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Timeouts and limits of the network parties.
#[derive(Clone, Copy, Debug)]
pub struct NetOptions {
    /// Connecting, the TLS handshake and the hello exchange (default 10 s).
    pub handshake_timeout: Duration,
    /// How long a session waits for its other connections, and how long a connection
    /// for an unknown session waits before it is refused (default 30 s).
    pub session_timeout: Duration,
    /// Longest wait for a frame, or to write one, within a session (default 600 s: a
    /// client may wait for its first output until every round of its chunk is done).
    pub io_timeout: Duration,
    /// Largest frame accepted.
    pub max_frame: usize,
    /// Connections a listening party holds at once before its session claims them
    /// (handshaking or parked); beyond it new connections are closed at once, so a
    /// flood of connections cannot exhaust the party's threads (default 256).
    pub max_connections: usize,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            handshake_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(600),
            max_frame: frame::MAX_FRAME,
            max_connections: 256,
        }
    }
}

/// Largest handshake frame: a spec for [`spec::MAX_INSTANCES`] instances.
const MAX_HELLO: usize = 64 + 16 + 4 * spec::MAX_INSTANCES;

/// A session or connection failure, stated for the operator.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Setting up a connection or a session failed.
    #[error("{0}")]
    Setup(String),
    /// The protocol run failed.
    #[error(transparent)]
    Run(#[from] crate::Error),
}

impl From<crate::protocol::ProtocolError> for NetError {
    fn from(e: crate::protocol::ProtocolError) -> Self {
        NetError::Run(e.into())
    }
}

/// What one session did, for the log and the stats file.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The session.
    pub session: SessionId,
    /// Instances.
    pub instances: usize,
    /// Symbols processed.
    pub transitions: usize,
    /// Seconds from the session's links being up to its end.
    pub seconds: f64,
    /// Bytes this party sent, per link.
    pub bytes: crate::LinkBytes,
    /// Server: seconds per round, openings sent → round finished (empty for the dealer).
    pub round_seconds: Vec<f64>,
}

/// One established connection, either side, before it becomes a link.
pub enum Conn {
    /// Accepted by this party (it answers the hello).
    Accepted(Box<ServerStream>),
    /// Dialed by this party.
    Dialed(Box<ClientStream>),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conn::Accepted(_) => "Conn::Accepted",
            Conn::Dialed(_) => "Conn::Dialed",
        })
    }
}

impl Conn {
    pub(crate) fn sock(&self) -> &TcpStream {
        match self {
            Conn::Accepted(s) => &s.sock,
            Conn::Dialed(s) => &s.sock,
        }
    }

    pub(crate) fn into_stream(self) -> Box<dyn Stream> {
        match self {
            Conn::Accepted(s) => s,
            Conn::Dialed(s) => s,
        }
    }

    /// Writes one data frame and flushes.
    pub(crate) fn send(&mut self, body: &[u8]) -> std::io::Result<()> {
        let s: &mut dyn Stream = match self {
            Conn::Accepted(s) => s.as_mut(),
            Conn::Dialed(s) => s.as_mut(),
        };
        frame::write_data(s, body)?;
        s.flush()
    }

    /// Refuses (answers the hello with `reason`) and closes. Best effort.
    pub fn refuse(self, reason: &str) {
        let mut c = self;
        let _ = c.send(&Ack::Refused(reason.to_string()).encode());
        c.into_stream().close();
    }

    /// Sends an abort frame carrying `reason` and closes (for a connection whose hello
    /// was answered already). Best effort.
    pub fn abort(self, reason: &str) {
        let mut s = self.into_stream();
        let _ = frame::write_abort(&mut s, reason);
        s.close();
    }
}

/// Connections of a session being assembled; on failure each is refused (hello not
/// yet answered) or aborted (answered already).
#[derive(Debug, Default)]
pub(crate) struct Assembly {
    unanswered: Vec<(Link, Conn)>,
    answered: Vec<(Link, Conn)>,
}

impl Assembly {
    pub(crate) fn accepted(&mut self, link: Link, conn: Conn) {
        self.unanswered.push((link, conn));
    }
    pub(crate) fn dialed(&mut self, link: Link, conn: Conn) {
        self.answered.push((link, conn));
    }
    /// Answers every accepted hello with OK.
    pub(crate) fn answer(&mut self) -> Result<(), String> {
        for (link, mut conn) in std::mem::take(&mut self.unanswered) {
            let sent = conn.send(&Ack::Ok.encode());
            self.answered.push((link, conn));
            sent.map_err(|e| format!("answering {link}: {e}"))?;
        }
        Ok(())
    }
    /// Refuses or aborts every connection with `reason`; returns it as the error.
    pub(crate) fn fail(self, reason: String) -> NetError {
        self.unanswered.into_iter().for_each(|(_, c)| c.refuse(&reason));
        self.answered.into_iter().for_each(|(_, c)| c.abort(&reason));
        NetError::Setup(reason)
    }
    pub(crate) fn into_conns(self) -> Vec<(Link, Conn)> {
        self.answered
    }
}

/// Dials `addr`, expecting a `peer` certificate, and sends `hello`; the answer is read
/// by [`await_ack`] (so that a party can send all its hellos before waiting for any).
pub fn dial(identity: &Identity, addr: &str, peer: Role, hello: &Hello, opts: &NetOptions) -> Result<Conn, NetError> {
    let what = |e: &dyn fmt::Display| NetError::Setup(format!("{peer} at {addr} ({}): {e}", hello.link));
    let sock_addr =
        addr.to_socket_addrs().map_err(|e| what(&e))?.next().ok_or_else(|| what(&"the address resolves to nothing"))?;
    let sock = TcpStream::connect_timeout(&sock_addr, opts.handshake_timeout).map_err(|e| what(&e))?;
    sock.set_nodelay(true).map_err(|e| what(&e))?;
    tcp::set_timeouts(&sock, Some(opts.handshake_timeout)).map_err(|e| what(&e))?;
    let stream = identity.connect(sock, peer).map_err(|e| what(&e))?;
    let mut conn = Conn::Dialed(Box::new(stream));
    conn.send(&hello.encode()).map_err(|e| what(&e))?;
    Ok(conn)
}

/// Reads the answer to a hello sent on `conn` (to `peer` at `addr`, for `link`).
pub fn await_ack(conn: &mut Conn, peer: Role, addr: &str, link: Link) -> Result<(), NetError> {
    let what = |e: &dyn fmt::Display| NetError::Setup(format!("{peer} at {addr} ({link}): {e}"));
    let Conn::Dialed(s) = conn else { return Err(what(&"not a dialed connection")) };
    match frame::read_frame(s.as_mut(), 1 << 16) {
        Ok(Some(Frame::Data(b))) => match Ack::decode(&b).map_err(|e| what(&e))? {
            Ack::Ok => Ok(()),
            Ack::Refused(r) => Err(what(&format!("refused: {r}"))),
        },
        Ok(Some(Frame::Abort(r))) => Err(what(&format!("aborted: {r}"))),
        Ok(None) => Err(what(&"closed the connection during the handshake")),
        Err(e) => Err(what(&e)),
    }
}

/// A hello for `link` of `session`.
pub fn hello_for(link: Link, session: SessionId, fingerprint: Fingerprint, spec: Vec<u8>) -> Hello {
    Hello { version: VERSION, link, session, fingerprint, spec }
}

/// A session's links once every connection is up: receivers, counted senders, and the
/// closers that end the senders' connections.
pub struct Links {
    rx: Vec<(Link, BoxRx)>,
    tx: Vec<(Link, BoxTx)>,
    closers: Vec<LinkCloser>,
    /// Bytes sent by this party, per link.
    pub counters: Counters,
}

impl fmt::Debug for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Links").field("closers", &self.closers).finish_non_exhaustive()
    }
}

impl Links {
    /// Turns connections into links: this party (`me`) sends on a link whose sender is
    /// its role, and receives on the others. Senders queue up to `depth(link)` frames.
    pub fn new(me: Role, conns: Vec<(Link, Conn)>, depth: impl Fn(Link) -> usize, opts: &NetOptions) -> Self {
        let mut links = Links { rx: Vec::new(), tx: Vec::new(), closers: Vec::new(), counters: Counters::default() };
        for (link, conn) in conns {
            let _ = tcp::set_timeouts(conn.sock(), Some(opts.io_timeout));
            let stream = conn.into_stream();
            if link.roles().0 == me {
                let (tx, closer): (TcpTx, LinkCloser) = tcp::sender(link, stream, depth(link), Some(opts.io_timeout));
                links.tx.push((link, Box::new(Counted::new(tx, links.counters.clone()))));
                links.closers.push(closer);
            } else {
                links.rx.push((link, Box::new(TcpRx::new(link, stream, opts.max_frame, Some(opts.io_timeout)))));
            }
        }
        links
    }

    /// Takes the sender of `link`.
    pub fn tx(&mut self, link: Link) -> BoxTx {
        let i = self.tx.iter().position(|(l, _)| *l == link).expect("the session set up this link");
        self.tx.swap_remove(i).1
    }

    /// Takes the receiver of `link`.
    pub fn rx(&mut self, link: Link) -> BoxRx {
        let i = self.rx.iter().position(|(l, _)| *l == link).expect("the session set up this link");
        self.rx.swap_remove(i).1
    }

    /// Runs the session's protocol part (`run`, which returns the per-round seconds it
    /// measured) on these links' ends, then closes the links — with an abort frame
    /// naming `me` and the error if it failed — and summarises the session.
    pub fn run(
        self,
        me: Role,
        session: SessionId,
        lengths: &[usize],
        run: impl FnOnce() -> Result<Vec<f64>, crate::Error>,
    ) -> Result<Summary, NetError> {
        let start = std::time::Instant::now();
        let counters = self.counters.clone();
        match run() {
            Ok(round_seconds) => {
                self.close(Ok(()))?;
                Ok(Summary {
                    session,
                    instances: lengths.len(),
                    transitions: lengths.iter().sum(),
                    seconds: start.elapsed().as_secs_f64(),
                    bytes: crate::LinkBytes::from_counters(&counters),
                    round_seconds,
                })
            }
            Err(e) => {
                self.close(Err(&format!("{me}: {e}")))?;
                Err(e.into())
            }
        }
    }

    /// Ends the session's outgoing connections: flushed and closed after a success,
    /// or with an abort frame carrying the error after a failure. Returns the first
    /// flush error after a success.
    pub fn close(self, outcome: Result<(), &str>) -> Result<(), NetError> {
        drop(self.tx);
        drop(self.rx);
        let mut first = Ok(());
        for c in self.closers {
            match outcome {
                Ok(()) => {
                    if let Err(e) = c.finish()
                        && first.is_ok()
                    {
                        first = Err(NetError::Run(crate::protocol::ProtocolError::from(e).into()));
                    }
                }
                Err(reason) => c.abort(reason),
            }
        }
        first
    }
}

/// Runs the sessions `listener` announces, each on its own thread, with `session`.
/// Logs one line per session on stderr and, with `stats`, appends one JSON line per
/// session to that file (`"type": "session"`, a `"timestamp"` in RFC 3339 UTC taken
/// when the session ended, then its role, id, outcome and counts). With `limit`, stops after that many sessions; without, serves
/// until `stop` is raised (a signal): then it opens no new session, lets the running
/// ones finish and returns (graceful shutdown). Fails if any session failed.
pub fn run_sessions(
    role: Role,
    listener: &listen::Listener,
    limit: Option<usize>,
    stats: Option<&std::path::Path>,
    stop: &std::sync::atomic::AtomicBool,
    session: impl Fn(SessionId) -> Result<Summary, NetError> + Sync,
) -> Result<(), NetError> {
    let stats_file = std::sync::Mutex::new(());
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let record = |id: SessionId, result: &Result<Summary, NetError>| {
        let line = match result {
            Ok(s) => {
                eprintln!(
                    "pmsm {role}: session {id}: {} instances, {} transitions in {:.3} s",
                    s.instances, s.transitions, s.seconds
                );
                let bytes: serde_json::Map<String, serde_json::Value> = Link::ALL
                    .iter()
                    .filter(|l| s.bytes.get(**l) > 0)
                    .map(|l| (l.name().to_string(), serde_json::json!(s.bytes.get(*l))))
                    .collect();
                let [p50, p99] = crate::party::server::round_latency_ms(&s.round_seconds);
                serde_json::json!({"type": "session", "timestamp": timestamp::now(), "role": role.name(),
                    "session": id.to_string(), "ok": true,
                    "instances": s.instances, "transitions": s.transitions, "seconds": s.seconds, "bytes": bytes,
                    "round_latency_p50_ms": p50, "round_latency_p99_ms": p99,
                    "peak_rss_bytes": peak_rss_bytes()})
            }
            Err(e) => {
                failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                eprintln!("pmsm {role}: session {id} failed: {e}");
                serde_json::json!({"type": "session", "timestamp": timestamp::now(), "role": role.name(),
                    "session": id.to_string(), "ok": false, "error": e.to_string()})
            }
        };
        if let Some(path) = stats {
            let _guard = stats_file.lock().unwrap_or_else(|p| p.into_inner());
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                // One write per line: appends from several processes sharing the file
                // do not interleave (writeln! would write the line in pieces).
                .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
            if let Err(e) = written {
                eprintln!("pmsm {role}: cannot write {}: {e}", path.display());
            }
        }
    };
    let started = std::thread::scope(|scope| {
        let mut started = 0usize;
        while limit.is_none_or(|l| started < l) {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                eprintln!("pmsm {role}: stopping: no new sessions; letting the running ones finish");
                break;
            }
            let Some(id) = listener.next_session(std::time::Duration::from_millis(200)) else { continue };
            started += 1;
            let (session, record) = (&session, &record);
            let spawned = std::thread::Builder::new()
                .name(format!("pmsm-session-{started}"))
                .spawn_scoped(scope, move || record(id, &session(id)));
            if let Err(e) = spawned {
                record(id, &Err(NetError::Setup(format!("cannot start a session thread: {e}"))));
            }
        }
        started
    });
    match failed.into_inner() {
        0 => Ok(()),
        n => Err(NetError::Setup(format!("{n} of {started} sessions failed (see above)"))),
    }
}

/// This process's peak resident set size in bytes (Linux `VmHWM`; `None` elsewhere).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Engines a listening party built, one per distinct [`crate::Settings`]: the public
/// tables (and, for the seed's protocols, the interpolated polynomials) depend only on
/// the machine and the settings, so sessions reuse them. Holds at most
/// [`Engines::CAPACITY`] engines, evicting the oldest.
#[derive(Debug)]
pub struct Engines {
    dfa: Dfa,
    threads: usize,
    depth: usize,
    cache: std::sync::Mutex<Vec<(crate::Settings, std::sync::Arc<crate::Engine>)>>,
}

impl Engines {
    /// Most engines kept.
    pub const CAPACITY: usize = 8;

    /// Engines over `dfa` with `threads` dealer threads and a dealer lead of `depth`.
    pub fn new(dfa: Dfa, threads: usize, depth: usize) -> Engines {
        Engines { dfa, threads, depth, cache: std::sync::Mutex::default() }
    }

    /// The engine for `settings`, built on first use.
    pub fn get(&self, settings: crate::Settings) -> Result<std::sync::Arc<crate::Engine>, crate::Error> {
        let lock = || self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, e)) = lock().iter().find(|(s, _)| *s == settings) {
            return Ok(e.clone());
        }
        // Built outside the lock: sessions with other settings need not wait.
        let engine = std::sync::Arc::new(
            crate::Engine::builder(self.dfa.clone())
                .settings(settings)
                .threads(self.threads)
                .dealer_depth(self.depth)
                .build()?,
        );
        let mut cache = lock();
        if cache.len() == Self::CAPACITY {
            cache.remove(0);
        }
        cache.push((settings, engine.clone()));
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use crate::protocol::{ClassMode, Protocol, Reveal};

    #[test]
    fn engines_are_built_once_per_setting_and_bounded() {
        let dfa = crate::dfa::random::random_dfa(5, 3, &mut pmsm_kernels::rng::WorkloadRng::seed_from_u64(1));
        let engines = Engines::new(dfa, 1, 4);
        let with_chunk = |chunk| Settings {
            protocol: Protocol::LookupXor,
            reveal: Reveal::State,
            classes: ClassMode::Auto,
            chunk: Some(chunk),
            powers: Default::default(),
            full_length_keys: false,
        };
        let a = engines.get(with_chunk(1)).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &engines.get(with_chunk(1)).unwrap()));
        for c in 2..=Engines::CAPACITY + 1 {
            engines.get(with_chunk(c)).unwrap();
        }
        // The oldest was evicted: a new engine is built.
        assert!(!std::sync::Arc::ptr_eq(&a, &engines.get(with_chunk(1)).unwrap()));
        assert!(engines.get(with_chunk(0)).is_err());
    }

    #[test]
    fn fingerprints_tell_machines_apart() {
        let mut rng = pmsm_kernels::rng::WorkloadRng::seed_from_u64(2);
        let a = crate::dfa::random::random_dfa(5, 3, &mut rng);
        let b = crate::dfa::random::random_dfa(5, 3, &mut rng);
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&a.clone()));
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&b));
        // The natural output is how answers are shown, not what the servers compute.
        let accept = a.clone().with_natural_output(crate::dfa::NaturalOutput::Accept);
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&accept));
    }
}
