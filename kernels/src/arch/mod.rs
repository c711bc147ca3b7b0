//! Run-time SIMD dispatch: the only module of pmsm that holds `unsafe` code.
//!
//! The pattern is memchr's. Each backend is a table of safe function pointers
//! ([`Kernels`]); a SIMD table can be obtained only through a token whose constructor
//! checks the CPU (`Avx2::new()` / `Avx512::new()` return `None` when the features are
//! missing), so holding the table proves its `#[target_feature]` functions may run.
//! [`Kernels::active`] picks the best table once, caches it, and every public kernel in
//! [`crate::ring`] and [`crate::gf2`] goes through it.
//!
//! The portable table is the specification: `tests` at the bottom of this file compare
//! every available backend with it on random data of awkward lengths.
//!
//! Set `PMSM_BACKEND=portable|avx2|avx512|avx512-gfni` to force a backend (for measurements); a
//! backend the CPU lacks is ignored with a warning on stderr.

pub(crate) mod portable;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use std::sync::OnceLock;

/// A family of kernel implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Plain Rust; the reference every other backend is tested against.
    Portable,
    /// x86-64 AVX2 (256-bit lanes).
    Avx2,
    /// x86-64 AVX-512 F/DQ (512-bit lanes).
    Avx512,
    /// AVX-512 F/DQ/BW with GFNI: in-word bit permutations by byte shuffle and
    /// GF(2) affine transform.
    Avx512Gfni,
}

