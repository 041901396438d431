//! Preparing a physical backup before any server starts: read, staged, made whole in a toolbox,
//! checked by PostgreSQL's own tools, the archive's first segments given (see the module's
//! documentation, `restore::physical`).

use std::path::Path;
use std::sync::Arc;

use super::feed::{self, Feed};
use super::stage::{self, StageError, Staged};
use super::verify::{self, ControlData};
use super::{PrepareError, Prepared, Request, Where, blocking, combine, encrypted, promote, recovery, set};
use crate::provision::PhysicalData;
use crate::provision::toolbox::{self, Toolbox};
use crate::scenario::RecoveryTarget;
use crate::secret::Redactor;
use crate::source::physical::{self as backup, BaseBackup, WalArchive};
use crate::tree::Ids;

/// Reads, stages and verifies the base backup in `request.backup_dir` (see the module's
/// documentation).
pub(crate) async fn prepare(request: Request<'_>) -> Result<Prepared, PrepareError> {
    tracing::debug!("preparing the base backup");
    let (backup, archive, encrypted) = read(&request).await?;
    let data = data_folder(request.work)?;
    let repository = matches!(backup.layout, backup::Layout::PgBackRest(_));
    let chain = matches!(backup.layout, backup::Layout::Chain(_));
    // A set's tablespaces are restored into a folder of the work folder the toolbox sees too.
    let tablespaces = match &backup.layout {
        backup::Layout::PgBackRest(set) => set::tablespace_folder(set, request.work)?,
        _ => None,
    };
    // The toolbox starts while a base backup (or a chain's members) is unpacked; a pgBackRest set
    // is restored in it, a chain combined.
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
        data: toolbox::Data::Folder(&data),
        backup: (repository || chain).then_some(request.backup_dir),
        work: if chain { Some(request.work) } else { tablespaces.as_deref() },
        progress: request.progress,
    });
    // `PGDRILL_LOG=pgdrill=debug` times each step of verify.
    let staging = staged(&request, &backup, &data);
    let (tools, staged) = tokio::join!(tools, staging);
    let tools = tools?;
    let read = Read {
        backup: &backup,
        archive: archive.as_ref(),
        encrypted: encrypted.as_ref(),
        tablespaces: tablespaces.as_deref(),
    };
    let checked = check(&request, &tools, &read, &data, staged).await;
    // The toolbox goes whatever was found; once the backup passed, beside what follows (the
    // drill's teardown waits for it; its sweep is the backstop).
    let Checked { control, manifest_verified, checksums_summed, feed, combined } = match checked {
        Ok(checked) => checked,
        Err(e) => {
            let _ = tools.remove().await;
            return Err(e);
        }
    };
    let toolbox_removal = Some(tokio::spawn(tools.remove()));
    let given = feed.as_ref().map(Feed::stats).unwrap_or_default();
    let timeline = archive.as_ref().map_or(backup.label.timeline, |a| a.path.target);
    let (settings, pauses_at_target) = settings(&request, &control, timeline);
    let data = PhysicalData { major: backup.major, data, settings };
    let end = backup.end(archive.as_ref(), control.segment_size);
    let window = request.recovery.wal_window;
    Ok(Prepared {
        backup,
        archive,
        feed,
        given,
        control,
        manifest_verified,
        checksums_summed,
        combined,
        repository: encrypted,
        window,
        data,
        end,
        pauses_at_target,
        toolbox_removal,
    })
}

/// The backup staged into `data` on the blocking pool, beside the toolbox's start: a base
/// backup unpacked (`None` for a pgBackRest set, restored later in the toolbox, and a chain,
/// whose members are unpacked into the work folder).
async fn staged(request: &Request<'_>, backup: &BaseBackup, data: &Path) -> Result<Option<Staged>, PrepareError> {
    let (backup, data, work) = (backup.clone(), data.to_owned(), request.work.to_owned());
    let tablespaces = request.tablespaces.clone();
    let staged = blocking(move || match &backup.layout {
        backup::Layout::PgBackRest(_) => Ok(None),
        backup::Layout::Chain(chain) => {
            combine::unpack(chain, &work, &tablespaces.members).map(|()| None).map_err(PrepareError::from)
        }
        _ => stage::stage(&backup, &data, &tablespaces.backup).map(Some).map_err(PrepareError::from),
    })
    .await;
    tracing::debug!("the base backup unpacked");
    staged
}

/// The settings the target's server recovers with, and whether it pauses at its target for
/// pgdrill to promote it (`promote`).
fn settings(request: &Request<'_>, control: &ControlData, timeline: u32) -> (Vec<(String, String)>, bool) {
    let given = request.target.settings();
    let pauses = promote::pauses_at_target(request.recovery, given, request.target.log_read());
    (recovery::settings(request.recovery, control, given, timeline, pauses), pauses)
}

