//! A server: receives the client's symbol shares and the dealer's correlations, runs
//! every round of the schedule with its peer, and sends its output shares.
//!
//! The server opens rounds in schedule order, up to a window of rounds ahead of the
//! oldest unfinished one, and finishes them in that order as the peer's openings arrive;
//! as soon as a chunk's round is done, that chunk's next openings leave, so they are in
//! flight while the server computes other chunks. Key expansion and the table read
//! happen per group of instances whose expansions fill a 64 KiB buffer.

use super::sharing::Sharing;
use crate::protocol::ProtocolError;
use crate::protocol::bits::low_mask;
use crate::protocol::plan::{RoundKind, Schedule, Table};
use crate::protocol::set::{Level, SetPlan};
use crate::protocol::wire::{
    EncodedKeys, RoundCorrelations, decode_correlations, decode_input, decode_openings, encode_openings, encode_output,
};
use crate::transport::{BoxRx, BoxTx, ServerEnds};
use pmsm_kernels::Party;
use pmsm_kernels::dpf::{DpfKey, ReadWindow};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A round whose openings are sent: its index in the schedule, this server's openings,
/// the keys still to expand, and when the openings left.
type Pending<G> = (usize, Vec<u64>, EncodedKeys<G>, Instant);

/// Leaves expanded per group for small trees (32 KiB of 16-byte leaves).
const GROUP_LEAVES: usize = 2048;
/// Large trees are still expanded at least this many at a time (within
/// [`GROUP_MAX_LEAVES`]), so the bit-sliced table is read once per group.
const GROUP_MIN_KEYS: usize = 8;
/// Cap on one group's buffer: 2^16 leaves (1 MiB).
const GROUP_MAX_LEAVES: usize = 1 << 16;

/// One server's output shares of `T[i]` for every lookup of a round. Keys are decoded
/// a group at a time, just before the group's expansion.
fn lookup_all<S: Sharing>(table: &Table, keys: &EncodedKeys<S::Leaf>, u: &[u64]) -> Result<Vec<u64>, ProtocolError> {
    let mut out = vec![0u64; keys.len()];
    lookup_range::<S>(table, keys, 0..keys.len(), u, &mut out)?;
    Ok(out)
}

/// [`lookup_all`] over the keys `range` of a frame (one per entry of `u`, written to
/// `out`): the service's pools hand a wave the part of a dealer frame it consumes.
pub(crate) fn lookup_range<S: Sharing>(
    table: &Table,
    keys: &EncodedKeys<S::Leaf>,
    range: std::ops::Range<usize>,
    u: &[u64],
    out: &mut [u64],
) -> Result<(), ProtocolError> {
    debug_assert!(range.len() == u.len() && u.len() == out.len());
    if range.is_empty() {
        return Ok(());
    }
    let leaves = DpfKey::<S::Leaf>::leaves_for(table.domain_bits());
    let group = (GROUP_LEAVES / leaves).max(GROUP_MIN_KEYS.min(GROUP_MAX_LEAVES / leaves)).max(1);
    let mut buf = vec![<S::Leaf as Default>::default(); group.min(range.len()) * leaves];
    for (g, (us, o)) in u.chunks(group).zip(out.chunks_mut(group)).enumerate() {
        let buf = &mut buf[..us.len() * leaves];
        let window = table.read_outputs().map(|live| ReadWindow { masks: us, live });
        let from = range.start + g * group;
        keys.expand(from..from + us.len(), buf, window)?;
        S::lookup_batch(table, buf, us, o);
    }
    Ok(())
}

/// Opening a round: its correlations from the dealer, this server's masked index
/// shares to the peer.
struct Openings<'a> {
    party: Party,
    plan: &'a SetPlan,
    schedule: &'a Schedule,
    from_dealer: &'a mut BoxRx,
    to_peer: &'a mut BoxTx,
}

