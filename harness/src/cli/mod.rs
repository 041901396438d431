//! The command line: parse and validate first, act later. `main` maps the outcome to an exit
//! code: 0 pass, 1 drill failed, 2 unusable input, 130/143 interrupted by SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use clap::{Parser, Subcommand};

mod after;
mod fingerprint;
mod snapshots;
mod verify;
use tabled::builder::Builder;
use tabled::settings::Style;
use tokio_util::sync::CancellationToken;

use crate::check::Verdict;
use crate::drill::{self, DrillOptions, DrillOutcome};
use crate::report::console::Console;
use crate::scenario::{Scenario, discover, selected};
use crate::units::human_duration;

/// How pgdrill ends: the one place that maps an ending to its exit code (README, "Exit codes").
/// Ordered by how bad it is, so several drills end with the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Exit {
    /// Every phase and check passed (0).
    Pass,
    /// A drill failed, or what was asked could not be done (1).
    Fail,
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
        } else if outcome.passed() {
            Exit::Pass
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
            Exit::Signal(number) => 128u8.saturating_add(number),
        })
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "pgdrill",
    version,
    about = "Restore drills for PostgreSQL backups: restore, check, tear down, report."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What `run` and `gate` share.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Write the reports into exactly this folder (one scenario only).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write reports under DIR/<scenario>/<UTC timestamp>/.
    #[arg(long, value_name = "DIR", default_value = "reports", conflicts_with = "out")]
    reports: PathBuf,
    /// Drill only scenarios with one of these tags (repeat, or separate with commas).
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    tags: Vec<String>,
    /// Drill only shard K of N (CI runners splitting one selection): the Kth, K+Nth, ...
    /// scenario of those the tags (and the gate) select, in file order.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<Shard>,
    /// Also list the checks that passed as they run.
    #[arg(short, long)]
    verbose: bool,
    /// Drill this backup file instead of the scenario's source.
    #[arg(long, value_name = "FILE")]
    backup: Option<PathBuf>,
    /// Apply this `pg_dumpall --globals-only` file instead of the scenario's.
    #[arg(long, value_name = "FILE")]
    globals: Option<PathBuf>,
    /// Keep each restore that passes as a verified snapshot (container targets), for
    /// `--reuse` (see `pgdrill snapshots`).
    #[arg(long)]
    snapshot: bool,
    /// Start from a private clone of the snapshot of the very same restore when there is one,
    /// instead of restoring (the reports say which drill's restore it is).
    #[arg(long)]
    reuse: bool,
    /// When to tell the scenario's webhook (`[notify]`), over its `on`: `failure` (and the first
    /// pass after one), `always` or `never`. Without `[notify]`, the URL in PGDRILL_WEBHOOK_URL.
    #[arg(long, value_name = "WHEN", value_enum)]
    notify: Option<after::NotifyWhen>,
    /// Also write each drill's metrics.prom to DIR/pgdrill-<scenario>.prom, atomically (a
    /// node_exporter textfile collector's folder).
    #[arg(long, value_name = "DIR")]
    metrics_dir: Option<PathBuf>,
    /// Sign each drill's evidence with this OpenSSH private key (else $PGDRILL_SIGNING_KEY_FILE,
    /// or the key's text in $PGDRILL_SIGNING_KEY): see `pgdrill verify`.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
}

impl RunArgs {
    /// The snapshot store, when `--snapshot` or `--reuse` asks for it.
    fn snapshots(&self) -> Result<Option<drill::SnapshotOptions>, crate::snapshot::SnapshotError> {
        if !self.snapshot && !self.reuse {
            return Ok(None);
        }
        let store = crate::snapshot::Store::open()?;
        Ok(Some(drill::SnapshotOptions { store, keep: self.snapshot, reuse: self.reuse }))
    }
}

