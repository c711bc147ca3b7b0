//! The private run of an NFA-path rule set (DESIGN §8) in the batch engine: a client,
//! two servers and a dealer over the in-process transport, every link's bytes counted.
//!
//! Per run (texts sorted by length, a public order; see `README.md` here):
//! 1. the client XOR-shares every byte; server `b` gets `a_b`;
//! 2. one round of symbol lookups for the whole input, on the lookup path's own
//!    correlations ([`crate::party::dealer::deal`] over 8-bit domains: a mask share
//!    `r_b` and a share of the one-hot table of `r`): the servers open `a ⊕ r` and read
//!    the class one-hot shares `E[c] = ⊕_{j ∈ c} t_b[j ⊕ u]` ([`gf2::permuted_parities`]);
//! 3. per step, the step circuit on shares: XOR/NOT locally, every AND layer one
//!    exchange of openings (`d_b, e_b`, one bit each per AND per instance), triples
//!    from the dealer's seeds ([`super::triples`]);
//! 4. the release circuit; each server sends its hit shares (one bit per rule per
//!    text, policy `rules`) to the client, which alone reconstructs them.
//!
//! What a server sees: its input shares (uniform), the peer's openings `a ⊕ r` (uniform:
//! `r` is fresh per symbol) and `d`, `e` (uniform: fresh `x`, `y` per AND), and the
//! public plan (text lengths, DESIGN §1). Nothing it receives depends on the input.

use super::circuit::{Program, lane_mask, merge_step};
use super::triples::{self, StepTriples, Words};
use crate::party::dealer::deal as deal_lookups;
use crate::party::sharing::Xor;
use crate::protocol::ProtocolError;
use crate::protocol::wire::decode_correlations;
use crate::transport::inproc::{Network, network};
use crate::transport::{ClientEnds, DealerEnds, Link, ServerEnds, TransportError};
use pmsm_kernels::Party;
use pmsm_kernels::dpf::{BitLeaf, DpfKey};
use pmsm_kernels::gf2;
use pmsm_kernels::rng::{RngCore, SecretRng};
use std::time::{Duration, Instant};

/// Frame tags of the NFA path (distinct from the lookup path's).
const TAG_INPUT: u8 = 0x41;
/// Server → server: the symbol lookup's openings.
pub const TAG_SYMBOLS: u8 = 0x42;
/// Dealer → server: a step's compressed triples.
const TAG_TRIPLES: u8 = 0x43;
/// Server → server: an AND layer's openings.
pub const TAG_AND: u8 = 0x44;
/// Server → client: hit shares.
const TAG_OUTPUT: u8 = 0x45;
/// A frame's head: its tag, then a u32 id (the step and layer for [`TAG_AND`]).
pub const HEAD: usize = 5;

/// The public plan: texts sorted by length (longest first), so those active at step `t`
/// are a prefix.
#[derive(Clone, Debug)]
struct Plan {
    /// `order[k]`: the input index of the `k`-th text in plan order.
    order: Vec<usize>,
    /// Lengths in plan order.
    lens: Vec<usize>,
    /// Where each text's bytes start in the shared symbol list (plan order).
    offsets: Vec<usize>,
    total: usize,
}

impl Plan {
    fn new(texts: &[&[u8]]) -> Plan {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let lens: Vec<usize> = order.iter().map(|&i| texts[i].len()).collect();
        let mut offsets = Vec::with_capacity(lens.len());
        let mut total = 0;
        for l in &lens {
            offsets.push(total);
            total += l;
        }
        Plan { order, lens, offsets, total }
    }
    fn steps(&self) -> usize {
        self.lens.first().copied().unwrap_or(0)
    }
    /// Texts still active at step `t` (or, at `t = 0` of the release, non-empty).
    fn active(&self, t: usize) -> usize {
        self.lens.partition_point(|&l| l > t)
    }
    fn words(&self, t: usize) -> usize {
        self.active(t).div_ceil(64)
    }
}

/// What a private run returns.
#[derive(Clone, Debug)]
pub struct NfaReport {
    /// Per text (input order), one hit bit per rule.
    pub hits: Vec<Vec<bool>>,
    /// Bytes sent on every link ([`Link::ALL`] order).
    pub bytes: [u64; 8],
    /// Wall time of the run (all four parties).
    pub elapsed: Duration,
    /// AND gates of a step (after the first), per instance.
    pub ands_per_step: usize,
    /// AND layers (rounds of openings) of a step after the first.
    pub rounds_per_step: usize,
}

