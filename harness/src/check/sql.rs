//! `sql`: an arbitrary query with an expected result, for what no other kind covers. It runs
//! in a transaction that is rolled back, optionally as a given role.
//!
//! ```toml
//! [[checks.sql]]
//! name = "one active admin"
//! query = "SELECT count(*) FROM users WHERE role = 'admin' AND active"
//! expect = "1"                                   # a single value, as text
//!
//! [[checks.sql]]
//! name = "orgs by plan"
//! query = "SELECT plan, count(*) FROM orgs GROUP BY 1 ORDER BY 1"
//! expect_rows = [["enterprise", "2"], ["team", "1"]]
//! role = "reporting"                             # run as this role
//! settings = { "app.tenant_id" = "42" }           # session settings the query needs (SET LOCAL)
//! ```

use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckResult, Kind, ResolveContext};
use crate::field::FieldError;
use crate::pg::{describe_sql_error, quote_ident};

pub(crate) const KIND: &str = "sql";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// A value as the scenario writes it; compared with the query's text output.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ScalarValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl ScalarValue {
    fn text(&self) -> String {
        match self {
            ScalarValue::Text(t) => t.clone(),
            ScalarValue::Integer(i) => i.to_string(),
            ScalarValue::Float(f) => f.to_string(),
            ScalarValue::Bool(b) => if *b { "true" } else { "false" }.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub query: String,
    pub expected: Vec<Vec<String>>,
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
            (Some(v), None) => (vec![vec![v.text()]], true),
            (None, Some(rows)) => (rows.iter().map(|r| r.iter().map(ScalarValue::text).collect()).collect(), false),
            _ => return Err(FieldError::unplaced("a sql check needs exactly one of `expect` and `expect_rows`")),
        };
        Ok(Spec { name: config.name, query, expected, scalar, role: config.role, settings: config.settings })
    }

    fn label(&self) -> String {
        self.name.clone()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
        let started = Instant::now();
        let wrapped = format!(
            "SELECT (SELECT array_agg(coalesce(value, 'NULL') ORDER BY ordinality) FROM json_each_text(row_to_json(q)) WITH ORDINALITY) FROM ({}) AS q",
            self.query
        );
        let evidence = match &self.role {
            Some(role) => format!("{}SET LOCAL ROLE {}; {}", self.settings.evidence(), quote_ident(role), self.query),
            None => format!("{}{}", self.settings.evidence(), self.query),
        };
        let result =
            CheckResult::build(KIND, self.name.clone(), started).expected(self.show(&self.expected)).evidence(evidence);
        let outcome: sqlx::Result<Vec<Option<Vec<String>>>> = async {
            let mut tx = ctx.pool.begin().await?;
            self.settings.apply(&mut tx).await?;
            if let Some(role) = &self.role {
                sqlx::query(&format!("SET LOCAL ROLE {}", quote_ident(role))).execute(&mut *tx).await?;
            }
            let rows = sqlx::query_scalar(&wrapped).fetch_all(&mut *tx).await?;
            tx.rollback().await?;
            Ok(rows)
        }
        .await;
        let rows: Vec<Vec<String>> = match outcome {
            Ok(rows) => rows.into_iter().map(Option::unwrap_or_default).collect(),
            Err(err) => return vec![result.error(format!("the query failed: {}", describe_sql_error(&err)))],
        };
        let ok = rows == self.expected;
        let actual = self.show(&rows);
        let message = if ok {
            format!("`{}` returned {actual}", self.name)
        } else {
            format!("`{}` returned {actual}, expected {}", self.name, self.show(&self.expected))
        };
        vec![result.actual(actual).verdict(ok, message)]
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
