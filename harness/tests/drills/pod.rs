//! The pod target, in the pod's shape under Docker (`ci/pod/drill`: pgdrill's image as two
//! containers sharing a folder and a data volume, the server's a sandbox, pgdrill's in its
//! network namespace, as a Kubernetes pod's containers are): the bundled fixture passes, with a
//! tool run over the stopped cluster through the agent; a broken backup fails with the check that
//! says so; without the server's container, provision fails saying what is missing. The hostile
//! and lying corpora run on it too (`hostile.rs`, `lying.rs`: `POD`).

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::util::{POD, Scratch, root};

/// The PLUR scenario, with the checksums check (which stops the server through the agent, runs
/// `pg_checksums` in the server's container and starts it again), on the pod; `env` for
/// `ci/pod/drill`.
fn plur_on_the_pod(scratch: &Scratch, backup: &str, env: &[(String, String)]) -> crate::util::Drill {
    let fixtures = root().join("fixtures");
    let text = std::fs::read_to_string(root().join("scenarios/plur.toml")).unwrap();
    let text = text
        .replace("../fixtures/", &format!("{}/", fixtures.display()))
        .replace("backups/plur.sql.gz", &format!("backups/{backup}"))
        .replace("[target]\n", POD);
    let scenario = scratch.scenario("plur.toml", &format!("{text}\n[checks.checksums]\n"));
    // The fixtures are read at their own path in pgdrill's container.
    let dir = fixtures.display().to_string();
    scratch.pod_drill_with(&scenario, &[], env, &[format!("{dir}:{dir}:ro")])
}

/// A uid OpenShift would assign (its restricted-v2: one of the namespace's range, in the root
/// group), which the image has no name for.
const PLATFORM_UID: u32 = 1_000_650_000;

/// As a uid the platform assigns: the image's files it reads and writes are its root group's,
/// and the cluster's copy is that uid's, as the server and `pg_checksums` ask.
#[test]
fn the_bundled_fixture_passes_on_the_pod_as_a_platform_uid_with_a_tool_run_over_its_stopped_cluster() {
    let scratch = Scratch::new();
    let user = [("PGDRILL_POD_USER".to_owned(), format!("{PLATFORM_UID}:0"))];
    let drill = plur_on_the_pod(&scratch, "plur.sql.gz", &user);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_eq!(drill.record().verdict, DrillVerdict::Pass);
    let target = drill.record().target.clone().expect("a target");
    assert_eq!(target.kind, "pod");
    let isolation = target.isolation.expect("its isolation");
    assert!(isolation.contained);
    assert!(isolation.network.starts_with("none: loopback alone"), "{}", isolation.network);
    let seen = isolation.observed.expect("seen from inside");
    assert_eq!((seen.interfaces.as_slice(), seen.routes, seen.shell), (&["lo".to_owned()][..], 0, false));
    assert_eq!(seen.uid, PLATFORM_UID, "{seen:?}");
    assert!(seen.no_new_privs && seen.cap_eff.chars().all(|c| c == '0'), "{seen:?}");
    assert!(isolation.limits.contains("memory 2048 MiB for the server's container"), "{}", isolation.limits);
    let checksums = drill.record().checks.iter().find(|c| c.kind.as_str() == "checksums").cloned();
    let checksums = checksums.expect("the checksums check ran");
    assert_eq!(checksums.verdict, pgdrill::Verdict::Pass, "{checksums:?}");
    let report = drill.report("report.md");
    assert!(report.contains("the server in the container beside pgdrill's"), "{report}");
}

#[test]
fn a_broken_backup_fails_on_the_pod_as_on_a_container() {
    let scratch = Scratch::new();
    let drill = plur_on_the_pod(&scratch, "broken/plur-graph-broken.sql.gz", &[]);
    drill.assert_failed_cleanly();
    let failed: Vec<String> = drill
        .record()
        .checks
        .iter()
        .filter(|c| c.verdict != pgdrill::Verdict::Pass)
        .map(|c| format!("{}/{}", c.kind.as_str(), c.object))
        .collect();
    assert!(failed.iter().any(|c| c.starts_with("graphs/")), "the graph checks fail: {failed:?}");
}

/// pgdrill's own binary on this machine, told to drill on a pod whose server container is not
/// there: provision waits for the agent, then fails saying what is missing; reports are written.
#[test]
fn without_the_servers_container_provision_fails_saying_so() {
    let scratch = Scratch::new();
    let empty = scratch.path("no-agent");
    std::fs::create_dir(&empty).unwrap();
    let backup = root().join("fixtures/backups/plur.sql.gz");
    let scenario = scratch.scenario(
        "alone.toml",
        &format!("name = \"alone\"\n[source]\npath = \"{}\"\n[target]\nstartup_timeout = \"2s\"\n", backup.display()),
    );
    let env = [("PGDRILL_POD_DIR".to_owned(), empty.display().to_string())];
    let drill = scratch.drill_env(&scenario, &["--target".into(), "pod".into()], &env);
    drill.assert_failed_cleanly();
    assert_eq!(drill.code, Some(3), "a drill that could not run: a fleet runs it again");
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Failed);
    let error = drill.phase_error(Phase::Provision);
    assert!(error.contains("no agent answers on") && error.contains("pgdrill pod-server"), "{error}");
}

