//! Choosing a machine on the command line: a JSON table or regular expressions.

use crate::output::count;
use pmsm_engine::dfa::rules::RuleFile;
use pmsm_engine::dfa::set::Grouping;
use pmsm_engine::dfa::{self, Dfa, DfaError, json, regex};
use pmsm_engine::protocol::plan::{Plan, index_bits};
use pmsm_engine::protocol::{ClassMode, Protocol, Reveal};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// `--dfa FILE | --regex PATTERN… | --regex-file FILE`, with compile options.
#[derive(clap::Args)]
pub struct MachineArgs {
    /// A machine in the JSON table format.
    #[arg(long, conflicts_with_all = ["regex", "regex_file", "gitleaks"])]
    pub dfa: Option<PathBuf>,
    /// A gitleaks configuration (TOML): its rules as a machine set (each rule compiled
    /// alone in ASCII mode, as Go reads it; rule ids kept in every output).
    #[arg(long, conflicts_with_all = ["regex", "regex_file"])]
    pub gitleaks: Option<PathBuf>,
    /// How a rule set's rules are grouped into product machines: cost (join while the
    /// product costs no more per symbol than its parts), alone (one machine per rule) or
    /// fill (join while the product fits --max-states).
    #[arg(long, default_value = "cost")]
    pub grouping: Grouping,
    /// A regular expression (Rust syntax); repeat for a set (accepts when any matches).
    /// May start with `-` (`-e '-----BEGIN'`), as grep's `-e` does.
    #[arg(long, short = 'e', value_name = "PATTERN", allow_hyphen_values = true)]
    pub regex: Vec<String>,
    /// A file of regular expressions, one per line; blank lines and lines starting with
    /// `#` are skipped (a file with no pattern is an error).
    #[arg(long)]
    pub regex_file: Option<PathBuf>,
    /// Accept only when the whole input matches (default: when the input contains a match).
    #[arg(long)]
    pub full_match: bool,
    /// Restrict a compiled byte machine to these ASCII characters (e.g. ACGT).
    #[arg(long)]
    pub alphabet: Option<String>,
    /// Refuse compiled machines with more states than this.
    #[arg(long, default_value_t = regex::DEFAULT_MAX_STATES)]
    pub max_states: usize,
}

impl MachineArgs {
    /// Whether the machine comes from regular expressions.
    pub fn is_regex(&self) -> bool {
        !self.regex.is_empty() || self.regex_file.is_some()
    }

    /// Loads or compiles the machine; `positional` is a file given without `--dfa`.
    pub fn load(&self, positional: Option<&Path>) -> Result<Dfa, DfaError> {
        let usage = |message: &str| DfaError::Field {
            file: "command line".into(),
            field: "machine".into(),
            message: message.into(),
        };
        if self.gitleaks.is_some() {
            return Err(usage("--gitleaks is a rule set: give --reveal any, rules or count (info, eval and run)"));
        }
        if let Some(path) = self.dfa.as_deref().or(positional) {
            if self.is_regex() {
                return Err(usage("give either a DFA file or regular expressions, not both"));
            }
            return json::load(path);
        }
        let rules = self.regex_file.as_deref().map(RuleFile::read).transpose()?;
        let mut patterns = self.regex.clone();
        patterns.extend(rules.iter().flat_map(|r| r.patterns().map(String::from)));
        if patterns.is_empty() {
            return Err(usage("no machine: give --dfa FILE, --regex PATTERN or --regex-file FILE"));
        }
        let cfg = regex::RegexConfig { full_match: self.full_match, max_states: self.max_states, ..Default::default() };
        let m = regex::compile(&patterns, &cfg).map_err(|e| match &rules {
            Some(r) => r.locate(self.regex.len(), e),
            None => e,
        })?;
        match &self.alphabet {
            Some(chars) => regex::restrict_to_chars(&m, chars),
            None => Ok(m),
        }
    }
}

