//! What every party agrees on before a run: the public tables, the index widths and the
//! order of the lookup rounds.
//!
//! A [`Plan`] is derived from the (public) machine and the protocol choice; a
//! [`Schedule`] from the (public) input lengths and the chunk size. The dealer and both
//! servers walk the same schedule, so correlations, openings and outputs line up
//! without negotiation; every frame names its round and is checked against it.

use super::set::SetPlan;
use super::{ClassMode, Protocol, ProtocolError, Reveal};
use crate::dfa::{Dfa, ceil_log2};
use pmsm_kernels::{gf2, ring};

/// A public lookup table over a `2^domain_bits` domain with `out_bits`-bit entries.
#[derive(Clone, Debug)]
pub enum Table {
    /// Bit-sliced for `lookup-xor`: `out_bits` planes of `words` u64 each; bit `j` of
    /// plane `k` is bit `k` of `T[j]`. `words = max(1, 2^domain_bits / 64)`; bits past
    /// the domain are zero.
    Xor {
        /// Index width.
        domain_bits: u32,
        /// Entry width.
        out_bits: u32,
        /// Words per plane.
        words: usize,
        /// Words of each plane before the all-zero tail (rows of padding states, whose
        /// entries are 0): the parity kernels skip the tail.
        live: usize,
        /// The planes, plane after plane.
        planes: Vec<u64>,
        /// For domains of at most [`SMALL_XOR_DOMAIN_BITS`] bits: every plane already
        /// XOR-permuted by every mask `u`, plane `k` at `(u · out_bits + k) · words`, so a
        /// lookup is a plain AND-parity with no permutation. Empty for larger domains.
        by_mask: Vec<u64>,
    },
    /// Plain entries for `lookup-ring`: `values[j] = T[j]`.
    Ring {
        /// Index width.
        domain_bits: u32,
        /// Entry width.
        out_bits: u32,
        /// The entries.
        values: Vec<u64>,
    },
}

impl Table {
    /// The table `j ↦ f(j)` for `j < 2^domain_bits` (`f(j) < 2^out_bits`).
    pub fn build(protocol: Protocol, domain_bits: u32, out_bits: u32, f: impl Fn(usize) -> u64) -> Table {
        let n = 1usize << domain_bits;
        match protocol {
            Protocol::LookupXor => {
                let words = (n / 64).max(1);
                let mut planes = vec![0u64; out_bits as usize * words];
                for j in 0..n {
                    let v = f(j);
                    for k in 0..out_bits as usize {
                        planes[k * words + j / 64] |= ((v >> k) & 1) << (j % 64);
                    }
                }
                let live = (0..words)
                    .rev()
                    .find(|&j| (0..out_bits as usize).any(|k| planes[k * words + j] != 0))
                    .map_or(0, |j| j + 1);
                let mut by_mask = Vec::new();
                if domain_bits <= SMALL_XOR_DOMAIN_BITS {
                    by_mask = vec![0u64; n * out_bits as usize * words];
                    let bit = |k: usize, j: usize| (planes[k * words + j / 64] >> (j % 64)) & 1;
                    for (u, per_mask) in by_mask.chunks_exact_mut(out_bits as usize * words).enumerate() {
                        for (k, plane) in per_mask.chunks_exact_mut(words).enumerate() {
                            for j in 0..n {
                                plane[j / 64] |= bit(k, j ^ u) << (j % 64);
                            }
                        }
                    }
                }
                Table::Xor { domain_bits, out_bits, words, live, planes, by_mask }
            }
            Protocol::LookupRing => Table::Ring { domain_bits, out_bits, values: (0..n).map(f).collect() },
            Protocol::Naive | Protocol::SeedDpf => unreachable!("the seed's protocols have no lookup table"),
        }
    }

    /// Index width `n`.
    pub fn domain_bits(&self) -> u32 {
        match self {
            Table::Xor { domain_bits, .. } | Table::Ring { domain_bits, .. } => *domain_bits,
        }
    }

    /// Entry width.
    pub fn out_bits(&self) -> u32 {
        match self {
            Table::Xor { out_bits, .. } | Table::Ring { out_bits, .. } => *out_bits,
        }
    }

