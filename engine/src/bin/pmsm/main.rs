//! `pmsm`: the command-line front end of the engine.
//!
//! Every failure is reported as one line on stderr, `pmsm: error: …`, and a non-zero
//! exit code: 2 for bad input or usage, 1 for a failure while running.

mod bench;
mod comm;
mod machine;
mod net;

use clap::{Parser, Subcommand};
use machine::MachineArgs;
use mimalloc::MiMalloc;
use pmsm_engine::Engine;
use pmsm_engine::dfa::{self, json, random::random_dfa};
use pmsm_engine::input::{read_inputs, read_symbol_inputs};
use pmsm_engine::protocol::{ClassMode, Protocol, Reveal};
use pmsm_engine::transport::Link;
use pmsm_kernels::rng::WorkloadRng;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(name = "pmsm", version, about = "Private finite state machines between two non-colluding servers")]
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
        /// Output file.
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
    },
    /// Evaluate a machine in plaintext (no privacy; the reference).
    Eval {
        #[command(flatten)]
        machine: MachineArgs,
        #[command(flatten)]
        inputs: InputArgs,
    },
    /// Run the machine privately: client, two servers and dealer in this process.
    Run(RunArgs),
    /// Make a development CA and a certificate and key per party (for serve, dealer
    /// and client).
    Certs {
        /// Folder to write ca.pem and ROLE.pem / ROLE.key into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run server 0 or 1 as a process: TCP with mutual TLS.
    Serve(net::ServeArgs),
    /// Run the dealer as a process: TCP with mutual TLS.
    Dealer(net::DealerArgs),
    /// Run one client session against two server processes.
    Client(net::ClientArgs),
    /// Benchmark a workload profile: all four parties in this process (or as processes
    /// over TCP), every output verified against the plaintext evaluator.
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
        #[arg(long)]
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
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
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
        /// Output file.
        #[arg(short, long)]
        out: PathBuf,
    },
}

/// Where client inputs come from.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct InputArgs {
    /// One input, given on the command line.
    #[arg(long)]
    input: Option<String>,
    /// A file with one input per line (every line counts; an empty line is an empty input).
    #[arg(long)]
    inputs: Option<PathBuf>,
    /// A file with one input per line as space-separated symbol indices (for machines
    /// whose symbols are not printable).
    #[arg(long)]
    symbol_inputs: Option<PathBuf>,
}

impl InputArgs {
    /// The inputs as symbol indices of `m` (unknown symbols are named with their
    /// instance and position).
    fn load(&self, m: &dfa::Dfa) -> Result<Vec<Vec<u32>>, pmsm_engine::Error> {
        let texts = match (&self.input, &self.inputs, &self.symbol_inputs) {
            (Some(text), _, _) => vec![text.as_bytes().to_vec()],
            (None, Some(path), _) => read_inputs(path)?,
            (None, None, Some(path)) => return Ok(read_symbol_inputs(path, m.symbols())?),
            (None, None, None) => unreachable!("clap requires one of --input/--inputs/--symbol-inputs"),
        };
        Ok(texts.iter().enumerate().map(|(i, t)| m.encode(t, i)).collect::<Result<Vec<_>, _>>()?)
    }
}

/// How a private run is set up (shared by `run` and `client`).
#[derive(clap::Args)]
struct SessionArgs {
    /// lookup-xor (boolean shares, the fast path), lookup-ring (Z_2^64 shares), or the
    /// seed's seed-dpf and naive.
    #[arg(long, default_value = "lookup-xor")]
    protocol: Protocol,
    /// What the client learns: state or accept [default: accept for --regex, state for --dfa].
    #[arg(long)]
    reveal: Option<Reveal>,
    /// Symbol classes: auto, on or off.
    #[arg(long, default_value = "auto")]
    classes: ClassMode,
    /// Instances per chunk (default: automatic, at most 1024 and at least two chunks).
    #[arg(long)]
    chunk: Option<usize>,
    /// One JSON object per instance, then a summary line.
    #[arg(long)]
    json: bool,
}

impl SessionArgs {
    /// An engine for `m` with these settings.
    fn engine(&self, m: dfa::Dfa, is_regex: bool) -> Result<Engine, Failure> {
        let reveal = self.reveal.unwrap_or(if is_regex { Reveal::Accept } else { Reveal::State });
        let mut b = Engine::builder(m).protocol(self.protocol).reveal(reveal).classes(self.classes);
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
}

impl RunArgs {
    /// Loads the machine and the inputs (unknown symbols are refused here) and builds
    /// the engine.
    fn prepare(&self) -> Result<(Engine, Vec<Vec<u32>>), Failure> {
        let m = self.machine.load(None)?;
        let inputs = self.inputs.load(&m)?;
        Ok((self.session.engine(m, self.machine.is_regex())?, inputs))
    }
}

/// What a finished private run prints.
struct Printed<'a> {
    outputs: &'a [pmsm_engine::InstanceOutput],
    protocol: Protocol,
    transitions: usize,
    seconds: f64,
    bytes: &'a pmsm_engine::LinkBytes,
    /// The links whose bytes this process counted (a client over TCP sees only its own).
    links: &'a [Link],
    /// Extra summary fields (classes, rounds, transport, session).
    extra: serde_json::Map<String, serde_json::Value>,
}

