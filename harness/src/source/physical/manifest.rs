//! `backup_manifest`: what pg_basebackup (13 and later) says the backup holds. pgdrill reads
//! only what it needs before anything starts, the system the backup belongs to (version 2, from
//! PostgreSQL 17) and the WAL range the backup needs; `pg_verifybackup` checks the rest.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What pgdrill reads of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub version: u32,
    /// `System-Identifier` (version 2).
    pub system_id: Option<u64>,
    /// The WAL the backup needs to be consistent: its timeline, start and end LSNs.
    pub wal_range: Option<(u32, u64, u64)>,
    pub files: usize,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "PostgreSQL-Backup-Manifest-Version")]
    version: u32,
    #[serde(rename = "System-Identifier")]
    system_id: Option<u64>,
    #[serde(rename = "WAL-Ranges", default)]
    wal_ranges: Vec<RawRange>,
    #[serde(rename = "Files", default)]
    files: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "Timeline")]
    timeline: u32,
    #[serde(rename = "Start-LSN")]
    start: String,
    #[serde(rename = "End-LSN")]
    end: String,
}

/// A file a manifest lists: its path in the data directory, its size, and its checksum (the
/// algorithm's name as the manifest gives it and the digest in hex) unless it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub path: String,
    pub size: u64,
    pub checksum: Option<(String, String)>,
}

#[derive(Deserialize)]
struct RawFiles {
    #[serde(rename = "Files", default)]
    files: Vec<RawFile>,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(rename = "Path")]
    path: Option<String>,
    #[serde(rename = "Encoded-Path")]
    encoded: Option<String>,
    #[serde(rename = "Size", default)]
    size: u64,
    #[serde(rename = "Checksum-Algorithm")]
    algorithm: Option<String>,
    #[serde(rename = "Checksum")]
    checksum: Option<String>,
}

/// Why a `backup_manifest` cannot be read, or followed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    /// The text is not a manifest's JSON.
    #[error("not a backup manifest")]
    NotJson(#[source] serde_json::Error),
    /// A path given hex-encoded: pgdrill follows UTF-8 paths only.
    #[error("it lists a path that is not UTF-8 (hex `{encoded}`)")]
    NotUtf8 { encoded: String },
    /// A file with no path at all.
    #[error("it lists a file without a path")]
    NoPath,
    /// The file cannot be opened.
    #[error("cannot read `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a manifest's JSON.
    #[error("`{}` is not a backup manifest", path.display())]
    NotManifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A WAL range whose LSN is not one.
    #[error("`{}`: `{text}` is not an LSN", path.display())]
    Lsn { path: PathBuf, text: String },
}

/// The files the manifest text lists (a path that is not UTF-8, given hex-encoded, is refused).
pub(crate) fn listed(text: &str) -> Result<Vec<Listed>, ManifestError> {
    let raw: RawFiles = serde_json::from_str(text).map_err(ManifestError::NotJson)?;
    raw.files
        .into_iter()
        .map(|file| match (file.path, file.encoded) {
            (Some(path), _) => {
                let checksum = file.algorithm.zip(file.checksum).filter(|(algorithm, _)| algorithm != "NONE");
                Ok(Listed { path, size: file.size, checksum })
            }
            (None, Some(encoded)) => Err(ManifestError::NotUtf8 { encoded }),
            (None, None) => Err(ManifestError::NoPath),
        })
        .collect()
}

/// Reads the manifest at `path`.
pub(crate) fn read(path: &Path) -> Result<Manifest, ManifestError> {
    let file = std::fs::File::open(path).map_err(|source| ManifestError::Open { path: path.to_owned(), source })?;
    let raw: Raw = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|source| ManifestError::NotManifest { path: path.to_owned(), source })?;
    let lsn = |text: &str| {
        super::wal::parse_lsn(text).ok_or_else(|| ManifestError::Lsn { path: path.to_owned(), text: text.to_owned() })
    };
    // The last range is the timeline the backup ends on (a backup taken on a standby that was
    // promoted meanwhile spans two).
    let wal_range = match raw.wal_ranges.last() {
        Some(range) => Some((range.timeline, lsn(&range.start)?, lsn(&range.end)?)),
        None => None,
    };
    Ok(Manifest { version: raw.version, system_id: raw.system_id, wal_range, files: raw.files.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_says_its_system_and_the_wal_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup_manifest");
        std::fs::write(
            &path,
            r#"{ "PostgreSQL-Backup-Manifest-Version": 2,
"System-Identifier": 7441234567890123456,
"Files": [
{ "Path": "backup_label", "Size": 227, "Last-Modified": "2026-11-22 23:30:05 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "c1d3b2a4" },
{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-11-22 23:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "0badf00d" }
],
"WAL-Ranges": [
{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000120" }
],
"Manifest-Checksum": "00"}"#,
        )
        .unwrap();
        let manifest = read(&path).unwrap();
        assert_eq!(manifest.version, 2);
        assert_eq!(manifest.system_id, Some(7_441_234_567_890_123_456));
        assert_eq!(manifest.wal_range, Some((1, 0x0200_0028, 0x0200_0120)));
        assert_eq!(manifest.files, 2);
        std::fs::write(&path, "<html>").unwrap();
        let error = read(&path).unwrap_err();
        assert!(matches!(error, ManifestError::NotManifest { .. }), "{error}");
        assert!(crate::error::error_chain(&error).contains("is not a backup manifest: expected value"), "{error}");
        let files = listed(r#"{"Files": [{"Path": "PG_VERSION", "Size": 3}, {"Path": "base/1/1259", "Size": 8192}]}"#);
        assert_eq!(files.unwrap()[1], Listed { path: "base/1/1259".into(), size: 8192, checksum: None });
        let summed = listed(
            r#"{"Files": [{"Path": "PG_VERSION", "Size": 3, "Checksum-Algorithm": "CRC32C", "Checksum": "0badf00d"},
            {"Path": "global/1262", "Size": 0, "Checksum-Algorithm": "NONE", "Checksum": ""}]}"#,
        )
        .unwrap();
        assert_eq!(summed[0].checksum, Some(("CRC32C".into(), "0badf00d".into())));
        assert_eq!(summed[1].checksum, None, "a file without a checksum");
        let encoded = listed(r#"{"Files": [{"Encoded-Path": "ff", "Size": 3}]}"#).unwrap_err();
        assert!(matches!(&encoded, ManifestError::NotUtf8 { encoded } if encoded == "ff"), "{encoded}");
    }
}
