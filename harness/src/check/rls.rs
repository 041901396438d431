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
//! fail_closed = { role = "caracal_app", setting = "caracal.zone_id", column = "zone_id", value = "..." }
//! ```
//!
//! The reads run in a transaction that is rolled back, with `SET LOCAL ROLE`.

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckResult, Kind, ResolveContext};
use crate::baseline::{Baseline, PolicyInfo, capture};
use crate::field::FieldError;
use crate::pg::{QualifiedName, describe_sql_error, quote_ident, quote_literal};

pub const KIND: &str = "rls";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedPolicy {
    pub table: String,
    pub name: String,
    /// ALL (default), SELECT, INSERT, UPDATE or DELETE.
    pub command: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailClosed {
    /// The application role the reads run as.
    pub role: String,
    /// The setting that carries the tenant (`caracal.zone_id`, `app.tenant_id`).
    pub setting: String,
    /// The tenant column of the tables.
    pub column: String,
    /// One tenant's value.
    pub value: String,
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
                        results.push(expected_policy(table, want, &actual, started));
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
            Ok(None) => result.actual("table missing").verdict(false, format!("`{table}` does not exist")),
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
    format!("{} {} to {roles}{}", p.name, p.command, if p.permissive { "" } else { " (restrictive)" })
}

fn expected_policy(
    table: &QualifiedName,
    want: &ExpectedPolicy,
    actual: &[PolicyInfo],
    started: Instant,
) -> CheckResult {
    let command = want.command.clone().unwrap_or_else(|| "ALL".into()).to_ascii_uppercase();
    let mut roles = want.roles.clone();
    roles.sort();
    let expected = format!(
        "{} {command} to {}",
        want.name,
        if roles.is_empty() { "any role".to_owned() } else { roles.join(", ") }
    );
    let result = CheckResult::build(KIND, format!("{table} policy {}", want.name), started)
        .expected(expected)
        .evidence(format!(
            "SELECT policyname, cmd, roles FROM pg_policies WHERE schemaname = '{}' AND tablename = '{}'",
            table.schema_or_public(),
            table.name
        ));
    let table_text = QualifiedName::new(table.schema_or_public(), &table.name).to_string();
    let Some(found) = actual.iter().find(|p| p.table == table_text && p.name == want.name) else {
        return result.actual("missing").verdict(false, format!("policy `{}` on `{table}` does not exist", want.name));
    };
    let ok = found.command == command && (roles.is_empty() || found.roles == roles);
    result.actual(policy_text(found)).verdict(
        ok,
        if ok {
            format!("policy `{}` on `{table}` is in place", want.name)
        } else {
            format!("policy `{}` on `{table}` is {}", want.name, policy_text(found))
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
        .expected(format!("{} policies as in the baseline", baseline.policies.len()))
        .evidence("SELECT * FROM pg_policies");
    let mut problems = Vec::new();
    for want in &baseline.policies {
        match actual.iter().find(|p| p.table == want.table && p.name == want.name) {
            None => problems.push(format!("{} on {} is missing", want.name, want.table)),
            Some(have) if have != want => problems.push(format!(
                "{} on {} is {} (baseline: {})",
                want.name,
                want.table,
                policy_text(have),
                policy_text(want)
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        result
            .actual("as in the baseline")
            .verdict(true, format!("all {} policies are in place", baseline.policies.len()))
    } else {
        let text = problems.join("; ");
        result.actual(text.clone()).verdict(false, text)
    }
}

/// Reads `table` as the application role, without and with one tenant's setting.
async fn fail_closed(ctx: &CheckContext<'_>, table: &QualifiedName, fc: &FailClosed) -> CheckResult {
    let started = Instant::now();
    let column = quote_ident(&fc.column);
    let value = quote_literal(&fc.value);
    let evidence = format!(
        "BEGIN; SET LOCAL ROLE {role}; SELECT count(*) FROM {t}; SELECT set_config({setting}, {value}, true); \
         SELECT count(*), count(*) FILTER (WHERE {column}::text IS DISTINCT FROM {value}) FROM {t}; ROLLBACK",
        role = quote_ident(&fc.role),
        t = table.sql(),
        setting = quote_literal(&fc.setting),
    );
    let result = CheckResult::build(KIND, format!("{table} fail-closed for {}", fc.role), started).evidence(evidence);
    let outcome: Result<(i64, i64, i64, i64, i64), sqlx::Error> = async {
        let mut tx = ctx.pool.begin().await?;
        let (total, tenant): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*), count(*) FILTER (WHERE {column}::text = {value}) FROM {}",
            table.sql()
        ))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(&format!("SET LOCAL ROLE {}", quote_ident(&fc.role))).execute(&mut *tx).await?;
        let without: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {}", table.sql())).fetch_one(&mut *tx).await?;
        sqlx::query("SELECT set_config($1, $2, true)").bind(&fc.setting).bind(&fc.value).execute(&mut *tx).await?;
        let (with, foreign): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*), count(*) FILTER (WHERE {column}::text IS DISTINCT FROM {value}) FROM {}",
            table.sql()
        ))
        .fetch_one(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok((total, tenant, without, with, foreign))
    }
    .await;
    let (total, tenant, without, with, foreign) = match outcome {
        Ok(counts) => counts,
        Err(err) => {
            return result.error(format!("could not read `{table}` as `{}`: {}", fc.role, describe_sql_error(&err)));
        }
    };
    let result = result.expected(format!(
        "0 rows without {}; with {} = {} exactly that tenant's {tenant} of {total}",
        fc.setting, fc.setting, fc.value
    ));
    if total == 0 || tenant == 0 {
        return result.actual(format!("{total} rows, {tenant} of the tenant")).error(format!(
            "cannot prove `{table}` fail-closed: it holds {total} rows, {tenant} of tenant {}",
            fc.value
        ));
    }
    let actual = format!("{without} rows without the setting; {with} with it, {foreign} of other tenants");
    let ok = without == 0 && with == tenant && foreign == 0;
    let message = if ok {
        format!("`{}` sees no rows of `{table}` without {} and only the tenant's {tenant} with it", fc.role, fc.setting)
    } else if without > 0 {
        format!("`{}` reads {without} rows of `{table}` with no tenant set: not fail-closed", fc.role)
    } else {
        format!(
            "`{}` with {} = {} sees {with} rows, {foreign} of other tenants (expected {tenant})",
            fc.role, fc.setting, fc.value
        )
    };
    result.actual(actual).verdict(ok, message)
}
