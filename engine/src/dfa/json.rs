//! The JSON table format.
//!
//! ```json
//! {"states": 4, "alphabet": ["a", "b"], "start": 0, "accepting": [1],
//!  "delta": [[2, 3], [3, 3], [3, 1], [3, 3]]}
//! ```
//!
//! `delta[s][k]` is the next state from `s` on the `k`-th symbol. `alphabet` is a list of
//! distinct single-character strings (input text is read character by character) or the
//! string `"bytes"` (all 256 byte values; input is read byte by byte). The optional
//! `output` is the machine's [`NaturalOutput`]: `"state"` (the default) or `"accept"`
//! (written for machines compiled from regular expressions). Unknown keys are
//! rejected. Errors name the file and the line and column (syntax) or the field path
//! (`delta[2][1]`) at fault.

use super::{Alphabet, Dfa, DfaError, MAX_STATES, MAX_SYMBOLS, NaturalOutput};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDfa {
    states: u64,
    alphabet: Value,
    start: u64,
    accepting: Vec<u64>,
    #[serde(default)]
    output: Option<Value>,
    delta: Vec<Vec<u64>>,
}

/// Parses a machine from JSON text; `source` names it in errors.
pub fn from_json_str(text: &str, source: &str) -> Result<Dfa, DfaError> {
    let raw: RawDfa = serde_json::from_str(text).map_err(|e| DfaError::Json {
        file: source.to_string(),
        line: e.line(),
        // serde_json counts lines from 1 and columns from 1, except that an error just
        // after a line break (such as an early end of file) is at column 0.
        column: e.column().max(1),
        message: strip_position(&e.to_string()),
    })?;
    let field = |field: String, message: String| DfaError::Field { file: source.to_string(), field, message };
    let alphabet = match &raw.alphabet {
        Value::String(s) if s == "bytes" => Alphabet::Bytes,
        Value::Array(items) => {
            if items.is_empty() {
                return Err(field("alphabet".into(), "the alphabet is empty".into()));
            }
            if items.len() > MAX_SYMBOLS {
                return Err(DfaError::TooLarge { what: "symbols", got: items.len(), limit: MAX_SYMBOLS });
            }
            let mut chars = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let one = item.as_str().and_then(|s| {
                    let mut it = s.chars();
                    it.next().filter(|_| it.next().is_none())
                });
                match one {
                    Some(c) if chars.contains(&c) => {
                        return Err(field(format!("alphabet[{i}]"), format!("symbol {c:?} is listed twice")));
                    }
                    Some(c) => chars.push(c),
                    None => {
                        return Err(field(
                            format!("alphabet[{i}]"),
                            format!("{item} is not a single-character string"),
                        ));
                    }
                }
            }
            Alphabet::from_chars(chars).expect("checked distinct and non-empty")
        }
        other => {
            return Err(field("alphabet".into(), format!("{other} is neither a list of characters nor \"bytes\"")));
        }
    };
    let k = alphabet.len();
    if raw.states > MAX_STATES as u64 {
        return Err(DfaError::TooLarge { what: "states", got: raw.states as usize, limit: MAX_STATES });
    }
    let n = raw.states as usize;
    if raw.delta.len() != n {
        return Err(field("delta".into(), format!("{} rows for {n} states", raw.delta.len())));
    }
    let mut delta = Vec::with_capacity(n * k);
    for (s, row) in raw.delta.iter().enumerate() {
        if row.len() != k {
            return Err(field(format!("delta[{s}]"), format!("{} entries, the alphabet has {k} symbols", row.len())));
        }
        for (a, &t) in row.iter().enumerate() {
            if t >= n as u64 {
                return Err(field(format!("delta[{s}][{a}]"), format!("state {t} is out of range (0..{n})")));
            }
            delta.push(t as u32);
        }
    }
    let mut accepting = vec![false; n];
    for (i, &s) in raw.accepting.iter().enumerate() {
        if s >= n as u64 {
            return Err(field(format!("accepting[{i}]"), format!("state {s} is out of range (0..{n})")));
        }
        if std::mem::replace(&mut accepting[s as usize], true) {
            return Err(field(format!("accepting[{i}]"), format!("state {s} is listed twice")));
        }
    }
    if raw.start >= n.max(1) as u64 {
        return Err(field("start".into(), format!("state {} is out of range (0..{n})", raw.start)));
    }
    let output = match &raw.output {
        None => NaturalOutput::State,
        Some(Value::String(s)) if s == "state" => NaturalOutput::State,
        Some(Value::String(s)) if s == "accept" => NaturalOutput::Accept,
        Some(other) => {
            return Err(field("output".into(), format!("{other} is neither \"state\" nor \"accept\"")));
        }
    };
    Ok(Dfa::new(alphabet, n, raw.start as u32, accepting, delta, source)?.with_natural_output(output))
}

