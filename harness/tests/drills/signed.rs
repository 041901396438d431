//! Signed evidence: a drill signed with an OpenSSH key verifies with OpenSSH's own `ssh-keygen -Y
//! verify` and `sha256sum -c`, and with `pgdrill verify`; every way the folder can be tampered
//! with is caught and named; the private key is written nowhere; a key that cannot sign fails
//! the command and still leaves the reports, unsigned and saying why. `report diff` compares two
//! such drills, and compares nothing whose evidence does not verify.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::{Scratch, files_under, pg15_dump};

pub(crate) const NAMESPACE: &str = "pgdrill-evidence@pgdrill.dev";
pub(crate) const IDENTITY: &str = "drills@example.com";

/// A key pair ssh-keygen made in `dir`: (private key file, its public line, fingerprint).
pub(crate) fn keygen(dir: &Path, name: &str, passphrase: &str) -> (PathBuf, String, String) {
    keygen_typed(dir, name, "ed25519", passphrase)
}

fn keygen_typed(dir: &Path, name: &str, kind: &str, passphrase: &str) -> (PathBuf, String, String) {
    let key = dir.join(name);
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-C", name, "-N", passphrase, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(made.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&made.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let listed = Command::new("ssh-keygen").arg("-lf").arg(key.with_extension("pub")).output().expect("ssh-keygen -l");
    // `256 SHA256:... comment (ED25519)`
    let fingerprint =
        String::from_utf8_lossy(&listed.stdout).split_whitespace().nth(1).expect("a fingerprint").to_owned();
    (key, public.trim().to_owned(), fingerprint)
}

fn pgdrill(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(args).arg(dir).output().expect("run pgdrill")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `ssh-keygen -Y verify` of the folder's statement, as an auditor runs it.
fn ssh_verify(dir: &Path, allowed: &Path) -> Output {
    ssh_verify_file(dir, "evidence.intoto.json", allowed)
}

/// `ssh-keygen -Y verify` of the folder's file `name` against `name.sig`.
fn ssh_verify_file(dir: &Path, name: &str, allowed: &Path) -> Output {
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", IDENTITY, "-n", NAMESPACE, "-s"])
        .arg(dir.join(format!("{name}.sig")))
        .stdin(std::fs::File::open(dir.join(name)).expect("statement"))
        .output()
        .expect("ssh-keygen -Y verify")
}

/// The folder's in-toto Test Result statement, verified with OpenSSH alone: its result, and the
/// tests that passed and failed.
fn test_result(dir: &Path, allowed: &Path) -> (String, Vec<String>, Vec<String>) {
    // The in-toto project's own library reads it as a Statement v1 of the Test Result predicate.
    let validator = crate::util::root().join("ci/intoto/validate-test-result");
    let valid =
        Command::new("python3").arg(&validator).arg(dir.join("test-result.intoto.json")).output().expect("python3");
    assert!(
        valid.status.success(),
        "{} (python3 -m pip install 'in-toto-attestation==0.9.3'; .ci/run installs it)",
        text(&valid)
    );
    let ssh = ssh_verify_file(dir, "test-result.intoto.json", allowed);
    assert!(ssh.status.success(), "ssh-keygen -Y verify of the test result: {}", text(&ssh));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("test-result.intoto.json")).unwrap()).unwrap();
    assert_eq!(json["predicateType"], "https://in-toto.io/attestation/test-result/v0.1", "{json}");
    let names = |field: &str| -> Vec<String> {
        json["predicate"][field].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect()
    };
    (json["predicate"]["result"].as_str().unwrap().to_owned(), names("passedTests"), names("failedTests"))
}

/// `sha256sum -c` of what `lines` (`sha256  name`) says, in `dir`.
fn sha256sum_check(dir: &Path, lines: &str) -> Output {
    let mut child = Command::new("sha256sum")
        .args(["-c", "--strict", "-"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), lines.as_bytes()).expect("write");
    child.wait_with_output().expect("sha256sum")
}

