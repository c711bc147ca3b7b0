//! Output groups of the DPF, packed as leaves.
//!
//! With early termination (BGI 2016, §3.2.1) a tree leaf is one 128-bit PRG block
//! holding `2^LOG_OUTPUTS_PER_LEAF` outputs: 128 GF(2) bits ([`BitLeaf`]), two Z_2^64
//! values ([`RingLeaf`]), or one prime-field element ([`Fp`], reduced from 128 bits).

use crate::field::Fp;
use core::fmt::Debug;

/// A group of packed DPF outputs: what a leaf of the tree converts into.
///
/// Implementations must make `from_block` map a uniform block to a (statistically
/// close to) uniform leaf, since a party's leaf is its share of the output.
pub trait DpfGroup: Copy + Default + PartialEq + Debug + Send + Sync + 'static {
    /// Distinguishes groups in serialised keys.
    const TAG: u8;
    /// log2 of the number of outputs one leaf holds.
    const LOG_OUTPUTS_PER_LEAF: u32;
    /// Serialised size of one leaf (a leaf correction word) in bytes.
    const BYTES: usize;
    /// log2 of the leaves each node of the last corrected level fans out to (1 to 4;
    /// see the DPF module docs): each step up halves the last levels' AES calls but
    /// doubles the leaf correction words every key carries. 1 is the plain BGI tree.
    const LOG_LEAF_FAN: u32 = 1;
    /// One output value.
    type Output: Copy + PartialEq + Debug + Send + Sync;

    /// Converts a pseudorandom block into a leaf.
    fn from_block(b: u128) -> Self;
    /// The group operation.
    fn add(self, o: Self) -> Self;
    /// The inverse.
    fn neg(self) -> Self;
    /// `self` if `keep` is all ones, zero if `keep` is zero (branch-free selection).
    fn masked(self, keep: u64) -> Self;
    /// The leaf holding `beta` at position `pos` and zero elsewhere.
    fn unit(pos: usize, beta: Self::Output) -> Self;
    /// The output at position `pos`.
    fn get(&self, pos: usize) -> Self::Output;
    /// Writes the little-endian encoding into `out`, exactly [`Self::BYTES`] bytes.
    fn write(&self, out: &mut [u8]);
    /// Reads an encoding of exactly [`Self::BYTES`] bytes; `None` if it is not canonical.
    fn read(bytes: &[u8]) -> Option<Self>;

    /// For groups whose leaf is exactly its corrected block (GF(2)): the leaves viewed
    /// as blocks, when aligned, so the last level is expanded and corrected in place.
    /// `None` (the default) for the others.
    #[inline]
    fn as_blocks(leaves: &mut [Self]) -> Option<&mut [u128]> {
        let _ = leaves;
        None
    }

    /// A leaf correction word as a block (only used where [`DpfGroup::as_blocks`] is
    /// `Some`).
    #[inline]
    fn cw_block(self) -> u128 {
        0
    }

    /// The fan-out to `F = cw.len()` leaves per parent, where `enc` holds the encrypted
    /// leaf inputs of `parents` (it may be overwritten):
    /// `out[F·i + j] = (−1)^b · (Convert(enc[F·i + j] ⊕ seed(p_i) ⊕ j) + t(p_i) · cw[j])`.
    #[inline]
    fn finish_leaves(parents: &[u128], enc: &mut [u128], cw: &[Self], negate: bool, out: &mut [Self]) {
        let fan = cw.len();
        for ((p, ch), o) in parents.iter().zip(enc.chunks_exact(fan)).zip(out.chunks_exact_mut(fan)) {
            let (keep, s) = (0u64.wrapping_sub((p & 1) as u64), p & !1);
            for (j, ((e, c), o)) in ch.iter().zip(cw).zip(o.iter_mut()).enumerate() {
                let y = Self::from_block(e ^ s ^ j as u128).add(c.masked(keep));
                *o = if negate { y.neg() } else { y };
            }
        }
    }
}

/// 128 GF(2) outputs: bit `p` of the leaf is output `p` (word `p / 64`, bit `p % 64`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(transparent)]
pub struct BitLeaf(pub [u64; 2]);

impl DpfGroup for BitLeaf {
    const TAG: u8 = 1;
    const LOG_OUTPUTS_PER_LEAF: u32 = 7;
    const BYTES: usize = 16;
    const LOG_LEAF_FAN: u32 = 2;
    type Output = bool;

