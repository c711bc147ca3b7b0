//! The portable kernels: plain Rust, the specification of every other backend.
//!
//! The `*_body` functions are `#[inline(always)]` so that the SIMD backends can compile
//! the same loop under their `#[target_feature]` attributes and let LLVM vectorise it.

use super::{Backend, Kernels};

pub(crate) static TABLE: Kernels = Kernels {
    backend: Backend::Portable,
    add: add_body,
    sub: sub_body,
    scale: scale_body,
    mul: mul_body,
    dot: dot_body,
    xor: xor_body,
    and_popcount: and_popcount_body,
    permuted_parities,
    permuted_parities_batch,
    dpf_child_inputs: dpf_child_inputs_body,
    dpf_correct: dpf_correct_body,
    dpf_fan_inputs: dpf_fan_inputs_body,
    dpf_fan_correct: dpf_fan_correct_body,
    dpf_fused: None,
};

/// DPF expansion: the PRG inputs of every child, `children[2i + c] = seed(p_i) ⊕ c`,
/// where a node's seed is the node with its low (control) bit cleared.
#[inline(always)]
pub(crate) fn dpf_child_inputs_body(parents: &[u128], children: &mut [u128]) {
    for (p, ch) in parents.iter().zip(children.chunks_exact_mut(2)) {
        ch[0] = p & !1;
        ch[1] = (p & !1) ^ 1;
    }
}

/// DPF expansion: MMO feed-forward and correction of one level, in place on the
/// encrypted child inputs: `children[2i + c] ^= seed(p_i) ⊕ c ⊕ (t(p_i) · cw[c])`.
#[inline(always)]
pub(crate) fn dpf_correct_body(parents: &[u128], children: &mut [u128], [cw_l, cw_r]: [u128; 2]) {
    for (p, ch) in parents.iter().zip(children.chunks_exact_mut(2)) {
        let (m, s) = (0u128.wrapping_sub(p & 1), p & !1);
        ch[0] ^= s ^ (m & cw_l);
        ch[1] ^= s ^ 1 ^ (m & cw_r);
    }
}

/// DPF fan-out: the PRG inputs of every leaf, `children[F·i + j] = seed(p_i) ⊕ j` for
/// `F = children.len() / parents.len()`.
#[inline(always)]
pub(crate) fn dpf_fan_inputs_body(parents: &[u128], children: &mut [u128]) {
    let fan = children.len() / parents.len().max(1);
    for (p, ch) in parents.iter().zip(children.chunks_exact_mut(fan.max(1))) {
        for (j, c) in ch.iter_mut().enumerate() {
            *c = (p & !1) ^ j as u128;
        }
    }
}

/// DPF fan-out: MMO feed-forward and correction in place on the encrypted leaf inputs:
/// `children[F·i + j] ^= seed(p_i) ⊕ j ⊕ (t(p_i) · cw[j])` for `F = cw.len()`.
#[inline(always)]
pub(crate) fn dpf_fan_correct_body(parents: &[u128], children: &mut [u128], cw: &[u128]) {
    for (p, ch) in parents.iter().zip(children.chunks_exact_mut(cw.len().max(1))) {
        let (m, s) = (0u128.wrapping_sub(p & 1), p & !1);
        for (j, (c, w)) in ch.iter_mut().zip(cw).enumerate() {
            *c ^= s ^ j as u128 ^ (m & w);
        }
    }
}

#[inline(always)]
pub(crate) fn add_body(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.wrapping_add(*y);
    }
}

#[inline(always)]
pub(crate) fn sub_body(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.wrapping_sub(*y);
    }
}

#[inline(always)]
pub(crate) fn scale_body(a: &mut [u64], c: u64) {
    for x in a.iter_mut() {
        *x = x.wrapping_mul(c);
    }
}

#[inline(always)]
pub(crate) fn mul_body(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.wrapping_mul(*y);
    }
}

/// Eight independent accumulators so the loop is not one long dependency chain.
#[inline(always)]
pub(crate) fn dot_body(a: &[u64], b: &[u64]) -> u64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0u64; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            acc[i] = acc[i].wrapping_add(x[i].wrapping_mul(y[i]));
        }
    }
    let mut s = acc.iter().fold(0u64, |s, v| s.wrapping_add(*v));
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s = s.wrapping_add(x.wrapping_mul(*y));
    }
    s
}

#[inline(always)]
pub(crate) fn xor_body(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= *y;
    }
}

#[inline(always)]
pub(crate) fn and_popcount_body(a: &[u64], b: &[u64]) -> u64 {
    a.iter().zip(b).map(|(x, y)| (x & y).count_ones() as u64).sum()
}

