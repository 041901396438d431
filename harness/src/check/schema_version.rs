//! `schema_version`: the migration journal's newest entry is the version the application
//! expects, and no migration is recorded as dirty or failed, so the restored database is
//! neither behind nor ahead of the code that will run on it.
//!
//! ```toml
//! [[checks.schema_version]]
//! preset = "rails"                 # rails | golang-migrate | drizzle | sqlx | flyway | goose
//! expected = "20260518020000"      # text, or a number compared numerically
//! # expected_from = "../db/migrate"   # or: the newest file of a migrations folder, as the
//! #                                   # preset's runner records it (its number for rails,
//! #                                   # golang-migrate, sqlx, goose; flyway's version; drizzle's `when`)
//!
//! [[checks.schema_version]]        # any journal: table, column, ordering, failure condition
//! table = "public.schema_migrations"
//! column = "version"
//! order_by = "version"
//! failed_when = "dirty"
//! expected = "010"
//!
//! [[checks.schema_version]]        # a runner that records `0003_add_zones` for `0003_add_zones.up.sql`
//! table = "public.schema_migrations"
//! expected_from = "../migrations"
//! records = "stem"                 # number (default) | stem | name
//! ```

use std::path::Path;
use std::time::Instant;

use crate::field::Spanned;
use serde::Deserialize;

use super::{CheckContext, CheckResult, Kind, ResolveContext};
use crate::field::FieldError;
use crate::journal::{Journal, Preset, Records};
use crate::names;
use crate::pg::{QualifiedName, quote_ident};

pub(crate) const KIND: &str = "schema_version";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SchemaVersionCheck")]
pub(crate) struct Config {
    /// A known migration tool's journal.
    pub preset: Option<Spanned<String>>,
    /// The migration table (default from the preset, else `public.schema_migrations`).
    pub table: Option<Spanned<String>>,
    /// The column holding the version.
    pub column: Option<String>,
    /// An SQL expression ordering the journal, newest last (one expression: it is sorted DESC).
    pub order_by: Option<String>,
    /// SQL condition marking a row as a failed or dirty migration.
    pub failed_when: Option<String>,
    /// The version the newest entry must have.
    pub expected: Option<Spanned<VersionValue>>,
    /// A migrations folder whose newest file gives the expected version.
    pub expected_from: Option<Spanned<String>>,
    /// What the journal records of a file (custom journals): `number`, `stem` or `name`.
    pub records: Option<Spanned<String>>,
}

/// A version as a scenario writes it: `"010"` or `10`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(crate) enum VersionValue {
    Text(String),
    Number(i64),
}

impl std::fmt::Display for VersionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionValue::Text(t) => f.write_str(t),
            VersionValue::Number(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub journal: Journal,
    pub expected: String,
    /// Where the expected version came from, when not written in the scenario.
    pub expected_source: Option<String>,
    /// What the journal records of a migration file.
    pub(crate) records: Records,
}

impl Kind for Spec {
    const NAME: &'static str = KIND;
    const PROVES: &'static str =
        "the migration journal is at the version the code expects, with no failed or dirty migration";
    type Config = Config;

    fn resolve(config: Config, ctx: &ResolveContext) -> Result<Self, FieldError> {
        let preset = match &config.preset {
            Some(p) => Some(Preset::parse(p.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = Preset::ALL.iter().map(|p| p.as_str()).collect();
                FieldError::new(
                    p.span(),
                    format!("unknown preset `{}`, expected one of {}", p.get_ref(), known.join(", ")),
                )
            })?),
            None => None,
        };
        let mut journal = preset.map(Preset::journal).unwrap_or_else(|| Preset::Rails.journal());
        if let Some(table) = &config.table {
            journal.table =
                QualifiedName::parse(table.get_ref()).map_err(|message| FieldError::new(table.span(), message))?;
        }
        if let Some(column) = config.column {
            journal.order_by = quote_ident(&column);
            journal.column = column;
        }
        if let Some(order_by) = config.order_by {
            journal.order_by = order_by;
        }
        if config.failed_when.is_some() {
            journal.failed_when = config.failed_when;
        }
        let records = match &config.records {
            Some(r) => Records::parse(r.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = Records::CHOICES.iter().map(|r| r.as_str()).collect();
                FieldError::new(
                    r.span(),
                    format!("unknown `records` `{}`, expected one of {}", r.get_ref(), known.join(", ")),
                )
            })?,
            None => preset.map(Preset::records).unwrap_or(Records::Number),
        };
        let (expected, expected_source) = match (config.expected, config.expected_from) {
            (Some(expected), None) => {
                let text = expected.get_ref().to_string();
                if text.trim().is_empty() {
                    return Err(FieldError::new(expected.span(), "the expected version is empty"));
                }
                (text, None)
            }
            (None, Some(dir)) => {
                let path = ctx.base.join(dir.get_ref());
                let version = newest_in_folder(&path, records).map_err(|m| FieldError::new(dir.span(), m))?;
                (version.0, Some(format!("newest file of {}: {}", crate::field::normalize(&path).display(), version.1)))
            }
            (Some(e), Some(_)) => {
                return Err(FieldError::new(e.span(), "give `expected` or `expected_from`, not both"));
            }
            (None, None) => {
                return Err(FieldError::unplaced("schema_version needs `expected` or `expected_from`"));
            }
        };
        Ok(Spec { journal, expected, expected_source, records })
    }

    fn label(&self) -> String {
        self.journal.table.to_string()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
        let mut results = vec![self.newest(ctx).await];
        if let Some(condition) = &self.journal.failed_when {
            results.push(self.no_failures(ctx, condition).await);
        }
        results
    }
}

