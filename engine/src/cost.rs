//! The cost model of both paths, in one place: what a machine on the DFA path
//! ([`CostModel`], one lookup per symbol) and a rule on the NFA path ([`NfaCost`], a
//! circuit of Beaver ANDs per symbol) cost per input byte, and the choice between them
//! ([`choose`]).
//!
//! Why one module at the crate's root, and neither in `dfa/` nor in `nfa/`: the
//! constants of the two paths are only comparable if they are measured the same way
//! (the whole in-process private run: client, both servers and the dealer on the same
//! cores, per symbol read) by the same command (`pmsm bench-nfa --calibrate`), and a
//! set's grouping ([`crate::protocol::set::group`]) and its choice of path per rule read
//! them from here. Changing one constant without the others would bias the choice.
//!
//! Both predictions are nanoseconds per input byte of the whole run on this machine's
//! two cores, for batches large enough to fill the pipeline: the lookups run in chunks
//! of up to 1024 instances, the NFA path's ANDs are bit-sliced 64 instances to a word
//! and its rounds are shared by every instance of a batch, so a batch of fewer texts
//! pays more per byte on the NFA path ([`NfaCost::predict`] takes the batch's shape).

use crate::dfa::set::MachineSet;
use crate::protocol::plan::{SMALL_XOR_DOMAIN_BITS, Widths};
use crate::protocol::{ClassMode, Protocol};
use std::fmt;
use std::str::FromStr;

/// Measured constants of the cost of one lookup, per symbol read, on the DFA path.
///
/// A machine of `n = ks + kx` index bits costs one step lookup per symbol, plus one
/// class lookup over the `ka` symbol bits when it uses classes. A lookup over `2^n`
/// entries costs `lookup_ns + entry_ns · 2^n` nanoseconds of the whole in-process run
/// (both servers, dealer and client on two cores), with its own pair of constants up to
/// [`SMALL_XOR_DOMAIN_BITS`] bits, where a server reads precomputed permuted copies of
/// the table and the dealer sends table shares instead of DPF keys. A set's cost per
/// symbol is the sum over its machines.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostModel {
    /// Fixed cost of one lookup over at most [`SMALL_XOR_DOMAIN_BITS`] bits, ns.
    pub small_lookup_ns: f64,
    /// Cost per table entry of such a lookup, ns.
    pub small_entry_ns: f64,
    /// Fixed cost of one larger lookup (the dealer's key pair, openings, framing), ns.
    pub lookup_ns: f64,
    /// Cost per table entry of a larger lookup (the DPF expansion and the table read), ns.
    pub entry_ns: f64,
}

impl CostModel {
    /// lookup-xor, fitted (least relative squares, `n = 5 … 8` and `9 … 16` apart) by
    /// `pmsm bench-nfa --calibrate --gitleaks datasets/gitleaks/gitleaks.toml --texts
    /// datasets/gitleaks/positives.txt datasets/gitleaks/negatives.txt --sample 3
    /// --repeat 3` (its DFA ladder: random machines with 16 symbols, classes off, on
    /// random inputs of the sample texts' 642 lengths, the best of three runs),
    /// 2026-12-01 23:09 UTC, this two-core AVX2 machine at load average 0.8
    /// (`profiles/results/2026-12-01/paths-shared-ors/calibrate.json`): 119 ns a lookup
    /// at `n = 5`, 155 at 8, 181 at 9, 370 at 10, 685 at 12, 1,980 at 14, 11,540 at 16.
    /// (The constants before, 160.4 + 0.1318 · 2^n and 187.9 + 0.2135 · 2^n, were
    /// fitted at 18:07 while another build held a core.)
    pub const LOOKUP_XOR: CostModel =
        CostModel { small_lookup_ns: 124.1, small_entry_ns: 0.1308, lookup_ns: 132.1, entry_ns: 0.1361 };
    /// lookup-ring, fitted at `n = 8 … 14` (8,705 ns at 8, 574,140 at 14, on the machine
    /// under load; the free fit's fixed part came out negative, so it is 0 and the cost
    /// all per entry, at every size).
    pub const LOOKUP_RING: CostModel =
        CostModel { small_lookup_ns: 0.0, small_entry_ns: 36.1, lookup_ns: 0.0, entry_ns: 36.1 };

    /// The measured model of `protocol` (the ring's for anything but lookup-xor).
    pub fn of(protocol: Protocol) -> CostModel {
        if protocol == Protocol::LookupXor { CostModel::LOOKUP_XOR } else { CostModel::LOOKUP_RING }
    }

    /// Predicted ns of one lookup over `2^n` entries.
    pub fn lookup(&self, n: u32) -> f64 {
        let entries = (n as f64).exp2();
        if n <= SMALL_XOR_DOMAIN_BITS {
            self.small_lookup_ns + self.small_entry_ns * entries
        } else {
            self.lookup_ns + self.entry_ns * entries
        }
    }

    /// Predicted ns per symbol of a machine of `states`, `symbols` and `classes`.
    pub fn machine(&self, states: usize, symbols: usize, classes: usize, mode: ClassMode) -> f64 {
        let w = Widths::of(states, symbols, classes, mode);
        self.lookup(w.n()) + if w.classes { self.lookup(w.ka) } else { 0.0 }
    }

