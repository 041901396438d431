//! `rls`: row-level security is on where the application relies on it (and forced, so that
//! even the tables' owner is subject to it), the expected policies exist, and reads as the
//! application role are fail-closed: without the tenant setting it sees no rows, with one
//! tenant's setting only that tenant's rows.
//!
//! ```toml
//! [[checks.rls]]
//! tables = ["public.resources", "public.grants"]
//! force = true
//! baseline = true              # every table with row security in the baseline, and its policies
//! policies = [{ table = "public.resources", name = "zone_isolation", command = "ALL", roles = ["caracal_app"] }]
//! # a policy's kind and expressions, compared as the server prints them:
//! # { ..., permissive = true, using = "zone_id = current_setting('caracal.zone_id')::uuid", with_check = "..." }
//! fail_closed = { role = "caracal_app", setting = "caracal.zone_id", column = "zone_id" }
//! # fail_closed.roles = { "public.audit_events" = "caracal_auditor" }   # another role per table
//! # fail_closed.value = "..."; other_value = "..."   # the two tenants (default: made up by type)
//! # fail_closed.probe = { status = "active" }        # probe-row values pgdrill cannot make up
//! # fail_closed.settings = { "app.region" = "eu" }   # more session settings (SET LOCAL)
//! ```
//!
//! Fail-closed is proven on every table, empty ones included: in a transaction that is rolled
//! back, the restore's superuser inserts a probe row for each of two tenants (foreign keys and
//! triggers off), then the role (`SET LOCAL ROLE`) reads with no tenant set (no rows, or a
//! refused read), as tenant B (not A's row, no other tenant's), and as tenant A (A's row). A role
//! with no SELECT privilege on the table is closed by privilege. The tenants' values are read as
//! the tenant column's type (`format_type`), so an upper-case uuid or `007` for an integer is
//! the tenant the column holds. Names fold as PostgreSQL folds them.
//!
//! Against the baseline, each policy must have its command, roles, kind and (when the baseline
//! recorded them) its `USING` and `WITH CHECK` expressions; a permissive policy the baseline
//! did not have on one of its tables fails too (permissive policies add up).

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckResult, Kind, ResolveContext, bind_evidence};
use crate::baseline::{Baseline, PolicyExpressions, PolicyInfo, capture};
use crate::field::FieldError;
use crate::pg::{QualifiedName, describe_sql_error, fold_ident, quote_ident, quote_ident_if_needed, quote_literal};

