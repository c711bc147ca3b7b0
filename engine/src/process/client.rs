//! The batch client: opens a session of a whole batch with both batch servers and runs
//! it. It holds the machine (an [`Engine`]); `pmsm bench --transport tcp` runs it in
//! process. `pmsm client` is the service's client ([`crate::service::net`]) instead.
//!
//! The client draws a fresh session id, dials its four connections (inputs to and
//! outputs from each server; the input connections carry the session spec), sends all
//! four hellos before waiting for any answer (the servers answer once their whole
//! session is assembled), then shares its inputs and reconstructs the outputs exactly
//! as in process.

use super::spec::Spec;
use super::{Fingerprint, Links, NetError, NetOptions, SessionId, await_ack, dial, hello_for};
use crate::transport::tls::{Identity, Role};
use crate::transport::{ClientEnds, Link};
use crate::{Engine, InstanceOutput, LinkBytes};
use std::time::Instant;

/// What a client's session produced.
#[derive(Clone, Debug)]
pub struct ClientRun {
    /// The session.
    pub session: SessionId,
    /// One output per instance, in input order.
    pub outputs: Vec<InstanceOutput>,
    /// Symbols processed.
    pub transitions: usize,
    /// Seconds from the first dial to the last output.
    pub seconds: f64,
    /// Bytes the client sent, per link.
    pub bytes: LinkBytes,
}

/// Runs one session of `engine` on `inputs` with the servers at `servers`.
pub fn run(
    identity: &Identity,
    servers: [&str; 2],
    engine: &Engine,
    inputs: &[Vec<u32>],
    opts: &NetOptions,
) -> Result<ClientRun, NetError> {
    let start = Instant::now();
    let lengths: Vec<usize> = inputs.iter().map(Vec::len).collect();
    // Unknown symbols are refused before anything is sent.
    engine.check_symbols(inputs)?;
    let session = SessionId::random();
    let spec = Spec { settings: engine.settings(), lengths: lengths.clone() }.encode();
    // The servers check the same limits; failing here names them before any connection.
    Spec::decode(&spec).map_err(NetError::Setup)?;
    let fingerprint = Fingerprint::of(engine.dfa());
    let plan = [
        (Link::ClientToS0, 0, spec.clone()),
        (Link::S0ToClient, 0, Vec::new()),
        (Link::ClientToS1, 1, spec),
        (Link::S1ToClient, 1, Vec::new()),
    ];
    let mut conns = Vec::with_capacity(4);
    for (link, b, spec) in plan {
        let hello = hello_for(link, session, fingerprint, spec);
        conns.push((link, b, dial(identity, servers[b], Role::server(b), &hello, opts)?));
    }
    let mut ready = Vec::with_capacity(4);
    for (link, b, mut conn) in conns {
        await_ack(&mut conn, Role::server(b), servers[b], link)?;
        ready.push((link, conn));
    }
    let depth = engine.link_depth(&lengths);
    let mut links = Links::new(Role::Client, ready, |_| depth, opts);
    let ends = ClientEnds {
        to_server: [links.tx(Link::ClientToS0), links.tx(Link::ClientToS1)],
        from_server: [links.rx(Link::S0ToClient), links.rx(Link::S1ToClient)],
    };
    let counters = links.counters.clone();
    match engine.client(inputs, ends) {
        Ok(outputs) => {
            links.close(Ok(()))?;
            Ok(ClientRun {
                session,
                outputs,
                transitions: lengths.iter().sum(),
                seconds: start.elapsed().as_secs_f64(),
                bytes: LinkBytes::from_counters(&counters),
            })
        }
        Err(e) => {
            links.close(Err(&format!("client: {e}")))?;
            Err(e.into())
        }
    }
}