    /// Predicted ns per symbol of a set: the sum over its machines.
    pub fn set(&self, set: &MachineSet, mode: ClassMode) -> f64 {
        set.groups().iter().map(|g| self.machine(g.dfa.states(), g.dfa.symbols(), g.dfa.classes().count(), mode)).sum()
    }
}

/// Measured constants of the NFA path's cost per input byte.
///
/// A rule set whose step circuit has `ands` ANDs in `layers` AND layers, run on a batch
/// of texts with `bytes` bytes in all and `steps` bytes in the longest, costs
/// `byte_ns + and_ns · ands + layer_ns · layers · steps / bytes` ns per input byte: the
/// symbol lookup and the input shares per byte; each AND's triple stream, openings and
/// Beaver step per instance (bit-sliced, so per 64 instances a word); and each layer's
/// exchange once per step for the whole batch (its latency shared by the
/// `bytes / steps` instances active on average).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NfaCost {
    /// Cost of a byte whatever the circuit (input shares, symbol lookup), ns.
    pub byte_ns: f64,
    /// Cost of one AND of one instance, ns.
    pub and_ns: f64,
    /// Cost of one AND layer of one step (an exchange between the servers), ns.
    pub layer_ns: f64,
}

/// The shape of a batch, as far as the NFA path's cost goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchShape {
    /// Input bytes in all.
    pub bytes: usize,
    /// Bytes of the longest text (the steps of the run).
    pub steps: usize,
}

impl BatchShape {
    /// The gitleaks sample texts (`datasets/gitleaks/positives.txt` and
    /// `negatives.txt`, 642 texts, the longest 311 bytes), the batch the constants were
    /// measured on and `pmsm info --path auto` predicts for.
    pub const GITLEAKS_SAMPLES: BatchShape = BatchShape { bytes: 45_409, steps: 311 };

    /// The shape of `texts`.
    pub fn of(texts: &[&[u8]]) -> BatchShape {
        BatchShape {
            bytes: texts.iter().map(|t| t.len()).sum(),
            steps: texts.iter().map(|t| t.len()).max().unwrap_or(0),
        }
    }

    /// Steps per input byte (the inverse of the instances active on average).
    pub fn steps_per_byte(&self) -> f64 {
        self.steps as f64 / self.bytes.max(1) as f64
    }
}

impl NfaCost {
    /// Fitted (least relative squares, 74 rows: every third gitleaks rule alone on the
    /// 642 sample texts, 45,409 bytes, the longest 311, the best of three runs; median
    /// error 6.5 %, largest 36 %) by `pmsm bench-nfa --calibrate`, 2026-12-02 03:07 UTC,
    /// after triples and openings were read in place. The fit of 2026-12-01 23:09 (the
    /// run of [`CostModel::LOOKUP_XOR`], whose code has not changed since) was 305.6 +
    /// 1.433 · ANDs + 3,898 · layers · steps / bytes.
    pub const MEASURED: NfaCost = NfaCost { byte_ns: 297.6, and_ns: 1.027, layer_ns: 4_031.0 };

    /// Predicted ns per input byte of a circuit of `ands` ANDs in `layers` layers a
    /// step, on a batch of `shape`.
    pub fn predict(&self, ands: usize, layers: usize, shape: BatchShape) -> f64 {
        self.byte_ns + self.and_ns * ands as f64 + self.layer_ns * layers as f64 * shape.steps_per_byte()
    }
}

/// Which path a rule runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// A lookup per symbol in the rule's (or its group's) DFA.
    Dfa,
    /// The rule's position automaton as a circuit of ANDs.
    Nfa,
}

impl Path {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Path::Dfa => "dfa",
            Path::Nfa => "nfa",
        }
    }
}

/// How the path of each rule is chosen (`--path`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathChoice {
    /// Every rule on the DFA path (one it refuses is refused).
    Dfa,
    /// Every rule on the NFA path.
    Nfa,
    /// Each rule on the path the model predicts cheaper; a rule one path refuses on the
    /// other.
    Auto,
}

impl PathChoice {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PathChoice::Dfa => "dfa",
            PathChoice::Nfa => "nfa",
            PathChoice::Auto => "auto",
        }
    }
}

impl fmt::Display for PathChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PathChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dfa" => Ok(PathChoice::Dfa),
            "nfa" => Ok(PathChoice::Nfa),
            "auto" => Ok(PathChoice::Auto),
            other => Err(format!("unknown path {other:?} (expected dfa, nfa or auto)")),
        }
    }
}

/// The path of a rule under `choice`, from each path's predicted ns per byte (`None`
/// where that path refuses the rule); `None` when the rule has no path. Ties go to the
/// DFA path (its answer needs no circuit).
pub fn choose(choice: PathChoice, dfa_ns: Option<f64>, nfa_ns: Option<f64>) -> Option<Path> {
    match (choice, dfa_ns, nfa_ns) {
        (PathChoice::Dfa, Some(_), _) => Some(Path::Dfa),
        (PathChoice::Nfa, _, Some(_)) => Some(Path::Nfa),
        (PathChoice::Auto, Some(d), Some(n)) => Some(if n < d { Path::Nfa } else { Path::Dfa }),
        (PathChoice::Auto, Some(_), None) => Some(Path::Dfa),
        (PathChoice::Auto, None, Some(_)) => Some(Path::Nfa),
        _ => None,
    }
}

