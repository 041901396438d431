//! The walking skeleton: the bundled PLUR fixture drills green, printing what the first-drill
//! guide shows, and each way a drill must fail fails where and how it should, with reports
//! written and no container left.

use pgdrill::Verdict;
use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::util::{Scratch, containers_labelled, fixture, fixture_text, gzip, root};

/// What a user sees of a drill, its times, sizes, numbers and identifiers aside: each run of
/// digits one `0`, each time one `T`, a container's or digest's hex one `H`, white space and
/// table rules one of each (a wider number moves the columns, not what they hold).
fn shape(text: &str) -> Vec<String> {
    let time = regex::Regex::new(r"\d+(?:\.\d+)?\s?(?:ms|s|min|h)\b").unwrap();
    let hex = regex::Regex::new(r"\b[0-9a-f]{12}\b").unwrap();
    let digits = regex::Regex::new(r"\d+").unwrap();
    let space = regex::Regex::new(r"[ \t]+").unwrap();
    let rule = regex::Regex::new(r"─+").unwrap();
    text.lines()
        .map(|line| {
            let line = hex.replace_all(&time.replace_all(line, "T"), "H").into_owned();
            let line = rule.replace_all(&digits.replace_all(&line, "0"), "─").into_owned();
            space.replace_all(&line, " ").trim_end().to_owned()
        })
        .collect()
}

/// The first-drill guide's transcript is what the bundled drill prints on 100 columns.
fn assert_the_guides_transcript(drill: &crate::util::Drill, scratch: &Scratch) {
    let guide = std::fs::read_to_string(root().join("docs/src/guide/first-drill.md")).unwrap();
    let start = guide.find("$ cargo run --locked -- run scenarios/plur.toml\n").expect("the guide's transcript");
    let transcript = &guide[start..];
    let transcript = &transcript[transcript.find('\n').unwrap() + 1..transcript.find("```").unwrap()];
    let printed = format!("{}{}", drill.stderr, drill.stdout)
        .replace(&drill.out.display().to_string(), "reports/plur/20261129T081644Z")
        .replace(&scratch.path("history.jsonl").display().to_string(), "reports/plur/history.jsonl");
    let (wanted, got) = (shape(transcript), shape(&printed));
    let differ = wanted.iter().zip(&got).position(|(a, b)| a != b).unwrap_or(wanted.len().min(got.len()));
    assert!(
        wanted == got,
        "docs/src/guide/first-drill.md's transcript differs from the drill's output at its line {}:\n  guide: {:?}\n  drill: {:?}\n\
         (print it again: COLUMNS=100 cargo run -- run scenarios/plur.toml)\n{printed}",
        differ + 1,
        wanted.get(differ),
        got.get(differ)
    );
}

