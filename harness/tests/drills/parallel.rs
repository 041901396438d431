//! The parallel plain restore builds the same database as the serial one: every fixture is
//! restored both ways into one container and compared object by object, row by row; and an
//! error in a COPY block loaded in batches still names its exact dump line.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use pgdrill::internals::{BoxError, TestTarget};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use crate::util::{Scratch, fixture};

/// Everything a restore leaves in a database, one sorted line per fact: relations with their
/// options and security, columns, constraints, indexes, triggers, policies, privileges,
/// comments, functions, types, sequences' positions, partitions and extensions.
const CATALOG: &str = r#"
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg_temp%'
      AND nspname NOT LIKE 'pg_toast_temp%'
), rel AS (
    SELECT ns.nspname || '.' || c.relname AS name, c.* FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
)
SELECT 'relation ' || name || ' kind=' || relkind::text || ' persistence=' || relpersistence::text || ' owner='
       || pg_get_userbyid(relowner) || ' rls=' || relrowsecurity || '/' || relforcerowsecurity
       || ' options=' || coalesce(array_to_string(reloptions, ','), '') || ' acl=' || coalesce(relacl::text, '')
       || ' comment=' || coalesce(obj_description(oid, 'pg_class'), '')
       || ' partition=' || coalesce(pg_get_expr(relpartbound, oid), '') FROM rel
UNION ALL
SELECT 'column ' || r.name || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull='
       || a.attnotnull || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text || ' default='
       || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' acl=' || coalesce(a.attacl::text, '')
FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum
UNION ALL
SELECT 'constraint ' || r.name || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid) || ' valid='
       || co.convalidated FROM pg_constraint co JOIN rel r ON r.oid = co.conrelid
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid || ' ready=' || i.indisready
       || ' clustered=' || i.indisclustered || ' comment=' || coalesce(obj_description(i.indexrelid, 'pg_class'), '')
FROM pg_index i JOIN rel r ON r.oid = i.indrelid
UNION ALL
SELECT 'inherits ' || (SELECT name FROM rel WHERE oid = inhrelid) || ' < ' || (SELECT name FROM rel WHERE oid = inhparent)
FROM pg_inherits WHERE inhrelid IN (SELECT oid FROM rel)
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
FROM pg_trigger t JOIN rel r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
UNION ALL
SELECT 'policy ' || r.name || ' ' || p.polname || ' ' || p.polcmd::text || ' permissive=' || p.polpermissive || ' roles='
       || array_to_string(ARRAY(SELECT CASE WHEN x = 0 THEN 'public' ELSE pg_get_userbyid(x) END
                                FROM unnest(p.polroles) x ORDER BY 1), ',')
       || ' using=' || coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' check='
       || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
FROM pg_policy p JOIN rel r ON r.oid = p.polrelid
UNION ALL
SELECT 'schema ' || nspname || ' owner=' || pg_get_userbyid(n.nspowner) || ' acl=' || coalesce(nspacl::text, '')
FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM ns)
UNION ALL
SELECT 'function ' || ns.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
       || md5(pg_get_functiondef(p.oid)) || ' acl=' || coalesce(p.proacl::text, '')
FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace WHERE p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'type ' || ns.nspname || '.' || t.typname || ' ' || t.typtype::text || ' '
       || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid), '')
FROM pg_type t JOIN ns ON ns.oid = t.typnamespace WHERE t.typtype IN ('e', 'd', 'c')
  AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid AND c.relkind <> 'c')
UNION ALL
SELECT 'sequence ' || schemaname || '.' || sequencename || ' at ' || coalesce(last_value::text, 'unset')
FROM pg_sequences
UNION ALL
SELECT 'extension ' || extname || ' ' || extversion FROM pg_extension
"#;

/// Tables, for their rows.
const TABLES: &str = "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%'";

