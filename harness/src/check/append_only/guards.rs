//! What guards an audit table, read whole and tried: for the operations that were refused
//! although the role holds them, every trigger, rule and policy on changes and all the code
//! they reach ([`loophole`]); each setting a session may set is tried in the role's own
//! session, and any other fact that code reads about the session fails as proven only for
//! sessions like the drill's, unless the scenario trusts it.

use std::time::Instant;

use super::probe;
use super::{Found, Held, KIND, Operation, Spec, Writer};
use crate::check::login::{self, Failure};
use crate::check::loophole::{self, Step, Trusted};
use crate::check::{CheckContext, CheckResult};
use crate::pg::describe_sql_error;
use crate::sqlstate::Probe as SqlProbe;

/// Whether row security does not apply to role `$1` on table `$2`: it is BYPASSRLS, or it
/// has the table owner's privileges and row security is not forced there.
const BYPASSES_SQL: &str = "SELECT r.rolbypassrls OR (pg_catalog.pg_has_role(r.oid, c.relowner, 'USAGE') AND NOT c.relforcerowsecurity) \
     FROM pg_catalog.pg_roles r, pg_catalog.pg_class c \
     WHERE r.rolname OPERATOR(pg_catalog.=) $1 AND c.oid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass";

impl Spec {
    /// What guards the operations that were refused although granted (the triggers, rules and
    /// policies on changes, and all the code they reach: [`loophole`]) reads about the session:
    /// each setting a session may set is tried in the role's own session, as the role would,
    /// and must not let them through; any other fact fails as proven only for sessions like the
    /// drill's, unless trusted.
    pub(super) async fn loopholes(
        &self,
        ctx: &CheckContext<'_>,
        w: &mut Writer<'_>,
        started: Instant,
        held: &[Held],
    ) -> Result<CheckResult, Failure> {
        let result = CheckResult::build(KIND, self.object("what its guards read"), started).expected(
            "nothing its triggers, rules or policies read about the session lets the role change or erase rows",
        );
        let contexts_of: Vec<&str> = held.iter().filter_map(|h| h.context.as_deref()).collect();
        let refused_by = loophole::graph::refused_by(&contexts_of);
        let (gathered, contexts) = match self.guards(ctx, &refused_by).await {
            Ok(found) => found,
            Err(e) => {
                return Ok(result.found(
                    Found::CouldNotRead,
                    format!("cannot read what guards `{}`: {}", self.table, describe_sql_error(&e)),
                ));
            }
        };
        let levers = loophole::levers(&gathered.readers, &[], &contexts);
        let (attempts, mut trusted) = loophole::attempts(&levers, &self.trusted);
        let own_login = ctx.logins().as_the_application(ctx.pool, &self.role).await;
        // The settings the scenario gives the writer (who it is: `request.jwt.claim.sub`) are
        // the session's, as the application sets them: their uses are not keys to try.
        let given: Vec<&str> = self.settings.0.keys().map(String::as_str).collect();
        let (untried, trusted_facts) = loophole::untried(&gathered, &contexts, own_login, &self.trusted, &given);
        for t in trusted_facts {
            if !trusted.contains(&t) {
                trusted.push(t);
            }
        }
        let result = result.evidence(guard_evidence(w, &gathered, &levers, &trusted));
        for attempt in &attempts {
            for h in held {
                match try_lever(w, attempt, h).await? {
                    Ok(false) => {}
                    Ok(true) => {
                        let what = format!("`{}` can {} `{}`", self.role, h.operation, self.table);
                        return Ok(result
                            .actual(format!(
                                "{} went through with {} = '{}'",
                                h.operation, attempt.setting, attempt.value
                            ))
                            .found(
                                Found::SessionSettingOpens,
                                format!("{}: the audit trail is not append-only", loophole::opened(attempt, &what)),
                            ));
                    }
                    Err(why) => {
                        return Ok(result.found(Found::Unproven, format!(
                            "{} on `{}` as `{}` with `{}` = '{}' set failed for a reason that is not a refusal: {why}, so it proves nothing about the settings a session can open it with",
                            h.operation, self.table, self.role, attempt.setting, attempt.value
                        )));
                    }
                }
            }
        }
        if !untried.is_empty() {
            let ops: Vec<String> = held.iter().map(|h| h.operation.to_string()).collect();
            return Ok(result.actual("reads facts the drill cannot try").found(
                Found::OnlyLikeTheDrill,
                format!(
                    "that `{}` may not {} `{}` is {}",
                    self.role,
                    ops.join(" or "),
                    self.table,
                    loophole::only_like_the_drill(&untried)
                ),
            ));
        }
        Ok(self.held_shut(result, &levers, attempts.is_empty(), &trusted))
    }

