//! A toolbox: a sandboxed container of the backup's own major in which PostgreSQL's own tools
//! (and pgBackRest) read a physical backup's files before any server starts (`pg_verifybackup`,
//! `pg_controldata`, `pgbackrest restore`) or after the target's server stopped
//! (`pg_checksums`). Sandboxed as the target is, but for its programs: no network, never root,
//! no capabilities, a read-only root with a small `/tmp`, memory and processes limited; it sees
//! the data directory it works on and, read-only, the backup. It runs nothing of its own
//! (`sleep`) until a tool is run in it, and carries the drill's label, so teardown removes it
//! even when a drill is interrupted.

use std::path::Path;

use testcontainers::core::{AccessMode, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::container::{DRILL_LABEL, OWNER_LABEL};
use super::spec::ContainerSpec;
use super::tools::{ToolOutput, exec};
use super::tuning::Limits;
use super::{TargetError, container, image};
use crate::secret::Redactor;

/// Where the toolbox sees the data directory it works on.
pub(crate) const DATA: &str = "/pgdrill/data";
/// Where it sees the backup, read-only.
pub(crate) const BACKUP: &str = "/pgdrill/backup";
/// Where it sees the drill's work folder (which holds the data directory as `data`), when it
/// works on more than the data directory (a chain's members, unpacked there).
pub(crate) const WORK: &str = "/pgdrill/work";

/// A running toolbox; [`Toolbox::remove`] removes it (and teardown's sweep, by its label).
pub(crate) struct Toolbox {
    container: ContainerAsync<GenericImage>,
    /// The user its programs run as, the one the target's server runs as.
    pub user: (u32, u32),
}

/// What a toolbox is started for.
pub(crate) struct Request<'a> {
    pub drill_id: &'a str,
    pub spec: &'a ContainerSpec,
    /// The backup's major (the image the target of `spec` runs for it).
    pub major: Option<u32>,
    /// The data directory, read-write.
    pub data: &'a Path,
    /// The backup's folder, read-only (the toolbox gets its group, for a folder only its group
    /// may read).
    pub backup: Option<&'a Path>,
    /// The drill's work folder, read-write, at [`WORK`].
    pub work: Option<&'a Path>,
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
}

impl Toolbox {
    /// Starts a toolbox of the image for the backup's major.
    pub(crate) async fn start(request: Request<'_>) -> Result<Toolbox, TargetError> {
        if let Some(host) = container::remote_engine_now() {
            return Err(TargetError::RemoteEngine { host });
        }
        let docker = container::docker()?;
        let image_name = image::choose(request.spec, request.major, true)?;
        let info = image::ensure(&docker, &image_name, || {
            (request.progress)(&format!("building image {image_name} from Debian packages (first run only)"))
        })
        .await?;
        let user = container::server_user(&info).ok_or_else(|| TargetError::Template {
            image: image_name.clone(),
            message: "it lacks the labels `org.pgdrill.uid` and `org.pgdrill.gid`".into(),
        })?;
        // Docker mounts absolute paths only; a scenario's paths may be relative.
        let absolute = |path: &Path| {
            std::fs::canonicalize(path).map_err(|e| TargetError::Tool {
                message: format!("cannot resolve `{}` to mount it: {e}", path.display()),
            })
        };
        let data = absolute(request.data)?;
        let backup = request.backup.map(absolute).transpose()?;
        let work = request.work.map(absolute).transpose()?;
        let limits = Limits::of(request.spec.memory, request.spec.processes);
        // The backup readable by the toolbox's user, or its group: else a clear error now, not
        // a tool's `Permission denied` half-way.
        let group = match &backup {
            Some(backup) => container::backup_group(backup, Some(user.0))?,
            None => None,
        };
        let (name, tag) = container::split_image(&image_name);
        let short: String = request.drill_id.chars().take(8).collect();
        let mut toolbox = GenericImage::new(name, tag)
            .with_entrypoint("/usr/bin/sleep")
            .with_wait_for(WaitFor::Nothing)
            .with_cmd(["infinity"])
            .with_user(format!("{}:{}", user.0, user.1))
            .with_readonly_rootfs(true)
            .with_cap_drop("ALL")
            .with_security_opt("no-new-privileges")
            .with_label(DRILL_LABEL, request.drill_id)
            .with_label(OWNER_LABEL, container::owner())
            .with_container_name(format!("pgdrill-toolbox-{short}"))
            .with_mount(Mount::bind_mount(data.display().to_string(), DATA))
            .with_host_config_modifier(move |host| {
                host.network_mode = Some("none".into());
                host.memory = Some(limits.memory as i64);
                host.memory_swap = Some(limits.memory as i64);
                host.pids_limit = Some(i64::from(limits.processes));
                // pgBackRest's lock and log files, pg_verifybackup's nothing.
                host.tmpfs = Some([("/tmp".to_owned(), "rw,size=64m,mode=1777".to_owned())].into());
                host.group_add = group.map(|g: u32| vec![g.to_string()]);
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
            .map_err(|e| TargetError::Start { image: image_name.clone(), message: e.to_string() })?;
        Ok(Toolbox { container, user })
    }

    /// Runs `program args` in the toolbox; returns how it ended and what it wrote to stdout
    /// (the first 4 MiB).
    pub(crate) async fn run(
        &self,
        program: &str,
        args: &[String],
        redactor: &Redactor,
    ) -> Result<(ToolOutput, String), TargetError> {
        let docker = container::docker()?;
        let (tx, collect) = super::tools::stdout_collector();
        let output = exec(&docker, self.container.id(), program, args, Some(tx), redactor).await?;
        let stdout = collect.await.unwrap_or_default();
        Ok((output, redactor.redact(&stdout)))
    }

    /// Removes the toolbox.
    pub(crate) async fn remove(self) -> Result<(), TargetError> {
        self.container.rm().await.map_err(|e| TargetError::Teardown { message: e.to_string() })
    }
}
