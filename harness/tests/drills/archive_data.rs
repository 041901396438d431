//! A custom archive verified first has its data read by pgdrill (every block decompressed, each
//! table's rows counted), and preflight's pg_restore writes the rest of its SQL only: proven on
//! archives of the real pg_dump in each compression it writes (none, gzip, LZ4, zstd, and
//! PostgreSQL 15's older archive version), with large objects, `--inserts` data (SQL, which
//! pg_restore still writes for the scan) and values that hold `\.`; every table's rows are then
//! compared with the restored database's. A COPY statement that is not pg_dump's is refused
//! before any SQL runs.

use std::path::Path;

use pgdrill::Verdict;
use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::util::Scratch;

/// 20000 items, a note with a large object, and values a COPY line could be mistaken by: `\.`
/// alone, and a newline.
const MAKE: &str = r#"createdb shop
psql -q -v ON_ERROR_STOP=1 -d shop -c "CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL);
  INSERT INTO public.items SELECT i, 'item number ' || i FROM generate_series(1, 20000) i;
  CREATE TABLE public.notes (id integer PRIMARY KEY, body oid);
  INSERT INTO public.notes VALUES (1, lo_from_bytea(0, 'a large object'));
  CREATE TABLE public.odd (v text);
  INSERT INTO public.odd VALUES (E'\\\\.'), (E'two\nlines');" >/dev/null
"#;

/// The archives `dumps` (`name`, pg_dump options) of the database above, made by PostgreSQL
/// `major`'s own server and pg_dump in a container of the project's image, into `out`.
fn archives(out: &Path, major: u32, dumps: &[(&str, &str)]) {
    let mut script = MAKE.to_owned();
    for (name, options) in dumps {
        script.push_str(&format!("pg_dump -Fc {options} -f /out/{name} shop\n"));
    }
    crate::util::with_server_in_image(major, out, &script);
}

fn drill(scratch: &Scratch, archive: &Path) -> crate::util::Drill {
    let name = archive.file_name().unwrap().to_str().unwrap();
    let scenario = scratch.scenario(
        &format!("{name}.toml"),
        &format!("[source]\npath = \"{}\"\n[checks.row_counts]\nexpect_from_dump = true\n", archive.display()),
    );
    scratch.drill_with(&scenario, &[])
}

#[test]
fn a_custom_archives_data_is_read_by_verify_in_every_compression_and_its_rows_restored() {
    let scratch = Scratch::new();
    let made = scratch.path("made");
    let dumps = [
        ("none.dump", "-Z0"),
        ("gzip.dump", ""),
        ("lz4.dump", "-Z lz4"),
        ("zstd.dump", "-Z zstd"),
        ("inserts.dump", "--inserts"),
    ];
    archives(&made, 17, &dumps);
    archives(&made.join("15"), 15, &[("gzip-15.dump", "")]);
    let mut all: Vec<_> = dumps.iter().map(|(name, _)| made.join(name)).collect();
    all.push(made.join("15/gzip-15.dump"));
    for archive in &all {
        let name = archive.file_name().unwrap().to_str().unwrap();
        let done = drill(&scratch, archive);
        assert_eq!(done.record().verdict, DrillVerdict::Pass, "{name}: {done:?}");
        // 20000 items, 1 note, 2 odd values: as verify counted them, and as restored.
        // `--inserts` data is SQL: pg_restore writes it for preflight's scan, which counts it.
        let verified = match name {
            "inserts.dump" => "its data read (none of it COPY rows: pg_restore writes it as SQL)".to_owned(),
            _ => "its data read: 20003 rows in 3 COPY blocks".to_owned(),
        };
        let verify = done.phase_summary(Phase::Verify);
        assert!(verify.contains(&verified), "{name}: {verify}");
        let preflight = done.phase_summary(Phase::Preflight);
        assert!(
            preflight.contains("archive's SQL read but for its tables' rows, which verify read: "),
            "{name}: {preflight}"
        );
        assert!(preflight.contains("20003 rows"), "{name}: {preflight}");
        let rows =
            done.record().checks.iter().find(|c| c.id == "row_counts/every table in the dump").expect("row counts");
        assert_eq!(rows.verdict, Verdict::Pass, "{name}: {rows:?}");
        assert!(rows.expected.starts_with("20003 rows in 3 tables"), "{name}: {}", rows.expected);
    }

    // The items' COPY statement rewritten in place (same length: the archive still reads) to run
    // a statement of its own after the COPY, as pg_restore would, sending it as one query.
    let good = std::fs::read(made.join("none.dump")).unwrap();
    let copy = b"COPY public.items (id, name) FROM stdin;\n";
    let evil_copy = b"COPY public.items FROM stdin;SELECT 1;--\n";
    assert_eq!(copy.len(), evil_copy.len());
    let at = good.windows(copy.len()).position(|w| w == copy).expect("the items' COPY statement");
    let evil = [&good[..at], &evil_copy[..], &good[at + copy.len()..]].concat();
    let failed = drill(&scratch, &scratch.write("evil.dump", &evil));
    failed.assert_failed_cleanly();
    let said = failed.phase_error(Phase::Verify);
    assert!(said.contains("the COPY statement of entry ") && said.contains("is not pg_dump's"), "{failed:?}");
    assert!(said.contains("`COPY public.items FROM stdin;SELECT 1;--`"), "{said}");
    for phase in [Phase::Restore, Phase::Checks] {
        assert_eq!(failed.phase(phase), PhaseStatus::Skipped, "{phase}: {failed:?}");
    }
}
