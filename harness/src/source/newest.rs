//! Choosing the newest backup among several (a folder of nightly dumps, an S3 prefix), and the
//! previous one, which the size sanity check compares it with.
//!
//! A pattern names the backups and where their date is: `plur-{date}.sql.gz`,
//! `powernode_{date}.sql.gz`, `*.dump`. `{date}` matches digits with `-`, `_`, `T`, `:` or `Z`
//! between them (`2026-05-25`, `20260518_020000`); backups sort by those digits. Without
//! `{date}`, or without a pattern, they sort by modification time.

use time::OffsetDateTime;

/// A backup file name pattern with `*` and at most one `{date}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamePattern {
    parts: Vec<Part>,
    has_date: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Any,
    Date,
}

/// Why a backup file name pattern is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PatternError {
    /// A `/`: a pattern names files in one folder.
    #[error("pattern `{text}` names a file, not a path: no `/`")]
    Path { text: String },
    /// Two `{{date}}`s: backups sort by one.
    #[error("pattern `{text}` has more than one {{date}}")]
    Dates { text: String },
    /// Nothing to match.
    #[error("the pattern is empty")]
    Empty,
}

impl NamePattern {
    pub(crate) fn parse(text: &str) -> Result<Self, PatternError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut dates = 0;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{date}") {
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Date);
                dates += 1;
                rest = after;
            } else if let Some(after) = rest.strip_prefix('*') {
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Any);
                rest = after;
            } else {
                let c = rest.chars().next().unwrap_or_default();
                if c == '/' {
                    return Err(PatternError::Path { text: text.to_owned() });
                }
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if dates > 1 {
            return Err(PatternError::Dates { text: text.to_owned() });
        }
        if parts.is_empty() {
            return Err(PatternError::Empty);
        }
        Ok(NamePattern { parts, has_date: dates == 1 })
    }

    pub(crate) fn has_date(&self) -> bool {
        self.has_date
    }

    /// Whether `name` matches; with the digits of its `{date}` when the pattern has one.
    pub(crate) fn matches(&self, name: &str) -> Option<String> {
        match_parts(&self.parts, name)
    }
}

fn is_date_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '-' | '_' | 'T' | ':' | 'Z')
}

fn match_parts(parts: &[Part], name: &str) -> Option<String> {
    match parts.split_first() {
        None => name.is_empty().then(String::new),
        Some((Part::Literal(lit), rest)) => name.strip_prefix(lit.as_str()).and_then(|n| match_parts(rest, n)),
        Some((Part::Any, rest)) => {
            (0..=name.len()).filter(|i| name.is_char_boundary(*i)).find_map(|i| match_parts(rest, &name[i..]))
        }
        Some((Part::Date, rest)) => {
            let max = name.find(|c: char| !is_date_char(c)).unwrap_or(name.len());
            // Longest date first, but it must start and end with a digit.
            (1..=max).rev().find_map(|len| {
                let date = &name[..len];
                if !date.starts_with(|c: char| c.is_ascii_digit()) || !date.ends_with(|c: char| c.is_ascii_digit()) {
                    return None;
                }
                match_parts(rest, &name[len..]).map(|_| date.chars().filter(char::is_ascii_digit).collect())
            })
        }
    }
}

/// A backup among several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub name: String,
    pub size: u64,
    pub modified: Option<OffsetDateTime>,
    /// The digits of the date in its name.
    pub date: Option<String>,
    /// Its ETag, when its store gives one (S3).
    pub etag: Option<String>,
}

/// The newest candidate matching `pattern`, and the one before it.
pub(crate) fn newest(
    candidates: Vec<Candidate>,
    pattern: Option<&NamePattern>,
) -> (Option<Candidate>, Option<Candidate>) {
    let mut candidates = sorted(candidates, pattern);
    let newest = candidates.pop();
    let previous = candidates.pop();
    (newest, previous)
}

/// The candidates matching `pattern`, oldest first: by the date in their names when it has
/// `{date}` (each with its date's digits), else by modification time; then by name.
pub(crate) fn sorted(mut candidates: Vec<Candidate>, pattern: Option<&NamePattern>) -> Vec<Candidate> {
    if let Some(pattern) = pattern {
        candidates = candidates
            .into_iter()
            .filter_map(|mut c| {
                let date = pattern.matches(&c.name)?;
                c.date = pattern.has_date().then_some(date);
                Some(c)
            })
            .collect();
    }
    let by_date = pattern.is_some_and(NamePattern::has_date);
    candidates.sort_by(|a, b| {
        if by_date {
            let key = |c: &Candidate| c.date.clone().unwrap_or_default();
            let (ka, kb) = (key(a), key(b));
            ka.len().cmp(&kb.len()).then(ka.cmp(&kb)).then(a.name.cmp(&b.name))
        } else {
            a.modified.cmp(&b.modified).then(a.name.cmp(&b.name))
        }
    });
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str, size: u64, modified: i64) -> Candidate {
        Candidate {
            name: name.into(),
            size,
            modified: OffsetDateTime::from_unix_timestamp(modified).ok(),
            date: None,
            etag: None,
        }
    }

    #[test]
    fn dates_in_names() {
        let p = NamePattern::parse("plur-{date}.sql.gz").unwrap();
        assert_eq!(p.matches("plur-2026-05-25.sql.gz").as_deref(), Some("20260525"));
        assert_eq!(p.matches("plur-latest.sql.gz"), None);
        assert_eq!(p.matches("other-2026-05-25.sql.gz"), None);
        let p = NamePattern::parse("powernode_{date}.sql.gz").unwrap();
        assert_eq!(p.matches("powernode_20260518_020000.sql.gz").as_deref(), Some("20260518020000"));
        let p = NamePattern::parse("*.dump").unwrap();
        assert!(p.matches("x.dump").is_some() && p.matches("x.sql").is_none());
        assert!(NamePattern::parse("a/{date}").is_err());
        assert_eq!(
            NamePattern::parse("{date}{date}").unwrap_err().to_string(),
            "pattern `{date}{date}` has more than one {date}"
        );
        assert_eq!(NamePattern::parse(""), Err(PatternError::Empty));
    }

    #[test]
    fn newest_by_name_date_then_by_time() {
        let files = vec![
            candidate("plur-2026-05-24.sql.gz", 900, 300),
            candidate("plur-2026-05-25.sql.gz", 1000, 100),
            candidate("plur-2026-05-23.sql.gz", 800, 200),
            candidate("notes.txt", 5, 400),
        ];
        let pattern = NamePattern::parse("plur-{date}.sql.gz").unwrap();
        let (newest_file, previous) = newest(files.clone(), Some(&pattern));
        assert_eq!(newest_file.unwrap().name, "plur-2026-05-25.sql.gz");
        assert_eq!(previous.unwrap().name, "plur-2026-05-24.sql.gz");
        let (by_time, before) = newest(files, None);
        assert_eq!(by_time.unwrap().name, "notes.txt");
        assert_eq!(before.unwrap().name, "plur-2026-05-24.sql.gz");
    }
}
