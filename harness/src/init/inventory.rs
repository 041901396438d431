//! What a restored database holds that a scenario can check, read from its catalogs: the facts
//! `pgdrill init` writes checks from. The baseline's capture reads most of them; what only a
//! scenario needs (default operator classes, grants, partition windows, journals by preset)
//! is read here.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgPool;
use sqlx::postgres::PgConnection;

use crate::baseline::{PolicyInfo, RowSecurity, capture};
use crate::check::{partitions, roles};
use crate::journal::Found;
use crate::pg::{QualifiedName, quote_ident_if_needed};

/// SQL: `n` (a pg_namespace alias) is a user schema.
const USER_SCHEMA: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

/// SQL: the relation `c` is not part of an extension.
const NOT_EXTENSION_MEMBER: &str = "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')";

/// The widest partition window the `partitions` check accepts, either way.
pub(crate) const WINDOW_LIMIT: u32 = 600;

/// Everything `init` writes checks from.
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    /// Installed extensions and their versions (plpgsql left out: every database has it).
    pub extensions: Vec<(String, String)>,
    /// Migration journals a preset reads, with their newest version (per Django app, per
    /// sqitch project).
    pub journals: Vec<Found>,
    /// Tables named like a migration journal that no preset reads.
    pub other_journals: Vec<String>,
    /// Exact rows per table (read only where there is no dump to compare with).
    pub row_counts: BTreeMap<String, i64>,
    pub indexes: Vec<IndexFound>,
    pub row_security: Vec<RowSecurity>,
    pub policies: Vec<PolicyInfo>,
    pub roles: Vec<RoleFound>,
    pub partitions: Vec<PartitionWindow>,
    /// User schemas (not those an extension makes).
    pub schemas: Vec<String>,
    pub graphs: Vec<GraphFound>,
    /// For each table with row security, the roles that may read it and are subject to its
    /// policies (not its owner nor a member of it, no superuser, no BYPASSRLS), each with
    /// whether it may log in; only roles its grants or its policies name.
    pub readers: BTreeMap<String, Vec<(String, bool)>>,
    /// Functions whose body reads one custom setting: `schema.name` (as the server prints a
    /// call) to the setting.
    pub setting_functions: BTreeMap<String, String>,
    /// Tables a role may append to and not change: it holds INSERT, and UPDATE, DELETE and
    /// TRUNCATE are each not granted to it or refused by a trigger.
    pub append_only: Vec<AppendOnlyFound>,
    /// Each table with a trigger of its own (not a partition's clone of its parent's), with
    /// every non-internal trigger it has.
    pub triggers: BTreeMap<String, Vec<String>>,
    /// What PUBLIC holds on user relations: (relation, privilege), as [`PUBLIC_GRANTS_SQL`]
    /// reads them.
    pub public_grants: Vec<(String, String)>,
}

/// The privileges PUBLIC (every role, present and future) holds on the relations of user
/// schemas, not an extension's: the query init's `sql` check runs, and what it expects is what
/// this read on the backup's restore.
pub(crate) const PUBLIC_GRANTS_SQL: &str = "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), a.privilege_type::pg_catalog.text \
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace, \
LATERAL pg_catalog.aclexplode(c.relacl) a \
WHERE a.grantee OPERATOR(pg_catalog.=) 0 AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,S,f}'::\"char\"[]) \
AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_%' \
AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e') ORDER BY 1, 2";

/// A table a role may only append to, as an `append_only` check writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AppendOnlyFound {
    pub table: String,
    pub role: String,
    /// The enabled BEFORE triggers whose function raises on UPDATE, DELETE or TRUNCATE.
    pub triggers: Vec<String>,
    /// Which of UPDATE, DELETE, TRUNCATE the role holds (a trigger refuses them).
    pub granted: Vec<String>,
    /// Its columns that an INSERT may write (not generated).
    pub columns: Vec<ColumnFound>,
}

/// A column an INSERT must fill, with what a value of its type is made from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ColumnFound {
    pub name: String,
    /// `format_type`: `uuid`, `character varying(40)`.
    pub sql_type: String,
    /// `pg_type.typcategory` (of a domain's base type).
    pub category: crate::pg::TypeCategory,
    /// An enum's first label.
    pub first_label: Option<String>,
    /// An INSERT must give it a value: NOT NULL, without a default.
    pub required: bool,
    /// A foreign key of its own: (the table it references, the first value that holds, as
    /// text), when that table has one.
    pub references: Option<(String, String)>,
}

