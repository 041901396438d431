//! The fleet page of six databases, one in each state, as a snapshot: a review sees every change
//! of the page, and the docs' picture of it is taken from this snapshot (`pictures.rs` in the
//! tests), so it shows the page as it is rendered now.

use std::time::Duration;

use time::OffsetDateTime;

use super::follower::{Bounds, Follower, Said};
use super::{Drill, Fleet, FleetOptions, Subject, state};
use crate::allowed_signers::AllowedSigners;
use crate::report::controls::{Content, Coverage};
use crate::report::fleet::Evidence;

const DAY: i64 = 86_400;
/// The page's "now": 2026-11-28 06:00 UTC.
const NOW: i64 = 1_795_845_600;

fn verified() -> Evidence {
    Evidence::Verified {
        principals: "drills@example.com".into(),
        key: "SHA256:Xq8JmAvHkL0cq0pJ2n8s6lW1Yz3v9rT4uE5iO7aB2cD".into(),
    }
}

/// A drill of `scenario` started `days` ago at 03:00, recovered in `minutes`.
fn drill(scenario: &str, days: i64, verdict: &str, evidence: Evidence, minutes: u64) -> Drill {
    let started = OffsetDateTime::from_unix_timestamp(NOW - days * DAY - 3 * 3600).expect("a time");
    let failed = verdict != "pass";
    Drill {
        scenario: scenario.into(),
        shown: format!("reports/{scenario}/{}/", started.date()),
        started_at: Some(started),
        verdict: verdict.into(),
        recovery: Some(Duration::from_secs(minutes * 60)),
        rto: Some(Duration::from_secs(3600)),
        rpo: Some(Duration::from_secs(DAY as u64)),
        failing: if failed {
            vec![("row_counts/public.entries".into(), "expected at least 1200000 rows, found 0".into())]
        } else {
            vec![]
        },
        failure: failed.then(|| "1 of 24 checks did not pass".to_owned()),
        evidence,
        coverage: Some(Coverage { passed: !failed, content: Content::Fingerprinted, objectives: true, audit: true }),
        backup: Some(format!("s3://backups/{scenario}/")),
        record: None,
        acks: vec![],
        ack_faults: vec![],
    }
}

fn subject(name: &str, drills: Vec<Drill>, max_age: Option<Duration>, options: &FleetOptions<'_>) -> Subject {
    let judged = state::judge(&drills, max_age, options);
    Subject {
        name: name.into(),
        listed: None,
        drills,
        state: judged.state,
        rule: judged.rule,
        age: judged.age,
        gaps: judged.gaps,
        followers: vec![],
        cadence: None,
    }
}

/// A follower of `scenario` that looked `age` seconds ago, its proof lag `lag`.
fn follower(scenario: &str, age: f64, lag: f64) -> Follower {
    Follower {
        state: format!("/var/lib/pgdrill/follow/{scenario}"),
        scenario: scenario.into(),
        said: Ok(Said { proof_lag: lag, look_age: age, faults: vec![], ledger_segments: 8_214 }),
        last: Some(("00000001000000A70000002E".into(), "2026-11-28T05:59:57Z".into(), "A7/2F000000".into())),
    }
}

/// Six databases, one in each state, judged as `report fleet` judges them.
pub(super) fn fleet() -> Fleet {
    let allowed = AllowedSigners::parse("").expect("no signers");
    let now = OffsetDateTime::from_unix_timestamp(NOW).expect("a time");
    let options = FleetOptions {
        allowed_signers: Some((&allowed, std::path::Path::new("allowed_signers"))),
        max_age: None,
        inventory: None,
        unsigned_ok: false,
        now,
        follow: None,
    };
    let week = Some(Duration::from_secs(7 * DAY as u64));
    let passes = |name: &str, days: &[i64]| -> Vec<Drill> {
        days.iter().zip([14, 17, 15, 19]).map(|(&d, m)| drill(name, d, "pass", verified(), m)).collect()
    };
    let mut ledger = passes("ledger", &[9, 8]);
    ledger.push(drill("ledger", 1, "fail", verified(), 21));
    let mut sessions = passes("sessions", &[3]);
    sessions.push(drill("sessions", 1, "pass", Evidence::Unsigned, 6));
    let mut search = passes("search", &[2]);
    for d in &mut search {
        d.rpo = None;
    }
    let mut subjects = vec![
        subject("ledger", ledger, week, &options),
        subject("billing", vec![drill("billing", 1, "fail", verified(), 48)], week, &options),
        subject("analytics", passes("analytics", &[30, 23]), week, &options),
        subject("search", search, None, &options),
        subject("sessions", sessions, week, &options),
        subject("orders", passes("orders", &[4, 3, 2, 1]), week, &options),
    ];
    // The ledger's follower stopped 25 minutes ago; the orders' proves its archive now.
    subjects[0].followers.push(follower("ledger", 1500.0, 3.1));
    subjects[5].followers.push(follower("orders", 0.6, 2.4));
    Fleet {
        subjects,
        inputs: vec!["s3://drill-reports/".into()],
        now,
        max_age: None,
        allowed_signers: Some("allowed_signers".into()),
        inventory: None,
        unsigned_ok: false,
        follow: Some(Bounds { max_lag: Duration::from_secs(120), max_age: Duration::from_secs(120) }),
    }
}

#[test]
fn fleet_html() {
    let fleet = fleet();
    let states: Vec<&str> = fleet.subjects.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["failing", "never verified", "stale", "no max age", "unsigned", "fresh"], "one of each");
    insta::assert_snapshot!(super::html::page(&fleet));
}

