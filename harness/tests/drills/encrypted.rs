//! Encrypted dumps, made by the real tools (`age`, `age-keygen`, `gpg`) from the bundled pg_dump
//! output: each envelope and key kind drills PASS, decrypted as a stream (no plaintext file
//! ever appears); a wrong key, another recipient, a tampered or truncated file and a missing key
//! fail in verify saying which; every escrowed key is proven, and one that no longer opens the
//! backup is named by its public identity, never its secret.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::servers::{HttpServer, S3Server};
use crate::util::{Drill, Scratch, fixture, fixture_text};

/// A line written into the dump only: found in a file on disk, it means plaintext landed there.
const MARKER: &str = "-- pgdrill-encrypted-test-plaintext-marker-7f3a9c";
const PASSPHRASE: &str = "correct horse battery staple escrow";
const PLUR: &str = "[[restore.roles]]\nname = \"plur_app\"\n[checks.row_counts]\nexpect_from_dump = true\n";

/// Keys and dumps made once for every test of the process.
struct Material {
    /// Where the keys are: removed when the process exits ([`removed_at_exit`]).
    dir: PathBuf,
    /// age identity files and their recipients.
    age_a: (PathBuf, String),
    age_b: (PathBuf, String),
    /// An OpenPGP secret key (armored), its fingerprint, and the home that encrypts to it.
    gpg_key: String,
    gpg_fingerprint: String,
    gpg_home: PathBuf,
    /// The plur dump as pg_dump wrote it (plain SQL) with [`MARKER`] in it, and gzipped.
    sql: Vec<u8>,
    gz: Vec<u8>,
}

fn run(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs (apt-get install age gnupg): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    let _ = feeder.join();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn material() -> &'static Material {
    static MATERIAL: OnceLock<Material> = OnceLock::new();
    MATERIAL.get_or_init(|| {
        let dir = removed_at_exit(tempfile::Builder::new().prefix("pgdrill-enc-").tempdir().unwrap());
        let dir = dir.as_path();
        let age_key = |name: &str| {
            let path = dir.join(name);
            run("age-keygen", &["-o", path.to_str().unwrap()], b"");
            let recipient = String::from_utf8(run("age-keygen", &["-y", path.to_str().unwrap()], b"")).unwrap();
            (path, recipient.trim().to_owned())
        };
        let gpg_home = dir.join("g");
        std::fs::create_dir(&gpg_home).unwrap();
        std::fs::set_permissions(&gpg_home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let home = gpg_home.to_str().unwrap();
        let gpg = |args: &[&str]| run("gpg", &[&["--homedir", home, "--batch", "--quiet"], args].concat(), b"");
        gpg(&["--passphrase", "", "--quick-gen-key", "Escrow <escrow@example.com>", "default", "default"]);
        gpg(&["--passphrase", "", "--quick-gen-key", "Other <other@example.com>", "default", "default"]);
        let listing = String::from_utf8(gpg(&["--with-colons", "--list-secret-keys"])).unwrap();
        let fingerprint = listing.lines().find_map(|l| l.strip_prefix("fpr:")).unwrap();
        let fingerprint = fingerprint.trim_matches(':').to_owned();
        let gpg_key = String::from_utf8(gpg(&["--armor", "--export-secret-keys", &fingerprint])).unwrap();
        stop_agent(&gpg_home);
        let text = fixture_text("plur.sql.gz");
        let complete = "-- PostgreSQL database dump complete";
        assert!(text.contains(complete));
        let sql = text.replacen(complete, &format!("{MARKER}\n{complete}"), 1).into_bytes();
        let gz = run("gzip", &["-c"], &sql);
        let (age_a, age_b) = (age_key("a.key"), age_key("b.key"));
        Material { age_a, age_b, gpg_key, gpg_fingerprint: fingerprint, gpg_home, sql, gz, dir: dir.to_owned() }
    })
}

/// The material's folder, kept until the process exits and removed then: a static is never
/// dropped, and nextest runs each test in a process of its own (each left its private keys in
/// the temporary folder).
fn removed_at_exit(dir: tempfile::TempDir) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    // Not async code: the process is exiting, and the folder holds a few keys.
    #[allow(clippy::disallowed_methods)]
    extern "C" fn remove() {
        if let Some(dir) = DIR.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    let path = dir.keep();
    if DIR.set(path.clone()).is_ok() {
        // SAFETY: `remove` is a plain function that only reads a set static and removes files.
        unsafe { libc::atexit(remove) };
    }
    path
}

/// `age` encrypting `input` to `recipients` (`-r`), armored with `-a`.
fn age_to(recipients: &[&str], armor: bool, input: &[u8]) -> Vec<u8> {
    let mut args: Vec<&str> = recipients.iter().flat_map(|r| ["-r", r]).collect();
    if armor {
        args.push("-a");
    }
    run("age", &args, input)
}

/// `age -p`, which reads its passphrase from a terminal: given one by `script`.
fn age_passphrase(input: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (plain, out) = (dir.path().join("in"), dir.path().join("out.age"));
    std::fs::write(&plain, input).unwrap();
    let command = format!("age -p -o {} {}", out.display(), plain.display());
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(400));
        writeln!(stdin, "{PASSPHRASE}").unwrap();
    }
    assert!(child.wait().unwrap().success());
    std::fs::read(&out).unwrap()
}

