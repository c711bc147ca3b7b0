//! A network server's front end: TLS 1.3 client connections on a small tokio
//! runtime, no thread per connection.
//!
//! Each accepted connection has [`NetLimits::handshake_timeout`] for its whole TLS
//! handshake and first message, so a peer that dribbles bytes cannot hold a slot. A
//! client hello (`PMSC`) names a machine and is answered with its interface; then each
//! request becomes the same [`Request`] the in-process clients send, queued to the
//! running generation's server thread, and its answer goes back tagged with the
//! request's number. At server 0 a party hello (`PMSM`) from server 1 is checked and
//! handed to the link thread as a blocking stream. When a client connection ends,
//! every session it opened (and did not close) is closed at this server: the client
//! holds the same connection to the other server, which does the same.

use super::metrics::{self, NetStats, Refusal};
use super::server::Gate;
use super::wire::{self, AnswerMsg, Op, RequestMsg, Value};
use super::{NetLimits, io};
use crate::process::hello::{Ack, Hello};
use crate::process::{Conn, Fingerprint};
use crate::protocol::ProtocolError;
use crate::service::reply::{self, Promise};
use crate::service::session::{Owner, Request, Slot};
use crate::service::{Catalog, ServiceError, Stats};
use crate::transport::Link;
use crate::transport::frame::{self, Frame};
use crate::transport::tls::{Identity, Role, check_peer_role};
use crossbeam_channel::{Sender, TrySendError};
use pmsm_kernels::Party;
use rustls_pki_types::CertificateDer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, ReadHalf};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;

/// Largest first message (a client hello, or server 1's party hello).
const MAX_FIRST: usize = 4096;

/// A served machine as the front end needs it.
#[derive(Clone, Debug)]
struct Entry {
    family: usize,
    index: u16,
    json: String,
    share_bits: u32,
    /// Sessions live in the servers' stores, beyond any generation.
    durable: bool,
}

/// Served machines by name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Directory(HashMap<String, Entry>);

impl Directory {
    pub(crate) fn new(families: &[Catalog; 2]) -> Directory {
        let mut d = HashMap::new();
        for (family, catalog) in families.iter().enumerate() {
            for (i, m) in catalog.machines.iter().enumerate() {
                let json = m.interface.to_json();
                let (share_bits, durable) = (m.interface.symbol_bits, m.interface.durable);
                let entry = Entry { family, index: i as u16, json, share_bits, durable };
                d.insert(m.name.clone(), entry);
            }
        }
        Directory(d)
    }

    fn served(&self) -> String {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        names.join(", ")
    }
}

/// What the front end is started with.
pub(crate) struct FrontConfig<'a> {
    pub(crate) listen: &'a str,
    pub(crate) identity: Identity,
    pub(crate) party: Party,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) directory: Directory,
    pub(crate) limits: NetLimits,
    pub(crate) gate: Arc<Gate>,
    /// Server 1's link connections (server 0), for the link thread.
    pub(crate) to_links: Sender<(Hello, Conn)>,
    /// The server's counters (for `/metrics`).
    pub(crate) stats: Arc<Stats>,
    /// Where to serve `/metrics` and `/health`.
    pub(crate) metrics: Option<&'a str>,
}

/// What every connection task shares.
struct Ctx {
    party: Party,
    fingerprint: Fingerprint,
    directory: Directory,
    limits: NetLimits,
    gate: Arc<Gate>,
    to_links: Sender<(Hello, Conn)>,
    acceptor: tokio_rustls::TlsAcceptor,
    net: Arc<NetStats>,
}

/// The running front end.
pub(crate) struct Front {
    runtime: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
}

