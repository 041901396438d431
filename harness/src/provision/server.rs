//! A throwaway database on an existing server (a CI service container, a staging cluster): the
//! drill connects with an admin connection string, restores into a uniquely named database,
//! and drops it afterwards, with any role it created, also when the drill fails.

use crate::outcome::TargetInfo;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{Connection, Executor};

use super::spec::ServerSpec;
use super::tools::Tools;
use super::tools::find_bin_dir;
use super::{Created, Programs, ProvisionContext, Target, TargetError};
use crate::outcome::Isolation;
use crate::pg::quote_ident;
use crate::secret::Secret;

/// What teardown drops on the server.
pub(crate) struct Running {
    admin: PgConnectOptions,
    created: Arc<Mutex<Created>>,
    /// Where the admin connection string comes from, and its parts: for keeping the database.
    url: super::kept::UrlSource,
    host: String,
    port: u16,
    user: String,
    ssl_mode: String,
}

/// The server's admin connection string, read: where it is, as whom, and how it encrypts.
struct Admin {
    options: PgConnectOptions,
    password: Secret,
    host: String,
    port: u16,
    user: String,
    maintenance_db: String,
    /// libpq's `sslmode`, as the string says (`prefer` when it says none).
    ssl_text: String,
    ssl_mode: PgSslMode,
    ssl_root_cert: Option<std::path::PathBuf>,
}

impl Admin {
    /// Reads the scenario's admin connection string; its password and the string itself are
    /// registered with the redactor.
    fn read(spec: &ServerSpec, ctx: &ProvisionContext<'_>) -> Result<Admin, TargetError> {
        let url = spec.url.resolve()?;
        let parsed = reqwest::Url::parse(url.expose()).map_err(|source| TargetError::NotUrl { source })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(TargetError::Config {
                message: "the server's connection string must start with postgres://".into(),
            });
        }
        let password = Secret::new(crate::secret::percent_decode(parsed.password().unwrap_or_default()));
        ctx.redactor.register(&password);
        ctx.redactor.register(&url);
        let maintenance_db = parsed.path().trim_start_matches('/').to_owned();
        let maintenance_db = if maintenance_db.is_empty() {
            "postgres".to_owned()
        } else {
            crate::secret::percent_decode(&maintenance_db)
        };
        let query = |key: &str| parsed.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
        let ssl_text = query("sslmode").unwrap_or_else(|| "prefer".into());
        let ssl_mode: PgSslMode =
            ssl_text.parse().map_err(|_| TargetError::Config { message: format!("unknown sslmode `{ssl_text}`") })?;
        let options: PgConnectOptions = url.expose().parse().map_err(|source| TargetError::NotOptions { source })?;
        Ok(Admin {
            options: options.application_name("pgdrill"),
            password,
            host: parsed.host_str().unwrap_or("localhost").to_owned(),
            port: parsed.port().unwrap_or(5432),
            user: crate::secret::percent_decode(parsed.username()),
            maintenance_db,
            ssl_root_cert: query("sslrootcert").map(std::path::PathBuf::from),
            ssl_text,
            ssl_mode,
        })
    }

    /// The server's client programs on this machine, to log in as the admin.
    fn tools(&self, spec: &ServerSpec) -> Tools {
        match spec.bin_dir.clone().or_else(find_bin_dir) {
            Some(bin_dir) => Tools::Local {
                bin_dir,
                host: self.host.clone(),
                port: self.port,
                user: self.user.clone(),
                password: Some(self.password.clone()),
                ssl_mode: self.ssl_text.clone(),
                run_as: None,
            },
            None => Tools::Unavailable {
                reason: "no PostgreSQL client programs found on this machine (hint: set target.bin_dir)".into(),
            },
        }
    }
}

