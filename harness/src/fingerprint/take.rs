//! The SQL: what a table is and which of its columns are hashed, where its key splits it, and
//! the query a range's fingerprint is, as a reader of the evidence runs it again. Every query
//! runs in a transaction that [`in_settings`] pinned first.

use sqlx::PgConnection;

use super::error::{FingerprintError, sql_error};
use super::{Column, RowText, SETTINGS};
use crate::pg::{QualifiedName, quote_ident};

/// Pins [`SETTINGS`] for the rest of the transaction (`SET LOCAL`); the caller began it.
pub(crate) async fn in_settings(conn: &mut PgConnection) -> Result<(), FingerprintError> {
    for (name, value) in SETTINGS {
        sqlx::query("SELECT pg_catalog.set_config($1, $2, true)")
            .bind(name)
            .bind(value)
            .execute(&mut *conn)
            .await
            .map_err(sql_error(format!("cannot set `{name}`")))?;
    }
    Ok(())
}

/// A transaction on `pool` with [`SETTINGS`] pinned, where a restore's fingerprints are taken:
/// repeatable read, so that it can export its snapshot to the readers
/// ([`super::Readers`]); it only reads, and dropping it rolls it back.
pub(crate) async fn begin(pool: &sqlx::PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, FingerprintError> {
    let mut tx = pool.begin().await.map_err(sql_error("cannot begin a transaction on the restored database"))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(sql_error("cannot set the transaction's isolation"))?;
    in_settings(&mut tx).await?;
    Ok(tx)
}

/// A span of a key: the rows above the first bound (when there is one), up to the second.
pub(crate) type Span = (Option<String>, Option<String>);

/// The spans `bounds` (from [`bounds`]) end: `(, b1]`, `(b1, b2]`, ... up to the last bound, or
/// past it when `open_end` (rows added later still fall in the last span).
pub(crate) fn spans(bounds: &[String], open_end: bool) -> Vec<Span> {
    let mut after: Option<String> = None;
    let mut spans = Vec::new();
    for (i, upto) in bounds.iter().enumerate() {
        let upto = (!open_end || i + 1 < bounds.len()).then(|| upto.clone());
        spans.push((after.clone(), upto.clone()));
        after = upto;
    }
    spans
}

/// A table as fingerprinting reads it.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    pub table: QualifiedName,
    /// Its `pg_class` oid.
    pub oid: i64,
    /// `r` (a table) or `p` (partitioned: its partitions' rows).
    pub relkind: char,
    pub columns: Vec<Column>,
    /// The key column and its type, when ranges split the table.
    pub key: Option<Column>,
}

