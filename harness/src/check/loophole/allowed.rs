//! The built-ins a protection may run and still be proven by the drill: an allow-list, not a
//! list of known tricks. A function of PostgreSQL (or of an extension) that a protection's code
//! reaches is allowed when it cannot tell the drill's session from the application's:
//!
//! - it is immutable: its result is its arguments' alone;
//! - it reads a setting by name (`current_setting`, `set_config`): the setting is then tried as
//!   a lever, or named, by [`super::facts`];
//! - it reads who the session is, or the restored catalog, the same for every login of the role
//!   (`has_table_privilege`, `pg_has_role`, `row_security_active`, `pg_get_userbyid`,
//!   `pg_get_expr`, ...): the probes are real logins of the role;
//! - its result follows only the session's formatting settings (`TimeZone`, `DateStyle`,
//!   `IntervalStyle`, `lc_*`, `extra_float_digits`): a timestamp's text, a JSON object's;
//! - it writes and reads nothing about the session (`pg_notify`, `pg_sleep`).
//!
//! Everything else (a stable or volatile built-in not named here: `current_database`,
//! `pg_is_in_recovery`, `random`, `nextval`, `pg_try_advisory_lock`, `version`, a view of
//! `pg_catalog` built on one of them) is a fact the drill cannot try, and fails as "proven only
//! for sessions like the drill's" unless the scenario trusts it with a reason. So a newer
//! major's functions are unproven by default.
//!
//! A function reached through the catalog's dependencies (a policy's expression, a rule, a
//! view, a SQL-standard body) is judged by its exact signature. One called by name in a
//! PL/pgSQL or SQL string body is judged by its name: allowed only when every overload of it
//! is (`age(timestamp, timestamp)` is immutable, but `age(timestamp)` reads the date: `age` is
//! not allowed).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use sqlx::PgConnection;

static CALLED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)"?([a-z_][a-z0-9_$]*)"?\s*\("#).expect("a valid pattern"));
static CATALOG_VIEW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(information_schema\s*\.\s*)?(pg_[a-z0-9_]+|[a-z_][a-z0-9_]*)\b").expect("a valid pattern")
});

/// Text that ends where a definition names its function (`CREATE OR REPLACE FUNCTION public.`).
static DEFINES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:function|procedure)\s+(?:"?[a-z_][a-z0-9_$]*"?\s*\.\s*)?$"#).expect("a valid pattern")
});

/// The names `code` calls (`name(`, quoted or not), lower-cased. A function's own name in its
/// definition (`CREATE OR REPLACE FUNCTION public.note(t text)`, as the walk reads each function
/// whole) calls nothing: its overloads are not reached through it.
pub(crate) fn called_names(code: &str) -> BTreeSet<String> {
    CALLED
        .captures_iter(code)
        .filter(|c| !defines(code, c.get(0).map_or(0, |m| m.start())))
        .map(|c| c[1].to_lowercase())
        .collect()
}

/// The catalog views `code` may name: `pg_*` words (`pg_catalog`'s), and names qualified by
/// `information_schema`.
pub(crate) fn catalog_views(code: &str) -> (Vec<String>, Vec<String>) {
    let (mut catalog, mut information) = (BTreeSet::new(), BTreeSet::new());
    for c in CATALOG_VIEW.captures_iter(code) {
        match c.get(1) {
            Some(_) => information.insert(c[2].to_owned()),
            None if c[2].starts_with("pg_") => catalog.insert(c[2].to_owned()),
            None => false,
        };
    }
    (catalog.into_iter().collect(), information.into_iter().collect())
}

/// Whether `code` names a function it defines at `at`: the definition's keyword is in the 200
/// bytes before it.
fn defines(code: &str, at: usize) -> bool {
    let mut from = at.saturating_sub(200);
    while !code.is_char_boundary(from) {
        from += 1;
    }
    DEFINES.is_match(&code[from..at])
}

