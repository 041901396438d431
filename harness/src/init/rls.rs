//! The `rls` blocks `init` writes. The tables with row security, grouped by whether it is
//! forced and by the tenant their policies read: the setting they compare with a column
//! (`expr`), never a setting compared with a constant only (a flag such as a bypass switch).
//! Each block lists every policy of its tables, exactly (`exact_policies`: a policy added later
//! fails), and proposes `fail_closed` as the role that reads them: the role other than the
//! owner that may SELECT them and that the tenant's policy binds, one that logs in first.

use std::collections::BTreeMap;

use super::block::{Block, inline, list, string};
use super::expr;
use super::inventory::Inventory;
use crate::baseline::PolicyInfo;
use crate::pg::{QualifiedName, quote_ident_if_needed};

fn policy_line(policy: &PolicyInfo) -> String {
    let mut pairs = vec![
        ("table".to_owned(), string(&policy.table.to_string())),
        ("name".to_owned(), string(&quote_ident_if_needed(&policy.name))),
        ("command".to_owned(), string(&policy.command)),
        ("roles".to_owned(), list(&policy.roles.iter().map(|r| quote_ident_if_needed(r)).collect::<Vec<_>>())),
        ("permissive".to_owned(), policy.permissive.to_string()),
    ];
    if let Some(expressions) = &policy.expressions {
        if let Some(using) = &expressions.using {
            pairs.push(("using".into(), string(using)));
        }
        if let Some(with_check) = &expressions.with_check {
            pairs.push(("with_check".into(), string(with_check)));
        }
    }
    format!("  {},", inline(&pairs))
}

/// What the policies of one table say of its tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TenantRead {
    /// Every (setting, column) its read policies compare, the first taken.
    pub pairs: Vec<(String, String)>,
    /// Settings read only as flags.
    pub flags: Vec<String>,
}

/// What the policies of a table that govern reads (`ALL`, `SELECT`) compare in `USING`.
pub(crate) fn tenant_read(policies: &[&PolicyInfo], functions: &BTreeMap<String, String>) -> TenantRead {
    let mut out = TenantRead::default();
    for policy in policies.iter().filter(|p| p.command == "ALL" || p.command == "SELECT") {
        let Some(using) = policy.expressions.as_ref().and_then(|e| e.using.as_deref()) else { continue };
        let reads = expr::reads(using, functions);
        for pair in reads.tenants {
            if !out.pairs.contains(&pair) {
                out.pairs.push(pair);
            }
        }
        for flag in reads.flags {
            if !out.flags.contains(&flag) {
                out.flags.push(flag);
            }
        }
    }
    out.flags.retain(|f| !out.pairs.iter().any(|(s, _)| s == f));
    out
}

/// The role that reads `table` as the application: of `readers` (name, may log in), those the
/// policies comparing `setting` bind first, then those that log in, then by name. With whether
/// it is a guess (another role ranks as high).
pub(crate) fn reader(
    readers: &[(String, bool)],
    policies: &[&PolicyInfo],
    setting: &str,
    functions: &BTreeMap<String, String>,
) -> Option<(String, bool)> {
    let binds = |role: &str| {
        policies.iter().any(|p| {
            let reads = p.expressions.as_ref().and_then(|e| e.using.as_deref()).map(|u| expr::reads(u, functions));
            reads.is_some_and(|r| r.tenants.iter().any(|(s, _)| s == setting))
                && (p.roles.iter().any(|r| r == role || r == "public"))
        })
    };
    let rank = |(role, login): &(String, bool)| (!binds(role), !*login);
    let best = readers.iter().min_by_key(|r| (rank(r), r.0.clone()))?;
    let tied = readers.iter().filter(|r| rank(r) == rank(best)).count() > 1;
    Some((best.0.clone(), tied))
}

/// One block's tables, with the tenant they share.
struct Group {
    forced: bool,
    tenant: Option<(String, String)>,
    tables: Vec<QualifiedName>,
}

/// Row security: a block per (forced or only enabled, tenant) with its tables' policies;
/// policies on tables without row security last.
pub(super) fn blocks(inventory: &Inventory) -> Vec<Block> {
    let on_table = |table: &QualifiedName| -> Vec<&PolicyInfo> {
        inventory.policies.iter().filter(|p| &p.table == table).collect()
    };
    let functions = &inventory.setting_functions;
    let mut groups: Vec<Group> = Vec::new();
    for forced in [true, false] {
        for row in inventory.row_security.iter().filter(|r| r.enabled && r.forced == forced) {
            let tenant = tenant_read(&on_table(&row.table), functions).pairs.into_iter().next();
            match groups.iter_mut().find(|g| g.forced == forced && g.tenant == tenant) {
                Some(group) => group.tables.push(row.table.clone()),
                None => groups.push(Group { forced, tenant, tables: vec![row.table.clone()] }),
            }
        }
    }
    let mut out: Vec<Block> = groups.iter().map(|g| block(g, inventory)).collect();
    let mut settings: Vec<&str> = groups.iter().filter_map(|g| g.tenant.as_ref().map(|(s, _)| s.as_str())).collect();
    settings.sort_unstable();
    settings.dedup();
    out.extend(settings.into_iter().map(no_default_tenant));
    let covered = |table: &QualifiedName| inventory.row_security.iter().any(|r| r.enabled && &r.table == table);
    let loose: Vec<&PolicyInfo> = inventory.policies.iter().filter(|p| !covered(&p.table)).collect();
    if !loose.is_empty() {
        let mut body = vec!["[[checks.rls]]".to_owned(), "exact_policies = true".to_owned(), "policies = [".to_owned()];
        body.extend(loose.iter().map(|p| policy_line(p)));
        body.push("]".into());
        out.push(Block::new(
            &[
                "Policies on tables whose row-level security is off in the backup (so they apply to",
                "nobody): they exist as written, and no other. If the application relies on them, the",
                "backup is the problem: `ALTER TABLE ... ENABLE ROW LEVEL SECURITY` at the source.",
            ],
            body,
        ));
    }
    out
}

