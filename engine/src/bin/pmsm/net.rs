//! `pmsm serve`, `pmsm dealer`, `pmsm client`: the parties as processes.

use super::{Failure, RunArgs, usage};
use crate::machine::MachineArgs;
use pmsm_engine::Engine;
use pmsm_engine::process::client::{self, ClientRun};
use pmsm_engine::process::dealer::{Dealer, DealerConfig};
use pmsm_engine::process::server::{Server, ServerConfig};
use pmsm_engine::process::{NetError, NetOptions, run_sessions};
use pmsm_engine::transport::tls::{ClientName, Identity, Role};
use pmsm_kernels::Party;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Certificates and timeouts, shared by the three commands.
#[derive(clap::Args)]
pub struct Common {
    /// Folder with ca.pem and this party's ROLE.pem and ROLE.key (see `pmsm certs`).
    #[arg(long)]
    certs: PathBuf,
    /// Seconds to connect, complete TLS and the handshake.
    #[arg(long, default_value_t = 10)]
    handshake_timeout: u64,
    /// Seconds a session waits for its other connections (and an unknown session's
    /// connection waits before it is refused).
    #[arg(long, default_value_t = 30)]
    session_timeout: u64,
    /// Seconds to wait for a frame (or to write one) within a session.
    #[arg(long, default_value_t = 600)]
    io_timeout: u64,
}

impl Common {
    fn options(&self) -> Result<NetOptions, Failure> {
        if self.handshake_timeout == 0 || self.session_timeout == 0 || self.io_timeout == 0 {
            return Err(usage("timeouts must be positive"));
        }
        Ok(NetOptions {
            handshake_timeout: Duration::from_secs(self.handshake_timeout),
            session_timeout: Duration::from_secs(self.session_timeout),
            io_timeout: Duration::from_secs(self.io_timeout),
            ..NetOptions::default()
        })
    }

    fn identity(&self, role: Role) -> Result<Identity, Failure> {
        Identity::load(&self.certs, role).map_err(|e| usage(&e.to_string()))
    }

    /// The client identity `name` (`client-NAME.pem`, `.key`), or the shared one.
    fn client_identity(&self, name: Option<&ClientName>) -> Result<Identity, Failure> {
        match name {
            Some(n) => {
                Identity::load_named(&self.certs, Role::Client, &n.file_stem()).map_err(|e| usage(&e.to_string()))
            }
            None => self.identity(Role::Client),
        }
    }
}

/// How many sessions a listening party serves, and where it reports them.
#[derive(clap::Args)]
pub struct Sessions {
    /// Address to listen on (port 0 picks a free port). The bound address is printed
    /// on stdout as `listening HOST:PORT`.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Exit after this many sessions (non-zero if any failed); default: serve until
    /// SIGTERM or SIGINT, then finish the running sessions and exit.
    #[arg(long)]
    sessions: Option<usize>,
    /// Append one JSON line per finished session to this file.
    #[arg(long)]
    stats: Option<PathBuf>,
    /// Connections held at once before their session claims them; more are closed at
    /// once.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
}

impl Sessions {
    /// `common`'s options with this listener's connection limit.
    fn options(&self, common: &Common) -> Result<NetOptions, Failure> {
        if self.max_connections < 4 {
            return Err(usage("--max-connections must be at least 4 (a session needs four connections)"));
        }
        Ok(NetOptions { max_connections: self.max_connections, ..common.options()? })
    }
}

/// `pmsm serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Which server: 0 or 1.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
    party: u8,
    /// Server 0's address (server 1 dials it).
    #[arg(long, required_if_eq("party", "1"))]
    peer: Option<String>,
    /// The dealer's address.
    #[arg(long)]
    dealer: String,
    #[command(flatten)]
    machine: MachineArgs,
    #[command(flatten)]
    sessions: Sessions,
    #[command(flatten)]
    common: Common,
}

