//! Seeded random machines (xoshiro; never for secrets): test and benchmark workloads.

use super::{Alphabet, Dfa};
use pmsm_kernels::rng::WorkloadRng;

/// The `k`-th character of the printable pool used for random alphabets: printable
/// ASCII first, then Latin-1 and beyond (skipping the surrogate range).
fn pool_char(k: usize) -> char {
    const ASCII: usize = 0x7f - 0x21;
    if k < ASCII {
        char::from(0x21 + k as u8)
    } else {
        let code = 0xa1 + (k - ASCII) as u32;
        let code = if code >= 0xd800 { code + 0x800 } else { code };
        char::from_u32(code).expect("outside the surrogate range")
    }
}

/// An alphabet of `symbols` symbols: [`Alphabet::Bytes`] for 256, distinct printable
/// characters otherwise.
pub fn random_alphabet(symbols: usize) -> Alphabet {
    if symbols == 256 {
        Alphabet::Bytes
    } else {
        Alphabet::from_chars((0..symbols).map(pool_char).collect()).expect("pool characters are distinct")
    }
}

/// A uniformly random total DFA: every transition uniform over the states, each state
/// accepting with probability 1/2, start state 0. Panics if a size is zero or beyond
/// the model's limits (workload generation is given checked sizes).
pub fn random_dfa(states: usize, symbols: usize, rng: &mut WorkloadRng) -> Dfa {
    let delta = (0..states * symbols).map(|_| rng.below(states as u64) as u32).collect();
    let accepting = (0..states).map(|_| rng.below(2) == 1).collect();
    Dfa::new(random_alphabet(symbols), states, 0, accepting, delta, "random").expect("sizes are checked by the caller")
}

/// A random input of `len` symbols for a machine of `symbols` symbols.
pub fn random_input(symbols: usize, len: usize, rng: &mut WorkloadRng) -> Vec<u32> {
    (0..len).map(|_| rng.below(symbols as u64) as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabets_are_distinct_up_to_the_model_limit() {
        for n in [1, 2, 40, 94, 95, 255, 257, 1000, crate::dfa::MAX_SYMBOLS] {
            assert_eq!(random_alphabet(n).len(), n);
        }
        let mut r = WorkloadRng::seed_from_u64(1);
        let m = random_dfa(1024, 256, &mut r);
        assert_eq!((m.states(), m.symbols()), (1024, 256));
        assert_eq!(
            random_dfa(5, 3, &mut WorkloadRng::seed_from_u64(2)),
            random_dfa(5, 3, &mut WorkloadRng::seed_from_u64(2))
        );
    }
}
