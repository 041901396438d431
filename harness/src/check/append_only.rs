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
//! accept = [{ through = "audit.purge(integer)", code = "<sha256 the check prints>", reason = "..." }]
//!                                          # others' code that changes the trail by design
//! ```
//!
//! The table must be a table (a view with rules can swallow any write). Every probe runs in a
//! session the writing role opened itself ([`super::login`], [`probe`]): the INSERT must add at
//! least one row to the table itself (a rule that sends it elsewhere fails); then an UPDATE that
//! changes a value (each column the role could change, one at a time), a DELETE and a TRUNCATE,
//! each in a savepoint, aimed at a row the role saw before its own INSERT (else its own row;
//! when the table is empty and the INSERT left nothing, a probe row pgdrill commits and removes
//! after, [`super::probe::committed`]). What a statement changed is counted by the session's own
//! statistics. A refusal must be on purpose ([`crate::sqlstate`]): `permission denied`, or a
//! trigger's or function's `RAISE` whatever its SQLSTATE; an UPDATE or DELETE that changed no row
//! of a table that has one is refused too (a rule `DO INSTEAD NOTHING`, a policy that hides the
//! row, a trigger returning NULL), except where the role may read the table and sees no row of
//! it (its INSERT refused, the rows there another tenant's): its changes reach none, and prove
//! nothing. A timeout, a deadlock, a division by zero, an internal error
//! proves nothing: the check errs. A TRUNCATE that runs fails. What guards the refused
//! operations is read whole and tried ([`guards`]).
//! A listed trigger protects only when it fires in ordinary sessions: enabled (`O`) or
//! `ENABLE ALWAYS` (`A`); `ENABLE REPLICA` (`R`) and disabled (`D`) fail.
//!
//! The writer also runs code of others with their powers (a `SECURITY DEFINER` function it may
//! call, a definer trigger or a rule on a table it writes, a view it may change, a cascading
//! foreign key of the trail): each whose owner could change the trail is read whole and must
//! leave it as it is, or be accepted for its code ([`others`]).
//!
//! With `key`, the check also proves the trail only grew between the backups drilled
//! ([`trail`]): the history keeps the table's rows fingerprinted by ranges of the key, and
//! each drill fingerprints the same ranges again; one that lost, changed or gained a row fails,
//! naming the range.

use std::time::Instant;

use serde::Deserialize;

use super::login::{self, AppSession, Failure};
use super::loophole::Trusted;
use super::relation::trigger_problem;
use super::{CheckContext, CheckError, CheckResult, Kind, ResolveContext, bind_evidence};
use crate::field::FieldError;
use crate::outcome::{CheckKind, Finding as _};
use crate::pg::{QualifiedName, describe_sql_error};
use crate::sqlstate::Probe as SqlProbe;
pub(crate) use finding::Found;

mod finding;
mod guards;
mod judge;
mod others;
mod probe;
mod trail;
pub(crate) use judge::{Attempt, Judged, Operation, judge, judge_insert};
use probe::{NoProbeRow, ProbeError};

