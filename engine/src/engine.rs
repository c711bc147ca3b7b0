//! The embedding API: build an engine from a machine, feed inputs, collect outputs and
//! the communication report.
//!
//! ```
//! use pmsm_engine::{Engine, dfa::json, protocol::{Protocol, Reveal}};
//! let dfa = json::from_json_str(
//!     r#"{"states": 4, "alphabet": ["a","b"], "start": 0, "accepting": [1], "delta": [[2,3],[3,3],[3,1],[3,3]]}"#,
//!     "ab.json",
//! )?;
//! let engine = Engine::builder(dfa).protocol(Protocol::LookupXor).reveal(Reveal::State).build()?;
//! let report = engine.run_texts(&["aaa", "ab", ""])?;
//! let finals: Vec<Option<u32>> = report.outputs.iter().map(|o| o.final_state).collect();
//! assert_eq!(finals, vec![Some(3), Some(1), Some(0)]);
//! assert_eq!(report.transitions, 5);
//! # Ok::<(), pmsm_engine::Error>(())
//! ```
//!
//! A run starts four parties — dealer, server 0 and server 1 on their own threads, the
//! client on the caller's — connected by the in-process transport. Nothing but framed
//! bytes passes between them, and every byte is counted per link.

use crate::Error;
use crate::dfa::set::{Answer, MachineSet};
use crate::dfa::{Dfa, DfaError};
use crate::party::server::ServerStats;
use crate::party::sharing::{Ring, Xor};
use crate::party::{client, dealer, poly, server};
use crate::poly::plan::{PolyPlan, PowerSchedule};
use crate::protocol::plan::{Chunk, Plan, Schedule};
use crate::protocol::set::SetPlan;
use crate::protocol::{ClassMode, Protocol, ProtocolError, Reveal};
use crate::transport::inproc::network;
use crate::transport::{ClientEnds, DealerEnds, ServerEnds};
use crate::transport::{Counters, Link, TransportError};
use pmsm_kernels::Party;
use pmsm_kernels::rng::SecretRng;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// Most instances per chunk when the chunk size is automatic ([`Settings::chunk_for`]).
pub const DEFAULT_CHUNK: usize = 1024;

/// Smallest chunk the automatic size cuts a session into.
const MIN_SPLIT_CHUNK: usize = 64;

/// Configures an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    dfa: Dfa,
    set: Option<MachineSet>,
    settings: Settings,
    threads: usize,
    dealer_depth: usize,
}

impl EngineBuilder {
    /// The protocol (default `lookup-xor`; `naive` and `seed-dpf` are the seed's).
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.settings.protocol = p;
        self
    }
    /// What the client learns (default: the machine's natural output,
    /// [`Dfa::natural_output`]: the accept bit for a machine compiled from regexes,
    /// otherwise the final state).
    pub fn reveal(mut self, r: Reveal) -> Self {
        self.settings.reveal = r;
        self
    }
    /// Symbol classes (default: automatic).
    pub fn classes(mut self, c: ClassMode) -> Self {
        self.settings.classes = c;
        self
    }
    /// Instances per chunk: all openings of a chunk's round travel in one frame
    /// (default: automatic, see [`Settings::chunk_for`]).
    pub fn chunk(mut self, n: usize) -> Self {
        self.settings.chunk = Some(n);
        self
    }
    /// Worker threads of the dealer's parallel key generation (default: all cores).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }
    /// Rounds the dealer may run ahead of the servers (default 32).
    pub fn dealer_depth(mut self, n: usize) -> Self {
        self.dealer_depth = n;
        self
    }

    /// The seed's protocols: how powers of the state are scheduled (default doubling).
    pub fn powers(mut self, p: PowerSchedule) -> Self {
        self.settings.powers = p;
        self
    }
    /// seed-dpf: send the seed's full-length keys (shares of the one-hot symbol vector)
    /// instead of tree-DPF keys (default false).
    pub fn full_length_keys(mut self, yes: bool) -> Self {
        self.settings.full_length_keys = yes;
        self
    }

    /// Takes every setting the parties of a session must agree on at once.
    pub fn settings(mut self, s: Settings) -> Self {
        self.settings = s;
        self
    }

    /// Builds the engine: derives the public tables, checking the protocol's size limits.
    pub fn build(self) -> Result<Engine, Error> {
        let s = self.settings;
        if s.chunk == Some(0) || self.threads == 0 || self.dealer_depth == 0 {
            return Err(ProtocolError::Parameter("chunk, threads and dealer depth must be positive".into()).into());
        }
        let plan = if let Some(set) = &self.set {
            Prepared::Lookup(SetPlan::new(set, s.protocol, s.classes)?)
        } else if s.protocol.is_lookup() {
            Prepared::Lookup(SetPlan::single(Plan::new(&self.dfa, s.protocol, s.reveal, s.classes)?))
        } else {
            Prepared::Poly(PolyPlan::new(&self.dfa, s.protocol, s.reveal, s.powers, s.full_length_keys)?)
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("pmsm-dealer-{i}"))
            .build()
            .map_err(|e| ProtocolError::Parameter(format!("cannot start the dealer's threads: {e}")))?;
        Ok(Engine { dfa: self.dfa, set: self.set, plan, dealer_depth: self.dealer_depth, pool, settings: s })
    }
}

