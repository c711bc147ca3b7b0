//! Thompson NFA → minimal byte DFA, by a bounded walk of `regex-automata`'s lazy DFA.
//!
//! The subset construction is `regex-automata`'s own (its lazy DFA computes one DFA
//! state per call, with anchors and ASCII word boundaries resolved by its one-byte
//! match delay); what this module decides is *which* states get computed:
//! - only states reachable from the start, breadth first;
//! - under *contains* semantics, nothing past a match: a transition into a match state
//!   goes to one absorbing accepting state and the match state is never expanded. The
//!   match ends that a dense all-matches DFA tracks after the first match (the cause
//!   of most of its states on `…{10,48}`) are never built;
//! - at most `max_states` states: the walk stops as soon as it would build one more,
//!   so the limit bounds time and memory, not only the result.
//!
//! The walk records one transition per byte class of the NFA (not per byte), the
//! machine is minimised over those classes, and only the minimal machine is widened
//! to 256 byte columns. The lazy DFA's cache is given room for every state the walk
//! may build and is never cleared (a clear would invalidate the state ids the walk
//! holds): should it want to, the walk stops with the same size error.
//!
//! # Cost
//! `O(states · classes)` lazy-DFA transitions (each one subset step over the NFA), then
//! [`super::minimize::minimize`] over the classes; memory `O(states · (classes + the
//! NFA states a subset holds))`.

use super::{Alphabet, Dfa, minimize::minimize};
use regex_automata::hybrid::{
    LazyStateID,
    dfa::{Cache, DFA},
};
use regex_automata::nfa::thompson::NFA;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};
use std::collections::HashMap;

/// Why a walk stopped short of a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WalkError {
    /// More than the allowed states (or the lazy DFA's cache wanted clearing).
    TooLarge,
    /// The NFA cannot become a byte DFA (a Unicode word boundary), or the lazy DFA
    /// refused it; the message says why.
    Build(String),
}

/// The minimal byte DFA of `nfa`: *contains a match* when `!full_match` (unanchored
/// start, absorbing accept), else *the whole input matches* (anchored start). Refuses
/// with [`WalkError::TooLarge`] as soon as more than `max_states` states (besides the
/// dead and the absorbing accept state) would be built.
pub(crate) fn determinize(nfa: NFA, full_match: bool, max_states: usize) -> Result<Dfa, WalkError> {
    let lazy = DFA::builder()
        .configure(
            DFA::config()
                .match_kind(MatchKind::All)
                .byte_classes(true)
                // Room for every state the walk may build; never cleared (see above).
                .cache_capacity(usize::MAX >> 8)
                .skip_cache_capacity_check(true)
                .minimum_cache_clear_count(Some(0))
                .minimum_bytes_per_state(None),
        )
        .build_from_nfa(nfa)
        .map_err(|e| WalkError::Build(chain(&e)))?;
    let mut cache = Cache::new(&lazy);
    let too_large = |_| WalkError::TooLarge;
    let classes = lazy.byte_classes();
    let class_of: Vec<u8> = (0..=255u8).map(|b| classes.get(b)).collect();
    let k = classes.alphabet_len() - 1; // the last class is end of input
    let mut reps = vec![0u8; k];
    for b in (0..=255u8).rev() {
        reps[class_of[b as usize] as usize] = b;
    }
    let anchored = if full_match { Anchored::Yes } else { Anchored::No };
    let start = lazy
        .start_state(&mut cache, &start::Config::new().anchored(anchored))
        .map_err(|e| WalkError::Build(format!("no start state: {e}")))?;

    const DEAD: u32 = 0;
    const ACCEPT: u32 = 1; // contains only; unreachable (and pruned) under full match
    let mut ids: HashMap<LazyStateID, u32> = HashMap::from([(start, 2)]);
    let mut order: Vec<LazyStateID> = vec![start];
    let mut delta: Vec<u32> = vec![DEAD; k]; // DEAD loops
    delta.extend(std::iter::repeat_n(ACCEPT, k)); // ACCEPT loops
    let mut accepting = vec![false, !full_match];
    let mut i = 0;
    while i < order.len() {
        let s = order[i];
        accepting.push(lazy.next_eoi_state(&mut cache, s).map_err(too_large)?.is_match());
        for &b in &reps {
            let t = lazy.next_state(&mut cache, s, b).map_err(too_large)?;
            let target = if t.is_quit() {
                return Err(WalkError::Build(UNICODE_WORD_BOUNDARY.into()));
            } else if t.is_dead() {
                DEAD
            } else if !full_match && t.is_match() {
                ACCEPT
            } else if let Some(&id) = ids.get(&t) {
                id
            } else {
                if order.len() >= max_states {
                    return Err(WalkError::TooLarge);
                }
                let id = order.len() as u32 + 2;
                ids.insert(t, id);
                order.push(t);
                id
            };
            delta.push(target);
        }
        i += 1;
    }
    if cache.clear_count() != 0 {
        return Err(WalkError::TooLarge); // not reached: a clear is an error above
    }
    let states = order.len() + 2;
    let class_alphabet =
        Alphabet::from_chars((0..k as u32).map(class_symbol).collect()).expect("at most 256 distinct classes");
    let walked = Dfa::new(class_alphabet, states, 2, accepting, delta, "determinize")
        .map_err(|e| WalkError::Build(e.to_string()))?;
    let min = minimize(&walked);
    let wide = (0..min.states() as u32).flat_map(|s| class_of.iter().map(move |&c| (s, c)));
    let delta = wide.map(|(s, c)| min.next(s, u32::from(c))).collect();
    Dfa::new(Alphabet::Bytes, min.states(), min.start(), min.accepting().to_vec(), delta, "determinize")
        .map_err(|e| WalkError::Build(e.to_string()))
}

