//! Throwaway tuning: nothing on a drill target must survive a crash, so durability is traded
//! for restore speed, and maintenance memory is sized to the machine.

use std::collections::BTreeMap;

use crate::budget::Share;
use crate::pg;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// The memory and cores a target may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resources {
    pub memory_bytes: u64,
    pub cpus: usize,
}

impl Resources {
    /// This machine's memory (the cgroup limit when lower) and cores.
    pub(crate) fn detect() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let total = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(4 * GIB);
        let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Resources { memory_bytes: total.min(cgroup), cpus }
    }
}

/// The memory of this machine its targets may take, unless a scenario says: three quarters of
/// it, the rest the host's (one drill's default, or the budget drills run at once share).
pub(crate) fn for_targets(machine: Resources) -> u64 {
    machine.memory_bytes / 4 * 3
}

/// Processes a sandboxed target may run, unless the scenario says: PostgreSQL needs one per
/// connection and worker (about 130 at most here), pg_restore one per job.
pub(crate) const DEFAULT_PROCESSES: u32 = 512;

/// What a sandboxed target may use. Memory is the container's limit (for local binaries, which
/// have no cgroup, only the per-process part applies); each process may take half of it
/// (RLIMIT_DATA), so that one runaway query meets PostgreSQL's own "out of memory" error instead
/// of the kernel's OOM killer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub memory: u64,
    pub data_per_process: u64,
    pub processes: u32,
    pub cpus: usize,
    /// The share of the budget of drills run at once (`--jobs`) the defaults came from, and
    /// whether memory and processes were the scenario's instead.
    pub shared: Option<(Share, bool, bool)>,
}

impl Limits {
    /// The scenario's limits; else the drill's share of the budget of drills run at once
    /// (`--jobs`); else three quarters of this machine's memory ([`for_targets`]) and
    /// [`DEFAULT_PROCESSES`].
    pub(crate) fn of(memory: Option<u64>, processes: Option<u32>, share: Option<&Share>) -> Limits {
        let machine = Resources::detect();
        let given = memory.or(share.map(|s| s.amounts.memory)).unwrap_or_else(|| for_targets(machine));
        Limits {
            memory: given,
            data_per_process: given / 2,
            processes: processes.or(share.map(|s| s.amounts.processes)).unwrap_or(DEFAULT_PROCESSES),
            cpus: machine.cpus,
            shared: share.map(|s| (*s, memory.is_some(), processes.is_some())),
        }
    }

    /// What the throwaway tuning sizes itself to.
    pub(crate) fn resources(&self) -> Resources {
        Resources { memory_bytes: self.memory, cpus: self.cpus }
    }

    /// For the reports: `memory 18432 MiB for the container, 9216 MiB per process; at most 512 processes`.
    /// With a share of drills run at once, what it was: `...; 2 drills at once (`--jobs 2`): the
    /// memory its share of 17.2 GiB; the processes its share of 16384`.
    pub(crate) fn describe(&self, whole: &str) -> String {
        let shared = self.shared.map(|(share, memory, processes)| format!("; {}", share.says(memory, processes)));
        format!(
            "memory {} MiB for {whole}, {} MiB per process; at most {} processes (`[target] memory`, `processes`){}",
            self.memory >> 20,
            self.data_per_process >> 20,
            self.processes,
            shared.unwrap_or_default()
        )
    }
}

/// Server settings and the container's `/dev/shm` size for a throwaway target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tuning {
    pub settings: BTreeMap<String, String>,
    pub shm_size_bytes: u64,
}

fn mb(bytes: u64) -> String {
    format!("{}MB", bytes / MIB)
}

/// The scenario's settings with what bounds the server's own use of the disk to `limit`, unless
/// the scenario sets them: `temp_file_limit` (a query's temporary files) at the limit, and a
/// `max_wal_size` of an eighth of it (80MB to 8GB) instead of the throwaway 8GB.
pub(crate) fn disk_bounded(settings: &BTreeMap<String, String>, limit: u64) -> BTreeMap<String, String> {
    let mut bounded = settings.clone();
    bounded.entry("temp_file_limit".into()).or_insert_with(|| format!("{}kB", limit / 1024));
    bounded.entry("max_wal_size".into()).or_insert_with(|| mb((limit / 8).clamp(80 * MIB, 8 * GIB)));
    bounded
}

