//! pmsm as a service: long-lived servers holding named machines, clients that know
//! only a machine's [`Interface`], sessions fed symbols over time, and waves that batch
//! every session with work, whichever client it belongs to (DESIGN §9).
//!
//! ```
//! use pmsm_engine::service::Service;
//! use pmsm_engine::protocol::{Protocol, Reveal};
//! let dfa = pmsm_engine::dfa::json::from_json_str(
//!     r#"{"states": 4, "alphabet": ["a","b"], "start": 0, "accepting": [1], "delta": [[2,3],[3,3],[3,1],[3,3]]}"#,
//!     "ab.json",
//! )?;
//! let service = Service::builder().machine("ab", dfa, Protocol::LookupXor, Reveal::Accept).start()?;
//! let client = service.connect("ab")?;            // holds the interface, not the machine
//! let mut s = client.open()?;
//! client.push_text(&mut s, "ab")?;
//! assert_eq!(client.release(&mut s)?.accept, Some(true));   // "ab" is accepted
//! client.push_text(&mut s, "a")?;                       // the session goes on
//! assert_eq!(client.release(&mut s)?.accept, Some(false));  // "aba" is not
//! client.close(s)?;
//! # Ok::<(), pmsm_engine::Error>(())
//! ```
//!
//! `README.md` in this folder draws a push's path through the four parties. This is
//! the in-process back end (dealer and servers on threads of the caller's process);
//! the servers exchange only frames, over the same [`crate::transport`] links as the
//! batch engine, so the network back end runs the same loops.

mod client;
mod dealer;
pub mod interface;
#[cfg(feature = "net")]
pub mod net;
pub mod pool;
pub mod reply;
mod server;
pub mod session;
pub mod wave;

pub use client::{Client, MAX_PUSH, Session};
pub use interface::Interface;

use crate::dfa::set::MachineSet;
use crate::dfa::{Dfa, DfaError};
use crate::party::sharing::{Ring, Sharing, Xor};
use crate::protocol::plan::{Plan, Table};
use crate::protocol::set::SetPlan;
use crate::protocol::{ClassMode, Protocol, ProtocolError, Reveal};
use crate::store::Store;
use crate::transport::inproc::link_pair;
use crate::transport::{BoxRx, BoxTx, Counted, Counters, Link, TransportError};
use crossbeam_channel::{Sender, bounded};
use pmsm_kernels::Party;
use pmsm_kernels::rng::{RngCore, SecretRng};
use session::Request;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use wave::WaveKind;

/// What goes wrong for a client of the service.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No machine of that name is served.
    #[error("no machine named {name:?} is served here (served: {served})")]
    UnknownMachine {
        /// The name asked for.
        name: String,
        /// The names served.
        served: String,
    },
    /// The session is not open: closed, evicted, or never opened.
    #[error("session {session} is not open (closed, evicted after {idle_seconds} s idle, or never opened)")]
    UnknownSession {
        /// The session.
        session: u64,
        /// The idle time after which sessions are evicted.
        idle_seconds: u64,
    },
    /// The session belongs to another client.
    #[error("session {session} belongs to another client")]
    NotOwner {
        /// The session.
        session: u64,
    },
    /// A limit on sessions or pending symbols.
    #[error("refused: {0}")]
    Limit(String),
    /// A request that does not fit the session or the machine.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A symbol outside the machine's alphabet (nothing was sent).
    #[error(transparent)]
    Symbol(#[from] DfaError),
    /// A server cannot be reached, or is not linked with the other parties just now
    /// (network back end): nothing was applied; retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The servers' machine does not have the fingerprint the client pinned (network
    /// back end; nothing was sent but the hello).
    #[error("the servers' machine has fingerprint {fingerprint}, not the pinned {pinned}")]
    PinMismatch {
        /// The servers' machine's SHA-256 (hex).
        fingerprint: String,
        /// The pinned prefix (lowercase hex).
        pinned: String,
    },
    /// The service is not running.
    #[error("the service stopped: {reason}")]
    Stopped {
        /// Why, as far as known (a server's root error, or a shutdown).
        reason: String,
    },
}

