//! The regex compiler agrees with the `regex` crate's `is_match` (contains) and with an
//! anchored `^(?:…)$` (full match), on many patterns × random and adversarial inputs.

use pmsm_engine::dfa::regex::{RegexConfig, compile};
use pmsm_kernels::rng::{RngCore, WorkloadRng};

const PATTERNS: &[&str] = &[
    "ab",
    "a|b",
    "a*",
    "a+b+",
    "(ab)*c",
    "[a-c]{2,4}",
    "^ab",
    "ab$",
    "^a.c$",
    "a.c",
    "(?s)a.c",
    "x?y?z?",
    "(?i)AbC",
    "[^a]b",
    "\\d{3}",
    "[0-9]+-[0-9]+",
    "(?-u:\\b)cat(?-u:\\b)",
    "(?-u:\\B)at",
    "é+",
    "\\w+@\\w+",
    "(a|ab)(c|bcd)",
    "a{0}b",
    "",
    "(?m)^b$",
    "[[:alpha:]]{2}[[:digit:]]",
    "(?-u:[\\x80-\\xff])",
];

/// Inputs drawn from bytes that matter to the patterns, plus some UTF-8 and raw bytes.
fn inputs(rng: &mut WorkloadRng) -> Vec<Vec<u8>> {
    let pool: &[u8] = b"abcxyzABC0123-@ \n.\xc3\xa9\xff";
    let mut v: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"ab".to_vec(),
        b"a".repeat(50),
        b"cat".to_vec(),
        b"a cat!".to_vec(),
        "ééé".as_bytes().to_vec(),
        b"\xff\xfe".to_vec(),
        b"a\nb\nc".to_vec(),
        b"12-34".to_vec(),
        b"ab3".to_vec(),
    ];
    for _ in 0..300 {
        let len = rng.below(12) as usize;
        v.push((0..len).map(|_| pool[rng.below(pool.len() as u64) as usize]).collect());
    }
    for _ in 0..50 {
        let len = rng.below(8) as usize;
        v.push((0..len).map(|_| rng.next_u32() as u8).collect());
    }
    v
}

#[test]
fn contains_semantics_equal_regex_is_match() {
    let mut rng = WorkloadRng::seed_from_u64(42);
    let inputs = inputs(&mut rng);
    for p in PATTERNS {
        let m = compile(&[p.to_string()], &RegexConfig::default()).unwrap_or_else(|e| panic!("{p}: {e}"));
        let oracle = regex::bytes::Regex::new(p).unwrap();
        for i in &inputs {
            let got = m.is_accepting(m.run(&m.encode(i, 0).unwrap()));
            assert_eq!(got, oracle.is_match(i), "pattern {p:?} input {:?}", String::from_utf8_lossy(i));
        }
    }
}

#[test]
fn full_match_semantics_equal_anchored_regex() {
    let mut rng = WorkloadRng::seed_from_u64(43);
    let inputs = inputs(&mut rng);
    let cfg = RegexConfig { full_match: true, ..Default::default() };
    for p in PATTERNS {
        let m = compile(&[p.to_string()], &cfg).unwrap_or_else(|e| panic!("{p}: {e}"));
        let oracle = regex::bytes::Regex::new(&format!("^(?:{p})$")).unwrap();
        for i in &inputs {
            let got = m.is_accepting(m.run(&m.encode(i, 0).unwrap()));
            assert_eq!(got, oracle.is_match(i), "pattern {p:?} input {:?}", String::from_utf8_lossy(i));
        }
    }
}

#[test]
fn pattern_sets_accept_when_any_matches() {
    let mut rng = WorkloadRng::seed_from_u64(44);
    let inputs = inputs(&mut rng);
    for chunk in PATTERNS.chunks(4) {
        let set: Vec<String> = chunk.iter().map(|p| p.to_string()).collect();
        let m = compile(&set, &RegexConfig::default()).unwrap();
        let oracles: Vec<regex::bytes::Regex> = chunk.iter().map(|p| regex::bytes::Regex::new(p).unwrap()).collect();
        for i in &inputs {
            let want = oracles.iter().any(|r| r.is_match(i));
            assert_eq!(m.is_accepting(m.run(&m.encode(i, 0).unwrap())), want, "set {set:?} input {i:?}");
        }
    }
}
