//! Share-vector arithmetic in Z_2^64 (wrapping `u64`).
//!
//! Additive shares of the ring lookup (DESIGN §3b) live here: `x = x0 + x1 mod 2^64`.
//! Every function dispatches to the active backend ([`crate::active_backend`]).
//!
//! # Panics
//! The binary kernels panic if their slices differ in length; that is a caller bug,
//! never a property of data.
//!
//! # Performance
//! The dot products are the hot loop of `lookup-ring`: one 64-bit multiply-add per
//! element, vectorised with `vpmullq` under AVX-512DQ.

use crate::arch::Kernels;

fn same_len(a: usize, b: usize, what: &str) {
    assert_eq!(a, b, "ring::{what}: slices must have equal lengths");
}

/// `a[i] += b[i]`.
pub fn add_assign(a: &mut [u64], b: &[u64]) {
    same_len(a.len(), b.len(), "add_assign");
    (Kernels::active().add)(a, b)
}

/// `a[i] -= b[i]`.
pub fn sub_assign(a: &mut [u64], b: &[u64]) {
    same_len(a.len(), b.len(), "sub_assign");
    (Kernels::active().sub)(a, b)
}

/// `a[i] *= c`.
pub fn scale(a: &mut [u64], c: u64) {
    (Kernels::active().scale)(a, c)
}

/// `a[i] *= b[i]` (element-wise).
pub fn mul_assign(a: &mut [u64], b: &[u64]) {
    same_len(a.len(), b.len(), "mul_assign");
    (Kernels::active().mul)(a, b)
}

/// `Σ a[i]·b[i]`.
pub fn dot(a: &[u64], b: &[u64]) -> u64 {
    same_len(a.len(), b.len(), "dot");
    (Kernels::active().dot)(a, b)
}

/// `Σ_j t[(j + u) mod N] · e[j]` with `N = t.len() = e.len()`, computed in place as two
/// contiguous dot products (no rotated copy): `t[u..]·e[..N-u] + t[..u]·e[N-u..]`.
///
/// # Panics
/// If the lengths differ or `u >= N` (for `N > 0`).
pub fn rotated_dot(t: &[u64], u: usize, e: &[u64]) -> u64 {
    let n = t.len();
    same_len(n, e.len(), "rotated_dot");
    if n == 0 {
        return 0;
    }
    assert!(u < n, "ring::rotated_dot: rotation {u} out of range for length {n}");
    let k = Kernels::active();
    (k.dot)(&t[u..], &e[..n - u]).wrapping_add((k.dot)(&t[..u], &e[n - u..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn rotated_dot_is_the_definition(t in prop::collection::vec(any::<u64>(), 1..300), seed in any::<u64>(), u in any::<usize>()) {
            let n = t.len();
            let u = u % n;
            let e: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(seed) ^ seed.rotate_left(7)).collect();
            let want = (0..n).fold(0u64, |s, j| s.wrapping_add(t[(j + u) % n].wrapping_mul(e[j])));
            prop_assert_eq!(rotated_dot(&t, u, &e), want);
        }

        #[test]
        fn add_then_sub_is_identity(a in prop::collection::vec(any::<u64>(), 0..100), seed in any::<u64>()) {
            let b: Vec<u64> = a.iter().map(|x| x ^ seed).collect();
            let mut c = a.clone();
            add_assign(&mut c, &b);
            sub_assign(&mut c, &b);
            prop_assert_eq!(c, a);
        }
    }

    #[test]
    fn scale_and_mul_agree() {
        let mut a: Vec<u64> = (1..50).collect();
        let mut b = a.clone();
        scale(&mut a, u64::MAX);
        mul_assign(&mut b, &[u64::MAX; 49]);
        assert_eq!(a, b);
        assert_eq!(a[0], u64::MAX);
    }

    #[test]
    #[should_panic(expected = "equal lengths")]
    fn length_mismatch_is_a_caller_bug() {
        dot(&[1, 2], &[1]);
    }
}
