//! x86-64 backends: AVX2 and AVX-512.
//!
//! The element-wise kernels are the portable bodies compiled under `#[target_feature]`
//! (LLVM vectorises them: `vpmullq` for the 64-bit products under AVX-512DQ). The
//! XOR-permuted parity is written with intrinsics: a lane permute (`vpermq`/`vpermd`)
//! for the low bits of the word index, six delta swaps for the in-word bit permutation,
//! then an AND/XOR reduction against each bit-plane.

use super::portable::{self, fold_parities, stage_masks};
use super::{Backend, Kernels};
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
};

static AVX512_TABLE: Kernels = Kernels {
    backend: Backend::Avx512,
    add: avx512_fns::add,
    sub: avx512_fns::sub,
    scale: avx512_fns::scale,
    mul: avx512_fns::mul,
    dot: dot_avx512,
    xor: avx512_fns::xor,
    and_popcount: avx512_fns::and_popcount,
    permuted_parities: permuted_parities_avx512,
};

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

/// Words handled per pass: the permuted words are staged in a 1 KiB stack buffer that
/// stays in L1 while every bit-plane is reduced against it (small, because it is
/// zero-initialised on every call).
const CHUNK: usize = 128;

fn permuted_parities_avx512(t: &[u64], u: usize, planes: &[u64], ks: usize) -> u64 {
    if t.len() < 8 {
        return portable::permuted_parities(t, u, planes, ks);
    }
    // SAFETY: reachable only through AVX512_TABLE, handed out only by an `Avx512` token,
    // which exists only after run-time detection of avx512f and avx512dq.
    unsafe { permuted_parities_avx512_inner(t, u, planes, ks) }
}

#[target_feature(enable = "avx512f,avx512dq")]
fn permuted_parities_avx512_inner(t: &[u64], u: usize, planes: &[u64], ks: usize) -> u64 {
    let w = t.len();
    assert!(w.is_power_of_two() && u < 64 * w && planes.len() == ks * w && ks <= 64);
    let uh = u >> 6;
    let (block_xor, lane_xor) = (uh >> 3, (uh & 7) as i64);
    let idx = _mm512_set_epi64(
        7 ^ lane_xor,
        6 ^ lane_xor,
        5 ^ lane_xor,
        4 ^ lane_xor,
        3 ^ lane_xor,
        2 ^ lane_xor,
        1 ^ lane_xor,
        lane_xor,
    );
    let m = stage_masks((u & 63) as u32).map(|m| _mm512_set1_epi64(m as i64));
    let mut acc = [0u64; 64];
    let mut buf = [0u64; CHUNK];
    for c in (0..w).step_by(CHUNK) {
        let len = CHUNK.min(w - c);
        for q in (0..len).step_by(8) {
            let src = &t[(((c + q) >> 3) ^ block_xor) * 8..][..8];
            // SAFETY: `src` holds exactly 8 u64 (64 bytes); unaligned load.
            let v = unsafe { _mm512_loadu_si512(src.as_ptr().cast()) };
            let mut x = _mm512_permutexvar_epi64(idx, v);
            x = swap512::<1>(x, m[0]);
            x = swap512::<2>(x, m[1]);
            x = swap512::<4>(x, m[2]);
            x = swap512::<8>(x, m[3]);
            x = swap512::<16>(x, m[4]);
            x = swap512::<32>(x, m[5]);
            let dst = &mut buf[q..q + 8];
            // SAFETY: `dst` holds exactly 8 u64 (64 bytes); unaligned store.
            unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), x) };
        }
        for (k, a) in acc[..ks].iter_mut().enumerate() {
            *a ^= portable::and_xor_reduce_body(&buf[..len], &planes[k * w + c..][..len]);
        }
    }
    fold_parities(&acc[..ks])
}

/// One delta swap: exchanges the bits selected by `m` with those `S` places above.
#[inline]
#[target_feature(enable = "avx512f")]
fn swap512<const S: u32>(x: __m512i, m: __m512i) -> __m512i {
    let d = _mm512_and_si512(_mm512_xor_si512(_mm512_srli_epi64::<S>(x), x), m);
    _mm512_xor_si512(x, _mm512_xor_si512(d, _mm512_slli_epi64::<S>(d)))
}

fn permuted_parities_avx2(t: &[u64], u: usize, planes: &[u64], ks: usize) -> u64 {
    if t.len() < 4 {
        return portable::permuted_parities(t, u, planes, ks);
    }
    // SAFETY: reachable only through AVX2_TABLE, handed out only by an `Avx2` token,
    // which exists only after run-time detection of avx2.
    unsafe { permuted_parities_avx2_inner(t, u, planes, ks) }
}

#[target_feature(enable = "avx2")]
fn permuted_parities_avx2_inner(t: &[u64], u: usize, planes: &[u64], ks: usize) -> u64 {
    let w = t.len();
    assert!(w.is_power_of_two() && u < 64 * w && planes.len() == ks * w && ks <= 64);
    let uh = u >> 6;
    let (block_xor, lane_xor) = (uh >> 2, (uh & 3) as i32);
    let l = |r: i32| r ^ lane_xor;
    let idx = _mm256_setr_epi32(
        2 * l(0),
        2 * l(0) + 1,
        2 * l(1),
        2 * l(1) + 1,
        2 * l(2),
        2 * l(2) + 1,
        2 * l(3),
        2 * l(3) + 1,
    );
    let m = stage_masks((u & 63) as u32).map(|m| _mm256_set1_epi64x(m as i64));
    let mut acc = [0u64; 64];
    let mut buf = [0u64; CHUNK];
    for c in (0..w).step_by(CHUNK) {
        let len = CHUNK.min(w - c);
        for q in (0..len).step_by(4) {
            let src = &t[(((c + q) >> 2) ^ block_xor) * 4..][..4];
            // SAFETY: `src` holds exactly 4 u64 (32 bytes); unaligned load.
            let v = unsafe { _mm256_loadu_si256(src.as_ptr().cast()) };
            let mut x = _mm256_permutevar8x32_epi32(v, idx);
            x = swap256::<1>(x, m[0]);
            x = swap256::<2>(x, m[1]);
            x = swap256::<4>(x, m[2]);
            x = swap256::<8>(x, m[3]);
            x = swap256::<16>(x, m[4]);
            x = swap256::<32>(x, m[5]);
            let dst = &mut buf[q..q + 4];
            // SAFETY: `dst` holds exactly 4 u64 (32 bytes); unaligned store.
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), x) };
        }
        for (k, a) in acc[..ks].iter_mut().enumerate() {
            *a ^= portable::and_xor_reduce_body(&buf[..len], &planes[k * w + c..][..len]);
        }
    }
    fold_parities(&acc[..ks])
}

#[inline]
#[target_feature(enable = "avx2")]
fn swap256<const S: i32>(x: __m256i, m: __m256i) -> __m256i {
    let d = _mm256_and_si256(_mm256_xor_si256(_mm256_srli_epi64::<S>(x), x), m);
    _mm256_xor_si256(x, _mm256_xor_si256(d, _mm256_slli_epi64::<S>(d)))
}
