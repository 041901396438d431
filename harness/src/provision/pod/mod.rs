//! The pod target: the server runs in a container beside pgdrill's (a Kubernetes pod's second
//! container, or two containers started together), which is the sandbox, and the two share only
//! a folder (the agent's socket and each server's socket folder) and the data volume. pgdrill
//! makes the cluster on the volume with its own image's binaries, asks the agent in the other
//! container ([`agent`], [`serve`]) to start PostgreSQL over it, reaches it through its Unix
//! socket as it does a container target's, and runs pg_restore itself, with the same image's
//! binaries. A physical backup is staged and verified in pgdrill's container (its toolbox,
//! [`super::toolbox::On::Pod`]) and its data directory copied onto the volume for the server.
//!
//! The sandbox is the server container's: non-root, no capabilities, no privilege escalation,
//! seccomp, a read-only root whose program folders are empty (no shell), its limits, and the
//! pod's NetworkPolicy (`pgdrill kube` writes one that denies every ingress and all egress but
//! an allow-list). It is proven from inside as a container target's is, but for the network:
//! containers of a pod share its network, and a policy is enforced outside the pod, so the
//! reports say what the server saw (under Docker, `--network none`: loopback alone) and what the
//! policy must deny.

pub(crate) mod agent;
pub(crate) mod serve;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::local::last_lines;
use super::ready;
use super::sandbox::observe;
use super::spec::PodSpec;
use super::tools::{ToolOutput, Tools, find_bin_dir};
use super::tuning::{self, Limits};
use super::{Created, Programs, ProvisionContext, Target, TargetError};
use crate::outcome::{Isolation, Observed, TargetInfo};
use crate::secret::Redactor;
use crate::tree::Ids;
use agent::{Agent, Request, Response};

const SUPERUSER: &str = "postgres";
const PORT: u16 = 5432;
/// The image's initialised cluster (the image contract, `ci/image/build`): copied, not made.
const TEMPLATE: &str = "/var/lib/pgdrill/data";

/// How the agent starts one drill's server, kept to start it again after a tool.
#[derive(Debug, Clone)]
struct Launch {
    agent: Agent,
    /// The server's name at the agent: the drill's id.
    name: String,
    args: Vec<String>,
    /// The drill's folder on the data volume: `data/` and `postgres.log`.
    root: PathBuf,
    socket: PathBuf,
    startup_timeout: Duration,
    /// Bytes of data each of the server's processes may take.
    data_limit: Option<u64>,
}

impl Launch {
    fn log(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.socket)
            .port(PORT)
            .username(SUPERUSER)
            .database("postgres")
            .ssl_mode(PgSslMode::Disable)
    }

    fn agent_error(&self) -> impl FnOnce(agent::AgentError) -> TargetError + '_ {
        |source| TargetError::Agent { dir: self.socket.clone(), source }
    }

    /// Asks the agent to start the server, and waits until it answers on its socket.
    async fn start(&self, redactor: &Redactor) -> Result<(), TargetError> {
        let (name, args, log) = (self.name.clone(), self.args.clone(), self.log());
        let request = Request::Start { name, args, log, data_limit: self.data_limit };
        self.agent.ask(&request).await.map_err(self.agent_error())?;
        let exited = || async {
            let status = self.agent.ask(&Request::Status { name: self.name.clone() }).await;
            matches!(status, Ok(Response::Status { running: false, .. }))
        };
        let waited = ready::until_ready(&self.options(), self.startup_timeout, redactor, exited).await;
        waited.map_err(|why| why.into_error(self.startup_timeout, redactor.redact(&last_lines(&self.log(), 15))))
    }

    /// Asks the agent to stop the server: cleanly (a fast shutdown) or at once.
    async fn stop(&self, clean: bool) -> Result<(), TargetError> {
        let request = Request::Stop { name: self.name.clone(), clean };
        match self.agent.ask(&request).await.map_err(self.agent_error())? {
            Response::Stopped { success: true, .. } => Ok(()),
            _ if !clean => Ok(()),
            other => {
                Err(TargetError::Tool { message: format!("the target's server did not shut down cleanly: {other:?}") })
            }
        }
    }
}

