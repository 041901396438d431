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

pub(crate) use cache::{cache_path, load, save};

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

/// Columns of the catalogs that hold an owner or privileges, without them.
const PROC_COLUMNS: &str = "p.oid, p.proname, p.pronamespace, p.prolang, p.procost, p.prorows, p.provariadic, \
    p.prosupport, p.prokind, p.prosecdef, p.proleakproof, p.proisstrict, p.proretset, p.provolatile, p.proparallel, \
    p.pronargs, p.pronargdefaults, p.prorettype, p.proargtypes, p.proallargtypes, p.proargmodes, p.proargnames, \
    p.proargdefaults, p.protrftypes, p.prosrc, p.probin, p.prosqlbody, p.proconfig";

/// The fingerprint's SQL: one row per catalog row, `(kind, identity, oid, digest, extension)`;
/// or, `summary`, one row per catalog, `(catalog, digest of its rows in OID order)`, which
/// costs no naming and no transfer (the functions that make it, md5 and string_agg, are sent
/// whole, as their own rows).
/// The schemas of PostgreSQL's own objects: pg_catalog and information_schema.
const NS: &str = "(11::pg_catalog.oid, 'information_schema'::pg_catalog.regnamespace::pg_catalog.oid)";
const LT: &str = "OPERATOR(pg_catalog.<)";
const GE: &str = "OPERATOR(pg_catalog.>=)";
const EQ: &str = "OPERATOR(pg_catalog.=)";
/// The first OID of objects made after initdb.
const NORMAL: &str = "16384::pg_catalog.oid";

/// The digest of a catalog row's `row` columns.
fn md5(row: &str) -> String {
    format!("pg_catalog.md5(ROW({row})::pg_catalog.text)")
}

