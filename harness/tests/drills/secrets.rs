//! Secrets and isolation: drills that use every kind of secret pgdrill handles (S3 keys, an
//! HTTP bearer token, a basic-auth password and a presigned signature in a URL read from the
//! environment, a server's admin password read from a file, the app's environment and the values
//! it is sent), with debug logging on, and a grep of the console and of every file they wrote.
//! Also: the target and the app are reachable on loopback only, and each drill gets a fresh
//! random password.

use std::path::Path;

use pgdrill::Verdict;
use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::servers::{
    HTTP_PASSWORD, HTTP_TOKEN, HTTP_USER, HttpServer, PgServer, S3_ACCESS_KEY, S3_SECRET_KEY, S3Server,
};
use crate::util::{Drill, Scratch, fixture};

const APP_SECRET: &str = "pgdrill-app-secret-key-base-do-not-leak";
const API_TOKEN: &str = "pgdrill-app-api-token-do-not-leak";
const SIGNATURE: &str = "pgdrill-presigned-signature-do-not-leak";

/// Every file under `dir`, with its text.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
            ));
        }
    }
    out
}

/// Asserts that no secret appears in the console or in any file of the drill's report folder.
fn assert_no_secret(drill: &Drill, secrets: &[&str]) {
    let mut texts = vec![("stdout".to_owned(), drill.stdout.clone()), ("stderr".to_owned(), drill.stderr.clone())];
    texts.extend(files(&drill.out));
    assert!(texts.len() >= 5, "the console and at least junit.xml, report.md and drill.json: {texts:?}");
    // Passwords pgdrill makes up (the target's, the app role's) are not known here: no
    // statement setting one may show it.
    let set_password = regex::Regex::new(r"(?i)password\s+'[^*]").unwrap();
    for (place, text) in &texts {
        assert!(!set_password.is_match(text), "a password set by a statement leaked into {place}:\n{text}");
        for secret in secrets {
            assert!(!text.contains(secret), "`{secret}` leaked into {place}:\n{text}");
        }
    }
}

fn debug_log() -> (String, String) {
    ("PGDRILL_LOG".into(), "debug,sqlx=debug,reqwest=debug,hyper=debug".into())
}

/// An app that prints its secrets at start (as careless apps do) and serves on loopback.
fn app(bind: &str) -> String {
    format!(
        "[app]\ncommand = [\"sh\", \"-c\", \"echo booting with SECRET_KEY_BASE=$SECRET_KEY_BASE DATABASE_URL=$DATABASE_URL; exec python3 -m http.server $PORT --bind {bind}\"]\n\
         env = {{ SECRET_KEY_BASE = \"{{{{env.APP_SECRET_KEY_BASE}}}}\", DATABASE_URL = \"{{{{database_url}}}}\", PORT = \"{{{{app_port}}}}\" }}\n\
         ready = {{ path = \"/\", timeout = \"30s\" }}\n"
    )
}

#[test]
fn a_drill_with_a_url_password_a_signature_an_admin_password_and_app_secrets_leaks_none() {
    let http = HttpServer::start(std::fs::read(fixture("plur.sql.gz")).unwrap());
    let server = PgServer::start();
    let scratch = Scratch::new();
    let url =
        format!("http://{HTTP_USER}:{HTTP_PASSWORD}@{}/private/basic.sql.gz?X-Amz-Signature={SIGNATURE}", http.addr);
    scratch.write("admin-url", format!("{}\n", server.url("require")));
    let scenario = scratch.scenario(
        "secrets.toml",
        &format!(
            "[source]\nurl_env = \"BACKUP_URL\"\ntrusted = \"the test's own fixture\"\n[target]\nkind = \"server\"\nurl_file = \"admin-url\"\n\
             [[restore.roles]]\nname = \"plur_app\"\n[checks.row_counts]\nexpect_from_dump = true\n{}role = \"plur_app\"\n\
             [[app.requests]]\nname = \"authorized\"\npath = \"/\"\nheaders = {{ Authorization = \"Bearer {{{{env.APP_API_TOKEN}}}}\" }}\nexpect_status = 200\n\
             [[app.requests]]\nname = \"echoes the token\"\npath = \"/?token={{{{env.APP_API_TOKEN}}}}\"\nexpect_body_contains = \"{{{{env.APP_API_TOKEN}}}}\"\n",
            app("127.0.0.1")
        ),
    );
    let env = [
        ("BACKUP_URL".to_owned(), url),
        ("APP_SECRET_KEY_BASE".to_owned(), APP_SECRET.to_owned()),
        ("APP_API_TOKEN".to_owned(), API_TOKEN.to_owned()),
        debug_log(),
    ];
    let drill = scratch.drill_env(&scenario, &[], &env);
    // Everything ran: the download with its credentials, the restore, the app and its requests
    // (one fails on purpose, so that the secrets pass through the failure paths too).
    assert_eq!(http.hits.authorized.load(std::sync::atomic::Ordering::SeqCst), 1, "{drill:?}");
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Passed, "{drill:?}");
    let checks = &drill.record().checks;
    let verdict = |name: &str| checks.iter().find(|c| c.id.ends_with(name)).map(|c| c.verdict);
    assert_eq!(verdict("authorized"), Some(Verdict::Pass), "{drill:?}");
    assert_eq!(verdict("echoes the token"), Some(Verdict::Fail), "{drill:?}");
    assert!(drill.report("report.md").contains("booting with SECRET_KEY_BASE=***"), "the app's output is kept, masked");
    assert!(drill.stderr.contains("DEBUG"), "debug logging was on: {drill:?}");
    assert_no_secret(&drill, &[HTTP_PASSWORD, SIGNATURE, &server.password, APP_SECRET, API_TOKEN]);
}