/// Settings for `resources`, with `overrides` (from the scenario) applied last.
pub(crate) fn throwaway(resources: Resources, overrides: &BTreeMap<String, String>) -> Tuning {
    let mem = resources.memory_bytes;
    // The restore builds up to one index per core at once, each with its own
    // maintenance_work_mem: together they get at most a quarter of the memory.
    let maintenance = (mem / 4 / resources.cpus.max(1) as u64).clamp(64 * MIB, 2 * GIB);
    let shared_buffers = (mem / 8).clamp(128 * MIB, 2 * GIB);
    let workers = resources.cpus.clamp(1, 8);
    let mut settings: BTreeMap<String, String> = [
        // Durability off: a crash loses a drill, never data.
        ("fsync", "off".to_owned()),
        ("synchronous_commit", "off".to_owned()),
        ("full_page_writes", "off".to_owned()),
        ("wal_level", "minimal".to_owned()),
        ("max_wal_senders", "0".to_owned()),
        ("archive_mode", "off".to_owned()),
        ("max_wal_size", "8GB".to_owned()),
        ("checkpoint_timeout", "30min".to_owned()),
        // Nothing runs behind the restore's back; short check queries are not JIT-compiled.
        ("autovacuum", "off".to_owned()),
        ("jit", "off".to_owned()),
        ("shared_buffers", mb(shared_buffers)),
        ("maintenance_work_mem", mb(maintenance)),
        ("max_parallel_maintenance_workers", workers.saturating_sub(1).max(1).to_string()),
        ("max_parallel_workers", workers.to_string()),
        ("max_worker_processes", (workers + 8).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (name, value) in overrides {
        settings.insert(name.clone(), value.clone());
    }
    // Parallel index builds (HNSW above all) allocate maintenance_work_mem in /dev/shm;
    // Docker's 64 MiB default breaks them.
    let maintenance_effective =
        settings.get("maintenance_work_mem").and_then(|v| pg::parse_size(v)).unwrap_or(maintenance);
    let shm_size_bytes = maintenance_effective + 512 * MIB;
    Tuning { settings, shm_size_bytes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_to_the_machine() {
        let t = throwaway(Resources { memory_bytes: 24 * GIB, cpus: 2 }, &BTreeMap::new());
        assert_eq!(t.settings["maintenance_work_mem"], "2048MB");
        assert_eq!(t.settings["fsync"], "off");
        assert_eq!(t.settings["max_parallel_maintenance_workers"], "1");
        assert!(t.shm_size_bytes > 2 * GIB);

        let small = throwaway(Resources { memory_bytes: GIB, cpus: 1 }, &BTreeMap::new());
        assert_eq!(small.settings["maintenance_work_mem"], "256MB");

        let wide = throwaway(Resources { memory_bytes: 16 * GIB, cpus: 8 }, &BTreeMap::new());
        assert_eq!(wide.settings["maintenance_work_mem"], "512MB");
        assert_eq!(wide.settings["max_parallel_maintenance_workers"], "7");
    }

    #[test]
    fn the_disk_limit_bounds_temporary_files_and_wal_unless_the_scenario_says() {
        let bounded = disk_bounded(&BTreeMap::new(), 64 * GIB);
        assert_eq!((bounded["temp_file_limit"].as_str(), bounded["max_wal_size"].as_str()), ("67108864kB", "8192MB"));
        let small = disk_bounded(&BTreeMap::new(), 64 * MIB);
        assert_eq!(small["max_wal_size"], "80MB");
        let mid = throwaway(Resources { memory_bytes: 4 * GIB, cpus: 2 }, &disk_bounded(&BTreeMap::new(), 4 * GIB));
        assert_eq!(mid.settings["max_wal_size"], "512MB");
        let own = disk_bounded(&[("temp_file_limit".to_owned(), "-1".to_owned())].into(), GIB);
        assert_eq!(own["temp_file_limit"], "-1");
    }

    #[test]
    fn with_drills_at_once_the_limits_are_the_drills_share_and_say_so() {
        let whole = crate::budget::Amounts { memory: 12 * GIB, disk: 40 * GIB, processes: 16_384 };
        let share = Share::of(whole, 2, DEFAULT_PROCESSES);
        let shared = Limits::of(None, None, Some(&share));
        assert_eq!((shared.memory, shared.data_per_process, shared.processes), (6 * GIB, 3 * GIB, 512));
        let said = shared.describe("the container");
        assert!(
            said.ends_with(
                "; 2 drills at once (`--jobs 2`): the memory its share of 12.0 GiB; the processes its share of 16384"
            ),
            "{said}"
        );
        let own = Limits::of(Some(8 * GIB), Some(100), Some(&share));
        assert_eq!((own.memory, own.processes), (8 * GIB, 100), "the scenario's own, taken from the budget");
        assert!(own.describe("the container").contains("the memory the scenario's, taken from the 12.0 GiB"));
        let alone = Limits::of(None, None, None);
        assert_eq!(alone.memory, for_targets(Resources::detect()), "one drill: three quarters of the machine's");
        assert!(!alone.describe("the container").contains("at once"));
    }

    #[test]
    fn overrides_win_and_resize_shm() {
        let overrides = [("maintenance_work_mem".to_owned(), "4GB".to_owned())].into();
        let t = throwaway(Resources { memory_bytes: 24 * GIB, cpus: 2 }, &overrides);
        assert_eq!(t.settings["maintenance_work_mem"], "4GB");
        assert_eq!(t.shm_size_bytes, 4 * GIB + 512 * MIB);
    }
}