#[test]
fn the_bundled_plur_drill_passes() {
    let scratch = Scratch::new();
    // The guide's paths are those of a default temporary folder (CI's is a tmpfs elsewhere).
    let env = [("COLUMNS".to_owned(), "100".to_owned()), ("TMPDIR".to_owned(), "/tmp".to_owned())];
    // As the README runs it: from the repository, the scenario named relative to it.
    let drill = scratch.drill_env(std::path::Path::new("scenarios/plur.toml"), &[], &env);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_the_guides_transcript(&drill, &scratch);
    drill.assert_reports_and_no_leftovers();
    let record = drill.record();
    assert_eq!(record.verdict, DrillVerdict::Pass);
    assert!(record.phase(Phase::Snapshot).is_none(), "a drill asked for no snapshot has no such phase");
    for phase in Phase::ALL.into_iter().filter(|p| *p != Phase::Snapshot) {
        // The bundled scenario applies no migrations and boots no application.
        let expected =
            if matches!(phase, Phase::App | Phase::Migrate) { PhaseStatus::Skipped } else { PhaseStatus::Passed };
        assert_eq!(drill.phase(phase), expected, "{phase}\n{drill:?}");
    }
    let backup = record.backup.as_ref().expect("backup identity");
    assert_eq!(backup.sha256.len(), 64);
    assert_eq!(backup.size_bytes, std::fs::metadata(fixture("plur.sql.gz")).unwrap().len());
    assert!(backup.source_version.as_deref().unwrap_or_default().starts_with("17."), "{backup:?}");
    assert!(backup.dumped_by.as_deref().unwrap_or_default().starts_with("pg_dump 17."), "{backup:?}");
    assert!(record.recovery.is_some());
    let ids: Vec<&str> = record.checks.iter().map(|c| c.id.as_str()).collect();
    for id in [
        "extensions/vector",
        "extensions/age",
        "schema_version/public.schema_migrations",
        "row_counts/every table in the dump",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert!(record.checks.iter().all(|c| c.verdict == Verdict::Pass));

    let junit = drill.report("junit.xml");
    assert!(junit.contains("<testsuite") && junit.contains("name=\"plur\""), "{junit}");
    assert!(
        junit.contains("name=\"phase restore\"") && junit.contains("name=\"row_counts/every table in the dump\""),
        "{junit}"
    );
    crate::junit_schema::assert_valid(&drill.out.join("junit.xml"));
    let markdown = drill.report("report.md");
    assert!(markdown.starts_with("# Restore drill `plur`: PASS"), "{markdown}");
    assert!(markdown.contains(&backup.sha256), "the report names the backup's sha256");
}

#[test]
fn a_truncated_gzip_fails_in_verify_and_stops_the_restore_reading_it() {
    let scratch = Scratch::new();
    let bytes = std::fs::read(fixture("plur.sql.gz")).unwrap();
    scratch.write("cut.sql.gz", &bytes[..bytes.len() / 2]);
    let scenario = scratch.scenario("cut.toml", "[source]\npath = \"cut.sql.gz\"\n");
    // Read once, the restore reads up to the cut: it stops there, and nothing of it is trusted.
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    assert!(drill.phase_error(Phase::Verify).contains("gzip archive is truncated"), "{drill:?}");
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{drill:?}");
    assert_eq!(drill.phase(Phase::Checks), PhaseStatus::Skipped, "{drill:?}");
    // Verified first, nothing after verify runs.
    let drill = scratch.drill_with(&scenario, &["--verify-first".to_owned()]);
    drill.assert_failed_cleanly();
    assert!(drill.phase_error(Phase::Verify).contains("gzip archive is truncated"), "{drill:?}");
    for later in [Phase::Preflight, Phase::Restore, Phase::Checks] {
        assert_eq!(drill.phase(later), PhaseStatus::Skipped, "{later}\n{drill:?}");
    }
}

#[test]
fn a_dump_needing_a_missing_extension_fails_in_preflight() {
    let scratch = Scratch::new();
    let text = fixture_text("plur.sql.gz").replacen(
        "CREATE EXTENSION IF NOT EXISTS vector",
        "CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;\nCREATE EXTENSION IF NOT EXISTS vector",
        1,
    );
    scratch.write("postgis.sql.gz", gzip(&text));
    let scenario = scratch
        .scenario("postgis.toml", "[source]\npath = \"postgis.sql.gz\"\n[[restore.roles]]\nname = \"plur_app\"\n");
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Preflight), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Preflight);
    assert!(error.contains("not available on the target") && error.contains("postgis"), "{error}");
    assert!(!error.contains("vector"), "only the missing extension is named: {error}");
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Skipped);
}

#[test]
fn a_wrong_schema_version_and_a_row_count_off_by_one_fail_with_expected_and_actual() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "wrong.toml",
        r#"
[source]
path = "{fixtures}/plur.sql.gz"
[[restore.roles]]
name = "plur_app"
[[checks.schema_version]]
expected = "011"
[checks.row_counts.tables]
"public.users" = 41
"public.orgs" = 3
"#,
    );
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    assert_eq!(drill.record().verdict, DrillVerdict::Fail);
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Passed, "{drill:?}");
    let check = |id: &str| {
        drill.record().checks.iter().find(|c| c.id == id).cloned().unwrap_or_else(|| panic!("{id}\n{drill:?}"))
    };

    let version = check("schema_version/public.schema_migrations");
    assert_eq!((version.verdict, version.expected.as_str(), version.actual.as_str()), (Verdict::Fail, "011", "010"));
    assert!(version.message.contains("is 010, expected 011"), "{}", version.message);

    let users = check("row_counts/public.users");
    assert_eq!((users.verdict, users.expected.as_str(), users.actual.as_str()), (Verdict::Fail, "41", "40"));
    assert!(users.message.contains("has 40 rows, expected 41 (1 fewer)"), "{}", users.message);

    assert_eq!(check("row_counts/public.orgs").verdict, Verdict::Pass, "the other checks still pass");
    let markdown = drill.report("report.md");
    assert!(markdown.starts_with("# Restore drill `wrong`: FAIL"), "{markdown}");
    assert!(drill.stdout.contains("FAIL"), "{drill:?}");
}

