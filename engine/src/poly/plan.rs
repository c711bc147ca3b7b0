//! The public parameters of a seed-protocol run.

use super::interp;
use crate::dfa::{Dfa, ceil_log2};
use crate::protocol::{Protocol, ProtocolError, Reveal};

/// How the powers `s^2 … s^{n}` are scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PowerSchedule {
    /// Round `k` computes `s^{h+1} … s^{2h}` as `s^h · s^j` (`h = 2^{k−1}`):
    /// `⌈log2 n⌉` rounds, `n − 1` multiplications.
    #[default]
    Doubling,
    /// The seed's schedule: `s^k = s^{k−1} · s`, one multiplication per round.
    Sequential,
}

/// Largest `|S|·|Σ|` the naive protocol accepts: it multiplies `(|S|−1)(|Σ|−1)` cross
/// products per transition (the seed's scale, 1024 × 256, is exactly at the limit).
pub const NAIVE_MAX_TABLE: usize = 1 << 18;
/// Largest `|S|·|Σ|` seed-dpf accepts (its interpolation costs `O(|S|²·|Σ|)`).
pub const SEED_DPF_MAX_TABLE: usize = 1 << 20;

/// `(k, i, j)`: compute `x^k = x^i · x^j`. One inner list per round.
pub type PowerRounds = Vec<Vec<(usize, usize, usize)>>;

/// The rounds computing `x^2 … x^max`.
pub fn power_rounds(max: usize, schedule: PowerSchedule) -> PowerRounds {
    let mut rounds = Vec::new();
    match schedule {
        PowerSchedule::Doubling => {
            let mut have = 1;
            while have < max {
                let top = (2 * have).min(max);
                rounds.push((have + 1..=top).map(|k| (k, have, k - have)).collect());
                have = top;
            }
        }
        PowerSchedule::Sequential => rounds.extend((2..=max).map(|k| vec![(k, k - 1, 1)])),
    }
    rounds
}

/// A seed-protocol plan.
#[derive(Clone, Debug)]
pub struct PolyPlan {
    /// `naive` or `seed-dpf`.
    pub protocol: Protocol,
    /// Output policy.
    pub reveal: Reveal,
    /// `|S|`.
    pub states: usize,
    /// `|Σ|`.
    pub symbols: usize,
    /// `q0`.
    pub start: u32,
    /// Rounds for the powers of the state.
    pub s_rounds: PowerRounds,
    /// Rounds for the powers of the symbol (naive only).
    pub a_rounds: PowerRounds,
    /// Naive: `f(x, y)` coefficients `[i][j]`, as field values.
    pub bivariate: Vec<Vec<u64>>,
    /// seed-dpf: `f_a(x)` coefficients `[a][i]`.
    pub per_symbol: Vec<Vec<u64>>,
    /// `A(x)` for [`Reveal::Accept`].
    pub accept: Option<Vec<u64>>,
    /// seed-dpf: DPF domain bits (`⌈log2 |Σ|⌉`, at least 1).
    pub ka: u32,
    /// seed-dpf: send the seed's full-length keys (shares of the one-hot vector)
    /// instead of tree-DPF keys.
    pub full_length_keys: bool,
}

fn values(v: &[pmsm_kernels::field::F65521]) -> Vec<u64> {
    v.iter().map(|x| x.value()).collect()
}

impl PolyPlan {
    /// Interpolates `dfa` for `protocol` (`Naive` or `SeedDpf`).
    pub fn new(
        dfa: &Dfa,
        protocol: Protocol,
        reveal: Reveal,
        powers: PowerSchedule,
        full_length_keys: bool,
    ) -> Result<PolyPlan, ProtocolError> {
        let (s, a) = (dfa.states(), dfa.symbols());
        let limit = if protocol == Protocol::Naive { NAIVE_MAX_TABLE } else { SEED_DPF_MAX_TABLE };
        if s * a > limit || s >= super::beaver::P as usize || a >= super::beaver::P as usize {
            return Err(ProtocolError::Parameter(format!(
                "{protocol} supports |S|·|Σ| up to {limit} (and |S|, |Σ| below 65521); this machine has {s} × {a}"
            )));
        }
        let naive = protocol == Protocol::Naive;
        Ok(PolyPlan {
            protocol,
            reveal,
            states: s,
            symbols: a,
            start: dfa.start(),
            s_rounds: power_rounds(s - 1, powers),
            a_rounds: if naive { power_rounds(a - 1, powers) } else { Vec::new() },
            bivariate: if naive { interp::bivariate(dfa).iter().map(|r| values(r)).collect() } else { Vec::new() },
            per_symbol: if naive { Vec::new() } else { interp::per_symbol(dfa).iter().map(|r| values(r)).collect() },
            accept: (reveal == Reveal::Accept).then(|| values(&interp::accept_poly(dfa))),
            ka: ceil_log2(a).max(1),
            full_length_keys,
        })
    }

    /// Multiplications per transition (excluding the final accept evaluation).
    pub fn mults_per_transition(&self) -> usize {
        let powers: usize = self.s_rounds.iter().chain(&self.a_rounds).map(Vec::len).sum();
        match self.protocol {
            Protocol::Naive => powers + (self.states - 1) * (self.symbols - 1),
            _ => powers + self.symbols,
        }
    }

    /// Sequential server↔server rounds per transition.
    pub fn rounds_per_transition(&self) -> usize {
        match self.protocol {
            Protocol::Naive => {
                self.s_rounds.len().max(self.a_rounds.len()) + usize::from(self.states > 1 && self.symbols > 1)
            }
            _ => self.s_rounds.len() + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_schedules() {
        assert_eq!(power_rounds(1, PowerSchedule::Doubling), PowerRounds::new());
        assert_eq!(power_rounds(3, PowerSchedule::Doubling), vec![vec![(2, 1, 1)], vec![(3, 2, 1)]]);
        let r = power_rounds(1023, PowerSchedule::Doubling);
        assert_eq!(r.len(), 10);
        assert_eq!(r.iter().map(Vec::len).sum::<usize>(), 1022);
        let r = power_rounds(1023, PowerSchedule::Sequential);
        assert_eq!((r.len(), r.iter().map(Vec::len).sum::<usize>()), (1022, 1022));
    }
}
