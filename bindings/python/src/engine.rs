//! `pmsm.Engine`: the batch engine (four parties in this process), over one machine or
//! a machine set.

use crate::errors::{Failure, detached};
use crate::inputs::{Input, extract_all};
use crate::machine::Dfa;
use crate::set::MachineSet;
use pmsm_engine::dfa::set::{Answer, Policy};
use pmsm_engine::protocol::{ClassMode, Protocol, Reveal};
use pmsm_engine::transport::Link;
use pmsm_engine::{InstanceOutput, Report};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::time::Instant;

/// Parses a setting by the engine's own names; a bad one is a `ParameterError` with the
/// CLI's message.
pub fn setting<T: std::str::FromStr<Err = String>>(value: &str) -> Result<T, Failure> {
    value.parse().map_err(|e| Failure::Raised("ParameterError", e))
}

/// What the client learns: the name given, or the machine's natural output.
pub fn reveal_of(reveal: Option<&str>, dfa: &pmsm_engine::dfa::Dfa) -> Result<Reveal, Failure> {
    match reveal {
        Some(r) => setting(r),
        None => Ok(Reveal::from(dfa.natural_output())),
    }
}

/// A private DFA evaluator over one machine or a machine set.
#[pyclass(frozen, module = "pmsm._native")]
#[derive(Debug)]
pub struct Engine {
    inner: pmsm_engine::Engine,
}

/// What an engine runs.
enum Target {
    One(pmsm_engine::dfa::Dfa),
    Set(Py<MachineSet>),
}

/// One answer of a set as a tuple `(any, rule ids or None, number matched or None, symbols)`.
pub fn answer_tuple<'py>(py: Python<'py>, ids: &[String], a: &Answer, symbols: usize) -> PyResult<Bound<'py, PyTuple>> {
    let (rules, count) = match a {
        Answer::Any(_) => (None, None),
        Answer::Rules(hit) => {
            (Some(ids.iter().zip(hit).filter(|(_, h)| **h).map(|(id, _)| id.clone()).collect::<Vec<_>>()), None)
        }
        Answer::Count(c) => (None, Some(*c)),
    };
    PyTuple::new(
        py,
        [
            a.any().into_pyobject(py)?.to_owned().into_any(),
            rules.into_pyobject(py)?.into_any(),
            count.into_pyobject(py)?.into_any(),
            symbols.into_pyobject(py)?.into_any(),
        ],
    )
}

/// One output as a tuple `(final_state, accept, symbols)`.
pub fn output_tuple<'py>(py: Python<'py>, o: &InstanceOutput) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            o.final_state.into_pyobject(py)?.into_any(),
            o.accept.into_pyobject(py)?.into_any(),
            o.symbols.into_pyobject(py)?.into_any(),
        ],
    )
}

/// Bytes per link, by the link names of the CLI's reports.
pub fn link_dict<'py>(py: Python<'py>, bytes: &pmsm_engine::LinkBytes) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for l in Link::ALL {
        d.set_item(l.name(), bytes.get(l))?;
    }
    Ok(d)
}

fn report_dict<'py>(py: Python<'py>, r: &Report) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("protocol", r.protocol.name())?;
    d.set_item("instances", r.outputs.len())?;
    d.set_item("transitions", r.transitions)?;
    d.set_item("seconds", r.seconds)?;
    d.set_item("classes", r.classes)?;
    d.set_item("rounds", r.rounds)?;
    d.set_item("bytes", link_dict(py, &r.bytes)?)?;
    d.set_item("round_seconds", &r.round_seconds)?;
    Ok(d)
}

