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
