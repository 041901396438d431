//! One read of a custom or tar archive file (an encrypted one's default, any with `verify =
//! "one-pass"`): pgdrill reads it into the target's `pg_restore -f -`, verifying its structure
//! and digest as it goes, and pg_restore's SQL takes a plain dump's way to the server. Archives made by the real pg_dump; the hostile ones have a row of theirs
//! rewritten in place (same length: the archive still reads) to end the table's rows and run a
//! shell command, which `psql -f` of pg_restore's SQL would run. Read once, the restore refuses
//! it before it reaches the server; verified first, preflight does.

use std::path::{Path, PathBuf};

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::util::{Drill, Scratch};

/// A row's text the hostile archives rewrite.
const PLACEHOLDER_LEN: usize = 200;

const MAKE: &str = r#"createdb items
psql -q -v ON_ERROR_STOP=1 -d items -c "CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL);
  INSERT INTO public.items SELECT i, 'item number ' || i FROM generate_series(1, 20000) i;
  INSERT INTO public.items VALUES (0, repeat('Q', 200));
  CREATE INDEX items_name ON public.items (name);" >/dev/null
pg_dump -Fc -Z0 -f /out/items.dump items
pg_dump -Ft -f /out/items.tar items
"#;

/// `items.dump` (custom, its data not compressed) and `items.tar`, made by PostgreSQL 17's own
/// server and pg_dump in a container of the project's image, into `out`.
fn archives(out: &Path) -> (PathBuf, PathBuf) {
    crate::util::with_server_in_image(17, out, MAKE);
    (out.join("items.dump"), out.join("items.tar"))
}

/// `archive` with its placeholder row rewritten to end the rows and run `touch marker`.
fn hostile(archive: &Path, marker: &Path) -> Vec<u8> {
    let bytes = std::fs::read(archive).unwrap();
    let placeholder = vec![b'Q'; PLACEHOLDER_LEN];
    let at = bytes.windows(PLACEHOLDER_LEN).position(|w| w == placeholder).expect("the placeholder row");
    let mut evil = format!("x\n\\.\n\\! touch {}", marker.display()).into_bytes();
    assert!(evil.len() <= PLACEHOLDER_LEN, "the marker's path is too long");
    evil.resize(PLACEHOLDER_LEN, b' ');
    [&bytes[..at], &evil[..], &bytes[at + PLACEHOLDER_LEN..]].concat()
}

fn drill(scratch: &Scratch, name: &str, bytes: &[u8], extra: &str, args: &[&str]) -> Drill {
    scratch.write(name, bytes);
    let scenario = scratch.scenario(
        &format!("{name}.toml"),
        &format!(
            "[source]\npath = \"{name}\"\nverify = \"one-pass\"\n{extra}[checks.row_counts]\nexpect_from_dump = true\n"
        ),
    );
    scratch.drill_with(&scenario, &args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
}

fn phase_times(drill: &Drill, phase: Phase) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let record = drill.record().phase(phase).unwrap_or_else(|| panic!("no {phase} phase\n{drill:?}"));
    let started = record.started_at.expect("started");
    (started, started + record.duration)
}

#[test]
fn archives_are_read_once_by_their_restore_and_a_hostile_one_is_refused_before_it_runs() {
    let scratch = Scratch::new();
    let (custom, tar) = archives(&scratch.path("made"));
    let marker = scratch.path("the-archive-ran");
    for (format, archive) in [("custom", &custom), ("tar", &tar)] {
        let good = std::fs::read(archive).unwrap();
        let name = format!("items.{format}");
        let one = drill(&scratch, &name, &good, "", &[]);
        assert_eq!(one.record().verdict, DrillVerdict::Pass, "{format}: {one:?}");
        assert!(one.phase_summary(Phase::Verify).ends_with("read once, by its restore"), "{one:?}");
        assert!(one.phase_summary(Phase::Restore).contains("20001 rows"), "{one:?}");
        // The verdict came from the restore's read: verify ended once the restore had read it.
        assert!(phase_times(&one, Phase::Verify).1 > phase_times(&one, Phase::Restore).0, "{one:?}");

        let evil = hostile(archive, &marker);
        let refused = "the meta-command `\\!` is refused";
        let failed = drill(&scratch, &format!("evil.{format}"), &evil, "", &[]);
        failed.assert_failed_cleanly();
        assert_eq!(failed.phase(Phase::Restore), PhaseStatus::Failed, "{format}: {failed:?}");
        assert!(failed.phase_error(Phase::Restore).contains(refused), "{format}: {failed:?}");
        assert_eq!(failed.phase(Phase::Checks), PhaseStatus::Skipped, "{format}: {failed:?}");
        assert!(!marker.exists(), "{format}: no meta-command of an archive ever runs");

        // Verified first (the default for an archive that is not encrypted), verify refuses the
        // custom archive (it reads its data itself: rows after COPY's end) and preflight the tar
        // (the target's pg_restore writes its SQL whole).
        let first = drill(&scratch, &format!("evil.{format}"), &evil, "", &["--verify-first"]);
        first.assert_failed_cleanly();
        let (phase, said) = match format {
            "custom" => (Phase::Verify, "goes on after COPY's end-of-data line `\\.` (after row "),
            _ => (Phase::Preflight, refused),
        };
        assert!(first.phase_error(phase).contains(said), "{format}: {first:?}");
        assert_eq!(first.phase(Phase::Restore), PhaseStatus::Skipped, "{format}: {first:?}");
        assert!(!marker.exists(), "{format}: no meta-command of an archive ever runs");
    }

    // Cut short: its verify and its restore fail with pg_restore's error.
    let good = std::fs::read(&custom).unwrap();
    let failed = drill(&scratch, "cut.dump", &good[..good.len() * 2 / 3], "", &[]);
    failed.assert_failed_cleanly();
    for phase in [Phase::Verify, Phase::Restore] {
        assert_eq!(failed.phase(phase), PhaseStatus::Failed, "{failed:?}");
        assert!(failed.phase_error(phase).contains("the archive cannot be read to its end"), "{failed:?}");
    }
    assert_eq!(failed.phase(Phase::Checks), PhaseStatus::Skipped, "{failed:?}");

    // Another digest than the scenario's: the restore read it, and is not trusted.
    let another = format!("sha256 = \"{}\"\n", "ab".repeat(32));
    let failed = drill(&scratch, "items.dump", &std::fs::read(&custom).unwrap(), &another, &[]);
    failed.assert_failed_cleanly();
    assert!(failed.phase_error(Phase::Verify).contains("sha256 mismatch"), "{failed:?}");
    assert_eq!(failed.phase(Phase::Restore), PhaseStatus::Failed, "{failed:?}");
    assert!(failed.phase_error(Phase::Restore).contains("does not verify"), "{failed:?}");
    assert_eq!(failed.phase(Phase::Checks), PhaseStatus::Skipped, "{failed:?}");
}
