//! The JSON Schema of a drill's flat record (`schema/drill-record.v1.schema.json`, made by
//! `pgdrill schema --record` from the type `record.json` is written from): checked in as
//! generated and accepted by the metaschema. Real drills' record.json pass it (`signed.rs`, a
//! passed and a failed drill), and a record with a field of the wrong type, or one left out,
//! does not: the schema can fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::scenario_schema::{check_jsonschema, text};
use crate::util::{Scratch, root};

fn schema_file() -> PathBuf {
    root().join("schema/drill-record.v1.schema.json")
}

/// `check-jsonschema --schemafile schema/drill-record.v1.schema.json file`.
fn validate(file: &Path) -> Output {
    check_jsonschema(&["--schemafile".as_ref(), schema_file().as_os_str(), file.as_os_str()])
}

/// The drill folder `dir`'s record.json, checked against the committed schema and read: the
/// schema passes it, and passes no copy of it with a field of the wrong type or left out.
pub(crate) fn checked_record(dir: &Path, scratch: &Scratch) -> serde_json::Value {
    let file = dir.join("record.json");
    let output = validate(&file);
    assert!(output.status.success(), "{} fails the schema: {}", file.display(), text(&output));
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).expect("JSON");
    assert!(record.as_object().unwrap().values().all(|v| !v.is_object() && !v.is_array()), "not flat: {record}");
    // `value` in place of `field`'s, or, when none, the field left out.
    let wrong = |name: &str, field: &str, value: Option<serde_json::Value>, message: &str| {
        let mut bad = record.clone();
        let fields = bad.as_object_mut().unwrap();
        match value {
            Some(value) => fields.insert(field.into(), value),
            None => fields.remove(field),
        };
        let bad = scratch.write(name, serde_json::to_vec_pretty(&bad).unwrap());
        let output = validate(&bad);
        assert!(!output.status.success(), "{name} passed the schema");
        assert!(text(&output).contains(message), "{name}: expected {message:?}\n{}", text(&output));
    };
    wrong("passed-a-string.json", "passed", Some("yes".into()), "'yes' is not of type 'boolean'");
    wrong("duration-in-words.json", "duration_seconds", Some("95s".into()), "'95s' is not of type 'number'");
    wrong("verdict-unknown.json", "verdict", Some("green".into()), "'green' is not one of");
    wrong("schema-v2.json", "schema", Some("pgdrill.drill-record.v2".into()), "'pgdrill.drill-record.v1' was expected");
    wrong("no-drill-id.json", "drill_id", None, "'drill_id' is a required property");
    record
}

#[test]
fn the_checked_in_record_schema_is_the_generated_one_and_a_valid_schema() {
    let generated =
        Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(["schema", "--record"]).output().expect("run pgdrill schema");
    assert!(generated.status.success(), "{}", text(&generated));
    let checked_in = std::fs::read_to_string(schema_file()).expect("schema/drill-record.v1.schema.json");
    assert!(
        String::from_utf8_lossy(&generated.stdout) == checked_in,
        "schema/drill-record.v1.schema.json is not what `pgdrill schema --record` prints: run `cargo run -q -- \
         schema --record > schema/drill-record.v1.schema.json` and commit it (within v1 a field may only be added)"
    );
    let meta = check_jsonschema(&["--check-metaschema".as_ref(), schema_file().as_os_str()]);
    assert!(meta.status.success(), "{}", text(&meta));
}

/// The example in the evidence guide is a record the schema accepts: the docs show the contract.
#[test]
fn the_guides_example_record_passes_the_schema() {
    let guide = std::fs::read_to_string(root().join("docs/src/guide/evidence.md")).expect("evidence.md");
    let section = &guide[guide.find("## A plain record, for evidence tools").expect("the section")..];
    let start = section.find("```json\n").expect("an example") + "```json\n".len();
    let example = &section[start..start + section[start..].find("```").expect("its end")];
    let scratch = Scratch::new();
    let file = scratch.write("example.json", example);
    let output = validate(&file);
    assert!(output.status.success(), "the guide's example fails the schema: {}", text(&output));
}
