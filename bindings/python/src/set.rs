//! `pmsm.MachineSet`: many rules over one input (a gitleaks configuration, or
//! `(rule_id, regex)` pairs), grouped into product machines for a release policy.
//!
//! The set keeps every compiled rule, so an engine may regroup them for another policy
//! or protocol (the groups' labels are made for one policy, and the grouping follows
//! the protocol's cost model); the grouping made at construction (the set's own policy,
//! `lookup-xor`) is what `info()` describes and what an engine of the same settings
//! uses as is.

use crate::engine::setting;
use crate::errors::{Failure, detached};
use pmsm_engine::dfa::gitleaks::GitleaksConfig;
use pmsm_engine::dfa::regex::RegexConfig;
use pmsm_engine::dfa::set::{self, Grouping, Policy, Refused, SetRule, compile_rules};
use pmsm_engine::dfa::{DfaError, ceil_log2};
use pmsm_engine::protocol::set::{group, step_bits};
use pmsm_engine::protocol::{ClassMode, Protocol};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::path::PathBuf;

/// The reason a path-only gitleaks rule has no machine.
const PATH_ONLY: &str = "no regex (a path-only rule)";

/// Rules grouped into product machines (immutable; shared freely between threads).
///
/// Invariants: `rules` is not empty, all over one alphabet; `grouped` groups `rules`
/// for `grouped.policy()` under `protocol`'s cost model.
#[pyclass(frozen, module = "pmsm._native")]
#[derive(Debug)]
pub struct MachineSet {
    rules: Vec<SetRule>,
    refused: Vec<Refused>,
    grouping: Grouping,
    max_states: usize,
    protocol: Protocol,
    grouped: set::MachineSet,
}

impl MachineSet {
    /// The grouped set (what an engine or a service runs).
    pub(crate) fn grouped(&self) -> &set::MachineSet {
        &self.grouped
    }

    /// Groups the rules that compiled; refuses a set where none did.
    fn build(
        rules: Vec<SetRule>,
        refused: Vec<Refused>,
        policy: &str,
        grouping: &str,
        max_states: usize,
    ) -> Result<MachineSet, Failure> {
        let policy: Policy = setting(policy)?;
        let grouping: Grouping = setting(grouping)?;
        if rules.is_empty() {
            let why = refused.first().map_or(String::new(), |r| format!(" (rule {}: {})", r.id, r.reason));
            return Err(DfaError::Field {
                file: "rule set".into(),
                field: "rules".into(),
                message: format!("no rule compiles{why}"),
            }
            .into());
        }
        let protocol = Protocol::LookupXor;
        let grouped = group(rules.clone(), policy, grouping, protocol, ClassMode::Auto, max_states)?;
        Ok(MachineSet { rules, refused, grouping, max_states, protocol, grouped })
    }

    /// The set grouped for `policy` under `protocol` (the one made at construction when
    /// the settings are its own).
    pub fn grouped_for(&self, policy: Policy, protocol: Protocol) -> Result<set::MachineSet, Failure> {
        if policy == self.grouped.policy() && protocol == self.protocol {
            return Ok(self.grouped.clone());
        }
        Ok(group(self.rules.clone(), policy, self.grouping, protocol, ClassMode::Auto, self.max_states)?)
    }

    /// The set's own policy.
    pub fn policy(&self) -> Policy {
        self.grouped.policy()
    }
}

fn regex_config(full_match: bool, max_states: usize) -> RegexConfig {
    RegexConfig { full_match, max_states, ..Default::default() }
}

/// A gitleaks configuration's rules, each compiled alone (ASCII, as Go reads them);
/// rules without a regex and rules that do not compile are listed as refused.
#[pyfunction]
#[pyo3(signature = (path, reveal = "rules", grouping = "cost", max_states = 20_000))]
pub fn gitleaks(
    py: Python<'_>,
    path: PathBuf,
    reveal: &str,
    grouping: &str,
    max_states: usize,
) -> PyResult<MachineSet> {
    detached(py, || {
        let config = GitleaksConfig::read(&path)?;
        let pairs: Vec<(String, String)> = config.rules.iter().map(|r| (r.id.clone(), r.pattern())).collect();
        let (ok, mut refused) = compile_rules(&pairs, &regex_config(false, max_states));
        refused.extend(config.without_regex.into_iter().map(|id| Refused { id, reason: PATH_ONLY.into() }));
        MachineSet::build(ok, refused, reveal, grouping, max_states)
    })
}

