//! One look at a standby the follower reads (its own, or the copy of it a drill of now promotes):
//! whether it is still in recovery, where replay is, whether its startup process waits for WAL,
//! and where its last restartpoint's redo starts.

use crate::source::physical::wal;

/// The wait event of a startup process that has no more WAL to replay.
const OUT_OF_WAL: &str = "RecoveryRetrieveRetryInterval";

/// What one look saw.
pub(crate) struct Replay {
    pub in_recovery: bool,
    /// The end of the last record replayed.
    pub lsn: u64,
    /// Whether its startup process waits for WAL.
    pub out_of_wal: bool,
    /// Where its last restartpoint's redo starts (a copy of it recovers from there).
    pub redo: Option<u64>,
}

/// Looks at the standby `pool` connects to.
pub(crate) async fn look(pool: &sqlx::PgPool) -> Result<Replay, sqlx::Error> {
    let (in_recovery, lsn, waiting, redo): (bool, Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, \
             (SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup'), \
             (SELECT redo_lsn::text FROM pg_control_checkpoint())",
    )
    .fetch_one(pool)
    .await?;
    Ok(Replay {
        in_recovery,
        lsn: lsn.as_deref().and_then(wal::parse_lsn).unwrap_or(0),
        out_of_wal: waiting.as_deref() == Some(OUT_OF_WAL),
        redo: redo.as_deref().and_then(wal::parse_lsn),
    })
}