    #[inline]
    fn from_block(b: u128) -> Self {
        BitLeaf([b as u64, (b >> 64) as u64])
    }
    #[inline]
    fn add(self, o: Self) -> Self {
        BitLeaf([self.0[0] ^ o.0[0], self.0[1] ^ o.0[1]])
    }
    #[inline]
    fn neg(self) -> Self {
        self
    }
    #[inline]
    fn masked(self, keep: u64) -> Self {
        BitLeaf([self.0[0] & keep, self.0[1] & keep])
    }
    fn unit(pos: usize, beta: bool) -> Self {
        let mut l = BitLeaf::default();
        l.0[pos / 64] = u64::from(beta) << (pos % 64);
        l
    }
    fn get(&self, pos: usize) -> bool {
        (self.0[pos / 64] >> (pos % 64)) & 1 == 1
    }
    fn write(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.0[0].to_le_bytes());
        out[8..16].copy_from_slice(&self.0[1].to_le_bytes());
    }
    fn read(bytes: &[u8]) -> Option<Self> {
        let b: [u8; 16] = bytes.try_into().ok()?;
        Some(Self::from_block(u128::from_le_bytes(b)))
    }

    #[inline]
    fn as_blocks(leaves: &mut [Self]) -> Option<&mut [u128]> {
        // `from_block` splits a block little-endian: the cast agrees only there.
        if cfg!(target_endian = "little") { bytemuck::try_cast_slice_mut(leaves).ok() } else { None }
    }

    #[inline]
    fn cw_block(self) -> u128 {
        self.block()
    }

    /// In GF(2) a leaf is the corrected block itself: the fan-out correction does it.
    #[inline]
    fn finish_leaves(parents: &[u128], enc: &mut [u128], cw: &[Self], _negate: bool, out: &mut [Self]) {
        super::correct_leaves(parents, enc, &super::leaf_blocks(cw)[..cw.len()]);
        for (o, e) in out.iter_mut().zip(enc.iter()) {
            *o = BitLeaf::from_block(*e);
        }
    }
}

impl BitLeaf {
    /// The 128 bits as one block (inverse of `from_block`).
    #[inline]
    fn block(self) -> u128 {
        u128::from(self.0[0]) | (u128::from(self.0[1]) << 64)
    }
}

/// Two Z_2^64 outputs.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(transparent)]
pub struct RingLeaf(pub [u64; 2]);

impl DpfGroup for RingLeaf {
    const TAG: u8 = 2;
    const LOG_OUTPUTS_PER_LEAF: u32 = 1;
    const BYTES: usize = 16;
    type Output = u64;

    #[inline]
    fn from_block(b: u128) -> Self {
        RingLeaf([b as u64, (b >> 64) as u64])
    }
    #[inline]
    fn add(self, o: Self) -> Self {
        RingLeaf([self.0[0].wrapping_add(o.0[0]), self.0[1].wrapping_add(o.0[1])])
    }
    #[inline]
    fn neg(self) -> Self {
        RingLeaf([self.0[0].wrapping_neg(), self.0[1].wrapping_neg()])
    }
    #[inline]
    fn masked(self, keep: u64) -> Self {
        RingLeaf([self.0[0] & keep, self.0[1] & keep])
    }
    fn unit(pos: usize, beta: u64) -> Self {
        let mut l = RingLeaf::default();
        l.0[pos] = beta;
        l
    }
    fn get(&self, pos: usize) -> u64 {
        self.0[pos]
    }
    fn write(&self, out: &mut [u8]) {
        BitLeaf(self.0).write(out)
    }
    fn read(bytes: &[u8]) -> Option<Self> {
        BitLeaf::read(bytes).map(|b| RingLeaf(b.0))
    }
}

impl<const P: u64> DpfGroup for Fp<P> {
    const TAG: u8 = 3;
    const LOG_OUTPUTS_PER_LEAF: u32 = 0;
    const BYTES: usize = 4;
    type Output = Fp<P>;

    #[inline]
    fn from_block(b: u128) -> Self {
        Fp::from_u128(b)
    }
    #[inline]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline]
    fn neg(self) -> Self {
        -self
    }
    #[inline]
    fn masked(self, keep: u64) -> Self {
        Fp::new(self.value() & keep)
    }
    fn unit(_pos: usize, beta: Self) -> Self {
        beta
    }
    fn get(&self, _pos: usize) -> Self {
        *self
    }
    fn write(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&(self.value() as u32).to_le_bytes());
    }
    fn read(bytes: &[u8]) -> Option<Self> {
        let v = u64::from(u32::from_le_bytes(bytes.try_into().ok()?));
        (v < P).then(|| Fp::new(v))
    }
}