impl Spec {
    async fn newest(&self, ctx: &CheckContext<'_>) -> CheckResult {
        let started = Instant::now();
        let query = self.journal.newest_sql();
        let table = &self.journal.table;
        let expected = match &self.expected_source {
            Some(source) => format!("{} ({source})", self.expected),
            None => self.expected.clone(),
        };
        let result = CheckResult::build(KIND, table.to_string(), started).expected(expected).evidence(query.clone());
        let row: Result<Option<(Option<String>,)>, _> = sqlx::query_as(&query).fetch_optional(ctx.pool).await;
        match row {
            Err(err) => result.error(format!(
                "could not read the migration journal `{table}`: {}",
                names::describe_error(ctx.pool, &err).await
            )),
            Ok(None) | Ok(Some((None,))) => result
                .actual("no migrations recorded")
                .verdict(false, format!("`{table}` has no migration rows; expected {}", self.expected)),
            Ok(Some((Some(actual),))) => {
                let (ok, message) = judge_newest(table, &actual, &self.expected, self.records);
                result.actual(actual).verdict(ok, message)
            }
        }
    }

    async fn no_failures(&self, ctx: &CheckContext<'_>, condition: &str) -> CheckResult {
        let started = Instant::now();
        let query = self.journal.failed_sql(condition);
        let table = &self.journal.table;
        let result = CheckResult::build(KIND, format!("{table}: no failed migration"), started)
            .expected(format!("no row where {condition}"))
            .evidence(query.clone());
        match sqlx::query_scalar::<_, Option<String>>(&query).fetch_all(ctx.pool).await {
            Err(err) => result.error(format!(
                "could not read the migration journal `{table}`: {}",
                names::describe_error(ctx.pool, &err).await
            )),
            Ok(rows) if rows.is_empty() => {
                result.actual("none").verdict(true, format!("no migration in `{table}` is {condition}"))
            }
            Ok(rows) => {
                let versions: Vec<String> = rows.into_iter().map(|v| v.unwrap_or_else(|| "(null)".into())).collect();
                result.actual(format!("{condition}: {}", versions.join(", "))).verdict(
                    false,
                    format!("`{table}` records migration {} as {condition}: it did not complete", versions.join(", ")),
                )
            }
        }
    }
}

/// The newest journal entry against the expected version; a mismatch that is only the form of
/// the record (the file's number against its stem) says which `records` fits.
fn judge_newest(table: &QualifiedName, actual: &str, expected: &str, records: Records) -> (bool, String) {
    if versions_equal(actual, expected) {
        return (true, format!("newest migration in `{table}` is {actual}"));
    }
    let mut message = format!("newest migration in `{table}` is {actual}, expected {expected}");
    let only_the_form = |long: &str, short: &str| {
        long.len() > short.len()
            && long.starts_with(short)
            && !long[short.len()..].starts_with(|c: char| c.is_ascii_digit())
    };
    if records == Records::Number && only_the_form(actual, expected) {
        message.push_str(
            " (hint: the journal records more than the file's number: set `records = \"stem\"` or `\"name\"`)",
        );
    } else if records != Records::Number && only_the_form(expected, actual) {
        message.push_str(" (hint: the journal records the file's number: set `records = \"number\"`)");
    }
    (false, message)
}