impl Front {
    /// Binds `listen` and starts accepting.
    pub(crate) fn start(cfg: FrontConfig<'_>) -> Result<Front, crate::Error> {
        let bad = |m: String| crate::Error::from(ProtocolError::Parameter(m));
        let listener = std::net::TcpListener::bind(cfg.listen)
            .map_err(|e| bad(format!("cannot listen on {}: {e}", cfg.listen)))?;
        let addr = listener.local_addr().map_err(|e| bad(format!("{}: {e}", cfg.listen)))?;
        listener.set_nonblocking(true).map_err(|e| bad(format!("{}: {e}", cfg.listen)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("pmsm-server-{}-net", cfg.party.index()))
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start the network threads: {e}")))?;
        let listener = {
            let _in = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(|e| bad(format!("{}: {e}", cfg.listen)))?
        };
        let net = Arc::new(NetStats::default());
        let metrics = match cfg.metrics {
            None => None,
            Some(at) => {
                let l =
                    std::net::TcpListener::bind(at).map_err(|e| bad(format!("cannot serve metrics on {at}: {e}")))?;
                let local = l.local_addr().map_err(|e| bad(format!("{at}: {e}")))?;
                l.set_nonblocking(true).map_err(|e| bad(format!("{at}: {e}")))?;
                let l = {
                    let _in = runtime.enter();
                    tokio::net::TcpListener::from_std(l).map_err(|e| bad(format!("{at}: {e}")))?
                };
                let party = cfg.party.index();
                runtime.spawn(metrics::serve(l, party, cfg.stats, Arc::clone(&net), Arc::clone(&cfg.gate)));
                Some(local)
            }
        };
        let ctx = Arc::new(Ctx {
            net,
            party: cfg.party,
            fingerprint: cfg.fingerprint,
            directory: cfg.directory,
            limits: cfg.limits,
            gate: cfg.gate,
            to_links: cfg.to_links,
            acceptor: tokio_rustls::TlsAcceptor::from(cfg.identity.server_config()),
        });
        runtime.spawn(accept_loop(ctx, listener));
        Ok(Front { runtime: Some(runtime), addr, metrics })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// Stops accepting and ends every connection (their sessions' servers have
    /// stopped already).
    pub(crate) fn shutdown(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A refusal or a client's end, logged (peer text is escaped by the callers).
fn log(party: Party, what: &str) {
    tracing::warn!(party = party.index(), "{what}");
}

async fn accept_loop(ctx: Arc<Ctx>, listener: tokio::net::TcpListener) {
    let slots = Arc::new(Semaphore::new(ctx.limits.max_connections));
    loop {
        let (sock, from) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => {
                // Out of descriptors, most likely: give connections time to end.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            ctx.net.refused(Refusal::Connections);
            log(
                ctx.party,
                &format!(
                    "refused a connection from {from}: too many connections (at most {})",
                    ctx.limits.max_connections
                ),
            );
            continue;
        };
        tokio::spawn(connection(Arc::clone(&ctx), sock, from, permit));
    }
}

async fn connection(ctx: Arc<Ctx>, sock: TcpStream, from: SocketAddr, permit: tokio::sync::OwnedSemaphorePermit) {
    let _ = sock.set_nodelay(true);
    let handshake = async {
        let mut tls = ctx.acceptor.accept(sock).await.map_err(|e| format!("TLS handshake failed: {e}"))?;
        match io::read_frame(&mut tls, MAX_FIRST).await {
            Ok(Some(Frame::Data(b))) => Ok((tls, b)),
            Ok(Some(Frame::Abort(r))) => Err(format!("the peer aborted: {}", wire::loggable(&r))),
            Ok(None) => Err("closed before its hello".to_string()),
            Err(e) => Err(format!("hello: {e}")),
        }
    };
    let (tls, first) = match tokio::time::timeout(ctx.limits.handshake_timeout, handshake).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            ctx.net.refused(Refusal::Handshake);
            return log(ctx.party, &format!("refused a connection from {from}: {e}"));
        }
        Err(_) => {
            ctx.net.refused(Refusal::Handshake);
            let s = ctx.limits.handshake_timeout.as_secs();
            return log(
                ctx.party,
                &format!("refused a connection from {from}: no TLS handshake and hello within {s} s"),
            );
        }
    };
    let chain: Vec<CertificateDer<'static>> =
        tls.get_ref().1.peer_certificates().map(<[_]>::to_vec).unwrap_or_default();
    if wire::is_client_hello(&first) {
        client(&ctx, tls, &chain, &first, from).await;
    } else {
        party_link(&ctx, tls, &chain, &first, from).await;
    }
    drop(permit);
}

/// Server 1's link connection at server 0: checked, then handed to the link thread.
async fn party_link(
    ctx: &Ctx,
    mut tls: TlsStream<TcpStream>,
    chain: &[CertificateDer<'_>],
    first: &[u8],
    from: SocketAddr,
) {
    let check = || -> Result<Hello, String> {
        if ctx.party != Party::P0 {
            return Err("server 1 accepts client connections only".into());
        }
        let hello = Hello::decode(first)?;
        check_peer_role(chain, Role::Server1)?;
        if !matches!(hello.link, Link::S0ToS1 | Link::S1ToS0) {
            return Err(format!("server 0 does not accept link {}", hello.link));
        }
        if hello.fingerprint != ctx.fingerprint {
            return Err(format!(
                "server 1 serves other machines (fingerprint {}, here {})",
                hello.fingerprint, ctx.fingerprint
            ));
        }
        Ok(hello)
    };
    let hello = match check() {
        Ok(h) => h,
        Err(e) => {
            ctx.net.refused(Refusal::Hello);
            log(ctx.party, &format!("refused a connection from {from}: {e}"));
            let _ = io::write_data(&mut tls, &Ack::Refused(e).encode()).await;
            let _ = tls.shutdown().await;
            return;
        }
    };
    // A blocking stream for the link's threads: the TLS state moves over whole.
    let (sock, conn) = tls.into_inner();
    let std = match sock.into_std().and_then(|s| s.set_nonblocking(false).map(|()| s)) {
        Ok(s) => s,
        Err(e) => return log(ctx.party, &format!("server 1's link from {from}: {e}")),
    };
    let stream = rustls::StreamOwned::new(conn, std);
    let _ = ctx.to_links.send((hello, Conn::Accepted(Box::new(stream))));
}

/// The owner a client certificate stands for: the first 8 bytes of its SHA-256.
fn owner_of(chain: &[CertificateDer<'_>]) -> Owner {
    let d = ring::digest::digest(&ring::digest::SHA256, chain.first().map_or(&[][..], |c| c.as_ref()));
    u64::from_le_bytes(d.as_ref()[..8].try_into().expect("8 bytes"))
}

async fn client(
    ctx: &Ctx,
    mut tls: TlsStream<TcpStream>,
    chain: &[CertificateDer<'_>],
    first: &[u8],
    from: SocketAddr,
) {
    let welcome = (|| {
        check_peer_role(chain, Role::Client).map_err(ServiceError::BadRequest)?;
        let name = wire::decode_hello(first).map_err(ServiceError::BadRequest)?;
        if ctx.gate.stopping() {
            return Err(ServiceError::Unavailable(format!("server {} is shutting down", ctx.party.index())));
        }
        ctx.directory
            .0
            .get(&name)
            .cloned()
            .ok_or_else(|| ServiceError::UnknownMachine { name: name.clone(), served: ctx.directory.served() })
    })();
    let entry = match welcome {
        Ok(e) => e,
        Err(e) => {
            ctx.net.refused(Refusal::Hello);
            log(ctx.party, &format!("refused a client from {from}: {}", wire::loggable(&e.to_string())));
            let _ = io::write_data(&mut tls, &wire::encode_welcome(Err(&e))).await;
            let _ = tls.shutdown().await;
            return;
        }
    };
    if io::write_data(&mut tls, &wire::encode_welcome(Ok(&entry.json))).await.is_err() || tls.flush().await.is_err() {
        return;
    }
    let owner = owner_of(chain);
    let (rd, wr) = tokio::io::split(tls);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(1024);
    let writer = io::spawn_writer(wr, rx);
    let conn =
        Arc::new(ClientConn { entry, owner, opened: Mutex::default(), party: ctx.party, net: Arc::clone(&ctx.net) });
    ctx.net.connections.fetch_add(1, Ordering::Relaxed);
    let why = serve(ctx, &conn, rd, &tx).await;
    ctx.net.connections.fetch_sub(1, Ordering::Relaxed);
    if let Some(why) = why {
        log(ctx.party, &format!("client {from}: {why}"));
    }
    // The client is gone: so are the sessions it opened here (durable sessions outlive
    // their client's connections and processes; they end when closed or evicted).
    let opened: Vec<(Slot, u64)> = lock(&conn.opened).drain().collect();
    if let Ok((generation, inbox, closed)) = ctx.gate.route(conn.entry.family) {
        let q = Queue { inbox: &inbox, closed: &closed, server: ctx.party.index() };
        for (slot, g) in opened {
            if g == generation && !conn.entry.durable {
                let (reply, _) = reply::pair();
                q.queue(Request::Close { slot, owner, reply }).await;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// One client connection's state.
struct ClientConn {
    entry: Entry,
    owner: Owner,
    /// Sessions opened on this connection and not closed, with their generation.
    opened: Mutex<HashMap<Slot, u64>>,
    party: Party,
    net: Arc<NetStats>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads requests until the connection ends; `Some(reason)` unless it closed cleanly.
async fn serve(
    ctx: &Ctx,
    conn: &Arc<ClientConn>,
    mut rd: ReadHalf<TlsStream<TcpStream>>,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Option<String> {
    let in_flight = Arc::new(Semaphore::new(ctx.limits.max_in_flight));
    loop {
        let body = match io::read_frame(&mut rd, wire::MAX_PUSH).await {
            Ok(Some(Frame::Data(b))) => b,
            Ok(Some(Frame::Abort(r))) => return Some(format!("the client aborted: {}", wire::loggable(&r))),
            Ok(None) => return None,
            Err(frame::FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Some("the client vanished (no TLS close_notify)".into());
            }
            Err(e) => return Some(format!("closed: {e}")),
        };
        let msg = match RequestMsg::decode(&body, conn.entry.share_bits) {
            Ok(m) => m,
            Err(e) => {
                ctx.net.refused(Refusal::Malformed);
                let mut abort = Vec::new();
                let _ =
                    frame::write_abort(&mut abort, &format!("server {}: malformed request: {e}", conn.party.index()));
                let _ = tx.send(abort).await;
                return Some(format!("malformed request: {e}"));
            }
        };
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { return None };
        let (conn, gate, tx) = (Arc::clone(conn), Arc::clone(&ctx.gate), tx.clone());
        tokio::spawn(async move {
            let answer = handle(&conn, &gate, msg).await;
            let _ = tx.send(frame::data_bytes(&answer.encode())).await;
            drop(permit);
        });
    }
}

/// Runs one request at the running generation's server thread.
async fn handle(conn: &ClientConn, gate: &Gate, msg: RequestMsg) -> AnswerMsg {
    let (arrived, is_push) = (std::time::Instant::now(), matches!(msg.op, Op::Push { .. }));
    let answer = run(conn, gate, msg).await;
    if answer.result.is_err() {
        conn.net.refused(Refusal::Request);
    } else if is_push {
        conn.net.push_answered(arrived.elapsed().as_secs_f64());
    }
    answer
}

async fn run(conn: &ClientConn, gate: &Gate, msg: RequestMsg) -> AnswerMsg {
    let id = msg.id;
    let (generation, inbox, closed) = match gate.route(conn.entry.family) {
        Ok(r) => r,
        Err(e) => return AnswerMsg { id, result: Err(e) },
    };
    let (slot, owner, b) = (msg.slot, conn.owner, conn.party.index());
    // A session outlives its generation only in the servers' stores.
    if !matches!(msg.op, Op::Open(_)) && !conn.entry.durable {
        let mut opened = lock(&conn.opened);
        if opened.get(&slot).is_some_and(|&g| g != generation) {
            opened.remove(&slot);
            let e = format!("session {slot} ended when server {b} lost its link to the other parties; open a new one");
            return AnswerMsg { id, result: Err(ServiceError::Stopped { reason: e }) };
        }
    }
    let q = Queue { inbox: &inbox, closed: &closed, server: b };
    let result = match msg.op {
        Op::Open(given) => {
            if (conn.party == Party::P0) == given.is_some() {
                let e = "an open names server 0's slot at server 1, and none at server 0";
                Err(ServiceError::BadRequest(e.into()))
            } else {
                let machine = conn.entry.index;
                let r = q.call(|reply| Request::Open { machine, owner, slot: given, reply }).await;
                if let Ok(s) = r {
                    lock(&conn.opened).insert(s, generation);
                }
                r.map(Value::Opened)
            }
        }
        Op::Push { offset, count, shares } => q
            .call(|reply| Request::Push { slot, owner, offset, count: count as usize, shares, reply })
            .await
            .map(Value::Pushed),
        Op::Release(at) => {
            q.call(|reply| Request::Release { slot, owner, at, reply }).await.map(|(s, n)| Value::Released(s, n))
        }
        Op::Sync(at) => q.call(|reply| Request::Sync { slot, owner, at, reply }).await.map(Value::Synced),
        Op::Close => {
            let r = q.call(|reply| Request::Close { slot, owner, reply }).await;
            if r.is_ok() {
                lock(&conn.opened).remove(&slot);
            }
            r.map(|()| Value::Closed)
        }
    };
    AnswerMsg { id, result }
}

/// A generation's request queue at this server.
struct Queue<'a> {
    inbox: &'a Sender<Request>,
    closed: &'a AtomicBool,
    server: usize,
}

impl Queue<'_> {
    /// Queues a request (waiting without blocking the runtime while the queue is full)
    /// and awaits its answer.
    async fn call<T>(&self, make: impl FnOnce(Promise<Result<T, ServiceError>>) -> Request) -> Result<T, ServiceError> {
        let lost = || {
            ServiceError::Unavailable(format!(
                "server {} lost its link to the other parties while the request waited; its sessions are gone",
                self.server
            ))
        };
        let (promise, ticket) = reply::pair();
        if !self.queue(make(promise)).await || self.closed.load(Ordering::SeqCst) {
            return Err(lost());
        }
        ticket.await.map_err(|_| lost())?
    }

    /// Queues a request, waiting without blocking the runtime while the queue is full;
    /// `false` if the server thread is gone.
    async fn queue(&self, mut req: Request) -> bool {
        loop {
            match self.inbox.try_send(req) {
                Ok(()) => return true,
                Err(TrySendError::Full(r)) => {
                    req = r;
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
    }
}
