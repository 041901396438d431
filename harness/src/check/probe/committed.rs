//! Probe rows committed for the role's own session to see, and removed after it looked.
//!
//! A probe that claims what a role reads is a session that role opened itself
//! ([`crate::check::login`]); it sees only committed rows. So pgdrill inserts the probe rows in
//! a session of its own (a connection of their own, closed after, so that nothing the backup's
//! code leaves in a session reaches pgdrill's other ones), as the application would: its
//! settings and the tenant's set first, the table's triggers, defaults and checks running, no
//! constraint set aside (a row the application could not write is one a policy could tell from
//! the application's). Then it commits, and the reads run; then [`remove`] deletes them.
//!
//! The backup's code runs while they are inserted. What it writes elsewhere would let a later
//! session tell that pgdrill was here, so any of it voids the probe, named: rows written to
//! another table (a catalog included: DDL, a grant, a replaced function) by the transaction's own
//! statistics; a sequence advanced that the table's own columns do not use; a setting of the
//! session changed; an advisory lock still held after the commit.

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::constraints::{self, Blocker};
use super::{Cell, Column, Given, Hint, Row, Source, blocked_message, build, plan};
use crate::check::login::AppSession;

mod as_role;
mod parents;
use crate::pg::{QualifiedName, describe_sql_error, quote_ident, quote_ident_if_needed, quote_literal};

/// What a probe needs to insert its rows.
pub(crate) struct Request<'a> {
    pub table: &'a QualifiedName,
    pub columns: &'a [Column],
    /// The tenant column and one value per probe row; `None`: one row without a tenant.
    pub tenant: Option<(&'a str, &'a [String])>,
    /// The setting that carries the tenant: set to each row's tenant before its INSERT.
    pub tenant_setting: Option<&'a str>,
    /// The scenario's settings, set before the INSERTs as the application sets them.
    pub settings: &'a crate::check::Settings,
    pub given: &'a Given,
    /// The scenario's probe values for every table (the parent rows' too).
    pub probe: &'a super::Probe,
    pub hint: Hint<'a>,
    /// A session of the role the rows are inserted as, as the application would insert them
    /// (its tenant set first); when it cannot, pgdrill's own session inserts them.
    pub writer: Option<&'a AppSession>,
    /// The code that decides the check (lower case): what the backup's code writes elsewhere
    /// while the rows are inserted voids the probe when this code could read it.
    pub decides: &'a [String],
}

/// The probe rows committed: `tableoid` and `ctid` of each, in the order of the tenants.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    pub table: QualifiedName,
    pub rows: Vec<(String, String)>,
    /// Inserted by the role's own session (else by pgdrill's, where the table's INSERT triggers
    /// saw pgdrill's session: what they read about it is named).
    pub by_role: bool,
    /// The rows the probe rows' foreign keys needed, in the order they were inserted
    /// ([`parents`]): removed after the probe rows.
    pub parents: Vec<Committed>,
}

/// Every built-in setting and each custom one named in `$1`, as the session has them.
const SETTINGS_SQL: &str = "SELECT s.name::pg_catalog.text, s.setting::pg_catalog.text FROM pg_catalog.pg_settings s \
     UNION ALL SELECT w.n, pg_catalog.current_setting(w.n, true) FROM pg_catalog.unnest($1::pg_catalog.text[]) AS w(n) \
     ORDER BY 1";

/// The settings of the first reading of [`SETTINGS_SQL`] that the second one has otherwise,
/// or not at all. A setting only the second one has is one a library loaded for the INSERT
/// defined (pgvector's `hnsw.ef_search`), at its default; a watched one is in both.
fn changed_settings(before: &[(String, Option<String>)], after: &[(String, Option<String>)]) -> Vec<String> {
    let mut names: Vec<String> = before.iter().filter(|b| !after.contains(b)).map(|(name, _)| name.clone()).collect();
    names.dedup();
    names
}

