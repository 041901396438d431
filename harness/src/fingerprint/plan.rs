//! Which reads take a table's fingerprint: the COPY statements the readers share out.
//!
//! When the key ranges asked for follow each other (a whole table, or every range of a key),
//! the table is read once, whatever the number of ranges: the server tags each row with its
//! range, and the table is cut into parts by block (`ctid` ranges, which PostgreSQL 14 and later
//! scan directly), one read per part, so that every reader has work on a table of any size.
//! Ranges that do not follow each other (a sample) are read one by one, each by its key.
//! Which part a row is read in changes nothing: its digest is sorted with all the others.

use sqlx::PgConnection;

use super::RowText;
use super::error::{FingerprintError, sql_error};
use super::take::{Described, Span};
use crate::pg::{quote_ident, quote_literal};

/// Blocks (8 kB) a part has at least (2 MB): smaller tables are read in one part.
const PART_BLOCKS: u64 = 256;

/// Parts per reader, so that a part that takes longer leaves others to share.
const PARTS_PER_READER: u64 = 4;

/// What decides how a table can be cut.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Layout {
    /// The largest of its heap files (its partitions'), in blocks: the parts cut this range of
    /// blocks, each in every partition. 0 when it cannot be cut by block (a server before 14, a
    /// table access method other than heap).
    pub blocks: u64,
    /// Its heap files' blocks in all: how many parts it is worth.
    pub total: u64,
}

/// How `described` can be cut on a server of `version_num`.
pub(crate) async fn layout(
    conn: &mut PgConnection,
    described: &Described,
    version_num: u32,
) -> Result<Layout, FingerprintError> {
    // TID range scans came with PostgreSQL 14: before, a ctid range is a whole scan, filtered.
    if version_num < 140000 {
        return Ok(Layout::default());
    }
    let relations = described.relations_sql();
    let sql = format!(
        "SELECT COALESCE(pg_catalog.max(b.blocks), 0)::pg_catalog.int8, COALESCE(pg_catalog.sum(b.blocks), 0)::pg_catalog.int8, \
         COALESCE(pg_catalog.bool_and(a.amname OPERATOR(pg_catalog.=) 'heap'), false) \
         FROM pg_catalog.pg_class AS c LEFT JOIN pg_catalog.pg_am AS a ON a.oid OPERATOR(pg_catalog.=) c.relam, \
         LATERAL (SELECT pg_catalog.pg_relation_size(c.oid) OPERATOR(pg_catalog./) \
         pg_catalog.current_setting('block_size')::pg_catalog.int8 AS blocks) AS b \
         WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY{relations})"
    );
    let (blocks, total, heap): (i64, i64, bool) = sqlx::query_as(&sql)
        .bind(described.oid)
        .fetch_one(&mut *conn)
        .await
        .map_err(sql_error(format!("cannot read the size of `{}`", described.table)))?;
    Ok(match heap {
        true => Layout { blocks: blocks.max(0) as u64, total: total.max(0) as u64 },
        false => Layout::default(),
    })
}

/// The COPY statements that read `spans` of `described` between them, each row as `row_text`,
/// for `readers` readers.
pub(crate) fn reads(
    described: &Described,
    spans: &[Span],
    row_text: RowText,
    layout: Layout,
    readers: usize,
) -> Vec<String> {
    let copy = |tag: &str, span: &Span, blocks| described.copy_sql(tag, row_text, span, blocks);
    if !follow(spans) {
        return spans.iter().enumerate().map(|(i, span)| copy(&i.to_string(), span, None)).collect();
    }
    let tag = tag(described, spans);
    let (first, last) = (&spans[0], &spans[spans.len() - 1]);
    let outer = (first.0.clone(), last.1.clone());
    let parts = (layout.total / PART_BLOCKS).min(layout.blocks).min(readers as u64 * PARTS_PER_READER).max(1);
    if parts == 1 {
        return vec![copy(&tag, &outer, None)];
    }
    (0..parts)
        .map(|p| {
            let from = layout.blocks * p / parts;
            let to = (p + 1 < parts).then(|| layout.blocks * (p + 1) / parts);
            copy(&tag, &outer, Some((from, to)))
        })
        .collect()
}

