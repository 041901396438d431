//! Restore speed, side by side in one run: (a) the runbook way, a default-settings container of
//! the same image with `gunzip -c | psql` and the checks as plain SQL; (b) pgdrill on the plain
//! dump; (c) pgdrill on the custom-format dump (pg_restore -j). On a PLUR-like dataset (vectors
//! with an HNSW index, audit rows in monthly partitions) at two sizes, about 50 MB and 500 MB
//! compressed. Prints each phase's time, the ratios, pgdrill's own CPU share and peak memory,
//! and how long the integrity checks take there: `amcheck` over the whole database and
//! `vector_recall` on the HNSW index.
//!
//! `cargo bench --bench restore` (both sizes), or `PGDRILL_BENCH_SIZES=small` for one;
//! `PGDRILL_BENCH_WAYS=b,c` leaves out the runbook way (which, with PostgreSQL's default 64 MB
//! of maintenance_work_mem, builds a large HNSW index very slowly).
//! Datasets are generated once into `target/bench-data/` and reused.

#[path = "support/commands.rs"]
mod commands;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use commands::{output, run};
use pgdrill::report::DrillRecord;

/// A dataset: `scale` × (100k vectors of 96 dimensions, 1M audit rows over 24 monthly partitions).
struct Size {
    name: &'static str,
    scale: u32,
}

const SIZES: [Size; 2] = [Size { name: "small", scale: 1 }, Size { name: "large", scale: 10 }];

/// Bump when the generator changes, so cached datasets are rebuilt.
const GENERATOR: u32 = 1;

const SCHEMA: &str = r#"
\set ON_ERROR_STOP on
CREATE EXTENSION vector;
CREATE TABLE public.schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
INSERT INTO public.schema_migrations (version) VALUES ('001'), ('002'), ('003');
CREATE TABLE public.orgs (id int PRIMARY KEY, name text NOT NULL UNIQUE);
INSERT INTO public.orgs SELECT i, 'org ' || i FROM generate_series(1, 50) i;
CREATE TABLE public.engrams (
    id bigint PRIMARY KEY,
    org_id int NOT NULL REFERENCES public.orgs (id),
    title text NOT NULL,
    embedding vector(96) NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO public.engrams
SELECT i, 1 + i % 50, 'engram ' || i,
       (SELECT array_agg(round(random()::numeric, 6)::real) FROM generate_series(1, 96) WHERE i > 0)::vector,
       timestamptz '2025-01-01' + i * interval '1 second'
FROM generate_series(1, 100000 * :scale) i;
CREATE INDEX engrams_embedding_idx ON public.engrams USING hnsw (embedding vector_cosine_ops);
CREATE INDEX engrams_org_idx ON public.engrams (org_id, created_at);
CREATE TABLE public.audit_events (
    id bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    org_id int NOT NULL REFERENCES public.orgs (id),
    actor text NOT NULL,
    action text NOT NULL,
    payload jsonb NOT NULL,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
DO $$
BEGIN
    FOR m IN 0..23 LOOP
        EXECUTE format('CREATE TABLE public.audit_events_%s PARTITION OF public.audit_events FOR VALUES FROM (%L) TO (%L)',
            to_char(date '2025-01-01' + m * interval '1 month', 'YYYY_MM'),
            date '2025-01-01' + m * interval '1 month', date '2025-01-01' + (m + 1) * interval '1 month');
    END LOOP;
END $$;
INSERT INTO public.audit_events
SELECT i, timestamptz '2025-01-01' + (i * 62.0 / :scale) * interval '1 second', 1 + i % 50, 'user' || i % 997,
       (ARRAY['create', 'update', 'delete', 'login'])[1 + i % 4],
       jsonb_build_object('ip', '10.0.' || i % 256 || '.' || i % 253, 'n', i)
FROM generate_series(1, 1000000 * :scale) i;
CREATE INDEX audit_events_org_idx ON public.audit_events (org_id, occurred_at);
"#;

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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_owned();
    let image = std::fs::read_to_string(root.join("ci/image/TAG")).unwrap().trim().to_owned();
    let wanted = std::env::var("PGDRILL_BENCH_SIZES").unwrap_or_else(|_| "small,large".into());
    let data = root.join("target/bench-data");
    std::fs::create_dir_all(&data).unwrap();
    run("bash", &[root.join("ci/image/build").to_str().unwrap()]);

    println!("pgdrill restore benchmark: {} cores, image {image}", std::thread::available_parallelism().unwrap());
    for size in SIZES.iter().filter(|s| wanted.split(',').any(|w| w.trim() == s.name)) {
        let (plain, custom) = dataset(&image, &data, size);
        println!(
            "\n== {} dataset: plain {} MB, custom {} MB ({}k vectors, {}M audit rows)",
            size.name,
            mb(std::fs::metadata(&plain).unwrap().len()),
            mb(std::fs::metadata(&custom).unwrap().len()),
            100 * size.scale,
            size.scale
        );
        let scenario = scenario(&data, size, &plain);
        let ways = std::env::var("PGDRILL_BENCH_WAYS").unwrap_or_else(|_| "a,b,c".into());
        let way = |w: &str| ways.split(',').any(|x| x.trim() == w);
        let runbook = way("a").then(|| runbook(&image, &plain));
        let pgdrill_plain = way("b").then(|| drill(&scenario, None, &data.join(format!("report-{}-plain", size.name))));
        let pgdrill_custom =
            way("c").then(|| drill(&scenario, Some(&custom), &data.join(format!("report-{}-custom", size.name))));
        print_results(runbook.as_ref(), pgdrill_plain.as_ref(), pgdrill_custom.as_ref());
    }
}

/// Generates the dataset in a container of the image and dumps it in both formats (cached).
fn dataset(image: &str, data: &Path, size: &Size) -> (PathBuf, PathBuf) {
    let plain = data.join(format!("bench-{}-v{GENERATOR}.sql.gz", size.name));
    let custom = data.join(format!("bench-{}-v{GENERATOR}.dump", size.name));
    if plain.exists() && custom.exists() {
        return (plain, custom);
    }
    println!("generating the {} dataset (once; kept in {})", size.name, data.display());
    let started = Instant::now();
    // Enough memory that the large HNSW graph is built in memory (the build is not timed).
    let container = Container::start(image, &["-c", "maintenance_work_mem=4GB", "-c", "fsync=off"], "8g");
    container.psql_stdin("postgres", "CREATE DATABASE bench;");
    container.psql_stdin_vars("bench", SCHEMA, &[("scale", &size.scale.to_string())]);
    for (path, format) in [(&plain, "-Fp"), (&custom, "-Fc")] {
        let inside = format!("/tmp/{}", path.file_name().unwrap().to_str().unwrap());
        let mut args = vec!["exec", "-u", "postgres", &container.id, "pg_dump", "-d", "bench", format, "-f", &inside];
        if format == "-Fp" {
            args.extend(["-Z", "gzip:6"]);
        }
        run("docker", &args);
        run("docker", &["cp", &format!("{}:{inside}", container.id), path.to_str().unwrap()]);
    }
    println!("generated in {:.0} s", started.elapsed().as_secs_f64());
    (plain, custom)
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
    }
}

