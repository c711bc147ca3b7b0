"""pmsm — private finite state machines between two non-colluding servers.

A client feeds symbols to a deterministic finite automaton that two servers run
together: the machine is public to the servers, while its current state and every
input symbol are secret-shared between them, and a trusted dealer supplies
input-independent correlated randomness ahead of time. The client learns only what
the output policy releases (the final state, or just the accept bit).

**Threat model:** semi-honest servers that do *not* collude. If the two servers pool
what they hold, they learn every state and every symbol.

The batch engine and :class:`Service` run the Rust engine in process: all four
parties (client, two servers, dealer) are threads of the calling process, talking over
the engine's in-process transport; every byte between them is counted. :func:`connect`
is the client of a service whose dealer and servers are processes of their own
(``pmsm dealer`` and ``pmsm serve``), over TLS 1.3. Every call waits with the GIL
released.

- Machines: :class:`Dfa` (``Dfa.from_json``), :func:`compile` and :func:`compile_file`
  (regular expressions), :func:`random_dfa`.
- Machine sets: :func:`gitleaks` (a gitleaks TOML file) and :func:`machine_set`
  (``(rule_id, regex)`` pairs): many rules over one input, with per-rule results.
- Batch: ``Engine(machine, protocol="lookup-xor", reveal=None).run(inputs)``, and
  ``Engine(machine_set, reveal="any" | "rules" | "count").run(texts)``.
- Service: :class:`Service` (long-lived servers, streaming sessions, in process) or
  :func:`connect` (the same :class:`Client` over the network), and :class:`Session`,
  with ``async`` variants for asyncio.
- Errors: :class:`Error` and its subclasses.

Inputs are text (``str``, ``bytes``, ``bytearray``: encoded with the machine's
alphabet, as the command line's ``--input``) or symbol indices (a list or tuple of
ints, or anything with ``tolist()``: a NumPy array, an ``array.array``, a
``memoryview``). NumPy is never required.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    overload,
)

from . import _native
from ._errors import (
    DfaError,
    EngineError,
    Error,
    InputError,
    ParameterError,
    ProtocolError,
    PinMismatchError,
    ServiceError,
    ServiceStoppedError,
    ServiceUnavailableError,
    SessionClosedError,
    UnknownMachineError,
    UnknownSymbolError,
)
from ._native import Dfa, MachineSet, Session, random_dfa


__version__: str = _native.__version__

FIELD_MODULUS: int = _native.FIELD_MODULUS
"""The prime of the seed's protocols (GF(65521))."""

PROTOCOLS: Tuple[str, ...] = ("lookup-xor", "lookup-ring", "seed-dpf", "naive")
"""Every protocol, fastest first. The service runs the two lookups only."""

__all__ = [
    "Dfa",
    "compile",
    "compile_file",
    "random_dfa",
    "MachineSet",
    "gitleaks",
    "machine_set",
    "Engine",
    "Output",
    "RunResult",
    "SetOutput",
    "SetRunResult",
    "Service",
    "Client",
    "Session",
    "connect",
    "connect_async",
    "Input",
    "PROTOCOLS",
    "FIELD_MODULUS",
    "Error",
    "DfaError",
    "UnknownSymbolError",
    "InputError",
    "ProtocolError",
    "EngineError",
    "ParameterError",
    "ServiceError",
    "UnknownMachineError",
    "SessionClosedError",
    "ServiceStoppedError",
    "ServiceUnavailableError",
    "PinMismatchError",
]


class _ToList(Protocol):
    """Anything with ``tolist()`` (NumPy arrays, ``array.array``, ``memoryview``)."""

    def tolist(self) -> Any: ...


Input = Union[str, bytes, bytearray, Sequence[int], _ToList]
"""One input: text, or symbol indices (a sequence of ints or an object with ``tolist()``)."""

PathLike = Union[str, "os.PathLike[str]"]


class Output(NamedTuple):
    """What the client learned about one input (or one release of a session)."""

    final_state: Optional[int]
    """The final state, when the output policy is ``"state"`` (else ``None``)."""
    accept: Optional[bool]
    """The accept bit, when the output policy is ``"accept"`` (else ``None``)."""
    symbols: int
    """Symbols consumed."""


