//! What a journal records of a migration, and when a journal entry and a migrations folder name
//! the same migration. A runner records one form (`3`, `0003_add_zones`,
//! `0003_add_zones.up.sql`, `AddZones1680000000000`), a folder names its files another; both name
//! one migration when its identity agrees: its version (leading number, timestamp, Flyway
//! version) when both carry one, and its name when both carry one of the same kind.

use std::cmp::Ordering;

use crate::pg::compare_versions;

/// What a journal row records of the migration it applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Records {
    /// The file's leading number: `0003` of `0003_add_zones.up.sql` (Rails, golang-migrate, sqlx,
    /// goose as a number, dbmate, Atlas).
    Number,
    /// The file's name without `.up.sql`, `.sql` or its extension: `0003_add_zones` (Django,
    /// Entity Framework; Prisma's migration folder).
    Stem,
    /// The whole file name: `0003_add_zones.up.sql` (Knex, Sequelize).
    Name,
    /// Flyway's version: `1.10` of `V1_10__more.sql`.
    FlywayVersion,
    /// Drizzle's `when` of the last entry of `meta/_journal.json`.
    DrizzleWhen,
    /// TypeORM's class name, its timestamp last: `AddUsers1680000000000` of
    /// `1680000000000-AddUsers.ts`.
    TypeormClass,
    /// Alembic's revision ids: one per head, no order of their own.
    AlembicRevision,
    /// A Liquibase changeset as `filename::id::author`.
    LiquibaseChangeset,
    /// A sqitch change name, ordered by the plan.
    SqitchChange,
}

impl Records {
    /// What a scenario may write as `records`.
    pub(crate) const CHOICES: [Records; 3] = [Records::Number, Records::Stem, Records::Name];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Records::Number => "number",
            Records::Stem => "stem",
            Records::Name => "name",
            Records::FlywayVersion => "flyway version",
            Records::DrizzleWhen => "drizzle when",
            Records::TypeormClass => "typeorm class",
            Records::AlembicRevision => "alembic revision",
            Records::LiquibaseChangeset => "liquibase changeset",
            Records::SqitchChange => "sqitch change",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Records> {
        Records::CHOICES.into_iter().find(|r| r.as_str() == name)
    }

    /// The identity of a migration as this runner records it, or as a folder names it.
    pub(crate) fn identity(self, text: &str) -> Identity {
        let text = text.trim();
        match self {
            Records::AlembicRevision | Records::SqitchChange => Identity { version: None, name: Some(text.to_owned()) },
            Records::LiquibaseChangeset => Identity { version: None, name: Some(changeset_key(text)) },
            Records::TypeormClass if !text.starts_with(|c: char| c.is_ascii_digit()) => {
                let name = text.trim_end_matches(|c: char| c.is_ascii_digit());
                let version = &text[name.len()..];
                Identity {
                    version: (!version.is_empty()).then(|| version.to_owned()),
                    name: (!name.is_empty()).then(|| name.to_owned()),
                }
            }
            _ => versioned(text),
        }
    }

    /// Whether two migrations with one version and two names are two migrations. TypeORM's
    /// journal names the class and its folder the file (`AddUsers` against `add-users`): only
    /// the timestamp is comparable.
    fn names_differ_migrations(self) -> bool {
        self != Records::TypeormClass
    }
}

/// A migration as a journal records it or a folder names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// Its version: the leading number of `0003_add_zones`, `1.10`, a TypeORM timestamp.
    pub version: Option<String>,
    /// What names it besides: `add_zones`, an Alembic revision, a sqitch change.
    pub name: Option<String>,
}

/// `0003_add_zones.up.sql`, `0003_add_zones`, `0003`, `1.10`: the leading version (digits, and
/// dot-separated digits) when a separator or the end follows it, and the rest without its
/// extension.
fn versioned(text: &str) -> Identity {
    let stem = without_extension(text);
    let mut end = stem.chars().take_while(char::is_ascii_digit).count();
    while end > 0 && stem[end..].starts_with('.') {
        let more = stem[end + 1..].chars().take_while(char::is_ascii_digit).count();
        if more == 0 {
            break;
        }
        end += 1 + more;
    }
    if end == 0 || stem[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Identity { version: None, name: Some(stem.to_owned()) };
    }
    let rest = stem[end..].trim_start_matches(['_', '-', '.', ' ']);
    Identity { version: Some(stem[..end].to_owned()), name: (!rest.is_empty()).then(|| rest.to_owned()) }
}

/// A migration's name without `.up.sql` or a file extension (letters only, so that `1.10` keeps
/// its `.10`).
pub(crate) fn without_extension(text: &str) -> &str {
    if let Some(stem) = text.strip_suffix(".up.sql").or_else(|| text.strip_suffix(".Designer.cs")) {
        return stem;
    }
    match text.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty() && (1..=5).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphabetic()) =>
        {
            stem
        }
        _ => text,
    }
}

