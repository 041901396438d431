//! The catalog PostgreSQL acts on is the catalog the checks read. A restore runs as a superuser,
//! which may UPDATE, INSERT and DELETE catalog rows directly: `pg_class.relchecks = 0` and the
//! table's CHECK constraints, still listed and validated, are not enforced;
//! `relhastriggers = false` and its enabled triggers do not fire; `pg_index.indisready = false`
//! and a unique index that reads valid lets duplicates in; a row of `pg_depend` makes the
//! backup's own function a member of an extension. So after the restore one read, in the
//! audit's own session, compares each flag PostgreSQL derives from the backup's objects with
//! what their DDL would make ([`super::derived_sql`]), and the members of each extension with
//! those a fresh `CREATE EXTENSION` of the same version makes on a cluster the backup never
//! touched ([`super::members`]); each disagreement is named, and fails the restore.

use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor};

use super::CatalogError;
use super::derived_sql::{EXTENSIONS_SQL, READ, derived_sql};
use super::members::{Extension, Members, read_members};
use super::take::{connect, real_catalogs, text};

/// One flag the backup's catalog holds that its DDL would not have made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// Which flag (the statement's code: `relchecks`, `index states`, `member`, ...).
    pub code: String,
    /// The object, as `pg_identify_object` calls it (`table public.orders`).
    pub object: String,
    /// What the catalog says.
    pub found: String,
    /// What the objects it derives from say (a count, a constraint, an extension's version).
    pub expected: String,
}

const DIRECT: &str = "the catalog was written directly";

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let said = match self.code.as_str() {
            "relchecks" | "relhastriggers" | "relhasrules" | "relhasindex" | "relhassubclass" => self.relation(),
            "index states" | "indisunique" | "indisprimary" | "indisexclusion" | "indimmediate" => self.index(),
            _ => self.other(),
        };
        write!(f, "{}: {said}", self.object)
    }
}

impl Written {
    /// A `pg_class` flag against the rows that name the relation.
    fn relation(&self) -> String {
        let (found, n) = (&self.found, &self.expected);
        let count = |what: &str| format!("{n} {what}{}", if n == "1" { "" } else { "s" });
        match self.code.as_str() {
            "relchecks" => format!(
                "pg_class.relchecks is {found} but it has {}: {DIRECT}, PostgreSQL does not enforce {}",
                count("CHECK constraint"),
                if found == "0" { "them" } else { "them as listed" }
            ),
            "relhastriggers" => format!(
                "pg_class.relhastriggers is false but it has {}: {DIRECT}, none of them fires",
                count("trigger")
            ),
            "relhasrules" => format!(
                "pg_class.relhasrules is false but it has {}: {DIRECT}, PostgreSQL does not apply them",
                count("rule")
            ),
            "relhasindex" => format!(
                "pg_class.relhasindex is false but it has {}: {DIRECT}, writes do not maintain them and their uniqueness is not enforced",
                count("index")
            ),
            _ => format!(
                "pg_class.relhassubclass is false but it has {}: {DIRECT}, a query of it does not read their rows",
                count("inheritance child or partition")
            ),
        }
    }

    /// An index's states, and its flags against the constraint that owns it.
    fn index(&self) -> String {
        let (found, constraint) = (&self.found, &self.expected);
        let owner = || {
            if constraint.is_empty() {
                "no constraint owns it".to_owned()
            } else {
                format!("it is the index of {constraint}")
            }
        };
        match self.code.as_str() {
            "index states" => format!(
                "pg_index says {found}, which no DDL makes (valid only once ready, ready only while live): {DIRECT}, writes do not maintain it and its uniqueness is not enforced"
            ),
            "indisunique" => format!(
                "pg_index.indisunique is false but it is the index of {constraint}: {DIRECT}, PostgreSQL does not enforce its uniqueness"
            ),
            "indisprimary" => format!("pg_index.indisprimary is {} but {}: {DIRECT}", bool_word(found), owner()),
            "indisexclusion" => format!(
                "pg_index.indisexclusion is {} but {}: {DIRECT}, what it enforces is not what is listed",
                bool_word(found),
                owner()
            ),
            _ if found == "false" => format!(
                "pg_index.indimmediate is false but {}: {DIRECT}, its uniqueness is deferred to a recheck that never runs",
                if constraint.is_empty() {
                    "no DEFERRABLE constraint owns it".to_owned()
                } else {
                    format!("{constraint} is not DEFERRABLE")
                }
            ),
            _ => format!(
                "pg_index.indimmediate is true but {constraint} is DEFERRABLE: {DIRECT}, it is not enforced as listed"
            ),
        }
    }

