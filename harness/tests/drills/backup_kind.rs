//! A backup's kind against the scenario's history (issue 39): dumps made by pg_dump in a source
//! container, drilled one after the other by one scenario (its history beside the reports). A
//! backup of another format, content or database, and one that stopped being encrypted, fail in
//! verify naming the change, against the kind the last accepted drill recorded (a refused drill
//! records none, so drilling again changes nothing); the same change listed under `[source]
//! changed` passes, its reason in the verify summary; the same kind twice passes silently. A
//! backup named with `run --backup` is not compared, and leaves the scenario's kind as it was.

use std::path::{Path, PathBuf};

use pgdrill::outcome::{Phase, PhaseStatus};

use crate::source_server::SourceServer;
use crate::util::{Drill, Scratch};

/// A source server with three rows in `books.public.ledger` and a database `shop`, whose
/// pg_dump writes into its `dumps` folder.
fn source() -> SourceServer {
    let server = SourceServer::start("kinds", &pgdrill::scenario::project_image(17), &["dumps"], &[], &[]);
    server.psql("INSERT INTO public.ledger (id, batch) VALUES (1, 'a'), (2, 'a'), (3, 'b')").unwrap();
    server.psql_in("postgres", "CREATE DATABASE shop").unwrap();
    server.psql_in("shop", "CREATE TABLE public.orders (id int PRIMARY KEY)").unwrap();
    server
}

/// `pg_dump args` in the source, written to `file` in its dumps folder.
fn dump(server: &SourceServer, file: &str, args: &[&str]) -> PathBuf {
    let inside = format!("/dumps/{file}");
    server.exec(&[&["pg_dump", "-U", "postgres", "-f", &inside][..], args].concat());
    server.dir.path().join("dumps").join(file)
}

/// The scenario `name`, drilling `backup` into `books` with `source` more of `[source]`.
fn scenario(scratch: &Scratch, name: &str, backup: &Path, source: &str) -> PathBuf {
    scenario_in(scratch, name, name, backup, source)
}

/// [`scenario`], written to `file.toml`: one scenario's several files, drilled at once.
fn scenario_in(scratch: &Scratch, file: &str, name: &str, backup: &Path, source: &str) -> PathBuf {
    scratch.scenario(
        &format!("{file}.toml"),
        &format!(
            "name = \"{name}\"\n[source]\npath = \"{}\"\n{source}\n[target]\ndatabase = \"books\"\n\
             [[checks.sql]]\nname = \"the ledger\"\nquery = \"SELECT count(*) FROM public.ledger\"\nexpect = 3\n",
            backup.display()
        ),
    )
}

fn passed(drill: &Drill) -> &Drill {
    assert_eq!(drill.code, Some(0), "{drill:?}");
    drill
}

/// The drill failed in verify saying `says`, each, about the drill `since`.
fn refused(drill: &Drill, since: &str, says: &[&str]) {
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Skipped, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    eprintln!("verify: {error}");
    assert!(error.starts_with(&format!("the backup changed kind since drill {since} (")), "{error}");
    for said in says {
        assert!(error.contains(said), "`{said}`: {error}");
    }
    assert!(
        error.contains("(hint: a change that was intended is said in the scenario: `[source] changed = [{ what"),
        "{error}"
    );
}

