//! Verified snapshots: a drill that passed keeps the cluster it restored (shut down cleanly
//! right after the restore, before any migration, its data checksums verified where it has
//! them), so that later drills of the same restore start from a private copy-on-write clone of
//! it in about a second instead of restoring again.
//!
//! A snapshot is keyed by what makes it that restore ([`Key`]): the backup's sha256, the image
//! the target ran (by id), the restore's options and the database restored into. It is served
//! for that key only, never once its files changed ([`crate::tree::fingerprint`], checked at
//! every use), and carries the record and report of the drill that proved it.
//!
//! The store is a folder of this machine (`$PGDRILL_SNAPSHOTS`, else
//! `$XDG_CACHE_HOME/pgdrill/snapshots`, else `~/.cache/pgdrill/snapshots`; 0700), within a
//! budget (`$PGDRILL_SNAPSHOT_BUDGET`, 20 GB by default): a new snapshot evicts the least
//! recently used ones that no drill is using until it fits.
//!
//! ```text
//! <store>/<id>/snapshot.json   what it is (Meta)
//! <store>/<id>/data/           the cluster, read by clones only
//! <store>/<id>/drill.json, report.md   the drill that proved it
//! <store>/<id>/lock            held shared by each drill that clones it, exclusively to remove it
//! <store>/.pending-<drill>/    a snapshot being made
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::units::human_size;

pub(crate) mod digests;

/// The schema of `snapshot.json`.
const SCHEMA: &str = "pgdrill/snapshot/v1";
/// The budget when `PGDRILL_SNAPSHOT_BUDGET` does not say.
const DEFAULT_BUDGET: u64 = 20_000_000_000;
/// What the snapshot holds of migrations: none, each clone runs its scenario's own.
pub(crate) const MIGRATIONS: &str = "none: taken before migrations; each clone runs its scenario's own";

/// What makes a restore that restore: a snapshot is served for an equal key only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Key {
    /// The backup's sha256, as verify read it.
    pub backup_sha256: String,
    /// The target's image, by id (a rebuilt image is another image).
    pub image_id: String,
    /// The restore's options, canonical: the database restored into, the roles made first, the
    /// globals file's sha256.
    pub restore: String,
    /// The migrations applied to the snapshot ([`MIGRATIONS`]).
    pub migrations: String,
}

impl Key {
    /// The snapshot's name in the store: the key's digest, short.
    pub(crate) fn id(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&canonical))[..16].to_owned()
    }
}

/// What a snapshot is, as `snapshot.json` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub schema: String,
    pub id: String,
    pub key: Key,
    /// The drill whose restore this is, and which passed.
    pub drill_id: String,
    pub scenario: String,
    #[serde(with = "time::serde::rfc3339")]
    pub made_at: OffsetDateTime,
    /// Where the backup was read from.
    pub backup_location: String,
    /// The data directory's size on disk.
    pub size_bytes: u64,
    /// [`crate::tree::fingerprint`] of `data/` when the snapshot was made.
    pub fingerprint: String,
    /// How its data checksums were verified, in words.
    pub checksums: String,
    /// The restore's own results that a clone's checks read as a restore's.
    pub restored: serde_json::Value,
}

/// A snapshot in the store.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub meta: Meta,
    pub dir: PathBuf,
    /// When a drill last cloned it (or made it).
    pub last_used: OffsetDateTime,
    /// Whether a drill holds it now.
    pub in_use: bool,
}

/// A snapshot a drill clones: its data stays as it is while the drill holds this.
#[derive(Debug)]
pub(crate) struct Held {
    pub meta: Meta,
    pub dir: PathBuf,
    /// The shared lock on `lock`, released when dropped.
    _lock: File,
}

impl Held {
    /// The cluster, which clones read and never write.
    pub(crate) fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
}

/// A snapshot being made: `.pending-<drill>` until [`Store::commit`].
#[derive(Debug)]
pub(crate) struct Pending {
    pub dir: PathBuf,
}

impl Pending {
    /// Where the cluster is copied to.
    pub(crate) fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Removes what was made (the drill failed, or did not make its snapshot).
    pub(crate) async fn discard(self) {
        remove_tree(&self.dir).await;
    }
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    #[error("no folder for snapshots: neither PGDRILL_SNAPSHOTS, XDG_CACHE_HOME nor HOME is set")]
    NoFolder,
    #[error("`PGDRILL_SNAPSHOT_BUDGET={0}` is not a size (for example 20GB or 500MB)")]
    Budget(String),
    #[error("snapshot store `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no snapshot `{0}` in the store (`pgdrill snapshots` lists them)")]
    NotFound(String),
    #[error("snapshot `{0}` is in use by a drill: removed once it ends")]
    InUse(String),
    #[error(
        "the snapshot takes {size}, over the store's budget of {budget} even with every unused snapshot evicted (hint: set PGDRILL_SNAPSHOT_BUDGET)"
    )]
    TooBig { size: String, budget: String },
}

