//! x86-64 backends: AVX2 and AVX-512.
//!
//! The element-wise kernels are the portable bodies compiled under `#[target_feature]`
//! (LLVM vectorises them: `vpmullq` for the 64-bit products under AVX-512DQ). The
//! XOR-permuted parity is written with intrinsics: a lane permute (`vpermq`/`vpermd`)
//! for the low bits of the word index, then the in-word bit permutation (six delta
//! swaps on AVX-512; a byte shuffle and two nibble-table lookups on AVX2 and GFNI's
//! byte shuffle and affine transform), then an AND/XOR reduction against each bit-plane.

use super::portable::{self, stage_masks};
use super::{Backend, FusedDpf, Kernels};
use crate::prg::RoundKeys;
use core::arch::x86_64::*;

/// Proof that this CPU has AVX2; only [`Avx2::new`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    pub(crate) fn new() -> Option<Self> {
        is_x86_feature_detected!("avx2").then_some(Avx2(()))
    }

    pub(crate) fn table(self) -> &'static Kernels {
        &AVX2_TABLE
    }
}

/// Proof that this CPU has AVX-512 F and DQ; only [`Avx512::new`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx512 {
    pub(crate) fn new() -> Option<Self> {
        (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq")).then_some(Avx512(()))
    }

    pub(crate) fn table(self) -> &'static Kernels {
        &AVX512_TABLE
    }
}

/// Proof that this CPU has AVX-512 F/DQ/BW and GFNI; only [`Avx512Gfni::new`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512Gfni(());

impl Avx512Gfni {
    pub(crate) fn new() -> Option<Self> {
        (Avx512::new().is_some() && is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("gfni"))
            .then_some(Avx512Gfni(()))
    }

    pub(crate) fn table(self) -> &'static Kernels {
        &AVX512_GFNI_TABLE
    }
}

/// Safe entry points for one backend: each wraps a `#[target_feature]` twin of a
/// portable body. The wrappers are private and reachable only through the backend's
/// table, which only its token hands out.
macro_rules! backend {
    ($module:ident, $features:literal, $token:literal,
     $($name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $body:ident;)*) => {
        mod $module {
            use super::portable;
            $(
                pub(super) fn $name($($arg: $ty),*) $(-> $ret)? {
                    #[target_feature(enable = $features)]
                    fn inner($($arg: $ty),*) $(-> $ret)? { portable::$body($($arg),*) }
                    // SAFETY: this wrapper is reachable only through the table that the
                    // token type named in `$token` returns, and a token exists only after
                    // `is_x86_feature_detected!` confirmed every feature in `$features`.
                    unsafe { inner($($arg),*) }
                }
            )*
        }
    };
}

macro_rules! both_backends {
    ($($fns:tt)*) => {
        backend!(avx2_fns, "avx2", "Avx2", $($fns)*);
        backend!(avx512_fns, "avx512f,avx512dq", "Avx512", $($fns)*);
    };
}

both_backends! {
    add(a: &mut [u64], b: &[u64]) = add_body;
    sub(a: &mut [u64], b: &[u64]) = sub_body;
    scale(a: &mut [u64], c: u64) = scale_body;
    mul(a: &mut [u64], b: &[u64]) = mul_body;
    xor(a: &mut [u64], b: &[u64]) = xor_body;
    and_popcount(a: &[u64], b: &[u64]) -> u64 = and_popcount_body;
}

backend!(avx2_fan, "avx2", "Avx2",
    fan_inputs(parents: &[u128], children: &mut [u128]) = dpf_fan_inputs_body;
    fan_correct(parents: &[u128], children: &mut [u128], cw: &[u128]) = dpf_fan_correct_body;
);

// AVX2 has no 64-bit multiply; LLVM emulates it with `vpmuludq`. AVX-512 has its own.
backend!(avx2_dot, "avx2", "Avx2", dot(a: &[u64], b: &[u64]) -> u64 = dot_body;);

static AVX2_TABLE: Kernels = Kernels {
    backend: Backend::Avx2,
    add: avx2_fns::add,
    sub: avx2_fns::sub,
    scale: avx2_fns::scale,
    mul: avx2_fns::mul,
    dot: avx2_dot::dot,
    xor: avx2_fns::xor,
    and_popcount: avx2_fns::and_popcount,
    permuted_parities: permuted_parities_avx2,
    permuted_parities_batch: permuted_parities_batch_avx2,
    dpf_child_inputs: portable::dpf_child_inputs_body,
    dpf_correct: portable::dpf_correct_body,
    dpf_fan_inputs: avx2_fan::fan_inputs,
    dpf_fan_correct: avx2_fan::fan_correct,
    dpf_fused: None,
};

static AVX512_TABLE: Kernels = avx512_table(Backend::Avx512, permuted_parities_avx512, permuted_parities_batch_avx512);

/// The AVX-512 kernels; the two AVX-512 backends differ only in how the parity kernels
/// permute bits.
const fn avx512_table(
    backend: Backend,
    single: fn(&[u64], usize, &[u64], usize) -> u64,
    batch: super::BatchParities,
) -> Kernels {
    Kernels {
        backend,
        add: avx512_fns::add,
        sub: avx512_fns::sub,
        scale: avx512_fns::scale,
        mul: avx512_fns::mul,
        dot: dot_avx512,
        xor: avx512_fns::xor,
        and_popcount: avx512_fns::and_popcount,
        permuted_parities: single,
        permuted_parities_batch: batch,
        dpf_child_inputs: dpf_child_inputs_avx512,
        dpf_correct: dpf_correct_avx512,
        dpf_fan_inputs: dpf_fan_inputs_avx512,
        dpf_fan_correct: dpf_fan_correct_avx512,
        dpf_fused: Some(&FUSED_DPF),
    }
}