#[test]
fn a_dump_of_another_format_content_or_database_fails_in_verify_unless_the_scenario_intended_it() {
    let server = source();
    let scratch = Scratch::new();
    let custom = dump(&server, "books.dump", &["-Fc", "books"]);
    let plain = dump(&server, "books.sql", &["books"]);
    let schema_only = dump(&server, "schema.dump", &["-Fc", "--schema-only", "books"]);
    let data_only = dump(&server, "data.dump", &["-Fc", "--data-only", "books"]);
    let shop = dump(&server, "shop.dump", &["-Fc", "shop"]);
    let kinds = scenario(&scratch, "kinds", &custom, "");

    // The first drill compares with nothing, and records what it drilled.
    let first = scratch.drill(&kinds);
    passed(&first);
    let kind = first.record().backup.as_ref().and_then(|b| b.kind.clone()).expect("the backup's kind");
    assert_eq!(
        (kind.format.as_str(), kind.content.as_deref(), kind.database.as_deref(), kind.major, kind.encryption),
        ("custom", Some("full"), Some("books"), Some(17), None),
        "{first:?}"
    );
    let since = first.record().drill_id.clone();

    // pg_dump 15's dump of PostgreSQL 15 (the bundled fixture).
    let older = crate::util::fixture("prismeai-pg15.sql.gz");
    let changes = [
        (&plain, vec!["format custom → plain (another tool or format writes it"]),
        (&schema_only, vec!["content full → schema-only (the backup no longer holds the data)"]),
        (&data_only, vec!["content full → data-only (the backup no longer holds the schema)"]),
        (&shop, vec!["database books → shop (a dump of another database)"]),
        (
            &older,
            vec!["major 17 → 15 (an older major than last time: is the backup job reading a server left behind?)"],
        ),
    ];
    std::thread::scope(|s| {
        for (n, (backup, says)) in changes.iter().enumerate() {
            let (scratch, since) = (&scratch, &since);
            s.spawn(move || {
                let kinds = scenario_in(scratch, &format!("kinds-{n}"), "kinds", backup, "");
                refused(&scratch.drill(&kinds), since, says);
            });
        }
        // `--out DIR` without `--history` keeps the history in DIR: drills of the scenario into
        // unrelated folders (`--out "$(mktemp -d)"`) compare with nothing, whatever they drill.
        s.spawn(|| {
            let apart = scenario_in(&scratch, "kinds-apart", "kinds", &plain, "");
            let out = scratch.path("apart/run");
            let run = [apart.display().to_string(), "--out".into(), out.display().to_string()];
            let output = crate::fleet_gate::pgdrill(&[&["run"], &run.each_ref().map(String::as_str)[..]].concat(), &[]);
            let drill = Drill::from_output(out.clone(), &output);
            assert!(passed(&drill).stdout.contains(&format!("history: {}", out.join("history.jsonl").display())));
            assert!(!scratch.path("apart/history.jsonl").exists(), "{drill:?}");
        });
    });
    // A backup named on the command line is drilled as it is: its kind is neither compared with
    // the scenario's drills nor kept for the next (which still compares with the custom dump).
    let given = scratch.drill_with(&kinds, &["--backup".into(), plain.display().to_string()]);
    let verify = passed(&given).phase_summary(Phase::Verify);
    assert!(
        verify.contains("; named on the command line: its kind is not compared with the scenario's drills"),
        "{verify}"
    );
    assert!(given.record().backup.as_ref().is_some_and(|b| b.given), "{given:?}");
    refused(
        &scratch.drill(&scenario_in(&scratch, "kinds-again", "kinds", &shop, "")),
        &since,
        &["database books → shop"],
    );

    // Said in the scenario: the plain dump passes, the reason in the verify summary; it is the
    // kind the next drill compares with.
    let intended =
        "changed = [{ what = \"format\", to = \"plain\", reason = \"the nightly job writes SQL since 2026-11-20\" }]";
    let drill = scratch.drill(&scenario(&scratch, "kinds", &plain, intended));
    let verify = passed(&drill).phase_summary(Phase::Verify);
    eprintln!("verify: {verify}");
    assert!(verify.contains(&format!("; changed kind since drill {since} (")), "{verify}");
    assert!(
        verify
            .contains("): format custom → plain, as the scenario says (the nightly job writes SQL since 2026-11-20);"),
        "{verify}"
    );
    assert!(drill.report("report.md").contains("as the scenario says (the nightly job writes SQL since 2026-11-20)"));
    // The same kind twice: nothing to say.
    let drill = scratch.drill(&scenario(&scratch, "kinds", &plain, ""));
    assert!(!passed(&drill).phase_summary(Phase::Verify).contains("changed kind"), "{drill:?}");
}

#[test]
fn a_dump_that_stopped_being_encrypted_fails_in_verify_unless_the_scenario_intended_it() {
    let server = source();
    let scratch = Scratch::new();
    let plain = dump(&server, "books.sql", &["books"]);
    let key = scratch.path("escrow.key");
    let made = std::process::Command::new("age-keygen").arg("-o").arg(&key).output().expect("age-keygen runs");
    assert!(made.status.success(), "{made:?}");
    let recipient = std::process::Command::new("age-keygen").arg("-y").arg(&key).output().unwrap();
    let recipient = String::from_utf8(recipient.stdout).unwrap();
    let sealed = scratch.path("books.sql.age");
    let encrypted = std::process::Command::new("age")
        .args(["-r", recipient.trim(), "-o"])
        .arg(&sealed)
        .arg(&plain)
        .output()
        .expect("age runs");
    assert!(encrypted.status.success(), "{encrypted:?}");
    let keys = format!("decrypt = [{{ identity_file = \"{}\" }}]", key.display());

    let first = scratch.drill(&scenario(&scratch, "sealed", &sealed, &keys));
    let kind = passed(&first).record().backup.as_ref().and_then(|b| b.kind.clone()).expect("the backup's kind");
    assert_eq!((kind.format.as_str(), kind.encryption.as_deref()), ("plain", Some("age")), "{first:?}");
    // The same dump in the clear, the scenario's key still listed: it opens nothing, and a drill
    // that did not compare would pass.
    let clear = scratch.drill(&scenario(&scratch, "sealed", &plain, &keys));
    refused(
        &clear,
        &first.record().drill_id,
        &["encryption age → none (a backup that stopped being encrypted lies in the clear wherever its copies go)"],
    );
    let intended = format!(
        "{keys}\nchanged = [{{ what = \"encryption\", to = \"none\", reason = \"the bucket encrypts at rest since 2026-11-20\" }}]"
    );
    let drill = scratch.drill(&scenario(&scratch, "sealed", &plain, &intended));
    let verify = passed(&drill).phase_summary(Phase::Verify);
    eprintln!("verify: {verify}");
    assert!(
        verify.contains("encryption age → none, as the scenario says (the bucket encrypts at rest since 2026-11-20);"),
        "{verify}"
    );
    // Encrypted again: nothing lost, said, and the drill passes.
    let drill = scratch.drill(&scenario(&scratch, "sealed", &sealed, &keys));
    let verify = passed(&drill).phase_summary(Phase::Verify);
    eprintln!("verify: {verify}");
    assert!(verify.contains("encryption none → age (encrypted now: nothing lost);"), "{verify}");
}
