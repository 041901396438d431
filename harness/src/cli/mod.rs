//! The command line: parse and validate first, act later. `main` maps the outcome to an exit
//! code: 0 pass, 1 drill failed, 2 unusable input, 3 a drill could not run, 130/143 interrupted
//! by SIGINT/SIGTERM.

/// `println!` that ends quietly on a closed stdout (`pgdrill run | head -1`): what is left unread
/// is not worth a panic (exit code 101), and the drill still tears down and writes its reports.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod ack;
mod after;
mod args;
mod baseline;
mod diff;
mod drills;
mod fingerprint;
mod fleet;
mod fleet_follow;
mod jobs;
mod kube;
mod merge;
mod period;
mod period_follow;
mod publish;
mod reference;
mod snapshots;
mod summary;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use clap::Parser;
use tokio_util::sync::CancellationToken;

pub use args::Cli;
pub(crate) use args::{Command, KeepWhen, ReportCommand, RunArgs};
use drills::run_many;

use crate::drill::{self, DrillOptions, DrillOutcome};
use crate::outcome::CheckKind;
use crate::report::console::Console;
use crate::scenario::{Scenario, discover};

/// How pgdrill ends: the one place that maps an ending to its exit code (docs/src/guide/bad-input.md, "Exit codes").
/// Ordered by how bad it is, so several drills end with the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Exit {
    /// Every phase and check passed (0).
    Pass,
    /// A drill failed, or what was asked could not be done (1).
    Fail,
    /// A drill could not run: it failed only where nothing is said about the backup (it could
    /// not be reached, the target could not start, teardown: `outcome::could_not_run`), so a
    /// retry may pass (3). Above a failure: a shard with such a drill is worth running again.
    CouldNotRun,
    /// The scenario or the command line is unusable (2).
    Usage,
    /// Interrupted by this signal (128 + its number: 130 for SIGINT, 143 for SIGTERM).
    Signal(u8),
}

impl Exit {
    /// A drill's ending.
    fn of(outcome: &DrillOutcome) -> Exit {
        if outcome.scenario_error.is_some() {
            Exit::Usage
        } else if outcome.succeeded() {
            Exit::Pass
        } else if crate::outcome::could_not_run(&outcome.record) {
            Exit::CouldNotRun
        } else {
            Exit::Fail
        }
    }

    fn pass_if(passed: bool) -> Exit {
        if passed { Exit::Pass } else { Exit::Fail }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Pass => 0,
            Exit::Fail => 1,
            Exit::Usage => 2,
            Exit::CouldNotRun => 3,
            Exit::Signal(number) => 128u8.saturating_add(number),
        })
    }
}

/// Runs the command line on a runtime of its own. Call it before any other thread starts: it
/// takes the signing key's variables out of the environment first, so that no program the
/// drills start inherits them.
pub fn run() -> ExitCode {
    // SAFETY: the caller has started no other thread; the async runtime starts below.
    unsafe { crate::evidence::sign::take_env() };
    // A drill's futures are large in a debug build: drills run at once (`--jobs`) run on the
    // workers, and the first on a thread of its own, each with the stack the tests' drills get
    // (the main thread's 8 MiB, and the workers' default 2 MiB, were outgrown).
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(STACK).build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Fail.into();
        }
    };
    let main =
        std::thread::Builder::new().name("pgdrill".into()).stack_size(STACK).spawn(move || runtime.block_on(main()));
    match main.map(std::thread::JoinHandle::join) {
        Ok(Ok(code)) => code,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(e) => {
            eprintln!("error: cannot start pgdrill's main thread: {e}");
            Exit::Fail.into()
        }
    }
}

/// The stack of each thread that runs a drill's futures.
const STACK: usize = 64 << 20;