    /// A constraint's triggers, a column's NOT NULL and identity, an extension's member.
    fn other(&self) -> String {
        let (found, expected) = (&self.found, &self.expected);
        match self.code.as_str() {
            "constraint triggers" => format!(
                "it is listed but no trigger enforces it (pg_trigger has none of it): {DIRECT}, PostgreSQL does not enforce it"
            ),
            "attnotnull" => {
                format!("pg_attribute.attnotnull is false but {expected}: {DIRECT}, PostgreSQL lets NULLs in")
            }
            "attidentity" => format!(
                "pg_attribute.attidentity is '{found}' but no sequence is its identity's: {DIRECT}, it generates no values"
            ),
            "identity sequence" => format!(
                "sequence {expected} is its identity's but pg_attribute.attidentity is empty: {DIRECT}, it is not an identity column (values are not generated, any value goes in)"
            ),
            "member definition" => format!(
                "as restored it has {found}, where {expected}: the backup altered or replaced a member of the extension after creating it (or {DIRECT}), so what runs for it is the backup's own"
            ),
            "member" => format!(
                "pg_depend makes it a member of extension {found}, but CREATE EXTENSION {found} VERSION '{expected}' makes no such member: {DIRECT} (or with ALTER EXTENSION ... ADD), and it is the backup's own"
            ),
            other => format!("{other} is {found} where its DDL would make {expected}: {DIRECT}"),
        }
    }
}

/// A boolean as `::text` prints it (`true`), or as its output function does (`t`).
fn bool_word(printed: &str) -> &'static str {
    if printed == "true" || printed == "t" { "true" } else { "false" }
}

/// What the read found: nothing written, in so long, and each extension's members compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Derived {
    /// How long the flags' statement took, and the members' comparison (the reference read from
    /// this machine's cache, or made on a fresh cluster, and compared).
    pub flags: Duration,
    pub members: Duration,
    /// Each extension compared: name, version, how many members.
    pub extensions: Vec<(String, String, usize)>,
    /// Whether the members were compared (not on a base backup's or a shared server's restore).
    pub members_compared: bool,
}

impl Derived {
    /// For the restore phase's summary.
    pub(crate) fn summary(&self) -> String {
        let mut summary = format!(
            "catalog flags PostgreSQL acts on (checks, triggers, rules, indexes, keys, NOT NULL, identity) as the backup's DDL makes them (read in {} ms)",
            self.flags.as_millis()
        );
        if !self.extensions.is_empty() {
            let list: Vec<String> = self.extensions.iter().map(|(n, v, m)| format!("{n} {v} ({m})")).collect();
            summary.push_str(&format!(
                ", extension members as CREATE EXTENSION makes them on a fresh cluster of the target's image: {} (compared in {} ms)",
                crate::listing::first(&list, 8, ", "),
                self.members.as_millis()
            ));
        }
        if !self.members_compared {
            summary.push_str(", extension members not compared with a fresh CREATE EXTENSION's");
        }
        summary
    }
}

