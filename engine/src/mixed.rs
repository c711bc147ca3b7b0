//! A rule set over both paths (DESIGN §8, issue #17): each rule takes the path the cost
//! model predicts cheaper ([`crate::cost::choose`]), and one private run evaluates the
//! two parts on the same texts.
//!
//! ```text
//! rules ──compile_rules (each alone)──► DFA side: SetRule, predicted ns/byte ─┐
//!       └─nfa::compile (each alone)───► NFA side: automaton, predicted ns/byte ┴─► pick
//!   DFA part: the picked rules grouped (Policy::Rules, cost grouping) ► Engine (lookups)
//!   NFA part: the picked rules as one NfaSet ► circuit::Program (Beaver ANDs)
//! run: both parts at once on the same texts (each shares the input afresh), the
//!      client joins each part's per-rule bits in rule order
//! ```
//!
//! Only the `rules` policy is offered: the client learns each rule's bit, so joining the
//! parts tells it nothing more. `any` or `count` over a mixed set would have to combine
//! the two parts' outputs under sharing first (not built).

use crate::cost::{BatchShape, CostModel, NfaCost, Path, PathChoice, choose};
use crate::dfa::regex::RegexConfig;
use crate::dfa::set::{Answer, Grouping, Policy, Refused, SetRule, compile_rules};
use crate::engine::Engine;
use crate::error::Error;
use crate::nfa::circuit::Program;
use crate::nfa::position::PositionAutomaton;
use crate::nfa::{self, NfaConfig, NfaSet, protocol};
use crate::protocol::set::{group, step_bits};
use crate::protocol::{ClassMode, Protocol, ProtocolError};
use crate::transport::Link;
use std::time::{Duration, Instant};

/// A rule alone on the DFA path: its machine, index bits and predicted cost.
#[derive(Clone, Debug)]
pub struct DfaSide {
    /// The rule's minimal DFA.
    pub rule: SetRule,
    /// Index bits of its step lookup.
    pub n: u32,
    /// Predicted ns per input byte ([`CostModel::LOOKUP_XOR`]).
    pub predicted_ns: f64,
}

/// A rule alone on the NFA path: its automaton, circuit and predicted cost.
#[derive(Clone, Debug)]
pub struct NfaSide {
    /// The rule's position automaton.
    pub automaton: PositionAutomaton,
    /// Its circuits alone.
    pub program: Program,
    /// Predicted ns per input byte ([`NfaCost::MEASURED`]) for the batch shape given.
    pub predicted_ns: f64,
}

/// One rule on both paths (`Err`: that path refuses it, and why).
#[derive(Clone, Debug)]
pub struct RulePaths {
    /// The rule's id.
    pub id: String,
    /// Its pattern.
    pub pattern: String,
    /// The DFA path.
    pub dfa: Result<DfaSide, String>,
    /// The NFA path.
    pub nfa: Result<NfaSide, String>,
}

impl RulePaths {
    /// Every rule compiled alone on both paths (search semantics over bytes), with each
    /// path's prediction for a batch of `shape`. Costs one subset construction per rule
    /// (bounded by `regex.max_states`) and one circuit per rule.
    pub fn of(rules: &[(String, String)], regex: &RegexConfig, nfa: &NfaConfig, shape: BatchShape) -> Vec<RulePaths> {
        let (ok, refused) = compile_rules(rules, regex);
        let mut ok = ok.into_iter().peekable();
        rules
            .iter()
            .map(|(id, pattern)| {
                let dfa = match ok.next_if(|r| &r.id == id) {
                    Some(rule) => {
                        let (s, a, c) = (rule.dfa.states(), rule.dfa.symbols(), rule.dfa.classes().count());
                        Ok(DfaSide {
                            n: step_bits(s, a, c, ClassMode::Auto),
                            predicted_ns: CostModel::LOOKUP_XOR.machine(s, a, c, ClassMode::Auto),
                            rule,
                        })
                    }
                    None => Err(refused.iter().find(|r| &r.id == id).map_or_else(String::new, |r| r.reason.clone())),
                };
                let nfa = nfa::compile(pattern, nfa).map_err(|e| e.to_string()).map(|automaton| {
                    let program = Program::new(&NfaSet::from_rules(vec![automaton.clone()]));
                    let predicted_ns =
                        NfaCost::MEASURED.predict(program.step.and_count(), program.step.rounds(), shape);
                    NfaSide { automaton, program, predicted_ns }
                });
                RulePaths { id: id.clone(), pattern: pattern.clone(), dfa, nfa }
            })
            .collect()
    }

    /// The rule's path under `choice` (`None`: refused there).
    pub fn pick(&self, choice: PathChoice) -> Option<Path> {
        choose(choice, self.dfa.as_ref().ok().map(|d| d.predicted_ns), self.nfa.as_ref().ok().map(|n| n.predicted_ns))
    }
}