/// No role or database starts its sessions with the tenant `setting` set: a session that set
/// no tenant reads nothing only if nothing sets one for it. It runs whether or not
/// `fail_closed` could be proven (where that is written commented out, this still holds the
/// line against a globals file that gives the application's role a default tenant).
fn no_default_tenant(setting: &str) -> Block {
    let query = format!(
        "SELECT COALESCE(r.rolname::pg_catalog.text, '(every role)'), \
         COALESCE(d.datname::pg_catalog.text, '(every database)') \
         FROM pg_catalog.pg_db_role_setting s \
         LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) s.setrole \
         LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.setdatabase, \
         pg_catalog.unnest(s.setconfig) AS c(setting) \
         WHERE pg_catalog.lower(pg_catalog.split_part(c.setting, '=', 1)) OPERATOR(pg_catalog.=) {} ORDER BY 1, 2",
        crate::pg::quote_literal(&setting.to_lowercase())
    );
    Block::new(
        &[
            &format!("No role or database sets the tenant `{setting}` by default (`ALTER ROLE ... SET`):"),
            "a session that set no tenant must read no tenant's rows, whatever `fail_closed` proved.",
        ],
        vec![
            "[[checks.sql]]".into(),
            format!("name = {}", string(&format!("no default for {setting}"))),
            format!("query = {}", string(&query)),
            "expect_rows = []".into(),
        ],
    )
}

/// One group's block: its tables' policies, exactly, and `fail_closed` proposed as the role
/// that reads them, when their policies compare a setting with a column.
fn block(group: &Group, inventory: &Inventory) -> Block {
    let functions = &inventory.setting_functions;
    let policies: Vec<&PolicyInfo> = inventory.policies.iter().filter(|p| group.tables.contains(&p.table)).collect();
    let (body, mut about) = listing(group, &policies);
    let read = tenant_read(&policies, functions);
    let Some((setting, column)) = &group.tenant else {
        about.push(format!(
            "No policy here compares a setting with a column{}: reads as the application role, fail-closed \
             without a tenant, are yours to add: fail_closed = {{ role = ..., setting = ..., column = ... }}",
            if read.flags.is_empty() {
                String::new()
            } else {
                format!(" (`{}` only a constant)", read.flags.join("`, `"))
            }
        ));
        return Block { about, body, ..Block::default() };
    };
    let chosen = readers_of(group, &policies, setting, inventory);
    let Some(role) = most_common(&chosen) else {
        about.push(format!(
            "The policies compare `{setting}` with `{column}`, and no role but the tables' owner may read \
             them: no fail-closed reads are proposed."
        ));
        return Block { about, body, ..Block::default() };
    };
    let mut pairs = vec![
        ("role".to_owned(), string(&quote_ident_if_needed(&role))),
        ("setting".to_owned(), string(setting)),
        ("column".to_owned(), string(&quote_ident_if_needed(column))),
    ];
    let others: Vec<(String, String)> = chosen
        .iter()
        .filter(|(_, (r, _))| *r != role)
        .map(|(t, (r, _))| (t.to_string(), string(&quote_ident_if_needed(r))))
        .collect();
    if !others.is_empty() {
        pairs.push(("roles".to_owned(), inline(&others)));
    }
    about.extend(fail_closed_about(group, &chosen, &role, setting, column, &read));
    Block { about, body, optional: vec![format!("fail_closed = {}", inline(&pairs))], ..Block::default() }
}

/// A group's TOML (its tables and their policies, exactly) and what it proves.
fn listing(group: &Group, policies: &[&PolicyInfo]) -> (Vec<String>, Vec<String>) {
    let tables: Vec<String> = group.tables.iter().map(ToString::to_string).collect();
    let mut body = vec!["[[checks.rls]]".to_owned(), format!("tables = {}", list(&tables))];
    if group.forced {
        body.push("force = true".into());
    }
    body.push("exact_policies = true".into());
    if !policies.is_empty() {
        body.push("policies = [".into());
        body.extend(policies.iter().map(|p| policy_line(p)));
        body.push("]".into());
    }
    let about = vec![format!(
        "Row-level security is enabled {} on these tables, with their policies, exactly: kind, roles, and \
         `USING` / `WITH CHECK` as the server prints them; a policy added to these tables fails.",
        if group.forced {
            "and forced (the tables' owner is subject to it too)"
        } else {
            "(not forced: the tables' owner bypasses it)"
        }
    )];
    (body, about)
}

