//! The recovery of a physical backup: the settings its target starts with (provision starts it
//! recovering, a standby reading the WAL in its `pg_wal`), and the wait until it is promoted, at
//! the scenario's target by the server itself, or here once it has replayed every segment when
//! the target is the archive's end. A standby that runs out of WAL before its target waits for
//! more (its startup process's `RecoveryRetrieveRetryInterval`): that fails, naming the point
//! it reached. Once promoted, the server's log says what it reached (`reach`): a target it did
//! not stop at exactly is not reported as reached. A recovery to the archive's end must have
//! replayed into the archive's last segment (`tested`): replay that stopped short of it, at its
//! very start included, left the archive past the backup's end untested and fails.

use crate::outcome::Reach;
use crate::outcome::Recovered;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::feed::Feeder;
use super::promote;
use super::reach::{self};
use super::said::{server_log, startup_failure, wal_complaint};
use super::tested::{ArchiveEnd, Untested};
use super::verify::ControlData;
use crate::provision::{Target, TargetError};
use crate::scenario::{RecoverySpec, RecoveryTarget};
use crate::secret::Redactor;
use crate::source::physical::timeline::TimelinePath;
use crate::source::physical::wal;

/// How often the recovery is looked at (a query of a few functions, well under a millisecond).
const POLL: Duration = Duration::from_millis(20);

/// How often once it is being promoted (the drill waits for nothing else; it takes a few ms).
const PROMOTING_POLL: Duration = Duration::from_millis(5);

/// The wait event of a startup process that has no more WAL to replay.
const OUT_OF_WAL: &str = "RecoveryRetrieveRetryInterval";

/// How long a standby that has been given every segment may wait for WAL short of the last one,
/// at one place, before that is judged a stop: the WAL there does not read.
const STALLED: Duration = Duration::from_secs(3);

