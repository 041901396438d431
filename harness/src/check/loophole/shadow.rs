//! Whether a function's body looks up names at run time where a caller's temporary objects
//! come first. PostgreSQL searches the session's temporary schema before the rest of the
//! `search_path`, unless the path names it, for tables, views and types only (never for
//! functions or operators), and a PL/pgSQL or SQL string body is parsed when it runs: a name in
//! a table's or a type's position there may be the caller's. A body with none (a guard that
//! only raises, a trigger that sets `NEW.at := now()` and returns) has nothing to shadow; a
//! SQL-standard body (`BEGIN ATOMIC`) was bound when it was created. What is not clearly free of
//! such names counts as having them.

use std::sync::LazyLock;

use regex::Regex;

/// Words after which a table or a type may be named, and `::` casts.
static NAMES_RELATION_OR_TYPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"::|%(?:row)?type\b|\b(?:cast|declare|select|insert|update|delete|merge|from|join|into|table|execute|copy|lock|truncate|alter|create|drop|grant|revoke|comment|with|returning|alias|record)\b",
    )
    .expect("a valid pattern")
});

/// A word before a string literal: a typed literal (`date '2026-01-01'`) names a type.
static BEFORE_LITERAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([a-z_][a-z0-9_$]*)\s*'").expect("a valid pattern"));

/// PL/pgSQL's and SQL's words that may stand before a literal without naming a type.
const NOT_TYPES: &[&str] = &[
    "raise",
    "exception",
    "notice",
    "warning",
    "info",
    "log",
    "debug",
    "return",
    "then",
    "else",
    "elsif",
    "when",
    "and",
    "or",
    "not",
    "is",
    "in",
    "like",
    "ilike",
    "similar",
    "to",
    "as",
    "by",
    "case",
    "between",
    "if",
    "begin",
    "end",
    "errcode",
    "message",
    "detail",
    "hint",
    "column",
    "constraint",
    "datatype",
    "schema",
    "using",
    "escape",
];

/// The body of a function's definition (`pg_get_functiondef`): between its dollar quotes.
/// `None` for a SQL-standard body, bound when it was created.
fn body(definition: &str) -> Option<&str> {
    let start = definition.find("\nAS $").or_else(|| definition.find("\n AS $"))?;
    let after = &definition[start..];
    let open = after.find('$')?;
    let close = after[open + 1..].find('$')? + open + 1;
    let tag = &after[open..=close];
    let rest = &after[close + 1..];
    let end = rest.find(tag).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Whether `definition` (a function's, as `pg_get_functiondef` writes it) may name, in its body,
/// a table, view or type that a caller's temporary one would shadow.
pub(crate) fn may_name_relations_or_types(definition: &str) -> bool {
    let lower = definition.to_lowercase();
    if !lower.contains("\nas $") && !lower.contains("\n as $") {
        // No quoted body: SQL-standard (`BEGIN ATOMIC`, `RETURN expr`), bound at creation.
        return !lower.contains("begin atomic") && !lower.contains("\n return ");
    }
    let Some(text) = body(definition) else { return true };
    let code = super::facts::code(text);
    if NAMES_RELATION_OR_TYPE.is_match(&code) {
        return true;
    }
    BEFORE_LITERAL.captures_iter(&code).any(|c| !NOT_TYPES.contains(&&c[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "CREATE OR REPLACE FUNCTION public.guard()\n RETURNS trigger\n LANGUAGE plpgsql\n SECURITY DEFINER\n SET search_path TO 'public', 'pg_catalog'\nAS $function$\n";

    fn with(body: &str) -> String {
        format!("{HEAD}{body}\n$function$\n")
    }

    #[test]
    fn a_guard_that_only_raises_or_stamps_names_nothing_a_temporary_object_shadows() {
        for free in [
            "BEGIN\n  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = '42501';\nEND;",
            "BEGIN\n  IF TG_OP = 'DELETE' THEN RAISE EXCEPTION 'no'; END IF;\n  NEW.updated_at := now();\n  RETURN NEW;\nEND;",
        ] {
            assert!(!may_name_relations_or_types(&with(free)), "{free}");
        }
    }

    #[test]
    fn a_table_a_cast_a_declaration_or_a_typed_literal_may_be_shadowed() {
        for named in [
            "BEGIN\n  INSERT INTO audit VALUES (NEW.id);\n  RETURN NEW;\nEND;",
            "BEGIN\n  IF NEW.what::text = 'x' THEN RETURN NULL; END IF;\n  RETURN NEW;\nEND;",
            "DECLARE\n  v text;\nBEGIN\n  RETURN NEW;\nEND;",
            "BEGIN\n  IF NEW.at < date '2026-01-01' THEN RETURN NULL; END IF;\n  RETURN NEW;\nEND;",
            "BEGIN\n  PERFORM 1 FROM ledger;\n  RETURN NEW;\nEND;",
            "BEGIN\n  EXECUTE 'delete' || ' from audit';\n  RETURN NEW;\nEND;",
        ] {
            assert!(may_name_relations_or_types(&with(named)), "{named}");
        }
        // A body pgdrill cannot find is taken to name them.
        assert!(may_name_relations_or_types("CREATE OR REPLACE FUNCTION public.f()\n RETURNS int\nAS $x$ SELECT 1"));
    }

    #[test]
    fn a_sql_standard_body_was_bound_when_it_was_created() {
        let atomic = "CREATE OR REPLACE FUNCTION public.f()\n RETURNS integer\n LANGUAGE sql\n SECURITY DEFINER\nBEGIN ATOMIC\n SELECT count(*) FROM audit;\nEND\n";
        assert!(!may_name_relations_or_types(atomic));
    }
}
