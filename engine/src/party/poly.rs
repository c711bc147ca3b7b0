//! The parties of the seed's protocols (naive, seed-dpf): same transport, same framing
//! and byte counting as the lookups, Beaver triples instead of DPF lookups.
//!
//! Chunks run one after another; within a step, every multiplication of a round for
//! every active instance of the chunk travels in one frame.

use super::server::ServerStats;
use crate::poly::beaver::{ELEM_BITS, P, Triples, add, mul, share};
use crate::poly::plan::PolyPlan;
use crate::protocol::plan::Chunk;
use crate::protocol::wire::{
    decode_input_payload, decode_input_values, decode_openings, decode_output, decode_triples, encode_input,
    encode_input_payload, encode_openings, encode_output, encode_triples,
};
use crate::protocol::{Protocol, ProtocolError, Reveal};
use crate::transport::{ClientEnds, ServerEnds};
use pmsm_kernels::Party;
use pmsm_kernels::dpf::{Dpf, DpfKey};
use pmsm_kernels::field::F65521;
use pmsm_kernels::rng::SecretRng;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One multiplication round: `count` products in all.
#[derive(Clone, Debug)]
pub struct PolyRound {
    /// Position in the run (named in every frame).
    pub id: u32,
    /// Products in the round (multiplications × active instances).
    pub count: usize,
}

/// What one step (or the final accept evaluation) of a chunk multiplies, per instance.
fn step_rounds(plan: &PolyPlan) -> Vec<usize> {
    match plan.protocol {
        Protocol::Naive => {
            let r = plan.s_rounds.len().max(plan.a_rounds.len());
            let mut v: Vec<usize> = (0..r)
                .map(|i| plan.s_rounds.get(i).map_or(0, Vec::len) + plan.a_rounds.get(i).map_or(0, Vec::len))
                .collect();
            if plan.states > 1 && plan.symbols > 1 {
                v.push((plan.states - 1) * (plan.symbols - 1));
            }
            v
        }
        _ => plan.s_rounds.iter().map(Vec::len).chain([plan.symbols]).collect(),
    }
}

/// Every multiplication round of a run, in the order dealer and servers walk them.
pub fn rounds(plan: &PolyPlan, chunks: &[Chunk]) -> Vec<PolyRound> {
    let per_step = step_rounds(plan);
    let accept: Vec<usize> =
        if plan.reveal == Reveal::Accept { plan.s_rounds.iter().map(Vec::len).collect() } else { Vec::new() };
    let mut out = Vec::new();
    let mut push = |m: usize, active: usize| {
        if m * active > 0 {
            out.push(PolyRound { id: out.len() as u32, count: m * active });
        }
    };
    for c in chunks {
        for t in 0..c.steps() {
            for &m in &per_step {
                push(m, c.active_at(t));
            }
        }
        for &m in &accept {
            push(m, c.instances.len());
        }
    }
    out
}

/// Triples generated per parallel task.
const TRIPLE_BATCH: usize = 1 << 14;

/// The dealer's frames for every round: Beaver triples, generated in parallel (rayon)
/// in batches, each from its own generator forked from the dealer's CSPRNG.
pub fn deal_all(
    rounds: &[PolyRound],
    rng: &mut SecretRng,
    mut each: impl FnMut([Vec<u8>; 2]) -> Result<(), ProtocolError>,
) -> Result<(), ProtocolError> {
    for r in rounds {
        let forks: Vec<SecretRng> = (0..r.count.div_ceil(TRIPLE_BATCH)).map(|_| rng.fork()).collect();
        let parts: Vec<[Triples; 2]> = forks
            .into_par_iter()
            .enumerate()
            .map(|(b, mut fork)| Triples::deal(TRIPLE_BATCH.min(r.count - b * TRIPLE_BATCH), &mut fork))
            .collect();
        each([0, 1].map(|b| {
            // Wire order: all a, then all b, then all c.
            let (a, bb, c) = (
                parts.iter().flat_map(|p| p[b].a.iter().copied()),
                parts.iter().flat_map(|p| p[b].b.iter().copied()),
                parts.iter().flat_map(|p| p[b].c.iter().copied()),
            );
            let elements: Vec<u64> = a.chain(bb).chain(c).collect();
            encode_triples(r.id, r.count, &elements, ELEM_BITS)
        }))?;
    }
    Ok(())
}
/// Bytes of one tree-DPF key over the symbol domain.
fn key_len(plan: &PolyPlan) -> usize {
    DpfKey::<F65521>::encoded_len(plan.ka)
}

