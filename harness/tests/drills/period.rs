//! `report period` over real signed drills (the fleet gate's shared pair, `fleet_gate`): a
//! database that passed, one whose drill failed and was acknowledged (signed), one listed with
//! no drill (its window missed), one with no cadence, and one whose drill restored an older
//! backup sampled from a window (`--sample`). period.json counts each, the exception
//! is resolved by the acknowledgement only against allowed signers, period.html prints in
//! headless Chromium, the OSCAL Assessment Results validate with compliance-trestle
//! (`ci/oscal/validate-assessment-results`), the drills' test-result predicates validate with
//! in-toto's library, and the report is signed as a fleet summary is and verifies.

use std::path::Path;
use std::process::Command;

use crate::browser;
use crate::fleet_gate::{material, pgdrill, text};
use crate::signed::keygen;
use crate::util::{Scratch, pg15_dump, root};

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn run_tool(tool: &str, files: &[&Path]) -> std::process::Output {
    Command::new(root().join(tool)).args(files).output().expect(tool)
}

#[test]
fn a_period_report_counts_each_database_resolves_by_signed_acks_and_validates_as_oscal() {
    let m = material();
    let scratch = Scratch::new();
    let fleet = m.fleet(&scratch, &[("ledger", &m.good), ("lost-rows", &m.bad)]);
    let failed = fleet.join("lost-rows/20260101T030000Z");
    // The failure looked into and acknowledged by someone the allowed signers also hold.
    let (ack_key, ack_public, _) = keygen(scratch.dir.path(), "ops", "");
    let allowed = scratch.write(
        "allowed_signers",
        format!("{}ops@example.com {ack_public}\n", std::fs::read_to_string(&m.allowed).unwrap()),
    );
    let mut ack = Command::new(env!("CARGO_BIN_EXE_pgdrill"));
    ack.arg("ack").arg(&failed).args(["--by", "ops@example.com", "--note", "INC-7: the expected count was wrong"]);
    let acked = ack.arg("--signing-key").arg(&ack_key).output().unwrap();
    assert_eq!(acked.status.code(), Some(0), "{}", text(&acked));
    // A database whose drill restores an older backup, sampled from a window of three.
    std::fs::create_dir(scratch.path("archive")).unwrap();
    let dump =
        pg15_dump("CREATE TABLE public.ledger (id integer PRIMARY KEY);\nINSERT INTO public.ledger VALUES (1);\n");
    for day in 23..=25 {
        scratch.write(&format!("archive/ledger-2026-05-{day}.sql"), &dump);
    }
    let scenario = scratch.scenario(
        "archive.toml",
        "name = \"archive\"\n[source]\ndir = \"archive\"\npattern = \"ledger-{date}.sql\"\n[target]\n\
         [[checks.sql]]\nname = \"one\"\nquery = \"SELECT count(*) FROM public.ledger\"\nexpect = 1\n",
    );
    let sample = ["--sample".to_owned(), "within=30d".to_owned()];
    let signing = [("PGDRILL_SIGNING_KEY".to_owned(), std::fs::read_to_string(&ack_key).unwrap())];
    let sampled = scratch.drill_env(&scenario, &sample, &signing);
    assert_eq!(sampled.code, Some(0), "{sampled:?}");
    crate::signed::copy(&sampled.out, &fleet.join("archive/20260101T040000Z"));

    // The evidence gate says the acknowledgement, and the gap stands.
    let gate = scratch.write("gate.toml", "[[database]]\nscenario = \"lost-rows\"\n");
    let args = ["report", "audit", fleet.to_str().unwrap(), "--inventory", gate.to_str().unwrap(), "--max-age", "30d"];
    let audited = pgdrill(&[&args[..], &["--allowed-signers", allowed.to_str().unwrap()]].concat(), &[]);
    assert_eq!(audited.status.code(), Some(1), "{}", text(&audited));
    let said = String::from_utf8_lossy(&audited.stdout).into_owned();
    assert!(
        said.contains("; acknowledged by ops@example.com at ")
            && said.contains(": INC-7: the expected count was wrong (the gap stands"),
        "{said}"
    );
    let inventory = scratch.write(
        "inventory.toml",
        "[[database]]\nscenario = \"ledger\"\ncadence = \"30d\"\n\n[[database]]\nscenario = \"lost-rows\"\ncadence = \"30d\"\n\n\
         [[database]]\nscenario = \"billing\"\ncadence = \"30d\"\n\n[[database]]\nscenario = \"payroll\"\n\n\
         [[database]]\nscenario = \"archive\"\ncadence = \"30d\"\n",
    );
    let (key, period_public, _) = keygen(scratch.dir.path(), "period", "");
    let out = scratch.path("period-report");
    // One window of 30 days: from before the shared drills to after the sampled one.
    let end = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    let (from, to) = (rfc3339(m.started - time::Duration::hours(1)), rfc3339(end));
    let now = rfc3339(end + time::Duration::days(1));
    let period = |trust: &[&str]| {
        let args = ["report", "period", fleet.to_str().unwrap(), "--inventory", inventory.to_str().unwrap()];
        let mut args: Vec<&str> = args.to_vec();
        args.extend(["--from", &from, "--to", &to, "--now", &now, "--out", out.to_str().unwrap()]);
        args.extend(trust);
        args.extend(["--signing-key", key.to_str().unwrap()]);
        pgdrill(&args, &[])
    };
    let output = period(&["--allowed-signers", allowed.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let trusted_page = scratch.path("trusted-period.html");
    std::fs::copy(out.join("period.html"), &trusted_page).unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(said.contains("5 databases from ") && said.contains(": 3 exceptions, 1 resolved"), "{said}");
    assert!(said.contains("exception (resolved): `lost-rows`: the drill of "), "{said}");
    assert!(said.contains("exception (unresolved): `billing`: no drill from "), "{said}");
    assert!(said.contains("exception (unresolved): `payroll`: no cadence"), "{said}");

    let report = json(&out.join("period.json"));
    assert_eq!(report["schema"], "pgdrill.period.v1");
    let db = |name: &str| report["databases"].as_array().unwrap().iter().find(|d| d["name"] == name).unwrap().clone();
    let counts =
        |d: &serde_json::Value| ["expected", "run", "passed", "failed", "missed"].map(|k| d[k].as_u64().unwrap());
    assert_eq!(counts(&db("ledger")), [1, 1, 1, 0, 0]);
    assert_eq!(db("ledger")["drills"][0]["rto_met"], true);
    assert_eq!(db("ledger")["drills"][0]["evidence"], "verified");
    assert_eq!(counts(&db("lost-rows")), [1, 1, 0, 1, 0]);
    let exception = &db("lost-rows")["exceptions"][0];
    assert_eq!((exception["kind"].as_str(), exception["resolved"].as_bool()), (Some("failed-drill"), Some(true)));
    assert_eq!(exception["resolution"][0]["allowed_as"], "ops@example.com");
    assert_eq!(counts(&db("billing")), [1, 0, 0, 0, 1]);
    assert_eq!(db("payroll")["cadence_from"], "none given");
    assert_eq!(counts(&db("archive")), [1, 1, 1, 0, 0]);
    assert_eq!((db("archive")["sampled"].as_u64(), report["summary"]["sampled"].as_u64()), (Some(1), Some(1)));
    assert_eq!(report["summary"]["unresolved"], 2);

    // OSCAL, validated by the reference models; the drills' own test-result predicates too.
    let oscal = out.join("assessment-results.json");
    let checked = run_tool("ci/oscal/validate-assessment-results", &[&oscal]);
    assert!(checked.status.success(), "{}", text(&checked));
    // The validator itself refuses each of its broken examples.
    let refuses = run_tool("ci/oscal/test-validate-assessment-results", &[]);
    assert!(refuses.status.success(), "{}", text(&refuses));
    let ar = json(&oscal);
    let result = &ar["assessment-results"]["results"][0];
    let of = |name: &str| {
        let findings = result["findings"].as_array().unwrap();
        let database = |f: &&serde_json::Value| {
            f["props"].as_array().unwrap().iter().any(|p| p["name"] == "database" && p["value"] == name)
        };
        findings.iter().find(database).unwrap()["target"]["status"]["state"].clone()
    };
    assert_eq!(
        (of("ledger"), of("lost-rows"), of("billing")),
        ("satisfied".into(), "not-satisfied".into(), "not-satisfied".into())
    );
    let coded = result["findings"].as_array().unwrap().iter().find(|f| f["target"]["target-id"] == "cp-10_obj");
    let coded = coded.expect("a finding per code that failed a drill");
    assert!(
        coded["title"].as_str().unwrap().starts_with("sql.")
            && coded["title"].as_str().unwrap().contains(": 1 drills of lost-rows"),
        "{coded}"
    );
    assert!(
        db("lost-rows")["drills"][0]["failing_checks"][0]["code"].as_str().unwrap().starts_with("sql."),
        "{report}"
    );
    let states: Vec<&str> = result["risks"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(
        states.iter().filter(|s| **s == "closed").count(),
        1,
        "the acknowledged failure's risk is closed: {states:?}"
    );
    assert_eq!(states.len(), 3, "{states:?}");
    let results = [m.good.join("test-result.intoto.json"), m.bad.join("test-result.intoto.json")];
    let checked = run_tool("ci/intoto/validate-test-result", &[&results[0], &results[1]]);
    assert!(checked.status.success(), "{}", text(&checked));

    // Signed as a fleet summary: pgdrill verify says so; an edited count does not verify.
    let with_period = scratch.write(
        "allowed_with_period",
        format!("{}period@example.com {period_public}\n", std::fs::read_to_string(&allowed).unwrap()),
    );
    let verify = |signers: &Path| {
        pgdrill(&["verify", out.to_str().unwrap(), "--allowed-signers", signers.to_str().unwrap()], &[])
    };
    let verified = verify(&with_period);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    assert!(text(&verified).contains("a fleet summary of 3 drills, verdict fail"), "{}", text(&verified));
    assert_eq!(verify(&allowed).status.code(), Some(1), "the period's key is not among these signers");
    let edited = crate::signed::copy(&out, &scratch.path("period-edited"));
    let body = std::fs::read_to_string(edited.join("period.json")).unwrap();
    std::fs::write(edited.join("period.json"), body.replace("\"unresolved\": 2", "\"unresolved\": 0")).unwrap();
    let caught =
        pgdrill(&["verify", edited.to_str().unwrap(), "--allowed-signers", with_period.to_str().unwrap()], &[]);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    assert!(text(&caught).contains("period.json"), "{}", text(&caught));

    // Against allowed signers that do not hold the acknowledgement's key, it resolves nothing.
    let output = period(&["--allowed-signers", m.allowed.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // The sampled drill's key is not among these signers either: its evidence is an exception.
    assert!(String::from_utf8_lossy(&output.stdout).contains(": 4 exceptions, 0 resolved"), "{}", text(&output));
    // Without allowed signers, each drill's evidence is an exception, unless --unsigned-ok.
    let output = period(&[]);
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(said.contains(": 6 exceptions, 0 resolved (no allowed signers"), "{}", text(&output));
    assert!(
        said.contains("`ledger`: the evidence of the drill of ")
            && said.contains("was not checked: no --allowed-signers"),
        "{said}"
    );
    let output = period(&["--unsigned-ok"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains(": 3 exceptions, 0 resolved"), "{}", text(&output));

    // The page, printed by headless Chromium: every database, the exception and its resolution.
    let kept = root().join("target/browser/period");
    std::fs::create_dir_all(&kept).unwrap();
    let page = kept.join("period.html");
    std::fs::copy(&trusted_page, &page).unwrap();
    let shown = browser::print(&page, &kept);
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    for needle in [
        "ledger",
        "lost-rows",
        "billing",
        "payroll",
        "archive",
        "sampled",
        "windows missed",
        "Unresolved.",
        "no cadence",
    ] {
        assert!(squeeze(&shown.text).contains(&squeeze(needle)), "no `{needle}` printed:\n{}", shown.text);
    }
    assert!(shown.lost.is_empty(), "words of the page not printed: {:?}", shown.lost);
}
