//! The stress test: two dozen drills in a row (each kind below at least twice), a third of them
//! failing on purpose in different phases, then a search for anything left behind: containers,
//! processes, temporary files, and the throwaway databases and roles on the shared server.

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::servers::PgServer;
use crate::util::{Scratch, containers_labelled, fixture, fixture_text, gzip};

/// Every variant of the loop below comes round at least twice (the pattern repeats every 12, a
/// container every 10): more drills found nothing more, and took two minutes of CI each 25.
const DRILLS: usize = 24;

/// Processes whose environment holds `marker` (pgdrill's children inherit it).
fn processes_marked(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|b| *b == 0).any(|var| var == marker.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{}: {}", entry.file_name().to_string_lossy(), String::from_utf8_lossy(&cmdline)));
        }
    }
    found
}

#[test]
fn two_dozen_drills_in_a_row_some_failing_leave_nothing_behind() {
    let server = PgServer::start();
    let scratch = Scratch::new();
    let tmp = scratch.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let marker = format!("PGDRILL_STRESS={}", std::process::id());
    let env = vec![
        ("TMPDIR".to_owned(), tmp.display().to_string()),
        ("PGDRILL_STRESS".to_owned(), std::process::id().to_string()),
        ("ADMIN_URL".to_owned(), server.url("require")),
    ];

    let mut corrupt = std::fs::read(fixture("plur.sql.gz")).unwrap();
    let middle = corrupt.len() / 2;
    corrupt[middle..middle + 64].iter_mut().for_each(|b| *b = !*b);
    scratch.write("corrupt.sql.gz", corrupt);
    let text = fixture_text("plur.sql.gz");
    let at = text.find("CREATE TABLE public.users (").unwrap();
    scratch.write("broken.sql.gz", gzip(&format!("{}SELECT no_such_function();\n{}", &text[..at], &text[at..])));

    // The shared server is not a sandbox: its drills trust their backups (the test's own).
    let server_target = "trusted = \"the test's own fixtures\"\n[target]\nkind = \"server\"\nurl_env = \"ADMIN_URL\"\n";
    let roles = "[[restore.roles]]\nname = \"plur_app\"\n";
    let plur = fixture("plur.sql.gz").display().to_string();
    let mut names = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..DRILLS {
        let name = format!("stress-{}-{i}", std::process::id());
        // (scenario body, expected verdict, the phase that fails)
        let (body, expect, failing) = match i % 6 {
            // One in ten on a container of its own, the rest on the shared server.
            _ if i % 10 == 0 => (format!("[source]\npath = \"{plur}\"\n{roles}"), DrillVerdict::Pass, None),
            0 | 1 | 3 => (
                format!(
                    "[source]\npath = \"{plur}\"\n{server_target}{roles}[checks.row_counts]\nexpect_from_dump = true\n"
                ),
                DrillVerdict::Pass,
                None,
            ),
            2 => (
                format!(
                    "[source]\npath = \"{plur}\"\n{server_target}{roles}[checks.row_counts.tables]\n\"public.users\" = 1\n"
                ),
                DrillVerdict::Fail,
                Some(Phase::Checks),
            ),
            4 => (
                format!("[source]\npath = \"corrupt.sql.gz\"\n{server_target}{roles}"),
                DrillVerdict::Fail,
                Some(Phase::Verify),
            ),
            _ => match i % 12 {
                5 => (
                    format!("[source]\npath = \"broken.sql.gz\"\n{server_target}{roles}"),
                    DrillVerdict::Fail,
                    Some(Phase::Restore),
                ),
                _ => (
                    format!(
                        "[source]\npath = \"{plur}\"\n{server_target}{roles}\
                         [app]\ncommand = [\"sh\", \"-c\", \"sleep 300 & wait\"]\nready = {{ path = \"/\", timeout = \"1s\" }}\n"
                    ),
                    DrillVerdict::Fail,
                    Some(Phase::App),
                ),
            },
        };
        let scenario = scratch.scenario(&format!("{name}.toml"), &format!("name = \"{name}\"\n{body}"));
        let drill = scratch.drill_env(&scenario, &[], &env);
        assert_eq!(drill.record().verdict, expect, "drill {i}: {drill:?}");
        if let Some(phase) = failing {
            let first = drill.record().phases.iter().filter(|p| p.status == PhaseStatus::Failed).map(|p| p.phase).min();
            assert_eq!(first, Some(phase), "drill {i}: {drill:?}");
        }
        drill.assert_reports_and_no_leftovers();
        names.push(name);
    }
    println!("{DRILLS} drills in {:.0} s", started.elapsed().as_secs_f64());

    let containers: Vec<String> = names.iter().flat_map(|n| containers_labelled("org.pgdrill.scenario", n)).collect();
    assert!(containers.is_empty(), "containers left: {containers:?}");
    let processes = processes_marked(&marker);
    assert!(processes.is_empty(), "processes left: {processes:?}");
    let files: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(files.is_empty(), "temporary files left: {files:?}");
    let databases =
        server.psql("SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')");
    assert_eq!(databases.unwrap().trim(), "", "throwaway databases left on the server");
    let roles = server.psql("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres'");
    assert_eq!(roles.unwrap().trim(), "", "roles left on the server");
}
