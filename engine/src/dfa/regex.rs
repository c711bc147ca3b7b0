//! Regular expressions → minimal DFA over bytes, through `regex-automata`.
//!
//! Patterns use Rust `regex` syntax, with the semantics of `regex::bytes::Regex`
//! (Unicode classes match UTF-8 sequences; `(?-u:…)` may match any byte). Two semantics:
//! - **contains** (default): the machine accepts when the input *contains* a match of
//!   any pattern — the yes/no of `grep -E` or Python's `re.search` for the common
//!   syntax. Once a match is seen the machine sits in an absorbing accepting state.
//! - **full match** ([`RegexConfig::full_match`]): the whole input must match.
//!
//! The steps: parse each pattern (`regex-syntax`, bytes allowed); under *contains*,
//! drop what cannot change the answer ([`super::trim`]: nullable prefixes and
//! suffixes, counted repetitions at either end cut to their minimum); one Thompson NFA
//! for the whole set (the patterns as one alternation);
//! then `determinize.rs`, a walk of the lazy DFA that expands nothing past a
//! match and stops as soon as it exceeds [`RegexConfig::max_states`]. Should the set
//! as one NFA exceed the limit (the patterns' counters multiplying before
//! minimisation can merge them), each pattern is compiled on its own and the machines
//! are joined by union products in a balanced tree, minimising after each join.
//!
//! Unicode word boundaries (`\b` in Unicode mode) have no total byte DFA; they are
//! rejected with a hint to use the ASCII form `(?-u:\b)`.

use super::determinize::{UNICODE_WORD_BOUNDARY, WalkError, determinize};
use super::{Alphabet, Dfa, DfaError, NaturalOutput, minimize::minimize, product::union, trim};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_syntax::hir::Hir;

/// Default limit on the states of a compiled machine.
pub const DEFAULT_MAX_STATES: usize = 20_000;

/// How to compile.
#[derive(Clone, Debug)]
pub struct RegexConfig {
    /// Whole-input match instead of *contains a match*.
    pub full_match: bool,
    /// Refuse machines with more states than this: the determinisation stops as soon
    /// as it would build more (so this bounds the work as well as the result).
    pub max_states: usize,
    /// Under *contains*, drop nullable prefixes and suffixes first ([`super::trim`]).
    /// On by default; off only to test that the answers do not change.
    pub trim: bool,
}

impl Default for RegexConfig {
    fn default() -> Self {
        RegexConfig { full_match: false, max_states: DEFAULT_MAX_STATES, trim: true }
    }
}

/// Compiles one or more patterns (a machine accepting when any matches); its natural
/// output is the accept bit ([`NaturalOutput::Accept`]).
///
/// # Performance
/// One NFA for the set, determinised once: 1,000 words take as long as their
/// alternation. When that exceeds the limit the patterns are compiled one by one and
/// joined by a balanced tree of unions (`O(log n)` rounds of products, never the
/// quadratic chain of joining each pattern to everything before it).
pub fn compile(patterns: &[String], cfg: &RegexConfig) -> Result<Dfa, DfaError> {
    if patterns.is_empty() {
        return Err(DfaError::Regex { index: 0, pattern: String::new(), message: "no pattern given".into() });
    }
    let hirs = patterns.iter().enumerate().map(|(i, p)| parse(i, p, cfg)).collect::<Result<Vec<Hir>, _>>()?;
    let first = if hirs.len() > 1 { cfg.max_states.min(first_walk_budget(hirs.len())) } else { cfg.max_states };
    let whole = match build(&hirs, &RegexConfig { max_states: first, ..cfg.clone() }) {
        Ok(m) => Ok(m),
        Err(WalkError::TooLarge) if hirs.len() > 1 => Err(()),
        Err(WalkError::Build(_)) if hirs.len() > 1 => Err(()), // each alone names the culprit
        Err(e) => return Err(walk_error(0, &patterns[0], e, cfg)),
    };
    let m = match whole {
        Ok(m) => m,
        Err(()) => by_products(&hirs, patterns, cfg)?,
    };
    if m.states() > cfg.max_states {
        return Err(DfaError::RegexTooLarge { limit: cfg.max_states });
    }
    Ok(m.with_natural_output(NaturalOutput::Accept))
}

/// States the walk of a whole set may build before the set is compiled pattern by
/// pattern instead: [`FIRST_WALK_STATES`] plus [`FIRST_WALK_STATES_PER_PATTERN`] a
/// pattern. A set whose joint walk explodes (counters multiplying before minimisation
/// can merge them) then fails fast: with the whole limit as its budget the DLP rules
/// (7 patterns, 781 states once joined) spent 0.85 s walking 20,000 states before the
/// products took over, against 0.18 s before the walk was bounded by the limit. A set of
/// many plain words (1,000 words: 5,501 states as one walk) stays within it.
fn first_walk_budget(patterns: usize) -> usize {
    FIRST_WALK_STATES.saturating_add(FIRST_WALK_STATES_PER_PATTERN.saturating_mul(patterns))
}