/// The catalogs compared: (class oid, alias, catalog, digest of a row, which rows are built in).
fn catalogs() -> Vec<(u32, &'static str, &'static str, String, String)> {
    vec![
        (1255, "p", "pg_proc", md5(PROC_COLUMNS), format!("p.oid {LT} {NORMAL} OR p.pronamespace IN {NS}")),
        (
            1247,
            "t",
            "pg_type",
            md5("t.oid, t.typname, t.typnamespace, t.typlen, t.typbyval, t.typtype, t.typcategory, \
                 t.typispreferred, t.typisdefined, t.typdelim, t.typrelid, t.typsubscript, t.typelem, t.typarray, \
                 t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze, \
                 t.typalign, t.typstorage, t.typnotnull, t.typbasetype, t.typtypmod, t.typndims, t.typcollation, \
                 t.typdefaultbin, t.typdefault"),
            format!("t.oid {LT} {NORMAL} OR t.typnamespace IN {NS}"),
        ),
        (
            2617,
            "o",
            "pg_operator",
            md5("o.oid, o.oprname, o.oprnamespace, o.oprkind, o.oprcanmerge, o.oprcanhash, o.oprleft, o.oprright, \
                 o.oprresult, o.oprcom, o.oprnegate, o.oprcode, o.oprrest, o.oprjoin"),
            format!("o.oid {LT} {NORMAL} OR o.oprnamespace IN {NS}"),
        ),
        // A cast between two built-in types changes how pgdrill's own expressions resolve.
        (
            2605,
            "c",
            "pg_cast",
            md5("c.*"),
            format!("c.oid {LT} {NORMAL} OR (c.castsource {LT} {NORMAL} AND c.casttarget {LT} {NORMAL})"),
        ),
        (2601, "m", "pg_am", md5("m.*"), format!("m.oid {LT} {NORMAL}")),
        (
            2616,
            "c",
            "pg_opclass",
            md5("c.oid, c.opcmethod, c.opcname, c.opcnamespace, c.opcfamily, c.opcintype, c.opcdefault, c.opckeytype"),
            format!("c.oid {LT} {NORMAL} OR c.opcnamespace IN {NS}"),
        ),
        (
            2753,
            "f",
            "pg_opfamily",
            md5("f.oid, f.opfmethod, f.opfname, f.opfnamespace"),
            format!("f.oid {LT} {NORMAL} OR f.opfnamespace IN {NS}"),
        ),
        (2602, "o", "pg_amop", md5("o.*"), format!("o.oid {LT} {NORMAL} OR o.amopfamily {LT} {NORMAL}")),
        (2603, "p", "pg_amproc", md5("p.*"), format!("p.oid {LT} {NORMAL} OR p.amprocfamily {LT} {NORMAL}")),
        (
            2612,
            "l",
            "pg_language",
            md5("l.oid, l.lanname, l.lanispl, l.lanpltrusted, l.lanplcallfoid, l.laninline, l.lanvalidator"),
            format!("l.oid {LT} {NORMAL}"),
        ),
        // `public` is the backup's to change.
        (
            2615,
            "n",
            "pg_namespace",
            md5("n.oid, n.nspname"),
            format!("n.oid {LT} {NORMAL} AND n.oid OPERATOR(pg_catalog.<>) 2200::pg_catalog.oid"),
        ),
        (
            1259,
            "c",
            "pg_class",
            md5("c.oid, c.relname, c.relnamespace, c.reltype, c.reloftype, c.relam, c.relkind, c.relnatts, \
                 c.relchecks, c.relhasrules, c.relhastriggers, c.relhassubclass, c.relrowsecurity, \
                 c.relforcerowsecurity, c.relispopulated, c.relreplident, c.relispartition, c.reloptions, \
                 c.relpersistence, c.relisshared"),
            format!("c.oid {LT} {NORMAL} OR c.relnamespace IN {NS}"),
        ),
        (2618, "r", "pg_rewrite", md5("r.*"), format!("r.oid {LT} {NORMAL} OR r.ev_class {LT} {NORMAL}")),
        (2620, "t", "pg_trigger", md5("t.*"), format!("t.tgrelid {LT} {NORMAL}")),
        (3256, "p", "pg_policy", md5("p.*"), format!("p.polrelid {LT} {NORMAL}")),
        (
            3456,
            "c",
            "pg_collation",
            md5("c.oid, c.collname, c.collnamespace"),
            format!("c.oid {GE} {NORMAL} AND c.collnamespace IN {NS}"),
        ),
        (
            2607,
            "c",
            "pg_conversion",
            md5("c.oid, c.conname, c.connamespace, c.conforencoding, c.contoencoding, c.conproc, c.condefault"),
            format!("c.oid {LT} {NORMAL} OR c.connamespace IN {NS}"),
        ),
    ]
}

