//! The restore of a physical backup. Before any server starts (the verify phase): the backup is
//! read (`source::physical`), its archive checked for gaps, its data directory staged in a
//! private folder with the WAL recovery reads (`stage`), and PostgreSQL's own tools run over it
//! in a sandboxed toolbox of its major (`verify`: pg_controldata, pg_verifybackup); the system
//! it belongs to is compared across the manifest, pg_control and every archived segment. Then
//! the target starts on it (provision) once its target is known not to lie before the backup's
//! end (`preflight`), and recovers to the scenario's target (`recovery`), judged by what the
//! server's log says it reached (`reach`).

pub(crate) mod combine;
pub(crate) mod feed;
pub(crate) mod preflight;
pub(crate) mod reach;
pub(crate) mod recovery;
pub(crate) mod stage;
pub(crate) mod verify;

use std::path::Path;

use crate::provision::toolbox::{self, Toolbox};
use crate::provision::{PhysicalData, TargetError};
use crate::scenario::{ContainerSpec, LocalSpec, RecoverySpec, RecoveryTarget};
use crate::secret::Redactor;
use crate::source::physical::timeline::TimelinePath;
use crate::source::physical::{self as backup, BackupEnd, BaseBackup, PhysicalError, WalArchive};
use crate::units::human_size;
use feed::{Feed, FeedStats, Feeder};
use stage::{StageError, Staged};
use verify::ControlData;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PrepareError {
    #[error(transparent)]
    Backup(#[from] PhysicalError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("cannot run PostgreSQL's tools over the backup: {0}")]
    Toolbox(#[from] TargetError),
    /// pg_controldata cannot read the restored pg_control.
    #[error("{0}")]
    Control(String),
    /// pgBackRest could not restore the set.
    #[error("pgBackRest could not restore set {set} (exit {status}): {stderr}")]
    PgBackRest { set: String, status: i64, stderr: String },
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
}

/// Where a toolbox for a backup of a major runs (see [`Where::toolbox`]).
enum Place<'a> {
    Container(&'a ContainerSpec),
    Local(std::path::PathBuf),
}

impl Place<'_> {
    fn on(&self) -> toolbox::On<'_> {
        match self {
            Place::Container(spec) => toolbox::On::Container(spec),
            Place::Local(bin_dir) => toolbox::On::Local(bin_dir),
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
        })
    }

    fn settings(&self) -> &std::collections::BTreeMap<String, String> {
        match self {
            Where::Container(spec) => &spec.settings,
            Where::Local(spec) => &spec.settings,
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
    /// A plain-format backup's tablespaces: the folder of each, by OID.
    pub tablespaces: &'a std::collections::BTreeMap<u32, std::path::PathBuf>,
    /// A folder of the drill's own, removed when it ends: the data directory is staged in it.
    pub work: &'a Path,
    pub redactor: &'a Redactor,
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
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
    /// How a chain's members were combined.
    pub combined: Option<combine::Combined>,
    /// How much archived WAL `pg_wal` holds ahead of replay (`None`: all of it).
    pub window: Option<u64>,
    pub data: PhysicalData,
    /// Where and when the backup ends: no recovery target before it can be reached.
    pub end: BackupEnd,
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
            last_segment: self.archive.as_ref().and_then(|a| {
                let last = a.segments.last()?;
                backup::wal::Segment::parse(&last.name, a.segment_size).map(|s| s.number)
            }),
            feeder,
        })
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
                (backup::Layout::PgBackRest(set), _, _) =>
                    format!("pgBackRest restored its {} files, each checked against the set's manifest", set.files),
                (_, Some((_, m)), true) =>
                    format!("pg_verifybackup: {} files and the WAL they need match backup_manifest", m.files),
                _ => "no backup_manifest: its files could not be verified (pg_basebackup --no-manifest?)".to_owned(),
            },
            if self.control.checksum_version > 0 { "on" } else { "off" },
            archive
        )
    }
}