/// Reads `table`: that it is a table, its columns (`columns`, or all), and `key` when given,
/// which must be NOT NULL (every row falls in a range) and of a type without a collation (its
/// order is the same on any server, whatever its C library).
pub(crate) async fn describe(
    conn: &mut PgConnection,
    table: &QualifiedName,
    columns: Option<&[String]>,
    key: Option<&str>,
) -> Result<Described, FingerprintError> {
    let found: Option<(i64, String)> = sqlx::query_as(
        "SELECT c.oid::pg_catalog.int8, c.relkind::pg_catalog.text FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(table.schema_or_public())
    .bind(&table.name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(sql_error(format!("cannot look up `{table}`")))?;
    let Some((oid, relkind)) = found else {
        return Err(FingerprintError::Missing(table.to_string()));
    };
    let relkind = relkind.chars().next().unwrap_or('?');
    if !matches!(relkind, 'r' | 'p') {
        let kind = match relkind {
            'v' => "a view",
            'm' => "a materialized view",
            'f' => "a foreign table",
            _ => "not a table",
        };
        return Err(FingerprintError::NotATable { table: table.to_string(), kind });
    }
    let all: Vec<(String, String, bool, bool)> = sqlx::query_as(
        "SELECT a.attname::pg_catalog.text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
         t.typcollation <> 0 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(sql_error(format!("cannot read the columns of `{table}`")))?;
    let column = |name: &str| {
        all.iter()
            .find(|(n, ..)| n == name)
            .ok_or_else(|| FingerprintError::NoColumn { table: table.to_string(), column: name.to_owned() })
    };
    let columns = match columns {
        Some(names) => names
            .iter()
            .map(|n| column(n).map(|(name, t, ..)| Column { name: name.clone(), type_name: t.clone() }))
            .collect::<Result<Vec<_>, _>>()?,
        None => all.iter().map(|(name, t, ..)| Column { name: name.clone(), type_name: t.clone() }).collect(),
    };
    let key = match key {
        None => None,
        Some(k) => {
            let (name, type_name, not_null, collatable) = column(k)?;
            let reason = if !not_null {
                Some("it may be NULL, and a row without a key falls in no range")
            } else if *collatable {
                Some("its type has a collation, whose order may differ between servers")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(FingerprintError::Key {
                    table: table.to_string(),
                    key: k.to_owned(),
                    reason: reason.into(),
                });
            }
            Some(Column { name: name.clone(), type_name: type_name.clone() })
        }
    };
    Ok(Described { table: table.clone(), oid, relkind, columns, key })
}

impl Described {
    /// `ONLY s.t` for a table (not its inheritance children), `s.t` for a partitioned one.
    pub(super) fn from(&self) -> String {
        let only = if self.relkind == 'p' { "" } else { "ONLY " };
        format!("{only}{} AS t", self.table.sql())
    }

    /// The relations that hold the rows, as an SQL subquery of `$1` (the table's oid): its leaf
    /// partitions for a partitioned table, else the table itself.
    pub(super) fn relations_sql(&self) -> &'static str {
        match self.relkind {
            'p' => "(SELECT p.relid FROM pg_catalog.pg_partition_tree($1::pg_catalog.oid) AS p WHERE p.isleaf)",
            _ => "(SELECT $1::pg_catalog.oid)",
        }
    }

    /// The condition on the key for rows in `(after, upto]`, with its parameters numbered from 1.
    fn range_where(&self, after: bool, upto: bool) -> String {
        let Some(key) = &self.key else {
            return String::new();
        };
        let column = format!("t.{}", quote_ident(&key.name));
        let mut conditions = Vec::new();
        if after {
            conditions.push(format!("{column} > CAST($1 AS {})", key.type_name));
        }
        if upto {
            let n = if after { 2 } else { 1 };
            conditions.push(format!("{column} <= CAST(${n} AS {})", key.type_name));
        }
        if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) }
    }

    /// The query whose answer is the rows and the digest of `(after, upto]`, each row's text
    /// being `row_text`.
    pub(crate) fn range_sql(&self, after: bool, upto: bool, row_text: RowText) -> String {
        format!(
            "SELECT pg_catalog.count(*)::pg_catalog.int8, pg_catalog.encode(pg_catalog.sha256(COALESCE(\
             pg_catalog.string_agg(r.h, ''::pg_catalog.bytea ORDER BY r.h), ''::pg_catalog.bytea)), 'hex') \
             FROM (SELECT pg_catalog.sha256(pg_catalog.convert_to({}, 'UTF8')) AS h FROM {}{}) AS r",
            self.row_sql(row_text),
            self.from(),
            self.range_where(after, upto)
        )
    }

    /// A row's text as SQL: `ROW(...)::text`, or its COPY line built as COPY builds it.
    pub(super) fn row_sql(&self, row_text: RowText) -> String {
        let columns = self.columns.iter().map(|c| format!("t.{}", quote_ident(&c.name)));
        match row_text {
            RowText::Record => format!("ROW({})::pg_catalog.text", columns.collect::<Vec<_>>().join(", ")),
            RowText::Copy => {
                let fields: Vec<String> = columns.map(|c| copy_field(&c)).collect();
                format!("pg_catalog.array_to_string(ARRAY[{}]::pg_catalog.text[], E'\\t')", fields.join(", "))
            }
        }
    }
}

