//! A fresh cluster of the image the target runs, for the catalog audit's references (a
//! recovered cluster's built-ins, a restored dump's extension members): started only when this
//! machine's cache lacks the reference, under a name and folder of its own beside the target's,
//! and removed after.

use super::Drill;
use crate::outcome::Phase;
use crate::provision::{self, ProvisionContext, Target, TargetError, Teardown};
use crate::scenario::{TargetKind, TargetSpec};

/// How to start a fresh cluster of the image a drill's target runs.
pub(super) struct FreshCluster<'d, 'a> {
    drill: &'d Drill<'a>,
    drill_id: String,
    scenario: String,
    spec: TargetSpec,
    major: Option<u32>,
}

impl<'a> Drill<'a> {
    /// A fresh cluster of the very image `target` runs (for a container target; a local or pod
    /// target's binaries are the same); `major` is the backup's.
    pub(super) fn fresh_cluster(&self, target: &Target, major: Option<u32>) -> FreshCluster<'_, 'a> {
        let mut spec = self.scenario.target.clone();
        if let TargetKind::Container(container) = &mut spec.kind {
            container.image = target.info.image.clone().or(container.image.take());
            container.version = None;
        }
        FreshCluster {
            drill: self,
            // A start cut off drops the handle, which removes its container.
            drill_id: format!("ca7a{}", self.drill_id.get(4..).unwrap_or_default()),
            scenario: format!("{}-catalog", self.scenario.name),
            spec,
            major,
        }
    }
}

impl FreshCluster<'_, '_> {
    /// Starts it. Not started until awaited: a caller that finds its reference cached never
    /// starts it.
    pub(super) async fn start(&self) -> Result<(Target, Teardown), TargetError> {
        let progress = |message: &str| self.drill.progress(Phase::Restore, message, None, None);
        let ctx = ProvisionContext {
            drill_id: &self.drill_id,
            scenario: &self.scenario,
            redactor: &self.drill.redactor,
            progress: &progress,
            backup: None,
            trusted: self.drill.scenario.source.trusted.as_deref(),
            backup_major: self.major,
            physical: None,
            clone: None,
            // Read once and removed.
            restarts: false,
        };
        provision::start(&self.spec, &ctx).await
    }
}
