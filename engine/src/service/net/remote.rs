//! The client side of the network back end: one TLS connection to each server, on
//! which a [`Client`] sends the same requests as in process, numbered, and receives
//! their answers in any order.
//!
//! Each connection has a writer task (frames queued by the client, flushed when the
//! queue runs empty) and a reader task (answers fulfil the waiting promise of their
//! number), on the process's client runtime (`runtime`: a few I/O threads every
//! network client shares), so the client's own threads or executor never run network
//! I/O. A connection that ends fails every request
//! waiting on it with the reason, and every later one at once.

use super::io;
use super::wire::{self, AnswerMsg, Op, RequestMsg, Value};
use crate::process::Fingerprint;
use crate::service::client::{Client, block_on};
use crate::service::interface::Interface;
use crate::service::reply::Promise;
use crate::service::session::{OutputShare, Request, Slot};
use crate::service::{Route, ServiceError};
use crate::transport::Counters;
use crate::transport::frame::Frame;
use crate::transport::tls::{Identity, Role};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Frames a connection queues for its writer before a request must wait.
const QUEUE: usize = 1024;

/// How a client reaches the servers.
#[derive(Clone, Debug)]
pub struct Connect {
    /// Server 0's and server 1's addresses.
    pub servers: [String; 2],
    /// The machine to use.
    pub machine: String,
    /// A fingerprint the servers' machine must have (hex, at least 16 digits: a prefix
    /// of the SHA-256), if the client pins one.
    pub pin: Option<String>,
    /// Connecting, the TLS handshake and the welcome, per server.
    pub timeout: Duration,
}

/// A promise waiting for its answer, by kind.
enum Waiting {
    Open(Promise<Result<Slot, ServiceError>>),
    Push(Promise<Result<u64, ServiceError>>),
    Release(Promise<Result<OutputShare, ServiceError>>),
    Sync(Promise<Result<u64, ServiceError>>),
    Close(Promise<Result<(), ServiceError>>),
}

type Pending = Arc<Mutex<HashMap<u32, Waiting>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One server's connection.
struct Conn {
    tx: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU32,
    down: Arc<AtomicBool>,
}

/// What became of a request handed to [`Remote::send`].
pub(crate) enum Sent {
    /// On its way; its promise will be answered.
    Queued,
    /// The connection's queue is full: try again shortly.
    Full(Request),
    /// The connection is down (the client's failure says why).
    Down,
}

/// Both servers' connections (their tasks run on [`runtime`]).
pub(crate) struct Remote {
    conns: Vec<Conn>,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

/// The tokio runtime of every network client of this process, started on first use:
/// up to four I/O threads however many clients there are (a thread a client cost more
/// in context switches than its I/O on a small machine: 64 clients were 64 threads).
fn runtime() -> Result<&'static tokio::runtime::Runtime, ServiceError> {
    static RUNTIME: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>> = std::sync::OnceLock::new();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("pmsm-client-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ServiceError::Unavailable(format!("cannot start the clients' network threads: {e}")))
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").finish_non_exhaustive()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // The writers end when their queues close: they flush and send TLS close_notify
        // on the shared runtime. Outside an async context, wait (a second at most) so a
        // process that exits next has said goodbye; inside one, never block.
        self.conns.clear();
        let writers = std::mem::take(&mut self.writers);
        if tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        let Ok(rt) = runtime() else { return };
        rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                for w in writers {
                    let _ = w.await;
                }
            })
            .await;
        });
    }
}

