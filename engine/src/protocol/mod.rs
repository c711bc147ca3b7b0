//! The one-round masked-index lookup (DESIGN §3).
//!
//! Pad `|S|` to `2^ks` and the symbol (or symbol-class) range to `2^kx`; flatten the
//! transition table to `T[j]`, `j = (s << kx) | x`, `n = ks + kx`. For every instance
//! and step the dealer draws a mask `r ∈ Z_{2^n}`, shares it, and gives each server a
//! DPF key for the point `r`. Each server opens its masked index share to the other —
//! `n` bits, one round — and both learn `u = i − r` (ring) or `i ⊕ r` (boolean), which
//! is uniform whatever `i` is. Each server's new state share is then a local dot
//! product of its DPF expansion with `T` rotated by `u` (Floram's XOR read, BGI's DPF):
//!
//! - **`lookup-xor`**: XOR shares; the expansion is `N` control bits; the table is held
//!   as `ks` bit-planes and each output bit is `parity(t^{⊕u} AND P_k)`
//!   ([`pmsm_kernels::gf2::permuted_parities`]);
//! - **`lookup-ring`**: additive shares in Z_2^64; the expansion is `N` ring elements
//!   and the output is [`pmsm_kernels::ring::rotated_dot`] — the baseline.
//!
//! [`plan`] holds what all parties agree on in advance (tables, widths, the round
//! schedule); [`set`] machine sets (many machines over one input, outputs combined
//! inside the protocol); [`wire`] the frames; [`bits`] the bit packing.

pub mod bits;
pub mod plan;
pub mod set;
pub mod wire;

use std::fmt;
use std::str::FromStr;

/// Which lookup protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// XOR shares, bit-sliced table (DESIGN §3a): the fast path.
    LookupXor,
    /// Additive shares in Z_2^64 (DESIGN §3b): the baseline.
    LookupRing,
    /// The seed's naive protocol: bivariate polynomial and Beaver triples over GF(65521).
    Naive,
    /// The seed's optimised protocol: per-symbol polynomials selected by a DPF.
    SeedDpf,
}

impl Protocol {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::LookupXor => "lookup-xor",
            Protocol::LookupRing => "lookup-ring",
            Protocol::Naive => "naive",
            Protocol::SeedDpf => "seed-dpf",
        }
    }

    /// Every protocol, fastest first.
    pub const ALL: [Protocol; 4] = [Protocol::LookupXor, Protocol::LookupRing, Protocol::SeedDpf, Protocol::Naive];

    /// Whether this is one of the masked-index lookups (as opposed to the seed's).
    pub fn is_lookup(self) -> bool {
        matches!(self, Protocol::LookupXor | Protocol::LookupRing)
    }

    /// Largest lookup domain `n` (bits) this protocol accepts: a server expands a DPF
    /// over `2^n` points per instance-step (`2^n` bits for xor, `2^n` words for ring).
    pub fn max_domain_bits(self) -> u32 {
        match self {
            Protocol::LookupXor => 26,
            Protocol::LookupRing => 22,
            Protocol::Naive | Protocol::SeedDpf => 0,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lookup-xor" => Ok(Protocol::LookupXor),
            "lookup-ring" => Ok(Protocol::LookupRing),
            "naive" => Ok(Protocol::Naive),
            "seed-dpf" => Ok(Protocol::SeedDpf),
            other => Err(format!("unknown protocol {other:?} (expected lookup-xor, lookup-ring, seed-dpf or naive)")),
        }
    }
}

/// What the client learns at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reveal {
    /// The final state.
    State,
    /// Only the accept bit `[s ∈ F]` (one more lookup over `A[s]`).
    Accept,
}

impl FromStr for Reveal {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "state" => Ok(Reveal::State),
            "accept" => Ok(Reveal::Accept),
            other => Err(format!("unknown output policy {other:?} (expected state or accept)")),
        }
    }
}

impl From<crate::dfa::NaturalOutput> for Reveal {
    /// What a client learns by default: the machine's natural output.
    fn from(o: crate::dfa::NaturalOutput) -> Reveal {
        match o {
            crate::dfa::NaturalOutput::State => Reveal::State,
            crate::dfa::NaturalOutput::Accept => Reveal::Accept,
        }
    }
}

impl fmt::Display for Reveal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reveal::State => "state",
            Reveal::Accept => "accept",
        })
    }
}

/// Whether to map symbols to their classes first (see [`crate::dfa::classes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClassMode {
    /// Use classes when that makes the lookups cheaper (fewer table entries in all).
    Auto,
    /// Always use classes.
    On,
    /// Never use classes.
    Off,
}

impl FromStr for ClassMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ClassMode::Auto),
            "on" => Ok(ClassMode::On),
            "off" => Ok(ClassMode::Off),
            other => Err(format!("unknown symbol-class mode {other:?} (expected auto, on or off)")),
        }
    }
}

impl fmt::Display for ClassMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClassMode::Auto => "auto",
            ClassMode::On => "on",
            ClassMode::Off => "off",
        })
    }
}

/// What can go wrong in a protocol run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The machine's lookup table is too large for the protocol.
    #[error(
        "{protocol} supports lookup domains up to 2^{limit} entries; this machine needs 2^{needed} (|S| = {states}, {symbols} symbols or classes)"
    )]
    TooLarge {
        /// The protocol.
        protocol: Protocol,
        /// Domain bits needed.
        needed: u32,
        /// Domain bits allowed.
        limit: u32,
        /// States of the machine.
        states: usize,
        /// Symbols (or classes) of the machine.
        symbols: usize,
    },
    /// A frame did not decode or did not fit the schedule.
    #[error("bad frame on {link}: {detail}")]
    Frame {
        /// Which link.
        link: crate::transport::Link,
        /// What was wrong.
        detail: String,
    },
    /// A link failed.
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    /// A server's session store failed (durable sessions).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A DPF operation failed (malformed key).
    #[error("DPF: {0}")]
    Dpf(#[from] pmsm_kernels::dpf::DpfError),
    /// A party thread stopped without reporting (it panicked).
    #[error("the {party} thread stopped unexpectedly: {detail}")]
    PartyFailed {
        /// Which party.
        party: &'static str,
        /// What is known.
        detail: String,
    },
    /// Invalid run parameters.
    #[error("invalid parameter: {0}")]
    Parameter(String),
}
