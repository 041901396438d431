//! An archive's table of contents, as pg_restore reads it after the header (`ReadToc`): one entry
//! per object, each with its kind (`desc`: `TABLE`, `TABLE DATA`, `SEQUENCE SET`, `INDEX`, ...)
//! and, for the reading of a custom archive's data (`dump::blocks`), its id, its COPY statement
//! and where its data is; and what the kinds of a dump's entries say of its
//! content: a schema and its data, the schema only (`pg_dump --schema-only`), the data only
//! (`--data-only`). A plain dump names the same kinds in its `-- Name: ...; Type: ...` comments.

use std::collections::BTreeSet;
use std::io::{self, Read};

use super::Format;
use super::archive::{
    ArchiveError, ArchiveHeader, FIRST_MEMBER, HeaderReader, Layout, header_of, header_reader, tar_member,
};

/// The newest archive version whose entries pgdrill reads (pg_dump 17's): a later one may add
/// fields, and its kinds are not read rather than misread.
const NEWEST_MINOR: u8 = 16;

/// At most this many entries (a table of contents claiming more is not pg_dump's).
const MOST_ENTRIES: i64 = 50_000_000;

/// Reads the header at the start of a custom archive or of a `toc.dat`, then its table of
/// contents: the kinds of its entries (`TABLE`, `TABLE DATA`, `SEQUENCE SET`, ...), or none when
/// the table does not read whole (cut short, or of an archive version pgdrill does not know).
pub fn read_header_and_kinds(reader: impl Read) -> Result<(ArchiveHeader, Option<BTreeSet<String>>), ArchiveError> {
    let mut r = header_reader(reader);
    let (header, layout) = header_of(&mut r)?;
    Ok((header, kinds(&mut r, layout)))
}

/// Reads the head of a tar-format archive: its first member, which must be `toc.dat`, read as
/// [`read_header_and_kinds`] reads a custom archive's start (a `toc.dat` larger than 16 MiB has
/// its kinds left unread). The rest of the archive is not read.
pub fn read_tar_head(mut reader: impl Read) -> Result<(ArchiveHeader, Option<BTreeSet<String>>), ArchiveError> {
    let mut block = [0u8; 512];
    reader.read_exact(&mut block).map_err(|_| ArchiveError::Truncated)?;
    let (name, size) = tar_member(&block)?;
    if name != "toc.dat" {
        return Err(ArchiveError::Invalid(format!("its first member is `{name}`, not `toc.dat`")));
    }
    read_header_and_kinds(reader.take(size.min(FIRST_MEMBER)))
}

/// Reads a custom or tar archive's structure as verify checks it: a custom archive's header and
/// table of contents (its data blocks are left to the caller), a tar's every member to its end
/// marker, its `toc.dat`'s header and table of contents.
pub fn read_structure(
    format: Format,
    reader: impl Read,
) -> Result<(ArchiveHeader, Option<BTreeSet<String>>), ArchiveError> {
    if format != Format::Tar {
        return read_header_and_kinds(reader);
    }
    let mut header = None;
    super::archive::check_tar(reader, |first| header = Some(read_header_and_kinds(first)))?;
    header.unwrap_or(Err(ArchiveError::Truncated))
}

/// The kinds of the entries of the table of contents `r` is at, or none when it does not read
/// whole: cut short, of a version pgdrill does not know, or not pg_dump's.
fn kinds<R: Read>(r: &mut HeaderReader<R>, layout: Layout) -> Option<BTreeSet<String>> {
    entries(r, layout).map(|entries| entries.into_iter().map(|e| e.kind).collect())
}

/// Where an entry's data is, as a custom archive's table of contents says (`ReadOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DataAt {
    /// The entry has no data (`K_OFFSET_NO_DATA`), or the archive is not a custom one.
    Nowhere,
    /// Its data block starts at this byte of the file (`K_OFFSET_POS_SET`).
    Offset(u64),
    /// It has a data block, written where pg_dump could not say (`K_OFFSET_POS_NOT_SET`: its
    /// output was a pipe).
    Unknown,
}