/// `--shard K/N`: which of N runners this is (1 to N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether the `nth` selected scenario (from 0) is this shard's.
    pub fn takes(self, nth: usize) -> bool {
        nth % self.count == self.index - 1
    }
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let usage = || format!("`{text}` is not K/N with 1 <= K <= N (for example 1/2)");
    let (k, n) = text.split_once('/').ok_or_else(usage)?;
    let (index, count): (usize, usize) =
        (k.trim().parse().map_err(|_| usage())?, n.trim().parse().map_err(|_| usage())?);
    if index == 0 || index > count {
        return Err(usage());
    }
    Ok(Shard { index, count })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the drills scenarios describe, and write their reports.
    ///
    /// Restores each backup into a throwaway target, runs the checks, removes the target and
    /// writes junit.xml, report.md, drill.json, timeline.svg and a manifest of their digests.
    /// Exits 0 only when every phase and check of every drill passed.
    Run {
        /// Scenario files, or folders of them.
        #[arg(default_value = "scenarios/plur.toml")]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        common: RunArgs,
        /// Run only the checks of these kinds (e.g. `roles,rls`; `api` for the app's requests).
        #[arg(long, value_name = "KINDS", value_delimiter = ',')]
        only: Option<Vec<String>>,
        /// Leave the target running after the drill, to look into: `--keep` (or `--keep=always`)
        /// whatever the verdict, `--keep=on-failure` only when the drill fails. Prints how to
        /// connect (a connection file only you can read) and `pgdrill clean NAME`.
        #[arg(
            long,
            value_name = "WHEN",
            value_enum,
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "always"
        )]
        keep: Option<KeepWhen>,
    },
    /// The release gate: drill only the role, row-level security and append-only audit checks.
    ///
    /// Scenarios without any of those checks are passed over.
    Gate {
        /// Scenario files, or folders of them.
        #[arg(default_value = "scenarios")]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        common: RunArgs,
    },
    /// Check scenario files without running them.
    Validate {
        /// Scenario files, or folders of them.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Capture a baseline (row counts, indexes with their parts, row security, policies, graphs,
    /// schemas with each table's columns, constraints, triggers and rules and each sequence's
    /// settings, migration versions) for later drills to compare with.
    #[command(group(clap::ArgGroup::new("from").required(true).args(["dsn", "from_drill"])))]
    Baseline {
        /// Capture from a live database (for example the production source, read-only).
        #[arg(long, value_name = "URL", env = "PGDRILL_BASELINE_DSN", hide_env_values = true)]
        dsn: Option<String>,
        /// Capture from the restore of a scenario's backup (its checks are not run).
        #[arg(long, value_name = "SCENARIO")]
        from_drill: Option<PathBuf>,
        /// With --from-drill: restore this backup instead of the scenario's.
        #[arg(long, value_name = "FILE", requires = "from_drill")]
        backup: Option<PathBuf>,
        /// The baseline file to write (JSON).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// With --from-drill: write the drill's reports under DIR/<scenario>/<UTC timestamp>/.
        #[arg(long, value_name = "DIR", default_value = "reports", requires = "from_drill")]
        reports: PathBuf,
    },
    /// Fingerprint a source database's tables (their content, not only their rows), in the
    /// snapshot of a dump, for drills to compare its restore with (`[checks.fingerprints]`).
    ///
    /// With `--dump FILE`, pg_dump makes the dump in the very snapshot the fingerprints are
    /// taken in; with `--snapshot ID`, the fingerprints are taken in a snapshot another session
    /// exported for its own `pg_dump --snapshot ID`.
    Fingerprint(fingerprint::Args),
    /// Write a scenario from a backup: the checks the backup itself implies.
    ///
    /// Restores the backup into a throwaway target as a drill does, reads what the restore holds
    /// (extensions, the migration journal, row counts, indexes, row security and policies, the
    /// roles its grants name, partitions, schemas, graphs), runs each check that implies on it,
    /// tears the target down and writes a commented scenario: the checks that passed, and those
    /// that did not commented out with why.
    Init {
        /// A pg_dump backup (plain SQL, .gz, .zst; custom; tar; a directory-format folder), a
        /// pg_basebackup folder or a pgBackRest repository.
        backup: PathBuf,
        /// The scenario file to write [default: <the backup's name>.toml here].
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite the scenario file if it exists.
        #[arg(long)]
        force: bool,
        /// A `pg_dumpall --globals-only` file to apply first [default: <name>.globals.sql beside
        /// the backup, if there is one].
        #[arg(long, value_name = "FILE")]
        globals: Option<PathBuf>,
        /// A base backup's WAL archive (the folder archive_command copies segments into).
        #[arg(long, value_name = "DIR")]
        wal_archive: Option<PathBuf>,
        /// Restore on this PostgreSQL major (written as `[target] version`): for a dump whose
        /// header names an older major than its SQL needs [default: the header's].
        #[arg(long, value_name = "MAJOR")]
        version: Option<u32>,
    },
    /// Work with written reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Verify a drill's report folder: its SSH signature against allowed signers, and every file
    /// against the signed in-toto statement and MANIFEST.sha256.
    Verify(verify::VerifyArgs),
    /// Print the JSON Schema of the scenario format, for editors (taplo, Even Better TOML) and
    /// validators.
    Schema,
    /// Remove targets kept by `run --keep`, and what drills killed outright left behind.
    ///
    /// Without a name: every target kept in your state folder (and kept containers whose record
    /// is gone), and the containers and private folders of drills whose process no longer runs.
    /// Never touches a container without pgdrill's labels.
    Clean {
        /// One kept target, as `run --keep` named it (or its container's name).
        name: Option<String>,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// List or remove the verified snapshots `run --snapshot` kept (`--reuse` clones them).
    ///
    /// The store is $PGDRILL_SNAPSHOTS, else $XDG_CACHE_HOME/pgdrill/snapshots, else
    /// ~/.cache/pgdrill/snapshots; its budget $PGDRILL_SNAPSHOT_BUDGET (20GB by default), the
    /// least recently used snapshots evicted to keep within it.
    Snapshots {
        #[command(subcommand)]
        command: Option<snapshots::SnapshotsCommand>,
    },
    /// A kept target's loopback port (started by `run --keep`; not for use by hand).
    #[command(name = "__forward", hide = true)]
    Forward {
        #[arg(long)]
        socket_dir: PathBuf,
        #[arg(long)]
        refuse: String,
    },
}

/// When `--keep` keeps the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeepWhen {
    /// Whatever the verdict.
    Always,
    /// Only when the drill fails.
    OnFailure,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the reports of several drills or CI shards into one junit.xml and one summary.md.
    Merge {
        /// Report folders (searched for drill.json).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The folder to write junit.xml and summary.md into.
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
    },
    /// The same as `pgdrill verify`.
    Verify(verify::VerifyArgs),
}

