//! Restore once, drill many, side by side in one run: the time from `pgdrill run` to the checks
//! starting, for a fresh restore and for a clone of a snapshot, on the small and the large
//! dataset (the restore benchmark's); what making the snapshot costs, what it takes to keep,
//! and the disk each clone's own layer takes.
//!
//! `cargo bench --bench clone` (both sizes), or `PGDRILL_BENCH_SIZES=small`. The snapshots go
//! to `target/bench-data/snapshots/`, emptied first. With `PGDRILL_BENCH_REFLINK_DIR` naming a
//! folder on a file system that shares blocks (XFS with reflinks, btrfs), the clones are drilled
//! a second time with the store and the targets' folders (TMPDIR) there: reflinked clones
//! beside the overlay's.

#[path = "support/commands.rs"]
mod commands;
#[path = "support/dataset.rs"]
mod dataset;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dataset::{Bench, Size, dataset};
use pgdrill::outcome::{DrillRecord, Phase};

/// Clones drilled after the snapshot is made.
const CLONES: usize = 3;

#[expect(clippy::disallowed_methods, reason = "the benchmark's own thread, not async")]
fn main() {
    let bench = Bench::start();
    let (_root, image, data) = (&bench.root, &bench.image, &bench.data);
    let store = data.join("snapshots");

    println!("pgdrill clone benchmark: {} cores, image {image}", std::thread::available_parallelism().unwrap());
    let mut rows = Vec::new();
    for size in bench.sizes() {
        let (plain, _) = dataset(image, data, size);
        let _ = std::fs::remove_dir_all(&store);
        let scenario = scenario(data, size, &plain);
        let report = |what: &str| data.join(format!("clone-report-{}-{what}", size.name));
        let env = [("PGDRILL_SNAPSHOTS".to_owned(), store.display().to_string())];
        let fresh = drill(&scenario, &env, &[], &report("fresh"));
        let (maker, clones) = snapshot_and_clones(&scenario, &env, &report);
        rows.push(print(size, &fresh, &maker, &clones, usage(&store)));
        if let Ok(dir) = std::env::var("PGDRILL_BENCH_REFLINK_DIR") {
            let (store, tmp) = (Path::new(&dir).join("snapshots"), Path::new(&dir).join("tmp"));
            let _ = std::fs::remove_dir_all(&store);
            std::fs::create_dir_all(&tmp).unwrap();
            let env = [
                ("PGDRILL_SNAPSHOTS".to_owned(), store.display().to_string()),
                ("TMPDIR".to_owned(), tmp.display().to_string()),
            ];
            let report = |what: &str| report(&format!("reflink-{what}"));
            let (maker, clones) = snapshot_and_clones(&scenario, &env, &report);
            println!("\nthe same on {dir}, whose file system shares blocks:");
            print(size, &fresh, &maker, &clones, usage(&store));
            let _ = std::fs::remove_dir_all(&store);
        }
    }
    if rows.len() == 2 {
        println!(
            "\nclone ready, large / small: {:.2} (a clone's start does not grow with the database; a restore's grows {:.1}x)",
            rows[1].0 / rows[0].0,
            rows[1].1 / rows[0].1
        );
    }
}

/// A drill that restores and keeps a snapshot, then [`CLONES`] drills that clone it.
fn snapshot_and_clones(
    scenario: &Path,
    env: &[(String, String)],
    report: &dyn Fn(&str) -> PathBuf,
) -> (DrillRecord, Vec<DrillRecord>) {
    let maker = drill(scenario, env, &["--snapshot"], &report("maker"));
    let clones: Vec<DrillRecord> =
        (0..CLONES).map(|i| drill(scenario, env, &["--reuse"], &report(&format!("clone-{i}")))).collect();
    for clone in &clones {
        assert!(clone.clone_of.is_some(), "not a clone: {}", report("clone-0").display());
    }
    (maker, clones)
}

