//! The two share arithmetics, as one trait so the parties are written once.

use crate::protocol::bits::low_mask;
use crate::protocol::plan::Table;
use pmsm_kernels::Party;
use pmsm_kernels::dpf::{BitLeaf, DpfGroup, RingLeaf};

/// How values are shared and how a lookup is finished.
pub trait Sharing: Send + Sync + 'static {
    /// The DPF output group of the lookup.
    type Leaf: DpfGroup;
    /// The DPF's value at its point (one).
    const ONE: <Self::Leaf as DpfGroup>::Output;

    /// `y` such that `x0 ∘ y` reconstructs `value` given a random share `x0`, in `width` bits.
    fn complement(value: u64, x0: u64, width: u32) -> u64;
    /// Reconstruction of two shares, in `width` bits.
    fn reconstruct(a: u64, b: u64, width: u32) -> u64;
    /// A server's opening of its index share `i` under its mask share `r`, in `width` bits.
    fn open(i: u64, r: u64, width: u32) -> u64;
    /// The public `u` from both openings.
    fn combine(mine: u64, peer: u64, width: u32) -> u64 {
        Self::reconstruct(mine, peer, width)
    }
    /// The share of `a + b` (XOR, or addition in Z_2^64) from shares of `a` and `b`:
    /// local, no interaction.
    fn add(a: u64, b: u64) -> u64;
    /// The share of `(s << kx) | x` from shares of `s` and `x`.
    fn index(s: u64, x: u64, kx: u32) -> u64;
    /// A server's initial share of the (public) start state.
    fn init(party: Party, start: u32) -> u64 {
        if party == Party::P0 { u64::from(start) } else { 0 }
    }
    /// A server's output share of `T[i]` from its expansion and `u`.
    fn lookup(table: &Table, leaves: &[Self::Leaf], u: u64) -> u64;
    /// [`Sharing::lookup`] for several instances whose expansions lie back to back.
    fn lookup_batch(table: &Table, leaves: &[Self::Leaf], us: &[u64], out: &mut [u64]) {
        let per = leaves.len() / us.len().max(1);
        for ((e, &u), o) in leaves.chunks_exact(per.max(1)).zip(us).zip(out.iter_mut()) {
            *o = Self::lookup(table, e, u);
        }
    }
}

/// XOR shares (`lookup-xor`).
#[derive(Debug)]
pub struct Xor;

impl Sharing for Xor {
    type Leaf = BitLeaf;
    const ONE: bool = true;

    fn complement(value: u64, x0: u64, width: u32) -> u64 {
        (value ^ x0) & low_mask(width)
    }
    fn reconstruct(a: u64, b: u64, width: u32) -> u64 {
        (a ^ b) & low_mask(width)
    }
    fn open(i: u64, r: u64, width: u32) -> u64 {
        (i ^ r) & low_mask(width)
    }
    fn add(a: u64, b: u64) -> u64 {
        a ^ b
    }
    fn index(s: u64, x: u64, kx: u32) -> u64 {
        (s << kx) | (x & low_mask(kx))
    }
    fn lookup(table: &Table, leaves: &[BitLeaf], u: u64) -> u64 {
        table.lookup_xor(bytemuck::cast_slice(leaves), u)
    }
    fn lookup_batch(table: &Table, leaves: &[BitLeaf], us: &[u64], out: &mut [u64]) {
        table.lookup_xor_batch(bytemuck::cast_slice(leaves), us, out)
    }
}

/// Additive shares in Z_2^64 (`lookup-ring`).
#[derive(Debug)]
pub struct Ring;

impl Sharing for Ring {
    type Leaf = RingLeaf;
    const ONE: u64 = 1;

    fn complement(value: u64, x0: u64, width: u32) -> u64 {
        value.wrapping_sub(x0) & low_mask(width)
    }
    fn reconstruct(a: u64, b: u64, width: u32) -> u64 {
        a.wrapping_add(b) & low_mask(width)
    }
    fn open(i: u64, r: u64, width: u32) -> u64 {
        i.wrapping_sub(r) & low_mask(width)
    }
    fn add(a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
    fn index(s: u64, x: u64, kx: u32) -> u64 {
        (s << kx).wrapping_add(x)
    }
    fn lookup(table: &Table, leaves: &[RingLeaf], u: u64) -> u64 {
        table.lookup_ring(bytemuck::cast_slice(leaves), u)
    }
}