/// A served machine from `--machine NAME=FILE[,protocol=P][,reveal=R][,grouping=G]`: a
/// `.json` table; a `.toml` gitleaks configuration, served as a rule set; or any other
/// file as regular expressions one per line (contains semantics, the default state
/// limit): one machine, or a rule set (rule ids its line numbers) under `reveal=any`,
/// `rules` or `count`. Protocol lookup-xor, and the machine's natural output (`rules`
/// for a gitleaks set) unless given.
pub fn served(spec: &str) -> Result<pmsm_engine::service::net::MachineSpec, String> {
    use pmsm_engine::dfa::set::Policy;
    use pmsm_engine::service::Served;
    let bad = |m: String| format!("--machine {spec:?}: {m}");
    let mut parts = spec.split(',');
    let head = parts.next().unwrap_or_default();
    let (name, file) = head.split_once('=').ok_or_else(|| bad("expected NAME=FILE".into()))?;
    if name.is_empty() || name.len() > 128 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(bad("a machine name has 1 to 128 letters, digits, '-', '_' or '.'".into()));
    }
    let (mut protocol, mut reveal, mut grouping) = (Protocol::LookupXor, None::<String>, Grouping::Cost);
    for opt in parts {
        match opt.split_once('=') {
            Some(("protocol", p)) => protocol = p.parse().map_err(|e: String| bad(e))?,
            Some(("reveal", r)) => reveal = Some(r.to_string()),
            Some(("grouping", g)) => grouping = g.parse().map_err(|e: String| bad(e))?,
            _ => return Err(bad(format!("unknown option {opt:?} (protocol=P, reveal=R or grouping=G)"))),
        }
    }
    let path = Path::new(file);
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    let policy = match (reveal.as_deref(), extension) {
        (Some(r @ ("any" | "rules" | "count")), "json") => {
            return Err(bad(format!("reveal={r} is a rule set's policy; a .json table reveals state or accept")));
        }
        (Some(r), _) if r.parse::<Policy>().is_ok() => Some(r.parse::<Policy>().expect("checked")),
        (None, "toml") => Some(Policy::Rules),
        (Some(r), "toml") => return Err(bad(format!("a gitleaks set reveals any, rules or count, not {r:?}"))),
        _ => None,
    };
    let served = match policy {
        Some(policy) => {
            let args = MachineArgs {
                dfa: None,
                gitleaks: (extension == "toml").then(|| path.to_path_buf()),
                grouping,
                regex: Vec::new(),
                regex_file: (extension != "toml").then(|| path.to_path_buf()),
                full_match: false,
                alphabet: None,
                max_states: regex::DEFAULT_MAX_STATES,
            };
            let loaded = crate::sets::load(&args, policy, protocol, ClassMode::Auto).map_err(|e| bad(e.to_string()))?;
            if !loaded.refused.is_empty() {
                eprintln!(
                    "pmsm: machine {name}: {} of {} rules run, {} refused (`pmsm info` names them and why)",
                    loaded.set.ids().len(),
                    loaded.set.ids().len() + loaded.refused.len(),
                    loaded.refused.len()
                );
            }
            Served::Set(loaded.set)
        }
        None => {
            let dfa = if extension == "json" {
                json::load(path)
            } else {
                RuleFile::read(path).and_then(|r| {
                    let patterns: Vec<String> = r.patterns().map(String::from).collect();
                    regex::compile(&patterns, &regex::RegexConfig::default()).map_err(|e| r.locate(0, e))
                })
            }
            .map_err(|e| bad(e.to_string()))?;
            let reveal = match reveal {
                Some(r) => r.parse().map_err(|e: String| bad(e))?,
                None => Reveal::from(dfa.natural_output()),
            };
            Served::Dfa(dfa, reveal)
        }
    };
    Ok(pmsm_engine::service::net::MachineSpec { name: name.to_string(), served, protocol })
}

/// The facts `pmsm info` reports. Index widths are the protocols' (at least one bit
/// each); table sizes are what a default run holds (symbol classes automatic, the
/// machine's natural output), `null` for a protocol that cannot take the machine.
pub fn describe(m: &Dfa) -> Value {
    let classes = m.classes().count();
    let (ks, ka, kc) = (index_bits(m.states()), index_bits(m.symbols()), index_bits(classes));
    let reveal = Reveal::from(m.natural_output());
    let bytes = |p: Protocol| Plan::new(m, p, reveal, ClassMode::Auto).ok().map(|plan| plan.table_bytes());
    json!({
        "states": m.states(),
        "symbols": m.symbols(),
        "alphabet": match m.alphabet() { dfa::Alphabet::Bytes => "bytes".to_string(), dfa::Alphabet::Chars { chars, .. } => chars.iter().collect::<String>() },
        "start": m.start(),
        "accepting_states": m.accepting().iter().filter(|a| **a).count(),
        "output": m.natural_output().name(),
        "classes": classes,
        "ks": ks,
        "ka": ka,
        "kc": kc,
        "n": ks + ka,
        "n_with_classes": ks + kc,
        "lookup_xor_table_bytes": bytes(Protocol::LookupXor),
        "lookup_ring_table_bytes": bytes(Protocol::LookupRing),
    })
}

/// Human-readable form of [`describe`].
pub fn describe_text(v: &Value) -> String {
    let n = |k: &str| v[k].as_u64().unwrap_or(0) as usize;
    let table = |k: &str| v[k].as_u64().map_or("too large".to_string(), |b| count(b as usize, "byte"));
    let output = if v["output"] == "accept" { "accept bit" } else { "final state" };
    format!(
        "states      {}, {} accepting\nsymbols     {} (alphabet: {})\nstart       {}\noutput      {output}\nclasses     {}\npadded      ks = {}, ka = {}, n = ks + ka = {} (N = 2^{})\nwith classes kc = {}, n = {}\ntables      lookup-xor {} (bit-planes), lookup-ring {} (classes auto)",
        count(n("states"), "state"),
        n("accepting_states"),
        count(n("symbols"), "symbol"),
        v["alphabet"].as_str().unwrap_or(""),
        v["start"],
        count(n("classes"), "symbol class"),
        v["ks"],
        v["ka"],
        v["n"],
        v["n"],
        v["kc"],
        v["n_with_classes"],
        table("lookup_xor_table_bytes"),
        table("lookup_ring_table_bytes"),
    )
}
