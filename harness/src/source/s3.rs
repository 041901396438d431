//! Backups in S3 or an S3-compatible store (MinIO, Ceph, R2, ...), through object_store: a key,
//! or the newest object under a prefix (or one drawn among its older ones: `sample`).
//! Credentials come from the environment (the usual `AWS_*` variables, or variables the scenario
//! names); a custom endpoint serves S3-compatible stores. The bucket is opened as the reports' is
//! (`crate::store`).

use std::path::Path;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use super::newest::{Candidate, NamePattern, newest, sorted};
use super::sample::{SampleSpec, pick};
use super::{Backup, Progress, SourceError};
use crate::outcome::SamplePlan;
use crate::secret::Redactor;
use crate::store::ConnectError;

#[derive(Debug, Clone)]
pub(crate) struct S3Spec {
    pub bucket: String,
    /// An object key, or a prefix ending in `/` (or empty) to take the newest object under.
    pub key: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub pattern: Option<NamePattern>,
    /// Environment variables holding the keys, when not the standard `AWS_*` ones.
    pub access_key_env: Option<String>,
    pub secret_key_env: Option<String>,
    /// Attempts after the first, for each request and for a download that drops mid-way
    /// (resumed from where it stopped).
    pub retries: u32,
}

impl S3Spec {
    pub(crate) fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    pub(crate) fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }
}

/// The object chosen, the one before it under the prefix, and the plan of a draw.
type Chosen = (ObjectMeta, Option<Candidate>, Option<SamplePlan>);

/// An object's identity as its store keeps it: the ETag, version, size and modification time
/// the store set when it was written (none of them a writer chooses); `None` without an ETag.
fn identity(meta: &ObjectMeta) -> Option<String> {
    let etag = meta.e_tag.as_deref()?;
    Some(format!(
        "ETag {etag}, version {}, {} bytes, written {}",
        meta.version.as_deref().unwrap_or("none"),
        meta.size,
        meta.last_modified.to_rfc3339()
    ))
}

/// A bucket of the scenario's store, with its credentials.
pub(crate) struct Bucket<'a> {
    store: object_store::aws::AmazonS3,
    spec: &'a S3Spec,
    redactor: &'a Redactor,
}

/// What lies directly under a prefix: object names and folder names.
#[derive(Debug, Default)]
pub(crate) struct Top {
    pub files: Vec<String>,
    pub folders: Vec<String>,
}

impl<'a> Bucket<'a> {
    /// Connects to `spec`'s bucket; credentials from the environment, registered as secrets.
    pub(crate) fn open(spec: &'a S3Spec, redactor: &'a Redactor) -> Result<Self, SourceError> {
        let connect = crate::store::Connect {
            bucket: &spec.bucket,
            region: spec.region.as_deref(),
            endpoint: spec.endpoint.as_deref(),
            access_key_env: spec.access_key_env.as_deref(),
            secret_key_env: spec.secret_key_env.as_deref(),
            retries: spec.retries,
        };
        let store = crate::store::connect(&connect, redactor).map_err(|e| match e {
            ConnectError::MissingSecret { variable } => SourceError::MissingSecret { variable },
            ConnectError::Store(e) => classify(&spec.location(), e, redactor),
        })?;
        Ok(Bucket { store, spec, redactor })
    }

    fn fail(&self, e: object_store::Error) -> SourceError {
        classify(&self.spec.location(), e, self.redactor)
    }

    /// The spec's prefix, as object_store writes one (none for the whole bucket).
    fn prefix(&self) -> Option<ObjectPath> {
        let trimmed = self.spec.key.trim_end_matches('/');
        (!trimmed.is_empty()).then(|| ObjectPath::from(trimmed))
    }

    /// Whether the spec names a prefix (a folder) rather than an object.
    pub(crate) fn is_prefix(&self) -> bool {
        self.spec.is_prefix()
    }