async fn fingerprint(target: &TestTarget, database: &str) -> BTreeSet<String> {
    let mut conn = PgConnection::connect_with(&target.connect_options(database)).await.expect("connect");
    let mut facts: BTreeSet<String> = sqlx::query_scalar::<_, String>(CATALOG)
        .fetch_all(&mut conn)
        .await
        .expect("catalog query")
        .into_iter()
        .collect();
    let tables: Vec<String> = sqlx::query_scalar(TABLES).fetch_all(&mut conn).await.expect("tables");
    for table in tables {
        let row = sqlx::query(&format!(
            "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {table} t"
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("rows of {table}: {e}"));
        facts.insert(format!("rows {table}: {} ({})", row.get::<i64, _>(0), row.get::<String, _>(1)));
    }
    conn.close().await.ok();
    facts
}

async fn restore(target: &TestTarget, database: &str, dump: &Path, jobs: usize) -> Result<u64, BoxError> {
    target.restore_plain(database, dump, jobs).await.map(|restored| {
        assert_eq!(restored.jobs, jobs);
        restored.rows
    })
}

/// Runs `body` against a throwaway container named after `name` and a fresh drill id, removed
/// afterwards whatever happens.
async fn with_target<F: AsyncFnOnce(&TestTarget)>(_scratch: &Scratch, name: &str, body: F) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let drill_id = format!("{:08x}{}", nanos ^ std::process::id(), name.len());
    let target = TestTarget::start(pgdrill::scenario::default_image(), &drill_id, name)
        .await
        .unwrap_or_else(|e| panic!("a container target: {e}"));
    let outcome = std::panic::AssertUnwindSafe(body(&target));
    let result = futures_util::FutureExt::catch_unwind(outcome).await;
    target.remove().await.expect("teardown");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_restore_builds_the_same_database_as_a_serial_one() {
    let scratch = Scratch::new();
    with_target(&scratch, "identical", async |target| {
        for fixture_name in ["plur", "powernode", "prismeai", "caracal", "paperclip"] {
            let globals = fixture(&format!("{fixture_name}.globals.sql"));
            target.restore_globals(&globals).await.expect("globals");
            let dump = fixture(&format!("{fixture_name}.sql.gz"));
            let serial_rows = restore(target, &format!("{fixture_name}_serial"), &dump, 1).await.expect("serial");
            let parallel_rows = restore(target, &format!("{fixture_name}_parallel"), &dump, 4).await.expect("parallel");
            assert_eq!(serial_rows, parallel_rows);
            let serial = fingerprint(target, &format!("{fixture_name}_serial")).await;
            let parallel = fingerprint(target, &format!("{fixture_name}_parallel")).await;
            assert!(serial.len() > 50, "{fixture_name}: too few facts to compare: {serial:?}");
            assert!(serial.iter().any(|f| f.starts_with("index ")), "{fixture_name}: no index compared");
            let only_serial: Vec<_> = serial.difference(&parallel).collect();
            let only_parallel: Vec<_> = parallel.difference(&serial).collect();
            assert!(
                only_serial.is_empty() && only_parallel.is_empty(),
                "{fixture_name}: the parallel restore differs\nonly serial: {only_serial:#?}\nonly parallel: {only_parallel:#?}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_deep_in_a_batched_copy_names_its_dump_line() {
    let scratch = Scratch::new();
    // A COPY block of several batches, a foreign key and an index to build after it.
    let rows = 200_000u64;
    let bad = 150_001u64;
    let path = scratch.path("big.sql.gz");
    let mut out = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    writeln!(out, "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);").unwrap();
    writeln!(out, "CREATE TABLE public.items (id bigint NOT NULL, label text);").unwrap();
    let copy_line = 4u64;
    writeln!(out, "COPY public.items (id, label) FROM stdin;").unwrap();
    for id in 1..=rows {
        if id == bad {
            writeln!(out, "not-a-number\tbroken").unwrap();
        } else {
            writeln!(out, "{id}\tan item with a label long enough to fill batches {id}").unwrap();
        }
    }
    writeln!(out, "\\.\n").unwrap();
    writeln!(out, "CREATE INDEX items_label ON public.items USING btree (label);").unwrap();
    out.finish().unwrap();

    with_target(&scratch, "bad-row", async |target| {
        let error = restore(target, "batched", &path, 2).await.expect_err("the bad row fails the restore");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("dump line {}", copy_line + bad)),
            "the error names the bad row's line {}: {text}",
            copy_line + bad
        );
        assert!(text.contains("invalid input syntax for type bigint: \"not-a-number\""), "{text}");
    })
    .await;
}
