//! The Boyle–Gilboa–Ishai tree distributed point function (BGI, CCS 2016).
//!
//! A DPF for the point function `f_{α,β}(x) = β·[x = α]` on the domain `{0,1}^n` is a
//! pair of keys such that each key alone reveals nothing of `α` or `β`, and for every
//! `x`, `Eval(k0, x) + Eval(k1, x) = f_{α,β}(x)` in the output group
//! ([`DpfGroup`]: GF(2) bits, Z_2^64, or a prime field).
//!
//! # Construction
//! A binary tree of depth `d = n − LOG_OUTPUTS_PER_LEAF` (early termination: one leaf
//! holds 128 bits of output). Each node carries a 127-bit seed and a control bit `t`,
//! stored together in a `u128` whose least significant bit is `t`. The two parties'
//! nodes agree off the path to `α` and differ on it, with `t0 ⊕ t1 = 1` there. Children
//! come from the fixed-key PRG ([`crate::prg`]); each of the first `d − 1` levels has a
//! correction word (a seed and two control bits); the last expansion goes straight to
//! leaves, corrected by two leaf correction words (one per child). A leaf's output
//! share is `(−1)^b · (Convert(H(seed)) + t · CW_leaf)`.
//!
//! # Key size
//! For `d ≥ 1`: root seed 128 bits, `d − 1` correction words of 130 bits, two leaf
//! correction words: `128 + 130(d − 1) + 2·8·BYTES` bits of key material. For 1-bit
//! outputs (`d = n − 7`) that is `130(n − 7) + 254` bits — 1,684 bits for `n = 18`,
//! two bits under the `130(n−7)+256` of DESIGN §4 because the last level's seed
//! correction is folded into the leaf corrections. For `d = 0` (the domain fits in one
//! leaf) a key is the root seed and one leaf correction word. [`DpfKey::to_bytes`] adds
//! a 4-byte header and packs the control bits: see [`DpfKey::encoded_len`].
//!
//! # Cost
//! Key generation: `4d` AES blocks. Single-point evaluation: `d` blocks. Full-domain
//! evaluation: `2^(d+1) − 2` blocks, i.e. `N/64` AES calls for bit outputs and `N`
//! for Z_2^64 outputs, expanded level by level in cache-sized subtrees so that each
//! AES call covers many blocks.

mod group;

pub use group::{BitLeaf, DpfGroup, RingLeaf};

use crate::Party;
use crate::prg::{FixedKeyPrg, TWEAK_LEAF, TWEAK_RIGHT};
use crate::rng::{CryptoRng, RngCore, SecretRng};
use core::fmt;
use core::marker::PhantomData;
use rayon::prelude::*;

/// The largest domain, in bits, a key may cover.
pub const MAX_DOMAIN_BITS: u32 = 48;

/// Version byte of the key encoding.
const KEY_VERSION: u8 = 1;
/// Bytes of the key encoding's header: version, group tag, party, domain bits.
const HEADER_BYTES: usize = 4;
/// log2 of the leaves in one subtree of full-domain evaluation: 2^11 blocks (32 KiB)
/// per scratch buffer keeps a whole subtree expansion in L1/L2.
const SUBTREE_LOG: u32 = 11;

/// What can go wrong building, evaluating or decoding a DPF key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpfError {
    /// The domain size is outside `1..=MAX_DOMAIN_BITS`.
    #[error("DPF domain of {bits} bits is out of range (1..={MAX_DOMAIN_BITS})")]
    DomainBits {
        /// The rejected size.
        bits: u32,
    },
    /// A point lies outside the `2^bits` domain.
    #[error("point {point} is outside the DPF domain of 2^{bits} points")]
    PointOutOfDomain {
        /// The rejected point.
        point: u64,
        /// The domain size in bits.
        bits: u32,
    },
    /// An output buffer has the wrong length.
    #[error("output buffer holds {got} leaves, the key's domain needs {want}")]
    BufferLength {
        /// Leaves provided.
        got: usize,
        /// Leaves needed.
        want: usize,
    },
    /// Full-domain evaluation of a domain this large would not fit in memory.
    #[error("full-domain evaluation of 2^{bits} points needs more than 2^32 leaves")]
    DomainTooLargeForFullEval {
        /// The domain size in bits.
        bits: u32,
    },
    /// Key bytes that do not decode.
    #[error("malformed DPF key: {0}")]
    Malformed(&'static str),
}

