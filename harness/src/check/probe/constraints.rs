//! Constraints set aside for the probe rows, inside the transaction that is always rolled back.
//!
//! A made-up row can break a CHECK constraint of its table or of a domain (an allowed-values
//! list, "exactly one of these columns", a pattern), a unique constraint or index (an
//! expression index, `NULLS NOT DISTINCT`, a boolean) or an exclusion constraint. When the
//! INSERT stops on one (SQLSTATE 23514, 23505, 23P01, named by the error), pgdrill rolls back to
//! the savepoint before the INSERT, drops that constraint (`ALTER TABLE ... DROP CONSTRAINT`,
//! `ALTER DOMAIN ... DROP CONSTRAINT`, `DROP INDEX`: on the partitioned table or index it is
//! inherited from, since a partition's copy cannot be dropped alone) and tries again. NOT NULL
//! is never set aside: the row satisfies it. Foreign keys are already off for the INSERT
//! (`session_replication_role = replica`).
//!
//! Why this is sound for what the probes then prove:
//! - Fail-closed `rls` proves what the application role *reads*. Constraints decide which rows
//!   may be written, never which rows a read returns: a `SELECT` under row-level security
//!   evaluates the table's policies (`USING`), not its CHECK, unique or exclusion constraints,
//!   and dropping one hides no row (an index is only a way to find rows). So every row the reads
//!   count, the table's own and the probe rows, is judged by the same policies as before. What
//!   setting a constraint aside can do is admit a probe row whose values the data could not
//!   hold; the reads then prove isolation for that row as made, which the evidence lists
//!   (`column = expression`, and each constraint set aside), together with every row the table
//!   already has.
//! - `append_only` proves that UPDATE, DELETE and TRUNCATE are refused by privilege, trigger,
//!   rule or policy; a CHECK, unique or exclusion constraint is not among what counts as a
//!   refusal ([`crate::sqlstate`]: a constraint that stops a row proves nothing), so a probe row
//!   admitted without one cannot make a refusal appear.
//! - The DDL runs with pgdrill's session pins: event triggers are off (PostgreSQL 17 and later,
//!   as a superuser); where a session cannot turn them off and the backup has any, nothing is
//!   set aside and the probe says so, as the backup's code would run.

use sqlx::PgConnection;

use crate::pg::{quote_ident, quote_ident_if_needed};

/// What a failed INSERT names that can be set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocker {
    /// A CHECK constraint of a table (a partition's name: the error's relation).
    TableCheck { schema: String, table: String, name: String },
    /// A CHECK constraint of a domain.
    DomainCheck { schema: String, domain: String, name: String },
    /// A unique or exclusion constraint, or a unique index, by its index's name.
    Index { schema: String, table: String, index: String, exclusion: bool },
}

/// What the error of a failed INSERT names that can be set aside: a CHECK (23514) of a table or
/// a domain, a unique (23505) or exclusion (23P01) constraint. `None` for anything else,
/// including a row no partition accepts (23514 without a constraint).
pub(crate) fn blocker(err: &sqlx::Error) -> Option<Blocker> {
    let db = err.as_database_error()?.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    let name = db.constraint()?.to_owned();
    let schema = db.schema()?.to_owned();
    match db.code() {
        "23514" => match (db.data_type(), db.table()) {
            (Some(domain), _) => Some(Blocker::DomainCheck { schema, domain: domain.to_owned(), name }),
            (None, Some(table)) => Some(Blocker::TableCheck { schema, table: table.to_owned(), name }),
            _ => None,
        },
        code @ ("23505" | "23P01") => {
            Some(Blocker::Index { schema, table: db.table()?.to_owned(), index: name, exclusion: code == "23P01" })
        }
        _ => None,
    }
}

/// The topmost table of the inheritance tree above the error's relation that holds a
/// constraint so named (a partition's CHECK is inherited from its parent, where it is dropped).
const TABLE_CHECK_SQL: &str = "WITH RECURSIVE up(relid, depth) AS ( \
       SELECT pg_catalog.format('%I.%I', $1::pg_catalog.text, $2::pg_catalog.text)::pg_catalog.regclass::pg_catalog.oid, 0 \
       UNION ALL SELECT i.inhparent, u.depth OPERATOR(pg_catalog.+) 1 FROM pg_catalog.pg_inherits i JOIN up u ON i.inhrelid OPERATOR(pg_catalog.=) u.relid) \
     SELECT c.conrelid::pg_catalog.regclass::pg_catalog.text FROM up JOIN pg_catalog.pg_constraint c \
       ON c.conrelid OPERATOR(pg_catalog.=) up.relid AND c.conname OPERATOR(pg_catalog.=) $3::pg_catalog.name AND c.contype OPERATOR(pg_catalog.=) 'c' \
     ORDER BY up.depth DESC LIMIT 1";