/// The public parameters of either protocol family.
#[derive(Debug)]
enum Prepared {
    Lookup(SetPlan),
    Poly(PolyPlan),
}

/// A private DFA evaluator: four parties over one machine.
#[derive(Debug)]
pub struct Engine {
    /// The machine; for a set, its first group's (the alphabet every group reads).
    dfa: Dfa,
    set: Option<MachineSet>,
    plan: Prepared,
    dealer_depth: usize,
    pool: rayon::ThreadPool,
    settings: Settings,
}

/// A session's correlations, generated ahead by [`Engine::predeal`]; single-use (sent
/// once by [`Engine::deal`]).
pub struct Predealt(dealer::Source);

impl std::fmt::Debug for Predealt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Predealt(<redacted>)")
    }
}

/// What the parties of a session must agree on besides the machine and the inputs'
/// lengths: processes exchange it in their handshake ([`crate::process::spec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The protocol.
    pub protocol: Protocol,
    /// What the client learns.
    pub reveal: Reveal,
    /// Symbol classes.
    pub classes: ClassMode,
    /// Instances per chunk; `None` sizes chunks automatically ([`Settings::chunk_for`]).
    pub chunk: Option<usize>,
    /// The seed protocols' power schedule.
    pub powers: PowerSchedule,
    /// seed-dpf: full-length keys instead of tree-DPF keys.
    pub full_length_keys: bool,
}

impl Settings {
    /// Instances per chunk for a session of `instances`: the configured size, or, when
    /// automatic, [`DEFAULT_CHUNK`] cut so that a session of more than
    /// `MIN_SPLIT_CHUNK` instances has at least two chunks, and a server always has one
    /// to compute while another waits for its peer's openings. Measured at 64 × 256 with
    /// 1,000 instances: one chunk of 1,024 gave 1.22 M transitions/s, two of 500 1.47 M
    /// (chunks of 512 for every batch cost the DLP rules a third: 0.51–0.56 M against
    /// 0.69–0.84 M). Every party derives the same value from the settings and lengths.
    pub fn chunk_for(&self, instances: usize) -> usize {
        self.chunk.unwrap_or_else(|| DEFAULT_CHUNK.min(instances.div_ceil(2).max(MIN_SPLIT_CHUNK)))
    }
}

/// What the client learned about one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceOutput {
    /// The final state, under [`Reveal::State`].
    pub final_state: Option<u32>,
    /// The accept bit, under [`Reveal::Accept`].
    pub accept: Option<bool>,
    /// Symbols consumed.
    pub symbols: usize,
    /// A machine set's answer under its policy (`accept` then says whether any rule
    /// matched); `None` for a single machine.
    pub answer: Option<Answer>,
}