    /// For a bit-sliced table read through the permuting kernels, the outputs of each
    /// expansion the read reaches ([`gf2::batch_read_outputs`]): output `y` under the
    /// opened index `u` only where `y ⊕ u` is below this. The rest of an expansion (the
    /// rows of padding states, permuted) need not be computed. `None` for ring tables and
    /// for small tables read through their permuted copies, which read everything.
    pub fn read_outputs(&self) -> Option<u64> {
        match self {
            Table::Xor { words, live, by_mask, .. } if by_mask.is_empty() => {
                Some(gf2::batch_read_outputs(*live, *words))
            }
            _ => None,
        }
    }

    /// Bytes the table occupies in memory.
    pub fn bytes(&self) -> usize {
        match self {
            Table::Xor { planes, by_mask, .. } => (planes.len() + by_mask.len()) * 8,
            Table::Ring { values, .. } => values.len() * 8,
        }
    }

    /// One server's XOR share of `T[r ⊕ u]` from its control-bit expansion `t`
    /// (at least `words` words): `⊕_j t[j] · T[j ⊕ u]`.
    ///
    /// # Panics
    /// On a ring table (a caller bug).
    #[inline]
    pub fn lookup_xor(&self, t: &[u64], u: u64) -> u64 {
        let Table::Xor { out_bits, words, planes, .. } = self else { panic!("lookup_xor on a ring table") };
        gf2::permuted_parities(&t[..*words], u as usize, planes, *out_bits as usize)
    }

    /// [`Table::lookup_xor`] for many instances whose expansions lie back to back in
    /// `ts` (each `ts.len() / us.len()` words, at least `words`): one blocked pass over
    /// the table for all of them; a small table reads its permuted copies instead.
    ///
    /// # Panics
    /// On a ring table (a caller bug).
    pub fn lookup_xor_batch(&self, ts: &[u64], us: &[u64], out: &mut [u64]) {
        let Table::Xor { out_bits, words, live, planes, by_mask, .. } = self else {
            panic!("lookup_xor_batch on a ring table")
        };
        let per = ts.len() / us.len().max(1);
        if !by_mask.is_empty() {
            // Small domains, including those under 128 points whose expansions are longer
            // than the table: each expansion's prefix against the planes permuted by u.
            // The AND-parity of at most four words is inlined: through the dispatched
            // `gf2::and_parity`, once per plane, a round's class read took 21.3 µs per
            // 1,024 lookups against 13.1 µs (`class_read/permuted_copies_1024_n8_ks5`).
            let (ks, w) = (*out_bits as usize, *words);
            for ((t, &u), o) in ts.chunks_exact(per).zip(us).zip(out.iter_mut()) {
                let permuted = by_mask[u as usize * ks * w..][..ks * w].chunks_exact(w);
                *o = permuted.enumerate().fold(0, |bits, (k, p)| {
                    let x = t[..w].iter().zip(p).fold(0, |a, (x, y)| a ^ (x & y));
                    bits | (u64::from(x.count_ones() & 1) << k)
                });
            }
            return;
        }
        // Domains above 2^8 points: expansions are exactly `words` long.
        let us: Vec<usize> = us.iter().map(|&u| u as usize).collect();
        gf2::permuted_parities_batch(ts, &us, planes, *out_bits as usize, *live, out);
    }

    /// One server's additive share of `T[(r + u) mod N]` from its ring expansion `e`
    /// (exactly `N` words): `Σ_j T[(j + u) mod N] · e[j]`.
    ///
    /// # Panics
    /// On a bit-sliced table (a caller bug).
    #[inline]
    pub fn lookup_ring(&self, e: &[u64], u: u64) -> u64 {
        let Table::Ring { values, .. } = self else { panic!("lookup_ring on a xor table") };
        ring::rotated_dot(values, u as usize, e)
    }
}

/// Bit-sliced tables over at most `2^8` entries keep a copy of their planes permuted by
/// every mask ([`Table::Xor`]'s `by_mask`; 40 KiB for the DLP rules' class table of 5
/// planes): at that size permuting the expansion per lookup cost more than reading it
/// (47 ns a lookup for 2^8 entries and 5 planes, `gf2_permuted_parities/batch16/n8_ks5`).
pub const SMALL_XOR_DOMAIN_BITS: u32 = 8;

/// The symbol → class stage (DESIGN: alphabet compression).
#[derive(Clone, Debug)]
pub struct ClassStage {
    /// Class index width.
    pub kc: u32,
    /// Number of classes.
    pub count: usize,
    /// `C[a]`, domain `ka`, entries `kc` bits.
    pub table: Table,
}