/// The topmost index of the partitioned index above the error's index, and the unique, primary
/// key or exclusion constraint it backs, if any.
const INDEX_SQL: &str = "WITH RECURSIVE up(idx, depth) AS ( \
       SELECT x.indexrelid, 0 FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid OPERATOR(pg_catalog.=) x.indexrelid \
        WHERE x.indrelid OPERATOR(pg_catalog.=) pg_catalog.format('%I.%I', $1::pg_catalog.text, $2::pg_catalog.text)::pg_catalog.regclass \
          AND i.relname OPERATOR(pg_catalog.=) $3::pg_catalog.name \
       UNION ALL SELECT h.inhparent, u.depth OPERATOR(pg_catalog.+) 1 FROM pg_catalog.pg_inherits h JOIN up u ON h.inhrelid OPERATOR(pg_catalog.=) u.idx) \
     SELECT up.idx::pg_catalog.regclass::pg_catalog.text, c.conrelid::pg_catalog.regclass::pg_catalog.text, c.conname::pg_catalog.text \
     FROM up LEFT JOIN pg_catalog.pg_constraint c ON c.conindid OPERATOR(pg_catalog.=) up.idx AND c.contype OPERATOR(pg_catalog.=) ANY ('{p,u,x}'::pg_catalog.\"char\"[]) \
     ORDER BY up.depth DESC LIMIT 1";

/// Whether the backup has an enabled event trigger.
const EVENT_TRIGGERS_SQL: &str =
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtenabled OPERATOR(pg_catalog.<>) 'D')";

/// How a constraint is set aside: the DDL that drops it, and how the evidence names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetAside {
    pub statement: String,
    pub what: String,
}

/// The DDL that sets `blocker` aside, resolved in the catalog (`None`: nothing so named, which
/// the caller reports as the error it was).
pub(crate) async fn resolve(conn: &mut PgConnection, blocker: &Blocker) -> sqlx::Result<Option<SetAside>> {
    Ok(match blocker {
        Blocker::DomainCheck { schema, domain, name } => {
            let shown = format!("{}.{}", quote_ident_if_needed(schema), quote_ident_if_needed(domain));
            Some(SetAside {
                statement: format!(
                    "ALTER DOMAIN {}.{} DROP CONSTRAINT {}",
                    quote_ident(schema),
                    quote_ident(domain),
                    quote_ident(name)
                ),
                what: format!("CHECK {} of domain {shown}", quote_ident(name)),
            })
        }
        Blocker::TableCheck { schema, table, name } => {
            let owner: Option<String> = sqlx::query_scalar(TABLE_CHECK_SQL)
                .bind(schema)
                .bind(table)
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
            owner.map(|owner| SetAside {
                statement: format!("ALTER TABLE {owner} DROP CONSTRAINT {}", quote_ident(name)),
                what: format!("CHECK {} of {owner}", quote_ident(name)),
            })
        }
        Blocker::Index { schema, table, index, exclusion } => {
            let found: Option<(String, Option<String>, Option<String>)> =
                sqlx::query_as(INDEX_SQL).bind(schema).bind(table).bind(index).fetch_optional(&mut *conn).await?;
            let kind = if *exclusion { "exclusion constraint" } else { "unique constraint" };
            found.map(|(index, owner, constraint)| match (owner, constraint) {
                // CASCADE: a foreign key elsewhere may lean on the unique constraint; it is
                // dropped with it, in the same rolled-back transaction.
                (Some(owner), Some(constraint)) => SetAside {
                    statement: format!("ALTER TABLE {owner} DROP CONSTRAINT {} CASCADE", quote_ident(&constraint)),
                    what: format!("{kind} {} of {owner}", quote_ident(&constraint)),
                },
                _ => {
                    SetAside { statement: format!("DROP INDEX {index} CASCADE"), what: format!("unique index {index}") }
                }
            })
        }
    })
}

/// Why nothing may be set aside on this target, if so: the backup has event triggers and the
/// session cannot turn them off (before PostgreSQL 17, or without a superuser), so the DDL would
/// run the backup's code.
pub(crate) async fn refused(conn: &mut PgConnection, pins: crate::session::Pins) -> sqlx::Result<Option<String>> {
    if pins.version_num >= 170000 && pins.superuser {
        return Ok(None);
    }
    let firing: bool = sqlx::query_scalar(EVENT_TRIGGERS_SQL).fetch_one(&mut *conn).await?;
    Ok(firing.then(|| {
        "the backup has event triggers, which this target cannot turn off for pgdrill's session (PostgreSQL before 17, or a role that is not a superuser), so no constraint is set aside".to_owned()
    }))
}

/// The evidence's line for what was set aside.
pub(crate) fn evidence(set_aside: &[SetAside]) -> Option<String> {
    (!set_aside.is_empty()).then(|| {
        let list: Vec<&str> = set_aside.iter().map(|s| s.what.as_str()).collect();
        format!("-- set aside for the probe rows (rolled back with them): {}", list.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_evidence_lists_what_was_set_aside() {
        assert_eq!(evidence(&[]), None);
        let set = [
            SetAside { statement: String::new(), what: "CHECK orders_status_check of public.orders".into() },
            SetAside { statement: String::new(), what: "CHECK positive_check of domain public.positive".into() },
        ];
        assert_eq!(
            evidence(&set).unwrap(),
            "-- set aside for the probe rows (rolled back with them): CHECK orders_status_check of public.orders, CHECK positive_check of domain public.positive"
        );
    }
}