/// An index, as an `indexes` expectation writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexFound {
    /// `schema.index`, quoted where needed.
    pub name: String,
    pub table: String,
    pub method: String,
    /// Its first operator class that is not its type's default.
    pub opclass: Option<String>,
    pub unique: bool,
}

/// A role some object's privileges name, with what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleFound {
    pub name: String,
    /// Schemas it has USAGE on (its own grants, PUBLIC's or a role's it is a member of).
    pub usage: Vec<String>,
    /// Every table it holds privileges on in the schemas it may use or is granted tables in,
    /// with those privileges in PostgreSQL's order (those held on columns only as `UPDATE
    /// (body)`).
    pub tables: BTreeMap<String, Vec<String>>,
    pub login: bool,
    /// CONNECT on the database.
    pub connect: bool,
    /// The user schemas it reaches nothing in: no USAGE, no table it may read or write or
    /// owns. `exact` covers only the schemas it uses; a grant in one of these would escape it.
    pub unreached: Vec<String>,
}

/// A partitioned table and the months its partitions cover around this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionWindow {
    pub table: String,
    /// Why the `partitions` check cannot read it (a key it does not support), if so.
    pub unsupported: Option<String>,
    /// (months back, months ahead) covered without a gap, `None` when this month has no partition.
    pub window: Option<(u32, u32)>,
    /// This month, `YYYY-MM`, as the target's clock says.
    pub month: String,
    pub default_partition: bool,
}

/// An Apache AGE graph and its label counts (`None`, with why, when Cypher did not answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GraphFound {
    pub name: String,
    pub counts: Result<LabelCounts, String>,
}

/// Reads the inventory of the database `pool` is connected to. `count_rows`: count every table
/// (a physical backup, which has no dump to compare with).
pub(crate) async fn read(pool: &PgPool, count_rows: bool) -> sqlx::Result<Inventory> {
    let mut inventory = Inventory {
        extensions: sqlx::query_as(
            "SELECT extname::text, extversion FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
        )
        .fetch_all(pool)
        .await?,
        indexes: indexes(pool).await?,
        row_security: capture::row_security(pool).await?,
        policies: capture::policies(pool).await?,
        roles: roles(pool).await?,
        partitions: partitions(pool).await?,
        schemas: capture::schemas(pool).await?.into_keys().collect(),
        readers: readers(pool).await?,
        setting_functions: setting_functions(pool).await?,
        append_only: append_only(pool).await?,
        triggers: triggers(pool).await?,
        public_grants: sqlx::query_as(PUBLIC_GRANTS_SQL).fetch_all(pool).await?,
        ..Inventory::default()
    };
    (inventory.journals, inventory.other_journals) = journals(pool).await?;
    if count_rows {
        inventory.row_counts = capture::row_counts(pool).await?;
    }
    if capture::has_age(pool).await? {
        let mut conn = pool.acquire().await?.detach();
        inventory.graphs = graphs(&mut conn).await?;
        sqlx::Connection::close(conn).await.ok();
    }
    Ok(inventory)
}

/// The triggers of each user table (not an extension's) that has one of its own.
async fn triggers(pool: &PgPool) -> sqlx::Result<BTreeMap<String, Vec<String>>> {
    let sql = "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), t.tgname::text \
         FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT t.tgisinternal AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg\\_%' \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass \
                           AND d.objid = c.oid AND d.deptype = 'e') \
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger o WHERE o.tgrelid = c.oid AND NOT o.tgisinternal \
                       AND o.tgparentid = 0) \
         ORDER BY 1, 2";
    let rows: Vec<(String, String)> = sqlx::query_as(sql).fetch_all(pool).await?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, trigger) in rows {
        out.entry(table).or_default().push(trigger);
    }
    Ok(out)
}

