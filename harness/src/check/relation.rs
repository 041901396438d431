//! What kind of relation a name the scenario gave is: a check about a table checks a table.
//!
//! A backup can leave a view, a materialized view or a foreign table where the scenario expects
//! a table: a view of the same name can return the expected rows from anywhere (or compute
//! them), accept writes through rules, and carries no row-level security of its own. Row counts,
//! append-only probes, row-level security and the schema journal ask [`kind`] first and fail on
//! anything but a table or a partitioned table.
//!
//! And whether a trigger the catalog calls enabled fires in the application's sessions: a
//! backup can `ALTER DATABASE/ROLE ... SET session_replication_role = replica`, and every
//! session of that database or role then fires no ordinary trigger and checks no foreign key,
//! while `pg_trigger` still says enabled ([`replica_sessions`]).

use crate::pg::QualifiedName;

/// The backup's settings that make sessions of this database replicas: who they apply to (the
/// role, none for every role) and whether for this database only.
const REPLICA_SQL: &str = "SELECT r.rolname::text, d.setdatabase OPERATOR(pg_catalog.<>) 0 \
     FROM pg_catalog.pg_db_role_setting d LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) d.setrole \
     CROSS JOIN LATERAL pg_catalog.unnest(d.setconfig) AS c(setting) \
     WHERE (d.setdatabase OPERATOR(pg_catalog.=) 0 OR d.setdatabase OPERATOR(pg_catalog.=) (SELECT o.oid FROM pg_catalog.pg_database o \
            WHERE o.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())) \
       AND pg_catalog.lower(c.setting) OPERATOR(pg_catalog.=) 'session_replication_role=replica' ORDER BY 1 NULLS FIRST";

/// Whose sessions of this database are replicas by the backup's settings (`ALTER DATABASE ...
/// SET session_replication_role = replica`, or the same for a role): in those sessions a
/// trigger enabled the ordinary way (`tgenabled = 'O'`) does not fire and foreign keys are not
/// checked. Each entry names whose sessions and the statement that set it.
pub(crate) async fn replica_sessions(pool: &sqlx::PgPool) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(Option<String>, bool)> = sqlx::query_as(REPLICA_SQL).fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(role, this_database)| replica_origin(role.as_deref(), this_database)).collect())
}

fn replica_origin(role: Option<&str>, this_database: bool) -> String {
    match (role, this_database) {
        (None, true) => {
            "every session of the database (ALTER DATABASE ... SET session_replication_role = replica)".into()
        }
        (None, false) => {
            "every session of every database (ALTER ROLE ALL SET session_replication_role = replica)".into()
        }
        (Some(role), true) => format!(
            "the sessions of role `{role}` in this database (ALTER ROLE ... IN DATABASE ... SET session_replication_role = replica)"
        ),
        (Some(role), false) => {
            format!("the sessions of role `{role}` (ALTER ROLE ... SET session_replication_role = replica)")
        }
    }
}

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

    #[test]
    fn a_replica_setting_names_whose_sessions_and_the_statement() {
        assert!(replica_origin(None, true).starts_with("every session of the database (ALTER DATABASE"));
        assert!(replica_origin(Some("app"), false).contains("role `app` (ALTER ROLE ... SET"));
        assert!(replica_origin(Some("app"), true).contains("in this database (ALTER ROLE ... IN DATABASE"));
    }
}
