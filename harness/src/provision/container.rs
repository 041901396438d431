//! A throwaway PostgreSQL container, started with testcontainers, that is a sandbox for the SQL
//! of an untrusted backup: no network (pgdrill reaches the server through its Unix socket, in a
//! private folder shared with the container), never root, no capabilities, a read-only root with
//! no shell, the data on a volume of its own, memory and processes limited. It starts from the
//! image's initialised cluster, is ready when a real connection succeeds, proves its isolation
//! from inside, and is labelled with the drill's id so that teardown finds it even if a start
//! was interrupted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use testcontainers::bollard::Docker;
use testcontainers::bollard::errors::Error as DockerError;
use testcontainers::bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use testcontainers::core::{AccessMode, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::sandbox::{Isolation, Observed};
use super::spec::ContainerSpec;
use super::tools::{self, Tools};
use super::tuning::{self, Limits};
use super::{Programs, ProvisionContext, Target, TargetError, TargetInfo, image};

/// The label every pgdrill container carries: the id of the drill that owns it.
pub(crate) const DRILL_LABEL: &str = "org.pgdrill.drill";

/// Who started a container: `host/pid/start time` (a pid alone may be reused). Containers whose
/// owner on this machine is gone (killed, or interrupted twice) are removed by the next drill.
pub(crate) const OWNER_LABEL: &str = "org.pgdrill.owner";

/// This process as an owner.
pub(crate) fn owner() -> String {
    owner_of(std::process::id()).unwrap_or_default()
}

pub(super) fn owner_of(pid: u32) -> Option<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?.trim().to_owned();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis start at field 3 (state); 22 is starttime.
    let started = stat.rsplit_once(") ")?.1.split_whitespace().nth(19)?.to_owned();
    Some(format!("{host}/{pid}/{started}"))
}

/// Whether `owner` names a process of this machine that still runs.
pub(super) fn running(owner: &str) -> bool {
    let pid = owner.split('/').nth(1).and_then(|p| p.parse().ok());
    pid.is_some_and(|pid| owner_of(pid).as_deref() == Some(owner))
}

/// Whether `owner` names a process of this machine that no longer runs.
pub(super) fn orphaned(owner: &str) -> bool {
    let mine = self::owner();
    let (Some((host, _)), Some((my_host, _))) = (owner.split_once('/'), mine.split_once('/')) else { return false };
    let pid = owner.split('/').nth(1).and_then(|p| p.parse().ok());
    host == my_host && pid.is_some_and(|pid| owner_of(pid).as_deref() != Some(owner))
}

/// Removes the containers (targets and apps) of drills on this machine whose process is gone,
/// with their private folders.
pub(crate) async fn remove_orphans(docker: &Docker) -> Result<usize, TargetError> {
    let removed = remove_where(docker, OWNER_LABEL.to_owned(), |labels| {
        orphaned(labels.get(OWNER_LABEL).map(String::as_str).unwrap_or_default())
    })
    .await?;
    for drill in removed.iter().filter_map(|labels| labels.get(DRILL_LABEL)) {
        RunDir::remove(&RunDir::path_for(drill));
    }
    Ok(removed.len())
}

const SUPERUSER: &str = "postgres";

/// Where the server puts its socket: a private folder of this machine, mounted here.
const SOCKET_DIR: &str = "/var/run/postgresql";
/// Folders of programs hidden under empty read-only mounts: with no shell and no programs but
/// PostgreSQL's own (which live in /usr/lib/postgresql), `COPY ... PROGRAM`, `archive_command`
/// and the like have nothing to start.
const NO_PROGRAMS: [&str; 4] = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];

/// A running target container; removed by [`Running::remove`].
pub struct Running {
    container: Option<ContainerAsync<GenericImage>>,
    docker: Docker,
    drill_id: String,
    run_dir: RunDir,
    startup_timeout: Duration,
}

pub(crate) fn docker() -> Result<Docker, TargetError> {
    Docker::connect_with_defaults()
        .map_err(|source| TargetError::Docker { action: "connect to the Docker engine", source })
}

/// The target's private folder on this machine, `<tmp>/pgdrill-<drill>-target` (0700, this
/// process's user): `data/`, the cluster (a copy of the image's), and `socket/`, where the server
/// makes its socket. Only this user (and root) can pass the folder; the container sees the two
/// inside it and nothing else of this machine.
struct RunDir {
    outer: PathBuf,
}

impl RunDir {
    fn path_for(drill_id: &str) -> PathBuf {
        // Short: a socket's whole path must fit in 107 bytes.
        let short: String = drill_id.chars().take(12).collect();
        std::env::temp_dir().join(format!("pgdrill-{short}-target"))
    }

    /// Creates the folder with a copy of `template` (an initialised data directory) owned by
    /// `owner`.
    fn create(drill_id: &str, template: &Path, owner: (u32, u32)) -> std::io::Result<RunDir> {
        let dir = Self::empty(drill_id)?;
        copy_tree(template, &dir.data(), owner)?;
        Ok(dir)
    }

