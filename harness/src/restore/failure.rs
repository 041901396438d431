//! A statement the server refused, located in the dump: the exact line (within the statement,
//! or the COPY row) and the dump entry, with the server's message redacted. A leaf: the plain
//! restore and its pool of connections both report failures through it.

use sqlx::postgres::PgDatabaseError;

use super::{RestoreError, StatementFailure};
use crate::dump::Statement;
use crate::secret::Redactor;

/// Turns a server error into an error naming the dump line (exact, within the statement or the
/// COPY block) and entry.
pub(super) fn statement_error(redactor: &Redactor, statement: &Statement, err: sqlx::Error) -> RestoreError {
    let entry = statement.entry.clone();
    let excerpt = excerpt(&statement.sql);
    match &err {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => {
                let line = error_line(statement, pg);
                RestoreError::Statement(Box::new(StatementFailure {
                    line,
                    entry,
                    code: pg.code().to_owned(),
                    message: redactor.redact(pg.message()),
                    detail: pg.detail().map(|d| redactor.redact(d)),
                    hint: pg.hint().map(str::to_owned),
                    excerpt,
                }))
            }
            None => RestoreError::Statement(Box::new(StatementFailure {
                line: statement.line,
                entry,
                code: String::new(),
                message: redactor.redact(db.message()),
                detail: None,
                hint: None,
                excerpt,
            })),
        },
        other => RestoreError::Connection {
            line: statement.line,
            entry,
            message: redactor.redact(&other.to_string()),
            excerpt,
        },
    }
}

/// The dump line an error points at: a COPY row (`COPY t, line N` in the error's context), the
/// line of the error's position inside the statement, or the statement's first line.
fn error_line(statement: &Statement, pg: &PgDatabaseError) -> u64 {
    if statement.copy_from_stdin {
        if let Some(row) = pg.r#where().and_then(copy_row) {
            return statement.line + row;
        }
        return statement.line;
    }
    match pg.position() {
        Some(sqlx::postgres::PgErrorPosition::Original(pos)) => {
            let before: String = statement.sql.chars().take(pos.saturating_sub(1)).collect();
            statement.line + before.matches('\n').count() as u64
        }
        _ => statement.line,
    }
}

/// `N` from a context like `COPY users, line N, column id: "x"`.
fn copy_row(context: &str) -> Option<u64> {
    let rest = &context[context.find(", line ")? + 7..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The statement's first 200 characters on one line, for error messages.
fn excerpt(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 200 { flat.chars().take(200).collect::<String>() + "..." } else { flat }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_from_context() {
        assert_eq!(copy_row("COPY users, line 3, column id: \"x\""), Some(3));
        assert_eq!(copy_row("COPY users, line 12"), Some(12));
        assert_eq!(copy_row("SQL statement"), None);
    }

    #[test]
    fn excerpts_are_one_line() {
        assert_eq!(excerpt("CREATE TABLE t (\n  a int\n);"), "CREATE TABLE t ( a int );");
    }
}
