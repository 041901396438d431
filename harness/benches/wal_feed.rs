//! WAL on demand against the whole archive copied first, side by side in one run, alternating:
//! `pgdrill run` of a base backup and an archive of at least `PGDRILL_BENCH_WAL_MB` MB of WAL
//! (default 2048) written after it, recovered to a target time near the archive's end, once with
//! the default `[recovery] wal_window` (segments given to `pg_wal` as replay reads them, 256 MB
//! ahead, removed once replayed) and once with `wal_window = "all"` (every segment copied into
//! `pg_wal` before the server starts, as pgdrill did before). Prints, per round and as medians:
//! the time from the process's start to its exit, the recovery time pgdrill records
//! (drill.json's `recovery_ms`), the peak disk of pgdrill's folders (its work folder, where the
//! backup is staged, and the target's private folder, sampled every 100 ms), the most segments
//! `pg_wal` held at once, and pgdrill's peak memory.
//!
//! `cargo bench --bench wal_feed`; `PGDRILL_BENCH_WAL_MB=N`, `PGDRILL_BENCH_ROUNDS=N` (default 1).

#[path = "../tests/support/source_server.rs"]
#[allow(dead_code)]
mod source_server;

#[path = "support/commands.rs"]
mod commands;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use commands::{output, run};
use pgdrill::outcome::DrillRecord;
use source_server::SourceServer;

/// Rows per INSERT: about 33 MB of WAL each.
const BATCH: u64 = 100_000;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_owned();
    let wal_mb: u64 = env_number("PGDRILL_BENCH_WAL_MB", 2048);
    let rounds = env_number("PGDRILL_BENCH_ROUNDS", 1).max(1) as usize;
    run("bash", &[root.join("ci/image/build").to_str().unwrap()]);
    println!("pgdrill WAL-on-demand benchmark: {} cores", std::thread::available_parallelism().unwrap());
    let started = Instant::now();
    let source = Source::make(wal_mb);
    println!(
        "source made in {:.0} s: {} of WAL after the base backup, {} archived segments, {} rows at the target",
        started.elapsed().as_secs_f64(),
        mib(source.wal_bytes),
        source.segments,
        source.rows
    );
    let scratch = tempfile::Builder::new().prefix("pgdrill-bench-wal-").tempdir().unwrap();
    let mut results: Vec<(Run, Run)> = Vec::new();
    for round in 1..=rounds {
        let order = if round % 2 == 1 { ["256MB", "all"] } else { ["all", "256MB"] };
        let mut by_window = Vec::new();
        for window in order {
            let scenario = source.scenario(scratch.path(), window);
            by_window.push((window, drill(&scenario, scratch.path(), &format!("{round}-{window}"))));
        }
        by_window.sort_by_key(|(w, _)| *w != "256MB");
        let mut runs = by_window.into_iter().map(|(_, r)| r);
        let (feed, whole) = (runs.next().unwrap(), runs.next().unwrap());
        println!("\nround {round}");
        for (name, r) in [("wal_window 256MB", &feed), ("wal_window all  ", &whole)] {
            println!(
                "  {name}  total {:>6.1} s   recovered at {:>6.1} s   peak disk {:>9}   pg_wal at most {:>4} archived segments   max RSS {:.1} MiB",
                r.total.as_secs_f64(),
                r.recovered.as_secs_f64(),
                mib(r.peak_disk),
                r.held_peak,
                r.max_rss_kib as f64 / 1024.0
            );
        }
        println!(
            "  ratios 256MB/all: time {:.2}, recovery {:.2}, peak disk {:.2}",
            ratio(feed.total, whole.total),
            ratio(feed.recovered, whole.recovered),
            feed.peak_disk as f64 / whole.peak_disk.max(1) as f64
        );
        results.push((feed, whole));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "\nmedian over {} round(s): time 256MB/all {:.2}, recovery {:.2}, peak disk {:.2} ({} against {})",
        results.len(),
        median(results.iter().map(|(f, w)| ratio(f.total, w.total)).collect()),
        median(results.iter().map(|(f, w)| ratio(f.recovered, w.recovered)).collect()),
        median(results.iter().map(|(f, w)| f.peak_disk as f64 / w.peak_disk.max(1) as f64).collect()),
        mib(results[0].0.peak_disk),
        mib(results[0].1.peak_disk)
    );
}

/// A base backup of a small table, then WAL past `wal_mb` MB, the target time, a last batch.
struct Source {
    server: SourceServer,
    target_time: String,
    rows: u64,
    wal_bytes: u64,
    segments: usize,
}

