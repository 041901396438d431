//! A toolbox: a sandbox of the backup's own major in which PostgreSQL's own tools (and
//! pgBackRest) read a physical backup's files before any server starts (`pg_verifybackup`,
//! `pg_controldata`, `pg_combinebackup`, `pgbackrest restore`) or after the target's server
//! stopped (`pg_checksums`). For a container target, a container of the target's image,
//! sandboxed as the target is but for its programs: no network, never root, no capabilities, a
//! read-only root with a small `/tmp`, memory and processes limited; it runs nothing of its own
//! (`sleep`) until a tool is run in it, and carries the drill's label, so teardown removes it
//! even when a drill is interrupted. When it works on a data folder alone (a base backup's
//! verify) and pgdrill runs as root with bubblewrap here, the image's own tools copied out of
//! it once (`image_tools`) instead, each run in a bubblewrap sandbox as that user, seeing the
//! copy and the folder only: no container starts. For a local target, this machine's binaries of that major,
//! each run in a bubblewrap sandbox of its own (`bwrap`) as the server's user. Either way it
//! sees the data directory it works on and, read-only, the backup, at the same paths. For a pod
//! target, pgdrill's own container's binaries (the server's image), run directly with an empty
//! environment: that container is the sandbox (no capability, no privilege, the pod's network),
//! where pg_restore reads a dump too; the paths are rewritten to where the files are.

use std::path::Path;

