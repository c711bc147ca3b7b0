//! `pmsm dealer`: the dealer process. Both servers dial it for a session, each sending
//! the session spec; once both have asked, with the same spec, it deals every round's
//! correlations to them, a bounded number of rounds ahead.

use super::listen::{Accepts, Listener, Opens};
use super::spec::Spec;
use super::{Assembly, Engines, Fingerprint, Links, NetError, NetOptions, SessionId, Summary};
use crate::dfa::Dfa;
use crate::transport::tls::{Identity, Role};
use crate::transport::{DealerEnds, Link};
use std::time::Instant;

/// How the dealer runs.
#[derive(Debug)]
pub struct DealerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Certificates for the dealer's role.
    pub identity: Identity,
    /// The machine.
    pub dfa: Dfa,
    /// Key-generation threads.
    pub threads: usize,
    /// Rounds dealt ahead of the servers.
    pub depth: usize,
    /// Generate a session's correlations before answering the servers, so that their
    /// session time is the online phase alone (for benchmarks).
    pub predeal: bool,
    /// Timeouts and limits.
    pub opts: NetOptions,
}

/// A listening dealer.
#[derive(Debug)]
pub struct Dealer {
    cfg: DealerConfig,
    listener: Listener,
    engines: Engines,
}

impl Dealer {
    /// Binds the listening socket.
    pub fn bind(cfg: DealerConfig) -> Result<Dealer, NetError> {
        let accepts = vec![
            Accepts { link: Link::DealerToS0, dialer: Role::Server0, opens: Opens::IfNew },
            Accepts { link: Link::DealerToS1, dialer: Role::Server1, opens: Opens::IfNew },
        ];
        let listener = Listener::bind(&cfg.listen, cfg.identity.clone(), Fingerprint::of(&cfg.dfa), accepts, cfg.opts)
            .map_err(NetError::Setup)?;
        let engines = Engines::new(cfg.dfa.clone(), cfg.threads, cfg.depth);
        Ok(Dealer { cfg, listener, engines })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener.local_addr()
    }

    /// The listener (sessions are announced here).
    pub fn listener(&self) -> &Listener {
        &self.listener
    }

    /// Deals one session.
    pub fn session(&self, id: SessionId) -> Result<Summary, NetError> {
        let cfg = &self.cfg;
        let deadline = Instant::now() + cfg.opts.session_timeout;
        let mut asm = Assembly::default();
        let mut specs = Vec::new();
        for link in [Link::DealerToS0, Link::DealerToS1] {
            match self.listener.take(id, link, deadline) {
                Ok(inc) => {
                    specs.push(inc.hello.spec.clone());
                    asm.accepted(link, inc.conn);
                }
                Err(e) => return Err(asm.fail(format!("{e} (both servers must ask for the session)"))),
            }
        }
        if specs[0] != specs[1] {
            return Err(asm.fail(format!("session {id}: the servers sent different session specs")));
        }
        let spec = match Spec::decode(&specs[0]) {
            Ok(s) => s,
            Err(e) => return Err(asm.fail(format!("session {id}: {e}"))),
        };
        let engine = match self.engines.get(spec.settings) {
            Ok(e) => e,
            Err(e) => return Err(asm.fail(format!("session {id}: {e}"))),
        };
        let predealt = match cfg.predeal.then(|| engine.predeal(&spec.lengths)).transpose() {
            Ok(p) => p,
            Err(e) => return Err(asm.fail(format!("session {id}: {e}"))),
        };
        if let Err(e) = asm.answer() {
            return Err(asm.fail(format!("session {id}: {e}")));
        }
        let mut links = Links::new(Role::Dealer, asm.into_conns(), |_| cfg.depth, &cfg.opts);
        let ends = DealerEnds { to_server: [links.tx(Link::DealerToS0), links.tx(Link::DealerToS1)] };
        links.run(Role::Dealer, id, &spec.lengths, || engine.deal(&spec.lengths, ends, predealt).map(|()| Vec::new()))
    }
}
