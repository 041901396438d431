//! pg_dump's archive formats (custom, directory, tar): the header every archive starts with
//! (`toc.dat` in a directory or tar), read without pg_restore so that a backup is identified and
//! its versions known before any target exists; and the structure checks that find a tar or a
//! directory cut short (the table of contents after the header is `toc`'s). Restoring them is the
//! target's own pg_restore's job.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

/// What an archive's header says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveHeader {
    /// Archive format version, e.g. `1.16` (pg_dump 17).
    pub version: String,
    /// custom, tar or directory.
    pub format: String,
    /// Compression of the data blocks: none, gzip, lz4, zstd.
    pub compression: String,
    /// The database that was dumped.
    pub database: String,
    /// `Dumped from database version`.
    pub source_version: String,
    /// `Dumped by pg_dump version`.
    pub pg_dump_version: String,
    /// When pg_dump began, as its header records it: the clock of the machine that ran it,
    /// without a time zone (read as UTC).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created: Option<time::OffsetDateTime>,
}

/// Why an archive does not read as pg_dump wrote it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// It ends inside its header.
    #[error("the archive header is cut short")]
    Truncated,
    /// It is not an archive pgdrill reads, or not whole: what is wrong with it (no `PGDMP`
    /// magic, an archive version before 1.12, a tar member cut short).
    #[error("the archive header is not pg_dump's ({0})")]
    Invalid(String),
    /// It could not be read (decompression or I/O).
    #[error("reading the archive failed")]
    Io(#[from] io::Error),
    /// Its data blocks are damaged, cut short, or not where its table of contents says.
    #[error("{0}")]
    Data(String),
}

pub(super) struct HeaderReader<R> {
    pub(super) inner: R,
    int_size: usize,
}

impl<R: Read> HeaderReader<R> {
    pub(super) fn byte(&mut self) -> Result<u8, ArchiveError> {
        let mut b = [0u8; 1];
        self.inner.read_exact(&mut b).map_err(eof)?;
        Ok(b[0])
    }

    pub(super) fn int(&mut self) -> Result<i64, ArchiveError> {
        let negative = self.byte()? != 0;
        let mut value: i64 = 0;
        for i in 0..self.int_size {
            let b = self.byte()? as i64;
            if i < 8 {
                value |= b << (8 * i);
            }
        }
        Ok(if negative { -value } else { value })
    }