/// Each rule's path in a set under `choice` (`None`: refused on every path it may
/// take), for a batch of `shape`.
///
/// `dfa` and `nfa` force a path. `auto` weighs the set, not each rule alone: the NFA
/// part is one circuit, so its fixed costs (`byte_ns`, and `layer_ns` per layer of the
/// deepest rule) are paid once and a rule adds only its ANDs, while each rule on the DFA
/// path adds its own lookups ([`CostModel::machine`]). Of two candidates the cheaper
/// predicted in all is taken: (a) each rule both paths run on the NFA path unless its
/// lookups cost less than its ANDs, (b) every such rule on the DFA path (no NFA part at
/// all when no rule needs it). A rule one path refuses goes to the other. (On the
/// gitleaks set and its sample texts that is every rule on the NFA path: no rule's
/// lookups cost less than its ANDs.) [`RulePaths::pick`] is the choice for a rule alone.
pub fn assign(rules: &[RulePaths], choice: PathChoice, shape: BatchShape) -> Vec<Option<Path>> {
    if choice != PathChoice::Auto {
        return rules.iter().map(|r| r.pick(choice)).collect();
    }
    let m = NfaCost::MEASURED;
    let cost = |paths: &[Option<Path>]| {
        let (mut total, mut ands, mut layers, mut any_nfa) = (0.0, 0usize, 0usize, false);
        for (r, p) in rules.iter().zip(paths) {
            match (p, &r.dfa, &r.nfa) {
                (Some(Path::Dfa), Ok(d), _) => total += d.predicted_ns,
                (Some(Path::Nfa), _, Ok(n)) => {
                    any_nfa = true;
                    ands += n.program.step.and_count();
                    layers = layers.max(n.program.step.rounds());
                }
                _ => {}
            }
        }
        if any_nfa {
            total += m.predict(ands, layers, shape);
        }
        total
    };
    let only = |r: &RulePaths| match (&r.dfa, &r.nfa) {
        (Ok(_), Err(_)) => Some(Path::Dfa),
        (Err(_), Ok(_)) => Some(Path::Nfa),
        _ => None,
    };
    let marginal: Vec<Option<Path>> = rules
        .iter()
        .map(|r| match (&r.dfa, &r.nfa) {
            (Ok(d), Ok(n)) => {
                Some(if d.predicted_ns < m.and_ns * n.program.step.and_count() as f64 { Path::Dfa } else { Path::Nfa })
            }
            _ => only(r),
        })
        .collect();
    let lookups: Vec<Option<Path>> =
        rules.iter().map(|r| if r.dfa.is_ok() { Some(Path::Dfa) } else { only(r) }).collect();
    if cost(&lookups) < cost(&marginal) { lookups } else { marginal }
}

/// The DFA part of a [`MixedSet`].
#[derive(Debug)]
struct DfaPart {
    engine: Engine,
    /// Its rules' indices in the set.
    rules: Vec<usize>,
}

/// The NFA part of a [`MixedSet`].
#[derive(Debug)]
struct NfaPart {
    program: Program,
    rules: Vec<usize>,
}

/// A rule set split over both paths, ready to run (policy `rules`).
#[derive(Debug)]
pub struct MixedSet {
    ids: Vec<String>,
    paths: Vec<Path>,
    dfa: Option<DfaPart>,
    nfa: Option<NfaPart>,
    refused: Vec<Refused>,
}

/// What a run of a [`MixedSet`] returns.
#[derive(Clone, Debug)]
pub struct MixedReport {
    /// Per text (input order), one bit per rule ([`MixedSet::ids`] order).
    pub hits: Vec<Vec<bool>>,
    /// Wall time of the run (both parts, all four parties).
    pub elapsed: Duration,
    /// Bytes sent on every link by both parts ([`Link::ALL`] order).
    pub bytes: [u64; 8],
    /// Bytes of the DFA part alone, on every link.
    pub dfa_bytes: [u64; 8],
}

impl MixedReport {
    /// Bytes sent on `link` by both parts.
    pub fn link_bytes(&self, link: Link) -> u64 {
        self.bytes[link.index()]
    }
}

