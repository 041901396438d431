//! The values fail-closed's probe rows hold so that the policies decide on them as on the
//! application's rows: a column compared with a scenario setting takes its value, one compared
//! with a constant takes that constant, a boolean column the policy reads bare takes the value
//! that opens what it guards.

use std::sync::LazyLock;

use regex::Regex;

use crate::check::probe::Column;

use crate::check::probe::compared::CAST;

/// The columns the policies compare for equality with a constant (`visibility = 'public'::text`),
/// each with its first such constant: the probe rows hold it, so that a policy that opens rows
/// by their own value (`OR visibility = 'public'`) opens a tenant's probe row to the others as it
/// opens the application's rows, and one that narrows by it (`AND status = 'active'`) shows the
/// tenant its own. Another constant the same column is compared with is not tried.
pub(super) fn compared_with_constants(policies: &[String], columns: &[Column]) -> Vec<(String, String)> {
    // `IN ('a', 'b')` is deparsed `= ANY (ARRAY['a'::text, 'b'::text])`: its first constant.
    static COMPARED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(r"\b([a-z_][a-z0-9_]*){CAST}\s*=\s*(?:any\s*\(\s*array\s*\[\s*)?'((?:[^']|'')*)'"))
            .expect("a valid pattern")
    });
    let mut out: Vec<(String, String)> = Vec::new();
    for c in policies.iter().flat_map(|text| COMPARED.captures_iter(text)) {
        if !out.iter().any(|(column, _)| column == &c[1]) {
            out.push((c[1].to_owned(), c[2].replace("''", "'")));
        }
    }
    for (column, value) in booleans_read(policies, columns) {
        if !out.iter().any(|(c, _)| *c == column) {
            out.push((column, value));
        }
    }
    out
}

/// The policies' comparisons of a column of the table with a constant by order or by pattern
/// (`created_at < '2020-01-01'`, `code ~~ 'pub%'`, a `BETWEEN`), each as (column, comparison,
/// policy): a probe row holds one value of its column, made up, which tries no such door, so
/// each is a fact the drill did not prove (trustable by the column's name).
pub(super) fn ordered(policies: &[(String, String)], columns: &[Column]) -> Vec<(String, String, String)> {
    const OPERATOR: &str = r"(<=|>=|<|>|!?~~?\*?|\bnot\s+i?like\b|\bi?like\b)";
    const CONSTANT: &str = r"(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?\b)";
    let mut out: Vec<(String, String, String)> = Vec::new();
    for column in columns {
        let name = regex::escape(&column.name);
        let patterns = [
            format!(r"(?i)\b{name}\b\s*\)?\s*(?:::\s*[a-z_][a-z0-9_ ]*)?\s*{OPERATOR}\s*\(?\s*{CONSTANT}"),
            format!(r"(?i){CONSTANT}(?:\s*::\s*[a-z_][a-z0-9_ ]*)?\s*(<=|>=|<|>)\s*\b{name}\b"),
        ];
        for pattern in patterns.iter().filter_map(|p| Regex::new(p).ok()) {
            for (policy, text) in policies {
                for found in pattern.find_iter(text) {
                    let comparison = found.as_str().split_whitespace().collect::<Vec<_>>().join(" ");
                    let key = (column.name.clone(), comparison, policy.clone());
                    if !out.contains(&key) {
                        out.push(key);
                    }
                }
            }
        }
    }
    out
}

/// The boolean columns the policies read bare (`OR is_public`, `AND NOT archived`) or compare
/// with a boolean constant (`is_public = true`, `archived IS NOT TRUE`), each with the value that
/// makes its first such test true: as with a constant, a door that opens rows by it opens the
/// probe rows, and a narrowing by it shows each tenant its own.
fn booleans_read(policies: &[String], columns: &[Column]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for column in columns.iter().filter(|c| c.sql_type == "boolean") {
        let Ok(word) = Regex::new(&format!(r"(?i)\b{}\b", regex::escape(&column.name))) else { continue };
        let found =
            policies.iter().flat_map(|text| word.find_iter(text).map(move |m| (&text[..m.start()], &text[m.end()..])));
        if let Some(value) = found.into_iter().find_map(|(before, after)| makes_true(before, after)) {
            out.push((column.name.clone(), value.to_string()));
        }
    }
    out
}