/// The table, its partitions and their TOAST tables: where its own rows are written.
pub(super) const TREE_SQL: &str = "WITH RECURSIVE tree(relid) AS ( \
       SELECT $1::pg_catalog.regclass::pg_catalog.oid \
       UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid) \
     SELECT tree.relid::pg_catalog.int8 FROM tree \
     UNION SELECT c.reltoastrelid::pg_catalog.int8 FROM pg_catalog.pg_class c \
      WHERE c.oid IN (SELECT tree.relid FROM tree) AND c.reltoastrelid OPERATOR(pg_catalog.<>) 0";

/// Rows this transaction wrote outside the tables `$1`.
pub(super) const WRITTEN_ELSEWHERE_SQL: &str = "SELECT s.schemaname::pg_catalog.text, s.relname::pg_catalog.text, s.n_tup_ins, s.n_tup_upd, s.n_tup_del \
       FROM pg_catalog.pg_stat_xact_all_tables s \
      WHERE NOT (s.relid::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])) \
        AND s.n_tup_ins OPERATOR(pg_catalog.+) s.n_tup_upd OPERATOR(pg_catalog.+) s.n_tup_del OPERATOR(pg_catalog.>) 0 \
      ORDER BY 1";

/// Each sequence and where it stands, but those the tables `$1` use themselves (owned by their
/// columns, or named in their defaults).
pub(super) const SEQUENCES_SQL: &str = "SELECT c.oid::pg_catalog.regclass::pg_catalog.text, \
       (SELECT s.last_value::pg_catalog.text FROM pg_catalog.pg_sequences s \
         WHERE s.schemaname OPERATOR(pg_catalog.=) n.nspname AND s.sequencename OPERATOR(pg_catalog.=) c.relname) \
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
      WHERE c.relkind OPERATOR(pg_catalog.=) 'S' \
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
                          AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.refobjid::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])) \
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_attrdef ad ON ad.oid OPERATOR(pg_catalog.=) d.objid \
                         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass \
                           AND ad.adrelid::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[]) \
                           AND d.refobjid OPERATOR(pg_catalog.=) c.oid) \
      ORDER BY 1";

/// Advisory locks this session holds.
const ADVISORY_SQL: &str = "SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks \
     WHERE locktype OPERATOR(pg_catalog.=) 'advisory' AND pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()";

/// The literals of a CHECK tried for its column before the probe row gives up.
const MAX_CHECK_VALUES: usize = 8;

/// Inserts and commits the probe rows of `request` on a connection of their own (`options`:
/// pgdrill's own, pinned); `Ok(Err(why))` when none could be made or the backup's code voided
/// them (nothing is left behind then). The evidence is pushed on `ran`.
pub(crate) async fn insert(
    options: &PgConnectOptions,
    request: &Request<'_>,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Committed, String>> {
    if let Some(why) = unknown_given(request) {
        return Ok(Err(why));
    }
    // On a connection of their own: what this session's transaction wrote is what the probe
    // rows' own reading of "written elsewhere" counts.
    let mut conn = PgConnection::connect_with(options).await?;
    let parents = parents::insert(&mut conn, request, ran).await;
    conn.close().await.ok();
    let parents = match parents? {
        Ok(parents) => parents,
        Err(why) => return Ok(Err(why)),
    };
    let conn = PgConnection::connect_with(options).await?;
    match insert_rows(conn, options, request, ran).await {
        Ok(Ok(mut committed)) => {
            committed.parents = parents;
            Ok(Ok(committed))
        }
        failed => {
            for parent in parents.iter().rev() {
                remove(options, parent, ran).await;
            }
            failed
        }
    }
}

