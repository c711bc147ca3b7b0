//! The Boyle–Gilboa–Ishai tree distributed point function (BGI, CCS 2016).
//!
//! A DPF for the point function `f_{α,β}(x) = β·[x = α]` on the domain `{0,1}^n` is a
//! pair of keys such that each key alone reveals nothing of `α` or `β`, and for every
//! `x`, `Eval(k0, x) + Eval(k1, x) = f_{α,β}(x)` in the output group
//! ([`DpfGroup`]: GF(2) bits, Z_2^64, or a prime field).
//!
//! # Construction
//! A binary tree over `2^d` leaves, `d = n − LOG_OUTPUTS_PER_LEAF` (early termination:
//! one leaf is one 128-bit block of outputs). Each node carries a 127-bit seed and a
//! control bit `t`, stored together in a `u128` whose least significant bit is `t`. The
//! two parties' nodes agree off the path to `α` and differ on it, with `t0 ⊕ t1 = 1`
//! there. The first `c = d − f` levels are expanded by the length-doubling PRG of
//! [`crate::prg`], each with a correction word (a seed and two control bits). Every node
//! of level `c` then fans out to `F = 2^f` leaves in counter mode: leaf `j` of node `s`
//! is `Convert(H(seed(s) ⊕ j))`, corrected by leaf correction word `j` (one per fan-out
//! position, shared by all nodes of the level). A leaf's output share is
//! `(−1)^b · (Convert(H(seed ⊕ j)) + t · CW_j)`. `f = min(LOG_LEAF_FAN, d)`, per group
//! ([`DpfGroup::LOG_LEAF_FAN`]); with `f = 1` this is the plain BGI tree whose last
//! level's seed correction is folded into the two leaf corrections.
//!
//! The fan-out is standard BGI with a wider output group at a shallower tree: the last
//! `f` PRG levels (`2^(f+1) − 2` blocks per node, two AES calls per tree node) become
//! one counter-mode expansion (`2^f` blocks, one AES call per leaf), paid for with
//! `2^f − 2` more leaf correction words in each key. Each leaf input `seed ⊕ j` is
//! fresh (seeds are uniform 127-bit values), as the correlation-robust hash needs.
//!
//! # Key size
//! Root seed 128 bits, `c` correction words of 130 bits, `F` leaf correction words:
//! `128 + 130c + F·8·BYTES` bits of key material. For 1-bit outputs with `f = 1`
//! (`c = n − 8`) that is `130(n − 7) + 254` bits, two under the `130(n−7)+256` of
//! DESIGN §4 because the last level's seed correction is folded into the leaf words;
//! [`BitLeaf`] uses `f = 2` (`c = n − 9`, 4 leaf words): `130(n − 9) + 640` bits, 126
//! more. That buys a quarter of the full-domain AES calls at the DLP rules' n = 15
//! (382 blocks instead of 510). `f = 3` would save another sixth for 512 more bits a key,
//! which at n = 18 would take lookup-xor's total past the 4,000 bits per transition
//! promised against the seed (and measured no faster end to end: 0.60–0.74M against
//! 0.58–0.71M transitions/s on the DLP rules).
//! [`DpfKey::to_bytes`] adds a 4-byte header and packs the control bits: see
//! [`DpfKey::encoded_len`].
//!
//! # Cost
//! Key generation: `4c + 2F` AES blocks. Single-point evaluation: `c + 1` blocks.
//! Full-domain evaluation: `2^(c+1) − 2 + 2^d` blocks (for `f = 1`, `N/64` AES calls
//! for bit outputs and `N` for Z_2^64 outputs), expanded level by level in cache-sized
//! subtrees so that each AES call covers many blocks.

mod batch;
mod group;
pub mod table;

pub use batch::DpfKeyBatch;
pub use group::{BitLeaf, DpfGroup, RingLeaf};