/// Whether each span starts where the one before ended (so one read covers them all).
fn follow(spans: &[Span]) -> bool {
    !spans.is_empty() && spans.windows(2).all(|w| w[0].1.is_some() && w[0].1 == w[1].0)
}

/// The range a row falls in, as the server computes it: `0` for one range, else the first whose
/// end is at or above the row's key.
fn tag(described: &Described, spans: &[Span]) -> String {
    let Some(key) = described.key.as_ref().filter(|_| spans.len() > 1) else {
        return "0".into();
    };
    let column = format!("t.{}", quote_ident(&key.name));
    let mut case = String::from("CASE");
    for (i, (_, upto)) in spans[..spans.len() - 1].iter().enumerate() {
        let upto = upto.as_deref().expect("spans that follow each other end before the last");
        case.push_str(&format!(
            " WHEN {column} OPERATOR(pg_catalog.<=) CAST({} AS {}) THEN {i}",
            quote_literal(upto),
            key.type_name
        ));
    }
    format!("{case} ELSE {} END", spans.len() - 1)
}

impl Described {
    /// `COPY` of each row's range (`tag`) and its `row_text`, for the rows in `span` and, when
    /// given, in the blocks `[from, to)` (to the end without `to`).
    fn copy_sql(&self, tag: &str, row_text: RowText, span: &Span, blocks: Option<(u64, Option<u64>)>) -> String {
        let mut conditions: Vec<String> = self.key_condition(&span.0, &span.1).into_iter().collect();
        if let Some((from, to)) = blocks {
            conditions.push(format!("t.ctid OPERATOR(pg_catalog.>=) '({from},0)'::pg_catalog.tid"));
            if let Some(to) = to {
                conditions.push(format!("t.ctid OPERATOR(pg_catalog.<) '({to},0)'::pg_catalog.tid"));
            }
        }
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        let from = self.from();
        match row_text {
            RowText::Record => format!(
                "COPY (SELECT ({tag})::pg_catalog.int4, pg_catalog.convert_to({}, 'UTF8') FROM {from}{filter}) \
                 TO STDOUT (FORMAT binary)",
                self.row_sql(row_text)
            ),
            RowText::Copy => {
                let columns: Vec<String> = self.columns.iter().map(|c| format!("t.{}", quote_ident(&c.name))).collect();
                format!("COPY (SELECT ({tag})::pg_catalog.int4, {} FROM {from}{filter}) TO STDOUT", columns.join(", "))
            }
        }
    }