/// A column's text as COPY's text format writes it: the type's output, a backslash and the
/// control characters COPY escapes written with a backslash (`\\`, `\b`, `\f`, `\n`, `\r`, `\t`,
/// `\v`), and `\N` for NULL (`num_nulls`, which a composite of NULL fields does not count).
fn copy_field(column: &str) -> String {
    let mut text = format!("pg_catalog.format('%s', {column})");
    for (from, to) in [
        ("'\\'", "'\\\\'"),
        ("E'\\b'", "'\\b'"),
        ("E'\\f'", "'\\f'"),
        ("E'\\n'", "'\\n'"),
        ("E'\\r'", "'\\r'"),
        ("E'\\t'", "'\\t'"),
        ("E'\\v'", "'\\v'"),
    ] {
        text = format!("pg_catalog.replace({text}, {from}, {to})");
    }
    format!("CASE WHEN pg_catalog.num_nulls({column}) OPERATOR(pg_catalog.=) 1 THEN '\\N' ELSE {text} END")
}

/// The largest key (by the key's index, when it has one), or `None` for an empty table.
pub(crate) async fn last_key(
    conn: &mut PgConnection,
    described: &Described,
) -> Result<Option<String>, FingerprintError> {
    let Some(key) = &described.key else {
        return Ok(None);
    };
    let column = format!("t.{}", quote_ident(&key.name));
    let sql = format!("SELECT {column}::pg_catalog.text FROM {} ORDER BY {column} DESC LIMIT 1", described.from());
    sqlx::query_scalar(&sql)
        .fetch_optional(&mut *conn)
        .await
        .map_err(sql_error(format!("cannot read the last `{}` of `{}`", key.name, described.table)))
}

/// Rows a table's split is estimated from: a larger table is split by a sample of its blocks.
const SAMPLE_ROWS: f64 = 100_000.0;

/// The key's value at the end of each of `parts` parts of about equal rows, in order (fewer
/// when the table has fewer rows): the last is the largest key. A table of more rows than
/// [`SAMPLE_ROWS`] (as the planner estimates them) is split where a sample of its blocks puts the
/// quantiles, so that splitting a table of any size costs about the same: its ranges then hold
/// about equal rows, and the file records where each one ends.
pub(crate) async fn bounds(
    conn: &mut PgConnection,
    described: &Described,
    parts: u32,
) -> Result<Vec<String>, FingerprintError> {
    let Some(key) = &described.key else {
        return Ok(Vec::new());
    };
    let Some(last) = last_key(conn, described).await? else {
        return Ok(Vec::new());
    };
    let what = || format!("cannot split `{}` by `{}`", described.table, key.name);
    let estimated: f64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(pg_catalog.sum(GREATEST(c.reltuples, 0)), 0)::pg_catalog.float8 FROM pg_catalog.pg_class AS c \
         WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY{})",
        described.relations_sql()
    ))
    .bind(described.oid)
    .fetch_one(&mut *conn)
    .await
    .map_err(sql_error(what()))?;
    let percent = if estimated > SAMPLE_ROWS { 100.0 * SAMPLE_ROWS / estimated } else { 100.0 };
    let fractions: Vec<f64> = (1..parts.max(1)).map(|i| f64::from(i) / f64::from(parts)).collect();
    let column = format!("t.{}", quote_ident(&key.name));
    let sql = format!(
        "SELECT u.k::pg_catalog.text FROM pg_catalog.unnest((SELECT pg_catalog.percentile_disc($1::pg_catalog.float8[]) \
         WITHIN GROUP (ORDER BY {column}) FROM {} TABLESAMPLE SYSTEM ($2) REPEATABLE (0))) WITH ORDINALITY AS u(k, n) \
         WHERE u.k IS NOT NULL ORDER BY u.n",
        described.from()
    );
    let mut found: Vec<String> = sqlx::query_scalar(&sql)
        .bind(fractions)
        .bind(percent)
        .fetch_all(&mut *conn)
        .await
        .map_err(sql_error(what()))?;
    found.push(last);
    found.dedup();
    Ok(found)
}
