//! Targets: the throwaway PostgreSQL server a drill restores into. Provisioning returns the
//! connection details and a handle whose teardown removes everything the drill created.
//!
//! A backup is untrusted input, and the target is what holds it: the container and local
//! targets are sandboxes ([`sandbox`]) that pgdrill reaches through a Unix socket, and the
//! programs a drill starts through a loopback port ([`bridge`]); a server target is one only
//! when pgdrill's role there has no power over the server's machine, else the scenario must say
//! it trusts its backup.
//!
//! This file holds [`Target`], what a drill gets; the rest is a file per concern, re-exported
//! here: starting one ([`start`]), its kinds (`container/`, `local/`, `server.rs`), what the
//! reports say of it ([`info`]), how programs reach it ([`programs`]), its errors ([`error`]),
//! and the leaves the container parts share ([`docker`], [`owner`]).

pub(crate) mod access;
pub(crate) mod bridge;
pub(crate) mod bwrap;
pub(crate) mod clean;
pub(crate) mod container;
mod context;
pub(crate) mod docker;
mod error;
pub(crate) mod image;
mod image_tools;
pub(crate) mod kept;
pub(crate) mod local;
pub(crate) mod logins;
mod noexec;
pub(crate) mod owner;
pub(crate) mod pod;
mod programs;
mod ready;
pub(crate) mod sandbox;
pub(crate) mod server;
pub(crate) mod spec;
mod standby;
mod start;
pub(crate) mod teardown;
pub(crate) mod toolbox;
pub(crate) mod tools;
pub(crate) mod tuning;

use crate::outcome::TargetInfo;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::secret::{Redactor, Secret};

pub(crate) use context::ProvisionContext;
pub(crate) use context::{CloneFrom, PhysicalData};
pub(crate) use error::{AuditError, OverlayError, TargetError};

pub(crate) use programs::{ProgramLogin, Programs};
pub(crate) use standby::standby_of_nothing;
pub(crate) use start::start;
pub(crate) use start::{image_id, sweep};
pub(crate) use teardown::Teardown;

/// Where a drill restores: connection details for the role the restore runs as.
pub(crate) struct Target {
    /// A host name, or the folder of the server's Unix socket (a path, starting with `/`).
    pub host: String,
    pub port: u16,
    pub user: String,
    /// None where the socket trusts pgdrill (only its user can reach the folder).
    pub password: Option<Secret>,
    /// A database that always exists, for creating the drill's own.
    pub maintenance_db: String,
    pub ssl_mode: PgSslMode,
    /// The certificate `verify-ca` and `verify-full` check the server with (a server target's
    /// `sslrootcert`).
    pub ssl_root_cert: Option<PathBuf>,
    pub info: TargetInfo,
    /// The target's own client programs.
    pub tools: tools::Tools,
    /// Appended to the scenario's database name on shared servers, so that every drill
    /// restores into a database of its own.
    pub database_suffix: Option<String>,
    /// What the drill created on the target, for teardown.
    pub created: Arc<Mutex<Created>>,
    /// How the programs a drill starts reach the server.
    pub programs: Programs,
    /// How to stop the server cleanly and run a tool over its data (container, local and pod
    /// targets: a server target's server is not pgdrill's to stop).
    pub offline: Option<Offline>,
    /// The folder of this machine that holds the target's data, and the most it may take
    /// (container and local targets): the drill measures it while it runs.
    pub disk: Option<DataDisk>,
    /// What pgdrill's own sessions can pin ([`crate::session`]), read when the target was fresh.
    pub pins: crate::session::Pins,
    /// How the application's roles log in ([`logins`]): a password per role, made once.
    pub logins: logins::RoleLogins,
    /// The port of a relay in the socket folder (`host`) through which the application's logins
    /// reach the server as TCP from 127.0.0.1, inside the sandbox (a container target whose
    /// image carries one); None where the target offers its socket only (a local or pod target)
    /// or is reached as it is (a server).
    pub tcp_relay: Option<u16>,
}

/// How a target's server is stopped cleanly, one of PostgreSQL's tools run over its data
/// directory (`pg_checksums`), and the server started again.
#[derive(Clone)]
pub(crate) enum Offline {
    Container(container::Offline),
    Local(local::Offline),
    Pod(pod::Offline),
}

