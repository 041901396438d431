//! `append_only`: an audit table is append-only for the role that writes it: as that role
//! INSERT works, and UPDATE, DELETE and TRUNCATE are refused, by privilege or by trigger. All
//! of it runs in one transaction that is rolled back, so the restored data never changes.
//!
//! ```toml
//! [[checks.append_only]]
//! table = "public.audit_events"
//! role = "caracal_audit_writer"
//! insert = "INSERT INTO public.audit_events (actor, action, created_at) VALUES ('drill', 'probe', now())"
//! triggers = ["audit_events_immutable"]   # immutability triggers that must be present and enabled
//! settings = { "caracal.zone_id" = "..." } # session settings the writer sets (SET LOCAL), e.g.
//!                                          # the tenant a row-level security WITH CHECK reads
//! ```
//!
//! An operation the role has no privilege for is tried as the role and must fail with
//! `permission denied`. One it has the privilege for is tried on a single row, as the role if
//! it may read the table (otherwise as the restore's superuser), and must be refused by a
//! trigger.

use std::time::Instant;

use serde::Deserialize;
use sqlx::{Postgres, Transaction};

use super::{CheckContext, CheckResult, Kind, ResolveContext, bind_evidence};
use crate::field::FieldError;
use crate::pg::{QualifiedName, describe_sql_error, quote_ident, quote_literal};

pub(crate) const KIND: &str = "append_only";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub table: String,
    pub role: String,
    /// An INSERT the role must be able to run.
    pub insert: String,
    #[serde(default)]
    pub triggers: Vec<String>,
    /// Session settings applied first (`SET LOCAL`).
    #[serde(default)]
    pub settings: super::Settings,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub table: QualifiedName,
    pub role: String,
    pub insert: String,
    pub triggers: Vec<String>,
    pub settings: super::Settings,
}

impl Kind for Spec {
    const NAME: &'static str = KIND;
    const PROVES: &'static str = "audit trails can be appended to, and not changed or erased";
    const GATE: bool = true;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        let table = QualifiedName::parse(&config.table).map_err(FieldError::unplaced)?;
        if !config.insert.trim_start().to_ascii_lowercase().starts_with("insert") {
            return Err(FieldError::unplaced("`insert` must be an INSERT statement"));
        }
        Ok(Spec {
            table,
            role: config.role,
            insert: config.insert,
            triggers: config.triggers,
            settings: config.settings,
        })
    }

    fn label(&self) -> String {
        format!("{} as {}", self.table, self.role)
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
        let started = Instant::now();
        let mut results = match self.probe(ctx, started).await {
            Ok(results) => results,
            Err(err) => vec![CheckResult::build(KIND, self.object("append-only"), started).error(format!(
                "could not probe `{}`: {}",
                self.table,
                describe_sql_error(&err)
            ))],
        };
        if !self.triggers.is_empty() {
            results.push(self.trigger_check(ctx).await);
        }
        results
    }
}

impl Spec {
    fn object(&self, what: &str) -> String {
        format!("{} {what} as {}", self.table, self.role)
    }

    async fn probe(&self, ctx: &CheckContext<'_>, started: Instant) -> sqlx::Result<Vec<CheckResult>> {
        let role = quote_ident(&self.role);
        let t = self.table.sql();
        let mut tx = ctx.pool.begin().await?;
        // Before any savepoint: rolling back to one would undo them.
        self.settings.apply(&mut tx).await?;
        let settings = self.settings.evidence();
        let mut results = Vec::new();

        // INSERT, as the role.
        sqlx::query("SAVEPOINT probe").execute(&mut *tx).await?;
        sqlx::query(&format!("SET LOCAL ROLE {role}")).execute(&mut *tx).await?;
        let inserted = sqlx::query(&self.insert).execute(&mut *tx).await;
        let result = CheckResult::build(KIND, self.object("INSERT"), started)
            .expected("allowed")
            .evidence(format!("{settings}SET LOCAL ROLE {role}; {}", self.insert));
        let insert_ok = inserted.is_ok();
        results.push(match inserted {
            Ok(done) => result
                .actual(format!("inserted {} row", done.rows_affected()))
                .verdict(true, format!("`{}` can append to `{}`", self.role, self.table)),
            Err(err) => {
                let why = describe_sql_error(&err);
                result
                    .actual(format!("refused: {why}"))
                    .verdict(false, format!("`{}` cannot append to `{}`: {why}", self.role, self.table))
            }
        });
        if insert_ok {
            sqlx::query("RELEASE SAVEPOINT probe").execute(&mut *tx).await?;
            sqlx::query("RESET ROLE").execute(&mut *tx).await?;
        } else {
            sqlx::query("ROLLBACK TO SAVEPOINT probe").execute(&mut *tx).await?;
        }

        let literal = quote_literal(&t);
        let (update, delete, truncate, select): (bool, bool, bool, bool) = sqlx::query_as(&format!(
            "SELECT has_table_privilege($1, {literal}, 'UPDATE'), has_table_privilege($1, {literal}, 'DELETE'), \
                    has_table_privilege($1, {literal}, 'TRUNCATE'), has_table_privilege($1, {literal}, 'SELECT')"
        ))
        .bind(&self.role)
        .fetch_one(&mut *tx)
        .await?;
        // A row to aim at (the one just inserted is visible here, so an empty table has one).
        let row: Option<(i64, String)> =
            sqlx::query_as(&format!("SELECT tableoid::oid::bigint, ctid::text FROM {t} LIMIT 1"))
                .fetch_optional(&mut *tx)
                .await?;
        let column: Option<String> = sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped \
             AND attidentity = '' AND attgenerated = '' ORDER BY attnum LIMIT 1",
        )
        .bind(&t)
        .fetch_optional(&mut *tx)
        .await?;
        let column = quote_ident(&column.unwrap_or_else(|| "ctid".into()));
        let target =
            row.as_ref().map(|(oid, ctid)| format!(" WHERE tableoid = {oid} AND ctid = {}", quote_literal(ctid)));