fn dot_avx512(a: &[u64], b: &[u64]) -> u64 {
    // SAFETY: reachable only through AVX512_TABLE, handed out only by an `Avx512` token,
    // which exists only after run-time detection of avx512f and avx512dq.
    unsafe { dot_avx512_inner(a, b) }
}

/// Four independent `vpmullq`/`vpaddq` chains over 32 lanes per iteration.
#[target_feature(enable = "avx512f,avx512dq")]
fn dot_avx512_inner(a: &[u64], b: &[u64]) -> u64 {
    let n = a.len().min(b.len());
    let (mut ca, mut cb) = (a[..n].chunks_exact(32), b[..n].chunks_exact(32));
    let mut acc = [_mm512_setzero_si512(); 4];
    for (x, y) in (&mut ca).zip(&mut cb) {
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `x` and `y` hold 32 u64; lanes 8i..8i+8 are in bounds (i < 4).
            let (vx, vy) = unsafe {
                (_mm512_loadu_si512(x.as_ptr().add(8 * i).cast()), _mm512_loadu_si512(y.as_ptr().add(8 * i).cast()))
            };
            *acc = _mm512_add_epi64(*acc, _mm512_mullo_epi64(vx, vy));
        }
    }
    let sum = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
    let head = _mm512_reduce_add_epi64(sum) as u64;
    head.wrapping_add(portable::dot_body(ca.remainder(), cb.remainder()))
}

/// AVX-512 with GFNI: the same kernels, with the in-word bit permutation done by one
/// byte shuffle and one GF(2) affine transform per 8 words.
static AVX512_GFNI_TABLE: Kernels =
    avx512_table(Backend::Avx512Gfni, permuted_parities_gfni, permuted_parities_batch_gfni);

fn dpf_child_inputs_avx512(parents: &[u128], children: &mut [u128]) {
    // SAFETY: reachable only through the AVX-512 tables, handed out only by tokens that
    // exist after run-time detection of avx512f (and more).
    unsafe { dpf_level_avx512::<false>(parents, children, [0, 0]) }
}

fn dpf_correct_avx512(parents: &[u128], children: &mut [u128], cw: [u128; 2]) {
    // SAFETY: as for `dpf_child_inputs_avx512`.
    unsafe { dpf_level_avx512::<true>(parents, children, cw) }
}

/// Two parents (four children, one 512-bit vector) per step. Lane layout of a child
/// vector: `[L0.lo, L0.hi, R0.lo, R0.hi, L1.lo, L1.hi, R1.lo, R1.hi]`.
/// `CORRECT = false` writes the child inputs `seed ⊕ c`; `true` XORs `seed ⊕ c ⊕ t·cw`
/// into the encrypted inputs already in `children`.
#[target_feature(enable = "avx512f")]
fn dpf_level_avx512<const CORRECT: bool>(parents: &[u128], children: &mut [u128], cw: [u128; 2]) {
    let pairs = parents.len() / 2;
    let spread = _mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0);
    let tbits = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    let clear = _mm512_set_epi64(-1, !1, -1, !1, -1, !1, -1, !1);
    let tweak = blocks4([0, 1, 0, 1]);
    let one = _mm512_set1_epi64(1);
    let cwv = blocks4([cw[0], cw[1], cw[0], cw[1]]);
    for (p, ch) in parents.chunks_exact(2).zip(children.chunks_exact_mut(4)).take(pairs) {
        // SAFETY: `p` holds 2 u128 (32 bytes), `ch` holds 4 u128 (64 bytes); unaligned.
        let pv = _mm512_castsi256_si512(unsafe { _mm256_loadu_si256(p.as_ptr().cast()) });
        let seeds = _mm512_xor_si512(_mm512_and_si512(_mm512_permutexvar_epi64(spread, pv), clear), tweak);
        let out = if CORRECT {
            let t = _mm512_and_si512(_mm512_permutexvar_epi64(tbits, pv), one);
            let mask = _mm512_sub_epi64(_mm512_setzero_si512(), t);
            // SAFETY: see above.
            let enc = unsafe { _mm512_loadu_si512(ch.as_ptr().cast()) };
            // 0x96: a ⊕ b ⊕ c.
            _mm512_ternarylogic_epi64::<0x96>(enc, seeds, _mm512_and_si512(mask, cwv))
        } else {
            seeds
        };
        // SAFETY: see above.
        unsafe { _mm512_storeu_si512(ch.as_mut_ptr().cast(), out) };
    }
    let done = 2 * pairs;
    if CORRECT {
        portable::dpf_correct_body(&parents[done..], &mut children[2 * done..], cw);
    } else {
        portable::dpf_child_inputs_body(&parents[done..], &mut children[2 * done..]);
    }
}

fn dpf_fan_inputs_avx512(parents: &[u128], children: &mut [u128]) {
    // SAFETY: as for `dpf_child_inputs_avx512`.
    unsafe { dpf_fan_avx512::<false>(parents, children, &[]) }
}

fn dpf_fan_correct_avx512(parents: &[u128], children: &mut [u128], cw: &[u128]) {
    // SAFETY: as for `dpf_child_inputs_avx512`.
    unsafe { dpf_fan_avx512::<true>(parents, children, cw) }
}

