//! The fleet view and the evidence gate over real drill folders: two drills made once (one
//! passing, one failing on a check named like markup, both signed with a key ssh-keygen made)
//! and shared by every test, each of which copies them into a fleet of its own and alters the
//! copies (ages through the hidden `--now`, tampering by editing a file). `report audit` passes
//! a fleet whose every listed database has a passing, recent, verified drill, and names each
//! gap: no drill at all, a stale drill, a failed one, an unsigned one, one edited after
//! signing, one signed by a key the allowed signers do not hold, evidence not checked; over an
//! `s3://` prefix too (moto on loopback). `report fleet` writes the page and its status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::servers::S3Server;
use crate::signed::{copy, keygen};
use crate::util::{Scratch, pg15_dump, root};

const IDENTITY: &str = "drills@example.com";
/// The failing drill's check, named like markup: the page must show it as text.
pub(crate) const HOSTILE_CHECK: &str = "<script>alert(1)</script>";

/// The drills every test shares, made once: by the first test that asks, in a folder under the
/// target folder named for the pgdrill binary they were made with, which the other tests (each
/// in a process of its own under nextest) wait for, holding its lock, and read.
pub(crate) struct Material {
    /// The passing drill's folder (scenario `ledger`), and the failing one's (`lost-rows`).
    pub good: PathBuf,
    pub bad: PathBuf,
    pub good_scenario: PathBuf,
    /// Its backup, as its drill record says it.
    pub backup: String,
    /// When the passing drill started.
    pub started: time::OffsetDateTime,
    /// Allowed signers holding the signing key, and holding only another key.
    pub allowed: PathBuf,
    pub strangers: PathBuf,
    pub fingerprint: String,
}

pub(crate) fn material() -> &'static Material {
    static MATERIAL: OnceLock<Material> = OnceLock::new();
    MATERIAL.get_or_init(|| {
        let binary = std::fs::metadata(env!("CARGO_BIN_EXE_pgdrill")).expect("the pgdrill binary");
        let built = binary.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fleet-material-2-{built}-{}", binary.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let lock = std::fs::File::create(dir.join("lock")).unwrap();
        lock.lock().expect("the material's lock");
        if !dir.join("done").is_file() {
            make(&dir);
            std::fs::write(dir.join("done"), "").unwrap();
        }
        lock.unlock().unwrap();
        read(&dir)
    })
}

/// Makes the drills in `dir`.
fn make(dir: &Path) {
    let scratch = Scratch { dir: tempfile::Builder::new().prefix("making-").tempdir_in(dir).unwrap() };
    let (key, public, fingerprint) = keygen(scratch.dir.path(), "signer", "");
    let (_, other, _) = keygen(scratch.dir.path(), "stranger", "");
    std::fs::write(dir.join("allowed_signers"), format!("{IDENTITY} {public}\n")).unwrap();
    std::fs::write(dir.join("strangers"), format!("{IDENTITY} {other}\n")).unwrap();
    std::fs::write(dir.join("fingerprint"), fingerprint).unwrap();
    // A backup each: an inventory's `backup` entry names one database.
    let dump = pg15_dump(
        "CREATE TABLE public.ledger (id integer PRIMARY KEY);\nINSERT INTO public.ledger VALUES (1), (2), (3);\n",
    );
    std::fs::write(dir.join("ledger.sql"), &dump).unwrap();
    std::fs::write(dir.join("lost.sql"), &dump).unwrap();
    let check = |name: &str, expect: u32| {
        format!("[[checks.sql]]\nname = {name:?}\nquery = \"SELECT count(*) FROM public.ledger\"\nexpect = {expect}\n")
    };
    let source = |file: &str| format!("[source]\npath = {:?}\n[target]\n", dir.join(file).display().to_string());
    let good_scenario = dir.join("ledger.toml");
    let objectives = "[objectives]\nrto = \"10m\"\nrpo = \"30d\"\n";
    std::fs::write(
        &good_scenario,
        format!("name = \"ledger\"\n{}{objectives}{}", source("ledger.sql"), check("ledger", 3)),
    )
    .unwrap();
    let bad_scenario = dir.join("lost.toml");
    let bad_text =
        format!("name = \"lost-rows\"\n{}{}{}", source("lost.sql"), check("ledger", 3), check(HOSTILE_CHECK, 4));
    std::fs::write(&bad_scenario, bad_text).unwrap();
    let signing = [("PGDRILL_SIGNING_KEY".to_owned(), std::fs::read_to_string(&key).unwrap())];
    let good = scratch.drill_env(&good_scenario, &[], &signing);
    assert_eq!(good.code, Some(0), "{good:?}");
    let bad = scratch.drill_env(&bad_scenario, &[], &signing);
    assert_eq!(bad.code, Some(1), "{bad:?}");
    copy(&good.out, &dir.join("good"));
    copy(&bad.out, &dir.join("bad"));
}

