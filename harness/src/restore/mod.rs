//! The restore phase: preflight (is the target able to take this dump?), then the restore
//! itself, stopping at the first error with the dump line and entry that caused it.

pub(crate) mod archive;
mod archive_once;
pub(crate) mod audit;
mod failure;
mod parallel;
pub(crate) mod phase;
pub(crate) mod physical;
pub(crate) mod plain;
pub(crate) mod preflight;
mod reader;
mod statements;

use std::sync::Arc;

use crate::dump::Entry;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RestoreError {
    /// Connecting to the target failed.
    #[error("cannot connect to database `{database}` on the target")]
    Connect {
        database: String,
        #[source]
        source: sqlx::Error,
    },
    /// A setting of the dump's could not be applied on a restore connection.
    #[error("cannot apply `{setting}` on a restore connection")]
    Setting {
        setting: String,
        #[source]
        source: sqlx::Error,
    },
    /// A statement of the dump failed on the target.
    #[error("{0}")]
    Statement(Box<StatementFailure>),
    /// The dump asks for something a restore must never do.
    #[error(
        "dump line {line}: {what} is refused: a dump is untrusted input, and pgdrill follows only `\\connect`, `\\restrict` and `\\unrestrict`"
    )]
    Refused { line: u64, what: String },
    /// A meta-command is malformed or used out of order.
    #[error("dump line {line}: {message}")]
    Meta { line: u64, message: String },
    /// Reading the dump failed during the restore (it verified, so the file changed?).
    #[error("reading the dump failed: {0}")]
    Read(String),
    /// The dump (or an archive, for pg_restore) could not be read again during the restore: it
    /// verified, so the file changed? The cause is the crate's own reader's error, boxed.
    #[error("reading the dump failed")]
    Reread(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The connection to the target failed mid-restore.
    #[error(
        "dump line {line}{}: the connection to the target was lost: {message}\n  statement: {excerpt}",
        entry_suffix(entry)
    )]
    Connection { line: u64, entry: Option<Arc<Entry>>, message: String, excerpt: String },
    /// The SQL pg_restore wrote of an archive ended inside a table's rows (pg_restore's exit
    /// says why).
    #[error("pg_restore's SQL of the archive ended inside a table's rows")]
    CutShort,
    /// pg_restore could not read the archive to its end.
    #[error("the archive cannot be read to its end: pg_restore exited with {status}:\n{stderr}")]
    Archive { status: i64, stderr: String },
    /// The target's pg_restore is older than the pg_dump that wrote the archive.
    #[error(
        "the target's pg_restore {tool} cannot read an archive written by pg_dump {archive} (hint: give PostgreSQL {dump_major}'s client programs with target.bin_dir)"
    )]
    OldTool { tool: String, archive: String, dump_major: u32 },
    /// A restore program failed.
    #[error("{tool} failed (exit {status}):\n{stderr}")]
    Tool { tool: &'static str, status: i64, stderr: String },
}

impl RestoreError {
    /// The dump could not be read again, for `cause`.
    pub(crate) fn reread(cause: impl std::error::Error + Send + Sync + 'static) -> RestoreError {
        RestoreError::Reread(Box::new(cause))
    }
}

/// The dump's bytes could not be read at a line (decompression or I/O).
#[derive(Debug, thiserror::Error)]
#[error("line {line}")]
pub(crate) struct AtLine {
    pub line: u64,
    #[source]
    pub source: std::io::Error,
}

/// A statement that failed on the target, located in the dump.
#[derive(Debug)]
pub(crate) struct StatementFailure {
    /// The dump line of the error: the statement's, or exactly where in it (a COPY row).
    pub line: u64,
    pub entry: Option<Arc<Entry>>,
    /// SQLSTATE.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The statement's start, on one line.
    pub excerpt: String,
}

impl std::fmt::Display for StatementFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dump line {}{}: {} {}", self.line, entry_suffix(&self.entry), self.code, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, "\n  detail: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        write!(f, "\n  statement: {}", self.excerpt)?;
        if let Some(tried) = crate::provision::sandbox::explain(Some(&self.code), &self.message) {
            write!(f, "\n  pgdrill: {tried}")?;
        }
        Ok(())
    }
}

fn entry_suffix(entry: &Option<Arc<Entry>>) -> String {
    entry.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
}
