//! A custom archive's data, read by pgdrill as pg_restore reads it (`_PrintTocData`): after the
//! table of contents, a block for each entry with data, each a type byte (`1` a table's data, `3`
//! large objects), the entry's id, then its data in chunks (a length, then that many bytes; a
//! zero length ends it), compressed as the header says (zlib, LZ4 frames, zstd, or not at all);
//! large objects are a list of such streams, each after its OID, ended by a zero OID.
//!
//! Verify reads every block so that a damaged or cut archive fails before its restore, and
//! counts the rows of each table's COPY data; the SQL the target's pg_restore then writes for
//! the scan leaves those entries out (see [`ArchiveData::others`]), and the restore reads the
//! same blocks: each block must be where the table of contents says, once, so pg_restore cannot
//! load other bytes than those read here.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};

use super::archive::{ArchiveError, ArchiveHeader, HeaderReader, header_of, header_reader};
use super::toc::{DataAt, TocEntry, entries};

/// A table's COPY data, as pg_restore loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Copied {
    /// `entry 3391 (TABLE DATA items)`.
    pub(crate) entry: String,
    /// `COPY public.items (id, name) FROM stdin;`, as the table of contents holds it.
    pub(crate) statement: String,
    /// Its lines: the rows it loads.
    pub(crate) rows: u64,
}

/// What reading a custom archive's data found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ArchiveData {
    /// The tables' COPY data pgdrill read, in the order of the table of contents. Only an entry
    /// that is a table's data and nothing else (no definition of its own) is here.
    pub(crate) copies: Vec<Copied>,
    /// pg_restore's list (`-L`) of every other entry, one id a line: what pg_restore must still
    /// write as SQL for the archive to be scanned whole.
    pub(crate) others: String,
    /// The data's bytes after decompression.
    pub(crate) bytes: u64,
}

/// A custom archive read to its end: its header, its entries' kinds, and its data, or none of
/// either when its table of contents does not read (of an archive version pgdrill does not know).
pub(crate) struct Walked {
    pub(crate) header: ArchiveHeader,
    pub(crate) kinds: Option<BTreeSet<String>>,
    pub(crate) data: Option<ArchiveData>,
}

/// Reads a custom archive from its first byte to its last: header, table of contents, and every
/// data block. An archive whose table of contents pgdrill does not read is read to its end
/// without its blocks being read.
pub(crate) fn read_custom(reader: impl Read) -> Result<Walked, ArchiveError> {
    let mut r = header_reader(Counting { inner: reader, position: 0 });
    let (header, layout) = header_of(&mut r)?;
    let Some(toc) = entries(&mut r, layout) else {
        io::copy(&mut r.inner, &mut io::sink())?;
        return Ok(Walked { header, kinds: None, data: None });
    };
    let kinds = toc.iter().map(|e| e.kind.clone()).collect();
    let codec = Codec::of(&header.compression)?;
    let data = walk(&mut r, &toc, codec)?;
    Ok(Walked { header, kinds: Some(kinds), data: Some(data) })
}

