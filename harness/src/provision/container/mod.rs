//! A throwaway PostgreSQL container, started with testcontainers, that is a sandbox for the SQL
//! of an untrusted backup: no network (pgdrill reaches the server through its Unix socket, in a
//! private folder shared with the container), never root, no capabilities, a read-only root with
//! no shell, the data on a volume of its own, memory and processes limited. It starts from the
//! image's initialised cluster, is ready when a real connection succeeds, proves its isolation
//! from inside, and is labelled with the drill's id so that teardown finds it even if a start
//! was interrupted.

use crate::outcome::{Isolation, Observed, TargetInfo};
use crate::tree::Ids;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use testcontainers::bollard::Docker;
use testcontainers::core::{AccessMode, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::docker::{DRILL_LABEL, OWNER_LABEL, docker, remote_engine_now, server_user, split_image};
use super::error::TemplateError;
use super::owner::owner;

use super::ready::{self, NotReady};
use super::spec::ContainerSpec;
use super::tools::{self, Tools};
use super::tuning::{self, Limits};
use super::{Programs, ProvisionContext, Target, TargetError, image};

mod keep;
mod layer;
mod offline;
mod relay;
mod rundir;
mod sweep;

pub(crate) use layer::Layer;
pub(crate) use offline::Offline;
pub(crate) use offline::container_log;
use rundir::RunDir;
use sweep::remove_orphans;
pub(crate) use sweep::{orphans, remove_labelled};

const SUPERUSER: &str = "postgres";

/// Where the server puts its socket: a private folder of this machine, mounted here.
const SOCKET_DIR: &str = "/var/run/postgresql";
/// Folders of programs hidden under empty read-only mounts: with no shell and no programs but
/// PostgreSQL's own (which live in /usr/lib/postgresql), `COPY ... PROGRAM`, `archive_command`
/// and the like have nothing to start.
const NO_PROGRAMS: [&str; 4] = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];

/// A running target container; removed by [`Running::remove`].
pub(crate) struct Running {
    container: Option<ContainerAsync<GenericImage>>,
    docker: Docker,
    drill_id: String,
    run_dir: RunDir,
    startup_timeout: Duration,
}