/// Built-ins that are not immutable but read nothing the drill's session has otherwise than the
/// application's (see the module's text): by name, in `pg_catalog`.
const ALLOWED: &[&str] = &[
    // Settings by name: tried as levers, or named, by `facts`.
    "current_setting",
    "set_config",
    // Who the session is, and what the restored catalog holds.
    "current_user",
    "session_user",
    "current_role",
    "getpgusername",
    "pg_has_role",
    "row_security_active",
    "pg_get_userbyid",
    "format_type",
    "pg_get_expr",
    "pg_get_constraintdef",
    "pg_get_triggerdef",
    "pg_get_viewdef",
    "pg_get_ruledef",
    "pg_get_indexdef",
    "pg_get_functiondef",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_function_result",
    "pg_get_serial_sequence",
    "pg_describe_object",
    "pg_identify_object",
    "pg_identify_object_as_address",
    "obj_description",
    "col_description",
    "shobj_description",
    "aclexplode",
    "enum_first",
    "enum_last",
    "enum_range",
    "pg_typeof",
    "pg_column_size",
    "pg_collation_for",
    "pg_event_trigger_ddl_commands",
    "pg_event_trigger_dropped_objects",
    "pg_event_trigger_table_rewrite_oid",
    "pg_event_trigger_table_rewrite_reason",
    // Formatting: their text follows the session's TimeZone, DateStyle, IntervalStyle, lc_* and
    // extra_float_digits only.
    "anytextcat",
    "textanycat",
    "array_to_json",
    "array_to_string",
    "concat",
    "concat_ws",
    "format",
    "quote_literal",
    "quote_nullable",
    "to_char",
    "to_date",
    "to_number",
    "to_timestamp",
    "to_json",
    "to_jsonb",
    "row_to_json",
    "json_agg",
    "json_agg_transfn",
    "jsonb_agg",
    "jsonb_agg_transfn",
    "jsonb_agg_finalfn",
    "json_build_array",
    "json_build_object",
    "jsonb_build_array",
    "jsonb_build_object",
    "json_object_agg",
    "json_object_agg_transfn",
    "jsonb_object_agg_transfn",
    "jsonb_object_agg_finalfn",
    "json_populate_record",
    "json_populate_recordset",
    "jsonb_populate_record",
    "jsonb_populate_recordset",
    "json_to_record",
    "json_to_recordset",
    "jsonb_to_record",
    "jsonb_to_recordset",
    "generate_series",
    "in_range",
    "length",
    "numeric",
    "timezone",
    // Text search: follows the session's default_text_search_config.
    "to_tsvector",
    "to_tsquery",
    "plainto_tsquery",
    "phraseto_tsquery",
    "websearch_to_tsquery",
    "json_to_tsvector",
    "jsonb_to_tsvector",
    "ts_headline",
    "ts_parse",
    "ts_rewrite",
    "ts_token_type",
    "getdatabaseencoding",
    "pg_client_encoding",
    "pg_char_to_encoding",
    "pg_encoding_to_char",
    // Writes or waits, and reads nothing of the session.
    "pg_notify",
    "pg_sleep",
    "suppress_redundant_updates_trigger",
];

/// Whether the built-in `name` (in `pg_catalog`), of volatility `volatility`
/// (`pg_proc.provolatile`), is allowed by its exact signature.
pub(crate) fn allowed(name: &str, volatility: &str) -> bool {
    volatility == "i"
        || ALLOWED.contains(&name)
        || (name.starts_with("has_") && name.ends_with("_privilege"))
        || formats_time(name, volatility)
}

/// The stable comparisons and arithmetic of `date`, `timestamp`, `timestamptz`, `time` and
/// `interval` (`timestamptz_lt_date`, `date_part`): they follow the session's TimeZone only.
fn formats_time(name: &str, volatility: &str) -> bool {
    volatility == "s"
        && ["date", "timestamp", "timestamptz", "time", "timetz", "interval", "extract", "overlaps"]
            .iter()
            .any(|t| name == *t || name.starts_with(&format!("{t}_")))
}

/// A built-in the allow-list does not hold, reached by a protection: its name (or a view's,
/// with the function it is built on), and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unvetted {
    pub name: String,
    pub path: String,
}

