//! PostgreSQL names and values: quoting identifiers and literals the way the server parses
//! them, splitting the `schema.table` names that scenarios use, reading memory sizes, comparing
//! versions, and saying what a database error was.

/// `name` as a quoted identifier: `"name"`, with embedded quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `SET LOCAL ROLE "role"`: the rest of the transaction runs as `role`, as a migration's
/// statements do (and say in their evidence). Checks never use it: they log in as the role.
pub(crate) fn set_local_role(role: &str) -> String {
    format!("SET LOCAL ROLE {}", quote_ident(role))
}

/// `value` as a standard-conforming string literal.
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A possibly schema-qualified object name: `users`, `public.users`, `"My Schema"."Odd.Name"`,
/// as a scenario writes it (unquoted parts folded to lower case, as the server would) or as
/// the catalogs hold it. Baseline and fingerprint files write it as it is shown
/// (`graph."User"`) and read it back with the same parser.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    /// The schema, when one was given.
    pub schema: Option<String>,
    /// The object's own name.
    pub name: String,
}

/// Why a name as written in a scenario is not one: a parse error of the text itself, with no
/// cause beneath it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NameError {
    /// More than two dotted parts.
    #[error("`{text}` is not a name or a schema.name")]
    NotAName { text: String },
    /// A quoted part without its closing quote.
    #[error("`{text}` has an unterminated quoted name")]
    Unterminated { text: String },
    /// Nothing between two dots, or before or after one.
    #[error("`{text}` has an empty name part")]
    EmptyPart { text: String },
    /// A character after a quoted part that is not a dot.
    #[error("unexpected `{found}` in `{text}`")]
    Unexpected { found: char, text: String },
}

impl QualifiedName {
    pub(crate) fn parse(text: &str) -> Result<Self, NameError> {
        let parts = split_dotted(text)?;
        match parts.as_slice() {
            [name] => Ok(Self { schema: None, name: name.clone() }),
            [schema, name] => Ok(Self { schema: Some(schema.clone()), name: name.clone() }),
            _ => Err(NameError::NotAName { text: text.to_owned() }),
        }
    }

    /// The name quoted for SQL, always with its schema (`public` when none was given):
    /// `"public"."users"`. pgdrill's sessions resolve names in `pg_catalog` only
    /// ([`crate::session`]), so that a name the backup put earlier on a search path never stands
    /// in for the table the scenario meant.
    pub(crate) fn sql(&self) -> String {
        format!("{}.{}", quote_ident(self.schema_or_public()), quote_ident(&self.name))
    }

    /// The schema, `public` when none was given.
    pub(crate) fn schema_or_public(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }
}

/// Ordered as shown (`public."Zeta x"` before `public.apple`), so that the names of a file's
/// map, and the lists made from them, come in the order their text did when files kept text.
/// Two names that differ are shown differently (parsing reads each back).
impl Ord for QualifiedName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self == other { std::cmp::Ordering::Equal } else { self.to_string().cmp(&other.to_string()) }
    }
}

impl PartialOrd for QualifiedName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Written as it is shown ([`std::fmt::Display`]), in a file's values and map keys alike.
impl serde::Serialize for QualifiedName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read with the parser of names a scenario writes: a text that is not a name fails the file,
/// saying which.
impl<'de> serde::Deserialize<'de> for QualifiedName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = QualifiedName;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a name or a schema.name")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<QualifiedName, E> {
                QualifiedName::parse(text).map_err(|e| E::custom(format_args!("not a qualified name: {e}")))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl QualifiedName {
    /// A name in a given schema.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName { schema: Some(schema.into()), name: name.into() }
    }
}

/// Shown as written in SQL, quoting only where needed (`public.users`, `graph."User"`), so that
/// parsing reads back what was shown.
impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{}.{}", quote_ident_if_needed(schema), quote_ident_if_needed(&self.name)),
            None => f.write_str(&quote_ident_if_needed(&self.name)),
        }
    }
}

/// One identifier as the server stores it: unquoted, folded to lower case (`Plur_App` is
/// `plur_app`); quoted, as written (`"AppUser"` is `AppUser`). Text that is not one
/// identifier is kept as it is.
pub(crate) fn fold_ident(text: &str) -> String {
    match split_dotted(text).as_deref() {
        Ok([name]) => name.clone(),
        _ => text.to_owned(),
    }
}

