//! Sources: where a backup comes from (a file, the newest in a folder, an HTTP(S) URL or a base
//! backup's folder there, S3), and proving it intact before anything is restored.

pub(crate) mod decrypt;
pub(crate) mod http;
pub(crate) mod http_folder;
mod inflate;
pub(crate) mod kind;
pub(crate) mod newest;
pub(crate) mod onepass;
pub(crate) mod physical;
pub(crate) mod read;
pub(crate) mod s3;
pub(crate) mod sample;
pub(crate) mod taken;
pub(crate) mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::outcome::SamplePlan;
use crate::secret::Redactor;
use crate::units::human_size;
use http::HttpSpec;
use newest::NamePattern;
use s3::S3Spec;

/// Where the scenario's backup is, and what it must be.
#[derive(Debug, Clone)]
pub(crate) struct SourceSpec {
    pub location: SourceLocation,
    pub expected_sha256: Option<String>,
    /// A backup under this fraction of the previous one in the same location fails.
    pub min_size_ratio: f64,
    /// Why the scenario trusts its backup, when it does: a target that is not a sandbox
    /// restores only a trusted backup, and the reports say so first.
    pub trusted: Option<String>,
    /// Archived WAL segments a base backup recovers through: a folder, or an S3 prefix.
    pub wal_archive: Option<WalArchiveLocation>,
    /// A pgBackRest repository's stanza and set.
    pub stanza: Option<String>,
    pub set: Option<String>,
    /// Plain-format base backups' tablespaces: the folder of each.
    pub tablespaces: Tablespaces,
    /// An encrypted pgBackRest repository's passphrase, from the environment or a file.
    pub cipher_pass: Option<crate::secret::SecretSource>,
    /// The keys of an encrypted dump (`[source] decrypt`): each must open it.
    pub decrypt: Vec<decrypt::KeySpec>,
    /// Changes of the backup's kind since the previous drill that the scenario intended.
    pub changed: Vec<kind::IntendedChange>,
    /// A dump file is read whole before its restore (`verify = "first"`), not verified by the
    /// restore's read.
    pub verify_first: bool,
    /// `verify = "one-pass"` written: an archive the target's pg_restore could read itself is
    /// read once too (by default only an encrypted one is).
    pub one_pass: bool,
    /// Named on the command line (`run --backup`) in place of the scenario's own source: its
    /// kind is neither compared with the scenario's history of kinds nor added to it.
    pub given: bool,
    /// The backup drawn from a window of the folder's older backups, not its newest
    /// (`--sample`, `[source] sample`).
    pub sample: Option<sample::SampleSpec>,
}

/// Where plain-format base backups keep their tablespaces (`[source] tablespaces`, where
/// `--tablespace-mapping` put them): the folder of each, by its OID (its link in `pg_tblspc`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tablespaces {
    /// The backup's.
    pub backup: BTreeMap<u32, PathBuf>,
    /// A chain's members', by member (its folder's name in the chain's folder).
    pub members: BTreeMap<String, BTreeMap<u32, PathBuf>>,
}

impl Tablespaces {
    pub(crate) fn is_empty(&self) -> bool {
        self.backup.is_empty() && self.members.is_empty()
    }
}

/// Where a backup is.
#[derive(Debug, Clone)]
pub(crate) enum SourceLocation {
    /// A backup file (or directory-format archive) on this machine.
    File(PathBuf),
    /// The newest backup in a folder.
    Newest { dir: PathBuf, pattern: Option<NamePattern> },
    /// An HTTP(S) URL.
    Url(HttpSpec),
    /// An S3 object, or the newest under a prefix.
    S3(S3Spec),
}

/// Where a base backup's WAL archive is.
#[derive(Debug, Clone)]
pub(crate) enum WalArchiveLocation {
    Dir(PathBuf),
    /// A prefix of an S3 bucket: the segments recovery reads are copied here first.
    S3(S3Spec),
}

/// A backup ready to be read from this machine.
#[derive(Debug, Clone)]
pub(crate) struct Backup {
    /// Where it came from, for the reports (no password, no signature).
    pub location: String,
    /// The local file (or directory-format folder) holding it.
    pub path: PathBuf,
    pub size: u64,
    pub modified: Option<OffsetDateTime>,
    /// The backup before it in the same location (name, size), for the size sanity check.
    pub previous: Option<(String, u64)>,
    /// A base backup's WAL archive, on this machine.
    pub wal_archive: Option<PathBuf>,
    /// The keys that open an encrypted dump, read: the first decrypts it for the drill, and
    /// verify proves each one opens it.
    pub keys: Vec<decrypt::Key>,
    /// A downloaded object's identity as its store gave it (S3: ETag, version, size, time
    /// written; HTTPS: a strong ETag, size, Last-Modified), when it gave one.
    pub remote: Option<String>,
}

