//! Fail-closed reads: the application role reads no rows of a table without the tenant setting,
//! and only its own tenant's rows with it, proven on every table, empty ones included.
//!
//! In order, in pgdrill's own session (`search_path = pg_catalog, pg_temp`): the columns, the two
//! tenants (the scenario's, else two the table holds, else two its tenant column's foreign key
//! finds, else made up; read as the tenant column's type), the code of the table's policies read
//! whole and what it reads about the session ([`doors`]). Where the table holds no row of a
//! tenant, a probe row for it ([`crate::check::probe::committed`]): inserted and committed by the
//! role's own session with the tenant set when it can, else by pgdrill's, and removed after the
//! reads. Then, in a session the role opened itself ([`crate::check::login`]): the scenario's
//! `settings`, the reads with no tenant set (no rows, or a refused read), each door a session can
//! open itself, as tenant B (not A's rows, no other tenant's) and as tenant A (its own rows);
//! rolled back. The reads name every built-in by its schema (`pg_catalog.count`,
//! `OPERATOR(pg_catalog.=)`), so the role's own `search_path` decides what the policies see and
//! nothing of pgdrill's own. The evidence opens with the session, then the SQL that ran, in
//! order, with the probe rows' values.

mod doors;
mod narrowing;
mod tenants;
mod values;

use std::time::Instant;

use super::{FailClosed, Found, KIND};
use crate::check::login::{self, AppSession, Failure};
use crate::check::loophole::{self, Trusted, Untried};
use crate::check::probe::compared;
use crate::check::probe::{self, Column, Hint, committed};
use crate::check::{CheckContext, CheckResult, CheckResultBuilder, bind_evidence};
use crate::pg::{QualifiedName, describe_sql_error, fold_ident, quote_ident, quote_ident_if_needed, quote_literal};
use crate::sqlstate::Probe;
use doors::{Doors, doors, inserting_facts, try_doors};
use tenants::{held_any, held_tenants, tenant_values};
use values::compared_with_constants;

/// What fail-closed reads of one table found, as the role: `None` where a read was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailClosedFacts {
    /// Rows seen with no tenant set (None: the read failed, which is closed).
    pub without: Option<i64>,
    /// With tenant B set: tenant A's probe row seen (0 or 1), rows of other tenants than B.
    pub b_sees_a: i64,
    pub b_foreign: i64,
    /// With tenant A set: its own probe row seen (0 or 1), rows of other tenants than A.
    pub a_sees_own: i64,
    pub a_foreign: i64,
    /// What a setting the session sets itself opened ([`loophole::opened`]), if anything.
    pub opened: Option<String>,
    /// The settings (and special tenant values) tried, and those trusted instead.
    pub levers: Vec<String>,
    pub trusted: Vec<Trusted>,
    /// What the policies' code reads about the session that no try shows.
    pub untried: Vec<Untried>,
    /// The probe rows committed for the reads (none where the table holds both tenants' rows).
    pub probe_rows: usize,
}

/// From the reads to the verdict.
pub(crate) fn judge_fail_closed(
    result: CheckResultBuilder,
    table: &QualifiedName,
    role: &str,
    setting: &str,
    facts: &FailClosedFacts,
) -> CheckResult {
    let f = facts;
    // Tenant A's rows: its probe row, or the rows the table holds of it.
    let a_rows = if f.probe_rows > 0 { "A's probe row" } else { "A's rows" };
    let without = match f.without {
        Some(n) => format!("{n} rows"),
        None => "refused".to_owned(),
    };
    let result = result.actual(format!(
        "without {setting}: {without}; as tenant B: {} of {a_rows}, {} rows of other tenants; as tenant A: {} of {a_rows}, {} rows of other tenants",
        f.b_sees_a, f.b_foreign, f.a_sees_own, f.a_foreign
    ));
    match leak(table, role, setting, f, a_rows) {
        Some((found, message)) => result.found(found, message),
        None => result.found(Found::FailClosed, closed(table, role, setting, f, a_rows)),
    }
}