impl Backend {
    /// Lower-case name, as accepted by `PMSM_BACKEND`.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Avx512Gfni => "avx512-gfni",
        }
    }

    /// The kernel table of this backend, if this CPU supports it.
    pub fn kernels(self) -> Option<&'static Kernels> {
        match self {
            Backend::Portable => Some(&portable::TABLE),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => x86_64::Avx2::new().map(x86_64::Avx2::table),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => x86_64::Avx512::new().map(x86_64::Avx512::table),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Gfni => x86_64::Avx512Gfni::new().map(x86_64::Avx512Gfni::table),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `(ts, us, planes, ks, live, out)`: see [`crate::gf2::permuted_parities_batch`].
pub(crate) type BatchParities = fn(&[u64], &[usize], &[u64], usize, usize, &mut [u64]);

/// One backend's kernels. Every entry is safe to call; see the functions of
/// [`crate::ring`] and [`crate::gf2`] for contracts (they call the active table).
#[derive(Debug)]
pub struct Kernels {
    pub(crate) backend: Backend,
    pub(crate) add: fn(&mut [u64], &[u64]),
    pub(crate) sub: fn(&mut [u64], &[u64]),
    pub(crate) scale: fn(&mut [u64], u64),
    pub(crate) mul: fn(&mut [u64], &[u64]),
    pub(crate) dot: fn(&[u64], &[u64]) -> u64,
    pub(crate) xor: fn(&mut [u64], &[u64]),
    pub(crate) and_popcount: fn(&[u64], &[u64]) -> u64,
    pub(crate) permuted_parities: fn(&[u64], usize, &[u64], usize) -> u64,
    pub(crate) permuted_parities_batch: BatchParities,
    pub(crate) dpf_child_inputs: fn(&[u128], &mut [u128]),
    pub(crate) dpf_correct: fn(&[u128], &mut [u128], [u128; 2]),
    pub(crate) dpf_fan_inputs: fn(&[u128], &mut [u128]),
    pub(crate) dpf_fan_correct: fn(&[u128], &mut [u128], &[u128]),
    /// DPF expansion with the AES rounds in the same pass (VAES); see [`Kernels::fused_dpf`].
    pub(crate) dpf_fused: Option<&'static FusedDpf>,
}

/// [`FusedDpf::level_keys`]: round keys, parents, children, per-key corrections, parents
/// per key; returns the parents done.
pub(crate) type LevelKeys = fn(&crate::prg::RoundKeys, &[u128], &mut [u128], &[[u128; 2]], usize) -> usize;

/// [`FusedDpf::fan`]: round keys, parents, children, leaf words, `(mask, live)` window
/// of the parents to expand; returns the parents done (expanded or skipped).
pub(crate) type FanOut = fn(&crate::prg::RoundKeys, &[u128], &mut [u128], &[u128], (usize, usize)) -> usize;

/// DPF expansion kernels that run the fixed-key AES rounds themselves, so a level's
/// inputs, encryption, MMO feed-forward and correction are one pass over registers
/// instead of three over memory. Each handles a prefix of `parents` (whole steps of
/// several parents) and returns how many parents that was; the caller expands the rest.
#[derive(Debug)]
pub(crate) struct FusedDpf {
    /// `children[2i + c] = H(seed(p_i) ⊕ c) ⊕ t(p_i)·cw[c]`, as the level kernels leave
    /// them after encryption and correction.
    pub(crate) level: fn(&crate::prg::RoundKeys, &[u128], &mut [u128], [u128; 2]) -> usize,
    /// [`FusedDpf::level`] for many small keys at once: parent `i` is corrected with
    /// `cws[i / per_key]`, `per_key` a power of two below 8 (else nothing is done).
    pub(crate) level_keys: LevelKeys,
    /// `children[F·i + j] = H(seed(p_i) ⊕ j) ⊕ t(p_i)·cw[j]` for `F = cw.len()`.
    /// Only parents `p` with `p ⊕ mask < live` for `(mask, live)` (`live` a multiple of
    /// 4, the largest step) are expanded; the others' children are left as they were.
    pub(crate) fan: FanOut,
}

/// Every backend, slowest first.
const ALL: [Backend; 4] = [Backend::Portable, Backend::Avx2, Backend::Avx512, Backend::Avx512Gfni];

static ACTIVE: OnceLock<&'static Kernels> = OnceLock::new();

impl Kernels {
    /// The table chosen for this process (detected once, then cached).
    #[inline]
    pub fn active() -> &'static Kernels {
        ACTIVE.get_or_init(select)
    }

    /// Which backend this table is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The fused DPF kernels, if this table has them and the CPU has VAES (AVX-512
    /// machines without it, such as Skylake-X, expand level by level through the
    /// `aes` crate).
    #[inline]
    pub(crate) fn fused_dpf(&self) -> Option<&'static FusedDpf> {
        #[cfg(target_arch = "x86_64")]
        let vaes = is_x86_feature_detected!("vaes");
        #[cfg(not(target_arch = "x86_64"))]
        let vaes = false;
        self.dpf_fused.filter(|_| vaes)
    }

    /// [`crate::ring::dot`] on this backend (for comparing backends in one run).
    pub fn dot(&self, a: &[u64], b: &[u64]) -> u64 {
        assert_eq!(a.len(), b.len(), "Kernels::dot: slices must have equal lengths");
        (self.dot)(a, b)
    }

    /// [`crate::gf2::permuted_parities`] on this backend, with the same checks.
    pub fn permuted_parities(&self, t: &[u64], u: usize, planes: &[u64], ks: usize) -> u64 {
        crate::gf2::check_permuted_parities(t, u, planes, ks);
        (self.permuted_parities)(t, u, planes, ks)
    }
}

fn select() -> &'static Kernels {
    if let Ok(name) = std::env::var("PMSM_BACKEND") {
        let wanted = ALL.into_iter().find(|b| b.name() == name.trim());
        match wanted.and_then(Backend::kernels) {
            Some(k) => return k,
            None => eprintln!("pmsm: PMSM_BACKEND={name:?} is unknown or unsupported on this CPU; detecting instead"),
        }
    }
    ALL.into_iter().rev().find_map(Backend::kernels).unwrap_or(&portable::TABLE)
}

/// The backend the public kernels dispatch to in this process.
pub fn active_backend() -> Backend {
    Kernels::active().backend
}

/// Every backend this CPU supports, portable first.
pub fn available_backends() -> Vec<Backend> {
    ALL.into_iter().filter(|b| b.kernels().is_some()).collect()
}