pub(crate) const KIND: CheckKind = CheckKind::AppendOnly;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AppendOnlyCheck")]
pub(crate) struct Config {
    /// The audit table (`schema.table`); a view fails.
    pub table: String,
    /// The role that writes it: as this role INSERT must work, and UPDATE, DELETE and TRUNCATE
    /// be refused, in a session the role opens itself.
    pub role: String,
    /// An INSERT the role must be able to run.
    pub insert: String,
    /// Immutability triggers on the table that must be present and enabled (not disabled, not
    /// `ENABLE REPLICA`).
    #[serde(default)]
    pub triggers: Vec<String>,
    /// Session settings applied first (`SET LOCAL`).
    #[serde(default)]
    pub settings: super::Settings,
    /// Custom settings its triggers or policies read that only a trusted path sets, each with
    /// why: the fail-closed probes do not try them as levers (see the threat model's "A backup that lies").
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
    /// Code of others the role runs that may change the table, there by design: each as the
    /// check names it (a `SECURITY DEFINER` function, a trigger, a rule, a view, a foreign key),
    /// with the sha256 of its code the check prints, and why.
    #[serde(default)]
    pub accept: Vec<super::accept::AcceptConfig>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub table: QualifiedName,
    pub role: String,
    pub insert: String,
    pub triggers: Vec<String>,
    pub settings: super::Settings,
    pub trusted: Vec<Trusted>,
    pub probe: super::probe::Probe,
    pub key: Option<String>,
    pub accept: Vec<super::accept::Door>,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    const GATE: bool = true;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        let table = QualifiedName::parse(&config.table).map_err(FieldError::unplaced)?;
        if !config.insert.trim_start().to_ascii_lowercase().starts_with("insert") {
            return Err(FieldError::unplaced("`insert` must be an INSERT statement"));
        }
        let probe = config.probe.read().map_err(|e| FieldError::unplaced(e.to_string()))?;
        for listed in probe.tables() {
            if *listed != table {
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
            trusted: Trusted::resolve_for(
                config.trusted,
                KIND,
                Found::SessionSettingOpens.code(),
                Found::OnlyLikeTheDrill.code(),
            )?,
            probe,
            key: config.key,
            accept: super::accept::Door::resolve(config.accept, KIND, Found::OthersPowers.code())?,
        })
    }

    fn label(&self) -> String {
        format!("{} as {}", self.table, self.role)
    }

    fn logins(&self) -> Vec<String> {
        vec![self.role.clone()]
    }

    fn unqualified(&self) -> Vec<String> {
        self.table.schema.is_none().then(|| self.table.name.clone()).into_iter().collect()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let read = QualifiedName::new(self.table.schema_or_public(), &self.table.name);
        if let Some(why) =
            self.table.schema.as_ref().map_or_else(|| ctx.names.elsewhere(&self.table.name, &read), |_| None)
        {
            return Ok(vec![
                CheckResult::build(KIND, self.object("append-only"), started)
                    .expected(format!("`{}` as the application resolves it", self.table))
                    .actual("another table for the application")
                    .found(Found::AnotherTable, why),
            ]);
        }
        // A view with rules (or a foreign table) can swallow every write: only a table is probed.
        match super::relation::kind(ctx.pool, &self.table).await {
            Ok(Some(kind)) if !kind.is_table() => {
                return Ok(vec![
                    CheckResult::build(KIND, self.object("append-only"), started)
                        .expected("a table")
                        .actual(kind.describe())
                        .found(Found::NotATable, super::relation::not_a_table(&self.table, kind)),
                ]);
            }
            _ => {} // missing or unreadable: the probe says so
        }
        let mut results = match self.probe(ctx, started).await {
            Ok(results) => results,
            Err(why) => vec![
                CheckResult::build(KIND, self.object("append-only"), started)
                    .found(Found::CouldNotRead, format!("could not probe `{}`: {}", self.table, why.said())),
            ],
        };
        results.push(self.others(ctx).await);
        if !self.triggers.is_empty() {
            results.push(self.trigger_check(ctx).await);
        }
        if let Some(key) = &self.key {
            match trail::check(self, ctx, key, started).await {
                trail::Outcome::First(kept) => {
                    if let Some(first) = results.first_mut() {
                        first.message.push_str(&format!(
                            " (the trail's {} rows are kept by ranges of `{key}` for the next drill to compare: this is the first)",
                            kept.rows
                        ));
                        first.trail = Some(kept);
                    }
                }
                trail::Outcome::Compared(result) | trail::Outcome::Error(result) => results.push(result),
            }
        }
        Ok(results)
    }
}

/// An operation the check tries in the role's session, and whether it is granted to the role.
#[derive(Clone, Copy)]
struct Tried {
    operation: Operation,
    granted: bool,
}

/// An UPDATE, DELETE or TRUNCATE the session holds the privilege for and that was refused all
/// the same (by a trigger, a rule or a policy): what a setting the session sets itself might open.
struct Held {
    operation: Operation,
    statement: String,
    /// The error's context, when it was an error (it names the function that refused).
    context: Option<String>,
}

/// Where the UPDATE and DELETE aim: the filter for a row the role sees (empty: any), whether
/// there is a row to aim at, and why none could be committed when there is none.
struct Aim {
    filter: String,
    aimed: bool,
    why_none: Option<NoProbeRow>,
}

