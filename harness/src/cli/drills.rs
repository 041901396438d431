//! `pgdrill run` and `pgdrill gate`: the drills of a selection of scenarios, one after another
//! (each summarized on stdout as it ends) or several at once (`--jobs`, `cli/jobs.rs`: summarized
//! together once all have ended), each's webhook told and its metrics copied; the exit code of
//! the worst.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};

use tokio_util::sync::CancellationToken;

use super::args::{RunArgs, Shard};
use super::jobs::{self, Chosen};
use super::publish;
use super::summary::{Totals, summarize};
use super::{Exit, after, interrupts, render, verify};
use crate::drill::{self, DrillOptions};
use crate::report::console::Console;
use crate::report::publish::Remote;
use crate::scenario::{Scenario, discover, selected};

/// Runs the drills of `paths` (files or folders): one after another, or `--jobs` at once.
pub(super) async fn run_many(paths: &[PathBuf], common: RunArgs, mut options: DrillOptions, gate: bool) -> ExitCode {
    let files = match scenario_files(paths, &common) {
        Ok(files) => files,
        Err(exit) => return exit.into(),
    };
    let shard = match common.shard(|name| std::env::var(name).ok()) {
        Ok(shard) => shard,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage.into();
        }
    };
    options.out_dir = common.out.clone();
    options.history = common.history.clone();
    options.reports_root = common.reports.clone();
    let mut remote: Option<Remote> = match publish::open(&common.reports).await {
        Ok(remote) => remote,
        Err(exit) => return exit.into(),
    };
    if remote.is_some() && common.history.is_some() {
        eprintln!("error: --history is for reports in a folder: with an object store, the history is the store's");
        return Exit::Usage.into();
    }
    if let Some(remote) = &remote {
        options.reports_root = remote.local_root().to_owned();
    }
    options.snapshots = match common.snapshots() {
        Ok(snapshots) => snapshots,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage.into();
        }
    };
    options.verify_first = common.verify_first;
    options.sample_within = common.sample.clone();
    options.sample_seed = common.seed.clone();
    options.signing = verify::signing(common.signing_key.as_deref());
    options.on_pod = common.target == Some(super::args::TargetChoice::Pod);
    let (cancel, signal) = interrupts();
    let (chosen, selected) = choose(&files, &common, shard, gate);
    if let Some(exit) = nothing_ran(chosen.len(), selected, shard, &common.tags) {
        return exit.into();
    }
    // Only once there is a drill to run: a run with nothing to drill makes no folder.
    if let Err(exit) = writable(&options) {
        return exit.into();
    }
    // Reports to an object store are drilled one at a time: each drill's history is read before
    // it and appended after it.
    if remote.is_some() && common.jobs.is_some_and(|jobs| jobs > 1) && chosen.len() > 1 {
        eprintln!("pgdrill: reports go to an object store: the drills run one at a time (--jobs is not used)");
    }
    let plan = jobs::plan(common.jobs, chosen.len()).filter(|_| remote.is_none());
    let worst = match plan {
        None => {
            let ran = one_at_a_time(&chosen, &common, &options, remote.as_mut(), cancel, &signal).await;
            publish::finish(remote);
            match ran {
                Ok(worst) => worst,
                Err(interrupted) => return interrupted.into(),
            }
        }
        Some(plan) => plan.run(chosen, &common, &options, cancel).await,
    };
    let number = signal.load(Ordering::SeqCst);
    if number != 0 {
        return Exit::Signal(number as u8).into();
    }
    verify::exit_for(options.signing.as_ref(), worst).into()
}

/// Proves, before any drill, that the folder its reports go to (`--out`, or the reports' root)
/// and the folder of `--history` can be written: a drill that ran for an hour must not end
/// unable to say what it found. `Err` (said): 2, what the command line names is unusable.
fn writable(options: &DrillOptions) -> Result<(), Exit> {
    let history = options.history.as_deref().map(|file| match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    });
    let folders = [Some(options.out_dir.as_deref().unwrap_or(&options.reports_root)), history];
    for folder in folders.into_iter().flatten() {
        let proven = std::fs::create_dir_all(folder)
            .and_then(|()| tempfile::Builder::new().prefix(".pgdrill-write-probe-").tempfile_in(folder));
        if let Err(e) = proven {
            eprintln!(
                "error: cannot write the reports in `{}`: {e}; no drill runs (give a folder this user may write, e.g. --reports DIR)",
                folder.display()
            );
            return Err(Exit::Usage);
        }
    }
    Ok(())
}

/// The scenarios of `files` the run drills, in file order, and how many the tags (and the gate)
/// selected before `--shard` took its own.
fn choose(files: &[PathBuf], common: &RunArgs, shard: Option<Shard>, gate: bool) -> (Vec<Chosen>, usize) {
    let mut chosen = Vec::new();
    let mut selected = 0;
    for file in files {
        // Selection needs the scenario's tags; an unusable scenario is drilled, and fails.
        let loaded = Scenario::load(file).ok();
        if !is_selected(file, loaded.as_ref(), &common.tags, gate) {
            continue;
        }
        selected += 1;
        if shard.is_some_and(|shard| !shard.takes(selected - 1)) {
            continue;
        }
        chosen.push(Chosen { file: file.clone(), loaded });
    }
    (chosen, selected)
}

/// The drills one after another, each summarized as it ends; the worst ending, or the
/// interruption that stopped them (the drill it cut short tore down and wrote its reports).
async fn one_at_a_time(
    chosen: &[Chosen],
    common: &RunArgs,
    options: &DrillOptions,
    mut remote: Option<&mut Remote>,
    cancel: CancellationToken,
    signal: &AtomicI32,
) -> Result<Exit, Exit> {
    let mut worst = Exit::Pass;
    let mut totals = Totals::default();
    let said = |totals: &Totals| totals.line().into_iter().for_each(|line| outln!("{line}"));
    for Chosen { file, loaded } in chosen {
        if let Err(exit) = publish::before(remote.as_deref_mut(), loaded.as_ref()).await {
            worst = worst.max(exit);
            continue;
        }
        let outcome = drill::run(file, options, vec![Box::new(Console::new(common.verbose))], cancel.clone()).await;
        if let Some(error) = &outcome.scenario_error {
            eprintln!("{}", render(error));
        }
        summarize(std::slice::from_ref(&&outcome));
        totals.add(&outcome);
        after::told(&outcome, loaded.as_ref(), common.notify, common.metrics_dir.as_deref(), options).await;
        worst = worst.max(Exit::of(&outcome)).max(publish::after(remote.as_deref_mut(), &outcome).await);
        let number = signal.load(Ordering::SeqCst);
        if number != 0 {
            said(&totals);
            return Err(Exit::Signal(number as u8));
        }
    }
    said(&totals);
    Ok(worst)
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

/// How pgdrill ends when no drill ran (said): a pass for a shard with nothing to do, else
/// unusable input.
fn nothing_ran(ran: usize, chosen: usize, shard: Option<Shard>, tags: &[String]) -> Option<Exit> {
    if let (0, Some(shard)) = (ran, shard)
        && chosen > 0
    {
        // More runners than scenarios: this one has nothing to do, which is no failure.
        outln!(
            "pgdrill: shard {}/{} has none of the {chosen} selected scenario{}",
            shard.index,
            shard.count,
            if chosen == 1 { "" } else { "s" }
        );
        return Some(Exit::Pass);
    }
    if ran == 0 {
        eprintln!("error: no scenario matched (tags: {})", tags.join(", "));
        return Some(Exit::Usage);
    }
    None
}
