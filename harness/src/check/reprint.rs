//! The baseline's definitions as the restore's own server prints them. A definition printed by
//! one major and parsed by another can print otherwise on the second: over a varchar column,
//! `p IN ('a', 'b')` reads `((ARRAY['a'::character varying, ...])::text[])` on PostgreSQL 15 and
//! `(ARRAY[('a'::character varying)::text, ...])` on 17. A dump restored onto a newer major does
//! exactly that, so a baseline captured on the source reads otherwise than an honest restore.
//! Before such a text is held against the restore, the baseline's definition is parsed by the
//! restore's server on a temporary copy of the table (`CREATE TEMP TABLE ... (LIKE ...)`, in a
//! transaction always rolled back, so nothing outlives it) and printed again: the same
//! definition then reads the same, and a changed one still differs, since only the baseline's
//! text goes in. `None` when the server does not take it (the restore's column is gone or of
//! another type), or when an event trigger of the backup could run on the copy's DDL (before
//! PostgreSQL 17, whose `event_triggers = off` pgdrill pins): the difference then stands as read.

use sqlx::{PgPool, Postgres, Transaction};

use crate::baseline::{IndexInfo, capture};
use crate::pg::{QualifiedName, quote_literal};

/// Whether DDL in this session runs none of the backup's code: event triggers are off in it
/// (PostgreSQL 17's `event_triggers`, pinned in pgdrill's superuser sessions), or the database
/// has none that fires.
const NO_EVENT_TRIGGER: &str = "SELECT COALESCE(pg_catalog.current_setting('event_triggers', true), 'on') OPERATOR(pg_catalog.=) 'off' \
     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtenabled OPERATOR(pg_catalog.<>) 'D')";

/// A temporary copy of `table`'s columns (and generation expressions), in a transaction that
/// prints definitions with the capture's `search_path` when `printing` (indexes), or pgdrill's
/// pinned one (the rest). An error, and nothing made, where an event trigger of the backup
/// would run on the copy's DDL in pgdrill's session.
async fn copy_of(pool: &PgPool, table: &QualifiedName, printing: bool) -> sqlx::Result<Transaction<'static, Postgres>> {
    let mut tx = if printing { capture::printing(pool).await? } else { pool.begin().await? };
    let quiet: bool = sqlx::query_scalar(NO_EVENT_TRIGGER).fetch_one(&mut *tx).await?;
    if !quiet {
        return Err(sqlx::Error::Protocol("an event trigger of the backup would run on the copy's DDL".into()));
    }
    sqlx::query(&format!("CREATE TEMP TABLE t_copy (LIKE {} INCLUDING GENERATED)", table.sql()))
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// A constraint's definition (a CHECK; without `NOT VALID` and the like) as the restore's
/// server prints it on `table`.
pub(crate) async fn constraint(pool: &PgPool, table: &QualifiedName, definition: &str) -> Option<String> {
    let printed = async {
        let mut tx = copy_of(pool, table, false).await?;
        sqlx::query(&format!("ALTER TABLE pg_temp.t_copy ADD CONSTRAINT c {definition} NOT VALID"))
            .execute(&mut *tx)
            .await?;
        let printed: String = sqlx::query_scalar(
            "SELECT pg_catalog.pg_get_constraintdef(k.oid) FROM pg_catalog.pg_constraint k \
             WHERE k.conrelid OPERATOR(pg_catalog.=) 'pg_temp.t_copy'::pg_catalog.regclass AND k.conname OPERATOR(pg_catalog.=) 'c'",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok::<_, sqlx::Error>(printed)
    };
    printed.await.ok().map(|p| p.trim_end_matches(" NOT VALID").to_owned())
}

/// The expression of `column` once `alter` (`SET DEFAULT ...`, `SET EXPRESSION AS (...)`) has
/// set it on the copy of `table`.
async fn column_expression(pool: &PgPool, table: &QualifiedName, column: &str, alter: &str) -> Option<String> {
    let printed = async {
        let mut tx = copy_of(pool, table, false).await?;
        sqlx::query(&format!("ALTER TABLE pg_temp.t_copy ALTER COLUMN {} {alter}", crate::pg::quote_ident(column)))
            .execute(&mut *tx)
            .await?;
        let printed: Option<String> = sqlx::query_scalar(&format!(
            "SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d \
             JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.adrelid AND a.attnum OPERATOR(pg_catalog.=) d.adnum \
             WHERE d.adrelid OPERATOR(pg_catalog.=) 'pg_temp.t_copy'::pg_catalog.regclass AND a.attname OPERATOR(pg_catalog.=) {}",
            quote_literal(column)
        ))
        .fetch_optional(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok::<_, sqlx::Error>(printed)
    };
    printed.await.ok().flatten()
}

/// A column default as the restore's server prints it.
pub(crate) async fn default(pool: &PgPool, table: &QualifiedName, column: &str, expression: &str) -> Option<String> {
    column_expression(pool, table, column, &format!("SET DEFAULT {expression}")).await
}

/// A stored column's generation expression as the restore's server prints it (`SET
/// EXPRESSION`: PostgreSQL 17 and later; `None` before).
pub(crate) async fn generated(pool: &PgPool, table: &QualifiedName, column: &str, expression: &str) -> Option<String> {
    column_expression(pool, table, column, &format!("SET EXPRESSION AS ({expression})")).await
}

/// The baseline's index `want` as the restore's server builds and prints it on a copy of
/// `table`: its definition, keys, operator classes, predicate and the rest. What a plain
/// `CREATE INDEX` cannot say (whether it backs the primary key or an exclusion constraint, or
/// defers its uniqueness) and whether it is sound stay the baseline's.
pub(crate) async fn index(pool: &PgPool, table: &QualifiedName, want: &IndexInfo) -> Option<IndexInfo> {
    let (head, rest) = want.definition.split_once(" USING ")?;
    let unique = if head.starts_with("CREATE UNIQUE INDEX ") { "UNIQUE " } else { "" };
    let printed = async {
        let mut tx = copy_of(pool, table, true).await?;
        sqlx::query(&format!("CREATE {unique}INDEX t_copy_index ON pg_temp.t_copy USING {rest}"))
            .execute(&mut *tx)
            .await?;
        let sql = capture::index_sql(&mut tx, "i.oid = 'pg_temp.t_copy_index'::pg_catalog.regclass").await?;
        let row = sqlx::query(&sql).fetch_one(&mut *tx).await?;
        let printed = capture::index_info(&row)?;
        tx.rollback().await?;
        Ok::<_, sqlx::Error>(printed)
    };
    let printed = printed.await.ok()?;
    let (_, printed_rest) = printed.definition.split_once(" USING ")?;
    let parts = match (printed.parts, &want.parts) {
        (Some(parts), Some(wanted)) => Some(crate::baseline::IndexParts {
            primary: wanted.primary,
            exclusion: wanted.exclusion,
            immediate: wanted.immediate,
            ..parts
        }),
        // An older baseline records no parts: its definition, printed again, stands for them.
        _ => None,
    };
    Some(IndexInfo {
        definition: format!("{head} USING {printed_rest}"),
        opclasses: printed.opclasses,
        parts,
        ..want.clone()
    })
}