/// A base backup with its WAL archive recovers on the pod to a chosen time: verified by
/// `pg_verifybackup` in pgdrill's container, copied onto the data volume (pgdrill's scratch
/// folder is another), its WAL given to the server beside it, promoted; the rows written after
/// the target are not there. A segment missing from the archive fails verify, naming it.
#[test]
fn a_base_backup_recovers_on_the_pod_to_a_chosen_time_and_a_wal_gap_fails() {
    let source = crate::physical::PhysicalSource::make();
    let scratch = Scratch::new();
    // pgdrill's container runs as the image's `postgres`: it reads the source's folders.
    let dir = source.server.dir.path().display().to_string();
    let opened = std::process::Command::new("chmod").args(["-R", "a+rX", &dir]).status().unwrap();
    assert!(opened.success());
    let drill_to = |archive: &std::path::Path| {
        let at = format!("[recovery]\ntarget_time = \"{}\"", source.target_time);
        let scenario = crate::physical::scenario_of(&scratch, &source.backup(), archive, source.before, 0, &at);
        let text = std::fs::read_to_string(&scenario).unwrap().replace("[target]\n", POD);
        std::fs::write(&scenario, text).unwrap();
        scratch.pod_drill_with(&scenario, &[], &[], &[format!("{dir}:{dir}:ro")])
    };
    let drill = drill_to(&source.archive());
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_eq!(drill.record().target.as_ref().map(|t| t.kind.as_str()), Some("pod"));
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.contains("pg_verifybackup"), "{verify}");
    let restore = drill.phase_summary(Phase::Restore);
    assert!(restore.starts_with("recovered to recovery_target_time "), "{restore}");
    assert!(restore.contains("promoted on timeline 2"), "{restore}");

    // The archive without the segment after the backup's start.
    let gap = crate::physical::copy_folder(&scratch, &source.archive(), "gap");
    let mut segments: Vec<String> = std::fs::read_dir(&gap)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24)
        .collect();
    segments.sort();
    let label = source.server.exec(&["sh", "-c", "tar -xzOf /backup/base.tar.gz backup_label"]);
    let start = label.split("(file ").nth(1).unwrap()[..24].to_owned();
    let missing = &segments[segments.iter().position(|s| *s == start).unwrap() + 1];
    std::fs::remove_file(gap.join(missing)).unwrap();
    let drill = drill_to(&gap);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    assert!(drill.phase_error(Phase::Verify).contains(&format!("has no segment {missing}")), "{drill:?}");
}

/// The pod guide's command, as written, from a folder with no `reports` in it: Docker would make
/// the folder root's, where the image's user cannot write; `ci/pod/drill` makes it, the image's
/// user's during the drill and the caller's after it. The bundled fixture passes and its reports
/// are there.
#[test]
fn the_pod_guides_command_works_as_written() {
    let guide = std::fs::read_to_string(root().join("docs/src/guide/pod.md")).unwrap();
    let command = guide.lines().find(|l| l.starts_with("bash ci/pod/drill ")).expect("the guide's command");
    let scratch = Scratch::new();
    let here = scratch.path("here");
    std::fs::create_dir(&here).unwrap();
    let script = root().join("ci/pod/drill");
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(command.replacen("ci/pod/drill", &script.display().to_string(), 1))
        .current_dir(&here)
        .env("PGDRILL_POD_BINARY", env!("CARGO_BIN_EXE_pgdrill"))
        .output()
        .unwrap();
    let said = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{command}\n{said}");
    let drills: Vec<_> = crate::util::files_under(&here.join("reports/plur"))
        .into_iter()
        .filter(|f| f.ends_with("drill.json"))
        .collect();
    assert_eq!(drills.len(), 1, "{drills:?}\n{said}");
    let record: pgdrill::outcome::DrillRecord =
        serde_json::from_str(&std::fs::read_to_string(&drills[0]).unwrap()).unwrap();
    assert_eq!(record.verdict, DrillVerdict::Pass);
    use std::os::unix::fs::MetadataExt;
    let caller = std::fs::metadata(&here).unwrap().uid();
    for file in crate::util::files_under(&here.join("reports")) {
        assert_eq!(std::fs::metadata(&file).unwrap().uid(), caller, "{} is the caller's", file.display());
    }
}
