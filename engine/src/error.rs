//! The engine's top-level error, gathering each phase's own.

use crate::dfa::DfaError;
use crate::protocol::ProtocolError;

/// Any error the engine reports. Each variant wraps the error of one phase.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Building, loading or using a machine.
    #[error(transparent)]
    Dfa(#[from] DfaError),
    /// Running a protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Building a rule set on the NFA path.
    #[error(transparent)]
    Nfa(#[from] crate::nfa::NfaError),
    /// Using the service.
    #[error(transparent)]
    Service(#[from] crate::service::ServiceError),
}
