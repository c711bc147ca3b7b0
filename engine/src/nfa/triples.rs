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
//! fn twice(t: LayerTriples<'_>, peer: &[u64]) {
//!     let _ = t.finish(Party::P0, peer);
//!     let _ = t.finish(Party::P0, peer); // error[E0382]: use of moved value
//! }
//! ```
//!
//! Costs per AND word (64 instances): the dealer expands five stream words, server 0
//! three and server 1 two; nothing is buffered beyond one layer's streams.

use pmsm_kernels::Party;
use pmsm_kernels::prg::FixedKeyPrg;
use pmsm_kernels::rng::SecretRng;

/// Stream tags (bits 120.. of the tweak): which share a stream holds.
const STREAM_X: u128 = 1 << 120;
/// See [`STREAM_X`].
const STREAM_Y: u128 = 2 << 120;
/// See [`STREAM_X`].
const STREAM_C: u128 = 3 << 120;

/// The counter blocks of the stream `(seed, stream, layer)` are `base ⊕ i`.
fn base(seed: u128, stream: u128, layer: u32) -> u128 {
    seed ^ stream ^ (u128::from(layer) << 64)
}

/// `H(x) = AES(x) ⊕ x` in place of the counter blocks `x = base ⊕ (first + i)` that
/// `out` holds (each `x` is recomputed rather than kept).
fn hash_counters(base: u128, first: usize, out: &mut [u128]) {
    FixedKeyPrg::get().encrypt_in_place(out);
    for (i, o) in out.iter_mut().enumerate() {
        *o ^= base ^ (first + i) as u128;
    }
}

/// Blocks of the stream `(seed, stream, layer)` from block `first` on, into `out`.
fn expand_blocks(seed: u128, stream: u128, layer: u32, first: usize, out: &mut [u128]) {
    let base = base(seed, stream, layer);
    for (i, o) in out.iter_mut().enumerate() {
        *o = base ^ (first + i) as u128;
    }
    hash_counters(base, first, out);
}

/// The stream `(seed, stream, layer)` for `words` words: `⌈words / 2⌉` blocks, read as
/// words through [`word`].
fn expand(seed: u128, stream: u128, layer: u32, words: usize) -> Vec<u128> {
    let base = base(seed, stream, layer);
    let mut out: Vec<u128> = (0..words.div_ceil(2)).map(|i| base ^ i as u128).collect();
    hash_counters(base, 0, &mut out);
    out
}

/// Word `i` of a stream of blocks (two a block, in memory order).
#[inline]
fn word(blocks: &[u128], i: usize) -> u64 {
    bytemuck::cast_slice::<u128, u64>(blocks)[i]
}

/// Little-endian 64-bit words read in place from a frame's bytes (any alignment, no
/// copy).
#[derive(Clone, Copy, Debug)]
pub struct Words<'a>(&'a [u8]);

impl<'a> Words<'a> {
    /// The words of `bytes`.
    ///
    /// # Panics
    /// If `bytes` is not whole words (the caller checks frame lengths).
    pub fn new(bytes: &'a [u8]) -> Words<'a> {
        assert_eq!(bytes.len() % 8, 0, "whole 64-bit words");
        Words(bytes)
    }

    /// How many words.
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Word `i`.
    #[inline]
    pub fn get(&self, i: usize) -> u64 {
        u64::from_le_bytes(self.0[8 * i..8 * i + 8].try_into().expect("8 bytes"))
    }
}

/// Blocks a dealer expands at once per stream (its working set: five of them).
const CHUNK: usize = 256;

/// Deals a step's triples: `layers[l]` words in layer `l` (gates × instance words).
/// Returns the servers' seeds; server 1's `c` words go to `c1`, a chunk at a time,
/// layer after layer.
pub fn deal(layers: &[usize], rng: &mut SecretRng, mut c1: impl FnMut(&[u64])) -> [u128; 2] {
    let seeds = [rng.block(), rng.block()];
    let jobs =
        [(seeds[0], STREAM_X), (seeds[0], STREAM_Y), (seeds[0], STREAM_C), (seeds[1], STREAM_X), (seeds[1], STREAM_Y)];
    let mut s = [[0u128; CHUNK]; 5];
    let mut out = [0u64; 2 * CHUNK];
    for (l, &n) in layers.iter().enumerate() {
        for first in (0..n.div_ceil(2)).step_by(CHUNK) {
            let blocks = CHUNK.min(n.div_ceil(2) - first);
            for (buf, (seed, stream)) in s.iter_mut().zip(jobs) {
                expand_blocks(seed, stream, l as u32, first, &mut buf[..blocks]);
            }
            let words = (n - 2 * first).min(2 * CHUNK);
            let w: [&[u64]; 5] = std::array::from_fn(|j| &bytemuck::cast_slice::<u128, u64>(&s[j])[..words]);
            for (k, o) in out[..words].iter_mut().enumerate() {
                *o = ((w[0][k] ^ w[3][k]) & (w[1][k] ^ w[4][k])) ^ w[2][k];
            }
            c1(&out[..words]);
        }
    }
    seeds
}

/// One server's triples for a step, layer by layer. Not `Clone`.
pub struct StepTriples {
    party: Party,
    seed: u128,
    layer: u32,
    /// Server 1's `c` words, little-endian from byte `at` of the dealer's frame (none for
    /// server 0), and how many are used.
    frame: Vec<u8>,
    at: usize,
    used: usize,
}

impl std::fmt::Debug for StepTriples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StepTriples(server {}, layer {}, <redacted>)", self.party.index(), self.layer)
    }
}

