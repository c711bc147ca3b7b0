//! The fuzz crate as its README instructions use it: its own lock file is current, so
//! building it does not change the work tree.

use std::path::Path;
use std::process::Command;

#[test]
fn the_fuzz_lock_file_is_up_to_date() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // `--locked` refuses to change Cargo.lock: it fails exactly when a build would.
    let o = Command::new(cargo)
        .args(["metadata", "--locked", "--format-version", "1", "--manifest-path"])
        .arg(&fuzz)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "fuzz/Cargo.lock is out of date (run `cargo metadata` in fuzz/ and commit it): {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