fn fingerprint_sql(summary: bool) -> String {
    let parts = catalogs();
    // Naming costs: a summary names nothing.
    let named = |class: u32, oid: &str| {
        if summary {
            ("'', ''".to_owned(), String::new())
        } else {
            (
                "i.type, i.identity".to_owned(),
                format!(", LATERAL pg_catalog.pg_identify_object({class}::pg_catalog.oid, {oid}, 0) i"),
            )
        }
    };
    let mut branches: Vec<String> = parts
        .iter()
        .map(|(class, alias, catalog, digest, filter)| {
            let (name, lateral) = named(*class, &format!("{alias}.oid"));
            format!(
                "SELECT '{catalog}' AS catalog, {name}, {alias}.oid, 0::pg_catalog.int2 AS sub, \
                 {class}::pg_catalog.oid AS class, {digest} AS digest \
                 FROM pg_catalog.{catalog} {alias}{lateral} WHERE {filter}"
            )
        })
        .collect();
    // An aggregate's definition (its functions, its initial value) is a row of its own.
    let (name, lateral) = named(1255, "a.aggfnoid");
    let name = name.replacen("i.type", "'aggregate definition'", 1);
    branches.push(format!(
        "SELECT 'pg_aggregate', {name}, a.aggfnoid, 0::pg_catalog.int2, 0::pg_catalog.oid, {} \
         FROM pg_catalog.pg_aggregate a{lateral} WHERE a.aggfnoid {LT} {NORMAL}",
        md5("a.*")
    ));
    // Columns of the built-in relations: a renamed or retyped column makes a read return
    // another column's values.
    let name =
        if summary { "'', ''" } else { "'column', pg_catalog.concat(a.attrelid::pg_catalog.regclass, '.', a.attname)" };
    branches.push(format!(
        "SELECT 'pg_attribute', {name}, a.attrelid, a.attnum, 0::pg_catalog.oid, {} FROM pg_catalog.pg_attribute a \
         WHERE a.attrelid {LT} {NORMAL} AND a.attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2",
        md5("a.attrelid, a.attname, a.atttypid, a.attnum, a.attlen, a.atttypmod, a.attnotnull, a.atthasdef, \
             a.attisdropped, a.attgenerated, a.attcollation")
    ));
    // The digest functions' own rows, whole: a replaced md5 or string_agg cannot vouch for
    // itself.
    let agg = "'pg_catalog.string_agg(pg_catalog.text,pg_catalog.text)'::pg_catalog.regprocedure";
    branches.push(format!(
        "SELECT '{TRUST}', 'digest function', p.oid::pg_catalog.regprocedure::pg_catalog.text, p.oid, 0::pg_catalog.int2, \
         0::pg_catalog.oid, ROW({PROC_COLUMNS})::pg_catalog.text FROM pg_catalog.pg_proc p \
         WHERE p.oid {EQ} 'pg_catalog.md5(pg_catalog.text)'::pg_catalog.regprocedure OR p.oid {EQ} {agg} \
            OR p.oid IN (SELECT a.aggtransfn::pg_catalog.oid FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid {EQ} {agg}) \
            OR p.oid IN (SELECT a.aggfinalfn::pg_catalog.oid FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid {EQ} {agg}) \
         UNION ALL SELECT '{TRUST}', 'digest aggregate', 'string_agg', a.aggfnoid, 0::pg_catalog.int2, 0::pg_catalog.oid, \
         ROW(a.*)::pg_catalog.text FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid {EQ} {agg}"
    ));
    let union = branches.join(" UNION ALL ");
    if summary {
        // Each catalog's rows in one digest; the trusted functions' rows as they are.
        return format!(
            "SELECT u.catalog, CASE WHEN u.catalog OPERATOR(pg_catalog.=) '{TRUST}'::pg_catalog.text \
               THEN pg_catalog.string_agg(u.digest, ' ' ORDER BY u.oid, u.sub, u.digest) \
               ELSE pg_catalog.md5(pg_catalog.string_agg(u.digest, ',' ORDER BY u.oid, u.sub, u.digest)) END \
             FROM ({union}) u GROUP BY u.catalog"
        );
    }
    // Which extension an addition belongs to, looked up for additions only.
    format!(
        "SELECT u.type, u.identity, u.oid, u.digest, CASE WHEN u.oid {GE} {NORMAL} THEN \
           (SELECT e.extname FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid {EQ} d.refobjid \
            WHERE d.classid {EQ} u.class AND d.objid {EQ} u.oid AND d.deptype {EQ} 'e'::pg_catalog.\"char\" LIMIT 1) END \
         FROM ({union}) u"
    )
}

/// The summary's name for the digest functions' rows, sent whole.
const TRUST: &str = "digest functions";

/// Where initdb's imported collations sit: the OIDs it gave out after them depend on how many
/// the machine had.
const COLLATIONS_SQL: &str = "SELECT pg_catalog.min(c.oid), pg_catalog.max(c.oid) \
     FROM pg_catalog.pg_collation c WHERE c.oid OPERATOR(pg_catalog.>=) 12000::pg_catalog.oid \
     AND c.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid";

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
    #[error("cannot read the catalogs of database `{database}`: {message}")]
    Unreadable { database: String, message: String },
    /// The database is not there (a base backup's cluster without it).
    #[error("database `{database}` does not exist")]
    Missing { database: String },
    #[error(
        "database `{database}`: the system object with OID {oid} is `{found}`, not `{expected}`: the backup renamed a system catalog (with allow_system_table_mods)"
    )]
    Renamed { database: String, oid: u32, expected: &'static str, found: String },
    #[error("{}", changed_message(.changes, .databases))]
    Changed { changes: Vec<Change>, databases: Vec<String> },
    #[error("cannot use the reference fingerprint `{}`: {message}", .path.display())]
    Cache { path: PathBuf, message: String },
}

