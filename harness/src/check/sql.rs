//! `sql`: an arbitrary query with an expected result, for what no other kind covers. It runs
//! in a transaction that is rolled back, optionally as a given role.
//!
//! ```toml
//! [[checks.sql]]
//! name = "one active admin"
//! query = "SELECT count(*) FROM users WHERE role = 'admin' AND active"
//! expect = 1                                     # a single value
//!
//! [[checks.sql]]
//! name = "orgs by plan"
//! query = "SELECT plan, count(*), bool_and(active), min(closed_at) FROM orgs GROUP BY 1 ORDER BY 1"
//! expect_rows = [["enterprise", 2, true, { null = true }], ["team", 1, false, "2026-01-31"]]
//! role = "reporting"                             # run as this role
//! settings = { "app.tenant_id" = "42" }           # session settings the query needs (SET LOCAL)
//! ```
//!
//! Every value is read as psql shows it: the column's type output function (not a cast to
//! text, which writes `true` for a boolean), so a boolean is `t` or `f`, a numeric keeps its
//! scale (`1.50`), a timestamp reads `2026-01-31 00:00:00+00`. Columns are compared by
//! position, rows in the query's order. What the scenario writes is compared so:
//! - a string: the same text exactly;
//! - an integer or a float: the same number (`1.5` matches a numeric `1.50`, `2` matches `2.0`
//!   and a float8 `2`), for values that print as numbers;
//! - `true`/`false`: a boolean's `t`/`f`;
//! - `{ null = true }`: SQL NULL (TOML has no null). NULL matches nothing else: not `"NULL"`,
//!   not `""`. Reports show a NULL as `NULL` and the text `NULL` as `'NULL'`.

use std::time::Instant;

use serde::Deserialize;
use sqlx::{Executor, Row, Statement};

use super::{CheckContext, CheckResult, Kind, ResolveContext};
use crate::field::FieldError;
use crate::pg::quote_ident;

pub(crate) const KIND: &str = "sql";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SqlCheck")]
pub(crate) struct Config {
    pub name: String,
    pub query: String,
    pub expect: Option<ScalarValue>,
    pub expect_rows: Option<Vec<Vec<ScalarValue>>>,
    pub role: Option<String>,
    /// Session settings applied first (`SET LOCAL`).
    #[serde(default)]
    pub settings: super::Settings,
}

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
    null: bool,
}