impl Engine {
    /// Encodes every input (texts with the alphabet, symbols checked by the engine).
    fn encode(&self, inputs: Vec<Input>) -> Result<Vec<Vec<u32>>, Failure> {
        let dfa = self.inner.dfa();
        Ok(inputs.into_iter().enumerate().map(|(i, x)| x.encode(dfa, i)).collect::<Result<Vec<_>, _>>()?)
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (machine, protocol = "lookup-xor", reveal = None, classes = "auto", chunk = None, threads = None))]
    fn new(
        py: Python<'_>,
        machine: &Bound<'_, PyAny>,
        protocol: &str,
        reveal: Option<&str>,
        classes: &str,
        chunk: Option<usize>,
        threads: Option<usize>,
    ) -> PyResult<Engine> {
        let target = if let Ok(d) = machine.cast::<Dfa>() {
            Target::One(d.get().inner.clone())
        } else if let Ok(s) = machine.cast::<MachineSet>() {
            Target::Set(s.clone().unbind())
        } else {
            let got = machine.get_type().name().map_or_else(|_| "?".to_string(), |n| n.to_string());
            return Err(
                Failure::Raised("InputError", format!("Engine takes a Dfa or a MachineSet, got {got}")).into_pyerr(py)
            );
        };
        let inner = detached(py, || {
            let protocol: Protocol = setting(protocol)?;
            let classes: ClassMode = setting(classes)?;
            let mut b = match target {
                Target::One(dfa) => {
                    let reveal = reveal_of(reveal, &dfa)?;
                    pmsm_engine::Engine::builder(dfa).protocol(protocol).reveal(reveal)
                }
                Target::Set(set) => {
                    let set = set.get();
                    let policy: Policy = match reveal {
                        Some(r) => setting(r)?,
                        None => set.policy(),
                    };
                    pmsm_engine::Engine::set_builder(set.grouped_for(policy, protocol)?).protocol(protocol)
                }
            };
            b = b.classes(classes);
            if let Some(c) = chunk {
                b = b.chunk(c);
            }
            if let Some(t) = threads {
                b = b.threads(t);
            }
            Ok(b.build()?)
        })?;
        Ok(Engine { inner })
    }

    /// The protocol's name.
    #[getter]
    fn protocol(&self) -> &'static str {
        self.inner.protocol().name()
    }

    /// What the client learns: `"state"` or `"accept"`; for a set `"any"`, `"rules"`
    /// or `"count"`.
    #[getter]
    fn reveal(&self) -> String {
        match self.inner.set() {
            Some(set) => set.policy().name().to_string(),
            None => self.inner.settings().reveal.to_string(),
        }
    }

    /// Whether the engine runs a machine set.
    #[getter]
    fn is_set(&self) -> bool {
        self.inner.set().is_some()
    }

    /// The machine.
    #[getter]
    fn machine(&self) -> Dfa {
        Dfa { inner: self.inner.dfa().clone() }
    }

    /// Runs every input privately; `(outputs, report)` with outputs as tuples.
    fn run<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyDict>)> {
        let inputs = extract_all(inputs)?;
        let report = detached(py, || Ok(self.inner.run(&self.encode(inputs)?)?))?;
        let outputs = PyList::empty(py);
        match self.inner.set() {
            None => {
                for o in &report.outputs {
                    outputs.append(output_tuple(py, o)?)?;
                }
            }
            Some(set) => {
                for (a, o) in report.answers.iter().zip(&report.outputs) {
                    outputs.append(answer_tuple(py, set.ids(), a, o.symbols)?)?;
                }
            }
        }
        Ok((outputs, report_dict(py, &report)?))
    }

    /// The Rust API alone on the same engine, for measuring the binding's overhead:
    /// runs `texts` (already bytes) `repeats` times through `Engine::run_texts` with the
    /// interpreter released and returns each run's wall-clock seconds and the report's
    /// own `seconds`.
    fn _time_rust_api(&self, py: Python<'_>, texts: Vec<Vec<u8>>, repeats: usize) -> PyResult<Vec<(f64, f64)>> {
        detached(py, || {
            let mut seconds = Vec::with_capacity(repeats);
            for _ in 0..repeats {
                let start = Instant::now();
                let report = std::hint::black_box(self.inner.run_texts(&texts)?);
                seconds.push((start.elapsed().as_secs_f64(), report.seconds));
            }
            Ok(seconds)
        })
    }

    fn __repr__(&self) -> String {
        let d = self.inner.dfa();
        if let Some(set) = self.inner.set() {
            return format!(
                "Engine(protocol={:?}, reveal={:?}, rules={}, groups={})",
                self.inner.protocol().name(),
                set.policy().name(),
                set.ids().len(),
                set.groups().len()
            );
        }
        format!(
            "Engine(protocol={:?}, reveal={:?}, states={}, symbols={})",
            self.inner.protocol().name(),
            self.inner.settings().reveal.to_string(),
            d.states(),
            d.symbols()
        )
    }
}
