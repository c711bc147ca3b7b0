//! Alphabets: how input text becomes symbol indices.

use super::DfaError;
use std::collections::HashMap;

/// The input alphabet of a machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alphabet {
    /// All 256 byte values; input is read byte by byte and byte `b` is symbol `b`.
    Bytes,
    /// Distinct characters; input is read as UTF-8, character by character, and the
    /// `k`-th character of the list is symbol `k`.
    Chars {
        /// The characters, in symbol order.
        chars: Vec<char>,
        /// Inverse map, character → symbol index.
        index: HashMap<char, u32>,
    },
}

impl Alphabet {
    /// An alphabet of the given distinct characters (`None` if empty or repeated).
    pub fn chars(chars: &str) -> Option<Alphabet> {
        Self::from_chars(chars.chars().collect())
    }

    /// An alphabet of distinct characters (`None` if empty or repeated).
    pub fn from_chars(chars: Vec<char>) -> Option<Alphabet> {
        let index: HashMap<char, u32> = chars.iter().enumerate().map(|(i, c)| (*c, i as u32)).collect();
        (!chars.is_empty() && index.len() == chars.len()).then_some(Alphabet::Chars { chars, index })
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        match self {
            Alphabet::Bytes => 256,
            Alphabet::Chars { chars, .. } => chars.len(),
        }
    }

    /// Never true for a valid alphabet (kept for API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A printable name of symbol `k`.
    pub fn symbol_name(&self, k: u32) -> String {
        match self {
            Alphabet::Bytes => {
                let b = k as u8;
                if b.is_ascii_graphic() { (b as char).to_string() } else { format!("\\x{b:02x}") }
            }
            Alphabet::Chars { chars, .. } => chars[k as usize].to_string(),
        }
    }

    /// Converts input text into symbol indices. `instance` is reported in errors.
    pub fn encode(&self, text: &[u8], instance: usize) -> Result<Vec<u32>, DfaError> {
        match self {
            Alphabet::Bytes => Ok(text.iter().map(|&b| u32::from(b)).collect()),
            Alphabet::Chars { index, .. } => {
                let s = std::str::from_utf8(text).map_err(|e| DfaError::UnknownSymbol {
                    instance,
                    position: String::from_utf8_lossy(&text[..e.valid_up_to()]).chars().count(),
                    symbol: format!("\\x{:02x} (invalid UTF-8)", text[e.valid_up_to()]),
                })?;
                s.chars()
                    .enumerate()
                    .map(|(position, c)| {
                        index.get(&c).copied().ok_or(DfaError::UnknownSymbol {
                            instance,
                            position,
                            symbol: c.to_string(),
                        })
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_reject_duplicates_and_empty() {
        assert!(Alphabet::chars("aba").is_none());
        assert!(Alphabet::chars("").is_none());
        assert_eq!(Alphabet::chars("xyz").unwrap().len(), 3);
    }

    #[test]
    fn invalid_utf8_is_an_error_with_position() {
        let a = Alphabet::chars("ab").unwrap();
        let e = a.encode(b"ab\xff", 3).unwrap_err();
        assert!(matches!(e, DfaError::UnknownSymbol { instance: 3, position: 2, .. }), "{e}");
        assert_eq!(Alphabet::Bytes.encode(b"\xff", 0).unwrap(), vec![255]);
        assert_eq!(Alphabet::Bytes.symbol_name(0), "\\x00");
    }
}
