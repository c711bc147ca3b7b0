//! `pmsm serve`, `pmsm dealer`, `pmsm client`: the parties as processes.

use super::{Failure, InputArgs, usage};
use crate::machine::MachineArgs;
use crate::output::OutputArgs;
use pmsm_engine::InstanceOutput;
use pmsm_engine::process::dealer::{Dealer, DealerConfig};
use pmsm_engine::process::server::{Server, ServerConfig};
use pmsm_engine::process::{NetError, NetOptions, run_sessions};
use pmsm_engine::protocol::Reveal;
use pmsm_engine::service::net::dealer::{DealerConfig as DealerConfig0, NetDealer};
use pmsm_engine::service::net::server::{NetServer, ServerConfig as ServerConfig0};
use pmsm_engine::service::net::{Connect, MachineSpec, NetLimits, Reconnecting};
use pmsm_engine::service::{Options, ServiceError};
use pmsm_engine::transport::tls::{ClientName, Identity, Role};
use pmsm_kernels::Party;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Certificates and the handshake's deadline, shared by the three commands.
#[derive(clap::Args)]
pub struct Common {
    /// Read options from this TOML file first: keys are option names (`idle_timeout`,
    /// `machine = [..]`); options on the command line override it (see the README).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Folder with ca.pem and this party's ROLE.pem and ROLE.key (see `pmsm certs`).
    #[arg(long)]
    certs: PathBuf,
    /// Seconds to connect, complete TLS and the handshake.
    #[arg(long, default_value_t = 10)]
    handshake_timeout: u64,
}

impl Common {
    fn handshake_timeout(&self) -> Result<Duration, Failure> {
        match self.handshake_timeout {
            0 => Err(usage("--handshake-timeout must be positive")),
            t => Ok(Duration::from_secs(t)),
        }
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

/// What a listening party (server or dealer) serves, how long it waits, where it
/// reports.
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
    /// Batch mode: seconds a session waits for its other connections (and an unknown
    /// session's connection waits before it is refused).
    #[arg(long, default_value_t = 30)]
    session_timeout: u64,
    /// Batch mode: seconds to wait for a frame (or to write one) within a session.
    #[arg(long, default_value_t = 600)]
    io_timeout: u64,
    /// Service mode: log lines on stderr as text or JSON (one object a line).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Service mode: the least severe level logged (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log_level: tracing_subscriber::filter::LevelFilter,
}

impl Sessions {
    /// The batch mode's network options.
    fn options(&self, common: &Common) -> Result<NetOptions, Failure> {
        if self.max_connections < 4 {
            return Err(usage("--max-connections must be at least 4 (a session needs four connections)"));
        }
        if self.session_timeout == 0 || self.io_timeout == 0 {
            return Err(usage("--session-timeout and --io-timeout must be positive"));
        }
        Ok(NetOptions {
            handshake_timeout: common.handshake_timeout()?,
            session_timeout: Duration::from_secs(self.session_timeout),
            io_timeout: Duration::from_secs(self.io_timeout),
            max_connections: self.max_connections,
            ..NetOptions::default()
        })
    }

