//! The `append_only` blocks `init` writes: a table a role may INSERT into, and whose UPDATE,
//! DELETE and TRUNCATE are each either not granted to it or refused by a trigger whose function
//! raises (`inventory`), as that role, with those triggers. The INSERT is made up from the
//! columns' types; under row security keyed on a setting, it sets one tenant.

use super::block::{Block, inline, list, string};
use super::inventory::{AppendOnlyFound, ColumnFound, Inventory};
use crate::baseline::PolicyInfo;
use crate::pg::{TypeCategory, quote_ident_if_needed, quote_literal};

/// A value of `column`'s type, as SQL; `None` when pgdrill cannot make one up.
pub(crate) fn value(column: &ColumnFound) -> Option<String> {
    let ty = &column.sql_type;
    let expr = match (ty.as_str(), column.category) {
        ("uuid", _) => return Some("gen_random_uuid()".into()),
        ("json" | "jsonb", _) => "'{}'".to_owned(),
        ("smallint", _) => "floor(random() * 30000)".to_owned(),
        (_, TypeCategory::Numeric) => "floor(random() * 1000000000)".to_owned(),
        (_, TypeCategory::String) => "substr(md5(random()::text), 1, 12)".to_owned(),
        (_, TypeCategory::Boolean) => return Some("false".into()),
        (_, TypeCategory::DateTime) => "now()".to_owned(),
        (_, TypeCategory::Timespan) => "'0'".to_owned(),
        (_, TypeCategory::Array) => "'{}'".to_owned(),
        (_, TypeCategory::Network) => "'127.0.0.1'".to_owned(),
        (_, TypeCategory::Enum) => return column.first_label.as_deref().map(quote_literal),
        _ => return None,
    };
    Some(format!("({expr})::{ty}"))
}

/// A tenant the setting can carry: the referenced table's first, else made up by type.
fn tenant_value(column: &ColumnFound) -> Option<String> {
    if let Some((_, value)) = &column.references {
        return Some(value.clone());
    }
    match (column.sql_type.as_str(), column.category) {
        ("uuid", _) => Some("00000000-0000-4000-8000-000000d1a11e".into()),
        (_, TypeCategory::Numeric) => Some("1".into()),
        (_, TypeCategory::String) => Some("acme".into()),
        _ => None,
    }
}

/// The (setting, column) pairs the table's policies on writes compare, if it has row security:
/// of every policy the writer's INSERT may pass, the first (the tenant) first.
fn write_keys(found: &AppendOnlyFound, inventory: &Inventory) -> Vec<(String, String)> {
    if !inventory.row_security.iter().any(|r| r.enabled && r.table == found.table) {
        return Vec::new();
    }
    let policies = inventory.policies.iter().filter(|p: &&PolicyInfo| {
        p.table == found.table
            && (p.command == "ALL" || p.command == "INSERT")
            && p.roles.iter().any(|r| *r == found.role || r == "public")
    });
    let mut keys: Vec<(String, String)> = Vec::new();
    for text in policies.filter_map(|p| {
        let e = p.expressions.as_ref()?;
        e.with_check.as_deref().or(e.using.as_deref())
    }) {
        for pair in super::expr::reads(text, &inventory.setting_functions).tenants {
            if !keys.iter().any(|(s, c)| *s == pair.0 || *c == pair.1) {
                keys.push(pair);
            }
        }
    }
    keys
}

/// A setting a table's row security compares with one of its columns, the column, and the value
/// the writer sets it to (and the row holds): the tenant, and any other (a business unit).
type Key<'a> = (String, &'a ColumnFound, String);