/// Masks selecting, for stage `k`, the bit positions whose bit `k` is zero.
pub(crate) const SWAP_MASKS: [u64; 6] = [
    0x5555_5555_5555_5555,
    0x3333_3333_3333_3333,
    0x0f0f_0f0f_0f0f_0f0f,
    0x00ff_00ff_00ff_00ff,
    0x0000_ffff_0000_ffff,
    0x0000_0000_ffff_ffff,
];

/// The six stage masks for XOR-permuting bit positions by `v` (zero where `v`'s bit is
/// clear, which turns that stage into the identity: no data-dependent branch).
#[inline(always)]
pub(crate) fn stage_masks(v: u32) -> [u64; 6] {
    core::array::from_fn(|k| SWAP_MASKS[k] & 0u64.wrapping_sub(((v >> k) & 1) as u64))
}

/// `y` with bit `i` equal to bit `i ^ v` of `x` (`v < 64`), by six delta swaps.
#[inline(always)]
pub(crate) fn xor_permute_bits(mut x: u64, masks: &[u64; 6]) -> u64 {
    for (k, m) in masks.iter().enumerate() {
        let s = 1u32 << k;
        let d = ((x >> s) ^ x) & m;
        x ^= d ^ (d << s);
    }
    x
}

/// Bit `k` of the result is `parity(Σ_j t[j ⊕ u] · P_k[j])` over the `64·W` bits, where
/// `W = t.len()` (a power of two), `P_k = planes[k·W .. (k+1)·W]`, `u < 64·W`, `ks ≤ 64`.
///
/// The permutation splits into a word permutation (`u >> 6`) and an in-word bit
/// permutation (`u & 63`); the permuted word is computed once and shared by all planes.
pub(crate) fn permuted_parities(t: &[u64], u: usize, planes: &[u64], ks: usize) -> u64 {
    permuted_parities_live(t, u, planes, ks, t.len())
}

/// [`permuted_parities`] for planes that are zero from word `live` on (those words
/// contribute nothing and are skipped).
fn permuted_parities_live(t: &[u64], u: usize, planes: &[u64], ks: usize, live: usize) -> u64 {
    let w = t.len();
    debug_assert!(w.is_power_of_two() && u < 64 * w && planes.len() == ks * w && ks <= 64 && live <= w);
    let (uh, masks) = (u >> 6, stage_masks((u & 63) as u32));
    let mut acc = [0u64; 64];
    for j in 0..live {
        let x = xor_permute_bits(t[j ^ uh], &masks);
        for (k, a) in acc[..ks].iter_mut().enumerate() {
            *a ^= x & planes[k * w + j];
        }
    }
    fold_parities(&acc[..ks])
}

/// [`permuted_parities`] for `g = us.len()` instances whose vectors lie back to back in
/// `ts` (`W = ts.len() / g` words each): `out[i]` for instance `i`. The planes are zero
/// from word `live` on.
pub(crate) fn permuted_parities_batch(
    ts: &[u64],
    us: &[usize],
    planes: &[u64],
    ks: usize,
    live: usize,
    out: &mut [u64],
) {
    let w = ts.len() / us.len().max(1);
    for ((t, &u), o) in ts.chunks_exact(w.max(1)).zip(us).zip(out.iter_mut()) {
        *o = permuted_parities_live(t, u, planes, ks, live);
    }
}

/// Packs `parity(acc[k])` into bit `k`.
#[inline(always)]
pub(crate) fn fold_parities(acc: &[u64]) -> u64 {
    acc.iter().enumerate().fold(0, |out, (k, a)| out | (((a.count_ones() & 1) as u64) << k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_permute_bits_is_the_index_xor() {
        let x = 0x0123_4567_89ab_cdef_u64 ^ 0xdead_beef_f00d_1234;
        for v in 0..64u32 {
            let y = xor_permute_bits(x, &stage_masks(v));
            for i in 0..64u32 {
                assert_eq!((y >> i) & 1, (x >> (i ^ v)) & 1, "v={v} i={i}");
            }
        }
    }

    #[test]
    fn permuted_parities_is_the_definition() {
        // The definition, one bit at a time, on 4 words and 3 planes.
        let t: Vec<u64> = (0..4u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        let planes: Vec<u64> = (0..12u64).map(|i| (i + 3).wrapping_mul(0xbf58_476d_1ce4_e5b9)).collect();
        let bit = |v: &[u64], j: usize| (v[j / 64] >> (j % 64)) & 1;
        for u in [0usize, 1, 63, 64, 65, 100, 255] {
            let mut want = 0;
            for k in 0..3 {
                let p = (0..256).fold(0, |s, j| s ^ (bit(&t, j ^ u) & bit(&planes[k * 4..], j)));
                want |= p << k;
            }
            assert_eq!(permuted_parities(&t, u, &planes, 3), want, "u={u}");
        }
    }
}