use testcontainers::core::{AccessMode, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::access::{self, Access};
use super::bwrap::{self, Bind};
use super::docker::{DRILL_LABEL, OWNER_LABEL, docker, remote_engine_now, server_user, split_image};
use super::error::TemplateError;
use super::owner::owner;
use super::spec::ContainerSpec;
use super::tools::{Invocation, ToolOutput, exec};
use super::tuning::Limits;
use super::{TargetError, image};
use crate::secret::Redactor;
use crate::tree::Ids;

/// Where the toolbox sees the data directory it works on.
pub(crate) const DATA: &str = "/pgdrill/data";
/// Where it sees the backup, read-only.
pub(crate) const BACKUP: &str = "/pgdrill/backup";
/// Where it sees the drill's work folder (which holds the data directory as `data`), when it
/// works on more than the data directory (a chain's members, unpacked there).
pub(crate) const WORK: &str = "/pgdrill/work";

/// Where pgdrill's image has pgBackRest: a pod's toolbox runs it from there.
const POD_PGBACKREST: &str = "/usr/bin/pgbackrest";

/// A number unique within this process: a drill may run two toolboxes at once (one decrypting
/// an encrypted repository, one of the backup's major).
fn next_number() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `path` as an absolute path, to mount or bind it.
fn absolute(path: &Path) -> Result<std::path::PathBuf, TargetError> {
    std::fs::canonicalize(path).map_err(TargetError::io(format!("cannot resolve `{}` to mount it", path.display())))
}

/// A running toolbox; [`Toolbox::remove`] removes it (and teardown's sweep, by its label).
pub(crate) struct Toolbox {
    inner: Inner,
    /// The user its programs run as, the one the target's server runs as.
    pub user: Ids,
}

enum Inner {
    /// A container, and what each program is run through (`setpriv`, for [`Access::ReadAll`]).
    Container(Box<ContainerAsync<GenericImage>>, Vec<String>),
    /// This machine's binaries in `bin_dir`, each run by `bwrap` seeing `binds` (none: a pod's,
    /// run directly, the binds' paths rewritten in its arguments).
    Local {
        bwrap: Option<std::path::PathBuf>,
        bin_dir: std::path::PathBuf,
        binds: Vec<Bind>,
        run_as: Option<Ids>,
        /// The copy of the backup staged for it, removed with it.
        staged: Option<std::path::PathBuf>,
        /// A copy of an image's tools (`image_tools`), the sandbox's only files but the binds;
        /// `None`: this machine's /usr.
        root: Option<std::path::PathBuf>,
        /// Resource limits of each tool (data bytes, processes).
        limited: Option<(u64, u64)>,
    },
}

/// Where a toolbox runs.
#[derive(Clone, Copy)]
pub(crate) enum On<'a> {
    /// A container of the image the target of this spec runs for the backup's major.
    Container(&'a ContainerSpec),
    /// This machine's binaries of the backup's major, in this folder.
    Local(&'a Path),
    /// A pod's: pgdrill's container's binaries, in this folder.
    Pod(&'a Path),
}

/// The data directory a toolbox works on.
#[derive(Clone, Copy)]
pub(crate) enum Data<'a> {
    /// A folder of this machine.
    Folder(&'a Path),
    /// A Docker volume (a container target's data directory): a container toolbox only.
    Volume(&'a str),
}

/// What a toolbox is started for.
pub(crate) struct Request<'a> {
    pub drill_id: &'a str,
    pub on: On<'a>,
    /// The backup's major (the image the target of `spec` runs for it).
    pub major: Option<u32>,
    /// The data directory, read-write.
    pub data: Data<'a>,
    /// The backup's folder, read-only (the toolbox gets its group, for a folder only its group
    /// may read).
    pub backup: Option<&'a Path>,
    /// The drill's work folder, read-write, at [`WORK`].
    pub work: Option<&'a Path>,
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
}

impl Toolbox {
    /// Starts a toolbox for the backup's major.
    pub(crate) async fn start(request: Request<'_>) -> Result<Toolbox, TargetError> {
        let spec = match request.on {
            On::Container(spec) => spec,
            On::Local(bin_dir) => return Self::local(&request, bin_dir),
            On::Pod(bin_dir) => return Self::in_pod(&request, bin_dir),
        };
        if let Some(host) = remote_engine_now() {
            return Err(TargetError::RemoteEngine { host });
        }
        let docker = docker()?;
        let image_name = image::choose(spec, request.major, true)?;
        let info = image::ensure(&docker, &image_name, || {
            (request.progress)(&format!("building image {image_name} from Debian packages (first run only)"))
        })
        .await?;
        let user = server_user(info.owner).ok_or_else(|| TargetError::Template {
            image: image_name.clone(),
            source: TemplateError::Unlabelled { labels: "`org.pgdrill.uid` and `org.pgdrill.gid`" },
        })?;
        // Docker mounts absolute paths only; a scenario's paths may be relative.
        let data_mount = match request.data {
            Data::Folder(folder) => Mount::bind_mount(absolute(folder)?.display().to_string(), DATA),
            Data::Volume(volume) => Mount::volume_mount(volume, DATA),
        };
        let backup = request.backup.map(absolute).transpose()?;
        let work = request.work.map(absolute).transpose()?;
        let limits = Limits::of(spec.memory, spec.processes, spec.share.as_ref());
        // The backup readable by the toolbox's user, its group, or with read access to all
        // (`access`); else a clear error now, not a tool's `Permission denied` half-way.
        let access = backup.as_deref().map_or(Ok(Access::AsItIs), |b| access::of(b, Some(user.uid)))?;
        let (group, read_all) = (access.group(), access == Access::ReadAll);
        if let Some(light) = Self::of_image_tools(&request, &docker, &image_name, &info, user, limits).await {
            return Ok(light);
        }
        let (name, tag) = split_image(&image_name);
        let short: String = request.drill_id.chars().take(8).collect();
        let mut toolbox = GenericImage::new(name, tag)
            .with_entrypoint("/usr/bin/sleep")
            .with_wait_for(WaitFor::Nothing)
            .with_cmd(["infinity"])
            .with_user(if read_all { "0:0".to_owned() } else { user.to_string() })
            .with_readonly_rootfs(true)
            .with_cap_drop("ALL")
            .with_security_opt("no-new-privileges")
            .with_label(DRILL_LABEL, request.drill_id)
            .with_label(OWNER_LABEL, owner())
            .with_container_name(format!("pgdrill-toolbox-{short}-{}", next_number()))
            .with_mount(data_mount)
            .with_host_config_modifier(move |host| {
                host.network_mode = Some("none".into());
                host.memory = Some(limits.memory as i64);
                host.memory_swap = Some(limits.memory as i64);
                host.pids_limit = Some(i64::from(limits.processes));
                // pgBackRest's lock and log files, pg_verifybackup's nothing.
                host.tmpfs = Some([("/tmp".to_owned(), "rw,size=64m,mode=1777".to_owned())].into());
                host.group_add = group.map(|g: u32| vec![g.to_string()]);
                if read_all {
                    host.cap_add = Some(access::READ_ALL_CAPS.iter().map(|c| c.to_string()).collect());
                }
            });
        if let Some(work) = work {
            toolbox = toolbox.with_mount(Mount::bind_mount(work.display().to_string(), WORK));
        }
        if let Some(backup) = backup {
            toolbox = toolbox.with_mount(
                Mount::bind_mount(backup.display().to_string(), BACKUP).with_access_mode(AccessMode::ReadOnly),
            );
        }
        let container = toolbox
            .start()
            .await
            .map_err(|source| TargetError::StartContainer { image: image_name.clone(), source })?;
        tracing::debug!("the toolbox started");
        let prefix = if read_all { access::read_all_prefix(user) } else { Vec::new() };
        Ok(Toolbox { inner: Inner::Container(Box::new(container), prefix), user })
    }

    /// A toolbox of the image's own tools copied out of it (`image_tools`), each run by bubblewrap
    /// as the image's server user, when the toolbox works on a data folder only (no backup, no
    /// work folder), pgdrill runs as root (to run them as that user) and bubblewrap runs here:
    /// the image's binaries without a container's start. `None` (a container, then) otherwise,
    /// or when they do not run (`--version`).
    async fn of_image_tools(
        request: &Request<'_>,
        docker: &testcontainers::bollard::Docker,
        image: &str,
        info: &image::ImageInfo,
        user: Ids,
        limits: Limits,
    ) -> Option<Toolbox> {
        let (Data::Folder(data), None, None, Some(major)) = (request.data, request.backup, request.work, request.major)
        else {
            return None;
        };
        // Root, to run the tools as the server's user.
        bwrap::unprivileged_user()?;
        let bwrap = bwrap::find_bwrap()?;
        let root = match super::image_tools::root(docker, image, info, major).await {
            Ok(root) => root,
            Err(e) => {
                tracing::debug!("the image's tools in a container: {e}");
                return None;
            }
        };
        let binds = vec![Bind { host: absolute(data).ok()?, inside: DATA.into(), writable: true }];
        let inner = Inner::Local {
            bwrap: Some(bwrap),
            bin_dir: format!("/usr/lib/postgresql/{major}/bin").into(),
            binds,
            run_as: Some(user),
            staged: None,
            root: Some(root),
            // Memory only: a count of processes is the user's across the machine (every target
            // container's server runs as it), which a container's own limit is not.
            limited: Some((limits.data_per_process, bwrap::UNLIMITED)),
        };
        let toolbox = Toolbox { inner, user };
        match toolbox.run("pg_controldata", &["--version".into()], &Redactor::new()).await {
            Ok((output, _)) if output.success() => Some(toolbox),
            ran => {
                tracing::debug!("the image's tools in a container: pg_controldata --version in bubblewrap: {ran:?}");
                None
            }
        }
    }

    /// A toolbox of this machine's binaries in `bin_dir`, run as the local target's server is.
    fn local(request: &Request<'_>, bin_dir: &Path) -> Result<Toolbox, TargetError> {
        let bwrap = bwrap::find_bwrap().ok_or_else(|| TargetError::Untrusted {
            what: "a local target without bubblewrap".into(),
            why: "`bwrap` is not on the PATH, and PostgreSQL's tools would read the backup with this machine's network and files".into(),
        })?;
        let Data::Folder(data) = request.data else {
            return Err(TargetError::Tool { message: "a local toolbox works on a folder, not a Docker volume".into() });
        };
        let run_as = bwrap::unprivileged_user();
        let user = run_as.unwrap_or_else(Ids::current);
        let mut binds = vec![Bind { host: absolute(data)?, inside: DATA.into(), writable: true }];
        let mut staged = None;
        if let Some(backup) = request.backup {
            let backup = absolute(backup)?;
            // bubblewrap's user namespace can be given neither a group nor read access to all:
            // a backup its user cannot read as it is is staged, a copy owned by that user.
            let host = match access::of(&backup, Some(user.uid))? {
                Access::AsItIs => backup,
                Access::Group(_) | Access::ReadAll => {
                    let into = absolute(data)?.with_file_name(format!("staged-backup-{}", next_number()));
                    staged = Some(access::stage(&backup, &into, user)?);
                    into
                }
            };
            binds.push(Bind { host, inside: BACKUP.into(), writable: false });
        }
        if let Some(work) = request.work {
            binds.push(Bind { host: absolute(work)?, inside: WORK.into(), writable: true });
        }
        let inner = Inner::Local {
            bwrap: Some(bwrap),
            bin_dir: bin_dir.to_owned(),
            binds,
            run_as,
            staged,
            root: None,
            limited: None,
        };
        Ok(Toolbox { inner, user })
    }

    /// A pod's toolbox: its tools run in pgdrill's container as it runs, on the files where they
    /// are (the container's user is the server's).
    fn in_pod(request: &Request<'_>, bin_dir: &Path) -> Result<Toolbox, TargetError> {
        let Data::Folder(data) = request.data else {
            return Err(TargetError::Tool { message: "a pod's toolbox works on a folder, not a Docker volume".into() });
        };
        let mut binds = vec![Bind { host: absolute(data)?, inside: DATA.into(), writable: true }];
        if let Some(backup) = request.backup {
            binds.push(Bind { host: absolute(backup)?, inside: BACKUP.into(), writable: false });
        }
        if let Some(work) = request.work {
            binds.push(Bind { host: absolute(work)?, inside: WORK.into(), writable: true });
        }
        let me = Ids::of(Path::new("/proc/self"));
        let user = me.map_err(TargetError::io("cannot read this process's user"))?;
        let inner = Inner::Local {
            bwrap: None,
            bin_dir: bin_dir.to_owned(),
            binds,
            run_as: None,
            staged: None,
            root: None,
            limited: None,
        };
        Ok(Toolbox { inner, user })
    }

    /// Starts a toolbox that sees `data` (and nothing of the backup), runs `program args` in it
    /// once and removes it: how the program ended and its stdout. For a tool over a stopped
    /// server's data directory (`pg_checksums`).
    pub(crate) async fn run_once(
        drill_id: &str,
        on: On<'_>,
        data: Data<'_>,
        program: &str,
        args: &[String],
        redactor: &Redactor,
    ) -> Result<(ToolOutput, String), TargetError> {
        let request = Request { drill_id, on, major: None, data, backup: None, work: None, progress: &|_| {} };
        let toolbox = Toolbox::start(request).await?;
        let ran = toolbox.run(program, args, redactor).await;
        let _ = toolbox.remove().await;
        ran
    }

    /// Runs `program args` in the toolbox; returns how it ended and what it wrote to stdout
    /// (the first 4 MiB).
    pub(crate) async fn run(
        &self,
        program: &str,
        args: &[String],
        redactor: &Redactor,
    ) -> Result<(ToolOutput, String), TargetError> {
        self.run_with(Invocation { program, args, env: &[] }, redactor).await
    }

    /// [`Toolbox::run`] of a program with its environment.
    pub(crate) async fn run_with(
        &self,
        invocation: Invocation<'_>,
        redactor: &Redactor,
    ) -> Result<(ToolOutput, String), TargetError> {
        let (tx, collect) = super::tools::stdout_collector();
        let output = self.exec(invocation, tx, redactor).await?;
        let stdout = collect.await.unwrap_or_default();
        Ok((output, redactor.redact(&stdout)))
    }

    /// Runs a program with its environment, writing its stdout into the file `into` of this
    /// machine (whole, whatever its size).
    pub(crate) async fn run_into(
        &self,
        invocation: Invocation<'_>,
        into: &Path,
        redactor: &Redactor,
    ) -> Result<ToolOutput, TargetError> {
        use tokio::io::AsyncWriteExt;
        let file = tokio::fs::File::create(into)
            .await
            .map_err(TargetError::io(format!("cannot create `{}`", into.display())))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
        let write = tokio::spawn(async move {
            let mut file = tokio::io::BufWriter::new(file);
            while let Some(chunk) = rx.recv().await {
                file.write_all(&chunk).await?;
            }
            file.flush().await
        });
        let output = self.exec(invocation, tx, redactor).await?;
        write.await?.map_err(TargetError::io(format!("cannot write `{}`", into.display())))?;
        Ok(output)
    }

    async fn exec(
        &self,
        invocation: Invocation<'_>,
        stdout: tokio::sync::mpsc::Sender<bytes::Bytes>,
        redactor: &Redactor,
    ) -> Result<ToolOutput, TargetError> {
        let Invocation { program, args, env } = invocation;
        match &self.inner {
            Inner::Container(container, prefix) => {
                let docker = docker()?;
                let (program, args) = match prefix.split_first() {
                    Some((setpriv, rest)) => {
                        (setpriv.as_str(), rest.iter().chain([&program.to_owned()]).chain(args).cloned().collect())
                    }
                    None => (program, args.to_vec()),
                };
                let invocation = Invocation { program, args: &args, env };
                exec(&docker, container.id(), invocation, None, Some(stdout), redactor).await
            }
            Inner::Local { bwrap, bin_dir, binds, run_as, root, limited, .. } => {
                let tool = match bwrap {
                    // pgdrill's image carries pgBackRest beside PostgreSQL.
                    None if program == "pgbackrest" => Path::new(POD_PGBACKREST).to_owned(),
                    _ => bin_dir.join(program),
                };
                let seen = root.as_ref().map_or(tool.clone(), |r| r.join(tool.strip_prefix("/").unwrap_or(&tool)));
                if !seen.is_file() {
                    return Err(TargetError::Tool {
                        message: format!(
                            "`{}` has no `{program}`: a local target's toolbox runs PostgreSQL's own tools of this machine (pgBackRest runs in a container target's)",
                            bin_dir.display()
                        ),
                    });
                }
                let mut command = match bwrap {
                    Some(bwrap) => {
                        let mut command = tokio::process::Command::new(bwrap);
                        let sandbox = match root {
                            Some(root) => bwrap::image_args(root, binds, Path::new("/"))
                                .map_err(TargetError::io(format!("cannot read `{}`", root.display())))?,
                            None => bwrap::args(bin_dir, binds, Path::new("/"), bwrap::Programs::Shown),
                        };
                        command.args(sandbox).arg(&tool).args(args);
                        command
                    }
                    None => {
                        let mut command = tokio::process::Command::new(&tool);
                        command.args(args.iter().map(|arg| unbound(arg, binds))).current_dir("/");
                        command
                    }
                };
                command.env_clear().env("LANG", "C.UTF-8");
                for pair in env {
                    if let Some((name, value)) = pair.split_once('=') {
                        command.env(name, value);
                    }
                }
                if let Some(Ids { uid, gid }) = run_as {
                    command.uid(*uid).gid(*gid);
                }
                bwrap::die_with_pgdrill(&mut command, *limited);
                super::tools::run_process(command, &tool, None, Some(stdout), redactor).await
            }
        }
    }

    /// Removes the toolbox (a local one has nothing running between its tools).
    pub(crate) async fn remove(self) -> Result<(), TargetError> {
        match self.inner {
            Inner::Container(container, _) => {
                container.rm().await.map_err(|source| TargetError::RemoveContainer { source })
            }
            Inner::Local { staged: Some(staged), .. } => tokio::fs::remove_dir_all(&staged)
                .await
                .map_err(|source| TargetError::RemoveFolder { path: staged, source }),
            Inner::Local { staged: None, .. } => Ok(()),
        }
    }
}

/// An argument naming a path where a sandbox would see it (a bind's `inside`, alone, as a
/// prefix of a path, or after `=`), naming it where it is.
fn unbound(arg: &str, binds: &[Bind]) -> String {
    // The last `=`: `--tablespace-map=OID=PATH` names its path after the second.
    let (key, value) = match arg.rsplit_once('=') {
        Some((key, value)) => (Some(key), value),
        None => (None, arg),
    };
    let value = binds
        .iter()
        .find_map(|bind| {
            let rest = value.strip_prefix(bind.inside.to_str()?)?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{}{rest}", bind.host.display()))
        })
        .unwrap_or_else(|| value.to_owned());
    match key {
        Some(key) => format!("{key}={value}"),
        None => value,
    }
}

#[cfg(test)]
mod tests;
