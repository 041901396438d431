//! A drill: the phases of DESIGN.md run in order, each reported as an event. Verify and
//! provision run side by side (reading a large backup and starting a server take similar
//! time). A failed phase stops the drill; teardown always runs, also after an error or an
//! interruption, and the reports are always written.

mod after;
mod dump;
mod follow;
mod fresh;
mod limits;
mod onepass;
mod options;
mod physical;
mod snapshot;
mod steps;
mod teardown;

pub use options::{DrillOptions, DrillOutcome, Keep};
pub(crate) use options::{Inspect, Restored};
pub(crate) use snapshot::SnapshotOptions;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::app::AppHandle;
use crate::check::CheckResult;
use crate::error::error_chain;
use crate::outcome::{DrillRecord, Event, Events, Phase, PhaseRecord, PhaseStatus, Reporter, RunnerInfo, ScenarioInfo};
use crate::provision::Teardown;
use crate::report::{self, ReportError, ReportPaths};
use crate::scenario::{Scenario, ScenarioError};
use crate::secret::Redactor;
use crate::secret::Secret;
use crate::source::{self};
use limits::{Limits, Stop};

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
    let loaded = load(path, options, started_at.date());
    let resolve_time = started.elapsed();
    let info = match &loaded {
        Ok(scenario) => scenario_info(scenario),
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
        inconclusive: false,
    }));
    match loaded {
        Ok(scenario) => {
            let past = crate::outcome::history::of_scenario(&history_path(options, &scenario.name), &scenario.name);
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
                limits: match options.follow {
                    // A follower's restore phase lasts until it is stopped, and promotes nothing.
                    Some(_) => Limits::new(scenario.deadlines.following(), None, started),
                    None => Limits::new(scenario.deadlines, scenario.objectives.rto, started),
                },
                follow: options.follow.clone(),
                of_follower: options.of_follower.clone(),
                // A baseline or `init` reads a restore of its own, and keeps none.
                snapshots: snapshot::options(options.snapshots.as_ref(), scenario.snapshot).filter(|_| !capturing),
                snapshot_state: Default::default(),
                trails: crate::outcome::history::trails(&past),
                previous_kind: crate::source::kind::previous_kind(&past),
                may_keep: options.keep != Keep::Never,
                verify_first: options.verify_first || scenario.source.verify_first,
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

/// The scenario at `path`, as the options change it: the backup or globals named on the command
/// line, the check kinds asked for, no checks at all when the restore is read by something else;
/// a sampled backup drawn on `day`.
fn load(path: &Path, options: &DrillOptions, day: time::Date) -> Result<Scenario, ScenarioError> {
    let capturing = options.baseline_out.is_some() || options.inspect.is_some();
    let mut scenario = if capturing { Scenario::load_without_checks(path) } else { Scenario::load(path) }?;
    scenario.restore.create_missing_roles = options.inspect.is_some();
    if let Some(backup) = &options.backup {
        scenario.override_backup(backup);
    } else {
        scenario.sample(options.sample_within.as_ref(), options.sample_seed.as_deref(), day)?;
    }
    // A follower's standby is never promoted: nothing of the checks' runs on it.
    if options.follow.is_some() {
        scenario.recovery.following = true;
        scenario.checks.clear();
        scenario.app = None;
    }
    if let Some(globals) = &options.globals {
        scenario.restore.globals = Some(globals.clone());
    }
    if let Some(share) = options.share {
        scenario.target.set_share(share);
    }
    if options.on_pod
        && let Some(pod) = crate::provision::spec::PodSpec::from_kind(&scenario.target.kind)
    {
        scenario.target.kind = crate::provision::spec::TargetKind::Pod(pod);
    }
    if let Some(kinds) = &options.only_kinds {
        scenario.checks.retain(|c| kinds.contains(&c.kind()));
        if !kinds.contains(&crate::outcome::CheckKind::Api) {
            scenario.app = None;
        }
    }
    Ok(scenario)
}

/// How the reports name the scenario.
fn scenario_info(scenario: &Scenario) -> ScenarioInfo {
    ScenarioInfo {
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        file: scenario.file.display().to_string(),
        sha256: scenario.file_sha256.clone(),
        tags: scenario.tags.clone(),
        trusted: scenario.source.trusted.clone(),
        objectives: scenario.objectives,
        control: scenario.control,
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
        control: None,
    }
}

/// The history file the drill's reports will be appended to: the one the options name, or the
/// one where its reports go (in `--out DIR` itself, so that drills into unrelated folders never
/// share a history).
fn history_path(options: &DrillOptions, scenario: &str) -> PathBuf {
    use crate::outcome::history;
    match (&options.history, &options.out_dir) {
        (Some(file), _) => file.clone(),
        (None, Some(dir)) => dir.join(history::NAME),
        (None, None) => history::under_root(&options.reports_root, scenario),
    }
}

fn write_reports(events: &Events, options: &DrillOptions) -> (DrillRecord, Result<ReportPaths, ReportError>) {
    let mut record = events.record().expect("the record exists once the drill has started");
    record.signature = options.signing.as_ref().map(crate::evidence::sign::Signing::info);
    if let (Some(share), Some(usage)) = (options.share, record.usage.as_mut()) {
        usage.drills_at_once = Some(share.jobs);
    }
    if let Some(backup) = record.backup.as_mut() {
        backup.given = options.backup.is_some();
    }
    let dir = options.out_dir.clone().unwrap_or_else(|| report::drill_dir(&options.reports_root, &record));
    let signer = options.signing.as_ref().and_then(crate::evidence::sign::Signing::signer);
    let history = history_path(options, &record.scenario.name);
    let reports = report::write_all(&record, &dir, &history, signer);
    (record, reports)
}

/// How a phase did not succeed.
enum PhaseError {
    /// It failed: the drill fails. The error stays typed until the phase is recorded, where it
    /// is rendered once, with its causes, and redacted.
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// It failed for a reason that says nothing about the backup (it could not be reached, the
    /// target could not start, teardown, such a phase's deadline): the drill fails, and the
    /// phase is recorded as inconclusive (`outcome::could_not_run`).
    CouldNotRun(Box<dyn std::error::Error + Send + Sync>),
    /// It was stopped because another phase failed; it is reported as skipped, with the reason.
    Stopped(String),
}

impl PhaseError {
    fn error(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        PhaseError::Failed(Box::new(error))
    }

    fn could_not_run(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        PhaseError::CouldNotRun(Box::new(error))
    }
}

type PhaseResult<T> = Result<(T, String), PhaseError>;

/// A scenario that asks of a backup what its kind cannot give: the drill fails in verify.
#[derive(Debug, thiserror::Error)]
enum Mismatch {
    #[error(
        "`{location}` is a pg_dump backup: `wal_archive`, `stanza`, `set` and `[recovery]` are for a physical backup (a pg_basebackup folder or a pgBackRest repository)"
    )]
    PhysicalSettingsOnDump { location: String },
    #[error(
        "a physical backup recovers on a container, local or pod target (its data directory is the backup's, a server's is its own): remove `[target] kind = \"server\"`"
    )]
    PhysicalOnServer,
}

