//! Beaver AND triples over GF(2), bit-sliced, dealt compressed by PRG seeds.
//!
//! A triple is `(x, y, c = x ∧ y)` XOR-shared; an AND of shared `u`, `v` opens
//! `d = u ⊕ x` and `e = v ⊕ y` (each server sends its shares `d_b`, `e_b`) and sets
//! `z_b = c_b ⊕ (d ∧ y_b) ⊕ (e ∧ x_b) ⊕ [b = 0]·(d ∧ e)`, so `z_0 ⊕ z_1 = u ∧ v`
//! (Beaver, CRYPTO 1991, over GF(2)). Every opened bit is masked by a fresh uniform bit of
//! `x` or `y`: that is the protocol's privacy.
//!
//! Compression (DESIGN §8): server 0's `x_0, y_0, c_0` and server 1's `x_1, y_1` are
//! streams of the fixed-key AES hash in counter mode under a secret 128-bit seed per
//! party per step, `H(seed ⊕ tweak(stream, layer, i))` ([`FixedKeyPrg`], the DPF's own
//! PRG assumption); the dealer sends server 0 its seed alone (16 bytes) and server 1
//! its seed and `c_1 = (x ∧ y) ⊕ c_0`: one bit per AND per instance.
//!
//! Single use by type: [`StepTriples`] hands out each layer once, in order (its
//! counter only moves forward), and a [`LayerTriples`] is consumed by
//! [`LayerTriples::finish`]; neither is `Clone`:
//!
//! ```compile_fail
//! # use pmsm_engine::nfa::triples::LayerTriples;
//! # use pmsm_kernels::Party;
//! fn twice(t: LayerTriples, mine: &[u64], peer: &[u64]) {
//!     let _ = t.finish(Party::P0, mine, peer);
//!     let _ = t.finish(Party::P0, mine, peer); // error[E0382]: use of moved value
//! }
//! ```

use pmsm_kernels::Party;
use pmsm_kernels::prg::FixedKeyPrg;
use pmsm_kernels::rng::SecretRng;
use rayon::prelude::*;

/// Stream tags (bits 120.. of the tweak): which share a stream holds.
const STREAM_X: u128 = 1 << 120;
/// See [`STREAM_X`].
const STREAM_Y: u128 = 2 << 120;
/// See [`STREAM_X`].
const STREAM_C: u128 = 3 << 120;

/// `out.len()` words of the stream `(seed, stream, layer)`.
fn expand(seed: u128, stream: u128, layer: u32, out: &mut [u64]) {
    let base = seed ^ stream ^ (u128::from(layer) << 64);
    let mut blocks: Vec<u128> = (0..out.len().div_ceil(2) as u128).map(|i| base ^ i).collect();
    FixedKeyPrg::get().hash_in_place(&mut blocks);
    for (k, o) in out.iter_mut().enumerate() {
        let b = blocks[k / 2];
        *o = if k % 2 == 0 { b as u64 } else { (b >> 64) as u64 };
    }
}

/// The dealer's output for one step: server 0's seed, server 1's seed and its `c_1`
/// words (layer after layer).
pub struct DealtStep {
    /// Per server, its seed.
    pub seeds: [u128; 2],
    /// Server 1's `c` shares, `Σ layers` words.
    pub c1: Vec<u64>,
}

impl std::fmt::Debug for DealtStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DealtStep({} words, <redacted>)", self.c1.len())
    }
}

/// Deals a step's triples: `layers[l]` words in layer `l` (gates × instance words).
pub fn deal(layers: &[usize], rng: &mut SecretRng) -> DealtStep {
    let seeds = [rng.block(), rng.block()];
    let total: usize = layers.iter().sum();
    let mut c1 = Vec::with_capacity(total);
    for (l, &n) in layers.iter().enumerate() {
        let mut s = [vec![0u64; n], vec![0u64; n], vec![0u64; n], vec![0u64; n], vec![0u64; n]];
        let jobs = [
            (seeds[0], STREAM_X),
            (seeds[0], STREAM_Y),
            (seeds[0], STREAM_C),
            (seeds[1], STREAM_X),
            (seeds[1], STREAM_Y),
        ];
        // The five streams in parallel (rayon): the dealer expands five, a server two or three.
        s.par_iter_mut().zip(jobs).for_each(|(out, (seed, stream))| expand(seed, stream, l as u32, out));
        let [x0, y0, c0, x1, y1] = &s;
        c1.extend((0..n).map(|k| ((x0[k] ^ x1[k]) & (y0[k] ^ y1[k])) ^ c0[k]));
    }
    DealtStep { seeds, c1 }
}

/// One server's triples for a step, layer by layer. Not `Clone`.
pub struct StepTriples {
    party: Party,
    seed: u128,
    layer: u32,
    /// Server 1's `c` words (empty for server 0) and how many are used.
    c1: Vec<u64>,
    used: usize,
}

