//! A soak of `pgdrill follow` (issue 67's goals): a source server of the project's image
//! archives its WAL to a folder (`archive_timeout = 10s`, each segment copied under a hidden
//! name and renamed, as an archiver uploads) while pgbench writes at a steady rate; the follower
//! follows a `pg_basebackup` of it (tar, `-X stream`) for the soak and 30 s more. Every 10 s the
//! benchmark samples the follower's memory (VmRSS of the process and its children) and the
//! proof lag its `follow.prom` says. At the end it prints the segments archived and in the
//! ledger, whether each archived segment is in the ledger once and in order (what is missing or
//! doubled), the proof lag per segment from the ledger (replayed_at minus archived_at), the
//! sampled gauge's largest, the memory after a minute and at the end, and the exit code.
//!
//! `cargo bench --bench follow_soak`; `PGDRILL_SOAK_MINUTES=N` (default 3; the long run
//! is 60); `PGDRILL_SOAK_RATE=N` pgbench transactions a second (default 50);
//! `PGDRILL_SOAK_KILLS=N` (default 0) kills the follower with SIGKILL N times at random moments
//! of the soak and starts it again on the same state (the memory figures are then the last
//! run's). A quarter into the soak a drill of now is asked for (SIGUSR1), timed until its copy is
//! promoted; with `PGDRILL_SOAK_FAULTS=1`, half-way the source's uploads are held back and a
//! segment lost and one damaged, each timed until the follower names it (`soak_events`). With
//! `PGDRILL_SOAK_S3=1` the archive is mirrored to an S3-compatible store on loopback (moto) and a
//! second follower follows it there, its ledger read against the archive too (`soak_s3`).

#[path = "../tests/support/source_server.rs"]
#[allow(dead_code)]
mod source_server;

#[path = "support/commands.rs"]
mod commands;

#[path = "support/soak_events.rs"]
mod soak_events;

#[path = "../tests/drills/servers.rs"]
#[allow(dead_code)]
mod servers;

#[path = "support/soak_s3.rs"]
mod soak_s3;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use commands::{output, run};
use source_server::SourceServer;

