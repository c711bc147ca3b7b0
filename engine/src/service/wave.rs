//! A wave's plan: what the leader (server 0) tells the follower (server 1) about one
//! wave of lookups, sent with the leader's openings in one frame.
//!
//! ```text
//! header (tag 6, wave id, lookups) | lane u16 | kind u8 (bit 7: a checkpoint; bit 6: the leader's store is short of room) | epoch u64 | first u64 |
//! entries (varint) | drops (varint) | per entry: slot delta (varint) [, count (varint) for class and combine waves] |
//! drop slot deltas (varint) | the leader's openings, packed at the lookup width
//! ```
//!
//! Everything in a plan is what both servers see anyway (DESIGN §9): which sessions
//! step, how many symbols they classify, and the correlation numbers; the openings are
//! masked by fresh correlations. Slots are listed in increasing order as deltas, so a
//! wave of consecutive sessions costs about one byte per session.

use crate::protocol::ProtocolError;
use crate::protocol::bits::{pack_into, packed_len, unpack};
use crate::protocol::wire::HEADER;
use crate::transport::Link;

/// Tag of a wave plan frame.
pub const TAG_PLAN: u8 = 6;

/// Most lookups in one wave (a bound on what a decoder allocates).
pub const MAX_WAVE_LOOKUPS: usize = 1 << 20;

/// What a wave looks up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WaveKind {
    /// Symbol → class, for the next `count` unclassified symbols of each session.
    Class,
    /// One transition of each session.
    Step,
    /// `[s ∈ F]` (or a group's output) of each session's current state, for its oldest
    /// release.
    Accept,
    /// One level of a set's combination: `count` nodes of each set session, over the
    /// outputs of its oldest release still being combined.
    Combine,
}

impl WaveKind {
    fn code(self) -> u8 {
        match self {
            WaveKind::Class => 0,
            WaveKind::Step => 1,
            WaveKind::Accept => 2,
            WaveKind::Combine => 3,
        }
    }
    fn from_code(c: u8) -> Option<WaveKind> {
        [WaveKind::Class, WaveKind::Step, WaveKind::Accept, WaveKind::Combine].into_iter().find(|k| k.code() == c)
    }
    /// Whether an entry carries its count of lookups (else one).
    fn counted(self) -> bool {
        matches!(self, WaveKind::Class | WaveKind::Combine)
    }
}

/// One wave's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WavePlan {
    /// The wave's number (consecutive from 0 on a leader–follower link).
    pub wave: u32,
    /// Which lane ([`super::Lane`]: index in the servers' shared list).
    pub lane: u16,
    /// What is looked up.
    pub kind: WaveKind,
    /// The epoch of the correlation pool the wave draws from.
    pub epoch: u64,
    /// Number of the wave's first correlation in that pool.
    pub first: u64,
    /// `(slot, lookups)` per session, slots increasing; lookups is 1 but for class and
    /// combine waves.
    pub entries: Vec<(u64, u32)>,
    /// Sessions the leader has forgotten (closed or evicted), slots increasing; the
    /// follower forgets them too.
    pub drops: Vec<u64>,
    /// A checkpoint (servers with session stores; a plan of no lookups): each server
    /// commits its sessions as every wave before this one left them.
    pub checkpoint: bool,
    /// The leader's session store is short of disk room: the follower, which takes
    /// every push first, refuses new pushes for both (so none reaches one server only).
    pub short: bool,
}

impl WavePlan {
    /// Lookups in the wave.
    pub fn lookups(&self) -> usize {
        self.entries.iter().map(|e| e.1 as usize).sum()
    }

    /// The frame: this plan and the leader's `openings` at `width` bits.
    ///
    /// # Panics
    /// If the entries or drops are not in increasing slot order, or the openings are not
    /// one per lookup (caller bugs).
    pub fn encode(&self, openings: &[u64], width: u32) -> Vec<u8> {
        assert_eq!(openings.len(), self.lookups(), "one opening per lookup");
        let mut f = Vec::with_capacity(HEADER + 24 + self.entries.len() * 2 + packed_len(openings.len(), width));
        f.push(TAG_PLAN);
        f.extend_from_slice(&self.wave.to_le_bytes());
        f.extend_from_slice(&(openings.len() as u32).to_le_bytes());
        f.extend_from_slice(&self.lane.to_le_bytes());
        f.push(self.kind.code() | if self.checkpoint { 0x80 } else { 0 } | if self.short { 0x40 } else { 0 });
        f.extend_from_slice(&self.epoch.to_le_bytes());
        f.extend_from_slice(&self.first.to_le_bytes());
        varint(&mut f, self.entries.len() as u64);
        varint(&mut f, self.drops.len() as u64);
        let mut prev = None;
        for &(slot, count) in &self.entries {
            varint(&mut f, delta(prev, slot));
            prev = Some(slot);
            if self.kind.counted() {
                varint(&mut f, u64::from(count));
            }
        }
        let mut prev = None;
        for &slot in &self.drops {
            varint(&mut f, delta(prev, slot));
            prev = Some(slot);
        }
        pack_into(openings, width, &mut f);
        f
    }

