//! Machine sets run privately: every rule's answer equals `regex::bytes::Regex::is_match`
//! in ASCII mode, grouped sets answer as ungrouped ones, and `any` and `count` equal
//! the plaintext combination of the per-rule answers; both protocols.

use pmsm_engine::Engine;
use pmsm_engine::dfa::regex::RegexConfig;
use pmsm_engine::dfa::set::{Answer, Grouping, Policy, compile_rules};
use pmsm_engine::protocol::set::group;
use pmsm_engine::protocol::{ClassMode, Protocol};
use pmsm_kernels::rng::WorkloadRng;
use std::path::Path;

/// Every policy, under `grouping` and `protocol`: the private answers of `texts`
/// against `(id, pattern)` rules (each in ASCII mode), checked against the regex crate.
fn check(rules: &[(String, String)], texts: &[Vec<u8>], grouping: Grouping, protocol: Protocol, max_states: usize) {
    let cfg = RegexConfig { max_states, ..Default::default() };
    let (ok, refused) = compile_rules(rules, &cfg);
    let kept: Vec<&(String, String)> = rules.iter().filter(|r| !refused.iter().any(|x| x.id == r.0)).collect();
    let oracles: Vec<regex::bytes::Regex> = kept.iter().map(|r| regex::bytes::Regex::new(&r.1).unwrap()).collect();
    let want: Vec<Vec<bool>> = texts.iter().map(|t| oracles.iter().map(|o| o.is_match(t)).collect()).collect();
    for policy in [Policy::Rules, Policy::Any, Policy::Count] {
        let set = group(ok.clone(), policy, grouping, protocol, ClassMode::Auto, max_states).unwrap();
        assert_eq!(set.ids(), kept.iter().map(|r| r.0.clone()).collect::<Vec<_>>());
        let engine = Engine::set_builder(set).protocol(protocol).threads(2).build().unwrap();
        let report = engine.run_texts(texts).unwrap();
        assert_eq!(report.answers.len(), texts.len());
        for (i, (got, want)) in report.answers.iter().zip(&want).enumerate() {
            let expected = match policy {
                Policy::Rules => Answer::Rules(want.clone()),
                Policy::Any => Answer::Any(want.iter().any(|&h| h)),
                Policy::Count => Answer::Count(want.iter().filter(|&&h| h).count() as u32),
            };
            let text = String::from_utf8_lossy(&texts[i]);
            assert_eq!(got, &expected, "{policy} {grouping:?} {protocol} text {i} {text:?}");
            assert_eq!(report.outputs[i].accept, Some(expected.any()));
            assert_eq!(report.outputs[i].symbols, texts[i].len());
        }
    }
}

/// A random rule over a small alphabet: literals, classes, counted repetitions,
/// alternations and ASCII word boundaries.
pub(crate) fn random_rule(rng: &mut WorkloadRng) -> String {
    let atoms = ["a", "b", "c", "[ab]", "[^a ]", "\\d", "\\w", "ab", "(?:a|bc)", "\\b"];
    let n = 1 + rng.below(4);
    let mut p = String::from("(?-u)");
    for _ in 0..n {
        p.push_str(atoms[rng.below(atoms.len() as u64) as usize]);
        match rng.below(5) {
            0 => p.push_str(&format!("{{{}}}", 1 + rng.below(3))),
            1 => p.push('+'),
            _ => {}
        }
    }
    p
}

fn random_texts(rng: &mut WorkloadRng, count: usize, rules: &[(String, String)]) -> Vec<Vec<u8>> {
    let pool = b"abc 01_-xyz";
    let mut texts: Vec<Vec<u8>> =
        (0..count).map(|_| (0..rng.below(24)).map(|_| pool[rng.below(pool.len() as u64) as usize]).collect()).collect();
    // Planted: a sample of some rule between random bytes.
    for (k, (_, p)) in rules.iter().enumerate().take(count / 2) {
        let hir = regex_syntax::ParserBuilder::new().utf8(false).build().parse(p).unwrap();
        let mut t: Vec<u8> = (0..rng.below(5)).map(|_| pool[rng.below(pool.len() as u64) as usize]).collect();
        t.extend(pmsm_engine::dfa::sample::sample(&hir, rng));
        t.extend(b" end");
        texts[k] = t;
    }
    texts.push(Vec::new());
    texts
}

#[test]
fn random_rule_sets_equal_the_regex_crate_grouped_or_not() {
    let mut rng = WorkloadRng::seed_from_u64(16);
    for round in 0..3 {
        let rules: Vec<(String, String)> =
            (0..5 + 3 * round).map(|i| (format!("rule-{i}"), random_rule(&mut rng))).collect();
        let texts = random_texts(&mut rng, 60, &rules);
        for grouping in [Grouping::Cost, Grouping::Alone, Grouping::Fill] {
            let protocol = if round == 1 { Protocol::LookupRing } else { Protocol::LookupXor };
            check(&rules, &texts, grouping, protocol, 4_000);
        }
    }
}

