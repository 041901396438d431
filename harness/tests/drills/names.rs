//! Names as PostgreSQL resolves them: a scenario that names `public."Track"` finds it, one that
//! writes `public.track` (folded to lower case, another table) fails saying which it probably
//! meant, for every kind that takes a table, index, role or journal name, and for SQL the scenario wrote.

use pgdrill::{CheckResult, Verdict};

use crate::util::Scratch;

const DUMP: &str = "CREATE EXTENSION IF NOT EXISTS vector;\n\
    CREATE SCHEMA music;\n\
    CREATE TABLE public.\"Track\" (id integer PRIMARY KEY, title text);\n\
    INSERT INTO public.\"Track\" SELECT g, 'track ' || g FROM generate_series(1, 3) g;\n\
    CREATE INDEX \"Track_Title_Idx\" ON public.\"Track\" (title);\n\
    CREATE TABLE music.album (id integer);\n\
    CREATE TABLE public.\"Embeddings\" (id integer PRIMARY KEY, v vector(3));\n\
    INSERT INTO public.\"Embeddings\" SELECT g, ARRAY[g % 7, g % 11, g % 13]::vector(3) FROM generate_series(1, 60) g;\n\
    CREATE INDEX \"Embeddings_HNSW\" ON public.\"Embeddings\" USING hnsw (v vector_l2_ops);\n\
    CREATE TABLE public.schema_migrations (version text);\n\
    INSERT INTO public.schema_migrations VALUES ('0001');\n";

const SCENARIO: &str = r#"
[source]
path = "names.sql"

[checks.row_counts]
tables = { 'public."Track"' = 3, "public.track" = 3, "album" = 0 }

[checks.indexes]
expect = [
  { name = 'public."Track_Title_Idx"', table = '"Track"', method = "btree" },
  { name = "public.track_title_idx" },
]

[[checks.vector_recall]]
indexes = ['public."Embeddings_HNSW"']
k = 5
samples = 10
min_worst = 0.5

[[checks.vector_recall]]
indexes = ["public.embeddings_hnsw"]

[[restore.roles]]
name = "track_writer"

[[checks.append_only]]
table = 'public."Track"'
role = "track_writr"
insert = "INSERT INTO public.\"Track\" VALUES (99, 'probe')"

[[checks.rls]]
tables = ["public.track"]

[[checks.sql]]
name = "titles"
query = "SELECT count(*) FROM public.track"
expect = 3

[[checks.schema_version]]
table = "public.schema_migration"
column = "version"
expected = "0001"
"#;

#[test]
fn quoted_names_resolve_and_a_name_in_the_wrong_case_or_schema_fails_saying_which_was_meant() {
    let scratch = Scratch::new();
    scratch.write("names.sql", DUMP);
    let drill = scratch.drill(&scratch.scenario("names.toml", SCENARIO));
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let result = |id: &str| -> CheckResult {
        drill.record().checks.iter().find(|c| c.id == id).cloned().unwrap_or_else(|| panic!("no {id}: {drill:?}"))
    };
    for id in [
        "row_counts/public.\"Track\"",
        "indexes/public.\"Track_Title_Idx\"",
        "vector_recall/public.\"Embeddings_HNSW\"",
    ] {
        let found = result(id);
        assert_eq!(found.verdict, Verdict::Pass, "{found:?}");
    }
    let fails = [
        ("row_counts/public.track", "`public.track` does not exist (hint: did you mean `public.\"Track\"`?)"),
        ("row_counts/album", "`album` does not exist (hint: did you mean `music.album`?)"),
        (
            "indexes/public.track_title_idx",
            "index `public.track_title_idx` does not exist (hint: did you mean `public.\"Track_Title_Idx\"`?)",
        ),
        (
            "vector_recall/public.embeddings_hnsw",
            "`public.embeddings_hnsw` is not an hnsw or ivfflat index of the database (hint: did you mean `public.\"Embeddings_HNSW\"`?)",
        ),
    ];
    for (id, says) in fails {
        let failed = result(id);
        assert_eq!(failed.verdict, Verdict::Fail, "{failed:?}");
        assert_eq!(failed.message, says);
    }
    let writer = result("append_only/public.\"Track\" append-only as track_writr");
    assert_eq!(writer.code, "append-only.could-not-read", "{writer:?}");
    assert!(writer.message.ends_with("(hint: did you mean `track_writer`?)"), "{}", writer.message);
    let rls = result("rls/public.track");
    assert_eq!(rls.code, "rls.table-missing", "{rls:?}");
    assert_eq!(rls.message, "`public.track` does not exist (hint: did you mean `public.\"Track\"`?)");
    let query = result("sql/titles");
    assert_eq!(query.code, "sql.could-not-run", "{query:?}");
    assert!(query.message.ends_with("(hint: did you mean `public.\"Track\"`?)"), "{}", query.message);
    let journal = result("schema_version/public.schema_migration");
    assert_eq!(journal.code, "schema-version.could-not-read", "{journal:?}");
    assert!(journal.message.ends_with("(hint: did you mean `public.schema_migrations`?)"), "{}", journal.message);
    drill.assert_reports_and_no_leftovers();
}

