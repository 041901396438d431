//! Markers: end-to-end proof that what commits on the source reaches the archive and replays.
//! At an interval the follower writes a restore point on the source (`pg_create_restore_point`,
//! named `pgdrill-marker-<time>-<random>`) and switches WAL, so the segment holding it is
//! archived at once; the feed finds each restore point in the WAL it gives replay (a standby has
//! no SQL that names the restore points it passed: `wal::records`), and once replay passes its
//! record the marker is confirmed, with its latency: from the source's commit to its replay.
//!
//! Markers written by another job on the source (the docs' one-line cron job) are confirmed the
//! same way, their latency measured from the time the record carries (the source's clock). A
//! marker this follower wrote that has not replayed by the deadline is a fault, as is a source
//! on which no marker can be written.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::faults::Fault;
use crate::source::physical::wal::{self, records::RestorePoint};

/// The names markers carry: restore points named otherwise are the source's own business.
pub(crate) const PREFIX: &str = "pgdrill-marker-";

/// Where and how often markers are written (`--marker-dsn`, `--marker-every`).
#[derive(Debug, Clone)]
pub(crate) struct MarkerOptions {
    /// The source's connection string (its password is never shown).
    pub dsn: crate::secret::Secret,
    pub every: Duration,
    /// How long a marker written may take to replay before that is a fault.
    pub deadline: Duration,
}

/// A marker written on the source.
#[derive(Debug, Clone)]
struct Written {
    name: String,
    lsn: u64,
    /// This machine's time when the source returned it (committed).
    at: SystemTime,
}

/// A marker confirmed: replay passed its record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Confirmed {
    pub name: String,
    pub lsn: u64,
    /// When the source wrote it (its clock, as the record says) and when replay passed it.
    pub written_at: SystemTime,
    pub replayed_at: SystemTime,
    /// From its commit (this machine's clock, when this follower wrote it) to its replay.
    pub latency: Duration,
}

/// The markers written and found, until each is confirmed.
#[derive(Default)]
pub(crate) struct Markers {
    /// What the writer sends: each marker written, or why none could be.
    written_rx: Option<mpsc::UnboundedReceiver<Result<Written, String>>>,
    /// Held for its drop, which stops the writer.
    _writer: Option<Writer>,
    deadline: Duration,
    /// Written and not yet replayed, oldest first.
    waiting: VecDeque<Written>,
    /// Found in WAL given to replay, not yet passed.
    found: Vec<RestorePoint>,
    /// Why the last marker could not be written, until one is.
    failing: Option<String>,
}

impl Markers {
    /// Starts writing markers on the source, when asked to.
    pub(crate) fn start(options: Option<&MarkerOptions>) -> Markers {
        let Some(options) = options else { return Markers::default() };
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_every(options.clone(), tx));
        Markers {
            written_rx: Some(rx),
            _writer: Some(Writer(writer)),
            deadline: options.deadline,
            ..Markers::default()
        }
    }

    /// The restore points in WAL just given to replay: those named as markers wait for it.
    pub(crate) fn given(&mut self, points: impl IntoIterator<Item = RestorePoint>) {
        self.found.extend(points.into_iter().filter(|p| p.name.starts_with(PREFIX)));
    }

    /// Replay is at `lsn`: the markers it passed, confirmed.
    pub(crate) fn replayed(&mut self, lsn: u64, say: &dyn Fn(String)) -> Vec<Confirmed> {
        self.receive(say);
        let now = SystemTime::now();
        let (passed, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.found).into_iter().partition(|p| p.end <= lsn);
        self.found = waiting;
        passed
            .into_iter()
            .map(|point| {
                let written =
                    self.waiting.iter().position(|w| w.name == point.name).and_then(|i| self.waiting.remove(i));
                let from = written.map_or(point.time, |w| w.at);
                Confirmed {
                    latency: now.duration_since(from).unwrap_or_default(),
                    name: point.name,
                    lsn: point.lsn,
                    written_at: point.time,
                    replayed_at: now,
                }
            })
            .collect()
    }

    /// Takes what the writer sent.
    fn receive(&mut self, say: &dyn Fn(String)) {
        let Some(rx) = self.written_rx.as_mut() else { return };
        while let Ok(sent) = rx.try_recv() {
            match sent {
                Ok(written) => {
                    say(format!("marker `{}` written on the source at {}", written.name, wal::format_lsn(written.lsn)));
                    self.failing = None;
                    self.waiting.push_back(written);
                }
                Err(problem) => self.failing = Some(problem),
            }
        }
    }

    /// The marker fault: the oldest marker written and not replayed by the deadline.
    pub(crate) fn late(&self) -> Option<Fault> {
        let oldest = self.waiting.front()?;
        let waited = SystemTime::now().duration_since(oldest.at).unwrap_or_default();
        (waited >= self.deadline).then(|| Fault::Marker {
            name: oldest.name.clone(),
            lsn: wal::format_lsn(oldest.lsn),
            waited,
        })
    }

    /// The source fault: no marker could be written the last time.
    pub(crate) fn source(&self) -> Option<Fault> {
        self.failing.clone().map(|problem| Fault::Source { problem })
    }
}

/// The task that writes markers, stopped with the follower.
struct Writer(tokio::task::JoinHandle<()>);

impl Drop for Writer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes a marker every `options.every`, sending each (or why it could not be) to `tx`.
async fn write_every(options: MarkerOptions, tx: mpsc::UnboundedSender<Result<Written, String>>) {
    let mut interval = tokio::time::interval(options.every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let written = write(&options).await.map_err(|e| crate::secret::error_text(&e));
        if tx.send(written).is_err() {
            return;
        }
    }
}

/// Why a marker could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MarkerError {
    #[error("the source's connection string cannot be read")]
    Dsn(#[source] crate::conninfo::ConninfoError),
    #[error("cannot connect to the source")]
    Connect(#[source] sqlx::Error),
    #[error(
        "the source refused the marker (hint: its role needs EXECUTE on pg_create_restore_point(text) and pg_switch_wal())"
    )]
    Refused(#[source] sqlx::Error),
    #[error("the source took more than {} s to answer", TIMEOUT.as_secs())]
    Slow,
}

/// How long writing one marker may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Writes one marker: a restore point, then a WAL switch so that its segment is archived now.
async fn write(options: &MarkerOptions) -> Result<Written, MarkerError> {
    use sqlx::Connection;
    let connect =
        crate::conninfo::options(options.dsn.expose()).map_err(MarkerError::Dsn)?.application_name("pgdrill-marker");
    let name = format!(
        "{PREFIX}{}-{}",
        time::OffsetDateTime::now_utc().unix_timestamp(),
        hex::encode(rand::random::<[u8; 4]>())
    );
    let work = async {
        let mut conn = sqlx::PgConnection::connect_with(&connect).await.map_err(MarkerError::Connect)?;
        let (lsn,): (String,) = sqlx::query_as("SELECT pg_create_restore_point($1)::text")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .map_err(MarkerError::Refused)?;
        // The segment holding it is archived now, not when it fills or archive_timeout passes.
        sqlx::query("SELECT pg_switch_wal()").execute(&mut conn).await.map_err(MarkerError::Refused)?;
        let _ = conn.close().await;
        Ok(lsn)
    };
    let lsn = tokio::time::timeout(TIMEOUT, work).await.map_err(|_| MarkerError::Slow)??;
    Ok(Written { name, lsn: wal::parse_lsn(&lsn).unwrap_or(0), at: SystemTime::now() })
}
