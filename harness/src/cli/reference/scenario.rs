//! The reference page of scenario keys, walked from the scenario format's JSON Schema
//! ([`crate::scenario::json_schema`], made from the types a scenario is read with): one section
//! per table, each key with its type, default and description (the types' doc comments).

use std::fmt::Write;

use serde_json::{Map, Value};

use super::{GENERATED, cell};

pub(super) fn page() -> String {
    let schema = crate::scenario::json_schema();
    let defs = schema.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut walker = Walker { defs: &defs, out: format!("{GENERATED}\n\n# Scenario keys\n\n") };
    walker.out.push_str(
        "Every key a scenario file takes, table by table, generated from the scenario format's JSON\n\
         Schema (`pgdrill schema`, checked in as `schema/scenario.schema.json`), which is made from\n\
         the types pgdrill reads a scenario with. An unknown key, a wrong type or a missing field is\n\
         an error naming the file, line and column. Relative paths start at the scenario file's\n\
         folder. What each check kind proves: [Check kinds](checks.md).\n",
    );
    walker.table(&[], &schema, Shape::Table, 0);
    walker.out
}

/// How a table appears in a scenario file.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// `[name]`, once.
    Table,
    /// `[[name]]`, as many times as needed.
    Array,
    /// `[name]` once, or `[[name]]` several times (a check kind).
    Either,
}

struct Walker<'a> {
    defs: &'a Map<String, Value>,
    out: String,
}

