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
use crate::baseline::{Baseline, capture};
use crate::field::FieldError;
use crate::outcome::{CheckKind, Finding as _};
use crate::pg::{QualifiedName, describe_sql_error, fold_ident};

mod exact;
mod policies;

use policies::{baseline_policies, expected_policy};

crate::outcome::findings! {
    /// What `rls` finds.
    pub(crate) enum Found for Rls {
        Enabled = Pass "rls.enabled"
            "Row security is enabled on the table, and forced where the scenario asks."
            "Nothing.",
        Disabled = Fail "rls.disabled"
            "Row security is disabled on the table: every role with SELECT on it reads every tenant's rows."
            "`ALTER TABLE ... ENABLE ROW LEVEL SECURITY` in the source, and find why the backup lost it.",
        NotForced = Fail "rls.not-forced"
            "Row security is enabled but not forced: the table's owner bypasses its policies."
            "`ALTER TABLE ... FORCE ROW LEVEL SECURITY`, or drop `force = true` if the application never connects as the owner.",
        TableMissing = Fail "rls.table-missing"
            "A table the check names does not exist in the restored database."
            "Check the name and its schema, or why the restore did not create it.",
        NotATable = Fail "rls.not-a-table"
            "Something other than a table (a view, a foreign table) has the table's name."
            "Find what replaced the table in the backup: a view runs with its owner's rights, past the table's policies.",
        AnotherTable = Fail "rls.another-table"
            "The name without a schema resolves, for the application's role, to another table than the one checked."
            "Name the table with its schema, or look at the role's `search_path`.",
        CouldNotRead = Error "rls.could-not-read"
            "pgdrill's own reads of the catalog (row security flags, policies, columns) failed."
            "Read the database's answer in the message.",
        AsInBaseline = Pass "rls.as-in-baseline"
            "Every table with row security in the baseline has the same flags, or every baseline policy is in place with nothing permissive added."
            "Nothing.",
        BaselineDiffers = Fail "rls.baseline-differs"
            "Row security flags, or policies, differ from the baseline's: a policy missing or changed, or a permissive one added."
            "Compare the listed tables and policies with the source; a restore should change none.",
        PolicyInPlace = Pass "rls.policy-in-place"
            "The policy exists with the command, roles, kind and expressions the scenario gives."
            "Nothing.",
        PolicyMissing = Fail "rls.policy-missing"
            "A policy the scenario names does not exist on its table."
            "Check the policy's name (the hint names one that differs only in case), or why the backup lost it.",
        PolicyDiffers = Fail "rls.policy-differs"
            "The policy exists but its command, roles, kind or expressions differ from the scenario's."
            "Compare the policy's definition in the message with the source's.",
        PolicyExpressionInvalid = Error "rls.policy-expression-invalid"
            "The scenario's expected `using` or `with_check` does not make a policy on the table, so it cannot be compared."
            "Fix the expression in the scenario: it must be valid SQL for that table.",
        NoUnlistedPolicy = Pass "rls.no-unlisted-policy"
            "With `exact_policies`, the table has no policy the scenario does not list."
            "Nothing.",
        UnlistedPolicy = Fail "rls.unlisted-policy"
            "The table has a policy the scenario does not list: a permissive one opens every row it allows, whatever the others allow."
            "Drop the policy in the source, or list it in `policies` if it is there by design.",
        FailClosed = Pass "rls.fail-closed"
            "The role's own session reads no rows with no tenant set, only its tenant's rows as a tenant, and not another tenant's."
            "Nothing.",
        ClosedByPrivilege = Pass "rls.closed-by-privilege"
            "The role has no SELECT privilege on the table: its reads are closed by privilege."
            "Nothing.",
        UnsetTenantReadsRows = Fail "rls.unset-tenant-reads-rows"
            "The role reads rows of the table with no tenant set: the read is not fail-closed (typically `current_setting(..., true)` compared so that unset matches, or a permissive policy beside the tenant's)."
            "Make every policy match no row when the setting is unset (an unset setting is NULL or '', neither a tenant).",
        SessionSettingOpens = Fail(acceptable) "rls.session-setting-opens"
            "A setting the application's session may set itself (or a special tenant value its policies compare with) opens rows of other tenants."
            "Make the policies ignore the setting, or name it in `fail_closed.trusted` with why only a trusted path sets it.",
        OnlyLikeTheDrill = Fail(acceptable) "rls.only-like-the-drill"
            "The policies' code reads facts about the session no try can show (who, where, when): isolation is proven only for sessions like the drill's."
            "Remove the read from the policies' code, or name the fact in `fail_closed.trusted` with why it holds for the application.",
        TenantReadsOtherTenant = Fail "rls.tenant-reads-other-tenant"
            "With the setting set to one tenant, the role reads another tenant's rows: tenants are not isolated."
            "Fix the policy's `USING` expression so that it compares the tenant column with the setting.",
        TenantCannotReadOwn = Fail "rls.tenant-cannot-read-own"
            "With the setting set to a tenant, the role cannot read that tenant's rows: the policy hides every row, or reads another setting."
            "Check that `fail_closed.setting` is the setting the policies read, and the tenant column is `column`.",
        CannotProve = Error "rls.cannot-prove"
            "No proof could be made: a try failed for a reason that is not a refusal (a timeout proves nothing), no probe row could be made for a tenant, or the tenants' values could not be read."
            "Read the message: give the values it names in `fail_closed.probe` (or `value` and `other_value`), or find what made the try fail.",
        SessionFailed = Error "rls.session-failed"
            "The role's own session failed on a statement pgdrill needs (not a read it judges), or the role could not log in."
            "Read the database's answer; a role that cannot log in needs `[login]` settings.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Rls;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RlsCheck")]