/// A difference between the reference and a restored database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A built-in row whose columns differ.
    Changed { what: String },
    /// A row the reference does not have.
    Added { what: String, extension: Option<String> },
    /// A built-in row the restored database no longer has (dropped or renamed).
    Removed { what: String },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Changed { what } => write!(f, "the backup changed {what}"),
            Change::Added { what, extension: None } => write!(f, "the backup added {what}"),
            Change::Added { what, extension: Some(e) } => {
                write!(f, "the backup added {what} (a member of extension `{e}`)")
            }
            Change::Removed { what } => write!(f, "the backup removed or renamed {what}"),
        }
    }
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

/// The differences between `reference` and `actual`, added ones first, each named.
///
/// When both clusters imported the same span of collations (the same cluster before and after
/// a restore), every row is compared whole. Otherwise (a base backup against a fresh cluster of
/// the image) what initdb made after importing collations (the snowball dictionaries,
/// `information_schema`, plpgsql) has other OIDs in each, and those rows are compared by name
/// only.
pub(crate) fn compare(reference: &Fingerprint, actual: &Fingerprint) -> Vec<Change> {
    let exact = reference.imported_collations == actual.imported_collations;
    let stable_below = [reference.imported_collations, actual.imported_collations]
        .iter()
        .map(|c| c.map_or(FIRST_NORMAL_OBJECT_ID, |(first, _)| first))
        .min()
        .unwrap_or(FIRST_NORMAL_OBJECT_ID);
    let comparable = |a: &Row, b: &Row| {
        exact
            || (a.oid < stable_below && b.oid < stable_below)
            || (a.oid >= FIRST_NORMAL_OBJECT_ID && b.oid >= FIRST_NORMAL_OBJECT_ID)
    };
    let mut added = Vec::new();
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    for (what, row) in &actual.rows {
        match reference.rows.get(what) {
            None => added.push(Change::Added { what: what.clone(), extension: row.extension.clone() }),
            Some(before) if before.digest != row.digest && comparable(before, row) => {
                changed.push(Change::Changed { what: what.clone() })
            }
            Some(_) => {}
        }
    }
    for what in reference.rows.keys() {
        if !actual.rows.contains_key(what) {
            removed.push(Change::Removed { what: what.clone() });
        }
    }
    added.into_iter().chain(changed).chain(removed).collect()
}

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

