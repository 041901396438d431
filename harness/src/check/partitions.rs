//! `partitions`: a table partitioned by month has partitions covering the window from
//! `months_back` months before the drill's month to `months_ahead` after it, and a default
//! partition where one is required; so writes of today and of the coming months have a home.
//!
//! ```toml
//! [[checks.partitions]]
//! table = "public.audit_events"
//! months_back = 1
//! months_ahead = 2
//! default_partition = true
//! ```
//!
//! The table must be partitioned by range on one `date`, `timestamp` or `timestamptz` column
//! (or a domain over one); any other key (a list or hash, an integer, an expression, several
//! columns) fails saying what it found. A table that does not exist fails with the name that
//! was probably meant. Range bounds are read with `pg_get_expr(relpartbound)`; MINVALUE and
//! MAXVALUE count as unbounded. The drill's month is the target server's `now()`.

use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext};
use crate::field::FieldError;
use crate::names::{Object, with_hint};
use crate::outcome::CheckKind;
use crate::pg::{QualifiedName, describe_sql_error, quote_literal};

crate::outcome::findings! {
    /// What `partitions` finds.
    pub(crate) enum Found for Partitions {
        Covered = Pass "partitions.covered"
            "Partitions cover every month of the window, with a default partition where asked."
            "Nothing.",
        Gap = Fail "partitions.gap"
            "A month of the window has no partition (or the default partition is missing): the application's writes there fail."
            "Create the missing partitions in the source (or the job that makes them), and check it runs.",
        NotByMonth = Fail "partitions.not-by-month"
            "The table is not partitioned by a range of one date or time column, so months cannot be read from it."
            "Check the table the scenario names is the partitioned parent.",
        TableMissing = Fail "partitions.table-missing"
            "The table does not exist in the restored database."
            "Check the name and its schema, or why the restore did not create it.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Partitions;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PartitionsCheck")]
pub(crate) struct Config {
    /// The table partitioned by month (`schema.table`): by range on one `date`, `timestamp` or
    /// `timestamptz` column.
    pub table: String,
    /// Months before the drill's month that must have a partition (at most 600).
    #[serde(default)]
    pub months_back: u32,
    /// Months after the drill's month that must have a partition (at most 600).
    #[serde(default)]
    pub months_ahead: u32,
    /// Require a default partition too.
    #[serde(default)]
    pub default_partition: bool,
}

/// A month of the window: its name, the partition covering it, and the default partition.
type MonthRow = (String, Option<String>, Option<String>);

/// The table's partition key: strategy (`r`, `l`, `h`; `None` when not partitioned), its
/// definition (`RANGE (created_at)`), the number of key columns, and the type of the only key
/// column (`None` for an expression or several columns).
type KeyRow = (Option<String>, Option<String>, Option<i32>, Option<String>);

/// The key column types the check reads bounds of.
const SUPPORTED: [&str; 3] = ["date", "timestamp without time zone", "timestamp with time zone"];

