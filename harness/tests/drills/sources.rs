//! Backups from anywhere: the newest in a folder, HTTP(S) with its failure modes, S3 through a
//! real S3-compatible server; and the size sanity check.

use std::time::{Duration, SystemTime};

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::servers::{HttpServer, S3_SECRET_KEY, S3Server};
use crate::util::{Scratch, fixture};

fn plur_bytes() -> Vec<u8> {
    std::fs::read(fixture("plur.sql.gz")).unwrap()
}

const PLUR: &str = "[[restore.roles]]\nname = \"plur_app\"\n[checks.row_counts]\nexpect_from_dump = true\n";

#[test]
fn the_newest_backup_in_a_folder_by_the_date_in_its_name() {
    let scratch = Scratch::new();
    std::fs::create_dir(scratch.path("backups")).unwrap();
    let bytes = plur_bytes();
    for (name, data) in [
        ("plur-2026-05-24.sql.gz", bytes.clone()),
        ("plur-2026-05-25.sql.gz", bytes.clone()),
        ("plur-2026-05-23.sql.gz", b"older and broken".to_vec()),
        ("README.txt", b"newest by time, not a backup".to_vec()),
    ] {
        scratch.write(&format!("backups/{name}"), data);
    }
    let scenario = scratch
        .scenario("dir.toml", &format!("[source]\ndir = \"backups\"\npattern = \"plur-{{date}}.sql.gz\"\n{PLUR}"));
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let record = drill.record();
    assert!(record.backup.as_ref().unwrap().location.ends_with("backups/plur-2026-05-25.sql.gz"), "{drill:?}");
    assert!(drill.phase_summary(Phase::Fetch).contains("the previous backup, plur-2026-05-24.sql.gz"), "{drill:?}");
}

#[test]
fn the_newest_backup_in_a_folder_by_modification_time_and_a_shrunk_one_fails() {
    let scratch = Scratch::new();
    std::fs::create_dir(scratch.path("backups")).unwrap();
    let big = scratch.write("backups/powernode_20260517_020000.sql.gz", vec![7u8; 200_000]);
    let small = scratch.write("backups/powernode_20260518_020000.sql.gz", &plur_bytes()[..1000]);
    let set = |path: &std::path::Path, ago: u64| {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(ago))
            .unwrap()
    };
    set(&big, 86_400);
    set(&small, 60);
    let scenario = scratch.scenario("shrunk.toml", "[source]\ndir = \"backups\"\n");
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Fetch), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Fetch);
    assert!(
        error.contains("powernode_20260518_020000.sql.gz` is 1000 B (1000 bytes), under 10% of the previous backup `powernode_20260517_020000.sql.gz` (195.3 KiB, 200000 bytes)"),
        "{error}"
    );
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Skipped, "nothing is started for a suspect backup");
}

#[test]
fn a_backup_over_http_resumes_after_a_dropped_connection() {
    let server = HttpServer::start(plur_bytes());
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "http.toml",
        &format!("[source]\nurl = \"{}\"\n{PLUR}", server.url("/drops-once.sql.gz?token=abc123")),
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_eq!(server.hits.drop.load(std::sync::atomic::Ordering::SeqCst), 2, "one drop, one resumed request");
    let location = &drill.record().backup.as_ref().unwrap().location;
    assert!(location.ends_with("/drops-once.sql.gz?…"), "the query string is not shown: {location}");
    assert!(!drill.all_reports().contains("abc123"), "a URL's query string never reaches a report");
    assert!(
        std::fs::read_dir(std::env::temp_dir()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(&drill.record().drill_id)),
        "the download is removed"
    );
}