    /// The key's condition for `(after, upto]`, its bounds written as literals of its type.
    fn key_condition(&self, after: &Option<String>, upto: &Option<String>) -> Option<String> {
        let key = self.key.as_ref()?;
        let column = format!("t.{}", quote_ident(&key.name));
        let bound = |op: &str, value: &str| {
            format!("{column} OPERATOR(pg_catalog.{op}) CAST({} AS {})", quote_literal(value), key.type_name)
        };
        let parts: Vec<String> =
            after.iter().map(|a| bound(">", a)).chain(upto.iter().map(|u| bound("<=", u))).collect();
        (!parts.is_empty()).then(|| format!("({})", parts.join(" AND ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Column;
    use crate::pg::QualifiedName;

    fn described(key: bool) -> Described {
        let column = |name: &str, t: &str| Column { name: name.into(), type_name: t.into() };
        Described {
            table: QualifiedName::new("public", "t"),
            oid: 1,
            relkind: 'r',
            columns: vec![column("id", "bigint"), column("note", "text")],
            key: key.then(|| column("id", "bigint")),
        }
    }

    fn span(after: Option<&str>, upto: Option<&str>) -> Span {
        (after.map(str::to_owned), upto.map(str::to_owned))
    }

    #[test]
    fn a_whole_table_is_cut_by_block_into_parts_for_the_readers_the_last_open() {
        let whole = [span(None, None)];
        let reads = reads(&described(false), &whole, RowText::Copy, Layout { blocks: 100_000, total: 100_000 }, 2);
        assert_eq!(reads.len(), 8);
        assert!(
            reads[0].contains(
                "t.ctid OPERATOR(pg_catalog.>=) '(0,0)'::pg_catalog.tid AND t.ctid OPERATOR(pg_catalog.<) '(12500,0)'"
            ),
            "{}",
            reads[0]
        );
        assert!(reads[7].ends_with("'(87500,0)'::pg_catalog.tid) TO STDOUT"), "{}", reads[7]);
        assert_eq!(
            super::reads(&described(false), &whole, RowText::Copy, Layout { blocks: 300, total: 300 }, 2).len(),
            1,
            "a small table is one part"
        );
        assert_eq!(
            super::reads(&described(false), &whole, RowText::Copy, Layout::default(), 8).len(),
            1,
            "no layout, no parts"
        );
        // 24 partitions of at most 608 blocks: worth 8 parts, each of 76 blocks of every partition.
        let partitioned =
            super::reads(&described(false), &whole, RowText::Copy, Layout { blocks: 608, total: 24 * 608 }, 2);
        assert_eq!(partitioned.len(), 8);
        assert!(partitioned[7].contains("t.ctid OPERATOR(pg_catalog.>=) '(532,0)'"), "{}", partitioned[7]);
        assert!(!super::reads(&described(false), &whole, RowText::Copy, Layout::default(), 8)[0].contains("WHERE"));
    }

    #[test]
    fn ranges_that_follow_each_other_are_one_read_tagged_by_range_and_a_sample_is_read_range_by_range() {
        let every = [span(None, Some("10")), span(Some("10"), Some("20")), span(Some("20"), None)];
        let one = reads(&described(true), &every, RowText::Copy, Layout::default(), 2);
        assert_eq!(one.len(), 1);
        let tag = "COPY (SELECT (CASE WHEN t.\"id\" OPERATOR(pg_catalog.<=) CAST('10' AS bigint) THEN 0 \
             WHEN t.\"id\" OPERATOR(pg_catalog.<=) CAST('20' AS bigint) THEN 1 ELSE 2 END)::pg_catalog.int4, ";
        assert_eq!(one[0], format!("{tag}t.\"id\", t.\"note\" FROM ONLY \"public\".\"t\" AS t) TO STDOUT"));
        let record = reads(&described(true), &every, RowText::Record, Layout::default(), 2);
        assert_eq!(
            record[0],
            format!(
                "{tag}pg_catalog.convert_to(ROW(t.\"id\", t.\"note\")::pg_catalog.text, 'UTF8') FROM ONLY \"public\".\"t\" AS t) \
                 TO STDOUT (FORMAT binary)"
            )
        );
        let closed = [span(Some("5"), Some("10")), span(Some("10"), Some("20"))];
        let read = &reads(&described(true), &closed, RowText::Copy, Layout::default(), 2)[0];
        assert!(read.contains("WHERE (t.\"id\" OPERATOR(pg_catalog.>) CAST('5' AS bigint) AND t.\"id\" OPERATOR(pg_catalog.<=) CAST('20' AS bigint))"), "{read}");
        let sample = [span(None, Some("10")), span(Some("20"), Some("30"))];
        let apart = reads(&described(true), &sample, RowText::Copy, Layout { blocks: 100_000, total: 100_000 }, 2);
        assert_eq!(apart.len(), 2);
        assert!(apart[1].starts_with("COPY (SELECT (1)::pg_catalog.int4"), "{}", apart[1]);
        assert!(!apart[1].contains("ctid"));
    }

    #[test]
    fn a_bound_is_a_literal_whatever_it_holds() {
        let every = [span(None, Some("1'; DROP TABLE t; --")), span(Some("1'; DROP TABLE t; --"), None)];
        let read = &reads(&described(true), &every, RowText::Copy, Layout::default(), 1)[0];
        assert!(read.contains("CAST('1''; DROP TABLE t; --' AS bigint)"), "{read}");
    }
}
