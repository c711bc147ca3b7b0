//! The bit-parallel NFA path (DESIGN §8): rules as position automata, run as a
//! bit-sliced boolean circuit.
//!
//! A DFA lookup costs Θ(N) per step and counted repetitions under search semantics
//! explode the DFA; a regex's position (Glushkov) automaton has one state bit per class
//! occurrence. This module holds
//! - [`position`]: the automaton of a parsed pattern (First / Last / Follow, nullable,
//!   `^`, `$` and ASCII `\b`/`\B` as boundary conditions) and the symbol classes;
//! - [`simulate`]: its plaintext bit-parallel simulation, the reference;
//! - [`circuit`]: a set's step as a boolean circuit (ANDs in layers), evaluated
//!   bit-sliced over instances, in the clear or on shares;
//! - [`triples`]: GF(2) Beaver triples, dealt compressed by PRG seeds;
//!
//! See `README.md` in this folder for the data flow.

pub mod circuit;
pub mod position;
pub mod protocol;
pub mod simulate;
pub mod triples;

use crate::dfa::trim;
use position::{PositionAutomaton, SymbolClasses};
use regex_automata::util::syntax;

/// Default limit on the positions of one pattern (and of a set, per rule).
pub const DEFAULT_MAX_POSITIONS: usize = 1 << 14;

/// What can go wrong building an NFA-path machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NfaError {
    /// The pattern does not parse.
    #[error("regex {index} ({pattern:?}): {message}")]
    Parse {
        /// Its index in the set.
        index: usize,
        /// The pattern.
        pattern: String,
        /// What the parser said.
        message: String,
    },
    /// The pattern uses a construct the position automaton does not model.
    #[error("unsupported on the NFA path: {construct}")]
    Unsupported {
        /// The construct, named.
        construct: String,
    },
    /// One pattern of a set failed (its index and the reason).
    #[error("regex {index} ({pattern:?}): {error}")]
    InPattern {
        /// Its index in the set.
        index: usize,
        /// The pattern.
        pattern: String,
        /// The reason.
        error: Box<NfaError>,
    },
    /// Counted repetitions unroll to more positions than allowed.
    #[error("more than {limit} positions once counted repetitions are unrolled (raise the limit or use the DFA path)")]
    TooManyPositions {
        /// The limit.
        limit: usize,
    },
    /// A set with no rule.
    #[error("no pattern given")]
    Empty,
}

/// How to build.
#[derive(Clone, Debug)]
pub struct NfaConfig {
    /// Refuse a pattern with more positions than this.
    pub max_positions: usize,
    /// Drop nullable prefixes and suffixes first ([`crate::dfa::trim`]; search
    /// semantics are unchanged). Off only to test that.
    pub trim: bool,
}

impl Default for NfaConfig {
    fn default() -> Self {
        NfaConfig { max_positions: DEFAULT_MAX_POSITIONS, trim: true }
    }
}

/// The automaton of one pattern, read in ASCII mode (`\w`, `\d`, `\s`, `\b` ASCII, any
/// byte allowed) under search semantics.
pub fn compile(pattern: &str, cfg: &NfaConfig) -> Result<PositionAutomaton, NfaError> {
    let hir = syntax::parse_with(pattern, &syntax::Config::new().unicode(false).utf8(false))
        .map_err(|e| NfaError::Parse { index: 0, pattern: pattern.to_string(), message: e.to_string() })?;
    let hir = if cfg.trim { trim::for_search(&hir) } else { hir };
    PositionAutomaton::from_hir(&hir, cfg.max_positions)
}

/// A rule set on the NFA path: one automaton (and one `hit`) per rule, over symbol
/// classes shared by all of them.
#[derive(Clone, Debug)]
pub struct NfaSet {
    /// The rules' automata, in order.
    pub rules: Vec<PositionAutomaton>,
    /// Classes refining every position of every rule (and the word bytes if any rule
    /// has a word boundary).
    pub classes: SymbolClasses,
}

