//! The budget pgdrill keeps across the targets of drills run at once (`--jobs N`): the memory,
//! disk and processes this machine gives its targets together, each drill's default share of
//! it, and a weighted semaphore per resource, so that a target asking for more than its share
//! waits until it fits beside the others, or is refused at once when it never can. A leaf: the
//! command line measures the machine and fills it; provisioning reads a drill's [`Share`].

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::units::human_size;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The least a drill's share must be for a drill to be worth running beside others: the
/// default `--jobs` never divides the budget finer.
pub(crate) const FLOOR: Amounts = Amounts { memory: GIB, disk: GIB, processes: 256 };

/// What targets take of this machine: memory and disk in bytes, and processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Amounts {
    pub memory: u64,
    pub disk: u64,
    pub processes: u32,
}

/// What a scenario's `[target]` asks for itself (`memory`, `disk`, `processes`); what it leaves
/// unset is its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ask {
    pub memory: Option<u64>,
    pub disk: Option<u64>,
    pub processes: Option<u32>,
}

impl Ask {
    /// A target that takes nothing of this machine (a database on an existing server).
    pub(crate) const NOTHING: Ask = Ask { memory: Some(0), disk: Some(0), processes: Some(0) };
}

/// The default `--jobs`: one drill per two cores, no more than the budget can give each a
/// share of at least [`FLOOR`], and at least one. A drill is sized to use every core by itself
/// (pg_restore's jobs, the restore's connections, parallel index builds), and its times are its
/// recovery evidence: two cores each keep them near what the drill takes alone, where one core
/// each made every drill take 1.5 to 1.7 times as long on a 2-core machine (BENCHMARKS.md,
/// "Drills at once"). A 2-core machine drills one at a time unless `--jobs` says.
pub(crate) fn default_jobs(cores: usize, whole: Amounts) -> usize {
    let fits = [whole.memory / FLOOR.memory, whole.disk / FLOOR.disk, u64::from(whole.processes / FLOOR.processes)]
        .into_iter()
        .min()
        .unwrap_or(0);
    (cores / 2).min(usize::try_from(fits).unwrap_or(usize::MAX)).max(1)
}

/// The processes this machine can run at once: the fewest of its process ids
/// (`kernel.pid_max`) and its threads (`kernel.threads-max`); 32768, Linux's old default, when
/// neither can be read.
pub(crate) fn machine_processes() -> u32 {
    ["/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok()?.trim().parse::<u32>().ok())
        .min()
        .unwrap_or(32_768)
}

/// A drill's default when `jobs` drills share the budget: memory and disk a `jobs`th of it (in
/// whole MiB, so that `jobs` shares fit exactly), processes a `jobs`th of it but no more than
/// `most_processes` (what one target needs unless its scenario says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Share {
    /// What the drill is given where its scenario does not say.
    pub amounts: Amounts,
    /// The whole budget the drills share.
    pub budget: Amounts,
    /// How many drills run at once.
    pub jobs: usize,
}

impl Share {
    pub(crate) fn of(budget: Amounts, jobs: usize, most_processes: u32) -> Share {
        let jobs = jobs.max(1);
        let part = |whole: u64| whole / MIB / jobs as u64 * MIB;
        let processes = budget.processes / u32::try_from(jobs).unwrap_or(u32::MAX);
        Share {
            amounts: Amounts {
                memory: part(budget.memory),
                disk: part(budget.disk),
                processes: processes.min(most_processes),
            },
            budget,
            jobs,
        }
    }

    /// For the reports: how the target's memory and processes were reached, after its limits.
    pub(crate) fn says(&self, scenario_memory: bool, scenario_processes: bool) -> String {
        let memory = match scenario_memory {
            true => format!("the memory the scenario's, taken from the {} they share", human_size(self.budget.memory)),
            false => format!("the memory its share of {}", human_size(self.budget.memory)),
        };
        let processes = match scenario_processes {
            true => format!("the processes the scenario's, taken from the {} they share", self.budget.processes),
            false => format!("the processes its share of {}", self.budget.processes),
        };
        format!("{} drills at once (`--jobs {}`): {memory}; {processes}", self.jobs, self.jobs)
    }

    /// For the reports: how the target's default disk limit was reached.
    pub(crate) fn says_disk(&self) -> String {
        format!(
            "its share of the {} {} drills at once (`--jobs {}`) share; set `[target] disk`",
            human_size(self.budget.disk),
            self.jobs,
            self.jobs
        )
    }
}

/// The budget, and what running drills hold of it.
#[derive(Debug)]
pub(crate) struct Budget {
    share: Share,
    /// One semaphore each: memory and disk in MiB, processes one by one.
    pools: [Arc<Semaphore>; 3],
}

