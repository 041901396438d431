//! What provisioning needs from the drill ([`ProvisionContext`]), and what a target's data
//! directory starts from when it is not a fresh cluster: a physical backup's ([`PhysicalData`])
//! or a snapshot's ([`CloneFrom`]).

use std::path::PathBuf;

use crate::secret::Redactor;

/// What provisioning needs from the drill.
pub(crate) struct ProvisionContext<'a> {
    pub drill_id: &'a str,
    pub scenario: &'a str,
    pub redactor: &'a Redactor,
    /// Reports a step of a slow start (building the image, starting the container).
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
    /// The backup, made readable to the target's own tools (mounted into a container).
    pub backup: Option<&'a std::path::Path>,
    /// Why the scenario trusts its backup, when it says so: only then may a target that is not
    /// a sandbox restore it with powers over its machine.
    pub trusted: Option<&'a str>,
    /// The PostgreSQL major the backup comes from, when its first bytes say: a container target
    /// runs the project's image of it unless the scenario names one.
    pub backup_major: Option<u32>,
    /// A physical backup: the target's data directory is unpacked from it instead of a fresh
    /// cluster, and the server starts recovering.
    pub physical: Option<&'a PhysicalData>,
    /// A snapshot to clone: the target's data directory is a private copy-on-write clone of
    /// its cluster (a container target only).
    pub clone: Option<&'a CloneFrom>,
    /// Whether the drill may stop the target's server and start it again (a tool run on its
    /// stopped server, a snapshot kept, the target kept with `--keep`): a container target's
    /// data directory can then be mounted again, and is never a `volatile` overlay
    /// (`provision/container/layer.rs`).
    pub restarts: bool,
}

/// What a clone is made from: a verified snapshot's cluster, which it never writes.
#[derive(Debug, Clone)]
pub(crate) struct CloneFrom {
    /// The snapshot's data directory.
    pub data: PathBuf,
    /// The major of its cluster when it is not the backup file's (a physical backup's).
    pub major: Option<u32>,
}

/// What a target made from a physical backup starts from: its data directory, restored and
/// verified (`restore::physical`) with the archived WAL recovery reads in `pg_wal` (the sandbox
/// runs no `restore_command`, which needs a shell), and the recovery settings.
#[derive(Debug, Clone)]
pub(crate) struct PhysicalData {
    /// The PostgreSQL major that wrote the backup (its `PG_VERSION`).
    pub major: u32,
    /// The data directory, owned by the target's server user; moved into the target's folder.
    pub data: PathBuf,
    /// `recovery_target_*` and the like, as `-c` settings.
    pub settings: Vec<(String, String)>,
}
