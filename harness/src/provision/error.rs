//! Why a target could not be started, used, kept or removed ([`TargetError`]), why an image's
//! initialised cluster could not be copied out of it ([`TemplateError`]), why a sandbox is not
//! one ([`Breach`]), why the engine could not mount an overlay ([`OverlayError`]), and what the
//! audit after a restore into a sandbox found ([`AuditError`]).
//! A leaf: it names no other part of `provision/`.

use std::path::PathBuf;
use std::time::Duration;

use testcontainers::TestcontainersError;

/// The error of parsing a URL (the `url` crate's, which `reqwest` uses).
pub(crate) type UrlError = <reqwest::Url as std::str::FromStr>::Err;

/// What the audit after a restore into a sandbox found.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuditError {
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

/// Why the agent could not be asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentError {
    /// Nothing answered on the socket in time: the server's container is not there.
    #[error(
        "no agent answers on `{}` after {} (hint: the pod target needs the server's container beside this one, running `pgdrill pod-server` with the same folder mounted)",
        path.display(), humantime::format_duration(*waited)
    )]
    Absent {
        path: PathBuf,
        waited: Duration,
        #[source]
        source: std::io::Error,
    },
    /// The conversation broke off.
    #[error("the agent's connection failed")]
    Io(#[source] std::io::Error),
    /// The agent answered something pgdrill cannot read.
    #[error("the agent answered what pgdrill cannot read: {line:?}")]
    Garbled {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    /// The agent refused.
    #[error("the agent refused: {0}")]
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    /// The pod's agent, in the server's container, could not be asked.
    #[error("the pod target's agent (in `{}`) failed", dir.display())]
    Agent {
        dir: PathBuf,
        #[source]
        source: AgentError,
    },
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
    /// The offline build of the project's image could not be prepared or started.
    #[error(
        "building image `{image}` failed: {action} (hint: the offline build needs root or sudo, and access to Debian's package archive)"
    )]
    ImageBuildIo {
        image: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The target's server did not start (initdb failed, for a local target).
    #[error("cannot start a container from `{image}`: {message}")]
    Start { image: String, message: String },
    /// The container (a target's, a toolbox's) did not start.
    #[error("cannot start a container from `{image}`")]
    StartContainer {
        image: String,
        #[source]
        source: TestcontainersError,
    },
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
    /// The server target's connection string could not be read.
    #[error(transparent)]
    Secret {
        #[from]
        source: crate::secret::SecretError,
    },
    /// The server target's connection string is not a URL.
    #[error("the server's connection string is not a URL")]
    NotUrl {
        #[source]
        source: UrlError,
    },
    /// sqlx does not take the server's connection string (its cause may quote it: the string is
    /// a registered secret, masked when shown).
    #[error("the server's connection string is not one sqlx takes")]
    NotOptions {
        #[source]
        source: sqlx::Error,
    },
    /// The server refused the connection, or pgdrill's query of what it may do.
    #[error("cannot connect to the server at {address} (is it running, and reachable from here?)")]
    Unreachable {
        address: String,
        /// The connection's error.
        #[source]
        source: sqlx::Error,
    },
    /// The server did not answer within the time a connection is given.
    #[error("cannot connect to the server at {address}: no answer within {} s (hint: is it running, and reachable from here?)", waited.as_secs())]
    Silent { address: String, waited: std::time::Duration },
    /// A client program (pg_restore) could not be run.
    #[error("{message}")]
    Tool { message: String },
    /// A file, a folder or a process of this machine could not be used: `action` says what.
    #[error("{action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    /// A task on the blocking pool failed (it panicked, or the runtime is shutting down).
    #[error(transparent)]
    Task {
        #[from]
        source: tokio::task::JoinError,
    },
    /// The target container's configuration could not be read back, to keep it.
    #[error("cannot read the target container's configuration")]
    ContainerConfig {
        #[source]
        source: serde_json::Error,
    },
    /// Removing the target failed.
    #[error("removing the target failed")]
    Teardown {
        /// The server's error dropping what the drill created on it.
        #[source]
        source: sqlx::Error,
    },
    /// Removing a container (a target's, a toolbox's) failed.
    #[error("removing the target failed")]
    RemoveContainer {
        #[source]
        source: TestcontainersError,
    },
    /// Removing a target's folder failed.
    #[error("removing the target failed: cannot remove `{}`", path.display())]
    RemoveFolder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    #[error(transparent)]
    NotIsolated {
        #[from]
        source: Breach,
    },
    /// What the sandbox looks like from inside could not be read.
    #[error("cannot look at it from inside")]
    Unobservable {
        #[source]
        source: sqlx::Error,
    },
    /// A target that is not a sandbox, for a backup the scenario does not trust.
    #[error(
        "{what} is not a sandbox: {why}, so SQL in the backup could reach beyond the drill (hint: drill untrusted backups on the container target; or, if this backup cannot have been written by anyone else, say why in the scenario: `[source] trusted = \"...\"`)"
    )]
    Untrusted { what: String, why: String },
    /// The image's initialised cluster could not be copied out of it.
    #[error(
        "cannot copy the initialised cluster out of image `{image}` (hint: pgdrill's images carry one; see ci/image/build for what an image must hold)"
    )]
    Template {
        image: String,
        #[source]
        source: TemplateError,
    },
    /// The data directory could not be mounted `noexec` (an overlay volume the engine mounts).
    #[error(
        "cannot mount the target's data directory noexec, so a backup could write a library there and load it as native code (hint: the overlay's layers are in the private folder under TMPDIR: point TMPDIR at a file system overlayfs takes as an upper layer, such as ext4, XFS or tmpfs)"
    )]
    NoexecData {
        #[source]
        source: OverlayError,
    },
    /// The relay of the application's logins (the image's `org.pgdrill.relay`) made no socket.
    #[error(
        "the relay of the application's TCP logins (`{program}`, the image's org.pgdrill.relay) made no socket within {}s (hint: an image built by hand must carry socat there, as ci/image/build's does)",
        waited.as_secs()
    )]
    Relay { program: String, waited: std::time::Duration },
    /// Rootless Docker maps the container's users away from this machine's.
    #[error(
        "the Docker engine runs rootless: the container's users are not this machine's, so the target cannot use the private folder pgdrill gives it (hint: use a Docker engine that runs as root, or `kind = \"local\"`)"
    )]
    Rootless,
    /// The restored database did not take a connection.
    #[error("cannot connect to the restored database `{database}`")]
    Database {
        database: String,
        /// The server's or the connection's error (its text may hold a secret: shown through
        /// [`crate::secret::error_text`] or the drill's redactor).
        #[source]
        source: sqlx::Error,
    },
    /// The loopback port for programs could not be opened.
    #[error("cannot let the drill's programs reach the target")]
    Programs {
        /// The server's error creating their role.
        #[source]
        source: sqlx::Error,
    },
    /// The loopback port for programs, or a kept target's forwarder, could not be started.
    #[error("cannot let the drill's programs reach the target: {action}")]
    ProgramsIo {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A role of the shared server, which the drill did not create, has no password in the
    /// scenario.
    #[error(
        "`{role}` existed on the shared server before the drill: pgdrill will not change its password (hint: give it in the scenario: `[login] passwords = {{ {role} = \"ENV_VAR\" }}`)"
    )]
    SharedRole { role: String },
    /// A role could not be given a login.
    #[error("cannot let `{role}` log in")]
    Login {
        role: String,
        /// The server's error.
        #[source]
        source: sqlx::Error,
    },
    /// A role the drill logs in as does not exist.
    #[error("role `{role}` does not exist in the restored database")]
    NoRole { role: String },
}

