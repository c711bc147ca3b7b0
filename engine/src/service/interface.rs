//! A served machine's public interface: all a client is given (DESIGN §9).
//!
//! Name, fingerprint, alphabet, the protocol and output policy the machine's owner
//! fixed, and the widths of the shares that travel. Nothing in it lets the client
//! evaluate the machine: no transition table, no accepting set, no state count beyond
//! what the output width implies (and under the `accept` policy not even that). A
//! machine set's interface adds its policy, and under `rules` the rule ids and which
//! group's value carries each rule's bit (nothing of the rules' patterns).

use crate::dfa::set::{Answer, MachineSet, Policy};
use crate::dfa::{Alphabet, Dfa, DfaError};
use crate::process::Fingerprint;
use crate::protocol::plan::Plan;
use crate::protocol::set::SetPlan;
use crate::protocol::{Protocol, Reveal};
use serde::{Deserialize, Serialize};

/// What a client knows of a served machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The machine's name on the servers.
    pub name: String,
    /// SHA-256 of the canonical machine (a client may pin it).
    pub fingerprint: Fingerprint,
    /// How text becomes symbol indices.
    pub alphabet: Alphabet,
    /// The lookup protocol (fixes how symbols are shared: XOR or additive).
    pub protocol: Protocol,
    /// What a release gives.
    pub reveal: Reveal,
    /// Bits of one symbol share.
    pub symbol_bits: u32,
    /// Bits of one output share.
    pub output_bits: u32,
    /// A machine set's output; `None` for a single machine.
    pub set: Option<SetOutput>,
    /// The servers keep sessions in stores: a push returns once both committed it.
    pub durable: bool,
}

/// What a release of a machine set gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetOutput {
    /// The owner's policy.
    pub policy: Policy,
    /// Rules in the set.
    pub rules: usize,
    /// Under [`Policy::Rules`], the rules' ids (empty otherwise).
    pub ids: Vec<String>,
    /// Under [`Policy::Rules`], one value per group: bit `k` of group `g`'s value is rule
    /// `groups[g][k]` (an index into `ids`; empty otherwise).
    pub groups: Vec<Vec<usize>>,
}

/// The JSON form of a set's output.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetWire {
    policy: String,
    rules: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<Vec<usize>>,
}

/// The JSON form (`pmsm client` prints and reads it; a network hello carries it).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    name: String,
    fingerprint: String,
    /// `"bytes"` or a list of one-character strings.
    alphabet: serde_json::Value,
    protocol: String,
    reveal: String,
    symbol_bits: u32,
    output_bits: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    set: Option<SetWire>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    durable: bool,
}

impl Interface {
    /// The interface of `dfa` served as `name` under `plan`'s protocol and policy.
    pub fn of(name: &str, dfa: &Dfa, plan: &Plan) -> Interface {
        Interface {
            name: name.to_string(),
            fingerprint: Fingerprint::of(dfa),
            alphabet: dfa.alphabet().clone(),
            protocol: plan.protocol,
            reveal: plan.reveal,
            symbol_bits: plan.symbol_share_bits(),
            output_bits: plan.output_bits(),
            set: None,
            durable: false,
        }
    }

    /// The interface of machine set `set` served as `name` under `plan`.
    pub fn of_set(name: &str, set: &MachineSet, plan: &SetPlan) -> Interface {
        let policy = set.policy();
        let rules = policy == Policy::Rules;
        Interface {
            name: name.to_string(),
            fingerprint: Fingerprint::of_set(set),
            alphabet: set.alphabet().clone(),
            protocol: plan.protocol,
            reveal: Reveal::Accept,
            symbol_bits: plan.symbol_share_bits(),
            output_bits: plan.out_bits,
            set: Some(SetOutput {
                policy,
                rules: set.ids().len(),
                ids: if rules { set.ids().to_vec() } else { Vec::new() },
                groups: if rules { set.groups().iter().map(|g| g.rules.clone()).collect() } else { Vec::new() },
            }),
            durable: false,
        }
    }

