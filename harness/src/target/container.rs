//! A throwaway PostgreSQL container, started with testcontainers: bound to loopback, with a
//! fresh random password and throwaway tuning, ready when a real connection succeeds, and
//! labelled with the drill's id so that teardown finds it even if a start was interrupted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use testcontainers::bollard::Docker;
use testcontainers::bollard::errors::Error as DockerError;
use testcontainers::bollard::models::PortBinding;
use testcontainers::bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use testcontainers::core::{AccessMode, IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::tools::{self, Tools};
use super::tuning::{self, Resources};
use super::{ProvisionContext, Target, TargetError, TargetInfo, image};
use crate::scenario::ContainerSpec;
use crate::secret::Secret;

/// The label every pgdrill container carries: the id of the drill that owns it.
pub const DRILL_LABEL: &str = "org.pgdrill.drill";

/// Who started a container: `host/pid/start time` (a pid alone may be reused). Containers whose
/// owner on this machine is gone (killed, or interrupted twice) are removed by the next drill.
pub const OWNER_LABEL: &str = "org.pgdrill.owner";

const PORT: u16 = 5432;

/// This process as an owner.
pub fn owner() -> String {
    owner_of(std::process::id()).unwrap_or_default()
}

fn owner_of(pid: u32) -> Option<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?.trim().to_owned();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis start at field 3 (state); 22 is starttime.
    let started = stat.rsplit_once(") ")?.1.split_whitespace().nth(19)?.to_owned();
    Some(format!("{host}/{pid}/{started}"))
}

/// Whether `owner` names a process of this machine that no longer runs.
fn orphaned(owner: &str) -> bool {
    let mine = self::owner();
    let (Some((host, _)), Some((my_host, _))) = (owner.split_once('/'), mine.split_once('/')) else { return false };
    let pid = owner.split('/').nth(1).and_then(|p| p.parse().ok());
    host == my_host && pid.is_some_and(|pid| owner_of(pid).as_deref() != Some(owner))
}

/// Removes the containers (targets and apps) of drills on this machine whose process is gone.
pub async fn remove_orphans(docker: &Docker) -> Result<usize, TargetError> {
    remove_where(docker, OWNER_LABEL.to_owned(), |labels| {
        orphaned(labels.and_then(|l| l.get(OWNER_LABEL)).map(String::as_str).unwrap_or_default())
    })
    .await
}
const SUPERUSER: &str = "postgres";

/// A running target container; removed by [`Running::remove`].
pub struct Running {
    container: Option<ContainerAsync<GenericImage>>,
    docker: Docker,
    drill_id: String,
}

pub fn docker() -> Result<Docker, TargetError> {
    Docker::connect_with_defaults()
        .map_err(|source| TargetError::Docker { action: "connect to the Docker engine", source })
}

/// Starts the container and waits until PostgreSQL accepts a connection.
pub async fn start(spec: &ContainerSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Running), TargetError> {
    let docker = docker()?;
    docker.ping().await.map_err(|source| TargetError::Docker { action: "reach the Docker engine", source })?;
    let labels = image::ensure(&docker, &spec.image, || {
        (ctx.progress)(&format!("building image {} from Debian packages (first run only)", spec.image))
    })
    .await?;

    let orphans = remove_orphans(&docker).await?;
    if orphans > 0 {
        (ctx.progress)(&format!("removed {orphans} container(s) left by drills that were killed"));
        tracing::warn!("removed {orphans} container(s) left by pgdrill processes that no longer run");
    }
    let tuning = tuning::throwaway(Resources::detect(), &spec.settings);
    let password = Secret::random_password();
    ctx.redactor.register(&password);

    let (name, tag) = split_image(&spec.image);
    let mut cmd = vec!["postgres".to_owned()];
    for (key, value) in &tuning.settings {
        cmd.push("-c".to_owned());
        cmd.push(format!("{key}={value}"));
    }
    let short_id: String = ctx.drill_id.chars().take(8).collect();
    // The backup, read-only, for the target's own pg_restore.
    let mount = match ctx.backup {
        Some(path) => {
            let host = std::fs::canonicalize(path).map_err(|e| TargetError::Tool {
                message: format!("cannot resolve `{}` to mount it: {e}", path.display()),
            })?;
            let name = host.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backup".into());
            Some((path.to_owned(), host, format!("{}/{name}", tools::CONTAINER_BACKUP_DIR)))
        }
        None => None,
    };
    let mut request = GenericImage::new(name, tag)
        .with_exposed_port(PORT.tcp())
        .with_wait_for(WaitFor::Nothing)
        .with_env_var("POSTGRES_PASSWORD", password.expose())
        .with_cmd(cmd)
        .with_shm_size(tuning.shm_size_bytes)
        .with_label(DRILL_LABEL, ctx.drill_id)
        .with_label(OWNER_LABEL, owner())
        .with_label("org.pgdrill.scenario", ctx.scenario)
        .with_container_name(format!("pgdrill-{}-{short_id}", ctx.scenario))
        .with_startup_timeout(spec.startup_timeout)
        .with_host_config_modifier(|host| {
            // Loopback only: a drill database is never reachable from the network.
            host.publish_all_ports = Some(false);
            host.port_bindings = Some(HashMap::from([(
                format!("{PORT}/tcp"),
                Some(vec![PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) }]),
            )]));
        });

    if let Some((_, host, inside)) = &mount {
        request = request.with_mount(
            Mount::bind_mount(host.display().to_string(), inside.clone()).with_access_mode(AccessMode::ReadOnly),
        );
    }
    (ctx.progress)(&format!("starting {}", spec.image));
    let container = request
        .start()
        .await
        .map_err(|e| TargetError::Start { image: spec.image.clone(), message: ctx.redactor.redact(&e.to_string()) })?;
    let tools = Tools::Container {
        docker: docker.clone(),
        container: container.id().to_owned(),
        mount: mount.map(|(given, _, inside)| (given, inside)),
    };
    let mut running = Running { container: Some(container), docker, drill_id: ctx.drill_id.to_owned() };
    match wait_ready(&mut running, spec, &password, ctx).await {
        Ok(port) => {
            let container = running.container.as_ref().map(|c| c.id().to_owned()).unwrap_or_default();
            let target = Target {
                host: "127.0.0.1".into(),
                port,
                user: SUPERUSER.into(),
                password,
                maintenance_db: "postgres".into(),
                ssl_mode: PgSslMode::Disable,
                info: TargetInfo {
                    kind: "container".into(),
                    image: Some(spec.image.clone()),
                    image_packages: labels.get("org.pgdrill.packages").map(|p| p.trim().to_owned()),
                    container: Some(container.chars().take(12).collect()),
                    address: format!("127.0.0.1:{port}"),
                    server_version: String::new(),
                    server_version_num: 0,
                    settings: tuning.settings.clone(),
                },
                tools,
                database_suffix: None,
                created: Default::default(),
            };
            Ok((target, running))
        }
        Err(err) => {
            running.remove().await.ok();
            Err(err)
        }
    }
}