    /// The folder with an empty socket folder, marked with its owner; the data directory is
    /// the caller's to make.
    fn empty(drill_id: &str) -> std::io::Result<RunDir> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let outer = Self::path_for(drill_id);
        let socket_path = outer.join("socket/.s.PGSQL.5432");
        if socket_path.as_os_str().len() > 107 {
            return Err(std::io::Error::other(format!(
                "`{}` is longer than a Unix socket's path may be (hint: point TMPDIR at a shorter folder)",
                socket_path.display()
            )));
        }
        std::fs::DirBuilder::new().mode(0o700).create(&outer)?;
        super::mark_owner(&outer)?;
        let dir = RunDir { outer };
        std::fs::create_dir(dir.socket())?;
        // The server makes its socket here, then the folder is sealed (see `seal`).
        std::fs::set_permissions(dir.socket(), std::fs::Permissions::from_mode(0o777))?;
        Ok(dir)
    }

    /// Creates the folder around a data directory staged from a base backup (moved in), made
    /// a standby of nothing: the sandbox's own configuration (the source's kept beside it as
    /// `*.source`, never read) and `standby.signal`.
    fn create_physical(drill_id: &str, physical: &super::PhysicalData, owner: (u32, u32)) -> std::io::Result<RunDir> {
        use std::os::unix::fs::PermissionsExt;
        let dir = Self::empty(drill_id)?;
        let data = dir.data();
        if std::fs::rename(&physical.data, &data).is_err() {
            // Another file system: copied instead.
            copy_tree(&physical.data, &data, owner)?;
            std::fs::remove_dir_all(&physical.data)?;
        }
        for (name, text) in [
            (
                "postgresql.conf",
                "# pgdrill: the sandbox's settings are on the command line; the source's are in *.source\n",
            ),
            ("postgresql.auto.conf", ""),
            ("pg_hba.conf", super::image::PG_HBA),
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
        std::os::unix::fs::lchown(&signal, Some(owner.0), Some(owner.1))?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
        Ok(dir)
    }

    fn data(&self) -> PathBuf {
        self.outer.join("data")
    }

    fn socket(&self) -> PathBuf {
        self.outer.join("socket")
    }

    /// Once the socket exists, its folder is made read-only: the server's user cannot write
    /// there any more (when it is not this process's user, it cannot undo that either).
    fn seal(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.socket(), std::fs::Permissions::from_mode(0o555))
    }

    /// Removes a target's private folder, unless it was kept (`pgdrill clean` removes that one).
    fn remove(path: &Path) {
        if path.exists()
            && !path.join(super::kept::MARKER).exists()
            && let Err(e) = std::fs::remove_dir_all(path)
        {
            tracing::warn!("cannot remove `{}`: {e}", path.display());
        }
    }
}

/// Copies the folder `from` to `to` (files and folders, with their modes), owned by `owner`:
/// the folders first, then the files on one thread per core (creating a file, not copying its
/// bytes, is what costs here: a cluster is about a thousand small files).
pub(crate) fn copy_tree(from: &Path, to: &Path, owner: (u32, u32)) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let chown = |path: &Path| std::os::unix::fs::lchown(path, Some(owner.0), Some(owner.1));
    let mut folders = vec![(from.to_owned(), to.to_owned())];
    let mut files = Vec::new();
    let mut next = 0;
    while let Some((source, target)) = folders.get(next).cloned() {
        next += 1;
        std::fs::DirBuilder::new().mode(0o700).create(&target)?;
        chown(&target)?;
        for entry in std::fs::read_dir(&source)? {
            let entry = entry?;
            let pair = (entry.path(), target.join(entry.file_name()));
            if entry.file_type()?.is_dir() { folders.push(pair) } else { files.push(pair) }
        }
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let copies: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> std::io::Result<()> {
                    for (source, target) in part {
                        std::fs::copy(source, target)?;
                        chown(target)?;
                    }
                    Ok(())
                })
            })
            .collect();
        copies
            .into_iter()
            .try_for_each(|copy| copy.join().unwrap_or_else(|_| Err(std::io::Error::other("a copy thread panicked"))))
    })?;
    // Folder modes last: a read-only folder would refuse its files.
    for (source, target) in folders.iter().rev() {
        let mode = std::fs::metadata(source)?.mode() & 0o7777;
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Who the server runs as: the image's owner of the data directory when pgdrill runs as root
/// (which can give it the copy), else pgdrill's own user (a copy it makes is its own).
pub(super) fn server_user(image: &image::ImageInfo) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self").ok()?;
    if me.uid() == 0 { image.owner } else { Some((me.uid(), me.gid())) }
}

