//! The pod target, in the pod's shape under Docker (`ci/pod/drill`: pgdrill's image as two
//! containers sharing a folder and a data volume, the server's a sandbox, pgdrill's in its
//! network namespace, as a Kubernetes pod's containers are): the bundled fixture passes, with a
//! tool run over the stopped cluster through the agent; a broken backup fails with the check that
//! says so; without the server's container, provision fails saying what is missing. The hostile
//! and lying corpora run on it too (`hostile.rs`, `lying.rs`: `POD`).

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::util::{POD, Scratch, root};

/// The PLUR scenario, with the checksums check (which stops the server through the agent, runs
/// `pg_checksums` in the server's container and starts it again), on the pod.
fn plur_on_the_pod(scratch: &Scratch, backup: &str) -> crate::util::Drill {
    let fixtures = root().join("fixtures");
    let text = std::fs::read_to_string(root().join("scenarios/plur.toml")).unwrap();
    let text = text
        .replace("../fixtures/", &format!("{}/", fixtures.display()))
        .replace("backups/plur.sql.gz", &format!("backups/{backup}"))
        .replace("[target]\n", POD);
    let scenario = scratch.scenario("plur.toml", &format!("{text}\n[checks.checksums]\n"));
    // The fixtures are read at their own path in pgdrill's container.
    let dir = fixtures.display().to_string();
    scratch.pod_drill_with(&scenario, &[], &[], &[format!("{dir}:{dir}:ro")])
}

#[test]
fn the_bundled_fixture_passes_on_the_pod_with_a_tool_run_over_its_stopped_cluster() {
    let scratch = Scratch::new();
    let drill = plur_on_the_pod(&scratch, "plur.sql.gz");
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_eq!(drill.record().verdict, DrillVerdict::Pass);
    let target = drill.record().target.clone().expect("a target");
    assert_eq!(target.kind, "pod");
    let isolation = target.isolation.expect("its isolation");
    assert!(isolation.contained);
    assert!(isolation.network.starts_with("none: loopback alone"), "{}", isolation.network);
    let seen = isolation.observed.expect("seen from inside");
    assert_eq!((seen.interfaces.as_slice(), seen.routes, seen.shell), (&["lo".to_owned()][..], 0, false));
    assert!(seen.uid != 0 && seen.no_new_privs && seen.cap_eff.chars().all(|c| c == '0'), "{seen:?}");
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
    let drill = plur_on_the_pod(&scratch, "broken/plur-graph-broken.sql.gz");
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