    /// The result when every lever was tried and kept the guards shut (or none was to try).
    fn held_shut(
        &self,
        result: crate::check::CheckResultBuilder,
        levers: &[loophole::Lever],
        nothing_tried: bool,
        trusted: &[Trusted],
    ) -> CheckResult {
        let names: Vec<&str> = levers.iter().map(|l| l.setting.as_str()).collect();
        let trusted_note = if trusted.is_empty() {
            String::new()
        } else {
            format!("; trusted: {}", trusted.iter().map(Trusted::shown).collect::<Vec<_>>().join("; "))
        };
        if nothing_tried {
            return result.actual("nothing to try").found(
                Found::GuardsHold,
                format!("the guards of `{}` read nothing about the session a role could set{trusted_note}", self.table),
            );
        }
        result.actual(format!("still refused with {} set", names.join(", "))).found(
            Found::GuardsHold,
            format!(
                "no value of {} that `{}` can set itself lets it change or erase `{}`{trusted_note}",
                names.join(", "),
                self.role,
                self.table
            ),
        )
    }

    /// The code that guards changes to the table, whole, and the built-in settings' contexts.
    async fn guards(
        &self,
        ctx: &CheckContext<'_>,
        refused_by: &[String],
    ) -> sqlx::Result<(loophole::graph::Gathered, loophole::Contexts)> {
        let mut conn = ctx.pool.acquire().await?;
        let bypasses: bool = sqlx::query_scalar(BYPASSES_SQL)
            .bind(&self.role)
            .bind(self.table.sql())
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(false);
        let what = if bypasses { loophole::graph::For::ChangeBypassingRls } else { loophole::graph::For::Change };
        let gathered = loophole::graph::gather(&mut conn, &self.table.sql(), what, refused_by).await?;
        let contexts = loophole::contexts(&mut conn).await?;
        Ok((gathered, contexts))
    }
}

/// The evidence of what the guards read and what was tried.
fn guard_evidence(
    w: &Writer<'_>,
    gathered: &loophole::graph::Gathered,
    levers: &[loophole::Lever],
    trusted: &[Trusted],
) -> String {
    let read: Vec<&str> = gathered.readers.iter().map(|r| r.name.as_str()).collect();
    let tried: Vec<String> = levers
        .iter()
        .map(|l| format!("{} = {} (read by {})", l.setting, l.values.join(" | "), l.read_by.join(", ")))
        .collect();
    let mut evidence = format!(
        "-- the guards' code, read whole (pgdrill's session): {}\n{}SAVEPOINT lever; SELECT pg_catalog.set_config(<setting>, <value>, true); <each refused statement>; ROLLBACK TO SAVEPOINT lever -- for each of:\n{}",
        if read.is_empty() { "none".to_owned() } else { read.join("; ") },
        w.session.identity().evidence(),
        if tried.is_empty() { "(no setting a session sets is read)".to_owned() } else { tried.join("\n") }
    );
    for t in trusted {
        evidence.push_str(&format!("\nnot tried: {}", t.shown()));
    }
    evidence
}

/// One lever tried on one refused statement, in a savepoint of the role's session: `true` when
/// the statement went through with the setting set, `Err` with why when its error proves
/// nothing.
async fn try_lever(
    w: &mut Writer<'_>,
    attempt: &loophole::Attempt,
    h: &Held,
) -> Result<Result<bool, loophole::ProvesNothing>, Failure> {
    let session = w.session;
    session.run("SAVEPOINT lever").await?;
    let before = probe::written(session, &w.oid).await?;
    let outcome = match session.run(&login::set_local_sql(&attempt.setting, &attempt.value)).await {
        Ok(_) => match session.run(&h.statement).await {
            Ok(_) if h.operation == Operation::Truncate => Ok(true),
            // What the statement changed, read with the setting still set: a setting that stops
            // the read proves nothing either way.
            Ok(_) => match probe::written(session, &w.oid).await {
                Ok(after) => Ok(after.updated > before.updated || after.deleted > before.deleted),
                Err(failure @ Failure::Database { .. }) => Err(loophole::ProvesNothing { failure }),
                Err(lost) => return Err(lost),
            },
            Err(f @ Failure::Database { .. }) => {
                loophole::stayed_shut(f, Step::Statement(SqlProbe::Write)).map(|()| false)
            }
            Err(lost) => return Err(lost),
        },
        Err(f @ Failure::Database { .. }) => loophole::stayed_shut(f, Step::Set).map(|()| false),
        Err(lost) => return Err(lost),
    };
    session.run("ROLLBACK TO SAVEPOINT lever").await?;
    Ok(outcome)
}
