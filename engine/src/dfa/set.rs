//! Machine sets: many rules read the same input, grouped into product machines.
//!
//! A rule set (a secret scanner's few hundred patterns) is not one product DFA — products
//! of counted patterns explode — and not one machine per rule either: every machine
//! costs the servers a lookup per symbol, and small machines are cheaper joined. A
//! [`MachineSet`] is the set's rules cut into [`Group`]s, each one product machine whose
//! states carry a *label*: which of the group's rules have matched so far (one bit per
//! rule; under [`Policy::Any`] a single bit, so that products of rules merge the states
//! that only differ in *which* rule matched). Labels are the output of a Moore machine
//! and the product is minimised on them ([`super::minimize::minimize_labeled`]).
//!
//! Grouping ([`Grouping`]) is greedy over the rules in increasing size: a rule joins the
//! group being built when the joined product costs no more per symbol than the two
//! apart ([`Grouping::Cost`], with a caller's cost function: the protocol's measured
//! model, `cost::CostModel`), or while it fits a state budget
//! ([`Grouping::Fill`], the "one product of as many as fit" extreme), or never
//! ([`Grouping::Alone`], one machine per rule). Every strategy answers the same.

use super::regex::{RegexConfig, compile};
use super::{Alphabet, Dfa, DfaError, minimize::minimize_labeled};
use rayon::prelude::*;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Most rules in one group: a label is a `u64` of one bit per rule.
pub const MAX_GROUP_RULES: usize = 64;

/// What a set releases to the client, fixed by the machine's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// One bit: whether some rule matched.
    Any,
    /// One bit per rule.
    Rules,
    /// How many rules matched.
    Count,
}

impl Policy {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Any => "any",
            Policy::Rules => "rules",
            Policy::Count => "count",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "any" => Ok(Policy::Any),
            "rules" => Ok(Policy::Rules),
            "count" => Ok(Policy::Count),
            other => Err(format!("unknown set policy {other:?} (expected any, rules or count)")),
        }
    }
}

/// One rule: its id (kept in every output) and its machine.
#[derive(Clone, Debug)]
pub struct SetRule {
    /// The rule's id (a gitleaks rule id, or a rule file's line number).
    pub id: String,
    /// Its machine (accepting when the rule matches).
    pub dfa: Dfa,
}

/// A rule that has no machine in the set, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The rule's id.
    pub id: String,
    /// The reason (a compile error, or its size).
    pub reason: String,
}

/// A product of some of the set's rules.
///
/// Invariants: `labels.len() == dfa.states()`; a state accepts exactly when its label is
/// not 0; `1 ≤ rules.len() ≤ MAX_GROUP_RULES`; under [`Policy::Any`] labels are 0 or 1,
/// otherwise bit `i` of a state's label says whether rule `rules[i]` accepts there.
#[derive(Clone, Debug)]
pub struct Group {
    /// The product machine.
    pub dfa: Dfa,
    /// The set's rules in this group (indices into [`MachineSet::ids`]).
    pub rules: Vec<usize>,
    /// Each state's label.
    pub labels: Vec<u64>,
}

impl Group {
    /// The group of rule `index` alone.
    pub fn single(index: usize, dfa: Dfa) -> Group {
        let labels = dfa.accepting().iter().map(|&a| u64::from(a)).collect();
        Group { dfa, rules: vec![index], labels }
    }

    /// The label after `input` (symbol indices).
    pub fn label(&self, input: &[u32]) -> u64 {
        self.labels[self.dfa.run(input) as usize]
    }
}

/// How rules are cut into groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// Join while the product costs no more per symbol than its parts (the default).
    Cost,
    /// One machine per rule.
    Alone,
    /// Join while the product has at most the state limit's states: as few machines as fit.
    Fill,
}

impl FromStr for Grouping {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cost" => Ok(Grouping::Cost),
            "alone" => Ok(Grouping::Alone),
            "fill" => Ok(Grouping::Fill),
            other => Err(format!("unknown grouping {other:?} (expected cost, alone or fill)")),
        }
    }
}

impl Grouping {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Grouping::Cost => "cost",
            Grouping::Alone => "alone",
            Grouping::Fill => "fill",
        }
    }
}

/// Predicted cost per symbol of a machine of `(states, classes)`, in any unit.
pub type CostFn<'a> = &'a (dyn Fn(usize, usize) -> f64 + Sync);

