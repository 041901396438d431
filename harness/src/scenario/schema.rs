//! The scenario format's JSON Schema, derived from the raw types the loader reads a scenario
//! with (`raw`), so that it cannot drift from them.

use super::raw::RawScenario;

/// Where the scenario format's JSON Schema is published, as a scenario's `#:schema` line names it.
pub const SCHEMA_URL: &str = "https://github.com/pgdrill/pgdrill/raw/main/schema/scenario.schema.json";

/// The JSON Schema of the scenario format, made from the types the loader reads a scenario
/// with, so that it cannot drift from them: for editors (taplo, Even Better TOML) and
/// validators. `pgdrill schema` prints it; `schema/scenario.schema.json` is it, checked in.
pub fn json_schema() -> serde_json::Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.transforms.push(Box::new(schemars::transform::RecursiveTransform(without_null))));
    let mut schema = settings.into_generator().into_root_schema_for::<RawScenario>();
    schema.insert("$id".into(), SCHEMA_URL.into());
    schema.insert("title".into(), "pgdrill scenario".into());
    schema.insert(
        "description".into(),
        "A restore drill: the backup, the throwaway target, the checks and the objectives (every key: docs/src/reference/scenario.md).".into(),
    );
    schema.to_value()
}

/// TOML has no null: an optional key is one that may be left out, not one that may be null, so
/// the `null` schemars gives every `Option` is taken out again.
fn without_null(schema: &mut schemars::Schema) {
    let Some(object) = schema.as_object_mut() else { return };
    if let Some(serde_json::Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            object.insert("type".into(), only);
        }
    }
    if let Some(serde_json::Value::Array(any_of)) = object.get_mut("anyOf") {
        any_of.retain(|s| s.get("type").is_none_or(|t| t != "null"));
        if let [only] = any_of.as_slice()
            && let Some(only) = only.as_object().cloned()
        {
            object.remove("anyOf");
            for (key, value) in only {
                object.entry(key).or_insert(value);
            }
        }
    }
}
