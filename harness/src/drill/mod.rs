//! A drill: the phases of DESIGN.md run in order, each reported as an event. Verify and
//! provision run side by side (reading a large backup and starting a server take similar
//! time). A failed phase stops the drill; teardown always runs, also after an error or an
//! interruption, and the reports are always written.

mod limits;
mod physical;
mod snapshot;
mod teardown;

pub use snapshot::SnapshotOptions;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::app::{self, AppHandle};
use crate::catalog::{CatalogError, Fingerprint};
use crate::check::{self, CheckResult};
use crate::dump::DumpSummary;
use crate::dump::Format;
use crate::error::error_chain;
use crate::migrate;
use crate::outcome::{DrillRecord, Event, Events, Phase, PhaseRecord, PhaseStatus, Reporter, RunnerInfo, ScenarioInfo};
use crate::provision::{self, ProvisionContext, Target, Teardown};
use crate::report::{self, ReportError, ReportPaths};
use crate::restore::preflight::PreflightReport;
use crate::restore::{self, RestoreStats};
use crate::scenario::{Scenario, ScenarioError};
use crate::secret::Redactor;
use crate::secret::Secret;
use crate::source::verify::{self, Verified, VerifyError};
use crate::source::{self, Backup, BackupInfo, read};
use limits::{Limits, Stop};

/// Where a drill writes its reports.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Reports go to `<reports_root>/<scenario>/<UTC timestamp>/`...
    pub reports_root: PathBuf,
    /// ...unless this names the exact folder.
    pub out_dir: Option<PathBuf>,
    /// Drill this backup instead of the scenario's source.
    pub backup: Option<PathBuf>,
    /// Apply this globals file instead of the scenario's.
    pub globals: Option<PathBuf>,
    /// Capture a baseline from the restored database into this file instead of running the
    /// scenario's checks.
    pub baseline_out: Option<PathBuf>,
    /// Run only the checks of these kinds (`api` for the application's requests).
    pub only_kinds: Option<Vec<String>>,
    /// Whether to leave the target running after the drill instead of removing it.
    pub keep: Keep,
    /// Hand the restored database to this instead of running the scenario's checks (`pgdrill
    /// init`); preflight then creates the roles the dump names that nothing else creates.
    pub inspect: Option<Arc<dyn Inspect>>,
    /// Keep the restore as a snapshot, or clone one instead of restoring (`--snapshot`,
    /// `--reuse`).
    pub snapshots: Option<SnapshotOptions>,
    /// Sign the drill's evidence with this key (or say in the reports why the key given cannot).
    pub signing: Option<crate::evidence::sign::Signing>,
}

/// When a drill leaves its target running for someone to look into (`--keep`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Keep {
    /// Always remove it (the default).
    #[default]
    Never,
    /// Keep it whatever the verdict.
    Always,
    /// Keep it when the drill failed.
    OnFailure,
}

/// Reads a restored database in place of a scenario's checks, and says in a line what it did
/// (the checks phase's summary): `pgdrill init`.
pub trait Inspect: Send + Sync + std::fmt::Debug {
    fn inspect<'a>(
        &'a self,
        restored: Restored<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<String, Box<dyn std::error::Error + Send + Sync>>>;
}

/// The restored (or recovered) database, as the checks would see it.
pub struct Restored<'a> {
    pub(crate) target: &'a Target,
    /// The database the checks would run in.
    pub database: &'a str,
    /// What the dump held (empty for a physical backup).
    pub dump: &'a DumpSummary,
    pub(crate) redactor: &'a Redactor,
    /// The roles preflight created: the scenario's, its globals file's, and those the dump named
    /// that nothing else created.
    pub roles_created: Vec<String>,
}

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            reports_root: PathBuf::from("reports"),
            out_dir: None,
            backup: None,
            globals: None,
            baseline_out: None,
            only_kinds: None,
            keep: Keep::Never,
            inspect: None,
            snapshots: None,
            signing: None,
        }
    }
}