/// The server settings a target recovering the backup starts with: a hot standby (so that its
/// progress can be read) promoted at the target, or paused there for pgdrill to promote
/// (`pauses`, see [`promote`]), with at least the settings the source had where a standby needs
/// them (a setting the scenario gives wins).
pub(crate) fn settings(
    spec: &RecoverySpec,
    control: &ControlData,
    given: &BTreeMap<String, String>,
    timeline: u32,
    pauses: bool,
) -> Vec<(String, String)> {
    let mut settings: BTreeMap<String, String> = [
        ("hot_standby", "on"),
        ("archive_mode", "off"),
        ("recovery_target_action", promote::action(pauses)),
        ("wal_level", "replica"),
        ("max_wal_senders", "32"),
        ("max_connections", "200"),
        ("max_worker_processes", "32"),
        ("max_prepared_transactions", "100"),
        ("max_locks_per_transaction", "128"),
        // The archive's segments are given to pg_wal as replay needs them: a standby that finds
        // the next one missing looks again this soon, and the segments it is done with are
        // removed, not renamed to future names a segment given later would have to replace.
        ("wal_retrieve_retry_interval", "100ms"),
        ("wal_recycle", "off"),
        // A tablespace is staged as a folder in pg_tblspc (inside the data directory), never a
        // link to where the source kept it: PostgreSQL recovers such a tablespace when told to.
        ("allow_in_place_tablespaces", "on"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    for (name, floor) in &control.standby_floors {
        let ours = settings.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        settings.insert(name.clone(), ours.max(*floor).to_string());
    }
    // The timeline verify chose from the archive's histories, never PostgreSQL's own probing; a
    // follower's goes on along one whose history it gave pg_wal (no restore_command reads more).
    let timeline = if spec.following { "latest".into() } else { timeline.to_string() };
    settings.insert("recovery_target_timeline".into(), timeline);
    if let Some((name, value)) = spec.target.setting() {
        settings.insert(name.to_owned(), value);
        if matches!(spec.target, RecoveryTarget::Time(_) | RecoveryTarget::Lsn(_) | RecoveryTarget::Xid(_)) {
            settings.insert("recovery_target_inclusive".into(), spec.inclusive.to_string());
        }
    }
    settings.into_iter().filter(|(name, _)| !given.contains_key(name)).collect()
}

impl Recovered {
    /// The point recovery reached, in words: the record it stopped at (as the server's log
    /// says), else the last location replayed; and the last transaction replayed.
    pub fn point(&self) -> String {
        match &self.reached {
            Some(reach) => reach::describe(reach, &self.end_lsn),
            None => format!(
                "WAL replayed to {}{}",
                self.end_lsn,
                self.last_transaction
                    .as_ref()
                    .map(|t| format!("; the last transaction replayed committed at {t}"))
                    .unwrap_or_else(|| "; no transaction replayed".into())
            ),
        }
    }

    pub(crate) fn summary(&self) -> String {
        format!(
            "recovered to {}: {} (consistent from {}); replayed {} of WAL ({} segment{}, {} archived{}{}) from {} to {} in {:.1} s; promoted on timeline {}",
            self.target,
            self.point(),
            self.reached.as_ref().and_then(|r| r.consistent_at.as_deref()).unwrap_or("an unlogged point"),
            crate::units::human_size(self.wal_bytes),
            self.segments_replayed,
            if self.segments_replayed == 1 { "" } else { "s" },
            self.segments_available,
            match self.segments_held_peak {
                0 => String::new(),
                n => format!(", at most {n} in pg_wal at once"),
            },
            match &self.archive_last {
                Some(last) => format!(", into the last, {last}"),
                None => String::new(),
            },
            self.start_lsn,
            self.end_lsn,
            self.took.as_secs_f64(),
            self.timeline
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RecoveryError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("cannot follow the recovery: {0}")]
    Query(String),
    /// The server stopped while it recovered: its startup process's own last words.
    #[error(
        "the target's server stopped while it recovered: PostgreSQL: {said} (hint: see the target's log; pgdrill's connection to it: {connection})"
    )]
    Stopped { said: String, connection: String },
    #[error(
        "recovery ended before the target was reached (PostgreSQL: recovery ended before configured recovery target was reached): {target} is later than the WAL holds; the last point reached: WAL replayed to {lsn}, the last transaction replayed committed at {}{timelines} (hint: the WAL archive ends there; a later target needs later segments, or drill to a target the archive holds)",
        last_transaction.as_deref().unwrap_or("no time (no transaction was replayed)")
    )]
    NotReached { target: String, last_transaction: Option<String>, lsn: String, timelines: String },
    #[error(
        "recovery was not stopped at its target ({target}): {why}; the point reached: {point} (hint: see the target's log; the database is not the one asked for)"
    )]
    NotExactly { target: String, why: reach::Missed, point: String },
    #[error("PostgreSQL refused the recovery to {target}: {refused} ({meaning}); the point reached: {point}")]
    Refused { target: String, refused: String, meaning: String, point: String },
    #[error(
        "recovery paused at {lsn} instead of reaching its target ({target}) (hint: the server pauses when a setting is lower than the source's; see the target's log)"
    )]
    Paused { target: String, lsn: String },
    #[error("recovery did not finish within {}s (replayed to {lsn}); raise [recovery] timeout", timeout.as_secs())]
    Timeout { timeout: Duration, lsn: String },
    /// Every segment was given, and replay waits for WAL short of the last one: what follows
    /// does not read as WAL (a damaged segment whose record fails its checksum).
    #[error(
        "recovery stopped reading WAL at {lsn}, in segment {segment}, short of the archive's last segment {last}: the WAL after it does not read as valid records{server} (hint: a damaged segment? see the target's log; the database is not the one the archive holds)"
    )]
    Stalled { lsn: String, segment: String, last: String, server: String },
    /// A recovery to the archive's end did not replay into the archive's last segment.
    #[error(transparent)]
    Untested(#[from] Untested),
    /// An archived segment could not be given to recovery (it is not what its name says, it
    /// changed since it was archived, it is truncated).
    #[error(transparent)]
    Wal(#[from] super::stage::StageError),
}

/// Where the backup's recovery starts, and what it was given.
pub(crate) struct Start<'a> {
    pub spec: &'a RecoverySpec,
    /// The WAL archive's folder (its timeline history files explain a target not reached).
    pub archive: Option<PathBuf>,
    pub start_lsn: u64,
    /// The backup's timeline, and the way recovery follows from it.
    pub timeline: u32,
    pub path: TimelinePath,
    pub segment_size: u64,
    pub segments_available: usize,
    /// Gives the archive's segments to `pg_wal` as replay needs them (none when every segment
    /// was given before the server started).
    pub feeder: Option<Feeder>,
    /// The archive's last segment recovery is given, and the segment the backup ends in (none
    /// without an archived segment).
    pub archive_end: Option<ArchiveEnd>,
    /// The most archived segments pg_wal held before the server started.
    pub given_peak: usize,
    /// Whether the server pauses at its target for pgdrill to promote it (see [`promote`]).
    pub pauses_at_target: bool,
}

