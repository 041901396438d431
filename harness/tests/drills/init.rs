//! `pgdrill init BACKUP`: a scenario written from a backup passes `pgdrill run` on that backup
//! (every bundled fixture, every pg_dump format), and fails with the right check on the broken
//! variants that lost what the good backup has. Each system's test inits once and drills the
//! good backup and its broken variants with the scenario written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pgdrill::Verdict;
use pgdrill::outcome::{Phase, PhaseStatus};
use pgdrill::scenario::Scenario;
use rstest::rstest;

use crate::util::{Drill, Scratch, fixture, pg15_dump, root};

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
    write_scenario_of(scratch, &fixture(backup))
}

/// The same for a backup anywhere.
fn write_scenario_of(scratch: &Scratch, backup: &Path) -> (PathBuf, String) {
    let name = backup.file_name().unwrap().to_string_lossy().replace('.', "_");
    let output = scratch.path(&format!("scenarios/{name}.toml"));
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let result = init(&[&backup.display().to_string(), "-o", &output.display().to_string()]);
    assert_eq!(result.status.code(), Some(0), "{}", shown(&result));
    assert!(String::from_utf8_lossy(&result.stdout).contains("scenario written to "), "{}", shown(&result));
    let text = std::fs::read_to_string(&output).expect("the scenario was written");
    let scenario = Scenario::load(&output).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let relative = pathdiff(backup, output.parent().unwrap());
    assert!(text.contains(&format!("path = \"{relative}\"   # relative to this file")), "{relative}\n{text}");
    assert!(!scenario.kinds().is_empty(), "{text}");
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
    assert_caught_with(scratch, scenario, broken, &args, id, message);
}

fn assert_caught_with(scratch: &Scratch, scenario: &Path, broken: &str, args: &[String], id: &str, message: &str) {
    let drill = scratch.drill_with(scenario, args);
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
    // A dump that lost a partition's rows restores as it was dumped: the baseline init wrote
    // beside the scenario is what pins them.
    let baseline = std::fs::read_to_string(scenario.with_file_name("caracal_sql_gz.baseline.json")).unwrap();
    assert!(baseline.contains("\"public.audit_events_2026_06\": 150"), "{baseline}");
    let lost = without_rows(&scratch, "caracal.sql.gz", "public.audit_events_2026_06");
    let args = ["--backup".to_owned(), lost.display().to_string()];
    let message = "public.audit_events_2026_06 has 0 (baseline: 150)";
    assert_caught_with(
        &scratch,
        &scenario,
        "a partition's rows lost",
        &args,
        "row_counts/every table in the baseline",
        message,
    );
}

/// The bundled plain dump `backup` whose COPY block of `table` lost its rows, gzipped in the
/// scratch folder: a consistent dump of less data.
fn without_rows(scratch: &Scratch, backup: &str, table: &str) -> PathBuf {
    use std::io::{Read, Write};
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture(backup)).unwrap()).read_to_string(&mut text).unwrap();
    let start = text.find(&format!("COPY {table} (")).expect("the table's COPY block");
    let rows = start + text[start..].find('\n').unwrap() + 1;
    let end = rows + text[rows..].find("\\.\n").unwrap();
    assert!(end > rows, "the block has rows");
    text.replace_range(rows..end, "");
    let path = scratch.path(&format!("lost-{backup}"));
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
    path
}