impl MixedSet {
    /// Puts each rule on its path under `choice` for a batch of `shape` ([`assign`]); a
    /// rule no path takes is refused (listed in [`MixedSet::refused`]). The DFA part is
    /// grouped by the cost grouping, no product above `max_states` states; `threads`
    /// serve its engine. Fails when no rule is left.
    pub fn new(
        rules: Vec<RulePaths>,
        choice: PathChoice,
        shape: BatchShape,
        max_states: usize,
        threads: usize,
    ) -> Result<MixedSet, Error> {
        let (mut ids, mut paths, mut refused) = (Vec::new(), Vec::new(), Vec::new());
        let (mut dfa_rules, mut dfa_index, mut automata, mut nfa_index) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let assigned = assign(&rules, choice, shape);
        for (r, path) in rules.into_iter().zip(assigned) {
            match (path, r.dfa, r.nfa) {
                (Some(Path::Dfa), Ok(d), _) => {
                    dfa_index.push(ids.len());
                    dfa_rules.push(d.rule);
                }
                (Some(Path::Nfa), _, Ok(n)) => {
                    nfa_index.push(ids.len());
                    automata.push(n.automaton);
                }
                (_, dfa, nfa) => {
                    let why = |side: Result<(), String>, name: &str| side.err().map(|e| format!("{name}: {e}"));
                    let reasons: Vec<String> =
                        [why(dfa.map(|_| ()), "dfa"), why(nfa.map(|_| ()), "nfa")].into_iter().flatten().collect();
                    refused.push(Refused { id: r.id, reason: reasons.join("; ") });
                    continue;
                }
            }
            ids.push(r.id);
            paths.push(path.expect("a path was picked"));
        }
        if ids.is_empty() {
            let why = refused.first().map_or(String::new(), |r| format!(" (rule {}: {})", r.id, r.reason));
            return Err(crate::dfa::DfaError::Field {
                file: "rule set".into(),
                field: "rules".into(),
                message: format!("no rule runs on the {} path{why}", choice.name()),
            }
            .into());
        }
        let dfa = if dfa_rules.is_empty() {
            None
        } else {
            let set =
                group(dfa_rules, Policy::Rules, Grouping::Cost, Protocol::LookupXor, ClassMode::Auto, max_states)?;
            Some(DfaPart { engine: Engine::set_builder(set).threads(threads).build()?, rules: dfa_index })
        };
        let nfa = (!automata.is_empty())
            .then(|| NfaPart { program: Program::new(&NfaSet::from_rules(automata)), rules: nfa_index });
        Ok(MixedSet { ids, paths, dfa, nfa, refused })
    }

    /// The rules that run, in order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Each rule's path ([`MixedSet::ids`] order).
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// The rules no path takes, and why.
    pub fn refused(&self) -> &[Refused] {
        &self.refused
    }

    /// The NFA part's circuits, if any rule is on that path.
    pub fn nfa_program(&self) -> Option<&Program> {
        self.nfa.as_ref().map(|p| &p.program)
    }

    /// The DFA part's engine, if any rule is on that path.
    pub fn dfa_engine(&self) -> Option<&Engine> {
        self.dfa.as_ref().map(|p| &p.engine)
    }

