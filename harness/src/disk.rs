//! The target's disk limit: sizes, the room a filesystem has (statvfs), the default limit that
//! leaves the host's filesystem room, and the watchdog that measures the target's data while a
//! drill runs. A leaf.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::budget::Share;
use crate::units::human_size;

const GIB: u64 = 1024 * 1024 * 1024;

/// How often the watchdog measures the target's data.
pub(crate) const WATCH_EVERY: Duration = Duration::from_millis(500);

/// A disk limit, and how the reports name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiskLimit {
    pub bytes: u64,
    /// As the scenario wrote it (`64MB`), or how the default was reached.
    pub shown: String,
}

/// The size of a filesystem and what is free on it (for an unprivileged user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Space {
    pub total: u64,
    pub free: u64,
}

/// The room on the filesystem holding `path`.
pub(crate) fn space(path: &Path) -> std::io::Result<Space> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(Space { total: stat.f_blocks * stat.f_frsize, free: stat.f_bavail * stat.f_frsize })
}

/// What the host keeps for itself: a tenth of the filesystem, at least 1 GB and at most 4 GB.
pub(crate) fn reserve(total: u64) -> u64 {
    (total / 10).clamp(GIB, 4 * GIB)
}

/// The default limit: what is free on the filesystem less the host's reserve; none when the
/// filesystem has no room beyond its reserve.
pub(crate) fn default_limit(space: Space) -> Option<DiskLimit> {
    let keep = reserve(space.total);
    let bytes = space.free.checked_sub(keep).filter(|&b| b > 0)?;
    Some(DiskLimit {
        bytes,
        shown: format!(
            "{} (the {} free on the filesystem less {} kept for the host; set `[target] disk`)",
            human_size(bytes),
            human_size(space.free),
            human_size(keep)
        ),
    })
}

/// The limit for a target whose data lives under `dir`: the scenario's, else the default, no
/// more than the drill's share when drills run at once (`--jobs`).
pub(crate) fn limit_for(given: Option<&DiskLimit>, dir: &Path, share: Option<&Share>) -> Result<DiskLimit, DiskError> {
    if let Some(given) = given {
        return Ok(given.clone());
    }
    let room = space(dir).map_err(|source| DiskError::Space { dir: dir.to_owned(), source })?;
    let limit = default_limit(room).ok_or(DiskError::NoRoom {
        dir: dir.to_owned(),
        free: human_size(room.free),
        reserve: human_size(reserve(room.total)),
    })?;
    Ok(shared(limit, share))
}

/// The default `limit` within the drill's `share`: the share, or the room left when the
/// filesystem has less now than the share it was divided into.
fn shared(limit: DiskLimit, share: Option<&Share>) -> DiskLimit {
    match share {
        Some(share) if share.amounts.disk <= limit.bytes => DiskLimit {
            bytes: share.amounts.disk,
            shown: format!("{} ({})", human_size(share.amounts.disk), share.says_disk()),
        },
        Some(share) => DiskLimit {
            shown: format!("{}, less than its share of {}", limit.shown, human_size(share.amounts.disk)),
            ..limit
        },
        None => limit,
    }
}

/// Parses a size as the scenario writes it (`20GB`, `512MB`).
pub(crate) fn parse(text: &str) -> Option<u64> {
    crate::pg::parse_size(text).filter(|&b| b > 0)
}