pub(crate) struct Config {
    /// Tables that must have row-level security enabled (and forced, with `force`);
    /// `fail_closed` reads each of them.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Require `FORCE ROW LEVEL SECURITY` too.
    #[serde(default)]
    pub force: bool,
    /// Compare with the baseline's row security flags and policies.
    #[serde(default)]
    pub baseline: bool,
    /// Policies that must exist on their tables, with the command, roles, kind and expressions
    /// each entry gives.
    #[serde(default)]
    pub policies: Vec<ExpectedPolicy>,
    /// The `policies` listed are all the policies of the tables they name and of `tables`:
    /// any other policy there fails (a permissive one adds the rows it lets through).
    #[serde(default)]
    pub exact_policies: bool,
    /// Prove reads of each table of `tables` fail closed, as the application role in a session
    /// it opens itself: no rows without the tenant setting, only the tenant's rows with it.
    pub fail_closed: Option<FailClosed>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectedPolicy {
    /// The table it is on (`schema.table`).
    pub table: String,
    /// The policy's name.
    pub name: String,
    /// ALL (default), SELECT, INSERT, UPDATE or DELETE.
    pub command: Option<String>,
    /// The roles it applies to (`TO`), in any order (default: not compared).
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
pub(crate) struct FailClosed {
    /// The application role the reads run as.
    pub role: String,
    /// Another role for some tables: `{ "public.audit_events" = "caracal_auditor" }`.
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, String>,
    /// `roles`, each table read as a name once, when the scenario is resolved.
    #[serde(skip)]
    pub role_of: Vec<(QualifiedName, String)>,
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
    /// `probe`, each table read as a name once, when the scenario is resolved.
    #[serde(skip)]
    pub probe_read: super::probe::Probe,
    /// More session settings the application sets (`SET LOCAL`).
    #[serde(default)]
    pub settings: super::Settings,
    /// Custom settings (or tenant values) its policies read that only a trusted path sets, each
    /// with why: the fail-closed probes do not try them as levers (see the threat model's "A backup that lies").
    #[serde(default)]
    pub trusted: Vec<super::loophole::Trusted>,
}

impl FailClosed {
    /// The role that reads `table`.
    fn role_for(&self, table: &QualifiedName) -> &str {
        self.role_of.iter().find(|(t, _)| t == table).map(|(_, r)| r.as_str()).unwrap_or(&self.role)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub tables: Vec<QualifiedName>,
    pub force: bool,
    pub baseline: Option<Arc<Baseline>>,
    pub policies: Vec<(QualifiedName, ExpectedPolicy)>,
    pub exact_policies: bool,
    pub fail_closed: Option<FailClosed>,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
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
        let (mut role_of, mut probe) = (Vec::new(), super::probe::Probe::default());
        if let Some(fc) = &config.fail_closed {
            if tables.is_empty() {
                return Err(FieldError::unplaced(
                    "`fail_closed` reads the tables listed in `tables`, and there are none",
                ));
            }
            for (listed, role) in &fc.roles {
                let name = QualifiedName::parse(listed).map_err(FieldError::unplaced)?;
                if !tables.contains(&name) {
                    return Err(FieldError::unplaced(format!(
                        "`fail_closed.roles` names `{listed}`, which is not in `tables`"
                    )));
                }
                role_of.push((name, role.clone()));
            }
            probe = fc.probe.read().map_err(|e| FieldError::unplaced(e.to_string()))?;
            for listed in probe.tables() {
                if !tables.contains(listed) {
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
                    let (lever, fact) = (Found::SessionSettingOpens.code(), Found::OnlyLikeTheDrill.code());
                    fc.trusted =
                        super::loophole::Trusted::resolve_for(std::mem::take(&mut fc.trusted), KIND, lever, fact)?;
                    (fc.role_of, fc.probe_read) = (role_of, probe);
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
                        .found(Found::CouldNotRead, format!("could not list policies: {}", describe_sql_error(&err))),
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
            return result.actual(kind.describe()).found(Found::NotATable, super::relation::not_a_table(table, kind));
        }
        match capture::table_row_security(ctx.pool, table).await {
            Err(err) => {
                result.found(Found::CouldNotRead, format!("could not read `{table}`: {}", describe_sql_error(&err)))
            }
            Ok(None) => {
                let message = format!("`{table}` does not exist");
                let message = crate::names::with_hint(ctx.pool, crate::names::Object::Table, table, message).await;
                result.actual("table missing").found(Found::TableMissing, message)
            }
            Ok(Some((enabled, forced))) => {
                let actual = flags_text(enabled, forced);
                let (found, message) = if !enabled {
                    (
                        Found::Disabled,
                        format!(
                            "row security on `{table}` is disabled: every role with SELECT sees every tenant's rows"
                        ),
                    )
                } else if self.force && !forced {
                    (
                        Found::NotForced,
                        format!("row security on `{table}` is not forced: the table's owner bypasses its policies"),
                    )
                } else {
                    (Found::Enabled, format!("row security on `{table}` is {actual}"))
                };
                result.actual(actual).found(found, message)
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

async fn baseline_flags(ctx: &CheckContext<'_>, baseline: &Baseline) -> CheckResult {
    let started = Instant::now();
    let result = CheckResult::build(KIND, "every table with row security in the baseline", started)
        .expected(format!("{} tables with row security as in the baseline", baseline.row_security.len()))
        .evidence("SELECT relrowsecurity, relforcerowsecurity FROM pg_class for every table");
    let actual = match capture::row_security(ctx.pool).await {
        Ok(a) => a,
        Err(err) => {
            return result
                .found(Found::CouldNotRead, format!("could not read row security: {}", describe_sql_error(&err)));
        }
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
        result
            .actual("as in the baseline")
            .found(Found::AsInBaseline, "row security matches the baseline on every table")
    } else {
        let text = problems.join("; ");
        result.actual(text.clone()).found(Found::BaselineDiffers, text)
    }
}

#[cfg(test)]
mod tests {
    /// A `trusted` entry that names a finding `rls` cannot accept is refused where the scenario
    /// writes the check.
    #[test]
    fn an_acceptance_of_a_finding_rls_does_not_accept_is_refused_at_its_entry() {
        let text = "[source]\npath = \"b\"\n\n[[checks.rls]]\ntables = [\"public.t\"]\n\
                    fail_closed = { role = \"app\", setting = \"app.tenant\", column = \"tenant_id\", \
                    trusted = [{ setting = \"app.bypass\", reason = \"admin\", finding = \"rls.disabled\" }] }\n";
        let Err(crate::scenario::ScenarioError::Invalid(e)) =
            crate::scenario::Scenario::parse(text.as_bytes(), std::path::Path::new("rls.toml"))
        else {
            panic!("a scenario error")
        };
        assert_eq!((e.line, e.column), (4, 1), "{e}");
        assert!(e.message.contains("`rls.disabled` is not a finding `rls` accepts"), "{e}");
    }
}
