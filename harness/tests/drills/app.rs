//! The app phase: the fixture app (a real HTTP service reading the restored database) is booted
//! against the restore and called; each way it can fail is caught, with its output in the
//! report, and no app process or container outlives a drill.

use pgdrill::Verdict;
use pgdrill::outcome::{Phase, PhaseStatus};

use crate::util::{Scratch, fixture_text, gzip, root};

/// Marks the app processes a test starts, to find any left behind.
fn marker() -> String {
    format!("pgdrill-app-test-{}-{}", std::process::id(), rand_id())
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Processes whose environment carries `marker`.
fn processes_marked(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(env) = std::fs::read(entry.path().join("environ"))
            && env.windows(marker.len()).any(|w| w == marker.as_bytes())
        {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

const LOGIN_ENV: &str = "POWERNODE_LOGIN_PASSWORD";

fn app_section(mark: &str, extra_env: &str, ready_timeout: &str, email: &str) -> String {
    format!(
        r#"
[app]
build = ["cargo", "build", "-q", "-p", "pgdrill-fixture-app"]
command = ["cargo", "run", "-q", "-p", "pgdrill-fixture-app"]
workdir = "{root}"
env = {{ DATABASE_URL = "{{{{database_url}}}}", PORT = "{{{{app_port}}}}", TEST_MARK = "{mark}"{extra_env} }}
role = "powernode_app"
ready = {{ path = "/api/v1/health", timeout = "{ready_timeout}" }}

[[app.requests]]
name = "login"
method = "POST"
path = "/api/v1/auth/login"
json = {{ email = "{email}", password = "{{{{env.{LOGIN_ENV}}}}}" }}
expect_status = 200
capture = {{ token = "/token" }}
"#,
        root = root().display()
    )
}

fn scenario(scratch: &Scratch, backup: &str, app: &str) -> std::path::PathBuf {
    scratch.scenario(
        "app.toml",
        &format!("[source]\npath = \"{backup}\"\n[[restore.roles]]\nname = \"powernode_app\"\n{app}"),
    )
}

fn env(password: &str) -> Vec<(String, String)> {
    vec![(LOGIN_ENV.to_owned(), password.to_owned())]
}

#[test]
fn the_powernode_scenario_boots_the_app_and_passes_its_api_checks() {
    let scratch = Scratch::new();
    let drill = scratch.drill_env(&root().join("scenarios/powernode.toml"), &[], &env("drill-login-password"));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let api: Vec<_> = drill.record().checks.iter().filter(|c| c.kind.as_str() == "api").collect();
    assert_eq!(api.len(), 3, "{drill:?}");
    assert!(api.iter().all(|c| c.verdict == Verdict::Pass));
    assert_eq!(drill.phase(Phase::App), PhaseStatus::Passed);
    let app = drill.record().app.as_ref().expect("the app is recorded");
    assert!(app.output_tail.iter().any(|l| l.contains("login of user 1")), "{:?}", app.output_tail);
    let reports = drill.all_reports();
    assert!(!reports.contains("drill-login-password"), "the login password is never written");
    let token = api.iter().find(|c| c.id == "api/login").unwrap();
    assert!(token.actual.contains("***"), "the captured token is redacted: {}", token.actual);
}

#[test]
fn health_fails_when_a_table_the_app_needs_is_missing() {
    let scratch = Scratch::new();
    let text = fixture_text("powernode.sql.gz").replace("public.schema_migrations", "public.schema_migrations_lost");
    let backup = scratch.write("lost.sql.gz", gzip(&text));
    let mark = marker();
    let scenario =
        scenario(&scratch, &backup.display().to_string(), &app_section(&mark, "", "10s", "admin@powernode.example"));
    let drill = scratch.drill_env(&scenario, &[], &env("drill-login-password"));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::App), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::App);
    assert!(error.contains("the app was not ready within 10s (it answered 503 Service Unavailable)"), "{error}");
    assert!(
        error.contains("relation \"public.schema_migrations\" does not exist"),
        "the app's output is shown: {error}"
    );
    assert!(drill.record().checks.iter().any(|c| c.id == "api/login" && c.verdict == Verdict::Skipped));
    assert!(processes_marked(&mark).is_empty(), "the app is gone");
}

#[test]
fn login_fails_with_a_wrong_password_and_with_a_missing_user() {
    let scratch = Scratch::new();
    let backup = root().join("fixtures/backups/powernode.sql.gz").display().to_string();
    for (email, password) in
        [("admin@powernode.example", "not-the-password"), ("nobody@powernode.example", "drill-login-password")]
    {
        let mark = marker();
        let scenario = scenario(&scratch, &backup, &app_section(&mark, "", "60s", email));
        let drill = scratch.drill_env(&scenario, &[], &env(password));
        drill.assert_failed_cleanly();
        let login = drill.record().checks.iter().find(|c| c.id == "api/login").cloned().expect("login ran");
        assert_eq!(login.verdict, Verdict::Fail, "{drill:?}");
        assert!(login.message.contains("status 401, expected 200"), "{}", login.message);
        assert!(login.actual.contains("invalid email or password"), "{}", login.actual);
        assert!(!drill.all_reports().contains(password), "the password is never written");
        assert!(processes_marked(&mark).is_empty(), "the app is gone");
    }
}

#[test]
fn an_app_that_never_becomes_ready_fails_within_its_time_limit_with_its_output() {
    let scratch = Scratch::new();
    let backup = root().join("fixtures/backups/powernode.sql.gz").display().to_string();
    let mark = marker();
    let scenario =
        scenario(&scratch, &backup, &app_section(&mark, ", APP_NEVER_READY = \"1\"", "3s", "admin@powernode.example"));
    let drill = scratch.drill_env(&scenario, &[], &env("drill-login-password"));
    drill.assert_failed_cleanly();
    let app = drill.record().phase(Phase::App).cloned().unwrap();
    assert_eq!(app.status, PhaseStatus::Failed);
    let error = app.error.unwrap_or_default();
    assert!(error.contains("the app was not ready within 3s"), "{error}");
    assert!(error.contains("this app never becomes ready"), "its output is in the report: {error}");
    assert!(drill.report("report.md").contains("never becomes ready"));
    assert!(processes_marked(&mark).is_empty(), "the app is gone");
}

#[test]
fn the_app_can_run_as_a_container() {
    // An image of the fixture app, built from the project's image (no registry needed).
    let scratch = Scratch::new();
    let build = std::process::Command::new("cargo")
        .args(["build", "-q", "-p", "pgdrill-fixture-app"])
        .current_dir(root())
        .status()
        .unwrap();
    assert!(build.success());
    let context = scratch.path("image");
    std::fs::create_dir(&context).unwrap();
    let target =
        std::env::var("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| root().join("target"));
    std::fs::copy(target.join("debug/fixture-app"), context.join("fixture-app")).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY fixture-app /usr/local/bin/fixture-app\nENTRYPOINT [\"/usr/local/bin/fixture-app\"]\nCMD []\n",
            pgdrill::scenario::default_image()
        ),
    )
    .unwrap();
    let tag = "pgdrill-fixture-app:test";
    let status = std::process::Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(&context)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "docker build of the app image");

    let backup = root().join("fixtures/backups/powernode.sql.gz").display().to_string();
    let app = format!(
        "[app]\nimage = \"{tag}\"\nenv = {{ DATABASE_URL = \"{{{{database_url}}}}\", PORT = \"{{{{app_port}}}}\" }}\nrole = \"powernode_app\"\nready = {{ path = \"/api/v1/health\", timeout = \"30s\" }}\n[[app.requests]]\nname = \"health\"\npath = \"/api/v1/health\"\nexpect_json = [{{ pointer = \"/users\", equals = 60 }}]\n"
    );
    let drill = scratch.drill(&scenario(&scratch, &backup, &app));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    drill.assert_reports_and_no_leftovers();
}
