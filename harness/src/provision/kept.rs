//! Kept targets: `pgdrill run --keep` leaves the target running after the drill for someone to
//! look into, and `pgdrill clean` removes it.
//!
//! A kept container is the drill's container made again from the same data directory, with the
//! same sandbox (no network, no capabilities, no shell, limits), labelled [`KEPT_LABEL`] instead
//! of the drill's labels: CI's leftover check (containers labelled `org.pgdrill.drill`) and the
//! orphan sweep of later drills leave it alone, `pgdrill clean` finds it. It is reachable from
//! this machine only: through a loopback port that a small pgdrill process forwards to the
//! server's socket (the drill's own [`super::bridge`], detached, refusing the trusted
//! `postgres`), as a superuser made for it with a fresh password, and through the socket itself,
//! in the target's private folder.
//!
//! What it takes to connect lives in the user's state folder (`$XDG_STATE_HOME/pgdrill/kept/`,
//! else `~/.local/state/pgdrill/kept/`, 0700), never in the reports (they are evidence, and get
//! uploaded) and never on the console: `NAME.conf`, a libpq service file (0600) that holds the
//! password, and `NAME.json`, what `pgdrill clean` needs to remove it (no secret).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::container;
use crate::secret::{Secret, SecretSource};

/// The label of a kept container: when it was kept (RFC 3339).
pub(crate) const KEPT_LABEL: &str = "org.pgdrill.kept";
/// The kept target's name, which `pgdrill clean NAME` takes.
pub(crate) const NAME_LABEL: &str = "org.pgdrill.kept.name";
/// The record `pgdrill clean` reads: a kept container whose record is gone is removed too.
pub(crate) const RECORD_LABEL: &str = "org.pgdrill.kept.record";
/// The drill process that is keeping the container (`host/pid/start time`): until that process
/// has written the record, a record not there yet does not make the container a stray for a
/// `pgdrill clean` run beside it.
pub(crate) const KEEPER_LABEL: &str = "org.pgdrill.kept.by";

/// The file in a kept target's private folder that says it is kept; it holds the record's path.
/// The folder's `owner` file stays until the record is written (a `pgdrill clean` beside the
/// drill leaves it alone while its owner runs), then goes, so that later drills do not take the
/// folder for an orphan's.
pub(crate) const MARKER: &str = "kept";

/// What the reports say about a kept target: its name, never how to log in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptInfo {
    /// What `pgdrill clean NAME` takes.
    pub name: String,
    /// `container` or `server`.
    pub kind: String,
    /// The container's name, for a container target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The database the drill restored into.
    pub database: String,
    /// Where it answers: `127.0.0.1:PORT`, a socket folder, or the server's address.
    pub address: String,
    /// When it was kept (RFC 3339).
    pub kept_at: String,
}

/// A kept target, for the console: where its connection file is.
#[derive(Debug, Clone)]
pub struct Kept {
    pub info: KeptInfo,
    /// The libpq service file.
    pub connection_file: PathBuf,
    /// The service to name: `PGSERVICEFILE=FILE psql service=NAME`.
    pub service: String,
    /// A line for the teardown phase: what was kept, and how it is reached.
    pub summary: String,
}

/// What keeping a target needs from the drill.
pub(crate) struct Request<'a> {
    /// The kept target's name (`pgdrill clean NAME`).
    pub name: &'a str,
    pub scenario: &'a str,
    pub drill_id: &'a str,
    /// The database the drill restored into.
    pub database: &'a str,
    /// Where its record will be (a kept container's label points at it).
    pub record: &'a Path,
    /// When it is kept (RFC 3339).
    pub kept_at: &'a str,
    pub redactor: &'a crate::secret::Redactor,
}

