//! Machine sets as the parties run them: many machines over one secret input, and
//! their outputs combined inside the protocol.
//!
//! - **One input, many machines.** The client shares every symbol once (at the widest
//!   width any machine needs, [`SetPlan::symbol_share_bits`]); each server keeps its
//!   share and every machine of the set reads it. What is never shared is a
//!   correlation: each machine's class and step lookups have their own rounds, each
//!   lookup its own fresh mask and DPF key from the dealer ([`super::plan::Schedule`]
//!   gives every machine of a chunk its own rounds, side by side in one wave).
//! - **Group outputs.** After the last step every machine (a group of rules, joined
//!   into one product by [`crate::dfa::set`]) looks its state up in its output table:
//!   its rules' bits ([`Policy::Rules`]), how many matched ([`Policy::Count`]) or
//!   whether any did ([`Policy::Any`]). The outputs are shares, never opened.
//! - **Combination** ([`Level`]). Under `rules` the client receives every group's bits.
//!   Under `count` and `any` the group outputs are combined first, so the client
//!   receives exactly one value: in the ring form, shares add locally, so a count is a
//!   local sum and `any` one more lookup, `[count ≠ 0]`, over the sum's bits (a
//!   count-then-nonzero lookup: DESIGN §8's "one more small circuit" at the cost of a
//!   single lookup); in the boolean form XOR shares do not add, so a tree of small
//!   lookups does it, each node reading up to [`COMBINE_BITS`] bits of its children's
//!   concatenated shares (XOR shares of a concatenation are the concatenation of the
//!   shares) and returning their OR (`any`) or their sum (`count`): ⌈log₈ G⌉ levels of
//!   2^8-entry lookups for `any` over G groups.
//!
//! A lookup's opened index is uniform whatever the index is (DESIGN §3), so the
//! combination's openings reveal nothing either; the client learns the policy's
//! output and nothing of the groups' states or of which group matched under `any`.

use super::plan::{Plan, RoundKind, Table, Widths};
use super::{ClassMode, Protocol, ProtocolError, Reveal};
use crate::cost::CostModel;
use crate::dfa::DfaError;
use crate::dfa::ceil_log2;
use crate::dfa::set::{Grouping, MachineSet, Policy, SetRule};

/// Most index bits a combination node reads (children's fields side by side): at 2^8
/// entries the dealer sends one-hot table shares instead of DPF keys and a server reads
/// precomputed permuted copies ([`super::plan::SMALL_XOR_DOMAIN_BITS`]). A node reads
/// at least two children, so a sum of wide counts may read up to twice their width.
pub const COMBINE_BITS: u32 = 8;

/// One level of a set's combination: every node reads some of the values the level
/// below produced (level 0 reads the groups' outputs, group after group) and produces
/// one value.
#[derive(Clone, Debug)]
pub struct Level {
    /// Each node's children: indices into the values the level reads.
    pub nodes: Vec<Vec<usize>>,
    /// Bits of each child's field in a node's index (child `i` at bits `i · field_bits`).
    pub field_bits: u32,
    /// Bits of each value the level produces.
    pub out_bits: u32,
    /// The nodes' table over their concatenated fields (one table for every node of the
    /// level); `None`: the level adds its children's shares locally (ring form only,
    /// where shares are additive), with no round.
    pub table: Option<Table>,
}

/// The public parameters of a run over one machine or a set of them.
#[derive(Clone, Debug)]
pub struct SetPlan {
    /// The protocol (both lookups; a set needs one).
    pub protocol: Protocol,
    /// Each machine's plan; for a set's group, its `accept` table is the group's output
    /// table.
    pub groups: Vec<Plan>,
    /// The combination after the groups' outputs (empty for one machine and under
    /// [`Policy::Rules`]).
    pub levels: Vec<Level>,
    /// The set's policy (`None`: a single machine, which releases what its plan says).
    pub policy: Option<Policy>,
    /// Bits of each value the client receives.
    pub out_bits: u32,
}

impl SetPlan {
    /// A single machine's plan as a set of one (no combination).
    pub fn single(plan: Plan) -> SetPlan {
        SetPlan {
            protocol: plan.protocol,
            out_bits: plan.output_bits(),
            groups: vec![plan],
            levels: Vec::new(),
            policy: None,
        }
    }

    /// The plan for `set` under `protocol` (a lookup), every group with symbol classes
    /// as `mode` says. An error names the group's rules.
    pub fn new(set: &MachineSet, protocol: Protocol, mode: ClassMode) -> Result<SetPlan, ProtocolError> {
        if !protocol.is_lookup() {
            return Err(ProtocolError::Parameter(format!("a machine set runs on the lookups, not on {protocol}")));
        }
        let policy = set.policy();
        let mut groups = Vec::with_capacity(set.groups().len());
        let mut widths = Vec::with_capacity(set.groups().len());
        for g in set.groups() {
            let mut plan = Plan::new(&g.dfa, protocol, Reveal::State, mode).map_err(|e| {
                let ids: Vec<&str> = g.rules.iter().map(|&r| set.ids()[r].as_str()).collect();
                ProtocolError::Parameter(format!("the machine of rules {}: {e}", ids.join(", ")))
            })?;
            let (bits, out): (u32, Box<dyn Fn(u64) -> u64>) = match policy {
                Policy::Any => (1, Box::new(|l| u64::from(l != 0))),
                Policy::Rules => (g.rules.len() as u32, Box::new(|l| l)),
                Policy::Count => (bits_for(g.rules.len() as u64), Box::new(|l| u64::from(l.count_ones()))),
            };
            let labels = &g.labels;
            plan.accept = Some(Table::build(protocol, plan.ks, bits, |s| labels.get(s).map_or(0, |&l| out(l))));
            plan.reveal = Reveal::Accept;
            widths.push((
                bits,
                match policy {
                    Policy::Any => 1,
                    Policy::Rules => 0,
                    Policy::Count => g.rules.len() as u64,
                },
            ));
            groups.push(plan);
        }
        let (levels, out_bits) = match policy {
            Policy::Rules => (Vec::new(), widths.iter().map(|w| w.0).max().unwrap_or(1)),
            _ => combination(protocol, policy, &widths),
        };
        Ok(SetPlan { protocol, groups, levels, policy: Some(policy), out_bits })
    }

