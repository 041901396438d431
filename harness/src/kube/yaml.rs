//! YAML for `kubectl apply`: each object a document, written by `serde-saphyr`.
//!
//! Kubernetes reads YAML 1.1 (`sigs.k8s.io/yaml`), where `yes`, `on`, `0755`, `1_000`, `0b1` and
//! `2026-11-22` are no strings; serde-saphyr quotes a string that either version could read as
//! anything else, and writes a file's text as a literal block. The test below holds it to that
//! with the strings that break other writers, read back by another implementation.

use serde::Serialize;

/// `---`, then `object` as a YAML document.
pub(crate) fn push_document(out: &mut String, object: &impl Serialize) {
    out.push_str("---\n");
    serde_saphyr::to_fmt_writer(out, object).expect("Kubernetes objects serialize");
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use yaml_rust2::{Yaml, YamlLoader};

    /// The YAML read back as JSON, by another implementation.
    fn documents(values: &[Value]) -> String {
        let mut out = String::new();
        values.iter().for_each(|value| push_document(&mut out, value));
        out
    }

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
        assert!(text.contains("\n  - args:\n    - run\n"), "keys in order, a sequence under its key\n{text}");
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
        for quoted in ["\"0755\"", "\"2026-11-22\"", "\"yes\"", "\"1_000\"", "\"0b101\"", "\"\\u2028\""] {
            let inside = &quoted[1..quoted.len() - 1];
            assert!(text.contains(quoted) || !strings.iter().any(|s| s.contains(inside)), "{quoted}\n{text}");
        }
        assert!(text.contains("k48: |\n    [source]\n    s3 = \"s3://b/k\"\n"), "a file as a literal block\n{text}");
        assert!(text.contains("k49: |-\n"), "{text}");
        assert!(text.contains("k51: |+\n    three\n\n\n"), "{text}");
    }
}
