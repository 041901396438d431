//! Targets: the throwaway PostgreSQL server a drill restores into. Provisioning returns the
//! connection details and a handle whose teardown removes everything the drill created.
//!
//! A backup is untrusted input, and the target is what holds it: the container and local
//! targets are sandboxes ([`sandbox`]) that pgdrill reaches through a Unix socket, and the
//! programs a drill starts through a loopback port ([`bridge`]); a server target is one only
//! when pgdrill's role there has no power over the server's machine, else the scenario must say
//! it trusts its backup.

pub(crate) mod access;
pub(crate) mod bridge;
pub(crate) mod bwrap;
pub(crate) mod container;
pub(crate) mod image;
pub(crate) mod kept;
pub(crate) mod local;
pub(crate) mod logins;
pub(crate) mod sandbox;
pub(crate) mod server;
pub(crate) mod spec;
pub(crate) mod teardown;
pub(crate) mod toolbox;
pub(crate) mod tools;
pub(crate) mod tuning;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::pg::quote_ident;
use crate::secret::{Redactor, Secret};
use spec::{TargetKind, TargetSpec};

pub(crate) use sandbox::Isolation;
pub(crate) use teardown::Teardown;

/// Where a drill restores: connection details for the role the restore runs as.
pub struct Target {
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
    /// How to stop the server cleanly and run a tool over its data (container and local
    /// targets: a server target's server is not pgdrill's to stop).
    pub offline: Option<Offline>,
    /// The folder of this machine that holds the target's data, and the most it may take
    /// (container and local targets): the drill measures it while it runs.
    pub disk: Option<DataDisk>,
    /// What pgdrill's own sessions can pin ([`crate::session`]), read when the target was fresh.
    pub pins: crate::session::Pins,
    /// How the application's roles log in ([`logins`]): a password per role, made once.
    pub logins: logins::RoleLogins,
}

/// How a target's server is stopped cleanly, one of PostgreSQL's tools run over its data
/// directory (`pg_checksums`), and the server started again.
#[derive(Clone)]
pub enum Offline {
    Container(container::Offline),
    Local(local::Offline),
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
        }
    }

    /// A container target's, which can also keep a copy of its cluster as a snapshot.
    pub(crate) fn container(&self) -> Option<&container::Offline> {
        match self {
            Offline::Container(container) => Some(container),
            Offline::Local(_) => None,
        }
    }
}

/// Where a target's data lives on this machine, and its disk limit.
#[derive(Debug, Clone)]
pub struct DataDisk {
    pub dir: PathBuf,
    pub limit: crate::disk::DiskLimit,
}

/// How the programs a drill starts (the app, a migration command) reach the server.
pub enum Programs {
    /// With the target's own connection details (a server target).
    Direct,
    /// Through a loopback port forwarded to the socket, opened when first asked for and closed
    /// with the target; as `role`, a superuser with a fresh password made when first needed.
    Bridged { role: String, bridge: tokio::sync::OnceCell<bridge::Bridge>, superuser: tokio::sync::OnceCell<Secret> },
}

