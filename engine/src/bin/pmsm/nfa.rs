//! `pmsm info --path nfa` and `pmsm bench-nfa`: a rule set on the bit-parallel NFA path.

use crate::machine::MachineArgs;
use crate::output::count;
use crate::sets;
use pmsm_engine::cost::{BatchShape, Path, PathChoice};
use pmsm_engine::mixed::MixedSet;
use pmsm_engine::nfa::circuit::Program;
use pmsm_engine::nfa::{NfaConfig, NfaSet, protocol};
use pmsm_engine::transport::Link;
use pmsm_engine::transport::{tcp, tls::Identity};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The set the machine options name, on the NFA path, with its rule ids.
pub fn load(m: &MachineArgs, max_positions: usize) -> Result<(Vec<String>, Vec<String>, NfaSet), String> {
    // Options the NFA path does not evaluate are refused, never ignored.
    if m.full_match {
        return Err("the NFA path answers whether a text contains a match: --full-match is not supported there".into());
    }
    if m.alphabet.is_some() {
        return Err("the NFA path reads bytes: --alphabet is not supported there".into());
    }
    let rules = sets::rules(m).map_err(|e| e.to_string())?;
    let (ids, patterns): (Vec<String>, Vec<String>) = rules.into_iter().unzip();
    let cfg = NfaConfig { max_positions, ..Default::default() };
    let set = NfaSet::compile(&patterns, &cfg).map_err(|e| match &e {
        pmsm_engine::nfa::NfaError::InPattern { index, pattern, error } => {
            format!("rule {} ({pattern:?}): {error}", ids[*index])
        }
        pmsm_engine::nfa::NfaError::Parse { index, pattern, message } => {
            format!("rule {} ({pattern:?}): {message}", ids[*index])
        }
        _ => e.to_string(),
    })?;
    Ok((ids, patterns, set))
}

/// `info --path nfa`: sizes, ANDs and rounds per step, predicted bits per symbol.
pub fn describe(ids: &[String], set: &NfaSet) -> Value {
    let program = Program::new(set);
    let per_rule: Vec<Value> =
        ids.iter().zip(&set.rules).map(|(id, r)| json!({"id": id, "positions": r.len()})).collect();
    json!({"path": "nfa", "cost": program.cost(), "rules": per_rule})
}

/// The text form of [`describe`].
pub fn describe_text(v: &Value) -> String {
    let c = &v["cost"];
    let largest =
        v["rules"].as_array().map_or(0, |r| r.iter().filter_map(|x| x["positions"].as_u64()).max().unwrap_or(0));
    format!(
        "NFA path: {} rules, {} positions (largest rule {largest}), {} symbol classes\n\
         ANDs per step: {} (first step {}, release {})\n\
         rounds per step: {} AND layers (first step {}, release {}), plus one symbol-lookup round per run\n\
         predicted bits per symbol: server to server {} each way, dealer to server 1 {}",
        c["rules"],
        c["positions"],
        c["classes"],
        c["ands"][1],
        c["ands"][0],
        c["ands"][2],
        c["rounds"][1],
        c["rounds"][0],
        c["rounds"][2],
        c["server_bits_per_symbol"],
        c["dealer_bits_per_symbol"]
    )
}

