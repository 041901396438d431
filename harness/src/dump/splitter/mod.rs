//! Splits a plain-format dump into statements, COPY data and meta-commands, as `psql` would,
//! streaming: memory holds one statement (or one chunk of COPY data), never the dump.
//!
//! The lexer follows psql's rules where they decide where a statement ends: quotes, `E''`
//! escapes, dollar quotes, nested block comments, parentheses, and `BEGIN ATOMIC ... END`
//! bodies of `CREATE FUNCTION`/`PROCEDURE`. A backslash outside quotes starts a meta-command
//! that runs to the end of its line. Each statement carries the line it starts on and the dump
//! entry (`-- Name: ...; Type: ...; Schema: ...`) it belongs to, for error messages.

mod items;
mod lex;

use std::io::BufRead;
use std::sync::Arc;

pub use items::{DumpComments, Entry, Item, SplitError, Statement};
use lex::Lex;

/// The largest piece of COPY data handed out at once.
pub const COPY_CHUNK: usize = 256 * 1024;

/// A streaming splitter over a plain dump.
pub struct Splitter<R> {
    reader: R,
    line: Vec<u8>,
    /// Where lexing resumes in `line`.
    pos: usize,
    line_no: u64,
    bytes: u64,
    stmt: Vec<u8>,
    stmt_line: u64,
    lex: Lex,
    paren_depth: i32,
    begin_depth: i32,
    /// First letters of the leading CREATE/OR/REPLACE/FUNCTION/PROCEDURE words (psql's
    /// heuristic for `BEGIN ATOMIC` bodies).
    idents: [u8; 4],
    ident_count: usize,
    first_is_copy: bool,
    prev_ident: Vec<u8>,
    copy_from_stdin: bool,
    copy_program: bool,
    /// Inside COPY data: the line the COPY statement started on, and rows so far.
    copy: Option<(u64, u64)>,
    /// An item to return before reading further.
    queued: Option<Item>,
    std_strings: bool,
    entry: Option<Arc<Entry>>,
    comments: DumpComments,
}

impl<R: BufRead> Splitter<R> {
    /// A splitter that reads the dump from `reader`, from its first line.
    pub fn new(reader: R) -> Self {
        Splitter {
            reader,
            line: Vec::with_capacity(4096),
            pos: 0,
            line_no: 0,
            bytes: 0,
            stmt: Vec::with_capacity(4096),
            stmt_line: 0,
            lex: Lex::Normal,
            paren_depth: 0,
            begin_depth: 0,
            idents: [0; 4],
            ident_count: 0,
            first_is_copy: false,
            prev_ident: Vec::new(),
            copy_from_stdin: false,
            copy_program: false,
            copy: None,
            queued: None,
            std_strings: true,
            entry: None,
            comments: DumpComments::default(),
        }
    }

