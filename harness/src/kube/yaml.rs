//! YAML for `kubectl apply`: each object (serialized by serde, as JSON) written as a document
//! in block style, a file's text as a literal block where that reads back byte for byte.
//!
//! Kubernetes reads YAML 1.1 (`sigs.k8s.io/yaml`), where `yes`, `on`, `0755`, `1_000`, `0b1` and
//! `2026-11-22` are no strings; so a string is written plain only when it cannot be read as
//! anything else in either version (a conservative alphabet, no such word), else double-quoted
//! with JSON's escapes, which are YAML's too.

use serde_json::Value;

/// The documents, each after a `---` line.
pub(crate) fn documents(values: &[Value]) -> String {
    let mut out = String::new();
    for value in values {
        out.push_str("---\n");
        match value {
            Value::Object(map) if !map.is_empty() => mapping(&mut out, map, 0),
            Value::Array(items) if !items.is_empty() => sequence(&mut out, items, 0),
            scalar => {
                inline(&mut out, scalar, 0);
                out.push('\n');
            }
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A mapping's entries at `indent`, the first one without its indentation (the caller wrote it,
/// or a sequence's `- `).
fn mapping(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (n, (key, value)) in map.iter().enumerate() {
        if n > 0 {
            pad(out, indent);
        }
        if is_plain(key) {
            out.push_str(key)
        } else {
            quoted(out, key)
        }
        out.push(':');
        value_after(out, value, indent);
    }
}

/// A sequence's items at `indent`, the first one without its indentation.
fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            pad(out, indent);
        }
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                out.push(' ');
                mapping(out, map, indent + 2);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push(' ');
                sequence(out, inner, indent + 2);
            }
            scalar => {
                out.push(' ');
                inline(out, scalar, indent + 2);
                out.push('\n');
            }
        }
    }
}

/// A mapping's value, after its key's `:`.
fn value_after(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            mapping(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            sequence(out, items, indent + 2);
        }
        scalar => {
            out.push(' ');
            inline(out, scalar, indent + 2);
            out.push('\n');
        }
    }
}

/// A scalar (or an empty collection); a literal block's lines at `indent`.
fn inline(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => string(out, s, indent),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn string(out: &mut String, text: &str, indent: usize) {
    if is_plain(text) {
        out.push_str(text);
    } else if is_literal(text) {
        literal(out, text, indent);
    } else {
        quoted(out, text);
    }
}

/// Whether `text` reads back as this very string when written plain, in YAML 1.1 and 1.2: a
/// letter or `/` first, then letters, digits and `_./-`; and no word either version reads as a
/// boolean or null.
fn is_plain(text: &str) -> bool {
    const WORDS: [&str; 11] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"];
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'/')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_./-".contains(&b))
        && !WORDS.contains(&text.to_ascii_lowercase().as_str())
}

/// Whether `text` is a file's text a literal block holds byte for byte: lines of printable
/// characters (tabs too), the first not starting with a blank, none of only blanks (whose
/// indentation a reader could take for the block's).
fn is_literal(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with([' ', '\t', '\n'])
        && !text.contains('\r')
        && !text.chars().any(unprintable)
        && text.split('\n').all(|line| line.is_empty() || !line.trim_matches([' ', '\t']).is_empty())
}

/// Characters YAML does not take as they are: controls (but tab and newline; a carriage return
/// is a line break), what YAML 1.1 reads as line breaks, and the byte order mark.
fn unprintable(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n')
        || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// `|` keeps one final newline, `|-` none, `|+` every one.
fn literal(out: &mut String, text: &str, indent: usize) {
    let body = text.trim_end_matches('\n');
    let chomp = match text.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    };
    out.push('|');
    out.push_str(chomp);
    let trailing = text.len() - body.len();
    for line in body.split('\n').chain(std::iter::repeat_n("", trailing.saturating_sub(1))) {
        out.push('\n');
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
    }
}

