//! Benchmark runs over machine sets (`machine = { gitleaks = "…" }` or a `regex_file`
//! with a `policy`): every rule compiled alone, grouped by each of the run's
//! `groupings`, run privately on the texts, every answer checked against the `regex`
//! crate (each rule's `is_match`), and beside it the plaintext `regex::bytes::RegexSet`
//! on the same texts.

use super::profile::{Checked, err};
use super::{Measured, bits_per_transition};
use pmsm_engine::Engine;
use pmsm_engine::cost::CostModel;
use pmsm_engine::dfa::gitleaks::GitleaksConfig;
use pmsm_engine::dfa::regex::RegexConfig;
use pmsm_engine::dfa::rules::RuleFile;
use pmsm_engine::dfa::set::{Answer, Grouping, Policy, compile_rules};
use pmsm_engine::input::read_inputs;
use pmsm_engine::protocol::set::group;
use serde_json::json;
use std::time::Instant;

/// Whether run `i` is over a machine set.
pub fn is_set(checked: &Checked, i: usize) -> bool {
    let r = &checked.profile.run[i];
    r.machine.gitleaks.is_some() || r.policy.is_some()
}

/// Seconds the plaintext `RegexSet` is timed for at least (repeated over the texts).
const PLAINTEXT_SECONDS: f64 = 0.5;

