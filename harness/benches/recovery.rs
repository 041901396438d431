//! Point-in-time recovery of a base backup, side by side in one run, alternating: (by hand) what
//! a runbook does — unpack base.tar.gz and pg_wal.tar.gz into a data folder, give the server
//! `restore_command = 'cp /archive/%f %p'` (the archive mounted read-only), `recovery.signal`,
//! `recovery_target_time` and `recovery_target_action = promote`, start a container of the same
//! image and poll `pg_is_in_recovery()` over real connections until it is promoted; (pgdrill)
//! `pgdrill run` of a scenario with the same backup, archive and target time and one SQL check,
//! from the process's start to its exit.
//!
//! The source is made once per run by an archiving server of the image (the physical drills'
//! own, `tests/support/source_server.rs`): a table of `PGDRILL_BENCH_RECOVERY_MB` MB
//! (default 300) before the base backup, as much again written after it in batches of about
//! 30 MB, then the target time, then a last batch recovery must not replay.
//!
//! `cargo bench --bench recovery`; `PGDRILL_BENCH_ROUNDS=N` (default 3); `PGDRILL_BENCH_TARGET=end`
//! recovers through the whole archive instead (no `recovery_target_time`: by hand, recovery ends
//! when `restore_command` finds no next segment; pgdrill promotes once its standby waits for
//! WAL that cannot come); `PGDRILL_BENCH_AGAINST=path/to/pgdrill` drills another build beside
//! in each round (a change's effect, side by side); `PGDRILL_BENCH_LOGS=1` prints both servers'
//! logs and pgdrill's console. Prints every round with where its time went (pgdrill's phases from
//! its `drill.json`; the servers' own milestones, redo and end-of-recovery checkpoint from their
//! logs), the median ratio pgdrill/by hand, and pgdrill's peak memory and CPU time. Then the
//! same recovery is kept as a snapshot (`--snapshot`) and drilled three times more as clones of
//! it (`--reuse`): when each clone is ready for its checks, against the fresh recoveries.

#[path = "../tests/support/source_server.rs"]
#[allow(dead_code)]
mod source_server;

#[path = "support/commands.rs"]
mod commands;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use commands::{output, run};
use pgdrill::outcome::{DrillRecord, Phase};
use source_server::SourceServer;
use sqlx::Connection;

/// The scenario's name, which pgdrill's container carries as a label: the benchmark follows it.
const SCENARIO: &str = "bench-recovery";
/// About this many rows of `public.events` make a MB (a 256-character payload, a timestamp,
/// the primary key), in the table and in the WAL.
const ROWS_PER_MB: u64 = 3000;
/// Rows per INSERT, about 33 MB: the WAL after the backup is many transactions, not one.
const BATCH: u64 = 100_000;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_owned();
    let mb: u64 = env_number("PGDRILL_BENCH_RECOVERY_MB", 300);
    let rounds: usize = env_number("PGDRILL_BENCH_ROUNDS", 3).max(1) as usize;
    let image = pgdrill::scenario::default_image();
    run("bash", &[root.join("ci/image/build").to_str().unwrap()]);
    println!("pgdrill recovery benchmark: {} cores, image {image}", std::thread::available_parallelism().unwrap());

    let started = Instant::now();
    let to_end = std::env::var("PGDRILL_BENCH_TARGET").is_ok_and(|t| t == "end");
    let source = Source::make(mb, to_end);
    println!(
        "source made in {:.0} s: base backup {} (base.tar.gz) + {} (pg_wal.tar.gz) of a {} table; \
         {} of WAL written after it up to the target time ({} archived segments); recovery to {}, {} rows",
        started.elapsed().as_secs_f64(),
        mib(source.base_bytes),
        mib(source.wal_tar_bytes),
        mib(source.table_bytes),
        mib(source.wal_bytes),
        source.segments,
        source.target_time.as_deref().unwrap_or("the archive's end"),
        source.rows
    );

    let scratch = tempfile::Builder::new().prefix("pgdrill-bench-recovery-").tempdir().unwrap();
    let scenario = source.scenario(scratch.path());
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    // Another build of pgdrill drilled in the same rounds, for a change's effect side by side.
    let against = std::env::var_os("PGDRILL_BENCH_AGAINST").map(PathBuf::from);
    let mut results = Vec::new();
    let mut others = Vec::new();
    for round in 1..=rounds {
        // Alternate who goes first, so that a machine slowing down over the run favours neither.
        let (hand, drill) = if round % 2 == 1 {
            let hand = runtime.block_on(by_hand(&source, scratch.path(), image));
            (hand, pgdrill(&scenario, scratch.path(), &round.to_string(), &[]))
        } else {
            let drill = pgdrill(&scenario, scratch.path(), &round.to_string(), &[]);
            (runtime.block_on(by_hand(&source, scratch.path(), image)), drill)
        };
        print_round(round, &hand, &drill);
        if let Some(binary) = &against {
            let other = drill_with(binary, &scenario, scratch.path(), &format!("{round}-against"), &[]);
            println!(
                "  against  {:>6.1} s   ({}; ratio to this round's by hand {:.2})",
                other.total.as_secs_f64(),
                binary.display(),
                ratio(other.total, hand.total)
            );
            others.push((hand.total, other.total));
        }
        results.push((hand, drill));
    }
    print_summary(&results);
    if !others.is_empty() {
        let ratios: Vec<f64> = others.iter().map(|(h, d)| ratio(*d, *h)).collect();
        let each = ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ");
        println!("median ratio of PGDRILL_BENCH_AGAINST's pgdrill/by hand: {:.2} (rounds: {each})", median(ratios));
    }
    reuse(&scenario, scratch.path(), &results);
}

