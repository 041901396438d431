//! The application's way in: a relay, run in the target container's own network namespace, from
//! a second socket in the private socket folder to the server's TCP port on 127.0.0.1. The
//! container has no network but its loopback, so only what reaches the folder (pgdrill) reaches
//! the address; and the server sees what it sees of the application in production, a TCP login
//! from an address (`inet_client_addr()`, `pg_stat_activity.client_addr`, pg_hba's `host` lines),
//! where the Unix socket would show none. A backup's code that tells the two apart, a login event
//! trigger for one, acts on the probes as it acts on the application.
//!
//! The relay is socat, which the project's images carry outside the folders the sandbox hides
//! (label `org.pgdrill.relay`); an image without it offers the socket only, and the probes' evidence
//! says so. It runs as the server's user, for as long as the container runs: started again with
//! the server.

use std::path::Path;
use std::time::Duration;

use testcontainers::bollard::Docker;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecOptions};

use super::SOCKET_DIR;
use crate::provision::TargetError;

/// The port whose socket (`.s.PGSQL.5433`) the relay listens on, in the socket folder.
pub(crate) const PORT: u16 = 5433;
/// The image label that names the relay program.
pub(super) const LABEL: &str = "org.pgdrill.relay";
/// How long the relay's socket may take to appear.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's settings that make it listen where the relay forwards: its own loopback only.
pub(super) fn listen_addresses(relay: Option<&str>) -> &'static str {
    if relay.is_some() { "127.0.0.1" } else { "" }
}

/// The container's network where the relay runs.
const NETWORK: &str = "none: the container has no network (only its own loopback); the server listens on that loopback's 127.0.0.1, which only the relay of the application's logins inside the container reaches, and on its Unix socket; pgdrill reaches both through sockets in a private folder of this machine shared with the container and made read-only once they exist";

/// What the reports say of a container whose relay `program` runs: its network, and the one
/// program beside PostgreSQL's own.
pub(super) fn describe(isolation: &mut crate::outcome::Isolation, program: &str) {
    isolation.network = NETWORK.to_owned();
    isolation
        .programs
        .push_str(&format!("; and the relay pgdrill starts, `{program}` (SQL has no shell to start it with)"));
}

/// The relay socket's name in the socket folder.
pub(super) fn socket_name() -> String {
    format!(".s.PGSQL.{PORT}")
}

/// Starts `program` (the image's relay) in `container`, detached, and waits until its socket
/// is in `socket_dir` (this machine's side of the folder): then logins through it are TCP ones.
pub(super) async fn start(
    docker: &Docker,
    container: &str,
    program: &str,
    socket_dir: &Path,
) -> Result<(), TargetError> {
    let docker_err = |source| TargetError::Docker { action: "start the relay of the application's logins", source };
    let listen = format!("UNIX-LISTEN:{SOCKET_DIR}/{},fork,unlink-early,mode=0777", socket_name());
    let cmd = vec![program.to_owned(), listen, "TCP:127.0.0.1:5432".to_owned()];
    let options = CreateExecOptions {
        cmd: Some(cmd),
        attach_stdout: Some(false),
        attach_stderr: Some(false),
        ..Default::default()
    };
    let exec = docker.create_exec(container, options).await.map_err(docker_err)?;
    let detached = StartExecOptions { detach: true, ..Default::default() };
    docker.start_exec(&exec.id, Some(detached)).await.map_err(docker_err)?;
    let socket = socket_dir.join(socket_name());
    let started = tokio::time::Instant::now();
    while !socket.exists() {
        if started.elapsed() > START_TIMEOUT {
            return Err(TargetError::Relay { program: program.to_owned(), waited: START_TIMEOUT });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