/// What a backup object in S3 or behind an HTTPS URL is now, as its store says without sending
/// it: a download of it would be of these bytes while its identity is unchanged.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    pub location: String,
    pub identity: String,
    pub size: u64,
    pub modified: Option<OffsetDateTime>,
}

/// The remote object the scenario's source would download, when it is one object (not a
/// folder of a physical backup) whose store gives it an identity; `None` otherwise.
pub(crate) async fn probe(spec: &SourceSpec, redactor: &Redactor) -> Result<Option<Remote>, SourceError> {
    if spec.sample.is_some() {
        // The draw is the fetch's: nothing to probe ahead of it.
        return Ok(None);
    }
    match &spec.location {
        SourceLocation::Url(http) => http::probe(http, redactor).await,
        SourceLocation::S3(s3) => {
            let bucket = s3::Bucket::open(s3, redactor)?;
            if bucket.is_prefix() {
                let top = bucket.top().await?;
                let folders = |names: &[&str]| names.iter().all(|n| top.folders.iter().any(|f| f == n));
                if physical::is_base_backup_listing(&top.files)
                    || folders(&["base", "wals"])
                    || folders(&["backup", "archive"])
                {
                    return Ok(None);
                }
            }
            bucket.probe().await
        }
        _ => Ok(None),
    }
}

impl Backup {
    /// The fetch phase's summary: where, how big, and the previous backup there.
    pub(crate) fn summary(&self) -> String {
        let mut summary = format!("{} ({})", self.location, human_size(self.size));
        if let Some((previous, size)) = &self.previous {
            summary.push_str(&format!("; the previous backup, {previous}, was {}", human_size(*size)));
        }
        summary
    }
}

/// Download progress: bytes so far, and the total when known.
pub(crate) type Progress<'a> = &'a (dyn Fn(u64, Option<u64>) + Send + Sync);

#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    /// The backup file does not exist or cannot be read.
    #[error("backup `{path}` cannot be read")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The path is neither a file nor a folder.
    #[error("backup `{path}` is not a file or a directory-format archive")]
    NotAFile { path: String },
    /// Nothing in the folder or under the prefix matches.
    #[error("no backup found in `{location}`")]
    NoBackup { location: String },
    /// The server or store says it does not exist.
    #[error("`{location}` does not exist (404): check the URL or key, and whether the backup job ran")]
    NotFound { location: String },
    /// Access was refused.
    #[error("access to `{location}` was refused ({status}): check the credentials and their permissions")]
    Denied { location: String, status: u16 },
    /// Retries ran out.
    #[error("`{location}` could not be downloaded after {attempts} attempts: {last}")]
    GaveUp { location: String, attempts: u32, last: String },
    /// A folder URL whose server has no `backup_manifest` there.
    #[error(
        "`{location}` has no backup_manifest (404): a base backup over HTTP(S) is fetched by the files its backup_manifest lists, so a backup taken with pg_basebackup --no-manifest cannot be fetched this way; a dump is named by its file's URL, not its folder's"
    )]
    NoManifest { location: String },
    /// A folder URL's `backup_manifest` that cannot be followed.
    #[error("`{location}`: the backup_manifest cannot be followed")]
    FolderManifest {
        location: String,
        #[source]
        source: physical::manifest::ManifestError,
    },
    /// A folder URL's plain-format backup with tablespaces.
    #[error(
        "`{location}`: the backup_manifest cannot be followed: it lists `{path}`, a tablespace's file: a plain-format backup with tablespaces is not fetched over HTTP(S) (take it in tar format, -Ft)"
    )]
    FolderTablespace { location: String, path: String },
    /// A manifest path leading out of the folder it is downloaded to.
    #[error(
        "`{location}`: the backup_manifest lists `{path}`, which leads out of the backup's folder (absolute, or through `..`): a hostile or damaged manifest; nothing was downloaded"
    )]
    OutsideFolder { location: String, path: String },
    /// Any other transfer problem.
    #[error("`{location}`: {message}")]
    Http { location: String, message: String },
    /// An object of a folder in S3 whose key leads out of that folder (a hostile listing).
    #[error("`{location}`: the key leads out of its folder: refused")]
    KeyOutside { location: String },
    /// A URL that does not parse (url's `ParseError`, named through reqwest's `Url`).
    #[error("`{location}`")]
    Url {
        location: String,
        #[source]
        source: <reqwest::Url as std::str::FromStr>::Err,
    },
    /// The downloaded bytes cannot be written to the drill's work folder.
    #[error("`{location}`")]
    Write {
        location: String,
        #[source]
        source: std::io::Error,
    },
    /// No HTTP client can be built (its TLS configuration, say).
    #[error("`{location}`")]
    Client {
        location: String,
        #[source]
        source: reqwest::Error,
    },
    /// A pgBackRest repository in S3 that cannot be read as one.
    #[error(transparent)]
    Physical(#[from] physical::PhysicalError),
    /// A variable that should hold a credential is unset.
    #[error("the environment variable `{variable}` is not set (the scenario reads a credential from it)")]
    MissingSecret { variable: String },
    /// A credential the scenario reads from the environment or a file is not there.
    #[error("the source's {what} could not be read")]
    Credential {
        what: &'static str,
        #[source]
        source: crate::secret::SecretError,
    },
    /// A decryption key the scenario names cannot be read.
    #[error(transparent)]
    Key(#[from] decrypt::KeyError),
    /// `sample` of an S3 prefix holding a physical backup, not dumps.
    #[error(
        "`{location}` holds a physical backup (a base backup, a barman-cloud server or a pgBackRest repository): `sample` draws among the dumps of a folder or a prefix"
    )]
    NotSampled { location: String },
    /// No backup to draw from the window (`--sample`).
    #[error(transparent)]
    Sample(#[from] crate::outcome::SampleError),
    /// The backup is much smaller than the one before it.
    #[error("`{location}` is {} ({size} bytes), under {:.0}% of the previous backup `{previous}` ({}, {previous_size} bytes): a backup that shrank this much is suspect (hint: set `source.min_size_ratio` if the drop is expected)", human_size(*size), ratio * 100.0, human_size(*previous_size))]
    Shrunk { location: String, size: u64, previous: String, previous_size: u64, ratio: f64 },
}