/// Starts the container and waits until PostgreSQL accepts a connection.
pub(crate) async fn start(spec: &ContainerSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Running), TargetError> {
    let (docker, image_name, image) = ready_image(spec, ctx).await?;
    clear_the_way(&docker, ctx).await?;
    let (Some(user), Some(pgdata)) = (server_user(image.owner), image.pgdata.clone()) else {
        let labels = "`org.pgdrill.pgdata`, `org.pgdrill.uid` and `org.pgdrill.gid`";
        return Err(TargetError::Template { image: image_name, source: TemplateError::Unlabelled { labels } });
    };
    let limits = Limits::of(spec.memory, spec.processes, spec.share.as_ref());
    // The data lives in a private folder under TMPDIR: its filesystem decides the default.
    let disk = crate::disk::limit_for(spec.disk.as_ref(), &std::env::temp_dir(), spec.share.as_ref())?;
    physical_fits(ctx, &disk).await?;
    let tuning = tuning_for(spec, ctx, &limits, &disk);
    let relay = image.labels.get(relay::LABEL).map(|program| program.trim().to_owned());
    let (mount, group) = backup_mount(ctx, user)?;
    let (run_dir, layer) = private_folder(&docker, &image_name, &image, ctx, user).await?;
    let volatile = layer::volatile(ctx.restarts);
    let volume = match data_volume(&docker, layer.as_ref(), &run_dir, ctx.drill_id, volatile).await {
        Ok(volume) => volume,
        Err(source) => {
            layer::remove(&docker, ctx.drill_id, &run_dir.outer).await;
            RunDir::remove(&run_dir.outer).await;
            return Err(TargetError::NoexecData { source });
        }
    };
    let sandbox = Sandbox {
        user,
        limits,
        group,
        shm_size: tuning.shm_size_bytes,
        data: Mount::volume_mount(volume.clone(), pgdata.clone()),
        backup: mount.as_ref().map(|(_, host, inside)| (host.as_path(), inside.as_str())),
    };
    let request = request(spec, ctx, &image_name, server_args(&tuning, relay.as_deref()), sandbox, &run_dir);
    (ctx.progress)(&format!("starting {image_name}"));
    let container = match request.start().await {
        Ok(container) => container,
        Err(source) => {
            layer::remove(&docker, ctx.drill_id, &run_dir.outer).await;
            RunDir::remove(&run_dir.outer).await;
            return Err(TargetError::StartContainer { image: image_name, source });
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
    match proven_ready(&mut running, spec, relay.as_deref(), &socket, ctx).await {
        Ok((observed, pid)) => {
            let made = Made {
                image_name: &image_name,
                image: &image,
                socket: &socket,
                tuning: &tuning,
                limits: &limits,
                observed,
                disk,
                layer: layer.as_ref(),
                volume,
                live: Path::new("/proc").join(pid.to_string()).join("root").join(pgdata.trim_start_matches('/')),
                relay,
            };
            let target = target_of(spec, ctx, made, &running, tools);
            Ok((target, running))
        }
        Err(err) => {
            running.remove().await.ok();
            Err(err)
        }
    }
}

/// The Docker engine, reached, and the image the target runs (built first if it is the
/// project's and missing): its name and what pgdrill reads from it.
async fn ready_image(
    spec: &ContainerSpec,
    ctx: &ProvisionContext<'_>,
) -> Result<(Docker, String, image::ImageInfo), TargetError> {
    if let Some(host) = remote_engine_now() {
        return Err(TargetError::RemoteEngine { host });
    }
    let docker = docker()?;
    docker.ping().await.map_err(|source| TargetError::Docker { action: "reach the Docker engine", source })?;
    let image_name = image::choose(spec, ctx.physical.map(|p| p.major).or(ctx.backup_major), ctx.physical.is_some())?;
    let image = image::ensure(&docker, &image_name, || {
        (ctx.progress)(&format!("building image {image_name} from Debian packages (first run only)"))
    })
    .await?;
    Ok((docker, image_name, image))
}

/// How the container is sandboxed: who its server runs as, its limits, the group it is given
/// to read the backup, and what it mounts.
struct Sandbox<'a> {
    user: Ids,
    limits: Limits,
    group: Option<u32>,
    shm_size: u64,
    /// The data directory's mount.
    data: Mount,
    /// The backup on this machine, and where the container sees it (read-only).
    backup: Option<(&'a Path, &'a str)>,
}

/// The container to start: image `image` running the server with `cmd`, sandboxed, labelled
/// with the drill's id and this process as its owner.
fn request(
    spec: &ContainerSpec,
    ctx: &ProvisionContext<'_>,
    image: &str,
    cmd: Vec<String>,
    sandbox: Sandbox<'_>,
    run_dir: &RunDir,
) -> testcontainers::ContainerRequest<GenericImage> {
    let (name, tag) = split_image(image);
    let short_id: String = ctx.drill_id.chars().take(8).collect();
    let Sandbox { user, limits, group, shm_size, data, backup } = sandbox;
    let mut request = GenericImage::new(name, tag)
        .with_wait_for(WaitFor::Nothing)
        .with_cmd(cmd)
        .with_shm_size(shm_size)
        .with_user(user.to_string())
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
        .with_mount(data)
        .with_host_config_modifier(move |host| sandbox_host(host, limits, group));
    if let Some((host, inside)) = backup {
        request = request
            .with_mount(Mount::bind_mount(host.display().to_string(), inside).with_access_mode(AccessMode::ReadOnly));
    }
    request
}

/// The data directory's volume, mounted `noexec`: a clone's overlay, else one over the private
/// folder's `data/`.
async fn data_volume(
    docker: &Docker,
    layer: Option<&Layer>,
    run_dir: &RunDir,
    drill_id: &str,
    volatile: bool,
) -> Result<String, super::OverlayError> {
    match layer.and_then(Layer::volume) {
        Some(volume) => Ok(volume.to_owned()),
        None => layer::noexec_data(docker, run_dir, drill_id, volatile).await,
    }
}

/// The server's settings: the throwaway ones, then a recovering standby's (the scenario's own
/// already yielded to them), in the one list the reports show.
fn tuning_for(
    spec: &ContainerSpec,
    ctx: &ProvisionContext<'_>,
    limits: &Limits,
    disk: &crate::disk::DiskLimit,
) -> tuning::Tuning {
    let mut tuning = tuning::throwaway(limits.resources(), &tuning::disk_bounded(&spec.settings, disk.bytes));
    for (key, value) in ctx.physical.map(|p| p.settings.as_slice()).unwrap_or_default() {
        tuning.settings.insert(key.clone(), value.clone());
    }
    tuning
}

/// The container's host configuration over testcontainers' defaults: no network at all (not
/// even Docker's bridge: pgdrill talks to the socket), its limits, no programs, and a capped log.
fn sandbox_host(host: &mut testcontainers::bollard::models::HostConfig, limits: Limits, group: Option<u32>) {
    host.network_mode = Some("none".into());
    host.publish_all_ports = Some(false);
    host.port_bindings = None;
    host.memory = Some(limits.memory as i64);
    host.memory_swap = Some(limits.memory as i64);
    host.pids_limit = Some(limits.processes as i64);
    host.tmpfs = Some(NO_PROGRAMS.iter().map(|p| (p.to_string(), "ro,size=4k".to_owned())).collect());
    host.group_add = group.map(|g| vec![g.to_string()]);
    // The data directory's volume is never filled from the image (it holds pgdrill's own data):
    // without `NoCopy` the engine mounts it once more at creation to see whether it is empty,
    // which a volatile overlay does not allow (`layer::options`).
    for mount in host.mounts.iter_mut().flatten() {
        if mount.typ == Some(testcontainers::bollard::models::MountType::VOLUME) {
            let options = mount.volume_options.get_or_insert_with(Default::default);
            options.no_copy = Some(true);
        }
    }
    // The server's log goes to Docker's: capped, so that a backup that makes the server log
    // without end cannot fill this machine's disk through it.
    host.log_config = Some(testcontainers::bollard::models::HostConfigLogConfig {
        typ: Some("json-file".into()),
        config: Some(HashMap::from([("max-size".into(), "10m".into()), ("max-file".into(), "2".into())])),
    });
}

/// Waits until the server answers on its socket, starts the image's relay of the application's
/// logins, seals the socket folder, and proves the container a sandbox from inside: what it saw
/// there, and its server's process on this machine.
async fn proven_ready(
    running: &mut Running,
    spec: &ContainerSpec,
    relay: Option<&str>,
    socket: &Path,
    ctx: &ProvisionContext<'_>,
) -> Result<(Observed, i64), TargetError> {
    wait_ready(running, spec, socket, ctx).await?;
    if let Some(program) = relay {
        let id = running.container.as_ref().ok_or(TargetError::Gone)?.id().to_owned();
        relay::start(&running.docker, &id, program, socket).await?;
    }
    running.run_dir.seal().map_err(TargetError::io("cannot make the socket folder read-only"))?;
    let observed = super::sandbox::observe(&socket_options(socket)).await?;
    observed.judge()?;
    let id = running.container.as_ref().ok_or(TargetError::Gone)?.id().to_owned();
    let inspected = running.docker.inspect_container(&id, None).await;
    let inspected =
        inspected.map_err(|source| TargetError::Docker { action: "inspect the target container", source })?;
    Ok((observed, inspected.state.and_then(|s| s.pid).unwrap_or_default()))
}

/// What a started container gives [`target_of`].
struct Made<'a> {
    image_name: &'a str,
    image: &'a image::ImageInfo,
    socket: &'a Path,
    tuning: &'a tuning::Tuning,
    limits: &'a Limits,
    /// What the server saw from inside its sandbox.
    observed: Observed,
    disk: crate::disk::DiskLimit,
    /// How a clone's data was made.
    layer: Option<&'a Layer>,
    /// The data directory's volume.
    volume: String,
    /// The data directory as the server sees it, from this machine.
    live: PathBuf,
    /// The image's relay of the application's logins, started.
    relay: Option<String>,
}