/// `gpg --encrypt` to the test key, or `gpg --symmetric` with [`PASSPHRASE`].
fn gpg_encrypt(symmetric: bool, armor: bool, input: &[u8]) -> Vec<u8> {
    gpg_encrypt_to("escrow@example.com", symmetric, armor, input)
}

fn gpg_encrypt_to(recipient: &str, symmetric: bool, armor: bool, input: &[u8]) -> Vec<u8> {
    let m = material();
    let mut args = vec!["--homedir", m.gpg_home.to_str().unwrap(), "--batch", "--quiet", "--trust-model", "always"];
    if armor {
        args.push("--armor");
    }
    if symmetric {
        args.extend(["--pinentry-mode", "loopback", "--passphrase", PASSPHRASE, "--symmetric"]);
    } else {
        args.extend(["-r", recipient, "--encrypt"]);
    }
    let encrypted = run("gpg", &args, input);
    stop_agent(&m.gpg_home);
    encrypted
}

/// Stops the agent gpg started for the test's home (the home outlives the test: it is static).
fn stop_agent(home: &Path) {
    let home = home.to_str().unwrap();
    run("gpgconf", &["--homedir", home, "--kill", "gpg-agent"], b"");
}

fn scenario(scratch: &Scratch, backup: &Path, keys: &str) -> PathBuf {
    let text = format!("name = \"encrypted\"\n[source]\npath = \"{}\"\n{keys}\n{PLUR}", backup.display());
    scratch.scenario("encrypted.toml", &text)
}

/// A drill of `bytes` with `keys` (the `decrypt = ...` line) and `env`, while a watcher looks
/// for the plaintext marker in every file under the scratch folder, which holds the drill's work
/// folder too (its `TMPDIR`).
fn drill_of(bytes: &[u8], keys: &str, env: &[(&str, &str)]) -> (Drill, Scratch) {
    let scratch = Scratch::new();
    let backup = scratch.write("backup.enc", bytes);
    let scenario = scenario(&scratch, &backup, keys);
    let drill = watched(&scratch, MARKER.as_bytes(), |env_tmp| {
        let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        env.push(env_tmp);
        scratch.drill_env(&scenario, &[], &env)
    });
    (drill, scratch)
}

/// Runs `drill` (given the `TMPDIR` to run with) while a watcher polls every file under the
/// scratch folder for [`MARKER`]; fails if one ever held it.
fn watched(scratch: &Scratch, marker: &[u8], drill: impl FnOnce((String, String)) -> Drill) -> Drill {
    let tmp = scratch.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| watch_for_plaintext(scratch.dir.path(), marker, &done));
        let drill = drill(("TMPDIR".into(), tmp.display().to_string()));
        done.store(true, Ordering::Relaxed);
        let found = watcher.join().unwrap();
        assert!(found.is_empty(), "plaintext on disk: {found:?}");
        drill
    })
}