#[test]
fn a_refused_rule_is_named_with_its_reason() {
    let rules = vec![
        ("ok".to_string(), "(?-u)abc".to_string()),
        ("big".to_string(), "(?-u)a[ab]{14}".to_string()),
        ("bad".to_string(), "(?-u)a(?=b)".to_string()),
    ];
    let (ok, refused) = compile_rules(&rules, &RegexConfig { max_states: 1_000, ..Default::default() });
    assert_eq!(ok.len(), 1);
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0].id, "big");
    assert!(refused[0].reason.contains("more than 1000 DFA states"), "{}", refused[0].reason);
    assert_eq!(refused[1].id, "bad");
    assert!(refused[1].reason.contains("look-around"), "{}", refused[1].reason);
}

/// The gitleaks rules of at most 1,500 states (a fast subset: the whole set is
/// `profiles/gitleaks.toml`'s), privately on their planted samples and clean texts.
#[test]
fn gitleaks_rules_equal_the_regex_crate_on_their_samples() {
    use pmsm_engine::dfa::gitleaks::GitleaksConfig;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/gitleaks");
    let config = GitleaksConfig::read(&dir.join("gitleaks.toml")).unwrap();
    let rules: Vec<(String, String)> = config.rules.iter().map(|r| (r.id.clone(), r.pattern())).collect();
    let read = |f: &str| -> Vec<Vec<u8>> {
        std::fs::read_to_string(dir.join(f)).unwrap().lines().map(|l| l.as_bytes().to_vec()).collect()
    };
    let (ok, _) = compile_rules(&rules, &RegexConfig { max_states: 1_500, ..Default::default() });
    assert!(ok.len() > 60, "{} rules", ok.len());
    let small: Vec<(String, String)> =
        rules.iter().filter(|r| ok.iter().any(|o| o.id == r.0)).take(40).cloned().collect();
    let mut texts = read("positives.txt");
    texts.truncate(120);
    texts.extend(read("negatives.txt").into_iter().take(30));
    check(&small, &texts, Grouping::Cost, Protocol::LookupXor, 1_500);
}

/// The combination's openings (the last round: the `any` tree's node under lookup-xor,
/// the nonzero lookup of the summed counts under lookup-ring) are uniform and do not
/// depend on which rules matched.
#[test]
fn the_combinations_openings_are_uniform_and_independent_of_the_input() {
    use crate::protocol::{chi_square_two_sample, chi_square_uniform, histogram, openings};
    use pmsm_engine::transport::Link;
    // 7 degrees of freedom (3 bits) or 3 (2 bits): 0.01 % critical values (rare false
    // alarms; a leak moves the statistic far past them).
    let rules: Vec<(String, String)> = ["a", "b", "c"].iter().map(|p| (p.to_string(), p.to_string())).collect();
    let (ok, _) = compile_rules(&rules, &RegexConfig::default());
    for (protocol, width, critical) in [(Protocol::LookupXor, 3u32, 29.88), (Protocol::LookupRing, 2, 21.11)] {
        let set = group(ok.clone(), Policy::Any, Grouping::Alone, protocol, ClassMode::Auto, 1 << 10).unwrap();
        let engine = Engine::set_builder(set).protocol(protocol).chunk(4000).build().unwrap();
        let sample = |text: &[u8]| {
            let inputs = vec![engine.dfa().encode(text, 0).unwrap(); 4000];
            let last = engine.rounds(&inputs).unwrap() as u32 - 1;
            let (report, frames) = engine.run_observed(&inputs, Link::S0ToS1).unwrap();
            assert!(report.answers.iter().all(|a| *a == Answer::Any(text != b"zzz")));
            let f: Vec<Vec<u8>> =
                frames.into_iter().filter(|f| u32::from_le_bytes(f[1..5].try_into().unwrap()) == last).collect();
            assert_eq!(f.len(), 1);
            openings(&f, width)
        };
        let (x, y) = (sample(b"abc"), sample(b"zzz"));
        assert_eq!(x.len(), 4000);
        let (hx, hy) = (histogram(&x, 1 << width), histogram(&y, 1 << width));
        let (ux, uy, two) = (chi_square_uniform(&hx), chi_square_uniform(&hy), chi_square_two_sample(&hx, &hy));
        assert!(ux < critical && uy < critical, "{protocol}: not uniform: {ux:.1}, {uy:.1}");
        assert!(two < critical, "{protocol}: depends on the input: {two:.1}");
    }
}