use crate::Party;
use crate::arch::Kernels;
use crate::prg::{FixedKeyPrg, TWEAK_RIGHT};
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
const KEY_VERSION: u8 = 2;
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
    /// A point lies outside the `2^bits` domain. The point itself is not kept: a key's
    /// point is a secret (DESIGN §6: errors never print one).
    #[error("a point is outside the DPF domain of 2^{bits} points")]
    PointOutOfDomain {
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
    /// Leaf correction words: one per fan-out position (`F` of them).
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

/// Depth of the tree for `bits` domain bits: `2^depth` leaves.
#[inline]
fn depth<G: DpfGroup>(bits: u32) -> u32 {
    bits.saturating_sub(G::LOG_OUTPUTS_PER_LEAF)
}

/// Most leaves one node fans out to (bounds [`DpfGroup::LOG_LEAF_FAN`]): the largest
/// fan-out of any group, BitLeaf's 4. Each key's fan-out words travel as a
/// `[u128; MAX_FAN]` on the expansion's hot path; at 16 that array was copied by a
/// `memmove` call per key, 1.6 % of the DLP benchmark's CPU (perf).
const MAX_FAN: usize = 4;

/// The tree of a key over `bits` domain bits (module docs: `d`, `c`, `F`).
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// `d`: the tree has `2^d` leaves.
    depth: u32,
    /// `c`: levels expanded by the PRG, each with a correction word.
    internal: u32,
    /// `F`: leaves per node of level `c`, and leaf correction words per key.
    fan: usize,
}

#[inline]
fn shape<G: DpfGroup>(bits: u32) -> Shape {
    const { assert!(1 << G::LOG_LEAF_FAN <= MAX_FAN && G::LOG_LEAF_FAN >= 1) };
    let d = depth::<G>(bits);
    let f = G::LOG_LEAF_FAN.min(d);
    Shape { depth: d, internal: d - f, fan: 1 << f }
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

/// The fan-out's PRG inputs: `children[F·i + j] = seed(parents[i]) ⊕ j` for
/// `F = children.len() / parents.len()`. `F = 2` is the level kernel. Dispatched.
#[inline]
fn write_leaf_inputs(parents: &[u128], children: &mut [u128]) {
    if children.len() == 2 * parents.len() {
        return write_child_inputs(parents, children);
    }
    (Kernels::active().dpf_fan_inputs)(parents, children)
}

/// MMO feed-forward and correction of the fan-out, for groups whose leaf is its block:
/// `children[F·i + j] ^= seed(p_i) ⊕ j ⊕ (t(p_i) · cw[j])`, `F = cw.len()`, where
/// `children` holds the encrypted inputs. `F = 2` is the level kernel. Dispatched.
#[inline]
fn correct_leaves(parents: &[u128], children: &mut [u128], cw: &[u128]) {
    if let [l, r] = *cw {
        return correct_level(parents, children, [l, r]);
    }
    (Kernels::active().dpf_fan_correct)(parents, children, cw)
}

/// One level for a group of keys: the corrected children of `parents` (two each) into
/// `children`, key `j` owning parents `j·per_key ..` and correcting with `cw(j)`. With
/// VAES, per key in one fused pass ([`crate::arch::FusedDpf`]); otherwise one AES call
/// for the whole level, then the correction pass.
fn expand_level(
    prg: &FixedKeyPrg,
    parents: &[u128],
    children: &mut [u128],
    per_key: usize,
    cw: impl Fn(usize) -> [u128; 2],
) {
    if let Some(fused) = Kernels::active().fused_dpf() {
        if per_key >= FUSED_MIN_PARENTS {
            for (j, (ps, chs)) in parents.chunks_exact(per_key).zip(children.chunks_exact_mut(2 * per_key)).enumerate()
            {
                let w = cw(j);
                let done = (fused.level)(prg.round_keys(), ps, chs, w);
                if done < ps.len() {
                    let (ps, chs) = (&ps[done..], &mut chs[2 * done..]);
                    write_child_inputs(ps, chs);
                    prg.encrypt_in_place(chs);
                    correct_level(ps, chs, w);
                }
            }
            return;
        }
        // Small keys (a tree's first levels): the whole level in one fused call, each
        // parent corrected with its own key's words.
        let ws: Vec<[u128; 2]> = (0..parents.len() / per_key).map(&cw).collect();
        let done = (fused.level_keys)(prg.round_keys(), parents, children, &ws, per_key);
        if done == parents.len() {
            return;
        }
        let (rest, chs) = (&parents[done..], &mut children[2 * done..]);
        write_child_inputs(rest, chs);
        prg.encrypt_in_place(chs);
        for (i, (p, ch)) in rest.iter().zip(chs.chunks_exact_mut(2)).enumerate() {
            correct_level(core::slice::from_ref(p), ch, ws[(done + i) / per_key]);
        }
        return;
    }
    write_child_inputs(parents, children);
    prg.encrypt_in_place(children);
    for (j, (ps, chs)) in parents.chunks_exact(per_key).zip(children.chunks_exact_mut(2 * per_key)).enumerate() {
        correct_level(ps, chs, cw(j));
    }
}

/// The fan-out for a group of keys whose leaves are their blocks: `leaves[F·i + j]` from
/// `parents`, key `j` owning parents `j·per_key ..` with leaf words `cw(j)[..F]`. Fused
/// per key with VAES, as [`expand_level`]; there, `window(j)` may name the only parents
/// of key `j` whose leaves will be read (`(mask, live)`: parent `p` where `p ⊕ mask <
/// live`, see [`ReadWindow`]), and the others are skipped, their leaves left as they were.
fn fan_out_blocks(
    prg: &FixedKeyPrg,
    parents: &[u128],
    leaves: &mut [u128],
    per_key: usize,
    fan: usize,
    cw: impl Fn(usize) -> [u128; MAX_FAN],
    window: impl Fn(usize) -> Option<(usize, usize)>,
) {
    if let Some(fused) = Kernels::active().fused_dpf().filter(|_| per_key >= FAN_STEP) {
        for (j, (ps, ls)) in parents.chunks_exact(per_key).zip(leaves.chunks_exact_mut(fan * per_key)).enumerate() {
            let w = &cw(j)[..fan];
            let done = (fused.fan)(prg.round_keys(), ps, ls, w, window(j).unwrap_or((0, usize::MAX)));
            if done < ps.len() {
                let (ps, ls) = (&ps[done..], &mut ls[fan * done..]);
                write_leaf_inputs(ps, ls);
                prg.encrypt_in_place(ls);
                correct_leaves(ps, ls, w);
            }
        }
        return;
    }
    write_leaf_inputs(parents, leaves);
    prg.encrypt_in_place(leaves);
    for (j, (ps, ls)) in parents.chunks_exact(per_key).zip(leaves.chunks_exact_mut(fan * per_key)).enumerate() {
        correct_leaves(ps, ls, &cw(j)[..fan]);
    }
}

/// The part of every key's full-domain expansion a caller will read: output `y` of key
/// `i` only where `y ⊕ masks[i] < live`. Leaves that hold none of those outputs need not
/// be computed and may be left holding anything. The bit-sliced table read is such a
/// caller: it reads an expansion XOR-permuted by the opened index, against planes that
/// are zero past the rows of reachable states ([`crate::gf2::batch_read_outputs`]).
///
/// Only the fused fan-out honours it (whole kernel steps of fan-out nodes are skipped,
/// inside one kernel call per key: splitting the call per run of nodes cost more than it
/// saved). For the DLP step table (25,088 of 32,768 outputs read) that skips 12 of 64
/// nodes: `dpf_full_eval/bits_window_8x15` 2.98 against `bits_batch_8x15` 3.33 µs.
#[derive(Clone, Copy, Debug)]
pub struct ReadWindow<'a> {
    /// Per key, the mask its outputs are read under.
    pub masks: &'a [u64],
    /// Outputs `y` with `y ⊕ mask < live` are read.
    pub live: u64,
}

