//! `pmsm._native`: the native half of the `pmsm` Python package.
//!
//! The engine knows nothing of Python; this crate is the boundary. It turns Python
//! inputs into the engine's (texts as bytes, symbol indices as `u32`), runs the engine
//! with the interpreter released ([`Python::detach`]), and turns outputs, reports and
//! errors back into Python objects. The Python layer (`python/pmsm/`) adds named
//! tuples, the exception classes, the asyncio glue and the docstrings users read.
//!
//! No `unsafe`: PyO3's macros generate the C-API glue.

#![forbid(unsafe_code)]

mod engine;
mod errors;
mod inputs;
mod machine;
mod service;
mod set;

use pyo3::prelude::*;

/// The engine's allocations (Python's own objects keep Python's allocator) go through
/// mimalloc, as in the `pmsm` binary: README, Python package, for the measured
/// difference.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("FIELD_MODULUS", pmsm_engine::poly::beaver::P)?;
    m.add_class::<machine::Dfa>()?;
    m.add_function(wrap_pyfunction!(machine::compile, m)?)?;
    m.add_function(wrap_pyfunction!(machine::compile_file, m)?)?;
    m.add_function(wrap_pyfunction!(machine::random_dfa, m)?)?;
    m.add_class::<set::MachineSet>()?;
    m.add_function(wrap_pyfunction!(set::gitleaks, m)?)?;
    m.add_function(wrap_pyfunction!(set::machine_set, m)?)?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<service::Service>()?;
    m.add_class::<service::Client>()?;
    m.add_class::<service::Session>()?;
    m.add_function(wrap_pyfunction!(service::connect, m)?)?;
    m.add_function(wrap_pyfunction!(service::connect_then, m)?)?;
    Ok(())
}
