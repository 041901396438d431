//! Errors in scenario files, pointing at the file, line and column of the offending text.

use std::path::PathBuf;

use miette::{NamedSource, SourceSpan};

use crate::field::FieldError;

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario `{}`", path.display())]
    Read {
        /// The file, as it was given.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// `run --sample` (or `--seed`) of a scenario whose source cannot be sampled.
    #[error("scenario `{}`: {why}", path.display())]
    Sample {
        /// The file, as it was given.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// The file is not a valid scenario.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<InvalidScenario>),
}

/// A scenario file with a wrong, unknown or missing value. Displays as `file:line:col: message`.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{path}:{line}:{column}: {message}")]
#[diagnostic(code(pgdrill::scenario))]
#[non_exhaustive]
pub struct InvalidScenario {
    /// The file, as it was given.
    pub path: String,
    /// The line of the offending text, from 1.
    pub line: usize,
    /// Its column in that line, in characters, from 1.
    pub column: usize,
    /// What is wrong, with the nearest expected name when a key or a value is misspelt
    /// (`did you mean ...?`).
    pub message: String,
    /// The file's text, which a rich display quotes around the offending text.
    #[source_code]
    pub src: NamedSource<String>,
    /// The offending text: its byte offset in the file and its length.
    #[label("here")]
    pub span: SourceSpan,
}

impl ScenarioError {
    pub(crate) fn invalid(path: &str, text: &str, error: FieldError) -> Self {
        let span = error.span.unwrap_or(0..0);
        let start = span.start.min(text.len());
        let (line, column) = line_column(text, start);
        let len = span.end.saturating_sub(span.start).min(text.len() - start);
        ScenarioError::Invalid(Box::new(InvalidScenario {
            path: path.to_owned(),
            line,
            column,
            message: with_suggestion(error.message),
            src: NamedSource::new(path, text.to_owned()),
            span: (start, len).into(),
        }))
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown variant"), with the
/// nearest of the expected names when one is near: "did you mean `a`?".
fn with_suggestion(message: String) -> String {
    let Some((head, expected)) = message.split_once(", expected one of ") else { return message };
    let Some(unknown) = head.split('`').nth(1) else { return message };
    let nearest = expected
        .split(", ")
        .map(|name| name.trim().trim_matches('`'))
        .map(|name| (strsim::jaro_winkler(unknown, name), name))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match nearest {
        Some((_, name)) => format!("{message}; did you mean `{name}`?"),
        None => message,
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_gets_the_nearest_known_one() {
        let said = |m: &str| with_suggestion(m.to_owned());
        let expected = ", expected one of `tables`, `tolerance`, `expect_from_dump`, `baseline`";
        assert!(
            said(&format!("unknown field `expect_from_dumpp`{expected}"))
                .ends_with("; did you mean `expect_from_dump`?")
        );
        assert!(said(&format!("unknown field `tabels`{expected}")).ends_with("; did you mean `tables`?"));
        assert!(!said(&format!("unknown field `zzz`{expected}")).contains("did you mean"), "nothing near");
        assert_eq!(said("invalid type: integer"), "invalid type: integer");
    }

    #[test]
    fn lines_and_columns_are_one_based() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 9), (2, 3));
    }
}
