//! Physical backups: a `pg_basebackup` in tar format (`base.tar[.gz|.lz4|.zst]`, `pg_wal.tar...`,
//! `backup_manifest` beside them) or plain format (the data directory itself) with a folder of
//! archived WAL segments recovery reads past the backup's end, or a set of a pgBackRest
//! repository with the repository's archive. What they are is read from their content before
//! anything starts: `PG_VERSION`, `backup_label` and the manifest of the backup (pgBackRest's
//! `backup.info` and the set's manifest), the names and first page of the archive's segments.
//! Unpacking them and running PostgreSQL's own tools over them is the restore's
//! (`restore::physical`).

mod archive;
pub(crate) mod barman;
pub(crate) mod chain;
pub(crate) mod history;
pub(crate) mod label;
pub(crate) mod manifest;
pub(crate) mod pgbackrest;
pub(crate) mod timeline;
pub(crate) mod wal;

use std::io::Read;
use std::path::{Path, PathBuf};

pub(crate) use archive::{WalArchive, archive};
pub(crate) use label::BackupLabel;
pub(crate) use manifest::Manifest;
use wal::Segment;

/// How a base backup lies on disk.
#[derive(Debug, Clone)]
pub(crate) enum Layout {
    /// `pg_basebackup -F t`: the data directory as `base.tar` (plain, gzip, lz4 or zstd), with
    /// `-X stream` its WAL as `pg_wal.tar`, and each tablespace as `<oid>.tar`.
    Tar { base: PathBuf, wal: Option<PathBuf>, tablespaces: Vec<(u32, PathBuf)> },
    /// `pg_basebackup -F p`: the data directory itself.
    Plain,
    /// A set of a pgBackRest repository (the folder), restored by pgBackRest.
    PgBackRest(Box<pgbackrest::Set>),
    /// A chain of PostgreSQL 17's incremental backups (the folder holds them), combined by
    /// `pg_combinebackup`.
    Chain(Box<chain::Chain>),
}

/// A base backup, and what its own files say about it.
#[derive(Debug, Clone)]
pub(crate) struct BaseBackup {
    /// The folder holding it.
    pub dir: PathBuf,
    pub layout: Layout,
    /// The PostgreSQL major that wrote it (`PG_VERSION`).
    pub major: u32,
    pub label: BackupLabel,
    /// `backup_manifest`, when the backup has one (pg_basebackup 13 and later write it unless
    /// told not to).
    pub manifest: Option<(PathBuf, Manifest)>,
    /// A backup of a Barman server (its data is a pg_basebackup's, its WAL in the server's
    /// `wals`).
    pub barman: Option<Box<barman::BarmanBackup>>,
}

impl BaseBackup {
    /// A name for its format in the reports.
    pub(crate) fn format(&self) -> String {
        if let Some(barman) = &self.barman {
            return barman.describe(&self.layout);
        }
        match &self.layout {
            Layout::Tar { base, .. } => {
                format!("base backup (tar, `{}`)", base.file_name().unwrap_or_default().to_string_lossy())
            }
            Layout::Plain => "base backup (plain)".into(),
            Layout::PgBackRest(set) => format!(
                "pgBackRest set {} ({}, stanza `{}`, {} files)",
                set.label,
                if set.kind.is_empty() { "?" } else { &set.kind },
                set.stanza,
                set.files
            ),
            Layout::Chain(chain) => format!("chain of {} backups: {}", chain.members.len(), chain.describe()),
        }
    }

