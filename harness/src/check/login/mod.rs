//! The application's own sessions: every probe that claims what a role can or cannot do (the
//! reads of fail-closed `rls`, the writes of `append_only`, a `sql` check with a `role`) runs in
//! a session that role opened itself, a real login, never in pgdrill's superuser session after
//! `SET ROLE`.
//!
//! A backup can read everything about the session its code runs in: `session_user`, the client
//! address, `application_name`, the settings in force and where they came from, what else is
//! connected. So the probe logs in as the application does: as the role, with a password made
//! for the drill (or the scenario's, on a shared server: [`crate::provision::logins`]), over
//! the application's way in (`[login] transport`: TCP by default, which a container target's
//! relay gives from 127.0.0.1 inside the sandbox; the Unix socket where the scenario says so or
//! the target has no other; a server's address with its `sslmode`), with the
//! `application_name` the scenario gives (`[login] application_name`, default: the role's
//! name), through a client that sends at login only what libpq does (user,
//! database, `application_name`, `client_encoding`: tokio-postgres, where sqlx would pin
//! `TimeZone` and `DateStyle`). PostgreSQL then applies what it applies to any login of the
//! role: the role's, the database's and the role-in-database settings, `role` and
//! `search_path` included, and a PostgreSQL 17 login event trigger runs. None of pgdrill's own
//! pins are there.
//!
//! Every statement pgdrill runs in such a session names what it calls by its schema
//! (`pg_catalog.count`, `OPERATOR(pg_catalog.=)`, `::pg_catalog.text`): the role's own
//! `search_path` decides what the scenario's SQL and the policies see, never what pgdrill's own
//! words mean. The evidence of each probe starts with [`Identity::evidence`]: who the session
//! is after login (`session_user`, `current_user`), from where, its `application_name` and the
//! settings in force, each with where it came from.

pub(crate) mod names;
mod tls;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use tokio_postgres::SimpleQueryMessage;

use crate::pg::quote_literal;
use crate::provision::Target;
use crate::provision::logins::RoleLogin;
use crate::secret::{Redactor, Secret};

/// How long a login may take.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// `[login]`: how the application logs in to its database.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Login")]
pub(crate) struct Config {
    /// The role the application logs in as. Scenario names without a schema (a `row_counts`
    /// table, a journal's) resolve as its sessions resolve them (default: `[app] role`). With
    /// none named, any login role of the backup may be the application's: a name that one of
    /// them resolves to another object than pgdrill reads fails until the role is named.
    pub role: Option<String>,
    /// What the application's sessions call themselves (`application_name`). Default: what
    /// `[app] env` gives `PGAPPNAME` or `application_name=` in a connection string, else the
    /// role's name.
    pub application_name: Option<String>,
    /// Environment variables holding the passwords of roles pgdrill may not change (a shared
    /// server's own roles): `{ app = "APP_DB_PASSWORD" }`. Other roles get a password made for
    /// the drill.
    #[serde(default)]
    pub passwords: BTreeMap<String, String>,
    /// The role the application logs in as before it switches (`SET ROLE`) to the role a check
    /// names, as PostgREST's `authenticator` does: the probes log in as it and switch the same
    /// way (default: they log in as the check's role).
    pub via: Option<String>,
    /// How the application reaches the server: `tcp` (the default: on a container target,
    /// through a relay inside the sandbox, so the server sees a TCP login from 127.0.0.1 as it
    /// sees the application's) or `socket` (its Unix socket, as an application on the
    /// database's own machine connects). The probes and the programs the drill starts log in
    /// this way.
    pub transport: Option<Transport>,
}

/// How the application reaches the server (`[login] transport`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    #[default]
    Tcp,
    Socket,
}

/// `[login]`, resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spec {
    pub role: Option<String>,
    pub application_name: Option<String>,
    pub passwords: BTreeMap<String, String>,
    pub via: Option<String>,
    pub transport: Transport,
    /// Other roles the application may log in as: the scenario's `[[restore.roles]]` that can.
    pub roles: Vec<String>,
}

