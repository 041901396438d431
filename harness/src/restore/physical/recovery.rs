//! The restore of a physical backup: the target started recovering it (provision), as a standby
//! reading the WAL in its `pg_wal`; this waits until it is promoted, at the scenario's target by
//! the server itself, or here once it has replayed every segment when the target is the
//! archive's end. A replay that stops short of a target fails with the point it reached.

use std::time::{Duration, Instant};

use crate::provision::{Target, TargetError};
use crate::scenario::{RecoverySpec, RecoveryTarget};
use crate::secret::Redactor;

/// How long replay may stand still before recovery is taken to have run out of WAL.
const STALLED: Duration = Duration::from_secs(3);

/// Where recovery ended.
#[derive(Debug, Clone)]
pub(crate) struct Recovered {
    /// The target asked for, in words.
    pub target: String,
    /// The last transaction replayed (its commit time), when one was.
    pub last_transaction: Option<String>,
    /// The last WAL location replayed.
    pub lsn: String,
    /// The timeline the promoted server writes on.
    pub timeline: String,
    /// Archived segments given to recovery.
    pub segments: usize,
    pub took: Duration,
}

impl Recovered {
    pub(crate) fn summary(&self) -> String {
        format!(
            "recovered to {} in {:.1} s: replayed to {}{}, {} archived segment(s); promoted on timeline {}",
            self.target,
            self.took.as_secs_f64(),
            self.lsn,
            self.last_transaction.as_ref().map(|t| format!(" (last transaction committed at {t})")).unwrap_or_default(),
            self.segments,
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
    #[error(
        "recovery ended before the target was reached ({target}): the last transaction replayed committed at {}, WAL replayed to {lsn} (hint: the WAL archive ends there; a later target needs later segments)",
        last_transaction.as_deref().unwrap_or("no time (no transaction was replayed)")
    )]
    NotReached { target: String, last_transaction: Option<String>, lsn: String },
    #[error("recovery did not finish within {}s (replayed to {lsn}); raise [recovery] timeout", timeout.as_secs())]
    Timeout { timeout: Duration, lsn: String },
}

/// Waits until the target is promoted (see the module's documentation).
pub(crate) async fn wait(
    target: &Target,
    spec: &RecoverySpec,
    segments: usize,
    redactor: &Redactor,
) -> Result<Recovered, RecoveryError> {
    let started = Instant::now();
    let pool = target.pool("postgres", 1, redactor).await?;
    let query = |e: sqlx::Error| RecoveryError::Query(redactor.redact(&crate::pg::describe_sql_error(&e)));
    let wanted = match &spec.target {
        RecoveryTarget::End => "the end of the WAL archive".to_owned(),
        RecoveryTarget::Immediate => "the end of the backup (consistency)".to_owned(),
        RecoveryTarget::Time(at) => format!(
            "recovery_target_time {}",
            at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
        ),
    };
    let (mut lsn, mut last_transaction) = (String::new(), None);
    let mut moved = Instant::now();
    let mut promoting = false;
    loop {
        let (in_recovery, replayed, transaction): (bool, Option<String>, Option<String>) = sqlx::query_as(
            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()::text",
        )
        .fetch_one(&pool)
        .await
        .map_err(query)?;
        if transaction.is_some() {
            last_transaction = transaction;
        }
        if !in_recovery {
            let timeline: String = sqlx::query_scalar("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")
                .fetch_one(&pool)
                .await
                .map_err(query)?;
            pool.close().await;
            let timeline = u32::from_str_radix(&timeline, 16).map(|t| t.to_string()).unwrap_or(timeline);
            return Ok(Recovered {
                target: wanted,
                last_transaction,
                lsn,
                timeline,
                segments,
                took: started.elapsed(),
            });
        }
        let replayed = replayed.unwrap_or_default();
        if replayed != lsn {
            lsn = replayed;
            moved = Instant::now();
        } else if moved.elapsed() >= STALLED && !promoting {
            match spec.target {
                // Every segment replayed: the end of the archive is the target.
                RecoveryTarget::End => {
                    sqlx::query("SELECT pg_promote(true, 60)").execute(&pool).await.map_err(query)?;
                    promoting = true;
                }
                _ => {
                    pool.close().await;
                    return Err(RecoveryError::NotReached { target: wanted, last_transaction, lsn });
                }
            }
        }
        if started.elapsed() >= spec.timeout {
            pool.close().await;
            return Err(RecoveryError::Timeout { timeout: spec.timeout, lsn });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