/// Prints the outputs (text or JSON lines) on `out` and the summary (stderr, or the
/// JSON summary line).
fn print_outputs(out: &mut impl Write, p: &Printed<'_>, as_json: bool) -> std::io::Result<()> {
    let bits: serde_json::Map<String, serde_json::Value> =
        p.links.iter().map(|l| (l.name().to_string(), json!(p.bytes.get(*l) * 8))).collect();
    if as_json {
        for (i, o) in p.outputs.iter().enumerate() {
            let line = json!({"instance": i, "final_state": o.final_state, "accept": o.accept, "symbols": o.symbols});
            writeln!(out, "{line}")?;
        }
        let mut summary = serde_json::Map::new();
        summary.insert("protocol".into(), json!(p.protocol.name()));
        summary.insert("instances".into(), json!(p.outputs.len()));
        summary.insert("transitions".into(), json!(p.transitions));
        summary.insert("seconds".into(), json!(p.seconds));
        summary.extend(p.extra.clone());
        summary.insert("bits".into(), serde_json::Value::Object(bits));
        return writeln!(out, "{}", json!({ "summary": summary }));
    }
    for (i, o) in p.outputs.iter().enumerate() {
        match (o.final_state, o.accept) {
            (Some(s), _) => writeln!(out, "instance {i}: final state {s} ({} symbols)", o.symbols)?,
            (_, Some(a)) => {
                writeln!(out, "instance {i}: {} ({} symbols)", if a { "accept" } else { "reject" }, o.symbols)?
            }
            _ => {}
        }
    }
    let tps = p.transitions as f64 / p.seconds.max(1e-9);
    let extra: Vec<String> = p.extra.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!(
        "pmsm: {} instances, {} transitions in {:.3} s ({tps:.0} transitions/s, {}{}), bits: {}",
        p.outputs.len(),
        p.transitions,
        p.seconds,
        p.protocol,
        extra.iter().map(|e| format!(", {e}")).collect::<String>(),
        serde_json::Value::Object(bits)
    );
    Ok(())
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

fn write_file(path: &PathBuf, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(|e| Failure { message: format!("{}: {e}", path.display()), code: 1 })
}

fn check_random_size(states: usize, symbols: usize) -> Result<(), Failure> {
    if !(1..=dfa::MAX_STATES).contains(&states) || !(1..=dfa::MAX_SYMBOLS).contains(&symbols) {
        return Err(Failure {
            message: format!("--states must be in 1..={} and --symbols in 1..={}", dfa::MAX_STATES, dfa::MAX_SYMBOLS),
            code: 2,
        });
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| Failure { message: format!("writing output: {e}"), code: 1 };
    match cli.command {
        Command::Compile { machine, out: path } => {
            let m = machine.load(None)?;
            write_file(&path, &json::to_json_string(&m))?;
            eprintln!("pmsm: wrote {} ({} states, {} symbols)", path.display(), m.states(), m.symbols());
        }
        Command::Info { file, machine, json: as_json } => {
            let m = machine.load(file.as_deref())?;
            let info = machine::describe(&m);
            if as_json {
                writeln!(out, "{info}").map_err(io)?;
            } else {
                writeln!(out, "{}", machine::describe_text(&info)).map_err(io)?;
            }
        }
        Command::Eval { machine, inputs } => {
            let m = machine.load(None)?;
            let encoded = inputs.load(&m)?;
            for (i, s) in m.run_batch(&encoded).into_iter().enumerate() {
                writeln!(out, "{}", json!({"instance": i, "final_state": s, "accept": m.is_accepting(s)}))
                    .map_err(io)?;
            }
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
                protocol: report.protocol,
                transitions: report.transitions,
                seconds: report.seconds,
                bytes: &report.bytes,
                links: &Link::ALL,
                extra,
            };
            print_outputs(&mut out, &printed, args.session.json).map_err(io)?;
        }
        Command::Certs { out: dir } => {
            let files = pmsm_engine::transport::tls::write_dev_certs(&dir)
                .map_err(|e| Failure { message: e.to_string(), code: 1 })?;
            eprintln!(
                "pmsm: wrote {} files into {} (a development CA: not for production)",
                files.len(),
                dir.display()
            );
        }
        Command::Serve(args) => net::serve(args)?,
        Command::Dealer(args) => net::dealer(args)?,
        Command::Client(args) => {
            let (run, session, engine) = net::client(&args)?;
            let mut extra = serde_json::Map::new();
            extra.insert("transport".into(), json!("tcp"));
            extra.insert("session".into(), json!(run.session.to_string()));
            extra.insert("peak_rss_bytes".into(), json!(pmsm_engine::process::peak_rss_bytes()));
            let printed = Printed {
                outputs: &run.outputs,
                protocol: engine.protocol(),
                transitions: run.transitions,
                seconds: run.seconds,
                bytes: &run.bytes,
                links: &[Link::ClientToS0, Link::ClientToS1],
                extra,
            };
            print_outputs(&mut out, &printed, session).map_err(io)?;
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
        Command::Comm { dfa: file, states, symbols, steps, json: as_json } => {
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
            let v = comm::measure(&m, steps).map_err(|message| Failure { message, code: 2 })?;
            if as_json {
                writeln!(out, "{v}").map_err(io)?;
            } else {
                write!(out, "{}", comm::text(&v)).map_err(io)?;
            }
        }
        Command::RandomDfa { states, symbols, seed, out: path } => {
            if !(1..=dfa::MAX_STATES).contains(&states) || !(1..=dfa::MAX_SYMBOLS).contains(&symbols) {
                return Err(Failure {
                    message: format!(
                        "--states must be in 1..={} and --symbols in 1..={}",
                        dfa::MAX_STATES,
                        dfa::MAX_SYMBOLS
                    ),
                    code: 2,
                });
            }
            let m = random_dfa(states, symbols, &mut WorkloadRng::seed_from_u64(seed));
            write_file(&path, &json::to_json_string(&m))?;
        }
    }
    out.flush().map_err(io)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("pmsm: error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
