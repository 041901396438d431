//! What differs between two indexes of one name, part by part: its table, method, uniqueness,
//! key columns and expressions, operator classes, collations, key order, `INCLUDE` columns,
//! predicate, `NULLS NOT DISTINCT`, the constraint it backs, and storage parameters. A backup
//! can keep an index's name and change what it enforces (a unique index whose predicate now
//! matches no row enforces nothing); each difference is worded so that the auditor sees it.
//! And a scenario's key columns and predicate, as a person writes them, against the server's.

use crate::baseline::{IndexInfo, IndexParts};

/// A list in parentheses, `-` for an empty item.
fn listed(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().map(|i| if i.is_empty() { "-" } else { i.as_str() }).collect();
    format!("({})", shown.join(", "))
}

fn predicate(p: &Option<String>) -> String {
    match p {
        Some(p) => format!("WHERE {p}"),
        None => "none (every row)".into(),
    }
}

/// One flag of the index as a phrase about the restore's index against the baseline's.
fn flag(have: bool, want: bool, what: &str) -> Option<String> {
    match (have, want) {
        (true, false) => Some(format!("{what} where the baseline's does not")),
        (false, true) => Some(format!("does not {} where the baseline's does", what.replacen("s ", " ", 1))),
        _ => None,
    }
}

/// Each part of `have` (the restore's) that differs from `want` (the baseline's), as phrases
/// that follow the index's name: `covers (lower(email)) where the baseline has (email)`.
pub(super) fn parts_differ(want: &IndexParts, have: &IndexParts) -> Vec<String> {
    let mut out = Vec::new();
    let mut list = |what: &str, have: &[String], want: &[String]| {
        if have != want {
            out.push(format!("{what} {} where the baseline has {}", listed(have), listed(want)));
        }
    };
    list("covers", &have.keys, &want.keys);
    list("has operator classes", &have.opclasses, &want.opclasses);
    list("has collations", &have.collations, &want.collations);
    list("orders its keys", &have.orders, &want.orders);
    list("includes", &have.include, &want.include);
    list("has storage parameters", &have.options, &want.options);
    if have.predicate != want.predicate {
        out.push(format!(
            "has predicate {} where the baseline has {}",
            predicate(&have.predicate),
            predicate(&want.predicate)
        ));
    }
    out.extend(flag(have.nulls_not_distinct, want.nulls_not_distinct, "treats NULLs as equal (NULLS NOT DISTINCT)"));
    out.extend(flag(have.primary, want.primary, "backs the primary key"));
    out.extend(flag(have.exclusion, want.exclusion, "backs an exclusion constraint"));
    match (have.immediate, want.immediate) {
        (false, true) => {
            out.push("checks uniqueness at the end of the transaction where the baseline's checks each row".into())
        }
        (true, false) => out.push("checks uniqueness at each row where the baseline's defers it".into()),
        _ => {}
    }
    out
}

/// Each way the restore's index `have` differs from the baseline's `want`. Where the baseline
/// records no parts (captured before pgdrill recorded them) its definition stands for them.
pub(super) fn differences(want: &IndexInfo, have: &IndexInfo) -> Vec<String> {
    let mut out = Vec::new();
    if have.table != want.table {
        out.push(format!("is on {} where the baseline has {}", have.table, want.table));
    }
    if have.method != want.method {
        out.push(format!("uses {} where the baseline has {}", have.method, want.method));
    }
    match (have.unique, want.unique) {
        (false, true) => out.push("is not unique where the baseline's is".into()),
        (true, false) => out.push("is unique where the baseline's is not".into()),
        _ => {}
    }
    if let (Some(want_parts), Some(have_parts)) = (&want.parts, &have.parts) {
        out.extend(parts_differ(want_parts, have_parts));
    }
    if out.is_empty() && have.definition != want.definition {
        out.push(format!("is `{}` where the baseline has `{}`", have.definition, want.definition));
    }
    if out.is_empty() && have.opclasses != want.opclasses {
        out.push(format!(
            "has operator classes {} where the baseline has {}",
            listed(&have.opclasses),
            listed(&want.opclasses)
        ));
    }
    out
}

