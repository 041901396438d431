//! The target as the record keeps it: its kind, image, address, version, settings and isolation
//! ([`TargetInfo`]), what its server saw from inside its sandbox, and a target kept after the
//! drill. `provision` fills them in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the reports say about the target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetInfo {
    pub kind: String,
    pub image: Option<String>,
    /// Package versions the image was built from.
    pub image_packages: Option<String>,
    /// The extensions the project's image carries beyond PostgreSQL's own (`vector age`; empty
    /// for PostgreSQL 15's, from Debian 12, which packages neither), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_extensions: Option<String>,
    /// Short container id.
    pub container: Option<String>,
    pub address: String,
    /// `SHOW server_version`.
    pub server_version: String,
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
    pub network: String,
    pub user: String,
    pub capabilities: String,
    pub filesystem: String,
    pub programs: String,
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
    pub uid: u32,
    /// Effective capabilities, as `/proc/self/status` writes them (hex).
    pub cap_eff: String,
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