/// One server's shares of a chunk's values as its rounds advance.
struct ChunkShares {
    /// The client's symbol shares, in the chunk's symbol order: read by every machine.
    /// Held as u32 until their rounds come (shares are at most 32 bits wide: `ka`, or
    /// `n` for the ring without classes): 4 bytes per waiting symbol.
    syms: Vec<u32>,
    /// Per machine: its state shares.
    state: Vec<Vec<u64>>,
    /// Per machine with classes: where its current block of class shares starts in the
    /// symbol list, and the block.
    classes: Vec<(usize, Vec<u32>)>,
    /// Per machine: its output shares once its output round is done.
    outputs: Vec<Vec<u64>>,
    /// The values of the combination: `values[0]` the machines' outputs (machine-major),
    /// `values[l + 1]` what level `l` produced (node-major), once complete.
    values: Vec<Vec<u64>>,
}

impl ChunkShares {
    /// The machines' outputs side by side once every machine has one (the state of a
    /// machine released as its state), then every local level that follows.
    fn advance<S: Sharing>(&mut self, plan: &SetPlan) {
        if self.values.is_empty() {
            if self.outputs.iter().zip(&plan.groups).any(|(o, g)| g.accept.is_some() && o.is_empty()) {
                return;
            }
            let all = self
                .outputs
                .iter()
                .zip(&self.state)
                .flat_map(|(o, st)| if o.is_empty() { st.iter() } else { o.iter() })
                .copied()
                .collect();
            self.values.push(all);
        }
        let per = self.state[0].len();
        local_levels::<S>(plan, &mut self.values, per);
    }

    /// Index shares of combination level `l`'s nodes.
    fn combine_index<S: Sharing>(&self, plan: &SetPlan, l: usize) -> Vec<u64> {
        level_index::<S>(&plan.levels[l], &self.values[l], self.state[0].len())
    }
}

/// Runs every level that adds its children's shares locally (no round) next in
/// `values` (`values[l]` what level `l − 1` produced, `per` instances a value,
/// node-major).
pub(crate) fn local_levels<S: Sharing>(plan: &SetPlan, values: &mut Vec<Vec<u64>>, per: usize) {
    while let Some(level) = plan.levels.get(values.len() - 1).filter(|l| l.table.is_none()) {
        let below = &values[values.len() - 1];
        let mut sums = vec![0u64; per * level.nodes.len()];
        for (n, children) in level.nodes.iter().enumerate() {
            for &c in children {
                for k in 0..per {
                    sums[n * per + k] = S::add(sums[n * per + k], below[c * per + k]);
                }
            }
        }
        values.push(sums);
    }
}

/// Index shares of a combination level's nodes over the values `below` it (`per`
/// instances a value): the children's shares side by side (XOR shares of a
/// concatenation are the concatenated shares; additive shares of it the shifted sums,
/// as no field overflows its width).
pub(crate) fn level_index<S: Sharing>(level: &Level, below: &[u64], per: usize) -> Vec<u64> {
    let mut out = vec![0u64; per * level.nodes.len()];
    for (n, children) in level.nodes.iter().enumerate() {
        for (i, &c) in children.iter().enumerate() {
            let shift = i as u32 * level.field_bits;
            for k in 0..per {
                out[n * per + k] = S::add(out[n * per + k], below[c * per + k] << shift);
            }
        }
    }
    out
}

