//! Machines: `pmsm.Dfa`, the regex compiler, random machines.

use crate::errors::{Failure, detached};
use crate::inputs::Input;
use pmsm_engine::dfa::regex::{self, RegexConfig};
use pmsm_engine::dfa::rules::RuleFile;
use pmsm_engine::dfa::{self, Alphabet, DfaError, json};
use pmsm_engine::poly::plan::{PolyPlan, PowerSchedule};
use pmsm_engine::process::Fingerprint;
use pmsm_engine::protocol::plan::{Plan, index_bits};
use pmsm_engine::protocol::{ClassMode, Protocol, Reveal};
use pmsm_kernels::rng::WorkloadRng;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::path::PathBuf;

/// A validated, total DFA (immutable; shared freely between threads).
#[pyclass(frozen, module = "pmsm._native")]
#[derive(Debug)]
pub struct Dfa {
    pub(crate) inner: dfa::Dfa,
}

/// Whether `s` is JSON text rather than a path.
fn looks_like_json(s: &str) -> bool {
    s.trim_start().starts_with('{')
}

#[pymethods]
impl Dfa {
    /// Loads a machine in the JSON table format, from JSON text or a file path.
    #[staticmethod]
    fn from_json(py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<Dfa> {
        let inner = if let Ok(text) = source.extract::<String>()
            && looks_like_json(&text)
        {
            detached(py, || Ok(json::from_json_str(&text, "<string>")?))?
        } else {
            let path: PathBuf = source.extract()?;
            detached(py, || Ok(json::load(&path)?))?
        };
        Ok(Dfa { inner })
    }

    /// The machine in the JSON table format.
    fn to_json(&self) -> String {
        json::to_json_string(&self.inner)
    }

    /// Number of states.
    #[getter]
    fn states(&self) -> usize {
        self.inner.states()
    }

    /// Number of symbols.
    #[getter]
    fn symbols(&self) -> usize {
        self.inner.symbols()
    }

    /// The start state.
    #[getter]
    fn start(&self) -> u32 {
        self.inner.start()
    }

    /// The alphabet: `"bytes"`, or the characters in symbol order.
    #[getter]
    fn alphabet(&self) -> String {
        alphabet_name(self.inner.alphabet())
    }

    /// The accepting states, ascending.
    #[getter]
    fn accepting(&self) -> Vec<u32> {
        (0..self.inner.states() as u32).filter(|&s| self.inner.is_accepting(s)).collect()
    }

    /// `delta[s][a]`: the next state from `s` on symbol `a`.
    #[getter]
    fn delta(&self) -> Vec<Vec<u32>> {
        self.inner.delta().chunks(self.inner.symbols()).map(<[u32]>::to_vec).collect()
    }

    /// `"state"` or `"accept"`: what a client learns by default.
    #[getter]
    fn natural_output(&self) -> &'static str {
        self.inner.natural_output().name()
    }

    /// Text as symbol indices.
    fn encode(&self, text: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
        let py = text.py();
        match Input::extract(text, 0)? {
            Input::Text(t) => self.inner.encode(&t, 0).map_err(|e| Failure::from(e).into_pyerr(py)),
            Input::Symbols(_) => Err(Failure::Raised("InputError", "encode takes str or bytes".into()).into_pyerr(py)),
        }
    }

    /// Plaintext evaluation: `(final_state, accept)` after `input` (text or symbols).
    fn eval(&self, input: &Bound<'_, PyAny>) -> PyResult<(u32, bool)> {
        let py = input.py();
        let symbols = Input::extract(input, 0)?.encode(&self.inner, 0).map_err(|e| Failure::from(e).into_pyerr(py))?;
        if let Some(position) = symbols.iter().position(|&a| a as usize >= self.inner.symbols()) {
            let e = DfaError::UnknownSymbol { instance: 0, position, symbol: symbols[position].to_string() };
            return Err(Failure::from(e).into_pyerr(py));
        }
        let s = self.inner.run(&symbols);
        Ok((s, self.inner.is_accepting(s)))
    }

