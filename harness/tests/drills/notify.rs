//! `[notify]` end to end: the real binary drills PLUR's backup and tells a webhook that is a
//! real HTTP listener on 127.0.0.1 (reading the raw requests). One scratch folder, so one
//! history, for four drills in a row: a first pass (nothing said), a failure (said, with the
//! verdict, the failed check and the report), the pass after it (a recovery), and a pass whose
//! webhook is a closed port (a redacted warning; the exit code stays 0). The webhook's token
//! shows in no report, no history line, no console output and no body.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::util::{Drill, Scratch, files_under};

/// One request the webhook received: its request line and its body.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) line: String,
    pub(crate) body: Value,
}

/// A webhook on 127.0.0.1 that answers `200 ok` to every request and keeps them (the follower's
/// test, `follow.rs`, listens with it too).
pub(crate) struct Webhook {
    pub(crate) port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Webhook {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let keep = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(request) = read_request(stream) {
                    keep.lock().unwrap().push(request);
                }
            }
        });
        Webhook { port, received }
    }

    /// What was received since the last call.
    pub(crate) fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().unwrap())
    }
}

/// Reads one HTTP/1.1 request (headers, then `Content-Length` bytes of body) and answers it.
fn read_request(mut stream: TcpStream) -> Option<Received> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buffer).ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&buffer[..n]);
        if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while bytes.len() < head_end + length {
        let n = stream.read(&mut buffer).ok()?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buffer[..n]);
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    let body = serde_json::from_slice(&bytes[head_end..]).unwrap_or(Value::Null);
    Some(Received { line: head.lines().next().unwrap_or_default().to_owned(), body })
}

/// A scenario named `notify-plur` whose row count of `public.users` expects `users` (40 passes),
/// with more `[notify]` keys.
fn scenario(scratch: &Scratch, file: &str, users: u32, notify: &str) -> std::path::PathBuf {
    scratch.scenario(
        file,
        &format!(
            "name = \"notify-plur\"\n[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n[restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n\
             [checks.row_counts]\ntables = {{ \"public.users\" = {users} }}\n[notify]\non = \"failure\"\n{notify}"
        ),
    )
}

/// The token shows nowhere the drill wrote or printed.
fn assert_token_nowhere(token: &str, scratch: &Scratch, drill: &Drill) {
    assert!(!drill.stdout.contains(token) && !drill.stderr.contains(token), "the token was printed\n{drill:?}");
    for file in files_under(scratch.dir.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
        assert!(!text.contains(token), "the token is in {}", file.display());
    }
}

