//! The window a scenario's own SQL runs in: what it sees, said in the evidence.
//!
//! pgdrill's sessions pin their settings ([`crate::session`]), so that the backup cannot change
//! what pgdrill's own queries mean. SQL the scenario wrote (a `sql` check, the probes of
//! `append_only` and fail-closed `rls`) runs in a transaction, always rolled back, that first
//! opens a window:
//!
//! - **as a role** (`role = "..."`): what that role's sessions get when they log in to the
//!   restored database, the backup's own `ALTER ROLE/DATABASE ... SET` (for the role in this
//!   database, else for the role, else for the database, as PostgreSQL applies them; never a
//!   `role` or `session_authorization` switch), then the scenario's `settings`: the probe sees
//!   what the application sees;
//! - **without a role**: pgdrill's superuser with PostgreSQL's default `search_path`
//!   (`"$user", public`) and none of the backup's settings, then the scenario's `settings`.
//!
//! Either way a view may be read (pgdrill's own reads refuse them), and every setting applied
//! is listed in the evidence with where it came from.

use std::ops::{Deref, DerefMut};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::Settings;
use crate::pg::{quote_literal, set_local_role};

/// The backup's settings for a role's sessions in the current database, most specific first:
/// `(origin rank, name=value)`.
const BACKUP_SETTINGS_SQL: &str = "\
SELECT s.rank, s.setting FROM ( \
  SELECT 1 AS rank, pg_catalog.unnest(d.setconfig) AS setting FROM pg_catalog.pg_db_role_setting d \
   WHERE d.setdatabase OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database()) \
     AND d.setrole OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1) \
  UNION ALL \
  SELECT 2, pg_catalog.unnest(d.setconfig) FROM pg_catalog.pg_db_role_setting d \
   WHERE d.setdatabase OPERATOR(pg_catalog.=) 0 \
     AND d.setrole OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1) \
  UNION ALL \
  SELECT 3, pg_catalog.unnest(d.setconfig) FROM pg_catalog.pg_db_role_setting d \
   WHERE d.setrole OPERATOR(pg_catalog.=) 0 \
     AND d.setdatabase OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database()) \
) s ORDER BY s.rank";

/// Settings of the backup a window never applies: who the session is (the probe switches role
/// itself), and what pgdrill reads its answers with.
const NEVER: [&str; 4] = ["role", "session_authorization", "lc_messages", "track_counts"];

/// PostgreSQL's default `search_path`.
const DEFAULT_PATH: &str = "\"$user\", public";

/// One setting a window applied, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    pub name: String,
    pub value: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The backup's `ALTER ROLE ... IN DATABASE ... SET` or `ALTER ROLE ... SET`.
    Role,
    /// The backup's `ALTER DATABASE ... SET`.
    Database,
    /// The scenario's `settings`.
    Scenario,
    /// PostgreSQL's default.
    Default,
}

impl Applied {
    fn evidence(&self, role: Option<&str>) -> String {
        // A custom setting of the backup (`app.jwt_secret`) may hold a secret: its value is not shown.
        let hidden = self.name.contains('.') && matches!(self.origin, Origin::Role | Origin::Database);
        let value = if hidden { "<the backup's value>".to_owned() } else { quote_literal(&self.value) };
        let origin = match (self.origin, role) {
            (Origin::Role, Some(role)) => format!("the backup's setting for {role}"),
            (Origin::Database, _) => "the backup's setting for every role of the database".into(),
            (Origin::Scenario, _) => "the scenario's".into(),
            _ => "PostgreSQL's default".into(),
        };
        format!("-- {origin}\nSET LOCAL {} = {value}", self.name)
    }
}

