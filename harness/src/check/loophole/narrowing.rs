//! Code that can only narrow what the rest lets through: a setting read there is no door, so
//! its uses are not keys to try ([`super::keys`]). Row security combines policies so that some
//! of them can only take rows away:
//!
//! - a restrictive policy is ANDed with the permissive ones;
//! - a SELECT policy, where an UPDATE or DELETE reads the rows it changes, is ANDed with the
//!   command's own policies (and an UPDATE or DELETE that reads no row is not judged by it).
//!
//! And within one policy, a conjunct of its top-level AND beside the comparison that reads the
//! tenant setting can only hide rows that comparison lets through: fail-closed reads prove that
//! comparison in the role's session (no tenant, tenant B, tenant A seeing its own row), with the
//! other conjuncts holding for the probe rows; any other value of a setting read only there
//! hides more, never less. A conjunct is taken as narrowing only when it reads no tenant and
//! calls nothing but `current_setting` and the wrappers that keep it a value (`nullif`,
//! `coalesce`, `lower`, ...): a call could read the tenant, or do anything else.
//!
//! What narrows is still read for everything else it does (a `set_config`, a write, a built-in
//! off the allow-list): only its uses of settings are not judged as keys.

use std::collections::BTreeSet;

/// Calls a narrowing conjunct may hold: the setting and what keeps it a value, and the keywords
/// before a parenthesis a call's pattern also finds.
const VALUE_CALLS: [&str; 14] = [
    "current_setting",
    "nullif",
    "coalesce",
    "lower",
    "upper",
    "btrim",
    "trim",
    "and",
    "or",
    "not",
    "in",
    "any",
    "all",
    "array",
];

/// `text` (a policy's USING and WITH CHECK expressions, a line each, as the server deparses them)
/// with each conjunct of a line's top-level AND that narrows beside `tenant`'s comparison (see
/// the module) replaced by `true`; in lower case.
pub(crate) fn beside_tenant(text: &str, tenant: &str) -> String {
    let tenant_call = format!("current_setting('{}'", tenant.to_lowercase().replace('\'', "''"));
    let mut lines = Vec::new();
    for line in text.to_lowercase().lines() {
        let conjuncts = conjuncts(line);
        let reads_tenant = |c: &str| c.contains(&tenant_call);
        if conjuncts.len() < 2 || !conjuncts.iter().any(|c| reads_tenant(c)) {
            lines.push(line.to_owned());
            continue;
        }
        let kept: Vec<&str> =
            conjuncts.iter().map(|c| if !reads_tenant(c) && only_values(c) { "true" } else { c }).collect();
        lines.push(kept.join(" and "));
    }
    lines.join("\n")
}

/// Whether `conjunct` calls nothing but [`VALUE_CALLS`] and holds no subquery.
fn only_values(conjunct: &str) -> bool {
    let code = super::facts::code(conjunct);
    let called: BTreeSet<String> = super::allowed::called_names(&code);
    let mut words = code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    !words.any(|w| w == "select") && called.iter().all(|name| VALUE_CALLS.contains(&name.as_str()))
}

/// The conjuncts of `expression`'s top-level AND (one, where it is not an AND), with the
/// parentheses that enclose the whole taken off.
fn conjuncts(expression: &str) -> Vec<&str> {
    let mut expression = expression.trim();
    while let Some(inner) = expression.strip_prefix('(').and_then(|e| e.strip_suffix(')')) {
        if depth_ends(inner).is_none() {
            break;
        }
        expression = inner.trim();
    }
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut from) = (0i32, false, 0);
    let bytes = expression.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            b' ' if !quoted && depth == 0 && expression[i..].starts_with(" and ") => {
                out.push(expression[from..i].trim());
                i += " and ".len();
                from = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(expression[from..].trim());
    out
}

/// Whether the parentheses of `text` balance without ever closing below its start (`Some`), as
/// the inside of parentheses that enclose a whole expression must.
fn depth_ends(text: &str) -> Option<()> {
    let (mut depth, mut quoted) = (0i32, false);
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    (depth == 0).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "app.tenant_id";

    #[test]
    fn a_conjunct_beside_the_tenant_comparison_that_reads_only_settings_narrows() {
        // qs-pro's shell_query_runs, as the server deparses it.
        let policy = "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) AND ((mid)::text = current_setting('app.mid'::text, true)) AND ((user_id)::text = current_setting('app.user_id'::text, true)))";
        let text = format!("{policy}\n{policy}");
        let narrowed = beside_tenant(&text, TENANT);
        assert!(!narrowed.contains("app.mid") && !narrowed.contains("app.user_id"), "{narrowed}");
        assert_eq!(narrowed.lines().count(), 2);
        assert!(narrowed.lines().all(|l| l.contains("current_setting('app.tenant_id'")), "{narrowed}");
    }

    #[test]
    fn an_or_a_call_a_subquery_or_a_lone_comparison_does_not() {
        for policy in [
            // OR at the top: the other side opens on its own.
            "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) OR (current_setting('app.mid'::text, true) = 'all'::text))",
            // A call could read the tenant, or anything.
            "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) AND (mid = app.current_mid(current_setting('app.mid'::text, true))))",
            "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) AND (mid IN ( SELECT m.mid FROM m WHERE (m.key = current_setting('app.mid'::text, true)))))",
            // The other setting read beside the tenant in the same conjunct.
            "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) OR ((mid)::text = current_setting('app.mid'::text, true)))",
            // No tenant read at all.
            "(((mid)::text = current_setting('app.mid'::text, true)) AND (owner = current_setting('app.user'::text, true)))",
        ] {
            assert!(beside_tenant(policy, TENANT).contains("app.mid"), "{policy}");
        }
        let mixed = "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) AND ((mid)::text = current_setting('app.mid'::text, true)) AND (owner = app.me()))";
        let narrowed = beside_tenant(mixed, TENANT);
        assert!(!narrowed.contains("app.mid") && narrowed.contains("app.me()"), "{narrowed}");
    }

    #[test]
    fn enclosing_parentheses_come_off_only_when_they_enclose_the_whole() {
        assert_eq!(conjuncts("((a = 1) AND (b = 2))".to_lowercase().as_str()), ["(a = 1)", "(b = 2)"]);
        assert_eq!(conjuncts("(a = 1) or (b = 2)"), ["(a = 1) or (b = 2)"]);
        assert_eq!(conjuncts("(a = 'x and y') and (b)"), ["(a = 'x and y')", "(b)"]);
    }
}
