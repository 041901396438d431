//! Probe rows: rows pgdrill adds to a table so that a check can prove something about it even
//! when it is empty (fail-closed `rls` reads a probe row per tenant in the role's own session;
//! `append_only` aims its UPDATE and DELETE at one when the role's own INSERT left none). They
//! are committed for the role's session to see and removed after ([`committed`]). A leaf: it
//! imports no check kind.
//!
//! A row is built column by column ([`plan`]), to be one the application could write:
//! - the tenant column takes the tenant's value; a value the scenario gives (`probe`, for every
//!   table of the check or for one table) comes next;
//! - generated columns and identity `GENERATED ALWAYS` columns are never written; a column with
//!   a default (or an identity `BY DEFAULT`) keeps it;
//! - with a row in the table, every other column is copied from it (its values already satisfy
//!   the table's constraints), but a unique one (in a unique index or an exclusion constraint),
//!   which gets a value made up with a random part, or NULL when it may be NULL;
//! - without one, a partitioned table's key takes the values of a leaf partition's bound
//!   ([`bounds`]), and each NOT NULL column a value made up from its type's catalog facts
//!   ([`types`], [`values`]): every base type PostgreSQL ships, arrays, enums, ranges,
//!   multiranges, domains, composites and pgvector's types;
//! - a required foreign key takes a key of the table it references; where that table holds no
//!   row (or, for the tenant column, no row of the tenant), pgdrill first makes one there the
//!   same way ([`committed`]'s parent rows).
//!
//! A column no value can be made for blocks the row; the message names every such column at
//! once, with the line to add to the scenario. No constraint is set aside: a CHECK of one
//! column is tried with the values it names, anything else that stops the row is named
//! ([`constraints`]) with the line to add. pgdrill's own statements run with `search_path =
//! pg_catalog, pg_temp`.

mod bounds;
pub(crate) mod committed;
pub(crate) mod compared;
mod constraints;
mod types;
mod values;

use std::collections::BTreeMap;

use serde::Deserialize;
use sqlx::PgConnection;

use crate::pg::{QualifiedName, fold_ident, quote_ident, quote_ident_if_needed, quote_literal};
pub(crate) use types::TypeFacts;
pub(crate) use values::tenant_literal;

/// Values for probe-row columns, as a scenario gives them: `{ status = "active" }` for every
/// table of the check, `{ "public.orders" = { status = "new" } }` for one table (its values
/// over the others).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(transparent)]
pub(crate) struct ProbeValues(pub BTreeMap<String, ProbeValue>);

/// A column's value, or a table's values.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(crate) enum ProbeValue {
    /// A column's value for every table: `status = "active"` (read as the column's type).
    Value(String),
    /// One table's column values: `"public.orders" = { status = "new" }`.
    Table(BTreeMap<String, String>),
}

/// A key of the probe's values that is not a table's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub(crate) struct NotATable {
    /// Why, as [`QualifiedName::parse`] says it (which names the key).
    source: crate::pg::NameError,
}

impl ProbeValues {
    /// The values read: each table's name read once, when the scenario is resolved.
    pub(crate) fn read(&self) -> Result<Probe, NotATable> {
        let mut probe = Probe::default();
        for (key, value) in &self.0 {
            match value {
                ProbeValue::Value(value) => probe.every.push((key.clone(), value.clone())),
                ProbeValue::Table(columns) => {
                    let table = QualifiedName::parse(key).map_err(|source| NotATable { source })?;
                    probe.tables.push((table, columns.clone()));
                }
            }
        }
        Ok(probe)
    }
}

/// [`ProbeValues`] read: the values for every table, and each table's own, by its name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Probe {
    every: Vec<(String, String)>,
    tables: Vec<(QualifiedName, BTreeMap<String, String>)>,
}

impl Probe {
    /// The tables it gives values for.
    pub(crate) fn tables(&self) -> impl Iterator<Item = &QualifiedName> {
        self.tables.iter().map(|(table, _)| table)
    }

    /// The values for `table`'s columns: every table's, then its own over them.
    pub(crate) fn for_table(&self, table: &QualifiedName) -> Given {
        let mut given = Given::default();
        let mut put = |column: &str, value: &str, own: bool| {
            let column = fold_ident(column);
            given.0.retain(|g| g.column != column);
            given.0.push(GivenValue { column, value: value.to_owned(), own });
        };
        for (column, value) in &self.every {
            put(column, value, false);
        }
        for (_, columns) in self.tables.iter().filter(|(t, _)| t == table) {
            for (column, value) in columns {
                put(column, value, true);
            }
        }
        given
    }
}

