//! The deterministic finite automaton model.
//!
//! A [`Dfa`] is `M = (S, Σ, δ, q0, F)` with states `0..states`, a total transition
//! table, and an [`Alphabet`] that turns input text into symbol indices. Every `Dfa`
//! value is valid: the constructor [`Dfa::new`] checks every invariant, so protocol code
//! never re-checks them.
//!
//! - [`json`]: the table format (`{"states": …, "alphabet": …, "delta": …}`);
//! - [`regex`]: regular expressions → minimal DFA, through `regex-automata`;
//! - [`rules`]: rule files, one pattern per line;
//! - `gitleaks` (feature `gitleaks`): gitleaks TOML configurations, rule ids and regexes;
//! - [`sample`]: strings matching a pattern, for planted test texts;
//! - [`set`]: machine sets, rules grouped into labelled product machines;
//! - [`trim`]: search-semantics shortcuts (nullable prefixes and suffixes dropped);
//! - `determinize`: the bounded, absorbing walk of the lazy DFA behind [`regex`];
//! - [`minimize`]: Moore partition refinement (language-preserving);
//! - [`product`]: the union of two machines (accepts when either does);
//! - [`classes`]: symbols with identical columns, merged into classes;
//! - [`random`]: seeded random machines for tests and benchmarks.

mod alphabet;
pub mod classes;
mod determinize;
#[cfg(feature = "gitleaks")]
pub mod gitleaks;
pub mod json;
pub mod minimize;
pub mod product;
pub mod random;
pub mod regex;
pub mod rules;
pub mod sample;
pub mod set;
pub mod trim;

pub use alphabet::Alphabet;
pub use classes::SymbolClasses;

use rayon::prelude::*;

/// The most states a machine may have.
pub const MAX_STATES: usize = 1 << 22;
/// The most symbols an alphabet may have.
pub const MAX_SYMBOLS: usize = 1 << 16;

/// What can be wrong with a machine, its file, its regex, or an input for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DfaError {
    /// A DFA file is not valid JSON or not of the expected shape.
    #[error("{file}: line {line}, column {column}: {message}")]
    Json {
        /// The file (or `<input>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde_json said.
        message: String,
    },
    /// A field of the machine is invalid.
    #[error("{file}: field `{field}`: {message}")]
    Field {
        /// The file (or `<input>`).
        file: String,
        /// Path of the field, e.g. `delta[2][1]`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The machine has more states or symbols than supported.
    #[error("machine too large: {what} is {got}, the limit is {limit}")]
    TooLarge {
        /// `states` or `symbols`.
        what: &'static str,
        /// The size found.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// A regular expression does not parse or does not compile to a total DFA.
    #[error("regex {index} ({pattern:?}): {message}")]
    Regex {
        /// Position of the pattern in the set (0-based).
        index: usize,
        /// The pattern.
        pattern: String,
        /// What went wrong, with the parser's position where it gives one.
        message: String,
    },
    /// The regex compiler produced more states than allowed.
    #[error("the regex set compiles to more than {limit} DFA states (raise --max-states, or simplify the patterns)")]
    RegexTooLarge {
        /// The state limit in force.
        limit: usize,
    },
    /// An input symbol is not in the machine's alphabet.
    #[error("input {instance}: symbol {symbol:?} at position {position} is not in the machine's alphabet")]
    UnknownSymbol {
        /// Which input (0-based).
        instance: usize,
        /// Symbol position within that input (0-based, in symbols).
        position: usize,
        /// The offending symbol, as text.
        symbol: String,
    },
    /// A rule file holds no pattern.
    #[error("{file} holds no pattern (only blank lines and `#` comments)")]
    NoPattern {
        /// The file.
        file: String,
    },
    /// An error on one line of a file of inputs or patterns.
    #[error("{file}: line {line}: {error}")]
    AtLine {
        /// The file (or `standard input`).
        file: String,
        /// 1-based line, as editors count.
        line: usize,
        /// What is wrong on that line.
        error: Box<DfaError>,
    },
    /// Reading a file failed.
    #[error("{file}: {message}")]
    Io {
        /// The file.
        file: String,
        /// The OS error.
        message: String,
    },
}

/// What a machine's answer naturally is: the default of what a client learns.
///
/// A machine compiled from regular expressions answers *does the text match*, its
/// accept bit; a hand-written table may mean its final state (a counter, a parser's
/// mode). This is a default for running and showing the machine, not part of its
/// language: [`crate::process::Fingerprint`] does not cover it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NaturalOutput {
    /// The final state.
    #[default]
    State,
    /// The accept bit.
    Accept,
}