/// The writer's session and what ran in it so far (the evidence's opening lines).
struct Writer<'s> {
    session: &'s AppSession,
    t: String,
    /// The table's oid, as the role's session reads the catalogs and statistics about it.
    oid: String,
    ran: Vec<String>,
}

impl Writer<'_> {
    /// Runs `sql` and records it.
    async fn run(&mut self, sql: &str) -> Result<login::Answer, Failure> {
        self.ran.push(sql.to_owned());
        self.session.run(sql).await
    }

    /// `BEGIN`, then the scenario's settings, as the application sets them.
    async fn begin(&mut self, settings: &super::Settings) -> Result<(), Failure> {
        self.run("BEGIN").await?;
        for (name, value) in &settings.0 {
            self.run(&login::set_local_sql(name, value)).await?;
        }
        Ok(())
    }

    /// The evidence of `statement`, run after what ran so far.
    fn evidence(&self, statement: &str) -> String {
        format!("{}{};\n{statement}", self.session.identity().evidence(), self.ran.join(";\n"))
    }
}

impl Spec {
    fn object(&self, what: &str) -> String {
        format!("{} {what} as {}", self.table, self.role)
    }

    /// The probes, in a session the role opened itself ([`probe`]); the results, or why they
    /// could not run.
    async fn probe(&self, ctx: &CheckContext<'_>, started: Instant) -> Result<Vec<CheckResult>, ProbeError> {
        let t = self.table.sql();
        let unreadable = |source: sqlx::Error| ProbeError::Unreadable { table: self.table.to_string(), source };
        let change = probe::change(ctx.pool, &self.table).await.map_err(unreadable)?;
        let has_rows: bool = sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {t})"))
            .fetch_one(ctx.pool)
            .await
            .map_err(unreadable)?;
        // The role's session reads the catalogs by the table's oid, never by its name: a name
        // needs USAGE on its schema, which a writer whose trail a SECURITY DEFINER trigger
        // writes may well lack (and then every change is refused by privilege).
        let oid: i64 = sqlx::query_scalar("SELECT $1::pg_catalog.regclass::pg_catalog.oid::pg_catalog.int8")
            .bind(&t)
            .fetch_one(ctx.pool)
            .await
            .map_err(unreadable)?;
        let session = probe::open(ctx, &self.role).await?;
        let mut writer = Writer { session: &session, t, oid: oid.to_string(), ran: Vec::new() };
        let outcome = self.probe_in(ctx, &mut writer, change, has_rows, started).await;
        let ran = writer.ran;
        session.close().await;
        outcome.map_err(|failure| ProbeError::Session { role: self.role.clone(), failure, ran })
    }

    async fn probe_in(
        &self,
        ctx: &CheckContext<'_>,
        w: &mut Writer<'_>,
        change: Result<Vec<String>, String>,
        has_rows: bool,
        started: Instant,
    ) -> Result<Vec<CheckResult>, Failure> {
        w.begin(&self.settings).await?;
        let [update, delete, truncate, select] = probe::privileges(w.session, &w.oid).await?;
        let mut aim = probe::aim(w.session, &w.t, false).await?;
        let (insert, landed) = self.insert(w, started).await?;
        let mut results = vec![insert];
        if aim.is_none() && landed {
            aim = probe::aim(w.session, &w.t, true).await?;
        }
        let mut committed = None;
        let mut why_none = None;
        if aim.is_none() && !has_rows && !landed {
            w.run("ROLLBACK").await?;
            match self.probe_row(ctx, &mut w.ran).await {
                Ok(made) => committed = Some(made),
                Err(why) => why_none = Some(why),
            }
            w.begin(&self.settings).await?;
            aim = probe::aim(w.session, &w.t, false).await?;
        }
        if let Some(filter) = &aim {
            w.ran.push(format!("-- aimed at a row `{}` sees:{filter}", self.role));
        }
        // A row is aimed at when the role sees one, or inserted its own; or, when it may not
        // read the table, when the table holds one. A role that may read it and sees none (its
        // INSERT refused, the rows there another tenant's) changes none whatever its guards do.
        let aimed = aim.is_some() || landed || (!select && (has_rows || committed.is_some()));
        let aim = Aim { aimed, filter: aim.unwrap_or_default(), why_none };
        let mut held = Vec::new();
        let tried = [
            Tried { operation: Operation::Update, granted: update },
            Tried { operation: Operation::Delete, granted: delete },
            Tried { operation: Operation::Truncate, granted: truncate },
        ];
        for tried in tried {
            results.push(self.operation(w, tried, &change, &aim, &mut held, started).await?);
        }
        if !held.is_empty() {
            results.push(self.loopholes(ctx, w, started, &held).await?);
        }
        w.run("ROLLBACK").await?;
        if let Some(made) = committed {
            crate::check::probe::committed::remove(&ctx.target.connect_options(ctx.database), &made, &mut w.ran).await;
        }
        Ok(results)
    }

    /// UPDATE, DELETE or TRUNCATE (`granted` to the role or not) tried in the role's session,
    /// aimed as `aim` says: its result. A granted one that is refused is `held`, for the
    /// loopholes.
    async fn operation(
        &self,
        w: &mut Writer<'_>,
        tried: Tried,
        change: &Result<Vec<String>, String>,
        aim: &Aim,
        held: &mut Vec<Held>,
        started: Instant,
    ) -> Result<CheckResult, Failure> {
        let Tried { operation, granted } = tried;
        let result = CheckResult::build(KIND, self.object(&operation.to_string()), started)
            .expected("refused (privilege, trigger, rule or policy)");
        let filter = &aim.filter;
        let statements: Vec<String> = match (operation, change) {
            // Every column the role could change, one at a time: a guard may keep one and
            // let another through.
            (Operation::Update, Ok(sets)) => {
                sets.iter().map(|set| format!("UPDATE {} SET {set}{filter}", w.t)).collect()
            }
            (Operation::Update, Err(why)) => {
                return Ok(result.found(Found::Unproven, format!("no UPDATE that changes a value can be made: {why}")));
            }
            (Operation::Delete, _) => vec![format!("DELETE FROM {}{filter}", w.t)],
            (Operation::Truncate, _) => vec![format!("TRUNCATE {}", w.t)],
        };
        if !aim.aimed && operation != Operation::Truncate && granted {
            let why = aim.why_none.as_ref().map(|w| format!(": {}", w.said())).unwrap_or_default();
            return Ok(result.evidence(w.evidence(&statements.join(";\n"))).found(
                Found::Unproven,
                format!(
                    "{operation} is granted to `{}`, and `{}` has no row to show that a trigger refuses it{why}",
                    self.role, self.table
                ),
            ));
        }
        let (statement, attempt) = self.attempts(w, operation, granted, &statements, aim.aimed).await?;
        if granted && judge(operation, granted, &attempt).verdict == Judged::Refused {
            let context = match &attempt {
                Attempt::Refused { context, .. } => context.clone(),
                _ => None,
            };
            held.push(Held { operation, statement: statement.clone(), context });
        }
        let tried: Vec<String> =
            statements.iter().map(|s| format!("SAVEPOINT probe;\n{s};\nROLLBACK TO SAVEPOINT probe")).collect();
        let evidence = w.evidence(&tried.join(";\n"));
        Ok(self.judged(result.evidence(evidence), operation, granted, &attempt))
    }

    /// Each of `statements` (one operation's) in its own savepoint until one changes the table
    /// or proves nothing: that one, or the last refused.
    async fn attempts(
        &self,
        w: &mut Writer<'_>,
        operation: Operation,
        granted: bool,
        statements: &[String],
        aimed: bool,
    ) -> Result<(String, Attempt), Failure> {
        let mut last = None;
        for statement in statements {
            let attempt = probe::attempt(w.session, &w.oid, operation, statement, aimed).await?;
            let refused = judge(operation, granted, &attempt).verdict == Judged::Refused;
            last = Some((statement.clone(), attempt));
            if !refused {
                break;
            }
        }
        Ok(last.unwrap_or_else(|| (String::new(), Attempt::Broken("nothing to try".into()))))
    }

    /// A probe row committed by pgdrill for the UPDATE and DELETE to aim at, when the table is
    /// empty and the role's INSERT left nothing in it.
    async fn probe_row(
        &self,
        ctx: &CheckContext<'_>,
        ran: &mut Vec<String>,
    ) -> Result<crate::check::probe::committed::Committed, NoProbeRow> {
        use crate::check::probe::{self as rows, committed};
        let options = ctx.target.connect_options(ctx.database);
        let mut scratch = Vec::new();
        let columns = async {
            let mut conn = ctx.pool.acquire().await?;
            rows::columns(&mut conn, &self.table.sql(), &mut scratch).await
        }
        .await
        .map_err(|source| NoProbeRow::Sql { source })?;
        let mut given = self.probe.for_table(&self.table);
        // The code that guards changes decides the check: what the backup writes elsewhere
        // while the probe row goes in matters when it reads it.
        let decides: Vec<String> = async {
            let mut conn = ctx.pool.acquire().await?;
            let gathered = crate::check::loophole::graph::gather(
                &mut conn,
                &self.table.sql(),
                crate::check::loophole::graph::For::Change,
                &[],
            )
            .await?;
            Ok::<_, sqlx::Error>(gathered.readers.iter().map(|r| r.text.to_lowercase()).collect())
        }
        .await
        .map_err(|source| NoProbeRow::Sql { source })?;
        // A column the policies compare with a setting the scenario sets holds its value, as the
        // application's own rows do: the role sees the row, and what guards it is tried on it.
        for (column, value) in rows::compared::with_settings(&decides, &self.settings) {
            if !given.0.iter().any(|g| g.column == column) && columns.iter().any(|c| c.name == column) {
                given.0.push(rows::GivenValue { column, value, own: false });
            }
        }
        let request = committed::Request {
            table: &self.table,
            columns: &columns,
            tenant: None,
            tenant_setting: None,
            settings: &self.settings,
            given: &given,
            probe: &self.probe,
            hint: rows::Hint { within: "the check", per_table: false },
            writer: None,
            decides: &decides,
        };
        ran.push("-- the table is empty and the role's INSERT left nothing in it: a probe row, committed".into());
        match committed::insert(&options, &request, ran).await {
            Ok(Ok(made)) => Ok(made),
            Ok(Err(why)) => Err(NoProbeRow::NotMade { why }),
            Err(source) => Err(NoProbeRow::Sql { source }),
        }
    }

    /// The INSERT, as the transaction's first write: it must add a row that reaches the table
    /// itself. A refused INSERT ends the transaction; another begins.
    async fn insert(&self, w: &mut Writer<'_>, started: Instant) -> Result<(CheckResult, bool), Failure> {
        let before = probe::written(w.session, &w.oid).await?;
        let result = CheckResult::build(KIND, self.object("INSERT"), started)
            .expected("allowed (at least 1 row inserted into the table itself)")
            .evidence(w.evidence(&self.insert));
        w.ran.push(self.insert.clone());
        let (described, reached, inconclusive) = match w.session.run(&self.insert).await {
            Ok(done) => {
                let after = probe::written(w.session, &w.oid).await?;
                (Ok(done.affected), after.inserted - before.inserted, false)
            }
            Err(failure @ Failure::Database { .. }) => {
                let (code, context) = failure.sqlstate().unwrap_or_default();
                let refuses = crate::sqlstate::classify(SqlProbe::Write, code, context).refuses();
                let inconclusive = !refuses && !code.starts_with("23");
                w.run("ROLLBACK").await?;
                w.begin(&self.settings).await?;
                (Err(failure.describe()), 0, inconclusive)
            }
            Err(lost) => return Err(lost),
        };
        let (appended, actual) = judge_insert(described, reached);
        let result = if appended {
            result.actual(actual).found(Found::Appends, format!("`{}` can append to `{}`", self.role, self.table))
        } else if inconclusive {
            result.actual(actual.clone()).found(
                Found::Unproven,
                format!("could not prove that `{}` can append to `{}`: {actual}", self.role, self.table),
            )
        } else {
            let message = format!("`{}` cannot append to `{}`: {actual}", self.role, self.table);
            result.actual(actual).found(Found::CannotAppend, message)
        };
        Ok((result, appended))
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
                return result.found(
                    Found::CouldNotRead,
                    format!("could not list triggers of `{}`: {}", self.table, describe_sql_error(&err)),
                );
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
                .found(Found::TriggersKept, format!("`{}` keeps its immutability triggers", self.table))
        } else {
            let text = problems.join("; ");
            result.actual(text.clone()).found(Found::TriggersLost, format!("`{}`: {text}", self.table))
        }
    }
}

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