    pub(super) fn string(&mut self) -> Result<Option<String>, ArchiveError> {
        let len = self.int()?;
        if len < 0 {
            return Ok(None);
        }
        if len > 1 << 20 {
            return Err(ArchiveError::Invalid(format!("a header string of {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        self.inner.read_exact(&mut buf).map_err(eof)?;
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }
}

fn eof(e: io::Error) -> ArchiveError {
    if e.kind() == io::ErrorKind::UnexpectedEof { ArchiveError::Truncated } else { ArchiveError::Io(e) }
}

/// Reads the header at the start of a custom archive or of a `toc.dat`.
pub fn read_header(reader: impl Read) -> Result<ArchiveHeader, ArchiveError> {
    let mut r = HeaderReader { inner: reader, int_size: 4 };
    header_of(&mut r).map(|(header, _)| header)
}

/// A reader at the start of an archive's header.
pub(super) fn header_reader<R: Read>(inner: R) -> HeaderReader<R> {
    HeaderReader { inner, int_size: 4 }
}

/// How an archive's table of contents is written: its format's version, the size of its data
/// offsets, its format (the entries of a custom archive end with an offset, the others' with a
/// file name).
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    pub minor: u8,
    pub offset_size: u8,
    pub custom: bool,
}

/// Reads the header (see [`read_header`]), and how the table of contents after it is written.
pub(super) fn header_of<R: Read>(r: &mut HeaderReader<R>) -> Result<(ArchiveHeader, Layout), ArchiveError> {
    let mut magic = [0u8; 5];
    r.inner.read_exact(&mut magic).map_err(eof)?;
    if &magic != b"PGDMP" {
        return Err(ArchiveError::Invalid("no PGDMP magic".into()));
    }
    let (major, minor, rev) = (r.byte()?, r.byte()?, r.byte()?);
    if major != 1 || minor < 12 {
        return Err(ArchiveError::Invalid(format!(
            "archive version {major}.{minor}.{rev} (pgdrill reads 1.12 and later: pg_dump 9.0 onwards)"
        )));
    }
    let int_size = r.byte()? as usize;
    if !(1..=16).contains(&int_size) {
        return Err(ArchiveError::Invalid(format!("an integer size of {int_size}")));
    }
    r.int_size = int_size;
    let offset_size = r.byte()?;
    let format = match r.byte()? {
        1 => "custom",
        3 => "tar",
        5 => "directory",
        other => return Err(ArchiveError::Invalid(format!("unknown archive format {other}"))),
    };
    let compression = if minor >= 15 {
        match r.byte()? {
            0 => "none".to_owned(),
            1 => "gzip".to_owned(),
            2 => "lz4".to_owned(),
            3 => "zstd".to_owned(),
            other => format!("unknown ({other})"),
        }
    } else {
        match r.int()? {
            0 => "none".to_owned(),
            -1 => "gzip".to_owned(),
            level => format!("gzip (level {level})"),
        }
    };
    // The creation time, a C `struct tm`: sec, min, hour, mday, mon (0-11), year (-1900), isdst.
    let mut tm = [0i64; 7];
    for field in &mut tm {
        *field = r.int()?;
    }
    let created = creation_time(&tm);
    let database = r.string()?.unwrap_or_default();
    let source_version = r.string()?.unwrap_or_default();
    let pg_dump_version = r.string()?.unwrap_or_default();
    let layout = Layout { minor, offset_size, custom: format == "custom" };
    let header = ArchiveHeader {
        version: format!("{major}.{minor}"),
        format: format.to_owned(),
        compression,
        database,
        source_version,
        pg_dump_version,
        created,
    };
    Ok((header, layout))
}

/// The header's `struct tm` as a UTC time; None when it is not a valid date.
fn creation_time(tm: &[i64; 7]) -> Option<time::OffsetDateTime> {
    let [sec, min, hour, mday, mon, year, _] = *tm;
    let month = time::Month::try_from(u8::try_from(mon + 1).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(year + 1900).ok()?, month, u8::try_from(mday).ok()?).ok()?;
    let clock =
        time::Time::from_hms(u8::try_from(hour).ok()?, u8::try_from(min).ok()?, u8::try_from(sec.min(59)).ok()?)
            .ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

/// A tar member's name and size, from its 512-byte header block.
pub(super) fn tar_member(block: &[u8; 512]) -> Result<(String, u64), ArchiveError> {
    let name = String::from_utf8_lossy(&block[..100]).trim_end_matches('\0').to_owned();
    let size_text = String::from_utf8_lossy(&block[124..136]).trim_matches(|c: char| c == '\0' || c == ' ').to_owned();
    let size = u64::from_str_radix(&size_text, 8)
        .map_err(|_| ArchiveError::Invalid(format!("member `{name}` has no readable size")))?;
    Ok((name, size))
}

/// How much of a tar archive's first member (its `toc.dat`) [`check_tar`] reads into memory: its
/// header and table of contents (a larger one's kinds are not read).
pub(super) const FIRST_MEMBER: u64 = 16 << 20;

/// Walks a tar archive to its end: every member whole, the end-of-archive blocks present.
/// Returns the names of its members; the first must be `toc.dat`.
pub fn check_tar(mut reader: impl Read, mut first: impl FnMut(&[u8])) -> Result<Vec<String>, ArchiveError> {
    let mut names = Vec::new();
    let mut block = [0u8; 512];
    loop {
        reader.read_exact(&mut block).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ArchiveError::Invalid(format!(
                "the tar archive ends after {} members, without its end marker: it was cut short",
                names.len()
            )),
            _ => ArchiveError::Io(e),
        })?;
        if block.iter().all(|b| *b == 0) {
            return Ok(names);
        }
        let (name, size) = tar_member(&block)?;
        let padded = size.div_ceil(512) * 512;
        let mut member = (&mut reader).take(padded);
        if names.is_empty() {
            let mut head = vec![0u8; size.min(FIRST_MEMBER) as usize];
            member.read_exact(&mut head).map_err(|_| ArchiveError::Invalid(format!("member `{name}` is cut short")))?;
            first(&head);
        }
        let copied = io::copy(&mut member, &mut io::sink())?;
        let expected = if names.is_empty() { padded - size.min(FIRST_MEMBER) } else { padded };
        if copied < expected {
            return Err(ArchiveError::Invalid(format!("member `{name}` is cut short: the tar archive was truncated")));
        }
        names.push(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: i64) -> Vec<u8> {
        let mut out = vec![u8::from(v < 0)];
        out.extend_from_slice(&(v.unsigned_abs() as u32).to_le_bytes());
        out
    }

    fn string(s: &str) -> Vec<u8> {
        let mut out = int(s.len() as i64);
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn header(minor: u8, format: u8) -> Vec<u8> {
        let mut h = b"PGDMP".to_vec();
        h.extend_from_slice(&[1, minor, 0, 4, 8, format]);
        if minor >= 15 {
            h.push(1);
        } else {
            h.extend(int(-1));
        }
        for v in [1, 2, 3, 4, 5, 126, 0] {
            h.extend(int(v));
        }
        h.extend(string("prismeai"));
        h.extend(string("17.11 (Debian 17.11-0+deb13u1)"));
        h.extend(string("17.11 (Debian 17.11-0+deb13u1)"));
        h
    }

    #[test]
    fn reads_custom_headers() {
        let h = read_header(&header(16, 1)[..]).unwrap();
        assert_eq!(h.version, "1.16");
        assert_eq!(h.format, "custom");
        assert_eq!(h.compression, "gzip");
        assert_eq!(h.database, "prismeai");
        assert!(h.source_version.starts_with("17.11"));
        let old = read_header(&header(14, 5)[..]).unwrap();
        assert_eq!((old.format.as_str(), old.compression.as_str()), ("directory", "gzip"));
    }

    #[test]
    fn cut_headers_are_truncated() {
        let h = header(16, 1);
        assert!(matches!(read_header(&h[..30]), Err(ArchiveError::Truncated)));
        assert!(matches!(read_header(&b"PGDMX"[..]), Err(ArchiveError::Invalid(_))));
    }
}
