//! Object stores (S3 and S3-compatible ones: MinIO, Ceph, R2, moto), shared by the sources that
//! read backups there and the reports written there: `s3://bucket/key` URLs; a bucket opened
//! with its endpoint, region and credentials (every credential registered as a secret, so that no
//! message shows it; an `http://` endpoint is allowed plain HTTP, as it asks); and what the
//! reports do there: list, read, write (conditionally: `If-Match` on the ETag read), a prefix
//! copied into a folder and a folder into a prefix.

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};

use crate::secret::{Redactor, Secret};

/// Why an `s3://` URL is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum S3UrlError {
    /// Another scheme.
    #[error("`{url}` is not an s3:// URL")]
    NotS3 { url: String },
    /// Nothing between `s3://` and the key.
    #[error("`{url}` names no bucket")]
    NoBucket { url: String },
}

/// A scenario's field errors carry their message as text: the URL's error becomes that text,
/// and has no cause to lose.
impl From<S3UrlError> for String {
    fn from(error: S3UrlError) -> String {
        error.to_string()
    }
}

/// Whether `text` is an object store's URL rather than a local path.
pub(crate) fn is_url(text: &str) -> bool {
    text.starts_with("s3://")
}

/// Parses `s3://bucket/key` into (bucket, key).
pub(crate) fn parse_url(url: &str) -> Result<(String, String), S3UrlError> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| S3UrlError::NotS3 { url: url.to_owned() })?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(S3UrlError::NoBucket { url: url.to_owned() });
    }
    Ok((bucket.to_owned(), key.to_owned()))
}

/// How to reach a bucket: what a scenario's `[source]` says, or the environment alone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connect<'a> {
    pub bucket: &'a str,
    pub region: Option<&'a str>,
    /// The store's URL; `None` for AWS itself, or the endpoint the `AWS_*` variables name.
    pub endpoint: Option<&'a str>,
    /// Environment variables holding the keys, when not the standard `AWS_*` ones.
    pub access_key_env: Option<&'a str>,
    pub secret_key_env: Option<&'a str>,
    /// Attempts after the first, for each request.
    pub retries: u32,
}

/// Why a bucket cannot be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// A variable that should hold a credential is unset.
    #[error("the environment variable `{variable}` is not set")]
    MissingSecret { variable: String },
    /// object_store refused the configuration.
    #[error("cannot open the bucket")]
    Store(#[source] object_store::Error),
}

fn env_secret(name: &str) -> Result<Secret, ConnectError> {
    std::env::var(name).map(Secret::new).map_err(|_| ConnectError::MissingSecret { variable: name.to_owned() })
}

/// The `AWS_*` variables that hold credentials: registered as secrets wherever they are set.
const CREDENTIALS: [&str; 3] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

