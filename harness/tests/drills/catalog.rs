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

/// A base backup whose cluster made the function pgdrill reads recovery's pause with
/// (`pg_get_wal_replay_pause_state`) always refuse as a promoted server does (55000): pgdrill
/// takes that refusal as "promoted in between" and looks again, within the recovery's time (20 s
/// here, so a lie that kept it looking would fail the drill rather than hang it). The drill
/// fails in its restore phase, naming the function the backup changed, and no check runs.
#[test]
fn a_base_backup_whose_pause_state_always_refuses_fails_naming_it() {
    let source = PhysicalSource::make_with(&[
        "CREATE OR REPLACE FUNCTION pg_catalog.pg_get_wal_replay_pause_state() RETURNS text LANGUAGE plpgsql \
         AS $$ BEGIN RAISE EXCEPTION 'recovery is not in progress' USING ERRCODE = '55000'; END $$",
    ]);
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "physical.toml",
        &format!(
            "[source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n[target]\ndatabase = \"books\"\n\n\
             [recovery]\ntarget_time = \"{}\"\ntimeout = \"20s\"\n\n\
             [[checks.sql]]\nname = \"rows\"\nquery = \"SELECT count(*) FROM public.ledger\"\nexpect = {}\n",
            source.backup().display(),
            source.archive().display(),
            source.target_time,
            source.before,
        ),
    );
    let drill = scratch.drill(&scenario);
    assert_caught(&drill, &["the backup changed function pg_catalog.pg_get_wal_replay_pause_state()", "`books`"]);
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

/// The objects both twins of the catalog-writes drill restore: CHECK constraints, an
/// append-only ledger with its triggers, a rule, unique indexes and keys (one deferrable), a
/// foreign key, an identity, inheritance and partitions with a partitioned foreign key and
/// identity, an index made `ON ONLY` a partitioned table (invalid by DDL), a NOT VALID
/// constraint over a row that breaks it, and the extensions the image ships, an AGE graph
/// among them (AGE makes its own catalog tables; a graph's tables are the backup's).
const DERIVED_SHARED: &str = "\
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS age;
SELECT ag_catalog.create_graph('social');
SELECT ag_catalog.create_vlabel('social', 'Person');
CREATE TABLE public.orders (id integer PRIMARY KEY, amount numeric NOT NULL CHECK (amount > 0), qty integer CHECK (qty > 0));
CREATE TABLE public.audit (id serial, what text);
CREATE FUNCTION public.append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'append-only'; END $$;
CREATE FUNCTION public.log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.audit (what) VALUES (TG_OP); RETURN NEW; END $$;
CREATE TABLE public.ledger (id integer, v text);
CREATE TRIGGER ledger_guard BEFORE UPDATE OR DELETE ON public.ledger FOR EACH ROW EXECUTE FUNCTION public.append_only();
CREATE TRIGGER ledger_log AFTER INSERT ON public.ledger FOR EACH ROW EXECUTE FUNCTION public.log();
CREATE TABLE public.users (id integer, email text UNIQUE);
CREATE TABLE public.notes (id integer, body text);
CREATE RULE notes_no_delete AS ON DELETE TO public.notes DO INSTEAD NOTHING;
CREATE TABLE public.tags (id integer, tag text);
CREATE UNIQUE INDEX tags_tag ON public.tags (tag);
CREATE TABLE public.codes (id integer, code text, CONSTRAINT codes_code_key UNIQUE (code));
CREATE TABLE public.imm (id integer, CONSTRAINT imm_id_key UNIQUE (id));
CREATE TABLE public.deferred (id integer PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, e integer, EXCLUDE USING btree (e WITH =) DEFERRABLE);
CREATE TABLE public.parents (id integer PRIMARY KEY);
CREATE TABLE public.kids (id integer, parent_id integer REFERENCES public.parents (id));
CREATE TABLE public.keyed (id integer PRIMARY KEY);
CREATE TABLE public.ids (id integer GENERATED ALWAYS AS IDENTITY, name text NOT NULL);
CREATE TABLE public.base (id integer);
CREATE TABLE public.child (x integer) INHERITS (public.base);
INSERT INTO public.child VALUES (1, 1);
CREATE TABLE public.ref (id integer, part integer, PRIMARY KEY (id, part)) PARTITION BY LIST (part);
CREATE TABLE public.ref_1 PARTITION OF public.ref FOR VALUES IN (1);
CREATE TABLE public.ref_2 PARTITION OF public.ref FOR VALUES IN (2) PARTITION BY RANGE (id);
CREATE TABLE public.ref_2a PARTITION OF public.ref_2 FOR VALUES FROM (0) TO (100);
CREATE TABLE public.fk (id integer GENERATED BY DEFAULT AS IDENTITY, part integer, rid integer, FOREIGN KEY (rid, part) REFERENCES public.ref) PARTITION BY LIST (part);
CREATE TABLE public.fk_1 PARTITION OF public.fk FOR VALUES IN (1);
CREATE TABLE public.fk_2 PARTITION OF public.fk FOR VALUES IN (2) PARTITION BY RANGE (id);
CREATE TABLE public.fk_2a PARTITION OF public.fk_2 FOR VALUES FROM (0) TO (100);
CREATE INDEX fk_part ON ONLY public.fk (part);
CREATE TABLE public.nv (v integer);
INSERT INTO public.nv VALUES (-1);
ALTER TABLE public.nv ADD CONSTRAINT nv_pos CHECK (v > 0) NOT VALID;
CREATE FUNCTION public.not_vectors() RETURNS integer LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION public.not_plpgsql() RETURNS integer LANGUAGE sql AS 'SELECT 1';
";