impl Remote {
    /// Sends `req` to server `b`.
    pub(crate) fn send(&self, b: usize, req: Request) -> Sent {
        let c = &self.conns[b];
        if c.down.load(Ordering::SeqCst) {
            return Sent::Down;
        }
        let permit = match c.tx.try_reserve() {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Full(())) => return Sent::Full(req),
            Err(mpsc::error::TrySendError::Closed(())) => return Sent::Down,
        };
        let id = c.next_id.fetch_add(1, Ordering::Relaxed);
        let (msg, waiting) = match req {
            Request::Open { slot, reply, .. } => (RequestMsg { id, slot: 0, op: Op::Open(slot) }, Waiting::Open(reply)),
            Request::Push { slot, offset, count, shares, reply, .. } => {
                let op = Op::Push { offset, count: count as u32, shares };
                (RequestMsg { id, slot, op }, Waiting::Push(reply))
            }
            Request::Release { slot, at, reply, .. } => {
                (RequestMsg { id, slot, op: Op::Release(at) }, Waiting::Release(reply))
            }
            Request::Sync { slot, at, reply, .. } => (RequestMsg { id, slot, op: Op::Sync(at) }, Waiting::Sync(reply)),
            Request::Close { slot, reply, .. } => (RequestMsg { id, slot, op: Op::Close }, Waiting::Close(reply)),
            Request::Stop => return Sent::Queued,
        };
        lock(&c.pending).insert(id, waiting);
        permit.send(crate::transport::frame::data_bytes(&msg.encode()));
        // The reader may have failed between the check above and the insert: it drains
        // what it finds, so look again and drop the promise ourselves.
        if c.down.load(Ordering::SeqCst) {
            lock(&c.pending).remove(&id);
            return Sent::Down;
        }
        Sent::Queued
    }
}

/// Connects to both servers for `how.machine` and returns a client that knows only
/// its interface. Blocks the calling thread; see [`connect_async`].
pub fn connect(identity: &Identity, how: &Connect) -> Result<Client, ServiceError> {
    block_on(connect_async(identity, how))
}

/// [`connect`] without blocking the caller's thread (any executor).
pub async fn connect_async(identity: &Identity, how: &Connect) -> Result<Client, ServiceError> {
    let runtime = runtime()?;
    let failure = Arc::new(Mutex::new(None));
    let mut conns = Vec::new();
    let mut interfaces = Vec::new();
    for b in 0..2 {
        let (identity, how, failure) = (identity.clone(), how.clone(), Arc::clone(&failure));
        let task = runtime.spawn(async move { dial(&identity, &how, b, failure).await });
        let (conn, interface) = task
            .await
            .map_err(|e| ServiceError::Unavailable(format!("server {b}: the connection task failed: {e}")))??;
        conns.push(conn);
        interfaces.push(interface);
    }
    let interface = interfaces.swap_remove(0);
    if interfaces[0] != interface {
        return Err(ServiceError::BadRequest(format!(
            "the servers serve different machines as {:?} (fingerprints {} and {}, or other policies)",
            how.machine, interface.fingerprint, interfaces[0].fingerprint
        )));
    }
    if let Some(pin) = &how.pin {
        check_pin(pin, &interface.fingerprint)?;
    }
    let (conns, writers) = conns.into_iter().unzip();
    let remote = Remote { conns, writers };
    Ok(Client {
        interface,
        machine: 0,
        owner: 0,
        route: Route::Network(Arc::new(remote)),
        counters: Counters::default(),
        failure,
    })
}

fn check_pin(pin: &str, fingerprint: &Fingerprint) -> Result<(), ServiceError> {
    let full: String = fingerprint.0.iter().map(|b| format!("{b:02x}")).collect();
    let pin = pin.to_ascii_lowercase();
    if pin.len() < 16 || pin.len() > 64 || !pin.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ServiceError::BadRequest(format!(
            "a pinned fingerprint is 16 to 64 hex digits, not {:?}",
            wire::loggable(&pin)
        )));
    }
    if !full.starts_with(&pin) {
        return Err(ServiceError::PinMismatch { fingerprint: full, pinned: pin });
    }
    Ok(())
}