#[cfg(test)]
mod tests {
    //! Every backend equals the portable reference on random data of awkward lengths.
    use super::*;
    use rand_core::{RngCore, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn words(rng: &mut Xoshiro256PlusPlus, n: usize) -> Vec<u64> {
        (0..n).map(|_| rng.next_u64()).collect()
    }

    /// Generates one test per kernel comparing each backend with the portable table.
    macro_rules! backend_matches_portable {
        ($($name:ident => |$k:ident, $rng:ident, $len:ident| $body:expr;)*) => {$(
            #[test]
            fn $name() {
                let reference = &portable::TABLE;
                let mut $rng = Xoshiro256PlusPlus::seed_from_u64(0x5eed);
                for backend in available_backends() {
                    let $k = backend.kernels().unwrap();
                    for $len in [0usize, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257, 1000, 4099] {
                        let (got, want) = $body(reference);
                        assert_eq!(got, want, "{} differs from portable at length {}", backend, $len);
                    }
                }
            }
        )*};
    }

    backend_matches_portable! {
        add_matches => |k, rng, len| |r: &Kernels| {
            let a = words(&mut rng, len); let b = words(&mut rng, len);
            let (mut x, mut y) = (a.clone(), a);
            (k.add)(&mut x, &b); (r.add)(&mut y, &b); (x, y)
        };
        sub_matches => |k, rng, len| |r: &Kernels| {
            let a = words(&mut rng, len); let b = words(&mut rng, len);
            let (mut x, mut y) = (a.clone(), a);
            (k.sub)(&mut x, &b); (r.sub)(&mut y, &b); (x, y)
        };
        scale_matches => |k, rng, len| |r: &Kernels| {
            let a = words(&mut rng, len); let c = rng.next_u64();
            let (mut x, mut y) = (a.clone(), a);
            (k.scale)(&mut x, c); (r.scale)(&mut y, c); (x, y)
        };
        mul_matches => |k, rng, len| |r: &Kernels| {
            let a = words(&mut rng, len); let b = words(&mut rng, len);
            let (mut x, mut y) = (a.clone(), a);
            (k.mul)(&mut x, &b); (r.mul)(&mut y, &b); (x, y)
        };
        dot_matches => |k, rng, len| |r: &Kernels| {
            let a = words(&mut rng, len); let b = words(&mut rng, len);
            ((k.dot)(&a, &b), (r.dot)(&a, &b))
        };
        xor_matches => |k, rng, len| |r: &Kernels| {
            let a = words(&mut rng, len); let b = words(&mut rng, len);
            let (mut x, mut y) = (a.clone(), a);
            (k.xor)(&mut x, &b); (r.xor)(&mut y, &b); (x, y)
        };
        and_popcount_matches => |k, rng, len| |r: &Kernels| {
            let a = words(&mut rng, len); let b = words(&mut rng, len);
            ((k.and_popcount)(&a, &b), (r.and_popcount)(&a, &b))
        };
    }

    #[test]
    fn permuted_parities_match_on_every_power_of_two_and_shift() {
        let reference = &portable::TABLE;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for backend in available_backends() {
            let k = backend.kernels().unwrap();
            for log_w in 0..=10 {
                let w = 1usize << log_w;
                for ks in [1usize, 2, 5, 8, 9, 13] {
                    let t = words(&mut rng, w);
                    let planes = words(&mut rng, w * ks);
                    for _ in 0..24 {
                        let u = (rng.next_u64() as usize) % (64 * w);
                        assert_eq!(
                            (k.permuted_parities)(&t, u, &planes, ks),
                            (reference.permuted_parities)(&t, u, &planes, ks),
                            "{backend}: words {w}, planes {ks}, u {u}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn batched_parities_match_the_single_kernel() {
        let reference = &portable::TABLE;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        for backend in available_backends() {
            let k = backend.kernels().unwrap();
            for log_w in [0usize, 2, 3, 7, 8, 10] {
                let w = 1usize << log_w;
                // Odd and even batches through the pair kernel (up to 16 planes) and the
                // chunk-major walk (more).
                for (g, ks) in [(1usize, 1usize), (3, 6), (8, 10), (5, 13), (2, 16), (4, 17), (7, 20)] {
                    let ts = words(&mut rng, g * w);
                    let planes = words(&mut rng, w * ks);
                    let us: Vec<usize> = (0..g).map(|_| (rng.next_u64() as usize) % (64 * w)).collect();
                    let mut out = vec![0u64; g];
                    (k.permuted_parities_batch)(&ts, &us, &planes, ks, w, &mut out);
                    for i in 0..g {
                        let want = (reference.permuted_parities)(&ts[i * w..(i + 1) * w], us[i], &planes, ks);
                        assert_eq!(out[i], want, "{backend}: words {w}, instance {i} of {g}, planes {ks}");
                    }
                    // Planes zero from word `live` on: the same parities with the tail skipped.
                    let live = w * 5 / 8;
                    let mut cut = planes.clone();
                    for k in 0..ks {
                        cut[k * w + live..(k + 1) * w].fill(0);
                    }
                    (k.permuted_parities_batch)(&ts, &us, &cut, ks, live, &mut out);
                    for i in 0..g {
                        let want = (reference.permuted_parities)(&ts[i * w..(i + 1) * w], us[i], &cut, ks);
                        assert_eq!(
                            out[i], want,
                            "{backend}: words {w} (live {live}), instance {i} of {g}, planes {ks}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn batched_parities_match_on_odd_batches_every_plane_count_and_live() {
        // Instance counts that leave a remainder in any grouping, every plane count up to
        // 20 (past one group of 16), and `live` below `W` (not a multiple of 4 or 8).
        let reference = &portable::TABLE;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        for backend in available_backends() {
            let k = backend.kernels().unwrap();
            for w in [1usize, 2, 4, 8, 16, 64, 512] {
                for g in [1usize, 3, 5, 7] {
                    for (ks, live) in (1..=20usize).flat_map(|ks| [0, 1, w / 2 + 1, w - 1].map(|l| (ks, l.min(w - 1))))
                    {
                        let ts = words(&mut rng, g * w);
                        let us: Vec<usize> = (0..g).map(|_| (rng.next_u64() as usize) % (64 * w)).collect();
                        let mut planes = words(&mut rng, w * ks);
                        for p in planes.chunks_exact_mut(w) {
                            p[live..].fill(0);
                        }
                        let mut out = vec![u64::MAX; g];
                        (k.permuted_parities_batch)(&ts, &us, &planes, ks, live, &mut out);
                        for i in 0..g {
                            let want = (reference.permuted_parities)(&ts[i * w..(i + 1) * w], us[i], &planes, ks);
                            assert_eq!(
                                out[i], want,
                                "{backend}: words {w} (live {live}), instance {i} of {g}, planes {ks}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn dpf_level_kernels_match_portable() {
        let reference = &portable::TABLE;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(10);
        let block = |r: &mut Xoshiro256PlusPlus| (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64());
        for backend in available_backends() {
            let k = backend.kernels().unwrap();
            for m in [0usize, 1, 2, 3, 5, 8, 33, 256] {
                let parents: Vec<u128> = (0..m).map(|_| block(&mut rng)).collect();
                let enc: Vec<u128> = (0..2 * m).map(|_| block(&mut rng)).collect();
                let cw = [block(&mut rng), block(&mut rng)];
                let (mut a, mut b) = (vec![0u128; 2 * m], vec![0u128; 2 * m]);
                (k.dpf_child_inputs)(&parents, &mut a);
                (reference.dpf_child_inputs)(&parents, &mut b);
                assert_eq!(a, b, "{backend}: child inputs, {m} parents");
                let (mut a, mut b) = (enc.clone(), enc);
                (k.dpf_correct)(&parents, &mut a, cw);
                (reference.dpf_correct)(&parents, &mut b, cw);
                assert_eq!(a, b, "{backend}: correction, {m} parents");
                for fan in [1usize, 2, 4, 8, 16] {
                    let enc: Vec<u128> = (0..fan * m).map(|_| block(&mut rng)).collect();
                    let cw: Vec<u128> = (0..fan).map(|_| block(&mut rng)).collect();
                    let (mut a, mut b) = (vec![0u128; fan * m], vec![0u128; fan * m]);
                    (k.dpf_fan_inputs)(&parents, &mut a);
                    (reference.dpf_fan_inputs)(&parents, &mut b);
                    assert_eq!(a, b, "{backend}: fan-out {fan} inputs, {m} parents");
                    let (mut a, mut b) = (enc.clone(), enc);
                    (k.dpf_fan_correct)(&parents, &mut a, &cw);
                    (reference.dpf_fan_correct)(&parents, &mut b, &cw);
                    assert_eq!(a, b, "{backend}: fan-out {fan} correction, {m} parents");
                }
            }
        }
    }

    #[test]
    fn fused_dpf_kernels_match_the_unfused_expansion() {
        let reference = &portable::TABLE;
        let prg = crate::prg::FixedKeyPrg::get();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let block = |r: &mut Xoshiro256PlusPlus| (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64());
        let fused: Vec<_> = available_backends().into_iter().filter_map(|b| b.kernels()?.fused_dpf()).collect();
        for f in fused {
            for m in [0usize, 1, 7, 8, 9, 16, 33, 64] {
                let parents: Vec<u128> = (0..m).map(|_| block(&mut rng)).collect();
                // `level` corrects all parents with one key's words (`None`), `level_keys`
                // each run of `per_key` parents with its own key's.
                for per_key in [Some(1usize), Some(2), Some(4), None] {
                    let run = per_key.unwrap_or(m).max(1);
                    let cws: Vec<[u128; 2]> =
                        (0..m.div_ceil(run).max(1)).map(|_| [block(&mut rng), block(&mut rng)]).collect();
                    let mut want = vec![0u128; 2 * m];
                    (reference.dpf_child_inputs)(&parents, &mut want);
                    prg.encrypt_in_place(&mut want);
                    for (j, (ps, chs)) in parents.chunks(run).zip(want.chunks_mut(2 * run)).enumerate() {
                        (reference.dpf_correct)(ps, chs, cws[j]);
                    }
                    let mut got = vec![0u128; 2 * m];
                    let done = match per_key {
                        Some(k) => (f.level_keys)(prg.round_keys(), &parents, &mut got, &cws, k),
                        None => (f.level)(prg.round_keys(), &parents, &mut got, cws[0]),
                    };
                    assert!(done <= m && m - done < 8, "level: {done} of {m} parents");
                    assert_eq!(got[..2 * done], want[..2 * done], "level, {m} parents, {per_key:?} per key");
                }
                for fan in [4usize, 8, 16] {
                    let cw: Vec<u128> = (0..fan).map(|_| block(&mut rng)).collect();
                    let mut want = vec![0u128; fan * m];
                    (reference.dpf_fan_inputs)(&parents, &mut want);
                    prg.encrypt_in_place(&mut want);
                    (reference.dpf_fan_correct)(&parents, &mut want, &cw);
                    let mut got = vec![0u128; fan * m];
                    let done = (f.fan)(prg.round_keys(), &parents, &mut got, &cw, (0, usize::MAX));
                    assert!(done <= m && m - done < 4, "fan-out {fan}: {done} of {m} parents");
                    assert_eq!(got[..fan * done], want[..fan * done], "fan-out {fan}, {m} parents");
                    // Windowed: parents p with p ⊕ mask < live expanded, the others untouched.
                    let (mask, live) = (m.next_power_of_two().saturating_sub(1) & 5, m / 2 / 4 * 4);
                    let mut got = vec![7u128; fan * m];
                    let done = (f.fan)(prg.round_keys(), &parents, &mut got, &cw, (mask, live));
                    for p in 0..done {
                        let (g, w) = (&got[fan * p..fan * (p + 1)], &want[fan * p..fan * (p + 1)]);
                        if p ^ mask < live {
                            assert_eq!(g, w, "windowed fan-out {fan}, {m} parents, parent {p}");
                        } else {
                            assert!(g.iter().all(|&x| x == 7), "fan-out {fan}: parent {p} outside the window");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn forced_backend_name_round_trips() {
        for b in available_backends() {
            assert_eq!(b.kernels().unwrap().backend(), b);
        }
        assert!(available_backends().contains(&Backend::Portable));
    }
}