/// Runs the command line on a runtime of its own.
pub fn run() -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(main()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            Exit::Fail.into()
        }
    }
}

async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Snapshots { command } => snapshots::run(command).await,
        Command::Run { scenarios, common, only, keep } => {
            let kinds: Vec<&str> = crate::check::KINDS.iter().copied().chain([crate::app::request::KIND]).collect();
            if let Some(unknown) = only.iter().flatten().find(|k| !kinds.contains(&k.as_str())) {
                eprintln!("error: --only: `{unknown}` is not a check kind (the kinds: {})", kinds.join(", "));
                return Exit::Usage.into();
            }
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
                only_kinds: Some(crate::check::gate_kinds().into_iter().map(String::from).collect()),
                ..DrillOptions::default()
            };
            run_many(&scenarios, common, options, true).await
        }
        Command::Baseline { dsn: Some(dsn), output, .. } => baseline_from_dsn(&dsn, &output).await,
        Command::Baseline { from_drill: Some(scenario), output, backup, reports, .. } => {
            let options =
                DrillOptions { backup, baseline_out: Some(output), reports_root: reports, ..DrillOptions::default() };
            let common = RunArgs {
                out: None,
                reports: options.reports_root.clone(),
                tags: Vec::new(),
                shard: None,
                verbose: false,
                backup: None,
                globals: None,
                snapshot: false,
                reuse: false,
                notify: None,
                metrics_dir: None,
                signing_key: None,
            };
            run_many(&[scenario], common, options, false).await
        }
        Command::Baseline { .. } => Exit::Usage.into(),
        Command::Init { backup, output, force, globals, wal_archive, version } => {
            init(crate::init::InitOptions { backup, output, force, globals, wal_archive, version }).await
        }
        Command::Validate { scenarios } => validate(&scenarios),
        Command::Fingerprint(args) => Exit::pass_if(fingerprint::run(args).await).into(),
        Command::Report(ReportCommand::Merge { dirs, output }) => merge(&dirs, &output),
        Command::Report(ReportCommand::Verify(args)) | Command::Verify(args) => verify::run(&args),
        Command::Schema => {
            let schema = crate::scenario::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema).expect("a JSON value serializes"));
            ExitCode::SUCCESS
        }
        Command::Clean { name, dry_run } => clean(name.as_deref(), dry_run).await,
        Command::Forward { socket_dir, refuse } => match crate::provision::kept::forward(&socket_dir, &refuse).await {
            Ok(()) => Exit::Pass.into(),
            Err(_) => Exit::Fail.into(),
        },
    }
}