/// [`insert`]'s probe rows, once their parents are in: by the role's session when it can, else
/// by pgdrill's on `conn` (closed after).
async fn insert_rows(
    mut conn: PgConnection,
    options: &PgConnectOptions,
    request: &Request<'_>,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Committed, String>> {
    if let Some(writer) = request.writer {
        match as_role::insert(&mut conn, writer, request, ran).await? {
            Ok(committed) => {
                conn.close().await.ok();
                return Ok(Ok(committed));
            }
            Err(why) => ran.push(format!("-- {}: pgdrill's own session inserts them", why.said())),
        }
    }
    let outcome = insert_on(&mut conn, request, ran).await;
    let advisory: i64 = match &outcome {
        Ok(Ok(_)) => sqlx::query_scalar(ADVISORY_SQL).fetch_one(&mut conn).await.unwrap_or(0),
        _ => 0,
    };
    conn.close().await.ok();
    let committed = match outcome? {
        Ok(committed) => committed,
        Err(why) => return Ok(Err(why)),
    };
    if advisory > 0 {
        let why = format!(
            "the backup's code took {advisory} advisory lock{} for the session while pgdrill inserted the probe rows into `{}`: another session could tell that pgdrill was there, so the probe proves nothing",
            if advisory == 1 { "" } else { "s" },
            request.table
        );
        remove(options, &committed, ran).await;
        return Ok(Err(why));
    }
    Ok(Ok(committed))
}

/// A value the scenario gives for this table by name, for a column it lacks.
fn unknown_given(request: &Request<'_>) -> Option<String> {
    let g = request.given.0.iter().filter(|g| g.own).find(|g| !request.columns.iter().any(|c| c.name == g.column))?;
    let near = request.columns.iter().find(|c| c.name.eq_ignore_ascii_case(&g.column));
    let hint = near.map(|c| format!(" (hint: did you mean `{}`?)", quote_ident_if_needed(&c.name))).unwrap_or_default();
    Some(format!("`probe` gives `{}` a value, and `{}` has no such column{hint}", g.column, request.table))
}

/// The transaction that inserts and commits the rows (or rolls back and says why).
async fn insert_on(
    conn: &mut PgConnection,
    request: &Request<'_>,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Committed, String>> {
    let t = request.table.sql();
    let tree: Vec<i64> = sqlx::query_scalar(TREE_SQL).bind(&t).fetch_all(&mut *conn).await?;
    let sequences: Vec<(String, Option<String>)> =
        sqlx::query_as(SEQUENCES_SQL).bind(&tree).fetch_all(&mut *conn).await?;
    ran.push("BEGIN -- pgdrill's own session, on a connection of its own: probe rows the role's session will see, committed, removed after".into());
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    let row = match plan_row(conn, request, ran).await? {
        Ok(row) => row,
        Err(why) => return rolled_back(conn, ran, why).await,
    };
    let tenants: Vec<Option<&str>> = match request.tenant {
        Some((_, values)) => values.iter().map(|v| Some(v.as_str())).collect(),
        None => vec![None],
    };
    let mut row = row;
    let mut rows = Vec::new();
    for tenant in tenants {
        if let Err(why) = insert_one(conn, request, &mut row, tenant, &mut rows, ran).await? {
            return rolled_back(conn, ran, why).await;
        }
    }
    let elsewhere: Vec<Elsewhere> = sqlx::query_as(WRITTEN_ELSEWHERE_SQL).bind(&tree).fetch_all(&mut *conn).await?;
    if let Some(why) = judge_elsewhere(request, &elsewhere, ran) {
        return rolled_back(conn, ran, why).await;
    }
    ran.push("COMMIT".into());
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    let committed = Committed { table: request.table.clone(), rows, by_role: false, parents: Vec::new() };
    let advanced = advanced(conn, &tree, &sequences).await?;
    if !advanced.is_empty() {
        let why = voided(request.table, &advanced.join(", "));
        delete(conn, &committed, ran).await.ok();
        return Ok(Err(why));
    }
    Ok(Ok(committed))
}