/// Fingerprints database `database`: each catalog's digest, and, `named`, every row by name.
async fn take(options: &PgConnectOptions, database: &str, named: bool) -> Result<Fingerprint, CatalogError> {
    use sqlx::{Connection, Executor, Row as _};
    let started = std::time::Instant::now();
    let fail = |e: sqlx::Error| CatalogError::Unreadable { database: database.to_owned(), message: e.to_string() };
    let options = options.clone().database(database);
    let mut conn = match sqlx::PgConnection::connect_with(&session(&options, false)).await {
        Ok(conn) => conn,
        // Before PostgreSQL 17 there is no `event_triggers` setting, nor login event triggers.
        Err(e) if e.to_string().contains("event_triggers") => {
            sqlx::PgConnection::connect_with(&session(&options, true)).await.map_err(fail)?
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            return Err(CatalogError::Missing { database: database.to_owned() });
        }
        Err(e) => return Err(fail(e)),
    };
    let text = |row: &sqlx::postgres::PgRow, i: usize| -> Result<Option<String>, CatalogError> {
        use sqlx::ValueRef;
        let value = row.try_get_raw(i).map_err(fail)?;
        if value.is_null() {
            return Ok(None);
        }
        // The simple protocol: every value as its type's output function printed it.
        let text = value
            .as_str()
            .map_err(|e| CatalogError::Unreadable { database: database.to_owned(), message: e.to_string() })?;
        Ok(Some(text.to_owned()))
    };
    // The catalogs read below are the real ones: a literal OID is printed from the server's own
    // cache, whatever a table of that name now is.
    let guard: Vec<String> = CATALOGS.iter().map(|(oid, _)| format!("'{oid}'::pg_catalog.regclass")).collect();
    let guard = format!("SELECT '11'::pg_catalog.regnamespace, {}", guard.join(", "));
    let rows = conn.fetch_all(sqlx::raw_sql(&guard)).await.map_err(fail)?;
    let row = rows.first().ok_or_else(|| CatalogError::Unreadable {
        database: database.to_owned(),
        message: "the catalog check returned no row".into(),
    })?;
    let schema = text(row, 0)?.unwrap_or_default();
    if schema != "pg_catalog" {
        return Err(CatalogError::Renamed {
            database: database.to_owned(),
            oid: 11,
            expected: "pg_catalog",
            found: schema,
        });
    }
    for (i, (oid, name)) in CATALOGS.iter().enumerate() {
        let found = text(row, i + 1)?.unwrap_or_default();
        if found != *name {
            return Err(CatalogError::Renamed { database: database.to_owned(), oid: *oid, expected: name, found });
        }
    }
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

/// What the audit found: how many built-in rows it compared, in which databases, against what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogAudit {
    /// Built-in rows compared in each database.
    pub rows: usize,
    /// The databases audited.
    pub databases: Vec<String>,
    /// What they were compared with.
    pub reference: String,
    /// Built-ins of the reference the backup lacks, and nothing else differing: the backup's
    /// cluster was made by another minor release (one that had not added them yet). A missing
    /// built-in cannot make pgdrill's queries lie (a query that needs it fails); it is said.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
}

