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

mod batch;
mod group;

pub use batch::DpfKeyBatch;
pub use group::{BitLeaf, DpfGroup, RingLeaf};

use crate::Party;
use crate::arch::Kernels;
use crate::prg::{FixedKeyPrg, TWEAK_LEAF, TWEAK_RIGHT};
use crate::rng::{CryptoRng, RngCore, SecretRng};
use core::fmt;
use core::marker::PhantomData;
use rayon::prelude::*;

/// The largest domain, in bits, a key may cover.
pub const MAX_DOMAIN_BITS: u32 = 48;

thread_local! {
    /// Per-thread scratch of [`DpfKey::eval_full_many`]: two level buffers.
    static SCRATCH: std::cell::RefCell<(Vec<u128>, Vec<u128>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Version byte of the key encoding.
const KEY_VERSION: u8 = 1;
/// Bytes of the key encoding's header: version, group tag, party, domain bits.
const HEADER_BYTES: usize = 4;
/// log2 of the leaves in one subtree of full-domain evaluation: 2^11 blocks (32 KiB)
/// per scratch buffer keeps a whole subtree expansion in L1/L2.
const SUBTREE_LOG: u32 = 10;

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
    /// Keys evaluated together must share their domain and party.
    #[error("keys evaluated together must share domain and party (found {bits} bits, party {party})")]
    Mixed {
        /// The odd key's domain bits.
        bits: u32,
        /// The odd key's party.
        party: usize,
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
    /// Leaf correction words: one per child of the last level (if `d = 0`, only the
    /// first is used and the second is zero).
    leaf_cws: [G; 2],
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

/// The PRG inputs of every child: `children[2i + c] = seed(parents[i]) ⊕ c` (the
/// tweaks are `TWEAK_LEFT = 0` and `TWEAK_RIGHT = 1`). Dispatched kernel.
#[inline(always)]
fn write_child_inputs(parents: &[u128], children: &mut [u128]) {
    const _: () = assert!(crate::prg::TWEAK_LEFT == 0 && TWEAK_RIGHT == 1);
    (Kernels::active().dpf_child_inputs)(parents, children)
}

/// MMO feed-forward and correction of one level: `children[2i + c] ^= seed(p_i) ⊕ c ⊕
/// (t(p_i) · cw[c])`, where `children` holds the encrypted child inputs. Dispatched.
#[inline(always)]
pub(super) fn correct_level(parents: &[u128], children: &mut [u128], cw: [u128; 2]) {
    (Kernels::active().dpf_correct)(parents, children, cw)
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
        let mut keys = Self::keygen_batch_with_seeds(domain_bits, &[(alpha, beta)], &[seeds])?;
        Ok(keys.pop().expect("one point in, one key pair out"))
    }

    /// Keys for many points at once, on this thread. The trees are built level by
    /// level across all points, so each level costs one AES call over `4·points`
    /// blocks instead of one small call per point.
    pub fn keygen_batch<R: RngCore + CryptoRng>(
        domain_bits: u32,
        points: &[(u64, G::Output)],
        rng: &mut R,
    ) -> Result<Vec<[DpfKey<G>; 2]>, DpfError> {
        let seeds = draw_seeds(points.len(), rng);
        Self::keygen_batch_with_seeds(domain_bits, points, &seeds)
    }

    /// [`Dpf::keygen_batch`] with explicit root seeds (one pair per point).
    fn keygen_batch_with_seeds(
        domain_bits: u32,
        points: &[(u64, G::Output)],
        seeds: &[[u128; 2]],
    ) -> Result<Vec<[DpfKey<G>; 2]>, DpfError> {
        let flat = Self::keygen_flat(domain_bits, points, seeds)?;
        Ok((0..points.len())
            .map(|i| {
                let cws = flat.cws(i);
                let leaf_cws = flat.leaf_cws[i];
                debug_assert!(flat.roots[i][0] & 1 == 0 && flat.roots[i][1] & 1 == 1);
                Party::BOTH.map(|party| DpfKey {
                    party,
                    domain_bits,
                    root: flat.roots[i][party.index()],
                    cws: cws.to_vec(),
                    leaf_cws,
                })
            })
            .collect())
    }

    /// Keys for many points, written straight into `out[b]` (server `b`'s keys, each
    /// [`DpfKey::encoded_len`] bytes, point after point) with no key values in between:
    /// what a dealer puts in a frame.
    ///
    /// # Panics
    /// If an output is not exactly `points.len()` encodings long (a caller's sizing bug).
    pub fn keygen_batch_into<R: RngCore + CryptoRng>(
        domain_bits: u32,
        points: &[(u64, G::Output)],
        rng: &mut R,
        out: [&mut [u8]; 2],
    ) -> Result<(), DpfError> {
        let seeds = draw_seeds(points.len(), rng);
        let flat = Self::keygen_flat(domain_bits, points, &seeds)?;
        let len = DpfKey::<G>::encoded_len(domain_bits);
        for (party, o) in Party::BOTH.into_iter().zip(out) {
            assert_eq!(o.len(), points.len() * len, "key buffer of the wrong size");
            for (i, k) in o.chunks_exact_mut(len).enumerate() {
                write_key(party, domain_bits, flat.roots[i][party.index()], flat.cws(i), &flat.leaf_cws[i], k);
            }
        }
        Ok(())
    }

    /// The trees of all points, level by level: roots, correction words, leaf words.
    fn keygen_flat(domain_bits: u32, points: &[(u64, G::Output)], seeds: &[[u128; 2]]) -> Result<Flat<G>, DpfError> {
        if !(1..=MAX_DOMAIN_BITS).contains(&domain_bits) {
            return Err(DpfError::DomainBits { bits: domain_bits });
        }
        if let Some(&(alpha, _)) = points.iter().find(|(a, _)| a >> domain_bits != 0) {
            return Err(DpfError::PointOutOfDomain { point: alpha, bits: domain_bits });
        }
        let prg = FixedKeyPrg::get();
        let d = depth::<G>(domain_bits);
        let leaf_bits = domain_bits - d;
        let k = points.len();
        // CW = (−1)^{t1} · (β_c − A0 + A1), so that (A0 + t0·CW) − (A1 + t1·CW) = β_c.
        let leaf_cw = |a: [G; 2], beta_c: G, t1: bool| {
            let cw = beta_c.add(a[0].neg()).add(a[1]);
            if t1 { cw.neg() } else { cw }
        };
        let units: Vec<G> = points.iter().map(|&(a, b)| G::unit((a & ((1u64 << leaf_bits) - 1)) as usize, b)).collect();
        let mut nodes: Vec<[u128; 2]> = seeds.iter().map(|s| [s[0] & !1, (s[1] & !1) | 1]).collect();
        let roots = nodes.clone();
        if d == 0 {
            let mut blocks: Vec<u128> = nodes.iter().flat_map(|n| n.map(|r| (r & !1) ^ TWEAK_LEAF)).collect();
            prg.hash_in_place(&mut blocks);
            let leaf_cws = (0..k)
                .map(|i| {
                    let a = [G::from_block(blocks[2 * i]), G::from_block(blocks[2 * i + 1])];
                    [leaf_cw(a, units[i], true), G::default()]
                })
                .collect();
            return Ok(Flat { roots, internal: 0, cws: Vec::new(), leaf_cws });
        }
        let internal = d as usize - 1;
        let mut cws = vec![[0u128; 2]; k * internal];
        let mut ch = vec![0u128; 4 * k];
        let expand = |nodes: &[[u128; 2]], ch: &mut [u128]| {
            for (n, c) in nodes.iter().zip(ch.chunks_exact_mut(4)) {
                c.copy_from_slice(&[n[0] & !1, (n[0] & !1) ^ TWEAK_RIGHT, n[1] & !1, (n[1] & !1) ^ TWEAK_RIGHT]);
            }
            prg.hash_in_place(ch);
        };
        for level in 0..d - 1 {
            expand(&nodes, &mut ch);
            for (i, (n, c)) in nodes.iter_mut().zip(ch.chunks_exact(4)).enumerate() {
                let bit = (((points[i].0 >> leaf_bits) >> (d - 1 - level)) & 1) as usize;
                let (c0, c1) = ([c[0], c[1]], [c[2], c[3]]);
                let seed_cw = (c0[1 - bit] ^ c1[1 - bit]) & !1;
                let t_l = ((c0[0] ^ c1[0]) & 1) ^ (bit as u128) ^ 1;
                let t_r = ((c0[1] ^ c1[1]) & 1) ^ (bit as u128);
                let cw = [seed_cw | t_l, seed_cw | t_r];
                *n = [c0[bit] ^ (ctl_mask(n[0]) & cw[bit]), c1[bit] ^ (ctl_mask(n[1]) & cw[bit])];
                cws[i * internal + level as usize] = cw;
            }
        }
        expand(&nodes, &mut ch);
        let leaf_cws = (0..k)
            .map(|i| {
                let c = &ch[4 * i..4 * i + 4];
                let bit = ((points[i].0 >> leaf_bits) & 1) as usize;
                let t1 = nodes[i][1] & 1 == 1;
                [0, 1].map(|side| {
                    let beta_c = if side == bit { units[i] } else { G::default() };
                    leaf_cw([G::from_block(c[side]), G::from_block(c[2 + side])], beta_c, t1)
                })
            })
            .collect();
        Ok(Flat { roots, internal, cws, leaf_cws })
    }

    /// Keys for many `(α, β)` points, generated in parallel (rayon). Each worker draws
    /// from its own generator forked from `rng`.
    pub fn keygen_many(
        domain_bits: u32,
        points: &[(u64, G::Output)],
        rng: &mut SecretRng,
    ) -> Result<Vec<[DpfKey<G>; 2]>, DpfError> {
        const PER_TASK: usize = 256;
        let forks: Vec<SecretRng> = (0..points.len().div_ceil(PER_TASK)).map(|_| rng.fork()).collect();
        let chunks: Vec<Vec<[DpfKey<G>; 2]>> = points
            .par_chunks(PER_TASK)
            .zip(forks)
            .map(|(chunk, mut r)| Self::keygen_batch(domain_bits, chunk, &mut r))
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
        128 + 130 * self.cws.len() + 8 * G::BYTES * self.leaf_cw_count()
    }

    /// Leaf correction words in use: two, or one when the domain fits in one leaf.
    fn leaf_cw_count(&self) -> usize {
        if depth::<G>(self.domain_bits) == 0 { 1 } else { 2 }
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
            return Err(DpfError::PointOutOfDomain { point: x, bits: self.domain_bits });
        }
        let prg = FixedKeyPrg::get();
        let d = depth::<G>(self.domain_bits);
        let leaf_bits = self.domain_bits - d;
        let pos = (x & ((1u64 << leaf_bits) - 1)) as usize;
        let leaf_index = x >> leaf_bits;
        let mut node = self.root;
        let leaf = if d == 0 {
            let a = G::from_block(prg.hash((node & !1) ^ TWEAK_LEAF));
            a.add(if node & 1 == 1 { self.leaf_cws[0] } else { G::default() })
        } else {
            for level in 0..d - 1 {
                let bit = ((leaf_index >> (d - 1 - level)) & 1) as usize;
                let h = prg.hash((node & !1) ^ bit as u128);
                node = h ^ (ctl_mask(node) & self.cws[level as usize][bit]);
            }
            let bit = (leaf_index & 1) as usize;
            let a = G::from_block(prg.hash((node & !1) ^ bit as u128));
            a.add(if node & 1 == 1 { self.leaf_cws[bit] } else { G::default() })
        };
        let leaf = if self.party == Party::P1 { leaf.neg() } else { leaf };
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
            return Err(DpfError::BufferLength { got: out.len(), want: self.leaves() });
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
            return Err(DpfError::DomainTooLargeForFullEval { bits: self.domain_bits });
        }
        Ok(())
    }

    /// Full-domain evaluation of many keys (same party, same domain) into `out`, which
    /// holds `keys.len() · leaves` leaves, key after key.
    ///
    /// # Performance
    /// Small trees are expanded together, level by level, in groups that fill one
    /// 2^11-block working set: one AES call per level for the whole group.
    pub fn eval_full_many(keys: &[DpfKey<G>], out: &mut [G]) -> Result<(), DpfError> {
        let Some(first) = keys.first() else { return Ok(()) };
        let (bits, party, leaves) = (first.domain_bits, first.party, first.leaves());
        if let Some(k) = keys.iter().find(|k| k.domain_bits != bits || k.party != party) {
            return Err(DpfError::Mixed { bits: k.domain_bits, party: k.party.index() });
        }
        first.check_full_eval()?;
        if out.len() != keys.len() * leaves {
            return Err(DpfError::BufferLength { got: out.len(), want: keys.len() * leaves });
        }
        expand_many(&KeySlice(keys), keys.len(), bits, party == Party::P1, out);
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
    fn expand_internal(&self, prg: &FixedKeyPrg, parents: &[u128], level: u32, children: &mut [u128]) {
        write_child_inputs(parents, children);
        prg.encrypt_in_place(children);
        correct_level(parents, children, self.cws[level as usize]);
    }

    /// The last expansion: leaves `out[2i + c]` from `parents`, with `scratch` of
    /// `2·parents.len()` blocks.
    #[inline]
    fn expand_leaves(&self, prg: &FixedKeyPrg, parents: &[u128], scratch: &mut [u128], out: &mut [G]) {
        write_child_inputs(parents, scratch);
        prg.encrypt_in_place(scratch);
        self.finish_leaves(parents, scratch, out);
    }

    /// Leaves from the encrypted child inputs `enc` (MMO feed-forward, correction, sign).
    #[inline]
    fn finish_leaves(&self, parents: &[u128], enc: &mut [u128], out: &mut [G]) {
        G::finish_leaves(parents, enc, self.leaf_cws, self.party == Party::P1, out);
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
        self.write_bytes(&mut out);
        out
    }

    /// Appends [`DpfKey::to_bytes`] to `out` (no intermediate allocation).
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + Self::encoded_len(self.domain_bits), 0);
        self.write_into(&mut out[start..]);
    }

    /// Writes [`DpfKey::to_bytes`] into `out`, which must be exactly
    /// [`DpfKey::encoded_len`] bytes long.
    ///
    /// # Panics
    /// If `out` has another length (a caller's sizing bug).
    pub fn write_into(&self, out: &mut [u8]) {
        let leaf_cws = &self.leaf_cws[..self.leaf_cw_count()];
        write_key(self.party, self.domain_bits, self.root, &self.cws, leaf_cws, out);
    }

    /// Decodes [`DpfKey::to_bytes`], checking every field.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DpfError> {
        let mut cws = Vec::new();
        let (party, domain_bits, root, leaf_cws) = parse_key::<G>(bytes, &mut cws)?;
        Ok(DpfKey { party, domain_bits, root, cws, leaf_cws })
    }
}