#[test]
fn controlplane_round_trips_stably_and_its_scenario_catches_a_leaky_policy_and_an_update_granted_to_the_auditor() {
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
    // The auditor's privileges are written as the exact set: an UPDATE granted to it fails.
    assert!(text.contains("login = false\nexact = true"), "{text}");
    assert_caught(
        &scratch,
        &scenario,
        "controlplane-audit-update-granted.sql.gz",
        None,
        "roles/cp_auditor exact privileges",
        "UPDATE on public.audit_log (granted directly)",
    );
    // Globals that give the application's role a default tenant: its sessions start as that
    // tenant's, whether or not `fail_closed` could be proven. They also hold a membership as
    // PostgreSQL 16's pg_dumpall writes one its source's bootstrap superuser granted (`GRANTED BY
    // supabase_admin`), which here is an ordinary role that may not grant as it: applied all the
    // same (preflight failed on it).
    let mut globals = std::fs::read_to_string(fixture("controlplane.globals.sql")).unwrap().replace(
        "ALTER ROLE cp_app WITH ",
        "ALTER ROLE cp_app SET cp.tenant_id = '5f264e76-22a0-0cf1-f3e9-c36326aed1a8';\nALTER ROLE cp_app WITH ",
    );
    assert!(globals.contains("SET cp.tenant_id"));
    let membership = "CREATE ROLE cp_bootstrap;\nALTER ROLE cp_bootstrap WITH SUPERUSER NOLOGIN;\nCREATE ROLE cp_team;\n\
                      GRANT cp_team TO cp_bootstrap WITH INHERIT TRUE GRANTED BY cp_bootstrap;\n\\unrestrict ";
    globals = globals.replacen("\\unrestrict ", membership, 1);
    assert!(globals.contains("GRANTED BY cp_bootstrap"));
    let globals = scratch.write("default-tenant.globals.sql", &globals);
    let args = ["--globals".to_owned(), globals.display().to_string()];
    assert_caught_with(&scratch, &scenario, "a default tenant", &args, "sql/no default for cp.tenant_id", "cp_app");
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
    let baseline = std::fs::read_to_string(scenario.with_file_name("plur_sql_gz.baseline.json")).unwrap();
    assert!(baseline.contains("\"vector_cosine_ops\""), "{baseline}");
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
        "indexes/every index in the baseline",
        "missing: public.index_ai_knowledge_graph_nodes_on_embedding (hnsw on public.ai_knowledge_graph_nodes)",
    );
}

/// A small tenant database, as an application keeps one: `documents` under forced row security
/// keyed on `app.workspace_id` against a camel-case column, beside a policy that a bypass flag
/// opens; `audit_events` that `tenant_app` may only append to (INSERT-only grants, a trigger
/// refusing UPDATE and DELETE); a trigger that keeps a trail of `documents`; an `archive` schema
/// it reaches nothing in.
const TENANCY: &str = r#"
CREATE SCHEMA archive;

CREATE TABLE archive.old_events (
    id bigint NOT NULL,
    action text NOT NULL
);

CREATE FUNCTION public.audit_refuse() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

CREATE FUNCTION public.track_document() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RETURN NEW;
END;
$$;

CREATE TABLE public.documents (
    id bigint NOT NULL,
    "workspaceId" uuid NOT NULL,
    title text NOT NULL
);

CREATE TABLE public.audit_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    "workspaceId" uuid,
    action text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL
);

COPY public.documents (id, "workspaceId", title) FROM stdin;
1	11111111-1111-4111-8111-111111111111	alpha
2	22222222-2222-4222-8222-222222222222	beta
\.

COPY public.audit_events (id, "workspaceId", action, at) FROM stdin;
33333333-3333-4333-8333-333333333333	11111111-1111-4111-8111-111111111111	created	2026-01-01 00:00:00+00
\.

ALTER TABLE ONLY public.documents
    ADD CONSTRAINT documents_pkey PRIMARY KEY (id);

CREATE INDEX documents_workspace_idx ON public.documents USING btree ("workspaceId");

CREATE TRIGGER audit_events_immutable BEFORE DELETE OR UPDATE ON public.audit_events FOR EACH ROW EXECUTE FUNCTION public.audit_refuse();

CREATE TRIGGER documents_track AFTER INSERT OR UPDATE ON public.documents FOR EACH ROW EXECUTE FUNCTION public.track_document();

ALTER TABLE public.documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE ONLY public.documents FORCE ROW LEVEL SECURITY;

CREATE POLICY maintenance_bypass ON public.documents TO tenant_app USING ((current_setting('app.bypass_rls'::text, true) = 'on'::text));
CREATE POLICY workspace_isolation ON public.documents TO tenant_app USING (("workspaceId" = (NULLIF(current_setting('app.workspace_id'::text, true), ''::text))::uuid));

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.documents TO tenant_app;
GRANT SELECT,INSERT ON TABLE public.audit_events TO tenant_app;
"#;

