//! What `eval`, `run` and `client` print: one line per instance, then a summary.
//!
//! The three commands share their output options ([`OutputArgs`]) and their fields. As
//! text, instances go to stdout and the summary to stderr. As JSON lines
//! (`--json`), each line says what it is in `"type"`: `"output"` for an instance
//! (`instance`, `final_state`, `accept`, `symbols`; a field the client did not learn is
//! `null`), then one `"summary"` line (`{"type": "summary", "summary": {…}}`).

use crate::sets::{answer_json, answer_text};
use pmsm_engine::InstanceOutput;
use pmsm_engine::dfa::set::Answer;
use serde_json::{Map, Value, json};
use std::io::Write;

/// The output options of `eval`, `run` and `client`.
#[derive(clap::Args)]
pub struct OutputArgs {
    /// One JSON object per instance (`"type": "output"`), then a summary line
    /// (`"type": "summary"`).
    #[arg(long)]
    pub json: bool,
    /// Exit as grep does: 0 when some instance accepted, 1 when none did, 2 on any
    /// error (needs accept bits: a state machine run with --reveal accept, or served so
    /// to a client).
    #[arg(long)]
    pub exit_status: bool,
}

/// A finished batch, as printed.
pub struct Printed<'a> {
    /// One per instance.
    pub outputs: &'a [InstanceOutput],
    /// The protocol's name, or `plaintext` for `eval`.
    pub protocol: &'a str,
    /// Transitions in all.
    pub transitions: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Bits per link this process counted (`None` for `eval`: nothing was sent).
    pub bits: Option<Map<String, Value>>,
    /// Further summary fields (classes, rounds, transport, session).
    pub extra: Map<String, Value>,
    /// For a machine set: each instance's answer under the set's policy, and the rule
    /// ids (printed instead of the final state and accept bit).
    pub answers: Option<(&'a [Answer], &'a [String])>,
}

impl<'a> Printed<'a> {
    /// A plaintext evaluation's outputs (`eval`): nothing was sent.
    pub fn plaintext(
        outputs: &'a [InstanceOutput],
        seconds: f64,
        answers: Option<(&'a [Answer], &'a [String])>,
    ) -> Printed<'a> {
        let transitions = outputs.iter().map(|o| o.symbols).sum();
        Printed { outputs, protocol: "plaintext", transitions, seconds, bits: None, extra: Map::new(), answers }
    }

    /// Whether some instance accepted (`None` when no accept bit was learned).
    pub fn accepted(&self) -> Option<bool> {
        self.outputs.iter().map(|o| o.accept).collect::<Option<Vec<bool>>>().map(|bits| bits.contains(&true))
    }
}

/// `1 thing`, `n things` (`n classes` for a word ending in `s`).
pub fn count(n: usize, thing: &str) -> String {
    match n {
        1 => format!("1 {thing}"),
        _ if thing.ends_with('s') => format!("{n} {thing}es"),
        _ => format!("{n} {thing}s"),
    }
}

/// Prints the instances on `out`, then the summary (on `out` as JSON, else on stderr).
pub fn print(out: &mut impl Write, p: &Printed<'_>, as_json: bool) -> std::io::Result<()> {
    if as_json {
        for (i, o) in p.outputs.iter().enumerate() {
            let line = match p.answers {
                Some((answers, ids)) => {
                    let (key, value) = answer_json(&answers[i], ids);
                    let mut line = Map::new();
                    line.insert("type".into(), json!("output"));
                    line.insert("instance".into(), json!(i));
                    line.insert(key.into(), value);
                    line.insert("symbols".into(), json!(o.symbols));
                    Value::Object(line)
                }
                None => json!({"type": "output", "instance": i, "final_state": o.final_state, "accept": o.accept,
                    "symbols": o.symbols}),
            };
            writeln!(out, "{line}")?;
        }
        let mut summary = Map::new();
        summary.insert("protocol".into(), json!(p.protocol));
        summary.insert("instances".into(), json!(p.outputs.len()));
        summary.insert("transitions".into(), json!(p.transitions));
        summary.insert("seconds".into(), json!(p.seconds));
        summary.extend(p.extra.clone());
        if let Some(bits) = &p.bits {
            summary.insert("bits".into(), Value::Object(bits.clone()));
        }
        return writeln!(out, "{}", json!({"type": "summary", "summary": summary}));
    }
    for (i, o) in p.outputs.iter().enumerate() {
        let verdict = |a: bool| if a { "accept" } else { "reject" };
        let what = match (p.answers, o.final_state, o.accept) {
            (Some((answers, ids)), _, _) => answer_text(&answers[i], ids),
            (None, s, a) => match (s, a) {
                (Some(s), Some(a)) => format!("final state {s}, {}", verdict(a)),
                (Some(s), None) => format!("final state {s}"),
                (None, Some(a)) => verdict(a).to_string(),
                (None, None) => "nothing learned".to_string(),
            },
        };
        writeln!(out, "instance {i}: {what} ({})", count(o.symbols, "symbol"))?;
    }
    let tps = p.transitions as f64 / p.seconds.max(1e-9);
    let extra: String =
        p.extra.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| format!(", {k} {v}")).collect::<String>();
    let bits = p.bits.as_ref().map_or(String::new(), |b| format!(", bits: {}", Value::Object(b.clone())));
    eprintln!(
        "pmsm: {}, {} in {:.3} s ({tps:.0} transitions/s, {}{extra}){bits}",
        count(p.outputs.len(), "instance"),
        count(p.transitions, "transition"),
        p.seconds,
        p.protocol,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(outputs: &[InstanceOutput]) -> Printed<'_> {
        Printed {
            outputs,
            protocol: "plaintext",
            transitions: 0,
            seconds: 0.0,
            bits: None,
            extra: Map::new(),
            answers: None,
        }
    }

    #[test]
    fn accepted_needs_every_accept_bit() {
        let o = |final_state, accept| InstanceOutput { final_state, accept, symbols: 0, answer: None };
        assert_eq!(printed(&[o(None, Some(false)), o(None, Some(true))]).accepted(), Some(true));
        assert_eq!(printed(&[o(None, Some(false))]).accepted(), Some(false));
        assert_eq!(printed(&[o(Some(1), None)]).accepted(), None);
        assert_eq!(printed(&[]).accepted(), Some(false));
    }

    #[test]
    fn counts_agree_in_number() {
        assert_eq!([count(1, "symbol"), count(0, "symbol"), count(2, "state")], ["1 symbol", "0 symbols", "2 states"]);
        assert_eq!([count(1, "symbol class"), count(3, "symbol class")], ["1 symbol class", "3 symbol classes"]);
    }
}