/// Built-ins by name (`pg_catalog`'s and the extensions', lower-cased as the code is read): each
/// name with every overload's volatility.
const BY_NAME_SQL: &str = "SELECT pg_catalog.lower(p.proname::pg_catalog.text), \
       pg_catalog.array_agg(p.provolatile::pg_catalog.text) \
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace \
 WHERE pg_catalog.lower(p.proname::pg_catalog.text) OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]) \
   AND (n.nspname OPERATOR(pg_catalog.=) ANY ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass \
                     AND e.objid OPERATOR(pg_catalog.=) p.oid AND e.deptype OPERATOR(pg_catalog.=) 'e')) \
 GROUP BY 1";

/// Views of `pg_catalog` and `information_schema` by name (`$1`: bare `pg_*` names, `$2`:
/// `information_schema`'s), with the name and volatility of each function their definition
/// records.
const VIEWS_SQL: &str = "SELECT n.nspname::pg_catalog.text OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) c.relname::pg_catalog.text, \
       f.proname::pg_catalog.text, f.provolatile::pg_catalog.text \
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
  JOIN pg_catalog.pg_rewrite r ON r.ev_class OPERATOR(pg_catalog.=) c.oid \
  JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) r.oid \
   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass \
  JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) d.refobjid \
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::pg_catalog.\"char\"[]) \
   AND ((n.nspname OPERATOR(pg_catalog.=) 'pg_catalog' AND c.relname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[])) \
     OR (n.nspname OPERATOR(pg_catalog.=) 'information_schema' AND c.relname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])))";

/// The built-ins `code` (a body with its comments and string literals blanked, the literals it
/// `EXECUTE`s kept) calls by name, and the catalog views it names, that the allow-list does not
/// hold: names [`super::facts`] already reads as facts are left to it.
pub(crate) async fn unvetted_in(conn: &mut PgConnection, code: &str, path: &str) -> sqlx::Result<Vec<Unvetted>> {
    let called: Vec<String> = called_names(code).into_iter().collect();
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(BY_NAME_SQL).bind(&called).fetch_all(&mut *conn).await?;
    let mut out = Vec::new();
    for (name, volatilities) in rows {
        let vetted = volatilities.iter().all(|v| allowed(&name, v));
        if !vetted && !super::facts::is_named(&name) {
            out.push(Unvetted { name, path: path.to_owned() });
        }
    }
    let (catalog, information): (Vec<String>, Vec<String>) = catalog_views(code);
    let views: Vec<(String, String, String)> =
        sqlx::query_as(VIEWS_SQL).bind(&catalog).bind(&information).fetch_all(&mut *conn).await?;
    let mut named: BTreeSet<String> = BTreeSet::new();
    for (view, function, volatility) in views {
        let bare = view.rsplit('.').next().unwrap_or_default().to_owned();
        if allowed(&function, &volatility) || super::facts::is_named(&bare) || !named.insert(view.clone()) {
            continue;
        }
        out.push(Unvetted { name: format!("{view} (built on {function})"), path: path.to_owned() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definitions_own_name_is_not_a_call() {
        let text = "CREATE OR REPLACE FUNCTION public.note(t text)\n RETURNS void AS $$ BEGIN PERFORM public.log(t); PERFORM \"Other\"(1); END $$";
        let called: Vec<String> = called_names(text).into_iter().collect();
        assert_eq!(called, ["log", "other"]);
        assert!(called_names("CREATE PROCEDURE \"app\" . \"note\" ()").is_empty());
        assert_eq!(called_names("SELECT note(1) AS function").into_iter().collect::<Vec<_>>(), ["note"]);
    }

    #[test]
    fn immutable_settings_identity_and_formatting_are_allowed_and_the_rest_is_not() {
        for (name, volatility) in [
            ("lower", "i"),
            ("current_setting", "s"),
            ("has_table_privilege", "s"),
            ("to_jsonb", "s"),
            ("timestamptz_lt_date", "s"),
            ("date_part", "s"),
        ] {
            assert!(allowed(name, volatility), "{name}");
        }
        for (name, volatility) in [
            ("current_database", "s"),
            ("pg_is_in_recovery", "v"),
            ("random", "v"),
            ("nextval", "v"),
            ("version", "s"),
            ("timestamptz_newfunction", "v"),
            ("age", "s"),
        ] {
            assert!(!allowed(name, volatility), "{name}");
        }
    }
}