/// The error text of a Unicode word boundary, with the ASCII form to use instead.
pub(crate) const UNICODE_WORD_BOUNDARY: &str =
    "a Unicode word boundary cannot be compiled to a byte DFA; use (?-u:\\b)";

/// A stand-in character for byte class `c` (private-use plane; never shown).
fn class_symbol(c: u32) -> char {
    char::from_u32(0xE000 + c).expect("private-use code point")
}

/// An error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::nfa::thompson;

    fn nfa(p: &str) -> NFA {
        thompson::Compiler::new()
            .syntax(regex_automata::util::syntax::Config::new().utf8(false))
            .configure(thompson::Config::new().utf8(false))
            .build(p)
            .unwrap()
    }

    fn accepts(m: &Dfa, s: &[u8]) -> bool {
        m.is_accepting(m.run(&m.encode(s, 0).unwrap()))
    }

    #[test]
    fn contains_machines_are_absorbing_and_small() {
        // Every match end up to 48 bytes on is what an all-matches DFA tracks; with
        // nothing explored past the first match the walk stays under 200 states.
        let m = determinize(nfa("xox[bp]-[a-z]{10,48}"), false, 200).unwrap();
        assert!(accepts(&m, b"..xoxb-abcdefghij"));
        assert!(accepts(&m, b"xoxb-abcdefghij and more"));
        assert!(!accepts(&m, b"xoxb-abcdefghi"));
    }

    #[test]
    fn the_limit_bounds_the_walk() {
        // `a` then any 12 bytes, under search: 2^12 live offsets to remember.
        assert_eq!(determinize(nfa("a[ab]{12}"), false, 100), Err(WalkError::TooLarge));
        assert!(determinize(nfa("a[ab]{12}"), false, 20_000).is_ok());
    }

    #[test]
    fn full_match_is_not_absorbing() {
        let m = determinize(nfa("ab"), true, 100).unwrap();
        assert_eq!(m.states(), 4);
        assert!(accepts(&m, b"ab"));
        assert!(!accepts(&m, b"abb"));
    }

    #[test]
    fn unicode_word_boundaries_are_refused_with_a_hint() {
        let e = determinize(nfa(r"\bx"), false, 100).unwrap_err();
        assert!(matches!(&e, WalkError::Build(m) if m.contains("Unicode word boundar")), "{e:?}");
    }
}
