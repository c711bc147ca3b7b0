//! Many keys of one party over one domain, decoded into three flat arrays (roots,
//! internal correction words, leaf correction words) with one allocation each, instead
//! of one key value (and one vector) per key: what a server decodes from a dealer's
//! frame and expands in groups.

use super::{
    DpfError, DpfGroup, DpfKey, HEADER_BYTES, KeyAccess, ReadWindow, Shape, depth, expand_many, parse_body,
    parse_header, parse_key, shape,
};
use crate::Party;
use core::fmt;
use core::ops::Range;

/// A batch of DPF keys (same party, same domain). Not `Clone`: a key batch is
/// single-use correlated randomness.
pub struct DpfKeyBatch<G: DpfGroup> {
    party: Party,
    domain_bits: u32,
    roots: Vec<u128>,
    /// Key `i`'s level `l` at `i · internal + l`.
    cws: Vec<[u128; 2]>,
    /// Key `i`'s fan-out position `j` at `i · F + j`.
    leaf_cws: Vec<G>,
}

impl<G: DpfGroup> fmt::Debug for DpfKeyBatch<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpfKeyBatch")
            .field("party", &self.party)
            .field("domain_bits", &self.domain_bits)
            .field("keys", &self.roots.len())
            .field("material", &"<redacted>")
            .finish()
    }
}

impl<G: DpfGroup> DpfKeyBatch<G> {
    /// Decodes `count` consecutive key encodings ([`DpfKey::to_bytes`]) over
    /// `domain_bits`, checking every field of every key as [`DpfKey::from_bytes`] does,
    /// and that all keys belong to one party.
    pub fn decode(bytes: &[u8], count: usize, domain_bits: u32) -> Result<Self, DpfError> {
        let len = DpfKey::<G>::encoded_len(domain_bits);
        if bytes.len() != count * len {
            return Err(DpfError::Malformed("key batch length does not match its count and domain"));
        }
        let Shape { internal, fan, .. } = shape::<G>(domain_bits);
        let mut batch = DpfKeyBatch {
            party: Party::P0,
            domain_bits,
            roots: Vec::with_capacity(count),
            cws: Vec::with_capacity(count * internal as usize),
            leaf_cws: Vec::with_capacity(count * fan),
        };
        let Some(first) = bytes.get(..len) else { return Ok(batch) };
        // The first key's header is checked field by field; every other key must repeat
        // it byte for byte (rechecking each header field by field cost a third more).
        // A key that cannot join the batch gets the error its own decoding gives, or else
        // names the other party or domain.
        let refuse = |k: &[u8]| match parse_key::<G>(k, &mut Vec::new(), &mut Vec::new()) {
            Err(e) => e,
            Ok((p, b, _)) if b == domain_bits => DpfError::Mixed { bits: b, party: p.index() },
            Ok(_) => DpfError::Malformed("a key of the batch is over another domain"),
        };
        let (party, bits) = parse_header::<G>(first)?;
        if bits != domain_bits {
            return Err(refuse(first));
        }
        batch.party = party;
        let sh = shape::<G>(domain_bits);
        for k in bytes.chunks_exact(len) {
            if k[..HEADER_BYTES] != first[..HEADER_BYTES] {
                return Err(refuse(k));
            }
            batch.roots.push(parse_body(k, party, sh, &mut batch.cws, &mut batch.leaf_cws)?);
        }
        Ok(batch)
    }

    /// Which server the keys belong to (every key of a batch has the same party).
    pub fn party(&self) -> Party {
        self.party
    }

    /// Keys in the batch.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Leaves of one key's full-domain expansion.
    pub fn leaves(&self) -> usize {
        1usize << depth::<G>(self.domain_bits)
    }

    /// Full-domain evaluation of the keys in `keys` into `out` (`keys.len() · leaves`
    /// leaves, key after key), as [`DpfKey::eval_full_many`].
    pub fn eval_full_range(&self, keys: Range<usize>, out: &mut [G]) -> Result<(), DpfError> {
        self.eval_range(keys, out, None)
    }