/// init proposes, from the grants, the triggers and the policies, what the next backup must
/// keep: the tenant's fail-closed reads (the setting compared with the quoted column, not the
/// bypass flag), the policies exactly, the audit table append-only; and the scenario fails on
/// each copy that lost one.
#[test]
fn tenancy_round_trips_and_its_scenario_catches_a_permissive_policy_rls_off_dropped_triggers_and_grants_elsewhere_or_to_public()
 {
    let scratch = Scratch::new();
    let backup = scratch.write("backups/tenancy.sql", pg15_dump(TENANCY));
    let (scenario, text) = write_scenario_of(&scratch, &backup);
    assert!(text.contains("exact_policies = true"), "{text}");
    assert!(
        text.contains(
            r#"fail_closed = { role = "tenant_app", setting = "app.workspace_id", column = '"workspaceId"' }"#
        ),
        "{text}"
    );
    assert!(text.contains("`app.bypass_rls` is compared with a constant only"), "{text}");
    assert!(
        text.contains("[[checks.append_only]]\ntable = \"public.audit_events\"\nrole = \"tenant_app\"\n"),
        "{text}"
    );
    assert!(text.contains("triggers = [\"audit_events_immutable\"]"), "{text}");
    // The bypass flag opens the tenant's policy to any session that sets it: the fail-closed
    // proposal fails on its own restore for that (check::loophole) and is written commented out.
    for line in text.lines().filter(|l| l.contains("# Commented out")) {
        assert!(text.contains("app.bypass_rls"), "only the bypass flag is a reason to comment out: {line}\n{text}");
    }
    assert_passes(&scratch, &scenario, &text);
    // Every table's triggers, exactly: a trigger that keeps a trail (no guard) is one too.
    assert!(
        text.contains("[checks.triggers]\n\"public.audit_events\" = [\"audit_events_immutable\"]\n\"public.documents\" = [\"documents_track\"]\n"),
        "{text}"
    );
    let cases: [(&str, &str, &str, &str, &str); 5] = [
        (
            "permissive",
            "CREATE POLICY workspace_isolation",
            "CREATE POLICY open_all ON public.documents USING (true);\nCREATE POLICY workspace_isolation",
            "rls/public.documents no unlisted policy",
            "open_all (permissive, FOR ALL TO public, USING true)",
        ),
        (
            "rls-off",
            "ALTER TABLE public.documents ENABLE ROW LEVEL SECURITY;\nALTER TABLE ONLY public.documents FORCE ROW LEVEL SECURITY;",
            "",
            "rls/public.documents",
            "row security on `public.documents` is disabled",
        ),
        (
            "trigger-dropped",
            "CREATE TRIGGER audit_events_immutable",
            "-- CREATE TRIGGER audit_events_immutable",
            "append_only/public.audit_events immutability triggers",
            "audit_events_immutable is missing",
        ),
        (
            "tracking-dropped",
            "CREATE TRIGGER documents_track",
            "-- CREATE TRIGGER documents_track",
            "triggers/public.documents",
            "documents_track is missing",
        ),
        (
            "index-dropped",
            "CREATE INDEX documents_workspace_idx",
            "-- CREATE INDEX documents_workspace_idx",
            "indexes/every index in the baseline",
            "missing: public.documents_workspace_idx (btree on public.documents)",
        ),
    ];
    let mut cases = cases.to_vec();
    // UPDATE granted on the audit table passes every floor (and its trigger still refuses the
    // UPDATE): only the roles check's exact privileges catch it.
    assert!(text.contains("\nexact = true\nforbidden_schemas = [\"archive\"]\n[checks.roles.tables]"), "{text}");
    {
        cases.push((
            "update-granted",
            "GRANT SELECT,INSERT ON TABLE public.audit_events",
            "GRANT SELECT,INSERT,UPDATE ON TABLE public.audit_events",
            "roles/tenant_app exact privileges",
            "UPDATE on public.audit_events",
        ));
    }
    // A grant in a schema the role reached nothing in escapes `exact`, which looks only where the
    // role has USAGE or tables: the schemas it reached nothing in are forbidden.
    cases.push((
        "grant-elsewhere",
        "GRANT SELECT,INSERT ON TABLE public.audit_events TO tenant_app;",
        "GRANT SELECT,INSERT ON TABLE public.audit_events TO tenant_app;\nGRANT UPDATE ON TABLE archive.old_events TO tenant_app;",
        "roles/tenant_app other schemas",
        "reaches into archive.old_events",
    ));
    // A grant to PUBLIC is one to every role: what PUBLIC holds is checked exactly.
    cases.push((
        "public-grant",
        "GRANT SELECT,INSERT ON TABLE public.audit_events TO tenant_app;",
        "GRANT SELECT,INSERT ON TABLE public.audit_events TO tenant_app;\nGRANT SELECT ON TABLE public.documents TO PUBLIC;",
        "sql/privileges of PUBLIC",
        "returned (public.documents, SELECT), expected no rows",
    ));
    for (name, from, to, id, message) in cases {
        assert!(TENANCY.contains(from), "{name}");
        let broken = scratch.write(&format!("backups/tenancy-{name}.sql"), pg15_dump(&TENANCY.replace(from, to)));
        let args = ["--backup".to_owned(), broken.display().to_string()];
        assert_caught_with(&scratch, &scenario, name, &args, id, message);
    }
}

