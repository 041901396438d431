//! `schema_version`: the migration journal's newest entry is the migration the application
//! expects, and no migration is recorded as dirty, failed or unfinished, so the restored
//! database is neither behind nor ahead of the code that will run on it. With the code's
//! migrations folder (`expected_from`), each of its migrations must be recorded and no other
//! (`<journal>: every migration`): a journal with a hole has the right newest entry, and its
//! runner applies the missing migration again at the next deploy. Journals that keep only their
//! newest row (golang-migrate, Alembic), or leave out migrations their tool counts as applied
//! (Flyway's baseline, Liquibase's contexts, Django's squashed migrations), are compared at the
//! newest only; a journal the scenario describes, only with `every = true`. A journal entry and
//! the expected migration agree when they name the same migration, whatever form each names it
//! in (`3`, `0003_add_zones`, `0003_add_zones.up.sql`): by its version when both carry one (and
//! its name when both carry one: `0003_a` is not `0003_b`), else by its name; a mismatch says
//! which is newer, and by how many migrations when the code's folder is known.
//!
//! ```toml
//! [[checks.schema_version]]
//! preset = "rails"                 # see below
//! expected = "20260518020000"      # text, or a number compared numerically
//! # expected_from = "../db/migrate"   # or: the code's migrations, read as the preset's runner
//! #                                   # records them; several folders (an application and its
//! #                                   # engines) as a list: ["../db/migrate", "../engines/billing/db/migrate"]
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
//! records = "stem"                 # number (default) | stem | name: the form shown as expected
//!
//! [[checks.schema_version]]        # Django: one app's migrations
//! preset = "django"
//! expected_from = "../shop/orders/migrations"   # app = "orders" (the folder's app; or set `app`)
//! ```
//!
//! Presets: journal table; what it records; `expected_from`; what fails besides the version.
//! - `rails`, `dbmate`: `schema_migrations.version`, the leading number of `20260518020000_x.rb` / `.sql`
//! - `golang-migrate`: `schema_migrations.version` of `000042_x.up.sql`; `dirty` fails
//! - `sqlx`: `_sqlx_migrations.version`; `success = false` fails
//! - `goose`: `goose_db_version.version_id`, the newest whose latest row is applied
//! - `flyway`: `flyway_schema_history.version` of `V1_10__x.sql` (`1.10`); `success = false` fails
//! - `drizzle`: `drizzle.__drizzle_migrations.created_at`, the last `when` of `meta/_journal.json`
//! - `prisma`: `_prisma_migrations.migration_name`, a folder `20230101000000_init/`; a row not
//!   finished, or rolled back and not applied since, fails
//! - `django`: `django_migrations.name` of one `app` (`0003_x` of `app/migrations/0003_x.py`)
//! - `alembic`: `alembic_version.version_num`, one row per head; the heads of `versions/*.py`
//!   (revisions no file's `down_revision` names)
//! - `liquibase`: `databasechangelog` as `filename::id::author`; `expected_from` the root
//!   changelog (XML, YAML, JSON, formatted SQL, with `include` and `includeAll`), whose order
//!   decides the newest applied changeset (a re-run one moves in `orderexecuted`)
//! - `knex`: `knex_migrations.name`, the file name; `knex_migrations_lock` still locked fails
//!   the latest batch
//! - `typeorm`: `migrations.name`, the class (`AddUsers1680000000000` of
//!   `1680000000000-AddUsers.ts`), compared by its timestamp
//! - `sequelize`: `"SequelizeMeta".name`, the file name
//! - `entity-framework`: `"__EFMigrationsHistory"."MigrationId"` of `20230101000000_Name.cs`
//!   (`.Designer.cs` ignored)
//! - `atlas`: `atlas_schema_revisions.atlas_schema_revisions.version`; an error or a partly
//!   applied revision not marked resolved fails
//! - `sqitch`: `sqitch.changes.change` of the plan's `%project` (or `project`); the last change
//!   of `sqitch.plan`

mod every;
mod finding;

use std::path::Path;
use std::time::Instant;

use crate::field::Spanned;
use crate::outcome::CheckKind;
use serde::Deserialize;

use super::{CheckContext, CheckError, CheckResult, Kind, ResolveContext};
use crate::field::FieldError;
use crate::journal::{Expected, Failure, Journal, Kept, Order, Preset, Records};
use crate::names;
use crate::pg::{QualifiedName, quote_ident};
pub(crate) use finding::Found;

