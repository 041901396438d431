//! The name a scenario probably meant, when the one it wrote does not resolve: the same name
//! in another case (`public.track` for `public."Track"`: unquoted names fold to lower case), in
//! another schema, or one typo away. Checks add it to "does not exist" as
//! `(hint: did you mean `public."Track"`?)`.

use sqlx::PgPool;

use crate::pg::QualifiedName;

/// What kind of object a name was meant to name, and where the catalogs list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Object {
    /// A table (plain or partitioned), view, materialized view or foreign table: what
    /// `FROM <name>` reads.
    Table,
    Role,
    Schema,
}

impl Object {
    /// The catalog query listing every object of this kind as (schema, name) rows.
    fn catalog_sql(self) -> &'static str {
        const RELATIONS: &str = "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind::text = ANY($1) AND n.nspname <> 'information_schema' \
             AND n.nspname NOT LIKE 'pg\\_%'";
        match self {
            Object::Table => RELATIONS,
            Object::Role => "SELECT NULL::text, rolname::text FROM pg_catalog.pg_roles WHERE $1::text[] IS NOT NULL",
            Object::Schema => {
                "SELECT NULL::text, nspname::text FROM pg_catalog.pg_namespace \
                 WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%' AND $1::text[] IS NOT NULL"
            }
        }
    }

    fn relkinds(self) -> Vec<String> {
        let kinds: &[&str] = match self {
            Object::Table => &["r", "p", "v", "m", "f"],
            Object::Role | Object::Schema => &[],
        };
        kinds.iter().map(|k| (*k).to_owned()).collect()
    }
}

/// The existing object closest to `written`, if one is close enough to be what was meant.
/// A catalog query that fails gives no suggestion: a hint is never worth an error.
pub(crate) async fn suggest(pool: &PgPool, object: Object, written: &QualifiedName) -> Option<QualifiedName> {
    let rows: Vec<(Option<String>, String)> =
        sqlx::query_as(object.catalog_sql()).bind(object.relkinds()).fetch_all(pool).await.ok()?;
    let candidates: Vec<QualifiedName> =
        rows.into_iter().map(|(schema, name)| QualifiedName { schema, name }).collect();
    closest(written, &candidates).cloned()
}

/// `message` with a did-you-mean hint when the catalogs hold a name close to `written`.
pub(crate) async fn with_hint(pool: &PgPool, object: Object, written: &QualifiedName, message: String) -> String {
    match suggest(pool, object, written).await {
        Some(meant) => format!("{message} (hint: did you mean `{meant}`?)"),
        None => message,
    }
}

/// The candidate `written` most probably meant: the same name but for case, then the same name
/// in another schema (when `written` names none, or names one where it is not), then a name a
/// typo or two away in the same schema. Never `written` itself.
pub(crate) fn closest<'a>(written: &QualifiedName, candidates: &'a [QualifiedName]) -> Option<&'a QualifiedName> {
    let name = written.name.to_lowercase();
    let typos = if name.chars().count() >= 8 { 2 } else { 1 };
    candidates
        .iter()
        .filter(|c| !same_object(written, c))
        .filter_map(|c| {
            let schema_rank = match (&written.schema, &c.schema) {
                (None, None) => 0,
                (None, Some(s)) => usize::from(s != "public"),
                (Some(w), Some(s)) if w == s => 0,
                (Some(w), Some(s)) if w.to_lowercase() == s.to_lowercase() => 1,
                _ => 2,
            };
            let candidate = c.name.to_lowercase();
            let name_rank = if c.name == written.name {
                0
            } else if candidate == name {
                1
            } else {
                let distance = strsim::levenshtein(&name, &candidate);
                // A typo is suggested only in the schema that was meant.
                if distance > typos || schema_rank > 1 {
                    return None;
                }
                1 + distance
            };
            Some(((name_rank, schema_rank), c))
        })
        .min_by(|(a, x), (b, y)| a.cmp(b).then_with(|| (&x.schema, &x.name).cmp(&(&y.schema, &y.name))))
        .map(|(_, c)| c)
}

/// Whether `written` names `have` (schema-qualified, from the catalogs), where a name written
/// without a schema is looked for in every schema: how `indexes` and `vector_recall` find an
/// index, whose schema is its table's.
pub(crate) fn matches(written: &QualifiedName, have: &QualifiedName) -> bool {
    written.name == have.name && written.schema.as_ref().is_none_or(|s| Some(s) == have.schema.as_ref())
}

/// Whether `written` resolves to `candidate` as the server would (an unqualified name through
/// the default `search_path`, which leads with `public`).
fn same_object(written: &QualifiedName, candidate: &QualifiedName) -> bool {
    written.name == candidate.name
        && match (&written.schema, &candidate.schema) {
            (None, Some(s)) => s == "public",
            (w, s) => w == s,
        }
}