/// A reader that counts the bytes read through it: where in the file a block starts.
struct Counting<R> {
    inner: R,
    position: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// A table's data block (`BLK_DATA`), and large objects' (`BLK_BLOBS`).
const BLK_DATA: u8 = 1;
const BLK_BLOBS: u8 = 3;

/// How the data blocks are compressed.
#[derive(Debug, Clone, Copy)]
enum Codec {
    None,
    Zlib,
    Lz4,
    Zstd,
}

impl Codec {
    fn of(compression: &str) -> Result<Codec, ArchiveError> {
        Ok(match compression {
            "none" => Codec::None,
            c if c.starts_with("gzip") => Codec::Zlib,
            "lz4" => Codec::Lz4,
            "zstd" => Codec::Zstd,
            other => return Err(ArchiveError::Invalid(format!("its data is compressed with {other}"))),
        })
    }
}

/// Reads every data block after the table of contents `toc`, to the archive's end.
fn walk<R: Read>(
    r: &mut HeaderReader<Counting<R>>,
    toc: &[TocEntry],
    codec: Codec,
) -> Result<ArchiveData, ArchiveError> {
    let by_id = with_data(toc)?;
    let mut rows: Vec<Option<u64>> = vec![None; toc.len()];
    let mut read = vec![false; toc.len()];
    let mut bytes = 0;
    loop {
        let at = r.inner.position;
        let mut kind = [0u8; 1];
        if r.inner.read(&mut kind)? == 0 {
            break;
        }
        if kind[0] != BLK_DATA && kind[0] != BLK_BLOBS {
            return Err(invalid(format!("a data block at byte {at} is of an unknown type ({})", kind[0])));
        }
        let id = r.int().map_err(|_| cut(None, at))?;
        let Some(&i) = by_id.get(&id) else {
            return Err(invalid(format!("a data block at byte {at} is of entry {id}, which has no data")));
        };
        let entry = &toc[i];
        if std::mem::replace(&mut read[i], true) {
            return Err(invalid(format!("{} has two data blocks", named(entry))));
        }
        if let DataAt::Offset(offset) = entry.data
            && offset != at
        {
            return Err(invalid(format!("{}'s data is at byte {at}, not at {offset} as its entry says", named(entry))));
        }
        if kind[0] == BLK_DATA {
            let copy = copy_of(entry).is_some();
            let mut lines = Lines::new(copy);
            stream(r, codec, &mut lines).map_err(|e| damaged(entry, e))?;
            bytes += lines.bytes;
            rows[i] = copy.then(|| lines.finish()).transpose().map_err(|e| damaged(entry, e))?;
            continue;
        }
        // Large objects: each after its OID, up to a zero OID.
        while r.int().map_err(|_| cut(Some(entry), at))? != 0 {
            let mut lines = Lines::new(false);
            stream(r, codec, &mut lines).map_err(|e| damaged(entry, e))?;
            bytes += lines.bytes;
        }
    }
    if let Some(missing) = toc.iter().zip(&read).find(|(e, read)| matches!(e.data, DataAt::Offset(_)) && !**read) {
        return Err(cut(Some(missing.0), r.inner.position));
    }
    Ok(sorted(toc, &rows, bytes))
}

/// The entries with data, by id; each id must be one entry's (pg_restore's list names entries
/// by id: two of one id are not pg_dump's).
fn with_data(toc: &[TocEntry]) -> Result<HashMap<i64, usize>, ArchiveError> {
    let mut ids = std::collections::HashSet::with_capacity(toc.len());
    if let Some(twice) = toc.iter().find(|e| !ids.insert(e.dump_id)) {
        return Err(invalid(format!("two entries of its table of contents have the id {}", twice.dump_id)));
    }
    Ok(toc.iter().enumerate().filter(|(_, e)| e.data != DataAt::Nowhere).map(|(i, e)| (e.dump_id, i)).collect())
}

/// The COPY entries read and the list of the others.
fn sorted(toc: &[TocEntry], rows: &[Option<u64>], bytes: u64) -> ArchiveData {
    let mut data = ArchiveData { bytes, ..ArchiveData::default() };
    for (entry, rows) in toc.iter().zip(rows) {
        match (copy_of(entry), rows) {
            (Some(statement), Some(rows)) => {
                data.copies.push(Copied { entry: named(entry), statement: statement.to_owned(), rows: *rows })
            }
            _ => data.others.push_str(&format!("{}\n", entry.dump_id)),
        }
    }
    data
}

/// The COPY statement of an entry that is a table's data and nothing else: what pg_restore runs
/// for it is that statement and its rows (its definition, which it would run too, is empty).
fn copy_of(entry: &TocEntry) -> Option<&str> {
    let only_data = entry.kind == "TABLE DATA" && entry.had_dumper && entry.no_definition;
    entry.copy.as_deref().filter(|_| only_data)
}

/// `entry 3391 (TABLE DATA items)`, the tag as the archive has it, its first 64 characters
/// and without control characters.
fn named(entry: &TocEntry) -> String {
    let tag: String = entry.tag.chars().filter(|c| !c.is_control()).take(64).collect();
    format!("entry {} ({} {tag})", entry.dump_id, entry.kind)
}

fn invalid(why: String) -> ArchiveError {
    ArchiveError::Data(why)
}

/// The archive ends inside a block, or before a block its table of contents places.
fn cut(entry: Option<&TocEntry>, at: u64) -> ArchiveError {
    let of = entry.map(|e| format!(" of {}", named(e))).unwrap_or_default();
    ArchiveError::Data(format!("it ends at byte {at}, inside or before the data{of}: it was cut short"))
}

fn damaged(entry: &TocEntry, error: io::Error) -> ArchiveError {
    match error.kind() {
        io::ErrorKind::UnexpectedEof => ArchiveError::Data(format!("the data of {} is cut short", named(entry))),
        _ => ArchiveError::Data(format!("the data of {} does not read: {error}", named(entry))),
    }
}

/// Reads one compressed stream of chunks into `sink`, through to its zero length.
fn stream<R: Read>(r: &mut HeaderReader<Counting<R>>, codec: Codec, sink: &mut Lines) -> io::Result<()> {
    let mut chunks = Chunks { r, left: 0, ended: false };
    match codec {
        Codec::None => drain(&mut chunks, sink)?,
        Codec::Zlib => drain(flate2::read::ZlibDecoder::new(&mut chunks), sink)?,
        Codec::Lz4 => drain(lz4_flex::frame::FrameDecoder::new(&mut chunks), sink)?,
        Codec::Zstd => drain(zstd::stream::read::Decoder::new(&mut chunks)?, sink)?,
    }
    let extra = io::copy(&mut chunks, &mut io::sink())?;
    if extra > 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{extra} bytes after its compressed stream")));
    }
    Ok(())
}

