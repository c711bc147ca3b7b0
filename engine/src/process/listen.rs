//! The accepting side: a TCP listener whose connections are handshaken on their own
//! threads and parked in a registry until their session claims them.
//!
//! Each accepted connection gets: the handshake timeout for TLS and the hello; a check
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
                    let (reg, ctx, held) = (reg.clone(), ctx.clone(), busy.clone());
                    let spawned = std::thread::Builder::new().name("pmsm-handshake".into()).spawn(move || {
                        let (identity, fingerprint, accepts, opts) = &*ctx;
                        handshake(&reg, identity, *fingerprint, accepts, opts, sock);
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

/// Handshakes one accepted socket and parks it; refuses it if it fails a check or its
/// session never claims it.
fn handshake(
    reg: &Registry,
    identity: &Identity,
    fingerprint: Fingerprint,
    accepts: &[Accepts],
    opts: &NetOptions,
    sock: TcpStream,
) {
    let Ok(from) = sock.peer_addr() else { return };
    let _ = sock.set_nodelay(true);
    if tcp::set_timeouts(&sock, Some(opts.handshake_timeout)).is_err() {
        return;
    }
    let mut stream = match identity.accept(sock) {
        Ok(s) => s,
        Err(e) => return log_refusal(identity, from, &e.to_string()),
    };
    let hello = match frame::read_frame(&mut stream, super::MAX_HELLO) {
        Ok(Some(Frame::Data(b))) => Hello::decode(&b),
        Ok(Some(Frame::Abort(r))) => Err(format!("the dialer aborted: {r}")),
        Ok(None) => Err("closed before its hello".into()),
        Err(e) => Err(format!("hello: {e}")),
    };
    let conn = Conn::Accepted(Box::new(stream));
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
