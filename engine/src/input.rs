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

#[cfg(test)]
mod tests {
    use super::split_lines;

    #[test]
    fn every_line_counts() {
        assert_eq!(split_lines(b""), Vec::<Vec<u8>>::new());
        assert_eq!(split_lines(b"\n"), vec![b"".to_vec()]);
        assert_eq!(split_lines(b"a\n\nb"), vec![b"a".to_vec(), vec![], b"b".to_vec()]);
        assert_eq!(split_lines(b"a\nb\n"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(split_lines(b"a\r\n"), vec![b"a\r".to_vec()]);
    }
}