impl ReadWindow<'_> {
    /// Key `i`'s window over the `2^d / F` parents of its fan-out: `(mask, live)` in
    /// parents, each covering `F` leaves of `2^LOG_OUTPUTS_PER_LEAF` outputs.
    fn parents<G: DpfGroup>(&self, i: usize, fan: usize, parents: usize) -> (usize, usize) {
        let log = G::LOG_OUTPUTS_PER_LEAF + fan.trailing_zeros();
        // Whole steps of the fused kernel (at most FAN_STEP parents), which skips a step
        // only when all of it is outside.
        let live = (self.live.div_ceil(1 << log) as usize).next_multiple_of(FAN_STEP).min(parents);
        ((self.masks[i] >> log) as usize & (parents - 1), live)
    }
}

/// Leaf correction words as blocks (groups whose leaves are blocks), padded to
/// [`MAX_FAN`].
#[inline]
fn leaf_blocks<G: DpfGroup>(cws: &[G]) -> [u128; MAX_FAN] {
    let mut out = [0u128; MAX_FAN];
    for (o, c) in out.iter_mut().zip(cws) {
        *o = c.cw_block();
    }
    out
}

/// Parents per key below which the fan-out runs for all keys of a group at once (one
/// AES call) rather than fused per key: the fused kernel takes 4 parents per step at
/// fan-out 4, and a smaller key went through the unfused path alone, one AES call per
/// key (the DLP machine's symbol-class keys: one parent each).
const FAN_STEP: usize = 4;