impl NaturalOutput {
    /// The name in the JSON format and in reports (`state`, `accept`).
    pub fn name(self) -> &'static str {
        match self {
            NaturalOutput::State => "state",
            NaturalOutput::Accept => "accept",
        }
    }
}

/// A validated, total DFA.
///
/// Invariants (checked by [`Dfa::new`]): `1 ≤ states ≤ MAX_STATES`;
/// `1 ≤ symbols ≤ MAX_SYMBOLS`; `start < states`; `accepting.len() == states`;
/// `delta.len() == states·symbols` and every entry `< states`. Row `s` of `delta`
/// (`delta[s·symbols .. (s+1)·symbols]`) holds the successors of state `s`. `output` is
/// [`NaturalOutput::State`] unless set by [`Dfa::with_natural_output`].
#[derive(Clone, PartialEq, Eq)]
pub struct Dfa {
    alphabet: Alphabet,
    states: usize,
    start: u32,
    accepting: Vec<bool>,
    delta: Vec<u32>,
    output: NaturalOutput,
}

impl std::fmt::Debug for Dfa {
    /// Sizes only: tables can hold millions of entries.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dfa")
            .field("states", &self.states)
            .field("symbols", &self.symbols())
            .field("start", &self.start)
            .field("accepting", &self.accepting.iter().filter(|a| **a).count())
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl Dfa {
    /// Builds a machine, checking every invariant; `source` names the origin in errors.
    pub fn new(
        alphabet: Alphabet,
        states: usize,
        start: u32,
        accepting: Vec<bool>,
        delta: Vec<u32>,
        source: &str,
    ) -> Result<Dfa, DfaError> {
        let field = |field: &str, message: String| DfaError::Field {
            file: source.to_string(),
            field: field.to_string(),
            message,
        };
        let symbols = alphabet.len();
        if states == 0 {
            return Err(field("states", "a machine needs at least one state".into()));
        }
        if states > MAX_STATES {
            return Err(DfaError::TooLarge { what: "states", got: states, limit: MAX_STATES });
        }
        if symbols == 0 {
            return Err(field("alphabet", "the alphabet is empty".into()));
        }
        if symbols > MAX_SYMBOLS {
            return Err(DfaError::TooLarge { what: "symbols", got: symbols, limit: MAX_SYMBOLS });
        }
        if start as usize >= states {
            return Err(field("start", format!("state {start} is out of range (0..{states})")));
        }
        if accepting.len() != states {
            return Err(field("accepting", format!("{} flags for {states} states", accepting.len())));
        }
        if delta.len() != states * symbols {
            return Err(field("delta", format!("{} entries for {states} states × {symbols} symbols", delta.len())));
        }
        if let Some(i) = delta.iter().position(|&t| t as usize >= states) {
            return Err(field(
                &format!("delta[{}][{}]", i / symbols, i % symbols),
                format!("state {} is out of range (0..{states})", delta[i]),
            ));
        }
        Ok(Dfa { alphabet, states, start, accepting, delta, output: NaturalOutput::State })
    }

    /// The same machine with `output` as its natural output.
    pub fn with_natural_output(mut self, output: NaturalOutput) -> Dfa {
        self.output = output;
        self
    }

    /// What the machine's answer naturally is (the default of what a client learns).
    pub fn natural_output(&self) -> NaturalOutput {
        self.output
    }

    /// The alphabet.
    pub fn alphabet(&self) -> &Alphabet {
        &self.alphabet
    }

    /// Number of states `|S|`.
    pub fn states(&self) -> usize {
        self.states
    }

    /// Number of symbols `|Σ|`.
    pub fn symbols(&self) -> usize {
        self.alphabet.len()
    }

    /// The start state `q0`.
    pub fn start(&self) -> u32 {
        self.start
    }

    /// Whether state `s` is accepting.
    pub fn is_accepting(&self, s: u32) -> bool {
        self.accepting[s as usize]
    }

    /// The accepting flags, indexed by state.
    pub fn accepting(&self) -> &[bool] {
        &self.accepting
    }

    /// `δ(s, a)` for a symbol index `a < |Σ|`.
    #[inline]
    pub fn next(&self, s: u32, a: u32) -> u32 {
        self.delta[s as usize * self.symbols() + a as usize]
    }

    /// The transition table, row-major by state.
    pub fn delta(&self) -> &[u32] {
        &self.delta
    }

    /// The final state after `symbols` from the start state (plaintext, the reference).
    pub fn run(&self, symbols: &[u32]) -> u32 {
        symbols.iter().fold(self.start, |s, &a| self.next(s, a))
    }

    /// Final states of many inputs, evaluated in parallel.
    pub fn run_batch(&self, inputs: &[Vec<u32>]) -> Vec<u32> {
        inputs.par_iter().map(|i| self.run(i)).collect()
    }

    /// Converts input text to symbol indices; `instance` is used in the error.
    pub fn encode(&self, text: &[u8], instance: usize) -> Result<Vec<u32>, DfaError> {
        self.alphabet.encode(text, instance)
    }

    /// The symbol classes of this machine (symbols whose columns are identical).
    pub fn classes(&self) -> SymbolClasses {
        SymbolClasses::of(self)
    }
}

/// `⌈log2 n⌉` for `n ≥ 1` (0 for 1).
pub fn ceil_log2(n: usize) -> u32 {
    n.max(1).next_power_of_two().trailing_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ab() -> Dfa {
        Dfa::new(
            Alphabet::chars("ab").unwrap(),
            4,
            0,
            vec![false, true, false, false],
            vec![2, 3, 3, 3, 3, 1, 3, 3],
            "ab",
        )
        .unwrap()
    }

    #[test]
    fn seed_machine_runs() {
        let m = ab();
        assert_eq!(m.run(&m.encode(b"aaa", 0).unwrap()), 3);
        assert_eq!(m.run(&m.encode(b"ab", 0).unwrap()), 1);
        assert!(m.is_accepting(m.run(&[0, 1])));
        assert_eq!(m.run(&[]), 0);
    }

    #[test]
    fn invariants_are_checked() {
        let a = || Alphabet::chars("ab").unwrap();
        let e = Dfa::new(a(), 2, 0, vec![false; 2], vec![0, 1, 1, 2], "m.json").unwrap_err();
        assert_eq!(e.to_string(), "m.json: field `delta[1][1]`: state 2 is out of range (0..2)");
        assert!(matches!(Dfa::new(a(), 0, 0, vec![], vec![], "m"), Err(DfaError::Field { .. })));
        assert!(Dfa::new(a(), 2, 2, vec![false; 2], vec![0; 4], "m").unwrap_err().to_string().contains("start"));
        assert!(Dfa::new(a(), 2, 0, vec![false; 3], vec![0; 4], "m").unwrap_err().to_string().contains("accepting"));
        assert!(Dfa::new(a(), 2, 0, vec![false; 2], vec![0; 3], "m").unwrap_err().to_string().contains("delta"));
        assert!(matches!(
            Dfa::new(a(), MAX_STATES + 1, 0, vec![], vec![], "m"),
            Err(DfaError::TooLarge { what: "states", .. })
        ));
    }

    #[test]
    fn unknown_symbols_name_their_position() {
        let e = ab().encode(b"abca", 7).unwrap_err();
        assert_eq!(e.to_string(), "input 7: symbol \"c\" at position 2 is not in the machine's alphabet");
    }
}
