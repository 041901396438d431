//! `pgdrill init BACKUP`: a scenario written from a backup. The backup is drilled as any
//! scenario's is (fetch, verify, provision, preflight, restore or recovery, teardown, in a
//! throwaway target), but in place of checks its restore is read through the catalogs
//! (`inventory`): extensions, the migration journal, indexes, row security and policies, the
//! roles its grants name, partition windows, schemas, graphs. Each check those facts imply is
//! run once on that same restore; one that passes is written as is, one that does not is
//! written commented out with why (`write`). So a scenario `init` writes passes on its own
//! backup, and fails on a backup that lost what this one has.

mod append_only;
mod block;
mod checks;
pub(crate) mod expr;
pub(crate) mod inventory;
mod rls;
pub(crate) mod write;

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::drill::{self, DrillOptions, Inspect, Restored};
use crate::dump::{Format, NotADump};
use crate::report::{Phase, PhaseStatus, Reporter};
use crate::scenario::IMAGE_MAJORS;
use crate::scenario::Scenario;
use crate::source::physical;
use block::Block;
use checks::DumpRows;
use write::{Globals, Header};

/// What `pgdrill init` is asked.
#[derive(Debug, Clone)]
pub(crate) struct InitOptions {
    /// A pg_dump backup (plain, gzip, zstd; custom; tar; a directory-format folder), a
    /// pg_basebackup folder or a pgBackRest repository.
    pub backup: PathBuf,
    /// The scenario file to write; default `<name>.toml` in the current folder.
    pub output: Option<PathBuf>,
    /// Overwrite the output file.
    pub force: bool,
    /// A globals file; default `<name>.globals.sql` beside the backup, if there is one.
    pub globals: Option<PathBuf>,
    /// A base backup's WAL archive.
    pub wal_archive: Option<PathBuf>,
    /// The target's PostgreSQL major (`[target] version`), for a dump whose header names an
    /// older one than its SQL needs; default: the header's.
    pub version: Option<u32>,
}

/// What `init` wrote.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub path: PathBuf,
    /// Checks written to run.
    pub checks: usize,
    /// Checks written commented out, each with why.
    pub disabled: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    /// The backup is not there.
    #[error("backup `{0}` does not exist")]
    Missing(String),
    /// The backup is not one pgdrill reads.
    #[error("`{path}` is not a backup pgdrill reads: {why}")]
    NotABackup { path: String, why: String },
    /// The scenario would overwrite a file.
    #[error("`{0}` exists (hint: --force overwrites it)")]
    OutputExists(String),
    /// A path given cannot be used.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The drill of the backup did not get as far as its restore; `hint` starts with a space.
    #[error("the restore of `{backup}` failed in {phase}: {error}{hint}")]
    Drill { backup: String, phase: String, error: String, hint: String },
    /// Interrupted (SIGINT, SIGTERM): the target is removed and nothing is written.
    #[error("interrupted: nothing was written")]
    Interrupted,
    /// The scenario written did not load: a defect of `init`.
    #[error("the scenario written does not load (a pgdrill defect): {0}")]
    Invalid(String),
}

impl InitError {
    /// Whether the command line or its paths are at fault (exit 2), not the backup's drill.
    pub(crate) fn is_usage(&self) -> bool {
        matches!(
            self,
            InitError::Missing(_) | InitError::NotABackup { .. } | InitError::OutputExists(_) | InitError::Usage(_)
        )
    }
}

/// What the backup is, from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dump(Format),
    Physical,
}