/// Parents per key from which a level is fused key by key (one correction vector per
/// kernel step, the step being 8 parents); below it, the level of all keys of a group is
/// one fused call with a correction per pair of parents. Before, those first levels
/// (14 of the 126 level blocks of a key at n = 15) went through the `aes` crate and a
/// separate correction pass, about 4 % of the DLP benchmark's CPU (perf).
const FUSED_MIN_PARENTS: usize = 8;

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
        let mut keys = Self::keygen_batch_with_seeds(domain_bits, &[(alpha, beta)], &[seeds])?;
        Ok(keys.pop().expect("one point in, one key pair out"))
    }

    /// The deterministic twin of [`Dpf::keygen`]: the two root seeds are given (their
    /// least significant bits are ignored). For test vectors only: it exists in this
    /// crate's tests and behind the `test-vectors` feature.
    #[cfg(any(test, feature = "test-vectors"))]
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
                debug_assert!(flat.roots[i][0] & 1 == 0 && flat.roots[i][1] & 1 == 1);
                Party::BOTH.map(|party| DpfKey {
                    party,
                    domain_bits,
                    root: flat.roots[i][party.index()],
                    cws: flat.cws(i).to_vec(),
                    leaf_cws: flat.leaf_cws(i).to_vec(),
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
                write_key(party, domain_bits, flat.roots[i][party.index()], flat.cws(i), flat.leaf_cws(i), k);
            }
        }
        Ok(())
    }

    /// The trees of all points, level by level: roots, correction words, leaf words.
    fn keygen_flat(domain_bits: u32, points: &[(u64, G::Output)], seeds: &[[u128; 2]]) -> Result<Flat<G>, DpfError> {
        if !(1..=MAX_DOMAIN_BITS).contains(&domain_bits) {
            return Err(DpfError::DomainBits { bits: domain_bits });
        }
        if points.iter().any(|(a, _)| a >> domain_bits != 0) {
            return Err(DpfError::PointOutOfDomain { bits: domain_bits });
        }
        let prg = FixedKeyPrg::get();
        let Shape { depth: d, internal, fan } = shape::<G>(domain_bits);
        let leaf_bits = domain_bits - d;
        let k = points.len();
        // The leaf index of each point (d bits): its path, then its fan-out position.
        let leaf_of = |i: usize| points[i].0 >> leaf_bits;
        let mut nodes: Vec<[u128; 2]> = seeds.iter().map(|s| [s[0] & !1, (s[1] & !1) | 1]).collect();
        let roots = nodes.clone();
        let mut cws = vec![[0u128; 2]; k * internal as usize];
        let mut ch = vec![0u128; 4 * k];
        // Both parties' nodes, back to back, as the parents of one uncorrected level (the
        // fused kernels with zero corrections: the hashes `H(seed ⊕ c)`).
        let all = 2 * k;
        for level in 0..internal {
            // Per point [L0, R0, L1, R1].
            if all > 0 {
                expand_level(prg, nodes.as_flattened(), &mut ch, all, |_| [0, 0]);
            }
            for (i, (n, c)) in nodes.iter_mut().zip(ch.chunks_exact(4)).enumerate() {
                // Children [L0, R0, L1, R1]; the path goes right when `bit` is 1. Selected
                // with masks, not by indexing (an index into just-written stack arrays
                // stalled store forwarding on every point and level): the on-path child is
                // `l ⊕ ((l ⊕ r) & right)`, the off-path one that ⊕ `l ⊕ r`.
                let bit = ((leaf_of(i) >> (d - 1 - level)) & 1) as u128;
                let right = 0u128.wrapping_sub(bit);
                let (l0, r0, l1, r1) = (c[0], c[1], c[2], c[3]);
                let (x0, x1) = (l0 ^ r0, l1 ^ r1);
                let (on0, on1) = (l0 ^ (x0 & right), l1 ^ (x1 & right));
                let seed_cw = (on0 ^ on1 ^ x0 ^ x1) & !1;
                let t_l = ((l0 ^ l1) & 1) ^ bit ^ 1;
                let t_r = ((r0 ^ r1) & 1) ^ bit;
                let on_path = seed_cw | (t_l ^ ((t_l ^ t_r) & bit));
                *n = [on0 ^ (ctl_mask(n[0]) & on_path), on1 ^ (ctl_mask(n[1]) & on_path)];
                cws[i * internal as usize + level as usize] = [seed_cw | t_l, seed_cw | t_r];
            }
        }
        // The fan-out of both parties' on-path nodes: `fan` blocks each, point after point.
        let mut leaves = vec![0u128; 2 * fan * k];
        if all > 0 {
            fan_out_blocks(prg, nodes.as_flattened(), &mut leaves, all, fan, |_| [0; MAX_FAN], |_| None);
        }
        let mut leaf_cws = Vec::with_capacity(fan * k);
        for (i, l) in leaves.chunks_exact(2 * fan).enumerate() {
            let (at, t1) = ((leaf_of(i) & (fan as u64 - 1)) as usize, nodes[i][1] & 1 == 1);
            let unit = G::unit((points[i].0 & ((1u64 << leaf_bits) - 1)) as usize, points[i].1);
            for j in 0..fan {
                // CW = (−1)^{t1} · (β_j − A0 + A1), so that (A0 + t0·CW) − (A1 + t1·CW) = β_j.
                let beta_j = if j == at { unit } else { G::default() };
                let cw = beta_j.add(G::from_block(l[j]).neg()).add(G::from_block(l[fan + j]));
                leaf_cws.push(if t1 { cw.neg() } else { cw });
            }
        }
        Ok(Flat { roots, internal: internal as usize, fan, cws, leaf_cws })
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
        Self::leaves_for(self.domain_bits)
    }

    /// [`DpfKey::leaves`] of a key over `domain_bits`.
    pub fn leaves_for(domain_bits: u32) -> usize {
        1usize << depth::<G>(domain_bits)
    }

    /// Key material in bits, as documented in the module docs.
    pub fn material_bits(&self) -> usize {
        128 + 130 * self.cws.len() + 8 * G::BYTES * self.leaf_cws.len()
    }

    /// Length of [`DpfKey::to_bytes`] for a domain of `domain_bits` bits:
    /// `4 + 16 + 16c + ⌈c/4⌉ + F·BYTES` (module docs: `c`, `F`).
    pub fn encoded_len(domain_bits: u32) -> usize {
        let Shape { internal, fan, .. } = shape::<G>(domain_bits);
        let c = internal as usize;
        HEADER_BYTES + 16 + 16 * c + c.div_ceil(4) + fan * G::BYTES
    }

    /// This server's share of `f(x)`.
    pub fn eval(&self, x: u64) -> Result<G::Output, DpfError> {
        if x >> self.domain_bits != 0 {
            return Err(DpfError::PointOutOfDomain { bits: self.domain_bits });
        }
        let prg = FixedKeyPrg::get();
        let Shape { depth: d, internal, fan } = shape::<G>(self.domain_bits);
        let leaf_bits = self.domain_bits - d;
        let pos = (x & ((1u64 << leaf_bits) - 1)) as usize;
        let leaf_index = x >> leaf_bits;
        let mut node = self.root;
        for level in 0..internal {
            let bit = ((leaf_index >> (d - 1 - level)) & 1) as usize;
            let h = prg.hash((node & !1) ^ bit as u128);
            node = h ^ (ctl_mask(node) & self.cws[level as usize][bit]);
        }
        let j = (leaf_index & (fan as u64 - 1)) as usize;
        let a = G::from_block(prg.hash((node & !1) ^ j as u128));
        let leaf = a.add(self.leaf_cws[j].masked(0u64.wrapping_sub((node & 1) as u64)));
        let leaf = if self.party == Party::P1 { leaf.neg() } else { leaf };
        Ok(leaf.get(pos))
    }

    /// Full-domain evaluation into `out`, which must hold [`DpfKey::leaves`] leaves.
    ///
    /// # Performance
    /// `2^(c+1) − 2 + 2^d` AES blocks; the tree is expanded breadth-first within
    /// subtrees of 2^10 leaves so every level stays in cache and every AES call is wide.
    pub fn eval_full_into(&self, out: &mut [G]) -> Result<(), DpfError> {
        self.check_full_eval()?;
        if out.len() != self.leaves() {
            return Err(DpfError::BufferLength { got: out.len(), want: self.leaves() });
        }
        let prg = FixedKeyPrg::get();
        let Shape { depth: d, internal, fan } = shape::<G>(self.domain_bits);
        // Subtree roots sit at level `top`, above the fan-out (SUBTREE_LOG ≥ log2 F).
        let top = d.saturating_sub(SUBTREE_LOG).min(internal);
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
            for level in top..internal {
                self.expand_internal(prg, &a[..m], level, &mut b[..2 * m]);
                core::mem::swap(&mut a, &mut b);
                m *= 2;
            }
            self.expand_leaves(prg, &a[..m], &mut b[..m * fan], leaves);
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
        expand_many(&KeySlice(keys), keys.len(), bits, party == Party::P1, out, None);
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
    /// One key's level through [`expand_level`].
    #[inline]
    fn expand_internal(&self, prg: &FixedKeyPrg, parents: &[u128], level: u32, children: &mut [u128]) {
        expand_level(prg, parents, children, parents.len().max(1), |_| self.cws[level as usize]);
    }

    /// The fan-out: leaves `out[F·i + j]` from `parents`, with `scratch` of
    /// `F·parents.len()` blocks.
    #[inline]
    fn expand_leaves(&self, prg: &FixedKeyPrg, parents: &[u128], scratch: &mut [u128], out: &mut [G]) {
        if let Some(blocks) = G::as_blocks(out) {
            let fan = self.leaf_cws.len();
            let cw = leaf_blocks(&self.leaf_cws);
            return fan_out_blocks(prg, parents, blocks, parents.len().max(1), fan, |_| cw, |_| None);
        }
        write_leaf_inputs(parents, scratch);
        prg.encrypt_in_place(scratch);
        G::finish_leaves(parents, scratch, &self.leaf_cws, self.party == Party::P1, out);
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
        write_key(self.party, self.domain_bits, self.root, &self.cws, &self.leaf_cws, out);
    }

    /// Decodes [`DpfKey::to_bytes`], checking every field.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DpfError> {
        let (mut cws, mut leaf_cws) = (Vec::new(), Vec::new());
        let (party, domain_bits, root) = parse_key::<G>(bytes, &mut cws, &mut leaf_cws)?;
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
    fan: usize,
    cws: Vec<[u128; 2]>,
    leaf_cws: Vec<G>,
}

