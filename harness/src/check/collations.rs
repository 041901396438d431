//! `collations`: the collation versions the restored databases record are those of the target's
//! own libraries. Text sorts by the rules of the C library (or ICU) the server runs on; a btree
//! index on text is built in that order. Restore a physical backup onto another OS release (a
//! cluster made on Debian 11, glibc 2.31, restored on Debian 13, glibc 2.41) and every text index
//! is silently out of order: lookups miss rows, unique indexes let duplicates in. PostgreSQL
//! records the version each collation had when it was set up; this check compares it with the
//! version the target's libraries give, and names what to rebuild.
//!
//! ```toml
//! [checks.collations]   # no keys
//! ```
//!
//! For each database, two results:
//! - `collations/<database>`: its default collation, `pg_database.datcollversion` against
//!   `pg_database_collation_actual_version(oid)`; a mismatch fails naming the indexes with a key
//!   under the default collation;
//! - `collations/<database>/pg_collation`: every collation of `pg_collation` usable in it that
//!   records a `collversion`, against `pg_collation_actual_version(oid)`; a mismatch fails naming
//!   each collation, its versions and the indexes with a key under it.
//!
//! The hint says how to repair: `REINDEX` the listed indexes, then `ALTER DATABASE ... REFRESH
//! COLLATION VERSION` or `ALTER COLLATION ... REFRESH VERSION`. A collation that records no
//! version (C, POSIX, and `template0`, which PostgreSQL leaves unversioned) has nothing to compare
//! and passes, saying so.
//!
//! Which databases: every database of a container or local target, since after a physical
//! restore the whole cluster is the backup (after a dump restore the others are the image's own,
//! and pass); a database that takes no connections (`template0`) gets its default collation
//! compared, from the shared `pg_database`, and no `pg_collation` result. On a shared server only
//! the drilled database: the rest of that server is neither the backup nor the drill's to judge.
//! It needs PostgreSQL 15 or newer (`datcollversion`).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Deserialize;
use sqlx::Connection;

use super::{CheckContext, CheckError, CheckResult, CheckResultBuilder, Kind, ResolveContext};
use crate::field::FieldError;
use crate::outcome::CheckKind;
use crate::pg::{describe_sql_error, quote_ident_if_needed, quote_literal};