/// A running pod target's server, stopped and its folders removed by [`Running::remove`].
pub(crate) struct Running {
    launch: Launch,
}

/// What a pod target needs to stop its server cleanly, run a tool over its data directory in
/// the server's container, and start the server again.
#[derive(Clone)]
pub(crate) struct Offline {
    launch: Launch,
}

impl Offline {
    pub(crate) async fn run_stopped(
        &self,
        program: &str,
        args: &[String],
        redactor: &Redactor,
    ) -> Result<(ToolOutput, String), TargetError> {
        self.launch.stop(true).await?;
        // The tool is told of the data directory where a toolbox sees it; here it is where the
        // server's container mounts it.
        let data = self.launch.root.join("data").display().to_string();
        let args = args.iter().map(|a| in_pod(a, &data)).collect();
        let request = Request::Run { program: program.to_owned(), args, timeout_secs: 6 * 3600 };
        let ran = self.launch.agent.ask(&request).await.map_err(self.launch.agent_error());
        // Started again whatever the tool found: later checks and the app need the server.
        self.launch.start(redactor).await?;
        match ran? {
            Response::Ran { code, stdout, stderr, .. } => {
                let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
                let stderr = redactor.redact(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
                Ok((ToolOutput { status: code.map_or(-1, i64::from), stderr }, stdout))
            }
            other => Err(TargetError::Tool { message: format!("the agent answered {other:?} to a program's run") }),
        }
    }
}

/// A tool's argument with the toolbox's data directory ([`super::toolbox::DATA`]) the pod's.
fn in_pod(arg: &str, data: &str) -> String {
    match arg.strip_prefix(super::toolbox::DATA) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{data}{rest}"),
        _ => arg.to_owned(),
    }
}

/// The binaries a physical backup of PostgreSQL `major` recovers with on the pod: this image's,
/// which the server's container runs too, and which must be of that major.
pub(crate) fn bin_dir_for(spec: &PodSpec, major: u32) -> Result<PathBuf, TargetError> {
    super::local::bin_dir_of_major(spec.bin_dir.as_deref(), major).map_err(|_| TargetError::Config {
        message: format!(
            "the backup is of PostgreSQL {major}, and this image's server is not: a physical backup recovers on its own major only (drill it with pgdrill's image of PostgreSQL {major}, tag `-pg{major}`)"
        ),
    })
}

pub(crate) async fn provision(spec: &PodSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Running), TargetError> {
    if ctx.clone.is_some() {
        return Err(TargetError::Config {
            message: "a snapshot's clone needs a container target (its copy-on-write clone is not made on a pod)"
                .into(),
        });
    }
    let bin_dir = match ctx.physical {
        Some(physical) => bin_dir_for(spec, physical.major)?,
        None => spec.bin_dir.clone().or_else(find_bin_dir).ok_or_else(|| TargetError::Config {
            message:
                "no PostgreSQL binaries in this container (the pod target runs in pgdrill's image, which carries them)"
                    .into(),
        })?,
    };
    let agent = Agent::of(&spec.dir);
    (ctx.progress)(&format!("waiting for the server's container (its agent in {})", spec.dir.display()));
    agent.reach(spec.startup_timeout).await.map_err(|source| TargetError::Agent { dir: spec.dir.clone(), source })?;
    let (root, socket) = (spec.data.join(ctx.drill_id), spec.dir.join(ctx.drill_id));
    let running = Running {
        launch: Launch {
            agent,
            name: ctx.drill_id.to_owned(),
            args: Vec::new(),
            root: root.clone(),
            socket: socket.clone(),
            startup_timeout: spec.startup_timeout,
            data_limit: None,
        },
    };
    match start(spec, ctx, &bin_dir, running).await {
        Ok(started) => Ok(started),
        Err((e, mut running)) => {
            running.remove().await.ok();
            Err(e)
        }
    }
}

type Started = Result<(Target, Running), (TargetError, Running)>;

