//! The work of each phase up to the restore, as the drill runs it: fetch, verify (with the
//! backup's kind judged against the previous drill's), provision, preflight and the restore.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::limits::Limits;
use super::{Cleanup, Drill, PhaseError, PhaseResult};
use crate::catalog::{CatalogError, Fingerprint};
use crate::dump::{DumpSummary, Format};
use crate::outcome::BackupInfo;
use crate::outcome::PreflightReport;
use crate::outcome::RestoreStats;
use crate::outcome::{Event, Phase};
use crate::provision::{self, ProvisionContext, Target};
use crate::restore;
use crate::source::onepass::OnePass;
use crate::source::verify::{self, Verified, VerifyError};
use crate::source::{self, Backup, read};

/// Sets its flag when dropped: a phase stopped from outside (its deadline, the RTO) stops the
/// thread reading the backup too.
pub(super) struct StopOnDrop(pub Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The sha256 of a backup file that did not verify (empty if it cannot be read): it is still
/// identified by its digest.
pub(super) async fn digest_of(backup: &Backup) -> String {
    let path = backup.path.clone();
    tokio::task::spawn_blocking(move || read::sha256_file(&path).ok()).await.ok().flatten().unwrap_or_default()
}

/// A dump's restore that is its verify's read too: the read, which sends its verdict to the
/// verify phase, and the verify phase's word that the verdict was judged and passed (the whole
/// dump's verification, dropped unsent when it did not).
pub(super) struct ReadOnce {
    pub read: OnePass,
    pub trust: tokio::sync::oneshot::Receiver<Verified>,
}

impl Drill<'_> {
    pub(super) async fn fetch(&self) -> PhaseResult<Backup> {
        let progress = |done: u64, total: Option<u64>| self.progress(Phase::Fetch, "downloading", Some(done), total);
        let choice = self.scenario.set_choice();
        let (backup, plan) = source::fetch(&self.scenario.source, &self.work_dir(), &choice, &self.redactor, &progress)
            .await
            .map_err(|e| match e.says_nothing_of_the_backup() {
                true => PhaseError::could_not_run(e),
                false => PhaseError::error(e),
            })?;
        self.events.emit(Event::Backup(BackupInfo {
            location: backup.location.clone(),
            size_bytes: backup.size,
            modified: backup.modified,
            ..BackupInfo::default()
        }));
        let mut summary = backup.summary();
        if let Some(plan) = plan {
            summary = format!(
                "sampled: backup {} of the {} older than the newest ({}) by at most {}, drawn by seed {} (plan.json); {summary}",
                plan.index + 1,
                plan.candidates.len(),
                plan.newest.name,
                plan.within,
                plan.seed.value.get(..16).unwrap_or(&plan.seed.value),
            );
            self.events.emit(Event::Sampled(Box::new(plan)));
        }
        Ok((backup, summary))
    }

    pub(super) async fn verify(&self, backup: &Backup, stop: Arc<AtomicBool>) -> PhaseResult<Verified> {
        // A verify stopped from outside (its deadline, the RTO) stops its reading thread too.
        let _stop = StopOnDrop(stop.clone());
        let events = self.events.clone();
        let expected = self.scenario.source.expected_sha256.clone();
        let to_verify = backup.clone();
        let result = tokio::task::spawn_blocking(move || {
            let total = to_verify.size;
            let progress = |done: u64| {
                events.emit(Event::Progress {
                    phase: Phase::Verify,
                    message: "reading".into(),
                    done: Some(done),
                    total: Some(total),
                })
            };
            verify::verify(&to_verify, expected.as_deref(), &progress, &stop)
        })
        .await
        .map_err(PhaseError::error)?;
        let verified = self.judge_verified(backup, result).await?;
        let kind = self.judge_kind(verified.info.kind.as_ref().expect("judged"))?;
        let summary = format!("{}{kind}; read whole before its restore", verified.summary_line());
        Ok((verified, summary))
    }

    /// A verification's end: a backup that failed is still identified by its digest; one that
    /// passed has its kind recorded.
    pub(super) async fn judge_verified(
        &self,
        backup: &Backup,
        result: Result<Verified, VerifyError>,
    ) -> Result<Verified, PhaseError> {
        let mut verified = match result {
            Ok(verified) => verified,
            Err(VerifyError::Stopped) => {
                return Err(PhaseError::Stopped("the target could not be provisioned".into()));
            }
            Err(error) => {
                self.events.emit(Event::Backup(BackupInfo {
                    location: backup.location.clone(),
                    size_bytes: backup.size,
                    modified: backup.modified,
                    sha256: digest_of(backup).await,
                    ..BackupInfo::default()
                }));
                return Err(PhaseError::error(error));
            }
        };
        verified.info.kind = Some(crate::outcome::BackupKind::of_dump(&verified));
        self.events.emit(Event::Backup(verified.info.clone()));
        Ok(verified)
    }

    /// The backup's kind against the one the scenario's previous drill accepted: what the verify
    /// summary adds, or a change the scenario does not say was intended.
    pub(super) fn judge_kind(&self, kind: &crate::outcome::BackupKind) -> Result<String, PhaseError> {
        if self.scenario.source.given {
            return Ok("; named on the command line: its kind is not compared with the scenario's drills".into());
        }
        source::kind::judge(self.previous_kind.as_ref(), kind, &self.scenario.source.changed).map_err(PhaseError::error)
    }

    pub(super) async fn provision(
        &self,
        cleanup: &mut Cleanup,
        backup: &Backup,
        physical: Option<&provision::PhysicalData>,
        clone: Option<&provision::CloneFrom>,
    ) -> PhaseResult<Target> {
        cleanup.provision_started = true;
        let progress = |message: &str| self.progress(Phase::Provision, message, None, None);
        let ctx = ProvisionContext {
            drill_id: &self.drill_id,
            scenario: &self.scenario.name,
            redactor: &self.redactor,
            progress: &progress,
            // Only an archive is read on the target's side, by its pg_restore (a clone's is not).
            backup: (physical.is_none() && clone.is_none() && read::is_archive(&backup.path, backup.keys.first()))
                .then_some(backup.path.as_path()),
            trusted: self.scenario.source.trusted.as_deref(),
            backup_major: match (physical, clone) {
                (Some(data), _) => Some(data.major),
                (None, Some(provision::CloneFrom { major: Some(major), .. })) => Some(*major),
                _ => read::source_major(&backup.path, backup.keys.first()),
            },
            physical,
            clone,
            restarts: self.may_keep
                || self.scenario.checks.iter().any(|c| c.offline())
                || self.snapshots.as_ref().is_some_and(|s| s.keep),
        };
        // A server started on the backup's own data (a physical backup, a snapshot's clone) may
        // fail to start because of that data.
        let on_backup_data = physical.is_some() || clone.is_some();
        if on_backup_data {
            self.limits.on_backup_data();
        }
        let (mut target, handle) = provision::start(&self.scenario.target, &ctx).await.map_err(|e| {
            match e.says_nothing_of_the_backup(on_backup_data) {
                true => PhaseError::could_not_run(e),
                false => PhaseError::error(e),
            }
        })?;
        // An application that comes through the socket: its programs are bridged there too.
        if self.scenario.login.transport == crate::check::login::Transport::Socket {
            target.tcp_relay = None;
        }
        cleanup.teardown = Some(handle);
        cleanup.database = Some(target.database_for(&self.scenario.target.database));
        self.limits.watch(&target);
        self.events.emit(Event::Target(target.info.clone()));
        let summary = target.summary();
        Ok((target, summary))
    }

    /// Preflight; an archive is first read through the target's pg_restore, which says what it
    /// needs (a plain dump said so during verify): whole, or its head when its restore reads it
    /// once (`read_once`).
    pub(super) async fn preflight(
        &self,
        target: &Target,
        backup: &Backup,
        read_once: bool,
        verified: &Verified,
    ) -> PhaseResult<(PreflightReport, DumpSummary)> {
        let progress = |message: &str| self.progress(Phase::Preflight, message, None, None);
        let required = self.scenario.required_extensions();
        let asked = restore::phase::Preflight {
            target,
            backup,
            read_once,
            verified,
            required_extensions: &required,
            spec: &self.scenario.restore,
            redactor: &self.redactor,
        };
        let (report, dump, summary) = restore::phase::preflight(asked, &progress).await.map_err(PhaseError::error)?;
        Ok(((report, dump), summary))
    }

    /// The restore; with `read_once`, its read verifies the dump too, and the phase ends only
    /// with the verify phase's verdict: a restore of a dump that did not verify is not trusted.
    /// Returns the whole dump's verification then.
    pub(super) async fn restore(
        &self,
        target: &Target,
        backup: &Backup,
        read_once: Option<ReadOnce>,
        format: Format,
        dump: &DumpSummary,
        reference: Result<Fingerprint, CatalogError>,
    ) -> PhaseResult<(RestoreStats, Option<Verified>)> {
        let reference = reference.map_err(PhaseError::error)?;
        let total = backup.size;
        let progress = |done: u64| self.progress(Phase::Restore, "restoring", Some(done), Some(total));
        let into = &self.scenario.target.database;
        let restore = &self.scenario.restore;
        Limits::fits(target, format, dump.bytes).map_err(PhaseError::error)?;
        let (one_pass, trust) = read_once.map(|r| (r.read, r.trust)).unzip();
        let asked = restore::phase::Restore {
            target,
            backup,
            one_pass,
            format,
            dump,
            spec: restore,
            into,
            redactor: &self.redactor,
        };
        let (stats, mut summary) =
            restore::phase::restore(asked, &reference, &progress).await.map_err(PhaseError::error)?;
        // The flags PostgreSQL acts on, and the extensions' members against a fresh cluster's.
        let checked = restore::phase::checks_database(target, dump, into, &stats);
        let fresh = self.fresh_cluster(target, Some(target.info.server_version_num / 10_000));
        if let Some(derived) =
            restore::audit::derived(target, &checked, Box::pin(fresh.start())).await.map_err(PhaseError::error)?
        {
            summary.push_str(&format!("; {}", derived.summary()));
        }
        let Some(trust) = trust else { return Ok(((stats, None), summary)) };
        match trust.await {
            Ok(verified) => Ok(((stats, Some(verified)), summary)),
            Err(_) => Err(PhaseError::error(restore::phase::PhaseError::Unverified)),
        }
    }
}