    /// Values one release gives: one per group under a set's `rules` policy, else one.
    pub fn values(&self) -> usize {
        match &self.set {
            Some(o) if o.policy == Policy::Rules => o.groups.len(),
            _ => 1,
        }
    }

    /// A set's answer from the values a release reconstructed; the error says what they
    /// fail to be.
    pub fn answer(&self, values: &[u64]) -> Option<Result<Answer, &'static str>> {
        let o = self.set.as_ref()?;
        Some(Answer::from_values(o.policy, o.rules, &o.groups, values))
    }

    /// Symbols in the alphabet.
    pub fn symbols(&self) -> usize {
        self.alphabet.len()
    }

    /// Text as symbol indices; an unknown character is an error naming its position
    /// (`instance` is the session's place in the caller's numbering, for the message).
    pub fn encode(&self, text: &[u8], instance: usize) -> Result<Vec<u32>, DfaError> {
        self.alphabet.encode(text, instance)
    }

    /// Checks symbol indices against the alphabet; the error names the first unknown.
    pub fn check(&self, symbols: &[u32], instance: usize) -> Result<(), DfaError> {
        match symbols.iter().position(|&a| a as usize >= self.symbols()) {
            None => Ok(()),
            Some(position) => {
                Err(DfaError::UnknownSymbol { instance, position, symbol: symbols[position].to_string() })
            }
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        let alphabet = match &self.alphabet {
            Alphabet::Bytes => serde_json::Value::from("bytes"),
            Alphabet::Chars { chars, .. } => chars.iter().map(|c| serde_json::Value::from(c.to_string())).collect(),
        };
        let fingerprint = self.fingerprint.0.iter().map(|b| format!("{b:02x}")).collect();
        let w = Wire {
            name: self.name.clone(),
            fingerprint,
            alphabet,
            protocol: self.protocol.to_string(),
            reveal: self.reveal.to_string(),
            symbol_bits: self.symbol_bits,
            output_bits: self.output_bits,
            set: self.set.as_ref().map(|o| SetWire {
                policy: o.policy.to_string(),
                rules: o.rules,
                ids: o.ids.clone(),
                groups: o.groups.clone(),
            }),
            durable: self.durable,
        };
        serde_json::to_string(&w).expect("an interface serialises")
    }

    /// Parses the JSON form; the error says which field is wrong.
    pub fn from_json(s: &str) -> Result<Interface, String> {
        let w: Wire = serde_json::from_str(s).map_err(|e| format!("machine interface: {e}"))?;
        let bad = |what: &str| format!("machine interface: {what}");
        let alphabet = match &w.alphabet {
            serde_json::Value::String(s) if s == "bytes" => Alphabet::Bytes,
            serde_json::Value::Array(items) => {
                let chars: Option<Vec<char>> = items
                    .iter()
                    .map(|v| {
                        let mut cs = v.as_str()?.chars();
                        let c = cs.next()?;
                        cs.next().is_none().then_some(c)
                    })
                    .collect();
                chars
                    .and_then(Alphabet::from_chars)
                    .ok_or_else(|| bad("alphabet must be distinct one-character strings"))?
            }
            _ => return Err(bad("alphabet must be \"bytes\" or a list of characters")),
        };
        let fp = (0..w.fingerprint.len())
            .step_by(2)
            .map(|i| w.fingerprint.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| bad("fingerprint must be 64 hex digits"))?;
        let protocol: Protocol = w.protocol.parse().map_err(|e| bad(&format!("protocol: {e}")))?;
        let reveal: Reveal = w.reveal.parse().map_err(|e| bad(&format!("reveal: {e}")))?;
        if !protocol.is_lookup() || !(1..=32).contains(&w.symbol_bits) || !(1..=32).contains(&w.output_bits) {
            return Err(bad("protocol must be a lookup protocol and share widths 1 to 32 bits"));
        }
        let set = match w.set {
            None => None,
            Some(o) => {
                let policy: Policy = o.policy.parse().map_err(|e| bad(&format!("set policy: {e}")))?;
                let (rules, named) = (policy == Policy::Rules, !o.ids.is_empty() || !o.groups.is_empty());
                let each_once = {
                    let mut seen = vec![false; o.ids.len()];
                    o.groups.iter().flatten().all(|&r| r < seen.len() && !std::mem::replace(&mut seen[r], true))
                        && seen.iter().all(|&s| s)
                };
                if (rules && (o.ids.len() != o.rules || !each_once || o.groups.iter().any(|g| g.len() > 64)))
                    || (!rules && named)
                {
                    return Err(bad("set: under rules, every rule id once in 64-rule groups; ids only under rules"));
                }
                Some(SetOutput { policy, rules: o.rules, ids: o.ids, groups: o.groups })
            }
        };
        Ok(Interface {
            name: w.name,
            fingerprint: Fingerprint(fp),
            alphabet,
            protocol,
            reveal,
            symbol_bits: w.symbol_bits,
            output_bits: w.output_bits,
            set,
            durable: w.durable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ClassMode;

    #[test]
    fn the_json_form_round_trips_and_holds_no_table() {
        let dfa = crate::dfa::json::seed_machine();
        let plan = Plan::new(&dfa, Protocol::LookupXor, Reveal::Accept, ClassMode::Auto).unwrap();
        let i = Interface::of("ab", &dfa, &plan);
        let json = i.to_json();
        assert_eq!(Interface::from_json(&json).unwrap(), i);
        for secret in ["delta", "accepting", "states", "start"] {
            assert!(!json.contains(secret), "{json}");
        }
        assert_eq!((i.symbol_bits, i.output_bits), (1, 1));
        assert!(
            Interface::from_json(&json.replace("\"ab\"", "\"ab\",\"delta\":[]")).unwrap_err().contains("unknown field")
        );
        assert!(i.check(&[0, 1, 2], 4).unwrap_err().to_string().contains("position 2"));
    }

    #[test]
    fn a_sets_interface_names_its_rules_only_under_rules() {
        use crate::dfa::regex::RegexConfig;
        use crate::dfa::set::{Grouping, compile_rules};
        let rules: Vec<(String, String)> = [("aws", "AKIA[0-9A-Z]{4}"), ("pin", "pin=[0-9]{4}")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let (ok, _) = compile_rules(&rules, &RegexConfig::default());
        for policy in [Policy::Rules, Policy::Any, Policy::Count] {
            let cost = |s: usize, _: usize| s as f64;
            let set = MachineSet::new(ok.clone(), policy, Grouping::Alone, &cost, 1 << 12).unwrap();
            let plan = SetPlan::new(&set, Protocol::LookupXor, ClassMode::Auto).unwrap();
            let i = Interface::of_set("leaks", &set, &plan);
            let json = i.to_json();
            assert_eq!(Interface::from_json(&json).unwrap(), i);
            assert!(!json.contains("AKIA") && !json.contains("delta"), "{json}");
            assert_eq!(json.contains("\"aws\""), policy == Policy::Rules, "{json}");
            assert_eq!(i.values(), if policy == Policy::Rules { 2 } else { 1 });
            let answer = match policy {
                Policy::Rules => i.answer(&[1, 0]),
                _ => i.answer(&[1]),
            };
            assert!(answer.unwrap().unwrap().any());
            assert!(i.answer(&[2, 0, 0]).unwrap().is_err());
        }
        let bad = r#""set":{"policy":"any","rules":2,"ids":["x"]}"#;
        let json = Interface::of("ab", &crate::dfa::json::seed_machine(), &{
            Plan::new(&crate::dfa::json::seed_machine(), Protocol::LookupXor, Reveal::Accept, ClassMode::Auto).unwrap()
        })
        .to_json()
        .replace("}", &format!(",{bad}}}"));
        assert!(Interface::from_json(&json).unwrap_err().contains("ids only under rules"), "{json}");
    }
}