async fn start(spec: &PodSpec, ctx: &ProvisionContext<'_>, bin_dir: &Path, mut running: Running) -> Started {
    let made = make_folders(&running.launch, bin_dir, ctx).await;
    let disk = made.and_then(|()| Ok(crate::disk::limit_for(spec.disk.as_ref(), &running.launch.root, None)?));
    let disk = match disk {
        Ok(disk) => disk,
        Err(e) => return Err((e, running)),
    };
    let limits = match running.launch.agent.ask(&Request::Limits).await {
        Ok(Response::Limits { memory, processes }) => {
            // Never more than the container has: the scenario's own limit only when lower.
            let lower = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| a.min(b)).or(a).or(b);
            let processes = lower(spec.processes.map(u64::from), processes).and_then(|p| u32::try_from(p).ok());
            Limits::of(lower(spec.memory, memory), processes, None)
        }
        _ => Limits::of(spec.memory, spec.processes, None),
    };
    let mut overrides = tuning::disk_bounded(&spec.settings, disk.bytes);
    // Shared memory segments are files in the data directory: a pod's /dev/shm is small.
    overrides.insert("dynamic_shared_memory_type".into(), "mmap".into());
    let mut tuning = tuning::throwaway(limits.resources(), &overrides);
    // A recovering standby's settings (the scenario's own already yielded to them).
    for (key, value) in ctx.physical.map(|p| p.settings.as_slice()).unwrap_or_default() {
        tuning.settings.insert(key.clone(), value.clone());
    }
    let launch = &mut running.launch;
    launch.args = server_args(&launch.root.join("data"), &launch.socket, &tuning.settings);
    launch.data_limit = Some(limits.data_per_process);
    (ctx.progress)("starting PostgreSQL in the server's container");
    if let Err(e) = launch.start(ctx.redactor).await {
        return Err((e, running));
    }
    let observed = match observe(&launch.options()).await {
        Ok(observed) => observed,
        Err(e) => return Err((e, running)),
    };
    let isolation = match isolation(observed, &limits, &disk) {
        Ok(isolation) => isolation,
        Err(e) => return Err((e, running)),
    };
    let target = target(ctx, bin_dir, &running.launch, tuning.settings, isolation, disk);
    Ok((target, running))
}

/// The server's arguments: its data, its socket folder, no TCP, the tuning.
fn server_args(data: &Path, socket: &Path, settings: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let mut args = vec!["-D".into(), data.display().to_string(), "-p".into(), PORT.to_string()];
    args.extend(["-k".into(), socket.display().to_string(), "-c".into(), "listen_addresses=".into()]);
    for (key, value) in settings {
        args.extend(["-c".into(), format!("{key}={value}")]);
    }
    args
}

