//! `sql`: one statement with an expected result, for what no other kind covers. It runs in a
//! transaction that is always rolled back, optionally as a given role.
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
//!
//! [[checks.sql]]
//! name = "the app role can purge a tenant"
//! query = "WITH d AS (DELETE FROM notes WHERE org_id = 7 RETURNING 1) SELECT count(*) FROM d"
//! expect = 3
//! role = "plur_app"
//! ```
//!
//! Any one statement runs: a query, a data-modifying `WITH`, `INSERT`/`UPDATE`/`DELETE`/`MERGE`
//! with or without `RETURNING` (without, it returns no rows: `expect_rows = []`), even DDL. What
//! it changes is rolled back with the check's transaction, so a later check sees the restored
//! rows (as PostgreSQL rolls back: a sequence's `nextval` stays taken). Refused, because they
//! would let a change outlive that rollback or change the session later checks use: more than
//! one statement (the server parses the query as one prepared statement, which cannot hold two),
//! transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `PREPARE TRANSACTION`...),
//! `PREPARE`, `DEALLOCATE`, `DISCARD`, `LOAD`, and `COPY` (it talks its own protocol: select the
//! rows instead). A procedure or `DO` block that commits fails: the server refuses transaction
//! control inside a transaction block.
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
use sqlx::{Executor, Row, ValueRef};

mod reads;
mod values;

use values::show_value;
pub(crate) use values::{Expected, ScalarValue, rows_match};

use super::{CheckContext, CheckError, CheckResult, Kind, ResolveContext, as_app, login, loophole};
use crate::field::FieldError;
use crate::outcome::{CheckKind, Finding as _};

crate::outcome::findings! {
    /// What `sql` finds.
    pub(crate) enum Found for Sql {
        AsExpected = Pass "sql.as-expected"
            "The query returned the rows the scenario expects (as a role: in its own session, and no setting it may set changes the answer)."
            "Nothing.",
        Differs = Fail "sql.differs"
            "The query returned other rows than the scenario expects."
            "Compare the rows in the message with the source's answer.",
        SessionSettingChanges = Fail(acceptable) "sql.session-setting-changes"
            "As the role, a setting its session may set itself changes the query's answer."
            "Make the code ignore the setting, or name it in `trusted` with why only a trusted path sets it.",
        OnlyLikeTheDrill = Fail(acceptable) "sql.only-like-the-drill"
            "The code the query reaches reads facts about the session no try can show: the answer is proven only for sessions like the drill's."
            "Remove the read from the code, or name the fact in `trusted` with why it holds for the application.",
        CouldNotRun = Error "sql.could-not-run"
            "The query could not run (the database refused it, or the role could not log in), or the code it reaches could not be judged."
            "Read the database's answer in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Sql;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SqlCheck")]