/// The fan-out to `F` leaves per parent (`F` a multiple of 4 up to 16; others go to the
/// portable body), four leaves per 512-bit vector: the broadcast seed XOR the leaf
/// indices, and (`CORRECT`) XOR the encrypted inputs and the masked correction words.
#[target_feature(enable = "avx512f")]
fn dpf_fan_avx512<const CORRECT: bool>(parents: &[u128], children: &mut [u128], cw: &[u128]) {
    let fan = children.len() / parents.len().max(1);
    if fan == 0 || !fan.is_multiple_of(4) || fan > 16 || (CORRECT && cw.len() != fan) {
        return if CORRECT {
            portable::dpf_fan_correct_body(parents, children, cw)
        } else {
            portable::dpf_fan_inputs_body(parents, children)
        };
    }
    let quads = fan / 4;
    let (index, words) = fan_vectors(cw);
    for (p, ch) in parents.iter().zip(children.chunks_exact_mut(fan)) {
        let (seed, keep) = (broadcast_seed(*p), control_mask(*p));
        for (q, four) in ch.chunks_exact_mut(4).enumerate().take(quads) {
            let input = _mm512_xor_si512(seed, index[q]);
            let out = if CORRECT {
                // SAFETY: `four` holds exactly 4 u128 (64 bytes); unaligned load.
                let enc = unsafe { _mm512_loadu_si512(four.as_ptr().cast()) };
                // 0x96: a ⊕ b ⊕ c.
                _mm512_ternarylogic_epi64::<0x96>(enc, input, _mm512_and_si512(keep, words[q]))
            } else {
                input
            };
            // SAFETY: as above; unaligned store.
            unsafe { _mm512_storeu_si512(four.as_mut_ptr().cast(), out) };
        }
    }
}

/// Four blocks as one vector, block `k` in 128-bit lane `k`.
#[inline]
#[target_feature(enable = "avx512f")]
fn blocks4(b: [u128; 4]) -> __m512i {
    // SAFETY: `b` is 64 bytes; unaligned load.
    unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
}

/// The fan-out's per-position constants, four positions per vector (up to 16): the
/// leaf indices `j` and the correction words `cw[j]` (zero past `cw.len()`).
#[inline]
#[target_feature(enable = "avx512f")]
fn fan_vectors(cw: &[u128]) -> ([__m512i; 4], [__m512i; 4]) {
    let index = core::array::from_fn(|q| blocks4(core::array::from_fn(|k| (4 * q + k) as u128)));
    let words = core::array::from_fn(|q| blocks4(core::array::from_fn(|k| cw.get(4 * q + k).copied().unwrap_or(0))));
    (index, words)
}

/// The VAES kernels of the AVX-512 tables (used only where VAES is detected too).
static FUSED_DPF: FusedDpf = FusedDpf { level: fused_level, level_keys: fused_level_keys, fan: fused_fan };

fn fused_level(rk: &RoundKeys, parents: &[u128], children: &mut [u128], cw: [u128; 2]) -> usize {
    if !is_x86_feature_detected!("vaes") {
        return 0;
    }
    // SAFETY: reachable only through the AVX-512 tables (avx512f detected by their
    // tokens); vaes was detected just above.
    unsafe { fused_level_vaes(rk, parents, children, cw) }
}

fn fused_level_keys(
    rk: &RoundKeys,
    parents: &[u128],
    children: &mut [u128],
    cws: &[[u128; 2]],
    per_key: usize,
) -> usize {
    let covered = cws.len().saturating_mul(per_key) >= parents.len();
    if !is_x86_feature_detected!("vaes") || !per_key.is_power_of_two() || per_key >= 2 * AES_LANES || !covered {
        return 0;
    }
    // SAFETY: as for `fused_level`; `per_key` and `cws` are as the kernel requires.
    unsafe { fused_level_keys_vaes(rk, parents, children, cws, per_key) }
}

fn fused_fan(rk: &RoundKeys, parents: &[u128], children: &mut [u128], cw: &[u128], window: (usize, usize)) -> usize {
    if !is_x86_feature_detected!("vaes") {
        return 0;
    }
    // SAFETY: as for `fused_level`.
    unsafe { fused_fan_vaes(rk, parents, children, cw, window) }
}

/// Vectors (of four blocks) in flight per step: enough independent AES chains to cover
/// the `vaesenc` latency.
const AES_LANES: usize = 4;

/// Fixed-key AES-128 on `AES_LANES` vectors of four blocks each.
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn aes_lanes(rk: &[__m512i; 11], x: [__m512i; AES_LANES]) -> [__m512i; AES_LANES] {
    let mut x = x.map(|v| _mm512_xor_si512(v, rk[0]));
    for k in &rk[1..10] {
        x = x.map(|v| _mm512_aesenc_epi128(v, *k));
    }
    x.map(|v| _mm512_aesenclast_epi128(v, rk[10]))
}

/// The round keys, each broadcast to the four 128-bit lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn broadcast_keys(rk: &RoundKeys) -> [__m512i; 11] {
    rk.map(|k| _mm512_broadcast_i32x4(_mm_set_epi64x((k >> 64) as i64, k as i64)))
}

/// A block in all four lanes, its control bit cleared.
#[inline]
#[target_feature(enable = "avx512f")]
fn broadcast_seed(p: u128) -> __m512i {
    _mm512_broadcast_i32x4(_mm_set_epi64x((p >> 64) as i64, (p & !1) as i64))
}

/// All ones if the block's control bit is set, else zero.
#[inline]
#[target_feature(enable = "avx512f")]
fn control_mask(p: u128) -> __m512i {
    _mm512_set1_epi64(0i64.wrapping_sub((p & 1) as i64))
}