impl StepTriples {
    /// Server `party`'s triples from its seed and, for server 1, the dealer's frame
    /// whose bytes from `at` on are its `c` words (read in place).
    ///
    /// # Panics
    /// If those bytes are not whole words (the caller checks frame lengths).
    pub fn new(party: Party, seed: u128, frame: Vec<u8>, at: usize) -> StepTriples {
        assert_eq!(frame.len().saturating_sub(at) % 8, 0, "c words: whole 64-bit words");
        StepTriples { party, seed, layer: 0, frame, at, used: 0 }
    }

    /// Server 1's `c` words dealt.
    fn dealt(&self) -> usize {
        self.frame.len().saturating_sub(self.at) / 8
    }

    /// The next layer's triples, `words` of them; `None` if server 1's `c` words run out.
    pub fn next_layer(&mut self, words: usize) -> Option<LayerTriples<'_>> {
        let c = match self.party {
            Party::P0 => Stream::Expanded(expand(self.seed, STREAM_C, self.layer, words)),
            Party::P1 => {
                let from = self.used;
                if from + words > self.dealt() {
                    return None;
                }
                self.used += words;
                let at = self.at + 8 * from;
                Stream::Dealt(Words::new(&self.frame[at..at + 8 * words]))
            }
        };
        let x = expand(self.seed, STREAM_X, self.layer, words);
        let y = expand(self.seed, STREAM_Y, self.layer, words);
        self.layer += 1;
        Some(LayerTriples { x, y, c, party: self.party, words })
    }

    /// Whether every dealt triple has been handed out.
    pub fn is_spent(&self) -> bool {
        self.used == self.dealt()
    }
}

/// A share stream: expanded from a seed, or dealt.
enum Stream<'a> {
    Expanded(Vec<u128>),
    Dealt(Words<'a>),
}

impl Stream<'_> {
    #[inline]
    fn get(&self, i: usize) -> u64 {
        match self {
            Stream::Expanded(b) => word(b, i),
            Stream::Dealt(w) => w.get(i),
        }
    }
}

/// One server's shares of one AND layer's triples. Not `Clone`; consumed by
/// [`LayerTriples::finish`].
pub struct LayerTriples<'a> {
    x: Vec<u128>,
    y: Vec<u128>,
    c: Stream<'a>,
    party: Party,
    words: usize,
}

impl std::fmt::Debug for LayerTriples<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LayerTriples({} words, <redacted>)", self.words)
    }
}

impl<'a> LayerTriples<'a> {
    /// AND words in the layer.
    pub fn words(&self) -> usize {
        self.words
    }

    /// This server's openings `(d_b, e_b)` of AND word `i`, operands `u`, `v`.
    #[inline]
    pub fn open(&self, i: usize, u: u64, v: u64) -> [u64; 2] {
        [u ^ word(&self.x, i), v ^ word(&self.y, i)]
    }

