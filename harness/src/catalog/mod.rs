//! The catalog audit: a backup restored as a superuser can change PostgreSQL's built-ins inside
//! `pg_catalog` itself (`CREATE OR REPLACE FUNCTION pg_catalog.lower(text)`, an overload or an
//! implicit cast that wins resolution, `ALTER FUNCTION pg_catalog.x SECURITY DEFINER`, even
//! `UPDATE pg_catalog.pg_proc`), and then every query pgdrill runs could lie, whatever its
//! `search_path`. So the drill fingerprints the catalog rows that name resolution and pgdrill's
//! reads depend on, before and after the restore, and names each difference.
//!
//! A fingerprint maps each row, by what the row is ("function pg_catalog.lower(text)"), to its
//! OID and a digest of its columns, owners and privileges left out (grants and owners
//! legitimately differ). It covers the built-in rows (OID below 16384, `FirstNormalObjectId`) of
//! the catalogs resolution reads, and the additions that could stand in for a built-in: anything
//! new in `pg_catalog` or `information_schema`, a cast between two built-in types, an operator or
//! support function added to a built-in operator family, a rule, trigger or policy on a
//! built-in relation.
//!
//! The audit must not be fooled by what it audits. Every name in its SQL is schema-qualified,
//! its session pins `search_path` (and the settings that change how a value prints) in the
//! startup packet, it first checks that the catalogs it reads are the real ones (a literal
//! `'1255'::regclass` is printed from the server's own cache), digests are computed by `md5`
//! whose own row is sent whole and compared, and rows are printed by C output functions, which
//! SQL cannot replace (they return `cstring`). What the backup could still redirect (a name, a
//! filter) can only move or drop a row, which shows as a difference.
//!
//! A leaf: it reads a database through connection options and compares fingerprints.

mod cache;
mod compare;
mod derived;
mod derived_sql;
mod members;
mod sql;
mod take;

use crate::outcome::CatalogAudit;
pub(crate) use cache::{cache_path, load, members_path, save};
pub(crate) use compare::{Change, compare};
pub(crate) use derived::{Derived, Written, read};
pub(crate) use members::{Extension, Kept, Members, fresh_members};
pub(crate) use take::fingerprint;
use take::take;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;

/// OIDs below this were given out by initdb: built-ins.
pub(crate) const FIRST_NORMAL_OBJECT_ID: u32 = 16384;

/// How many differences an error names before it says how many more there are.
const NAMED: usize = 10;

/// The catalogs the audit reads, by their fixed OIDs: a backup that renamed one and put a view
/// in its place is caught before anything is read.
const CATALOGS: [(u32, &str); 19] = [
    (1255, "pg_proc"),
    (1259, "pg_class"),
    (1247, "pg_type"),
    (1249, "pg_attribute"),
    (2615, "pg_namespace"),
    (2617, "pg_operator"),
    (2605, "pg_cast"),
    (2600, "pg_aggregate"),
    (2601, "pg_am"),
    (2616, "pg_opclass"),
    (2753, "pg_opfamily"),
    (2602, "pg_amop"),
    (2603, "pg_amproc"),
    (2612, "pg_language"),
    (2618, "pg_rewrite"),
    (2620, "pg_trigger"),
    (3256, "pg_policy"),
    (3456, "pg_collation"),
    (2607, "pg_conversion"),
];

/// One catalog row: its OID and the digest of its columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Row {
    pub oid: u32,
    pub digest: String,
    /// The extension it belongs to, for an addition that belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// The built-in catalog rows of one database, by what each row is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    pub rows: BTreeMap<String, Row>,
    /// The first and last OID of the collations initdb imported from its machine (between 12000
    /// and 16383): what initdb made after them has OIDs shifted by how many there were.
    #[serde(default)]
    pub imported_collations: Option<(u32, u32)>,
    /// Each catalog's rows in one digest (the functions that make it, whole): what a restored
    /// database is compared with first, its rows read by name only when one differs.
    #[serde(default)]
    pub summary: BTreeMap<String, String>,
}

impl Fingerprint {
    /// How many built-in rows it holds (additions not counted).
    pub(crate) fn built_in(&self) -> usize {
        self.rows.values().filter(|r| r.oid < FIRST_NORMAL_OBJECT_ID).count()
    }
}