/// `pmsm dealer`.
#[derive(clap::Args)]
pub struct DealerArgs {
    #[command(flatten)]
    machine: MachineArgs,
    /// Key-generation threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Rounds dealt ahead of the servers.
    #[arg(long, default_value_t = 32)]
    depth: usize,
    /// Generate each session's correlations before answering the servers, so their
    /// session time is the online phase alone (benchmarks).
    #[arg(long)]
    predeal: bool,
    #[command(flatten)]
    sessions: Sessions,
    #[command(flatten)]
    common: Common,
}

/// `pmsm client`.
#[derive(clap::Args)]
pub struct ClientArgs {
    /// Server 0's address.
    #[arg(long)]
    server0: String,
    /// Server 1's address.
    #[arg(long)]
    server1: String,
    /// Present this client's own identity, client-NAME.pem and client-NAME.key in
    /// --certs (see `pmsm certs --client NAME`) [default: client.pem, client.key].
    #[arg(long, value_name = "NAME")]
    identity: Option<ClientName>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    common: Common,
}

fn failed(e: NetError) -> Failure {
    let code = if matches!(&e, NetError::Run(pmsm_engine::Error::Dfa(_))) { 2 } else { 1 };
    Failure { message: e.to_string(), code }
}

/// A flag raised by SIGTERM or SIGINT (a second signal while stopping exits at once).
fn stop_flag() -> Result<Arc<AtomicBool>, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in signal_hook::consts::TERM_SIGNALS {
        signal_hook::flag::register_conditional_shutdown(*sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(*sig, stop.clone()))
            .map_err(|e| Failure { message: format!("cannot install the signal handler: {e}"), code: 1 })?;
    }
    Ok(stop)
}

fn announce(addr: std::net::SocketAddr, role: Role) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {addr}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure { message: format!("writing output: {e}"), code: 1 })?;
    eprintln!("pmsm {role}: listening on {addr}");
    Ok(())
}

/// Runs a server until its session limit.
pub fn serve(args: ServeArgs) -> Result<(), Failure> {
    let party = if args.party == 0 { Party::P0 } else { Party::P1 };
    let role = Role::server(party.index());
    let cfg = ServerConfig {
        party,
        listen: args.sessions.listen.clone(),
        peer: args.peer.clone(),
        dealer: args.dealer.clone(),
        identity: args.common.identity(role)?,
        dfa: args.machine.load(None)?,
        opts: args.sessions.options(&args.common)?,
    };
    let server = Server::bind(cfg).map_err(failed)?;
    let stop = stop_flag()?;
    announce(server.local_addr(), role)?;
    let s = &args.sessions;
    run_sessions(role, server.listener(), s.sessions, s.stats.as_deref(), &stop, |id| server.session(id))
        .map_err(failed)
}

/// Runs the dealer until its session limit.
pub fn dealer(args: DealerArgs) -> Result<(), Failure> {
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 || args.depth == 0 {
        return Err(usage("--threads and --depth must be positive"));
    }
    let cfg = DealerConfig {
        listen: args.sessions.listen.clone(),
        identity: args.common.identity(Role::Dealer)?,
        dfa: args.machine.load(None)?,
        threads,
        depth: args.depth,
        predeal: args.predeal,
        opts: args.sessions.options(&args.common)?,
    };
    let dealer = Dealer::bind(cfg).map_err(failed)?;
    let stop = stop_flag()?;
    announce(dealer.local_addr(), Role::Dealer)?;
    let s = &args.sessions;
    run_sessions(Role::Dealer, dealer.listener(), s.sessions, s.stats.as_deref(), &stop, |id| dealer.session(id))
        .map_err(failed)
}

/// Runs one client session; returns it and the engine.
pub fn client(args: &ClientArgs) -> Result<(ClientRun, Engine), Failure> {
    let identity = args.common.client_identity(args.identity.as_ref())?;
    let opts = args.common.options()?;
    let (engine, inputs) = args.run.prepare()?;
    let run = client::run(&identity, [&args.server0, &args.server1], &engine, &inputs, &opts).map_err(failed)?;
    Ok((run, engine))
}
