//! `pmsm`: the command-line front end of the engine.
//!
//! Every failure is reported as one line on stderr, `pmsm: error: …`, and a non-zero
//! exit code ([`EXIT_STATUS`]): 2 for bad input or usage, 1 for a failure while running.
//! With `--exit-status`, `eval`, `run` and `client` exit as grep does: 1 when no
//! instance accepted, 2 on any error.

mod bench;
mod certs;
mod comm;
mod config;
mod files;
mod gitleaks;
mod machine;
mod net;
mod nfa;
mod output;
mod paths;
mod sets;
mod store;

use clap::{Parser, Subcommand};
use machine::MachineArgs;
use mimalloc::MiMalloc;
use output::{OutputArgs, Printed};
use pmsm_engine::Engine;
use pmsm_engine::cost::PathChoice;
use pmsm_engine::dfa::set::Policy;
use pmsm_engine::dfa::{self, json, random::random_dfa};
use pmsm_engine::input::{encode_lines, parse_symbol_inputs, split_lines};
use pmsm_engine::protocol::{ClassMode, Protocol, Reveal};
use pmsm_engine::service::Interface;
use pmsm_engine::transport::Link;
use pmsm_engine::{InstanceOutput, LinkBytes};
use pmsm_kernels::rng::WorkloadRng;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// The exit codes, as `--help` shows them.
const EXIT_STATUS: &str = "Exit status:
  0  success
  1  a failure while running (I/O, network, a peer's error)
  2  bad input or usage (arguments, files, machines, unknown symbols)
With --exit-status (eval, run, client): 0 when some instance accepted, 1 when none
did, 2 on any error (as grep).";

#[derive(Parser)]
#[command(
    name = "pmsm",
    version,
    // A later occurrence of an option wins (options after --config override its file).
    args_override_self = true,
    about = "Private finite state machines between two non-colluding servers",
    after_help = EXIT_STATUS
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile regular expressions to a minimal DFA in the JSON table format.
    Compile {
        #[command(flatten)]
        machine: MachineArgs,
        /// Output file (`-`: standard output).
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Describe a machine: states, alphabet, classes, padded protocol sizes.
    Info {
        /// The machine (JSON table); or use --regex.
        file: Option<PathBuf>,
        #[command(flatten)]
        machine: MachineArgs,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Describe the rules as a machine set for this policy (any, rules or count):
        /// its groups, each group's n and the predicted cost per symbol. Without it,
        /// --gitleaks lists each rule with its states or the reason it is refused.
        #[arg(long)]
        reveal: Option<Policy>,
        /// The protocol whose cost model groups a set.
        #[arg(long, default_value = "lookup-xor")]
        protocol: Protocol,
        /// The path to describe: dfa (the machine or set), nfa (the rules' position
        /// automata as one bit-sliced circuit: positions, ANDs and rounds per step), or
        /// auto (each rule on the path the cost model predicts cheaper; a rule one path
        /// refuses on the other: both predictions per rule and the two parts' cost).
        #[arg(long, default_value = "dfa", value_parser = ["dfa", "nfa", "auto"])]
        path: String,
        /// On the NFA path, refuse a rule with more positions than this.
        #[arg(long, default_value_t = pmsm_engine::nfa::DEFAULT_MAX_POSITIONS)]
        max_positions: usize,
    },
    /// Run a rule set privately on the bit-parallel NFA path (client, both servers and
    /// dealer in process), every hit checked against regex::bytes: throughput and bits
    /// per input byte on every link.
    BenchNfa {
        #[command(flatten)]
        machine: MachineArgs,
        /// Text files, one text per line (empty lines skipped).
        #[arg(long, required = true, num_args = 1..)]
        texts: Vec<PathBuf>,
        /// Refuse a rule with more positions than this.
        #[arg(long, default_value_t = pmsm_engine::nfa::DEFAULT_MAX_POSITIONS)]
        max_positions: usize,
        /// Runs; the fastest is reported.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Each rule that both paths run, alone on each (measured privately, the
        /// fastest of --repeat runs), beside the cost model's prediction and pick: the
        /// fraction of rules where it picked the faster path.
        #[arg(long, conflicts_with = "calibrate")]
        compare: bool,
        /// Measure the cost model's constants: each rule alone on the NFA path and a
        /// ladder of random machines on the DFA path, and their fits beside the
        /// constants in use.
        #[arg(long)]
        calibrate: bool,
        /// With --compare or --calibrate: every K-th rule only.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        sample: u64,
        /// Each rule's path: nfa (the whole set as one circuit), dfa (the set's groups on
        /// the lookups; rules the DFA path refuses are left out) or auto (each rule on
        /// the path the cost model predicts cheaper for this batch; both parts run at
        /// once).
        #[arg(long, default_value = "nfa", value_parser = ["dfa", "nfa", "auto"], conflicts_with_all = ["compare", "calibrate"])]
        path: String,
        /// inproc, or tcp: the four parties on loopback TCP with mutual TLS 1.3 (threads
        /// of this process, one connection per link; the NFA path only).
        #[arg(long, default_value = "inproc", value_parser = ["inproc", "tcp"], conflicts_with_all = ["compare", "calibrate"])]
        transport: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Texts with secrets planted from each rule of a gitleaks configuration (every
    /// one checked against its rule) and clean texts that no rule matches.
    Samples {
        /// The gitleaks configuration (TOML).
        #[arg(long)]
        gitleaks: PathBuf,
        /// Folder for positives.txt, positives-rules.txt and negatives.txt.
        #[arg(short, long)]
        out: PathBuf,
        /// Planted texts per rule.
        #[arg(long, default_value_t = 2)]
        per_rule: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Evaluate a machine in plaintext (no privacy; the reference): the final state and
    /// the accept bit of every input.
    #[command(after_help = EXIT_STATUS)]
    Eval {
        #[command(flatten)]
        machine: MachineArgs,
        #[command(flatten)]
        inputs: InputArgs,
        #[command(flatten)]
        output: OutputArgs,
        /// A set's policy (--reveal any|rules|count) and the protocol whose cost model
        /// groups it; the other settings are not used by the plaintext reference.
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Run the machine privately: client, two servers and dealer in this process.
    #[command(after_help = EXIT_STATUS)]
    Run(RunArgs),
    /// Make a development CA and a certificate and key per party (for serve, dealer
    /// and client), or issue further client identities from an existing CA (--ca).
    /// Existing files are kept unless --force.
    Certs(certs::CertsArgs),
    /// Run server 0 or 1 as a process: TCP with mutual TLS.
    Serve(net::ServeArgs),
    /// Run the dealer as a process: TCP with mutual TLS.
    Dealer(net::DealerArgs),
    /// Scan inputs with a machine two servers serve (`pmsm serve --machine`), knowing
    /// only its public interface: one session per input, or one kept session.
    #[command(after_help = EXIT_STATUS)]
    Client(net::ClientArgs),
    /// Benchmark a workload profile: all four parties in this process (or the dealer and
    /// servers as processes over TCP), every output verified against the plaintext
    /// evaluator.
    Bench {
        /// The profile (TOML), e.g. profiles/default.toml.
        #[arg(long)]
        profile: PathBuf,
        /// One JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Also write results.md, results.json and SVG plots into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the profile's transport: inproc, or tcp (dealer, servers and client
        /// as processes on 127.0.0.1, mutual TLS).
        #[arg(long, value_parser = ["inproc", "tcp"])]
        transport: Option<String>,
    },
    /// Measured bits per transition per link for every protocol, beside the seed's table.
    Comm {
        /// A machine (JSON table); or give --states and --symbols for a random one.
        #[arg(long, conflicts_with_all = ["states", "symbols"])]
        dfa: Option<PathBuf>,
        /// States of a random machine.
        #[arg(long, requires = "symbols")]
        states: Option<usize>,
        /// Symbols of a random machine.
        #[arg(long, requires = "states")]
        symbols: Option<usize>,
        /// Symbols per instance.
        #[arg(long, default_value_t = 2)]
        steps: usize,
        /// The rules of the NFA path's row (a rule file, one regex per line) [default:
        /// three DLP rules: AWS key id, US SSN shape, PEM private key header].
        #[arg(long)]
        rules: Option<PathBuf>,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect or tidy a server's session store (`pmsm serve --store FILE`).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Write a seeded random DFA (xoshiro; a workload, not a secret).
    RandomDfa {
        /// Number of states.
        #[arg(long)]
        states: usize,
        /// Number of symbols (256 gives a byte alphabet).
        #[arg(long)]
        symbols: usize,
        /// Seed of the workload generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file (`-`: standard output).
        #[arg(short, long)]
        out: PathBuf,
    },
}

/// Where client inputs come from (one is needed, but by `pmsm client --stream`).
#[derive(clap::Args)]
#[group(multiple = false)]
struct InputArgs {
    /// One input, given on the command line.
    #[arg(long, allow_hyphen_values = true)]
    input: Option<String>,
    /// A file with one input per line (every line counts; an empty line is an empty
    /// input); `-` reads standard input.
    #[arg(long)]
    inputs: Option<PathBuf>,
    /// A file with one input per line as space-separated symbol indices (for machines
    /// whose symbols are not printable); `-` reads standard input.
    #[arg(long)]
    symbol_inputs: Option<PathBuf>,
}

impl InputArgs {
    /// The inputs as symbol indices of `m` (unknown symbols are named with their file
    /// and line, instance and position).
    fn load(&self, m: &dfa::Dfa) -> Result<Vec<Vec<u32>>, dfa::DfaError> {
        match (&self.input, &self.inputs, &self.symbol_inputs) {
            (Some(text), _, _) => Ok(vec![m.encode(text.as_bytes(), 0)?]),
            (None, Some(path), _) => encode_lines(m, &split_lines(&files::read(path)?), &files::source_name(path)),
            (None, None, Some(path)) => {
                parse_symbol_inputs(&files::read(path)?, m.symbols(), &files::source_name(path))
            }
            (None, None, None) => Err(no_inputs()),
        }
    }

    /// The inputs as symbol indices of a machine the client knows by its public
    /// interface only (unknown symbols are refused here, before anything is sent).
    fn encode(&self, interface: &Interface) -> Result<Vec<Vec<u32>>, dfa::DfaError> {
        let texts = match (&self.input, &self.inputs, &self.symbol_inputs) {
            (Some(text), _, _) => vec![text.as_bytes().to_vec()],
            (None, Some(path), _) => split_lines(&files::read(path)?),
            (None, None, Some(path)) => {
                return parse_symbol_inputs(&files::read(path)?, interface.symbols(), &files::source_name(path));
            }
            (None, None, None) => return Err(no_inputs()),
        };
        texts.iter().enumerate().map(|(i, t)| interface.encode(t, i)).collect()
    }
}

fn no_inputs() -> dfa::DfaError {
    dfa::DfaError::Field {
        file: "command line".into(),
        field: "inputs".into(),
        message: "no inputs: give --input TEXT, --inputs FILE or --symbol-inputs FILE".into(),
    }
}

/// How a private run is set up (shared by `run` and `client`).
#[derive(clap::Args)]
struct SessionArgs {
    /// lookup-xor (boolean shares, the fast path), lookup-ring (Z_2^64 shares), or the
    /// seed's seed-dpf and naive.
    #[arg(long, default_value = "lookup-xor")]
    protocol: Protocol,
    /// What the client learns: state or accept [default: accept for --regex, state for
    /// --dfa]; or, making the rules a machine set, any (one bit: some rule matched), rules
    /// (one bit per rule) or count [default for --gitleaks: rules].
    #[arg(long)]
    reveal: Option<RevealArg>,
    /// Symbol classes: auto, on or off.
    #[arg(long, default_value = "auto")]
    classes: ClassMode,
    /// Instances per chunk (default: automatic, at most 1024 and at least two chunks).
    #[arg(long)]
    chunk: Option<usize>,
}

/// `--reveal`: a machine's output, or a set's policy.
#[derive(Clone, Copy, Debug)]
enum RevealArg {
    Machine(Reveal),
    Set(Policy),
}

impl std::str::FromStr for RevealArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match (s.parse::<Reveal>(), s.parse::<Policy>()) {
            (Ok(r), _) => Ok(RevealArg::Machine(r)),
            (_, Ok(p)) => Ok(RevealArg::Set(p)),
            _ => Err(format!("unknown output policy {s:?} (expected state, accept, any, rules or count)")),
        }
    }
}

impl SessionArgs {
    /// The set policy, when the run is over a rule set: `--reveal any|rules|count`, or
    /// `rules` for `--gitleaks`.
    fn policy(&self, machine: &MachineArgs) -> Result<Option<Policy>, Failure> {
        match (self.reveal, machine.gitleaks.is_some()) {
            (Some(RevealArg::Set(p)), _) => Ok(Some(p)),
            (Some(RevealArg::Machine(r)), true) => Err(usage(&format!(
                "--reveal {} is a machine's output; a rule set releases any, rules or count",
                match r {
                    Reveal::State => "state",
                    Reveal::Accept => "accept",
                }
            ))),
            (None, true) => Ok(Some(Policy::Rules)),
            (_, false) => Ok(None),
        }
    }

    /// An engine for the rule set `machine` names under `policy`.
    fn set_engine(&self, machine: &MachineArgs, policy: Policy) -> Result<(Engine, sets::LoadedSet), Failure> {
        let loaded = sets::load(machine, policy, self.protocol, self.classes)?;
        for r in &loaded.refused {
            eprintln!("pmsm: rule {} refused: {}", r.id, r.reason);
        }
        let mut b = Engine::set_builder(loaded.set.clone()).protocol(self.protocol).classes(self.classes);
        if let Some(c) = self.chunk {
            b = b.chunk(c);
        }
        Ok((b.build()?, loaded))
    }

    /// An engine for `m` with these settings (by default the client learns the
    /// machine's natural output).
    fn engine(&self, m: dfa::Dfa) -> Result<Engine, Failure> {
        let mut b = Engine::builder(m).protocol(self.protocol).classes(self.classes);
        match self.reveal {
            Some(RevealArg::Machine(r)) => b = b.reveal(r),
            Some(RevealArg::Set(_)) => {
                return Err(usage("a set policy needs rules: --regex-file, --regex or --gitleaks"));
            }
            None => {}
        }
        if let Some(c) = self.chunk {
            b = b.chunk(c);
        }
        Ok(b.build()?)
    }
}

/// A private run: the machine, the inputs and the settings (shared by `run` and
/// `client`).
#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    machine: MachineArgs,
    #[command(flatten)]
    inputs: InputArgs,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    output: OutputArgs,
}

impl RunArgs {
    /// Loads the machine and the inputs (unknown symbols are refused here) and builds
    /// the engine.
    fn prepare(&self) -> Result<(Engine, Vec<Vec<u32>>), Failure> {
        if self.session.policy(&self.machine)?.is_some() {
            return Err(usage("rule sets run in one process for now: use pmsm run"));
        }
        let m = self.machine.load(None)?;
        let inputs = self.inputs.load(&m)?;
        let engine = self.session.engine(m)?;
        if self.output.exit_status && engine.settings().reveal != Reveal::Accept {
            return Err(usage("--exit-status needs accept bits: add --reveal accept"));
        }
        Ok((engine, inputs))
    }
}

/// Bits sent on `links`, by link name.
fn bits(bytes: &LinkBytes, links: &[Link]) -> serde_json::Map<String, serde_json::Value> {
    links.iter().map(|l| (l.name().to_string(), json!(bytes.get(*l) * 8))).collect()
}

/// A failure and its exit code.
struct Failure {
    message: String,
    code: u8,
}

impl From<pmsm_engine::Error> for Failure {
    fn from(e: pmsm_engine::Error) -> Self {
        Failure { message: e.to_string(), code: 2 }
    }
}

impl From<dfa::DfaError> for Failure {
    fn from(e: dfa::DfaError) -> Self {
        Failure { message: e.to_string(), code: 2 }
    }
}

/// A usage error (exit code 2).
fn usage(message: &str) -> Failure {
    Failure { message: message.to_string(), code: 2 }
}

/// How a command that succeeded exits.
enum Done {
    /// Exit 0.
    Ok,
    /// `--exit-status`: exit 0 if some instance accepted, else 1.
    Accepted(bool),
}

/// `Done` for a printed batch under `opts`.
fn done(p: &Printed<'_>, opts: &OutputArgs) -> Done {
    match (opts.exit_status, p.accepted()) {
        (true, Some(a)) => Done::Accepted(a),
        _ => Done::Ok,
    }
}

fn check_random_size(states: usize, symbols: usize) -> Result<(), Failure> {
    if !(1..=dfa::MAX_STATES).contains(&states) || !(1..=dfa::MAX_SYMBOLS).contains(&symbols) {
        return Err(usage(&format!(
            "--states must be in 1..={} and --symbols in 1..={}",
            dfa::MAX_STATES,
            dfa::MAX_SYMBOLS
        )));
    }
    Ok(())
}

fn run(cli: Cli) -> Result<Done, Failure> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| Failure { message: format!("writing output: {e}"), code: 1 };
    let mut status = Done::Ok;
    match cli.command {
        Command::Compile { machine, out: path } => {
            let m = machine.load(None)?;
            let target = files::write(&path, &json::to_json_string(&m), &mut out)?;
            eprintln!(
                "pmsm: wrote {target} ({}, {})",
                output::count(m.states(), "state"),
                output::count(m.symbols(), "symbol")
            );
        }
        Command::Info { file: None, machine, json: as_json, path, max_positions, .. } if path == "nfa" => {
            let (ids, _, set) = nfa::load(&machine, max_positions).map_err(|m| usage(&m))?;
            let v = nfa::describe(&ids, &set);
            if as_json {
                writeln!(out, "{v}").map_err(io)?;
            } else {
                writeln!(out, "{}", nfa::describe_text(&v)).map_err(io)?;
            }
        }
        Command::Info { file: None, machine, json: as_json, path, max_positions, .. } if path == "auto" => {
            let v = paths::describe(&machine, PathChoice::Auto, max_positions).map_err(|m| usage(&m))?;
            if as_json {
                writeln!(out, "{v}").map_err(io)?;
            } else {
                writeln!(out, "{}", paths::describe_text(&v)).map_err(io)?;
            }
        }
        Command::Info { file: Some(_), path, .. } if path != "dfa" => {
            return Err(usage(&format!(
                "--path {path} describes rules (--regex, --regex-file or --gitleaks), not a DFA file"
            )));
        }
        Command::BenchNfa {
            machine, texts, max_positions, repeat, compare, calibrate, sample, json: as_json, ..
        } if compare || calibrate => {
            let lines = paths::texts(&texts).map_err(|m| usage(&m))?;
            let sample = sample as usize;
            let (v, text) = if compare {
                let v = paths::compare(&machine, &lines, max_positions, repeat, sample).map_err(|m| usage(&m))?;
                let t = paths::compare_text(&v);
                (v, t)
            } else {
                let v = paths::calibrate(&machine, &lines, max_positions, repeat, sample).map_err(|m| usage(&m))?;
                let t = paths::calibrate_text(&v);
                (v, t)
            };
            if as_json {
                writeln!(out, "{v}").map_err(io)?;
            } else {
                write!(out, "{text}").map_err(io)?;
            }
        }
        Command::BenchNfa { machine, texts, max_positions, repeat, path, transport, json: as_json, .. } => {
            let choice: PathChoice = path.parse().map_err(|m: String| usage(&m))?;
            let tcp = transport == "tcp";
            let v = nfa::bench(&machine, &texts, max_positions, repeat, choice, tcp).map_err(|m| usage(&m))?;
            if as_json {
                writeln!(out, "{v}").map_err(io)?;
            } else {
                write!(out, "{}", nfa::bench_text(&v)).map_err(io)?;
            }
        }
        Command::Info { file: None, machine, json: as_json, reveal, protocol, .. }
            if machine.gitleaks.is_some() || reveal.is_some() =>
        {
            let policy = reveal.unwrap_or(Policy::Rules);
            let loaded = sets::load(&machine, policy, protocol, ClassMode::Auto)?;
            let set = sets::describe(&loaded, protocol, ClassMode::Auto);
            if as_json {
                writeln!(out, "{}", json!({"rules": loaded.rows, "set": set})).map_err(io)?;
            } else {
                writeln!(out, "{}\n{}", gitleaks::info_text(&loaded.rows), sets::describe_text(&set)).map_err(io)?;
            }
        }
        Command::Samples { gitleaks: path, out: dir, per_rule, seed } => {
            let (planted, clean, missing) = gitleaks::samples(&path, &dir, per_rule, seed)?;
            eprintln!("pmsm: wrote {planted} planted and {clean} clean texts to {}", dir.display());
            if !missing.is_empty() {
                eprintln!("pmsm: no sample for {}", missing.join(", "));
            }
        }
        Command::Info { file, machine, json: as_json, .. } => {
            let m = machine.load(file.as_deref())?;
            let info = machine::describe(&m);
            if as_json {
                writeln!(out, "{info}").map_err(io)?;
            } else {
                writeln!(out, "{}", machine::describe_text(&info)).map_err(io)?;
            }
        }
        Command::Eval { machine, inputs, output: opts, session } if session.policy(&machine)?.is_some() => {
            let policy = session.policy(&machine)?.expect("a set policy");
            let loaded = sets::load(&machine, policy, session.protocol, session.classes)?;
            for r in &loaded.refused {
                eprintln!("pmsm: rule {} refused: {}", r.id, r.reason);
            }
            let set = &loaded.set;
            let encoded = inputs.load(&set.groups()[0].dfa)?;
            let start = std::time::Instant::now();
            let answers: Vec<_> = encoded.iter().map(|i| set.answer(i)).collect();
            let outputs: Vec<InstanceOutput> = answers
                .iter()
                .zip(&encoded)
                .map(|(a, i)| InstanceOutput {
                    final_state: None,
                    accept: Some(a.any()),
                    symbols: i.len(),
                    answer: Some(a.clone()),
                })
                .collect();
            let printed = Printed::plaintext(&outputs, start.elapsed().as_secs_f64(), Some((&answers, set.ids())));
            output::print(&mut out, &printed, opts.json).map_err(io)?;
            status = done(&printed, &opts);
        }
        Command::Eval { machine, inputs, output: opts, .. } => {
            let m = machine.load(None)?;
            let encoded = inputs.load(&m)?;
            let start = std::time::Instant::now();
            let outputs: Vec<InstanceOutput> = m
                .run_batch(&encoded)
                .into_iter()
                .zip(&encoded)
                .map(|(s, input)| InstanceOutput {
                    final_state: Some(s),
                    accept: Some(m.is_accepting(s)),
                    symbols: input.len(),
                    answer: None,
                })
                .collect();
            let printed = Printed::plaintext(&outputs, start.elapsed().as_secs_f64(), None);
            output::print(&mut out, &printed, opts.json).map_err(io)?;
            status = done(&printed, &opts);
        }
        Command::Run(args) if args.session.policy(&args.machine)?.is_some() => {
            let policy = args.session.policy(&args.machine)?.expect("a set policy");
            let (engine, loaded) = args.session.set_engine(&args.machine, policy)?;
            let inputs = args.inputs.load(engine.dfa())?;
            let report = engine.run(&inputs).map_err(|e| {
                let code = if matches!(e, pmsm_engine::Error::Dfa(_)) { 2 } else { 1 };
                Failure { message: e.to_string(), code }
            })?;
            let mut extra = serde_json::Map::new();
            extra.insert("policy".into(), json!(policy.name()));
            extra.insert("rules".into(), json!(loaded.set.ids().len()));
            extra.insert("groups".into(), json!(loaded.set.groups().len()));
            extra.insert("rounds".into(), json!(report.rounds));
            let bytes: usize = inputs.iter().map(Vec::len).sum();
            extra.insert("bytes_per_sec".into(), json!(bytes as f64 / report.seconds.max(1e-9)));
            let printed = Printed {
                outputs: &report.outputs,
                protocol: report.protocol.name(),
                transitions: report.transitions,
                seconds: report.seconds,
                bits: Some(bits(&report.bytes, &Link::ALL)),
                extra,
                answers: Some((&report.answers, loaded.set.ids())),
            };
            output::print(&mut out, &printed, args.output.json).map_err(io)?;
            status = done(&printed, &args.output);
        }
        Command::Run(args) => {
            let (engine, inputs) = args.prepare()?;
            let report = engine.run(&inputs).map_err(|e| {
                let code = if matches!(e, pmsm_engine::Error::Dfa(_)) { 2 } else { 1 };
                Failure { message: e.to_string(), code }
            })?;
            let mut extra = serde_json::Map::new();
            extra.insert("classes".into(), json!(report.classes));
            extra.insert("rounds".into(), json!(report.rounds));
            let printed = Printed {
                outputs: &report.outputs,
                protocol: report.protocol.name(),
                transitions: report.transitions,
                seconds: report.seconds,
                bits: Some(bits(&report.bytes, &Link::ALL)),
                extra,
                answers: None,
            };
            output::print(&mut out, &printed, args.output.json).map_err(io)?;
            status = done(&printed, &args.output);
        }
        Command::Certs(args) => certs::run(&args)?,
        Command::Serve(args) => net::serve(args)?,
        Command::Dealer(args) => net::dealer(args)?,
        Command::Client(args) if args.stream => net::service_stream(&args, &mut out)?,
        Command::Client(args) => {
            let run = net::service_run(&args)?;
            if let Some(id) = run.kept {
                writeln!(out, "{}", json!({"type": "session", "session": id.to_string()})).map_err(io)?;
            }
            let mut extra = serde_json::Map::new();
            extra.insert("transport".into(), json!("tcp"));
            extra.insert("mode".into(), json!("service"));
            extra.insert("machine".into(), json!(args.machine));
            let printed = Printed {
                outputs: &run.outputs,
                protocol: &run.protocol,
                transitions: run.transitions,
                seconds: run.seconds,
                bits: None,
                answers: run.answers.as_ref().map(|(a, ids)| (a.as_slice(), ids.as_slice())),
                extra,
            };
            output::print(&mut out, &printed, args.output.json).map_err(io)?;
            status = done(&printed, &args.output);
        }
        Command::Bench { profile, json: as_json, out: out_dir, transport } => {
            let outcome = bench::run(&profile, transport.as_deref()).map_err(|message| Failure { message, code: 2 })?;
            if as_json {
                writeln!(out, "{}", bench::to_json(&outcome)).map_err(io)?;
            } else {
                write!(out, "{}", bench::to_markdown(&outcome)).map_err(io)?;
            }
            if let Some(dir) = out_dir {
                let files = bench::write_out(&dir, &outcome).map_err(|message| Failure { message, code: 1 })?;
                eprintln!("pmsm: wrote {} into {}", files.join(", "), dir.display());
            }
        }
        Command::Comm { dfa: file, states, symbols, steps, rules, json: as_json } => {
            let m = match (file, states, symbols) {
                (Some(f), _, _) => json::load(&f)?,
                (None, Some(s), Some(a)) => {
                    check_random_size(s, a)?;
                    random_dfa(s, a, &mut WorkloadRng::seed_from_u64(1))
                }
                _ => return Err(Failure { message: "give --dfa FILE or --states S --symbols A".into(), code: 2 }),
            };
            if steps == 0 {
                return Err(Failure { message: "--steps must be positive".into(), code: 2 });
            }
            let (patterns, source) = match &rules {
                Some(path) => {
                    let f = dfa::rules::RuleFile::read(path)?;
                    (f.patterns().map(String::from).collect(), path.display().to_string())
                }
                None => (comm::DEFAULT_NFA_RULES.map(String::from).to_vec(), "the default DLP rules".to_string()),
            };
            let mut v = comm::measure(&m, steps).map_err(|message| Failure { message, code: 2 })?;
            v["nfa"] = comm::measure_nfa(&patterns, &source).map_err(|message| Failure { message, code: 2 })?;
            if as_json {
                writeln!(out, "{v}").map_err(io)?;
            } else {
                write!(out, "{}", comm::text(&v)).map_err(io)?;
            }
        }
        Command::Store(cmd) => write!(out, "{}", store::run(&cmd)?).map_err(io)?,
        Command::RandomDfa { states, symbols, seed, out: path } => {
            check_random_size(states, symbols)?;
            let m = random_dfa(states, symbols, &mut WorkloadRng::seed_from_u64(seed));
            files::write(&path, &json::to_json_string(&m), &mut out)?;
        }
    }
    out.flush().map_err(io)?;
    Ok(status)
}

impl Cli {
    /// Whether the command exits as grep does (`--exit-status`).
    fn grep_status(&self) -> bool {
        match &self.command {
            Command::Eval { output, .. } => output.exit_status,
            Command::Run(args) => args.output.exit_status,
            Command::Client(args) => args.output.exit_status,
            _ => false,
        }
    }
}

fn main() -> ExitCode {
    let args = match config::expand::<Cli>(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("pmsm: error: {message}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    let grep_status = cli.grep_status();
    match run(cli) {
        Ok(Done::Ok | Done::Accepted(true)) => ExitCode::SUCCESS,
        Ok(Done::Accepted(false)) => ExitCode::from(1),
        Err(f) => {
            eprintln!("pmsm: error: {}", f.message);
            // grep's convention: 1 means "nothing matched", so every error is 2.
            ExitCode::from(if grep_status { 2 } else { f.code })
        }
    }
}
