//! The four parties. Each is a function that owns its transport ends and walks the
//! shared [`crate::protocol::plan::Schedule`]; none touches another's state.
//!
//! See `README.md` in this folder for how one chunk flows through them.

pub mod client;
pub mod dealer;
pub mod poly;
pub mod server;
pub mod sharing;
