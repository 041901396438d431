//! Why a fingerprint could not be taken: what the table is not, what the server refused, and
//! what went wrong reading its rows.

use super::copy::FeedError;
use crate::pg::describe_sql_error;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FingerprintError {
    /// No table of that name.
    #[error("`{0}` does not exist")]
    Missing(String),
    /// A view, a materialized view, a foreign table: no rows of its own.
    #[error("`{table}` is {kind}, not a table: its rows are not stored in it, and cannot be fingerprinted")]
    NotATable { table: String, kind: &'static str },
    /// A column asked for (or hashed by the file) is not there.
    #[error("`{table}` has no column `{column}`")]
    NoColumn { table: String, column: String },
    /// A column the file hashed has another type now.
    #[error("`{table}`'s column `{column}` is `{found}`, and the fingerprint hashed it as `{expected}`")]
    ColumnType { table: String, column: String, expected: String, found: String },
    /// The key cannot split the table into ranges every server orders alike.
    #[error("`{table}` cannot be split by `{key}`: {reason}")]
    Key { table: String, key: String, reason: String },
    /// A statement failed (`what` it was for), the server's message in one line.
    #[error("{what}: {message}")]
    Sql { what: String, message: String },
    /// The rows streamed could not be read or their digests sorted.
    #[error("{what}")]
    Read {
        what: String,
        #[source]
        source: ReadError,
    },
}

/// Why a table's rows could not be read or digested.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The stream was not the rows asked for.
    #[error(transparent)]
    Copy(#[from] FeedError),
    /// The digests could not be sorted (a temporary file).
    #[error("cannot sort the rows' digests")]
    Sort(#[source] std::io::Error),
    /// A reader's thread or task ended without its work.
    #[error("a reader stopped")]
    Stopped(#[source] tokio::task::JoinError),
}

/// A failed statement's error, said as `what` it was for.
pub(super) fn sql_error(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> FingerprintError {
    let what = what.into();
    move |e| FingerprintError::Sql { what, message: describe_sql_error(&e) }
}