/// Rules grouped into product machines, with the policy their labels were made for.
#[derive(Clone, Debug)]
pub struct MachineSet {
    ids: Vec<String>,
    policy: Policy,
    groups: Vec<Group>,
}

/// Each `(id, pattern)` compiled alone under `cfg` (in parallel): the rules that have a
/// machine, in the given order, and the ones refused, each with its id and the reason.
pub fn compile_rules(rules: &[(String, String)], cfg: &RegexConfig) -> (Vec<SetRule>, Vec<Refused>) {
    let compiled: Vec<Result<SetRule, Refused>> = rules
        .par_iter()
        .map(|(id, pattern)| match compile(std::slice::from_ref(pattern), cfg) {
            Ok(dfa) => Ok(SetRule { id: id.clone(), dfa }),
            Err(e) => Err(Refused { id: id.clone(), reason: e.to_string() }),
        })
        .collect();
    let (mut ok, mut refused) = (Vec::new(), Vec::new());
    for r in compiled {
        match r {
            Ok(r) => ok.push(r),
            Err(r) => refused.push(r),
        }
    }
    (ok, refused)
}

/// A stand-in character for joint class `c` (private-use plane; never shown).
fn class_symbol(c: u32) -> char {
    char::from_u32(0xE000 + c).expect("private-use code point")
}

/// The product of two groups, minimised on its labels; `None` when the walk would build
/// more than `limit` states or the groups hold too many rules together.
pub fn join(a: &Group, b: &Group, policy: Policy, limit: usize) -> Option<Group> {
    assert_eq!(a.dfa.alphabet(), b.dfa.alphabet(), "join of machines over different alphabets");
    if a.rules.len() + b.rules.len() > MAX_GROUP_RULES {
        return None;
    }
    let (ca, cb) = (a.dfa.classes(), b.dfa.classes());
    let mut joint: HashMap<(u32, u32), u32> = HashMap::new();
    let mut reps: Vec<u32> = Vec::new();
    let class_of: Vec<u32> = (0..a.dfa.symbols() as u32)
        .map(|x| {
            let next = joint.len() as u32;
            let c = *joint.entry((ca.class_of(x), cb.class_of(x))).or_insert(next);
            if c == next {
                reps.push(x);
            }
            c
        })
        .collect();
    let start = (a.dfa.start(), b.dfa.start());
    let mut ids: HashMap<(u32, u32), u32> = HashMap::from([(start, 0)]);
    let mut pairs = vec![start];
    let mut delta: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < pairs.len() {
        let (s, t) = pairs[i];
        for &x in &reps {
            let p = (a.dfa.next(s, x), b.dfa.next(t, x));
            let next = pairs.len() as u32;
            let id = *ids.entry(p).or_insert(next);
            if id == next {
                if pairs.len() >= limit {
                    return None;
                }
                pairs.push(p);
            }
            delta.push(id);
        }
        i += 1;
    }
    let shift = a.rules.len();
    let labels: Vec<u64> = pairs
        .iter()
        .map(|&(s, t)| {
            let (la, lb) = (a.labels[s as usize], b.labels[t as usize]);
            if policy == Policy::Any { u64::from(la | lb != 0) } else { la | (lb << shift) }
        })
        .collect();
    let classes = Alphabet::from_chars((0..reps.len() as u32).map(class_symbol).collect()).expect("distinct classes");
    let accepting = labels.iter().map(|&l| l != 0).collect();
    let walked = Dfa::new(classes, pairs.len(), 0, accepting, delta, "join").expect("a product of valid machines");
    let (min, labels) = minimize_labeled(&walked, &labels);
    let wide = (0..min.states() as u32).flat_map(|s| class_of.iter().map(move |&c| (s, c)));
    let delta = wide.map(|(s, c)| min.next(s, c)).collect();
    let dfa = Dfa::new(a.dfa.alphabet().clone(), min.states(), min.start(), min.accepting().to_vec(), delta, "join")
        .expect("the widened quotient is valid")
        .with_natural_output(a.dfa.natural_output());
    let mut rules = a.rules.clone();
    rules.extend(&b.rules);
    Some(Group { dfa, rules, labels })
}

