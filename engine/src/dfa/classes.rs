//! Symbol classes: symbols whose transition columns are identical.
//!
//! Two symbols `a`, `b` are equivalent when `δ(s, a) = δ(s, b)` for every state `s`;
//! the machine cannot tell them apart, so the protocols may look up a symbol's class
//! once and run the per-step lookup over `|S|·|classes|` entries instead of `|S|·|Σ|`
//! (regex-automata's byte classes play the same role for its DFAs).

use super::Dfa;
use std::collections::HashMap;

/// The partition of a machine's symbols into classes.
///
/// Invariants: `class_of.len() == |Σ|`; classes are numbered `0..count` in order of
/// their smallest symbol; `representative[c]` is the smallest symbol of class `c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolClasses {
    class_of: Vec<u32>,
    representative: Vec<u32>,
}

impl SymbolClasses {
    /// Computes the classes of `dfa` (`O(|S|·|Σ|)` time and memory).
    pub fn of(dfa: &Dfa) -> SymbolClasses {
        let (n, k) = (dfa.states(), dfa.symbols());
        let mut seen: HashMap<Vec<u32>, u32> = HashMap::new();
        let mut class_of = Vec::with_capacity(k);
        let mut representative = Vec::new();
        for a in 0..k {
            let column: Vec<u32> = (0..n).map(|s| dfa.delta()[s * k + a]).collect();
            let next = seen.len() as u32;
            let c = *seen.entry(column).or_insert(next);
            if c == next {
                representative.push(a as u32);
            }
            class_of.push(c);
        }
        SymbolClasses { class_of, representative }
    }

    /// Number of classes.
    pub fn count(&self) -> usize {
        self.representative.len()
    }

    /// The class of symbol `a`.
    pub fn class_of(&self, a: u32) -> u32 {
        self.class_of[a as usize]
    }

    /// The class of every symbol, indexed by symbol.
    pub fn map(&self) -> &[u32] {
        &self.class_of
    }

    /// The smallest symbol of class `c`.
    pub fn representative(&self, c: u32) -> u32 {
        self.representative[c as usize]
    }
}

#[cfg(test)]
mod tests {
    use crate::dfa::{Alphabet, Dfa};

    #[test]
    fn identical_columns_share_a_class() {
        // Symbols 0 and 2 behave alike.
        let m =
            Dfa::new(Alphabet::chars("abc").unwrap(), 2, 0, vec![false, true], vec![1, 0, 1, 1, 1, 1], "t").unwrap();
        let c = m.classes();
        assert_eq!(c.count(), 2);
        assert_eq!(c.map(), &[0, 1, 0]);
        assert_eq!(c.representative(1), 1);
    }
}
