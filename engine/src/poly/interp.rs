//! Interpolating a transition function over GF(p) (the seed's protocols, DESIGN §2).
//!
//! States and symbols are the field points `0, 1, …`. The Lagrange basis over the
//! nodes `0..n` is computed in `O(n²)`: `P(x) = Π_k (x − k)`, then for each node `s`
//! the quotient `P(x)/(x − s)` by synthetic division, scaled by its value at `s`.
//!
//! - [`per_symbol`]: `f_a(x) = Σ_s δ(s, a)·L_s(x)`, one polynomial per symbol
//!   (`O(|S|²·|Σ|)`);
//! - [`bivariate`]: `f(x, y) = Σ_a f_a(x)·M_a(y)` (`O(|S|·|Σ|²)` more).
//!
//! Coefficients are listed lowest degree first.

use crate::dfa::Dfa;
use pmsm_kernels::field::F65521 as F;

/// The Lagrange basis polynomials over the nodes `0..n` (`n < p`): `basis[s][i]` is the
/// coefficient of `x^i` in `L_s`.
pub fn lagrange_basis(n: usize) -> Vec<Vec<F>> {
    // P(x) = Π_{k<n} (x − k), degree n.
    let mut p = vec![F::ONE];
    for k in 0..n {
        let mut next = vec![F::ZERO; p.len() + 1];
        for (i, c) in p.iter().enumerate() {
            next[i + 1] += *c;
            next[i] -= *c * F::new(k as u64);
        }
        p = next;
    }
    (0..n)
        .map(|s| {
            // Q(x) = P(x) / (x − s): synthetic division from the top.
            let node = F::new(s as u64);
            let mut q = vec![F::ZERO; n];
            let mut carry = F::ZERO;
            for i in (1..=n).rev() {
                carry = p[i] + carry * node;
                q[i - 1] = carry;
            }
            let value: F = q.iter().rev().fold(F::ZERO, |acc, c| acc * node + *c);
            let inv = value.inv().expect("distinct nodes give a non-zero denominator");
            q.iter().map(|c| *c * inv).collect()
        })
        .collect()
}

/// `f_a` for every symbol: `out[a][i]` is the coefficient of `x^i`.
pub fn per_symbol(dfa: &Dfa) -> Vec<Vec<F>> {
    let basis = lagrange_basis(dfa.states());
    (0..dfa.symbols() as u32)
        .map(|a| {
            let mut f = vec![F::ZERO; dfa.states()];
            for (s, l) in basis.iter().enumerate() {
                let v = F::new(u64::from(dfa.next(s as u32, a)));
                if v != F::ZERO {
                    for (c, b) in f.iter_mut().zip(l) {
                        *c += v * *b;
                    }
                }
            }
            f
        })
        .collect()
}

/// `f(x, y)`: `out[i][j]` is the coefficient of `x^i·y^j`.
pub fn bivariate(dfa: &Dfa) -> Vec<Vec<F>> {
    let fa = per_symbol(dfa);
    let m = lagrange_basis(dfa.symbols());
    let mut out = vec![vec![F::ZERO; dfa.symbols()]; dfa.states()];
    for (a, f) in fa.iter().enumerate() {
        for (i, ci) in f.iter().enumerate() {
            if *ci == F::ZERO {
                continue;
            }
            for (j, mj) in m[a].iter().enumerate() {
                out[i][j] += *ci * *mj;
            }
        }
    }
    out
}

/// The polynomial `A(x) = Σ_{s ∈ F} L_s(x)` (the accept indicator).
pub fn accept_poly(dfa: &Dfa) -> Vec<F> {
    let basis = lagrange_basis(dfa.states());
    let mut out = vec![F::ZERO; dfa.states()];
    for (s, l) in basis.iter().enumerate().filter(|(s, _)| dfa.is_accepting(*s as u32)) {
        let _ = s;
        for (c, b) in out.iter_mut().zip(l) {
            *c += *b;
        }
    }
    out
}

/// Evaluates `Σ c_i x^i` (Horner).
pub fn eval(c: &[F], x: F) -> F {
    c.iter().rev().fold(F::ZERO, |acc, ci| acc * x + *ci)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dfa::random::random_dfa;
    use pmsm_kernels::rng::WorkloadRng;

    fn ab() -> Dfa {
        crate::dfa::json::seed_machine()
    }

    fn values(c: &[F]) -> Vec<u64> {
        c.iter().map(|x| x.value()).collect()
    }

    #[test]
    fn the_seeds_polynomials() {
        let fa = per_symbol(&ab());
        assert_eq!(values(&fa[0]), vec![2, 10922, 65520, 54601], "f_a");
        assert_eq!(values(&fa[1]), vec![3, 3, 65517, 1], "f_b");
        let f = bivariate(&ab());
        // f(x,y) = 2 + y + 10922x + 54602xy + 65520x² + 65518x²y + 54601x³ + 10921x³y
        let got: Vec<Vec<u64>> = f.iter().map(|r| values(r)).collect();
        assert_eq!(got, vec![vec![2, 1], vec![10922, 54602], vec![65520, 65518], vec![54601, 10921]]);
    }

    #[test]
    fn interpolants_reproduce_random_machines() {
        let mut r = WorkloadRng::seed_from_u64(3);
        for _ in 0..10 {
            let m = random_dfa(1 + r.below(30) as usize, 1 + r.below(9) as usize, &mut r);
            let fa = per_symbol(&m);
            let f = bivariate(&m);
            let acc = accept_poly(&m);
            for s in 0..m.states() as u32 {
                let x = F::new(u64::from(s));
                assert_eq!(eval(&acc, x).value(), u64::from(m.is_accepting(s)));
                for a in 0..m.symbols() as u32 {
                    let want = u64::from(m.next(s, a));
                    assert_eq!(eval(&fa[a as usize], x).value(), want);
                    let y = F::new(u64::from(a));
                    let row: Vec<F> = f.iter().map(|cs| eval(cs, y)).collect();
                    assert_eq!(eval(&row, x).value(), want);
                }
            }
        }
    }
}