    /// Decodes a plan frame expected to be wave `wave`; returns the plan and the
    /// leader's openings, unpacked at the width `width_of(lane, kind)` gives (or an
    /// error naming an unknown lane). Every field is checked: a truncated,
    /// reordered or oversized plan is a clear error on `link`.
    pub fn decode(
        frame: &[u8],
        link: Link,
        wave: u32,
        width_of: impl Fn(u16, WaveKind) -> Option<u32>,
    ) -> Result<(WavePlan, Vec<u64>), ProtocolError> {
        let bad = |detail: String| ProtocolError::Frame { link, detail };
        let mut r = Reader { b: frame, at: 0 };
        let short = || bad(format!("plan of {} bytes is truncated", frame.len()));
        let tag = r.bytes(1).ok_or_else(short)?[0];
        if tag != TAG_PLAN {
            return Err(bad(format!("tag {tag} where {TAG_PLAN} (a wave plan) was expected")));
        }
        let got = r.u32().ok_or_else(short)?;
        if got != wave {
            return Err(bad(format!("plan for wave {got} where {wave} was expected")));
        }
        let lookups = r.u32().ok_or_else(short)? as usize;
        if lookups > MAX_WAVE_LOOKUPS {
            return Err(bad(format!("{lookups} lookups in one wave; at most {MAX_WAVE_LOOKUPS}")));
        }
        let lane = u16::from_le_bytes(r.bytes(2).ok_or_else(short)?.try_into().expect("2 bytes"));
        let code = r.bytes(1).ok_or_else(short)?[0];
        let (checkpoint, short_of_room) = (code & 0x80 != 0, code & 0x40 != 0);
        let kind = WaveKind::from_code(code & 0x3f).ok_or_else(|| bad(format!("unknown wave kind {code}")))?;
        if checkpoint && lookups > 0 {
            return Err(bad(format!("a checkpoint with {lookups} lookups (it has none)")));
        }
        let width = width_of(lane, kind)
            .ok_or_else(|| bad(format!("plan names lane {lane}, which has no {kind:?} lookups")))?;
        let epoch = r.u64().ok_or_else(short)?;
        let first = r.u64().ok_or_else(short)?;
        let (n, d) = (r.varint().ok_or_else(short)?, r.varint().ok_or_else(short)?);
        if n > lookups as u64 || d > MAX_WAVE_LOOKUPS as u64 {
            return Err(bad(format!("{n} entries and {d} drops for {lookups} lookups")));
        }
        let mut entries = Vec::with_capacity(n as usize);
        let mut prev: Option<u64> = None;
        let next_slot = |r: &mut Reader<'_>, prev: &mut Option<u64>| -> Result<u64, ProtocolError> {
            let dl = r.varint().ok_or_else(short)?;
            let slot = match *prev {
                None => dl,
                Some(p) => {
                    p.checked_add(dl).filter(|_| dl > 0).ok_or_else(|| bad("slots are not increasing".into()))?
                }
            };
            *prev = Some(slot);
            Ok(slot)
        };
        for _ in 0..n {
            let slot = next_slot(&mut r, &mut prev)?;
            let count = if kind.counted() { r.varint().ok_or_else(short)? } else { 1 };
            if count == 0 || count > lookups as u64 {
                return Err(bad(format!("session slot {slot}: {count} lookups")));
            }
            entries.push((slot, count as u32));
        }
        let mut drops = Vec::with_capacity(d as usize);
        let mut prev = None;
        for _ in 0..d {
            drops.push(next_slot(&mut r, &mut prev)?);
        }
        let plan = WavePlan { wave, lane, kind, epoch, first, entries, drops, checkpoint, short: short_of_room };
        if plan.lookups() != lookups {
            return Err(bad(format!("entries hold {} lookups, the header says {lookups}", plan.lookups())));
        }
        let rest = &frame[r.at..];
        let openings = unpack(rest, width, lookups)
            .ok_or_else(|| bad(format!("openings of {} bytes for {lookups} lookups of {width} bits", rest.len())))?;
        Ok((plan, openings))
    }
}

