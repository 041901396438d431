//! `pgdrill run` and `pgdrill gate`: the drills of a selection of scenarios, one after another,
//! each summarized on stdout, its webhook told and its metrics copied; the exit code of the worst.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use tabled::builder::Builder;
use tabled::settings::Style;

use super::args::RunArgs;
use super::{Exit, after, interrupts, render, verify};
use crate::check::Verdict;
use crate::drill::{self, DrillOptions, DrillOutcome};
use crate::report::console::Console;
use crate::scenario::{Scenario, discover, selected};
use crate::units::human_duration;

/// Runs the drills of `paths` (files or folders) one after another.
pub(super) async fn run_many(paths: &[PathBuf], common: RunArgs, mut options: DrillOptions, gate: bool) -> ExitCode {
    let files = match scenario_files(paths, &common) {
        Ok(files) => files,
        Err(exit) => return exit.into(),
    };
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
        if !is_selected(file, loaded.as_ref(), &common.tags, gate) {
            continue;
        }
        chosen += 1;
        if common.shard.is_some_and(|shard| !shard.takes(chosen - 1)) {
            continue;
        }
        ran += 1;
        let outcome = drill::run(file, &options, vec![Box::new(Console::new(common.verbose))], cancel.clone()).await;
        after_drill(&outcome, loaded.as_ref(), &common, &options).await;
        worst = worst.max(Exit::of(&outcome));
        let number = signal.load(Ordering::SeqCst);
        if number != 0 {
            return Exit::Signal(number as u8).into();
        }
    }
    match nothing_ran(ran, chosen, &common) {
        Some(exit) => exit.into(),
        None => verify::exit_for(options.signing.as_ref(), worst).into(),
    }
}

/// The scenario files of `paths`, or how pgdrill ends when there is none (said).
fn scenario_files(paths: &[PathBuf], common: &RunArgs) -> Result<Vec<PathBuf>, Exit> {
    let files = match discover(paths) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => {
            eprintln!(
                "error: no scenario (*.toml) in {}",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
            return Err(Exit::Usage);
        }
        Err(e) => {
            eprintln!("error: cannot read scenarios: {e}");
            return Err(Exit::Usage);
        }
    };
    if files.len() > 1 && common.out.is_some() {
        eprintln!("error: --out names one folder, and {} scenarios were given (use --reports)", files.len());
        return Err(Exit::Usage);
    }
    Ok(files)
}

/// Whether the scenario of `file` is drilled: its tags selected, and (for the gate) a check the
/// gate drills. One that cannot be loaded is drilled, and fails.
fn is_selected(file: &std::path::Path, loaded: Option<&Scenario>, tags: &[String], gate: bool) -> bool {
    let Some(scenario) = loaded else { return true };
    if !selected(&scenario.tags, tags) {
        return false;
    }
    if gate && !scenario.checks.iter().any(|c| crate::check::gate_kinds().contains(&c.kind())) {
        eprintln!("pgdrill: {} has no role, RLS or audit checks: not part of the gate", file.display());
        return false;
    }
    true
}

/// What follows a drill: its summary, its webhook told, its metrics copied.
async fn after_drill(outcome: &DrillOutcome, loaded: Option<&Scenario>, common: &RunArgs, options: &DrillOptions) {
    if let Some(error) = &outcome.scenario_error {
        eprintln!("{}", render(error));
    }
    summarize(outcome);
    // A baseline's capture is no drill to be told about.
    let notify = after::spec(loaded.and_then(|s| s.notify.as_ref()), common.notify);
    if let Some(spec) = notify.filter(|_| options.baseline_out.is_none()) {
        after::notify(&spec, outcome).await;
    }
    if let Some(dir) = &common.metrics_dir {
        after::copy_metrics(dir, outcome);
    }
}

/// How pgdrill ends when no drill ran (said): a pass for a shard with nothing to do, else
/// unusable input.
fn nothing_ran(ran: usize, chosen: usize, common: &RunArgs) -> Option<Exit> {
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
        return Some(Exit::Pass);
    }
    if ran == 0 {
        eprintln!("error: no scenario matched (tags: {})", common.tags.join(", "));
        return Some(Exit::Usage);
    }
    None
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
