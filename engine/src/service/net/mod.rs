//! The service's network back end: the dealer and the two servers as long-lived
//! processes, clients that connect over TLS 1.3 and know only a machine's interface.
//!
//! `README.md` in this folder draws the links and a generation's life. In short:
//! - [`server::NetServer`] runs one server: a tokio front end for client connections
//!   (`front.rs`), and a *generation* of the in-process server threads (leader or
//!   follower, the same code as [`crate::service::Service`]) over TLS links to the
//!   other server and the dealer. Server 1 dials server 0 and both dial the dealer;
//!   when a link breaks the generation ends (its sessions fail with a clear error) and
//!   the links are made anew, with new pools under a new epoch.
//! - [`dealer::NetDealer`] keeps the pools of every generation full.
//! - [`remote::connect`] gives a [`crate::service::Client`] over the network: the same
//!   session API as in process; [`Reconnecting`] wraps one that connects again when
//!   durable servers restart, taking its sessions up where both servers committed.

pub mod dealer;
mod front;
mod io;
mod metrics;
pub mod reconnect;
pub mod remote;
pub mod server;
pub mod wire;

use crate::process::Fingerprint;
use crate::protocol::{Protocol, Reveal};
use crate::service::{Interface, Served};
use std::time::Duration;

pub use reconnect::Reconnecting;
pub use remote::{Connect, connect, connect_async};

/// A machine to serve: its name, the machine (a table and its policy, or a set) and
/// the owner's protocol.
#[derive(Debug)]
pub struct MachineSpec {
    /// The name clients ask for.
    pub name: String,
    /// The machine.
    pub served: Served,
    /// Its lookup protocol.
    pub protocol: Protocol,
}

/// Limits of a listening party's network layer.
#[derive(Clone, Copy, Debug)]
pub struct NetLimits {
    /// The whole TLS handshake and hello of a connection, from its accept (default 10 s).
    pub handshake_timeout: Duration,
    /// Connections held at once; more are closed at once (default 1024).
    pub max_connections: usize,
    /// Requests one client connection has unanswered before the server stops reading
    /// from it (default 1024).
    pub max_in_flight: usize,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits { handshake_timeout: Duration::from_secs(10), max_connections: 1024, max_in_flight: 1024 }
    }
}

/// SHA-256 over every served machine's name, fingerprint, protocol and policy: the
/// parties' links check that all three serve the same machines.
pub fn fingerprint_of<'a>(interfaces: impl IntoIterator<Item = &'a Interface>) -> Fingerprint {
    let mut sorted: Vec<&Interface> = interfaces.into_iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for i in sorted {
        ctx.update(&(i.name.len() as u64).to_le_bytes());
        ctx.update(i.name.as_bytes());
        ctx.update(&i.fingerprint.0);
        ctx.update(i.protocol.to_string().as_bytes());
        ctx.update(&[0, u8::from(i.reveal == Reveal::Accept)]);
        if let Some(set) = &i.set {
            ctx.update(set.policy.name().as_bytes());
        }
    }
    Fingerprint(ctx.finish().as_ref().try_into().expect("32 bytes"))
}