async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Snapshots { command } => snapshots::run(command).await,
        Command::Run { scenarios, common, only, keep } => {
            let kinds: Vec<&str> = crate::check::KINDS.iter().copied().chain([CheckKind::Api.as_str()]).collect();
            let only: Option<Vec<CheckKind>> = match only
                .iter()
                .flatten()
                .map(|k| (k, CheckKind::from_name(k)))
                .find(|(_, kind)| !kind.is_some_and(|kind| kinds.contains(&kind.as_str())))
            {
                Some((unknown, _)) => {
                    eprintln!("error: --only: `{unknown}` is not a check kind (the kinds: {})", kinds.join(", "));
                    return Exit::Usage.into();
                }
                None => only.map(|names| names.iter().filter_map(|name| CheckKind::from_name(name)).collect()),
            };
            let options = DrillOptions {
                backup: common.backup.clone(),
                globals: common.globals.clone(),
                only_kinds: only,
                keep: match keep {
                    None => drill::Keep::Never,
                    Some(KeepWhen::Always) => drill::Keep::Always,
                    Some(KeepWhen::OnFailure) => drill::Keep::OnFailure,
                },
                ..DrillOptions::default()
            };
            run_many(&scenarios, common, options, false).await
        }
        Command::Gate { scenarios, common } => {
            let options = DrillOptions {
                backup: common.backup.clone(),
                globals: common.globals.clone(),
                only_kinds: Some(crate::check::gate_kinds()),
                ..DrillOptions::default()
            };
            run_many(&scenarios, common, options, true).await
        }
        Command::Baseline { dsn: Some(dsn), output, .. } => baseline::from_dsn(&dsn, &output).await,
        Command::Baseline { from_drill: Some(scenario), output, backup, reports, .. } => {
            let options =
                DrillOptions { backup, baseline_out: Some(output), reports_root: reports, ..DrillOptions::default() };
            // Nothing of `run`'s own: one drill, its reports under `reports`.
            let common = RunArgs { reports: options.reports_root.clone(), ..RunArgs::default() };
            run_many(&[scenario], common, options, false).await
        }
        Command::Baseline { .. } => Exit::Usage.into(),
        Command::Init { backup, output, force, globals, wal_archive, version, like } => {
            init(crate::init::InitOptions { backup, output, force, globals, wal_archive, version, like }).await
        }
        Command::Validate { scenarios } => validate(&scenarios),
        Command::Follow(args) => follow(args).await,
        Command::FollowStatus { state, max_lag, max_age } => follow_status(&state, max_lag, max_age),
        Command::Fingerprint(args) => Exit::pass_if(fingerprint::run(args).await).into(),
        Command::Kube(args) => kube::run(&args),
        Command::Report(ReportCommand::Merge(args)) => merge::run(&args).await,
        Command::Report(ReportCommand::Fleet(args)) => fleet::run_view(&args).await,
        Command::Report(ReportCommand::Audit(args)) => fleet::run_audit(&args).await,
        Command::Report(ReportCommand::Verify(args)) | Command::Verify(args) => verify::run(&args),
        Command::Report(ReportCommand::Diff(args)) => diff::run(&args),
        Command::Report(ReportCommand::Period(args)) => period::run(&args).await,
        Command::Ack(args) => ack::run(&args),
        Command::Schema { record } => {
            let schema = if record { crate::report::flat::json_schema() } else { crate::scenario::json_schema() };
            outln!("{}", serde_json::to_string_pretty(&schema).expect("a JSON value serializes"));
            ExitCode::SUCCESS
        }
        Command::Clean { name, dry_run } => clean(name.as_deref(), dry_run).await,
        Command::PodServer { dir, bin_dir } => pod_server(&dir, bin_dir).await,
        Command::Completions { shell } => completions(shell),
        Command::Man => man_page(),
        Command::Reference { out } => Exit::pass_if(reference::write(&out)).into(),
        Command::Forward { socket_dir, refuse } => forward(&socket_dir, &refuse).await,
    }
}

