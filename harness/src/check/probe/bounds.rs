//! Where a probe row lands in a partitioned table with no row to copy: the partition key's
//! values from a leaf partition's bound (`pg_get_expr(relpartbound, oid)`), level by level from
//! the leaf up to the table: the `FROM` values of a range, the first value of a list; a hash or
//! default partition takes any value.

use sqlx::PgConnection;

/// Each partition under a table: its oid, its parent's, whether it is a leaf, its name, its
/// bound as the server prints it, and its parent's partition key columns (NULL for an
/// expression).
const TREE_SQL: &str = "SELECT c.oid::pg_catalog.int8, i.inhparent::pg_catalog.int8, \
       c.relkind OPERATOR(pg_catalog.<>) 'p', c.oid::pg_catalog.regclass::pg_catalog.text, \
       pg_catalog.pg_get_expr(c.relpartbound, c.oid), \
       ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_partitioned_table p \
               CROSS JOIN LATERAL pg_catalog.unnest(p.partattrs::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord) \
               LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) p.partrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum \
             WHERE p.partrelid OPERATOR(pg_catalog.=) i.inhparent ORDER BY k.ord) \
     FROM pg_catalog.pg_partition_tree($1::pg_catalog.regclass) t \
     JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid \
     JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) c.oid \
     WHERE t.level OPERATOR(pg_catalog.>) 0 ORDER BY t.level, c.oid";

/// A partition under the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partition {
    pub oid: i64,
    pub parent: i64,
    pub leaf: bool,
    pub name: String,
    pub bound: String,
    /// Its parent's partition key, column by column (`None`: an expression).
    pub key: Vec<Option<String>>,
}

/// The partitions under `table` (none for a table that is not partitioned).
pub(crate) async fn partitions(conn: &mut PgConnection, table: &str) -> sqlx::Result<Vec<Partition>> {
    type Row = (i64, i64, bool, String, Option<String>, Vec<Option<String>>);
    let rows: Vec<Row> = sqlx::query_as(TREE_SQL).bind(table).fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|(oid, parent, leaf, name, bound, key)| Partition {
            oid,
            parent,
            leaf,
            name,
            bound: bound.unwrap_or_default(),
            key,
        })
        .collect())
}

/// A bound's values for its parent's key, column by column: `Some(literal)` where the bound
/// gives one, `None` where any value will do; `Err` for a bound no value is taken from (a range
/// starting at MINVALUE).
fn bound_values(bound: &str, width: usize) -> Result<Vec<Option<String>>, ()> {
    let bound = bound.trim();
    let any = vec![None; width];
    if bound == "DEFAULT" || bound.starts_with("FOR VALUES WITH") {
        return Ok(any);
    }
    if let Some(rest) = bound.strip_prefix("FOR VALUES FROM ") {
        let (from, _) = parenthesized(rest).ok_or(())?;
        let items = split_items(from);
        if items.first().is_none_or(|first| first == "MINVALUE" || first == "MAXVALUE") {
            return Err(());
        }
        return Ok(items
            .into_iter()
            .map(|item| (item != "MINVALUE" && item != "MAXVALUE").then_some(item))
            .chain(std::iter::repeat(None))
            .take(width)
            .collect());
    }
    if let Some(rest) = bound.strip_prefix("FOR VALUES IN ") {
        let (list, _) = parenthesized(rest).ok_or(())?;
        let items = split_items(list);
        // A list value of a multi-column key does not exist (lists take one column); prefer a
        // value to NULL.
        let value = items.iter().find(|i| *i != "NULL").or(items.first()).cloned();
        return Ok(std::iter::once(value).chain(std::iter::repeat(None)).take(width).collect());
    }
    Err(())
}

