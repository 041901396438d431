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
//! exact_policies = true        # the policies listed are all there are on their tables and `tables`
//! fail_closed = { role = "caracal_app", setting = "caracal.zone_id", column = "zone_id" }
//! # fail_closed.roles = { "public.audit_events" = "caracal_auditor" }   # another role per table
//! # fail_closed.value = "..."; other_value = "..."   # the two tenants (default: made up by type)
//! # fail_closed.probe = { status = "active", "public.grants" = { kind = "read" } }
//! #                    # probe-row values: for every table, or for one table (over the others)
//! # fail_closed.settings = { "app.region" = "eu" }   # more session settings (SET LOCAL)
//! # fail_closed.trusted = [{ setting = "app.bypass_rls", reason = "..." }]  # see check::loophole
//! ```
//!
//! Fail-closed is proven on every table, empty ones included ([`fail_closed`]), in a session the
//! role opened itself ([`crate::check::login`]: a real login, never `SET ROLE` from pgdrill's
//! own): with no tenant set (no rows, or a refused read), as tenant B (not A's rows, no other
//! tenant's), and as tenant A (its own rows). Where the table holds no row of a tenant, a probe
//! row for it (`check::probe`: copied from a row of the table when it has one, else made up from
//! the columns' types, a partitioned table's key from a partition's bound; no constraint or
//! trigger set aside) is committed, by the role's own session when it can insert it, and removed
//! after. A role with no SELECT privilege on the table is closed by privilege. The tenants'
//! values are read as the tenant column's type (`format_type`), so an upper-case uuid or `007`
//! for an integer is the tenant the column holds. Names fold as PostgreSQL folds them. When no
//! probe row can be made, the check errs naming every column that needs a value, with the
//! `probe` line to add; the evidence lists the values pgdrill made up.
//!
//! Against the baseline, each policy must have its command, roles, kind and (when the baseline
//! recorded them) its `USING` and `WITH CHECK` expressions; a permissive policy the baseline
//! did not have on one of its tables fails too (permissive policies add up). With
//! `exact_policies`, so does any policy the scenario does not list on a table it names (in
//! `policies` or `tables`), permissive or restrictive, with its kind, command, roles and
//! expressions: a permissive `USING (true)` added beside the tenant's policy opens every row.

mod fail_closed;

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckError, CheckResult, Kind, ResolveContext};
use crate::baseline::{Baseline, PolicyExpressions, PolicyInfo, capture};
use crate::field::FieldError;
use crate::pg::{QualifiedName, describe_sql_error, fold_ident, quote_ident_if_needed, quote_literal};

mod exact;

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
    /// The `policies` listed are all the policies of the tables they name and of `tables`:
    /// any other policy there fails (a permissive one adds the rows it lets through).
    #[serde(default)]
    pub exact_policies: bool,
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
    /// Probe-row values pgdrill cannot make up, read as each column's type: for every table
    /// (`{ status = "active" }`), or for one table (`{ "public.orders" = { status = "new" } }`,
    /// over the others).
    #[serde(default)]
    pub probe: super::probe::ProbeValues,
    /// More session settings the application sets (`SET LOCAL`).
    #[serde(default)]
    pub settings: super::Settings,
    /// Custom settings (or tenant values) its policies read that only a trusted path sets, each
    /// with why: not tried ([`super::loophole`]).
    #[serde(default)]
    pub trusted: Vec<super::loophole::Trusted>,
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
    pub exact_policies: bool,
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
            for listed in fc.probe.tables().map_err(|e| FieldError::unplaced(e.to_string()))? {
                if !tables.contains(&listed) {
                    return Err(FieldError::unplaced(format!(
                        "`fail_closed.probe` gives values for `{listed}`, which is not in `tables`"
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
        if config.exact_policies && tables.is_empty() && policies.is_empty() {
            return Err(FieldError::unplaced("`exact_policies` needs the tables: list `policies` or `tables`"));
        }
        Ok(Spec {
            tables,
            force: config.force,
            baseline,
            policies,
            exact_policies: config.exact_policies,
            fail_closed: match config.fail_closed {
                Some(mut fc) => {
                    fc.trusted = super::loophole::Trusted::resolve(std::mem::take(&mut fc.trusted))?;
                    Some(fc)
                }
                None => None,
            },
        })
    }

    fn label(&self) -> String {
        let mut parts: Vec<String> = self.tables.iter().map(|t| t.to_string()).collect();
        if self.baseline.is_some() {
            parts.push("the baseline's row security".into());
        }
        parts.join(", ")
    }

    fn unqualified(&self) -> Vec<String> {
        self.tables.iter().filter(|t| t.schema.is_none()).map(|t| t.name.clone()).collect()
    }

    fn logins(&self) -> Vec<String> {
        match &self.fail_closed {
            Some(fc) => {
                std::iter::once(fc.role.clone()).chain(fc.roles.values().cloned()).map(|r| fold_ident(&r)).collect()
            }
            None => Vec::new(),
        }
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let mut results = Vec::new();
        for table in &self.tables {
            results.push(self.flags(ctx, table).await);
        }
        if !self.policies.is_empty() || self.baseline.is_some() || self.exact_policies {
            let started = Instant::now();
            match capture::policies(ctx.pool).await {
                Ok(actual) => {
                    for (table, want) in &self.policies {
                        results.push(expected_policy(ctx, table, want, &actual, started).await);
                    }
                    if self.exact_policies {
                        results.extend(exact::results(self, &actual, started));
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
                results.push(fail_closed::fail_closed(ctx, table, fc).await);
            }
        }
        Ok(results)
    }
}

impl Spec {
    async fn flags(&self, ctx: &CheckContext<'_>, table: &QualifiedName) -> CheckResult {
        let started = Instant::now();
        let want = if self.force { "enabled and forced" } else { "enabled" };
        let result = CheckResult::build(KIND, table.to_string(), started).expected(want).evidence(format!(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = '{table}'::regclass"
        ));
        if let Ok(Some(kind)) = super::relation::kind(ctx.pool, table).await
            && !kind.is_table()
        {
            return result.actual(kind.describe()).verdict(false, super::relation::not_a_table(table, kind));
        }
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
    let mut tx = capture::printing(ctx.pool).await?;
    // The policy made here fires the backup's event triggers where a session cannot turn them
    // off (before PostgreSQL 17, or without a superuser), and one could rewrite it to print as
    // the restored one does.
    let pins = ctx.target.pins;
    if pins.version_num < 170000 || !pins.superuser {
        let firing: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtenabled OPERATOR(pg_catalog.<>) 'D')",
        )
        .fetch_one(&mut *tx)
        .await?;
        if firing {
            return Err(sqlx::Error::Protocol(
                "the backup has event triggers, which this target cannot turn off for pgdrill's session (PostgreSQL before 17, or a role that is not a superuser), so the scenario's expressions cannot be printed safely (hint: compare the policies with a baseline instead)".into(),
            ));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