/// The drill's folders: the socket's (0700) and, on the data volume, the cluster, copied from
/// the image's initialised one (or made by initdb where there is none).
async fn make_folders(launch: &Launch, bin_dir: &Path, ctx: &ProvisionContext<'_>) -> Result<(), TargetError> {
    use std::os::unix::fs::DirBuilderExt;
    let io = TargetError::io;
    for dir in [&launch.root, &launch.socket] {
        std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(io("cannot create the drill's folders"))?;
    }
    let data = launch.root.join("data");
    if let Some(physical) = ctx.physical {
        (ctx.progress)("moving the backup's data directory onto the data volume");
        let (from, me) = (physical.data.clone(), Ids::current());
        return tokio::task::spawn_blocking(move || physical_cluster(&from, &data, me))
            .await?
            .map_err(io("cannot move the backup's data directory onto the data volume"));
    }
    if Path::new(TEMPLATE).join("PG_VERSION").is_file() {
        (ctx.progress)("copying the image's initialised cluster");
        let me = Ids::current();
        let to = data.clone();
        return tokio::task::spawn_blocking(move || crate::tree::copy(Path::new(TEMPLATE), &to, me))
            .await?
            .map_err(io("cannot copy the image's initialised cluster"));
    }
    (ctx.progress)("initdb");
    let out = tokio::process::Command::new(bin_dir.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", SUPERUSER, "--auth-local=trust", "--auth-host=reject", "-E", "UTF8", "--locale=C"])
        .args(["--data-checksums", "--no-sync"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(io("cannot run initdb"))?;
    if !out.status.success() {
        let message = format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        return Err(TargetError::Start { image: bin_dir.display().to_string(), message });
    }
    std::fs::write(data.join("pg_hba.conf"), super::image::PG_HBA).map_err(io("cannot write pg_hba.conf"))
}

/// The cluster of a physical backup, staged and verified in pgdrill's scratch folder (its
/// tablespaces in place, no link in it): moved (or, from another volume, copied) onto the data
/// volume both containers see, and made a standby of nothing.
fn physical_cluster(from: &Path, data: &Path, owner: Ids) -> std::io::Result<()> {
    match std::fs::rename(from, data) {
        Err(e) if e.raw_os_error() == Some(18) => {
            // EXDEV: pgdrill's scratch folder is another volume.
            crate::tree::copy(from, data, owner)?;
            #[expect(clippy::disallowed_methods, reason = "run on a blocking thread (spawn_blocking)")]
            std::fs::remove_dir_all(from)?;
        }
        moved => moved?,
    }
    super::standby::standby_of_nothing(data, owner)
}

fn target(
    ctx: &ProvisionContext<'_>,
    bin_dir: &Path,
    launch: &Launch,
    settings: std::collections::BTreeMap<String, String>,
    isolation: Isolation,
    disk: crate::disk::DiskLimit,
) -> Target {
    let socket = launch.socket.display().to_string();
    Target {
        host: socket.clone(),
        port: PORT,
        user: SUPERUSER.into(),
        password: None,
        maintenance_db: "postgres".into(),
        ssl_mode: PgSslMode::Disable,
        info: TargetInfo {
            kind: "pod".into(),
            image: Some(bin_dir.display().to_string()),
            address: format!("socket in {socket}, the server in the container beside pgdrill's"),
            settings,
            isolation: Some(isolation),
            ..TargetInfo::default()
        },
        tools: Tools::Local {
            bin_dir: bin_dir.to_owned(),
            host: socket,
            port: PORT,
            user: SUPERUSER.into(),
            password: None,
            ssl_mode: "disable".into(),
            run_as: None,
        },
        database_suffix: None,
        created: Arc::new(Mutex::new(Created::default())),
        programs: Programs::bridged(ctx.drill_id),
        offline: Some(super::Offline::Pod(Offline { launch: launch.clone() })),
        disk: Some(super::DataDisk { dir: launch.root.clone(), limit: disk, live: launch.root.join("data") }),
        pins: Default::default(),
        logins: Default::default(),
        ssl_root_cert: None,
        tcp_relay: None,
    }
}

/// What the reports say of the server's container, once what it saw from inside is judged:
/// everything a container target's sandbox must be, but the network, which the pod's policy
/// holds (and which, under Docker's `--network none`, is loopback alone).
fn isolation(observed: Observed, limits: &Limits, disk: &crate::disk::DiskLimit) -> Result<Isolation, TargetError> {
    let own_network = observed.interfaces.iter().all(|i| i == "lo") && observed.routes == 0;
    Observed { interfaces: vec!["lo".into()], routes: 0, ..observed.clone() }.judge()?;
    let network = if own_network {
        "none: loopback alone, shared with pgdrill's container only (a pod without a network, or Docker's `--network none`); the server listens on no TCP address, pgdrill reaches it through its Unix socket".to_owned()
    } else {
        format!(
            "the pod's ({}), shared with pgdrill's container: the pod's NetworkPolicy must deny every ingress and all egress but its allow-list (`pgdrill kube` writes one); the server listens on no TCP address",
            observed.interfaces.join(", ")
        )
    };
    Ok(Isolation {
        contained: true,
        network,
        user: user_named(observed.uid),
        capabilities: "none: all dropped, no privilege escalation (the container's securityContext)".into(),
        filesystem: "a read-only root; writable: the data volume and the shared socket folder only, both mounted noexec (proven from inside: the volumes must be, or the drill refuses an untrusted backup), so no library a backup writes can be loaded".into(),
        programs: "none but PostgreSQL's own: the program folders are empty read-only mounts, so there is no shell"
            .into(),
        limits: format!(
            "{} (the server container's cgroup, read by its agent, unless the scenario sets less); disk {} for the drill's folder of the data volume",
            limits.describe("the server's container"),
            disk.shown
        ),
        observed: Some(observed),
    })
}

/// The server's user: the image's (named in its /etc/passwd, which both containers share) or one
/// the platform assigned (OpenShift's), never root either way.
fn user_named(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid.to_string()).then(|| name.to_owned())
    });
    match name {
        Some(name) => format!("the image's `{name}` (uid {uid}), never root"),
        None => format!("uid {uid}, which the platform assigned (the image has no name for it), never root"),
    }
}

