//! Migration journals as their runners write them, on a real restore: goose's
//! `goose_db_version`, where an older goose records a rollback as a later row with `is_applied`
//! false, so the current version is not simply the newest row; and the plain runner that records
//! each `NNNN_name.up.sql` file's stem.

use pgdrill::Verdict;

use crate::util::Scratch;

/// Migrations 1 to 3 applied, then 3 rolled back: goose is at 2.
const GOOSE: &str = "CREATE TABLE public.goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, \
        is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());\n\
    INSERT INTO public.goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (3, true), (3, false);\n";

#[test]
fn goose_preset_reads_the_current_version_past_a_rolled_back_one() {
    let scratch = Scratch::new();
    scratch.write("goose.sql", GOOSE);
    scratch.write("migrations/00001_users.sql", "-- +goose Up\nSELECT 1;\n");
    scratch.write("migrations/00002_zones.sql", "-- +goose Up\nSELECT 1;\n");
    let scenario = scratch.scenario(
        "goose.toml",
        "[source]\npath = \"goose.sql\"\n\
         [[checks.schema_version]]\npreset = \"goose\"\nexpected_from = \"migrations\"\n\
         [[checks.schema_version]]\npreset = \"goose\"\nexpected = \"3\"\n",
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let checks = &drill.record().checks;
    let from_folder = &checks[0];
    assert_eq!(from_folder.verdict, Verdict::Pass, "{from_folder:?}");
    assert_eq!(from_folder.actual, "2");
    assert!(from_folder.expected.starts_with("00002 (newest file of "), "{}", from_folder.expected);
    let ahead = &checks[1];
    assert_eq!(ahead.verdict, Verdict::Fail, "{ahead:?}");
    assert_eq!(ahead.message, "newest migration in `public.goose_db_version` is 2, expected 3");
}

/// The plain runner: `NNNN_name.up.sql` files, their stems in `schema_migrations(version text)`.
const STEMS: &str = "CREATE TABLE public.schema_migrations (version text PRIMARY KEY);\n\
    INSERT INTO public.schema_migrations VALUES ('0001_tenants'), ('0002_api_keys');\n";

#[test]
fn a_runner_that_records_stems_passes_at_its_newest_file_and_fails_behind_it() {
    let scratch = Scratch::new();
    scratch.write("stems.sql", STEMS);
    for file in ["0001_tenants", "0002_api_keys"] {
        scratch.write(&format!("released/{file}.up.sql"), "SELECT 1;\n");
        scratch.write(&format!("released/{file}.down.sql"), "SELECT 1;\n");
        scratch.write(&format!("next/{file}.up.sql"), "SELECT 1;\n");
    }
    scratch.write("next/0003_audit_log.up.sql", "SELECT 1;\n");
    let journal = "table = \"public.schema_migrations\"\ncolumn = \"version\"\nrecords = \"stem\"\n";
    let scenario = scratch.scenario(
        "stems.toml",
        &format!(
            "[source]\npath = \"stems.sql\"\n\
             [[checks.schema_version]]\n{journal}expected_from = \"released\"\n\
             [[checks.schema_version]]\n{journal}expected_from = \"next\"\n"
        ),
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let checks = &drill.record().checks;
    assert_eq!(checks[0].verdict, Verdict::Pass, "{:?}", checks[0]);
    assert_eq!(checks[0].actual, "0002_api_keys");
    assert_eq!(checks[1].verdict, Verdict::Fail, "{:?}", checks[1]);
    assert_eq!(checks[1].actual, "0002_api_keys");
    assert!(checks[1].expected.starts_with("0003_audit_log (newest file of "), "{}", checks[1].expected);
}