/// The public parameters of a run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Protocol.
    pub protocol: Protocol,
    /// Output policy.
    pub reveal: Reveal,
    /// `|S|`.
    pub states: usize,
    /// `|Σ|`.
    pub symbols: usize,
    /// `q0`.
    pub start: u32,
    /// State index width (at least 1).
    pub ks: u32,
    /// Symbol index width (at least 1).
    pub ka: u32,
    /// Symbol classes, when used.
    pub classes: Option<ClassStage>,
    /// The transition table over `(s << kx) | x`, `x` a symbol or a class.
    pub step: Table,
    /// `A[s] = [s ∈ F]`, for [`Reveal::Accept`]. For a group of a machine set, the
    /// group's output table over its states instead (its rules' bits, their count or
    /// whether any matched: [`super::set::SetPlan`]); [`Plan::output_bits`] then does
    /// not describe it.
    pub accept: Option<Table>,
}

/// Bits of an index part over `n` values (states, symbols or classes): `⌈log2 n⌉`, and
/// at least 1, so that a one-state or one-symbol machine still has a table to read.
pub fn index_bits(n: usize) -> u32 {
    ceil_log2(n).max(1)
}

/// The index widths of a machine's lookups, as [`Plan::new`] chooses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Widths {
    /// State bits.
    pub ks: u32,
    /// Symbol bits.
    pub ka: u32,
    /// Bits of the symbol-or-class part of a step index.
    pub kx: u32,
    /// Whether a class lookup maps each symbol to its class first.
    pub classes: bool,
}

impl Widths {
    /// The widths for a machine of `states`, `symbols` and `classes` symbol classes:
    /// classes are used if `mode` says so, or under [`ClassMode::Auto`] when
    /// `2^(ks+kc) + 2^ka < 2^(ks+ka)`.
    pub fn of(states: usize, symbols: usize, classes: usize, mode: ClassMode) -> Widths {
        let (ks, ka, kc) = (index_bits(states), index_bits(symbols), index_bits(classes));
        let classes = match mode {
            ClassMode::On => true,
            ClassMode::Off => false,
            ClassMode::Auto => (1u64 << (ks + kc)) + (1u64 << ka) < (1u64 << (ks + ka)),
        };
        Widths { ks, ka, kx: if classes { kc } else { ka }, classes }
    }

    /// The step index width `n = ks + kx`.
    pub fn n(&self) -> u32 {
        self.ks + self.kx
    }
}

impl Plan {
    /// Derives the plan for `dfa`. Classes are used if `mode` says so, or under
    /// [`ClassMode::Auto`] when `2^(ks+kc) + 2^ka < 2^(ks+ka)` (fewer table entries read
    /// per symbol in all).
    pub fn new(dfa: &Dfa, protocol: Protocol, reveal: Reveal, mode: ClassMode) -> Result<Plan, ProtocolError> {
        if !protocol.is_lookup() {
            return Err(ProtocolError::Parameter(format!("{protocol} is not a lookup protocol")));
        }
        let cls = dfa.classes();
        let Widths { ks, ka, kx: _, classes: use_classes } = Widths::of(dfa.states(), dfa.symbols(), cls.count(), mode);
        let kc = index_bits(cls.count());
        let (kx, xs) = if use_classes { (kc, cls.count()) } else { (ka, dfa.symbols()) };
        let n = ks + kx;
        if n > protocol.max_domain_bits() {
            return Err(ProtocolError::TooLarge {
                protocol,
                needed: n,
                limit: protocol.max_domain_bits(),
                states: dfa.states(),
                symbols: xs,
            });
        }
        let symbol_of = |x: usize| if use_classes { cls.representative(x as u32) } else { x as u32 };
        let step = Table::build(protocol, n, ks, |j| {
            let (s, x) = (j >> kx, j & ((1 << kx) - 1));
            if s < dfa.states() && x < xs { u64::from(dfa.next(s as u32, symbol_of(x))) } else { 0 }
        });
        let classes = use_classes.then(|| ClassStage {
            kc,
            count: cls.count(),
            table: Table::build(protocol, ka, kc, |a| {
                if a < dfa.symbols() { u64::from(cls.class_of(a as u32)) } else { 0 }
            }),
        });
        let accept = (reveal == Reveal::Accept)
            .then(|| Table::build(protocol, ks, 1, |s| u64::from(s < dfa.states() && dfa.is_accepting(s as u32))));
        Ok(Plan {
            protocol,
            reveal,
            states: dfa.states(),
            symbols: dfa.symbols(),
            start: dfa.start(),
            ks,
            ka,
            classes,
            step,
            accept,
        })
    }

