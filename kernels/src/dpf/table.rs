//! Point-function shares as whole tables, for domains so small that the table is no
//! larger than a DPF key.
//!
//! For `f_{α,β}` on `2^n` points, server 0 gets `2^d` uniformly random leaves `R` (`d` as
//! for a key: [`DpfKey::leaves_for`]) and server 1 gets `β·e_α − R`: each share alone is
//! uniform, whatever `α` and `β` (a one-time pad), and the two add up to what a pair of
//! DPF keys expands to. Nothing is expanded: a server reads its share as it is.
//!
//! Cost: for bit outputs at `n = 8` (the DLP rules' 2^8-symbol class lookups), 32 bytes a
//! share against a 52-byte key and no AES on either side. The dealer draws two blocks
//! instead of generating a key pair: 16.4 against 44.3 µs per 1,024 points
//! (`dpf_keygen/tables_1024_n8` and `into_1024_n8`).

use super::{DpfError, DpfGroup, DpfKey, MAX_DOMAIN_BITS};
use crate::rng::{CryptoRng, RngCore};

/// Bytes of one server's table share over `domain_bits`, if that is no more than a DPF
/// key's encoding ([`DpfKey::encoded_len`]); `None` where a key is the smaller.
pub fn table_len<G: DpfGroup>(domain_bits: u32) -> Option<usize> {
    if !(1..=MAX_DOMAIN_BITS).contains(&domain_bits) {
        return None;
    }
    let len = DpfKey::<G>::leaves_for(domain_bits) * G::BYTES;
    (len <= DpfKey::<G>::encoded_len(domain_bits)).then_some(len)
}

/// Both servers' table shares for `points` (`(α, β)` each), written into `out[b]` point
/// after point, [`table_len`] bytes each.
///
/// # Panics
/// If an output is not exactly `points.len()` shares long (a caller's sizing bug).
pub fn deal_tables_into<G: DpfGroup, R: RngCore + CryptoRng>(
    domain_bits: u32,
    points: &[(u64, G::Output)],
    rng: &mut R,
    out: [&mut [u8]; 2],
) -> Result<(), DpfError> {
    let len = table_len::<G>(domain_bits).ok_or(DpfError::DomainBits { bits: domain_bits })?;
    if points.iter().any(|(a, _)| a >> domain_bits != 0) {
        return Err(DpfError::PointOutOfDomain { bits: domain_bits });
    }
    let [o0, o1] = out;
    assert!(o0.len() == points.len() * len && o1.len() == o0.len(), "table buffer of the wrong size");
    let log = G::LOG_OUTPUTS_PER_LEAF.min(domain_bits);
    for (&(alpha, beta), (t0, t1)) in points.iter().zip(o0.chunks_exact_mut(len).zip(o1.chunks_exact_mut(len))) {
        let (at, unit) = ((alpha >> log) as usize, G::unit((alpha & ((1 << log) - 1)) as usize, beta));
        for (i, (l0, l1)) in t0.chunks_exact_mut(G::BYTES).zip(t1.chunks_exact_mut(G::BYTES)).enumerate() {
            let r = G::from_block((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()));
            let onehot = if i == at { unit } else { G::default() };
            r.write(l0);
            onehot.add(r.neg()).write(l1);
        }
    }
    Ok(())
}

