//! `point_in_time`: the restored database stands at the recovery target, proven from both sides:
//! a change made before the target is there, and one made after it is not. One side alone
//! proves little: restoring everything passes the first, restoring nothing passes the second.
//!
//! ```toml
//! [[checks.point_in_time]]
//! name = "ledger at 03:00"                                                    # optional label
//! present = "SELECT count(*) = 40 FROM public.ledger WHERE batch = 'before'"   # must be true
//! absent = "SELECT EXISTS (SELECT 1 FROM public.ledger WHERE batch = 'after')" # must be false
//! ```
//!
//! - `present` (required): a query about a change made before the target; it must return true.
//! - `absent` (required): a query about a change made after the target; it must return false.
//! - `name` (optional): the label of the two results, `point_in_time/<name>/present` and
//!   `.../absent` (default `recovery target`).
//!
//! Each query must return exactly one row of one boolean column: anything else (no row, two
//! rows, an integer, NULL) is an error, never a pass. Both run as the restore's superuser in a
//! read-only transaction that is rolled back, so a scenario's query cannot change the database
//! the other checks read.

use std::time::Instant;

use crate::field::Spanned;
use crate::outcome::CheckKind;
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use sqlx::{Column, Row, TypeInfo};

use super::{CheckContext, CheckError, CheckResult, CheckResultBuilder, Kind, ResolveContext};
use crate::field::FieldError;

crate::outcome::findings! {
    /// What `point_in_time` finds.
    pub(crate) enum Found for PointInTime {
        BeforeTargetPresent = Pass "point-in-time.before-target-present"
            "The change made before the recovery target is in the restored database."
            "Nothing.",
        AfterTargetAbsent = Pass "point-in-time.after-target-absent"
            "The change made after the recovery target is not in the restored database."
            "Nothing.",
        StoppedShort = Fail "point-in-time.stopped-short"
            "A change made before the target is missing: recovery stopped short of it."
            "Check the WAL archive is complete up to the target, and the target itself.",
        WentPast = Fail "point-in-time.went-past"
            "A change made after the target is in the restored database: recovery went past the target, or the target is wrong."
            "Check the recovery target (its time zone, `inclusive`), and the query's change.",
        NotABoolean = Error "point-in-time.not-a-boolean"
            "The query did not return one row of one boolean, so it proves neither side."
            "Write it as a condition (`SELECT EXISTS (SELECT 1 FROM ...)`).",
        QueryFailed = Error "point-in-time.query-failed"
            "The query failed on the restored database."
            "Read the database's answer in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::PointInTime;

/// The label when the scenario gives no `name`.
const DEFAULT_LABEL: &str = "recovery target";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PointInTimeCheck")]
pub(crate) struct Config {
    /// A label for the two results.
    pub name: Option<String>,
    /// A query that is true at the target: a change made before it.
    pub present: Option<Spanned<String>>,
    /// A query that is false at the target: a change made after it.
    pub absent: Option<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub label: String,
    pub present: String,
    pub absent: String,
}

/// Which side of the target a query is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// A change made before the target: must be in the restored database.
    Present,
    /// A change made after the target: must not be.
    Absent,
}

impl Side {
    fn key(self) -> &'static str {
        match self {
            Side::Present => "present",
            Side::Absent => "absent",
        }
    }

    /// The answer a recovery that stopped at the target gives.
    fn wanted(self) -> bool {
        self == Side::Present
    }

    fn expected(self) -> &'static str {
        match self {
            Side::Present => "true: a change made before the target is restored",
            Side::Absent => "false: a change made after the target is not restored",
        }
    }
}

/// What a side's query returned, as far as judging it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// One row of one boolean.
    Bool(bool),
    /// One row of one boolean, NULL.
    Null,
    NoRows,
    /// More than one row (counted no further).
    ManyRows,
    /// One row of this many columns (not one).
    Columns(usize),
    /// One row of one column of another type (its name, as the server calls it).
    NotBoolean(String),
}