crate::outcome::findings! {
    /// What `collations` finds.
    pub(crate) enum Found for Collations {
        Match = Pass "collations.match"
            "The collation versions the database records are the target's libraries' own (or it records none)."
            "Nothing.",
        Mismatch = Fail "collations.mismatch"
            "A recorded collation version is not the target's libraries': text indexes built by other rules may miss rows."
            "REINDEX the indexes listed, then `ALTER DATABASE ... REFRESH COLLATION VERSION` (or `ALTER COLLATION ... REFRESH VERSION`); or drill on the source's libraries.",
        CouldNotRead = Error "collations.could-not-read"
            "The collations of a database could not be read."
            "Read the database's answer in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Collations;

/// `pg_collation`'s `default`: a key under it sorts by its database's default collation.
const DEFAULT_COLLATION_OID: i64 = 100;

/// Collations named in a message; the rest are counted.
const LISTED: usize = 10;
/// Indexes named per collation; the rest are counted.
const LISTED_INDEXES: usize = 20;

/// Each database's default collation, as recorded and as the target's libraries give it
/// (`$1`: one database's name, or NULL for all). The locale column exists under another name
/// before PostgreSQL 17 (`daticulocale`), hence `to_jsonb`.
const DATABASES_SQL: &str = "SELECT d.datname::text, d.datlocprovider::text, \
     coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale', d.datcollate::text), \
     d.datcollversion, pg_catalog.pg_database_collation_actual_version(d.oid), d.datallowconn \
     FROM pg_catalog.pg_database d WHERE $1::text IS NULL OR d.datname = $1 ORDER BY 1";

/// Every index of a database with the collations of its keys.
const INDEXES_SQL: &str = "SELECT DISTINCT c.coll::int8, format('%I.%I', n.nspname, i.relname) \
     FROM pg_catalog.pg_index x \
     JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace \
     CROSS JOIN LATERAL unnest(x.indcollation::oid[]) AS c(coll) \
     WHERE c.coll <> 0 ORDER BY 2";

/// The collations usable in a database (its encoding's and any encoding's), but `default`, with
/// their recorded and actual versions.
const COLLATIONS_SQL: &str = "SELECT c.oid::int8, format('%I.%I', n.nspname, c.collname), c.collversion, \
     CASE WHEN c.collversion IS NOT NULL THEN pg_catalog.pg_collation_actual_version(c.oid) END \
     FROM pg_catalog.pg_collation c JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace \
     WHERE c.oid <> 100 \
     AND c.collencoding IN (-1, pg_catalog.pg_char_to_encoding(pg_catalog.getdatabaseencoding())) ORDER BY 2";

/// No keys: `[checks.collations]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CollationsCheck")]
pub(crate) struct Config {}

#[derive(Debug, Clone)]
pub(crate) struct Spec;

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(_config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        Ok(Spec)
    }

    fn label(&self) -> String {
        "every database".into()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let databases = read_databases(ctx)
            .await
            .map_err(|e| e.expected("every recorded collation version is the target's").evidence(DATABASES_SQL))?;
        let mut results = Vec::new();
        for database in &databases {
            let started = Instant::now();
            let catalog = match database.connectable {
                true => Some(read_catalog(ctx, &database.name).await),
                false => None,
            };
            let indexes = match &catalog {
                Some(Ok(catalog)) => Indexes::Read(catalog.indexes_under(DEFAULT_COLLATION_OID)),
                Some(Err(e)) => Indexes::Unread(format!(
                    "its indexes could not be read: {}",
                    ctx.redactor.redact(&describe_sql_error(e))
                )),
                None => Indexes::Unread("its indexes were not read: it takes no connections".into()),
            };
            let mut evidence = format!(
                "SELECT datcollversion, pg_database_collation_actual_version(oid) FROM pg_database WHERE datname = {}",
                quote_literal(&database.name)
            );
            if database.connectable {
                evidence.push_str(&format!(
                    "; /* database {} */ SELECT indexrelid::regclass FROM pg_index \
                     WHERE {DEFAULT_COLLATION_OID} = ANY (indcollation::oid[])",
                    database.name
                ));
            }
            let result = CheckResult::build(KIND, database.name.clone(), started)
                .expected("the version the target's libraries give")
                .evidence(evidence);
            results.push(judge_database(database, &indexes, result));
            if let Some(catalog) = catalog {
                let result = CheckResult::build(KIND, format!("{}/pg_collation", database.name), started)
                    .expected("every recorded version is the one the target's libraries give")
                    .evidence(format!(
                        "/* database {} */ SELECT collname, collversion, pg_collation_actual_version(oid) \
                         FROM pg_collation WHERE collversion IS NOT NULL",
                        database.name
                    ));
                results.push(match catalog {
                    Ok(catalog) => {
                        let (versioned, unversioned) = catalog.counts();
                        judge_collations(&database.name, &catalog.mismatched(), versioned, unversioned, result)
                    }
                    Err(message) => result.found(
                        Found::CouldNotRead,
                        format!("could not read the collations of database `{}`: {message}", database.name),
                    ),
                });
            }
        }
        Ok(results)
    }
}

/// A database's default collation, as `pg_database` records it and the target's libraries give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DatabaseCollation {
    pub name: String,
    /// The provider and locale, as a reader knows them: `libc en_US.UTF-8`, `icu und`.
    pub locale: String,
    pub recorded: Option<String>,
    pub actual: Option<String>,
    pub connectable: bool,
}

/// A collation whose recorded version is not the target's, and the indexes with a key under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// Schema-qualified, quoted where needed: `pg_catalog."en_US"`.
    pub name: String,
    pub recorded: String,
    pub actual: Option<String>,
    pub indexes: Vec<String>,
}

/// The indexes under a database's default collation, when they could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Indexes {
    Read(Vec<String>),
    /// Why they are unknown.
    Unread(String),
}

