//! Python inputs as the engine takes them.
//!
//! `str`, `bytes` and `bytearray` are text (encoded with the machine's alphabet by the
//! engine, as the CLI's `--input`); anything else is a sequence of symbol indices: a
//! list or tuple of ints, or any object with `tolist()` — a NumPy array, an
//! `array.array`, a `memoryview` — so NumPy is never needed. Everything is copied out
//! of Python objects before the interpreter is released.

use crate::errors::Failure;
use pmsm_engine::dfa::DfaError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

/// One input, out of Python.
#[derive(Debug)]
pub enum Input {
    /// Text, as bytes (UTF-8 for a `str`).
    Text(Vec<u8>),
    /// Symbol indices (not yet checked against the alphabet).
    Symbols(Vec<u32>),
}

impl Input {
    /// Reads input `instance` (its number in error messages).
    pub fn extract(obj: &Bound<'_, PyAny>, instance: usize) -> PyResult<Input> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Input::Text(b.as_bytes().to_vec()));
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Input::Text(s.to_cow()?.as_bytes().to_vec()));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(Input::Text(b.to_vec()));
        }
        symbols(obj, instance).map(Input::Symbols)
    }

    /// The symbol indices under `dfa`'s alphabet (an unknown symbol names its
    /// instance and position).
    pub fn encode(self, dfa: &pmsm_engine::dfa::Dfa, instance: usize) -> Result<Vec<u32>, DfaError> {
        match self {
            Input::Text(t) => dfa.encode(&t, instance),
            Input::Symbols(s) => Ok(s),
        }
    }
}

/// Symbol indices from a sequence of ints or an object with `tolist()`.
fn symbols(obj: &Bound<'_, PyAny>, instance: usize) -> PyResult<Vec<u32>> {
    let py = obj.py();
    let list;
    let seq = if obj.hasattr("tolist")? {
        list = obj.call_method0("tolist")?;
        &list
    } else {
        obj
    };
    let values: Vec<i64> = match seq.extract() {
        Ok(v) => v,
        Err(_) => {
            let what = seq.get_type().name()?;
            let message =
                format!("input {instance}: expected str, bytes or a sequence of symbol indices (ints), got {what}");
            // Name the first item that is not an int, if it is a sequence at all.
            if let Ok(items) = seq.try_iter() {
                for (position, item) in items.enumerate() {
                    let item = item?;
                    if item.extract::<i64>().is_err() {
                        let t = item.get_type().name()?;
                        return Err(Failure::Raised(
                            "InputError",
                            format!("input {instance}: item at position {position} is a {t}, not a symbol index (int)"),
                        )
                        .into_pyerr(py));
                    }
                }
            }
            return Err(Failure::Raised("InputError", message).into_pyerr(py));
        }
    };
    values
        .iter()
        .enumerate()
        .map(|(position, &v)| {
            u32::try_from(v).map_err(|_| {
                let e = DfaError::UnknownSymbol { instance, position, symbol: v.to_string() };
                Failure::from(e).into_pyerr(py)
            })
        })
        .collect()
}

/// Every input of a batch: a list, tuple or other iterable of inputs.
pub fn extract_all(objs: &Bound<'_, PyAny>) -> PyResult<Vec<Input>> {
    if objs.cast::<PyString>().is_ok() || objs.cast::<PyBytes>().is_ok() {
        let message = "expected a list of inputs, got a single text (wrap it in a list: run([text]))".to_string();
        return Err(Failure::Raised("InputError", message).into_pyerr(objs.py()));
    }
    objs.try_iter()?.enumerate().map(|(i, o)| Input::extract(&o?, i)).collect()
}