impl<G: DpfGroup> Flat<G> {
    fn cws(&self, i: usize) -> &[[u128; 2]] {
        &self.cws[i * self.internal..(i + 1) * self.internal]
    }

    fn leaf_cws(&self, i: usize) -> &[G] {
        &self.leaf_cws[i * self.fan..(i + 1) * self.fan]
    }
}

/// Writes one key's encoding ([`DpfKey::to_bytes`]) into `out`, exactly
/// [`DpfKey::encoded_len`] bytes; `leaf_cws` holds the `F` leaf correction words.
fn write_key<G: DpfGroup>(
    party: Party,
    domain_bits: u32,
    root: u128,
    cws: &[[u128; 2]],
    leaf_cws: &[G],
    out: &mut [u8],
) {
    assert_eq!(out.len(), DpfKey::<G>::encoded_len(domain_bits), "key buffer of the wrong size");
    assert_eq!(leaf_cws.len(), shape::<G>(domain_bits).fan, "leaf correction words for another fan-out");
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
    for (cw, o) in leaf_cws.iter().zip(out[at..].chunks_exact_mut(G::BYTES)) {
        cw.write(o);
    }
}

/// Decodes one key encoding ([`DpfKey::to_bytes`]), checking every field: returns
/// party, domain bits and root, and appends the internal correction words to `cws`
/// (left and right, control bits in the lsb) and the leaf corrections to `leaf_cws`.
/// On an error the vectors may have grown; callers discard them.
fn parse_key<G: DpfGroup>(
    bytes: &[u8],
    cws: &mut Vec<[u128; 2]>,
    leaf_cws: &mut Vec<G>,
) -> Result<(Party, u32, u128), DpfError> {
    let (party, bits) = parse_header::<G>(bytes)?;
    let root = parse_body(bytes, party, shape::<G>(bits), cws, leaf_cws)?;
    Ok((party, bits, root))
}