/// The drills made in `dir`.
fn read(dir: &Path) -> Material {
    let record: pgdrill::outcome::DrillRecord =
        serde_json::from_str(&std::fs::read_to_string(dir.join("good/drill.json")).unwrap()).unwrap();
    Material {
        backup: record.backup.as_ref().expect("the backup drilled").location.clone(),
        started: record.started_at,
        good: dir.join("good"),
        bad: dir.join("bad"),
        good_scenario: dir.join("ledger.toml"),
        allowed: dir.join("allowed_signers"),
        strangers: dir.join("strangers"),
        fingerprint: std::fs::read_to_string(dir.join("fingerprint")).unwrap(),
    }
}

impl Material {
    /// A fleet of copies of the drills, `(scenario, drill folder)`, under `scratch`:
    /// `fleet/<scenario>/<n>/`.
    pub(crate) fn fleet(&self, scratch: &Scratch, drills: &[(&str, &PathBuf)]) -> PathBuf {
        let fleet = scratch.path("fleet");
        for (n, (scenario, drill)) in drills.iter().enumerate() {
            copy(drill, &fleet.join(scenario).join(format!("2026010{n}T030000Z")));
        }
        std::fs::create_dir_all(&fleet).unwrap();
        fleet
    }

    /// `--now` that many days after the passing drill.
    pub(crate) fn days_later(&self, days: i64) -> String {
        (self.started + time::Duration::days(days)).format(&time::format_description::well_known::Rfc3339).unwrap()
    }
}