impl MachineSet {
    /// Groups `rules` (at least one, all over one alphabet) for `policy`. `cost` predicts
    /// a machine's cost per symbol from its states and symbol classes ([`Grouping::Cost`]
    /// joins while the product costs no more than its parts); no product has more than
    /// `max_states` states.
    pub fn new(
        rules: Vec<SetRule>,
        policy: Policy,
        grouping: Grouping,
        cost: CostFn<'_>,
        max_states: usize,
    ) -> Result<MachineSet, DfaError> {
        let bad = |message: String| DfaError::Field { file: "machine set".into(), field: "rules".into(), message };
        let Some(first) = rules.first() else { return Err(bad("a set needs at least one rule".into())) };
        if let Some(r) = rules.iter().find(|r| r.dfa.alphabet() != first.dfa.alphabet()) {
            return Err(bad(format!("rule {} is over another alphabet than rule {}", r.id, first.id)));
        }
        let mut order: Vec<usize> = (0..rules.len()).collect();
        order.sort_by_key(|&i| (rules[i].dfa.states(), i));
        let ids: Vec<String> = rules.iter().map(|r| r.id.clone()).collect();
        let mut singles: Vec<Option<Group>> =
            rules.into_iter().enumerate().map(|(i, r)| Some(Group::single(i, r.dfa))).collect();
        let mut take = |i: usize| singles[i].take().expect("each rule once");
        let own = |g: &Group| cost(g.dfa.states(), g.dfa.classes().count());
        let mut groups = Vec::new();
        let mut current = take(order[0]);
        for &i in &order[1..] {
            let next = take(i);
            let joined = match grouping {
                Grouping::Alone => None,
                Grouping::Fill => join(&current, &next, policy, max_states),
                Grouping::Cost => {
                    let budget = own(&current) + own(&next);
                    // The walk stops once the product could not be worth it: at most
                    // twice the states that the budget allows (minimisation merges some).
                    let classes = current.dfa.classes().count().max(next.dfa.classes().count());
                    let mut fit = current.dfa.states().max(next.dfa.states());
                    while fit < max_states && cost(fit * 2, classes) <= budget {
                        fit *= 2;
                    }
                    join(&current, &next, policy, (2 * fit).min(max_states))
                        .filter(|j| j.dfa.states() <= max_states && own(j) <= budget)
                }
            };
            match joined {
                Some(j) if j.dfa.states() <= max_states => current = j,
                _ => groups.push(std::mem::replace(&mut current, next)),
            }
        }
        groups.push(current);
        Ok(MachineSet { ids, policy, groups })
    }

    /// The rules' ids, in the order the set was given them.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The policy the groups' labels were made for.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The groups.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The alphabet every group reads.
    pub fn alphabet(&self) -> &Alphabet {
        self.groups[0].dfa.alphabet()
    }

    /// Converts input text to symbol indices; `instance` is used in the error.
    pub fn encode(&self, text: &[u8], instance: usize) -> Result<Vec<u32>, DfaError> {
        self.groups[0].dfa.encode(text, instance)
    }

    /// The plaintext answer for `input` (the reference the private run must equal).
    pub fn answer(&self, input: &[u32]) -> Answer {
        let labels = self.groups.iter().map(|g| g.label(input));
        match self.policy {
            Policy::Any => Answer::Any(labels.into_iter().any(|l| l != 0)),
            Policy::Count => Answer::Count(labels.map(|l| l.count_ones()).sum()),
            Policy::Rules => {
                let mut hit = vec![false; self.ids.len()];
                for (g, l) in self.groups.iter().zip(labels) {
                    for (k, &r) in g.rules.iter().enumerate() {
                        hit[r] = (l >> k) & 1 == 1;
                    }
                }
                Answer::Rules(hit)
            }
        }
    }
}

/// What a client learns about one input from a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// [`Policy::Any`]: whether some rule matched.
    Any(bool),
    /// [`Policy::Rules`]: per rule (in [`MachineSet::ids`] order), whether it matched.
    Rules(Vec<bool>),
    /// [`Policy::Count`]: how many rules matched.
    Count(u32),
}