/// The statement's subjects as `sha256sum` lines.
fn subjects(dir: &Path) -> String {
    let statement: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("evidence.intoto.json")).expect("statement"))
            .expect("JSON");
    statement["subject"]
        .as_array()
        .expect("subjects")
        .iter()
        .map(|s| {
            format!("{}  {}\n", s["digest"]["sha256"].as_str().expect("sha256"), s["name"].as_str().expect("name"))
        })
        .collect()
}

/// A copy of the report folder to tamper with.
pub(crate) fn copy(dir: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).expect("copy folder");
    for entry in std::fs::read_dir(dir).expect("report folder").flatten() {
        if entry.path().is_dir() {
            copy(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
    to.to_owned()
}

fn small_drill(scratch: &Scratch) -> PathBuf {
    scratch.write(
        "small.sql",
        pg15_dump(
            "CREATE TABLE public.ledger (id integer PRIMARY KEY);\nINSERT INTO public.ledger VALUES (1), (2), (3);\n",
        ),
    );
    // The migration command writes down the environment it was given.
    let env = scratch.path("migration.env");
    scratch.scenario(
        "small.toml",
        &format!(
            "name = \"signed\"\n[source]\npath = \"small.sql\"\n[target]\n\
             [migrate]\ncommand = [\"sh\", \"-c\", \"env > {}\"]\n\
             [[checks.sql]]\nname = \"ledger\"\nquery = \"SELECT count(*) FROM public.ledger\"\nexpect = 3\n",
            env.display()
        ),
    )
}

#[test]
fn a_signed_drill_verifies_with_ssh_keygen_and_pgdrill_and_every_tampering_is_named() {
    let scratch = Scratch::new();
    let (key, public, fingerprint) = keygen(scratch.dir.path(), "signer", "");
    let (_, other_public, other_fingerprint) = keygen(scratch.dir.path(), "other", "");
    let key_text = std::fs::read_to_string(&key).expect("private key");
    let scenario = small_drill(&scratch);
    let drill = scratch.drill_env(&scenario, &[], &[("PGDRILL_SIGNING_KEY".into(), key_text.clone())]);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let dir = drill.out.clone();
    let signature = drill.record().signature.clone().expect("drill.json says how it is signed");
    assert_eq!(signature.signed_by.as_deref(), Some(fingerprint.as_str()), "{drill:?}");
    assert!(drill.stdout.contains(&format!("signed by {fingerprint}")), "{drill:?}");
    assert!(drill.report("report.md").contains(&format!("by key `{fingerprint}` (ssh-ed25519)")), "{drill:?}");
    let history = std::fs::read_to_string(dir.parent().unwrap().join("history.jsonl")).expect("history");
    assert!(history.contains(&format!("\"signed_by\":\"{fingerprint}\"")), "{history}");

    // The private key is nowhere: no report, no history, no output (its base64 body line by line).
    let body: Vec<&str> = key_text.lines().filter(|l| !l.starts_with("-----")).collect();
    for file in files_under(scratch.dir.path()).iter().filter(|f| f.starts_with(&dir) || f.ends_with("history.jsonl")) {
        let content = std::fs::read_to_string(file).unwrap_or_default();
        assert!(!body.iter().any(|line| content.contains(line)), "the key is in {}", file.display());
    }
    assert!(!body.iter().any(|line| drill.stdout.contains(line) || drill.stderr.contains(line)), "{drill:?}");
    // Nor does a program the drill starts inherit it.
    let env = std::fs::read_to_string(scratch.path("migration.env")).expect("the migration command ran");
    assert!(env.contains("PATH=") && !env.contains("PGDRILL_SIGNING_KEY"), "{env}");

    // OpenSSH alone: the signature, then every subject's digest (MANIFEST.sha256 among them).
    let allowed = scratch.write("allowed_signers", format!("{IDENTITY} namespaces=\"{NAMESPACE}\" {public}\n"));
    let ssh = ssh_verify(&dir, &allowed);
    assert!(ssh.status.success(), "ssh-keygen -Y verify: {}", text(&ssh));
    assert!(text(&ssh).contains(&format!("Good \"{NAMESPACE}\" signature for {IDENTITY}")), "{}", text(&ssh));
    let lines = subjects(&dir);
    for subject in ["MANIFEST.sha256", "report.md", "report.html", "record.json", "test-result.intoto.json.sig"] {
        assert!(lines.contains(&format!("  {subject}\n")), "{subject} is not a subject: {lines}");
    }
    let sums = sha256sum_check(&dir, &lines);
    assert!(sums.status.success(), "sha256sum -c: {}", text(&sums));
    // The drill as in-toto's Test Result, for a policy engine: signed on its own too.
    let (result, passed, failed) = test_result(&dir, &allowed);
    assert_eq!(result, "PASSED");
    assert!(passed.contains(&"sql/ledger".to_owned()) && passed.contains(&"phase/restore".to_owned()), "{passed:?}");
    assert!(failed.is_empty(), "{failed:?}");

    // The flat record, for evidence tools: as the schema says, and the same drill.
    let record = crate::record_schema::checked_record(&dir, &scratch);
    let full = drill.record();
    assert_eq!(record["drill_id"], full.drill_id.as_str(), "{record}");
    assert_eq!((record["verdict"].as_str(), record["passed"].as_bool()), (Some("pass"), Some(true)), "{record}");
    assert_eq!(record["signed_by"], fingerprint.as_str(), "{record}");
    assert_eq!((record["failure"].is_null(), record["checks_failed"].as_u64()), (true, Some(0)), "{record}");

    // pgdrill: the same, in one command (and as `report verify`).
    let allowed_arg = allowed.to_str().unwrap();
    let ok = pgdrill(&["verify", "--allowed-signers", allowed_arg, "--identity", IDENTITY], &dir);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        text(&ok).contains(&format!("is signed by key {fingerprint} (ssh-ed25519), allowed for `{IDENTITY}`"))
            && text(&ok).contains("verdict pass"),
        "{}",
        text(&ok)
    );
    let ok = pgdrill(&["report", "verify", "--allowed-signers", allowed_arg], &dir);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));

    // Another key's allowed signers: refused, naming the key that did sign.
    let others = scratch.write("others", format!("{IDENTITY} {other_public}\n"));
    let refused = pgdrill(&["verify", "--allowed-signers", others.to_str().unwrap()], &dir);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused)
            .contains(&format!("signed by key {fingerprint} (ssh-ed25519), which is not in the allowed signers")),
        "{}",
        text(&refused)
    );
    assert!(!text(&refused).contains(&other_fingerprint));
    assert!(!ssh_verify(&dir, &others).status.success());
    // The key allowed for git commits only.
    let git_only = scratch.write("git_only", format!("{IDENTITY} namespaces=\"git\" {public}\n"));
    let refused = pgdrill(&["verify", "--allowed-signers", git_only.to_str().unwrap()], &dir);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("allow only for namespaces `git`"), "{}", text(&refused));
    assert!(!ssh_verify(&dir, &git_only).status.success());

    // report.md edited after signing: the signature still holds (the statement is intact), the
    // digests do not.
    let edited = copy(&dir, &scratch.path("edited"));
    std::fs::write(edited.join("report.md"), drill.report("report.md").replace("PASS", "PASS, honestly")).unwrap();
    assert!(ssh_verify(&edited, &allowed).status.success());
    assert!(!sha256sum_check(&edited, &subjects(&edited)).status.success());
    let manifest = std::fs::read_to_string(edited.join("MANIFEST.sha256")).unwrap();
    assert!(!sha256sum_check(&edited, &manifest).status.success());
    let caught = pgdrill(&["verify", "--allowed-signers", allowed_arg], &edited);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    assert!(text(&caught).contains("error: report.md was changed after the drill was signed"), "{}", text(&caught));

    // report.html edited the same way: caught the same way.
    let page = copy(&dir, &scratch.path("page"));
    std::fs::write(page.join("report.html"), drill.report("report.html").replace("PASS", "PASS, honestly")).unwrap();
    let caught = pgdrill(&["verify", "--allowed-signers", allowed_arg], &page);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    assert!(text(&caught).contains("error: report.html was changed after the drill was signed"), "{}", text(&caught));

    // The statement edited (a verdict turned): OpenSSH refuses the signature.
    let forged = copy(&dir, &scratch.path("forged"));
    let statement = std::fs::read_to_string(forged.join("evidence.intoto.json")).unwrap();
    std::fs::write(
        forged.join("evidence.intoto.json"),
        statement.replacen("\"verdict\": \"pass\"", "\"verdict\": \"fail\"", 1),
    )
    .unwrap();
    assert!(!ssh_verify(&forged, &allowed).status.success());
    let caught = pgdrill(&["verify", "--allowed-signers", allowed_arg], &forged);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    assert!(text(&caught).contains("evidence.intoto.json does not match its signature"), "{}", text(&caught));

    // The statement signed by the right key, for another purpose (`ssh-keygen -Y sign -n file`).
    let elsewhere = copy(&dir, &scratch.path("elsewhere"));
    std::fs::remove_file(elsewhere.join("evidence.intoto.json.sig")).unwrap();
    let signed = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "file", "-f"])
        .arg(&key)
        .arg(elsewhere.join("evidence.intoto.json"))
        .output()
        .expect("ssh-keygen -Y sign");
    assert!(signed.status.success(), "{}", text(&signed));
    let caught = pgdrill(&["verify", "--allowed-signers", allowed_arg], &elsewhere);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    assert!(
        text(&caught).contains("the signature is for namespace `file`, not `pgdrill-evidence@pgdrill.dev`"),
        "{}",
        text(&caught)
    );
    assert!(!ssh_verify(&elsewhere, &allowed).status.success());

    // A file gone, a file added.
    let gone = copy(&dir, &scratch.path("gone"));
    std::fs::remove_file(gone.join("junit.xml")).unwrap();
    std::fs::write(gone.join("approval.md"), "approved").unwrap();
    let caught = pgdrill(&["verify", "--allowed-signers", allowed_arg], &gone);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    assert!(text(&caught).contains("error: junit.xml is missing: the signed statement covers it"), "{}", text(&caught));
    assert!(text(&caught).contains("warning: approval.md is in the folder but not covered"), "{}", text(&caught));

    // Unsigned: a failure against allowed signers; without them, only the digests, and said so.
    let unsigned = copy(&dir, &scratch.path("unsigned"));
    std::fs::remove_file(unsigned.join("evidence.intoto.json.sig")).unwrap();
    let caught = pgdrill(&["verify", "--allowed-signers", allowed_arg], &unsigned);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    assert!(text(&caught).contains("the report is not signed"), "{}", text(&caught));
    let digests_only = pgdrill(&["verify"], &unsigned);
    assert_eq!(digests_only.status.code(), Some(0), "{}", text(&digests_only));
    assert!(text(&digests_only).contains("nothing proves who wrote it"), "{}", text(&digests_only));

    a_worse_drill_fails_report_diff(&scratch, &dir, &key_text, &allowed);
}

