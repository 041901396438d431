//! The PLUR-like benchmark dataset (included with `#[path]`): generated once in a container of
//! the image, dumped plain and custom, kept in `target/bench-data/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::commands::{output, run};

/// A dataset: `scale` × (100k vectors of 96 dimensions, 1M audit rows over 24 monthly partitions).
pub(crate) struct Size {
    pub(crate) name: &'static str,
    pub(crate) scale: u32,
}

pub(crate) const SIZES: [Size; 2] = [Size { name: "small", scale: 1 }, Size { name: "large", scale: 10 }];

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

/// What a benchmark of the datasets starts from: the workspace, the project's image (built when
/// missing), the folder the datasets are kept in, and the sizes `PGDRILL_BENCH_SIZES` asks for
/// (both by default).
pub(crate) struct Bench {
    pub(crate) root: PathBuf,
    pub(crate) image: String,
    pub(crate) data: PathBuf,
    wanted: String,
}

impl Bench {
    pub(crate) fn start() -> Bench {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_owned();
        let image = std::fs::read_to_string(root.join("ci/image/TAG")).unwrap().trim().to_owned();
        let wanted = std::env::var("PGDRILL_BENCH_SIZES").unwrap_or_else(|_| "small,large".into());
        let data = root.join("target/bench-data");
        std::fs::create_dir_all(&data).unwrap();
        run("bash", &[root.join("ci/image/build").to_str().unwrap()]);
        Bench { root, image, data, wanted }
    }

    /// The sizes asked for, in order.
    pub(crate) fn sizes(&self) -> impl Iterator<Item = &'static Size> + '_ {
        SIZES.iter().filter(|s| self.wanted.split(',').any(|w| w.trim() == s.name))
    }
}

/// Generates the dataset in a container of the image and dumps it in both formats (cached).
pub(crate) fn dataset(image: &str, data: &Path, size: &Size) -> (PathBuf, PathBuf) {
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

/// A container of the image, removed when dropped.
pub(crate) struct Container {
    pub(crate) id: String,
}

impl Container {
    pub(crate) fn start(image: &str, settings: &[&str], shm: &str) -> Container {
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

    pub(crate) fn psql_stdin(&self, database: &str, sql: &str) {
        self.psql_stdin_vars(database, sql, &[]);
    }

    pub(crate) fn psql_stdin_vars(&self, database: &str, sql: &str, vars: &[(&str, &str)]) {
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
