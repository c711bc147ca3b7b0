"""Type stub of the native module ``pmsm._native`` (PyO3). Users import ``pmsm``."""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, final

__all__ = [
    "__version__",
    "FIELD_MODULUS",
    "Client",
    "Dfa",
    "Engine",
    "MachineSet",
    "Service",
    "Session",
    "compile",
    "compile_file",
    "connect",
    "connect_then",
    "gitleaks",
    "machine_set",
    "random_dfa",
]

__version__: str
FIELD_MODULUS: int

_OutputTuple = Tuple[Optional[int], Optional[bool], int]
_SetOutputTuple = Tuple[bool, Optional[List[str]], Optional[int], int]
_ReleaseTuple = Tuple[Optional[int], Optional[bool], int, Optional[_SetOutputTuple]]
_Done = Callable[[bool, Any], None]

@final
class Dfa:
    """A validated, total DFA (immutable; shared freely between threads)."""

    @staticmethod
    def from_json(source: Any) -> Dfa:
        """Loads a machine in the JSON table format, from JSON text or a file path."""
    def to_json(self) -> str:
        """The machine in the JSON table format."""
    @property
    def states(self) -> int:
        """Number of states."""
    @property
    def symbols(self) -> int:
        """Number of symbols."""
    @property
    def start(self) -> int:
        """The start state."""
    @property
    def alphabet(self) -> str:
        """The alphabet: ``"bytes"``, or the characters in symbol order."""
    @property
    def accepting(self) -> List[int]:
        """The accepting states, ascending."""
    @property
    def delta(self) -> List[List[int]]:
        """``delta[s][a]``: the next state from ``s`` on symbol ``a``."""
    @property
    def natural_output(self) -> str:
        """``"state"`` or ``"accept"``: what a client learns by default."""
    def encode(self, text: Union[str, bytes, bytearray]) -> List[int]:
        """Text as symbol indices."""
    def eval(self, input: Any) -> Tuple[int, bool]:
        """Plaintext evaluation: ``(final_state, accept)`` after ``input``."""
    def info(self) -> Dict[str, Any]:
        """Sizes, classes, index widths, table bytes and fingerprint."""
    def polynomials(self) -> Dict[str, Any]:
        """The seed's interpolated polynomials over GF(65521)."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

def compile(
    patterns: Union[str, Sequence[str]],
    full_match: bool = False,
    max_states: int = 20000,
    alphabet: Optional[str] = None,
) -> Dfa:
    """Compiles regular expressions into one minimal machine."""

def compile_file(
    path: str,
    full_match: bool = False,
    max_states: int = 20000,
    alphabet: Optional[str] = None,
) -> Dfa:
    """Compiles a rule file."""

def random_dfa(states: int, symbols: int, seed: int = 0) -> Dfa:
    """A uniformly random machine, reproducible from ``seed``."""

@final
class MachineSet:
    """Rules grouped into product machines (immutable; shared freely between threads)."""

    @property
    def ids(self) -> List[str]:
        """The ids of the rules that have a machine, in the order given."""
    @property
    def policy(self) -> str:
        """The set's policy: ``"any"``, ``"rules"`` or ``"count"``."""
    @property
    def refused(self) -> List[Tuple[str, str]]:
        """The rules without a machine, as ``(id, reason)``."""
    def info(self) -> Dict[str, Any]:
        """The rules, the refused ones and the groups."""
    def matches(self, text: bytes) -> List[str]:
        """Plaintext reference: the ids of the rules that match ``text``."""
    def __len__(self) -> int: ...

def gitleaks(path: str, reveal: str = "rules", grouping: str = "cost", max_states: int = 20000) -> MachineSet:
    """A machine set from a gitleaks TOML configuration."""

def machine_set(
    rules: Sequence[Tuple[str, str]],
    reveal: str = "rules",
    full_match: bool = False,
    grouping: str = "cost",
    max_states: int = 20000,
) -> MachineSet:
    """A machine set from ``(rule_id, regex)`` pairs."""

@final
class Engine:
    """A private DFA evaluator over one machine or a machine set."""

    def __new__(
        cls,
        machine: Union[Dfa, MachineSet],
        protocol: str = "lookup-xor",
        reveal: Optional[str] = None,
        classes: str = "auto",
        chunk: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> Engine: ...
    @property
    def protocol(self) -> str:
        """The protocol's name."""
    @property
    def reveal(self) -> str:
        """What the client learns."""
    @property
    def machine(self) -> Dfa:
        """The machine (a set: its first group's)."""
    @property
    def is_set(self) -> bool:
        """Whether the engine runs a machine set."""
    def run(self, inputs: Any) -> Tuple[List[Any], Dict[str, Any]]:
        """Runs every input privately."""
    def _time_rust_api(self, texts: Sequence[bytes], repeats: int) -> List[Tuple[float, float]]:
        """The Rust API alone on the same engine (for measuring the binding)."""

@final
class Service:
    """A running service (in process)."""

    def __new__(
        cls,
        machines: Sequence[Tuple[str, Dfa, str, Optional[str]]],
        *,
        sets: Sequence[Tuple[str, MachineSet, str]] = ...,
        max_wave: Optional[int] = None,
        window: Optional[int] = None,
        idle_timeout: Optional[float] = None,
        max_sessions: Optional[int] = None,
        max_sessions_per_client: Optional[int] = None,
        max_pending: Optional[int] = None,
        pool_depth: Optional[int] = None,
        dealer_threads: Optional[int] = None,
    ) -> Service: ...
    def connect(self, name: str) -> Client:
        """A client for machine ``name``."""
    def interfaces(self) -> List[str]:
        """The served machines' interfaces, as JSON texts."""
    def stats(self) -> Dict[str, int]:
        """The service's counters."""
    def bytes(self) -> Dict[str, int]:
        """Bytes sent on every link so far."""
    @property
    def running(self) -> bool:
        """Whether the service is running."""
    def shutdown(self) -> None:
        """Stops the service."""

@final
class Session:
    """An open session of a service."""

    @property
    def id(self) -> int:
        """The session's number at the servers."""
    @property
    def pushed(self) -> int:
        """Symbols pushed so far."""
    @property
    def closed(self) -> bool:
        """Whether the session was closed."""

@final
class Client:
    """A connection to the service for one machine."""

    @property
    def machine(self) -> str:
        """The machine's name."""
    def interface(self) -> str:
        """The machine's public interface, as JSON text."""
    def open(self) -> Session:
        """Opens a session."""
    def push(self, session: Session, data: Any) -> None:
        """Pushes text or symbol indices."""
    def release(self, session: Session) -> _ReleaseTuple:
        """The output so far, and a set's answer (or ``None``)."""
    def close(self, session: Session) -> None:
        """Ends the session."""
    def open_then(self, done: _Done) -> None:
        """``open`` on a thread; ``done(ok, value)`` gets the result."""
    def push_then(self, session: Session, data: Any, done: _Done) -> None:
        """``push`` on a thread."""
    def release_then(self, session: Session, done: _Done) -> None:
        """``release`` on a thread."""
    def close_then(self, session: Session, done: _Done) -> None:
        """``close`` on a thread."""

def connect(
    machine: str,
    server0: str,
    server1: str,
    ca: str,
    cert: str,
    key: str,
    pin: Optional[str] = None,
    timeout: float = 10.0,
) -> Client:
    """A client of the service over the network."""

def connect_then(
    machine: str,
    server0: str,
    server1: str,
    ca: str,
    cert: str,
    key: str,
    pin: Optional[str],
    timeout: float,
    done: _Done,
) -> None:
    """``connect`` on a thread; ``done(ok, value)`` gets the result."""
