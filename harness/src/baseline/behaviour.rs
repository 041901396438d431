//! What makes each table and sequence behave, read from the catalogs for a baseline and for the
//! `schemas` check alike: columns (type, NOT NULL, default, generated, identity, collation),
//! constraints (definition, validated, enforced, deferrable), triggers (when they fire and a
//! digest of the function they run), rules, and each sequence's type, bounds, step and
//! cycling. Partitions are left out, as the inventory leaves them out (a partition's columns,
//! constraints and triggers are its parent's). Definitions are printed in pgdrill's pinned
//! session (`search_path = pg_catalog, pg_temp`), so every user object in them carries its
//! schema, in a source's capture and a restore's alike.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;

use super::facts::{ColumnFacts, ConstraintFacts, RuleFacts, SequenceFacts, TableFacts, TriggerFacts};
use super::scope::{NOT_EXTENSION_MEMBER, USER_SCHEMA};
use crate::pg::QualifiedName;

/// SQL: the relation `c` is a table the inventory lists (a table or a partitioned table, not a
/// partition) in a user schema, not an extension's.
fn listed_table() -> String {
    format!("c.relkind IN ('r', 'p') AND NOT c.relispartition AND {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER}")
}

/// `(schema, name)`: where a fact belongs.
pub(crate) type Key = (String, String);

/// Every listed table's facts and every sequence's, by `(schema, name)`. A table with none of
/// a kind has an empty list; a table with no column at all is absent.
pub(crate) async fn read(pool: &PgPool) -> sqlx::Result<(BTreeMap<Key, TableFacts>, BTreeMap<Key, SequenceFacts>)> {
    let version = super::scope::server_version_num(pool).await?;
    let mut tables: BTreeMap<Key, TableFacts> = BTreeMap::new();
    for (key, column) in columns(pool).await? {
        tables.entry(key).or_default().columns.push(column);
    }
    for (key, constraint) in constraints(pool, version).await? {
        tables.entry(key).or_default().constraints.push(constraint);
    }
    for (key, trigger) in triggers(pool, version).await? {
        tables.entry(key).or_default().triggers.push(trigger);
    }
    for (key, rule) in rules(pool).await? {
        tables.entry(key).or_default().rules.push(rule);
    }
    Ok((tables, sequences(pool).await?))
}

async fn columns(pool: &PgPool) -> sqlx::Result<Vec<(Key, ColumnFacts)>> {
    // A NOT NULL constraint added NOT VALID (PostgreSQL 18) sets attnotnull without checking
    // the rows there: it counts as not NOT NULL.
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                a.attnotnull AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid \
                    AND k.contype = 'n' AND NOT k.convalidated AND a.attnum = ANY (k.conkey)), \
                pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text, a.attidentity::text, \
                CASE WHEN a.attcollation <> t.typcollation AND co.oid IS NOT NULL \
                     THEN pg_catalog.format('%I.%I', cn.nspname, co.collname) END \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation \
         LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND {} ORDER BY 1, 2, a.attnum",
        listed_table()
    );
    type Row = (String, String, String, String, bool, Option<String>, String, String, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(schema, table, name, data_type, not_null, expression, generated, identity, collation)| {
            let (default, generated) = match generated.as_str() {
                "s" => (None, expression.map(|e| format!("{e} (stored)"))),
                "v" => (None, expression.map(|e| format!("{e} (virtual)"))),
                _ => (expression, None),
            };
            let identity = match identity.as_str() {
                "a" => Some("always".to_owned()),
                "d" => Some("by default".to_owned()),
                _ => None,
            };
            ((schema, table), ColumnFacts { name, data_type, not_null, default, generated, identity, collation })
        })
        .collect())
}

/// The kind a `contype` names.
fn constraint_kind(contype: &str) -> String {
    match contype {
        "c" => "check",
        "f" => "foreign key",
        "p" => "primary key",
        "u" => "unique",
        "x" => "exclusion",
        "t" => "trigger",
        other => other,
    }
    .to_owned()
}

async fn constraints(pool: &PgPool, version: i32) -> sqlx::Result<Vec<(Key, ConstraintFacts)>> {
    // `conenforced` is PostgreSQL 18's; a foreign key is checked by triggers, which a backup
    // can disable (ALTER TABLE ... DISABLE TRIGGER ALL) while the constraint stays validated,
    // on the table or on one partition (whose triggers belong to the constraint's clone).
    let enforced = if version >= 180_000 { "k.conenforced" } else { "true" };
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, k.conname::text, k.contype::text, pg_catalog.pg_get_constraintdef(k.oid), \
                k.convalidated, {enforced} AND NOT EXISTS (WITH RECURSIVE family(oid) AS ( \
                    SELECT k.oid UNION ALL SELECT f.oid FROM pg_catalog.pg_constraint f JOIN family ON f.conparentid = family.oid) \
                    SELECT 1 FROM pg_catalog.pg_trigger t JOIN family ON t.tgconstraint = family.oid \
                    WHERE t.tgenabled NOT IN ('O', 'A')), \
                k.condeferrable, k.condeferred \
         FROM pg_catalog.pg_constraint k \
         JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE k.contype <> 'n' AND {} ORDER BY 1, 2, 3",
        listed_table()
    );
    type Row = (String, String, String, String, String, bool, bool, bool, bool);
    let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(schema, table, name, contype, definition, validated, enforced, deferrable, deferred)| {
            let kind = constraint_kind(&contype);
            ((schema, table), ConstraintFacts { name, kind, definition, validated, enforced, deferrable, deferred })
        })
        .collect())
}