/// `report diff`: a later drill of the same scenario whose check fails is worse than the signed
/// drill in `passed` (exit 1, the check and the verdict named); the same drill is no worse; the
/// later drill's record edited to pass is not compared against the allowed signers.
fn a_worse_drill_fails_report_diff(scratch: &Scratch, passed: &Path, key_text: &str, allowed: &Path) {
    let scenario = std::fs::read_to_string(scratch.path("small.toml")).unwrap();
    let worse = scratch.scenario("worse.toml", &scenario.replace("expect = 3", "expect = 4"));
    let drill = scratch.drill_env(&worse, &[], &[("PGDRILL_SIGNING_KEY".into(), key_text.to_owned())]);
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let failed = drill.out.clone();
    let (result, _, failed_tests) = test_result(&failed, allowed);
    assert_eq!((result.as_str(), failed_tests), ("FAILED", vec!["phase/checks".to_owned(), "sql/ledger".to_owned()]));
    let record = crate::record_schema::checked_record(&failed, scratch);
    assert_eq!((record["verdict"].as_str(), record["could_not_run"].as_bool()), (Some("fail"), Some(false)));
    assert!(record["failure"].as_str().is_some_and(|f| f.contains("sql/ledger")), "{record}");
    assert_eq!(record["checks_failed"].as_u64(), Some(1), "{record}");
    let diff = |args: &[&Path]| {
        let output = Command::new(crate::util::pgdrill_bin())
            .args(["report", "diff", "--allowed-signers"])
            .arg(allowed)
            .args(args)
            .output()
            .unwrap();
        (output.status.code(), text(&output))
    };
    let (code, said) = diff(&[passed, &failed]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("worse: the verdict was pass and is fail"), "{said}");
    assert!(said.contains("worse: check sql/ledger passed and is fail: "), "{said}");
    assert!(said.contains("B proves less than A, in 2 ways"), "{said}");
    let (code, said) = diff(&[passed, passed]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("B proves no less than A"), "{said}");
    let (code, said) = diff(&[&failed, passed]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("started before A"), "{said}");
    // drill.json turned to pass, as someone writing the reports' bucket could.
    let edited = copy(&failed, &scratch.path("edited-record"));
    let record = std::fs::read_to_string(edited.join("drill.json")).unwrap();
    std::fs::write(edited.join("drill.json"), record.replace("\"verdict\": \"fail\"", "\"verdict\": \"pass\""))
        .unwrap();
    let (code, said) = diff(&[passed, &edited]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("does not verify against the allowed signers"), "{said}");
    assert!(said.contains("drill.json was changed after the drill was signed"), "{said}");

    a_failed_drill_is_acknowledged_and_its_verdict_stays(scratch, passed, &failed, key_text, allowed);
}

