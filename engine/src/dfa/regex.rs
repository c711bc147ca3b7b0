//! Regular expressions → minimal DFA over bytes, through `regex-automata`.
//!
//! Patterns use Rust `regex` syntax, with the semantics of `regex::bytes::Regex`
//! (Unicode classes match UTF-8 sequences; `(?-u:…)` may match any byte). Two semantics:
//! - **contains** (default): the machine accepts when the input *contains* a match of
//!   any pattern — the yes/no of `grep -E` or Python's `re.search` for the common
//!   syntax. Once a match is seen the machine sits in an absorbing accepting state.
//! - **full match** ([`RegexConfig::full_match`]): the whole input must match.
//!
//! `regex-automata` builds a dense DFA (unanchored start for *contains*, all-matches
//! semantics). Its match states report a match one byte late and at end of input via
//! its EOI transition; we turn that into a plain total DFA: a state accepts if its EOI
//! transition reaches a match state, and in *contains* mode any transition into a match
//! state goes to the absorbing accept state. Then [`super::minimize::minimize`].
//!
//! Unicode word boundaries (`\b` in Unicode mode) have no total byte DFA; they are
//! rejected with a hint to use the ASCII form `(?-u:\b)`.

use super::{Alphabet, Dfa, DfaError, NaturalOutput, minimize::minimize, product::union};
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::nfa::thompson;
use regex_automata::util::{primitives::StateID, start, syntax};
use regex_automata::{Anchored, MatchKind};
use std::collections::HashMap;

/// Default limit on the states of a compiled machine.
pub const DEFAULT_MAX_STATES: usize = 20_000;

/// How to compile.
#[derive(Clone, Debug)]
pub struct RegexConfig {
    /// Whole-input match instead of *contains a match*.
    pub full_match: bool,
    /// Refuse machines with more states than this (before and after minimisation).
    pub max_states: usize,
}

impl Default for RegexConfig {
    fn default() -> Self {
        RegexConfig { full_match: false, max_states: DEFAULT_MAX_STATES }
    }
}

/// Compiles one or more patterns (a machine accepting when any matches); its natural
/// output is the accept bit ([`NaturalOutput::Accept`]).
///
/// Each pattern is compiled and minimised on its own, then the machines are joined by
/// a union product, smallest first, minimising after each join. Determinising the
/// whole set at once lets the patterns' counters multiply before minimisation can
/// merge them (a 9-rule DLP set: 67,000 intermediate states and 11 s, against
/// well under a second this way).
pub fn compile(patterns: &[String], cfg: &RegexConfig) -> Result<Dfa, DfaError> {
    if patterns.is_empty() {
        return Err(DfaError::Regex { index: 0, pattern: String::new(), message: "no pattern given".into() });
    }
    let mut machines = patterns
        .iter()
        .enumerate()
        .map(|(index, pattern)| compile_one(index, pattern, cfg))
        .collect::<Result<Vec<Dfa>, _>>()?;
    machines.sort_by_key(|m| std::cmp::Reverse(m.states()));
    let mut acc = machines.pop().expect("at least one pattern");
    while let Some(next) = machines.pop() {
        acc = union(&acc, &next);
        if acc.states() > cfg.max_states {
            return Err(DfaError::RegexTooLarge { limit: cfg.max_states });
        }
    }
    Ok(acc.with_natural_output(NaturalOutput::Accept))
}

