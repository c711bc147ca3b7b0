//! `pmsm`: the command-line front end of the engine.
//!
//! Every failure is reported as one line on stderr, `pmsm: error: …`, and a non-zero
//! exit code: 2 for bad input or usage, 1 for a failure while running.

mod machine;

use clap::{Parser, Subcommand};
use machine::MachineArgs;
use mimalloc::MiMalloc;
use pmsm_engine::dfa::{self, json, random::random_dfa};
use pmsm_engine::input::read_inputs;
use pmsm_kernels::rng::WorkloadRng;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(
    name = "pmsm",
    version,
    about = "Private finite state machines between two non-colluding servers"
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
        Failure {
            message: e.to_string(),
            code: 2,
        }
    }
}

impl From<dfa::DfaError> for Failure {
    fn from(e: dfa::DfaError) -> Self {
        Failure {
            message: e.to_string(),
            code: 2,
        }
    }
}

fn write_file(path: &PathBuf, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(|e| Failure {
        message: format!("{}: {e}", path.display()),
        code: 1,
    })
}

fn run(cli: Cli) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| Failure {
        message: format!("writing output: {e}"),
        code: 1,
    };
    match cli.command {
        Command::Compile { machine, out: path } => {
            let m = machine.load(None)?;
            write_file(&path, &json::to_json_string(&m))?;
            eprintln!(
                "pmsm: wrote {} ({} states, {} symbols)",
                path.display(),
                m.states(),
                m.symbols()
            );
        }
        Command::Info {
            file,
            machine,
            json: as_json,
        } => {
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
            let encoded = texts
                .iter()
                .enumerate()
                .map(|(i, t)| m.encode(t, i))
                .collect::<Result<Vec<_>, _>>()?;
            for (i, s) in m.run_batch(&encoded).into_iter().enumerate() {
                writeln!(
                    out,
                    "{}",
                    json!({"instance": i, "final_state": s, "accept": m.is_accepting(s)})
                )
                .map_err(io)?;
            }
        }
        Command::RandomDfa {
            states,
            symbols,
            seed,
            out: path,
        } => {
            if !(1..=dfa::MAX_STATES).contains(&states)
                || !(1..=dfa::MAX_SYMBOLS).contains(&symbols)
            {
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