pub(crate) const KIND: &str = "rls";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RlsCheck")]
pub(crate) struct Config {
    #[serde(default)]
    pub tables: Vec<String>,
    /// Require `FORCE ROW LEVEL SECURITY` too.
    #[serde(default)]
    pub force: bool,
    /// Compare with the baseline's row security flags and policies.
    #[serde(default)]
    pub baseline: bool,
    #[serde(default)]
    pub policies: Vec<ExpectedPolicy>,
    pub fail_closed: Option<FailClosed>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedPolicy {
    pub table: String,
    pub name: String,
    /// ALL (default), SELECT, INSERT, UPDATE or DELETE.
    pub command: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// `true`: permissive, `false`: restrictive (default: either).
    pub permissive: Option<bool>,
    /// Its `USING` expression, compared as the server prints it (default: not compared).
    pub using: Option<String>,
    /// Its `WITH CHECK` expression, compared as the server prints it (default: not compared).
    pub with_check: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailClosed {
    /// The application role the reads run as.
    pub role: String,
    /// Another role for some tables: `{ "public.audit_events" = "caracal_auditor" }`.
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, String>,
    /// The setting that carries the tenant (`caracal.zone_id`, `app.tenant_id`).
    pub setting: String,
    /// The tenant column of the tables.
    pub column: String,
    /// Tenant A (default: made up for the probe rows, by the column's type).
    pub value: Option<String>,
    /// Tenant B (default: made up).
    pub other_value: Option<String>,
    /// Values for probe-row columns pgdrill cannot fill by their type: `{ status = "active" }`.
    #[serde(default)]
    pub probe: std::collections::BTreeMap<String, String>,
    /// More session settings the application sets (`SET LOCAL`).
    #[serde(default)]
    pub settings: super::Settings,
}

impl FailClosed {
    /// The role that reads `table`.
    fn role_for(&self, table: &QualifiedName) -> &str {
        self.roles
            .iter()
            .find(|(t, _)| QualifiedName::parse(t).ok().as_ref() == Some(table))
            .map(|(_, r)| r.as_str())
            .unwrap_or(&self.role)
    }
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub tables: Vec<QualifiedName>,
    pub force: bool,
    pub baseline: Option<Arc<Baseline>>,
    pub policies: Vec<(QualifiedName, ExpectedPolicy)>,
    pub fail_closed: Option<FailClosed>,
}

impl Kind for Spec {
    const NAME: &'static str = KIND;
    const PROVES: &'static str =
        "row-level security is on, its policies exist, and tenants cannot read each other's rows";
    const GATE: bool = true;
    type Config = Config;

    fn resolve(config: Config, ctx: &ResolveContext) -> Result<Self, FieldError> {
        let baseline = if config.baseline { Some(ctx.require_baseline(KIND)?) } else { None };
        let tables = config
            .tables
            .iter()
            .map(|t| QualifiedName::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(FieldError::unplaced)?;
        let mut policies = Vec::new();
        for policy in config.policies {
            let table = QualifiedName::parse(&policy.table).map_err(FieldError::unplaced)?;
            policies.push((table, policy));
        }
        if let Some(fc) = &config.fail_closed {
            if tables.is_empty() {
                return Err(FieldError::unplaced(
                    "`fail_closed` reads the tables listed in `tables`, and there are none",
                ));
            }
            for listed in fc.roles.keys() {
                let name = QualifiedName::parse(listed).map_err(FieldError::unplaced)?;
                if !tables.contains(&name) {
                    return Err(FieldError::unplaced(format!(
                        "`fail_closed.roles` names `{listed}`, which is not in `tables`"
                    )));
                }
            }
            if !fc.setting.contains('.') {
                return Err(FieldError::unplaced(format!(
                    "`fail_closed.setting` `{}` must be a custom setting such as `app.tenant_id`",
                    fc.setting
                )));
            }
        }
        if tables.is_empty() && baseline.is_none() && policies.is_empty() {
            return Err(FieldError::unplaced("rls needs `tables`, `policies` or `baseline = true`"));
        }
        Ok(Spec { tables, force: config.force, baseline, policies, fail_closed: config.fail_closed })
    }

    fn label(&self) -> String {
        let mut parts: Vec<String> = self.tables.iter().map(|t| t.to_string()).collect();
        if self.baseline.is_some() {
            parts.push("the baseline's row security".into());
        }
        parts.join(", ")
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
        let mut results = Vec::new();
        for table in &self.tables {
            results.push(self.flags(ctx, table).await);
        }
        if !self.policies.is_empty() || self.baseline.is_some() {
            let started = Instant::now();
            match capture::policies(ctx.pool).await {
                Ok(actual) => {
                    for (table, want) in &self.policies {
                        results.push(expected_policy(ctx, table, want, &actual, started).await);
                    }
                    if let Some(baseline) = &self.baseline {
                        results.push(baseline_flags(ctx, baseline).await);
                        results.push(baseline_policies(baseline, &actual, started));
                    }
                }
                Err(err) => results.push(
                    CheckResult::build(KIND, "policies", started)
                        .error(format!("could not list policies: {}", describe_sql_error(&err))),
                ),
            }
        }
        if let Some(fc) = &self.fail_closed {
            for table in &self.tables {
                results.push(fail_closed(ctx, table, fc).await);
            }
        }
        results
    }
}

impl Spec {
    async fn flags(&self, ctx: &CheckContext<'_>, table: &QualifiedName) -> CheckResult {
        let started = Instant::now();
        let want = if self.force { "enabled and forced" } else { "enabled" };
        let result = CheckResult::build(KIND, table.to_string(), started).expected(want).evidence(format!(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = '{table}'::regclass"
        ));
        match capture::table_row_security(ctx.pool, table).await {
            Err(err) => result.error(format!("could not read `{table}`: {}", describe_sql_error(&err))),
            Ok(None) => {
                let message = format!("`{table}` does not exist");
                let message = crate::names::with_hint(ctx.pool, crate::names::Object::Table, table, message).await;
                result.actual("table missing").verdict(false, message)
            }
            Ok(Some((enabled, forced))) => {
                let actual = flags_text(enabled, forced);
                let ok = enabled && (forced || !self.force);
                let message = if ok {
                    format!("row security on `{table}` is {actual}")
                } else if !enabled {
                    format!("row security on `{table}` is disabled: every role with SELECT sees every tenant's rows")
                } else {
                    format!("row security on `{table}` is not forced: the table's owner bypasses its policies")
                };
                result.actual(actual).verdict(ok, message)
            }
        }
    }
}

fn flags_text(enabled: bool, forced: bool) -> String {
    match (enabled, forced) {
        (true, true) => "enabled and forced".into(),
        (true, false) => "enabled, not forced".into(),
        (false, true) => "disabled (forced flag set)".into(),
        (false, false) => "disabled".into(),
    }
}

fn policy_text(p: &PolicyInfo) -> String {
    let roles = if p.roles.is_empty() { "public".to_owned() } else { p.roles.join(", ") };
    let mut text = format!("{} {} to {roles}{}", p.name, p.command, if p.permissive { "" } else { " (restrictive)" });
    if let Some(e) = &p.expressions {
        text.push_str(&format!(" USING {}", expression_text(e.using.as_deref())));
        if let Some(check) = &e.with_check {
            text.push_str(&format!(" WITH CHECK {check}"));
        }
    }
    text
}

/// An expression as `pg_policies` prints it, `none` for no clause.
fn expression_text(e: Option<&str>) -> String {
    e.map(|e| e.to_owned()).unwrap_or_else(|| "none".into())
}

/// How the policy `have` differs from `want` (the baseline's): command, roles, kind and, when
/// `want` recorded them, its expressions. Each difference reads `is X (baseline: Y)`.
pub(crate) fn policy_differences(have: &PolicyInfo, want: &PolicyInfo) -> Vec<String> {
    let kind = |p: &PolicyInfo| if p.permissive { "permissive" } else { "restrictive" };
    let roles = |p: &PolicyInfo| if p.roles.is_empty() { "public".to_owned() } else { p.roles.join(", ") };
    let mut out = Vec::new();
    if have.command != want.command {
        out.push(format!("is FOR {} (baseline: FOR {})", have.command, want.command));
    }
    if have.roles != want.roles {
        out.push(format!("is TO {} (baseline: TO {})", roles(have), roles(want)));
    }
    if have.permissive != want.permissive {
        out.push(format!("is {} (baseline: {})", kind(have), kind(want)));
    }
    if let Some(want_e) = &want.expressions {
        let none = PolicyExpressions { using: None, with_check: None };
        let have_e = have.expressions.as_ref().unwrap_or(&none);
        if have_e.using != want_e.using {
            out.push(format!(
                "is USING {} (baseline: USING {})",
                expression_text(have_e.using.as_deref()),
                expression_text(want_e.using.as_deref())
            ));
        }
        if have_e.with_check != want_e.with_check {
            out.push(format!(
                "is WITH CHECK {} (baseline: WITH CHECK {})",
                expression_text(have_e.with_check.as_deref()),
                expression_text(want_e.with_check.as_deref())
            ));
        }
    }
    out
}

/// The expressions a scenario wrote, as the server prints them: a policy made with them on
/// the table, in a transaction that is rolled back, read back from `pg_policies`.
async fn printed_expressions(
    ctx: &CheckContext<'_>,
    table: &QualifiedName,
    using: Option<&str>,
    with_check: Option<&str>,
) -> Result<PolicyExpressions, sqlx::Error> {
    let mut tx = ctx.pool.begin().await?;
    let mut create = format!("CREATE POLICY pgdrill_expected ON {} AS PERMISSIVE FOR ALL", table.sql());
    if let Some(u) = using {
        create.push_str(&format!(" USING ({u})"));
    }
    if let Some(c) = with_check {
        create.push_str(&format!(" WITH CHECK ({c})"));
    }
    sqlx::query(&create).execute(&mut *tx).await?;
    let (using, with_check): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT p.qual, p.with_check FROM pg_catalog.pg_policies p \
         WHERE p.policyname = 'pgdrill_expected' AND format('%I.%I', p.schemaname, p.tablename)::regclass = $1::regclass",
    )
    .bind(table.sql())
    .fetch_one(&mut *tx)
    .await?;
    tx.rollback().await?;
    Ok(PolicyExpressions { using, with_check })
}

async fn expected_policy(
    ctx: &CheckContext<'_>,
    table: &QualifiedName,
    want: &ExpectedPolicy,
    actual: &[PolicyInfo],
    started: Instant,
) -> CheckResult {
    let command = want.command.clone().unwrap_or_else(|| "ALL".into()).to_ascii_uppercase();
    // Names as the server stores them: unquoted ones fold to lower case.
    let name = fold_ident(&want.name);
    let mut roles: Vec<String> = want.roles.iter().map(|r| fold_ident(r)).collect();
    roles.sort();
    let mut expected =
        format!("{name} {command} to {}", if roles.is_empty() { "any role".to_owned() } else { roles.join(", ") });
    match want.permissive {
        Some(true) => expected.push_str(" (permissive)"),
        Some(false) => expected.push_str(" (restrictive)"),
        None => {}
    }
    if let Some(u) = &want.using {
        expected.push_str(&format!(" USING ({u})"));
    }
    if let Some(c) = &want.with_check {
        expected.push_str(&format!(" WITH CHECK ({c})"));
    }
    let result = CheckResult::build(KIND, format!("{table} policy {name}"), started).expected(expected).evidence(
        format!(
            "SELECT policyname, cmd, roles, permissive, qual, with_check FROM pg_policies WHERE schemaname = {} AND tablename = {}",
            quote_literal(table.schema_or_public()),
            quote_literal(&table.name)
        ),
    );
    let table_text = QualifiedName::new(table.schema_or_public(), &table.name).to_string();
    let Some(found) = actual.iter().find(|p| p.table == table_text && p.name == name) else {
        let on_table: Vec<&str> = actual.iter().filter(|p| p.table == table_text).map(|p| p.name.as_str()).collect();
        let hint = match on_table.iter().find(|p| p.to_lowercase() == name.to_lowercase()) {
            Some(meant) => format!(" (hint: did you mean `{}`?)", quote_ident_if_needed(meant)),
            None => String::new(),
        };
        return result.actual("missing").verdict(false, format!("policy `{name}` on `{table}` does not exist{hint}"));
    };
    let mut problems = Vec::new();
    if found.command != command {
        problems.push(format!("is FOR {} (expected FOR {command})", found.command));
    }
    if !roles.is_empty() && found.roles != roles {
        problems.push(format!("is TO {} (expected TO {})", found.roles.join(", "), roles.join(", ")));
    }
    if want.permissive.is_some_and(|p| p != found.permissive) {
        let kind = |p: bool| if p { "permissive" } else { "restrictive" };
        problems.push(format!("is {} (expected {})", kind(found.permissive), kind(!found.permissive)));
    }
    if want.using.is_some() || want.with_check.is_some() {
        let printed = match printed_expressions(ctx, table, want.using.as_deref(), want.with_check.as_deref()).await {
            Ok(p) => p,
            Err(err) => {
                return result.error(format!(
                    "the expected expressions of policy `{name}` do not make a policy on `{table}`: {}",
                    describe_sql_error(&err)
                ));
            }
        };
        let have = found.expressions.clone().unwrap_or(PolicyExpressions { using: None, with_check: None });
        if want.using.is_some() && have.using != printed.using {
            problems.push(format!(
                "is USING {} (expected USING {})",
                expression_text(have.using.as_deref()),
                expression_text(printed.using.as_deref())
            ));
        }
        if want.with_check.is_some() && have.with_check != printed.with_check {
            problems.push(format!(
                "is WITH CHECK {} (expected WITH CHECK {})",
                expression_text(have.with_check.as_deref()),
                expression_text(printed.with_check.as_deref())
            ));
        }
    }
    let ok = problems.is_empty();
    result.actual(policy_text(found)).verdict(
        ok,
        if ok {
            format!("policy `{name}` on `{table}` is in place")
        } else {
            format!("policy `{name}` on `{table}` {}", problems.join(", "))
        },
    )
}

async fn baseline_flags(ctx: &CheckContext<'_>, baseline: &Baseline) -> CheckResult {
    let started = Instant::now();
    let result = CheckResult::build(KIND, "every table with row security in the baseline", started)
        .expected(format!("{} tables with row security as in the baseline", baseline.row_security.len()))
        .evidence("SELECT relrowsecurity, relforcerowsecurity FROM pg_class for every table");
    let actual = match capture::row_security(ctx.pool).await {
        Ok(a) => a,
        Err(err) => return result.error(format!("could not read row security: {}", describe_sql_error(&err))),
    };
    let mut problems = Vec::new();
    for want in &baseline.row_security {
        let (enabled, forced) =
            actual.iter().find(|a| a.table == want.table).map(|a| (a.enabled, a.forced)).unwrap_or((false, false));
        if (enabled, forced) != (want.enabled, want.forced) {
            problems.push(format!(
                "{} is {} (baseline: {})",
                want.table,
                flags_text(enabled, forced),
                flags_text(want.enabled, want.forced)
            ));
        }
    }
    if problems.is_empty() {
        result.actual("as in the baseline").verdict(true, "row security matches the baseline on every table")
    } else {
        let text = problems.join("; ");
        result.actual(text.clone()).verdict(false, text)
    }
}

fn baseline_policies(baseline: &Baseline, actual: &[PolicyInfo], started: Instant) -> CheckResult {
    let result = CheckResult::build(KIND, "every policy in the baseline", started)
        .expected(format!(
            "{} policies as in the baseline, no other permissive policy on their tables",
            baseline.policies.len()
        ))
        .evidence(
            "SELECT schemaname, tablename, policyname, cmd, roles, permissive, qual, with_check FROM pg_policies",
        );
    let problems = baseline_policy_problems(baseline, actual);
    if problems.is_empty() {
        result
            .actual("as in the baseline")
            .verdict(true, format!("all {} policies are in place", baseline.policies.len()))
    } else {
        let text = problems.join("; ");
        result.actual(text.clone()).verdict(false, text)
    }
}

/// What differs from the baseline's policies: a policy missing or changed, and a permissive
/// policy the baseline did not have on one of its tables (permissive policies add up: one more
/// lets more rows through).
pub(crate) fn baseline_policy_problems(baseline: &Baseline, actual: &[PolicyInfo]) -> Vec<String> {
    let mut problems = Vec::new();
    for want in &baseline.policies {
        match actual.iter().find(|p| p.table == want.table && p.name == want.name) {
            None => problems.push(format!("{} on {} is missing", want.name, want.table)),
            Some(have) => {
                let differences = policy_differences(have, want);
                if !differences.is_empty() {
                    problems.push(format!("{} on {} {}", want.name, want.table, differences.join(", ")));
                }
            }
        }
    }
    let known = |table: &str| {
        baseline.policies.iter().any(|p| p.table == table) || baseline.row_security.iter().any(|r| r.table == table)
    };
    for have in actual {
        let expected = baseline.policies.iter().any(|p| p.table == have.table && p.name == have.name);
        if have.permissive && !expected && known(&have.table) {
            problems.push(format!(
                "{} has a permissive policy the baseline does not: {}",
                have.table,
                policy_text(have)
            ));
        }
    }
    problems
}

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
}

/// From the reads to the verdict.
pub(crate) fn judge_fail_closed(
    result: super::CheckResultBuilder,
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
    result.verdict(
        true,
        format!(
            "`{role}` sees no rows of `{table}` without {setting}, only tenant A's probe row as A, and not A's as tenant B"
        ),
    )
}

/// Why the reads did not run: the role may not read the table (closed), or no probe row could
/// be made.
enum Unproven {
    Closed(String),
    Cannot(String),
}

/// A column of a table, as a probe row needs to know it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProbeColumn {
    pub name: String,
    /// `format_type`: `uuid`, `character varying(40)`, `zone_status`.
    pub sql_type: String,
    /// `pg_type.typcategory`: N numeric, S string, B boolean, D date/time, E enum, A array, U user.
    pub category: String,
    /// The first label of an enum.
    pub first_label: Option<String>,
    /// NOT NULL.
    pub not_null: bool,
    /// It has a default or is an identity (BY DEFAULT).
    pub has_default: bool,
    /// Generated, or an identity GENERATED ALWAYS: never written.
    pub never_written: bool,
    /// Part of a unique index: a copy would collide.
    pub unique: bool,
}