impl Openings<'_> {
    /// Opens round `r` over the current shares; returns it pending.
    fn open<S: Sharing>(&mut self, r: usize, shares: &[ChunkShares]) -> Result<Pending<S::Leaf>, ProtocolError> {
        let round = &self.schedule.rounds[r];
        let width = self.plan.table(round.group, round.kind).domain_bits();
        let link = self.from_dealer.link();
        let corrs: RoundCorrelations<S::Leaf> =
            decode_correlations(self.from_dealer.recv()?, link, self.party, round.id, round.count, width)?;
        let (c, g, chunk) = (round.chunk, round.group, &self.schedule.chunks[round.chunk]);
        let sh = &shares[c];
        let index: Cow<'_, [u64]> = match round.kind {
            RoundKind::Class { from, to } => sh.syms[chunk.span(from, to)].iter().map(|&a| u64::from(a)).collect(),
            RoundKind::Step(t) => {
                let (at, kx) = (chunk.start(t), self.plan.groups[g].kx());
                let now = match self.plan.groups[g].classes {
                    Some(_) => &sh.classes[g].1[at - sh.classes[g].0..][..round.count],
                    None => &sh.syms[at..at + round.count],
                };
                sh.state[g].iter().zip(now).map(|(&s, &x)| S::index(s, u64::from(x), kx)).collect()
            }
            RoundKind::Accept => Cow::Borrowed(&sh.state[g]),
            RoundKind::Combine(l) => Cow::Owned(sh.combine_index::<S>(self.plan, l)),
        };
        let (masks, keys) = corrs.into_parts();
        let open: Vec<u64> = masks.iter().zip(index.iter()).map(|(m, i)| S::open(*i, *m, width)).collect();
        self.to_peer.send(encode_openings(round.id, &open, width))?;
        Ok((r, open, keys, Instant::now()))
    }
}

/// Rounds in flight at most (see `run_server`): 16 chunks' openings cover the exchange
/// and the peer's jitter here; measured against 4, 8, 32 and a whole wave at batch 10^3,
/// 10^4 and 10^6 (a whole wave loses 25 % at 10^6 × 4, where the first wave is a
/// quarter of the work and the servers would wait for the dealer through all of it).
const WINDOW: usize = 16;

/// What a server measured about its run.
#[derive(Clone, Debug, Default)]
pub struct ServerStats {
    /// Per round: seconds from sending this server's openings to finishing the round's
    /// lookups (waiting for the peer included).
    pub round_seconds: Vec<f64>,
}

/// The median and 99th percentile (nearest rank) of per-round seconds, in
/// milliseconds; `None` without rounds.
pub fn round_latency_ms(round_seconds: &[f64]) -> [Option<f64>; 2] {
    let mut sorted = round_seconds.to_vec();
    sorted.sort_by(f64::total_cmp);
    [0.5, 0.99].map(|p| (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * p).round() as usize] * 1e3))
}

