//! The plaintext bit-parallel simulation of a position automaton (the NFA path's
//! reference, itself tested against `regex::bytes`).
//!
//! The state is a bit vector `D` over positions (64 positions a word). Under search
//! semantics a match may start at every boundary, so each step is
//!
//! ```text
//! D' = B[a] ∧ ( First(boundary, wb) ∨ ⋁_{q ∈ D} Follow_wb(q) )
//! hit ∨= nullable(boundary, wb) ∨ ⋁_{p ∈ D} Last(p, wb)        (matches ending before a)
//! ```
//!
//! with `wb = w(previous byte) ⊕ w(a)` and the boundary `Start` at the first byte,
//! `Middle` after; after the last byte the `End` boundary adds its own matches.
//!
//! # Performance
//! `O(m/64)` words per set bit of `D` per byte; memory `2·m²/8` bytes for the follow
//! masks (both values of `wb`). A reference, not the fast path.

use super::position::{Boundary, Cond, PositionAutomaton, is_word_byte};

/// Precomputed masks of one automaton.
#[derive(Clone, Debug)]
pub struct Simulator {
    words: usize,
    /// `B[byte]`: positions whose class holds the byte.
    on_byte: Vec<Vec<u64>>,
    /// `[Start, Middle][wb]`: positions a match may start at.
    first: [[Vec<u64>; 2]; 2],
    /// `[wb][q]`: positions that may follow `q`.
    follow: [Vec<Vec<u64>>; 2],
    /// `[Middle, End][wb]`: positions a match may end after.
    last: [[Vec<u64>; 2]; 2],
    /// `[Start, Middle, End, Both][wb]`: whether the empty string matches there.
    null: [[bool; 2]; 4],
}

fn mask(words: usize, conds: &[Cond], wb: bool) -> Vec<u64> {
    let mut v = vec![0u64; words];
    for (p, c) in conds.iter().enumerate() {
        if c.holds(wb) {
            v[p / 64] |= 1 << (p % 64);
        }
    }
    v
}

impl Simulator {
    /// The masks of `a`.
    pub fn new(a: &PositionAutomaton) -> Simulator {
        let m = a.len();
        let words = m.div_ceil(64).max(1);
        let on_byte = (0..=255u8)
            .map(|b| {
                let mut v = vec![0u64; words];
                for (p, s) in a.bytes.iter().enumerate() {
                    if s.contains(b) {
                        v[p / 64] |= 1 << (p % 64);
                    }
                }
                v
            })
            .collect();
        let both = |conds: Vec<Cond>| [mask(words, &conds, false), mask(words, &conds, true)];
        let first = [both(a.first_conds(Boundary::Start)), both(a.first_conds(Boundary::Middle))];
        let last = [both(a.last_conds(Boundary::Middle)), both(a.last_conds(Boundary::End))];
        let follow = [false, true].map(|wb| {
            let mut f = vec![vec![0u64; words]; m];
            for &(q, p, c) in &a.follow {
                if c.holds(wb) {
                    f[q as usize][p as usize / 64] |= 1 << (p % 64);
                }
            }
            f
        });
        let null = [Boundary::Start, Boundary::Middle, Boundary::End, Boundary::Both]
            .map(|k| [false, true].map(|wb| a.nullable_cond(k).holds(wb)));
        Simulator { words, on_byte, first, follow, last, null }
    }

    /// Whether `text` contains a match.
    pub fn is_match(&self, text: &[u8]) -> bool {
        if text.is_empty() {
            return self.null[3][0];
        }
        let mut d = vec![0u64; self.words];
        let mut next = vec![0u64; self.words];
        let mut prev_word = false;
        for (t, &a) in text.iter().enumerate() {
            let wb = prev_word ^ is_word_byte(a);
            let (k, wbi) = (usize::from(t > 0), usize::from(wb));
            if self.null[k][wbi] || (t > 0 && any_and(&d, &self.last[0][wbi])) {
                return true;
            }
            next.copy_from_slice(&self.first[k][wbi]);
            for (w, &word) in d.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let q = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    next.iter_mut().zip(&self.follow[wbi][q]).for_each(|(n, f)| *n |= f);
                }
            }
            next.iter_mut().zip(&self.on_byte[usize::from(a)]).for_each(|(n, b)| *n &= b);
            std::mem::swap(&mut d, &mut next);
            prev_word = is_word_byte(a);
        }
        let wbi = usize::from(prev_word);
        self.null[2][wbi] || any_and(&d, &self.last[1][wbi])
    }
}

fn any_and(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}