#[test]
fn http_retries_a_flaky_server() {
    let server = HttpServer::start(plur_bytes());
    let scratch = Scratch::new();
    let scenario =
        scratch.scenario("flaky.toml", &format!("[source]\nurl = \"{}\"\n{PLUR}", server.url("/flaky.sql.gz")));
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_eq!(server.hits.flaky.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[test]
fn http_failures_have_clear_messages() {
    let server = HttpServer::start(plur_bytes());
    let scratch = Scratch::new();
    // Exit code 3: the drill could not run (the backup was not reached; a retry may pass); 1:
    // the backup itself failed (it is not there, or not a dump).
    let cases = [
        ("/forbidden.sql.gz", Phase::Fetch, "access to `http://127.0.0.1:", 3),
        ("/missing.sql.gz", Phase::Fetch, "does not exist (404)", 1),
        (
            "/always-503.sql.gz",
            Phase::Fetch,
            "could not be downloaded after 2 attempts: the server answered 503 Service Unavailable",
            3,
        ),
        ("/error-page.sql.gz", Phase::Verify, "it is an HTML page, not a dump", 1),
    ];
    for (path, phase, message, code) in cases {
        let scenario =
            scratch.scenario("failing.toml", &format!("[source]\nurl = \"{}\"\nretries = 1\n", server.url(path)));
        let drill = scratch.drill(&scenario);
        drill.assert_failed_cleanly();
        assert_eq!(drill.code, Some(code), "{path}\n{drill:?}");
        assert_eq!(drill.phase(phase), PhaseStatus::Failed, "{path}\n{drill:?}");
        assert!(drill.phase_error(phase).contains(message), "{path}: {}", drill.phase_error(phase));
    }
    assert_eq!(server.hits.always_503.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn backups_from_s3_by_key_and_newest_under_a_prefix() {
    let s3 = S3Server::start();
    let bytes = plur_bytes();
    s3.put(
        "backups",
        &[
            ("plur/plur-2026-05-24.sql.gz", bytes.clone()),
            ("plur/plur-2026-05-25.sql.gz", bytes.clone()),
            ("shrunk/plur-2026-05-23.sql.gz", bytes.clone()),
            ("shrunk/plur-2026-05-24.sql.gz", bytes.clone()),
            ("shrunk/plur-2026-05-25.sql.gz", bytes[..500].to_vec()),
            ("repository/backup/db/backup.info", b"[backup:current]".to_vec()),
            ("repository/archive/db/archive.info", b"[db]".to_vec()),
        ],
    );
    let scratch = Scratch::new();
    let source = |s3_url: &str| {
        format!(
            "[source]\ns3 = \"{s3_url}\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\npattern = \"plur-{{date}}.sql.gz\"\n",
            s3.endpoint
        )
    };
    let newest = scratch.scenario("s3.toml", &format!("{}{PLUR}", source("s3://backups/plur/")));
    let drill = scratch.drill_env(&newest, &[], &s3.env());
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_eq!(drill.record().backup.as_ref().unwrap().location, "s3://backups/plur/plur-2026-05-25.sql.gz");
    assert!(!drill.all_reports().contains(S3_SECRET_KEY), "the S3 secret key never reaches a report");

    let key = scratch.scenario("s3-key.toml", &format!("{}{PLUR}", source("s3://backups/plur/plur-2026-05-24.sql.gz")));
    let drill = scratch.drill_env(&key, &[], &s3.env());
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");

    let missing = scratch.scenario("s3-missing.toml", &source("s3://backups/plur/plur-2020-01-01.sql.gz"));
    let drill = scratch.drill_env(&missing, &[], &s3.env());
    drill.assert_failed_cleanly();
    assert!(drill.phase_error(Phase::Fetch).contains("does not exist (404)"), "{drill:?}");

    let shrunk = scratch.scenario("s3-shrunk.toml", &source("s3://backups/shrunk/"));
    let drill = scratch.drill_env(&shrunk, &[], &s3.env());
    drill.assert_failed_cleanly();
    assert!(
        drill.phase_error(Phase::Fetch).contains("under 10% of the previous backup `plur-2026-05-24.sql.gz`"),
        "{drill:?}"
    );

    // Sampled (`--sample`): an older object of the prefix, listed with its ETag, not the newest.
    let sampled = scratch.scenario("s3-sampled.toml", &format!("{}{PLUR}", source("s3://backups/shrunk/")));
    let drill = scratch.drill_env(&sampled, &["--sample".into(), "within=30d".into()], &s3.env());
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let plan = drill.record().sample.clone().expect("a plan");
    let names: Vec<&str> = plan.candidates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["plur-2026-05-23.sql.gz", "plur-2026-05-24.sql.gz"], "{plan:?}");
    assert!(plan.candidates.iter().all(|c| c.etag.is_some()), "{plan:?}");
    assert_eq!(plan.location, format!("s3://backups/shrunk/{}", plan.chosen.name));
    assert_eq!(drill.record().backup.as_ref().unwrap().location, plan.location);
    plan.check().unwrap();
    // A prefix holding a physical backup is not sampled: refused before anything is copied.
    let physical = scratch.scenario("s3-physical.toml", &source("s3://backups/repository/"));
    let drill = scratch.drill_env(&physical, &["--sample".into(), "within=30d".into()], &s3.env());
    assert_eq!(drill.code, Some(1), "{drill:?}");
    assert!(drill.phase_error(Phase::Fetch).contains("holds a physical backup"), "{drill:?}");
}

/// With `--reuse`, a backup in S3 or behind a URL whose store describes it as it did when a
/// drill downloaded it and read it whole (ETag, version, size, time written) is not downloaded
/// again when a snapshot of its restore serves; an object written since is.
#[test]
fn an_unchanged_object_in_s3_or_behind_a_url_is_cloned_without_downloading_it() {
    let s3 = S3Server::start();
    let bytes = plur_bytes();
    s3.put("backups", &[("plur/plur.sql.gz", bytes.clone())]);
    let scratch = Scratch::new();
    let mut env = s3.env();
    env.push(("PGDRILL_SNAPSHOTS".into(), scratch.path("snapshots").display().to_string()));
    let in_s3 = scratch.scenario(
        "s3-reuse.toml",
        &format!(
            "[source]\ns3 = \"s3://backups/plur/plur.sql.gz\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n{PLUR}",
            s3.endpoint
        ),
    );
    let drill = |scenario: &std::path::Path, args: &[&str]| {
        let drill = scratch.drill_env(scenario, &args.iter().map(|a| a.to_string()).collect::<Vec<_>>(), &env);
        assert_eq!(drill.code, Some(0), "{drill:?}");
        drill
    };
    let not_downloaded = |drill: &crate::util::Drill| drill.phase_summary(Phase::Fetch).contains("not downloaded");

    let first = drill(&in_s3, &["--snapshot"]);
    assert!(!not_downloaded(&first), "{first:?}");
    let clone = drill(&in_s3, &["--reuse"]);
    assert!(not_downloaded(&clone), "{clone:?}");
    assert!(clone.phase_summary(Phase::Fetch).contains("ETag "), "{clone:?}");
    assert_eq!(clone.record().clone_of.as_ref().map(|c| c.drill_id.clone()), Some(first.record().drill_id.clone()));

    // The same bytes over HTTP (moto serves a public object to anyone, with a strong ETag):
    // downloaded once, then known.
    s3.put_public("backups", "public/plur.sql.gz", bytes.clone());
    let url = scratch
        .scenario("url-reuse.toml", &format!("[source]\nurl = \"{}/backups/public/plur.sql.gz\"\n{PLUR}", s3.endpoint));
    let downloaded = drill(&url, &["--reuse"]);
    assert!(!not_downloaded(&downloaded) && downloaded.record().clone_of.is_some(), "{downloaded:?}");
    let known = drill(&url, &["--reuse"]);
    assert!(not_downloaded(&known) && known.record().clone_of.is_some(), "{known:?}");

    // Written since (the same dump, compressed otherwise): downloaded, and restored.
    let mut gzip = std::process::Command::new("sh")
        .args(["-c", "gzip -dc | gzip -1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = gzip.stdin.take().unwrap();
    std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes).unwrap());
    let other = gzip.wait_with_output().unwrap().stdout;
    s3.put("backups", &[("plur/plur.sql.gz", other.clone())]);
    s3.put_public("backups", "public/plur.sql.gz", other);
    for scenario in [&in_s3, &url] {
        let changed = drill(scenario, &["--reuse"]);
        assert!(!not_downloaded(&changed) && changed.record().clone_of.is_none(), "{changed:?}");
    }
}