/// What the reads show leaks (or holds only for sessions like the drill's), if anything.
fn leak(
    table: &QualifiedName,
    role: &str,
    setting: &str,
    f: &FailClosedFacts,
    a_rows: &str,
) -> Option<(Found, String)> {
    if let Some(n) = f.without.filter(|n| *n > 0) {
        let included = match f.probe_rows {
            0 => String::new(),
            1 => " (pgdrill's probe row included)".to_owned(),
            2 => " (pgdrill's two probe rows included)".to_owned(),
            n => format!(" (pgdrill's {n} probe rows included)"),
        };
        return Some((
            Found::UnsetTenantReadsRows,
            format!("`{role}` reads {n} rows of `{table}` with no tenant set{included}: not fail-closed"),
        ));
    }
    if let Some(opened) = &f.opened {
        return Some((Found::SessionSettingOpens, format!("{opened}: not fail-closed")));
    }
    if !f.untried.is_empty() {
        return Some((
            Found::OnlyLikeTheDrill,
            format!(
                "that `{role}` reads only its tenant's rows of `{table}` is {}",
                loophole::only_like_the_drill(&f.untried)
            ),
        ));
    }
    if f.b_sees_a > 0 || f.b_foreign > 0 {
        return Some((
            Found::TenantReadsOtherTenant,
            format!(
                "`{role}` with {setting} set to tenant B reads {} of tenant {a_rows} and {} rows of other tenants of `{table}`: tenants are not isolated",
                f.b_sees_a, f.b_foreign
            ),
        ));
    }
    if f.a_foreign > 0 {
        return Some((
            Found::TenantReadsOtherTenant,
            format!(
                "`{role}` with {setting} set to tenant A also reads {} rows of other tenants of `{table}`",
                f.a_foreign
            ),
        ));
    }
    (f.a_sees_own == 0).then(|| {
        (Found::TenantCannotReadOwn, format!(
            "`{role}` with {setting} set to tenant A cannot read {a_rows} of `{table}`: the policy hides every row, or reads another setting"
        ))
    })
}

/// The message of a table proven fail-closed.
fn closed(table: &QualifiedName, role: &str, setting: &str, f: &FailClosedFacts, a_rows: &str) -> String {
    let mut message = format!(
        "`{role}` sees no rows of `{table}` without {setting}, only tenant {a_rows} as A, and not {a_rows} as tenant B"
    );
    if !f.levers.is_empty() {
        message.push_str(&format!("; nor with {} set by the session", f.levers.join(", ")));
    }
    if !f.trusted.is_empty() {
        let shown: Vec<String> = f.trusted.iter().map(Trusted::shown).collect();
        message.push_str(&format!("; not tried: {}", shown.join("; ")));
    }
    message
}

/// Why the reads did not prove the table either way: the role may not read it (closed), or no
/// proof could be made.
enum Unproven {
    Closed(String),
    Cannot(String),
}

/// What stopped the proof outside the database's answer to a read.
enum Broke {
    /// pgdrill's own reads of the catalogs failed.
    Pgdrill(sqlx::Error),
    /// The role's session failed (a statement pgdrill needs, not a read it judges).
    Session(Failure),
    /// The role could not log in.
    Login(String),
}

/// The tenant column and the two tenants, as the column's type prints them, and whether the
/// table already holds rows of each (else a probe row stands for the tenant).
struct Prepared {
    columns: Vec<Column>,
    tenant: Column,
    a: String,
    b: String,
    a_rows: bool,
    b_rows: bool,
}

/// What is proven fail-closed: the table, its `fail_closed` (with the settings the reads make),
/// and the role whose own session reads it.
#[derive(Clone, Copy)]
struct Subject<'a> {
    table: &'a QualifiedName,
    fc: &'a FailClosed,
    role: &'a str,
}

/// How the reads tell a tenant's rows: its probe row, or the rows the table holds of it.
struct Rows {
    a: String,
    b: String,
    /// How many are probe rows.
    probes: usize,
}

