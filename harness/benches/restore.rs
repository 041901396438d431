//! Restore speed, side by side in one run: (a) the runbook way, a default-settings container of
//! the same image with `gunzip -c | psql` and the checks as plain SQL; (b) pgdrill on the plain
//! dump; (c) pgdrill on the custom-format dump read once (`verify = "one-pass"`: its bytes into
//! the target's `pg_restore -f -`, the SQL through pgdrill's restore); (d) pgdrill on the plain dump with
//! `--verify-first`, which reads it whole before its restore reads it again, against (b)'s one
//! read shared by verify and the restore: the recovery time of each, and the restore alone (d's
//! restore phase, reading a dump already verified); (e) the same for the custom dump against
//! (c): its data read by verify (every block decompressed, the rows counted), the rest of its
//! SQL written by `pg_restore -f -` in preflight, then `pg_restore -j` (an archive's default
//! when it is not encrypted). On a PLUR-like dataset (vectors
//! with an HNSW index, audit rows in monthly partitions) at two sizes, about 50 MB and 500 MB
//! compressed. Prints each phase's time, the ratios, pgdrill's own CPU share and peak memory,
//! and how long the integrity checks take there: `amcheck` over the whole database and
//! `vector_recall` on the HNSW index.
//!
//! `cargo bench --bench restore` (both sizes), or `PGDRILL_BENCH_SIZES=small` for one;
//! `PGDRILL_BENCH_WAYS=b,c,d` (default a,b,c,d; `c,e` for the custom dump's one read) leaves out
//! the runbook way (which, with PostgreSQL's default 64 MB
//! of maintenance_work_mem, builds a large HNSW index very slowly).
//! Datasets are generated once into `target/bench-data/` and reused.

#[path = "support/commands.rs"]
mod commands;
#[path = "support/dataset.rs"]
mod dataset;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use commands::run;
use dataset::{Bench, Container, Size, dataset};
use pgdrill::Verdict;
use pgdrill::outcome::{DrillRecord, Phase, PhaseStatus};