/// What `pgdrill clean` needs to remove a kept target (`NAME.json`; no secret in it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub name: String,
    pub kind: String,
    pub scenario: String,
    pub drill_id: String,
    pub kept_at: String,
    pub database: String,
    pub address: String,
    /// The container's id.
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub container_name: Option<String>,
    /// The target's private folder (data directory and socket).
    #[serde(default)]
    pub run_dir: Option<PathBuf>,
    /// The process forwarding the loopback port.
    #[serde(default)]
    pub forwarder: Option<Forwarder>,
    /// A server target: how to reach it as its admin again, to drop what the drill left.
    #[serde(default)]
    pub server: Option<ServerRecord>,
}

/// The process that forwards a kept container's loopback port: its pid and, since a pid may be
/// reused, its owner string (host, pid, start time).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Forwarder {
    pub pid: u32,
    pub owner: String,
    pub port: u16,
}

/// Where a server target's admin connection string comes from (never the string itself, unless
/// the scenario wrote it inline, which it may only without a password).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum UrlSource {
    Env(String),
    File(PathBuf),
    Inline(String),
}

impl UrlSource {
    pub(crate) fn of(source: &SecretSource) -> UrlSource {
        match source {
            SecretSource::Env(var) => UrlSource::Env(var.clone()),
            SecretSource::File(path) => UrlSource::File(path.clone()),
            SecretSource::Inline(url) => UrlSource::Inline(crate::secret::redact_url_passwords(url.expose())),
        }
    }

    fn resolve(&self) -> Result<Secret, crate::secret::SecretError> {
        match self {
            UrlSource::Env(var) => SecretSource::Env(var.clone()).resolve(),
            UrlSource::File(path) => SecretSource::File(path.clone()).resolve(),
            UrlSource::Inline(url) => Ok(Secret::new(url.clone())),
        }
    }
}

/// A kept database on an existing server, and the roles the drill made for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServerRecord {
    pub url: UrlSource,
    pub databases: Vec<String>,
    pub roles: Vec<String>,
}

/// One service of the connection file: `[name]` and its `key=value` lines.
pub(crate) struct Service {
    pub name: String,
    pub params: Vec<(&'static str, String)>,
    pub password: Option<Secret>,
}

/// Why a kept target could not be recorded or removed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeptError {
    /// Neither `XDG_STATE_HOME` nor `HOME` is set.
    #[error("no folder for the connection file: neither XDG_STATE_HOME nor HOME is set (hint: set one of them)")]
    NoStateFolder,
    /// The state folder or a file in it could not be written or read.
    #[error("cannot use `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `pgdrill clean NAME` names nothing pgdrill kept.
    #[error(
        "no kept target is named `{name}` (hint: `pgdrill clean --dry-run` lists what pgdrill kept and what drills left behind)"
    )]
    NotFound { name: String },
    /// A Docker API call failed.
    #[error("cannot {action} (hint: is the Docker engine running, and DOCKER_HOST right?)")]
    Docker {
        action: &'static str,
        #[source]
        source: testcontainers::bollard::errors::Error,
    },
}

/// `$XDG_STATE_HOME/pgdrill/kept`, else `~/.local/state/pgdrill/kept`, made 0700.
pub(crate) fn state_dir() -> Result<PathBuf, KeptError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = env("XDG_STATE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| env("HOME").map(|h| h.join(".local/state")))
        .ok_or(KeptError::NoStateFolder)?;
    let dir = base.join("pgdrill/kept");
    let io = |source| KeptError::Io { path: dir.clone(), source };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    Ok(dir)
}

/// The record's path for a kept target of this name.
pub(crate) fn record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

fn connection_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.conf"))
}

/// Writes a file only its user may read (0600), replacing one of the same name.
fn write_private(path: &Path, text: &str) -> Result<(), KeptError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| KeptError::Io { path: path.to_owned(), source };
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)
}