/// Every valid index of a user table that is not a partition (a partition's indexes are its
/// parent's, made on it when it is attached).
async fn indexes(pool: &PgPool) -> sqlx::Result<Vec<IndexFound>> {
    let sql = format!(
        "SELECT n.nspname::text, i.relname::text, c.relname::text, am.amname::text, x.indisunique, \
                (SELECT o.opcname::text FROM unnest(x.indclass::oid[]) WITH ORDINALITY AS u(oid, ord) \
                 JOIN pg_catalog.pg_opclass o ON o.oid = u.oid WHERE NOT o.opcdefault ORDER BY u.ord LIMIT 1) \
         FROM pg_catalog.pg_index x \
         JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
         JOIN pg_catalog.pg_class c ON c.oid = x.indrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_am am ON am.oid = i.relam \
         WHERE {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER} AND x.indisvalid AND NOT c.relispartition ORDER BY 1, 2"
    );
    type Row = (String, String, String, String, bool, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(schema, index, table, method, unique, opclass)| IndexFound {
            name: QualifiedName::new(&schema, &index).to_string(),
            table: QualifiedName::new(&schema, &table).to_string(),
            method,
            opclass,
            unique,
        })
        .collect())
}

/// The roles the privileges of user tables, views, sequences and schemas name (not PUBLIC, the
/// bootstrap superuser or built-in roles), each with what it holds: every privilege on a table
/// of the schemas it may use or is granted tables in, however it holds it (directly, via PUBLIC,
/// via a membership), so that the roles check can say they are the exact set.
async fn roles(pool: &PgPool) -> sqlx::Result<Vec<RoleFound>> {
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

/// SQL: the role `r` is not the table `c`'s owner nor a member of it (both bypass its row
/// security unless it is forced), nor a superuser, nor a built-in role.
const NOT_OWNER: &str = "r.oid <> c.relowner AND NOT pg_catalog.pg_has_role(r.oid, c.relowner, 'USAGE') AND NOT r.rolsuper AND r.rolname NOT LIKE 'pg\\_%'";

/// The roles that may read each table with row security and that its policies bind.
async fn readers(pool: &PgPool) -> sqlx::Result<BTreeMap<String, Vec<(String, bool)>>> {
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

/// Functions without arguments whose body reads one custom setting.
async fn setting_functions(pool: &PgPool) -> sqlx::Result<BTreeMap<String, String>> {
    let sql = format!(
        "SELECT n.nspname::text, p.proname::text, p.prosrc FROM pg_catalog.pg_proc p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         WHERE {USER_SCHEMA} AND p.prokind = 'f' AND p.pronargs = 0 AND p.prosrc LIKE '%current\\_setting%' ORDER BY 1, 2"
    );
    let rows: Vec<(String, String, String)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(schema, name, body)| Some((format!("{schema}.{name}"), super::expr::function_setting(&body)?)))
        .collect())
}

/// `pg_trigger.tgtype` bits.
const BEFORE: i16 = 2;
const REFUSED: [(i16, &str); 3] = [(16, "UPDATE"), (8, "DELETE"), (32, "TRUNCATE")];

/// The tables each role may append to and not change.
async fn append_only(pool: &PgPool) -> sqlx::Result<Vec<AppendOnlyFound>> {
    let trigger_sql = format!(
        "SELECT n.nspname::text, c.relname::text, t.tgname::text, t.tgtype, p.prosrc, l.lanname::text \
         FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid \
         JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
         WHERE NOT t.tgisinternal AND t.tgenabled IN ('O', 'A') AND NOT c.relispartition AND {USER_SCHEMA} ORDER BY 1, 2, 3"
    );
    let rows: Vec<(String, String, String, i16, String, String)> = sqlx::query_as(&trigger_sql).fetch_all(pool).await?;
    // Per table: the refusing triggers, and which operations they refuse.
    let mut refusing: BTreeMap<String, (Vec<String>, BTreeSet<&str>)> = BTreeMap::new();
    for (schema, table, trigger, kind, body, language) in rows {
        let refuses: Vec<&str> = REFUSED.iter().filter(|(bit, _)| kind & bit != 0).map(|(_, op)| *op).collect();
        if kind & BEFORE == 0 || refuses.is_empty() || language != "plpgsql" || !super::expr::raises(&body) {
            continue;
        }
        let entry = refusing.entry(QualifiedName::new(&schema, &table).to_string()).or_default();
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
        let table = QualifiedName::new(&schema, &table).to_string();
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

/// Every partitioned table at the top of its tree, with the months its partitions cover.
async fn partitions(pool: &PgPool) -> sqlx::Result<Vec<PartitionWindow>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'p' AND NOT c.relispartition AND {USER_SCHEMA} ORDER BY 1, 2"
    );
    let tables: Vec<(String, String)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    let mut out = Vec::new();
    for (schema, table) in tables {
        let spec = partitions::Spec {
            table: QualifiedName::new(&schema, &table),
            months_back: WINDOW_LIMIT,
            months_ahead: WINDOW_LIMIT,
            default_partition: false,
        };
        let key: (Option<String>, Option<String>, Option<i32>, Option<String>) =
            sqlx::query_as(&spec.key_sql()).fetch_one(pool).await?;
        let mut found = PartitionWindow {
            table: spec.table.to_string(),
            unsupported: None,
            window: None,
            month: String::new(),
            default_partition: false,
        };
        if let Some((_, why)) = partitions::key_problem(key.0.as_deref(), key.1.as_deref(), key.2, key.3.as_deref()) {
            found.unsupported = Some(why);
            out.push(found);
            continue;
        }
        let months: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(&spec.sql()).fetch_all(pool).await?;
        let now = WINDOW_LIMIT as usize;
        found.month = months.get(now).map(|m| m.0.clone()).unwrap_or_default();
        found.default_partition = months.first().is_some_and(|m| m.2.is_some());
        found.window = covered(&months.iter().map(|m| m.1.is_some()).collect::<Vec<_>>(), now);
        out.push(found);
    }
    Ok(out)
}