/// Files holding `marker` under `dir`, polled until `done`.
fn watch_for_plaintext(dir: &Path, marker: &[u8], done: &AtomicBool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    loop {
        let last = done.load(Ordering::Relaxed);
        for file in crate::util::files_under(dir) {
            let Ok(bytes) = std::fs::read(&file) else { continue };
            if bytes.windows(marker.len()).any(|w| w == marker) && !found.contains(&file) {
                found.push(file);
            }
        }
        if last {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Nothing secret in the reports, stdout or stderr.
fn assert_no_secret(drill: &Drill) {
    let m = material();
    let mut secrets = vec![PASSPHRASE.to_owned()];
    for (file, _) in [&m.age_a, &m.age_b] {
        let text = std::fs::read_to_string(file).unwrap();
        secrets.extend(text.lines().filter(|l| l.starts_with("AGE-SECRET-KEY-")).map(String::from));
    }
    secrets.extend(m.gpg_key.lines().filter(|l| l.len() > 40 && !l.starts_with("-----")).map(String::from));
    let everything = format!("{}\n{}\n{}", drill.all_reports(), drill.stdout, drill.stderr);
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()), "a secret was shown\n{drill:?}");
    }
}

fn assert_passed(drill: &Drill, envelope: &str, keys: &[String]) {
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let backup = drill.record().backup.clone().unwrap();
    assert_eq!(backup.encryption.as_deref(), Some(envelope), "{drill:?}");
    assert_eq!(&backup.keys, keys, "{drill:?}");
    let summary = drill.phase_summary(Phase::Verify);
    assert!(summary.contains(&format!("{envelope}-encrypted, decrypted as read by ")), "{summary}");
    let report = drill.report("report.md");
    for key in keys {
        assert!(report.contains(key.as_str()), "report.md does not name {key}\n{report}");
    }
    assert_no_secret(drill);
}

fn assert_fails_in_verify(drill: &Drill, says: &[&str]) {
    assert_eq!(drill.record().verdict, DrillVerdict::Fail, "{drill:?}");
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    for said in says {
        assert!(error.contains(said), "verify's error does not say `{said}`: {error}");
    }
    assert_no_secret(drill);
}

fn identity_file(key: &(PathBuf, String)) -> String {
    format!("{{ identity_file = \"{}\" }}", key.0.display())
}

#[test]
fn age_to_a_recipient_gzip_dump_drills_as_a_stream() {
    let m = material();
    let encrypted = age_to(&[&m.age_a.1], false, &m.gz);
    let (drill, _scratch) = drill_of(&encrypted, &format!("decrypt = [{}]", identity_file(&m.age_a)), &[]);
    assert_passed(&drill, "age", &[format!("age identity {}", m.age_a.1)]);
    assert_eq!(drill.record().backup.as_ref().unwrap().compression, "gzip");
}

#[test]
fn age_with_a_passphrase_armored_plain_dump_drills() {
    let m = material();
    let encrypted = age_passphrase(&m.sql);
    let (drill, _scratch) = drill_of(
        &encrypted,
        "decrypt = [{ passphrase_env = \"DUMP_PASSPHRASE\" }]",
        &[("DUMP_PASSPHRASE", PASSPHRASE)],
    );
    assert_passed(&drill, "age", &["the passphrase from $DUMP_PASSPHRASE".to_owned()]);
    let armored = age_to(&[&m.age_a.1], true, &m.sql);
    let (drill, _scratch) = drill_of(&armored, &format!("decrypt = [{}]", identity_file(&m.age_a)), &[]);
    assert_passed(&drill, "age (armored)", &[format!("age identity {}", m.age_a.1)]);
}

#[test]
fn openpgp_public_key_and_symmetric_dumps_drill() {
    let m = material();
    let encrypted = gpg_encrypt(false, false, &m.gz);
    let (drill, _scratch) =
        drill_of(&encrypted, "decrypt = [{ identity_env = \"ESCROW_KEY\" }]", &[("ESCROW_KEY", &m.gpg_key)]);
    assert_passed(&drill, "OpenPGP", &[format!("OpenPGP key {}", m.gpg_fingerprint)]);
    let symmetric = gpg_encrypt(true, true, &m.sql);
    let scratch = Scratch::new();
    let passphrase = scratch.write("passphrase.txt", format!("{PASSPHRASE}\n"));
    let keys = format!("decrypt = [{{ passphrase_file = \"{}\" }}]", passphrase.display());
    let (drill, _scratch) = drill_of(&symmetric, &keys, &[]);
    assert_passed(&drill, "OpenPGP (armored)", &[format!("the passphrase from file {}", passphrase.display())]);
}