/// The text of a libpq service file (`PGSERVICEFILE=FILE psql service=NAME`). A value that
/// would break its line is left out.
pub(crate) fn service_file(record: &Record, services: &[Service]) -> String {
    let mut out = format!(
        "# pgdrill: the target kept after drill {} of scenario `{}` ({}).\n# Only its user may read this file: it holds a password. `pgdrill clean {}` removes the target and this file.\n",
        record.drill_id, record.scenario, record.kept_at, record.name
    );
    for service in services {
        out.push_str(&format!("\n[{}]\n", service.name));
        let password = service.password.as_ref().map(|p| ("password", p.expose().to_owned()));
        for (key, value) in service.params.iter().cloned().chain(password) {
            if !value.contains(['\n', '\r']) {
                out.push_str(&format!("{key}={value}\n"));
            }
        }
    }
    out
}

/// Records a kept target: its connection file (0600) and its record. Returns what the console
/// shows.
pub(crate) fn register(record: &Record, services: &[Service], summary: String) -> Result<Kept, KeptError> {
    let dir = state_dir()?;
    let connection_file = connection_path(&dir, &record.name);
    write_private(&connection_file, &service_file(record, services))?;
    let json = serde_json::to_string_pretty(record).unwrap_or_default();
    write_private(&record_path(&dir, &record.name), &json)?;
    Ok(Kept {
        info: KeptInfo {
            name: record.name.clone(),
            kind: record.kind.clone(),
            container: record.container_name.clone(),
            database: record.database.clone(),
            address: record.address.clone(),
            kept_at: record.kept_at.clone(),
        },
        connection_file,
        service: services.first().map(|s| s.name.clone()).unwrap_or_default(),
        summary,
    })
}

/// Starts the process that forwards a loopback port to a kept container's socket folder,
/// refusing `trusted`: pgdrill itself (`pgdrill __forward`), in a session of its own, so that it
/// outlives this drill. The port is bound here and handed over as file descriptor 3.
pub(crate) fn spawn_forwarder(socket_dir: &Path, trusted: &str) -> std::io::Result<Forwarder> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    let fd = listener.as_raw_fd();
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .arg(FORWARD_COMMAND)
        .arg("--socket-dir")
        .arg(socket_dir)
        .arg("--refuse")
        .arg(trusted)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (setsid, dup2, fcntl).
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    let pid = child.id();
    let owner = container::owner_of(pid).unwrap_or_default();
    drop(listener);
    Ok(Forwarder { pid, owner, port })
}

/// The hidden subcommand a forwarder runs as.
pub(crate) const FORWARD_COMMAND: &str = "__forward";

/// The forwarder's body: serves the port handed over as descriptor 3 until the socket folder
/// is gone (the target was removed) or it is told to stop.
pub(crate) async fn forward(socket_dir: &Path, trusted: &str) -> std::io::Result<()> {
    use std::os::fd::FromRawFd;
    // SAFETY: descriptor 3 is the listener `spawn_forwarder` handed over, owned by nothing else.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(3) };
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let serve = super::bridge::serve(listener, socket_dir.join(".s.PGSQL.5432"), trusted.to_owned());
    tokio::pin!(serve);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = &mut serve => return Ok(()),
            _ = tick.tick() => if !socket_dir.exists() { return Ok(()) },
        }
    }
}

/// Stops a forwarder, if the process with its pid is still the one that was started.
fn stop_forwarder(forwarder: &Forwarder) {
    if container::owner_of(forwarder.pid).is_some_and(|owner| owner == forwarder.owner) {
        // SAFETY: a plain kill(2) of a process this user started.
        unsafe {
            libc::kill(forwarder.pid as i32, libc::SIGTERM);
        }
    }
}

/// What `pgdrill clean` found, and did or would do.
#[derive(Debug, Default)]
pub(crate) struct Cleaned {
    /// A line per thing removed (or to remove, on a dry run).
    pub lines: Vec<String>,
    /// Things that could not be removed.
    pub errors: Vec<String>,
}