/// The container target reaches its server through a Unix socket in a folder shared with the
/// container, which only an engine on this machine can share: `DOCKER_HOST` must be unset, a
/// Unix socket, or a loopback address. Returns the engine's address (without credentials) when
/// it is elsewhere.
fn remote_engine(docker_host: Option<&str>) -> Option<String> {
    let host = docker_host?;
    let (scheme, rest) = host.split_once("://")?;
    if matches!(scheme, "unix" | "npipe") {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let name = authority.rsplit_once(':').map_or(authority, |(n, _)| n).trim_matches(['[', ']']);
    let local = name == "localhost" || name == "::1" || name.starts_with("127.");
    (!local).then(|| format!("{scheme}://{authority}"))
}

/// Whether `DOCKER_HOST` names an engine on another machine (pgdrill never talks to it).
pub(crate) fn engine_elsewhere() -> bool {
    remote_engine_now().is_some()
}

/// The engine `DOCKER_HOST` names, when it is on another machine.
pub(super) fn remote_engine_now() -> Option<String> {
    remote_engine(std::env::var("DOCKER_HOST").ok().as_deref())
}

/// The group to give the container so that it can read the backup, when only the group can.
/// The target never runs as root, so a backup readable by its owner alone cannot be read.
fn backup_group(path: &Path, image_uid: Option<u32>) -> Result<Option<u32>, TargetError> {
    use std::os::unix::fs::MetadataExt;
    let mut group = None;
    let mut paths = vec![path.to_owned()];
    if path.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| TargetError::Tool { message: format!("cannot list `{}`: {e}", path.display()) })?;
        paths.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    for p in paths {
        let meta = std::fs::metadata(&p)
            .map_err(|e| TargetError::Tool { message: format!("cannot read `{}`: {e}", p.display()) })?;
        let (read, other, grp) = if meta.is_dir() { (0o5, 0o005, 0o050) } else { (0o4, 0o004, 0o040) };
        let mode = meta.mode();
        let owner_reads = image_uid == Some(meta.uid()) && mode & (read << 6) == read << 6;
        if owner_reads || mode & other == other {
            continue;
        }
        if mode & grp == grp && group.is_none_or(|g| g == meta.gid()) {
            group = Some(meta.gid());
            continue;
        }
        return Err(TargetError::Unreadable { path: p.clone(), mode: mode & 0o7777, uid: meta.uid(), gid: meta.gid() });
    }
    Ok(group)
}