async fn clean(name: Option<&str>, dry_run: bool) -> ExitCode {
    match crate::provision::clean::clean(name, dry_run).await {
        Ok(cleaned) => {
            for line in &cleaned.lines {
                println!("{line}");
            }
            let swept = match (name, crate::snapshot::Store::open()) {
                (None, Ok(store)) => store.sweep(dry_run).await,
                _ => Vec::new(),
            };
            for folder in &swept {
                let verb = if dry_run { "would remove" } else { "removed" };
                println!("{verb} `{}`, a snapshot a killed drill was making", folder.display());
            }
            if cleaned.lines.is_empty() && cleaned.errors.is_empty() && swept.is_empty() {
                println!("nothing to clean: no kept target, nothing left by a drill");
            }
            for error in &cleaned.errors {
                eprintln!("error: {error}");
            }
            Exit::pass_if(cleaned.errors.is_empty()).into()
        }
        Err(e) => {
            eprintln!("error: {}", crate::error::error_chain(&e));
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
            println!(
                "scenario written to {}: {} checks, each passed on the backup's restore{}",
                written.path.display(),
                written.checks,
                if written.disabled.is_empty() {
                    String::new()
                } else {
                    format!("; {} commented out:", written.disabled.len())
                }
            );
            for why in &written.disabled {
                println!("  {why}");
            }
            Exit::Pass.into()
        }
        Err(_) if number != 0 => Exit::Signal(number as u8).into(),
        Err(e) => {
            eprintln!("error: {}", crate::error::error_chain(&e));
            (if e.is_usage() { Exit::Usage } else { Exit::Fail }).into()
        }
    }
}