/// Limits and sizes of a service. Every queue is bounded and every wait ends.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Most sessions in one step or accept wave (class waves take four times as many
    /// lookups).
    pub max_wave: usize,
    /// Waves the leader keeps in flight.
    pub window: usize,
    /// Sessions with no request for this long are evicted.
    pub idle_timeout: Duration,
    /// Most sessions a server holds.
    pub max_sessions: usize,
    /// Most sessions one client holds.
    pub max_sessions_per_client: usize,
    /// Most symbols pushed into one session and not yet applied.
    pub max_pending: usize,
    /// Most symbols pushed and not yet applied over all sessions of one client.
    pub max_pending_per_client: usize,
    /// Most symbols pushed and not yet applied over all sessions of a server.
    pub max_pending_total: usize,
    /// Dealer blocks (of [`pool::BLOCK`] correlations) queued per width per server.
    pub pool_depth: usize,
    /// Threads of the dealer's key generation (0: all cores).
    pub dealer_threads: usize,
    /// With session stores: the free bytes a store's disk keeps in reserve. Below it
    /// (or on a read-only mount) new sessions and pushes are refused with the reason;
    /// releases, closes and the commits of what was taken go on in the reserve.
    pub store_reserve: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_wave: 1024,
            window: 16,
            idle_timeout: Duration::from_secs(600),
            max_sessions: 1 << 20,
            max_sessions_per_client: 1 << 20,
            max_pending: 1 << 20,
            max_pending_per_client: 1 << 24,
            max_pending_total: 1 << 26,
            pool_depth: 8,
            dealer_threads: 0,
            store_reserve: 64 << 20,
        }
    }
}

/// Counters of a running service (server 0's view, but `sessions`, which is per server).
#[derive(Debug, Default)]
pub struct Stats {
    /// Sessions open (both servers count: twice the sessions).
    pub sessions: AtomicU64,
    /// Waves finished (both servers count).
    pub waves: AtomicU64,
    /// Lookups finished (both servers count).
    pub lookups: AtomicU64,
    /// Transitions applied (both servers count).
    pub transitions: AtomicU64,
    /// Pushes taken (both servers count).
    pub pushes: AtomicU64,
    /// Sessions evicted for idleness.
    pub evicted: AtomicU64,
    /// Correlations decoded at the servers' pools and not yet used, after the last wave
    /// took some (blocks still queued on a dealer link are not counted).
    pub pool_ready: AtomicU64,
    /// Session store commits (both servers count; 0 without stores).
    pub commits: AtomicU64,
    /// Sessions written by those commits.
    pub committed_sessions: AtomicU64,
    /// Microseconds spent committing.
    pub commit_micros: AtomicU64,
}

/// A machine to serve: one DFA under the owner's output policy, or a machine set
/// (whose policy its groups' labels were made for).
#[derive(Clone, Debug)]
pub enum Served {
    /// One machine, releasing its final state or accept bit.
    Dfa(Dfa, Reveal),
    /// Many machines over one input, their outputs combined under the set's policy.
    Set(MachineSet),
}

/// A machine as the servers hold it: the owner's protocol and policy fixed in its plan.
#[derive(Debug)]
pub struct Machine {
    /// Its name.
    pub name: String,
    /// The public tables (servers only): one group for a single machine.
    pub plan: SetPlan,
    /// What clients are given.
    pub interface: Interface,
    /// Its first lane: group `g` runs on lane `first_lane + g`, level `l` of its
    /// combination on lane `first_lane + groups + l`.
    pub first_lane: u16,
}

impl Machine {
    /// Whether releases combine the groups' outputs as a set (a set session).
    pub fn is_set(&self) -> bool {
        self.plan.policy.is_some()
    }
}

/// One track of lookups of a served machine: a group's machine (its class, step and
/// output lookups) or one level of a set's combination. Waves are formed per lane and
/// wave kind; a session of a set is one session per group (consecutive slots, the
/// first the client's) sharing the pushed symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lane {
    /// The served machine.
    pub machine: u16,
    /// Which part of it.
    pub part: Part,
}

/// What a lane runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Group `g`'s machine.
    Group(u16),
    /// Level `l` of the combination.
    Level(u16),
}

/// The machines of one share family and their lanes.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The served machines, in the order clients' opens name them.
    pub machines: Vec<Machine>,
    /// Every machine's lanes, machine after machine.
    pub lanes: Vec<Lane>,
}