    /// What lies directly under the spec's prefix.
    pub(crate) async fn top(&self) -> Result<Top, SourceError> {
        let listed = self.store.list_with_delimiter(self.prefix().as_ref()).await.map_err(|e| self.fail(e))?;
        Ok(Top {
            files: listed.objects.iter().filter_map(|o| o.location.filename().map(str::to_owned)).collect(),
            folders: listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_owned)).collect(),
        })
    }

    /// The object the spec names (or the newest under its prefix, or the one `sampled` draws
    /// there), as the store lists it, the one before it under the prefix, and the plan of a draw.
    async fn chosen(&self, sampled: Option<&SampleSpec>) -> Result<Chosen, SourceError> {
        let spec = self.spec;
        if !spec.is_prefix() {
            let meta = self.store.head(&ObjectPath::from(spec.key.as_str())).await.map_err(|e| self.fail(e))?;
            return Ok((meta, None, None));
        }
        let mut listing = self.store.list(self.prefix().as_ref());
        let mut metas = std::collections::HashMap::new();
        let mut candidates = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.fail(e))?;
            let name = meta.location.filename().unwrap_or_default().to_owned();
            candidates.push(Candidate {
                name: name.clone(),
                size: meta.size,
                modified: OffsetDateTime::from_unix_timestamp(meta.last_modified.timestamp()).ok(),
                date: None,
                etag: meta.e_tag.clone(),
            });
            metas.insert(name, meta);
        }
        let (chosen, previous, plan) = match sampled {
            Some(sample) => {
                let sorted = sorted(candidates, spec.pattern.as_ref());
                let place = |name: &str| {
                    let key = metas.get(name).map(|m| m.location.to_string()).unwrap_or_default();
                    format!("s3://{}/{key}", spec.bucket)
                };
                let (chosen, previous, plan) = pick(sorted, spec.pattern.as_ref(), sample, spec.location(), place)?;
                (Some(chosen), previous, Some(plan))
            }
            None => {
                let (chosen, previous) = newest(candidates, spec.pattern.as_ref());
                (chosen, previous, None)
            }
        };
        let chosen = chosen.ok_or_else(|| SourceError::NoBackup { location: spec.location() })?;
        let meta = metas.remove(&chosen.name).ok_or_else(|| SourceError::NoBackup { location: spec.location() })?;
        Ok((meta, previous, plan))
    }

    /// What the object a download would take is now, without downloading it (`None` for an
    /// object the store gives no ETag).
    pub(crate) async fn probe(&self) -> Result<Option<super::Remote>, SourceError> {
        let (meta, ..) = self.chosen(None).await?;
        Ok(identity(&meta).map(|identity| super::Remote {
            location: format!("s3://{}/{}", self.spec.bucket, meta.location),
            identity,
            size: meta.size,
            modified: OffsetDateTime::from_unix_timestamp(meta.last_modified.timestamp()).ok(),
        }))
    }

    /// Downloads the object (or the newest under the prefix, or the one `sampled` draws there)
    /// into `dir`; with the plan of a draw.
    pub(crate) async fn download(
        &self,
        dir: &Path,
        sampled: Option<&SampleSpec>,
        progress: Progress<'_>,
    ) -> Result<(Backup, Option<SamplePlan>), SourceError> {
        let (meta, previous, plan) = self.chosen(sampled).await?;
        let key = meta.location.to_string();
        let name = key.rsplit('/').next().unwrap_or("backup").to_owned();
        let path = dir.join(format!("s3-{name}"));
        let (got, modified) = self.get(&key, &path, progress).await?;
        let backup = Backup {
            location: format!("s3://{}/{key}", self.spec.bucket),
            path,
            size: got.size,
            modified,
            previous: previous.map(|p| (p.name, p.size)),
            wal_archive: None,
            keys: Vec::new(),
            // What was downloaded: the object as the store sent it (a write since the listing
            // made another).
            remote: identity(&got),
        };
        Ok((backup, plan))
    }

    /// Downloads the object `key` into the file `path`; returns its size and modification time.
    async fn get(
        &self,
        key: &str,
        path: &Path,
        progress: Progress<'_>,
    ) -> Result<(ObjectMeta, Option<OffsetDateTime>), SourceError> {
        let object = self.store.get(&ObjectPath::from(key)).await.map_err(|e| self.fail(e))?;
        let meta = object.meta.clone();
        let size = object.meta.size;
        let modified = OffsetDateTime::from_unix_timestamp(object.meta.last_modified.timestamp()).ok();
        let write_err = |source| SourceError::Unreadable { path: path.display().to_string(), source };
        let mut file = tokio::fs::File::create(path).await.map_err(write_err)?;
        let mut stream = object.into_stream();
        let mut received = 0u64;
        while let Some(chunk) = stream.next().await {
            let bytes = chunk.map_err(|e| self.fail(e))?;
            file.write_all(&bytes).await.map_err(write_err)?;
            received += bytes.len() as u64;
            progress(received, Some(size));
        }
        file.flush().await.map_err(write_err)?;
        if received != size {
            return Err(SourceError::GaveUp {
                location: format!("s3://{}/{key}", self.spec.bucket),
                attempts: 1,
                last: format!("the object store sent {received} of {size} bytes"),
            });
        }
        Ok((meta, modified))
    }

    /// Copies the objects under the spec's prefix (and `under`, a path below it) whose path
    /// relative to the prefix `keep` picks into the folder `into`, as files of the same relative
    /// paths, each file's time the store's; returns how many, their bytes and the newest one's
    /// modification time. A key whose path leads out of the folder is refused.
    pub(crate) async fn mirror(
        &self,
        under: &str,
        into: &Path,
        keep: &(dyn Fn(&str) -> bool + Sync),
        progress: Progress<'_>,
    ) -> Result<Mirrored, SourceError> {
        let base = self.prefix().map(|p| p.to_string()).unwrap_or_default();
        let listed_at = match (base.is_empty(), under.trim_matches('/')) {
            (_, "") => self.prefix(),
            (true, under) => Some(ObjectPath::from(under)),
            (false, under) => Some(ObjectPath::from(format!("{base}/{under}"))),
        };
        let mut listing = self.store.list(listed_at.as_ref());
        let mut wanted = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.fail(e))?;
            let key = meta.location.to_string();
            let relative =
                if base.is_empty() { key.as_str() } else { key.strip_prefix(&format!("{base}/")).unwrap_or(&key) };
            if relative.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
                return Err(SourceError::KeyOutside { location: format!("s3://{}/{key}", self.spec.bucket) });
            }
            if keep(relative) {
                wanted.push((key.clone(), relative.to_owned(), meta.size));
            }
        }
        let total: u64 = wanted.iter().map(|(_, _, size)| size).sum();
        let mut mirrored = Mirrored::default();
        for (key, relative, _) in wanted {
            let path = into.join(&relative);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|source| SourceError::Unreadable { path: parent.display().to_string(), source })?;
            }
            let done = mirrored.bytes;
            let (got, modified) = self.get(&key, &path, &|n, _| progress(done + n, Some(total))).await?;
            // The file's time is the store's (a WAL segment's is when it was archived).
            let local = |source| SourceError::Unreadable { path: path.display().to_string(), source };
            let file = std::fs::File::options().write(true).open(&path).map_err(local)?;
            file.set_modified(got.last_modified.into()).map_err(local)?;
            mirrored.files += 1;
            mirrored.bytes += got.size;
            mirrored.newest = mirrored.newest.max(modified);
        }
        Ok(mirrored)
    }
}