    /// How its data is compressed, in the reports' words.
    pub(crate) fn compression(&self) -> &'static str {
        match &self.layout {
            Layout::Tar { base, .. } => match base.extension().and_then(|e| e.to_str()) {
                Some("gz") => "gzip",
                Some("lz4") => "lz4",
                Some("zst") => "zstd",
                _ => "none",
            },
            Layout::Plain => "none",
            Layout::PgBackRest(_) => "pgBackRest's",
            Layout::Chain(chain) => chain.last().compression(),
        }
    }

    /// The last segment the backup needs to be consistent, when its manifest says.
    pub(crate) fn end_segment(&self, segment_size: u64) -> Option<Segment> {
        if let Layout::PgBackRest(set) = &self.layout {
            return Segment::parse(&set.archive_stop, segment_size);
        }
        let (timeline, _, end) = self.manifest.as_ref()?.1.wal_range?;
        // The end LSN points just past the last record: the segment holding the byte before it.
        Some(Segment::of_lsn(timeline, end.saturating_sub(1), segment_size))
    }

    /// Where and when it ends (see [`BackupEnd`]): the set's own record for pgBackRest; for
    /// pg_basebackup, the manifest's WAL range and the backup history file the source archived
    /// beside the segments (`<start segment>.<offset>.backup`), when the archive holds it.
    pub(crate) fn end(&self, archive: Option<&WalArchive>, segment_size: u64) -> BackupEnd {
        let mut end = BackupEnd { started: self.label.start_time, ..BackupEnd::default() };
        if let Layout::PgBackRest(set) = &self.layout {
            end.lsn = wal::parse_lsn(&set.lsn_stop).map(|l| (l, "its backup-lsn-stop".to_owned()));
            end.time = set.stopped.map(|t| (t, "its backup-timestamp-stop".to_owned()));
            end.set = Some((set.label.clone(), set.sets, set.oldest));
            return end;
        }
        if let Some((path, manifest)) = &self.manifest
            && let Some((_, _, lsn)) = manifest.wal_range
        {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            end.lsn = Some((lsn, format!("`{name}`'s WAL-Ranges")));
        }
        let start_lsn = wal::parse_lsn(&self.label.start_lsn).unwrap_or_default();
        let name = history::backup_history_name(&self.label.start_segment, start_lsn, segment_size);
        if let Some(archive) = archive
            && let Ok(text) = std::fs::read_to_string(archive.dir.join(&name))
        {
            let read = history::parse_backup_history(&text);
            let from = format!("STOP TIME in the WAL archive's backup history file {name}");
            end.time = read.stop_time.map(|t| (t, from));
            if end.lsn.is_none() {
                end.lsn = read.stop_lsn.map(|l| (l, format!("STOP WAL LOCATION in {name}")));
            }
            if end.time.is_none() {
                end.unread_time = read.stop_time_text;
            }
        }
        end
    }

    /// Where recovery of it is first consistent, and what says so: its end where the manifest
    /// or the set says, else where it started (PostgreSQL judges the rest).
    pub(crate) fn consistent(&self) -> (u64, String) {
        if let Layout::PgBackRest(set) = &self.layout
            && let Some(lsn) = wal::parse_lsn(&set.lsn_stop)
        {
            return (lsn, format!("set {}'s backup-lsn-stop", set.label));
        }
        if let Some((_, manifest)) = &self.manifest
            && let Some((_, _, end)) = manifest.wal_range
        {
            return (end, "the manifest's WAL-Ranges".into());
        }
        (wal::parse_lsn(&self.label.start_lsn).unwrap_or_default(), "backup_label's START WAL LOCATION".into())
    }

    /// Whether it carries the WAL it needs itself (`-X stream` or `-X fetch`).
    pub(crate) fn carries_wal(&self) -> bool {
        match &self.layout {
            Layout::Tar { wal, .. } => wal.is_some(),
            Layout::Plain => self.dir.join("pg_wal").read_dir().is_ok_and(|mut d| d.next().is_some()),
            Layout::PgBackRest(_) => false,
            Layout::Chain(chain) => chain.last().carries_wal(),
        }
    }
}

