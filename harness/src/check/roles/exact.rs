//! `exact = true`: the listed table privileges are all the role holds in the schemas the check
//! names (those of `usage` and of the tables listed). A privilege beyond them fails, named with
//! how the role holds it: granted directly, via PUBLIC, via a role it is a member of, as an
//! owner, as a superuser, or through pg_read_all_data / pg_write_all_data. On a listed table that
//! is a privilege not listed; on any other table, view, materialized view or foreign table there,
//! any privilege at all (a GRANT added to another table is drift too). Column privileges count:
//! `UPDATE (note)` held where the list gives no UPDATE on the table nor on that column fails.
//! A privilege held only through a membership the scenario accepts (`accept = [{ member_of =
//! "pg_read_all_data", ... }]`) is the acceptance's, not more. A missing privilege is the
//! floor's to fail. Sequences are not tables: their USAGE, SELECT and UPDATE are not read.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{Found, Grant, Spec, listed};
use crate::check::{CheckContext, CheckResult, bind_evidence};
use crate::pg::{QualifiedName, describe_sql_error, quote_ident_if_needed};

/// Every privilege `$1` holds on the tables of the schemas `$2`, itself or through a role it is
/// a member of: `(schema, table, privilege, column or NULL, how)`. A column's privilege is listed
/// only where the table's is not held.
const HELD_SQL: &str = "\
WITH m AS (SELECT r.oid FROM pg_roles r WHERE pg_has_role($1, r.oid, 'MEMBER')), \
me AS (SELECT r.oid, r.rolsuper FROM pg_roles r WHERE r.rolname = $1), \
t AS (SELECT c.oid, n.nspname, c.relname, c.relowner, coalesce(c.relacl, acldefault('r', c.relowner)) AS acl \
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = ANY($2)), \
p AS (SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p \
  UNION ALL SELECT 'MAINTAIN' WHERE current_setting('server_version_num')::int >= 170000), \
held AS ( \
  SELECT t.nspname, t.relname, t.relowner, t.acl, p.p, NULL::name AS col FROM t CROSS JOIN p \
   WHERE EXISTS (SELECT 1 FROM m WHERE has_table_privilege(m.oid, t.oid, p.p)) \
  UNION ALL \
  SELECT t.nspname, t.relname, t.relowner, a.attacl, p.p, a.attname FROM t \
   JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL \
   CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p \
   WHERE NOT EXISTS (SELECT 1 FROM m WHERE has_table_privilege(m.oid, t.oid, p.p)) \
     AND EXISTS (SELECT 1 FROM m WHERE has_column_privilege(m.oid, t.oid, a.attnum, p.p))) \
SELECT h.nspname::text, h.relname::text, h.p, h.col::text, \
  CASE WHEN (SELECT rolsuper FROM me) THEN ARRAY['as a superuser'] ELSE ARRAY(SELECT w FROM ( \
    SELECT 1 AS o, CASE WHEN h.relowner = (SELECT oid FROM me) THEN 'as its owner' \
      ELSE 'as its owner ' || pg_get_userbyid(h.relowner)::text || ', a role it is a member of' END AS w \
     WHERE h.relowner IN (SELECT oid FROM m) \
    UNION ALL \
    SELECT 2, CASE WHEN g.grantee = 0 THEN 'via PUBLIC' WHEN g.grantee = (SELECT oid FROM me) THEN 'granted directly' \
      ELSE 'via ' || pg_get_userbyid(g.grantee)::text END \
      FROM aclexplode(h.acl) g \
     WHERE g.privilege_type = h.p AND g.grantee <> h.relowner AND (g.grantee = 0 OR g.grantee IN (SELECT oid FROM m)) \
    UNION ALL \
    SELECT 3, 'via ' || r.rolname::text FROM pg_roles r WHERE r.oid IN (SELECT oid FROM m) \
       AND ((r.rolname = 'pg_read_all_data' AND h.p = 'SELECT') OR (r.rolname = 'pg_write_all_data' AND h.p IN ('INSERT', 'UPDATE', 'DELETE'))) \
  ) ways ORDER BY o, w) END \
FROM held h ORDER BY 1, 2, 3, 4";

/// One privilege held: on a table, or on a column of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    pub table: QualifiedName,
    pub privilege: String,
    pub column: Option<String>,
    /// How the role holds it (`granted directly`, `via PUBLIC`...).
    pub ways: Vec<String>,
}

/// The privileges in `held` that `listed` does not give, and that are not held only through a
/// membership in one of the `accepted` roles, one entry per table, privilege and way of holding
/// it (a column privilege's columns together): `UPDATE (body) on public.notes (via writers)`.
pub(crate) fn beyond(listed: &[(QualifiedName, Vec<Grant>)], accepted: &[String], held: &[Held]) -> Vec<String> {
    let mut out: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for h in held {
        let through_accepted = |way: &String| accepted.iter().any(|role| *way == format!("via {role}"));
        if !h.ways.is_empty() && h.ways.iter().all(through_accepted) {
            continue;
        }
        let grants = listed.iter().find(|(t, _)| *t == h.table).map(|(_, g)| g.as_slice()).unwrap_or_default();
        let allowed = grants.iter().any(|g| {
            g.privilege == h.privilege
                && (g.columns.is_empty() || h.column.as_ref().is_some_and(|c| g.columns.contains(c)))
        });
        if allowed {
            continue;
        }
        let how = if h.ways.is_empty() { "how: not found in the grants".to_owned() } else { h.ways.join("; ") };
        let columns = out.entry((h.table.to_string(), h.privilege.clone(), how)).or_default();
        if let Some(column) = &h.column {
            columns.push(quote_ident_if_needed(column));
        }
    }
    out.into_iter()
        .map(|((table, privilege, how), columns)| {
            if columns.is_empty() {
                format!("{privilege} on {table} ({how})")
            } else {
                format!("{privilege} ({}) on {table} ({how})", columns.join(", "))
            }
        })
        .collect()
}