/// What a drill leaves: its record and where its reports are.
pub struct DrillOutcome {
    pub record: DrillRecord,
    pub reports: Result<ReportPaths, ReportError>,
    /// Why the scenario could not be used, with its source location, for a rich display.
    pub scenario_error: Option<ScenarioError>,
    /// The target, when it was kept running after the drill, and how to reach it.
    pub kept: Option<provision::kept::Kept>,
    /// What became of the snapshot the drill made (`--snapshot`), in a line.
    pub snapshot: Option<String>,
}

impl DrillOutcome {
    /// A drill passes when every phase and every check passed and its reports were written.
    pub fn passed(&self) -> bool {
        self.record.verdict == crate::outcome::DrillVerdict::Pass && self.reports.is_ok()
    }
}

/// Runs the drill of the scenario file at `path`. `cancel` interrupts it (Ctrl-C); teardown
/// and reports still happen. A scenario that cannot be used fails the drill's first phase.
pub async fn run(
    path: &Path,
    options: &DrillOptions,
    reporters: Vec<Box<dyn Reporter>>,
    cancel: CancellationToken,
) -> DrillOutcome {
    let started = Instant::now();
    let started_at = OffsetDateTime::now_utc();
    let capturing = options.baseline_out.is_some() || options.inspect.is_some();
    let mut loaded = if capturing { Scenario::load_without_checks(path) } else { Scenario::load(path) };
    if let Ok(scenario) = &mut loaded {
        scenario.restore.create_missing_roles = options.inspect.is_some();
        if let Some(backup) = &options.backup {
            scenario.override_backup(backup);
        }
        if let Some(globals) = &options.globals {
            scenario.restore.globals = Some(globals.clone());
        }
        if let Some(kinds) = &options.only_kinds {
            scenario.checks.retain(|c| kinds.iter().any(|k| k == c.kind()));
            if !kinds.iter().any(|k| k == crate::app::request::KIND) {
                scenario.app = None;
            }
        }
    }
    let resolve_time = started.elapsed();
    let info = match &loaded {
        Ok(scenario) => ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            file: scenario.file.display().to_string(),
            sha256: scenario.file_sha256.clone(),
            tags: scenario.tags.clone(),
            trusted: scenario.source.trusted.clone(),
            objectives: scenario.objectives,
        },
        Err(_) => unusable_scenario_info(path),
    };
    let drill_id = hex::encode(rand::random::<[u8; 16]>());
    let events = Events::new(reporters);
    events.emit(Event::Started(Box::new(DrillRecord::new(drill_id.clone(), info, RunnerInfo::detect(), started_at))));
    events.emit(Event::PhaseStarted { phase: Phase::Resolve, at: started_at });
    let (status, summary, error) = match &loaded {
        Ok(s) => (PhaseStatus::Passed, format!("scenario `{}`: {} checks configured", s.name, s.checks.len()), None),
        Err(e) => (PhaseStatus::Failed, String::new(), Some(error_chain(e))),
    };
    events.emit(Event::PhaseFinished(PhaseRecord {
        phase: Phase::Resolve,
        status,
        started_at: Some(started_at),
        duration: resolve_time,
        summary,
        error,
    }));
    match loaded {
        Ok(scenario) => {
            let past = report::history::of_scenario(&history_path(options, &scenario.name), &scenario.name);
            let drill = Drill {
                scenario: &scenario,
                events,
                redactor: Redactor::new(),
                drill_id,
                started,
                checks_done: AtomicUsize::new(0),
                api_done: AtomicUsize::new(0),
                baseline_out: options.baseline_out.clone(),
                inspect: options.inspect.clone(),
                limits: Limits::new(scenario.deadlines, scenario.objectives.rto, started),
                // A baseline or `init` reads a restore of its own, and keeps none.
                snapshots: snapshot::options(options.snapshots.as_ref(), scenario.snapshot).filter(|_| !capturing),
                snapshot_state: Default::default(),
                trails: report::history::trails(&past),
                previous_kind: report::history::previous_kind(&past),
            };
            drill.run(options, cancel).await
        }
        Err(error) => {
            events.emit(Event::Finished { at: OffsetDateTime::now_utc(), interrupted: false });
            let (record, reports) = write_reports(&events, options);
            DrillOutcome { record, reports, scenario_error: Some(error), kept: None, snapshot: None }
        }
    }
}