/// A database ready for its checks: restored, recovered, or a snapshot's clone.
struct RestoredDatabase {
    /// The target it is on.
    target: crate::provision::Target,
    /// Where the checks run: the scenario's database, or for a dump that creates its own
    /// databases the one it names or else the last it created (`restore::phase::checks_database`).
    database: String,
    /// What the dump held (nothing, for a physical backup).
    dump: crate::dump::DumpSummary,
}

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
    /// Removals started beside the drill (a toolbox's): teardown waits for each.
    removals: Vec<tokio::task::JoinHandle<Result<(), crate::provision::TargetError>>>,
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
    /// Whether the target may be kept after the drill (`--keep`): keeping restarts its server.
    may_keep: bool,
    /// Whether a dump is verified whole before its restore (`--verify-first`, `[source]
    /// verify = "first"`), rather than by its restore's read.
    verify_first: bool,
    /// A follower's (`pgdrill follow`): its restore phase replays the archive until stopped.
    follow: Option<crate::follow::FollowOptions>,
    /// A drill of a copy of a follower's cluster, not of the scenario's backup.
    of_follower: Option<follow::OfFollower>,
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
        if !interrupted {
            self.events.emit(Event::ObjectivesJudged);
        }
        // An interrupted drill is stopped, not kept.
        let keep = !interrupted
            && match options.keep {
                Keep::Never => false,
                Keep::Always => true,
                Keep::OnFailure => !self.events.record().is_some_and(|r| crate::outcome::passes(&r)),
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
        let failed = |e: &(dyn std::error::Error + Send + Sync)| Some(self.redactor.redact(&error_chain(e)));
        let (status, summary, error, value, inconclusive) = match result {
            Ok((value, summary)) => (PhaseStatus::Passed, summary, None, Some(value), false),
            Err(PhaseError::Failed(e)) => (PhaseStatus::Failed, String::new(), failed(&*e), None, false),
            Err(PhaseError::CouldNotRun(e)) => (PhaseStatus::Failed, String::new(), failed(&*e), None, true),
            Err(PhaseError::Stopped(why)) => {
                (PhaseStatus::Skipped, String::new(), Some(format!("stopped: {why}")), None, false)
            }
        };
        self.events.emit(Event::PhaseFinished(PhaseRecord {
            phase,
            status,
            started_at: Some(at),
            duration: started.elapsed(),
            summary: self.redactor.redact(&summary),
            error,
            inconclusive,
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

    /// The phases: up to a database ready for its checks (restored, recovered, or a snapshot's
    /// clone), then what runs on it. A phase that fails has said why; the drill stops there.
    async fn body(&self, cleanup: &mut Cleanup) {
        let restored = match &self.of_follower {
            Some(of) => self.clone_of_follower(cleanup, of).await,
            None => match self.remote_snapshot().await {
                Some(serving) => self.clone_of(cleanup, serving).await,
                None => self.fetch_and_restore(cleanup).await,
            },
        };
        let Some(restored) = restored else { return };
        cleanup.database = Some(restored.database.clone());
        self.after_restore(cleanup, &restored).await;
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
            inconclusive: false,
        }));
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
                self.events.emit(Event::Check(CheckResult::skipped(
                    crate::outcome::CheckKind::Api,
                    &request.name,
                    reason,
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::CheckKind;

    const DAY: time::Date = time::macros::date!(2026 - 11 - 30);

    const SCENARIO: &str = r#"
name = "orders"

[source]
path = "orders.sql"
sha256 = "00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff"

[checks.extensions]
pgcrypto = "1.3"

[[checks.sql]]
name = "one order"
query = "SELECT count(*) FROM public.orders"
expect_rows = [["1"]]

[app]
command = ["true"]
ready = { path = "/health" }

[[app.requests]]
name = "health"
path = "/health"
"#;

    fn scenario_file(dir: &Path) -> PathBuf {
        let path = dir.join("orders.toml");
        std::fs::write(&path, SCENARIO).unwrap();
        path
    }

    fn kinds(scenario: &Scenario) -> Vec<CheckKind> {
        scenario.checks.iter().map(|c| c.kind()).collect()
    }

    #[test]
    fn the_scenario_is_loaded_as_written_unless_the_command_line_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = scenario_file(dir.path());
        let scenario = load(&path, &DrillOptions::default(), DAY).unwrap();
        assert_eq!(kinds(&scenario), [CheckKind::Extensions, CheckKind::Sql]);
        assert!(scenario.app.is_some());
        assert!(!scenario.restore.create_missing_roles, "only `init` creates the roles the dump names");
        assert_eq!(scenario.source.expected_sha256, Some("00ff".repeat(16)));
        assert!(
            matches!(&scenario.source.location, source::SourceLocation::File(p) if *p == dir.path().join("orders.sql"))
        );

        let backup = dir.path().join("yesterday.sql");
        let globals = dir.path().join("globals.sql");
        let options =
            DrillOptions { backup: Some(backup.clone()), globals: Some(globals.clone()), ..Default::default() };
        let scenario = load(&path, &options, DAY).unwrap();
        assert!(matches!(&scenario.source.location, source::SourceLocation::File(p) if *p == backup));
        assert_eq!(scenario.source.expected_sha256, None, "the scenario's digest is its own backup's");
        assert_eq!(scenario.restore.globals, Some(globals));
    }

    /// `--only` keeps the checks of its kinds, and the application only when `api` is one.
    #[test]
    fn only_the_kinds_asked_for_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = scenario_file(dir.path());
        let only = |kinds: &[CheckKind]| DrillOptions { only_kinds: Some(kinds.to_vec()), ..Default::default() };
        let scenario = load(&path, &only(&[CheckKind::Sql]), DAY).unwrap();
        assert_eq!(kinds(&scenario), [CheckKind::Sql]);
        assert!(scenario.app.is_none());
        let scenario = load(&path, &only(&[CheckKind::Api]), DAY).unwrap();
        assert!(scenario.checks.is_empty());
        assert_eq!(scenario.app.map(|app| app.requests.len()), Some(1));
    }

    #[test]
    fn a_baseline_capture_runs_no_checks() {
        let dir = tempfile::tempdir().unwrap();
        let options = DrillOptions { baseline_out: Some(dir.path().join("baseline.json")), ..Default::default() };
        assert!(load(&scenario_file(dir.path()), &options, DAY).unwrap().checks.is_empty());
    }

    /// A scenario that cannot be used still names its drill's reports: by its file's name, made
    /// safe for a folder, and the file's digest when it can be read.
    #[test]
    fn an_unusable_scenario_is_named_by_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("nightly orders (eu)!.toml");
        std::fs::write(&odd, "name = ").unwrap();
        let info = unusable_scenario_info(&odd);
        assert_eq!(info.name, "nightly_orders__eu__");
        assert_eq!(info.sha256, hex::encode(Sha256::digest(b"name = ")));
        assert_eq!(info.file, odd.display().to_string());
        let hidden = unusable_scenario_info(&dir.path().join(".orders.v2.toml"));
        assert_eq!(hidden.name, "scenario.orders.v2", "a name never starts with a dot");
        assert_eq!(hidden.sha256, "", "a file that cannot be read has no digest");
        assert_eq!(unusable_scenario_info(Path::new("/")).name, "scenario");
        assert!(load(&dir.path().join("missing.toml"), &DrillOptions::default(), DAY).is_err());
    }

    #[test]
    fn the_history_is_with_the_drills_reports() {
        let options = DrillOptions { reports_root: PathBuf::from("/var/reports"), ..Default::default() };
        assert_eq!(history_path(&options, "orders"), Path::new("/var/reports/orders/history.jsonl"));
        let options = DrillOptions { out_dir: Some(PathBuf::from("/tmp/tmp.x7")), ..options };
        assert_eq!(history_path(&options, "orders"), Path::new("/tmp/tmp.x7/history.jsonl"));
        let options = DrillOptions { history: Some(PathBuf::from("/ci/cache/orders.jsonl")), ..options };
        assert_eq!(history_path(&options, "orders"), Path::new("/ci/cache/orders.jsonl"));
    }
}
