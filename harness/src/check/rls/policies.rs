//! An `rls` check's policies: one the scenario expects ([`expected_policy`], its expressions
//! compared as the server prints them), and the baseline's ([`baseline_policies`]).

use std::time::Instant;

use super::{ExpectedPolicy, Found, KIND};
use crate::baseline::{Baseline, PolicyExpressions, PolicyInfo, capture};
use crate::check::CheckContext;
use crate::check::CheckResult;
use crate::pg::{QualifiedName, describe_sql_error, fold_ident, quote_ident_if_needed, quote_literal};

/// A policy in one line, as the reports show it.
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
pub(super) fn policy_differences(have: &PolicyInfo, want: &PolicyInfo) -> Vec<String> {
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

/// Why the expressions a scenario wrote could not be printed by the server.
#[derive(Debug, thiserror::Error)]
pub(super) enum PrintError {
    /// The database refused the policy made with them, or the reading of it.
    #[error("the database refused them")]
    Sql {
        #[from]
        source: sqlx::Error,
    },
    /// The backup's event triggers would fire on the policy made to print them.
    #[error(
        "the backup has event triggers, which this target cannot turn off for pgdrill's session (PostgreSQL before 17, or a role that is not a superuser), so the scenario's expressions cannot be printed safely (hint: compare the policies with a baseline instead)"
    )]
    EventTriggers,
}

impl PrintError {
    /// Why, as the check says it: the database's answer as [`describe_sql_error`] tells it.
    fn said(&self) -> String {
        match self {
            PrintError::Sql { source } => describe_sql_error(source),
            PrintError::EventTriggers => self.to_string(),
        }
    }
}

/// The expressions a scenario wrote, as the server prints them: a policy made with them on
/// the table, in a transaction that is rolled back, read back from `pg_policies`.
async fn printed_expressions(
    ctx: &CheckContext<'_>,
    table: &QualifiedName,
    using: Option<&str>,
    with_check: Option<&str>,
) -> Result<PolicyExpressions, PrintError> {
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
            return Err(PrintError::EventTriggers);
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

/// What the scenario expects of one policy, its names as the server stores them (unquoted ones
/// fold to lower case).
struct Wanted<'a> {
    name: String,
    command: String,
    /// Sorted; empty: any role.
    roles: Vec<String>,
    want: &'a ExpectedPolicy,
}

impl<'a> Wanted<'a> {
    fn of(want: &'a ExpectedPolicy) -> Self {
        let command = want.command.clone().unwrap_or_else(|| "ALL".into()).to_ascii_uppercase();
        let mut roles: Vec<String> = want.roles.iter().map(|r| fold_ident(r)).collect();
        roles.sort();
        Wanted { name: fold_ident(&want.name), command, roles, want }
    }

    /// What the result expects, in one line.
    fn expected(&self) -> String {
        let Wanted { name, command, roles, want } = self;
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
        expected
    }

    /// How `found` differs in command, roles and kind.
    fn differences(&self, found: &PolicyInfo) -> Vec<String> {
        let mut problems = Vec::new();
        if found.command != self.command {
            problems.push(format!("is FOR {} (expected FOR {})", found.command, self.command));
        }
        if !self.roles.is_empty() && found.roles != self.roles {
            problems.push(format!("is TO {} (expected TO {})", found.roles.join(", "), self.roles.join(", ")));
        }
        if self.want.permissive.is_some_and(|p| p != found.permissive) {
            let kind = |p: bool| if p { "permissive" } else { "restrictive" };
            problems.push(format!("is {} (expected {})", kind(found.permissive), kind(!found.permissive)));
        }
        problems
    }

    /// How `found`'s expressions differ from the scenario's, both as the server prints them.
    async fn expression_differences(
        &self,
        ctx: &CheckContext<'_>,
        table: &QualifiedName,
        found: &PolicyInfo,
    ) -> Result<Vec<String>, PrintError> {
        let want = self.want;
        let printed = printed_expressions(ctx, table, want.using.as_deref(), want.with_check.as_deref()).await?;
        let have = found.expressions.clone().unwrap_or(PolicyExpressions { using: None, with_check: None });
        let mut problems = Vec::new();
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
        Ok(problems)
    }
}

/// A policy the scenario expects on `table`, against the restored ones (`actual`).
pub(super) async fn expected_policy(
    ctx: &CheckContext<'_>,
    table: &QualifiedName,
    want: &ExpectedPolicy,
    actual: &[PolicyInfo],
    started: Instant,
) -> CheckResult {
    let wanted = Wanted::of(want);
    let name = &wanted.name;
    let result = CheckResult::build(KIND, format!("{table} policy {name}"), started).expected(wanted.expected()).evidence(
        format!(
            "SELECT policyname, cmd, roles, permissive, qual, with_check FROM pg_policies WHERE schemaname = {} AND tablename = {}",
            quote_literal(table.schema_or_public()),
            quote_literal(&table.name)
        ),
    );
    let qualified = QualifiedName::new(table.schema_or_public(), &table.name);
    let Some(found) = actual.iter().find(|p| p.table == qualified && &p.name == name) else {
        let on_table: Vec<&str> = actual.iter().filter(|p| p.table == qualified).map(|p| p.name.as_str()).collect();
        let hint = match on_table.iter().find(|p| p.to_lowercase() == name.to_lowercase()) {
            Some(meant) => format!(" (hint: did you mean `{}`?)", quote_ident_if_needed(meant)),
            None => String::new(),
        };
        return result
            .actual("missing")
            .found(Found::PolicyMissing, format!("policy `{name}` on `{table}` does not exist{hint}"));
    };
    let mut problems = wanted.differences(found);
    if want.using.is_some() || want.with_check.is_some() {
        match wanted.expression_differences(ctx, table, found).await {
            Ok(more) => problems.extend(more),
            Err(err) => {
                return result.found(
                    Found::PolicyExpressionInvalid,
                    format!(
                        "the expected expressions of policy `{name}` do not make a policy on `{table}`: {}",
                        err.said()
                    ),
                );
            }
        }
    }
    let ok = problems.is_empty();
    result.actual(policy_text(found)).found(
        if ok { Found::PolicyInPlace } else { Found::PolicyDiffers },
        if ok {
            format!("policy `{name}` on `{table}` is in place")
        } else {
            format!("policy `{name}` on `{table}` {}", problems.join(", "))
        },
    )
}

/// The baseline's policies against the restored ones: one result.
pub(super) fn baseline_policies(baseline: &Baseline, actual: &[PolicyInfo], started: Instant) -> CheckResult {
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
            .found(Found::AsInBaseline, format!("all {} policies are in place", baseline.policies.len()))
    } else {
        let text = problems.join("; ");
        result.actual(text.clone()).found(Found::BaselineDiffers, text)
    }
}

/// What differs from the baseline's policies: a policy missing or changed, and a permissive
/// policy the baseline did not have on one of its tables (permissive policies add up: one more
/// lets more rows through).
pub(super) fn baseline_policy_problems(baseline: &Baseline, actual: &[PolicyInfo]) -> Vec<String> {
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
    let known = |table: &QualifiedName| {
        baseline.policies.iter().any(|p| &p.table == table) || baseline.row_security.iter().any(|r| &r.table == table)
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
            table: crate::pg::QualifiedName::new("public", "grants"),
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