/// How a drill whose scenario cannot be used is named in its reports: the file's name, made
/// safe for a folder.
fn unusable_scenario_info(path: &Path) -> ScenarioInfo {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut name: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    if name.is_empty() || name.starts_with('.') {
        name = format!("scenario{name}");
    }
    let sha256 = std::fs::read(path).map(|b| hex::encode(Sha256::digest(&b))).unwrap_or_default();
    ScenarioInfo {
        name,
        description: None,
        file: path.display().to_string(),
        sha256,
        tags: Vec::new(),
        trusted: None,
        objectives: Default::default(),
    }
}

/// The history file the drill's reports will be appended to.
fn history_path(options: &DrillOptions, scenario: &str) -> PathBuf {
    match &options.out_dir {
        Some(dir) => report::history::path_for(dir),
        None => options.reports_root.join(scenario).join("history.jsonl"),
    }
}

fn write_reports(events: &Events, options: &DrillOptions) -> (DrillRecord, Result<ReportPaths, ReportError>) {
    let mut record = events.record().expect("the record exists once the drill has started");
    record.signature = options.signing.as_ref().map(crate::evidence::sign::Signing::info);
    let dir = options.out_dir.clone().unwrap_or_else(|| report::drill_dir(&options.reports_root, &record));
    let signer = options.signing.as_ref().and_then(crate::evidence::sign::Signing::signer);
    let reports = report::write_all(&record, &dir, signer);
    (record, reports)
}

/// How a phase did not succeed.
enum PhaseError {
    /// It failed: the drill fails. The error stays typed until the phase is recorded, where it
    /// is rendered once, with its causes, and redacted.
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// It was stopped because another phase failed; it is reported as skipped, with the reason.
    Stopped(String),
}

impl PhaseError {
    fn error(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        PhaseError::Failed(Box::new(error))
    }
}

type PhaseResult<T> = Result<(T, String), PhaseError>;

/// What teardown must undo: the provisioned target, and whether a start may have been cut off
/// before it handed its container over.
#[derive(Default)]
struct Cleanup {
    teardown: Option<Teardown>,
    provision_started: bool,
    /// The application, while it runs.
    app: Option<AppHandle>,
    /// The database the drill restores (or restored) into, once a target is there.
    database: Option<String>,
}

struct Drill<'a> {
    scenario: &'a Scenario,
    events: Events,
    redactor: Redactor,
    drill_id: String,
    started: Instant,
    /// How many of the scenario's checks have run.
    checks_done: AtomicUsize,
    /// How many of the app's requests have run.
    api_done: AtomicUsize,
    /// Where to capture a baseline of the restored database, instead of running checks.
    baseline_out: Option<PathBuf>,
    /// What reads the restored database instead of the checks.
    inspect: Option<Arc<dyn Inspect>>,
    /// Each phase's deadline, the RTO and the target's disk limit.
    limits: Limits,
    /// Whether the drill keeps or reuses snapshots, and where.
    snapshots: Option<SnapshotOptions>,
    /// The snapshot it makes, the one it clones.
    snapshot_state: snapshot::State,
    /// Append-only tables' key ranges, as the scenario's history last recorded them.
    trails: crate::fingerprint::Trails,
    /// The kind of backup the scenario's previous drill accepted, which verify compares with.
    previous_kind: Option<source::kind::Previous>,
}