/// One look at the standby.
struct Progress {
    in_recovery: bool,
    replayed: Option<String>,
    transaction: Option<String>,
    waiting: Option<String>,
    paused: Option<String>,
}

const PROGRESS: &str = "SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_replay_lsn()::text AS replayed, \
     pg_last_xact_replay_timestamp()::text AS transaction, \
     (SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup') AS waiting, \
     CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS paused";

/// Waits until the target is promoted (see the module's documentation).
pub(crate) async fn wait(
    target: &Target,
    mut start: Start<'_>,
    redactor: &Redactor,
) -> Result<Recovered, RecoveryError> {
    let feeder = start.feeder.take();
    let waited = follow(target, &start, feeder.as_ref(), redactor).await;
    let peak = match feeder {
        Some(feeder) => tokio::task::spawn_blocking(move || feeder.stop().peak).await.unwrap_or_default(),
        None => start.given_peak,
    };
    waited.map(|recovered| Recovered { segments_held_peak: peak, ..recovered })
}

/// Follows the recovery until the server is promoted, telling `feeder` where replay is; what it
/// reached, as the server says.
async fn follow(
    target: &Target,
    start: &Start<'_>,
    feeder: Option<&Feeder>,
    redactor: &Redactor,
) -> Result<Recovered, RecoveryError> {
    let started = Instant::now();
    let pool = target.pool("postgres", 1).await?;
    let query = |e: sqlx::Error| RecoveryError::Query(redactor.redact(&crate::pg::describe_sql_error(&e)));
    let recovered = async {
        let promoted = until_promoted(target, start, feeder, &pool, redactor).await?;
        let reached = reached(target, start, &promoted, redactor).await?;
        // The server replays from its start, before pgdrill can connect: it says how long it took.
        let (timeline, took): (String, f64) = sqlx::query_as(
            "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), \
             extract(epoch FROM clock_timestamp() - pg_postmaster_start_time())::float8",
        )
        .fetch_one(&pool)
        .await
        .map_err(query)?;
        let end = promoted.replayed.as_deref().and_then(wal::parse_lsn).unwrap_or(start.start_lsn);
        untested(target, start, end, redactor).await?;
        let first = start.start_lsn / start.segment_size.max(1);
        // The segment holding the last byte replayed (a record ending at a segment's end, as a
        // switch does, replayed nothing of the next).
        let last = end.saturating_sub(1).max(start.start_lsn) / start.segment_size.max(1);
        let archive_last = start
            .archive_end
            .as_ref()
            .filter(|a| start.spec.target == RecoveryTarget::End && a.past_backup() && a.reached(end))
            .map(ArchiveEnd::last_name);
        Ok(Recovered {
            target: start.spec.target.to_string(),
            start_lsn: wal::format_lsn(start.start_lsn),
            end_lsn: wal::format_lsn(end),
            last_transaction: promoted.transaction,
            reached,
            wal_bytes: end.saturating_sub(start.start_lsn),
            segments_replayed: last.saturating_sub(first) + 1,
            segments_available: start.segments_available,
            archive_last,
            segments_held_peak: 0,
            timeline: u32::from_str_radix(&timeline, 16).unwrap_or(0),
            took: Duration::try_from_secs_f64(took).unwrap_or(started.elapsed()),
        })
    }
    .await;
    pool.close().await;
    recovered
}

/// What a standby waiting for WAL is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Not waiting.
    No,
    /// The next segment, which the feed has not given yet.
    ForTheFeed,
    /// Nothing more: every segment was given and replay is in the last.
    AtTheEnd,
    /// Replay stopped short of the last segment with the next one given: what follows does not
    /// read as WAL.
    Stuck,
}

impl Waiting {
    fn of(start: &Start<'_>, feeder: Option<&Feeder>, at: u64, out_of_wal: bool) -> Waiting {
        // In the last segment: a record of it replayed (stopped at its very start, replay read
        // nothing of it).
        let in_last = start.archive_end.as_ref().is_none_or(|end| end.reached(at));
        match out_of_wal {
            false => Waiting::No,
            true if in_last && feeder.is_none_or(Feeder::done) => Waiting::AtTheEnd,
            true if !in_last && feeder.is_none_or(|f| f.gave_past(at)) => Waiting::Stuck,
            true => Waiting::ForTheFeed,
        }
    }
}

