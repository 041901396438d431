//! Splits a plain-format dump into statements, COPY data and meta-commands, as `psql` would,
//! streaming: memory holds one statement (or one chunk of COPY data), never the dump.
//!
//! The lexer follows psql's rules where they decide where a statement ends: quotes, `E''`
//! escapes, dollar quotes, nested block comments, parentheses, and `BEGIN ATOMIC ... END`
//! bodies of `CREATE FUNCTION`/`PROCEDURE`. A backslash outside quotes starts a meta-command
//! that runs to the end of its line. Each statement carries the line it starts on and the dump
//! entry (`-- Name: ...; Type: ...; Schema: ...`) it belongs to, for error messages.

use std::io::BufRead;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The largest piece of COPY data handed out at once.
pub const COPY_CHUNK: usize = 256 * 1024;

/// The dump entry a statement belongs to, from pg_dump's `-- Name: ...` comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    /// `TABLE`, `INDEX`, `TABLE DATA`, `FK CONSTRAINT`, ...
    pub kind: String,
    pub schema: Option<String>,
    pub owner: Option<String>,
}

impl Entry {
    /// Parses `Name: users; Type: TABLE; Schema: public; Owner: app` (after `-- ` or
    /// `-- Data for `).
    fn parse(text: &str) -> Option<Entry> {
        let rest = text.strip_prefix("Name: ")?;
        let (name, rest) = rest.split_once("; Type: ")?;
        let (kind, rest) = match rest.split_once("; Schema: ") {
            Some((kind, rest)) => (kind, Some(rest)),
            None => (rest, None),
        };
        let (schema, owner) = match rest {
            Some(rest) => match rest.split_once("; Owner: ") {
                Some((schema, owner)) => (schema, Some(owner)),
                None => (rest, None),
            },
            None => ("-", None),
        };
        let opt = |s: &str| (s != "-" && !s.is_empty()).then(|| s.to_owned());
        Some(Entry {
            name: name.to_owned(),
            kind: kind.to_owned(),
            schema: opt(schema),
            owner: owner.and_then(|o| opt(o.trim_end())),
        })
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{} {}.{}", self.kind, schema, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One piece of a plain dump.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A complete SQL statement, ending with its `;`.
    Statement(Statement),
    /// A psql meta-command: `\connect`, `\restrict`, ... (command without the backslash).
    Meta { command: String, args: String, line: u64 },
    /// Rows for the COPY statement just returned (whole lines, each ending in `\n`).
    CopyData(Vec<u8>),
    /// The `\.` that ends a COPY block; `rows` lines were read.
    CopyEnd { line: u64, rows: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    /// The dump line the statement starts on (1-based).
    pub line: u64,
    pub entry: Option<Arc<Entry>>,
    /// `COPY ... FROM stdin`: the data follows as [`Item::CopyData`].
    pub copy_from_stdin: bool,
    /// `COPY ... TO/FROM PROGRAM`: runs a shell command on the server.
    pub copy_program: bool,
}

/// What a plain dump's comments say about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpComments {
    /// `PostgreSQL database dump` or `PostgreSQL database cluster dump`.
    pub title: Option<String>,
    /// `Dumped from database version ...`.
    pub source_version: Option<String>,
    /// `Dumped by pg_dump version ...` (or pg_dumpall).
    pub dumped_by: Option<String>,
    /// The final `... dump complete` comment was seen.
    pub complete: bool,
    /// `Started on ...`, as written (`pg_dump --verbose` only): when the dump began.
    #[serde(default)]
    pub started_on: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// The dump could not be read (decompression or I/O).
    #[error("reading the dump failed at line {line}")]
    Read {
        line: u64,
        #[source]
        source: std::io::Error,
    },
    /// A statement is not valid UTF-8.
    #[error("line {line}: the statement is not valid UTF-8 (only UTF8-encoded dumps are supported)")]
    Encoding { line: u64 },
    /// A meta-command appears inside a statement.
    #[error("line {line}: a `\\{command}` meta-command appears inside a statement")]
    MetaInStatement { line: u64, command: String },
    /// Text follows `COPY ... FROM stdin;` on its line.
    #[error("line {line}: unexpected text after `COPY ... FROM stdin;`")]
    TextAfterCopy { line: u64 },
    /// The dump ends inside a COPY block.
    #[error("the dump ends inside the COPY block that starts on line {line} (no `\\.` terminator): it was cut short")]
    UnterminatedCopy { line: u64 },
}

#[derive(Debug, Clone, PartialEq)]
enum Lex {
    Normal,
    /// In '...'; `escapes` when backslashes escape (E'' strings, or standard_conforming_strings off).
    Quote {
        escapes: bool,
    },
    DoubleQuote,
    Dollar(Vec<u8>),
    BlockComment(u32),
}

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

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

impl<R: BufRead> Splitter<R> {
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