impl SourceError {
    /// Whether the fetch failed for a reason that says nothing about the backup's content: its
    /// store could not be reached, refused the credentials or broke off, or the drill's own
    /// folder or configuration failed it (the drill could not run, and may when run again). A
    /// backup that is missing, smaller than it should be or not what it claims to be is a
    /// finding.
    pub(crate) fn says_nothing_of_the_backup(&self) -> bool {
        match self {
            SourceError::Denied { .. }
            | SourceError::GaveUp { .. }
            | SourceError::Http { .. }
            | SourceError::Url { .. }
            | SourceError::Write { .. }
            | SourceError::Client { .. }
            | SourceError::MissingSecret { .. }
            | SourceError::Credential { .. } => true,
            // A file that cannot be read may be missing, or on failing storage: the backup's.
            SourceError::Unreadable { .. }
            | SourceError::NotAFile { .. }
            | SourceError::NoBackup { .. }
            | SourceError::NotFound { .. }
            | SourceError::NoManifest { .. }
            | SourceError::FolderManifest { .. }
            | SourceError::FolderTablespace { .. }
            | SourceError::OutsideFolder { .. }
            | SourceError::KeyOutside { .. }
            | SourceError::Physical(_)
            // The keys that must open the backup are part of what makes it restorable.
            | SourceError::Key(_)
            // A window with nothing to draw from: the older backups are not there.
            | SourceError::Sample(_)
            | SourceError::NotSampled { .. }
            | SourceError::Shrunk { .. } => false,
        }
    }
}

