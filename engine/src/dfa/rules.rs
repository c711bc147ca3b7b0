//! Rule files: one regular expression per line.
//!
//! Blank lines and lines starting with `#` are skipped; trailing whitespace is not part
//! of a pattern (leading whitespace is). Every rule keeps its line, counted from 1 as
//! editors do, so a pattern that does not compile is reported where it stands. A file
//! with no rule at all is an error: a set of no patterns has no machine, and the file
//! was most likely not the one meant.

use super::DfaError;
use std::path::Path;

/// One pattern of a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its line in the file (from 1).
    pub line: usize,
    /// The pattern, trailing whitespace removed.
    pub pattern: String,
}

/// The rules of one file, in file order. Invariant: at least one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFile {
    source: String,
    rules: Vec<Rule>,
}

impl RuleFile {
    /// Parses rule-file text; `source` names the file in errors.
    pub fn parse(text: &str, source: &str) -> Result<RuleFile, DfaError> {
        let rules: Vec<Rule> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end()))
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|(line, l)| Rule { line, pattern: l.to_string() })
            .collect();
        if rules.is_empty() {
            return Err(DfaError::NoPattern { file: source.to_string() });
        }
        Ok(RuleFile { source: source.to_string(), rules })
    }

    /// Reads and parses a rule file.
    pub fn read(path: &Path) -> Result<RuleFile, DfaError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| DfaError::Io { file: file.clone(), message: e.to_string() })?;
        RuleFile::parse(&text, &file)
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The patterns, in file order.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.pattern.as_str())
    }

    /// Puts an error of compiling a pattern set on its rule's line: the set is
    /// `leading` other patterns followed by this file's, and [`DfaError::Regex`]'s index
    /// counts in that set. Other errors are returned as they are.
    pub fn locate(&self, leading: usize, error: DfaError) -> DfaError {
        match &error {
            DfaError::Regex { index, .. } if *index >= leading && *index - leading < self.rules.len() => {
                let line = self.rules[*index - leading].line;
                DfaError::AtLine { file: self.source.clone(), line, error: Box::new(error) }
            }
            _ => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dfa::regex::{RegexConfig, compile};

    #[test]
    fn rules_keep_their_lines_from_one() {
        let f = RuleFile::parse("# secrets\n\nAKIA[0-9A-Z]{16}  \n#x\n  ab\n", "rules.txt").unwrap();
        let got: Vec<(usize, &str)> = f.rules().iter().map(|r| (r.line, r.pattern.as_str())).collect();
        assert_eq!(got, vec![(3, "AKIA[0-9A-Z]{16}"), (5, "  ab")]);
    }

    #[test]
    fn a_file_without_patterns_is_refused_by_name() {
        for text in ["", "\n\n", "# only\n#comments\n   \n"] {
            let e = RuleFile::parse(text, "empty.txt").unwrap_err().to_string();
            assert_eq!(e, "empty.txt holds no pattern (only blank lines and `#` comments)");
        }
    }

    #[test]
    fn a_bad_pattern_is_reported_on_its_line() {
        let f = RuleFile::parse("# header\nab\n\na(b\n", "rules.txt").unwrap();
        let mut set = vec!["x".to_string()];
        set.extend(f.patterns().map(String::from));
        let e = f.locate(1, compile(&set, &RegexConfig::default()).unwrap_err()).to_string();
        assert!(e.starts_with("rules.txt: line 4: regex 2 (\"a(b\"): "), "{e}");
        // A command-line pattern before the file's is not the file's.
        let e = f.locate(1, compile(&["a(".to_string(), "b".to_string()], &RegexConfig::default()).unwrap_err());
        assert!(e.to_string().starts_with("regex 0 "), "{e}");
    }
}