    /// Lexes the rest of the current line; returns an item when one completes on it.
    fn lex_line(&mut self) -> Result<Option<Item>, SplitError> {
        if self.pos == 0 && self.lex == Lex::Normal && self.stmt.is_empty() && self.line.starts_with(b"--") {
            self.note_comment();
            self.pos = self.line.len();
            return Ok(None);
        }
        let start = self.pos;
        let len = self.line.len();
        let mut i = start;
        while i < len {
            let b = self.line[i];
            let next = self.line.get(i + 1).copied();
            if !matches!(self.lex, Lex::Normal) {
                self.past_literal(&mut i, b, next);
                continue;
            }
            match b {
                b'\'' => {
                    self.lex = Lex::Quote { escapes: !self.std_strings };
                    i += 1;
                }
                b'"' => {
                    self.lex = Lex::DoubleQuote;
                    i += 1;
                }
                b'-' if next == Some(b'-') => {
                    // A comment to the end of the line: kept inside a statement, dropped between.
                    if self.stmt.is_empty() && self.line[start..i].iter().all(u8::is_ascii_whitespace) {
                        self.pos = len;
                        return Ok(None);
                    }
                    i = len;
                }
                b'/' if next == Some(b'*') => {
                    self.lex = Lex::BlockComment(1);
                    i += 2;
                }
                b'(' => {
                    self.paren_depth += 1;
                    i += 1;
                }
                b')' => {
                    self.paren_depth -= 1;
                    i += 1;
                }
                b';' if self.paren_depth <= 0 && self.begin_depth == 0 => {
                    self.push_segment(start, i + 1);
                    self.pos = i + 1;
                    return self.emit_statement().map(Some);
                }
                b'\\' => return self.meta(start, i).map(Some),
                b'$' if i == 0 || !is_ident_char(self.line[i - 1]) => match dollar_tag(&self.line[i..]) {
                    Some(tag_len) => {
                        self.lex = Lex::Dollar(self.line[i + 1..i + 1 + tag_len].to_vec());
                        i += tag_len + 2;
                    }
                    None => i += 1,
                },
                b if b.is_ascii_digit() => {
                    i += 1;
                    while i < len
                        && (self.line[i].is_ascii_alphanumeric() || self.line[i] == b'.' || self.line[i] == b'_')
                    {
                        i += 1;
                    }
                }
                b if is_ident_start(b) => {
                    let mut j = i + 1;
                    while j < len && is_ident_char(self.line[j]) {
                        j += 1;
                    }
                    if j == i + 1 && (b == b'e' || b == b'E') && self.line.get(j) == Some(&b'\'') {
                        self.lex = Lex::Quote { escapes: true };
                        i = j + 1;
                    } else {
                        let word = self.line[i..j].to_ascii_lowercase();
                        self.note_identifier(&word);
                        i = j;
                    }
                }
                _ => i += 1,
            }
        }
        self.push_segment(start, len.min(i.max(start)));
        self.pos = len;
        Ok(None)
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

    /// Moves `i` past a byte (`b`, then `next`) inside a string, a quoted identifier, a
    /// dollar-quoted body or a block comment, and the lexer back to normal at its end.
    #[inline]
    fn past_literal(&mut self, i: &mut usize, b: u8, next: Option<u8>) {
        match &mut self.lex {
            Lex::Normal => *i += 1,
            Lex::Quote { escapes } => {
                if *escapes && b == b'\\' {
                    *i += 2;
                } else {
                    if b == b'\'' {
                        self.lex = Lex::Normal;
                    }
                    *i += 1;
                }
            }
            Lex::DoubleQuote => {
                if b == b'"' {
                    self.lex = Lex::Normal;
                }
                *i += 1;
            }
            Lex::Dollar(tag) => {
                if b == b'$' && self.line[*i + 1..].starts_with(tag) && self.line.get(*i + 1 + tag.len()) == Some(&b'$')
                {
                    *i += tag.len() + 2;
                    self.lex = Lex::Normal;
                } else {
                    *i += 1;
                }
            }
            Lex::BlockComment(depth) => {
                if b == b'/' && next == Some(b'*') {
                    *depth += 1;
                    *i += 2;
                } else if b == b'*' && next == Some(b'/') {
                    *depth -= 1;
                    if *depth == 0 {
                        self.lex = Lex::Normal;
                    }
                    *i += 2;
                } else {
                    *i += 1;
                }
            }
        }
    }

    /// psql's tracking of `BEGIN ... END` in `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, and the
    /// words that make a COPY read from stdin or run a program.
    fn note_identifier(&mut self, word: &[u8]) {
        if self.ident_count == 0 {
            self.idents = [0; 4];
            self.first_is_copy = word == b"copy";
        }
        if matches!(word, b"create" | b"function" | b"procedure" | b"or" | b"replace")
            && self.ident_count < self.idents.len()
        {
            self.idents[self.ident_count] = word[0];
        }
        self.ident_count += 1;
        let id = self.idents;
        let in_routine = id[0] == b'c'
            && (id[1] == b'f' || id[1] == b'p' || (id[1] == b'o' && id[2] == b'r' && (id[3] == b'f' || id[3] == b'p')));
        if in_routine && self.paren_depth == 0 {
            match word {
                b"begin" => self.begin_depth += 1,
                b"case" if self.begin_depth >= 1 => self.begin_depth += 1,
                b"end" if self.begin_depth > 0 => self.begin_depth -= 1,
                _ => {}
            }
        }
        if self.first_is_copy {
            let prev = self.prev_ident.as_slice();
            if prev == b"from" && word == b"stdin" {
                self.copy_from_stdin = true;
            }
            if (prev == b"from" || prev == b"to") && word == b"program" {
                self.copy_program = true;
            }
        }
        self.prev_ident.clear();
        self.prev_ident.extend_from_slice(word);
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

/// The length of the tag of a dollar quote starting at `s[0] == '$'` (`$$` -> 0,
/// `$body$` -> 4), or `None` when `s` does not start one.
fn dollar_tag(s: &[u8]) -> Option<usize> {
    let mut j = 1;
    if let Some(&b) = s.get(1) {
        if b == b'$' {
            return Some(0);
        }
        if !is_ident_start(b) {
            return None;
        }
    }
    while let Some(&b) = s.get(j) {
        if b == b'$' {
            return Some(j - 1);
        }
        if !(is_ident_start(b) || b.is_ascii_digit()) {
            return None;
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Vec<Item> {
        let mut s = Splitter::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(item) = s.next_item().unwrap() {
            out.push(item);
        }
        out
    }

    fn statements(text: &str) -> Vec<(u64, String)> {
        items(text)
            .into_iter()
            .filter_map(|i| match i {
                Item::Statement(s) => Some((s.line, s.sql)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn statements_with_lines() {
        let got = statements("SET a = 1;\n\n-- c\nCREATE TABLE t (\n  a int -- x;\n);\nSELECT 1; SELECT 2;\n");
        assert_eq!(
            got,
            vec![
                (1, "SET a = 1;".into()),
                (4, "CREATE TABLE t (\n  a int -- x;\n);".into()),
                (7, "SELECT 1;".into()),
                (7, "SELECT 2;".into()),
            ]
        );
    }

    #[test]
    fn quotes_and_dollar_quotes_hide_semicolons() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $x$ ; $body$ LANGUAGE sql;\n\
                   SELECT 'a;''b', E'c\\';d', \"we;ird\", $$;$$, $1;\n/* a; /* nested; */ b; */ SELECT 3;\n";
        let got = statements(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].1.ends_with("LANGUAGE sql;"));
        assert!(got[1].1.ends_with("$1;"));
        assert!(got[2].1.ends_with("SELECT 3;"));
    }

    #[test]
    fn begin_atomic_bodies_hold_semicolons() {
        let sql = "CREATE OR REPLACE FUNCTION public.f(a int) RETURNS int\n    LANGUAGE sql\n    BEGIN ATOMIC\n SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\n SELECT 2;\nEND;\nBEGIN;\nCOMMIT;\n";
        let got = statements(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].1.ends_with("END;"));
        assert_eq!(got[1].1, "BEGIN;");
    }

    #[test]
    fn copy_blocks_stream_as_data() {
        let sql = "--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: app\n--\n\nCOPY public.t (a) FROM stdin;\n1\n2\n\\.\nSELECT 1;\n";
        let got = items(sql);
        match &got[0] {
            Item::Statement(s) => {
                assert!(s.copy_from_stdin);
                assert_eq!(s.line, 5);
                let entry = s.entry.as_ref().unwrap();
                assert_eq!((entry.kind.as_str(), entry.schema.as_deref()), ("TABLE DATA", Some("public")));
                assert_eq!(entry.owner.as_deref(), Some("app"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(got[1], Item::CopyData(b"1\n2\n".to_vec()));
        assert_eq!(got[2], Item::CopyEnd { line: 8, rows: 2 });
        assert!(matches!(&got[3], Item::Statement(s) if s.line == 9 && s.sql == "SELECT 1;"));
    }

    #[test]
    fn large_copy_blocks_come_in_chunks() {
        let row = "x".repeat(1000) + "\n";
        let mut sql = String::from("COPY t FROM stdin;\n");
        for _ in 0..1000 {
            sql.push_str(&row);
        }
        sql.push_str("\\.\n");
        let got = items(&sql);
        let data: usize = got.iter().map(|i| if let Item::CopyData(d) = i { d.len() } else { 0 }).sum();
        assert_eq!(data, 1000 * 1001);
        assert!(got.iter().filter(|i| matches!(i, Item::CopyData(_))).count() > 1);
        assert!(got.iter().all(|i| !matches!(i, Item::CopyData(d) if d.len() > COPY_CHUNK + 1001)));
        assert_eq!(got.last(), Some(&Item::CopyEnd { line: 1002, rows: 1000 }));
    }

    #[test]
    fn unterminated_copy_is_an_error() {
        let mut s = Splitter::new(&b"COPY t FROM stdin;\n1\n2\n"[..]);
        assert!(matches!(s.next_item(), Ok(Some(Item::Statement(_)))));
        let err = loop {
            match s.next_item() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, SplitError::UnterminatedCopy { line: 1 }), "{err}");
    }

    #[test]
    fn meta_commands() {
        let got = items("\\restrict abc\nSELECT 1;\n\\connect -reuse-previous=on \"dbname='x'\"\n");
        assert_eq!(got[0], Item::Meta { command: "restrict".into(), args: "abc".into(), line: 1 });
        assert_eq!(
            got[2],
            Item::Meta { command: "connect".into(), args: "-reuse-previous=on \"dbname='x'\"".into(), line: 3 }
        );
        let mut s = Splitter::new(&b"SELECT 1\n\\! rm -rf /\n;"[..]);
        assert!(matches!(s.next_item(), Err(SplitError::MetaInStatement { line: 2, .. })));
    }

    #[test]
    fn copy_program_is_flagged() {
        let got = statements("COPY t TO PROGRAM 'curl x';\n");
        assert_eq!(got.len(), 1);
        let got = items("COPY t FROM PROGRAM 'sh';\n");
        assert!(matches!(&got[0], Item::Statement(s) if s.copy_program && !s.copy_from_stdin));
    }

    #[test]
    fn header_and_completion() {
        let text = "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 16.4\n-- Dumped by pg_dump version 17.2\n\nSELECT 1;\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict k\n";
        let mut s = Splitter::new(text.as_bytes());
        while s.next_item().unwrap().is_some() {}
        let c = s.comments();
        assert_eq!(c.title.as_deref(), Some("PostgreSQL database dump"));
        assert_eq!(c.source_version.as_deref(), Some("16.4"));
        assert_eq!(c.dumped_by.as_deref(), Some("pg_dump 17.2"));
        assert!(c.complete);

        let mut s = Splitter::new(&b"-- PostgreSQL database dump complete\nSELECT 1;\n"[..]);
        while s.next_item().unwrap().is_some() {}
        assert!(!s.comments().complete);
    }

    #[test]
    fn standard_conforming_strings_off_makes_backslash_escape() {
        let got = statements("SET standard_conforming_strings = off;\nSELECT 'a\\';b';\nSELECT 2;\n");
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[1].1, "SELECT 'a\\';b';");
    }

    #[test]
    fn trailing_statement_without_semicolon() {
        assert_eq!(statements("SELECT 1;\nSELECT 2\n"), vec![(1, "SELECT 1;".into()), (2, "SELECT 2\n".into())]);
    }
}
