//! The window a scenario's own SQL runs in when it names no role (a `sql` check without `role`,
//! `point_in_time`'s facts): pgdrill's own session, whose settings are pinned
//! ([`crate::session`]) so that the backup cannot change what pgdrill's queries mean, opens for
//! that SQL, in a transaction that is always rolled back, PostgreSQL's default `search_path`
//! (`"$user", public`) and the scenario's `settings`, none of the backup's; and lets it read
//! views (pgdrill's own reads refuse them). Every setting applied is listed in the evidence.
//!
//! SQL that claims what a role can do never runs here: it runs in a session the role opened
//! itself ([`super::login`]).

use std::ops::{Deref, DerefMut};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::Settings;
use crate::pg::quote_literal;

/// PostgreSQL's default `search_path`.
const DEFAULT_PATH: &str = "\"$user\", public";

/// The settings a window applies, in order, with whether each is the scenario's: the default
/// `search_path`, then the scenario's (one of which may replace it).
fn plan(scenario: &Settings) -> Vec<(String, String, bool)> {
    let mut applied = vec![("search_path".to_owned(), DEFAULT_PATH.to_owned(), false)];
    for (name, value) in &scenario.0 {
        applied.retain(|(n, _, _)| !n.eq_ignore_ascii_case(name));
        applied.push((name.clone(), value.clone(), true));
    }
    applied
}

/// What a window applied, as evidence: one statement each, after a comment that says where its
/// value came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window(pub Vec<String>);

impl Window {
    /// The statements, to put before the probe's own: each ends with `;` and a new line.
    fn prefix(&self) -> String {
        self.0.iter().map(|s| format!("{s};\n")).collect()
    }
}

fn shown(name: &str, value: &str, scenario: bool) -> String {
    let origin = if scenario { "the scenario's" } else { "PostgreSQL's default" };
    format!("-- {origin}\nSET LOCAL {name} = {}", quote_literal(value))
}

/// The evidence of a window without scenario settings.
pub(crate) fn no_role_prefix() -> String {
    Window(plan(&Settings::default()).iter().map(|(n, v, s)| shown(n, v, *s)).collect()).prefix()
}

/// Opens the window in the transaction `conn` is in; returns the evidence that says what it
/// applied.
pub(crate) async fn open(conn: &mut sqlx::PgConnection, scenario: &Settings) -> sqlx::Result<Window> {
    // The scenario's SQL may read its views; pgdrill's own reads may not.
    sqlx::query(
        "SELECT pg_catalog.set_config('restrict_nonsystem_relation_kind', '', true) \
         WHERE pg_catalog.current_setting('restrict_nonsystem_relation_kind', true) IS NOT NULL",
    )
    .execute(&mut *conn)
    .await?;
    let mut window = Window::default();
    for (name, value, scenario) in plan(scenario) {
        sqlx::query("SELECT pg_catalog.set_config($1, $2, true)").bind(&name).bind(&value).execute(&mut *conn).await?;
        window.0.push(shown(&name, &value, scenario));
    }
    Ok(window)
}

/// The transaction a scenario's SQL without a role runs in: begun on the pool, the window open
/// (see the module), always rolled back.
pub(crate) struct Probe<'p> {
    tx: Transaction<'p, Postgres>,
    window: Window,
}

impl<'p> Probe<'p> {
    /// Begins the transaction and opens the window.
    pub(crate) async fn begin(pool: &'p PgPool, settings: &Settings) -> sqlx::Result<Self> {
        let mut tx = pool.begin().await?;
        let window = open(&mut tx, settings).await?;
        Ok(Probe { tx, window })
    }

    /// The evidence of `statement` run in this probe: the window, the statement.
    pub(crate) fn evidence(&self, statement: &str) -> String {
        evidence(&self.window, statement)
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

/// The evidence of `statement` run after `window`, in a transaction rolled back.
pub(crate) fn evidence(window: &Window, statement: &str) -> String {
    format!("-- pgdrill's own session, in a transaction that is rolled back\n{}{statement}", window.prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenarios_settings_come_after_the_default_path_and_may_replace_it() {
        let scenario =
            Settings([("app.tenant", "42"), ("search_path", "app")].map(|(n, v)| (n.to_owned(), v.to_owned())).into());
        let shown: Vec<(String, String, bool)> = plan(&scenario);
        assert_eq!(shown, vec![("app.tenant".into(), "42".into(), true), ("search_path".into(), "app".into(), true)]);
        assert!(no_role_prefix().contains("-- PostgreSQL's default\nSET LOCAL search_path = '\"$user\", public';"));
    }
}