impl Programs {
    /// For a sandboxed target of drill `drill_id`.
    pub fn bridged(drill_id: &str) -> Programs {
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
pub struct ProgramLogin {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    /// libpq's `sslmode`.
    pub ssl_mode: &'static str,
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

    /// The provision phase's summary: what the target is, where, and how it holds the backup.
    pub fn summary(&self) -> String {
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
    pub fn note_created(&self, database: Option<&str>, role: Option<&str>) {
        if let Ok(mut created) = self.created.lock() {
            created.databases.extend(database.map(str::to_owned));
            created.roles.extend(role.map(str::to_owned));
        }
    }

    /// How pgdrill's own sessions connect to `database`: with the settings the backup cannot
    /// change pinned ([`crate::session`]).
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        crate::session::pinned(self.restore_options(database), self.pins)
    }

    /// How the restore and the release's migrations connect to `database`: as the application
    /// would, with the database's and the role's own settings.
    pub fn restore_options(&self, database: &str) -> PgConnectOptions {
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
    pub async fn pool(
        &self,
        database: &str,
        connections: u32,
        redactor: &Redactor,
    ) -> Result<sqlx::PgPool, TargetError> {
        self.pool_with(self.connect_options(database), database, connections, redactor).await
    }

    /// A pool of sessions that connect as the application would ([`Target::restore_options`]).
    pub async fn restore_pool(
        &self,
        database: &str,
        connections: u32,
        redactor: &Redactor,
    ) -> Result<sqlx::PgPool, TargetError> {
        self.pool_with(self.restore_options(database), database, connections, redactor).await
    }

    async fn pool_with(
        &self,
        options: PgConnectOptions,
        database: &str,
        connections: u32,
        redactor: &Redactor,
    ) -> Result<sqlx::PgPool, TargetError> {
        sqlx::postgres::PgPoolOptions::new().max_connections(connections).connect_with(options).await.map_err(|e| {
            TargetError::Database { database: database.to_owned(), message: redactor.redact(&e.to_string()) }
        })
    }

    /// How a program the drill starts logs in: as `login` (a role and the password it was
    /// given), or else as a superuser. On a server, with the target's own details; on a sandbox,
    /// through a loopback port forwarded to the socket (opened on the first call), as a superuser
    /// role made for the programs (made on the first call that needs it).
    pub async fn program_login(
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
                    .get_or_try_init(|| bridge::open(std::path::Path::new(&self.host), self.port, &self.user))
                    .await
                    .map_err(|e| TargetError::Programs { message: format!("cannot open a loopback port: {e}") })?;
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
        let fail = |e: sqlx::Error| TargetError::Programs { message: redactor.redact(&e.to_string()) };
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

    /// After a restore into a sandbox (whose configuration started as the image's): what the
    /// backup changed with `ALTER SYSTEM`, which pg_dump never writes, fails the restore.
    pub async fn audit(&self) -> Result<(), AuditError> {
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
    /// The extensions the project's image carries beyond PostgreSQL's own (`vector age`; empty
    /// for PostgreSQL 15's, from Debian 12, which packages neither), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_extensions: Option<String>,
    /// Short container id.
    pub container: Option<String>,
    pub address: String,
    /// `SHOW server_version`.
    pub server_version: String,
    pub server_version_num: u32,
    /// Server settings the drill set.
    pub settings: BTreeMap<String, String>,
    /// How the target was isolated from the machine that ran the drill.
    #[serde(default)]
    pub isolation: Option<Isolation>,
    /// What pgdrill's own sessions pin, so that the backup cannot change what its queries mean.
    #[serde(default)]
    pub session: Vec<String>,
    /// How a clone's data directory was made from its snapshot (reflinks, an overlay, a copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_layer: Option<String>,
}

impl TargetInfo {
    /// The extensions of the project's images this target's image lacks (PostgreSQL 15's, from
    /// Debian 12), in words: `pgvector and Apache AGE`.
    pub fn lacks(&self) -> Option<String> {
        let carried = self.image_extensions.as_deref()?;
        let lacking: Vec<&str> = [("vector", "pgvector"), ("age", "Apache AGE")]
            .into_iter()
            .filter(|(name, _)| !carried.split_whitespace().any(|c| c == *name))
            .map(|(_, shown)| shown)
            .collect();
        (!lacking.is_empty()).then(|| lacking.join(" and "))
    }
}

/// Reads, from inside the server, what its sandbox looks like.
pub(crate) async fn observe(options: &PgConnectOptions) -> Result<sandbox::Observed, TargetError> {
    use sqlx::Connection;
    let fail = |e: sqlx::Error| TargetError::NotIsolated { message: format!("cannot look at it from inside: {e}") };
    // A physical backup's cluster is the backup's: the probe pins what any role may.
    let options = crate::session::pinned(options.clone(), crate::session::Pins::default());
    let mut conn = sqlx::PgConnection::connect_with(&options).await.map_err(fail)?;
    let (status, net_dev, routes, shell): (String, String, String, bool) =
        sqlx::query_as(sandbox::OBSERVE_SQL).fetch_one(&mut conn).await.map_err(fail)?;
    conn.close().await.ok();
    Ok(sandbox::Observed::parse(&status, &net_dev, &routes, shell))
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
    /// Why the scenario trusts its backup, when it says so: only then may a target that is not
    /// a sandbox restore it with powers over its machine.
    pub trusted: Option<&'a str>,
    /// The PostgreSQL major the backup comes from, when its first bytes say: a container target
    /// runs the project's image of it unless the scenario names one.
    pub backup_major: Option<u32>,
    /// A physical backup: the target's data directory is unpacked from it instead of a fresh
    /// cluster, and the server starts recovering.
    pub physical: Option<&'a PhysicalData>,
    /// A snapshot to clone: the target's data directory is a private copy-on-write clone of
    /// its cluster (a container target only).
    pub clone: Option<&'a CloneFrom>,
}

/// What a clone is made from: a verified snapshot's cluster, which it never writes.
#[derive(Debug, Clone)]
pub struct CloneFrom {
    /// The snapshot's data directory.
    pub data: PathBuf,
    /// The major of its cluster when it is not the backup file's (a physical backup's).
    pub major: Option<u32>,
}

/// What a target made from a physical backup starts from: its data directory, restored and
/// verified (`restore::physical`) with the archived WAL recovery reads in `pg_wal` (the sandbox
/// runs no `restore_command`, which needs a shell), and the recovery settings.
#[derive(Debug, Clone)]
pub struct PhysicalData {
    /// The PostgreSQL major that wrote the backup (its `PG_VERSION`).
    pub major: u32,
    /// The data directory, owned by the target's server user; moved into the target's folder.
    pub data: PathBuf,
    /// `recovery_target_*` and the like, as `-c` settings.
    pub settings: Vec<(String, String)>,
}

/// Makes the data directory `data`, staged from a base backup, a standby of nothing: the
/// sandbox's own configuration (the source's kept beside it as `*.source`, never read; the
/// server's settings are on its command line), no signal or pid file of the source's, and
/// `standby.signal`; the files pgdrill writes given to `owner`.
pub(crate) fn standby_of_nothing(data: &std::path::Path, owner: (u32, u32)) -> std::io::Result<()> {
    for (name, text) in [
        (
            "postgresql.conf",
            "# pgdrill: the sandbox's settings are on the command line; the source's are in *.source\n",
        ),
        ("postgresql.auto.conf", ""),
        ("pg_hba.conf", image::PG_HBA),
        ("pg_ident.conf", ""),
    ] {
        let path = data.join(name);
        if path.exists() {
            std::fs::rename(&path, data.join(format!("{name}.source")))?;
        }
        std::fs::write(&path, text)?;
        std::os::unix::fs::lchown(&path, Some(owner.0), Some(owner.1))?;
    }
    for signal in ["recovery.signal", "standby.signal", "postmaster.pid", "postmaster.opts"] {
        let _ = std::fs::remove_file(data.join(signal));
    }
    let signal = data.join("standby.signal");
    std::fs::write(&signal, "")?;
    std::os::unix::fs::lchown(&signal, Some(owner.0), Some(owner.1))
}

/// Starts the scenario's target, and reads what pgdrill's sessions on it can pin.
pub async fn start(spec: &TargetSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Teardown), TargetError> {
    let (mut target, teardown) = match &spec.kind {
        TargetKind::Container(container_spec) => {
            let (target, running) = container::start(container_spec, ctx).await?;
            (target, Teardown::Container(Box::new(running)))
        }
        TargetKind::Server(_) if ctx.physical.is_some() => {
            return Err(TargetError::Tool {
                message: "a physical backup recovers on a container or local target only (its data directory is the backup's, a server's is its own)".into(),
            });
        }
        TargetKind::Server(server_spec) => {
            let (target, running) = server::provision(server_spec, ctx).await?;
            (target, Teardown::Server(Box::new(running)))
        }
        TargetKind::Local(local_spec) => {
            let (target, running) = local::provision(local_spec, ctx).await?;
            (target, Teardown::Local(Box::new(running)))
        }
    };
    match read_pins(&target, ctx.redactor).await {
        Ok(pins) => {
            target.pins = pins;
            // Known from the start, a clone's too (whose preflight does not run).
            target.info.server_version_num = pins.version_num;
        }
        Err(e) => {
            if let Err(also) = teardown.run().await {
                tracing::warn!("cannot remove the target: {also}");
            }
            return Err(e);
        }
    }
    target.info.session = crate::session::shown(&crate::session::pins(target.pins, &target.user));
    Ok((target, teardown))
}

/// The id of the image a container target of `spec` runs for a backup of `major` (built
/// first if missing): a snapshot is of that image only. `None` for the other targets, which
/// have no snapshots.
pub(crate) async fn image_id(
    spec: &TargetSpec,
    major: Option<u32>,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Option<String>, TargetError> {
    let TargetKind::Container(container_spec) = &spec.kind else { return Ok(None) };
    if let Some(host) = container::remote_engine_now() {
        return Err(TargetError::RemoteEngine { host });
    }
    let docker = container::docker()?;
    let name = image::choose(container_spec, major, false)?;
    let info = image::ensure(&docker, &name, || {
        progress(&format!("building image {name} from Debian packages (first run only)"))
    })
    .await?;
    Ok(Some(info.id))
}

/// What pgdrill's sessions on `target` can pin: read before the restore, on a connection that
/// pins what any role may.
pub(crate) async fn read_pins(target: &Target, redactor: &Redactor) -> Result<crate::session::Pins, TargetError> {
    use sqlx::Connection;
    let database = target.maintenance_db.clone();
    let fail =
        |e: sqlx::Error| TargetError::Database { database: database.clone(), message: redactor.redact(&e.to_string()) };
    let mut conn =
        sqlx::PgConnection::connect_with(&target.connect_options(&target.maintenance_db)).await.map_err(fail)?;
    let (version_num, superuser): (i32, bool) =
        sqlx::query_as(crate::session::READ_SQL).fetch_one(&mut conn).await.map_err(fail)?;
    conn.close().await.ok();
    Ok(crate::session::Pins { version_num: u32::try_from(version_num).unwrap_or(0), superuser })
}

/// PostgreSQL's programs on this machine: `pg_config --bindir`, else the newest
/// /usr/lib/postgresql/<major>/bin.
pub(crate) fn find_bin_dir() -> Option<PathBuf> {
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

/// The file in a target's private folder that names the process owning it.
pub(crate) const OWNER_FILE: &str = "owner";

/// Marks `folder` (a target's private folder) as this process's, so that the next drill on the
/// machine removes it if this process is killed before it could.
fn mark_owner(folder: &std::path::Path) -> std::io::Result<()> {
    std::fs::write(folder.join(OWNER_FILE), container::owner())
}

/// Removes the private folders of targets (`pgdrill-*-target`, `pgdrill-local-*` in the temporary
/// folder) whose owning process on this machine is gone: a drill killed outright leaves them.
pub(crate) async fn remove_orphan_folders() {
    orphan_folders(false).await;
}

/// The private folders of targets whose owning process on this machine is gone, removed unless
/// `dry_run`. A kept target's folder names no owner: it is never one of them.
pub(crate) async fn orphan_folders(dry_run: bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with("pgdrill-local-") || name.starts_with("pgdrill-") && name.ends_with("-target");
        let owner = std::fs::read_to_string(entry.path().join(OWNER_FILE)).unwrap_or_default();
        if ours && !owner.is_empty() && container::orphaned(&owner) {
            if !dry_run {
                tracing::warn!("removing `{}`, left by a drill whose process is gone", entry.path().display());
                let _ = crate::tree::remove(&entry.path()).await;
            }
            found.push(entry.path());
        }
    }
    found
}

/// Removes anything a drill may have left behind, found by its id (used when a drill is
/// interrupted before provisioning handed over its teardown).
pub(crate) async fn sweep(drill_id: &str) -> Result<usize, TargetError> {
    if container::engine_elsewhere() {
        return Ok(0); // no target was started there
    }
    let docker = container::docker()?;
    container::remove_labelled(&docker, drill_id).await
}

/// What the audit after a restore into a sandbox found.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The configuration could not be read.
    #[error("cannot look at the target's configuration after the restore")]
    Unreadable(#[source] sqlx::Error),
    /// The backup ran `ALTER SYSTEM`.
    #[error(
        "the backup changed the server's configuration with ALTER SYSTEM, which pg_dump never writes: {}; the sandbox kept it from reaching anything, and it goes with the target",
        .0.join(", ")
    )]
    Altered(Vec<String>),
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The target's disk limit cannot be set, or the backup cannot fit in it.
    #[error(transparent)]
    Disk(#[from] crate::disk::DiskError),
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
    /// The backup comes from a PostgreSQL newer than any image pgdrill builds.
    #[error(
        "the backup comes from PostgreSQL {major}, and pgdrill builds images of PostgreSQL {built} only (hint: build an image of PostgreSQL {major} from ci/image/Dockerfile (--build-arg PG_MAJOR={major}) and name it in the scenario with `[target] image = \"...\"`)"
    )]
    NoImageForMajor { major: u32, built: String },
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
    /// The target could not be kept after the drill (`--keep`).
    #[error("cannot keep the target: {message}")]
    Keep { message: String },
    /// The Docker engine runs elsewhere: it cannot share the socket folder.
    #[error(
        "the Docker engine at `{host}` is not on this machine: the container target has no network, and pgdrill reaches it through a Unix socket in a folder shared with the container, which only a local engine can share (hint: run pgdrill where the engine runs, or use `kind = \"local\"` or `kind = \"server\"`)"
    )]
    RemoteEngine { host: String },
    /// The backup cannot be read by the target's unprivileged user.
    #[error(
        "the target runs as an unprivileged user and cannot read `{}` (owner uid {uid}, group {gid}, mode {mode:04o}) (hint: make it readable by its group or by others; the container is given the file's group)",
        path.display()
    )]
    Unreadable { path: PathBuf, mode: u32, uid: u32, gid: u32 },
    /// The sandbox does not look from inside as it was asked to.
    #[error("{message}")]
    NotIsolated { message: String },
    /// A target that is not a sandbox, for a backup the scenario does not trust.
    #[error(
        "{what} is not a sandbox: {why}, so SQL in the backup could reach beyond the drill (hint: drill untrusted backups on the container target; or, if this backup cannot have been written by anyone else, say why in the scenario: `[source] trusted = \"...\"`)"
    )]
    Untrusted { what: String, why: String },
    /// The image's initialised cluster could not be copied out of it.
    #[error(
        "cannot copy the initialised cluster out of image `{image}`: {message} (hint: pgdrill's images carry one; see ci/image/build for what an image must hold)"
    )]
    Template { image: String, message: String },
    /// Rootless Docker maps the container's users away from this machine's.
    #[error(
        "the Docker engine runs rootless: the container's users are not this machine's, so the target cannot use the private folder pgdrill gives it (hint: use a Docker engine that runs as root, or `kind = \"local\"`)"
    )]
    Rootless,
    /// The restored database did not take a connection.
    #[error("cannot connect to the restored database `{database}`: {message}")]
    Database { database: String, message: String },
    /// The loopback port for programs could not be opened.
    #[error("cannot let the drill's programs reach the target: {message}")]
    Programs { message: String },
    /// A role of the shared server, which the drill did not create, has no password in the
    /// scenario.
    #[error(
        "`{role}` existed on the shared server before the drill: pgdrill will not change its password (hint: give it in the scenario: `[login] passwords = {{ {role} = \"ENV_VAR\" }}`)"
    )]
    SharedRole { role: String },
    /// A role could not be given a login.
    #[error("cannot let `{role}` log in: {message}")]
    Login { role: String, message: String },
    /// A role the drill logs in as does not exist.
    #[error("role `{role}` does not exist in the restored database")]
    NoRole { role: String },
}