/// The role that reads each table of the group as the application (see [`reader`]), with
/// whether it is a guess.
fn readers_of<'a>(
    group: &'a Group,
    policies: &[&PolicyInfo],
    setting: &str,
    inventory: &Inventory,
) -> BTreeMap<&'a QualifiedName, (String, bool)> {
    let mut chosen = BTreeMap::new();
    for table in &group.tables {
        let mine: Vec<&PolicyInfo> = policies.iter().copied().filter(|p| &p.table == table).collect();
        let readers = inventory.readers.get(&table.to_string()).map(Vec::as_slice).unwrap_or_default();
        if let Some(found) = reader(readers, &mine, setting, &inventory.setting_functions) {
            chosen.insert(table, found);
        }
    }
    chosen
}

/// The role most tables are read as (the first by name among as many): the default.
fn most_common(chosen: &BTreeMap<&QualifiedName, (String, bool)>) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (role, _) in chosen.values() {
        *counts.entry(role).or_default() += 1;
    }
    counts.iter().max_by_key(|(role, n)| (**n, std::cmp::Reverse(**role))).map(|(r, _)| (*r).to_owned())
}

/// What the proposed `fail_closed` proves, and what in it is a guess.
fn fail_closed_about(
    group: &Group,
    chosen: &BTreeMap<&QualifiedName, (String, bool)>,
    role: &str,
    setting: &str,
    column: &str,
    read: &TenantRead,
) -> Vec<String> {
    let mut about = vec![format!(
        "Reads as `{role}` are fail-closed: with `{setting}` unset it sees none of their rows, as one tenant \
         only that tenant's (the policies compare `{setting}` with the column `{column}`)."
    )];
    if !read.flags.is_empty() {
        about.push(format!(
            "`{}` is compared with a constant only: a flag that opens the policies, not the tenant, left unset.",
            read.flags.join("`, `")
        ));
    }
    let closed: Vec<String> =
        group.tables.iter().filter(|t| !chosen.contains_key(t)).map(ToString::to_string).collect();
    if !closed.is_empty() {
        about.push(format!("No role but the owner may read `{}`: closed by privilege.", closed.join("`, `")));
    }
    let also: Vec<String> = read.pairs.iter().skip(1).map(|(s, c)| format!("`{s}` with `{c}`")).collect();
    if !also.is_empty() {
        about.push(format!(
            "A guess: the policies also compare {}; check the setting and the column. Where such a setting \
             only hides rows beside the tenant's comparison, the reads take its value from a row of tenant A \
             or make one up; `settings = {{ ... }}` gives the application's.",
            also.join(", ")
        ));
    }
    if chosen.values().any(|(_, tied)| *tied) {
        about.push(format!("A guess: other roles may read these tables as well; `{role}` ranks first by name."));
    }
    about
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::PolicyExpressions;

    fn policy(name: &str, roles: &[&str], using: &str) -> PolicyInfo {
        PolicyInfo {
            table: QualifiedName::new("public", "docs"),
            name: name.into(),
            command: "ALL".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            permissive: true,
            expressions: Some(PolicyExpressions { using: Some(using.into()), with_check: None }),
        }
    }

    #[test]
    fn the_reader_is_the_role_the_tenants_policy_binds_never_the_bypass_flag_s() {
        let tenant =
            policy("tenant", &["app"], "(\"workspaceId\" = (current_setting('app.workspace_id'::text, true))::uuid)");
        let bypass = policy("bypass", &["public"], "(current_setting('app.bypass_rls'::text, true) = 'on'::text)");
        let none = BTreeMap::new();
        let read = tenant_read(&[&bypass, &tenant], &none);
        assert_eq!(read.pairs, [("app.workspace_id".to_owned(), "workspaceId".to_owned())]);
        assert_eq!(read.flags, ["app.bypass_rls"]);
        let readers = vec![("analyst".to_owned(), true), ("app".to_owned(), true), ("reporting".to_owned(), false)];
        assert_eq!(
            reader(&readers, &[&bypass, &tenant], "app.workspace_id", &none),
            Some(("app".to_owned(), false)),
            "the policy binding the tenant names it"
        );
        let open =
            policy("tenant", &["public"], "(\"workspaceId\" = (current_setting('app.workspace_id'::text))::uuid)");
        assert_eq!(
            reader(&readers, &[&open], "app.workspace_id", &none),
            Some(("analyst".to_owned(), true)),
            "a policy to PUBLIC binds them all: a login role, the first by name, a guess"
        );
        assert_eq!(reader(&[], &[&tenant], "app.workspace_id", &none), None);
    }
}