/// The value of a boolean column, read between `before` and `after` in a policy, that makes its
/// test true; `None` where it is not a test of the column alone (`flag = other_flag`).
fn makes_true(before: &str, after: &str) -> Option<bool> {
    static TEST: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^\s*(?:(=|<>|!=)\s*(true|false)\b|is\s+(not\s+)?(true|false)\b|(\)|\bor\b|\band\b|$))")
            .expect("a valid pattern")
    });
    static NOT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\bnot\s*\(?\s*$").expect("a valid pattern"));
    static COMPARED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[=<>]\s*\(?\s*$").expect("a valid pattern"));
    if COMPARED.is_match(before) {
        return None;
    }
    let test = TEST.captures(after)?;
    let wanted = match (test.get(1), test.get(2), test.get(3), test.get(4)) {
        (Some(op), Some(constant), _, _) => constant.as_str().eq_ignore_ascii_case("true") == (op.as_str() == "="),
        (None, None, negated, Some(constant)) => constant.as_str().eq_ignore_ascii_case("true") != negated.is_some(),
        _ => true,
    };
    Some(wanted != NOT.is_match(before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boolean_column_read_bare_or_against_a_constant_takes_the_value_that_opens_its_test() {
        let column =
            |name: &str, sql_type: &str| Column { name: name.into(), sql_type: sql_type.into(), ..Column::default() };
        let columns = [column("is_public", "boolean"), column("archived", "boolean"), column("status", "text")];
        let cases: [(&str, &[(&str, &str)]); 8] = [
            ("((tenant = 1) OR is_public)", &[("is_public", "true")]),
            ("((tenant = 1) AND (NOT archived))", &[("archived", "false")]),
            ("((is_public = false) AND (archived IS NOT TRUE))", &[("is_public", "false"), ("archived", "false")]),
            ("((is_public <> true) or archived)", &[("is_public", "false"), ("archived", "true")]),
            ("(is_public = archived)", &[]),
            ("((status = 'active'::text) AND is_public)", &[("status", "active"), ("is_public", "true")]),
            // A varchar column, cast for the comparison as the server deparses it.
            (
                "((tenant = 1) AND (((visibility)::text = 'shared'::text) OR is_public))",
                &[("visibility", "shared"), ("is_public", "true")],
            ),
            ("(tenant = 1)", &[]),
        ];
        for (policy, expected) in cases {
            let found = compared_with_constants(&[policy.to_owned()], &columns);
            let expected: Vec<(String, String)> =
                expected.iter().map(|(c, v)| ((*c).to_owned(), (*v).to_owned())).collect();
            assert_eq!(found, expected, "{policy}");
        }
    }

    #[test]
    fn a_column_compared_by_order_or_pattern_with_a_constant_is_named_and_equality_is_not() {
        let columns = [
            Column { name: "created_at".into(), ..Column::default() },
            Column { name: "code".into(), ..Column::default() },
            Column { name: "level".into(), ..Column::default() },
        ];
        let policies = [(
            "policy `old_rows`".to_owned(),
            "((tenant = 1) or (created_at < '2020-01-01 00:00:00+00'::timestamp with time zone) or ((code)::text ~~ 'pub%'::text) or (3 <= level) or (code = 'x'::text))".to_owned(),
        )];
        let found: Vec<(String, String)> =
            ordered(&policies, &columns).into_iter().map(|(c, how, _)| (c, how)).collect();
        assert_eq!(
            found,
            [
                ("created_at".to_owned(), "created_at < '2020-01-01 00:00:00+00'".to_owned()),
                ("code".to_owned(), "code)::text ~~ 'pub%'".to_owned()),
                ("level".to_owned(), "3 <= level".to_owned()),
            ]
        );
        let any = compared_with_constants(
            &["(status = any (array['active'::text, 'published'::text]))".to_owned()],
            &columns,
        );
        assert_eq!(any, [("status".to_owned(), "active".to_owned())]);
    }
}