/// A pair of root seeds per point, from the caller's CSPRNG.
fn draw_seeds<R: RngCore + CryptoRng>(n: usize, rng: &mut R) -> Vec<[u128; 2]> {
    (0..n).map(|_| [0, 1].map(|_| (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()))).collect()
}

/// Key generation's output for many points: both parties' roots, the shared correction
/// words (point-major, `internal` per point) and the leaf correction words.
struct Flat<G: DpfGroup> {
    roots: Vec<[u128; 2]>,
    internal: usize,
    cws: Vec<[u128; 2]>,
    leaf_cws: Vec<[G; 2]>,
}

impl<G: DpfGroup> Flat<G> {
    fn cws(&self, i: usize) -> &[[u128; 2]] {
        &self.cws[i * self.internal..(i + 1) * self.internal]
    }
}

/// Writes one key's encoding ([`DpfKey::to_bytes`]) into `out`, exactly
/// [`DpfKey::encoded_len`] bytes; `leaf_cws` holds the words the encoding carries (one
/// when the tree has depth 0, else two).
fn write_key<G: DpfGroup>(
    party: Party,
    domain_bits: u32,
    root: u128,
    cws: &[[u128; 2]],
    leaf_cws: &[G],
    out: &mut [u8],
) {
    assert_eq!(out.len(), DpfKey::<G>::encoded_len(domain_bits), "key buffer of the wrong size");
    let leaf_count = if depth::<G>(domain_bits) == 0 { 1 } else { 2 };
    out[..HEADER_BYTES].copy_from_slice(&[KEY_VERSION, G::TAG, party.index() as u8, domain_bits as u8]);
    out[HEADER_BYTES..HEADER_BYTES + 16].copy_from_slice(&root.to_le_bytes());
    let mut at = HEADER_BYTES + 16;
    for [l, _] in cws {
        out[at..at + 16].copy_from_slice(&(l & !1).to_le_bytes());
        at += 16;
    }
    for four in cws.chunks(4) {
        out[at] = four
            .iter()
            .enumerate()
            .fold(0u8, |b, (i, [l, r])| b | ((((l & 1) as u8) | (((r & 1) as u8) << 1)) << (2 * i)));
        at += 1;
    }
    for (cw, o) in leaf_cws[..leaf_count].iter().zip(out[at..].chunks_exact_mut(G::BYTES)) {
        cw.write(o);
    }
}