/// The sequences that moved since `before` ([`SEQUENCES_SQL`] of the tables `tree`).
pub(super) async fn advanced(
    conn: &mut PgConnection,
    tree: &[i64],
    before: &[(String, Option<String>)],
) -> sqlx::Result<Vec<String>> {
    let after: Vec<(String, Option<String>)> = sqlx::query_as(SEQUENCES_SQL).bind(tree).fetch_all(&mut *conn).await?;
    Ok(after
        .iter()
        .filter(|a| before.iter().any(|b| b.0 == a.0 && b.1 != a.1))
        .map(|(name, _)| format!("sequence {name} advanced"))
        .collect())
}

/// A relation written outside the probed table: schema, name, rows inserted, updated, deleted.
pub(super) type Elsewhere = (String, String, i64, i64, i64);

/// What the backup's code wrote elsewhere while the probe rows were inserted: the message that
/// voids the probe when the code that decides the check could read it (the catalogs, or a
/// relation its text names), else a line of evidence.
pub(super) fn judge_elsewhere(request: &Request<'_>, elsewhere: &[Elsewhere], ran: &mut Vec<String>) -> Option<String> {
    let mut read = Vec::new();
    let mut unread = Vec::new();
    for (schema, name, i, u, d) in elsewhere {
        let shown = written(&format!("{schema}.{name}"), *i, *u, *d);
        let lowered = name.to_lowercase();
        let named = request.decides.iter().any(|text| {
            text.match_indices(&lowered).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + lowered.len()..].chars().next();
                let edge = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                edge(before) && edge(after)
            })
        });
        if matches!(schema.as_str(), "pg_catalog" | "pg_toast") || named {
            read.push(shown);
        } else {
            unread.push(shown);
        }
    }
    if !unread.is_empty() {
        ran.push(format!(
            "-- meanwhile the backup's code wrote {}: no code that decides this check reads it",
            unread.join("; ")
        ));
    }
    (!read.is_empty()).then(|| voided(request.table, &read.join("; ")))
}

/// The message of a probe the backup's code voided by writing `what`.
pub(super) fn voided(table: &QualifiedName, what: &str) -> String {
    format!(
        "while pgdrill inserted the probe rows into `{table}`, the backup's code wrote elsewhere ({what}): a later session could tell that pgdrill was there, so the probe proves nothing"
    )
}

pub(super) fn written(relation: &str, inserted: i64, updated: i64, deleted: i64) -> String {
    let parts: Vec<String> = [(inserted, "inserted"), (updated, "updated"), (deleted, "deleted")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} row{} {what}", if n == 1 { "" } else { "s" }))
        .collect();
    format!("{relation}: {}", parts.join(", "))
}

async fn rolled_back(
    conn: &mut PgConnection,
    ran: &mut Vec<String>,
    why: String,
) -> sqlx::Result<Result<Committed, String>> {
    ran.push("ROLLBACK".into());
    sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    Ok(Err(why))
}

/// The row to insert: where each column's value comes from, made up where asked.
pub(super) async fn plan_row(
    conn: &mut PgConnection,
    request: &Request<'_>,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Row, String>> {
    let t = request.table.sql();
    let exists_sql = format!("SELECT EXISTS (SELECT 1 FROM {t})");
    ran.push(exists_sql.clone());
    let copy: bool = sqlx::query_scalar(&exists_sql).fetch_one(&mut *conn).await?;
    let partitions = super::bounds::partitions(conn, &t).await?;
    let landing = if copy { None } else { super::bounds::landing(&partitions) };
    let keys = super::bounds::key_columns(&partitions);
    let tenant = request.tenant.map(|(column, _)| column);
    let plan = plan(request.columns, tenant, request.given, copy, landing.as_ref(), &keys);
    let mut row = match build(conn, request.columns, plan, copy).await? {
        Ok(row) => row,
        Err(blocked) => return Ok(Err(blocked_message(request.table, &blocked, request.hint))),
    };
    row.keys = keys;
    ran.extend(row.evidence());
    Ok(Ok(row))
}