impl NfaSet {
    /// Compiles every pattern; an error names the pattern.
    pub fn compile(patterns: &[String], cfg: &NfaConfig) -> Result<NfaSet, NfaError> {
        if patterns.is_empty() {
            return Err(NfaError::Empty);
        }
        let rules = patterns
            .iter()
            .enumerate()
            .map(|(index, p)| {
                compile(p, cfg).map_err(|e| match e {
                    NfaError::Parse { message, pattern, .. } => NfaError::Parse { index, pattern, message },
                    other => NfaError::InPattern { index, pattern: p.clone(), error: Box::new(other) },
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NfaSet::from_rules(rules))
    }

    /// The set of given automata.
    pub fn from_rules(rules: Vec<PositionAutomaton>) -> NfaSet {
        let word = position::ByteSet::word();
        let uses_word = rules.iter().any(|r| r.uses_word);
        let sets = rules.iter().flat_map(|r| r.bytes.iter()).chain(uses_word.then_some(&word));
        let classes = SymbolClasses::refine(sets);
        NfaSet { rules, classes }
    }

    /// Positions in all.
    pub fn positions(&self) -> usize {
        self.rules.iter().map(PositionAutomaton::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::simulate::Simulator;
    use super::*;
    use pmsm_kernels::rng::{RngCore, WorkloadRng};

    /// A random pattern over `abc`, with classes, alternation, repetitions and looks.
    pub(crate) fn random_pattern(rng: &mut WorkloadRng, depth: u32) -> String {
        let leaf = |rng: &mut WorkloadRng| -> String {
            const LEAVES: &[&str] =
                &["a", "b", "c", "ab", "[ab]", "[^a]", "\\w", "\\d", ".", "[a-c_]", " ", "^", "$", "\\b", "\\B", "1"];
            LEAVES[rng.below(LEAVES.len() as u64) as usize].to_string()
        };
        if depth == 0 || rng.below(4) == 0 {
            return leaf(rng);
        }
        match rng.below(5) {
            0 => format!("(?:{}|{})", random_pattern(rng, depth - 1), random_pattern(rng, depth - 1)),
            1 | 2 => format!("{}{}", random_pattern(rng, depth - 1), random_pattern(rng, depth - 1)),
            _ => {
                let rep = match rng.below(6) {
                    0 => "*".to_string(),
                    1 => "+".to_string(),
                    2 => "?".to_string(),
                    3 => format!("{{{}}}", rng.below(4)),
                    4 => format!("{{{},}}", rng.below(3)),
                    _ => {
                        let m = rng.below(3);
                        format!("{{{m},{}}}", m + rng.below(4))
                    }
                };
                format!("(?:{}){rep}", random_pattern(rng, depth - 1))
            }
        }
    }

    fn random_text(rng: &mut WorkloadRng, len: usize) -> Vec<u8> {
        const POOL: &[u8] = b"abc_1 a\n-";
        (0..len)
            .map(
                |_| if rng.below(20) == 0 { rng.next_u32() as u8 } else { POOL[rng.below(POOL.len() as u64) as usize] },
            )
            .collect()
    }

    fn oracle(p: &str) -> regex::bytes::Regex {
        regex::bytes::Regex::new(&format!("(?-u){p}")).unwrap()
    }

    #[test]
    fn simulation_equals_regex_on_random_patterns() {
        let mut rng = WorkloadRng::seed_from_u64(17);
        let mut checked = 0;
        for _ in 0..600 {
            let p = random_pattern(&mut rng, 4);
            let re = oracle(&p);
            for trim in [true, false] {
                let a = compile(&p, &NfaConfig { trim, ..Default::default() }).unwrap_or_else(|e| panic!("{p}: {e}"));
                let sim = Simulator::new(&a);
                let hir = regex_automata::util::syntax::parse_with(
                    &format!("(?-u){p}"),
                    &regex_automata::util::syntax::Config::new().utf8(false),
                )
                .unwrap();
                for i in 0..40 {
                    let len = rng.below(12) as usize;
                    let mut text = random_text(&mut rng, len);
                    if i % 4 == 0 {
                        // Plant a sample of the pattern at a random place.
                        let at = rng.below(text.len() as u64 + 1) as usize;
                        let s = crate::dfa::sample::sample(&hir, &mut rng);
                        text.splice(at..at, s);
                    }
                    assert_eq!(sim.is_match(&text), re.is_match(&text), "{p:?} trim={trim} on {:?}", text);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 600 * 2 * 40);
    }

    #[test]
    fn fixed_cases() {
        for (p, yes, no) in [
            ("ab", &[&b"xaby"[..], b"ab"][..], &[&b"a"[..], b"ba", b""][..]),
            ("^ab", &[b"abc"], &[b"cab"]),
            ("ab$", &[b"cab"], &[b"abc"]),
            ("\\bab\\b", &[b"ab", b"x ab-"], &[b"xab", b"abx"]),
            ("\\Bb", &[b"ab"], &[b" b", b"b"]),
            ("a[0-9]{3,5}b", &[b"a123b", b"za12345b"], &[b"a12b", b"a123456b"]),
            ("^$", &[b""], &[b"a"]),
            ("\\b", &[b"a"], &[b"", b"  "]),
            ("x{0}", &[b"", b"q"], &[]),
            ("[^\\x00-\\xff]", &[], &[b"a", b""]),
        ] {
            let sim = Simulator::new(&compile(p, &NfaConfig::default()).unwrap());
            for y in yes {
                assert!(sim.is_match(y), "{p} should match {y:?}");
            }
            for n in no {
                assert!(!sim.is_match(n), "{p} should not match {n:?}");
            }
        }
    }

    #[test]
    fn set_errors_name_the_pattern() {
        let e = NfaSet::compile(&["ok".into(), "(?m)^x".into()], &NfaConfig::default()).unwrap_err().to_string();
        assert!(e.starts_with("regex 1 (\"(?m)^x\"): unsupported on the NFA path: the look-around multi-line"), "{e}");
        let e = NfaSet::compile(&["a(".into()], &NfaConfig::default()).unwrap_err().to_string();
        assert!(e.starts_with("regex 0 (\"a(\")"), "{e}");
        assert_eq!(NfaSet::compile(&[], &NfaConfig::default()).unwrap_err(), NfaError::Empty);
        let e = NfaSet::compile(&["[ab]{40}".into()], &NfaConfig { max_positions: 30, trim: true }).unwrap_err();
        assert!(e.to_string().contains("more than 30 positions"), "{e}");
    }

    #[test]
    fn the_circuit_equals_the_simulation_on_random_sets() {
        let mut rng = WorkloadRng::seed_from_u64(23);
        for _ in 0..60 {
            let patterns: Vec<String> = (0..1 + rng.below(4)).map(|_| random_pattern(&mut rng, 4)).collect();
            let set = NfaSet::compile(&patterns, &NfaConfig::default()).unwrap();
            let program = circuit::Program::new(&set);
            let sims: Vec<Simulator> = set.rules.iter().map(Simulator::new).collect();
            let texts: Vec<Vec<u8>> = (0..70)
                .map(|_| {
                    let len = rng.below(10) as usize;
                    random_text(&mut rng, len)
                })
                .collect();
            let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
            let got = program.run_plain(&refs);
            for (i, t) in texts.iter().enumerate() {
                for (r, sim) in sims.iter().enumerate() {
                    assert_eq!(got[i][r], sim.is_match(t), "{:?} rule {r} on {t:?}", patterns);
                    assert_eq!(got[i][r], oracle(&patterns[r]).is_match(t));
                }
            }
        }
    }

    #[test]
    fn disjunctions_xor_disjoint_terms_and_share_predecessors() {
        let ands = |p: &str| {
            let set = NfaSet::compile(&[p.to_string()], &NfaConfig::default()).unwrap();
            circuit::Program::new(&set).step.and_count()
        };
        // `d` after any of three disjoint bytes: one XOR, then `d`'s class AND; the hit's OR.
        assert_eq!(ands("(?:a|b|c)d"), 2);
        // X1, X2 and the final `x` each one AND beside `D` of the one before; `=` and `:`
        // share one OR of {z, X1, X2} ({z} and X1 in one group, X2 in another: one AND)
        // and pay their class ANDs; the hit ORs `=` ⊕ `x`.
        assert_eq!(ands("z[xy]{0,2}(?:=|:x)"), 7);
    }

    #[cfg(feature = "gitleaks")]
    #[test]
    fn every_gitleaks_rule_equals_regex() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/gitleaks/gitleaks.toml");
        let config = crate::dfa::gitleaks::GitleaksConfig::read(&path).unwrap();
        assert_eq!(config.rules.len(), 221);
        let negatives = std::fs::read_to_string(path.with_file_name("negatives.txt")).unwrap();
        let positives = std::fs::read_to_string(path.with_file_name("positives.txt")).unwrap();
        let texts: Vec<&[u8]> = negatives.lines().chain(positives.lines()).map(str::as_bytes).collect();
        let mut rng = WorkloadRng::seed_from_u64(5);
        let mut positions = 0;
        for rule in &config.rules {
            let p = rule.pattern();
            let a = compile(&p, &NfaConfig::default()).unwrap_or_else(|e| panic!("{}: {e}", rule.id));
            positions += a.len();
            let sim = Simulator::new(&a);
            let re = regex::bytes::Regex::new(&p).unwrap();
            let hir =
                regex_automata::util::syntax::parse_with(&p, &regex_automata::util::syntax::Config::new().utf8(false))
                    .unwrap();
            let mut planted_hits = 0;
            for i in 0..12 {
                let mut text = b"some words = ".to_vec();
                text.extend(crate::dfa::sample::sample(&hir, &mut rng));
                if i % 2 == 0 {
                    text.extend_from_slice(b" and more");
                }
                let truth = re.is_match(&text);
                planted_hits += usize::from(truth);
                assert_eq!(sim.is_match(&text), truth, "{} on {:?}", rule.id, String::from_utf8_lossy(&text));
                // A cut sample exercises the partial matches.
                let cut = &text[..text.len() * 2 / 3];
                assert_eq!(sim.is_match(cut), re.is_match(cut), "{} on {:?}", rule.id, String::from_utf8_lossy(cut));
            }
            assert!(planted_hits > 0, "{}: no planted sample matched", rule.id);
            for t in texts.iter().step_by(7) {
                assert_eq!(sim.is_match(t), re.is_match(t), "{} on {:?}", rule.id, String::from_utf8_lossy(t));
            }
        }
        // DESIGN §8 sizes the set at about 27,000 positions.
        assert!((10_000..60_000).contains(&positions), "{positions} positions");
    }
}
