//! Minimisation by Moore partition refinement, and language equivalence.
//!
//! Unreachable states are dropped first; then the partition {accepting, rejecting} is
//! refined by the blocks of each state's successors until it is stable. The result is
//! the unique minimal DFA of the language, with states numbered in breadth-first order
//! from the start state (so the start state is 0 and the output is deterministic).
//!
//! # Cost
//! `O(r·|S|·|Σ|)` for `r` refinement rounds (at most `|S|`, typically a few dozen);
//! ample for the machines the protocols can run (their tables grow as `|S|·|Σ|`).

use super::{Dfa, DfaError};
use std::collections::{HashMap, VecDeque};

/// States reachable from the start, in breadth-first order (start first).
fn reachable(dfa: &Dfa) -> Vec<u32> {
    let mut seen = vec![false; dfa.states()];
    let mut order = vec![dfa.start()];
    seen[dfa.start() as usize] = true;
    let mut i = 0;
    while i < order.len() {
        let s = order[i];
        for a in 0..dfa.symbols() as u32 {
            let t = dfa.next(s, a);
            if !seen[t as usize] {
                seen[t as usize] = true;
                order.push(t);
            }
        }
        i += 1;
    }
    order
}

/// The minimal DFA accepting the same language over the same alphabet.
///
/// Refinement looks at one representative symbol per [`super::SymbolClasses`] class
/// (symbols with identical columns cannot split a block differently).
pub fn minimize(dfa: &Dfa) -> Dfa {
    let labels: Vec<u64> = dfa.accepting().iter().map(|&a| u64::from(a)).collect();
    minimize_labeled(dfa, &labels).0
}

/// The minimal machine that gives every input the same *label* as `dfa` (a Moore
/// machine: `labels[s]` is state `s`'s output; a state accepts when its label is not 0),
/// with the labels of its states. [`minimize`] is the case `label = [s ∈ F]`; a machine
/// set's product labels each state with the rules it has seen match
/// ([`super::set`]), so states that agree on acceptance but not on which rule matched
/// stay apart.
///
/// # Panics
/// If `labels` does not have one entry per state (a caller bug).
pub fn minimize_labeled(dfa: &Dfa, labels: &[u64]) -> (Dfa, Vec<u64>) {
    assert_eq!(labels.len(), dfa.states(), "one label per state");
    let k = dfa.symbols();
    let classes = dfa.classes();
    let reps: Vec<u32> = (0..classes.count() as u32).map(|c| classes.representative(c)).collect();
    let order = reachable(dfa);
    let mut block: Vec<u32> = vec![u32::MAX; dfa.states()];
    let mut first: HashMap<u64, u32> = HashMap::new();
    for &s in &order {
        let fresh = first.len() as u32;
        block[s as usize] = *first.entry(labels[s as usize]).or_insert(fresh);
    }
    let mut count = first.len();
    let mut signature = Vec::with_capacity(reps.len() + 1);
    loop {
        let mut ids: HashMap<Vec<u32>, u32> = HashMap::with_capacity(count * 2);
        let mut next = block.clone();
        for &s in &order {
            signature.clear();
            signature.push(block[s as usize]);
            signature.extend(reps.iter().map(|&a| block[dfa.next(s, a) as usize]));
            let fresh = ids.len() as u32;
            next[s as usize] = *ids.entry(signature.clone()).or_insert(fresh);
        }
        let new_count = ids.len();
        block = next;
        if new_count == count {
            break;
        }
        count = new_count;
    }
    // Renumber blocks in breadth-first order from the start.
    let mut number: Vec<u32> = vec![u32::MAX; count];
    let mut rep: Vec<u32> = Vec::with_capacity(count);
    let mut queue = VecDeque::from([dfa.start()]);
    number[block[dfa.start() as usize] as usize] = 0;
    rep.push(dfa.start());
    while let Some(s) = queue.pop_front() {
        for a in 0..k as u32 {
            let t = dfa.next(s, a);
            let b = block[t as usize] as usize;
            if number[b] == u32::MAX {
                number[b] = rep.len() as u32;
                rep.push(t);
                queue.push_back(t);
            }
        }
    }
    let delta = rep
        .iter()
        .flat_map(|&s| (0..k as u32).map(move |a| (s, a)))
        .map(|(s, a)| number[block[dfa.next(s, a) as usize] as usize])
        .collect();
    let accepting = rep.iter().map(|&s| labels[s as usize] != 0).collect();
    let m = Dfa::new(dfa.alphabet().clone(), rep.len(), 0, accepting, delta, "minimize")
        .expect("the quotient of a valid DFA is valid")
        .with_natural_output(dfa.natural_output());
    (m, rep.iter().map(|&s| labels[s as usize]).collect())
}

/// Whether two machines over alphabets of the same size accept the same language
/// (breadth-first search of the product; `O(|S1|·|S2|·|Σ|)` at worst).
pub fn equivalent(a: &Dfa, b: &Dfa) -> Result<bool, DfaError> {
    if a.symbols() != b.symbols() {
        return Err(DfaError::Field {
            file: "equivalence".into(),
            field: "alphabet".into(),
            message: format!("{} symbols against {}", a.symbols(), b.symbols()),
        });
    }
    let mut seen = std::collections::HashSet::from([(a.start(), b.start())]);
    let mut queue = VecDeque::from([(a.start(), b.start())]);
    while let Some((s, t)) = queue.pop_front() {
        if a.is_accepting(s) != b.is_accepting(t) {
            return Ok(false);
        }
        for x in 0..a.symbols() as u32 {
            let p = (a.next(s, x), b.next(t, x));
            if seen.insert(p) {
                queue.push_back(p);
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dfa::random::random_dfa;
    use pmsm_kernels::rng::WorkloadRng;

    #[test]
    fn minimisation_preserves_the_language_on_random_machines() {
        let mut rng = WorkloadRng::seed_from_u64(11);
        for i in 0..200 {
            let n = 1 + rng.below(60) as usize;
            let k = 1 + rng.below(6) as usize;
            let m = random_dfa(n, k, &mut rng);
            let min = minimize(&m);
            assert!(min.states() <= m.states(), "case {i}");
            assert!(equivalent(&m, &min).unwrap(), "case {i}: language changed");
            assert_eq!(minimize(&min), min, "case {i}: minimisation is idempotent");
            assert_eq!(min.start(), 0);
        }
    }

    #[test]
    fn redundant_states_merge() {
        use crate::dfa::Alphabet;
        // Two copies of "ends in a": states 0/2 and 1/3 are equivalent.
        let m = Dfa::new(
            Alphabet::chars("ab").unwrap(),
            4,
            0,
            vec![false, true, false, true],
            vec![3, 2, 1, 0, 1, 0, 3, 2],
            "t",
        )
        .unwrap();
        let min = minimize(&m);
        assert_eq!(min.states(), 2);
        assert!(equivalent(&m, &min).unwrap());
        let other = Dfa::new(Alphabet::chars("ab").unwrap(), 1, 0, vec![true], vec![0, 0], "t").unwrap();
        assert!(!equivalent(&m, &other).unwrap());
    }
}
