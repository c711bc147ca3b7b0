//! DPF tests: the two keys' outputs combine to the point function everywhere;
//! single-point evaluation agrees with full-domain evaluation; key sizes follow the
//! documented formulas; malformed keys are rejected with typed errors.

use super::*;
use crate::field::F65521;
use crate::rng::{RngCore, WorkloadRng};
use proptest::prelude::*;

fn rng(seed: u64) -> SecretRng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    SecretRng::from_seed(s)
}

/// Combines both parties' outputs: `y0 + y1` in the group (XOR for bits).
fn combine<G: DpfGroup>(a: G, b: G) -> G {
    a.add(b)
}

/// Checks keys for `(alpha, beta)` on a `bits`-bit domain, fully when `full`.
fn check<G: DpfGroup>(bits: u32, alpha: u64, beta: G::Output, full: bool, seed: u64) {
    let keys = Dpf::<G>::keygen(bits, alpha, beta, &mut rng(seed)).unwrap();
    let per_leaf = 1u64 << (bits.min(G::LOG_OUTPUTS_PER_LEAF));
    let zero = G::default().get(0);
    if full {
        let y0 = keys[0].eval_full().unwrap();
        let y1 = keys[1].eval_full().unwrap();
        for (i, (a, b)) in y0.iter().zip(&y1).enumerate() {
            let s = combine(*a, *b);
            for p in 0..per_leaf as usize {
                let x = i as u64 * per_leaf + p as u64;
                let want = if x == alpha { beta } else { zero };
                assert_eq!(s.get(p), want, "bits {bits} alpha {alpha} x {x}");
            }
        }
        // Single-point evaluation agrees with the full expansion at a few points.
        let mut w = WorkloadRng::seed_from_u64(seed);
        for x in [alpha, 0, (1 << bits) - 1, w.below(1 << bits)] {
            let (leaf, pos) = ((x / per_leaf) as usize, (x % per_leaf) as usize);
            assert_eq!(keys[0].eval(x).unwrap(), y0[leaf].get(pos));
            assert_eq!(keys[1].eval(x).unwrap(), y1[leaf].get(pos));
        }
    } else {
        let mut w = WorkloadRng::seed_from_u64(seed);
        for x in [alpha, alpha ^ 1, 0, w.below(1 << bits)] {
            let y = G::unit(0, keys[0].eval(x).unwrap()).add(G::unit(0, keys[1].eval(x).unwrap()));
            assert_eq!(y.get(0), if x == alpha { beta } else { zero }, "bits {bits} x {x}");
        }
    }
    for k in &keys {
        assert_eq!(k.to_bytes().len(), DpfKey::<G>::encoded_len(bits));
        let back = DpfKey::<G>::from_bytes(&k.to_bytes()).unwrap();
        assert_eq!(back.to_bytes(), k.to_bytes());
    }
}

#[test]
fn bit_outputs_every_domain_1_to_24() {
    let mut w = WorkloadRng::seed_from_u64(1);
    for bits in 1..=24 {
        for _ in 0..2 {
            check::<BitLeaf>(bits, w.below(1 << bits), true, true, w.next_u64());
        }
    }
}

#[test]
fn ring_outputs_every_domain_1_to_24() {
    let mut w = WorkloadRng::seed_from_u64(2);
    for bits in 1..=24 {
        check::<RingLeaf>(bits, w.below(1 << bits), w.next_u64(), true, w.next_u64());
    }
}

#[test]
fn field_outputs_every_domain_1_to_24() {
    let mut w = WorkloadRng::seed_from_u64(3);
    for bits in 1..=24 {
        let beta = F65521::new(w.below(65521));
        check::<F65521>(bits, w.below(1 << bits), beta, true, w.next_u64());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_points_bits(bits in 1u32..=16, a in any::<u64>(), seed in any::<u64>()) {
        check::<BitLeaf>(bits, a % (1 << bits), true, true, seed);
    }

    #[test]
    fn random_points_ring(bits in 1u32..=12, a in any::<u64>(), beta in any::<u64>(), seed in any::<u64>()) {
        check::<RingLeaf>(bits, a % (1 << bits), beta, true, seed);
    }

    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = DpfKey::<BitLeaf>::from_bytes(&bytes);
        let _ = DpfKey::<RingLeaf>::from_bytes(&bytes);
        let _ = DpfKey::<F65521>::from_bytes(&bytes);
    }
}

