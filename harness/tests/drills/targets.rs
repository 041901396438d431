//! Every target: a throwaway database on an existing server (TLS required), a throwaway cluster
//! of local binaries (Debian's PostgreSQL 15), and version skew between dump and target.

use pgdrill::outcome::{Phase, PhaseStatus};

use crate::servers::PgServer;
use crate::util::{Scratch, fixture, fixture_text, gzip};

/// The test's server runs SQL as a superuser: its drills trust their backups (the fixtures).
fn server_scenario(scratch: &Scratch, extra: &str) -> std::path::PathBuf {
    scratch.scenario(
        "server.toml",
        &format!(
            "[source]\npath = \"{{fixtures}}/prismeai.sql.gz\"\ntrusted = \"a fixture of this repository\"\n[target]\nkind = \"server\"\nurl_env = \"DRILL_ADMIN_URL\"\ndatabase = \"prismeai\"\n[[restore.roles]]\nname = \"prismeai_app\"\n{extra}"
        ),
    )
}

#[test]
fn a_throwaway_database_on_an_existing_server_over_tls_is_dropped_afterwards() {
    let server = PgServer::start();
    let scratch = Scratch::new();
    let env = [("DRILL_ADMIN_URL".to_owned(), server.url("require"))];

    let scenario = server_scenario(&scratch, "[checks.row_counts]\nexpect_from_dump = true\n");
    let drill = scratch.drill_env(&scenario, &[], &env);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    // The server is not a sandbox and its admin is a superuser: the drill ran because the
    // scenario trusts its backup, and the report says so in its first lines.
    let report = drill.report("report.md");
    let head = report.lines().take(6).collect::<Vec<_>>().join("\n");
    assert!(head.contains("This drill trusted its backup") && head.contains("a fixture of this repository"), "{head}");
    assert!(head.contains("The target was not a sandbox (server)") && head.contains("is a superuser"), "{head}");
    assert_eq!(drill.record().scenario.trusted.as_deref(), Some("a fixture of this repository"));
    assert!(report.contains("⚠️ not a sandbox"), "{report}");
    let database = drill.record().restore.as_ref().unwrap().database.clone();
    assert!(database.starts_with("prismeai_") && database != "prismeai", "a unique name: {database}");
    assert!(drill.phase_summary(Phase::Teardown).contains(&format!("dropped database {database}")), "{drill:?}");

    // A failing drill drops its database and roles too.
    let failing = server_scenario(&scratch, "[checks.row_counts.tables]\n\"public.users\" = 51\n");
    let drill = scratch.drill_env(&failing, &[], &env);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Teardown), PhaseStatus::Passed, "{drill:?}");

    let databases =
        server.psql("SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'prismeai%'").unwrap();
    assert_eq!(databases.trim(), "", "no drill database is left");
    let roles = server.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'prismeai_app'").unwrap();
    assert_eq!(roles.trim(), "0", "the role the drills created is dropped");
    assert!(!drill.all_reports().contains(&server.password), "the admin password never reaches a report");
    assert!(!drill.stderr.contains(&server.password) && !drill.stdout.contains(&server.password));
}

#[test]
fn an_unreachable_server_fails_in_provision() {
    let scratch = Scratch::new();
    let scenario = server_scenario(&scratch, "");
    let env = [("DRILL_ADMIN_URL".to_owned(), "postgres://postgres:pw-never-shown@127.0.0.1:1/postgres".to_owned())];
    let drill = scratch.drill_env(&scenario, &[], &env);
    drill.assert_failed_cleanly();
    assert_eq!(drill.code, Some(3), "the drill could not run: nothing is said about the backup\n{drill:?}");
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Failed, "{drill:?}");
    assert!(drill.phase_error(Phase::Provision).contains("cannot connect to the server at 127.0.0.1:1"), "{drill:?}");
    assert!(!drill.all_reports().contains("pw-never-shown"));
}

fn local_scenario(scratch: &Scratch, backup: &std::path::Path) -> std::path::PathBuf {
    scratch.scenario(
        "local.toml",
        &format!(
            "[source]\npath = \"{}\"\n[target]\nkind = \"local\"\nbin_dir = \"/usr/lib/postgresql/15/bin\"\n[[restore.roles]]\nname = \"prismeai_app\"\n[checks.row_counts]\nexpect_from_dump = true\n",
            backup.display()
        ),
    )
}