impl NfaReport {
    /// Bytes sent on `link`.
    pub fn link_bytes(&self, link: Link) -> u64 {
        self.bytes[link.index()]
    }
}

fn frame(tag: u8, id: u32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEAD + body.len());
    f.push(tag);
    f.extend_from_slice(&id.to_le_bytes());
    f.extend_from_slice(body);
    f
}

/// The body of a frame that must carry `tag`, `id` and `len` body bytes.
fn body<'f>(f: &'f [u8], link: Link, tag: u8, id: u32, len: usize, what: &str) -> Result<&'f [u8], ProtocolError> {
    let bad = |detail: String| ProtocolError::Frame { link, detail };
    if f.len() < HEAD || f[0] != tag {
        return Err(bad(format!("expected {what} (tag {tag:#x}), got a frame of {} bytes", f.len())));
    }
    let got = u32::from_le_bytes(f[1..HEAD].try_into().expect("4 bytes"));
    if got != id {
        return Err(bad(format!("{what} for {got}, expected {id}")));
    }
    if f.len() - HEAD != len {
        return Err(bad(format!("{what}: {} body bytes, expected {len}", f.len() - HEAD)));
    }
    Ok(&f[HEAD..])
}

fn to_words(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

/// A frame of words built without a zeroed buffer: words gather on the stack and are
/// appended a block at a time.
struct WordFrame {
    frame: Vec<u8>,
    buf: [u64; 128],
    n: usize,
}

impl WordFrame {
    fn new(tag: u8, id: u32, head: &[u8], words: usize) -> WordFrame {
        let mut frame = Vec::with_capacity(HEAD + head.len() + 8 * words);
        frame.push(tag);
        frame.extend_from_slice(&id.to_le_bytes());
        frame.extend_from_slice(head);
        WordFrame { frame, buf: [0; 128], n: 0 }
    }

    #[inline]
    fn push(&mut self, w: u64) {
        if self.n == self.buf.len() {
            self.frame.extend_from_slice(bytemuck::cast_slice(&self.buf));
            self.n = 0;
        }
        self.buf[self.n] = w;
        self.n += 1;
    }

    fn extend(&mut self, words: &[u64]) {
        self.frame.extend_from_slice(bytemuck::cast_slice(&self.buf[..self.n]));
        self.n = 0;
        self.frame.extend_from_slice(bytemuck::cast_slice(words));
    }

    fn finish(mut self) -> Vec<u8> {
        self.frame.extend_from_slice(bytemuck::cast_slice(&self.buf[..self.n]));
        self.frame
    }
}

/// Runs `program` privately on `texts`: two server threads, a dealer thread and the
/// client (this thread), over the in-process transport. `tap`, if given, receives a
/// copy of every frame sent on that link (tests of what a party sees).
pub fn run(
    program: &Program,
    texts: &[&[u8]],
    tap: Option<(Link, crossbeam_channel::Sender<Vec<u8>>)>,
) -> Result<NfaReport, ProtocolError> {
    run_on(program, texts, network(LINK_DEPTH, DEALER_DEPTH, tap))
}

/// Frames a server-to-server or client link holds (a layer's openings are one frame).
pub const LINK_DEPTH: usize = 8;
/// Steps' triples the dealer runs ahead.
pub const DEALER_DEPTH: usize = 4;

/// [`run`] on the ends of `net` (in process, or [`crate::transport::tcp::loopback`]);
/// the report's bytes are `net`'s counters.
pub fn run_on(program: &Program, texts: &[&[u8]], net: Network) -> Result<NfaReport, ProtocolError> {
    let plan = Plan::new(texts);
    let counters = net.counters.clone();
    let Network { client, servers: [s0, s1], dealer, .. } = net;
    let start = Instant::now();
    let results = std::thread::scope(|scope| {
        let d = scope.spawn(|| run_dealer(program, &plan, dealer, SecretRng::from_os()));
        let h0 = scope.spawn(|| run_server(program, &plan, Party::P0, s0));
        let h1 = scope.spawn(|| run_server(program, &plan, Party::P1, s1));
        let c = run_client(program, &plan, texts, client, SecretRng::from_os());
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<(), ProtocolError>>, party: &'static str| {
            h.join().unwrap_or_else(|_| Err(ProtocolError::PartyFailed { party, detail: "panicked".into() }))
        };
        (c, [join(d, "dealer"), join(h0, "server 0"), join(h1, "server 1")])
    });
    let elapsed = start.elapsed();
    let (client, others) = results;
    // The root cause: the first error that is not a peer's disconnection.
    let errors: Vec<ProtocolError> =
        others.into_iter().filter_map(Result::err).chain(client.as_ref().err().cloned()).collect();
    if let Some(e) = errors
        .iter()
        .find(|e| !matches!(e, ProtocolError::Transport(TransportError::Disconnected { .. })))
        .or(errors.first())
    {
        return Err(e.clone());
    }
    let hits = client?;
    Ok(NfaReport {
        hits,
        bytes: Link::ALL.map(|l| counters.bytes(l)),
        elapsed,
        ands_per_step: program.step.and_count(),
        rounds_per_step: program.step.rounds(),
    })
}