/// Polls the standby until it is promoted: at its target by itself, or here at the archive's end;
/// fails when it pauses, is stuck, runs out of WAL before its target or out of time.
async fn until_promoted(
    target: &Target,
    start: &Start<'_>,
    feeder: Option<&Feeder>,
    pool: &sqlx::PgPool,
    redactor: &Redactor,
) -> Result<Progress, RecoveryError> {
    let started = Instant::now();
    let spec = start.spec;
    let query = |e: sqlx::Error| RecoveryError::Query(redactor.redact(&crate::pg::describe_sql_error(&e)));
    let wanted = spec.target.to_string();
    let mut promoting = false;
    let mut stuck_since: Option<(u64, Instant)> = None;
    let mut paused_since: Option<Instant> = None;
    loop {
        let Some(now) = look(target, pool, redactor).await? else {
            // A server that keeps refusing (its catalog is the backup's) runs out of time.
            if started.elapsed() >= spec.timeout {
                return Err(RecoveryError::Timeout { timeout: spec.timeout, lsn: String::new() });
            }
            tokio::time::sleep(PROMOTING_POLL).await;
            continue;
        };
        let lsn = now.replayed.clone().unwrap_or_default();
        let at = wal::parse_lsn(&lsn).unwrap_or(start.start_lsn);
        if let Some(feeder) = feeder {
            feeder.replayed(at);
            if let Some(error) = feeder.failed() {
                return Err(RecoveryError::Wal(error));
            }
        }
        if !now.in_recovery {
            return Ok(now);
        }
        if now.paused.as_deref() == Some("paused") {
            let since = *paused_since.get_or_insert_with(Instant::now);
            let pause = if promoting { Pause::AtTarget } else { pause_of(target, start, since, redactor).await };
            match (pause, promoting) {
                (Pause::Other, _) => return Err(RecoveryError::Paused { target: wanted, lsn }),
                (Pause::NotYetSaid, _) => {}
                // At its target: promoted without the end-of-recovery checkpoint (`promote`).
                (Pause::AtTarget, false) => {
                    sqlx::query("SELECT pg_promote(false)").execute(pool).await.map_err(query)?;
                    promoting = true;
                }
                // Refused once the promotion is under way: nothing left to wake.
                (Pause::AtTarget, true) => {
                    let _ = sqlx::query(promote::WAKE_THE_STARTUP_PROCESS).execute(pool).await;
                }
            }
        }
        let waiting = Waiting::of(start, feeder, at, now.waiting.as_deref() == Some(OUT_OF_WAL));
        stuck_since = match (waiting, stuck_since) {
            (Waiting::Stuck, Some((lsn, since))) if lsn == at => Some((lsn, since)),
            (Waiting::Stuck, _) => Some((at, Instant::now())),
            _ => None,
        };
        if stuck_since.is_some_and(|(_, since)| since.elapsed() >= STALLED) {
            return Err(stalled(target, start, at, lsn, redactor).await);
        }
        if waiting == Waiting::AtTheEnd && !promoting {
            if spec.target != RecoveryTarget::End {
                return Err(RecoveryError::NotReached {
                    target: wanted,
                    last_transaction: now.transaction,
                    timelines: other_timelines(start.archive.as_deref(), start.timeline, start.path.target),
                    lsn,
                });
            }
            // Every segment replayed: the end of the archive is the target. Not waited for in
            // pg_promote (which looks every 100 ms): this loop looks sooner.
            sqlx::query("SELECT pg_promote(false)").execute(pool).await.map_err(query)?;
            promoting = true;
        }
        if started.elapsed() >= spec.timeout {
            return Err(RecoveryError::Timeout { timeout: spec.timeout, lsn });
        }
        tokio::time::sleep(if promoting { PROMOTING_POLL } else { POLL }).await;
    }
}

/// One look at the standby; `None` when it was promoted between the query's two looks at
/// recovery: pg_get_wal_replay_pause_state() refuses a server no longer in recovery (55000), and
/// the next look sees it promoted.
async fn look(target: &Target, pool: &sqlx::PgPool, redactor: &Redactor) -> Result<Option<Progress>, RecoveryError> {
    match sqlx::query_as(PROGRESS).fetch_one(pool).await {
        Ok((in_recovery, replayed, transaction, waiting, paused)) => {
            Ok(Some(Progress { in_recovery, replayed, transaction, waiting, paused }))
        }
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("55000") => Ok(None),
        Err(e) => {
            let error = RecoveryError::Query(redactor.redact(&crate::pg::describe_sql_error(&e)));
            Err(stopped_or(target, redactor, error).await)
        }
    }
}

