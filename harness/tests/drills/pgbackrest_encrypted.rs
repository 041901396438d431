//! Encrypted pgBackRest repositories (`repo1-cipher-type=aes-256-cbc`, lz4 WAL), made by the
//! source's own pgBackRest (`crate::pgbackrest::PgBackRestSource`, with the ledger in a
//! tablespace): drilled from this machine and from S3, with the passphrase in an environment
//! variable, or with two copies of it (`[source] decrypt`, an escrow's), each proven to open the
//! repository and listed by where it is, never by its value; a wrong one, one of two wrong, and
//! none at all fail in verify, naming what is wrong.

use pgdrill::outcome::{Phase, PhaseStatus};

use crate::pgbackrest::{PgBackRestSource, STANZA, copy_repo, largest_file_of_tablespace, located, scenario};
use crate::util::{Drill, Scratch};

/// The passphrase of the encrypted repository: in the source's own configuration, and for the
/// drill in an environment variable or a file only.
const PASSPHRASE: &str = "the-drills-repository-passphrase-7c1e";

/// The variable the drills read the passphrase from.
const VAR: &str = "PGDRILL_TEST_CIPHER_PASS";

fn env(pass: &str) -> Vec<(String, String)> {
    vec![(VAR.to_owned(), pass.to_owned())]
}

/// The passphrase is nowhere: not on the console, not in a report, not in any file the drill
/// wrote.
fn assert_never_shown(drill: &Drill) {
    assert!(!drill.stdout.contains(PASSPHRASE) && !drill.stderr.contains(PASSPHRASE));
    for file in crate::util::files_under(&drill.out) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(PASSPHRASE), "{}", file.display());
    }
}

