//! The roles a restore's grants name, with what each holds (as a `roles` check writes it), and
//! the roles that read each table with row security (as `rls`'s `fail_closed` proposes one).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgPool;

use super::{NOT_OWNER, RoleFound, USER_SCHEMA};
use crate::check::roles;
use crate::pg::{QualifiedName, quote_ident_if_needed};

/// The roles the privileges of user tables, views, sequences and schemas name (not PUBLIC, the
/// bootstrap superuser or built-in roles), each with what it holds: every privilege on a table
/// of the schemas it may use or is granted tables in, however it holds it (directly, via PUBLIC,
/// via a membership), so that the roles check can say they are the exact set.
pub(super) async fn roles(pool: &PgPool) -> sqlx::Result<Vec<RoleFound>> {
    let grants_sql = format!(
        "SELECT r.rolname::text, n.nspname::text, c.relkind::text \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         CROSS JOIN LATERAL aclexplode(c.relacl) a JOIN pg_catalog.pg_roles r ON r.oid = a.grantee \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {USER_SCHEMA} AND r.oid <> 10 AND r.rolname NOT LIKE 'pg\\_%' \
         UNION ALL \
         SELECT r.rolname::text, n.nspname::text, NULL \
         FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a JOIN pg_catalog.pg_roles r ON r.oid = a.grantee \
         WHERE {USER_SCHEMA} AND r.oid <> 10 AND r.rolname NOT LIKE 'pg\\_%' ORDER BY 1, 2"
    );
    let grants: Vec<(String, String, Option<String>)> = sqlx::query_as(&grants_sql).fetch_all(pool).await?;
    // Each role, with the schemas it is granted tables in.
    let mut named: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (role, schema, kind) in grants {
        let schemas = named.entry(role).or_default();
        if kind.is_some_and(|k| k != "S") {
            schemas.insert(schema);
        }
    }
    let usage_sql = format!(
        "SELECT n.nspname::text FROM pg_catalog.pg_namespace n WHERE {USER_SCHEMA} AND has_schema_privilege($1, n.oid, 'USAGE') ORDER BY 1"
    );
    let unreached_sql = format!(
        "SELECT n.nspname::text FROM pg_catalog.pg_namespace n WHERE {USER_SCHEMA} \
         AND NOT has_schema_privilege($1, n.oid, 'USAGE') AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
         WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm') AND (pg_catalog.pg_has_role($1, c.relowner, 'MEMBER') \
         OR has_table_privilege($1, c.oid, 'SELECT') OR has_table_privilege($1, c.oid, 'INSERT') \
         OR has_table_privilege($1, c.oid, 'UPDATE') OR has_table_privilege($1, c.oid, 'DELETE'))) ORDER BY 1"
    );
    let mut out = Vec::new();
    for (role, granted_in) in named {
        let usage: Vec<String> = sqlx::query_scalar(&usage_sql).bind(&role).fetch_all(pool).await?;
        let (login, connect): (bool, bool) = sqlx::query_as(
            "SELECT rolcanlogin, has_database_privilege(rolname, current_database(), 'CONNECT') FROM pg_catalog.pg_roles WHERE rolname = $1",
        )
        .bind(&role)
        .fetch_one(pool)
        .await?;
        let schemas: Vec<String> =
            granted_in.into_iter().chain(usage.iter().cloned()).collect::<BTreeSet<_>>().into_iter().collect();
        let tables = written(&roles::held(pool, &role, &schemas).await?);
        let unreached: Vec<String> = sqlx::query_scalar(&unreached_sql).bind(&role).fetch_all(pool).await?;
        let unreached = unreached.into_iter().filter(|s| !schemas.contains(s)).collect();
        out.push(RoleFound { name: role, usage, tables, login, connect, unreached });
    }
    Ok(out)
}

/// The roles that may read each table with row security and that its policies bind.
pub(super) async fn readers(pool: &PgPool) -> sqlx::Result<BTreeMap<String, Vec<(String, bool)>>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, r.rolname::text, r.rolcanlogin \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_roles r ON r.oid IN (SELECT a.grantee FROM aclexplode(c.relacl) a \
              UNION SELECT unnest(p.polroles) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid) \
         WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND {USER_SCHEMA} AND {NOT_OWNER} AND NOT r.rolbypassrls \
           AND has_table_privilege(r.oid, c.oid, 'SELECT') ORDER BY 1, 2, 3"
    );
    let rows: Vec<(String, String, String, bool)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    let mut out: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for (schema, table, role, login) in rows {
        out.entry(QualifiedName::new(&schema, &table).to_string()).or_default().push((role, login));
    }
    Ok(out)
}

/// The privileges held, as a roles check's `tables` writes them: per table, its privileges in
/// PostgreSQL's order, then those held on columns only (`UPDATE (body, title)`).
fn written(held: &[roles::Held]) -> BTreeMap<String, Vec<String>> {
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut by_table: BTreeMap<String, Vec<&roles::Held>> = BTreeMap::new();
    for h in held {
        by_table.entry(h.table.to_string()).or_default().push(h);
    }
    for (table, held) in by_table {
        let mut list = Vec::new();
        for privilege in roles::PRIVILEGES {
            if held.iter().any(|h| h.privilege == privilege && h.column.is_none()) {
                list.push(privilege.to_owned());
            }
        }
        for privilege in roles::PRIVILEGES {
            let columns: Vec<String> = held
                .iter()
                .filter(|h| h.privilege == privilege)
                .filter_map(|h| h.column.as_deref().map(quote_ident_if_needed))
                .collect();
            if !columns.is_empty() {
                list.push(format!("{privilege} ({})", columns.join(", ")));
            }
        }
        tables.insert(table, list);
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::{roles, written};
    use crate::pg::QualifiedName;

    #[test]
    fn privileges_are_written_in_postgresqls_order_with_column_ones_last() {
        let held = |table: &str, privilege: &str, column: Option<&str>| roles::Held {
            table: QualifiedName::parse(table).unwrap(),
            privilege: privilege.into(),
            column: column.map(String::from),
            ways: vec!["via PUBLIC".into()],
        };
        let found = written(&[
            held("public.notes", "UPDATE", Some("Body")),
            held("public.notes", "INSERT", None),
            held("public.notes", "SELECT", None),
            held("public.notes", "UPDATE", Some("title")),
            held("public.notes", "REFERENCES", Some("id")),
            held("audit.events", "SELECT", None),
        ]);
        let shown: Vec<(String, String)> = found.into_iter().map(|(t, p)| (t, p.join(", "))).collect();
        assert_eq!(
            shown,
            [
                ("audit.events".to_owned(), "SELECT".to_owned()),
                ("public.notes".to_owned(), "SELECT, INSERT, UPDATE (\"Body\", title), REFERENCES (id)".to_owned()),
            ]
        );
    }
}
