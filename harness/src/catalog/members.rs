//! The members of a restored database's extensions against those a fresh `CREATE EXTENSION` of
//! the same version makes. A row of `pg_depend` makes the backup's own function a member of an
//! extension, and the checks read an extension's members as the extension's code, not the
//! backup's. The reference is made on a cluster of the target's image that no backup touched
//! (not in a scratch database of the restored server: the restore can write its `template0`),
//! and kept in this machine's cache per image, extension, version and schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor};

use super::CatalogError;
use super::derived_sql::MEMBERS_SQL;
use super::take::{connect, text};

/// An extension of the restored database, as a fresh cluster creates it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extension {
    pub name: String,
    pub version: String,
    pub schema: String,
    /// The extension creates its schema (it is one of its members), so none is given.
    pub owns_schema: bool,
}

impl Extension {
    /// Its key in the cache: what `CREATE EXTENSION` is given.
    fn key(&self) -> String {
        format!("{} {} in {}{}", self.name, self.version, self.schema, if self.owns_schema { " (its own)" } else { "" })
    }
}

/// The cached reference of one image: each extension's members by [`Extension::key`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Kept(BTreeMap<String, BTreeMap<String, String>>);

impl Kept {
    /// The members of every one of `extensions`, when all are kept.
    pub(crate) fn members_of(&self, extensions: &[Extension]) -> Option<Members> {
        extensions
            .iter()
            .map(|e| self.0.get(&e.key()).map(|m| (e.name.clone(), (e.version.clone(), m.clone()))))
            .collect()
    }

    /// Keeps what a fresh cluster made of `extensions`, and what `other` kept that this lacks
    /// (another drill's, written meanwhile).
    pub(crate) fn add(&mut self, extensions: &[Extension], made: &Members, other: Option<Kept>) {
        for e in extensions {
            let members = made.get(&e.name).map(|(_, m)| m.clone()).unwrap_or_default();
            self.0.insert(e.key(), members);
        }
        for (key, members) in other.map(|k| k.0).unwrap_or_default() {
            self.0.entry(key).or_insert(members);
        }
    }
}

/// Each extension's version and members, by name; each member with its definition (empty for
/// a kind whose definition is not read).
pub(crate) type Members = BTreeMap<String, (String, BTreeMap<String, String>)>;

pub(super) async fn read_members(conn: &mut sqlx::PgConnection, database: &str) -> Result<Members, CatalogError> {
    let fail = |source: sqlx::Error| CatalogError::Unreadable { database: database.to_owned(), source };
    let mut members = Members::new();
    for row in conn.fetch_all(sqlx::raw_sql(MEMBERS_SQL)).await.map_err(fail)? {
        let column = |i| text(&row, i, database).map(Option::unwrap_or_default);
        let entry = members.entry(column(0)?).or_insert_with(|| (String::new(), BTreeMap::new()));
        entry.0 = column(1)?;
        entry.1.insert(column(2)?, column(3)?);
    }
    Ok(members)
}

/// The members of `extensions` created again, in the order they were, in a scratch database
/// made from `template0` (which holds plpgsql) of the server `options` reach, removed after. That
/// server must be one no backup touched: a restore as a superuser can write `template0` too
/// (`datallowconn`, then `\connect`, or dblink), and make its own function a member there.
pub(crate) async fn fresh_members(
    options: &PgConnectOptions,
    maintenance: &str,
    extensions: &[Extension],
) -> Result<Members, CatalogError> {
    let scratch = format!("pgdrill_members_{:016x}", rand::random::<u64>());
    let fail = |source: sqlx::Error| CatalogError::Scratch { action: "create a scratch database", source };
    let mut admin = connect(options, maintenance).await?;
    admin
        .execute(sqlx::raw_sql(&format!("CREATE DATABASE {} TEMPLATE template0", ident(&scratch))))
        .await
        .map_err(fail)?;
    let read = async {
        let mut conn = connect(options, &scratch).await?;
        for e in extensions {
            let mut create =
                format!("CREATE EXTENSION IF NOT EXISTS {} VERSION {}", ident(&e.name), literal(&e.version));
            if !e.owns_schema {
                // Not `IF NOT EXISTS`: a `pg_` name (plpgsql's `pg_catalog`) is refused even so.
                let exists = format!(
                    "SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) {}",
                    literal(&e.schema)
                );
                let schema = format!("CREATE SCHEMA {}", ident(&e.schema));
                let create_schema = async {
                    if conn.fetch_optional(sqlx::raw_sql(&exists)).await?.is_none() {
                        conn.execute(sqlx::raw_sql(&schema)).await?;
                    }
                    Ok(())
                };
                create_schema
                    .await
                    .map_err(|source| CatalogError::Scratch { action: "create an extension's schema", source })?;
                create.push_str(&format!(" SCHEMA {}", ident(&e.schema)));
            }
            conn.execute(sqlx::raw_sql(&create))
                .await
                .map_err(|source| CatalogError::Scratch { action: "create an extension again", source })?;
        }
        let members = read_members(&mut conn, &scratch).await;
        conn.close().await.ok();
        members
    };
    let members = read.await;
    let dropped =
        admin.execute(sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&scratch)))).await;
    admin.close().await.ok();
    let members = members?;
    dropped.map_err(|source| CatalogError::Scratch { action: "drop the scratch database", source })?;
    Ok(members)
}

/// `name` as a quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as a SQL string literal (`standard_conforming_strings` is on in the audit's session).
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Members by extension, each member's definition empty.
    pub(in crate::catalog) fn members(list: &[(&str, &str, &[&str])]) -> Members {
        list.iter()
            .map(|(e, v, m)| {
                (e.to_string(), (v.to_string(), m.iter().map(|s| (s.to_string(), String::new())).collect()))
            })
            .collect()
    }

    #[test]
    fn names_and_versions_from_the_backup_are_quoted() {
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(literal("1.0'; DROP"), "'1.0''; DROP'");
    }

    #[test]
    fn the_cache_keeps_each_extension_by_what_create_extension_is_given() {
        let ext = |name: &str, version: &str, schema: &str| Extension {
            name: name.into(),
            version: version.into(),
            schema: schema.into(),
            owns_schema: false,
        };
        let (plpgsql, vector) = (ext("plpgsql", "1.0", "pg_catalog"), ext("vector", "0.8.0", "public"));
        let made = members(&[("plpgsql", "1.0", &["language plpgsql"]), ("vector", "0.8.0", &["type public.vector"])]);
        let mut kept = Kept::default();
        assert_eq!(kept.members_of(std::slice::from_ref(&plpgsql)), None);
        let other = Kept(BTreeMap::from([("age 1.5.0 in ag_catalog".to_owned(), BTreeMap::new())]));
        kept.add(&[plpgsql.clone(), vector.clone()], &made, Some(other));
        assert_eq!(kept.members_of(&[plpgsql.clone(), vector.clone()]), Some(made.clone()));
        assert!(kept.0.contains_key("age 1.5.0 in ag_catalog"), "{kept:?}");
        // Another version, or the same in another schema, is another reference.
        assert_eq!(kept.members_of(&[ext("vector", "0.7.0", "public")]), None);
        assert_eq!(kept.members_of(&[ext("vector", "0.8.0", "extensions")]), None);
    }
}
