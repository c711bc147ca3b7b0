//! The accepting side: a TCP listener whose connections are handshaken on their own
//! threads and parked in a registry until their session claims them.
//!
//! Each accepted connection gets: the handshake timeout for TLS and the hello, as one
//! deadline for both (a `Deadlines` reaper shuts down a socket that outlives it, so a
//! peer that dribbles a byte now and then cannot hold a slot however it paces them); a check
//! that its link is one this party accepts, that the dialer's certificate names the
//! role the link needs, and that its machine fingerprint is ours. Then it waits, parked
//! by (session, link), until a session takes it ([`Listener::take`]) — or is refused
//! as an unknown session once the session timeout passes. A connection that opens a
//! session ([`Opens`]) announces the session to [`Listener::next_session`]. Refusals are
//! answered to the dialer and logged on stderr (one line; no secrets: addresses, links,
//! session ids and reasons only).

use super::hello::Hello;
use super::{Conn, Fingerprint, NetOptions, SessionId};
use crate::transport::Link;
use crate::transport::frame::{self, Frame};
use crate::transport::tcp;
use crate::transport::tls::{Identity, Role, check_peer_role};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Whether a connection on a link opens a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opens {
    /// Never (it joins a session opened otherwise).
    Never,
    /// Always: a second opener of the same session is refused.
    Always,
    /// When its session is new; otherwise it joins it.
    IfNew,
}

/// A link this party accepts: the role the dialer's certificate must name, and whether
/// the connection opens a session.
#[derive(Clone, Copy, Debug)]
pub struct Accepts {
    /// The link.
    pub link: Link,
    /// The dialer's role.
    pub dialer: Role,
    /// Whether it opens a session.
    pub opens: Opens,
}

/// A connection whose hello passed the checks, waiting for its session.
#[derive(Debug)]
pub struct Incoming {
    /// The dialer's hello.
    pub hello: Hello,
    /// The connection (its hello not yet answered).
    pub conn: Conn,
    /// The dialer's address.
    pub from: SocketAddr,
    id: u64,
}

#[derive(Default)]
struct State {
    parked: HashMap<(SessionId, Link), Incoming>,
    opened: HashSet<SessionId>,
    next_id: u64,
}