/// Checks a key encoding's header field by field and its length: returns party and
/// domain bits.
fn parse_header<G: DpfGroup>(bytes: &[u8]) -> Result<(Party, u32), DpfError> {
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
    Ok((party, bits))
}

/// Decodes what follows a checked header (`bytes` is the whole encoding, of the length
/// `shape` gives): returns the root and appends the correction words as
/// [`parse_key`] does.
fn parse_body<G: DpfGroup>(
    bytes: &[u8],
    party: Party,
    Shape { internal, fan, .. }: Shape,
    cws: &mut Vec<[u128; 2]>,
    leaf_cws: &mut Vec<G>,
) -> Result<u128, DpfError> {
    use DpfError::Malformed;
    let block = |at: usize| u128::from_le_bytes(bytes[at..at + 16].try_into().expect("16 bytes"));
    let root = block(HEADER_BYTES);
    if (root & 1) as usize != party.index() {
        return Err(Malformed("root control bit does not match the party"));
    }
    let internal = internal as usize;
    let mut at = HEADER_BYTES + 16;
    let packed = &bytes[at + 16 * internal..at + 16 * internal + internal.div_ceil(4)];
    if !internal.is_multiple_of(4) && packed[packed.len() - 1] >> (2 * (internal % 4)) != 0 {
        return Err(Malformed("padding bits of the control corrections are not zero"));
    }
    // The low bits of all seed corrections are checked at once, after the loop (a
    // branch per level is slower on the server's hot path).
    let mut low = 0u128;
    cws.reserve(internal);
    for i in 0..internal {
        let s = block(at + 16 * i);
        low |= s;
        let two = packed[i / 4] >> (2 * (i % 4));
        cws.push([s | u128::from(two & 1), s | u128::from((two >> 1) & 1)]);
    }
    if low & 1 != 0 {
        return Err(Malformed("seed correction word has its low bit set"));
    }
    at += 16 * internal + internal.div_ceil(4);
    leaf_cws.reserve(fan);
    for c in bytes[at..].chunks_exact(G::BYTES) {
        leaf_cws.push(G::read(c).ok_or(Malformed("leaf correction word is not canonical"))?);
    }
    Ok(root)
}