/// A kept container found by its label.
struct Labelled {
    id: String,
    name: String,
    kept_name: String,
    record: Option<PathBuf>,
    keeper: Option<String>,
}

impl Labelled {
    /// Whether `pgdrill clean` (without a name) removes it though no record here names it: its
    /// record is gone, and no drill of this machine is still keeping it.
    fn stray(&self) -> bool {
        self.record.as_deref().is_none_or(lost) && !self.keeper.as_deref().is_some_and(container::running)
    }
}

async fn labelled(docker: &testcontainers::bollard::Docker, label: &str) -> Result<Vec<Labelled>, KeptError> {
    use testcontainers::bollard::query_parameters::ListContainersOptions;
    let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
    let list = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: Some(filters), ..Default::default() }))
        .await
        .map_err(|source| KeptError::Docker { action: "list pgdrill's containers", source })?;
    Ok(list
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            Labelled {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                kept_name: labels.get(NAME_LABEL).cloned().unwrap_or_default(),
                record: labels.get(RECORD_LABEL).map(PathBuf::from),
                keeper: labels.get(KEEPER_LABEL).cloned(),
            }
        })
        .collect())
}

/// Whether a record's file is known to be gone (one that cannot be looked at is not).
fn lost(path: &Path) -> bool {
    matches!(path.try_exists(), Ok(false))
}

/// Removes kept targets and what drills killed outright left behind: `name` alone, or every
/// target kept in this user's state folder, kept containers whose record is gone, and the
/// containers and private folders of drills whose process no longer runs. Never a container
/// without pgdrill's labels. On a dry run, only says what it would remove.
pub(crate) async fn clean(name: Option<&str>, dry_run: bool) -> Result<Cleaned, KeptError> {
    let mut cleaned = Cleaned::default();
    let verb = if dry_run { "would remove" } else { "removed" };
    let dir = state_dir()?;
    let mut records: Vec<Record> = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(|source| KeptError::Io { path: dir.clone(), source })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            match std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<Record>(&t).ok()) {
                Some(record) => records.push(record),
                None => cleaned.errors.push(format!("`{}` is not a record of a kept target", path.display())),
            }
        }
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    // A name may be given as the kept name or as its container's name.
    let wanted = |kept: &str, container: Option<&str>| name.is_none_or(|n| n == kept || container == Some(n));
    records.retain(|r| wanted(&r.name, r.container_name.as_deref()));

    let needs_docker = name.is_none() || records.iter().any(|r| r.kind == "container") || records.is_empty();
    let docker = if needs_docker && !container::engine_elsewhere() { container::docker().ok() } else { None };
    let mut containers = Vec::new();
    if let Some(docker) = &docker {
        match labelled(docker, KEPT_LABEL).await {
            Ok(found) => containers = found,
            Err(e) if name.is_none() && records.is_empty() => return Err(e),
            Err(e) => cleaned.errors.push(crate::error::error_chain(&e)),
        }
    }
    let recorded: Vec<String> = records.iter().filter_map(|r| r.container.clone()).collect();
    // Kept containers without a record here: named, or whose record is gone.
    let strays: Vec<&Labelled> = containers
        .iter()
        .filter(|c| !recorded.iter().any(|id| c.id.starts_with(id.as_str()) || id.starts_with(c.id.as_str())))
        .filter(|c| match name {
            Some(n) => n == c.kept_name || n == c.name,
            None => c.stray(),
        })
        .collect();
    if let Some(n) = name
        && records.is_empty()
        && strays.is_empty()
    {
        return Err(KeptError::NotFound { name: n.to_owned() });
    }

    for record in &records {
        let what = match (&record.kind[..], &record.container_name) {
            ("server", _) => format!("its database `{}` on {}", record.database, record.address),
            (_, Some(c)) => format!("container {c}, its private folder"),
            _ => "its private folder".to_owned(),
        };
        if !dry_run && let Err(message) = remove_record(record, docker.as_ref()).await {
            cleaned.errors.push(format!("kept target `{}`: {message}", record.name));
            continue;
        }
        cleaned.lines.push(format!("{verb} kept target `{}` ({what} and its connection file)", record.name));
    }
    for stray in strays {
        if !dry_run && let Some(docker) = &docker {
            if let Err(e) = remove_container(docker, &stray.id).await {
                cleaned.errors.push(format!("container {}: {}", stray.name, crate::error::error_chain(&e)));
                continue;
            }
            remove_folders_kept_for(stray.record.as_deref()).await;
        }
        cleaned.lines.push(format!("{verb} kept container {} (its record is gone)", stray.name));
    }

    if name.is_none() {
        // Drills killed outright: containers and folders whose owner no longer runs.
        if let Some(docker) = &docker {
            match container::orphans(docker, dry_run).await {
                Ok(names) => {
                    for n in names {
                        cleaned.lines.push(format!("{verb} container {n}, left by a drill whose process is gone"));
                    }
                }
                Err(e) => cleaned.errors.push(crate::error::error_chain(&e)),
            }
        }
        for folder in super::orphan_folders(dry_run).await {
            cleaned.lines.push(format!("{verb} `{}`, left by a drill whose process is gone", folder.display()));
        }
        if !dry_run {
            remove_folders_kept_for(None).await;
        }
    }
    Ok(cleaned)
}