/// One pattern → minimal DFA.
fn compile_one(index: usize, pattern: &str, cfg: &RegexConfig) -> Result<Dfa, DfaError> {
    let syntax_cfg = syntax::Config::new().utf8(false);
    syntax::parse_with(pattern, &syntax_cfg).map_err(|e| DfaError::Regex {
        index,
        pattern: pattern.to_string(),
        message: e.to_string(),
    })?;
    let build_error = |message: String| DfaError::Regex { index, pattern: pattern.to_string(), message };
    let ra = dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(if cfg.full_match { StartKind::Anchored } else { StartKind::Unanchored })
                .match_kind(MatchKind::All)
                .minimize(false)
                .dfa_size_limit(Some(512 << 20))
                .determinize_size_limit(Some(512 << 20)),
        )
        .syntax(syntax_cfg)
        .thompson(thompson::Config::new().utf8(false))
        .build(pattern)
        .map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            if msg.contains("Unicode word boundar") {
                msg.push_str(" (write (?-u:\\b) for an ASCII word boundary)");
            }
            if msg.contains("size limit") {
                DfaError::RegexTooLarge { limit: cfg.max_states }
            } else {
                build_error(msg)
            }
        })?;
    let anchored = if cfg.full_match { Anchored::Yes } else { Anchored::No };
    let start = ra
        .start_state(&start::Config::new().anchored(anchored))
        .map_err(|e| build_error(format!("no start state: {e}")))?;
    let m = explore(&ra, start, cfg).map_err(|e| match e {
        DfaError::Regex { message, .. } => build_error(message),
        other => other,
    })?;
    let min = minimize(&m);
    if min.states() > cfg.max_states {
        return Err(DfaError::RegexTooLarge { limit: cfg.max_states });
    }
    Ok(min)
}

/// Breadth-first walk of `ra` from `start`, producing a total byte DFA.
fn explore(ra: &dense::DFA<Vec<u32>>, start: StateID, cfg: &RegexConfig) -> Result<Dfa, DfaError> {
    const DEAD: u32 = 0;
    const ACCEPT: u32 = 1; // contains mode only; otherwise unused and pruned
    let mut ids: HashMap<StateID, u32> = HashMap::new();
    let mut order: Vec<StateID> = Vec::new();
    let mut id_of = |s: StateID, order: &mut Vec<StateID>| -> Result<u32, DfaError> {
        let next = (order.len() + 2) as u32;
        let id = *ids.entry(s).or_insert(next);
        if id == next {
            order.push(s);
            if order.len() + 2 > cfg.max_states.saturating_mul(4) {
                return Err(DfaError::RegexTooLarge { limit: cfg.max_states });
            }
        }
        Ok(id)
    };
    let start_id = id_of(start, &mut order)?;
    let mut delta: Vec<u32> = vec![DEAD; 256]; // DEAD loops
    delta.extend(std::iter::repeat_n(ACCEPT, 256)); // ACCEPT loops
    let mut accepting = vec![false, !cfg.full_match];
    let mut i = 0;
    while i < order.len() {
        let s = order[i];
        accepting.push(ra.is_match_state(ra.next_eoi_state(s)));
        for b in 0..=255u8 {
            let t = ra.next_state(s, b);
            let target = if ra.is_quit_state(t) {
                return Err(DfaError::Regex {
                    index: 0,
                    pattern: String::new(),
                    message: "a Unicode word boundary cannot be compiled to a byte DFA; use (?-u:\\b)".into(),
                });
            } else if ra.is_dead_state(t) {
                DEAD
            } else if !cfg.full_match && ra.is_match_state(t) {
                ACCEPT
            } else {
                id_of(t, &mut order)?
            };
            delta.push(target);
        }
        i += 1;
    }
    let states = order.len() + 2;
    let m = Dfa::new(Alphabet::Bytes, states, start_id, accepting, delta, "regex")?;
    Ok(m)
}