/// `name` bare when it reads back as itself (lower case letters, digits, `_`, `$`), quoted
/// otherwise.
pub(crate) fn quote_ident_if_needed(name: &str) -> String {
    let simple = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if simple { name.to_owned() } else { quote_ident(name) }
}

fn split_dotted(text: &str) -> Result<Vec<String>, NameError> {
    let mut parts = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(NameError::Unterminated { text: text.to_owned() }),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
        }
        if part.is_empty() {
            return Err(NameError::EmptyPart { text: text.to_owned() });
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => continue,
            Some(found) => return Err(NameError::Unexpected { found, text: text.to_owned() }),
        }
    }
}

/// A type's `pg_type.typcategory`: what kind of value it holds, as the parser groups types (see
/// PostgreSQL's `pg_type` documentation, table "typcategory Codes").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum TypeCategory {
    Array,
    Boolean,
    Composite,
    DateTime,
    Enum,
    Geometric,
    Network,
    Numeric,
    Pseudo,
    Range,
    String,
    Timespan,
    UserDefined,
    BitString,
    #[default]
    Unknown,
    Internal,
}

impl TypeCategory {
    /// The category of a `typcategory` code; a code PostgreSQL does not define is `UserDefined`
    /// (an extension may choose its own letter).
    pub(crate) fn of_code(code: &str) -> TypeCategory {
        match code {
            "A" => TypeCategory::Array,
            "B" => TypeCategory::Boolean,
            "C" => TypeCategory::Composite,
            "D" => TypeCategory::DateTime,
            "E" => TypeCategory::Enum,
            "G" => TypeCategory::Geometric,
            "I" => TypeCategory::Network,
            "N" => TypeCategory::Numeric,
            "P" => TypeCategory::Pseudo,
            "R" => TypeCategory::Range,
            "S" => TypeCategory::String,
            "T" => TypeCategory::Timespan,
            "V" => TypeCategory::BitString,
            "X" => TypeCategory::Unknown,
            "Z" => TypeCategory::Internal,
            _ => TypeCategory::UserDefined,
        }
    }
}

/// The major version of a `server_version_num` (170011 -> 17; 90624 -> 906, as 9.6 was a major version).
pub(crate) fn major_of_version_num(num: u32) -> u32 {
    if num >= 100_000 { num / 10_000 } else { num / 100 }
}

/// The major version in a version string such as `17.11 (Debian 17.11-0+deb13u1)` or `9.6.24`.
pub(crate) fn major_of_version_text(text: &str) -> Option<u32> {
    let mut parts = text.trim().split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    if first >= 10 {
        Some(first)
    } else {
        // 9.6 and older: the major version is the first two numbers.
        let second: u32 = parts.next()?.parse().ok()?;
        Some(first * 100 + second)
    }
}

/// Parses a PostgreSQL memory size (`512MB`, `2GB`, `65536kB`, `1024` in kB).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "kB" => 1024,
        "B" => 1,
        "MB" => MIB,
        "GB" => GIB,
        "TB" => 1024 * GIB,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Compares extension versions part by part: numerically where both parts are numbers
/// (`0.10.0` > `0.8.0`), as text otherwise.
pub(crate) fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |v: &str| -> Vec<String> { v.split(['.', '-', '_']).map(str::to_owned).collect() };
    let (a, b) = (split(a), split(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).map(String::as_str).unwrap_or("0"), b.get(i).map(String::as_str).unwrap_or("0"));
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if order != std::cmp::Ordering::Equal {
            return order;
        }
    }
    std::cmp::Ordering::Equal
}

/// A database error as one line: its SQLSTATE and message (and detail), for check results.
pub(crate) fn describe_sql_error(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => {
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            match pg {
                Some(pg) => match pg.detail() {
                    Some(detail) => format!("{} ({}; {})", pg.message(), pg.code(), detail),
                    None => format!("{} ({})", pg.message(), pg.code()),
                },
                None => db.message().to_owned(),
            }
        }
        other => other.to_string(),
    }
}

/// A database error kept whole, that reads as [`describe_sql_error`] says it: the cause of an
/// error whose message was `...: {describe_sql_error}`, so that its chain reads as it did.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe_sql_error(.error))]
pub(crate) struct SqlError {
    pub error: sqlx::Error,
}

