"""The exceptions pmsm raises.

Every error carries the message the ``pmsm`` command line prints for the same
failure (file, line and column of a malformed machine, the instance and position of
an unknown symbol, the session a refusal concerns).
"""

from __future__ import annotations

__all__ = [
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


class Error(Exception):
    """Base class of every pmsm error."""


class DfaError(Error, ValueError):
    """A machine, its JSON file, a regular expression or a rule file is invalid."""


class UnknownSymbolError(DfaError):
    """An input holds a symbol outside the machine's alphabet (nothing was sent)."""


class InputError(Error, TypeError):
    """An input is neither text nor a sequence of symbol indices."""


class ProtocolError(Error):
    """Running a protocol failed (a party's error, a bad frame, a link that failed)."""


EngineError = ProtocolError
"""Another name for :class:`ProtocolError`: an error of the batch engine."""


class ParameterError(ProtocolError, ValueError):
    """A setting is invalid: an unknown protocol or output policy, an option out of
    range, or a machine too large for the protocol."""


class ServiceError(Error):
    """The service refused a request (limits, a busy session, a request that does not
    fit the session)."""


class UnknownMachineError(ServiceError):
    """No machine of that name is served."""


class SessionClosedError(ServiceError):
    """The session was closed, evicted after being idle, or never opened."""


class ServiceStoppedError(ServiceError):
    """The service is not running (shut down, or a server failed: the reason says)."""


class ServiceUnavailableError(ServiceError):
    """A server cannot be reached (refused, timed out, TLS failed), or is not linked
    with the other server and the dealer just now: nothing was applied; retry later
    (network back end)."""


class PinMismatchError(ServiceError):
    """The servers' machine does not have the fingerprint the client pinned (network
    back end): the client refuses the servers before opening any session."""
