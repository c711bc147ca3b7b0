//! One server of the network back end: a front end for clients and a *generation* of
//! server threads linked to the other server and the dealer.
//!
//! A generation is what one making of the links carries: server 1 dials server 0 (two
//! connections per share family, one a direction), both dial the dealer (one
//! connection per lookup width, named by the generation), the dealer answers each pair
//! with a fresh pool epoch, and each server starts the in-process leader or follower
//! (the in-process `spawn_server`) on those links. Sessions live in a generation:
//! server 0 numbers them from a random base drawn for it. When any link breaks (a peer
//! stopped, restarted or vanished) the generation ends: its threads stop, the links
//! are aborted with the reason, and its sessions are gone (their clients are told so).
//! Server 1 then dials again every second; server 0 waits for it. No pool outlives its
//! generation, so no correlation is used twice across reconnects.

use super::front::{self, Directory};
use super::wire::MAX_RELEASED;
use super::{MachineSpec, NetLimits, fingerprint_of};
use crate::party::sharing::{Ring, Sharing, Xor};
use crate::process::hello::{Ack, Hello, VERSION};
use crate::process::{self, Conn, Fingerprint, NetOptions, SessionId};
use crate::protocol::ProtocolError;
use crate::service::pool::Pool;
use crate::service::session::Request;
use crate::service::{self, Catalog, Context, Options, ServiceError, Stats};
use crate::store::Store;
use crate::transport::frame::{self, Frame};
use crate::transport::tcp::{self, LinkCloser, TcpRx};
use crate::transport::tls::{Identity, Role};
use crate::transport::{BoxRx, BoxTx, Counted, Counters, Link};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use pmsm_kernels::Party;
use pmsm_kernels::rng::{RngCore, SecretRng};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long server 1 waits between attempts to make its links.
const RETRY: Duration = Duration::from_secs(1);
/// Silence on the link from the other server after which it counts as gone (many
/// heartbeats: an idle leader sends an empty wave every second).
const PEER_SILENCE: Duration = Duration::from_secs(30);

/// A network server's configuration.
#[derive(Debug)]
pub struct ServerConfig {
    /// Which server.
    pub party: Party,
    /// Where clients (and, at server 0, server 1) connect.
    pub listen: String,
    /// Server 0's address (server 1 only).
    pub peer: Option<String>,
    /// The dealer's address.
    pub dealer: String,
    /// This server's certificate.
    pub identity: Identity,
    /// The machines served (the other server and the dealer must serve the same).
    pub machines: Vec<MachineSpec>,
    /// Sessions, waves and pools.
    pub options: Options,
    /// The network layer's limits.
    pub limits: NetLimits,
    /// Where to serve `/metrics` and `/health` (plain HTTP), if anywhere.
    pub metrics: Option<String>,
    /// The session store's file, if sessions are durable (the other server needs one
    /// too): sessions then outlive generations and restarts of either server.
    pub store: Option<std::path::PathBuf>,
}

/// Whether clients can be served now, and where their requests go.
pub(crate) struct Gate {
    state: Mutex<GateState>,
}

enum GateState {
    /// No generation: why.
    Down(String),
    /// A generation is running.
    Live(Live),
    /// The server is shutting down.
    Stopping,
}