/// What one drill holds of the budget, given back when it is dropped.
#[derive(Debug)]
pub(crate) struct Grant {
    _held: Vec<OwnedSemaphorePermit>,
}

/// A target asks for more than the whole budget: it can never fit, however long it waits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`[target] {key}` asks for {asked}, more than the {whole} the targets of {jobs} drills at once share on this machine: it can never fit (hint: lower `[target] {key}`, or drill it with `--jobs 1`, which keeps no budget)"
)]
pub(crate) struct NeverFits {
    pub key: &'static str,
    pub asked: String,
    pub whole: String,
    pub jobs: usize,
}

impl Budget {
    /// A budget of `whole` for `jobs` drills at once; see [`Share::of`].
    pub(crate) fn new(whole: Amounts, jobs: usize, most_processes: u32) -> Budget {
        let share = Share::of(whole, jobs, most_processes);
        let units = units(whole);
        let pools = units.map(|n| Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS as u64) as usize)));
        Budget { share, pools }
    }

    pub(crate) fn share(&self) -> Share {
        self.share
    }

    /// What a target asking `ask` takes: what it asks for, its share of the rest.
    pub(crate) fn amounts(&self, ask: Ask) -> Amounts {
        let share = self.share.amounts;
        Amounts {
            memory: ask.memory.unwrap_or(share.memory),
            disk: ask.disk.unwrap_or(share.disk),
            processes: ask.processes.unwrap_or(share.processes),
        }
    }

    /// Whether `amounts` can ever be held: the error names the first that cannot.
    pub(crate) fn check(&self, amounts: Amounts) -> Result<(), NeverFits> {
        let whole = self.share.budget;
        let never = |key, asked: String, whole: String| NeverFits { key, asked, whole, jobs: self.share.jobs };
        let (asked, budget) = (units(amounts), units(whole));
        if asked[0] > budget[0] {
            return Err(never("memory", human_size(amounts.memory), human_size(whole.memory)));
        }
        if asked[1] > budget[1] {
            return Err(never("disk", human_size(amounts.disk), human_size(whole.disk)));
        }
        if asked[2] > budget[2] {
            return Err(never("processes", amounts.processes.to_string(), format!("{} processes", whole.processes)));
        }
        Ok(())
    }

    /// Holds `amounts` when they fit beside what running drills hold; `None` when they do not
    /// fit now.
    pub(crate) fn try_take(&self, amounts: Amounts) -> Result<Option<Grant>, NeverFits> {
        self.check(amounts)?;
        let mut held = Vec::new();
        for (pool, n) in self.pools.iter().zip(units(amounts)) {
            match pool.clone().try_acquire_many_owned(n as u32) {
                Ok(permit) => held.push(permit),
                // What was taken goes back as `held` drops.
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(Grant { _held: held }))
    }

    /// Holds `amounts`, waiting until they fit beside what running drills hold (each pool in
    /// turn, always in the same order, so that waiters never hold what the other waits for in
    /// a circle); an error at once when they never can.
    pub(crate) async fn take(&self, amounts: Amounts) -> Result<Grant, NeverFits> {
        self.check(amounts)?;
        let mut held = Vec::new();
        for (pool, n) in self.pools.iter().zip(units(amounts)) {
            let permit = pool.clone().acquire_many_owned(n as u32).await.expect("the budget's pools are never closed");
            held.push(permit);
        }
        Ok(Grant { _held: held })
    }

    /// What is not held now: memory and disk in whole MiB.
    pub(crate) fn free(&self) -> Amounts {
        let [memory, disk, processes] = self.pools.each_ref().map(|p| p.available_permits() as u64);
        Amounts { memory: memory * MIB, disk: disk * MIB, processes: processes as u32 }
    }
}

