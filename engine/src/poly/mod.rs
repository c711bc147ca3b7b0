//! The seed's two protocols over GF(65521) (DESIGN §2): reference points that the lookup
//! protocols are measured against.
//!
//! - **naive**: state and symbol additively shared mod p; the servers compute the
//!   powers `s^1..s^{|S|−1}` and `a^1..a^{|Σ|−1}` and the `(|S|−1)(|Σ|−1)` cross
//!   products with Beaver triples, then the public linear combination of `f(s, a)`.
//! - **seed-dpf**: the client sends DPF keys for its symbol (a point function with
//!   output 1); the servers compute the powers of `s`, every `f_a(s)` locally, and
//!   `Σ_a f_a(s)·DPF(a)` with one Beaver multiplication per symbol.
//!
//! Powers are computed by log-depth doubling by default (round `k` multiplies
//! `s^{2^{k−1}}` by every lower power); [`plan::PowerSchedule::Sequential`] reproduces the
//! seed's one multiplication per round.

pub mod beaver;
pub mod interp;
pub mod plan;