/// `error`, or, when the server's log says its startup process stopped, that (the connection's
/// error is what a server that stopped leaves a client, not why).
async fn stopped_or(target: &Target, redactor: &Redactor, error: RecoveryError) -> RecoveryError {
    let said = server_log(target).await.and_then(|log| startup_failure(&redactor.redact(&log)));
    match (said, error) {
        (Some(said), RecoveryError::Query(connection)) => RecoveryError::Stopped { said, connection },
        (_, error) => error,
    }
}

/// Why a standby is paused.
enum Pause {
    /// At its target, for pgdrill to promote it.
    AtTarget,
    /// Its log does not say so yet (it reaches Docker a moment after the server wrote it).
    NotYetSaid,
    /// For anything else (a setting lower than the source's), or at a target it was not to
    /// pause at.
    Other,
}

/// How long a paused standby's log may take to say it paused at its target.
const LOG_LAG: Duration = Duration::from_secs(2);

/// Why the standby, paused since `since`, is paused (see [`promote`]).
async fn pause_of(target: &Target, start: &Start<'_>, since: Instant, redactor: &Redactor) -> Pause {
    if !start.pauses_at_target {
        return Pause::Other;
    }
    let said = server_log(target).await.is_some_and(|log| promote::paused_at_target(&redactor.redact(&log)));
    match said {
        true => Pause::AtTarget,
        false if since.elapsed() < LOG_LAG => Pause::NotYetSaid,
        false => Pause::Other,
    }
}

/// The error of a recovery stuck at `at` (see [`Waiting::Stuck`]), with the server's own words:
/// for a recovery to the archive's end, that it left the archive past the backup's end untested.
async fn stalled(target: &Target, start: &Start<'_>, at: u64, lsn: String, redactor: &Redactor) -> RecoveryError {
    let server = server_log(target).await.and_then(|log| wal_complaint(&redactor.redact(&log))).unwrap_or_default();
    let Some(end) = &start.archive_end else {
        return RecoveryError::Stalled { lsn, segment: String::new(), last: String::new(), server };
    };
    match end.untested(&start.spec.target, at, server.clone()) {
        Err(untested) => RecoveryError::Untested(untested),
        Ok(()) => RecoveryError::Stalled { lsn, segment: end.segment_of(at), last: end.last_name(), server },
    }
}

/// A promoted recovery to the archive's end that replayed to `end` must have read into the
/// archive's last segment (see `tested`).
async fn untested(target: &Target, start: &Start<'_>, end: u64, redactor: &Redactor) -> Result<(), RecoveryError> {
    let Some(archive) = &start.archive_end else { return Ok(()) };
    if archive.untested(&start.spec.target, end, String::new()).is_ok() {
        return Ok(());
    }
    let server = server_log(target).await.and_then(|log| wal_complaint(&redactor.redact(&log))).unwrap_or_default();
    archive.untested(&start.spec.target, end, server).map_err(RecoveryError::from)
}