/// The lying twin's writes to the catalog, each verified by hand to change what PostgreSQL does
/// while the rows the checks read stay (PostgreSQL 17: the CHECKs pass -5, the ledger's guard
/// and log do not fire, the rule is not applied, the unique indexes and keys let duplicates in,
/// the parent reads none of its child's rows, the foreign key lets an orphan in, the primary key
/// a NULL, the identity any value).
const DERIVED_WRITES: &str = "\
UPDATE pg_catalog.pg_class SET relchecks = 0 WHERE oid = 'public.orders'::pg_catalog.regclass;
UPDATE pg_catalog.pg_class SET relhastriggers = false WHERE oid = 'public.ledger'::pg_catalog.regclass;
UPDATE pg_catalog.pg_class SET relhasrules = false WHERE oid = 'public.notes'::pg_catalog.regclass;
UPDATE pg_catalog.pg_class SET relhasindex = false WHERE oid = 'public.users'::pg_catalog.regclass;
UPDATE pg_catalog.pg_class SET relhassubclass = false WHERE oid = 'public.base'::pg_catalog.regclass;
UPDATE pg_catalog.pg_index SET indisready = false WHERE indexrelid = 'public.tags_tag'::pg_catalog.regclass;
UPDATE pg_catalog.pg_index SET indislive = false WHERE indexrelid = 'public.orders_pkey'::pg_catalog.regclass;
UPDATE pg_catalog.pg_index SET indisunique = false WHERE indexrelid = 'public.codes_code_key'::pg_catalog.regclass;
UPDATE pg_catalog.pg_index SET indimmediate = false WHERE indexrelid = 'public.imm_id_key'::pg_catalog.regclass;
DELETE FROM pg_catalog.pg_trigger WHERE tgconstraint = (SELECT oid FROM pg_catalog.pg_constraint WHERE conname = 'kids_parent_id_fkey');
UPDATE pg_catalog.pg_attribute SET attnotnull = false WHERE attrelid = 'public.keyed'::pg_catalog.regclass AND attname = 'id';
UPDATE pg_catalog.pg_attribute SET attidentity = '' WHERE attrelid = 'public.ids'::pg_catalog.regclass AND attname = 'id';
INSERT INTO pg_catalog.pg_depend (classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype)
  SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, 'public.not_vectors()'::pg_catalog.regprocedure, 0, 'pg_catalog.pg_extension'::pg_catalog.regclass, e.oid, 0, 'e'
  FROM pg_catalog.pg_extension e WHERE e.extname = 'vector';