pub(crate) const KIND: CheckKind = CheckKind::SchemaVersion;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SchemaVersionCheck")]
pub(crate) struct Config {
    /// A known migration tool's journal: rails, golang-migrate, dbmate, drizzle, sqlx, flyway,
    /// goose, prisma, django, alembic, liquibase, knex, typeorm, sequelize, entity-framework,
    /// atlas, sqitch.
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
    /// A migrations folder (Liquibase: the root changelog; sqitch: the plan) whose newest
    /// migration is the expected one.
    pub expected_from: Option<Spanned<Folders>>,
    /// What the journal records of a file (custom journals): `number`, `stem` or `name`.
    pub records: Option<Spanned<String>>,
    /// Django: the app (its label) whose migrations to read; default, the app whose
    /// `migrations` folder `expected_from` names.
    pub app: Option<Spanned<String>>,
    /// sqitch: the project whose changes to read; default, the plan's `%project`.
    pub project: Option<Spanned<String>>,
    /// With `expected_from`: every migration of the folder must be in the journal, and the
    /// journal must hold no other (default: true for the presets whose journal keeps a row per
    /// migration, false for the others and for a journal the scenario describes).
    pub every: Option<bool>,
    /// Every migration the scenario's baseline recorded of this journal must still be in it (a
    /// migration missing from the middle fails, naming it); newer ones pass. For a preset whose
    /// journal keeps a row per migration.
    #[serde(default)]
    pub baseline: bool,
}

/// The code's migrations folders: one, or several whose migrations one journal records (a
/// Rails application's `db/migrate` and its engines').
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(crate) enum Folders {
    One(String),
    Many(Vec<String>),
}

impl Folders {
    fn list(&self) -> &[String] {
        match self {
            Folders::One(one) => std::slice::from_ref(one),
            Folders::Many(many) => many,
        }
    }
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
pub(crate) struct Spec {
    pub journal: Journal,
    pub expected: String,
    /// What identifies the expected migration: the newest file's name, from a folder.
    pub(crate) expected_key: String,
    /// Where the expected version came from, when not written in the scenario.
    pub expected_source: Option<String>,
    /// What the journal records of a migration file.
    pub(crate) records: Records,
    /// The code's migrations, oldest first, when read from a folder.
    pub(crate) history: Option<Vec<String>>,
    /// The journal's name as its runner (or the scenario) writes it, without a schema: the
    /// runner finds it along its session's `search_path`.
    pub(crate) unqualified: Option<String>,
    /// The code's migrations folders the expected version is read from (`expected_from`).
    pub(crate) expected_from: Vec<std::path::PathBuf>,
    /// The migrations the baseline recorded of this journal, oldest first (`baseline = true`).
    pub(crate) before: Option<Vec<String>>,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
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
        // A preset's journal in `public` is the runner's unqualified name.
        let mut unqualified = (journal.table.schema.as_deref() == Some("public")).then(|| journal.table.name.clone());
        if let Some(table) = &config.table {
            let written =
                QualifiedName::parse(table.get_ref()).map_err(|message| FieldError::new(table.span(), message))?;
            unqualified = written.schema.is_none().then(|| written.name.clone());
            journal.table = written;
        }
        if let Some(column) = config.column {
            journal.order = Order::By(quote_ident(&column));
            journal.value = None;
            journal.column = column;
        }
        if let Some(order_by) = config.order_by {
            journal.order = Order::By(order_by);
        }
        if let Some(condition) = config.failed_when {
            journal.failure = Some(Failure { about: condition.clone(), condition });
        }
        match config.every {
            Some(false) => journal.kept = Kept::Newest,
            Some(true) if journal.kept == Kept::Newest => journal.kept = Kept::Each { own: None },
            Some(true) => {}
            None if preset.is_none() => journal.kept = Kept::Newest,
            None => {}
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
        let Code { expected, source: expected_source, folder } =
            code(config.expected, config.expected_from.as_ref(), &ctx.base, records)?;
        journal.scope = scope(preset, &config.app, &config.project, config.expected_from.as_ref(), folder.as_ref())?;
        let before = match (config.baseline, preset) {
            (false, _) => None,
            (true, preset) => Some(of_baseline(ctx, &journal, preset)?),
        };
        let expected_key = folder.as_ref().map(|f| f.key.clone()).unwrap_or_else(|| expected.clone());
        Ok(Spec {
            journal,
            expected,
            expected_key,
            expected_source,
            records,
            history: folder.map(|f| f.history),
            unqualified,
            expected_from: config
                .expected_from
                .iter()
                .flat_map(|dirs| dirs.get_ref().list())
                .map(|dir| crate::field::normalize(&ctx.base.join(dir)))
                .collect(),
            before,
        })
    }