/// Server `party`'s tree-DPF keys for `total` symbols, `kl` bytes each, from a client's
/// input payload on `link`: each key is checked as it decodes, and must be this server's.
fn decode_keys(
    payload: &[u8],
    total: usize,
    kl: usize,
    party: Party,
    link: crate::transport::Link,
) -> Result<Vec<DpfKey<F65521>>, ProtocolError> {
    let bad = |detail: String| ProtocolError::Frame { link, detail };
    if payload.len() != total * kl {
        return Err(bad(format!("{} key bytes for {total} symbols of {kl}", payload.len())));
    }
    let keys = payload.chunks_exact(kl).map(DpfKey::<F65521>::from_bytes).collect::<Result<Vec<_>, _>>()?;
    if let Some(i) = keys.iter().position(|k| k.party() != party) {
        let theirs = keys[i].party().index();
        return Err(bad(format!("key of symbol {i}: it is server {theirs}'s, and this is server {}", party.index())));
    }
    Ok(keys)
}

/// Client: the input frames of every chunk for server 0 and 1.
pub fn share_inputs(
    plan: &PolyPlan,
    chunks: &[Chunk],
    inputs: &[Vec<u32>],
    rng: &mut SecretRng,
) -> Result<[Vec<Vec<u8>>; 2], ProtocolError> {
    let mut frames = [Vec::new(), Vec::new()];
    for (c, chunk) in chunks.iter().enumerate() {
        let symbols = chunk.in_order(inputs).copied();
        let pair: [Vec<u8>; 2] = match (plan.protocol, plan.full_length_keys) {
            (Protocol::Naive, _) => {
                let (s0, s1): (Vec<u64>, Vec<u64>) = symbols.map(|a| share(u64::from(a), rng)).unzip();
                [
                    encode_input(c as u32, &chunk.lengths, &s0, ELEM_BITS),
                    encode_input(c as u32, &chunk.lengths, &s1, ELEM_BITS),
                ]
            }
            (_, true) => {
                // The seed's naive DPF: additive shares of the one-hot vector, |Σ| elements each.
                let mut sh = [Vec::new(), Vec::new()];
                for a in symbols {
                    for x in 0..plan.symbols as u32 {
                        let (s0, s1) = share(u64::from(x == a), rng);
                        sh[0].push(s0);
                        sh[1].push(s1);
                    }
                }
                sh.map(|s| encode_input(c as u32, &chunk.lengths, &s, ELEM_BITS))
            }
            (_, false) => {
                let points: Vec<(u64, F65521)> = symbols.map(|a| (u64::from(a), F65521::ONE)).collect();
                let keys = Dpf::<F65521>::keygen_batch(plan.ka, &points, rng)?;
                let mut bytes = [Vec::new(), Vec::new()];
                for [k0, k1] in keys {
                    k0.write_bytes(&mut bytes[0]);
                    k1.write_bytes(&mut bytes[1]);
                }
                bytes.map(|b| encode_input_payload(c as u32, &chunk.lengths, &b))
            }
        };
        let [f0, f1] = pair;
        frames[0].push(f0);
        frames[1].push(f1);
    }
    Ok(frames)
}

/// Runs the client: sends the shares, then collects and reconstructs the outputs.
pub fn run_client(
    plan: &PolyPlan,
    chunks: &[Chunk],
    inputs: &[Vec<u32>],
    ends: ClientEnds,
    mut rng: SecretRng,
) -> Result<Vec<u64>, ProtocolError> {
    let ClientEnds { to_server: [mut to0, mut to1], from_server: [mut from0, mut from1] } = ends;
    let [f0, f1] = share_inputs(plan, chunks, inputs, &mut rng)?;
    for f in f0 {
        to0.send(f)?;
    }
    for f in f1 {
        to1.send(f)?;
    }
    let expected: Vec<usize> = chunks.iter().map(|c| c.instances.len()).collect();
    let mut out = vec![0u64; inputs.len()];
    for _ in 0..chunks.len() {
        let (c0, v0) = decode_output(&from0.recv()?, from0.link(), &expected, ELEM_BITS)?;
        let (c1, v1) = decode_output(&from1.recv()?, from1.link(), &expected, ELEM_BITS)?;
        if c0 != c1 {
            return Err(ProtocolError::Frame {
                link: from1.link(),
                detail: format!("output for chunk {c1} while server 0 sent chunk {c0}"),
            });
        }
        for (k, &i) in chunks[c0].instances.iter().enumerate() {
            out[i as usize] = add(v0[k] % P, v1[k] % P);
        }
    }
    Ok(out)
}

