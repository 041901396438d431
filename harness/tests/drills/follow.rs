//! `pgdrill follow` on a live source (issue 67): a standby of its base backup replays each
//! segment the source archives within seconds and records it once in the ledger; killed with
//! SIGKILL, a follower started again on the same state goes on with nothing skipped or doubled;
//! a segment missing before a later one, and a segment that is not what its name says, are
//! named, and the follower waits before them until the archive is mended. Its signed receipts
//! of the ledger verify with `pgdrill verify` and OpenSSH alone, and a line edited after them is
//! named.
//!
//! The follower follows a folder the test uploads to, segment by segment, as an archiver would:
//! the source's own archive is where the segments come from. Its scenario's `[notify]` is a
//! webhook on 127.0.0.1: nothing is told while nothing is wrong, and each fault is told once
//! when it is found and once when it clears, never at each look; its token shows nowhere.
//!
//! Other archives are followed the same way, each by one short follower: an S3 prefix (moto on
//! loopback, behind a proxy the test switches off), and repositories and servers (`repositories`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::notify::{Received, Webhook};
use crate::physical::{PhysicalSource, copy_folder};
use crate::signed::{IDENTITY, NAMESPACE, keygen};
use crate::source_server::{SourceServer, wait_archived};
use crate::util::{Scratch, assert_pod_gone, pgdrill_bin};

mod repositories;
mod s3;
pub(crate) use repositories::{
    a_follower_of_a_barman_cloud_server, a_follower_of_a_barman_server, a_follower_of_a_pgbackrest_repository,
    a_follower_of_a_pgbackrest_repository_in_s3,
};

/// A follower running as its own process, its output in files; on a pod, the pod's name.
struct Follower {
    child: Child,
    out: PathBuf,
    pod: Option<String>,
}

impl Follower {
    /// `pgdrill follow`, its scenario's webhook at `hook`.
    fn start(scratch: &Scratch, scenario: &Path, state: &Path, name: &str, hook: &str) -> Follower {
        Follower::start_with(scratch, scenario, state, name, hook, &[])
    }

    /// [`Follower::start`] with more arguments.
    fn start_with(scratch: &Scratch, scenario: &Path, state: &Path, name: &str, hook: &str, more: &[&str]) -> Follower {
        let mut command = Command::new(pgdrill_bin());
        command
            .arg("follow")
            .arg(scenario)
            .args(["--receipt-every", "2s", "--signing-key"])
            .arg(scratch.path("signer"))
            .env("PGDRILL_TEST_FOLLOW_WEBHOOK", hook)
            .args(more);
        Follower::spawn(scratch, command, state, name)
    }