/// The INSERT the writer runs, each value made up by its column's type (the tenant's first, a
/// foreign key's the row it references); and the columns pgdrill cannot make a value of.
fn insert(found: &AppendOnlyFound, keys: &[Key<'_>]) -> (String, Vec<String>) {
    let mut names = Vec::new();
    let mut values = Vec::new();
    let mut unmade = Vec::new();
    for (_, col, value) in keys {
        names.push(quote_ident_if_needed(&col.name));
        values.push(quote_literal(value));
    }
    for column in found.columns.iter().filter(|c| c.required) {
        if keys.iter().any(|(_, col, _)| col.name == column.name) {
            continue;
        }
        let given = column.references.as_ref().map(|(_, v)| quote_literal(v));
        match given.or_else(|| value(column)) {
            Some(v) => {
                names.push(quote_ident_if_needed(&column.name));
                values.push(v);
            }
            None => unmade.push(format!("`{}` ({})", column.name, column.sql_type)),
        }
    }
    // `table` is written as SQL reads it: quoted where it needs to be.
    let table = &found.table;
    let insert = if names.is_empty() {
        format!("INSERT INTO {table} DEFAULT VALUES")
    } else {
        format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), values.join(", "))
    };
    (insert, unmade)
}

/// The block of a table `found` append-only for its role; written as a comment to complete
/// when pgdrill cannot make up its INSERT.
pub(super) fn block(found: &AppendOnlyFound, inventory: &Inventory) -> Block {
    let table = &found.table;
    let role = quote_ident_if_needed(&found.role);
    let keys: Vec<Key<'_>> = write_keys(found, inventory)
        .into_iter()
        .filter_map(|(setting, column)| {
            let col = found.columns.iter().find(|c| c.name == column)?;
            Some((setting, col, tenant_value(col)?))
        })
        .collect();
    let (insert, unmade) = insert(found, &keys);
    let refused = if found.granted.is_empty() {
        "by privilege".to_owned()
    } else if found.granted.len() == 3 {
        "by its triggers".to_owned()
    } else {
        format!("{} by its triggers, the rest by privilege", found.granted.join(" and "))
    };
    let mut about = vec![format!(
        "`{table}` is append-only for `{role}`, which may INSERT into it: UPDATE, DELETE and TRUNCATE are \
         refused, {refused} (proven as `{role}`, in a transaction rolled back){}. The INSERT is made up from the \
         columns' types: one your application runs is better.",
        if found.triggers.is_empty() { "" } else { "; its immutability triggers stay present and enabled" }
    )];
    let mut body = vec![
        "[[checks.append_only]]".to_owned(),
        format!("table = {}", string(&table.to_string())),
        format!("role = {}", string(&role)),
        format!("insert = {}", string(&insert)),
    ];
    if !found.triggers.is_empty() {
        body.push(format!("triggers = {}", list(&found.triggers)));
    }
    if let Some(((setting, col, _), others)) = keys.split_first() {
        let also: Vec<String> = others.iter().map(|(s, c, _)| format!("`{s}` with `{}`", c.name)).collect();
        about.push(format!(
            "Its row security reads the tenant from `{setting}`{}: the writer sets {}, and the row is that tenant's (`{}`){}.",
            if also.is_empty() { String::new() } else { format!(" and compares {}", also.join(", ")) },
            if also.is_empty() { "one" } else { "each" },
            col.name,
            if also.is_empty() { "" } else { " and holds their values" },
        ));
        let pairs: Vec<(String, String)> = keys.iter().map(|(s, _, v)| (s.clone(), string(v))).collect();
        body.push(format!("settings = {}", inline(&pairs)));
    }
    let kept: Vec<String> = found
        .columns
        .iter()
        .filter(|c| c.required || keys.iter().any(|(_, t, _)| t.name == c.name))
        .filter_map(|c| Some(format!("`{}` of `{}`", c.references.as_ref()?.1, c.references.as_ref()?.0)))
        .collect();
    if !kept.is_empty() {
        about.push(format!(
            "Its foreign keys take rows this backup holds ({}): should one go, name another.",
            kept.join(", ")
        ));
    }
    if !unmade.is_empty() {
        about.push(format!("pgdrill cannot make up a value of {}: write the INSERT:", unmade.join(", ")));
        about.extend(body);
        return Block { about, ..Block::default() };
    }
    Block { about, body, ..Block::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, sql_type: &str, category: &str) -> ColumnFound {
        ColumnFound {
            name: name.into(),
            sql_type: sql_type.into(),
            category: TypeCategory::of_code(category),
            required: true,
            ..Default::default()
        }
    }

    #[test]
    fn the_insert_fills_what_it_must_by_type_and_the_tenant_from_the_setting() {
        let found = AppendOnlyFound {
            table: crate::pg::QualifiedName::new("public", "AuditLog"),
            role: "app".into(),
            triggers: vec!["audit_immutable".into()],
            granted: vec![],
            columns: vec![
                column("workspaceId", "uuid", "U"),
                column("action", "character varying(40)", "S"),
                ColumnFound { required: false, ..column("note", "text", "S") },
            ],
        };
        let mut inventory = Inventory::default();
        let block = block(&found, &inventory);
        assert_eq!(
            block.body[3],
            format!(
                "insert = {}",
                string(
                    "INSERT INTO public.\"AuditLog\" (\"workspaceId\", action) VALUES (gen_random_uuid(), (substr(md5(random()::text), 1, 12))::character varying(40))"
                )
            )
        );
        inventory.row_security =
            vec![crate::baseline::RowSecurity { table: found.table.clone(), enabled: true, forced: true }];
        inventory.policies = vec![PolicyInfo {
            table: found.table.clone(),
            name: "tenant".into(),
            command: "ALL".into(),
            roles: vec!["app".into()],
            permissive: true,
            expressions: Some(crate::baseline::PolicyExpressions {
                using: Some("(\"workspaceId\" = (current_setting('app.workspace_id'::text))::uuid)".into()),
                with_check: None,
            }),
        }];
        let block = super::block(&found, &inventory);
        assert!(
            block.body[3].contains("VALUES ('00000000-0000-4000-8000-000000d1a11e', (substr(md5"),
            "{:?}",
            block.body
        );
        assert_eq!(block.body[5], "settings = { \"app.workspace_id\" = \"00000000-0000-4000-8000-000000d1a11e\" }");
        // Another setting a policy compares with a column (a business unit, beside the tenant):
        // the writer sets it too, and the row holds it.
        let mut with_unit = found.clone();
        with_unit.columns.push(column("mid", "text", "S"));
        inventory.policies.push(PolicyInfo {
            name: "unit".into(),
            expressions: Some(crate::baseline::PolicyExpressions {
                using: None,
                with_check: Some("((\"workspaceId\" = (current_setting('app.workspace_id'::text))::uuid) AND (mid = current_setting('app.mid'::text)))".into()),
            }),
            ..inventory.policies[0].clone()
        });
        let block = super::block(&with_unit, &inventory);
        assert!(
            block.body[3]
                .contains("(\"workspaceId\", mid, action) VALUES ('00000000-0000-4000-8000-000000d1a11e', 'acme', "),
            "{:?}",
            block.body
        );
        assert_eq!(
            block.body[5],
            "settings = { \"app.workspace_id\" = \"00000000-0000-4000-8000-000000d1a11e\", \"app.mid\" = \"acme\" }"
        );
        // A foreign key takes a row the backup holds, for the tenant too.
        let mut keyed = found.clone();
        keyed.columns[0].references = Some(("public.workspaces".into(), "5e7e0000-0000-4000-8000-000000000001".into()));
        let block = super::block(&keyed, &inventory);
        assert!(block.body[3].contains("VALUES ('5e7e0000-0000-4000-8000-000000000001', ("), "{:?}", block.body);
        assert!(block.about.iter().any(|a| a.contains("of `public.workspaces`")), "{:?}", block.about);
        let odd = AppendOnlyFound { columns: vec![column("shape", "geometry", "U")], ..found };
        assert!(super::block(&odd, &Inventory::default()).body.is_empty(), "written as a comment to complete");
    }
}
