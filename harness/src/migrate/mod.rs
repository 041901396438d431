//! The migrate phase, for pre-migration safety checks: after the restore, apply the migrations
//! that are not yet in the restored database (numbered SQL files of a folder, or the
//! application's own migrate command), then let the checks prove the migrated database. The
//! reports show the journal's version before and after.
//!
//! ```toml
//! [migrate]
//! dir = "../db/migrations"                 # files named <number>-<name>.sql (or _name)
//! journal = "public.schema_migrations"     # its newest `version` says what is applied
//! record = "INSERT INTO public.schema_migrations (version, name, applied_at) VALUES ({{version}}, {{name}}, now())"
//! # role = "plur_app"                      # apply as this role (SET ROLE)
//! # command = ["npm", "run", "migrate"]    # or: the app's own runner, env templated as for [app]
//! # env = { DATABASE_URL = "{{database_url}}" }
//! ```
//!
//! Each file runs in a transaction with its `record` statement: a failing file is rolled back
//! and named, with its line.

use crate::outcome::MigrateInfo;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::PgPool;
use sqlx::{Connection, Executor};

use crate::dump::splitter::{Item, Splitter};
use crate::field::FieldError;
use crate::pg::{QualifiedName, SqlError, quote_ident, quote_literal};
use crate::provision::Target;
use crate::secret::Redactor;
use crate::template::{TemplateError, render};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Migrate")]
pub(crate) struct Config {
    /// A folder of migration files, relative to the scenario file: the `.sql` files whose name
    /// starts with a number (not `.down.sql`), applied in number order after the journal's
    /// version, each in its transaction. Give it or `command`, not both.
    pub dir: Option<String>,
    /// The application's own migration command, program first (`["npm", "run", "migrate"]`),
    /// run to its end in `workdir`.
    pub command: Option<Vec<String>>,
    /// The folder `command` runs in, relative to the scenario file (default: the scenario
    /// file's folder).
    pub workdir: Option<String>,
    /// Environment variables given to `command`, templated as `[app] env` is
    /// (`{{database_url}}`, `{{env.NAME}}`, ...).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Longest the migrations may take (default 10m).
    pub timeout: Option<String>,
    /// The migration journal table (`public.schema_migrations`): its newest version is shown
    /// before and after, and with `dir` only files numbered after it are applied. Default: the
    /// `schema_version` check's journal, when the scenario has one.
    pub journal: Option<String>,
    /// The journal's column holding the version (default `version`).
    pub column: Option<String>,
    /// With `dir`: an SQL statement run after each file in its transaction, to record it in the
    /// journal; `{{version}}` and `{{name}}` are the file's number and name (without `.sql`), as
    /// quoted literals.
    pub record: Option<String>,
    /// With `dir`: the role the files run as (`SET LOCAL ROLE`).
    pub role: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Runner {
    Folder { dir: PathBuf, record: Option<String>, role: Option<String> },
    Command { argv: Vec<String>, workdir: PathBuf, env: BTreeMap<String, String> },
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub runner: Runner,
    /// The journal whose newest entry is the version before and after.
    pub journal: Option<(QualifiedName, String)>,
    pub timeout: Duration,
}

impl Spec {
    pub(crate) fn resolve(config: Config, base: &Path) -> Result<Self, FieldError> {
        let workdir = crate::field::normalize(&base.join(config.workdir.as_deref().unwrap_or(".")));
        let runner = match (config.dir, config.command) {
            (Some(dir), None) => {
                let dir = crate::field::normalize(&base.join(dir));
                if let Some(record) = &config.record {
                    crate::template::check_template(
                        record,
                        &["version".to_owned(), "name".to_owned()].into(),
                        "migrate.record",
                    )?;
                }
                Runner::Folder { dir, record: config.record, role: config.role }
            }
            (None, Some(argv)) if !argv.is_empty() => {
                let known = crate::template::BUILTINS.iter().map(|s| s.to_string()).collect();
                for (k, v) in &config.env {
                    crate::template::check_template(v, &known, &format!("migrate.env.{k}"))?;
                }
                Runner::Command { argv, workdir, env: config.env }
            }
            _ => return Err(FieldError::unplaced("`[migrate]` needs exactly one of `dir` and `command`")),
        };
        let journal = match config.journal {
            Some(table) => Some((
                QualifiedName::parse(&table).map_err(FieldError::unplaced)?,
                config.column.unwrap_or_else(|| "version".into()),
            )),
            None => None,
        };
        let timeout = match &config.timeout {
            Some(t) => {
                humantime::parse_duration(t).map_err(|e| FieldError::unplaced(format!("`migrate.timeout`: {e}")))?
            }
            None => Duration::from_secs(600),
        };
        Ok(Spec { runner, journal, timeout })
    }
}

/// Why the migrate phase failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MigrateError {
    /// The restored database did not take a connection, or the programs' port did not open.
    #[error(transparent)]
    Target {
        #[from]
        source: crate::provision::TargetError,
    },
    /// The migrations took longer than `[migrate] timeout`.
    #[error("the migrations did not finish within {}", humantime::format_duration(*limit))]
    Timeout { limit: Duration },
    /// The migrations folder cannot be read.
    #[error("cannot read the migrations folder `{}`", dir.display())]
    Folder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A migration file failed: what failed is said inside the message, before what it means.
    #[error(
        "migration `{file}` failed at its line {line}: {problem} (it was rolled back; the checks did not run on a half-migrated database)"
    )]
    File { file: String, line: u64, problem: FileProblem },
    /// The migration command's environment could not be rendered.
    #[error(transparent)]
    Render {
        #[from]
        source: TemplateError,
    },
    /// The migration command failed.
    #[error(transparent)]
    Command {
        #[from]
        source: crate::program::ProgramError,
    },
    /// The migration journal cannot be read.
    #[error("cannot read the journal")]
    Journal {
        #[source]
        source: SqlError,
    },
}

