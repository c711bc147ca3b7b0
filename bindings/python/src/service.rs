//! `pmsm.Service`, its clients and sessions (the in-process back end), and
//! `pmsm.connect`: the same `Client` over the network (the engine's
//! `service::net::connect`, TLS 1.3 to both servers).
//!
//! Blocking calls run with the interpreter released. The `*_then` forms are what the
//! Python layer's `async` methods await: each runs the blocking call on a thread of its
//! own and hands the result to a Python callback, which resolves an asyncio future
//! through `loop.call_soon_threadsafe`. Why a thread per call rather than polling the
//! client's Rust futures on an executor: those futures park on channels and, when a
//! server's queue is full, back off by sleeping inside `poll`, which would stall every
//! other call sharing an executor thread; a thread costs tens of microseconds against a
//! round trip of milliseconds, and concurrency is not capped by a pool's size, so the
//! service's waves fill with as many sessions as the caller has in flight.

use crate::engine::{answer_tuple, link_dict, reveal_of, setting};
use crate::errors::{Failure, detached};
use crate::inputs::Input;
use crate::machine::Dfa;
use crate::set::MachineSet;
use pmsm_engine::service::net::Connect;
use pmsm_engine::service::{self, Options, ServiceError};
use pmsm_engine::transport::tls::{Identity, Role};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Stack of the threads behind the async calls (they only wait on channels).
const CALL_STACK: usize = 256 * 1024;

/// A running service: the dealer and both servers on threads of this process.
#[pyclass(frozen, module = "pmsm._native")]
#[derive(Debug)]
pub struct Service {
    inner: Mutex<Option<service::Service>>,
}

impl Service {
    fn with<T>(&self, f: impl FnOnce(&service::Service) -> Result<T, Failure>) -> Result<T, Failure> {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(s) => f(s),
            None => Err(ServiceError::Stopped { reason: "the service was shut down".into() }.into()),
        }
    }
}

#[pymethods]
impl Service {
    /// `machines`: `(name, machine, protocol, reveal or None)` tuples; `sets`: `(name,
    /// machine set, protocol)` tuples (each released under its set's policy).
    #[new]
    #[pyo3(signature = (machines, *, sets = Vec::new(), max_wave = None, window = None, idle_timeout = None, max_sessions = None,
        max_sessions_per_client = None, max_pending = None, pool_depth = None, dealer_threads = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        machines: Vec<(String, PyRef<'_, Dfa>, String, Option<String>)>,
        sets: Vec<(String, PyRef<'_, MachineSet>, String)>,
        max_wave: Option<usize>,
        window: Option<usize>,
        idle_timeout: Option<f64>,
        max_sessions: Option<usize>,
        max_sessions_per_client: Option<usize>,
        max_pending: Option<usize>,
        pool_depth: Option<usize>,
        dealer_threads: Option<usize>,
    ) -> PyResult<Service> {
        let machines: Vec<_> = machines.into_iter().map(|(n, d, p, r)| (n, d.inner.clone(), p, r)).collect();
        let sets: Vec<_> = sets.into_iter().map(|(n, s, p)| (n, s.grouped().clone(), p)).collect();
        let inner = detached(py, || {
            let d = Options::default();
            let idle_timeout = match idle_timeout {
                None => d.idle_timeout,
                Some(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s),
                Some(s) => {
                    return Err(Failure::Raised("ParameterError", format!("idle_timeout must be positive, got {s}")));
                }
            };
            let options = Options {
                max_wave: max_wave.unwrap_or(d.max_wave),
                window: window.unwrap_or(d.window),
                idle_timeout,
                max_sessions: max_sessions.unwrap_or(d.max_sessions),
                max_sessions_per_client: max_sessions_per_client.unwrap_or(d.max_sessions_per_client),
                max_pending: max_pending.unwrap_or(d.max_pending),
                pool_depth: pool_depth.unwrap_or(d.pool_depth),
                dealer_threads: dealer_threads.unwrap_or(d.dealer_threads),
                ..d
            };
            let mut b = service::Service::builder().options(options);
            for (name, dfa, protocol, reveal) in machines {
                let reveal = reveal_of(reveal.as_deref(), &dfa)?;
                b = b.machine(&name, dfa, setting(&protocol)?, reveal);
            }
            for (name, set, protocol) in sets {
                b = b.set(&name, set, setting(&protocol)?);
            }
            Ok(b.start()?)
        })?;
        Ok(Service { inner: Mutex::new(Some(inner)) })
    }

    /// A client for machine `name` (a new client identity).
    fn connect(&self, py: Python<'_>, name: &str) -> PyResult<Client> {
        let inner = detached(py, || self.with(|s| Ok(s.connect(name)?)))?;
        Ok(Client { inner: Arc::new(inner), name: name.to_string() })
    }

    /// The served machines' interfaces, as JSON texts sorted by name.
    fn interfaces(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        detached(py, || self.with(|s| Ok(s.interfaces().iter().map(|i| i.to_json()).collect())))
    }

    /// The service's counters (server 0's view; both servers count sessions).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let values = detached(py, || {
            self.with(|s| {
                let st = s.stats();
                Ok([
                    ("sessions", st.sessions.load(Ordering::Relaxed)),
                    ("waves", st.waves.load(Ordering::Relaxed)),
                    ("lookups", st.lookups.load(Ordering::Relaxed)),
                    ("transitions", st.transitions.load(Ordering::Relaxed)),
                    ("pushes", st.pushes.load(Ordering::Relaxed)),
                    ("evicted", st.evicted.load(Ordering::Relaxed)),
                ])
            })
        })?;
        let d = PyDict::new(py);
        for (k, v) in values {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Bytes sent on every link so far.
    fn bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let b = detached(py, || self.with(|s| Ok(s.bytes())))?;
        link_dict(py, &b)
    }

    /// Whether the service is running (not shut down).
    #[getter]
    fn running(&self) -> bool {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Stops the service and waits for its threads; raises the error of a server that
    /// failed. A second call does nothing.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            None => Ok(()),
            Some(s) => detached(py, || Ok(s.shutdown()?)),
        }
    }
}