/// The team's case: two keys in escrow, the backup encrypted to A only. B is named, A is not.
#[test]
fn an_escrowed_key_that_no_longer_opens_the_backup_is_named() {
    let m = material();
    let encrypted = age_to(&[&m.age_a.1], false, &m.gz);
    let keys = format!("decrypt = [{}, {{ identity_env = \"ESCROW_B\" }}]", identity_file(&m.age_a));
    let b_secret = std::fs::read_to_string(&m.age_b.0).unwrap();
    let (drill, _scratch) = drill_of(&encrypted, &keys, &[("ESCROW_B", &b_secret)]);
    assert_fails_in_verify(&drill, &["1 of the 2 keys does not open the backup", &m.age_b.1, "another recipient"]);
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("it opens with age identity {}", m.age_a.1)), "{error}");
    // Encrypted to both, both are proven.
    let both = age_to(&[&m.age_a.1, &m.age_b.1], false, &m.gz);
    let (drill, _scratch) = drill_of(&both, &keys, &[("ESCROW_B", &b_secret)]);
    assert_passed(&drill, "age", &[format!("age identity {}", m.age_a.1), format!("age identity {}", m.age_b.1)]);
    // OpenPGP: one message for a key and a passphrase (gpg --encrypt --symmetric), both held.
    let home = m.gpg_home.to_str().unwrap();
    let args = ["--homedir", home, "--batch", "--quiet", "--trust-model", "always", "--pinentry-mode", "loopback"];
    let both =
        [&args[..], &["--passphrase", PASSPHRASE, "-r", "escrow@example.com", "--encrypt", "--symmetric"]].concat();
    let encrypted = run("gpg", &both, &m.gz);
    stop_agent(&m.gpg_home);
    let keys = "decrypt = [{ identity_env = \"ESCROW_KEY\" }, { passphrase_env = \"DUMP_PASSPHRASE\" }]";
    let env = [("ESCROW_KEY", m.gpg_key.as_str()), ("DUMP_PASSPHRASE", PASSPHRASE)];
    let (drill, _scratch) = drill_of(&encrypted, keys, &env);
    let proven = [format!("OpenPGP key {}", m.gpg_fingerprint), "the passphrase from $DUMP_PASSPHRASE".to_owned()];
    assert_passed(&drill, "OpenPGP", &proven);
}

