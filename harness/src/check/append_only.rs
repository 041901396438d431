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
//! The INSERT must add at least one row. An operation the role has no privilege for is tried
//! as the role; one it has the privilege for is tried on a single row, as the role if it may
//! read the table (otherwise as the restore's superuser). Either must be refused: any error
//! counts (`permission denied`, a trigger's `RAISE` whatever its SQLSTATE, a check), and so does
//! an UPDATE or DELETE that affects no row when the row it aimed at reads the same afterwards
//! (a rule `DO INSTEAD NOTHING`, a policy that hides the row). A TRUNCATE that runs fails.
//! A listed trigger protects only when it fires in ordinary sessions: enabled (`O`) or
//! `ENABLE ALWAYS` (`A`); `ENABLE REPLICA` (`R`) and disabled (`D`) fail.

use std::time::Instant;

use serde::Deserialize;
use sqlx::{Postgres, Transaction};

use super::{CheckContext, CheckResult, Kind, ResolveContext, bind_evidence};
use crate::field::FieldError;
use crate::pg::{QualifiedName, describe_sql_error, quote_ident, quote_literal};

pub(crate) const KIND: &str = "append_only";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AppendOnlyCheck")]
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
                crate::names::describe_error(ctx.pool, &err).await
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
            .expected("allowed (at least 1 row inserted)")
            .evidence(format!("{settings}SET LOCAL ROLE {role}; {}", self.insert));
        let insert_ok = inserted.is_ok();
        let (appended, actual) =
            judge_insert(inserted.map(|done| done.rows_affected()).map_err(|e| describe_sql_error(&e)));
        results.push(if appended {
            result.actual(actual).verdict(true, format!("`{}` can append to `{}`", self.role, self.table))
        } else {
            let message = format!("`{}` cannot append to `{}`: {actual}", self.role, self.table);
            result.actual(actual).verdict(false, message)
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
        // A row to aim at (the one just inserted is visible here, so an empty table has one):
        // one the role itself sees when it may read the table, so that a row-level security
        // policy hiding another tenant's row does not pass for a refusal.
        let aim = format!("SELECT tableoid::oid::bigint, ctid::text FROM {t} LIMIT 1");
        let mut row: Option<(i64, String)> = None;
        if select {
            sqlx::query("SAVEPOINT aim").execute(&mut *tx).await?;
            sqlx::query(&format!("SET LOCAL ROLE {role}")).execute(&mut *tx).await?;
            let seen = sqlx::query_as(&aim).fetch_optional(&mut *tx).await;
            sqlx::query("ROLLBACK TO SAVEPOINT aim").execute(&mut *tx).await?;
            row = seen.ok().flatten();
        }
        if row.is_none() {
            row = sqlx::query_as(&aim).fetch_optional(&mut *tx).await?;
        }
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
            let result = CheckResult::build(KIND, self.object(operation), started)
                .expected("refused (privilege, trigger, rule or policy)");
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
            // The row aimed at, as the superuser sees it, to tell "0 rows affected" from a change.
            let reread = target.as_ref().map(|filter| format!("SELECT probe_row::text FROM {t} AS probe_row{filter}"));
            let before: Option<String> = match &reread {
                Some(sql) => sqlx::query_scalar(sql).fetch_optional(&mut *tx).await?,
                None => None,
            };
            sqlx::query("SAVEPOINT probe").execute(&mut *tx).await?;
            if as_role {
                sqlx::query(&format!("SET LOCAL ROLE {role}")).execute(&mut *tx).await?;
            }
            let attempt = match sqlx::query(&statement).execute(&mut *tx).await {
                Ok(done) if operation == "TRUNCATE" => Attempt::Done { rows: done.rows_affected(), unchanged: None },
                Ok(done) => {
                    let unchanged = match (&reread, &before) {
                        (Some(sql), Some(_)) if done.rows_affected() == 0 => {
                            sqlx::query("RESET ROLE").execute(&mut *tx).await?;
                            let after: Option<String> = sqlx::query_scalar(sql).fetch_optional(&mut *tx).await?;
                            Some(after == before)
                        }
                        _ => None,
                    };
                    Attempt::Done { rows: done.rows_affected(), unchanged }
                }
                Err(sqlx::Error::Database(db)) => Attempt::Refused {
                    code: db.code().map(|c| c.into_owned()).unwrap_or_default(),
                    message: db.message().to_owned(),
                },
                Err(err) => Attempt::Broken(describe_sql_error(&err)),
            };
            sqlx::query("ROLLBACK TO SAVEPOINT probe").execute(&mut *tx).await?;
            let judged = judge(operation, granted, &attempt);
            let result = result.evidence(evidence).actual(judged.actual);
            let message = match judged.verdict {
                Judged::Refused => format!("`{}` may not {operation} `{}`: {}", self.role, self.table, judged.why),
                Judged::Mutable => format!(
                    "`{}` can {operation} `{}`{}: the audit trail is not append-only",
                    self.role,
                    self.table,
                    if granted { " (granted, and nothing refuses it)" } else { "" }
                ),
                Judged::Unproven => format!("{operation} on `{}`: {}", self.table, judged.why),
            };
            results.push(match judged.verdict {
                Judged::Refused => result.verdict(true, message),
                Judged::Mutable => result.verdict(false, message),
                Judged::Unproven => result.error(message),
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
            let enabled = found.iter().find(|(n, _)| n == name).map(|(_, e)| e.as_str());
            problems.extend(trigger_problem(name, enabled));
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

/// What is wrong with an immutability trigger whose `pg_trigger.tgenabled` is `enabled` (`None`:
/// no such trigger). Only `O` (fires in origin sessions, the default) and `A` (always) protect
/// the table from the application's sessions; `R` fires only in replica sessions
/// (`session_replication_role = replica`) and `D` never.
pub(crate) fn trigger_problem(name: &str, enabled: Option<&str>) -> Option<String> {
    match enabled {
        None => Some(format!("{name} is missing")),
        Some("O" | "A") => None,
        Some("R") => {
            Some(format!("{name} fires only in replica sessions (ENABLE REPLICA): it does not protect the table"))
        }
        Some("D") => Some(format!("{name} is disabled")),
        Some(other) => Some(format!("{name} has an unknown state (tgenabled {other})")),
    }
}

/// What an UPDATE, DELETE or TRUNCATE probe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The server refused it with an error: any SQLSTATE (a privilege, a trigger's RAISE, a
    /// check, a rule that raises) is a refusal.
    Refused { code: String, message: String },
    /// It ran and affected `rows` rows; for 0 rows, whether the row aimed at reads the same
    /// afterwards (`None`: no row to compare, or not asked).
    Done { rows: u64, unchanged: Option<bool> },
    /// It did not reach the server's decision (the connection failed).
    Broken(String),
}

/// How a probe is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judged {
    /// The audit trail held: pass.
    Refused,
    /// The role changed or erased rows: fail.
    Mutable,
    /// The probe proves neither: error.
    Unproven,
}

/// A probe's judgement, what it found, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Judgement {
    pub verdict: Judged,
    pub actual: String,
    pub why: String,
}

/// Judges a probe of `operation` (`granted`: whether the role holds the table privilege for it).
/// Any error from the server is a refusal; an UPDATE or DELETE that affects no row is one only
/// when the row it aimed at reads the same afterwards (a rule `DO INSTEAD NOTHING`, a policy
/// hiding the row); a TRUNCATE that runs always erased the table.
pub(crate) fn judge(operation: &str, granted: bool, attempt: &Attempt) -> Judgement {
    let judgement = |verdict, actual: String, why: String| Judgement { verdict, actual, why };
    match attempt {
        Attempt::Refused { code, message } if code == "42501" && !granted => {
            judgement(Judged::Refused, "refused by privilege".into(), format!("{message} ({code})"))
        }
        Attempt::Refused { code, message } => {
            let by = match code.as_str() {
                "42501" => "refused",
                "P0001" => "refused by a trigger or rule",
                c if c.starts_with("23") => "refused by a constraint",
                _ => "refused",
            };
            judgement(Judged::Refused, format!("{by}: {message} ({code})"), format!("{by}: {message} ({code})"))
        }
        Attempt::Done { rows: 0, unchanged: Some(true) } if operation != "TRUNCATE" => judgement(
            Judged::Refused,
            "0 rows affected; row unchanged".into(),
            "0 rows affected; row unchanged (a rule or policy kept it)".into(),
        ),
        Attempt::Done { rows: 0, unchanged: None } if operation != "TRUNCATE" => judgement(
            Judged::Unproven,
            "0 rows affected".into(),
            "0 rows affected, and no row to show that it would be refused".into(),
        ),
        Attempt::Done { rows: 0, unchanged: Some(false) } if operation != "TRUNCATE" => {
            judgement(Judged::Mutable, "0 rows affected, but the row changed".into(), String::new())
        }
        Attempt::Done { .. } if operation == "TRUNCATE" => {
            judgement(Judged::Mutable, "TRUNCATE succeeded".into(), String::new())
        }
        Attempt::Done { rows, .. } => {
            let plural = if *rows == 1 { "" } else { "s" };
            judgement(Judged::Mutable, format!("{operation} succeeded ({rows} row{plural})"), String::new())
        }
        Attempt::Broken(why) => judgement(
            Judged::Unproven,
            format!("failed: {why}"),
            format!("failed for another reason than a refusal: {why}"),
        ),
    }
}

/// Judges the INSERT probe: it must run and add at least one row (a rule `DO INSTEAD NOTHING`
/// or an `INSERT ... SELECT` of nothing appends nothing). `Err` holds the server's refusal.
pub(crate) fn judge_insert(inserted: Result<u64, String>) -> (bool, String) {
    match inserted {
        Ok(0) => (false, "0 rows inserted".into()),
        Ok(1) => (true, "inserted 1 row".into()),
        Ok(n) => (true, format!("inserted {n} rows")),
        Err(why) => (false, format!("refused: {why}")),
    }
}

async fn rollback(tx: Transaction<'_, Postgres>) {
    let _ = tx.rollback().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: &str) -> Attempt {
        Attempt::Refused { code: code.into(), message: "no".into() }
    }

    #[test]
    fn any_error_is_a_refusal_granted_or_not() {
        for code in ["42501", "P0001", "XX123", "23514", "0A000"] {
            for granted in [true, false] {
                assert_eq!(judge("UPDATE", granted, &refused(code)).verdict, Judged::Refused, "{code} {granted}");
                assert_eq!(judge("TRUNCATE", granted, &refused(code)).verdict, Judged::Refused, "{code} {granted}");
            }
        }
        assert_eq!(judge("DELETE", false, &refused("42501")).actual, "refused by privilege");
        assert_eq!(judge("DELETE", true, &refused("P0001")).actual, "refused by a trigger or rule: no (P0001)");
    }

    #[test]
    fn no_row_affected_counts_only_when_the_row_is_unchanged() {
        let kept = Attempt::Done { rows: 0, unchanged: Some(true) };
        let judged = judge("UPDATE", true, &kept);
        assert_eq!((judged.verdict, judged.actual.as_str()), (Judged::Refused, "0 rows affected; row unchanged"));
        assert_eq!(judge("DELETE", false, &kept).verdict, Judged::Refused);
        assert_eq!(judge("DELETE", true, &Attempt::Done { rows: 0, unchanged: Some(false) }).verdict, Judged::Mutable);
        assert_eq!(judge("UPDATE", true, &Attempt::Done { rows: 0, unchanged: None }).verdict, Judged::Unproven);
        assert_eq!(judge("UPDATE", true, &Attempt::Done { rows: 1, unchanged: None }).verdict, Judged::Mutable);
        // A TRUNCATE that runs erased the table, whatever it reports.
        assert_eq!(judge("TRUNCATE", true, &Attempt::Done { rows: 0, unchanged: None }).verdict, Judged::Mutable);
        assert_eq!(judge("UPDATE", true, &Attempt::Broken("gone".into())).verdict, Judged::Unproven);
    }

    #[test]
    fn an_insert_must_add_a_row() {
        assert_eq!(judge_insert(Ok(1)), (true, "inserted 1 row".into()));
        assert!(judge_insert(Ok(3)).0);
        assert_eq!(judge_insert(Ok(0)), (false, "0 rows inserted".into()));
        assert!(!judge_insert(Err("permission denied".into())).0);
    }

    #[test]
    fn only_triggers_firing_in_ordinary_sessions_protect() {
        assert_eq!(trigger_problem("t", Some("O")), None);
        assert_eq!(trigger_problem("t", Some("A")), None);
        assert!(trigger_problem("t", Some("R")).unwrap().contains("replica"));
        assert_eq!(trigger_problem("t", Some("D")).as_deref(), Some("t is disabled"));
        assert_eq!(trigger_problem("t", None).as_deref(), Some("t is missing"));
    }
}