fn merge(dirs: &[PathBuf], output: &std::path::Path) -> ExitCode {
    match crate::report::merge::merge(dirs, output) {
        Ok(merged) => {
            println!(
                "merged {} drills ({} passed) into {} and {}",
                merged.drills,
                merged.passed,
                merged.junit.display(),
                merged.markdown.display()
            );
            Exit::pass_if(merged.passed == merged.drills).into()
        }
        Err(e) => {
            eprintln!("error: {}", crate::error::error_chain(&e));
            Exit::Usage.into()
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
            Ok(s) => println!(
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

async fn baseline_from_dsn(dsn: &str, output: &std::path::Path) -> ExitCode {
    let result = async {
        // As pgdrill's sessions on a restored database read it: what any role may pin, pinned.
        let (options, shown) = fingerprint::source_options(dsn)?;
        let pool =
            sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(options).await.map_err(|e| {
                format!("cannot connect to `{shown}`: {}", crate::secret::redact_url_passwords(&e.to_string()))
            })?;
        let baseline = crate::baseline::capture::capture(&pool, &shown)
            .await
            .map_err(|e| format!("cannot capture the baseline: {e}"))?;
        pool.close().await;
        baseline.save(output).map_err(|e| crate::error::error_chain(&e))?;
        Ok::<_, String>(baseline)
    }
    .await;
    match result {
        Ok(b) => {
            if let Some(note) = b.invalid_indexes_note() {
                println!("note: {note}");
            }
            println!(
                "baseline of `{}` written to {}: {} tables, {} indexes, {} policies, {} graphs, {} schemas",
                b.database,
                output.display(),
                b.row_counts.len(),
                b.indexes.len(),
                b.policies.len(),
                b.graphs.len(),
                b.schemas.len()
            );
            Exit::Pass.into()
        }
        Err(message) => {
            eprintln!("error: {message}");
            Exit::Fail.into()
        }
    }
}

/// Runs the drills of `paths` (files or folders) one after another.
async fn run_many(paths: &[PathBuf], common: RunArgs, mut options: DrillOptions, gate: bool) -> ExitCode {
    let files = match discover(paths) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => {
            eprintln!(
                "error: no scenario (*.toml) in {}",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
            return Exit::Usage.into();
        }
        Err(e) => {
            eprintln!("error: cannot read scenarios: {e}");
            return Exit::Usage.into();
        }
    };
    if files.len() > 1 && common.out.is_some() {
        eprintln!("error: --out names one folder, and {} scenarios were given (use --reports)", files.len());
        return Exit::Usage.into();
    }
    options.out_dir = common.out.clone();
    options.reports_root = common.reports.clone();
    options.snapshots = match common.snapshots() {
        Ok(snapshots) => snapshots,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage.into();
        }
    };
    options.signing = verify::signing(common.signing_key.as_deref());
    let (cancel, signal) = interrupts();
    let mut worst = Exit::Pass;
    let (mut ran, mut chosen) = (0, 0);
    for file in &files {
        // Selection needs the scenario's tags; an unusable scenario is drilled, and fails.
        let loaded = Scenario::load(file).ok();
        if let Some(scenario) = &loaded {
            if !selected(&scenario.tags, &common.tags) {
                continue;
            }
            if gate && !scenario.checks.iter().any(|c| crate::check::gate_kinds().contains(&c.kind())) {
                eprintln!("pgdrill: {} has no role, RLS or audit checks: not part of the gate", file.display());
                continue;
            }
        }
        chosen += 1;
        if common.shard.is_some_and(|shard| !shard.takes(chosen - 1)) {
            continue;
        }
        ran += 1;
        let outcome = drill::run(file, &options, vec![Box::new(Console::new(common.verbose))], cancel.clone()).await;
        if let Some(error) = &outcome.scenario_error {
            eprintln!("{}", render(error));
        }
        summarize(&outcome);
        // A baseline's capture is no drill to be told about.
        let notify = after::spec(loaded.as_ref().and_then(|s| s.notify.as_ref()), common.notify);
        if let Some(spec) = notify.filter(|_| options.baseline_out.is_none()) {
            after::notify(&spec, &outcome).await;
        }
        if let Some(dir) = &common.metrics_dir {
            after::copy_metrics(dir, &outcome);
        }
        worst = worst.max(Exit::of(&outcome));
        let number = signal.load(Ordering::SeqCst);
        if number != 0 {
            return Exit::Signal(number as u8).into();
        }
    }
    if let (0, Some(shard)) = (ran, common.shard)
        && chosen > 0
    {
        // More runners than scenarios: this one has nothing to do, which is no failure.
        println!(
            "pgdrill: shard {}/{} has none of the {chosen} selected scenario{}",
            shard.index,
            shard.count,
            if chosen == 1 { "" } else { "s" }
        );
        return Exit::Pass.into();
    }
    if ran == 0 {
        eprintln!("error: no scenario matched (tags: {})", common.tags.join(", "));
        return Exit::Usage.into();
    }
    verify::exit_for(options.signing.as_ref(), worst).into()
}

/// Renders a diagnostic with its source snippet, as miette does for reports it owns.
fn render(diagnostic: &dyn miette::Diagnostic) -> String {
    let mut out = String::new();
    let handler = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        miette::GraphicalReportHandler::new()
    } else {
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
    };
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = diagnostic.to_string();
    }
    out
}

/// The drill's outcome on stdout: the checks, the verdict and where the reports are.
fn summarize(outcome: &DrillOutcome) {
    let r = &outcome.record;
    if !r.checks.is_empty() {
        let mut builder = Builder::default();
        builder.push_record(["check", "expected", "actual", "verdict"]);
        for c in &r.checks {
            let mark = match c.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "FAIL",
                Verdict::Error => "ERROR",
                Verdict::Skipped => "skipped",
            };
            builder.push_record([c.id.as_str(), c.expected.as_str(), c.actual.as_str(), mark]);
        }
        let mut table = builder.build();
        table.with(Style::rounded());
        println!("{table}");
    }
    if let Some(snapshot) = &outcome.snapshot {
        println!("snapshot: {snapshot}");
    }
    println!(
        "{}: drill `{}` {} in {} ({})",
        r.verdict.as_str().to_uppercase(),
        r.scenario.name,
        if r.verdict == crate::outcome::DrillVerdict::Pass { "passed" } else { "did not pass" },
        human_duration(r.duration),
        r.checks_tally()
    );
    match &outcome.reports {
        Ok(paths) => {
            println!(
                "reports: {}\n  {}\n  {}\n  {}",
                paths.dir.display(),
                paths.markdown.display(),
                paths.junit.display(),
                paths.json.display()
            );
            verify::signed_line(paths, r).into_iter().for_each(|line| println!("{line}"));
        }
        Err(e) => eprintln!("error: {}", crate::error::error_chain(e)),
    }
    if let Some(kept) = &outcome.kept {
        print_kept(kept);
    }
}

