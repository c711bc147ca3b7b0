//! Reading client inputs: one input per line.
//!
//! Lines are split on `\n` only; every line counts and an empty line is an empty
//! input. A final `\n` ends the last line rather than starting an empty one. A `\r`
//! before the `\n` belongs to the input (byte machines may care about it).

use crate::dfa::DfaError;
use std::path::Path;

/// Splits file contents into inputs, as documented above.
pub fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

/// Reads an inputs file.
pub fn read_inputs(path: &Path) -> Result<Vec<Vec<u8>>, DfaError> {
    let bytes =
        std::fs::read(path).map_err(|e| DfaError::Io { file: path.display().to_string(), message: e.to_string() })?;
    Ok(split_lines(&bytes))
}

/// Reads a symbol-index inputs file: one input per line (as [`split_lines`]), each a
/// space-separated list of symbol indices below `symbols`. A bad token is reported
/// with its line and position.
pub fn read_symbol_inputs(path: &Path, symbols: usize) -> Result<Vec<Vec<u32>>, DfaError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| DfaError::Io { file: file.clone(), message: e.to_string() })?;
    split_lines(&bytes)
        .iter()
        .enumerate()
        .map(|(instance, line)| {
            String::from_utf8_lossy(line)
                .split_ascii_whitespace()
                .enumerate()
                .map(|(position, tok)| {
                    tok.parse::<u32>().ok().filter(|&a| (a as usize) < symbols).ok_or_else(|| DfaError::UnknownSymbol {
                        instance,
                        position,
                        symbol: tok.to_string(),
                    })
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{read_symbol_inputs, split_lines};

    #[test]
    fn symbol_inputs_parse_and_name_bad_tokens() {
        let path = std::env::temp_dir().join(format!("pmsm-symbols-{}.txt", std::process::id()));
        std::fs::write(&path, "0 1 2\n\n3\n").unwrap();
        assert_eq!(read_symbol_inputs(&path, 4).unwrap(), vec![vec![0, 1, 2], vec![], vec![3]]);
        let err = read_symbol_inputs(&path, 3).unwrap_err().to_string();
        assert!(err.contains("input 2") && err.contains("\"3\""), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn every_line_counts() {
        assert_eq!(split_lines(b""), Vec::<Vec<u8>>::new());
        assert_eq!(split_lines(b"\n"), vec![b"".to_vec()]);
        assert_eq!(split_lines(b"a\n\nb"), vec![b"a".to_vec(), vec![], b"b".to_vec()]);
        assert_eq!(split_lines(b"a\nb\n"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(split_lines(b"a\r\n"), vec![b"a\r".to_vec()]);
    }
}
