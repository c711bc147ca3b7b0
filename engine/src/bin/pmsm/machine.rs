//! Choosing a machine on the command line: a JSON table or regular expressions.

use pmsm_engine::dfa::rules::RuleFile;
use pmsm_engine::dfa::{self, Dfa, DfaError, json, regex};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// `--dfa FILE | --regex PATTERN… | --regex-file FILE`, with compile options.
#[derive(clap::Args)]
pub struct MachineArgs {
    /// A machine in the JSON table format.
    #[arg(long, conflicts_with_all = ["regex", "regex_file"])]
    pub dfa: Option<PathBuf>,
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
        let cfg = regex::RegexConfig { full_match: self.full_match, max_states: self.max_states };
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

/// The facts `pmsm info` reports.
pub fn describe(m: &Dfa) -> Value {
    let (ks, ka) = m.padded_bits();
    let classes = m.classes().count();
    let kc = dfa::ceil_log2(classes);
    let n = ks + ka;
    let nc = ks + kc;
    json!({
        "states": m.states(),
        "symbols": m.symbols(),
        "alphabet": match m.alphabet() { dfa::Alphabet::Bytes => "bytes".to_string(), dfa::Alphabet::Chars { chars, .. } => chars.iter().collect::<String>() },
        "start": m.start(),
        "accepting": m.accepting().iter().filter(|a| **a).count(),
        "classes": classes,
        "ks": ks,
        "ka": ka,
        "kc": kc,
        "n": n,
        "n_with_classes": nc,
        "lookup_xor_table_bytes": (1u64 << n) * u64::from(ks.max(1)) / 8,
        "lookup_ring_table_bytes": (1u64 << n) * 8,
    })
}

/// Human-readable form of [`describe`].
pub fn describe_text(v: &Value) -> String {
    format!(
        "states      {}\nsymbols     {} (alphabet: {})\nstart       {}\naccepting   {} states\nclasses     {} symbol classes\npadded      ks = {}, ka = {}, n = ks + ka = {} (N = 2^{})\nwith classes kc = {}, n = {}\ntables      lookup-xor {} bytes (bit-planes), lookup-ring {} bytes",
        v["states"],
        v["symbols"],
        v["alphabet"].as_str().unwrap_or(""),
        v["start"],
        v["accepting"],
        v["classes"],
        v["ks"],
        v["ka"],
        v["n"],
        v["n"],
        v["kc"],
        v["n_with_classes"],
        v["lookup_xor_table_bytes"],
        v["lookup_ring_table_bytes"],
    )
}