/// Why a snapshot that is in the store is not served: the drill restores instead, and says
/// this. Each cause is kept as the source, and shown where the drill's progress line always
/// showed it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// Its `snapshot.json` is not one.
    #[error("snapshot `{id}` cannot be read ({source}): not used")]
    Meta {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    /// Its key is not the one asked for (another schema, or a digest that collides).
    #[error("snapshot `{id}` is of another restore: not used")]
    OtherRestore { id: String },
    /// Its lock file cannot be opened.
    #[error("snapshot `{id}`: {source}")]
    Lock {
        id: String,
        #[source]
        source: std::io::Error,
    },
    /// Its lock cannot be taken.
    #[error("snapshot `{id}` cannot be locked: {source}")]
    Locked {
        id: String,
        #[source]
        source: std::io::Error,
    },
    /// Its files are not those it was made with.
    #[error(
        "snapshot `{id}` changed since drill {drill_id} made it: not used (remove it: `pgdrill snapshots remove {id}`)"
    )]
    Changed { id: String, drill_id: String },
    /// Its files cannot be read to compare them.
    #[error("snapshot `{id}` cannot be read ({source}): not used")]
    Data {
        id: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { path: path.to_owned(), source }
}

/// Where snapshots live, and how much they may take.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub dir: PathBuf,
    pub budget: u64,
}