/// A restored database's derived flags, read, and its extensions' members as restored, not yet
/// judged against a reference ([`Read::judge`]).
pub(crate) struct Read {
    database: String,
    started: Instant,
    flags: Duration,
    written: Vec<Written>,
    /// Read when asked: the extensions, in the order they were created, and their members.
    members: Option<(Vec<Extension>, Members)>,
}

/// Reads database `database`'s derived flags and, `members`, its extensions and their members.
pub(crate) async fn read(options: &PgConnectOptions, database: &str, members: bool) -> Result<Read, CatalogError> {
    let started = Instant::now();
    let fail = |source: sqlx::Error| CatalogError::Unreadable { database: database.to_owned(), source };
    let mut conn = connect(options, database).await?;
    real_catalogs(&mut conn, database, &READ).await?;
    let mut written = Vec::new();
    for row in conn.fetch_all(sqlx::raw_sql(&derived_sql())).await.map_err(fail)? {
        let column = |i| text(&row, i, database).map(Option::unwrap_or_default);
        written.push(Written { code: column(0)?, object: column(6)?, found: column(4)?, expected: column(5)? });
    }
    let flags = started.elapsed();
    let mut read = Read { database: database.to_owned(), started, flags, written, members: None };
    if members {
        let mut extensions = Vec::new();
        for row in conn.fetch_all(sqlx::raw_sql(EXTENSIONS_SQL)).await.map_err(fail)? {
            let column = |i| text(&row, i, database).map(Option::unwrap_or_default);
            let (name, version, schema) = (column(0)?, column(1)?, column(2)?);
            extensions.push(Extension { name, version, schema, owns_schema: column(3)? == "t" });
        }
        read.members = Some((extensions, read_members(&mut conn, database).await?));
    }
    conn.close().await.ok();
    Ok(read)
}

impl Read {
    /// The restored database's extensions, in the order they were created (none when the
    /// members were not read).
    pub(crate) fn extensions(&self) -> &[Extension] {
        self.members.as_ref().map_or(&[], |(extensions, _)| extensions)
    }

    /// Every flag written and, given `fresh` (the extensions' members as a fresh `CREATE
    /// EXTENSION` makes them), every member the backup added or altered, named in
    /// [`CatalogError::Written`]; else what was compared.
    pub(crate) fn judge(self, fresh: Option<&Members>) -> Result<Derived, CatalogError> {
        let Read { database, started, flags, mut written, members } = self;
        let mut compared = Vec::new();
        let members_compared = fresh.is_some();
        if let (Some((extensions, restored)), Some(fresh)) = (members, fresh) {
            written.extend(compare_members(&restored, fresh));
            compared = extensions
                .iter()
                .map(|e| (e.name.clone(), e.version.clone(), restored.get(&e.name).map_or(0, |m| m.1.len())))
                .collect();
        }
        let members = started.elapsed().saturating_sub(flags);
        tracing::debug!(
            "derived flags of `{database}`: {} written, read in {flags:?}, members in {members:?}",
            written.len()
        );
        if !written.is_empty() {
            return Err(CatalogError::Written { database, written });
        }
        Ok(Derived { flags, members, extensions: compared, members_compared })
    }
}

/// The restored members that a fresh `CREATE EXTENSION` of the same version does not make, or
/// makes otherwise. A member the restore lacks is not a lie in its favour (the checks then read
/// it as the backup's own), so it is not named.
fn compare_members(restored: &Members, fresh: &Members) -> Vec<Written> {
    let mut written = Vec::new();
    for (extension, (version, members)) in restored {
        let made = fresh.get(extension).map(|(_, m)| m);
        for (member, definition) in members {
            let Some(made) = made.and_then(|made| made.get(member)) else {
                written.push(Written {
                    code: "member".into(),
                    object: member.clone(),
                    found: extension.clone(),
                    expected: version.clone(),
                });
                continue;
            };
            if let Some((found, expected)) = differing(definition, made) {
                written.push(Written {
                    code: "member definition".into(),
                    object: member.clone(),
                    found,
                    expected: format!("CREATE EXTENSION {extension} VERSION '{version}' makes {expected}"),
                });
            }
        }
    }
    written
}