/// Bytes sent on every link during one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkBytes(pub [u64; 8]);

impl LinkBytes {
    /// Bytes counted so far on every link.
    pub fn from_counters(c: &Counters) -> Self {
        LinkBytes(Link::ALL.map(|l| c.bytes(l)))
    }

    /// Bytes sent on `link`.
    pub fn get(&self, link: Link) -> u64 {
        self.0[Link::ALL.iter().position(|l| *l == link).expect("listed")]
    }
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct Report {
    /// One output per instance, in input order.
    pub outputs: Vec<InstanceOutput>,
    /// Symbols processed in all.
    pub transitions: usize,
    /// Wall-clock seconds, offline phase included.
    pub seconds: f64,
    /// Protocol.
    pub protocol: Protocol,
    /// Whether symbol classes were used (and how many).
    pub classes: Option<usize>,
    /// Lookup rounds in the schedule.
    pub rounds: usize,
    /// Bytes per link.
    pub bytes: LinkBytes,
    /// Server 0's time per round: openings sent → round finished (seconds).
    pub round_seconds: Vec<f64>,
    /// For a machine set: what the client learned about each instance under the set's
    /// policy, in input order (each output's `accept` says whether some rule matched).
    /// Empty for a single machine.
    pub answers: Vec<Answer>,
}

impl Engine {
    /// Starts configuring an engine for a machine set: every group of `set` reads the
    /// same secret input (each symbol shared once by the client), and the client learns
    /// what the set's policy releases ([`Report::answers`]). Runs on the lookups only.
    ///
    /// ```
    /// use pmsm_engine::Engine;
    /// use pmsm_engine::dfa::regex::RegexConfig;
    /// use pmsm_engine::dfa::set::{Answer, Grouping, Policy, compile_rules};
    /// use pmsm_engine::protocol::{ClassMode, Protocol, set::group};
    /// let rules = vec![("aws".to_string(), "AKIA[0-9A-Z]{4}".to_string()), ("pem".into(), "-----BEGIN".into())];
    /// let (ok, refused) = compile_rules(&rules, &RegexConfig::default());
    /// assert!(refused.is_empty());
    /// let set = group(ok, Policy::Rules, Grouping::Cost, Protocol::LookupXor, ClassMode::Auto, 1 << 16)?;
    /// let engine = Engine::set_builder(set).threads(1).build()?;
    /// let report = engine.run_texts(&["key AKIA12AB", "nothing"])?;
    /// assert_eq!(report.answers, vec![Answer::Rules(vec![true, false]), Answer::Rules(vec![false, false])]);
    /// # Ok::<(), pmsm_engine::Error>(())
    /// ```
    pub fn set_builder(set: MachineSet) -> EngineBuilder {
        let mut b = Engine::builder(set.groups()[0].dfa.clone());
        b.settings.reveal = Reveal::Accept;
        b.set = Some(set);
        b
    }

    /// Starts configuring an engine for `dfa`.
    pub fn builder(dfa: Dfa) -> EngineBuilder {
        EngineBuilder {
            set: None,
            settings: Settings {
                protocol: Protocol::LookupXor,
                reveal: Reveal::from(dfa.natural_output()),
                classes: ClassMode::Auto,
                chunk: None,
                powers: PowerSchedule::Doubling,
                full_length_keys: false,
            },
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            dealer_depth: 32,
            dfa,
        }
    }

    /// The settings the engine was built with.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// The public plan of a lookup protocol over one machine (tables, widths, whether
    /// classes are used); `None` for a set ([`Engine::set_plan`]).
    pub fn plan(&self) -> Option<&Plan> {
        match &self.plan {
            Prepared::Lookup(p) if p.policy.is_none() => p.groups.first(),
            _ => None,
        }
    }

