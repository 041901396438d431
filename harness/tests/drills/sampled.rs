//! Sampled drills (`run --sample within=30d`): the backup drilled is drawn from the folder's older
//! backups within the window before the newest, by a seed anyone re-derives from the signed
//! `plan.json` (here as the auditors' page does, with `sha256sum`), and `pgdrill verify` refuses
//! a plan edited to claim another draw.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use pgdrill::outcome::Phase;

use crate::signed::{IDENTITY, NAMESPACE, copy, keygen};
use crate::util::{Scratch, fixture};

const PLUR: &str = "[[restore.roles]]\nname = \"plur_app\"\n[checks.row_counts]\nexpect_from_dump = true\n";

fn pgdrill(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(args).arg(dir).output().expect("run pgdrill")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `printf %s TEXT | sha256sum`, as an auditor runs it.
fn sha256sum(text: &str) -> String {
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("a digest").to_owned()
}

#[test]
fn a_sampled_drill_drills_the_older_backup_its_signed_plan_draws() {
    let scratch = Scratch::new();
    std::fs::create_dir(scratch.path("backups")).unwrap();
    let plur = std::fs::read(fixture("plur.sql.gz")).unwrap();
    // The newest and the one older than the window are broken: a drill of either fails.
    for (name, data) in [
        ("plur-2026-04-20.sql.gz", b"older than the window, and broken".to_vec()),
        ("plur-2026-05-22.sql.gz", plur.clone()),
        ("plur-2026-05-23.sql.gz", plur.clone()),
        ("plur-2026-05-24.sql.gz", plur.clone()),
        ("plur-2026-05-25.sql.gz", b"the newest, and broken".to_vec()),
    ] {
        scratch.write(&format!("backups/{name}"), data);
    }
    let scenario = scratch.scenario(
        "sampled.toml",
        &format!("name = \"sampled\"\n[source]\ndir = \"backups\"\npattern = \"plur-{{date}}.sql.gz\"\n{PLUR}"),
    );
    let (key, public, _) = keygen(scratch.dir.path(), "signer", "");
    let key_text = std::fs::read_to_string(&key).unwrap();
    let args = ["--sample".to_owned(), "within=30d".to_owned()];
    let drill = scratch.drill_env(&scenario, &args, &[("PGDRILL_SIGNING_KEY".into(), key_text)]);
    assert_eq!(drill.code, Some(0), "{drill:?}");

    let plan: serde_json::Value = serde_json::from_str(&drill.report("plan.json")).unwrap();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
    };
    let window = ["plur-2026-05-22.sql.gz", "plur-2026-05-23.sql.gz", "plur-2026-05-24.sql.gz"];
    assert_eq!(names(&plan["candidates"]), window, "{plan:#}");
    assert_eq!(plan["newest"]["name"], "plur-2026-05-25.sql.gz", "{plan:#}");
    assert_eq!((plan["listed"].as_u64(), plan["within"].as_str()), (Some(5), Some("30d")), "{plan:#}");
    assert_eq!(plan["seed"]["from"], "derived", "{plan:#}");
    let backup = drill.record().backup.clone().unwrap();
    assert_eq!(plan["location"].as_str(), Some(backup.location.as_str()), "{plan:#}");
    assert_eq!(plan["sha256"].as_str(), Some(backup.sha256.as_str()), "{plan:#}");
    assert!(backup.location.ends_with(&format!("backups/{}", plan["chosen"]["name"].as_str().unwrap())));
    assert!(drill.phase_summary(Phase::Fetch).contains("sampled: backup"), "{drill:?}");
    assert!(drill.report("record.json").contains("\"backup_sampled\": true"), "{drill:?}");

    // The auditors' recipe: the seed is the sha256 of its input, the draw the first 8 bytes of
    // the sha256 of `<seed>:pgdrill-sample` modulo the candidates.
    let seed = plan["seed"]["value"].as_str().unwrap();
    assert_eq!(sha256sum(plan["seed"]["input"].as_str().unwrap()), seed);
    let draw = sha256sum(&format!("{seed}:pgdrill-sample"));
    let index = u64::from_str_radix(&draw[..16], 16).unwrap() % 3;
    assert_eq!(plan["index"].as_u64(), Some(index), "{plan:#}");
    assert_eq!(plan["chosen"]["name"], window[index as usize], "{plan:#}");

    // Signed with the drill, and re-derived by `pgdrill verify`.
    let allowed = scratch.write("allowed_signers", format!("{IDENTITY} namespaces=\"{NAMESPACE}\" {public}\n"));
    let allowed = allowed.to_str().unwrap();
    let statement = drill.report("evidence.intoto.json");
    assert!(statement.contains("\"name\": \"plan.json\""), "{statement}");
    let ok = pgdrill(&["verify", "--allowed-signers", allowed], &drill.out);
    assert!(ok.status.success(), "{}", text(&ok));
    let said = format!("plan.json: the backup drilled, `{}`, is the one its seed draws", window[index as usize]);
    assert!(text(&ok).contains(&said), "{}", text(&ok));

    // A plan edited to claim another backup of the window was drawn: refused, the mismatch named.
    let edited = copy(&drill.out, &scratch.path("edited"));
    let other = (index as usize + 1) % 3;
    let mut forged = plan.clone();
    forged["index"] = other.into();
    forged["chosen"] = plan["candidates"][other].clone();
    std::fs::write(edited.join("plan.json"), serde_json::to_string_pretty(&forged).unwrap()).unwrap();
    let caught = pgdrill(&["verify", "--allowed-signers", allowed], &edited);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    let want = format!(
        "plan.json does not hold: the draw does not re-derive: it says it drew candidate {other} (`{}`), but its seed draws candidate {index} (`{}`) of 3",
        window[other], window[index as usize]
    );
    assert!(text(&caught).contains(&want), "{}", text(&caught));
    assert!(text(&caught).contains("plan.json was changed after the drill was signed"), "{}", text(&caught));

    // The period report counts it as a passing drill of an older backup, sampled.
    let inventory = scratch.write("inventory.toml", "[[database]]\nscenario = \"sampled\"\ncadence = \"1d\"\n");
    let today = time::OffsetDateTime::now_utc().date();
    let (from, out) = (today.previous_day().unwrap().to_string(), scratch.path("period"));
    let args = ["report", "period", "--inventory", inventory.to_str().unwrap()];
    let more =
        ["--from", &from, "--to", &today.to_string(), "--allowed-signers", allowed, "--out", out.to_str().unwrap()];
    let period = pgdrill(&[&args[..], &more[..]].concat(), &drill.out);
    assert!(period.status.success(), "{}", text(&period));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("period.json")).unwrap()).unwrap();
    let db = &report["databases"][0];
    assert_eq!((db["passed"].as_u64(), db["sampled"].as_u64()), (Some(1), Some(1)), "{report:#}");
    assert_eq!(db["drills"][0]["sampled"], true, "{report:#}");
}