/// The settings a window for `role` applies, in order: the backup's (`rows` of
/// [`BACKUP_SETTINGS_SQL`], most specific first, one per name), the default `search_path` when
/// the backup sets none, then the scenario's.
pub(crate) fn plan(role: Option<&str>, rows: &[(i32, String)], scenario: &Settings) -> Vec<Applied> {
    let mut applied: Vec<Applied> = Vec::new();
    if role.is_some() {
        for (rank, setting) in rows {
            let Some((name, value)) = setting.split_once('=') else { continue };
            let name = name.trim().to_ascii_lowercase();
            if NEVER.contains(&name.as_str()) || applied.iter().any(|a| a.name == name) {
                continue;
            }
            let origin = if *rank == 3 { Origin::Database } else { Origin::Role };
            applied.push(Applied { name, value: value.to_owned(), origin });
        }
    }
    if !applied.iter().any(|a| a.name == "search_path") {
        applied.insert(0, Applied { name: "search_path".into(), value: DEFAULT_PATH.into(), origin: Origin::Default });
    }
    for (name, value) in &scenario.0 {
        applied.retain(|a| !a.name.eq_ignore_ascii_case(name));
        applied.push(Applied { name: name.clone(), value: value.clone(), origin: Origin::Scenario });
    }
    applied
}

/// What a window applied, as evidence: one statement each, after a comment that says where its
/// value came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window(pub Vec<String>);

impl Window {
    /// The statements, to put before the probe's own: each ends with `;` and a new line.
    pub(super) fn prefix(&self) -> String {
        self.0.iter().map(|s| format!("{s};\n")).collect()
    }

    /// The names of the settings it applied.
    pub(super) fn names(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|s| s.lines().last()?.strip_prefix("SET LOCAL ")?.split_once(" = ").map(|(n, _)| n.to_owned()))
            .collect()
    }
}

/// The evidence of a window without a role and without scenario settings.
pub(crate) fn no_role_prefix() -> String {
    let plan = plan(None, &[], &Settings::default());
    Window(plan.iter().map(|a| a.evidence(None)).collect()).prefix()
}

/// Opens the window for `role` in the transaction `conn` is in (before the probe's `SET LOCAL
/// ROLE`); returns the evidence that says what it applied.
pub(crate) async fn open(
    conn: &mut sqlx::PgConnection,
    role: Option<&str>,
    scenario: &Settings,
) -> sqlx::Result<Window> {
    // The scenario's SQL may read its views; pgdrill's own reads may not.
    sqlx::query(
        "SELECT pg_catalog.set_config('restrict_nonsystem_relation_kind', '', true) \
         WHERE pg_catalog.current_setting('restrict_nonsystem_relation_kind', true) IS NOT NULL",
    )
    .execute(&mut *conn)
    .await?;
    let rows: Vec<(i32, String)> = match role {
        Some(role) => sqlx::query_as(BACKUP_SETTINGS_SQL).bind(role).fetch_all(&mut *conn).await?,
        None => Vec::new(),
    };
    let applied = plan(role, &rows, scenario);
    let mut window = Window::default();
    for setting in &applied {
        sqlx::query("SELECT pg_catalog.set_config($1, $2, true)")
            .bind(&setting.name)
            .bind(&setting.value)
            .execute(&mut *conn)
            .await?;
        window.0.push(setting.evidence(role));
    }
    Ok(window)
}

/// The transaction a probe runs in: begun on the pool, the window for `role` open (see the
/// module), always rolled back. `sql`, `append_only` and fail-closed `rls` all run in one.
pub(crate) struct Probe<'p> {
    tx: Transaction<'p, Postgres>,
    /// What the window applied, as evidence.
    pub(crate) window: Window,
    role: Option<String>,
}

impl<'p> Probe<'p> {
    /// Begins the transaction and opens the window (before any savepoint: rolling back to one
    /// would undo it).
    pub(crate) async fn begin(pool: &'p PgPool, role: Option<&str>, settings: &Settings) -> sqlx::Result<Self> {
        let mut tx = pool.begin().await?;
        let window = open(&mut tx, role, settings).await?;
        Ok(Probe { tx, window, role: role.map(str::to_owned) })
    }

    /// `SET LOCAL ROLE` to the probe's role, when it has one.
    pub(crate) fn set_role(&self) -> Option<String> {
        self.role.as_deref().map(set_local_role)
    }