/// A dump restores on this machine's binaries of its major; the cluster is made with data
/// checksums, so `checksums` (the server stopped in its sandbox, read, started again) proves
/// the pages the restore wrote.
#[test]
fn local_binaries_restore_a_dump_of_their_version_and_leave_nothing() {
    let scratch = Scratch::new();
    let scenario = local_scenario(&scratch, &fixture("prismeai-pg15.sql.gz"));
    let text = std::fs::read_to_string(&scenario).unwrap() + "[checks.checksums]\n";
    let drill = scratch.drill(&scratch.scenario("local-checksums.toml", &text));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let record = drill.record();
    assert_eq!(record.target.as_ref().unwrap().kind, "local");
    assert!(record.preflight.as_ref().unwrap().server_version.starts_with("15."), "{drill:?}");
    let checksums = record.checks.iter().find(|c| c.kind.as_str() == "checksums").expect("the checksums check");
    assert!(checksums.actual.contains("no bad checksum"), "{checksums:?}");
    let dir = std::env::temp_dir().join(format!("pgdrill-local-{}", record.drill_id));
    assert!(!dir.exists(), "the cluster folder is removed");
}

#[test]
fn a_dump_from_a_newer_postgres_than_the_target_fails_in_preflight() {
    let scratch = Scratch::new();
    let drill = scratch.drill(&local_scenario(&scratch, &fixture("prismeai.sql.gz")));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Preflight), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Preflight);
    assert!(
        error.contains("the dump comes from PostgreSQL 17.")
            && error.contains("newer than the target's PostgreSQL 15."),
        "{error}"
    );
}

#[test]
fn settings_the_target_does_not_know_fail_in_preflight() {
    let scratch = Scratch::new();
    let text = fixture_text("prismeai-pg15.sql.gz").replacen(
        "SET lock_timeout = 0;",
        "SET lock_timeout = 0;\nSET transaction_timeout = 0;",
        1,
    );
    let path = scratch.write("settings.sql.gz", gzip(&text));
    let drill = scratch.drill(&local_scenario(&scratch, &path));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Preflight);
    assert!(
        error.contains("the dump sets a setting that PostgreSQL 15.") && error.contains("transaction_timeout"),
        "{error}"
    );
}

#[test]
fn an_older_dump_restores_onto_a_newer_container() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "older.toml",
        "[source]\npath = \"{fixtures}/prismeai-pg15.sql.gz\"\n[[restore.roles]]\nname = \"prismeai_app\"\n[checks.row_counts]\nexpect_from_dump = true\n",
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(drill.record().backup.as_ref().unwrap().source_version.as_deref().unwrap().starts_with("15."));
}

#[test]
fn a_docker_engine_on_another_machine_fails_in_provision_saying_what_to_use() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario("remote.toml", "[source]\npath = \"{fixtures}/plur.sql.gz\"\n");
    // Never reached: pgdrill refuses before it connects (192.0.2.0/24 is for documentation).
    let env = [("DOCKER_HOST".to_owned(), "tcp://deploy:s3cret@192.0.2.10:2376".to_owned())];
    let drill = scratch.drill_env(&scenario, &[], &env);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Provision);
    assert!(error.contains("the Docker engine at `tcp://192.0.2.10:2376` is not on this machine"), "{error}");
    assert!(error.contains("kind = \"local\"") && !error.contains("s3cret"), "{error}");
    assert!(drill.phase_summary(Phase::Teardown).contains("nothing to remove"), "{drill:?}");
}

/// PLUR dumped by PostgreSQL 18's own pg_dump (`fixtures/build`), with the checks that do not
/// read its graph (Apache AGE 1.8 finds a restored graph by the source's oid: see graphs).
fn pg18_scenario(scratch: &Scratch, target: &str) -> std::path::PathBuf {
    scratch.scenario(
        "pg18.toml",
        &format!(
            "[source]\npath = \"{{fixtures}}/plur-pg18.sql.gz\"\n[target]\ndatabase = \"plur_enterprise\"\n{target}\n\
             [restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n\
             [checks.extensions]\nvector = \"0.8.0\"\nage = \"1.5.0\"\n\
             [checks.row_counts]\nexpect_from_dump = true\n\
             [[checks.vector_recall]]\n"
        ),
    )
}