/// Decodes one key encoding ([`DpfKey::to_bytes`]), checking every field: returns
/// party, domain bits, root and leaf corrections, and appends the internal correction
/// words to `cws` (left and right, control bits in the lsb).
fn parse_key<G: DpfGroup>(bytes: &[u8], cws: &mut Vec<[u128; 2]>) -> Result<(Party, u32, u128, [G; 2]), DpfError> {
    use DpfError::Malformed;
    let header: [u8; HEADER_BYTES] =
        bytes.get(..HEADER_BYTES).and_then(|h| h.try_into().ok()).ok_or(Malformed("shorter than its header"))?;
    let [version, tag, party, bits] = header;
    if version != KEY_VERSION {
        return Err(Malformed("unknown key version"));
    }
    if tag != G::TAG {
        return Err(Malformed("key is for another output group"));
    }
    let party = Party::from_index(party as usize).ok_or(Malformed("party byte is neither 0 nor 1"))?;
    let bits = u32::from(bits);
    if !(1..=MAX_DOMAIN_BITS).contains(&bits) {
        return Err(DpfError::DomainBits { bits });
    }
    if bytes.len() != DpfKey::<G>::encoded_len(bits) {
        return Err(Malformed("length does not match the domain size"));
    }
    let block = |at: usize| u128::from_le_bytes(bytes[at..at + 16].try_into().expect("16 bytes"));
    let root = block(HEADER_BYTES);
    if (root & 1) as usize != party.index() {
        return Err(Malformed("root control bit does not match the party"));
    }
    let d = depth::<G>(bits) as usize;
    let internal = d.saturating_sub(1);
    let mut at = HEADER_BYTES + 16;
    let packed = &bytes[at + 16 * internal..at + 16 * internal + internal.div_ceil(4)];
    if !internal.is_multiple_of(4) && packed[packed.len() - 1] >> (2 * (internal % 4)) != 0 {
        return Err(Malformed("padding bits of the control corrections are not zero"));
    }
    cws.reserve(internal);
    for i in 0..internal {
        let s = block(at + 16 * i);
        if s & 1 != 0 {
            return Err(Malformed("seed correction word has its low bit set"));
        }
        let two = packed[i / 4] >> (2 * (i % 4));
        cws.push([s | u128::from(two & 1), s | u128::from((two >> 1) & 1)]);
    }
    at += 16 * internal + internal.div_ceil(4);
    let mut leaf_cws = [G::default(); 2];
    for (slot, c) in leaf_cws.iter_mut().zip(bytes[at..].chunks_exact(G::BYTES)) {
        *slot = G::read(c).ok_or(Malformed("leaf correction word is not canonical"))?;
    }
    Ok((party, bits, root, leaf_cws))
}

