//! `indexes`: one index the scenario names (`expect`), against what the entry says of it: its
//! table, method, operator class, uniqueness, key columns and expressions and predicate (as a
//! person writes them: spacing, case and outer parentheses aside), and that it is valid, ready
//! and live.

use std::time::Instant;

use super::{EVIDENCE, ExpectedIndex, Found, KIND, parts};
use crate::baseline::IndexInfo;
use crate::check::CheckResult;
use crate::names;
use crate::pg::{NameError, QualifiedName};

/// An index a scenario's `expect` names, its name and its table read once, when the scenario
/// is.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub name: QualifiedName,
    /// The table it must be on, when the entry says.
    pub table: Option<QualifiedName>,
    pub want: ExpectedIndex,
}

impl Expected {
    /// The entry `want`, its names read; the error names the one that is not a name.
    pub(super) fn read(want: ExpectedIndex) -> Result<Expected, NameError> {
        let name = QualifiedName::parse(&want.name)?;
        let table = want.table.as_deref().map(QualifiedName::parse).transpose()?;
        Ok(Expected { name, table, want })
    }
}

fn describe(index: &IndexInfo) -> String {
    let ops = if index.opclasses.is_empty() { String::new() } else { format!(" ({})", index.opclasses.join(", ")) };
    let keys = index.parts.as_ref().map(|p| format!(" covering ({})", p.keys.join(", "))).unwrap_or_default();
    let predicate =
        index.parts.as_ref().and_then(|p| p.predicate.as_ref()).map(|p| format!(" WHERE {p}")).unwrap_or_default();
    format!(
        "{}{} on {}{keys}{ops}{predicate}, {}",
        if index.unique { "unique " } else { "" },
        index.method,
        index.table,
        if index.healthy() {
            "valid, ready and live".to_owned()
        } else {
            format!(
                "{}, {}, {}",
                if index.valid { "valid" } else { "INVALID" },
                if index.ready == Some(false) { "NOT READY" } else { "ready" },
                if index.live == Some(false) { "NOT LIVE" } else { "live" }
            )
        }
    )
}

/// What the scenario says the index is, as the `expected` column shows it.
fn expected_text(want: &ExpectedIndex) -> String {
    let mut expected = Vec::new();
    if want.unique == Some(true) {
        expected.push("unique".to_owned());
    }
    expected.push(want.method.clone().unwrap_or_else(|| "any method".into()));
    if let Some(table) = &want.table {
        expected.push(format!("on {table}"));
    }
    if let Some(keys) = &want.keys {
        expected.push(format!("covering ({})", keys.join(", ")));
    }
    if let Some(opclass) = &want.opclass {
        expected.push(format!("({opclass})"));
    }
    if let Some(predicate) = want.predicate.as_deref().filter(|p| !p.trim().is_empty()) {
        expected.push(format!("WHERE {predicate}"));
    }
    expected.push("valid, ready and live".into());
    expected.join(" ")
}

/// Each way `index` is not what the scenario's entry says.
fn wrong_with(expected: &Expected, index: &IndexInfo) -> Vec<String> {
    let want = &expected.want;
    let mut wrong = Vec::new();
    if let Some(method) = &want.method
        && !index.method.eq_ignore_ascii_case(method)
    {
        wrong.push(format!("method {} instead of {method}", index.method));
    }
    if let (Some(table), Some(written)) = (&expected.table, &want.table)
        && !names::matches(table, &index.table)
    {
        wrong.push(format!("on {} instead of {written}", index.table));
    }
    if let Some(opclass) = &want.opclass
        && !index.opclasses.iter().any(|o| o == opclass)
    {
        wrong.push(format!("operator classes {} instead of {opclass}", index.opclasses.join(", ")));
    }
    if let Some(unique) = want.unique
        && unique != index.unique
    {
        wrong.push(if unique { "not unique".into() } else { "unique".to_owned() });
    }
    let parts = index.parts.as_ref();
    if let (Some(keys), Some(have)) = (&want.keys, parts)
        && (keys.len() != have.keys.len()
            || keys.iter().zip(&have.keys).any(|(w, h)| parts::normalised(w) != parts::normalised(h)))
    {
        wrong.push(format!("covering ({}) instead of ({})", have.keys.join(", "), keys.join(", ")));
    }
    if let (Some(predicate), Some(have)) = (&want.predicate, parts) {
        let matches = match &have.predicate {
            Some(p) => parts::normalised(p) == parts::normalised(predicate),
            None => predicate.trim().is_empty(),
        };
        if !matches {
            let have = match &have.predicate {
                Some(p) => format!("restricted to WHERE {p}"),
                None => "over every row".into(),
            };
            let want = if predicate.trim().is_empty() { "every row".into() } else { format!("WHERE {predicate}") };
            wrong.push(format!("{have} instead of {want}"));
        }
    }
    if let Some(why) = index.unhealthy() {
        wrong.push(why);
    }
    wrong
}