/// The digest of what a function does: its language, its body (`prosrc`, and `probin` for C),
/// whether it runs as its owner and the settings it sets. The fields are separated by a byte
/// no text holds, so that no two functions share a digest by moving text between fields.
pub(crate) fn function_digest(
    language: &str,
    source: &str,
    binary: Option<&str>,
    security_definer: bool,
    config: &[String],
) -> String {
    let mut hasher = Sha256::new();
    for field in [language, source, binary.unwrap_or(""), if security_definer { "definer" } else { "invoker" }] {
        hasher.update(field.as_bytes());
        hasher.update([0u8]);
    }
    for setting in config {
        hasher.update(setting.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

/// SQL: `what` (over `clones`, `pc` the partition, `pn` its schema) of each partition (at any
/// depth) whose copy of trigger `t` fires otherwise than `t`, as an array in the partitions'
/// order.
fn partitions_otherwise(what: &str) -> String {
    format!(
        "ARRAY(WITH RECURSIVE clones(oid, enabled, relid) AS ( \
           SELECT q.oid, q.tgenabled, q.tgrelid FROM pg_catalog.pg_trigger q WHERE q.tgparentid = t.oid \
           UNION ALL SELECT q.oid, q.tgenabled, q.tgrelid FROM pg_catalog.pg_trigger q JOIN clones ON q.tgparentid = clones.oid) \
         SELECT {what} FROM clones \
         JOIN pg_catalog.pg_class pc ON pc.oid = clones.relid JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace \
         WHERE clones.enabled <> t.tgenabled ORDER BY pn.nspname, pc.relname)"
    )
}

async fn triggers(pool: &PgPool, version: i32) -> sqlx::Result<Vec<(Key, TriggerFacts)>> {
    // `tgparentid` (a partition's copy of its table's trigger) is PostgreSQL 13's.
    let partitions = if version >= 130_000 {
        ["pn.nspname::text", "pc.relname::text", "clones.enabled::text"].map(partitions_otherwise).join(", ")
    } else {
        "ARRAY[]::text[], ARRAY[]::text[], ARRAY[]::text[]".to_owned()
    };
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, t.tgname::text, t.tgenabled::text, pg_catalog.pg_get_triggerdef(t.oid), \
                l.lanname::text, p.prosrc, p.probin, p.prosecdef, COALESCE(p.proconfig, '{{}}')::text[], {partitions} \
         FROM pg_catalog.pg_trigger t \
         JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid \
         JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
         WHERE NOT t.tgisinternal AND {} ORDER BY 1, 2, 3",
        listed_table()
    );
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        bool,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                schema,
                table,
                name,
                enabled,
                definition,
                language,
                source,
                binary,
                definer,
                config,
                schemas,
                partitions,
                codes,
            )| {
                let function_sha256 = function_digest(&language, &source, binary.as_deref(), definer, &config);
                let partitions = schemas
                    .into_iter()
                    .zip(partitions)
                    .zip(codes)
                    .map(|((schema, partition), code)| (QualifiedName::new(schema, partition), code))
                    .collect();
                ((schema, table), TriggerFacts { name, enabled, definition, function_sha256, partitions })
            },
        )
        .collect())
}

async fn rules(pool: &PgPool) -> sqlx::Result<Vec<(Key, RuleFacts)>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, r.rulename::text, r.ev_enabled::text, pg_catalog.pg_get_ruledef(r.oid) \
         FROM pg_catalog.pg_rewrite r \
         JOIN pg_catalog.pg_class c ON c.oid = r.ev_class \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE r.rulename <> '_RETURN' AND {} ORDER BY 1, 2, 3",
        listed_table()
    );
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(schema, table, name, enabled, definition)| ((schema, table), RuleFacts { name, enabled, definition }))
        .collect())
}

async fn sequences(pool: &PgPool) -> sqlx::Result<BTreeMap<Key, SequenceFacts>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, pg_catalog.format_type(s.seqtypid, NULL), \
                s.seqmin, s.seqmax, s.seqincrement, s.seqcycle \
         FROM pg_catalog.pg_sequence s \
         JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER} ORDER BY 1, 2"
    );
    let rows: Vec<(String, String, String, i64, i64, i64, bool)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(schema, name, data_type, min, max, increment, cycle)| {
            ((schema, name), SequenceFacts { data_type, min, max, increment, cycle })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::function_digest;

    #[test]
    fn a_function_digest_changes_with_its_body_and_settings_and_not_by_moving_text_between_fields() {
        let body = function_digest("plpgsql", "BEGIN RAISE EXCEPTION 'no'; END", None, false, &[]);
        assert_eq!(body, function_digest("plpgsql", "BEGIN RAISE EXCEPTION 'no'; END", None, false, &[]));
        assert_ne!(body, function_digest("plpgsql", "BEGIN RETURN NEW; END", None, false, &[]));
        assert_ne!(body, function_digest("plpgsql", "BEGIN RAISE EXCEPTION 'no'; END", None, true, &[]));
        let path = ["search_path=public".to_owned()];
        assert_ne!(body, function_digest("plpgsql", "BEGIN RAISE EXCEPTION 'no'; END", None, false, &path));
        assert_ne!(
            function_digest("c", "ab", Some("c"), false, &[]),
            function_digest("c", "a", Some("bc"), false, &[])
        );
        assert_eq!(body.len(), 64);
    }
}
