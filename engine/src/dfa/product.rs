//! The union product: one machine accepting when either of two machines accepts.
//!
//! States are the reachable pairs `(s, t)`; a pair accepts when `s` or `t` does. The
//! walk follows one representative symbol per joint class (symbols that neither
//! machine can tell apart), so its cost is `O(pairs · joint classes)`; the result is
//! minimised.

use super::{Dfa, minimize::minimize};
use std::collections::HashMap;

/// The minimal DFA of `L(a) ∪ L(b)`.
///
/// # Panics
/// If the alphabets differ (a caller bug: both come from the same compiler).
pub fn union(a: &Dfa, b: &Dfa) -> Dfa {
    assert_eq!(a.alphabet(), b.alphabet(), "union of machines over different alphabets");
    let k = a.symbols();
    let (ca, cb) = (a.classes(), b.classes());
    let mut joint: HashMap<(u32, u32), u32> = HashMap::new();
    let mut reps: Vec<u32> = Vec::new();
    let class_of: Vec<u32> = (0..k as u32)
        .map(|x| {
            let next = joint.len() as u32;
            let c = *joint.entry((ca.class_of(x), cb.class_of(x))).or_insert(next);
            if c == next {
                reps.push(x);
            }
            c
        })
        .collect();
    let j = reps.len();
    let mut ids: HashMap<(u32, u32), u32> = HashMap::from([((a.start(), b.start()), 0)]);
    let mut pairs = vec![(a.start(), b.start())];
    let mut by_class: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < pairs.len() {
        let (s, t) = pairs[i];
        for &x in &reps {
            let p = (a.next(s, x), b.next(t, x));
            let next = pairs.len() as u32;
            let id = *ids.entry(p).or_insert(next);
            if id == next {
                pairs.push(p);
            }
            by_class.push(id);
        }
        i += 1;
    }
    let delta = (0..pairs.len())
        .flat_map(|s| class_of.iter().map(move |&c| (s, c)))
        .map(|(s, c)| by_class[s * j + c as usize])
        .collect();
    let accepting = pairs.iter().map(|&(s, t)| a.is_accepting(s) || b.is_accepting(t)).collect();
    let m = Dfa::new(a.alphabet().clone(), pairs.len(), 0, accepting, delta, "union")
        .expect("a product of valid machines is valid")
        .with_natural_output(a.natural_output());
    minimize(&m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dfa::random::{random_dfa, random_input};
    use pmsm_kernels::rng::WorkloadRng;

    #[test]
    fn union_accepts_when_either_does() {
        let mut r = WorkloadRng::seed_from_u64(5);
        for _ in 0..50 {
            let k = 1 + r.below(5) as usize;
            let a = random_dfa(1 + r.below(20) as usize, k, &mut r);
            let b = random_dfa(1 + r.below(20) as usize, k, &mut r);
            let u = union(&a, &b);
            for _ in 0..50 {
                let len = r.below(12) as usize;
                let w = random_input(k, len, &mut r);
                assert_eq!(u.is_accepting(u.run(&w)), a.is_accepting(a.run(&w)) || b.is_accepting(b.run(&w)));
            }
        }
    }
}