    /// Switches to the probe's role for the rest of the transaction (or of the savepoint it is in).
    pub(crate) async fn become_role(&mut self) -> sqlx::Result<()> {
        if let Some(set_role) = self.set_role() {
            sqlx::query(&set_role).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// The evidence of `statement` run in this probe as the role: the window, the role switch,
    /// the statement.
    pub(crate) fn evidence(&self, statement: &str) -> String {
        evidence(&self.window, self.role.as_deref(), statement)
    }

    /// Rolls back everything the probe did.
    pub(crate) async fn rollback(self) -> sqlx::Result<()> {
        self.tx.rollback().await
    }
}

impl Deref for Probe<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Probe<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

/// The evidence of `statement` run as `role` after `window`, in a transaction rolled back.
pub(crate) fn evidence(window: &Window, role: Option<&str>, statement: &str) -> String {
    let set_role = role.map(|r| format!("{};\n", set_local_role(r))).unwrap_or_default();
    format!("-- in a transaction that is rolled back\n{}{set_role}{statement}", window.prefix())
}

/// Runs `f` in the savepoint `name`, as `role` when one is given, and rolls the savepoint back
/// after it whatever `f` did: a try that leaves the transaction as it was.
pub(crate) async fn in_savepoint<T>(
    conn: &mut PgConnection,
    name: &str,
    role: Option<&str>,
    f: impl AsyncFnOnce(&mut PgConnection) -> T,
) -> sqlx::Result<T> {
    sqlx::query(&format!("SAVEPOINT {name}")).execute(&mut *conn).await?;
    if let Some(role) = role {
        sqlx::query(&set_local_role(role)).execute(&mut *conn).await?;
    }
    let out = f(&mut *conn).await;
    sqlx::query(&format!("ROLLBACK TO SAVEPOINT {name}")).execute(&mut *conn).await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
    }

    #[test]
    fn a_role_gets_the_backups_settings_most_specific_first() {
        let rows = vec![
            (1, "search_path=app, public".to_owned()),
            (2, "search_path=other".to_owned()),
            (2, "role=postgres".to_owned()),
            (3, "statement_timeout=5s".to_owned()),
            (3, "app.tenant=7".to_owned()),
        ];
        let plan = plan(Some("app"), &rows, &settings(&[("app.tenant", "42")]));
        let shown: Vec<(&str, &str, Origin)> =
            plan.iter().map(|a| (a.name.as_str(), a.value.as_str(), a.origin)).collect();
        assert_eq!(
            shown,
            vec![
                ("search_path", "app, public", Origin::Role),
                ("statement_timeout", "5s", Origin::Database),
                ("app.tenant", "42", Origin::Scenario),
            ]
        );
        let evidence: String = plan.iter().map(|a| a.evidence(Some("app"))).collect();
        assert!(evidence.contains("-- the backup's setting for app\nSET LOCAL search_path = 'app, public'"));
        assert!(evidence.contains("-- the backup's setting for every role of the database\n"));
        assert!(evidence.contains("-- the scenario's\nSET LOCAL app.tenant = '42'"));
        let window = Window(plan.iter().map(|a| a.evidence(Some("app"))).collect());
        assert_eq!(window.names(), ["search_path", "statement_timeout", "app.tenant"]);
    }

    #[test]
    fn without_a_role_nothing_of_the_backup_applies() {
        let rows = vec![(3, "search_path=fake, public".to_owned())];
        let plan = plan(None, &rows, &Settings::default());
        assert_eq!(plan.len(), 1);
        assert_eq!((plan[0].value.as_str(), plan[0].origin), (DEFAULT_PATH, Origin::Default));
    }

    #[test]
    fn a_custom_setting_of_the_backup_is_not_shown() {
        let rows = vec![(2, "app.jwt_secret=s3cret".to_owned())];
        let plan = plan(Some("web"), &rows, &Settings::default());
        let evidence: String = plan.iter().map(|a| a.evidence(Some("web"))).collect();
        assert!(!evidence.contains("s3cret"), "{evidence}");
        assert!(evidence.contains("app.jwt_secret = <the backup's value>"));
    }
}
