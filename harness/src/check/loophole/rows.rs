//! Doors keyed on the row itself. A guard that decides by the row's own values compared with a
//! constant (`IF OLD.status = 'draft' THEN RETURN OLD`, `WHEN (old.locked IS NULL)`) protects only
//! the rows that hold the other values: the drill's UPDATE and DELETE aim at a row the table
//! holds (or a probe row), and a row the application writes with the key value is never tried.
//! So each such comparison is a fact the drill did not prove, named with its text, and trustable
//! by the column (`trusted = [{ fact = "old.status", reason = "..." }]`). A comparison of one
//! row value with another (`NEW.actor IS DISTINCT FROM OLD.actor`) keys nothing: it is not named.
//! A leaf: it reads text only.

use std::sync::LazyLock;

use regex::Regex;

/// A comparison of the row's value with a constant: the column (`old.status`) and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowKey {
    pub column: String,
    pub comparison: String,
}

const COLUMN: &str = r#"\b(old|new)\s*\.\s*("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)"#;
const OPERATOR: &str = r"(?:=|<>|!=|<=|>=|<|>|\bnot\s+in\b|\bin\b|\bnot\s+i?like\b|\bi?like\b|~~?\*?|!~~?\*?|\bis\s+(?:not\s+)?(?:distinct\s+from\s+)?)";
const CONSTANT: &str = r"(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?\b|\btrue\b|\bfalse\b|\bnull\b)";

/// The column, then an operator, then a constant (a list's first one for `IN (...)`).
static COLUMN_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"{COLUMN}\s*(?:::\s*[a-z_][a-z0-9_ ]*)?\s*{OPERATOR}\s*\(?\s*{CONSTANT}"))
        .expect("a valid pattern")
});
/// A constant, then an operator, then the column.
static CONSTANT_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"{CONSTANT}(?:\s*::\s*[a-z_][a-z0-9_]*)?\s*(?:=|<>|!=|<=|>=|<|>)\s*{COLUMN}"))
        .expect("a valid pattern")
});

/// The row-value comparisons of `text` (lower case, comments blanked, literals kept) that are
/// code: `code` is the same text with its literals blanked (the same length), so that a message
/// that says `OLD.status = 'x'` keys nothing.
pub(crate) fn keys(text: &str, code: &str) -> Vec<RowKey> {
    let mut found: Vec<RowKey> = Vec::new();
    for pattern in [&*COLUMN_FIRST, &*CONSTANT_FIRST] {
        for c in pattern.captures_iter(text) {
            let (Some(whole), Some(row), Some(column)) = (c.get(0), c.get(1), c.get(2)) else { continue };
            if code.get(row.start()..row.end()) != Some(row.as_str()) || assigned(code, whole.start()) {
                continue;
            }
            let key = RowKey {
                column: format!("{}.{}", row.as_str(), column.as_str()),
                comparison: whole.as_str().split_whitespace().collect::<Vec<_>>().join(" "),
            };
            if !found.contains(&key) {
                found.push(key);
            }
        }
    }
    found
}

/// Whether the text at `at` starts a statement (a PL/pgSQL assignment, `NEW.status = 'new';`,
/// writes the row: it compares nothing).
fn assigned(code: &str, at: usize) -> bool {
    let before = code.get(..at).unwrap_or_default().trim_end();
    before.is_empty()
        || before.ends_with(';')
        || ["begin", "then", "else", "loop"].iter().any(|word| {
            before.ends_with(word)
                && !before[..before.len() - word.len()].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<(String, String)> {
        let lower = text.to_lowercase();
        keys(&lower, &crate::check::loophole::facts::code(text)).into_iter().map(|k| (k.column, k.comparison)).collect()
    }

    #[test]
    fn a_row_value_compared_with_a_constant_is_a_key_and_one_compared_with_another_is_not() {
        let guard = "BEGIN
  IF OLD.status = 'draft' THEN RETURN OLD; END IF;
  IF 3 < NEW.level OR old.\"Locked\" IS NULL OR new.kind IN ('a', 'b') OR old.what::text LIKE 'tmp%' THEN RETURN NEW; END IF;
  IF NEW.actor IS DISTINCT FROM OLD.actor THEN RAISE EXCEPTION 'OLD.status = ''x'' is kept'; END IF;
  RAISE EXCEPTION 'audit rows are immutable';
END";
        assert_eq!(
            read(guard),
            [
                ("old.status".to_owned(), "old.status = 'draft'".to_owned()),
                ("old.\"locked\"".to_owned(), "old.\"locked\" is null".to_owned()),
                ("new.kind".to_owned(), "new.kind in ('a'".to_owned()),
                ("old.what".to_owned(), "old.what::text like 'tmp%'".to_owned()),
                ("new.level".to_owned(), "3 < new.level".to_owned()),
            ]
        );
        assert!(read("WHEN ((old.id IS DISTINCT FROM new.id))").is_empty());
        let assigns = "BEGIN NEW.status = 'pending'; IF TG_OP = 'UPDATE' THEN NEW.n := 0; ELSE NEW.seen = true; END IF; RETURN NEW; END";
        assert!(read(assigns).is_empty(), "an assignment compares nothing: {:?}", read(assigns));
        assert_eq!(read("WHEN ((old.state = 'open'::text))")[0].1, "old.state = 'open'");
    }
}
