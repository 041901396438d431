//! Fail-closed reads: the application role reads no rows of a table without the tenant setting,
//! and only its own tenant's rows with it, proven on every table, empty ones included, with a
//! probe row per tenant ([`crate::check::probe`]) in a transaction that is always rolled back.
//!
//! In order: the application's window (`check::as_app`: the backup's settings for the role, the
//! scenario's `settings`); pgdrill's own statements with `search_path = pg_catalog, pg_temp`
//! (the role's privilege, the columns, the two tenants read as the tenant column's type, the
//! probe rows inserted as the restore's superuser); then, with the window's `search_path` back,
//! `SET LOCAL ROLE` and the reads: with no tenant set (no rows, or a refused read), as tenant B
//! (not A's row, no other tenant's), and as tenant A (A's row). The reads name every built-in
//! by its schema (`pg_catalog.count`, `OPERATOR(pg_catalog.=)`), so the window's `search_path`
//! decides what the policies see and nothing of pgdrill's own. The evidence is the SQL that
//! ran, in order, with the probe row's values and what was set aside for it.

use std::time::Instant;

use super::{FailClosed, KIND};
use crate::check::loophole::{self, Attempt, Lever, Step, Trusted};
use crate::check::probe::{self, Column, Hint, Request, TypeFacts};
use crate::check::{CheckContext, CheckResult, CheckResultBuilder, as_app, bind_evidence};
use crate::pg::{QualifiedName, describe_sql_error, fold_ident, quote_ident, quote_ident_if_needed};
use crate::sqlstate::Probe;

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
    let without = match f.without {
        Some(n) => format!("{n} rows"),
        None => "refused".to_owned(),
    };
    let actual = format!(
        "without {setting}: {without}; as tenant B: {} of A's probe row, {} rows of other tenants; as tenant A: {} of its probe row, {} rows of other tenants",
        f.b_sees_a, f.b_foreign, f.a_sees_own, f.a_foreign
    );
    let result = result.actual(actual);
    if let Some(n) = f.without.filter(|n| *n > 0) {
        return result
            .verdict(false, format!("`{role}` reads {n} rows of `{table}` with no tenant set (pgdrill's two probe rows included): not fail-closed"));
    }
    if let Some(opened) = &f.opened {
        return result.verdict(false, format!("{opened}: not fail-closed"));
    }
    if f.b_sees_a > 0 || f.b_foreign > 0 {
        return result.verdict(
            false,
            format!(
                "`{role}` with {setting} set to tenant B reads {} of tenant A's probe row and {} rows of other tenants of `{table}`: tenants are not isolated",
                f.b_sees_a, f.b_foreign
            ),
        );
    }
    if f.a_foreign > 0 {
        return result.verdict(
            false,
            format!(
                "`{role}` with {setting} set to tenant A also reads {} rows of other tenants of `{table}`",
                f.a_foreign
            ),
        );
    }
    if f.a_sees_own == 0 {
        return result.verdict(
            false,
            format!(
                "`{role}` with {setting} set to tenant A cannot read A's own probe row of `{table}`: the policy hides every row, or reads another setting"
            ),
        );
    }
    let mut message = format!(
        "`{role}` sees no rows of `{table}` without {setting}, only tenant A's probe row as A, and not A's as tenant B"
    );
    if !f.levers.is_empty() {
        message.push_str(&format!("; nor with {} set by the session", f.levers.join(", ")));
    }
    if !f.trusted.is_empty() {
        let shown: Vec<String> = f.trusted.iter().map(Trusted::shown).collect();
        message.push_str(&format!("; not tried: {}", shown.join("; ")));
    }
    result.verdict(true, message)
}

/// Why the reads did not run: the role may not read the table (closed), or no probe row could
/// be made.
enum Unproven {
    Closed(String),
    Cannot(String),
}

/// The tenant column and the two tenants, as the column's type prints them.
struct Prepared {
    columns: Vec<Column>,
    tenant: Column,
    a: String,
    b: String,
}