class RunResult(NamedTuple):
    """The result of :meth:`Engine.run`: unpack as ``outputs, report = engine.run(...)``."""

    outputs: List[Output]
    """One output per input, in input order."""
    report: Dict[str, Any]
    """The run's measurements: ``protocol``, ``instances``, ``transitions``,
    ``seconds`` (wall clock, offline phase included), ``classes`` (symbol classes used,
    or ``None``), ``rounds`` (server-to-server rounds), ``bytes`` (bytes sent per link:
    ``client_to_s0``, ``client_to_s1``, ``s0_to_s1``, ``s1_to_s0``, ``dealer_to_s0``,
    ``dealer_to_s1``, ``s0_to_client``, ``s1_to_client``) and ``round_seconds``
    (server 0's time per round)."""


class SetOutput(NamedTuple):
    """What the client learned about one input from a machine set."""

    any: bool
    """Whether some rule matched (every policy tells this much)."""
    rules: Optional[List[str]]
    """The ids of the rules that matched, in the set's order, under ``"rules"`` (else
    ``None``)."""
    matched: Optional[int]
    """How many rules matched, under ``"count"`` (else ``None``). (Not ``count``: a
    tuple's method of that name.)"""
    symbols: int
    """Symbols consumed."""


class SetRunResult(NamedTuple):
    """The result of :meth:`Engine.run` on a machine set."""

    outputs: List[SetOutput]
    """One output per input, in input order."""
    report: Dict[str, Any]
    """The run's measurements, as :attr:`RunResult.report`."""


def gitleaks(
    path: PathLike,
    reveal: str = "rules",
    grouping: str = "cost",
    max_states: int = 20_000,
) -> MachineSet:
    """A machine set from a gitleaks TOML configuration (``[[rules]]`` with ``id`` and
    ``regex``), as ``pmsm info --gitleaks``.

    Each rule's regex is compiled alone, in ASCII mode as Go reads it (``\\w``,
    ``\\d``, ``\\b`` are ASCII); only the regex is a machine (``keywords``,
    ``entropy``, allowlists are not evaluated). Rules without a regex (path-only) and
    rules that do not compile (a syntax Rust's regex does not read, or more than
    ``max_states`` states) are listed in :attr:`MachineSet.refused` with the reason.
    ``reveal`` is the set's policy: ``"any"`` (one bit), ``"rules"`` (which rules
    matched) or ``"count"`` (how many); ``grouping`` is ``"cost"`` (join rules while the
    product costs no more than its parts), ``"alone"`` or ``"fill"``.

    Raises :class:`DfaError` for a file that cannot be read, TOML that does not parse
    (with its line), a rule without an ``id`` or with a non-string ``regex`` (naming the
    rule), or a set where no rule compiles; :class:`ParameterError` for an unknown
    policy or grouping.
    """
    return _native.gitleaks(os.fspath(path), reveal, grouping, max_states)


def machine_set(
    rules: Union[Mapping[str, str], Iterable[Tuple[str, str]]],
    reveal: str = "rules",
    full_match: bool = False,
    grouping: str = "cost",
    max_states: int = 20_000,
) -> MachineSet:
    """A machine set from ``(rule_id, regex)`` pairs (or a mapping of ids to regexes),
    each compiled alone in Rust ``regex`` syntax with byte semantics; the rule accepts
    when the input contains a match (``full_match=True``: when all of it matches).
    Rules that do not compile are listed in :attr:`MachineSet.refused`. ``reveal``,
    ``grouping`` and ``max_states`` as in :func:`gitleaks`.

    Raises :class:`DfaError` for no rules, an id given twice, or a set where no rule
    compiles."""
    pairs = list(rules.items()) if isinstance(rules, Mapping) else [(str(i), str(p)) for i, p in rules]
    return _native.machine_set(pairs, reveal, full_match, grouping, max_states)


def compile(
    patterns: Union[str, Sequence[str]],
    full_match: bool = False,
    max_states: int = 20_000,
    alphabet: Optional[str] = None,
) -> Dfa:
    """Compiles regular expressions into one minimal machine over bytes.

    The machine accepts when the input *contains* a match of any pattern (the yes/no
    of ``re.search``), or with ``full_match=True`` when the whole input matches one.
    Patterns use Rust ``regex`` syntax with byte semantics. ``max_states`` bounds the
    work as well as the result; ``alphabet`` (e.g. ``"ACGT"``) restricts the byte
    machine to a few ASCII characters. As ``pmsm compile --regex``; the machine's
    natural output is the accept bit.

    Raises :class:`DfaError` for a pattern that does not compile (with its index and
    the parser's message) or a machine larger than ``max_states``.
    """
    return _native.compile(patterns, full_match, max_states, alphabet)