/// Reads, stages and verifies the base backup in `request.backup_dir` (see the module's
/// documentation).
pub(crate) async fn prepare(request: Request<'_>) -> Result<Prepared, PrepareError> {
    let (dir, archive_dir) = (request.backup_dir.to_owned(), request.wal_archive.map(Path::to_owned));
    let target_lsn = match request.recovery.target {
        RecoveryTarget::Lsn(lsn) => Some(lsn),
        _ => None,
    };
    let backup = backup::inspect(&dir, &request.choice)?;
    let repository = matches!(backup.layout, backup::Layout::PgBackRest(_));
    keys_fit(&backup, &request)?;
    let archive = {
        let backup = backup.clone();
        let timeline = request.recovery.timeline;
        blocking(move || Ok(backup::archive(archive_dir.as_deref(), &backup, target_lsn, timeline)?)).await?
    };

    let data = data_folder(request.work)?;
    // The toolbox starts while a base backup (or a chain's members) is unpacked; a pgBackRest set
    // is restored in it, a chain combined.
    let chain = matches!(backup.layout, backup::Layout::Chain(_));
    (request.progress)(match &backup.layout {
        backup::Layout::PgBackRest(_) => "restoring the set with pgBackRest",
        backup::Layout::Chain(_) => "unpacking the chain, pg_verifybackup of each backup, pg_combinebackup",
        _ => "unpacking the base backup",
    });
    let place = request.target.toolbox(backup.major)?;
    let tools = Toolbox::start(toolbox::Request {
        drill_id: request.drill_id,
        on: place.on(),
        major: Some(backup.major),
        data: &data,
        backup: (repository || chain).then_some(dir.as_path()),
        work: chain.then_some(request.work),
        progress: request.progress,
    });
    let staging = {
        let (backup, data, work) = (backup.clone(), data.clone(), request.work.to_owned());
        let tablespaces = request.tablespaces.clone();
        blocking(move || match &backup.layout {
            backup::Layout::PgBackRest(_) => Ok(None),
            backup::Layout::Chain(chain) => combine::unpack(chain, &work).map(|()| None).map_err(PrepareError::from),
            _ => stage::stage(&backup, &data, &tablespaces).map(Some).map_err(PrepareError::from),
        })
    };
    let (tools, staged) = tokio::join!(tools, staging);
    let tools = tools?;
    let mut combined = None;
    let checked = async {
        let staged = match staged? {
            Some(staged) => staged,
            None => {
                match &backup.layout {
                    backup::Layout::PgBackRest(set) => restore_set(&tools, set, &data, request.redactor).await?,
                    backup::Layout::Chain(chain) => {
                        let how = combine::combine(&tools, chain, request.work, backup.major, request.redactor).await?;
                        combined = Some(how);
                    }
                    _ => {}
                }
                let (backup, data) = (backup.clone(), data.clone());
                blocking(move || Ok(stage::stage(&backup, &data, &Default::default())?)).await?
            }
        };
        let owner = tools.user;
        let owned = data.clone();
        blocking(move || stage::give(&owned, owner).map_err(PrepareError::from)).await?;
        (request.progress)("pg_controldata, pg_verifybackup");
        let control = control_data(&tools, request.redactor).await?;
        judge_systems(&backup, archive.as_ref(), &staged, &control)?;
        let end = backup.end_segment(control.segment_size).map(|s| s.number);
        let feed = match &archive {
            Some(archive) => Some(first_feed(archive, &data, staged.system_id, end, &request, tools.user).await?),
            None => None,
        };
        let manifest_verified = match &backup.manifest {
            Some(_) => {
                verify_backup(&tools, request.redactor).await?;
                true
            }
            None => false,
        };
        let settled = data.clone();
        blocking(move || Ok(stage::settle(&settled)?)).await?;
        Ok::<_, PrepareError>((staged, control, manifest_verified, feed))
    }
    .await;
    // The toolbox goes whatever was found; teardown's sweep is the backstop.
    let _ = tools.remove().await;
    let (_, control, manifest_verified, feed) = checked?;
    let given = feed.as_ref().map(Feed::stats).unwrap_or_default();
    let timeline = archive.as_ref().map_or(backup.label.timeline, |a| a.path.target);
    let settings = recovery::settings(request.recovery, &control, request.target.settings(), timeline);
    let data = PhysicalData { major: backup.major, data, settings };
    let end = backup.end(archive.as_ref(), control.segment_size);
    let window = request.recovery.wal_window;
    Ok(Prepared { backup, archive, feed, given, control, manifest_verified, combined, window, data, end })
}

