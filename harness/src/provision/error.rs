//! Why a target could not be started, used, kept or removed ([`TargetError`]), why an image's
//! initialised cluster could not be copied out of it ([`TemplateError`]), why a sandbox is not
//! one ([`Breach`]), and what the audit after a restore into a sandbox found ([`AuditError`]).
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

#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
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
    /// The server did not answer.
    #[error("cannot connect to the server at {address}: {message} (hint: is it running, and reachable from here?)")]
    Unreachable { address: String, message: String },
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
    #[error("removing the target failed: {message}")]
    Teardown { message: String },
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
    #[error("cannot let `{role}` log in: {message}")]
    Login { role: String, message: String },
    /// A role the drill logs in as does not exist.
    #[error("role `{role}` does not exist in the restored database")]
    NoRole { role: String },
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
    /// An io error, with what was being done.
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> TargetError {
        let action = action.into();
        move |source| TargetError::Io { action, source }
    }
}