impl Answer {
    fn show(&self) -> String {
        match self {
            Answer::Bool(true) => "true".into(),
            Answer::Bool(false) => "false".into(),
            Answer::Null => "NULL".into(),
            Answer::NoRows => "no rows".into(),
            Answer::ManyRows => "more than one row".into(),
            Answer::Columns(n) => format!("one row of {n} columns"),
            Answer::NotBoolean(ty) => format!("one {ty}"),
        }
    }
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        let present = query(config.present, Side::Present)?;
        let absent = query(config.absent, Side::Absent)?;
        let label = match config.name {
            Some(name) if name.trim().is_empty() => {
                return Err(FieldError::unplaced("`name` is empty").with_help("give a label, or leave `name` out"));
            }
            Some(name) => name,
            None => DEFAULT_LABEL.to_owned(),
        };
        Ok(Spec { label, present, absent })
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let mut results = Vec::with_capacity(2);
        for (side, sql) in [(Side::Present, &self.present), (Side::Absent, &self.absent)] {
            let started = Instant::now();
            let result = CheckResult::build(KIND, format!("{}/{}", self.label, side.key()), started)
                .expected(side.expected())
                .evidence(format!("{}{sql}", super::as_app::no_role_prefix()));
            results.push(match ask(ctx.pool, sql).await {
                Ok(answer) => judge(side, &answer, result),
                Err(err) => result.found(
                    Found::QueryFailed,
                    format!(
                        "the `{}` query failed: {}",
                        side.key(),
                        ctx.redactor.redact(&crate::names::describe_error(ctx.pool, &err).await)
                    ),
                ),
            });
        }
        Ok(results)
    }
}

/// A side's query as the scenario wrote it (without a trailing `;`); a missing or empty one is
/// an error saying what the drill would then fail to tell apart.
fn query(written: Option<Spanned<String>>, side: Side) -> Result<String, FieldError> {
    let why = match side {
        Side::Present => {
            "`present` names a change made before the recovery target, which must be restored (a query returning true); without it, a restore that stopped short (or restored nothing) passes"
        }
        Side::Absent => {
            "`absent` names a change made after the recovery target, which must not be restored (a query returning false); without it, a recovery through the whole archive passes"
        }
    };
    let Some(written) = written else {
        return Err(FieldError::unplaced(format!("a point_in_time check needs `{}`: {why}", side.key())));
    };
    let span = written.span();
    let sql = written.into_inner().trim().trim_end_matches(';').trim_end().to_owned();
    if sql.is_empty() {
        return Err(FieldError::new(span, format!("`{}` is empty: {why}", side.key())));
    }
    Ok(sql)
}

/// Runs `sql` in a read-only transaction, rolled back, and reads at most two rows of it.
/// The scenario's SQL runs in the window without a role (`check::as_app`).
async fn ask(pool: &sqlx::PgPool, sql: &str) -> sqlx::Result<Answer> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
    super::as_app::open(&mut tx, &super::Settings::default()).await?;
    let rows: Vec<sqlx::postgres::PgRow> = sqlx::query(sql).fetch(&mut *tx).take(2).try_collect().await?;
    let answer = read(&rows)?;
    tx.rollback().await?;
    Ok(answer)
}

/// The answer in the first two rows of a query.
fn read(rows: &[sqlx::postgres::PgRow]) -> sqlx::Result<Answer> {
    let row = match rows {
        [] => return Ok(Answer::NoRows),
        [row] => row,
        _ => return Ok(Answer::ManyRows),
    };
    let columns = row.columns();
    if columns.len() != 1 {
        return Ok(Answer::Columns(columns.len()));
    }
    let ty = columns[0].type_info();
    if ty.name() != "BOOL" {
        return Ok(Answer::NotBoolean(ty.name().to_lowercase()));
    }
    Ok(row.try_get::<Option<bool>, _>(0)?.map_or(Answer::Null, Answer::Bool))
}