/// Where and when a base backup ends: recovery reaches a consistent database there and no
/// earlier, so a recovery target before it cannot be reached. Each with what says so.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BackupEnd {
    pub lsn: Option<(u64, String)>,
    pub time: Option<(time::OffsetDateTime, String)>,
    /// The end time as written, when its zone cannot be read (an abbreviation other than UTC).
    pub unread_time: Option<String>,
    /// `backup_label`'s START TIME: the end is later.
    pub started: Option<time::OffsetDateTime>,
    /// A pgBackRest set: its label, how many sets its stanza holds, whether it is the oldest.
    pub set: Option<(String, usize, bool)>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PhysicalError {
    /// A file of the backup or the archive cannot be read.
    #[error("cannot read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A compressed (or encrypted) file of the backup cannot be opened.
    #[error("cannot read `{path}`")]
    Open {
        path: String,
        #[source]
        source: crate::source::read::OpenError,
    },
    /// `backup_label` (or what stands for it) does not read as PostgreSQL writes it.
    #[error("`{path}`")]
    Label {
        path: String,
        #[source]
        source: label::LabelError,
    },
    /// `backup_manifest` cannot be read.
    #[error("`{path}`")]
    Manifest {
        path: String,
        #[source]
        source: manifest::ManifestError,
    },
    /// A pgBackRest set's manifest names a path pgBackRest would restore where it must not.
    #[error("`{path}`")]
    Targets {
        path: String,
        #[source]
        source: pgbackrest::TargetsError,
    },
    /// The folder lacks a file every base backup has.
    #[error("`{path}` holds no {what}: it is not a base backup made by pg_basebackup")]
    Missing { path: String, what: &'static str },
    /// A file of the backup says something pgdrill cannot read.
    #[error("`{path}`: {message}")]
    Malformed { path: String, message: String },
    /// The archive misses a segment recovery must read.
    #[error(
        "the WAL archive `{archive}` has no segment {missing}{after}: recovery from the backup's start ({start}) cannot pass it"
    )]
    Gap { archive: String, missing: String, after: String, start: String },
    /// A folder of incremental backups that is not a chain that recovers.
    #[error(transparent)]
    Chain(Box<chain::ChainError>),
    /// The archive's timeline histories cannot take the backup where the scenario asks.
    #[error(transparent)]
    Timeline(#[from] timeline::TimelineError),
    /// The archive ends before a target given as an LSN.
    #[error(
        "the WAL archive `{archive}` ends with segment {last}, before recovery_target_lsn {lsn} (in segment {needed}): the target cannot be reached"
    )]
    ShortOfTarget { archive: String, last: String, lsn: String, needed: String },
}

/// Whether `dir` holds a physical backup: a pg_basebackup folder or a pgBackRest repository.
pub(crate) fn detect(dir: &Path) -> bool {
    dir.is_dir()
        && (tar_files(dir).is_some()
            || is_plain(dir)
            || pgbackrest::is_repository(dir)
            || chain::is_chain(dir)
            || barman::is_server(dir))
}

/// The suffixes of pg_basebackup's tar files: none, or its compressions (`-Z gzip|lz4|zstd`).
pub(crate) const TAR_SUFFIXES: [&str; 4] = ["", ".gz", ".lz4", ".zst"];

fn tar_files(dir: &Path) -> Option<Layout> {
    let find = |stem: &str| TAR_SUFFIXES.iter().map(|ext| dir.join(format!("{stem}{ext}"))).find(|p| p.is_file());
    let base = find("base.tar")?;
    let mut tablespaces: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = TAR_SUFFIXES.iter().find_map(|s| name.strip_suffix(&format!(".tar{s}")))?;
            let oid = stem.parse().ok().filter(|_| stem.bytes().all(|b| b.is_ascii_digit()))?;
            Some((oid, e.path()))
        })
        .collect();
    tablespaces.sort();
    Some(Layout::Tar { base, wal: find("pg_wal.tar"), tablespaces })
}

/// Whether the names directly under a folder (of S3, say) are a pg_basebackup's.
pub(crate) fn is_base_backup_listing(names: &[String]) -> bool {
    let has = |name: &str| names.iter().any(|n| n == name);
    TAR_SUFFIXES.iter().any(|s| has(&format!("base.tar{s}"))) || (has("PG_VERSION") && has("backup_label"))
}

fn is_plain(dir: &Path) -> bool {
    dir.join("PG_VERSION").is_file() && dir.join("backup_label").is_file()
}