/// The values a scenario gives one table's probe rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Given(pub Vec<GivenValue>);

#[derive(Debug, Clone)]
pub(crate) struct GivenValue {
    /// The column, as the server names it.
    pub column: String,
    pub value: String,
    /// Given for this table by name (a column it lacks is an error), not for every table.
    pub own: bool,
}

/// A column of a table, as a probe row needs to know it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Column {
    pub name: String,
    /// `format_type`: `uuid`, `character varying(40)`, `public.zone_status`.
    pub sql_type: String,
    pub type_oid: i64,
    pub typmod: i32,
    /// NOT NULL, or of a NOT NULL domain.
    pub not_null: bool,
    /// It has a default or is an identity (BY DEFAULT).
    pub has_default: bool,
    /// Generated, or an identity GENERATED ALWAYS: never written.
    pub never_written: bool,
    /// In a unique index or an exclusion constraint: a copy would collide.
    pub unique: bool,
    /// A foreign key of this column alone: the table and column it references
    /// (`public.tenants`, `"id"`), where a value the application could write comes from.
    pub references: Option<(String, String)>,
}

const COLUMNS_SQL: &str = "SELECT a.attname::pg_catalog.text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
       a.atttypid::pg_catalog.int8, a.atttypmod, \
       a.attnotnull OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) a.atttypid AND t.typnotnull), \
       a.atthasdef OR a.attidentity OPERATOR(pg_catalog.=) 'd', \
       a.attgenerated OPERATOR(pg_catalog.<>) '' OR a.attidentity OPERATOR(pg_catalog.=) 'a', \
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) a.attrelid \
               AND (i.indisunique OR i.indisexclusion) AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])), \
       (SELECT c.confrelid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_constraint c \
         WHERE c.conrelid OPERATOR(pg_catalog.=) a.attrelid AND c.contype OPERATOR(pg_catalog.=) 'f' \
           AND c.conkey OPERATOR(pg_catalog.=) ARRAY[a.attnum]::pg_catalog.int2[] ORDER BY c.conname LIMIT 1), \
       (SELECT pg_catalog.quote_ident(fa.attname) FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_attribute fa \
            ON fa.attrelid OPERATOR(pg_catalog.=) c.confrelid AND fa.attnum OPERATOR(pg_catalog.=) c.confkey[1] \
         WHERE c.conrelid OPERATOR(pg_catalog.=) a.attrelid AND c.contype OPERATOR(pg_catalog.=) 'f' \
           AND c.conkey OPERATOR(pg_catalog.=) ARRAY[a.attnum]::pg_catalog.int2[] ORDER BY c.conname LIMIT 1) \
     FROM pg_catalog.pg_attribute a \
     WHERE a.attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped \
     ORDER BY a.attnum";

/// The columns of `table` (as `QualifiedName::sql` writes it).
pub(crate) async fn columns(conn: &mut PgConnection, table: &str, ran: &mut Vec<String>) -> sqlx::Result<Vec<Column>> {
    type Row = (String, String, i64, i32, bool, bool, bool, bool, Option<String>, Option<String>);
    ran.push(format!(
        "-- the columns of {table}: their types, NOT NULL, defaults, uniqueness and foreign keys (pg_attribute)"
    ));
    let rows: Vec<Row> = sqlx::query_as(COLUMNS_SQL).bind(table).fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|(name, sql_type, type_oid, typmod, not_null, has_default, never_written, unique, table, column)| Column {
            name,
            sql_type,
            type_oid,
            typmod,
            not_null,
            has_default,
            never_written,
            unique,
            references: table.zip(column),
        })
        .collect())
}

/// A value of `ty` with a random part, as SQL cast to it (see [`values`]).
pub(crate) fn made_up(ty: &TypeFacts) -> Result<String, values::NoValue> {
    values::value(ty, true)
}

/// The catalog facts of a column's type.
pub(crate) async fn type_facts(conn: &mut PgConnection, column: &Column) -> sqlx::Result<TypeFacts> {
    types::read(conn, column.type_oid, column.typmod).await
}

/// Where a probe-row column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The tenant's value.
    Tenant,
    /// The scenario's value.
    Given(String),
    /// Copied from a row of the table.
    Copied,
    /// A partition bound's value: the partition, and the value as the server printed it.
    Bound(String, String),
    /// Made up from the type; `unique`: with a random part.
    MadeUp { unique: bool },
    /// A value a CHECK constraint (so named) compares the column with.
    Check(String),
    /// A key of the table its foreign key references (so named).
    Referenced(String),
}

