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
mod inspect;
pub(crate) mod inventory;
mod like;
mod plan;
mod rls;
pub(crate) mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::drill::{self, DrillOptions};
use crate::outcome::{Phase, PhaseStatus, Reporter};
use crate::scenario::IMAGE_MAJORS;
use inspect::Inspector;
use plan::{IdentifyError, Kind, Plan, plan, relative};
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
    /// A globals file; default `<name>.globals.sql` beside the backup, if there is one (`<name>`:
    /// its file name with or without its extensions).
    pub globals: Option<PathBuf>,
    /// A base backup's WAL archive.
    pub wal_archive: Option<PathBuf>,
    /// The target's PostgreSQL major (`[target] version`), for a dump whose header names an
    /// older one than its SQL needs; default: the header's.
    pub version: Option<u32>,
    /// A scenario (a file, or a shipped one's name) whose checks of the kinds the restore cannot
    /// tell are copied, each proven on this backup's restore.
    pub like: Option<String>,
}

/// What `init` wrote.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub path: PathBuf,
    /// The baseline of the restore, beside the scenario.
    pub baseline: PathBuf,
    /// Checks written to run.
    pub checks: usize,
    /// Checks written commented out, each with why.
    pub disabled: Vec<String>,
}

/// Why `init` wrote no scenario.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    /// The backup (or the globals file given) is not there.
    #[error("backup `{path}` does not exist")]
    Missing { path: String },
    /// The backup is not one pgdrill reads.
    #[error("`{path}` is not a backup pgdrill reads")]
    NotABackup {
        path: String,
        #[source]
        why: IdentifyError,
    },
    /// The scenario would overwrite a file.
    #[error("`{path}` exists (hint: --force overwrites it)")]
    OutputExists { path: String },
    /// `--wal-archive` for a pg_dump backup.
    #[error("--wal-archive is for a base backup, and `{shown}` is a pg_dump backup")]
    WalArchiveOfDump { shown: String },
    /// `--version` for a physical backup.
    #[error("--version is for a pg_dump backup: `{shown}` recovers on its own major only")]
    VersionOfPhysical { shown: String },
    /// `--version` names a major pgdrill builds no image of.
    #[error("--version {version}: pgdrill builds images of PostgreSQL {majors} only")]
    VersionNotBuilt { version: u32, majors: String },
    /// `--output` is a folder.
    #[error("`{}` is a folder: name the scenario file to write", path.display())]
    OutputIsFolder { path: PathBuf },
    /// The scenario's folder is not there.
    #[error("the folder `{}` does not exist", dir.display())]
    NoFolder { dir: PathBuf },
    /// Reading or writing a file failed.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The drill of the backup did not get as far as its restore; `hint` starts with a space.
    #[error("the restore of `{backup}` failed in {phase}: {error}{hint}")]
    Drill { backup: String, phase: String, error: String, hint: String },
    /// A recovered cluster holds no database to drill.
    #[error("the recovered cluster holds no database of its own (only postgres and the templates)")]
    NoDatabase,
    /// Interrupted (SIGINT, SIGTERM): the target is removed and nothing is written.
    #[error("interrupted: nothing was written")]
    Interrupted,
    /// `--like` names no scenario pgdrill can read.
    #[error("--like: {0}")]
    Like(#[from] like::LikeError),
    /// The scenario written did not load: a defect of `init`.
    #[error("the scenario written does not load (a pgdrill defect)")]
    Invalid {
        #[source]
        source: crate::scenario::ScenarioError,
    },
}

impl InitError {
    /// Whether the command line or its paths are at fault (exit 2), not the backup's drill.
    pub(crate) fn is_usage(&self) -> bool {
        matches!(
            self,
            InitError::Missing { .. }
                | InitError::NotABackup { .. }
                | InitError::OutputExists { .. }
                | InitError::WalArchiveOfDump { .. }
                | InitError::VersionOfPhysical { .. }
                | InitError::VersionNotBuilt { .. }
                | InitError::OutputIsFolder { .. }
                | InitError::NoFolder { .. }
                | InitError::Like(_)
        )
    }
}

/// Writes a scenario from the backup; `reporters` show the drill as it goes (the console).
pub(crate) async fn run(
    options: &InitOptions,
    reporters: Vec<Box<dyn Reporter>>,
    cancel: CancellationToken,
) -> Result<Written, InitError> {
    let Plan { shown, backup, kind, what, name, output, baseline, out_dir, globals, near, wal_archive, database } =
        plan(options)?;
    let like = options.like.as_deref().map(like::blocks).transpose()?.unwrap_or_default();
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
            work: work.clone(),
            baseline_name: baseline.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            like,
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
        let captured = work.join(&inspector.baseline_name);
        std::fs::copy(&captured, &baseline).map_err(io(format!("cannot write `{}`", baseline.display())))?;
        std::fs::write(&output, text).map_err(io(format!("cannot write `{}`", output.display())))?;
        Ok(Written {
            path: options.output.clone().unwrap_or_else(|| output.clone()),
            baseline: relative(&baseline, &std::env::current_dir().unwrap_or_default()),
            checks,
            disabled,
        })
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
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

/// Why the drill of the backup did not reach its restore's inspection, with a hint when it
/// failed as a newer major's SQL fails.
fn drill_error(record: &crate::outcome::DrillRecord, shown: &str) -> InitError {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_failing_on_newer_sql_suggests_the_next_major() {
        let syntax = "dump line 12 (TABLE public.t): 42601 syntax error at or near \"VIRTUAL\"";
        assert!(newer_major_hint(syntax, 17).unwrap().contains("--version 18"));
        assert!(newer_major_hint("dump line 3: 42883 function uuidv7() does not exist", 17).is_some());
        assert_eq!(newer_major_hint(syntax, 18), None, "no newer major is built");
        assert_eq!(newer_major_hint("dump line 9: 23505 duplicate key value", 17), None);
    }
}
