//! The tables a role may append to and not change: it holds INSERT, and UPDATE, DELETE and
//! TRUNCATE are each not granted to it or refused by a BEFORE trigger whose function raises;
//! with the columns an INSERT must fill, and a row a foreign key of theirs can take.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgPool;

use super::{AppendOnlyFound, ColumnFound, NOT_EXTENSION_MEMBER, NOT_OWNER, USER_SCHEMA};
use crate::pg::QualifiedName;

/// `pg_trigger.tgtype` bits.
const BEFORE: i16 = 2;
const REFUSED: [(i16, &str); 3] = [(16, "UPDATE"), (8, "DELETE"), (32, "TRUNCATE")];

/// The tables each role may append to and not change.
pub(super) async fn append_only(pool: &PgPool) -> sqlx::Result<Vec<AppendOnlyFound>> {
    let trigger_sql = format!(
        "SELECT n.nspname::text, c.relname::text, t.tgname::text, t.tgtype, p.prosrc, l.lanname::text \
         FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid \
         JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
         WHERE NOT t.tgisinternal AND t.tgenabled IN ('O', 'A') AND NOT c.relispartition AND {USER_SCHEMA} ORDER BY 1, 2, 3"
    );
    let rows: Vec<(String, String, String, i16, String, String)> = sqlx::query_as(&trigger_sql).fetch_all(pool).await?;
    // Per table: the refusing triggers, and which operations they refuse.
    let mut refusing: BTreeMap<QualifiedName, (Vec<String>, BTreeSet<&str>)> = BTreeMap::new();
    for (schema, table, trigger, kind, body, language) in rows {
        let refuses: Vec<&str> = REFUSED.iter().filter(|(bit, _)| kind & bit != 0).map(|(_, op)| *op).collect();
        if kind & BEFORE == 0 || refuses.is_empty() || language != "plpgsql" || !crate::init::expr::raises(&body) {
            continue;
        }
        let entry = refusing.entry(QualifiedName::new(schema, table)).or_default();
        entry.0.push(trigger);
        entry.1.extend(refuses);
    }
    let writers_sql = format!(
        "SELECT n.nspname::text, c.relname::text, r.rolname::text, c.oid::bigint, \
                has_table_privilege(r.oid, c.oid, 'UPDATE'), has_table_privilege(r.oid, c.oid, 'DELETE'), \
                has_table_privilege(r.oid, c.oid, 'TRUNCATE') \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_roles r ON r.oid IN (SELECT a.grantee FROM aclexplode(c.relacl) a WHERE a.privilege_type = 'INSERT') \
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER} AND {NOT_OWNER} \
         ORDER BY 1, 2, 3"
    );
    type Writer = (String, String, String, i64, bool, bool, bool);
    let writers: Vec<Writer> = sqlx::query_as(&writers_sql).fetch_all(pool).await?;
    let mut out = Vec::new();
    for (schema, table, role, oid, update, delete, truncate) in writers {
        let table = QualifiedName::new(schema, table);
        let (triggers, refused) = refusing.get(&table).cloned().unwrap_or_default();
        let granted: Vec<String> = [("UPDATE", update), ("DELETE", delete), ("TRUNCATE", truncate)]
            .into_iter()
            .filter(|(_, held)| *held)
            .map(|(op, _)| op.to_owned())
            .collect();
        if granted.iter().any(|op| !refused.contains(op.as_str())) {
            continue;
        }
        let columns = insert_columns(pool, oid).await?;
        out.push(AppendOnlyFound { table, role, triggers, granted, columns });
    }
    Ok(out)
}

/// The columns of the table `oid` an INSERT may write.
async fn insert_columns(pool: &PgPool, oid: i64) -> sqlx::Result<Vec<ColumnFound>> {
    let rows: Vec<(String, String, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                COALESCE(b.typcategory, t.typcategory)::text, \
                (SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = COALESCE(b.oid, t.oid) ORDER BY e.enumsortorder LIMIT 1), \
                a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' \
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_catalog.pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype \
         WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
    )
    .bind(oid)
    .fetch_all(pool)
    .await?;
    let mut columns: Vec<ColumnFound> = rows
        .into_iter()
        .map(|(name, sql_type, category, first_label, required)| ColumnFound {
            name,
            sql_type,
            category: crate::pg::TypeCategory::of_code(&category),
            first_label,
            required,
            references: None,
        })
        .collect();
    // A made-up value breaks a foreign key: the first the referenced table holds is taken.
    let keys: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT a.attname::text, n.nspname::text, r.relname::text, fa.attname::text FROM pg_catalog.pg_constraint k \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] \
         JOIN pg_catalog.pg_class r ON r.oid = k.confrelid JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace \
         JOIN pg_catalog.pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = k.confkey[1] \
         WHERE k.conrelid = $1::oid AND k.contype = 'f' AND cardinality(k.conkey) = 1 ORDER BY k.conname",
    )
    .bind(oid)
    .fetch_all(pool)
    .await?;
    for (column, schema, table, referenced) in keys {
        let Some(found) = columns.iter_mut().find(|c| c.name == column && c.references.is_none()) else { continue };
        let table = QualifiedName::new(&schema, &table);
        let first = format!(
            "SELECT {c}::text FROM {} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1",
            table.sql(),
            c = crate::pg::quote_ident(&referenced)
        );
        if let Some(value) = sqlx::query_scalar::<_, String>(&first).fetch_optional(pool).await? {
            found.references = Some((table.to_string(), value));
        }
    }
    Ok(columns)
}
