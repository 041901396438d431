//! A backup in S3 or behind an HTTPS URL reused without downloading it: when the object its
//! store describes now (S3: ETag, version, size and the time the store wrote it; HTTPS: a
//! strong ETag, Last-Modified and size) is the one a drill downloaded and read whole before,
//! and a snapshot of its restore serves, the drill clones the snapshot and says so. Any other
//! answer (another identity, none, an error) downloads the backup as usual.

use std::path::PathBuf;

use super::super::{Drill, PhaseError};
use super::{Restored, Serving};
use crate::outcome::{Event, Phase};
use crate::snapshot::digests;
use crate::source::{self, Backup};
use crate::units::human_size;

impl Drill<'_> {
    /// The snapshot of the remote backup the scenario names to clone, the backup not downloaded
    /// again (its fetch and verify phases say so); `None` when the drill fetches it.
    pub(in crate::drill) async fn remote_snapshot(&self) -> Option<Serving> {
        let options = self.snapshots.as_ref().filter(|o| o.reuse)?;
        // An encrypted dump's keys are proven by its verify, whatever a snapshot holds.
        if !self.scenario.source.decrypt.is_empty() {
            return None;
        }
        let remote = match source::probe(&self.scenario.source, &self.redactor).await {
            Ok(remote) => remote?,
            Err(e) => {
                tracing::debug!("the backup is downloaded: {e}");
                return None;
            }
        };
        let sha256 = digests::known_remote(&options.store.dir, &remote.location, &remote.identity)?;
        let listed = options.store.list().ok()?;
        for candidate in listed.iter().filter(|l| l.meta.key.backup_sha256 == sha256) {
            let Ok(restored) = serde_json::from_value::<Restored>(candidate.meta.restored.clone()) else { continue };
            let major = restored.backup.as_ref().and_then(|b| b.source_version.as_deref());
            let major = major.and_then(crate::pg::major_of_version_text);
            let Ok(Some(key)) = self.snapshot_key_of(&sha256, major).await else { continue };
            if key != candidate.meta.key {
                continue;
            }
            let held = self.find_snapshot(&key)?;
            let backup = Backup {
                location: remote.location.clone(),
                path: PathBuf::new(),
                size: remote.size,
                modified: remote.modified,
                previous: None,
                wal_archive: None,
                keys: Vec::new(),
                remote: Some(remote.identity.clone()),
            };
            let fetched = format!(
                "{} ({}), not downloaded: the store describes it as it did when drill {} downloaded it and read it whole ({})",
                remote.location,
                human_size(remote.size),
                held.meta.drill_id,
                remote.identity
            );
            self.phase(Phase::Fetch, async { Ok::<_, PhaseError>(((), fetched)) }).await;
            let mut info = restored.backup.unwrap_or_default();
            info.location = remote.location.clone();
            info.size_bytes = remote.size;
            info.modified = remote.modified;
            info.sha256 = sha256.clone();
            self.events.emit(Event::Backup(info));
            let verified = format!(
                "sha256 {}…, known: drill {} verified these bytes in full and restored them",
                &sha256[..12.min(sha256.len())],
                held.meta.drill_id
            );
            self.phase(Phase::Verify, async { Ok::<_, PhaseError>(((), verified)) }).await;
            return Some(Serving { backup, held, major });
        }
        None
    }
}