/// Reads what the backup in `dir` is: its layout, major version, label and manifest (for a
/// pgBackRest repository, of the set `choice` names).
pub(crate) fn inspect(dir: &Path, choice: &pgbackrest::Choice) -> Result<BaseBackup, PhysicalError> {
    if pgbackrest::is_repository(dir) {
        return inspect_repository(dir, dir, choice);
    }
    if barman::is_server(dir) {
        return inspect_barman(dir, choice);
    }
    if chain::is_chain(dir) {
        let chain = chain::read(dir, choice.set)?;
        let last = chain.last().clone();
        return Ok(BaseBackup { dir: dir.to_owned(), layout: Layout::Chain(Box::new(chain)), ..last });
    }
    let layout = match tar_files(dir) {
        Some(layout) => layout,
        None if is_plain(dir) => Layout::Plain,
        None => return Err(PhysicalError::Missing { path: dir.display().to_string(), what: "base.tar" }),
    };
    let (version, label, shown) = match &layout {
        Layout::Tar { base, .. } => {
            let (version, label) = read_from_tar(base)?;
            (version, label, base.display().to_string())
        }
        _ => {
            let read = |name: &str| {
                std::fs::read_to_string(dir.join(name))
                    .map_err(|source| PhysicalError::Read { path: dir.join(name).display().to_string(), source })
            };
            (Some(read("PG_VERSION")?), Some(read("backup_label")?), dir.display().to_string())
        }
    };
    let version = version.ok_or_else(|| PhysicalError::Missing { path: shown.clone(), what: "PG_VERSION" })?;
    let major = crate::pg::major_of_version_text(&version).ok_or_else(|| PhysicalError::Malformed {
        path: shown.clone(),
        message: format!("PG_VERSION reads `{}`", version.trim()),
    })?;
    let label = label.ok_or_else(|| PhysicalError::Missing { path: shown.clone(), what: "backup_label" })?;
    let label = label::parse(&label).map_err(|source| PhysicalError::Label { path: shown, source })?;
    let manifest_path = dir.join("backup_manifest");
    let manifest = match manifest_path.is_file() {
        true => {
            let read = manifest::read(&manifest_path)
                .map_err(|source| PhysicalError::Manifest { path: manifest_path.display().to_string(), source })?;
            Some((manifest_path, read))
        }
        false => None,
    };
    Ok(BaseBackup { dir: dir.to_owned(), layout, major, label, manifest, barman: None })
}

/// The set `choice` names of the pgBackRest repository in `dir`, whose `backup.info`,
/// `archive.info` and manifests are read from `texts` (the repository itself, or the decrypted
/// copies of an encrypted one's).
pub(crate) fn inspect_repository(
    dir: &Path,
    texts: &Path,
    choice: &pgbackrest::Choice,
) -> Result<BaseBackup, PhysicalError> {
    let set = pgbackrest::read(texts, choice)?;
    let label = set.label().map_err(|source| PhysicalError::Label { path: dir.display().to_string(), source })?;
    Ok(BaseBackup {
        dir: dir.to_owned(),
        major: set.major,
        label,
        layout: Layout::PgBackRest(Box::new(set)),
        manifest: None,
        barman: None,
    })
}

/// The backup of the Barman server in `dir` that `choice` names: Barman's data folder is a
/// pg_basebackup's; barman-cloud's tar has no manifest.
fn inspect_barman(dir: &Path, choice: &pgbackrest::Choice) -> Result<BaseBackup, PhysicalError> {
    let chosen = barman::read(dir, &barman::Choice { id: choice.set, before: choice.before })?;
    let mut backup = match chosen.cloud {
        false => inspect(&chosen.data, &pgbackrest::Choice::default())?,
        true => {
            let layout = barman::cloud_layout(&chosen);
            let shown = chosen.data.display().to_string();
            let (version, label) = read_from_tar(&chosen.data)?;
            let version = version.ok_or_else(|| PhysicalError::Missing { path: shown.clone(), what: "PG_VERSION" })?;
            let major = crate::pg::major_of_version_text(&version).ok_or_else(|| PhysicalError::Malformed {
                path: shown.clone(),
                message: format!("PG_VERSION reads `{}`", version.trim()),
            })?;
            let label = label.ok_or_else(|| PhysicalError::Missing { path: shown.clone(), what: "backup_label" })?;
            let label = label::parse(&label).map_err(|source| PhysicalError::Label { path: shown, source })?;
            let dir = chosen.data.parent().map(Path::to_owned).unwrap_or_default();
            BaseBackup { dir, layout, major, label, manifest: None, barman: None }
        }
    };
    backup.barman = Some(Box::new(chosen));
    Ok(backup)
}