/// Eight parents (four vectors of two parents' two children) per step, all corrected
/// with `cw` (one key's parents).
#[target_feature(enable = "avx512f,vaes")]
fn fused_level_vaes(rk: &RoundKeys, parents: &[u128], children: &mut [u128], cw: [u128; 2]) -> usize {
    let cwv = blocks4([cw[0], cw[1], cw[0], cw[1]]);
    level_steps(rk, parents, children, |_| [cwv; AES_LANES])
}

/// [`fused_level_vaes`] over many keys' parents, parent `i` corrected with
/// `cws[i / per_key]` (the caller checks that `per_key` is a power of two below the
/// step and that `cws` covers every parent): one correction vector per pair of parents.
#[target_feature(enable = "avx512f,vaes")]
fn fused_level_keys_vaes(
    rk: &RoundKeys,
    parents: &[u128],
    children: &mut [u128],
    cws: &[[u128; 2]],
    per_key: usize,
) -> usize {
    let shift = per_key.trailing_zeros();
    level_steps(rk, parents, children, |first| {
        core::array::from_fn(|q| {
            let (a, b) = (cws[(first + 2 * q) >> shift], cws[(first + 2 * q + 1) >> shift]);
            blocks4([a[0], a[1], b[0], b[1]])
        })
    })
}

/// The level kernels' loop: steps of eight parents, `cwv(first)` giving the correction
/// vectors of the step starting at parent `first` (vector `q`: parents `first + 2q`
/// and `first + 2q + 1`).
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn level_steps(
    rk: &RoundKeys,
    parents: &[u128],
    children: &mut [u128],
    cwv: impl Fn(usize) -> [__m512i; AES_LANES],
) -> usize {
    const STEP: usize = 2 * AES_LANES;
    let done = (parents.len() / STEP * STEP).min(children.len() / 2 / STEP * STEP);
    let rk = broadcast_keys(rk);
    let tweak = blocks4([0, 1, 0, 1]);
    for (s, (p, ch)) in parents[..done].chunks_exact(STEP).zip(children.chunks_exact_mut(2 * STEP)).enumerate() {
        let cw = cwv(s * STEP);
        // Lanes of vector q: [seed(p_2q), seed(p_2q) ⊕ 1, seed(p_2q+1), seed(p_2q+1) ⊕ 1].
        let pair = |q: usize| {
            let (a, b) = (broadcast_seed(p[2 * q]), broadcast_seed(p[2 * q + 1]));
            _mm512_xor_si512(_mm512_mask_blend_epi64(0xf0, a, b), tweak)
        };
        let inputs: [__m512i; AES_LANES] = core::array::from_fn(pair);
        let enc = aes_lanes(&rk, inputs);
        for (q, (x, i)) in enc.iter().zip(&inputs).enumerate() {
            let keep = _mm512_mask_blend_epi64(0xf0, control_mask(p[2 * q]), control_mask(p[2 * q + 1]));
            // 0x96: a ⊕ b ⊕ c.
            let out = _mm512_ternarylogic_epi64::<0x96>(*x, *i, _mm512_and_si512(keep, cw[q]));
            // SAFETY: `ch` holds 2·STEP = 4·AES_LANES u128, so the 64 bytes at `4q` lie
            // inside it; unaligned store.
            unsafe { _mm512_storeu_si512(ch.as_mut_ptr().add(4 * q).cast(), out) };
        }
    }
    done
}

/// Four vectors per step: four parents at `F = 4`, two at 8, one at 16 (other fan-outs
/// are left to the caller).
#[target_feature(enable = "avx512f,vaes")]
fn fused_fan_vaes(
    rk: &RoundKeys,
    parents: &[u128],
    children: &mut [u128],
    cw: &[u128],
    window: (usize, usize),
) -> usize {
    let fan = cw.len();
    if !matches!(fan, 4 | 8 | 16) || children.len() < fan * parents.len() {
        return 0;
    }
    let per_parent = fan / 4;
    let step = AES_LANES / per_parent;
    let done = parents.len() / step * step;
    let rk = broadcast_keys(rk);
    let (index, words) = fan_vectors(cw);
    let (mask, live) = window;
    for (s, (ps, ch)) in parents[..done].chunks_exact(step).zip(children.chunks_exact_mut(step * fan)).enumerate() {
        // A step is aligned and `live` a multiple of it: the step is wholly in or out.
        if (s * step) ^ mask >= live {
            continue;
        }
        // Vector v holds leaves 4q .. 4q + 4 of parent v / per_parent, q = v % per_parent:
        // blocks 4v .. 4v + 4 of the step's children.
        let inputs: [__m512i; AES_LANES] =
            core::array::from_fn(|v| _mm512_xor_si512(broadcast_seed(ps[v / per_parent]), index[v % per_parent]));
        let enc = aes_lanes(&rk, inputs);
        for (v, (x, i)) in enc.iter().zip(&inputs).enumerate() {
            let keep = control_mask(ps[v / per_parent]);
            // 0x96: a ⊕ b ⊕ c.
            let out = _mm512_ternarylogic_epi64::<0x96>(*x, *i, _mm512_and_si512(keep, words[v % per_parent]));
            // SAFETY: `ch` holds step·F = 4·AES_LANES u128, so the 64 bytes at `4v` lie
            // inside it; unaligned store.
            unsafe { _mm512_storeu_si512(ch.as_mut_ptr().add(4 * v).cast(), out) };
        }
    }
    done
}