impl Walker<'_> {
    /// The schema a `$ref` names, or the schema itself.
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
            Some(name) => self.defs.get(name).unwrap_or(schema),
            None => schema,
        }
    }

    /// The table a key's value is, if it is one (an object with keys of its own), and how it
    /// appears.
    fn subtable<'s>(&'s self, schema: &'s Value) -> Option<(&'s Value, Shape)> {
        let resolved = self.resolve(schema);
        if is_table(resolved) {
            return Some((resolved, Shape::Table));
        }
        if let Some(items) = resolved.get("items").map(|i| self.resolve(i))
            && items.get("properties").is_some()
        {
            return Some((items, Shape::Array));
        }
        // Once or several times: a table, or an array of tables. A value that may also be
        // written as a table (`{ null = true }` beside strings and numbers) is a value.
        let any_of = resolved.get("anyOf").and_then(Value::as_array)?;
        let tables_only = any_of
            .iter()
            .map(|s| self.resolve(s))
            .all(|s| is_table(s) || s.get("items").is_some_and(|items| is_table(self.resolve(items))));
        let table = any_of.iter().map(|s| self.resolve(s)).find(|s| is_table(s)).filter(|_| tables_only)?;
        Some((table, Shape::Either))
    }

    /// One table's section, then its tables' sections.
    fn table(&mut self, path: &[&str], schema: &Value, shape: Shape, depth: usize) {
        let name = path.join(".");
        let id = if path.is_empty() { "top-level".to_owned() } else { path.join("-") };
        let heading = match shape {
            _ if path.is_empty() => "The top level".to_owned(),
            Shape::Table => format!("`[{name}]`"),
            Shape::Array => format!("`[[{name}]]`"),
            Shape::Either => format!("`[{name}]`"),
        };
        let _ = write!(self.out, "\n## {heading} {{#{id}}}\n\n");
        if let Some(description) = description(schema).filter(|_| !path.is_empty()) {
            let _ = write!(self.out, "{}\n\n", super::prose(description.trim()));
        }
        match shape {
            Shape::Array => {
                let _ = write!(self.out, "An array of tables: write `[[{name}]]` once for each.\n\n");
            }
            Shape::Either => {
                let _ = write!(self.out, "Once as `[{name}]`, or several times as `[[{name}]]`.\n\n");
            }
            Shape::Table => {}
        }
        let required: Vec<&str> =
            schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            self.out.push_str("It takes no keys.\n");
            return;
        };
        self.out.push_str("| key | type | default | description |\n|---|---|---|---|\n");
        let mut tables = Vec::new();
        for (key, property) in properties {
            let found = self.subtable(property).map(|(table, table_shape)| (table.clone(), table_shape));
            let (kind, nested) = match found {
                Some((table, table_shape)) if depth < 6 => {
                    let mut sub: Vec<&str> = path.to_vec();
                    sub.push(key);
                    let link = format!("[table](#{})", sub.join("-"));
                    let kind = match table_shape {
                        Shape::Array => format!("array of {link}s"),
                        Shape::Either => format!("{link}, or array of tables"),
                        Shape::Table => link,
                    };
                    (kind, Some((key.as_str(), table, table_shape)))
                }
                _ => (self.type_of(property, 0), None),
            };
            let mut text = description(property).or_else(|| description(self.resolve(property))).unwrap_or_default();
            if nested.is_some() {
                text = first_sentence(&text);
            }
            let needed = if required.contains(&key.as_str()) { " (required)" } else { "" };
            let _ = writeln!(
                self.out,
                "| `{key}`{needed} | {} | {} | {} |",
                cell(&kind),
                default_of(property).map(|d| format!("`{}`", cell(&d))).unwrap_or_default(),
                cell(&text)
            );
            tables.extend(nested);
        }
        for (key, table, table_shape) in tables {
            let mut sub: Vec<&str> = path.to_vec();
            sub.push(key);
            let described = merged_description(properties.get(key), &table);
            self.table(&sub, &described, table_shape, depth + 1);
        }
    }

    /// A value's type in words: `string`, `integer or string`, `"latest" or "current"`,
    /// `array of string`, `table of integer`.
    fn type_of(&self, schema: &Value, depth: usize) -> String {
        let resolved = self.resolve(schema);
        if depth > 3 {
            return "table".into();
        }
        if let Some(any_of) = resolved.get("anyOf").and_then(Value::as_array) {
            let kinds: Vec<String> = any_of.iter().map(|s| self.type_of(s, depth + 1)).collect();
            return kinds.join(" or ");
        }
        if let Some(values) = resolved.get("enum").and_then(Value::as_array) {
            return values.iter().map(Value::to_string).collect::<Vec<_>>().join(" or ");
        }
        match resolved.get("type") {
            Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
            Some(Value::String(t)) if t == "array" => match resolved.get("items") {
                Some(items) => format!("array of {}", self.type_of(items, depth + 1)),
                None => "array".into(),
            },
            Some(Value::String(t)) if t == "object" => match resolved.get("additionalProperties") {
                Some(values @ Value::Object(_)) => format!("table of {}", self.type_of(values, depth + 1)),
                _ => "table".into(),
            },
            Some(Value::String(t)) => t.clone(),
            _ if resolved.get("const").is_some() => resolved["const"].to_string(),
            _ => "any value".into(),
        }
    }
}

/// Whether a schema is a table of named keys: keys of its own, or none at all (`[checks.collations]`).
fn is_table(schema: &Value) -> bool {
    schema.get("properties").is_some() || schema.get("additionalProperties") == Some(&Value::Bool(false))
}

/// A schema's description, if it has one.
fn description(schema: &Value) -> Option<String> {
    schema.get("description").and_then(Value::as_str).map(str::to_owned)
}

/// A table's schema with the description of the key that names it, where it has one.
fn merged_description(key: Option<&Value>, table: &Value) -> Value {
    let mut table = table.clone();
    if let (Some(text), Some(object)) = (key.and_then(description), table.as_object_mut()) {
        object.insert("description".into(), text.into());
    }
    table
}

/// The first sentence of a description (a table's whole description opens its own section).
fn first_sentence(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.find(". ") {
        Some(end) => flat[..=end].to_owned(),
        None => flat,
    }
}

/// A key's default, as TOML writes it; none for a default that is no value.
fn default_of(schema: &Value) -> Option<String> {
    match schema.get("default")? {
        Value::Null => None,
        value => Some(value.to_string()),
    }
}
