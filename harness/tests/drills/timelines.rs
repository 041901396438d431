//! A promoted cluster's archive: the source of [`PhysicalSource`] (timeline 1: the `before`
//! batch, the target time, the `after` batch, more segments) and, archiving into the same folder,
//! a copy of its plain base backup recovered by the image's own PostgreSQL to the target time and
//! promoted (timeline 2, branching off between the batches, writing a batch of its own). The
//! archive then holds `00000002.history`, timeline 2's segments from the switch on, timeline 1's
//! (the abandoned one) through its end, and timeline 1's last segment before the switch as
//! `.partial`. Recovery follows the newest timeline unless the scenario names one; a missing or
//! lying history file fails in verify.

use std::process::Command;

use pgdrill::outcome::{Phase, PhaseStatus};

use crate::physical::PhysicalSource;
use crate::source_server::{text, wait_archived, wait_for};
use crate::util::Scratch;

/// Rows of the batch timeline 2 writes.
const ON_TWO: i64 = 7;

/// Forks timeline 2 off the source at its target time (see the module's documentation) and
/// waits until the segment holding timeline 2's batch is archived.
fn fork_timeline_2(source: &PhysicalSource) {
    let name = source.server.name.clone();
    source.exec(&[
        "sh",
        "-c",
        "cp -a /plain /tmp/two && chmod 700 /tmp/two && rm -f /tmp/two/postmaster.pid && touch /tmp/two/recovery.signal",
    ]);
    let target = format!("recovery_target_time={}", source.target_time);
    let started = Command::new("docker")
        .args(["exec", "-d", &name, "postgres", "-D", "/tmp/two", "-c", "port=5433", "-c", "listen_addresses="])
        .args(["-c", "unix_socket_directories=/tmp", "-c", "hba_file=/etc/pgdrill-test-hba.conf", "-c", "fsync=off"])
        .args(["-c", "restore_command=cp /archive/%f %p", "-c", &target, "-c", "recovery_target_action=promote"])
        .args(["-c", "archive_mode=on", "-c", "archive_command=test ! -f /archive/%f && cp %p /archive/%f"])
        .output()
        .unwrap();
    assert!(started.status.success(), "{}", text(&started));
    let psql = |sql: &str| {
        let out = Command::new("docker")
            .args([
                "exec", &name, "psql", "-X", "-h", "/tmp", "-p", "5433", "-U", "postgres", "-d", "books", "-Atqc", sql,
            ])
            .output()
            .unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    wait_for("timeline 2 to be promoted", || psql("SELECT pg_is_in_recovery()").as_deref() == Some("f"));
    let insert = format!(
        "INSERT INTO public.ledger (id, batch) SELECT g, 'timeline 2' FROM generate_series(1001, {}) g",
        1000 + ON_TWO
    );
    psql(&insert).expect("timeline 2's batch");
    psql("SELECT pg_switch_wal()").unwrap();
    psql("CREATE TABLE public.on_two (x int)").unwrap();
    let last = psql("SELECT pg_walfile_name(pg_switch_wal())").unwrap();
    assert!(last.starts_with("00000002"), "{last}");
    wait_archived(&source.archive(), &last);
    assert!(source.archive().join("00000002.history").is_file());
}

/// A scenario recovering the source's backup through `archive` with `recovery`, expecting
/// `before`, `after` and timeline 2's rows.
fn scenario(
    scratch: &Scratch,
    source: &PhysicalSource,
    archive: &std::path::Path,
    recovery: &str,
    rows: [i64; 3],
) -> std::path::PathBuf {
    let [before, after, two] = rows;
    let check = |name: &str, batch: &str, expect: i64| {
        format!(
            "[[checks.sql]]\nname = \"{name}\"\nquery = \"SELECT count(*) FROM public.ledger WHERE batch = '{batch}'\"\nexpect = {expect}\n"
        )
    };
    scratch.scenario(
        &format!("timelines-{}.toml", crate::util::rand_suffix()),
        &format!(
            "[source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n[target]\ndatabase = \"books\"\n\n[recovery]\n{recovery}\n\n{}{}{}",
            source.backup().display(),
            archive.display(),
            check("before", "before", before),
            check("after", "after", after),
            check("timeline 2", "timeline 2", two),
        ),
    )
}

#[test]
fn a_promoted_clusters_archive_recovers_along_the_newest_timeline_or_the_one_named() {
    let source = PhysicalSource::make();
    fork_timeline_2(&source);
    let scratch = Scratch::new();
    let (before, after) = (source.before, source.after);

    // The newest timeline: timeline 1 to the switch, then timeline 2 (its batch, none of the
    // `after` batch timeline 1 wrote past the fork).
    let drill = scratch.drill(&scenario(&scratch, &source, &source.archive(), "", [before, 0, ON_TWO]));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.contains("along timeline 1, then timeline 2 from "), "{verify}");
    let restore = drill.phase_summary(Phase::Restore);
    assert!(restore.contains("promoted on timeline 3"), "{restore}");
    drill.assert_reports_and_no_leftovers();

    // The abandoned timeline, named: timeline 1 through its end, with the `after` batch (its
    // transaction as the target) and not timeline 2's.
    let recovery = format!("timeline = 1\ntarget_xid = {}", source.after_xid);
    let drill = scratch.drill(&scenario(&scratch, &source, &source.archive(), &recovery, [before, after, 0]));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(drill.phase_summary(Phase::Verify).contains(" along timeline 1, each of system"), "{drill:?}");
    // The same target along the newest timeline is never met: it is on timeline 1 past the fork.
    let recovery = format!("target_xid = {}", source.after_xid);
    let drill = scratch.drill(&scenario(&scratch, &source, &source.archive(), &recovery, [before, after, 0]));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains("recovery ended before the target was reached"), "{error}");
    assert!(error.contains("recovery followed timeline 2 (the archive's latest); `[recovery] timeline = \"current\"` follows timeline 1"), "{error}");

    // Timeline 2's history file lost: its segments would go unread; verify says so.
    let lost = scratch.path("without-history");
    copy_files(&source.archive(), &lost, |name| name != "00000002.history");
    let drill = scratch.drill(&scenario(&scratch, &source, &lost, "", [before, 0, ON_TWO]));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("holds segments of timeline 2, and not the history file 00000002.history"), "{error}");

    // A history that forks before the base backup started: timeline 2 does not continue it.
    let forged = scratch.path("forked-early");
    copy_files(&source.archive(), &forged, |_| true);
    std::fs::write(forged.join("00000002.history"), "1\t0/1000000\tno recovery target specified\n").unwrap();
    let drill = scratch.drill(&scenario(&scratch, &source, &forged, "", [before, 0, ON_TWO]));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(
        error.contains(
            "00000002.history says timeline 2 left timeline 1 at 0/1000000, before this backup is consistent"
        ),
        "{error}"
    );
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Skipped, "no server started: {drill:?}");
}

/// Copies the files of `from` whose names `keep` keeps into `to`.
fn copy_files(from: &std::path::Path, to: &std::path::Path, keep: impl Fn(&str) -> bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_file() && keep(&name) {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}