/// What one database's own catalog says.
struct Catalog {
    /// Collation oid to the indexes with a key under it.
    indexes: BTreeMap<i64, Vec<String>>,
    /// Collations with their name, recorded and actual versions.
    collations: Vec<(i64, String, Option<String>, Option<String>)>,
}

impl Catalog {
    fn indexes_under(&self, collation: i64) -> Vec<String> {
        self.indexes.get(&collation).cloned().unwrap_or_default()
    }

    fn mismatched(&self) -> Vec<Mismatch> {
        self.collations
            .iter()
            .filter_map(|(oid, name, recorded, actual)| {
                let recorded = recorded.as_ref()?;
                (Some(recorded) != actual.as_ref()).then(|| Mismatch {
                    name: name.clone(),
                    recorded: recorded.clone(),
                    actual: actual.clone(),
                    indexes: self.indexes_under(*oid),
                })
            })
            .collect()
    }

    /// Collations that record a version, and those that record none.
    fn counts(&self) -> (usize, usize) {
        let versioned = self.collations.iter().filter(|c| c.2.is_some()).count();
        (versioned, self.collations.len() - versioned)
    }
}

/// The databases to judge: the drilled one first, then the others by name (on a shared server,
/// the drilled one only).
async fn read_databases(ctx: &CheckContext<'_>) -> Result<Vec<DatabaseCollation>, CheckError> {
    let fail = |e: sqlx::Error| CheckError::sql("cannot read the databases' collation versions", e);
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(ctx.pool)
        .await
        .map_err(fail)?;
    if version < 150000 {
        return Err(CheckError::new(format!(
            "the target runs PostgreSQL {}, which records no database collation version: the check needs 15 or newer",
            version / 10000
        )));
    }
    let only = ctx.target.database_suffix.is_some().then_some(ctx.database);
    /// Name, provider, locale, recorded and actual versions, whether it takes connections.
    type DatabaseRow = (String, String, Option<String>, Option<String>, Option<String>, bool);
    let rows: Vec<DatabaseRow> = sqlx::query_as(DATABASES_SQL).bind(only).fetch_all(ctx.pool).await.map_err(fail)?;
    let mut databases: Vec<DatabaseCollation> = rows
        .into_iter()
        .map(|(name, provider, locale, recorded, actual, connectable)| DatabaseCollation {
            name,
            locale: format!("{} {}", provider_name(&provider), locale.unwrap_or_default()),
            recorded,
            actual,
            connectable,
        })
        .collect();
    databases.sort_by_key(|d| d.name != ctx.database);
    Ok(databases)
}

fn provider_name(code: &str) -> &str {
    match code {
        "c" => "libc",
        "i" => "icu",
        "b" => "builtin",
        other => other,
    }
}

/// A database's indexes and collations: on the check's pool for the drilled database, on a
/// connection of its own for another.
async fn read_catalog(ctx: &CheckContext<'_>, database: &str) -> sqlx::Result<Catalog> {
    if database == ctx.database {
        let mut conn = ctx.pool.acquire().await?;
        return catalog_of(&mut conn).await;
    }
    let mut conn = sqlx::PgConnection::connect_with(&ctx.target.connect_options(database)).await?;
    let catalog = catalog_of(&mut conn).await;
    conn.close().await.ok();
    catalog
}

async fn catalog_of(conn: &mut sqlx::PgConnection) -> sqlx::Result<Catalog> {
    let mut indexes: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (collation, index) in sqlx::query_as::<_, (i64, String)>(INDEXES_SQL).fetch_all(&mut *conn).await? {
        indexes.entry(collation).or_default().push(index);
    }
    let collations = sqlx::query_as(COLLATIONS_SQL).fetch_all(&mut *conn).await?;
    Ok(Catalog { indexes, collations })
}

/// `a, b, c` of at most `LISTED_INDEXES` names, and how many more.
fn list_indexes(indexes: &[String]) -> String {
    crate::listing::and_more(indexes.iter().take(LISTED_INDEXES), indexes.len(), ", ")
}

