//! The restore of a physical backup. Before any server starts (the verify phase): the backup is
//! read (`source::physical`), its archive checked for gaps, its data directory staged in a
//! private folder with the WAL recovery reads (`stage`), and PostgreSQL's own tools run over it
//! in a sandboxed toolbox of its major (`verify`: pg_controldata, pg_verifybackup); the system
//! it belongs to is compared across the manifest, pg_control and every archived segment. Then
//! the target starts on it (provision) once its target is known not to lie before the backup's
//! end (`preflight`), and recovers to the scenario's target (`recovery`), judged by what the
//! server's log says it reached (`reach`) and, to the archive's end, by whether it replayed into
//! the archive's last segment (`tested`).

pub(crate) mod combine;
pub(crate) mod encrypted;
pub(crate) mod feed;
pub(crate) mod preflight;
mod prepare;
mod promote;
pub(crate) mod reach;
pub(crate) mod recovery;
pub(crate) mod said;
mod set;
pub(crate) mod stage;
mod tested;
pub(crate) mod verify;

use std::path::Path;
use std::sync::Arc;

use crate::provision::toolbox;
use crate::provision::{PhysicalData, TargetError};
use crate::scenario::{ContainerSpec, LocalSpec, PodSpec, RecoverySpec};
use crate::secret::Redactor;
use crate::source::physical::timeline::TimelinePath;
use crate::source::physical::{self as backup, BackupEnd, BaseBackup, PhysicalError, WalArchive};
use crate::units::human_size;
use feed::{Feed, FeedStats, Feeder};
use stage::StageError;
use verify::ControlData;

pub(crate) use encrypted::ENCRYPTION;
pub(crate) use prepare::prepare;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PrepareError {
    #[error(transparent)]
    Backup(#[from] PhysicalError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("cannot run PostgreSQL's tools over the backup: {0}")]
    Toolbox(#[from] TargetError),
    /// pg_controldata cannot read the restored pg_control.
    #[error("pg_controldata cannot read the backup's pg_control (exit {status}): {stderr}")]
    ControlData { status: i64, stderr: String },
    /// pg_controldata's report says something wrong of pg_control.
    #[error(transparent)]
    Control(#[from] verify::ControlError),
    /// A preparation task on a blocking thread panicked or was cancelled.
    #[error("a preparation task failed")]
    Task(#[source] tokio::task::JoinError),
    /// pgBackRest could not decrypt a file of an encrypted repository.
    #[error(
        "pgBackRest cannot decrypt `{file}` of the encrypted repository (exit {status}): {said} (hint: a wrong passphrase reads as garbage: check `[source] cipher_pass_env` or `cipher_pass_file`)"
    )]
    Decrypt { file: String, status: i64, said: String },
    /// Some of the passphrases the scenario lists do not open the encrypted repository.
    #[error(
        "{} of the {total} passphrases {} not open the encrypted repository: {}{}",
        failed.len(),
        if failed.len() == 1 { "does" } else { "do" },
        failed.join("; "),
        if opened.is_empty() { String::new() } else { format!(" (it opens with {})", opened.join(", ")) }
    )]
    Passphrases { total: usize, failed: Vec<String>, opened: Vec<String> },
    /// pgBackRest could not restore the set.
    #[error("pgBackRest could not restore set {set} (exit {status}): {stderr}")]
    PgBackRest { set: String, status: i64, stderr: String },
    /// The encrypted repository's passphrase cannot be read from where the scenario says.
    #[error("the repository's passphrase")]
    CipherPass(#[source] crate::secret::SecretError),
    /// A scenario key that applies to another kind of backup.
    #[error("{0}")]
    Scenario(String),
    /// pg_verifybackup found a member of a chain unlike its manifest.
    #[error("pg_verifybackup: `{member}` of the chain does not match its manifest (exit {status}): {}", problems.join("; "))]
    Member { member: String, status: i64, problems: Vec<String> },
    /// pg_combinebackup could not combine the chain.
    #[error("pg_combinebackup could not combine the chain (exit {status}): {stderr}")]
    Combine { status: i64, stderr: String },
    /// pg_verifybackup found the backup unlike its manifest.
    #[error("pg_verifybackup: the backup does not match its manifest (exit {status}): {}", problems.join("; "))]
    Manifest { status: i64, problems: Vec<String> },
    /// The manifest, pg_control or the archive disagree on the system the backup is of.
    #[error("{0}")]
    Mismatch(String),
}

/// The target a physical backup recovers on, and so where its toolbox runs.
#[derive(Clone, Copy)]
pub(crate) enum Where<'a> {
    Container(&'a ContainerSpec),
    Local(&'a LocalSpec),
    /// The pod's: its tools run in pgdrill's container, which carries the server's binaries.
    Pod(&'a PodSpec),
}

/// Where a toolbox for a backup of a major runs (see [`Where::toolbox`]).
enum Place<'a> {
    Container(&'a ContainerSpec),
    Local(std::path::PathBuf),
    Pod(std::path::PathBuf),
}

impl Place<'_> {
    fn on(&self) -> toolbox::On<'_> {
        match self {
            Place::Container(spec) => toolbox::On::Container(spec),
            Place::Local(bin_dir) => toolbox::On::Local(bin_dir),
            Place::Pod(bin_dir) => toolbox::On::Pod(bin_dir),
        }
    }
}

impl<'a> Where<'a> {
    /// Where the toolbox for a backup of `major` runs: a container of the target's image, or
    /// this machine's binaries of that major.
    fn toolbox(self, major: u32) -> Result<Place<'a>, PrepareError> {
        Ok(match self {
            Where::Container(spec) => Place::Container(spec),
            Where::Local(spec) => Place::Local(crate::provision::local::bin_dir_for(spec, major)?),
            Where::Pod(spec) => Place::Pod(crate::provision::pod::bin_dir_for(spec, major)?),
        })
    }

    /// Whether pgdrill reads the target's server log (a container's: `recovery` reads it).
    fn log_read(&self) -> bool {
        matches!(self, Where::Container(_))
    }

    fn settings(&self) -> &std::collections::BTreeMap<String, String> {
        match self {
            Where::Container(spec) => &spec.settings,
            Where::Local(spec) => &spec.settings,
            Where::Pod(spec) => &spec.settings,
        }
    }
}

