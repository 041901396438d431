//! Taking a database's fingerprint through a session the database cannot steer: its settings
//! fixed in the startup packet, the catalogs it reads checked to be the real ones first, every
//! value read as its type's C output function printed it.

use std::collections::BTreeMap;

use sqlx::postgres::PgConnectOptions;

use super::sql::{COLLATIONS_SQL, fingerprint_sql};
use super::{CATALOGS, CatalogError, Fingerprint, Row};

/// The audit's session: its settings fixed in the startup packet, which outranks what the
/// database and its roles set, and login event triggers off (PostgreSQL 17 and later).
fn session(options: &PgConnectOptions, before_17: bool) -> PgConnectOptions {
    let mut settings = vec![
        ("search_path", "pg_catalog"),
        ("extra_float_digits", "1"),
        ("DateStyle", "ISO"),
        ("IntervalStyle", "postgres"),
        ("bytea_output", "hex"),
        ("statement_timeout", "0"),
    ];
    if !before_17 {
        settings.push(("event_triggers", "off"));
    }
    options.clone().options(settings)
}

/// Fingerprints database `database` (reached with `options`).
pub(crate) async fn fingerprint(options: &PgConnectOptions, database: &str) -> Result<Fingerprint, CatalogError> {
    take(options, database, true).await
}

/// A session on `database` for the audit: its settings fixed ([`session`]), PostgreSQL 15 and
/// 16 (no `event_triggers` setting) included.
pub(super) async fn connect(options: &PgConnectOptions, database: &str) -> Result<sqlx::PgConnection, CatalogError> {
    use sqlx::Connection;
    let fail = |source: sqlx::Error| CatalogError::Unreadable { database: database.to_owned(), source };
    let options = options.clone().database(database);
    match sqlx::PgConnection::connect_with(&session(&options, false)).await {
        Ok(conn) => Ok(conn),
        // Before PostgreSQL 17 there is no `event_triggers` setting, nor login event triggers
        // (undefined_object, 42704), and a role that is not a superuser may not set it
        // (insufficient_privilege, 42501): the only setting of the session that an older server
        // lacks or a role may not set.
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42704" | "42501")) => {
            sqlx::PgConnection::connect_with(&session(&options, true)).await.map_err(fail)
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            Err(CatalogError::Missing { database: database.to_owned() })
        }
        Err(e) => Err(fail(e)),
    }
}

/// Column `i` of `row` as its type's output function printed it (the simple protocol), or
/// `None` for NULL.
pub(super) fn text(row: &sqlx::postgres::PgRow, i: usize, database: &str) -> Result<Option<String>, CatalogError> {
    use sqlx::{Row as _, ValueRef};
    let value =
        row.try_get_raw(i).map_err(|source| CatalogError::Unreadable { database: database.to_owned(), source })?;
    if value.is_null() {
        return Ok(None);
    }
    let text = value.as_str().map_err(|source| CatalogError::Value { database: database.to_owned(), source })?;
    Ok(Some(text.to_owned()))
}

/// Checks that each of `catalogs` (by its fixed OID) is the real one, and `pg_catalog` too: a
/// literal OID is printed from the server's own cache, whatever a table of that name now is.
pub(super) async fn real_catalogs(
    conn: &mut sqlx::PgConnection,
    database: &str,
    catalogs: &[(u32, &'static str)],
) -> Result<(), CatalogError> {
    use sqlx::Executor;
    let fail = |source: sqlx::Error| CatalogError::Unreadable { database: database.to_owned(), source };
    let guard: Vec<String> = catalogs.iter().map(|(oid, _)| format!("'{oid}'::pg_catalog.regclass")).collect();
    let guard = format!("SELECT '11'::pg_catalog.regnamespace, {}", guard.join(", "));
    let rows = conn.fetch_all(sqlx::raw_sql(&guard)).await.map_err(fail)?;
    let row = rows.first().ok_or_else(|| CatalogError::NoCheck { database: database.to_owned() })?;
    let schema = text(row, 0, database)?.unwrap_or_default();
    if schema != "pg_catalog" {
        return Err(CatalogError::Renamed {
            database: database.to_owned(),
            oid: 11,
            expected: "pg_catalog",
            found: schema,
        });
    }
    for (i, (oid, name)) in catalogs.iter().enumerate() {
        let found = text(row, i + 1, database)?.unwrap_or_default();
        if found != *name {
            return Err(CatalogError::Renamed { database: database.to_owned(), oid: *oid, expected: name, found });
        }
    }
    Ok(())
}

/// Fingerprints database `database`: each catalog's digest, and, `named`, every row by name.
pub(super) async fn take(options: &PgConnectOptions, database: &str, named: bool) -> Result<Fingerprint, CatalogError> {
    use sqlx::{Connection, Executor};
    let started = std::time::Instant::now();
    let fail = |source: sqlx::Error| CatalogError::Unreadable { database: database.to_owned(), source };
    let mut conn = connect(options, database).await?;
    let text = |row: &sqlx::postgres::PgRow, i: usize| text(row, i, database);
    real_catalogs(&mut conn, database, &CATALOGS).await?;
    let mut fingerprint = Fingerprint { rows: BTreeMap::new(), imported_collations: None, summary: BTreeMap::new() };
    for row in conn.fetch_all(sqlx::raw_sql(COLLATIONS_SQL)).await.map_err(fail)? {
        let first = text(&row, 0)?.and_then(|t| t.parse().ok());
        let last = text(&row, 1)?.and_then(|t| t.parse().ok());
        fingerprint.imported_collations = first.zip(last);
    }
    for row in conn.fetch_all(sqlx::raw_sql(&fingerprint_sql(true))).await.map_err(fail)? {
        let catalog = text(&row, 0)?.unwrap_or_default();
        fingerprint.summary.insert(catalog, text(&row, 1)?.unwrap_or_default());
    }
    let rows = if named { conn.fetch_all(sqlx::raw_sql(&fingerprint_sql(false))).await.map_err(fail)? } else { vec![] };
    for row in rows {
        let kind = text(&row, 0)?.unwrap_or_default();
        let identity = text(&row, 1)?.unwrap_or_default();
        let oid = text(&row, 2)?.and_then(|t| t.parse().ok()).unwrap_or(0);
        let digest = text(&row, 3)?.unwrap_or_default();
        let extension = text(&row, 4)?;
        insert(&mut fingerprint.rows, format!("{kind} {identity}"), Row { oid, digest, extension });
    }
    conn.close().await.ok();
    tracing::debug!(
        "catalog fingerprint of `{database}`: {} catalogs, {} rows in {:?}",
        fingerprint.summary.len(),
        fingerprint.rows.len(),
        started.elapsed()
    );
    Ok(fingerprint)
}

/// Adds a row; a second row of the same name (which only a backup that redirected the naming
/// could make) is kept under a name of its own, so it still shows.
fn insert(rows: &mut BTreeMap<String, Row>, what: String, row: Row) {
    let mut key = what.clone();
    let mut n = 1;
    while rows.contains_key(&key) {
        n += 1;
        key = format!("{what} (#{n})");
    }
    rows.insert(key, row);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_row_of_the_same_name_still_shows() {
        let mut rows = BTreeMap::new();
        insert(
            &mut rows,
            "function pg_catalog.lower(text)".into(),
            Row { oid: 870, digest: "aa".into(), extension: None },
        );
        insert(
            &mut rows,
            "function pg_catalog.lower(text)".into(),
            Row { oid: 16400, digest: "bb".into(), extension: None },
        );
        assert_eq!(rows.len(), 2);
        assert!(rows.contains_key("function pg_catalog.lower(text) (#2)"));
    }
}