/// How to repair one collation: rebuild what depends on it, then record the new version.
fn repair(indexes: &Indexes, refresh: &str) -> String {
    match indexes {
        Indexes::Read(list) if list.is_empty() => format!("no index depends on it: `{refresh}`"),
        Indexes::Read(list) if list.len() == 1 => format!("`REINDEX INDEX {}`, then `{refresh}`", list[0]),
        Indexes::Read(list) => {
            format!("REINDEX the {} listed indexes (`REINDEX INDEX {}`, ...), then `{refresh}`", list.len(), list[0])
        }
        Indexes::Unread(_) => format!("REINDEX every index with a text key under it, then `{refresh}`"),
    }
}

/// A database's default collation: its recorded version against the target's.
pub(crate) fn judge_database(db: &DatabaseCollation, indexes: &Indexes, result: CheckResultBuilder) -> CheckResult {
    let who = format!("database `{}` ({})", db.name, db.locale);
    let Some(recorded) = &db.recorded else {
        let locale = db.locale.rsplit(' ').next().unwrap_or_default();
        let bytewise = matches!(locale, "C" | "POSIX") || locale.starts_with("C.");
        let why = if bytewise { " (C and POSIX sort by bytes, whatever the library)" } else { "" };
        return result
            .actual(format!("no version recorded ({})", db.locale))
            .found(Found::Match, format!("{who} records no collation version: there is none to compare{why}"));
    };
    if db.actual.as_ref() == Some(recorded) {
        return result
            .actual(recorded.clone())
            .found(Found::Match, format!("{who} records collation version {recorded}, the target's libraries' own"));
    }
    let actual = db.actual.clone().unwrap_or_else(|| "none".into());
    let under = match indexes {
        Indexes::Read(list) if list.is_empty() => "no index has a key under it".to_owned(),
        Indexes::Read(list) => format!("indexes under it: {}", list_indexes(list)),
        Indexes::Unread(why) => why.clone(),
    };
    let refresh = format!("ALTER DATABASE {} REFRESH COLLATION VERSION", quote_ident_if_needed(&db.name));
    result.actual(format!("recorded {recorded}, the target's libraries {actual}")).found(
        Found::Mismatch,
        format!(
            "{who} records collation version {recorded} and the target's libraries give {actual}: text sorts by other \
             rules now, and an index built under {recorded} can miss rows or let duplicates in; {under} (hint: {})",
            repair(indexes, &refresh)
        ),
    )
}