fn run_client(
    program: &Program,
    plan: &Plan,
    texts: &[&[u8]],
    ends: ClientEnds,
    mut rng: SecretRng,
) -> Result<Vec<Vec<bool>>, ProtocolError> {
    let ClientEnds { to_server: [mut to0, mut to1], from_server: [mut from0, mut from1] } = ends;
    let mut a0 = vec![0u8; plan.total];
    rng.fill_bytes(&mut a0);
    let a1: Vec<u8> = plan.order.iter().flat_map(|&i| texts[i].iter()).zip(&a0).map(|(a, r)| a ^ r).collect();
    to0.send(frame(TAG_INPUT, 0, &a0))?;
    to1.send(frame(TAG_INPUT, 0, &a1))?;
    let rules = program.layout.rules;
    let w = plan.lens.len().div_ceil(64);
    let len = 8 * rules * w;
    let o0 = to_words(body(&from0.recv()?, Link::S0ToClient, TAG_OUTPUT, 0, len, "hit shares")?);
    let o1 = to_words(body(&from1.recv()?, Link::S1ToClient, TAG_OUTPUT, 0, len, "hit shares")?);
    let mut hits = vec![Vec::new(); texts.len()];
    for (k, &i) in plan.order.iter().enumerate() {
        hits[i] = (0..rules).map(|r| (o0[r * w + k / 64] ^ o1[r * w + k / 64]) >> (k % 64) & 1 == 1).collect();
    }
    Ok(hits)
}

fn run_dealer(program: &Program, plan: &Plan, ends: DealerEnds, mut rng: SecretRng) -> Result<(), ProtocolError> {
    let DealerEnds { to_server: [mut to0, mut to1] } = ends;
    if plan.total > 0 {
        let [f0, f1] = deal_lookups::<Xor>(0, plan.total, 8, &mut rng)?;
        to0.send(f0)?;
        to1.send(f1)?;
    }
    let mut step = |id: usize, circuit: &super::circuit::Circuit, words: usize| -> Result<(), ProtocolError> {
        let layers: Vec<usize> = circuit.layer_sizes().iter().map(|g| g * words).collect();
        let total: usize = layers.iter().sum();
        let mut f1 = WordFrame::new(TAG_TRIPLES, id as u32, &[0; 16], total);
        let seeds = triples::deal(&layers, &mut rng, |c| f1.extend(c));
        let mut f1 = f1.finish();
        f1[HEAD..HEAD + 16].copy_from_slice(&seeds[1].to_le_bytes());
        to0.send(frame(TAG_TRIPLES, id as u32, &seeds[0].to_le_bytes()))?;
        to1.send(f1)?;
        Ok(())
    };
    for t in 0..plan.steps() {
        step(t, program.step_circuit(t), plan.words(t))?;
    }
    if plan.active(0) > 0 {
        step(plan.steps(), &program.release, plan.words(0))?;
    }
    Ok(())
}