    /// The public plan of a lookup protocol as a set (one machine is a set of one).
    pub fn set_plan(&self) -> Option<&SetPlan> {
        match &self.plan {
            Prepared::Lookup(p) => Some(p),
            Prepared::Poly(_) => None,
        }
    }

    /// The machine set, for an engine built by [`Engine::set_builder`].
    pub fn set(&self) -> Option<&MachineSet> {
        self.set.as_ref()
    }

    /// The public plan of a seed protocol (interpolated coefficients, power schedule).
    pub fn poly_plan(&self) -> Option<&PolyPlan> {
        match &self.plan {
            Prepared::Poly(p) => Some(p),
            Prepared::Lookup(_) => None,
        }
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.settings.protocol
    }

    fn reveal(&self) -> Reveal {
        self.settings.reveal
    }

    /// The machine (for a set: its first group's, whose alphabet every group reads).
    pub fn dfa(&self) -> &Dfa {
        &self.dfa
    }

    /// Runs on texts (anything that is bytes: `&str`, `String`, `Vec<u8>`, `&[u8]`):
    /// each is encoded with the machine's alphabet first, so an unknown symbol is
    /// reported (with its instance and position) before anything is sent.
    pub fn run_texts<T: AsRef<[u8]>>(&self, texts: &[T]) -> Result<Report, Error> {
        let inputs =
            texts.iter().enumerate().map(|(i, t)| self.dfa.encode(t.as_ref(), i)).collect::<Result<Vec<_>, _>>()?;
        self.run(&inputs)
    }

    /// Runs on symbol indices (each `< |Σ|`; checked before anything is sent).
    pub fn run(&self, inputs: &[Vec<u32>]) -> Result<Report, Error> {
        self.run_mode(inputs, RunMode::default())
    }

    /// Runs like [`Engine::run`] and also returns a copy of every frame sent on `link`:
    /// for auditing what a party receives (the privacy tests use it).
    pub fn run_observed(&self, inputs: &[Vec<u32>], link: Link) -> Result<(Report, Vec<Vec<u8>>), Error> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let report = self.run_mode(inputs, RunMode { tap: Some((link, tx)), ..RunMode::default() })?;
        Ok((report, rx.try_iter().collect()))
    }

    /// Runs like [`Engine::run`], adding one to `progress` each time server 0 finishes
    /// a round (of [`Engine::rounds`] in all).
    pub fn run_with_progress(&self, inputs: &[Vec<u32>], progress: &AtomicU64) -> Result<Report, Error> {
        self.run_mode(inputs, RunMode { progress: Some(progress), ..RunMode::default() })
    }

    /// The online phase alone: every correlation is generated first (untimed, held in
    /// memory), then client and servers run; `Report::seconds` covers only the latter.
    /// The servers' DPF expansions are part of the timed phase.
    pub fn run_online_only(&self, inputs: &[Vec<u32>], progress: Option<&AtomicU64>) -> Result<Report, Error> {
        self.run_mode(inputs, RunMode { predeal: true, progress, ..RunMode::default() })
    }

    /// The offline phase alone: seconds the dealer takes to generate (and encode) every
    /// correlation the inputs need, on the engine's dealer threads.
    pub fn time_offline(&self, inputs: &[Vec<u32>]) -> Result<f64, Error> {
        let deal = self.dealing(&lengths(inputs))?;
        let start = Instant::now();
        let mut rng = SecretRng::from_os();
        self.pool.install(|| {
            deal.deal(&mut rng, &mut |f| {
                // Back to the pool, as a server would give them back in a run.
                f.into_iter().for_each(|b| crate::transport::buffers::recycle(std::hint::black_box(b)));
                Ok(())
            })
        })?;
        Ok(start.elapsed().as_secs_f64())
    }