fn delta(prev: Option<u64>, slot: u64) -> u64 {
    match prev {
        None => slot,
        Some(p) => {
            assert!(slot > p, "plan slots must increase");
            slot - p
        }
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    /// LEB128, at most 10 bytes and no bits past 64.
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let byte = self.bytes(1)?[0];
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return None;
            }
            v |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kind: WaveKind) -> WavePlan {
        WavePlan {
            wave: 9,
            lane: 1,
            kind,
            epoch: 0xdead_beef,
            first: 5000,
            entries: vec![(3, 2), (4, 1), (300, 4), (u64::MAX, 1)],
            drops: vec![0, 2, 1 << 40],
            checkpoint: false,
            short: false,
        }
    }

    #[test]
    fn plans_round_trip_with_their_openings() {
        let width_of = |m: u16, _| (m == 1).then_some(13);
        for kind in [WaveKind::Class, WaveKind::Step, WaveKind::Combine] {
            let mut p = plan(kind);
            if !kind.counted() {
                p.entries.iter_mut().for_each(|e| e.1 = 1);
            }
            let open: Vec<u64> = (0..p.lookups() as u64).map(|i| (i * 977) % 8192).collect();
            let f = p.encode(&open, 13);
            assert_eq!(WavePlan::decode(&f, Link::S0ToS1, 9, width_of).unwrap(), (p.clone(), open));
            // Consecutive slots cost a byte each (and a byte for a small class count).
            let consecutive = WavePlan { entries: (100..1100).map(|s| (s, 1)).collect(), drops: vec![], ..p.clone() };
            let f2 = consecutive.encode(&vec![0; 1000], 13);
            let per_entry = if kind.counted() { 2 } else { 1 };
            assert_eq!(f2.len(), HEADER + 19 + 2 + 2 + per_entry * 1000 - 1 + packed_len(1000, 13));
        }
    }

    #[test]
    fn broken_plans_are_refused_with_the_reason() {
        let width_of = |m: u16, _| (m == 1).then_some(13);
        let p = plan(WaveKind::Class);
        let f = p.encode(&vec![1; p.lookups()], 13);
        let err = |f: &[u8], wave| WavePlan::decode(f, Link::S0ToS1, wave, width_of).unwrap_err().to_string();
        assert!(err(&f, 10).contains("plan for wave 9 where 10 was expected"));
        assert!(err(&f[..f.len() - 1], 9).contains("openings of"));
        assert!(err(&f[..20], 9).contains("truncated"));
        let mut g = f.clone();
        g[9] = 7; // lane 7
        assert!(err(&g, 9).contains("lane 7"));
        let mut g = f.clone();
        g[0] = 3;
        assert!(err(&g, 9).contains("tag 3"));
        // A repeated slot (delta 0 after the first).
        let mut r = WavePlan { entries: vec![(3, 1), (4, 1)], drops: vec![], ..p.clone() }.encode(&[0, 0], 13);
        let at = HEADER + 2 + 1 + 16 + 2 + 2; // the second entry's delta, after the first's delta and count
        r[at] = 0;
        assert!(err(&r, 9).contains("not increasing"), "{}", err(&r, 9));
        // A checkpoint carries no lookups; one that claims some is refused.
        let empty = WavePlan { entries: vec![], checkpoint: true, ..p.clone() };
        let c = empty.encode(&[], 13);
        assert_eq!(WavePlan::decode(&c, Link::S0ToS1, 9, width_of).unwrap(), (empty, vec![]));
        let mut g = f.clone();
        g[HEADER + 2] |= 0x80;
        assert!(err(&g, 9).contains("a checkpoint with"), "{}", err(&g, 9));
        // The leader's flag of a store short of room rides on any plan.
        let flagged = WavePlan { short: true, ..p.clone() };
        let (back, _) =
            WavePlan::decode(&flagged.encode(&vec![1; p.lookups()], 13), Link::S0ToS1, 9, width_of).unwrap();
        assert!(back.short && !back.checkpoint);
    }
}
