//! Targets: the throwaway PostgreSQL server a drill restores into. Provisioning returns the
//! connection details and a handle whose teardown removes everything the drill created.

pub mod container;
pub mod image;
pub mod local;
pub mod server;
pub mod tools;
pub mod tuning;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::scenario::{TargetKind, TargetSpec};
use crate::secret::{Redactor, Secret};

/// Where a drill restores: connection details for the superuser the restore runs as.
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    /// A database that always exists, for creating the drill's own.
    pub maintenance_db: String,
    pub ssl_mode: PgSslMode,
    pub info: TargetInfo,
    /// The target's own client programs.
    pub tools: tools::Tools,
    /// Appended to the scenario's database name on shared servers, so that every drill
    /// restores into a database of its own.
    pub database_suffix: Option<String>,
    /// What the drill created on the target, for teardown.
    pub created: Arc<Mutex<Created>>,
}

/// Databases and roles a drill created on its target.
#[derive(Debug, Clone, Default)]
pub struct Created {
    pub databases: Vec<String>,
    pub roles: Vec<String>,
}

impl Target {
    /// The database a drill restores into, for the scenario's `database`.
    pub fn database_for(&self, wanted: &str) -> String {
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

    /// Records a database or role the drill created, so that teardown removes it.
    pub fn note_created(&self, database: Option<&str>, role: Option<&str>) {
        if let Ok(mut created) = self.created.lock() {
            created.databases.extend(database.map(str::to_owned));
            created.roles.extend(role.map(str::to_owned));
        }
    }

    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(self.password.expose())
            .database(database)
            .ssl_mode(self.ssl_mode)
            .application_name("pgdrill")
    }

    /// Whether the target still answers; when it does not, why (for a phase that lost its
    /// connection: a target that went away is said so, not blamed on the dump or a check).
    pub async fn went_away(&self, database: &str) -> Option<String> {
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

/// What the reports say about the target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetInfo {
    pub kind: String,
    pub image: Option<String>,
    /// Package versions the image was built from.
    pub image_packages: Option<String>,
    /// Short container id.
    pub container: Option<String>,
    pub address: String,
    /// `SHOW server_version`.
    pub server_version: String,
    pub server_version_num: u32,
    /// Server settings the drill set.
    pub settings: BTreeMap<String, String>,
}

/// What provisioning needs from the drill.
pub struct ProvisionContext<'a> {
    pub drill_id: &'a str,
    pub scenario: &'a str,
    pub redactor: &'a Redactor,
    /// Reports a step of a slow start (building the image, starting the container).
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
    /// The backup, made readable to the target's own tools (mounted into a container).
    pub backup: Option<&'a std::path::Path>,
}

/// What must be undone after a drill.
pub enum Teardown {
    Container(Box<container::Running>),
    Server(server::Running),
    Local(local::Running),
}

impl Teardown {
    /// Removes what the drill created; returns a line for the reports.
    pub async fn run(mut self) -> Result<String, TargetError> {
        match &mut self {
            Teardown::Container(running) => {
                let removed = running.remove().await?;
                Ok(format!("removed {removed} container{}", if removed == 1 { "" } else { "s" }))
            }
            Teardown::Server(running) => running.remove().await,
            Teardown::Local(running) => running.remove().await,
        }
    }
}

/// Starts the scenario's target.
pub async fn provision(spec: &TargetSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Teardown), TargetError> {
    match &spec.kind {
        TargetKind::Container(container_spec) => {
            let (target, running) = container::start(container_spec, ctx).await?;
            Ok((target, Teardown::Container(Box::new(running))))
        }
        TargetKind::Server(server_spec) => {
            let (target, running) = server::provision(server_spec, ctx).await?;
            Ok((target, Teardown::Server(running)))
        }
        TargetKind::Local(local_spec) => {
            let (target, running) = local::provision(local_spec, ctx).await?;
            Ok((target, Teardown::Local(running)))
        }
    }
}

/// PostgreSQL's programs on this machine: `pg_config --bindir`, else the newest
/// /usr/lib/postgresql/<major>/bin.
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Ok(out) = std::process::Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("pg_restore").is_file() && dir.join("initdb").is_file() {
            return Some(dir);
        }
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("pg_restore").is_file())
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin)
}

/// Removes anything a drill may have left behind, found by its id (used when a drill is
/// interrupted before provisioning handed over its teardown).
pub async fn sweep(drill_id: &str) -> Result<usize, TargetError> {
    let docker = container::docker()?;
    container::remove_labelled(&docker, drill_id).await
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A Docker API call failed.
    #[error("cannot {action} (hint: is the Docker engine running, and DOCKER_HOST right?)")]
    Docker {
        action: &'static str,
        #[source]
        source: testcontainers::bollard::errors::Error,
    },
    /// The scenario names an image that is not present, and it is not the project's own.
    #[error(
        "image `{image}` is not present and no registry is used (hint: build or load it first, or use the default image, which pgdrill builds itself)"
    )]
    ImageMissing { image: String },
    /// Building the project's image failed.
    #[error(
        "building image `{image}` failed:\n{output}\n(hint: the offline build needs root or sudo, and access to Debian's package archive)"
    )]
    ImageBuild { image: String, output: String },
    /// The container did not start.
    #[error("cannot start a container from `{image}`: {message}")]
    Start { image: String, message: String },
    /// The container stopped before PostgreSQL accepted a connection.
    #[error("the target container exited before PostgreSQL was ready; its last output:\n{logs}")]
    Exited { logs: String },
    /// PostgreSQL did not accept a connection within the start-up timeout.
    #[error("PostgreSQL did not accept connections within {} (last error: {last_error}); container output:\n{logs}", humantime::format_duration(*timeout))]
    NotReady { timeout: Duration, last_error: String, logs: String },
    /// The container handle is gone.
    #[error("the target container is gone")]
    Gone,
    /// The scenario's target cannot be used as given.
    #[error("{message}")]
    Config { message: String },
    /// The server did not answer.
    #[error("cannot connect to the server at {address}: {message} (hint: is it running, and reachable from here?)")]
    Unreachable { address: String, message: String },
    /// A client program (pg_restore) could not be run.
    #[error("{message}")]
    Tool { message: String },
    /// Removing the target failed.
    #[error("removing the target failed: {message}")]
    Teardown { message: String },
}
