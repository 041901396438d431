//! `append_only`: an audit table is append-only for the role that writes it: as that role
//! INSERT works, and UPDATE, DELETE and TRUNCATE are refused, by privilege or by trigger. All
//! of it runs in one transaction that is rolled back, so the restored data never changes.
//!
//! ```toml
//! [[checks.append_only]]
//! table = "public.audit_events"
//! role = "caracal_audit_writer"
//! insert = "INSERT INTO public.audit_events (actor, action, created_at) VALUES ('drill', 'probe', now())"
//! triggers = ["audit_events_immutable"]   # immutability triggers that must be present and enabled
//! key = "id"                               # the column the trail grows along: every row of the
//!                                          # previous drill's backup must still be here (below)
//! settings = { "caracal.zone_id" = "..." } # session settings the writer sets (SET LOCAL), e.g.
//!                                          # the tenant a row-level security WITH CHECK reads
//! probe = { zone_id = "..." }              # values for a probe row (below), else made up
//! ```
//!
//! The table must be a table (a view with rules can swallow any write). The INSERT must add at
//! least one row to the table itself (a rule that sends it elsewhere fails). An operation the
//! role has no privilege for is tried as the role; one it has the privilege for is tried on a
//! single row, as the role if it may read the table (otherwise as the restore's superuser): a row
//! the role sees, else any; when the table has none (the INSERT was refused, or went elsewhere),
//! a probe row the superuser inserts (`check::probe`: values made up from the columns' types,
//! CHECK, unique and exclusion constraints set aside, none of which counts as a refusal), aimed
//! at when the role sees it or may not read the table; the evidence says how it was made.
//! Either must be refused on purpose ([`crate::sqlstate`]): `permission denied`, or a trigger's
//! or function's `RAISE` whatever its SQLSTATE; so is an UPDATE or DELETE that affects no row
//! when the row it aimed at reads the same afterwards (a rule `DO INSTEAD NOTHING`, a policy that
//! hides the row). A timeout, a deadlock, a division by zero, an internal error proves nothing:
//! the check errs. A TRUNCATE that runs fails. The probes run in the role's application window
//! (`check::as_app`): with the backup's settings for that role, as its sessions would.
//! A listed trigger protects only when it fires in ordinary sessions: enabled (`O`) or
//! `ENABLE ALWAYS` (`A`); `ENABLE REPLICA` (`R`) and disabled (`D`) fail.
//!
//! With `key`, the check also proves the trail only grew between the backups drilled
//! ([`trail`]): the history keeps the table's rows fingerprinted by ranges of the key, and
//! each drill fingerprints the same ranges again; one that lost, changed or gained a row fails,
//! naming the range.

use std::time::Instant;

use serde::Deserialize;
use sqlx::PgConnection;

use super::as_app::{self, in_savepoint};
use super::loophole::{self, Step, Trusted};
use super::relation::trigger_problem;
use super::{CheckContext, CheckError, CheckResult, Kind, ResolveContext, bind_evidence};
use crate::field::FieldError;
use crate::pg::{QualifiedName, describe_sql_error, quote_ident, quote_literal};
use crate::sqlstate::Probe;

mod judge;
mod trail;
pub(crate) use judge::{Attempt, Judged, Operation, judge, judge_insert};

pub(crate) const KIND: &str = "append_only";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AppendOnlyCheck")]
pub(crate) struct Config {
    pub table: String,
    pub role: String,
    /// An INSERT the role must be able to run.
    pub insert: String,
    #[serde(default)]
    pub triggers: Vec<String>,
    /// Session settings applied first (`SET LOCAL`).
    #[serde(default)]
    pub settings: super::Settings,
    /// Custom settings its triggers or policies read that only a trusted path sets, each with
    /// why: not tried ([`super::loophole`]).
    #[serde(default)]
    pub trusted: Vec<Trusted>,
    /// Values for the probe row pgdrill inserts when the table has no row to aim UPDATE and
    /// DELETE at, read as each column's type: `{ tenant_id = "..." }` (default: made up).
    #[serde(default)]
    pub probe: super::probe::ProbeValues,
    /// The column the trail grows along (NOT NULL, an integer, numeric, date, timestamp or
    /// uuid): each drill proves every row the previous drill's backup held is still here,
    /// unchanged.
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub table: QualifiedName,
    pub role: String,
    pub insert: String,
    pub triggers: Vec<String>,
    pub settings: super::Settings,
    pub trusted: Vec<Trusted>,
    pub probe: super::probe::ProbeValues,
    pub key: Option<String>,
}

