//! Frames: what travels on each link, and their checked decoding.
//!
//! Every frame starts with a 9-byte header — tag (1 byte), round or chunk id (u32 LE),
//! item count (u32 LE) — followed by bit-packed values ([`super::bits`]) and, for
//! correlations, the DPF keys. All openings of one round of one chunk travel as one
//! frame, so the header is amortised over the chunk.
//!
//! | tag | link | id | body |
//! |---|---|---|---|
//! | 1 input | client → server | chunk | lengths (u32 each), symbol shares in the chunk's position-major order |
//! | 2 correlations | dealer → server | round | mask shares, then point-function shares ([`share_len`]) |
//! | 3 openings | server → server | round | masked index shares |
//! | 4 output | server → client | chunk | output shares |
//! | 5 triples | dealer → server | round | Beaver triple shares (the seed's protocols) |
//!
//! Decoders check the tag, the id, the count and the exact length against what the
//! schedule expects, so a truncated, corrupted or misrouted frame is a clear error.

use super::ProtocolError;
use super::bits::{pack_into, pack_to_slice, packed_len, unpack};
use crate::transport::{Link, buffers};
use pmsm_kernels::Party;
use pmsm_kernels::dpf::{DpfError, DpfGroup, DpfKey, DpfKeyBatch, ReadWindow, table};
use std::marker::PhantomData;
use std::ops::Range;

/// Tag of a client input frame.
pub const TAG_INPUT: u8 = 1;
/// Tag of a dealer correlation frame.
pub const TAG_CORRELATIONS: u8 = 2;
/// Tag of a server opening frame.
pub const TAG_OPENINGS: u8 = 3;
/// Tag of a server output frame.
pub const TAG_OUTPUT: u8 = 4;
/// Tag of a dealer Beaver-triple frame (the seed's protocols).
pub const TAG_TRIPLES: u8 = 5;
/// Header bytes of every frame.
pub const HEADER: usize = 9;

/// One server's single-use correlations for a round: its shares of the masks `r` and
/// its DPF keys for the points `r`, one per lookup. Not `Clone`: consuming it
/// ([`RoundCorrelations::into_parts`]) moves it, so it cannot serve a second round:
///
/// ```compile_fail
/// # use pmsm_engine::protocol::wire::RoundCorrelations;
/// # use pmsm_kernels::dpf::BitLeaf;
/// fn twice(c: RoundCorrelations<BitLeaf>) {
///     let (masks, keys) = c.into_parts();
///     let again = c.into_parts(); // error[E0382]: use of moved value
/// }
/// ```
pub struct RoundCorrelations<G: DpfGroup> {
    masks: Vec<u64>,
    keys: EncodedKeys<G>,
}

impl<G: DpfGroup> std::fmt::Debug for RoundCorrelations<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RoundCorrelations({} lookups, <redacted>)", self.masks.len())
    }
}

impl<G: DpfGroup> RoundCorrelations<G> {
    /// The mask shares and the keys, consuming the correlations.
    pub fn into_parts(self) -> (Vec<u64>, EncodedKeys<G>) {
        (self.masks, self.keys)
    }
}

/// A round's DPF keys as the dealer's frame holds them, decoded and checked a group at a
/// time just before the group is expanded, so the decoded keys are still in L1 when the
/// expansion reads them. Decoding a whole round when it was opened (6 % of the DLP
/// benchmark's CPU) left its decoded keys, half again the size of their encoding, to be
/// read back from L3 up to a window of rounds later; decoding per group measured 1–3 %
/// faster end to end there. Not `Clone`, like the correlations it comes from.
pub struct EncodedKeys<G: DpfGroup> {
    frame: Vec<u8>,
    /// Where the first key starts in `frame`.
    at: usize,
    count: usize,
    width: u32,
    link: Link,
    /// The server the keys are for: every key must carry this party.
    party: Party,
    group: PhantomData<G>,
}

impl<G: DpfGroup> std::fmt::Debug for EncodedKeys<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedKeys({} keys over {} bits, <redacted>)", self.count, self.width)
    }
}

impl<G: DpfGroup> Drop for EncodedKeys<G> {
    fn drop(&mut self) {
        buffers::recycle(std::mem::take(&mut self.frame));
    }
}