impl std::fmt::Debug for StepTriples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StepTriples(server {}, layer {}, <redacted>)", self.party.index(), self.layer)
    }
}

impl StepTriples {
    /// Server `party`'s triples from its seed (and, for server 1, its `c` words).
    pub fn new(party: Party, seed: u128, c1: Vec<u64>) -> StepTriples {
        StepTriples { party, seed, layer: 0, c1, used: 0 }
    }

    /// The next layer's triples, `words` of them; `None` if server 1's `c` words run out.
    pub fn next_layer(&mut self, words: usize) -> Option<LayerTriples> {
        let mut x = vec![0u64; words];
        let mut y = vec![0u64; words];
        expand(self.seed, STREAM_X, self.layer, &mut x);
        expand(self.seed, STREAM_Y, self.layer, &mut y);
        let c = match self.party {
            Party::P0 => {
                let mut c = vec![0u64; words];
                expand(self.seed, STREAM_C, self.layer, &mut c);
                c
            }
            Party::P1 => {
                let c = self.c1.get(self.used..self.used + words)?.to_vec();
                self.used += words;
                c
            }
        };
        self.layer += 1;
        Some(LayerTriples { x, y, c })
    }

    /// Whether every dealt triple has been handed out.
    pub fn is_spent(&self) -> bool {
        self.used == self.c1.len()
    }
}

/// One server's shares of one AND layer's triples. Not `Clone`; consumed by
/// [`LayerTriples::finish`].
pub struct LayerTriples {
    x: Vec<u64>,
    y: Vec<u64>,
    c: Vec<u64>,
}

impl std::fmt::Debug for LayerTriples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LayerTriples({} words, <redacted>)", self.x.len())
    }
}

impl LayerTriples {
    /// This server's openings of `u ∧ v`: `d_b` then `e_b`.
    ///
    /// # Panics
    /// If `u` or `v` is not one word per triple word.
    pub fn open(&self, u: &[u64], v: &[u64]) -> Vec<u64> {
        assert!(u.len() == self.x.len() && v.len() == self.y.len(), "one triple word per AND word");
        u.iter().zip(&self.x).map(|(u, x)| u ^ x).chain(v.iter().zip(&self.y).map(|(v, y)| v ^ y)).collect()
    }

    /// This server's shares of `u ∧ v` from both servers' openings (consumes the triples).
    ///
    /// # Panics
    /// If an opening is not `2·words` long.
    pub fn finish(self, party: Party, mine: &[u64], peer: &[u64]) -> Vec<u64> {
        let n = self.x.len();
        assert!(mine.len() == 2 * n && peer.len() == 2 * n, "openings: d then e, one word per AND word");
        let lead = if party == Party::P0 { !0u64 } else { 0 };
        (0..n)
            .map(|k| {
                let d = mine[k] ^ peer[k];
                let e = mine[n + k] ^ peer[n + k];
                self.c[k] ^ (d & self.y[k]) ^ (e & self.x[k]) ^ (d & e & lead)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ands_reconstruct_and_streams_differ() {
        let mut rng = SecretRng::from_seed([9; 32]);
        let layers = [3, 5];
        let dealt = deal(&layers, &mut rng);
        let mut t = [
            StepTriples::new(Party::P0, dealt.seeds[0], Vec::new()),
            StepTriples::new(Party::P1, dealt.seeds[1], dealt.c1),
        ];
        for &n in &layers {
            let u: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
            let v: Vec<u64> = (0..n as u64).map(|i| !i.wrapping_mul(0x2545_f491_4f6c_dd1d)).collect();
            // Shares: server 0 holds u ⊕ m, server 1 holds m.
            let m: Vec<u64> = (0..n as u64).map(|i| i * 7 + 1).collect();
            let u0: Vec<u64> = u.iter().zip(&m).map(|(a, b)| a ^ b).collect();
            let v0: Vec<u64> = v.iter().zip(&m).map(|(a, b)| a ^ b ^ 5).collect();
            let v1: Vec<u64> = m.iter().map(|b| b ^ 5).collect();
            let [l0, l1] = [t[0].next_layer(n).unwrap(), t[1].next_layer(n).unwrap()];
            let (o0, o1) = (l0.open(&u0, &v0), l1.open(&m, &v1));
            let z0 = l0.finish(Party::P0, &o0, &o1);
            let z1 = l1.finish(Party::P1, &o1, &o0);
            for k in 0..n {
                assert_eq!(z0[k] ^ z1[k], u[k] & v[k]);
            }
        }
        assert!(t[1].is_spent());
        assert!(t[1].next_layer(1).is_none(), "server 1 has no triples beyond those dealt");
        let (mut a, mut b) = (vec![0u64; 4], vec![0u64; 4]);
        expand(7, STREAM_X, 0, &mut a);
        expand(7, STREAM_X, 1, &mut b);
        assert_ne!(a, b, "layers draw distinct streams");
    }
}