pub(crate) fn pgdrill(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(root())
        .output()
        .expect("run pgdrill")
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `report audit` of `fleet` against `inventory`, `days` after the passing drill, with `more`.
fn audit(fleet: &Path, inventory: &Path, days: i64, more: &[&str]) -> Output {
    let now = material().days_later(days);
    let mut args = vec!["report", "audit", fleet.to_str().unwrap(), "--inventory", inventory.to_str().unwrap()];
    args.extend(["--now", &now]);
    args.extend(more);
    pgdrill(&args, &[])
}

fn trusted(m: &Material) -> Vec<&str> {
    vec!["--allowed-signers", m.allowed.to_str().unwrap()]
}

/// Asserts the audit exited `code` and said each of `says`.
fn assert_says(output: &Output, code: i32, says: &[&str]) {
    assert_eq!(output.status.code(), Some(code), "{}", text(output));
    for said in says {
        assert!(String::from_utf8_lossy(&output.stdout).contains(said), "no `{said}` in:\n{}", text(output));
    }
}

#[test]
fn the_gate_passes_when_every_database_listed_has_a_passing_recent_verified_drill() {
    let m = material();
    let scratch = Scratch::new();
    let fleet = m.fleet(&scratch, &[("ledger", &m.good), ("lost-rows", &m.bad)]);
    // The same database three ways: by scenario, by scenario file, by backup.
    let inventory = scratch.write(
        "inventory.toml",
        format!(
            "[[database]]\nscenario = \"ledger\"\n\n[[database]]\nname = \"ledger by file\"\nscenario_file = {:?}\n\n\
             [[database]]\nname = \"ledger by backup\"\nbackup = {:?}\n",
            m.good_scenario.display().to_string(),
            m.backup
        ),
    );
    let out = scratch.path("audit");
    let mut args = trusted(m);
    args.extend(["--max-age", "92d", "--out", out.to_str().unwrap()]);
    let passed = audit(&fleet, &inventory, 1, &args);
    assert_says(&passed, 0, &["proven: each of the 3 databases in"]);
    assert!(!String::from_utf8_lossy(&passed.stdout).contains("gap:"), "{}", text(&passed));
    let gaps: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("gaps.json")).unwrap()).unwrap();
    assert_eq!((gaps["proven"].as_bool(), gaps["gaps"].as_array().map(Vec::len)), (Some(true), Some(0)), "{gaps:#}");
    assert!(std::fs::read_to_string(out.join("gaps.md")).unwrap().contains("every database proven"));
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("fleet-status.json")).unwrap()).unwrap();
    let databases = status["databases"].as_array().unwrap();
    let names: Vec<&str> = databases.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ledger", "ledger by file", "ledger by backup", "lost-rows"], "{status:#}");
    for listed in &databases[..3] {
        assert_eq!(listed["state"], "fresh", "{listed:#}");
        assert_eq!(
            (listed["max_age"]["source"].as_str(), listed["max_age"]["seconds"].as_u64()),
            (Some("--max-age"), Some(92 * 86400))
        );
        let evidence = &listed["last_drill"]["evidence"];
        assert_eq!(
            (evidence["signed"].as_bool(), evidence["verified"].as_bool()),
            (Some(true), Some(true)),
            "{listed:#}"
        );
        assert_eq!(evidence["key"], m.fingerprint.as_str());
    }
    // Not listed, so no gap of the gate's; shown, never verified, its failing checks named.
    let lost = &databases[3];
    assert_eq!((lost["state"].as_str(), lost["listed"].is_null()), (Some("never verified"), true), "{lost:#}");
    let failing: Vec<&str> =
        lost["last_drill"]["failing_checks"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(failing, [format!("sql/{HOSTILE_CHECK}")], "{lost:#}");
}

#[test]
fn the_gate_fails_on_a_database_with_no_drill_at_all() {
    let m = material();
    let scratch = Scratch::new();
    let fleet = m.fleet(&scratch, &[("ledger", &m.good)]);
    let inventory =
        scratch.write("inventory.toml", "[[database]]\nscenario = \"ledger\"\n[[database]]\nscenario = \"billing\"\n");
    let output = audit(&fleet, &inventory, 1, &trusted(m));
    assert_says(&output, 1, &["gap: `billing`: no drill at all", "not proven: 1 gap in the 2 databases"]);
    assert!(!String::from_utf8_lossy(&output.stdout).contains("gap: `ledger`"), "{}", text(&output));
    // An empty folder of evidence: every database is a gap, not an unusable input.
    let empty = scratch.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let output = audit(&empty, &inventory, 1, &trusted(m));
    assert_says(&output, 1, &["gap: `billing`: no drill at all", "gap: `ledger`: no drill at all"]);
}

#[test]
fn the_gate_fails_on_a_stale_drill_against_the_max_age_that_applies() {
    let m = material();
    let scratch = Scratch::new();
    let fleet = m.fleet(&scratch, &[("ledger", &m.good)]);
    let inventory = scratch.write("inventory.toml", "[[database]]\nscenario = \"ledger\"\n");
    let mut args = trusted(m);
    args.extend(["--max-age", "92d"]);
    let stale = audit(&fleet, &inventory, 100, &args);
    assert_says(
        &stale,
        1,
        &["gap: `ledger`: stale: its last passing drill (", "is 100d old, older than the max age 92d (--max-age)"],
    );
    assert_says(&audit(&fleet, &inventory, 91, &args), 0, &["proven"]);
    // The inventory's own max_age comes first; without either, the RPO the drill states (30d).
    let longer = scratch.write("longer.toml", "[[database]]\nscenario = \"ledger\"\nmax_age = \"200d\"\n");
    assert_says(&audit(&fleet, &longer, 100, &args), 0, &["proven"]);
    let by_rpo = audit(&fleet, &inventory, 31, &trusted(m));
    assert_says(&by_rpo, 1, &["older than the max age 30d (its RPO, as its drill record states it)"]);
    assert_says(&audit(&fleet, &inventory, 29, &trusted(m)), 0, &["proven"]);
}

#[test]
fn the_gate_fails_on_a_failed_last_drill() {
    let m = material();
    let scratch = Scratch::new();
    let fleet = m.fleet(&scratch, &[("ledger", &m.good), ("lost-rows", &m.bad)]);
    let inventory = scratch
        .write("inventory.toml", "[[database]]\nscenario = \"ledger\"\n[[database]]\nscenario = \"lost-rows\"\n");
    let output = audit(&fleet, &inventory, 1, &trusted(m));
    assert_says(
        &output,
        1,
        &["gap: `lost-rows`: its last drill failed (", "gap: `lost-rows`: never verified: no drill of it passed"],
    );
    // A failed drill after a passing one: the last drill counts.
    let scratch = Scratch::new();
    let fleet = m.fleet(&scratch, &[("ledger", &m.good)]);
    let later = fleet.join("ledger/20260109T030000Z");
    copy(&m.bad, &later);
    let output = audit(
        &fleet,
        &scratch.write("i.toml", "[[database]]\nbackup = \"x\"\n[[database]]\nscenario = \"lost-rows\"\n"),
        1,
        &trusted(m),
    );
    assert_says(&output, 1, &["gap: `x`: no drill at all", "gap: `lost-rows`: its last drill failed"]);
}

/// A drill whose evidence was altered after the drill, each way, in a copy.
fn altered(alter: impl Fn(&Path)) -> (Scratch, PathBuf, PathBuf) {
    let m = material();
    let scratch = Scratch::new();
    let fleet = m.fleet(&scratch, &[("ledger", &m.good)]);
    alter(&fleet.join("ledger/20260100T030000Z"));
    let inventory = scratch.write("inventory.toml", "[[database]]\nscenario = \"ledger\"\n");
    (scratch, fleet, inventory)
}

#[test]
fn the_gate_fails_on_an_unsigned_drill() {
    let (_scratch, fleet, inventory) = altered(|dir| {
        std::fs::remove_file(dir.join("evidence.intoto.json")).unwrap();
        std::fs::remove_file(dir.join("evidence.intoto.json.sig")).unwrap();
    });
    let output = audit(&fleet, &inventory, 1, &trusted(material()));
    assert_says(
        &output,
        1,
        &["gap: `ledger`: the evidence of its last drill (", "): unsigned: nothing proves who wrote it"],
    );
}

#[test]
fn the_gate_fails_on_evidence_edited_after_signing() {
    let (_scratch, fleet, inventory) = altered(|dir| {
        let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
        std::fs::write(dir.join("report.md"), report.replace("PASS", "PASS, honestly")).unwrap();
    });
    let output = audit(&fleet, &inventory, 1, &trusted(material()));
    assert_says(
        &output,
        1,
        &[
            "gap: `ledger`: the evidence of its last drill (",
            "does not verify: report.md was changed after the drill was signed",
        ],
    );
    // Without allowed signers and with --unsigned-ok, files that do not match still fail.
    let output = audit(&fleet, &inventory, 1, &["--unsigned-ok"]);
    assert_says(&output, 1, &["its files do not match their digests"]);
}

#[test]
fn the_gate_fails_on_a_drill_signed_by_a_key_not_allowed() {
    let m = material();
    let (_scratch, fleet, inventory) = altered(|_| {});
    let output = audit(&fleet, &inventory, 1, &["--allowed-signers", m.strangers.to_str().unwrap()]);
    let key = format!("signed by key {}", m.fingerprint);
    assert_says(
        &output,
        1,
        &["gap: `ledger`: the evidence of its last drill (", &key, "which is not in the allowed signers"],
    );
}

#[test]
fn without_allowed_signers_the_gate_does_not_pass_unless_unsigned_evidence_is_accepted() {
    let (_scratch, fleet, inventory) = altered(|_| {});
    let output = audit(&fleet, &inventory, 1, &[]);
    assert_says(
        &output,
        1,
        &["gap: `ledger`: the evidence of its last drill (", "was not checked: no --allowed-signers"],
    );
    assert_says(&audit(&fleet, &inventory, 1, &["--unsigned-ok"]), 0, &["proven"]);
    let both = audit(&fleet, &inventory, 1, &["--unsigned-ok", "--allowed-signers", "x"]);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
}

#[test]
fn an_unusable_inventory_or_folder_exits_2_saying_where() {
    let m = material();
    let (scratch, fleet, _) = altered(|_| {});
    let bad = scratch.write("bad.toml", "[[database]]\nscenario = \"ledger\"\nmax_age = \"often\"\n");
    let output = audit(&fleet, &bad, 1, &trusted(m));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains(&format!("{}:3:11: max_age `often` is not a span of time", bad.display())),
        "{}",
        text(&output)
    );
    let unknown = scratch.write("unknown.toml", "[[database]]\nscenarios = \"ledger\"\n");
    let output = audit(&fleet, &unknown, 1, &trusted(m));
    assert!(
        output.status.code() == Some(2) && text(&output).contains(":2:1: unknown field `scenarios`"),
        "{}",
        text(&output)
    );
    let missing_file = scratch.write("file.toml", "[[database]]\nscenario_file = \"nowhere.toml\"\n");
    let output = audit(&fleet, &missing_file, 1, &trusted(m));
    assert!(
        output.status.code() == Some(2) && text(&output).contains("file.toml:1: the scenario file of"),
        "{}",
        text(&output)
    );
    let inventory = scratch.write("inventory.toml", "[[database]]\nscenario = \"ledger\"\n");
    let output = audit(&scratch.path("no-such-folder"), &inventory, 1, &trusted(m));
    assert!(output.status.code() == Some(2) && text(&output).contains("cannot read"), "{}", text(&output));
}

