//! `MANIFEST.sha256`: the digest of every report file of a drill, in `sha256sum` format, so an
//! auditor can confirm nothing was edited after the drill (`sha256sum -c MANIFEST.sha256`, or
//! `pgdrill report verify DIR`). The history keeps the manifest's own digest.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The manifest's file name.
pub(crate) const NAME: &str = "MANIFEST.sha256";

fn digest(path: &Path) -> std::io::Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}

/// Writes the manifest of `files` (names inside `dir`); returns its own sha256.
pub(crate) fn write(dir: &Path, files: &[&str]) -> std::io::Result<String> {
    let mut text = String::new();
    for name in files {
        text.push_str(&format!("{}  {name}\n", digest(&dir.join(name))?));
    }
    std::fs::write(dir.join(NAME), &text)?;
    Ok(hex::encode(Sha256::digest(text.as_bytes())))
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{line}` is not a manifest line")]
    Malformed { line: String },
    #[error("the manifest lists no file")]
    Empty,
}

/// The manifest of `dir`: each file's name and the sha256 it had when the drill wrote it.
pub(crate) fn entries(dir: &Path) -> Result<Vec<(String, String)>, ManifestError> {
    let path = dir.join(NAME);
    let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Read { path, source })?;
    let mut entries = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (want, name) = line.split_once("  ").ok_or_else(|| ManifestError::Malformed { line: line.to_owned() })?;
        if name.contains('/') || name.contains("..") {
            return Err(ManifestError::Malformed { line: line.to_owned() });
        }
        entries.push((name.to_owned(), want.to_owned()));
    }
    if entries.is_empty() {
        return Err(ManifestError::Empty);
    }
    Ok(entries)
}

/// The sha256 of the file at `path`, in hex.
pub(crate) fn sha256_of(path: &Path) -> std::io::Result<String> {
    digest(path)
}
