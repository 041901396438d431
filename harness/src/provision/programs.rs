//! How the programs a drill starts (the application, a migration command) reach the target:
//! with a server's own connection details, or through a loopback port forwarded to a sandbox's
//! socket as a superuser made for them.

use sqlx::postgres::PgSslMode;

use super::{Target, TargetError, bridge};
use crate::pg::quote_ident;
use crate::secret::{Redactor, Secret};

/// How the programs a drill starts (the app, a migration command) reach the server.
pub(crate) enum Programs {
    /// With the target's own connection details (a server target).
    Direct,
    /// Through a loopback port forwarded to the socket, opened when first asked for and closed
    /// with the target; as `role`, a superuser with a fresh password made when first needed.
    Bridged { role: String, bridge: tokio::sync::OnceCell<bridge::Bridge>, superuser: tokio::sync::OnceCell<Secret> },
}

impl Programs {
    /// For a sandboxed target of drill `drill_id`.
    pub(crate) fn bridged(drill_id: &str) -> Programs {
        let short: String = drill_id.chars().take(8).collect();
        Programs::Bridged {
            role: format!("pgdrill_{short}"),
            bridge: tokio::sync::OnceCell::new(),
            superuser: tokio::sync::OnceCell::new(),
        }
    }
}

/// How a program logs in to the target: what `{{database_url}}` and its parts say.
#[derive(Clone)]
pub(crate) struct ProgramLogin {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    /// libpq's `sslmode`.
    pub ssl_mode: &'static str,
}

impl Target {
    /// How a program the drill starts logs in: as `login` (a role and the password it was
    /// given), or else as a superuser. On a server, with the target's own details; on a sandbox,
    /// through a loopback port forwarded to the socket (opened on the first call), as a superuser
    /// role made for the programs (made on the first call that needs it).
    pub(crate) async fn program_login(
        &self,
        login: Option<(String, Secret)>,
        redactor: &Redactor,
    ) -> Result<ProgramLogin, TargetError> {
        match &self.programs {
            Programs::Direct => {
                let (user, password) = login
                    .unwrap_or_else(|| (self.user.clone(), self.password.clone().unwrap_or_else(|| Secret::new(""))));
                let ssl_mode = match self.ssl_mode {
                    PgSslMode::Disable => "disable",
                    PgSslMode::Allow => "allow",
                    PgSslMode::Prefer => "prefer",
                    PgSslMode::Require => "require",
                    PgSslMode::VerifyCa => "verify-ca",
                    PgSslMode::VerifyFull => "verify-full",
                };
                Ok(ProgramLogin { host: self.host.clone(), port: self.port, user, password, ssl_mode })
            }
            Programs::Bridged { role, bridge, superuser } => {
                let bridge = bridge
                    .get_or_try_init(|| {
                        // Through the relay where there is one: the programs log in over TCP.
                        bridge::open(std::path::Path::new(&self.host), self.tcp_relay.unwrap_or(self.port), &self.user)
                    })
                    .await
                    .map_err(|source| TargetError::ProgramsIo { action: "cannot open a loopback port", source })?;
                let (user, password) = match login {
                    Some(login) => login,
                    None => {
                        let password = superuser.get_or_try_init(|| self.create_superuser(role, redactor)).await?;
                        (role.clone(), password.clone())
                    }
                };
                Ok(ProgramLogin { host: "127.0.0.1".into(), port: bridge.port, user, password, ssl_mode: "disable" })
            }
        }
    }

    /// A superuser `role` with a fresh password, for the programs the drill starts.
    async fn create_superuser(&self, role: &str, redactor: &Redactor) -> Result<Secret, TargetError> {
        use sqlx::{Connection, Executor};
        let password = Secret::random_password();
        redactor.register(&password);
        let fail = |source: sqlx::Error| TargetError::Programs { source };
        let mut conn =
            sqlx::PgConnection::connect_with(&self.connect_options(&self.maintenance_db)).await.map_err(fail)?;
        let sql = format!(
            "CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}",
            quote_ident(role),
            crate::pg::quote_literal(password.expose())
        );
        conn.execute(sqlx::raw_sql(&sql)).await.map_err(fail)?;
        conn.close().await.ok();
        Ok(password)
    }
}