#[test]
fn damaged_files_wrong_keys_and_no_key_fail_in_verify_saying_which() {
    let m = material();
    let age_file = age_to(&[&m.age_a.1], false, &m.sql);
    let gpg_file = gpg_encrypt(false, false, &m.sql);
    let mut tampered_age = age_file.clone();
    let at = tampered_age.len() / 2;
    tampered_age[at] ^= 0x01;
    let mut tampered_gpg = gpg_file.clone();
    let at = tampered_gpg.len() / 2;
    tampered_gpg[at] ^= 0x01;
    let a = format!("decrypt = [{}]", identity_file(&m.age_a));
    let b = format!("decrypt = [{}]", identity_file(&m.age_b));
    let gpg_key = "decrypt = [{ identity_env = \"ESCROW_KEY\" }]";
    let wrong_pass = "decrypt = [{ passphrase_env = \"DUMP_PASSPHRASE\" }]";
    let escrow = format!("OpenPGP key {} does not open the backup", m.gpg_fingerprint);
    let key_env = [("ESCROW_KEY", m.gpg_key.as_str()), ("DUMP_PASSPHRASE", "not the passphrase")];
    let cases: Vec<(&str, Vec<u8>, String, Vec<&str>)> = vec![
        ("age, another recipient", age_file.clone(), b.clone(), vec![&m.age_b.1, "another recipient"]),
        (
            "age, no key",
            age_file.clone(),
            String::new(),
            vec!["encrypted with age for 1 recipient (X25519)", "give its key"],
        ),
        (
            "age, tampered",
            tampered_age,
            a.clone(),
            vec!["age-encrypted backup is damaged", "authenticated decryption failed"],
        ),
        (
            "age, truncated",
            age_file[..age_file.len() - 40].to_vec(),
            a.clone(),
            vec!["age-encrypted backup is damaged"],
        ),
        ("age, a passphrase for a recipient's file", age_file.clone(), wrong_pass.into(), vec!["not to a passphrase"]),
        ("gpg, no key", gpg_file.clone(), String::new(), vec!["encrypted with OpenPGP for key IDs"]),
        ("gpg, an age key", gpg_file.clone(), b.clone(), vec!["an OpenPGP message, not an age file"]),
        (
            "gpg, another recipient",
            gpg_encrypt_to("other@example.com", false, false, &m.sql),
            gpg_key.into(),
            vec![&escrow, "another recipient"],
        ),
        ("gpg, tampered", tampered_gpg, gpg_key.into(), vec!["OpenPGP-encrypted backup is damaged"]),
        ("gpg, truncated", gpg_file[..gpg_file.len() / 2].to_vec(), gpg_key.into(), vec!["cut short"]),
        ("gpg, wrong passphrase", gpg_encrypt(true, false, &m.sql), wrong_pass.into(), vec!["wrong passphrase"]),
    ];
    // A few at a time: each drill waits mostly on its target's container.
    for chunk in cases.chunks(4) {
        std::thread::scope(|s| {
            for (what, bytes, keys, says) in chunk {
                let key_env = &key_env;
                s.spawn(move || {
                    let (drill, _scratch) = drill_of(bytes, keys, key_env);
                    eprintln!("{what}: {}", drill.phase_error(Phase::Verify));
                    assert_fails_in_verify(&drill, says);
                });
            }
        });
    }
    assert!(m.dir.is_dir());
}

/// Remote sources: the encrypted dump downloaded over HTTP and from S3 (both on loopback) and
/// decrypted as read, never in the clear in the download folder; and the newest of a folder's.
#[test]
fn encrypted_dumps_over_http_from_s3_and_in_a_folder_drill() {
    let m = material();
    let encrypted = age_to(&[&m.age_a.1], false, &m.gz);
    let server = HttpServer::start(encrypted.clone());
    let s3 = S3Server::start();
    s3.put("backups", &[("plur/plur.sql.gz.age", gpg_encrypt(false, false, &m.gz))]);
    let sources = [
        (format!("url = \"{}\"\ndecrypt = [{}]", server.url("/backups/plur.sql.gz"), identity_file(&m.age_a)), "age"),
        (
            format!(
                "s3 = \"s3://backups/plur/plur.sql.gz.age\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\ndecrypt = [{{ identity_env = \"ESCROW_KEY\" }}]",
                s3.endpoint
            ),
            "OpenPGP",
        ),
    ];
    // A folder of nightly encrypted dumps: the newest by its name's date is drilled (the older
    // one is for another recipient, and would fail).
    let folder = Scratch::new();
    folder.write("nightly/plur-2026-11-23.sql.gz.age", age_to(&[&m.age_b.1], false, &m.gz));
    folder.write("nightly/plur-2026-11-24.sql.gz.age", &encrypted);
    let sources = sources.into_iter().chain([(
        format!(
            "dir = \"{}\"\npattern = \"plur-{{date}}.sql.gz.age\"\ndecrypt = [{}]",
            folder.path("nightly").display(),
            identity_file(&m.age_a)
        ),
        "age",
    )]);
    for (source, envelope) in sources {
        let scratch = Scratch::new();
        let scenario = scratch.scenario("encrypted.toml", &format!("name = \"encrypted\"\n[source]\n{source}\n{PLUR}"));
        let mut env = s3.env();
        env.push(("ESCROW_KEY".into(), m.gpg_key.clone()));
        let drill = watched(&scratch, MARKER.as_bytes(), |tmp| {
            env.push(tmp);
            scratch.drill_env(&scenario, &[], &env)
        });
        let keys = drill.record().backup.as_ref().map(|b| b.keys.clone()).unwrap_or_default();
        assert_eq!(keys.len(), 1, "{drill:?}");
        assert_passed(&drill, envelope, &keys);
        if source.starts_with("dir") {
            let location = drill.record().backup.as_ref().map(|b| b.location.clone()).unwrap_or_default();
            assert!(location.ends_with("plur-2026-11-24.sql.gz.age"), "{location}");
        }
    }
}