/// `bench-nfa`: a private run on the texts (one per line) with each rule on its path
/// under `choice` (`nfa`: the whole set as one circuit; `auto`: a mixed set, both parts
/// at once), every hit checked against `regex::bytes`; throughput and measured bits per
/// input byte on every link. Rules the chosen path refuses are listed and left out.
pub fn bench(
    m: &MachineArgs,
    texts: &[PathBuf],
    max_positions: usize,
    repeat: usize,
    choice: PathChoice,
    tcp: bool,
) -> Result<Value, String> {
    let lines = crate::paths::texts(texts)?;
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let bytes: usize = refs.iter().map(|t| t.len()).sum();
    let shape = BatchShape::of(&refs);
    let rules = crate::paths::rule_paths(m, max_positions, shape)?;
    let all: Vec<(String, String)> = rules.iter().map(|r| (r.id.clone(), r.pattern.clone())).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let set = MixedSet::new(rules, choice, shape, m.max_states, threads).map_err(|e| e.to_string())?;
    let patterns: Vec<&str> =
        set.ids().iter().map(|id| all.iter().find(|(i, _)| i == id).map_or("", |(_, p)| p.as_str())).collect();
    let oracles: Vec<regex::bytes::Regex> = patterns
        .iter()
        .map(|p| regex::bytes::Regex::new(p).map_err(|e| format!("{p}: {e}")))
        .collect::<Result<_, _>>()?;
    let plain_set = regex::bytes::RegexSet::new(&patterns).map_err(|e| e.to_string())?;
    // The second pass is timed: the first builds the set's lazy DFA.
    let mut plain_hits = 0;
    let mut plain_s = 0.0;
    for _ in 0..2 {
        let t0 = std::time::Instant::now();
        plain_hits = refs.iter().map(|t| plain_set.matches(t).iter().count()).sum();
        plain_s = t0.elapsed().as_secs_f64();
    }
    // Over tcp: the NFA part's four parties on loopback TLS connections in this process.
    let scratch = if tcp {
        if set.dfa_engine().is_some() {
            return Err("over tcp only the NFA path runs here: add --path nfa (the DFA path over tcp is pmsm bench --transport tcp)".into());
        }
        Some(crate::bench::tcp::Scratch::new()?)
    } else {
        None
    };
    let run = || -> Result<pmsm_engine::mixed::MixedReport, String> {
        let Some(scratch) = &scratch else { return set.run_texts(&refs).map_err(|e| e.to_string()) };
        let identity = |role| Identity::load(scratch.certs(), role);
        let net = tcp::loopback(identity, protocol::LINK_DEPTH, protocol::DEALER_DEPTH).map_err(|e| e.to_string())?;
        let program = set.nfa_program().expect("no DFA part: every rule is on the NFA path");
        let r = protocol::run_on(program, &refs, net).map_err(|e| e.to_string())?;
        Ok(pmsm_engine::mixed::MixedReport { hits: r.hits, elapsed: r.elapsed, bytes: r.bytes, dfa_bytes: [0; 8] })
    };
    let mut best: Option<pmsm_engine::mixed::MixedReport> = None;
    for _ in 0..repeat.max(1) {
        let r = run()?;
        if let Some(s) = scratch.as_ref().and_then(|s| s.interrupted()) {
            return Err(format!("interrupted by signal {s}"));
        }
        for (i, t) in refs.iter().enumerate() {
            for (k, re) in oracles.iter().enumerate() {
                if r.hits[i][k] != re.is_match(t) {
                    let id = &set.ids()[k];
                    return Err(format!("text {} rule {id}: the private run disagrees with regex::bytes", i + 1));
                }
            }
        }
        if best.as_ref().is_none_or(|b| r.elapsed < b.elapsed) {
            best = Some(r);
        }
    }
    let r = best.expect("at least one run");
    let hits: usize = r.hits.iter().map(|h| h.iter().filter(|x| **x).count()).sum();
    let secs = r.elapsed.as_secs_f64();
    let per_link: serde_json::Map<String, Value> =
        Link::ALL.iter().map(|l| (l.name().to_string(), json!(r.link_bytes(*l) as f64 * 8.0 / bytes as f64))).collect();
    let on = |p: Path| set.paths().iter().filter(|x| **x == p).count();
    let dfa_part =
        set.dfa_engine().and_then(|e| e.set()).map(|s| json!({"rules": on(Path::Dfa), "groups": s.groups().len()}));
    let nfa_part = set.nfa_program().map(
        |p| json!({"rules": on(Path::Nfa), "ands": p.step.and_count(), "layers": p.step.rounds(), "cost": p.cost()}),
    );
    Ok(json!({
        "path": choice.name(),
        "transport": if tcp { "tcp" } else { "inproc" },
        "rules": set.ids().len(),
        "refused": set.refused().iter().map(|r| json!({"id": r.id, "reason": r.reason})).collect::<Vec<_>>(),
        "dfa_part": dfa_part,
        "nfa_part": nfa_part,
        "texts": refs.len(),
        "input_bytes": bytes,
        "hits": hits,
        "plain_hits": plain_hits,
        "seconds": secs,
        "bytes_per_second": bytes as f64 / secs,
        "regexset_bytes_per_second": bytes as f64 / plain_s,
        "bits_per_input_byte": per_link,
        "verified": true,
    }))
}

/// The text form of [`bench()`]'s result.
pub fn bench_text(v: &Value) -> String {
    let u = |x: &Value| x.as_u64().unwrap_or(0) as usize;
    let mut parts = Vec::new();
    if let Some(d) = v["dfa_part"].as_object() {
        parts.push(format!("DFA part {} in {}", count(u(&d["rules"]), "rule"), count(u(&d["groups"]), "group")));
    }
    if let Some(n) = v["nfa_part"].as_object() {
        parts.push(format!(
            "NFA part {}, {} and {} a step",
            count(u(&n["rules"]), "rule"),
            count(u(&n["ands"]), "AND"),
            count(u(&n["layers"]), "AND layer")
        ));
    }
    let refused = v["refused"].as_array().map_or(0, Vec::len);
    let mut s = format!(
        "path {} ({}), {} on {} texts ({} bytes; {}; {} refused): {:.3} s, {:.0} bytes/s (plaintext RegexSet {:.0} bytes/s); {} hits, all equal to regex::bytes\nbits per input byte, per link:\n",
        v["path"].as_str().unwrap_or(""),
        v["transport"].as_str().unwrap_or(""),
        count(u(&v["rules"]), "rule"),
        v["texts"],
        v["input_bytes"],
        parts.join(", "),
        refused,
        v["seconds"].as_f64().unwrap_or(0.0),
        v["bytes_per_second"].as_f64().unwrap_or(0.0),
        v["regexset_bytes_per_second"].as_f64().unwrap_or(0.0),
        v["hits"],
    );
    if let Some(m) = v["bits_per_input_byte"].as_object() {
        for (k, x) in m {
            s.push_str(&format!("  {k:14} {:>14.1}\n", x.as_f64().unwrap_or(0.0)));
        }
    }
    for r in v["refused"].as_array().into_iter().flatten() {
        s.push_str(&format!("refused: {} ({})\n", r["id"].as_str().unwrap_or(""), r["reason"].as_str().unwrap_or("")));
    }
    s
}