/// An expected value, resolved: how it matches a value as the server prints it.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
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
    fn resolve(value: ScalarValue) -> Result<Self, FieldError> {
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
    pub fn matches(&self, actual: Option<&str>) -> bool {
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

    fn show(&self) -> String {
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
fn show_value(value: Option<&str>) -> String {
    value.map_or_else(|| "NULL".into(), show_text)
}

fn show_text(text: &str) -> String {
    if text.eq_ignore_ascii_case("null") { format!("'{text}'") } else { text.to_owned() }
}

/// Whether two decimal numbers as text (`1.50`, `-2`, `1e+20`) are the same number; false when
/// either is not a number.
pub(crate) fn same_number(a: &str, b: &str) -> bool {
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

#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub query: String,
    pub expected: Vec<Vec<Expected>>,
    /// One value expected (shown without brackets).
    pub scalar: bool,
    pub role: Option<String>,
    pub settings: super::Settings,
}

impl Kind for Spec {
    const NAME: &'static str = KIND;
    const PROVES: &'static str = "scenario-specific facts hold";
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        if config.name.trim().is_empty() {
            return Err(FieldError::unplaced("a sql check needs a `name`"));
        }
        let query = config.query.trim().trim_end_matches(';').to_owned();
        let (expected, scalar) = match (config.expect, config.expect_rows) {
            (Some(v), None) => (vec![vec![Expected::resolve(v)?]], true),
            (None, Some(rows)) => (
                rows.into_iter()
                    .map(|r| r.into_iter().map(Expected::resolve).collect::<Result<Vec<_>, _>>())
                    .collect::<Result<Vec<_>, _>>()?,
                false,
            ),
            _ => return Err(FieldError::unplaced("a sql check needs exactly one of `expect` and `expect_rows`")),
        };
        Ok(Spec { name: config.name, query, expected, scalar, role: config.role, settings: config.settings })
    }

    fn label(&self) -> String {
        self.name.clone()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
        let started = Instant::now();
        let evidence = match &self.role {
            Some(role) => format!("{}SET LOCAL ROLE {}; {}", self.settings.evidence(), quote_ident(role), self.query),
            None => format!("{}{}", self.settings.evidence(), self.query),
        };
        let expected =
            self.show(&self.expected.iter().map(|r| r.iter().map(Expected::show).collect()).collect::<Vec<_>>());
        let result = CheckResult::build(KIND, self.name.clone(), started).expected(expected.clone()).evidence(evidence);
        let outcome: sqlx::Result<Vec<Vec<Option<String>>>> = async {
            let mut tx = ctx.pool.begin().await?;
            self.settings.apply(&mut tx).await?;
            if let Some(role) = &self.role {
                sqlx::query(&format!("SET LOCAL ROLE {}", quote_ident(role))).execute(&mut *tx).await?;
            }
            // Each column as its type's output function prints it, by position: the statement's
            // description says how many columns there are.
            let columns = (&mut *tx).prepare(&self.query).await?.columns().len();
            let wrapped = wrap_as_text(&self.query, columns);
            let rows = sqlx::query(&wrapped).fetch_all(&mut *tx).await?;
            let values = rows
                .iter()
                .map(|row| (0..columns).map(|i| row.try_get::<Option<String>, _>(i)).collect::<sqlx::Result<Vec<_>>>())
                .collect::<sqlx::Result<Vec<_>>>()?;
            tx.rollback().await?;
            Ok(values)
        }
        .await;
        let rows = match outcome {
            Ok(rows) => rows,
            Err(err) => {
                return vec![
                    result.error(format!("the query failed: {}", crate::names::describe_error(ctx.pool, &err).await)),
                ];
            }
        };
        let ok = rows_match(&self.expected, &rows);
        let actual =
            self.show(&rows.iter().map(|r| r.iter().map(|v| show_value(v.as_deref())).collect()).collect::<Vec<_>>());
        let message = if ok {
            format!("`{}` returned {actual}", self.name)
        } else {
            format!("`{}` returned {actual}, expected {expected}", self.name)
        };
        vec![result.actual(actual).verdict(ok, message)]
    }
}

/// `query` with each of its `columns` printed by its type's output function, as psql prints it,
/// by position (names may repeat or be missing). `format('%s', v)` calls the output function;
/// a cast `v::text` does not for every type (`true::text` is `true`, where psql shows `t`).
/// `num_nulls` tells a NULL from a row whose fields are all NULL (`IS NULL` does not).
fn wrap_as_text(query: &str, columns: usize) -> String {
    let names: Vec<String> = (1..=columns).map(|i| format!("c{i}")).collect();
    let list = names
        .iter()
        .map(|n| format!("CASE WHEN num_nulls(q.{n}) = 0 THEN format('%s', q.{n}) END"))
        .collect::<Vec<_>>()
        .join(", ");
    if columns == 0 {
        format!("SELECT FROM ({query}\n) AS q")
    } else {
        format!("SELECT {list} FROM ({query}\n) AS q({})", names.join(", "))
    }
}

impl Spec {
    fn show(&self, rows: &[Vec<String>]) -> String {
        if self.scalar && rows.len() == 1 && rows[0].len() == 1 {
            return rows[0][0].clone();
        }
        if rows.is_empty() {
            return "no rows".into();
        }
        rows.iter().map(|r| format!("({})", r.join(", "))).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_numerically() {
        assert!(Expected::Float(1.5).matches(Some("1.50")));
        assert!(Expected::Float(1.5).matches(Some("1.5")));
        assert!(Expected::Float(0.1).matches(Some("0.10")));
        assert!(Expected::Float(1e20).matches(Some("1e+20")));
        assert!(Expected::Float(-2.0).matches(Some("-2")));
        assert!(!Expected::Float(1.5).matches(Some("1.51")));
        assert!(!Expected::Float(1.5).matches(Some("1.5000000000000000001")));
        assert!(Expected::Integer(2).matches(Some("2.00")));
        assert!(Expected::Integer(0).matches(Some("-0.0")));
        assert!(!Expected::Integer(2).matches(Some("20")));
        assert!(!Expected::Integer(2).matches(Some("two")));
        assert!(Expected::Float(f64::INFINITY).matches(Some("Infinity")));
    }

    #[test]
    fn text_and_booleans_as_psql_prints_them() {
        assert!(Expected::Bool(true).matches(Some("t")));
        assert!(!Expected::Bool(true).matches(Some("true")));
        assert!(Expected::Bool(false).matches(Some("f")));
        assert!(Expected::Text("1.50".into()).matches(Some("1.50")));
        assert!(!Expected::Text("1.5".into()).matches(Some("1.50")));
    }

    #[test]
    fn null_matches_only_null() {
        assert!(Expected::Null.matches(None));
        for written in [Expected::Text("NULL".into()), Expected::Text(String::new()), Expected::Integer(0)] {
            assert!(!written.matches(None), "{written:?}");
        }
        assert!(!Expected::Null.matches(Some("NULL")));
        assert!(!Expected::Null.matches(Some("")));
        assert_eq!(show_value(None), "NULL");
        assert_eq!(show_value(Some("NULL")), "'NULL'");
    }

    #[test]
    fn rows_compare_by_position_and_shape() {
        let want = vec![vec![Expected::Text("a".into()), Expected::Integer(1)]];
        assert!(rows_match(&want, &[vec![Some("a".into()), Some("1".into())]]));
        assert!(!rows_match(&want, &[vec![Some("1".into()), Some("a".into())]]));
        assert!(!rows_match(&want, &[vec![Some("a".into())]]));
        assert!(!rows_match(&want, &[]));
        assert!(rows_match(&[], &[]));
    }

    #[test]
    fn the_query_is_wrapped_by_position() {
        assert_eq!(
            wrap_as_text("SELECT 1, 1", 2),
            "SELECT CASE WHEN num_nulls(q.c1) = 0 THEN format('%s', q.c1) END, \
             CASE WHEN num_nulls(q.c2) = 0 THEN format('%s', q.c2) END FROM (SELECT 1, 1\n) AS q(c1, c2)"
        );
    }
}