#[test]
fn key_sizes_follow_the_formula() {
    // Bit outputs fan out to 4 leaves: c = n − 9 corrected levels, 4 leaf words.
    for bits in 9..=40 {
        let [k, _] = Dpf::<BitLeaf>::keygen(bits, 0, true, &mut rng(1)).unwrap();
        assert_eq!(k.material_bits(), 130 * (bits as usize - 9) + 640, "bits {bits}");
        assert_eq!(k.to_bytes().len(), DpfKey::<BitLeaf>::encoded_len(bits));
    }
    let [k, _] = Dpf::<BitLeaf>::keygen(18, 5, true, &mut rng(1)).unwrap();
    assert_eq!(k.material_bits(), 1810);
    assert_eq!(DpfKey::<BitLeaf>::encoded_len(18), 4 + 16 + 144 + 3 + 64);
    // Shallower trees fan out from the root to all 2^d leaves (one leaf at n ≤ 7).
    for bits in 1..=9 {
        let [k, _] = Dpf::<BitLeaf>::keygen(bits, 0, true, &mut rng(1)).unwrap();
        assert_eq!(k.material_bits(), 128 + 128 * (1 << bits.saturating_sub(7)), "bits {bits}");
    }
    // Ring outputs keep the plain tree (fan-out 2): 130(n − 2) + 128 + 256 bits.
    for bits in 2..=20 {
        let [k, _] = Dpf::<RingLeaf>::keygen(bits, 0, 1, &mut rng(1)).unwrap();
        assert_eq!(k.material_bits(), 130 * (bits as usize - 2) + 384, "bits {bits}");
    }
}