/// Starts the container and waits until PostgreSQL accepts a connection.
pub(crate) async fn start(spec: &ContainerSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Running), TargetError> {
    if let Some(host) = remote_engine_now() {
        return Err(TargetError::RemoteEngine { host });
    }
    let docker = docker()?;
    docker.ping().await.map_err(|source| TargetError::Docker { action: "reach the Docker engine", source })?;
    let image_name = image::choose(spec, ctx.backup_major)?;
    let image = image::ensure(&docker, &image_name, || {
        (ctx.progress)(&format!("building image {image_name} from Debian packages (first run only)"))
    })
    .await?;

    let orphans = remove_orphans(&docker).await?;
    super::remove_orphan_folders();
    if orphans > 0 {
        (ctx.progress)(&format!("removed {orphans} container(s) left by drills that were killed"));
        tracing::warn!("removed {orphans} container(s) left by pgdrill processes that no longer run");
    }
    if docker
        .info()
        .await
        .ok()
        .and_then(|i| i.security_options)
        .unwrap_or_default()
        .iter()
        .any(|o| o.contains("rootless"))
    {
        return Err(TargetError::Rootless);
    }
    let (Some(user), Some(pgdata)) = (server_user(&image), image.pgdata.clone()) else {
        return Err(TargetError::Template {
            image: image_name.clone(),
            message: "it lacks the labels `org.pgdrill.pgdata`, `org.pgdrill.uid` and `org.pgdrill.gid`".into(),
        });
    };
    let limits = Limits::of(spec.memory, spec.processes);
    // The data lives in a private folder under TMPDIR: its filesystem decides the default.
    let disk = crate::disk::limit_for(spec.disk.as_ref(), &std::env::temp_dir())?;
    if let Some(physical) = ctx.physical {
        let data = physical.data.clone();
        let used = tokio::task::spawn_blocking(move || crate::disk::usage(&data)).await.unwrap_or_default();
        if used > disk.bytes {
            return Err(crate::disk::DiskError::WontFit {
                limit: disk.shown.clone(),
                what: format!("its data directory takes {}", crate::units::human_size(used)),
            }
            .into());
        }
    }
    let mut tuning = tuning::throwaway(limits.resources(), &tuning::disk_bounded(&spec.settings, disk.bytes));
    // A recovering standby's settings (the scenario's own already yielded to them), in the one
    // list the reports show.
    for (key, value) in ctx.physical.map(|p| p.settings.as_slice()).unwrap_or_default() {
        tuning.settings.insert(key.clone(), value.clone());
    }

    let (name, tag) = split_image(&image_name);
    let mut cmd = Vec::new();
    for (key, value) in &tuning.settings {
        cmd.push("-c".to_owned());
        cmd.push(format!("{key}={value}"));
    }
    // No TCP at all, the socket where the mount is (these win over the scenario's settings).
    cmd.extend(["-c", "listen_addresses=", "-c"].map(String::from));
    cmd.push(format!("unix_socket_directories={SOCKET_DIR}"));
    let short_id: String = ctx.drill_id.chars().take(8).collect();
    // The backup, read-only, for the target's own pg_restore.
    let (mount, group) = match ctx.backup {
        Some(path) => {
            let host = std::fs::canonicalize(path).map_err(|e| TargetError::Tool {
                message: format!("cannot resolve `{}` to mount it: {e}", path.display()),
            })?;
            let group = backup_group(&host, Some(user.0))?;
            let name = host.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backup".into());
            (Some((path.to_owned(), host, format!("{}/{name}", tools::CONTAINER_BACKUP_DIR))), group)
        }
        None => (None, None),
    };
    let run_dir = match ctx.physical {
        None => {
            let template = image::cluster_template(&docker, &image_name, &image).await?;
            let (drill_id, user) = (ctx.drill_id.to_owned(), user);
            tokio::task::spawn_blocking(move || RunDir::create(&drill_id, &template, user))
                .await
                .map_err(|e| TargetError::Tool { message: e.to_string() })?
                .map_err(|e| TargetError::Tool { message: format!("cannot create the target's private folder: {e}") })?
        }
        Some(physical) => {
            let (drill_id, user, physical) = (ctx.drill_id.to_owned(), user, physical.clone());
            tokio::task::spawn_blocking(move || RunDir::create_physical(&drill_id, &physical, user))
                .await
                .map_err(|e| TargetError::Tool { message: e.to_string() })?
                .map_err(|e| TargetError::Tool {
                    message: format!("cannot move the restored data directory in: {e}"),
                })?
        }
    };
    let mut request = GenericImage::new(name, tag)
        .with_wait_for(WaitFor::Nothing)
        .with_cmd(cmd)
        .with_shm_size(tuning.shm_size_bytes)
        .with_user(format!("{}:{}", user.0, user.1))
        .with_readonly_rootfs(true)
        .with_cap_drop("ALL")
        .with_security_opt("no-new-privileges")
        .with_ulimit("data", limits.data_per_process as i64, Some(limits.data_per_process as i64))
        .with_label(DRILL_LABEL, ctx.drill_id)
        .with_label(OWNER_LABEL, owner())
        .with_label("org.pgdrill.scenario", ctx.scenario)
        .with_container_name(format!("pgdrill-{}-{short_id}", ctx.scenario))
        .with_startup_timeout(spec.startup_timeout)
        .with_mount(Mount::bind_mount(run_dir.socket().display().to_string(), SOCKET_DIR))
        .with_mount(Mount::bind_mount(run_dir.data().display().to_string(), pgdata))
        .with_host_config_modifier(move |host| {
            // No network at all: not even Docker's bridge. pgdrill talks to the socket.
            host.network_mode = Some("none".into());
            host.publish_all_ports = Some(false);
            host.port_bindings = None;
            host.memory = Some(limits.memory as i64);
            host.memory_swap = Some(limits.memory as i64);
            host.pids_limit = Some(limits.processes as i64);
            host.tmpfs = Some(NO_PROGRAMS.iter().map(|p| (p.to_string(), "ro,size=4k".to_owned())).collect());
            host.group_add = group.map(|g| vec![g.to_string()]);
            // The server's log goes to Docker's: capped, so that a backup that makes the server
            // log without end cannot fill this machine's disk through it.
            host.log_config = Some(testcontainers::bollard::models::HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([("max-size".into(), "10m".into()), ("max-file".into(), "2".into())])),
            });
        });
    if let Some((_, host, inside)) = &mount {
        request = request.with_mount(
            Mount::bind_mount(host.display().to_string(), inside.clone()).with_access_mode(AccessMode::ReadOnly),
        );
    }
    (ctx.progress)(&format!("starting {image_name}"));
    let started = request.start().await;
    let container = match started {
        Ok(container) => container,
        Err(e) => {
            RunDir::remove(&run_dir.outer);
            return Err(TargetError::Start { image: image_name.clone(), message: ctx.redactor.redact(&e.to_string()) });
        }
    };
    let tools = Tools::Container {
        docker: docker.clone(),
        container: container.id().to_owned(),
        mount: mount.map(|(given, _, inside)| (given, inside)),
    };
    let socket = run_dir.socket();
    let mut running = Running {
        container: Some(container),
        docker,
        drill_id: ctx.drill_id.to_owned(),
        run_dir,
        startup_timeout: spec.startup_timeout,
    };
    let ready = async {
        wait_ready(&mut running, spec, &socket, ctx).await?;
        running
            .run_dir
            .seal()
            .map_err(|e| TargetError::Tool { message: format!("cannot make the socket folder read-only: {e}") })?;
        let options = socket_options(&socket);
        let observed = super::observe(&options).await?;
        observed.judge().map_err(|message| TargetError::NotIsolated { message })?;
        Ok(observed)
    };
    match ready.await {
        Ok(observed) => {
            let container = running.container.as_ref().map(|c| c.id().to_owned()).unwrap_or_default();
            let mut isolation = isolation(observed, &tuning, &limits, ctx.backup.is_some());
            isolation
                .limits
                .push_str(&format!("; disk {} for its data (`[target] disk`), its log capped at 20 MiB", disk.shown));
            let target = Target {
                host: socket.display().to_string(),
                port: 5432,
                user: SUPERUSER.into(),
                password: None,
                maintenance_db: "postgres".into(),
                ssl_mode: PgSslMode::Disable,
                info: TargetInfo {
                    kind: "container".into(),
                    image: Some(image_name.clone()),
                    image_packages: image.labels.get("org.pgdrill.packages").map(|p| p.trim().to_owned()),
                    container: Some(container.chars().take(12).collect()),
                    address: format!("socket in {}", socket.display()),
                    server_version: String::new(),
                    server_version_num: 0,
                    settings: tuning.settings.clone(),
                    isolation: Some(isolation),
                    session: Vec::new(),
                },
                tools,
                database_suffix: None,
                created: Default::default(),
                programs: Programs::bridged(ctx.drill_id),
                offline: Some(Offline {
                    container,
                    run_dir: running.run_dir.outer.clone(),
                    spec: spec.clone(),
                    major: ctx.physical.map(|p| p.major).or(ctx.backup_major),
                    drill_id: ctx.drill_id.to_owned(),
                }),
                disk: Some(super::DataDisk { dir: running.run_dir.outer.clone(), limit: disk }),
                pins: Default::default(),
            };
            Ok((target, running))
        }
        Err(err) => {
            running.remove().await.ok();
            Err(err)
        }
    }
}