pub(crate) struct Config {
    /// The check's name in the reports.
    pub name: String,
    /// One SQL statement, run in a transaction that is always rolled back.
    pub query: String,
    /// The one value the query must return (one row, one column): a string, a number, a
    /// boolean or `{ null = true }`. Give it or `expect_rows`, not both.
    pub expect: Option<ScalarValue>,
    /// The rows the query must return, in order, each a list of its values by position
    /// (`[["team", 1, { null = true }]]`; `[]` for none).
    pub expect_rows: Option<Vec<Vec<ScalarValue>>>,
    /// The role the query runs as, in a session the role opens itself (default: pgdrill's own
    /// session, with PostgreSQL's default `search_path`).
    pub role: Option<String>,
    /// Session settings applied first (`SET LOCAL`).
    #[serde(default)]
    pub settings: super::Settings,
    /// With `role`: facts about the session that the code the statement runs through reads,
    /// which the drill cannot try, accepted with a reason (`[{ fact = "inet_client_addr",
    /// reason = "..." }]`); see `rls`'s `trusted`.
    #[serde(default)]
    pub trusted: Vec<loophole::Trusted>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub name: String,
    pub query: String,
    pub expected: Vec<Vec<Expected>>,
    /// One value expected (shown without brackets).
    pub scalar: bool,
    pub role: Option<String>,
    pub settings: super::Settings,
    pub trusted: Vec<loophole::Trusted>,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        if config.name.trim().is_empty() {
            return Err(FieldError::unplaced("a sql check needs a `name`"));
        }
        let query = config.query.trim().trim_end_matches(';').to_owned();
        refuse_statement(&query).map_err(|e| FieldError::unplaced(e.to_string()))?;
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
        if config.role.is_none() && !config.trusted.is_empty() {
            return Err(FieldError::unplaced(
                "`trusted` is for a sql check run as a `role`: pgdrill's own session reads no backup code for facts",
            ));
        }
        let (lever, fact) = (Found::SessionSettingChanges.code(), Found::OnlyLikeTheDrill.code());
        let trusted = loophole::Trusted::resolve_for(config.trusted, KIND, lever, fact)?;
        Ok(Spec { name: config.name, query, expected, scalar, role: config.role, settings: config.settings, trusted })
    }

    fn label(&self) -> String {
        self.name.clone()
    }

    fn logins(&self) -> Vec<String> {
        self.role.iter().cloned().collect()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let expected =
            self.show(&self.expected.iter().map(|r| r.iter().map(Expected::show).collect()).collect::<Vec<_>>());
        let result = CheckResult::build(KIND, self.name.clone(), started).expected(expected.clone());
        let ran = match &self.role {
            Some(role) => self.run_as(ctx, role).await,
            None => self.run_as_pgdrill(ctx).await,
        };
        let mut evidence = ran.evidence;
        let rows = match ran.outcome {
            Ok(rows) => rows,
            Err(why) => return Ok(vec![result.evidence(evidence).found(Found::CouldNotRun, why)]),
        };
        let ok = rows_match(&self.expected, &rows);
        let actual = self.show_rows(&rows);
        if !ok {
            let message = format!("`{}` returned {actual}, expected {expected}", self.name);
            return Ok(vec![result.evidence(evidence).actual(actual).found(Found::Differs, message)]);
        }
        let Some(role) = &self.role else {
            let message = format!("`{}` returned {actual}", self.name);
            return Ok(vec![result.evidence(evidence).actual(actual).found(Found::AsExpected, message)]);
        };
        let judged = match ran.judged {
            Some(Ok(judged)) => judged,
            Some(Err(e)) => {
                let why = match &e {
                    reads::JudgeError::Catalog(source) => format!("{e}: {}", crate::pg::describe_sql_error(source)),
                    reads::JudgeError::Session(_) => e.to_string(),
                };
                return Ok(vec![result.evidence(evidence).actual(actual).found(Found::CouldNotRun, why)]);
            }
            None => {
                return Ok(vec![
                    result.evidence(evidence).actual(actual).found(Found::CouldNotRun, "its code was not judged"),
                ]);
            }
        };
        evidence.push_str(&judged.evidence);
        let result = result.evidence(evidence).actual(actual.clone());
        if let Some((attempt, again)) = &judged.opened {
            let what = format!("`{}` returns {again} as `{role}`, not {actual},", self.name);
            return Ok(vec![result.found(Found::SessionSettingChanges, loophole::changed(attempt, &what))]);
        }
        if !judged.untried.is_empty() {
            let message = format!(
                "`{}` returned {actual} as `{role}`, an answer {}",
                self.name,
                loophole::only_like_the_drill(&judged.untried)
            );
            return Ok(vec![result.found(Found::OnlyLikeTheDrill, message)]);
        }
        let trusted = match judged.trusted.is_empty() {
            true => String::new(),
            false => format!(
                "; trusted: {}",
                judged.trusted.iter().map(loophole::Trusted::shown).collect::<Vec<_>>().join("; ")
            ),
        };
        Ok(vec![result.found(Found::AsExpected, format!("`{}` returned {actual}{trusted}", self.name))])
    }
}

/// What running the statement gave: its evidence, what it returned, and (as a role, when it
/// returned what was expected) how the code it runs through was judged.
struct Ran {
    evidence: String,
    outcome: Returned,
    judged: Option<Result<reads::Judged, reads::JudgeError>>,
}

/// What a query returned (each row's values as text, `None` for NULL), or why it did not run.
type Returned = Result<Vec<Vec<Option<String>>>, String>;

impl Spec {
    /// Rows as the reports show them.
    fn show_rows(&self, rows: &[Vec<Option<String>>]) -> String {
        self.show(&rows.iter().map(|r| r.iter().map(|v| show_value(v.as_deref())).collect()).collect::<Vec<_>>())
    }

