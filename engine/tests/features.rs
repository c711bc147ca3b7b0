//! The engine embeds lightly: without its `cli` feature (`default-features = false`) it
//! pulls none of the crates only the `pmsm` binary needs.

use std::path::Path;
use std::process::Command;

/// What only the binary uses: arguments, profiles, progress bar, allocator, development
/// certificates, signals, the plaintext rule-set reference; and the network service's
/// runtime (feature `net`, which `cli` includes).
const BINARY_ONLY: [&str; 9] =
    ["clap", "toml", "indicatif", "mimalloc", "rcgen", "signal-hook", "regex", "tokio", "tokio-rustls"];

/// Every crate `pmsm-engine` depends on as a library (normal edges, transitively), by
/// name, from `cargo tree` with `features` (extra arguments).
fn library_dependencies(features: &[&str]) -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--frozen", "-p", "pmsm-engine", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .args(features)
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_whitespace().next()).map(String::from).collect()
}

#[test]
fn without_the_cli_feature_the_library_pulls_none_of_the_binarys_crates() {
    let lean = library_dependencies(&["--no-default-features"]);
    assert!(lean.iter().any(|c| c == "rustls"), "the engine's own dependencies are listed: {lean:?}");
    for c in BINARY_ONLY {
        assert!(!lean.iter().any(|d| d == c), "{c} is pulled without the cli feature: {lean:?}");
    }
    // The same listing with the default features finds them all (the check can fail).
    let full = library_dependencies(&[]);
    for c in BINARY_ONLY {
        assert!(full.iter().any(|d| d == c), "{c} missing with default features: {full:?}");
    }
}