/// An expression as a person may write it and as the server prints it, made comparable: no
/// whitespace, outer parentheses dropped, case folded outside quotes (`deleted_at is null` and
/// `(deleted_at IS NULL)` are one predicate).
pub(super) fn normalised(expression: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    for c in expression.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c.is_whitespace() => {}
            None => out.extend(c.to_lowercase()),
        }
    }
    while out.starts_with('(') && out.ends_with(')') && encloses(&out) {
        out = out[1..out.len() - 1].to_owned();
    }
    out
}

/// Whether the first parenthesis of `text` closes at its last character.
fn encloses(text: &str) -> bool {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i == text.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(keys: &[&str], predicate: Option<&str>) -> IndexParts {
        IndexParts {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            opclasses: keys.iter().map(|_| "pg_catalog.text_ops".to_owned()).collect(),
            collations: keys.iter().map(|_| "pg_catalog.\"default\"".to_owned()).collect(),
            orders: keys.iter().map(|_| String::new()).collect(),
            include: vec![],
            predicate: predicate.map(str::to_owned),
            nulls_not_distinct: false,
            primary: false,
            exclusion: false,
            immediate: true,
            options: vec![],
        }
    }

    fn index(keys: &[&str], predicate: Option<&str>) -> IndexInfo {
        IndexInfo {
            name: crate::pg::QualifiedName::new("public", "users_email_key"),
            table: crate::pg::QualifiedName::new("public", "users"),
            method: "btree".into(),
            opclasses: vec!["text_ops".into()],
            unique: true,
            valid: true,
            definition: format!(
                "CREATE UNIQUE INDEX users_email_key ON public.users USING btree ({})",
                keys.join(", ")
            ),
            ready: Some(true),
            live: Some(true),
            parts: Some(parts(keys, predicate)),
        }
    }

    #[test]
    fn each_part_that_differs_is_named_with_the_baselines() {
        let want = index(&["email"], None);
        assert!(differences(&want, &want).is_empty());
        let cases: Vec<(IndexInfo, &str)> = vec![
            (index(&["lower(email)"], None), "covers (lower(email)) where the baseline has (email)"),
            (
                index(&["email"], Some("(id < 0)")),
                "has predicate WHERE (id < 0) where the baseline has none (every row)",
            ),
            (IndexInfo { unique: false, ..want.clone() }, "is not unique where the baseline's is"),
            (IndexInfo { method: "hash".into(), ..want.clone() }, "uses hash where the baseline has btree"),
            (
                IndexInfo { table: crate::pg::QualifiedName::new("public", "old"), ..want.clone() },
                "is on public.old where the baseline has public.users",
            ),
        ];
        for (have, says) in cases {
            let found = differences(&want, &have);
            assert!(found.iter().any(|d| d == says), "{found:?} does not say {says}");
        }
        let mut opclass = index(&["email"], None);
        if let Some(p) = opclass.parts.as_mut() {
            p.opclasses = vec!["public.text_ops".into()];
            p.nulls_not_distinct = true;
            p.immediate = false;
        }
        let found = differences(&want, &opclass);
        assert_eq!(
            found,
            [
                "has operator classes (public.text_ops) where the baseline has (pg_catalog.text_ops)",
                "treats NULLs as equal (NULLS NOT DISTINCT) where the baseline's does not",
                "checks uniqueness at the end of the transaction where the baseline's checks each row",
            ]
        );
    }

    #[test]
    fn a_baseline_without_parts_compares_the_definition() {
        let old = IndexInfo { parts: None, ready: None, live: None, ..index(&["email"], None) };
        assert!(differences(&old, &index(&["email"], None)).is_empty());
        let found = differences(&old, &index(&["lower(email)"], None));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(
            "is `CREATE UNIQUE INDEX users_email_key ON public.users USING btree (lower(email))` where the baseline has"
        ));
    }

    #[test]
    fn expressions_compare_as_written_or_as_printed() {
        assert_eq!(normalised("(deleted_at IS NULL)"), normalised("deleted_at is null"));
        assert_eq!(normalised("((a > 0) AND (b < 1))"), "(a>0)and(b<1)");
        assert_ne!(normalised("status = 'Open'"), normalised("status = 'open'"));
        assert_eq!(normalised("lower((email)::text)"), "lower((email)::text)");
    }
}
