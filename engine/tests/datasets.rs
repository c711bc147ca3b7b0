//! Every dataset loads and its samples give the documented answers.

use pmsm_engine::dfa::{Dfa, json, regex};
use pmsm_engine::input::read_inputs;
use std::path::{Path, PathBuf};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets").join(rel)
}

fn rules(rel: &str) -> Vec<String> {
    std::fs::read_to_string(data(rel))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

fn answers(m: &Dfa, rel: &str) -> Vec<bool> {
    read_inputs(&data(rel))
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, t)| m.is_accepting(m.run(&m.encode(t, i).unwrap())))
        .collect()
}

#[test]
fn seed_machine() {
    let m = json::load(&data("ab.json")).unwrap();
    assert_eq!(m.run(&m.encode(b"aaa", 0).unwrap()), 3);
    assert!(m.is_accepting(m.run(&m.encode(b"ab", 0).unwrap())));
    assert!(!m.is_accepting(m.run(&m.encode(b"abab", 0).unwrap())));
    // The compiled full match of "ab" is the same machine up to state names.
    let c = regex::compile(&["ab".into()], &regex::RegexConfig { full_match: true, ..Default::default() }).unwrap();
    let c = regex::restrict_to_chars(&c, "ab").unwrap();
    assert!(pmsm_engine::dfa::minimize::equivalent(&m, &c).unwrap());
}

#[test]
fn dlp_rules_flag_positives_only() {
    let m = regex::compile(&rules("dlp/rules.txt"), &regex::RegexConfig::default()).unwrap();
    assert_eq!(m.states(), 781);
    assert!(answers(&m, "dlp/positives.txt").iter().all(|a| *a));
    let neg = answers(&m, "dlp/negatives.txt");
    assert_eq!(neg.len(), 12, "eleven near-misses and one empty line");
    assert!(neg.iter().all(|a| !a));
    assert!(answers(&m, "dlp/extended-positives.txt").iter().all(|a| !a));
}

#[test]
fn extended_dlp_rules_also_flag_tokens() {
    let m = regex::compile(&rules("dlp/rules-extended.txt"), &regex::RegexConfig::default()).unwrap();
    assert_eq!(m.states(), 5134);
    assert!(answers(&m, "dlp/positives.txt").iter().all(|a| *a));
    assert!(answers(&m, "dlp/extended-positives.txt").iter().all(|a| *a));
    assert!(answers(&m, "dlp/negatives.txt").iter().all(|a| !a));
}

#[test]
fn dna_motifs() {
    let m = regex::compile(&rules("dna/motifs.txt"), &regex::RegexConfig::default()).unwrap();
    let m = regex::restrict_to_chars(&m, "ACGT").unwrap();
    assert_eq!((m.states(), m.symbols()), (36, 4));
    let pos = answers(&m, "dna/positives.txt");
    let neg = answers(&m, "dna/negatives.txt");
    assert_eq!((pos.len(), neg.len()), (8, 8));
    assert!(pos.iter().all(|a| *a) && neg.iter().all(|a| !a));
}

/// The gitleaks samples (written by `pmsm samples`): every planted text matches its
/// rule and no clean text matches any rule, by `regex::bytes` in ASCII mode; and every
/// rule that compiles within 2,000 states answers as `regex::bytes` on all of them.
#[test]
fn gitleaks_samples_match_their_rules() {
    use pmsm_engine::dfa::gitleaks::GitleaksConfig;
    let config = GitleaksConfig::read(&data("gitleaks/gitleaks.toml")).unwrap();
    assert_eq!(config.rules.len(), 221);
    let oracle: std::collections::HashMap<&str, ::regex::bytes::Regex> = config
        .rules
        .iter()
        .map(|r| (r.id.as_str(), ::regex::bytes::Regex::new(&r.pattern()).unwrap_or_else(|e| panic!("{}: {e}", r.id))))
        .collect();
    let positives = read_inputs(&data("gitleaks/positives.txt")).unwrap();
    let ids = std::fs::read_to_string(data("gitleaks/positives-rules.txt")).unwrap();
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(positives.len(), ids.len());
    for (text, id) in positives.iter().zip(&ids) {
        assert!(oracle[id].is_match(text), "{id}: {:?}", String::from_utf8_lossy(text));
    }
    let planted: std::collections::HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(planted.len(), config.rules.len(), "every rule has a planted text");
    let negatives = read_inputs(&data("gitleaks/negatives.txt")).unwrap();
    assert!(!negatives.is_empty());
    for text in &negatives {
        let hit: Vec<&&str> = oracle.iter().filter(|(_, r)| r.is_match(text)).map(|(id, _)| id).collect();
        assert!(hit.is_empty(), "{hit:?} match the clean text {:?}", String::from_utf8_lossy(text));
    }
    let cfg = regex::RegexConfig { max_states: 2_000, ..Default::default() };
    let mut compiled = 0;
    for (rule, m) in config.compile_each(&cfg) {
        let Ok(m) = m else { continue };
        compiled += 1;
        for text in positives.iter().chain(&negatives) {
            let got = m.is_accepting(m.run(&m.encode(text, 0).unwrap()));
            assert_eq!(
                got,
                oracle[rule.id.as_str()].is_match(text),
                "{}: {:?}",
                rule.id,
                String::from_utf8_lossy(text)
            );
        }
    }
    assert!(compiled > 50, "{compiled} rules compile within 2,000 states");
}
