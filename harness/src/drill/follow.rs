//! A follower's restore phase (`pgdrill follow`): the base backup's standby, started as a
//! drill's, replays the archive as it grows until it is stopped (`follow`); nothing is promoted,
//! so the scenario's checks do not run on it.

use std::path::Path;

use crate::follow::{self, FollowOptions};
use crate::outcome::Phase;
use crate::provision::Target;
use crate::restore::physical::Prepared;
use crate::source::Backup;

use super::{Drill, PhaseError};

impl Drill<'_> {
    /// Follows the archive of `prepared` on `target` (its data directory `data`) in the restore
    /// phase, which passes when it was stopped with no fault standing.
    pub(super) async fn follow(
        &self,
        options: &FollowOptions,
        target: &Target,
        backup: &Backup,
        prepared: &mut Prepared,
        data: Option<&Path>,
    ) {
        let work = async {
            let following = prepared.following(data).map_err(PhaseError::error)?;
            let started = follow::Started { backup: &backup.location, scenario: &self.scenario.name };
            let say = |line: String| {
                let at = follow::rfc3339(std::time::SystemTime::now());
                eprintln!("{at} pgdrill follow: {}", self.redactor.redact(&line));
            };
            let followed =
                follow::follow(target, following, options, started, &say).await.map_err(PhaseError::error)?;
            let summary = followed.summary();
            Ok(((), summary))
        };
        self.phase(Phase::Restore, work).await;
    }
}
