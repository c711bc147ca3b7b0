//! Beaver multiplication over GF(65521), many products at once (Beaver, CRYPTO 1991).
//!
//! For shared `x`, `y` and a dealer triple `(a, b, c = a·b)`, each server opens
//! `d_b = x_b − a_b` and `e_b = y_b − b_b`; with `d = d_0 + d_1`, `e = e_0 + e_1`,
//! `z_b = c_b + d·b_b + e·a_b (+ d·e for server 0)` shares `x·y`. Per product: 3 triple
//! elements per server offline, 2 elements each way online, one round.
//!
//! Elements are `u64` values below `P`, processed as flat vectors (instances × products
//! side by side) so the loops vectorise.

use pmsm_kernels::Party;
use pmsm_kernels::rng::{RngCore, SecretRng};

/// The field modulus of the seed's protocols.
pub const P: u64 = 65521;
/// Bits of one serialised element.
pub const ELEM_BITS: u32 = 16;

/// `a + b mod P`.
#[inline]
pub fn add(a: u64, b: u64) -> u64 {
    let s = a + b;
    if s >= P { s - P } else { s }
}

/// `a − b mod P`.
#[inline]
pub fn sub(a: u64, b: u64) -> u64 {
    if a >= b { a - b } else { a + P - b }
}

/// `a · b mod P`.
#[inline]
pub fn mul(a: u64, b: u64) -> u64 {
    a * b % P
}

/// A uniform element (from 64 random bits; statistical distance below 2^-47).
#[inline]
pub fn random(rng: &mut SecretRng) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(P)) >> 64) as u64
}

/// Shares `v` as `(v0, v1)` with `v0` uniform.
pub fn share(v: u64, rng: &mut SecretRng) -> (u64, u64) {
    let r = random(rng);
    (r, sub(v, r))
}

/// One server's shares of `count` Beaver triples. Not `Clone`: single use.
pub struct Triples {
    /// Shares of `a`.
    pub a: Vec<u64>,
    /// Shares of `b`.
    pub b: Vec<u64>,
    /// Shares of `c = a·b`.
    pub c: Vec<u64>,
}

impl std::fmt::Debug for Triples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Triples({} × <redacted>)", self.a.len())
    }
}

impl Triples {
    /// Generates `count` triples, shared between the two servers.
    pub fn deal(count: usize, rng: &mut SecretRng) -> [Triples; 2] {
        let mut t = [0, 1].map(|_| Triples {
            a: Vec::with_capacity(count),
            b: Vec::with_capacity(count),
            c: Vec::with_capacity(count),
        });
        for _ in 0..count {
            let (a, b) = (random(rng), random(rng));
            for (v, pick) in [(a, 0), (b, 1), (mul(a, b), 2)] {
                let (s0, s1) = share(v, rng);
                for (party, s) in [(0, s0), (1, s1)] {
                    match pick {
                        0 => t[party].a.push(s),
                        1 => t[party].b.push(s),
                        _ => t[party].c.push(s),
                    }
                }
            }
        }
        t
    }

    /// Number of triples.
    pub fn len(&self) -> usize {
        self.a.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    /// From wire order — all `a`, then all `b`, then all `c` (`3·count` elements, each
    /// `< P`); `None` otherwise.
    pub fn from_elements(v: Vec<u64>, count: usize) -> Option<Triples> {
        if v.len() != 3 * count || v.iter().any(|x| *x >= P) {
            return None;
        }
        Some(Triples { a: v[..count].to_vec(), b: v[count..2 * count].to_vec(), c: v[2 * count..].to_vec() })
    }

    /// This server's openings for the products `x[i]·y[i]`: `[d_0.., e_0..]`.
    pub fn open(&self, x: &[u64], y: &[u64]) -> Vec<u64> {
        assert!(x.len() == self.len() && y.len() == self.len(), "one triple per product");
        x.iter().zip(&self.a).map(|(x, a)| sub(*x, *a)).chain(y.iter().zip(&self.b).map(|(y, b)| sub(*y, *b))).collect()
    }

    /// This server's shares of the products, from both servers' openings.
    pub fn finish(self, party: Party, mine: &[u64], peer: &[u64]) -> Vec<u64> {
        let n = self.len();
        (0..n)
            .map(|i| {
                let d = add(mine[i], peer[i]);
                let e = add(mine[n + i], peer[n + i]);
                let z = add(self.c[i], add(mul(d, self.b[i]), mul(e, self.a[i])));
                if party == Party::P0 { add(z, mul(d, e)) } else { z }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_reconstruct() {
        let mut rng = SecretRng::from_seed([4; 32]);
        let [t0, t1] = Triples::deal(100, &mut rng);
        let xs: Vec<u64> = (0..100).map(|i| (i * 977) % P).collect();
        let ys: Vec<u64> = (0..100).map(|i| (i * 31 + 5) % P).collect();
        let (x0, x1): (Vec<u64>, Vec<u64>) = xs.iter().map(|x| share(*x, &mut rng)).unzip();
        let (y0, y1): (Vec<u64>, Vec<u64>) = ys.iter().map(|y| share(*y, &mut rng)).unzip();
        let (o0, o1) = (t0.open(&x0, &y0), t1.open(&x1, &y1));
        let z0 = t0.finish(Party::P0, &o0, &o1);
        let z1 = t1.finish(Party::P1, &o1, &o0);
        for i in 0..100 {
            assert_eq!(add(z0[i], z1[i]), mul(xs[i], ys[i]));
        }
        assert!(Triples::from_elements(vec![P; 3], 1).is_none());
    }
}
