//! A lying backup cannot make a drill pass. Beside the hostile corpus (SQL that tries to escape
//! the target), a corpus of small plain dumps written to make the drill report that a broken
//! backup is good, each drilled with an ordinary check that the lie aims at:
//!
//! - names that resolve elsewhere for later sessions (`ALTER DATABASE/ROLE ... SET search_path`)
//!   and an aggregate `public.count(*)` standing in for the built-in;
//! - code that runs when a session connects (a PostgreSQL 17 login event trigger) filling the
//!   table just before it is counted;
//! - a view where the table was, for row counts and the migration journal;
//! - a dump without COPY data, drilled with `expect_from_dump`;
//! - an audit table whose guard trigger fails with a division by zero (an error that is not a
//!   refusal), and one whose INSERT a rule sends to another table;
//! - row-level security that is open without a tenant, hidden behind the database's
//!   `statement_timeout`.
//!
//! Each ends in FAIL (or an error) with a message that says what the backup did, on a container
//! and on local binaries, and (for the cases a role without superuser powers can write) on a
//! server. `PGDRILL_TEST_BIN=/path/to/old/pgdrill` drills the corpus with another build, to see
//! what it did before.

use rstest::rstest;

use crate::servers::PgServer;
use crate::util::{CONTAINER, Drill, LOCAL, POD, Scratch, pg15_dump};

/// A case: its dump's body, the scenario's checks, and what the failing check's message says.
struct Case {
    body: &'static str,
    checks: &'static str,
    says: &'static str,
}

const APP_ROLE: &str = "[[restore.roles]]\nname = \"app\"\n";
const ORDERS: &str = "[checks.row_counts]\ntables = { orders = 3 }\n";

fn case(name: &str) -> Case {
    let (body, checks, says) = match name {
        "a search_path of the database" => (
            "CREATE TABLE public.orders (id integer PRIMARY KEY);\n\
             CREATE SCHEMA shadow;\nCREATE TABLE shadow.orders (id integer);\n\
             INSERT INTO shadow.orders SELECT pg_catalog.generate_series(1, 3);\n\
             DO $$ BEGIN EXECUTE pg_catalog.format('ALTER DATABASE %I SET search_path = shadow, public', pg_catalog.current_database()); END $$;",
            ORDERS,
            "`orders` has 0 rows, expected 3",
        ),
        "a search_path of the role" => (
            "CREATE TABLE public.orders (id integer PRIMARY KEY);\n\
             CREATE SCHEMA shadow;\nCREATE TABLE shadow.orders (id integer);\n\
             INSERT INTO shadow.orders SELECT pg_catalog.generate_series(1, 3);\n\
             ALTER ROLE CURRENT_USER SET search_path = shadow, public;",
            ORDERS,
            "`orders` has 0 rows, expected 3",
        ),
        "a count that is not the built-in" => (
            "CREATE TABLE public.orders (id integer PRIMARY KEY);\n\
             CREATE FUNCTION public.three(bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT 3::bigint';\n\
             CREATE AGGREGATE public.count(*) (sfunc = public.three, stype = bigint, initcond = '3');\n\
             DO $$ BEGIN EXECUTE pg_catalog.format('ALTER DATABASE %I SET search_path = public, pg_catalog', pg_catalog.current_database()); END $$;",
            ORDERS,
            "`orders` has 0 rows, expected 3",
        ),
        "a login event trigger" => (
            "CREATE TABLE public.orders (id integer);\n\
             CREATE FUNCTION public.fill() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN\n\
               IF (SELECT pg_catalog.count(*) FROM public.orders) = 0 THEN\n\
                 INSERT INTO public.orders SELECT pg_catalog.generate_series(1, 3);\n\
               END IF;\nEND $$;\n\
             CREATE EVENT TRIGGER fill ON login EXECUTE FUNCTION public.fill();",
            ORDERS,
            "`orders` has 0 rows, expected 3",
        ),
        "a view where the table was" => (
            "CREATE VIEW public.orders AS SELECT pg_catalog.generate_series(1, 3) AS id;",
            ORDERS,
            "`orders` is a view, not a table",
        ),
        "a journal that is a view" => (
            "CREATE VIEW public.schema_migrations AS SELECT '20261101000000'::varchar AS version;",
            "[[checks.schema_version]]\npreset = \"rails\"\nexpected = \"20261101000000\"\n",
            "`public.schema_migrations` is a view, not a table",
        ),
        "data without COPY, drilled with expect_from_dump" => (
            "CREATE TABLE public.orders (id integer);\nINSERT INTO public.orders VALUES (1), (2), (3);",
            "[checks.row_counts]\nexpect_from_dump = true\n",
            "`expect_from_dump` has nothing to compare",
        ),
        "an audit guard that divides by zero" => (
            "CREATE TABLE public.audit (id serial PRIMARY KEY, what text);\n\
             GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.audit TO app;\n\
             GRANT USAGE ON SEQUENCE public.audit_id_seq TO app;\n\
             CREATE FUNCTION public.guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM 1 / 0; RETURN NULL; END $$;\n\
             CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON public.audit FOR EACH ROW EXECUTE FUNCTION public.guard();\n\
             CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON public.audit FOR EACH STATEMENT EXECUTE FUNCTION public.guard();",
            "[[checks.append_only]]\ntable = \"public.audit\"\nrole = \"app\"\n\
             insert = \"INSERT INTO public.audit (what) VALUES ('probe')\"\n",
            "proves nothing about the audit trail",
        ),
        "an audit INSERT a rule sends elsewhere" => (
            "CREATE TABLE public.audit (id integer, what text);\nCREATE TABLE public.elsewhere (id integer, what text);\n\
             GRANT SELECT, INSERT ON public.audit TO app;\n\
             CREATE RULE divert AS ON INSERT TO public.audit DO INSTEAD INSERT INTO public.elsewhere VALUES (NEW.id, NEW.what);",
            "[[checks.append_only]]\ntable = \"public.audit\"\nrole = \"app\"\n\
             insert = \"INSERT INTO public.audit (id, what) VALUES (1, 'probe')\"\n",
            "none reached the table",
        ),
        "row-level security open behind a timeout" => (
            "CREATE TABLE public.notes (id integer, tenant integer, body text);\n\
             INSERT INTO public.notes VALUES (1, 1, 'one'), (2, 2, 'two');\n\
             ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;\nALTER TABLE public.notes FORCE ROW LEVEL SECURITY;\n\
             GRANT SELECT ON public.notes TO app;\n\
             CREATE FUNCTION public.visible(t integer) RETURNS boolean LANGUAGE plpgsql AS $$\n\
             DECLARE tenant text := coalesce(pg_catalog.current_setting('app.tenant', true), '');\n\
             BEGIN\n  IF tenant = '' THEN PERFORM pg_catalog.pg_sleep(2); RETURN true; END IF;\n  RETURN t = tenant::integer;\nEND $$;\n\
             CREATE POLICY tenant ON public.notes USING (public.visible(tenant));\n\
             DO $$ BEGIN EXECUTE pg_catalog.format('ALTER DATABASE %I SET statement_timeout = %L', pg_catalog.current_database(), '500ms'); END $$;",
            "[[checks.rls]]\ntables = [\"public.notes\"]\nfail_closed = { role = \"app\", setting = \"app.tenant\", column = \"tenant\" }\n",
            "proves nothing about row-level security",
        ),
        other => panic!("no case {other}"),
    };
    Case { body, checks, says }
}