/// The scenario's `[source]` keys must be this kind of backup's.
fn keys_fit(backup: &BaseBackup, request: &Request<'_>) -> Result<(), PrepareError> {
    let repository = matches!(backup.layout, backup::Layout::PgBackRest(_));
    if repository && matches!(request.target, Where::Local(_)) {
        return Err(PrepareError::Scenario(
            "a pgBackRest repository recovers on a container target: pgBackRest restores it in a toolbox of the target's image (remove `[target] kind = \"local\"`)".into(),
        ));
    }
    if backup.barman.is_some() && request.wal_archive.is_some() {
        return Err(PrepareError::Scenario(
            "a Barman server carries its own WAL archive (`wals`): remove `[source] wal_archive`".into(),
        ));
    }
    if repository && request.wal_archive.is_some() {
        return Err(PrepareError::Scenario(
            "a pgBackRest repository carries its own WAL archive: remove `[source] wal_archive`".into(),
        ));
    }
    let chosen = matches!(backup.layout, backup::Layout::Chain(_)) || backup.barman.is_some();
    if !repository && (request.choice.stanza.is_some() || (request.choice.set.is_some() && !chosen)) {
        return Err(PrepareError::Scenario(format!(
            "`{}` is not a pgBackRest repository: `[source] stanza` and `set` name a pgBackRest repository's (and `set` a chain's backup or a Barman server's)",
            request.backup_dir.display()
        )));
    }
    Ok(())
}

/// The drill's work folder, and the empty data directory (0700) in it that the backup is
/// staged into.
fn data_folder(work: &Path) -> Result<std::path::PathBuf, PrepareError> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| StageError::Io { action: "create", path, source }
    };
    std::fs::create_dir_all(work).map_err(io(work))?;
    let data = work.join("data");
    std::fs::DirBuilder::new().mode(0o700).create(&data).map_err(io(&data))?;
    Ok(data)
}

/// Every archived segment's first page now; the timelines' history files and the segments
/// through the backup's end (`end`) into pg_wal, where pg_verifybackup reads the WAL the backup
/// needs and the server becomes consistent; the feed of the rest.
async fn first_feed(
    archive: &WalArchive,
    data: &Path,
    system_id: u64,
    end: Option<u64>,
    request: &Request<'_>,
    owner: (u32, u32),
) -> Result<Feed, PrepareError> {
    let (archive, pg_wal, window) = (archive.clone(), data.join("pg_wal"), request.recovery.wal_window);
    blocking(move || {
        feed::check_headers(&archive, system_id)?;
        feed::give_histories(&archive, &pg_wal, Some(owner))?;
        let mut feed = Feed::new(&archive, system_id, window, Some(owner));
        feed.fill(&pg_wal, None, end)?;
        Ok(feed)
    })
    .await
}

