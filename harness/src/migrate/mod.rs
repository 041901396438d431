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
    pub dir: Option<String>,
    pub command: Option<Vec<String>>,
    pub workdir: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub timeout: Option<String>,
    pub journal: Option<String>,
    pub column: Option<String>,
    pub record: Option<String>,
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

/// The journal's newest version.
pub(crate) async fn version(pool: &PgPool, journal: &(QualifiedName, String)) -> Result<Option<String>, MigrateError> {
    let sql = format!(
        "SELECT ({})::text FROM {} ORDER BY {} DESC NULLS LAST LIMIT 1",
        quote_ident(&journal.1),
        journal.0.sql(),
        quote_ident(&journal.1)
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
        apply_file(pool, &sql, (version, name), record, role).await.map_err(|(line, problem)| MigrateError::File {
            file: file.clone(),
            line,
            problem,
        })?;
        applied.push(file);
    }
    Ok(applied)
}

/// Applies one file's `sql` in its transaction, then its `record` of `(version, name)`; the line
/// where it failed, and what failed.
async fn apply_file(
    pool: &PgPool,
    sql: &str,
    (version, name): (&str, &str),
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
    let pool = target.pool(database, 2, redactor).await?;
    let version = |pool: PgPool| async move {
        match &spec.journal {
            Some(journal) => version(&pool, journal).await,
            None => Ok(None),
        }
    };
    let before = version(pool.clone()).await?;
    let applied = match &spec.runner {
        Runner::Folder { dir, record, role } => {
            let files = pending(dir, before.as_deref())?;
            // The release's SQL runs as the application's would: with the database's own settings.
            let raw = target.restore_pool(database, 1, redactor).await?;
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