/// Reads what the backup is (an encrypted repository's metadata decrypted by pgBackRest in a
/// toolbox), checks the scenario's keys fit it, and lists its archive.
async fn read(
    request: &Request<'_>,
) -> Result<(BaseBackup, Option<WalArchive>, Option<Arc<encrypted::Repository>>), PrepareError> {
    let dir = request.backup_dir;
    let encrypted = match backup::pgbackrest::is_encrypted(dir) {
        true => Some(Arc::new(encrypted::Repository::open(request).await?)),
        false if request.cipher_pass.is_some() || !request.keys.is_empty() => {
            return Err(PrepareError::Scenario(format!(
                "`{}` is not encrypted (every file of an encrypted pgBackRest repository is): remove `[source] cipher_pass_env`, `cipher_pass_file` or `decrypt`, whose keys nothing could prove",
                dir.display()
            )));
        }
        false => None,
    };
    let backup = match &encrypted {
        Some(repository) => {
            // Not `repository`, where a repository copied from S3 is.
            let texts = request.work.join("texts");
            repository.decrypt_texts(&request.choice, &texts).await?;
            backup::inspect_repository(dir, &texts, &request.choice)?
        }
        None => backup::inspect(dir, &request.choice)?,
    };
    keys_fit(&backup, request)?;
    let target_lsn = match request.recovery.target {
        RecoveryTarget::Lsn(lsn) => Some(lsn),
        _ => None,
    };
    let archive = {
        let (backup, archive_dir, timeline) =
            (backup.clone(), request.wal_archive.map(Path::to_owned), request.recovery.timeline);
        blocking(move || Ok(backup::archive(archive_dir.as_deref(), &backup, target_lsn, timeline)?)).await?
    };
    Ok((backup, archive, encrypted))
}

/// What [`read`] found.
struct Read<'a> {
    backup: &'a BaseBackup,
    archive: Option<&'a WalArchive>,
    encrypted: Option<&'a Arc<encrypted::Repository>>,
    /// Where pgBackRest restores a set's tablespaces.
    tablespaces: Option<&'a Path>,
}

/// What [`check`] proved and gives the recovery.
struct Checked {
    control: ControlData,
    manifest_verified: bool,
    checksums_summed: bool,
    feed: Option<Feed>,
    combined: Option<combine::Combined>,
}

/// The data directory made whole in the toolbox (a set restored, a chain combined), given to the
/// server's user, read by pg_controldata, its systems compared, the archive's first segments and
/// histories given, pg_verifybackup run over it, and settled for its server.
async fn check(
    request: &Request<'_>,
    tools: &Toolbox,
    read: &Read<'_>,
    data: &Path,
    staged: Result<Option<Staged>, PrepareError>,
) -> Result<Checked, PrepareError> {
    let backup = read.backup;
    let mut combined = None;
    let staged = match staged? {
        Some(staged) => staged,
        None => {
            match &backup.layout {
                backup::Layout::PgBackRest(set) => {
                    let what = set::Restore {
                        set,
                        data,
                        tablespaces: read.tablespaces,
                        encrypted: read.encrypted.map(|r| &**r),
                    };
                    set::restore(tools, what, request.redactor).await?
                }
                backup::Layout::Chain(chain) => {
                    combined =
                        Some(combine::combine(tools, chain, request.work, backup.major, request.redactor).await?);
                }
                _ => {}
            }
            let (backup, data) = (backup.clone(), data.to_owned());
            blocking(move || Ok(stage::stage(&backup, &data, &Default::default())?)).await?
        }
    };
    let (owner, owned) = (tools.user, data.to_owned());
    blocking(move || stage::give(&owned, owner).map_err(PrepareError::from)).await?;
    (request.progress)("pg_controldata, pg_verifybackup");
    let control = control_data(tools, request.redactor).await?;
    tracing::debug!("pg_controldata read the staged cluster");
    judge_systems(backup, read.archive, &staged, &control)?;
    let end = backup.end_segment(control.segment_size).map(|s| s.number);
    let feed = match read.archive {
        Some(archive) => {
            let decrypt = read.encrypted.map(|r| r.decrypt(request.work.join("decrypted")));
            Some(first_feed(archive, data, staged.system_id, end, tools.user, decrypt, request.recovery).await?)
        }
        None => None,
    };
    tracing::debug!("the archive's first segments given");
    // pg_verifybackup reads the WAL through the backup's end, given above; the window beyond it
    // is given meanwhile.
    let verified = async {
        match &backup.manifest {
            Some(_) => verify_backup(tools, staged.checksums_read, request.redactor).await.map(|()| true),
            None => Ok(false),
        }
    };
    let (manifest_verified, feed) = tokio::join!(verified, window(feed, data, end));
    let (manifest_verified, feed) = (manifest_verified?, feed?);
    tracing::debug!("pg_verifybackup passed and the window is given");
    let settled = data.to_owned();
    blocking(move || Ok(stage::settle(&settled)?)).await?;
    let checksums_summed = manifest_verified && staged.checksums_read;
    Ok(Checked { control, manifest_verified, checksums_summed, feed, combined })
}

