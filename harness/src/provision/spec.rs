//! What a drill's target is: the specs `[target]` resolves to, and the project's images. The
//! scenario reads them from its file; provisioning starts what they describe.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

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
/// (`pgdrill/postgres:17-r7` → `pgdrill/postgres:18-r7`).
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

#[derive(Debug, Clone)]
pub(crate) enum TargetKind {
    /// A throwaway container (the default).
    Container(ContainerSpec),
    /// A throwaway database on an existing server.
    Server(ServerSpec),
    /// A throwaway cluster of PostgreSQL binaries on this machine.
    Local(LocalSpec),
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
    /// less the host's reserve.
    pub disk: Option<DiskLimit>,
}
