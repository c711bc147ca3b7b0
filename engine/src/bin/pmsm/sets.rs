//! Machine sets on the command line: `--gitleaks FILE`, or `--regex-file` / `--regex`
//! with a set policy (`--reveal any|rules|count`); rule ids are gitleaks ids, a rule
//! file's line numbers, or the position (from 1) of each `--regex`.

use crate::machine::MachineArgs;
use crate::output::count;
use pmsm_engine::cost::CostModel;
use pmsm_engine::dfa::gitleaks::GitleaksConfig;
use pmsm_engine::dfa::regex::RegexConfig;
use pmsm_engine::dfa::rules::RuleFile;
use pmsm_engine::dfa::set::{Answer, MachineSet, Policy, Refused, compile_rules};
use pmsm_engine::dfa::{DfaError, ceil_log2};
use pmsm_engine::protocol::set::{group, step_bits};
use pmsm_engine::protocol::{ClassMode, Protocol};
use serde_json::{Value, json};

/// A compiled set and the rules it refused.
pub struct LoadedSet {
    /// The set.
    pub set: MachineSet,
    /// Rules without a machine, with the reason.
    pub refused: Vec<Refused>,
    /// Every rule in file order: `{"id", "states", "classes"}` or `{"id", "refused"}`.
    pub rows: Vec<Value>,
}

/// The `(id, pattern)` rules the machine options name.
pub fn rules(m: &MachineArgs) -> Result<Vec<(String, String)>, DfaError> {
    if let Some(path) = &m.gitleaks {
        let config = GitleaksConfig::read(path)?;
        return Ok(config.rules.iter().map(|r| (r.id.clone(), r.pattern())).collect());
    }
    let mut rules: Vec<(String, String)> =
        m.regex.iter().enumerate().map(|(i, p)| (format!("{}", i + 1), p.clone())).collect();
    if let Some(path) = &m.regex_file {
        let file = RuleFile::read(path)?;
        rules.extend(file.rules().iter().map(|r| (r.line.to_string(), r.pattern.clone())));
    }
    if rules.is_empty() {
        return Err(DfaError::Field {
            file: "command line".into(),
            field: "machine".into(),
            message: "a rule set needs --gitleaks FILE, --regex-file FILE or --regex PATTERN".into(),
        });
    }
    Ok(rules)
}

/// Compiles each rule alone and groups those that compile for `policy`.
pub fn load(m: &MachineArgs, policy: Policy, protocol: Protocol, classes: ClassMode) -> Result<LoadedSet, DfaError> {
    let cfg = RegexConfig { full_match: m.full_match, max_states: m.max_states, ..Default::default() };
    let all = rules(m)?;
    let (ok, mut refused) = compile_rules(&all, &cfg);
    let mut rows: Vec<Value> = all
        .iter()
        .map(|(id, _)| match ok.iter().find(|r| &r.id == id) {
            Some(r) => json!({"id": id, "states": r.dfa.states(), "classes": r.dfa.classes().count()}),
            None => {
                let reason = refused.iter().find(|r| &r.id == id).map_or("", |r| r.reason.as_str());
                json!({"id": id, "refused": reason})
            }
        })
        .collect();
    if let Some(path) = &m.gitleaks {
        for id in GitleaksConfig::read(path)?.without_regex {
            rows.push(json!({"id": id, "refused": "no regex (a path-only rule)"}));
            refused.push(Refused { id, reason: "no regex (a path-only rule)".into() });
        }
    }
    if ok.is_empty() {
        let why = refused.first().map_or(String::new(), |r| format!(" (rule {}: {})", r.id, r.reason));
        return Err(DfaError::Field {
            file: "rule set".into(),
            field: "rules".into(),
            message: format!("no rule compiles{why}"),
        });
    }
    let set = group(ok, policy, m.grouping, protocol, classes, m.max_states)?;
    Ok(LoadedSet { set, refused, rows })
}