    /// Frames a link must be able to queue so that both servers can send a whole wave
    /// of openings before reading (one per chunk, plus slack): for inputs of `lengths`.
    pub fn link_depth(&self, lengths: &[usize]) -> usize {
        // Both schedules cut the instances into chunks of `chunk_for` (Chunk::split); each
        // machine of a set has its own rounds in a wave.
        let machines = self.set_plan().map_or(1, |p| p.groups.len());
        lengths.len().div_ceil(self.settings.chunk_for(lengths.len())) * machines + 2
    }

    /// Communication rounds (one frame each way between the servers) a run takes.
    pub fn rounds(&self, inputs: &[Vec<u32>]) -> Result<usize, Error> {
        Ok(self.dealing(&lengths(inputs))?.rounds())
    }

    /// What the dealer must produce for inputs of these lengths. Schedules number
    /// instances and count symbols in `u32` ([`Chunk`]): more instances, or a longer
    /// input, is an error here.
    fn dealing(&self, lengths: &[usize]) -> Result<Dealing<'_>, ProtocolError> {
        let limit = u32::MAX as usize;
        if lengths.len() > limit {
            let n = lengths.len();
            return Err(ProtocolError::Parameter(format!("{n} instances in one session; at most {limit}")));
        }
        if let Some(i) = lengths.iter().position(|&l| l > limit) {
            let l = lengths[i];
            return Err(ProtocolError::Parameter(format!("instance {i} has {l} symbols; at most {limit}")));
        }
        let chunk = self.settings.chunk_for(lengths.len());
        Ok(match &self.plan {
            Prepared::Lookup(p) => Dealing::Lookup(p, Schedule::new(p, lengths, chunk)),
            Prepared::Poly(p) => {
                let chunks = Chunk::split(lengths, chunk);
                let rounds = poly::rounds(p, &chunks);
                Dealing::Poly(p, chunks, rounds)
            }
        })
    }

    /// Checks every symbol is in the alphabet; the error names the instance and
    /// position of the first that is not.
    pub fn check_symbols(&self, inputs: &[Vec<u32>]) -> Result<(), Error> {
        for (instance, input) in inputs.iter().enumerate() {
            if let Some(position) = input.iter().position(|&a| a as usize >= self.dfa.symbols()) {
                return Err(DfaError::UnknownSymbol { instance, position, symbol: input[position].to_string() }.into());
            }
        }
        Ok(())
    }

    /// Server `party` of one session over `ends` (any transport): the inputs' lengths
    /// are public and fix the schedule. `progress`, if given, counts finished rounds.
    pub fn serve(
        &self,
        party: Party,
        lengths: &[usize],
        ends: ServerEnds,
        progress: Option<&AtomicU64>,
    ) -> Result<ServerStats, Error> {
        Ok(self.serve_dealing(&self.dealing(lengths)?, party, ends, progress)?)
    }

    /// Generates every correlation a session with inputs of `lengths` needs, to be
    /// sent later by [`Engine::deal`] (so that the online phase can be timed alone).
    pub fn predeal(&self, lengths: &[usize]) -> Result<Predealt, Error> {
        Ok(Predealt(self.source(&self.dealing(lengths)?, true)?))
    }

    /// The dealer of one session over `ends` (any transport), on the engine's dealer
    /// threads: generates while sending, or sends what [`Engine::predeal`] generated.
    pub fn deal(&self, lengths: &[usize], ends: DealerEnds, predealt: Option<Predealt>) -> Result<(), Error> {
        let dealing = self.dealing(lengths)?;
        let deal = |rng: &mut SecretRng, each: &mut dyn FnMut([Vec<u8>; 2]) -> Result<(), ProtocolError>| {
            dealing.deal(rng, each)
        };
        let source = match predealt {
            Some(Predealt(source)) => source,
            None => self.source(&dealing, false)?,
        };
        Ok(self.pool.install(|| dealer::run_dealer(ends, source, &deal))?)
    }

    /// The client of one session over `ends` (any transport): checks every symbol
    /// before anything is sent, shares the inputs, and reconstructs the outputs.
    pub fn client(&self, inputs: &[Vec<u32>], ends: ClientEnds) -> Result<Vec<InstanceOutput>, Error> {
        self.check_symbols(inputs)?;
        let values = self.client_dealing(&self.dealing(&lengths(inputs))?, inputs, ends)?;
        self.outputs(&values, inputs)
    }

    fn serve_dealing(
        &self,
        dealing: &Dealing<'_>,
        party: Party,
        ends: ServerEnds,
        progress: Option<&AtomicU64>,
    ) -> Result<ServerStats, ProtocolError> {
        match dealing {
            Dealing::Lookup(plan, sched) if plan.protocol == Protocol::LookupXor => {
                server::run_server::<Xor>(party, plan, sched, ends, progress)
            }
            Dealing::Lookup(plan, sched) => server::run_server::<Ring>(party, plan, sched, ends, progress),
            Dealing::Poly(plan, chunks, rounds) => poly::run_server(party, plan, chunks, rounds, ends, progress),
        }
    }

    fn client_dealing(
        &self,
        dealing: &Dealing<'_>,
        inputs: &[Vec<u32>],
        ends: ClientEnds,
    ) -> Result<Vec<u64>, ProtocolError> {
        let rng = SecretRng::from_os();
        match dealing {
            Dealing::Lookup(plan, sched) if plan.protocol == Protocol::LookupXor => {
                client::run_client::<Xor>(plan, sched, inputs, ends, rng)
            }
            Dealing::Lookup(plan, sched) => client::run_client::<Ring>(plan, sched, inputs, ends, rng),
            Dealing::Poly(plan, chunks, _) => poly::run_client(plan, chunks, inputs, ends, rng),
        }
    }

    /// Where the dealer's frames come from: generated live, or all beforehand.
    fn source(&self, dealing: &Dealing<'_>, predeal: bool) -> Result<dealer::Source, ProtocolError> {
        if !predeal {
            return Ok(dealer::Source::Live(Box::new(SecretRng::from_os())));
        }
        let mut frames = Vec::new();
        self.pool.install(|| {
            dealing.deal(&mut SecretRng::from_os(), &mut |f| {
                frames.push(f);
                Ok(())
            })
        })?;
        Ok(dealer::Source::Predealt(frames))
    }

    /// Checks and decodes a set's reconstructed values ([`SetPlan::values_out`] per
    /// instance). An error names the instance, never the value.
    fn answers(&self, set: &MachineSet, values: &[u64]) -> Result<Vec<Answer>, Error> {
        let per = self.set_plan().map_or(1, SetPlan::values_out);
        let groups: Vec<Vec<usize>> = set.groups().iter().map(|g| g.rules.clone()).collect();
        let decode = |(i, v): (usize, &[u64])| {
            Answer::from_values(set.policy(), set.ids().len(), &groups, v).map_err(|what| {
                Error::from(ProtocolError::Frame {
                    link: Link::S0ToClient,
                    detail: format!("instance {i}: the output shares do not add up to {what}"),
                })
            })
        };
        values.chunks_exact(per).enumerate().map(decode).collect()
    }

    /// Checks and decodes the reconstructed values. An error names the instance, never
    /// the value (DESIGN §6: no reconstructed output in an error or log).
    fn outputs(&self, values: &[u64], inputs: &[Vec<u32>]) -> Result<Vec<InstanceOutput>, Error> {
        if let Some(set) = &self.set {
            let answers = self.answers(set, values)?;
            return Ok(answers
                .into_iter()
                .zip(inputs)
                .map(|(a, input)| InstanceOutput {
                    final_state: None,
                    accept: Some(a.any()),
                    symbols: input.len(),
                    answer: Some(a),
                })
                .collect());
        }
        let outputs = values
            .iter()
            .zip(inputs)
            .enumerate()
            .map(|(i, (&v, input))| match self.reveal() {
                Reveal::State if v as usize >= self.dfa.states() => Err(ProtocolError::Frame {
                    link: Link::S0ToClient,
                    detail: format!("instance {i}: the output shares do not add up to a state of the machine"),
                }),
                Reveal::State => {
                    Ok(InstanceOutput { final_state: Some(v as u32), accept: None, symbols: input.len(), answer: None })
                }
                Reveal::Accept if v > 1 => Err(ProtocolError::Frame {
                    link: Link::S0ToClient,
                    detail: format!("instance {i}: the output shares do not add up to an accept bit (0 or 1)"),
                }),
                Reveal::Accept => {
                    Ok(InstanceOutput { final_state: None, accept: Some(v == 1), symbols: input.len(), answer: None })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(outputs)
    }

    fn run_mode(&self, inputs: &[Vec<u32>], mode: RunMode<'_>) -> Result<Report, Error> {
        self.check_symbols(inputs)?;
        let lengths = lengths(inputs);
        let dealing = self.dealing(&lengths)?;
        let depth = self.link_depth(&lengths);
        let (values, run) = self.orchestrate(mode, depth, &dealing, inputs)?;
        let answers = match &self.set {
            Some(set) => self.answers(set, &values)?,
            None => Vec::new(),
        };
        Ok(Report {
            answers,
            outputs: self.outputs(&values, inputs)?,
            transitions: lengths.iter().sum(),
            seconds: run.seconds,
            protocol: self.protocol(),
            classes: self.plan().and_then(|p| p.classes.as_ref().map(|c| c.count)),
            rounds: dealing.rounds(),
            bytes: run.bytes,
            round_seconds: run.round_seconds,
        })
    }

    /// Starts the four parties on an in-process network and collects the client's
    /// reconstructed values; reports the root cause if any party fails.
    fn orchestrate(
        &self,
        mode: RunMode<'_>,
        depth: usize,
        dealing: &Dealing<'_>,
        inputs: &[Vec<u32>],
    ) -> Result<(Vec<u64>, RunFacts), Error> {
        let deal = |rng: &mut SecretRng, each: &mut dyn FnMut([Vec<u8>; 2]) -> Result<(), ProtocolError>| {
            dealing.deal(rng, each)
        };
        let source = self.source(dealing, mode.predeal)?;
        let dealer_depth = match &source {
            dealer::Source::Predealt(f) => f.len() + 1,
            dealer::Source::Live(_) => self.dealer_depth,
        };
        let start = Instant::now();
        let net = network(depth, dealer_depth, mode.tap);
        let counters = net.counters.clone();
        let [e0, e1] = net.servers;
        let (dealer_ends, client_ends) = (net.dealer, net.client);
        let (deal, progress, pool) = (&deal, mode.progress, &self.pool);
        let (client, dealt, served) = std::thread::scope(|scope| {
            let dealer = std::thread::Builder::new()
                .name("pmsm-dealer".into())
                .spawn_scoped(scope, move || pool.install(|| dealer::run_dealer(dealer_ends, source, deal)));
            let servers = [(Party::P0, e0, progress), (Party::P1, e1, None)].map(|(party, ends, progress)| {
                std::thread::Builder::new()
                    .name(format!("pmsm-server-{}", party.index()))
                    .spawn_scoped(scope, move || self.serve_dealing(dealing, party, ends, progress))
            });
            let client = self.client_dealing(dealing, inputs, client_ends);
            (client, join("dealer", dealer), servers.map(|h| join("server", h)))
        });
        let [s0, s1] = served;
        let mut errors: Vec<ProtocolError> = Vec::new();
        errors.extend(dealt.err());
        let stats = s0.map_err(|e| errors.push(e)).ok();
        errors.extend(s1.err());
        if let Err(e) = &client {
            errors.push(e.clone());
        }
        if let Some(e) = root_cause(&errors) {
            return Err(e.clone().into());
        }
        let facts = RunFacts {
            seconds: start.elapsed().as_secs_f64(),
            bytes: LinkBytes::from_counters(&counters),
            round_seconds: stats.map(|s| s.round_seconds).unwrap_or_default(),
        };
        Ok((client.expect("no error was reported"), facts))
    }
}

/// The root cause among parties' errors: a party's own failure before the
/// disconnections (or aborts) it caused in its peers.
fn root_cause(errors: &[ProtocolError]) -> Option<&ProtocolError> {
    let consequence = |e: &&ProtocolError| {
        matches!(e, ProtocolError::Transport(TransportError::Disconnected { .. } | TransportError::Aborted { .. }))
    };
    errors.iter().find(|e| !consequence(e)).or(errors.first())
}

/// What the dealer deals for one run, with the schedule it follows.
enum Dealing<'a> {
    Lookup(&'a SetPlan, Schedule),
    Poly(&'a PolyPlan, Vec<Chunk>, Vec<poly::PolyRound>),
}

fn lengths(inputs: &[Vec<u32>]) -> Vec<usize> {
    inputs.iter().map(Vec::len).collect()
}

impl Dealing<'_> {
    fn rounds(&self) -> usize {
        match self {
            Dealing::Lookup(_, s) => s.rounds.len(),
            Dealing::Poly(_, _, r) => r.len(),
        }
    }

    fn deal(
        &self,
        rng: &mut SecretRng,
        each: &mut dyn FnMut([Vec<u8>; 2]) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        match self {
            Dealing::Lookup(p, s) if p.protocol == Protocol::LookupXor => dealer::deal_schedule::<Xor>(p, s, rng, each),
            Dealing::Lookup(p, s) => dealer::deal_schedule::<Ring>(p, s, rng, each),
            Dealing::Poly(_, _, rounds) => poly::deal_all(rounds, rng, each),
        }
    }
}

/// Measurements of one run besides the outputs.
struct RunFacts {
    seconds: f64,
    bytes: LinkBytes,
    round_seconds: Vec<f64>,
}

/// Options of one run.
#[derive(Default)]
struct RunMode<'a> {
    tap: Option<(Link, crossbeam_channel::Sender<Vec<u8>>)>,
    progress: Option<&'a AtomicU64>,
    predeal: bool,
}

/// Joins a party thread, turning a panic or a failed start into an error.
fn join<T>(
    party: &'static str,
    h: std::io::Result<std::thread::ScopedJoinHandle<'_, Result<T, ProtocolError>>>,
) -> Result<T, ProtocolError> {
    match h {
        Err(e) => Err(ProtocolError::PartyFailed { party, detail: format!("could not start: {e}") }),
        Ok(h) => h.join().unwrap_or_else(|p| Err(ProtocolError::PartyFailed { party, detail: panic_text(&p) })),
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(reveal: Reveal) -> Engine {
        let ab =
            r#"{"states": 4, "alphabet": ["a","b"], "start": 0, "accepting": [1], "delta": [[2,3],[3,3],[3,1],[3,3]]}"#;
        let dfa = crate::dfa::json::from_json_str(ab, "ab.json").unwrap();
        Engine::builder(dfa).reveal(reveal).threads(1).build().unwrap()
    }

    /// Output shares that add up to no valid output are a frame error that names the
    /// instance but not the reconstructed value.
    #[test]
    fn an_invalid_reconstructed_output_is_not_in_the_error() {
        let inputs = vec![vec![0, 1], vec![1]];
        for (reveal, bad, what) in
            [(Reveal::State, 3_000_017u64, "a state"), (Reveal::Accept, 3_000_017, "an accept bit")]
        {
            let e = engine(reveal).outputs(&[1, bad], &inputs).unwrap_err().to_string();
            assert!(e.starts_with("bad frame on s0_to_client: instance 1: ") && e.contains(what), "{e}");
            assert!(!e.contains(&bad.to_string()) && !e.contains(&format!("{bad:x}")), "{e}");
        }
        assert!(engine(Reveal::Accept).outputs(&[1, 0], &inputs).is_ok());
    }
}
