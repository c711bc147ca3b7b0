//! The dealer (offline phase): for every lookup of the schedule, a fresh mask `r`,
//! shared between the servers, and a DPF key pair for the point `r`.
//!
//! Rounds are produced in schedule order; large rounds are split into batches generated
//! in parallel (rayon), each batch with its own generator forked from the dealer's
//! CSPRNG. Bounded links keep the dealer only a few rounds ahead of the servers.

use super::sharing::Sharing;
use crate::protocol::ProtocolError;
use crate::protocol::bits::low_mask;
use crate::protocol::plan::{Plan, Schedule};
use crate::protocol::wire::encode_correlations;
use crate::transport::Tx;
use crate::transport::inproc::DealerEnds;
use pmsm_kernels::dpf::{Dpf, DpfKey};
use pmsm_kernels::rng::{RngCore, SecretRng};
use rayon::prelude::*;

/// Correlations generated per parallel task.
const BATCH: usize = 512;

/// One round's frames for server 0 and server 1: `count` correlations over `width` bits.
pub fn deal<S: Sharing>(
    round: u32,
    count: usize,
    width: u32,
    rng: &mut SecretRng,
) -> Result<[Vec<u8>; 2], ProtocolError> {
    let forks: Vec<SecretRng> = (0..count.div_ceil(BATCH)).map(|_| rng.fork()).collect();
    type Part = ([Vec<u64>; 2], [Vec<u8>; 2]);
    let parts: Vec<Part> = forks
        .into_par_iter()
        .enumerate()
        .map(|(b, mut r)| {
            let n = BATCH.min(count - b * BATCH);
            let mut masks = [Vec::with_capacity(n), Vec::with_capacity(n)];
            let mut points = Vec::with_capacity(n);
            for _ in 0..n {
                let point = r.next_u64() & low_mask(width);
                let r0 = r.next_u64() & low_mask(width);
                masks[0].push(r0);
                masks[1].push(S::complement(point, r0, width));
                points.push((point, S::ONE));
            }
            let keys = Dpf::<S::Leaf>::keygen_batch(width, &points, &mut r)?;
            let key_len = DpfKey::<S::Leaf>::encoded_len(width);
            let mut bytes = [Vec::with_capacity(n * key_len), Vec::with_capacity(n * key_len)];
            for [k0, k1] in keys {
                k0.write_bytes(&mut bytes[0]);
                k1.write_bytes(&mut bytes[1]);
            }
            Ok((masks, bytes))
        })
        .collect::<Result<_, ProtocolError>>()?;
    let mut masks = [Vec::with_capacity(count), Vec::with_capacity(count)];
    let key_len = DpfKey::<S::Leaf>::encoded_len(width);
    let mut keys = [Vec::with_capacity(count * key_len), Vec::with_capacity(count * key_len)];
    for (m, k) in parts {
        for b in 0..2 {
            masks[b].extend_from_slice(&m[b]);
            keys[b].extend_from_slice(&k[b]);
        }
    }
    Ok([0, 1].map(|b| encode_correlations(round, &masks[b], width, &keys[b])))
}

/// Every round's frames, in schedule order, handed to `each` (which may send or keep
/// them).
pub fn deal_schedule<S: Sharing>(
    plan: &Plan,
    schedule: &Schedule,
    rng: &mut SecretRng,
    mut each: impl FnMut([Vec<u8>; 2]) -> Result<(), ProtocolError>,
) -> Result<(), ProtocolError> {
    for round in &schedule.rounds {
        let width = plan.table(round.kind).domain_bits();
        each(deal::<S>(round.id, round.count, width, rng)?)?;
    }
    Ok(())
}

/// Where the dealer's frames come from in a run.
#[derive(Debug)]
pub enum Source {
    /// Generated while the servers run (the normal, pipelined mode).
    Live(Box<SecretRng>),
    /// Generated beforehand (to time the online phase alone), one pair per round.
    Predealt(Vec<[Vec<u8>; 2]>),
}

/// Runs the dealer for a whole schedule.
pub fn run_dealer<S: Sharing>(
    plan: &Plan,
    schedule: &Schedule,
    ends: DealerEnds,
    source: Source,
) -> Result<(), ProtocolError> {
    let DealerEnds { to_server: [mut to0, mut to1] } = ends;
    let send = |[f0, f1]: [Vec<u8>; 2]| -> Result<(), ProtocolError> {
        to0.send(f0)?;
        to1.send(f1)?;
        Ok(())
    };
    match source {
        Source::Live(mut rng) => deal_schedule::<S>(plan, schedule, &mut rng, send),
        Source::Predealt(frames) => frames.into_iter().try_for_each(send),
    }
}