impl Catalog {
    /// Adds a machine and its lanes; an error when the lanes overflow their numbering.
    fn push(&mut self, name: String, plan: SetPlan, interface: Interface) -> Result<(), ProtocolError> {
        let groups = plan.groups.len();
        let levels = plan.levels.len();
        let first = self.lanes.len();
        if first + groups + levels > usize::from(u16::MAX) || self.machines.len() >= usize::from(u16::MAX) {
            return Err(ProtocolError::Parameter(format!("machine {name:?}: too many machines and groups to serve")));
        }
        let machine = self.machines.len() as u16;
        self.lanes.extend((0..groups as u16).map(|g| Lane { machine, part: Part::Group(g) }));
        self.lanes.extend((0..levels as u16).map(|l| Lane { machine, part: Part::Level(l) }));
        self.machines.push(Machine { name, plan, interface, first_lane: first as u16 });
        Ok(())
    }

    /// The machine of `lane` and its part.
    pub fn lane(&self, lane: u16) -> Option<(&Machine, Part)> {
        let l = self.lanes.get(lane as usize)?;
        Some((&self.machines[l.machine as usize], l.part))
    }

    /// The plan of group lane `lane`.
    pub fn group(&self, lane: u16) -> Option<&Plan> {
        match self.lane(lane)? {
            (m, Part::Group(g)) => m.plan.groups.get(g as usize),
            _ => None,
        }
    }

    /// The table a wave of `kind` reads on `lane`, if the lane has such lookups.
    pub fn table(&self, lane: u16, kind: WaveKind) -> Option<&Table> {
        match (self.lane(lane)?, kind) {
            ((m, Part::Group(g)), _) => {
                let plan = &m.plan.groups[g as usize];
                match kind {
                    WaveKind::Class => plan.classes.as_ref().map(|c| &c.table),
                    WaveKind::Step => Some(&plan.step),
                    WaveKind::Accept => plan.accept.as_ref(),
                    WaveKind::Combine => None,
                }
            }
            ((m, Part::Level(l)), WaveKind::Combine) => m.plan.levels[l as usize].table.as_ref(),
            _ => None,
        }
    }

    /// Every lookup width the lanes use.
    pub fn widths(&self) -> BTreeSet<u32> {
        let kinds = [WaveKind::Class, WaveKind::Step, WaveKind::Accept, WaveKind::Combine];
        (0..self.lanes.len() as u16)
            .flat_map(|l| kinds.iter().filter_map(move |&k| self.table(l, k).map(Table::domain_bits)))
            .collect()
    }

    /// Whether the family serves nothing.
    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }
}

/// Configures a [`Service`].
#[derive(Debug, Default)]
pub struct ServiceBuilder {
    machines: Vec<(String, Served, Protocol)>,
    options: Options,
    tap: Option<(Link, Sender<Vec<u8>>)>,
    stores: Option<[PathBuf; 2]>,
}

impl ServiceBuilder {
    /// Serves `dfa` as `name` under the owner's `protocol` and output policy `reveal`
    /// (clients cannot choose either).
    pub fn machine(mut self, name: &str, dfa: Dfa, protocol: Protocol, reveal: Reveal) -> Self {
        self.machines.push((name.to_string(), Served::Dfa(dfa, reveal), protocol));
        self
    }

    /// Serves machine set `set` as `name` under `protocol`: a release gives what the
    /// set's policy says (`any`, `rules` or `count`), combined inside the protocol.
    pub fn set(mut self, name: &str, set: MachineSet, protocol: Protocol) -> Self {
        self.machines.push((name.to_string(), Served::Set(set), protocol));
        self
    }

    /// Limits and sizes.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Keeps sessions in a session store per server (`server0`, `server1`: files, made
    /// if missing, [`crate::store`]): a service started again on the same stores goes
    /// on with every session whose pushes were acknowledged, and a push returns only
    /// once both servers committed it.
    pub fn stores(mut self, server0: impl Into<PathBuf>, server1: impl Into<PathBuf>) -> Self {
        self.stores = Some([server0.into(), server1.into()]);
        self
    }

    /// Sends a copy of every frame sent on `link` (between the servers or from the
    /// dealer) to `to`: for auditing what a party receives (the privacy tests use it).
    pub fn observe(mut self, link: Link, to: Sender<Vec<u8>>) -> Self {
        self.tap = Some((link, to));
        self
    }