#[test]
fn only_a_folder_is_sampled_and_a_seed_is_a_sampled_drills() {
    let scratch = Scratch::new();
    scratch.write("plur.sql.gz", std::fs::read(fixture("plur.sql.gz")).unwrap());
    let one = scratch.scenario("one.toml", &format!("[source]\npath = \"plur.sql.gz\"\n{PLUR}"));
    let sampled = scratch.drill_with(&one, &["--sample".into(), "within=30d".into()]);
    assert_eq!(sampled.code, Some(2), "an unusable scenario: {sampled:?}");
    let error = sampled.phase_error(Phase::Resolve);
    assert!(error.contains("`sample` draws among the backups of a folder or an S3 prefix"), "{sampled:?}");
    let seeded = scratch.drill_with(&one, &["--seed".into(), "audit-q4".into()]);
    assert!(seeded.phase_error(Phase::Resolve).contains("`--seed` is the seed of a sampled drill"), "{seeded:?}");
    let written = scratch.scenario(
        "written.toml",
        &format!("[source]\npath = \"plur.sql.gz\"\nsample = {{ within = \"30d\" }}\n{PLUR}"),
    );
    let refused = scratch.drill(&written);
    assert!(refused.phase_error(Phase::Resolve).contains("draws among the backups of a folder"), "{refused:?}");
    // The command line's window is checked before any drill.
    let malformed = scratch.drill_with(&one, &["--sample".into(), "30d".into()]);
    assert_eq!(malformed.code, Some(2), "{malformed:?}");
    assert!(malformed.stderr.contains("`30d` is not `within=DURATION`"), "{malformed:?}");
}
