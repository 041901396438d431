//! The writer's probes, in a session the writing role opened itself ([`crate::check::login`]):
//! its INSERT, then an UPDATE that changes a value, a DELETE and a TRUNCATE, each in a savepoint
//! rolled back, the whole transaction rolled back.
//!
//! In order, in the role's session: the scenario's `settings`; the table privileges of the
//! session's `current_user` (who the login became); a row the role sees, aimed at before its
//! own INSERT adds one (an old row, not the fresh one a guard could single out); the INSERT, as
//! the transaction's first write (so its rows carry the transaction's id, and the role finds
//! its own row when it sees no other); then each change in a savepoint. What a statement
//! changed is counted by the session's own statistics of the table and its partitions
//! (`pg_stat_xact_all_tables`), not by its command tag: a rule can report rows it wrote
//! elsewhere, a trigger returning NULL writes nothing. When the table is empty and the role's
//! INSERT left nothing in it, pgdrill commits a probe row in its own session first
//! ([`crate::check::probe::committed`]) and removes it after.

use sqlx::PgPool;

use super::judge::{Attempt, Operation};
use crate::check::login::{AppSession, Failure};
use crate::pg::{QualifiedName, describe_sql_error, quote_literal};

/// What the session's statistics say the transaction wrote to the table (and its partitions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Written {
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
}

/// The statistics' SQL for the table of oid `oid` (read as a `regclass`, a number needs no
/// schema's USAGE).
fn written_sql(oid: &str) -> String {
    format!(
        "WITH RECURSIVE tree(relid) AS ( \
           SELECT {}::pg_catalog.regclass::pg_catalog.oid \
           UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid) \
         SELECT COALESCE(pg_catalog.sum(s.n_tup_ins), 0)::pg_catalog.int8, \
                COALESCE(pg_catalog.sum(s.n_tup_upd), 0)::pg_catalog.int8, \
                COALESCE(pg_catalog.sum(s.n_tup_del), 0)::pg_catalog.int8 \
           FROM pg_catalog.pg_stat_xact_all_tables s WHERE s.relid IN (SELECT tree.relid FROM tree)",
        quote_literal(oid)
    )
}

/// The privileges of the session's `current_user` on the table of oid `oid`: UPDATE, DELETE,
/// TRUNCATE, SELECT, each only with USAGE on the table's schema (without it every statement
/// naming the table is refused by privilege).
pub(super) async fn privileges(session: &AppSession, oid: &str) -> Result<[bool; 4], Failure> {
    let literal = format!("{}::pg_catalog.oid", quote_literal(oid));
    let usage = format!(
        "pg_catalog.has_schema_privilege(current_user, (SELECT c.relnamespace FROM pg_catalog.pg_class c \
         WHERE c.oid OPERATOR(pg_catalog.=) {literal}), 'USAGE')"
    );
    let sql = format!(
        "SELECT pg_catalog.has_table_privilege(current_user, {literal}, 'UPDATE') AND {usage}, \
                pg_catalog.has_table_privilege(current_user, {literal}, 'DELETE') AND {usage}, \
                pg_catalog.has_table_privilege(current_user, {literal}, 'TRUNCATE') AND {usage}, \
                pg_catalog.has_table_privilege(current_user, {literal}, 'SELECT') AND {usage}"
    );
    let answer = session.run(&sql).await?;
    let row = answer.rows.first().cloned().unwrap_or_default();
    let flag = |i: usize| row.get(i).cloned().flatten().as_deref() == Some("t");
    Ok([flag(0), flag(1), flag(2), flag(3)])
}

/// What the transaction wrote to the table of oid `oid` so far.
pub(super) async fn written(session: &AppSession, oid: &str) -> Result<Written, Failure> {
    let answer = session.run(&written_sql(oid)).await?;
    let row = answer.rows.first().cloned().unwrap_or_default();
    let int = |i: usize| row.get(i).cloned().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Written { inserted: int(0), updated: int(1), deleted: int(2) })
}