/// `pgdrill follow`: the follower's drill (on the pod target with `--target pod`), its receipts
/// and report signed by the key `--signing-key` names, until it is stopped. 0 when it stopped
/// with no fault standing; stopped by a signal before it followed, as the signal says; 1
/// otherwise; 2 when the key cannot be used.
async fn follow(args: args::FollowArgs) -> ExitCode {
    let (stop, signal) = interrupts();
    let mut follow = crate::follow::FollowOptions {
        state: args.state,
        gap_after: args.gap_after,
        look_every: args.look_every,
        stop,
        run_for: args.run_for,
        drill_every: args.drill_every,
        reports: args.reports.clone(),
        drill_now: drill_now_asked(),
        following: Default::default(),
        receipt_every: args.receipt_every,
        signer: None,
        markers: args.marker_dsn.map(|dsn| crate::follow::markers::MarkerOptions {
            dsn: crate::secret::Secret::new(dsn),
            every: args.marker_every,
            deadline: args.marker_after,
        }),
    };
    if let Some(Err(e)) = follow.markers.as_ref().map(|m| crate::conninfo::options(m.dsn.expose())) {
        eprintln!("error: --marker-dsn cannot be read: {e}");
        return Exit::Usage.into();
    }
    let (scenario, reports, signing_key) = (args.scenario, args.reports, args.signing_key.as_deref());
    let on_pod = args.target == Some(args::TargetChoice::Pod);
    let Some((signer, signing)) = verify::follow_signing(signing_key) else {
        return Exit::Usage.into();
    };
    follow.signer = signer;
    let (stop, following, cancel) = (follow.stop.clone(), follow.following.clone(), CancellationToken::new());
    let options =
        DrillOptions { reports_root: reports, follow: Some(follow), signing, on_pod, ..DrillOptions::default() };
    let reporters: Vec<Box<dyn crate::outcome::Reporter>> = vec![Box::new(Console::new(false))];
    // A signal stops the follow, which then tears down and writes its report; before the
    // follower follows (the base backup's restore), it interrupts the drill.
    let interrupt = cancel.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        if !following.load(Ordering::SeqCst) {
            interrupt.cancel();
        }
    });
    let outcome = drill::run(&scenario, &options, reporters, cancel.clone()).await;
    let number = signal.load(Ordering::SeqCst);
    match crate::outcome::passes(&outcome.record) {
        true => Exit::Pass.into(),
        false if number != 0 && cancel.is_cancelled() => Exit::Signal(number as u8).into(),
        false => Exit::Fail.into(),
    }
}

/// `pgdrill follow-status`: the follower's line on stdout; 0 when it is ready, else 1.
fn follow_status(state: &std::path::Path, max_lag: std::time::Duration, max_age: std::time::Duration) -> ExitCode {
    let bounds = crate::follow::status::Bounds { max_lag, max_age };
    let (ready, line) = crate::follow::status::check(state, &bounds, std::time::SystemTime::now());
    outln!("{line}");
    Exit::pass_if(ready).into()
}

/// `pgdrill completions SHELL`: the shell's completions on stdout.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "pgdrill", &mut std::io::stdout());
    Exit::Pass.into()
}

/// `pgdrill man`: the man page (roff) on stdout; a closed pipe (`| head`) is no error.
fn man_page() -> ExitCode {
    match clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut std::io::stdout()) {
        Ok(()) => Exit::Pass.into(),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Pass.into(),
        Err(e) => {
            eprintln!("error: cannot write the man page: {e}");
            Exit::Fail.into()
        }
    }
}

/// A kept target's loopback port, until it is stopped.
async fn forward(socket_dir: &std::path::Path, refuse: &str) -> ExitCode {
    Exit::pass_if(crate::provision::kept::forward(socket_dir, refuse).await.is_ok()).into()
}

/// `pgdrill pod-server`: the agent of a pod's server container, until the pod ends.
async fn pod_server(dir: &std::path::Path, bin_dir: Option<PathBuf>) -> ExitCode {
    let served = crate::provision::pod::serve::serve(dir, bin_dir).await;
    if let Err(e) = &served {
        eprintln!("error: {}", crate::secret::error_text(e));
    }
    Exit::pass_if(served.is_ok()).into()
}