    /// Bytes of every table the plan holds in memory (step, class and accept tables).
    pub fn table_bytes(&self) -> usize {
        let classes = self.classes.as_ref().map_or(0, |c| c.table.bytes());
        self.step.bytes() + classes + self.accept.as_ref().map_or(0, Table::bytes)
    }

    /// Width of the symbol-or-class part of a step index.
    pub fn kx(&self) -> u32 {
        self.classes.as_ref().map_or(self.ka, |c| c.kc)
    }

    /// Step index width `n = ks + kx`.
    pub fn step_bits(&self) -> u32 {
        self.ks + self.kx()
    }

    /// Bits of one symbol share sent by the client. XOR shares need `ka`; additive
    /// shares need `n` when they enter the step index directly (so that their sum is
    /// right modulo `2^n`), `ka` when they only index the class table.
    pub fn symbol_share_bits(&self) -> u32 {
        match (self.protocol, &self.classes) {
            (Protocol::LookupRing, None) => self.step_bits(),
            _ => self.ka,
        }
    }

    /// Bits of one output share sent to the client.
    pub fn output_bits(&self) -> u32 {
        match self.reveal {
            Reveal::State => self.ks,
            Reveal::Accept => 1,
        }
    }

    /// The table a round of `kind` reads.
    pub fn table(&self, kind: RoundKind) -> &Table {
        match kind {
            RoundKind::Class { .. } => &self.classes.as_ref().expect("class rounds exist only with classes").table,
            RoundKind::Step(_) => &self.step,
            RoundKind::Accept => self.accept.as_ref().expect("accept rounds exist only for Reveal::Accept"),
            RoundKind::Combine(_) => panic!("a combination round reads its set's table, not a machine's"),
        }
    }
}

/// Which lookup a round performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundKind {
    /// Symbol → class for the symbols at positions `from..to` of the chunk's instances
    /// (no state involved), in the chunk's symbol order ([`Chunk::span`]).
    Class {
        /// First position.
        from: usize,
        /// One past the last position.
        to: usize,
    },
    /// Transition `t` (0-based) of the chunk's active instances.
    Step(usize),
    /// `[s ∈ F]` for every instance of the chunk (for a set's group: its output table).
    Accept,
    /// Level `l` of a set's combination ([`super::set::Level`]): every node of the
    /// level for every instance of the chunk, node-major.
    Combine(usize),
}

/// One lookup round of one chunk.
#[derive(Clone, Debug)]
pub struct Round {
    /// Position in the schedule (named in every frame of the round).
    pub id: u32,
    /// The chunk.
    pub chunk: usize,
    /// The machine (group of a set) whose table is read; 0 for a single machine and
    /// for combination rounds.
    pub group: usize,
    /// What is looked up.
    pub kind: RoundKind,
    /// Number of lookups.
    pub count: usize,
    /// Whether this is the chunk's last round (its outputs go to the client after it).
    pub last: bool,
}

/// A chunk: instances advancing together, sorted by decreasing input length so the
/// instances still active at step `t` are a prefix.
///
/// The chunk's symbols are listed position-major: all symbols at position 0 (of the
/// active instances, in chunk order), then all at position 1, and so on. So the symbols
/// a step or a block of class lookups reads are contiguous, and no per-instance offset
/// is kept: 8 bytes per instance in all (instance numbers and lengths fit `u32`; the
/// engine and the session spec check that before a schedule is built).
#[derive(Clone, Debug)]
pub struct Chunk {
    /// Original instance numbers, in chunk order.
    pub instances: Vec<u32>,
    /// Their input lengths, non-increasing.
    pub lengths: Vec<u32>,
}