/// One entry of an archive's table of contents: what pgdrill reads of it.
#[derive(Debug, Clone)]
pub(super) struct TocEntry {
    pub dump_id: i64,
    /// `TABLE`, `TABLE DATA`, `SEQUENCE SET`, ...
    pub kind: String,
    /// The object's name (`items`), as pg_dump tags it.
    pub tag: String,
    /// Whether pg_dump wrote data for it (`hadDumper`).
    pub had_dumper: bool,
    /// Whether its definition, the SQL pg_restore runs for it, is empty (a table's data).
    pub no_definition: bool,
    /// `COPY public.items (id, name) FROM stdin;`: the statement its data follows.
    pub copy: Option<String>,
    pub data: DataAt,
}

/// The entries of the table of contents `r` is at (see [`kinds`]).
pub(super) fn entries<R: Read>(r: &mut HeaderReader<R>, layout: Layout) -> Option<Vec<TocEntry>> {
    if !(12..=NEWEST_MINOR).contains(&layout.minor) {
        return None;
    }
    let count = r.int().ok()?;
    if !(0..=MOST_ENTRIES).contains(&count) {
        return None;
    }
    (0..count).map(|_| entry(r, layout)).collect()
}

/// One entry (pg_dump's `ReadToc`, archive versions 1.12 to 1.16).
fn entry<R: Read>(r: &mut HeaderReader<R>, layout: Layout) -> Option<TocEntry> {
    let dump_id = r.int().ok()?;
    let had_dumper = r.int().ok()? != 0;
    if dump_id <= 0 {
        return None;
    }
    // The table's and the object's OIDs, then the tag.
    skip(r, 2)?;
    let tag = r.string().ok()?.unwrap_or_default();
    let kind = r.string().ok()??;
    if kind.is_empty() || kind.len() > 64 || !kind.bytes().all(|b| b.is_ascii_uppercase() || b == b' ') {
        return None;
    }
    let _section = r.int().ok()?;
    let no_definition = long_string(r)?.is_none_or(|len| len == 0);
    skip(r, 1)?; // the drop statement
    let copy = r.string().ok()?.filter(|c| !c.is_empty());
    // The schema, the tablespace.
    skip(r, 2)?;
    if layout.minor >= 14 {
        skip(r, 1)?; // the table access method
    }
    if layout.minor >= 16 {
        r.int().ok()?; // the relation's kind
    }
    // The owner, and `WITH OIDS` (`false`).
    skip(r, 2)?;
    // The entries it depends on, a list that ends with a null string.
    while long_string(r)?.is_some() {}
    let data = match layout.custom {
        true => data_at(r, layout)?,
        // The file its data is in.
        false => {
            skip(r, 1)?;
            DataAt::Nowhere
        }
    };
    Some(TocEntry { dump_id, kind, tag, had_dumper, no_definition, copy, data })
}

/// Where a custom archive's entry has its data: a flag, then the offset (`ReadOffset`).
fn data_at<R: Read>(r: &mut HeaderReader<R>, layout: Layout) -> Option<DataAt> {
    let flag = r.byte().ok()?;
    let mut offset: u64 = 0;
    for i in 0..layout.offset_size {
        let b = u64::from(r.byte().ok()?);
        if i < 8 {
            offset |= b << (8 * i);
        } else if b != 0 {
            return None;
        }
    }
    match flag {
        1 => Some(DataAt::Unknown),
        2 => Some(DataAt::Offset(offset)),
        3 => Some(DataAt::Nowhere),
        _ => None,
    }
}

/// Skips `n` strings, of any length (a function's definition can be long).
fn skip<R: Read>(r: &mut HeaderReader<R>, n: usize) -> Option<()> {
    for _ in 0..n {
        long_string(r)?;
    }
    Some(())
}

/// Reads past one string without keeping it: its length, or none for a null string.
fn long_string<R: Read>(r: &mut HeaderReader<R>) -> Option<Option<u64>> {
    let len = r.int().ok()?;
    if len < 0 {
        return Some(None);
    }
    let len = u64::try_from(len).ok()?;
    let skipped = io::copy(&mut (&mut r.inner).take(len), &mut io::sink()).ok()?;
    (skipped == len).then_some(Some(len))
}

/// What a dump holds, by the kinds of its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// A schema and its data.
    Full,
    /// Objects and no data (`pg_dump --schema-only`, or a database with no table or sequence).
    SchemaOnly,
    /// Data and no objects (`pg_dump --data-only`).
    DataOnly,
}