impl<G: DpfGroup> EncodedKeys<G> {
    /// Keys in the round.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Bits of the domain the round's shares are over.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Whether the round has no keys.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The full-domain outputs of shares `range` (of the round's `len()`) into `out`
    /// (`range.len() ·` [`DpfKey::leaves_for`] leaves, share after share): DPF keys are
    /// decoded, checked and expanded (only as far as `window`'s outputs, if given);
    /// table shares ([`share_len`]) are read as they are. A malformed share, or a key
    /// for the other server, is a frame error on the dealer's link. (Table shares carry
    /// no party: each is a one-time pad, and the two add up alike either way round.)
    pub fn expand(
        &self,
        range: Range<usize>,
        out: &mut [G],
        window: Option<ReadWindow<'_>>,
    ) -> Result<(), ProtocolError> {
        let len = share_len::<G>(self.width);
        let bad = |detail: String| ProtocolError::Frame { link: self.link, detail };
        if range.start > range.end || range.end > self.count {
            return Err(bad(format!("keys {range:?} of a round of {}", self.count)));
        }
        let bytes = &self.frame[self.at + range.start * len..self.at + range.end * len];
        let malformed = |e: DpfError| bad(format!("key {}..: {e}", range.start));
        if table::table_len::<G>(self.width).is_some() {
            table::read_tables(bytes, range.len(), self.width, out).map_err(malformed)
        } else {
            let keys = DpfKeyBatch::decode(bytes, range.len(), self.width).map_err(malformed)?;
            if !keys.is_empty() && keys.party() != self.party {
                return Err(bad(format!(
                    "key {}..: the keys are server {}'s, and this is server {}",
                    range.start,
                    keys.party().index(),
                    self.party.index()
                )));
            }
            match window {
                Some(w) => Ok(keys.eval_read_range(0..range.len(), out, w)?),
                None => Ok(keys.eval_full_range(0..range.len(), out)?),
            }
        }
    }
}

fn header(tag: u8, id: u32, count: usize, body: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER + body);
    f.extend_from_slice(&header_bytes(tag, id, count));
    f
}

fn header_bytes(tag: u8, id: u32, count: usize) -> [u8; HEADER] {
    let mut h = [tag; HEADER];
    h[1..5].copy_from_slice(&id.to_le_bytes());
    h[5..].copy_from_slice(&(count as u32).to_le_bytes());
    h
}

/// Checks the header; returns the body.
fn body(
    frame: &[u8],
    link: Link,
    tag: u8,
    id: Option<u32>,
    count: Option<usize>,
) -> Result<(u32, usize, &[u8]), ProtocolError> {
    let bad = |detail: String| ProtocolError::Frame { link, detail };
    if frame.len() < HEADER {
        return Err(bad(format!("{} bytes is shorter than the {HEADER}-byte header", frame.len())));
    }
    if frame[0] != tag {
        return Err(bad(format!("tag {} where {tag} was expected", frame[0])));
    }
    let got_id = u32::from_le_bytes(frame[1..5].try_into().expect("4 bytes"));
    let got_count = u32::from_le_bytes(frame[5..9].try_into().expect("4 bytes")) as usize;
    if let Some(id) = id.filter(|id| *id != got_id) {
        return Err(bad(format!("frame for round/chunk {got_id} where {id} was expected")));
    }
    if let Some(count) = count.filter(|c| *c != got_count) {
        return Err(bad(format!("{got_count} items where {count} were expected")));
    }
    Ok((got_id, got_count, &frame[HEADER..]))
}

/// Client → server: the chunk's input lengths and symbol shares (`width` bits each).
pub fn encode_input(chunk: u32, lengths: &[u32], shares: &[u64], width: u32) -> Vec<u8> {
    let mut payload = Vec::with_capacity(packed_len(shares.len(), width));
    pack_into(shares, width, &mut payload);
    encode_input_payload(chunk, lengths, &payload)
}