/// Every privilege `role` holds on the tables of `schemas`, itself or through a role it is a
/// member of, with how (see [`HELD_SQL`]).
pub(crate) async fn held(pool: &sqlx::PgPool, role: &str, schemas: &[String]) -> sqlx::Result<Vec<Held>> {
    type Row = (String, String, String, Option<String>, Vec<String>);
    let rows: Vec<Row> = sqlx::query_as(HELD_SQL).bind(role).bind(schemas).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(schema, table, privilege, column, ways)| Held {
            table: QualifiedName::new(schema, table),
            privilege,
            column,
            ways,
        })
        .collect())
}

impl Spec {
    /// The schemas `exact` covers: those of `usage` and of the listed tables.
    fn exact_schemas(&self) -> Vec<String> {
        let mut schemas: Vec<String> = self.usage.clone();
        for (table, _) in &self.tables {
            schemas.push(table.schema_or_public().to_owned());
        }
        schemas.sort();
        schemas.dedup();
        schemas
    }

    pub(super) async fn exact(&self, ctx: &CheckContext<'_>) -> Option<CheckResult> {
        if !self.exact {
            return None;
        }
        let started = Instant::now();
        let schemas = self.exact_schemas();
        let shown: Vec<String> = schemas.iter().map(|s| quote_ident_if_needed(s)).collect();
        let result = self
            .result("exact privileges", started)
            .expected(format!("no table privilege beyond those listed in {}", shown.join(", ")))
            .evidence(bind_evidence(HELD_SQL, &[&self.role, &format!("{{{}}}", schemas.join(","))]));
        let held = match held(ctx.pool, &self.role, &schemas).await {
            Ok(held) => held,
            Err(err) => return Some(result.found(Found::CouldNotRead, describe_sql_error(&err))),
        };
        let accepted: Vec<String> = self.accept.memberships.iter().map(|(role, _)| role.clone()).collect();
        let extra = beyond(&self.tables, &accepted, &held);
        Some(if extra.is_empty() {
            result.actual("nothing beyond").found(
                Found::NothingBeyond,
                format!("`{}` holds no table privilege the scenario does not list", self.role),
            )
        } else {
            let list = listed(&extra);
            result
                .actual(format!("beyond: {list}"))
                .found(Found::BeyondListed, format!("`{}` holds more than the scenario lists: {list}", self.role))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(table: &str, privilege: &str, column: Option<&str>, ways: &[&str]) -> Held {
        Held {
            table: QualifiedName::parse(table).unwrap(),
            privilege: privilege.into(),
            column: column.map(String::from),
            ways: ways.iter().map(|w| (*w).to_owned()).collect(),
        }
    }

    fn grant(privilege: &str, columns: &[&str]) -> Grant {
        Grant { privilege: privilege.into(), columns: columns.iter().map(|c| (*c).to_owned()).collect() }
    }

    #[test]
    fn what_is_listed_passes_and_anything_more_is_named_with_how_it_is_held() {
        let listed = vec![
            (QualifiedName::new("public", "audit_events"), vec![grant("SELECT", &[]), grant("INSERT", &[])]),
            (QualifiedName::new("public", "notes"), vec![grant("SELECT", &[]), grant("UPDATE", &["body"])]),
        ];
        let found = vec![
            held("public.audit_events", "INSERT", None, &["granted directly"]),
            held("public.audit_events", "SELECT", None, &["granted directly", "via PUBLIC"]),
            held("public.audit_events", "UPDATE", None, &["granted directly"]),
            held("public.notes", "SELECT", None, &["via readers"]),
            held("public.notes", "UPDATE", Some("body"), &["via writers"]),
            held("public.notes", "UPDATE", Some("Title"), &["via writers"]),
            held("public.notes", "UPDATE", Some("id"), &["via writers"]),
            held("public.extra", "SELECT", None, &["via PUBLIC"]),
            held("public.odd", "TRIGGER", None, &[]),
        ];
        assert_eq!(
            beyond(&listed, &[], &found),
            [
                "UPDATE on public.audit_events (granted directly)",
                "SELECT on public.extra (via PUBLIC)",
                "UPDATE (\"Title\", id) on public.notes (via writers)",
                "TRIGGER on public.odd (how: not found in the grants)",
            ]
        );
        assert!(beyond(&listed, &[], &found[..2]).is_empty());
    }

    #[test]
    fn a_table_privilege_held_where_only_columns_are_listed_is_more() {
        let listed = vec![(QualifiedName::new("public", "notes"), vec![grant("UPDATE", &["body"])])];
        let found = vec![held("public.notes", "UPDATE", None, &["granted directly"])];
        assert_eq!(beyond(&listed, &[], &found), ["UPDATE on public.notes (granted directly)"]);
    }

    #[test]
    fn what_only_an_accepted_membership_gives_is_the_acceptances() {
        let found = vec![
            held("public.a", "SELECT", None, &["via pg_read_all_data"]),
            held("public.b", "SELECT", None, &["via pg_read_all_data", "via PUBLIC"]),
        ];
        let accepted = ["pg_read_all_data".to_owned()];
        assert_eq!(beyond(&[], &accepted, &found), ["SELECT on public.b (via pg_read_all_data; via PUBLIC)"]);
    }
}