async fn clean(name: Option<&str>, dry_run: bool) -> ExitCode {
    match crate::provision::clean::clean(name, dry_run).await {
        Ok(cleaned) => {
            for line in &cleaned.lines {
                outln!("{line}");
            }
            let swept = match (name, crate::snapshot::Store::open()) {
                (None, Ok(store)) => store.sweep(dry_run).await,
                _ => Vec::new(),
            };
            for folder in &swept {
                let verb = if dry_run { "would remove" } else { "removed" };
                outln!("{verb} `{}`, a snapshot a killed drill was making", folder.display());
            }
            if cleaned.lines.is_empty() && cleaned.errors.is_empty() && swept.is_empty() {
                outln!("nothing to clean: no kept target, nothing left by a drill");
            }
            for error in &cleaned.errors {
                eprintln!("error: {error}");
            }
            Exit::pass_if(cleaned.errors.is_empty()).into()
        }
        Err(e) => {
            eprintln!("error: {}", crate::secret::error_text(&e));
            Exit::Fail.into()
        }
    }
}

async fn init(options: crate::init::InitOptions) -> ExitCode {
    let (cancel, signal) = interrupts();
    let result = crate::init::run(&options, vec![Box::new(Console::new(false).inspecting())], cancel).await;
    let number = signal.load(Ordering::SeqCst);
    match result {
        Ok(written) => {
            outln!(
                "scenario written to {} with the baseline of the restore it compares with, {}: {} checks, each passed on the backup's restore{}",
                written.path.display(),
                written.baseline.display(),
                written.checks,
                if written.disabled.is_empty() {
                    String::new()
                } else {
                    format!("; {} commented out:", written.disabled.len())
                }
            );
            for why in &written.disabled {
                outln!("  {why}");
            }
            Exit::Pass.into()
        }
        Err(_) if number != 0 => Exit::Signal(number as u8).into(),
        Err(e) => {
            eprintln!("error: {}", crate::secret::error_text(&e));
            (if e.is_usage() { Exit::Usage } else { Exit::Fail }).into()
        }
    }
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    let paths = match discover(paths) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot read scenarios: {e}");
            return Exit::Usage.into();
        }
    };
    for path in &paths {
        match Scenario::load(path) {
            Ok(s) => outln!(
                "ok  {}: scenario `{}`, {} check{}{}",
                path.display(),
                s.name,
                s.checks.len(),
                if s.checks.len() == 1 { "" } else { "s" },
                if s.tags.is_empty() { String::new() } else { format!(", tags {}", s.tags.join(", ")) }
            ),
            Err(e) => {
                failed = true;
                eprintln!("{}", render(&e));
            }
        }
    }
    (if failed { Exit::Usage } else { Exit::Pass }).into()
}

/// Installs SIGINT and SIGTERM handlers: the first cancels the drill (which tears down and
/// writes its reports), a second exits at once.
fn interrupts() -> (CancellationToken, Arc<AtomicI32>) {
    let token = CancellationToken::new();
    let signal = Arc::new(AtomicI32::new(0));
    let (t, s) = (token.clone(), signal.clone());
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        loop {
            let number = tokio::select! {
                _ = int.recv() => 2,
                _ = term.recv() => 15,
            };
            if t.is_cancelled() {
                eprintln!("pgdrill: interrupted again, exiting without cleaning up");
                std::process::exit(128 + number);
            }
            s.store(number, Ordering::SeqCst);
            eprintln!(
                "pgdrill: interrupted, removing the target and writing reports (interrupt again to exit at once)"
            );
            t.cancel();
        }
    });
    (token, signal)
}

/// A flag SIGUSR1 sets: a follower's drill of now is asked for.
fn drill_now_asked() -> Arc<std::sync::atomic::AtomicBool> {
    let asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = asked.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else { return };
        while usr1.recv().await.is_some() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    asked
}