/// `pgdrill ack`: the failed drill acknowledged (signed), which `pgdrill verify` and OpenSSH
/// check and say; its verdict and `report diff` unchanged. An acknowledgement copied to another
/// drill's folder, or unsigned against allowed signers, does not hold.
fn a_failed_drill_is_acknowledged_and_its_verdict_stays(
    scratch: &Scratch,
    passed: &Path,
    failed: &Path,
    key_text: &str,
    allowed: &Path,
) {
    let key = scratch.write("ack-signing-key", key_text);
    let ack = |dir: &Path, key: Option<&Path>| {
        let mut command = Command::new(crate::util::pgdrill_bin());
        command.arg("ack").arg(dir).args([
            "--by",
            "ana@example.com",
            "--note",
            "INC-42: the check's expected count was wrong",
        ]);
        if let Some(key) = key {
            command.arg("--signing-key").arg(key);
        }
        let output = command.output().unwrap();
        (output.status.code(), text(&output))
    };
    let unsigned = copy(failed, &scratch.path("acked-unsigned"));
    let record_before = std::fs::read(failed.join("drill.json")).unwrap();
    let (code, said) = ack(failed, Some(&key));
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("(its verdict, fail, stays)") && said.contains("signed by key SHA256:"), "{said}");
    assert_eq!(std::fs::read(failed.join("drill.json")).unwrap(), record_before, "the record is untouched");
    let verified = pgdrill(&["verify", "--allowed-signers", allowed.to_str().unwrap()], failed);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    assert!(
        text(&verified).contains("acknowledged: acks/ack-")
            && text(&verified).contains("by ana@example.com at ")
            && text(&verified).contains("INC-42: the check's expected count was wrong"),
        "{}",
        text(&verified)
    );
    let acks = failed.join("acks");
    let mut names = std::fs::read_dir(&acks).unwrap().flatten().map(|e| e.file_name().into_string().unwrap());
    let name = names.find(|n| n.ends_with(".intoto.json")).unwrap();
    let ssh = ssh_verify_file(&acks, &name, allowed);
    assert!(ssh.status.success(), "ssh-keygen -Y verify of the acknowledgement: {}", text(&ssh));
    let (code, said) = {
        let output =
            Command::new(crate::util::pgdrill_bin()).args(["report", "diff"]).arg(passed).arg(failed).output().unwrap();
        (output.status.code(), text(&output))
    };
    assert_eq!(code, Some(1), "still worse: {said}");

    // Copied beside another drill, it is about another record; unsigned, nothing vouches for it.
    let elsewhere = copy(passed, &scratch.path("acked-elsewhere"));
    copy(&acks, &elsewhere.join("acks"));
    let caught = pgdrill(&["verify"], &elsewhere);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    assert!(text(&caught).contains("is about another drill.json than this folder's"), "{}", text(&caught));
    assert_eq!(ack(&unsigned, None).0, Some(0));
    let caught = pgdrill(&["verify", "--allowed-signers", allowed.to_str().unwrap()], &unsigned);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    assert!(text(&caught).contains("it is not signed: nothing proves who wrote it"), "{}", text(&caught));
}

