//! What a drill's target is: the specs `[target]` resolves to, and the project's images. The
//! scenario reads them from its file; provisioning starts what they describe.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::budget::{Ask, Share};
use crate::disk::DiskLimit;
use crate::secret::SecretSource;

/// The image every scenario uses unless it names another: built by `ci/image/build`.
pub(crate) const DEFAULT_IMAGE: &str = include_str!("../../../ci/image/TAG");

/// The project's image tag, without the file's trailing newline.
pub fn default_image() -> &'static str {
    DEFAULT_IMAGE.trim()
}

/// The PostgreSQL majors `ci/image/build` makes an image of from Debian's packages (15 from
/// bookworm, without pgvector and AGE; 17 from trixie, 18 from forky), oldest first.
pub const IMAGE_MAJORS: [u32; 3] = [15, 17, 18];

/// A dump of this major or an older one restores on this major's image (the oldest with
/// pgvector and AGE, the default); a physical backup recovers on its own major's only.
pub(crate) const DUMP_MAJOR_FLOOR: u32 = 17;

/// The majors pgdrill builds images of, in words: `15, 17 and 18`.
pub(crate) fn image_majors_in_words() -> String {
    let all: Vec<String> = IMAGE_MAJORS.map(|m| m.to_string()).to_vec();
    match all.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => all.join(""),
    }
}

/// The project's image of PostgreSQL `major`: the default tag with its major replaced
/// (`pgdrill/postgres:17-r8` → `pgdrill/postgres:18-r8`).
pub fn project_image(major: u32) -> String {
    let tag = default_image();
    let (name, version) = tag.split_once(':').unwrap_or((tag, ""));
    let revision = version.split_once('-').map(|(_, r)| r).unwrap_or("");
    format!("{name}:{major}-{revision}")
}

/// The major of a project image tag, if `image` is one pgdrill can build.
pub(crate) fn project_image_major(image: &str) -> Option<u32> {
    IMAGE_MAJORS.into_iter().find(|&major| project_image(major) == image)
}

#[derive(Debug, Clone)]
pub(crate) struct TargetSpec {
    /// The database the backup is restored into and checked in.
    pub database: String,
    pub kind: TargetKind,
}

impl TargetSpec {
    /// What the target asks of this machine for itself (`[target] memory`, `disk`,
    /// `processes`); nothing for a database on an existing server.
    pub(crate) fn ask(&self) -> Ask {
        let (memory, disk, processes) = match &self.kind {
            TargetKind::Container(c) => (c.memory, c.disk.as_ref(), c.processes),
            TargetKind::Local(l) => (l.memory, l.disk.as_ref(), l.processes),
            // A server's resources are its own; a pod's server has its pod's.
            TargetKind::Server(_) | TargetKind::Pod(_) => return Ask::NOTHING,
        };
        Ask { memory, disk: disk.map(|d| d.bytes), processes }
    }