fn drain(mut from: impl Read, sink: &mut Lines) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match from.read(&mut buf)? {
            0 => return Ok(()),
            n => sink.note(&buf[..n])?,
        }
    }
}

/// A block's chunks, read as one stream: a length, that many bytes, ..., a zero length.
struct Chunks<'a, R> {
    r: &'a mut HeaderReader<Counting<R>>,
    left: u64,
    ended: bool,
}

impl<R: Read> Read for Chunks<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.left == 0 {
            if self.ended {
                return Ok(0);
            }
            let len = self.r.int().map_err(|e| match e {
                ArchiveError::Io(e) => e,
                _ => io::ErrorKind::UnexpectedEof.into(),
            })?;
            match u64::try_from(len) {
                Ok(0) => self.ended = true,
                Ok(len) => self.left = len,
                Err(_) => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a chunk of {len} bytes"))),
            }
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.r.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Counts a table's COPY rows (its lines) as they are decompressed, up to COPY's end-of-data line
/// `\.` (pg_dump 17 ends a table's data with it and two empty lines; the server reads no further):
/// after it, nothing but empty lines may follow, since what does is no row.
struct Lines {
    copy: bool,
    rows: u64,
    bytes: u64,
    /// Bytes seen of the current line, up to 2.
    column: u8,
    backslash: bool,
    /// The `\.` line was read.
    ended: bool,
}

impl Lines {
    fn new(copy: bool) -> Self {
        Lines { copy, rows: 0, bytes: 0, column: 0, backslash: false, ended: false }
    }

