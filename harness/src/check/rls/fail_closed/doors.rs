//! The doors a session could open itself on a fail-closed table ([`crate::check::loophole`]):
//! what the table's policies (and every function they reach) read about the session, the
//! settings among it tried in the role's own session with no tenant set and again as tenant B,
//! and, when pgdrill's session inserted the probe rows, what the INSERT's code read about that
//! session.

use super::{FailClosed, Prepared, Rows, Subject, Unproven};
use crate::check::login::{self, AppSession, Failure};
use crate::check::loophole::{self, Attempt, Lever, ProvesNothing, Step, Trusted, Untried, graph};
use crate::pg::QualifiedName;
use crate::sqlstate::Probe;

/// What the table's INSERT triggers (and rules, and all the code they reach) read about the
/// session when pgdrill's own session inserted the probe rows: who it is included, since that
/// session was not the role's.
pub(super) async fn inserting_facts(
    conn: &mut sqlx::PgConnection,
    table: &QualifiedName,
    fc: &FailClosed,
) -> sqlx::Result<Vec<Untried>> {
    let mut gathered = graph::gather(conn, &table.sql(), graph::For::Insert, &[]).await?;
    gathered.narrow_beside(&fc.setting);
    let contexts = loophole::contexts(conn).await?;
    let (untried, _) = loophole::untried(&gathered, &contexts, false, &fc.trusted, &[fc.setting.as_str()]);
    Ok(untried
        .into_iter()
        .map(|mut u| {
            u.read_by = u
                .read_by
                .into_iter()
                .map(|r| format!("{r} (run when pgdrill's session inserted the probe rows, since the role could not)"))
                .collect();
            u
        })
        .collect())
}

/// The doors a session could open itself ([`loophole`]): the custom settings the table's
/// policies (and the functions they call) read but the tenant's, and the tenant values they
/// treat specially; read with pgdrill's `search_path` pinned, as the superuser.
pub(super) struct Doors {
    pub attempts: Vec<Attempt>,
    pub levers: Vec<String>,
    pub trusted: Vec<Trusted>,
    /// What the policies' code reads that no try shows (and the INSERT triggers' when pgdrill
    /// inserts probe rows: filled in then).
    pub untried: Vec<Untried>,
    /// The policies' code, whole and in lower case: what the backup's code writes elsewhere while
    /// probe rows are inserted matters when this reads it.
    pub decides: Vec<String>,
    /// The policies' own expressions, in lower case.
    pub policies: Vec<String>,
    /// The settings (but the tenant's) the policies read only where they hide rows and never
    /// show more ([`loophole::narrowing`]), in lower case.
    pub narrowing: Vec<String>,
}

pub(super) async fn doors(
    own_login: bool,
    conn: &mut sqlx::PgConnection,
    table: &QualifiedName,
    fc: &FailClosed,
    prepared: &Prepared,
    ran: &mut Vec<String>,
) -> sqlx::Result<Doors> {
    let mut gathered = graph::gather(conn, &table.sql(), graph::For::Read, &[]).await?;
    gathered.narrow_beside(&fc.setting);
    let contexts = loophole::contexts(conn).await?;
    let readers = &gathered.readers;
    let mut levers = loophole::levers(readers, &[&fc.setting], &contexts);
    let tenant = fc.setting.to_lowercase();
    let tenant_readers: Vec<String> = readers
        .iter()
        .filter(|r| loophole::settings_read(&r.text).iter().any(|(s, _)| *s == tenant))
        .map(|r| r.name.clone())
        .collect();
    if !tenant_readers.is_empty() {
        let values: Vec<String> = loophole::special_tenants(readers, &tenant)
            .into_iter()
            .filter(|v| *v != prepared.a && *v != prepared.b)
            .collect();
        levers.push(Lever { setting: tenant, values, read_by: tenant_readers });
    }
    let (attempts, mut trusted) = loophole::attempts(&levers, &fc.trusted);
    let (mut untried, trusted_facts) =
        loophole::untried(&gathered, &contexts, own_login, &fc.trusted, &[fc.setting.as_str()]);
    for t in trusted_facts {
        if !trusted.contains(&t) {
            trusted.push(t);
        }
    }
    // The policies' own comparisons of the row with a constant by order or pattern: no probe
    // row's one value tries them.
    let named: Vec<(String, String)> = readers
        .iter()
        .filter(|r| r.name.starts_with("policy "))
        .map(|r| (r.name.clone(), r.text.to_lowercase()))
        .collect();
    for (column, how, policy) in super::values::ordered(&named, &prepared.columns) {
        let fact = loophole::facts::Fact::RowValue(column, how);
        match fc.trusted.iter().find(|t| t.covers_fact(&fact)) {
            Some(t) if !trusted.contains(t) => trusted.push(t.clone()),
            Some(_) => {}
            None => untried.push(Untried { fact, read_by: vec![policy] }),
        }
    }
    let read: Vec<String> = readers.iter().map(|r| r.name.clone()).collect();
    ran.push(format!(
        "-- the policies' code, read whole: {}",
        if read.is_empty() { "none".to_owned() } else { read.join("; ") }
    ));
    let shown = levers.iter().map(|l| format!("{} ({})", l.setting, l.values.join(" | "))).collect();
    let decides = readers.iter().map(|r| r.text.to_lowercase()).collect();
    let policies = readers.iter().filter(|r| r.name.starts_with("policy ")).map(|r| r.text.to_lowercase()).collect();
    let narrowing = narrowing(&gathered, &fc.setting.to_lowercase());
    Ok(Doors { attempts, levers: shown, trusted, untried, decides, policies, narrowing })
}

