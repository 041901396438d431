//! Which migration journals a database holds: each preset's table, with the columns that tell
//! it from another tool's, and its newest migration (per app for Django, per project for
//! sqitch). `init` proposes checks from them; baselines record them.

use sqlx::PgPool;

use super::Preset;
use crate::pg::QualifiedName;

/// A preset's journal in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub preset: Preset,
    /// The Django app or sqitch project it is the newest of.
    pub scope: Option<String>,
    pub newest: String,
}

/// Every preset's journal present, in [`Preset::ALL`]'s order, and the tables they claim.
pub(crate) async fn detect(pool: &PgPool) -> sqlx::Result<(Vec<Found>, Vec<QualifiedName>)> {
    let mut found = Vec::new();
    let mut tables: Vec<QualifiedName> = Vec::new();
    for preset in Preset::ALL {
        let mut journal = preset.journal();
        if tables.contains(&journal.table) {
            continue;
        }
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
        )
        .bind(journal.table.sql())
        .fetch_all(pool)
        .await?;
        let has = |name: &str| columns.iter().any(|(c, _)| c == name);
        if !has(&journal.column) || !preset.signature().iter().all(|c| has(c)) {
            continue;
        }
        // dbmate's table is `version varchar(128)` alone; Rails keeps `ar_internal_metadata`
        // beside its own.
        if preset == Preset::Dbmate {
            let rails: bool = sqlx::query_scalar("SELECT to_regclass('public.ar_internal_metadata') IS NOT NULL")
                .fetch_one(pool)
                .await?;
            if rails || columns.len() != 1 || columns[0].1 != "character varying(128)" {
                continue;
            }
        }
        tables.push(journal.table.clone());
        if preset == Preset::Knex {
            tables.push(QualifiedName::new(journal.table.schema_or_public(), format!("{}_lock", journal.table.name)));
        }
        let scopes: Vec<Option<String>> = match preset.scope_column() {
            Some(column) => sqlx::query_scalar::<_, String>(&format!(
                "SELECT DISTINCT {}::text FROM {} ORDER BY 1",
                crate::pg::quote_ident(column),
                journal.table.sql()
            ))
            .fetch_all(pool)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(Some)
            .collect(),
            None => vec![None],
        };
        for scope in scopes {
            journal.scope = preset.scope_column().zip(scope.clone()).map(|(c, v)| (c.to_owned(), v));
            let newest: Option<Option<String>> =
                sqlx::query_scalar(&journal.newest_sql()).fetch_optional(pool).await.unwrap_or(None);
            if let Some(Some(newest)) = newest {
                found.push(Found { preset, scope, newest });
            }
        }
    }
    Ok((found, tables))
}
