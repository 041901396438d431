//! The kinds a physical restore calls for, both ways, on real backups: `point_in_time` tells a
//! recovery that stopped at its target from one that went past it or stopped short (and refuses a
//! query that answers anything but one boolean), and `collations` passes on a sound restore,
//! physical or dump, and names the database, both versions and the indexes to rebuild when the
//! backup records a collation version the target's libraries do not have. One source per test,
//! drilled several times: a source takes seconds to make.

use std::path::PathBuf;

use pgdrill::outcome::{CheckKind, Phase};
use pgdrill::{CheckResult, Verdict};

use crate::physical::PhysicalSource;
use crate::util::{Drill, Scratch};

/// The check `id` of a drill.
fn result(drill: &Drill, id: &str) -> CheckResult {
    drill.record().checks.iter().find(|c| c.id == id).cloned().unwrap_or_else(|| panic!("no {id}: {drill:?}"))
}

/// The check `id` has `verdict`, its message saying each of `says`.
fn judged(drill: &Drill, id: &str, verdict: Verdict, says: &[&str]) -> CheckResult {
    let found = result(drill, id);
    assert_eq!(found.verdict, verdict, "{found:?}\n{drill:?}");
    for text in says {
        assert!(found.message.contains(text), "`{text}` not in {}\n{found:?}", found.message);
    }
    found
}

/// A scenario drilling `source` into database `books` with `recovery` and `checks`.
fn physical_scenario(scratch: &Scratch, source: &PhysicalSource, name: &str, recovery: &str, checks: &str) -> PathBuf {
    scratch.scenario(
        &format!("{name}.toml"),
        &format!(
            "[source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n[target]\ndatabase = \"books\"\n\n{recovery}\n\n{checks}",
            source.backup().display(),
            source.archive().display(),
        ),
    )
}

/// The scenario's two sides of the recovery target.
fn ledger_checks(source: &PhysicalSource) -> String {
    format!(
        r#"[[checks.point_in_time]]
name = "ledger"
present = "SELECT count(*) = {} FROM public.ledger WHERE batch = 'before'"
absent = "SELECT EXISTS (SELECT 1 FROM public.ledger WHERE batch = 'after')"
"#,
        source.before
    )
}

/// Entries misusing the kind: queries that answer an integer or two rows, or try to write.
const MISUSED: &str = r#"
[[checks.point_in_time]]
name = "misused"
present = "SELECT count(*) FROM public.ledger"
absent = "SELECT true FROM generate_series(1, 2)"

[[checks.point_in_time]]
name = "writes"
present = "WITH w AS (INSERT INTO public.ledger (id, batch) VALUES (0, 'x') RETURNING 1) SELECT count(*) = 1 FROM w"
absent = "SELECT false"
"#;