    /// [`DpfKeyBatch::eval_full_range`] where only `window`'s outputs will be read
    /// (`window.masks` has one mask per key of the range): leaves holding none of them may
    /// be skipped and left holding anything.
    pub fn eval_read_range(&self, keys: Range<usize>, out: &mut [G], window: ReadWindow<'_>) -> Result<(), DpfError> {
        if window.masks.len() != keys.len() {
            return Err(DpfError::Malformed("read window masks do not match the key range"));
        }
        self.eval_range(keys, out, Some(window))
    }

    fn eval_range(&self, keys: Range<usize>, out: &mut [G], window: Option<ReadWindow<'_>>) -> Result<(), DpfError> {
        if keys.end > self.len() || keys.start > keys.end {
            return Err(DpfError::Malformed("key range outside the batch"));
        }
        if depth::<G>(self.domain_bits) > 32 {
            return Err(DpfError::DomainTooLargeForFullEval { bits: self.domain_bits });
        }
        let n = keys.len();
        if out.len() != n * self.leaves() {
            return Err(DpfError::BufferLength { got: out.len(), want: n * self.leaves() });
        }
        let view = BatchView { batch: self, first: keys.start };
        expand_many(&view, n, self.domain_bits, self.party == Party::P1, out, window);
        Ok(())
    }
}

/// Keys `first..` of a batch.
struct BatchView<'b, G: DpfGroup> {
    batch: &'b DpfKeyBatch<G>,
    first: usize,
}