impl Source {
    fn make(wal_mb: u64) -> Source {
        let server = SourceServer::for_basebackup("bench-wal", pgdrill::scenario::default_image(), &["backup"]);
        let sql = |sql: &str| server.psql_in("bench", sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        server.psql_in("postgres", "CREATE DATABASE bench").unwrap();
        sql("CREATE TABLE public.events (id bigint PRIMARY KEY, payload text NOT NULL)");
        let payload = (0..8).map(|k| format!("md5((g * 8 + {k})::text)")).collect::<Vec<_>>().join(" || ");
        let insert = |from: u64| {
            sql(&format!(
                "INSERT INTO public.events (id, payload) SELECT g, {payload} FROM generate_series({from}, {}) g",
                from + BATCH - 1
            ))
        };
        insert(1);
        server.exec(&[
            "pg_basebackup",
            "-U",
            "postgres",
            "-D",
            "/backup",
            "-F",
            "t",
            "-z",
            "-X",
            "stream",
            "-c",
            "fast",
        ]);
        let backup_end = sql("SELECT pg_current_wal_lsn()").trim().to_owned();
        let mut rows = BATCH;
        let written = || -> u64 {
            sql(&format!("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{backup_end}')::bigint"))
                .trim()
                .parse()
                .unwrap()
        };
        while written() < wal_mb << 20 {
            insert(rows + 1);
            rows += BATCH;
        }
        let wal_bytes = written();
        let target_time = sql("SELECT clock_timestamp()").trim().to_owned();
        std::thread::sleep(Duration::from_millis(50));
        sql(&format!(
            "INSERT INTO public.events (id, payload) SELECT g, 'after' FROM generate_series({}, {}) g",
            rows + 1,
            rows + 1000
        ));
        let last = server.psql_in("postgres", "SELECT pg_walfile_name(pg_switch_wal())").unwrap().trim().to_owned();
        let archived = server.dir.path().join("archive").join(&last);
        source_server::wait_for(&format!("segment {last} to be archived"), || archived.is_file());
        output("docker", &["stop", &server.name]);
        let segments = std::fs::read_dir(server.dir.path().join("archive")).unwrap().count();
        Source { server, target_time, rows, wal_bytes, segments }
    }

    fn scenario(&self, dir: &Path, window: &str) -> PathBuf {
        let path = dir.join(format!("bench-wal-{window}.toml"));
        let text = format!(
            "name = \"bench-wal\"\n\n[source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n[target]\ndatabase = \"bench\"\n\n\
             [recovery]\ntarget_time = \"{}\"\nwal_window = \"{window}\"\n\n\
             [[checks.sql]]\nname = \"rows recovered\"\nquery = \"SELECT count(*) FROM public.events\"\nexpect = {}\n",
            self.server.dir.path().join("backup").display(),
            self.server.dir.path().join("archive").display(),
            self.target_time,
            self.rows
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

struct Run {
    total: Duration,
    recovered: Duration,
    peak_disk: u64,
    held_peak: usize,
    max_rss_kib: i64,
}

/// One `pgdrill run`, while a thread samples the disk of pgdrill's folders under TMPDIR.
fn drill(scenario: &Path, scratch: &Path, name: &str) -> Run {
    let out = scratch.join(format!("report-{name}"));
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(pgdrill_folders_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let started = Instant::now();
    #[allow(clippy::zombie_processes, reason = "reaped by wait4, for its own resource usage")]
    let child = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pgdrill");
    let (status, usage) = wait4(child.id() as libc::pid_t);
    let total = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let record: DrillRecord =
        serde_json::from_str(&std::fs::read_to_string(out.join("drill.json")).expect("drill.json")).unwrap();
    assert_eq!(status, 0, "the drill {name} failed: {:?}", record.phases);
    let held_peak = record.restore.as_ref().and_then(|r| r.recovery.as_ref()).map_or(0, |r| r.segments_held_peak);
    Run {
        total,
        recovered: record.recovery.unwrap_or_default(),
        peak_disk: peak.load(Ordering::Relaxed),
        held_peak,
        max_rss_kib: usage.ru_maxrss,
    }
}

/// The bytes the folders pgdrill makes under TMPDIR take (`pgdrill-<drill>` where a backup is
/// staged, `pgdrill-<drill>-target` the target's), as allocated blocks.
fn pgdrill_folders_bytes() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return 0 };
    let mut total = 0;
    let mut pending: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with("pgdrill-")
                && !e.file_name().to_string_lossy().starts_with("pgdrill-bench")
        })
        .map(|e| e.path())
        .collect();
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        total += meta.blocks() * 512;
        if meta.is_dir() {
            pending.extend(std::fs::read_dir(&path).into_iter().flatten().filter_map(Result::ok).map(|e| e.path()));
        }
    }
    total
}

/// Waits for the child `pid`: its exit code and resource usage (of it alone).
fn wait4(pid: libc::pid_t) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it and the status for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    (code, usage)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1024.0 / 1024.0)
}