/// The running generation's request queues, per share family.
#[derive(Clone)]
pub(crate) struct Live {
    /// Its number in this process.
    pub(crate) generation: u64,
    inboxes: [Option<(Sender<Request>, Arc<AtomicBool>)>; 2],
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, s: GateState) {
        *self.lock() = s;
    }

    /// The running generation and family `family`'s queue, or why there is none.
    pub(crate) fn route(&self, family: usize) -> Result<(u64, Sender<Request>, Arc<AtomicBool>), ServiceError> {
        match &*self.lock() {
            GateState::Live(live) => {
                let (tx, closed) = live.inboxes[family].clone().expect("a served family");
                Ok((live.generation, tx, closed))
            }
            GateState::Down(why) => Err(ServiceError::Unavailable(why.clone())),
            GateState::Stopping => Err(ServiceError::Unavailable("the server is shutting down".into())),
        }
    }

    /// The running generation's number.
    pub(crate) fn generation(&self) -> Option<u64> {
        match &*self.lock() {
            GateState::Live(live) => Some(live.generation),
            _ => None,
        }
    }

    /// Whether the server is shutting down.
    pub(crate) fn stopping(&self) -> bool {
        matches!(&*self.lock(), GateState::Stopping)
    }

    /// A gate with no generation yet, for `why`.
    pub(crate) fn down(why: &str) -> Gate {
        Gate { state: Mutex::new(GateState::Down(why.to_string())) }
    }

    /// `Ok` while a generation runs; else why not (the health check).
    pub(crate) fn health(&self) -> Result<(), String> {
        match &*self.lock() {
            GateState::Live(_) => Ok(()),
            GateState::Down(why) => Err(format!("unavailable: {why}")),
            GateState::Stopping => Err("unavailable: shutting down".into()),
        }
    }
}

/// What a server's link thread needs to make generations.
struct Shared {
    party: Party,
    identity: Identity,
    peer: Option<String>,
    dealer: String,
    families: [Arc<Catalog>; 2],
    options: Options,
    limits: NetLimits,
    fingerprint: Fingerprint,
    stats: Arc<Stats>,
    counters: Counters,
    gate: Arc<Gate>,
    stop: Arc<AtomicBool>,
    generations: AtomicU64,
    store: Option<Arc<Store>>,
}

/// A running network server (see the module docs).
pub struct NetServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    links: Option<JoinHandle<()>>,
    front: Option<front::Front>,
}

impl std::fmt::Debug for NetServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetServer").field("addr", &self.addr).field("party", &self.shared.party).finish_non_exhaustive()
    }
}

impl NetServer {
    /// Binds the listening address and starts the front end and the link thread.
    pub fn start(cfg: ServerConfig) -> Result<NetServer, crate::Error> {
        service::check(&cfg.options)?;
        let bad = |m: String| crate::Error::from(ProtocolError::Parameter(m));
        if cfg.machines.is_empty() {
            return Err(bad("a server needs a machine (--machine NAME=FILE)".into()));
        }
        if cfg.party == Party::P1 && cfg.peer.is_none() {
            return Err(bad("server 1 needs server 0's address (--peer)".into()));
        }
        let mut families = service::families(cfg.machines.into_iter().map(|m| (m.name, m.served, m.protocol)))?;
        service::check_machines(&cfg.options, &families)?;
        let store = match &cfg.store {
            Some(path) => Some(Arc::new(Store::open(path, cfg.party).map_err(ProtocolError::from)?)),
            None => None,
        };
        if store.is_some() {
            service::durable(&mut families);
        }
        if let Some(m) = families.iter().flat_map(|c| &c.machines).find(|m| m.interface.values() > MAX_RELEASED) {
            return Err(bad(format!(
                "machine {:?} releases {} values (one per group); a release over the network carries at most \
                 {MAX_RELEASED}: group its rules (--grouping cost or fill)",
                m.name,
                m.interface.values()
            )));
        }
        let fingerprint = fingerprint_of(families.iter().flat_map(|c| &c.machines).map(|m| &m.interface));
        let directory = Directory::new(&families);
        let [xor, ring] = families;
        let gate = Arc::new(Gate::down(&waiting(cfg.party)));
        let (to_links, peer_conns) = crossbeam_channel::unbounded();
        let stats: Arc<Stats> = Arc::default();
        let shared = Arc::new(Shared {
            party: cfg.party,
            identity: cfg.identity.clone(),
            peer: cfg.peer,
            dealer: cfg.dealer,
            families: [Arc::new(xor), Arc::new(ring)],
            options: cfg.options,
            limits: cfg.limits,
            fingerprint,
            stats: Arc::clone(&stats),
            counters: Counters::default(),
            gate: Arc::clone(&gate),
            stop: Arc::new(AtomicBool::new(false)),
            generations: AtomicU64::new(0),
            store,
        });
        let front = front::Front::start(front::FrontConfig {
            listen: &cfg.listen,
            identity: cfg.identity,
            party: cfg.party,
            fingerprint,
            directory,
            limits: cfg.limits,
            gate,
            to_links,
            stats,
            metrics: cfg.metrics.as_deref(),
        })?;
        let addr = front.local_addr();
        let s = Arc::clone(&shared);
        let links = std::thread::Builder::new()
            .name(format!("pmsm-server-{}-links", cfg.party.index()))
            .spawn(move || match s.party {
                Party::P0 => links_server0(&s, &peer_conns),
                Party::P1 => links_server1(&s),
            })
            .map_err(|e| bad(format!("cannot start the link thread: {e}")))?;
        Ok(NetServer { addr, shared, links: Some(links), front: Some(front) })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of `/metrics` and `/health`, if served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.front.as_ref().and_then(front::Front::metrics_addr)
    }