/// Words handled per pass: the permuted words are staged in a 1 KiB stack buffer that
/// stays in L1 while every bit-plane is reduced against it (small, because it is
/// zero-initialised on every call).
const CHUNK: usize = 128;

/// The per-instance constants of the XOR permutation by `u` on a `w`-word vector:
/// the block (8-word) XOR, the lane permutation and the six delta-swap masks.
#[derive(Clone, Copy)]
struct Perm512 {
    block_xor: usize,
    idx: __m512i,
    m: [__m512i; 6],
}

#[inline]
#[target_feature(enable = "avx512f")]
fn perm512(u: usize) -> Perm512 {
    let uh = u >> 6;
    let l = (uh & 7) as i64;
    Perm512 {
        block_xor: uh >> 3,
        idx: _mm512_set_epi64(7 ^ l, 6 ^ l, 5 ^ l, 4 ^ l, 3 ^ l, 2 ^ l, 1 ^ l, l),
        m: stage_masks((u & 63) as u32).map(|m| _mm512_set1_epi64(m as i64)),
    }
}

/// Block `b` (words `8b .. 8b + 8`) of the permuted vector `t'[j] = perm(t[j ⊕ uh])`.
#[inline]
#[target_feature(enable = "avx512f")]
fn permute_block512(t: &[u64], b: usize, p: &Perm512) -> __m512i {
    let src = &t[(b ^ p.block_xor) * 8..][..8];
    // SAFETY: `src` holds exactly 8 u64 (64 bytes); unaligned load.
    let v = unsafe { _mm512_loadu_si512(src.as_ptr().cast()) };
    let mut x = _mm512_permutexvar_epi64(p.idx, v);
    x = swap512::<1>(x, p.m[0]);
    x = swap512::<2>(x, p.m[1]);
    x = swap512::<4>(x, p.m[2]);
    x = swap512::<8>(x, p.m[3]);
    x = swap512::<16>(x, p.m[4]);
    swap512::<32>(x, p.m[5])
}

/// The GFNI form of [`Perm512`]: lane permutation, byte shuffle (bits 3–5 of `u`) and
/// the bit-permutation matrix within bytes (bits 0–2 of `u`).
#[derive(Clone, Copy)]
struct PermGfni {
    block_xor: usize,
    idx: __m512i,
    bytes: __m512i,
    matrix: __m512i,
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn perm_gfni(u: usize) -> PermGfni {
    let uh = u >> 6;
    let l = (uh & 7) as i64;
    let (h, w) = ((u >> 3) & 7, u & 7);
    // Output byte j of each 16-byte lane takes input byte (j & 8) | ((j & 7) ^ h).
    let ctrl: [u8; 64] = core::array::from_fn(|j| (((j & 8) | ((j & 7) ^ h)) & 15) as u8);
    // gf2p8affineqb: result bit i = parity(A.byte[7 − i] AND x); bit i takes bit i ^ w.
    let matrix = (0..8).fold(0u64, |a, i| a | ((1u64 << (i ^ w)) << (8 * (7 - i))));
    PermGfni {
        block_xor: uh >> 3,
        idx: _mm512_set_epi64(7 ^ l, 6 ^ l, 5 ^ l, 4 ^ l, 3 ^ l, 2 ^ l, 1 ^ l, l),
        // SAFETY: `ctrl` is 64 bytes; unaligned load.
        bytes: unsafe { _mm512_loadu_si512(ctrl.as_ptr().cast()) },
        matrix: _mm512_set1_epi64(matrix as i64),
    }
}

/// [`permute_block512`] with the byte shuffle and the affine bit permutation.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn permute_block_gfni(t: &[u64], b: usize, p: &PermGfni) -> __m512i {
    let src = &t[(b ^ p.block_xor) * 8..][..8];
    // SAFETY: `src` holds exactly 8 u64 (64 bytes); unaligned load.
    let v = unsafe { _mm512_loadu_si512(src.as_ptr().cast()) };
    let x = _mm512_permutexvar_epi64(p.idx, v);
    let x = _mm512_shuffle_epi8(x, p.bytes);
    _mm512_gf2p8affine_epi64_epi8::<0>(x, p.matrix)
}