#[test]
fn the_gate_reads_a_fleet_from_an_object_store_prefix() {
    let m = material();
    let s3 = S3Server::start();
    s3.put_folders(
        "evidence",
        &[("fleet/ledger/20260101T030000Z", m.good.as_path()), ("fleet/lost-rows/20260101T030000Z", m.bad.as_path())],
    );
    let scratch = Scratch::new();
    let inventory = scratch
        .write("inventory.toml", "[[database]]\nscenario = \"ledger\"\n[[database]]\nscenario = \"lost-rows\"\n");
    let out = scratch.path("out");
    let now = m.days_later(1);
    let mut args =
        vec!["report", "audit", "s3://evidence/fleet/", "--inventory", inventory.to_str().unwrap(), "--now", &now];
    args.extend(trusted(m));
    args.extend(["--out", out.to_str().unwrap()]);
    let mut env = s3.env();
    env.push(("AWS_ENDPOINT_URL".into(), s3.endpoint.clone()));
    let output = pgdrill(&args, &env);
    assert_says(
        &output,
        1,
        &["gap: `lost-rows`: its last drill failed (s3://evidence/fleet/lost-rows/20260101T030000Z/)"],
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("gap: `ledger`"), "{}", text(&output));
    let gaps: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("gaps.json")).unwrap()).unwrap();
    assert_eq!(gaps["proven"], false);
    assert!(gaps["gaps"].as_array().unwrap().iter().all(|g| g["database"] == "lost-rows"), "{gaps:#}");
    assert!(!text(&output).contains(crate::servers::S3_SECRET_KEY));
}

