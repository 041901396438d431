//! Drills at once (`run --jobs N`, `gate --jobs N`): up to N drills on the async runtime, their
//! targets sharing one budget of this machine (`crate::budget`: three quarters of its memory,
//! the room TMPDIR's filesystem has beyond the host's reserve, half of its process ids), each
//! drill's console lines labelled with its scenario's name, and one summary for all of them, in
//! file order, once every drill has ended. An interruption cancels every drill: each tears down
//! and writes its reports, and none starts after it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressDrawTarget};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Exit;
use super::after::told;
use super::args::RunArgs;
use super::summary::{Totals, summarize};
use crate::budget::{Amounts, Ask, Budget, Grant};
use crate::drill::{self, DrillOptions, DrillOutcome};
use crate::provision::tuning::{self, DEFAULT_PROCESSES, Resources};
use crate::report::console::Console;
use crate::scenario::Scenario;
use crate::units::human_size;

/// A scenario the selection drills: its file, and the scenario when it loads (one that does
/// not is drilled, and fails).
pub(super) struct Chosen {
    pub file: PathBuf,
    pub loaded: Option<Scenario>,
}

/// How several drills run at once: how many, and the budget their targets share.
pub(super) struct Plan {
    jobs: usize,
    budget: Budget,
}

/// How the drills of a run go: `None` one after another, as before `--jobs` (`--jobs 1`, one
/// drill, or by default on a machine of fewer than 4 cores), with no budget kept; else at most
/// `--jobs` at once (by default [`crate::budget::default_jobs`] of this machine), never more
/// than there are drills.
pub(super) fn plan(asked: Option<u16>, drills: usize) -> Option<Plan> {
    if asked == Some(1) || drills <= 1 {
        return None;
    }
    let machine = Resources::detect();
    let whole = whole(machine);
    let jobs = asked.map_or_else(|| crate::budget::default_jobs(machine.cpus, whole), usize::from).min(drills);
    (jobs > 1).then(|| Plan { jobs, budget: Budget::new(whole, jobs, DEFAULT_PROCESSES) })
}

/// What this machine gives the targets of drills at once: three quarters of its memory (as one
/// drill's default), what TMPDIR's filesystem has free beyond the host's reserve (where the
/// targets' data lives), half of its process ids.
fn whole(machine: Resources) -> Amounts {
    let disk = crate::disk::space(&std::env::temp_dir()).ok().and_then(crate::disk::default_limit);
    Amounts {
        memory: tuning::for_targets(machine),
        disk: disk.map_or(0, |limit| limit.bytes),
        processes: crate::budget::machine_processes() / 2,
    }
}

/// One drill waiting for its turn, or refused.
struct Job {
    /// Its place in file order, for the summary.
    index: usize,
    chosen: Chosen,
    amounts: Amounts,
}

impl Plan {
    /// Runs the drills, up to `jobs` at once, in file order as room frees; the worst ending.
    pub(super) async fn run(
        self,
        chosen: Vec<Chosen>,
        common: &RunArgs,
        options: &DrillOptions,
        cancel: CancellationToken,
    ) -> Exit {
        let share = self.budget.share();
        let budget = Arc::new(self.budget);
        let names: Vec<String> = chosen.iter().map(name).collect();
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) + 2;
        let live = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if live {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        eprintln!("pgdrill: {} drills, {} at once; {}", chosen.len(), self.jobs, budget_line(&share));
        let (jobs, refused) = refuse_what_never_fits(&budget, chosen, &names);
        let mut worst = if refused.is_empty() { Exit::Pass } else { Exit::Fail };
        let slots = Arc::new(Semaphore::new(self.jobs));
        let mut running = JoinSet::new();
        for job in jobs {
            let Some((slot, grant)) = room_for(&job, &names[job.index], &budget, &slots, &multi, &cancel).await else {
                break;
            };
            let label = format!("{:<width$}", format!("[{}]", names[job.index]));
            let console = Console::new(common.verbose).one_of(label, multi.clone());
            let options = DrillOptions { share: Some(share), ..options.clone() };
            let (common, cancel) = (common.clone(), cancel.clone());
            running.spawn(async move {
                let Chosen { file, loaded } = job.chosen;
                // On the heap: a drill's future is larger than a worker thread's stack takes.
                let outcome = Box::pin(drill::run(&file, &options, vec![Box::new(console)], cancel)).await;
                if let Some(error) = &outcome.scenario_error {
                    eprintln!("{}", super::render(error));
                }
                told(&outcome, loaded.as_ref(), common.notify, common.metrics_dir.as_deref(), &options).await;
                // The room first: the next drill, woken by the slot, finds it free.
                drop(grant);
                drop(slot);
                (job.index, outcome)
            });
        }
        let mut ended: Vec<(usize, DrillOutcome)> = Vec::new();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok(done) => ended.push(done),
                Err(e) => {
                    eprintln!("error: a drill's task ended without its outcome: {e}");
                    worst = worst.max(Exit::Fail);
                }
            }
        }
        ended.sort_by_key(|(index, _)| *index);
        let outcomes: Vec<&DrillOutcome> = ended.iter().map(|(_, outcome)| outcome).collect();
        summarize(&outcomes);
        for line in &refused {
            outln!("NOT DRILLED: {line}");
        }
        let mut totals = Totals::default();
        outcomes.iter().for_each(|outcome| totals.add(outcome));
        totals.line().into_iter().for_each(|line| outln!("{line}"));
        outcomes.iter().map(|o| Exit::of(o)).fold(worst, Exit::max)
    }
}