/// The columns and values of a probe row, as SQL with `{tenant}` for the tenant's value. With
/// a row to copy (`src`), every column is copied but the tenant, what is never written and
/// what is unique (its default, else a value made by type); without one, NOT NULL columns
/// without a default get a value made by type. The scenario's `probe` values come first.
pub(crate) fn probe_row(
    columns: &[ProbeColumn],
    tenant: &str,
    given: &std::collections::BTreeMap<String, String>,
    copy: bool,
) -> Result<Vec<(String, String)>, String> {
    let mut row = Vec::new();
    for column in columns {
        let value = if column.name == tenant {
            Some(format!("({{tenant}})::{}", column.sql_type))
        } else if let Some(value) = given.iter().find(|(k, _)| fold_ident(k) == column.name).map(|(_, v)| v) {
            Some(format!("({})::{}", quote_literal(value), column.sql_type))
        } else if column.never_written || (column.unique && column.has_default) {
            None
        } else if copy && !column.unique {
            Some(format!("src.{}", quote_ident(&column.name)))
        } else if column.unique || (column.not_null && !column.has_default) {
            Some(value_by_type(column)?)
        } else {
            None
        };
        if let Some(value) = value {
            row.push((quote_ident(&column.name), value));
        }
    }
    Ok(row)
}