/// Locates the scenario's backup, downloading it into `work` when it is remote (an S3 prefix
/// holding a base backup or a pgBackRest repository is copied as a folder: a repository's
/// chosen set and the WAL it needs only), and checks its size against the previous backup in the
/// same location; a base backup's WAL archive in S3 is copied too, from the backup's start on.
/// `choice` picks a pgBackRest set. With the plan of the draw when the backup was sampled.
pub(crate) async fn fetch(
    spec: &SourceSpec,
    work: &Path,
    choice: &physical::pgbackrest::Choice<'_>,
    redactor: &Redactor,
    progress: Progress<'_>,
) -> Result<(Backup, Option<SamplePlan>), SourceError> {
    let mut plan = None;
    let mut backup = match &spec.location {
        SourceLocation::File(path) => local(path, path.display().to_string(), None).await?,
        SourceLocation::Newest { dir, pattern } => {
            let (backup, drawn) = newest_in(dir, pattern.as_ref(), spec.sample.as_ref()).await?;
            plan = drawn;
            backup
        }
        SourceLocation::Url(http) => {
            make_work(work)?;
            let prepared = http::prepare(http, redactor)?;
            match prepared.is_folder() {
                true => http_folder::fetch(&prepared, http.retries, work, progress).await?,
                false => http::download(&prepared, http.retries, work, progress).await?,
            }
        }
        SourceLocation::S3(s3) => {
            make_work(work)?;
            let (backup, drawn) = from_s3(s3, work, choice, spec.sample.as_ref(), redactor, progress).await?;
            plan = drawn;
            backup
        }
    };
    check_size(&backup, spec.min_size_ratio)?;
    // Read now, once: each secret registered with the redactor before any phase can print it.
    backup.keys = decrypt::load(&spec.decrypt, redactor)?;
    backup.wal_archive = match &spec.wal_archive {
        None => None,
        Some(WalArchiveLocation::Dir(dir)) => Some(dir.clone()),
        Some(WalArchiveLocation::S3(s3)) => {
            make_work(work)?;
            Some(wal_from_s3(s3, &backup.path, work, choice, redactor, progress).await?)
        }
    };
    Ok((backup, plan))
}

/// The drill's work folder, made.
fn make_work(work: &Path) -> Result<(), SourceError> {
    std::fs::create_dir_all(work).map_err(|source| SourceError::Unreadable { path: work.display().to_string(), source })
}

/// The newest backup in `dir` (a file, or a directory-format archive's folder) that `pattern`
/// names, with the one before it; or, sampled, the one drawn and the plan of the draw.
async fn newest_in(
    dir: &Path,
    pattern: Option<&NamePattern>,
    sampled: Option<&sample::SampleSpec>,
) -> Result<(Backup, Option<SamplePlan>), SourceError> {
    let shown = dir.display().to_string();
    let mut entries =
        tokio::fs::read_dir(dir).await.map_err(|source| SourceError::Unreadable { path: shown.clone(), source })?;
    let mut candidates = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let Ok(meta) = entry.metadata().await else { continue };
        if meta.is_file() || entry.path().join("toc.dat").is_file() {
            candidates.push(newest::Candidate {
                name: entry.file_name().to_string_lossy().into_owned(),
                size: meta.len(),
                modified: meta.modified().ok().map(OffsetDateTime::from),
                date: None,
                etag: None,
            });
        }
    }
    let place = |name: &str| dir.join(name).display().to_string();
    let (chosen, previous, plan) = match sampled {
        Some(spec) => {
            let sorted = newest::sorted(candidates, pattern);
            let (chosen, previous, plan) = sample::pick(sorted, pattern, spec, shown, place)?;
            (chosen, previous, Some(plan))
        }
        None => match newest::newest(candidates, pattern) {
            (Some(chosen), previous) => (chosen, previous, None),
            (None, _) => return Err(SourceError::NoBackup { location: shown }),
        },
    };
    let backup = local(&dir.join(&chosen.name), place(&chosen.name), previous.map(|p| (p.name, p.size))).await?;
    Ok((backup, plan))
}

/// The backup in S3: an object (or the newest under a prefix, or the one `sampled` draws there,
/// with the plan of the draw), else a prefix holding a base backup, a barman-cloud server or a
/// pgBackRest repository, copied as a folder.
async fn from_s3(
    s3: &S3Spec,
    work: &Path,
    choice: &physical::pgbackrest::Choice<'_>,
    sampled: Option<&sample::SampleSpec>,
    redactor: &Redactor,
    progress: Progress<'_>,
) -> Result<(Backup, Option<SamplePlan>), SourceError> {
    let bucket = s3::Bucket::open(s3, redactor)?;
    let top = if bucket.is_prefix() { bucket.top().await? } else { s3::Top::default() };
    match physical_from_s3(s3, &bucket, &top, work, choice, sampled.is_some(), progress).await? {
        Some(backup) => Ok((backup, None)),
        None => bucket.download(work, sampled, progress).await,
    }
}