/// Proves `table` fail-closed for the role that reads it (see the module's comment). A role
/// that may not read the table at all is closed by privilege.
pub(super) async fn fail_closed(ctx: &CheckContext<'_>, table: &QualifiedName, fc: &FailClosed) -> CheckResult {
    let started = Instant::now();
    let role_name = fold_ident(fc.role_for(table));
    let role = role_name.as_str();
    let setting = &fc.setting;
    let mut ran: Vec<String> = Vec::new();
    let mut identity = String::new();
    let read = QualifiedName::new(table.schema_or_public(), &table.name);
    if let Some(why) = table.schema.as_ref().map_or_else(|| ctx.names.elsewhere(&table.name, &read), |_| None) {
        return CheckResult::build(KIND, format!("{table} fail-closed for {role}"), started)
            .expected(format!("`{table}` as the application resolves it"))
            .actual("another table for the application")
            .found(Found::AnotherTable, why);
    }
    let outcome = prove(ctx, table, fc, role, &mut ran, &mut identity).await;
    let result = CheckResult::build(KIND, format!("{table} fail-closed for {role}"), started)
        .expected(format!(
            "no rows without {setting}; as a tenant, its own rows only (rows of two tenants: the table's, else probe rows)"
        ))
        .evidence(format!("{identity}{}", ran.join(";\n")));
    match outcome {
        Err(Broke::Pgdrill(err)) => {
            result.found(Found::CouldNotRead, format!("could not read `{table}`: {}", describe_sql_error(&err)))
        }
        Err(Broke::Session(failure)) => result
            .found(Found::SessionFailed, format!("the reads of `{table}` in `{role}`'s own session failed: {failure}")),
        Err(Broke::Login(why)) => result.found(Found::SessionFailed, why),
        Ok(Err(Unproven::Closed(message))) => {
            result.actual("no SELECT privilege").found(Found::ClosedByPrivilege, message)
        }
        Ok(Err(Unproven::Cannot(message))) => result.found(Found::CannotProve, message),
        Ok(Ok(facts)) => judge_fail_closed(result, table, role, setting, &facts),
    }
}

type Proven = Result<Result<FailClosedFacts, Unproven>, Broke>;

/// pgdrill's own reads (the columns, the tenants, the doors), the probe rows a tenant without
/// rows needs (committed), then the reads in the role's own session, then the probe rows removed.
async fn prove(
    ctx: &CheckContext<'_>,
    table: &QualifiedName,
    fc: &FailClosed,
    role: &str,
    ran: &mut Vec<String>,
    identity: &mut String,
) -> Proven {
    let mut conn = ctx.pool.acquire().await.map_err(Broke::Pgdrill)?;
    let prepared = match prepare(&mut conn, table, fc, ran).await.map_err(Broke::Pgdrill)? {
        Ok(prepared) => prepared,
        Err(unproven) => return Ok(Err(unproven)),
    };
    // Who the session is, as the policies read it, is the application's when the role logs in
    // itself or the application reaches it from its login.
    let own_login = ctx.logins().as_the_application(ctx.pool, role).await;
    let mut doors = doors(own_login, &mut conn, table, fc, &prepared, ran).await.map_err(Broke::Pgdrill)?;
    let settings =
        match narrowing::settings(&mut conn, &table.sql(), fc, &prepared, &doors, ran).await.map_err(Broke::Pgdrill)? {
            Ok(settings) => settings,
            Err(why) => return Ok(Err(Unproven::Cannot(format!("cannot prove `{table}` fail-closed: {why}")))),
        };
    let fc = &FailClosed { settings, ..fc.clone() };
    let subject = Subject { table, fc, role };
    let need: Vec<String> = [(&prepared.a, prepared.a_rows), (&prepared.b, prepared.b_rows)]
        .into_iter()
        .filter(|(_, has)| !has)
        .map(|(v, _)| v.clone())
        .collect();
    let options = ctx.target.connect_options(ctx.database);
    let committed = if need.is_empty() {
        ran.push("-- the table holds rows of both tenants: no probe row is needed".into());
        None
    } else {
        let inserted = commit_probe_rows(ctx, subject, &prepared, &doors, &need, ran).await.map_err(Broke::Pgdrill)?;
        match inserted {
            Ok(made) => Some(made),
            Err(why) => return Ok(Err(Unproven::Cannot(format!("cannot prove `{table}` fail-closed: {why}")))),
        }
    };
    if committed.as_ref().is_some_and(|made| !made.by_role) {
        // pgdrill's session inserted them: what the INSERT's triggers read about that session
        // is not what they read about the application's.
        let inserting = inserting_facts(&mut conn, table, fc).await.map_err(Broke::Pgdrill)?;
        doors.untried.extend(inserting);
    }
    let rows = rows_of(&prepared, committed.as_ref(), &need);
    let unheld = narrowing::unheld(&mut conn, &table.sql(), fc, &prepared, &doors, &rows.a, ran)
        .await
        .map_err(Broke::Pgdrill)?;
    drop(conn);
    if let Some(why) = unheld {
        if let Some(made) = &committed {
            committed::remove(&options, made, ran).await;
        }
        return Ok(Err(Unproven::Cannot(format!("cannot prove `{table}` fail-closed: {why}"))));
    }
    let session = match ctx.logins().open(role).await {
        Ok(session) => session,
        Err(e) => {
            if let Some(made) = &committed {
                committed::remove(&options, made, ran).await;
            }
            return Err(Broke::Login(e.said(ctx.pool, role).await));
        }
    };
    *identity = session.identity().evidence();
    let facts = reads(&session, subject, &prepared, &rows, &doors, ran).await;
    session.close().await;
    if let Some(made) = &committed {
        committed::remove(&options, made, ran).await;
    }
    facts.map_err(Broke::Session)
}

