//! What kind of relation a name the scenario gave is: a check about a table checks a table.
//!
//! A backup can leave a view, a materialized view or a foreign table where the scenario expects
//! a table: a view of the same name can return the expected rows from anywhere (or compute
//! them), accept writes through rules, and carries no row-level security of its own. Row counts,
//! append-only probes, row-level security and the schema journal ask [`kind`] first and fail on
//! anything but a table or a partitioned table.

use crate::pg::QualifiedName;

const KIND_SQL: &str = "SELECT c.relkind::text FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
     WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND c.relname OPERATOR(pg_catalog.=) $2";

/// A relation's kind, as `pg_class.relkind` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Table,
    Partitioned,
    Other(char),
}

impl Kind {
    fn of(relkind: &str) -> Kind {
        match relkind {
            "r" => Kind::Table,
            "p" => Kind::Partitioned,
            other => Kind::Other(other.chars().next().unwrap_or('?')),
        }
    }

    /// What it is, for a message: `a view`.
    pub(super) fn describe(self) -> &'static str {
        match self {
            Kind::Table => "a table",
            Kind::Partitioned => "a partitioned table",
            Kind::Other('v') => "a view",
            Kind::Other('m') => "a materialized view",
            Kind::Other('f') => "a foreign table",
            Kind::Other('S') => "a sequence",
            Kind::Other('i' | 'I') => "an index",
            Kind::Other('c') => "a composite type",
            Kind::Other('t') => "a TOAST table",
            Kind::Other(_) => "not a table",
        }
    }

    pub(super) fn is_table(self) -> bool {
        matches!(self, Kind::Table | Kind::Partitioned)
    }
}

/// The kind of `name` (schema `public` when none was given), `None` when nothing has the name.
pub(crate) async fn kind<'c, E>(conn: E, name: &QualifiedName) -> sqlx::Result<Option<Kind>>
where
    E: sqlx::PgExecutor<'c>,
{
    let found: Option<String> =
        sqlx::query_scalar(KIND_SQL).bind(name.schema_or_public()).bind(&name.name).fetch_optional(conn).await?;
    Ok(found.as_deref().map(Kind::of))
}

/// Why `name` of kind `found` is not the table a check needs: `` `public.orders` is a view, not a
/// table: ... ``.
pub(crate) fn not_a_table(name: &QualifiedName, found: Kind) -> String {
    format!(
        "`{name}` is {}, not a table: the backup left it where the table should be, and a check of the table cannot pass on it",
        found.describe()
    )
}

/// What is wrong with an immutability trigger whose `pg_trigger.tgenabled` is `enabled` (`None`:
/// no such trigger). Only `O` (fires in origin sessions, the default) and `A` (always) protect
/// the table from the application's sessions; `R` fires only in replica sessions
/// (`session_replication_role = replica`) and `D` never.
pub(crate) fn trigger_problem(name: &str, enabled: Option<&str>) -> Option<String> {
    match enabled {
        None => Some(format!("{name} is missing")),
        Some("O" | "A") => None,
        Some("R") => {
            Some(format!("{name} fires only in replica sessions (ENABLE REPLICA): it does not protect the table"))
        }
        Some("D") => Some(format!("{name} is disabled")),
        Some(other) => Some(format!("{name} has an unknown state (tgenabled {other})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(Kind::of("r").is_table() && Kind::of("p").is_table());
        assert!(!Kind::of("v").is_table() && !Kind::of("f").is_table() && !Kind::of("m").is_table());
        let name = QualifiedName::parse("orders").unwrap();
        assert!(not_a_table(&name, Kind::of("v")).starts_with("`orders` is a view, not a table"));
        assert_eq!(Kind::of("f").describe(), "a foreign table");
    }
}