/// What `pmsm info` reports on a set: every group (its rules, states, classes, index
/// bits n, predicted ns per symbol), the refused rules, and the predicted cost per
/// symbol of the set.
pub fn describe(loaded: &LoadedSet, protocol: Protocol, classes: ClassMode) -> Value {
    let set = &loaded.set;
    let model = CostModel::of(protocol);
    let groups: Vec<Value> = set
        .groups()
        .iter()
        .map(|g| {
            let (s, a, c) = (g.dfa.states(), g.dfa.symbols(), g.dfa.classes().count());
            json!({
                "rules": g.rules.iter().map(|&r| set.ids()[r].clone()).collect::<Vec<_>>(),
                "states": s,
                "classes": c,
                "n": step_bits(s, a, c, classes),
                "predicted_ns_per_symbol": model.machine(s, a, c, classes),
            })
        })
        .collect();
    json!({
        "policy": set.policy().name(),
        "protocol": protocol.name(),
        "rules": set.ids().len(),
        "refused": loaded.refused.iter().map(|r| json!({"id": r.id, "reason": r.reason})).collect::<Vec<_>>(),
        "groups": groups,
        "predicted_ns_per_symbol": model.set(set, classes),
        "cost_model": {"small_lookup_ns": model.small_lookup_ns, "small_entry_ns": model.small_entry_ns,
            "lookup_ns": model.lookup_ns, "entry_ns": model.entry_ns},
        "output_bits": match set.policy() {
            Policy::Any => 1,
            Policy::Count => ceil_log2(set.ids().len() + 1).max(1) as usize,
            Policy::Rules => set.ids().len(),
        },
    })
}

/// The text form of [`describe`].
pub fn describe_text(v: &Value) -> String {
    let mut out = String::new();
    for r in v["refused"].as_array().into_iter().flatten() {
        out.push_str(&format!("refused {}: {}\n", r["id"].as_str().unwrap_or(""), r["reason"].as_str().unwrap_or("")));
    }
    let groups = v["groups"].as_array().cloned().unwrap_or_default();
    for (i, g) in groups.iter().enumerate() {
        let ids: Vec<&str> = g["rules"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        out.push_str(&format!(
            "group {i}: n = {}, {}, {}, {:.0} ns/symbol: {}\n",
            g["n"],
            count(g["states"].as_u64().unwrap_or(0) as usize, "state"),
            count(g["classes"].as_u64().unwrap_or(0) as usize, "class"),
            g["predicted_ns_per_symbol"].as_f64().unwrap_or(0.0),
            ids.join(", "),
        ));
    }
    out.push_str(&format!(
        "{} rules in {} ({} refused), policy {}, {}: predicted {:.0} ns per symbol ({:.0} bytes/s)",
        v["rules"],
        count(groups.len(), "group"),
        v["refused"].as_array().map_or(0, Vec::len),
        v["policy"].as_str().unwrap_or(""),
        v["protocol"].as_str().unwrap_or(""),
        v["predicted_ns_per_symbol"].as_f64().unwrap_or(0.0),
        1e9 / v["predicted_ns_per_symbol"].as_f64().unwrap_or(1.0),
    ));
    out
}

/// One instance's answer as JSON fields: `"rules": [ids…]`, `"accept"` or `"count"`.
pub fn answer_json(a: &Answer, ids: &[String]) -> (&'static str, Value) {
    match a {
        Answer::Rules(hit) => {
            ("rules", json!(ids.iter().zip(hit).filter(|(_, h)| **h).map(|(id, _)| id.as_str()).collect::<Vec<_>>()))
        }
        Answer::Any(b) => ("accept", json!(b)),
        Answer::Count(c) => ("count", json!(c)),
    }
}

/// One instance's answer as text.
pub fn answer_text(a: &Answer, ids: &[String]) -> String {
    match a {
        Answer::Rules(hit) => {
            let names: Vec<&str> = ids.iter().zip(hit).filter(|(_, h)| **h).map(|(id, _)| id.as_str()).collect();
            if names.is_empty() { "no rule".into() } else { format!("rules {}", names.join(", ")) }
        }
        Answer::Any(b) => (if *b { "accept" } else { "reject" }).into(),
        Answer::Count(c) => format!("count {c}"),
    }
}