/// The probe rows of the tenants in `need` (those the table holds no row of), committed: by the
/// role's own session when it can insert them, as the application inserts its rows, with the
/// values the policies compare with the scenario's settings or with constants. `Ok(Err(why))`
/// when none can be made.
async fn commit_probe_rows(
    ctx: &CheckContext<'_>,
    subject: Subject<'_>,
    prepared: &Prepared,
    doors: &doors::Doors,
    need: &[String],
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<committed::Committed, String>> {
    let Subject { table, fc, role } = subject;
    let decides = &doors.decides;
    let mut given = fc.probe_read.for_table(table);
    let constants = compared_with_constants(&doors.policies, &prepared.columns);
    for (column, value) in compared::with_settings(decides, &fc.settings).into_iter().chain(constants) {
        let taken = column == prepared.tenant.name || given.0.iter().any(|g| g.column == column);
        if !taken && prepared.columns.iter().any(|c| c.name == column) {
            given.0.push(probe::GivenValue { column, value, own: false });
        }
    }
    let writer = ctx.logins().open(role).await.ok();
    let request = committed::Request {
        table,
        columns: &prepared.columns,
        tenant: Some((&prepared.tenant.name, need)),
        tenant_setting: Some(&fc.setting),
        settings: &fc.settings,
        given: &given,
        probe: &fc.probe_read,
        hint: Hint { within: "fail_closed", per_table: true },
        writer: writer.as_ref(),
        decides,
    };
    let inserted = committed::insert(&ctx.target.connect_options(ctx.database), &request, ran).await;
    if let Some(writer) = writer {
        writer.close().await;
    }
    inserted
}

/// The predicates that pick each tenant's rows: its probe row (`tableoid` and `ctid`), or its
/// rows by the tenant column as text (the tenant as its type prints it).
fn rows_of(prepared: &Prepared, committed: Option<&committed::Committed>, need: &[String]) -> Rows {
    let by_tenant = |value: &str| {
        format!(
            "({}::pg_catalog.text OPERATOR(pg_catalog.=) {})",
            quote_ident(&prepared.tenant.name),
            quote_literal(value)
        )
    };
    let pick = |value: &str| -> String {
        let probe = need.iter().position(|n| n == value).and_then(|i| committed.and_then(|c| c.rows.get(i)));
        match probe {
            Some((oid, ctid)) => format!(
                "(tableoid OPERATOR(pg_catalog.=) {}::pg_catalog.oid AND ctid OPERATOR(pg_catalog.=) {}::pg_catalog.tid)",
                quote_literal(oid),
                quote_literal(ctid)
            ),
            None => by_tenant(value),
        }
    };
    Rows { a: pick(&prepared.a), b: pick(&prepared.b), probes: committed.map_or(0, |c| c.rows.len()) }
}

/// The columns, and the two tenants as the tenant column's type prints them (`'0A1B...'` as a
/// uuid is `0a1b...`, `'007'` as an integer is `7`): the scenario's, else two the table holds
/// (or its tenant column's foreign key finds), else made up; with pgdrill's `search_path`.
async fn prepare(
    conn: &mut sqlx::PgConnection,
    table: &QualifiedName,
    fc: &FailClosed,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Prepared, Unproven>> {
    let t = table.sql();
    let columns = probe::columns(conn, &t, ran).await?;
    let tenant_column = fold_ident(&fc.column);
    let Some(tenant) = columns.iter().find(|c| c.name == tenant_column).cloned() else {
        let hint = match columns.iter().find(|c| c.name.to_lowercase() == tenant_column.to_lowercase()) {
            Some(c) => format!(" (hint: did you mean `{}`?)", quote_ident_if_needed(&c.name)),
            None => String::new(),
        };
        return Ok(Err(Unproven::Cannot(format!("`{table}` has no column `{tenant_column}`{hint}"))));
    };
    let held = held_tenants(conn, &t, &tenant, ran).await?;
    let mut candidates = held.clone();
    if candidates.len() < 2
        && let Some((referenced, key)) = &tenant.references
    {
        // Tenants the application could write rows of: those its foreign key finds.
        let sql = format!("SELECT referenced.{key}::pg_catalog.text FROM {referenced} AS referenced LIMIT 3");
        ran.push(sql.clone());
        for value in sqlx::query_scalar::<_, String>(&sql).fetch_all(&mut *conn).await? {
            if !candidates.contains(&value) {
                candidates.push(value);
            }
        }
    }
    let facts = probe::type_facts(conn, &tenant).await?;
    let (a, b) = match tenant_values(&tenant, &facts, fc, &candidates) {
        Ok(values) => values,
        Err(why) => return Ok(Err(Unproven::Cannot(why.to_string()))),
    };
    let canonical_sql = format!("SELECT ($1::pg_catalog.text)::{}::pg_catalog.text", tenant.sql_type);
    let mut canonical = Vec::new();
    for value in [&a, &b] {
        ran.push(bind_evidence(&canonical_sql, &[value]));
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        let read = sqlx::query_scalar::<_, String>(&canonical_sql).bind(value).fetch_one(&mut *conn).await;
        sqlx::query("ROLLBACK").execute(&mut *conn).await?;
        match read {
            Ok(v) => canonical.push(v),
            Err(sqlx::Error::Database(db)) => {
                return Ok(Err(Unproven::Cannot(format!(
                    "the tenant `{value}` is not a value of `{}`'s type {}: {}",
                    tenant.name,
                    tenant.sql_type,
                    db.message()
                ))));
            }
            Err(e) => return Err(e),
        }
    }
    let (a, b) = (canonical[0].clone(), canonical[1].clone());
    if a == b {
        return Ok(Err(Unproven::Cannot(format!(
            "the two tenants are the same {} `{a}`: give `value` and `other_value` two different tenants",
            tenant.sql_type
        ))));
    }
    let holds = |v: &str| held.iter().any(|h| h == v);
    let a_rows = holds(&a) || held_any(conn, &t, &tenant, &a).await?;
    let b_rows = holds(&b) || held_any(conn, &t, &tenant, &b).await?;
    Ok(Ok(Prepared { columns, tenant, a, b, a_rows, b_rows }))
}

/// The reads in the role's own session: with no tenant set, each door a session could open
/// itself, as tenant B, as tenant A.
async fn reads(
    session: &AppSession,
    subject: Subject<'_>,
    prepared: &Prepared,
    rows: &Rows,
    doors: &Doors,
    ran: &mut Vec<String>,
) -> Result<Result<FailClosedFacts, Unproven>, Failure> {
    let Subject { table, fc, role } = subject;
    let t = table.sql();
    let run = async |sql: String, ran: &mut Vec<String>| {
        ran.push(sql.clone());
        session.run(&sql).await
    };
    run("BEGIN".into(), ran).await?;
    for (name, value) in &fc.settings.0 {
        run(login::set_local_sql(name, value), ran).await?;
    }
    run("SAVEPOINT unset".into(), ran).await?;
    let without = match run(format!("SELECT pg_catalog.count(*) FROM {t}"), ran).await {
        Ok(answer) => Some(answer.int().unwrap_or(0)),
        Err(failure @ Failure::Database { .. }) => {
            let (code, context) = failure.sqlstate().unwrap_or_default();
            let class = crate::sqlstate::classify(Probe::PolicyRead, code, context);
            if class == crate::sqlstate::Class::Privilege {
                return Ok(Err(Unproven::Closed(format!(
                    "`{role}` may not read `{table}` ({}): closed by privilege",
                    failure.describe()
                ))));
            }
            if !class.refuses() {
                // A timeout, a deadlock, an internal error: nothing says the table is closed.
                return Ok(Err(Unproven::Cannot(format!(
                    "the read of `{table}` as `{role}` with no tenant set {}: {failure}, so it proves nothing about row-level security",
                    class.describe(),
                ))));
            }
            run("ROLLBACK TO SAVEPOINT unset".into(), ran).await?;
            None
        }
        Err(lost) => return Err(lost),
    };
    let opened = match try_doors(session, subject, &prepared.b, rows, doors, ran).await? {
        Ok(opened) => opened,
        Err(unproven) => return Ok(Err(unproven)),
    };
    // Other tenants' rows: the tenant column as text against the tenant as its type prints it
    // (a value that prints otherwise counts as another tenant's).
    let column = quote_ident(&prepared.tenant.name);
    let mut seen = Vec::new();
    for (value, own) in [(&prepared.b, &rows.a), (&prepared.a, &rows.a)] {
        run(login::set_local_sql(&fc.setting, value), ran).await?;
        let read = format!(
            "SELECT pg_catalog.count(*) FILTER (WHERE {own}), \
             pg_catalog.count(*) FILTER (WHERE ({column}::pg_catalog.text OPERATOR(pg_catalog.=) {}) IS NOT TRUE) FROM {t}",
            quote_literal(value)
        );
        let answer = run(read, ran).await?;
        let row = answer.rows.first().cloned().unwrap_or_default();
        let int = |i: usize| row.get(i).cloned().flatten().and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        seen.push((int(0), int(1)));
    }
    run("ROLLBACK".into(), ran).await?;
    let [(b_sees_a, b_foreign), (a_sees_own, a_foreign)] = [seen[0], seen[1]];
    Ok(Ok(FailClosedFacts {
        without,
        b_sees_a,
        b_foreign,
        a_sees_own,
        a_foreign,
        opened,
        levers: doors.levers.clone(),
        trusted: doors.trusted.clone(),
        untried: doors.untried.clone(),
        probe_rows: rows.probes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Verdict;

    fn judge(facts: FailClosedFacts) -> CheckResult {
        let table = QualifiedName::new("public", "grants");
        let result = CheckResult::build(KIND, "public.grants fail-closed for app", Instant::now());
        judge_fail_closed(result, &table, "app", "app.tenant", &facts)
    }

    const CLOSED: FailClosedFacts = FailClosedFacts {
        without: Some(0),
        b_sees_a: 0,
        b_foreign: 0,
        a_sees_own: 1,
        a_foreign: 0,
        opened: None,
        levers: Vec::new(),
        trusted: Vec::new(),
        untried: Vec::new(),
        probe_rows: 2,
    };

    #[test]
    fn closed_reads_pass_and_each_leak_fails_with_its_code() {
        assert_eq!(judge(CLOSED).code, "rls.fail-closed");
        assert_eq!(
            judge(FailClosedFacts { without: None, ..CLOSED }).code,
            "rls.fail-closed",
            "a refused read is closed"
        );
        let untried = crate::check::loophole::Untried {
            fact: crate::check::loophole::facts::Fact::Address("inet_client_addr"),
            read_by: vec!["policy `p`".into()],
        };
        let cases = [
            (FailClosedFacts { without: Some(2), ..CLOSED }, "rls.unset-tenant-reads-rows"),
            (FailClosedFacts { b_sees_a: 1, ..CLOSED }, "rls.tenant-reads-other-tenant"),
            (FailClosedFacts { a_foreign: 3, ..CLOSED }, "rls.tenant-reads-other-tenant"),
            (FailClosedFacts { a_sees_own: 0, ..CLOSED }, "rls.tenant-cannot-read-own"),
            (FailClosedFacts { opened: Some("a door".into()), ..CLOSED }, "rls.session-setting-opens"),
            (FailClosedFacts { untried: vec![untried], ..CLOSED }, "rls.only-like-the-drill"),
        ];
        for (facts, code) in cases {
            let result = judge(facts);
            assert_eq!((result.verdict, result.code.as_str()), (Verdict::Fail, code), "{result:?}");
        }
    }
}
