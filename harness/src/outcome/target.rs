//! The target as the record keeps it: its kind, image, address, version, settings and isolation
//! ([`TargetInfo`]), what its server saw from inside its sandbox, and a target kept after the
//! drill. `provision` fills them in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the reports say about the target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetInfo {
    /// `container` (the default), `local` (PostgreSQL's binaries on this machine), `pod`
    /// (the server's container beside pgdrill's), or `server` (an existing server).
    pub kind: String,
    /// The container's image; for a local or pod target, the folder of the PostgreSQL binaries
    /// it ran; none for an existing server.
    pub image: Option<String>,
    /// Package versions the image was built from.
    pub image_packages: Option<String>,
    /// The extensions the project's image carries beyond PostgreSQL's own (`vector age`; empty
    /// for PostgreSQL 15's, from Debian 12, which packages neither), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_extensions: Option<String>,
    /// Short container id.
    pub container: Option<String>,
    /// Where pgdrill reached the server: `socket in <folder>`, or an existing server's
    /// `host:port`.
    pub address: String,
    /// `SHOW server_version`; empty until preflight read it.
    pub server_version: String,
    /// `SHOW server_version_num` (`170002`); zero until preflight read it.
    pub server_version_num: u32,
    /// Server settings the drill set.
    pub settings: BTreeMap<String, String>,
    /// How the target was isolated from the machine that ran the drill.
    #[serde(default)]
    pub isolation: Option<Isolation>,
    /// What pgdrill's own sessions pin, so that the backup cannot change what its queries mean.
    #[serde(default)]
    pub session: Vec<String>,
    /// How a clone's data directory was made from its snapshot (reflinks, an overlay, a copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_layer: Option<String>,
}

impl TargetInfo {
    /// One line for the report about the settings pgdrill's sessions pin (`session`; drill.json
    /// lists them all).
    pub fn session_summary(&self) -> String {
        let shown = &self.session;
        let names = ["search_path", "role", "event_triggers", "restrict_nonsystem_relation_kind"];
        let named: Vec<&str> = shown
            .iter()
            .filter(|s| names.iter().any(|n| s.starts_with(&format!("{n} = "))))
            .map(String::as_str)
            .collect();
        format!(
            "pinned at login over the backup's database and role settings: {}, and {} more at PostgreSQL's defaults (drill.json lists them)",
            named.join(", "),
            shown.len() - named.len()
        )
    }

    /// The extensions of the project's images this target's image lacks (PostgreSQL 15's, from
    /// Debian 12), in words: `pgvector and Apache AGE`.
    pub fn lacks(&self) -> Option<String> {
        let carried = self.image_extensions.as_deref()?;
        let lacking: Vec<&str> = [("vector", "pgvector"), ("age", "Apache AGE")]
            .into_iter()
            .filter(|(name, _)| !carried.split_whitespace().any(|c| c == *name))
            .map(|(_, shown)| shown)
            .collect();
        (!lacking.is_empty()).then(|| lacking.join(" and "))
    }
}

/// How a target was isolated from the machine that ran the drill: what was asked of it, and what
/// the server saw from inside.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// SQL in the backup cannot reach beyond the target: a sandbox holds it (a container, or
    /// bubblewrap for local binaries), or the restore's role has no power over the server's
    /// machine. When false, the drill ran only because the scenario trusts its backup.
    pub contained: bool,
    /// The network the server has, and how pgdrill reaches it.
    pub network: String,
    /// Who the server runs as (an existing server: the restore's role, and its powers over
    /// the server's machine).
    pub user: String,
    /// The Linux capabilities the server keeps.
    pub capabilities: String,
    /// What of the machine's file system the server sees, and where it may write.
    pub filesystem: String,
    /// The programs the server can start (`COPY ... PROGRAM`, `archive_command`).
    pub programs: String,
    /// The limits it runs under: memory, processes, disk.
    pub limits: String,
    /// What the server reported about itself, read with SQL right after it started.
    pub observed: Option<Observed>,
}

/// What the server process sees from inside its sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Network interfaces (`/proc/net/dev`).
    pub interfaces: Vec<String>,
    /// Routes (`/proc/net/route`, without its header).
    pub routes: usize,
    /// The effective uid it runs as (`/proc/self/status`).
    pub uid: u32,
    /// Effective capabilities, as `/proc/self/status` writes them (hex).
    pub cap_eff: String,
    /// `NoNewPrivs` (`/proc/self/status`): no program it starts can gain privileges.
    pub no_new_privs: bool,
    /// Whether `/bin/sh` exists (COPY ... PROGRAM, archive_command and the like run through it).
    pub shell: bool,
    /// The folders the server writes (its data directory, its socket folders) that are on a
    /// `noexec` mount, as `/proc/self/mountinfo` says: the kernel refuses to map a library
    /// written there, so none a backup writes can be loaded.
    #[serde(default)]
    pub noexec: Vec<String>,
    /// Folders the server may see as writable and executable (a folder it writes whose mount is
    /// not `noexec`, the root of every other mount that is neither read-only nor `noexec`) where
    /// a write of its own was refused.
    #[serde(default)]
    pub unwritable: Vec<String>,
    /// Where the server could write a file and load it as native code: empty in a sandbox.
    #[serde(default)]
    pub exec_writable: Vec<String>,
}

/// What the reports say about a kept target: its name, never how to log in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptInfo {
    /// What `pgdrill clean NAME` takes.
    pub name: String,
    /// `container` or `server`.
    pub kind: String,
    /// The container's name, for a container target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The database the drill restored into.
    pub database: String,
    /// Where it answers: `127.0.0.1:PORT`, a socket folder, or the server's address.
    pub address: String,
    /// When it was kept (RFC 3339).
    pub kept_at: String,
}