def compile_file(
    path: PathLike,
    full_match: bool = False,
    max_states: int = 20_000,
    alphabet: Optional[str] = None,
) -> Dfa:
    """Compiles a rule file: one pattern per line, blank lines and lines starting with
    ``#`` skipped (as ``pmsm compile --regex-file``). A pattern that does not compile is
    reported with its file and line; a file with no pattern is a :class:`DfaError`."""
    return _native.compile_file(os.fspath(path), full_match, max_states, alphabet)


def _outputs(raw: Iterable[Tuple[Optional[int], Optional[bool], int]]) -> List[Output]:
    make = Output._make
    return [make(t) for t in raw]


O = TypeVar("O", Output, SetOutput)


class Engine(Generic[O]):
    """A private DFA evaluator: four parties over one machine or a machine set, in
    this process.

    ``protocol`` is ``"lookup-xor"`` (default: XOR shares, bit-sliced table),
    ``"lookup-ring"`` (additive shares in Z_2^64), or the seed's ``"seed-dpf"`` and
    ``"naive"`` over GF(65521). ``reveal`` is what the client learns: ``"state"``,
    ``"accept"``, or ``None`` for the machine's natural output (the accept bit for a
    machine compiled from regexes, the final state otherwise). ``classes`` is
    ``"auto"``, ``"on"`` or ``"off"`` (symbol classes); ``chunk`` the instances per
    chunk (``None``: automatic); ``threads`` the dealer's threads (``None``: all cores).

    An engine is immutable and thread-safe: several threads may call :meth:`run` at
    once (each run starts its own parties).

    Over a :class:`MachineSet` (``Engine(machine_set, reveal="rules")``), every group
    of the set reads the same secret input (each symbol shared once) and
    :meth:`run` gives one :class:`SetOutput` per text: the any bit, and the matching
    rule ids (``reveal="rules"``) or their number (``reveal="count"``). ``reveal`` is
    then ``"any"``, ``"rules"`` or ``"count"`` (``None``: the set's own policy); the
    lookups only.

    Raises :class:`ParameterError` for an unknown protocol, output policy or class
    mode, and for a machine too large for the protocol.
    """

    __slots__ = ("_native", "_machine")

    @overload
    def __init__(
        self: Engine[Output],
        machine: Dfa,
        protocol: str = ...,
        reveal: Optional[str] = ...,
        classes: str = ...,
        chunk: Optional[int] = ...,
        threads: Optional[int] = ...,
    ) -> None: ...

    @overload
    def __init__(
        self: Engine[SetOutput],
        machine: MachineSet,
        protocol: str = ...,
        reveal: Optional[str] = ...,
        classes: str = ...,
        chunk: Optional[int] = ...,
        threads: Optional[int] = ...,
    ) -> None: ...

    def __init__(
        self,
        machine: Union[Dfa, MachineSet],
        protocol: str = "lookup-xor",
        reveal: Optional[str] = None,
        classes: str = "auto",
        chunk: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> None:
        self._native = _native.Engine(machine, protocol, reveal, classes, chunk, threads)
        self._machine = machine

    @property
    def protocol(self) -> str:
        """The protocol's name."""
        return self._native.protocol

    @property
    def reveal(self) -> str:
        """What the client learns: ``"state"`` or ``"accept"`` (a set: ``"any"``,
        ``"rules"`` or ``"count"``)."""
        return self._native.reveal

    @property
    def machine(self) -> Union[Dfa, MachineSet]:
        """The machine or machine set."""
        return self._machine

    @overload
    def run(self: Engine[Output], inputs: Iterable[Input]) -> RunResult: ...

    @overload
    def run(self: Engine[SetOutput], inputs: Iterable[Input]) -> SetRunResult: ...

    def run(self, inputs: Iterable[Input]) -> Union[RunResult, SetRunResult]:
        """Runs every input privately, as one batch of independent instances.

        Every symbol is checked before anything is sent: an unknown one raises
        :class:`UnknownSymbolError` naming its input and position. A party's failure
        raises :class:`ProtocolError` with its root cause.
        """
        raw, report = self._native.run(inputs)
        if self._native.is_set:
            return SetRunResult([SetOutput._make(t) for t in raw], report)
        return RunResult(_outputs(raw), report)

    def __repr__(self) -> str:
        return repr(self._native)


T = TypeVar("T")


def _future_callback(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[T],
    convert: Callable[[Any], T],
    on_cancelled: Optional[Callable[[Any], None]] = None,
) -> Callable[[bool, Any], None]:
    """The callback a native call's thread invokes when it finishes: it resolves
    ``future`` on its event loop's thread (``call_soon_threadsafe``)."""

    def settle(ok: bool, value: Any) -> None:
        if future.done():  # the awaiting task was cancelled
            if ok and on_cancelled is not None:
                on_cancelled(value)
            return
        if ok:
            future.set_result(convert(value))
        else:
            future.set_exception(value)

    def done(ok: bool, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:  # the loop was closed meanwhile: nobody is waiting
            pass

    return done


def _identity(value: T) -> T:
    return value


def _release_output(raw: _native._ReleaseTuple) -> Output:
    return Output(raw[0], raw[1], raw[2])


def _release_set_output(machine: str, raw: _native._ReleaseTuple) -> SetOutput:
    if raw[3] is None:
        raise ParameterError(f"machine {machine!r} is not a rule set: use release()")
    return SetOutput._make(raw[3])


class Client:
    """A connection to the service for one machine: in process
    (:meth:`Service.connect`) or over the network (:func:`connect`), the same class
    and the same calls either way.

    The client knows only the machine's public :attr:`interface` (name, fingerprint,
    alphabet, share widths, protocol and output policy), never its table. It is
    thread-safe: many threads may use one client, each with its own sessions. One
    request of a session at a time: a second concurrent request of the same session
    raises :class:`ServiceError`.

    The ``*_async`` methods are coroutines for asyncio: the blocking call runs on a
    thread of its own with the GIL released and resolves an asyncio future when it
    finishes, so the event loop is never blocked and any number of calls may be in
    flight (the service batches them into waves).
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Client) -> None:
        self._native = native

    @property
    def machine(self) -> str:
        """The machine's name."""
        return self._native.machine

    @property
    def interface(self) -> Dict[str, Any]:
        """The machine's public interface: ``name``, ``fingerprint`` (SHA-256 hex),
        ``alphabet``, ``protocol``, ``reveal``, ``symbol_bits``, ``output_bits``."""
        result: Dict[str, Any] = json.loads(self._native.interface())
        return result

    def open(self) -> Session:
        """Opens a session at the machine's start state."""
        return self._native.open()

    def push(self, session: Session, data: Input) -> None:
        """Pushes text or symbol indices into ``session``; they are applied in order
        after every earlier push. Symbols outside the alphabet raise
        :class:`UnknownSymbolError` before anything is sent."""
        self._native.push(session, data)

    def release(self, session: Session) -> Output:
        """The output after every symbol pushed so far (final state or accept bit, as
        the machine's policy says; for a rule set, ``accept`` says whether any rule
        matched). The session goes on from the same state."""
        return _release_output(self._native.release(session))

    def release_set(self, session: Session) -> SetOutput:
        """For a served rule set: the answer after every symbol pushed so far, under
        the set's policy (which rules matched, how many, or whether any did). A machine
        that is not a set raises :class:`ParameterError`."""
        return _release_set_output(self.machine, self._native.release(session))

    def close(self, session: Session) -> None:
        """Ends ``session``; using it again raises :class:`SessionClosedError`."""
        self._native.close(session)

    async def open_async(self) -> Session:
        """:meth:`open` without blocking the event loop. A cancelled open closes the
        session it opened once it arrives."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Session] = loop.create_future()

        def close_orphan(session: Any) -> None:
            self._native.close_then(session, lambda ok, value: None)

        self._native.open_then(_future_callback(loop, future, _identity, close_orphan))
        return await future

    async def push_async(self, session: Session, data: Input) -> None:
        """:meth:`push` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._native.push_then(session, data, _future_callback(loop, future, _identity))
        await future

    async def release_async(self, session: Session) -> Output:
        """:meth:`release` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Output] = loop.create_future()
        self._native.release_then(session, _future_callback(loop, future, _release_output))
        return await future

    async def release_set_async(self, session: Session) -> SetOutput:
        """:meth:`release_set` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SetOutput] = loop.create_future()
        machine = self.machine
        self._native.release_then(
            session, _future_callback(loop, future, lambda raw: _release_set_output(machine, raw))
        )
        return await future

    async def close_async(self, session: Session) -> None:
        """:meth:`close` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._native.close_then(session, _future_callback(loop, future, _identity))
        await future

    def __repr__(self) -> str:
        return repr(self._native)


Served = Union[Dfa, Tuple[Dfa, str], Tuple[Dfa, str, Optional[str]], MachineSet, Tuple[MachineSet, str]]
"""A served machine: a :class:`Dfa`, or ``(dfa, protocol)``, or ``(dfa, protocol,
reveal)``; or a :class:`MachineSet`, or ``(set, protocol)`` (released under the set's
policy: read it with :meth:`Client.release_set`)."""


class Service:
    """pmsm as a service: long-lived servers holding named machines, streaming sessions.

    ``machines`` maps names to machines, each a :class:`Dfa` (served under
    ``protocol`` and ``reveal``) or a ``(dfa, protocol)`` / ``(dfa, protocol, reveal)``
    tuple. The owner fixes each machine's protocol (``"lookup-xor"`` or
    ``"lookup-ring"``) and output policy (``None``: the machine's natural output);
    clients cannot choose either. Options (``None``: the engine's default):
    ``max_wave`` (1024 sessions a wave), ``window`` (16 waves in flight),
    ``idle_timeout`` (600 s), ``max_sessions``, ``max_sessions_per_client``,
    ``max_pending`` (symbols pushed and not yet applied), ``pool_depth`` (dealer
    blocks queued per width), ``dealer_threads`` (0: all cores).

    This is the **in-process** back end: the dealer and both servers are threads of
    this process. For servers and a dealer that are processes of their own
    (``pmsm serve``, ``pmsm dealer``), use :func:`connect`.

    Use it as a context manager, or call :meth:`shutdown`.
    """

    __slots__ = ("_native",)

    def __init__(
        self,
        machines: Mapping[str, Served],
        *,
        protocol: str = "lookup-xor",
        reveal: Optional[str] = None,
        max_wave: Optional[int] = None,
        window: Optional[int] = None,
        idle_timeout: Optional[float] = None,
        max_sessions: Optional[int] = None,
        max_sessions_per_client: Optional[int] = None,
        max_pending: Optional[int] = None,
        pool_depth: Optional[int] = None,
        dealer_threads: Optional[int] = None,
    ) -> None:
        specs: List[Tuple[str, Dfa, str, Optional[str]]] = []
        sets: List[Tuple[str, MachineSet, str]] = []
        for name, served in machines.items():
            if isinstance(served, Dfa):
                specs.append((name, served, protocol, reveal))
            elif isinstance(served, MachineSet):
                sets.append((name, served, protocol))
            elif isinstance(served, tuple) and len(served) == 2 and isinstance(served[0], MachineSet):
                sets.append((name, served[0], served[1]))
            elif isinstance(served, tuple) and len(served) == 2 and isinstance(served[0], Dfa):
                specs.append((name, served[0], served[1], reveal))
            elif isinstance(served, tuple) and len(served) == 3 and isinstance(served[0], Dfa):
                specs.append((name, served[0], served[1], served[2]))
            else:
                raise InputError(
                    f"machine {name!r}: expected a Dfa, (dfa, protocol), (dfa, protocol, reveal),"
                    f" a MachineSet or (set, protocol), got {type(served).__name__}"
                )
        self._native = _native.Service(
            specs,
            sets=sets,
            max_wave=max_wave,
            window=window,
            idle_timeout=idle_timeout,
            max_sessions=max_sessions,
            max_sessions_per_client=max_sessions_per_client,
            max_pending=max_pending,
            pool_depth=pool_depth,
            dealer_threads=dealer_threads,
        )

    def connect(self, name: str) -> Client:
        """A client for machine ``name`` (a new client identity: the sessions it opens
        are its own). Raises :class:`UnknownMachineError` naming the machines served."""
        return Client(self._native.connect(name))

    def interfaces(self) -> List[Dict[str, Any]]:
        """The public interface of every served machine, sorted by name."""
        return [json.loads(i) for i in self._native.interfaces()]

    def stats(self) -> Dict[str, int]:
        """Counters: ``sessions`` (both servers count), ``waves``, ``lookups``,
        ``transitions``, ``pushes`` (both servers count), ``evicted``."""
        return self._native.stats()

    def bytes(self) -> Dict[str, int]:
        """Bytes sent on every link so far, by link name."""
        return self._native.bytes()

    @property
    def running(self) -> bool:
        """Whether the service runs (it has not been shut down)."""
        return self._native.running

    def shutdown(self) -> None:
        """Stops the service and waits for its threads. Raises
        :class:`ServiceStoppedError` with the root cause if a server had failed.
        Calls of its clients raise :class:`ServiceStoppedError` afterwards."""
        self._native.shutdown()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        names = ", ".join(i["name"] for i in self.interfaces()) if self.running else ""
        return f"Service(machines=[{names}], running={self.running})"


_PIN = re.compile(r"[0-9a-fA-F]{16,64}")


def _remote_args(
    certs: Optional[PathLike],
    identity: Optional[str],
    ca: Optional[PathLike],
    cert: Optional[PathLike],
    key: Optional[PathLike],
    pin: Optional[str],
) -> Tuple[str, str, str]:
    """The three identity files, from ``certs`` and/or the explicit paths; checks the pin."""
    stem = "client" if identity is None else f"client-{identity}"
    folder = None if certs is None else os.fspath(certs)
    files: List[str] = []
    for what, given, default in (("ca", ca, "ca.pem"), ("cert", cert, f"{stem}.pem"), ("key", key, f"{stem}.key")):
        if given is not None:
            files.append(os.fspath(given))
        elif folder is not None:
            files.append(os.path.join(folder, default))
        else:
            raise ParameterError(f"connect needs {what}= (a PEM file) or certs= (a folder made by `pmsm certs`)")
    if pin is not None and not _PIN.fullmatch(pin):
        raise ParameterError(f"a pinned fingerprint is 16 to 64 hex digits, not {pin!r}")
    return files[0], files[1], files[2]


def connect(
    machine: str,
    server0: str,
    server1: str,
    *,
    certs: Optional[PathLike] = None,
    identity: Optional[str] = None,
    ca: Optional[PathLike] = None,
    cert: Optional[PathLike] = None,
    key: Optional[PathLike] = None,
    pin: Optional[str] = None,
    timeout: float = 10.0,
) -> Client:
    """A :class:`Client` of the service over the network, for ``machine``.

    ``server0`` and ``server1`` are the servers' ``HOST:PORT`` (as ``pmsm serve``
    prints them: ``listening HOST:PORT``). The client speaks TLS 1.3 to each and
    presents a certificate for the ``client`` role signed by the servers' CA: give
    the folder ``pmsm certs --out DIR`` wrote as ``certs`` (``ca.pem``, ``client.pem``,
    ``client.key``; ``identity="NAME"`` takes ``client-NAME.pem`` / ``.key``, as
    ``pmsm certs --client NAME``), or the files as ``ca``, ``cert`` and ``key``
    (explicit files win over ``certs``). ``pin`` (16 to 64 hex digits) refuses the
    servers unless their machine's SHA-256 fingerprint starts with it. ``timeout``
    (seconds) bounds connecting, the TLS handshake and the servers' welcome, per
    server.

    The client learns the machine's public interface only, and its sessions work as
    in process: ``open``, ``push``, ``release``, ``close`` and their ``*_async``
    forms. Calls wait with the GIL released.

    Raises :class:`UnknownMachineError` (the servers do not serve ``machine``; the
    message names what they serve), :class:`PinMismatchError`,
    :class:`ServiceUnavailableError` (a server cannot be reached, refused the TLS
    handshake, or gave no welcome in time), :class:`ParameterError` (missing or
    unreadable certificate files, a malformed pin, a bad timeout).
    Later calls raise :class:`ServiceStoppedError` once a server's connection ends,
    or :class:`ServiceUnavailableError` while the servers are not linked.
    """
    files = _remote_args(certs, identity, ca, cert, key, pin)
    return Client(_native.connect(machine, server0, server1, *files, pin, timeout))


async def connect_async(
    machine: str,
    server0: str,
    server1: str,
    *,
    certs: Optional[PathLike] = None,
    identity: Optional[str] = None,
    ca: Optional[PathLike] = None,
    cert: Optional[PathLike] = None,
    key: Optional[PathLike] = None,
    pin: Optional[str] = None,
    timeout: float = 10.0,
) -> Client:
    """:func:`connect` without blocking the event loop (the connection is made on a
    thread of its own)."""
    files = _remote_args(certs, identity, ca, cert, key, pin)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Client] = loop.create_future()
    _native.connect_then(
        machine, server0, server1, *files, pin, timeout, _future_callback(loop, future, Client)
    )
    return await future