/// `pg_dump -Fc | gpg --encrypt` and `pg_dump -Ft | age -r`: the archive decrypted into the
/// target's pg_restore on its stdin, its entries before its data read in preflight, and read
/// once, verified as its restore reads it.
#[test]
fn encrypted_custom_and_tar_archives_restore_through_pg_restores_stdin() {
    let m = material();
    let checks = "[[restore.roles]]\nname = \"prismeai_app\"\n[checks.row_counts]\nexpect_from_dump = true\n";
    let custom = std::fs::read(fixture("prismeai.dump")).unwrap();
    let tar = std::fs::read(fixture("prismeai.tar")).unwrap();
    let gpg_key = "decrypt = [{ identity_env = \"ESCROW_KEY\" }]".to_owned();
    let age_key = format!("decrypt = [{}]", identity_file(&m.age_a));
    for (plain, encrypted, keys, format, envelope) in [
        (&custom, gpg_encrypt(false, false, &custom), &gpg_key, "custom", "OpenPGP"),
        (&tar, age_to(&[&m.age_a.1], false, &tar), &age_key, "tar", "age"),
    ] {
        let scratch = Scratch::new();
        let backup = scratch.write("prismeai.enc", &encrypted);
        let text = format!(
            "name = \"encrypted\"\n[source]\npath = \"{}\"\n{keys}\n[target]\ndatabase = \"prismeai\"\n{checks}",
            backup.display()
        );
        let scenario = scratch.scenario("encrypted.toml", &text);
        // The archive's first bytes (its header: PGDMP, or tar's first block) mark its plaintext.
        let marker = &plain[..96];
        let env = [("ESCROW_KEY".to_owned(), m.gpg_key.clone())];
        let drill = watched(&scratch, marker, |tmp| scratch.drill_env(&scenario, &[], &[env[0].clone(), tmp]));
        let keys = drill.record().backup.as_ref().map(|b| b.keys.clone()).unwrap_or_default();
        assert_passed(&drill, envelope, &keys);
        assert_eq!(keys.len(), 1, "{drill:?}");
        assert_eq!(drill.record().backup.as_ref().unwrap().format, format);
        assert!(drill.phase_summary(Phase::Preflight).contains("archive's entries before its data read"), "{drill:?}");
        assert!(drill.phase_summary(Phase::Verify).ends_with("read once, by its restore"), "{drill:?}");
    }
}

/// On a local target, an encrypted custom archive (PostgreSQL 15's, for this machine's 15
/// binaries) is decrypted into the local pg_restore's stdin, never to disk.
#[test]
fn an_encrypted_archive_restores_through_a_local_pg_restores_stdin() {
    let m = material();
    // Made outside the watched folder: only the encrypted copy is the drill's.
    let made = Scratch::new();
    crate::majors::dumps_of(15, &made.path("pg15"));
    let custom = std::fs::read(made.path("pg15/prismeai.dump")).unwrap();
    let scratch = Scratch::new();
    let backup = scratch.write("prismeai.dump.age", age_to(&[&m.age_a.1], true, &custom));
    let text = format!(
        "name = \"encrypted-local\"\n[source]\npath = \"{}\"\ndecrypt = [{}]\n[target]\nkind = \"local\"\nbin_dir = \"/usr/lib/postgresql/15/bin\"\ndatabase = \"prismeai\"\n[[restore.roles]]\nname = \"prismeai_app\"\n[checks.row_counts]\nexpect_from_dump = true\n",
        backup.display(),
        identity_file(&m.age_a)
    );
    let scenario = scratch.scenario("encrypted-local.toml", &text);
    let drill = watched(&scratch, &custom[..96], |tmp| scratch.drill_env(&scenario, &[], &[tmp]));
    assert_passed(&drill, "age (armored)", &[format!("age identity {}", m.age_a.1)]);
    assert_eq!(drill.record().target.as_ref().map(|t| t.kind.as_str()), Some("local"), "{drill:?}");
    assert_eq!(drill.record().backup.as_ref().unwrap().format, "custom");
}

