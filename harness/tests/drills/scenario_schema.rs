//! The JSON Schema of the scenario format (`schema/scenario.schema.json`, made by `pgdrill
//! schema` from the types the loader reads): checked in as generated, accepted by the
//! metaschema, and agreeing with pgdrill's own loader both ways — every shipped scenario passes
//! the schema under check-jsonschema and taplo (what Even Better TOML runs in an editor), and
//! scenarios the loader rejects for their shape are rejected by both validators too.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{Scratch, root};

fn schema_file() -> PathBuf {
    root().join("schema/scenario.schema.json")
}

pub(crate) fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `python3 -m check_jsonschema ARGS` (the record's schema test shares it).
pub(crate) fn check_jsonschema(args: &[&std::ffi::OsStr]) -> Output {
    let output = Command::new("python3").args(["-m", "check_jsonschema"]).args(args).output().expect("python3");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("No module named check_jsonschema"),
        "check-jsonschema is not installed: python3 -m pip install 'check-jsonschema==0.39.0'"
    );
    output
}

/// `taplo check` of `files` against the schema, as an editor's taplo does.
fn taplo(files: &[PathBuf]) -> Output {
    let schema = format!("file://{}", schema_file().display());
    match Command::new("taplo").args(["check", "--schema", &schema]).args(files).current_dir(root()).output() {
        Ok(output) => output,
        Err(e) => panic!("cannot run taplo ({e}): python3 -m pip install 'taplo==0.9.3'"),
    }
}

fn shipped_scenarios() -> Vec<PathBuf> {
    let scenarios = pgdrill::scenario::discover(&[root().join("scenarios")]).expect("scenarios/");
    assert!(scenarios.len() >= 7, "{scenarios:?}");
    scenarios
}

/// Whether a schema anywhere allows `null` as a type.
fn offers_null(schema: &serde_json::Value) -> bool {
    match schema {
        serde_json::Value::Object(map) => map.iter().any(|(key, value)| {
            let null_type = key == "type"
                && (value == "null" || value.as_array().is_some_and(|types| types.iter().any(|t| t == "null")));
            null_type || offers_null(value)
        }),
        serde_json::Value::Array(items) => items.iter().any(offers_null),
        _ => false,
    }
}

fn validate(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill")).arg("validate").arg(file).output().expect("run pgdrill")
}

#[test]
fn the_checked_in_schema_is_the_generated_one_and_a_valid_schema() {
    let generated = Command::new(env!("CARGO_BIN_EXE_pgdrill")).arg("schema").output().expect("run pgdrill schema");
    assert!(generated.status.success(), "{}", text(&generated));
    let checked_in = std::fs::read_to_string(schema_file()).expect("schema/scenario.schema.json");
    assert!(
        String::from_utf8_lossy(&generated.stdout) == checked_in,
        "schema/scenario.schema.json is not what `pgdrill schema` prints: run `cargo run -q -- schema > \
         schema/scenario.schema.json` and commit it"
    );
    let schema: serde_json::Value = serde_json::from_str(&checked_in).expect("JSON");
    // Every check kind is described, with what it proves.
    let kinds = schema["$defs"]["Checks"]["properties"].as_object().expect("checks' kinds");
    for kind in ["row_counts", "indexes", "rls", "roles", "partitions", "schemas", "point_in_time", "checksums"] {
        assert!(kinds[kind]["description"].as_str().is_some_and(|d| !d.is_empty()), "{kind} has no description");
    }
    assert!(!offers_null(&schema), "TOML has no null, and the schema must not offer it");

    let meta = check_jsonschema(&["--check-metaschema".as_ref(), schema_file().as_os_str()]);
    assert!(meta.status.success(), "{}", text(&meta));
}

#[test]
fn every_shipped_scenario_passes_the_schema() {
    let scenarios = shipped_scenarios();
    let schema = schema_file();
    let mut args = vec!["--schemafile".as_ref(), schema.as_os_str()];
    args.extend(scenarios.iter().map(|s| s.as_os_str()));
    let output = check_jsonschema(&args);
    assert!(output.status.success(), "{}", text(&output));

    let output = taplo(&scenarios);
    assert!(output.status.success(), "{}", text(&output));
    // The repository's own taplo configuration applies the schema to scenarios/.
    let config = std::fs::read_to_string(root().join(".taplo.toml")).expect(".taplo.toml");
    assert!(config.contains("schema/scenario.schema.json") && config.contains("scenarios/**/*.toml"), "{config}");
}

#[test]
fn scenarios_of_the_wrong_shape_fail_the_schema_as_they_fail_the_loader() {
    let scratch = Scratch::new();
    let source = "[source]\npath = \"backup.sql.gz\"\n";
    // (file, content, what check-jsonschema says)
    let cases = [
        ("no-source.toml", "name = \"x\"\n".to_owned(), "'source' is a required property"),
        ("unknown-key.toml", format!("{source}colour = \"blue\"\n"), "'colour' was unexpected"),
        ("target-kind.toml", format!("{source}[target]\nkind = \"vm\"\n"), "'vm' is not one of"),
        ("check-kind.toml", format!("{source}[checks.rowcount]\n"), "'rowcount' was unexpected"),
        ("tags-type.toml", format!("tags = \"quarterly\"\n{source}"), "'quarterly' is not of type 'array'"),
        (
            "negative-count.toml",
            format!("{source}[checks.row_counts.tables]\n\"public.users\" = -1\n"),
            "-1 is less than the minimum of 0",
        ),
        ("index-key.toml", format!("{source}[checks.indexes]\nexpect = [{{ nam = \"i\" }}]\n"), "'nam' was unexpected"),
        (
            "recovery-target.toml",
            format!("{source}[recovery]\ntarget = \"latest\"\n"),
            "'latest' is not one of ['immediate']",
        ),
        // A webhook's URL carries its token: the schema has no `url` for it, the loader refuses it.
        (
            "notify-url.toml",
            format!("{source}[notify]\nurl = \"https://hooks.example/T0/B0/t0ken\"\n"),
            "'url' was unexpected",
        ),
        ("notify-on.toml", format!("{source}[notify]\non = \"sometimes\"\n"), "'sometimes' is not one of"),
    ];
    for (name, content, message) in &cases {
        let file = scratch.write(name, content);
        let schema = check_jsonschema(&["--schemafile".as_ref(), schema_file().as_os_str(), file.as_os_str()]);
        assert!(!schema.status.success(), "{name} passed the schema:\n{content}");
        assert!(text(&schema).contains(message), "{name}: expected {message:?}\n{}", text(&schema));
        let editor = taplo(std::slice::from_ref(&file));
        assert!(!editor.status.success(), "{name} passed taplo:\n{content}\n{}", text(&editor));
        let loader = validate(&file);
        assert!(!loader.status.success(), "{name} passed `pgdrill validate`, and the schema rejects it:\n{content}");
    }

    // A scenario of the right shape passes the schema, where the loader may still refuse its
    // values (the backup here does not exist): the schema is about shape, never stricter.
    let good = scratch.write(
        "good.toml",
        format!(
            "{source}[target]\nkind = \"container\"\nsettings = {{ work_mem = \"64MB\", jit = false }}\n\
             [[checks.sql]]\nname = \"one\"\nquery = \"SELECT 1\"\nexpect = 1\n\
             [checks.row_counts.tables]\npublic.users = 12\n"
        ),
    );
    let schema = check_jsonschema(&["--schemafile".as_ref(), schema_file().as_os_str(), good.as_os_str()]);
    assert!(schema.status.success(), "{}", text(&schema));
}
