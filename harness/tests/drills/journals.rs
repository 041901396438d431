//! Migration journals as their runners write them, on a real restore: goose's
//! `goose_db_version`, where an older goose records a rollback as a later row with `is_applied`
//! false, so the current version is not simply the newest row.

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