    /// Sizes, classes, index widths, table bytes and fingerprint, as `pmsm info --json`
    /// reports them (plus the fingerprint).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.inner;
        let (classes, bytes) = py.detach(|| {
            let reveal = Reveal::from(m.natural_output());
            let bytes = |p: Protocol| Plan::new(m, p, reveal, ClassMode::Auto).ok().map(|plan| plan.table_bytes());
            (m.classes().count(), [bytes(Protocol::LookupXor), bytes(Protocol::LookupRing)])
        });
        let (ks, ka, kc) = (index_bits(m.states()), index_bits(m.symbols()), index_bits(classes));
        let fingerprint: String = Fingerprint::of(m).0.iter().map(|b| format!("{b:02x}")).collect();
        let d = PyDict::new(py);
        d.set_item("states", m.states())?;
        d.set_item("symbols", m.symbols())?;
        d.set_item("alphabet", alphabet_name(m.alphabet()))?;
        d.set_item("start", m.start())?;
        d.set_item("accepting_states", m.accepting().iter().filter(|a| **a).count())?;
        d.set_item("output", m.natural_output().name())?;
        d.set_item("classes", classes)?;
        d.set_item("ks", ks)?;
        d.set_item("ka", ka)?;
        d.set_item("kc", kc)?;
        d.set_item("n", ks + ka)?;
        d.set_item("n_with_classes", ks + kc)?;
        d.set_item("lookup_xor_table_bytes", bytes[0])?;
        d.set_item("lookup_ring_table_bytes", bytes[1])?;
        d.set_item("fingerprint", fingerprint)?;
        Ok(d)
    }

    /// The seed's interpolated polynomials over GF(65521), coefficients lowest degree
    /// first: `f[i][j]` of `x^i·y^j` in `f(x, y)`, `f_a[a][i]` of `x^i` in `f_a(x)`,
    /// `accept[i]` of `x^i` in `A(x)`.
    fn polynomials<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.inner;
        let (naive, seed) = detached(py, || {
            let plan = |p| PolyPlan::new(m, p, Reveal::Accept, PowerSchedule::Doubling, false);
            Ok((plan(Protocol::Naive)?, plan(Protocol::SeedDpf)?))
        })?;
        let d = PyDict::new(py);
        d.set_item("p", pmsm_engine::poly::beaver::P)?;
        d.set_item("f", PyList::new(py, &naive.bivariate)?)?;
        d.set_item("f_a", PyList::new(py, &seed.per_symbol)?)?;
        d.set_item("accept", seed.accept.unwrap_or_default())?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let m = &self.inner;
        let alphabet = match m.alphabet() {
            Alphabet::Bytes => "bytes".to_string(),
            a => format!("{:?}", alphabet_name(a)),
        };
        format!(
            "Dfa(states={}, symbols={}, alphabet={alphabet}, output={:?})",
            m.states(),
            m.symbols(),
            m.natural_output().name()
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Dfa>().is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        let f = Fingerprint::of(&self.inner).0;
        u64::from_le_bytes(f[..8].try_into().expect("8 bytes"))
    }
}

fn alphabet_name(a: &Alphabet) -> String {
    match a {
        Alphabet::Bytes => "bytes".to_string(),
        Alphabet::Chars { chars, .. } => chars.iter().collect(),
    }
}

// The signatures' default `max_states` (a literal, so Python's signature shows it) is
// the CLI's.
const _: () = assert!(regex::DEFAULT_MAX_STATES == 20_000);

fn config(full_match: bool, max_states: usize) -> RegexConfig {
    RegexConfig { full_match, max_states, ..Default::default() }
}

fn restrict(m: dfa::Dfa, alphabet: Option<&str>) -> Result<dfa::Dfa, DfaError> {
    match alphabet {
        Some(chars) => regex::restrict_to_chars(&m, chars),
        None => Ok(m),
    }
}

/// Compiles regular expressions into one minimal machine that accepts when any matches.
#[pyfunction]
#[pyo3(signature = (patterns, full_match = false, max_states = 20_000, alphabet = None))]
pub fn compile(
    py: Python<'_>,
    patterns: &Bound<'_, PyAny>,
    full_match: bool,
    max_states: usize,
    alphabet: Option<String>,
) -> PyResult<Dfa> {
    let patterns: Vec<String> = match patterns.extract::<String>() {
        Ok(one) => vec![one],
        Err(_) => patterns.extract()?,
    };
    let inner = detached(py, || {
        if patterns.is_empty() {
            return Err(Failure::Raised("DfaError", "no pattern: compile needs at least one".into()));
        }
        Ok(restrict(regex::compile(&patterns, &config(full_match, max_states))?, alphabet.as_deref())?)
    })?;
    Ok(Dfa { inner })
}

/// Compiles a rule file (one pattern per line; blank lines and `#` comments skipped).
#[pyfunction]
#[pyo3(signature = (path, full_match = false, max_states = 20_000, alphabet = None))]
pub fn compile_file(
    py: Python<'_>,
    path: PathBuf,
    full_match: bool,
    max_states: usize,
    alphabet: Option<String>,
) -> PyResult<Dfa> {
    let inner = detached(py, || {
        let rules = RuleFile::read(&path)?;
        let patterns: Vec<String> = rules.patterns().map(String::from).collect();
        let m = regex::compile(&patterns, &config(full_match, max_states)).map_err(|e| rules.locate(0, e))?;
        Ok(restrict(m, alphabet.as_deref())?)
    })?;
    Ok(Dfa { inner })
}

/// A uniformly random machine (every transition uniform, each state accepting with
/// probability 1/2, start 0), reproducible from `seed`; as `pmsm random-dfa`.
#[pyfunction]
#[pyo3(signature = (states, symbols, seed = 0))]
pub fn random_dfa(py: Python<'_>, states: usize, symbols: usize, seed: u64) -> PyResult<Dfa> {
    let inner = detached(py, || {
        if states == 0 || symbols == 0 || states > dfa::MAX_STATES || symbols > dfa::MAX_SYMBOLS {
            return Err(Failure::Raised(
                "DfaError",
                format!(
                    "random_dfa: {states} states × {symbols} symbols; sizes must be 1..={} and 1..={}",
                    dfa::MAX_STATES,
                    dfa::MAX_SYMBOLS
                ),
            ));
        }
        Ok(dfa::random::random_dfa(states, symbols, &mut WorkloadRng::seed_from_u64(seed)))
    })?;
    Ok(Dfa { inner })
}