/// Reads `count` table shares over `domain_bits` from `bytes` into `out` (`count ·`
/// [`DpfKey::leaves_for`] leaves), checking that every leaf is canonical.
pub fn read_tables<G: DpfGroup>(bytes: &[u8], count: usize, domain_bits: u32, out: &mut [G]) -> Result<(), DpfError> {
    let len = table_len::<G>(domain_bits).ok_or(DpfError::DomainBits { bits: domain_bits })?;
    if bytes.len() != count * len {
        return Err(DpfError::Malformed("table shares' length does not match their count and domain"));
    }
    let want = count * DpfKey::<G>::leaves_for(domain_bits);
    if out.len() != want {
        return Err(DpfError::BufferLength { got: out.len(), want });
    }
    for (o, b) in out.iter_mut().zip(bytes.chunks_exact(G::BYTES)) {
        *o = G::read(b).ok_or(DpfError::Malformed("table share leaf is not canonical"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpf::{BitLeaf, RingLeaf};
    use crate::field::F65521 as Fp;
    use crate::rng::SecretRng;

    fn check<G: DpfGroup>(bits: u32, beta: G::Output) {
        let Some(len) = table_len::<G>(bits) else { return };
        let mut rng = SecretRng::from_seed([bits as u8; 32]);
        let points: Vec<(u64, G::Output)> = (0..23u64).map(|i| ((i * 2654435761) % (1 << bits), beta)).collect();
        let mut shares = [vec![0u8; points.len() * len], vec![0u8; points.len() * len]];
        let [s0, s1] = &mut shares;
        deal_tables_into::<G, _>(bits, &points, &mut rng, [s0, s1]).unwrap();
        let leaves = DpfKey::<G>::leaves_for(bits);
        let mut t = [vec![G::default(); points.len() * leaves], vec![G::default(); points.len() * leaves]];
        for (b, s) in shares.iter().enumerate() {
            read_tables::<G>(s, points.len(), bits, &mut t[b]).unwrap();
        }
        let per = 1usize << G::LOG_OUTPUTS_PER_LEAF.min(bits);
        for (i, &(alpha, beta)) in points.iter().enumerate() {
            for x in 0..1u64 << bits {
                let (leaf, pos) = (i * leaves + (x as usize) / per, x as usize % per);
                let sum = t[0][leaf].add(t[1][leaf]).get(pos);
                let want = if x == alpha { beta } else { G::default().get(pos) };
                assert_eq!(sum, want, "bits {bits} point {alpha} at {x}");
            }
        }
    }

    #[test]
    fn table_shares_add_up_to_the_point_function() {
        for bits in 1..=10 {
            check::<BitLeaf>(bits, true);
            check::<RingLeaf>(bits, 7);
            check::<Fp>(bits, Fp::new(5));
        }
    }

    #[test]
    fn tables_only_where_no_larger_than_a_key() {
        assert_eq!(table_len::<BitLeaf>(8), Some(32));
        assert_eq!(table_len::<BitLeaf>(9), Some(64));
        assert_eq!(table_len::<BitLeaf>(10), None);
        assert_eq!(table_len::<BitLeaf>(0), None);
        for bits in 1..=MAX_DOMAIN_BITS {
            if let Some(len) = table_len::<RingLeaf>(bits) {
                assert!(len <= DpfKey::<RingLeaf>::encoded_len(bits));
            }
        }
    }

    #[test]
    fn bad_shares_and_points_are_errors() {
        let mut rng = SecretRng::from_seed([1; 32]);
        let (mut a, mut b) = (vec![0u8; 32], vec![0u8; 32]);
        assert!(matches!(
            deal_tables_into::<BitLeaf, _>(8, &[(256, true)], &mut rng, [&mut a, &mut b]),
            Err(DpfError::PointOutOfDomain { .. })
        ));
        assert!(deal_tables_into::<BitLeaf, _>(12, &[(1, true)], &mut rng, [&mut a, &mut b]).is_err());
        let mut out = vec![BitLeaf::default(); 2];
        assert!(read_tables::<BitLeaf>(&a[..31], 1, 8, &mut out).is_err());
        assert!(read_tables::<BitLeaf>(&a, 1, 8, &mut out[..1]).is_err());
        // Z_2^64 leaves are any 16 bytes; a prime-field leaf must be reduced.
        let len = table_len::<Fp>(1).expect("two field elements are smaller than a key");
        let mut f = vec![Fp::default(); 2];
        assert!(read_tables::<Fp>(&vec![0; len], 1, 1, &mut f).is_ok());
        assert!(read_tables::<Fp>(&vec![0xff; len], 1, 1, &mut f).is_err());
    }

    #[test]
    fn each_share_alone_is_uniform() {
        // Server 1's share of e_α for a fixed α: every bit should be a fair coin. 4,000
        // shares of 256 bits; a bit stuck at the one-hot value would sit at 0 or 4,000.
        let mut rng = SecretRng::from_seed([3; 32]);
        let n = 4000;
        let points = vec![(77u64, true); n];
        let mut shares = [vec![0u8; n * 32], vec![0u8; n * 32]];
        let [s0, s1] = &mut shares;
        deal_tables_into::<BitLeaf, _>(8, &points, &mut rng, [s0, s1]).unwrap();
        for s in &shares {
            for bit in 0..256 {
                let ones = s.chunks_exact(32).filter(|t| t[bit / 8] >> (bit % 8) & 1 == 1).count();
                // 6 standard deviations of Binomial(4000, 1/2) is 190.
                assert!(ones.abs_diff(n / 2) < 190, "bit {bit}: {ones} ones of {n}");
            }
        }
    }
}
