//! Backups in S3 or an S3-compatible store (MinIO, Ceph, R2, ...), through object_store: a key,
//! or the newest object under a prefix. Credentials come from the environment (the usual
//! `AWS_*` variables, or variables the scenario names); a custom endpoint serves S3-compatible
//! stores.

use std::path::Path;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use super::newest::{Candidate, NamePattern, newest};
use super::{Backup, Progress, SourceError};
use crate::secret::{Redactor, Secret};

#[derive(Debug, Clone)]
pub struct S3Spec {
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
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }
}

/// Parses `s3://bucket/key` into (bucket, key).
pub(crate) fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| format!("`{url}` is not an s3:// URL"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("`{url}` names no bucket"));
    }
    Ok((bucket.to_owned(), key.to_owned()))
}

fn env_secret(name: &str) -> Result<Secret, SourceError> {
    std::env::var(name).map(Secret::new).map_err(|_| SourceError::MissingSecret { variable: name.to_owned() })
}

/// Downloads the object (or the newest under the prefix) into `dir`.
pub(crate) async fn download(
    spec: &S3Spec,
    dir: &Path,
    redactor: &Redactor,
    progress: Progress<'_>,
) -> Result<Backup, SourceError> {
    let retry = object_store::RetryConfig { max_retries: spec.retries as usize, ..Default::default() };
    crate::tls::install();
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&spec.bucket).with_retry(retry);
    if let Some(region) = &spec.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &spec.endpoint {
        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(var) = &spec.access_key_env {
        let key = env_secret(var)?;
        redactor.register(&key);
        builder = builder.with_access_key_id(key.expose());
    }
    if let Some(var) = &spec.secret_key_env {
        let key = env_secret(var)?;
        redactor.register(&key);
        builder = builder.with_secret_access_key(key.expose());
    }
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Ok(value) = std::env::var(var) {
            redactor.register(&Secret::new(value));
        }
    }
    let location = spec.location();
    let store_err = |e: object_store::Error| classify(&location, e, redactor);
    let store = builder.build().map_err(store_err)?;

    let (key, previous) = if spec.is_prefix() {
        let prefix = (!spec.key.is_empty()).then(|| ObjectPath::from(spec.key.trim_end_matches('/')));
        let mut listing = store.list(prefix.as_ref());
        let mut candidates = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(store_err)?;
            let name = meta.location.filename().unwrap_or_default().to_owned();
            candidates.push((
                meta.location.to_string(),
                Candidate {
                    name,
                    size: meta.size,
                    modified: OffsetDateTime::from_unix_timestamp(meta.last_modified.timestamp()).ok(),
                    date: None,
                },
            ));
        }
        let keys: std::collections::HashMap<String, String> =
            candidates.iter().map(|(k, c)| (c.name.clone(), k.clone())).collect();
        let (chosen, previous) = newest(candidates.into_iter().map(|(_, c)| c).collect(), spec.pattern.as_ref());
        let chosen = chosen.ok_or_else(|| SourceError::NoBackup { location: location.clone() })?;
        (keys[&chosen.name].clone(), previous)
    } else {
        (spec.key.clone(), None)
    };

    let object = store.get(&ObjectPath::from(key.as_str())).await.map_err(store_err)?;
    let size = object.meta.size;
    let modified = OffsetDateTime::from_unix_timestamp(object.meta.last_modified.timestamp()).ok();
    let name = key.rsplit('/').next().unwrap_or("backup").to_owned();
    let path = dir.join(format!("s3-{name}"));
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|source| SourceError::Unreadable { path: path.display().to_string(), source })?;
    let mut stream = object.into_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let bytes = chunk.map_err(store_err)?;
        file.write_all(&bytes)
            .await
            .map_err(|source| SourceError::Unreadable { path: path.display().to_string(), source })?;
        received += bytes.len() as u64;
        progress(received, Some(size));
    }
    file.flush().await.map_err(|source| SourceError::Unreadable { path: path.display().to_string(), source })?;
    if received != size {
        return Err(SourceError::GaveUp {
            location: format!("s3://{}/{key}", spec.bucket),
            attempts: 1,
            last: format!("the object store sent {received} of {size} bytes"),
        });
    }
    Ok(Backup {
        location: format!("s3://{}/{key}", spec.bucket),
        path,
        size,
        modified,
        previous: previous.map(|p| (p.name, p.size)),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(parse_url("s3://b/plur/x.sql.gz").unwrap(), ("b".into(), "plur/x.sql.gz".into()));
        assert_eq!(parse_url("s3://b/plur/").unwrap(), ("b".into(), "plur/".into()));
        assert_eq!(parse_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert!(parse_url("https://b").is_err());
        assert!(parse_url("s3:///k").is_err());
    }
}