    /// Starts the dealer and both servers on threads of this process.
    pub fn start(self) -> Result<Service, crate::Error> {
        let o = self.options;
        if self.machines.is_empty() {
            return Err(ProtocolError::Parameter("a service needs a machine".into()).into());
        }
        check(&o)?;
        let mut families = families(self.machines)?;
        check_machines(&o, &families)?;
        let stores = match &self.stores {
            Some([p0, p1]) => {
                let open = |p: &PathBuf, party| Store::open(p, party).map(Arc::new).map_err(ProtocolError::from);
                [Some(open(p0, Party::P0)?), Some(open(p1, Party::P1)?)]
            }
            None => [None, None],
        };
        if stores[0].is_some() {
            durable(&mut families);
        }
        let dealer = dealer_pool(o.dealer_threads)?;
        let counters = Counters::default();
        let stats = Arc::new(Stats::default());
        let failure = Arc::new(Mutex::new(None));
        let mut service = Service {
            directory: HashMap::new(),
            inboxes: Vec::new(),
            threads: Vec::new(),
            counters: counters.clone(),
            stats: Arc::clone(&stats),
            failure: Arc::clone(&failure),
            next_owner: AtomicU64::new(1),
        };
        for (f, machines) in families.into_iter().enumerate().filter(|(_, m)| !m.is_empty()) {
            for (i, m) in machines.machines.iter().enumerate() {
                service.directory.insert(m.name.clone(), (service.inboxes.len(), i as u16, m.interface.clone()));
            }
            let ctx = Context {
                machines: Arc::new(machines),
                options: o,
                stats: Arc::clone(&stats),
                counters: counters.clone(),
                dealer: Some(Arc::clone(&dealer)),
                failure: Arc::clone(&failure),
                tap: self.tap.clone(),
                stores: stores.clone(),
                family: f as u8,
            };
            let (inboxes, handles) = if f == 0 { spawn::<Xor>(ctx) } else { spawn::<Ring>(ctx) }?;
            service.inboxes.push(inboxes);
            service.threads.extend(handles);
        }
        Ok(service)
    }
}

/// Marks every machine's interface durable (its servers keep session stores), so
/// clients wait for both servers' commits before a push returns.
pub(crate) fn durable(families: &mut [Catalog; 2]) {
    for m in families.iter_mut().flat_map(|c| c.machines.iter_mut()) {
        m.interface.durable = true;
    }
}

/// Refuses options that could deadlock or that name no work.
pub(crate) fn check(o: &Options) -> Result<(), crate::Error> {
    if o.max_wave == 0 || o.window == 0 || o.pool_depth < 2 {
        let e = "a service needs positive wave and window sizes and a pool depth of at least 2";
        return Err(ProtocolError::Parameter(e.into()).into());
    }
    // A session counts its classified symbols in 32 bits.
    if o.max_pending > u32::MAX as usize {
        return Err(ProtocolError::Parameter(format!("max_pending {} is over 2^32 - 1", o.max_pending)).into());
    }
    // A wave takes its correlations before its plan leaves, and the dealer serves
    // server 0 before server 1: a wave needing more blocks than server 1's link holds
    // would wait for a block the dealer cannot send. Class waves are 4 × max_wave.
    let largest = 4 * o.max_wave;
    if largest > (o.pool_depth - 1) * pool::BLOCK || largest > wave::MAX_WAVE_LOOKUPS {
        return Err(ProtocolError::Parameter(format!(
            "max_wave {} needs waves of up to {largest} lookups; the pools hold {} (pool_depth {} − 1 blocks of {})",
            o.max_wave,
            (o.pool_depth - 1) * pool::BLOCK,
            o.pool_depth,
            pool::BLOCK
        ))
        .into());
    }
    Ok(())
}

/// Refuses machines a wave cannot hold: a set's combination level whose nodes need more
/// correlations than the largest wave may take (4 × `max_wave`).
pub(crate) fn check_machines(o: &Options, families: &[Catalog; 2]) -> Result<(), crate::Error> {
    for m in families.iter().flat_map(|c| &c.machines) {
        if let Some(l) = m.plan.levels.iter().find(|l| l.nodes.len() > 4 * o.max_wave) {
            return Err(ProtocolError::Parameter(format!(
                "machine {:?}: a level of its combination has {} nodes; max_wave {} allows {}",
                m.name,
                l.nodes.len(),
                o.max_wave,
                4 * o.max_wave
            ))
            .into());
        }
    }
    Ok(())
}

