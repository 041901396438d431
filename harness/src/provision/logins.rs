//! How the application's roles log in to a target: with a password made for the drill (or the
//! one the scenario gives, on a shared server), set once per role and shared by everything that
//! logs in as it (the checks' probes, the app, a migration command).
//!
//! `ALTER ROLE ... PASSWORD` changes what only a superuser reads (`pg_authid`'s password). A
//! role the backup made `NOLOGIN` is not given `LOGIN` for good: a probe that must be that role
//! ([`Target::nologin_open`]) grants it only while its session authenticates, and takes it back
//! at once, so the catalog every other session reads (a `roles` check included) stays the
//! backup's. The app phase, whose program connects as it likes, gives its role `LOGIN`
//! ([`Target::grant_login`]). On a shared server a role that existed before the drill is the
//! server's, not the drill's: pgdrill never changes its password, and it logs in with the one
//! the scenario gives.

use std::collections::BTreeMap;

use super::{Target, TargetError};
use crate::pg::{quote_ident, quote_literal};
use crate::secret::{Redactor, Secret};

/// The logins made on a target, by role; one role's `NOLOGIN` lifted at a time.
#[derive(Default)]
pub(crate) struct RoleLogins {
    made: tokio::sync::Mutex<BTreeMap<String, RoleLogin>>,
    lifting: tokio::sync::Mutex<()>,
}

/// How a role logs in for the drill.
#[derive(Clone)]
pub(crate) struct RoleLogin {
    pub password: Secret,
    /// Where the password came from, as the evidence says it.
    pub origin: PasswordOrigin,
    /// `NOLOGIN` in the restored database.
    pub nologin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PasswordOrigin {
    /// Made for the drill.
    Made,
    /// The scenario's (`[login] passwords`).
    Given,
}

impl RoleLogin {
    /// How the evidence says the role logged in.
    pub(crate) fn describe(&self) -> &'static str {
        match (self.origin, self.nologin) {
            (PasswordOrigin::Made, false) => "a password made for the drill",
            (PasswordOrigin::Made, true) => {
                "a password made for the drill; NOLOGIN in the restore, given LOGIN only while this session authenticated"
            }
            (PasswordOrigin::Given, _) => "the password the scenario gives",
        }
    }
}

impl Target {
    /// How `role` logs in to `database`: the password `given` by the scenario, else one made for
    /// the drill on the first call (the same for every later call). A role of a shared server
    /// that the drill did not create needs `given`.
    pub(crate) async fn role_login(
        &self,
        database: &str,
        role: &str,
        given: Option<Secret>,
        redactor: &Redactor,
    ) -> Result<RoleLogin, TargetError> {
        let mut made = self.logins.made.lock().await;
        if let Some(login) = made.get(role) {
            return Ok(login.clone());
        }
        let fail = |source: sqlx::Error| TargetError::Login { role: role.to_owned(), source };
        let mut conn = self.admin(database).await.map_err(fail)?;
        let could: Option<bool> =
            sqlx::query_scalar("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1")
                .bind(role)
                .fetch_optional(&mut conn)
                .await
                .map_err(fail)?;
        let Some(could) = could else {
            return Err(TargetError::NoRole { role: role.to_owned() });
        };
        let login = match given {
            Some(password) => {
                redactor.register(&password);
                RoleLogin { password, origin: PasswordOrigin::Given, nologin: !could }
            }
            None => {
                let shared = self.database_suffix.is_some();
                let created = self.created.lock().map(|c| c.roles.iter().any(|r| r == role)).unwrap_or(false);
                if shared && !created {
                    return Err(TargetError::SharedRole { role: role.to_owned() });
                }
                let password = Secret::random_password();
                redactor.register(&password);
                let sql = format!("ALTER ROLE {} PASSWORD {}", quote_ident(role), quote_literal(password.expose()));
                sqlx::query(&sql).execute(&mut conn).await.map_err(fail)?;
                RoleLogin { password, origin: PasswordOrigin::Made, nologin: !could }
            }
        };
        use sqlx::Connection;
        conn.close().await.ok();
        made.insert(role.to_owned(), login.clone());
        Ok(login)
    }

    /// Gives `role` `LOGIN` for good (the app phase's role: its program connects as it likes).
    pub(crate) async fn grant_login(&self, database: &str, role: &str) -> Result<(), TargetError> {
        self.set_login(database, role, true).await
    }

    /// Runs `connect` with `role`'s `NOLOGIN` lifted, and puts it back after, one role at a time.
    pub(crate) async fn nologin_open<T>(
        &self,
        database: &str,
        role: &str,
        connect: impl AsyncFnOnce() -> T,
    ) -> Result<T, TargetError> {
        let _one_at_a_time = self.logins.lifting.lock().await;
        self.set_login(database, role, true).await?;
        let connected = connect().await;
        self.set_login(database, role, false).await?;
        Ok(connected)
    }

    async fn set_login(&self, database: &str, role: &str, login: bool) -> Result<(), TargetError> {
        use sqlx::Connection;
        let fail = |source: sqlx::Error| TargetError::Login { role: role.to_owned(), source };
        let mut conn = self.admin(database).await.map_err(fail)?;
        let sql = format!("ALTER ROLE {} {}", quote_ident(role), if login { "LOGIN" } else { "NOLOGIN" });
        sqlx::query(&sql).execute(&mut conn).await.map_err(fail)?;
        conn.close().await.ok();
        Ok(())
    }

    async fn admin(&self, database: &str) -> sqlx::Result<sqlx::PgConnection> {
        use sqlx::Connection;
        sqlx::PgConnection::connect_with(&self.connect_options(database)).await
    }
}
