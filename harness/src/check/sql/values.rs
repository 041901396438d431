//! What a `sql` check expects, and how a value as the server prints it matches: text exactly,
//! numbers numerically, booleans as `t`/`f`, SQL NULL only as `{ null = true }`.

use serde::Deserialize;

use crate::field::FieldError;

/// A value as the scenario writes it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(crate) enum ScalarValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// `{ null = true }`: SQL NULL.
    Null(NullValue),
}

/// The inline table `{ null = true }` that stands for SQL NULL.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NullValue {
    /// `true`: SQL NULL (`false` is refused).
    null: bool,
}

/// An expected value, resolved: how it matches a value as the server prints it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expected {
    /// The same text.
    Text(String),
    /// The same number.
    Integer(i64),
    /// The same number.
    Float(f64),
    /// A boolean, printed `t` or `f`.
    Bool(bool),
    /// SQL NULL.
    Null,
}

impl Expected {
    pub(super) fn resolve(value: ScalarValue) -> Result<Self, FieldError> {
        Ok(match value {
            ScalarValue::Text(t) => Expected::Text(t),
            ScalarValue::Integer(i) => Expected::Integer(i),
            ScalarValue::Float(f) => Expected::Float(f),
            ScalarValue::Bool(b) => Expected::Bool(b),
            ScalarValue::Null(NullValue { null: true }) => Expected::Null,
            ScalarValue::Null(NullValue { null: false }) => {
                return Err(FieldError::unplaced("`{ null = false }` means nothing: SQL NULL is `{ null = true }`"));
            }
        })
    }

    /// Whether the server's text for a value (`None`: NULL) is this one.
    pub(crate) fn matches(&self, actual: Option<&str>) -> bool {
        let Some(actual) = actual else { return *self == Expected::Null };
        match self {
            Expected::Text(t) => actual == t,
            Expected::Bool(b) => actual == if *b { "t" } else { "f" },
            Expected::Integer(i) => same_number(actual, &i.to_string()),
            Expected::Float(f) if f.is_nan() => actual == "NaN",
            Expected::Float(f) if f.is_infinite() => actual == if *f > 0.0 { "Infinity" } else { "-Infinity" },
            // `{}` prints the shortest decimal that reads back as `f`: what the scenario wrote.
            Expected::Float(f) => same_number(actual, &format!("{f}")),
            Expected::Null => false,
        }
    }

    pub(super) fn show(&self) -> String {
        match self {
            Expected::Text(t) => show_text(t),
            Expected::Integer(i) => i.to_string(),
            Expected::Float(f) => f.to_string(),
            Expected::Bool(b) => if *b { "t" } else { "f" }.into(),
            Expected::Null => "NULL".into(),
        }
    }
}

/// A value as reports show it: NULL as `NULL`, a text that reads `NULL` quoted.
pub(super) fn show_value(value: Option<&str>) -> String {
    value.map_or_else(|| "NULL".into(), show_text)
}

fn show_text(text: &str) -> String {
    if text.eq_ignore_ascii_case("null") { format!("'{text}'") } else { text.to_owned() }
}

/// Whether two decimal numbers as text (`1.50`, `-2`, `1e+20`) are the same number; false when
/// either is not a number.
fn same_number(a: &str, b: &str) -> bool {
    matches!((decimal(a), decimal(b)), (Some(x), Some(y)) if x == y)
}

/// A decimal number as (negative, significant digits, exponent): `1.50` and `15e-1` both are
/// `(false, "15", -1)`; zero is `(false, "0", 0)`.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let text = text.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let all = format!("{whole}{fraction}");
    let significant = all.trim_start_matches('0');
    if significant.is_empty() {
        return Some((false, "0".into(), 0));
    }
    let trimmed = significant.trim_end_matches('0');
    let exponent = exponent - fraction.len() as i64 + (significant.len() - trimmed.len()) as i64;
    Some((negative, trimmed.to_owned(), exponent))
}

/// Whether the rows the query returned (each value as the server prints it, `None` for NULL)
/// are the expected ones: as many rows, as many columns, each value matching by position.
pub(crate) fn rows_match(expected: &[Vec<Expected>], actual: &[Vec<Option<String>>]) -> bool {
    expected.len() == actual.len()
        && expected
            .iter()
            .zip(actual)
            .all(|(want, have)| want.len() == have.len() && want.iter().zip(have).all(|(w, h)| w.matches(h.as_deref())))
}