/// `PG_VERSION` and `backup_label` from a base.tar: both come first, so this reads little.
fn read_from_tar(base: &Path) -> Result<(Option<String>, Option<String>), PhysicalError> {
    let path = base.display().to_string();
    let read_err = |source: std::io::Error| PhysicalError::Read { path: path.clone(), source };
    let opened = super::read::open(base, false).map_err(|source| PhysicalError::Open { path: path.clone(), source })?;
    let mut archive = tar::Archive::new(opened.reader);
    let (mut version, mut label) = (None, None);
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let name = entry.path().map_err(read_err)?.to_string_lossy().trim_start_matches("./").to_owned();
        if name == "PG_VERSION" || name == "backup_label" {
            let mut text = String::new();
            // Both are a few lines; a huge one is not PostgreSQL's.
            (&mut entry).take(64 * 1024).read_to_string(&mut text).map_err(read_err)?;
            if name == "PG_VERSION" { version = Some(text) } else { label = Some(text) }
        }
        if version.is_some() && label.is_some() {
            break;
        }
    }
    Ok((version, label))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const MB16: u64 = 16 << 20;

    /// A base backup that started at 0/2000028 on timeline 1, laid out as `layout`, with a
    /// manifest whose WAL range ends at `manifest_end` when it has one.
    fn backup(layout: Layout, manifest_end: Option<u64>) -> BaseBackup {
        let label = BackupLabel {
            start_lsn: "0/2000028".into(),
            start_segment: "000000010000000000000002".into(),
            timeline: 1,
            start_time: None,
            label: "pg_basebackup base backup".into(),
            incremental_from: None,
        };
        let manifest = manifest_end.map(|end| {
            let read = Manifest { version: 2, system_id: Some(7), wal_range: Some((1, 0x200_0028, end)), files: 2 };
            (PathBuf::from("/b/backup_manifest"), read)
        });
        BaseBackup { dir: PathBuf::from("/b"), layout, major: 17, label, manifest, barman: None }
    }

    fn tar(base: &str) -> Layout {
        Layout::Tar { base: PathBuf::from("/b").join(base), wal: None, tablespaces: Vec::new() }
    }

    #[rstest]
    #[case::tar(&["base.tar", "pg_wal.tar", "backup_manifest"], true)]
    #[case::compressed_tar(&["base.tar.zst", "backup_manifest"], true)]
    #[case::plain(&["PG_VERSION", "backup_label", "base", "global"], true)]
    #[case::plain_without_its_label(&["PG_VERSION", "base", "global"], false)]
    #[case::a_compression_pg_basebackup_does_not_write(&["base.tar.bz2"], false)]
    #[case::a_dump(&["plur-2026-05-25.sql.gz"], false)]
    #[case::nothing(&[], false)]
    fn a_listing_is_a_base_backups_by_the_names_in_it(#[case] names: &[&str], #[case] expected: bool) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        assert_eq!(is_base_backup_listing(&names), expected, "{names:?}");
    }

    #[rstest]
    #[case::plain_tar(tar("base.tar"), "none")]
    #[case::gzip(tar("base.tar.gz"), "gzip")]
    #[case::lz4(tar("base.tar.lz4"), "lz4")]
    #[case::zstd(tar("base.tar.zst"), "zstd")]
    #[case::plain_format(Layout::Plain, "none")]
    fn its_compression_is_its_base_tars(#[case] layout: Layout, #[case] expected: &str) {
        assert_eq!(backup(layout, None).compression(), expected);
    }

    #[rstest]
    // The manifest's WAL range says where the backup is consistent...
    #[case::by_its_manifest(Some(0x200_0158), (0x200_0158, "the manifest's WAL-Ranges"))]
    // ...and without one, recovery starts where backup_label says (PostgreSQL judges the rest).
    #[case::by_its_label(None, (0x200_0028, "backup_label's START WAL LOCATION"))]
    fn where_recovery_is_first_consistent(#[case] manifest_end: Option<u64>, #[case] expected: (u64, &str)) {
        let (lsn, from) = backup(Layout::Plain, manifest_end).consistent();
        assert_eq!((lsn, from.as_str()), expected);
    }

    #[rstest]
    // The end LSN points just past the last record: the segment holds the byte before it.
    #[case::inside_a_segment(Some(0x200_0158), Some("000000010000000000000002"))]
    #[case::at_a_segments_start(Some(0x300_0000), Some("000000010000000000000002"))]
    #[case::just_past_a_segments_start(Some(0x300_0001), Some("000000010000000000000003"))]
    #[case::no_manifest(None, None)]
    fn the_last_segment_it_needs(#[case] manifest_end: Option<u64>, #[case] expected: Option<&str>) {
        let end = backup(Layout::Plain, manifest_end).end_segment(MB16);
        assert_eq!(end.map(|s| s.name(MB16)).as_deref(), expected);
    }
}