pub(crate) async fn provision(spec: &ServerSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Running), TargetError> {
    let admin = Admin::read(spec, ctx)?;
    let (user, address) = (admin.user.clone(), format!("{}:{}", admin.host, admin.port));
    (ctx.progress)(&format!("connecting to {address}"));
    let powers = powers_of(&admin.options, &address).await?;
    let dangers = powers.over_the_machine();
    if !dangers.is_empty() && ctx.trusted.is_none() {
        return Err(TargetError::Untrusted {
            what: format!("the server target at {address}"),
            why: format!("`{user}` {}", dangers.join(", ")),
        });
    }
    let isolation = isolation(&dangers, &user, &address);
    if !powers.can_create() {
        return Err(TargetError::Config {
            message: format!(
                "`{user}` may not create databases on {address}: a server target needs an admin connection string"
            ),
        });
    }
    let tools = admin.tools(spec);
    let short_id: String = ctx.drill_id.chars().take(8).collect();
    let created = Arc::new(Mutex::new(Created::default()));
    let running = Running {
        admin: admin.options,
        created: created.clone(),
        url: super::kept::UrlSource::of(&spec.url),
        host: admin.host.clone(),
        port: admin.port,
        user: user.clone(),
        ssl_mode: admin.ssl_text,
    };
    let target = Target {
        host: admin.host,
        port: admin.port,
        user,
        password: Some(admin.password),
        maintenance_db: admin.maintenance_db,
        ssl_mode: admin.ssl_mode,
        info: TargetInfo { kind: "server".into(), address, isolation: Some(isolation), ..TargetInfo::default() },
        tools,
        database_suffix: Some(short_id),
        created,
        programs: Programs::Direct,
        offline: None,
        // A server's disk is its own: pgdrill bounds nothing there.
        disk: None,
        pins: Default::default(),
        logins: Default::default(),
        ssl_root_cert: admin.ssl_root_cert,
        tcp_relay: None,
    };
    Ok((target, running))
}

/// What pgdrill's role may do on the server at `address`, read over the admin connection.
async fn powers_of(admin: &PgConnectOptions, address: &str) -> Result<Powers, TargetError> {
    let mut conn = tokio::time::timeout(Duration::from_secs(15), PgConnection::connect_with(admin))
        .await
        .map_err(|_| TargetError::Silent { address: address.to_owned(), waited: Duration::from_secs(15) })?
        .map_err(|source| TargetError::Unreachable { address: address.to_owned(), source })?;
    let powers: Powers = sqlx::query_as(POWERS_SQL)
        .fetch_one(&mut conn)
        .await
        .map_err(|source| TargetError::Unreachable { address: address.to_owned(), source })?;
    conn.close().await.ok();
    Ok(powers)
}

/// What the reports say of a server target's isolation: none of pgdrill's, and the role's
/// powers over the machine (`dangers`) if it has any.
fn isolation(dangers: &[&str], user: &str, address: &str) -> Isolation {
    Isolation {
        contained: dangers.is_empty(),
        network: format!("an existing server at {address}, reachable over its network: pgdrill does not isolate it"),
        user: if dangers.is_empty() {
            format!("`{user}`, {NO_POWERS}")
        } else {
            format!("`{user}`, which {}", dangers.join(", "))
        },
        capabilities: "the server's own".into(),
        filesystem: "the server's own".into(),
        programs: if dangers.is_empty() {
            format!("the server's own, which `{user}` cannot start")
        } else {
            "the server's own, which the restore's role can start".into()
        },
        limits: "the server's own".into(),
        observed: None,
    }
}

/// What pgdrill's role may do on the server, and beyond it.
const POWERS_SQL: &str = "SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, \
     current_setting('server_version_num')::int, \
     pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER'), \
     pg_has_role(current_user, 'pg_read_server_files', 'MEMBER'), \
     pg_has_role(current_user, 'pg_write_server_files', 'MEMBER'), \
     EXISTS (SELECT 1 FROM pg_roles s WHERE s.rolsuper AND s.oid <> r.oid AND pg_has_role(r.oid, s.oid, 'MEMBER')) \
     FROM pg_roles r WHERE r.rolname = current_user";

const NO_POWERS: &str = "neither a superuser nor a member of one, nor of pg_execute_server_program, pg_read_server_files or pg_write_server_files";

/// The answer to [`POWERS_SQL`].
#[derive(Debug, Clone, Copy, Default)]
struct Powers {
    superuser: bool,
    create_db: bool,
    create_role: bool,
    version_num: i32,
    execute_programs: bool,
    read_files: bool,
    write_files: bool,
    member_of_superuser: bool,
}

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for Powers {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(Powers {
            superuser: row.try_get(0)?,
            create_db: row.try_get(1)?,
            create_role: row.try_get(2)?,
            version_num: row.try_get(3)?,
            execute_programs: row.try_get(4)?,
            read_files: row.try_get(5)?,
            write_files: row.try_get(6)?,
            member_of_superuser: row.try_get(7)?,
        })
    }
}

impl Powers {
    fn can_create(&self) -> bool {
        self.superuser || self.create_db
    }

