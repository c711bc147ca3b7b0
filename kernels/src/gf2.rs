//! Bit-vector kernels over GF(2): XOR shares of the boolean lookup (DESIGN §3a).
//!
//! Bit `j` of a vector is bit `j % 64` of word `j / 64`.
//!
//! # Performance
//! [`permuted_parities`] is the online hot loop of `lookup-xor`: for a table of `N`
//! bits and `ks` bit-planes it reads `N/64` words of the share vector once and the
//! planes once (they stay in cache across instances), doing one AND and one XOR per
//! word per plane and a single popcount per plane at the end.

use crate::arch::Kernels;

/// `a[i] ^= b[i]`.
///
/// # Panics
/// If the lengths differ.
pub fn xor_assign(a: &mut [u64], b: &[u64]) {
    assert_eq!(a.len(), b.len(), "gf2::xor_assign: slices must have equal lengths");
    (Kernels::active().xor)(a, b)
}

/// `popcount(a AND b)`.
///
/// # Panics
/// If the lengths differ.
pub fn and_popcount(a: &[u64], b: &[u64]) -> u64 {
    assert_eq!(a.len(), b.len(), "gf2::and_popcount: slices must have equal lengths");
    (Kernels::active().and_popcount)(a, b)
}

/// `parity(popcount(a AND b))`: the GF(2) inner product.
pub fn and_parity(a: &[u64], b: &[u64]) -> bool {
    and_popcount(a, b) & 1 == 1
}

/// The XOR-permuted parities of DESIGN §3a: bit `k` of the result is
/// `⊕_j t[j ⊕ u] · P_k[j]`, with `t` of `W = t.len()` words (`W` a power of two),
/// `P_k = planes[k·W .. (k+1)·W]` for `k < ks`, and `u < 64·W`.
///
/// # Panics
/// If `W` is not a power of two, `u ≥ 64·W`, `planes.len() ≠ ks·W` or `ks > 64`.
pub fn permuted_parities(t: &[u64], u: usize, planes: &[u64], ks: usize) -> u64 {
    check_permuted_parities(t, u, planes, ks);
    (Kernels::active().permuted_parities)(t, u, planes, ks)
}

/// [`permuted_parities`] for many instances against one table: `ts` holds `g =
/// us.len()` vectors of `W` words back to back, and `out[i]` receives instance `i`'s
/// parities. The caller promises that every plane is zero from word `live` on (a table
/// whose top rows are padding, e.g. unreachable states): those words are not read.
///
/// # Performance
/// The AVX-512 backend takes instances in pairs, so each plane block is loaded once per
/// pair with the accumulators in registers (up to 16 planes; a chunk-major walk beyond).
/// The AVX2 backend takes one instance per vector and walks the planes chunk-major in
/// groups of up to 16, so each chunk of a group stays in L1 while every instance passes.
///
/// # Panics
/// As [`permuted_parities`], and if `ts.len() ≠ g·W`, `out.len() ≠ g` or `live > W`.
pub fn permuted_parities_batch(ts: &[u64], us: &[usize], planes: &[u64], ks: usize, live: usize, out: &mut [u64]) {
    let g = us.len();
    assert_eq!(out.len(), g, "gf2::permuted_parities_batch: one output per instance");
    if g == 0 {
        return;
    }
    assert_eq!(ts.len() % g, 0, "gf2::permuted_parities_batch: vectors must have equal lengths");
    let w = ts.len() / g;
    for &u in us {
        check_permuted_parities(&ts[..w], u, planes, ks);
    }
    assert!(live <= w, "gf2::permuted_parities_batch: {live} live words of {w}");
    (Kernels::active().permuted_parities_batch)(ts, us, planes, ks, live, out)
}

/// Which bits of each vector [`permuted_parities_batch`] reads, for `live` live words of
/// `w`: bit `y` of the vector with mask `u` only where `y ⊕ u <` this many. The backends
/// read whole 8-word (512-bit) blocks of the permuted vector, so `live` is rounded up to
/// one. A DPF expansion that feeds the read may skip the other bits
/// ([`crate::dpf::ReadWindow`]).
pub fn batch_read_outputs(live: usize, w: usize) -> u64 {
    (live.div_ceil(8) * 512).min(64 * w) as u64
}

pub(crate) fn check_permuted_parities(t: &[u64], u: usize, planes: &[u64], ks: usize) {
    let w = t.len();
    assert!(w.is_power_of_two(), "gf2::permuted_parities: {w} words is not a power of two");
    assert!(u < 64 * w, "gf2::permuted_parities: shift {u} out of range for {w} words");
    assert!(ks <= 64 && planes.len() == ks * w, "gf2::permuted_parities: planes must be ks·W words, ks ≤ 64");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::RngCore;

    #[test]
    fn the_batch_reads_no_bit_outside_its_window() {
        // Scrambling every bit outside `batch_read_outputs` leaves the parities unchanged.
        let mut rng = crate::rng::WorkloadRng::seed_from_u64(5);
        for (w, live, ks) in [(512usize, 392usize, 10usize), (64, 13, 3), (256, 256, 4), (16, 1, 2)] {
            let mut planes: Vec<u64> = (0..ks * w).map(|_| rng.next_u64()).collect();
            for p in planes.chunks_exact_mut(w) {
                p[live..].fill(0);
            }
            let g = 6;
            let us: Vec<usize> = (0..g).map(|_| rng.next_u64() as usize % (64 * w)).collect();
            let ts: Vec<u64> = (0..g * w).map(|_| rng.next_u64()).collect();
            let mut want = vec![0u64; g];
            permuted_parities_batch(&ts, &us, &planes, ks, live, &mut want);
            let read = batch_read_outputs(live, w);
            let mut scrambled = ts.clone();
            for (t, &u) in scrambled.chunks_exact_mut(w).zip(&us) {
                for y in 0..64 * w {
                    if (y ^ u) as u64 >= read {
                        t[y / 64] ^= rng.next_u64() & (1 << (y % 64));
                    }
                }
            }
            let mut got = vec![0u64; g];
            permuted_parities_batch(&scrambled, &us, &planes, ks, live, &mut got);
            assert_eq!(got, want, "w {w} live {live}");
        }
    }

    #[test]
    fn parity_of_single_bits() {
        assert!(and_parity(&[0b1011, 0], &[0b0010, 7]));
        assert!(!and_parity(&[0b1011, 0], &[0b1010, 7]));
    }

    #[test]
    fn unit_vector_selects_one_table_bit_per_plane() {
        // t = e_r; the permuted parity then reads bit r ⊕ u of every plane.
        let w = 16;
        let planes: Vec<u64> = (0..3 * w as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        for r in [0usize, 5, 64, 700, 1023] {
            let mut t = vec![0u64; w];
            t[r / 64] |= 1 << (r % 64);
            for u in [0usize, 1, 77, 512, 1023] {
                let j = r ^ u;
                let want = (0..3).fold(0, |acc, k| acc | (((planes[k * w + j / 64] >> (j % 64)) & 1) << k));
                assert_eq!(permuted_parities(&t, u, &planes, 3), want);
            }
        }
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn non_power_of_two_is_rejected() {
        permuted_parities(&[0; 3], 0, &[0; 3], 1);
    }
}
