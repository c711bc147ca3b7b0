//! The prime field of the seed's protocols.
//!
//! [`Fp<P>`] is the field of integers modulo a prime `P < 2^32` (so a product of two
//! reduced elements fits in a `u64`); [`F65521`] is the seed's field. Another prime is a
//! type parameter away. Elements are always kept reduced (`0 ≤ value < P`).
//!
//! Primality of `P` is the caller's promise; [`Fp::inv`] relies on it (Fermat).

use core::fmt;
use core::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// An element of Z/PZ, `P` prime and below 2^32.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Fp<const P: u64>(u64);

/// The seed's field, p = 65521 (the largest prime below 2^16).
pub type F65521 = Fp<65521>;

impl<const P: u64> Fp<P> {
    /// The modulus.
    pub const MODULUS: u64 = {
        assert!(P > 1 && P < (1 << 32), "Fp: modulus must be in (1, 2^32)");
        P
    };
    /// Zero.
    pub const ZERO: Self = Fp(0);
    /// One.
    pub const ONE: Self = Fp(1);

    /// `v mod P`.
    #[inline]
    pub const fn new(v: u64) -> Self {
        Fp(v % Self::MODULUS)
    }

    /// `v mod P` from 128 bits (used to turn a PRG block into an element; the bias is
    /// below `P / 2^128`).
    #[inline]
    pub const fn from_u128(v: u128) -> Self {
        Fp((v % Self::MODULUS as u128) as u64)
    }

    /// `v mod P` for a signed integer.
    pub const fn from_i64(v: i64) -> Self {
        Fp(v.rem_euclid(Self::MODULUS as i64) as u64)
    }

    /// The canonical representative in `[0, P)`.
    #[inline]
    pub const fn value(self) -> u64 {
        self.0
    }

    /// `self^e` by square-and-multiply.
    pub fn pow(self, mut e: u64) -> Self {
        let (mut base, mut acc) = (self, Self::ONE);
        while e > 0 {
            if e & 1 == 1 {
                acc *= base;
            }
            base *= base;
            e >>= 1;
        }
        acc
    }

    /// The multiplicative inverse, `None` for zero.
    pub fn inv(self) -> Option<Self> {
        (self.0 != 0).then(|| self.pow(Self::MODULUS - 2))
    }
}

impl<const P: u64> fmt::Debug for Fp<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<const P: u64> fmt::Display for Fp<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<const P: u64> Add for Fp<P> {
    type Output = Self;
    #[inline]
    fn add(self, o: Self) -> Self {
        let s = self.0 + o.0;
        Fp(if s >= P { s - P } else { s })
    }
}

impl<const P: u64> Sub for Fp<P> {
    type Output = Self;
    #[inline]
    fn sub(self, o: Self) -> Self {
        Fp(if self.0 >= o.0 { self.0 - o.0 } else { self.0 + P - o.0 })
    }
}

impl<const P: u64> Neg for Fp<P> {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Fp(if self.0 == 0 { 0 } else { P - self.0 })
    }
}

impl<const P: u64> Mul for Fp<P> {
    type Output = Self;
    #[inline]
    fn mul(self, o: Self) -> Self {
        Fp(self.0 * o.0 % P)
    }
}

impl<const P: u64> AddAssign for Fp<P> {
    #[inline]
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}

impl<const P: u64> SubAssign for Fp<P> {
    #[inline]
    fn sub_assign(&mut self, o: Self) {
        *self = *self - o;
    }
}

impl<const P: u64> MulAssign for Fp<P> {
    #[inline]
    fn mul_assign(&mut self, o: Self) {
        *self = *self * o;
    }
}

impl<const P: u64> core::iter::Sum for Fp<P> {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type F = F65521;

    proptest! {
        #[test]
        fn ring_laws(a in 0u64..65521, b in 0u64..65521, c in 0u64..65521) {
            let (a, b, c) = (F::new(a), F::new(b), F::new(c));
            prop_assert_eq!((a + b) * c, a * c + b * c);
            prop_assert_eq!(a - b + b, a);
            prop_assert_eq!(a + (-a), F::ZERO);
            if a != F::ZERO { prop_assert_eq!(a * a.inv().unwrap(), F::ONE); }
        }
    }

    #[test]
    fn seed_constants() {
        // 1/6 mod 65521 = 54601, the seed's x³ coefficient of f_a.
        assert_eq!(F::new(6).inv().unwrap().value(), 54601);
        assert_eq!(F::from_i64(-1).value(), 65520);
        assert_eq!(F::ZERO.inv(), None);
        assert_eq!(Fp::<7>::new(3).pow(6), Fp::<7>::ONE);
    }
}