/// Prints one dataset's results; returns (clone ready, fresh ready) in seconds.
fn print(size: &Size, fresh: &DrillRecord, maker: &DrillRecord, clones: &[DrillRecord], kept: u64) -> (f64, f64) {
    let secs = |d: Duration| d.as_secs_f64();
    println!("\n== {} dataset", size.name);
    println!("{:<44} {:>10} {:>10} {:>10}", "", "to checks", "checks", "whole");
    let line = |label: &str, r: &DrillRecord| {
        println!(
            "{label:<44} {:>8.2} s {:>8.2} s {:>8.2} s",
            secs(to_checks(r)),
            secs(phase(r, Phase::Checks)),
            secs(r.duration)
        );
    };
    line("fresh restore", fresh);
    line("fresh restore, keeping a snapshot", maker);
    for (i, clone) in clones.iter().enumerate() {
        line(&format!("clone {}", i + 1), clone);
    }
    let ready: Vec<f64> = clones.iter().map(|c| secs(to_checks(c))).collect();
    let mean = ready.iter().sum::<f64>() / ready.len() as f64;
    let fresh_ready = secs(to_checks(fresh));
    println!(
        "clone ready in {mean:.2} s on average ({:.3}x the fresh restore's {fresh_ready:.1} s); provision {:.2} s of it",
        mean / fresh_ready,
        clones.iter().map(|c| secs(phase(c, Phase::Provision))).sum::<f64>() / clones.len() as f64
    );
    println!(
        "making the snapshot: {:.1} s (copy after a clean shutdown, pg_checksums); the snapshot takes {:.1} MiB to keep",
        secs(phase(maker, Phase::Snapshot)),
        kept as f64 / 1048576.0
    );
    for (i, clone) in clones.iter().enumerate() {
        let layer = clone.clone_of.as_ref().and_then(|c| c.layer_bytes).unwrap_or_default();
        println!(
            "clone {}: its own layer took {:.1} MiB ({:.1}% of the snapshot): {}",
            i + 1,
            layer as f64 / 1048576.0,
            layer as f64 / kept.max(1) as f64 * 100.0,
            clone.target.as_ref().and_then(|t| t.data_layer.as_deref()).unwrap_or("?").split(':').next().unwrap_or("")
        );
    }
    (mean, fresh_ready)
}

/// From the drill's start until its checks started.
fn to_checks(record: &DrillRecord) -> Duration {
    let checks = record.phase(Phase::Checks).and_then(|p| p.started_at).expect("the checks ran");
    (checks - record.started_at).try_into().unwrap_or_default()
}

fn phase(record: &DrillRecord, phase: Phase) -> Duration {
    record.phase(phase).map(|p| p.duration).unwrap_or_default()
}

fn scenario(data: &Path, size: &Size, plain: &Path) -> PathBuf {
    let path = data.join(format!("clone-bench-{}.toml", size.name));
    let text = format!(
        "name = \"clone-bench-{name}\"\n[source]\npath = \"{plain}\"\n[target]\ndatabase = \"bench\"\n\
         [[checks.schema_version]]\ntable = \"public.schema_migrations\"\nexpected = \"003\"\n\
         [checks.row_counts]\nexpect_from_dump = true\n",
        name = size.name,
        plain = plain.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A drill of the release binary with the benchmark's snapshot store.
#[expect(clippy::disallowed_methods, reason = "the benchmark's own thread, not async")]
fn drill(scenario: &Path, env: &[(String, String)], args: &[&str], out: &Path) -> DrillRecord {
    let _ = std::fs::remove_dir_all(out);
    let status = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(["run", &scenario.display().to_string(), "--out", &out.display().to_string()])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("PGDRILL_SNAPSHOT_BUDGET", "200GB")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let record: DrillRecord =
        serde_json::from_str(&std::fs::read_to_string(out.join("drill.json")).expect("drill.json")).unwrap();
    assert!(status.success(), "the drill failed: {:?}\nsee {}", record.failure, out.join("report.md").display());
    record
}

/// What the store's snapshots take on disk.
fn usage(dir: &Path) -> u64 {
    let out = Command::new("du").args(["-sb", &dir.display().to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_default()
}