/// From a side and its query's answer to the verdict.
pub(crate) fn judge(side: Side, answer: &Answer, result: CheckResultBuilder) -> CheckResult {
    let result = result.actual(answer.show());
    let Answer::Bool(value) = answer else {
        let what = match answer {
            Answer::Null => "NULL, neither true nor false".to_owned(),
            other => other.show(),
        };
        return result.found(
            Found::NotABoolean,
            format!(
                "the `{}` query must return one row of one boolean, and it returned {what} (hint: write it as a \
             condition, such as `SELECT count(*) = 40 FROM ...` or `SELECT EXISTS (SELECT 1 FROM ...)`)",
                side.key()
            ),
        );
    };
    match (side, *value == side.wanted()) {
        (Side::Present, true) => result.found(Found::BeforeTargetPresent, "the change made before the target is in the restored database"),
        (Side::Present, false) => {
            result.found(Found::StoppedShort, "a change made before the target is missing: recovery stopped short of it")
        }
        (Side::Absent, true) => result.found(Found::AfterTargetAbsent, "the change made after the target is not in the restored database"),
        (Side::Absent, false) => result.found(
            Found::WentPast,
            "a change made after the target is in the restored database: recovery went past the target (or the target is wrong)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::present_restored(
        Side::Present,
        Answer::Bool(true),
        "point-in-time.before-target-present",
        "is in the restored database"
    )]
    #[case::present_missing(
        Side::Present,
        Answer::Bool(false),
        "point-in-time.stopped-short",
        "recovery stopped short of it"
    )]
    #[case::absent_not_restored(
        Side::Absent,
        Answer::Bool(false),
        "point-in-time.after-target-absent",
        "is not in the restored database"
    )]
    #[case::absent_restored(
        Side::Absent,
        Answer::Bool(true),
        "point-in-time.went-past",
        "recovery went past the target"
    )]
    #[case::null(
        Side::Present,
        Answer::Null,
        "point-in-time.not-a-boolean",
        "it returned NULL, neither true nor false"
    )]
    #[case::null_absent(Side::Absent, Answer::Null, "point-in-time.not-a-boolean", "returned NULL")]
    #[case::no_rows(Side::Absent, Answer::NoRows, "point-in-time.not-a-boolean", "it returned no rows")]
    #[case::two_rows(Side::Absent, Answer::ManyRows, "point-in-time.not-a-boolean", "it returned more than one row")]
    #[case::two_columns(
        Side::Present,
        Answer::Columns(2),
        "point-in-time.not-a-boolean",
        "it returned one row of 2 columns"
    )]
    #[case::integer(Side::Present, Answer::NotBoolean("int8".into()), "point-in-time.not-a-boolean", "it returned one int8")]
    fn each_answer_has_its_verdict(#[case] side: Side, #[case] answer: Answer, #[case] code: &str, #[case] says: &str) {
        let result = judge(side, &answer, CheckResult::build(KIND, "t", Instant::now()));
        assert_eq!(result.code, code, "{result:?}");
        assert!(result.message.contains(says), "`{says}` not in {}", result.message);
        assert_eq!(result.actual, answer.show());
    }

    fn resolve(present: Option<&str>, absent: Option<&str>) -> Result<Spec, FieldError> {
        let spanned = |s: &str| Spanned::new(0..s.len(), s.to_owned());
        let config = Config { name: None, present: present.map(spanned), absent: absent.map(spanned) };
        Spec::resolve(config, &ResolveContext { base: ".".into(), baseline: None })
    }

    #[test]
    fn both_sides_are_required() {
        let spec = resolve(Some("SELECT true;"), Some(" SELECT false ")).unwrap();
        assert_eq!(
            (spec.label.as_str(), spec.present.as_str(), spec.absent.as_str()),
            ("recovery target", "SELECT true", "SELECT false")
        );
        let e = resolve(None, Some("SELECT false")).unwrap_err();
        assert!(e.message.starts_with("a point_in_time check needs `present`"), "{e:?}");
        assert!(e.message.contains("restored nothing"), "{e:?}");
        let e = resolve(Some("SELECT true"), None).unwrap_err();
        assert!(e.message.contains("needs `absent`") && e.message.contains("whole archive"), "{e:?}");
        let e = resolve(Some("SELECT true"), Some(" ; ")).unwrap_err();
        assert_eq!(e.span, Some(0..3), "an empty query points at itself");
        assert!(e.message.starts_with("`absent` is empty"), "{e:?}");
    }

    #[test]
    fn a_missing_side_is_a_scenario_error_at_its_entry() {
        let text = "[source]\npath = \"b\"\n\n[[checks.point_in_time]]\npresent = \"SELECT true\"\n";
        let Err(crate::scenario::ScenarioError::Invalid(e)) =
            crate::scenario::Scenario::parse(text.as_bytes(), std::path::Path::new("pitr.toml"))
        else {
            panic!("a scenario error")
        };
        assert_eq!((e.line, e.column), (4, 1), "{e}");
        assert!(e.to_string().contains("pitr.toml:4:1") && e.message.contains("needs `absent`"), "{e}");
    }
}
