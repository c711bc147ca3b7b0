//! Engine errors as Python exceptions, at the boundary only.
//!
//! The classes live in `pmsm/_errors.py` (Python classes may inherit from two bases,
//! so `pmsm.DfaError` is also a `ValueError`); this module picks the class for each
//! engine error and keeps the engine's message, the one the CLI prints.

use pmsm_engine::dfa::DfaError;
use pmsm_engine::protocol::ProtocolError;
use pmsm_engine::service::ServiceError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The Python module holding the exception classes.
const ERRORS_MODULE: &str = "pmsm._errors";

/// Any failure of a call into the engine, before it becomes a Python exception (built
/// without the interpreter, raised once it is attached again).
#[derive(Debug)]
pub enum Failure {
    /// An engine error.
    Engine(pmsm_engine::Error),
    /// A failure of the binding itself: (class name in `pmsm._errors`, message).
    Raised(&'static str, String),
}

impl From<pmsm_engine::Error> for Failure {
    fn from(e: pmsm_engine::Error) -> Self {
        Failure::Engine(e)
    }
}

impl From<DfaError> for Failure {
    fn from(e: DfaError) -> Self {
        Failure::Engine(e.into())
    }
}

impl From<ProtocolError> for Failure {
    fn from(e: ProtocolError) -> Self {
        Failure::Engine(e.into())
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        Failure::Engine(e.into())
    }
}

/// The class for a machine error.
fn dfa_class(e: &DfaError) -> &'static str {
    match e {
        DfaError::UnknownSymbol { .. } => "UnknownSymbolError",
        DfaError::AtLine { error, .. } => dfa_class(error),
        _ => "DfaError",
    }
}

/// The exception class (by name) and message for an engine error.
fn class_of(e: &pmsm_engine::Error) -> &'static str {
    match e {
        pmsm_engine::Error::Dfa(d) => dfa_class(d),
        pmsm_engine::Error::Protocol(ProtocolError::Parameter(_) | ProtocolError::TooLarge { .. }) => "ParameterError",
        pmsm_engine::Error::Protocol(_) => "ProtocolError",
        pmsm_engine::Error::Service(s) => match s {
            ServiceError::UnknownMachine { .. } => "UnknownMachineError",
            ServiceError::UnknownSession { .. } => "SessionClosedError",
            ServiceError::Stopped { .. } => "ServiceStoppedError",
            ServiceError::Unavailable(_) => "ServiceUnavailableError",
            ServiceError::PinMismatch { .. } => "PinMismatchError",
            ServiceError::Symbol(d) => dfa_class(d),
            _ => "ServiceError",
        },
        _ => "Error",
    }
}

/// An exception of class `name` (from `pmsm._errors`) carrying `message`.
pub fn raise(py: Python<'_>, name: &str, message: String) -> PyErr {
    let class = py
        .import(ERRORS_MODULE)
        .and_then(|m| m.getattr(name))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(c) => PyErr::from_type(c, message),
        // The native module imported on its own, without its package.
        Err(_) => PyRuntimeError::new_err(message),
    }
}

impl Failure {
    /// The Python exception.
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Engine(e) => raise(py, class_of(&e), e.to_string()),
            Failure::Raised(class, message) => raise(py, class, message),
        }
    }
}

/// Runs `f` with the interpreter released (other Python threads run meanwhile) and
/// raises its failure once attached again.
pub fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Failure> + Send) -> PyResult<T> {
    py.detach(f).map_err(|e| e.into_pyerr(py))
}