/// Keys as they are kept in escrow, under a passphrase of their own: an OpenPGP secret key
/// exported with its passphrase, an age identity file encrypted with `age -p`. Each opens the
/// backup with `key_passphrase_env`; without it, or with a wrong one, verify says so of that key.
#[test]
fn escrowed_keys_kept_under_their_own_passphrase_are_unlocked_and_proven() {
    const KEY_PASS: &str = "escrow vault passphrase 42";
    let m = material();
    let home = tempfile::Builder::new().prefix("pgdrill-gpgc").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(home.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let h = home.path().to_str().unwrap();
    let gpg = |args: &[&str]| {
        let base = ["--homedir", h, "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", KEY_PASS];
        run("gpg", &[&base[..], args].concat(), b"")
    };
    gpg(&["--quick-gen-key", "Escrow C <c@example.com>", "default", "default"]);
    let protected = String::from_utf8(gpg(&["--armor", "--export-secret-keys", "c@example.com"])).unwrap();
    let listing = String::from_utf8(gpg(&["--with-colons", "--list-secret-keys"])).unwrap();
    let fingerprint = listing.lines().find_map(|l| l.strip_prefix("fpr:")).unwrap().trim_matches(':').to_owned();
    let public = gpg(&["--armor", "--export", "c@example.com"]);
    stop_agent(home.path());
    // The dump is encrypted to C by a host that holds only C's public key.
    let sender = tempfile::Builder::new().prefix("pgdrill-gpgs").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(sender.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let s = sender.path().to_str().unwrap();
    run("gpg", &["--homedir", s, "--batch", "--quiet", "--import"], &public);
    let to_c = ["--homedir", s, "--batch", "--quiet", "--trust-model", "always", "-r", "c@example.com", "--encrypt"];
    let encrypted = run("gpg", &to_c, &m.gz);
    stop_agent(sender.path());

    let keys = "decrypt = [{ identity_env = \"ESCROW_C\", key_passphrase_env = \"ESCROW_C_PASS\" }]";
    let (drill, _s) = drill_of(&encrypted, keys, &[("ESCROW_C", &protected), ("ESCROW_C_PASS", KEY_PASS)]);
    assert_passed(&drill, "OpenPGP", &[format!("OpenPGP key {fingerprint}")]);
    assert!(!drill.all_reports().contains(KEY_PASS) && !drill.stdout.contains(KEY_PASS), "{drill:?}");
    let (drill, _s) = drill_of(&encrypted, "decrypt = [{ identity_env = \"ESCROW_C\" }]", &[("ESCROW_C", &protected)]);
    assert_fails_in_verify(&drill, &[&fingerprint, "protected by a passphrase: give it as key_passphrase_env"]);
    let (drill, _s) = drill_of(&encrypted, keys, &[("ESCROW_C", &protected), ("ESCROW_C_PASS", "not it")]);
    assert_fails_in_verify(
        &drill,
        &[&fingerprint, "key passphrase (key_passphrase_env or key_passphrase_file) does not unlock it"],
    );
    assert!(!drill.all_reports().contains("not it\n"), "{drill:?}");

    // age: the identity file encrypted with `age -p` (binary), the dump to its recipient.
    let scratch = Scratch::new();
    let locked = scratch.write("a.key.age", age_passphrase(&std::fs::read(&m.age_a.0).unwrap()));
    let encrypted = age_to(&[&m.age_a.1], false, &m.gz);
    let keys = format!("decrypt = [{{ identity_file = \"{}\", key_passphrase_env = \"A_PASS\" }}]", locked.display());
    let (drill, _s) = drill_of(&encrypted, &keys, &[("A_PASS", PASSPHRASE)]);
    assert_passed(&drill, "age", &[format!("age identity {}", m.age_a.1)]);
    let (drill, _s) = drill_of(&encrypted, &keys, &[("A_PASS", "not the passphrase")]);
    assert_fails_in_verify(&drill, &["the age identity in file", "does not open with its key passphrase"]);
    let bare = format!("decrypt = [{{ identity_file = \"{}\" }}]", locked.display());
    let (drill, _s) = drill_of(&encrypted, &bare, &[]);
    assert_fails_in_verify(&drill, &["is encrypted with a passphrase (`age -p`): give it as key_passphrase_env"]);
}