#[test]
fn a_key_that_cannot_sign_fails_the_command_and_the_reports_say_they_are_unsigned() {
    let scratch = Scratch::new();
    // A drill that fails fast (no backup), with a signing key that is not one.
    let scenario = scratch.scenario("nobackup.toml", "name = \"unsigned\"\n[source]\npath = \"missing.sql\"\n");
    let garbage = "not-a-key-but-a-secret-7f3a9c";
    let drill = scratch.drill_env(&scenario, &[], &[("PGDRILL_SIGNING_KEY".into(), garbage.into())]);
    assert_eq!(drill.code, Some(2), "{drill:?}");
    assert!(drill.stderr.contains("the signing key in PGDRILL_SIGNING_KEY is not an OpenSSH private key"), "{drill:?}");
    assert!(drill.stderr.contains("the reports are not signed"), "{drill:?}");
    for name in ["report.md", "drill.json", "junit.xml", "MANIFEST.sha256"] {
        assert!(drill.out.join(name).is_file(), "{name} was not written\n{drill:?}");
    }
    assert!(!drill.out.join("evidence.intoto.json").exists() && !drill.out.join("evidence.intoto.json.sig").exists());
    assert!(!drill.out.join("test-result.intoto.json.sig").exists());
    let signature = drill.record().signature.clone().expect("drill.json says why it is not signed");
    assert!(signature.signed_by.is_none() && signature.unsigned.unwrap().contains("not an OpenSSH private key"));
    assert!(drill.report("report.md").contains("**not signed**: the signing key in PGDRILL_SIGNING_KEY"), "{drill:?}");
    for file in files_under(scratch.dir.path()) {
        assert!(!std::fs::read_to_string(&file).unwrap_or_default().contains(garbage), "{}", file.display());
    }
    assert!(!drill.stdout.contains(garbage) && !drill.stderr.contains(garbage), "{drill:?}");

    // An encrypted key: refused without its passphrase, signs with it (and ssh-keygen agrees).
    let (key, public, fingerprint) = keygen(scratch.dir.path(), "locked", "correct horse");
    let flag = ["--signing-key".to_owned(), key.display().to_string()];
    let drill = scratch.drill_env(&scenario, &flag, &[]);
    assert_eq!(drill.code, Some(2), "{drill:?}");
    assert!(drill.stderr.contains("is encrypted: set PGDRILL_SIGNING_KEY_PASSPHRASE"), "{drill:?}");
    let passphrase = [("PGDRILL_SIGNING_KEY_PASSPHRASE".to_owned(), "correct horse".to_owned())];
    let drill = scratch.drill_env(&scenario, &flag, &passphrase);
    assert_eq!(drill.code, Some(1), "the drill fails (no backup) and is signed\n{drill:?}");
    assert_eq!(drill.record().signature.as_ref().and_then(|s| s.signed_by.clone()), Some(fingerprint), "{drill:?}");
    let allowed = scratch.write("allowed_signers", format!("{IDENTITY} {public}\n"));
    let ssh = ssh_verify(&drill.out, &allowed);
    assert!(ssh.status.success(), "{}", text(&ssh));

    // ECDSA and RSA keys sign as well (RSA as rsa-sha2-512).
    for kind in ["ecdsa", "rsa"] {
        let (key, public, fingerprint) = keygen_typed(scratch.dir.path(), kind, kind, "");
        let drill =
            scratch.drill_env(&scenario, &[], &[("PGDRILL_SIGNING_KEY_FILE".into(), key.display().to_string())]);
        assert_eq!(drill.record().signature.as_ref().and_then(|s| s.signed_by.clone()), Some(fingerprint), "{drill:?}");
        let allowed = scratch.write(&format!("allowed_{kind}"), format!("{IDENTITY} {public}\n"));
        let ssh = ssh_verify(&drill.out, &allowed);
        assert!(ssh.status.success(), "{kind}: {}", text(&ssh));
    }
}