/// The same recovery kept as a snapshot (`--snapshot`), then drilled again as clones of it
/// (`--reuse`): when each is ready for its checks, against the fresh recoveries above.
fn reuse(scenario: &Path, scratch: &Path, fresh: &[(Hand, Drill)]) {
    let to_checks = |d: &Drill| {
        let checks = d.record.phase(Phase::Checks).and_then(|p| p.started_at).expect("the checks ran");
        Duration::try_from(checks - d.record.started_at).unwrap_or_default().as_secs_f64()
    };
    let keeper = pgdrill(scenario, scratch, "keep", &["--snapshot"]);
    let made = keeper.record.phase(Phase::Snapshot).map(|p| p.duration).unwrap_or_default();
    let clones: Vec<Drill> = (1..=3).map(|i| pgdrill(scenario, scratch, &format!("clone-{i}"), &["--reuse"])).collect();
    assert!(clones.iter().all(|c| c.record.clone_of.is_some()), "a drill with --reuse recovered instead of cloning");
    let fresh_ready = fresh.iter().map(|(_, d)| to_checks(d)).sum::<f64>() / fresh.len() as f64;
    let ready: Vec<f64> = clones.iter().map(to_checks).collect();
    let mean = ready.iter().sum::<f64>() / ready.len() as f64;
    println!(
        "\nreuse: the recovery kept as a snapshot ({:.1} s more: a clean shutdown, the copy, pg_checksums), then {} clones",
        made.as_secs_f64(),
        clones.len()
    );
    println!(
        "clone ready for its checks in {mean:.2} s on average ({}), {:.3}x a fresh recovery's {fresh_ready:.1} s; whole drill {:.1} s (target: ready in under 2 s)",
        ready.iter().map(|r| format!("{r:.2} s")).collect::<Vec<_>>().join(", "),
        mean / fresh_ready,
        clones.iter().map(|c| c.total.as_secs_f64()).sum::<f64>() / clones.len() as f64
    );
}

/// The backup, its archive and the point in time, made once.
struct Source {
    server: SourceServer,
    /// The target time recovery stops at, or none: the archive's end.
    target_time: Option<String>,
    /// Rows of `public.events` at the target.
    rows: u64,
    table_bytes: u64,
    base_bytes: u64,
    wal_tar_bytes: u64,
    /// WAL written from the end of the base backup to the target time.
    wal_bytes: u64,
    /// Segments in the archive, from the server's start (recovery reads those from the backup's
    /// start on).
    segments: usize,
}