/// The target the drill gets: its server through the socket as the superuser, what the
/// reports say of it, and what running a tool on its stopped server takes.
fn target_of(
    spec: &ContainerSpec,
    ctx: &ProvisionContext<'_>,
    made: Made<'_>,
    running: &Running,
    tools: Tools,
) -> Target {
    let container = running.container.as_ref().map(|c| c.id().to_owned()).unwrap_or_default();
    let mut isolation = isolation(made.observed, made.tuning, made.limits, ctx.backup.is_some());
    if let Some(program) = &made.relay {
        relay::describe(&mut isolation, program);
    }
    isolation
        .limits
        .push_str(&format!("; disk {} for its data (`[target] disk`), its log capped at 20 MiB", made.disk.shown));
    Target {
        host: made.socket.display().to_string(),
        port: 5432,
        user: SUPERUSER.into(),
        password: None,
        maintenance_db: "postgres".into(),
        ssl_mode: PgSslMode::Disable,
        info: TargetInfo {
            kind: "container".into(),
            image: Some(made.image_name.to_owned()),
            image_packages: made.image.labels.get("org.pgdrill.packages").map(|p| p.trim().to_owned()),
            image_extensions: made.image.labels.get("org.pgdrill.extensions").map(|e| e.trim().to_owned()),
            container: Some(container.chars().take(12).collect()),
            address: format!("socket in {}", made.socket.display()),
            server_version: String::new(),
            server_version_num: 0,
            settings: made.tuning.settings.clone(),
            isolation: Some(isolation),
            session: Vec::new(),
            data_layer: made.layer.map(Layer::describe),
        },
        tools,
        database_suffix: None,
        created: Default::default(),
        programs: Programs::bridged(ctx.drill_id),
        offline: Some(super::Offline::Container(Offline {
            container,
            run_dir: running.run_dir.outer.clone(),
            // The tools of the cluster's own major: the very image the target runs (a dump of
            // an older major restores on a newer image, whose cluster only its tools read).
            spec: ContainerSpec { image: Some(made.image_name.to_owned()), ..spec.clone() },
            drill_id: ctx.drill_id.to_owned(),
            volume: made.volume.clone(),
            clone: made.layer.and_then(Layer::volume).is_some(),
            relay: made.relay.clone(),
        })),
        disk: Some(super::DataDisk { dir: running.run_dir.outer.clone(), limit: made.disk, live: made.live }),
        pins: Default::default(),
        logins: Default::default(),
        ssl_root_cert: None,
        tcp_relay: made.relay.as_ref().map(|_| relay::PORT),
    }
}