    /// The table a round reads.
    pub fn table(&self, group: usize, kind: RoundKind) -> &Table {
        match kind {
            RoundKind::Combine(l) => self.levels[l].table.as_ref().expect("combination rounds read a table"),
            kind => self.groups[group].table(kind),
        }
    }

    /// Bits of one symbol share sent by the client: the widest any machine needs
    /// (additive shares modulo `2^w` are shares modulo every `2^v`, `v ≤ w`).
    pub fn symbol_share_bits(&self) -> u32 {
        self.groups.iter().map(Plan::symbol_share_bits).max().unwrap_or(1)
    }

    /// Values the client receives per instance.
    pub fn values_out(&self) -> usize {
        self.levels.last().map_or(self.groups.len(), |l| l.nodes.len())
    }

    /// Bytes of every table the plan holds.
    pub fn table_bytes(&self) -> usize {
        let levels: usize = self.levels.iter().filter_map(|l| l.table.as_ref()).map(Table::bytes).sum();
        self.groups.iter().map(Plan::table_bytes).sum::<usize>() + levels
    }
}

/// Bits of a value up to `max`.
fn bits_for(max: u64) -> u32 {
    ceil_log2(max as usize + 1).max(1)
}

/// The combination of group outputs of `(bits, max value)` under `any` or `count`, and
/// the bits of the value it releases.
fn combination(protocol: Protocol, policy: Policy, widths: &[(u32, u64)]) -> (Vec<Level>, u32) {
    let total: u64 = widths.iter().map(|w| w.1).sum();
    if protocol == Protocol::LookupRing {
        // Additive shares: the groups' counts add locally; `any` looks the sum up once.
        let all = (0..widths.len()).collect();
        let sum_bits = bits_for(total);
        let sum = Level { nodes: vec![all], field_bits: sum_bits, out_bits: sum_bits, table: None };
        if policy == Policy::Count {
            return (vec![sum], sum_bits);
        }
        let nonzero = Table::build(protocol, sum_bits, 1, |j| u64::from(j != 0));
        let any = Level { nodes: vec![vec![0]], field_bits: sum_bits, out_bits: 1, table: Some(nonzero) };
        return (vec![sum, any], 1);
    }
    let mut levels = Vec::new();
    let mut values: Vec<(u32, u64)> = widths.to_vec();
    while values.len() > 1 {
        let w = values.iter().map(|v| v.0).max().expect("values");
        let fan = ((COMBINE_BITS / w) as usize).max(2).min(values.len());
        let nodes: Vec<Vec<usize>> = (0..values.len()).collect::<Vec<_>>().chunks(fan).map(<[usize]>::to_vec).collect();
        let next: Vec<(u32, u64)> = nodes
            .iter()
            .map(|n| {
                let max = match policy {
                    Policy::Any => 1,
                    _ => n.iter().map(|&i| values[i].1).sum(),
                };
                (bits_for(max), max)
            })
            .collect();
        let out_bits = next.iter().map(|v| v.0).max().expect("nodes");
        let field = low(w);
        let table = Table::build(protocol, fan as u32 * w, out_bits, |j| {
            let fields = (0..fan).map(|i| (j as u64 >> (i as u32 * w)) & field);
            match policy {
                Policy::Any => u64::from(j != 0),
                _ => fields.sum(),
            }
        });
        levels.push(Level { nodes, field_bits: w, out_bits, table: Some(table) });
        values = next;
    }
    let bits = match policy {
        Policy::Any => 1,
        _ => bits_for(total),
    };
    if levels.is_empty() {
        // One group: its output is the set's.
        return (levels, values.first().map_or(bits, |v| v.0));
    }
    (levels, bits)
}

fn low(bits: u32) -> u64 {
    if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 }
}

/// Index bits of a machine's step lookup under `mode` (for reports).
pub fn step_bits(states: usize, symbols: usize, classes: usize, mode: ClassMode) -> u32 {
    Widths::of(states, symbols, classes, mode).n()
}

/// Groups `rules` for `policy` by `grouping`, with `protocol`'s measured cost model
/// ([`CostModel::of`]) and classes as `mode` says; no product has more than
/// `max_states` states.
pub fn group(
    rules: Vec<SetRule>,
    policy: Policy,
    grouping: Grouping,
    protocol: Protocol,
    mode: ClassMode,
    max_states: usize,
) -> Result<MachineSet, DfaError> {
    let model = CostModel::of(protocol);
    let symbols = rules.first().map_or(256, |r| r.dfa.symbols());
    let cost = move |states: usize, classes: usize| model.machine(states, symbols, classes, mode);
    MachineSet::new(rules, policy, grouping, &cost, max_states)
}
