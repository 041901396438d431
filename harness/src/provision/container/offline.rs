//! Running a PostgreSQL tool on the stopped server (pg_checksums), and starting it again.

use std::path::Path;
use std::time::Duration;

use testcontainers::bollard::Docker;
use testcontainers::bollard::errors::Error as DockerError;

use std::path::PathBuf;

use super::socket_options;
use crate::provision::TargetError;
use crate::provision::docker::docker;
use crate::provision::ready;
use crate::provision::spec::ContainerSpec;
use crate::provision::toolbox::{DATA, Data, On, Toolbox};

/// What a container target needs to stop its server cleanly, run one of PostgreSQL's tools
/// over its data directory in a toolbox, and start the server again (`pg_checksums` reads a
/// cluster only when it is shut down).
#[derive(Clone)]
pub(crate) struct Offline {
    pub(super) container: String,
    pub(super) run_dir: PathBuf,
    /// The target's own spec, its image named: the tools run in the image the server runs.
    pub(super) spec: ContainerSpec,
    pub(super) drill_id: String,
    /// The Docker volume that is the data directory (an overlay, mounted `noexec`).
    pub(super) volume: String,
    /// Whether the data is a clone's (a snapshot's, not snapshotted again).
    pub(super) clone: bool,
    /// The image's relay of the application's logins, started again with the server.
    pub(super) relay: Option<String>,
}

impl Offline {
    /// Stops the server (a fast shutdown: a clean one, sessions ended), runs `program args` in a
    /// toolbox that sees the data directory at [`DATA`], and starts the server
    /// again, ready for connections. Returns how the program ended and its stdout.
    pub(crate) async fn run_stopped(
        &self,
        program: &str,
        args: &[String],
        redactor: &crate::secret::Redactor,
    ) -> Result<(crate::provision::tools::ToolOutput, String), TargetError> {
        let docker = docker()?;
        stop_cleanly(&docker, &self.container).await?;
        let data = Data::Volume(&self.volume);
        let ran = Toolbox::run_once(&self.drill_id, On::Container(&self.spec), data, program, args, redactor).await;
        // Started again whatever the tool found: later checks and the app need the server.
        self.start_again(&docker, redactor).await?;
        ran
    }

    /// Stops the server (a clean shutdown), copies its data directory to `into` (a new folder,
    /// the files keeping their owner; blocks shared where the file system can), starts the server
    /// again, and reads the copy whole with `pg_checksums --check` in a toolbox. Returns what
    /// pg_checksums found, in words: a copy with a bad page is an error.
    pub(crate) async fn snapshot(
        &self,
        into: &Path,
        redactor: &crate::secret::Redactor,
    ) -> Result<String, TargetError> {
        use std::os::unix::fs::MetadataExt;
        let docker = docker()?;
        let data = self.run_dir.join("data");
        if self.clone {
            return Err(TargetError::Tool { message: "a clone is not snapshotted again".into() });
        }
        stop_cleanly(&docker, &self.container).await?;
        let (from, to) = (data.clone(), into.to_owned());
        let copied = tokio::task::spawn_blocking(move || {
            let meta = std::fs::metadata(&from)?;
            crate::tree::copy(&from, &to, crate::tree::Ids { uid: meta.uid(), gid: meta.gid() })
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|copied| copied);
        self.start_again(&docker, redactor).await?;
        copied.map_err(TargetError::io("cannot copy the restored cluster"))?;
        let args = ["--check".to_owned(), "--pgdata".to_owned(), DATA.to_owned()];
        let on = On::Container(&self.spec);
        let ran = Toolbox::run_once(&self.drill_id, on, Data::Folder(into), "pg_checksums", &args, redactor).await;
        let (output, stdout) = ran?;
        let said = format!("{}{}", stdout, output.stderr);
        if said.contains("data checksums are not enabled") {
            return Ok("the cluster has no data checksums (initdb without --data-checksums): none to verify".into());
        }
        if output.status != 0 {
            return Err(TargetError::Tool {
                message: format!("pg_checksums --check found the copy damaged: {}", said.trim()),
            });
        }
        let blocks = stdout.lines().find_map(|l| l.strip_prefix("Blocks scanned:")).map(str::trim).unwrap_or("?");
        Ok(format!("pg_checksums --check read {blocks} blocks of the copy: every checksum matches"))
    }

    async fn start_again(&self, docker: &Docker, redactor: &crate::secret::Redactor) -> Result<(), TargetError> {
        use std::os::unix::fs::PermissionsExt;
        let socket = self.run_dir.join("socket");
        let unseal = |mode| {
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode))
                .map_err(TargetError::io("cannot open the socket folder again"))
        };
        unseal(0o777)?;
        clear_stale_socket(&socket);
        docker
            .start_container(&self.container, None)
            .await
            .map_err(|source| TargetError::Docker { action: "start the target's server again", source })?;
        wait_restarted(docker, &self.container, &socket, self.spec.startup_timeout, redactor).await?;
        if let Some(program) = &self.relay {
            super::relay::start(docker, &self.container, program, &socket).await?;
        }
        unseal(0o555)
    }
}

