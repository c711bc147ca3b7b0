//! gitleaks configurations (TOML): each `[[rules]]` entry's `id` and `regex`.
//!
//! gitleaks (github.com/gitleaks/gitleaks, MIT) writes rules in Go's RE2 syntax, whose
//! `\w`, `\d`, `\s` and `\b` are ASCII; [`GitleaksRule::pattern`] therefore prefixes
//! `(?-u)`, so the machine answers as Go would on ASCII text (and reads every other
//! byte as a non-word byte). Only the regex is a machine: a rule's `keywords`
//! (a pre-filter), `entropy` threshold, `secretGroup`, `allowlists`, `path` and the
//! global `[allowlist]` are not evaluated, so a machine may flag what gitleaks would
//! let through; never the converse for the regex alone. A rule with no `regex` (a
//! path-only rule) has no machine and is listed in [`GitleaksConfig::without_regex`].
//!
//! The reader is behind the `gitleaks` feature (part of `cli`), which brings the
//! `toml` crate: an embedding that compiles its own patterns does not pay for a TOML
//! parser.

use super::Dfa;
use super::DfaError;
use super::regex::{RegexConfig, compile};
use std::path::Path;

/// One gitleaks rule with a regex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitleaksRule {
    /// Its `id` (e.g. `aws-access-token`).
    pub id: String,
    /// Its `regex`, as written in the file (Go RE2 syntax).
    pub regex: String,
}

impl GitleaksRule {
    /// The pattern to compile: the regex in ASCII mode (`(?-u)`), as Go reads it.
    pub fn pattern(&self) -> String {
        format!("(?-u){}", self.regex)
    }
}

/// The rules of a gitleaks configuration, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitleaksConfig {
    /// Rules with a regex.
    pub rules: Vec<GitleaksRule>,
    /// Ids of rules without a regex (path-only rules: no machine).
    pub without_regex: Vec<String>,
}

impl GitleaksConfig {
    /// Parses configuration text; `source` names the file in errors.
    pub fn parse(text: &str, source: &str) -> Result<GitleaksConfig, DfaError> {
        let field = |field: String, message: String| DfaError::Field { file: source.to_string(), field, message };
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            DfaError::AtLine {
                file: source.to_string(),
                line,
                error: Box::new(DfaError::Io { file: "TOML".into(), message: e.message().to_string() }),
            }
        })?;
        let rules = match table.get("rules") {
            Some(toml::Value::Array(rules)) => rules,
            Some(_) => return Err(field("rules".into(), "is not an array of tables ([[rules]])".into())),
            None => return Err(field("rules".into(), "no [[rules]] in the file".into())),
        };
        let mut out = GitleaksConfig { rules: Vec::new(), without_regex: Vec::new() };
        for (i, rule) in rules.iter().enumerate() {
            let rule = rule.as_table().ok_or_else(|| field(format!("rules[{i}]"), "is not a table".into()))?;
            let id = match rule.get("id") {
                Some(toml::Value::String(id)) => id.clone(),
                Some(_) => return Err(field(format!("rules[{i}].id"), "is not a string".into())),
                None => return Err(field(format!("rules[{i}]"), "has no id".into())),
            };
            match rule.get("regex") {
                Some(toml::Value::String(regex)) => out.rules.push(GitleaksRule { id, regex: regex.clone() }),
                Some(_) => return Err(field(format!("rules[{i}].regex ({id})"), "is not a string".into())),
                None => out.without_regex.push(id),
            }
        }
        Ok(out)
    }

    /// Reads and parses a configuration file.
    pub fn read(path: &Path) -> Result<GitleaksConfig, DfaError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| DfaError::Io { file: file.clone(), message: e.to_string() })?;
        GitleaksConfig::parse(&text, &file)
    }

    /// Each rule compiled alone (its own machine or the reason it is refused: a regex
    /// Rust's syntax does not read, or more than `cfg.max_states` states), in file order.
    pub fn compile_each(&self, cfg: &RegexConfig) -> Vec<(&GitleaksRule, Result<Dfa, DfaError>)> {
        self.rules.iter().map(|r| (r, compile(&[r.pattern()], cfg).map_err(|e| named(r, e)))).collect()
    }
}

/// An error of compiling `rule`, with its id in place of a set index.
fn named(rule: &GitleaksRule, e: DfaError) -> DfaError {
    match e {
        DfaError::Regex { message, .. } => DfaError::Field {
            file: "gitleaks".into(),
            field: format!("rule {}", rule.id),
            message: format!("regex {:?}: {message}", rule.regex),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_keep_their_ids_and_path_rules_are_listed() {
        let c = GitleaksConfig::parse(
            "title = \"t\"\n[[rules]]\nid = \"a\"\nregex = '''x\\d{2}'''\nkeywords = [\"x\"]\n[[rules]]\nid = \"p\"\npath = '''\\.pem$'''\n",
            "g.toml",
        )
        .unwrap();
        assert_eq!(c.rules, vec![GitleaksRule { id: "a".into(), regex: "x\\d{2}".into() }]);
        assert_eq!(c.rules[0].pattern(), "(?-u)x\\d{2}");
        assert_eq!(c.without_regex, vec!["p".to_string()]);
    }

    #[test]
    fn bad_files_and_rules_are_named() {
        let e = GitleaksConfig::parse("[[rules]]\nid = \"a\"\nregex = 3\n", "g.toml").unwrap_err().to_string();
        assert_eq!(e, "g.toml: field `rules[0].regex (a)`: is not a string");
        let e = GitleaksConfig::parse("a = 1\n\n[[rules]\n", "g.toml").unwrap_err().to_string();
        assert!(e.starts_with("g.toml: line 3: "), "{e}");
        let e = GitleaksConfig::parse("[[rules]]\nregex = 'x'\n", "g.toml").unwrap_err().to_string();
        assert_eq!(e, "g.toml: field `rules[0]`: has no id");
        assert!(GitleaksConfig::parse("x = 1\n", "g.toml").unwrap_err().to_string().contains("no [[rules]]"));
        // A regex Rust's syntax does not read is refused with its id, not a panic.
        let c = GitleaksConfig::parse("[[rules]]\nid = \"look\"\nregex = '''a(?=b)'''\n", "g.toml").unwrap();
        let e = c.compile_each(&RegexConfig::default()).remove(0).1.unwrap_err().to_string();
        assert!(e.starts_with("gitleaks: field `rule look`: regex \"a(?=b)\": "), "{e}");
    }

    #[test]
    fn ascii_semantics() {
        let c = GitleaksConfig::parse("[[rules]]\nid = \"w\"\nregex = '''\\bk\\w\\b'''\n", "g.toml").unwrap();
        let m = c.compile_each(&RegexConfig::default()).remove(0).1.unwrap();
        let hit = |s: &str| m.is_accepting(m.run(&m.encode(s.as_bytes(), 0).unwrap()));
        assert!(hit("a kx b"));
        assert!(!hit("a kxy b"));
        assert!(!hit("a ké b"), "é is not an ASCII word character");
    }
}
