//! Content fingerprints: what a table holds, not only how many rows, in a digest that does not
//! depend on the order a scan returns rows in.
//!
//! A table's (or a key range's) fingerprint is the number of its rows and
//!
//! ```sql
//! sha256(string_agg(sha256(convert_to(row_text, 'UTF8')), '' ORDER BY 1))
//! ```
//!
//! the sha256 of its rows' sha256 digests in byte order: a multiset digest (duplicates count,
//! order does not) that is as hard to forge as sha256 itself, where a sum or an XOR of row
//! hashes can be balanced by a few crafted rows. A row's text is its COPY line ([`RowText`]:
//! `ROW(...)::text` in files before v3), with the settings that change how a value reads as text
//! pinned ([`SETTINGS`]). The server only reads the rows out, streamed with COPY on several
//! sessions in one snapshot (`read`, cut as `plan` says); pgdrill hashes the rows and sorts
//! the digests on every core, within a fixed memory (`sorter`). So `pgdrill fingerprint` on the
//! source and the drill on the restore compute the same digest of the same rows, and anyone can
//! compute it again with psql: the evidence gives a query that computes the very same digest in
//! the server.
//!
//! A table with a key (a NOT NULL column of a type without a collation: integers, numerics,
//! timestamps, dates, uuids) can be split into ranges of that key: `(after, upto]`, each with its
//! own fingerprint, so a difference is named by range, and a sample of ranges stands for a table
//! too large to read whole. Every range of a table is taken in one read of it. Append-only
//! audit tables keep their ranges in the history, so that the next drill proves every row of the
//! previous backup is still there, unchanged (`check::append_only`).

mod copy;
mod error;
mod plan;
mod read;
mod sorter;
mod take;

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::pg::QualifiedName;
pub(crate) use error::FingerprintError;
pub(crate) use read::{MEMORY, Readers};
pub(crate) use take::{Described, Span, begin, bounds, describe, in_settings, last_key, spans};

/// The fingerprint file's format and version, the one written. Since `v2` each table's name is
/// a [`QualifiedName`] as it is shown (`public."Track"`), which reads back as that name; `v3`
/// hashes each row's COPY line ([`RowText::Copy`]) and says so for each table.
pub const SCHEMA: &str = "pgdrill.fingerprint.v3";

/// The formats a fingerprint file is read in: `v1` wrote its names as `v2` does, and is read
/// as `v2` (a name that does not read as one fails the file); both hashed [`RowText::Record`].
/// A file is read as it is, never written again: its signature is over its bytes.
pub(crate) const SCHEMAS_READ: &[&str] = &[SCHEMA, "pgdrill.fingerprint.v2", "pgdrill.fingerprint.v1"];

/// The text of a row that its digest hashes (in UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowText {
    /// `ROW(c1, c2, ...)::text`: what `v1` and `v2` files and the trails recorded before `v3`
    /// hashed, the text of a table that does not say.
    #[default]
    Record,
    /// The row's line as `COPY ... TO STDOUT` writes it in its text format, as pg_dump writes a
    /// table's data: each column's output, its backslashes and control characters escaped,
    /// separated by tabs, `\N` for NULL. Reading it costs the server what a dump's data does,
    /// less than half the cost of `ROW(...)::text`.
    Copy,
}

/// The namespace a fingerprint file's SSH signature (`FILE.sig`) is made in: a signature of a
/// drill's evidence cannot stand for one.
pub const SIGNATURE_NAMESPACE: &str = "pgdrill-fingerprint@pgdrill.dev";

/// Where a fingerprint file's signature is kept: beside it, `.sig` added.
pub fn signature_path(file: &Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".sig");
    name.into()
}

/// What each fingerprint's transaction sets first (`SET LOCAL`): every setting that changes the
/// text a value is read as, so that the source and the restore, whatever their databases' and
/// roles' settings, read the same value as the same text; and `row_security = off`, so that a
/// policy that would hide rows makes the query fail rather than fingerprint a part.
pub const SETTINGS: &[(&str, &str)] = &[
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
    ("xmlbinary", "base64"),
    ("xmloption", "content"),
    ("search_path", "pg_catalog, pg_temp"),
    ("row_security", "off"),
    ("work_mem", "256MB"),
];