impl From<sqlx::Error> for SqlError {
    fn from(error: sqlx::Error) -> Self {
        SqlError { error }
    }
}

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        use std::cmp::Ordering;
        assert_eq!(compare_versions("0.10.0", "0.8.0"), Ordering::Greater);
        assert_eq!(compare_versions("0.8", "0.8.0"), Ordering::Equal);
        assert_eq!(compare_versions("1.5.0", "1.6"), Ordering::Less);
    }

    #[test]
    fn identifiers_fold_as_the_server_folds_them() {
        assert_eq!(fold_ident("Plur_App"), "plur_app");
        assert_eq!(fold_ident("\"AppUser\""), "AppUser");
        assert_eq!(fold_ident("Tenant_Isolation"), "tenant_isolation");
        assert_eq!(fold_ident("odd.name"), "odd.name", "not one identifier: as written");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MB"), Some(512 * MIB));
        assert_eq!(parse_size("65536kB"), Some(64 * MIB));
        assert_eq!(parse_size("1024"), Some(MIB));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn qualified_names() {
        let n = QualifiedName::parse("Public.Users").unwrap();
        assert_eq!(n.sql(), r#""public"."users""#);
        let n = QualifiedName::parse(r#""My Schema"."Odd.Name""#).unwrap();
        assert_eq!(n.schema.as_deref(), Some("My Schema"));
        assert_eq!(n.name, "Odd.Name");
        assert_eq!(QualifiedName::parse("users").unwrap().schema_or_public(), "public");
        assert_eq!(QualifiedName::parse("a.b.c"), Err(NameError::NotAName { text: "a.b.c".into() }));
        assert_eq!(QualifiedName::parse("a..b"), Err(NameError::EmptyPart { text: "a..b".into() }));
        assert_eq!(
            QualifiedName::parse(r#""a"b"#).unwrap_err().to_string(),
            r#"unexpected `b` in `"a"b`"#,
            "the message a scenario's field error shows"
        );
        let odd = QualifiedName::new("graph", "User");
        assert_eq!(odd.to_string(), r#"graph."User""#);
        assert_eq!(QualifiedName::parse(&odd.to_string()).unwrap(), odd);
    }

    #[test]
    fn names_are_written_as_shown_and_read_back_in_values_and_keys() {
        use std::collections::BTreeMap;
        let odd = QualifiedName::new("graph", "User");
        let counts = BTreeMap::from([(odd.clone(), 3_i64), (QualifiedName::new("public", "users"), 5)]);
        let text = serde_json::to_string(&counts).unwrap();
        assert_eq!(text, r#"{"graph.\"User\"":3,"public.users":5}"#);
        assert_eq!(serde_json::from_str::<BTreeMap<QualifiedName, i64>>(&text).unwrap(), counts);
        assert_eq!(serde_json::to_string(&odd).unwrap(), r#""graph.\"User\"""#);
        let shown = ["public.\"Zeta x\"", "public.apple", "public.zeta", "zeta.a"];
        let mut names: Vec<QualifiedName> = shown.iter().rev().map(|n| QualifiedName::parse(n).unwrap()).collect();
        names.sort();
        assert_eq!(names.iter().map(ToString::to_string).collect::<Vec<_>>(), shown, "ordered as shown");
        assert_eq!(serde_json::from_str::<QualifiedName>(r#""graph.\"User\"""#).unwrap(), odd);
        let err = serde_json::from_str::<QualifiedName>(r#""public.\"unterminated""#).unwrap_err();
        assert!(
            err.to_string().starts_with(r#"not a qualified name: `public."unterminated` has an unterminated"#),
            "{err}"
        );
        let err = serde_json::from_str::<BTreeMap<QualifiedName, i64>>(r#"{"a.b.c": 1}"#).unwrap_err();
        assert!(err.to_string().contains("`a.b.c` is not a name or a schema.name"), "{err}");
    }

    #[test]
    fn versions() {
        assert_eq!(major_of_version_num(170011), 17);
        assert_eq!(major_of_version_num(90624), 906);
        assert_eq!(major_of_version_text("17.11 (Debian 17.11-0+deb13u1)"), Some(17));
        assert_eq!(major_of_version_text("9.6.24"), Some(906));
        assert_eq!(major_of_version_text("16beta2"), Some(16));
    }
}