/// The scenario's name, which the follower's container and metrics carry.
const SCENARIO: &str = "bench-soak";
/// How often the follower is sampled.
const SAMPLE: Duration = Duration::from_secs(10);
/// How long the follower runs after the writes end: their last segments archived and replayed.
const TAIL: Duration = Duration::from_secs(30);

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_owned();
    let soak = Duration::from_secs(60 * env_number("PGDRILL_SOAK_MINUTES", 3));
    let rate = env_number("PGDRILL_SOAK_RATE", 50);
    let kills = env_number("PGDRILL_SOAK_KILLS", 0);
    let faults = env_number("PGDRILL_SOAK_FAULTS", 0) == 1;
    run("bash", &[root.join("ci/image/build").to_str().unwrap()]);
    let image = pgdrill::scenario::default_image();
    println!(
        "pgdrill follow soak: {} cores, image {image}, {} min of pgbench at {rate} tx/s, {kills} SIGKILLs",
        std::thread::available_parallelism().unwrap(),
        soak.as_secs() / 60
    );
    let source = source(image);
    let scratch = tempfile::Builder::new().prefix("pgdrill-bench-soak-").tempdir().unwrap();
    let scenario = scenario(&source, scratch.path());
    let state = scratch.path().join("state");
    let writes = {
        let name = source.name.clone();
        let archive = source.dir.path().join("archive");
        std::thread::spawn(move || write(&name, &archive, soak, rate))
    };
    let dsn = format!("host={} dbname=books user=postgres", source.dir.path().join("sockets").display());
    let archive = source.dir.path().join("archive");
    let mirror = (env_number("PGDRILL_SOAK_S3", 0) == 1).then(|| soak_s3::mirror(&archive));
    let mut of_s3 = mirror.as_ref().map(|mirror| {
        let backup = source.dir.path().join("backup");
        let scenario = soak_s3::scenario(&backup, scratch.path(), "bench-soak-s3", &mirror.store.endpoint);
        let log = std::fs::File::create(scratch.path().join("follower-s3.log")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_pgdrill"))
            .arg("follow")
            .arg(scenario)
            .arg("--state")
            .arg(scratch.path().join("state-s3"))
            .args(["--gap-after", "30s", "--for", &format!("{}s", (soak + TAIL).as_secs()), "--reports"])
            .arg(scratch.path().join("reports"))
            .envs(mirror.store.env())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("pgdrill follow of the S3 archive")
    });
    let at = Follow { scenario: &scenario, dsn: &dsn, state: &state, scratch: scratch.path(), archive: &archive };
    let soaked = follow(&at, soak, kills, faults);
    let stopped = std::time::SystemTime::now();
    writes.join().expect("the writes");
    report(&archive, &state, &soaked, stopped);
    if let Some(child) = of_s3.as_mut() {
        let exit = child.wait().unwrap().code();
        println!("\nthe follower of the S3 mirror (a look every 5 s), its exit code {exit:?}:");
        if exit != Some(0) {
            let said = std::fs::read_to_string(scratch.path().join("follower-s3.log")).unwrap_or_default();
            said.lines().rev().take(20).collect::<Vec<_>>().iter().rev().for_each(|line| println!("  {line}"));
        }
        let markers = ledger_report(&archive, &scratch.path().join("state-s3"), std::time::SystemTime::now());
        println!("markers it confirmed (the other follower wrote them): {}", markers.len());
    }
    drop(mirror);
    if soaked.exit != Some(0) {
        let log = std::fs::read_dir(scratch.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
            .unwrap_or_default();
        let said = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = said.lines().rev().take(30).collect();
        println!("\nthe last follower's output, its end:");
        tail.iter().rev().for_each(|line| println!("  {line}"));
    }
}

/// The source: archiving every segment whole into `archive/`, a segment at least every 10 s
/// while anything is written; pgbench's tables made, then the base backup in `backup/`.
fn source(image: &str) -> SourceServer {
    let settings = [soak_events::ARCHIVE_COMMAND, "archive_timeout=10s"];
    let server = SourceServer::for_basebackup_with("bench-soak", image, &["backup"], &settings);
    server.exec(&["pgbench", "-U", "postgres", "-i", "-q", "books"]);
    server.exec(&[
        "pg_basebackup",
        "--no-verify-checksums",
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
    server
}

/// A scenario of the backup and its archive, with one check (for the follower's report).
fn scenario(source: &SourceServer, dir: &Path) -> PathBuf {
    let path = dir.join(format!("{SCENARIO}.toml"));
    let text = format!(
        "name = \"{SCENARIO}\"\ndescription = \"follow soak\"\n\n[source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n\
         [target]\ndatabase = \"books\"\n\n[[checks.sql]]\nname = \"pgbench's branches\"\n\
         query = \"SELECT count(*) FROM public.pgbench_branches\"\nexpect = 1\n",
        source.dir.path().join("backup").display(),
        source.dir.path().join("archive").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// pgbench for `soak` at `rate`, then a last switch archived. The source runs on (the follower
/// writes markers on it until it stops).
fn write(name: &str, archive: &Path, soak: Duration, rate: u64) {
    let secs = soak.as_secs().to_string();
    let rate = rate.to_string();
    output("docker", &["exec", name, "pgbench", "-U", "postgres", "-n", "-c", "2", "-T", &secs, "-R", &rate, "books"]);
    let last = output(
        "docker",
        &["exec", name, "psql", "-X", "-U", "postgres", "-Atqc", "SELECT pg_walfile_name(pg_switch_wal())"],
    );
    source_server::wait_archived(archive, last.trim());
}

/// Where a follower runs.
struct Follow<'a> {
    scenario: &'a Path,
    /// The source's connection string, for markers.
    dsn: &'a str,
    state: &'a Path,
    scratch: &'a Path,
    /// The source's archive, where the faults are made.
    archive: &'a Path,
}

impl Follow<'_> {
    /// The output of the follower's run `n`.
    fn log(&self, n: u64) -> PathBuf {
        self.scratch.join(format!("follower-{n}.log"))
    }

    /// `pgdrill follow` for `run_for`, its output in `follower-N.log`.
    fn start(&self, n: u64, run_for: Duration) -> Child {
        let log = std::fs::File::create(self.log(n)).unwrap();
        Command::new(env!("CARGO_BIN_EXE_pgdrill"))
            .arg("follow")
            .arg(self.scenario)
            .arg("--state")
            .arg(self.state)
            .args(["--gap-after", "30s", "--for", &format!("{}s", run_for.as_secs()), "--reports"])
            .arg(self.scratch.join("reports"))
            .args(["--marker-dsn", self.dsn, "--marker-every", "30s"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("pgdrill follow")
    }
}

/// What the soak saw of its follower.
struct Soaked {
    /// (seconds since the last start, KiB resident, the proof lag gauge), every [`SAMPLE`].
    samples: Vec<(f64, u64, Option<f64>)>,
    /// Every sample's gauge, over all runs.
    lags: Vec<f64>,
    exit: Option<i32>,
    kills: u64,
    /// The drill of now's time to its promoted copy, and the faults' time to their names.
    now_ready: Option<f64>,
    named: Option<soak_events::Named>,
}

/// Runs the follower for the soak and [`TAIL`], sampling it, killed `kills` times at random
/// moments of the soak and started again on the same state; a drill of now a quarter in, and
/// the faults (with `faults`) half-way.
fn follow(at: &Follow, soak: Duration, kills: u64, faults: bool) -> Soaked {
    let started = Instant::now();
    let end = soak + TAIL;
    let mut moments: Vec<Duration> = (0..kills).map(|_| soak.mul_f64(rand::random_range(0.15..0.85))).collect();
    moments.sort();
    let (mut now_at, mut faults_at) = (Some(soak / 4), faults.then_some(soak / 2));
    let mut runs = 0;
    let mut child = at.start(runs, end);
    let mut since = Instant::now();
    let mut soaked =
        Soaked { samples: Vec::new(), lags: Vec::new(), exit: None, kills: 0, now_ready: None, named: None };
    let mut next_sample = Instant::now() + SAMPLE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            soaked.exit = status.code();
            break;
        }
        let mut restart = |child: &mut Child, runs: &mut u64, why: &str| {
            child.kill().unwrap();
            child.wait().unwrap();
            *runs += 1;
            println!("SIGKILL at {:.0} s ({why}); started again on the same state", started.elapsed().as_secs_f64());
            *child = at.start(*runs, end.saturating_sub(started.elapsed()).max(Duration::from_secs(1)));
            since = Instant::now();
            at.log(*runs)
        };
        if moments.first().is_some_and(|m| started.elapsed() >= *m) {
            moments.remove(0);
            soaked.kills += 1;
            restart(&mut child, &mut runs, "at random");
            soaked.samples.clear();
        }
        if now_at.is_some_and(|t| started.elapsed() >= t) {
            now_at = None;
            soaked.now_ready = soak_events::drill_of_now(child.id(), &at.log(runs));
        }
        if faults_at.is_some_and(|t| started.elapsed() >= t) {
            faults_at = None;
            let log = at.log(runs);
            soaked.named = Some(soak_events::faults(at.archive, &log, &mut || {
                restart(&mut child, &mut runs, "the damaged segment mended")
            }));
            soaked.samples.clear();
        }
        if Instant::now() >= next_sample {
            next_sample += SAMPLE;
            let lag = gauge(&at.state.join("follow.prom"));
            soaked.lags.extend(lag);
            soaked.samples.push((since.elapsed().as_secs_f64(), rss_kib(child.id()), lag));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    soaked
}

/// The proof lag `follow.prom` says now.
fn gauge(prom: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(prom).ok()?;
    let line = text.lines().find(|l| l.starts_with("pgdrill_follow_proof_lag_seconds{"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// VmRSS of `pid` and of its children, theirs too (KiB).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let own: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    let children: Vec<u32> = tasks
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect();
    own + children.into_iter().map(rss_kib).sum::<u64>()
}

/// A segment line of the ledger.
struct Recorded {
    segment: String,
    /// replayed_at minus archived_at (s), when the archive's time is known.
    lag: Option<f64>,
}

/// What the ledger holds: its segments in its order, the first start line's segment, and each
/// marker's latency (s).
struct Ledger {
    segments: Vec<Recorded>,
    from: Option<String>,
    markers: Vec<f64>,
}

/// The ledger in `state`.
fn ledger(state: &Path) -> Ledger {
    let text = std::fs::read_to_string(state.join("ledger.jsonl")).unwrap_or_default();
    let when = |v: &serde_json::Value| {
        let at = time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339).ok()?;
        Some(at.unix_timestamp_nanos() as f64 / 1e9)
    };
    let (mut segments, mut from, mut markers) = (Vec::new(), None, Vec::new());
    for line in text.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("a ledger line");
        match entry["kind"].as_str() {
            Some("start") if from.is_none() => from = entry["from"].as_str().map(str::to_owned),
            Some("segment") => segments.push(Recorded {
                segment: entry["segment"].as_str().unwrap().to_owned(),
                lag: when(&entry["replayed_at"]).zip(when(&entry["archived_at"])).map(|(r, a)| r - a),
            }),
            Some("marker") => markers.extend(entry["latency_ms"].as_f64().map(|ms| ms / 1000.0)),
            _ => {}
        }
    }
    Ledger { segments, from, markers }
}

/// Prints what the ledger in `state` holds against the archive: every segment archived more
/// than 10 s before the follower `stopped` in it, once and in order, and the proof lag per
/// segment; returns the markers' latencies.
fn ledger_report(archive: &Path, state: &Path, stopped: std::time::SystemTime) -> Vec<f64> {
    let Ledger { segments: recorded, from, markers } = ledger(state);
    let Some(from) = from else {
        println!("the ledger in `{}` has no start line: the follower never followed", state.display());
        return markers;
    };
    let before = stopped - Duration::from_secs(10);
    let mut archived: Vec<String> = std::fs::read_dir(archive)
        .unwrap()
        .flatten()
        .filter(|e| e.metadata().and_then(|m| m.modified()).is_ok_and(|at| at < before))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24 && n.chars().all(|c| c.is_ascii_hexdigit()) && *n >= from)
        .collect();
    archived.sort();
    let names: Vec<&str> = recorded.iter().map(|r| r.segment.as_str()).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for name in &names {
        *counts.entry(name).or_default() += 1;
    }
    let missing: Vec<&String> = archived.iter().filter(|a| !counts.contains_key(a.as_str())).collect();
    // Those replayed after the last counted one are not missing, nor more than archived.
    let names: Vec<&str> =
        names.into_iter().filter(|n| archived.last().is_some_and(|last| *n <= last.as_str())).collect();
    let doubled: Vec<&&str> = counts.iter().filter(|(_, n)| **n > 1).map(|(s, _)| s).collect();
    let ordered = names.windows(2).all(|w| w[0] < w[1]);
    println!("\nsegments archived (from {from}, the ledger's first start): {}", archived.len());
    println!("segments in the ledger: {}", names.len());
    let whole = missing.is_empty() && doubled.is_empty() && ordered && names.len() == archived.len();
    println!(
        "every archived segment in the ledger, in order, once: {} (missing {missing:?}, doubled {doubled:?}, in order {ordered})",
        if whole { "yes" } else { "no" }
    );
    let mut lags: Vec<f64> = recorded.iter().filter_map(|r| r.lag).collect();
    lags.sort_by(f64::total_cmp);
    println!(
        "proof lag per segment (replayed_at - archived_at, {} segments): p50 {:.1} s, p99 {:.1} s, max {:.1} s",
        lags.len(),
        quantile(&lags, 0.50),
        quantile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN)
    );
    markers
}

/// Prints the soak's figures, one a line. The segments archived in the follower's last 10 s
/// (`stopped`: when it stopped) are left out: it may have stopped before it could replay them.
fn report(archive: &Path, state: &Path, soaked: &Soaked, stopped: std::time::SystemTime) {
    let markers = ledger_report(archive, state, stopped);
    let gauge_max = soaked.lags.iter().copied().fold(f64::NAN, f64::max);
    println!("proof lag gauge (follow.prom, every 10 s): max {gauge_max:.1} s over {} samples", soaked.lags.len());
    let after_minute = soaked.samples.iter().find(|(t, _, _)| *t >= 60.0);
    let last = soaked.samples.last();
    match (after_minute, last) {
        (Some((t1, first, _)), Some((t2, end, _))) => println!(
            "follower RSS: {:.1} MiB at {t1:.0} s, {:.1} MiB at {t2:.0} s (ratio {:.2})",
            *first as f64 / 1024.0,
            *end as f64 / 1024.0,
            *end as f64 / *first as f64
        ),
        _ => println!("follower RSS: no sample after a minute"),
    }
    let mut markers = markers;
    markers.sort_by(f64::total_cmp);
    println!(
        "markers confirmed (one written every 30 s): {}; latency p50 {:.1} s, p99 {:.1} s, max {:.1} s",
        markers.len(),
        quantile(&markers, 0.50),
        quantile(&markers, 0.99),
        markers.last().copied().unwrap_or(f64::NAN)
    );
    let seconds = |s: Option<f64>| s.map_or("not seen".to_owned(), |s| format!("{s:.1} s"));
    println!(
        "drill of now (SIGUSR1 a quarter in): its copy promoted, ready for its checks, in {}",
        seconds(soaked.now_ready)
    );
    if let Some(named) = &soaked.named {
        println!(
            "a lost upload ({}) named as a gap in {}; a damaged segment ({}) named in {}",
            named.lost,
            seconds(named.gap),
            named.broken,
            seconds(named.damaged)
        );
    }
    println!("SIGKILLs: {}", soaked.kills);
    println!("follower exit code: {}", soaked.exit.map_or("killed by a signal".into(), |c| c.to_string()));
}

/// The `q` quantile of sorted `v` (nearest rank).
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