/// How the console names a drill: its scenario's name, else its file's.
fn name(chosen: &Chosen) -> String {
    match &chosen.loaded {
        Some(scenario) => scenario.name.clone(),
        None => chosen.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
    }
}

/// The budget in a line: `each target's share: 8.6 GiB of memory, 35.0 GiB of disk, 512
/// processes (of 17.2 GiB, 70.0 GiB, 16384)`.
fn budget_line(share: &crate::budget::Share) -> String {
    let (a, b) = (share.amounts, share.budget);
    format!(
        "each target's share: {} of memory, {} of disk, {} processes (of {}, {}, {})",
        human_size(a.memory),
        human_size(a.disk),
        a.processes,
        human_size(b.memory),
        human_size(b.disk),
        b.processes
    )
}

/// The drills whose target can fit the budget, each with what it takes; those that never can
/// are said at once and are not drilled (they fail the run): why, for the summary.
fn refuse_what_never_fits(budget: &Budget, chosen: Vec<Chosen>, names: &[String]) -> (Vec<Job>, Vec<String>) {
    let mut refused = Vec::new();
    let mut jobs = Vec::new();
    for (index, chosen) in chosen.into_iter().enumerate() {
        let ask = chosen.loaded.as_ref().map_or(Ask::NOTHING, |s| s.target.ask());
        let amounts = budget.amounts(ask);
        match budget.check(amounts) {
            Ok(()) => jobs.push(Job { index, chosen, amounts }),
            Err(never) => {
                let line = format!("drill `{}` ({}): {never}", names[index], chosen.file.display());
                eprintln!("error: not drilled: {line}");
                refused.push(line);
            }
        }
    }
    (jobs, refused)
}

/// A slot among the `--jobs` and the room `job`'s target takes of the budget, waited for (said
/// when it must wait); `None` once the run is interrupted.
async fn room_for(
    job: &Job,
    name: &str,
    budget: &Budget,
    slots: &Arc<Semaphore>,
    multi: &MultiProgress,
    cancel: &CancellationToken,
) -> Option<(tokio::sync::OwnedSemaphorePermit, Grant)> {
    let slot = tokio::select! {
        slot = slots.clone().acquire_owned() => slot.ok()?,
        () = cancel.cancelled() => return None,
    };
    if let Ok(Some(grant)) = budget.try_take(job.amounts) {
        return Some((slot, grant));
    }
    let (asks, free) = (job.amounts, budget.free());
    multi.suspend(|| {
        eprintln!(
            "pgdrill: `{name}` waits for room: its target takes {} of memory, {} of disk, {} processes; free now {}, {}, {}",
            human_size(asks.memory),
            human_size(asks.disk),
            asks.processes,
            human_size(free.memory),
            human_size(free.disk),
            free.processes
        )
    });
    tokio::select! {
        grant = budget.take(job.amounts) => grant.ok().map(|grant| (slot, grant)),
        () = cancel.cancelled() => None,
    }
}