impl Answer {
    /// Decodes the values a set releases for one input: under [`Policy::Rules`] one per
    /// group, bit `k` of group `g`'s value telling whether rule `groups[g][k]` (of
    /// `rules`) matched; one value otherwise. The error says what the values fail to be
    /// (never the values: DESIGN §6).
    pub fn from_values(
        policy: Policy,
        rules: usize,
        groups: &[Vec<usize>],
        values: &[u64],
    ) -> Result<Answer, &'static str> {
        let one = || match values {
            [v] => Ok(*v),
            _ => Err("one value"),
        };
        match policy {
            Policy::Any => match one()? {
                v @ (0 | 1) => Ok(Answer::Any(v == 1)),
                _ => Err("a bit (0 or 1)"),
            },
            Policy::Count => match one()? {
                v if v <= rules as u64 => Ok(Answer::Count(v as u32)),
                _ => Err("a count of rules"),
            },
            Policy::Rules => {
                if values.len() != groups.len() {
                    return Err("one value per group");
                }
                let mut hit = vec![false; rules];
                for (members, &bits) in groups.iter().zip(values) {
                    if members.len() < 64 && bits >> members.len() != 0 {
                        return Err("one bit per rule");
                    }
                    for (k, &r) in members.iter().enumerate() {
                        *hit.get_mut(r).ok_or("rules of the set")? = (bits >> k) & 1 == 1;
                    }
                }
                Ok(Answer::Rules(hit))
            }
        }
    }

    /// Whether some rule matched (what every policy tells).
    pub fn any(&self) -> bool {
        match self {
            Answer::Any(a) => *a,
            Answer::Rules(r) => r.iter().any(|&h| h),
            Answer::Count(c) => *c > 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(patterns: &[&str]) -> Vec<SetRule> {
        patterns
            .iter()
            .enumerate()
            .map(|(i, p)| SetRule {
                id: format!("r{i}"),
                dfa: compile(&[p.to_string()], &RegexConfig::default()).unwrap(),
            })
            .collect()
    }

    fn states_cost(states: usize, _classes: usize) -> f64 {
        100.0 + states as f64
    }

    #[test]
    fn every_grouping_answers_like_each_rule_alone() {
        let patterns = ["ab", "b+c", "x[0-9]{3}", "(?-u:\\b)key", "q.q", "zz$", "^st"];
        let alone: Vec<Dfa> = rules(&patterns).into_iter().map(|r| r.dfa).collect();
        let mut rng = pmsm_kernels::rng::WorkloadRng::seed_from_u64(3);
        let texts: Vec<Vec<u8>> = (0..300)
            .map(|_| (0..rng.below(12)).map(|_| b"abcxkeyqzst 019"[rng.below(15) as usize]).collect())
            .collect();
        for policy in [Policy::Any, Policy::Rules, Policy::Count] {
            for grouping in [Grouping::Cost, Grouping::Alone, Grouping::Fill] {
                let set = MachineSet::new(rules(&patterns), policy, grouping, &states_cost, 1 << 16).unwrap();
                let counts: Vec<usize> = set.groups().iter().map(|g| g.rules.len()).collect();
                assert_eq!(counts.iter().sum::<usize>(), patterns.len());
                match grouping {
                    Grouping::Alone => assert_eq!(set.groups().len(), patterns.len()),
                    Grouping::Fill => assert_eq!(set.groups().len(), 1),
                    Grouping::Cost => {}
                }
                for t in &texts {
                    let input = set.encode(t, 0).unwrap();
                    let want: Vec<bool> = alone.iter().map(|m| m.is_accepting(m.run(&input))).collect();
                    let got = set.answer(&input);
                    match (&got, policy) {
                        (Answer::Rules(r), Policy::Rules) => assert_eq!(r, &want, "{t:?}"),
                        (Answer::Count(c), Policy::Count) => {
                            assert_eq!(*c as usize, want.iter().filter(|&&h| h).count(), "{t:?}")
                        }
                        (Answer::Any(a), Policy::Any) => assert_eq!(*a, want.iter().any(|&h| h), "{t:?}"),
                        _ => panic!("{got:?} under {policy}"),
                    }
                }
            }
        }
    }

    #[test]
    fn any_products_merge_what_rules_products_keep_apart() {
        let g = |p| Group::single(0, compile(&[String::from(p)], &RegexConfig::default()).unwrap());
        let (a, mut b) = (g("abc"), g("xyz"));
        b.rules = vec![1];
        let any = join(&a, &b, Policy::Any, 1000).unwrap();
        let each = join(&a, &b, Policy::Rules, 1000).unwrap();
        assert!(any.dfa.states() < each.dfa.states(), "{} {}", any.dfa.states(), each.dfa.states());
        assert_eq!(each.rules, vec![0, 1]);
        assert!(join(&a, &b, Policy::Rules, 3).is_none(), "the limit bounds the walk");
    }
}