/// Versions are equal as text, or as numbers when both are numbers (`010` = `10`).
fn versions_equal(actual: &str, expected: &str) -> bool {
    let (a, e) = (actual.trim(), expected.trim());
    if a == e {
        return true;
    }
    match (a.parse::<u128>(), e.parse::<u128>()) {
        (Ok(a), Ok(e)) => a == e,
        _ => false,
    }
}

/// The newest migration in a folder, as (what the journal records of it, file): Drizzle's journal
/// (`meta/_journal.json`, its last `when`), else the file with the highest leading number (or
/// Flyway version), recorded as `records` says (`20260518020000_x.rb`, `000042_x.up.sql`,
/// `010-x.sql`).
fn newest_in_folder(dir: &Path, records: Records) -> Result<(String, String), String> {
    if records == Records::DrizzleWhen {
        let journal = dir.join("meta/_journal.json");
        let text =
            std::fs::read_to_string(&journal).map_err(|e| format!("cannot read `{}`: {e}", journal.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("`{}` is not JSON: {e}", journal.display()))?;
        let last = value["entries"]
            .as_array()
            .and_then(|e| e.last())
            .ok_or_else(|| format!("`{}` lists no entries", journal.display()))?;
        let when =
            last["when"].as_i64().ok_or_else(|| format!("the last entry of `{}` has no `when`", journal.display()))?;
        return Ok((when.to_string(), last["tag"].as_str().unwrap_or("meta/_journal.json").to_owned()));
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read migrations folder `{}`: {e}", dir.display()))?;
    let mut newest: Option<(String, String, String)> = None;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some((number, recorded)) = records.of_file(&file) else { continue };
        let newer = match &newest {
            None => true,
            Some((current, _, _)) => crate::pg::compare_versions(&number, current) == std::cmp::Ordering::Greater,
        };
        if newer {
            newest = Some((number, recorded, file));
        }
    }
    newest
        .map(|(_, recorded, file)| (recorded, file))
        .ok_or_else(|| format!("no migration files in `{}`", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_versions_ignore_leading_zeros() {
        assert!(versions_equal("010", "10"));
        assert!(versions_equal("20260518020000", "20260518020000"));
        assert!(!versions_equal("009", "010"));
        assert!(!versions_equal("010-audit", "010"));
    }

    #[test]
    fn newest_migration_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["001-init.sql", "010-audit.sql", "009-x.sql", "README.md"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        assert_eq!(newest_in_folder(dir.path(), Records::Number).unwrap(), ("010".into(), "010-audit.sql".into()));
        assert_eq!(newest_in_folder(dir.path(), Records::Stem).unwrap().0, "010-audit");

        let dir = tempfile::tempdir().unwrap();
        for f in ["V1__init.sql", "V1_10__more.sql", "V1_9__x.sql"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        assert_eq!(newest_in_folder(dir.path(), Preset::Flyway.records()).unwrap().0, "1.10");

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("meta")).unwrap();
        std::fs::write(
            dir.path().join("meta/_journal.json"),
            r#"{"entries":[{"idx":0,"when":1700000000000,"tag":"0000_a"},{"idx":1,"when":1763500000000,"tag":"0001_b"}]}"#,
        )
        .unwrap();
        assert_eq!(
            newest_in_folder(dir.path(), Preset::Drizzle.records()).unwrap(),
            ("1763500000000".into(), "0001_b".into())
        );
        assert!(newest_in_folder(&dir.path().join("nope"), Records::Number).is_err());
    }

    #[test]
    fn a_runner_that_records_stems_is_matched_with_records_stem_and_hinted_without() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["0001_init.up.sql", "0001_init.down.sql", "0003_add_zones.up.sql", "0003_add_zones.down.sql"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let table = QualifiedName::new("public", "schema_migrations");
        let (by_number, _) = newest_in_folder(dir.path(), Records::Number).unwrap();
        let (ok, message) = judge_newest(&table, "0003_add_zones", &by_number, Records::Number);
        assert!(!ok && message.contains("set `records = \"stem\"`"), "{message}");
        let (by_stem, _) = newest_in_folder(dir.path(), Records::Stem).unwrap();
        assert!(judge_newest(&table, "0003_add_zones", &by_stem, Records::Stem).0);
        let (ok, message) = judge_newest(&table, "0003", &by_stem, Records::Stem);
        assert!(!ok && message.contains("set `records = \"number\"`"), "{message}");
        let (ok, message) = judge_newest(&table, "0002_other", &by_stem, Records::Stem);
        assert!(!ok && !message.contains("hint"), "a different migration is not a matter of form: {message}");
        let (ok, message) = judge_newest(&table, "00031", "0003", Records::Number);
        assert!(!ok && !message.contains("hint"), "{message}");
    }
}