    /// `pgdrill follow SCENARIO` as `command` runs it (pgdrill, or `ci/pod/drill ... --`).
    fn spawn(scratch: &Scratch, mut command: Command, state: &Path, name: &str) -> Follower {
        let out = scratch.path(&format!("{name}.log"));
        let log = std::fs::File::create(&out).unwrap();
        let child = command
            .arg("--state")
            .arg(state)
            .args(["--gap-after", "3s", "--reports"])
            .arg(scratch.path("reports"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start pgdrill follow");
        Follower { child, out, pod: None }
    }

    fn said(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until a line of the follower's output holds each of `parts`.
    fn wait_line(&self, parts: &[&str]) {
        wait(
            &format!("a line with {parts:?} from the follower"),
            Duration::from_secs(60),
            || self.said().lines().any(|line| parts.iter().all(|p| line.contains(p))),
            || self.said(),
        );
    }

    /// Waits until the follower's output holds `text`.
    fn wait_said(&self, text: &str) {
        wait(
            &format!("`{text}` from the follower"),
            Duration::from_secs(60),
            || self.said().contains(text),
            || self.said(),
        );
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        match &self.pod {
            // Its pgdrill container killed, `ci/pod/drill` removes the pod.
            Some(pod) => drop(Command::new("docker").args(["kill", pod]).output()),
            None => drop(self.child.kill()),
        }
        let _ = self.child.wait();
    }
}

fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", context());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The segments the ledger records, in its order, after checking each line's place.
fn ledger_segments(state: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(state.join("ledger.jsonl")).unwrap_or_default();
    let mut segments = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(entry["seq"], index as u64 + 1, "{text}");
        if entry["kind"] == "segment" {
            segments.push(entry["segment"].as_str().unwrap().to_owned());
        }
    }
    segments
}

/// Writes a row, switches to a new segment and waits until the source archived the one closed.
fn advance(source: &PhysicalSource) -> String {
    let name = switch(&source.server);
    wait_archived(&source.archive(), &name);
    name
}

/// Writes a row and switches to a new segment; the name of the one closed.
fn switch(server: &SourceServer) -> String {
    let closed = server
        .psql("INSERT INTO public.ledger (id, batch) SELECT coalesce(max(id), 0) + 1, 'followed' FROM public.ledger; SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap();
    closed.lines().last().unwrap().trim().to_owned()
}

/// The messages the webhook received, once it has `count` since the last call, waited for
/// (sent from a task of their own), and what each said: `(kind, fault, text)`.
fn told(webhook: &Webhook, count: usize, follower: &Follower) -> Vec<(String, String, String)> {
    let mut received: Vec<Received> = Vec::new();
    wait(
        &format!("{count} messages to the webhook"),
        Duration::from_secs(30),
        || {
            received.extend(webhook.take());
            received.len() >= count
        },
        || follower.said(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    received.extend(webhook.take());
    received
        .iter()
        .map(|r| {
            let p = &r.body["pgdrill"];
            let text = r.body["text"].as_str().unwrap_or_default().to_owned();
            (
                p["kind"].as_str().unwrap_or_default().to_owned(),
                p["follower"]["fault"].as_str().unwrap_or_default().to_owned(),
                text,
            )
        })
        .collect()
}

/// Uploads the segments the source archived and `followed` does not hold yet, in order.
fn upload_new(source: &PhysicalSource, followed: &Path) {
    for segment in crate::physical::wal_segments(&source.archive()) {
        if !followed.join(&segment).exists() {
            upload(source, followed, &segment);
        }
    }
}

fn upload(source: &PhysicalSource, followed: &Path, segment: &str) {
    let partial = followed.join(format!(".{segment}.partial"));
    std::fs::copy(source.archive().join(segment), &partial).unwrap();
    std::fs::rename(partial, followed.join(segment)).unwrap();
}

#[test]
fn a_follower_records_each_segment_once_resumes_after_a_kill_and_names_a_gap_a_misnamed_and_a_damaged_segment() {
    let source = PhysicalSource::make();
    let scratch = Scratch::new();
    let followed = copy_folder(&scratch, &source.archive(), "followed");
    let scenario = scratch.scenario(
        "follow.toml",
        &format!(
            "name = \"books-follow\"\n[source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n[target]\ndatabase = \"books\"\n\n\
             [[checks.sql]]\nname = \"the rows written while followed\"\n\
             query = \"SELECT count(*) FROM public.ledger WHERE batch = 'followed'\"\nexpect = 3\n\n\
             [notify]\nurl_env = \"PGDRILL_TEST_FOLLOW_WEBHOOK\"\n",
            source.backup().display(),
            followed.display()
        ),
    );
    let state = scratch.path("state");
    // A signing key that cannot be used: the follower does not start (its receipts unsigned).
    let refused = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(["follow", "--signing-key", "/nonexistent/key", "--state"])
        .arg(&state)
        .arg(&scenario)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(said.contains("cannot read the signing key `/nonexistent/key` (--signing-key)"), "{said}");
    assert!(said.contains("the follower does not start"), "{said}");
    let (_, public, _) = keygen(scratch.dir.path(), "signer", "");
    let webhook = Webhook::start();
    let token = format!("T0KEN{}", "5e1f0a77".repeat(4));
    let hook = format!("http://127.0.0.1:{}/hooks/{token}", webhook.port);
    let first = Follower::start(&scratch, &scenario, &state, "first", &hook);
    let one = advance(&source);
    upload(&source, &followed, &one);
    first.wait_said(&format!("replayed {one}"));
    // Killed at once (no teardown, no report), a segment archived while it is down.
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let two = advance(&source);
    upload(&source, &followed, &two);
    let second = Follower::start(&scratch, &scenario, &state, "second", &hook);
    second.wait_said(&format!("replayed {two}"));
    let recorded = ledger_segments(&state);
    let mut unique = recorded.clone();
    unique.dedup();
    assert_eq!(recorded, unique, "a segment recorded twice");
    assert!(recorded.ends_with(&[one.clone(), two.clone()]), "{recorded:?}");
    // The restarted follower replayed the first run's segments again, each as recorded.
    assert!(!second.said().contains(&format!("replayed {one}")), "{}", second.said());
    // Nothing wrong, nothing told (`on = "failure"`).
    assert!(webhook.take().is_empty(), "told while nothing was wrong:\n{}", second.said());

    // A segment lost in the upload: the next one's arrival makes it a gap, named.
    let (three, four) = (advance(&source), advance(&source));
    upload(&source, &followed, &four);
    second.wait_said(&format!("FAULT gap: segment {three} is not in the archive"));
    let prom = std::fs::read_to_string(state.join("follow.prom")).unwrap();
    assert!(prom.contains("pgdrill_follow_fault{scenario=\"books-follow\",kind=\"gap\"} 1"), "{prom}");
    // Told once, naming the segment, though the follower looks again each second.
    std::thread::sleep(Duration::from_secs(3));
    let gap = told(&webhook, 1, &second);
    assert_eq!(gap.len(), 1, "{gap:?}");
    let (kind, fault, text) = &gap[0];
    assert_eq!((kind.as_str(), fault.as_str()), ("failure", "gap"), "{text}");
    assert!(text.starts_with("pgdrill: the follower of `books-follow` found a fault: gap\n"), "{text}");
    assert!(text.contains(&format!("gap: segment {three} is not in the archive")), "{text}");
    // Uploaded under the wrong name: refused by what its header holds; never replayed past.
    std::fs::copy(followed.join(&four), followed.join(&three)).unwrap();
    second.wait_said(&format!("FAULT refused: the WAL archive's segment {three} holds the WAL of segment {four}"));
    std::thread::sleep(Duration::from_secs(2));
    let recorded = ledger_segments(&state);
    assert!(!recorded.contains(&three) && !recorded.contains(&four), "{recorded:?}\n{}", second.said());
    // Mended: the follower goes on through both, and says the faults cleared.
    upload(&source, &followed, &three);
    second.wait_said(&format!("replayed {four}"));
    assert!(second.said().contains("cleared after"), "{}", second.said());
    assert!(ledger_segments(&state).ends_with(&[two, three, four.clone()]));
    // The refused segment found, then each fault cleared: one message each, in order.
    let mended = told(&webhook, 3, &second);
    let mut kinds: Vec<(&str, &str)> = mended.iter().map(|(k, f, _)| (k.as_str(), f.as_str())).collect();
    kinds.sort();
    assert_eq!(kinds, [("failure", "refused"), ("recovery", "gap"), ("recovery", "refused")], "{mended:?}");
    assert!(mended.iter().any(|(_, _, text)| text.contains("the gap fault cleared after")), "{mended:?}");

    // A drill of now, asked for by SIGUSR1: a copy of the follower at a paused point, promoted
    // and checked, with a report naming the point. Of the four rows written while followed, the
    // last commits after its segment's switch (`advance` runs both in one transaction), in a
    // segment not archived yet: the copy holds three.
    let usr1 = Command::new("kill").args(["-USR1", &second.child.id().to_string()]).status().unwrap();
    assert!(usr1.success());
    second.wait_said("a drill of now: the cluster copied at");
    second.wait_said("1 of 1 checks passed");
    let said = second.said();
    let copied = said.split("the cluster copied at ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap();
    assert!(said.contains(&format!("recovered the follower's copy to {copied} and promoted it")), "{said}");
    let reports = scratch.path("reports/books-follow");
    let report = || {
        std::fs::read_dir(&reports)
            .ok()?
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("drill.json")).ok())
            .find(|json| json.contains("copied at"))
    };
    wait("the drill of now's report", Duration::from_secs(30), || report().is_some(), || second.said());
    let of_now = report().unwrap();
    let record: serde_json::Value = serde_json::from_str(&of_now).unwrap();
    assert_eq!(record["verdict"], "pass", "{of_now}");
    assert!(record["backup"]["location"].as_str().unwrap().ends_with(&format!("copied at {copied}")), "{of_now}");
    // The fleet view shows the follower beside the drill of now: proving, its lag, its last
    // segment proven.
    let fleet = fleet_status(&scratch, &[&state], &[]);
    let database = &fleet["databases"][0];
    assert_eq!((&database["name"], &database["last_drill"]["verdict"]), (&"books-follow".into(), &"pass".into()));
    let follower = &database["followers"][0];
    assert_eq!(follower["status"], "proving", "{follower}");
    assert!(follower["proof_lag_seconds"].as_f64().is_some_and(|lag| lag < 120.0), "{follower}");
    assert_eq!(follower["last_segment"]["segment"], four.as_str(), "{follower}");
    // The evidence gate of the database, its follower among what it asks: proving, no gap.
    let (code, said) = audit(&scratch, &state, &[]);
    assert_eq!(code, Some(0), "{said}");

    // Stopped by a signal with no fault standing: the follower's report, and exit 0.
    let mut second = second;
    assert_eq!(stop(&mut second), Some(0), "{}", second.said());
    assert!(second.said().contains("followed the archive:"), "{}", second.said());
    // Stopped, its follow.prom ages: not following, its lag unknown; a state folder where no
    // follower ever wrote is not following either, never fine.
    std::thread::sleep(Duration::from_secs(2));
    let never = scratch.path("never-started");
    std::fs::create_dir_all(&never).unwrap();
    let fleet = fleet_status(&scratch, &[&state, &never], &["--follow-max-age", "1s"]);
    let follower = &fleet["databases"][0]["followers"][0];
    assert_eq!(
        (&follower["status"], &follower["proof_lag_seconds"]),
        (&"not following".into(), &serde_json::Value::Null)
    );
    assert!(follower["says"].as_str().unwrap().starts_with("its last look at the archive is "), "{follower}");
    let never = &fleet["databases"][1];
    assert_eq!((&never["name"], &never["followers"][0]["status"]), (&"never-started".into(), &"not following".into()));
    assert!(never["followers"][0]["says"].as_str().unwrap().starts_with("no follow.prom in `"), "{never}");
    assert_eq!((&fleet["counts"]["followers"], &fleet["counts"]["followers_proving"]), (&2.into(), &0.into()));
    // A follower that stopped is a gap of its database at the evidence gate.
    let (code, said) = audit(&scratch, &state, &["--follow-max-age", "1s"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("gap: `books-follow`: its follower `"), "{said}");
    assert!(said.contains("is not following: its last look at the archive is "), "{said}");
    let allowed = scratch.write("allowed_signers", format!("{IDENTITY} namespaces=\"{NAMESPACE}\" {public}\n"));
    let receipts = verify_receipts(&state, &allowed, true);
    assert!(receipts.contains("ok: receipt-000001-"), "{receipts}");

    // A marker the follower writes on the source (a restore point, then a WAL switch): while
    // its segment is not uploaded it is late, a fault; uploaded, it is confirmed from the WAL
    // replayed, recorded in the ledger with its latency, and the fault clears.
    let dsn = source.dsn();
    let marking = ["--marker-dsn", &dsn, "--marker-every", "1h", "--marker-after", "3s"];
    let third = Follower::start_with(&scratch, &scenario, &state, "third", &hook, &marking);
    third.wait_said("FAULT marker: `pgdrill-marker-");
    let said = third.said();
    let marker = said.split("marker `").nth(1).and_then(|s| s.split('`').next()).unwrap().to_owned();
    assert!(said.contains(&format!("marker `{marker}` written on the source at")), "{said}");
    // The segments through the marker's, and one more, archived by the source: uploaded.
    advance(&source);
    upload_new(&source, &followed);
    third.wait_said(&format!("marker `{marker}` replayed at"));
    third.wait_said("cleared after");
    let ledger = std::fs::read_to_string(state.join("ledger.jsonl")).unwrap();
    assert!(ledger.contains(&format!("\"kind\":\"marker\",\"name\":\"{marker}\"")), "{ledger}");

    // A new timeline: the source started again as a restore of its own archive (archive
    // recovery to the archive's end, then promoted) archives timeline 2's history and
    // segments; the follower goes on along it from where timeline 1 was left, and records it.
    let last_of_one = advance(&source);
    upload_new(&source, &followed);
    third.wait_said(&format!("replayed {last_of_one}"));
    source.exec(&[
        "sh",
        "-c",
        "echo \"restore_command = 'cp /archive/%f %p'\" >> \"$PGDATA/postgresql.auto.conf\" && touch \"$PGDATA/recovery.signal\"",
    ]);
    let restart = Command::new("docker").args(["restart", &source.server.name]).output().unwrap();
    assert!(restart.status.success(), "{}", String::from_utf8_lossy(&restart.stderr));
    wait(
        "the source promoted on timeline 2",
        Duration::from_secs(60),
        || source.psql("SELECT pg_is_in_recovery()").is_ok_and(|r| r.trim() == "f"),
        String::new,
    );
    let on_two = advance(&source);
    assert!(on_two.starts_with("00000002"), "{on_two}");
    upload(&source, &followed, "00000002.history");
    upload_new(&source, &followed);
    third.wait_said("following timeline 2 from");
    third.wait_said(&format!("replayed {on_two}"));
    let ledger = std::fs::read_to_string(state.join("ledger.jsonl")).unwrap();
    assert!(ledger.contains("\"kind\":\"timeline\",\"timeline\":2"), "{ledger}");
    // The late marker was told when found and when it cleared.
    let marked = told(&webhook, 2, &third);
    for kind in ["failure", "recovery"] {
        assert!(marked.iter().any(|(k, f, _)| k == kind && f == "marker"), "{marked:?}");
    }

    // A segment damaged after its header (its first record fails its checksum): replay cannot
    // go into it, and the follower says where, records nothing of it, and fails when stopped.
    let five = advance(&source);
    let mut bytes = std::fs::read(source.archive().join(&five)).unwrap();
    for byte in &mut bytes[60..120] {
        *byte ^= 0x5a;
    }
    std::fs::write(followed.join(&five), bytes).unwrap();
    third.wait_said("FAULT unreadable: replay stopped at");
    assert!(third.said().contains(&format!("in segment {five}")), "{}", third.said());
    let unreadable = told(&webhook, 1, &third);
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    assert!(unreadable[0].2.contains(&format!("in segment {five}")), "{unreadable:?}");
    let mut third = third;
    assert_eq!(stop(&mut third), Some(1), "{}", third.said());
    assert!(third.said().contains("the follower stopped with a fault standing: unreadable"), "{}", third.said());
    assert!(!ledger_segments(&state).contains(&five));
    // The receipt written as it stopped covers the marker, with its latency.
    let receipts: Vec<String> = std::fs::read_dir(state.join("receipts"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter(|text| text.contains(&marker))
        .collect();
    assert!(receipts.iter().any(|r| r.contains("latency_seconds")), "no receipt names {marker}");
    for (said, name) in [(first.said(), "first"), (second.said(), "second"), (third.said(), "third")] {
        assert!(!said.contains(&token), "the webhook's token in the {name} follower's output");
    }
    for file in crate::util::files_under(scratch.dir.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
        assert!(!text.contains(&token), "the webhook's token is in {}", file.display());
    }
    assert!(
        third.said().contains(&format!("notified: http://127.0.0.1:{}/… (the unreadable fault found)", webhook.port))
    );

    // The period report: the segments proven today, their proof lag, the receipts holding.
    let today = period(&scratch, &state, &allowed);
    let followed = &today["databases"][0]["followed"][0];
    let proven = ledger_segments(&state).len() as u64;
    assert_eq!(followed["segments"].as_u64(), Some(proven), "{today}");
    assert!(followed["proof_lag_max_seconds"].as_f64().is_some_and(|lag| lag < 120.0), "{today}");
    assert_eq!(followed["receipts_hold"], true, "{today}");

    // A ledger line edited after its receipt: named, with the receipt that covers it.
    let ledger = std::fs::read_to_string(state.join("ledger.jsonl")).unwrap();
    let edited = ledger.replacen("\"kind\":\"segment\"", "\"kind\":\"segment\",\"note\":\"fine\"", 1);
    std::fs::write(state.join("ledger.jsonl"), edited).unwrap();
    let caught = verify_receipts(&state, &allowed, false);
    assert!(caught.contains("were changed after receipt-000001-"), "{caught}");
    assert!(caught.contains("the chain breaks at line 3: it does not carry the sha256 of line 2"), "{caught}");
    let edited = period(&scratch, &state, &allowed);
    let exceptions = edited["databases"][0]["exceptions"].as_array().unwrap();
    let follower = exceptions.iter().find(|e| e["kind"] == "follower-evidence").expect("the receipts' exception");
    assert!(follower["what"].as_str().unwrap().contains("were changed after receipt-000001-"), "{follower}");
}

/// `pgdrill report period` of today's drills of `books-follow` with the follower's `state`, its
/// receipts verified against `allowed`: its period.json.
fn period(scratch: &Scratch, state: &Path, allowed: &Path) -> serde_json::Value {
    let inventory =
        scratch.write("period-inventory.toml", "[[database]]\nscenario = \"books-follow\"\ncadence = \"1d\"\n");
    let out = scratch.path("period");
    let today = time::OffsetDateTime::now_utc().date();
    let made = Command::new(pgdrill_bin())
        .args(["report", "period"])
        .arg(scratch.path("reports"))
        .arg("--inventory")
        .arg(inventory)
        .args(["--from", &today.previous_day().unwrap().to_string(), "--to", &today.to_string(), "--follow-state"])
        .arg(state)
        .arg("--allowed-signers")
        .arg(allowed)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&made.stdout), String::from_utf8_lossy(&made.stderr));
    assert!(made.status.success(), "{said}");
    serde_json::from_slice(&std::fs::read(out.join("period.json")).unwrap()).unwrap()
}

/// `pgdrill report audit` of the test's reports against an inventory of `books-follow` (its
/// evidence unsigned, a day its max age), with the follower's `state`: its exit code and output.
fn audit(scratch: &Scratch, state: &Path, args: &[&str]) -> (Option<i32>, String) {
    let inventory = scratch.write("inventory.toml", "[[database]]\nscenario = \"books-follow\"\n");
    let made = Command::new(pgdrill_bin())
        .args(["report", "audit"])
        .arg(scratch.path("reports"))
        .arg("--inventory")
        .arg(inventory)
        .args(["--unsigned-ok", "--max-age", "1d", "--follow-state"])
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    (made.status.code(), format!("{}{}", String::from_utf8_lossy(&made.stdout), String::from_utf8_lossy(&made.stderr)))
}

/// `pgdrill report fleet` of the test's reports and the followers' `states`, with `args`: its
/// `fleet-status.json`.
fn fleet_status(scratch: &Scratch, states: &[&Path], args: &[&str]) -> serde_json::Value {
    let out = scratch.path("fleet");
    let mut command = Command::new(pgdrill_bin());
    command.args(["report", "fleet"]).arg(scratch.path("reports")).arg("--out").arg(&out).args(args);
    for state in states {
        command.arg("--follow-state").arg(state);
    }
    let made = command.output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&made.stdout), String::from_utf8_lossy(&made.stderr));
    assert!(made.status.success(), "{said}");
    serde_json::from_slice(&std::fs::read(out.join("fleet-status.json")).unwrap()).unwrap()
}

/// `pgdrill verify` of the follower's receipts against `allowed` (passing or not, as `passes`
/// says), and, when it passes, `ssh-keygen -Y verify` of the last one; what pgdrill said.
fn verify_receipts(state: &Path, allowed: &Path, passes: bool) -> String {
    let folder = state.join("receipts");
    let verify = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .arg("verify")
        .arg(&folder)
        .args(["--identity", IDENTITY, "--allowed-signers"])
        .arg(allowed)
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
    assert_eq!(verify.status.success(), passes, "{said}");
    if passes {
        let mut names: Vec<String> =
            std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        let last = names.iter().rfind(|n| n.ends_with(".intoto.json")).expect("a receipt");
        let ssh = Command::new("ssh-keygen")
            .args(["-Y", "verify", "-f"])
            .arg(allowed)
            .args(["-I", IDENTITY, "-n", NAMESPACE, "-s"])
            .arg(folder.join(format!("{last}.sig")))
            .stdin(std::fs::File::open(folder.join(last)).unwrap())
            .output()
            .unwrap();
        assert!(ssh.status.success(), "ssh-keygen -Y verify {last}: {}", String::from_utf8_lossy(&ssh.stderr));
    }
    said
}

fn stop(follower: &mut Follower) -> Option<i32> {
    let term = Command::new("kill").args(["-TERM", &follower.child.id().to_string()]).status().unwrap();
    assert!(term.success());
    follower.child.wait().unwrap().code()
}

/// In the pod's shape under Docker (`ci/pod/drill`, as `pgdrill kube --follow` runs it): the
/// base backup restored onto the data volume and its standby started by the agent in the
/// server's container; a segment archived later is replayed and recorded, and `follow-status`
/// says the follower is ready; stopped as the kubelet stops a pod (SIGTERM to pgdrill's
/// container), it writes its report and exits 0, and nothing of the pod is left.
#[test]
fn a_follower_on_the_pod_records_a_new_segment_and_stops_cleanly_on_sigterm() {
    let source = PhysicalSource::make();
    let scratch = Scratch::new();
    let followed = copy_folder(&scratch, &source.archive(), "followed");
    let scenario = scratch.scenario(
        "follow.toml",
        &format!(
            "name = \"books-pod\"\n[source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n[target]\ndatabase = \"books\"\n",
            source.backup().display(),
            followed.display()
        ),
    );
    // pgdrill's container runs as the image's `postgres`: it reads the source's folders.
    let dir = source.server.dir.path().display().to_string();
    assert!(Command::new("chmod").args(["-R", "a+rX", &dir]).status().unwrap().success());
    let (mut command, pod) = scratch.pod_command(&[], &[format!("{dir}:{dir}:ro")]);
    command.arg("follow").arg(&scenario);
    let state = scratch.path("state");
    let mut follower = Follower::spawn(&scratch, command, &state, "pod");
    follower.pod = Some(pod.clone());
    follower.wait_said("following `");
    let one = advance(&source);
    upload(&source, &followed, &one);
    // The archiver's copy keeps the source's mode (its owner's alone): opened to the pod's user.
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    std::fs::set_permissions(followed.join(&one), mode).unwrap();
    follower.wait_said(&format!("replayed {one}"));
    assert!(ledger_segments(&state).ends_with(std::slice::from_ref(&one)), "{}", follower.said());
    let status = Command::new(pgdrill_bin()).args(["follow-status", "--state"]).arg(&state).output().unwrap();
    let line = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{line}");
    assert!(line.starts_with("ready: scenario books-pod: proof lag") && line.contains("no fault standing"), "{line}");

    let term = Command::new("docker").args(["kill", "--signal", "TERM", &pod]).output().unwrap();
    assert!(term.status.success(), "{}", String::from_utf8_lossy(&term.stderr));
    assert_eq!(follower.child.wait().unwrap().code(), Some(0), "{}", follower.said());
    assert!(follower.said().contains("followed the archive: "), "{}", follower.said());
    assert_pod_gone(&pod);
    let report = crate::util::files_under(&scratch.path("reports"))
        .into_iter()
        .find(|f| f.ends_with("drill.json"))
        .expect("the follower's report");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(record["target"]["kind"], "pod", "{record}");
}