/// An UPDATE, DELETE or TRUNCATE the role holds the privilege for and that was refused all the
/// same (by a trigger, a rule or a policy): what a setting the session sets itself might open.
struct Held {
    operation: Operation,
    statement: String,
    as_role: bool,
}

impl Kind for Spec {
    const NAME: &'static str = KIND;
    const PROVES: &'static str = "audit trails can be appended to, and not changed or erased";
    const GATE: bool = true;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        let table = QualifiedName::parse(&config.table).map_err(FieldError::unplaced)?;
        if !config.insert.trim_start().to_ascii_lowercase().starts_with("insert") {
            return Err(FieldError::unplaced("`insert` must be an INSERT statement"));
        }
        for listed in config.probe.tables().map_err(FieldError::unplaced)? {
            if listed != table {
                return Err(FieldError::unplaced(format!(
                    "`probe` gives values for `{listed}`, and the check probes `{table}`"
                )));
            }
        }
        Ok(Spec {
            table,
            role: config.role,
            insert: config.insert,
            triggers: config.triggers,
            settings: config.settings,
            trusted: Trusted::resolve(config.trusted)?,
            probe: config.probe,
            key: config.key,
        })
    }

    fn label(&self) -> String {
        format!("{} as {}", self.table, self.role)
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        // A view with rules (or a foreign table) can swallow every write: only a table is probed.
        match super::relation::kind(ctx.pool, &self.table).await {
            Ok(Some(kind)) if !kind.is_table() => {
                return Ok(vec![
                    CheckResult::build(KIND, self.object("append-only"), started)
                        .expected("a table")
                        .actual(kind.describe())
                        .verdict(false, super::relation::not_a_table(&self.table, kind)),
                ]);
            }
            _ => {} // missing or unreadable: the probe says so
        }
        let mut results = match self.probe(ctx, started).await {
            Ok(results) => results,
            Err(err) => vec![CheckResult::build(KIND, self.object("append-only"), started).error(format!(
                "could not probe `{}`: {}",
                self.table,
                crate::names::describe_error(ctx.pool, &err).await
            ))],
        };
        if !self.triggers.is_empty() {
            results.push(self.trigger_check(ctx).await);
        }
        if let Some(key) = &self.key {
            match trail::check(self, ctx, key, started).await {
                trail::Found::First(kept) => {
                    if let Some(first) = results.first_mut() {
                        first.message.push_str(&format!(
                            " (the trail's {} rows are kept by ranges of `{key}` for the next drill to compare: this is the first)",
                            kept.rows
                        ));
                        first.trail = Some(kept);
                    }
                }
                trail::Found::Compared(result) | trail::Found::Error(result) => results.push(result),
            }
        }
        Ok(results)
    }
}

impl Spec {
    fn object(&self, what: &str) -> String {
        format!("{} {what} as {}", self.table, self.role)
    }

    async fn probe(&self, ctx: &CheckContext<'_>, started: Instant) -> sqlx::Result<Vec<CheckResult>> {
        let set_role = crate::pg::set_local_role(&self.role);
        let t = self.table.sql();
        let mut tx = as_app::Probe::begin(ctx.pool, Some(&self.role), &self.settings).await?;
        let window = tx.window.clone();
        let settings = window.prefix();
        let mut results = vec![self.insert(&mut tx, &settings, started).await?];

        let literal = quote_literal(&t);
        let (update, delete, truncate, select): (bool, bool, bool, bool) = sqlx::query_as(&format!(
            "SELECT has_table_privilege($1, {literal}, 'UPDATE'), has_table_privilege($1, {literal}, 'DELETE'), \
                    has_table_privilege($1, {literal}, 'TRUNCATE'), has_table_privilege($1, {literal}, 'SELECT')"
        ))
        .bind(&self.role)
        .fetch_one(&mut *tx)
        .await?;
        let aim = self.aim(ctx, &mut tx, select, window.names()).await?;
        let column: Option<String> = sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped \
             AND attidentity = '' AND attgenerated = '' ORDER BY attnum LIMIT 1",
        )
        .bind(&t)
        .fetch_optional(&mut *tx)
        .await?;
        let column = quote_ident(&column.unwrap_or_else(|| "ctid".into()));
        let target =
            aim.row.as_ref().map(|(oid, ctid)| format!(" WHERE tableoid = {oid} AND ctid = {}", quote_literal(ctid)));
        let mut held = Vec::new();