#[test]
fn point_in_time_passes_at_the_target_and_fails_past_it_or_short_of_it_and_collations_pass_a_sound_physical_restore() {
    let source = PhysicalSource::make();
    let scratch = Scratch::new();
    let recorded = source.psql("SELECT datcollversion FROM pg_database WHERE datname = 'books'").unwrap();
    let recorded = recorded.trim();
    assert!(!recorded.is_empty(), "the source's books records a collation version");

    // At the target time: both sides hold, and every database's collations are the target's.
    let at = format!("[recovery]\ntarget_time = \"{}\"", source.target_time);
    let checks = format!("{}\n[checks.collations]\n", ledger_checks(&source));
    let drill = scratch.drill(&physical_scenario(&scratch, &source, "at-target", &at, &checks));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(drill.phase_summary(Phase::Restore).starts_with("recovered to recovery_target_time "), "{drill:?}");
    let present = judged(&drill, "point_in_time/ledger/present", Verdict::Pass, &["before the target is in"]);
    let evidence = format!("SELECT count(*) = {} FROM public.ledger WHERE batch = 'before'", source.before);
    assert_eq!(present.actual, "true");
    // The scenario's SQL runs in the window without a role, which the evidence states first;
    // what its PASS rests on comes last.
    assert_eq!(
        present.evidence,
        format!(
            "-- PostgreSQL's default\nSET LOCAL search_path = '\"$user\", public';\n{evidence}\n-- {}",
            CheckKind::PointInTime.premises_line()
        ),
        "{present:?}"
    );
    assert!(present.expected.starts_with("true"), "{present:?}");
    let absent = judged(&drill, "point_in_time/ledger/absent", Verdict::Pass, &["after the target is not in"]);
    assert!(absent.expected.starts_with("false") && absent.actual == "false", "{absent:?}");
    let books = judged(&drill, "collations/books", Verdict::Pass, &[&format!("records collation version {recorded}")]);
    assert_eq!(books.actual, recorded);
    judged(&drill, "collations/books/pg_collation", Verdict::Pass, &["collations of database `books`"]);
    // The whole cluster is the backup: its other databases are judged too; template0 takes no
    // connections and records no version.
    judged(&drill, "collations/postgres", Verdict::Pass, &[]);
    let template0 = judged(&drill, "collations/template0", Verdict::Pass, &["records no collation version"]);
    assert!(template0.actual.starts_with("no version recorded"), "{template0:?}");
    assert!(drill.record().checks.iter().all(|c| c.id != "collations/template0/pg_collation"), "{drill:?}");
    drill.assert_reports_and_no_leftovers();

    // Through the whole archive: the change made after the target is there; the misused
    // entries are errors, not passes, and the write is refused.
    let drill = scratch.drill(&physical_scenario(
        &scratch,
        &source,
        "past",
        "",
        &format!("{}{MISUSED}", ledger_checks(&source)),
    ));
    drill.assert_failed_cleanly();
    judged(&drill, "point_in_time/ledger/present", Verdict::Pass, &[]);
    let past = judged(
        &drill,
        "point_in_time/ledger/absent",
        Verdict::Fail,
        &[
            "a change made after the target is in the restored database: recovery went past the target (or the target is wrong)",
        ],
    );
    assert_eq!(past.actual, "true");
    let integer = judged(
        &drill,
        "point_in_time/misused/present",
        Verdict::Error,
        &["must return one row of one boolean", "returned one int8"],
    );
    assert_eq!(integer.actual, "one int8");
    judged(&drill, "point_in_time/misused/absent", Verdict::Error, &["returned more than one row"]);
    judged(
        &drill,
        "point_in_time/writes/present",
        Verdict::Error,
        &["the `present` query failed", "read-only transaction"],
    );
    judged(&drill, "point_in_time/writes/absent", Verdict::Pass, &[]);

    // To the end of the backup, before any ledger row: the change made before the target is
    // missing.
    let immediate = "[recovery]\ntarget = \"immediate\"";
    let drill = scratch.drill(&physical_scenario(&scratch, &source, "short", immediate, &ledger_checks(&source)));
    drill.assert_failed_cleanly();
    assert!(drill.phase_summary(Phase::Restore).starts_with("recovered to the end of the backup"), "{drill:?}");
    let short = judged(
        &drill,
        "point_in_time/ledger/present",
        Verdict::Fail,
        &["a change made before the target is missing: recovery stopped short of it"],
    );
    assert_eq!(short.actual, "false");
    judged(&drill, "point_in_time/ledger/absent", Verdict::Pass, &[]);
}

/// A plain dump with text indexes under the default collation and under `en_US`; `legacy`
/// adds a collation recording glibc 2.31's version, and an index under it.
fn names_dump(legacy: bool) -> String {
    let mut dump = String::from(
        "CREATE TABLE public.names (id int PRIMARY KEY, name text NOT NULL, sorted text COLLATE pg_catalog.\"en_US\");\n\
         CREATE INDEX names_name_idx ON public.names (name);\n\
         CREATE INDEX names_sorted_idx ON public.names (sorted);\n\
         INSERT INTO public.names VALUES (1, 'a', 'a'), (2, 'B', 'B'), (3, 'é', 'é');\n",
    );
    if legacy {
        dump.push_str(
            "CREATE COLLATION public.legacy (provider = libc, locale = 'en_US.utf8', version = '2.31');\n\
             CREATE TABLE public.people (id int PRIMARY KEY, name text COLLATE public.legacy NOT NULL);\n\
             CREATE INDEX people_name_idx ON public.people (name);\n",
        );
    }
    dump
}