    /// Consumes the triples: from the peer's openings (`d, e` interleaved, two words per
    /// AND word), the function from `(i, u, v)` to this server's share of `u ∧ v`
    /// (it recomputes this server's own openings rather than keep them).
    ///
    /// # Panics
    /// If `peer` is not two words per AND word (the caller checks frame lengths).
    pub fn finish(self, party: Party, peer: Words<'a>) -> impl FnMut(usize, u64, u64) -> u64 + 'a {
        assert_eq!(peer.len(), 2 * self.words, "openings: d and e per AND word");
        assert!(party == self.party, "a server's own triples");
        let lead = if party == Party::P0 { !0u64 } else { 0 };
        let LayerTriples { x, y, c, .. } = self;
        move |i, u, v| {
            let (x, y) = (word(&x, i), word(&y, i));
            let d = u ^ x ^ peer.get(2 * i);
            let e = v ^ y ^ peer.get(2 * i + 1);
            c.get(i) ^ (d & y) ^ (e & x) ^ (d & e & lead)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ands_reconstruct_and_streams_differ() {
        let mut rng = SecretRng::from_seed([9; 32]);
        // Layers across a dealer chunk boundary and of odd length.
        let layers = [3, 5, 2 * CHUNK + 7];
        let mut c1: Vec<u8> = vec![7; 3];
        let seeds = deal(&layers, &mut rng, |c| c1.extend(c.iter().flat_map(|w| w.to_le_bytes())));
        assert_eq!(c1.len(), 3 + 8 * layers.iter().sum::<usize>());
        let mut t =
            [StepTriples::new(Party::P0, seeds[0], Vec::new(), 0), StepTriples::new(Party::P1, seeds[1], c1, 3)];
        for &n in &layers {
            let u: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
            let v: Vec<u64> = (0..n as u64).map(|i| !i.wrapping_mul(0x2545_f491_4f6c_dd1d)).collect();
            // Shares: server 0 holds u ⊕ m, server 1 holds m.
            let m: Vec<u64> = (0..n as u64).map(|i| i * 7 + 1).collect();
            let u0: Vec<u64> = u.iter().zip(&m).map(|(a, b)| a ^ b).collect();
            let v0: Vec<u64> = v.iter().zip(&m).map(|(a, b)| a ^ b ^ 5).collect();
            let v1: Vec<u64> = m.iter().map(|b| b ^ 5).collect();
            let [t0, t1] = &mut t;
            let (l0, l1) = (t0.next_layer(n).unwrap(), t1.next_layer(n).unwrap());
            let o0: Vec<u64> = (0..n).flat_map(|i| l0.open(i, u0[i], v0[i])).collect();
            let o1: Vec<u64> = (0..n).flat_map(|i| l1.open(i, m[i], v1[i])).collect();
            let (b0, b1): (Vec<u8>, Vec<u8>) =
                (o0.iter().flat_map(|w| w.to_le_bytes()).collect(), o1.iter().flat_map(|w| w.to_le_bytes()).collect());
            let (mut z0, mut z1) = (l0.finish(Party::P0, Words::new(&b1)), l1.finish(Party::P1, Words::new(&b0)));
            for k in 0..n {
                assert_eq!(z0(k, u0[k], v0[k]) ^ z1(k, m[k], v1[k]), u[k] & v[k]);
            }
        }
        assert!(t[1].is_spent());
        assert!(t[1].next_layer(1).is_none(), "server 1 has no triples beyond those dealt");
        let (a, b) = (expand(7, STREAM_X, 0, 4), expand(7, STREAM_X, 1, 4));
        assert_ne!(a, b, "layers draw distinct streams");
        let mut chunked = vec![0u128; 3];
        expand_blocks(7, STREAM_X, 0, 1, &mut chunked);
        let whole = expand(7, STREAM_X, 0, 8);
        assert_eq!(chunked, whole[1..4], "a chunk is the stream's own blocks");
        assert_eq!(expand(7, STREAM_X, 0, 200)[..4], whole[..], "longer streams extend shorter ones");
        // The stream is H(x) = AES(x) ⊕ x of its counter blocks.
        let base = 7 ^ STREAM_X;
        assert_eq!(whole[2], FixedKeyPrg::get().hash(base ^ 2));
        assert_eq!(word(&whole, 5), (whole[2] >> 64) as u64);
    }
}