impl Spec {
    /// From the scenario's `[login]` (defaults filled in by the scenario from `[app]`).
    pub(crate) fn resolve(config: Config) -> Spec {
        Spec {
            role: config.role,
            application_name: config.application_name,
            passwords: config.passwords,
            via: config.via,
            transport: config.transport.unwrap_or_default(),
            roles: Vec::new(),
        }
    }

    /// The application's roles: `[login] role`, the scenario's login roles and `also` (the
    /// roles the checks log in as), each once.
    pub(crate) fn application_roles(&self, also: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut roles: Vec<String> = Vec::new();
        for role in self.role.iter().cloned().chain(self.roles.iter().cloned()).chain(also) {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        roles
    }
}

/// Why a role's session could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    /// The role could not be given a password (or it is a shared server's).
    #[error(transparent)]
    Password(#[from] crate::provision::TargetError),
    /// The scenario names an environment variable for the password, and it is not set.
    #[error("the password of `{role}` is read from `{var}`, which is not set")]
    PasswordUnset { role: String, var: String },
    /// TLS for the server's `sslmode` could not be set up.
    #[error("cannot encrypt the session of `{role}`")]
    Tls {
        role: String,
        #[source]
        source: tls::TlsError,
    },
    /// The server refused the login, or did not answer.
    #[error("`{role}` cannot log in to `{database}`: {message}")]
    Refused { role: String, database: String, message: String },
    /// Who the session is could not be read after login.
    #[error("cannot read who the session of `{role}` is after login: {message}")]
    Identity { role: String, message: String },
}

/// What a statement in a role's session came to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answer {
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows affected (or returned), as the server's command tag says.
    pub affected: u64,
}

impl Answer {
    /// The first column of the first row.
    pub(crate) fn first(&self) -> Option<&str> {
        self.rows.first().and_then(|r| r.first()).and_then(|v| v.as_deref())
    }

    /// The first value as an integer.
    pub(crate) fn int(&self) -> Option<i64> {
        self.first().and_then(|v| v.parse().ok())
    }
}

/// Why a statement in a role's session failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The server's answer: its SQLSTATE, message, detail and context (`CONTEXT` lines, where a
    /// PL/pgSQL `RAISE` shows as `... at RAISE`).
    Database { code: String, message: String, detail: Option<String>, context: Option<String> },
    /// No answer: the connection failed.
    Lost(String),
}

impl Failure {
    fn of(err: &tokio_postgres::Error) -> Failure {
        match err.as_db_error() {
            Some(db) => Failure::Database {
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
                detail: db.detail().map(str::to_owned),
                context: db.where_().map(str::to_owned),
            },
            None => Failure::Lost(err.to_string()),
        }
    }

    /// The SQLSTATE and context, when the server answered.
    pub(crate) fn sqlstate(&self) -> Option<(&str, Option<&str>)> {
        match self {
            Failure::Database { code, context, .. } => Some((code.as_str(), context.as_deref())),
            Failure::Lost(_) => None,
        }
    }