/// What failed in a migration file (its transaction, one of its statements, its record).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileProblem {
    /// A connection or the file's transaction could not be had, or its commit failed.
    #[error("{error}")]
    Session { error: sqlx::Error },
    /// A statement of the file failed.
    #[error("{error}")]
    Statement { error: SqlError },
    /// The file cannot be split into statements.
    #[error("{error}")]
    Split { error: crate::dump::splitter::SplitError },
    /// The file loads rows from `COPY ... FROM stdin`, which no connection here can feed.
    #[error("COPY ... FROM stdin is not supported in a migration file")]
    CopyFromStdin,
    /// The file holds a psql meta-command.
    #[error("`\\{command}` is a psql meta-command, not SQL")]
    Meta { command: String },
    /// The `record` statement cannot be rendered.
    #[error("{error}")]
    Record { error: TemplateError },
    /// The `record` statement failed.
    #[error("recording it: {error}")]
    Recording { error: SqlError },
}

/// The newest version in the journal `table`'s `column`.
pub(crate) async fn version(
    pool: &PgPool,
    table: &QualifiedName,
    column: &str,
) -> Result<Option<String>, MigrateError> {
    let sql = format!(
        "SELECT ({})::text FROM {} ORDER BY {} DESC NULLS LAST LIMIT 1",
        quote_ident(column),
        table.sql(),
        quote_ident(column)
    );
    sqlx::query_scalar::<_, Option<String>>(&sql)
        .fetch_optional(pool)
        .await
        .map(Option::flatten)
        .map_err(|e| MigrateError::Journal { source: e.into() })
}

