//! A follower's restore phase (`pgdrill follow`): the base backup's standby, started as a
//! drill's, replays the archive as it grows until it is stopped (`follow`); nothing of it is
//! promoted. A drill of "now" (`--drill-every`, SIGUSR1) is a drill of its own beside it: a copy
//! of the follower's cluster at a paused point (`follow::clone`), recovered to that point and
//! promoted on a target of its own, then checked as the scenario says, with its own report.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::follow::archive::{Source, StoreLayout};
use crate::follow::clone::{self, Cloned};
use crate::follow::{self, FollowOptions};
use crate::outcome::{BackupInfo, Event, Phase, RestoreStats};
use crate::provision::{PhysicalData, Target};
use crate::restore::physical::{PrepareError, Prepared};
use crate::source::physical::{Layout, pgbackrest};
use crate::source::s3::S3Spec;
use crate::source::{Backup, SourceLocation, WalArchiveLocation};

use super::{Cleanup, Drill, DrillOptions, PhaseError, RestoredDatabase};

/// A copy of a follower's cluster for a drill of "now" (`DrillOptions::of_follower`).
#[derive(Debug, Clone)]
pub(crate) struct OfFollower {
    pub cloned: Cloned,
    /// The follower's recovery settings (a standby with no target) and major.
    pub settings: Vec<(String, String)>,
    pub major: u32,
    /// The follower, in words: its archive and state folder.
    pub follower: String,
}

