//! Starting a local target's server: its command (in its bubblewrap sandbox), kept so that the
//! server can be started again as it first was after a tool read its stopped cluster, and
//! waiting until it answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::super::TargetError;
use super::super::bwrap::{self, Bind, die_with_pgdrill};
use super::super::ready;
use crate::secret::Redactor;
use crate::tree::Ids;

pub(super) const SUPERUSER: &str = "postgres";
pub(super) const PORT: u16 = 5432;

/// How the server of a local target is started.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// bubblewrap, when the server runs in its sandbox.
    pub bwrap: Option<PathBuf>,
    pub bin_dir: PathBuf,
    /// The cluster's private folder: `data/`, the socket, `postgres.log`.
    pub dir: PathBuf,
    pub settings: BTreeMap<String, String>,
    /// The user the server runs as, when pgdrill runs as root.
    pub run_as: Option<Ids>,
    /// The sandbox's rlimits: data bytes per process, processes.
    pub limits: (u64, u64),
    pub startup_timeout: Duration,
}

impl Launch {
    pub(crate) fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub(super) fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// How pgdrill reaches the server: its socket, as the superuser.
    pub(super) fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.dir)
            .port(PORT)
            .username(SUPERUSER)
            .database("postgres")
            .ssl_mode(PgSslMode::Disable)
    }

    /// Starts the server, its output appended to `postgres.log`.
    pub(super) fn spawn(&self) -> Result<tokio::process::Child, TargetError> {
        let io = TargetError::io;
        let log_path = self.log_path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("cannot open the server log"))?;
        if let Some(Ids { uid, gid }) = self.run_as {
            std::os::unix::fs::chown(&log_path, Some(uid), Some(gid)).ok();
        }
        let mut postgres = match &self.bwrap {
            Some(bwrap) => {
                let mut command = tokio::process::Command::new(bwrap);
                let binds = [Bind::writable(&self.dir)];
                command
                    .args(bwrap::args(&self.bin_dir, &binds, &self.dir, bwrap::Programs::Hidden))
                    .arg(self.bin_dir.join("postgres"));
                // Before the rest of the sandbox: its data and socket are noexec.
                let ids = self.run_as.unwrap_or_else(Ids::current);
                bwrap::noexec_folder(&mut command, &self.dir, ids).map_err(io("cannot look at the cluster folder"))?;
                command
            }
            None => tokio::process::Command::new(self.bin_dir.join("postgres")),
        };
        postgres
            .arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(PORT.to_string())
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "listen_addresses="])
            .env_clear()
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("cannot share the server log"))?)
            .stderr(log)
            .kill_on_drop(true);
        for (key, value) in &self.settings {
            postgres.arg("-c").arg(format!("{key}={value}"));
        }
        if let Some(Ids { uid, gid }) = self.run_as {
            postgres.uid(uid).gid(gid);
        }
        die_with_pgdrill(&mut postgres, self.bwrap.is_some().then_some(self.limits));
        postgres.spawn().map_err(io(if self.bwrap.is_some() {
            "cannot start postgres in its sandbox (a user and mount namespace of its own, its folder noexec, then bubblewrap)"
        } else {
            "cannot start postgres"
        }))
    }

    /// Polls with real connections until the server answers: an error with its log's last
    /// lines when it exits first or time is up.
    pub(super) async fn wait_ready(
        &self,
        child: &mut tokio::process::Child,
        redactor: &Redactor,
    ) -> Result<(), TargetError> {
        let exited = || std::future::ready(child.try_wait().ok().flatten().is_some());
        let waited = ready::until_ready(&self.options(), self.startup_timeout, redactor, exited).await;
        waited.map_err(|why| why.into_error(self.startup_timeout, redactor.redact(&last_lines(&self.log_path(), 15))))
    }
}

/// The last `n` lines of a log file (nothing when it cannot be read).
pub(crate) fn last_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
