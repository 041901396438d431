//! `pgdrill init BACKUP`: a scenario written from a backup passes `pgdrill run` on that backup
//! (every bundled fixture, every pg_dump format), and fails with the right check on the broken
//! variants that lost what the good backup has. Each system's test inits once and drills the
//! good backup and its broken variants with the scenario written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pgdrill::Verdict;
use pgdrill::report::{Phase, PhaseStatus};
use pgdrill::scenario::Scenario;
use rstest::rstest;

use crate::util::{Drill, Scratch, fixture, root};

/// Runs `pgdrill init` with `args` from the workspace root.
fn init(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .arg("init")
        .args(args)
        .current_dir(root())
        .output()
        .expect("run pgdrill")
}

fn shown(output: &Output) -> String {
    format!(
        "pgdrill init exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes the scenario of a bundled backup into `scenarios/` of the scratch folder (so its
/// source path leads out of it) and checks that it loads; returns its path and text.
fn write_scenario(scratch: &Scratch, backup: &str) -> (PathBuf, String) {
    let output = scratch.path(&format!("scenarios/{}.toml", backup.replace('.', "_")));
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let result = init(&[&fixture(backup).display().to_string(), "-o", &output.display().to_string()]);
    assert_eq!(result.status.code(), Some(0), "{}", shown(&result));
    assert!(String::from_utf8_lossy(&result.stdout).contains("scenario written to "), "{}", shown(&result));
    let text = std::fs::read_to_string(&output).expect("the scenario was written");
    let scenario = Scenario::load(&output).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let relative = pathdiff(&fixture(backup), output.parent().unwrap());
    assert!(text.contains(&format!("path = \"{relative}\"   # relative to this file")), "{relative}\n{text}");
    assert!(!scenario.checks.is_empty(), "{text}");
    // An editor with the scenario schema finds nothing to flag in it.
    let schema = Command::new("python3")
        .args(["-m", "check_jsonschema", "--schemafile"])
        .arg(root().join("schema/scenario.schema.json"))
        .arg(&output)
        .output()
        .expect("python3");
    assert!(schema.status.success(), "{}\n{text}", String::from_utf8_lossy(&schema.stdout));
    (output, text)
}

/// `path` relative to `from`, as the scenario writes it (both absolute, no links).
fn pathdiff(path: &Path, from: &Path) -> String {
    let path: Vec<_> = path.components().collect();
    let from: Vec<_> = from.components().collect();
    let common = path.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut out: Vec<String> = vec!["..".to_owned(); from.len() - common];
    out.extend(path[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    out.join("/")
}

/// The scenario passes on its own backup.
fn assert_passes(scratch: &Scratch, scenario: &Path, text: &str) -> Drill {
    let drill = scratch.drill(scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}\n--- scenario\n{text}");
    drill
}

/// The scenario, pointed at a broken variant (and its globals file), fails in the checks: the
/// check `id` fails with `message`.
fn assert_caught(scratch: &Scratch, scenario: &Path, broken: &str, globals: Option<&str>, id: &str, message: &str) {
    let mut args = vec!["--backup".to_owned(), fixture(&format!("broken/{broken}")).display().to_string()];
    if let Some(globals) = globals {
        args.extend(["--globals".to_owned(), fixture(&format!("broken/{globals}")).display().to_string()]);
    }
    let drill = scratch.drill_with(scenario, &args);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Checks), PhaseStatus::Failed, "{broken}\n{drill:?}");
    let failed: Vec<_> = drill.record().checks.iter().filter(|c| c.verdict == Verdict::Fail).collect();
    assert!(
        failed.iter().any(|c| c.id == id && c.message.contains(message)),
        "{broken}: expected {id} to fail with `{message}`, failed: {:#?}",
        failed.iter().map(|c| (&c.id, &c.message)).collect::<Vec<_>>()
    );
}

#[test]
fn caracal_round_trips_and_its_scenario_catches_rls_partitions_and_a_dirty_journal() {
    let scratch = Scratch::new();
    let (scenario, text) = write_scenario(&scratch, "caracal.sql.gz");
    // The globals file beside the backup makes its roles; the partition window holds today.
    let globals = pathdiff(&fixture("caracal.globals.sql"), scenario.parent().unwrap());
    assert!(text.contains(&format!("\nglobals = \"{globals}\"")), "{globals}\n{text}");
    assert!(!text.contains("[[restore.roles]]"), "{text}");
    assert!(text.contains("preset = \"golang-migrate\"\nexpected = \"42\""), "{text}");
    assert!(text.contains("table = \"public.audit_events\"\nmonths_back = "), "{text}");
    assert_passes(&scratch, &scenario, &text);
    let cases = [
        ("caracal-rls-disabled.sql.gz", "rls/public.resources", "row security on `public.resources` is disabled"),
        ("caracal-rls-not-forced.sql.gz", "rls/public.grants", "row security on `public.grants` is not forced"),
        ("caracal-partition-missing.sql.gz", "partitions/public.audit_events", "no partition for "),
        (
            "caracal-dirty-migration.sql.gz",
            "schema_version/public.schema_migrations: no failed migration",
            "records migration 42 as dirty",
        ),
    ];
    for (broken, id, message) in cases {
        assert_caught(&scratch, &scenario, broken, None, id, message);
    }
}

#[test]
fn controlplane_round_trips_stably_and_its_scenario_catches_a_leaky_policy() {
    let scratch = Scratch::new();
    let (scenario, text) = write_scenario(&scratch, "controlplane.sql.gz");
    // NOLOGIN in the globals file is the backup's: the auditor stays NOLOGIN.
    assert!(text.contains("role = \"cp_auditor\"\nusage = [\"public\"]\nlogin = false"), "{text}");
    // The same backup, the same text; an existing file is overwritten only with --force.
    let again = init(&[&fixture("controlplane.sql.gz").display().to_string(), "-o", &scenario.display().to_string()]);
    assert_eq!(again.status.code(), Some(2), "{}", shown(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists (hint: --force overwrites it)"),
        "{}",
        shown(&again)
    );
    let forced = init(&[
        &fixture("controlplane.sql.gz").display().to_string(),
        "-o",
        &scenario.display().to_string(),
        "--force",
    ]);
    assert_eq!(forced.status.code(), Some(0), "{}", shown(&forced));
    assert_eq!(std::fs::read_to_string(&scenario).unwrap(), text, "init twice wrote two texts");
    assert_passes(&scratch, &scenario, &text);
    assert_caught(
        &scratch,
        &scenario,
        "controlplane-leaky-policy.sql.gz",
        None,
        "rls/public.api_keys policy tenant_isolation",
        "is USING true",
    );
}

#[test]
fn paperclip_round_trips_and_its_scenario_catches_a_lost_schema_and_a_reset_sequence() {
    let scratch = Scratch::new();
    let (scenario, text) = write_scenario(&scratch, "paperclip.sql.gz");
    assert!(text.contains("preset = \"drizzle\""), "{text}");
    assert_passes(&scratch, &scenario, &text);
    assert_caught(
        &scratch,
        &scenario,
        "paperclip-plugin-schema-lost.sql.gz",
        None,
        "schemas/plugin_slack",
        "schema `plugin_slack` was not restored",
    );
    assert_caught(
        &scratch,
        &scenario,
        "paperclip-sequence-reset.sql.gz",
        None,
        "schemas/sequences ahead of their columns",
        "public.issues_id_seq",
    );
}

#[test]
fn plur_round_trips_and_its_scenario_catches_a_superuser_app_role_and_a_broken_graph() {
    let scratch = Scratch::new();
    let (scenario, text) = write_scenario(&scratch, "plur.sql.gz");
    assert!(text.contains("opclass = \"vector_cosine_ops\""), "{text}");
    assert!(text.contains("[[checks.graphs]]\ngraph = \"permission_graph\"\nvertices = {"), "{text}");
    assert_passes(&scratch, &scenario, &text);
    assert_caught(
        &scratch,
        &scenario,
        "plur-app-superuser.sql.gz",
        Some("plur-app-superuser.globals.sql"),
        "roles/plur_app attributes",
        "`plur_app` has SUPERUSER",
    );
    assert_caught(
        &scratch,
        &scenario,
        "plur-graph-broken.sql.gz",
        None,
        "graphs/permission_graph label counts",
        "MEMBER_OF: 0 edges (expected 12)",
    );
}

/// AGE 1.8 loses a restored graph (apache/age#2503): the graphs check fails on the backup's own
/// restore, so init writes it commented out with why, and the rest passes.
#[test]
fn plur_pg18_round_trips_with_the_graph_check_commented_out_saying_why() {
    let scratch = Scratch::new();
    let (scenario, text) = write_scenario(&scratch, "plur-pg18.sql.gz");
    assert!(text.contains("# Commented out: on the backup's own restore it did not pass:"), "{text}");
    assert!(text.contains("# [[checks.graphs]]"), "{text}");
    assert!(text.contains("apache/age#2503"), "{text}");
    // No globals file of its own: plur's is offered, commented, and plur_app is made for it.
    let globals = pathdiff(&fixture("plur.globals.sql"), scenario.parent().unwrap());
    assert!(text.contains(&format!("# globals = \"{globals}\"")), "{globals}\n{text}");
    assert!(text.contains("[[restore.roles]]\nname = \"plur_app\""), "{text}");
    assert_passes(&scratch, &scenario, &text);
}

#[test]
fn powernode_round_trips_and_its_scenario_catches_a_dropped_hnsw_index() {
    let scratch = Scratch::new();
    let (scenario, text) = write_scenario(&scratch, "powernode.sql.gz");
    assert!(text.contains("preset = \"rails\"\nexpected = \"20260518020000\""), "{text}");
    assert_passes(&scratch, &scenario, &text);
    assert_caught(
        &scratch,
        &scenario,
        "powernode-hnsw-index-dropped.sql.gz",
        None,
        "indexes/public.index_ai_knowledge_graph_nodes_on_embedding",
        "does not exist",
    );
}

/// Every format pg_dump writes: init reads each, and the scenario it writes passes.
#[rstest]
#[case::plain_gzip("prismeai.sql.gz")]
#[case::custom("prismeai.dump")]
#[case::directory("prismeai.dir")]
#[case::tar("prismeai.tar")]
#[case::pg15("prismeai-pg15.sql.gz")]
fn prismeai_round_trips_in_every_format(#[case] backup: &str) {
    let scratch = Scratch::new();
    let (scenario, text) = write_scenario(&scratch, backup);
    // node-pg-migrate's journal is no preset's: offered, commented.
    assert!(text.contains("# Named like a migration journal, read by no preset: public.pgmigrations."), "{text}");
    assert!(text.contains("database = \"prismeai"), "{text}");
    assert_passes(&scratch, &scenario, &text);
}

/// Input init cannot use: a clear error, exit 2, and no target started.
#[rstest]
#[case::not_a_backup(
    "random.bin",
    "is not a backup pgdrill reads: it is binary data that is neither a pg_dump archive nor SQL text"
)]
#[case::empty("empty.sql", "is not a backup pgdrill reads: it is empty")]
#[case::missing("nowhere.sql.gz", "backup `")]
#[case::a_plain_folder("folder", "a folder that is neither a directory-format archive (no toc.dat)")]
fn input_init_cannot_use_is_refused_before_anything_starts(#[case] name: &str, #[case] message: &str) {
    let scratch = Scratch::new();
    match name {
        "random.bin" => {
            scratch.write(name, (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>());
        }
        "empty.sql" => {
            scratch.write(name, "");
        }
        "folder" => {
            scratch.write("folder/readme.txt", "not a backup");
        }
        _ => {}
    }
    let output = scratch.path("out.toml");
    let result = init(&[&scratch.path(name).display().to_string(), "-o", &output.display().to_string()]);
    assert_eq!(result.status.code(), Some(2), "{}", shown(&result));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains(message), "{}", shown(&result));
    if name == "nowhere.sql.gz" {
        assert!(stderr.contains("does not exist"), "{}", shown(&result));
    }
    assert!(!output.exists(), "nothing is written");
    assert!(!String::from_utf8_lossy(&result.stdout).contains("provision"), "no drill started\n{}", shown(&result));
}

/// A pg_basebackup with its WAL archive: recovered instead of restored, its own database found,
/// row counts read from it (there is no dump), and the scenario passes.
#[test]
fn a_base_backup_with_its_wal_archive_round_trips() {
    let source = crate::physical::PhysicalSource::make();
    let scratch = Scratch::new();
    let output = scratch.path("base.toml");
    let result = init(&[
        &source.backup().display().to_string(),
        "--wal-archive",
        &source.archive().display().to_string(),
        "-o",
        &output.display().to_string(),
    ]);
    assert_eq!(result.status.code(), Some(0), "{}", shown(&result));
    let text = std::fs::read_to_string(&output).unwrap();
    Scenario::load(&output).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert!(text.contains("(base backup)"), "{text}");
    assert!(text.contains("wal_archive = \""), "{text}");
    assert!(text.contains("database = \"books\""), "{text}");
    let rows = source.before + source.after;
    assert!(text.contains("[checks.row_counts]\nallow_growth = true\n"), "{text}");
    assert!(text.contains(&format!("[checks.row_counts.tables]\n\"public.ledger\" = {rows}")), "{text}");
    assert_passes(&scratch, &output, &text);
}

/// A pgBackRest repository: its newest set recovered through the repository's archive, the
/// same way; the scenario names the repository and passes.
#[test]
fn a_pgbackrest_repository_round_trips() {
    let source = crate::pgbackrest::PgBackRestSource::make();
    let scratch = Scratch::new();
    let output = scratch.path("repo.toml");
    let result = init(&[&source.repo().display().to_string(), "-o", &output.display().to_string()]);
    assert_eq!(result.status.code(), Some(0), "{}", shown(&result));
    let text = std::fs::read_to_string(&output).unwrap();
    Scenario::load(&output).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert!(text.contains("(pgBackRest repository)"), "{text}");
    assert!(text.contains("database = \"books\""), "{text}");
    let rows = source.before + source.after;
    assert!(text.contains(&format!("\"public.ledger\" = {rows}")), "{text}");
    assert_passes(&scratch, &output, &text);
}
