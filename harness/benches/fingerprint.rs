//! What a content fingerprint costs per GB, side by side in one run with what reading the same
//! table costs: a bare scan (`count(*)`) and reading every row as text (what any row hash must
//! do first), on the restore benchmark's datasets; whole, by 16 key ranges, and a sample of 2
//! of them.
//!
//! `cargo bench --bench fingerprint` (both sizes), or `PGDRILL_BENCH_SIZES=small`. The server
//! is a container of the project's image on a loopback port, its data restored without the
//! indexes the fingerprints do not use (the HNSW graph).

#[path = "support/commands.rs"]
mod commands;
#[path = "support/dataset.rs"]
mod dataset;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use commands::{output, run};
use dataset::{Bench, dataset};

fn main() {
    let bench = Bench::start();
    let (root, image, data) = (&bench.root, &bench.image, &bench.data);
    println!("pgdrill fingerprint benchmark: {} cores, image {image}", std::thread::available_parallelism().unwrap());
    for size in bench.sizes() {
        let (_, custom) = dataset(image, data, size);
        let server = Server::start(image, data);
        server.exec(&["createdb", "-U", "postgres", "bench"]);
        run("docker", &["cp", custom.to_str().unwrap(), &format!("{}:/tmp/bench.dump", server.name)]);
        server.exec(&[
            "pg_restore",
            "-U",
            "postgres",
            "-d",
            "bench",
            "--section=pre-data",
            "--section=data",
            "/tmp/bench.dump",
        ]);
        server.psql("VACUUM ANALYZE");
        println!("\n{} dataset:", size.name);
        println!(
            "{:<20} {:>9} {:>10} {:>10} {:>12} {:>12} {:>12} {:>10}",
            "table", "size", "scan", "as text", "fingerprint", "16 ranges", "2 of 16", "per GB"
        );
        for (table, key) in [("public.engrams", "id"), ("public.audit_events", "id")] {
            let bytes: f64 = server
                .psql(&format!(
                    "SELECT coalesce(sum(pg_catalog.pg_table_size(relid)), pg_catalog.pg_table_size('{table}')) \
                     FROM pg_catalog.pg_partition_tree('{table}')"
                ))
                .parse()
                .unwrap();
            let scan = server.timed(&format!("SELECT count(*) FROM {table}"));
            let text = server.timed(&format!("SELECT sum(length(t::text)) FROM {table} AS t"));
            let whole = server.fingerprint(root, table, &[]);
            let ranges = server.fingerprint(root, table, &["--key", &format!("{table}={key}")]);
            let sample = server.fingerprint(root, table, &["--key", &format!("{table}={key}"), "--sample", "2"]);
            let gb = bytes / 1e9;
            println!(
                "{table:<20} {:>7.0}MB {scan:>9.1}s {text:>9.1}s {whole:>11.1}s {ranges:>11.1}s {sample:>11.1}s {:>8.1}s",
                bytes / 1e6,
                whole / gb
            );
            println!(
                "{:<20} fingerprint / scan {:.1}x, / reading as text {:.1}x; 16 ranges / whole {:.2}; sample / whole {:.2}",
                "",
                whole / scan,
                whole / text,
                ranges / whole,
                sample / whole
            );
        }
    }
}

/// A server of the image on a loopback port, removed when dropped.
struct Server {
    name: String,
    port: String,
}

impl Server {
    fn start(image: &str, data: &Path) -> Server {
        let name = format!("pgdrill-bench-fingerprint-{}", std::process::id());
        let hba = data.join("fingerprint-bench-hba.conf");
        std::fs::write(&hba, "local all all trust\nhost all all all trust\n").unwrap();
        let mount = format!("{}:/etc/bench-hba.conf:ro", hba.display());
        run(
            "docker",
            &[
                "run",
                "-d",
                "--rm",
                "--name",
                &name,
                "--label",
                "org.pgdrill.bench=1",
                "-p",
                "127.0.0.1::5432",
                "--shm-size=2g",
                "-v",
                &mount,
                image,
                "-c",
                "listen_addresses=*",
                "-c",
                "hba_file=/etc/bench-hba.conf",
                "-c",
                "shared_buffers=1GB",
                "-c",
                "fsync=off",
            ],
        );
        let port = output("docker", &["port", &name, "5432/tcp"])
            .lines()
            .next()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .to_owned();
        let server = Server { name, port };
        for _ in 0..600 {
            if Command::new("docker")
                .args(["exec", &server.name, "pg_isready", "-q"])
                .status()
                .is_ok_and(|s| s.success())
            {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the server did not start");
    }

    fn exec(&self, args: &[&str]) {
        let mut all = vec!["exec", &self.name];
        all.extend(args);
        run("docker", &all);
    }

    fn psql(&self, sql: &str) -> String {
        output("docker", &["exec", &self.name, "psql", "-U", "postgres", "-d", "bench", "-Atqc", sql]).trim().to_owned()
    }

    /// Seconds a query takes, twice, the second kept (the table then in the cache, as for the
    /// fingerprints after it).
    fn timed(&self, sql: &str) -> f64 {
        self.psql(sql);
        let started = Instant::now();
        self.psql(sql);
        started.elapsed().as_secs_f64()
    }

    fn fingerprint(&self, root: &Path, table: &str, extra: &[&str]) -> f64 {
        let out = std::env::temp_dir().join(format!("{}-fingerprint.json", self.name));
        let dsn = format!("postgres://postgres@127.0.0.1:{}/bench", self.port);
        let started = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
            .args(["fingerprint", "--dsn", &dsn, "--table", table, "-o", out.to_str().unwrap()])
            .args(extra)
            .current_dir(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pgdrill fingerprint {table} {extra:?}");
        started.elapsed().as_secs_f64()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.name]).output();
    }
}