/// One server's DPF key. Not `Clone`: a key is single-use correlated randomness.
/// `Debug` prints no key material.
pub struct DpfKey<G: DpfGroup> {
    party: Party,
    domain_bits: u32,
    /// Root node: seed with lsb = control bit = party index.
    root: u128,
    /// Per internal level: the correction masks for the left and right child, i.e. the
    /// seed correction (lsb clear) with that child's control-bit correction in the lsb.
    cws: Vec<[u128; 2]>,
    /// Leaf correction words: one per child of the last level (one in all if `d = 0`).
    leaf_cws: Vec<G>,
}

impl<G: DpfGroup> fmt::Debug for DpfKey<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpfKey")
            .field("party", &self.party)
            .field("domain_bits", &self.domain_bits)
            .field("material", &"<redacted>")
            .finish()
    }
}

/// Namespace for DPF generation over the group `G`.
#[derive(Debug)]
pub struct Dpf<G>(PhantomData<G>);

/// Depth of the tree for `bits` domain bits.
#[inline]
fn depth<G: DpfGroup>(bits: u32) -> u32 {
    bits.saturating_sub(G::LOG_OUTPUTS_PER_LEAF)
}

/// The PRG inputs of every child: `children[2i + c] = seed(parents[i]) ⊕ c`.
#[inline(always)]
fn write_child_inputs(parents: &[u128], children: &mut [u128]) {
    for (p, ch) in parents.iter().zip(children.chunks_exact_mut(2)) {
        ch[0] = p & !1;
        ch[1] = (p & !1) ^ TWEAK_RIGHT;
    }
}

#[inline]
fn ctl_mask(node: u128) -> u128 {
    0u128.wrapping_sub(node & 1)
}

impl<G: DpfGroup> Dpf<G> {
    /// Keys `[k0, k1]` for the point function `β·[x = α]` over `2^domain_bits` points.
    pub fn keygen<R: RngCore + CryptoRng>(
        domain_bits: u32,
        alpha: u64,
        beta: G::Output,
        rng: &mut R,
    ) -> Result<[DpfKey<G>; 2], DpfError> {
        let mut seeds = [0u128; 2];
        for s in &mut seeds {
            *s = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        }
        Self::keygen_with_seeds(domain_bits, alpha, beta, seeds)
    }

    /// The deterministic twin of [`Dpf::keygen`]: the two root seeds are given (their
    /// least significant bits are ignored). For test vectors only.
    pub fn keygen_with_seeds(
        domain_bits: u32,
        alpha: u64,
        beta: G::Output,
        seeds: [u128; 2],
    ) -> Result<[DpfKey<G>; 2], DpfError> {
        if !(1..=MAX_DOMAIN_BITS).contains(&domain_bits) {
            return Err(DpfError::DomainBits { bits: domain_bits });
        }
        if alpha >> domain_bits != 0 {
            return Err(DpfError::PointOutOfDomain {
                point: alpha,
                bits: domain_bits,
            });
        }
        let prg = FixedKeyPrg::get();
        let d = depth::<G>(domain_bits);
        let leaf_bits = domain_bits - d;
        let pos = (alpha & ((1u64 << leaf_bits) - 1)) as usize;
        let leaf_index = alpha >> leaf_bits;
        let roots = [seeds[0] & !1, (seeds[1] & !1) | 1];
        let unit = G::unit(pos, beta);
        // CW = (−1)^{t1} · (β_c − A0 + A1), so that (A0 + t0·CW) − (A1 + t1·CW) = β_c.
        let leaf_cw = |a: [G; 2], beta_c: G, t1: bool| {
            let cw = beta_c.add(a[0].neg()).add(a[1]);
            if t1 { cw.neg() } else { cw }
        };
        if d == 0 {
            let mut blocks = roots.map(|r| (r & !1) ^ TWEAK_LEAF);
            prg.hash_in_place(&mut blocks);
            let cw = leaf_cw(blocks.map(G::from_block), unit, true);
            return Ok(Self::keys(domain_bits, roots, Vec::new(), vec![cw]));
        }
        let mut nodes = roots;
        let mut cws = Vec::with_capacity(d as usize - 1);
        for level in 0..d - 1 {
            let bit = ((leaf_index >> (d - 1 - level)) & 1) as usize;
            let mut ch = [
                nodes[0] & !1,
                (nodes[0] & !1) ^ TWEAK_RIGHT,
                nodes[1] & !1,
                (nodes[1] & !1) ^ TWEAK_RIGHT,
            ];
            prg.hash_in_place(&mut ch);
            let (c0, c1) = ([ch[0], ch[1]], [ch[2], ch[3]]);
            let lose = 1 - bit;
            let seed_cw = (c0[lose] ^ c1[lose]) & !1;
            let t_l = ((c0[0] ^ c1[0]) & 1) ^ (bit as u128) ^ 1;
            let t_r = ((c0[1] ^ c1[1]) & 1) ^ (bit as u128);
            let cw = [seed_cw | t_l, seed_cw | t_r];
            nodes = [
                c0[bit] ^ (ctl_mask(nodes[0]) & cw[bit]),
                c1[bit] ^ (ctl_mask(nodes[1]) & cw[bit]),
            ];
            cws.push(cw);
        }
        let bit = (leaf_index & 1) as usize;
        let mut ch = [
            nodes[0] & !1,
            (nodes[0] & !1) ^ TWEAK_RIGHT,
            nodes[1] & !1,
            (nodes[1] & !1) ^ TWEAK_RIGHT,
        ];
        prg.hash_in_place(&mut ch);
        let t1 = nodes[1] & 1 == 1;
        let leaf_cws = (0..2)
            .map(|c| {
                let beta_c = if c == bit { unit } else { G::default() };
                leaf_cw([G::from_block(ch[c]), G::from_block(ch[2 + c])], beta_c, t1)
            })
            .collect();
        Ok(Self::keys(domain_bits, roots, cws, leaf_cws))
    }