impl<G: DpfGroup> KeyAccess<G> for BatchView<'_, G> {
    #[inline]
    fn root(&self, i: usize) -> u128 {
        self.batch.roots[self.first + i]
    }
    #[inline]
    fn cw(&self, i: usize, level: u32) -> [u128; 2] {
        let internal = shape::<G>(self.batch.domain_bits).internal as usize;
        self.batch.cws[(self.first + i) * internal + level as usize]
    }
    #[inline]
    fn leaf_cws(&self, i: usize) -> &[G] {
        let fan = shape::<G>(self.batch.domain_bits).fan;
        &self.batch.leaf_cws[(self.first + i) * fan..][..fan]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpf::{BitLeaf, Dpf, HEADER_BYTES, RingLeaf};
    use crate::rng::SecretRng;

    fn check<G: DpfGroup>(bits: u32, beta: G::Output) {
        let mut rng = SecretRng::from_seed([bits as u8; 32]);
        let points: Vec<(u64, G::Output)> = (0..37u64).map(|i| ((i * 2654435761) % (1 << bits), beta)).collect();
        let keys = Dpf::<G>::keygen_batch(bits, &points, &mut rng).unwrap();
        for party in 0..2 {
            let ks: Vec<DpfKey<G>> = keys.iter().map(|k| DpfKey::from_bytes(&k[party].to_bytes()).unwrap()).collect();
            let bytes: Vec<u8> = ks.iter().flat_map(DpfKey::to_bytes).collect();
            let batch = DpfKeyBatch::<G>::decode(&bytes, ks.len(), bits).unwrap();
            let leaves = batch.leaves();
            let mut want = vec![G::default(); ks.len() * leaves];
            DpfKey::eval_full_many(&ks, &mut want).unwrap();
            for range in [0..ks.len(), 5..17, 36..37, 3..3] {
                let mut got = vec![G::default(); range.len() * leaves];
                batch.eval_full_range(range.clone(), &mut got).unwrap();
                assert_eq!(got, want[range.start * leaves..range.end * leaves], "bits {bits} party {party} {range:?}");
            }
        }
    }

    #[test]
    fn windowed_expansions_agree_inside_their_window() {
        let mut rng = SecretRng::from_seed([4; 32]);
        for bits in [11u32, 14, 15] {
            let points: Vec<(u64, bool)> = (0..19u64).map(|i| ((i * 40503) % (1 << bits), true)).collect();
            let keys = Dpf::<BitLeaf>::keygen_batch(bits, &points, &mut rng).unwrap();
            let bytes: Vec<u8> = keys.iter().flat_map(|k| k[1].to_bytes()).collect();
            let batch = DpfKeyBatch::<BitLeaf>::decode(&bytes, keys.len(), bits).unwrap();
            let leaves = batch.leaves();
            let mut full = vec![BitLeaf::default(); keys.len() * leaves];
            batch.eval_full_range(0..keys.len(), &mut full).unwrap();
            let masks: Vec<u64> = (0..keys.len() as u64).map(|i| (i * 7919 + 3) % (1 << bits)).collect();
            for live in [1u64, 512, 513, 3 << (bits - 2), (1 << bits) - 1, 1 << bits] {
                // Start from garbage: skipped leaves keep it.
                let mut got = vec![BitLeaf([!0, 0x5a5a]); keys.len() * leaves];
                batch.eval_read_range(0..keys.len(), &mut got, ReadWindow { masks: &masks, live }).unwrap();
                for (i, m) in masks.iter().enumerate() {
                    for y in (0..1u64 << bits).filter(|y| y ^ m < live) {
                        let (leaf, pos) = (i * leaves + (y >> 7) as usize, (y & 127) as usize);
                        assert_eq!(got[leaf].get(pos), full[leaf].get(pos), "bits {bits} live {live} key {i} y {y}");
                    }
                }
            }
            assert!(
                batch.eval_read_range(0..2, &mut full[..2 * leaves], ReadWindow { masks: &masks, live: 1 }).is_err()
            );
        }
    }

    #[test]
    fn batches_expand_like_their_keys() {
        for bits in [1, 7, 8, 9, 14, 17, 18] {
            check::<BitLeaf>(bits, true);
            check::<RingLeaf>(bits, 3);
        }
    }

    #[test]
    fn a_bad_key_after_the_first_gets_the_error_its_own_decoding_gives() {
        let mut rng = SecretRng::from_seed([7; 32]);
        let bits = 15;
        let points: Vec<(u64, bool)> = (0..5u64).map(|i| (i * 999, true)).collect();
        let keys = Dpf::<BitLeaf>::keygen_batch(bits, &points, &mut rng).unwrap();
        let len = DpfKey::<BitLeaf>::encoded_len(bits);
        let good: Vec<u8> = keys.iter().flat_map(|k| k[0].to_bytes()).collect();
        // Key 3's version, party, domain, root control bit, a seed correction's low bit
        // and the control-bit padding (6 levels: the second byte's top four bits).
        let padding = HEADER_BYTES + 16 + 16 * 6 + 1;
        for (at, flip) in [(0, 1u8), (2, 1), (3, 1), (4, 1), (HEADER_BYTES + 16 + 32, 1), (padding, 0x40)] {
            let mut bytes = good.clone();
            bytes[3 * len + at] ^= flip;
            let got = DpfKeyBatch::<BitLeaf>::decode(&bytes, 5, bits).map(|_| ()).unwrap_err();
            let alone = DpfKey::<BitLeaf>::from_bytes(&bytes[3 * len..4 * len]).map(|_| ());
            match alone {
                Err(e) => assert_eq!(got, e, "byte {at}"),
                // Decodable alone but not in this batch: the other party, or another domain.
                Ok(()) => assert!(
                    matches!(
                        got,
                        DpfError::Mixed { .. } | DpfError::Malformed("a key of the batch is over another domain")
                    ),
                    "byte {at}: {got:?}"
                ),
            }
        }
        assert!(DpfKeyBatch::<BitLeaf>::decode(&good, 5, bits).is_ok());
    }

    #[test]
    fn batches_refuse_what_keys_refuse_and_mixed_parties() {
        let mut rng = SecretRng::from_seed([9; 32]);
        let [k0, k1] = Dpf::<BitLeaf>::keygen(10, 3, true, &mut rng).unwrap();
        let one = k0.to_bytes();
        assert!(DpfKeyBatch::<BitLeaf>::decode(&one, 2, 10).is_err());
        assert!(DpfKeyBatch::<BitLeaf>::decode(&one, 1, 11).is_err());
        let mixed = [k0.to_bytes(), k1.to_bytes()].concat();
        assert!(matches!(DpfKeyBatch::<BitLeaf>::decode(&mixed, 2, 10), Err(DpfError::Mixed { .. })));
        let mut bad = one.clone();
        bad[4] ^= 1; // the root's control bit no longer matches the party
        assert!(DpfKeyBatch::<BitLeaf>::decode(&bad, 1, 10).is_err());
        let batch = DpfKeyBatch::<BitLeaf>::decode(&one, 1, 10).unwrap();
        assert!(batch.eval_full_range(0..2, &mut [BitLeaf::default(); 16]).is_err());
        assert!(batch.eval_full_range(0..1, &mut [BitLeaf::default(); 3]).is_err());
    }
}