    /// Gives the target its share of the budget of drills run at once.
    pub(crate) fn set_share(&mut self, share: Share) {
        match &mut self.kind {
            TargetKind::Container(c) => c.share = Some(share),
            TargetKind::Local(l) => l.share = Some(share),
            TargetKind::Server(_) | TargetKind::Pod(_) => {}
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum TargetKind {
    /// A throwaway container (the default).
    Container(ContainerSpec),
    /// A throwaway database on an existing server.
    Server(ServerSpec),
    /// A throwaway cluster of PostgreSQL binaries on this machine.
    Local(LocalSpec),
    /// A throwaway cluster whose server runs in the container beside pgdrill's (a Kubernetes
    /// pod's, or two containers started together), started by `pgdrill pod-server` there.
    Pod(PodSpec),
}

#[derive(Debug, Clone)]
pub(crate) struct ServerSpec {
    /// An admin connection string: may create and drop databases and roles.
    pub url: SecretSource,
    /// Client programs (pg_restore) matching the server; default: found on this machine.
    pub bin_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub(crate) struct LocalSpec {
    /// The PostgreSQL binaries; default: `pg_config --bindir`, else the newest of
    /// /usr/lib/postgresql/*/bin.
    pub bin_dir: Option<PathBuf>,
    pub startup_timeout: Duration,
    pub settings: BTreeMap<String, String>,
    /// Memory the sandbox may use (bytes); default: three quarters of the machine's.
    pub memory: Option<u64>,
    /// Processes the sandbox may run; default 512.
    pub processes: Option<u32>,
    /// The most disk the target's data may take; default: the free space of its filesystem
    /// less the host's reserve ([`crate::disk`]).
    pub disk: Option<DiskLimit>,
    /// The drill's share of the budget of drills run at once (`--jobs`), the default of what
    /// the scenario leaves unset; never from the scenario file.
    pub share: Option<Share>,
}

/// Where the pod's two containers meet: the agent's folder and the data volume, by default
/// `/run/pgdrill` and `/var/lib/pgdrill/target` (`PGDRILL_POD_DIR`, `PGDRILL_POD_DATA`).
#[derive(Debug, Clone)]
pub(crate) struct PodSpec {
    /// The folder both containers mount: the agent's socket and each server's socket folder.
    pub dir: PathBuf,
    /// The volume both containers mount for the data directories.
    pub data: PathBuf,
    /// This container's PostgreSQL binaries (the image's), for initdb and pg_restore.
    pub bin_dir: Option<PathBuf>,
    pub startup_timeout: Duration,
    pub settings: BTreeMap<String, String>,
    /// Memory the server's container may use (bytes): the pod's limit, stated for the reports
    /// and the tuning; default: three quarters of what this container sees.
    pub memory: Option<u64>,
    pub processes: Option<u32>,
    /// The most disk the data may take; default: the data volume's free space less a reserve.
    pub disk: Option<DiskLimit>,
}

impl PodSpec {
    /// The pod target of a scenario written for another kind (`--target pod`): its limits and
    /// settings kept, the folders from the environment or the defaults.
    pub(crate) fn from_kind(kind: &TargetKind) -> Option<PodSpec> {
        let (settings, memory, processes, disk, startup_timeout) = match kind {
            TargetKind::Container(c) => (c.settings.clone(), c.memory, c.processes, c.disk.clone(), c.startup_timeout),
            TargetKind::Local(l) => (l.settings.clone(), l.memory, l.processes, l.disk.clone(), l.startup_timeout),
            TargetKind::Pod(p) => return Some(p.clone()),
            TargetKind::Server(_) => return None,
        };
        Some(PodSpec { settings, memory, processes, disk, startup_timeout, ..PodSpec::default() })
    }
}

impl Default for PodSpec {
    fn default() -> Self {
        let from_env = |name: &str, default: &str| {
            std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| default.into())
        };
        PodSpec {
            dir: from_env("PGDRILL_POD_DIR", "/run/pgdrill"),
            data: from_env("PGDRILL_POD_DATA", "/var/lib/pgdrill/target"),
            bin_dir: None,
            startup_timeout: Duration::from_secs(60),
            settings: BTreeMap::new(),
            memory: None,
            processes: None,
            disk: None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ContainerSpec {
    /// The image the scenario names; none: the project's image of the backup's major.
    pub image: Option<String>,
    /// The PostgreSQL major the scenario pins (`version = 18`), instead of the backup's.
    pub version: Option<u32>,
    pub startup_timeout: Duration,
    /// Settings over the throwaway tuning.
    pub settings: BTreeMap<String, String>,
    /// Memory the container may use (bytes); default: three quarters of the machine's.
    pub memory: Option<u64>,
    /// Processes the container may run; default 512.
    pub processes: Option<u32>,
    /// The most disk the target's data may take; default: the free space of its filesystem
    /// less the host's reserve ([`crate::disk`]).
    pub disk: Option<DiskLimit>,
    /// The drill's share of the budget of drills run at once (`--jobs`), the default of what
    /// the scenario leaves unset; never from the scenario file.
    pub share: Option<Share>,
}