/// The batched kernel for one way of permuting. Up to 16 planes it is the register
/// kernel (instances in pairs, accumulators in registers); beyond that, a chunk-major
/// walk over the table, so each chunk of every bit-plane (`ks · CHUNK` words) is read
/// once and stays in L1 while all the instances pass over it, with the accumulators in
/// memory (DESIGN §5: the batch's lookup as one blocked GF(2) product). The
/// single-instance kernel is a batch of one.
///
/// Measured (`cargo bench -p pmsm-bench --bench kernels -- gf2_permuted`, batches of
/// 16, this repository's 2-core AVX-512 machine, 2026-11-24): the pair kernel against
/// the chunk-major walk takes 5.9 against 12.2 µs at N = 2^15 with 10 planes (40 KiB),
/// 52 against 93 µs at 2^18 × 10, 331 against 594 µs at 2^20 × 12 and 2.5 against
/// 3.0 ms at 2^22 × 14 (7 MiB): it wins from L1 to L3, so the walk is kept only for
/// more planes than there are registers for.
macro_rules! batch_kernel {
    ($safe:ident, $single:ident, $inner:ident, $reg:ident, $features:literal, $token:literal, $make:ident, $permute:ident) => {
        fn $safe(ts: &[u64], us: &[usize], planes: &[u64], ks: usize, live: usize, out: &mut [u64]) {
            if ts.len() / us.len().max(1) < 8 {
                return portable::permuted_parities_batch(ts, us, planes, ks, live, out);
            }
            // SAFETY: reachable only through the table of the token type named in
            // `$token`, which exists only after run-time detection of `$features`.
            unsafe { $inner(ts, us, planes, ks, live, out) }
        }

        fn $single(t: &[u64], u: usize, planes: &[u64], ks: usize) -> u64 {
            let mut out = [0u64];
            $safe(t, &[u], planes, ks, t.len(), &mut out);
            out[0]
        }

        #[target_feature(enable = $features)]
        fn $inner(ts: &[u64], us: &[usize], planes: &[u64], ks: usize, live: usize, out: &mut [u64]) {
            let g = us.len();
            let w = ts.len() / g;
            assert!(w.is_power_of_two() && ts.len() == g * w && out.len() == g && planes.len() == ks * w && ks <= 64);
            assert!(us.iter().all(|&u| u < 64 * w) && live <= w);
            // Whole 8-word blocks: the planes are zero from `live` on, so rounding up is exact.
            let live = live.next_multiple_of(8).min(w);
            let perms: Vec<_> = us.iter().map(|&u| $make(u)).collect();
            if dispatch_ks!($reg, ks, (ts, w, live, &perms, planes, out)) {
                return;
            }
            let mut acc = vec![_mm512_setzero_si512(); g * ks];
            let mut buf = [0u64; CHUNK];
            for c in (0..live).step_by(CHUNK) {
                let len = CHUNK.min(live - c);
                for (i, p) in perms.iter().enumerate() {
                    let t = &ts[i * w..(i + 1) * w];
                    for (q, dst) in buf[..len].chunks_exact_mut(8).enumerate() {
                        // SAFETY: `dst` holds exactly 8 u64 (64 bytes); unaligned store.
                        unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), $permute(t, (c >> 3) + q, p)) };
                    }
                    for (k, a) in acc[i * ks..(i + 1) * ks].iter_mut().enumerate() {
                        *a = and_xor_accumulate512(*a, &buf[..len], &planes[k * w + c..][..len]);
                    }
                }
            }
            for (o, a) in out.iter_mut().zip(acc.chunks_exact(ks.max(1))) {
                *o = a[..ks]
                    .iter()
                    .enumerate()
                    .fold(0, |bits, (k, v)| bits | (u64::from(xor_lanes512(*v).count_ones() & 1) << k));
            }
        }
    };
}

/// Up to 16 planes: instances go in pairs; each permuted block of both meets every plane
/// while the `2 · KS` accumulators stay in registers (32 zmm: pairs fit, quads spill and
/// measured twice as slow at 10 planes), so each plane block is loaded once per pair.
/// Once the planes outgrow L1 they stream from L2 or L3 on every pass; pairs halve that
/// traffic.
macro_rules! register_kernel {
    ($name:ident, $pass:ident, $features:literal, $perm:ty, $permute:ident) => {
        #[target_feature(enable = $features)]
        fn $name<const KS: usize>(ts: &[u64], w: usize, live: usize, perms: &[$perm], planes: &[u64], out: &mut [u64]) {
            assert!(planes.len() == KS * w && w % 8 == 0 && ts.len() == perms.len() * w && out.len() == perms.len());
            let pairs = perms.len() / 2;
            for (q, (ps, os)) in perms.chunks_exact(2).zip(out.chunks_exact_mut(2)).enumerate() {
                $pass::<KS, 2>(&ts[2 * q * w..(2 * q + 2) * w], w, live, ps, planes, os);
            }
            if perms.len() % 2 == 1 {
                let i = 2 * pairs;
                $pass::<KS, 1>(&ts[i * w..], w, live, &perms[i..], planes, &mut out[i..]);
            }
        }

        /// `N` instances (`ts` holds their `N · w` words) in one pass over the first
        /// `live` words of the planes (a multiple of 8; the rest are zero).
        #[inline]
        #[target_feature(enable = $features)]
        fn $pass<const KS: usize, const N: usize>(
            ts: &[u64],
            w: usize,
            live: usize,
            perms: &[$perm],
            planes: &[u64],
            out: &mut [u64],
        ) {
            assert!(planes.len() == KS * w && ts.len() == N * w && perms.len() == N && out.len() == N && live <= w);
            let mut acc = [[_mm512_setzero_si512(); KS]; N];
            let base = planes.as_ptr();
            for b in 0..live / 8 {
                let x: [__m512i; N] = core::array::from_fn(|n| $permute(&ts[n * w..(n + 1) * w], b, &perms[n]));
                for k in 0..KS {
                    // SAFETY: `k < KS` and `b < live / 8 ≤ w / 8`, so the 8 words at
                    // `k·w + 8b` lie inside `planes` (`KS · w` words, asserted above).
                    let pk = unsafe { _mm512_loadu_si512(base.add(k * w + 8 * b).cast()) };
                    for n in 0..N {
                        // 0x78: a ⊕ (b ∧ c).
                        acc[n][k] = _mm512_ternarylogic_epi64::<0x78>(acc[n][k], x[n], pk);
                    }
                }
            }
            for (o, a) in out.iter_mut().zip(&acc) {
                *o = a
                    .iter()
                    .enumerate()
                    .fold(0, |bits, (k, v)| bits | (u64::from(xor_lanes512(*v).count_ones() & 1) << k));
            }
        }
    };
}