/// Removes a recorded kept target: its forwarder, container and folder, or its database; then
/// its record and connection file.
pub(crate) async fn remove_record(
    record: &Record,
    docker: Option<&testcontainers::bollard::Docker>,
) -> Result<(), String> {
    if let Some(forwarder) = &record.forwarder {
        stop_forwarder(forwarder);
    }
    if let Some(id) = &record.container {
        let docker = docker.ok_or("the Docker engine cannot be reached")?;
        remove_container(docker, id).await.map_err(|e| crate::error::error_chain(&e))?;
    }
    if let Some(run_dir) = &record.run_dir
        && run_dir.exists()
    {
        tokio::fs::remove_dir_all(run_dir).await.map_err(|e| format!("cannot remove `{}`: {e}", run_dir.display()))?;
    }
    if let Some(server) = &record.server {
        drop_on_server(server).await.map_err(|message| message.to_string())?;
    }
    let dir = state_dir().map_err(|e| crate::error::error_chain(&e))?;
    for path in [record_path(&dir, &record.name), connection_path(&dir, &record.name)] {
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(format!("cannot remove `{}`: {e}", path.display()));
        }
    }
    Ok(())
}

async fn remove_container(docker: &testcontainers::bollard::Docker, id: &str) -> Result<(), KeptError> {
    use testcontainers::bollard::errors::Error as DockerError;
    use testcontainers::bollard::query_parameters::RemoveContainerOptions;
    let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(source) => Err(KeptError::Docker { action: "remove a kept container", source }),
    }
}

