//! The reference of the catalog audit, kept per image: a fresh cluster's fingerprint, taken once
//! and read back by every later drill of that image.

use std::path::{Path, PathBuf};

use super::sql::{COLLATIONS_SQL, fingerprint_sql};
use super::{CatalogError, Fingerprint};

/// Where the reference fingerprint of a fresh cluster of image `image_id` is kept:
/// `$XDG_CACHE_HOME/pgdrill/catalogs/<image id>.json`, else under `~/.cache`.
pub(crate) fn cache_path(image_id: &str) -> PathBuf {
    let id: String = image_id.trim_start_matches("sha256:").chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    // Keyed by what the fingerprint reads too: a reference taken by another version of the
    // query would name rows differently and fail every physical backup.
    let format = {
        use sha2::Digest;
        let digest =
            sha2::Sha256::digest(format!("{}\n{}\n{COLLATIONS_SQL}", fingerprint_sql(false), fingerprint_sql(true)));
        hex::encode(&digest[..6])
    };
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("pgdrill/catalogs")
        .join(format!("{id}-{format}.json"))
}

/// The cached reference at `path`, if there is one.
pub(crate) fn load(path: &Path) -> Result<Option<Fingerprint>, CatalogError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| CatalogError::CacheJson { path: path.to_owned(), source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CatalogError::Cache { path: path.to_owned(), source }),
    }
}

/// Keeps `fingerprint` at `path` (written aside, then renamed: two drills may race).
pub(crate) fn save(path: &Path, fingerprint: &Fingerprint) -> Result<(), CatalogError> {
    let fail = |source: std::io::Error| CatalogError::Cache { path: path.to_owned(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let aside = dir.join(format!(".{}-{:08x}", std::process::id(), rand::random::<u32>()));
    let json =
        serde_json::to_vec(fingerprint).map_err(|source| CatalogError::CacheJson { path: path.to_owned(), source })?;
    std::fs::write(&aside, json).map_err(fail)?;
    std::fs::rename(&aside, path).map_err(|e| {
        let _ = std::fs::remove_file(&aside);
        fail(e)
    })
}