    /// Runs both parts privately on `texts`, at once (two threads, each part its own
    /// four parties in process): per text, one bit per rule.
    pub fn run_texts(&self, texts: &[&[u8]]) -> Result<MixedReport, Error> {
        let start = Instant::now();
        let (d, n) = std::thread::scope(|scope| {
            let d = self.dfa.as_ref().map(|p| scope.spawn(|| p.engine.run_texts(texts)));
            let n = self.nfa.as_ref().map(|p| protocol::run(&p.program, texts, None));
            let d = d.map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ProtocolError::PartyFailed { party: "DFA part", detail: "panicked".into() }.into())
                })
            });
            (d, n)
        });
        let elapsed = start.elapsed();
        let mut hits = vec![vec![false; self.ids.len()]; texts.len()];
        let mut bytes = [0u64; 8];
        let mut dfa_bytes = [0u64; 8];
        if let (Some(p), Some(report)) = (&self.dfa, d) {
            let report = report?;
            for (i, answer) in report.answers.iter().enumerate() {
                let Answer::Rules(bits) = answer else { unreachable!("the DFA part runs under Policy::Rules") };
                for (k, &r) in p.rules.iter().enumerate() {
                    hits[i][r] = bits[k];
                }
            }
            dfa_bytes = Link::ALL.map(|l| report.bytes.get(l));
        }
        if let (Some(p), Some(report)) = (&self.nfa, n) {
            let report = report?;
            for (i, row) in report.hits.iter().enumerate() {
                for (k, &r) in p.rules.iter().enumerate() {
                    hits[i][r] = row[k];
                }
            }
            bytes = report.bytes;
        }
        for (b, d) in bytes.iter_mut().zip(dfa_bytes) {
            *b += d;
        }
        Ok(MixedReport { hits, elapsed, bytes, dfa_bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmsm_kernels::rng::WorkloadRng;

    #[test]
    fn mixed_runs_equal_regex_on_every_path_choice() {
        // Short rules the DFA path wins; one it refuses at this state limit.
        let rules: Vec<(String, String)> = [
            ("aws", "AKIA[0-9A-Z]{4}"),
            ("pem", "-----BEGIN"),
            ("ab9", "a[ab]{8}"),
            ("wide", "[a-z]{3}[0-9]{2}[a-z]{3}x"),
            ("word", r"(?-u:\b)tok[0-9]+(?-u:\b)"),
        ]
        .iter()
        .map(|(i, p)| (i.to_string(), p.to_string()))
        .collect();
        let regex = RegexConfig { max_states: 256, ..Default::default() };
        let mut rng = WorkloadRng::seed_from_u64(3);
        const POOL: &[&str] = &["AKIA", "12AB", "abab", "bba", "tok7", " ", "abc", "45", "x", "-----BEGIN", "Q"];
        let texts: Vec<Vec<u8>> = (0..90)
            .map(|_| (0..rng.below(9)).flat_map(|_| POOL[rng.below(POOL.len() as u64) as usize].bytes()).collect())
            .collect();
        let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
        let oracles: Vec<regex::bytes::Regex> =
            rules.iter().map(|(_, p)| regex::bytes::Regex::new(&format!("(?-u){p}")).unwrap()).collect();
        let shape = BatchShape::of(&refs);
        let paths = RulePaths::of(&rules, &regex, &NfaConfig::default(), shape);
        assert!(paths[2].dfa.is_err(), "a[ab]{{8}} needs 2^9 states on the DFA path");
        // Lookups predicted almost free: `auto` puts every rule the DFA path runs there,
        // the one it refuses on the NFA path.
        let mut cheap = paths.clone();
        for r in &mut cheap {
            if let Ok(d) = &mut r.dfa {
                d.predicted_ns = 1.0;
            }
        }
        let mut seen = Vec::new();
        for (choice, paths) in [
            (PathChoice::Auto, &cheap),
            (PathChoice::Nfa, &paths),
            (PathChoice::Dfa, &paths),
            (PathChoice::Auto, &paths),
        ] {
            let set = MixedSet::new(paths.clone(), choice, shape, 256, 1).unwrap();
            let report = set.run_texts(&refs).unwrap();
            for (t, row) in refs.iter().zip(&report.hits) {
                for (k, id) in set.ids().iter().enumerate() {
                    let r = rules.iter().position(|(i, _)| i == id).unwrap();
                    assert_eq!(row[k], oracles[r].is_match(t), "{choice:?}: {id} on {:?}", String::from_utf8_lossy(t));
                }
            }
            seen.push((set.paths().to_vec(), set.refused().len()));
        }
        let d = Path::Dfa;
        assert_eq!(seen[0], (vec![d, d, Path::Nfa, d, d], 0), "auto mixes");
        assert_eq!(seen[1], (vec![Path::Nfa; 5], 0));
        assert_eq!(seen[2], (vec![Path::Dfa; 4], 1), "the DFA path refuses a[ab]{{8}}");
    }

    #[test]
    fn auto_weighs_the_set_not_each_rule_alone() {
        // Each rule alone is cheaper on the DFA path, but in one circuit the NFA path's
        // fixed costs are shared and each rule adds only its few ANDs.
        let rules: Vec<(String, String)> = (0..6).map(|i| (format!("r{i}"), format!("tok{i}[0-9]{{2}}x"))).collect();
        let shape = BatchShape { bytes: 100_000, steps: 300 };
        let mut paths = RulePaths::of(&rules, &RegexConfig::default(), &NfaConfig::default(), shape);
        let m = NfaCost::MEASURED;
        for r in &mut paths {
            let n = r.nfa.as_ref().unwrap();
            let alone = m.predict(n.program.step.and_count(), n.program.step.rounds(), shape);
            let ands = m.and_ns * n.program.step.and_count() as f64;
            r.dfa.as_mut().unwrap().predicted_ns = (alone + ands) / 2.0;
        }
        assert!(paths.iter().all(|r| r.pick(PathChoice::Auto) == Some(Path::Dfa)), "alone: the DFA path");
        assert_eq!(assign(&paths, PathChoice::Auto, shape), vec![Some(Path::Nfa); 6], "in a set: the NFA path");
        // A single rule pays the circuit's fixed costs alone: the DFA path.
        assert_eq!(assign(&paths[..1], PathChoice::Auto, shape), vec![Some(Path::Dfa)]);
    }

    #[test]
    fn a_set_no_path_takes_is_refused_with_the_reason() {
        let rules = vec![("big".to_string(), "[a-z]{30}x".to_string())];
        let regex = RegexConfig { max_states: 8, ..Default::default() };
        let paths = RulePaths::of(&rules, &regex, &NfaConfig::default(), BatchShape::GITLEAKS_SAMPLES);
        let e = MixedSet::new(paths, PathChoice::Dfa, BatchShape::GITLEAKS_SAMPLES, 8, 1).unwrap_err().to_string();
        assert!(e.contains("no rule runs on the dfa path") && e.contains("big"), "{e}");
    }
}