/// Server `party`'s triples for step `id` of `circuit` over `words` instance words.
fn recv_triples(
    ends: &mut ServerEnds,
    party: Party,
    id: usize,
    circuit: &super::circuit::Circuit,
    words: usize,
) -> Result<StepTriples, ProtocolError> {
    let link = if party == Party::P0 { Link::DealerToS0 } else { Link::DealerToS1 };
    let c1_words = if party == Party::P0 { 0 } else { circuit.and_count() * words };
    let frame = ends.from_dealer.recv()?;
    let b = body(&frame, link, TAG_TRIPLES, id as u32, 16 + 8 * c1_words, "triples")?;
    let seed = u128::from_le_bytes(b[..16].try_into().expect("16 bytes"));
    Ok(StepTriples::new(party, seed, frame, HEAD + 16))
}

/// Evaluates `circuit` on this server's shares, one exchange per AND layer (its
/// openings `d_b, e_b` interleaved, two words per AND word). `input(i, words)` writes
/// input `i`'s shares; `scratch` is the circuit's reused wire buffer.
fn eval_shared(
    ends: &mut ServerEnds,
    party: Party,
    id: usize,
    circuit: &super::circuit::Circuit,
    words: usize,
    input: impl FnMut(usize, &mut [u64]),
    scratch: &mut Vec<u64>,
) -> Result<Vec<u64>, ProtocolError> {
    let mut triples = recv_triples(ends, party, id, circuit, words)?;
    let peer_link = ends.from_peer.link();
    let dealer = if party == Party::P0 { Link::DealerToS0 } else { Link::DealerToS1 };
    let out = circuit.eval(scratch, words, party == Party::P0, input, |layer, and| {
        let n = and.words();
        let t = triples
            .next_layer(n)
            .ok_or_else(|| ProtocolError::Frame { link: dealer, detail: format!("step {id}: too few triples") })?;
        let tag_id = (id as u32) << 6 | layer as u32;
        let mut mine = WordFrame::new(TAG_AND, tag_id, &[], 2 * n);
        and.for_each(|i, u, v| {
            let [d, e] = t.open(i, u, v);
            mine.push(d);
            mine.push(e);
        });
        ends.to_peer.send(mine.finish())?;
        let peer = ends.from_peer.recv()?;
        let peer = Words::new(body(&peer, peer_link, TAG_AND, tag_id, 16 * n, "AND openings")?);
        and.set(t.finish(party, peer));
        Ok::<(), ProtocolError>(())
    })?;
    if !triples.is_spent() {
        return Err(ProtocolError::Frame { link: dealer, detail: format!("step {id}: more triples dealt than used") });
    }
    Ok(out)
}