struct Registry {
    state: Mutex<State>,
    changed: Condvar,
    announce: Sender<SessionId>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A listening party (server or dealer).
pub struct Listener {
    addr: SocketAddr,
    registry: Arc<Registry>,
    sessions: Receiver<SessionId>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Listener {
    /// Binds `addr` and starts accepting connections for the links in `accepts`.
    pub fn bind(
        addr: &str,
        identity: Identity,
        fingerprint: Fingerprint,
        accepts: Vec<Accepts>,
        opts: NetOptions,
    ) -> Result<Listener, String> {
        let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| format!("{addr}: {e}"))?;
        let (announce, sessions) = unbounded();
        let registry = Arc::new(Registry { state: Mutex::default(), changed: Condvar::new(), announce });
        let reg = registry.clone();
        let deadlines = Deadlines::start()?;
        let ctx = Arc::new((identity, fingerprint, accepts, opts));
        std::thread::Builder::new()
            .name("pmsm-accept".into())
            .spawn(move || {
                let busy = Arc::new(AtomicUsize::new(0));
                for sock in listener.incoming() {
                    let Ok(sock) = sock else { continue };
                    // Each connection holds a thread until its session claims it (or the
                    // timeouts end it); past the limit new connections are closed at once.
                    if busy.fetch_add(1, Ordering::AcqRel) >= ctx.3.max_connections {
                        busy.fetch_sub(1, Ordering::AcqRel);
                        if let Ok(from) = sock.peer_addr() {
                            log_refusal(&ctx.0, from, "too many connections waiting (--max-connections)");
                        }
                        continue;
                    }
                    let (reg, ctx, held, deadlines) = (reg.clone(), ctx.clone(), busy.clone(), deadlines.clone());
                    let spawned = std::thread::Builder::new().name("pmsm-handshake".into()).spawn(move || {
                        let (identity, fingerprint, accepts, opts) = &*ctx;
                        let mut watch = deadlines.watch(&sock, opts.handshake_timeout);
                        let late = handshake(&reg, identity, *fingerprint, accepts, opts, sock, &mut watch);
                        if late {
                            let secs = opts.handshake_timeout.as_secs_f64();
                            log_refusal(identity, watch.from, &format!("no TLS handshake and hello within {secs} s"));
                        }
                        held.fetch_sub(1, Ordering::AcqRel);
                    });
                    if spawned.is_err() {
                        busy.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            })
            .map_err(|e| format!("cannot start the accept thread: {e}"))?;
        Ok(Listener { addr: local, registry, sessions })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits up to `wait` for the next opened session.
    pub fn next_session(&self, wait: Duration) -> Option<SessionId> {
        self.sessions.recv_timeout(wait).ok()
    }

    /// Takes the connection for `link` of `session`, waiting until `deadline`.
    pub fn take(&self, session: SessionId, link: Link, deadline: Instant) -> Result<Incoming, String> {
        let mut st = self.registry.lock();
        loop {
            if let Some(inc) = st.parked.remove(&(session, link)) {
                self.registry.changed.notify_all();
                return Ok(inc);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("session {session}: no {link} connection arrived in time"));
            }
            st = self.registry.changed.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

fn log_refusal(identity: &Identity, from: SocketAddr, reason: &str) {
    eprintln!("pmsm {}: refused a connection from {from}: {reason}", identity.role());
}

/// Shuts down accepted sockets whose handshake outlives its deadline (one thread a
/// listener, looking four times a second). A read timeout alone bounds each read, not
/// the handshake: a peer sending a byte just before every timeout would hold its
/// thread and slot for ever.
#[derive(Clone)]
struct Deadlines(Arc<Mutex<Watched>>);

/// The last watch number, and each watched socket (a clone) with its deadline.
type Watched = (u64, HashMap<u64, (Instant, TcpStream)>);

/// A socket under watch; unwatched when dropped.
struct Watch {
    deadlines: Deadlines,
    id: Option<u64>,
    from: SocketAddr,
}

impl Deadlines {
    fn start() -> Result<Deadlines, String> {
        let d = Deadlines(Arc::default());
        let reaper = d.clone();
        std::thread::Builder::new()
            .name("pmsm-deadlines".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(250));
                    let now = Instant::now();
                    let mut st = reaper.lock();
                    st.1.retain(|_, (deadline, sock)| {
                        let late = *deadline <= now;
                        if late {
                            let _ = sock.shutdown(std::net::Shutdown::Both);
                        }
                        !late
                    });
                    // The listener is gone once only this thread holds the list.
                    if Arc::strong_count(&reaper.0) == 1 {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the handshake deadline thread: {e}"))?;
        Ok(d)
    }

    fn lock(&self) -> MutexGuard<'_, Watched> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches `sock` until `within` has passed (or the watch is dropped).
    fn watch(&self, sock: &TcpStream, within: Duration) -> Watch {
        let from = sock.peer_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let id = sock.try_clone().ok().map(|clone| {
            let mut st = self.lock();
            st.0 += 1;
            let id = st.0;
            st.1.insert(id, (Instant::now() + within, clone));
            id
        });
        Watch { deadlines: self.clone(), id, from }
    }
}

impl Watch {
    /// Whether the deadline passed (the reaper shut the socket down).
    fn expired(&self) -> bool {
        self.id.is_some_and(|id| !self.deadlines.lock().1.contains_key(&id))
    }

    /// Ends the watch (the handshake and hello are done in time).
    fn disarm(&mut self) {
        if let Some(id) = self.id.take() {
            self.deadlines.lock().1.remove(&id);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// Handshakes one accepted socket and parks it; refuses it if it fails a check or its
/// session never claims it. Returns whether it failed for its deadline (`watch`).
fn handshake(
    reg: &Registry,
    identity: &Identity,
    fingerprint: Fingerprint,
    accepts: &[Accepts],
    opts: &NetOptions,
    sock: TcpStream,
    watch: &mut Watch,
) -> bool {
    let Ok(from) = sock.peer_addr() else { return false };
    let _ = sock.set_nodelay(true);
    if tcp::set_timeouts(&sock, Some(opts.handshake_timeout)).is_err() {
        return false;
    }
    let mut stream = match identity.accept(sock) {
        Ok(s) => s,
        Err(_) if watch.expired() => return true,
        Err(e) => {
            log_refusal(identity, from, &e.to_string());
            return false;
        }
    };
    let hello = match frame::read_frame(&mut stream, super::MAX_HELLO) {
        Ok(Some(Frame::Data(b))) => Hello::decode(&b),
        Ok(Some(Frame::Abort(r))) => Err(format!("the dialer aborted: {r}")),
        Ok(None) => Err("closed before its hello".into()),
        Err(_) if watch.expired() => return true,
        Err(e) => Err(format!("hello: {e}")),
    };
    // In time: from here the session timeout governs how long the connection waits.
    watch.disarm();
    park(reg, identity, fingerprint, accepts, opts, from, Conn::Accepted(Box::new(stream)), hello);
    false
}

/// Checks a handshaken connection's hello and parks it until its session claims it.
#[allow(clippy::too_many_arguments)]
fn park(
    reg: &Registry,
    identity: &Identity,
    fingerprint: Fingerprint,
    accepts: &[Accepts],
    opts: &NetOptions,
    from: SocketAddr,
    conn: Conn,
    hello: Result<Hello, String>,
) {
    let refuse = |conn: Conn, reason: String| {
        log_refusal(identity, from, &reason);
        conn.refuse(&reason);
    };
    let hello = match hello {
        Ok(h) => h,
        Err(e) => return refuse(conn, e),
    };
    let Some(rule) = accepts.iter().find(|a| a.link == hello.link) else {
        return refuse(conn, format!("{} does not accept link {}", identity.role(), hello.link));
    };
    let Conn::Accepted(s) = &conn else { unreachable!("accepted above") };
    let role =
        s.conn.peer_certificates().map_or(Err("no certificate".to_string()), |c| check_peer_role(c, rule.dialer));
    if let Err(e) = role {
        return refuse(conn, format!("link {} needs a {} certificate: {e}", hello.link, rule.dialer));
    }
    if hello.fingerprint != fingerprint {
        return refuse(
            conn,
            format!(
                "DFA fingerprint mismatch: the dialer holds machine {}, {} holds {fingerprint}",
                hello.fingerprint,
                identity.role()
            ),
        );
    }
    let key = (hello.session, hello.link);
    let mut st = reg.lock();
    if st.parked.contains_key(&key) {
        drop(st);
        return refuse(conn, format!("session {}: a second connection for link {}", key.0, key.1));
    }
    let opens = match rule.opens {
        Opens::Never => false,
        Opens::IfNew => !st.opened.contains(&key.0),
        Opens::Always if st.opened.contains(&key.0) => {
            drop(st);
            return refuse(conn, format!("session {} is already open", key.0));
        }
        Opens::Always => true,
    };
    let id = st.next_id;
    st.next_id += 1;
    st.parked.insert(key, Incoming { hello, conn, from, id });
    if opens {
        st.opened.insert(key.0);
        let _ = reg.announce.send(key.0);
    }
    reg.changed.notify_all();
    // Wait to be claimed; refuse as unknown if nobody claims this connection in time.
    let deadline = Instant::now() + opts.session_timeout;
    loop {
        if st.parked.get(&key).is_none_or(|inc| inc.id != id) {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            let inc = st.parked.remove(&key).expect("checked above");
            drop(st);
            let secs = opts.session_timeout.as_secs_f64();
            return refuse(inc.conn, format!("unknown session {}: nothing here opened it within {secs:.0} s", key.0));
        }
        st = reg
            .changed
            .wait_timeout(st, (deadline - now).min(Duration::from_secs(1)))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}