/// What the promoted server's log says recovery reached; a target it did not stop at is not
/// reached. The log reaches Docker a moment after the server wrote it: read until redo's end is
/// in it.
async fn reached(
    target: &Target,
    start: &Start<'_>,
    promoted: &Progress,
    redactor: &Redactor,
) -> Result<Option<Reach>, RecoveryError> {
    let mut reached = None;
    for _ in 0..20 {
        reached = server_log(target).await.map(|log| reach::parse(&redactor.redact(&log)));
        if reached.as_ref().is_none_or(|r| r.redo_done_at.is_some() || r.refused.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(reach) = &reached {
        let wanted = start.spec.target.to_string();
        let point = reach::describe(reach, promoted.replayed.as_deref().unwrap_or("?"));
        if let Some(refused) = &reach.refused {
            return Err(RecoveryError::Refused {
                target: wanted,
                refused: refused.clone(),
                meaning: reach::refusal_meaning(refused).to_owned(),
                point,
            });
        }
        if let Err(why) = reach::reached(&start.spec.target, reach) {
            return Err(RecoveryError::NotExactly { target: wanted, why, point });
        }
    }
    Ok(reached)
}

/// The other ways the archive's timelines go, in words for a target not reached: the backup's
/// timeline past where the one followed left it, or the timelines that branched off the one
/// followed, each with the scenario key that follows it.
fn other_timelines(archive: Option<&std::path::Path>, backup: u32, followed: u32) -> String {
    use crate::source::physical::history;
    if followed != backup {
        return format!(
            "; recovery followed timeline {followed} (the archive's latest); `[recovery] timeline = \"current\"` follows timeline {backup}, the backup's, past where timeline {followed}'s history left it"
        );
    }
    let Some(entries) = archive.and_then(|a| std::fs::read_dir(a).ok()) else { return String::new() };
    let mut branches: Vec<(u32, history::Branch)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let number = wal::timeline_of_history_name(&e.file_name().to_string_lossy())?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            let branch = history::parse_timeline_history(&text).ok()?.into_iter().find(|b| b.parent == followed)?;
            Some((number, branch))
        })
        .collect();
    branches.sort_by_key(|(n, _)| *n);
    branches
        .iter()
        .map(|(n, b)| {
            format!(
                "; the archive holds timeline {n}, which left timeline {followed} at {} ({}): `[recovery] timeline = {n}` follows it",
                wal::format_lsn(b.switch_lsn),
                b.reason
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_gets_at_least_the_sources_settings_and_the_scenarios_win() {
        let control = ControlData {
            standby_floors: [("max_connections".to_owned(), 500), ("max_wal_senders".to_owned(), 10)].into(),
            ..ControlData::default()
        };
        let spec =
            RecoverySpec { target: RecoveryTarget::Lsn(0x300_0060), inclusive: false, ..RecoverySpec::default() };
        let given: BTreeMap<String, String> = [("max_locks_per_transaction".to_owned(), "512".to_owned())].into();
        let settings: BTreeMap<String, String> = settings(&spec, &control, &given, 1, false).into_iter().collect();
        assert_eq!(settings["max_connections"], "500", "the source had more");
        assert_eq!(settings["max_wal_senders"], "32", "ours were more");
        assert_eq!(settings["recovery_target_lsn"], "0/3000060");
        assert_eq!(settings["recovery_target_inclusive"], "false");
        assert_eq!(settings["recovery_target_action"], "promote");
        let paused: BTreeMap<String, String> = super::settings(&spec, &control, &given, 1, true).into_iter().collect();
        assert_eq!(paused["recovery_target_action"], "pause", "where pgdrill promotes it");
        assert!(!settings.contains_key("max_locks_per_transaction"), "the scenario's own is passed as it is");
        let end = settings_of(RecoveryTarget::End);
        let targets = ["recovery_target_action", "recovery_target_timeline"];
        assert!(!end.keys().any(|k| k.starts_with("recovery_target_") && !targets.contains(&k.as_str())), "{end:?}");
        assert_eq!(end["recovery_target_timeline"], "1", "the timeline verify chose, always said");
        assert_eq!(settings_of(RecoveryTarget::Immediate)["recovery_target"], "immediate");
        assert!(!settings_of(RecoveryTarget::Name("p".into())).contains_key("recovery_target_inclusive"));
    }

    #[test]
    fn a_standby_waiting_at_the_very_start_of_the_last_segment_is_stuck_not_at_the_end() {
        let size = 16u64 << 20;
        let spec = RecoverySpec::default();
        let path = TimelinePath::only(1);
        let start = Start {
            spec: &spec,
            archive: None,
            start_lsn: 2 * size + 0x28,
            timeline: 1,
            path: path.clone(),
            segment_size: size,
            segments_available: 5,
            feeder: None,
            archive_end: Some(ArchiveEnd { last: 6, backup_end: 2, segment_size: size, path }),
            given_peak: 5,
            pauses_at_target: false,
        };
        // A switch ended segment 5: replay waits where segment 6 begins, having read none of it.
        assert_eq!(Waiting::of(&start, None, 6 * size, true), Waiting::Stuck);
        assert_eq!(Waiting::of(&start, None, 6 * size + 0x90, true), Waiting::AtTheEnd);
        assert_eq!(Waiting::of(&start, None, 7 * size, true), Waiting::AtTheEnd, "a switch ended the last");
        assert_eq!(Waiting::of(&start, None, 4 * size + 0x100, true), Waiting::Stuck);
        assert_eq!(Waiting::of(&start, None, 4 * size + 0x100, false), Waiting::No);
    }

    fn settings_of(target: RecoveryTarget) -> BTreeMap<String, String> {
        let spec = RecoverySpec { target, ..RecoverySpec::default() };
        settings(&spec, &ControlData::default(), &BTreeMap::new(), 1, false).into_iter().collect()
    }
}