/// What `connect` needs, gathered while attached (paths and names only: the key file
/// is read by the engine, its contents never pass through Python).
struct Remote {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    how: Connect,
}

impl Remote {
    fn new(
        machine: String,
        servers: [String; 2],
        (ca, cert, key): (PathBuf, PathBuf, PathBuf),
        pin: Option<String>,
        timeout: f64,
    ) -> Result<Remote, Failure> {
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(Failure::Raised("ParameterError", format!("timeout must be positive, got {timeout}")));
        }
        let how = Connect { servers, machine, pin, timeout: Duration::from_secs_f64(timeout) };
        Ok(Remote { ca, cert, key, how })
    }

    /// Loads the client identity and connects to both servers (blocking).
    fn connect(&self) -> Result<service::Client, Failure> {
        let identity = Identity::from_files(Role::Client, &self.ca, &self.cert, &self.key)
            .map_err(|e| Failure::Raised("ParameterError", format!("client identity: {e}")))?;
        Ok(pmsm_engine::service::net::connect(&identity, &self.how)?)
    }
}

fn remote_client(inner: service::Client, name: String) -> Client {
    Client { inner: Arc::new(inner), name }
}

/// A client of the service over the network: one TLS connection to each server.
#[pyfunction]
#[pyo3(signature = (machine, server0, server1, ca, cert, key, pin = None, timeout = 10.0))]
#[allow(clippy::too_many_arguments)]
pub fn connect(
    py: Python<'_>,
    machine: String,
    server0: String,
    server1: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    pin: Option<String>,
    timeout: f64,
) -> PyResult<Client> {
    let remote =
        Remote::new(machine, [server0, server1], (ca, cert, key), pin, timeout).map_err(|e| e.into_pyerr(py))?;
    let inner = detached(py, || remote.connect())?;
    Ok(remote_client(inner, remote.how.machine))
}