/// What the grouped expansion needs of each key: its root and correction words.
trait KeyAccess<G: DpfGroup> {
    fn root(&self, i: usize) -> u128;
    fn cw(&self, i: usize, level: u32) -> [u128; 2];
    fn leaf_cws(&self, i: usize) -> &[G];
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
    fn leaf_cws(&self, i: usize) -> &[G] {
        &self.0[i].leaf_cws
    }
}

/// Full-domain evaluation of `n` keys (same party, same domain of `bits`) into `out`,
/// key after key.
///
/// # Performance
/// Small trees (depth below [`SUBTREE_LOG`]) are expanded together, level by level, in
/// groups that fill one 2^10-block working set: one AES call per level for the whole
/// group. Larger trees go key by key through [`DpfKey::eval_full_into`].
fn expand_many<G: DpfGroup>(
    keys: &impl KeyAccess<G>,
    n: usize,
    bits: u32,
    negate: bool,
    out: &mut [G],
    window: Option<ReadWindow<'_>>,
) {
    let Shape { depth: d, internal, fan } = shape::<G>(bits);
    let leaves = 1usize << d;
    let prg = FixedKeyPrg::get();
    if d >= SUBTREE_LOG {
        for (i, o) in out.chunks_exact_mut(leaves).enumerate().take(n) {
            let key = DpfKey {
                party: if negate { Party::P1 } else { Party::P0 },
                domain_bits: bits,
                root: keys.root(i),
                cws: (0..internal).map(|l| keys.cw(i, l)).collect(),
                leaf_cws: keys.leaf_cws(i).to_vec(),
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
            for level in 0..internal {
                // Key j owns parents [j << level, (j + 1) << level).
                expand_level(prg, &a[..m], &mut b[..2 * m], 1 << level, |j| keys.cw(first + j, level));
                core::mem::swap(&mut a, &mut b);
                m *= 2;
            }
            let per_key = m / count;
            if let Some(blocks) = G::as_blocks(o) {
                // Leaves that are their corrected blocks: fan out and correct in place.
                let w = |j: usize| window.map(|w| w.parents::<G>(first + j, fan, per_key));
                fan_out_blocks(prg, &a[..m], blocks, per_key, fan, |j| leaf_blocks(keys.leaf_cws(first + j)), w);
            } else {
                write_leaf_inputs(&a[..m], &mut b[..m * fan]);
                prg.encrypt_in_place(&mut b[..m * fan]);
                for (j, ((ps, chs), o)) in a[..m]
                    .chunks_exact(per_key)
                    .zip(b[..m * fan].chunks_exact_mut(fan * per_key))
                    .zip(o.chunks_exact_mut(fan * per_key))
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