/// A point is a secret (the dealer's mask): an out-of-domain one is refused without
/// naming it, at key generation, single-point evaluation and table dealing.
#[test]
fn an_out_of_domain_point_is_not_in_the_error() {
    let secret = 48_879u64; // 0xbeef, over 12 bits
    let r = &mut rng(0);
    let mut errors = vec![
        Dpf::<BitLeaf>::keygen(12, secret, true, r).unwrap_err(),
        Dpf::<RingLeaf>::keygen_batch(12, &[(1, 1), (secret, 1)], r).unwrap_err(),
        Dpf::<BitLeaf>::keygen(16, 1, true, r).unwrap()[0].eval(secret << 4).unwrap_err(),
    ];
    let (mut a, mut b) = (vec![0u8; 32], vec![0u8; 32]);
    errors.push(table::deal_tables_into::<BitLeaf, _>(8, &[(secret, true)], r, [&mut a, &mut b]).unwrap_err());
    for e in errors {
        let text = e.to_string();
        assert!(text.starts_with("a point is outside the DPF domain of 2^"), "{text}");
        for shown in [secret.to_string(), format!("{secret:x}"), (secret << 4).to_string()] {
            assert!(!text.contains(&shown) && !format!("{e:?}").contains(&shown), "{text} / {e:?}");
        }
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let r = &mut rng(0);
    assert_eq!(Dpf::<BitLeaf>::keygen(0, 0, true, r).unwrap_err(), DpfError::DomainBits { bits: 0 });
    assert_eq!(Dpf::<BitLeaf>::keygen(49, 0, true, r).unwrap_err(), DpfError::DomainBits { bits: 49 });
    assert_eq!(Dpf::<BitLeaf>::keygen(4, 16, true, r).unwrap_err(), DpfError::PointOutOfDomain { bits: 4 });
    let [k, _] = Dpf::<BitLeaf>::keygen(10, 3, true, r).unwrap();
    assert!(matches!(k.eval(1024), Err(DpfError::PointOutOfDomain { bits: 10 })));
    assert!(matches!(k.eval_full_into(&mut [BitLeaf::default(); 3]), Err(DpfError::BufferLength { got: 3, want: 8 })));
    let [big, _] = Dpf::<RingLeaf>::keygen(40, 3, 1, r).unwrap();
    assert!(matches!(big.eval_full(), Err(DpfError::DomainTooLargeForFullEval { bits: 40 })));
}

#[test]
fn malformed_keys_are_rejected() {
    let [k, _] = Dpf::<BitLeaf>::keygen(20, 77, true, &mut rng(5)).unwrap();
    let good = k.to_bytes();
    let bad = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        DpfKey::<BitLeaf>::from_bytes(&b).unwrap_err()
    };
    assert_eq!(bad(&|b| b.truncate(2)), DpfError::Malformed("shorter than its header"));
    assert_eq!(bad(&|b| b[0] = 9), DpfError::Malformed("unknown key version"));
    assert_eq!(bad(&|b| b[1] = RingLeaf::TAG), DpfError::Malformed("key is for another output group"));
    assert_eq!(bad(&|b| b[2] = 2), DpfError::Malformed("party byte is neither 0 nor 1"));
    assert_eq!(bad(&|b| b[3] = 60), DpfError::DomainBits { bits: 60 });
    assert_eq!(
        bad(&|b| {
            b.pop();
        }),
        DpfError::Malformed("length does not match the domain size")
    );
    assert_eq!(bad(&|b| b[4] ^= 1), DpfError::Malformed("root control bit does not match the party"));
    assert_eq!(bad(&|b| b[20] |= 1), DpfError::Malformed("seed correction word has its low bit set"));
    // n = 18 has 9 corrected levels: the third packed byte has padding bits.
    let [k, _] = Dpf::<BitLeaf>::keygen(18, 1, true, &mut rng(5)).unwrap();
    let mut b = k.to_bytes();
    let at = 4 + 16 + 16 * 9 + 2;
    b[at] |= 0x80;
    assert_eq!(
        DpfKey::<BitLeaf>::from_bytes(&b).unwrap_err(),
        DpfError::Malformed("padding bits of the control corrections are not zero")
    );
    let [f, _] = Dpf::<F65521>::keygen(3, 1, F65521::new(5), &mut rng(5)).unwrap();
    let mut b = f.to_bytes();
    let n = b.len();
    b[n - 4..].copy_from_slice(&65521u32.to_le_bytes());
    assert_eq!(
        DpfKey::<F65521>::from_bytes(&b).unwrap_err(),
        DpfError::Malformed("leaf correction word is not canonical")
    );
}

#[test]
fn one_key_alone_looks_the_same_for_every_point() {
    // A weak but cheap statistical check of key privacy: the bit-leaf full expansion of
    // one key is balanced whatever the point (each output bit ~ Bernoulli(1/2)).
    for alpha in [0u64, 1, 4095] {
        let [k0, _] = Dpf::<BitLeaf>::keygen(12, alpha, true, &mut rng(alpha + 10)).unwrap();
        let ones: u32 = k0.eval_full().unwrap().iter().map(|l| l.0[0].count_ones() + l.0[1].count_ones()).sum();
        // 4096 fair bits: mean 2048, sd 32; 6 sd bounds.
        assert!((2048 - 192..=2048 + 192).contains(&ones), "alpha {alpha}: {ones} ones");
    }
}

#[test]
fn gen_many_matches_points_and_debug_is_redacted() {
    let points: Vec<(u64, bool)> = (0..600).map(|i| ((i * 37) % 1024, true)).collect();
    let keys = Dpf::<BitLeaf>::keygen_many(10, &points, &mut rng(9)).unwrap();
    assert_eq!(keys.len(), 600);
    for ((a, _), [k0, k1]) in points.iter().zip(&keys) {
        assert!(k0.eval(*a).unwrap() ^ k1.eval(*a).unwrap());
        assert!(!(k0.eval(*a ^ 1).unwrap() ^ k1.eval(*a ^ 1).unwrap()));
    }
    let dbg = format!("{:?}", keys[0][0]);
    assert!(dbg.contains("redacted") && !dbg.contains("root"), "{dbg}");
}