/// The runbook's checks, as an operator would type them: the same facts pgdrill checks.
const RUNBOOK_CHECKS: &str = r#"
\set ON_ERROR_STOP on
SELECT extversion FROM pg_extension WHERE extname = 'vector';
SELECT max(version) FROM public.schema_migrations;
SELECT format('SELECT %L AS t, count(*) FROM %s', c.oid::regclass, c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1 \gexec
SELECT indexrelid::regclass, indisvalid FROM pg_index
WHERE indexrelid IN ('public.engrams_embedding_idx'::regclass, 'public.engrams_org_idx'::regclass,
                     'public.audit_events_org_idx'::regclass);
"#;

fn main() {
    let bench = Bench::start();
    let (_root, image, data) = (&bench.root, &bench.image, &bench.data);

    println!("pgdrill restore benchmark: {} cores, image {image}", std::thread::available_parallelism().unwrap());
    for size in bench.sizes() {
        let (plain, custom) = dataset(image, data, size);
        println!(
            "\n== {} dataset: plain {} MB, custom {} MB ({}k vectors, {}M audit rows)",
            size.name,
            mb(std::fs::metadata(&plain).unwrap().len()),
            mb(std::fs::metadata(&custom).unwrap().len()),
            100 * size.scale,
            size.scale
        );
        let scenario = scenario(data, size, &plain);
        let once = data.join(format!("bench-{}-one-pass.toml", size.name));
        let text = std::fs::read_to_string(&scenario).unwrap();
        std::fs::write(&once, text.replace("[source]\n", "[source]\nverify = \"one-pass\"\n")).unwrap();
        let ways = std::env::var("PGDRILL_BENCH_WAYS").unwrap_or_else(|_| "a,b,c,d".into());
        let way = |w: &str| ways.split(',').any(|x| x.trim() == w);
        let runbook = way("a").then(|| runbook(image, &plain));
        let report = |way: &str| data.join(format!("report-{}-{way}", size.name));
        let pgdrill_plain = way("b").then(|| drill(&scenario, None, &report("plain"), false));
        let pgdrill_custom = way("c").then(|| drill(&once, Some(&custom), &report("custom"), false));
        let verify_first = way("d").then(|| drill(&scenario, None, &report("verify-first"), true));
        let custom_first = way("e").then(|| drill(&scenario, Some(&custom), &report("custom-first"), true));
        let all = [runbook.as_ref(), pgdrill_plain.as_ref(), pgdrill_custom.as_ref(), verify_first.as_ref()];
        print_results(&[&all[..], &[custom_first.as_ref()]].concat());
        // One read against two, in more rounds (b and d, c and e in turn): PGDRILL_BENCH_ROUNDS.
        let (mut ones, mut firsts): (Vec<Timed>, Vec<Timed>) =
            (pgdrill_plain.into_iter().collect(), verify_first.into_iter().collect());
        let (mut ones_c, mut firsts_c): (Vec<Timed>, Vec<Timed>) =
            (pgdrill_custom.into_iter().collect(), custom_first.into_iter().collect());
        for _ in 1..rounds() {
            ones.extend(way("b").then(|| drill(&scenario, None, &report("plain"), false)));
            firsts.extend(way("d").then(|| drill(&scenario, None, &report("verify-first"), true)));
            ones_c.extend(way("c").then(|| drill(&once, Some(&custom), &report("custom"), false)));
            firsts_c.extend(way("e").then(|| drill(&scenario, Some(&custom), &report("custom-first"), true)));
        }
        print_one_read("plain dump", &ones, &firsts);
        print_one_read("custom dump", &ones_c, &firsts_c);
    }
}

fn scenario(data: &Path, size: &Size, plain: &Path) -> PathBuf {
    let path = data.join(format!("bench-{}.toml", size.name));
    let text = format!(
        r#"name = "bench-{name}"
description = "restore benchmark, {name} dataset"

[source]
path = "{plain}"

[target]
database = "bench"

[checks.extensions]
vector = "0.8.0"

[[checks.schema_version]]
table = "public.schema_migrations"
expected = "003"

[checks.row_counts]
expect_from_dump = true

[checks.indexes]
expect = [
    {{ name = "public.engrams_embedding_idx", table = "public.engrams", method = "hnsw" }},
    {{ name = "public.engrams_org_idx", table = "public.engrams", method = "btree" }},
    {{ name = "public.audit_events_org_idx", table = "public.audit_events", method = "btree" }},
]

[checks.amcheck]

# Uniform random vectors are the hardest case for HNSW (no clusters to navigate by): the
# default index answers recall@10 0.45-0.61 at ef_search 40, 0.80 at 200, 0.95 at 1000.
[[checks.vector_recall]]
indexes = ["public.engrams_embedding_idx"]
ef_search = 1000
"#,
        name = size.name,
        plain = plain.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// One way of restoring, timed by phase.
struct Timed {
    label: &'static str,
    phases: Vec<(String, Duration)>,
    total: Duration,
    /// pgdrill's own CPU time and peak memory.
    usage: Option<(Duration, u64)>,
    /// The integrity checks' times and what they found: (check, duration, actual).
    integrity: Vec<(String, Duration, String)>,
    /// The recovery time pgdrill recorded (start to a restored database).
    recovery: Option<Duration>,
}

/// (a) What a runbook does: a container with default settings, `gunzip -c | psql`, the checks
/// in psql.
fn runbook(image: &str, plain: &Path) -> Timed {
    let started = Instant::now();
    let container = Container::start(image, &[], "");
    let provisioned = started.elapsed();
    container.psql_stdin("postgres", "CREATE DATABASE bench;");
    let restore_started = Instant::now();
    let pipeline = format!(
        "gunzip -c '{}' | docker exec -i -u postgres {} psql -q -X -v ON_ERROR_STOP=1 -d bench >/dev/null",
        plain.display(),
        container.id
    );
    run("sh", &["-c", &pipeline]);
    let restored = restore_started.elapsed();
    let checks_started = Instant::now();
    container.psql_stdin("bench", RUNBOOK_CHECKS);
    let checked = checks_started.elapsed();
    let teardown_started = Instant::now();
    drop(container);
    let torn_down = teardown_started.elapsed();
    Timed {
        label: "(a) runbook: gunzip | psql, default settings",
        phases: vec![
            ("provision".into(), provisioned),
            ("restore".into(), restored),
            ("checks".into(), checked),
            ("teardown".into(), torn_down),
        ],
        total: started.elapsed(),
        usage: None,
        integrity: Vec::new(),
        recovery: Some(provisioned + restored),
    }
}

/// (b), (c), (d): pgdrill, the release binary, as a user runs it.
#[expect(clippy::disallowed_methods, reason = "the benchmark's own thread, not async")]
fn drill(scenario: &Path, backup: Option<&Path>, out: &Path, verify_first: bool) -> Timed {
    let _ = std::fs::remove_dir_all(out);
    let mut args = vec!["run".to_owned(), scenario.display().to_string(), "--out".into(), out.display().to_string()];
    if let Some(backup) = backup {
        args.extend(["--backup".into(), backup.display().to_string()]);
    }
    if verify_first {
        args.push("--verify-first".into());
    }
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(&args).stdout(Stdio::null()).status().unwrap();
    let total = started.elapsed();
    let record: DrillRecord =
        serde_json::from_str(&std::fs::read_to_string(out.join("drill.json")).expect("drill.json")).unwrap();
    // Uniform random vectors are HNSW's hardest case: on the large dataset the recall check may
    // fail (0.71 at ef_search 1000) while the restore, which is what is timed, passed.
    let only_recall = record.phases.iter().all(|p| p.phase == Phase::Checks || p.status != PhaseStatus::Failed)
        && record.checks.iter().all(|c| c.verdict == Verdict::Pass || c.kind.as_str() == "vector_recall");
    assert!(
        status.success() || only_recall,
        "the drill failed: {:?}\nsee {}",
        record.failure,
        out.join("report.md").display()
    );
    let usage = record.usage.as_ref().map(|u| (Duration::from_millis(u.cpu_ms), u.peak_rss_bytes));
    Timed {
        label: match (backup.is_some(), verify_first) {
            (true, false) => "(c) pgdrill, custom format, read once",
            (true, true) => "(e) pgdrill, custom, --verify-first (pg_restore -j)",
            (false, false) => "(b) pgdrill, plain dump, read once",
            (false, true) => "(d) pgdrill, plain dump, --verify-first",
        },
        recovery: record.recovery,
        phases: record.phases.iter().map(|p| (p.phase.to_string(), p.duration)).collect(),
        total,
        usage,
        integrity: record
            .checks
            .iter()
            .filter(|c| ["amcheck", "vector_recall"].contains(&c.kind.as_str()))
            .map(|c| (c.id.clone(), c.duration, c.actual.clone()))
            .collect(),
    }
}

fn print_results(ways: &[Option<&Timed>]) {
    let (a, b, c) = (ways[0], ways[1], ways[2]);
    for t in ways.iter().flatten() {
        let phases: Vec<String> = t
            .phases
            .iter()
            .filter(|(_, d)| !d.is_zero())
            .map(|(name, d)| format!("{name} {:.1}", d.as_secs_f64()))
            .collect();
        println!("{:<48} {:>7.1} s   {}", t.label, t.total.as_secs_f64(), phases.join(", "));
        if let Some((cpu, peak)) = t.usage {
            println!(
                "{:<48} {:>7} pgdrill CPU {:.2} s ({:.1}% of the drill), peak memory {:.1} MiB",
                "",
                "",
                cpu.as_secs_f64(),
                cpu.as_secs_f64() / t.total.as_secs_f64() * 100.0,
                peak as f64 / 1024.0 / 1024.0
            );
        }
        for (check, took, actual) in &t.integrity {
            println!("{:<48} {:>7} {check}: {:.2} s ({actual})", "", "", took.as_secs_f64());
        }
    }
    let ratio = |name: &str, x: Option<&Timed>, y: Option<&Timed>| {
        x.zip(y).map(|(x, y)| format!("{name} {:.2}", x.total.as_secs_f64() / y.total.as_secs_f64()))
    };
    let ratios: Vec<String> =
        [ratio("(b)/(a)", b, a), ratio("(c)/(a)", c, a), ratio("(b)/(c)", b, c)].into_iter().flatten().collect();
    println!("ratios: {}", ratios.join("   "));
}

/// Rounds of (b) and (d), (c) and (e) for the one-read comparisons (`PGDRILL_BENCH_ROUNDS`, default 1).
fn rounds() -> usize {
    std::env::var("PGDRILL_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1)
}

/// One read against two, medians over the rounds: (b)'s recovery time and (d)'s (or (c)'s and
/// (e)'s), each against the restore alone (d's restore phase: the dump read by the restore after
/// verify read it), and (b)'s restore phase (the restore's read verifying the dump too) against
/// (d)'s.
fn print_one_read(what: &str, ones: &[Timed], firsts: &[Timed]) {
    if ones.is_empty() || firsts.is_empty() {
        return;
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let phase = |ts: &[Timed], name: &str| {
        median(
            ts.iter().map(|t| t.phases.iter().find(|(n, _)| n == name).map_or(0.0, |(_, d)| d.as_secs_f64())).collect(),
        )
    };
    let recovery = |ts: &[Timed]| median(ts.iter().map(|t| t.recovery.unwrap_or_default().as_secs_f64()).collect());
    let (r1, r2, alone) = (recovery(ones), recovery(firsts), phase(firsts, "restore"));
    let rounds: Vec<String> = ones
        .iter()
        .zip(firsts)
        .map(|(o, f)| {
            format!(
                "{:.1}/{:.1}",
                o.recovery.unwrap_or_default().as_secs_f64(),
                f.recovery.unwrap_or_default().as_secs_f64()
            )
        })
        .collect();
    println!(
        "one read of the {what}, {} rounds (recovery read once/verify first, s): {}",
        ones.len(),
        rounds.join(", ")
    );
    println!(
        "one read of the {what}, medians: recovery {r1:.1} s read once, {r2:.1} s verify first (its verify {:.1} s); restore phase {:.1} s \
         read once, {alone:.1} s alone: read once / restore alone {:.3}, verify first / restore alone {:.3}, \
         read once / verify first {:.3}",
        phase(firsts, "verify"),
        phase(ones, "restore"),
        r1 / alone,
        r2 / alone,
        r1 / r2
    );
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}