    /// The server's counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Bytes this server sent to the other server (its frames).
    pub fn bytes(&self) -> crate::LinkBytes {
        crate::LinkBytes::from_counters(&self.shared.counters)
    }

    /// Whether a generation is running (the links to the other parties are up).
    pub fn linked(&self) -> bool {
        self.shared.gate.generation().is_some()
    }

    /// Stops: new clients and requests are refused ("shutting down"), waves in flight
    /// finish, the links close.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.links.take() {
            let _ = t.join();
        }
        if let Some(f) = self.front.take() {
            f.shutdown();
        }
    }
}

impl Drop for NetServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn waiting(party: Party) -> String {
    match party {
        Party::P0 => "server 0 is waiting for server 1 to link with it".into(),
        Party::P1 => "server 1 is linking with server 0 and the dealer".into(),
    }
}

/// A change of the links (generations), logged.
fn log(party: Party, what: &str) {
    tracing::info!(party = party.index(), "{what}");
}

/// The families this server serves, as codes (0 XOR, 1 ring).
fn served(s: &Shared) -> Vec<u8> {
    (0..2u8).filter(|&f| !s.families[f as usize].is_empty()).collect()
}

/// Server 0: waits for server 1's connections, runs a generation on them, and starts
/// a new one whenever server 1 links again.
fn links_server0(s: &Shared, incoming: &Receiver<(Hello, Conn)>) {
    let mut next: Option<(Hello, Conn)> = None;
    while !s.stop.load(Ordering::SeqCst) {
        let first = match next.take() {
            Some(c) => c,
            None => match incoming.recv_timeout(Duration::from_millis(100)) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        // Every connection of the generation: two a family.
        let g = first.0.session;
        let want = 2 * served(s).len();
        let mut conns = vec![first];
        let deadline = Instant::now() + s.limits.handshake_timeout;
        while conns.len() < want {
            match incoming.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(c) if c.0.session == g => conns.push(c),
                Ok((_, c)) => c.refuse("a connection of an earlier attempt to link"),
                Err(_) => break,
            }
        }
        let peer = match sort_peer_conns(s, conns) {
            Ok(p) => p,
            Err(e) => {
                log(s.party, &format!("server 1's attempt to link failed: {e}"));
                continue;
            }
        };
        match Generation::start(s, g, peer) {
            Ok(generation) => next = generation.run(s, Some(incoming)),
            Err(e) => {
                log(s.party, &format!("could not link with server 1 and the dealer: {e}"));
                s.gate.set(GateState::Down(format!("server 0 could not link with server 1 and the dealer: {e}")));
            }
        }
    }
    s.gate.set(GateState::Stopping);
}