/// One server's connection state for multiplication rounds.
struct Mul<'a> {
    party: Party,
    ends: &'a mut ServerEnds,
    next: std::slice::Iter<'a, PolyRound>,
    stats: ServerStats,
    progress: Option<&'a AtomicU64>,
}

impl Mul<'_> {
    /// Shares of `x[i]·y[i]` for all `i`: one round.
    fn mult(&mut self, x: &[u64], y: &[u64]) -> Result<Vec<u64>, ProtocolError> {
        let round = self
            .next
            .next()
            .ok_or_else(|| ProtocolError::Parameter("more multiplication rounds than scheduled".into()))?;
        debug_assert_eq!(round.count, x.len());
        let link = self.ends.from_dealer.link();
        let elems = decode_triples(&self.ends.from_dealer.recv()?, link, round.id, round.count, ELEM_BITS)?;
        let triples = Triples::from_elements(elems, round.count)
            .ok_or_else(|| ProtocolError::Frame { link, detail: "triple element out of the field".into() })?;
        let open = triples.open(x, y);
        self.ends.to_peer.send(encode_openings(round.id, &open, ELEM_BITS))?;
        let sent = Instant::now();
        let peer = decode_openings(
            &self.ends.from_peer.recv()?,
            self.ends.from_peer.link(),
            round.id,
            2 * round.count,
            ELEM_BITS,
        )?;
        if peer.iter().any(|v| *v >= P) {
            return Err(ProtocolError::Frame {
                link: self.ends.from_peer.link(),
                detail: "opening out of the field".into(),
            });
        }
        let z = triples.finish(self.party, &open, &peer);
        self.stats.round_seconds.push(sent.elapsed().as_secs_f64());
        if let Some(p) = self.progress {
            p.fetch_add(1, Ordering::Relaxed);
        }
        Ok(z)
    }

    /// `pw[k]` (k = 1..=max) for every instance, given `pw[1]`, by `rounds`.
    fn powers(
        &mut self,
        first: Vec<u64>,
        max: usize,
        rounds: &[Vec<(usize, usize, usize)>],
    ) -> Result<Vec<Vec<u64>>, ProtocolError> {
        let mut pw = vec![Vec::new(); max + 1];
        pw[1] = first;
        for r in rounds {
            let x: Vec<u64> = r.iter().flat_map(|&(_, i, _)| pw[i].iter().copied()).collect();
            let y: Vec<u64> = r.iter().flat_map(|&(_, _, j)| pw[j].iter().copied()).collect();
            let z = self.mult(&x, &y)?;
            let n = pw[1].len();
            for (m, &(k, _, _)) in r.iter().enumerate() {
                pw[k] = z[m * n..(m + 1) * n].to_vec();
            }
        }
        Ok(pw)
    }
}

/// `Σ_k c[k]·pw[k]` (k ≥ 1) plus `c[0]` on server 0, for each instance.
fn linear(party: Party, c: &[u64], pw: &[Vec<u64>], n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let base = if party == Party::P0 { c[0] } else { 0 };
            c.iter()
                .enumerate()
                .skip(1)
                .filter(|(_, ck)| **ck != 0)
                .fold(base, |acc, (k, ck)| add(acc, mul(*ck, pw[k][i])))
        })
        .collect()
}

