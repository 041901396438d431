//! The modes CI runs pgdrill in: tag selection, the release gate, the pre-migration safety check
//! (by a folder of numbered files and by a command), and the history an auditor follows from one
//! drill to the next, with the manifest that shows nothing was edited.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use pgdrill::Verdict;
use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::util::{Scratch, containers_of, root};

fn pgdrill(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(args).current_dir(root()).output().expect("run pgdrill")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The folders under `reports` that hold a drill of each scenario.
fn drilled(reports: &Path) -> BTreeSet<String> {
    std::fs::read_dir(reports)
        .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// `scenarios/NAME.toml`: the PLUR fixture with one row count that holds, carrying `tag`.
fn tagged_scenario(scratch: &Scratch, name: &str, tag: &str) {
    scratch.scenario(
        &format!("scenarios/{name}.toml"),
        &format!(
            "name = \"{name}\"\ntags = [\"{tag}\"]\n[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n\
             [restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n\
             [checks.row_counts.tables]\n\"public.schema_migrations\" = 10\n"
        ),
    );
}

#[test]
fn tags_select_the_scenarios_a_run_drills() {
    let scratch = Scratch::new();
    let folder = scratch.path("scenarios");
    std::fs::create_dir_all(&folder).expect("folder");
    tagged_scenario(&scratch, "quarterly-one", "quarterly");
    tagged_scenario(&scratch, "roles-one", "roles");
    let reports = scratch.path("reports");
    let folder_arg = folder.display().to_string();
    let reports_arg = reports.display().to_string();

    let run = pgdrill(&["run", &folder_arg, "--reports", &reports_arg, "--tag", "roles"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(drilled(&reports), BTreeSet::from(["roles-one".to_owned()]), "{}", text(&run));

    let none = pgdrill(&["run", &folder_arg, "--reports", &reports_arg, "--tag", "pre-migration"]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no scenario matched (tags: pre-migration)"),
        "{}",
        text(&none)
    );

    let typo = pgdrill(&["run", &folder_arg, "--reports", &reports_arg, "--only", "rlss"]);
    assert_eq!(typo.status.code(), Some(2), "{}", text(&typo));
    assert!(String::from_utf8_lossy(&typo.stderr).contains("`rlss` is not a check kind"), "{}", text(&typo));
    assert_eq!(drilled(&reports).len(), 1, "a refused run drills nothing");
}

/// `--shard K/N` splits what the tags select among N runners, in file order; a runner whose
/// shard is empty has nothing to do, which passes.
#[test]
fn shards_split_the_selected_scenarios() {
    let scratch = Scratch::new();
    let folder = scratch.path("scenarios");
    for (name, tag) in [("a", "quarterly"), ("b", "roles"), ("c", "quarterly"), ("d", "quarterly")] {
        tagged_scenario(&scratch, name, tag);
    }
    let folder_arg = folder.display().to_string();
    let shard = |k: &str, tag: &str| {
        let reports = scratch.path(&format!("reports-{tag}-{}", k.replace('/', "-")));
        let output =
            pgdrill(&["run", &folder_arg, "--reports", &reports.display().to_string(), "--tag", tag, "--shard", k]);
        (output, drilled(&reports))
    };
    let (one, first) = shard("1/2", "quarterly");
    assert_eq!(one.status.code(), Some(0), "{}", text(&one));
    assert_eq!(first, BTreeSet::from(["a".to_owned(), "d".to_owned()]), "{}", text(&one));
    let (two, second) = shard("2/2", "quarterly");
    assert_eq!(two.status.code(), Some(0), "{}", text(&two));
    assert_eq!(second, BTreeSet::from(["c".to_owned()]), "{}", text(&two));

    let (empty, none) = shard("2/3", "roles");
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty));
    assert!(none.is_empty(), "{none:?}");
    assert!(String::from_utf8_lossy(&empty.stdout).contains("shard 2/3 has none of the 1 selected scenario"));
    let (unmatched, _) = shard("1/2", "pre-migration");
    assert_eq!(unmatched.status.code(), Some(2), "no scenario at all is still an error: {}", text(&unmatched));
}

#[test]
fn the_release_gate_runs_only_the_role_rls_and_audit_checks() {
    let scratch = Scratch::new();
    let out = scratch.path("gate");
    let out_arg = out.display().to_string();
    let gate = pgdrill(&["gate", "scenarios/caracal.toml", "--out", &out_arg]);
    assert_eq!(gate.status.code(), Some(0), "{}", text(&gate));
    let record: pgdrill::outcome::DrillRecord =
        serde_json::from_str(&std::fs::read_to_string(out.join("drill.json")).expect("drill.json")).expect("record");
    let kinds: BTreeSet<&str> = record.checks.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, BTreeSet::from(["append_only", "rls", "roles"]), "{}", text(&gate));
    assert!(record.checks.iter().all(|c| c.verdict == Verdict::Pass));
    assert!(containers_of(&record.drill_id).is_empty());

    // A backup whose tenant isolation is off fails the gate on its RLS check.
    let broken = root().join("fixtures/backups/broken/caracal-rls-disabled.sql.gz").display().to_string();
    let out = scratch.path("gate-broken");
    let out_arg = out.display().to_string();
    let failed = pgdrill(&["gate", "scenarios/caracal.toml", "--backup", &broken, "--out", &out_arg]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("✘ rls/public.resources (rls.disabled): "), "{}", text(&failed));

    // A scenario with none of those checks is not part of the gate.
    let counts = scratch.scenario(
        "counts.toml",
        "[source]\npath = \"{fixtures}/plur.sql.gz\"\n[checks.row_counts]\nexpect_from_dump = true\n",
    );
    let counts =
        pgdrill(&["gate", &counts.display().to_string(), "--out", &scratch.path("none").display().to_string()]);
    assert_eq!(counts.status.code(), Some(2), "{}", text(&counts));
    assert!(String::from_utf8_lossy(&counts.stderr).contains("has no role, RLS or audit checks"), "{}", text(&counts));
    assert!(!scratch.path("none").exists(), "nothing was drilled");
}

/// The pre-migration example, drilled twice into one reports folder: the migrations are applied
/// and proven, and the second report compares itself with the first.
#[test]
fn pre_migration_drills_keep_a_history_and_a_manifest() {
    let scratch = Scratch::new();
    let reports = scratch.path("reports");
    let reports_arg = reports.display().to_string();
    let scenario = "scenarios/examples/plur-pre-migration.toml";
    let first = pgdrill(&["run", scenario, "--reports", &reports_arg]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let second = pgdrill(&["run", scenario, "--reports", &reports_arg]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));

    let folder = reports.join("plur-pre-migration");
    let mut runs: Vec<_> = std::fs::read_dir(&folder)
        .expect("scenario reports")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let record = |dir: &Path| -> pgdrill::outcome::DrillRecord {
        serde_json::from_str(&std::fs::read_to_string(dir.join("drill.json")).expect("drill.json")).expect("record")
    };
    let (one, two) = (record(&runs[0]), record(&runs[1]));

    // The migration: version before and after, the files applied, the new index proven.
    let migrate = two.migrate.as_ref().expect("migrate info");
    assert_eq!(migrate.version_before.as_deref(), Some("010"));
    assert_eq!(migrate.version_after.as_deref(), Some("012"));
    assert_eq!(migrate.applied, ["011-engram-pins.sql", "012-pinned-index.sql"]);
    assert_eq!(two.phase(Phase::Migrate).map(|p| p.status), Some(PhaseStatus::Passed));
    let markdown = std::fs::read_to_string(runs[1].join("report.md")).expect("report.md");
    assert!(markdown.contains("## Migration") && markdown.contains("went from version `010` to `012`"), "{markdown}");

    // History: both drills, and the second report's comparison with the first.
    let history = std::fs::read_to_string(folder.join("history.jsonl")).expect("history.jsonl");
    assert_eq!(history.lines().count(), 2, "{history}");
    assert!(markdown.contains("## Since the previous drill"), "{markdown}");
    assert!(markdown.contains(&format!("(`{}`) and passed", one.drill_id)), "{markdown}");
    let rows = markdown.lines().find(|l| l.starts_with("| Rows restored")).unwrap_or_default();
    assert!(rows.contains("1885") && rows.contains("same"), "{markdown}");
    let first_markdown = std::fs::read_to_string(runs[0].join("report.md")).expect("report.md");
    assert!(first_markdown.contains("This is the first drill of this scenario"), "{first_markdown}");
    for picture in ["timeline.svg", "recovery.svg", "backup-age.svg"] {
        let svg = std::fs::read_to_string(runs[1].join(picture)).expect(picture);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{picture}: {svg}");
        assert!(markdown.contains(&format!("]({picture})")), "{picture} is not shown: {markdown}");
    }

    // Evidence: who, where, which scenario file; a manifest that finds an edit.
    assert!(two.runner.pgdrill_version == env!("CARGO_PKG_VERSION") && !two.runner.host.is_empty());
    assert!(markdown.contains(&two.scenario.sha256[..12]), "{markdown}");
    let dir = runs[1].display().to_string();
    let verified = pgdrill(&["report", "verify", &dir]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    let sums =
        Command::new("sha256sum").args(["-c", "MANIFEST.sha256"]).current_dir(&runs[1]).output().expect("sha256sum");
    assert!(sums.status.success(), "sha256sum -c agrees: {}", text(&sums));
    std::fs::write(runs[1].join("report.md"), markdown.replace("PASS", "PASS (edited)")).expect("edit");
    let edited = pgdrill(&["report", "verify", &dir]);
    assert_eq!(edited.status.code(), Some(1), "{}", text(&edited));
    assert!(
        String::from_utf8_lossy(&edited.stderr).contains("`report.md` does not match the manifest"),
        "{}",
        text(&edited)
    );
}

/// The migrations a scenario applies, copied into a scratch folder with one more.
fn pending_with(scratch: &Scratch, extra: &str, sql: &str) -> std::path::PathBuf {
    let dir = scratch.path("migrations");
    std::fs::create_dir_all(&dir).expect("folder");
    for entry in std::fs::read_dir(root().join("fixtures/plur/pending-migrations")).expect("pending").flatten() {
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
    }
    std::fs::write(dir.join(extra), sql).expect("write migration");
    dir
}

#[test]
fn a_failing_migration_is_named_with_its_line_and_the_checks_do_not_run() {
    let scratch = Scratch::new();
    let dir = pending_with(
        &scratch,
        "013-broken.sql",
        "ALTER TABLE public.engrams\n  ADD COLUMN ok boolean;\nUPDATE public.engrams\n   SET pinned = no_such_column;\n",
    );
    let scenario = scratch.scenario(
        "pre-migration.toml",
        &format!(
            "[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n[restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n\
             [migrate]\ndir = \"{}\"\njournal = \"public.schema_migrations\"\n\
             record = \"INSERT INTO public.schema_migrations (version, name, applied_at) VALUES ({{{{version}}}}, {{{{name}}}}, now())\"\n\
             [checks.row_counts.tables]\n\"public.schema_migrations\" = 13\n",
            dir.display()
        ),
    );
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Migrate), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Migrate);
    assert!(
        error.contains("migration `013-broken.sql` failed at its line 4")
            && error.contains("column \"no_such_column\" does not exist"),
        "{error}"
    );
    assert_eq!(drill.phase(Phase::Checks), PhaseStatus::Skipped, "{drill:?}");
    assert!(drill.record().checks.iter().all(|c| c.verdict == Verdict::Skipped), "{drill:?}");
    assert_eq!(drill.record().verdict, DrillVerdict::Fail);
}

