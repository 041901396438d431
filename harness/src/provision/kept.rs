//! Kept targets: `pgdrill run --keep` leaves the target running after the drill for someone to
//! look into, and `pgdrill clean` ([`super::clean`]) removes it.
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

use crate::outcome::KeptInfo;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::owner::owner_of;
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

/// A kept target, for the console: where its connection file is.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
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

    pub(super) fn resolve(&self) -> Result<Secret, crate::secret::SecretError> {
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

pub(super) fn connection_path(dir: &Path, name: &str) -> PathBuf {
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
    use std::os::fd::{AsRawFd, FromRawFd};
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
    // SAFETY: between fork and exec only async-signal-safe calls (setsid, dup2, fcntl), on the
    // listener, open until the child started, and on descriptor 3, which the child's dup2 makes
    // the listener's copy and which is never closed here (exec hands it over).
    unsafe {
        command.pre_exec(move || {
            rustix::process::setsid()?;
            let mut three = std::mem::ManuallyDrop::new(std::os::fd::OwnedFd::from_raw_fd(3));
            rustix::io::dup2(std::os::fd::BorrowedFd::borrow_raw(fd), &mut three)?;
            Ok(rustix::io::fcntl_setfd(&*three, rustix::io::FdFlags::empty())?)
        });
    }
    let child = command.spawn()?;
    let pid = child.id();
    let owner = owner_of(pid).unwrap_or_default();
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
pub(super) fn stop_forwarder(forwarder: &Forwarder) {
    if owner_of(forwarder.pid).is_some_and(|owner| owner == forwarder.owner)
        && let Some(pid) = i32::try_from(forwarder.pid).ok().and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
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