impl Offline {
    /// Stops the server, runs `program args` over its data directory in a toolbox of the
    /// server's own binaries, and starts the server again: how the program ended, its stdout.
    pub(crate) async fn run_stopped(
        &self,
        program: &str,
        args: &[String],
        redactor: &Redactor,
    ) -> Result<(tools::ToolOutput, String), TargetError> {
        match self {
            Offline::Container(container) => container.run_stopped(program, args, redactor).await,
            Offline::Local(local) => local.run_stopped(program, args, redactor).await,
            Offline::Pod(pod) => pod.run_stopped(program, args, redactor).await,
        }
    }

    /// A container target's, which can also keep a copy of its cluster as a snapshot.
    pub(crate) fn container(&self) -> Option<&container::Offline> {
        match self {
            Offline::Container(container) => Some(container),
            Offline::Local(_) | Offline::Pod(_) => None,
        }
    }
}

/// Where a target's data lives on this machine, and its disk limit.
#[derive(Debug, Clone)]
pub(crate) struct DataDisk {
    pub dir: PathBuf,
    pub limit: crate::disk::DiskLimit,
    /// The data directory as the running server sees it, reached from this machine: where
    /// files are given to it while it runs (a physical backup's archived WAL). A container's
    /// is seen through its server's mount namespace (`/proc/<pid>/root`): its data directory
    /// is an overlay, which would not see a file made in its upper layer under a name the server
    /// already looked up.
    pub live: PathBuf,
}

/// Databases and roles a drill created on its target.
#[derive(Debug, Clone, Default)]
pub(crate) struct Created {
    pub databases: Vec<String>,
    pub roles: Vec<String>,
}

impl Target {
    /// The database a drill restores into, for the scenario's `database`.
    pub(crate) fn database_for(&self, wanted: &str) -> String {
        match &self.database_suffix {
            Some(suffix) => {
                let mut name: String = wanted.chars().take(63 - suffix.len() - 1).collect();
                name.push('_');
                name.push_str(suffix);
                name
            }
            None => wanted.to_owned(),
        }
    }

    /// The provision phase's summary: what the target is, where, and how it holds the backup.
    pub(crate) fn summary(&self) -> String {
        let container = self.info.container.as_ref().map(|c| format!(" {c}")).unwrap_or_default();
        let mut summary = format!("{}{container} on {}", self.info.kind, self.info.address);
        match &self.info.isolation {
            Some(i) if i.contained && i.observed.is_some() => {
                summary.push_str("; a sandbox: no network, no capabilities, no shell, never root")
            }
            Some(i) if i.contained => summary.push_str(&format!("; restoring as {}", i.user)),
            Some(_) => summary.push_str("; not a sandbox: the scenario trusts its backup"),
            None => {}
        }
        if let Some(lacks) = self.info.lacks() {
            summary.push_str(&format!("; without {lacks} (its image carries no package of them)"));
        }
        summary
    }

    /// Records a database or role the drill created, so that teardown removes it.
    pub(crate) fn note_created(&self, database: Option<&str>, role: Option<&str>) {
        if let Ok(mut created) = self.created.lock() {
            created.databases.extend(database.map(str::to_owned));
            created.roles.extend(role.map(str::to_owned));
        }
    }

    /// How pgdrill's own sessions connect to `database`: with the settings the backup cannot
    /// change pinned ([`crate::session`]).
    pub(crate) fn connect_options(&self, database: &str) -> PgConnectOptions {
        crate::session::pinned(self.restore_options(database), self.pins)
    }

    /// How the restore and the release's migrations connect to `database`: as the application
    /// would, with the database's and the role's own settings.
    pub(crate) fn restore_options(&self, database: &str) -> PgConnectOptions {
        let options = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .database(database)
            .ssl_mode(self.ssl_mode)
            .application_name("pgdrill");
        match &self.password {
            Some(password) => options.password(password.expose()),
            None => options,
        }
    }

    /// A pool of at most `connections` pgdrill's own sessions on `database` of the target.
    pub(crate) async fn pool(&self, database: &str, connections: u32) -> Result<sqlx::PgPool, TargetError> {
        self.pool_with(self.connect_options(database), database, connections).await
    }

    /// A pool of sessions that connect as the application would ([`Target::restore_options`]).
    pub(crate) async fn restore_pool(&self, database: &str, connections: u32) -> Result<sqlx::PgPool, TargetError> {
        self.pool_with(self.restore_options(database), database, connections).await
    }

    async fn pool_with(
        &self,
        options: PgConnectOptions,
        database: &str,
        connections: u32,
    ) -> Result<sqlx::PgPool, TargetError> {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await
            .map_err(|e| TargetError::Database { database: database.to_owned(), source: e })
    }