/// The settings but `tenant` the policies read that no reader's deciding text reads.
fn narrowing(gathered: &graph::Gathered, tenant: &str) -> Vec<String> {
    let deciding: Vec<String> =
        gathered.readers.iter().flat_map(|r| loophole::settings_read(gathered.deciding(r))).map(|(s, _)| s).collect();
    let mut out: Vec<String> = Vec::new();
    for reader in gathered.readers.iter().filter(|r| r.name.starts_with("policy ")) {
        for (setting, _) in loophole::settings_read(&reader.text) {
            if setting != tenant && !deciding.contains(&setting) && !out.contains(&setting) {
                out.push(setting);
            }
        }
    }
    out
}

/// Each door tried in the role's session, with no tenant set but the door: a savepoint, the
/// setting, a read of the two tenants' rows, back to the savepoint. A read that fails opened
/// nothing. Then each door (but the tenant setting's own values) again with tenant B set,
/// reading A's rows: a policy that reads the tenant with `current_setting('app.tenant')` (no
/// `missing_ok`) errs before its `OR current_setting('app.bypass', true) = 'on'` is reached when
/// no tenant is set, but a session of any tenant opens every tenant's rows with the flag.
pub(super) async fn try_doors(
    session: &AppSession,
    subject: Subject<'_>,
    b: &str,
    rows: &Rows,
    doors: &Doors,
    ran: &mut Vec<String>,
) -> Result<Result<Option<String>, Unproven>, Failure> {
    let Subject { table, role, .. } = subject;
    let setting = subject.fc.setting.as_str();
    let t = table.sql();
    let seen = format!("SELECT pg_catalog.count(*) FROM {t} WHERE {} OR {}", rows.a, rows.b);
    let seen_a = format!("SELECT pg_catalog.count(*) FROM {t} WHERE {}", rows.a);
    if !doors.attempts.is_empty() {
        ran.push(format!(
            "-- for each of {}: SAVEPOINT door; SELECT pg_catalog.set_config(<setting>, <value>, true); {seen}; ROLLBACK TO SAVEPOINT door",
            doors.levers.join(", ")
        ));
    }
    let as_b: Vec<&Attempt> = doors.attempts.iter().filter(|a| !a.setting.eq_ignore_ascii_case(setting)).collect();
    if !as_b.is_empty() {
        ran.push(format!(
            "-- for each of them again as tenant B: SAVEPOINT door; {}; SELECT pg_catalog.set_config(<setting>, <value>, true); {seen_a}; ROLLBACK TO SAVEPOINT door",
            login::set_local_sql(setting, b)
        ));
    }
    let tries = doors.attempts.iter().map(|a| (a, None, &seen));
    let tries = tries.chain(as_b.into_iter().map(|a| (a, Some((setting, b)), &seen_a)));
    for (attempt, tenant, read) in tries {
        match try_door(session, tenant, attempt, read).await? {
            Ok(0) => {}
            Ok(count) => {
                let what = match tenant {
                    None => format!("`{role}` reads {count} rows of the two tenants of `{table}`"),
                    Some(_) => format!("`{role}` set to tenant B reads tenant A's rows of `{table}`"),
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

/// One door tried in a savepoint: the tenant (if any), the door's setting, then `read`; the rows
/// it sees, or why its error proves nothing (an error that says the door stayed shut counts as
/// none seen).
async fn try_door(
    session: &AppSession,
    tenant: Option<(&str, &str)>,
    attempt: &Attempt,
    read: &str,
) -> Result<Result<i64, ProvesNothing>, Failure> {
    session.run("SAVEPOINT door").await?;
    let sets = tenant.into_iter().chain([(attempt.setting.as_str(), attempt.value.as_str())]);
    let mut outcome = None;
    for (setting, value) in sets {
        match session.run(&login::set_local_sql(setting, value)).await {
            Ok(_) => {}
            Err(f @ Failure::Database { .. }) => {
                outcome = Some(loophole::stayed_shut(f, Step::Set).map(|()| 0));
                break;
            }
            Err(lost) => return Err(lost),
        }
    }
    let outcome = match outcome {
        Some(outcome) => outcome,
        None => match session.run(read).await {
            Ok(answer) => Ok(answer.int().unwrap_or(0)),
            Err(f @ Failure::Database { .. }) => {
                loophole::stayed_shut(f, Step::Statement(Probe::PolicyRead)).map(|()| 0)
            }
            Err(lost) => return Err(lost),
        },
    };
    session.run("ROLLBACK TO SAVEPOINT door").await?;
    Ok(outcome)
}