#[test]
fn batched_generation_and_evaluation_match_single_keys() {
    let mut r = rng(77);
    for bits in [1u32, 3, 7, 8, 10, 14, 17, 19] {
        let points: Vec<(u64, bool)> = (0..37u64).map(|i| ((i * 2654435761) % (1 << bits), true)).collect();
        let keys = Dpf::<BitLeaf>::keygen_batch(bits, &points, &mut r).unwrap();
        let (k0, k1): (Vec<_>, Vec<_>) = keys.into_iter().map(|[a, b]| (a, b)).unzip();
        let leaves = k0[0].leaves();
        let mut y0 = vec![BitLeaf::default(); 37 * leaves];
        let mut y1 = vec![BitLeaf::default(); 37 * leaves];
        DpfKey::eval_full_many(&k0, &mut y0).unwrap();
        DpfKey::eval_full_many(&k1, &mut y1).unwrap();
        for (i, (alpha, _)) in points.iter().enumerate() {
            assert_eq!(&y0[i * leaves..(i + 1) * leaves], &k0[i].eval_full().unwrap()[..], "bits {bits} key {i}");
            for x in 0..(1u64 << bits).min(1 << 12) {
                let (l, p) = ((x >> 7) as usize, (x & 127) as usize);
                let got = y0[i * leaves + l].get(p) ^ y1[i * leaves + l].get(p);
                assert_eq!(got, x == *alpha, "bits {bits} key {i} x {x}");
            }
        }
    }
    let ring = Dpf::<RingLeaf>::keygen_batch(9, &[(3, 5), (511, 7)], &mut r).unwrap();
    let (k0, k1): (Vec<_>, Vec<_>) = ring.into_iter().map(|[a, b]| (a, b)).unzip();
    let mut y0 = vec![RingLeaf::default(); 2 * 256];
    let mut y1 = vec![RingLeaf::default(); 2 * 256];
    DpfKey::eval_full_many(&k0, &mut y0).unwrap();
    DpfKey::eval_full_many(&k1, &mut y1).unwrap();
    let sum = |i: usize, x: usize| y0[i * 256 + x / 2].get(x % 2).wrapping_add(y1[i * 256 + x / 2].get(x % 2));
    assert_eq!((sum(0, 3), sum(0, 4), sum(1, 511), sum(1, 0)), (5, 0, 7, 0));
    let mixed = [k0.into_iter().next().unwrap(), k1.into_iter().next().unwrap()];
    assert!(matches!(DpfKey::eval_full_many(&mixed, &mut y0), Err(DpfError::Mixed { .. })));
}

#[test]
fn keys_written_in_place_equal_encoded_keys() {
    for bits in [1u32, 7, 8, 12, 18] {
        let points: Vec<(u64, bool)> = (0..9u64).map(|i| ((i * 977) % (1 << bits), true)).collect();
        let keys = Dpf::<BitLeaf>::keygen_batch(bits, &points, &mut SecretRng::from_seed([4; 32])).unwrap();
        let len = DpfKey::<BitLeaf>::encoded_len(bits);
        let mut out = [vec![0u8; points.len() * len], vec![0u8; points.len() * len]];
        let [o0, o1] = &mut out;
        Dpf::<BitLeaf>::keygen_batch_into(bits, &points, &mut SecretRng::from_seed([4; 32]), [o0, o1]).unwrap();
        for b in 0..2 {
            let want: Vec<u8> = keys.iter().flat_map(|k| k[b].to_bytes()).collect();
            assert_eq!(out[b], want, "bits {bits} party {b}");
        }
    }
}