    /// What the role could do to the server's machine through SQL in a backup.
    fn over_the_machine(&self) -> Vec<&'static str> {
        let mut dangers = Vec::new();
        if self.superuser {
            dangers.push(
                "is a superuser: SQL it runs can start programs and read and write files on the server's machine",
            );
        }
        if self.member_of_superuser {
            dangers.push("is a member of a superuser role");
        }
        if self.execute_programs {
            dangers.push("may start programs on the server (pg_execute_server_program)");
        }
        if self.read_files {
            dangers.push("may read the server's files (pg_read_server_files)");
        }
        if self.write_files {
            dangers.push("may write the server's files (pg_write_server_files)");
        }
        // Before PostgreSQL 16, CREATEROLE could grant itself any role but a superuser.
        if self.create_role && self.version_num < 160_000 && !self.superuser {
            dangers.push("has CREATEROLE on PostgreSQL before 16, which can grant itself pg_execute_server_program");
        }
        dangers
    }
}

impl Running {
    /// Keeps the drill's databases and roles on the server instead of dropping them. The
    /// connection file names the server, the admin role and the database, without the admin's
    /// password (libpq reads it as for any connection: `PGPASSWORD`, `~/.pgpass`, or a prompt):
    /// pgdrill does not copy the scenario's secret into another file.
    pub(crate) fn keep(
        &mut self,
        request: &super::kept::Request<'_>,
    ) -> Result<(super::kept::Record, Vec<super::kept::Service>, String), TargetError> {
        let created = self.created.lock().map(|c| c.clone()).unwrap_or_default();
        if created.databases.is_empty() {
            return Err(TargetError::Keep { message: "the drill created no database on the server".into() });
        }
        let address = format!("{}:{}", self.host, self.port);
        let service = super::kept::Service {
            name: request.name.to_owned(),
            params: vec![
                ("host", self.host.clone()),
                ("port", self.port.to_string()),
                ("user", self.user.clone()),
                ("dbname", request.database.to_owned()),
                ("sslmode", self.ssl_mode.clone()),
            ],
            password: None,
        };
        let record = super::kept::Record {
            name: request.name.to_owned(),
            kind: "server".into(),
            scenario: request.scenario.to_owned(),
            drill_id: request.drill_id.to_owned(),
            kept_at: request.kept_at.to_owned(),
            database: request.database.to_owned(),
            address: address.clone(),
            container: None,
            container_name: None,
            run_dir: None,
            forwarder: None,
            server: Some(super::kept::ServerRecord {
                url: self.url.clone(),
                databases: created.databases.clone(),
                roles: created.roles.clone(),
            }),
        };
        let mut summary = format!(
            "kept database {} on {address} (not dropped), as `{}`; the admin's password is not copied into the connection file",
            created.databases.join(", "),
            self.user
        );
        if !created.roles.is_empty() {
            summary.push_str(&format!("; kept role {}", created.roles.join(", ")));
        }
        if let Ok(mut c) = self.created.lock() {
            *c = Created::default();
        }
        Ok((record, vec![service], summary))
    }

    /// Drops the drill's databases, then the roles it created.
    pub(crate) async fn remove(&mut self) -> Result<String, TargetError> {
        let created = self.created.lock().map(|c| c.clone()).unwrap_or_default();
        if created.databases.is_empty() && created.roles.is_empty() {
            return Ok("nothing was created on the server".into());
        }
        let fail = |source: sqlx::Error| TargetError::Teardown { source };
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

#[cfg(test)]
mod tests {
    use super::Powers;

    #[test]
    fn powers_over_the_machine_are_named() {
        let plain = Powers { create_db: true, create_role: true, version_num: 170_000, ..Powers::default() };
        assert!(plain.over_the_machine().is_empty());
        assert!(plain.can_create());
        let cases = [
            (Powers { superuser: true, ..plain }, "is a superuser"),
            (Powers { member_of_superuser: true, ..plain }, "member of a superuser role"),
            (Powers { execute_programs: true, ..plain }, "pg_execute_server_program"),
            (Powers { read_files: true, ..plain }, "pg_read_server_files"),
            (Powers { write_files: true, ..plain }, "pg_write_server_files"),
            (Powers { version_num: 150_004, ..plain }, "CREATEROLE on PostgreSQL before 16"),
        ];
        for (powers, expected) in cases {
            let dangers = powers.over_the_machine().join("; ");
            assert!(dangers.contains(expected), "{powers:?}: {dangers}");
        }
        assert!(!Powers { create_db: false, ..plain }.can_create());
    }
}