/// `connect` on a thread of its own; `done(ok, value)` gets the `Client` or the
/// exception.
#[pyfunction]
#[pyo3(signature = (machine, server0, server1, ca, cert, key, pin, timeout, done))]
#[allow(clippy::too_many_arguments)]
pub fn connect_then(
    py: Python<'_>,
    machine: String,
    server0: String,
    server1: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    pin: Option<String>,
    timeout: f64,
    done: Py<PyAny>,
) -> PyResult<()> {
    let remote =
        Remote::new(machine, [server0, server1], (ca, cert, key), pin, timeout).map_err(|e| e.into_pyerr(py))?;
    Client::spawn(py, done, move || {
        let inner = remote.connect()?;
        let client = remote_client(inner, remote.how.machine);
        Ok(Box::new(move |py: Python<'_>| Ok(Py::new(py, client)?.into_any())) as Deliver)
    })
}

/// Where a session's handle is.
#[derive(Debug)]
enum Slot {
    /// Ready for a request.
    Idle(service::Session),
    /// A request of it is in flight.
    Busy,
    /// Closed by this process (or its close failed).
    Closed,
}

/// An open session (the Python object holds the engine's handle between requests).
#[pyclass(frozen, module = "pmsm._native")]
#[derive(Debug)]
pub struct Session {
    id: u64,
    slot: Mutex<Slot>,
    pushed: std::sync::atomic::AtomicU64,
}

impl Session {
    fn new(s: service::Session) -> Session {
        Session { id: s.id(), pushed: s.pushed().into(), slot: Mutex::new(Slot::Idle(s)) }
    }

    /// Takes the handle for one request.
    fn take(&self) -> Result<service::Session, Failure> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *slot, Slot::Busy) {
            Slot::Idle(s) => Ok(s),
            Slot::Busy => Err(Failure::Raised(
                "ServiceError",
                format!("session {} is busy: one request of a session at a time", self.id),
            )),
            Slot::Closed => {
                *slot = Slot::Closed;
                Err(Failure::Raised("SessionClosedError", format!("session {} is closed", self.id)))
            }
        }
    }

    /// Gives the handle back after a request.
    fn put(&self, s: service::Session) {
        self.pushed.store(s.pushed(), Ordering::Relaxed);
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Slot::Idle(s);
    }

    fn closed(&self) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Slot::Closed;
    }
}

#[pymethods]
impl Session {
    /// The session's number at the servers.
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// Symbols pushed so far.
    #[getter]
    fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }

    /// Whether the session was closed.
    #[getter(closed)]
    fn is_closed(&self) -> bool {
        matches!(*self.slot.lock().unwrap_or_else(|p| p.into_inner()), Slot::Closed)
    }

    fn __repr__(&self) -> String {
        let state = match *self.slot.lock().unwrap_or_else(|p| p.into_inner()) {
            Slot::Idle(_) => "open",
            Slot::Busy => "busy",
            Slot::Closed => "closed",
        };
        format!("Session(id={}, pushed={}, {state})", self.id, self.pushed())
    }
}

/// What a push carries.
enum Push {
    Text(Vec<u8>),
    Symbols(Vec<u32>),
}

/// A connection to the service for one machine; thread-safe.
#[pyclass(frozen, module = "pmsm._native")]
#[derive(Debug)]
pub struct Client {
    inner: Arc<service::Client>,
    name: String,
}

/// The result of one call, turned into a Python value once attached.
type Deliver = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;

fn none() -> Deliver {
    Box::new(|py| Ok(py.None()))
}

fn do_push(c: &service::Client, s: &mut service::Session, data: Push) -> Result<(), Failure> {
    match data {
        Push::Text(t) => c.push_text(s, t)?,
        Push::Symbols(v) => c.push(s, &v)?,
    }
    Ok(())
}

/// A release as `(final_state, accept, symbols, set answer or None)`; the set answer is
/// `(any, rule ids or None, number matched or None, symbols)` (`ids`: the interface's
/// rule ids, under `rules`).
fn release_tuple<'py>(
    py: Python<'py>,
    o: &pmsm_engine::InstanceOutput,
    ids: &[String],
) -> PyResult<Bound<'py, PyTuple>> {
    let answer = match &o.answer {
        Some(a) => answer_tuple(py, ids, a, o.symbols)?.into_any(),
        None => py.None().into_bound(py),
    };
    PyTuple::new(
        py,
        [
            o.final_state.into_pyobject(py)?.into_any(),
            o.accept.into_pyobject(py)?.into_any(),
            o.symbols.into_pyobject(py)?.into_any(),
            answer,
        ],
    )
}

/// The rule ids a client's releases name (a set under `rules`; else none).
fn rule_ids(c: &service::Client) -> Vec<String> {
    c.interface().set.as_ref().map(|s| s.ids.clone()).unwrap_or_default()
}

fn deliver_output(o: pmsm_engine::InstanceOutput, ids: Vec<String>) -> Deliver {
    Box::new(move |py| Ok(release_tuple(py, &o, &ids)?.into_any().unbind()))
}

impl Client {
    fn push_data(data: &Bound<'_, PyAny>, session: &Session) -> PyResult<Push> {
        Ok(match Input::extract(data, session.id as usize)? {
            Input::Text(t) => Push::Text(t),
            Input::Symbols(s) => Push::Symbols(s),
        })
    }