/// The scenario's `[source]` keys must be this kind of backup's.
fn keys_fit(backup: &BaseBackup, request: &Request<'_>) -> Result<(), PrepareError> {
    if let Where::Container(spec) = request.target
        && let Some(pinned) = spec.version.filter(|v| *v != backup.major)
    {
        return Err(PrepareError::Scenario(format!(
            "the backup is of PostgreSQL {}, and `[target] version` pins {pinned}: a physical backup recovers on its own major only (remove `version`)",
            backup.major
        )));
    }
    let repository = matches!(backup.layout, backup::Layout::PgBackRest(_));
    if repository && matches!(request.target, Where::Local(_)) {
        return Err(PrepareError::Scenario(
            "a pgBackRest repository recovers on a container or pod target: pgBackRest restores it in a toolbox of the target's image (remove `[target] kind = \"local\"`)".into(),
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
    let chain = matches!(backup.layout, backup::Layout::Chain(_));
    let (tablespaces, shown) = (request.tablespaces, request.backup_dir.display());
    if repository && !tablespaces.is_empty() {
        return Err(PrepareError::Scenario(
            "a pgBackRest set carries its tablespaces, which pgdrill restores inside the data directory: remove `[source] tablespaces`".into(),
        ));
    }
    if chain && !tablespaces.backup.is_empty() {
        return Err(PrepareError::Scenario(format!(
            "`{shown}` is a chain of incremental backups, each plain one with a tablespace in a folder of its own: name each by its member in `[source] tablespaces`, `\"<member>/<oid>\" = \"<folder>\"`"
        )));
    }
    if !chain && !tablespaces.members.is_empty() {
        return Err(PrepareError::Scenario(format!(
            "`[source] tablespaces` names a chain member's tablespace (`\"<member>/<oid>\"`), and `{shown}` is no chain of incremental backups: name it by its OID alone"
        )));
    }
    let chosen = chain || backup.barman.is_some();
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
/// needs and the server becomes consistent; the feed of the rest ([`window`] gives the first
/// of it before the server starts), keeping digests from the first segment for a follower.
async fn first_feed(
    archive: &WalArchive,
    data: &Path,
    system_id: u64,
    end: Option<u64>,
    owner: Ids,
    decrypt: Option<feed::Decrypt>,
    spec: &crate::scenario::RecoverySpec,
) -> Result<Feed, PrepareError> {
    let (archive, pg_wal) = (archive.clone(), data.join("pg_wal"));
    let (window, following) = (spec.wal_window, spec.following);
    blocking(move || {
        // An encrypted repository's segments are read whole as they are given (pgBackRest
        // decrypts each); its archive.info already names the cluster they belong to.
        if decrypt.is_none() {
            feed::check_headers(&archive, system_id)?;
        }
        feed::give_histories(&archive, &pg_wal, Some(owner))?;
        let mut feed = Feed::new(&archive, system_id, window, Some(owner), decrypt);
        if following {
            feed.keep_digests();
        }
        feed.fill_through(&pg_wal, end)?;
        Ok(feed)
    })
    .await
}

/// The feed's window past the backup's end given into pg_wal (the whole archive with
/// `wal_window = "all"`), before the server starts.
async fn window(feed: Option<Feed>, data: &Path, end: Option<u64>) -> Result<Option<Feed>, PrepareError> {
    let Some(mut feed) = feed else { return Ok(None) };
    let pg_wal = data.join("pg_wal");
    blocking(move || {
        feed.fill(&pg_wal, None, end)?;
        Ok(Some(feed))
    })
    .await
}

async fn control_data(tools: &Toolbox, redactor: &Redactor) -> Result<ControlData, PrepareError> {
    let (output, stdout) = tools.run("pg_controldata", &[toolbox::DATA.to_owned()], redactor).await?;
    if !output.success() {
        return Err(PrepareError::ControlData { status: output.status, stderr: output.stderr.trim().to_owned() });
    }
    Ok(verify::parse_control(&stdout)?)
}

/// pg_verifybackup over the staged data directory; without reading the files' content again
/// when every checksum was computed as they were unpacked (`checksums_read`).
async fn verify_backup(tools: &Toolbox, checksums_read: bool, redactor: &Redactor) -> Result<(), PrepareError> {
    let mut args = vec!["--quiet".to_owned(), toolbox::DATA.to_owned()];
    if checksums_read {
        args.insert(0, "--skip-checksums".to_owned());
    }
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

#[cfg(test)]
mod tests;
