//! A backup cannot make pgdrill's own queries lie by changing PostgreSQL's built-ins. Restored
//! as a superuser, a dump can replace a function inside `pg_catalog` itself, add an overload or
//! an implicit cast that wins resolution, alter a built-in (`SECURITY DEFINER`, `SET
//! search_path`, a new name), or update `pg_proc` directly; a base backup can bring a cluster in
//! which that was done. Each such drill fails in its restore phase, naming what the backup
//! changed, before any check runs; a dump that only creates the extensions the image ships
//! (vector, AGE) passes, and its report says the catalog audit ran.

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};
use rstest::rstest;

use crate::physical::PhysicalSource;
use crate::util::{Drill, Scratch};

/// A small plain dump of PostgreSQL 17 around `body`: one table with two rows.
fn dump(body: &str) -> String {
    format!(
        "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 17.5\n-- Dumped by pg_dump version 17.5\n\n\
         SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n\
         SELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n\
         SET client_min_messages = warning;\nSET row_security = off;\n\n\
         --\n-- Name: accounts; Type: TABLE; Schema: public; Owner: -\n--\n\n\
         CREATE TABLE public.accounts (id integer PRIMARY KEY, email text NOT NULL);\n\n\
         COPY public.accounts (id, email) FROM stdin;\n1\tada@example.org\n2\tgrace@example.org\n\\.\n\n\
         --\n-- Name: lying; Type: SQL; Schema: -; Owner: -\n--\n\n{body}\n\n\
         --\n-- PostgreSQL database dump complete\n--\n\n"
    )
}

/// Drills a dump of `body` with a row count of `public.accounts`; the scratch folder holds its
/// reports.
fn drill(body: &str) -> (Scratch, Drill) {
    let scratch = Scratch::new();
    let backup = scratch.write("lying.sql", dump(body));
    let scenario = scratch.scenario(
        "lying.toml",
        &format!(
            "name = \"lying\"\n[source]\npath = \"{}\"\n[target]\ndatabase = \"app\"\n\n\
             [checks.row_counts.tables]\n\"public.accounts\" = 2\n",
            backup.display()
        ),
    );
    let drill = scratch.drill(&scenario);
    (scratch, drill)
}

/// The drill failed in its restore phase, with an error that names each of `names`, and no
/// check passed.
fn assert_caught(drill: &Drill, names: &[&str]) {
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains("the backup changed PostgreSQL's built-ins"), "{error}\n{drill:?}");
    for name in names {
        assert!(error.contains(name), "the error names `{name}`: {error}");
    }
    assert!(drill.report("report.md").contains(names[0]), "report.md names it");
    assert_eq!(drill.phase(Phase::Checks), PhaseStatus::Skipped, "no check runs on lying built-ins");
    assert!(drill.record().checks.iter().all(|c| c.verdict != pgdrill::Verdict::Pass));
}

#[rstest]
#[case::a_replaced_function(
    "CREATE OR REPLACE FUNCTION pg_catalog.lower(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'x'::text $$;",
    &["the backup changed function pg_catalog.lower(pg_catalog.text)"]
)]
#[case::an_overload_and_an_implicit_cast(
    "CREATE AGGREGATE pg_catalog.count(text) (sfunc = pg_catalog.int8inc_any, stype = int8, initcond = '100');\n\
     CREATE CAST (text AS integer) WITH INOUT AS IMPLICIT;",
    &["the backup added aggregate pg_catalog.count(pg_catalog.text)", "the backup added cast (pg_catalog.text AS integer)"]
)]
#[case::altered_built_ins(
    "ALTER FUNCTION pg_catalog.has_table_privilege(text, text) SECURITY DEFINER;\n\
     ALTER FUNCTION pg_catalog.quote_ident(text) SET search_path = public;\n\
     ALTER FUNCTION pg_catalog.format(text) RENAME TO format_before;",
    &[
        "the backup changed function pg_catalog.has_table_privilege(pg_catalog.text,pg_catalog.text)",
        "the backup changed function pg_catalog.quote_ident(pg_catalog.text)",
        "the backup removed or renamed function pg_catalog.format(pg_catalog.text)",
        "the backup added function pg_catalog.format_before(pg_catalog.text)",
    ]
)]
#[case::a_direct_update_of_pg_proc(
    "UPDATE pg_catalog.pg_proc SET provolatile = 'v' WHERE oid = 'pg_catalog.upper(text)'::pg_catalog.regprocedure;",
    &["the backup changed function pg_catalog.upper(pg_catalog.text)"]
)]
#[case::a_replaced_system_view(
    "CREATE OR REPLACE VIEW pg_catalog.pg_stat_user_tables AS SELECT * FROM pg_catalog.pg_stat_all_tables WHERE false;",
    &["the backup changed rule \"_RETURN\" on pg_catalog.pg_stat_user_tables"]
)]
#[case::a_change_made_in_another_database(
    "\\connect postgres\nCREATE FUNCTION pg_catalog.quote_ident(name) RETURNS text LANGUAGE sql AS $$ SELECT 'x'::text $$;",
    &["the backup added function pg_catalog.quote_ident(pg_catalog.name)", "`postgres`"]
)]
fn a_dump_that_changes_a_built_in_fails_naming_it(#[case] body: &str, #[case] names: &[&str]) {
    let (_scratch, drill) = drill(body);
    assert_caught(&drill, names);
}