/// A physical backup's data directory must fit in the disk the target may take.
async fn physical_fits(ctx: &ProvisionContext<'_>, disk: &crate::disk::DiskLimit) -> Result<(), TargetError> {
    let Some(physical) = ctx.physical else { return Ok(()) };
    let data = physical.data.clone();
    let used = tokio::task::spawn_blocking(move || crate::disk::usage(&data)).await.unwrap_or_default();
    if used > disk.bytes {
        return Err(crate::disk::DiskError::WontFit {
            limit: disk.shown.clone(),
            what: format!("its data directory takes {}", crate::units::human_size(used)),
        }
        .into());
    }
    Ok(())
}

/// Removes what drills killed outright left on this engine, and refuses a rootless engine.
async fn clear_the_way(docker: &Docker, ctx: &ProvisionContext<'_>) -> Result<(), TargetError> {
    let orphans = remove_orphans(docker).await?;
    super::owner::remove_orphan_folders().await;
    if orphans > 0 {
        (ctx.progress)(&format!("removed {orphans} container(s) left by drills that were killed"));
        tracing::warn!("removed {orphans} container(s) left by pgdrill processes that no longer run");
    }
    let info = docker.info().await.ok();
    if info.and_then(|i| i.security_options).unwrap_or_default().iter().any(|o| o.contains("rootless")) {
        return Err(TargetError::Rootless);
    }
    Ok(())
}