/// `db/changelog/002-orders.sql::7::alice` as `002-orders.sql::7::alice`: Liquibase records the
/// changelog's path as it was given (relative to a search path, or `classpath:`), so only its
/// file name is compared.
fn changeset_key(text: &str) -> String {
    let parts: Vec<&str> = text.split("::").collect();
    match parts.as_slice() {
        [file, id, author] => {
            let file = file.rsplit(['/', '\\']).next().unwrap_or(file);
            format!("{file}::{id}::{author}")
        }
        _ => text.to_owned(),
    }
}

/// How a journal's newest migration stands against the one the code expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Standing {
    /// The same migration, whatever the form each names it in.
    Same,
    /// Older than the expected one: the database is behind the code.
    Older,
    /// Newer: the database is ahead of the code.
    Newer,
    /// Two migrations with one version (`0003_a`, `0003_b`): neither is newer.
    SameVersion(String),
    /// Another migration, with no version to order them by.
    Other,
}

/// Where the journal's `actual` stands against the `expected` migration.
pub(crate) fn standing(records: Records, actual: &str, expected: &str) -> Standing {
    if actual.trim() == expected.trim() {
        return Standing::Same;
    }
    if records == Records::AlembicRevision {
        // One row per head: the same heads, in any order.
        fn heads(t: &str) -> Vec<&str> {
            let mut h: Vec<&str> = t.split_whitespace().collect();
            h.sort_unstable();
            h
        }
        return if heads(actual) == heads(expected) { Standing::Same } else { Standing::Other };
    }
    let (a, e) = (records.identity(actual), records.identity(expected));
    match (&a.version, &e.version) {
        (Some(av), Some(ev)) => match compare_versions(av, ev) {
            Ordering::Less => Standing::Older,
            Ordering::Greater => Standing::Newer,
            Ordering::Equal => match (&a.name, &e.name) {
                (Some(an), Some(en)) if an != en && records.names_differ_migrations() => {
                    Standing::SameVersion(av.clone())
                }
                _ => Standing::Same,
            },
        },
        (None, None) if a.name == e.name => Standing::Same,
        _ => Standing::Other,
    }
}

/// What the code expects: the newest migration as the journal records it (`expected`), what
/// identifies it (`key`: its file name, when it names it more fully), and the code's
/// migrations oldest first, when known.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    pub expected: &'a str,
    pub key: &'a str,
    pub history: Option<&'a [String]>,
}