/// Polls with real connections until the server answers, the container exits, or time is up.
async fn wait_ready(
    running: &mut Running,
    spec: &ContainerSpec,
    password: &Secret,
    ctx: &ProvisionContext<'_>,
) -> Result<u16, TargetError> {
    let container = running.container.as_ref().ok_or(TargetError::Gone)?;
    let port = container
        .get_host_port_ipv4(PORT)
        .await
        .map_err(|e| TargetError::Start { image: spec.image.clone(), message: e.to_string() })?;
    let options = PgConnectOptions::new_without_pgpass()
        .host("127.0.0.1")
        .port(port)
        .username(SUPERUSER)
        .password(password.expose())
        .database("postgres")
        .ssl_mode(PgSslMode::Disable);
    let started = Instant::now();
    let mut last_error;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => {
                conn.close().await.ok();
                return Ok(port);
            }
            Ok(Err(e)) => last_error = ctx.redactor.redact(&e.to_string()),
            Err(_) => last_error = "connection attempt timed out".into(),
        }
        if !container.is_running().await.unwrap_or(false) {
            return Err(TargetError::Exited { logs: logs_tail(container, ctx).await });
        }
        if started.elapsed() >= spec.startup_timeout {
            return Err(TargetError::NotReady {
                timeout: spec.startup_timeout,
                last_error,
                logs: logs_tail(container, ctx).await,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn logs_tail(container: &ContainerAsync<GenericImage>, ctx: &ProvisionContext<'_>) -> String {
    let mut text = String::from_utf8_lossy(&container.stderr_to_vec().await.unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(&container.stdout_to_vec().await.unwrap_or_default()));
    let lines: Vec<&str> = text.lines().collect();
    ctx.redactor.redact(&lines[lines.len().saturating_sub(15)..].join("\n"))
}

fn split_image(image: &str) -> (String, String) {
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

/// Removes every container labelled with `drill_id`; returns how many there were.
pub async fn remove_labelled(docker: &Docker, drill_id: &str) -> Result<usize, TargetError> {
    remove_where(docker, format!("{DRILL_LABEL}={drill_id}"), |_| true).await
}

/// Removes the containers matching the `label` filter (`key` or `key=value`) whose labels
/// `doomed` picks; returns how many.
async fn remove_where(
    docker: &Docker,
    label: String,
    doomed: impl Fn(Option<&HashMap<String, String>>) -> bool,
) -> Result<usize, TargetError> {
    let filters = HashMap::from([("label".to_owned(), vec![label])]);
    let list = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: Some(filters), ..Default::default() }))
        .await
        .map_err(|source| TargetError::Docker { action: "list pgdrill's containers", source })?;
    let mut removed = 0;
    for summary in list.into_iter().filter(|s| doomed(s.labels.as_ref())) {
        if let Some(id) = summary.id {
            let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            match docker.remove_container(&id, Some(options)).await {
                Ok(()) => removed += 1,
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
    use super::split_image;

    #[test]
    fn image_names() {
        assert_eq!(split_image("pgdrill/postgres:17-r1"), ("pgdrill/postgres".into(), "17-r1".into()));
        assert_eq!(split_image("registry:5000/pg:17"), ("registry:5000/pg".into(), "17".into()));
        assert_eq!(split_image("registry:5000/pg"), ("registry:5000/pg".into(), "latest".into()));
    }
}