/// Opens the bucket `c` names: the `AWS_*` variables first (region, endpoint, keys, conditional
/// writes), then what `c` sets over them; every credential registered with `redactor`.
pub(crate) fn connect(c: &Connect<'_>, redactor: &Redactor) -> Result<AmazonS3, ConnectError> {
    let retry = object_store::RetryConfig { max_retries: c.retries as usize, ..Default::default() };
    crate::tls::install();
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(c.bucket).with_retry(retry);
    if let Some(region) = c.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = c.endpoint {
        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(var) = c.access_key_env {
        let key = env_secret(var)?;
        redactor.register(&key);
        builder = builder.with_access_key_id(key.expose());
    }
    if let Some(var) = c.secret_key_env {
        let key = env_secret(var)?;
        redactor.register(&key);
        builder = builder.with_secret_access_key(key.expose());
    }
    for var in CREDENTIALS {
        if let Ok(value) = std::env::var(var) {
            redactor.register(&Secret::new(value));
        }
    }
    builder.build().map_err(ConnectError::Store)
}

/// The endpoint the environment names for reports (`AWS_ENDPOINT_URL`, else `AWS_ENDPOINT`), so
/// that an `http://` one is allowed as a scenario's is.
fn env_endpoint() -> Option<String> {
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"].iter().find_map(|v| std::env::var(v).ok().filter(|e| !e.is_empty()))
}

/// What went wrong in an object store, its message redacted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("cannot open s3://{bucket}/: {why}")]
    Open { bucket: String, why: String },
    #[error("{location} is not there")]
    NotFound { location: String },
    #[error("{location}: access denied (HTTP {status}): check the credentials and the bucket's policy")]
    Denied { location: String, status: u16 },
    #[error("{location}: {message}")]
    Failed { location: String, message: String },
    /// A conditional write found the object changed since it was read.
    #[error("{location} was written by someone else since it was read")]
    Conflict { location: String },
    /// The store (or `AWS_CONDITIONAL_PUT=disabled`) takes no conditional write.
    #[error("{location}: the store does not take conditional writes ({message})")]
    NoConditional { location: String, message: String },
    #[error("{location}: the key leads out of its folder: refused")]
    Escapes { location: String },
    #[error("cannot {action} `{}`", path.display())]
    Local {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A bucket, for the reports: opened from the environment, its errors redacted.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    store: Arc<dyn ObjectStore>,
    name: String,
    redactor: Redactor,
}

impl Bucket {
    /// The bucket `name`, reached as the `AWS_*` variables say (`AWS_ENDPOINT_URL` or
    /// `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...).
    pub(crate) fn from_env(name: &str, redactor: &Redactor) -> Result<Self, StoreError> {
        let endpoint = env_endpoint();
        let c = Connect { bucket: name, endpoint: endpoint.as_deref(), retries: 3, ..Connect::default() };
        let store = connect(&c, redactor).map_err(|e| StoreError::Open {
            bucket: name.to_owned(),
            why: redactor.redact(&crate::error::error_chain(&e)),
        })?;
        Ok(Bucket { store: Arc::new(store), name: name.to_owned(), redactor: redactor.clone() })
    }

    /// A bucket over any store (the tests' in-memory one).
    #[cfg(test)]
    pub(crate) fn over(store: Arc<dyn ObjectStore>, name: &str) -> Self {
        Bucket { store, name: name.to_owned(), redactor: Redactor::new() }
    }

    /// `s3://bucket/key`.
    pub(crate) fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    fn fail(&self, key: &str, error: object_store::Error) -> StoreError {
        let location = self.url(key);
        match error {
            object_store::Error::NotFound { .. } => StoreError::NotFound { location },
            object_store::Error::PermissionDenied { .. } => StoreError::Denied { location, status: 403 },
            object_store::Error::Unauthenticated { .. } => StoreError::Denied { location, status: 401 },
            object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. } => {
                StoreError::Conflict { location }
            }
            other => StoreError::Failed { location, message: self.redactor.redact(&crate::error::error_chain(&other)) },
        }
    }

    /// Every object under `prefix` (a folder: `a/b` lists `a/b/...`; empty, the whole bucket).
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let trimmed = prefix.trim_matches('/');
        let at = (!trimmed.is_empty()).then(|| ObjectPath::from(trimmed));
        let mut listing = self.store.list(at.as_ref());
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            found.push(meta.map_err(|e| self.fail(prefix, e))?);
        }
        found.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
        Ok(found)
    }

    /// Whether the bucket answers, and lets `prefix` be listed (one page): a missing bucket or
    /// wrong credentials are found before anything is written.
    pub(crate) async fn probe(&self, prefix: &str) -> Result<(), StoreError> {
        let trimmed = prefix.trim_matches('/');
        let at = (!trimmed.is_empty()).then(|| ObjectPath::from(trimmed));
        self.store.list_with_delimiter(at.as_ref()).await.map_err(|e| self.fail(prefix, e))?;
        Ok(())
    }

    /// Removes the object `key` (none there is no error).
    pub(crate) async fn remove(&self, key: &str) -> Result<(), StoreError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(key, e)),
        }
    }

    /// The object `key` and the version it was read at; `None` when there is none.
    pub(crate) async fn read(&self, key: &str) -> Result<Option<(Vec<u8>, UpdateVersion)>, StoreError> {
        let got = match self.store.get(&ObjectPath::from(key)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.fail(key, e)),
        };
        let version = UpdateVersion { e_tag: got.meta.e_tag.clone(), version: got.meta.version.clone() };
        let bytes = got.bytes().await.map_err(|e| self.fail(key, e))?;
        Ok(Some((bytes.to_vec(), version)))
    }

    /// Writes `bytes` at `key`, whatever is there.
    pub(crate) async fn write(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.store.put(&ObjectPath::from(key), PutPayload::from(bytes)).await.map_err(|e| self.fail(key, e))?;
        Ok(())
    }

    /// Writes `bytes` at `key` only if the object is still as read at `read` (`None`: only if
    /// there is none): [`StoreError::Conflict`] when another writer came first,
    /// [`StoreError::NoConditional`] when the store cannot tell.
    pub(crate) async fn write_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        read: Option<UpdateVersion>,
    ) -> Result<(), StoreError> {
        let mode = match read {
            Some(version) if version.e_tag.is_some() => PutMode::Update(version),
            // Without an ETag there is nothing to compare: the store takes no conditional write.
            Some(_) => {
                return Err(StoreError::NoConditional {
                    location: self.url(key),
                    message: "it gave the object no ETag".into(),
                });
            }
            None => PutMode::Create,
        };
        let path = ObjectPath::from(key);
        match self.store.put_opts(&path, PutPayload::from(bytes), mode.into()).await {
            Ok(_) => Ok(()),
            // object_store told not to (`AWS_CONDITIONAL_PUT=disabled`).
            Err(e @ object_store::Error::NotImplemented { .. }) => Err(StoreError::NoConditional {
                location: self.url(key),
                message: self.redactor.redact(&e.to_string()),
            }),
            Err(e) => match self.fail(key, e) {
                // A store that knows no If-Match / If-None-Match answers 501 NotImplemented.
                StoreError::Failed { location, message }
                    if message.contains("NotImplemented") || message.contains("501 Not Implemented") =>
                {
                    Err(StoreError::NoConditional { location, message })
                }
                other => Err(other),
            },
        }
    }

    /// Uploads the files of the folder `dir` (not its subfolders) to `prefix/<name>`, bytes
    /// unchanged, `last` after every other one (so that a folder holding `last` is whole);
    /// returns how many.
    pub(crate) async fn upload_folder(&self, dir: &Path, prefix: &str, last: &str) -> Result<usize, StoreError> {
        let local = |action, path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Local { action, path, source }
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(local("read", dir))? {
            let entry = entry.map_err(local("read", dir))?;
            if entry.file_type().map_err(local("read", &entry.path()))?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        // The last one last; the others in name order.
        names.sort_by_key(|name| (name == last, name.clone()));
        let prefix = prefix.trim_end_matches('/');
        for name in &names {
            let path = dir.join(name);
            let bytes = tokio::fs::read(&path).await.map_err(local("read", &path))?;
            self.write(&format!("{prefix}/{name}"), bytes).await?;
        }
        Ok(names.len())
    }

    /// Copies every object under `prefix` into the folder `into`, at its path below the prefix;
    /// returns how many. A key that would lead out of the folder is refused.
    pub(crate) async fn download_prefix(&self, prefix: &str, into: &Path) -> Result<usize, StoreError> {
        let base = prefix.trim_matches('/');
        let mut copied = 0;
        for meta in self.list(base).await? {
            let key = meta.location.to_string();
            let relative =
                if base.is_empty() { key.as_str() } else { key.strip_prefix(&format!("{base}/")).unwrap_or(&key) };
            if relative.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
                return Err(StoreError::Escapes { location: self.url(&key) });
            }
            let path = into.join(relative);
            let parent = path.parent().unwrap_or(into);
            tokio::fs::create_dir_all(parent).await.map_err(|source| StoreError::Local {
                action: "make",
                path: parent.to_owned(),
                source,
            })?;
            let got = self.store.get(&meta.location).await.map_err(|e| self.fail(&key, e))?;
            let bytes = got.bytes().await.map_err(|e| self.fail(&key, e))?;
            tokio::fs::write(&path, &bytes).await.map_err(|source| StoreError::Local {
                action: "write",
                path: path.clone(),
                source,
            })?;
            copied += 1;
        }
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(parse_url("s3://b/plur/x.sql.gz").unwrap(), ("b".into(), "plur/x.sql.gz".into()));
        assert_eq!(parse_url("s3://b/plur/").unwrap(), ("b".into(), "plur/".into()));
        assert_eq!(parse_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert_eq!(parse_url("https://b"), Err(S3UrlError::NotS3 { url: "https://b".into() }));
        assert_eq!(parse_url("s3:///k").unwrap_err().to_string(), "`s3:///k` names no bucket");
        assert!(is_url("s3://b/p/") && !is_url("reports/s3:/x"));
    }

    /// A conditional write takes when the object is as read (or, asked to create it, when there
    /// is none), and is refused as a conflict when another writer came between.
    #[tokio::test]
    async fn a_conditional_write_refuses_what_another_writer_changed() {
        let bucket = Bucket::over(Arc::new(InMemory::new()), "fleet");
        assert!(bucket.read("s/history.jsonl").await.unwrap().is_none());
        bucket.write_if("s/history.jsonl", b"a\n".to_vec(), None).await.unwrap();
        let created = bucket.write_if("s/history.jsonl", b"b\n".to_vec(), None).await.unwrap_err();
        assert!(matches!(created, StoreError::Conflict { .. }), "{created}");
        let (bytes, read) = bucket.read("s/history.jsonl").await.unwrap().unwrap();
        assert_eq!(bytes, b"a\n");
        bucket.write("s/history.jsonl", b"a\nother\n".to_vec()).await.unwrap();
        let stale = bucket.write_if("s/history.jsonl", b"a\nmine\n".to_vec(), Some(read)).await.unwrap_err();
        assert_eq!(stale.to_string(), "s3://fleet/s/history.jsonl was written by someone else since it was read");
        let (bytes, read) = bucket.read("s/history.jsonl").await.unwrap().unwrap();
        bucket.write_if("s/history.jsonl", [bytes, b"mine\n".to_vec()].concat(), Some(read)).await.unwrap();
        assert_eq!(bucket.read("s/history.jsonl").await.unwrap().unwrap().0, b"a\nother\nmine\n");
    }

    /// A folder goes up file by file with its bytes, the last one named last; a prefix comes
    /// down as the same files.
    #[tokio::test]
    async fn a_folder_goes_up_and_comes_down_unchanged() {
        let bucket = Bucket::over(Arc::new(InMemory::new()), "fleet");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("drill.json"), "{}").unwrap();
        std::fs::write(dir.path().join("report.md"), [0xff_u8, b'\n', b'x']).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(bucket.upload_folder(dir.path(), "p/s/t/", "drill.json").await.unwrap(), 2);
        let keys: Vec<String> = bucket.list("p").await.unwrap().iter().map(|m| m.location.to_string()).collect();
        assert_eq!(keys, ["p/s/t/drill.json", "p/s/t/report.md"]);
        let back = tempfile::tempdir().unwrap();
        assert_eq!(bucket.download_prefix("p/", back.path()).await.unwrap(), 2);
        assert_eq!(std::fs::read(back.path().join("s/t/report.md")).unwrap(), [0xff_u8, b'\n', b'x']);
        assert_eq!(bucket.url("p/s/"), "s3://fleet/p/s/");
    }
}