    fn keys(
        domain_bits: u32,
        roots: [u128; 2],
        cws: Vec<[u128; 2]>,
        leaf_cws: Vec<G>,
    ) -> [DpfKey<G>; 2] {
        Party::BOTH.map(|party| DpfKey {
            party,
            domain_bits,
            root: roots[party.index()],
            cws: cws.clone(),
            leaf_cws: leaf_cws.clone(),
        })
    }

    /// Keys for many `(α, β)` points, generated in parallel (rayon). Each worker draws
    /// from its own generator forked from `rng`.
    pub fn keygen_many(
        domain_bits: u32,
        points: &[(u64, G::Output)],
        rng: &mut SecretRng,
    ) -> Result<Vec<[DpfKey<G>; 2]>, DpfError> {
        const PER_TASK: usize = 256;
        let forks: Vec<SecretRng> = (0..points.len().div_ceil(PER_TASK))
            .map(|_| rng.fork())
            .collect();
        let chunks: Vec<Vec<[DpfKey<G>; 2]>> = points
            .par_chunks(PER_TASK)
            .zip(forks)
            .map(|(chunk, mut r)| {
                chunk
                    .iter()
                    .map(|&(a, b)| Self::keygen(domain_bits, a, b, &mut r))
                    .collect()
            })
            .collect::<Result<_, _>>()?;
        Ok(chunks.into_iter().flatten().collect())
    }
}

impl<G: DpfGroup> DpfKey<G> {
    /// Which server holds this key.
    pub fn party(&self) -> Party {
        self.party
    }

    /// The domain size in bits.
    pub fn domain_bits(&self) -> u32 {
        self.domain_bits
    }

    /// Number of leaves of a full-domain evaluation: `2^(n − LOG_OUTPUTS_PER_LEAF)`,
    /// at least 1. Leaf `i` holds outputs `i·2^LOG .. (i+1)·2^LOG`.
    pub fn leaves(&self) -> usize {
        1usize << depth::<G>(self.domain_bits)
    }

    /// Key material in bits, as documented in the module docs.
    pub fn material_bits(&self) -> usize {
        128 + 130 * self.cws.len() + 8 * G::BYTES * self.leaf_cws.len()
    }

    /// Length of [`DpfKey::to_bytes`] for a domain of `domain_bits` bits:
    /// `4 + 16 + 16(d − 1) + ⌈(d − 1)/4⌉ + 2·BYTES` for `d ≥ 1`, `4 + 16 + BYTES` for `d = 0`.
    pub fn encoded_len(domain_bits: u32) -> usize {
        let d = depth::<G>(domain_bits) as usize;
        if d == 0 {
            HEADER_BYTES + 16 + G::BYTES
        } else {
            HEADER_BYTES + 16 + 16 * (d - 1) + (d - 1).div_ceil(4) + 2 * G::BYTES
        }
    }