impl Chunk {
    /// Sorts instances by decreasing input length and cuts them into chunks.
    ///
    /// # Panics
    /// If there are more than `u32::MAX` instances or an input is longer than that (a
    /// caller bug: the engine rejects such inputs first).
    pub fn split(lengths: &[usize], chunk_size: usize) -> Vec<Chunk> {
        let narrow = |x: usize| u32::try_from(x).expect("instance counts and input lengths are checked to fit u32");
        let mut order: Vec<u32> = (0..narrow(lengths.len())).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lengths[i as usize]));
        order
            .chunks(chunk_size.max(1))
            .map(|ids| Chunk {
                instances: ids.to_vec(),
                lengths: ids.iter().map(|&i| narrow(lengths[i as usize])).collect(),
            })
            .collect()
    }

    /// Total symbols of the chunk.
    pub fn symbols(&self) -> usize {
        self.lengths.iter().map(|&l| l as usize).sum()
    }

    /// Steps of the chunk: its longest input length.
    pub fn steps(&self) -> usize {
        self.lengths.first().map_or(0, |&l| l as usize)
    }

    /// Instances with more than `t` symbols.
    pub fn active_at(&self, t: usize) -> usize {
        self.lengths.partition_point(|&l| l as usize > t)
    }

    /// Where the symbols at position `t` start in the chunk's (position-major) symbol
    /// list: instance `i`'s symbol `t` is at `start(t) + i`. Costs one pass over the
    /// chunk's lengths.
    pub fn start(&self, t: usize) -> usize {
        self.lengths.iter().map(|&l| (l as usize).min(t)).sum()
    }

    /// The symbols at positions `from..to`, as a range of the chunk's symbol list.
    pub fn span(&self, from: usize, to: usize) -> std::ops::Range<usize> {
        self.start(from)..self.start(to)
    }

    /// The chunk's symbols of `inputs` (indexed by original instance number), in the
    /// chunk's position-major order.
    pub fn in_order<'a, T>(&'a self, inputs: &'a [Vec<T>]) -> impl Iterator<Item = &'a T> + 'a {
        (0..self.steps())
            .flat_map(move |t| self.instances[..self.active_at(t)].iter().map(move |&i| &inputs[i as usize][t]))
    }
}

/// Symbol positions mapped to classes per class round: each chunk's symbols are
/// classified in blocks just ahead of the steps that read them, so the correlations
/// queued and decoded at any time cover at most this many positions per instance.
/// Classifying a whole chunk up front made the first wave hold keys for every symbol of
/// the batch (106 bytes per transition: 100 MB at the DLP benchmark's 10^6
/// transitions). Measured on that benchmark (20,000 texts, peak RSS without huge
/// pages): whole chunks 248 MB, blocks of 16 positions 158 MB, blocks of 4 117 MB at
/// the same throughput; one more round per block, overlapped with other chunks' rounds.
pub const CLASS_BLOCK: usize = 4;

/// The order of all rounds of a run: wave `w` holds slot `w` of every chunk that has
/// one (chunk sequences of slots are `[Class(0..4)] Step(0) … Step(3) [Class(4..8)]
/// Step(4) … Step(L−1) [Accept] [Combine(0)] …`, see [`CLASS_BLOCK`]). A slot holds
/// that round for every machine of a set (a class slot only for machines with
/// classes), so all machines of a chunk advance together and read the same symbols.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The chunks.
    pub chunks: Vec<Chunk>,
    /// All rounds, wave after wave.
    pub rounds: Vec<Round>,
    /// Per chunk: whether it has any round (a chunk of empty inputs revealing the
    /// state has none; its outputs are sent at once).
    pub has_rounds: Vec<bool>,
}

impl Schedule {
    /// The schedule for inputs of the given lengths, in chunks of `chunk_size`.
    pub fn new(plan: &SetPlan, lengths: &[usize], chunk_size: usize) -> Schedule {
        let chunks = Chunk::split(lengths, chunk_size);
        let groups = &plan.groups;
        let all = |kind: RoundKind, count: usize| -> Vec<(usize, RoundKind, usize)> {
            (0..groups.len()).map(|g| (g, kind, count)).collect()
        };
        let sequences: Vec<Vec<Vec<(usize, RoundKind, usize)>>> = chunks
            .iter()
            .map(|c| {
                let mut seq = Vec::new();
                let longest = c.steps();
                for t in 0..longest {
                    if t % CLASS_BLOCK == 0 {
                        let (from, to) = (t, (t + CLASS_BLOCK).min(longest));
                        let kind = RoundKind::Class { from, to };
                        let slot: Vec<_> = (0..groups.len())
                            .filter(|&g| groups[g].classes.is_some())
                            .map(|g| (g, kind, c.span(from, to).len()))
                            .collect();
                        if !slot.is_empty() {
                            seq.push(slot);
                        }
                    }
                    seq.push(all(RoundKind::Step(t), c.active_at(t)));
                }
                let finals: Vec<_> = (0..groups.len())
                    .filter(|&g| groups[g].accept.is_some())
                    .map(|g| (g, RoundKind::Accept, c.instances.len()))
                    .collect();
                if !finals.is_empty() {
                    seq.push(finals);
                }
                for (l, level) in plan.levels.iter().enumerate() {
                    if level.table.is_some() {
                        seq.push(vec![(0, RoundKind::Combine(l), c.instances.len() * level.nodes.len())]);
                    }
                }
                seq
            })
            .collect();
        let mut rounds = Vec::new();
        for w in 0..sequences.iter().map(Vec::len).max().unwrap_or(0) {
            for (chunk, seq) in sequences.iter().enumerate() {
                let Some(slot) = seq.get(w) else { continue };
                for (k, &(group, kind, count)) in slot.iter().enumerate() {
                    let last = w + 1 == seq.len() && k + 1 == slot.len();
                    rounds.push(Round { id: rounds.len() as u32, chunk, group, kind, count, last });
                }
            }
        }
        let has_rounds = sequences.iter().map(|seq| !seq.is_empty()).collect();
        Schedule { chunks, rounds, has_rounds }
    }