/// Amounts in the pools' units: memory and disk in MiB (rounded up, so that a request is never
/// given less than it asked for), processes one by one; each at most what a permit count holds.
fn units(amounts: Amounts) -> [u64; 3] {
    let mib = |bytes: u64| bytes.div_ceil(MIB).min(u64::from(u32::MAX));
    [mib(amounts.memory), mib(amounts.disk), u64::from(amounts.processes)]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const WHOLE: Amounts = Amounts { memory: 12 * GIB, disk: 40 * GIB, processes: 16_384 };

    #[test]
    fn each_drill_gets_a_jobsth_of_the_budget_that_fits_exactly() {
        let share = Share::of(WHOLE, 2, 512);
        assert_eq!(share.amounts, Amounts { memory: 6 * GIB, disk: 20 * GIB, processes: 512 });
        let odd = Amounts { memory: 10 * GIB + 1, disk: 7 * GIB, processes: 900 };
        let three = Share::of(odd, 3, 512);
        assert_eq!(three.amounts.memory, 3413 * MIB, "whole MiB, rounded down");
        assert!(three.amounts.memory * 3 <= odd.memory && three.amounts.disk * 3 <= odd.disk);
        assert_eq!(three.amounts.processes, 300, "a third of 900, under the 512 a target needs");
        assert_eq!(Share::of(WHOLE, 1, 512).amounts.memory, WHOLE.memory, "one drill: the whole budget");
        assert_eq!(Share::of(WHOLE, 0, 512).jobs, 1, "never divided by zero");
    }

    #[test]
    fn the_default_jobs_is_one_per_two_cores_while_each_share_is_worth_a_target() {
        assert_eq!(default_jobs(2, WHOLE), 1, "a 2-core machine: one at a time");
        assert_eq!(default_jobs(8, WHOLE), 4);
        assert_eq!(default_jobs(32, WHOLE), 12, "12 GiB of memory: 12 shares of 1 GiB");
        let small = Amounts { memory: 3 * GIB, disk: 2 * GIB + 1, processes: 16_384 };
        assert_eq!(default_jobs(16, small), 2, "the disk gives 2 shares of 1 GiB");
        assert_eq!(default_jobs(8, Amounts::default()), 1, "at least one");
        assert_eq!(default_jobs(0, WHOLE), 1);
    }

    #[test]
    fn this_machine_runs_some_processes() {
        assert!(machine_processes() >= 1024, "{}", machine_processes());
    }

    #[test]
    fn a_target_takes_what_its_scenario_asks_and_its_share_of_the_rest() {
        let budget = Budget::new(WHOLE, 2, 512);
        let asked = budget.amounts(Ask { memory: Some(8 * GIB), ..Ask::default() });
        assert_eq!(asked, Amounts { memory: 8 * GIB, disk: 20 * GIB, processes: 512 });
        assert_eq!(budget.amounts(Ask::NOTHING), Amounts::default());
    }

    #[tokio::test]
    async fn shares_fit_side_by_side_and_a_larger_ask_waits_until_one_ends() {
        let budget = Budget::new(WHOLE, 2, 512);
        let share = budget.amounts(Ask::default());
        let first = budget.take(share).await.expect("fits");
        let second = budget.try_take(share).unwrap().expect("two shares fit at once");
        assert_eq!(budget.free().memory, 0);
        assert!(budget.try_take(share).unwrap().is_none(), "a third share waits");
        drop(second);
        let larger = budget.amounts(Ask { memory: Some(8 * GIB), ..Ask::default() });
        assert!(budget.try_take(larger).unwrap().is_none(), "8 GiB beside 6 GiB is more than 12 GiB");
        let waiting = budget.take(larger);
        tokio::pin!(waiting);
        assert!(tokio::time::timeout(Duration::from_millis(100), &mut waiting).await.is_err(), "it waits");
        drop(first);
        let grant = tokio::time::timeout(Duration::from_secs(5), &mut waiting).await.expect("it fits now").unwrap();
        assert_eq!(budget.free().memory, 4 * GIB, "8 GiB held of 12");
        drop(grant);
        assert_eq!(budget.free(), WHOLE, "everything given back");
    }

    #[tokio::test]
    async fn an_ask_larger_than_the_whole_budget_is_refused_at_once() {
        let budget = Budget::new(WHOLE, 2, 512);
        let held = budget.take(budget.amounts(Ask::default())).await.unwrap();
        let huge = budget.amounts(Ask { disk: Some(64 * GIB), ..Ask::default() });
        let refused = tokio::time::timeout(Duration::from_secs(1), budget.take(huge)).await.expect("at once");
        let error = refused.expect_err("never fits").to_string();
        assert!(error.starts_with("`[target] disk` asks for 64.0 GiB, more than the 40.0 GiB"), "{error}");
        assert!(error.contains("2 drills at once") && error.contains("--jobs 1"), "{error}");
        let processes = Ask { processes: Some(20_000), ..Ask::default() };
        let error = budget.try_take(budget.amounts(processes)).expect_err("never fits").to_string();
        assert!(error.contains("asks for 20000, more than the 16384 processes"), "{error}");
        drop(held);
        assert_eq!(budget.free(), WHOLE, "a refusal holds nothing");
    }

    #[test]
    fn the_reports_say_whose_each_amount_is() {
        let share = Share::of(WHOLE, 2, 512);
        assert_eq!(
            share.says(false, true),
            "2 drills at once (`--jobs 2`): the memory its share of 12.0 GiB; the processes the scenario's, taken from the 16384 they share"
        );
        assert!(share.says_disk().starts_with("its share of the 40.0 GiB 2 drills at once"), "{}", share.says_disk());
    }
}
