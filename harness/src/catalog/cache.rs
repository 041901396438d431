//! The references of the catalog audit, kept per image: a fresh cluster's fingerprint, and its
//! extensions' members as `CREATE EXTENSION` makes them, each taken once on a cluster no backup
//! touched and read back by every later drill of that image.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CatalogError;
use super::derived_sql::{EXTENSIONS_SQL, MEMBERS_SQL};
use super::sql::{COLLATIONS_SQL, fingerprint_sql};

/// Where the reference fingerprint of a fresh cluster of image `image_id` is kept:
/// `$XDG_CACHE_HOME/pgdrill/catalogs/<image id>-<query>.json`, else under `~/.cache`.
pub(crate) fn cache_path(image_id: &str) -> PathBuf {
    let query = format!("{}\n{}\n{COLLATIONS_SQL}", fingerprint_sql(false), fingerprint_sql(true));
    kept("catalogs", image_id, &query)
}

/// Where the extensions' members a fresh cluster of image `image_id` makes are kept:
/// `$XDG_CACHE_HOME/pgdrill/members/<image id>-<query>.json`, else under `~/.cache`.
pub(crate) fn members_path(image_id: &str) -> PathBuf {
    kept("members", image_id, &format!("{MEMBERS_SQL}\n{EXTENSIONS_SQL}"))
}

/// The file of `kind` for `image_id`, keyed by what the reference reads too: one taken by another
/// version of the query would name rows differently and fail every drill.
fn kept(kind: &str, image_id: &str, query: &str) -> PathBuf {
    let id: String = image_id.trim_start_matches("sha256:").chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let format = {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(query)[..6])
    };
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("pgdrill")
        .join(kind)
        .join(format!("{id}-{format}.json"))
}

/// The cached reference at `path`, if there is one.
pub(crate) fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, CatalogError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| CatalogError::CacheJson { path: path.to_owned(), source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CatalogError::Cache { path: path.to_owned(), source }),
    }
}

/// Keeps `reference` at `path` (written aside, then renamed: two drills may race).
pub(crate) fn save<T: Serialize>(path: &Path, reference: &T) -> Result<(), CatalogError> {
    let fail = |source: std::io::Error| CatalogError::Cache { path: path.to_owned(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let aside = dir.join(format!(".{}-{:08x}", std::process::id(), rand::random::<u32>()));
    let json =
        serde_json::to_vec(reference).map_err(|source| CatalogError::CacheJson { path: path.to_owned(), source })?;
    std::fs::write(&aside, json).map_err(fail)?;
    std::fs::rename(&aside, path).map_err(|e| {
        let _ = std::fs::remove_file(&aside);
        fail(e)
    })
}