#[test]
fn a_failure_and_the_recovery_after_it_are_told_and_the_token_shows_nowhere() {
    let scratch = Scratch::new();
    let webhook = Webhook::start();
    let token = format!("T0KEN{}", "9f3ac1b2".repeat(4));
    let url = format!("http://127.0.0.1:{}/hooks/{token}", webhook.port);
    let env = [("PGDRILL_WEBHOOK_URL".to_owned(), url)];
    let passing = scenario(&scratch, "pass.toml", 40, "");
    let failing = scenario(&scratch, "fail.toml", 41, "");
    // The same scenario, naming its report by where a CI job publishes it.
    let published = scenario(
        &scratch,
        "published.toml",
        40,
        "report_url = \"{{env.PGDRILL_TEST_JOB_URL}}/artifacts/{{scenario}}/{{folder}}/report.md\"\n",
    );

    // A first pass, with no failure before it: no news.
    let first = scratch.drill_env(&passing, &[], &env);
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(webhook.take().is_empty(), "a pass with no failure before it is not told\n{first:?}");
    assert!(!first.stdout.contains("notified:"), "{first:?}");

    // A failure: told once, with its verdict, the check and where the report is.
    let failed = scratch.drill_env(&failing, &[], &env);
    assert_eq!(failed.code, Some(1), "{failed:?}");
    let received = webhook.take();
    assert_eq!(received.len(), 1, "{received:?}\n{failed:?}");
    let Received { line, body } = &received[0];
    assert_eq!(line, &format!("POST /hooks/{token} HTTP/1.1"));
    let p = &body["pgdrill"];
    assert_eq!((&p["verdict"], &p["kind"], &p["scenario"]), (&"fail".into(), &"failure".into(), &"notify-plur".into()));
    assert_eq!(p["failed_checks"], serde_json::json!(["row_counts/public.users"]), "{body}");
    let report = std::path::absolute(failed.out.join("report.md")).unwrap().display().to_string();
    assert_eq!(p["report"], report.as_str(), "{body}");
    assert_eq!(p["drill_id"], failed.record().drill_id.as_str());
    let text = body["text"].as_str().expect("a text for Slack, Mattermost and Teams");
    assert!(text.contains("did not pass (verdict FAIL)"), "{text}");
    assert!(text.contains("- `row_counts/public.users` fail: expected `41`, actual `40`"), "{text}");
    assert!(text.contains(&format!("report: {report}")), "{text}");
    assert_eq!(body["content"], body["text"], "Discord reads content");
    assert!(!body.to_string().contains(&token), "{body}");
    assert!(
        failed.stdout.contains(&format!("notified: http://127.0.0.1:{}/… (the failure)", webhook.port)),
        "{failed:?}"
    );

    // The pass after it: a recovery.
    // It also writes its metrics where node_exporter's textfile collector reads them.
    let textfile = scratch.path("textfile"); // made by pgdrill
    let job = ("PGDRILL_TEST_JOB_URL".to_owned(), "https://ci.example/jobs/7".to_owned());
    let recovered = scratch.drill_env(
        &published,
        &["--metrics-dir".into(), textfile.display().to_string()],
        &[env[0].clone(), job],
    );
    assert_eq!(recovered.code, Some(0), "{recovered:?}");
    let received = webhook.take();
    assert_eq!(received.len(), 1, "{received:?}\n{recovered:?}");
    let p = &received[0].body["pgdrill"];
    assert_eq!((&p["verdict"], &p["kind"]), (&"pass".into(), &"recovery".into()), "{p}");
    assert_eq!(p["failed_checks"], serde_json::json!([]));
    let folder = recovered.out.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(p["report"], format!("https://ci.example/jobs/7/artifacts/notify-plur/{folder}/report.md"));
    assert!(received[0].body["text"].as_str().unwrap().contains("passed again, after a failure"));
    let copied = std::fs::read_to_string(textfile.join("pgdrill-notify-plur.prom")).expect("the collector's copy");
    assert_eq!(copied, recovered.report("metrics.prom"));
    assert!(copied.contains("pgdrill_last_pass_timestamp_seconds{scenario=\"notify-plur\"} "), "{copied}");
    let names: Vec<_> = std::fs::read_dir(&textfile).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");

    // A webhook that cannot be reached: a warning, redacted, and the verdict and exit code stand.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let other_token = format!("0THER{}", "77e0d4a1".repeat(4));
    let unreachable = [("PGDRILL_WEBHOOK_URL".to_owned(), format!("http://127.0.0.1:{closed}/hooks/{other_token}"))];
    let warned = scratch.drill_env(&passing, &["--notify".into(), "always".into()], &unreachable);
    assert_eq!(warned.code, Some(0), "a notification that fails does not fail the drill\n{warned:?}");
    assert_eq!(warned.record().verdict, pgdrill::outcome::DrillVerdict::Pass);
    assert!(
        warned.stderr.contains(&format!("warning: cannot send the notification to http://127.0.0.1:{closed}/…: "))
            && warned.stderr.contains("(2 attempts) (the drill's verdict stands)"),
        "{warned:?}"
    );
    assert!(webhook.take().is_empty());

    for drill in [&first, &failed, &recovered, &warned] {
        assert_token_nowhere(&token, &scratch, drill);
        assert_token_nowhere(&other_token, &scratch, drill);
    }
    // The history names the scenario of each line, which is how the recovery was found.
    let history = std::fs::read_to_string(scratch.path("history.jsonl")).expect("the history");
    assert_eq!(history.lines().filter(|l| l.contains("\"scenario\":\"notify-plur\"")).count(), 4, "{history}");
}

#[test]
fn a_url_written_in_the_scenario_is_refused_without_being_repeated() {
    let scratch = Scratch::new();
    let path = scratch.scenario(
        "literal.toml",
        "[source]\npath = \"{fixtures}/plur.sql.gz\"\n[notify]\nurl = \"https://hooks.slack.com/services/T0/B0/L1TERALT0KENL1TERALT0KEN\"\n",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pgdrill")).arg("validate").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("carries the webhook's secret token") && stderr.contains("url_env"), "{stderr}");
    assert!(!stderr.contains("L1TERALT0KEN") && stderr.contains("url = *****"), "the snippet masks it: {stderr}");
}