/// The migration files of `dir` newer than `after`, in order: (version, name, path).
pub(crate) fn pending(dir: &Path, after: Option<&str>) -> Result<Vec<(String, String, PathBuf)>, MigrateError> {
    let entries = std::fs::read_dir(dir).map_err(|source| MigrateError::Folder { dir: dir.to_owned(), source })?;
    let mut files: Vec<(String, String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            if !file.ends_with(".sql") || file.ends_with(".down.sql") {
                return None;
            }
            let version: String = file.chars().take_while(char::is_ascii_digit).collect();
            (!version.is_empty()).then(|| (version, file.trim_end_matches(".sql").to_owned(), e.path()))
        })
        .collect();
    files.sort_by(|a, b| crate::pg::compare_versions(&a.0, &b.0));
    Ok(files
        .into_iter()
        .filter(|(v, _, _)| after.is_none_or(|a| crate::pg::compare_versions(v, a) == std::cmp::Ordering::Greater))
        .collect())
}

/// Where in its statement PostgreSQL places an error (1-based characters), when it says.
fn error_position(error: &sqlx::Error) -> Option<usize> {
    let sqlx::Error::Database(db) = error else { return None };
    match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?.position()? {
        sqlx::postgres::PgErrorPosition::Original(position) => Some(position),
        _ => None,
    }
}

/// Applies the pending files of a folder, each in its transaction with its journal record.
pub(crate) async fn apply_folder(
    pool: &PgPool,
    files: &[(String, String, PathBuf)],
    record: Option<&str>,
    role: Option<&str>,
) -> Result<Vec<String>, MigrateError> {
    let mut applied = Vec::new();
    for (version, name, path) in files {
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let sql = std::fs::read_to_string(path).map_err(|source| MigrateError::Folder { dir: path.clone(), source })?;
        apply_file(pool, &sql, version, name, record, role).await.map_err(|(line, problem)| MigrateError::File {
            file: file.clone(),
            line,
            problem,
        })?;
        applied.push(file);
    }
    Ok(applied)
}

/// Applies one file's `sql` in its transaction, then its `record` of its `version` and `name`; the line
/// where it failed, and what failed.
async fn apply_file(
    pool: &PgPool,
    sql: &str,
    version: &str,
    name: &str,
    record: Option<&str>,
    role: Option<&str>,
) -> Result<(), (u64, FileProblem)> {
    let session = |error| (0, FileProblem::Session { error });
    let mut conn = pool.acquire().await.map_err(session)?;
    let mut tx = conn.begin().await.map_err(session)?;
    if let Some(role) = role {
        tx.execute(sqlx::raw_sql(&crate::pg::set_local_role(role))).await.map_err(session)?;
    }
    run_statements(&mut tx, sql).await?;
    if let Some(record) = record {
        let values: BTreeMap<String, String> =
            [("version".to_owned(), quote_literal(version)), ("name".to_owned(), quote_literal(name))].into();
        let statement = render(record, &values).map_err(|error| (0, FileProblem::Record { error }))?;
        tx.execute(sqlx::raw_sql(&statement)).await.map_err(|e| (0, FileProblem::Recording { error: e.into() }))?;
    }
    tx.commit().await.map_err(session)
}

/// Runs `sql` statement by statement, as psql would split it, so that an error names its line.
async fn run_statements(tx: &mut sqlx::PgConnection, sql: &str) -> Result<(), (u64, FileProblem)> {
    let mut statements = Splitter::new(sql.as_bytes());
    loop {
        let statement = match statements.next_item() {
            Ok(None) => return Ok(()),
            Ok(Some(Item::Statement(statement))) if !statement.copy_from_stdin => statement,
            Ok(Some(Item::Statement(statement))) => return Err((statement.line, FileProblem::CopyFromStdin)),
            Ok(Some(Item::Meta { command, line, .. })) => return Err((line, FileProblem::Meta { command })),
            Ok(Some(_)) => continue,
            Err(error) => return Err((statements.lines_read(), FileProblem::Split { error })),
        };
        if let Err(e) = tx.execute(sqlx::raw_sql(&statement.sql)).await {
            let offset = error_position(&e)
                .map(|pos| statement.sql.chars().take(pos.saturating_sub(1)).filter(|c| *c == '\n').count() as u64)
                .unwrap_or(0);
            return Err((statement.line + offset, FileProblem::Statement { error: e.into() }));
        }
    }
}

