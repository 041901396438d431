//! Bad input: each kind gets one clear error naming what is wrong, in the phase that can tell,
//! a non-zero exit, all reports written and nothing left running. The docs' table of
//! bad input (docs/src/guide/bad-input.md) lists the same cases with these messages.

use pgdrill::Verdict;
use pgdrill::outcome::{Phase, PhaseStatus};
use rstest::rstest;

use crate::util::{Scratch, fixture, fixture_text, gzip};

/// A backup file for a case, from the PLUR fixture.
fn backup(case: &str) -> (&'static str, Vec<u8>) {
    match case {
        "empty" => ("empty.sql", Vec::new()),
        "random bytes" => {
            let mut state = 0x2545_f491_4f6c_dd1du64;
            let bytes = (0..64 * 1024)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            ("random.sql.gz", bytes)
        }
        "corrupt gzip" => {
            let mut bytes = std::fs::read(fixture("plur.sql.gz")).unwrap();
            let middle = bytes.len() / 2;
            for b in &mut bytes[middle..middle + 64] {
                *b = !*b;
            }
            ("corrupt.sql.gz", bytes)
        }
        "an HTML page" => (
            "plur.sql.gz",
            b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n".to_vec(),
        ),
        "a README" => (
            "plur.sql.gz",
            b"# pgdrill\n\nRestore drills for PostgreSQL; this README was renamed.\n\nRun it; see.\n".to_vec(),
        ),
        "COPY TO PROGRAM" => {
            let text = fixture_text("plur.sql.gz");
            let at = text.find("CREATE TABLE public.users (").unwrap();
            let text = format!("{}COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned';\n{}", &text[..at], &text[at..]);
            ("program.sql.gz", gzip(&text))
        }
        "OWNER TO a missing role" => {
            let text = fixture_text("plur.sql.gz");
            let text = text.replacen(
                "ALTER SCHEMA org_acme OWNER TO postgres;",
                "ALTER SCHEMA org_acme OWNER TO nobody_here;",
                1,
            );
            assert!(text.contains("nobody_here"), "the fixture has the schema org_acme");
            ("owner.sql.gz", gzip(&text))
        }
        other => panic!("no case {other}"),
    }
}

#[rstest]
#[case::empty("empty", Phase::Verify, "empty")]
#[case::random_bytes("random bytes", Phase::Verify, "is not a pg_dump backup")]
#[case::corrupt_gzip("corrupt gzip", Phase::Verify, "gzip")]
#[case::html_page("an HTML page", Phase::Verify, "HTML")]
#[case::a_readme("a README", Phase::Verify, "it is text, not SQL: line 1 begins `# pgdrill`")]
#[case::copy_to_program(
    "COPY TO PROGRAM",
    Phase::Verify,
    "`COPY ... PROGRAM` (it runs a shell command on the server) is refused"
)]
#[case::owner_to_a_missing_role("OWNER TO a missing role", Phase::Preflight, "nobody_here")]
fn a_bad_backup_fails_in_the_phase_that_can_tell(#[case] case: &str, #[case] phase: Phase, #[case] message: &str) {
    let scratch = Scratch::new();
    let (name, bytes) = backup(case);
    scratch.write(name, bytes);
    let scenario = scratch.scenario(
        "bad.toml",
        &format!("[source]\npath = \"{name}\"\n[[restore.roles]]\nname = \"plur_app\"\n[checks.row_counts]\nexpect_from_dump = true\n"),
    );
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(phase), PhaseStatus::Failed, "{case}: {drill:?}");
    let error = drill.phase_error(phase);
    assert!(error.contains(message), "{case}: expected `{message}` in: {error}");
    assert_eq!(drill.phase(Phase::Checks), PhaseStatus::Skipped, "{case}");
    assert!(
        drill.record().checks.iter().all(|c| c.verdict == Verdict::Skipped),
        "{case}: checks are listed as not run"
    );
    assert!(!std::path::Path::new("/tmp/pwned").exists(), "no command of a dump ever runs");
}

#[test]
fn a_check_whose_sql_errors_fails_the_drill_as_an_error() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "sql-error.toml",
        r#"
[source]
path = "{fixtures}/plur.sql.gz"
[[restore.roles]]
name = "plur_app"
[[checks.sql]]
name = "a typo in the query"
query = "SELECT count(*) FROM public.userz"
expect = 40
"#,
    );
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    let check = drill.record().checks.iter().find(|c| c.kind.as_str() == "sql").expect("the sql check").clone();
    assert_eq!(check.verdict, Verdict::Error, "{check:?}");
    assert!(check.message.contains("relation \"public.userz\" does not exist"), "{}", check.message);
}

#[rstest]
#[case::unknown_check_kind(
    "[source]\npath = \"b.sql\"\n[checks.row_count]\nexpect_from_dump = true\n",
    "unknown field `row_count`, expected one of `extensions`"
)]
#[case::a_misspelt_key(
    "[source]\npath = \"b.sql\"\n[checks.row_counts]\nexpect_from_dumpp = true\n",
    "did you mean `expect_from_dump`?"
)]
#[case::commit_in_a_sql_check(
    "[source]\npath = \"b.sql\"\n[[checks.sql]]\nname = \"c\"\nquery = \"COMMIT\"\nexpect = 1\n",
    "a sql check cannot run COMMIT: transaction control"
)]
#[case::malformed_baseline("baseline = \"base.json\"\n[source]\npath = \"b.sql\"\n", "base.json")]
fn a_bad_scenario_exits_2_before_anything_runs(#[case] text: &str, #[case] message: &str) {
    let scratch = Scratch::new();
    scratch.write("base.json", "{ \"schema\": \"pgdrill.baseline.v1\", oops }");
    let scenario = scratch.scenario("bad.toml", text);
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(2), "{drill:?}");
    assert!(drill.stderr.contains(message), "{drill:?}");
    assert!(drill.stderr.contains("bad.toml"), "the file is named: {drill:?}");
    let said = (drill.stderr.matches('×').count(), drill.stderr.contains("resolve failed"));
    assert_eq!(said, (1, false), "the error is said once, pointing into the file: {drill:?}");
}

/// A folder the reports cannot be written in is refused before anything runs (exit 2), not
/// found after the drill: here `--history` names a file under a regular file.
#[test]
fn an_unwritable_reports_folder_exits_2_before_the_drill() {
    let scratch = Scratch::new();
    let file = scratch.write("a-file", "not a folder");
    let scenario = scratch.scenario("plur.toml", "[source]\npath = \"{fixtures}/plur.sql.gz\"\n");
    let history = file.join("history.jsonl").display().to_string();
    let drill = scratch.drill_with(&scenario, &["--history".into(), history]);
    assert_eq!(drill.code, Some(2), "{drill:?}");
    let said = format!("error: cannot write the reports in `{}`", file.display());
    assert!(drill.stderr.contains(&said) && drill.stderr.contains("no drill runs"), "{drill:?}");
    assert!(drill.record.is_none() && !drill.stdout.contains("provision"), "nothing ran: {drill:?}");
}
