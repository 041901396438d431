//! Code that can only narrow what the rest lets through: a setting read there is no door, so
//! its uses are not keys to try ([`super::keys`]).
//!
//! - A SELECT policy, where an UPDATE or DELETE reads the rows it changes, is ANDed with the
//!   command's own policies (and an UPDATE or DELETE that reads no row is not judged by it).
//!   A restrictive policy is not taken as narrowing: where it is what isolates the tenants, a
//!   setting that loosens it opens their rows.
//! - Within one policy, a conjunct of its top-level AND beside the comparison that reads the
//!   tenant setting can only hide rows that comparison lets through. Fail-closed reads prove
//!   that comparison in the role's session (no tenant, tenant B, tenant A seeing its own row)
//!   with the conjunct true on the probe rows, which hold the value the session sets; any
//!   other value of the setting hides more, never less. So a conjunct narrows only in a form
//!   whose truth the probe rows make sure of: a column (cast or not) equal to `current_setting`
//!   of a setting that is not the tenant's (cast or not), or an OR with such a side.
//!
//! What narrows is still read for everything else it does (a `set_config`, a write, a built-in
//! off the allow-list): only its uses of settings are not judged as keys.

use std::sync::LazyLock;

use regex::Regex;

/// A column, cast or not, equal to a setting, cast or not, in either order (as the server
/// deparses it, lower case): `((mid)::text = current_setting('app.mid'::text, true))`.
static COMPARISON: LazyLock<Regex> = LazyLock::new(|| {
    let column = r#"\(*\s*"?[a-z_][a-z0-9_]*"?\s*\)?(?:\s*::\s*[a-z_][a-z0-9_ ]*)?"#;
    let setting = r"\(*\s*current_setting\s*\(\s*'[^']+'(?:::text)?\s*(?:,\s*(?:true|false)\s*)?\)\s*\)?(?:\s*::\s*[a-z_][a-z0-9_ ]*)?";
    Regex::new(&format!(r"^\(*\s*(?:{column}\s*=\s*{setting}|{setting}\s*=\s*{column})\s*\)*$"))
        .expect("a valid pattern")
});

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
            conjuncts.iter().map(|c| if !reads_tenant(c) && true_on_probe_rows(c) { "true" } else { c }).collect();
        lines.push(kept.join(" and "));
    }
    lines.join("\n")
}

/// The conjuncts of `expression`'s top-level AND (one, where it is not an AND), with the
/// parentheses that enclose the whole taken off.
fn conjuncts(expression: &str) -> Vec<&str> {
    split(expression, " and ")
}

/// Whether `conjunct` is true on the probe rows by their values: a column equal to a setting
/// ([`COMPARISON`]), or an OR of which one side is (`visibility = 'shared' OR user_id =
/// current_setting('app.user_id')`).
fn true_on_probe_rows(conjunct: &str) -> bool {
    COMPARISON.is_match(conjunct) || split(conjunct, " or ").iter().any(|d| COMPARISON.is_match(d))
}

/// The parts of `expression` joined by `word` (` and `, ` or `) at its top level, with the
/// parentheses that enclose the whole taken off.
fn split<'a>(expression: &'a str, word: &str) -> Vec<&'a str> {
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
            b' ' if !quoted && depth == 0 && expression[i..].starts_with(word) => {
                out.push(expression[from..i].trim());
                i += word.len();
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
            // A call could read the tenant, or anything; a wrapper may make the conjunct false on
            // the probe rows, so that it proves nothing of the tenant's comparison.
            "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) AND ((mid)::text = lower(current_setting('app.mid'::text, true))))",
            "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) AND (mid = app.current_mid(current_setting('app.mid'::text, true))))",
            "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) AND (mid IN ( SELECT m.mid FROM m WHERE (m.key = current_setting('app.mid'::text, true)))))",
            // The other setting read beside the tenant in the same conjunct.
            "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) OR ((mid)::text = current_setting('app.mid'::text, true)))",
            // No tenant read at all.
            "(((mid)::text = current_setting('app.mid'::text, true)) AND (owner = current_setting('app.user'::text, true)))",
        ] {
            assert!(beside_tenant(policy, TENANT).contains("app.mid"), "{policy}");
        }
        // qs-pro's folders: shared rows, or the user's own.
        let folders = "(((tenant_id)::text = current_setting('app.tenant_id'::text, true)) AND ((mid)::text = current_setting('app.mid'::text, true)) AND (((visibility)::text = 'shared'::text) OR ((user_id)::text = current_setting('app.user_id'::text, true))))";
        let narrowed = beside_tenant(folders, TENANT);
        assert!(!narrowed.contains("app.user_id") && !narrowed.contains("app.mid"), "{narrowed}");
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