#[test]
fn a_dump_with_the_extensions_the_image_ships_passes_and_says_the_audit_ran() {
    let (_scratch, drill) = drill(
        "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\nCREATE EXTENSION IF NOT EXISTS age;\n\
         CREATE TABLE public.items (id integer, embedding public.vector(3));",
    );
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");
    drill.assert_reports_and_no_leftovers();
    let audit = drill.record().restore.as_ref().and_then(|r| r.catalog.clone()).expect("the audit ran");
    assert!(audit.rows > 5000, "{audit:?}");
    assert_eq!(audit.databases, ["app", "postgres"]);
    let report = drill.report("report.md");
    assert!(
        report.contains("Catalog audit: ✅ PostgreSQL's built-ins are as in the target before the restore"),
        "{report}"
    );
    assert!(drill.phase_summary(Phase::Restore).contains("built-in catalog rows unchanged"));
}

#[test]
fn a_base_backup_of_a_cluster_whose_built_in_was_replaced_fails_naming_it() {
    let source = PhysicalSource::make_with(&[
        "CREATE OR REPLACE FUNCTION pg_catalog.lower(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'x'::text $$",
    ]);
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "physical.toml",
        &format!(
            "[source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n[target]\ndatabase = \"books\"\n\n\
             [[checks.sql]]\nname = \"rows\"\nquery = \"SELECT count(*) FROM public.ledger\"\nexpect = {}\n",
            source.backup().display(),
            source.archive().display(),
            source.before + source.after,
        ),
    );
    let drill = scratch.drill(&scenario);
    assert_caught(&drill, &["the backup changed function pg_catalog.lower(pg_catalog.text)", "`books`"]);
}

/// The local-binaries target (PostgreSQL 15, before `event_triggers` existed) is audited too:
/// a replaced built-in fails, a dump that touches none passes.
#[test]
fn on_local_binaries_a_replaced_function_fails_and_a_plain_dump_passes() {
    let scratch = Scratch::new();
    let head = "-- Dumped from database version 15.8\n-- Dumped by pg_dump version 15.8\n\n\
                CREATE TABLE public.accounts (id integer PRIMARY KEY);\n";
    let lying = "CREATE OR REPLACE FUNCTION pg_catalog.lower(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'x'::text $$;\n";
    for (name, body) in [("lying", lying), ("plain", "")] {
        let backup = scratch.write(&format!("{name}.sql"), format!("{head}{body}"));
        let scenario = scratch.scenario(
            &format!("{name}.toml"),
            &format!(
                "name = \"{name}\"\n[source]\npath = \"{}\"\n[target]\nkind = \"local\"\nbin_dir = \"/usr/lib/postgresql/15/bin\"\n",
                backup.display()
            ),
        );
        let drill = scratch.drill(&scenario);
        if body.is_empty() {
            assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");
            assert!(drill.phase_summary(Phase::Restore).contains("built-in catalog rows unchanged"), "{drill:?}");
        } else {
            assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{drill:?}");
            let error = drill.phase_error(Phase::Restore);
            assert!(error.contains("the backup changed function pg_catalog.lower(pg_catalog.text)"), "{error}");
        }
    }
}