    /// The query in a session `role` opened itself ([`super::login`]), in a transaction that is
    /// rolled back: the evidence, and what it returned.
    async fn run_as(&self, ctx: &CheckContext<'_>, role: &str) -> Ran {
        let session = match ctx.logins().open(role).await {
            Ok(session) => session,
            Err(err) => {
                let evidence = format!("-- a login of `{role}`\n{}", self.query);
                return Ran { evidence, outcome: Err(err.said(ctx.pool, role).await), judged: None };
            }
        };
        let mut ran = vec!["BEGIN".to_owned()];
        ran.extend(self.settings.0.iter().map(|(name, value)| login::set_local_sql(name, value)));
        ran.push(self.query.clone());
        ran.push("ROLLBACK".to_owned());
        let evidence = format!("{}{};", session.identity().evidence(), ran.join(";\n"));
        let mut judged = None;
        let outcome: Result<Vec<Vec<Option<String>>>, login::Failure> = async {
            for statement in &ran[..ran.len() - 2] {
                session.run(statement).await?;
            }
            // One statement: a prepared statement cannot hold two (a second could COMMIT what
            // the first changed, out of the rollback); then its plan, for the code it runs
            // through; then it runs as written, its values printed by each type's output
            // function, as psql prints them, from a savepoint each setting tried starts from.
            session.one_statement(&self.query).await?;
            let touched = reads::plan(&session, &self.query).await?;
            session.run("SAVEPOINT pgdrill_query").await?;
            let answer = session.run(&self.query).await?;
            if rows_match(&self.expected, &answer.rows) {
                judged = Some(reads::judge(ctx, self, role, &session, touched.as_ref(), &answer.rows).await);
            }
            session.run("ROLLBACK").await?;
            Ok(answer.rows)
        }
        .await;
        session.close().await;
        let outcome = match outcome {
            Ok(rows) => Ok(rows),
            Err(failure) => Err(match failure.sqlstate() {
                Some(("42601", _)) if failure.message().contains("cannot insert multiple commands") => {
                    SEVERAL.to_owned()
                }
                Some((code, _)) => format!(
                    "the query failed: {}",
                    crate::names::describe_answer(ctx.pool, code, failure.message(), failure.describe()).await
                ),
                None => format!("the query failed: {}", failure.describe()),
            }),
        };
        Ran { evidence, outcome, judged }
    }

    /// The query in pgdrill's own session (no `role`), with PostgreSQL's default `search_path`
    /// and none of the backup's settings, rolled back.
    async fn run_as_pgdrill(&self, ctx: &CheckContext<'_>) -> Ran {
        let mut evidence = None;
        let outcome: sqlx::Result<Vec<Vec<Option<String>>>> = async {
            let mut probe = as_app::Probe::begin(ctx.pool, &self.settings).await?;
            evidence = Some(probe.evidence(&self.query));
            (&mut *probe).prepare(&self.query).await?;
            let rows = probe.fetch_all(sqlx::raw_sql(&self.query)).await?;
            let values = rows.iter().map(text_values).collect::<sqlx::Result<Vec<_>>>()?;
            probe.rollback().await?;
            Ok(values)
        }
        .await;
        // A probe that did not begin applied no window.
        let evidence = evidence.unwrap_or_else(|| as_app::evidence(&as_app::Window::default(), &self.query));
        let outcome = match outcome {
            Ok(rows) => Ok(rows),
            Err(err) if several_statements(&err) => Err(SEVERAL.to_owned()),
            Err(err) => Err(format!("the query failed: {}", crate::names::describe_error(ctx.pool, &err).await)),
        };
        Ran { evidence, outcome, judged: None }
    }
}

/// One row's values as the server sent them by the simple protocol: text, `None` for NULL.
fn text_values(row: &sqlx::postgres::PgRow) -> sqlx::Result<Vec<Option<String>>> {
    (0..row.len())
        .map(|i| {
            let value = row.try_get_raw(i)?;
            if value.is_null() {
                return Ok(None);
            }
            value.as_str().map(|text| Some(text.to_owned())).map_err(sqlx::Error::Decode)
        })
        .collect()
}

/// What a query holding more than one statement is told.
const SEVERAL: &str = "the query holds more than one statement: a sql check runs one, in a transaction that is \
                       rolled back (a second statement could COMMIT the first one's changes)";