/// Why the Docker engine could not mount an overlay: for a clone (it is copied instead), or for
/// the data directory (the target is not started).
#[derive(Debug, thiserror::Error)]
pub(crate) enum OverlayError {
    /// A path the mount's options would read as more options.
    #[error("`{}` holds a comma, colon or backslash", path.display())]
    OddPath { path: PathBuf },
    /// The overlay's upper or work folder could not be made ready.
    #[error("cannot make `{}` ready", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The engine did not create the overlay's volume.
    #[error("cannot create the overlay's volume")]
    Volume {
        #[source]
        source: testcontainers::bollard::errors::Error,
    },
}

/// What makes a target that was asked to be a sandbox not one, seen from inside.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the target is not the sandbox it was asked to be: {}", wrong.join("; "))]
pub(crate) struct Breach {
    /// Each thing that is wrong, in words (`it runs as root`).
    pub wrong: Vec<String>,
}

/// Why an image's initialised cluster could not be copied out of it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TemplateError {
    /// The image lacks the labels that say where its cluster is and whose it is.
    #[error("it lacks the labels {labels}")]
    Unlabelled { labels: &'static str },
    /// The image does not say where its initialised data directory is.
    #[error("it has no `org.pgdrill.pgdata` label")]
    NoPgdata,
    /// The cache folder could not be made.
    #[error("cannot create `{}`", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The container to copy it from could not be created.
    #[error("cannot create a container to copy it from")]
    Create {
        #[source]
        source: testcontainers::bollard::errors::Error,
    },
    /// The copy could not be unpacked.
    #[error("cannot unpack it")]
    Unpack {
        #[source]
        source: std::io::Error,
    },
    /// What was unpacked is no data directory.
    #[error("`{}` holds no data directory", path.display())]
    Empty { path: PathBuf },
}