/// The verdict on a journal (`place`: "`public.schema_migrations`") whose newest entry is
/// `actual`; the history says how far behind it is.
pub(crate) fn judge(place: &str, records: Records, actual: &str, code: Expected<'_>) -> (bool, String) {
    let Expected { expected, key, history } = code;
    let found = standing(records, actual, key);
    if found == Standing::Same {
        let mut message = format!("newest migration in {place} is {actual}");
        if actual.trim() != expected.trim() {
            message.push_str(&format!(", the code's {expected}"));
        }
        return (true, message);
    }
    let behind = history
        .and_then(|h| h.iter().rposition(|m| standing(records, actual, m) == Standing::Same).map(|i| h.len() - 1 - i));
    let mut message = format!("newest migration in {place} is {actual}, expected {expected}: ");
    message.push_str(&match (found, behind) {
        (Standing::Newer, _) => format!(
            "the journal's {actual} is newer than the code's {expected}, so the database is ahead of the code (a newer release migrated it)"
        ),
        (Standing::SameVersion(version), _) => format!(
            "two different migrations numbered {version}, the journal's {actual} and the code's {key}, neither newer \
             than the other (did the database run another branch's?)"
        ),
        (_, Some(n)) if n > 0 => format!(
            "the code's {expected} is newer, so the database is behind the code by {n} migration{}",
            if n == 1 { "" } else { "s" }
        ),
        (Standing::Older, _) => format!("the code's {expected} is newer, so the database is behind the code"),
        (_, _) if history.is_some() => {
            format!("{actual} is none of the code's migrations (a newer release's, or another branch's)")
        }
        _ => "another migration than the code's".to_owned(),
    });
    (false, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(version: Option<&str>, name: Option<&str>) -> Identity {
        Identity { version: version.map(str::to_owned), name: name.map(str::to_owned) }
    }

    #[test]
    fn identities_of_each_form() {
        assert_eq!(Records::Stem.identity("0003_add_zones.up.sql"), id(Some("0003"), Some("add_zones")));
        assert_eq!(Records::Number.identity("0003"), id(Some("0003"), None));
        assert_eq!(Records::Name.identity("20230101000000_users.js"), id(Some("20230101000000"), Some("users")));
        assert_eq!(Records::Name.identity("010-audit.sql"), id(Some("010"), Some("audit")));
        assert_eq!(Records::FlywayVersion.identity("1.10"), id(Some("1.10"), None));
        assert_eq!(Records::Stem.identity("20230101000000_Init.Designer.cs"), id(Some("20230101000000"), Some("Init")));
        assert_eq!(Records::Stem.identity("20230101000000_v1.2_fix"), id(Some("20230101000000"), Some("v1.2_fix")));
        assert_eq!(Records::Stem.identity("00031abc"), id(None, Some("00031abc")), "no separator: no version");
        assert_eq!(
            Records::TypeormClass.identity("AddUsers1680000000000"),
            id(Some("1680000000000"), Some("AddUsers"))
        );
        assert_eq!(
            Records::TypeormClass.identity("1680000000000-add-users.ts"),
            id(Some("1680000000000"), Some("add-users"))
        );
        assert_eq!(Records::AlembicRevision.identity("1975ea83b712"), id(None, Some("1975ea83b712")));
        assert_eq!(
            Records::LiquibaseChangeset.identity("classpath:db/changelog/002.sql::7::alice"),
            id(None, Some("002.sql::7::alice"))
        );
    }

    #[test]
    fn one_migration_in_any_form_is_the_same() {
        use Standing::*;
        let s = |r, a, e| standing(r, a, e);
        assert_eq!(s(Records::Stem, "0003_name", "0003_name"), Same);
        assert_eq!(s(Records::Number, "0003", "0003_name"), Same);
        assert_eq!(s(Records::Stem, "0003_name", "0003"), Same);
        assert_eq!(s(Records::Name, "0003_name.up.sql", "0003_name"), Same);
        assert_eq!(s(Records::Number, "3", "0003"), Same, "goose and sqlx store a number");
        assert_eq!(s(Records::Stem, "0003_a", "0003_b"), SameVersion("0003".into()));
        assert_eq!(s(Records::Stem, "0002_a", "0003_a"), Older);
        assert_eq!(s(Records::Stem, "0004_a", "0003_a"), Newer);
        assert_eq!(s(Records::Number, "00031", "0003"), Newer);
        assert_eq!(s(Records::FlywayVersion, "1.9", "1.10"), Older);
        assert_eq!(s(Records::TypeormClass, "AddUsers1680000000000", "1680000000000-add-users.ts"), Same);
        assert_eq!(s(Records::TypeormClass, "AddUsers1680000000000", "1690000000000-AddOrders.ts"), Older);
        assert_eq!(s(Records::AlembicRevision, "b2 a1", "a1 b2"), Same, "heads in any order");
        assert_eq!(s(Records::AlembicRevision, "a1", "a1 b2"), Other);
        assert_eq!(s(Records::SqitchChange, "users", "orders"), Other);
        assert_eq!(s(Records::LiquibaseChangeset, "db/c/002.sql::7::alice", "002.sql::7::alice"), Same);
        assert_eq!(s(Records::LiquibaseChangeset, "db/c/002.sql::7::alice", "002.sql::7::bob"), Other);
    }

    fn code<'a>(expected: &'a str, history: Option<&'a [String]>) -> Expected<'a> {
        Expected { expected, key: expected, history }
    }

    #[test]
    fn a_mismatch_says_which_is_newer_and_by_how_much() {
        let t = "`public.schema_migrations`";
        let (ok, message) = judge(t, Records::Stem, "0003_name", code("0003_name", None));
        assert!(ok);
        assert_eq!(message, "newest migration in `public.schema_migrations` is 0003_name");
        let (ok, message) = judge(t, Records::Number, "3", code("0003", None));
        assert!(ok && message.ends_with("is 3, the code's 0003"), "{message}");
        let history: Vec<String> = ["0001_a", "0002_b", "0003_c"].map(String::from).to_vec();
        let (ok, message) = judge(t, Records::Stem, "0001_a", code("0003_c", Some(&history)));
        assert!(!ok);
        assert!(
            message.ends_with("the code's 0003_c is newer, so the database is behind the code by 2 migrations"),
            "{message}"
        );
        let (_, message) = judge(t, Records::Stem, "0004_d", code("0003_c", Some(&history)));
        assert!(message.contains("the journal's 0004_d is newer than the code's 0003_c"), "{message}");
        let (_, message) = judge(t, Records::Stem, "0003_x", code("0003_c", Some(&history)));
        assert!(message.contains("two different migrations numbered 0003"), "{message}");
        let plan: Vec<String> = ["users", "orders", "audit"].map(String::from).to_vec();
        let (_, message) = judge("`sqitch.changes`", Records::SqitchChange, "orders", code("audit", Some(&plan)));
        assert!(message.ends_with("behind the code by 1 migration"), "{message}");
        let (_, message) = judge("`sqitch.changes`", Records::SqitchChange, "legacy", code("audit", Some(&plan)));
        assert!(message.ends_with("legacy is none of the code's migrations (a newer release's, or another branch's)"));
        let (_, message) = judge("`sqitch.changes`", Records::SqitchChange, "legacy", code("audit", None));
        assert!(message.ends_with("expected audit: another migration than the code's"), "{message}");
    }
}
