//! A throwaway database on an existing server (a CI service container, a staging cluster): the
//! drill connects with an admin connection string, restores into a uniquely named database,
//! and drops it afterwards, with any role it created, also when the drill fails.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{Connection, Executor};

use super::tools::Tools;
use super::{Created, ProvisionContext, Target, TargetError, TargetInfo, find_bin_dir};
use crate::pg::quote_ident;
use crate::scenario::ServerSpec;
use crate::secret::{Redactor, Secret};

/// What teardown drops on the server.
pub struct Running {
    admin: PgConnectOptions,
    created: Arc<Mutex<Created>>,
    redactor: Redactor,
}

pub async fn provision(spec: &ServerSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Running), TargetError> {
    let url = spec.url.resolve().map_err(|message| TargetError::Config { message })?;
    let parsed = reqwest::Url::parse(url.expose())
        .map_err(|e| TargetError::Config { message: format!("the server's connection string is not a URL: {e}") })?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(TargetError::Config {
            message: "the server's connection string must start with postgres://".into(),
        });
    }
    let password = Secret::new(crate::secret::percent_decode(parsed.password().unwrap_or_default()));
    ctx.redactor.register(&password);
    ctx.redactor.register(&url);
    let host = parsed.host_str().unwrap_or("localhost").to_owned();
    let port = parsed.port().unwrap_or(5432);
    let user = crate::secret::percent_decode(parsed.username());
    let maintenance_db = parsed.path().trim_start_matches('/').to_owned();
    let maintenance_db =
        if maintenance_db.is_empty() { "postgres".to_owned() } else { crate::secret::percent_decode(&maintenance_db) };
    let ssl_text = parsed
        .query_pairs()
        .find(|(k, _)| k == "sslmode")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| "prefer".into());
    let ssl_mode: PgSslMode =
        ssl_text.parse().map_err(|_| TargetError::Config { message: format!("unknown sslmode `{ssl_text}`") })?;
    let admin: PgConnectOptions = url
        .expose()
        .parse()
        .map_err(|e: sqlx::Error| TargetError::Config { message: ctx.redactor.redact(&e.to_string()) })?;
    let admin = admin.application_name("pgdrill");
    let address = format!("{host}:{port}");
    (ctx.progress)(&format!("connecting to {address}"));
    let mut conn = tokio::time::timeout(Duration::from_secs(15), PgConnection::connect_with(&admin))
        .await
        .map_err(|_| TargetError::Unreachable { address: address.clone(), message: "no answer within 15 s".into() })?
        .map_err(|e| TargetError::Unreachable {
            address: address.clone(),
            message: ctx.redactor.redact(&e.to_string()),
        })?;
    let can_create: bool =
        sqlx::query_scalar("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| TargetError::Unreachable {
                address: address.clone(),
                message: ctx.redactor.redact(&e.to_string()),
            })?;
    conn.close().await.ok();
    if !can_create {
        return Err(TargetError::Config {
            message: format!(
                "`{user}` may not create databases on {address}: a server target needs an admin connection string"
            ),
        });
    }
    let tools = match spec.bin_dir.clone().or_else(find_bin_dir) {
        Some(bin_dir) => Tools::Local {
            bin_dir,
            host: host.clone(),
            port,
            user: user.clone(),
            password: password.clone(),
            ssl_mode: ssl_text.clone(),
            run_as: None,
        },
        None => Tools::Unavailable {
            reason: "no PostgreSQL client programs found on this machine (hint: set target.bin_dir)".into(),
        },
    };
    let short_id: String = ctx.drill_id.chars().take(8).collect();
    let created = Arc::new(Mutex::new(Created::default()));
    let target = Target {
        host,
        port,
        user,
        password,
        maintenance_db,
        ssl_mode,
        info: TargetInfo { kind: "server".into(), address, ..TargetInfo::default() },
        tools,
        database_suffix: Some(short_id),
        created: created.clone(),
    };
    Ok((target, Running { admin, created, redactor: ctx.redactor.clone() }))
}

impl Running {
    /// Drops the drill's databases, then the roles it created.
    pub async fn remove(&mut self) -> Result<String, TargetError> {
        let created = self.created.lock().map(|c| c.clone()).unwrap_or_default();
        if created.databases.is_empty() && created.roles.is_empty() {
            return Ok("nothing was created on the server".into());
        }
        let fail = |e: sqlx::Error| TargetError::Teardown { message: self.redactor.redact(&e.to_string()) };
        let mut conn = PgConnection::connect_with(&self.admin).await.map_err(fail)?;
        for db in &created.databases {
            conn.execute(sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(db))))
                .await
                .map_err(fail)?;
        }
        for role in &created.roles {
            conn.execute(sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {}", quote_ident(role)))).await.map_err(fail)?;
        }
        conn.close().await.ok();
        let mut parts = Vec::new();
        if !created.databases.is_empty() {
            parts.push(format!("dropped database {}", created.databases.join(", ")));
        }
        if !created.roles.is_empty() {
            parts.push(format!("dropped role {}", created.roles.join(", ")));
        }
        Ok(parts.join("; "))
    }
}