/// pgBackRest restores `set` into the (empty) data directory, in the toolbox: no configuration
/// file (the image's is not the repository's), the repository read-only, `--type=none` (no
/// recovery settings: pgdrill writes its own), locks in the toolbox's `/tmp`. It checks every
/// file it restores against the set's manifest.
async fn restore_set(
    tools: &Toolbox,
    set: &backup::pgbackrest::Set,
    data: &Path,
    redactor: &Redactor,
) -> Result<(), PrepareError> {
    let owner = tools.user;
    let owned = data.to_owned();
    blocking(move || stage::give(&owned, owner).map_err(PrepareError::from)).await?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let args: Vec<String> = [
        "--no-config".to_owned(),
        format!("--stanza={}", set.stanza),
        format!("--repo1-path={}", toolbox::BACKUP),
        format!("--pg1-path={}", toolbox::DATA),
        "--log-level-file=off".to_owned(),
        "--log-level-console=warn".to_owned(),
        "--lock-path=/tmp/pgbackrest".to_owned(),
        format!("--process-max={jobs}"),
        "restore".to_owned(),
        format!("--set={}", set.label),
        "--type=none".to_owned(),
    ]
    .to_vec();
    let (output, stdout) = tools.run("pgbackrest", &args, redactor).await?;
    match output.success() {
        true => Ok(()),
        false => Err(PrepareError::PgBackRest {
            set: set.label.clone(),
            status: output.status,
            stderr: format!("{}{}", stdout.trim(), output.stderr.trim()),
        }),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PrepareError> + Send + 'static,
) -> Result<T, PrepareError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PrepareError::Control(format!("a preparation task failed: {e}")))?
}

async fn control_data(tools: &Toolbox, redactor: &Redactor) -> Result<ControlData, PrepareError> {
    let (output, stdout) = tools.run("pg_controldata", &[toolbox::DATA.to_owned()], redactor).await?;
    if !output.success() {
        return Err(PrepareError::Control(format!(
            "pg_controldata cannot read the backup's pg_control (exit {}): {}",
            output.status,
            output.stderr.trim()
        )));
    }
    verify::parse_control(&stdout).map_err(PrepareError::Control)
}

async fn verify_backup(tools: &Toolbox, redactor: &Redactor) -> Result<(), PrepareError> {
    let args = ["--quiet".to_owned(), toolbox::DATA.to_owned()];
    let (output, _) = tools.run("pg_verifybackup", &args, redactor).await?;
    match output.success() {
        true => Ok(()),
        false => Err(PrepareError::Manifest {
            status: output.status,
            problems: verify::verifybackup_problems(&output.stderr),
        }),
    }
}

/// The manifest (version 2), pg_control and the archive's segments must all be of one system,
/// with one segment size.
fn judge_systems(
    backup: &BaseBackup,
    archive: Option<&WalArchive>,
    staged: &Staged,
    control: &ControlData,
) -> Result<(), PrepareError> {
    if let Some((path, manifest)) = &backup.manifest
        && let Some(system) = manifest.system_id
        && system != control.system_id
    {
        return Err(PrepareError::Mismatch(format!(
            "`{}` is of database system {system}, and the backup's pg_control of {}: the manifest belongs to another backup",
            path.display(),
            control.system_id
        )));
    }
    if let Some(barman) = &backup.barman
        && let Some(system) = barman.system_id
        && system != control.system_id
    {
        return Err(PrepareError::Mismatch(format!(
            "Barman's backup.info of backup {} says database system {system}, and its pg_control {}",
            barman.id, control.system_id
        )));
    }
    if let backup::Layout::PgBackRest(set) = &backup.layout
        && set.system_id != control.system_id
    {
        return Err(PrepareError::Mismatch(format!(
            "pgBackRest set {} says database system {}, and the pg_control it restored {}",
            set.label, set.system_id, control.system_id
        )));
    }
    if staged.system_id != control.system_id {
        return Err(PrepareError::Mismatch(format!(
            "pg_control reads as system {} here and {} to pg_controldata",
            staged.system_id, control.system_id
        )));
    }
    if let Some(archive) = archive
        && !archive.segments.is_empty()
        && archive.segment_size != control.segment_size
    {
        return Err(PrepareError::Mismatch(format!(
            "the WAL archive `{}` holds {}-byte segments, and the backup's cluster writes {}-byte ones",
            archive.dir.display(),
            archive.segment_size,
            control.segment_size
        )));
    }
    Ok(())
}