/// Stops a target's server with a fast shutdown (SIGINT: sessions end, a checkpoint, a clean
/// state) and waits until its container has stopped. (`docker stop` sends SIGTERM, a smart
/// shutdown that waits for every session, on engines older than API 1.42, which ignore its
/// signal.)
pub(super) async fn stop_cleanly(docker: &Docker, container: &str) -> Result<(), TargetError> {
    use futures_util::StreamExt;
    use testcontainers::bollard::query_parameters::{KillContainerOptions, WaitContainerOptions};
    let stop_err = |source| TargetError::Docker { action: "stop the target's server", source };
    let wait = WaitContainerOptions { condition: "not-running".into() };
    let mut stopped = docker.wait_container(container, Some(wait));
    docker.kill_container(container, Some(KillContainerOptions { signal: "SIGINT".into() })).await.map_err(stop_err)?;
    match stopped.next().await {
        // The server's exit status: 0 after a clean shutdown.
        Some(Ok(_)) | None => Ok(()),
        Some(Err(testcontainers::bollard::errors::Error::DockerContainerWaitError { code: 0, .. })) => Ok(()),
        Some(Err(testcontainers::bollard::errors::Error::DockerContainerWaitError { code, error })) => {
            Err(TargetError::Tool {
                message: format!("the target's server did not shut down cleanly (exit {code}): {error}"),
            })
        }
        Some(Err(source)) => Err(stop_err(source)),
    }
}

/// Removes the sockets and the lock file that a stopped server and its relay could not remove
/// from their sealed (read-only) folder: a server started again makes its own, and a stale
/// socket would only answer "connection refused".
pub(super) fn clear_stale_socket(socket_dir: &Path) {
    for name in [".s.PGSQL.5432".to_owned(), ".s.PGSQL.5432.lock".to_owned(), super::relay::socket_name()] {
        let _ = std::fs::remove_file(socket_dir.join(name));
    }
}

/// Polls with real connections until the server of a container started again (`id`) answers
/// on its socket: an error with the container's own output when it exits first or time is up.
pub(super) async fn wait_restarted(
    docker: &Docker,
    id: &str,
    socket: &Path,
    timeout: Duration,
    redactor: &crate::secret::Redactor,
) -> Result<(), TargetError> {
    let exited = || async {
        let running = docker.inspect_container(id, None).await.ok().and_then(|i| i.state?.running);
        running == Some(false)
    };
    let waited = ready::until_ready(&socket_options(socket), timeout, redactor, exited).await;
    match waited {
        Ok(()) => Ok(()),
        Err(why) => Err(why.into_error(timeout, redactor.redact(&container_log_tail(docker, id).await))),
    }
}

/// What container `id` printed (its server logs to stderr): its last `tail` lines, or all.
pub(crate) async fn container_log(docker: &Docker, id: &str, tail: Option<&str>) -> Result<String, DockerError> {
    use futures_util::StreamExt;
    use testcontainers::bollard::query_parameters::LogsOptionsBuilder;
    let mut options = LogsOptionsBuilder::new().stdout(true).stderr(true);
    if let Some(tail) = tail {
        options = options.tail(tail);
    }
    let mut stream = docker.logs(id, Some(options.build()));
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk?.into_bytes()));
    }
    Ok(text)
}

/// The last 15 lines a container printed, or what they could not be read with.
pub(super) async fn container_log_tail(docker: &Docker, id: &str) -> String {
    container_log(docker, id, Some("15")).await.unwrap_or_else(|e| format!("(its log could not be read: {e})"))
}