/// What the grouped expansion needs of each key: its root and correction words.
trait KeyAccess<G: DpfGroup> {
    fn root(&self, i: usize) -> u128;
    fn cw(&self, i: usize, level: u32) -> [u128; 2];
    fn leaf_cws(&self, i: usize) -> [G; 2];
}

/// Keys as separate values.
struct KeySlice<'k, G: DpfGroup>(&'k [DpfKey<G>]);

impl<G: DpfGroup> KeyAccess<G> for KeySlice<'_, G> {
    #[inline]
    fn root(&self, i: usize) -> u128 {
        self.0[i].root
    }
    #[inline]
    fn cw(&self, i: usize, level: u32) -> [u128; 2] {
        self.0[i].cws[level as usize]
    }
    #[inline]
    fn leaf_cws(&self, i: usize) -> [G; 2] {
        self.0[i].leaf_cws
    }
}

/// Full-domain evaluation of `n` keys (same party, same domain of `bits`) into `out`,
/// key after key.
///
/// # Performance
/// Small trees (depth below [`SUBTREE_LOG`]) are expanded together, level by level, in
/// groups that fill one 2^11-block working set: one AES call per level for the whole
/// group. Larger trees (and depth 0) go key by key through [`DpfKey::eval_full_into`].
fn expand_many<G: DpfGroup>(keys: &impl KeyAccess<G>, n: usize, bits: u32, negate: bool, out: &mut [G]) {
    let d = depth::<G>(bits);
    let leaves = 1usize << d;
    let prg = FixedKeyPrg::get();
    if d == 0 || d >= SUBTREE_LOG {
        for (i, o) in out.chunks_exact_mut(leaves).enumerate().take(n) {
            let key = DpfKey {
                party: if negate { Party::P1 } else { Party::P0 },
                domain_bits: bits,
                root: keys.root(i),
                cws: (0..d.saturating_sub(1)).map(|l| keys.cw(i, l)).collect(),
                leaf_cws: keys.leaf_cws(i),
            };
            key.eval_full_into(o).expect("checked by the caller");
        }
        return;
    }
    let group = 1usize << (SUBTREE_LOG - d);
    SCRATCH.with_borrow_mut(|(a, b)| {
        // Reused across calls (grown, never shrunk): no zeroing on the hot path.
        let need = group.min(n) << d;
        if a.len() < need {
            a.resize(need, 0);
            b.resize(need, 0);
        }
        let (mut a, mut b) = (a, b);
        for (g, o) in out[..n * leaves].chunks_mut(group * leaves).enumerate() {
            let first = g * group;
            let count = o.len() / leaves;
            for (j, slot) in a[..count].iter_mut().enumerate() {
                *slot = keys.root(first + j);
            }
            let mut m = count;
            for level in 0..d - 1 {
                write_child_inputs(&a[..m], &mut b[..2 * m]);
                prg.encrypt_in_place(&mut b[..2 * m]);
                // Key j owns parents [j << level, (j + 1) << level): one correction word
                // per key, a tight loop per key.
                let per_key = 1usize << level;
                for (j, (ps, chs)) in
                    a[..m].chunks_exact(per_key).zip(b[..2 * m].chunks_exact_mut(2 * per_key)).enumerate()
                {
                    correct_level(ps, chs, keys.cw(first + j, level));
                }
                core::mem::swap(&mut a, &mut b);
                m *= 2;
            }
            let per_key = m / count;
            if let Some(blocks) = G::as_blocks(o) {
                // Leaves that are their corrected blocks: expand and correct in place.
                write_child_inputs(&a[..m], blocks);
                prg.encrypt_in_place(blocks);
                for (j, (ps, chs)) in a[..m].chunks_exact(per_key).zip(blocks.chunks_exact_mut(2 * per_key)).enumerate()
                {
                    correct_level(ps, chs, keys.leaf_cws(first + j).map(G::cw_block));
                }
            } else {
                write_child_inputs(&a[..m], &mut b[..2 * m]);
                prg.encrypt_in_place(&mut b[..2 * m]);
                for (j, ((ps, chs), o)) in a[..m]
                    .chunks_exact(per_key)
                    .zip(b[..2 * m].chunks_exact_mut(2 * per_key))
                    .zip(o.chunks_exact_mut(2 * per_key))
                    .enumerate()
                {
                    G::finish_leaves(ps, chs, keys.leaf_cws(first + j), negate, o);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests;
