//! What the splitter hands out: statements (with their line and dump entry), meta-commands,
//! COPY data, what the dump's comments say, and why a dump does not split.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The dump entry a statement belongs to, from pg_dump's `-- Name: ...` comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The object's name, as the comment writes it (`users`; a constraint's `users
    /// users_pkey`, after its table's).
    pub name: String,
    /// `TABLE`, `INDEX`, `TABLE DATA`, `FK CONSTRAINT`, ...
    pub kind: String,
    /// Its schema; none for an object in no schema (the comment's `-`).
    pub schema: Option<String>,
    /// Its owner; none when the comment names none (`pg_dump --no-owner`).
    pub owner: Option<String>,
}

impl Entry {
    /// Parses `Name: users; Type: TABLE; Schema: public; Owner: app` (after `-- ` or
    /// `-- Data for `).
    pub(super) fn parse(text: &str) -> Option<Entry> {
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
    Meta {
        /// The command, without its backslash (`connect`).
        command: String,
        /// The rest of its line, trimmed.
        args: String,
        /// The dump line it is on (1-based).
        line: u64,
    },
    /// Rows for the COPY statement just returned (whole lines, each ending in `\n`).
    CopyData(Vec<u8>),
    /// The `\.` that ends a COPY block; `rows` lines were read.
    CopyEnd {
        /// The dump line of the `\.` (1-based).
        line: u64,
        /// Lines of data the block held.
        rows: u64,
    },
}

/// A complete SQL statement of a plain dump.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Its text, from its first character to its `;` (the dump's last statement may have
    /// none).
    pub sql: String,
    /// The dump line the statement starts on (1-based).
    pub line: u64,
    /// The dump entry it belongs to: the last `-- Name: ...` comment before it; none before
    /// the first.
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

/// Why a plain dump does not split into statements as psql would run them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// The dump could not be read (decompression or I/O).
    #[error("reading the dump failed at line {line}")]
    Read {
        /// The line being read (1-based).
        line: u64,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A statement is not valid UTF-8.
    #[error("line {line}: the statement is not valid UTF-8 (only UTF8-encoded dumps are supported)")]
    Encoding {
        /// The line the statement starts on (1-based).
        line: u64,
    },
    /// A meta-command appears inside a statement.
    #[error("line {line}: a `\\{command}` meta-command appears inside a statement")]
    MetaInStatement {
        /// The meta-command's line (1-based).
        line: u64,
        /// The command, without its backslash.
        command: String,
    },
    /// Text follows `COPY ... FROM stdin;` on its line.
    #[error("line {line}: unexpected text after `COPY ... FROM stdin;`")]
    TextAfterCopy {
        /// That line (1-based).
        line: u64,
    },
    /// The dump ends inside a COPY block.
    #[error("the dump ends inside the COPY block that starts on line {line} (no `\\.` terminator): it was cut short")]
    UnterminatedCopy {
        /// The line the COPY statement starts on (1-based).
        line: u64,
    },
}