/// Applies the pending migrations (a pre-migration safety check); returns what changed and the
/// phase's summary.
pub(crate) async fn run(
    target: &Target,
    database: &str,
    spec: &Spec,
    redactor: &Redactor,
) -> Result<(MigrateInfo, String), MigrateError> {
    let pool = target.pool(database, 2).await?;
    let version = |pool: PgPool| async move {
        match &spec.journal {
            Some((table, column)) => version(&pool, table, column).await,
            None => Ok(None),
        }
    };
    let before = version(pool.clone()).await?;
    let applied = match &spec.runner {
        Runner::Folder { dir, record, role } => {
            let files = pending(dir, before.as_deref())?;
            // The release's SQL runs as the application's would: with the database's own settings.
            let raw = target.restore_pool(database, 1).await?;
            // A failure's message is redacted with the phase's error, as every phase's is.
            let work = apply_folder(&raw, &files, record.as_deref(), role.as_deref());
            let applied = tokio::time::timeout(spec.timeout, work).await;
            raw.close().await;
            applied.map_err(|_| MigrateError::Timeout { limit: spec.timeout })??
        }
        Runner::Command { argv, workdir, env } => {
            let login = target.program_login(None, redactor).await?;
            let values = crate::template::template_values(&login, database, None);
            let mut rendered = Vec::new();
            for (k, v) in env {
                rendered.push((k.clone(), render(v, &values)?));
            }
            crate::program::run_to_end(argv, workdir, &rendered, spec.timeout, redactor).await?;
            vec![argv.join(" ")]
        }
    };
    let after = version(pool.clone()).await?;
    pool.close().await;
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    let summary = if applied.is_empty() {
        format!("nothing to apply: the journal is at {}", show(&before))
    } else {
        format!("{} → {}: applied {}", show(&before), show(&after), applied.join(", "))
    };
    Ok((MigrateInfo { version_before: before, version_after: after, applied }, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    fn resolve(text: &str) -> Result<Spec, String> {
        Spec::resolve(config(text), Path::new("/scenarios")).map_err(|e| e.message)
    }

    #[test]
    fn a_folder_of_migrations_resolves_beside_the_scenario_with_its_journal() {
        let spec = resolve(
            "dir = \"../db/migrations\"\njournal = \"public.schema_migrations\"\nrole = \"app\"\n\
             record = \"INSERT INTO public.schema_migrations (version) VALUES ({{version}})\"",
        )
        .unwrap();
        let Runner::Folder { dir, record, role } = &spec.runner else { panic!("{:?}", spec.runner) };
        assert_eq!(dir, Path::new("/db/migrations"));
        assert!(record.as_deref().is_some_and(|r| r.contains("{{version}}")));
        assert_eq!(role.as_deref(), Some("app"));
        let (table, column) = spec.journal.unwrap();
        assert_eq!((table.sql(), column.as_str()), ("\"public\".\"schema_migrations\"".to_owned(), "version"));
        assert_eq!(spec.timeout, Duration::from_secs(600));
    }

    #[test]
    fn a_migration_command_runs_in_its_workdir_with_templated_env() {
        let spec = resolve(
            "command = [\"npm\", \"run\", \"migrate\"]\nworkdir = \"app\"\ntimeout = \"90s\"\n\
             env = { DATABASE_URL = \"{{database_url}}\", TOKEN = \"{{env.MIGRATE_TOKEN}}\" }\n\
             journal = \"schema_migrations\"\ncolumn = \"id\"",
        )
        .unwrap();
        let Runner::Command { argv, workdir, env } = &spec.runner else { panic!("{:?}", spec.runner) };
        assert_eq!(argv, &["npm", "run", "migrate"]);
        assert_eq!(workdir, Path::new("/scenarios/app"));
        assert_eq!(env.len(), 2);
        assert_eq!(spec.journal.map(|(_, column)| column).as_deref(), Some("id"));
        assert_eq!(spec.timeout, Duration::from_secs(90));
    }

    #[test]
    fn a_migrate_section_that_cannot_run_is_refused() {
        let one_of = Err("`[migrate]` needs exactly one of `dir` and `command`".to_owned());
        assert_eq!(resolve("dir = \"m\"\ncommand = [\"make\", \"migrate\"]").map(|_| ()), one_of);
        assert_eq!(resolve("journal = \"public.schema_migrations\"").map(|_| ()), one_of);
        assert_eq!(resolve("command = []").map(|_| ()), one_of);
        let record = resolve("dir = \"m\"\nrecord = \"INSERT INTO j VALUES ({{version}}, {{checksum}})\"").unwrap_err();
        assert!(
            record.starts_with("migrate.record uses `{{checksum}}`, which is not known there (known: name, version"),
            "{record}"
        );
        let env = resolve("command = [\"make\"]\nenv = { URL = \"{{databse_url}}\" }").unwrap_err();
        assert!(env.starts_with("migrate.env.URL uses `{{databse_url}}`, which is not known there"), "{env}");
        let timeout = resolve("dir = \"m\"\ntimeout = \"ten minutes\"").unwrap_err();
        assert!(timeout.starts_with("`migrate.timeout`: "), "{timeout}");
        assert!(toml::from_str::<Config>("dir = \"m\"\nfolder = \"n\"").is_err(), "unknown keys are refused");
    }

    fn touch(dir: &Path, names: &[&str]) {
        for name in names {
            std::fs::write(dir.join(name), "SELECT 1;\n").unwrap();
        }
    }

    /// The files of a folder that are migrations (numbered `.sql`, not `.down.sql`), in the
    /// order of their numbers (not of their names), after the version the journal is at.
    #[test]
    fn the_pending_migrations_are_the_numbered_files_after_the_journals_version() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), &["1-init.sql", "2_users.sql", "10-orders.sql", "10-orders.down.sql", "003-index.sql"]);
        touch(dir.path(), &["README.md", "seed.sql"]);
        let names = |after| -> Vec<(String, String)> {
            pending(dir.path(), after).unwrap().into_iter().map(|(version, name, _)| (version, name)).collect()
        };
        let all = names(None);
        assert_eq!(
            all,
            [("1", "1-init"), ("2", "2_users"), ("003", "003-index"), ("10", "10-orders")]
                .map(|(v, n)| (v.to_owned(), n.to_owned()))
        );
        assert_eq!(names(Some("2")).iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>(), ["003", "10"]);
        assert!(names(Some("10")).is_empty());
        let (_, _, path) = pending(dir.path(), Some("3")).unwrap().remove(0);
        assert_eq!(path, dir.path().join("10-orders.sql"));
    }

    #[test]
    fn a_missing_migrations_folder_is_named() {
        let error = pending(Path::new("/nonexistent/migrations"), None).unwrap_err();
        assert_eq!(error.to_string(), "cannot read the migrations folder `/nonexistent/migrations`");
    }

    #[test]
    fn a_failed_file_is_named_with_its_line_and_said_rolled_back() {
        let error = MigrateError::File { file: "10-orders.sql".into(), line: 7, problem: FileProblem::CopyFromStdin };
        assert_eq!(
            error.to_string(),
            "migration `10-orders.sql` failed at its line 7: COPY ... FROM stdin is not supported in a migration file \
             (it was rolled back; the checks did not run on a half-migrated database)"
        );
        assert_eq!(FileProblem::Meta { command: "i".into() }.to_string(), "`\\i` is a psql meta-command, not SQL");
        assert_eq!(
            MigrateError::Timeout { limit: Duration::from_secs(90) }.to_string(),
            "the migrations did not finish within 1m 30s"
        );
    }
}