/// Restricts a machine to the given characters (each must be a single byte, i.e. ASCII):
/// the result has alphabet `chars` and the columns of those bytes. Used for machines
/// whose inputs are known to come from a small alphabet (DNA: `ACGT`).
pub fn restrict_to_chars(dfa: &Dfa, chars: &str) -> Result<Dfa, DfaError> {
    let field = |message: String| DfaError::Field { file: "--alphabet".into(), field: "alphabet".into(), message };
    if !matches!(dfa.alphabet(), Alphabet::Bytes) {
        return Err(field("only a byte machine can be restricted".into()));
    }
    let alphabet = Alphabet::chars(chars).ok_or_else(|| field(format!("{chars:?} is empty or repeats a character")))?;
    let bytes: Vec<u32> = chars
        .chars()
        .map(|c| if c.is_ascii() { Ok(c as u32) } else { Err(field(format!("{c:?} is not an ASCII character"))) })
        .collect::<Result<_, _>>()?;
    let delta = (0..dfa.states() as u32).flat_map(|s| bytes.iter().map(move |&b| dfa.next(s, b))).collect();
    let m = Dfa::new(alphabet, dfa.states(), dfa.start(), dfa.accepting().to_vec(), delta, "restrict")?
        .with_natural_output(dfa.natural_output());
    Ok(minimize(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(m: &Dfa, s: &[u8]) -> bool {
        m.is_accepting(m.run(&m.encode(s, 0).unwrap()))
    }

    #[test]
    fn compiled_machines_answer_with_their_accept_bit() {
        let m = compile(&["ab".into(), "c".into()], &RegexConfig::default()).unwrap();
        assert_eq!(m.natural_output(), NaturalOutput::Accept);
        assert_eq!(restrict_to_chars(&m, "abc").unwrap().natural_output(), NaturalOutput::Accept);
        assert_eq!(minimize(&m).natural_output(), NaturalOutput::Accept);
        // The engine's default is what the machine answers.
        let engine = crate::Engine::builder(m).build().unwrap();
        assert_eq!(engine.settings().reveal, crate::protocol::Reveal::Accept);
        let engine = crate::Engine::builder(crate::dfa::json::seed_machine()).build().unwrap();
        assert_eq!(engine.settings().reveal, crate::protocol::Reveal::State);
    }

    #[test]
    fn contains_and_full_match() {
        let p = vec!["ab".to_string()];
        let c = compile(&p, &RegexConfig::default()).unwrap();
        let f = compile(&p, &RegexConfig { full_match: true, ..Default::default() }).unwrap();
        for (s, contains, full) in [
            (&b""[..], false, false),
            (b"ab", true, true),
            (b"xaby", true, false),
            (b"a", false, false),
            (b"ba", false, false),
        ] {
            assert_eq!(run(&c, s), contains, "{s:?}");
            assert_eq!(run(&f, s), full, "{s:?}");
        }
        // Full match of "ab" is the seed's machine: 4 states (start, a, ab, dead).
        assert_eq!(f.states(), 4);
    }

    #[test]
    fn anchors_and_sets() {
        let m = compile(&["^ab".into(), "cd$".into()], &RegexConfig::default()).unwrap();
        assert!(run(&m, b"abzz"));
        assert!(!run(&m, b"zabz"));
        assert!(run(&m, b"zzcd"));
        assert!(!run(&m, b"zcdz"));
    }

    #[test]
    fn errors_are_clear() {
        let e = compile(&["a(b".into()], &RegexConfig::default()).unwrap_err().to_string();
        assert!(e.starts_with("regex 0 (\"a(b\")") && e.contains("unclosed group"), "{e}");
        let e = compile(&["ok".into(), "[z-a]".into()], &RegexConfig::default()).unwrap_err().to_string();
        assert!(e.starts_with("regex 1"), "{e}");
        let e = compile(&["\\bword\\b".into()], &RegexConfig::default()).unwrap_err().to_string();
        assert!(e.contains("(?-u:\\b)"), "{e}");
        let e = compile(&["a[ab]{12}".into()], &RegexConfig { max_states: 100, ..Default::default() }).unwrap_err();
        assert_eq!(e, DfaError::RegexTooLarge { limit: 100 });
        assert!(compile(&[], &RegexConfig::default()).is_err());
    }

    #[test]
    fn restriction_to_acgt() {
        let m = compile(&["GAATTC".into()], &RegexConfig::default()).unwrap();
        let r = restrict_to_chars(&m, "ACGT").unwrap();
        assert_eq!(r.symbols(), 4);
        assert!(run(&r, b"TTGAATTCA"));
        assert!(!run(&r, b"TTGAATCA"));
        assert!(r.encode(b"ACGN", 0).is_err());
        assert!(restrict_to_chars(&m, "AA").is_err());
    }
}