/// The machines' plans, by share family (XOR lookups, then ring lookups); names are
/// unique and every protocol is a lookup.
pub(crate) fn families(
    machines: impl IntoIterator<Item = (String, Served, Protocol)>,
) -> Result<[Catalog; 2], crate::Error> {
    let mut names = BTreeSet::new();
    let mut families: [Catalog; 2] = Default::default();
    for (name, served, protocol) in machines {
        if !names.insert(name.clone()) {
            return Err(ProtocolError::Parameter(format!("machine {name:?} is named twice")).into());
        }
        if !protocol.is_lookup() {
            return Err(
                ProtocolError::Parameter(format!("the service runs lookup protocols; {protocol} is not one")).into()
            );
        }
        let (plan, interface) = match &served {
            Served::Dfa(dfa, reveal) => {
                let plan = Plan::new(dfa, protocol, *reveal, ClassMode::Auto)?;
                let interface = Interface::of(&name, dfa, &plan);
                (SetPlan::single(plan), interface)
            }
            Served::Set(set) => {
                let plan = SetPlan::new(set, protocol, ClassMode::Auto)?;
                let interface = Interface::of_set(&name, set, &plan);
                (plan, interface)
            }
        };
        families[usize::from(protocol == Protocol::LookupRing)].push(name, plan, interface)?;
    }
    Ok(families)
}

/// A running service: a dealer and two servers on threads of this process.
///
/// Dropping it stops the service (waves in flight finish; pending releases fail).
#[derive(Debug)]
pub struct Service {
    /// Machine name → (family, index in the family, interface).
    directory: HashMap<String, (usize, u16, Interface)>,
    /// Per family (XOR, ring): the servers' request queues.
    inboxes: Vec<Inboxes>,
    threads: Vec<JoinHandle<()>>,
    counters: Counters,
    stats: Arc<Stats>,
    failure: Arc<Mutex<Option<String>>>,
    next_owner: AtomicU64,
}

impl Service {
    /// Starts configuring a service.
    pub fn builder() -> ServiceBuilder {
        ServiceBuilder::default()
    }

    /// The interfaces of every served machine, by name.
    pub fn interfaces(&self) -> Vec<Interface> {
        let mut v: Vec<Interface> = self.directory.values().map(|(_, _, i)| i.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// A client connection for machine `name` (a new client identity: sessions it
    /// opens are its own).
    pub fn connect(&self, name: &str) -> Result<Client, ServiceError> {
        self.client(name, self.next_owner.fetch_add(1, Ordering::Relaxed))
    }

    /// A client connection for machine `name` as the client the embedder calls `who`
    /// (it authenticates its callers): every connection with the same `who` owns the
    /// same sessions, also after the service restarts on its stores (as a client
    /// certificate does over the network).
    pub fn connect_as(&self, name: &str, who: &str) -> Result<Client, ServiceError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, who.as_bytes());
        let named = u64::from_le_bytes(digest.as_ref()[..8].try_into().expect("8 bytes"));
        // The top bit apart from [`Service::connect`]'s counted identities.
        self.client(name, named | 1 << 63)
    }

    fn client(&self, name: &str, owner: session::Owner) -> Result<Client, ServiceError> {
        let Some((family, machine, interface)) = self.directory.get(name) else {
            let mut served: Vec<&str> = self.directory.keys().map(String::as_str).collect();
            served.sort_unstable();
            return Err(ServiceError::UnknownMachine { name: name.to_string(), served: served.join(", ") });
        };
        Ok(Client {
            interface: interface.clone(),
            machine: *machine,
            owner,
            route: Route::InProcess(self.inboxes[*family].clone()),
            counters: self.counters.clone(),
            failure: Arc::clone(&self.failure),
        })
    }

    /// The service's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Bytes sent on every link so far (client links count requests and answers as
    /// their network form would carry them; the others count frames).
    pub fn bytes(&self) -> crate::LinkBytes {
        crate::LinkBytes::from_counters(&self.counters)
    }