/// serde_json appends " at line L column C"; the error carries those separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The seed's machine (accepts exactly `ab`), for tests.
#[cfg(test)]
pub(crate) fn seed_machine() -> Dfa {
    from_json_str(include_str!("../../../datasets/ab.json"), "datasets/ab.json").expect("the dataset is valid")
}

/// Loads a machine from a JSON file.
pub fn load(path: &Path) -> Result<Dfa, DfaError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DfaError::Io { file: path.display().to_string(), message: e.to_string() })?;
    from_json_str(&text, &path.display().to_string())
}

/// The machine in the JSON table format (one line per state row); `output` is written
/// only when it is not the default (`"state"`), so such files read as before it existed.
pub fn to_json_string(dfa: &Dfa) -> String {
    render(dfa, true)
}

/// The machine's table alone, without its natural output: what identifies the machine
/// the servers compute ([`crate::process::Fingerprint`] hashes it).
pub fn table_json_string(dfa: &Dfa) -> String {
    render(dfa, false)
}

fn render(dfa: &Dfa, with_output: bool) -> String {
    let alphabet = match dfa.alphabet() {
        Alphabet::Bytes => Value::from("bytes"),
        Alphabet::Chars { chars, .. } => Value::from(chars.iter().map(|c| c.to_string()).collect::<Vec<_>>()),
    };
    let accepting: Vec<usize> = (0..dfa.states()).filter(|&s| dfa.is_accepting(s as u32)).collect();
    let rows: Vec<String> =
        dfa.delta().chunks(dfa.symbols()).map(|r| serde_json::to_string(r).expect("integers serialise")).collect();
    let output = match dfa.natural_output() {
        NaturalOutput::Accept if with_output => ", \"output\": \"accept\"",
        _ => "",
    };
    format!(
        "{{\"states\": {}, \"alphabet\": {}, \"start\": {}, \"accepting\": {}{output},\n \"delta\": [\n  {}\n ]}}\n",
        dfa.states(),
        alphabet,
        dfa.start(),
        serde_json::to_string(&accepting).expect("integers serialise"),
        rows.join(",\n  ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dfa::random::random_dfa;
    use pmsm_kernels::rng::WorkloadRng;

    const AB: &str =
        r#"{"states": 4, "alphabet": ["a","b"], "start": 0, "accepting": [1], "delta": [[2,3],[3,3],[3,1],[3,3]]}"#;

    #[test]
    fn the_documented_example_loads() {
        let m = from_json_str(AB, "ab.json").unwrap();
        assert_eq!((m.states(), m.symbols(), m.start()), (4, 2, 0));
        assert_eq!(m.run(&m.encode(b"aaa", 0).unwrap()), 3);
    }

    #[test]
    fn round_trips() {
        let mut r = WorkloadRng::seed_from_u64(4);
        for (n, k) in [(1, 1), (7, 3), (30, 256), (5, 300)] {
            let m = random_dfa(n, k, &mut r);
            assert_eq!(from_json_str(&to_json_string(&m), "rt").unwrap(), m);
            let m = m.with_natural_output(NaturalOutput::Accept);
            assert_eq!(from_json_str(&to_json_string(&m), "rt").unwrap(), m);
        }
    }

    #[test]
    fn the_natural_output_is_optional_and_checked() {
        assert_eq!(from_json_str(AB, "ab.json").unwrap().natural_output(), NaturalOutput::State);
        let with = |v: &str| from_json_str(&AB.replace("\"start\"", &format!("\"output\": {v}, \"start\"")), "m.json");
        assert_eq!(with("\"accept\"").unwrap().natural_output(), NaturalOutput::Accept);
        assert_eq!(with("\"state\"").unwrap().natural_output(), NaturalOutput::State);
        for bad in ["\"bits\"", "1", "[]"] {
            let e = with(bad).unwrap_err().to_string();
            assert_eq!(e, format!("m.json: field `output`: {bad} is neither \"state\" nor \"accept\""));
        }
        // The default is not written, so files of state machines read as they did.
        let m = from_json_str(AB, "ab.json").unwrap();
        assert!(!to_json_string(&m).contains("output"));
        assert_eq!(table_json_string(&m.clone().with_natural_output(NaturalOutput::Accept)), to_json_string(&m));
    }

    fn err(text: &str) -> String {
        from_json_str(text, "m.json").unwrap_err().to_string()
    }

    #[test]
    fn bad_files_get_clear_errors() {
        assert_eq!(
            err("{\"states\": 4,\n \"alphabet\": [\"a\" \"b\"]}"),
            "m.json: line 2, column 19: expected `,` or `]`"
        );
        assert!(
            err(r#"{"states": 1, "alphabet": "bytes", "start": 0, "accepting": [], "delta": [[0]], "extra": 1}"#)
                .contains("unknown field `extra`")
        );
        let with = |alphabet: &str, delta: &str, accepting: &str, start: u32| {
            err(&format!(
                r#"{{"states": 2, "alphabet": {alphabet}, "start": {start}, "accepting": {accepting}, "delta": {delta}}}"#
            ))
        };
        let ok_delta = "[[0,1],[1,0]]";
        assert_eq!(with(r#"["a","a"]"#, ok_delta, "[]", 0), "m.json: field `alphabet[1]`: symbol 'a' is listed twice");
        assert_eq!(
            with(r#"["a","bc"]"#, ok_delta, "[]", 0),
            "m.json: field `alphabet[1]`: \"bc\" is not a single-character string"
        );
        assert_eq!(with("[]", ok_delta, "[]", 0), "m.json: field `alphabet`: the alphabet is empty");
        assert_eq!(
            with("\"ascii\"", ok_delta, "[]", 0),
            "m.json: field `alphabet`: \"ascii\" is neither a list of characters nor \"bytes\""
        );
        assert_eq!(
            with(r#"["a","b"]"#, "[[0,1],[1]]", "[]", 0),
            "m.json: field `delta[1]`: 1 entries, the alphabet has 2 symbols"
        );
        assert_eq!(with(r#"["a","b"]"#, "[[0,1]]", "[]", 0), "m.json: field `delta`: 1 rows for 2 states");
        assert_eq!(
            with(r#"["a","b"]"#, "[[0,1],[1,2]]", "[]", 0),
            "m.json: field `delta[1][1]`: state 2 is out of range (0..2)"
        );
        assert_eq!(
            with(r#"["a","b"]"#, ok_delta, "[5]", 0),
            "m.json: field `accepting[0]`: state 5 is out of range (0..2)"
        );
        assert_eq!(with(r#"["a","b"]"#, ok_delta, "[1,1]", 0), "m.json: field `accepting[1]`: state 1 is listed twice");
        assert_eq!(with(r#"["a","b"]"#, ok_delta, "[]", 2), "m.json: field `start`: state 2 is out of range (0..2)");
        assert!(
            err(r#"{"states": 99999999999, "alphabet": "bytes", "start": 0, "accepting": [], "delta": []}"#)
                .contains("machine too large: states")
        );
        assert!(err(r#"{"states": -1}"#).contains("line 1"));
        // Positions count from 1, as editors do, also at an early end of file.
        assert_eq!(err(""), "m.json: line 1, column 1: EOF while parsing a value");
        assert_eq!(err("{\"states\": 4,\n"), "m.json: line 2, column 1: EOF while parsing a value");
    }
}