/// How many months before and after month `now` are covered without a gap, `None` when `now`
/// itself is not.
pub(crate) fn covered(months: &[bool], now: usize) -> Option<(u32, u32)> {
    if !months.get(now).copied().unwrap_or(false) {
        return None;
    }
    let back = months[..now].iter().rev().take_while(|c| **c).count();
    let ahead = months[now + 1..].iter().take_while(|c| **c).count();
    Some((back as u32, ahead as u32))
}

/// The journals a preset reads, with their newest version; and other tables named like one.
async fn journals(pool: &PgPool) -> sqlx::Result<(Vec<Found>, Vec<String>)> {
    let (found, tables) = crate::journal::detect(pool).await?;
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND c.relname ILIKE '%migration%' AND {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER} ORDER BY 1, 2"
    );
    let others: Vec<String> = sqlx::query_as::<_, (String, String)>(&sql)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(s, t)| QualifiedName::new(&s, &t))
        .filter(|t| !tables.contains(t))
        .map(|t| t.to_string())
        .collect();
    Ok((found, others))
}

/// Every graph with its label counts, counted with Cypher; a graph Cypher does not answer
/// (apache/age#2503 after a logical restore on AGE 1.8) says why.
async fn graphs(conn: &mut PgConnection) -> sqlx::Result<Vec<GraphFound>> {
    capture::prepare_age(conn).await?;
    let mut out = Vec::new();
    for (graph, (vertex_labels, edge_labels)) in capture::graph_labels(conn).await? {
        let counts = label_counts(conn, &graph, &vertex_labels, &edge_labels)
            .await
            .map_err(|e| crate::pg::describe_sql_error(&e));
        out.push(GraphFound { name: graph, counts });
    }
    Ok(out)
}

type LabelCounts = (BTreeMap<String, i64>, BTreeMap<String, i64>);

async fn label_counts(
    conn: &mut PgConnection,
    graph: &str,
    vertex_labels: &[String],
    edge_labels: &[String],
) -> sqlx::Result<LabelCounts> {
    let mut vertices = BTreeMap::new();
    for label in vertex_labels {
        let cypher = format!("MATCH (v:{}) RETURN count(v)", capture::cypher_label(label));
        vertices.insert(label.clone(), capture::cypher_count(conn, graph, &cypher).await?);
    }
    let mut edges = BTreeMap::new();
    for label in edge_labels {
        let cypher = format!("MATCH ()-[e:{}]->() RETURN count(e)", capture::cypher_label(label));
        edges.insert(label.clone(), capture::cypher_count(conn, graph, &cypher).await?);
    }
    Ok((vertices, edges))
}

/// The databases of a recovered cluster a scenario could drill (not `postgres` nor the
/// templates), largest first.
pub(crate) async fn databases(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT datname::text FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate AND datname <> 'postgres' \
         ORDER BY pg_database_size(oid) DESC, 1",
    )
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::{covered, roles, written};
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

    #[test]
    fn the_window_is_the_gapless_run_around_this_month() {
        let months = [false, true, true, true, true, false, true];
        assert_eq!(covered(&months, 3), Some((2, 1)));
        assert_eq!(covered(&months, 0), None, "no partition for this month: no window holds");
        assert_eq!(covered(&[true, true, true], 1), Some((1, 1)));
        assert_eq!(covered(&[true], 0), Some((0, 0)));
    }
}
