//! Two random generators that the type system keeps apart (DESIGN §6).
//!
//! - [`SecretRng`]: ChaCha12 seeded from the operating system. It is the only generator
//!   that implements [`rand_core::CryptoRng`], and every function that draws secrets
//!   (shares, masks, DPF seeds) demands that bound.
//! - [`WorkloadRng`]: xoshiro256++ for workloads, random machines and tests. It is fast,
//!   reproducible from a `u64` seed, and does **not** implement `CryptoRng`, so passing it
//!   where secrets are drawn does not compile:
//!
//! ```compile_fail
//! use pmsm_kernels::{dpf::{BitLeaf, Dpf}, rng::WorkloadRng};
//! let mut rng = WorkloadRng::seed_from_u64(1);
//! let _ = Dpf::<BitLeaf>::keygen(10, 3, true, &mut rng); // WorkloadRng is not CryptoRng
//! ```

use core::fmt;
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub use rand_core::{CryptoRng, RngCore};

/// The CSPRNG for secrets: ChaCha12, seeded from the OS.
pub struct SecretRng(ChaCha12Rng);

impl SecretRng {
    /// A generator seeded from the operating system's entropy source.
    ///
    /// # Panics
    /// If the OS entropy source fails (no secret can be drawn safely without it).
    pub fn from_os() -> Self {
        SecretRng(ChaCha12Rng::from_os_rng())
    }

    /// A generator from an explicit 32-byte seed: for reproducible test vectors only.
    /// It is still a CSPRNG, but its output is as secret as the seed, so it exists only
    /// in this crate's tests and behind the `test-vectors` feature (DESIGN §6: secret
    /// randomness is seeded from the OS).
    #[cfg(any(test, feature = "test-vectors"))]
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretRng(ChaCha12Rng::from_seed(seed))
    }

    /// An independent child generator (for parallel workers), seeded from this one.
    pub fn fork(&mut self) -> Self {
        let mut seed = [0u8; 32];
        self.0.fill_bytes(&mut seed);
        SecretRng(ChaCha12Rng::from_seed(seed))
    }

    /// A uniformly random 128-bit block.
    #[inline]
    pub fn block(&mut self) -> u128 {
        (u128::from(self.0.next_u64()) << 64) | u128::from(self.0.next_u64())
    }
}

impl fmt::Debug for SecretRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretRng(<redacted>)")
    }
}

/// `RngCore` by delegation to the wrapped generator.
macro_rules! delegate_rng_core {
    ($t:ty) => {
        impl RngCore for $t {
            #[inline]
            fn next_u32(&mut self) -> u32 {
                self.0.next_u32()
            }
            #[inline]
            fn next_u64(&mut self) -> u64 {
                self.0.next_u64()
            }
            #[inline]
            fn fill_bytes(&mut self, dst: &mut [u8]) {
                self.0.fill_bytes(dst)
            }
        }
    };
}

delegate_rng_core!(SecretRng);

impl CryptoRng for SecretRng {}

/// The workload generator: xoshiro256++, reproducible, **not** for secrets.
#[derive(Clone, Debug)]
pub struct WorkloadRng(Xoshiro256PlusPlus);

impl WorkloadRng {
    /// A generator from a `u64` seed.
    pub fn seed_from_u64(seed: u64) -> Self {
        WorkloadRng(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift with rejection.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "WorkloadRng::below: empty range");
        loop {
            let m = u128::from(self.0.next_u64()) * u128::from(n);
            if (m as u64) >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }
}

delegate_rng_core!(WorkloadRng);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_rng_debug_is_redacted_and_seeds_are_reproducible() {
        let mut a = SecretRng::from_seed([3; 32]);
        let mut b = SecretRng::from_seed([3; 32]);
        assert_eq!(a.block(), b.block());
        assert_eq!(format!("{a:?}"), "SecretRng(<redacted>)");
        let mut os1 = SecretRng::from_os();
        let mut os2 = SecretRng::from_os();
        assert_ne!(os1.block(), os2.block());
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = WorkloadRng::seed_from_u64(9);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            seen[r.below(7) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