/// What keeps the check from reading monthly partitions off a table with this key, as (actual,
/// message), or `None` when it is a range on one date, timestamp or timestamptz column.
pub(crate) fn key_problem(
    strategy: Option<&str>,
    definition: Option<&str>,
    columns: Option<i32>,
    column_type: Option<&str>,
) -> Option<(String, String)> {
    const SUPPORTS: &str = "the check supports a range key of one date, timestamp or timestamptz column";
    let definition = definition.unwrap_or("?");
    match (strategy, columns, column_type) {
        (None, _, _) => Some(("not partitioned".into(), format!("is not a partitioned table: {SUPPORTS}"))),
        (Some("r"), Some(1), Some(t)) if SUPPORTED.contains(&t) => None,
        (Some("r"), Some(1), Some(t)) => Some((
            format!("partitioned by {definition}, on a column of type {t}"),
            format!("is partitioned by {definition}, on a column of type {t}: {SUPPORTS}"),
        )),
        (Some("r"), Some(1), None) => Some((
            format!("partitioned by {definition}, an expression"),
            format!("is partitioned by {definition}, an expression: {SUPPORTS}"),
        )),
        (Some("r"), _, _) => Some((
            format!("partitioned by {definition}, several columns"),
            format!("is partitioned by {definition}, several columns: {SUPPORTS}"),
        )),
        (Some(_), _, _) => Some((
            format!("partitioned by {definition}"),
            format!("is partitioned by {definition}, not by range: {SUPPORTS}"),
        )),
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub table: QualifiedName,
    pub months_back: u32,
    pub months_ahead: u32,
    pub default_partition: bool,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        if config.months_back > 600 || config.months_ahead > 600 {
            return Err(FieldError::unplaced("the partition window is limited to 600 months either way"));
        }
        Ok(Spec {
            table: QualifiedName::parse(&config.table).map_err(FieldError::unplaced)?,
            months_back: config.months_back,
            months_ahead: config.months_ahead,
            default_partition: config.default_partition,
        })
    }

    fn label(&self) -> String {
        self.table.to_string()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let sql = self.sql();
        let default = if self.default_partition { ", and a default partition" } else { "" };
        let expected =
            format!("monthly partitions from {} months back to {} ahead{default}", self.months_back, self.months_ahead);
        let result =
            CheckResult::build(KIND, self.table.to_string(), started).expected(expected.clone()).evidence(sql.clone());
        let key_sql = self.key_sql();
        let key: KeyRow = match sqlx::query_as(&key_sql).fetch_one(ctx.pool).await {
            Ok(key) => key,
            Err(err) => {
                if !is_missing(&err) {
                    let why = describe_sql_error(&err);
                    return Err(CheckError::new(format!(
                        "could not read the partition key of `{}`: {why}",
                        self.table
                    ))
                    .expected(expected)
                    .evidence(key_sql));
                }
                let message =
                    with_hint(ctx.pool, Object::Table, &self.table, format!("`{}` does not exist", self.table)).await;
                return Ok(vec![result.evidence(key_sql).actual("table missing").found(Found::TableMissing, message)]);
            }
        };
        if let Some((actual, message)) = key_problem(key.0.as_deref(), key.1.as_deref(), key.2, key.3.as_deref()) {
            return Ok(vec![
                result.evidence(key_sql).actual(actual).found(Found::NotByMonth, format!("`{}` {message}", self.table)),
            ]);
        }
        let rows: Vec<MonthRow> = sqlx::query_as(&sql)
            .fetch_all(ctx.pool)
            .await
            .or_check(&format!("could not read the partitions of `{}`", self.table))
            .map_err(|e| e.expected(expected).evidence(sql.clone()))?;
        let (first, last) = (
            rows.first().map(|r| r.0.clone()).unwrap_or_default(),
            rows.last().map(|r| r.0.clone()).unwrap_or_default(),
        );
        let missing: Vec<String> = rows.iter().filter(|r| r.1.is_none()).map(|r| r.0.clone()).collect();
        let default_name = rows.first().and_then(|r| r.2.clone());
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("no partition for {}", missing.join(", ")));
        }
        if self.default_partition && default_name.is_none() {
            problems.push("no default partition".to_owned());
        }
        let result = result.expected(format!("partitions for every month {first} to {last}{default}"));
        match self.droppers(ctx).await {
            Ok(droppers) => problems.extend(droppers),
            Err(err) => {
                problems.push(format!("cannot read its partitions' INSERT triggers: {}", describe_sql_error(&err)))
            }
        }
        Ok(vec![if problems.is_empty() {
            result
                .actual(format!(
                    "{} months covered{}",
                    rows.len(),
                    default_name.map(|d| format!("; default partition {d}")).unwrap_or_default()
                ))
                .found(
                    Found::Covered,
                    format!("`{}` has partitions for every month from {first} to {last}{default}", self.table),
                )
        } else {
            let text = problems.join("; ");
            result.actual(text.clone()).found(Found::Gap, format!("`{}`: {text}", self.table))
        }])
    }
}

/// Whether `err` says the table (or its schema) does not exist: SQLSTATE 42P01
/// (undefined_table) or 3F000 (invalid_schema_name).
fn is_missing(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("42P01" | "3F000")))
}

/// `BEFORE INSERT` row triggers of a partitioned table and of every partition under it, with
/// their functions' code: one that returns NULL drops the row it was given.
const BEFORE_INSERT_SQL: &str = "SELECT t.tgname::pg_catalog.text, t.tgrelid::pg_catalog.regclass::pg_catalog.text,        t.tgfoid::pg_catalog.regprocedure::pg_catalog.text, pg_catalog.pg_get_functiondef(t.tgfoid)   FROM pg_catalog.pg_partition_tree($1::pg_catalog.regclass) tree   JOIN pg_catalog.pg_trigger t ON t.tgrelid OPERATOR(pg_catalog.=) tree.relid  WHERE NOT t.tgisinternal AND t.tgenabled OPERATOR(pg_catalog.<>) 'D'    AND (t.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 7) OPERATOR(pg_catalog.=) 7 ORDER BY 2, 1";

