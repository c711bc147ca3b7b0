//! Bit packing: `count` values of `width` bits each, least significant bit first.
//!
//! Openings, symbol shares and masks travel packed, so a chunk of `B` openings of an
//! `n`-bit index costs `⌈B·n/8⌉` bytes (DESIGN §3: `n` bits per transition per server).

/// Packs the low `width` bits of every value (`width ≤ 64`).
pub fn pack(values: &[u64], width: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(packed_len(values.len(), width));
    pack_into(values, width, &mut out);
    out
}

/// Appends the packing of `values` to `out`.
pub fn pack_into(values: &[u64], width: u32, out: &mut Vec<u8>) {
    out.reserve(packed_len(values.len(), width));
    pack_with(values, width, |b| out.push(b));
}

/// Writes the packing of `values` into `out`, which must be exactly
/// [`packed_len`]`(values.len(), width)` bytes long.
///
/// # Panics
/// If `out` has another length (a caller's sizing bug).
pub fn pack_to_slice(values: &[u64], width: u32, out: &mut [u8]) {
    assert_eq!(out.len(), packed_len(values.len(), width), "packing buffer of the wrong size");
    let mut at = 0;
    pack_with(values, width, |b| {
        out[at] = b;
        at += 1;
    });
}

/// The packed bytes of `values`, in order, handed to `emit`.
#[inline]
fn pack_with(values: &[u64], width: u32, mut emit: impl FnMut(u8)) {
    debug_assert!(width <= 64);
    let mask = low_mask(width);
    let (mut acc, mut have) = (0u128, 0u32);
    for &v in values {
        acc |= u128::from(v & mask) << have;
        have += width;
        while have >= 8 {
            emit(acc as u8);
            acc >>= 8;
            have -= 8;
        }
    }
    if have > 0 {
        emit(acc as u8);
    }
}

/// Bytes needed for `count` values of `width` bits.
pub fn packed_len(count: usize, width: u32) -> usize {
    (count * width as usize).div_ceil(8)
}

/// The low `width` bits set.
#[inline]
pub fn low_mask(width: u32) -> u64 {
    if width >= 64 { u64::MAX } else { (1u64 << width) - 1 }
}

/// Unpacks exactly `count` values; `None` if `bytes` is not exactly
/// [`packed_len`]`(count, width)` long or its padding bits are not zero.
///
/// # Performance
/// Up to 56 bits a value, each value whose 8 bytes from its first lie inside `bytes` is
/// one unaligned little-endian load, shift and mask (byte by byte it was 1.7 % of the
/// DLP benchmark's CPU, for masks and openings).
pub fn unpack(bytes: &[u8], width: u32, count: usize) -> Option<Vec<u64>> {
    if bytes.len() != packed_len(count, width) {
        return None;
    }
    let total = count * width as usize;
    if !total.is_multiple_of(8) && bytes[total / 8] >> (total % 8) != 0 {
        return None;
    }
    let mask = low_mask(width);
    let mut out = Vec::with_capacity(count);
    let w = width as usize;
    // Values read with one 8-byte load: width ≤ 56 and the load inside `bytes` (at
    // least 8 bytes means at least one value, so `w > 0`).
    let fast = if width <= 56 && bytes.len() >= 8 { count.min((bytes.len() - 8) * 8 / w + 1) } else { 0 };
    for i in 0..fast {
        let bit = i * w;
        let word: [u8; 8] = bytes[bit / 8..bit / 8 + 8].try_into().expect("inside the buffer");
        out.push((u64::from_le_bytes(word) >> (bit % 8)) & mask);
    }
    for i in fast..count {
        let bit = i * w;
        let (mut v, mut got) = (0u128, 0usize);
        for &b in &bytes[bit / 8..(bit + w).div_ceil(8)] {
            v |= u128::from(b) << got;
            got += 8;
        }
        out.push((v >> (bit % 8)) as u64 & mask);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(values in prop::collection::vec(any::<u64>(), 0..200), width in 0u32..=64) {
            let packed = pack(&values, width);
            prop_assert_eq!(packed.len(), packed_len(values.len(), width));
            let want: Vec<u64> = values.iter().map(|v| v & low_mask(width)).collect();
            prop_assert_eq!(unpack(&packed, width, values.len()), Some(want));
        }
    }

    #[test]
    fn rejects_wrong_lengths_and_dirty_padding() {
        assert_eq!(pack(&[1, 2, 3], 3), vec![0b1101_0001, 0]);
        assert_eq!(unpack(&[0b1101_0001], 3, 3), None);
        assert_eq!(unpack(&[0b1101_0001, 0x80], 3, 3), None);
        assert_eq!(unpack(&[0b1101_0001, 0], 3, 3), Some(vec![1, 2, 3]));
    }
}
