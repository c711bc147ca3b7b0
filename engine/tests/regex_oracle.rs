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

/// A random pattern over `abc`: literals, classes, counted and open repetitions,
/// alternations, groups, anchors and ASCII word boundaries, so that nullable prefixes
/// and suffixes (what [`RegexConfig::trim`] drops) occur often.
fn random_pattern(rng: &mut WorkloadRng, depth: u32) -> String {
    let atom = |rng: &mut WorkloadRng| -> String {
        ["a", "b", "c", "[ab]", "[^a]", ".", "(?-u:\\b)", "^", "$", "", "ab", "(?m)^", "(?-u:\\B)"]
            [rng.below(13) as usize]
            .to_string()
    };
    if depth == 0 {
        return atom(rng);
    }
    match rng.below(6) {
        0 => atom(rng),
        1 | 2 => (0..1 + rng.below(4)).map(|_| random_pattern(rng, depth - 1)).collect(),
        3 => format!("(?:{}|{})", random_pattern(rng, depth - 1), random_pattern(rng, depth - 1)),
        4 => {
            let min = rng.below(3);
            let max = min + rng.below(3);
            let lazy = if rng.below(2) == 0 { "?" } else { "" };
            format!("(?:{}){{{min},{max}}}{lazy}", random_pattern(rng, depth - 1))
        }
        _ => format!("(?:{}){}", random_pattern(rng, depth - 1), ["*", "+", "?"][rng.below(3) as usize]),
    }
}

#[test]
fn random_patterns_equal_regex_with_and_without_trimming() {
    let mut rng = WorkloadRng::seed_from_u64(45);
    let pool: &[u8] = b"abcab \n";
    let inputs: Vec<Vec<u8>> = (0..200)
        .map(|_| {
            let len = rng.below(10) as usize;
            (0..len).map(|_| pool[rng.below(pool.len() as u64) as usize]).collect()
        })
        .collect();
    for case in 0..300 {
        let p = random_pattern(&mut rng, 3);
        let contains = regex::bytes::Regex::new(&p).unwrap();
        let full = regex::bytes::Regex::new(&format!("^(?:{p})$")).unwrap();
        for (cfg, oracle) in [
            (RegexConfig::default(), &contains),
            (RegexConfig { trim: false, ..Default::default() }, &contains),
            (RegexConfig { full_match: true, ..Default::default() }, &full),
        ] {
            let m = compile(std::slice::from_ref(&p), &cfg).unwrap_or_else(|e| panic!("case {case} {p:?}: {e}"));
            for i in &inputs {
                let got = m.is_accepting(m.run(&m.encode(i, 0).unwrap()));
                assert_eq!(got, oracle.is_match(i), "case {case} {p:?} {cfg:?} input {:?}", String::from_utf8_lossy(i));
            }
        }
    }
}

#[test]
fn sets_joined_as_one_nfa_or_by_products_agree() {
    // A set small enough for one NFA, and the same set under a limit that the joint
    // walk exceeds (so it is joined by the tree of products): same answers as RegexSet.
    let mut rng = WorkloadRng::seed_from_u64(46);
    let pool: &[u8] = b"abcab \n";
    let inputs: Vec<Vec<u8>> = (0..300)
        .map(|_| (0..rng.below(12) as usize).map(|_| pool[rng.below(pool.len() as u64) as usize]).collect())
        .collect();
    for case in 0..40 {
        let set: Vec<String> = (0..2 + rng.below(5)).map(|_| random_pattern(&mut rng, 3)).collect();
        let oracle = regex::bytes::RegexSet::new(&set).unwrap();
        let one = compile(&set, &RegexConfig::default()).unwrap_or_else(|e| panic!("case {case} {set:?}: {e}"));
        let limit = (one.states() + 1).max(3);
        let tight = compile(&set, &RegexConfig { max_states: limit, ..Default::default() });
        for i in &inputs {
            let want = oracle.is_match(i);
            assert_eq!(one.is_accepting(one.run(&one.encode(i, 0).unwrap())), want, "case {case} {set:?} {i:?}");
            if let Ok(m) = &tight {
                assert_eq!(m.is_accepting(m.run(&m.encode(i, 0).unwrap())), want, "case {case} {set:?} {i:?}");
            }
        }
    }
}