#[test]
fn a_postgresql_18_dump_restores_on_an_18_target_chosen_from_its_header_and_a_pinned_17_refuses_it() {
    let scratch = Scratch::new();
    let drill = scratch.drill(&pg18_scenario(&scratch, ""));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let target = drill.record().target.clone().expect("a target");
    assert_eq!(target.image, Some(pgdrill::scenario::project_image(18)), "{drill:?}");
    assert!(target.server_version.starts_with("18."), "{}", target.server_version);
    drill.assert_reports_and_no_leftovers();

    let pinned = scratch.drill(&pg18_scenario(&scratch, "version = 17"));
    pinned.assert_failed_cleanly();
    assert_eq!(pinned.phase(Phase::Preflight), PhaseStatus::Failed, "{pinned:?}");
    let error = pinned.phase_error(Phase::Preflight);
    assert!(
        error.contains("the dump comes from PostgreSQL 18.")
            && error.contains("newer than the target's PostgreSQL 17."),
        "{error}"
    );
}

/// A base backup of this machine's PostgreSQL 15 (Debian 12's, with its security updates: 15.20
/// when this was written), recovered on the image of PostgreSQL 15 (Debian 12's point release:
/// 15.18). A cluster initdb made with a newer minor release may have built-in functions the
/// image's fresh cluster lacks (15.20's `binary_upgrade_set_next_attribute_versions`): said,
/// and the drill passes.
#[test]
fn a_base_backup_of_a_newer_minor_release_recovers_on_the_image() {
    let scratch = Scratch::new();
    let bin = std::path::Path::new("/usr/lib/postgresql/15/bin");
    let work = scratch.path("host15");
    std::fs::create_dir_all(&work).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (data, backup) = (work.join("data"), work.join("backup"));
    let pg_ctl = |action: &str| {
        format!(
            "{}/pg_ctl -D {} -o '-k {} -c listen_addresses=' -w -l {}/log {action}",
            bin.display(),
            data.display(),
            work.display(),
            work.display()
        )
    };
    let script = format!(
        "set -e\n{bin}/initdb -D {data} -U postgres -A trust -k --no-sync >/dev/null\n{start} >/dev/null\n\
         {bin}/createdb -h {work} -U postgres app\n\
         {bin}/psql -q -h {work} -U postgres -d app -c 'CREATE TABLE items AS SELECT i FROM generate_series(1, 1000) i'\n\
         {bin}/pg_basebackup -h {work} -U postgres -D {backup} -F t -z -X stream -c fast\n{stop} >/dev/null\n",
        bin = bin.display(),
        data = data.display(),
        work = work.display(),
        backup = backup.display(),
        start = pg_ctl("start"),
        stop = pg_ctl("stop"),
    );
    // initdb refuses root: the script runs as Debian's postgres user where this runs as root.
    let is_root = rustix::process::geteuid().is_root();
    let mut command = if is_root {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", &script]);
        c
    } else {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    let made = command.output().expect("sh");
    assert!(made.status.success(), "making the base backup: {}", String::from_utf8_lossy(&made.stderr));
    let scenario = scratch.scenario(
        "host15.toml",
        &format!(
            "[source]\npath = \"{}\"\n[target]\ndatabase = \"app\"\n[[checks.sql]]\nname = \"items\"\nquery = \"SELECT count(*) FROM items\"\nexpect = \"1000\"\n",
            backup.display()
        ),
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let restore = drill.phase_summary(Phase::Restore);
    let catalog = drill.record().restore.as_ref().and_then(|r| r.catalog.clone()).expect("a catalog audit");
    eprintln!("built-ins the image's cluster lacks: {:?}", catalog.extra);
    for function in &catalog.extra {
        assert!(function.starts_with("function pg_catalog."), "{function}");
        assert!(restore.contains("as a cluster of a newer minor release does"), "{restore}");
    }
}