/// A row of the table the session sees: `WHERE` text that aims at it. `own`: only a row this
/// transaction inserted. `None` when it sees none (or may not read the table).
pub(super) async fn aim(session: &AppSession, t: &str, own: bool) -> Result<Option<String>, Failure> {
    let mine =
        if own { " WHERE xmin OPERATOR(pg_catalog.=) pg_catalog.xid(pg_catalog.pg_current_xact_id())" } else { "" };
    let sql = format!("SELECT tableoid::pg_catalog.oid::pg_catalog.text, ctid::pg_catalog.text FROM {t}{mine} LIMIT 1");
    session.run("SAVEPOINT aim").await?;
    let found = session.run(&sql).await;
    let row = match found {
        Ok(answer) => {
            session.run("RELEASE SAVEPOINT aim").await?;
            answer.rows.into_iter().next()
        }
        Err(Failure::Database { .. }) => {
            session.run("ROLLBACK TO SAVEPOINT aim").await?;
            None
        }
        Err(lost) => return Err(lost),
    };
    Ok(row.and_then(|r| match (r.first().cloned().flatten(), r.get(1).cloned().flatten()) {
        (Some(oid), Some(ctid)) => Some(filter(&oid, &ctid)),
        _ => None,
    }))
}

/// `WHERE` text that aims at the row `(oid, ctid)`, its operators named by their schema.
pub(super) fn filter(oid: &str, ctid: &str) -> String {
    format!(
        " WHERE tableoid OPERATOR(pg_catalog.=) {}::pg_catalog.oid AND ctid OPERATOR(pg_catalog.=) {}::pg_catalog.tid",
        quote_literal(oid),
        quote_literal(ctid)
    )
}

/// Runs `statement` (an `operation`) in the savepoint `probe`, rolled back after it: what it did,
/// and what it changed in the table by the session's statistics.
pub(super) async fn attempt(
    session: &AppSession,
    oid: &str,
    operation: Operation,
    statement: &str,
    aimed: bool,
) -> Result<Attempt, Failure> {
    session.run("SAVEPOINT probe").await?;
    let before = written(session, oid).await?;
    let attempt = match session.run(statement).await {
        Ok(done) if operation == Operation::Truncate => Attempt::Done { rows: done.affected, changed: None, aimed },
        Ok(done) => {
            let after = written(session, oid).await?;
            let changed = match operation {
                Operation::Update => after.updated - before.updated,
                _ => after.deleted - before.deleted,
            };
            Attempt::Done { rows: done.affected, changed: Some(changed.max(0) as u64), aimed }
        }
        Err(Failure::Database { code, message, context, .. }) => Attempt::Refused { code, message, context },
        Err(lost) => Attempt::Broken(lost.describe()),
    };
    session.run("ROLLBACK TO SAVEPOINT probe").await?;
    Ok(attempt)
}

/// Most columns an UPDATE probe changes, one at a time.
const MAX_CHANGED: usize = 16;

/// The columns an UPDATE can change, each with a value of its type it does not hold: `col =
/// value`, the value made up with a random part (so it differs from the row's); in the order of
/// [`CHANGEABLE_SQL`].
pub(super) async fn change(pool: &PgPool, table: &QualifiedName) -> sqlx::Result<Result<Vec<String>, String>> {
    use crate::check::probe;
    let mut conn = pool.acquire().await?;
    let rows: Vec<(String, i64, i32, String)> =
        sqlx::query_as(CHANGEABLE_SQL).bind(table.sql()).fetch_all(&mut *conn).await?;
    let mut tried = Vec::new();
    let mut sets = Vec::new();
    for (name, type_oid, typmod, sql_type) in rows.into_iter().take(MAX_CHANGED) {
        let column =
            probe::Column { name: name.clone(), sql_type: sql_type.clone(), type_oid, typmod, ..Default::default() };
        let facts = probe::type_facts(&mut conn, &column).await?;
        let expr = match probe::made_up(&facts) {
            Ok(expr) => expr,
            Err(why) => {
                tried.push(format!("`{name}`: {why}"));
                continue;
            }
        };
        let literal: Option<String> =
            sqlx::query_scalar(&format!("SELECT ({expr})::pg_catalog.text")).fetch_one(&mut *conn).await.ok().flatten();
        if let Some(literal) = literal {
            sets.push(format!("{} = {}::{sql_type}", crate::pg::quote_ident(&name), quote_literal(&literal)));
        }
    }
    if !sets.is_empty() {
        return Ok(Ok(sets));
    }
    Ok(Err(if tried.is_empty() {
        format!("`{table}` has no column an UPDATE can write")
    } else {
        format!("no value can be made up for any column of `{table}` ({})", tried.join("; "))
    }))
}