/// Measures set run `i` under every protocol and grouping it names.
pub fn measure(checked: &Checked, i: usize) -> Result<Vec<Measured>, String> {
    let spec = &checked.profile.run[i];
    let key = format!("run[{i}]");
    let bad = |e: &dyn std::fmt::Display| err(&checked.file, &key, e);
    let m = &spec.machine;
    let rules: Vec<(String, String)> = if let Some(p) = &m.gitleaks {
        let config = GitleaksConfig::read(&checked.path(p)).map_err(|e| bad(&e))?;
        config.rules.iter().map(|r| (r.id.clone(), r.pattern())).collect()
    } else if let Some(p) = &m.regex_file {
        let file = RuleFile::read(&checked.path(p)).map_err(|e| bad(&e))?;
        file.rules().iter().map(|r| (r.line.to_string(), r.pattern.clone())).collect()
    } else {
        return Err(bad(&"a set run needs machine.gitleaks or machine.regex_file"));
    };
    let policy: Policy = spec.policy.as_deref().unwrap_or("rules").parse().map_err(|e: String| bad(&e))?;
    let max_states = spec.max_states.unwrap_or(1 << 16);
    let cfg = RegexConfig { full_match: m.full_match, max_states, ..Default::default() };
    let started = Instant::now();
    let (ok, refused) = compile_rules(&rules, &cfg);
    let compile_seconds = started.elapsed().as_secs_f64();
    eprintln!("pmsm bench: {}: {} of {} rules compile ({compile_seconds:.1} s)", spec.label, ok.len(), rules.len());
    let kept: Vec<&(String, String)> = rules.iter().filter(|r| ok.iter().any(|o| o.id == r.0)).collect();
    // The texts, cycled up to the batch.
    let path = checked.path(spec.inputs.file.as_deref().ok_or_else(|| bad(&"a set run reads inputs.file"))?);
    let lines = read_inputs(&path).map_err(|e| bad(&e))?;
    let batch = spec.inputs.batch.unwrap_or(lines.len());
    let texts: Vec<Vec<u8>> = (0..batch).map(|n| lines[n % lines.len()].clone()).collect();
    let bytes: usize = texts.iter().map(Vec::len).sum();
    // The plaintext references: each rule's is_match (the answers) and the RegexSet (the
    // figure beside the private run).
    let oracles: Vec<regex::bytes::Regex> =
        kept.iter().map(|r| regex::bytes::Regex::new(&r.1)).collect::<Result<_, _>>().map_err(|e| bad(&e))?;
    let want: Vec<Vec<bool>> = texts.iter().map(|t| oracles.iter().map(|o| o.is_match(t)).collect()).collect();
    let plain = regex::bytes::RegexSet::new(kept.iter().map(|r| r.1.as_str())).map_err(|e| bad(&e))?;
    for (t, w) in texts.iter().zip(&want) {
        let m = plain.matches(t);
        if (0..kept.len()).any(|k| m.matched(k) != w[k]) {
            return Err(bad(&"the RegexSet and the rules' is_match disagree"));
        }
    }
    let (mut passes, t0) = (0usize, Instant::now());
    let mut hits = 0usize;
    while t0.elapsed().as_secs_f64() < PLAINTEXT_SECONDS || passes == 0 {
        hits += texts.iter().map(|t| plain.matches(t).iter().count()).sum::<usize>();
        passes += 1;
    }
    std::hint::black_box(hits);
    let plaintext_bytes_per_sec = (bytes * passes) as f64 / t0.elapsed().as_secs_f64();
    let groupings: Vec<Grouping> = match &spec.groupings {
        Some(g) => g.iter().map(|s| s.parse()).collect::<Result<_, String>>().map_err(|e| bad(&e))?,
        None => vec![Grouping::Cost],
    };
    let mut out = Vec::new();
    for protocol in checked.protocols(i) {
        let model = CostModel::of(protocol);
        for &grouping in &groupings {
            let classes = checked.classes(i);
            let t = Instant::now();
            let set = group(ok.clone(), policy, grouping, protocol, classes, max_states).map_err(|e| bad(&e))?;
            let group_seconds = t.elapsed().as_secs_f64();
            let predicted = model.set(&set, classes);
            let ns: Vec<u32> = set
                .groups()
                .iter()
                .map(|g| {
                    let d = &g.dfa;
                    pmsm_engine::protocol::set::step_bits(d.states(), d.symbols(), d.classes().count(), classes)
                })
                .collect();
            let groups = set.groups().len();
            let mut builder = Engine::set_builder(set).protocol(protocol).classes(classes);
            if let Some(c) = checked.profile.chunk {
                builder = builder.chunk(c);
            }
            let engine = builder.build().map_err(|e| bad(&e))?;
            let report = engine.run_texts(&texts).map_err(|e| bad(&e))?;
            for (n, (got, w)) in report.answers.iter().zip(&want).enumerate() {
                let expected = match policy {
                    Policy::Rules => Answer::Rules(w.clone()),
                    Policy::Any => Answer::Any(w.iter().any(|&h| h)),
                    Policy::Count => Answer::Count(w.iter().filter(|&&h| h).count() as u32),
                };
                if *got != expected {
                    return Err(bad(&format!("instance {n} differs from the regex crate")));
                }
            }
            let bytes_per_sec = bytes as f64 / report.seconds.max(1e-12);
            let value = json!({
                "label": spec.label,
                "protocol": protocol.name(),
                "transport": "inproc",
                "policy": policy.name(),
                "grouping": grouping.name(),
                "rules": ok.len(),
                "refused": refused.iter().map(|r| json!({"id": r.id, "reason": r.reason})).collect::<Vec<_>>(),
                "groups": groups,
                "group_n": ns,
                "states": serde_json::Value::Null,
                "symbols": 256,
                "table_bits": ns.iter().max(),
                "batch": texts.len(),
                "steps": texts.iter().map(Vec::len).max().unwrap_or(0),
                "transitions": report.transitions,
                "seconds": report.seconds,
                "transitions_per_sec": report.transitions as f64 / report.seconds.max(1e-12),
                "bytes_per_sec": bytes_per_sec,
                "plaintext_bytes_per_sec": plaintext_bytes_per_sec,
                "plaintext_ratio": plaintext_bytes_per_sec / bytes_per_sec,
                "measured_ns_per_symbol": report.seconds * 1e9 / report.transitions.max(1) as f64,
                "predicted_ns_per_symbol": predicted,
                "compile_seconds": compile_seconds,
                "group_seconds": group_seconds,
                "rounds": report.rounds,
                "bits_per_transition": bits_per_transition(&report.bytes, report.transitions),
                "peak_rss_bytes": pmsm_engine::process::peak_rss_bytes(),
                "verified": true,
            });
            eprintln!(
                "pmsm bench: {:<30} {:<11} {:<5} {groups:>3} groups {bytes_per_sec:>10.0} bytes/s (plaintext RegexSet {plaintext_bytes_per_sec:.0}), predicted {predicted:.0} ns/byte, measured {:.0}",
                spec.label,
                protocol.name(),
                grouping.name(),
                value["measured_ns_per_symbol"].as_f64().unwrap_or(0.0),
            );
            out.push(Measured { label: format!("{} ({})", spec.label, grouping.name()), value });
        }
    }
    Ok(out)
}