    /// Transitions (symbols) in all.
    pub fn transitions(&self) -> usize {
        self.chunks.iter().map(Chunk::symbols).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ab() -> Dfa {
        crate::dfa::json::seed_machine()
    }

    #[test]
    fn tables_hold_the_transition_function() {
        let m = ab();
        for protocol in [Protocol::LookupXor, Protocol::LookupRing] {
            let p = Plan::new(&m, protocol, Reveal::Accept, ClassMode::Off).unwrap();
            assert_eq!((p.ks, p.ka, p.step_bits()), (2, 1, 3));
            // A one-hot expansion at j reads T[j ⊕ u] / T[j + u]: check every entry with u = 0.
            for j in 0..8u64 {
                let want = if j >> 1 < 4 { u64::from(m.next((j >> 1) as u32, (j & 1) as u32)) } else { 0 };
                let got = match &p.step {
                    Table::Xor { .. } => p.step.lookup_xor(&[1 << j], 0),
                    Table::Ring { .. } => p.step.lookup_ring(&(0..8).map(|i| u64::from(i == j)).collect::<Vec<_>>(), 0),
                };
                assert_eq!(got, want, "{protocol} j {j}");
            }
        }
    }

    #[test]
    fn small_xor_tables_read_their_permuted_copies_like_the_kernel() {
        let mut rng = pmsm_kernels::rng::WorkloadRng::seed_from_u64(5);
        for (bits, ks) in [(1u32, 1u32), (5, 3), (7, 2), (8, 5), (9, 4)] {
            let t = Table::build(Protocol::LookupXor, bits, ks, |j| ((j as u64 * 2_654_435_761) >> 7) % (1 << ks));
            let Table::Xor { words, by_mask, .. } = &t else { unreachable!() };
            assert_eq!(by_mask.is_empty(), bits > SMALL_XOR_DOMAIN_BITS);
            // Expansions of two words (a 128-point leaf) for domains under 128 points.
            let per = (*words).max(2);
            let ts: Vec<u64> = (0..9 * per).map(|_| rng.below(u64::MAX)).collect();
            let us: Vec<u64> = (0..9).map(|_| rng.below(1 << bits)).collect();
            let mut out = vec![0u64; 9];
            t.lookup_xor_batch(&ts, &us, &mut out);
            for (i, (o, u)) in out.iter().zip(&us).enumerate() {
                assert_eq!(*o, t.lookup_xor(&ts[per * i..per * (i + 1)], *u), "bits {bits} instance {i}");
            }
        }
    }

    #[test]
    fn xor_tables_know_their_zero_tail() {
        // Entries from 1000 on are zero (as rows of padding states are): 16 live words.
        let t = Table::build(Protocol::LookupXor, 12, 3, |j| if j < 1000 { (j % 7) as u64 } else { 0 });
        let Table::Xor { live, words, .. } = &t else { unreachable!() };
        assert_eq!((*live, *words), (16, 64));
        let zero = Table::build(Protocol::LookupXor, 9, 2, |_| 0);
        assert!(matches!(zero, Table::Xor { live: 0, .. }));
        // Lookups agree with the full table wherever the mask lands.
        let mut rng = pmsm_kernels::rng::WorkloadRng::seed_from_u64(3);
        let ts: Vec<u64> = (0..8 * 64).map(|_| rng.below(u64::MAX)).collect();
        let us: Vec<u64> = (0..8).map(|_| rng.below(4096)).collect();
        let mut out = vec![0u64; 8];
        t.lookup_xor_batch(&ts, &us, &mut out);
        for (i, (o, u)) in out.iter().zip(&us).enumerate() {
            assert_eq!(*o, t.lookup_xor(&ts[64 * i..64 * (i + 1)], *u), "instance {i}");
        }
    }

    #[test]
    fn class_rounds_come_in_blocks_ahead_of_their_steps() {
        let p = Plan::new(&ab(), Protocol::LookupXor, Reveal::State, ClassMode::On).unwrap();
        let s = Schedule::new(&SetPlan::single(p), &[40, 3, 17], 4);
        let c = &s.chunks[0];
        assert_eq!(c.lengths, vec![40, 17, 3]);
        let kinds: Vec<(RoundKind, usize)> = s.rounds.iter().map(|r| (r.kind, r.count)).collect();
        let class = |from, to| RoundKind::Class { from, to };
        assert_eq!(CLASS_BLOCK, 4);
        // Positions 0..3 of all three instances, 3 of two; 16 of two, 17.. of one.
        assert_eq!(kinds[0], (class(0, 4), 3 * 3 + 2));
        assert_eq!(kinds[20], (class(16, 20), 2 + 3));
        assert_eq!(kinds[45], (class(36, 40), 4));
        assert_eq!(kinds.len(), 40 + 10);
        assert!(kinds[1..5].iter().enumerate().all(|(t, k)| k.0 == RoundKind::Step(t)));
        // The blocks' spans tile the symbol list; position 3 has two symbols, 17 one.
        let spans: Vec<_> = (0..10).map(|b| c.span(4 * b, 4 * b + 4)).collect();
        assert!(spans.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!((spans[0].start, spans[9].end), (0, 60));
        assert_eq!(c.span(3, 4), 9..11);
        assert_eq!(c.span(17, 18), 37..38);
        assert_eq!(c.span(36, 44).len(), 4);
        // Symbols in order: position-major, active instances in chunk order.
        let inputs: Vec<Vec<(usize, usize)>> =
            [40usize, 3, 17].iter().enumerate().map(|(i, &l)| (0..l).map(|t| (i, t)).collect()).collect();
        let order: Vec<(usize, usize)> = c.in_order(&inputs).copied().collect();
        assert_eq!(order.len(), 60);
        assert_eq!(&order[..4], &[(0, 0), (2, 0), (1, 0), (0, 1)]);
        for t in [0, 2, 3, 16, 39] {
            for i in 0..c.active_at(t) {
                assert_eq!(order[c.start(t) + i], (c.instances[i] as usize, t), "position {t}, instance {i}");
            }
        }
    }

    #[test]
    fn schedule_orders_waves_and_prefixes() {
        let p = Plan::new(&ab(), Protocol::LookupXor, Reveal::Accept, ClassMode::Off).unwrap();
        let s = Schedule::new(&SetPlan::single(p), &[2, 0, 5, 3], 2);
        assert_eq!(s.chunks[0].instances, vec![2, 3]);
        assert_eq!(s.chunks[1].instances, vec![0, 1]);
        assert_eq!(s.transitions(), 10);
        let kinds: Vec<(usize, RoundKind, usize, bool)> =
            s.rounds.iter().map(|r| (r.chunk, r.kind, r.count, r.last)).collect();
        assert_eq!(kinds[0], (0, RoundKind::Step(0), 2, false));
        assert_eq!(kinds[1], (1, RoundKind::Step(0), 1, false));
        assert!(kinds.contains(&(1, RoundKind::Accept, 2, true)));
        assert_eq!(kinds.last(), Some(&(0, RoundKind::Accept, 2, true)));
        // Six waves: the longest chunk's five steps and its accept round.
        assert_eq!(kinds.iter().filter(|k| k.0 == 0).count(), 6);
    }

    #[test]
    fn too_large_names_the_limit() {
        let m = crate::dfa::random::random_dfa(1 << 15, 256, &mut pmsm_kernels::rng::WorkloadRng::seed_from_u64(1));
        let e = Plan::new(&m, Protocol::LookupRing, Reveal::State, ClassMode::Off).unwrap_err();
        assert!(
            e.to_string().contains("lookup-ring supports lookup domains up to 2^22 entries; this machine needs 2^23"),
            "{e}"
        );
    }
}