/// Where each column's value comes from (columns left out keep their default, or NULL).
/// `tenant`: the tenant column; `copy`: the table has a row to copy; `landing`: a leaf
/// partition and the partition key's values that land there; `keys`: the partition key's
/// columns, copied with the row (even when unique) so that it lands where the copied one is.
pub(crate) fn plan(
    columns: &[Column],
    tenant: Option<&str>,
    given: &Given,
    copy: bool,
    landing: Option<&(String, Vec<(String, String)>)>,
    keys: &[String],
) -> Vec<(usize, Source)> {
    let mut out = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        let bound = landing.and_then(|(leaf, values)| {
            values.iter().find(|(c, _)| *c == column.name).map(|(_, v)| (leaf.clone(), v.clone()))
        });
        let source = if Some(column.name.as_str()) == tenant {
            Some(Source::Tenant)
        } else if let Some(g) = given.0.iter().find(|g| g.column == column.name) {
            Some(Source::Given(g.value.clone()))
        } else if column.never_written {
            None
        } else if let Some((leaf, value)) = bound {
            Some(Source::Bound(leaf, value))
        } else if copy && keys.contains(&column.name) {
            Some(Source::Copied)
        } else if let Some((table, _)) = column.references.as_ref().filter(|_| !copy || column.unique) {
            // A value the application could write: a key the foreign key finds.
            (column.not_null && !column.has_default).then(|| Source::Referenced(table.clone()))
        } else if column.unique {
            (column.not_null && !column.has_default).then_some(Source::MadeUp { unique: true })
        } else if copy {
            Some(Source::Copied)
        } else {
            (column.not_null && !column.has_default).then_some(Source::MadeUp { unique: false })
        };
        if let Some(source) = source {
            out.push((i, source));
        }
    }
    out
}

/// A probe row: each column written and its value, as SQL with `{tenant}` for the tenant's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub cells: Vec<Cell>,
    /// Whether values are copied from a row of the table (`src`).
    pub copy: bool,
    /// The partition key's columns (none when the table is not partitioned).
    pub keys: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub column: String,
    pub source: Source,
    pub expr: String,
}

impl Row {
    /// The evidence's lines: which values were made up (`column = expression`), which came from
    /// a partition's bound, the scenario or a copied row.
    pub(super) fn evidence(&self) -> Vec<String> {
        let mut made_up = Vec::new();
        let mut referenced = Vec::new();
        let mut checked = Vec::new();
        let mut bound = Vec::new();
        let mut given = Vec::new();
        let mut copied = Vec::new();
        for cell in &self.cells {
            let column = quote_ident_if_needed(&cell.column);
            match &cell.source {
                Source::MadeUp { .. } => made_up.push(format!("{column} = {}", cell.expr)),
                Source::Check(by) => checked.push(format!("{column} = {} ({by})", cell.expr)),
                Source::Referenced(table) => referenced.push(format!("{column} (a key of {table})")),
                Source::Bound(leaf, _) => bound.push(format!("{column} = {} (partition {leaf})", cell.expr)),
                Source::Given(_) => given.push(format!("{column} = {}", cell.expr)),
                Source::Copied => copied.push(column),
                Source::Tenant => {}
            }
        }
        let mut lines = Vec::new();
        for (what, list) in [
            ("made up by pgdrill", made_up),
            ("a CHECK compares with", checked),
            ("a foreign key finds", referenced),
            ("from a partition's bound", bound),
            ("the scenario's", given),
            ("copied from a row of the table", copied),
        ] {
            if !list.is_empty() {
                lines.push(format!("-- probe-row values {what}: {}", list.join(", ")));
            }
        }
        lines
    }
}

/// How a message tells the scenario to give values: where the `probe` key goes, and whether it
/// takes a table's name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hint<'a> {
    /// `fail_closed` (the key sits in it), or `the check`.
    pub within: &'a str,
    pub per_table: bool,
}

impl Hint<'_> {
    /// The line to add for `columns` of `table`.
    pub(super) fn line(&self, table: &QualifiedName, columns: &[&str]) -> String {
        let values: Vec<String> =
            columns.iter().map(|c| format!("{} = \"...\"", toml_key(&quote_ident_if_needed(c)))).collect();
        let values = format!("{{ {} }}", values.join(", "));
        if self.per_table {
            format!("probe = {{ {} = {values} }}", toml_key(&table.to_string()))
        } else {
            format!("probe = {values}")
        }
    }
}