/// What a check's evidence says of how its digest was computed, beside the query that defines it.
pub(crate) const HOW: &str = "-- pgdrill read the rows with COPY on several sessions in one snapshot, hashed each row's text \
     and sorted the digests itself: this query computes the same digest in the server";

/// [`SETTINGS`] as the statements a reader runs first to compute a fingerprint again.
pub fn settings_sql() -> String {
    let set: Vec<String> = SETTINGS.iter().map(|(k, v)| format!("SET {k} = {}", crate::pg::quote_literal(v))).collect();
    set.join("; ")
}

/// A fingerprint file: `pgdrill fingerprint` writes it beside a backup, a drill compares with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FingerprintFile {
    /// The file's format and version: [`SCHEMA`] (or a format read as it).
    pub schema: String,
    /// When it was taken (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: OffsetDateTime,
    /// The database it was taken on.
    pub database: String,
    /// The server's version, as `server_version` shows it.
    pub server_version: String,
    /// The exported snapshot it was taken in: the dump made with `pg_dump --snapshot` of the
    /// same id holds exactly these rows.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// The dump made in the same snapshot, when `pgdrill fingerprint --dump` made it.
    #[serde(default)]
    pub dump: Option<DumpMade>,
    /// Each table's fingerprint, in the order they were taken; never none (a file that
    /// fingerprints no table is refused).
    pub tables: Vec<TableFingerprint>,
}

/// A dump made in the fingerprint's snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpMade {
    /// Where it was written, as `--dump` named it.
    pub file: String,
    /// Its sha256 (hex); a directory-format dump's is its table of contents' (`toc.dat`).
    pub sha256: String,
}

/// One table's fingerprint: whole, or by ranges of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFingerprint {
    /// The table, written `schema.table`, quoted where it needs to be.
    pub table: QualifiedName,
    /// The columns hashed, in order, with their types.
    pub columns: Vec<Column>,
    /// The row's text that was hashed (`record` where a file or trail does not say).
    #[serde(default)]
    pub row_text: RowText,
    /// The key the ranges split, when there are ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Each range's fingerprint, in the key's order; a table taken whole has one, without
    /// bounds.
    pub ranges: Vec<RangeFingerprint>,
    /// Only some of the key's ranges were taken (a sample): of how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_of: Option<usize>,
    /// Rows in all the ranges taken.
    pub rows: u64,
    /// The digest of the ranges' digests, in order: what one line of a report shows.
    pub sha256: String,
}

/// A column a fingerprint hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type, as `format_type` prints it (`numeric(12,2)`).
    #[serde(rename = "type")]
    pub type_name: String,
}

/// The rows whose key is above `after` (when given) and at most `upto` (when given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeFingerprint {
    /// The key's value the range starts after (itself left out), as text; none for the first
    /// range.
    #[serde(default)]
    pub after: Option<String>,
    /// The key's value the range ends at (itself in), as text; none for the last range.
    #[serde(default)]
    pub upto: Option<String>,
    /// Its rows.
    pub rows: u64,
    /// The digest of its rows (hex): the sha256 of its rows' sha256 digests in byte order.
    pub sha256: String,
}

impl RangeFingerprint {
    /// `id in (100, 200]`, `id <= 100`, `id > 200`, or `all rows`.
    pub fn describe(&self, key: Option<&str>) -> String {
        describe_span(self.after.as_deref(), self.upto.as_deref(), key)
    }

    /// The same rows, counted and hashed again.
    pub fn same_as(&self, other: &RangeFingerprint) -> bool {
        self.rows == other.rows && self.sha256 == other.sha256
    }
}

impl TableFingerprint {
    /// Puts the ranges together: their rows, and the digest of their digests.
    pub fn new(
        table: QualifiedName,
        columns: Vec<Column>,
        row_text: RowText,
        key: Option<String>,
        ranges: Vec<RangeFingerprint>,
        sampled_of: Option<usize>,
    ) -> Self {
        let rows = ranges.iter().map(|r| r.rows).sum();
        let sha256 = combine(&ranges);
        TableFingerprint { table, columns, row_text, key, ranges, sampled_of, rows, sha256 }
    }