/// Inserts one probe row (its tenant's), its settings set first as the application sets them; a
/// CHECK of one column is tried again with the values it names. `Err` says why it could not be.
async fn insert_one(
    conn: &mut PgConnection,
    request: &Request<'_>,
    row: &mut Row,
    tenant: Option<&str>,
    rows: &mut Vec<(String, String)>,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<(), String>> {
    // The backup's INSERT triggers run here as in a session of the application, which names
    // tables and functions along PostgreSQL's default `search_path` (pgdrill's own statements
    // name everything by its schema); then the scenario's settings and the row's tenant.
    let mut sets: Vec<(String, String)> = vec![("search_path".to_owned(), "\"$user\", public".to_owned())];
    sets.extend(request.settings.0.iter().map(|(n, v)| (n.clone(), v.clone())));
    if let (Some(setting), Some(value)) = (request.tenant_setting, tenant) {
        sets.push((setting.to_owned(), value.to_owned()));
    }
    for (name, value) in &sets {
        let sql = "SELECT pg_catalog.set_config($1, $2, true)";
        ran.push(crate::check::bind_evidence(sql, &[name, value]));
        sqlx::query(sql).bind(name).bind(value).execute(&mut *conn).await?;
    }
    let watched: Vec<String> = sets.iter().map(|(n, _)| n.clone()).collect();
    let before: Vec<(String, Option<String>)> =
        sqlx::query_as(SETTINGS_SQL).bind(&watched).fetch_all(&mut *conn).await?;
    let mut tried: Vec<String> = Vec::new();
    loop {
        let sql = insert_sql(&request.table.sql(), row, tenant);
        sqlx::query("SAVEPOINT probe_row").execute(&mut *conn).await?;
        ran.push(sql.clone());
        let err = match sqlx::query_as::<_, (String, String)>(&sql).fetch_one(&mut *conn).await {
            Ok(inserted) => {
                sqlx::query("RELEASE SAVEPOINT probe_row").execute(&mut *conn).await?;
                rows.push(inserted);
                break;
            }
            Err(err @ sqlx::Error::Database(_)) => err,
            Err(err) => return Err(err),
        };
        sqlx::query("ROLLBACK TO SAVEPOINT probe_row").execute(&mut *conn).await?;
        match next_try(conn, request, row, &err, &mut tried, ran).await? {
            Ok(()) => continue,
            Err(why) => return Ok(Err(why)),
        }
    }
    let after: Vec<(String, Option<String>)> =
        sqlx::query_as(SETTINGS_SQL).bind(&watched).fetch_all(&mut *conn).await?;
    let changed = changed_settings(&before, &after);
    if !changed.is_empty() {
        return Ok(Err(format!(
            "the probe row's INSERT into `{}` changed the session's settings ({}): code of the backup's that runs on an INSERT (a default, a CHECK, a domain, a trigger) changed what a session sees, so the probe proves nothing",
            request.table,
            changed.join(", ")
        )));
    }
    Ok(Ok(()))
}

/// After an INSERT failed with `err`: the row changed to try again (a value a one-column CHECK
/// names), or why no probe row can be made.
async fn next_try(
    conn: &mut PgConnection,
    request: &Request<'_>,
    row: &mut Row,
    err: &sqlx::Error,
    tried: &mut Vec<String>,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<(), String>> {
    let Some(blocker) = constraints::blocker(err) else {
        return Ok(Err(diagnose(conn, request, row, err).await?));
    };
    let (columns, definition) = constraints::columns(conn, &request.table.sql(), &blocker).await?;
    if let ([column], Blocker::TableCheck { .. } | Blocker::DomainCheck { .. }) = (columns.as_slice(), &blocker) {
        let candidates = constraints::literals(&definition, MAX_CHECK_VALUES);
        if let Some(value) = candidates.into_iter().find(|v| !tried.contains(v))
            && let Some(c) = request.columns.iter().find(|c| c.name == *column)
        {
            tried.push(value.clone());
            ran.push(format!("-- `{column}` = '{value}', a value its {} compares with: tried again", blocker.shown()));
            let cell = Cell {
                column: column.clone(),
                source: Source::Check(blocker.shown()),
                expr: format!("({})::{}", quote_literal(&value), c.sql_type),
            };
            row.cells.retain(|x| x.column != *column);
            row.cells.push(cell);
            return Ok(Ok(()));
        }
    }
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let line = if names.is_empty() {
        String::new()
    } else {
        format!(" (hint: add to {}: {})", request.hint.within, request.hint.line(request.table, &names))
    };
    Ok(Err(format!(
        "no probe row the application could write can be made for `{}`: the made-up values break its {}{}: {}{line}",
        request.table,
        blocker.shown(),
        if names.is_empty() {
            String::new()
        } else {
            format!(" on {}", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
        },
        describe_sql_error(err)
    )))
}

/// The INSERT of one probe row (its tenant's value in place of `{tenant}`).
pub(super) fn insert_sql(t: &str, row: &Row, tenant: Option<&str>) -> String {
    let returning = "RETURNING tableoid::pg_catalog.oid::pg_catalog.text, ctid::pg_catalog.text";
    if row.cells.is_empty() {
        return format!("INSERT INTO {t} DEFAULT VALUES {returning}");
    }
    let names: Vec<String> = row.cells.iter().map(|c| quote_ident(&c.column)).collect();
    let values: Vec<String> = row
        .cells
        .iter()
        .map(|c| match tenant {
            Some(value) => c.expr.replace("{tenant}", &quote_literal(value)),
            None => c.expr.clone(),
        })
        .collect();
    let source = if row.copy { format!(" FROM {t} AS src LIMIT 1") } else { String::new() };
    format!("INSERT INTO {t} ({}) SELECT {}{source} {returning}", names.join(", "), values.join(", "))
}

/// Why an INSERT failed for another reason than a constraint: each value written is tried
/// alone, so that the message names every column whose value the server refuses (a scenario's
/// value that is not of the column's type, a made-up one a type of an extension refuses).
async fn diagnose(
    conn: &mut PgConnection,
    request: &Request<'_>,
    row: &Row,
    err: &sqlx::Error,
) -> sqlx::Result<String> {
    let mut refused = Vec::new();
    for cell in row.cells.iter().filter(|c| !matches!(c.source, Source::Copied | Source::Tenant)) {
        sqlx::query("SAVEPOINT probe_value").execute(&mut *conn).await?;
        match sqlx::query(&format!("SELECT {}", cell.expr)).execute(&mut *conn).await {
            Ok(_) => {}
            Err(e @ sqlx::Error::Database(_)) => refused.push((cell.column.clone(), describe_sql_error(&e))),
            Err(e) => return Err(e),
        }
        sqlx::query("ROLLBACK TO SAVEPOINT probe_value").execute(&mut *conn).await?;
    }
    let table = request.table;
    if !refused.is_empty() {
        return Ok(blocked_message(table, &refused, request.hint));
    }
    let mut message = format!("the probe row cannot be inserted into `{table}`: {}", describe_sql_error(err));
    if err.as_database_error().is_some_and(|d| d.message().starts_with("no partition of relation")) {
        let tenant = request.tenant.map(|(column, _)| column);
        let keys: Vec<&str> = row.keys.iter().map(String::as_str).filter(|k| Some(*k) != tenant).collect();
        let mut hints = Vec::new();
        if !keys.is_empty() {
            hints.push(format!("give the partition key a partition's values: {}", request.hint.line(table, &keys)));
        }
        if let Some(column) = tenant.filter(|t| row.keys.iter().any(|k| k == t)) {
            hints.push(format!("give `value` and `other_value` two tenants of `{column}` that have a partition"));
        }
        if !hints.is_empty() {
            message.push_str(&format!(" (hint: {})", hints.join("; ")));
        }
    }
    Ok(message)
}

/// Deletes the probe rows `committed` on a connection of its own, the table's triggers and
/// foreign keys off (`session_replication_role = replica`), the evidence pushed on `ran`;
/// a row it could not delete is said there (a rule or an `ENABLE ALWAYS` trigger can keep it).
pub(crate) async fn remove(options: &PgConnectOptions, committed: &Committed, ran: &mut Vec<String>) {
    let outcome = async {
        let mut conn = PgConnection::connect_with(options).await?;
        let mut done = delete(&mut conn, committed, ran).await;
        for parent in committed.parents.iter().rev() {
            done = done.and(delete(&mut conn, parent, ran).await);
        }
        conn.close().await.ok();
        done
    }
    .await;
    if let Err(e) = outcome {
        ran.push(format!("-- the probe rows could not be removed: {}", describe_sql_error(&e)));
    }
}

pub(super) async fn delete(conn: &mut PgConnection, committed: &Committed, ran: &mut Vec<String>) -> sqlx::Result<()> {
    let aims: Vec<String> = committed
        .rows
        .iter()
        .map(|(oid, ctid)| {
            format!(
                "(tableoid OPERATOR(pg_catalog.=) {}::pg_catalog.oid AND ctid OPERATOR(pg_catalog.=) {}::pg_catalog.tid)",
                quote_literal(oid),
                quote_literal(ctid)
            )
        })
        .collect();
    let sql = format!("DELETE FROM {} WHERE {}", committed.table.sql(), aims.join(" OR "));
    ran.push(format!("-- removing the probe rows: BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT"));
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await?;
    let deleted = sqlx::query(&sql).execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    if deleted < committed.rows.len() as u64 {
        ran.push(format!("-- {deleted} of {} probe rows removed (a rule kept the rest)", committed.rows.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_changed_or_set_is_named() {
        let setting = |n: &str, v: Option<&str>| (n.to_owned(), v.map(str::to_owned));
        let before = [setting("app.tenant", None), setting("row_security", Some("on"))];
        assert!(changed_settings(&before, &before).is_empty());
        let after = [setting("app.tenant", Some("x")), setting("row_security", Some("off"))];
        assert_eq!(changed_settings(&before, &after), ["app.tenant", "row_security"]);
        let loaded = [before[0].clone(), setting("hnsw.ef_search", Some("40")), before[1].clone()];
        assert!(changed_settings(&before, &loaded).is_empty(), "a library loaded defines its settings");
    }

    #[test]
    fn what_was_written_elsewhere_is_named() {
        assert_eq!(written("public.seen", 1, 0, 2), "public.seen: 1 row inserted, 2 rows deleted");
        let message = voided(&QualifiedName::new("public", "t"), "public.seen: 1 row inserted");
        assert!(message.contains("wrote elsewhere (public.seen: 1 row inserted)"), "{message}");
        let table = QualifiedName::new("public", "notes");
        let decides = vec![
            "policy: tenant = current_setting('app.tenant') or exists (select 1 from public.drill_seen)".to_owned(),
        ];
        let given = Given::default();
        let settings = crate::check::Settings::default();
        let request = Request {
            table: &table,
            columns: &[],
            tenant: None,
            tenant_setting: None,
            settings: &settings,
            given: &given,
            probe: &crate::check::probe::Probe::default(),
            hint: Hint { within: "fail_closed", per_table: true },
            writer: None,
            decides: &decides,
        };
        let mut ran = Vec::new();
        let logged = [("audit".to_owned(), "logged_actions".to_owned(), 2, 0, 0)];
        assert_eq!(judge_elsewhere(&request, &logged, &mut ran), None, "an audit log no policy reads");
        assert!(ran[0].contains("audit.logged_actions: 2 rows inserted: no code that decides"), "{ran:?}");
        let seen = [("public".to_owned(), "drill_seen".to_owned(), 1, 0, 0)];
        assert!(
            judge_elsewhere(&request, &seen, &mut ran).is_some_and(|m| m.contains("public.drill_seen: 1 row inserted"))
        );
        let catalog = [("pg_catalog".to_owned(), "pg_policy".to_owned(), 0, 1, 0)];
        assert!(judge_elsewhere(&request, &catalog, &mut ran).is_some());
    }
}