/// See [`first_walk_budget`].
const FIRST_WALK_STATES: usize = 2_048;
/// See [`first_walk_budget`].
const FIRST_WALK_STATES_PER_PATTERN: usize = 16;

/// Each pattern compiled alone, the machines joined by a balanced tree of union
/// products (each minimised and held to the limit).
fn by_products(hirs: &[Hir], patterns: &[String], cfg: &RegexConfig) -> Result<Dfa, DfaError> {
    let mut machines = hirs
        .iter()
        .enumerate()
        .map(|(i, h)| build(std::slice::from_ref(h), cfg).map_err(|e| walk_error(i, &patterns[i], e, cfg)))
        .collect::<Result<Vec<Dfa>, _>>()?;
    while machines.len() > 1 {
        let mut next = Vec::with_capacity(machines.len().div_ceil(2));
        let mut it = machines.into_iter();
        while let Some(a) = it.next() {
            let joined = match it.next() {
                Some(b) => union(&a, &b),
                None => a,
            };
            if joined.states() > cfg.max_states {
                return Err(DfaError::RegexTooLarge { limit: cfg.max_states });
            }
            next.push(joined);
        }
        machines = next;
    }
    Ok(machines.pop().expect("at least one pattern"))
}

/// Parses pattern `index` (bytes allowed, as `regex::bytes`), refuses a Unicode word
/// boundary by name, and trims it for search when the configuration says so.
fn parse(index: usize, pattern: &str, cfg: &RegexConfig) -> Result<Hir, DfaError> {
    let error = |message: String| DfaError::Regex { index, pattern: pattern.to_string(), message };
    let hir = syntax::parse_with(pattern, &syntax::Config::new().utf8(false)).map_err(|e| error(e.to_string()))?;
    if hir.properties().look_set().contains_word_unicode() {
        return Err(error(UNICODE_WORD_BOUNDARY.into()));
    }
    Ok(if cfg.trim && !cfg.full_match { trim::for_search(&hir) } else { hir })
}

/// One NFA for `hirs`, determinised and minimised under the limit.
///
/// The set is one alternation, not an NFA of many patterns: *any matches* is all the
/// machine answers, and one alternation lets `regex-syntax` factor common prefixes
/// (1,000 words as 1,000 patterns: 10.5 s, one subset step re-entering every pattern's
/// start; as one alternation: 0.4 s, measured).
fn build(hirs: &[Hir], cfg: &RegexConfig) -> Result<Dfa, WalkError> {
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().utf8(false).shrink(false))
        .build_from_hir(&Hir::alternation(hirs.to_vec()))
        .map_err(|e| WalkError::Build(e.to_string()))?;
    determinize(nfa, cfg.full_match, cfg.max_states)
}

/// The error of pattern `index`.
fn walk_error(index: usize, pattern: &str, e: WalkError, cfg: &RegexConfig) -> DfaError {
    match e {
        WalkError::TooLarge => DfaError::RegexTooLarge { limit: cfg.max_states },
        WalkError::Build(message) => DfaError::Regex { index, pattern: pattern.to_string(), message },
    }
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
    fn the_tree_of_products_equals_the_joint_machine() {
        // Both joins of the same sets give the same minimal machine (minimal DFAs of
        // one language are equal up to numbering, and both number breadth first).
        let sets: &[&[&str]] = &[&["ab", "c"], &["a[ab]{3}", "b[ab]{2}c", "^x", "y$", "(?-u:\\b)z"], &["", "q"]];
        for cfg in [RegexConfig::default(), RegexConfig { full_match: true, ..Default::default() }] {
            for set in sets {
                let patterns: Vec<String> = set.iter().map(|p| p.to_string()).collect();
                let hirs: Vec<Hir> = patterns.iter().enumerate().map(|(i, p)| parse(i, p, &cfg).unwrap()).collect();
                let joint = build(&hirs, &cfg).unwrap();
                assert_eq!(by_products(&hirs, &patterns, &cfg).unwrap(), joint, "{set:?} {cfg:?}");
            }
        }
    }

    #[test]
    fn a_set_too_large_as_one_nfa_is_joined_by_products() {
        // Two counters under search: as one NFA the walk needs 803 states (measured),
        // alone each and their minimal union fit in 137.
        let set = vec!["a.{4}".to_string(), "b.{4}".to_string()];
        let hirs: Vec<Hir> =
            set.iter().enumerate().map(|(i, p)| parse(i, p, &RegexConfig::default()).unwrap()).collect();
        let full = compile(&set, &RegexConfig::default()).unwrap();
        let cfg = RegexConfig { max_states: 200, ..Default::default() };
        assert_eq!(build(&hirs, &cfg).unwrap_err(), WalkError::TooLarge, "{} states", full.states());
        assert_eq!(compile(&set, &cfg).unwrap(), full);
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