/// A dump whose header names an older PostgreSQL than its SQL needs: init's restore fails on
/// the header's major and suggests `--version` with the next one, with which it writes a
/// scenario pinning it.
#[test]
fn a_dump_needing_a_newer_major_than_its_header_says_is_inited_with_version() {
    let scratch = Scratch::new();
    let body = "CREATE TABLE public.events (id uuid DEFAULT uuidv7() NOT NULL, name text);\n";
    let backup = scratch.write("backups/newer.sql", pg15_dump(body));
    let output = scratch.path("newer.toml");
    let failed = init(&[&backup.display().to_string(), "-o", &output.display().to_string()]);
    assert_eq!(failed.status.code(), Some(1), "{}", shown(&failed));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("pgdrill init --version 18"), "{}", shown(&failed));
    let done = init(&[&backup.display().to_string(), "-o", &output.display().to_string(), "--version", "18"]);
    assert_eq!(done.status.code(), Some(0), "{}", shown(&done));
    let text = std::fs::read_to_string(&output).unwrap();
    assert!(text.contains("\nversion = 18 "), "{text}");
    Scenario::load(&output).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
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
    assert!(text.contains("[[checks.row_counts]]\nbaseline = true\nallow_growth = true\n"), "{text}");
    let baseline = std::fs::read_to_string(scratch.path("base.baseline.json")).unwrap();
    assert!(baseline.contains(&format!("\"public.ledger\": {rows}")), "{baseline}");
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
    let baseline = std::fs::read_to_string(scratch.path("repo.baseline.json")).unwrap();
    assert!(baseline.contains(&format!("\"public.ledger\": {rows}")), "{baseline}");
    assert_passes(&scratch, &output, &text);
}

