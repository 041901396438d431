//! What a backup file is: its compression and pg_dump format (detected from its content, never
//! its name), and, for plain dumps, the statements in it.

pub mod archive;
pub(crate) mod blocks;
pub(crate) mod commands;
pub(crate) mod scan;
pub mod splitter;
pub mod toc;

use serde::{Deserialize, Serialize};

pub(crate) use scan::{DumpSummary, Scanner};
pub use splitter::{DumpComments, Entry, Item, SplitError, Splitter, Statement};
pub use toc::Content;

/// How the backup file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Not compressed: its first bytes are none of the others' (xz's and zip's are refused).
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
    /// bzip2 (Barman's and pgBackRest's `bz2`).
    Bzip2,
    /// The LZ4 frame format (pgBackRest's and Barman's `lz4`, `pg_dump -Z lz4`).
    Lz4,
}

impl Compression {
    /// Recognises the compressions a backup may use from its first bytes. Formats that pgdrill
    /// cannot read are named in the error.
    pub fn detect(magic: &[u8]) -> Result<Self, &'static str> {
        match magic {
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
            [b'B', b'Z', b'h', ..] => Ok(Compression::Bzip2),
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Err("xz"),
            [0x04, 0x22, 0x4d, 0x18, ..] => Ok(Compression::Lz4),
            [b'P', b'K', 0x03, 0x04, ..] => Err("zip"),
            _ => Ok(Compression::None),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Lz4 => "lz4",
        }
    }
}

/// The pg_dump output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// SQL text (`pg_dump -Fp`, `pg_dumpall`).
    Plain,
    /// `pg_dump -Fc`.
    Custom,
    /// `pg_dump -Fd` (a folder).
    Directory,
    /// `pg_dump -Ft`.
    Tar,
}

impl Format {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::Custom => "custom",
            Format::Directory => "directory",
            Format::Tar => "tar",
        }
    }
}

/// Why the start of a (decompressed) file is not a dump pgdrill can restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotADump {
    /// Nothing, or nothing but white space.
    #[error("the backup is empty")]
    Empty,
    /// An HTML page.
    #[error("it is an HTML page, not a dump (an error page saved in place of the backup?)")]
    Html,
    /// An XML document.
    #[error("it is an XML document, not a dump (an error response from an object store?)")]
    Xml,
    /// Binary data: NUL bytes, control characters or invalid UTF-8, and no archive's header.
    #[error("it is binary data that is neither a pg_dump archive nor SQL text")]
    Binary,
    /// Text whose first statement begins as no SQL command does.
    #[error(
        "it is text, not SQL: line {line} begins `{begins}`, as no SQL command does (a README or a log in place of the dump?)"
    )]
    Text {
        /// The line, 1-based.
        line: u64,
        /// Its first 40 characters.
        begins: String,
    },
}

/// Recognises the dump format from the first (decompressed) bytes of a file.
pub fn detect_format(head: &[u8]) -> Result<Format, NotADump> {
    if head.starts_with(b"PGDMP") {
        return Ok(Format::Custom);
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Ok(Format::Tar);
    }
    let text_start = head.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = text_start else {
        return Err(NotADump::Empty);
    };
    let lead: Vec<u8> = head[start..head.len().min(start + 64)].to_ascii_lowercase();
    if lead.starts_with(b"<!doctype html") || lead.starts_with(b"<html") || lead.starts_with(b"<head") {
        return Err(NotADump::Html);
    }
    if lead.starts_with(b"<?xml") {
        return Err(NotADump::Xml);
    }
    // SQL text: no NUL bytes, and mostly printable. A cut multi-byte character at the end of
    // `head` is allowed.
    let sample = &head[..head.len().min(8192)];
    let binary = sample.iter().filter(|&&b| b == 0 || (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c))).count();
    if binary > 0 || std::str::from_utf8(sample).is_err_and(|e| e.error_len().is_some()) {
        return Err(NotADump::Binary);
    }
    let text = match std::str::from_utf8(sample) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&sample[..e.valid_up_to()]).unwrap_or_default(),
    };
    if let Some((line, begins)) = commands::not_a_command(text) {
        return Err(NotADump::Text { line, begins });
    }
    Ok(Format::Plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressions() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Ok(Compression::Gzip));
        assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]), Ok(Compression::Zstd));
        assert_eq!(Compression::detect(b"BZh91AY"), Ok(Compression::Bzip2));
        assert_eq!(Compression::detect(&[0x04, 0x22, 0x4d, 0x18, 0x64]), Ok(Compression::Lz4));
        assert_eq!(Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]), Err("xz"));
        assert_eq!(Compression::detect(b"--\n-- PostgreSQL"), Ok(Compression::None));
    }

    #[test]
    fn formats() {
        assert_eq!(detect_format(b"PGDMP\x01\x0f"), Ok(Format::Custom));
        assert_eq!(detect_format(b"--\n-- PostgreSQL database dump\n"), Ok(Format::Plain));
        assert_eq!(detect_format(b"  \n<!DOCTYPE html><html>"), Err(NotADump::Html));
        assert_eq!(detect_format(b"<?xml version=\"1.0\"?><Error>"), Err(NotADump::Xml));
        assert_eq!(detect_format(b""), Err(NotADump::Empty));
        assert_eq!(detect_format(b"\n\n"), Err(NotADump::Empty));
        assert_eq!(detect_format(&[0x00, 0x13, 0xff, 0x42]), Err(NotADump::Binary));
        assert_eq!(
            detect_format(b"# pgdrill\n\nRestore drills for PostgreSQL."),
            Err(NotADump::Text { line: 1, begins: "# pgdrill".into() })
        );
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(detect_format(&tar), Ok(Format::Tar));
    }
}
