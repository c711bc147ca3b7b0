//! # pmsm-kernels
//!
//! The compute floor under every pmsm protocol. This crate knows nothing of parties,
//! machines or messages; it provides:
//!
//! - [`ring`]: share-vector arithmetic in Z_2^64 (wrapping `u64`), including the rotated
//!   dot product `Σ_j T[(j+u) mod N]·e[j]` of the ring lookup (DESIGN §3b);
//! - [`gf2`]: bit-vector kernels, including the XOR-permuted parity
//!   `parity(Σ_j t[j⊕u]·P_k[j])` of the boolean lookup (DESIGN §3a);
//! - [`field`]: the prime field of the seed's protocols (p = 65521 by default);
//! - [`prg`]: the fixed-key AES PRG in Matyas–Meyer–Oseas form;
//! - [`rng`]: the CSPRNG for secrets and the (distinct, non-cryptographic) workload RNG;
//! - [`dpf`]: the Boyle–Gilboa–Ishai tree distributed point function.
//!
//! The vector kernels dispatch once, at first use, to the fastest backend the CPU
//! supports (AVX-512, AVX2 or portable); [`active_backend`] names it. All `unsafe` code
//! lives in the private `arch` module; every public function is safe.
//!
//! # Test vectors
//! Secrets are drawn from the OS-seeded [`rng::SecretRng`] (DESIGN §6). The two
//! deterministic twins that reproducible tests need, `SecretRng::from_seed` and
//! `Dpf::keygen_with_seeds`, exist only in this crate's tests and behind the
//! `test-vectors` cargo feature, which other crates enable from their
//! `[dev-dependencies]`. Without it they are not there (`cargo test -p pmsm-kernels
//! --doc` checks this; in a workspace test run the feature is on and the same lines
//! must compile):
//!
#![cfg_attr(not(feature = "test-vectors"), doc = "```compile_fail")]
#![cfg_attr(feature = "test-vectors", doc = "```")]
//! let _ = pmsm_kernels::rng::SecretRng::from_seed([7; 32]);
//! ```
//!
#![cfg_attr(not(feature = "test-vectors"), doc = "```compile_fail")]
#![cfg_attr(feature = "test-vectors", doc = "```")]
//! use pmsm_kernels::dpf::{BitLeaf, Dpf};
//! let _ = Dpf::<BitLeaf>::keygen_with_seeds(10, 3, true, [1, 2]).unwrap();
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod arch;
pub mod dpf;
pub mod field;
pub mod gf2;
pub mod prg;
pub mod ring;
pub mod rng;

pub use arch::{Backend, Kernels, active_backend, available_backends};

/// Which of the two servers a value belongs to: 0 ("Alice") or 1 ("Bob").
///
/// Per-server things are `[T; 2]` indexed by [`Party::index`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Party {
    /// Server 0.
    P0 = 0,
    /// Server 1.
    P1 = 1,
}

impl Party {
    /// Both parties, in index order.
    pub const BOTH: [Party; 2] = [Party::P0, Party::P1];

    /// 0 or 1.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The party with the given index; `None` unless `i` is 0 or 1.
    pub const fn from_index(i: usize) -> Option<Party> {
        match i {
            0 => Some(Party::P0),
            1 => Some(Party::P1),
            _ => None,
        }
    }

    /// The other server.
    #[inline]
    pub const fn peer(self) -> Party {
        match self {
            Party::P0 => Party::P1,
            Party::P1 => Party::P0,
        }
    }
}