impl TargetError {
    /// Whether the target could not be provisioned for a reason that says nothing about the
    /// backup: the engine, the image, the machine, the sandbox or the scenario's target (the
    /// drill could not run). A server started on the backup's own data (`on_backup_data`: a
    /// physical backup, a snapshot's clone) that does not start may not start because of that
    /// data, and a backup that cannot fit in the disk limit or be read is a finding.
    pub(crate) fn says_nothing_of_the_backup(&self, on_backup_data: bool) -> bool {
        use TargetError as E;
        match self {
            E::Docker { .. }
            | E::ImageMissing { .. }
            | E::NoImageForMajor { .. }
            | E::ImageBuild { .. }
            | E::ImageBuildIo { .. }
            | E::StartContainer { .. }
            | E::Gone
            | E::Config { .. }
            | E::Secret { .. }
            | E::NotUrl { .. }
            | E::NotOptions { .. }
            | E::Unreachable { .. }
            | E::Silent { .. }
            | E::Io { .. }
            | E::Task { .. }
            | E::RemoteEngine { .. }
            | E::NotIsolated { .. }
            | E::Unobservable { .. }
            | E::Untrusted { .. }
            | E::Template { .. }
            | E::Rootless
            | E::Programs { .. }
            | E::ProgramsIo { .. }
            | E::Agent { .. }
            | E::NoexecData { .. }
            | E::Relay { .. } => true,
            E::Start { .. } | E::Exited { .. } | E::NotReady { .. } => !on_backup_data,
            // The host's filesystem has no room: the machine's; a backup too big: the backup's.
            E::Disk(disk) => {
                matches!(disk, crate::disk::DiskError::NoRoom { .. } | crate::disk::DiskError::Space { .. })
            }
            E::Unreadable { .. }
            | E::Tool { .. }
            | E::ContainerConfig { .. }
            | E::Teardown { .. }
            | E::RemoveContainer { .. }
            | E::RemoveFolder { .. }
            | E::Keep { .. }
            | E::Database { .. }
            | E::SharedRole { .. }
            | E::Login { .. }
            | E::NoRole { .. } => false,
        }
    }

    /// An io error, with what was being done.
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> TargetError {
        let action = action.into();
        move |source| TargetError::Io { action, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::DiskError;

    /// A server that does not start on a fresh cluster says nothing about the backup; one started
    /// on the backup's own data may not start because of it, and a backup too big is a finding.
    #[test]
    fn a_target_says_whether_its_failure_is_about_the_backup() {
        let exited = || TargetError::Exited { logs: "PANIC: could not locate a valid checkpoint record".into() };
        assert!(exited().says_nothing_of_the_backup(false), "a fresh cluster's server");
        assert!(!exited().says_nothing_of_the_backup(true), "a physical backup's own data");
        let unreachable = TargetError::Unreachable { address: "127.0.0.1:1".into(), source: sqlx::Error::PoolTimedOut };
        assert!(unreachable.says_nothing_of_the_backup(true));
        let silent = TargetError::Silent { address: "127.0.0.1:1".into(), waited: std::time::Duration::from_secs(15) };
        assert!(silent.says_nothing_of_the_backup(true));
        let room = DiskError::NoRoom { dir: "/tmp".into(), free: "1 GiB".into(), reserve: "2 GiB".into() };
        assert!(TargetError::Disk(room).says_nothing_of_the_backup(false), "the host's disk");
        let too_big = DiskError::WontFit { limit: "1GB".into(), what: "the data directory takes 3 GiB".into() };
        assert!(!TargetError::Disk(too_big).says_nothing_of_the_backup(false), "the backup's size");
    }
}