/// The server's arguments: the throwaway settings, then TCP on the container's own loopback
/// only where the image carries the relay (none otherwise) and the socket where the mount is
/// (these win over the scenario's settings).
fn server_args(tuning: &tuning::Tuning, relay: Option<&str>) -> Vec<String> {
    let mut cmd = Vec::new();
    for (key, value) in &tuning.settings {
        cmd.push("-c".to_owned());
        cmd.push(format!("{key}={value}"));
    }
    cmd.push("-c".to_owned());
    cmd.push(format!("listen_addresses={}", relay::listen_addresses(relay)));
    cmd.push("-c".to_owned());
    cmd.push(format!("unix_socket_directories={SOCKET_DIR}"));
    cmd
}

/// The backup, read-only, for the target's own pg_restore: (as given, on this machine, inside),
/// and the group the server needs to read it.
#[allow(clippy::type_complexity)]
fn backup_mount(
    ctx: &ProvisionContext<'_>,
    user: Ids,
) -> Result<(Option<(std::path::PathBuf, std::path::PathBuf, String)>, Option<u32>), TargetError> {
    let Some(path) = ctx.backup else { return Ok((None, None)) };
    let host = std::fs::canonicalize(path)
        .map_err(TargetError::io(format!("cannot resolve `{}` to mount it", path.display())))?;
    // The server reads a dump as its own user, or its group: it has no capability to give
    // (a physical backup is read by a toolbox, which has).
    let group = match super::access::of(&host, Some(user.uid))? {
        super::access::Access::AsItIs => None,
        super::access::Access::Group(g) => Some(g),
        // pgdrill reads an archive file the server may not, and feeds it to pg_restore's stdin.
        super::access::Access::ReadAll if host.is_file() => return Ok((None, None)),
        super::access::Access::ReadAll => return Err(unreadable_dump(&host)),
    };
    let name = host.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backup".into());
    Ok((Some((path.to_owned(), host, format!("{}/{name}", tools::CONTAINER_BACKUP_DIR))), group))
}

/// The first file of the dump at `host` the server's user cannot read.
fn unreadable_dump(host: &Path) -> TargetError {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(host).ok();
    TargetError::Unreadable {
        path: host.to_owned(),
        mode: meta.as_ref().map_or(0, |m| m.mode() & 0o7777),
        uid: meta.as_ref().map_or(0, |m| m.uid()),
        gid: meta.as_ref().map_or(0, |m| m.gid()),
    }
}

/// The target's private folder, off the runtime: a copy of the image's cluster template, the
/// restored data directory of a physical backup moved in, or a clone of a snapshot (and how it
/// was made).
async fn private_folder(
    docker: &Docker,
    image_name: &str,
    image: &image::ImageInfo,
    ctx: &ProvisionContext<'_>,
    user: Ids,
) -> Result<(RunDir, Option<Layer>), TargetError> {
    let drill_id = ctx.drill_id.to_owned();
    let (made, what) = match (ctx.physical, ctx.clone) {
        (_, Some(from)) => {
            let dir = RunDir::empty(&drill_id).map_err(TargetError::io("cannot create the target's private folder"))?;
            return match layer::make(docker, from, &dir, ctx.drill_id, user).await {
                Ok(layer) => Ok((dir, Some(layer))),
                Err(e) => {
                    layer::remove(docker, ctx.drill_id, &dir.outer).await;
                    RunDir::remove(&dir.outer).await;
                    Err(e)
                }
            };
        }
        (None, None) => {
            let template = image::cluster_template(docker, image_name, image).await?;
            let made = tokio::task::spawn_blocking(move || RunDir::create(&drill_id, &template, user)).await;
            (made, "cannot create the target's private folder")
        }
        (Some(physical), None) => {
            let physical = physical.clone();
            let made = tokio::task::spawn_blocking(move || RunDir::create_physical(&drill_id, &physical, user)).await;
            (made, "cannot move the restored data directory in")
        }
    };
    let dir = made?.map_err(TargetError::io(what))?;
    Ok((dir, None))
}