/// The columns an UPDATE may write (not generated, not `GENERATED ALWAYS`), in the order an
/// application's edit is likeliest to touch them: those no policy reads and no constraint
/// names first (a new tenant id would be refused by the policy's check, not by what guards the
/// trail), then strings, numbers, times, then the rest, then in order.
const CHANGEABLE_SQL: &str = "SELECT a.attname::pg_catalog.text, a.atttypid::pg_catalog.int8, a.atttypmod, \
       pg_catalog.format_type(a.atttypid, a.atttypmod) \
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) a.atttypid \
 WHERE a.attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass AND a.attnum OPERATOR(pg_catalog.>) 0 \
   AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) '' AND a.attidentity OPERATOR(pg_catalog.<>) 'a' \
 ORDER BY EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass \
                  AND d.refobjid OPERATOR(pg_catalog.=) a.attrelid AND d.refobjsubid OPERATOR(pg_catalog.=) a.attnum), \
          EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conrelid OPERATOR(pg_catalog.=) a.attrelid \
                  AND a.attnum OPERATOR(pg_catalog.=) ANY (c.conkey)), \
          pg_catalog.array_position('{S,N,D}'::pg_catalog.\"char\"[], ty.typcategory) NULLS LAST, a.attnum";

/// Opens the writer's session, or says why it could not.
pub(super) async fn open(ctx: &crate::check::CheckContext<'_>, role: &str) -> Result<AppSession, ProbeError> {
    match ctx.logins().open(role).await {
        Ok(session) => Ok(session),
        Err(e) => Err(ProbeError::Login { said: e.said(ctx.pool, role).await }),
    }
}

/// Why the probes in the role's own session could not run: the check's one error result says
/// so ([`ProbeError::said`]).
#[derive(Debug, thiserror::Error)]
pub(super) enum ProbeError {
    /// pgdrill's own session could not read the table.
    #[error("cannot read `{table}`")]
    Unreadable {
        table: String,
        #[source]
        source: sqlx::Error,
    },
    /// The role could not log in: what a check says of that ([`crate::check::login::LoginError::said`],
    /// which names the role the scenario probably meant).
    #[error("{said}")]
    Login { said: String },
    /// A statement of the probe failed in the role's session for a reason that is not a
    /// refusal; what ran before it is the evidence.
    #[error("the probe in `{role}`'s own session failed: {failure}\n{}", ran.join(";\n"))]
    Session { role: String, failure: Failure, ran: Vec<String> },
}

impl ProbeError {
    /// The error, with the database's answer as [`describe_sql_error`] tells it.
    pub(super) fn said(&self) -> String {
        match self {
            ProbeError::Unreadable { source, .. } => format!("{self}: {}", describe_sql_error(source)),
            _ => self.to_string(),
        }
    }
}

/// Why no probe row could be committed for the UPDATE and DELETE to aim at.
#[derive(Debug, thiserror::Error)]
pub(super) enum NoProbeRow {
    /// The database refused what making the row needed (reading the table's columns or the
    /// code that guards it, or the insert itself).
    #[error("the database refused it")]
    Sql {
        #[source]
        source: sqlx::Error,
    },
    /// The row could not be made or was voided: why, in words ([`crate::check::probe::committed::insert`]).
    #[error("{why}")]
    NotMade { why: String },
}

impl NoProbeRow {
    /// Why, as the check says it: the database's answer as [`describe_sql_error`] tells it.
    pub(super) fn said(&self) -> String {
        match self {
            NoProbeRow::Sql { source } => describe_sql_error(source),
            NoProbeRow::NotMade { why } => why.clone(),
        }
    }
}