/// The migrations run by a command (here psql, as a team's own migrate script would), with the
/// restored database's address in its environment.
#[test]
fn migrations_run_by_a_command_are_reported_before_and_after() {
    let scratch = Scratch::new();
    let dir = pending_with(&scratch, "013-note.sql", "ALTER TABLE public.engrams ADD COLUMN note text;\n");
    let script = scratch.write(
        "migrate.sh",
        "set -eu\nfor f in \"$MIGRATIONS\"/*.sql; do\n  n=$(basename \"$f\" .sql); v=${n%%-*}\n\
         psql \"$DATABASE_URL\" -q -v ON_ERROR_STOP=1 -1 -f \"$f\" \\\n\
           -c \"INSERT INTO public.schema_migrations (version, name, applied_at) VALUES ('$v', '$n', now())\"\ndone\n",
    );
    let scenario = scratch.scenario(
        "pre-migration.toml",
        &format!(
            "[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n[restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n\
             [migrate]\ncommand = [\"sh\", \"{}\"]\njournal = \"public.schema_migrations\"\n\
             env = {{ DATABASE_URL = \"{{{{database_url}}}}\", MIGRATIONS = \"{}\" }}\n\
             [[checks.schema_version]]\ntable = \"public.schema_migrations\"\nexpected_from = \"{}\"\n",
            script.display(),
            dir.display(),
            dir.display()
        ),
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    drill.assert_reports_and_no_leftovers();
    let migrate = drill.record().migrate.clone().expect("migrate info");
    assert_eq!((migrate.version_before.as_deref(), migrate.version_after.as_deref()), (Some("010"), Some("013")));
    assert!(drill.phase_summary(Phase::Migrate).starts_with("010 → 013: applied sh "), "{drill:?}");
    assert!(!drill.all_reports().contains("postgres://"), "the database URL (with its password) is not reported");
}