/// Runs server `party` of a seed protocol.
pub fn run_server(
    party: Party,
    plan: &PolyPlan,
    chunks: &[Chunk],
    rounds: &[PolyRound],
    mut ends: ServerEnds,
    progress: Option<&AtomicU64>,
) -> Result<ServerStats, ProtocolError> {
    // Client inputs: symbol shares (naive), one-hot shares or DPF keys (seed-dpf).
    let mut inputs = Vec::with_capacity(chunks.len());
    for (c, chunk) in chunks.iter().enumerate() {
        let frame = ends.from_client.recv()?;
        let link = ends.from_client.link();
        let total = chunk.symbols();
        let per_symbol = if plan.protocol == Protocol::SeedDpf { plan.symbols } else { 1 };
        if plan.protocol == Protocol::SeedDpf && !plan.full_length_keys {
            let payload = decode_input_payload(&frame, link, c as u32, &chunk.lengths)?;
            inputs.push(Input::Keys(decode_keys(payload, total, key_len(plan), party, link)?));
        } else {
            let v = decode_input_values(&frame, link, c as u32, &chunk.lengths, ELEM_BITS, total * per_symbol)?;
            if v.iter().any(|x| *x >= P) {
                return Err(ProtocolError::Frame { link, detail: "input share out of the field".into() });
            }
            inputs.push(Input::Shares(v));
        }
    }
    let mut m = Mul { party, ends: &mut ends, next: rounds.iter(), stats: ServerStats::default(), progress };
    for (c, chunk) in chunks.iter().enumerate() {
        let mut state: Vec<u64> =
            vec![if party == Party::P0 { u64::from(plan.start) } else { 0 }; chunk.instances.len()];
        for t in 0..chunk.steps() {
            let (n, at) = (chunk.active_at(t), chunk.start(t));
            let s_now = state[..n].to_vec();
            let next = match plan.protocol {
                Protocol::Naive => naive_step(&mut m, plan, s_now, (0..n).map(|i| inputs[c].share(at + i)).collect())?,
                _ => {
                    let ind = (0..n).map(|i| inputs[c].indicator(at + i, plan)).collect::<Result<Vec<_>, _>>()?;
                    seed_dpf_step(&mut m, plan, s_now, &ind)?
                }
            };
            state[..n].copy_from_slice(&next);
        }
        let out = match &plan.accept {
            Some(acc) => {
                let n = state.len();
                let pw = m.powers(state, plan.states - 1, &plan.s_rounds)?;
                linear(party, acc, &pw, n)
            }
            None => state,
        };
        m.ends.to_client.send(encode_output(c as u32, &out, ELEM_BITS))?;
    }
    Ok(m.stats)
}

/// A chunk's client input, as this server holds it.
enum Input {
    Shares(Vec<u64>),
    Keys(Vec<DpfKey<F65521>>),
}

impl Input {
    /// The share of symbol `k` (naive).
    fn share(&self, k: usize) -> u64 {
        match self {
            Input::Shares(v) => v[k],
            Input::Keys(_) => unreachable!("naive inputs are shares"),
        }
    }

    /// Shares of `[x = a_k]` for every symbol `x` (seed-dpf).
    fn indicator(&self, k: usize, plan: &PolyPlan) -> Result<Vec<u64>, ProtocolError> {
        match self {
            Input::Shares(v) => Ok(v[k * plan.symbols..(k + 1) * plan.symbols].to_vec()),
            Input::Keys(keys) => Ok(keys[k].eval_full()?.iter().take(plan.symbols).map(|x| x.value()).collect()),
        }
    }
}

