//! Reading client inputs: one input per line.
//!
//! Lines are split on `\n` only; every line counts and an empty line is an empty
//! input. A final `\n` ends the last line rather than starting an empty one. A `\r`
//! before the `\n` belongs to the input (byte machines may care about it).

use crate::dfa::{Dfa, DfaError};
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

/// Encodes the lines of a file (`source` names it) with `dfa`'s alphabet. An unknown
/// symbol is reported with the file and its line (from 1), then its instance and
/// position (from 0, as instances are numbered in outputs).
pub fn encode_lines(dfa: &Dfa, texts: &[Vec<u8>], source: &str) -> Result<Vec<Vec<u32>>, DfaError> {
    texts.iter().enumerate().map(|(i, t)| dfa.encode(t, i).map_err(|e| at_line(source, i, e))).collect()
}

/// Parses a symbol-index inputs file (`source` names it): one input per line (as
/// [`split_lines`]), each a space-separated list of symbol indices below `symbols`. A
/// bad token is reported with its line (from 1), instance and position.
pub fn parse_symbol_inputs(bytes: &[u8], symbols: usize, source: &str) -> Result<Vec<Vec<u32>>, DfaError> {
    split_lines(bytes)
        .iter()
        .enumerate()
        .map(|(instance, line)| {
            String::from_utf8_lossy(line)
                .split_ascii_whitespace()
                .enumerate()
                .map(|(position, tok)| {
                    tok.parse::<u32>().ok().filter(|&a| (a as usize) < symbols).ok_or_else(|| {
                        let e = DfaError::UnknownSymbol { instance, position, symbol: tok.to_string() };
                        at_line(source, instance, e)
                    })
                })
                .collect()
        })
        .collect()
}

/// Reads a symbol-index inputs file ([`parse_symbol_inputs`]).
pub fn read_symbol_inputs(path: &Path, symbols: usize) -> Result<Vec<Vec<u32>>, DfaError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| DfaError::Io { file: file.clone(), message: e.to_string() })?;
    parse_symbol_inputs(&bytes, symbols, &file)
}

/// `error` on the line of input `index` (0-based) of `source`.
fn at_line(source: &str, index: usize, error: DfaError) -> DfaError {
    DfaError::AtLine { file: source.to_string(), line: index + 1, error: Box::new(error) }
}

#[cfg(test)]
mod tests {
    use super::{encode_lines, read_symbol_inputs, split_lines};

    #[test]
    fn symbol_inputs_parse_and_name_bad_tokens() {
        let path = std::env::temp_dir().join(format!("pmsm-symbols-{}.txt", std::process::id()));
        std::fs::write(&path, "0 1 2\n\n3\n").unwrap();
        assert_eq!(read_symbol_inputs(&path, 4).unwrap(), vec![vec![0, 1, 2], vec![], vec![3]]);
        let err = read_symbol_inputs(&path, 3).unwrap_err().to_string();
        let want = format!("{}: line 3: input 2: symbol \"3\" at position 0", path.display());
        assert!(err.starts_with(&want), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn unknown_symbols_name_the_line_from_one() {
        let m = crate::dfa::json::seed_machine();
        let texts = split_lines(b"ab\nba\naxb\n");
        let err = encode_lines(&m, &texts, "in.txt").unwrap_err().to_string();
        assert_eq!(err, "in.txt: line 3: input 2: symbol \"x\" at position 1 is not in the machine's alphabet");
        assert_eq!(encode_lines(&m, &texts[..2], "in.txt").unwrap(), vec![vec![0, 1], vec![1, 0]]);
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
