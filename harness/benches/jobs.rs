//! Drills at once: eight scenarios (the shipped ones, their backups the bundled fixtures, with
//! all their checks) drilled by one `pgdrill run` with `--jobs 1` and with `--jobs 2`, side by
//! side in one run, alternating (1, 2, 1, 2, ...), on this machine: the wall time of each run,
//! the time the drills took each (how much a drill slows down beside another), and the ratio.
//!
//! `cargo bench --bench jobs`; `PGDRILL_BENCH_ROUNDS=3` for more rounds (2 by default). The
//! scenarios and reports go to `target/bench-data/jobs/`, emptied first.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgdrill::outcome::{DrillRecord, DrillVerdict, Phase};

/// The shipped scenarios drilled (powernode's, which builds and boots an application with
/// cargo, is left out: a second cargo waits for the first's lock), then three of them again under
/// other names: eight.
const SCENARIOS: [(&str, &str); 8] = [
    ("plur", "plur"),
    ("caracal", "caracal"),
    ("controlplane", "controlplane"),
    ("paperclip", "paperclip"),
    ("prismeai", "prismeai"),
    ("plur", "plur-again"),
    ("caracal", "caracal-again"),
    ("paperclip", "paperclip-again"),
];

/// One `pgdrill run` of the folder: its wall time and the drills' records.
struct Run {
    wall: Duration,
    drills: Vec<DrillRecord>,
}

#[expect(clippy::disallowed_methods, reason = "the benchmark's own thread, not async")]
fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_owned();
    let data = root.join("target/bench-data/jobs");
    let _ = std::fs::remove_dir_all(&data);
    let folder = scenarios(&root, &data);
    let rounds: usize = std::env::var("PGDRILL_BENCH_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(2);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "pgdrill jobs benchmark: {cores} cores, {} scenarios, {rounds} rounds of --jobs 1 then --jobs 2",
        SCENARIOS.len()
    );
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        for (jobs, runs) in [(1, &mut one), (2, &mut two)] {
            let run = drill(&folder, &data.join(format!("reports-{round}-jobs{jobs}")), jobs);
            println!(
                "round {round}, --jobs {jobs}: {:>6.1} s wall; the drills took {:>6.1} s together ({:.1} s each on average)",
                run.wall.as_secs_f64(),
                drills_total(&run).as_secs_f64(),
                drills_total(&run).as_secs_f64() / run.drills.len() as f64
            );
            runs.push(run);
        }
    }
    let mean = |runs: &[Run]| runs.iter().map(|r| r.wall.as_secs_f64()).sum::<f64>() / runs.len() as f64;
    let each = |runs: &[Run]| {
        runs.iter().map(|r| drills_total(r).as_secs_f64() / r.drills.len() as f64).sum::<f64>() / runs.len() as f64
    };
    let restore = |runs: &[Run]| {
        let all: Vec<f64> = runs.iter().flat_map(|r| r.drills.iter().map(|d| phase(d, Phase::Restore))).collect();
        all.iter().sum::<f64>() / all.len() as f64
    };
    println!("\n{:<12} {:>10} {:>16} {:>16}", "", "wall", "a drill, mean", "its restore");
    for (label, runs) in [("--jobs 1", &one), ("--jobs 2", &two)] {
        println!("{label:<12} {:>8.1} s {:>14.1} s {:>14.2} s", mean(runs), each(runs), restore(runs));
    }
    println!(
        "\nwall, --jobs 2 / --jobs 1: {:.2} (1.0 is no gain, 0.5 twice as fast); a drill beside another takes {:.2}x its time alone",
        mean(&two) / mean(&one),
        each(&two) / each(&one)
    );
}

/// The eight scenarios in `data/scenarios`: each shipped file with its paths made absolute and
/// its name replaced.
fn scenarios(root: &Path, data: &Path) -> PathBuf {
    let folder = data.join("scenarios");
    std::fs::create_dir_all(&folder).unwrap();
    for (shipped, name) in SCENARIOS {
        let text = std::fs::read_to_string(root.join(format!("scenarios/{shipped}.toml"))).unwrap();
        let text = text
            .replace("\"../", &format!("\"{}/", root.display()))
            .replace(&format!("name = \"{shipped}\""), &format!("name = \"{name}\""));
        assert!(text.contains(&format!("name = \"{name}\"")), "{shipped}.toml names itself");
        std::fs::write(folder.join(format!("{name}.toml")), text).unwrap();
    }
    folder
}

/// `pgdrill run FOLDER --jobs N`, which must pass.
fn drill(folder: &Path, reports: &Path, jobs: usize) -> Run {
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(["run", &folder.display().to_string(), "--reports", &reports.display().to_string()])
        .args(["--jobs", &jobs.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let wall = started.elapsed();
    let drills: Vec<DrillRecord> = json_files(reports)
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect();
    let failed: Vec<&str> =
        drills.iter().filter(|d| d.verdict != DrillVerdict::Pass).map(|d| d.scenario.name.as_str()).collect();
    assert!(status.success() && failed.is_empty(), "--jobs {jobs}: {failed:?} did not pass; see {}", reports.display());
    assert_eq!(drills.len(), SCENARIOS.len(), "every scenario drilled, in {}", reports.display());
    Run { wall, drills }
}

/// The drill.json files under `dir`.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == "drill.json") {
                found.push(path);
            }
        }
    }
    found
}

fn drills_total(run: &Run) -> Duration {
    run.drills.iter().map(|d| d.duration).sum()
}

fn phase(record: &DrillRecord, phase: Phase) -> f64 {
    record.phase(phase).map_or(0.0, |p| p.duration.as_secs_f64())
}