#[test]
fn a_sql_error_mid_dump_stops_the_restore_at_its_line() {
    let scratch = Scratch::new();
    let text = fixture_text("plur.sql.gz");
    // A statement that cannot run, inserted just before the users table is created.
    let anchor = "CREATE TABLE public.users (";
    let at = text.find(anchor).expect("anchor");
    let line = text[..at].matches('\n').count() + 1;
    let broken = format!("{}ALTER TABLE public.nowhere ADD COLUMN x int;\n{}", &text[..at], &text[at..]);
    scratch.write("broken.sql.gz", gzip(&broken));
    let scenario =
        scratch.scenario("broken.toml", "[source]\npath = \"broken.sql.gz\"\n[[restore.roles]]\nname = \"plur_app\"\n");
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains(&format!("dump line {line} (TABLE public.users)")), "line {line}: {error}");
    assert!(error.contains("42P01") && error.contains("relation \"public.nowhere\" does not exist"), "{error}");
    assert_eq!(drill.phase(Phase::Checks), PhaseStatus::Skipped);
}

#[test]
fn a_malformed_scenario_fails_with_file_line_and_column() {
    let scratch = Scratch::new();
    let scenario =
        scratch.scenario("typo.toml", "[source]\npath = \"{fixtures}/plur.sql.gz\"\n\n[target]\nimgae = \"x:1\"\n");
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(2), "{drill:?}");
    drill.assert_reports_and_no_leftovers();
    let location = format!("{}:5:1", scenario.display());
    assert!(drill.stderr.contains("unknown field `imgae`"), "{drill:?}");
    let error = drill.phase_error(Phase::Resolve);
    assert!(error.starts_with(&location) && error.contains("unknown field `imgae`"), "{error}");
    assert_eq!(drill.phase(Phase::Fetch), PhaseStatus::Skipped);
    assert!(drill.report("junit.xml").contains("phase resolve"));
}

#[test]
fn ctrl_c_removes_the_target_and_writes_reports_that_say_where_it_stopped() {
    let scratch = Scratch::new();
    let name = format!("interrupt-{}", std::process::id());
    let scenario = scratch.scenario(
        "interrupt.toml",
        &format!(
            "name = \"{name}\"\n[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n[[restore.roles]]\nname = \"plur_app\"\n"
        ),
    );
    let out = scratch.path("reports");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pgdrill");
    // Interrupt once the target container exists.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while containers_labelled("org.pgdrill.scenario", &name).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the target never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().expect("pgdrill ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(containers_labelled("org.pgdrill.scenario", &name).is_empty(), "the target was left running\n{stderr}");
    let record: pgdrill::outcome::DrillRecord =
        serde_json::from_str(&std::fs::read_to_string(out.join("drill.json")).expect("drill.json")).expect("record");
    assert_eq!(record.verdict, DrillVerdict::Interrupted, "{stderr}");
    assert!(record.failure.as_deref().unwrap_or_default().starts_with("interrupted during"), "{:?}", record.failure);
    assert!(record.phases.iter().any(|p| p.status == PhaseStatus::Interrupted), "{:?}", record.phases);
    assert_eq!(record.phase(Phase::Teardown).map(|p| p.status), Some(PhaseStatus::Passed));
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.starts_with(&format!("# Restore drill `{name}`: INTERRUPTED")), "{markdown}");
}

#[test]
fn a_shell_escape_in_a_dump_is_refused_before_anything_runs() {
    let scratch = Scratch::new();
    let text = fixture_text("plur.sql.gz");
    let at = text.find("CREATE TABLE public.users (").expect("anchor");
    let line = text[..at].matches('\n').count() + 1;
    let evil = format!("{}\\! touch /tmp/pgdrill-pwned\n{}", &text[..at], &text[at..]);
    scratch.write("evil.sql.gz", gzip(&evil));
    let scenario = scratch.scenario("evil.toml", "[source]\npath = \"evil.sql.gz\"\n");
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("dump line {line}: the meta-command `\\!` is refused")), "{error}");
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Skipped);
    assert!(!std::path::Path::new("/tmp/pgdrill-pwned").exists());
}