/// A backup holding the journals of the runners pgdrill knows besides the bundled ones: init
/// proposes each one's preset with its newest migration (per Django app, per sqitch project),
/// and every proposed check passed on the backup's own restore (none is written commented out).
#[test]
fn init_proposes_the_preset_of_each_runners_journal() {
    let scratch = Scratch::new();
    let backup = scratch.write("journals.sql", crate::journals::JOURNALS);
    let output = scratch.path("journals.toml");
    let result = init(&[&backup.display().to_string(), "-o", &output.display().to_string()]);
    assert_eq!(result.status.code(), Some(0), "{}", shown(&result));
    let text = std::fs::read_to_string(&output).unwrap();
    Scenario::load(&output).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert!(!text.contains("# Commented out"), "{text}");
    for proposed in [
        "preset = \"dbmate\"\nexpected = \"20230201000000\"",
        "preset = \"prisma\"\nexpected = \"20230301000000_orders\"",
        "preset = \"django\"\napp = \"contenttypes\"\nexpected = \"0002_remove_content_type_name\"",
        "preset = \"django\"\napp = \"orders\"\nexpected = \"0002_refunds\"",
        "preset = \"alembic\"\nexpected = \"27c6a30d7c24\"",
        "preset = \"liquibase\"\nexpected = \"db/changelog/changes/010-views.sql::2::ann\"",
        "preset = \"knex\"\nexpected = \"20230201000000_orders.js\"",
        "preset = \"typeorm\"\nexpected = \"CreateOrders1690000000000\"",
        "preset = \"sequelize\"\nexpected = \"20230201000000-create-order.js\"",
        "preset = \"entity-framework\"\nexpected = \"20230301000000_AddOrders\"",
        "preset = \"atlas\"\nexpected = \"20230201000000\"",
        "preset = \"sqitch\"\nproject = \"billing\"\nexpected = \"invoices\"",
        "preset = \"sqitch\"\nproject = \"flipr\"\nexpected = \"orders\"",
    ] {
        assert!(text.contains(proposed), "{proposed}\n---\n{text}");
    }
    assert!(text.contains("with: `expected_from = \"path/to/alembic\"` in its place."), "{text}");
    assert!(text.contains("no migration is recorded as failed or rolled back, and not applied since"), "{text}");
    // The tables of `bad` are named like journals but are no preset's (each preset reads its own
    // schema's); Knex's lock table is its journal's.
    let others = text.split("read by no preset: ").nth(1).and_then(|t| t.split("If one is").next());
    let others = others.unwrap_or_else(|| panic!("{text}")).replace("\n# ", " ");
    for table in ["bad._prisma_migrations", "bad.django_migrations", "bad.knex_migrations,", "stems.schema_migrations"]
    {
        assert!(others.contains(table), "{table}: {others}");
    }
    assert!(!others.contains("public."), "{others}");

    // Every migration of a journal that keeps a row per migration is in the baseline beside
    // the scenario: a backup whose journal lost an older one (its newest unchanged) fails.
    assert!(text.contains("preset = \"dbmate\"\nexpected = \"20230201000000\"\nbaseline = true\n"), "{text}");
    let whole = "INSERT INTO public.schema_migrations VALUES ('20230101000000'), ('20230201000000');";
    assert!(crate::journals::JOURNALS.contains(whole));
    let holed =
        crate::journals::JOURNALS.replace(whole, "INSERT INTO public.schema_migrations VALUES ('20230201000000');");
    let holed = scratch.write("holed.sql", &holed);
    let drill = scratch.drill_with(&output, &["--backup".into(), holed.display().to_string()]);
    drill.assert_failed_cleanly();
    let failed: Vec<_> = drill.record().checks.iter().filter(|c| c.verdict == Verdict::Fail).collect();
    let [hole] = &failed[..] else { panic!("one check fails: {failed:#?}") };
    assert_eq!(hole.id, "schema_version/public.schema_migrations: every migration of the baseline", "{hole:?}");
    assert!(
        hole.message.contains("lacks 1 of the 2 migrations the baseline recorded: 20230101000000 (the runner applies"),
        "{hole:?}"
    );
}

/// `--like powernode` on another system's backup: the facts are the backup's own (its journal,
/// its counts), Powernode's queries are copied and proven on this restore (its password
/// digests' query fails here, so it is written commented out, saying why), and its `[app]`
/// comes commented out.
#[test]
fn init_like_a_seed_copies_its_other_checks_and_proves_them_on_this_backup() {
    let scratch = Scratch::new();
    let output = scratch.path("like.toml");
    let backup = fixture("caracal.sql.gz").display().to_string();
    let result = init(&[&backup, "--like", "powernode", "-o", &output.display().to_string()]);
    assert_eq!(result.status.code(), Some(0), "{}", shown(&result));
    let text = std::fs::read_to_string(&output).unwrap();
    Scenario::load(&output).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert!(text.contains("preset = \"golang-migrate\"\nexpected = \"42\""), "{text}");
    assert!(!text.contains("expected = \"20260518020000\""), "Powernode's journal is not copied: {text}");
    let copied =
        text.split_once("# From `powernode`, proven on this backup's restore like the rest:").map(|(_, copied)| copied);
    let copied = copied.unwrap_or_default();
    assert!(copied.contains("# Commented out: on the backup's own restore it did not pass:"), "{text}");
    assert!(copied.contains("# name = \"every password digest is bcrypt\""), "{text}");
    assert!(text.contains("# From `powernode`: the application booted on the restore."), "{text}");
    assert!(text.contains("\n# [app]\n"), "{text}");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.contains("[[checks.sql]]: sql/every password digest is bcrypt"), "{stdout}");
    let unknown = init(&[&backup, "--like", "nosuch", "-o", &scratch.path("x.toml").display().to_string()]);
    assert_eq!(unknown.status.code(), Some(2), "{}", shown(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("--like: `nosuch` is neither a scenario file nor a shipped scenario")
    );
}