impl Source {
    fn make(mb: u64, to_end: bool) -> Source {
        let server = SourceServer::for_basebackup("bench-recovery", pgdrill::scenario::default_image(), &["backup"]);
        let sql = |sql: &str| server.psql_in("bench", sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        server.psql_in("postgres", "CREATE DATABASE bench").unwrap();
        sql("CREATE TABLE public.events (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), \
             payload text NOT NULL)");
        // 256 hexadecimal characters a row: gzip halves them, as it would real data.
        let payload = (0..8).map(|k| format!("md5((g * 8 + {k})::text)")).collect::<Vec<_>>().join(" || ");
        let insert = |from: u64, to: u64| {
            let mut at = from;
            while at <= to {
                let end = (at + BATCH - 1).min(to);
                sql(&format!(
                    "INSERT INTO public.events (id, payload) SELECT g, {payload} FROM generate_series({at}, {end}) g"
                ));
                at = end + 1;
            }
        };
        let rows = mb * ROWS_PER_MB;
        insert(1, rows);
        let table_bytes = sql("SELECT pg_total_relation_size('public.events')").trim().parse().unwrap();
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
        insert(rows + 1, 2 * rows);
        let wal_bytes = sql(&format!("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{backup_end}')::bigint"))
            .trim()
            .parse()
            .unwrap();
        let target_time = sql("SELECT clock_timestamp()").trim().to_owned();
        std::thread::sleep(Duration::from_millis(50));
        // After the target: recovery stops before this commit.
        sql(&format!(
            "INSERT INTO public.events (id, payload) SELECT g, 'after' FROM generate_series({}, {}) g",
            2 * rows + 1,
            2 * rows + 1000
        ));
        let last = server.psql_in("postgres", "SELECT pg_walfile_name(pg_switch_wal())").unwrap().trim().to_owned();
        let archived = server.dir.path().join("archive").join(&last);
        source_server::wait_for(&format!("segment {last} to be archived"), || archived.is_file());
        // Stopped (a shutdown checkpoint) before the rounds, so that its writes do not land in
        // one of them; the backup and the archive stay until the source is dropped.
        output("docker", &["stop", &server.name]);
        let size =
            |name: &str| std::fs::metadata(server.dir.path().join("backup").join(name)).map(|m| m.len()).unwrap_or(0);
        let (base_bytes, wal_tar_bytes) = (size("base.tar.gz"), size("pg_wal.tar.gz"));
        let segments = std::fs::read_dir(server.dir.path().join("archive")).unwrap().count();
        let (target_time, rows) = if to_end { (None, 2 * rows + 1000) } else { (Some(target_time), 2 * rows) };
        Source { server, target_time, rows, table_bytes, base_bytes, wal_tar_bytes, wal_bytes, segments }
    }

    /// A scenario of the backup, its archive and the target, with one SQL check.
    fn scenario(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{SCENARIO}.toml"));
        let recovery = self.target_time.as_ref().map(|t| format!("[recovery]\ntarget_time = \"{t}\"\n\n"));
        let text = format!(
            "name = \"{SCENARIO}\"\ndescription = \"physical recovery benchmark\"\n\n\
             [source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n[target]\ndatabase = \"bench\"\n\n{}\
             [[checks.sql]]\nname = \"rows recovered\"\n\
             query = \"SELECT count(*) FROM public.events\"\nexpect = {}\n",
            self.server.dir.path().join("backup").display(),
            self.server.dir.path().join("archive").display(),
            recovery.unwrap_or_default(),
            self.rows
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// What a server wrote about its own recovery, from its log (times since its container started).
#[derive(Default)]
struct ServerLog {
    /// `redo starts at`: what comes before is the server's start (and, with fsync on, its sync
    /// of the whole data folder, which a base backup's unclean state asks for).
    redo_starts: Option<Duration>,
    /// Accepting read-only connections: the backup's end replayed, consistent.
    consistent: Option<Duration>,
    /// `recovery stopping before commit ...` (the target reached) or, to the archive's end,
    /// `redo done`.
    replay_ended: Option<Duration>,
    /// `received promote request`: pgdrill's promotion at the archive's end.
    promote_request: Option<Duration>,
    /// `redo done at ... elapsed: N s`: the server's own count of its replay.
    redo: Option<Duration>,
    /// The end-of-recovery checkpoint, which the server waits for before it is promoted.
    checkpoint: Option<Duration>,
    /// Accepting connections: promoted.
    promoted: Option<Duration>,
    /// Segments `restore_command` fetched.
    restored: usize,
    text: String,
}

impl ServerLog {
    /// Reads `docker logs -t` lines, timed from `since` (Unix nanoseconds).
    fn parse(text: &str, since: i128) -> ServerLog {
        let mut log = ServerLog { text: text.to_owned(), ..ServerLog::default() };
        let mut checkpoint_started = None;
        for line in text.lines() {
            let Some((stamp, message)) = line.split_once(' ') else { continue };
            let Ok(at) = time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339) else {
                continue;
            };
            let at = Duration::from_nanos((at.unix_timestamp_nanos() - since).max(0) as u64);
            if message.contains("redo starts at") {
                log.redo_starts.get_or_insert(at);
            } else if message.contains("ready to accept read-only connections") {
                log.consistent.get_or_insert(at);
            } else if message.contains("recovery stopping before") {
                log.replay_ended.get_or_insert(at);
            } else if message.contains("received promote request") {
                log.promote_request.get_or_insert(at);
            } else if message.contains("ready to accept connections") {
                log.promoted.get_or_insert(at);
            } else if message.contains("restored log file") {
                log.restored += 1;
            } else if message.contains("checkpoint starting: end-of-recovery") {
                checkpoint_started = Some(at);
            } else if message.contains("checkpoint complete")
                && let Some(begun) = checkpoint_started.take()
            {
                log.checkpoint = Some(at.saturating_sub(begun));
            } else if message.contains("redo done") {
                log.replay_ended.get_or_insert(at);
                log.redo = message
                    .split("elapsed: ")
                    .nth(1)
                    .and_then(|e| e.trim().trim_end_matches('s').trim().parse().ok())
                    .map(Duration::from_secs_f64);
            }
        }
        log
    }

    fn describe(&self) -> String {
        let at = |d: Option<Duration>| d.map_or("?".to_owned(), |d| format!("{:.1}", d.as_secs_f64()));
        format!(
            "server, s after its start: redo starts {}, consistent {}, {}replay ended {}, promoted {} \
             (redo {} s{}, end-of-recovery checkpoint {} s)",
            at(self.redo_starts),
            at(self.consistent),
            self.promote_request.map(|p| format!("promote requested {}, ", at(Some(p)))).unwrap_or_default(),
            at(self.replay_ended),
            at(self.promoted),
            at(self.redo),
            if self.restored > 0 { format!(", {} segments by restore_command", self.restored) } else { String::new() },
            at(self.checkpoint)
        )
    }
}

/// One recovery by hand, timed by step.
struct Hand {
    total: Duration,
    unpack: Duration,
    /// `docker run` until it returned.
    run: Duration,
    /// From the start of the container until a connection found the server promoted.
    recovery: Duration,
    /// Removing the container and the data folder (not counted: the recovery is done).
    teardown: Duration,
    server: ServerLog,
}

/// A container and a folder of the by-hand recovery, removed when dropped (a panic included).
struct HandTarget {
    dir: tempfile::TempDir,
    container: Option<String>,
}

impl Drop for HandTarget {
    fn drop(&mut self) {
        if let Some(id) = self.container.take() {
            let _ = Command::new("docker").args(["rm", "-f", "-v", &id]).stdout(Stdio::null()).status();
        }
    }
}

/// The runbook: unpack, configure, start, wait for promotion over real connections.
async fn by_hand(source: &Source, scratch: &Path, image: &str) -> Hand {
    use std::os::unix::fs::PermissionsExt;
    let started = Instant::now();
    let mut target =
        HandTarget { dir: tempfile::Builder::new().prefix("by-hand-").tempdir_in(scratch).unwrap(), container: None };
    let (data, socket) = (target.dir.path().join("data"), target.dir.path().join("socket"));
    std::fs::create_dir(&data).unwrap();
    std::fs::create_dir(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let backup = source.server.dir.path().join("backup");
    run("tar", &["-xzf", backup.join("base.tar.gz").to_str().unwrap(), "-C", data.to_str().unwrap()]);
    run("tar", &["-xzf", backup.join("pg_wal.tar.gz").to_str().unwrap(), "-C", data.join("pg_wal").to_str().unwrap()]);
    let mut conf = "restore_command = 'cp /archive/%f %p'\n".to_owned();
    if let Some(at) = &source.target_time {
        conf.push_str(&format!("recovery_target_time = '{at}'\nrecovery_target_action = 'promote'\n"));
    }
    let auto = data.join("postgresql.auto.conf");
    let mut text = std::fs::read_to_string(&auto).unwrap_or_default();
    text.push_str(&conf);
    std::fs::write(&auto, text).unwrap();
    std::fs::write(data.join("recovery.signal"), "").unwrap();
    // The server runs as the image's postgres user when this runs as root, as pgdrill does.
    let user = match image_owner(image) {
        Some((uid, gid)) if is_root() => {
            run("chown", &["-R", &format!("{uid}:{gid}"), data.to_str().unwrap()]);
            format!("{uid}:{gid}")
        }
        _ => format!("{}:{}", current_id("-u"), current_id("-g")),
    };
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let unpack = started.elapsed();

    let run_started = Instant::now();
    let volume = |host: &Path, inside: &str| format!("{}:{inside}", host.display());
    let id = output(
        "docker",
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            "org.pgdrill.bench=1",
            "--user",
            &user,
            "-v",
            &volume(&data, "/var/lib/pgdrill/data"),
            "-v",
            &volume(&source.server.dir.path().join("archive"), "/archive:ro"),
            "-v",
            &volume(&socket, "/var/run/postgresql"),
            image,
        ],
    )
    .trim()
    .to_owned();
    target.container = Some(id.clone());
    let run = run_started.elapsed();

    let options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .socket(&socket)
        .username("postgres")
        .database("postgres");
    let poll = Duration::from_millis(50);
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut conn = loop {
        match sqlx::PgConnection::connect_with(&options).await {
            Ok(conn) => break conn,
            Err(e) => assert!(Instant::now() < deadline, "the by-hand server did not accept connections: {e}"),
        }
        tokio::time::sleep(poll).await;
    };
    loop {
        let recovering: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await.unwrap();
        if !recovering {
            break;
        }
        assert!(Instant::now() < deadline, "the by-hand server was not promoted:\n{}", logs(&id, false));
        tokio::time::sleep(poll).await;
    }
    let total = started.elapsed();
    let recovery = run_started.elapsed() - run;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM public.events")
        .fetch_one(&mut sqlx::PgConnection::connect_with(&options.database("bench")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(rows as u64, source.rows, "the by-hand recovery stopped at the target");
    conn.close().await.ok();
    let started_at = output("docker", &["inspect", "--format", "{{.State.StartedAt}}", &id]);
    let since = time::OffsetDateTime::parse(started_at.trim(), &time::format_description::well_known::Rfc3339)
        .map_or(unix_nanos(), |t| t.unix_timestamp_nanos());
    let server = ServerLog::parse(&logs(&id, false), since);

    let teardown_started = Instant::now();
    drop(target);
    Hand { total, unpack, run, recovery, teardown: teardown_started.elapsed(), server }
}

/// One `pgdrill run`, with what its record and its container's log say.
struct Drill {
    total: Duration,
    record: DrillRecord,
    /// Peak resident memory (KiB) and CPU time of the pgdrill process, from wait4.
    max_rss_kib: i64,
    cpu: Duration,
    /// When pgdrill's container was created and started (Unix nanoseconds), and its log.
    created: Option<i128>,
    started: Option<i128>,
    server: ServerLog,
    /// What it printed (on stderr).
    console: String,
}

fn pgdrill(scenario: &Path, scratch: &Path, round: &str, args: &[&str]) -> Drill {
    drill_with(Path::new(env!("CARGO_BIN_EXE_pgdrill")), scenario, scratch, round, args)
}

/// `pgdrill run` of `binary` (this build's, or `PGDRILL_BENCH_AGAINST`'s).
fn drill_with(binary: &Path, scenario: &Path, scratch: &Path, round: &str, args: &[&str]) -> Drill {
    let out = scratch.join(format!("report-{round}"));
    let watch = Watch::start();
    let started = Instant::now();
    // Its console (on stderr) is kept beside the reports, for a drill that fails.
    let console = std::fs::File::create(scratch.join(format!("console-{round}.txt"))).unwrap();
    #[allow(clippy::zombie_processes, reason = "reaped by wait4, for its own resource usage")]
    let child = Command::new(binary)
        .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(args)
        .env("PGDRILL_SNAPSHOTS", scratch.join("snapshots"))
        .stdout(Stdio::null())
        .stderr(console)
        .spawn()
        .expect("pgdrill");
    let (status, usage) = wait4(child.id() as libc::pid_t);
    let total = started.elapsed();
    let followed = watch.finish();
    let console = std::fs::read_to_string(scratch.join(format!("console-{round}.txt"))).unwrap_or_default();
    if status != 0 {
        panic!("the drill failed (exit code {status}):\n{console}");
    }
    let record: DrillRecord =
        serde_json::from_str(&std::fs::read_to_string(out.join("drill.json")).expect("drill.json")).unwrap();
    let cpu = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    Drill {
        total,
        record,
        max_rss_kib: usage.ru_maxrss,
        cpu: cpu(usage.ru_utime) + cpu(usage.ru_stime),
        created: followed.created,
        started: followed.started,
        server: followed.started.map(|at| ServerLog::parse(&followed.log, at)).unwrap_or_default(),
        console,
    }
}

/// Follows the events of pgdrill's container (labelled with the scenario's name): when it was
/// created and started, and its log until it is removed. Stops following when dropped.
struct Watch {
    events: std::process::Child,
    reader: Option<std::thread::JoinHandle<Followed>>,
}

/// What [`Watch`] saw: when the container was created and started (Unix nanoseconds), its log.
#[derive(Default)]
struct Followed {
    created: Option<i128>,
    started: Option<i128>,
    log: String,
}

impl Watch {
    fn start() -> Watch {
        // From now on, whenever `docker events` gets connected.
        let since = format!("{:.3}", unix_nanos() as f64 / 1e9);
        let mut events = Command::new("docker")
            .args(["events", "--since", &since, "--filter", "type=container", "--filter"])
            .arg(format!("label=org.pgdrill.scenario={SCENARIO}"))
            .args(["--format", "{{.Action}} {{.Actor.ID}} {{.TimeNano}}"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker events");
        let stdout = events.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut followed = Followed::default();
            let mut log = None;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let [action, id, nanos] = fields[..] else { continue };
                let nanos = nanos.parse::<i128>().ok();
                match action {
                    "create" => followed.created = nanos,
                    "start" => {
                        followed.started = nanos;
                        // Follows the log until the container stops.
                        let id = id.to_owned();
                        log = Some(std::thread::spawn(move || logs(&id, true)));
                    }
                    _ => {}
                }
            }
            followed.log =
                log.map(|l: std::thread::JoinHandle<String>| l.join().unwrap_or_default()).unwrap_or_default();
            followed
        });
        Watch { events, reader: Some(reader) }
    }

    fn finish(mut self) -> Followed {
        // The drill is over and its container removed, so its log has ended; the events up to
        // now have been read.
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.events.kill();
        let _ = self.events.wait();
        self.reader.take().and_then(|r| r.join().ok()).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.events.kill();
        let _ = self.events.wait();
    }
}

/// A container's log with Docker's timestamps; `follow`: until it stops.
fn logs(id: &str, follow: bool) -> String {
    let mut args = vec!["logs", "-t", id];
    if follow {
        args.push("-f");
    }
    let out = Command::new("docker").args(&args).output().expect("docker logs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
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

fn print_round(round: usize, hand: &Hand, drill: &Drill) {
    let s = |d: Duration| format!("{:.1}", d.as_secs_f64());
    println!("\nround {round}");
    println!(
        "  by hand  {:>6} s   unpack {}, docker run {}, start to promoted {}   (teardown {} s, not counted)",
        s(hand.total),
        s(hand.unpack),
        s(hand.run),
        s(hand.recovery),
        s(hand.teardown)
    );
    println!("           {}", hand.server.describe());
    if std::env::var_os("PGDRILL_BENCH_LOGS").is_some() {
        println!(
            "--- by hand's server log\n{}--- pgdrill's server log\n{}--- pgdrill's console\n{}---",
            hand.server.text, drill.server.text, drill.console
        );
    }
    let phases: Vec<String> = drill
        .record
        .phases
        .iter()
        .filter(|p| p.started_at.is_some() && !p.duration.is_zero())
        .map(|p| format!("{} {}", p.phase.as_str(), s(p.duration)))
        .collect();
    println!(
        "  pgdrill  {:>6} s   {}   (recovered at {} s)",
        s(drill.total),
        phases.join(", "),
        drill.record.recovery.map(s).unwrap_or_else(|| "?".into())
    );
    // The provision phase split at the container's creation: before it, the data folder staged
    // by verify (unpacked, segments copied into pg_wal, pg_verifybackup) moved into the
    // target's private folder; after it, the server's start until it accepts connections and
    // the sandbox is checked.
    let provision = drill.record.phases.iter().find(|p| p.phase.as_str() == "provision");
    if let (Some(p), Some(created), Some(started)) = (provision, drill.created, drill.started) {
        let begun = p.started_at.map(|t| t.unix_timestamp_nanos()).unwrap_or(created);
        let ms = |n: i128| Duration::from_nanos(n.max(0) as u64);
        let folder = ms(created - begun);
        println!(
            "           provision: data folder moved in {} s, container create+start {} s, \
             then {} s until ready and checked",
            s(folder),
            s(ms(started - created)),
            s(p.duration.saturating_sub(folder + ms(started - created)))
        );
    }
    println!("           {}", drill.server.describe());
    println!(
        "           pgdrill process: max RSS {:.1} MiB, CPU {:.2} s",
        drill.max_rss_kib as f64 / 1024.0,
        drill.cpu.as_secs_f64()
    );
    println!("  ratio pgdrill/by hand {:.2}", ratio(drill.total, hand.total));
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn print_summary(results: &[(Hand, Drill)]) {
    let ratios: Vec<f64> = results.iter().map(|(h, d)| ratio(d.total, h.total)).collect();
    let recovered: Vec<f64> =
        results.iter().filter_map(|(h, d)| d.record.recovery.map(|r| ratio(r, h.total))).collect();
    println!(
        "\nmedian over {} rounds: by hand {:.1} s, pgdrill {:.1} s",
        results.len(),
        median(results.iter().map(|(h, _)| h.total.as_secs_f64()).collect()),
        median(results.iter().map(|(_, d)| d.total.as_secs_f64()).collect())
    );
    println!(
        "median ratio pgdrill/by hand: {:.2} (rounds: {}; target at most 0.50, issue 43)",
        median(ratios.clone()),
        ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ")
    );
    if !recovered.is_empty() {
        println!("median ratio pgdrill until recovered (drill.json recovery_ms)/by hand: {:.2}", median(recovered));
    }
    println!(
        "pgdrill max RSS: median {:.1} MiB, largest {:.1} MiB",
        median(results.iter().map(|(_, d)| d.max_rss_kib as f64 / 1024.0).collect()),
        results.iter().map(|(_, d)| d.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The image's owner of its data directory (its labels), whom the server runs as.
fn image_owner(image: &str) -> Option<(u32, u32)> {
    let labels = output("docker", &["image", "inspect", image, "--format", "{{json .Config.Labels}}"]);
    let labels: std::collections::HashMap<String, String> = serde_json::from_str(labels.trim()).ok()?;
    Some((labels.get("org.pgdrill.uid")?.parse().ok()?, labels.get("org.pgdrill.gid")?.parse().ok()?))
}

fn is_root() -> bool {
    current_id("-u") == "0"
}

fn current_id(flag: &str) -> String {
    output("id", &[flag]).trim().to_owned()
}

fn unix_nanos() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1024.0 / 1024.0)
}