        for (operation, granted) in [("UPDATE", update), ("DELETE", delete), ("TRUNCATE", truncate)] {
            let statement = match operation {
                "UPDATE" => format!("UPDATE {t} SET {column} = {column}"),
                "DELETE" => format!("DELETE FROM {t}"),
                _ => format!("TRUNCATE {t}"),
            };
            let result =
                CheckResult::build(KIND, self.object(operation), started).expected("refused (privilege or trigger)");
            let (as_role, statement) = if !granted {
                (true, statement)
            } else if operation == "TRUNCATE" {
                (false, statement)
            } else {
                match &target {
                    Some(filter) => (select, format!("{statement}{filter}")),
                    None => {
                        results.push(result.evidence(statement).error(format!(
                            "{operation} is granted to `{}`, and `{}` has no row to show that a trigger refuses it",
                            self.role, self.table
                        )));
                        continue;
                    }
                }
            };
            let evidence = if as_role {
                format!("{settings}SET LOCAL ROLE {role}; {statement}")
            } else {
                format!("{statement} -- as the superuser")
            };
            sqlx::query("SAVEPOINT probe").execute(&mut *tx).await?;
            if as_role {
                sqlx::query(&format!("SET LOCAL ROLE {role}")).execute(&mut *tx).await?;
            }
            let attempt = sqlx::query(&statement).execute(&mut *tx).await;
            sqlx::query("ROLLBACK TO SAVEPOINT probe").execute(&mut *tx).await?;
            let result = result.evidence(evidence);
            results.push(match attempt {
                Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42501") && !granted => result
                    .actual("refused by privilege")
                    .verdict(true, format!("`{}` may not {operation} `{}`", self.role, self.table)),
                Err(sqlx::Error::Database(db)) if db.code().as_deref() != Some("42501") && granted => {
                    let why = db.message().to_owned();
                    result.actual(format!("refused by trigger: {why}")).verdict(
                        true,
                        format!("{operation} is granted to `{}` but a trigger refuses it: {why}", self.role),
                    )
                }
                Err(err) => result.actual(format!("failed: {}", describe_sql_error(&err))).error(format!(
                    "{operation} on `{}` failed for another reason than a refusal: {}",
                    self.table,
                    describe_sql_error(&err)
                )),
                Ok(done) => result.actual(format!("{operation} succeeded ({} rows)", done.rows_affected())).verdict(
                    false,
                    format!(
                        "`{}` can {operation} `{}`{}: the audit trail is not append-only",
                        self.role,
                        self.table,
                        if granted { " (granted, and no trigger refuses it)" } else { "" }
                    ),
                ),
            });
        }
        rollback(tx).await;
        Ok(results)
    }

    async fn trigger_check(&self, ctx: &CheckContext<'_>) -> CheckResult {
        let started = Instant::now();
        let sql =
            "SELECT tgname::text, tgenabled::text FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal";
        let result = CheckResult::build(KIND, format!("{} immutability triggers", self.table), started)
            .expected(format!("{} present and enabled", self.triggers.join(", ")))
            .evidence(bind_evidence(sql, &[&self.table.sql()]));
        let found: Vec<(String, String)> = match sqlx::query_as(sql).bind(self.table.sql()).fetch_all(ctx.pool).await {
            Ok(rows) => rows,
            Err(err) => {
                return result.error(format!(
                    "could not list triggers of `{}`: {}",
                    self.table,
                    describe_sql_error(&err)
                ));
            }
        };
        let mut problems = Vec::new();
        for name in &self.triggers {
            match found.iter().find(|(n, _)| n == name) {
                None => problems.push(format!("{name} is missing")),
                Some((_, enabled)) if enabled == "D" => problems.push(format!("{name} is disabled")),
                Some(_) => {}
            }
        }
        if problems.is_empty() {
            result
                .actual("present and enabled")
                .verdict(true, format!("`{}` keeps its immutability triggers", self.table))
        } else {
            let text = problems.join("; ");
            result.actual(text.clone()).verdict(false, format!("`{}`: {text}", self.table))
        }
    }
}

async fn rollback(tx: Transaction<'_, Postgres>) {
    let _ = tx.rollback().await;
}