#[test]
fn a_drill_with_s3_keys_and_one_with_a_bearer_token_leak_none() {
    let s3 = S3Server::start();
    let bytes = std::fs::read(fixture("plur.sql.gz")).unwrap();
    s3.put("backups", &[("plur.sql.gz", bytes.clone())]);
    let http = HttpServer::start(bytes);
    let scratch = Scratch::new();
    let checks = "[[restore.roles]]\nname = \"plur_app\"\n[checks.row_counts]\nexpect_from_dump = true\n";
    let s3_scenario = scratch.scenario(
        "s3.toml",
        &format!(
            "[source]\ns3 = \"s3://backups/plur.sql.gz\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
             access_key_env = \"BACKUP_KEY_ID\"\nsecret_key_env = \"BACKUP_SECRET\"\n{checks}",
            s3.endpoint
        ),
    );
    let env = [
        ("BACKUP_KEY_ID".to_owned(), S3_ACCESS_KEY.to_owned()),
        ("BACKUP_SECRET".to_owned(), S3_SECRET_KEY.to_owned()),
        debug_log(),
    ];
    let drill = scratch.drill_env(&s3_scenario, &[], &env);
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");
    assert_no_secret(&drill, &[S3_ACCESS_KEY, S3_SECRET_KEY]);

    scratch.write("token", format!("{HTTP_TOKEN}\n"));
    let bearer = scratch.scenario(
        "bearer.toml",
        &format!("[source]\nurl = \"{}\"\ntoken_file = \"token\"\n{checks}", http.url("/private/bearer.sql.gz")),
    );
    let drill = scratch.drill_env(&bearer, &[], &[debug_log()]);
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");
    assert_no_secret(&drill, &[HTTP_TOKEN]);

    // The wrong token: refused, and still not shown.
    scratch.write("wrong-token", "pgdrill-wrong-token-do-not-leak");
    let wrong = scratch.scenario(
        "wrong.toml",
        &format!("[source]\nurl = \"{}\"\ntoken_file = \"wrong-token\"\n", http.url("/private/bearer.sql.gz")),
    );
    let drill = scratch.drill_env(&wrong, &[], &[debug_log()]);
    drill.assert_failed_cleanly();
    assert!(drill.phase_error(Phase::Fetch).contains("401"), "{drill:?}");
    assert_no_secret(&drill, &["pgdrill-wrong-token-do-not-leak"]);

    // A secret the scenario reads from a variable that is not set: the variable is named.
    let unset = scratch.scenario("unset.toml", "[source]\nurl_env = \"PGDRILL_TEST_UNSET_URL\"\n");
    let drill = scratch.drill(&unset);
    drill.assert_failed_cleanly();
    assert!(
        drill.phase_error(Phase::Fetch).contains("the environment variable `PGDRILL_TEST_UNSET_URL` is not set"),
        "{drill:?}"
    );
}

#[test]
fn an_app_listening_beyond_loopback_fails_the_app_phase() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "exposed.toml",
        &format!(
            "[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n[[restore.roles]]\nname = \"plur_app\"\n{}",
            app("0.0.0.0")
        ),
    );
    let drill = scratch.drill_env(&scenario, &[], &[("APP_SECRET_KEY_BASE".into(), APP_SECRET.into())]);
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::App);
    assert!(error.contains("beyond loopback") && error.contains("bind it to 127.0.0.1"), "{drill:?}");
}