    /// After a restore into a sandbox (whose configuration started as the image's): what the
    /// backup changed with `ALTER SYSTEM`, which pg_dump never writes, fails the restore.
    pub(crate) async fn audit(&self) -> Result<(), AuditError> {
        use sqlx::Connection;
        if self.info.isolation.as_ref().is_none_or(|i| i.observed.is_none()) {
            return Ok(());
        }
        let mut conn = sqlx::PgConnection::connect_with(&self.connect_options(&self.maintenance_db))
            .await
            .map_err(AuditError::Unreadable)?;
        let altered: Vec<String> = sqlx::query_scalar(sandbox::ALTERED_SETTINGS_SQL)
            .fetch_all(&mut conn)
            .await
            .map_err(AuditError::Unreadable)?;
        conn.close().await.ok();
        if altered.is_empty() {
            return Ok(());
        }
        Err(AuditError::Altered(altered))
    }

    /// Whether the target still answers; when it does not, why (for a phase that lost its
    /// connection: a target that went away is said so, not blamed on the dump or a check).
    pub(crate) async fn went_away(&self, database: &str) -> Option<String> {
        use sqlx::Connection;
        let probe = async {
            let mut conn = sqlx::PgConnection::connect_with(&self.connect_options(database)).await?;
            sqlx::query("SELECT 1").execute(&mut conn).await?;
            conn.close().await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("the target went away: it no longer accepts connections ({e})")),
            Err(_) => Some("the target went away: it did not answer a new connection within 5 s".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Isolation, Observed};

    fn target(info: TargetInfo, database_suffix: Option<&str>) -> Target {
        Target {
            host: "/tmp/pgdrill-x-target/socket".into(),
            port: 5432,
            user: "postgres".into(),
            password: None,
            maintenance_db: "postgres".into(),
            ssl_mode: PgSslMode::Disable,
            ssl_root_cert: None,
            tcp_relay: None,
            info,
            tools: tools::Tools::Unavailable { reason: "none in this test".into() },
            database_suffix: database_suffix.map(str::to_owned),
            created: Default::default(),
            programs: Programs::Direct,
            offline: None,
            disk: None,
            pins: Default::default(),
            logins: Default::default(),
        }
    }

    #[test]
    fn a_shared_server_gives_each_drill_a_database_of_its_own_within_63_bytes() {
        let long = "a".repeat(70);
        let cases = [
            (None, "plur", "plur".to_owned()),
            (None, long.as_str(), long.clone()),
            (Some("1a2b3c4d"), "plur", "plur_1a2b3c4d".to_owned()),
            // 63 bytes at most, the suffix whole: the name gives way.
            (Some("1a2b3c4d"), long.as_str(), format!("{}_1a2b3c4d", "a".repeat(54))),
        ];
        for (suffix, wanted, expected) in cases {
            let name = target(TargetInfo::default(), suffix).database_for(wanted);
            assert_eq!(name, expected, "{suffix:?} {wanted}");
            assert!(suffix.is_none() || name.len() <= 63, "{name}");
        }
    }

    #[test]
    fn the_summary_says_how_the_target_holds_the_backup() {
        let isolation = |contained: bool, observed: bool| Isolation {
            contained,
            user: "`drill` on db:5432".into(),
            observed: observed.then(Observed::default),
            ..Isolation::default()
        };
        let info = |isolation: Option<Isolation>, extensions: Option<&str>| TargetInfo {
            kind: "container".into(),
            container: Some("c0ffee".into()),
            address: "socket in /tmp/x".into(),
            isolation,
            image_extensions: extensions.map(str::to_owned),
            ..TargetInfo::default()
        };
        let cases = [
            (info(None, None), "container c0ffee on socket in /tmp/x"),
            (
                info(Some(isolation(true, true)), Some("vector age")),
                "container c0ffee on socket in /tmp/x; a sandbox: no network, no capabilities, no shell, never root",
            ),
            (
                info(Some(isolation(true, false)), None),
                "container c0ffee on socket in /tmp/x; restoring as `drill` on db:5432",
            ),
            (
                info(Some(isolation(false, false)), None),
                "container c0ffee on socket in /tmp/x; not a sandbox: the scenario trusts its backup",
            ),
            (
                info(None, Some("")),
                "container c0ffee on socket in /tmp/x; without pgvector and Apache AGE (its image carries no package of them)",
            ),
            (
                info(None, Some("vector")),
                "container c0ffee on socket in /tmp/x; without Apache AGE (its image carries no package of them)",
            ),
        ];
        for (info, expected) in cases {
            assert_eq!(target(info, None).summary(), expected);
        }
    }
}