/// A TOML key: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_owned()
    } else if !key.contains(['"', '\\']) {
        format!("\"{key}\"")
    } else if !key.contains('\'') {
        format!("'{key}'")
    } else {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Columns no value could be made for, and why: the message names them all, with the line to add.
pub(crate) fn blocked_message(table: &QualifiedName, blocked: &[(String, String)], hint: Hint<'_>) -> String {
    let list: Vec<String> = blocked.iter().map(|(c, why)| format!("`{}` ({why})", quote_ident_if_needed(c))).collect();
    let names: Vec<&str> = blocked.iter().map(|(c, _)| c.as_str()).collect();
    let plural = if blocked.len() == 1 { "column" } else { "columns" };
    format!(
        "no probe row can be made for `{table}`: no value for {} {plural}: {} (hint: add to {}: {})",
        blocked.len(),
        list.join(", "),
        hint.within,
        hint.line(table, &names)
    )
}

/// The row for `plan`'s sources: values made up where asked (reading each such column's type
/// facts); `Err` lists every column none could be made for.
async fn build(
    conn: &mut PgConnection,
    columns: &[Column],
    plan: Vec<(usize, Source)>,
    copy: bool,
) -> sqlx::Result<Result<Row, Vec<(String, String)>>> {
    let mut row = Row { cells: Vec::new(), copy, keys: Vec::new() };
    let mut blocked = Vec::new();
    for (i, source) in plan {
        let column = &columns[i];
        let expr = match &source {
            Source::Tenant => format!("({{tenant}})::{}", column.sql_type),
            Source::Given(value) => format!("({})::{}", quote_literal(value), column.sql_type),
            Source::Bound(_, literal) => format!("({literal})::{}", column.sql_type),
            Source::Copied => format!("src.{}", quote_ident(&column.name)),
            // Set only after a CHECK refused a row ([`committed`]).
            Source::Check(_) => continue,
            Source::Referenced(table) => {
                let key = column.references.as_ref().map_or("", |(_, key)| key.as_str());
                format!("(SELECT referenced.{key} FROM {table} AS referenced LIMIT 1)")
            }
            Source::MadeUp { unique } => match values::value(&type_facts(conn, column).await?, *unique) {
                Ok(expr) => expr,
                Err(why) => {
                    blocked.push((column.name.clone(), format!("{}: {why}", column.sql_type)));
                    continue;
                }
            },
        };
        row.cells.push(Cell { column: column.name.clone(), source, expr });
    }
    Ok(if blocked.is_empty() { Ok(row) } else { Err(blocked) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, sql_type: &str) -> Column {
        Column { name: name.into(), sql_type: sql_type.into(), ..Default::default() }
    }

    fn names(plan: &[(usize, Source)], columns: &[Column]) -> Vec<String> {
        plan.iter().map(|(i, _)| columns[*i].name.clone()).collect()
    }

    #[test]
    fn a_probe_row_copies_a_row_when_there_is_one_and_makes_up_the_rest_by_type() {
        let columns = vec![
            Column { has_default: true, unique: true, not_null: true, ..column("id", "uuid") },
            Column { not_null: true, ..column("zone_id", "uuid") },
            Column { not_null: true, ..column("kind", "text") },
            Column { not_null: true, unique: true, ..column("slug", "text") },
            Column { unique: true, ..column("nickname", "text") },
            column("note", "text"),
            Column { never_written: true, ..column("total", "integer") },
            Column { not_null: true, has_default: true, ..column("created_at", "timestamp with time zone") },
        ];
        let none = Given::default();
        let copied = plan(&columns, Some("zone_id"), &none, true, None, &[]);
        assert_eq!(names(&copied, &columns), ["zone_id", "kind", "slug", "note", "created_at"]);
        assert_eq!(copied[0].1, Source::Tenant);
        assert_eq!(copied[1].1, Source::Copied, "copied, so the table's checks hold");
        assert_eq!(copied[2].1, Source::MadeUp { unique: true }, "a unique column is made up");
        let made = plan(&columns, Some("zone_id"), &none, false, None, &[]);
        assert_eq!(
            names(&made, &columns),
            ["zone_id", "kind", "slug"],
            "without a row, only NOT NULL columns without default; a nullable unique one stays NULL"
        );
        let given = ProbeValues(BTreeMap::from([
            ("Kind".to_owned(), ProbeValue::Value("service".into())),
            ("public.grants".to_owned(), ProbeValue::Table(BTreeMap::from([("kind".to_owned(), "grant".to_owned())]))),
        ]))
        .read()
        .unwrap();
        let for_other = given.for_table(&QualifiedName::new("public", "other"));
        assert_eq!(plan(&columns, Some("zone_id"), &for_other, false, None, &[])[1].1, Source::Given("service".into()));
        let for_grants = given.for_table(&QualifiedName::new("public", "grants"));
        assert_eq!(plan(&columns, Some("zone_id"), &for_grants, false, None, &[])[1].1, Source::Given("grant".into()));
        assert_eq!(given.tables().collect::<Vec<_>>(), [&QualifiedName::new("public", "grants")]);
    }

    #[test]
    fn a_partition_key_takes_a_bound_and_a_copy_keeps_it() {
        let columns = vec![
            Column { not_null: true, unique: true, ..column("created_on", "date") },
            Column { not_null: true, ..column("tenant", "integer") },
        ];
        let landing = ("public.events_2024".to_owned(), vec![("created_on".to_owned(), "'2024-01-01'".to_owned())]);
        let keys = ["created_on".to_owned()];
        let made = plan(&columns, Some("tenant"), &Given::default(), false, Some(&landing), &keys);
        assert_eq!(made[0].1, Source::Bound("public.events_2024".into(), "'2024-01-01'".into()));
        let copied = plan(&columns, Some("tenant"), &Given::default(), true, None, &keys);
        assert_eq!(copied[0].1, Source::Copied, "a unique partition key is copied with the row, to land where it does");
    }

    #[test]
    fn the_message_names_every_blocking_column_with_the_line_to_add() {
        let table = QualifiedName::new("public", "Orders");
        let blocked = vec![
            ("shape".to_owned(), "geometry: pgdrill cannot make up a value of type geometry".to_owned()),
            ("Doc".to_owned(), "public.doc: a pseudo-type".to_owned()),
        ];
        let message = blocked_message(&table, &blocked, Hint { within: "fail_closed", per_table: true });
        assert!(message.contains("no value for 2 columns: `shape` (geometry"), "{message}");
        assert!(message.contains("`\"Doc\"` (public.doc"), "{message}");
        assert!(
            message.ends_with(
                r#"(hint: add to fail_closed: probe = { 'public."Orders"' = { shape = "...", '"Doc"' = "..." } })"#
            ),
            "{message}"
        );
        let one = blocked_message(
            &QualifiedName::new("public", "audit"),
            &blocked[..1],
            Hint { within: "the check", per_table: false },
        );
        assert!(one.ends_with(r#"(hint: add to the check: probe = { shape = "..." })"#), "{one}");
    }

    #[test]
    fn the_evidence_says_where_each_value_came_from() {
        let row = Row {
            cells: vec![
                Cell { column: "zone_id".into(), source: Source::Tenant, expr: "({tenant})::uuid".into() },
                Cell {
                    column: "amount".into(),
                    source: Source::MadeUp { unique: false },
                    expr: "(1)::numeric(5,2)".into(),
                },
                Cell {
                    column: "day".into(),
                    source: Source::Bound("public.p1".into(), "'2024-01-01'".into()),
                    expr: "('2024-01-01')::date".into(),
                },
                Cell { column: "kind".into(), source: Source::Copied, expr: "src.kind".into() },
            ],
            copy: true,
            keys: Vec::new(),
        };
        assert_eq!(
            row.evidence(),
            [
                "-- probe-row values made up by pgdrill: amount = (1)::numeric(5,2)",
                "-- probe-row values from a partition's bound: day = ('2024-01-01')::date (partition public.p1)",
                "-- probe-row values copied from a row of the table: kind",
            ]
        );
        assert_eq!(
            committed::insert_sql("\"public\".\"t\"", &row, Some("it's")),
            "INSERT INTO \"public\".\"t\" (\"zone_id\", \"amount\", \"day\", \"kind\") SELECT ('it''s')::uuid, (1)::numeric(5,2), ('2024-01-01')::date, src.kind FROM \"public\".\"t\" AS src LIMIT 1 RETURNING tableoid::pg_catalog.oid::pg_catalog.text, ctid::pg_catalog.text"
        );
        assert!(committed::insert_sql("t", &Row::default(), None).starts_with("INSERT INTO t DEFAULT VALUES"));
    }
}