INSERT INTO pg_catalog.pg_depend (classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype)
  SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, 'public.not_plpgsql()'::pg_catalog.regprocedure, 0, 'pg_catalog.pg_extension'::pg_catalog.regclass, e.oid, 0, 'e'
  FROM pg_catalog.pg_extension e WHERE e.extname = 'plpgsql';
CREATE OR REPLACE FUNCTION public.vector_dims(public.vector) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 3';
ALTER FUNCTION public.vector_norm(public.vector) STABLE;
";

/// One drill for every write: it fails in its restore phase naming each, before any check runs;
/// its honest twin, the same objects made by DDL alone, passes.
#[test]
fn a_dump_that_writes_the_flags_postgresql_acts_on_fails_naming_each_and_its_honest_twin_passes() {
    let (honest, lying) = std::thread::scope(|s| {
        let honest = s.spawn(|| drill(DERIVED_SHARED));
        let lying = drill(&format!("{DERIVED_SHARED}{DERIVED_WRITES}"));
        (honest.join().expect("the honest drill"), lying)
    });
    let (_honest_scratch, honest) = honest;
    assert_eq!(honest.record().verdict, DrillVerdict::Pass, "{honest:?}");
    let said = honest.phase_summary(Phase::Restore);
    assert!(said.contains("catalog flags PostgreSQL acts on"), "{said}");
    assert!(
        said.contains("extension members as CREATE EXTENSION makes them on a fresh cluster of the target's image: "),
        "{said}"
    );
    let (_scratch, lying) = lying;
    lying.assert_failed_cleanly();
    assert_eq!(lying.phase(Phase::Restore), PhaseStatus::Failed, "{lying:?}");
    assert_eq!(lying.phase(Phase::Checks), PhaseStatus::Skipped, "no check runs on a lying catalog");
    let error = lying.phase_error(Phase::Restore);
    let direct = "the catalog was written directly";
    for says in [
        "database `app`: the catalog PostgreSQL acts on is not the one the backup's DDL would make",
        &format!(
            "table public.orders: pg_class.relchecks is 0 but it has 2 CHECK constraints: {direct}, PostgreSQL does not enforce them"
        ),
        "table public.ledger: pg_class.relhastriggers is false but it has 2 triggers",
        "table public.notes: pg_class.relhasrules is false but it has 1 rule",
        "table public.users: pg_class.relhasindex is false but it has 1 index",
        "table public.base: pg_class.relhassubclass is false but it has 1 inheritance child or partition",
        "index public.tags_tag: pg_index says indisvalid = true, indisready = false, indislive = true",
        "index public.orders_pkey: pg_index says indisvalid = true, indisready = true, indislive = false",
        "index public.codes_code_key: pg_index.indisunique is false but it is the index of table constraint codes_code_key on public.codes",
        "index public.imm_id_key: pg_index.indimmediate is false but table constraint imm_id_key on public.imm is not DEFERRABLE",
        "table constraint kids_parent_id_fkey on public.kids: it is listed but no trigger enforces it",
        "table column public.keyed.id: pg_attribute.attnotnull is false but it is in PRIMARY KEY keyed_pkey",
        "table column public.ids.id: sequence public.ids_id_seq is its identity's but pg_attribute.attidentity is empty",
        "function public.not_vectors(): pg_depend makes it a member of extension vector, but CREATE EXTENSION vector VERSION '0.8.0' makes no such member",
        "function public.not_plpgsql(): pg_depend makes it a member of extension plpgsql",
        "function public.vector_dims(public.vector): as restored it has strict f; parallel u; language sql; code md5 ",
        "function public.vector_norm(public.vector): as restored it has volatility s, where CREATE EXTENSION vector VERSION '0.8.0' makes volatility i: the backup altered or replaced a member",
    ] {
        assert!(error.contains(says), "the error says `{says}`:\n{error}");
    }
    assert_eq!(error.matches("\n  - ").count(), 16, "nothing else is named:\n{error}");
    assert!(lying.report("report.md").contains("pg_class.relchecks is 0"), "report.md names it");
}