#[test]
fn collations_name_the_database_versions_and_indexes_a_backup_from_another_glibc_needs_rebuilt() {
    // A physical backup of a cluster whose `books` recorded glibc 2.31's collation version (as
    // one made on Debian 11 would), with a text index under its default collation.
    let source = PhysicalSource::make_with(&[
        "CREATE INDEX ledger_batch_idx ON public.ledger (batch)",
        "UPDATE pg_database SET datcollversion = '2.31' WHERE datname = 'books'",
    ]);
    let actual = source
        .psql("SELECT pg_database_collation_actual_version(oid) FROM pg_database WHERE datname = 'books'")
        .unwrap();
    let actual = actual.trim().to_owned();
    assert!(!actual.is_empty() && actual != "2.31", "the image's glibc gives a version of its own: {actual:?}");
    let scratch = Scratch::new();
    let drill = scratch.drill(&physical_scenario(&scratch, &source, "glibc", "", "[checks.collations]\n"));
    drill.assert_failed_cleanly();
    let books = judged(
        &drill,
        "collations/books",
        Verdict::Fail,
        &[
            &format!(
                "database `books` (libc en_US.UTF-8) records collation version 2.31 and the target's libraries give {actual}"
            ),
            "indexes under it: public.ledger_batch_idx (hint: `REINDEX INDEX public.ledger_batch_idx`, then `ALTER DATABASE books REFRESH COLLATION VERSION`)",
        ],
    );
    assert_eq!(books.actual, format!("recorded 2.31, the target's libraries {actual}"));
    assert!(books.evidence.contains("pg_database_collation_actual_version"), "{books:?}");
    // Only `books` was changed: the cluster's other databases and its collations pass.
    judged(&drill, "collations/postgres", Verdict::Pass, &[]);
    judged(&drill, "collations/template1", Verdict::Pass, &[]);
    judged(&drill, "collations/books/pg_collation", Verdict::Pass, &[]);
    assert!(drill.report("report.md").contains("REFRESH COLLATION VERSION"), "{drill:?}");

    // Not only physical: an ordinary dump drill passes, its indexes under the default and a
    // named collation...
    let scenario = "[source]\npath = \"names.sql\"\n\n[target]\ndatabase = \"names\"\n\n[checks.collations]\n";
    scratch.write("names.sql", names_dump(false));
    let drill = scratch.drill(&scratch.scenario("names.toml", scenario));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let names = judged(&drill, "collations/names", Verdict::Pass, &["the target's libraries' own"]);
    assert_eq!(names.actual, actual);
    judged(&drill, "collations/names/pg_collation", Verdict::Pass, &[]);
    drill.assert_reports_and_no_leftovers();

    // ...and fails on a collation that records another version than the target's, naming it and
    // the index under it, the database's default passing beside it.
    scratch.write("legacy/names.sql", names_dump(true));
    let drill = scratch.drill(&scratch.scenario("legacy/names.toml", scenario));
    drill.assert_failed_cleanly();
    judged(&drill, "collations/names", Verdict::Pass, &[]);
    let legacy = judged(
        &drill,
        "collations/names/pg_collation",
        Verdict::Fail,
        &[
            &format!(
                "`public.legacy` records 2.31 and the target's libraries give {actual}, indexes under it: public.people_name_idx"
            ),
            "(hint: `REINDEX INDEX public.people_name_idx`, then `ALTER COLLATION public.legacy REFRESH VERSION`)",
        ],
    );
    assert!(legacy.actual.starts_with("1 of "), "{legacy:?}");
}