    /// The message alone.
    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Database { message, .. } | Failure::Lost(message) => message,
        }
    }

    /// One line: the message, its SQLSTATE and detail.
    pub(crate) fn describe(&self) -> String {
        match self {
            Failure::Database { code, message, detail: Some(detail), .. } => format!("{message} ({code}; {detail})"),
            Failure::Database { code, message, detail: None, .. } => format!("{message} ({code})"),
            Failure::Lost(message) => format!("the session was lost: {message}"),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Who a role's session is after login, and what it was given: the evidence names it exactly.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// The role that logged in.
    pub user: String,
    pub session_user: String,
    /// Who the session is after login (another role when the role's settings give it one).
    pub current_user: String,
    /// The client address the server sees (none over a Unix socket).
    pub address: Option<String>,
    pub application_name: String,
    /// How it reached the server.
    pub transport: String,
    /// How it logged in (its password, and whether the role had to be given LOGIN to).
    pub login: &'static str,
    /// The role it switched to after login, as the application does (`[login] via`).
    pub set_role: Option<String>,
    /// The settings in force that did not come from the server's configuration: `name = value
    /// (where from)`; a custom setting's value is not shown.
    pub settings: Vec<String>,
}

impl Identity {
    /// The lines that open a probe's evidence.
    pub(crate) fn evidence(&self) -> String {
        let became = match &self.set_role {
            Some(role) => format!(
                ", then `SET ROLE {role}` as the application does (`[login] via`): current_user `{}`",
                self.current_user
            ),
            None if self.current_user != self.user => {
                format!(", which became `{}` at login (the role's `role` setting)", self.current_user)
            }
            None => String::new(),
        };
        let address = self
            .address
            .as_deref()
            .map(|a| format!("client address {a}"))
            .unwrap_or_else(|| "no client address (a Unix socket)".to_owned());
        let settings = if self.settings.is_empty() { "none".to_owned() } else { self.settings.join(", ") };
        format!(
            "-- a real login of `{}` ({}) {}: session_user `{}`{became}; {address}; application_name {}\n\
             -- settings in force from the login (beyond the server's configuration): {settings}\n",
            self.user,
            self.login,
            self.transport,
            self.session_user,
            quote_literal(&self.application_name),
        )
    }
}

impl LoginError {
    /// What a check says when it could not log in as `role`: a role that does not exist comes
    /// with the name the scenario probably meant.
    pub(crate) async fn said(&self, pool: &sqlx::PgPool, role: &str) -> String {
        let message = format!("could not log in as `{role}`: {}", crate::error::error_chain(self));
        match self {
            LoginError::Password(crate::provision::TargetError::NoRole { .. }) => {
                let written = crate::pg::QualifiedName { schema: None, name: role.to_owned() };
                crate::names::with_hint(pool, crate::names::Object::Role, &written, message).await
            }
            _ => message,
        }
    }
}

/// Opens the sessions of the application's roles on the restored database.
pub(crate) struct Logins<'a> {
    pub target: &'a Target,
    pub database: &'a str,
    pub redactor: &'a Redactor,
    pub spec: &'a Spec,
}

