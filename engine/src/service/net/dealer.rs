//! The network back end's dealer: fills the pools of every generation the servers
//! make.
//!
//! Each server dials the dealer once per (share family, lookup width) of a generation,
//! naming the connection by the generation ([`crate::process::hello`]'s session field)
//! and the pool (family code and width in the spec). When both servers' connections
//! for a pool have arrived the dealer draws the pool's epoch from the CSPRNG, sends it
//! to both, and deals blocks into the pair (the in-process dealer's `fill`) until
//! either server goes away. A pool is never resumed: a server that links again makes
//! a new generation, with new pools.

use super::{MachineSpec, NetLimits, fingerprint_of};
use crate::party::sharing::{Ring, Xor};
use crate::process::listen::{Accepts, Listener, Opens};
use crate::process::{Assembly, NetOptions, SessionId};
use crate::protocol::ProtocolError;
use crate::service::{self, dealer::fill};
use crate::transport::tcp::{self, Stream};
use crate::transport::tls::{Identity, Role};
use crate::transport::{BoxTx, Link, frame};
use pmsm_kernels::rng::{RngCore, SecretRng};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The dealer's configuration.
#[derive(Debug)]
pub struct DealerConfig {
    /// Where the servers connect.
    pub listen: String,
    /// The dealer's certificate.
    pub identity: Identity,
    /// The machines served (the servers must serve the same).
    pub machines: Vec<MachineSpec>,
    /// Key-generation threads (0: one per core).
    pub threads: usize,
    /// Blocks queued per pool per server.
    pub pool_depth: usize,
    /// The handshake deadline.
    pub limits: NetLimits,
}

/// A running network dealer.
pub struct NetDealer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    main: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for NetDealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetDealer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl NetDealer {
    /// Binds and starts dealing to every pair of pool connections that arrives.
    pub fn start(cfg: DealerConfig) -> Result<NetDealer, crate::Error> {
        let bad = |m: String| crate::Error::from(ProtocolError::Parameter(m));
        if cfg.machines.is_empty() {
            return Err(bad("the dealer needs the servers' machines (--machine NAME=FILE)".into()));
        }
        if cfg.pool_depth < 2 {
            return Err(bad("the pool depth is at least 2".into()));
        }
        let families = service::families(cfg.machines.into_iter().map(|m| (m.name, m.served, m.protocol)))?;
        let fingerprint = fingerprint_of(families.iter().flat_map(|c| &c.machines).map(|m| &m.interface));
        let pools: BTreeSet<(u8, u32)> =
            (0..2u8).flat_map(|f| families[f as usize].widths().into_iter().map(move |w| (f, w))).collect();
        let threads = service::dealer_pool(cfg.threads)?;
        let opts = NetOptions {
            handshake_timeout: cfg.limits.handshake_timeout,
            max_connections: cfg.limits.max_connections,
            ..NetOptions::default()
        };
        let accepts = vec![
            Accepts { link: Link::DealerToS0, dialer: Role::Server0, opens: Opens::IfNew },
            Accepts { link: Link::DealerToS1, dialer: Role::Server1, opens: Opens::IfNew },
        ];
        let listener = Listener::bind(&cfg.listen, cfg.identity, fingerprint, accepts, opts).map_err(bad)?;
        let addr = listener.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let depth = cfg.pool_depth;
        let main = std::thread::Builder::new()
            .name("pmsm-dealer-pools".into())
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    let Some(id) = listener.next_session(Duration::from_millis(100)) else { continue };
                    let (listener, pools, threads) = (&listener, &pools, Arc::clone(&threads));
                    match pair(listener, id, pools, opts.handshake_timeout) {
                        Ok((f, w, links)) => {
                            let spawned = std::thread::Builder::new()
                                .name(format!("pmsm-dealer-{f}-{w}"))
                                .spawn(move || deal_pool(f, w, links, depth, &threads));
                            if let Err(e) = spawned {
                                tracing::error!("cannot start a pool thread: {e}");
                            }
                        }
                        Err(e) => tracing::warn!(pool = %id, "refused a pool: {e}"),
                    }
                }
            })
            .map_err(|e| bad(format!("cannot start the dealer: {e}")))?;
        Ok(NetDealer { addr, stop, main: Some(main) })
    }

    /// The address the servers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops taking new pools (those running end when their servers go).
    pub fn shutdown(mut self) {
        self.stop_main();
    }

    fn stop_main(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.main.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NetDealer {
    fn drop(&mut self) {
        self.stop_main();
    }
}

/// A pool's family code, its width and both servers' streams.
type Paired = (u8, u32, [Box<dyn Stream>; 2]);

/// Both servers' connections of pool `id`, answered, with the pool's family and width.
fn pair(listener: &Listener, id: SessionId, pools: &BTreeSet<(u8, u32)>, wait: Duration) -> Result<Paired, String> {
    let deadline = Instant::now() + wait;
    let mut assembly = Assembly::default();
    let mut spec = None;
    for link in [Link::DealerToS0, Link::DealerToS1] {
        let incoming = match listener.take(id, link, deadline) {
            Ok(i) => i,
            Err(e) => return Err(assembly.fail(e).to_string()),
        };
        let s = incoming.hello.spec.clone();
        assembly.accepted(link, incoming.conn);
        if spec.as_ref().is_some_and(|p: &Vec<u8>| *p != s) {
            return Err(assembly.fail("the servers asked for different pools under one name".into()).to_string());
        }
        spec = Some(s);
    }
    let spec = spec.expect("two links");
    let (f, w) = match spec.as_slice() {
        [f, w @ ..] if w.len() == 4 => (*f, u32::from_le_bytes(w.try_into().expect("4 bytes"))),
        _ => return Err(assembly.fail("a pool is named by a family code and a width".into()).to_string()),
    };
    if !pools.contains(&(f, w)) {
        return Err(assembly.fail(format!("no served machine needs a pool of family {f}, width {w}")).to_string());
    }
    assembly.answer().map_err(|e| e.to_string())?;
    tracing::info!(family = f, width = w, "dealing a pool to both servers");
    let epoch = SecretRng::from_os().next_u64();
    let mut streams = Vec::new();
    for (_, conn) in assembly.into_conns() {
        let _ = tcp::set_timeouts(conn.sock(), None);
        let mut s = conn.into_stream();
        frame::write_data(&mut s, &epoch.to_le_bytes()).and_then(|()| s.flush()).map_err(|e| format!("epoch: {e}"))?;
        streams.push(s);
    }
    let [a, b]: [Box<dyn Stream>; 2] = streams.try_into().map_err(|_| "two links".to_string())?;
    Ok((f, w, [a, b]))
}

/// Deals one pool until a server goes away.
fn deal_pool(f: u8, w: u32, links: [Box<dyn Stream>; 2], depth: usize, threads: &rayon::ThreadPool) {
    let [a, b] = links;
    let (t0, c0) = tcp::sender(Link::DealerToS0, a, depth, None);
    let (t1, c1) = tcp::sender(Link::DealerToS1, b, depth, None);
    let to: [BoxTx; 2] = [Box::new(t0), Box::new(t1)];
    let r = if f == 0 { fill::<Xor>(w, to, threads) } else { fill::<Ring>(w, to, threads) };
    match r {
        Ok(()) => {
            tracing::info!(family = f, width = w, "pool ended: a server left");
            c0.abort("the pool ended");
            c1.abort("the pool ended");
        }
        Err(e) => {
            tracing::warn!(family = f, width = w, "pool failed: {e}");
            c0.abort(&format!("dealer: {e}"));
            c1.abort(&format!("dealer: {e}"));
        }
    }
}
