//! A pg_dump backup's way to a restored database: verify beside provision (or verify first,
//! when a snapshot may serve), then preflight and the restore; a plain dump is read once, its
//! restore's read verifying it (`onepass.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::snapshot::Serving;
use super::steps::ReadOnce;
use super::{Cleanup, Drill, Mismatch, PhaseError, RestoredDatabase};
use crate::outcome::{Event, Phase};
use crate::provision::Target;
use crate::restore;
use crate::source::verify::Verified;
use crate::source::{self, Backup};

impl Drill<'_> {
    /// Fetch, then the restore (or recovery) of what was fetched.
    pub(super) async fn fetch_and_restore(&self, cleanup: &mut Cleanup) -> Option<RestoredDatabase> {
        let backup = self.phase(Phase::Fetch, self.fetch()).await?;
        let physical_only = self.scenario.source.wal_archive.is_some()
            || self.scenario.source.stanza.is_some()
            || self.scenario.source.set.is_some()
            || self.scenario.recovery.target != crate::scenario::RecoveryTarget::End;
        if source::physical::detect(&backup.path) {
            self.recover(cleanup, &backup).await
        } else if physical_only {
            let refuse = async {
                Err::<((), String), _>(PhaseError::error(Mismatch::PhysicalSettingsOnDump {
                    location: backup.location.clone(),
                }))
            };
            self.phase(Phase::Verify, refuse).await;
            None
        } else {
            self.restore_dump(cleanup, &backup).await
        }
    }

    /// Verify, provision, preflight and restore of a pg_dump backup.
    pub(super) async fn restore_dump(&self, cleanup: &mut Cleanup, backup: &Backup) -> Option<RestoredDatabase> {
        let backup = backup.clone();

        // With snapshots, the backup's digest decides whether a snapshot serves: verify first.
        if self.snapshots.is_some() {
            if let Some(serving) = self.quick_snapshot(&backup).await {
                return self.clone_of(cleanup, serving).await;
            }
            let verified = self.phase(Phase::Verify, self.verify(&backup, Arc::default())).await?;
            self.remember_digest(&backup, &verified.info.sha256);
            let key = match self.snapshot_key(&verified.info.sha256, &backup).await {
                Ok(key) => key,
                Err(e) => {
                    self.phase(Phase::Provision, async { Err::<((), String), _>(e) }).await;
                    return None;
                }
            };
            if let Some(held) = key.as_ref().and_then(|key| self.find_snapshot(key)) {
                return self.clone_of(cleanup, Serving { backup, held, major: None }).await;
            }
            let target = self.phase(Phase::Provision, self.provision(cleanup, &backup, None, None)).await?;
            let restored = self.restore_into(target, &backup, verified, None).await?;
            self.make_snapshot(&restored, key).await;
            return Some(restored);
        }

        if self.one_pass(&backup) {
            return self.restore_one_pass(cleanup, &backup).await;
        }

        // Verify and provision side by side. A target that cannot start stops the verify (the
        // drill cannot go on); a backup that fails to verify lets the start finish, so that
        // teardown finds the container whole.
        let stop_verify = Arc::new(AtomicBool::new(false));
        let (verified, target) = {
            let verify = self.phase(Phase::Verify, self.verify(&backup, stop_verify.clone()));
            let provision = self.phase(Phase::Provision, self.provision(cleanup, &backup, None, None));
            tokio::pin!(verify, provision);
            tokio::select! {
                target = &mut provision => {
                    if target.is_none() {
                        stop_verify.store(true, Ordering::Relaxed);
                    }
                    (verify.await, target)
                }
                verified = &mut verify => (verified, provision.await),
            }
        };
        let (Some(verified), Some(target)) = (verified, target) else { return None };
        self.restore_into(target, &backup, verified, None).await
    }

    /// Preflight and restore of a verified pg_dump backup into a fresh target; with `read_once`,
    /// of a dump whose head verified, the restore's read verifying the rest.
    pub(super) async fn restore_into(
        &self,
        mut target: Target,
        backup: &Backup,
        verified: Verified,
        read_once: Option<ReadOnce>,
    ) -> Option<RestoredDatabase> {
        let backup = backup.clone();
        // The catalog's reference is taken on the fresh target while preflight runs.
        let (preflight, reference) = tokio::join!(
            self.phase(Phase::Preflight, self.preflight(&target, &backup, read_once.is_some(), &verified)),
            restore::audit::before_restore(&target)
        );
        let (report, head) = preflight?;
        target.info.server_version = report.server_version.clone();
        target.info.server_version_num = report.server_version_num;
        self.events.emit(Event::Target(target.info.clone()));
        self.events.emit(Event::Preflight(report));

        let restore = self.restore(&target, &backup, read_once, verified.format, &head, reference);
        let (stats, whole) = self.phase(Phase::Restore, restore).await?;
        // Read in one pass, the whole dump's summary is known now (preflight had its head's).
        let dump = &whole.map(|whole| whole.summary).unwrap_or(head);
        self.events.emit(Event::Restore(stats.clone()));
        self.recovered();

        // Checks run where the restore ended: the scenario's database, or, for a dump that
        // creates its own databases, the one named in the scenario if it is among them, else
        // the last one the dump connected to.
        let database = restore::phase::checks_database(&target, dump, &self.scenario.target.database, &stats);
        Some(RestoredDatabase { target, database, dump: dump.clone() })
    }
}