/// Removes the private folders of kept containers whose record is `record` (a stray), or, with
/// none, whose record is gone.
async fn remove_folders_kept_for(record: Option<&Path>) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("pgdrill-") && name.ends_with("-target")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path().join(MARKER)) else { continue };
        let of = Path::new(text.trim());
        let doomed = match record {
            Some(record) => of == record,
            // Not while the drill keeping it has yet to write its record.
            None => {
                lost(of)
                    && !std::fs::read_to_string(entry.path().join(super::OWNER_FILE))
                        .is_ok_and(|owner| container::running(&owner))
            }
        };
        if doomed {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

/// Drops a kept server database and the roles the drill made, as the scenario's admin.
async fn drop_on_server(server: &ServerRecord) -> Result<(), String> {
    use sqlx::{Connection, Executor};
    let url = server.url.resolve().map_err(|e| crate::error::error_chain(&e))?;
    let redact = |text: String| crate::secret::redact_url_passwords(&text).replace(url.expose(), "***");
    let options: sqlx::postgres::PgConnectOptions =
        url.expose().parse().map_err(|e: sqlx::Error| redact(e.to_string()))?;
    let mut conn = sqlx::PgConnection::connect_with(&options).await.map_err(|e| redact(e.to_string()))?;
    for db in &server.databases {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", crate::pg::quote_ident(db));
        conn.execute(sqlx::raw_sql(&sql)).await.map_err(|e| redact(e.to_string()))?;
    }
    for role in &server.roles {
        let sql = format!("DROP ROLE IF EXISTS {}", crate::pg::quote_ident(role));
        conn.execute(sqlx::raw_sql(&sql)).await.map_err(|e| redact(e.to_string()))?;
    }
    conn.close().await.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            name: "plur-1a2b3c4d".into(),
            kind: "container".into(),
            scenario: "plur".into(),
            drill_id: "1a2b3c4d".repeat(4),
            kept_at: "2026-11-22T08:00:00Z".into(),
            database: "plur_enterprise".into(),
            address: "127.0.0.1:40000".into(),
            container: None,
            container_name: None,
            run_dir: None,
            forwarder: None,
            server: None,
        }
    }

    #[test]
    fn a_container_whose_record_is_not_written_yet_is_a_stray_only_once_its_keeper_is_gone() {
        let gone = std::env::temp_dir().join("pgdrill-no-such-record.json");
        let labelled = |keeper: Option<String>| Labelled {
            id: "c0ffee".into(),
            name: "pgdrill-x".into(),
            kept_name: "x".into(),
            record: Some(gone.clone()),
            keeper,
        };
        // Being kept by a drill that runs (this test): a `pgdrill clean` beside it leaves it.
        assert!(!labelled(Some(container::owner())).stray());
        // Its keeper gone (pid 0 never runs), or never named: its record is all that counts.
        let host = container::owner().split('/').next().unwrap_or_default().to_owned();
        assert!(labelled(Some(format!("{host}/0/1"))).stray());
        assert!(labelled(None).stray());
        let here = Labelled { record: Some(std::env::current_exe().expect("exe")), ..labelled(None) };
        assert!(!here.stray(), "its record is there");
    }

    #[test]
    fn the_service_file_holds_each_service_and_leaves_out_what_would_break_a_line() {
        let services = [
            Service {
                name: "plur-1a2b3c4d".into(),
                params: vec![("host", "127.0.0.1".into()), ("port", "40000".into()), ("dbname", "a\nb".into())],
                password: Some(Secret::new("s3cret")),
            },
            Service {
                name: "plur-1a2b3c4d-socket".into(),
                params: vec![("host", "/tmp/x/socket".into()), ("user", "postgres".into())],
                password: None,
            },
        ];
        let text = service_file(&record(), &services);
        assert!(text.contains("\n[plur-1a2b3c4d]\nhost=127.0.0.1\nport=40000\npassword=s3cret\n"), "{text}");
        assert!(text.contains("\n[plur-1a2b3c4d-socket]\nhost=/tmp/x/socket\nuser=postgres\n"), "{text}");
        assert!(!text.contains("dbname"), "{text}");
        assert!(text.lines().filter(|l| l.starts_with('#')).all(|l| !l.contains("s3cret")));
    }

    #[test]
    fn records_hold_no_secret_and_read_back() {
        let mut r = record();
        r.server = Some(ServerRecord {
            url: UrlSource::of(&SecretSource::Inline(Secret::new("postgres://admin:pw@db:5432/postgres"))),
            databases: vec!["plur_1a2b3c4d".into()],
            roles: vec![],
        });
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains(":pw@"), "{json}");
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back.name, r.name);
        let env = UrlSource::of(&SecretSource::Env("DRILL_ADMIN_URL".into()));
        assert!(serde_json::to_string(&env).unwrap().contains("DRILL_ADMIN_URL"));
    }
}
