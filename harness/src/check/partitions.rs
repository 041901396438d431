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
//! Range bounds are read with `pg_get_expr(relpartbound)`; MINVALUE and MAXVALUE count as
//! unbounded. The drill's month is the target server's `now()`.

use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckResult, Kind, ResolveContext};
use crate::field::FieldError;
use crate::pg::{QualifiedName, describe_sql_error, quote_literal};

pub(crate) const KIND: &str = "partitions";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub table: String,
    #[serde(default)]
    pub months_back: u32,
    #[serde(default)]
    pub months_ahead: u32,
    #[serde(default)]
    pub default_partition: bool,
}

/// A month of the window: its name, the partition covering it, the default partition, and the
/// table's partitioning strategy.
type MonthRow = (String, Option<String>, Option<String>, Option<String>);

#[derive(Debug, Clone)]
pub struct Spec {
    pub table: QualifiedName,
    pub months_back: u32,
    pub months_ahead: u32,
    pub default_partition: bool,
}

impl Kind for Spec {
    const NAME: &'static str = KIND;
    const PROVES: &'static str = "partitions are in place for the months the application writes to";
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

    async fn run(&self, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
        let started = Instant::now();
        let sql = self.sql();
        let default = if self.default_partition { ", and a default partition" } else { "" };
        let result = CheckResult::build(KIND, self.table.to_string(), started)
            .expected(format!(
                "monthly partitions from {} months back to {} ahead{default}",
                self.months_back, self.months_ahead
            ))
            .evidence(sql.clone());
        let rows: Vec<MonthRow> = match sqlx::query_as(&sql).fetch_all(ctx.pool).await {
            Ok(rows) => rows,
            Err(err) => {
                let why = describe_sql_error(&err);
                return vec![if why.contains("does not exist") {
                    result.actual("table missing").verdict(false, format!("`{}` does not exist: {why}", self.table))
                } else {
                    result.error(format!("could not read the partitions of `{}`: {why}", self.table))
                }];
            }
        };
        let strategy = rows.first().and_then(|r| r.3.clone());
        if strategy.as_deref() != Some("r") {
            return vec![
                result
                    .actual("not range-partitioned")
                    .verdict(false, format!("`{}` is not partitioned by range", self.table)),
            ];
        }
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
        vec![if problems.is_empty() {
            result
                .actual(format!(
                    "{} months covered{}",
                    rows.len(),
                    default_name.map(|d| format!("; default partition {d}")).unwrap_or_default()
                ))
                .verdict(
                    true,
                    format!("`{}` has partitions for every month from {first} to {last}{default}", self.table),
                )
        } else {
            let text = problems.join("; ");
            result.actual(text.clone()).verdict(false, format!("`{}`: {text}", self.table))
        }]
    }
}

impl Spec {
    fn sql(&self) -> String {
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
                    (SELECT string_agg(name, ', ') FROM parts WHERE bound = 'DEFAULT'), \
                    (SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = {table}::regclass) \
             FROM months ORDER BY month",
            table = quote_literal(&self.table.sql()),
            back = self.months_back,
            ahead = self.months_ahead,
        )
    }
}