/// Whether a trigger function's code drops rows: it returns NULL and writes the row nowhere
/// else (a routing trigger of inheritance partitioning inserts it into a child first).
fn drops_rows(definition: &str) -> bool {
    let lower = definition.to_lowercase();
    let returns_null = lower
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0] == "return" && w[1].trim_end_matches(';') == "null");
    returns_null && !lower.contains("insert into") && !lower.contains("execute")
}

impl Spec {
    /// The partitions whose `BEFORE INSERT` triggers drop the rows written there: the month has
    /// a partition, and the application's rows for it go nowhere.
    async fn droppers(&self, ctx: &CheckContext<'_>) -> sqlx::Result<Vec<String>> {
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as(BEFORE_INSERT_SQL).bind(self.table.sql()).fetch_all(ctx.pool).await?;
        Ok(rows
            .into_iter()
            .filter(|(_, _, _, definition)| drops_rows(definition))
            .map(|(trigger, table, function, _)| {
                format!("trigger `{trigger}` on `{table}` drops every row written there (`{function}` returns NULL)")
            })
            .collect())
    }

    /// The table's partition key (one row while the table exists).
    pub(crate) fn key_sql(&self) -> String {
        format!(
            "SELECT p.partstrat::text, pg_get_partkeydef(r.oid), p.partnatts::int, \
               (SELECT format_type(coalesce(nullif(t.typbasetype, 0), t.oid), NULL) FROM pg_attribute a \
                JOIN pg_type t ON t.oid = a.atttypid \
                WHERE a.attrelid = r.oid AND p.partnatts = 1 AND a.attnum = p.partattrs[0]) \
             FROM (SELECT {table}::regclass::oid AS oid) r LEFT JOIN pg_partitioned_table p ON p.partrelid = r.oid",
            table = quote_literal(&self.table.sql()),
        )
    }

    pub(crate) fn sql(&self) -> String {
        format!(
            "WITH parts AS ( \
               SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound \
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = {table}::regclass), \
             ranges AS ( \
               SELECT name, regexp_match(bound, '^FOR VALUES FROM \\((.*)\\) TO \\((.*)\\)$') AS m FROM parts), \
             bounds AS ( \
               SELECT name, \
                 CASE WHEN m[1] = 'MINVALUE' THEN '-infinity'::timestamptz ELSE trim(both '''' from m[1])::timestamptz END AS lo, \
                 CASE WHEN m[2] = 'MAXVALUE' THEN 'infinity'::timestamptz ELSE trim(both '''' from m[2])::timestamptz END AS hi \
               FROM ranges WHERE m IS NOT NULL), \
             months AS ( \
               SELECT generate_series(date_trunc('month', now()) - make_interval(months => {back}), \
                                      date_trunc('month', now()) + make_interval(months => {ahead}), interval '1 month') AS month) \
             SELECT to_char(month, 'YYYY-MM'), (SELECT name FROM bounds b WHERE b.lo <= month AND month + interval '1 month' <= b.hi LIMIT 1), \
                    (SELECT string_agg(name, ', ') FROM parts WHERE bound = 'DEFAULT') \
             FROM months ORDER BY month",
            table = quote_literal(&self.table.sql()),
            back = self.months_back,
            ahead = self.months_ahead,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_that_returns_null_without_routing_the_row_drops_it() {
        assert!(drops_rows("BEGIN\n  RETURN NULL;\nEND"));
        assert!(!drops_rows("BEGIN\n  RETURN NEW;\nEND"));
        assert!(!drops_rows("BEGIN INSERT INTO public.events_2026_01 VALUES (NEW.*); RETURN NULL; END"));
    }

    #[test]
    fn a_range_on_one_date_or_timestamp_column_is_read() {
        for t in SUPPORTED {
            assert_eq!(key_problem(Some("r"), Some("RANGE (created_at)"), Some(1), Some(t)), None);
        }
    }

    #[test]
    fn any_other_key_fails_saying_what_it_is() {
        let problem = |s, d, n, t| key_problem(Some(s), Some(d), Some(n), t).expect("a problem").1;
        assert_eq!(
            problem("r", "RANGE (id)", 1, Some("integer")),
            "is partitioned by RANGE (id), on a column of type integer: the check supports a range key of one date, timestamp or timestamptz column"
        );
        assert!(problem("r", "RANGE (created_on, id)", 2, None).contains("RANGE (created_on, id), several columns"));
        assert!(problem("r", "RANGE (date(created_at))", 1, None).contains("an expression"));
        assert!(problem("l", "LIST (region)", 1, Some("text")).contains("LIST (region), not by range"));
        assert_eq!(key_problem(None, None, None, None).unwrap().0, "not partitioned");
    }
}