    /// Stops the service and waits for its threads; the error of a server that failed,
    /// if one did.
    pub fn shutdown(mut self) -> Result<(), ServiceError> {
        self.stop();
        match self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            Some(reason) => Err(ServiceError::Stopped { reason }),
            None => Ok(()),
        }
    }

    fn stop(&mut self) {
        for inbox in &self.inboxes {
            for tx in &inbox.to {
                let _ = tx.send(Request::Stop);
            }
        }
        self.inboxes.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the threads of one family share.
pub(crate) struct Context {
    pub(crate) machines: Arc<Catalog>,
    pub(crate) options: Options,
    pub(crate) stats: Arc<Stats>,
    pub(crate) counters: Counters,
    /// The dealer's key-generation threads (in process only).
    pub(crate) dealer: Option<Arc<rayon::ThreadPool>>,
    pub(crate) failure: Arc<Mutex<Option<String>>>,
    pub(crate) tap: Option<(Link, Sender<Vec<u8>>)>,
    /// Each server's session store (in process both; over the network this server's),
    /// and the family's code in it (0 XOR, 1 ring).
    pub(crate) stores: [Option<Arc<Store>>; 2],
    pub(crate) family: u8,
}

/// The dealer's key-generation threads (`threads` 0: one per core).
pub(crate) fn dealer_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>, crate::Error> {
    let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("pmsm-service-dealer-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| ProtocolError::Parameter(format!("cannot start the dealer's threads: {e}")).into())
}

/// Runs `f` on a named thread; a failure (not a peer's disconnection) is recorded as
/// the service's root cause.
pub(crate) fn thread(
    name: String,
    failure: &Arc<Mutex<Option<String>>>,
    f: impl FnOnce() -> Result<(), ProtocolError> + Send + 'static,
) -> Result<JoinHandle<()>, crate::Error> {
    let failure = Arc::clone(failure);
    let what = name.clone();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(r) => note_failure(&failure, &name, &r),
            Err(_) => note(&failure, &name, Some(format!("{name} panicked"))),
        })
        .map_err(|e| ProtocolError::Parameter(format!("cannot start {what}: {e}")).into())
}

/// Records `r`'s error, if any, as the service's root cause (a disconnection only if
/// nothing better is known). A server notes its own before it fails what is queued
/// for it, so its clients are told why.
pub(crate) fn note_failure(failure: &Mutex<Option<String>>, name: &str, r: &Result<(), ProtocolError>) {
    match r {
        Ok(()) => {}
        Err(ProtocolError::Transport(TransportError::Disconnected { .. })) => note(failure, name, None),
        Err(e) => note(failure, name, Some(format!("{name}: {e}"))),
    }
}

fn note(failure: &Mutex<Option<String>>, name: &str, e: Option<String>) {
    let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        *slot = Some(e.unwrap_or_else(|| format!("{name}: a peer disconnected")));
    } else if let (Some(e), Some(prev)) = (e, slot.as_ref()) {
        // A root cause replaces a disconnection it caused.
        if prev.ends_with("a peer disconnected") {
            *slot = Some(e);
        }
    }
}

/// Where a client's requests go: the servers' queues in this process, or the network.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// The in-process back end.
    InProcess(Inboxes),
    /// The network back end.
    #[cfg(feature = "net")]
    Network(Arc<net::remote::Remote>),
}

/// The request queues of one family's two servers, and whether each has stopped.
#[derive(Clone, Debug)]
pub(crate) struct Inboxes {
    pub(crate) to: [Sender<Request>; 2],
    pub(crate) closed: [Arc<AtomicBool>; 2],
}

/// One family's running threads: the servers' request queues and the thread handles.
type Running = (Inboxes, Vec<JoinHandle<()>>);