/// (b), (c): pgdrill, the release binary, as a user runs it.
#[expect(clippy::disallowed_methods, reason = "the benchmark's own thread, not async")]
fn drill(scenario: &Path, backup: Option<&Path>, out: &Path) -> Timed {
    let _ = std::fs::remove_dir_all(out);
    let mut args = vec!["run".to_owned(), scenario.display().to_string(), "--out".into(), out.display().to_string()];
    if let Some(backup) = backup {
        args.extend(["--backup".into(), backup.display().to_string()]);
    }
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(&args).stdout(Stdio::null()).status().unwrap();
    let total = started.elapsed();
    let record: DrillRecord =
        serde_json::from_str(&std::fs::read_to_string(out.join("drill.json")).expect("drill.json")).unwrap();
    assert!(status.success(), "the drill failed: {:?}\nsee {}", record.failure, out.join("report.md").display());
    let usage = record.usage.as_ref().map(|u| (Duration::from_millis(u.cpu_ms), u.peak_rss_bytes));
    Timed {
        label: if backup.is_some() { "(c) pgdrill, custom format (pg_restore -j)" } else { "(b) pgdrill, plain dump" },
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

fn print_results(a: Option<&Timed>, b: Option<&Timed>, c: Option<&Timed>) {
    for t in [a, b, c].into_iter().flatten() {
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

/// A container of the image, removed when dropped.
struct Container {
    id: String,
}

impl Container {
    fn start(image: &str, settings: &[&str], shm: &str) -> Container {
        let mut args = vec!["run", "-d", "--label", "org.pgdrill.bench=1"];
        let shm_arg = format!("--shm-size={shm}");
        if !shm.is_empty() {
            args.push(&shm_arg);
        }
        args.push(image);
        args.extend(settings);
        let id = output("docker", &args).trim().to_owned();
        let container = Container { id };
        for _ in 0..600 {
            let ready = Command::new("docker")
                .args(["exec", "-u", "postgres", &container.id, "pg_isready", "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return container;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the container did not become ready");
    }

    fn psql_stdin(&self, database: &str, sql: &str) {
        self.psql_stdin_vars(database, sql, &[]);
    }

    fn psql_stdin_vars(&self, database: &str, sql: &str, vars: &[(&str, &str)]) {
        let mut args = vec!["exec".to_owned(), "-i".into(), "-u".into(), "postgres".into(), self.id.clone()];
        args.extend(["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", database].map(str::to_owned));
        for (name, value) in vars {
            args.extend(["-v".to_owned(), format!("{name}={value}")]);
        }
        let mut child = Command::new("docker").args(&args).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), sql.as_bytes()).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success(), "psql failed in {}", self.id);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.id]).stdout(Stdio::null()).status();
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}