fn run_server(program: &Program, plan: &Plan, party: Party, mut ends: ServerEnds) -> Result<(), ProtocolError> {
    let b = party.index();
    let (from_client, dealer_link) =
        if b == 0 { (Link::ClientToS0, Link::DealerToS0) } else { (Link::ClientToS1, Link::DealerToS1) };
    let peer_link = ends.from_peer.link();
    let l = program.layout;
    let input = ends.from_client.recv()?;
    let a = body(&input, from_client, TAG_INPUT, 0, plan.total, "byte shares")?;
    // One round of symbol lookups for every byte: class one-hot shares, `cw` words each.
    let cw = l.classes.div_ceil(64);
    let mut class_bits = vec![0u64; plan.total * cw];
    if plan.total > 0 {
        let corr = decode_correlations::<BitLeaf>(ends.from_dealer.recv()?, dealer_link, party, 0, plan.total, 8)?;
        let (masks, keys) = corr.into_parts();
        let opened: Vec<u8> = a.iter().zip(&masks).map(|(a, r)| a ^ *r as u8).collect();
        ends.to_peer.send(frame(TAG_SYMBOLS, 0, &opened))?;
        let peer_frame = ends.from_peer.recv()?;
        let peer = body(&peer_frame, peer_link, TAG_SYMBOLS, 0, plan.total, "symbol openings")?;
        let per = DpfKey::<BitLeaf>::leaves_for(8);
        let mut leaves = vec![BitLeaf::default(); plan.total * per];
        keys.expand(0..plan.total, &mut leaves, None)?;
        let table: &[u64] = bytemuck::cast_slice(&leaves);
        let tw = table.len() / plan.total;
        let members = super::position::SymbolClasses { of_byte: program.class_of_byte, count: l.classes }.members();
        let planes: Vec<Vec<u64>> = members.chunks(64).map(|ch| ch.iter().flat_map(|s| s.0).collect()).collect();
        for s in 0..plan.total {
            let u = usize::from(opened[s] ^ peer[s]);
            for (k, p) in planes.iter().enumerate() {
                class_bits[s * cw + k] = gf2::permuted_parities(&table[s * tw..(s + 1) * tw], u, p, p.len() / 4);
            }
        }
    }
    // The state: every input wire of the step circuit, `w` words each.
    let w = plan.lens.len().div_ceil(64);
    let mut state = vec![0u64; l.inputs() * w];
    let mut scratch = Vec::new();
    let classes = l.e_at()..l.e_at() + l.classes;
    for t in 0..plan.steps() {
        let (n, wt) = (plan.active(t), plan.words(t));
        let input = |k: usize, words: &mut [u64]| {
            if classes.contains(&k) {
                let c = k - l.e_at();
                words.fill(0);
                for i in 0..n {
                    let bit = class_bits[(plan.offsets[i] + t) * cw + c / 64] >> (c % 64) & 1;
                    words[i / 64] |= bit << (i % 64);
                }
            } else {
                words.copy_from_slice(&state[k * w..k * w + wt]);
            }
        };
        let out = eval_shared(&mut ends, party, t, program.step_circuit(t), wt, input, &mut scratch)?;
        let active = lane_mask((0..n).map(|_| true), wt);
        merge_step(&mut state, w, &out, wt, &active, l);
    }
    // Release: the non-empty texts through the release circuit; the empty ones' answers
    // are public constants (server 0 holds them, server 1 zero).
    let mut hits = vec![0u64; l.rules * w];
    for (r, &e) in program.empty_hits.iter().enumerate() {
        if e && b == 0 {
            for i in plan.active(0)..plan.lens.len() {
                hits[r * w + i / 64] |= 1 << (i % 64);
            }
        }
    }
    if plan.active(0) > 0 {
        let wr = plan.words(0);
        let input = |k: usize, words: &mut [u64]| words.copy_from_slice(&state[k * w..k * w + wr]);
        let out = eval_shared(&mut ends, party, plan.steps(), &program.release, wr, input, &mut scratch)?;
        let active = lane_mask((0..plan.active(0)).map(|_| true), wr);
        for r in 0..l.rules {
            for k in 0..wr {
                hits[r * w + k] = (out[r * wr + k] & active[k]) | (hits[r * w + k] & !active[k]);
            }
        }
    }
    let mut f = WordFrame::new(TAG_OUTPUT, 0, &[], hits.len());
    f.extend(&hits);
    ends.to_client.send(f.finish())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfa::simulate::Simulator;
    use crate::nfa::{NfaConfig, NfaSet};
    use pmsm_kernels::rng::WorkloadRng;

    fn texts(rng: &mut WorkloadRng, n: usize) -> Vec<Vec<u8>> {
        const POOL: &[u8] = b"abc_1 a-";
        (0..n).map(|_| (0..rng.below(12)).map(|_| POOL[rng.below(POOL.len() as u64) as usize]).collect()).collect()
    }

    #[test]
    fn private_runs_equal_the_simulation_and_regex() {
        let mut rng = WorkloadRng::seed_from_u64(31);
        for round in 0..12 {
            let patterns: Vec<String> =
                (0..1 + rng.below(3)).map(|_| crate::nfa::tests::random_pattern(&mut rng, 4)).collect();
            let set = NfaSet::compile(&patterns, &NfaConfig::default()).unwrap();
            let program = Program::new(&set);
            // Across a word of instances and beyond (70), and a single text.
            let texts = texts(&mut rng, if round % 3 == 0 { 1 } else { 70 });
            let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
            let report = run(&program, &refs, None).unwrap();
            for (i, t) in texts.iter().enumerate() {
                for (r, rule) in set.rules.iter().enumerate() {
                    let re = regex::bytes::Regex::new(&format!("(?-u){}", patterns[r])).unwrap();
                    assert_eq!(report.hits[i][r], Simulator::new(rule).is_match(t), "{patterns:?} {r} {t:?}");
                    assert_eq!(report.hits[i][r], re.is_match(t));
                }
            }
        }
    }

    #[cfg(feature = "gitleaks")]
    #[test]
    fn the_whole_gitleaks_set_runs_privately_and_equals_regex() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/gitleaks/gitleaks.toml");
        let config = crate::dfa::gitleaks::GitleaksConfig::read(&path).unwrap();
        let patterns: Vec<String> = config.rules.iter().map(|r| r.pattern()).collect();
        let set = NfaSet::compile(&patterns, &NfaConfig::default()).unwrap();
        let program = Program::new(&set);
        let positives = std::fs::read_to_string(path.with_file_name("positives.txt")).unwrap();
        let negatives = std::fs::read_to_string(path.with_file_name("negatives.txt")).unwrap();
        let texts: Vec<&[u8]> =
            positives.lines().step_by(40).chain(negatives.lines().step_by(50)).map(str::as_bytes).collect();
        let report = run(&program, &texts, None).unwrap();
        let mut hits = 0;
        for (i, t) in texts.iter().enumerate() {
            for (r, p) in patterns.iter().enumerate() {
                let truth = regex::bytes::Regex::new(p).unwrap().is_match(t);
                assert_eq!(report.hits[i][r], truth, "{} on {:?}", config.rules[r].id, String::from_utf8_lossy(t));
                hits += usize::from(truth);
            }
        }
        assert!(hits >= 12, "{hits} hits: the planted texts must match their rules");
    }

    #[test]
    fn empty_batches_and_texts() {
        let set = NfaSet::compile(&["^$".into(), "a".into()], &NfaConfig::default()).unwrap();
        let program = Program::new(&set);
        let r = run(&program, &[b"", b"a", b""], None).unwrap();
        assert_eq!(r.hits, vec![vec![true, false], vec![false, true], vec![true, false]]);
        assert!(run(&program, &[], None).unwrap().hits.is_empty());
    }

    #[cfg(feature = "dev-certs")]
    #[test]
    fn a_run_over_loopback_tls_equals_the_run_in_process() {
        use crate::transport::tls::{Identity, Role};
        let dir = std::env::temp_dir().join(format!("pmsm-nfa-tls-{}", std::process::id()));
        crate::transport::certs::write_dev_certs(&dir).unwrap();
        let set = NfaSet::compile(&["a[bc]{2}".into(), r"\bx1".into()], &NfaConfig::default()).unwrap();
        let program = Program::new(&set);
        let texts: Vec<&[u8]> = vec![b"xabc", b"", b"zz x1", b"acb x12 abb"];
        let net = crate::transport::tcp::loopback(|r| Identity::load(&dir, r), LINK_DEPTH, DEALER_DEPTH).unwrap();
        let tcp = run_on(&program, &texts, net).unwrap();
        let local = run(&program, &texts, None).unwrap();
        assert_eq!(tcp.hits, local.hits);
        assert_eq!((tcp.hits[0].clone(), tcp.hits[3].clone()), (vec![true, false], vec![true, true]));
        assert_eq!(tcp.bytes, local.bytes, "the same frames travel");
        // A party presenting another role's certificate is refused on its link.
        let wrong = |r| Identity::load(&dir, if r == Role::Dealer { Role::Client } else { r });
        let e = crate::transport::tcp::loopback(wrong, LINK_DEPTH, DEALER_DEPTH).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.to_string().contains("not for dealer"), "{e}");
    }

    #[test]
    fn a_step_consumes_exactly_the_triples_dealt() {
        let set = NfaSet::compile(&["a[bc]{2}".into()], &NfaConfig::default()).unwrap();
        let program = Program::new(&set);
        let layers: Vec<usize> = program.step.layer_sizes();
        let mut rng = SecretRng::from_seed([1; 32]);
        let mut c1 = Vec::new();
        let seeds = triples::deal(&layers, &mut rng, |c| c1.extend(c.iter().flat_map(|w| w.to_le_bytes())));
        let mut t = StepTriples::new(Party::P1, seeds[1], c1, 0);
        for &n in &layers {
            assert!(t.next_layer(n).is_some());
        }
        assert!(t.is_spent());
        assert!(t.next_layer(1).is_none(), "no triple beyond those dealt");
    }
}