/// Client → server: the chunk's input lengths and an opaque payload (symbol shares,
/// or DPF keys for the seed's optimised protocol).
pub fn encode_input_payload(chunk: u32, lengths: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut f = header(TAG_INPUT, chunk, lengths.len(), 4 * lengths.len() + payload.len());
    for l in lengths {
        f.extend_from_slice(&l.to_le_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// Decodes an input frame for `chunk`, whose lengths must equal `lengths`: one value of
/// `width` bits per symbol.
pub fn decode_input(
    frame: &[u8],
    link: Link,
    chunk: u32,
    lengths: &[u32],
    width: u32,
) -> Result<Vec<u64>, ProtocolError> {
    let total: usize = lengths.iter().map(|&l| l as usize).sum();
    decode_input_values(frame, link, chunk, lengths, width, total)
}

/// [`decode_input`] with an explicit value count.
pub fn decode_input_values(
    frame: &[u8],
    link: Link,
    chunk: u32,
    lengths: &[u32],
    width: u32,
    count: usize,
) -> Result<Vec<u64>, ProtocolError> {
    let rest = decode_input_payload(frame, link, chunk, lengths)?;
    unpack(rest, width, count).ok_or_else(|| ProtocolError::Frame {
        link,
        detail: "symbol shares have the wrong length or dirty padding".into(),
    })
}

/// Decodes an input frame's header and lengths; returns the payload.
pub fn decode_input_payload<'f>(
    frame: &'f [u8],
    link: Link,
    chunk: u32,
    lengths: &[u32],
) -> Result<&'f [u8], ProtocolError> {
    let (_, _, b) = body(frame, link, TAG_INPUT, Some(chunk), Some(lengths.len()))?;
    let bad = |detail: &str| ProtocolError::Frame { link, detail: detail.to_string() };
    let (lens, rest) =
        b.split_at_checked(4 * lengths.len()).ok_or_else(|| bad("input frame truncated in its lengths"))?;
    if lens.chunks_exact(4).zip(lengths).any(|(c, l)| u32::from_le_bytes(c.try_into().expect("4 bytes")) != *l) {
        return Err(bad("input lengths differ from the session's schedule"));
    }
    Ok(rest)
}

/// Dealer → server: Beaver triples for one round (`3·count` elements of `width` bits).
pub fn encode_triples(round: u32, count: usize, elements: &[u64], width: u32) -> Vec<u8> {
    packed_frame(TAG_TRIPLES, round, count, elements, width)
}

/// Decodes the triples of `round`: `3·count` elements.
pub fn decode_triples(
    frame: &[u8],
    link: Link,
    round: u32,
    count: usize,
    width: u32,
) -> Result<Vec<u64>, ProtocolError> {
    packed_values(frame, link, TAG_TRIPLES, round, count, 3 * count, width, "triples")
}

/// Checks a packed-values frame (tag, id, item count) and unpacks its `values` values.
#[allow(clippy::too_many_arguments)] // a frame's coordinates; grouping them would only rename them
fn packed_values(
    frame: &[u8],
    link: Link,
    tag: u8,
    id: u32,
    count: usize,
    values: usize,
    width: u32,
    what: &str,
) -> Result<Vec<u64>, ProtocolError> {
    let (_, _, b) = body(frame, link, tag, Some(id), Some(count))?;
    unpack(b, width, values)
        .ok_or_else(|| ProtocolError::Frame { link, detail: format!("{what} have the wrong length or dirty padding") })
}

/// Dealer → server: the round's mask shares (`width` bits each) and the encoded keys,
/// `key_len` bytes each, in the layout of [`correlation_frame`].
///
/// # Panics
/// If `keys` is not `masks.len() · key_len` bytes (a caller's sizing bug).
pub fn encode_correlations(round: u32, masks: &[u64], width: u32, keys: &[u8], key_len: usize) -> Vec<u8> {
    let mut f = correlation_frame(round, masks.len(), width, key_len);
    let (m, k) = correlation_regions(&mut f, masks.len(), width);
    pack_to_slice(masks, width, m);
    k.copy_from_slice(keys);
    f
}

/// An empty correlation frame for `round`: header, then `count` masks of `width` bits
/// and `count` keys of `key_len` bytes, zeroed; the dealer fills both regions in place
/// ([`correlation_regions`]). The buffer is a recycled one when the pool has one
/// ([`buffers`]); [`EncodedKeys`] gives it back when the server is done with it.
pub fn correlation_frame(round: u32, count: usize, width: u32, key_len: usize) -> Vec<u8> {
    let body = packed_len(count, width) + count * key_len;
    let mut f = buffers::zeroed(HEADER + body);
    f[..HEADER].copy_from_slice(&header_bytes(TAG_CORRELATIONS, round, count));
    f
}

/// The mask and key regions of a [`correlation_frame`] for `count` masks of `width`
/// bits.
pub fn correlation_regions(frame: &mut [u8], count: usize, width: u32) -> (&mut [u8], &mut [u8]) {
    frame[HEADER..].split_at_mut(packed_len(count, width))
}

/// Decodes server `party`'s correlations of `round`: `count` masks of `width` bits and
/// `count` keys over `width`-bit domains. The frame's header, length and masks are
/// checked here; each key (its party included) when its group is decoded
/// ([`EncodedKeys::expand`]).
pub fn decode_correlations<G: DpfGroup>(
    frame: Vec<u8>,
    link: Link,
    party: Party,
    round: u32,
    count: usize,
    width: u32,
) -> Result<RoundCorrelations<G>, ProtocolError> {
    let (_, _, b) = body(&frame, link, TAG_CORRELATIONS, Some(round), Some(count))?;
    let bad = |detail: String| ProtocolError::Frame { link, detail };
    let key_len = share_len::<G>(width);
    let mask_len = packed_len(count, width);
    if b.len() != mask_len + count * key_len {
        return Err(bad(format!(
            "correlation frame body is {} bytes, expected {}",
            b.len(),
            mask_len + count * key_len
        )));
    }
    let masks = unpack(&b[..mask_len], width, count).ok_or_else(|| bad("mask shares have dirty padding".into()))?;
    let at = HEADER + mask_len;
    Ok(RoundCorrelations { masks, keys: EncodedKeys { frame, at, count, width, link, party, group: PhantomData } })
}

/// Bytes of one lookup's point-function share for one server over `width` bits: a
/// whole table where that is no larger than a DPF key (the class lookups of a machine
/// with symbol classes; [`table`]), else the key.
pub fn share_len<G: DpfGroup>(width: u32) -> usize {
    table::table_len::<G>(width).unwrap_or_else(|| DpfKey::<G>::encoded_len(width))
}

/// Bytes of one correlation (mask share and key) for one server, over `width` bits.
pub fn correlation_bytes(protocol: super::Protocol, width: u32) -> u64 {
    let key = match protocol {
        super::Protocol::LookupRing => share_len::<pmsm_kernels::dpf::RingLeaf>(width),
        _ => share_len::<pmsm_kernels::dpf::BitLeaf>(width),
    };
    (key + packed_len(1, width)) as u64
}

/// A frame of `count` items whose body is `values` packed at `width` bits.
fn packed_frame(tag: u8, id: u32, count: usize, values: &[u64], width: u32) -> Vec<u8> {
    let mut f = header(tag, id, count, packed_len(values.len(), width));
    pack_into(values, width, &mut f);
    f
}

/// Server → server: one round's openings.
pub fn encode_openings(round: u32, values: &[u64], width: u32) -> Vec<u8> {
    packed_frame(TAG_OPENINGS, round, values.len(), values, width)
}

/// Decodes the peer's openings of `round`.
pub fn decode_openings(
    frame: &[u8],
    link: Link,
    round: u32,
    count: usize,
    width: u32,
) -> Result<Vec<u64>, ProtocolError> {
    packed_values(frame, link, TAG_OPENINGS, round, count, count, width, "openings")
}

/// Server → client: a chunk's output shares.
pub fn encode_output(chunk: u32, values: &[u64], width: u32) -> Vec<u8> {
    packed_frame(TAG_OUTPUT, chunk, values.len(), values, width)
}

/// Decodes an output frame; returns the chunk it is for and its shares. `expected`
/// gives the instance count of every chunk.
pub fn decode_output(
    frame: &[u8],
    link: Link,
    expected: &[usize],
    width: u32,
) -> Result<(usize, Vec<u64>), ProtocolError> {
    let (chunk, count, b) = body(frame, link, TAG_OUTPUT, None, None)?;
    let bad = |detail: String| ProtocolError::Frame { link, detail };
    let want = *expected.get(chunk as usize).ok_or_else(|| bad(format!("output for unknown chunk {chunk}")))?;
    if count != want {
        return Err(bad(format!("{count} outputs for chunk {chunk}, expected {want}")));
    }
    let values =
        unpack(b, width, count).ok_or_else(|| bad("output shares have the wrong length or dirty padding".into()))?;
    Ok((chunk as usize, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmsm_kernels::dpf::{BitLeaf, Dpf};
    use pmsm_kernels::rng::SecretRng;

    /// A server expands only keys that carry its own party: server 1's keys on server
    /// 0's link are a frame error naming both, before anything is expanded.
    #[test]
    fn a_server_refuses_the_other_servers_keys() {
        let bits = 12;
        let points: Vec<(u64, bool)> = (0..5).map(|i| (i * 811, true)).collect();
        let keys = Dpf::<BitLeaf>::keygen_batch(bits, &points, &mut SecretRng::from_os()).unwrap();
        let len = DpfKey::<BitLeaf>::encoded_len(bits);
        let masks = [0u64; 5];
        let expand = |b: usize, party: Party| {
            let bytes: Vec<u8> = keys.iter().flat_map(|k| k[b].to_bytes()).collect();
            let frame = encode_correlations(7, &masks, bits, &bytes, len);
            let (_, enc) = decode_correlations::<BitLeaf>(frame, Link::DealerToS0, party, 7, 5, bits)
                .expect("the frame itself is well formed")
                .into_parts();
            let mut out = vec![BitLeaf::default(); 3 * DpfKey::<BitLeaf>::leaves_for(bits)];
            enc.expand(2..5, &mut out, None).map(|()| out)
        };
        assert!(expand(0, Party::P0).is_ok() && expand(1, Party::P1).is_ok());
        let e = expand(1, Party::P0).unwrap_err().to_string();
        assert_eq!(e, "bad frame on dealer_to_s0: key 2..: the keys are server 1's, and this is server 0");
        let e = expand(0, Party::P1).unwrap_err().to_string();
        assert!(e.ends_with("the keys are server 0's, and this is server 1"), "{e}");
    }

    #[test]
    fn openings_cost_exactly_their_bits_plus_the_header() {
        let f = encode_openings(7, &vec![0x3ffff; 1000], 18);
        assert_eq!(f.len(), HEADER + 1000 * 18 / 8);
        assert_eq!(decode_openings(&f, Link::S0ToS1, 7, 1000, 18).unwrap(), vec![0x3ffff; 1000]);
    }

    #[test]
    fn decoders_reject_broken_frames() {
        let l = Link::S0ToS1;
        let f = encode_openings(3, &[1, 2, 3], 5);
        let err = |r: Result<Vec<u64>, ProtocolError>| r.unwrap_err().to_string();
        assert!(err(decode_openings(&f[..4], l, 3, 3, 5)).contains("shorter than the 9-byte header"));
        assert!(err(decode_openings(&f, l, 4, 3, 5)).contains("frame for round/chunk 3 where 4 was expected"));
        assert!(err(decode_openings(&f, l, 3, 2, 5)).contains("3 items where 2 were expected"));
        assert!(err(decode_openings(&f[..f.len() - 1], l, 3, 3, 5)).contains("wrong length"));
        let mut g = f.clone();
        g[0] = TAG_OUTPUT;
        assert!(err(decode_openings(&g, l, 3, 3, 5)).contains("tag 4 where 3 was expected"));
        let i = encode_input(0, &[2, 1], &[1, 0, 1], 1);
        assert!(decode_input(&i, Link::ClientToS0, 0, &[2, 1], 1).is_ok());
        assert!(
            decode_input(&i, Link::ClientToS0, 0, &[1, 2], 1)
                .unwrap_err()
                .to_string()
                .contains("differ from the session")
        );
        let o = encode_output(5, &[1], 1);
        assert!(decode_output(&o, Link::S0ToClient, &[1, 1], 1).unwrap_err().to_string().contains("unknown chunk 5"));
    }
}