/// The object a "does not exist" error names (`relation "public.track" does not exist`,
/// SQLSTATE 42P01; `role "x"`, 42704, or 22023 from SET ROLE; `schema "x"`, 3F000), for a hint on SQL the scenario wrote.
pub(crate) fn missing_in(err: &sqlx::Error) -> Option<(Object, QualifiedName)> {
    let sqlx::Error::Database(db) = err else { return None };
    missing_named(db.code().as_deref()?, db.message())
}

/// [`missing_in`], from an error's SQLSTATE and message.
fn missing_named(code: &str, message: &str) -> Option<(Object, QualifiedName)> {
    let object = match code {
        "42P01" => Object::Table,
        // SET ROLE to a role that does not exist fails as an invalid setting (22023).
        "42704" | "22023" if message.starts_with("role \"") => Object::Role,
        "3F000" => Object::Schema,
        _ => return None,
    };
    let quoted = message.split('"').nth(1)?;
    let name = match (object, quoted.split_once('.')) {
        (Object::Table, Some((schema, name))) => QualifiedName::new(schema, name),
        _ => QualifiedName { schema: None, name: quoted.to_owned() },
    };
    Some((object, name))
}

/// [`crate::pg::describe_sql_error`], with a did-you-mean hint when the error is about a name
/// that does not exist and the catalogs hold one close to it.
pub(crate) async fn describe_error(pool: &PgPool, err: &sqlx::Error) -> String {
    let message = crate::pg::describe_sql_error(err);
    match missing_in(err) {
        Some((object, name)) => with_hint(pool, object, &name, message).await,
        None => message,
    }
}

/// [`describe_error`] for an error with SQLSTATE `code` and message `message` (from another
/// client than pgdrill's own sessions), described as `described`.
pub(crate) async fn describe_answer(pool: &PgPool, code: &str, message: &str, described: String) -> String {
    match missing_named(code, message) {
        Some((object, name)) => with_hint(pool, object, &name, described).await,
        None => described,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<QualifiedName> {
        list.iter().map(|n| QualifiedName::parse(n).unwrap()).collect()
    }

    fn meant(written: &str, list: &[&str]) -> Option<String> {
        let candidates = names(list);
        closest(&QualifiedName::parse(written).unwrap(), &candidates).map(ToString::to_string)
    }

    #[test]
    fn case_and_quoting() {
        let tables = ["public.\"Track\"", "public.album", "music.\"Artist\""];
        assert_eq!(meant("public.track", &tables).as_deref(), Some("public.\"Track\""));
        assert_eq!(meant("public.Track", &tables).as_deref(), Some("public.\"Track\""));
        assert_eq!(meant("track", &tables).as_deref(), Some("public.\"Track\""));
        assert_eq!(meant("music.artist", &tables).as_deref(), Some("music.\"Artist\""));
        assert_eq!(meant("\"Music\".\"Artist\"", &tables).as_deref(), Some("music.\"Artist\""));
    }

    #[test]
    fn another_schema_then_typos() {
        let tables = ["app.users", "public.user_roles", "public.accounts", "audit.accounts"];
        assert_eq!(meant("users", &tables).as_deref(), Some("app.users"));
        assert_eq!(meant("public.users", &tables).as_deref(), Some("app.users"));
        assert_eq!(meant("public.acounts", &tables).as_deref(), Some("public.accounts"));
        assert_eq!(meant("audit.acounts", &tables).as_deref(), Some("audit.accounts"));
        // The same name in public wins over another schema's.
        assert_eq!(meant("\"Accounts\"", &tables).as_deref(), Some("public.accounts"));
    }

    #[test]
    fn nothing_close_means_no_hint() {
        let tables = ["public.users", "public.orders"];
        assert_eq!(meant("public.invoices", &tables), None);
        // A short name is allowed one typo, not two.
        assert_eq!(meant("public.odrs", &tables), None);
        // A typo is not suggested across schemas.
        assert_eq!(meant("billing.user", &tables), None);
        // The name itself is never suggested.
        assert_eq!(meant("users", &tables), None);
        assert_eq!(meant("public.users", &tables), None);
    }

    #[test]
    fn roles_and_schemas_have_no_schema() {
        let roles = names(&["\"AppUser\"", "auditor", "postgres"]);
        let written = QualifiedName::parse("appuser").unwrap();
        assert_eq!(closest(&written, &roles).map(ToString::to_string).as_deref(), Some("\"AppUser\""));
        let written = QualifiedName::parse("auditors").unwrap();
        assert_eq!(closest(&written, &roles).map(ToString::to_string).as_deref(), Some("auditor"));
    }
}
