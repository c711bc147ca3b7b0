//! Search-semantics shortcuts on the parsed pattern: drop what cannot change *contains*.
//!
//! DESIGN §8: contains(P·R·S) = contains(R) when P and S match the empty string at
//! every position. So a pattern's leading and trailing parts that always can match
//! empty are dropped, and a counted repetition at either end keeps only its minimum
//! (`X{m,n}` is `X{m}·X{0,n−m}`, and `X{0,k}` matches empty anywhere):
//! `[\w.-]{0,50}?key…` becomes `key…`, `xox[baprs]-[0-9A-Za-z-]{10,48}` becomes
//! `…{10}`. An anchor or word boundary does *not* match empty everywhere, so it stops
//! the trimming (`^a*b`, `\bX{0,5}Y` keep their prefix). Only the *contains* answer is
//! kept; full-match machines are compiled from the pattern as written.
//!
//! Proof sketch for one step at the front (the back is the mirror): if P matches empty
//! at every position, a match of R at `[j, k)` is a match of P·R at `[j, k)`; and a
//! match of P·R contains one of R. Alternatives are trimmed branch by branch
//! (contains(A|B) = contains(A) ∨ contains(B)); groups are transparent.

use regex_syntax::hir::{Hir, HirKind, Repetition};

/// The pattern with its always-empty-matching prefix and suffix removed, accepting
/// (under search semantics) exactly the inputs `hir` accepts.
pub fn for_search(hir: &Hir) -> Hir {
    back(&front(hir))
}

/// Whether `h` can match the empty string at every position of every input (a
/// sufficient, structural test: no look-around on the empty path).
fn always_empty(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Empty => true,
        HirKind::Repetition(r) => r.min == 0 || always_empty(&r.sub),
        HirKind::Capture(c) => always_empty(&c.sub),
        HirKind::Concat(items) => items.iter().all(always_empty),
        HirKind::Alternation(alts) => alts.iter().any(always_empty),
        HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => false,
    }
}

/// Which end of a pattern is being trimmed.
#[derive(Clone, Copy)]
enum End {
    Front,
    Back,
}

fn front(h: &Hir) -> Hir {
    trim(h, End::Front)
}

fn back(h: &Hir) -> Hir {
    trim(h, End::Back)
}

/// `h` with what always matches empty removed from one end: contains(h·S) =
/// contains(trim(h, Front)·S) for every S (and the mirror for the back).
fn trim(h: &Hir, end: End) -> Hir {
    if always_empty(h) {
        return Hir::empty();
    }
    match h.kind() {
        HirKind::Capture(c) => trim(&c.sub, end),
        HirKind::Alternation(alts) => Hir::alternation(alts.iter().map(|a| trim(a, end)).collect()),
        HirKind::Repetition(r) if r.max != Some(r.min) => {
            Hir::repetition(Repetition { min: r.min, max: Some(r.min), greedy: r.greedy, sub: r.sub.clone() })
        }
        HirKind::Concat(items) => {
            let mut items: Vec<Hir> = items.clone();
            match end {
                End::Front => {
                    let drop = items.iter().take_while(|i| always_empty(i)).count();
                    items.drain(..drop);
                    if let Some(first) = items.first_mut() {
                        *first = trim(first, end);
                    }
                }
                End::Back => {
                    let keep = items.len() - items.iter().rev().take_while(|i| always_empty(i)).count();
                    items.truncate(keep);
                    if let Some(last) = items.last_mut() {
                        *last = trim(last, end);
                    }
                }
            }
            Hir::concat(items)
        }
        _ => h.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::util::syntax;

    fn trimmed(p: &str) -> String {
        for_search(&syntax::parse(p).unwrap()).to_string()
    }

    fn same(a: &str, b: &str) {
        assert_eq!(trimmed(a), syntax::parse(b).unwrap().to_string(), "{a} against {b}");
    }

    #[test]
    fn nullable_ends_are_dropped() {
        same("xox[bp]-[0-9]{10,48}", "xox[bp]-[0-9]{10}");
        same("[a-z.-]{0,50}?key", "key");
        same("a*b+c?", "b");
        same("(?:x*(ab)y?)", "ab");
        same("(?:q*a|b{2,}c*)", "a|b{2}");
        same("a{0,3}", "");
        same("(?:)", "");
    }

    #[test]
    fn anchors_and_boundaries_stop_the_trimming() {
        same("^a*b", "^a*b");
        same("a*b$", "b$");
        same("(?-u:\\b)x{0,5}y", "(?-u:\\b)x{0,5}y");
        same("x(?:y|$)", "x(?:y|$)");
        // A look inside a repetition that may be skipped does not stop it.
        same("(?:^a){0,2}b", "b");
    }

    #[test]
    fn the_middle_is_left_alone() {
        same("a[0-9]{2,5}b", "a[0-9]{2,5}b");
        same("(?:ab){1,3}", "ab");
        same("(?:a*b){2}", "(?:a*b){2}");
    }
}