/// Why the audit could not say whether the built-ins are intact, or what it found changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CatalogError {
    /// A query of the catalogs failed.
    #[error("cannot read the catalogs of database `{database}`")]
    Unreadable {
        database: String,
        #[source]
        source: sqlx::Error,
    },
    /// A value the catalogs returned does not read as text.
    #[error("cannot read the catalogs of database `{database}`")]
    Value {
        database: String,
        #[source]
        source: sqlx::error::BoxDynError,
    },
    /// The check that the catalogs read are the real ones returned nothing.
    #[error("cannot read the catalogs of database `{database}`: the catalog check returned no row")]
    NoCheck { database: String },
    /// The database is not there (a base backup's cluster without it).
    #[error("database `{database}` does not exist")]
    Missing { database: String },
    /// A catalog the audit reads is not the one of its OID.
    #[error(
        "database `{database}`: the system object with OID {oid} is `{found}`, not `{expected}`: the backup renamed a system catalog (with allow_system_table_mods)"
    )]
    Renamed { database: String, oid: u32, expected: &'static str, found: String },
    /// The restored database's built-ins differ from the reference's.
    #[error("{}", changed_message(.changes, .databases))]
    Changed { changes: Vec<Change>, databases: Vec<String> },
    /// The restored database's catalog holds flags its DDL would not have made: PostgreSQL acts
    /// on them while the checks would read the objects they derive from.
    #[error("{}", written_message(.database, .written))]
    Written { database: String, written: Vec<Written> },
    /// The scratch database of a fresh cluster, whose extensions' members are the reference,
    /// could not be made.
    #[error("cannot {action} on a fresh cluster to compare the extensions' members with")]
    Scratch {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The cached reference cannot be read or written.
    #[error("cannot use the cached reference `{}`", .path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cached reference is not what it should be, or cannot be written as JSON.
    #[error("cannot use the cached reference `{}`", .path.display())]
    CacheJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn changed_message(changes: &[Change], databases: &[String]) -> String {
    let list: Vec<String> = databases.iter().map(|d| format!("`{d}`")).collect();
    let mut message = format!(
        "the backup changed PostgreSQL's built-ins (in database {}): pgdrill's own queries could not be trusted, so no check runs",
        list.join(", ")
    );
    message.push_str("\n  - ");
    message.push_str(&crate::listing::and_more(
        changes.iter().take(NAMED).map(ToString::to_string),
        changes.len(),
        "\n  - ",
    ));
    message
}

/// How many writes an error names before it says how many more there are.
const WRITES_NAMED: usize = 20;

fn written_message(database: &str, written: &[Written]) -> String {
    let mut message = format!(
        "database `{database}`: the catalog PostgreSQL acts on is not the one the backup's DDL would make (pg_catalog was written directly): the checks would read one thing and PostgreSQL do another, so no check runs"
    );
    message.push_str("\n  - ");
    message.push_str(&crate::listing::and_more(
        written.iter().take(WRITES_NAMED).map(ToString::to_string),
        written.len(),
        "\n  - ",
    ));
    message
}

impl CatalogAudit {
    /// For a phase's summary and the report.
    pub fn summary(&self) -> String {
        let list: Vec<String> = self.databases.iter().map(|d| format!("`{d}`")).collect();
        let mut summary = format!(
            "catalog audit: {} built-in catalog rows unchanged in {} (against {}), {}",
            self.rows,
            list.join(" and "),
            self.reference,
            match self.extra.len() {
                0 => "nothing added to pg_catalog".to_owned(),
                n => format!(
                    "and the backup has {n} built-in function{} it lacks, under names none of its functions has, as a cluster of a newer minor release does (no query of pgdrill's can call them): {}",
                    if n == 1 { "" } else { "s" },
                    crate::listing::first(&self.extra, 5, ", ")
                ),
            }
        );
        if !self.absent.is_empty() {
            summary.push_str(&format!(
                "; the backup lacks {} of its built-ins, as a cluster of another minor release does: {}",
                self.absent.len(),
                crate::listing::first(&self.absent, 5, ", ")
            ));
        }
        summary
    }
}

/// Fingerprints each of `databases` and compares it with `reference`; every difference in
/// every database is named in the error.
pub(crate) async fn audit(
    options: &PgConnectOptions,
    reference: &Fingerprint,
    reference_name: &str,
    databases: &[String],
) -> Result<CatalogAudit, CatalogError> {
    let mut databases: Vec<String> = databases.to_vec();
    databases.dedup();
    // The catalogs' digests first; rows by name only where one differs.
    let taken = futures_util::future::join_all(databases.iter().map(|d| async move {
        let summary = take(options, d, false).await?;
        if summary.imported_collations == reference.imported_collations
            && !reference.summary.is_empty()
            && summary.summary == reference.summary
        {
            return Ok((None, Vec::new()));
        }
        let differ: Vec<String> = summary
            .summary
            .iter()
            .filter(|(catalog, digest)| reference.summary.get(*catalog) != Some(*digest))
            .map(|(catalog, _)| catalog.clone())
            .collect();
        Ok((Some(take(options, d, true).await?), differ))
    }))
    .await;
    let mut changes = Vec::new();
    let mut failed = Vec::new();
    let mut rows = 0;
    let mut audited = Vec::new();
    let mut absent: Vec<String> = Vec::new();
    let mut extra: Vec<String> = Vec::new();
    for (database, fingerprint) in databases.iter().zip(taken) {
        let (fingerprint, differ) = match fingerprint {
            // The checks say so; the others are audited.
            Err(CatalogError::Missing { .. }) if databases.len() > 1 => continue,
            taken => taken?,
        };
        audited.push(database.clone());
        let Some(fingerprint) = fingerprint else {
            // Every catalog's digest is the reference's.
            rows = rows.max(reference.built_in());
            continue;
        };
        rows = rows.max(fingerprint.built_in());
        let mut found = compare(reference, &fingerprint);
        // Same rows, other digests: what orders or digests them was redirected.
        if found.is_empty() && !differ.is_empty() && fingerprint.imported_collations == reference.imported_collations {
            found = differ.into_iter().map(|c| Change::Changed { what: format!("how catalog {c} reads") }).collect();
        }
        let Some(found) = another_minor(found, reference, &fingerprint, &mut absent, &mut extra) else {
            continue;
        };
        if !found.is_empty() {
            failed.push(database.clone());
            for change in found {
                if !changes.contains(&change) {
                    changes.push(change);
                }
            }
        }
    }
    if !changes.is_empty() {
        return Err(CatalogError::Changed { changes, databases: failed });
    }
    if audited.is_empty() {
        return Err(CatalogError::Missing { database: databases.join("`, `") });
    }
    Ok(CatalogAudit { rows, databases: audited, reference: reference_name.to_owned(), absent, extra })
}

/// Differences that are only another minor release's cluster (built-ins it lacks, functions
/// initdb added under names none of the reference's has) are said, not failed: noted in `absent`
/// and `extra`, and `None` returned; any other, all of them are.
fn another_minor(
    found: Vec<Change>,
    reference: &Fingerprint,
    fingerprint: &Fingerprint,
    absent: &mut Vec<String>,
    extra: &mut Vec<String>,
) -> Option<Vec<Change>> {
    let (newer, found): (Vec<Change>, Vec<Change>) =
        found.into_iter().partition(|c| compare::of_a_newer_minor(c, reference, fingerprint));
    if !found.iter().all(|c| matches!(c, Change::Removed { .. })) {
        return Some(found.into_iter().chain(newer).collect());
    }
    for change in found.into_iter().chain(newer) {
        let (list, what) = match change {
            Change::Added { what, .. } => (&mut *extra, what),
            Change::Removed { what } | Change::Changed { what } => (&mut *absent, what),
        };
        if !list.contains(&what) {
            list.push(what);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::compare::tests::{print, row};
    use super::*;

    #[test]
    fn the_error_names_ten_differences_and_counts_the_rest() {
        let changes: Vec<Change> =
            (0..13).map(|i| Change::Added { what: format!("function pg_catalog.f{i}()"), extension: None }).collect();
        let message = CatalogError::Changed { changes, databases: vec!["plur".into(), "postgres".into()] }.to_string();
        assert!(message.starts_with("the backup changed PostgreSQL's built-ins (in database `plur`, `postgres`)"));
        assert!(message.contains("\n  - the backup added function pg_catalog.f9()"), "{message}");
        assert!(!message.contains("f10()"), "{message}");
        assert!(message.ends_with("\n  - and 3 more"), "{message}");
    }

    #[test]
    fn a_reference_survives_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalogs/abc.json");
        assert_eq!(load::<Fingerprint>(&path).unwrap(), None);
        let print = print(&[("type pg_catalog.int4", row(23, "aa"))], Some((12351, 13223)));
        save(&path, &print).unwrap();
        assert_eq!(load(&path).unwrap(), Some(print));
        let path = cache_path("sha256:693b62c8f905").display().to_string();
        assert!(path.contains("pgdrill/catalogs/693b62c8f905-") && path.ends_with(".json"), "{path}");
    }
}