/// What a container target needs to stop its server cleanly, run one of PostgreSQL's tools
/// over its data directory in a toolbox, and start the server again (`pg_checksums` reads a
/// cluster only when it is shut down).
#[derive(Clone)]
pub struct Offline {
    container: String,
    run_dir: PathBuf,
    spec: ContainerSpec,
    major: Option<u32>,
    drill_id: String,
}

impl Offline {
    /// Stops the server (a fast shutdown: a clean one, sessions ended), runs `program args` in a
    /// toolbox that sees the data directory at [`super::toolbox::DATA`], and starts the server
    /// again, ready for connections. Returns how the program ended and its stdout.
    pub(crate) async fn run_stopped(
        &self,
        program: &str,
        args: &[String],
        redactor: &crate::secret::Redactor,
    ) -> Result<(super::tools::ToolOutput, String), TargetError> {
        let docker = docker()?;
        stop_cleanly(&docker, &self.container).await?;
        let data = self.run_dir.join("data");
        let ran = async {
            let toolbox = super::toolbox::Toolbox::start(super::toolbox::Request {
                drill_id: &self.drill_id,
                spec: &self.spec,
                major: self.major,
                data: &data,
                backup: None,
                progress: &|_| {},
            })
            .await?;
            let ran = toolbox.run(program, args, redactor).await;
            let _ = toolbox.remove().await;
            ran
        }
        .await;
        // Started again whatever the tool found: later checks and the app need the server.
        self.start_again(&docker, redactor).await?;
        ran
    }

    async fn start_again(&self, docker: &Docker, redactor: &crate::secret::Redactor) -> Result<(), TargetError> {
        use std::os::unix::fs::PermissionsExt;
        let socket = self.run_dir.join("socket");
        let unseal = |mode| {
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode))
                .map_err(|e| TargetError::Tool { message: format!("cannot open the socket folder again: {e}") })
        };
        unseal(0o777)?;
        clear_stale_socket(&socket);
        docker
            .start_container(&self.container, None)
            .await
            .map_err(|source| TargetError::Docker { action: "start the target's server again", source })?;
        wait_restarted(docker, &self.container, &socket, self.spec.startup_timeout, redactor).await?;
        unseal(0o555)
    }
}

/// Stops a target's server with a fast shutdown (SIGINT: sessions end, a checkpoint, a clean
/// state) and waits until its container has stopped. (`docker stop` sends SIGTERM, a smart
/// shutdown that waits for every session, on engines older than API 1.42, which ignore its
/// signal.)
async fn stop_cleanly(docker: &Docker, container: &str) -> Result<(), TargetError> {
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

/// What the reports say of the container's isolation.
fn isolation(observed: Observed, tuning: &tuning::Tuning, limits: &Limits, backup: bool) -> Isolation {
    Isolation {
        contained: true,
        network: "none: the container has no network (only its own loopback) and the server listens on no TCP address; pgdrill reaches it through its Unix socket, in a private folder of this machine shared with the container and made read-only once the socket exists".into(),
        user: format!("uid {}, never root", observed.uid),
        capabilities: "none: all dropped, no-new-privileges".into(),
        filesystem: format!(
            "read-only root; writable only: the data directory and the socket folder, both in a private folder of this machine made for the drill (0700) and removed with it, and /dev/shm ({} MiB); nothing else of this machine mounted{}",
            tuning.shm_size_bytes >> 20,
            if backup { " but the backup, read-only" } else { "" }
        ),
        programs: format!(
            "none but PostgreSQL's own: {} are empty and read-only, so there is no shell",
            NO_PROGRAMS.join(", ")
        ),
        limits: limits.describe("the container"),
        observed: Some(observed),
    }
}

fn socket_options(socket: &Path) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .socket(socket)
        .port(5432)
        .username(SUPERUSER)
        .database("postgres")
        .application_name("pgdrill")
}