/// One naive step: powers of `s` and `a`, cross products, `f(s, a)`.
fn naive_step(m: &mut Mul<'_>, plan: &PolyPlan, s: Vec<u64>, a: Vec<u64>) -> Result<Vec<u64>, ProtocolError> {
    let n = s.len();
    let (ms, ma) = (plan.states - 1, plan.symbols - 1);
    let mut pw_s = vec![Vec::new(); ms + 1];
    let mut pw_a = vec![Vec::new(); ma + 1];
    if ms >= 1 {
        pw_s[1] = s;
    }
    if ma >= 1 {
        pw_a[1] = a;
    }
    for r in 0..plan.s_rounds.len().max(plan.a_rounds.len()) {
        let (rs, ra) =
            (plan.s_rounds.get(r).map_or(&[][..], Vec::as_slice), plan.a_rounds.get(r).map_or(&[][..], Vec::as_slice));
        let x: Vec<u64> = rs
            .iter()
            .flat_map(|&(_, i, _)| pw_s[i].iter().copied())
            .chain(ra.iter().flat_map(|&(_, i, _)| pw_a[i].iter().copied()))
            .collect();
        let y: Vec<u64> = rs
            .iter()
            .flat_map(|&(_, _, j)| pw_s[j].iter().copied())
            .chain(ra.iter().flat_map(|&(_, _, j)| pw_a[j].iter().copied()))
            .collect();
        let z = m.mult(&x, &y)?;
        for (q, &(k, _, _)) in rs.iter().enumerate() {
            pw_s[k] = z[q * n..(q + 1) * n].to_vec();
        }
        let off = rs.len() * n;
        for (q, &(k, _, _)) in ra.iter().enumerate() {
            pw_a[k] = z[off + q * n..off + (q + 1) * n].to_vec();
        }
    }
    let c = &plan.bivariate;
    let mut out: Vec<u64> = vec![if m.party == Party::P0 { c[0][0] } else { 0 }; n];
    for i in 0..n {
        for (k, row) in c.iter().enumerate().skip(1) {
            out[i] = add(out[i], mul(row[0], pw_s[k][i]));
        }
        for j in 1..=ma {
            out[i] = add(out[i], mul(c[0][j], pw_a[j][i]));
        }
    }
    if ms >= 1 && ma >= 1 {
        let x: Vec<u64> = (1..=ms)
            .flat_map(|i| (1..=ma).flat_map(move |_| 0..n).map(move |inst| (i, inst)))
            .map(|(i, inst)| pw_s[i][inst])
            .collect();
        let y: Vec<u64> = (1..=ms)
            .flat_map(|_| (1..=ma).flat_map(|j| (0..n).map(move |inst| (j, inst))))
            .map(|(j, inst)| pw_a[j][inst])
            .collect();
        let z = m.mult(&x, &y)?;
        // z holds s^i·a^j for (i, j) in 1..=ms × 1..=ma, instance-minor.
        let cross = c.iter().skip(1).flat_map(|row| row.iter().skip(1));
        for (products, &cij) in z.chunks_exact(n).zip(cross).filter(|(_, cij)| **cij != 0) {
            for (o, p) in out.iter_mut().zip(products) {
                *o = add(*o, mul(cij, *p));
            }
        }
    }
    Ok(out)
}

/// One seed-dpf step: powers of `s`, every `f_a(s)`, `Σ_a f_a(s)·[a = symbol]`.
fn seed_dpf_step(m: &mut Mul<'_>, plan: &PolyPlan, s: Vec<u64>, ind: &[Vec<u64>]) -> Result<Vec<u64>, ProtocolError> {
    let n = s.len();
    let pw = if plan.states > 1 { m.powers(s, plan.states - 1, &plan.s_rounds)? } else { vec![Vec::new()] };
    let x: Vec<u64> = plan.per_symbol.iter().flat_map(|f| linear(m.party, f, &pw, n)).collect();
    let y: Vec<u64> = (0..plan.symbols).flat_map(|a| ind.iter().map(move |v| v[a])).collect();
    let z = m.mult(&x, &y)?;
    Ok((0..n).map(|i| (0..plan.symbols).fold(0, |acc, a| add(acc, z[a * n + i]))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Link;

    /// A seed-dpf server takes only its own keys from the client: the other server's are
    /// a frame error naming the symbol and both parties.
    #[test]
    fn a_server_refuses_the_other_servers_symbol_keys() {
        let bits = 8;
        let kl = DpfKey::<F65521>::encoded_len(bits);
        let mut rng = SecretRng::from_os();
        let pairs: Vec<[DpfKey<F65521>; 2]> =
            (0..3).map(|a| Dpf::<F65521>::keygen(bits, a * 40, F65521::new(1), &mut rng).unwrap()).collect();
        let payload = |pick: &dyn Fn(usize) -> usize| -> Vec<u8> {
            pairs.iter().enumerate().flat_map(|(i, p)| p[pick(i)].to_bytes()).collect()
        };
        let link = Link::ClientToS1;
        assert_eq!(decode_keys(&payload(&|_| 1), 3, kl, Party::P1, link).unwrap().len(), 3);
        let e = decode_keys(&payload(&|i| usize::from(i != 2)), 3, kl, Party::P1, link).unwrap_err().to_string();
        assert_eq!(e, "bad frame on client_to_s1: key of symbol 2: it is server 0's, and this is server 1");
        let e = decode_keys(&payload(&|_| 1)[..kl], 3, kl, Party::P1, link).unwrap_err().to_string();
        assert!(e.contains("key bytes for 3 symbols"), "{e}");
    }
}