/// Drills case `name` on `target` (a `[target]` section) in `scratch`; `env` for a server's URL.
fn drill_case(scratch: &Scratch, name: &str, target: &str, env: &[(String, String)]) -> Drill {
    let case = case(name);
    let backup = scratch.write("lying.sql", pg15_dump(case.body));
    let scenario = scratch.scenario(
        "lying.toml",
        &format!("name = \"lying\"\n[source]\npath = \"{}\"\n{APP_ROLE}{target}{}", backup.display(), case.checks),
    );
    scratch.drill_env(&scenario, &[], env)
}

/// The drill did not pass, and a check that did not pass says what the backup did.
fn assert_not_fooled(name: &str, drill: &Drill) {
    crate::util::assert_not_fooled(name, case(name).says, drill);
}

#[rstest]
#[case::search_path_of_the_database("a search_path of the database")]
#[case::search_path_of_the_role("a search_path of the role")]
#[case::count_that_is_not_the_built_in("a count that is not the built-in")]
#[case::view_where_the_table_was("a view where the table was")]
#[case::journal_that_is_a_view("a journal that is a view")]
#[case::data_without_copy("data without COPY, drilled with expect_from_dump")]
#[case::audit_guard_that_divides_by_zero("an audit guard that divides by zero")]
#[case::audit_insert_sent_elsewhere("an audit INSERT a rule sends elsewhere")]
#[case::rls_open_behind_a_timeout("row-level security open behind a timeout")]
fn on_a_sandbox(#[case] name: &str, #[values(CONTAINER, LOCAL, POD)] target: &str) {
    let scratch = Scratch::new();
    let drill = drill_case(&scratch, name, target, &[]);
    assert_not_fooled(name, &drill);
}

/// Login event triggers are PostgreSQL 17's: the container's.
#[test]
fn a_login_event_trigger_runs_nothing_in_pgdrills_sessions() {
    let name = "a login event trigger";
    let scratch = Scratch::new();
    let drill = drill_case(&scratch, name, CONTAINER, &[]);
    assert_not_fooled(name, &drill);
    let pins = drill.record().target.as_ref().map(|t| t.session.clone()).unwrap_or_default();
    assert!(pins.contains(&"event_triggers = 'off'".to_owned()), "{pins:?}");
    assert!(drill.report("report.md").contains("pinned at login"), "report.md lists the pins");
}

/// On a server whose drill role is neither a superuser nor a member of one: the pins it may set
/// (every one but the superuser's) hold the same cases.
#[test]
fn on_a_server_without_superuser_powers() {
    let server = PgServer::start();
    server.psql("CREATE ROLE drill_admin LOGIN CREATEDB CREATEROLE PASSWORD 'drill-admin-pw'").unwrap();
    let url = server.url("require").replacen(&format!("postgres:{}", server.password), "drill_admin:drill-admin-pw", 1);
    let env = [("DRILL_ADMIN_URL".to_owned(), url)];
    let target = "[target]\nkind = \"server\"\nurl_env = \"DRILL_ADMIN_URL\"\ndatabase = \"lying\"\n";
    for name in [
        "a search_path of the database",
        "a search_path of the role",
        "a count that is not the built-in",
        "a view where the table was",
    ] {
        let scratch = Scratch::new();
        let drill = drill_case(&scratch, name, target, &env);
        assert_not_fooled(name, &drill);
    }
}
