//! `exact_policies`: the policies a scenario lists are all the policies of the tables it names
//! (in `policies` and `tables`); any other there fails, whole (name, kind, command, roles,
//! expressions), a permissive one above all: it adds the rows it lets through to what the
//! listed ones allow.

use std::time::Instant;

use super::{ExpectedPolicy, Found, KIND, Spec};
use crate::baseline::PolicyInfo;
use crate::check::CheckResult;
use crate::pg::{QualifiedName, fold_ident, quote_ident_if_needed, quote_literal};

/// One result per table `exact_policies` covers: `tables`, then those `policies` name, once.
pub(super) fn results(spec: &Spec, actual: &[PolicyInfo], started: Instant) -> Vec<CheckResult> {
    let mut tables: Vec<&QualifiedName> = Vec::new();
    for table in spec.tables.iter().chain(spec.policies.iter().map(|(t, _)| t)) {
        if !tables.iter().any(|o| same_table(o, table)) {
            tables.push(table);
        }
    }
    tables.into_iter().map(|t| only_listed(t, &spec.policies, actual, started)).collect()
}

/// `a` and `b` name the same table (an unqualified name is in `public`).
fn same_table(a: &QualifiedName, b: &QualifiedName) -> bool {
    a.schema_or_public() == b.schema_or_public() && a.name == b.name
}

/// The policies on `table` that `listed` does not name (names fold as PostgreSQL folds them).
pub(crate) fn unlisted_policies<'a>(
    table: &QualifiedName,
    listed: &[(QualifiedName, ExpectedPolicy)],
    actual: &'a [PolicyInfo],
) -> Vec<&'a PolicyInfo> {
    let qualified = QualifiedName::new(table.schema_or_public(), &table.name);
    let names: Vec<String> =
        listed.iter().filter(|(t, _)| same_table(t, table)).map(|(_, p)| fold_ident(&p.name)).collect();
    actual.iter().filter(|p| p.table == qualified && !names.contains(&p.name)).collect()
}

/// A policy the scenario does not list, whole: name, kind, command, roles, expressions.
fn unlisted_text(p: &PolicyInfo) -> String {
    let roles = if p.roles.is_empty() { "public".to_owned() } else { p.roles.join(", ") };
    let kind = if p.permissive { "permissive" } else { "restrictive" };
    let mut text = format!("{} ({kind}, FOR {} TO {roles}", quote_ident_if_needed(&p.name), p.command);
    if let Some(e) = &p.expressions {
        if let Some(using) = &e.using {
            text.push_str(&format!(", USING {using}"));
        }
        if let Some(check) = &e.with_check {
            text.push_str(&format!(", WITH CHECK {check}"));
        }
    }
    text.push(')');
    text
}

/// `exact_policies`: `table` has no policy but those listed.
fn only_listed(
    table: &QualifiedName,
    listed: &[(QualifiedName, ExpectedPolicy)],
    actual: &[PolicyInfo],
    started: Instant,
) -> CheckResult {
    let names: Vec<String> =
        listed.iter().filter(|(t, _)| same_table(t, table)).map(|(_, p)| fold_ident(&p.name)).collect();
    let result = CheckResult::build(KIND, format!("{table} no unlisted policy"), started)
        .expected(if names.is_empty() { "no policy".to_owned() } else { format!("only {}", names.join(", ")) })
        .evidence(format!(
            "SELECT policyname, permissive, cmd, roles, qual, with_check FROM pg_policies WHERE schemaname = {} AND tablename = {}",
            quote_literal(table.schema_or_public()),
            quote_literal(&table.name)
        ));
    let extra = unlisted_policies(table, listed, actual);
    if extra.is_empty() {
        return result
            .actual("none")
            .found(Found::NoUnlistedPolicy, format!("`{table}` has no policy the scenario does not list"));
    }
    let texts: Vec<String> = extra.iter().map(|p| unlisted_text(p)).collect();
    let why = if extra.iter().any(|p| p.permissive) {
        ": a permissive policy lets through every row it allows, whatever the others allow"
    } else {
        ""
    };
    result.actual(texts.join("; ")).found(
        Found::UnlistedPolicy,
        format!(
            "`{table}` has {} the scenario does not list: {}{why}",
            if extra.len() == 1 { "a policy".to_owned() } else { format!("{} policies", extra.len()) },
            texts.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::PolicyExpressions;

    fn have(name: &str, using: &str, permissive: bool) -> PolicyInfo {
        PolicyInfo {
            table: crate::pg::QualifiedName::new("public", "notes"),
            name: name.into(),
            command: "ALL".into(),
            roles: vec!["public".into()],
            permissive,
            expressions: Some(PolicyExpressions { using: Some(using.into()), with_check: None }),
        }
    }

    #[test]
    fn a_policy_the_scenario_does_not_list_fails_with_all_it_does() {
        let table = QualifiedName::parse("notes").unwrap();
        let listed = vec![(
            table.clone(),
            ExpectedPolicy {
                table: "notes".into(),
                name: "\"Tenant\"".into(),
                command: None,
                roles: vec![],
                permissive: None,
                using: None,
                with_check: None,
            },
        )];
        let tenant = have("Tenant", "(tenant_id = 1)", true);
        let all = [tenant.clone(), have("open", "true", true), have("narrow", "false", false)];
        let extra = unlisted_policies(&table, &listed, &all);
        assert_eq!(extra.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["open", "narrow"]);
        let result = only_listed(&table, &listed, &all, Instant::now());
        assert_eq!(result.code, "rls.unlisted-policy");
        assert!(
            result.message.contains("open (permissive, FOR ALL TO public, USING true); narrow (restrictive"),
            "{}",
            result.message
        );
        assert!(result.message.contains("a permissive policy lets through"), "{}", result.message);
        assert_eq!(only_listed(&table, &listed, &[tenant], Instant::now()).code, "rls.no-unlisted-policy");
        let other = QualifiedName::parse("public.other").unwrap();
        assert_eq!(
            only_listed(&other, &listed, &all, Instant::now()).code,
            "rls.no-unlisted-policy",
            "another table's"
        );
    }
}