/// Polls with real connections until the server answers, the container exits, or time is up.
async fn wait_ready(
    running: &mut Running,
    spec: &ContainerSpec,
    socket: &Path,
    ctx: &ProvisionContext<'_>,
) -> Result<(), TargetError> {
    let container = running.container.as_ref().ok_or(TargetError::Gone)?;
    let options = socket_options(socket);
    let started = Instant::now();
    let mut last_error;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => {
                conn.close().await.ok();
                return Ok(());
            }
            Ok(Err(e)) => last_error = ctx.redactor.redact(&e.to_string()),
            Err(_) => last_error = "connection attempt timed out".into(),
        }
        if !container.is_running().await.unwrap_or(false) {
            return Err(TargetError::Exited { logs: logs_tail(container, ctx).await });
        }
        if started.elapsed() >= spec.startup_timeout {
            if !socket.join(".s.PGSQL.5432").exists() {
                last_error = format!(
                    "no socket appeared in `{}`: is the Docker engine on another machine or in a VM (Docker Desktop)? it must share that folder with the container (hint: use `kind = \"local\"` or `kind = \"server\"` there)",
                    socket.display()
                );
            }
            return Err(TargetError::NotReady {
                timeout: spec.startup_timeout,
                last_error,
                logs: logs_tail(container, ctx).await,
            });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn logs_tail(container: &ContainerAsync<GenericImage>, ctx: &ProvisionContext<'_>) -> String {
    let mut text = String::from_utf8_lossy(&container.stderr_to_vec().await.unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(&container.stdout_to_vec().await.unwrap_or_default()));
    let lines: Vec<&str> = text.lines().collect();
    ctx.redactor.redact(&lines[lines.len().saturating_sub(15)..].join("\n"))
}

pub(super) fn split_image(image: &str) -> (String, String) {
    // The tag follows the last ':' unless that ':' is part of a registry's host:port.
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => (image[..i].to_owned(), image[i + 1..].to_owned()),
        _ => (image.to_owned(), "latest".to_owned()),
    }
}

impl Running {
    /// Removes the container, then any other container labelled with this drill's id (one
    /// created by a start that was interrupted before it returned).
    pub async fn remove(&mut self) -> Result<usize, TargetError> {
        let mut removed = 0;
        if let Some(container) = self.container.take() {
            container.rm().await.map_err(|e| TargetError::Teardown { message: e.to_string() })?;
            removed += 1;
        }
        removed += remove_labelled(&self.docker, &self.drill_id).await?;
        Ok(removed)
    }
}