/// The coefficients `c` minimising `Σ_i ((x_i · c) / y_i − 1)²` (least relative
/// squares: every measurement weighs by its relative error, so small costs are fitted
/// as well as large ones); `None` when the rows do not determine them (fewer rows than
/// coefficients, or collinear). Every row has the same length; `y_i > 0`.
pub fn fit_relative(rows: &[(Vec<f64>, f64)]) -> Option<Vec<f64>> {
    let k = rows.first()?.0.len();
    if rows.len() < k || rows.iter().any(|(x, y)| x.len() != k || *y <= 0.0 || !y.is_finite()) {
        return None;
    }
    // Normal equations of the scaled rows x_i / y_i against 1.
    let mut a = vec![vec![0.0f64; k + 1]; k];
    for (x, y) in rows {
        for (row, xi) in a.iter_mut().zip(x) {
            for (r, xj) in row.iter_mut().zip(x) {
                *r += xi * xj / (y * y);
            }
            row[k] += xi / y;
        }
    }
    // Gauss–Jordan elimination with partial pivoting.
    for col in 0..k {
        let pivot = (col..k).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        a.swap(col, pivot);
        let scale = a.iter().map(|r| r[col].abs()).fold(0.0, f64::max);
        if a[col][col].abs() <= 1e-12 * scale.max(1e-300) {
            return None;
        }
        let p = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / p[col];
                for (v, pv) in row.iter_mut().zip(&p).skip(col) {
                    *v -= f * pv;
                }
            }
        }
    }
    Some((0..k).map(|i| a[i][k] / a[i][i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_exact_coefficients_and_refuses_what_it_cannot_determine() {
        let truth = [120.0, 0.3, 4000.0];
        let rows: Vec<(Vec<f64>, f64)> = (0..20)
            .map(|i| {
                let x = vec![1.0, (i * i) as f64 * 10.0, (i % 4) as f64 * 0.01];
                let y = x.iter().zip(truth).map(|(a, b)| a * b).sum();
                (x, y)
            })
            .collect();
        let c = fit_relative(&rows).unwrap();
        for (got, want) in c.iter().zip(truth) {
            assert!((got - want).abs() <= 1e-6 * want, "{c:?}");
        }
        // Collinear columns, too few rows, a non-positive measurement.
        let collinear: Vec<(Vec<f64>, f64)> = (1..5).map(|i| (vec![i as f64, 2.0 * i as f64], i as f64)).collect();
        assert_eq!(fit_relative(&collinear), None);
        assert_eq!(fit_relative(&rows[..2]), None);
        assert_eq!(fit_relative(&[(vec![1.0], 0.0)]), None);
    }

    #[test]
    fn the_choice_follows_the_cheaper_prediction_and_the_refusals() {
        use PathChoice::*;
        assert_eq!(choose(Auto, Some(5.0), Some(4.0)), Some(Path::Nfa));
        assert_eq!(choose(Auto, Some(4.0), Some(5.0)), Some(Path::Dfa));
        assert_eq!(choose(Auto, Some(4.0), Some(4.0)), Some(Path::Dfa));
        assert_eq!(choose(Auto, None, Some(9.0)), Some(Path::Nfa), "a rule the DFA path refuses");
        assert_eq!(choose(Auto, Some(9.0), None), Some(Path::Dfa));
        assert_eq!(choose(Dfa, Some(9.0), Some(1.0)), Some(Path::Dfa));
        assert_eq!(choose(Nfa, Some(1.0), Some(9.0)), Some(Path::Nfa));
        assert_eq!(choose(Dfa, None, Some(1.0)), None);
        assert_eq!(choose(Nfa, Some(1.0), None), None);
        assert_eq!(choose(Auto, None, None), None);
        assert_eq!("auto".parse::<PathChoice>(), Ok(Auto));
        assert!("both".parse::<PathChoice>().unwrap_err().contains("expected dfa, nfa or auto"));
    }

    #[test]
    fn the_nfa_prediction_grows_with_ands_and_layers_and_shrinks_with_lanes() {
        let m = NfaCost { byte_ns: 10.0, and_ns: 2.0, layer_ns: 1000.0 };
        let wide = BatchShape { bytes: 64_000, steps: 100 };
        let narrow = BatchShape { bytes: 1_000, steps: 100 };
        assert!(m.predict(10, 3, wide) < m.predict(20, 3, wide));
        assert!(m.predict(10, 3, wide) < m.predict(10, 4, wide));
        assert!(m.predict(10, 3, wide) < m.predict(10, 3, narrow));
        assert_eq!(BatchShape::of(&[b"ab", b"", b"abcd"]), BatchShape { bytes: 6, steps: 4 });
    }
}
