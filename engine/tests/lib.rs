//! Integration tests of pmsm-engine: one binary, one module per concern.

mod bench;
mod cli;
mod datasets;
mod features;
mod fuzz;
mod process;
mod protocol;
mod regex_oracle;
mod seed;
mod service;
mod service_net;
mod sets;
mod store;
mod store_net;

/// The seed's machine, from `datasets/ab.json`.
pub fn ab() -> pmsm_engine::dfa::Dfa {
    pmsm_engine::dfa::json::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/ab.json")).unwrap()
}