impl Logins<'_> {
    /// A real login of `role`: see the module. A role the backup made `NOLOGIN` logs in with
    /// `LOGIN` lifted only while it authenticates ([`Target::nologin_open`]). With `[login] via`,
    /// a login of that role, which then switches to `role` as the application does.
    pub(crate) async fn open(&self, role: &str) -> Result<AppSession, LoginError> {
        let Some(via) = self.spec.via.as_deref().filter(|via| *via != role) else {
            return self.open_as(role, true).await;
        };
        let mut session = self.open_as(via, false).await?;
        let switched = async {
            session.run(&format!("SET ROLE {}", crate::pg::quote_ident(role))).await?;
            session.run("SELECT current_user::pg_catalog.text").await
        }
        .await;
        match switched {
            Ok(answer) => {
                session.identity.current_user = answer.first().unwrap_or_default().to_owned();
                session.identity.set_role = Some(role.to_owned());
                Ok(session)
            }
            Err(failure) => Err(LoginError::Refused {
                role: role.to_owned(),
                database: self.database.to_owned(),
                message: format!("`{via}` logged in, and cannot SET ROLE `{role}`: {failure}"),
            }),
        }
    }

    /// Whether the probes of `role` are sessions the application has: the role can log in, or
    /// the application reaches it from its login (`[login] via`). Otherwise who the session is
    /// is not the application's (a NOLOGIN role lifted to log in).
    pub(crate) async fn as_the_application(&self, pool: &sqlx::PgPool, role: &str) -> bool {
        if self.spec.via.is_some() {
            return true;
        }
        sqlx::query_scalar::<_, bool>(
            "SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1",
        )
        .bind(role)
        .fetch_optional(pool)
        .await
        .ok()
        .flatten()
        .unwrap_or(true)
    }

    /// [`Logins::open`], but a `NOLOGIN` role is refused (`allow_nologin` false): what the
    /// application cannot log in as is not how it resolves names.
    pub(crate) async fn open_as(&self, role: &str, allow_nologin: bool) -> Result<AppSession, LoginError> {
        let given = match self.spec.passwords.get(role) {
            Some(var) => Some(
                std::env::var(var)
                    .map(Secret::new)
                    .map_err(|_| LoginError::PasswordUnset { role: role.to_owned(), var: var.clone() })?,
            ),
            None => None,
        };
        let login = self.target.role_login(self.database, role, given, self.redactor).await?;
        let application_name = self.spec.application_name.clone().unwrap_or_else(|| role.to_owned());
        let mut config = tokio_postgres::Config::new();
        config
            .user(role)
            .password(login.password.expose())
            .dbname(self.database)
            .application_name(&application_name)
            .connect_timeout(LOGIN_TIMEOUT);
        let transport = self.transport(&mut config);
        let refused = |message: String| LoginError::Refused {
            role: role.to_owned(),
            database: self.database.to_owned(),
            message: self.redactor.redact(&message),
        };
        if login.nologin && !allow_nologin {
            return Err(refused("the role is NOLOGIN in the restored database".into()));
        }
        let socket = self.target.host.starts_with('/');
        let tls = match socket {
            true => None,
            false => Some(
                tls::for_mode(self.target.ssl_mode, self.target.ssl_root_cert.as_deref())
                    .map_err(|source| LoginError::Tls { role: role.to_owned(), source })?,
            ),
        };
        let dial = async || match tls {
            None => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                tokio::time::timeout(LOGIN_TIMEOUT, connect(&config, tokio_postgres::NoTls)).await
            }
            Some(tls) => {
                config.ssl_mode(tls.mode);
                tokio::time::timeout(LOGIN_TIMEOUT, connect(&config, tls.connector)).await
            }
        };
        let connected = match login.nologin {
            true => self.target.nologin_open(self.database, role, dial).await?,
            false => dial().await,
        };
        let (client, connection) = connected
            .map_err(|_| refused(format!("no answer within {}", humantime::format_duration(LOGIN_TIMEOUT))))?
            .map_err(|e| refused(Failure::of(&e).describe()))?;
        let identity = read_identity(&client, role, transport, &login).await.map_err(|f| LoginError::Identity {
            role: role.to_owned(),
            message: self.redactor.redact(&f.describe()),
        })?;
        Ok(AppSession { client, connection, identity })
    }
}

impl Logins<'_> {
    /// Points `config` where the application's logins reach the target, and says how: the
    /// sandbox's relay (TCP from 127.0.0.1), its socket, or the server's own address.
    fn transport(&self, config: &mut tokio_postgres::Config) -> String {
        let target = self.target;
        if !target.host.starts_with('/') {
            config.host(&target.host).port(target.port);
            return format!("over TCP to {}:{}", target.host, target.port);
        }
        config.host_path(&target.host);
        match (self.spec.transport, target.tcp_relay) {
            (Transport::Tcp, Some(relay)) => {
                config.port(relay);
                "over TCP from 127.0.0.1 inside the sandbox (its relay, as the application comes)".to_owned()
            }
            (Transport::Tcp, None) => {
                config.port(target.port);
                "over the target's Unix socket (this target offers no TCP login: a local or pod target, or an image without the relay)".to_owned()
            }
            (Transport::Socket, _) => {
                config.port(target.port);
                "over the target's Unix socket (`[login] transport = \"socket\"`)".to_owned()
            }
        }
    }
}

/// A session a role opened itself.
pub(crate) struct AppSession {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
    identity: Identity,
}