/// Writes a scenario from the backup; `reporters` show the drill as it goes (the console).
pub(crate) async fn run(
    options: &InitOptions,
    reporters: Vec<Box<dyn Reporter>>,
    cancel: CancellationToken,
) -> Result<Written, InitError> {
    let Plan { shown, backup, kind, what, name, output, out_dir, globals, near, wal_archive, database } =
        plan(options)?;
    // The drill: a scenario of this backup alone, in a folder of its own with its reports.
    let work = std::env::temp_dir().join(format!("pgdrill-init-{}", hex::encode(rand::random::<[u8; 8]>())));
    let io = |what: String| move |source| InitError::Io { what, source };
    std::fs::create_dir_all(&work).map_err(io(format!("cannot make `{}`", work.display())))?;
    let result = async {
        let text = drill_text(&name, &backup, wal_archive.as_deref(), &database, options.version, globals.as_deref());
        let scenario = work.join(format!("{name}.toml"));
        std::fs::write(&scenario, text).map_err(io(format!("cannot write `{}`", scenario.display())))?;
        let relative_to_output = |path: &Path| relative(path, &out_dir).display().to_string();
        let header = Header {
            name: name.clone(),
            file_name: backup.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            what,
            output_name: output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            source_path: relative_to_output(&backup),
            wal_archive: wal_archive.as_deref().map(relative_to_output),
            database: database.clone(),
            globals: match (&globals, &near) {
                (Some(path), _) => Globals::Set(relative_to_output(path)),
                (None, Some(path)) => Globals::Near(relative_to_output(path)),
                (None, None) => Globals::None,
            },
            physical: kind == Kind::Physical,
            version: options.version,
            ..Header::default()
        };
        let inspector = Arc::new(Inspector {
            header,
            globals_roles: match &globals {
                Some(path) => globals_roles(path).await,
                None => Vec::new(),
            },
            output: output.clone(),
            written: Mutex::new(None),
        });
        let drill_options = DrillOptions {
            out_dir: Some(work.join("reports")),
            inspect: Some(inspector.clone()),
            ..DrillOptions::default()
        };
        let outcome = drill::run(&scenario, &drill_options, reporters, cancel.clone()).await;
        if cancel.is_cancelled() {
            return Err(InitError::Interrupted);
        }
        let generated = inspector.written.lock().ok().and_then(|mut w| w.take());
        let Some((text, checks, disabled)) = generated else {
            return Err(drill_error(&outcome.record, &shown));
        };
        std::fs::write(&output, text).map_err(io(format!("cannot write `{}`", output.display())))?;
        Ok(Written { path: options.output.clone().unwrap_or_else(|| output.clone()), checks, disabled })
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

/// What `init` learnt of its input before anything starts.
struct Plan {
    /// The backup as the user named it.
    shown: String,
    backup: PathBuf,
    kind: Kind,
    what: String,
    name: String,
    output: PathBuf,
    out_dir: PathBuf,
    globals: Option<PathBuf>,
    near: Option<PathBuf>,
    wal_archive: Option<PathBuf>,
    database: String,
}

/// Checks `init`'s input (the backup, the options, where the scenario goes) and settles what
/// the drill and the scenario take: input it cannot use is refused before anything starts.
fn plan(options: &InitOptions) -> Result<Plan, InitError> {
    let shown = options.backup.display().to_string();
    if !options.backup.exists() {
        return Err(InitError::Missing(shown));
    }
    let backup = absolute(&options.backup)?;
    let (kind, what) = identify(&backup).map_err(|why| InitError::NotABackup { path: shown.clone(), why })?;
    if options.wal_archive.is_some() && kind != Kind::Physical {
        return Err(InitError::Usage(format!("--wal-archive is for a base backup, and `{shown}` is a pg_dump backup")));
    }
    check_version(options.version, kind, &shown)?;
    let name = scenario_name(&backup);
    let output = options.output.clone().unwrap_or_else(|| PathBuf::from(format!("{name}.toml")));
    if output.exists() && !options.force {
        return Err(InitError::OutputExists(output.display().to_string()));
    }
    if output.is_dir() {
        return Err(InitError::Usage(format!("`{}` is a folder: name the scenario file to write", output.display())));
    }
    let output = absolute(&output)?;
    let out_dir = output.parent().map(Path::to_owned).unwrap_or_default();
    if !out_dir.is_dir() {
        return Err(InitError::Usage(format!("the folder `{}` does not exist", out_dir.display())));
    }
    let globals = match &options.globals {
        Some(path) if !path.is_file() => {
            return Err(InitError::Missing(path.display().to_string()));
        }
        Some(path) => Some(absolute(path)?),
        None => beside(&backup, &name, ".globals.sql"),
    };
    let near = if globals.is_none() { near_globals(&backup, &name) } else { None };
    let wal_archive = options.wal_archive.as_deref().map(absolute).transpose()?;
    let database = match kind {
        Kind::Dump(format) if format != Format::Plain => header_database(&backup)
            .filter(|d| !matches!(d.as_str(), "postgres" | "template0" | "template1") && d.len() <= 63)
            .unwrap_or_else(|| name.clone()),
        _ => name.clone(),
    };
    Ok(Plan { shown, backup, kind, what, name, output, out_dir, globals, near, wal_archive, database })
}

/// The scenario of the drill `init` runs: the backup alone, restored as the scenario will be.
fn drill_text(
    name: &str,
    backup: &Path,
    wal_archive: Option<&Path>,
    database: &str,
    version: Option<u32>,
    globals: Option<&Path>,
) -> String {
    let mut text =
        format!("name = {}\n[source]\npath = {}\n", block::string(name), block::string(&backup.display().to_string()));
    if let Some(wal) = wal_archive {
        text.push_str(&format!("wal_archive = {}\n", block::string(&wal.display().to_string())));
    }
    text.push_str(&format!("[target]\ndatabase = {}\n", block::string(database)));
    if let Some(version) = version {
        text.push_str(&format!("version = {version}\n"));
    }
    if let Some(globals) = globals {
        text.push_str(&format!("[restore]\nglobals = {}\n", block::string(&globals.display().to_string())));
    }
    text
}

/// What `init` hands the drill: reads the restore, writes the scenario's text.
#[derive(Debug)]
struct Inspector {
    header: Header,
    /// Roles the globals file makes.
    globals_roles: Vec<String>,
    /// Where the scenario goes (its relative paths start at its folder).
    output: PathBuf,
    /// The text, with how many checks run and those written commented out.
    written: Mutex<Option<(String, usize, Vec<String>)>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Inspect for Inspector {
    fn inspect<'a>(&'a self, restored: Restored<'a>) -> futures_util::future::BoxFuture<'a, Result<String, BoxError>> {
        Box::pin(async move {
            let mut header = self.header.clone();
            let target = restored.target;
            let mut database = restored.database.to_owned();
            if header.physical {
                // A cluster: the largest of its own databases.
                let pool = target.pool(&target.maintenance_db, 1, restored.redactor).await?;
                let mut databases = inventory::databases(&pool).await?;
                pool.close().await;
                if databases.is_empty() {
                    return Err(
                        "the recovered cluster holds no database of its own (only postgres and the templates)".into()
                    );
                }
                database = databases.remove(0);
                header.other_databases = databases;
            } else {
                header.restore_roles =
                    restored.roles_created.iter().filter(|r| !self.globals_roles.contains(r)).cloned().collect();
                header.restore_roles.sort();
            }
            header.database = database.clone();
            let pool = target.pool(&database, 4, restored.redactor).await?;
            let found = inventory::read(&pool, header.physical).await?;
            let dump = (!header.physical)
                .then(|| DumpRows { tables: restored.dump.copy_rows.len(), rows: restored.dump.total_rows() });
            let mut blocks = checks::blocks(&found, dump);
            let ctx = crate::check::CheckContext {
                pool: &pool,
                dump: restored.dump,
                target,
                database: &database,
                redactor: restored.redactor,
                trails: &Default::default(),
                login: &Default::default(),
                names: &Default::default(),
            };
            // One block at a time: a probe commits probe rows and lifts a NOLOGIN while it
            // connects, which a block proven beside it would read.
            let mut pending = Vec::new();
            for (i, block) in blocks.iter().enumerate() {
                if block.is_check() {
                    pending.push(prove(i, block, &header, &self.output, &ctx));
                }
            }
            let proofs: Vec<(usize, Result<Proven, BoxError>)> =
                futures_util::stream::iter(pending).then(|proof| proof).collect().await;
            for (i, proof) in proofs {
                (blocks[i].disabled, blocks[i].optional_disabled) = proof?;
            }
            pool.close().await;
            let text = write::render(&header, &blocks);
            Scenario::parse(text.as_bytes(), &self.output).map_err(|e| InitError::Invalid(e.to_string()))?;
            let checks = blocks.iter().filter(|b| b.is_check() && b.disabled.is_none()).count();
            let mut disabled: Vec<String> = blocks
                .iter()
                .filter_map(|b| Some(format!("{}: {}", b.body.first()?, b.disabled.as_deref()?.lines().next()?)))
                .collect();
            disabled.extend(blocks.iter().filter_map(|b| {
                let key = b.optional.first()?.split(" = ").next()?;
                Some(format!("{} {key}: {}", b.body.first()?, b.optional_disabled.as_deref()?.lines().next()?))
            }));
            let summary = format!(
                "{checks} checks proven on the restore of `{database}`{}",
                if disabled.is_empty() {
                    String::new()
                } else {
                    format!(", {} written commented out (they did not pass)", disabled.len())
                }
            );
            if let Ok(mut slot) = self.written.lock() {
                *slot = Some((text, checks, disabled));
            }
            Ok(summary)
        })
    }
}

/// Why a block is written commented out, and why its optional lines are: `None` for each
/// that passed.
type Proven = (Option<String>, Option<String>);

/// Runs a block's check on the restore (`index` is handed back): with its optional lines
/// first; when that fails, without them, which then decides alone.
async fn prove(
    index: usize,
    block: &Block,
    header: &Header,
    output: &Path,
    ctx: &crate::check::CheckContext<'_>,
) -> (usize, Result<Proven, BoxError>) {
    let proven = async {
        let with = proof(&block.lines(true), header, output, ctx).await?;
        if with.is_none() || block.optional.is_empty() {
            return Ok((with, None));
        }
        Ok(match proof(&block.body, header, output, ctx).await? {
            None => (None, with),
            without => (without, None),
        })
    };
    (index, proven.await)
}

async fn proof(
    lines: &[String],
    header: &Header,
    output: &Path,
    ctx: &crate::check::CheckContext<'_>,
) -> Result<Option<String>, BoxError> {
    let text = format!(
        "name = \"init\"\n[source]\npath = \"backup\"\n[target]\ndatabase = {}\n{}\n",
        block::string(&header.database),
        lines.join("\n")
    );
    let scenario = Scenario::parse(text.as_bytes(), output).map_err(|e| InitError::Invalid(e.to_string()))?;
    let mut failed: Vec<String> = Vec::new();
    for spec in &scenario.checks {
        for result in spec.run(ctx).await {
            if result.verdict != crate::outcome::Verdict::Pass {
                failed.push(format!("{}: {}", result.id, result.message));
            }
        }
    }
    Ok((!failed.is_empty()).then(|| crate::listing::and_more(failed.iter().take(5), failed.len(), "\n")))
}

/// `--version`: for a pg_dump backup, a major pgdrill builds.
fn check_version(version: Option<u32>, kind: Kind, shown: &str) -> Result<(), InitError> {
    let Some(version) = version else { return Ok(()) };
    if kind == Kind::Physical {
        return Err(InitError::Usage(format!(
            "--version is for a pg_dump backup: `{shown}` recovers on its own major only"
        )));
    }
    if !IMAGE_MAJORS.contains(&version) {
        return Err(InitError::Usage(format!(
            "--version {version}: pgdrill builds images of PostgreSQL {} only",
            crate::provision::spec::image_majors_in_words()
        )));
    }
    Ok(())
}

/// Why the drill of the backup did not reach its restore's inspection, with a hint when it
/// failed as a newer major's SQL fails.
fn drill_error(record: &crate::report::DrillRecord, shown: &str) -> InitError {
    let failed = record.phases.iter().find(|p| p.status == PhaseStatus::Failed);
    let error = failed.and_then(|p| p.error.clone()).unwrap_or_else(|| "no error recorded".into());
    let major = record.target.as_ref().map(|t| t.server_version_num / 10000);
    let hint = match (failed.map(|p| p.phase), major) {
        (Some(Phase::Restore), Some(major)) => newer_major_hint(&error, major),
        _ => None,
    };
    InitError::Drill {
        backup: shown.to_owned(),
        phase: failed.map(|p| p.phase.to_string()).unwrap_or_else(|| "an unknown phase".into()),
        error,
        hint: hint.map(|h| format!(" (hint: {h})")).unwrap_or_default(),
    }
}

/// When a restore on PostgreSQL `major` failed as SQL of a newer PostgreSQL fails (a syntax
/// error, an unknown option, function or type: a dump whose header names an older major than
/// its SQL needs), `--version` with the next major pgdrill builds.
fn newer_major_hint(error: &str, major: u32) -> Option<String> {
    let next = IMAGE_MAJORS.into_iter().find(|m| *m > major)?;
    let lower = error.to_lowercase();
    let newer = ["42601", "0a000", "42704", "42883", "syntax error", "unrecognized", "not supported"]
        .iter()
        .any(|sign| lower.contains(sign))
        || regex::Regex::new(r"(function|type|operator|access method|collation) \S+ does not exist")
            .is_ok_and(|r| r.is_match(&lower));
    newer.then(|| {
        format!(
            "the restore ran on PostgreSQL {major}, the major the backup's header names; if its SQL needs a newer one, `pgdrill init --version {next}` restores it on PostgreSQL {next} (and writes `version = {next}` under [target])"
        )
    })
}

/// What the backup is, from its content; why not, when it is none pgdrill reads.
fn identify(path: &Path) -> Result<(Kind, String), String> {
    if path.is_dir() {
        if physical::detect(path) {
            let what = if physical::pgbackrest::is_repository(path) {
                "pgBackRest repository"
            } else if physical::chain::is_chain(path) {
                "chain of incremental backups (pg_basebackup --incremental)"
            } else {
                "base backup"
            };
            return Ok((Kind::Physical, what.into()));
        }
        if path.join("toc.dat").is_file() {
            return Ok((Kind::Dump(Format::Directory), "directory-format archive".into()));
        }
        return Err("a folder that is neither a directory-format archive (no toc.dat), a pg_basebackup folder nor a pgBackRest repository".into());
    }
    let mut opened = crate::source::read::open(path, false).map_err(|e| crate::error::error_chain(&e))?;
    let head = std::io::BufRead::fill_buf(&mut opened.reader).map_err(|e| e.to_string())?.to_vec();
    let format = crate::dump::detect_format(&head).map_err(|e| match e {
        NotADump::Empty => "it is empty".to_owned(),
        other => other.to_string(),
    })?;
    let what = match (format, opened.compression) {
        (Format::Plain, crate::dump::Compression::None) => "plain SQL".to_owned(),
        (Format::Plain, compression) => format!("plain SQL, {}", compression.as_str()),
        (format, _) => format!("{}-format archive", format.as_str()),
    };
    Ok((Kind::Dump(format), what))
}

/// The database an archive's header names.
fn header_database(path: &Path) -> Option<String> {
    use std::io::{BufRead, BufReader, Read};
    let header = if path.is_dir() {
        crate::dump::archive::read_header(BufReader::new(std::fs::File::open(path.join("toc.dat")).ok()?)).ok()?
    } else {
        let mut opened = crate::source::read::open(path, false).ok()?;
        let head = opened.reader.fill_buf().ok()?;
        if head.get(257..262) == Some(b"ustar".as_slice()) {
            std::io::copy(&mut (&mut opened.reader).take(512), &mut std::io::sink()).ok()?;
        }
        crate::dump::archive::read_header(&mut opened.reader).ok()?
    };
    Some(header.database).filter(|d| !d.is_empty())
}

/// The roles a globals file makes.
async fn globals_roles(path: &Path) -> Vec<String> {
    let backup = crate::source::Backup {
        location: path.display().to_string(),
        path: path.to_owned(),
        size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        modified: None,
        previous: None,
        wal_archive: None,
        keys: Vec::new(),
        remote: None,
    };
    tokio::task::spawn_blocking(move || {
        crate::source::verify::verify(&backup, None, &|_| {}, &std::sync::atomic::AtomicBool::new(false))
    })
    .await
    .ok()
    .and_then(Result::ok)
    .map(|v| v.summary.roles_created.into_iter().collect())
    .unwrap_or_default()
}

/// The scenario's name: the backup's, without its extensions, made safe for a folder.
fn scenario_name(backup: &Path) -> String {
    let file = backup.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut stem = file.as_str();
    loop {
        let before = stem;
        for ext in [".gz", ".zst", ".sql", ".dump", ".backup", ".tar", ".dir", ".pgdump"] {
            if let Some(s) = stem.strip_suffix(ext).filter(|s| !s.is_empty()) {
                stem = s;
            }
        }
        if stem == before {
            break;
        }
    }
    let name: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    match name.chars().next() {
        Some(c) if c.is_ascii_alphanumeric() => name,
        _ => format!("backup{name}"),
    }
}

/// `<name><suffix>` beside the backup, if it is a file.
fn beside(backup: &Path, name: &str, suffix: &str) -> Option<PathBuf> {
    let path = backup.parent()?.join(format!("{name}{suffix}"));
    path.is_file().then_some(path)
}

/// A globals file beside the backup named for another backup whose name starts this one's
/// (`plur.globals.sql` beside `plur-pg18.sql.gz`), the longest such name.
fn near_globals(backup: &Path, name: &str) -> Option<PathBuf> {
    let dir = backup.parent()?;
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            let stem = file.strip_suffix(".globals.sql")?.to_owned();
            (name.starts_with(&stem) && entry.path().is_file()).then(|| (stem.len(), entry.path()))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, path)| path)
}

/// `path` made absolute against the current folder, `.` and `..` resolved where they can be.
fn absolute(path: &Path) -> Result<PathBuf, InitError> {
    let joined = std::path::absolute(path)
        .map_err(|source| InitError::Io { what: format!("cannot resolve `{}`", path.display()), source })?;
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// `path` relative to the folder `from` (both absolute).
fn relative(path: &Path, from: &Path) -> PathBuf {
    let path: Vec<Component> = path.components().collect();
    let from: Vec<Component> = from.components().collect();
    let common = path.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for component in &path[common..] {
        out.push(component);
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_written_relative_to_the_scenario_file() {
        let from = Path::new("/work/scenarios");
        assert_eq!(
            relative(Path::new("/work/fixtures/backups/plur.sql.gz"), from),
            Path::new("../fixtures/backups/plur.sql.gz")
        );
        assert_eq!(relative(Path::new("/work/scenarios/plur.dump"), from), Path::new("plur.dump"));
        assert_eq!(relative(Path::new("/elsewhere/x.dump"), from), Path::new("../../elsewhere/x.dump"));
    }

    #[test]
    fn a_restore_failing_on_newer_sql_suggests_the_next_major() {
        let syntax = "dump line 12 (TABLE public.t): 42601 syntax error at or near \"VIRTUAL\"";
        assert!(newer_major_hint(syntax, 17).unwrap().contains("--version 18"));
        assert!(newer_major_hint("dump line 3: 42883 function uuidv7() does not exist", 17).is_some());
        assert_eq!(newer_major_hint(syntax, 18), None, "no newer major is built");
        assert_eq!(newer_major_hint("dump line 9: 23505 duplicate key value", 17), None);
    }

    #[test]
    fn the_name_is_the_backups_without_its_extensions() {
        assert_eq!(scenario_name(Path::new("/b/plur.sql.gz")), "plur");
        assert_eq!(scenario_name(Path::new("/b/prismeai.dir")), "prismeai");
        assert_eq!(scenario_name(Path::new("/b/plur-pg18.sql.zst")), "plur-pg18");
        assert_eq!(scenario_name(Path::new("/b/base 2026-11-22")), "base_2026-11-22");
        assert_eq!(scenario_name(Path::new("/b/.sql")), "backup.sql");
    }
}
