//! The drill of a physical backup: verified and staged before anything starts, then a server
//! of the backup's own major recovers it and is promoted, and its built-ins are audited.

use crate::dump::DumpSummary;
use crate::outcome::BackupInfo;
use crate::outcome::BackupKind;
use crate::outcome::CatalogAudit;
use crate::outcome::Phase;
use crate::outcome::RestoreStats;
use crate::provision::Target;
use crate::restore::{self};
use crate::scenario::TargetKind;
use crate::source::Backup;

use super::{Cleanup, Drill, Event, Mismatch, PhaseError, PhaseResult, RestoredDatabase};

impl Drill<'_> {
    /// Verify, provision and recovery of a physical base backup: staged and verified before
    /// anything starts, then a server of the backup's own major recovers it (to the scenario's
    /// target, or through every archived segment) and is promoted; the checks run in the
    /// scenario's database of it.
    pub(super) async fn recover(&self, cleanup: &mut Cleanup, backup: &Backup) -> Option<RestoredDatabase> {
        // The toolbox of the verify phase is a container: teardown sweeps for it too.
        cleanup.provision_started = true;
        // A follower of an archive it cannot list again is refused before anything is restored.
        if self.follow.is_some()
            && let Err(e) = self.followable(backup)
        {
            let refused = async { Err::<((), String), _>(PhaseError::error(e)) };
            self.phase(Phase::Verify, refused).await;
            return None;
        }
        // An encrypted repository's passphrase is proven by its verify, whatever a snapshot holds.
        let encrypted = crate::source::physical::pgbackrest::is_encrypted(&backup.path);
        if !encrypted && let Some(serving) = self.physical_snapshot(backup, None).await {
            return self.clone_of(cleanup, serving).await;
        }
        let mut prepared = self.phase(Phase::Verify, self.verify_physical(backup)).await?;
        // The toolbox is removed beside what follows; teardown waits for it.
        cleanup.removals.extend(prepared.toolbox_removal.take());
        if encrypted && let Some(serving) = self.physical_snapshot(backup, Some(&prepared)).await {
            let cloned = self.clone_of(cleanup, serving).await;
            prepared.close().await;
            return cloned;
        }
        // Before its server starts: a target before the backup's end cannot be reached.
        let preflight =
            async { prepared.preflight(&self.scenario.recovery).map(|s| ((), s)).map_err(PhaseError::error) };
        self.phase(Phase::Preflight, preflight).await?;
        let target = self.phase(Phase::Provision, self.provision(cleanup, backup, Some(&prepared.data), None)).await?;
        let data = target.disk.as_ref().map(|d| d.live.clone());
        if let Some(follow) = &self.follow {
            self.follow(follow, &target, backup, &mut prepared, data.as_deref()).await;
            prepared.close().await;
            return None;
        }
        let database = self.scenario.target.database.clone();
        let recovery = async {
            let start = prepared.recovery_start(&self.scenario.recovery, data.as_deref()).map_err(PhaseError::error)?;
            let recovered = restore::physical::recovery::wait(&target, start, &self.redactor).await;
            prepared.close().await;
            let recovered = recovered.map_err(PhaseError::error)?;
            let catalog = self.audit_recovered(&target, &database, prepared.data.major).await?;
            let mut summary = format!("{}; {}", recovered.summary(), catalog.summary());
            // Its extensions' members are production's, updated along their own paths: only
            // the flags are compared.
            let derived = restore::audit::derived_flags(&target, &database).await.map_err(PhaseError::error)?;
            if let Some(derived) = derived {
                summary.push_str(&format!("; {}", derived.summary()));
            }
            Ok(((recovered, catalog), summary))
        };
        let (recovered, catalog) = self.phase(Phase::Restore, recovery).await?;
        let end_lsn = recovered.end_lsn.clone();
        self.events.emit(Event::Restore(RestoreStats {
            database: database.clone(),
            recovery: Some(recovered),
            catalog: Some(catalog),
            ..RestoreStats::default()
        }));
        self.recovered();
        let restored = RestoredDatabase { target, database, dump: DumpSummary::default() };
        self.keep_recovery(&restored, backup, &prepared, &end_lsn).await;
        Some(restored)
    }

    /// A recovered cluster's built-ins against a fresh cluster of the same image (started once
    /// per image, then cached): a backup whose built-ins lie fails the restore.
    pub(super) async fn audit_recovered(
        &self,
        target: &Target,
        database: &str,
        major: u32,
    ) -> Result<CatalogAudit, PhaseError> {
        let fresh = self.fresh_cluster(target, Some(major));
        let (reference, name) =
            restore::audit::fresh_cluster(target, fresh.start()).await.map_err(PhaseError::error)?;
        restore::audit::after_restore(target, &reference, &name, database).await.map_err(PhaseError::error)
    }

    /// Reads what a base backup is, checks its archive, stages its data directory and runs
    /// PostgreSQL's own tools over it, before any server starts.
    async fn verify_physical(&self, backup: &Backup) -> PhaseResult<restore::physical::Prepared> {
        let target = match &self.scenario.target.kind {
            TargetKind::Container(spec) => restore::physical::Where::Container(spec),
            TargetKind::Local(spec) => restore::physical::Where::Local(spec),
            TargetKind::Server(_) => {
                return Err(PhaseError::error(Mismatch::PhysicalOnServer));
            }
            TargetKind::Pod(spec) => restore::physical::Where::Pod(spec),
        };
        let progress = |message: &str| self.progress(Phase::Verify, message, None, None);
        let prepared = restore::physical::prepare(restore::physical::Request {
            drill_id: &self.drill_id,
            backup_dir: &backup.path,
            wal_archive: backup.wal_archive.as_deref(),
            tablespaces: &self.scenario.source.tablespaces,
            cipher_pass: self.scenario.source.cipher_pass.as_ref(),
            keys: &backup.keys,
            choice: self.scenario.set_choice(),
            recovery: &self.scenario.recovery,
            target,
            work: &self.work_dir(),
            redactor: &self.redactor,
            progress: &progress,
        })
        .await
        .map_err(PhaseError::error)?;
        let b = &prepared.backup;
        let kind = BackupKind::of_physical(b, prepared.repository.is_some());
        let (taken_at, taken_at_from) = prepared.recoverable_until();
        self.events.emit(Event::Backup(BackupInfo {
            location: backup.location.clone(),
            size_bytes: backup.size,
            modified: backup.modified,
            compression: b.compression().into(),
            format: b.format(),
            source_version: Some(b.major.to_string()),
            taken_at,
            taken_at_from,
            encryption: prepared.repository.as_ref().map(|_| restore::physical::ENCRYPTION.to_owned()),
            keys: prepared.repository.as_ref().map(|r| r.keys()).unwrap_or_default(),
            kind: Some(kind.clone()),
            ..BackupInfo::default()
        }));
        let summary = format!("{}{}", prepared.summary(), self.judge_kind(&kind)?);
        Ok((prepared, summary))
    }
}
