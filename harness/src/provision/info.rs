//! What the reports say about a target: its kind, image, address, version, settings and
//! isolation ([`TargetInfo`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Isolation;

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