/// What preparing needs from the drill.
pub(crate) struct Request<'a> {
    pub drill_id: &'a str,
    pub backup_dir: &'a Path,
    pub wal_archive: Option<&'a Path>,
    /// Which set of a pgBackRest repository.
    pub choice: backup::pgbackrest::Choice<'a>,
    pub recovery: &'a RecoverySpec,
    /// The container target the backup recovers on (its image, limits and settings).
    pub target: Where<'a>,
    /// Plain-format backups' tablespaces: the folder of each, by OID (and a chain's by member).
    pub tablespaces: &'a crate::source::Tablespaces,
    /// An encrypted pgBackRest repository's passphrase (`[source] cipher_pass_env` or
    /// `cipher_pass_file`)...
    pub cipher_pass: Option<&'a crate::secret::SecretSource>,
    /// ...or its copies (`[source] decrypt`, read): each must open it.
    pub keys: &'a [crate::source::decrypt::Key],
    /// A folder of the drill's own, removed when it ends: the data directory is staged in it.
    pub work: &'a Path,
    pub redactor: &'a Redactor,
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
}

/// A prepared backup's archive as a follower replays it ([`Prepared::following`]).
pub(crate) struct Following {
    /// Gives the archive's segments to `pg_wal`, with their digests, and takes later ones.
    pub feeder: Feeder,
    /// The archive's folder, listed again and again.
    pub archive: std::path::PathBuf,
    pub segment_size: u64,
    /// The way replay goes along the timelines (the last, the one it follows now).
    pub path: TimelinePath,
    /// The segment recovery starts in, and the last one planned for the feed.
    pub first: u64,
    pub planned: u64,
    /// The segment the backup starts in, by name, and the system it belongs to.
    pub start_segment: String,
    pub system_id: u64,
}

/// A backup staged and verified, ready for its target.
pub(crate) struct Prepared {
    pub backup: BaseBackup,
    pub archive: Option<WalArchive>,
    /// The archive's segments still to give to recovery (taken by [`Prepared::feeder`]).
    pub feed: Option<Feed>,
    /// What was given before the server started (through the backup's end, and a window).
    pub given: FeedStats,
    pub control: ControlData,
    /// Whether pg_verifybackup checked it (a backup without a manifest cannot be).
    pub manifest_verified: bool,
    /// Whether its files' checksums were summed as they were unpacked (pg_verifybackup checked
    /// the rest without reading them again).
    pub checksums_summed: bool,
    /// How a chain's members were combined.
    pub combined: Option<combine::Combined>,
    /// An encrypted repository, whose toolbox decrypts the segments recovery is given; closed
    /// once the recovery ends ([`Prepared::close`]).
    pub repository: Option<Arc<encrypted::Repository>>,
    /// How much archived WAL `pg_wal` holds ahead of replay (`None`: all of it).
    pub window: Option<u64>,
    pub data: PhysicalData,
    /// Where and when the backup ends: no recovery target before it can be reached.
    pub end: BackupEnd,
    /// Whether its server pauses at the target for pgdrill to promote it (`promote`).
    pub pauses_at_target: bool,
    /// The toolbox's removal, started once PostgreSQL's tools were done: teardown waits for it
    /// ([`Prepared::toolbox_removal`]).
    pub toolbox_removal: Option<tokio::task::JoinHandle<Result<(), TargetError>>>,
}