    /// `1885 rows, sha256 1f2e3d4c5b6a…`, and the sample when it is one.
    pub fn summary(&self) -> String {
        let sample = match self.sampled_of {
            Some(of) => format!(" in {} of {of} key ranges", self.ranges.len()),
            None => String::new(),
        };
        format!("{} rows{sample}, sha256 {}", self.rows, short(&self.sha256))
    }
}

/// One range's digest is the table's; several are hashed together, in order, with their bounds.
fn combine(ranges: &[RangeFingerprint]) -> String {
    if let [only] = ranges
        && only.after.is_none()
        && only.upto.is_none()
    {
        return only.sha256.clone();
    }
    let mut hasher = Sha256::new();
    for r in ranges {
        let line = format!(
            "{}\t{}\t{}\t{}\n",
            r.after.as_deref().unwrap_or(""),
            r.upto.as_deref().unwrap_or(""),
            r.rows,
            r.sha256
        );
        hasher.update(line.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The rows whose `key` is in `(after, upto]`, in words.
pub fn describe_span(after: Option<&str>, upto: Option<&str>, key: Option<&str>) -> String {
    let key = key.unwrap_or("key");
    match (after, upto) {
        (None, None) => "all rows".into(),
        (Some(a), Some(u)) => format!("{key} in ({a}, {u}]"),
        (None, Some(u)) => format!("{key} <= {u}"),
        (Some(a), None) => format!("{key} > {a}"),
    }
}

/// An append-only table's key ranges as the last drill of the scenario that proved them
/// recorded them: what the next drill's restore must still hold, unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trail {
    pub(crate) drill_id: String,
    pub(crate) started_at: OffsetDateTime,
    pub(crate) fingerprint: TableFingerprint,
}

/// Each table's [`Trail`], by its name as the check writes it.
pub(crate) type Trails = std::collections::BTreeMap<QualifiedName, Trail>;

/// The first 12 hex digits, for a line of a report.
pub fn short(sha256: &str) -> String {
    format!("{}…", sha256.get(..12).unwrap_or(sha256))
}

/// Why a fingerprint file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file cannot be read.
    #[error("cannot read the fingerprint file `{}`", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a fingerprint file pgdrill reads: not one at all, of another format, or
    /// one that proves nothing (no table, a table without a range, a digest that is not one).
    #[error("`{}` is not a pgdrill fingerprint file: {reason}", path.display())]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl FingerprintFile {
    /// Reads the fingerprint file at `path`, as [`FingerprintFile::parse`] reads its bytes.
    pub fn load(path: &Path) -> Result<FingerprintFile, FileError> {
        let bytes = std::fs::read(path).map_err(|source| FileError::Read { path: path.to_owned(), source })?;
        FingerprintFile::parse(&bytes, path)
    }

    /// The file's `bytes` (read once: the bytes a signature was checked against are the ones
    /// read), of a format pgdrill reads ([`SCHEMA`], or `v1`), its format told before its
    /// content is read; `path` names it in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<FingerprintFile, FileError> {
        /// A file's format, whatever else it holds.
        #[derive(Deserialize)]
        struct Format {
            schema: String,
        }
        let format = |reason: String| FileError::Format { path: path.to_owned(), reason };
        let found: Format = serde_json::from_slice(bytes).map_err(|e| format(e.to_string()))?;
        if !SCHEMAS_READ.contains(&found.schema.as_str()) {
            let read: Vec<String> = SCHEMAS_READ.iter().map(|s| format!("`{s}`")).collect();
            return Err(format(format!("its schema is `{}`, not {}", found.schema, read.join(" or "))));
        }
        let file: FingerprintFile = serde_json::from_slice(bytes).map_err(|e| format(e.to_string()))?;
        if file.tables.is_empty() {
            return Err(format("it fingerprints no table: a comparison with nothing passes on any restore".into()));
        }
        for t in &file.tables {
            if t.ranges.is_empty() || t.columns.is_empty() {
                return Err(format(format!("`{}` has no range or no column", t.table)));
            }
            if t.ranges.iter().any(|r| r.sha256.len() != 64 || !r.sha256.bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(format(format!("`{}` has a range whose sha256 is not 64 hex digits", t.table)));
            }
            if t.ranges.len() > 1 && t.key.is_none() {
                return Err(format(format!("`{}` has several ranges and no key", t.table)));
            }
        }
        Ok(file)
    }

    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn range(after: Option<&str>, upto: Option<&str>, sha: char) -> RangeFingerprint {
        RangeFingerprint {
            after: after.map(str::to_owned),
            upto: upto.map(str::to_owned),
            rows: 10,
            sha256: sha.to_string().repeat(64),
        }
    }

    /// A fingerprint file's text in `format`, of one table named `table` as the file writes it
    /// (JSON-escaped).
    pub(crate) fn file_text(format: &str, table: &str) -> String {
        let sha = "a".repeat(64);
        format!(
            r#"{{"schema": "{format}", "taken_at": "2026-11-22T00:00:00Z", "database": "shop", "server_version": "17.11",
  "tables": [{{"table": "{table}", "columns": [{{"name": "id", "type": "integer"}}],
    "ranges": [{{"rows": 3, "sha256": "{sha}"}}], "rows": 3, "sha256": "{sha}"}}]}}"#
        )
    }

    #[test]
    fn a_v1_file_reads_as_the_same_names_as_v2() {
        let path = Path::new("shop.fingerprint.json");
        let v1 = FingerprintFile::parse(file_text("pgdrill.fingerprint.v1", r#"public.\"Track\""#).as_bytes(), path);
        let v2 = FingerprintFile::parse(file_text("pgdrill.fingerprint.v2", r#"public.\"Track\""#).as_bytes(), path);
        let (v1, v2) = (v1.unwrap(), v2.unwrap());
        assert_eq!(v1.tables[0].table, QualifiedName::new("public", "Track"));
        assert_eq!(v1.tables, v2.tables);
        assert_eq!(v1.tables[0].row_text, RowText::Record, "v1 and v2 files hashed ROW(...)::text");
        assert_eq!(SCHEMA, "pgdrill.fingerprint.v3");
    }

    #[test]
    fn a_name_that_does_not_read_or_another_format_fails_the_file_naming_it() {
        let path = Path::new("shop.fingerprint.json");
        let bad = FingerprintFile::parse(file_text(SCHEMA, r#"public.\"unterminated"#).as_bytes(), path);
        let message = bad.unwrap_err().to_string();
        assert!(message.starts_with("`shop.fingerprint.json` is not a pgdrill fingerprint file: "), "{message}");
        assert!(
            message.contains(r#"not a qualified name: `public."unterminated` has an unterminated quoted name"#),
            "{message}"
        );
        let other = FingerprintFile::parse(file_text("pgdrill.fingerprint.v9", "public.t").as_bytes(), path);
        assert_eq!(
            other.unwrap_err().to_string(),
            "`shop.fingerprint.json` is not a pgdrill fingerprint file: its schema is `pgdrill.fingerprint.v9`, \
             not `pgdrill.fingerprint.v3` or `pgdrill.fingerprint.v2` or `pgdrill.fingerprint.v1`"
        );
    }

    #[test]
    fn a_whole_table_is_its_one_range_and_ranges_combine_with_their_bounds() {
        let t = QualifiedName::new("public", "t");
        let whole = TableFingerprint::new(t.clone(), vec![], RowText::Copy, None, vec![range(None, None, 'a')], None);
        assert_eq!(whole.sha256, "a".repeat(64));
        let split = |upto: &str| {
            TableFingerprint::new(
                t.clone(),
                vec![],
                RowText::Copy,
                Some("id".into()),
                vec![range(None, Some(upto), 'a'), range(Some(upto), None, 'b')],
                None,
            )
        };
        assert_eq!(split("5").rows, 20);
        assert_ne!(split("5").sha256, split("6").sha256, "the bounds are part of the digest");
        assert_eq!(range(Some("1"), Some("9"), 'a').describe(Some("id")), "id in (1, 9]");
    }
}
