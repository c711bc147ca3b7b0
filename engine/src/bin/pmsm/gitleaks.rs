//! `pmsm info --gitleaks FILE` and `pmsm samples`: gitleaks rules one by one, and
//! texts with secrets planted from the rules themselves.

use super::Failure;
use pmsm_engine::dfa::gitleaks::{GitleaksConfig, GitleaksRule};
use pmsm_engine::dfa::sample::sample;
use pmsm_kernels::rng::WorkloadRng;
use regex_automata::hybrid::regex::{Cache, Regex};
use regex_automata::util::syntax;
use regex_automata::{Input, nfa::thompson};
use serde_json::Value;
use std::path::Path;

/// One line per rule (`{"id", "states", "classes"}` or `{"id", "refused"}` rows) and a
/// summary.
pub fn info_text(rows: &[Value]) -> String {
    let mut out = String::new();
    for r in rows {
        let id = r["id"].as_str().unwrap_or("");
        match r["states"].as_u64() {
            Some(n) => out.push_str(&format!("{id}\t{n} states, {} classes\n", r["classes"])),
            None => out.push_str(&format!("{id}\trefused: {}\n", r["refused"].as_str().unwrap_or(""))),
        }
    }
    let ok = rows.iter().filter(|r| r["states"].is_u64()).count();
    out.push_str(&format!("{ok} of {} rules compile", rows.len()));
    out
}

/// A rule's regex as Go reads it (ASCII), for checking samples: `regex-automata`'s
/// lazy DFA, which answers as `regex::bytes::Regex` does.
fn checker(rule: &GitleaksRule) -> Option<(Regex, Cache)> {
    let re = Regex::builder()
        .syntax(syntax::Config::new().utf8(false))
        .thompson(thompson::Config::new().utf8(false))
        .build(&rule.pattern())
        .ok()?;
    let cache = re.create_cache();
    Some((re, cache))
}

fn matches(check: &mut (Regex, Cache), text: &[u8]) -> bool {
    check.0.try_search(&mut check.1, &Input::new(text)).ok().flatten().is_some()
}

/// Words of the clean texts (and around planted secrets).
const WORDS: &[&str] = &[
    "the", "build", "log", "of", "service", "started", "at", "noon", "user", "deploy", "ok", "cache", "warm",
    "request", "took", "ms", "retry", "queue", "empty", "config", "loaded", "from", "disk", "worker", "idle", "done",
];

/// `lo` to `lo + spread - 1` random words.
fn words(rng: &mut WorkloadRng, lo: u64, spread: u64) -> String {
    let n = lo + rng.below(spread);
    (0..n).map(|_| WORDS[rng.below(WORDS.len() as u64) as usize]).collect::<Vec<_>>().join(" ")
}

/// Planted texts (`positives.txt`, one per line, with the rule of each line in
/// `positives-rules.txt`) and clean texts (`negatives.txt`) in `dir`; returns the
/// counts and the ids of rules no sample could be made for.
pub fn samples(path: &Path, dir: &Path, per_rule: usize, seed: u64) -> Result<(usize, usize, Vec<String>), Failure> {
    let config = GitleaksConfig::read(path)?;
    let mut rng = WorkloadRng::seed_from_u64(seed);
    let (mut positives, mut ids, mut missing) = (String::new(), String::new(), Vec::new());
    let mut checks = Vec::new();
    for rule in &config.rules {
        let (Some(mut check), Ok(hir)) =
            (checker(rule), syntax::parse_with(&rule.pattern(), &syntax::Config::new().utf8(false)))
        else {
            missing.push(rule.id.clone());
            continue;
        };
        let mut made = 0;
        for _ in 0..per_rule * 20 {
            if made == per_rule {
                break;
            }
            let secret = sample(&hir, &mut rng);
            let mut text = format!("{} ", words(&mut rng, 1, 4)).into_bytes();
            text.extend(&secret);
            text.extend(format!(" {}", words(&mut rng, 1, 4)).bytes());
            // One line of text each: no line breaks, valid UTF-8.
            let Ok(text) = String::from_utf8(text) else { continue };
            if text.contains(['\n', '\r']) || !matches(&mut check, text.as_bytes()) {
                continue;
            }
            positives.push_str(&text);
            positives.push('\n');
            ids.push_str(&rule.id);
            ids.push('\n');
            made += 1;
        }
        if made == 0 {
            missing.push(rule.id.clone());
        }
        checks.push(check);
    }
    let mut negatives = String::new();
    let mut clean = 0;
    while clean < 200 {
        let text = words(&mut rng, 3, 10);
        if checks.iter_mut().all(|c| !matches(c, text.as_bytes())) {
            negatives.push_str(&text);
            negatives.push('\n');
            clean += 1;
        }
    }
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| Failure { message: format!("{}: {e}", p.display()), code: 1 })
    };
    write("positives.txt", &positives)?;
    write("positives-rules.txt", &ids)?;
    write("negatives.txt", &negatives)?;
    Ok((positives.lines().count(), clean, missing))
}