    /// Installs the service mode's log subscriber (stderr; stdout carries `listening`).
    fn logs(&self) {
        let builder =
            tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_max_level(self.log_level);
        let _ = if self.log_format == "json" { builder.json().try_init() } else { builder.try_init() };
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
    service: ServiceArgs,
    /// Serve `/metrics` (Prometheus text format) and `/health` over plain HTTP on this
    /// address (service mode; bind it to a private interface).
    #[arg(long, value_name = "ADDR", requires = "machines")]
    metrics: Option<String>,
    /// Keep sessions in this session store (a file, made owner-only if missing): they
    /// survive restarts of either server, and a push is acknowledged once both servers
    /// committed it. Both servers need one (service mode; see `pmsm store stats`).
    #[arg(long, value_name = "FILE", requires = "machines")]
    store: Option<PathBuf>,
    /// MiB of the store's disk kept free: below them (or when its file system is
    /// read-only) new sessions and pushes are refused with the reason; releases,
    /// closes and what was acknowledged are kept.
    #[arg(long, value_name = "MIB", default_value_t = 64, requires = "store")]
    store_reserve: u64,
    #[command(flatten)]
    sessions: Sessions,
    #[command(flatten)]
    common: Common,
}

/// The service mode of `pmsm serve` and `pmsm dealer`: long-lived, named machines.
#[derive(clap::Args)]
pub struct ServiceArgs {
    /// Serve this machine as a service (repeatable): NAME=FILE, a `.json` table or a
    /// file of regular expressions, optionally `,protocol=lookup-xor|lookup-ring` and
    /// `,reveal=state|accept` (fixed here: clients cannot choose); a rule set: a `.toml`
    /// gitleaks configuration, or a file of regular expressions with
    /// `,reveal=any|rules|count` (and `,grouping=cost|alone|fill`). The servers and the
    /// dealer must be given the same machines. Without it the party serves batch
    /// sessions of the machine given by --dfa/--regex.
    #[arg(long = "machine", value_name = "NAME=FILE", conflicts_with_all = ["dfa", "regex", "regex_file", "sessions"])]
    machines: Vec<String>,
    /// Seconds after which an idle session is evicted (service mode).
    #[arg(long, default_value_t = 600)]
    idle_timeout: u64,
    /// Most sessions one client certificate holds at this server (service mode).
    #[arg(long, default_value_t = 1 << 16)]
    max_sessions_per_client: usize,
    /// Most sessions this server holds (service mode).
    #[arg(long, default_value_t = 1 << 20)]
    max_sessions: usize,
    /// Most symbols pushed and not yet applied over one client certificate's sessions
    /// (service mode).
    #[arg(long, default_value_t = 1 << 24)]
    max_pending_per_client: usize,
}

impl ServiceArgs {
    fn machines(&self) -> Result<Vec<MachineSpec>, Failure> {
        self.machines.iter().map(|m| crate::machine::served(m).map_err(|e| usage(&e))).collect()
    }