impl Running {
    /// Stops the server at once (nothing in it must survive) and removes its folders.
    pub(crate) async fn remove(&mut self) -> Result<String, TargetError> {
        let stopped = self.launch.stop(false).await;
        for dir in [&self.launch.root, &self.launch.socket] {
            if let Err(source) = tokio::fs::remove_dir_all(dir).await
                && source.kind() != std::io::ErrorKind::NotFound
            {
                return Err(TargetError::RemoveFolder { path: dir.clone(), source });
            }
        }
        stopped?;
        Ok(format!("stopped the pod's server and removed {}", self.launch.root.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandboxed() -> Observed {
        Observed {
            interfaces: vec!["lo".into()],
            uid: 100,
            cap_eff: "0".repeat(16),
            no_new_privs: true,
            noexec: vec!["/var/lib/pgdrill/target/d1/data".into(), "/run/pgdrill/d1".into()],
            ..Default::default()
        }
    }

    fn limits() -> Limits {
        Limits { memory: 4 << 30, data_per_process: 2 << 30, processes: 100, cpus: 2, shared: None }
    }

    fn disk() -> crate::disk::DiskLimit {
        crate::disk::DiskLimit { bytes: 8 << 30, shown: "8GB".into() }
    }

    #[test]
    fn the_pods_network_is_its_policys_and_everything_else_is_judged_as_a_containers() {
        let none = isolation(sandboxed(), &limits(), &disk()).unwrap();
        assert!(none.network.starts_with("none: loopback alone"), "{}", none.network);
        let pod = Observed { interfaces: vec!["lo".into(), "eth0".into()], routes: 2, ..sandboxed() };
        let pod = isolation(pod, &limits(), &disk()).unwrap();
        assert!(pod.network.starts_with("the pod's (lo, eth0)"), "{}", pod.network);
        assert!(pod.network.contains("NetworkPolicy"));
        for (broken, wrong) in [
            (Observed { shell: true, ..sandboxed() }, "it has a shell"),
            (Observed { uid: 0, ..sandboxed() }, "it runs as root"),
            (Observed { cap_eff: "00000000a80425fb".into(), ..sandboxed() }, "it holds capabilities"),
            (Observed { no_new_privs: false, ..sandboxed() }, "it may gain privileges"),
        ] {
            let e = isolation(broken, &limits(), &disk()).unwrap_err().to_string();
            assert!(e.contains(wrong), "{e}");
        }
    }

    #[test]
    fn a_tool_is_told_of_the_data_directory_where_the_pod_mounts_it() {
        let data = "/var/lib/pgdrill/target/d1/data";
        assert_eq!(in_pod("/pgdrill/data", data), data);
        assert_eq!(in_pod("/pgdrill/data/global", data), format!("{data}/global"));
        assert_eq!(in_pod("--check", data), "--check");
        assert_eq!(in_pod("/pgdrill/database", data), "/pgdrill/database");
    }

    #[test]
    fn the_server_listens_on_its_socket_alone_with_the_tuning() {
        let settings = [("fsync".to_owned(), "off".to_owned())].into_iter().collect();
        let args = server_args(Path::new("/v/d1/data"), Path::new("/run/pgdrill/d1"), &settings);
        assert_eq!(args.join(" "), "-D /v/d1/data -p 5432 -k /run/pgdrill/d1 -c listen_addresses= -c fsync=off");
    }
}