/// Whether the server refused to prepare the query because it holds several statements.
fn several_statements(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("42601")
        && db.message().contains("cannot insert multiple commands into a prepared statement"))
}

/// Why a sql check's query is refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Refused {
    /// Nothing but white space and comments.
    #[error("the query is empty (or only comments): it would compare nothing")]
    Empty,
    /// A statement whose effect would outlive the check's rollback, or that is not rows.
    #[error("a sql check cannot run {keyword}: {why}")]
    Statement { keyword: String, why: &'static str },
}

/// Why a statement is refused, by its first keyword: what would outlive the check's rollback or
/// change the session that later checks use. More than one statement is refused by the server.
fn refuse_statement(query: &str) -> Result<(), Refused> {
    let Some(keyword) = first_keyword(query) else {
        return Err(Refused::Empty);
    };
    let why = match keyword.as_str() {
        "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE" => {
            "transaction control: the check runs in a transaction pgdrill rolls back, and a COMMIT would keep what it changed"
        }
        "PREPARE" => {
            "PREPARE TRANSACTION would take the check's changes out of its rollback, and a prepared statement outlives it"
        }
        "DEALLOCATE" | "DISCARD" | "LOAD" => {
            "it changes the session later checks run on, and the rollback does not undo it"
        }
        "COPY" => "COPY talks its own protocol, not rows: SELECT the rows instead (or INSERT ... SELECT)",
        _ => return Ok(()),
    };
    Err(Refused::Statement { keyword, why })
}

/// The first keyword of a query, upper-cased, after white space, comments and empty statements;
/// `Some("")` when the statement starts otherwise (`(SELECT 1)`), `None` when there is none.
fn first_keyword(query: &str) -> Option<String> {
    let mut rest = query;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(line) = rest.strip_prefix("--") {
            rest = line.find('\n').map_or("", |end| &line[end + 1..]);
        } else if rest.starts_with("/*") {
            rest = after_block_comment(rest);
        } else {
            break;
        }
    }
    if rest.is_empty() {
        return None;
    }
    Some(rest.chars().take_while(|c| c.is_ascii_alphabetic() || *c == '_').collect::<String>().to_ascii_uppercase())
}

/// What follows the block comment `text` starts with (they nest, as PostgreSQL's do); nothing
/// when it is not closed.
fn after_block_comment(text: &str) -> &str {
    let mut depth = 0usize;
    let mut at = 0;
    while at < text.len() {
        if text[at..].starts_with("/*") {
            depth += 1;
            at += 2;
        } else if text[at..].starts_with("*/") {
            depth -= 1;
            at += 2;
            if depth == 0 {
                return &text[at..];
            }
        } else {
            at += text[at..].chars().next().map_or(1, char::len_utf8);
        }
    }
    ""
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
    fn transaction_control_and_session_changes_are_refused_and_any_other_statement_runs() {
        for query in [
            "COMMIT",
            "  -- a note\n/* a /* nested */ comment */ ;commit",
            "begin",
            "START TRANSACTION",
            "end",
            "ROLLBACK",
            "SAVEPOINT s",
            "PREPARE TRANSACTION 'x'",
            "PREPARE p AS SELECT 1",
            "DEALLOCATE ALL",
            "DISCARD PLANS",
            "COPY t TO STDOUT",
        ] {
            let why = refuse_statement(query).expect_err(query).to_string();
            assert!(why.starts_with("a sql check cannot run "), "{query}: {why}");
        }
        assert!(refuse_statement("COMMIT").unwrap_err().to_string().contains("a COMMIT would keep what it changed"));
        for query in [
            "SELECT 1",
            "(SELECT 1)",
            "WITH d AS (DELETE FROM t RETURNING 1) SELECT count(*) FROM d",
            "INSERT INTO t VALUES (1) RETURNING id",
            "UPDATE t SET a = 1",
            "DELETE FROM t",
            "-- COMMIT\nSELECT 1",
            "/* COMMIT */ SELECT 'COMMIT'",
            "DO $$ BEGIN COMMIT; END $$",
            "CALL p()",
            "SELECT 1; COMMIT",
        ] {
            assert_eq!(refuse_statement(query), Ok(()), "{query}");
        }
        for empty in ["", "  ", "-- nothing", "/* nothing */", ";", "/* not closed"] {
            assert_eq!(refuse_statement(empty), Err(Refused::Empty), "{empty:?}");
        }
    }
}
