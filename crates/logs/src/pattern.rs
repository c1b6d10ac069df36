//! The subset of CloudWatch Logs filter patterns Stratus evaluates: plain
//! terms (all must appear), `"quoted phrases"`, `?term` alternatives (at
//! least one must appear) and `-term` exclusions. Matching is
//! case-sensitive, as in AWS. JSON (`{ … }`), space-delimited (`[ … ]`)
//! and regular-expression (`%…%`) patterns are refused with a message
//! saying so.

use crate::LogsError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterPattern {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

const SUPPORTED: &str = "Stratus supports filter patterns made of plain terms (all must appear), \"quoted phrases\", ?term alternatives and -term exclusions";

fn unsupported(what: &str) -> LogsError {
    LogsError::InvalidParameter(format!(
        "Invalid filter pattern: {what} are not supported. {SUPPORTED}"
    ))
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> Result<FilterPattern, LogsError> {
        let trimmed = pattern.trim();
        if trimmed.starts_with('{') {
            return Err(unsupported("JSON patterns ({ ... })"));
        }
        if trimmed.starts_with('[') {
            return Err(unsupported("space-delimited patterns ([ ... ])"));
        }
        if trimmed.starts_with('%') {
            return Err(unsupported("regular-expression patterns (%...%)"));
        }
        let mut out = FilterPattern::default();
        let mut chars = trimmed.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let kind = match first {
                '?' | '-' => {
                    chars.next();
                    first
                }
                _ => ' ',
            };
            let term = if chars.peek() == Some(&'"') {
                chars.next();
                let mut t = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(LogsError::InvalidParameter(
                                "Invalid filter pattern: a quoted phrase is not closed with \""
                                    .into(),
                            ))
                        }
                        Some('\\') => {
                            if let Some(c) = chars.next() {
                                t.push(c);
                            }
                        }
                        Some('"') => break,
                        Some(c) => t.push(c),
                    }
                }
                t
            } else {
                let mut t = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    t.push(c);
                }
                if t.contains(['"', '{', '}', '[', ']']) || t == "&&" || t == "||" {
                    return Err(unsupported(&format!("terms like {t:?}")));
                }
                t
            };
            if term.is_empty() {
                return Err(LogsError::InvalidParameter(format!(
                    "Invalid filter pattern: an empty term after {kind:?}. {SUPPORTED}"
                )));
            }
            match kind {
                '?' => out.any.push(term),
                '-' => out.none.push(term),
                _ => out.all.push(term),
            }
        }
        Ok(out)
    }

    pub fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| message.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str())))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, message: &str, expected: bool) {
        let p = FilterPattern::parse(pattern).expect("pattern");
        assert_eq!(p.matches(message), expected, "{pattern:?} on {message:?}");
    }

    #[test]
    fn terms_phrases_alternatives_exclusions() {
        check("", "anything", true);
        check("ERROR", "an ERROR here", true);
        check("ERROR", "an error here", false);
        check("ERROR db", "ERROR in db", true);
        check("ERROR db", "ERROR in cache", false);
        check("\"took 5 ms\"", "it took 5 ms", true);
        check("\"took 5 ms\"", "took 5  ms", false);
        check("?ERROR ?WARN", "WARN: x", true);
        check("?ERROR ?WARN", "INFO: x", false);
        check("REPORT ?Init ?Billed", "REPORT RequestId Billed", true);
        check("ERROR -Exiting", "ERROR Exiting", false);
        check("ERROR -Exiting", "ERROR other", true);
    }

    #[test]
    fn unsupported_patterns_are_refused() {
        for p in [
            "{ $.level = \"x\" }",
            "[ip, user]",
            "%ERR.*%",
            "\"open",
            "a\"b",
            "? x",
        ] {
            assert!(FilterPattern::parse(p).is_err(), "{p}");
        }
    }
}