/// Beside its last drill, a followed database shows its follower's proof lag when it looked
/// recently, and a follower that stopped as not following, its lag unknown: never as fine.
#[test]
fn a_follower_shows_its_lag_and_a_stopped_one_is_not_following() {
    let fleet = fleet();
    let page = super::html::page(&fleet);
    let text = text_of(&page);
    assert!(text.contains("1 of 2followers proving"), "{text}");
    assert!(text.contains("proving 2.4 sproof lag 2.4 s, within 2m"), "{text}");
    assert!(text.contains("not following unknownits last look at the archive is 25m old, over 2m"), "{text}");
    let status: serde_json::Value = serde_json::from_str(&super::status::json(&fleet)).unwrap();
    let ledger = &status["databases"][0]["followers"][0];
    assert_eq!((&ledger["status"], &ledger["proof_lag_seconds"]), (&"not following".into(), &serde_json::Value::Null));
    let orders = &status["databases"][5]["followers"][0];
    assert_eq!((&orders["status"], &orders["proof_lag_seconds"]), (&"proving".into(), &2.4.into()));
    assert_eq!(orders["last_segment"]["segment"], "00000001000000A70000002E");
    assert_eq!(status["databases"][1]["followers"], serde_json::json!([]));
    assert_eq!((&status["counts"]["followers"], &status["counts"]["followers_proving"]), (&2.into(), &1.into()));
    assert_eq!(status["follow"], serde_json::json!({"max_lag_seconds": 120, "max_age_seconds": 120}));
}

/// The page's text: what it shows, its markup and styles aside.
fn text_of(page: &str) -> String {
    let body = page.split("</style>").nth(1).expect("a style");
    regex::Regex::new("<[^>]*>").expect("a pattern").replace_all(body, "").into_owned()
}

/// Text written for report.md (an inventory entry, an evidence's signer or finding, a check's
/// message, a failure) shows its code spans as code: no Markdown backtick in the page's text.
#[test]
fn no_markdown_backtick_shows_in_the_page() {
    let mut fleet = fleet();
    fleet.inventory = Some("inventory.toml".into());
    for (i, s) in fleet.subjects.iter_mut().enumerate() {
        s.listed = Some((super::By::Scenario(s.name.clone()).describe(), format!("inventory.toml:{i}")));
    }
    let ledger = fleet.subjects[0].drills.last_mut().expect("a drill");
    ledger.failing[0].1 = "`auditor` logged in, and cannot SET ROLE `app`".into();
    ledger.evidence = Evidence::DoesNotVerify { findings: vec!["`drill.json` does not match the manifest".into()] };
    let billing = &mut fleet.subjects[1];
    (billing.drills[0].failing, billing.drills[0].failure) = (vec![], Some("`pg_restore` failed".into()));
    billing.gaps[0] = super::Gap::Failed { folder: "reports/billing/".into(), why: "`pg_restore` exited".into() };
    let page = super::html::page(&fleet);
    let text = text_of(&page);
    assert!(!text.contains('`'), "a backtick in the page's text:\n{text}");
    for code in [
        "auditor</code> logged",
        "drill.json</code> does",
        "pg_restore</code> failed",
        "pg_restore</code> exited",
        "signed by <code>drills@",
        "by scenario <code>ledger</code> (inventory",
    ] {
        assert!(page.contains(code), "no `{code}` in the page:\n{page}");
    }
}

/// Names, folders, paths and messages taken from drill records and the inventory are text: a
/// hostile backup's markup, quotes and ampersands come out escaped, in the page and its charts.
#[test]
fn hostile_text_from_drill_records_is_escaped() {
    const HOSTILE: &str = r#"<script>alert("x")</script> & 'q' <img src=x onerror=alert(1)>"#;
    let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'q' &lt;img src=x onerror=alert(1)&gt;";
    let mut fleet = fleet();
    (fleet.inventory, fleet.allowed_signers) = (Some(HOSTILE.into()), Some(HOSTILE.into()));
    fleet.inputs.push(HOSTILE.into());
    for s in &mut fleet.subjects {
        s.name = HOSTILE.into();
        s.listed = Some((super::By::Scenario(HOSTILE.into()).describe(), HOSTILE.into()));
        for d in &mut s.drills {
            (d.shown, d.backup, d.failure) = (HOSTILE.into(), Some(HOSTILE.into()), Some(HOSTILE.into()));
            d.failing = vec![(HOSTILE.into(), HOSTILE.into())];
            d.evidence = Evidence::Verified { principals: HOSTILE.into(), key: HOSTILE.into() };
        }
        for f in &mut s.followers {
            (f.state, f.said) = (HOSTILE.into(), Err(HOSTILE.into()));
            f.last = Some((HOSTILE.into(), HOSTILE.into(), HOSTILE.into()));
        }
    }
    let page = super::html::page(&fleet);
    for markup in ["<script", "<img", "onerror=alert(1)>", "alert(\"x\")"] {
        assert!(!page.contains(markup), "`{markup}` is markup in the page:\n{page}");
    }
    // Each name is whole and escaped wherever it is shown: in text, code spans and the charts.
    assert_eq!(page.matches("script").count(), 2 * page.matches(escaped).count(), "{page}");
    assert!(page.matches(escaped).count() > 10 * fleet.subjects.len(), "{page}");
    assert!(page.contains(&format!("<code>{escaped}</code>")) && page.contains(&format!("“{escaped}”")), "{page}");
}
