//! `pmsm serve`: a server process. It accepts its client's two connections (and, as
//! server 0, server 1's two), dials server 0 (as server 1) and the dealer, then runs
//! the session's rounds exactly as in process.

use super::listen::{Accepts, Listener, Opens};
use super::spec::Spec;
use super::{
    Assembly, Engines, Fingerprint, Links, NetError, NetOptions, SessionId, Summary, await_ack, dial, hello_for,
};
use crate::dfa::Dfa;
use crate::transport::tls::{Identity, Role};
use crate::transport::{Link, ServerEnds};
use pmsm_kernels::Party;
use std::time::Instant;

/// Where a server listens and whom it dials.
#[derive(Debug)]
pub struct ServerConfig {
    /// Which server.
    pub party: Party,
    /// Address to listen on (`host:port`; port 0 picks one).
    pub listen: String,
    /// Server 0's address (server 1 only).
    pub peer: Option<String>,
    /// The dealer's address.
    pub dealer: String,
    /// Certificates for this server's role.
    pub identity: Identity,
    /// The machine.
    pub dfa: Dfa,
    /// Timeouts and limits.
    pub opts: NetOptions,
}

/// A listening server.
#[derive(Debug)]
pub struct Server {
    cfg: ServerConfig,
    listener: Listener,
    fingerprint: Fingerprint,
    engines: Engines,
}

/// The links of server `b`: (from client, to client, from dealer, to peer, from peer).
fn server_links(b: usize) -> [Link; 5] {
    if b == 0 {
        [Link::ClientToS0, Link::S0ToClient, Link::DealerToS0, Link::S0ToS1, Link::S1ToS0]
    } else {
        [Link::ClientToS1, Link::S1ToClient, Link::DealerToS1, Link::S1ToS0, Link::S0ToS1]
    }
}

impl Server {
    /// Binds the listening socket.
    pub fn bind(cfg: ServerConfig) -> Result<Server, NetError> {
        let b = cfg.party.index();
        if b == 1 && cfg.peer.is_none() {
            return Err(NetError::Setup("server 1 needs server 0's address (--peer)".into()));
        }
        let fingerprint = Fingerprint::of(&cfg.dfa);
        let [input, output, _, _, _] = server_links(b);
        let mut accepts = vec![
            Accepts { link: input, dialer: Role::Client, opens: Opens::Always },
            Accepts { link: output, dialer: Role::Client, opens: Opens::Never },
        ];
        if b == 0 {
            for link in [Link::S0ToS1, Link::S1ToS0] {
                accepts.push(Accepts { link, dialer: Role::Server1, opens: Opens::Never });
            }
        }
        let listener = Listener::bind(&cfg.listen, cfg.identity.clone(), fingerprint, accepts, cfg.opts)
            .map_err(NetError::Setup)?;
        let engines = Engines::new(cfg.dfa.clone(), 1, 1);
        Ok(Server { cfg, listener, fingerprint, engines })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener.local_addr()
    }

    /// The listener (sessions are announced here).
    pub fn listener(&self) -> &Listener {
        &self.listener
    }

    /// Runs one session end to end.
    pub fn session(&self, id: SessionId) -> Result<Summary, NetError> {
        let (cfg, b) = (&self.cfg, self.cfg.party.index());
        let me = Role::server(b);
        let [input, output, from_dealer, to_peer, from_peer] = server_links(b);
        let deadline = Instant::now() + cfg.opts.session_timeout;
        let opener = self.listener.take(id, input, deadline).map_err(NetError::Setup)?;
        let spec_bytes = opener.hello.spec.clone();
        let mut asm = Assembly::default();
        asm.accepted(input, opener.conn);
        let spec = match Spec::decode(&spec_bytes) {
            Ok(s) => s,
            Err(e) => return Err(asm.fail(format!("session {id}: {e}"))),
        };
        let engine = match self.engines.get(spec.settings) {
            Ok(e) => e,
            Err(e) => return Err(asm.fail(format!("session {id}: {e}"))),
        };
        let mut wanted = vec![output];
        if b == 0 {
            wanted.extend([from_peer, to_peer]);
        }
        for link in wanted {
            match self.listener.take(id, link, deadline) {
                Ok(inc) => {
                    let differs = link != output && inc.hello.spec != spec_bytes;
                    asm.accepted(link, inc.conn);
                    if differs {
                        return Err(
                            asm.fail(format!("session {id}: server 1's session spec differs from the client's"))
                        );
                    }
                }
                Err(e) => return Err(asm.fail(e)),
            }
        }
        let dial_all = |asm: &mut Assembly, addr: &str, peer: Role, links: &[Link]| -> Result<(), String> {
            let mut conns = Vec::new();
            for &link in links {
                let hello = hello_for(link, id, self.fingerprint, spec_bytes.clone());
                conns.push((link, dial(&cfg.identity, addr, peer, &hello, &cfg.opts).map_err(|e| e.to_string())?));
            }
            for (link, mut conn) in conns {
                await_ack(&mut conn, peer, addr, link).map_err(|e| e.to_string())?;
                asm.dialed(link, conn);
            }
            Ok(())
        };
        if let Some(peer) = cfg.peer.as_deref().filter(|_| b == 1) {
            // Server 1 joins server 0 before answering its client: server 0 answers
            // once it holds all four of its session's accepted connections.
            if let Err(e) = dial_all(&mut asm, peer, Role::Server0, &[to_peer, from_peer]) {
                return Err(asm.fail(format!("session {id}: {e}")));
            }
        }
        let dealt = asm.answer().and_then(|()| dial_all(&mut asm, &cfg.dealer, Role::Dealer, &[from_dealer]));
        if let Err(e) = dealt {
            return Err(asm.fail(format!("session {id}: {e}")));
        }
        let depth = engine.link_depth(&spec.lengths);
        let mut links = Links::new(me, asm.into_conns(), |_| depth, &cfg.opts);
        let ends = ServerEnds {
            from_client: links.rx(input),
            from_dealer: links.rx(from_dealer),
            to_peer: links.tx(to_peer),
            from_peer: links.rx(from_peer),
            to_client: links.tx(output),
        };
        let transitions: usize = spec.lengths.iter().sum();
        eprintln!("pmsm {me}: session {id}: started ({} instances, {transitions} transitions)", spec.lengths.len());
        links.run(me, id, &spec.lengths, || engine.serve(cfg.party, &spec.lengths, ends, None).map(|s| s.round_seconds))
    }
}