    /// This server's share of `f(x)`.
    pub fn eval(&self, x: u64) -> Result<G::Output, DpfError> {
        if x >> self.domain_bits != 0 {
            return Err(DpfError::PointOutOfDomain {
                point: x,
                bits: self.domain_bits,
            });
        }
        let prg = FixedKeyPrg::get();
        let d = depth::<G>(self.domain_bits);
        let leaf_bits = self.domain_bits - d;
        let pos = (x & ((1u64 << leaf_bits) - 1)) as usize;
        let leaf_index = x >> leaf_bits;
        let mut node = self.root;
        let leaf = if d == 0 {
            let a = G::from_block(prg.hash((node & !1) ^ TWEAK_LEAF));
            a.add(if node & 1 == 1 {
                self.leaf_cws[0]
            } else {
                G::default()
            })
        } else {
            for level in 0..d - 1 {
                let bit = ((leaf_index >> (d - 1 - level)) & 1) as usize;
                let h = prg.hash((node & !1) ^ bit as u128);
                node = h ^ (ctl_mask(node) & self.cws[level as usize][bit]);
            }
            let bit = (leaf_index & 1) as usize;
            let a = G::from_block(prg.hash((node & !1) ^ bit as u128));
            a.add(if node & 1 == 1 {
                self.leaf_cws[bit]
            } else {
                G::default()
            })
        };
        let leaf = if self.party == Party::P1 {
            leaf.neg()
        } else {
            leaf
        };
        Ok(leaf.get(pos))
    }

    /// Full-domain evaluation into `out`, which must hold [`DpfKey::leaves`] leaves.
    ///
    /// # Performance
    /// `2^(d+1) − 2` AES blocks; the tree is expanded breadth-first within subtrees of
    /// 2^11 leaves so every level stays in cache and every AES call is wide.
    pub fn eval_full_into(&self, out: &mut [G]) -> Result<(), DpfError> {
        self.check_full_eval()?;
        if out.len() != self.leaves() {
            return Err(DpfError::BufferLength {
                got: out.len(),
                want: self.leaves(),
            });
        }
        let prg = FixedKeyPrg::get();
        let d = depth::<G>(self.domain_bits);
        if d == 0 {
            let a = G::from_block(prg.hash((self.root & !1) ^ TWEAK_LEAF));
            out[0] = self.finish_leaf(a, self.root, 0);
            return Ok(());
        }
        let top = d.saturating_sub(SUBTREE_LOG);
        let sub = d - top;
        let cap = 1usize << sub;
        let mut a = vec![0u128; cap];
        let mut b = vec![0u128; cap];
        // Breadth-first to the subtree roots (level `top`).
        let mut tops = vec![self.root];
        for level in 0..top {
            let mut next = vec![0u128; tops.len() * 2];
            self.expand_internal(prg, &tops, level, &mut next);
            tops = next;
        }
        for (i, &root) in tops.iter().enumerate() {
            let leaves = &mut out[i << sub..(i + 1) << sub];
            a[0] = root;
            let mut m = 1;
            for level in top..d - 1 {
                self.expand_internal(prg, &a[..m], level, &mut b[..2 * m]);
                core::mem::swap(&mut a, &mut b);
                m *= 2;
            }
            self.expand_leaves(prg, &a[..m], &mut b[..2 * m], leaves);
        }
        Ok(())
    }

    fn check_full_eval(&self) -> Result<(), DpfError> {
        if depth::<G>(self.domain_bits) > 32 {
            return Err(DpfError::DomainTooLargeForFullEval {
                bits: self.domain_bits,
            });
        }
        Ok(())
    }

    /// Full-domain evaluation into a new vector.
    pub fn eval_full(&self) -> Result<Vec<G>, DpfError> {
        self.check_full_eval()?;
        let mut out = vec![G::default(); self.leaves()];
        self.eval_full_into(&mut out)?;
        Ok(out)
    }

    /// Children of `parents` (at depth `level`), corrected: `children[2i + c]`.
    ///
    /// One AES call for the whole level, then one fused pass for the MMO feed-forward
    /// and the (branch-free) correction.
    #[inline]
    fn expand_internal(
        &self,
        prg: &FixedKeyPrg,
        parents: &[u128],
        level: u32,
        children: &mut [u128],
    ) {
        write_child_inputs(parents, children);
        prg.encrypt_in_place(children);
        let [cw_l, cw_r] = self.cws[level as usize];
        for (p, ch) in parents.iter().zip(children.chunks_exact_mut(2)) {
            let (m, s) = (ctl_mask(*p), p & !1);
            ch[0] ^= s ^ (m & cw_l);
            ch[1] ^= s ^ TWEAK_RIGHT ^ (m & cw_r);
        }
    }

