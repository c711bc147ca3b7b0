//! `pmsm`: the command-line front end of the engine.
//!
//! Every failure is reported as one line on stderr, `pmsm: error: …`, and a non-zero
//! exit code: 2 for bad input or usage, 1 for a failure while running.

mod bench;
mod comm;
mod machine;

use clap::{Parser, Subcommand};
use machine::MachineArgs;
use mimalloc::MiMalloc;
use pmsm_engine::Engine;
use pmsm_engine::dfa::{self, json, random::random_dfa};
use pmsm_engine::input::read_inputs;
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
    Run {
        #[command(flatten)]
        machine: MachineArgs,
        #[command(flatten)]
        inputs: InputArgs,
        /// lookup-xor (boolean shares, the fast path) or lookup-ring (Z_2^64 shares).
        #[arg(long, default_value = "lookup-xor")]
        protocol: Protocol,
        /// What the client learns: state or accept [default: accept for --regex, state for --dfa].
        #[arg(long)]
        reveal: Option<Reveal>,
        /// Symbol classes: auto, on or off.
        #[arg(long, default_value = "auto")]
        classes: String,
        /// Instances per chunk.
        #[arg(long, default_value_t = pmsm_engine::DEFAULT_CHUNK)]
        chunk: usize,
        /// One JSON object per instance, then a summary line.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark a workload profile: all four parties in this process, every output
    /// verified against the plaintext evaluator.
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
}

impl InputArgs {
    fn load(&self) -> Result<Vec<Vec<u8>>, pmsm_engine::Error> {
        match (&self.input, &self.inputs) {
            (Some(text), _) => Ok(vec![text.as_bytes().to_vec()]),
            (None, Some(path)) => Ok(read_inputs(path)?),
            (None, None) => unreachable!("clap requires one of --input/--inputs"),
        }
    }
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
            let texts = inputs.load()?;
            let encoded = texts.iter().enumerate().map(|(i, t)| m.encode(t, i)).collect::<Result<Vec<_>, _>>()?;
            for (i, s) in m.run_batch(&encoded).into_iter().enumerate() {
                writeln!(out, "{}", json!({"instance": i, "final_state": s, "accept": m.is_accepting(s)}))
                    .map_err(io)?;
            }
        }
        Command::Run { machine, inputs, protocol, reveal, classes, chunk, json: as_json } => {
            let m = machine.load(None)?;
            let reveal = reveal.unwrap_or(if machine.is_regex() { Reveal::Accept } else { Reveal::State });
            let classes = match classes.as_str() {
                "auto" => ClassMode::Auto,
                "on" => ClassMode::On,
                "off" => ClassMode::Off,
                other => {
                    return Err(Failure { message: format!("--classes {other:?}: expected auto, on or off"), code: 2 });
                }
            };
            let texts = inputs.load()?;
            let engine = Engine::builder(m).protocol(protocol).reveal(reveal).classes(classes).chunk(chunk).build()?;
            let report = engine.run_texts(&texts).map_err(|e| {
                let code = if matches!(e, pmsm_engine::Error::Dfa(_)) { 2 } else { 1 };
                Failure { message: e.to_string(), code }
            })?;
            let bits: serde_json::Map<String, serde_json::Value> =
                Link::ALL.iter().map(|l| (l.name().to_string(), json!(report.bytes.get(*l) * 8))).collect();
            if as_json {
                for (i, o) in report.outputs.iter().enumerate() {
                    writeln!(
                        out,
                        "{}",
                        json!({"instance": i, "final_state": o.final_state, "accept": o.accept, "symbols": o.symbols})
                    )
                    .map_err(io)?;
                }
                let summary = json!({"summary": {
                    "protocol": report.protocol.name(),
                    "instances": report.outputs.len(),
                    "transitions": report.transitions,
                    "seconds": report.seconds,
                    "classes": report.classes,
                    "rounds": report.rounds,
                    "bits": bits,
                }});
                writeln!(out, "{summary}").map_err(io)?;
            } else {
                for (i, o) in report.outputs.iter().enumerate() {
                    match (o.final_state, o.accept) {
                        (Some(s), _) => writeln!(out, "instance {i}: final state {s} ({} symbols)", o.symbols),
                        (_, Some(a)) => writeln!(
                            out,
                            "instance {i}: {} ({} symbols)",
                            if a { "accept" } else { "reject" },
                            o.symbols
                        ),
                        _ => Ok(()),
                    }
                    .map_err(io)?;
                }
                let tps = report.transitions as f64 / report.seconds.max(1e-9);
                eprintln!(
                    "pmsm: {} instances, {} transitions in {:.3} s ({:.0} transitions/s, {}{}), bits: {}",
                    report.outputs.len(),
                    report.transitions,
                    report.seconds,
                    tps,
                    report.protocol,
                    report.classes.map_or(String::new(), |c| format!(", {c} symbol classes")),
                    serde_json::Value::Object(bits)
                );
            }
        }
        Command::Bench { profile, json: as_json, out: out_dir } => {
            let outcome = bench::run(&profile).map_err(|message| Failure { message, code: 2 })?;
            if as_json {
                writeln!(out, "{}", bench::to_json(&outcome)).map_err(io)?;
            } else {
                write!(out, "{}", bench::to_markdown(&outcome)).map_err(io)?;
            }
            if let Some(dir) = out_dir {
                bench::write_out(&dir, &outcome).map_err(|message| Failure { message, code: 1 })?;
                eprintln!("pmsm: wrote {}/results.md, results.json and two SVG plots", dir.display());
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