/// Who the session is, and the settings in force that did not come from the server's
/// configuration (`pg_settings` lists a custom setting only once it is read: those the role's
/// and the database's settings give are read by name).
const IDENTITY_SQL: &str = "SELECT session_user::pg_catalog.text, current_user::pg_catalog.text, \
     pg_catalog.host(pg_catalog.inet_client_addr()), pg_catalog.current_setting('application_name')";
const SETTINGS_SQL: &str = "SELECT s.name::pg_catalog.text || ' = ' || pg_catalog.quote_literal(pg_catalog.current_setting(s.name)) || ' (' || s.source || ')' \
     FROM pg_catalog.pg_settings s \
     WHERE s.source OPERATOR(pg_catalog.<>) ALL ('{default,override,configuration file,command line,environment variable}'::pg_catalog.text[]) \
        OR s.name OPERATOR(pg_catalog.=) 'search_path' ORDER BY s.name";

impl AppSession {
    /// Who the session is; see [`Identity`].
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Runs `sql` (pgdrill's own statement, or the scenario's once [`AppSession::one_statement`]
    /// said it is one) with the simple query protocol, as psql does: every value as the type's
    /// output function writes it.
    pub(crate) async fn run(&self, sql: &str) -> Result<Answer, Failure> {
        run(&self.client, sql).await
    }

    /// The names of the columns `sql` returns, and whether the server parses it as one
    /// statement (a prepared statement cannot hold two); nothing runs.
    pub(crate) async fn one_statement(&self, sql: &str) -> Result<Vec<String>, Failure> {
        let statement = self.client.prepare(sql).await.map_err(|e| Failure::of(&e))?;
        Ok(statement.columns().iter().map(|c| c.name().to_owned()).collect())
    }

    /// Closes the session (dropping it does too, without waiting): the server rolls back a
    /// transaction left open.
    pub(crate) async fn close(self) {
        let AppSession { client, connection, .. } = self;
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
    }
}

/// `SELECT pg_catalog.set_config('name', 'value', true)`: the setting for the rest of the
/// transaction, as an application sets its tenant.
pub(crate) fn set_local_sql(name: &str, value: &str) -> String {
    format!("SELECT pg_catalog.set_config({}, {}, true)", quote_literal(name), quote_literal(value))
}

/// Connects with `tls` (the target's TLS, or none on a Unix socket), the connection's task
/// spawned.
async fn connect<T>(
    config: &tokio_postgres::Config,
    tls: T,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, task))
}

/// See [`AppSession::run`].
async fn run(client: &tokio_postgres::Client, sql: &str) -> Result<Answer, Failure> {
    let messages = client.simple_query(sql).await.map_err(|e| Failure::of(&e))?;
    let mut answer = Answer::default();
    for message in messages {
        match message {
            SimpleQueryMessage::Row(row) => {
                answer.rows.push((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect());
            }
            SimpleQueryMessage::CommandComplete(n) => answer.affected = n,
            _ => {}
        }
    }
    Ok(answer)
}

/// Who the session of `role` is after login, read in it.
async fn read_identity(
    client: &tokio_postgres::Client,
    role: &str,
    transport: String,
    login: &RoleLogin,
) -> Result<Identity, Failure> {
    let who = run(client, IDENTITY_SQL).await?;
    let row = who.rows.first().cloned().unwrap_or_default();
    let value = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let settings = run(client, SETTINGS_SQL).await?;
    let mut shown: Vec<String> = settings.rows.iter().filter_map(|r| r.first().cloned().flatten()).collect();
    shown.retain(|s| !s.starts_with("application_name = ") && !s.starts_with("client_encoding = "));
    Ok(Identity {
        user: role.to_owned(),
        session_user: value(0),
        current_user: value(1),
        address: row.get(2).cloned().flatten(),
        application_name: value(3),
        transport,
        login: login.describe(),
        set_role: None,
        settings: shown,
    })
}

#[cfg(test)]
mod tests;