/// Proves `table` fail-closed for the role that reads it (see the module's comment). A role
/// that may not read the table at all is closed by privilege.
pub(super) async fn fail_closed(ctx: &CheckContext<'_>, table: &QualifiedName, fc: &FailClosed) -> CheckResult {
    let started = Instant::now();
    let role_name = fold_ident(fc.role_for(table));
    let role = role_name.as_str();
    let setting = &fc.setting;
    let mut ran: Vec<String> = vec!["BEGIN".into()];
    let outcome = prove(ctx, table, fc, role, &mut ran).await;
    ran.push("ROLLBACK".into());
    let result = CheckResult::build(KIND, format!("{table} fail-closed for {role}"), started)
        .expected(format!(
            "no rows without {setting}; as a tenant, its own rows only (a probe row for each of two tenants)"
        ))
        .evidence(ran.join(";\n"));
    match outcome {
        Err(err) => result.error(format!("could not read `{table}` as `{role}`: {}", describe_sql_error(&err))),
        Ok(Err(Unproven::Closed(message))) => result.actual("no SELECT privilege").verdict(true, message),
        Ok(Err(Unproven::Cannot(message))) => result.error(message),
        Ok(Ok(facts)) => judge_fail_closed(result, table, role, setting, &facts),
    }
}

type Proven = Result<Result<FailClosedFacts, Unproven>, sqlx::Error>;

/// The transaction: window, pgdrill's own statements, probe rows, reads; always rolled back.
async fn prove(
    ctx: &CheckContext<'_>,
    table: &QualifiedName,
    fc: &FailClosed,
    role: &str,
    ran: &mut Vec<String>,
) -> Proven {
    let mut tx = as_app::Probe::begin(ctx.pool, Some(role), &fc.settings).await?;
    let mut watched = tx.window.names();
    watched.push(fc.setting.clone());
    ran.extend(tx.window.0.iter().cloned());
    let path = probe::pin_search_path(&mut tx, ran).await?;
    let prepared = match prepare(&mut tx, table, fc, role, ran).await? {
        Ok(prepared) => prepared,
        Err(unproven) => return Ok(Err(unproven)),
    };
    let given = fc.probe.for_table(table);
    let tenants = [prepared.a.clone(), prepared.b.clone()];
    let request = Request {
        table,
        columns: &prepared.columns,
        tenant: Some((&prepared.tenant.name, &tenants)),
        given: &given,
        hint: Hint { within: "fail_closed", per_table: true },
        pins: ctx.target.pins,
        watched,
    };
    let inserted = match probe::insert(&mut tx, &request, ran).await? {
        Ok(inserted) => inserted,
        Err(why) => return Ok(Err(Unproven::Cannot(format!("cannot prove `{table}` fail-closed: {why}")))),
    };
    let doors = doors(&mut tx, table, fc, &prepared, ran).await?;
    probe::restore_search_path(&mut tx, &path, ran).await?;
    let facts = reads(&mut tx, table, fc, role, &prepared, &inserted.rows, &doors, ran).await?;
    tx.rollback().await?;
    Ok(facts)
}