impl CatalogAudit {
    /// For a phase's summary and the report.
    pub fn summary(&self) -> String {
        let list: Vec<String> = self.databases.iter().map(|d| format!("`{d}`")).collect();
        let mut summary = format!(
            "catalog audit: {} built-in catalog rows unchanged in {} (against {}), nothing added to pg_catalog",
            self.rows,
            list.join(" and "),
            self.reference
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
        // Only built-ins missing: another minor release's cluster, said and not failed.
        if !found.is_empty() && found.iter().all(|c| matches!(c, Change::Removed { .. })) {
            for change in found {
                if let Change::Removed { what } = change
                    && !absent.contains(&what)
                {
                    absent.push(what);
                }
            }
            continue;
        }
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
    Ok(CatalogAudit { rows, databases: audited, reference: reference_name.to_owned(), absent })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(oid: u32, digest: &str) -> Row {
        Row { oid, digest: digest.into(), extension: None }
    }

    fn print(rows: &[(&str, Row)], collations: Option<(u32, u32)>) -> Fingerprint {
        Fingerprint {
            rows: rows.iter().map(|(k, r)| (k.to_string(), r.clone())).collect(),
            imported_collations: collations,
            summary: BTreeMap::new(),
        }
    }

    #[test]
    fn the_same_catalog_has_no_difference() {
        let a = print(&[("function pg_catalog.lower(text)", row(870, "aa"))], Some((12351, 13223)));
        assert!(compare(&a, &a.clone()).is_empty());
    }

    #[test]
    fn a_changed_an_added_and_a_removed_row_are_each_named() {
        let before = print(
            &[
                ("function pg_catalog.lower(text)", row(870, "aa")),
                ("function pg_catalog.upper(text)", row(871, "bb")),
                ("function pg_catalog.quote_ident(text)", row(1282, "cc")),
            ],
            None,
        );
        let mut after = before.clone();
        after.rows.get_mut("function pg_catalog.lower(text)").unwrap().digest = "zz".into();
        after.rows.remove("function pg_catalog.quote_ident(text)");
        after.rows.insert("function pg_catalog.quote_ident2(text)".into(), row(1282, "cd"));
        after.rows.insert(
            "aggregate pg_catalog.count(text)".into(),
            Row { oid: 16500, digest: "dd".into(), extension: Some("evil".into()) },
        );
        let changes = compare(&before, &after);
        let lines: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            [
                "the backup added aggregate pg_catalog.count(text) (a member of extension `evil`)",
                // A renamed built-in keeps its OID and shows under its new name.
                "the backup added function pg_catalog.quote_ident2(text)",
                "the backup changed function pg_catalog.lower(text)",
                "the backup removed or renamed function pg_catalog.quote_ident(text)",
            ]
        );
    }

    #[test]
    fn rows_initdb_made_after_the_collations_are_compared_by_name_when_the_clusters_imported_others() {
        let before = print(
            &[
                ("function pg_catalog.lower(text)", row(870, "aa")),
                ("schema information_schema", row(13283, "ns1")),
                ("function pg_catalog.plpgsql_call_handler()", row(13634, "h1")),
            ],
            Some((12351, 13223)),
        );
        // Another machine's initdb imported fewer collations: what came after has other OIDs.
        let mut after = print(
            &[
                ("function pg_catalog.lower(text)", row(870, "aa")),
                ("schema information_schema", row(12600, "ns2")),
                ("function pg_catalog.plpgsql_call_handler()", row(12950, "h2")),
            ],
            Some((12351, 12500)),
        );
        assert!(compare(&before, &after).is_empty());
        // A change below the imported collations is still seen, and so is a missing row.
        after.rows.get_mut("function pg_catalog.lower(text)").unwrap().digest = "zz".into();
        after.rows.remove("schema information_schema");
        let lines: Vec<String> = compare(&before, &after).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            [
                "the backup changed function pg_catalog.lower(text)",
                "the backup removed or renamed schema information_schema"
            ]
        );
        // The same span: every row is compared whole.
        let mut same = before.clone();
        same.rows.get_mut("schema information_schema").unwrap().digest = "other".into();
        assert_eq!(compare(&before, &same).len(), 1);
    }

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
    fn a_second_row_of_the_same_name_still_shows() {
        let mut rows = BTreeMap::new();
        insert(&mut rows, "function pg_catalog.lower(text)".into(), row(870, "aa"));
        insert(&mut rows, "function pg_catalog.lower(text)".into(), row(16400, "bb"));
        assert_eq!(rows.len(), 2);
        assert!(rows.contains_key("function pg_catalog.lower(text) (#2)"));
    }

    #[test]
    fn a_reference_survives_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalogs/abc.json");
        assert_eq!(load(&path).unwrap(), None);
        let print = print(&[("type pg_catalog.int4", row(23, "aa"))], Some((12351, 13223)));
        save(&path, &print).unwrap();
        assert_eq!(load(&path).unwrap(), Some(print));
        let path = cache_path("sha256:693b62c8f905").display().to_string();
        assert!(path.contains("pgdrill/catalogs/693b62c8f905-") && path.ends_with(".json"), "{path}");
    }

    #[test]
    fn every_name_in_the_audits_sql_is_schema_qualified() {
        let sql = [fingerprint_sql(false), fingerprint_sql(true)].join("\n;\n");
        if let Ok(path) = std::env::var("PGDRILL_CATALOG_SQL") {
            std::fs::write(path, &sql).unwrap();
        }
        // No bare operator and no unqualified function call.
        for bare in [" < ", " = ", " >= ", " <> ", " || ", "(md5(", " md5("] {
            assert!(!sql.contains(bare), "`{bare}` in {sql}");
        }
        for call in sql.match_indices('(').map(|(i, _)| &sql[..i]) {
            let word: String =
                call.chars().rev().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
            let word: String = word.chars().rev().collect();
            if word.is_empty() || ["ROW", "IN", "OPERATOR", "FROM", "AND", "OR", "LATERAL"].contains(&word.as_str()) {
                continue;
            }
            assert!(call.ends_with(&format!("pg_catalog.{word}")), "`{word}(` is not schema-qualified");
        }
    }
}