pub(super) fn expected_index(expected: &Expected, actual: &[IndexInfo], started: Instant) -> CheckResult {
    let name = &expected.name;
    let result =
        CheckResult::build(KIND, name.to_string(), started).expected(expected_text(&expected.want)).evidence(EVIDENCE);
    let found = actual.iter().find(|i| names::matches(name, &i.name));
    let Some(index) = found else {
        let existing: Vec<QualifiedName> = actual.iter().map(|i| i.name.clone()).collect();
        let hint = match names::closest(name, &existing) {
            Some(meant) => format!(" (hint: did you mean `{meant}`?)"),
            None => String::new(),
        };
        return result.actual("missing").found(Found::Missing, format!("index `{name}` does not exist{hint}"));
    };
    let wrong = wrong_with(expected, index);
    let result = result.actual(describe(index));
    if wrong.is_empty() {
        result.found(Found::Sound, format!("index `{name}` is {}", describe(index)))
    } else {
        result.found(Found::Differs, format!("index `{name}` is {}", wrong.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::index;
    use super::*;
    use crate::outcome::Verdict;

    fn want(method: &str, opclass: &str) -> ExpectedIndex {
        ExpectedIndex {
            name: "public.engrams_embedding_hnsw".into(),
            table: Some("public.engrams".into()),
            method: Some(method.into()),
            opclass: Some(opclass.into()),
            unique: None,
            keys: None,
            predicate: None,
        }
    }

    /// The entry `want`, read, under the name `name`.
    fn expected(name: &QualifiedName, want: ExpectedIndex) -> Expected {
        Expected { name: name.clone(), ..Expected::read(want).unwrap() }
    }

    #[test]
    fn an_expected_index_passes_as_found_and_fails_naming_what_differs() {
        let name = QualifiedName::parse("public.engrams_embedding_hnsw").unwrap();
        let good = [index("public.engrams_embedding_hnsw", "hnsw", "vector_cosine_ops", true)];
        let now = Instant::now();
        assert_eq!(
            expected_index(&expected(&name, want("hnsw", "vector_cosine_ops")), &good, now).verdict,
            Verdict::Pass
        );
        let not_ready = IndexInfo { ready: Some(false), unique: true, ..good[0].clone() };
        let not_live = IndexInfo { live: Some(false), ..good[0].clone() };
        let keyed = |keys: &[&str], predicate: Option<&str>| ExpectedIndex {
            keys: Some(keys.iter().map(|k| k.to_string()).collect()),
            predicate: predicate.map(str::to_owned),
            ..want("hnsw", "vector_cosine_ops")
        };
        let cases = [
            (vec![], want("hnsw", "vector_cosine_ops"), "does not exist"),
            (good.to_vec(), want("ivfflat", "vector_cosine_ops"), "method hnsw instead of ivfflat"),
            (
                good.to_vec(),
                want("hnsw", "vector_l2_ops"),
                "operator classes vector_cosine_ops instead of vector_l2_ops",
            ),
            (
                vec![index("public.engrams_embedding_hnsw", "hnsw", "vector_cosine_ops", false)],
                want("hnsw", "vector_cosine_ops"),
                "invalid (indisvalid = false",
            ),
            (
                vec![not_ready],
                want("hnsw", "vector_cosine_ops"),
                "is not ready (pg_index.indisready = false): it is not maintained, so rows written since are missing from it and uniqueness is not enforced",
            ),
            (vec![not_live], want("hnsw", "vector_cosine_ops"), "is not live (pg_index.indislive = false"),
            (good.to_vec(), keyed(&["lower(embedding)"], None), "covering (embedding) instead of (lower(embedding))"),
            (
                good.to_vec(),
                keyed(&["embedding"], Some("deleted_at IS NULL")),
                "is over every row instead of WHERE deleted_at IS NULL",
            ),
        ];
        // Keys and a predicate as a person writes them match the server's.
        let mut partial = good[0].clone();
        if let Some(p) = partial.parts.as_mut() {
            p.predicate = Some("(deleted_at IS NULL)".into());
        }
        let written = keyed(&["Embedding"], Some("deleted_at is null"));
        assert_eq!(expected_index(&expected(&name, written), &[partial], now).verdict, Verdict::Pass);
        assert_eq!(
            expected_index(&expected(&name, keyed(&["embedding"], Some(""))), &good, now).verdict,
            Verdict::Pass
        );
        // A table named without its schema is the index's table in whatever schema it is.
        let unqualified = ExpectedIndex { table: Some("engrams".into()), ..want("hnsw", "vector_cosine_ops") };
        assert_eq!(expected_index(&expected(&name, unqualified), &good, now).verdict, Verdict::Pass);
        let elsewhere = ExpectedIndex { table: Some("archive.engrams".into()), ..want("hnsw", "vector_cosine_ops") };
        let result = expected_index(&expected(&name, elsewhere), &good, now);
        assert!(result.message.contains("on public.engrams instead of archive.engrams"), "{}", result.message);
        // A name in the wrong case is missing, with the one it meant.
        let odd = [index("public.\"Engrams_HNSW\"", "hnsw", "vector_cosine_ops", true)];
        let written = QualifiedName::parse("public.Engrams_HNSW").unwrap();
        let result = expected_index(&expected(&written, want("hnsw", "vector_cosine_ops")), &odd, now);
        assert_eq!(result.verdict, Verdict::Fail);
        assert!(result.message.ends_with("(hint: did you mean `public.\"Engrams_HNSW\"`?)"), "{}", result.message);
        for (actual, wanted, says) in cases {
            let result = expected_index(&expected(&name, wanted), &actual, now);
            assert_eq!(result.verdict, Verdict::Fail, "{result:?}");
            assert!(result.message.contains(says), "{}", result.message);
        }
    }
}
