//! What a content fingerprint costs per GB, side by side in one run with what reading the same
//! table out of the server costs (`COPY ... TO STDOUT` by psql over the same loopback port, every
//! row once: the physical limit any fingerprint of the rows must pay), on the restore benchmark's
//! datasets: the fingerprint in the server (`ROW(...)::text` hashed and sorted by the server, one
//! core: how pgdrill took it until fingerprint files v3), then `pgdrill fingerprint` whole (every
//! core), on one session (the same digest, checked), by 16 key ranges, and a sample of 2 of them;
//! with pgdrill's peak memory.
//!
//! `cargo bench --bench fingerprint` (both sizes), or `PGDRILL_BENCH_SIZES=small`. The server
//! is a container of the project's image on a loopback port, its data restored without the
//! indexes the fingerprints do not use (the HNSW graph). Needs psql on this machine.

#[path = "support/commands.rs"]
mod commands;
#[path = "support/dataset.rs"]
mod dataset;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use commands::{measured, output, run};
use dataset::{Bench, dataset};

/// What the fingerprint pins before it reads (`fingerprint::SETTINGS`), as psql sets them.
const SETTINGS: &str = "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; \
    SET extra_float_digits = 3; SET bytea_output = 'hex'; SET lc_monetary = 'C'; SET xmlbinary = 'base64'; \
    SET xmloption = 'content'; SET search_path = pg_catalog, pg_temp; SET row_security = off; SET work_mem = '256MB';";

fn main() {
    let bench = Bench::start();
    let (root, image, data) = (&bench.root, &bench.image, &bench.data);
    let cores = std::thread::available_parallelism().unwrap();
    println!("pgdrill fingerprint benchmark: {cores} cores, image {image}");
    let mut seen: Vec<(&str, &str, f64, f64, f64)> = Vec::new();
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
            "{:<20} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>9} {:>8} {:>9} {:>9}",
            "table",
            "size",
            "read once",
            "in server",
            "pgdrill",
            "1 session",
            "16 ranges",
            "2 of 16",
            "per GB",
            "/ read",
            "peak RSS"
        );
        for (table, only, key) in [("public.engrams", "ONLY ", "id"), ("public.audit_events", "", "id")] {
            let (bytes, seconds, rss) = measure(root, &server, table, only, key);
            seen.push((size.name, table, bytes, seconds, rss));
        }
    }
    // Each table at both sizes: the time grows as the data, and the memory does not.
    for (table, small) in seen.iter().filter(|s| s.0 == "small").map(|s| (s.1, s)) {
        if let Some(large) = seen.iter().find(|s| s.0 == "large" && s.1 == table) {
            println!(
                "{table}: large / small: size {:.1}x, fingerprint's time {:.1}x, peak RSS {:.1} / {:.1} MiB",
                large.2 / small.2,
                large.3 / small.3,
                small.4,
                large.4
            );
        }
    }
}

/// One table's line: each way's seconds, and the ratios. Its size, the whole fingerprint's
/// seconds and pgdrill's peak memory (MiB).
fn measure(root: &Path, server: &Server, table: &str, only: &str, key: &str) -> (f64, f64, f64) {
    let bytes: f64 = server
        .psql(&format!(
            "SELECT coalesce(sum(pg_catalog.pg_table_size(relid)), pg_catalog.pg_table_size('{table}')) \
             FROM pg_catalog.pg_partition_tree('{table}')"
        ))
        .parse()
        .unwrap();
    let read = server.read_out(table);
    let sql = format!(
        "{SETTINGS} SELECT pg_catalog.count(*), pg_catalog.encode(pg_catalog.sha256(COALESCE(pg_catalog.string_agg(r.h, \
         ''::bytea ORDER BY r.h), ''::bytea)), 'hex') FROM (SELECT pg_catalog.sha256(pg_catalog.convert_to(ROW(t.*)::text, \
         'UTF8')) AS h FROM {only}{table} AS t) AS r"
    );
    let started = Instant::now();
    server.psql(&sql);
    let in_server_s = started.elapsed().as_secs_f64();
    let (whole, digest) = server.fingerprint(root, table, &[]);
    let (one, alone) = server.fingerprint(root, table, &["--jobs", "1"]);
    assert_eq!(digest, alone, "{table}: one session or all, the same digest");
    let keyed = format!("{table}={key}");
    let (ranges, _) = server.fingerprint(root, table, &["--key", &keyed]);
    let (sample, _) = server.fingerprint(root, table, &["--key", &keyed, "--sample", "2"]);
    let gb = bytes / 1e9;
    let s = |c: &commands::Cost| c.wall.as_secs_f64();
    println!(
        "{table:<20} {:>5.0}MB {:>8.1}s {in_server_s:>9.1}s {:>9.1}s {:>9.1}s {:>9.1}s {:>8.1}s {:>7.1}s {:>8.2}x {:>6.1}MiB",
        bytes / 1e6,
        s(&read),
        s(&whole),
        s(&one),
        s(&ranges),
        s(&sample),
        s(&whole) / gb,
        s(&whole) / s(&read),
        whole.max_rss_kib as f64 / 1024.0,
    );
    println!(
        "{:<20} in server / pgdrill {:.1}x; pgdrill 1 session / all {:.2}; 16 ranges / whole {:.2}; sample / whole {:.2}; \
         pgdrill CPU {:.1} s; peak RSS 1 session {:.1} MiB, 16 ranges {:.1} MiB",
        "",
        in_server_s / s(&whole),
        s(&one) / s(&whole),
        s(&ranges) / s(&whole),
        s(&sample) / s(&whole),
        whole.cpu.as_secs_f64(),
        one.max_rss_kib as f64 / 1024.0,
        ranges.max_rss_kib as f64 / 1024.0,
    );
    (bytes, s(&whole), whole.max_rss_kib as f64 / 1024.0)
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

    /// Every row of `table` read out once over the loopback port, as psql's COPY writes it
    /// (thrown away), after a first read that leaves the table in the cache.
    fn read_out(&self, table: &str) -> commands::Cost {
        let copy = format!("COPY (SELECT * FROM {table}) TO STDOUT");
        let read = || {
            measured(
                Command::new("psql")
                    .args(["-h", "127.0.0.1", "-p", &self.port, "-U", "postgres", "-d", "bench", "-Xqc", &copy])
                    .stdout(Stdio::null()),
            )
        };
        read();
        read()
    }

    /// `pgdrill fingerprint` of `table`: what it cost, and the table's digest.
    fn fingerprint(&self, root: &Path, table: &str, extra: &[&str]) -> (commands::Cost, String) {
        let out = std::env::temp_dir().join(format!("{}-fingerprint.json", self.name));
        let dsn = format!("postgres://postgres@127.0.0.1:{}/bench", self.port);
        let cost = measured(
            Command::new(env!("CARGO_BIN_EXE_pgdrill"))
                .args(["fingerprint", "--dsn", &dsn, "--table", table, "-o", out.to_str().unwrap()])
                .args(extra)
                .current_dir(root)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        (cost, file["tables"][0]["sha256"].as_str().unwrap().to_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.name]).output();
    }
}