impl Prepared {
    /// The preflight of its recovery (see [`preflight`]): the summary, or why the target
    /// cannot be reached.
    pub(crate) fn preflight(&self, spec: &RecoverySpec) -> Result<String, preflight::TooEarly> {
        preflight::judge(&spec.target, &self.end, self.control.oldest_active_xid)
    }

    /// Where its recovery starts, for [`recovery::wait`], with the feeder that gives the rest of
    /// the archive to the target's `pg_wal` (its data directory on this machine, `data`).
    pub(crate) fn recovery_start<'a>(
        &mut self,
        spec: &'a RecoverySpec,
        data: Option<&Path>,
    ) -> Result<recovery::Start<'a>, PrepareError> {
        let feeder = match (self.feed.take(), data) {
            (Some(feed), _) if feed.done() => None,
            (Some(feed), Some(data)) => Some(Feeder::start(feed, data.join("pg_wal")).map_err(|source| {
                StageError::Io { action: "start a thread for", path: "the WAL feed".into(), source }
            })?),
            (Some(_), None) => {
                return Err(PrepareError::Scenario(
                    "the target's data directory is not on this machine: its archived WAL cannot be given to it".into(),
                ));
            }
            (None, _) => None,
        };
        Ok(recovery::Start {
            spec,
            archive: self.archive.as_ref().map(|a| a.dir.clone()),
            start_lsn: backup::wal::parse_lsn(&self.backup.label.start_lsn).unwrap_or_default(),
            timeline: self.backup.label.timeline,
            path: self
                .archive
                .as_ref()
                .map_or_else(|| TimelinePath::only(self.backup.label.timeline), |a| a.path.clone()),
            segment_size: self.control.segment_size,
            segments_available: self.archive.as_ref().map_or(0, |a| a.segments.len()),
            archive_end: self.archive_end(),
            given_peak: self.given.peak,
            feeder,
            pauses_at_target: self.pauses_at_target,
        })
    }

    /// What a follower needs of it (`pgdrill follow`): the feed of its archive on a thread that
    /// takes the segments archived later, given to the target's `pg_wal` (its data directory on
    /// this machine, `data`), and where that archive is.
    pub(crate) fn following(&mut self, data: Option<&Path>) -> Result<Following, PrepareError> {
        let no = |why: &str| PrepareError::Scenario(why.to_owned());
        let archive =
            self.archive.as_ref().ok_or_else(|| no("a follower replays a WAL archive: give `[source] wal_archive`"))?;
        let data = data.ok_or_else(|| {
            no("the target's data directory is not on this machine: its archived WAL cannot be given to it")
        })?;
        let feed = self.feed.take().ok_or_else(|| no("the backup's archive was given whole already"))?;
        let size = self.control.segment_size.max(1);
        let start = backup::wal::parse_lsn(&self.backup.label.start_lsn).unwrap_or_default() / size;
        let planned = feed
            .planned_through()
            .and_then(|a| backup::wal::Segment::parse(&a.name, size))
            .map_or(start.saturating_sub(1), |s| s.number);
        let feeder = Feeder::follow(feed, data.join("pg_wal")).map_err(|source| StageError::Io {
            action: "start a thread for",
            path: "the WAL feed".into(),
            source,
        })?;
        Ok(Following {
            feeder,
            archive: archive.dir.clone(),
            segment_size: size,
            path: archive.path.clone(),
            first: start,
            planned,
            start_segment: self.backup.label.start_segment.clone(),
            system_id: self.control.system_id,
        })
    }

    /// The archive's last segment and the segment the backup ends in (its manifest's or set's
    /// end, else the backup history file's, else its start), for [`tested`]; none without an
    /// archived segment.
    fn archive_end(&self) -> Option<tested::ArchiveEnd> {
        let archive = self.archive.as_ref()?;
        let size = self.control.segment_size.max(1);
        let last = backup::wal::Segment::parse(&archive.segments.last()?.name, archive.segment_size)?.number;
        let start = backup::wal::parse_lsn(&self.backup.label.start_lsn).unwrap_or_default();
        let backup_end = self
            .backup
            .end_segment(size)
            .map(|s| s.number)
            .or_else(|| self.end.lsn.as_ref().map(|(lsn, _)| lsn.saturating_sub(1) / size))
            .unwrap_or(start / size);
        Some(tested::ArchiveEnd { last, backup_end, segment_size: size, path: archive.path.clone() })
    }

    /// Removes what preparing kept for the recovery (an encrypted repository's toolbox).
    pub(crate) async fn close(&mut self) {
        if let Some(repository) = self.repository.take() {
            encrypted::Repository::close(repository).await;
        }
    }

    /// The newest point a recovery of it can reach, and what says so (the RPO is judged on its
    /// age): the newest archived segment's modification time, else the backup's start.
    pub(crate) fn recoverable_until(&self) -> (Option<time::OffsetDateTime>, Option<String>) {
        let newest = self.archive.as_ref().and_then(|a| a.segments.last()).and_then(|segment| {
            let modified = std::fs::metadata(&segment.path).and_then(|m| m.modified()).ok()?;
            Some((
                time::OffsetDateTime::from(modified),
                format!("the WAL archive's newest segment {}, archived then", segment.name),
            ))
        });
        match newest {
            Some((at, from)) => (Some(at), Some(from)),
            None => {
                let start = self.backup.label.start_time;
                (start, start.map(|_| "backup_label's START TIME".to_owned()))
            }
        }
    }

    /// The verify phase's summary.
    pub(crate) fn summary(&self) -> String {
        let b = &self.backup;
        let archive = match &self.archive {
            None => "no WAL archive: recovery ends where the backup does".to_owned(),
            Some(a) if a.segments.is_empty() => "the WAL archive holds no segment from the backup's start".to_owned(),
            Some(a) => format!(
                "{} archived segment{} from its start to {} along {}, each of system {} (checked by its first page now, whole as recovery reads it); {}",
                a.segments.len(),
                if a.segments.len() == 1 { "" } else { "s" },
                a.segments.last().map(|s| s.name.as_str()).unwrap_or_default(),
                a.path.describe(),
                self.control.system_id,
                match self.window {
                    Some(window) => format!(
                        "given to recovery as it replays, {} ahead ({} through the backup's end before it starts)",
                        human_size(window),
                        human_size(self.given.bytes)
                    ),
                    None => format!(
                        "all {} given before recovery starts (`wal_window = \"all\"`)",
                        human_size(self.given.bytes)
                    ),
                }
            ),
        };
        format!(
            "{} of PostgreSQL {}{}, started {} in segment {} on timeline {}, database system {}; {}; data checksums {}; {}",
            b.format(),
            b.major,
            if b.carries_wal() { " with its own WAL" } else { "" },
            b.label
                .start_time
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_else(|| "at an unknown time".into()),
            b.label.start_segment,
            b.label.timeline,
            self.control.system_id,
            match (&b.layout, &b.manifest, self.manifest_verified) {
                (backup::Layout::Chain(chain), _, true) => format!(
                    "pg_verifybackup: each of its {} backups matches its own manifest; {}; the combined data directory and the WAL it needs match the manifest pg_combinebackup wrote",
                    chain.members.len(),
                    self.combined.map_or("pg_combinebackup", |c| c.describe())
                ),
                (backup::Layout::PgBackRest(set), _, _) => self.restored_set(set),
                (_, Some((_, m)), true) => format!(
                    "pg_verifybackup: {} files and the WAL they need match backup_manifest{}",
                    m.files,
                    if self.checksums_summed { " (their checksums summed as they were unpacked)" } else { "" }
                ),
                (_, None, _) if b.barman.as_ref().is_some_and(|barman| barman.cloud) => {
                    "barman-cloud writes no manifest: its files could not be verified (the WAL it recovers through is, segment by segment)".to_owned()
                }
                _ => "no backup_manifest: its files could not be verified (pg_basebackup --no-manifest?)".to_owned(),
            },
            if self.control.checksum_version > 0 { "on" } else { "off" },
            archive
        )
    }
}

impl Prepared {
    /// What pgBackRest restored of `set`, in the verify summary's words.
    fn restored_set(&self, set: &backup::pgbackrest::Set) -> String {
        let mut said = format!("pgBackRest restored its {} files", set.files);
        if !set.tablespaces.is_empty() {
            let each: Vec<String> = set.tablespaces.iter().map(|oid| format!("{oid} into pg_tblspc/{oid}")).collect();
            let s = if each.len() == 1 { "" } else { "s" };
            said.push_str(&format!(" (tablespace{s} {})", each.join(", ")));
        }
        said.push_str(", each checked against the set's manifest");
        if let Some(repository) = &self.repository {
            let keys = repository.keys().len();
            let proven =
                if keys == 1 { "its passphrase".to_owned() } else { format!("each of its {keys} passphrases") };
            said.push_str(&format!("; the repository is encrypted (aes-256-cbc), opened by {proven}"));
        }
        said
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PrepareError> + Send + 'static,
) -> Result<T, PrepareError> {
    tokio::task::spawn_blocking(work).await.map_err(PrepareError::Task)?
}

#[cfg(test)]
mod tests;