    fn note(&mut self, buf: &[u8]) -> io::Result<()> {
        self.bytes += buf.len() as u64;
        if !self.copy {
            return Ok(());
        }
        let mut i = 0;
        while i < buf.len() {
            if self.ended {
                return match buf[i..].iter().all(|b| *b == b'\n') {
                    true => Ok(()),
                    false => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("it goes on after COPY's end-of-data line `\\.` (after row {})", self.rows),
                    )),
                };
            }
            if self.column >= 2 {
                match memchr::memchr(b'\n', &buf[i..]) {
                    Some(k) => {
                        self.rows += 1;
                        self.column = 0;
                        i += k + 1;
                    }
                    None => return Ok(()),
                }
                continue;
            }
            let b = buf[i];
            i += 1;
            if b == b'\n' {
                self.rows += 1;
                self.column = 0;
            } else if self.column == 0 {
                self.backslash = b == b'\\';
                self.column = 1;
            } else {
                // `\.` starts the end-of-data line: the rest must be its newline and empty lines.
                self.ended = self.backslash && b == b'.';
                self.column = 2;
            }
        }
        Ok(())
    }

    /// The rows, once the data has ended: its last row must end with its newline.
    fn finish(self) -> io::Result<u64> {
        if self.column != 0 && !self.ended {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "its last row does not end with a newline"));
        }
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/backups/prismeai.dump");
        std::fs::read(path).unwrap()
    }

    /// The entries of `archive`'s table of contents.
    fn toc(archive: &[u8]) -> Vec<TocEntry> {
        let mut r = header_reader(archive);
        let (_, layout) = header_of(&mut r).unwrap();
        entries(&mut r, layout).unwrap()
    }

    fn error(archive: &[u8]) -> String {
        match read_custom(archive) {
            Ok(_) => panic!("read"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_custom_archives_data_is_read_and_its_rows_counted() {
        let archive = fixture();
        let walked = read_custom(&archive[..]).unwrap();
        assert_eq!(walked.header.compression, "gzip");
        let data = walked.data.expect("its table of contents reads");
        // The same database restored: 897 rows in 6 tables (tests/drills/formats.rs).
        assert_eq!(data.copies.len(), 6, "{:?}", data.copies);
        assert_eq!(data.copies.iter().map(|c| c.rows).sum::<u64>(), 897);
        assert!(
            data.copies
                .iter()
                .all(|c| c.statement.starts_with("COPY public.") && c.statement.ends_with(" FROM stdin;\n"))
        );
        // The list holds every other entry, and none of the tables' data.
        let toc = toc(&archive);
        let listed: Vec<i64> = data.others.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(listed.len() + data.copies.len(), toc.len());
        let kinds: BTreeSet<&str> =
            toc.iter().filter(|e| listed.contains(&e.dump_id)).map(|e| e.kind.as_str()).collect();
        assert!(
            kinds.contains("TABLE") && kinds.contains("SEQUENCE SET") && !kinds.contains("TABLE DATA"),
            "{kinds:?}"
        );
        assert!(data.bytes > 0);
    }

    #[test]
    fn an_archive_cut_anywhere_in_its_data_is_cut_short() {
        let archive = fixture();
        let first = toc(&archive)
            .iter()
            .filter_map(|e| match e.data {
                DataAt::Offset(at) => Some(at as usize),
                _ => None,
            })
            .min()
            .unwrap();
        for end in [first, first + 3, first + 20, archive.len() - 1] {
            let said = error(&archive[..end]);
            assert!(said.contains("cut short"), "{end}: {said}");
        }
    }

    #[test]
    fn a_block_elsewhere_than_its_entry_says_or_twice_is_not_pg_dumps() {
        let archive = fixture();
        let toc = toc(&archive);
        let last = toc
            .iter()
            .filter_map(|e| match e.data {
                DataAt::Offset(at) => Some(at),
                _ => None,
            })
            .max()
            .unwrap();
        // The last block twice: pg_restore would find one of them, pgdrill read both.
        let twice = [&archive[..], &archive[last as usize..]].concat();
        assert!(error(&twice).contains("has two data blocks"), "{}", error(&twice));
        // Its entry pointing one byte further on.
        let mut said = vec![2u8];
        said.extend_from_slice(&last.to_le_bytes());
        let at = archive.windows(9).position(|w| w == said).unwrap();
        let mut moved = archive.clone();
        moved[at + 1..at + 9].copy_from_slice(&(last + 1).to_le_bytes());
        assert!(error(&moved).contains(&format!("data is at byte {last}, not at {}", last + 1)), "{}", error(&moved));
        // Bytes after the last block.
        let trailing = [&archive[..], &[7u8, 0, 1, 0, 0, 0][..]].concat();
        assert!(error(&trailing).contains("unknown type (7)"), "{}", error(&trailing));
    }

    #[test]
    fn two_entries_of_one_id_are_not_pg_dumps() {
        let mut toc = toc(&fixture());
        assert!(with_data(&toc).is_ok());
        toc[3].dump_id = toc[2].dump_id;
        let said = with_data(&toc).unwrap_err().to_string();
        assert!(
            said.contains(&format!("two entries of its table of contents have the id {}", toc[2].dump_id)),
            "{said}"
        );
    }

    #[test]
    fn rows_are_lines_up_to_the_end_of_data_line_wherever_a_chunk_ends() {
        // pg_dump 17's ending, and an ending without it.
        for data in [&b"1\tone\n2\ta \\\\. b\n\\\\.\n3\t\\N\n\\.\n\n\n"[..], b"1\tone\n2\ta\n\\\\.\n3\t\\N\n"] {
            for split in 0..data.len() {
                let mut lines = Lines::new(true);
                lines.note(&data[..split]).unwrap();
                lines.note(&data[split..]).unwrap();
                assert_eq!(lines.finish().unwrap(), 4, "split at {split}");
            }
        }
        let evil = b"1\tone\n\\.\n\\! touch x\n";
        for split in 0..evil.len() {
            let mut lines = Lines::new(true);
            let said = lines.note(&evil[..split]).and_then(|_| lines.note(&evil[split..])).unwrap_err().to_string();
            assert!(
                said.contains("goes on after COPY's end-of-data line `\\.` (after row 1)"),
                "split at {split}: {said}"
            );
        }
        let mut unended = Lines::new(true);
        unended.note(b"1\tone\n2\ttwo").unwrap();
        assert!(unended.finish().unwrap_err().to_string().contains("does not end with a newline"));
    }
}