impl Bucket<'_> {
    /// The objects directly under the spec's prefix, or its folder `under` (its files, not its
    /// subfolders') whose names sort after `after` (the store's `start-after`: it sends no key
    /// before), each by its name in that folder, its key and its size.
    pub(crate) async fn list_after(&self, under: &str, after: &str) -> Result<Vec<Listed>, SourceError> {
        let prefix = match (self.prefix(), under.trim_matches('/')) {
            (prefix, "") => prefix,
            (None, under) => Some(ObjectPath::from(under)),
            (Some(prefix), under) => Some(ObjectPath::from(format!("{prefix}/{under}"))),
        };
        let base = prefix.as_ref().map(|p| format!("{p}/")).unwrap_or_default();
        let offset = ObjectPath::from(format!("{base}{after}"));
        let mut listing = self.store.list_with_offset(prefix.as_ref(), &offset);
        let mut listed = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.fail(e))?;
            let key = meta.location.to_string();
            let Some(name) = key.strip_prefix(&base).filter(|n| !n.is_empty() && !n.contains('/')) else { continue };
            listed.push(Listed { name: name.to_owned(), key: key.clone(), size: meta.size });
        }
        Ok(listed)
    }

    /// Downloads the object `key` into the file `path`, through a hidden file beside it renamed
    /// once whole (a reader never sees half of it), the file's time set to when the store says
    /// it was written.
    pub(crate) async fn fetch(&self, key: &str, path: &Path) -> Result<u64, SourceError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let partial = path.with_file_name(format!(".{name}.partial"));
        let local = |source| SourceError::Unreadable { path: path.display().to_string(), source };
        let fetched = async {
            let (meta, _) = self.get(key, &partial, &|_, _| {}).await?;
            let file = std::fs::File::options().write(true).open(&partial).map_err(local)?;
            file.set_modified(meta.last_modified.into()).map_err(local)?;
            std::fs::rename(&partial, path).map_err(local)?;
            Ok(meta.size)
        };
        let fetched = fetched.await;
        if fetched.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        fetched
    }
}

/// An object [`Bucket::list_after`] found.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// Its name under the prefix, and its key.
    pub name: String,
    pub key: String,
    /// Its size, as listed.
    pub size: u64,
}

/// What [`Bucket::mirror`] copied.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mirrored {
    pub files: usize,
    pub bytes: u64,
    pub newest: Option<OffsetDateTime>,
}

fn classify(location: &str, error: object_store::Error, redactor: &Redactor) -> SourceError {
    match error {
        object_store::Error::NotFound { .. } => SourceError::NotFound { location: location.to_owned() },
        object_store::Error::PermissionDenied { .. } => {
            SourceError::Denied { location: location.to_owned(), status: 403 }
        }
        object_store::Error::Unauthenticated { .. } => {
            SourceError::Denied { location: location.to_owned(), status: 401 }
        }
        other => SourceError::Http {
            location: location.to_owned(),
            message: redactor.redact(&crate::error::error_chain(&other)),
        },
    }
}
