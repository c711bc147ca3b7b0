//! The client: shares every symbol (one share per server), sends each chunk's shares
//! before any round starts, and reconstructs the released outputs.
//!
//! Symbols outside the alphabet are rejected by the engine before anything is sent.

use super::sharing::Sharing;
use crate::protocol::ProtocolError;
use crate::protocol::bits::low_mask;
use crate::protocol::plan::Schedule;
use crate::protocol::set::SetPlan;
use crate::protocol::wire::{decode_output, encode_input};
use crate::transport::ClientEnds;
use pmsm_kernels::rng::{RngCore, SecretRng};

/// Shares the inputs of every chunk: frames for server 0 and server 1, chunk by chunk.
pub fn share_inputs<S: Sharing>(
    plan: &SetPlan,
    schedule: &Schedule,
    inputs: &[Vec<u32>],
    rng: &mut SecretRng,
) -> [Vec<Vec<u8>>; 2] {
    let width = plan.symbol_share_bits();
    let mut frames = [Vec::with_capacity(schedule.chunks.len()), Vec::with_capacity(schedule.chunks.len())];
    for (c, chunk) in schedule.chunks.iter().enumerate() {
        let mut shares = [Vec::with_capacity(chunk.symbols()), Vec::with_capacity(chunk.symbols())];
        for &a in chunk.in_order(inputs) {
            let a0 = rng.next_u64() & low_mask(width);
            shares[0].push(a0);
            shares[1].push(S::complement(u64::from(a), a0, width));
        }
        for b in 0..2 {
            frames[b].push(encode_input(c as u32, &chunk.lengths, &shares[b], width));
        }
    }
    frames
}

/// Runs the client: sends the shares, then collects and reconstructs every chunk's
/// outputs. Returns [`SetPlan::values_out`] values per instance, instance after
/// instance, in the original order.
pub fn run_client<S: Sharing>(
    plan: &SetPlan,
    schedule: &Schedule,
    inputs: &[Vec<u32>],
    ends: ClientEnds,
    mut rng: SecretRng,
) -> Result<Vec<u64>, ProtocolError> {
    let ClientEnds { to_server: [mut to0, mut to1], from_server: [mut from0, mut from1] } = ends;
    let [f0, f1] = share_inputs::<S>(plan, schedule, inputs, &mut rng);
    for f in f0 {
        to0.send(f)?;
    }
    for f in f1 {
        to1.send(f)?;
    }
    let width = plan.out_bits;
    let per = plan.values_out();
    let expected: Vec<usize> = schedule.chunks.iter().map(|c| c.instances.len() * per).collect();
    let mut got: [Vec<Option<Vec<u64>>>; 2] = [vec![None; expected.len()], vec![None; expected.len()]];
    for _ in 0..expected.len() {
        for (b, rx) in [&mut from0, &mut from1].into_iter().enumerate() {
            let frame = rx.recv()?;
            let (c, shares) = decode_output(&frame, rx.link(), &expected, width)?;
            if got[b][c].replace(shares).is_some() {
                return Err(ProtocolError::Frame { link: rx.link(), detail: format!("second output for chunk {c}") });
            }
        }
    }
    let mut out = vec![0u64; inputs.len() * per];
    for (c, chunk) in schedule.chunks.iter().enumerate() {
        let (s0, s1) = (got[0][c].take().expect("every chunk arrived"), got[1][c].take().expect("every chunk arrived"));
        let m = chunk.instances.len();
        for (k, &i) in chunk.instances.iter().enumerate() {
            for v in 0..per {
                out[i as usize * per + v] = S::reconstruct(s0[v * m + k], s1[v * m + k], width);
            }
        }
    }
    Ok(out)
}