/// Calls `$f::<KS>(args…)` for `KS = $ks` in `1..=16`; `false` for other plane counts.
macro_rules! dispatch_ks {
    ($f:ident, $ks:expr, ($($arg:expr),*)) => {
        match $ks {
            1 => { $f::<1>($($arg),*); true }
            2 => { $f::<2>($($arg),*); true }
            3 => { $f::<3>($($arg),*); true }
            4 => { $f::<4>($($arg),*); true }
            5 => { $f::<5>($($arg),*); true }
            6 => { $f::<6>($($arg),*); true }
            7 => { $f::<7>($($arg),*); true }
            8 => { $f::<8>($($arg),*); true }
            9 => { $f::<9>($($arg),*); true }
            10 => { $f::<10>($($arg),*); true }
            11 => { $f::<11>($($arg),*); true }
            12 => { $f::<12>($($arg),*); true }
            13 => { $f::<13>($($arg),*); true }
            14 => { $f::<14>($($arg),*); true }
            15 => { $f::<15>($($arg),*); true }
            16 => { $f::<16>($($arg),*); true }
            _ => false,
        }
    };
}

register_kernel!(register_avx512, pass_avx512, "avx512f,avx512dq", Perm512, permute_block512);
register_kernel!(register_gfni, pass_gfni, "avx512f,avx512dq,avx512bw,gfni", PermGfni, permute_block_gfni);

batch_kernel!(
    permuted_parities_batch_avx512,
    permuted_parities_avx512,
    batch_avx512_inner,
    register_avx512,
    "avx512f,avx512dq",
    "Avx512",
    perm512,
    permute_block512
);
batch_kernel!(
    permuted_parities_batch_gfni,
    permuted_parities_gfni,
    batch_gfni_inner,
    register_gfni,
    "avx512f,avx512dq,avx512bw,gfni",
    "Avx512Gfni",
    perm_gfni,
    permute_block_gfni
);

/// `acc ⊕ (x AND y)` over 8-word blocks (`x.len()` a multiple of 8, `y` as long), one
/// `vpternlogq` per block, two independent chains.
#[inline]
#[target_feature(enable = "avx512f")]
fn and_xor_accumulate512(acc: __m512i, x: &[u64], y: &[u64]) -> __m512i {
    let mut acc = [acc, _mm512_setzero_si512()];
    for (j, (xb, yb)) in x.chunks_exact(8).zip(y.chunks_exact(8)).enumerate() {
        // SAFETY: `xb` and `yb` hold exactly 8 u64 (64 bytes); unaligned loads.
        let (vx, vy) = unsafe { (_mm512_loadu_si512(xb.as_ptr().cast()), _mm512_loadu_si512(yb.as_ptr().cast())) };
        // 0x78: a ⊕ (b ∧ c).
        acc[j & 1] = _mm512_ternarylogic_epi64::<0x78>(acc[j & 1], vx, vy);
    }
    _mm512_xor_si512(acc[0], acc[1])
}

/// XOR of the eight lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn xor_lanes512(v: __m512i) -> u64 {
    let mut lanes = [0u64; 8];
    // SAFETY: `lanes` is 64 bytes; unaligned store.
    unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), v) };
    lanes.iter().fold(0, |a, b| a ^ b)
}

/// One delta swap: exchanges the bits selected by `m` with those `S` places above.
#[inline]
#[target_feature(enable = "avx512f")]
fn swap512<const S: u32>(x: __m512i, m: __m512i) -> __m512i {
    let d = _mm512_and_si512(_mm512_xor_si512(_mm512_srli_epi64::<S>(x), x), m);
    _mm512_xor_si512(x, _mm512_xor_si512(d, _mm512_slli_epi64::<S>(d)))
}

/// The per-instance constants of the XOR permutation by `u` on AVX2, four words per
/// vector: the block (4-word) XOR, the lane permutation (`vpermd`), the byte shuffle
/// within each word (bits 3–5 of `u`, `vpshufb`) and the two nibble tables of the bit
/// permutation within each byte (bits 0–2 of `u`, `vpshufb` lookups). Three shuffles
/// replace the six delta swaps of the portable body (18 vector operations).
#[derive(Clone, Copy)]
struct Perm256 {
    block_xor: usize,
    idx: __m256i,
    bytes: __m256i,
    low: __m256i,
    high: __m256i,
}

#[inline]
#[target_feature(enable = "avx2")]
fn perm256(u: usize) -> Perm256 {
    let uh = u >> 6;
    let l = (uh & 3) as i32;
    let (h, v) = ((u >> 3) & 7, u & 7);
    // Output byte p of each 16-byte lane takes input byte (p & 8) | ((p & 7) ^ h).
    let ctrl: [u8; 32] = core::array::from_fn(|p| ((p & 8) | ((p & 7) ^ h)) as u8);
    // Nibble n at bit offset `at` of a byte: input bit b + at lands on output bit (b + at) ^ v.
    let spread = |n: usize, at: usize| (0..4).fold(0u8, |a, b| a | ((((n >> b) & 1) as u8) << ((b + at) ^ v)));
    let low: [u8; 32] = core::array::from_fn(|p| spread(p & 15, 0));
    let high: [u8; 32] = core::array::from_fn(|p| spread(p & 15, 4));
    let load = |b: &[u8; 32]| {
        // SAFETY: `b` is 32 bytes; unaligned load.
        unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
    };
    Perm256 {
        block_xor: uh >> 2,
        idx: _mm256_setr_epi32(
            2 * l,
            2 * l + 1,
            2 * (1 ^ l),
            2 * (1 ^ l) + 1,
            2 * (2 ^ l),
            2 * (2 ^ l) + 1,
            2 * (3 ^ l),
            2 * (3 ^ l) + 1,
        ),
        bytes: load(&ctrl),
        low: load(&low),
        high: load(&high),
    }
}