/// Dials server `b`, says hello, reads the welcome and starts the connection's tasks.
async fn dial(
    identity: &Identity,
    how: &Connect,
    b: usize,
    failure: Arc<Mutex<Option<String>>>,
) -> Result<((Conn, tokio::task::JoinHandle<()>), Interface), ServiceError> {
    let addr = &how.servers[b];
    let unavailable = |e: &dyn std::fmt::Display| ServiceError::Unavailable(format!("server {b} at {addr}: {e}"));
    let setup = async {
        let sock = tokio::net::TcpStream::connect(addr.as_str()).await.map_err(|e| unavailable(&e))?;
        sock.set_nodelay(true).map_err(|e| unavailable(&e))?;
        let name = rustls_pki_types::ServerName::try_from(Role::server(b).dns_name()).map_err(|e| unavailable(&e))?;
        let connector = tokio_rustls::TlsConnector::from(identity.client_config());
        let mut tls = connector.connect(name, sock).await.map_err(|e| unavailable(&format!("TLS: {e}")))?;
        io::write_data(&mut tls, &wire::encode_hello(&how.machine)).await.map_err(|e| unavailable(&e))?;
        tls.flush().await.map_err(|e| unavailable(&e))?;
        let welcome = match io::read_frame(&mut tls, wire::MAX_WELCOME).await {
            Ok(Some(Frame::Data(b))) => b,
            Ok(Some(Frame::Abort(r))) => return Err(unavailable(&format!("aborted: {}", wire::loggable(&r)))),
            Ok(None) => return Err(unavailable(&"closed the connection before its welcome")),
            Err(e) => return Err(unavailable(&e)),
        };
        let json = wire::decode_welcome(&welcome).map_err(|e| unavailable(&e))??;
        let interface = Interface::from_json(&json).map_err(|e| unavailable(&format!("its interface: {e}")))?;
        Ok::<_, ServiceError>((tls, interface))
    };
    let (tls, interface) = tokio::time::timeout(how.timeout, setup)
        .await
        .map_err(|_| unavailable(&format!("no welcome within {} s", how.timeout.as_secs())))??;
    let (mut rd, wr) = tokio::io::split(tls);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let pending: Pending = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let writer = io::spawn_writer(wr, rx);
    let (p, d, addr) = (Arc::clone(&pending), Arc::clone(&down), addr.clone());
    tokio::spawn(async move {
        let why = loop {
            match io::read_frame(&mut rd, wire::MAX_CONTROL).await {
                Ok(Some(Frame::Data(bytes))) => match AnswerMsg::decode(&bytes) {
                    Ok(a) => answer(&p, a),
                    Err(e) => break format!("server {b} at {addr} sent a malformed answer: {e}"),
                },
                Ok(Some(Frame::Abort(r))) => break format!("server {b} at {addr} aborted: {}", wire::loggable(&r)),
                Ok(None) => break format!("server {b} at {addr} closed the connection"),
                Err(e) => break format!("server {b} at {addr}: {e}"),
            }
        };
        d.store(true, Ordering::SeqCst);
        lock(&failure).get_or_insert(why);
        // Dropped promises fail their requests with the failure above.
        lock(&p).clear();
    });
    Ok(((Conn { tx, pending, next_id: AtomicU32::new(0), down }, writer), interface))
}

/// Fulfils the promise an answer is for.
fn answer(pending: &Pending, a: AnswerMsg) {
    let Some(waiting) = lock(pending).remove(&a.id) else { return };
    let odd = |v: &Value| ServiceError::BadRequest(format!("the server answered {v:?} to another request"));
    match (waiting, a.result) {
        (Waiting::Open(p), Ok(Value::Opened(s))) => p.fulfil(Ok(s)),
        (Waiting::Push(p), Ok(Value::Pushed(n))) => p.fulfil(Ok(n)),
        (Waiting::Release(p), Ok(Value::Released(s, n))) => p.fulfil(Ok((s, n))),
        (Waiting::Sync(p), Ok(Value::Synced(n))) => p.fulfil(Ok(n)),
        (Waiting::Close(p), Ok(Value::Closed)) => p.fulfil(Ok(())),
        (Waiting::Open(p), r) => p.fulfil(r.and_then(|v| Err(odd(&v)))),
        (Waiting::Push(p), r) => p.fulfil(r.and_then(|v| Err(odd(&v)))),
        (Waiting::Release(p), r) => p.fulfil(r.and_then(|v| Err(odd(&v)))),
        (Waiting::Sync(p), r) => p.fulfil(r.and_then(|v| Err(odd(&v)))),
        (Waiting::Close(p), r) => p.fulfil(r.and_then(|v| Err(odd(&v)))),
    }
}