impl Drill<'_> {
    async fn run(self, options: &DrillOptions, cancel: CancellationToken) -> DrillOutcome {
        // Values the app's templates read from the environment are secrets from the start.
        for var in self.scenario.app.iter().flat_map(|app| app.env_names()) {
            if let Ok(value) = std::env::var(&var) {
                self.redactor.register(&Secret::new(value));
            }
        }
        let mut cleanup = Cleanup::default();
        let interrupted = {
            let body = self.body(&mut cleanup);
            tokio::pin!(body);
            tokio::select! {
                _ = &mut body => false,
                _ = cancel.cancelled() => true,
            }
        };
        self.skip_remaining_checks(if interrupted { "the drill was interrupted" } else { "an earlier phase failed" });
        // An interrupted drill is stopped, not kept.
        let keep = !interrupted
            && match options.keep {
                Keep::Never => false,
                Keep::Always => true,
                Keep::OnFailure => self
                    .events
                    .record()
                    .is_some_and(|r| crate::outcome::verdict_if_finished(&r) != crate::outcome::DrillVerdict::Pass),
            };
        let mut kept = None;
        if cleanup.provision_started {
            self.measure_clone().await;
            kept = self.teardown(cleanup, keep).await;
        }
        // The clone is gone: the snapshot may be evicted again.
        drop(self.snapshot_state.held.lock().unwrap_or_else(|p| p.into_inner()).take());
        // Downloads live only as long as the drill.
        let _ = tokio::fs::remove_dir_all(self.work_dir()).await;
        self.events.emit(Event::Finished { at: OffsetDateTime::now_utc(), interrupted });
        let (record, reports) = write_reports(&self.events, options);
        let passed = record.verdict == crate::outcome::DrillVerdict::Pass && reports.is_ok();
        let report_dir = reports.as_ref().ok().map(|r| r.dir.clone());
        let snapshot = self.settle_snapshot(passed, report_dir.as_deref()).await;
        DrillOutcome { record, reports, scenario_error: None, kept, snapshot }
    }

    /// Runs one phase: reports its start, runs `work`, reports how it ended.
    async fn phase<T>(&self, phase: Phase, work: impl Future<Output = PhaseResult<T>>) -> Option<T> {
        let at = OffsetDateTime::now_utc();
        self.events.emit(Event::PhaseStarted { phase, at });
        let started = Instant::now();
        let result = match self.limits.guard(phase, work).await {
            Ok(done) => Ok(done),
            Err(Stop::Other(e)) => Err(e),
            Err(Stop::Rto(e)) => {
                self.events.emit(Event::RtoPassed);
                Err(PhaseError::error(e))
            }
        };
        let (status, summary, error, value) = match result {
            Ok((value, summary)) => (PhaseStatus::Passed, summary, None, Some(value)),
            Err(PhaseError::Failed(e)) => {
                (PhaseStatus::Failed, String::new(), Some(self.redactor.redact(&error_chain(&*e))), None)
            }
            Err(PhaseError::Stopped(why)) => {
                (PhaseStatus::Skipped, String::new(), Some(format!("stopped: {why}")), None)
            }
        };
        self.events.emit(Event::PhaseFinished(PhaseRecord {
            phase,
            status,
            started_at: Some(at),
            duration: started.elapsed(),
            summary: self.redactor.redact(&summary),
            error,
        }));
        value
    }

    /// The database is restored (or recovered) and ready for its checks: the recovery time.
    fn recovered(&self) {
        self.limits.recovered();
        self.events.emit(Event::Recovered { elapsed: self.started.elapsed() });
    }

    /// Where this drill keeps downloaded backups; removed when it ends.
    fn work_dir(&self) -> PathBuf {
        std::env::temp_dir().join(format!("pgdrill-{}", self.drill_id))
    }

    fn progress(&self, phase: Phase, message: &str, done: Option<u64>, total: Option<u64>) {
        self.events.emit(Event::Progress { phase, message: message.to_owned(), done, total });
    }

    async fn body(&self, cleanup: &mut Cleanup) {
        let restored = match self.remote_clone(cleanup).await {
            Some(cloned) => cloned,
            None => self.fetch_and_restore(cleanup).await,
        };
        let Some((target, database, dump)) = restored else { return };
        cleanup.database = Some(database.clone());
        self.after_restore(cleanup, &target, &database, &dump).await;
    }

    /// Fetch, then the restore (or recovery) of what was fetched: the target, the database the
    /// checks run in, and what the dump held.
    async fn fetch_and_restore(&self, cleanup: &mut Cleanup) -> Option<(Target, String, DumpSummary)> {
        let backup = self.phase(Phase::Fetch, self.fetch()).await?;
        let physical_only = self.scenario.source.wal_archive.is_some()
            || self.scenario.source.stanza.is_some()
            || self.scenario.source.set.is_some()
            || self.scenario.recovery.target != crate::scenario::RecoveryTarget::End;
        if source::physical::detect(&backup.path) {
            self.recover(cleanup, &backup).await
        } else if physical_only {
            let refuse = async {
                Err::<((), String), _>(PhaseError::error(std::io::Error::other(format!(
                    "`{}` is a pg_dump backup: `wal_archive`, `stanza`, `set` and `[recovery]` are for a physical backup (a pg_basebackup folder or a pgBackRest repository)",
                    backup.location
                ))))
            };
            self.phase(Phase::Verify, refuse).await;
            None
        } else {
            self.restore_dump(cleanup, &backup).await
        }
    }

    /// Verify, provision, preflight and restore of a pg_dump backup: the target, the database
    /// the checks run in, and what the dump held.
    async fn restore_dump(&self, cleanup: &mut Cleanup, backup: &Backup) -> Option<(Target, String, DumpSummary)> {
        let backup = backup.clone();

        // With snapshots, the backup's digest decides whether a snapshot serves: verify first.
        if self.snapshots.is_some() {
            if let Some(cloned) = self.quick_clone(cleanup, &backup).await {
                return cloned;
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
                return self.clone_of(cleanup, &backup, held, None).await;
            }
            let target = self.phase(Phase::Provision, self.provision(cleanup, &backup, None, None)).await?;
            let restored = self.restore_into(target, &backup, verified).await?;
            self.make_snapshot(&restored.0, key, &restored.1, &restored.2).await;
            return Some(restored);
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
        self.restore_into(target, &backup, verified).await
    }

    /// Preflight and restore of a verified pg_dump backup into a fresh target.
    async fn restore_into(
        &self,
        mut target: Target,
        backup: &Backup,
        verified: Verified,
    ) -> Option<(Target, String, DumpSummary)> {
        let backup = backup.clone();
        // The catalog's reference is taken on the fresh target while preflight runs.
        let (preflight, reference) = tokio::join!(
            self.phase(Phase::Preflight, self.preflight(&target, &backup, &verified)),
            restore::audit::before_restore(&target)
        );
        let (report, dump) = preflight?;
        let dump = &dump;
        target.info.server_version = report.server_version.clone();
        target.info.server_version_num = report.server_version_num;
        self.events.emit(Event::Target(target.info.clone()));
        self.events.emit(Event::Preflight(report));

        let restore = self.restore(&target, &backup, verified.format, dump, reference);
        let stats = self.phase(Phase::Restore, restore).await?;
        self.events.emit(Event::Restore(stats.clone()));
        self.recovered();

        // Checks run where the restore ended: the scenario's database, or, for a dump that
        // creates its own databases, the one named in the scenario if it is among them, else
        // the last one the dump connected to.
        let database = restore::phase::checks_database(&target, dump, &self.scenario.target.database, &stats);
        Some((target, database, dump.clone()))
    }

    /// Migrations, checks and the application on the restored or recovered database.
    async fn after_restore(&self, cleanup: &mut Cleanup, target: &Target, database: &str, dump: &DumpSummary) {
        let database = database.to_owned();
        let capturing = self.baseline_out.is_some() || self.inspect.is_some();
        match (&self.scenario.migrate, capturing) {
            (Some(spec), false) => {
                // Checks on a half-migrated database prove nothing: a failed migration stops here.
                let migrate = async {
                    let (info, summary) =
                        migrate::run(target, &database, spec, &self.redactor).await.map_err(PhaseError::error)?;
                    self.events.emit(Event::Migrate(info));
                    Ok(((), summary))
                };
                if self.phase(Phase::Migrate, migrate).await.is_none() {
                    return;
                }
            }
            (None, _) => self.not_configured(Phase::Migrate, "no [migrate]: the checks run on the backup as restored"),
            (Some(_), true) => self.not_configured(Phase::Migrate, "not run while capturing a baseline"),
        }
        match (&self.baseline_out, &self.inspect) {
            (Some(out), _) => {
                let source = format!("drill of scenario `{}` ({})", self.scenario.name, self.scenario.file.display());
                let capture = crate::baseline::capture_restored(target, &database, &source, out, &self.redactor);
                self.phase(Phase::Checks, async { Ok(((), capture.await.map_err(PhaseError::error)?)) }).await
            }
            (None, Some(inspect)) => {
                let roles_created =
                    self.events.record().and_then(|r| r.preflight).map(|p| p.roles_created).unwrap_or_default();
                let restored = Restored { target, database: &database, dump, redactor: &self.redactor, roles_created };
                self.phase(Phase::Checks, async {
                    Ok(((), inspect.inspect(restored).await.map_err(PhaseError::Failed)?))
                })
                .await
            }
            (None, None) => self.phase(Phase::Checks, self.checks(target, &database, dump)).await,
        };
        // The application runs whatever the checks found: an auditor wants both answers.
        match (&self.scenario.app, capturing) {
            (Some(app), false) => {
                let progress = |message: &str| self.progress(Phase::App, message, None, None);
                let on_result = |result: CheckResult| {
                    self.events.emit(Event::Check(result));
                    self.api_done.fetch_add(1, Ordering::Relaxed);
                };
                let run = app::run(app::phase::Run {
                    target,
                    database: &database,
                    spec: app,
                    drill_id: &self.drill_id,
                    redactor: &self.redactor,
                    slot: &mut cleanup.app,
                    progress: &progress,
                    on_result: &on_result,
                });
                self.phase(Phase::App, async {
                    let (info, result) = run.await;
                    if let Some(info) = info {
                        self.events.emit(Event::App(info));
                    }
                    Ok(((), result.map_err(PhaseError::error)?))
                })
                .await;
            }
            (None, _) => self.not_configured(Phase::App, "the scenario boots no application ([app])"),
            (Some(_), true) => self.not_configured(Phase::App, "not run while capturing a baseline"),
        }
    }

    /// Records a phase the scenario does not ask for.
    fn not_configured(&self, phase: Phase, why: &str) {
        self.events.emit(Event::PhaseFinished(PhaseRecord {
            phase,
            status: PhaseStatus::Skipped,
            started_at: None,
            duration: Duration::ZERO,
            summary: String::new(),
            error: Some(why.to_owned()),
        }));
    }

    async fn fetch(&self) -> PhaseResult<Backup> {
        let progress = |done: u64, total: Option<u64>| self.progress(Phase::Fetch, "downloading", Some(done), total);
        let choice = self.scenario.set_choice();
        let backup = source::fetch(&self.scenario.source, &self.work_dir(), &choice, &self.redactor, &progress)
            .await
            .map_err(PhaseError::error)?;
        self.events.emit(Event::Backup(BackupInfo {
            location: backup.location.clone(),
            size_bytes: backup.size,
            modified: backup.modified,
            ..BackupInfo::default()
        }));
        let summary = backup.summary();
        Ok((backup, summary))
    }

    async fn verify(&self, backup: &Backup, stop: Arc<AtomicBool>) -> PhaseResult<Verified> {
        // A verify stopped from outside (its deadline, the RTO) stops its reading thread too.
        struct StopOnDrop(Arc<AtomicBool>);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
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
            let result = verify::verify(&to_verify, expected.as_deref(), &progress, &stop);
            // A backup that fails to read is still identified by its digest.
            let sha256 = match &result {
                Err(VerifyError::Stopped) | Ok(_) => None,
                Err(_) => read::sha256_file(&to_verify.path).ok(),
            };
            (result, sha256)
        })
        .await
        .map_err(PhaseError::error)?;
        let mut verified = match result {
            (Ok(verified), _) => verified,
            (Err(VerifyError::Stopped), _) => {
                return Err(PhaseError::Stopped("the target could not be provisioned".into()));
            }
            (Err(error), sha256) => {
                self.events.emit(Event::Backup(BackupInfo {
                    location: backup.location.clone(),
                    size_bytes: backup.size,
                    modified: backup.modified,
                    sha256: sha256.unwrap_or_default(),
                    ..BackupInfo::default()
                }));
                return Err(PhaseError::error(error));
            }
        };
        let kind = source::kind::BackupKind::of_dump(&verified);
        verified.info.kind = Some(kind.clone());
        self.events.emit(Event::Backup(verified.info.clone()));
        let summary = format!("{}{}", verified.summary_line(), self.judge_kind(&kind)?);
        Ok((verified, summary))
    }

    /// The backup's kind against the one the scenario's previous drill accepted: what the verify
    /// summary adds, or a change the scenario does not say was intended.
    fn judge_kind(&self, kind: &source::kind::BackupKind) -> Result<String, PhaseError> {
        source::kind::judge(self.previous_kind.as_ref(), kind, &self.scenario.source.changed).map_err(PhaseError::error)
    }

    async fn provision(
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
        };
        let (target, handle) = provision::start(&self.scenario.target, &ctx).await.map_err(PhaseError::error)?;
        cleanup.teardown = Some(handle);
        cleanup.database = Some(target.database_for(&self.scenario.target.database));
        self.limits.watch(&target);
        self.events.emit(Event::Target(target.info.clone()));
        let summary = target.summary();
        Ok((target, summary))
    }

    /// Preflight; an archive is first read whole through the target's pg_restore, which says
    /// what it needs (a plain dump said so during verify).
    async fn preflight(
        &self,
        target: &Target,
        backup: &Backup,
        verified: &Verified,
    ) -> PhaseResult<(PreflightReport, DumpSummary)> {
        let progress = |message: &str| self.progress(Phase::Preflight, message, None, None);
        let required = self.scenario.required_extensions();
        let restore = &self.scenario.restore;
        let (report, dump, summary) =
            restore::phase::preflight(target, backup, verified, &required, restore, &self.redactor, &progress)
                .await
                .map_err(PhaseError::error)?;
        Ok(((report, dump), summary))
    }

    async fn restore(
        &self,
        target: &Target,
        backup: &Backup,
        format: Format,
        dump: &DumpSummary,
        reference: Result<Fingerprint, CatalogError>,
    ) -> PhaseResult<RestoreStats> {
        let reference = reference.map_err(PhaseError::error)?;
        let total = backup.size;
        let progress = |done: u64| self.progress(Phase::Restore, "restoring", Some(done), Some(total));
        let into = &self.scenario.target.database;
        let restore = &self.scenario.restore;
        Limits::fits(target, format, dump.bytes).map_err(PhaseError::error)?;
        restore::phase::restore(target, backup, format, dump, restore, into, &reference, &self.redactor, &progress)
            .await
            .map_err(PhaseError::error)
    }

    async fn checks(&self, target: &Target, database: &str, dump: &DumpSummary) -> PhaseResult<()> {
        let on_result = |mut result: CheckResult| {
            result.message = self.redactor.redact(&result.message);
            result.actual = self.redactor.redact(&result.actual);
            result.expected = self.redactor.redact(&result.expected);
            result.evidence = self.redactor.redact(&result.evidence);
            self.events.emit(Event::Check(result));
        };
        let on_done = || {
            self.checks_done.fetch_add(1, Ordering::Relaxed);
        };
        let inputs = check::Inputs {
            target,
            database,
            dump,
            redactor: &self.redactor,
            trails: &self.trails,
            login: &self.scenario.login,
        };
        let summary =
            check::run_all(&self.scenario.checks, inputs, &on_result, &on_done).await.map_err(PhaseError::error)?;
        Ok(((), summary))
    }

    /// Lists the checks that never ran, so every report shows every configured check.
    fn skip_remaining_checks(&self, reason: &str) {
        let done = self.checks_done.load(Ordering::Relaxed);
        for spec in self.scenario.checks.iter().skip(done) {
            self.events.emit(Event::Check(CheckResult::skipped(spec.kind(), &spec.label(), reason)));
        }
        if let (Some(app), None) = (&self.scenario.app, &self.baseline_out) {
            let done = self.api_done.load(Ordering::Relaxed);
            for request in app.requests.iter().skip(done) {
                self.events.emit(Event::Check(CheckResult::skipped(app::request::KIND, &request.name, reason)));
            }
        }
    }
}