/// Block `b` (words `4b .. 4b + 4`) of the permuted vector `t'[j] = perm(t[j ⊕ uh])`.
#[inline]
#[target_feature(enable = "avx2")]
fn permute_block256(t: &[u64], b: usize, p: &Perm256) -> __m256i {
    let src = &t[(b ^ p.block_xor) * 4..][..4];
    // SAFETY: `src` holds exactly 4 u64 (32 bytes); unaligned load.
    let v = unsafe { _mm256_loadu_si256(src.as_ptr().cast()) };
    let x = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(v, p.idx), p.bytes);
    let nib = _mm256_set1_epi8(0x0f);
    let lo = _mm256_and_si256(x, nib);
    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), nib);
    _mm256_or_si256(_mm256_shuffle_epi8(p.low, lo), _mm256_shuffle_epi8(p.high, hi))
}

fn permuted_parities_avx2(t: &[u64], u: usize, planes: &[u64], ks: usize) -> u64 {
    let mut out = [0u64];
    permuted_parities_batch_avx2(t, &[u], planes, ks, t.len(), &mut out);
    out[0]
}

fn permuted_parities_batch_avx2(ts: &[u64], us: &[usize], planes: &[u64], ks: usize, live: usize, out: &mut [u64]) {
    if ts.len() / us.len().max(1) < 4 {
        return portable::permuted_parities_batch(ts, us, planes, ks, live, out);
    }
    // SAFETY: reachable only through AVX2_TABLE (directly or by `permuted_parities_avx2`,
    // also in it), handed out only by an `Avx2` token, which exists only after run-time
    // detection of avx2.
    unsafe { batch_avx2_inner(ts, us, planes, ks, live, out) }
}

/// The AVX2 batch: one instance per vector (four of its words), the planes taken in
/// groups of up to 16 (accumulators for one group are `KS` ymm registers), and the
/// table walked chunk-major so each chunk of a group's planes (`KS · CHUNK` words,
/// at most 16 KiB) stays in L1 while every instance passes over it.
#[target_feature(enable = "avx2")]
fn batch_avx2_inner(ts: &[u64], us: &[usize], planes: &[u64], ks: usize, live: usize, out: &mut [u64]) {
    let g = us.len();
    let w = ts.len() / g;
    assert!(w.is_power_of_two() && w >= 4 && ts.len() == g * w && out.len() == g && planes.len() == ks * w && ks <= 64);
    assert!(us.iter().all(|&u| u < 64 * w) && live <= w);
    // Whole 4-word blocks: the planes are zero from `live` on, so rounding up is exact.
    let live = live.next_multiple_of(4).min(w);
    let perms: Vec<Perm256> = us.iter().map(|&u| perm256(u)).collect();
    out.fill(0);
    for k0 in (0..ks).step_by(16) {
        let kk = (ks - k0).min(16);
        let group = &planes[k0 * w..(k0 + kk) * w];
        let done = dispatch_ks!(chunked_avx2, kk, (ts, w, live, &perms, group, k0, out));
        debug_assert!(done);
    }
}

/// ORs into `out[i]` instance `i`'s parities against the `KS` planes of `planes`, from
/// bit `shift` on.
#[target_feature(enable = "avx2")]
fn chunked_avx2<const KS: usize>(
    ts: &[u64],
    w: usize,
    live: usize,
    perms: &[Perm256],
    planes: &[u64],
    shift: usize,
    out: &mut [u64],
) {
    assert!(
        planes.len() == KS * w
            && w.is_multiple_of(4)
            && live <= w
            && ts.len() == perms.len() * w
            && out.len() == perms.len()
    );
    let mut acc = vec![[_mm256_setzero_si256(); KS]; perms.len()];
    for c in (0..live).step_by(CHUNK) {
        let end = (c + CHUNK).min(live);
        for (i, (p, a)) in perms.iter().zip(acc.iter_mut()).enumerate() {
            pass_avx2::<KS>(&ts[i * w..(i + 1) * w], w, (c / 4, end / 4), p, planes, a);
        }
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        *o |= a
            .iter()
            .enumerate()
            .fold(0, |bits, (k, v)| bits | (u64::from(xor_lanes256(*v).count_ones() & 1) << (shift + k)));
    }
}

/// Blocks `from .. to` of one instance (`t`, `w` words) against `KS` planes, into `acc`.
#[inline]
#[target_feature(enable = "avx2")]
fn pass_avx2<const KS: usize>(
    t: &[u64],
    w: usize,
    (from, to): (usize, usize),
    p: &Perm256,
    planes: &[u64],
    acc: &mut [__m256i; KS],
) {
    assert!(planes.len() == KS * w && t.len() == w && from <= to && to <= w / 4);
    let mut a = *acc;
    let base = planes.as_ptr();
    for b in from..to {
        let x = permute_block256(t, b, p);
        for (k, a) in a.iter_mut().enumerate() {
            // SAFETY: `k < KS` and `b < to ≤ w / 4`, so the 4 words at `k·w + 4b` lie
            // inside `planes` (`KS · w` words, asserted above).
            let pk = unsafe { _mm256_loadu_si256(base.add(k * w + 4 * b).cast()) };
            *a = _mm256_xor_si256(*a, _mm256_and_si256(x, pk));
        }
    }
    *acc = a;
}

/// XOR of the four lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn xor_lanes256(v: __m256i) -> u64 {
    let mut lanes = [0u64; 4];
    // SAFETY: `lanes` is 32 bytes; unaligned store.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
    lanes.iter().fold(0, |a, b| a ^ b)
}
