//! What `init` learns of its input before anything starts: what the backup is (from its
//! content), its name, where the scenario goes and the paths it writes relative to it, the
//! globals file beside it, the database it restores into. Input it cannot use is refused here.

use std::path::{Component, Path, PathBuf};

use super::{InitError, InitOptions};
use crate::dump::{Format, NotADump};
use crate::scenario::IMAGE_MAJORS;
use crate::source::physical;

/// What the backup is, from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dump(Format),
    Physical,
}

/// Why a backup is none pgdrill reads.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentifyError {
    /// A folder of none of the kinds pgdrill reads.
    #[error(
        "a folder that is neither a directory-format archive (no toc.dat), a pg_basebackup folder nor a pgBackRest repository"
    )]
    Folder,
    /// The file cannot be opened (or decompressed).
    #[error(transparent)]
    Open {
        #[from]
        source: crate::source::read::OpenError,
    },
    /// Its start cannot be read.
    #[error(transparent)]
    Read {
        #[from]
        source: std::io::Error,
    },
    /// It is empty.
    #[error("it is empty")]
    Empty,
    /// It is not a dump.
    #[error(transparent)]
    NotADump {
        #[from]
        source: NotADump,
    },
}

/// What `init` learnt of its input before anything starts.
pub(super) struct Plan {
    /// The backup as the user named it.
    pub(super) shown: String,
    pub(super) backup: PathBuf,
    pub(super) kind: Kind,
    pub(super) what: String,
    pub(super) name: String,
    pub(super) output: PathBuf,
    /// The baseline of the restore written beside the scenario (`<stem>.baseline.json`), which
    /// its row counts, indexes and schemas are compared with.
    pub(super) baseline: PathBuf,
    pub(super) out_dir: PathBuf,
    pub(super) globals: Option<PathBuf>,
    pub(super) near: Option<PathBuf>,
    pub(super) wal_archive: Option<PathBuf>,
    pub(super) database: String,
}

/// Checks `init`'s input (the backup, the options, where the scenario goes) and settles what
/// the drill and the scenario take: input it cannot use is refused before anything starts.
pub(super) fn plan(options: &InitOptions) -> Result<Plan, InitError> {
    let shown = options.backup.display().to_string();
    if !options.backup.exists() {
        return Err(InitError::Missing { path: shown });
    }
    let backup = absolute(&options.backup)?;
    let (kind, what) = identify(&backup).map_err(|why| InitError::NotABackup { path: shown.clone(), why })?;
    if options.wal_archive.is_some() && kind != Kind::Physical {
        return Err(InitError::WalArchiveOfDump { shown });
    }
    check_version(options.version, kind, &shown)?;
    let name = scenario_name(&backup);
    let output = options.output.clone().unwrap_or_else(|| PathBuf::from(format!("{name}.toml")));
    if output.exists() && !options.force {
        return Err(InitError::OutputExists { path: output.display().to_string() });
    }
    if output.is_dir() {
        return Err(InitError::OutputIsFolder { path: output });
    }
    let output = absolute(&output)?;
    let out_dir = output.parent().map(Path::to_owned).unwrap_or_default();
    if !out_dir.is_dir() {
        return Err(InitError::NoFolder { dir: out_dir });
    }
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| name.clone());
    let baseline = out_dir.join(format!("{stem}.baseline.json"));
    if baseline.exists() && !options.force {
        return Err(InitError::OutputExists { path: baseline.display().to_string() });
    }
    let globals = match &options.globals {
        Some(path) if !path.is_file() => {
            return Err(InitError::Missing { path: path.display().to_string() });
        }
        Some(path) => Some(absolute(path)?),
        None => globals_beside(&backup),
    };
    let near = if globals.is_none() { near_globals(&backup, &name) } else { None };
    let wal_archive = options.wal_archive.as_deref().map(absolute).transpose()?;
    let database = match kind {
        Kind::Dump(format) if format != Format::Plain => header_database(&backup)
            .filter(|d| !matches!(d.as_str(), "postgres" | "template0" | "template1") && d.len() <= 63)
            .unwrap_or_else(|| name.clone()),
        _ => name.clone(),
    };
    Ok(Plan { shown, backup, kind, what, name, output, baseline, out_dir, globals, near, wal_archive, database })
}

/// `--version`: for a pg_dump backup, a major pgdrill builds.
fn check_version(version: Option<u32>, kind: Kind, shown: &str) -> Result<(), InitError> {
    let Some(version) = version else { return Ok(()) };
    if kind == Kind::Physical {
        return Err(InitError::VersionOfPhysical { shown: shown.to_owned() });
    }
    if !IMAGE_MAJORS.contains(&version) {
        return Err(InitError::VersionNotBuilt { version, majors: crate::provision::spec::image_majors_in_words() });
    }
    Ok(())
}

/// What the backup is, from its content; why not, when it is none pgdrill reads.
fn identify(path: &Path) -> Result<(Kind, String), IdentifyError> {
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
        return Err(IdentifyError::Folder);
    }
    let mut opened = crate::source::read::open(path, false)?;
    let head = std::io::BufRead::fill_buf(&mut opened.reader)?.to_vec();
    let format = crate::dump::detect_format(&head).map_err(|e| match e {
        NotADump::Empty => IdentifyError::Empty,
        source => IdentifyError::NotADump { source },
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

/// `<name>.globals.sql` beside the backup, where `<name>` is its file name with none, one or more
/// of its extensions taken off, the longest first: `x.dump.globals.sql`, then `x.globals.sql`,
/// beside `x.dump.sql`.
fn globals_beside(backup: &Path) -> Option<PathBuf> {
    let file = backup.file_name()?.to_string_lossy().into_owned();
    let mut name = file.as_str();
    loop {
        if let Some(found) = beside(backup, name, ".globals.sql") {
            return Some(found);
        }
        name = &name[..name.rfind('.').filter(|at| *at > 0)?];
    }
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
pub(super) fn relative(path: &Path, from: &Path) -> PathBuf {
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
    fn the_globals_beside_are_named_for_the_backup_with_or_without_its_extensions() {
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("x.dump.sql");
        std::fs::write(&backup, "").unwrap();
        assert_eq!(globals_beside(&backup), None);
        std::fs::write(dir.path().join("x.globals.sql"), "").unwrap();
        assert_eq!(globals_beside(&backup), Some(dir.path().join("x.globals.sql")));
        std::fs::write(dir.path().join("x.dump.globals.sql"), "").unwrap();
        assert_eq!(globals_beside(&backup), Some(dir.path().join("x.dump.globals.sql")));
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
