//! How long a container target takes to be ready, side by side in one run, alternating:
//! (old) the start pgdrill made until image r3 — a container of an image that runs initdb at each
//! start, published on a loopback port, a password in its environment, ready when a TCP
//! connection succeeds; (new) pgdrill's sandboxed start through the library — the cluster
//! initialised when the image was built, no network, ready when a connection over its socket
//! succeeds and the sandbox has been checked from inside.
//!
//! `cargo bench --bench start`; `PGDRILL_BENCH_ROUNDS=N` (default 15). The old way needs the
//! image that started that way (`PGDRILL_BENCH_OLD_IMAGE`, default `pgdrill/postgres:17-r2`,
//! built by `ci/image/build` of a commit before r3); without it only the new way is measured.
//! Prints every start, the medians and their ratio.

use std::process::Command;
use std::time::{Duration, Instant};

use pgdrill::internals::TestTarget;
use pgdrill::scenario::default_image;
use sqlx::Connection;

fn main() {
    let rounds: usize = std::env::var("PGDRILL_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(15);
    let old_image = std::env::var("PGDRILL_BENCH_OLD_IMAGE").unwrap_or_else(|_| "pgdrill/postgres:17-r2".into());
    let have_old =
        Command::new("docker").args(["image", "inspect", &old_image]).output().is_ok_and(|o| o.status.success());
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let (mut old, mut new) = (Vec::new(), Vec::new());
    // One start of each before measuring: the first start of an image pays for its layers.
    if have_old {
        runtime.block_on(start_old(&old_image));
    }
    runtime.block_on(start_new(0));
    for round in 1..=rounds {
        if have_old {
            old.push(runtime.block_on(start_old(&old_image)));
        }
        new.push(runtime.block_on(start_new(round)));
        println!(
            "round {round:>2}: {}new {:>5} ms",
            old.last().map(|d| format!("old {:>5} ms   ", d.as_millis())).unwrap_or_default(),
            new.last().map(|d| d.as_millis()).unwrap_or_default()
        );
    }
    let median_new = median(&mut new);
    println!("\nnew ({}): median {} ms over {rounds} starts", default_image(), median_new.as_millis());
    if have_old {
        let median_old = median(&mut old);
        println!("old ({old_image}): median {} ms over {rounds} starts", median_old.as_millis());
        println!("ratio new/old: {:.2}", median_new.as_secs_f64() / median_old.as_secs_f64());
    } else {
        println!("old: `{old_image}` is not present; only the new start was measured");
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// pgdrill's start, from the provision call until the target is handed over.
async fn start_new(round: usize) -> Duration {
    let drill_id = format!("{:032x}", rand_id(round));
    let started = Instant::now();
    let target = TestTarget::start(default_image(), &drill_id, "bench-start").await.expect("the target starts");
    let took = started.elapsed();
    target.remove().await.expect("the target is removed");
    took
}

/// The start as pgdrill made it until image r3.
async fn start_old(image: &str) -> Duration {
    let password = format!("bench{}", std::process::id());
    let started = Instant::now();
    let out = Command::new("docker")
        .args(["run", "-d", "--label", "org.pgdrill.bench=1", "-p", "127.0.0.1::5432", "-e"])
        .arg(format!("POSTGRES_PASSWORD={password}"))
        .args([image, "postgres", "-c", "fsync=off", "-c", "full_page_writes=off"])
        .output()
        .expect("docker run");
    assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let port = Command::new("docker").args(["port", &id, "5432/tcp"]).output().expect("docker port");
    let port: u16 = String::from_utf8_lossy(&port.stdout)
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("a published port");
    let options = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("postgres")
        .password(&password)
        .database("postgres");
    loop {
        if let Ok(conn) = sqlx::PgConnection::connect_with(&options).await {
            conn.close().await.ok();
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the old container did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    let _ = Command::new("docker").args(["rm", "-f", "-v", &id]).output();
    took
}

fn rand_id(round: usize) -> u128 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    nanos ^ ((std::process::id() as u128) << 64) ^ round as u128
}