        let tried = [(Operation::Update, update), (Operation::Delete, delete), (Operation::Truncate, truncate)];
        for (operation, granted) in tried {
            let statement = operation.statement(&t, &column);
            let result = CheckResult::build(KIND, self.object(&operation.to_string()), started)
                .expected("refused (privilege, trigger, rule or policy)");
            let (as_role, statement) = if !granted {
                (true, statement)
            } else if operation == Operation::Truncate {
                (false, statement)
            } else {
                match &target {
                    Some(filter) => (select, format!("{statement}{filter}")),
                    None => {
                        let why = aim.why_none.as_deref().map(|w| format!(": {w}")).unwrap_or_default();
                        results.push(result.evidence(format!("{}{statement}", aim.evidence)).error(format!(
                            "{operation} is granted to `{}`, and `{}` has no row to show that a trigger refuses it{why}",
                            self.role, self.table
                        )));
                        continue;
                    }
                }
            };
            let evidence = if as_role {
                format!("{settings}{set_role}; {statement}")
            } else {
                format!("{statement} -- as the superuser")
            };
            let evidence = if target.is_some() { format!("{}{evidence}", aim.evidence) } else { evidence };
            let reread = target.as_ref().map(|filter| format!("SELECT probe_row::text FROM {t} AS probe_row{filter}"));
            let attempt = self.attempt(&mut tx, operation, &statement, as_role, reread.as_deref()).await?;
            if granted && judge(operation, granted, &attempt).verdict == Judged::Refused {
                held.push(Held { operation, statement: statement.clone(), as_role });
            }
            results.push(self.judged(result.evidence(evidence), operation, granted, &attempt));
        }
        if !held.is_empty()
            && let Some(result) = self.loopholes(&mut tx, started, &held).await?
        {
            results.push(result);
        }
        let _ = tx.rollback().await;
        Ok(results)
    }

    /// The INSERT, as the role: it must add a row that reaches the table itself.
    async fn insert(&self, tx: &mut PgConnection, settings: &str, started: Instant) -> sqlx::Result<CheckResult> {
        let set_role = crate::pg::set_local_role(&self.role);
        let t = self.table.sql();
        // INSERT, as the role.
        sqlx::query("SAVEPOINT probe").execute(&mut *tx).await?;
        sqlx::query(&set_role).execute(&mut *tx).await?;
        let inserted = sqlx::query(&self.insert).execute(&mut *tx).await;
        let result = CheckResult::build(KIND, self.object("INSERT"), started)
            .expected("allowed (at least 1 row inserted into the table itself)")
            .evidence(format!("{settings}{set_role}; {}", self.insert));
        let insert_ok = inserted.is_ok();
        let inconclusive = match &inserted {
            Err(err) => crate::sqlstate::of(err).is_none_or(|(code, context)| {
                !crate::sqlstate::classify(crate::sqlstate::Probe::Write, &code, context.as_deref()).refuses()
                    && !code.starts_with("23")
            }),
            Ok(_) => false,
        };
        let described = inserted.map(|done| done.rows_affected()).map_err(|e| describe_sql_error(&e));
        if insert_ok {
            sqlx::query("RELEASE SAVEPOINT probe").execute(&mut *tx).await?;
            sqlx::query("RESET ROLE").execute(&mut *tx).await?;
        } else {
            sqlx::query("ROLLBACK TO SAVEPOINT probe").execute(&mut *tx).await?;
        }
        // A rule or trigger can turn the INSERT into one somewhere else: the row must reach the
        // table (or one of its partitions), as the transaction's own statistics count it.
        let reached: i64 =
            if insert_ok { sqlx::query_scalar(REACHED_SQL).bind(&t).fetch_one(&mut *tx).await? } else { 0 };
        let (appended, actual) = judge_insert(described, reached);
        Ok(if appended {
            result.actual(actual).verdict(true, format!("`{}` can append to `{}`", self.role, self.table))
        } else if inconclusive {
            result
                .actual(actual.clone())
                .error(format!("could not prove that `{}` can append to `{}`: {actual}", self.role, self.table))
        } else {
            let message = format!("`{}` cannot append to `{}`: {actual}", self.role, self.table);
            result.actual(actual).verdict(false, message)
        })
    }

    /// Runs `statement` (an `operation`), as the role or as the superuser, in a savepoint rolled
    /// back after it. `reread`: the row aimed at, as the superuser sees it, to tell "0 rows
    /// affected" from a change.
    async fn attempt(
        &self,
        tx: &mut PgConnection,
        operation: Operation,
        statement: &str,
        as_role: bool,
        reread: Option<&str>,
    ) -> sqlx::Result<Attempt> {
        let before: Option<String> = match reread {
            Some(sql) => sqlx::query_scalar(sql).fetch_optional(&mut *tx).await?,
            None => None,
        };
        let role = as_role.then_some(self.role.as_str());
        in_savepoint(tx, "probe", role, async |tx| {
            let attempt = match sqlx::query(statement).execute(&mut *tx).await {
                Ok(done) if operation == Operation::Truncate => {
                    Attempt::Done { rows: done.rows_affected(), unchanged: None }
                }
                Ok(done) => {
                    let unchanged = match (reread, &before) {
                        (Some(sql), Some(_)) if done.rows_affected() == 0 => {
                            sqlx::query("RESET ROLE").execute(&mut *tx).await?;
                            let after: Option<String> = sqlx::query_scalar(sql).fetch_optional(&mut *tx).await?;
                            Some(after == before)
                        }
                        _ => None,
                    };
                    Attempt::Done { rows: done.rows_affected(), unchanged }
                }
                Err(err @ sqlx::Error::Database(_)) => {
                    let (code, context) = crate::sqlstate::of(&err).unwrap_or_default();
                    let message = err.as_database_error().map(|db| db.message().to_owned()).unwrap_or_default();
                    Attempt::Refused { code, message, context }
                }
                Err(err) => Attempt::Broken(describe_sql_error(&err)),
            };
            Ok(attempt)
        })
        .await?
    }

    /// The result of an UPDATE, DELETE or TRUNCATE attempt.
    fn judged(
        &self,
        result: super::CheckResultBuilder,
        operation: Operation,
        granted: bool,
        attempt: &Attempt,
    ) -> CheckResult {
        let judged = judge(operation, granted, attempt);
        let result = result.actual(judged.actual);
        let message = match judged.verdict {
            Judged::Refused => format!("`{}` may not {operation} `{}`: {}", self.role, self.table, judged.why),
            Judged::Mutable => format!(
                "`{}` can {operation} `{}`{}: the audit trail is not append-only",
                self.role,
                self.table,
                if granted { " (granted, and nothing refuses it)" } else { "" }
            ),
            Judged::Unproven => format!("{operation} on `{}`: {}", self.table, judged.why),
        };
        match judged.verdict {
            Judged::Refused => result.verdict(true, message),
            Judged::Mutable => result.verdict(false, message),
            Judged::Unproven => result.error(message),
        }
    }

    /// A row to aim UPDATE and DELETE at: one the role sees when it may read the table (so that
    /// a row-level security policy hiding another tenant's row does not pass for a refusal), else
    /// any. The row the role's INSERT added is visible here; when there is none (the INSERT was
    /// refused, or sent elsewhere), a probe row the superuser inserts ([`super::probe`]), aimed
    /// at when the role sees it or may not read the table at all.
    /// `watched`: the window's settings, which the probe row's INSERT must leave as they were
    /// (a trigger may read one to refuse).
    async fn aim(
        &self,
        ctx: &CheckContext<'_>,
        tx: &mut PgConnection,
        select: bool,
        watched: Vec<String>,
    ) -> sqlx::Result<Aim> {
        let seen = if select { self.seen_row(tx, true).await? } else { None };
        let any = match seen {
            Some(row) => Some(row),
            None => self.seen_row(tx, false).await?,
        };
        if let Some(row) = any {
            return Ok(Aim { row: Some(row), evidence: String::new(), why_none: None });
        }
        let t = self.table.sql();
        let mut ran = Vec::new();
        let path = super::probe::pin_search_path(tx, &mut ran).await?;
        let columns = super::probe::columns(tx, &t, &mut ran).await?;
        let given = self.probe.for_table(&self.table);
        let request = super::probe::Request {
            table: &self.table,
            columns: &columns,
            tenant: None,
            given: &given,
            hint: super::probe::Hint { within: "the check", per_table: false },
            pins: ctx.target.pins,
            watched,
        };
        let inserted = super::probe::insert(tx, &request, &mut ran).await?;
        super::probe::restore_search_path(tx, &path, &mut ran).await?;
        let evidence =
            format!("-- the table has no row: a probe row inserted as the superuser\n{};\n", ran.join(";\n"));
        let made = match inserted {
            Ok(inserted) => inserted.rows[0].clone(),
            Err(why) => return Ok(Aim { row: None, evidence, why_none: Some(why) }),
        };
        if !select {
            return Ok(Aim { row: Some(made), evidence, why_none: None });
        }
        Ok(match self.seen_row(tx, true).await? {
            Some(seen) => Aim { row: Some(seen), evidence, why_none: None },
            None => Aim {
                row: None,
                evidence,
                why_none: Some(format!(
                    "`{}` does not see the probe row pgdrill inserted (a policy hides it: give `settings` the tenant it reads and `probe` the tenant column's value)",
                    self.role
                )),
            },
        })
    }

    /// A row of the table the role sees (`as_role`, in a savepoint), or any row.
    async fn seen_row(&self, tx: &mut PgConnection, as_role: bool) -> sqlx::Result<Option<(i64, String)>> {
        let aim = format!(
            "SELECT tableoid::pg_catalog.oid::pg_catalog.int8, ctid::pg_catalog.text FROM {} LIMIT 1",
            self.table.sql()
        );
        if !as_role {
            return sqlx::query_as(&aim).fetch_optional(&mut *tx).await;
        }
        let seen = in_savepoint(tx, "aim", Some(&self.role), async |tx| sqlx::query_as(&aim).fetch_optional(tx).await);
        Ok(seen.await?.ok().flatten())
    }

    /// Tries every custom setting the table's triggers and policies read ([`loophole`]) on the
    /// operations that were refused although granted: set by the session itself, as the role
    /// would, it must not let them through. `None` when nothing reads such a setting.
    async fn loopholes(
        &self,
        tx: &mut PgConnection,
        started: Instant,
        held: &[Held],
    ) -> sqlx::Result<Option<CheckResult>> {
        let t = self.table.sql();
        let mut readers = loophole::readers(tx, loophole::TRIGGER_READERS_SQL, &t).await?;
        readers.extend(loophole::readers(tx, loophole::POLICY_READERS_SQL, &t).await?);
        let levers = loophole::levers(&readers, &[]);
        if levers.is_empty() {
            return Ok(None);
        }
        let (attempts, trusted) = loophole::attempts(&levers, &self.trusted);
        let mut opened = None;
        let mut unproven = None;
        'tries: for attempt in &attempts {
            for h in held {
                let through = try_lever(tx, &self.role, attempt, h).await?;
                match through {
                    Ok(false) => {}
                    Ok(true) => {
                        opened = Some((attempt, h));
                        break 'tries;
                    }
                    Err(why) => {
                        unproven = Some((attempt, h, why));
                        break 'tries;
                    }
                }
            }
        }
        let tried: Vec<String> = levers
            .iter()
            .map(|l| format!("{} = {} (read by {})", l.setting, l.values.join(" | "), l.read_by.join(", ")))
            .collect();
        let mut evidence = format!(
            "as {}: SAVEPOINT lever; SELECT set_config(<setting>, <value>, true); <each refused statement>; \
             ROLLBACK TO SAVEPOINT lever -- for each of:\n{}",
            if held.iter().any(|h| h.as_role) { self.role.as_str() } else { "the superuser" },
            tried.join("\n")
        );
        for t in &trusted {
            evidence.push_str(&format!("\nnot tried: {}", t.shown()));
        }
        let result = CheckResult::build(KIND, self.object("settings a session sets itself"), started)
            .expected("no custom setting its triggers or policies read lets the role change or erase rows")
            .evidence(evidence);
        if let Some((attempt, h, why)) = unproven {
            return Ok(Some(result.error(format!(
                "{} on `{}` as `{}` with `{}` = '{}' set failed for a reason that is not a refusal: {why}, so it proves nothing about the settings a session can open it with",
                h.operation, self.table, self.role, attempt.setting, attempt.value
            ))));
        }
        Ok(Some(match opened {
            Some((attempt, h)) => {
                let what = format!("`{}` can {} `{}`", self.role, h.operation, self.table);
                result
                    .actual(format!("{} went through with {} = '{}'", h.operation, attempt.setting, attempt.value))
                    .verdict(false, format!("{}: the audit trail is not append-only", loophole::opened(attempt, &what)))
            }
            None if attempts.is_empty() => result.actual("every setting trusted").verdict(
                true,
                format!(
                    "every custom setting the triggers and policies of `{}` read is trusted: {}",
                    self.table,
                    trusted.iter().map(Trusted::shown).collect::<Vec<_>>().join("; ")
                ),
            ),
            None => {
                let names: Vec<&str> = levers.iter().map(|l| l.setting.as_str()).collect();
                let trusted_note = if trusted.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; trusted, not tried: {}",
                        trusted.iter().map(Trusted::shown).collect::<Vec<_>>().join("; ")
                    )
                };
                result.actual(format!("still refused with {} set", names.join(", "))).verdict(
                    true,
                    format!(
                        "no value of {} that `{}` can set itself lets it change or erase `{}`{trusted_note}",
                        names.join(", "),
                        self.role,
                        self.table
                    ),
                )
            }
        }))
    }

    async fn trigger_check(&self, ctx: &CheckContext<'_>) -> CheckResult {
        let started = Instant::now();
        let sql =
            "SELECT tgname::text, tgenabled::text FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal";
        let result = CheckResult::build(KIND, format!("{} immutability triggers", self.table), started)
            .expected(format!("{} present and enabled", self.triggers.join(", ")))
            .evidence(bind_evidence(sql, &[&self.table.sql()]));
        let found: Vec<(String, String)> = match sqlx::query_as(sql).bind(self.table.sql()).fetch_all(ctx.pool).await {
            Ok(rows) => rows,
            Err(err) => {
                return result.error(format!(
                    "could not list triggers of `{}`: {}",
                    self.table,
                    describe_sql_error(&err)
                ));
            }
        };
        let mut problems = Vec::new();
        for name in &self.triggers {
            let enabled = found.iter().find(|(n, _)| n == name).map(|(_, e)| e.as_str());
            problems.extend(trigger_problem(name, enabled));
        }
        if problems.is_empty() {
            result
                .actual("present and enabled")
                .verdict(true, format!("`{}` keeps its immutability triggers", self.table))
        } else {
            let text = problems.join("; ");
            result.actual(text.clone()).verdict(false, format!("`{}`: {text}", self.table))
        }
    }
}

