//! Files named on the command line, with the Unix convention that `-` is standard
//! input (a file read) or standard output (a file written).

use super::Failure;
use pmsm_engine::dfa::DfaError;
use std::io::{Read, Write};
use std::path::Path;

/// Whether `path` is `-`: standard input or output.
pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How `path` is named in messages (`standard input` for `-`).
pub fn source_name(path: &Path) -> String {
    if is_stdio(path) { "standard input".into() } else { path.display().to_string() }
}

/// The bytes of `path`, or of standard input for `-`.
pub fn read(path: &Path) -> Result<Vec<u8>, DfaError> {
    let io = |e: std::io::Error| DfaError::Io { file: source_name(path), message: e.to_string() };
    if is_stdio(path) {
        let mut bytes = Vec::new();
        std::io::stdin().lock().read_to_end(&mut bytes).map_err(io)?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(io)
}

/// Writes `text` to `path`, or to `stdout` for `-`; returns how the target is named
/// in messages.
pub fn write(path: &Path, text: &str, stdout: &mut impl Write) -> Result<String, Failure> {
    if is_stdio(path) {
        stdout.write_all(text.as_bytes()).map_err(|e| Failure { message: format!("writing output: {e}"), code: 1 })?;
        return Ok("standard output".into());
    }
    std::fs::write(path, text).map_err(|e| Failure { message: format!("{}: {e}", path.display()), code: 1 })?;
    Ok(path.display().to_string())
}