/// The parts (`volatility i`) of two definitions that differ, each side joined; `None` when
/// they agree.
fn differing(restored: &str, fresh: &str) -> Option<(String, String)> {
    if restored == fresh {
        return None;
    }
    let (ours, theirs): (Vec<&str>, Vec<&str>) = (restored.split("; ").collect(), fresh.split("; ").collect());
    let found: Vec<&str> = ours.iter().filter(|p| !theirs.contains(p)).copied().collect();
    let expected: Vec<&str> = theirs.iter().filter(|p| !ours.contains(p)).copied().collect();
    Some((found.join("; "), expected.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::members::tests::members;

    #[test]
    fn each_write_is_said_with_what_postgresql_does_instead() {
        let said = |code: &str, object: &str, found: &str, expected: &str| {
            Written { code: code.into(), object: object.into(), found: found.into(), expected: expected.into() }
                .to_string()
        };
        assert_eq!(
            said("relchecks", "table public.orders", "0", "2"),
            "table public.orders: pg_class.relchecks is 0 but it has 2 CHECK constraints: the catalog was written directly, PostgreSQL does not enforce them"
        );
        assert!(said("relhastriggers", "table public.ledger", "false", "1").contains("it has 1 trigger: "));
        assert!(
            said("indimmediate", "index public.imm_id_key", "false", "table constraint imm_id_key on public.imm")
                .contains("table constraint imm_id_key on public.imm is not DEFERRABLE")
        );
        assert!(
            said("indisprimary", "index public.x", "true", "")
                .contains("indisprimary is true but no constraint owns it")
        );
        assert!(said("odd", "index public.x", "a", "b").contains("odd is a where its DDL would make b"));
    }

    #[test]
    fn a_member_a_fresh_create_extension_does_not_make_is_named_and_a_missing_one_is_not() {
        let restored = members(&[
            ("plpgsql", "1.0", &["language plpgsql", "function public.not_plpgsql()"]),
            ("vector", "0.8.0", &["type public.vector"]),
        ]);
        let fresh = members(&[
            ("plpgsql", "1.0", &["language plpgsql", "function pg_catalog.plpgsql_call_handler()"]),
            ("vector", "0.8.0", &["type public.vector"]),
        ]);
        let written = compare_members(&restored, &fresh);
        assert_eq!(written.len(), 1, "{written:?}");
        assert_eq!(
            written[0].to_string(),
            "function public.not_plpgsql(): pg_depend makes it a member of extension plpgsql, but CREATE EXTENSION plpgsql VERSION '1.0' makes no such member: the catalog was written directly (or with ALTER EXTENSION ... ADD), and it is the backup's own"
        );
        // An extension the fresh cluster could not make again has no members there.
        let written = compare_members(&restored, &members(&[]));
        assert_eq!(written.len(), 3);
    }

    #[test]
    fn a_member_altered_after_create_extension_is_named_with_what_changed() {
        let with = |definition: &str| {
            let mut m = members(&[("vector", "0.8.0", &[])]);
            m.get_mut("vector").unwrap().1.insert("function public.l2(vector,vector)".into(), definition.into());
            m
        };
        let fresh = with("volatility i; strict t; code md5 aa");
        assert!(compare_members(&fresh, &fresh).is_empty());
        let written = compare_members(&with("volatility s; strict t; code md5 bb"), &fresh);
        assert_eq!(
            written[0].to_string(),
            "function public.l2(vector,vector): as restored it has volatility s; code md5 bb, where CREATE EXTENSION vector VERSION '0.8.0' makes volatility i; code md5 aa: the backup altered or replaced a member of the extension after creating it (or the catalog was written directly), so what runs for it is the backup's own"
        );
    }
}