    fn options(&self) -> Result<Options, Failure> {
        if [self.idle_timeout as usize, self.max_sessions, self.max_sessions_per_client, self.max_pending_per_client]
            .contains(&0)
        {
            return Err(usage(
                "--idle-timeout, --max-sessions, --max-sessions-per-client and --max-pending-per-client must be positive",
            ));
        }
        Ok(Options {
            idle_timeout: Duration::from_secs(self.idle_timeout),
            max_sessions: self.max_sessions,
            max_sessions_per_client: self.max_sessions_per_client,
            max_pending_per_client: self.max_pending_per_client,
            ..Options::default()
        })
    }
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
    service: ServiceArgs,
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
    /// The service's machine NAME: the client is given its public interface only
    /// (alphabet, share widths, policy; no table). The servers' owner fixes its protocol
    /// and what is released.
    #[arg(long = "machine", value_name = "NAME")]
    pub machine: String,
    /// Refuse the servers unless their machine's SHA-256 starts with these hex digits
    /// (at least 16).
    #[arg(long)]
    pin: Option<String>,
    /// Read standard input and push each line (without its newline) into one session
    /// as it arrives, printing one JSON line per release.
    #[arg(long, conflicts_with_all = ["input", "inputs", "symbol_inputs"])]
    pub stream: bool,
    /// Leave the session open at the end (its id printed first, one JSON line
    /// `{"type": "session", "session": "ID"}`), for a later `--session ID`. Every input
    /// goes into that one session, a release after each. Servers with session stores
    /// keep it across restarts; others until it is idle for their idle timeout.
    #[arg(long)]
    pub keep: bool,
    /// Push into session ID (opened with --keep by the same client identity) instead of
    /// opening one: every input goes on from where it stands, a release after each.
    #[arg(long, value_name = "ID")]
    pub session: Option<u64>,
    /// Servers with session stores: seconds a request waits for servers that went away
    /// (it connects again, takes the session up where both committed it and resends
    /// the rest of a push). Without stores a lost service fails at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    patience: u64,
    /// When to release in --stream mode: after every line, or only at the end.
    #[arg(long, default_value = "line", value_parser = ["line", "end"], requires = "stream")]
    release_every: String,
    #[command(flatten)]
    inputs: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
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

/// Waits for SIGTERM or SIGINT.
fn until_stopped() -> Result<(), Failure> {
    let stop = stop_flag()?;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn limits(common: &Common, sessions: &Sessions) -> Result<NetLimits, Failure> {
    Ok(NetLimits {
        handshake_timeout: common.handshake_timeout()?,
        max_connections: sessions.max_connections.max(4),
        ..NetLimits::default()
    })
}

/// A service server, until SIGTERM or SIGINT.
fn serve_service(args: &ServeArgs, party: Party, role: Role) -> Result<(), Failure> {
    args.sessions.logs();
    let cfg = ServerConfig0 {
        party,
        listen: args.sessions.listen.clone(),
        peer: args.peer.clone(),
        dealer: args.dealer.clone(),
        identity: args.common.identity(role)?,
        machines: args.service.machines()?,
        options: Options { store_reserve: args.store_reserve.saturating_mul(1 << 20), ..args.service.options()? },
        limits: limits(&args.common, &args.sessions)?,
        metrics: args.metrics.clone(),
        store: args.store.clone(),
    };
    let server = NetServer::start(cfg).map_err(|e| Failure { message: e.to_string(), code: 2 })?;
    announce(server.local_addr(), role)?;
    if let Some(m) = server.metrics_addr() {
        tracing::info!(party = party.index(), "metrics on http://{m}/metrics, health on http://{m}/health");
    }
    until_stopped()?;
    tracing::info!(party = party.index(), "shutting down");
    server.shutdown();
    Ok(())
}

/// Runs a server until its session limit.
pub fn serve(args: ServeArgs) -> Result<(), Failure> {
    let party = if args.party == 0 { Party::P0 } else { Party::P1 };
    let role = Role::server(party.index());
    if !args.service.machines.is_empty() {
        return serve_service(&args, party, role);
    }
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
    if !args.service.machines.is_empty() {
        args.sessions.logs();
        let cfg = DealerConfig0 {
            listen: args.sessions.listen.clone(),
            identity: args.common.identity(Role::Dealer)?,
            machines: args.service.machines()?,
            threads,
            pool_depth: Options::default().pool_depth,
            limits: limits(&args.common, &args.sessions)?,
        };
        let dealer = NetDealer::start(cfg).map_err(|e| Failure { message: e.to_string(), code: 2 })?;
        announce(dealer.local_addr(), Role::Dealer)?;
        until_stopped()?;
        tracing::info!("shutting down");
        dealer.shutdown();
        return Ok(());
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

/// What a service client printed or returns: outputs, symbols pushed, seconds.
pub struct ServiceRun {
    /// One output per input, in order.
    pub outputs: Vec<InstanceOutput>,
    /// Symbols pushed in all.
    pub transitions: usize,
    /// Wall time.
    pub seconds: f64,
    /// The machine's protocol.
    pub protocol: String,
    /// A rule set's answers (one per input) and its rule ids (under `rules`).
    pub answers: Option<(Vec<pmsm_engine::dfa::set::Answer>, Vec<String>)>,
    /// The session left open (`--keep`).
    pub kept: Option<u64>,
}

fn service_failed(e: ServiceError) -> Failure {
    let code = if matches!(e, ServiceError::Symbol(_)) { 2 } else { 1 };
    Failure { message: e.to_string(), code }
}

/// Connects to the service for `--machine` (connecting again, with `--patience`, when
/// servers with stores restart).
fn service_client(args: &ClientArgs) -> Result<Reconnecting, Failure> {
    let identity = args.common.client_identity(args.identity.as_ref())?;
    let how = Connect {
        servers: [args.server0.clone(), args.server1.clone()],
        machine: args.machine.clone(),
        pin: args.pin.clone(),
        timeout: args.common.handshake_timeout()?,
    };
    let patience = Duration::from_secs(args.patience);
    Reconnecting::connect(&identity, &how, patience).map_err(service_failed)
}

/// The session `--session` names (taken up), or a new one.
fn first_session(args: &ClientArgs, client: &Reconnecting) -> Result<pmsm_engine::service::Session, Failure> {
    match args.session {
        Some(id) => client.resume(id).map_err(service_failed),
        None => client.open().map_err(service_failed),
    }
}

/// One session per input: open, push, release, close; with --keep or --session, every
/// input into one session. Unknown characters are refused before anything is sent.
pub fn service_run(args: &ClientArgs) -> Result<ServiceRun, Failure> {
    let name = &args.machine;
    let client = service_client(args)?;
    let interface = client.client().interface().clone();
    if args.output.exit_status && interface.reveal != Reveal::Accept && interface.set.is_none() {
        return Err(usage(&format!("--exit-status needs accept bits: machine {name} releases its final state")));
    }
    let encoded = args.inputs.encode(&interface)?;
    let start = std::time::Instant::now();
    let mut outputs = Vec::with_capacity(encoded.len());
    let mut kept = None;
    if args.keep || args.session.is_some() {
        let mut s = first_session(args, &client)?;
        for symbols in &encoded {
            client.push(&mut s, symbols).map_err(service_failed)?;
            outputs.push(client.release(&mut s).map_err(service_failed)?);
        }
        if args.keep {
            kept = Some(s.id());
        } else {
            client.close(s).map_err(service_failed)?;
        }
    } else {
        for symbols in &encoded {
            let mut s = client.open().map_err(service_failed)?;
            client.push(&mut s, symbols).map_err(service_failed)?;
            outputs.push(client.release(&mut s).map_err(service_failed)?);
            client.close(s).map_err(service_failed)?;
        }
    }
    let answers =
        interface.set.as_ref().map(|set| (outputs.iter().filter_map(|o| o.answer.clone()).collect(), set.ids.clone()));
    Ok(ServiceRun {
        outputs,
        transitions: encoded.iter().map(Vec::len).sum(),
        seconds: start.elapsed().as_secs_f64(),
        protocol: interface.protocol.name().to_string(),
        answers,
        kept,
    })
}

/// `--stream`: every line of standard input into one session, a JSON line per
/// release (after every line, or once at the end).
pub fn service_stream(args: &ClientArgs, out: &mut impl Write) -> Result<(), Failure> {
    let client = service_client(args)?;
    let interface = client.client().interface().clone();
    let io = |e: std::io::Error| Failure { message: format!("standard input or output: {e}"), code: 1 };
    let mut session = first_session(args, &client)?;
    let id = session.id();
    if args.keep {
        writeln!(out, "{}", serde_json::json!({"type": "session", "session": id.to_string()})).map_err(io)?;
    }
    let every_line = args.release_every == "line";
    let print = |out: &mut dyn Write, line: Option<usize>, o: &InstanceOutput| -> Result<(), Failure> {
        let mut v = serde_json::json!({"type": "release", "session": id, "symbols": o.symbols});
        if let Some(l) = line {
            v["line"] = serde_json::json!(l);
        }
        if let Some(a) = o.accept {
            v["accept"] = serde_json::json!(a);
        }
        if let Some(s) = o.final_state {
            v["final_state"] = serde_json::json!(s);
        }
        if let (Some(a), Some(set)) = (&o.answer, &interface.set) {
            let (key, value) = crate::sets::answer_json(a, &set.ids);
            v[key] = value;
        }
        writeln!(out, "{v}").and_then(|()| out.flush()).map_err(io)
    };
    let stdin = std::io::stdin();
    let mut line = Vec::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let got = std::io::BufRead::read_until(&mut stdin.lock(), b'\n', &mut line).map_err(io)?;
        if got == 0 {
            break;
        }
        n += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let symbols = interface
            .encode(&line, n - 1)
            .map_err(|e| Failure { message: format!("standard input, line {n}: {e}"), code: 2 })?;
        client.push(&mut session, &symbols).map_err(service_failed)?;
        if every_line {
            let o = client.release(&mut session).map_err(service_failed)?;
            print(out, Some(n), &o)?;
        }
    }
    if !every_line {
        let o = client.release(&mut session).map_err(service_failed)?;
        print(out, None, &o)?;
    }
    if args.keep { Ok(()) } else { client.close(session).map_err(service_failed) }
}