/// `report fleet` of `fleet` into `view/`, a day after the passing drill, against the allowed
/// signers: the folder and what the command printed (it wrote the page: exit 0).
fn view(scratch: &Scratch, fleet: &Path) -> (PathBuf, Output) {
    let out = scratch.path("view");
    let now = material().days_later(1);
    let mut args = vec!["report", "fleet", fleet.to_str().unwrap(), "--out", out.to_str().unwrap(), "--now", &now];
    args.extend(trusted(material()));
    let output = pgdrill(&args, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    (out, output)
}

#[test]
fn the_fleet_view_is_one_page_with_no_script_and_every_name_as_text() {
    let m = material();
    let scratch = Scratch::new();
    let fleet = m.fleet(&scratch, &[("ledger", &m.good), ("lost-rows", &m.bad)]);
    let (out, _) = view(&scratch, &fleet);
    let page = std::fs::read_to_string(out.join("fleet.html")).unwrap();
    assert!(page.contains("content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\""), "{page}");
    assert!(!page.to_lowercase().contains("<script"), "no script, the hostile check's name escaped");
    assert!(page.contains("sql/&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
    for said in ["ledger", "lost-rows", "fresh", "never verified", "✓ signed, verifies", "Controls matrix", "<svg"] {
        assert!(page.contains(said), "no `{said}` in the page");
    }
    assert!(out.join("fleet-status.json").is_file());
}

/// A database whose last drill failed after a passing one is `failing` (red), never `fresh`: in
/// the page's badge and tiles, in fleet-status.json, and on the console with its totals.
#[test]
fn a_database_whose_last_drill_failed_is_failing_not_fresh() {
    let m = material();
    let scratch = Scratch::new();
    let fleet = m.fleet(&scratch, &[("ledger", &m.good)]);
    let later = fleet.join("ledger/20260109T030000Z");
    copy(&m.bad, &later);
    let record = later.join("drill.json");
    let renamed = std::fs::read_to_string(&record).unwrap().replacen("\"lost-rows\"", "\"ledger\"", 1);
    std::fs::write(&record, renamed).unwrap();
    let (out, output) = view(&scratch, &fleet);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ledger: failing (last drill fail in") && stdout.contains("1 database: 1 failing"),
        "{stdout}"
    );
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("fleet-status.json")).unwrap()).unwrap();
    assert_eq!(status["databases"][0]["state"], "failing", "{status:#}");
    let counts = &status["counts"];
    assert_eq!((counts["failing"].as_u64(), counts["fresh"].as_u64()), (Some(1), Some(0)), "{status:#}");
    let page = std::fs::read_to_string(out.join("fleet.html")).unwrap();
    assert!(page.contains("<span class=\"badge failing\">failing</span>"), "{page}");
    assert!(page.contains("<div class=\"tile failing\"><b>1</b>failing</div>"), "{page}");
    assert!(page.contains("<div class=\"tile \"><b>0</b>fresh</div>"), "{page}");
}