/// What the reports say of the container's isolation.
fn isolation(observed: Observed, tuning: &tuning::Tuning, limits: &Limits, backup: bool) -> Isolation {
    Isolation {
        contained: true,
        network: "none: the container has no network (only its own loopback) and the server listens on no TCP address; pgdrill reaches it through its Unix socket, in a private folder of this machine shared with the container and made read-only once the socket exists".into(),
        user: format!("uid {}, never root", observed.uid),
        capabilities: "none: all dropped, no-new-privileges".into(),
        filesystem: format!(
            "read-only root; writable only: the data directory and the socket folder, both in a private folder of this machine made for the drill (0700) and removed with it, and /dev/shm ({} MiB); the data directory is an overlay mount over that folder, mounted noexec (nosuid, nodev) as /dev/shm is, so no library a backup writes can be loaded, and the socket folder is read-only once the socket exists; nothing else of this machine mounted{}",
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
    let exited = || async { !container.is_running().await.unwrap_or(false) };
    let Err(mut why) = ready::until_ready(&socket_options(socket), spec.startup_timeout, ctx.redactor, exited).await
    else {
        return Ok(());
    };
    if let NotReady::TimedOut { last_error } = &mut why
        && !socket.join(".s.PGSQL.5432").exists()
    {
        *last_error = format!(
            "no socket appeared in `{}`: is the Docker engine on another machine or in a VM (Docker Desktop)? it must share that folder with the container (hint: use `kind = \"local\"` or `kind = \"server\"` there)",
            socket.display()
        );
    }
    Err(why.into_error(spec.startup_timeout, logs_tail(container, ctx).await))
}

async fn logs_tail(container: &ContainerAsync<GenericImage>, ctx: &ProvisionContext<'_>) -> String {
    let mut text = String::from_utf8_lossy(&container.stderr_to_vec().await.unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(&container.stdout_to_vec().await.unwrap_or_default()));
    let lines: Vec<&str> = text.lines().collect();
    ctx.redactor.redact(&lines[lines.len().saturating_sub(15)..].join("\n"))
}

/// The data volumes of drills on this machine whose process is gone, removed unless `dry_run`.
pub(crate) async fn orphan_volumes(docker: &Docker, dry_run: bool) -> Vec<String> {
    layer::orphan_volumes(docker, dry_run).await
}

/// The data volumes container `id` mounts (a kept target's, removed with it by
/// [`remove_volumes`] once the container is gone).
pub(crate) async fn data_volumes_of(docker: &Docker, id: &str) -> Vec<String> {
    let mounts = docker.inspect_container(id, None).await.ok().and_then(|c| c.mounts).unwrap_or_default();
    mounts.into_iter().filter_map(|m| m.name).filter(|name| layer::drill_of(name).is_some()).collect()
}

/// Removes data volumes (`data_volumes_of`) no container uses any more, with their overlays'
/// work folders.
pub(crate) async fn remove_volumes(docker: &Docker, volumes: &[String]) {
    for drill in volumes.iter().filter_map(|v| layer::drill_of(v)) {
        layer::remove(docker, drill, &RunDir::path_for(drill)).await;
    }
}

impl Running {
    /// Removes the container, then any other container labelled with this drill's id (one
    /// created by a start that was interrupted before it returned).
    pub(crate) async fn remove(&mut self) -> Result<usize, TargetError> {
        let mut removed = 0;
        if self.container.is_some() {
            layer::discard_writes(&self.run_dir).await;
            tracing::debug!("the target's data discarded");
        }
        if let Some(container) = self.container.take() {
            container.rm().await.map_err(|source| TargetError::RemoveContainer { source })?;
            tracing::debug!("the target's container removed");
            removed += 1;
        }
        removed += remove_labelled(&self.docker, &self.drill_id).await?;
        tracing::debug!("no other container of the drill's");
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
