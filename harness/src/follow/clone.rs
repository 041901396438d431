//! A drill of "now": the follower's cluster copied at a consistent point while its replay is
//! paused, for a clone that recovers to exactly that point and is promoted; the follower is
//! never written to and replays on as soon as the copy is made.
//!
//! The copy is of a running standby, made safe by what is paused: replay stops between two
//! records (the point, `pg_last_wal_replay_lsn()`), a `CHECKPOINT` makes the restartpoint a
//! checkpoint record replayed since allows (no other can start while replay is paused), and
//! `pg_wal` keeps the WAL from that restartpoint's redo on (the follower's feed removes nothing
//! before it). A page written out during the copy is rewritten by the clone's replay from that
//! redo, as a base backup's are; `global/pg_control` is copied first, so it never points past a
//! page copied before it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::provision::Target;
use crate::source::physical::wal;

/// How long replay may take to pause (it stops between two records: milliseconds).
const PAUSE_WAIT: Duration = Duration::from_secs(10);

/// The follower's cluster copied at a point of its replay.
#[derive(Debug, Clone)]
pub(crate) struct Cloned {
    /// The copy, owned as the follower's files are.
    pub data: PathBuf,
    /// The point: the end of the last record replayed when it was paused.
    pub lsn: String,
    /// How long replay was paused, and when the copy was asked for.
    pub paused: Duration,
    pub asked: Instant,
}

/// Why the follower could not be copied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CloneError {
    #[error("cannot pause the follower's replay, or resume it")]
    Query(#[source] sqlx::Error),
    #[error("the follower's replay did not pause within {} s", PAUSE_WAIT.as_secs())]
    NotPaused,
    #[error("cannot copy the follower's cluster `{from}` into `{to}`")]
    Copy {
        from: String,
        to: String,
        #[source]
        source: std::io::Error,
    },
}

/// The follower's WAL: its segment size and the timeline replay is on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wal {
    pub segment_size: u64,
    pub timeline: u32,
}

/// Pauses the follower's replay, copies its cluster `data` into `to` and resumes replay, whatever
/// happened meanwhile.
pub(crate) async fn pause_and_copy(
    pool: &sqlx::PgPool,
    data: &Path,
    to: &Path,
    wal: Wal,
) -> Result<Cloned, CloneError> {
    let asked = Instant::now();
    let copied = paused_copy(pool, data, to, wal).await;
    let resumed = sqlx::query("SELECT pg_wal_replay_resume()").execute(pool).await.map_err(CloneError::Query);
    let lsn = copied?;
    resumed?;
    Ok(Cloned { data: to.to_owned(), lsn, paused: asked.elapsed(), asked })
}

