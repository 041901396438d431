//! The dump's tables as `row_counts` counts them: a partitioned table the dump loads through
//! (`COPY parent FROM stdin` under each partition's entry, as `--load-via-partition-root`
//! writes, and pg_dump 17 by itself for hash partitions keyed on an enum) is counted with its
//! whole tree, since its rows went on to its partitions; rows the dump loads into a partition
//! of that tree directly are added to it, so that no row is counted twice.

use sqlx::PgPool;

use super::super::relation::{self, Kind};
use crate::pg::{NameError, QualifiedName};

/// A table to count and the rows expected in it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Counted {
    /// As the dump or the baseline names it.
    pub name: String,
    /// The table it names, read once: the dump's text may not be a name (the count then says
    /// so).
    pub table: Result<QualifiedName, NameError>,
    pub expected: i64,
    /// Count the whole partition tree, not the table alone (`FROM ONLY`).
    pub tree: bool,
}

impl Counted {
    /// A table the baseline names.
    pub(super) fn alone(table: QualifiedName, expected: i64) -> Self {
        Counted { name: table.to_string(), table: Ok(table), expected, tree: false }
    }

    /// A table as the dump names it (`public.users`), read as a name here, once.
    pub(super) fn in_dump(name: String, expected: i64) -> Self {
        Counted { table: QualifiedName::parse(&name), name, expected, tree: false }
    }
}

/// Folds the partitions of each partitioned table of `tables` into it. A name that cannot be
/// read, or a table the restore lacks, stays as it is (the count then says what is wrong).
pub(super) async fn fold_partitions(pool: &PgPool, tables: Vec<Counted>) -> Vec<Counted> {
    let mut roots: Vec<(usize, Vec<QualifiedName>)> = Vec::new();
    for (i, counted) in tables.iter().enumerate() {
        let Ok(name) = &counted.table else { continue };
        if let Ok(Some(Kind::Partitioned)) = relation::kind(pool, name).await
            && let Ok(below) = partitions(pool, name).await
        {
            roots.push((i, below));
        }
    }
    let loaded: Vec<i64> = tables.iter().map(|c| c.expected).collect();
    let mut counted = tables;
    let mut folded = vec![false; counted.len()];
    for (root, below) in &roots {
        counted[*root].tree = true;
        for (i, rows) in loaded.iter().enumerate() {
            // A partition of an outer tree the dump also loads through is that tree's already.
            let inside = counted[i].table.as_ref().is_ok_and(|n| below.contains(n));
            if i != *root && inside && !folded[i] && !folded[*root] {
                folded[i] = true;
                counted[*root].expected += rows;
            }
        }
    }
    counted.into_iter().zip(folded).filter(|(_, f)| !f).map(|(c, _)| c).collect()
}

/// Every partition below `table`, at any depth.
async fn partitions(pool: &PgPool, table: &QualifiedName) -> sqlx::Result<Vec<QualifiedName>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_partition_tree($1::pg_catalog.text::pg_catalog.regclass) t \
         JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid \
         JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
         WHERE t.level OPERATOR(pg_catalog.>) 0",
    )
    .bind(table.sql())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(schema, name)| QualifiedName::new(schema, name)).collect())
}

/// The baseline's tables as counted: the partitions of a hash-partitioned table are counted
/// together, on that table's whole tree. Which hash partition holds a row depends on how its
/// key hashes, and an enum's hash is its label's oid, which a restore assigns anew: the same
/// rows come back spread otherwise over the partitions (pg_dump loads them through the root
/// for that reason), and no row is lost.
pub(super) async fn fold_hash_partitions(pool: &PgPool, tables: Vec<(QualifiedName, i64)>) -> Vec<Counted> {
    let mut counted: Vec<Counted> = Vec::new();
    for (table, expected) in tables {
        let Some(parent) = hash_parent(pool, &table).await.ok().flatten() else {
            counted.push(Counted::alone(table, expected));
            continue;
        };
        match counted.iter_mut().find(|c| c.tree && c.table.as_ref() == Ok(&parent)) {
            Some(tree) => tree.expected += expected,
            None => counted.push(Counted { tree: true, ..Counted::alone(parent, expected) }),
        }
    }
    counted
}

/// The hash-partitioned table `table` is a partition of.
async fn hash_parent(pool: &PgPool, table: &QualifiedName) -> sqlx::Result<Option<QualifiedName>> {
    let parent: Option<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_inherits i \
         JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid OPERATOR(pg_catalog.=) i.inhparent \
         JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhparent \
         JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
         WHERE i.inhrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) AND pt.partstrat OPERATOR(pg_catalog.=) 'h'",
    )
    .bind(table.sql())
    .fetch_optional(pool)
    .await?;
    Ok(parent.map(|(schema, name)| QualifiedName::new(schema, name)))
}