/// A value for `column` made from its type.
fn value_by_type(column: &ProbeColumn) -> Result<String, String> {
    let expr = match (column.sql_type.as_str(), column.category.as_str()) {
        ("uuid", _) => "gen_random_uuid()".to_owned(),
        ("json" | "jsonb", _) => "'{}'".to_owned(),
        (_, "N") => "floor(random() * 1000000000)".to_owned(),
        (_, "S") => "'pgdrill-probe-' || substr(md5(random()::text), 1, 12)".to_owned(),
        (_, "B") => "false".to_owned(),
        (_, "D") => "now()".to_owned(),
        (_, "A") => "'{}'".to_owned(),
        (_, "E") => match &column.first_label {
            Some(label) => quote_literal(label),
            None => return Err(format!("column `{}` is an enum without labels", column.name)),
        },
        _ => {
            return Err(format!(
                "pgdrill cannot make a value of type {} for column `{}` of a probe row",
                column.sql_type, column.name
            ));
        }
    };
    Ok(format!("({expr})::{}", column.sql_type))
}

/// Two tenants' values for the tenant column, as the scenario wrote them, else made up by type
/// (to be read as the column's type by [`canonical_tenant`]).
fn tenant_values(column: &ProbeColumn, fc: &FailClosed) -> Result<(String, String), String> {
    let made_up = || -> Result<String, String> {
        let bytes: [u8; 16] = rand::random();
        let hex = hex::encode(bytes);
        Ok(match (column.sql_type.as_str(), column.category.as_str()) {
            ("uuid", _) => format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]),
            ("smallint", _) => format!("-{}", 1 + u16::from_le_bytes([bytes[0], bytes[1]]) % 32000),
            (_, "N") => format!("-{}", 1 + u32::from_le_bytes([bytes[0], bytes[1], bytes[2], 0])),
            // The random part first: a short varchar(n) keeps it.
            (_, "S") => format!("{}-pgdrill-tenant", &hex[..12]),
            _ => {
                return Err(format!(
                    "pgdrill cannot make up tenants for `{}` of type {} (hint: give `value` and `other_value`)",
                    column.name, column.sql_type
                ));
            }
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

/// SQL: a tenant value (`$1`, text) read as the tenant column's type and printed back, the
/// way the server stores it: `'0A1B...'` as a uuid is `0a1b...`, `'007'` as an integer is `7`.
fn canonical_tenant_sql(column: &ProbeColumn) -> String {
    format!("SELECT ($1::text)::{}::text", column.sql_type)
}

const COLUMNS_SQL: &str = "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typcategory::text, \
     (SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = a.atttypid ORDER BY e.enumsortorder LIMIT 1), \
     a.attnotnull, a.atthasdef OR a.attidentity = 'd', a.attgenerated <> '' OR a.attidentity = 'a', \
     EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique AND a.attnum = ANY (i.indkey)) \
     FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
     WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";

/// Proves `table` fail-closed for the role that reads it: in one transaction that is rolled
/// back, the restore's superuser inserts a probe row for each of two tenants (foreign keys and
/// triggers off for them), then the role reads with no tenant set, as tenant B, and as tenant A.
/// A role that may not read the table at all is closed by privilege. The tenants' values are
/// read as the tenant column's type first, so that they are compared as the server stores
/// them; the evidence is the SQL that ran, in order.
async fn fail_closed(ctx: &CheckContext<'_>, table: &QualifiedName, fc: &FailClosed) -> CheckResult {
    let started = Instant::now();
    let role_name = fold_ident(fc.role_for(table));
    let role = role_name.as_str();
    let t = table.sql();
    let setting = &fc.setting;
    let tenant_column = fold_ident(&fc.column);
    let mut ran: Vec<String> = vec!["BEGIN".into()];
    let outcome: Result<Result<FailClosedFacts, Unproven>, sqlx::Error> = async {
        let mut tx = ctx.pool.begin().await?;
        let settings = fc.settings.evidence();
        if !settings.is_empty() {
            ran.push(settings.trim_end().trim_end_matches(';').to_owned());
        }
        fc.settings.apply(&mut tx).await?;
        let privilege_sql = "SELECT has_any_column_privilege($1, $2, 'SELECT')";
        ran.push(bind_evidence(privilege_sql, &[role, &t]));
        let readable: bool = sqlx::query_scalar(privilege_sql).bind(role).bind(&t).fetch_one(&mut *tx).await?;
        if !readable {
            return Ok(Err(Unproven::Closed(format!("`{role}` has no SELECT privilege on `{table}`: closed by privilege"))));
        }
        type ColumnRow = (String, String, String, Option<String>, bool, bool, bool, bool);
        ran.push(bind_evidence(COLUMNS_SQL, &[&t]));
        let rows: Vec<ColumnRow> = sqlx::query_as(COLUMNS_SQL).bind(&t).fetch_all(&mut *tx).await?;
        let columns: Vec<ProbeColumn> = rows
            .into_iter()
            .map(|(name, sql_type, category, first_label, not_null, has_default, never_written, unique)| ProbeColumn {
                name,
                sql_type,
                category,
                first_label,
                not_null,
                has_default,
                never_written,
                unique,
            })
            .collect();
        let Some(tenant) = columns.iter().find(|c| c.name == tenant_column) else {
            let hint = match columns.iter().find(|c| c.name.to_lowercase() == tenant_column.to_lowercase()) {
                Some(c) => format!(" (hint: did you mean `{}`?)", quote_ident_if_needed(&c.name)),
                None => String::new(),
            };
            return Ok(Err(Unproven::Cannot(format!("`{table}` has no column `{tenant_column}`{hint}"))));
        };
        let (a, b) = match tenant_values(tenant, fc) {
            Ok(values) => values,
            Err(why) => return Ok(Err(Unproven::Cannot(why))),
        };
        // Each tenant as the column's type prints it: the value the policy compares.
        let canonical_sql = canonical_tenant_sql(tenant);
        let mut canonical = Vec::new();
        for value in [&a, &b] {
            ran.push(bind_evidence(&canonical_sql, &[value]));
            match sqlx::query_scalar::<_, String>(&canonical_sql).bind(value).fetch_one(&mut *tx).await {
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
        // A row of the table, when it has one, is copied: its values already satisfy the
        // table's checks.
        let exists_sql = format!("SELECT EXISTS (SELECT 1 FROM {t})");
        ran.push(exists_sql.clone());
        let copy: bool = sqlx::query_scalar(&exists_sql).fetch_one(&mut *tx).await?;
        let row = match probe_row(&columns, &tenant_column, &fc.probe, copy) {
            Ok(row) => row,
            Err(why) => {
                return Ok(Err(Unproven::Cannot(format!(
                    "cannot prove `{table}` fail-closed: {why} (hint: give it a value under `fail_closed.probe = {{ column = \"...\" }}`)"
                ))));
            }
        };
        let names: Vec<&str> = row.iter().map(|(n, _)| n.as_str()).collect();
        let insert = |tenant_value: &str| {
            let values: Vec<String> =
                row.iter().map(|(_, v)| v.replace("{tenant}", &quote_literal(tenant_value))).collect();
            let source = if copy { format!(" FROM {t} AS src LIMIT 1") } else { String::new() };
            format!(
                "INSERT INTO {t} ({}) SELECT {}{source} RETURNING tableoid::oid::bigint, ctid::text",
                names.join(", "),
                values.join(", ")
            )
        };
        for statement in ["SAVEPOINT probe_rows", "SET LOCAL session_replication_role = replica"] {
            ran.push(statement.to_owned());
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        let mut inserted: Result<Vec<(i64, String)>, sqlx::Error> = Ok(Vec::new());
        for value in [&a, &b] {
            if let Ok(rows) = &mut inserted {
                let sql = insert(value);
                ran.push(sql.clone());
                match sqlx::query_as::<_, (i64, String)>(&sql).fetch_one(&mut *tx).await {
                    Ok(row) => rows.push(row),
                    Err(e) => inserted = Err(e),
                }
            }
        }
        let probe = match inserted {
            Ok(rows) => rows[0].clone(),
            Err(err) => {
                return Ok(Err(Unproven::Cannot(
                    format!(
                        "cannot prove `{table}` fail-closed: the probe rows cannot be inserted: {} (hint: give the column that stopped it a value under `fail_closed.probe`)",
                        describe_sql_error(&err)
                    ),
                )));
            }
        };
        let set_role = format!("SET LOCAL ROLE {}", quote_ident(role));
        for statement in ["SET LOCAL session_replication_role = origin", set_role.as_str(), "SAVEPOINT unset"] {
            ran.push(statement.to_owned());
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        let count_sql = format!("SELECT count(*) FROM {t}");
        ran.push(count_sql.clone());
        let without = match sqlx::query_scalar::<_, i64>(&count_sql).fetch_one(&mut *tx).await {
            Ok(n) => Some(n),
            Err(sqlx::Error::Database(_)) => {
                ran.push("ROLLBACK TO SAVEPOINT unset".into());
                sqlx::query("ROLLBACK TO SAVEPOINT unset").execute(&mut *tx).await?;
                None
            }
            Err(e) => return Err(e),
        };
        let column = quote_ident(&tenant.name);
        let read = format!(
            "SELECT count(*) FILTER (WHERE tableoid = $1::oid AND ctid = $2::tid), count(*) FILTER (WHERE {column} IS DISTINCT FROM ($3::text)::{}) FROM {t}",
            tenant.sql_type
        );
        let set_tenant = "SELECT set_config($1, $2, true)";
        let oid = probe.0.to_string();
        let mut seen = Vec::new();
        for value in [&b, &a] {
            ran.push(bind_evidence(set_tenant, &[setting, value]));
            sqlx::query(set_tenant).bind(setting).bind(value).execute(&mut *tx).await?;
            ran.push(bind_evidence(&read, &[&oid, &probe.1, value]));
            let counts: (i64, i64) =
                sqlx::query_as(&read).bind(probe.0).bind(&probe.1).bind(value).fetch_one(&mut *tx).await?;
            seen.push(counts);
        }
        tx.rollback().await?;
        let [(b_sees_a, b_foreign), (a_sees_own, a_foreign)] = [seen[0], seen[1]];
        Ok(Ok(FailClosedFacts { without, b_sees_a, b_foreign, a_sees_own, a_foreign }))
    }
    .await;
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

#[cfg(test)]
mod fail_closed_tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::outcome::Verdict;

    fn judge(facts: FailClosedFacts) -> CheckResult {
        let table = QualifiedName::new("public", "grants");
        let result = CheckResult::build(KIND, "public.grants fail-closed for app", Instant::now());
        judge_fail_closed(result, &table, "app", "app.tenant", &facts)
    }

    const CLOSED: FailClosedFacts =
        FailClosedFacts { without: Some(0), b_sees_a: 0, b_foreign: 0, a_sees_own: 1, a_foreign: 0 };

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
        ];
        for (facts, says) in cases {
            let result = judge(facts);
            assert_eq!(result.verdict, Verdict::Fail, "{result:?}");
            assert!(result.message.contains(says), "{}", result.message);
        }
    }

    fn policy(name: &str, using: &str, permissive: bool) -> PolicyInfo {
        PolicyInfo {
            table: "public.grants".into(),
            name: name.into(),
            command: "ALL".into(),
            roles: vec!["app".into()],
            permissive,
            expressions: Some(PolicyExpressions { using: Some(using.into()), with_check: None }),
        }
    }

    #[test]
    fn a_weakened_or_extra_permissive_policy_fails_and_an_old_baseline_compares_without_expressions() {
        let isolation = "(tenant_id = (current_setting('app.tenant'::text))::uuid)";
        let mut baseline = Baseline::empty_for_tests();
        baseline.policies = vec![policy("isolation", isolation, true)];
        assert!(baseline_policy_problems(&baseline, &[policy("isolation", isolation, true)]).is_empty());
        let weakened = baseline_policy_problems(&baseline, &[policy("isolation", "true", true)]);
        assert_eq!(weakened, [format!("isolation on public.grants is USING true (baseline: USING {isolation})")]);
        let restrictive = baseline_policy_problems(&baseline, &[policy("isolation", isolation, false)]);
        assert_eq!(restrictive, ["isolation on public.grants is restrictive (baseline: permissive)"]);
        let extra = baseline_policy_problems(
            &baseline,
            &[
                policy("isolation", isolation, true),
                policy("allow_all", "true", true),
                policy("narrow", "false", false),
            ],
        );
        assert_eq!(
            extra,
            ["public.grants has a permissive policy the baseline does not: allow_all ALL to app USING true"],
            "a restrictive one only narrows"
        );
        // A baseline captured before expressions were recorded compares without them.
        baseline.policies[0].expressions = None;
        assert!(baseline_policy_problems(&baseline, &[policy("isolation", "true", true)]).is_empty());
        let old: PolicyInfo = serde_json::from_str(
            r#"{"table": "public.grants", "name": "isolation", "command": "ALL", "roles": ["app"], "permissive": true}"#,
        )
        .unwrap();
        assert_eq!(old.expressions, None);
    }

    fn column(name: &str, sql_type: &str, category: &str) -> ProbeColumn {
        ProbeColumn { name: name.into(), sql_type: sql_type.into(), category: category.into(), ..Default::default() }
    }

    #[test]
    fn a_probe_row_copies_a_row_when_there_is_one_and_makes_up_the_rest_by_type() {
        let columns = vec![
            ProbeColumn { has_default: true, unique: true, not_null: true, ..column("id", "uuid", "U") },
            ProbeColumn { not_null: true, ..column("zone_id", "uuid", "U") },
            ProbeColumn { not_null: true, ..column("kind", "text", "S") },
            ProbeColumn { not_null: true, unique: true, ..column("slug", "text", "S") },
            column("note", "text", "S"),
            ProbeColumn { never_written: true, ..column("total", "integer", "N") },
        ];
        let none = BTreeMap::new();
        let copied = probe_row(&columns, "zone_id", &none, true).unwrap();
        let names: Vec<&str> = copied.iter().map(|(n, _)| n.trim_matches('"')).collect();
        assert_eq!(names, ["zone_id", "kind", "slug", "note"], "id and total are left to the table");
        assert_eq!(copied[0].1, "({tenant})::uuid");
        assert_eq!(copied[1].1, "src.\"kind\"", "copied, so the table's checks hold");
        assert!(copied[2].1.contains("pgdrill-probe-"), "a unique column is made up: {}", copied[2].1);
        let made = probe_row(&columns, "zone_id", &none, false).unwrap();
        let names: Vec<&str> = made.iter().map(|(n, _)| n.trim_matches('"')).collect();
        assert_eq!(names, ["zone_id", "kind", "slug"], "without a row, only NOT NULL columns without default");
        let given = BTreeMap::from([("Kind".to_owned(), "service".to_owned())]);
        assert_eq!(probe_row(&columns, "zone_id", &given, false).unwrap()[1].1, "('service')::text");
        let odd = vec![ProbeColumn { not_null: true, ..column("shape", "geometry", "U") }];
        let why = probe_row(&odd, "zone_id", &none, false).unwrap_err();
        assert!(why.contains("type geometry for column `shape`"), "{why}");
    }
}