/// Starts the dealer threads, the leader and the follower of one share family.
fn spawn<S: Sharing>(ctx: Context) -> Result<Running, crate::Error> {
    let o = ctx.options;
    let counted = |link: Link, depth: usize| -> (BoxTx, BoxRx) {
        let tap = ctx.tap.as_ref().filter(|(l, _)| *l == link).map(|(_, t)| t.clone());
        let (tx, rx) = link_pair(link, depth, tap);
        (Box::new(Counted::new(tx, ctx.counters.clone())), Box::new(rx))
    };
    let mut handles = Vec::new();
    let mut pools: [Vec<pool::Pool<S>>; 2] = [Vec::new(), Vec::new()];
    for width in ctx.machines.widths() {
        let epoch = SecretRng::from_os().next_u64();
        let (t0, r0) = counted(Link::DealerToS0, o.pool_depth);
        let (t1, r1) = counted(Link::DealerToS1, o.pool_depth);
        pools[0].push(pool::Pool::new(width, epoch, Party::P0, r0));
        pools[1].push(pool::Pool::new(width, epoch, Party::P1, r1));
        let threads = Arc::clone(ctx.dealer.as_ref().expect("the in-process service has a dealer"));
        handles.push(thread(format!("dealer (width {width})"), &ctx.failure, move || {
            dealer::fill::<S>(width, [t0, t1], &threads)
        })?);
    }
    let [pools0, pools1] = pools;
    let (to1, from0) = counted(Link::S0ToS1, o.window + 2);
    let (to0, from1) = counted(Link::S1ToS0, o.window + 2);
    // Slots from a random base, as over the network: a service started again on its
    // stores numbers its new sessions away from the ones it kept.
    let first_slot = SecretRng::from_os().next_u64() >> 2;
    let (in0, closed0, h0) = spawn_server::<S>(&ctx, Party::P0, pools0, to1, from1, first_slot)?;
    let (in1, closed1, h1) = spawn_server::<S>(&ctx, Party::P1, pools1, to0, from0, 0)?;
    handles.extend(h0.into_iter().chain(h1));
    Ok((Inboxes { to: [in0, in1], closed: [closed0, closed1] }, handles))
}

/// A running server's request queue, its stopped flag and its threads.
pub(crate) type RunningServer = (Sender<Request>, Arc<AtomicBool>, Vec<JoinHandle<()>>);

/// Starts server `party` of one family (the leader for server 0, the follower for
/// server 1) on its pools and its links to the other server, wherever those run (in
/// this process, or over the network). Server 0 numbers sessions from `first_slot`.
pub(crate) fn spawn_server<S: Sharing>(
    ctx: &Context,
    party: Party,
    pools: Vec<pool::Pool<S>>,
    to_peer: BoxTx,
    from_peer: BoxRx,
    first_slot: session::Slot,
) -> Result<RunningServer, crate::Error> {
    let o = ctx.options;
    let (tx, inbox) = bounded(4096);
    let (m, st) = (Arc::clone(&ctx.machines), Arc::clone(&ctx.stats));
    // A server that stops (shut down, or failed) sets `closed`, then fails every request
    // still queued for it; a client that queues one after that sees the flag.
    let closed = Arc::new(AtomicBool::new(false));
    let finish = |closed: &AtomicBool, inbox: &crossbeam_channel::Receiver<Request>| {
        closed.store(true, Ordering::SeqCst);
        inbox.try_iter().for_each(drop);
    };
    let c = Arc::clone(&closed);
    let mut handles = Vec::new();
    let store = ctx.stores[party.index()].clone().map(|s| (s, ctx.family));
    let failure = Arc::clone(&ctx.failure);
    if party == Party::P0 {
        handles.push(thread("server 0".into(), &ctx.failure, move || {
            let r = server::Core::<S>::new(Party::P0, &m, &o, &st, pools, store)
                .and_then(|core| server::Leader::new(core, first_slot).run(&inbox, to_peer, from_peer));
            note_failure(&failure, "server 0", &r);
            finish(&c, &inbox);
            r
        })?);
        return Ok((tx, closed, handles));
    }
    // The follower waits on its clients and its leader at once: the leader's frames are
    // forwarded into a channel it can select on.
    let (plans_tx, plans) = bounded(o.window + 2);
    let mut from0 = from_peer;
    handles.push(thread("server 1 (link from server 0)".into(), &ctx.failure, move || {
        loop {
            let frame = from0.recv();
            let end = frame.is_err();
            if plans_tx.send(frame).is_err() || end {
                return Ok(());
            }
        }
    })?);
    handles.push(thread("server 1".into(), &ctx.failure, move || {
        let r = server::Core::<S>::new(Party::P1, &m, &o, &st, pools, store)
            .and_then(|core| server::Follower::new(core).run(&inbox, to_peer, plans));
        note_failure(&failure, "server 1", &r);
        finish(&c, &inbox);
        r
    })?);
    Ok((tx, closed, handles))
}