    /// The last expansion: leaves `out[2i + c]` from `parents`, with `scratch` of
    /// `2·parents.len()` blocks.
    #[inline]
    fn expand_leaves(
        &self,
        prg: &FixedKeyPrg,
        parents: &[u128],
        scratch: &mut [u128],
        out: &mut [G],
    ) {
        write_child_inputs(parents, scratch);
        prg.encrypt_in_place(scratch);
        let [cw_l, cw_r] = [self.leaf_cws[0], self.leaf_cws[1]];
        let negate = self.party == Party::P1;
        for ((p, ch), o) in parents
            .iter()
            .zip(scratch.chunks_exact(2))
            .zip(out.chunks_exact_mut(2))
        {
            let (keep, s) = (0u64.wrapping_sub((p & 1) as u64), p & !1);
            let l = G::from_block(ch[0] ^ s).add(cw_l.masked(keep));
            let r = G::from_block(ch[1] ^ s ^ TWEAK_RIGHT).add(cw_r.masked(keep));
            (o[0], o[1]) = if negate { (l.neg(), r.neg()) } else { (l, r) };
        }
    }

    /// `(−1)^b · (a + t·CW_c)` for the parent node's control bit `t`.
    #[inline(always)]
    fn finish_leaf(&self, a: G, parent: u128, c: usize) -> G {
        let y = a.add(self.leaf_cws[c].masked(0u64.wrapping_sub((parent & 1) as u64)));
        if self.party == Party::P1 { y.neg() } else { y }
    }

    /// The key's encoding (see [`DpfKey::encoded_len`]): header
    /// `[version, group tag, party, domain bits]`, root seed (16 bytes LE), the internal
    /// seed corrections (16 bytes LE each), their control-bit corrections packed two per
    /// level (left then right, least significant bit first), then the leaf corrections.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::encoded_len(self.domain_bits));
        out.extend_from_slice(&[
            KEY_VERSION,
            G::TAG,
            self.party.index() as u8,
            self.domain_bits as u8,
        ]);
        out.extend_from_slice(&self.root.to_le_bytes());
        for [l, _] in &self.cws {
            out.extend_from_slice(&(l & !1).to_le_bytes());
        }
        let mut bits = vec![0u8; self.cws.len().div_ceil(4)];
        for (i, [l, r]) in self.cws.iter().enumerate() {
            bits[i / 4] |= (((l & 1) as u8) | (((r & 1) as u8) << 1)) << (2 * (i % 4));
        }
        out.extend_from_slice(&bits);
        for cw in &self.leaf_cws {
            cw.write(&mut out);
        }
        out
    }

    /// Decodes [`DpfKey::to_bytes`], checking every field.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DpfError> {
        use DpfError::Malformed;
        let header: [u8; HEADER_BYTES] = bytes
            .get(..HEADER_BYTES)
            .and_then(|h| h.try_into().ok())
            .ok_or(Malformed("shorter than its header"))?;
        let [version, tag, party, bits] = header;
        if version != KEY_VERSION {
            return Err(Malformed("unknown key version"));
        }
        if tag != G::TAG {
            return Err(Malformed("key is for another output group"));
        }
        let party =
            Party::from_index(party as usize).ok_or(Malformed("party byte is neither 0 nor 1"))?;
        let bits = u32::from(bits);
        if !(1..=MAX_DOMAIN_BITS).contains(&bits) {
            return Err(DpfError::DomainBits { bits });
        }
        if bytes.len() != Self::encoded_len(bits) {
            return Err(Malformed("length does not match the domain size"));
        }
        let block =
            |at: usize| u128::from_le_bytes(bytes[at..at + 16].try_into().expect("16 bytes"));
        let root = block(HEADER_BYTES);
        if (root & 1) as usize != party.index() {
            return Err(Malformed("root control bit does not match the party"));
        }
        let d = depth::<G>(bits) as usize;
        let internal = d.saturating_sub(1);
        let mut at = HEADER_BYTES + 16;
        let seeds: Vec<u128> = (0..internal).map(|i| block(at + 16 * i)).collect();
        if seeds.iter().any(|s| s & 1 != 0) {
            return Err(Malformed("seed correction word has its low bit set"));
        }
        at += 16 * internal;
        let packed = &bytes[at..at + internal.div_ceil(4)];
        if !internal.is_multiple_of(4) && packed[packed.len() - 1] >> (2 * (internal % 4)) != 0 {
            return Err(Malformed(
                "padding bits of the control corrections are not zero",
            ));
        }
        let cws = seeds
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let two = packed[i / 4] >> (2 * (i % 4));
                [s | u128::from(two & 1), s | u128::from((two >> 1) & 1)]
            })
            .collect();
        at += internal.div_ceil(4);
        let leaf_cws = bytes[at..]
            .chunks_exact(G::BYTES)
            .map(|c| G::read(c).ok_or(Malformed("leaf correction word is not canonical")))
            .collect::<Result<Vec<G>, _>>()?;
        Ok(DpfKey {
            party,
            domain_bits: bits,
            root,
            cws,
            leaf_cws,
        })
    }
}

#[cfg(test)]
mod tests;