    fn label(&self) -> String {
        match &self.journal.scope {
            Some((_, value)) => format!("{} {value}", self.journal.table),
            None => self.journal.table.to_string(),
        }
    }

    fn files(&self) -> Vec<std::path::PathBuf> {
        self.expected_from.clone()
    }

    fn unqualified(&self) -> Vec<String> {
        self.unqualified.iter().cloned().collect()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let mut results = vec![self.newest(ctx).await];
        if let Some(failure) = &self.journal.failure {
            results.push(self.no_failures(ctx, failure).await);
        }
        if let (Some(history), Some(query)) = (&self.history, self.journal.each_sql()) {
            results.push(self.every(ctx, history, &query).await);
        }
        if let (Some(before), Some(query)) = (&self.before, self.journal.each_sql()) {
            results.push(self.kept(ctx, before, &query).await);
        }
        Ok(results)
    }
}

/// The migrations the scenario's baseline recorded of `journal`: a preset's journal that keeps a
/// row per migration, which a baseline captured since pgdrill records them lists.
fn of_baseline(ctx: &ResolveContext, journal: &Journal, preset: Option<Preset>) -> Result<Vec<String>, FieldError> {
    let preset = preset.ok_or_else(|| FieldError::unplaced("`baseline = true` is for a preset's journal"))?;
    if journal.kept == Kept::Newest {
        return Err(FieldError::unplaced(format!(
            "`baseline = true`: the {} preset's journal keeps no row per migration (or `every = false` says to read only its newest)",
            preset.as_str()
        )));
    }
    let baseline = ctx.require_baseline(KIND)?;
    let key = journal.key(preset);
    let found = baseline.migrations.iter().find(|m| m.journal == key);
    found.and_then(|m| m.entries.clone()).filter(|e| !e.is_empty()).ok_or_else(|| {
        FieldError::unplaced(format!(
            "`baseline = true`: the baseline records no migrations of `{key}`{}",
            if found.is_some() { " (captured before pgdrill recorded each migration)" } else { "" }
        ))
        .with_help("capture it again with `pgdrill baseline` from the database, or from a drill of a backup of it")
    })
}

/// What the code expects: the version, where it was read, and the code's migrations when a
/// folder was given.
struct Code {
    expected: String,
    source: Option<String>,
    folder: Option<crate::journal::folder::Folder>,
}

/// The expected version as written (`expected`), or read from the code's folders
/// (`expected_from`, relative to `base`), as the runner `records` them.
fn code(
    expected: Option<Spanned<VersionValue>>,
    from: Option<&Spanned<Folders>>,
    base: &Path,
    records: Records,
) -> Result<Code, FieldError> {
    match (expected, from) {
        (Some(expected), None) => {
            let text = expected.get_ref().to_string();
            if text.trim().is_empty() {
                return Err(FieldError::new(expected.span(), "the expected version is empty"));
            }
            Ok(Code { expected: text, source: None, folder: None })
        }
        (None, Some(dirs)) => {
            let paths: Vec<std::path::PathBuf> =
                dirs.get_ref().list().iter().map(|d| crate::field::normalize(&base.join(d))).collect();
            if paths.is_empty() {
                return Err(FieldError::new(dirs.span(), "`expected_from` lists no folder"));
            }
            let folder = crate::journal::folder::read_all(&paths, records)
                .map_err(|e| FieldError::new(dirs.span(), crate::error::error_chain(&e)))?;
            let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let source = format!("newest file of {}: {}", shown.join(", "), folder.source);
            Ok(Code { expected: folder.newest.clone(), source: Some(source), folder: Some(folder) })
        }
        (Some(e), Some(_)) => Err(FieldError::new(e.span(), "give `expected` or `expected_from`, not both")),
        (None, None) => Err(FieldError::unplaced("schema_version needs `expected` or `expected_from`")),
    }
}

/// The app (Django) or project (sqitch) whose rows the check reads: as written; else the app
/// whose `migrations` folder `expected_from` names, the project the plan names.
fn scope(
    preset: Option<Preset>,
    app: &Option<Spanned<String>>,
    project: &Option<Spanned<String>>,
    expected_from: Option<&Spanned<Folders>>,
    folder: Option<&crate::journal::folder::Folder>,
) -> Result<Option<(String, String)>, FieldError> {
    for (key, value, wants) in [("app", app, Preset::Django), ("project", project, Preset::Sqitch)] {
        if let Some(value) = value
            && preset != Some(wants)
        {
            return Err(FieldError::new(value.span(), format!("`{key}` is for the {} preset", wants.as_str())));
        }
    }
    match preset {
        Some(Preset::Django) => {
            if let Some(app) = app {
                return Ok(Some(("app".into(), app.get_ref().clone())));
            }
            let from = expected_from.ok_or_else(|| {
                FieldError::unplaced("the django preset reads one app's migrations: set `app` (its label)")
            })?;
            let [one] = from.get_ref().list() else {
                return Err(FieldError::new(from.span(), "the django preset reads one app's migrations folder"));
            };
            let path = Path::new(one);
            let named = path.components().filter_map(|c| c.as_os_str().to_str()).filter(|c| *c != "." && *c != "..");
            let folders: Vec<&str> = named.collect();
            let app = match folders.as_slice() {
                [.., app, "migrations"] => Some(*app),
                [.., app] if *app != "migrations" => Some(*app),
                _ => None,
            };
            let app = app.ok_or_else(|| {
                FieldError::new(from.span(), "cannot tell the Django app from this folder: set `app` (its label)")
            })?;
            Ok(Some(("app".into(), app.to_owned())))
        }
        Some(Preset::Sqitch) => Ok(project
            .as_ref()
            .map(|p| p.get_ref().clone())
            .or_else(|| folder.and_then(|f| f.project.clone()))
            .map(|p| ("project".into(), p))),
        _ => Ok(None),
    }
}

impl Spec {
    async fn newest(&self, ctx: &CheckContext<'_>) -> CheckResult {
        let started = Instant::now();
        // Liquibase: the changelog the code ships orders what was applied.
        let by_changelog = matches!(self.journal.order, Order::Changelog(_)) && self.history.is_some();
        let query = if by_changelog { self.journal.recorded_sql() } else { self.journal.newest_sql() };
        let table = &self.journal.table;
        let expected = match &self.expected_source {
            Some(source) => format!("{} ({source})", self.expected),
            None => self.expected.clone(),
        };
        let result = CheckResult::build(KIND, self.label(), started).expected(expected).evidence(query.clone());
        let read = QualifiedName::new(table.schema_or_public(), &table.name);
        if let Some(why) = self.unqualified.as_deref().and_then(|name| ctx.names.elsewhere(name, &read)) {
            return result.actual("another journal for the application").found(Found::AnotherJournal, why);
        }
        // A view can show any version: the journal is the table the migration tool writes.
        if let Ok(Some(kind)) = super::relation::kind(ctx.pool, table).await
            && !kind.is_table()
        {
            return result.actual(kind.describe()).found(Found::NotATable, super::relation::not_a_table(table, kind));
        }
        let newest = match by_changelog {
            true => sqlx::query_scalar::<_, Option<String>>(&query)
                .fetch_all(ctx.pool)
                .await
                .map(|rows| self.latest_in_history(rows.into_iter().flatten().collect())),
            false => {
                sqlx::query_scalar::<_, Option<String>>(&query).fetch_optional(ctx.pool).await.map(Option::flatten)
            }
        };
        let scope = self.journal.scope.as_ref().map(|(k, v)| format!(" ({k} {v})")).unwrap_or_default();
        match newest {
            Err(err) => result.found(
                Found::CouldNotRead,
                format!(
                    "could not read the migration journal `{table}`: {}",
                    names::describe_error(ctx.pool, &err).await
                ),
            ),
            Ok(None) => result
                .actual("no migrations recorded")
                .found(Found::Differs, format!("`{table}`{scope} has no migration rows; expected {}", self.expected)),
            Ok(Some(actual)) => {
                let code =
                    Expected { expected: &self.expected, key: &self.expected_key, history: self.history.as_deref() };
                let (ok, message) = crate::journal::judge(&format!("`{table}`{scope}"), self.records, &actual, code);
                result.actual(actual).found(if ok { Found::AtVersion } else { Found::Differs }, message)
            }
        }
    }