/// A physical backup in S3, copied as a folder: a base backup, a barman-cloud server's backup
/// (`choice` picks it) or a pgBackRest repository's set; `None` when the prefix holds none. A
/// physical backup is not `sampled`.
async fn physical_from_s3(
    s3: &S3Spec,
    bucket: &s3::Bucket<'_>,
    top: &s3::Top,
    work: &Path,
    choice: &physical::pgbackrest::Choice<'_>,
    sampled: bool,
    progress: Progress<'_>,
) -> Result<Option<Backup>, SourceError> {
    let has = |folder: &str| top.folders.iter().any(|f| f == folder);
    let base = physical::is_base_backup_listing(&top.files);
    let (barman, pgbackrest) = (has("base") && has("wals"), has("backup") && has("archive"));
    if sampled && (base || barman || pgbackrest) {
        return Err(SourceError::NotSampled { location: s3.location() });
    }
    let backup = if base {
        let into = work.join("backup");
        let mirrored = bucket.mirror("", &into, &|_| true, progress).await?;
        folder_backup(s3.location(), into, mirrored)
    } else if barman {
        // A barman-cloud server (named as its prefix's last part): the backup chosen and the WAL
        // from its start on.
        let location = s3.location();
        let server = location.trim_end_matches('/').rsplit('/').next().unwrap_or("barman");
        let into = work.join("barman").join(server);
        let which = physical::barman::Choice { id: choice.set, before: choice.before };
        let mirrored = physical::barman::mirror(bucket, &into, &which, progress).await?;
        folder_backup(s3.location(), into, mirrored)
    } else if pgbackrest {
        let into = work.join("repository");
        let mirrored = physical::pgbackrest::mirror(bucket, &into, choice, progress).await?;
        folder_backup(s3.location(), into, mirrored)
    } else {
        return Ok(None);
    };
    Ok(Some(backup))
}

/// A base backup's WAL archive in S3, copied into `work`: the segments from the backup's start
/// segment on its timeline, which is what recovery can read.
async fn wal_from_s3(
    s3: &S3Spec,
    backup: &Path,
    work: &Path,
    choice: &physical::pgbackrest::Choice<'_>,
    redactor: &Redactor,
    progress: Progress<'_>,
) -> Result<PathBuf, SourceError> {
    let start = physical::inspect(backup, choice).ok().map(|b| b.label.start_segment);
    let into = work.join("wal");
    std::fs::create_dir_all(&into)
        .map_err(|source| SourceError::Unreadable { path: into.display().to_string(), source })?;
    let bucket = s3::Bucket::open(s3, redactor)?;
    let keep = |relative: &str| {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        let segment = name.get(..24).unwrap_or(name);
        physical::wal::is_segment_name(segment)
            && !relative.contains('/')
            && start.as_ref().is_none_or(|s| segment[..8] == s[..8] && segment >= s.as_str())
    };
    bucket.mirror("", &into, &keep, progress).await?;
    Ok(into)
}

/// A backup under `ratio` of the previous one in the same location is suspect.
fn check_size(backup: &Backup, ratio: f64) -> Result<(), SourceError> {
    match &backup.previous {
        Some((previous, previous_size)) if (backup.size as f64) < (*previous_size as f64) * ratio => {
            Err(SourceError::Shrunk {
                location: backup.location.clone(),
                size: backup.size,
                previous: previous.clone(),
                previous_size: *previous_size,
                ratio,
            })
        }
        _ => Ok(()),
    }
}

/// A backup copied from S3 as a folder.
fn folder_backup(location: String, path: PathBuf, mirrored: s3::Mirrored) -> Backup {
    Backup {
        location,
        path,
        size: mirrored.bytes,
        modified: mirrored.newest,
        previous: None,
        wal_archive: None,
        keys: Vec::new(),
        remote: None,
    }
}

async fn local(path: &Path, location: String, previous: Option<(String, u64)>) -> Result<Backup, SourceError> {
    let shown = path.display().to_string();
    let meta =
        tokio::fs::metadata(path).await.map_err(|source| SourceError::Unreadable { path: shown.clone(), source })?;
    let size = if meta.is_dir() {
        // A directory-format archive, a base backup, a repository: its size is its files'.
        directory_size(path).map_err(|source| SourceError::Unreadable { path: shown.clone(), source })?
    } else if meta.is_file() {
        meta.len()
    } else {
        return Err(SourceError::NotAFile { path: shown });
    };
    Ok(Backup {
        location,
        path: path.to_owned(),
        size,
        modified: meta.modified().ok().map(OffsetDateTime::from),
        previous,
        wal_archive: None,
        keys: Vec::new(),
        remote: None,
    })
}

/// The bytes of the files in a folder and its folders (links not followed).
fn directory_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                total += entry.metadata()?.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
