//! Integration tests of pmsm-engine: one binary, one module per concern.

mod cli;
mod datasets;
mod protocol;
mod regex_oracle;
mod seed;