/// A login role of the backup with a schema of its own name: `"$user"` comes first on its
/// `search_path`, so its sessions read `nm_app.orders` where pgdrill counts `public.orders`;
/// another whose `search_path` a PostgreSQL 17 login event trigger sets, so only a session it
/// opens itself finds `nm_hidden.orders`.
const SHADOWED: &str = "CREATE ROLE nm_app LOGIN;\n\
    CREATE ROLE nm_batch LOGIN;\n\
    CREATE SCHEMA nm_hidden;\n\
    CREATE TABLE nm_hidden.orders (id integer);\n\
    GRANT USAGE ON SCHEMA nm_hidden TO nm_batch;\n\
    CREATE FUNCTION public.nm_login() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN \
      IF session_user = 'nm_batch' THEN PERFORM pg_catalog.set_config('search_path', 'nm_hidden, public', false); END IF; END $$;\n\
    CREATE EVENT TRIGGER nm_login ON login EXECUTE FUNCTION public.nm_login();\n\
    CREATE ROLE nm_reports LOGIN;\n\
    CREATE TABLE public.orders (id integer PRIMARY KEY);\n\
    INSERT INTO public.orders SELECT pg_catalog.generate_series(1, 3);\n\
    GRANT SELECT ON public.orders TO nm_app, nm_reports;\n\
    CREATE SCHEMA nm_app AUTHORIZATION nm_app;\n\
    CREATE TABLE nm_app.orders (id integer);\n\
    ALTER TABLE nm_app.orders OWNER TO nm_app;\n";

#[test]
fn with_no_application_role_named_a_name_any_login_role_resolves_elsewhere_fails_until_one_is() {
    let scratch = Scratch::new();
    scratch.write("shadowed.sql", SHADOWED);
    let checks = "[source]\npath = \"shadowed.sql\"\n\n[checks.row_counts]\ntables = { orders = 3 }\n";
    let unnamed = scratch.drill(&scratch.scenario("unnamed.toml", checks));
    assert_eq!(unnamed.code, Some(1), "{unnamed:?}");
    let counted = &unnamed.record().checks[0];
    assert_eq!(counted.code, "row-counts.another-table", "{counted:?}");
    assert!(
        counted.message.starts_with(
            "`orders` is not `public.orders` for the application: `nm_app`'s own session resolves it to `nm_app.orders`"
        ),
        "{}",
        counted.message
    );
    assert!(
        counted.message.contains("`nm_batch`'s own session resolves it to `nm_hidden.orders`"),
        "a login event trigger's search_path is the role's: {}",
        counted.message
    );
    assert!(counted.message.contains("or name the application's role in `[login] role`"), "{}", counted.message);
    assert!(!counted.message.contains("nm_reports"), "{}", counted.message);
    // Named, the application's role is the one whose sessions count.
    let named = scratch.drill(&scratch.scenario("named.toml", &format!("[login]\nrole = \"nm_reports\"\n\n{checks}")));
    assert_eq!(named.code, Some(0), "{named:?}");
    named.assert_reports_and_no_leftovers();
}