impl Content {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Content::Full => "full",
            Content::SchemaOnly => "schema-only",
            Content::DataOnly => "data-only",
        }
    }

    /// What entries of `kinds` hold: none when they hold neither objects nor data (a dump
    /// without pg_dump's entries, or whose table of contents did not read).
    pub fn of(kinds: &BTreeSet<String>) -> Option<Content> {
        let data = kinds.iter().any(|k| is_data(k));
        let schema = kinds.iter().any(|k| !is_data(k) && !NEITHER.contains(&k.as_str()));
        match (schema, data) {
            (true, true) => Some(Content::Full),
            (true, false) => Some(Content::SchemaOnly),
            (false, true) => Some(Content::DataOnly),
            (false, false) => None,
        }
    }
}

/// Entries of a data section: rows, sequences' values, large objects' contents.
fn is_data(kind: &str) -> bool {
    matches!(kind, "TABLE DATA" | "SEQUENCE SET" | "BLOBS" | "BLOB DATA" | "LARGE OBJECTS")
}

/// Entries that say nothing of what a dump holds: the session's settings, the planner's
/// statistics, the database itself (an archive has it even with `--data-only`), and what is said
/// of other entries (their comments, privileges and labels).
const NEITHER: [&str; 9] = [
    "ENCODING",
    "STDSTRINGS",
    "SEARCHPATH",
    "STATISTICS DATA",
    "DATABASE",
    "DATABASE PROPERTIES",
    "COMMENT",
    "ACL",
    "SECURITY LABEL",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/backups").join(name)
    }

    #[test]
    fn the_kinds_of_pg_dumps_archives_say_they_are_full() {
        let custom = std::fs::File::open(fixture("prismeai.dump")).unwrap();
        let (header, kinds) = read_header_and_kinds(std::io::BufReader::new(custom)).unwrap();
        let kinds = kinds.expect("the table of contents reads whole");
        assert_eq!(header.database, "prismeai");
        for kind in ["TABLE", "TABLE DATA", "INDEX", "SEQUENCE SET"] {
            assert!(kinds.contains(kind), "{kind}: {kinds:?}");
        }
        assert_eq!(Content::of(&kinds), Some(Content::Full));
        let toc = std::fs::File::open(fixture("prismeai.dir/toc.dat")).unwrap();
        let (_, directory) = read_header_and_kinds(std::io::BufReader::new(toc)).unwrap();
        assert_eq!(directory.as_ref(), Some(&kinds), "the same dump in the directory format");
        let tar = std::fs::read(fixture("prismeai.tar")).unwrap();
        let mut first = None;
        crate::dump::archive::check_tar(&tar[..], |toc| first = Some(read_header_and_kinds(toc).unwrap().1)).unwrap();
        assert_eq!(first.flatten().as_ref(), Some(&kinds), "the same dump in the tar format");
    }

    #[test]
    fn a_table_of_contents_cut_short_says_nothing() {
        let custom = std::fs::read(fixture("prismeai.dump")).unwrap();
        let (_, whole) = read_header_and_kinds(&custom[..]).unwrap();
        let toc_end = custom.windows(10).position(|w| w == b"TABLE DATA").unwrap();
        let (_, cut) = read_header_and_kinds(&custom[..toc_end]).unwrap();
        assert!(whole.is_some() && cut.is_none(), "{cut:?}");
    }

    #[test]
    fn the_kinds_say_what_a_dump_holds() {
        let of = |kinds: &[&str]| Content::of(&kinds.iter().map(|k| (*k).to_owned()).collect());
        assert_eq!(of(&["ENCODING", "SCHEMA", "TABLE", "TABLE DATA", "INDEX"]), Some(Content::Full));
        assert_eq!(of(&["ENCODING", "TABLE", "INDEX", "ACL"]), Some(Content::SchemaOnly));
        assert_eq!(
            of(&["ENCODING", "STDSTRINGS", "SEARCHPATH", "TABLE DATA", "SEQUENCE SET"]),
            Some(Content::DataOnly)
        );
        // pg_dump -Fc --data-only (17 and 18) keeps the database's own entry.
        let data_only = ["DATABASE", "ENCODING", "SEARCHPATH", "SEQUENCE SET", "STDSTRINGS", "TABLE DATA"];
        assert_eq!(of(&data_only), Some(Content::DataOnly));
        assert_eq!(of(&["DATABASE", "COMMENT", "ACL", "TABLE"]), Some(Content::SchemaOnly));
        assert_eq!(of(&["ENCODING", "STDSTRINGS"]), None);
        assert_eq!(of(&[]), None);
    }
}
