//! # pmsm-engine
//!
//! Private finite state machines between two non-colluding servers.
//!
//! A client feeds symbols to a deterministic finite automaton that two servers run
//! together; the machine is public to the servers, while its current state and every
//! input symbol are secret-shared between them. A trusted dealer supplies
//! input-independent correlated randomness ahead of time. See `DESIGN.md` §1 for the
//! threat model: semi-honest, **non-colluding** servers — if they collude they learn
//! every state and symbol.
//!
//! - [`dfa`]: the machine model, its JSON format, the regex compiler, minimisation,
//!   symbol classes and the plaintext evaluator (the ground truth of every test).
//! - [`protocol`]: the one-round masked-index lookup (`lookup-xor`, `lookup-ring`).
//! - [`party`], [`transport`]: the four parties (client, two servers, dealer) and how
//!   they talk.
//! - [`process`]: the parties as processes, over TCP with mutual TLS.
//! - [`cost`]: both paths' measured cost models and the choice of path per rule.
//! - [`Engine`]: the embedding API of the batch engine.
//! - [`service`]: long-lived servers, streaming sessions, waves across sessions.
//! - [`store`]: durable sessions, one crash-safe file per server.
//!
//! # Features
//!
//! - `cli` (default): what the `pmsm` binary needs besides the engine — clap, toml,
//!   indicatif, mimalloc, signal-hook — and `dev-certs`. An embedding that wants the
//!   engine alone takes `default-features = false`.
//! - `dev-certs` (part of `cli`): `transport::certs`, a development CA and party
//!   certificates (rcgen).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cost;
pub mod dfa;
mod engine;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod input;
pub mod mixed;
pub mod nfa;
pub mod party;
pub mod poly;
pub mod process;
pub mod protocol;
pub mod service;
pub mod store;
pub mod transport;

pub use engine::{DEFAULT_CHUNK, Engine, EngineBuilder, InstanceOutput, LinkBytes, Predealt, Report, Settings};
pub use error::Error;