/// Runs server `party` for a whole schedule: every machine of the plan over the same
/// symbol shares. `progress`, if given, is incremented as rounds finish.
pub fn run_server<S: Sharing>(
    party: Party,
    plan: &SetPlan,
    schedule: &Schedule,
    ends: ServerEnds,
    progress: Option<&AtomicU64>,
) -> Result<ServerStats, ProtocolError> {
    let mut stats = ServerStats { round_seconds: Vec::with_capacity(schedule.rounds.len()) };
    let ServerEnds { mut from_client, mut from_dealer, mut to_peer, mut from_peer, mut to_client } = ends;
    let chunks = &schedule.chunks;
    let groups = plan.groups.len();
    let mut shares = Vec::with_capacity(chunks.len());
    for (c, chunk) in chunks.iter().enumerate() {
        let frame = from_client.recv()?;
        let syms = decode_input(&frame, from_client.link(), c as u32, &chunk.lengths, plan.symbol_share_bits())?;
        let n = chunk.instances.len();
        shares.push(ChunkShares {
            syms: syms.into_iter().map(|v| v as u32).collect(),
            state: plan.groups.iter().map(|g| vec![S::init(party, g.start); n]).collect(),
            classes: vec![(0, Vec::new()); groups],
            outputs: vec![Vec::new(); groups],
            values: Vec::new(),
        });
    }
    let out_width = plan.out_bits;
    let released = |sh: &mut ChunkShares| -> Vec<u64> {
        sh.advance::<S>(plan);
        let v = sh.values.last().expect("the outputs are complete");
        v.iter().map(|x| x & low_mask(out_width)).collect()
    };
    for c in (0..chunks.len()).filter(|&c| !schedule.has_rounds[c]) {
        to_client.send(encode_output(c as u32, &released(&mut shares[c]), out_width))?;
    }
    // Rounds are opened in schedule order (the order the dealer's correlations arrive),
    // at most WINDOW ahead of the oldest unfinished one, and only once the rounds they
    // read are done: the same machine's previous round of the chunk, and for a
    // combination round every round of the chunk before it. So a chunk's next openings
    // leave as soon as its round is finished, in flight while this server computes other
    // chunks and machines, and the lookups start after WINDOW openings instead of after a
    // whole first wave.
    let n = schedule.rounds.len();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut last_of_lane: Vec<Vec<Option<usize>>> = vec![vec![None; groups + 1]; chunks.len()];
    for (r, round) in schedule.rounds.iter().enumerate() {
        let lanes = &mut last_of_lane[round.chunk];
        match round.kind {
            RoundKind::Combine(_) => {
                after[r] = lanes.iter().flatten().copied().collect();
                lanes[groups] = Some(r);
            }
            _ => after[r].extend(lanes[round.group].replace(r)),
        }
    }
    let mut done = vec![false; n];
    let (mut cursor, mut finished) = (0usize, 0usize);
    let mut io = Openings { party, plan, schedule, from_dealer: &mut from_dealer, to_peer: &mut to_peer };
    let mut pending: VecDeque<Pending<S::Leaf>> = VecDeque::with_capacity(WINDOW);
    loop {
        while cursor < n && cursor < finished + WINDOW && after[cursor].iter().all(|&p| done[p]) {
            pending.push_back(io.open::<S>(cursor, &shares)?);
            cursor += 1;
        }
        let Some((r, open, keys, sent)) = pending.pop_front() else { break };
        let round = &schedule.rounds[r];
        let table = plan.table(round.group, round.kind);
        let width = table.domain_bits();
        let peer = decode_openings(&from_peer.recv()?, from_peer.link(), round.id, round.count, width)?;
        let u: Vec<u64> = open.iter().zip(&peer).map(|(m, p)| S::combine(*m, *p, width)).collect();
        let out = lookup_all::<S>(table, &keys, &u)?;
        let (c, g) = (round.chunk, round.group);
        let sh = &mut shares[c];
        match round.kind {
            RoundKind::Class { from, to } => {
                let span = schedule.chunks[c].span(from, to);
                sh.classes[g] = (span.start, out.into_iter().map(|x| x as u32).collect());
            }
            RoundKind::Step(_) => sh.state[g][..out.len()].copy_from_slice(&out),
            RoundKind::Accept => {
                sh.outputs[g] = out;
                sh.advance::<S>(plan);
            }
            RoundKind::Combine(_) => {
                sh.values.push(out);
                sh.advance::<S>(plan);
            }
        }
        stats.round_seconds.push(sent.elapsed().as_secs_f64());
        if let Some(p) = progress {
            p.fetch_add(1, Ordering::Relaxed);
        }
        done[r] = true;
        finished += 1;
        if round.last {
            to_client.send(encode_output(c as u32, &released(sh), out_width))?;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::party::sharing::Xor;
    use crate::protocol::wire::{correlation_frame, correlation_regions};
    use pmsm_kernels::dpf::{BitLeaf, Dpf};
    use pmsm_kernels::rng::SecretRng;

    #[test]
    fn round_latency_is_the_nearest_rank_in_ms() {
        assert_eq!(round_latency_ms(&[]), [None, None]);
        let secs: Vec<f64> = (1..=101).rev().map(|i| f64::from(i) / 1000.0).collect();
        assert_eq!(round_latency_ms(&secs), [Some(51.0), Some(100.0)]);
    }

    /// Server `b`'s keys in a correlation frame over `bits`, after `corrupt` has had a go
    /// at the key region, decoded as a server receives them.
    fn encoded_keys(
        keys: &[[DpfKey<BitLeaf>; 2]],
        b: usize,
        bits: u32,
        corrupt: &dyn Fn(&mut [u8]),
    ) -> EncodedKeys<BitLeaf> {
        let len = DpfKey::<BitLeaf>::encoded_len(bits);
        let mut frame = correlation_frame(0, keys.len(), bits, len);
        let (_, region) = correlation_regions(&mut frame, keys.len(), bits);
        for (k, r) in keys.iter().zip(region.chunks_exact_mut(len)) {
            r.copy_from_slice(&k[b].to_bytes());
        }
        corrupt(region);
        let link = [crate::transport::Link::DealerToS0, crate::transport::Link::DealerToS1][b];
        let party = Party::BOTH[b];
        decode_correlations::<BitLeaf>(frame, link, party, 0, keys.len(), bits).unwrap().into_parts().1
    }

    #[test]
    fn lookup_all_reads_the_table_at_the_masked_point() {
        let table = Table::build(crate::protocol::Protocol::LookupXor, 10, 4, |j| (j as u64 * 7) % 16);
        let mut rng = SecretRng::from_seed([1; 32]);
        let points: Vec<(u64, bool)> = (0..300u64).map(|i| ((i * 97) % 1024, true)).collect();
        let keys = Dpf::<BitLeaf>::keygen_batch(10, &points, &mut rng).unwrap();
        let (k0, k1) = (encoded_keys(&keys, 0, 10, &|_| ()), encoded_keys(&keys, 1, 10, &|_| ()));
        let u: Vec<u64> = (0..300u64).map(|i| (i * 31) % 1024).collect();
        let y0 = lookup_all::<Xor>(&table, &k0, &u).unwrap();
        let y1 = lookup_all::<Xor>(&table, &k1, &u).unwrap();
        for i in 0..300 {
            let j = (points[i].0 ^ u[i]) as usize;
            assert_eq!(y0[i] ^ y1[i], (j as u64 * 7) % 16, "instance {i}");
        }
        // A key whose root control bit is flipped is refused when its group is decoded.
        let len = DpfKey::<BitLeaf>::encoded_len(10);
        let bad = encoded_keys(&keys, 0, 10, &|region| region[len * 123 + 4] ^= 1);
        let e = lookup_all::<Xor>(&table, &bad, &u).unwrap_err().to_string();
        assert!(e.starts_with("bad frame on dealer_to_s0: key 0..: ") && e.contains("control bit"), "{e}");
    }

    #[test]
    fn lookups_over_a_zero_tail_expand_only_what_they_read_and_stay_right() {
        // Entries from 3,000 on are zero (padding states): the read reaches 6 of 16
        // 512-bit blocks under each mask, so the expansions skip half their fan-out.
        let bits = 13;
        let f = |j: usize| if j < 3000 { (j as u64 * 5 + 1) % 8 } else { 0 };
        let table = Table::build(crate::protocol::Protocol::LookupXor, bits, 3, f);
        assert_eq!(table.read_outputs(), Some(3072));
        let mut rng = SecretRng::from_seed([2; 32]);
        let n = 200usize;
        let points: Vec<(u64, bool)> = (0..n as u64).map(|i| ((i * 2477) % (1 << bits), true)).collect();
        let u: Vec<u64> = (0..n as u64).map(|i| (i * 6151 + 11) % (1 << bits)).collect();
        let keys = Dpf::<BitLeaf>::keygen_batch(bits, &points, &mut rng).unwrap();
        let y: Vec<Vec<u64>> =
            (0..2).map(|b| lookup_all::<Xor>(&table, &encoded_keys(&keys, b, bits, &|_| ()), &u).unwrap()).collect();
        for i in 0..n {
            assert_eq!(y[0][i] ^ y[1][i], f((points[i].0 ^ u[i]) as usize), "instance {i}");
        }
    }
}