/// One lever tried on one refused statement, in a savepoint: `true` when the statement went
/// through with the setting set, `Err` with why when its error proves nothing.
async fn try_lever(
    tx: &mut PgConnection,
    role: &str,
    attempt: &loophole::Attempt,
    h: &Held,
) -> sqlx::Result<Result<bool, String>> {
    in_savepoint(tx, "lever", h.as_role.then_some(role), async |tx| {
        let set = sqlx::query("SELECT pg_catalog.set_config($1, $2, true)")
            .bind(&attempt.setting)
            .bind(&attempt.value)
            .execute(&mut *tx)
            .await;
        match set {
            Ok(_) => match sqlx::query(&h.statement).execute(&mut *tx).await {
                Ok(done) => Ok(h.operation == Operation::Truncate || done.rows_affected() > 0),
                Err(e) => loophole::stayed_shut(&e, Step::Statement(Probe::Write)).map(|()| false),
            },
            Err(e) => loophole::stayed_shut(&e, Step::Set).map(|()| false),
        }
    })
    .await
}

/// The row UPDATE and DELETE aim at, the evidence of a probe row made for them, or why there
/// is none.
struct Aim {
    row: Option<(i64, String)>,
    evidence: String,
    why_none: Option<String>,
}

/// Rows the current transaction inserted into a table or its partitions and inheritance children
/// (a trigger that routes rows to a child table is how partitioning was done before 10).
const REACHED_SQL: &str = "WITH RECURSIVE tree(relid) AS ( \
       SELECT $1::pg_catalog.regclass::pg_catalog.oid \
       UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent OPERATOR(pg_catalog.=) t.relid) \
     SELECT coalesce(pg_catalog.sum(s.n_tup_ins), 0)::pg_catalog.int8 FROM pg_catalog.pg_stat_xact_all_tables s \
     WHERE s.relid IN (SELECT relid FROM tree)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_triggers_firing_in_ordinary_sessions_protect() {
        assert_eq!(trigger_problem("t", Some("O")), None);
        assert_eq!(trigger_problem("t", Some("A")), None);
        assert!(trigger_problem("t", Some("R")).unwrap().contains("replica"));
        assert_eq!(trigger_problem("t", Some("D")).as_deref(), Some("t is disabled"));
        assert_eq!(trigger_problem("t", None).as_deref(), Some("t is missing"));
    }
}