/// The role's privilege, the columns, and the two tenants as the tenant column's type prints
/// them (`'0A1B...'` as a uuid is `0a1b...`, `'007'` as an integer is `7`), with pgdrill's
/// `search_path` pinned.
async fn prepare(
    conn: &mut sqlx::PgConnection,
    table: &QualifiedName,
    fc: &FailClosed,
    role: &str,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Prepared, Unproven>> {
    let t = table.sql();
    let privilege_sql = "SELECT pg_catalog.has_any_column_privilege($1, $2, 'SELECT')";
    ran.push(bind_evidence(privilege_sql, &[role, &t]));
    let readable: bool = sqlx::query_scalar(privilege_sql).bind(role).bind(&t).fetch_one(&mut *conn).await?;
    if !readable {
        return Ok(Err(Unproven::Closed(format!(
            "`{role}` has no SELECT privilege on `{table}`: closed by privilege"
        ))));
    }
    let columns = probe::columns(conn, &t, ran).await?;
    let tenant_column = fold_ident(&fc.column);
    let Some(tenant) = columns.iter().find(|c| c.name == tenant_column).cloned() else {
        let hint = match columns.iter().find(|c| c.name.to_lowercase() == tenant_column.to_lowercase()) {
            Some(c) => format!(" (hint: did you mean `{}`?)", quote_ident_if_needed(&c.name)),
            None => String::new(),
        };
        return Ok(Err(Unproven::Cannot(format!("`{table}` has no column `{tenant_column}`{hint}"))));
    };
    let facts = probe::type_facts(conn, &tenant).await?;
    let (a, b) = match tenant_values(&tenant, &facts, fc) {
        Ok(values) => values,
        Err(why) => return Ok(Err(Unproven::Cannot(why))),
    };
    let canonical_sql = format!("SELECT ($1::pg_catalog.text)::{}::pg_catalog.text", tenant.sql_type);
    let mut canonical = Vec::new();
    for value in [&a, &b] {
        ran.push(bind_evidence(&canonical_sql, &[value]));
        sqlx::query("SAVEPOINT tenant_value").execute(&mut *conn).await?;
        match sqlx::query_scalar::<_, String>(&canonical_sql).bind(value).fetch_one(&mut *conn).await {
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
        sqlx::query("RELEASE SAVEPOINT tenant_value").execute(&mut *conn).await?;
    }
    let (a, b) = (canonical[0].clone(), canonical[1].clone());
    if a == b {
        return Ok(Err(Unproven::Cannot(format!(
            "the two tenants are the same {} `{a}`: give `value` and `other_value` two different tenants",
            tenant.sql_type
        ))));
    }
    Ok(Ok(Prepared { columns, tenant, a, b }))
}

/// The doors a session could open itself ([`loophole`]): the custom settings the table's
/// policies (and the functions they call) read but the tenant's, and the tenant values they
/// treat specially; read with pgdrill's `search_path` pinned, as the superuser.
struct Doors {
    attempts: Vec<Attempt>,
    levers: Vec<String>,
    trusted: Vec<Trusted>,
}

async fn doors(
    conn: &mut sqlx::PgConnection,
    table: &QualifiedName,
    fc: &FailClosed,
    prepared: &Prepared,
    ran: &mut Vec<String>,
) -> sqlx::Result<Doors> {
    ran.push(bind_evidence(loophole::POLICY_READERS_SQL, &[&table.sql()]));
    let readers = loophole::readers(conn, loophole::POLICY_READERS_SQL, &table.sql()).await?;
    let mut levers = loophole::levers(&readers, &[&fc.setting]);
    let tenant = fc.setting.to_lowercase();
    let tenant_readers: Vec<String> = readers
        .iter()
        .filter(|r| loophole::settings_read(&r.text).iter().any(|(s, _)| *s == tenant))
        .map(|r| r.name.clone())
        .collect();
    if !tenant_readers.is_empty() {
        let values: Vec<String> = loophole::special_tenants(&readers, &tenant)
            .into_iter()
            .filter(|v| *v != prepared.a && *v != prepared.b)
            .collect();
        levers.push(Lever { setting: tenant, values, read_by: tenant_readers });
    }
    let (attempts, trusted) = loophole::attempts(&levers, &fc.trusted);
    let shown = levers.iter().map(|l| format!("{} ({})", l.setting, l.values.join(" | "))).collect();
    Ok(Doors { attempts, levers: shown, trusted })
}

/// Each door tried as the role, with no tenant set but the door: a savepoint, the setting, a
/// read of the two probe rows, back to the savepoint. A read that fails opened nothing. Then
/// each door (but the tenant setting's own values) again with tenant B set, reading A's probe
/// row: a policy that reads the tenant with `current_setting('app.tenant')` (no `missing_ok`)
/// errs before its `OR current_setting('app.bypass', true) = 'on'` is reached when no tenant
/// is set, but a session of any tenant opens every tenant's rows with the flag.
async fn try_doors(
    conn: &mut sqlx::PgConnection,
    table: &QualifiedName,
    role: &str,
    (setting, b): (&str, &str),
    rows: &[(i64, String)],
    doors: &Doors,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Option<String>, Unproven>> {
    let t = table.sql();
    let seen = format!(
        "SELECT pg_catalog.count(*) FROM {t} WHERE (tableoid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND ctid OPERATOR(pg_catalog.=) $2::pg_catalog.tid) \
         OR (tableoid OPERATOR(pg_catalog.=) $3::pg_catalog.oid AND ctid OPERATOR(pg_catalog.=) $4::pg_catalog.tid)"
    );
    let seen_a = format!(
        "SELECT pg_catalog.count(*) FROM {t} WHERE tableoid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND ctid OPERATOR(pg_catalog.=) $2::pg_catalog.tid"
    );
    let set = "SELECT pg_catalog.set_config($1, $2, true)";
    if !doors.attempts.is_empty() {
        ran.push(format!(
            "-- for each of {}: SAVEPOINT door; {}; {}; ROLLBACK TO SAVEPOINT door",
            doors.levers.join(", "),
            set,
            bind_evidence(&seen, &[&rows[0].0.to_string(), &rows[0].1, &rows[1].0.to_string(), &rows[1].1])
        ));
    }
    let as_b: Vec<&Attempt> = doors.attempts.iter().filter(|a| !a.setting.eq_ignore_ascii_case(setting)).collect();
    if !as_b.is_empty() {
        ran.push(format!(
            "-- for each of them again as tenant B: SAVEPOINT door; {}; {}; {}; ROLLBACK TO SAVEPOINT door",
            bind_evidence(set, &[setting, b]),
            set,
            bind_evidence(&seen_a, &[&rows[0].0.to_string(), &rows[0].1])
        ));
    }
    let both = [(rows[0].0, rows[0].1.as_str()), (rows[1].0, rows[1].1.as_str())];
    let tries = doors.attempts.iter().map(|a| (a, None, &seen, &both[..]));
    let tries = tries.chain(as_b.into_iter().map(|a| (a, Some((setting, b)), &seen_a, &both[..1])));
    for (attempt, tenant, read, probes) in tries {
        match try_door(conn, tenant, attempt, read, probes).await? {
            Ok(0) => {}
            Ok(count) => {
                let what = match tenant {
                    None => format!("`{role}` reads {count} of the two tenants' probe rows of `{table}`"),
                    Some(_) => format!("`{role}` set to tenant B reads tenant A's probe row of `{table}`"),
                };
                return Ok(Ok(Some(loophole::opened(attempt, &what))));
            }
            Err(why) => {
                return Ok(Err(Unproven::Cannot(format!(
                    "the read of `{table}` as `{role}`{} with `{}` = '{}' set failed for a reason that is not a refusal: {why}, so it proves nothing about the doors a session can open",
                    if tenant.is_some() { " set to tenant B" } else { "" },
                    attempt.setting,
                    attempt.value
                ))));
            }
        }
    }
    Ok(Ok(None))
}

/// One door tried in a savepoint: the tenant (if any), the door's setting, then `read` of the
/// probe rows; the rows it sees, or why its error proves nothing (an error that says the door
/// stayed shut counts as none seen).
async fn try_door(
    conn: &mut sqlx::PgConnection,
    tenant: Option<(&str, &str)>,
    attempt: &Attempt,
    read: &str,
    probes: &[(i64, &str)],
) -> sqlx::Result<Result<i64, String>> {
    let set = "SELECT pg_catalog.set_config($1, $2, true)";
    as_app::in_savepoint(conn, "door", None, async |conn| {
        let sets = tenant.into_iter().chain([(attempt.setting.as_str(), attempt.value.as_str())]);
        for (setting, value) in sets {
            if let Err(e) = sqlx::query(set).bind(setting).bind(value).execute(&mut *conn).await {
                return loophole::stayed_shut(&e, Step::Set).map(|()| 0);
            }
        }
        let mut query = sqlx::query_scalar::<_, i64>(read);
        for (oid, ctid) in probes {
            query = query.bind(*oid).bind(*ctid);
        }
        query
            .fetch_one(&mut *conn)
            .await
            .or_else(|e| loophole::stayed_shut(&e, Step::Statement(Probe::PolicyRead)).map(|()| 0))
    })
    .await
}

/// The reads as the role: with no tenant set, each door a session could open itself, as tenant
/// B, as tenant A. `rows`: the probe rows (`tableoid`, `ctid`), tenant A's first.
#[allow(clippy::too_many_arguments)]
async fn reads(
    conn: &mut sqlx::PgConnection,
    table: &QualifiedName,
    fc: &FailClosed,
    role: &str,
    prepared: &Prepared,
    rows: &[(i64, String)],
    doors: &Doors,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<FailClosedFacts, Unproven>> {
    let probe = &rows[0];
    let t = table.sql();
    let set_role = crate::pg::set_local_role(role);
    for statement in [set_role.as_str(), "SAVEPOINT unset"] {
        ran.push(statement.to_owned());
        sqlx::query(statement).execute(&mut *conn).await?;
    }
    let count_sql = format!("SELECT pg_catalog.count(*) FROM {t}");
    ran.push(count_sql.clone());
    let without = match sqlx::query_scalar::<_, i64>(&count_sql).fetch_one(&mut *conn).await {
        Ok(n) => Some(n),
        Err(err @ sqlx::Error::Database(_)) => {
            let (code, context) = crate::sqlstate::of(&err).unwrap_or_default();
            let class = crate::sqlstate::classify(crate::sqlstate::Probe::PolicyRead, &code, context.as_deref());
            if !class.refuses() {
                // A timeout, a deadlock, an internal error: nothing says the table is closed.
                return Ok(Err(Unproven::Cannot(format!(
                    "the read of `{table}` as `{role}` with no tenant set {}: {}, so it proves nothing about row-level security",
                    class.describe(),
                    describe_sql_error(&err)
                ))));
            }
            ran.push("ROLLBACK TO SAVEPOINT unset".into());
            sqlx::query("ROLLBACK TO SAVEPOINT unset").execute(&mut *conn).await?;
            None
        }
        Err(e) => return Err(e),
    };
    let opened = match try_doors(conn, table, role, (&fc.setting, &prepared.b), rows, doors, ran).await? {
        Ok(opened) => opened,
        Err(unproven) => return Ok(Err(unproven)),
    };
    // Other tenants' rows: the tenant column as text against the tenant as its type prints it
    // (a value that prints otherwise counts as another tenant's).
    let read = format!(
        "SELECT pg_catalog.count(*) FILTER (WHERE tableoid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND ctid OPERATOR(pg_catalog.=) $2::pg_catalog.tid), \
         pg_catalog.count(*) FILTER (WHERE ({}::pg_catalog.text OPERATOR(pg_catalog.=) $3::pg_catalog.text) IS NOT TRUE) FROM {t}",
        quote_ident(&prepared.tenant.name)
    );
    let set_tenant = "SELECT pg_catalog.set_config($1, $2, true)";
    let oid = probe.0.to_string();
    let mut seen = Vec::new();
    for value in [&prepared.b, &prepared.a] {
        ran.push(bind_evidence(set_tenant, &[&fc.setting, value]));
        sqlx::query(set_tenant).bind(&fc.setting).bind(value).execute(&mut *conn).await?;
        ran.push(bind_evidence(&read, &[&oid, &probe.1, value]));
        let counts: (i64, i64) =
            sqlx::query_as(&read).bind(probe.0).bind(&probe.1).bind(value).fetch_one(&mut *conn).await?;
        seen.push(counts);
    }
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
    }))
}

/// Two tenants' values for the tenant column, as the scenario wrote them, else made up for its
/// type (then read as the column's type by [`prepare`]).
fn tenant_values(column: &Column, facts: &TypeFacts, fc: &FailClosed) -> Result<(String, String), String> {
    let made_up = || {
        probe::tenant_literal(facts).ok_or_else(|| {
            format!(
                "pgdrill cannot make up tenants for `{}` of type {} (hint: give `value` and `other_value`)",
                column.name, column.sql_type
            )
        })
    };
    let a = match &fc.value {
        Some(v) => v.clone(),
        None => made_up()?,
    };
    let b = match &fc.other_value {
        Some(v) => v.clone(),
        None => made_up()?,
    };
    Ok((a, b))
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
    };

    #[test]
    fn closed_reads_pass_and_each_leak_fails_with_its_reason() {
        assert_eq!(judge(CLOSED).verdict, Verdict::Pass);
        assert_eq!(
            judge(FailClosedFacts { without: None, ..CLOSED }).verdict,
            Verdict::Pass,
            "a refused read is closed"
        );
        let cases = [
            (FailClosedFacts { without: Some(2), ..CLOSED }, "reads 2 rows of `public.grants` with no tenant set"),
            (FailClosedFacts { b_sees_a: 1, ..CLOSED }, "set to tenant B reads 1 of tenant A's probe row"),
            (FailClosedFacts { a_foreign: 3, ..CLOSED }, "also reads 3 rows of other tenants"),
            (FailClosedFacts { a_sees_own: 0, ..CLOSED }, "cannot read A's own probe row"),
            (FailClosedFacts { opened: Some("a door".into()), ..CLOSED }, "a door: not fail-closed"),
        ];
        for (facts, says) in cases {
            let result = judge(facts);
            assert_eq!(result.verdict, Verdict::Fail, "{result:?}");
            assert!(result.message.contains(says), "{}", result.message);
        }
    }
}