    /// Of the migrations recorded (newest first by the journal's own order), the one the code's
    /// history lists last; the journal's newest when the code lists none of them.
    fn latest_in_history(&self, recorded: Vec<String>) -> Option<String> {
        let history = self.history.as_deref().unwrap_or_default();
        let position = |r: &String| {
            history.iter().rposition(|h| crate::journal::standing(self.records, r, h) == crate::journal::Standing::Same)
        };
        recorded
            .iter()
            .filter_map(|r| position(r).map(|p| (p, r)))
            .max_by_key(|(p, _)| *p)
            .map(|(_, r)| r.clone())
            .or_else(|| recorded.first().cloned())
    }

    async fn no_failures(&self, ctx: &CheckContext<'_>, failure: &Failure) -> CheckResult {
        let started = Instant::now();
        let query = self.journal.failed_sql(failure);
        let table = &self.journal.table;
        let about = self.journal.failure_about(failure);
        let result = CheckResult::build(KIND, format!("{}: no failed migration", self.label()), started)
            .expected(format!("no migration recorded as {about}"))
            .evidence(query.clone());
        match sqlx::query_scalar::<_, Option<String>>(&query).fetch_all(ctx.pool).await {
            Err(err) => result.found(
                Found::CouldNotRead,
                format!(
                    "could not read the migration journal `{table}`: {}",
                    names::describe_error(ctx.pool, &err).await
                ),
            ),
            Ok(rows) if rows.is_empty() => {
                result.actual("none").found(Found::NoFailedMigration, format!("no migration in `{table}` is {about}"))
            }
            Ok(rows) => {
                let versions: Vec<String> = rows.into_iter().map(|v| v.unwrap_or_else(|| "(null)".into())).collect();
                result.actual(format!("{about}: {}", versions.join(", "))).found(
                    Found::FailedMigration,
                    format!("`{table}` records migration {} as {about}: it did not complete", versions.join(", ")),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `baseline = true` reads the journal's migrations from the baseline, for a preset whose
    /// journal keeps a row per migration; a baseline without them fails the scenario, saying
    /// how to capture one that has them.
    #[test]
    fn a_journal_is_compared_with_the_migrations_its_baseline_recorded() {
        use crate::baseline::{Baseline, MigrationVersion};
        let mut baseline = Baseline::empty_for_tests();
        let entries = Some(vec!["1".to_owned(), "2".to_owned(), "3".to_owned()]);
        baseline.migrations = vec![
            MigrationVersion { journal: "public.schema_migrations (rails)".into(), version: "3".into(), entries },
            MigrationVersion {
                journal: "public.schema_migrations (dbmate)".into(),
                version: "3".into(),
                entries: None,
            },
        ];
        let ctx = ResolveContext { base: ".".into(), baseline: Some(std::sync::Arc::new(baseline)) };
        let spec = |text: &str| Spec::resolve(toml::from_str(text).unwrap(), &ctx);
        let rails = spec("preset = \"rails\"\nexpected = \"3\"\nbaseline = true").unwrap();
        assert_eq!(rails.before.as_deref(), Some(&["1".to_owned(), "2".to_owned(), "3".to_owned()][..]));
        assert_eq!(spec("preset = \"rails\"\nexpected = \"3\"").unwrap().before, None);
        let error = |text: &str| spec(text).err().map(|e| e.message).unwrap_or_default();
        let old = error("preset = \"dbmate\"\nexpected = \"3\"\nbaseline = true");
        assert!(old.contains("records no migrations of `public.schema_migrations (dbmate)` (captured before"), "{old}");
        let newest_only = error("preset = \"golang-migrate\"\nexpected = \"3\"\nbaseline = true");
        assert!(newest_only.contains("journal keeps no row per migration"), "{newest_only}");
        let every = error("preset = \"rails\"\nexpected = \"3\"\nevery = false\nbaseline = true");
        assert!(every.contains("journal keeps no row per migration"), "{every}");
        let custom = error("table = \"public.versions\"\nexpected = \"3\"\nbaseline = true");
        assert!(custom.contains("is for a preset's journal"), "{custom}");
    }

    #[test]
    fn a_runner_that_records_stems_matches_its_folder_in_any_records_form() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["0001_init.up.sql", "0001_init.down.sql", "0003_name.up.sql", "0003_name.down.sql"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let table = "`public.schema_migrations`";
        for records in Records::CHOICES {
            let folder = crate::journal::folder::read(dir.path(), records).unwrap();
            let code = Expected { expected: &folder.newest, key: &folder.key, history: Some(&folder.history) };
            let judge = |actual| crate::journal::judge(table, records, actual, code);
            for same in ["0003_name", "0003", "0003_name.up.sql", "3"] {
                assert!(judge(same).0, "{records:?}: {same} is the folder's 0003_name.up.sql: {}", judge(same).1);
            }
            let (ok, message) = judge("0003_other");
            assert!(!ok && message.contains("two different migrations numbered 0003"), "{message}");
            let (ok, message) = judge("0001_init");
            assert!(!ok && message.contains("behind the code by 1 migration"), "{message}");
            let (ok, message) = judge("0004_later");
            assert!(!ok && message.contains("is newer than the code's"), "{message}");
        }
    }
}