impl Running {
    /// Keeps the target after the drill: a superuser with a fresh password for the loopback
    /// port, then the container made again from the same configuration and data directory (its
    /// server stopped cleanly first) with the kept labels instead of the drill's, proven a sandbox
    /// again from inside, its private folder marked as kept, and a forwarder on a loopback port.
    /// On an error the target is left for [`Running::remove`].
    pub(crate) async fn keep(
        &mut self,
        request: &super::kept::Request<'_>,
    ) -> Result<(super::kept::Record, Vec<super::kept::Service>, String), TargetError> {
        use super::kept::{self, Service};
        let id = self.container.as_ref().ok_or(TargetError::Gone)?.id().to_owned();
        let socket = self.run_dir.socket();
        let short: String = request.drill_id.chars().take(8).collect();
        let role = format!("pgdrill_kept_{short}");
        let password = crate::secret::Secret::random_password();
        request.redactor.register(&password);
        let login = create_login(&socket, &role, &password).await.map_err(|e| request.redactor.redact(&e));
        let inspected = self
            .docker
            .inspect_container(&id, None)
            .await
            .map_err(|source| TargetError::Docker { action: "inspect the target container", source })?;
        if inspected.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
            stop_cleanly(&self.docker, &id).await?;
        }
        if let Some(container) = self.container.take() {
            container.rm().await.map_err(|e| TargetError::Teardown { message: e.to_string() })?;
        }
        let name = inspected.name.clone().unwrap_or_default().trim_start_matches('/').to_owned();
        let new_id = self.recreate(&inspected, &name, request).await?;
        let started = async {
            self.docker
                .start_container(&new_id, None)
                .await
                .map_err(|source| TargetError::Docker { action: "start the kept target", source })?;
            wait_restarted(&self.docker, &new_id, &socket, self.startup_timeout, request.redactor).await?;
            self.run_dir
                .seal()
                .map_err(|e| TargetError::Tool { message: format!("cannot make the socket folder read-only: {e}") })?;
            let observed = super::observe(&socket_options(&socket)).await?;
            observed.judge().map_err(|message| TargetError::NotIsolated { message })?;
            // The owner file stays until the record is written ([`super::Teardown::keep`]).
            std::fs::write(self.run_dir.outer.join(kept::MARKER), request.record.display().to_string())
                .map_err(|e| TargetError::Tool { message: format!("cannot mark the private folder as kept: {e}") })?;
            let forwarder = match &login {
                Ok(()) => Some(kept::spawn_forwarder(&socket, SUPERUSER).map_err(|e| TargetError::Programs {
                    message: format!("cannot start the process that forwards a loopback port: {e}"),
                })?),
                Err(_) => None,
            };
            Ok(forwarder)
        };
        let forwarder = match started.await {
            Ok(forwarder) => forwarder,
            Err(e) => {
                let _ = std::fs::remove_file(self.run_dir.outer.join(kept::MARKER));
                let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
                let _ = self.docker.remove_container(&new_id, Some(options)).await;
                return Err(e);
            }
        };
        let socket_service = |service: String| Service {
            name: service,
            params: vec![
                ("host", socket.display().to_string()),
                ("port", "5432".into()),
                ("user", SUPERUSER.into()),
                ("dbname", request.database.to_owned()),
            ],
            password: None,
        };
        let (services, address, summary) = match &forwarder {
            Some(f) => (
                vec![
                    Service {
                        name: request.name.to_owned(),
                        params: vec![
                            ("host", "127.0.0.1".into()),
                            ("port", f.port.to_string()),
                            ("user", role.clone()),
                            ("dbname", request.database.to_owned()),
                            ("sslmode", "disable".into()),
                        ],
                        password: Some(password),
                    },
                    socket_service(format!("{}-socket", request.name)),
                ],
                format!("127.0.0.1:{}", f.port),
                format!(
                    "kept container {name}, still a sandbox (no network, no capabilities, no shell): database `{}` on 127.0.0.1:{} (loopback, forwarded to its socket) as `{role}`, whose password is in the connection file",
                    request.database, f.port
                ),
            ),
            None => (
                vec![socket_service(request.name.to_owned())],
                format!("socket in {}", socket.display()),
                format!(
                    "kept container {name}, still a sandbox (no network, no capabilities, no shell): database `{}` through its socket in {} only, as `postgres` (no login could be made for a loopback port: {})",
                    request.database,
                    socket.display(),
                    login.err().unwrap_or_default()
                ),
            ),
        };
        let record = kept::Record {
            name: request.name.to_owned(),
            kind: "container".into(),
            scenario: request.scenario.to_owned(),
            drill_id: request.drill_id.to_owned(),
            kept_at: request.kept_at.to_owned(),
            database: request.database.to_owned(),
            address,
            container: Some(new_id),
            container_name: Some(name),
            run_dir: Some(self.run_dir.outer.clone()),
            forwarder,
            server: None,
        };
        Ok((record, services, summary))
    }

    /// Creates the kept container: the drill container's configuration with the kept labels
    /// instead of the drill's, without the backup's mount (the backup is no longer needed).
    async fn recreate(
        &self,
        inspected: &testcontainers::bollard::models::ContainerInspectResponse,
        name: &str,
        request: &super::kept::Request<'_>,
    ) -> Result<String, TargetError> {
        use testcontainers::bollard::models::ContainerCreateBody;
        use testcontainers::bollard::query_parameters::CreateContainerOptions;
        let config = inspected.config.clone().unwrap_or_default();
        let mut body: ContainerCreateBody =
            serde_json::to_value(config).and_then(serde_json::from_value).map_err(|e| TargetError::Tool {
                message: format!("cannot read the target container's configuration: {e}"),
            })?;
        body.labels = Some(HashMap::from([
            (super::kept::KEPT_LABEL.to_owned(), request.kept_at.to_owned()),
            (super::kept::NAME_LABEL.to_owned(), request.name.to_owned()),
            (super::kept::RECORD_LABEL.to_owned(), request.record.display().to_string()),
            (super::kept::KEEPER_LABEL.to_owned(), owner()),
            ("org.pgdrill.scenario".to_owned(), request.scenario.to_owned()),
        ]));
        let mut host = inspected.host_config.clone().unwrap_or_default();
        host.mounts = host.mounts.map(|mounts| {
            mounts
                .into_iter()
                .filter(|m| !m.target.as_deref().unwrap_or_default().starts_with(tools::CONTAINER_BACKUP_DIR))
                .collect()
        });
        host.group_add = None;
        body.host_config = Some(host);
        // The server makes its socket again, as whichever user it runs as.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(self.run_dir.socket(), std::fs::Permissions::from_mode(0o777))
                .map_err(|e| TargetError::Tool { message: format!("cannot open the socket folder again: {e}") })?;
        }
        clear_stale_socket(&self.run_dir.socket());
        let options = CreateContainerOptions { name: Some(name.to_owned()), ..Default::default() };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|source| TargetError::Docker { action: "create the kept target", source })?;
        Ok(created.id)
    }
}

/// Removes the socket and its lock file that a stopped server could not remove from its sealed
/// (read-only) folder: a server started again makes its own, and a stale socket would only
/// answer "connection refused".
fn clear_stale_socket(socket_dir: &Path) {
    for name in [".s.PGSQL.5432", ".s.PGSQL.5432.lock"] {
        let _ = std::fs::remove_file(socket_dir.join(name));
    }
}