/// Server 1: dials server 0 and the dealer, runs a generation, and dials again (every
/// [`RETRY`]) when it ends.
fn links_server1(s: &Shared) {
    let mut last_error = String::new();
    while !s.stop.load(Ordering::SeqCst) {
        let g = SessionId::random();
        match dial_server0(s, g).and_then(|peer| Generation::start(s, g, peer)) {
            Ok(generation) => {
                last_error.clear();
                generation.run(s, None);
            }
            Err(e) => {
                // Logged once per distinct cause, not once a second.
                if e != last_error {
                    log(s.party, &format!("cannot link yet (retrying every {} s): {e}", RETRY.as_secs()));
                    last_error = e.clone();
                }
                s.gate.set(GateState::Down(format!("server 1 is not linked with server 0 and the dealer: {e}")));
                let until = Instant::now() + RETRY;
                while Instant::now() < until && !s.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    s.gate.set(GateState::Stopping);
}

/// One family's links to the other server.
struct PeerLinks {
    family: u8,
    to_peer: Conn,
    from_peer: Conn,
}

fn net_options(s: &Shared) -> NetOptions {
    NetOptions { handshake_timeout: s.limits.handshake_timeout, ..NetOptions::default() }
}

fn dial_server0(s: &Shared, g: SessionId) -> Result<Vec<PeerLinks>, String> {
    let addr = s.peer.as_deref().expect("server 1 has server 0's address");
    let mut conns = Vec::new();
    for f in served(s) {
        for link in [Link::S1ToS0, Link::S0ToS1] {
            let hello = Hello { version: VERSION, link, session: g, fingerprint: s.fingerprint, spec: vec![f] };
            let conn =
                process::dial(&s.identity, addr, Role::Server0, &hello, &net_options(s)).map_err(|e| e.to_string())?;
            conns.push((f, link, conn));
        }
    }
    let mut out: Vec<PeerLinks> = Vec::new();
    let mut pending: Vec<(u8, Link, Conn)> = Vec::new();
    for (f, link, mut conn) in conns {
        process::await_ack(&mut conn, Role::Server0, addr, link).map_err(|e| e.to_string())?;
        pending.push((f, link, conn));
    }
    while let Some((f, link, conn)) = pending.pop() {
        let i = pending.iter().position(|(g, _, _)| *g == f).expect("two links a family");
        let (_, _, other) = pending.swap_remove(i);
        let (to_peer, from_peer) = if link == Link::S1ToS0 { (conn, other) } else { (other, conn) };
        out.push(PeerLinks { family: f, to_peer, from_peer });
    }
    Ok(out)
}

/// Checks server 1's hellos (one a direction for every family) and answers them.
fn sort_peer_conns(s: &Shared, conns: Vec<(Hello, Conn)>) -> Result<Vec<PeerLinks>, String> {
    let families = served(s);
    let mut slots: Vec<[Option<Conn>; 2]> = families.iter().map(|_| [None, None]).collect();
    let mut problem = None;
    let mut extra = Vec::new();
    for (hello, conn) in conns {
        let f = hello.spec.first().copied();
        let i = f.and_then(|f| families.iter().position(|&x| x == f));
        let dir = usize::from(hello.link == Link::S1ToS0);
        match i {
            Some(i) if hello.spec.len() == 1 && slots[i][dir].is_none() => slots[i][dir] = Some(conn),
            _ => {
                problem
                    .get_or_insert_with(|| format!("a link for share family {f:?} that is not served or is doubled"));
                extra.push(conn);
            }
        }
    }
    let complete = slots.iter().all(|s| s.iter().all(Option::is_some));
    if problem.is_some() || !complete {
        let why = problem.unwrap_or_else(|| "not every link arrived in time".into());
        for c in extra.into_iter().chain(slots.into_iter().flat_map(|s| s.into_iter().flatten())) {
            c.refuse(&why);
        }
        return Err(why);
    }
    let mut out = Vec::new();
    // slots[i] = [S0ToS1 (server 0 sends), S1ToS0 (server 0 receives)].
    for (i, [to, from]) in slots.into_iter().enumerate() {
        let (mut to_peer, mut from_peer) = (to.expect("complete"), from.expect("complete"));
        for c in [&mut from_peer, &mut to_peer] {
            c.send(&Ack::Ok.encode()).map_err(|e| format!("answering server 1: {e}"))?;
        }
        out.push(PeerLinks { family: families[i], to_peer, from_peer });
    }
    Ok(out)
}

/// The name of the dealer connection for family `f`, width `w` of generation `g`.
fn pool_session(g: SessionId, f: u8, w: u32) -> SessionId {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"pmsm pool");
    ctx.update(&g.0);
    ctx.update(&[f]);
    ctx.update(&w.to_le_bytes());
    SessionId(ctx.finish().as_ref()[..16].try_into().expect("16 bytes"))
}

/// A running generation at this server.
struct Generation {
    number: u64,
    handles: Vec<JoinHandle<()>>,
    inboxes: [Option<(Sender<Request>, Arc<AtomicBool>)>; 2],
    closers: Vec<LinkCloser>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Generation {
    /// Dials the dealer for every pool, then starts this server's threads.
    fn start(s: &Shared, g: SessionId, peer: Vec<PeerLinks>) -> Result<Generation, String> {
        let link = if s.party == Party::P0 { Link::DealerToS0 } else { Link::DealerToS1 };
        let mut dialed = Vec::new();
        for p in &peer {
            for w in s.families[p.family as usize].widths() {
                let spec = [&[p.family][..], &w.to_le_bytes()].concat();
                let hello = Hello {
                    version: VERSION,
                    link,
                    session: pool_session(g, p.family, w),
                    fingerprint: s.fingerprint,
                    spec,
                };
                let conn = process::dial(&s.identity, &s.dealer, Role::Dealer, &hello, &net_options(s))
                    .map_err(|e| e.to_string())?;
                dialed.push((p.family, w, conn));
            }
        }
        let mut pools: [Vec<(u32, u64, BoxRx)>; 2] = [Vec::new(), Vec::new()];
        for (f, w, mut conn) in dialed {
            process::await_ack(&mut conn, Role::Dealer, &s.dealer, link).map_err(|e| e.to_string())?;
            let _ = tcp::set_timeouts(conn.sock(), Some(s.limits.handshake_timeout));
            let mut stream = conn_stream(conn)?;
            let epoch = match frame::read_frame(stream.0.as_mut(), 64) {
                Ok(Some(Frame::Data(b))) if b.len() == 8 => u64::from_le_bytes(b.try_into().expect("8 bytes")),
                Ok(Some(Frame::Abort(r))) => return Err(format!("the dealer aborted: {}", super::wire::loggable(&r))),
                other => return Err(format!("the dealer's pool epoch for width {w}: {other:?}")),
            };
            let _ = tcp::set_timeouts(&stream.1, None);
            let rx = TcpRx::new(link, stream.0, frame::MAX_FRAME, None);
            pools[f as usize].push((w, epoch, Box::new(rx)));
        }
        let number = s.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let failure = Arc::new(Mutex::new(None));
        let mut generation = Generation {
            number,
            handles: Vec::new(),
            inboxes: [None, None],
            closers: Vec::new(),
            failure: Arc::clone(&failure),
        };
        for p in peer {
            let f = p.family as usize;
            let (to_link, from_link) =
                if s.party == Party::P0 { (Link::S0ToS1, Link::S1ToS0) } else { (Link::S1ToS0, Link::S0ToS1) };
            let (to, to_sock) = conn_stream(p.to_peer)?;
            let (from, from_sock) = conn_stream(p.from_peer)?;
            let _ = tcp::set_timeouts(&to_sock, Some(PEER_SILENCE));
            let (tx, closer) = tcp::sender(to_link, to, s.options.window + 2, None);
            generation.closers.push(closer);
            let to_peer: BoxTx = Box::new(Counted::new(tx, s.counters.clone()));
            // The leader beats every second when idle, so a peer silent for much longer
            // is gone (even one that vanished without closing its connections).
            let _ = tcp::set_timeouts(&from_sock, Some(PEER_SILENCE));
            let from_peer: BoxRx = Box::new(TcpRx::new(from_link, from, frame::MAX_FRAME, Some(PEER_SILENCE)));
            let ctx = Context {
                machines: Arc::clone(&s.families[f]),
                options: s.options,
                stats: Arc::clone(&s.stats),
                counters: s.counters.clone(),
                dealer: None,
                failure: Arc::clone(&failure),
                tap: None,
                stores: if s.party == Party::P0 { [s.store.clone(), None] } else { [None, s.store.clone()] },
                family: f as u8,
            };
            let first_slot = SecretRng::from_os().next_u64() >> 2;
            let pools = std::mem::take(&mut pools[f]);
            let started = if f == 0 {
                start_family::<Xor>(&ctx, s.party, pools, to_peer, from_peer, first_slot)
            } else {
                start_family::<Ring>(&ctx, s.party, pools, to_peer, from_peer, first_slot)
            };
            let (tx, closed, handles) = started.map_err(|e| e.to_string())?;
            generation.handles.extend(handles);
            generation.inboxes[f] = Some((tx, closed));
        }
        log(
            s.party,
            &format!(
                "linked with {} and the dealer (generation {number})",
                if s.party == Party::P0 { "server 1" } else { "server 0" }
            ),
        );
        s.gate.set(GateState::Live(Live { generation: number, inboxes: generation.inboxes.clone() }));
        Ok(generation)
    }

    /// Runs until a link breaks, the server stops, or (server 0) server 1 links again;
    /// returns that new link's first connection.
    fn run(self, s: &Shared, incoming: Option<&Receiver<(Hello, Conn)>>) -> Option<(Hello, Conn)> {
        let mut next = None;
        let reason = loop {
            if s.stop.load(Ordering::SeqCst) {
                break "the server is shutting down".to_string();
            }
            if self.handles.iter().any(JoinHandle::is_finished) {
                break self
                    .failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_else(|| "a link closed".into());
            }
            match incoming.map(|rx| rx.recv_timeout(Duration::from_millis(50))) {
                Some(Ok(c)) => {
                    next = Some(c);
                    break "server 1 linked again".to_string();
                }
                Some(Err(_)) => {}
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        s.gate.set(if s.stop.load(Ordering::SeqCst) {
            GateState::Stopping
        } else {
            GateState::Down(format!("the servers' link was lost ({reason}); it is being made again"))
        });
        log(s.party, &format!("generation {} ended: {reason}", self.number));
        self.end(&reason);
        next
    }

    fn end(self, reason: &str) {
        for (tx, _) in self.inboxes.iter().flatten() {
            let _ = tx.send(Request::Stop);
        }
        drop(self.inboxes);
        for c in self.closers {
            c.abort(reason);
        }
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// A connection's stream and a handle on its socket (for timeouts).
fn conn_stream(conn: Conn) -> Result<(Box<dyn tcp::Stream>, std::net::TcpStream), String> {
    let sock = conn.sock().try_clone().map_err(|e| format!("socket: {e}"))?;
    Ok((conn.into_stream(), sock))
}

fn start_family<S: Sharing>(
    ctx: &Context,
    party: Party,
    pools: Vec<(u32, u64, BoxRx)>,
    to_peer: BoxTx,
    from_peer: BoxRx,
    first_slot: u64,
) -> Result<service::RunningServer, crate::Error> {
    let pools = pools.into_iter().map(|(w, epoch, rx)| Pool::<S>::new(w, epoch, party, rx)).collect();
    service::spawn_server::<S>(ctx, party, pools, to_peer, from_peer, first_slot)
}