    /// What the dump's comments said so far (final once the splitter is exhausted).
    pub fn comments(&self) -> &DumpComments {
        &self.comments
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The reader, for callers that track progress through it.
    pub fn get_ref(&self) -> &R {
        &self.reader
    }

    /// The next piece of the dump, or `None` at its end.
    pub fn next_item(&mut self) -> Result<Option<Item>, SplitError> {
        if let Some(item) = self.queued.take() {
            return Ok(Some(item));
        }
        if let Some((start, rows)) = self.copy {
            return self.next_copy_chunk(start, rows).map(Some);
        }
        loop {
            if self.pos >= self.line.len() && !self.read_line()? {
                return self.finish_at_eof();
            }
            if let Some(item) = self.lex_line()? {
                return Ok(Some(item));
            }
        }
    }

    fn read_line(&mut self) -> Result<bool, SplitError> {
        self.line.clear();
        self.pos = 0;
        let n = self
            .reader
            .read_until(b'\n', &mut self.line)
            .map_err(|source| SplitError::Read { line: self.line_no + 1, source })?;
        if n == 0 {
            return Ok(false);
        }
        self.bytes += n as u64;
        self.line_no += 1;
        Ok(true)
    }

    fn finish_at_eof(&mut self) -> Result<Option<Item>, SplitError> {
        if self.stmt.iter().all(u8::is_ascii_whitespace) {
            self.stmt.clear();
            return Ok(None);
        }
        // Like psql, a last statement without a semicolon is still sent.
        self.emit_statement().map(Some)
    }

    fn next_copy_chunk(&mut self, start: u64, mut rows: u64) -> Result<Item, SplitError> {
        let mut chunk = Vec::with_capacity(64 * 1024);
        loop {
            let before = chunk.len();
            let n = self
                .reader
                .read_until(b'\n', &mut chunk)
                .map_err(|source| SplitError::Read { line: self.line_no + 1, source })?;
            if n == 0 {
                self.copy = None;
                return Err(SplitError::UnterminatedCopy { line: start });
            }
            self.line_no += 1;
            self.bytes += n as u64;
            if matches!(&chunk[before..], b"\\.\n" | b"\\." | b"\\.\r\n") {
                chunk.truncate(before);
                self.copy = None;
                let end = Item::CopyEnd { line: self.line_no, rows };
                if chunk.is_empty() {
                    return Ok(end);
                }
                self.queued = Some(end);
                return Ok(Item::CopyData(chunk));
            }
            rows += 1;
            if chunk.len() >= COPY_CHUNK {
                self.copy = Some((start, rows));
                return Ok(Item::CopyData(chunk));
            }
        }
    }

    fn stmt_is_blank(&self) -> bool {
        self.stmt.iter().all(u8::is_ascii_whitespace)
    }

    /// Adds `line[from..to]` to the statement; leading blank text is dropped and the statement's
    /// first line recorded.
    fn push_segment(&mut self, from: usize, to: usize) {
        let segment = &self.line[from..to];
        if self.stmt.is_empty() {
            if let Some(first) = segment.iter().position(|b| !b.is_ascii_whitespace()) {
                self.stmt_line = self.line_no;
                self.stmt.extend_from_slice(&segment[first..]);
            }
        } else {
            self.stmt.extend_from_slice(segment);
        }
    }

    /// A psql meta-command (`\connect`, `\restrict`) at `i`: only between statements, and the
    /// rest of the line is its arguments.
    fn meta(&mut self, start: usize, i: usize) -> Result<Item, SplitError> {
        let len = self.line.len();
        let blank_before = self.line[start..i].iter().all(u8::is_ascii_whitespace);
        let text = String::from_utf8_lossy(&self.line[i + 1..]).trim_end().to_owned();
        let (command, args) = match text.split_once(char::is_whitespace) {
            Some((c, a)) => (c.to_owned(), a.trim().to_owned()),
            None => (text.clone(), String::new()),
        };
        if !(self.stmt_is_blank() && blank_before) {
            return Err(SplitError::MetaInStatement { line: self.line_no, command });
        }
        self.stmt.clear();
        self.pos = len;
        self.comments.complete &= command == "unrestrict";
        Ok(Item::Meta { command, args, line: self.line_no })
    }

    fn emit_statement(&mut self) -> Result<Item, SplitError> {
        let line = self.stmt_line;
        let bytes = std::mem::take(&mut self.stmt);
        let sql = String::from_utf8(bytes).map_err(|_| SplitError::Encoding { line })?;
        let copy_from_stdin = self.copy_from_stdin;
        let statement =
            Statement { line, entry: self.entry.clone(), copy_from_stdin, copy_program: self.copy_program, sql };
        self.paren_depth = 0;
        self.begin_depth = 0;
        self.ident_count = 0;
        self.first_is_copy = false;
        self.prev_ident.clear();
        self.copy_from_stdin = false;
        self.copy_program = false;
        self.comments.complete = false;
        self.note_settings(&statement.sql);
        if copy_from_stdin {
            if !self.line[self.pos..].iter().all(u8::is_ascii_whitespace) {
                return Err(SplitError::TextAfterCopy { line: self.line_no });
            }
            self.pos = self.line.len();
            self.copy = Some((line, 0));
        }
        Ok(Item::Statement(statement))
    }

    /// `SET standard_conforming_strings` changes how later quotes lex.
    fn note_settings(&mut self, sql: &str) {
        let lower = sql.trim_start().to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("set standard_conforming_strings") {
            let value = rest.trim_start_matches([' ', '=', '\t']).trim_start_matches("to ").trim();
            let value = value.trim_end_matches(';').trim().trim_matches('\'');
            self.std_strings = !matches!(value, "off" | "false" | "0");
        }
    }

    /// Reads pg_dump's comment lines: the header, entry titles and the completion marker.
    fn note_comment(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_start_matches('-').trim();
        if let Some(entry) = text.strip_prefix("Data for ").and_then(Entry::parse).or_else(|| Entry::parse(text)) {
            self.entry = Some(Arc::new(entry));
        } else if let Some(v) = text.strip_prefix("Dumped from database version ") {
            self.comments.source_version.get_or_insert_with(|| v.to_owned());
        } else if let Some(v) = text
            .strip_prefix("Dumped by pg_dump version ")
            .or_else(|| text.strip_prefix("Dumped by pg_dumpall version "))
        {
            let tool = if text.contains("pg_dumpall") { "pg_dumpall" } else { "pg_dump" };
            self.comments.dumped_by.get_or_insert_with(|| format!("{tool} {v}"));
        } else if let Some(when) = text.strip_prefix("Started on ") {
            self.comments.started_on.get_or_insert_with(|| when.to_owned());
        } else if text == "PostgreSQL database dump complete" || text == "PostgreSQL database cluster dump complete" {
            self.comments.complete = true;
        } else if text == "PostgreSQL database dump" || text == "PostgreSQL database cluster dump" {
            self.comments.title.get_or_insert_with(|| text.to_owned());
        }
    }
}

#[cfg(test)]
mod tests;