impl Store {
    /// The store the environment names (see the module's documentation), made if missing.
    pub(crate) fn open() -> Result<Store, SnapshotError> {
        let env = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = env("PGDRILL_SNAPSHOTS")
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("pgdrill/snapshots")))
            .or_else(|| env("HOME").map(|h| h.join(".cache/pgdrill/snapshots")))
            .ok_or(SnapshotError::NoFolder)?;
        let budget = match std::env::var("PGDRILL_SNAPSHOT_BUDGET") {
            Ok(text) if !text.trim().is_empty() => {
                crate::disk::parse(text.trim()).ok_or_else(|| SnapshotError::Budget(text.clone()))?
            }
            _ => DEFAULT_BUDGET,
        };
        Store::at(dir, budget)
    }

    /// The store in `dir`, made if missing (0700: only this user reaches the clusters).
    pub(crate) fn at(dir: PathBuf, budget: u64) -> Result<Store, SnapshotError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io(&dir))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        Ok(Store { dir, budget })
    }

    /// The snapshot of `key`, held for a clone, when there is one whose files are as they were
    /// made. `Err` says why one that is there is not served.
    pub(crate) fn find(&self, key: &Key) -> Result<Option<Held>, ServeError> {
        let dir = self.dir.join(key.id());
        let Ok(text) = std::fs::read_to_string(dir.join("snapshot.json")) else { return Ok(None) };
        let meta: Meta = serde_json::from_str(&text).map_err(|source| ServeError::Meta { id: key.id(), source })?;
        if meta.schema != SCHEMA || meta.key != *key {
            return Err(ServeError::OtherRestore { id: key.id() });
        }
        let lock = File::open(dir.join("lock")).map_err(|source| ServeError::Lock { id: key.id(), source })?;
        lock.lock_shared().map_err(|source| ServeError::Locked { id: key.id(), source })?;
        match crate::tree::fingerprint(&dir.join("data")) {
            Ok(now) if now == meta.fingerprint => {}
            Ok(_) => return Err(ServeError::Changed { id: meta.id, drill_id: meta.drill_id }),
            Err(source) => return Err(ServeError::Data { id: meta.id, source }),
        }
        let _ = File::create(dir.join("used"));
        Ok(Some(Held { meta, dir, _lock: lock }))
    }

    /// Starts a snapshot for drill `drill_id`: an empty folder in the store.
    pub(crate) fn begin(&self, drill_id: &str) -> Result<Pending, SnapshotError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.dir.join(format!(".pending-{drill_id}"));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(io(&dir))?;
        std::fs::write(dir.join("owner"), std::process::id().to_string()).map_err(io(&dir))?;
        Ok(Pending { dir })
    }

    /// Makes `pending` a snapshot, with the files of the drill that proved it (`proof`: its
    /// `drill.json` and `report.md`), after evicting what it needs room for. Returns the ids
    /// evicted. A snapshot of the same key already there is kept, and `pending` discarded.
    pub(crate) async fn commit(
        &self,
        pending: Pending,
        mut meta: Meta,
        proof: &[PathBuf],
    ) -> Result<Vec<String>, SnapshotError> {
        let data = pending.data();
        let measured = tokio::task::spawn_blocking(move || {
            (crate::disk::usage(&data), crate::tree::fingerprint(&data).map_err(io(&data)))
        })
        .await
        .map_err(|e| SnapshotError::Io { path: pending.dir.clone(), source: std::io::Error::other(e) })?;
        meta.size_bytes = measured.0;
        meta.fingerprint = match measured.1 {
            Ok(fingerprint) => fingerprint,
            Err(e) => {
                pending.discard().await;
                return Err(e);
            }
        };
        meta.schema = SCHEMA.into();
        meta.id = meta.key.id();
        let evicted = match self.make_room(meta.size_bytes, &meta.id).await {
            Ok(evicted) => evicted,
            Err(e) => {
                pending.discard().await;
                return Err(e);
            }
        };
        for file in proof {
            if let Some(name) = file.file_name() {
                std::fs::copy(file, pending.dir.join(name)).map_err(io(file))?;
            }
        }
        let json = serde_json::to_string_pretty(&meta).unwrap_or_default();
        std::fs::write(pending.dir.join("snapshot.json"), json).map_err(io(&pending.dir))?;
        File::create(pending.dir.join("lock")).map_err(io(&pending.dir))?;
        File::create(pending.dir.join("used")).map_err(io(&pending.dir))?;
        let _ = std::fs::remove_file(pending.dir.join("owner"));
        let done = self.dir.join(&meta.id);
        if std::fs::rename(&pending.dir, &done).is_err() {
            // Another drill made the same snapshot first: its stays.
            pending.discard().await;
        }
        Ok(evicted)
    }

    /// Evicts the least recently used snapshots no drill holds until `size` more fits the
    /// budget.
    async fn make_room(&self, size: u64, keep: &str) -> Result<Vec<String>, SnapshotError> {
        let mut listed: Vec<Listed> = self.list()?.into_iter().filter(|l| l.meta.id != keep).collect();
        listed.sort_by_key(|l| l.last_used);
        let mut used: u64 = listed.iter().map(|l| l.meta.size_bytes).sum();
        let mut evicted = Vec::new();
        for old in &listed {
            if used + size <= self.budget {
                break;
            }
            if self.remove(&old.meta.id).await.is_ok() {
                used -= old.meta.size_bytes;
                evicted.push(old.meta.id.clone());
            }
        }
        if used + size > self.budget {
            return Err(SnapshotError::TooBig { size: human_size(size), budget: human_size(self.budget) });
        }
        Ok(evicted)
    }

    /// The snapshots in the store, most recently used first.
    pub(crate) fn list(&self) -> Result<Vec<Listed>, SnapshotError> {
        let mut listed = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))?.flatten() {
            let dir = entry.path();
            let Ok(text) = std::fs::read_to_string(dir.join("snapshot.json")) else { continue };
            let Ok(meta) = serde_json::from_str::<Meta>(&text) else { continue };
            let last_used = std::fs::metadata(dir.join("used"))
                .and_then(|m| m.modified())
                .map(OffsetDateTime::from)
                .unwrap_or(meta.made_at);
            let in_use = File::open(dir.join("lock")).is_ok_and(|lock| lock.try_lock().is_err());
            listed.push(Listed { meta, dir, last_used, in_use });
        }
        listed.sort_by_key(|l| std::cmp::Reverse(l.last_used));
        Ok(listed)
    }

    /// Removes snapshot `id` (or the one whose id starts so), unless a drill holds it.
    pub(crate) async fn remove(&self, id: &str) -> Result<String, SnapshotError> {
        let found = self.list()?.into_iter().find(|l| l.meta.id == id || (id.len() >= 4 && l.meta.id.starts_with(id)));
        let Some(found) = found else { return Err(SnapshotError::NotFound(id.to_owned())) };
        let lock = File::open(found.dir.join("lock")).map_err(io(&found.dir))?;
        if lock.try_lock().is_err() {
            return Err(SnapshotError::InUse(found.meta.id));
        }
        // Out of the store's sight first, so that no drill finds it half removed.
        let gone = self.dir.join(format!(".removing-{}", found.meta.id));
        std::fs::rename(&found.dir, &gone).map_err(io(&found.dir))?;
        drop(lock);
        remove_tree(&gone).await;
        Ok(found.meta.id)
    }

    /// Removes what drills that were killed left: snapshots they were making, and removals cut
    /// off. Returns the folders removed (listed only, when `dry_run`).
    pub(crate) async fn sweep(&self, dry_run: bool) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return found };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = if name.starts_with(".removing-") {
                true
            } else if name.starts_with(".pending-") {
                let pid = std::fs::read_to_string(entry.path().join("owner")).unwrap_or_default();
                pid.trim().parse::<u32>().is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            } else {
                false
            };
            if stale {
                if !dry_run {
                    remove_tree(&entry.path()).await;
                }
                found.push(entry.path());
            }
        }
        found
    }
}

/// Removes a folder of the store, whoever's the files in it are (the server's user's, when
/// pgdrill runs as root).
async fn remove_tree(dir: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove `{}`: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests;
