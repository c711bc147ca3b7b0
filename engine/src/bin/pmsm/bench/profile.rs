//! Benchmark profiles: TOML workloads. Unknown keys are errors, naming file and key.
//!
//! ```toml
//! description = "what this profile measures"
//! protocols = ["lookup-xor", "lookup-ring"]  # default for every run
//! reveal = "state"                           # or "accept"
//! classes = "auto"                           # or "on", "off"
//! chunk = 1024                               # default: automatic (at most 1024, two chunks or more)
//! transport = "inproc"                      # or "tcp": dealer and servers as processes on 127.0.0.1
//! phases = true                              # also time online-only and offline-only
//! mode = "batch"                             # or "service": each input one session (bench/service.rs)
//! clients = 64                               # service: client threads
//! connections = 0                            # service over tcp: connections they share (0: one each)
//! idle_sessions = 0                          # service: idle sessions opened to measure memory
//! stream_sessions = 0                        # service: sessions of the streaming workload
//! stream_pushes = 100                        # service: pushes (1–20 symbols) per streaming session
//! store = false                              # service: the main workload again with session stores
//! store_sessions = 0                         # service, inproc: reopen a store of this many sessions
//!
//! [[run]]
//! label = "random 64 × 256"
//! protocols = ["lookup-xor"]                 # optional overrides: protocols, reveal, classes
//! machine = { random = { states = 64, symbols = 256, seed = 1 } }
//! #   or { dfa = "../datasets/ab.json" } / { regex_file = "…", full_match = false, alphabet = "ACGT" } / { regex = ["…"] }
//! #   or { gitleaks = "../datasets/gitleaks/gitleaks.toml" }: a machine set (bench/set.rs), with
//! # policy = "rules"                         # a set's policy: any, rules or count (regex_file too)
//! # groupings = ["cost", "alone", "fill"]    # a set's groupings to measure (default cost)
//! # max_states = 65536                       # a set's limit per rule and per product
//! inputs = { random = { batch = 10000, length = 100, seed = 2 } }
//! #   or { file = "../datasets/dlp/positives.txt", batch = 10000 }  (lines cycled up to batch)
//! ```
//!
//! Relative paths are relative to the profile file.

use pmsm_engine::dfa::random::{random_dfa, random_input};
use pmsm_engine::dfa::rules::RuleFile;
use pmsm_engine::dfa::{self, Dfa, json, regex};
use pmsm_engine::input::read_inputs;
use pmsm_engine::protocol::{ClassMode, Protocol, Reveal};
use pmsm_kernels::rng::WorkloadRng;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub description: Option<String>,
    #[serde(default = "default_protocols")]
    pub protocols: Vec<String>,
    #[serde(default = "default_reveal")]
    pub reveal: String,
    #[serde(default = "default_classes")]
    pub classes: String,
    /// Instances per chunk; automatic when absent.
    #[serde(default)]
    pub chunk: Option<usize>,
    #[serde(default = "default_transport")]
    pub transport: String,
    #[serde(default = "default_true")]
    pub phases: bool,
    /// `"batch"` (the engine's batch API) or `"service"` (sessions through the service,
    /// each input one session, beside a batch run of the same inputs).
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Service mode: client threads driving the sessions.
    #[serde(default = "default_clients")]
    pub clients: usize,
    /// Service mode over tcp: client connections (pairs, one to each server) the
    /// threads share, round robin (0: one per thread).
    #[serde(default)]
    pub connections: usize,
    /// Service mode: idle sessions opened afterwards to measure memory per session.
    #[serde(default)]
    pub idle_sessions: usize,
    /// Service mode: after the run, a streaming workload of this many sessions, each
    /// given `stream_pushes` pushes of 1 to 20 random symbols at random times, every
    /// release checked (0: none).
    #[serde(default)]
    pub stream_sessions: usize,
    /// Service mode: pushes per streaming session.
    #[serde(default = "default_stream_pushes")]
    pub stream_pushes: usize,
    /// Service mode: the main workload once more with a session store per server
    /// (durable sessions), beside the run without, in the same invocation.
    #[serde(default)]
    pub store: bool,
    /// Service mode, in process: a store of this many sessions per server, then a
    /// service started on the stores: the time until it serves (reopened and
    /// reconciled) and the bytes per session on disk (0: none).
    #[serde(default)]
    pub store_sessions: usize,
    pub run: Vec<RunSpec>,
}

fn default_mode() -> String {
    "batch".into()
}

fn default_clients() -> usize {
    64
}

