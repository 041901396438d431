//! What stops a probe row, and the values that may get past it.
//!
//! A probe row is committed ([`super::committed`]): it must be a row the application could
//! write, so no constraint is ever set aside. When the INSERT stops on a CHECK of the table or of
//! a domain (SQLSTATE 23514), a unique (23505) or an exclusion (23P01) constraint named by the
//! error, pgdrill reads which columns it names; a CHECK of one column is tried again with each
//! literal its definition compares with (`status IN ('new', 'paid')` tries `'new'`, then
//! `'paid'`), since those are values the application writes. Anything else stops the probe row,
//! and the message names the constraint and its columns with the line to add to the scenario.

use sqlx::PgConnection;

/// What a failed INSERT names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocker {
    /// A CHECK constraint of a table (a partition's name: the error's relation).
    TableCheck { schema: String, table: String, name: String },
    /// A CHECK constraint of a domain.
    DomainCheck { schema: String, domain: String, name: String },
    /// A unique or exclusion constraint, or a unique index, by its index's name.
    Index { schema: String, table: String, index: String },
}

/// What the error of a failed INSERT names: a CHECK (23514) of a table or a domain, a unique
/// (23505) or exclusion (23P01) constraint. `None` for anything else, including a row no
/// partition accepts (23514 without a constraint).
pub(crate) fn blocker(err: &sqlx::Error) -> Option<Blocker> {
    let db = err.as_database_error()?.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    let name = db.constraint()?.to_owned();
    let schema = db.schema()?.to_owned();
    match db.code() {
        "23514" => match (db.data_type(), db.table()) {
            (Some(domain), _) => Some(Blocker::DomainCheck { schema, domain: domain.to_owned(), name }),
            (None, Some(table)) => Some(Blocker::TableCheck { schema, table: table.to_owned(), name }),
            _ => None,
        },
        "23505" | "23P01" => Some(Blocker::Index { schema, table: db.table()?.to_owned(), index: name }),
        _ => None,
    }
}

impl Blocker {
    /// How a message names it.
    pub(crate) fn shown(&self) -> String {
        match self {
            Blocker::TableCheck { name, .. } => format!("CHECK constraint `{name}`"),
            Blocker::DomainCheck { domain, name, .. } => format!("CHECK constraint `{name}` of domain `{domain}`"),
            Blocker::Index { index, .. } => format!("unique or exclusion constraint `{index}`"),
        }
    }
}

/// The columns of the probed table a constraint reads, and its definition as the server prints
/// it (for a domain's CHECK: the columns of that domain's type).
const COLUMNS_SQL: &str = "SELECT ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a \
        WHERE a.attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped \
          AND (a.attnum OPERATOR(pg_catalog.=) ANY (c.conkey) \
               OR a.atttypid OPERATOR(pg_catalog.=) c.contypid AND c.contypid OPERATOR(pg_catalog.<>) 0 \
               OR a.attnum OPERATOR(pg_catalog.=) ANY (x.indkey::pg_catalog.int2[])) ORDER BY a.attnum), \
       COALESCE(pg_catalog.pg_get_constraintdef(c.oid), '') \
  FROM (SELECT $2::pg_catalog.text AS name, $3::pg_catalog.text AS schema) w \
  LEFT JOIN pg_catalog.pg_constraint c ON c.conname OPERATOR(pg_catalog.=) w.name::pg_catalog.name \
       AND c.connamespace OPERATOR(pg_catalog.=) (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) w.schema::pg_catalog.name) \
  LEFT JOIN pg_catalog.pg_class ic ON ic.relname OPERATOR(pg_catalog.=) w.name::pg_catalog.name \
       AND ic.relnamespace OPERATOR(pg_catalog.=) (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) w.schema::pg_catalog.name) \
  LEFT JOIN pg_catalog.pg_index x ON x.indexrelid OPERATOR(pg_catalog.=) ic.oid \
  LIMIT 1";

/// The columns of `table` that `blocker` reads, and its definition.
pub(crate) async fn columns(
    conn: &mut PgConnection,
    table: &str,
    blocker: &Blocker,
) -> sqlx::Result<(Vec<String>, String)> {
    let (schema, name) = match blocker {
        Blocker::TableCheck { schema, name, .. } | Blocker::DomainCheck { schema, name, .. } => (schema, name),
        Blocker::Index { schema, index, .. } => (schema, index),
    };
    let found: Option<(Vec<String>, String)> =
        sqlx::query_as(COLUMNS_SQL).bind(table).bind(name).bind(schema).fetch_optional(&mut *conn).await?;
    Ok(found.unwrap_or_default())
}

/// The literals a CHECK's definition compares with, as values to try: `'new'::text` is `new`,
/// a number as written. At most `max`.
pub(crate) fn literals(definition: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = definition;
    while let Some(start) = rest.find('\'') {
        let after = &rest[start + 1..];
        let mut value = String::new();
        let mut end = None;
        let mut chars = after.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().map(|(_, n)| *n) == Some('\'') {
                    value.push('\'');
                    chars.next();
                    continue;
                }
                end = Some(i);
                break;
            }
            value.push(c);
        }
        let Some(end) = end else { break };
        if !out.contains(&value) {
            out.push(value);
        }
        rest = &after[end + 1..];
    }
    let unquoted: String = definition.split('\'').step_by(2).collect::<Vec<_>>().join(" ");
    for word in unquoted.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')) {
        if word.is_empty() || word.parse::<f64>().is_err() {
            continue;
        }
        // A bound (`amount > 1000`) is passed by the next integer.
        let next = word.parse::<i64>().ok().map(|n| n.saturating_add(1).to_string());
        for value in std::iter::once(word.to_owned()).chain(next) {
            if !out.contains(&value) {
                out.push(value);
            }
        }
    }
    out.truncate(max);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checks_literals_are_the_values_to_try() {
        assert_eq!(
            literals("CHECK ((status = ANY (ARRAY['new'::text, 'paid'::text, 'it''s'::text])))", 8),
            ["new", "paid", "it's"]
        );
        assert_eq!(literals("CHECK ((amount > (1000)::numeric))", 8), ["1000", "1001"]);
        assert_eq!(literals("CHECK ((VALUE ~ '^[A-Z]{3}$'::text))", 8), ["^[A-Z]{3}$"]);
        assert_eq!(literals("CHECK ((a = 'x'::text))", 0), Vec::<String>::new());
    }
}