/// Pauses replay and copies the cluster: the point it was copied at.
async fn paused_copy(pool: &sqlx::PgPool, data: &Path, to: &Path, shape: Wal) -> Result<String, CloneError> {
    sqlx::query("SELECT pg_wal_replay_pause()").execute(pool).await.map_err(CloneError::Query)?;
    let started = Instant::now();
    let lsn = loop {
        let (state, lsn): (String, Option<String>) =
            sqlx::query_as("SELECT pg_get_wal_replay_pause_state(), pg_last_wal_replay_lsn()::text")
                .fetch_one(pool)
                .await
                .map_err(CloneError::Query)?;
        if state == "paused" {
            break lsn.unwrap_or_default();
        }
        if started.elapsed() >= PAUSE_WAIT {
            return Err(CloneError::NotPaused);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    sqlx::query("CHECKPOINT").execute(pool).await.map_err(CloneError::Query)?;
    let (from, into) = (data.to_owned(), to.to_owned());
    let point = wal::parse_lsn(&lsn).unwrap_or_default();
    tokio::task::spawn_blocking(move || copy_cluster(&from, &into).and_then(|()| end_wal_at(&into, point, shape)))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|copied| copied)
        .map_err(|source| CloneError::Copy {
            from: data.display().to_string(),
            to: to.display().to_string(),
            source,
        })?;
    Ok(lsn)
}

/// Copies the cluster `from` into `to` with its owner, `global/pg_control` first.
fn copy_cluster(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(from)?;
    let owner = crate::tree::Ids { uid: meta.uid(), gid: meta.gid() };
    let control = std::fs::read(from.join("global/pg_control"))?;
    crate::tree::copy(from, to, owner)?;
    std::fs::write(to.join("global/pg_control"), control)?;
    for running in ["postmaster.pid", "postmaster.opts"] {
        let _ = std::fs::remove_file(to.join(running));
    }
    Ok(())
}

/// Ends the copy's WAL at `point`: the segments after the one it is in removed, and that one
/// zeroed from it on (where a server's WAL that was never written reads as its end). The clone
/// then replays to the point and waits there, where pgdrill promotes it: exactly the point, with
/// no recovery target (a target never reached fails the promotion).
fn end_wal_at(data: &Path, point: u64, shape: Wal) -> std::io::Result<()> {
    use std::io::{Read, Seek, Write};
    let size = shape.segment_size.max(1);
    let holding = wal::Segment { timeline: shape.timeline, number: point / size };
    for entry in std::fs::read_dir(data.join("pg_wal"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if wal::Segment::parse(&name, size).is_some_and(|s| s.number > holding.number) {
            std::fs::remove_file(entry.path())?;
        }
    }
    let offset = point % size;
    let path = data.join("pg_wal").join(holding.name(size));
    if offset > 0 && path.is_file() {
        let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
        file.seek(std::io::SeekFrom::Start(offset))?;
        std::io::copy(&mut std::io::repeat(0).take(size - offset), &mut file)?;
        file.flush()?;
    }
    Ok(())
}

/// Waits until the clone on `target` replayed to `lsn`, where its WAL ends ([`end_wal_at`]),
/// and promotes it there. The timeline it was promoted on.
pub(crate) async fn promoted_at(target: &Target, lsn: &str, timeout: Duration) -> Result<u32, PromoteError> {
    let point = wal::parse_lsn(lsn).unwrap_or_default();
    let pool = target.pool("postgres", 1).await.map_err(PromoteError::Target)?;
    let started = Instant::now();
    let promoted = loop {
        let look = match super::standby::look(&pool).await {
            Ok(look) => look,
            Err(source) => break Err(stopped(target, source).await),
        };
        if !look.in_recovery {
            break Ok(());
        }
        if look.lsn >= point
            && look.out_of_wal
            && let Err(source) = sqlx::query("SELECT pg_promote(true, 60)").execute(&pool).await
        {
            break Err(stopped(target, source).await);
        }
        if started.elapsed() >= timeout {
            break Err(PromoteError::Timeout { lsn: lsn.to_owned(), replayed: wal::format_lsn(look.lsn) });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let timeline = match promoted {
        Ok(()) => match sqlx::query_scalar::<_, String>("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")
            .fetch_one(&pool)
            .await
        {
            Ok(timeline) => Ok(u32::from_str_radix(&timeline, 16).unwrap_or_default()),
            Err(source) => Err(stopped(target, source).await),
        },
        Err(e) => Err(e),
    };
    pool.close().await;
    timeline
}

/// The error of a look at the clone that failed: its server's own last words when its startup
/// process stopped.
async fn stopped(target: &Target, source: sqlx::Error) -> PromoteError {
    use crate::restore::physical::said::{server_log, startup_failure};
    match server_log(target).await.as_deref().and_then(startup_failure) {
        Some(said) => PromoteError::Stopped { said, source },
        None => PromoteError::Query(source),
    }
}

/// Why the clone was not promoted at its point.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PromoteError {
    #[error(transparent)]
    Target(crate::provision::TargetError),
    #[error("cannot follow the clone's recovery")]
    Query(#[source] sqlx::Error),
    #[error("the clone's server stopped while it recovered: PostgreSQL: {said}")]
    Stopped {
        said: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the clone did not reach {lsn} and promote within the recovery's timeout (it replayed to {replayed})")]
    Timeout { lsn: String, replayed: String },
}