/// `(rule_id, regex)` pairs, each compiled alone (Rust `regex` syntax, bytes); rules
/// that do not compile are listed as refused.
#[pyfunction]
#[pyo3(signature = (rules, reveal = "rules", full_match = false, grouping = "cost", max_states = 20_000))]
pub fn machine_set(
    py: Python<'_>,
    rules: Vec<(String, String)>,
    reveal: &str,
    full_match: bool,
    grouping: &str,
    max_states: usize,
) -> PyResult<MachineSet> {
    detached(py, || {
        if rules.is_empty() {
            return Err(Failure::Raised("DfaError", "no rule: a machine set needs at least one".into()));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some((id, _)) = rules.iter().find(|(id, _)| !seen.insert(id.as_str())) {
            return Err(Failure::Raised("DfaError", format!("rule id {id:?} is given twice")));
        }
        let (ok, refused) = compile_rules(&rules, &regex_config(full_match, max_states));
        MachineSet::build(ok, refused, reveal, grouping, max_states)
    })
}

#[pymethods]
impl MachineSet {
    /// The ids of the rules that have a machine, in the order given.
    #[getter]
    fn ids(&self) -> Vec<String> {
        self.grouped.ids().to_vec()
    }

    /// The set's policy: `"any"`, `"rules"` or `"count"`.
    #[getter(policy)]
    fn policy_name(&self) -> &'static str {
        self.grouped.policy().name()
    }

    /// The rules without a machine, as `(id, reason)`.
    #[getter]
    fn refused(&self) -> Vec<(String, String)> {
        self.refused.iter().map(|r| (r.id.clone(), r.reason.clone())).collect()
    }

    /// The rules, the refused ones with their reasons, and the groups (rules, states,
    /// classes, index bits `n`), as the set's own policy groups them.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let set = &self.grouped;
        let d = PyDict::new(py);
        d.set_item("policy", set.policy().name())?;
        d.set_item("protocol", self.protocol.name())?;
        d.set_item("grouping", self.grouping.name())?;
        d.set_item("rules", set.ids().to_vec())?;
        let refused = PyList::empty(py);
        for r in &self.refused {
            let e = PyDict::new(py);
            e.set_item("id", &r.id)?;
            e.set_item("reason", &r.reason)?;
            refused.append(e)?;
        }
        d.set_item("refused", refused)?;
        let groups = PyList::empty(py);
        for g in set.groups() {
            let (s, a, c) = (g.dfa.states(), g.dfa.symbols(), g.dfa.classes().count());
            let e = PyDict::new(py);
            e.set_item("rules", g.rules.iter().map(|&r| set.ids()[r].clone()).collect::<Vec<_>>())?;
            e.set_item("states", s)?;
            e.set_item("classes", c)?;
            e.set_item("n", step_bits(s, a, c, ClassMode::Auto))?;
            groups.append(e)?;
        }
        d.set_item("groups", groups)?;
        let output_bits = match set.policy() {
            Policy::Any => 1,
            Policy::Count => ceil_log2(set.ids().len() + 1).max(1) as usize,
            Policy::Rules => set.ids().len(),
        };
        d.set_item("output_bits", output_bits)?;
        Ok(d)
    }

    /// Plaintext reference: the rule ids that match `text` (every policy's answer
    /// follows from it).
    fn matches(&self, py: Python<'_>, text: &[u8]) -> PyResult<Vec<String>> {
        let rules = &self.rules;
        detached(py, || {
            let mut hit = Vec::new();
            for r in rules {
                let input = r.dfa.encode(text, 0)?;
                if r.dfa.is_accepting(r.dfa.run(&input)) {
                    hit.push(r.id.clone());
                }
            }
            Ok(hit)
        })
    }

    fn __len__(&self) -> usize {
        self.grouped.ids().len()
    }

    fn __repr__(&self) -> String {
        format!(
            "MachineSet(rules={}, refused={}, groups={}, policy={:?})",
            self.grouped.ids().len(),
            self.refused.len(),
            self.grouped.groups().len(),
            self.grouped.policy().name()
        )
    }
}