#[test]
fn an_encrypted_repository_with_lz4_wal_recovers_with_each_passphrase_proven_and_never_shows_one() {
    let options = format!("repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={PASSPHRASE}\ncompress-type=lz4\n");
    let source = PgBackRestSource::make_with(pgdrill::scenario::default_image(), &options);
    let scratch = Scratch::new();
    // What pgBackRest wrote: every file encrypted (OpenSSL's salted format), and the segments'
    // names say lz4.
    let info = std::fs::read(source.repo().join(format!("backup/{STANZA}/backup.info"))).unwrap();
    assert!(info.starts_with(b"Salted__"), "an encrypted repository");
    let segments = crate::util::files_under(&source.repo().join(format!("archive/{STANZA}")));
    assert!(segments.iter().any(|p| p.to_string_lossy().ends_with(".lz4")), "lz4 segments: {segments:?}");
    let at = format!(
        "[recovery]\ntarget_time = \"{}\"\nwal_window = \"16MB\"\n\n[[checks.point_in_time]]\n\
         present = \"SELECT count(*) = {} FROM public.ledger WHERE batch = 'before'\"\n\
         absent = \"SELECT EXISTS (SELECT 1 FROM public.ledger WHERE batch = 'after')\"",
        source.target_time, source.before
    );
    let rows = (source.before, 0);
    let one = format!("cipher_pass_env = \"{VAR}\"");
    let drill_with = |keys: &str, pass: &str| {
        scratch.drill_env(&scenario(&scratch, &source.repo(), keys, &at, rows, &source.oid), &[], &env(pass))
    };

    // Two copies of the passphrase, in the environment and in an escrow's file: the drill opens
    // the repository with the first, and proves the second opens it too.
    let escrow = scratch.write("escrow/repository-pass", format!("{PASSPHRASE}\n"));
    let two = |file: &std::path::Path| {
        format!("decrypt = [{{ passphrase_env = \"{VAR}\" }}, {{ passphrase_file = \"{}\" }}]", file.display())
    };
    let drill = drill_with(&two(&escrow), PASSPHRASE);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.starts_with("pgBackRest set "), "{verify}");
    let oid = &source.oid;
    assert!(verify.contains(&format!("(tablespace {oid} into pg_tblspc/{oid})")), "{verify}");
    assert!(
        verify.contains("the repository is encrypted (aes-256-cbc), opened by each of its 2 passphrases"),
        "{verify}"
    );
    assert!(drill.phase_summary(Phase::Restore).starts_with("recovered to recovery_target_time "), "{drill:?}");
    let backup = drill.record().backup.clone().unwrap();
    assert_eq!(backup.encryption.as_deref(), Some("pgBackRest repository cipher (aes-256-cbc)"), "{drill:?}");
    let keys = [
        format!("the passphrase from ${VAR} (1 of 2)"),
        format!("the passphrase from file {} (2 of 2)", escrow.display()),
    ];
    assert_eq!(backup.keys, keys, "{drill:?}");
    let report = drill.report("report.md");
    assert!(keys.iter().all(|key| report.contains(key.as_str())), "report.md names each passphrase\n{report}");
    assert_never_shown(&drill);
    drill.assert_reports_and_no_leftovers();

    // One of the two is not the repository's: verify names it, and the one that opens it.
    let wrong = scratch.write("escrow/stale-pass", "not-it\n");
    let drill = drill_with(&two(&wrong), PASSPHRASE);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    let named = format!(
        "1 of the 2 passphrases does not open the encrypted repository: the passphrase from file {} (2 of 2) does not open it: pgBackRest cannot decrypt `backup/{STANZA}/backup.info` with it",
        wrong.display()
    );
    assert!(error.contains(&named), "{error}");
    assert!(error.contains(&format!("(it opens with the passphrase from ${VAR} (1 of 2))")), "{error}");
    assert!(!error.contains("not-it"), "{error}");
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Skipped, "{drill:?}");

    // A wrong passphrase: pgBackRest reads garbage, which verify says before anything starts.
    let drill = drill_with(&one, "not-it");
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(
        error.contains("pgBackRest cannot decrypt `backup/drill/backup.info` of the encrypted repository"),
        "{error}"
    );
    assert!(!error.contains("not-it"), "{error}");

    // A file of the tablespace lost from the repository: pgBackRest stops restoring the set,
    // which verify says, naming the file.
    let newest = source.labels.last().unwrap();
    let damaged = copy_repo(&scratch, &source.repo(), "lost-tablespace");
    let victim = largest_file_of_tablespace(&damaged, newest.split('_').next().unwrap(), oid);
    std::fs::remove_file(&victim).unwrap();
    let drill = scratch.drill_env(&scenario(&scratch, &damaged, &one, &at, rows, oid), &[], &env(PASSPHRASE));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("pgBackRest could not restore set "), "{error}");
    assert!(error.contains(&format!("pg_tblspc/{oid}/")), "{error}");

    // No passphrase at all: the scenario is told where to give it.
    let drill = drill_with("", PASSPHRASE);
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    assert!(
        error.contains("is an encrypted pgBackRest repository: give its passphrase with `[source] cipher_pass_env`"),
        "{error}"
    );

    // The same repository in S3, copied whole (its backup.info is read by pgBackRest only), its
    // passphrase from the environment; and with a wrong one, the same failure in verify.
    let s3 = crate::servers::S3Server::start();
    s3.put_folders("encrypted", &[("repo", &source.repo())]);
    let location = format!("s3 = \"s3://encrypted/repo/\"\nendpoint = \"{}\"\nregion = \"us-east-1\"", s3.endpoint);
    let in_s3 = located(&scratch, &location, &one, &at, rows, &source.oid);
    let drill = scratch.drill_env(&in_s3, &[], &[s3.env(), env(PASSPHRASE)].concat());
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(drill.phase_summary(Phase::Verify).contains("opened by its passphrase"), "{drill:?}");
    assert_eq!(drill.record().backup.clone().unwrap().keys, [format!("the passphrase from ${VAR}")], "{drill:?}");
    assert_never_shown(&drill);
    let drill = scratch.drill_env(&in_s3, &[], &[s3.env(), env("not-it")].concat());
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(
        error.contains("pgBackRest cannot decrypt `backup/drill/backup.info` of the encrypted repository"),
        "{error}"
    );
}