/// The text inside the parentheses `text` starts with, and what follows them.
fn parenthesized(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if !text.starts_with('(') {
        return None;
    }
    let mut depth = 0;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some((&text[1..i], &text[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// The comma-separated items of a bound's list, as the server printed them (`'2024-01-01'`,
/// `42`, `(-1)`, `'it''s'`, `MINVALUE`, `NULL`).
fn split_items(list: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let (mut depth, mut quoted) = (0, false);
    for c in list.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                items.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        items.push(current.trim().to_owned());
    }
    items
}

/// Values for the partition key columns that make a row land in a leaf partition: the first
/// leaf (in the server's order) whose bounds, from the leaf up to the table, all give values or
/// take any; its name and `(column, literal)` pairs. `None` when no leaf does.
pub(crate) fn landing(partitions: &[Partition]) -> Option<(String, Vec<(String, String)>)> {
    'leaves: for leaf in partitions.iter().filter(|p| p.leaf) {
        let mut values: Vec<(String, String)> = Vec::new();
        let mut node = leaf;
        loop {
            let Ok(level) = bound_values(&node.bound, node.key.len()) else { continue 'leaves };
            for (column, value) in node.key.iter().zip(level) {
                if let (Some(column), Some(value)) = (column, value)
                    && !values.iter().any(|(c, _)| c == column)
                {
                    values.push((column.clone(), value));
                }
            }
            match partitions.iter().find(|p| p.oid == node.parent) {
                Some(parent) => node = parent,
                None => break,
            }
        }
        values.reverse();
        return Some((leaf.name.clone(), values));
    }
    None
}

/// The partition key's columns, every level's (an expression key has none).
pub(crate) fn key_columns(partitions: &[Partition]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for column in partitions.iter().flat_map(|p| p.key.iter().flatten()) {
        if !keys.contains(column) {
            keys.push(column.clone());
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(oid: i64, parent: i64, leaf: bool, bound: &str, key: &[&str]) -> Partition {
        Partition {
            oid,
            parent,
            leaf,
            name: format!("public.p{oid}"),
            bound: bound.into(),
            key: key.iter().map(|k| (!k.is_empty()).then(|| k.to_string())).collect(),
        }
    }

    #[test]
    fn a_bound_gives_the_values_its_partition_takes() {
        assert_eq!(
            bound_values("FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')", 1),
            Ok(vec![Some("'2024-01-01'".into())])
        );
        assert_eq!(bound_values("FOR VALUES FROM ((-5), MINVALUE) TO (0, 0)", 2), Ok(vec![Some("(-5)".into()), None]));
        assert_eq!(bound_values("FOR VALUES FROM (MINVALUE) TO ('2020-01-01')", 1), Err(()));
        assert_eq!(bound_values("FOR VALUES IN (NULL, 'a''b, c')", 1), Ok(vec![Some("'a''b, c'".into())]));
        assert_eq!(bound_values("FOR VALUES IN (NULL)", 1), Ok(vec![Some("NULL".into())]));
        assert_eq!(bound_values("FOR VALUES WITH (modulus 4, remainder 1)", 2), Ok(vec![None, None]));
        assert_eq!(bound_values("DEFAULT", 1), Ok(vec![None]));
    }

    #[test]
    fn a_row_lands_in_a_leaf_through_every_level() {
        // p (range on d) -> p1 (list on k) -> p1a; p2 from MINVALUE is skipped.
        let tree = [
            part(2, 1, true, "FOR VALUES FROM (MINVALUE) TO ('2020-01-01')", &["d"]),
            part(3, 1, false, "FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')", &["d"]),
            part(4, 3, true, "FOR VALUES IN ('a', NULL)", &["k"]),
        ];
        let (leaf, values) = landing(&tree).unwrap();
        assert_eq!(leaf, "public.p4");
        assert_eq!(values, [("d".to_owned(), "'2024-01-01'".to_owned()), ("k".to_owned(), "'a'".to_owned())]);
        // An expression key gives nothing; a default partition takes any value.
        let expression = [part(5, 1, true, "FOR VALUES IN (3)", &[""]), part(6, 1, true, "DEFAULT", &["d"])];
        assert_eq!(landing(&expression), Some(("public.p5".into(), vec![])));
        assert_eq!(landing(&tree[..1]), None);
        assert_eq!(key_columns(&tree), ["d", "k"]);
    }
}