/// JSON's string, whose escapes YAML's double-quoted style shares, with what JSON leaves as it
/// is and YAML does not take (DEL and C1 controls, YAML 1.1's line breaks) escaped too.
fn quoted(out: &mut String, text: &str) {
    let json = serde_json::to_string(text).expect("a string serializes");
    for c in json.chars() {
        match c {
            c if unprintable(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use yaml_rust2::{Yaml, YamlLoader};

    /// The YAML read back as JSON, by another implementation.
    fn read_back(text: &str) -> Vec<Value> {
        YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}")).iter().map(to_json).collect()
    }

    fn to_json(yaml: &Yaml) -> Value {
        match yaml {
            Yaml::Real(r) => json!(r.parse::<f64>().unwrap()),
            Yaml::Integer(i) => json!(i),
            Yaml::String(s) => json!(s),
            Yaml::Boolean(b) => json!(b),
            Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
            Yaml::Hash(h) => Value::Object(
                h.iter().map(|(k, v)| (k.as_str().expect("string keys").to_owned(), to_json(v))).collect(),
            ),
            Yaml::Null => Value::Null,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn objects_read_back_as_they_were() {
        let objects = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pgdrill-scenarios",
                "labels": {"app.kubernetes.io/name": "pgdrill"}}, "data": {}}),
            json!({"spec": {"containers": [{"name": "pgdrill", "args": ["run", "--shard-count", "3"],
                "env": [{"name": "TMPDIR", "value": "/tmp"}], "ports": []}],
                "matrix": [[1, 2], [], [{"a": null}]], "empty": {}, "ratio": 0.5, "on": true}}),
            json!("a lone string"),
            json!([]),
        ];
        let text = documents(&objects);
        assert_eq!(read_back(&text), objects, "\n{text}");
        assert!(text.starts_with("---\napiVersion: v1\n"), "{text}");
        assert!(text.contains("\n    - args:\n        - run\n"), "keys in order, a sequence under its key\n{text}");
    }

    /// Strings another YAML reader (Kubernetes' own is YAML 1.1) could take for something else are
    /// quoted; a file's text is a literal block where that holds it exactly.
    #[test]
    fn every_string_reads_back_as_itself() {
        let strings = [
            "plain",
            "/usr/lib/pgdrill/bin/pgdrill",
            "4Gi",
            "0755",
            "1_000",
            "0b101",
            "0o17",
            "0x1F",
            "2026-11-22",
            "12:30",
            "1e3",
            ".inf",
            "-1",
            "+1",
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "n",
            "null",
            "~",
            "true",
            "NaN",
            "",
            " ",
            "a b",
            "#comment",
            "key: value",
            "- item",
            "[1]",
            "{a}",
            "*alias",
            "&anchor",
            "!tag",
            "%x",
            "@x",
            "`x`",
            "'x'",
            "\"x\"",
            "a\\b",
            "tab\there",
            "\u{85}nel",
            "line\u{2028}sep",
            "\u{feff}bom",
            "é accent",
            "0 3 * * *",
            "10.0.0.0/8",
            "[source]\ns3 = \"s3://b/k\"\n",
            "no final newline\nhere",
            "two newlines\n\n",
            "three\n\n\n",
            "blank\n\nline\n",
            " leading space\nline\n",
            "\nleading newline\n",
            "trailing space \nline\n",
            "only blanks\n   \nline\n",
            "cr\r\nlf\n",
            "tab\tin\na block\n",
            "\u{1}control\n",
            "#not a comment\n  indented\n- not an item\n",
            "ends with a blank line\n\n",
            "del\u{7f}",
            "c1\u{9f}\n",
        ];
        let value = json!({ "data": strings.iter().enumerate().map(|(n, s)| (format!("k{n}"), json!(s)))
            .collect::<serde_json::Map<_, _>>(), "list": strings.to_vec() });
        let text = documents(std::slice::from_ref(&value));
        assert_eq!(read_back(&text), [value], "\n{text}");
        for quoted in ["\"0755\"", "\"2026-11-22\"", "\"yes\"", "\"1_000\"", "\"0b101\"", "\"\\u2028\"", "\"4Gi\""] {
            let inside = &quoted[1..quoted.len() - 1];
            assert!(text.contains(quoted) || !strings.iter().any(|s| s.contains(inside)), "{quoted}\n{text}");
        }
        assert!(text.contains("k48: |\n    [source]\n    s3 = \"s3://b/k\"\n"), "a file as a literal block\n{text}");
        assert!(text.contains("k49: |-\n"), "{text}");
        assert!(text.contains("k51: |+\n    three\n\n\n"), "{text}");
    }
}