/// The bytes the files under `dir` take on disk (allocated blocks, so that sparse files count
/// as what they hold). What cannot be read (a file removed meanwhile) counts as nothing.
pub(crate) fn usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            total += meta.blocks() * 512;
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    total
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DiskError {
    /// The target's data grew past its limit: the drill stops it.
    #[error(
        "the target's data passed its disk limit of {limit}: {used} in `{}` (hint: raise `[target] disk` if the backup needs more)",
        dir.display()
    )]
    Passed { limit: String, used: String, dir: PathBuf },
    /// The backup cannot fit, known before restoring it.
    #[error(
        "the backup cannot fit in the target's disk limit of {limit}: {what} (hint: raise `[target] disk`, or free room on the filesystem)"
    )]
    WontFit { limit: String, what: String },
    /// The filesystem the target would write to has no room beyond the host's reserve.
    #[error(
        "the filesystem holding `{}` has {free} free, no more than the {reserve} kept for the host: no room for a target (hint: free room, point TMPDIR elsewhere, or set `[target] disk`)",
        dir.display()
    )]
    NoRoom { dir: PathBuf, free: String, reserve: String },
    #[error("cannot read the room on the filesystem holding `{}`", dir.display())]
    Space {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Measures a target's data every [`WATCH_EVERY`] until dropped; [`Watchdog::passed`] ends
/// when the data has grown past the limit.
pub(crate) struct Watchdog {
    task: tokio::task::JoinHandle<()>,
    /// What the data took when it passed the limit.
    passed: tokio::sync::watch::Receiver<Option<u64>>,
    dir: PathBuf,
    limit: DiskLimit,
}

impl Watchdog {
    pub(crate) fn start(dir: PathBuf, limit: DiskLimit) -> Watchdog {
        let (tx, passed) = tokio::sync::watch::channel(None);
        let (watched, bytes) = (dir.clone(), limit.bytes);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let folder = watched.clone();
                let Ok(used) = tokio::task::spawn_blocking(move || usage(&folder)).await else { return };
                if used > bytes {
                    let _ = tx.send(Some(used));
                    // Keeps the sender, so that `passed` never sees the channel closed.
                    std::future::pending::<()>().await;
                }
            }
        });
        Watchdog { task, passed, dir, limit }
    }

    /// Measures the data now: the error when it has passed the limit. A phase that wrote past it
    /// and ended between two of the watchdog's measures fails all the same, as itself (not the
    /// phase after it).
    pub(crate) async fn check_now(&self) -> Option<DiskError> {
        let dir = self.dir.clone();
        let used = tokio::task::spawn_blocking(move || usage(&dir)).await.ok()?;
        (used > self.limit.bytes).then(|| DiskError::Passed {
            limit: self.limit.shown.clone(),
            used: human_size(used),
            dir: self.dir.clone(),
        })
    }

    /// Ends when the data has passed the limit, with the error that says so.
    pub(crate) async fn passed(&self) -> DiskError {
        let mut rx = self.passed.clone();
        // The value is read out before anything else is awaited: its guard is not `Send`.
        let used = rx.wait_for(Option::is_some).await.ok().map(|used| used.unwrap_or_default());
        let Some(used) = used else { return std::future::pending().await };
        DiskError::Passed { limit: self.limit.shown.clone(), used: human_size(used), dir: self.dir.clone() }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_a_tenth_of_the_filesystem_between_1_and_4_gb() {
        assert_eq!(reserve(5 * GIB), GIB, "a small disk keeps 1 GB");
        assert_eq!(reserve(20 * GIB), 2 * GIB);
        assert_eq!(reserve(100 * GIB), 4 * GIB, "a large disk keeps 4 GB");
        let limit = default_limit(Space { total: 20 * GIB, free: 12 * GIB }).unwrap();
        assert_eq!(limit.bytes, 10 * GIB);
        assert!(limit.shown.starts_with("10.0 GiB (the 12.0 GiB free"), "{}", limit.shown);
        assert_eq!(default_limit(Space { total: 100 * GIB, free: 50 * GIB }).unwrap().bytes, 46 * GIB);
        assert_eq!(default_limit(Space { total: 5 * GIB, free: GIB }), None, "nothing beyond the reserve");
        let Err(e) = limit_for(None, Path::new("/nonexistent/pgdrill"), None) else { panic!("no filesystem") };
        assert!(e.to_string().contains("cannot read the room"), "{e}");
    }

    #[test]
    fn with_drills_at_once_the_default_is_the_drills_share_unless_the_filesystem_has_less() {
        let whole = crate::budget::Amounts { memory: 8 * GIB, disk: 10 * GIB, processes: 1024 };
        let share = Share::of(whole, 2, 512);
        let room = default_limit(Space { total: 20 * GIB, free: 12 * GIB }).unwrap();
        let limit = shared(room.clone(), Some(&share));
        assert_eq!(limit.bytes, 5 * GIB);
        assert!(limit.shown.starts_with("5.0 GiB (its share of the 10.0 GiB 2 drills at once"), "{}", limit.shown);
        let tight = default_limit(Space { total: 20 * GIB, free: 5 * GIB }).unwrap();
        let limit = shared(tight, Some(&share));
        assert_eq!(limit.bytes, 3 * GIB, "the room left, when less than the share");
        assert!(limit.shown.ends_with("less than its share of 5.0 GiB"), "{}", limit.shown);
        assert_eq!(shared(room.clone(), None), room, "no share: as without --jobs");
    }

    #[test]
    fn sizes_are_written_as_postgresql_writes_them() {
        assert_eq!(parse("20GB"), Some(20 * GIB));
        assert_eq!(parse("64MB"), Some(64 << 20));
        assert_eq!(parse("0MB"), None);
        assert_eq!(parse("lots"), None);
    }

    #[tokio::test]
    async fn the_watchdog_notices_data_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("base")).unwrap();
        let limit = DiskLimit { bytes: 1 << 20, shown: "1MB".into() };
        let watchdog = Watchdog::start(dir.path().to_owned(), limit);
        let quiet = tokio::time::timeout(Duration::from_millis(1200), watchdog.passed()).await;
        assert!(quiet.is_err(), "under the limit: no alarm");
        assert!(watchdog.check_now().await.is_none());
        std::fs::write(dir.path().join("base/big"), vec![1u8; 3 << 20]).unwrap();
        // A phase that ends right after writing is measured as it ends, not at the next tick.
        let now = watchdog.check_now().await.expect("measured at once");
        assert!(now.to_string().contains("passed its disk limit of 1MB"), "{now}");
        let error = tokio::time::timeout(Duration::from_secs(3), watchdog.passed()).await.expect("an alarm");
        assert!(error.to_string().starts_with("the target's data passed its disk limit of 1MB: 3.0 MiB"), "{error}");
        assert!(usage(dir.path()) >= 3 << 20);
    }
}