/// Renders a diagnostic with its source snippet, as miette does for reports it owns, its lines
/// as wide as the console's (a log's are not wrapped: a hint stays on one line).
fn render(diagnostic: &dyn miette::Diagnostic) -> String {
    let mut out = String::new();
    let handler = if console::colors_enabled_stderr() {
        miette::GraphicalReportHandler::new()
    } else {
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
    };
    let handler = handler.with_width(crate::report::console::line_width(&console::Term::stderr()));
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = diagnostic.to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::outcome::{DrillRecord, DrillVerdict, RunnerInfo, ScenarioInfo};
    use crate::report::ReportPaths;
    use crate::scenario::ScenarioError;

    /// The completions and the man page know every command a user may type.
    #[test]
    fn completions_and_the_man_page_name_every_command() {
        let mut command = <Cli as clap::CommandFactory>::command();
        let mut bash = Vec::new();
        clap_complete::generate(clap_complete::Shell::Bash, &mut command, "pgdrill", &mut bash);
        let bash = String::from_utf8(bash).unwrap();
        let mut man = Vec::new();
        clap_mangen::Man::new(command.clone()).render(&mut man).unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(man.starts_with(".ie") && man.contains(".SH SUBCOMMANDS"), "{man}");
        for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
            assert!(bash.contains(&format!("pgdrill,{})", sub.get_name())), "{}", sub.get_name());
            assert!(man.contains(&format!("pgdrill\\-{}", sub.get_name().replace('-', "\\-"))), "{}", sub.get_name());
        }
    }

    fn outcome(verdict: DrillVerdict, reports_written: bool, scenario_error: Option<ScenarioError>) -> DrillOutcome {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let mut record = DrillRecord::new("d1".into(), ScenarioInfo::default(), RunnerInfo::default(), at);
        record.verdict = verdict;
        let reports = match reports_written {
            true => Ok(ReportPaths {
                dir: "r".into(),
                junit: "r/junit.xml".into(),
                markdown: "r/report.md".into(),
                html: "r/report.html".into(),
                json: "r/drill.json".into(),
                manifest: "r/manifest.json".into(),
                history: "history.jsonl".into(),
                evidence: None,
            }),
            false => {
                Err(crate::report::ReportError { path: "r".into(), source: std::io::Error::other("disk full").into() })
            }
        };
        DrillOutcome { record, reports, scenario_error, kept: None, snapshot: None }
    }

    #[test]
    fn each_ending_has_its_exit_code_and_several_drills_end_with_the_worst() {
        assert_eq!(ExitCode::from(Exit::Pass), ExitCode::SUCCESS);
        assert_eq!(ExitCode::from(Exit::Fail), ExitCode::from(1));
        assert_eq!(ExitCode::from(Exit::Usage), ExitCode::from(2));
        assert_eq!(ExitCode::from(Exit::CouldNotRun), ExitCode::from(3));
        assert_eq!(ExitCode::from(Exit::Signal(2)), ExitCode::from(130), "SIGINT");
        assert_eq!(ExitCode::from(Exit::Signal(15)), ExitCode::from(143), "SIGTERM");
        assert_eq!(ExitCode::from(Exit::Signal(200)), ExitCode::from(255), "never past 255");
        let endings = [Exit::Pass, Exit::Fail, Exit::Pass];
        assert_eq!(endings.into_iter().max(), Some(Exit::Fail));
        assert_eq!([Exit::Fail, Exit::Usage, Exit::Pass].into_iter().max(), Some(Exit::Usage));
        // A shard with a drill that could not run is worth running again, whatever else failed.
        assert_eq!([Exit::Fail, Exit::CouldNotRun, Exit::Pass].into_iter().max(), Some(Exit::CouldNotRun));
        assert_eq!(Exit::CouldNotRun.max(Exit::Usage), Exit::Usage, "an unusable input is not run again");
        assert_eq!(Exit::Usage.max(Exit::Signal(15)), Exit::Signal(15), "an interruption outranks the rest");
    }

    #[test]
    fn a_drill_passes_only_with_its_reports_written() {
        assert_eq!(Exit::of(&outcome(DrillVerdict::Pass, true, None)), Exit::Pass);
        assert_eq!(Exit::of(&outcome(DrillVerdict::Pass, false, None)), Exit::Fail);
        assert_eq!(Exit::of(&outcome(DrillVerdict::Fail, true, None)), Exit::Fail);
        let unusable =
            ScenarioError::Read { path: "s.toml".into(), source: std::io::Error::from(std::io::ErrorKind::NotFound) };
        assert_eq!(Exit::of(&outcome(DrillVerdict::Fail, true, Some(unusable))), Exit::Usage);
        let mut unreached = outcome(DrillVerdict::Fail, true, None);
        unreached.record.phases.push(crate::outcome::PhaseRecord {
            phase: crate::outcome::Phase::Fetch,
            status: crate::outcome::PhaseStatus::Failed,
            started_at: None,
            duration: std::time::Duration::ZERO,
            summary: String::new(),
            error: Some("`s3://b/k` could not be downloaded after 4 attempts".into()),
            inconclusive: true,
        });
        assert_eq!(Exit::of(&unreached), Exit::CouldNotRun);
        unreached.record.phases[0].inconclusive = false;
        assert_eq!(Exit::of(&unreached), Exit::Fail, "a backup that is not there is a finding");
        assert_eq!((Exit::pass_if(true), Exit::pass_if(false)), (Exit::Pass, Exit::Fail));
    }

    /// A negative control exits 0 when it failed where it must, 1 when it passed or failed
    /// elsewhere.
    #[test]
    fn a_negative_control_succeeds_only_by_failing_where_it_must() {
        use crate::outcome::{Phase, PhaseRecord, PhaseStatus};
        let phase = |phase: Phase, status: PhaseStatus| PhaseRecord {
            phase,
            status,
            started_at: None,
            duration: std::time::Duration::ZERO,
            summary: String::new(),
            error: (status == PhaseStatus::Failed).then(|| "it failed".to_owned()),
            inconclusive: false,
        };
        let control = |verdict: DrillVerdict, failed: Option<Phase>| {
            let mut outcome = outcome(verdict, true, None);
            outcome.record.scenario.control = Some(Phase::Preflight);
            outcome.record.phases = vec![phase(Phase::Verify, PhaseStatus::Passed)];
            outcome.record.phases.extend(failed.map(|p| phase(p, PhaseStatus::Failed)));
            Exit::of(&outcome)
        };
        assert_eq!(control(DrillVerdict::Fail, Some(Phase::Preflight)), Exit::Pass);
        assert_eq!(control(DrillVerdict::Fail, Some(Phase::Restore)), Exit::Fail, "failed elsewhere");
        assert_eq!(control(DrillVerdict::Pass, None), Exit::Fail, "passed");
    }

    #[test]
    fn validate_exits_2_when_any_scenario_is_unusable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("orders.toml"), "[source]\npath = \"orders.sql\"\n").unwrap();
        assert_eq!(validate(&[dir.path().to_owned()]), ExitCode::SUCCESS);
        std::fs::write(dir.path().join("broken.toml"), "[source]\npath = \"b.sql\"\nsha256 = \"00ff\"\n").unwrap();
        assert_eq!(validate(&[dir.path().to_owned()]), ExitCode::from(2));
        assert_eq!(validate(&[dir.path().join("missing")]), ExitCode::from(2));
    }

    /// A scenario's error is shown with the line of the file it is about.
    #[test]
    fn a_diagnostic_is_rendered_with_its_source_line() {
        let text = "[source]\npath = \"b.sql\"\nsha256 = \"00ff\"\n";
        let error = Scenario::parse(text.as_bytes(), Path::new("/scenarios/orders.toml")).unwrap_err();
        let shown = render(&error);
        assert!(shown.contains("`sha256` must be 64 hexadecimal characters"), "{shown}");
        assert!(shown.contains("sha256 = \"00ff\""), "the line in question: {shown}");
        assert!(shown.contains("/scenarios/orders.toml:3:"), "where: {shown}");
    }
}
