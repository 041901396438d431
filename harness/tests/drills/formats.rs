//! Every pg_dump format: plain SQL (uncompressed, gzip, zstd) restored by pgdrill; custom,
//! directory and tar archives restored by the target's own pg_restore.

use std::io::Write;

use pgdrill::Verdict;
use pgdrill::outcome::{Phase, PhaseStatus};
use rstest::rstest;

use crate::util::{Scratch, fixture, fixture_text, root};

/// The Prisme.ai scenario (row counts against its baseline and the dump, indexes, roles,
/// schemas) on the same database in each archive format.
#[rstest]
#[case::custom("prismeai.dump", "custom")]
#[case::directory("prismeai.dir", "directory")]
#[case::tar("prismeai.tar", "tar")]
fn archives_restore_with_the_targets_pg_restore(#[case] file: &str, #[case] format: &str) {
    let scratch = Scratch::new();
    let args = ["--backup".to_owned(), fixture(file).display().to_string()];
    let drill = scratch.drill_with(&root().join("scenarios/prismeai.toml"), &args);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let record = drill.record();
    assert_eq!(record.backup.as_ref().unwrap().format, format);
    let taken_from = record.backup.as_ref().and_then(|b| b.taken_at_from.as_deref());
    assert_eq!(taken_from, Some("the archive's header (pg_dump's clock, read as UTC)"), "{drill:?}");
    // Not encrypted, it is verified first: the target's pg_restore -j reads the file itself. A
    // custom archive's data is read and counted by verify, and preflight's pg_restore writes
    // the rest of its SQL only.
    let scanned = match format {
        "custom" => "archive's SQL read but for its tables' rows, which verify read: ",
        _ => "archive read whole: ",
    };
    assert!(drill.phase_summary(Phase::Preflight).contains(scanned), "{drill:?}");
    assert!(drill.phase_summary(Phase::Verify).contains("read whole before its restore"), "{drill:?}");
    let dump_rows =
        record.checks.iter().find(|c| c.id == "row_counts/every table in the dump").expect("dump row counts");
    assert_eq!(dump_rows.verdict, Verdict::Pass);
    assert!(dump_rows.expected.starts_with("897 rows in 6 tables"), "{}", dump_rows.expected);
}

#[rstest]
#[case::uncompressed("plain.sql")]
#[case::zstd("plain.sql.zst")]
fn plain_dumps_uncompressed_and_zstd(#[case] name: &str) {
    let scratch = Scratch::new();
    let text = fixture_text("prismeai.sql.gz");
    let bytes = if name.ends_with(".zst") { zstd::encode_all(text.as_bytes(), 3).unwrap() } else { text.into_bytes() };
    let path = scratch.write(name, bytes);
    let args = ["--backup".to_owned(), path.display().to_string()];
    let drill = scratch.drill_with(&root().join("scenarios/prismeai.toml"), &args);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let compression = &drill.record().backup.as_ref().unwrap().compression;
    assert_eq!(compression, if name.ends_with(".zst") { "zstd" } else { "none" });
    let summary = drill.phase_summary(Phase::Verify);
    let said =
        if name.ends_with(".zst") { ", zstd plain dump from PostgreSQL" } else { ", plain dump from PostgreSQL" };
    assert!(summary.contains(said) && !summary.contains("none"), "{summary}");
}

#[test]
fn a_custom_archive_cut_short_fails_before_the_restore() {
    let scratch = Scratch::new();
    let bytes = std::fs::read(fixture("prismeai.dump")).unwrap();
    let mut file = std::fs::File::create(scratch.path("cut.dump")).unwrap();
    file.write_all(&bytes[..bytes.len() * 2 / 3]).unwrap();
    let args = ["--backup".to_owned(), scratch.path("cut.dump").display().to_string()];
    let drill = scratch.drill_with(&root().join("scenarios/prismeai.toml"), &args);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let said = drill.phase_error(Phase::Verify);
    assert!(said.starts_with("the custom-format archive is damaged: ") && said.contains("cut short"), "{drill:?}");
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Skipped);
}

/// Archives as root keeps them (the folder 0700, the file 0600, owned by root): the target's
/// server, which runs unprivileged and is given no capability, cannot read them, so pgdrill
/// reads a custom or tar archive itself and feeds it to pg_restore's standard input; a
/// directory-format archive, which pg_restore reads as a folder, fails saying what to change.
#[test]
fn archives_only_root_may_read_restore_through_pg_restores_input() {
    let scratch = Scratch::new();
    let private = scratch.path("root-only");
    std::fs::create_dir_all(&private).unwrap();
    for file in ["prismeai.dump", "prismeai.tar"] {
        std::fs::copy(fixture(file), private.join(file)).unwrap();
    }
    let copied =
        std::process::Command::new("cp").arg("-r").arg(fixture("prismeai.dir")).arg(&private).status().unwrap();
    assert!(copied.success());
    if !crate::util::as_root_keeps_it(&private) {
        return;
    }
    for file in ["prismeai.dump", "prismeai.tar"] {
        // A history of its own each: a scenario whose backup changes format fails.
        let scratch = Scratch::new();
        let args = ["--backup".to_owned(), private.join(file).display().to_string()];
        let drill = scratch.drill_with(&root().join("scenarios/prismeai.toml"), &args);
        assert_eq!(drill.code, Some(0), "{file}: {drill:?}");
        assert!(drill.phase_summary(Phase::Preflight).contains("archive read whole: "), "{drill:?}");
        drill.assert_reports_and_no_leftovers();
    }
    let args = ["--backup".to_owned(), private.join("prismeai.dir").display().to_string()];
    let other = Scratch::new();
    let drill = other.drill_with(&root().join("scenarios/prismeai.toml"), &args);
    drill.assert_failed_cleanly();
    assert!(drill.phase_error(Phase::Provision).contains("cannot read"), "{drill:?}");
}