impl Drill<'_> {
    /// Follows the archive of `prepared` on `target` (its data directory `data`) in the restore
    /// phase, which passes when it was stopped with no fault standing; the drills of now it asks
    /// for run beside it, one at a time.
    pub(super) async fn follow(
        &self,
        options: &FollowOptions,
        target: &Target,
        backup: &Backup,
        prepared: &mut Prepared,
        data: Option<&Path>,
    ) {
        let (clones, mut asked) = mpsc::unbounded_channel::<Cloned>();
        let follower =
            format!("the follower of `{backup}` (state `{}`)", options.state.display(), backup = backup.location);
        let (settings, major) = (prepared.data.settings.clone(), prepared.data.major);
        let work = async {
            let following = prepared.following(data).map_err(PhaseError::error)?;
            let source = self.archive_source(prepared, backup, following.archive.clone()).map_err(PhaseError::error)?;
            let run = follow::Run {
                backup: &backup.location,
                scenario: &self.scenario.name,
                data,
                clones: Some(clones),
                notify: self.scenario.notify.as_ref(),
            };
            let say = |line: String| {
                let at = follow::rfc3339(std::time::SystemTime::now());
                eprintln!("{at} pgdrill follow: {}", self.redactor.redact(&line));
            };
            let followed =
                follow::follow(target, following, source, options, run, &say).await.map_err(PhaseError::error)?;
            Ok(((), followed.summary()))
        };
        let drills = async {
            while let Some(cloned) = asked.recv().await {
                let of = OfFollower { cloned, settings: settings.clone(), major, follower: follower.clone() };
                self.drill_of_now(options, of).await;
            }
        };
        tokio::join!(self.phase(Phase::Restore, work), drills);
    }

    /// Whether the follower can list the archive of `backup` again and again: not when the drill
    /// copied it once from where it cannot list it again (a folder over HTTPS, a base backup in S3
    /// with no `wal_archive`), as a follower of the copy would never see a new segment; a
    /// pgBackRest repository or a Barman server in S3 is listed there. Asked before the base
    /// backup is restored.
    pub(super) fn followable(&self, backup: &Backup) -> Result<(), PrepareError> {
        let source = &self.scenario.source;
        let listed_again = match &source.location {
            _ if source.wal_archive.is_some() => true,
            SourceLocation::S3(_) => {
                pgbackrest::is_repository(&backup.path) || crate::source::physical::barman::is_server(&backup.path)
            }
            SourceLocation::Url(_) => false,
            _ => true,
        };
        match listed_again {
            false => Err(PrepareError::Scenario(format!(
                "a follower lists its archive again and again, and the archive of `{}` was copied from its store once: follow a repository or server in a folder on this machine or in S3, or give `[source] wal_archive` (a folder or an s3:// prefix)",
                backup.location
            ))),
            true => Ok(()),
        }
    }

    /// Where the follower lists its archive again and again: the scenario's `wal_archive` prefix
    /// in S3, the archive of a pgBackRest repository or a Barman server in S3 (the new segments
    /// of either copied into the drill's copy of it, `copied`), a pgBackRest repository's archive
    /// folder, or an archive folder (a Barman server's `wals` too).
    fn archive_source(&self, prepared: &Prepared, backup: &Backup, copied: PathBuf) -> Result<Source, PrepareError> {
        let redactor = self.redactor.clone();
        let layout = match (&prepared.backup.layout, &prepared.backup.barman) {
            (Layout::PgBackRest(_), _) => StoreLayout::PgBackRest,
            (_, Some(_)) => StoreLayout::Barman,
            _ => StoreLayout::Flat,
        };
        Ok(match (&self.scenario.source.wal_archive, &self.scenario.source.location, layout) {
            (Some(WalArchiveLocation::S3(spec)), _, _) => {
                Source::S3 { spec: spec.clone(), redactor, mirror: copied, layout: StoreLayout::Flat }
            }
            (None, SourceLocation::S3(spec), StoreLayout::PgBackRest | StoreLayout::Barman) => {
                // The archive's folder in the bucket is where it is in the copy of the prefix.
                let relative = copied.strip_prefix(&backup.path).map_err(|_| {
                    PrepareError::Scenario(format!(
                        "the archive `{}` is not in the copy of `{}`",
                        copied.display(),
                        backup.location
                    ))
                })?;
                let key = format!("{}{}/", spec.key, relative.display());
                let spec = S3Spec { key, pattern: None, ..spec.clone() };
                Source::S3 { spec, redactor, mirror: copied, layout }
            }
            (_, _, StoreLayout::PgBackRest) => Source::PgBackRest(copied),
            _ => Source::Folder(copied),
        })
    }

    /// Runs the drill of a copy of the follower (its own drill, with its own report). Boxed: a
    /// drill within a drill's future.
    fn drill_of_now<'a>(&'a self, options: &'a FollowOptions, of: OfFollower) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let data = of.cloned.data.clone();
            let clone_options = DrillOptions {
                reports_root: options.reports.clone(),
                of_follower: Some(of),
                ..DrillOptions::default()
            };
            let reporters: Vec<Box<dyn crate::outcome::Reporter>> =
                vec![Box::new(crate::report::console::Console::new(false))];
            let cancel = tokio_util::sync::CancellationToken::new();
            super::run(&self.scenario.file, &clone_options, reporters, cancel).await;
            // Moved into the clone's target, unless it never started.
            let _ = tokio::fs::remove_dir_all(&data).await;
        })
    }

    /// The database of a drill of now: the follower's copy, recovered to the point it was
    /// copied at and promoted, its built-ins audited. The phases before provision are the
    /// follower's (its base backup was verified when it started).
    pub(super) async fn clone_of_follower(&self, cleanup: &mut Cleanup, of: &OfFollower) -> Option<RestoredDatabase> {
        let location = format!("{}, copied at {}", of.follower, of.cloned.lsn);
        let why =
            format!("not run: the database is a copy of {location} (its base backup was verified when it started)");
        for phase in [Phase::Fetch, Phase::Verify, Phase::Preflight] {
            self.not_configured(phase, &why);
        }
        self.events.emit(Event::Backup(BackupInfo {
            location: location.clone(),
            format: "a follower's copy".into(),
            source_version: Some(of.major.to_string()),
            ..BackupInfo::default()
        }));
        let backup = Backup {
            location,
            path: of.cloned.data.clone(),
            size: 0,
            modified: None,
            previous: None,
            wal_archive: None,
            keys: Vec::new(),
            remote: None,
        };
        let physical = PhysicalData { major: of.major, data: of.cloned.data.clone(), settings: of.settings.clone() };
        let target = self.phase(Phase::Provision, self.provision(cleanup, &backup, Some(&physical), None)).await?;
        let database = self.scenario.target.database.clone();
        let recovery = async {
            let timeline = clone::promoted_at(&target, &of.cloned.lsn, self.scenario.recovery.timeout)
                .await
                .map_err(PhaseError::error)?;
            let catalog = self.audit_recovered(&target, &database, of.major).await?;
            let summary = format!(
                "recovered the follower's copy to {} and promoted it on timeline {timeline}, ready {:.1} s after it was asked for (replay paused {:.0} ms for the copy); {}",
                of.cloned.lsn,
                of.cloned.asked.elapsed().as_secs_f64(),
                of.cloned.paused.as_secs_f64() * 1000.0,
                catalog.summary()
            );
            Ok((catalog, summary))
        };
        let catalog = self.phase(Phase::Restore, recovery).await?;
        self.events.emit(Event::Restore(RestoreStats {
            database: database.clone(),
            catalog: Some(catalog),
            ..RestoreStats::default()
        }));
        self.recovered();
        Some(RestoredDatabase { target, database, dump: Default::default() })
    }
}