fn default_stream_pushes() -> usize {
    100
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub label: String,
    pub protocols: Option<Vec<String>>,
    pub reveal: Option<String>,
    pub classes: Option<String>,
    /// A machine set's policy (`any`, `rules`, `count`): the rules of `machine` run as a
    /// set (`bench/set.rs`); a `gitleaks` machine is a set under `rules` by default.
    pub policy: Option<String>,
    /// A set's groupings to measure (`cost`, `alone`, `fill`; default `cost`).
    pub groupings: Option<Vec<String>>,
    /// A set's limit on each rule's and each product's states (default 2^16).
    pub max_states: Option<usize>,
    pub machine: MachineSpec,
    pub inputs: InputSpec,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    pub random: Option<RandomMachine>,
    pub dfa: Option<PathBuf>,
    pub regex: Option<Vec<String>>,
    pub regex_file: Option<PathBuf>,
    /// A gitleaks configuration: its rules as a machine set.
    pub gitleaks: Option<PathBuf>,
    #[serde(default)]
    pub full_match: bool,
    pub alphabet: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RandomMachine {
    pub states: usize,
    pub symbols: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub random: Option<RandomInputs>,
    pub file: Option<PathBuf>,
    pub batch: Option<usize>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RandomInputs {
    pub batch: usize,
    pub length: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_protocols() -> Vec<String> {
    vec!["lookup-xor".into()]
}
fn default_reveal() -> String {
    "state".into()
}
fn default_classes() -> String {
    "auto".into()
}
fn default_transport() -> String {
    "inproc".into()
}
fn default_true() -> bool {
    true
}
fn default_seed() -> u64 {
    1
}

/// Largest instance count a profile may ask for.
pub const MAX_BATCH: usize = 10_000_000;

/// A profile error: the file, the key at fault and what is wrong.
pub fn err(file: &Path, key: &str, message: impl std::fmt::Display) -> String {
    format!("{}: `{key}`: {message}", file.display())
}

/// A checked profile: every setting parsed.
pub struct Checked {
    pub name: String,
    pub profile: Profile,
    pub reveal: Reveal,
    pub classes: ClassMode,
    /// Parties as processes over TCP + TLS (else in one process).
    pub tcp: bool,
    /// Sessions through the service (else the batch API).
    pub service: bool,
    pub dir: PathBuf,
    pub file: PathBuf,
}

/// Loads and checks a profile; `transport`, if given, overrides the profile's.
pub fn load(file: &Path, transport: Option<&str>) -> Result<Checked, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let profile: Profile =
        toml::from_str(&text).map_err(|e| format!("{}: {}", file.display(), e.to_string().trim_end()))?;
    let reveal = profile.reveal.parse::<Reveal>().map_err(|e| err(file, "reveal", e))?;
    let classes = profile.classes.parse::<ClassMode>().map_err(|e| err(file, "classes", e))?;
    let tcp = match transport.unwrap_or(&profile.transport) {
        "inproc" => false,
        "tcp" => true,
        other => return Err(err(file, "transport", format!("{other:?} is not \"inproc\" or \"tcp\""))),
    };
    let service = match profile.mode.as_str() {
        "batch" => false,
        "service" => true,
        other => return Err(err(file, "mode", format!("{other:?} is not \"batch\" or \"service\""))),
    };
    if service && profile.clients == 0 {
        return Err(err(file, "clients", "must be positive"));
    }
    if profile.chunk == Some(0) {
        return Err(err(file, "chunk", "must be positive"));
    }
    if profile.run.is_empty() {
        return Err(err(file, "run", "the profile has no [[run]]"));
    }
    for (i, r) in profile.run.iter().enumerate() {
        if let Some(v) = &r.reveal {
            v.parse::<Reveal>().map_err(|e| err(file, &format!("run[{i}].reveal"), e))?;
        }
        if let Some(c) = &r.classes {
            c.parse::<ClassMode>().map_err(|e| err(file, &format!("run[{i}].classes"), e))?;
        }
        for p in r.protocols.as_ref().unwrap_or(&profile.protocols) {
            p.parse::<Protocol>().map_err(|e| err(file, &format!("run[{i}].protocols"), e))?;
        }
        let m = &r.machine;
        let sources =
            [m.random.is_some(), m.dfa.is_some(), m.regex.is_some(), m.regex_file.is_some(), m.gitleaks.is_some()];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(err(
                file,
                &format!("run[{i}].machine"),
                "give exactly one of random, dfa, regex, regex_file, gitleaks",
            ));
        }
        if let Some(p) = &r.policy {
            p.parse::<pmsm_engine::dfa::set::Policy>().map_err(|e| err(file, &format!("run[{i}].policy"), e))?;
        }
        for g in r.groupings.iter().flatten() {
            g.parse::<pmsm_engine::dfa::set::Grouping>().map_err(|e| err(file, &format!("run[{i}].groupings"), e))?;
        }
        if let Some(rm) = &m.random
            && (!(1..=dfa::MAX_STATES).contains(&rm.states) || !(1..=dfa::MAX_SYMBOLS).contains(&rm.symbols))
        {
            return Err(err(
                file,
                &format!("run[{i}].machine.random"),
                format!("impossible size {} × {}", rm.states, rm.symbols),
            ));
        }
        let inp = &r.inputs;
        match (&inp.random, &inp.file) {
            (Some(ri), None) if inp.batch.is_none() => {
                if ri.batch == 0 || ri.batch > MAX_BATCH {
                    return Err(err(
                        file,
                        &format!("run[{i}].inputs.random.batch"),
                        format!("must be in 1..={MAX_BATCH}"),
                    ));
                }
            }
            (None, Some(_)) => {
                if inp.batch.is_some_and(|b| b == 0 || b > MAX_BATCH) {
                    return Err(err(file, &format!("run[{i}].inputs.batch"), format!("must be in 1..={MAX_BATCH}")));
                }
            }
            _ => {
                return Err(err(
                    file,
                    &format!("run[{i}].inputs"),
                    "give either random = {…} or file = \"…\" (with an optional batch)",
                ));
            }
        }
    }
    let name = file.file_stem().map_or("profile".into(), |s| s.to_string_lossy().into_owned());
    let dir = file.parent().map_or(PathBuf::from("."), Path::to_path_buf);
    Ok(Checked { name, profile, reveal, classes, tcp, service, dir, file: file.to_path_buf() })
}

impl Checked {
    /// `p` relative to the profile's folder (absolute paths as they are).
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.dir.join(p) }
    }

    /// The machine of run `i`.
    pub fn machine(&self, i: usize) -> Result<Dfa, String> {
        let m = &self.profile.run[i].machine;
        let key = format!("run[{i}].machine");
        let compiled = if let Some(r) = &m.random {
            return Ok(random_dfa(r.states, r.symbols, &mut WorkloadRng::seed_from_u64(r.seed)));
        } else if let Some(p) = &m.dfa {
            return json::load(&self.path(p)).map_err(|e| err(&self.file, &key, e));
        } else {
            let mut patterns = m.regex.clone().unwrap_or_default();
            let leading = patterns.len();
            let rules = m.regex_file.as_ref().map(|p| RuleFile::read(&self.path(p))).transpose();
            let rules = rules.map_err(|e| err(&self.file, &key, e))?;
            patterns.extend(rules.iter().flat_map(|r| r.patterns().map(String::from)));
            regex::compile(&patterns, &regex::RegexConfig { full_match: m.full_match, ..Default::default() }).map_err(
                |e| match &rules {
                    Some(r) => err(&self.file, &key, r.locate(leading, e)),
                    None => err(&self.file, &key, e),
                },
            )?
        };
        match &m.alphabet {
            Some(chars) => regex::restrict_to_chars(&compiled, chars).map_err(|e| err(&self.file, &key, e)),
            None => Ok(compiled),
        }
    }

    /// The inputs of run `i` for `dfa`, as symbol indices.
    pub fn inputs(&self, i: usize, dfa: &Dfa) -> Result<Vec<Vec<u32>>, String> {
        let inp = &self.profile.run[i].inputs;
        let key = format!("run[{i}].inputs");
        if let Some(r) = &inp.random {
            let mut rng = WorkloadRng::seed_from_u64(r.seed);
            return Ok((0..r.batch).map(|_| random_input(dfa.symbols(), r.length, &mut rng)).collect());
        }
        let path = self.path(inp.file.as_deref().expect("checked: random or file"));
        let texts = read_inputs(&path).map_err(|e| err(&self.file, &key, e))?;
        if texts.is_empty() {
            return Err(err(&self.file, &key, format!("{} has no lines", path.display())));
        }
        let encoded = texts
            .iter()
            .enumerate()
            .map(|(n, t)| dfa.encode(t, n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(&self.file, &key, e))?;
        let batch = inp.batch.unwrap_or(encoded.len());
        Ok((0..batch).map(|n| encoded[n % encoded.len()].clone()).collect())
    }

    /// The output policy of run `i`.
    pub fn reveal(&self, i: usize) -> Reveal {
        self.profile.run[i].reveal.as_deref().map_or(self.reveal, |r| r.parse().expect("checked"))
    }

    /// The class mode of run `i`.
    pub fn classes(&self, i: usize) -> ClassMode {
        self.profile.run[i].classes.as_deref().map_or(self.classes, |c| c.parse().expect("checked"))
    }

    /// The protocols of run `i`.
    pub fn protocols(&self, i: usize) -> Vec<Protocol> {
        self.profile.run[i]
            .protocols
            .as_ref()
            .unwrap_or(&self.profile.protocols)
            .iter()
            .map(|p| p.parse().expect("checked"))
            .collect()
    }
}
