//! How the application's roles log in to a target: with a password made for the drill (or the
//! one the scenario gives, on a shared server), set once per role and shared by everything that
//! logs in as it (the checks' probes, the app, a migration command).
//!
//! `ALTER ROLE ... WITH LOGIN PASSWORD` changes what only a superuser reads (`pg_authid`'s
//! password), and `rolcanlogin` for a role the backup made `NOLOGIN` (which [`RoleLogin`] says,
//! so the evidence does). On a shared server a role that existed before the drill is the
//! server's, not the drill's: pgdrill never changes its password, and it logs in with the one
//! the scenario gives.

use std::collections::BTreeMap;

use super::{Target, TargetError};
use crate::pg::{quote_ident, quote_literal};
use crate::secret::{Redactor, Secret};

/// The logins made on a target, by role.
#[derive(Default)]
pub struct RoleLogins {
    made: tokio::sync::Mutex<BTreeMap<String, RoleLogin>>,
}

/// How a role logs in for the drill.
#[derive(Clone)]
pub struct RoleLogin {
    pub password: Secret,
    /// Where the password came from, as the evidence says it.
    pub origin: PasswordOrigin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordOrigin {
    /// Made for the drill; the role could log in already.
    Made,
    /// Made for the drill, and the role was `NOLOGIN` in the restored database: given `LOGIN`.
    MadeAndLogin,
    /// The scenario's (`[login] passwords`).
    Given,
}

impl PasswordOrigin {
    pub fn describe(self) -> &'static str {
        match self {
            PasswordOrigin::Made => "a password made for the drill",
            PasswordOrigin::MadeAndLogin => {
                "a password made for the drill; the role was NOLOGIN in the restore and was given LOGIN"
            }
            PasswordOrigin::Given => "the password the scenario gives",
        }
    }
}

impl Target {
    /// How `role` logs in to `database`: the password `given` by the scenario, else one made for
    /// the drill on the first call (the same for every later call). A role of a shared server
    /// that the drill did not create needs `given`.
    pub async fn role_login(
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
        let login = match given {
            Some(password) => {
                redactor.register(&password);
                RoleLogin { password, origin: PasswordOrigin::Given }
            }
            None => self.make_login(database, role, redactor).await?,
        };
        made.insert(role.to_owned(), login.clone());
        Ok(login)
    }

    async fn make_login(&self, database: &str, role: &str, redactor: &Redactor) -> Result<RoleLogin, TargetError> {
        use sqlx::{Connection, Executor};
        let shared = self.database_suffix.is_some();
        let created = self.created.lock().map(|c| c.roles.iter().any(|r| r == role)).unwrap_or(false);
        if shared && !created {
            return Err(TargetError::SharedRole { role: role.to_owned() });
        }
        let password = Secret::random_password();
        redactor.register(&password);
        let fail =
            |e: sqlx::Error| TargetError::Login { role: role.to_owned(), message: redactor.redact(&e.to_string()) };
        let mut conn = sqlx::PgConnection::connect_with(&self.connect_options(database)).await.map_err(fail)?;
        let could: Option<bool> =
            sqlx::query_scalar("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1")
                .bind(role)
                .fetch_optional(&mut conn)
                .await
                .map_err(fail)?;
        let Some(could) = could else {
            conn.close().await.ok();
            return Err(TargetError::Login {
                role: role.to_owned(),
                message: "the role does not exist in the restored database".into(),
            });
        };
        let sql = format!("ALTER ROLE {} WITH LOGIN PASSWORD {}", quote_ident(role), quote_literal(password.expose()));
        conn.execute(sqlx::raw_sql(&sql)).await.map_err(fail)?;
        conn.close().await.ok();
        let origin = if could { PasswordOrigin::Made } else { PasswordOrigin::MadeAndLogin };
        Ok(RoleLogin { password, origin })
    }
}