    /// Runs `f` on a thread of its own and calls `done(ok, value)` with its result
    /// (the value, or the exception object).
    fn spawn(
        py: Python<'_>,
        done: Py<PyAny>,
        f: impl FnOnce() -> Result<Deliver, Failure> + Send + 'static,
    ) -> PyResult<()> {
        let started = std::thread::Builder::new().name("pmsm-py-call".into()).stack_size(CALL_STACK).spawn(move || {
            let result = f();
            Python::attach(|py| {
                let (ok, value) = match result.map_err(|e| e.into_pyerr(py)).and_then(|d| d(py)) {
                    Ok(v) => (true, v),
                    Err(e) => (false, e.into_value(py).into_any()),
                };
                if let Err(e) = done.call1(py, (ok, value)) {
                    e.write_unraisable(py, None);
                }
            });
        });
        started.map(|_| ()).map_err(|e| {
            Failure::Raised("ServiceError", format!("cannot start a thread for the call: {e}")).into_pyerr(py)
        })
    }
}

#[pymethods]
impl Client {
    /// The machine's name.
    #[getter]
    fn machine(&self) -> &str {
        &self.name
    }

    /// The machine's public interface, as JSON text.
    fn interface(&self) -> String {
        self.inner.interface().to_json()
    }

    /// Opens a session at the start state.
    fn open(&self, py: Python<'_>) -> PyResult<Session> {
        detached(py, || Ok(self.inner.open()?)).map(Session::new)
    }

    /// Pushes text or symbol indices into `session`.
    fn push(&self, py: Python<'_>, session: &Bound<'_, Session>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let session = session.get();
        let data = Self::push_data(data, session)?;
        detached(py, || {
            let mut s = session.take()?;
            let r = do_push(&self.inner, &mut s, data);
            session.put(s);
            r
        })
    }

    /// The output after every symbol pushed so far, as `(final_state, accept, symbols,
    /// set answer or None)`.
    fn release<'py>(&self, py: Python<'py>, session: &Bound<'py, Session>) -> PyResult<Bound<'py, PyTuple>> {
        let session = session.get();
        let o = detached(py, || {
            let mut s = session.take()?;
            let r = self.inner.release(&mut s);
            session.put(s);
            Ok(r?)
        })?;
        release_tuple(py, &o, &rule_ids(&self.inner))
    }

    /// Ends `session`.
    fn close(&self, py: Python<'_>, session: &Bound<'_, Session>) -> PyResult<()> {
        let session = session.get();
        detached(py, || {
            let s = session.take()?;
            session.closed();
            Ok(self.inner.close(s)?)
        })
    }

    /// `open` on a thread; `done(ok, value)` gets the `Session` or the exception.
    fn open_then(&self, py: Python<'_>, done: Py<PyAny>) -> PyResult<()> {
        let client = Arc::clone(&self.inner);
        Self::spawn(py, done, move || {
            let s = client.open()?;
            Ok(Box::new(move |py: Python<'_>| Ok(Py::new(py, Session::new(s))?.into_any())) as Deliver)
        })
    }

    /// `push` on a thread; `done(ok, value)` gets `None` or the exception.
    fn push_then(
        &self,
        py: Python<'_>,
        session: Py<Session>,
        data: &Bound<'_, PyAny>,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        let data = Self::push_data(data, session.get())?;
        let client = Arc::clone(&self.inner);
        Self::spawn(py, done, move || {
            let sess = session.get();
            let mut s = sess.take()?;
            let r = do_push(&client, &mut s, data);
            sess.put(s);
            r.map(|()| none())
        })
    }

    /// `release` on a thread; `done(ok, value)` gets the output tuple or the exception.
    fn release_then(&self, py: Python<'_>, session: Py<Session>, done: Py<PyAny>) -> PyResult<()> {
        let client = Arc::clone(&self.inner);
        Self::spawn(py, done, move || {
            let sess = session.get();
            let mut s = sess.take()?;
            let r = client.release(&mut s);
            sess.put(s);
            Ok(deliver_output(r?, rule_ids(&client)))
        })
    }

    /// `close` on a thread; `done(ok, value)` gets `None` or the exception.
    fn close_then(&self, py: Python<'_>, session: Py<Session>, done: Py<PyAny>) -> PyResult<()> {
        let client = Arc::clone(&self.inner);
        Self::spawn(py, done, move || {
            let sess = session.get();
            let s = sess.take()?;
            sess.closed();
            client.close(s)?;
            Ok(none())
        })
    }

    fn __repr__(&self) -> String {
        format!("Client(machine={:?})", self.name)
    }
}
