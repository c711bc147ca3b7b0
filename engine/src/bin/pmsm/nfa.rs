//! `pmsm info --path nfa` and `pmsm bench-nfa`: a rule set on the bit-parallel NFA path.

use crate::machine::MachineArgs;
use crate::sets;
use pmsm_engine::nfa::circuit::Program;
use pmsm_engine::nfa::{NfaConfig, NfaSet, protocol};
use pmsm_engine::transport::Link;
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

/// `bench-nfa`: a private run on the texts (one per line), every hit checked against
/// `regex::bytes`; throughput and measured bits per input byte on every link.
pub fn bench(m: &MachineArgs, texts: &[PathBuf], max_positions: usize, repeat: usize) -> Result<Value, String> {
    let (ids, patterns, set) = load(m, max_positions)?;
    let lines = crate::paths::texts(texts)?;
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let bytes: usize = refs.iter().map(|t| t.len()).sum();
    let program = Program::new(&set);
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
    let mut best: Option<protocol::NfaReport> = None;
    for _ in 0..repeat.max(1) {
        let r = protocol::run(&program, &refs, None).map_err(|e| e.to_string())?;
        for (i, t) in refs.iter().enumerate() {
            for (k, re) in oracles.iter().enumerate() {
                if r.hits[i][k] != re.is_match(t) {
                    return Err(format!("text {} rule {}: the private run disagrees with regex::bytes", i + 1, ids[k]));
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
    Ok(json!({
        "rules": ids.len(),
        "texts": refs.len(),
        "input_bytes": bytes,
        "hits": hits,
        "plain_hits": plain_hits,
        "seconds": secs,
        "bytes_per_second": bytes as f64 / secs,
        "regexset_bytes_per_second": bytes as f64 / plain_s,
        "bits_per_input_byte": per_link,
        "cost": program.cost(),
        "verified": true,
    }))
}

/// The text form of [`bench()`]'s result.
pub fn bench_text(v: &Value) -> String {
    let mut s = format!(
        "NFA path, {} rules on {} texts ({} bytes): {:.3} s, {:.0} bytes/s (plaintext RegexSet {:.0} bytes/s); {} hits, all equal to regex::bytes\n\
         ANDs per step {}, rounds per step {}\nbits per input byte, per link:\n",
        v["rules"],
        v["texts"],
        v["input_bytes"],
        v["seconds"].as_f64().unwrap_or(0.0),
        v["bytes_per_second"].as_f64().unwrap_or(0.0),
        v["regexset_bytes_per_second"].as_f64().unwrap_or(0.0),
        v["hits"],
        v["cost"]["ands"][1],
        v["cost"]["rounds"][1]
    );
    if let Some(m) = v["bits_per_input_byte"].as_object() {
        for (k, x) in m {
            s.push_str(&format!("  {k:14} {:>14.1}\n", x.as_f64().unwrap_or(0.0)));
        }
    }
    s
}