/// A database's other collations: every recorded version against the target's; `versioned`
/// collations record a version, `unversioned` ones none.
pub(crate) fn judge_collations(
    database: &str,
    mismatched: &[Mismatch],
    versioned: usize,
    unversioned: usize,
    result: CheckResultBuilder,
) -> CheckResult {
    if mismatched.is_empty() && versioned == 0 {
        return result.actual(format!("no version recorded ({unversioned} collations)")).found(
            Found::Match,
            format!("no collation of database `{database}` records a version: there is none to compare"),
        );
    }
    if mismatched.is_empty() {
        return result
            .actual(format!("{versioned} with a recorded version, all the target's ({unversioned} record none)"))
            .found(
                Found::Match,
                format!(
                    "the {versioned} collations of database `{database}` that record a version are at the target's \
                     libraries' version"
                ),
            );
    }
    // Those that indexes depend on first: they are what a REINDEX must repair.
    let mut ordered: Vec<&Mismatch> = mismatched.iter().collect();
    ordered.sort_by_key(|m| m.indexes.is_empty());
    let listed: Vec<String> = ordered
        .iter()
        .take(LISTED)
        .map(|m| {
            let actual = m.actual.as_deref().unwrap_or("none");
            let under = match m.indexes.as_slice() {
                [] => "no index uses it".to_owned(),
                list => format!("indexes under it: {}", list_indexes(list)),
            };
            format!("`{}` records {} and the target's libraries give {actual}, {under}", m.name, m.recorded)
        })
        .collect();
    let more = ordered.len().saturating_sub(LISTED);
    let more = match more {
        0 => String::new(),
        n => {
            let used = ordered.iter().skip(LISTED).filter(|m| !m.indexes.is_empty()).count();
            format!("; and {n} more ({used} with indexes)")
        }
    };
    let hint = match ordered.as_slice() {
        [one] => repair(&Indexes::Read(one.indexes.clone()), &format!("ALTER COLLATION {} REFRESH VERSION", one.name)),
        _ => "REINDEX the indexes listed under each collation, then `ALTER COLLATION <name> REFRESH VERSION` for each"
            .into(),
    };
    result.actual(format!("{} of {versioned} differ", mismatched.len())).found(
        Found::Mismatch,
        format!(
            "database `{database}` has collations whose recorded version is not the target's: {}{more} (hint: {hint})",
            listed.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::outcome::Verdict;

    fn builder() -> CheckResultBuilder {
        CheckResult::build(KIND, "books", Instant::now())
    }

    fn db(recorded: Option<&str>, actual: Option<&str>) -> DatabaseCollation {
        DatabaseCollation {
            name: "books".into(),
            locale: "libc en_US.UTF-8".into(),
            recorded: recorded.map(Into::into),
            actual: actual.map(Into::into),
            connectable: true,
        }
    }

    fn read(list: &[&str]) -> Indexes {
        Indexes::Read(list.iter().map(|s| s.to_string()).collect())
    }

    #[rstest]
    #[case::same(db(Some("2.41"), Some("2.41")), read(&["public.ledger_batch_idx"]), Verdict::Pass, "2.41", &["records collation version 2.41, the target's libraries' own"])]
    #[case::none_recorded(db(None, Some("2.41")), read(&[]), Verdict::Pass, "no version recorded (libc en_US.UTF-8)", &["records no collation version: there is none to compare"])]
    #[case::c_locale(
        DatabaseCollation { locale: "libc C".into(), ..db(None, None) },
        read(&[]),
        Verdict::Pass,
        "no version recorded (libc C)",
        &["records no collation version: there is none to compare (C and POSIX sort by bytes"]
    )]
    #[case::older_glibc(
        db(Some("2.31"), Some("2.41")),
        read(&["public.ledger_batch_idx"]),
        Verdict::Fail,
        "recorded 2.31, the target's libraries 2.41",
        &["database `books` (libc en_US.UTF-8) records collation version 2.31 and the target's libraries give 2.41",
          "indexes under it: public.ledger_batch_idx",
          "(hint: `REINDEX INDEX public.ledger_batch_idx`, then `ALTER DATABASE books REFRESH COLLATION VERSION`)"]
    )]
    #[case::several_indexes(
        db(Some("2.31"), Some("2.41")),
        read(&["public.a", "public.b"]),
        Verdict::Fail,
        "recorded 2.31, the target's libraries 2.41",
        &["indexes under it: public.a, public.b", "REINDEX the 2 listed indexes (`REINDEX INDEX public.a`, ...)"]
    )]
    #[case::no_index(db(Some("2.31"), Some("2.41")), read(&[]), Verdict::Fail, "recorded 2.31, the target's libraries 2.41", &["no index has a key under it", "(hint: no index depends on it: `ALTER DATABASE books"])]
    #[case::no_actual(db(Some("2.31"), None), read(&[]), Verdict::Fail, "recorded 2.31, the target's libraries none", &["the target's libraries give none"])]
    #[case::unread(
        db(Some("2.31"), Some("2.41")),
        Indexes::Unread("its indexes were not read: it takes no connections".into()),
        Verdict::Fail,
        "recorded 2.31, the target's libraries 2.41",
        &["its indexes were not read", "REINDEX every index with a text key under it"]
    )]
    fn a_database_passes_only_at_the_targets_version(
        #[case] db: DatabaseCollation,
        #[case] indexes: Indexes,
        #[case] verdict: Verdict,
        #[case] actual: &str,
        #[case] says: &[&str],
    ) {
        let result = judge_database(&db, &indexes, builder());
        assert_eq!((result.verdict, result.actual.as_str()), (verdict, actual), "{result:?}");
        let code = if verdict == Verdict::Pass { "collations.match" } else { "collations.mismatch" };
        assert_eq!(result.code, code);
        for text in says {
            assert!(result.message.contains(text), "`{text}` not in {}", result.message);
        }
    }

    fn mismatch(name: &str, indexes: &[&str]) -> Mismatch {
        Mismatch {
            name: name.into(),
            recorded: "2.31".into(),
            actual: Some("2.41".into()),
            indexes: indexes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[rstest]
    #[case::none_versioned(vec![], (0, 4), Verdict::Pass, "no version recorded (4 collations)", &["none to compare"])]
    #[case::all_match(vec![], (875, 4), Verdict::Pass, "875 with a recorded version, all the target's (4 record none)", &["the 875 collations of database `books`"])]
    #[case::one_with_an_index(
        vec![mismatch("public.legacy", &["public.names_idx"])],
        (875, 4),
        Verdict::Fail,
        "1 of 875 differ",
        &["`public.legacy` records 2.31 and the target's libraries give 2.41, indexes under it: public.names_idx",
          "(hint: `REINDEX INDEX public.names_idx`, then `ALTER COLLATION public.legacy REFRESH VERSION`)"]
    )]
    #[case::used_ones_first(
        vec![mismatch("pg_catalog.\"de_DE\"", &[]), mismatch("public.legacy", &["public.names_idx"])],
        (875, 4),
        Verdict::Fail,
        "2 of 875 differ",
        &["has collations whose recorded version is not the target's: `public.legacy` records",
          "; `pg_catalog.\"de_DE\"` records 2.31 and the target's libraries give 2.41, no index uses it",
          "for each"]
    )]
    fn named_collations_are_listed_with_what_depends_on_them(
        #[case] mismatched: Vec<Mismatch>,
        #[case] counts: (usize, usize),
        #[case] verdict: Verdict,
        #[case] actual: &str,
        #[case] says: &[&str],
    ) {
        let result = judge_collations("books", &mismatched, counts.0, counts.1, builder());
        assert_eq!((result.verdict, result.actual.as_str()), (verdict, actual), "{result:?}");
        let code = if verdict == Verdict::Pass { "collations.match" } else { "collations.mismatch" };
        assert_eq!(result.code, code);
        for text in says {
            assert!(result.message.contains(text), "`{text}` not in {}", result.message);
        }
    }

    #[test]
    fn many_mismatches_are_counted_past_the_listed_ones() {
        let mut many: Vec<Mismatch> = (0..30).map(|i| mismatch(&format!("pg_catalog.c{i:02}"), &[])).collect();
        many.push(mismatch("public.legacy", &["public.names_idx"]));
        let result = judge_collations("books", &many, 875, 4, builder());
        assert!(result.message.contains(": `public.legacy` records"), "{}", result.message);
        assert!(result.message.contains("; and 21 more (0 with indexes)"), "{}", result.message);
        assert!(!result.message.contains("pg_catalog.c09"), "{}", result.message);
    }

    #[test]
    fn the_catalog_pairs_each_collation_with_its_indexes() {
        let catalog = Catalog {
            indexes: [(100, vec!["public.a".to_owned()]), (20001, vec!["public.b".to_owned()])].into(),
            collations: vec![
                (950, "pg_catalog.\"C\"".into(), None, None),
                (20001, "public.legacy".into(), Some("2.31".into()), Some("2.41".into())),
                (20002, "public.same".into(), Some("2.41".into()), Some("2.41".into())),
                (20003, "public.gone".into(), Some("153.1".into()), None),
            ],
        };
        assert_eq!(catalog.counts(), (3, 1));
        let mismatched = catalog.mismatched();
        assert_eq!(mismatched.len(), 2, "{mismatched:?}");
        assert_eq!(
            (mismatched[0].name.as_str(), mismatched[0].indexes.as_slice()),
            ("public.legacy", &["public.b".to_owned()][..])
        );
        assert_eq!((mismatched[1].name.as_str(), mismatched[1].actual.as_deref()), ("public.gone", None));
        assert_eq!(catalog.indexes_under(DEFAULT_COLLATION_OID), ["public.a"]);
    }
}