/// How to reach a kept target and remove it; the password stays in the connection file.
fn print_kept(kept: &crate::provision::kept::Kept) {
    let i = &kept.info;
    let what = match &i.container {
        Some(container) => format!("container {container}, database `{}`", i.database),
        None => format!("database `{}` on {}", i.database, i.address),
    };
    println!("kept: target `{}` ({what}) is still running", i.name);
    println!(
        "  connect: PGSERVICEFILE={} psql service={}",
        shell_quote(&kept.connection_file.display().to_string()),
        shell_quote(&kept.service)
    );
    println!("  remove:  pgdrill clean {}", shell_quote(&i.name));
}

/// A word as a POSIX shell reads it back: as it is when it is plain, else in single quotes.
fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=:@%+,".contains(c)) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_k_of_n() {
        assert_eq!(parse_shard("1/2"), Ok(Shard { index: 1, count: 2 }));
        assert_eq!(parse_shard("3/3"), Ok(Shard { index: 3, count: 3 }));
        for bad in ["0/2", "3/2", "1", "a/2", "1/0", "/", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        let (one, two) = (Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 });
        let split = |s: Shard| (0..5).filter(|&n| s.takes(n)).collect::<Vec<_>>();
        assert_eq!((split(one), split(two)), (vec![0, 2, 4], vec![1, 3]));
        let error = Cli::try_parse_from(["pgdrill", "run", "scenarios", "--shard", "3/2"]).expect_err("3 of 2");
        assert!(error.to_string().contains("`3/2` is not K/N"), "{error}");
    }
}