/// Polls with real connections until the server of a container started again (`id`) answers
/// on its socket: an error with the container's own output when it exits first or time is up.
async fn wait_restarted(
    docker: &Docker,
    id: &str,
    socket: &Path,
    timeout: Duration,
    redactor: &crate::secret::Redactor,
) -> Result<(), TargetError> {
    let options = socket_options(socket);
    let started = Instant::now();
    loop {
        let last_error = match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options)).await
        {
            Ok(Ok(conn)) => {
                conn.close().await.ok();
                return Ok(());
            }
            Ok(Err(e)) => redactor.redact(&e.to_string()),
            Err(_) => "connection attempt timed out".into(),
        };
        let running = docker.inspect_container(id, None).await.ok().and_then(|i| i.state?.running);
        if running == Some(false) {
            return Err(TargetError::Exited { logs: redactor.redact(&container_log_tail(docker, id).await) });
        }
        if started.elapsed() >= timeout {
            let logs = redactor.redact(&container_log_tail(docker, id).await);
            return Err(TargetError::NotReady { timeout, last_error, logs });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
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
async fn container_log_tail(docker: &Docker, id: &str) -> String {
    container_log(docker, id, Some("15")).await.unwrap_or_else(|e| format!("(its log could not be read: {e})"))
}

/// Makes `role`, a superuser that logs in with `password`, through the socket (a recovering
/// standby, read-only, cannot: the error says so).
async fn create_login(socket: &Path, role: &str, password: &crate::secret::Secret) -> Result<(), String> {
    use sqlx::Executor;
    let mut conn = PgConnection::connect_with(&socket_options(socket)).await.map_err(|e| e.to_string())?;
    let sql = format!(
        "CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}",
        crate::pg::quote_ident(role),
        crate::pg::quote_literal(password.expose())
    );
    let created = conn.execute(sqlx::raw_sql(&sql)).await.map(|_| ()).map_err(|e| e.to_string());
    conn.close().await.ok();
    created
}

/// The containers (targets and apps) of drills on this machine whose process is gone: their
/// names, removed with their private folders unless `dry_run`.
pub(crate) async fn orphans(docker: &Docker, dry_run: bool) -> Result<Vec<String>, TargetError> {
    let filters = HashMap::from([("label".to_owned(), vec![OWNER_LABEL.to_owned()])]);
    let list = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: Some(filters), ..Default::default() }))
        .await
        .map_err(|source| TargetError::Docker { action: "list pgdrill's containers", source })?;
    let mut names = Vec::new();
    for summary in list {
        let labels = summary.labels.unwrap_or_default();
        if !orphaned(labels.get(OWNER_LABEL).map(String::as_str).unwrap_or_default()) {
            continue;
        }
        let name = summary.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_owned());
        if !dry_run && let Some(id) = &summary.id {
            let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            match docker.remove_container(id, Some(options)).await {
                Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404 | 409, .. }) => {}
                Err(source) => return Err(TargetError::Docker { action: "remove a pgdrill container", source }),
            }
            if let Some(drill) = labels.get(DRILL_LABEL) {
                RunDir::remove(&RunDir::path_for(drill));
            }
        }
        names.push(name.unwrap_or_else(|| summary.id.unwrap_or_default()));
    }
    Ok(names)
}

/// Removes every container labelled with `drill_id`, and the drill's socket folder; returns how
/// many containers there were.
pub(crate) async fn remove_labelled(docker: &Docker, drill_id: &str) -> Result<usize, TargetError> {
    let removed = remove_where(docker, format!("{DRILL_LABEL}={drill_id}"), |_| true).await?.len();
    RunDir::remove(&RunDir::path_for(drill_id));
    Ok(removed)
}

/// Removes the containers matching the `label` filter (`key` or `key=value`) whose labels
/// `doomed` picks; returns the labels of those it removed.
async fn remove_where(
    docker: &Docker,
    label: String,
    doomed: impl Fn(&HashMap<String, String>) -> bool,
) -> Result<Vec<HashMap<String, String>>, TargetError> {
    let filters = HashMap::from([("label".to_owned(), vec![label])]);
    let list = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: Some(filters), ..Default::default() }))
        .await
        .map_err(|source| TargetError::Docker { action: "list pgdrill's containers", source })?;
    let mut removed = Vec::new();
    for summary in list {
        let labels = summary.labels.unwrap_or_default();
        if let (true, Some(id)) = (doomed(&labels), summary.id) {
            let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            match docker.remove_container(&id, Some(options)).await {
                Ok(()) => removed.push(labels),
                // Already gone, or being removed by testcontainers' own drop.
                Err(DockerError::DockerResponseServerError { status_code: 404 | 409, .. }) => {}
                Err(source) => return Err(TargetError::Docker { action: "remove a pgdrill container", source }),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::{remote_engine, split_image};

    #[test]
    fn only_an_engine_on_this_machine_can_share_the_socket_folder() {
        for local in [
            None,
            Some("unix:///var/run/docker.sock"),
            Some("tcp://127.0.0.1:2375"),
            Some("tcp://localhost:2376"),
            Some("tcp://[::1]:2375"),
        ] {
            assert_eq!(remote_engine(local), None, "{local:?}");
        }
        assert_eq!(remote_engine(Some("tcp://10.0.0.5:2376")).as_deref(), Some("tcp://10.0.0.5:2376"));
        assert_eq!(
            remote_engine(Some("ssh://deploy:s3cret@build-host/")).as_deref(),
            Some("ssh://build-host"),
            "credentials are never shown"
        );
    }

    #[test]
    fn image_names() {
        assert_eq!(split_image("pgdrill/postgres:17-r1"), ("pgdrill/postgres".into(), "17-r1".into()));
        assert_eq!(split_image("registry:5000/pg:17"), ("registry:5000/pg".into(), "17".into()));
        assert_eq!(split_image("registry:5000/pg"), ("registry:5000/pg".into(), "latest".into()));
    }
}
