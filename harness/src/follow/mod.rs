//! `pgdrill follow`: a physical backup's standby kept replaying its archive as it grows, never
//! promoted, each segment it replays recorded in a ledger (`ledger`) with its digest, when it was
//! archived and when replay passed it. A drill restores and verifies the base backup as usual
//! (fetch, verify, preflight, provision); its restore phase is the follow, until it is stopped.
//!
//! Every look (a quarter of a second) reads where replay is (`standby`) and records the segments
//! it passed; every second (a store's every five) the archive is listed again (`archive`): the
//! segments archived since are given to the feed in order, a segment missing before a later one
//! is a gap once the deadline passes, the oldest segment not yet replayed gives the proof lag,
//! and a later timeline is followed from its switch (`timeline`). Restore points the source
//! wrote are confirmed as replay passes them (`markers`). What keeps replay from going on is a
//! fault, named, said and told (`faults`, `told`); the follower never skips a segment, it waits
//! before it. `follow.prom` (`metrics`) is written at each look of the archive; a signed receipt
//! of the ledger's new lines (`receipt`) at an interval, and when the follower stops.

pub(crate) mod archive;
pub(crate) mod clone;
mod faults;
pub(crate) mod ledger;
pub(crate) mod markers;
mod metrics;
mod receipt;
mod standby;
pub(crate) mod status;
mod timeline;
mod told;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::provision::{Target, TargetError};
use crate::restore::physical::Following;
use crate::restore::physical::feed::Given;
use crate::source::physical::wal::{self, Segment};
use faults::{Fault, Faults};
use ledger::{Ledger, LedgerError, Line, Recorded};

/// How often replay is looked at.
const POLL: Duration = Duration::from_millis(250);

/// How long replay may wait at one place inside a segment, the next one given, before that is a
/// fault (the WAL after it does not read).
const STALLED: Duration = Duration::from_secs(3);

/// How a follower runs (`pgdrill follow`).
#[derive(Debug, Clone)]
pub(crate) struct FollowOptions {
    /// Its state folder: the ledger and `follow.prom`.
    pub state: PathBuf,
    /// How long a segment may be missing while a later one is archived before that is a gap.
    pub gap_after: Duration,
    /// How often the archive is listed (none: as often as its source says, `archive::Source`).
    pub look_every: Option<Duration>,
    /// Stops it (a signal), as `run_for` does once it has passed.
    pub stop: CancellationToken,
    pub run_for: Option<Duration>,
    /// How often a drill of "now" runs on a copy of it, and where its reports go.
    pub drill_every: Option<Duration>,
    pub reports: PathBuf,
    /// Set to ask for a drill of now (SIGUSR1); taken when it is started.
    pub drill_now: Arc<AtomicBool>,
    /// Set once the follower follows: a stop before then interrupts the drill's restore.
    pub following: Arc<AtomicBool>,
    /// How often a receipt of the ledger's new lines is written, and the key that signs it.
    pub receipt_every: Duration,
    pub signer: Option<crate::evidence::sign::Signer>,
    /// Where markers are written, and how often (none: no markers written; those another job
    /// writes are confirmed all the same).
    pub markers: Option<markers::MarkerOptions>,
}

/// Why a follower stopped before it was told to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FollowError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Receipt(#[from] receipt::ReceiptError),
    #[error("the follower's standby does not answer (hint: see the target's log)")]
    Standby(#[source] sqlx::Error),
    #[error("the follower's standby was promoted by someone else: it no longer replays the archive")]
    Promoted,
    #[error("cannot create the state folder `{path}`")]
    State {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Faults still stood when the follower was stopped.
    #[error("the follower stopped with {} standing: {}", if .0.len() == 1 { "a fault" } else { "faults" }, .0.join("; "))]
    Faults(Vec<String>),
}

/// What a follower did, for its drill's restore phase.
pub(crate) struct Followed {
    /// Segments recorded in the ledger now, and those replayed again and found as recorded.
    pub recorded: usize,
    pub confirmed: usize,
    /// The last segment replayed and where replay was.
    pub last: Option<String>,
    pub lsn: String,
    pub lag_max: Duration,
    pub faults_found: usize,
    pub ledger: PathBuf,
}

impl Followed {
    pub(crate) fn summary(&self) -> String {
        format!(
            "followed the archive: {} segment{} replayed and recorded in `{}`{}{}, replay at {}; proof lag at most {} s; {} fault{} found",
            self.recorded,
            if self.recorded == 1 { "" } else { "s" },
            self.ledger.display(),
            match self.confirmed {
                0 => String::new(),
                n => format!(" ({n} replayed again, as the ledger recorded them)"),
            },
            self.last.as_ref().map(|l| format!(", the last {l}")).unwrap_or_default(),
            self.lsn,
            self.lag_max.as_secs(),
            self.faults_found,
            if self.faults_found == 1 { "" } else { "s" },
        )
    }
}

/// What a follower runs with beside its standby.
pub(crate) struct Run<'a> {
    /// The base backup (the ledger's start line names it) and the scenario (the metrics').
    pub backup: &'a str,
    pub scenario: &'a str,
    /// The standby's data directory on this machine, which a drill of now copies.
    pub data: Option<&'a Path>,
    /// Where the copies for drills of now go (none: no drill of now).
    pub clones: Option<tokio::sync::mpsc::UnboundedSender<clone::Cloned>>,
    /// The scenario's `[notify]`: told of each fault found and cleared (`told`).
    pub notify: Option<&'a crate::notify::Spec>,
}

/// Follows the archive on `target` (a standby of the prepared backup) until stopped.
pub(crate) async fn follow(
    target: &Target,
    following: Following,
    source: archive::Source,
    options: &FollowOptions,
    run: Run<'_>,
    say: &(dyn Fn(String) + Send + Sync),
) -> Result<Followed, FollowError> {
    std::fs::create_dir_all(&options.state)
        .map_err(|source| FollowError::State { path: options.state.display().to_string(), source })?;
    let mut ledger = Ledger::open(&options.state.join("ledger.jsonl"), following.segment_size)?;
    if let Some(repaired) = ledger.repaired.take() {
        say(repaired);
    }
    let (every, signer) = (options.receipt_every, options.signer.clone());
    let receipts = receipt::Receipts::open(&options.state, every, signer, &ledger, run.scenario, say)?;
    ledger.start(Line::Start {
        at: rfc3339(SystemTime::now()),
        backup: run.backup.to_owned(),
        system: following.system_id.to_string(),
        from: following.start_segment.clone(),
    })?;
    say(format!(
        "following `{}` from {} ({} segments in the ledger)",
        source.shown(),
        following.start_segment,
        ledger.segments()
    ));
    let pool = target.pool("postgres", 1).await?;
    options.following.store(true, Ordering::SeqCst);
    let mut follower = Follower::new(following, source, ledger, receipts, options, run.scenario);
    follower.faults.telling(told::Teller::start(run.notify, run.scenario, &options.state));
    let followed = follower.run(&pool, &run, say).await;
    pool.close().await;
    let Follower { feeder, .. } = follower;
    tokio::task::spawn_blocking(move || feeder.stop()).await.ok();
    followed
}

/// Formats a time as RFC 3339 (UTC).
pub(crate) fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A follower's state between looks.
struct Follower<'a> {
    options: &'a FollowOptions,
    scenario: &'a str,
    feeder: crate::restore::physical::feed::Feeder,
    ledger: Ledger,
    receipts: receipt::Receipts,
    faults: Faults,
    archive: archive::Position,
    source: archive::Archive,
    /// Given and not yet replayed whole, by number.
    pending: BTreeMap<u64, Given>,
    /// Where replay is, and since when it has not moved while out of WAL.
    lsn: u64,
    stalled: Option<(u64, Instant)>,
    /// The gap seen, and since when.
    gap: Option<(String, Instant)>,
    looked: Option<Instant>,
    lag: Duration,
    lag_max: Duration,
    last_recorded_at: Option<SystemTime>,
    recorded: usize,
    confirmed: usize,
    last: Option<String>,
    markers: markers::Markers,
    markers_confirmed: u64,
    /// A full disk: where the feed gives segments, where the ledger is.
    feed_full: Option<Fault>,
    ledger_full: Option<Fault>,
    last_marker: Option<metrics::LastMarker>,
}

impl<'a> Follower<'a> {
    fn new(
        following: Following,
        source: archive::Source,
        ledger: Ledger,
        receipts: receipt::Receipts,
        options: &'a FollowOptions,
        scenario: &'a str,
    ) -> Self {
        let position = archive::Position {
            path: following.path,
            segment_size: following.segment_size,
            planned: following.planned,
            // What the ledger records was proven: it waits for no replay.
            replayed: ledger.newest_segment(),
            first: following.first,
        };
        Follower {
            options,
            scenario,
            source: archive::Archive::new(source, &position),
            archive: position,
            feeder: following.feeder,
            ledger,
            receipts,
            faults: Faults::default(),
            pending: BTreeMap::new(),
            lsn: following.first * following.segment_size,
            stalled: None,
            gap: None,
            looked: None,
            lag: Duration::ZERO,
            lag_max: Duration::ZERO,
            last_recorded_at: None,
            recorded: 0,
            confirmed: 0,
            last: None,
            markers: markers::Markers::start(options.markers.as_ref()),
            markers_confirmed: 0,
            feed_full: None,
            ledger_full: None,
            last_marker: None,
        }
    }

    async fn run(
        &mut self,
        pool: &sqlx::PgPool,
        run: &Run<'_>,
        say: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Followed, FollowError> {
        let started = Instant::now();
        let mut drilled = Instant::now();
        loop {
            let every = self.options.drill_every.is_some_and(|every| drilled.elapsed() >= every);
            if every || self.options.drill_now.swap(false, Ordering::SeqCst) {
                drilled = Instant::now();
                self.copy_now(pool, run, say).await;
            }
            let now = standby::look(pool).await.map_err(FollowError::Standby)?;
            if !now.in_recovery {
                return Err(FollowError::Promoted);
            }
            if let Some(redo) = now.redo {
                self.feeder.keep_from(redo);
            }
            self.replayed(now.lsn, now.out_of_wal, say)?;
            if self
                .looked
                .is_none_or(|at| at.elapsed() >= self.options.look_every.unwrap_or(self.source.source().every()))
            {
                self.look(say).await?;
            }
            self.receipts.tick(&self.ledger, &self.faults, say);
            let stop = self.options.stop.cancelled();
            let over = self.options.run_for.is_some_and(|d| started.elapsed() >= d);
            if over || self.options.stop.is_cancelled() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = stop => break,
            }
        }
        self.receipts.close(&self.ledger, &self.faults, say);
        let standing: Vec<String> = self.faults.standing().map(ToString::to_string).collect();
        if !standing.is_empty() {
            return Err(FollowError::Faults(standing));
        }
        Ok(Followed {
            recorded: self.recorded,
            confirmed: self.confirmed,
            last: self.last.clone(),
            lsn: wal::format_lsn(self.lsn),
            lag_max: self.lag_max,
            faults_found: self.faults.found,
            ledger: self.options.state.join("ledger.jsonl"),
        })
    }

    /// Copies the standby's cluster at a paused point for a drill of now, and hands the copy over.
    async fn copy_now(&self, pool: &sqlx::PgPool, run: &Run<'_>, say: &(dyn Fn(String) + Send + Sync)) {
        let (Some(data), Some(clones)) = (run.data, &run.clones) else {
            return say("no drill of now: the standby's data directory is not on this machine".into());
        };
        let to = std::env::temp_dir().join(format!("pgdrill-now-{}", hex::encode(rand::random::<[u8; 8]>())));
        let wal = clone::Wal { segment_size: self.archive.segment_size, timeline: self.archive.path.target };
        match clone::pause_and_copy(pool, data, &to, wal).await {
            Ok(cloned) => {
                say(format!(
                    "a drill of now: the cluster copied at {} (replay paused {:.0} ms)",
                    cloned.lsn,
                    cloned.paused.as_secs_f64() * 1000.0
                ));
                let _ = clones.send(cloned);
            }
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&to).await;
                say(format!("no drill of now: {}", crate::secret::error_text(&e)));
            }
        }
    }

    /// Replay is at `lsn`: the segments it passed are recorded, the feed told, and a feed that
    /// could not give a segment, or replay stuck inside one, is a fault.
    fn replayed(&mut self, lsn: u64, out_of_wal: bool, say: &dyn Fn(String)) -> Result<(), FollowError> {
        let size = self.archive.segment_size;
        self.feeder.replayed(lsn);
        let given = self.feeder.take_given();
        if !given.is_empty() {
            self.faults.set("refused", None, &|line| say(line));
            self.feed_full = None;
        }
        for g in &given {
            self.markers.given(g.restore_points.iter().cloned());
        }
        self.pending.extend(given.into_iter().map(|g| (g.number, g)));
        if let Some(error) = self.feeder.failed() {
            let problem = crate::secret::error_text(&error);
            match is_disk_full(&error) {
                true => self.feed_full = Some(Fault::Disk { problem }),
                false => self.faults.set("refused", Some(Fault::Refused { problem }), &|line| say(line)),
            }
        }
        while let Some(entry) = self.pending.first_entry() {
            if (entry.key() + 1) * size > lsn {
                break;
            }
            let given = entry.remove();
            match self.record(&given, lsn, say) {
                Ok(()) => self.ledger_full = None,
                Err(e) => {
                    // Recorded once there is room: it waits, and those after it.
                    self.ledger_full = Some(disk_full(e)?);
                    self.pending.insert(given.number, given);
                    break;
                }
            }
        }
        if let Err(e) = self.confirm_markers(lsn, say) {
            self.ledger_full = Some(disk_full(e)?);
        }
        let full = self.ledger_full.clone().or_else(|| self.feed_full.clone());
        self.faults.set("disk", full, &|line| say(line));
        let moved = lsn != self.lsn;
        self.lsn = lsn;
        // Stuck: the WAL after `lsn` is there and does not replay. Inside a segment, only once
        // the next one was given too (a record may go on into it); at a segment's start (after
        // a switch), once that segment was given.
        let there = match lsn.is_multiple_of(size) {
            true => self.feeder.gave(lsn / size),
            false => self.feeder.gave(lsn / size + 1),
        };
        let stuck = out_of_wal && !moved && there;
        self.stalled = match (stuck, self.stalled) {
            (true, Some(since)) => Some(since),
            (true, None) => Some((lsn, Instant::now())),
            (false, _) => None,
        };
        let fault = self.stalled.filter(|(_, since)| since.elapsed() >= STALLED).map(|(at, _)| Fault::Unreadable {
            segment: Segment::of_lsn(self.archive.path.timeline_of(at / size, size), at, size).name(size),
            lsn: wal::format_lsn(at),
        });
        self.faults.set("unreadable", fault, &|line| say(line));
        Ok(())
    }

    /// Records `given`, replayed whole with replay at `lsn`.
    fn record(&mut self, given: &Given, lsn: u64, say: &dyn Fn(String)) -> Result<(), FollowError> {
        let now = SystemTime::now();
        match self.ledger.record(given, rfc3339(now), wal::format_lsn(lsn))? {
            Recorded::New => {
                self.recorded += 1;
                self.last_recorded_at = Some(now);
                let waited = given.archived_at.and_then(|at| now.duration_since(at).ok()).unwrap_or_default();
                say(format!(
                    "replayed {} (sha256 {}), archived {:.1} s before",
                    given.name,
                    &given.sha256[..16],
                    waited.as_secs_f64()
                ));
            }
            Recorded::Again => self.confirmed += 1,
        }
        self.last = Some(given.name.clone());
        // Never back: a restarted follower replays again what the ledger holds (proven, not
        // waiting), from the base backup's start on.
        self.archive.replayed = self.archive.replayed.max(Some(given.number));
        self.source.replayed(&given.name);
        Ok(())
    }

    /// Confirms the markers replay passed (`lsn`), recording each new one; a marker late or a
    /// source that takes none is a fault.
    fn confirm_markers(&mut self, lsn: u64, say: &dyn Fn(String)) -> Result<(), FollowError> {
        for confirmed in self.markers.replayed(lsn, say) {
            if !self.ledger.marker(&confirmed)? {
                continue;
            }
            say(format!(
                "marker `{}` replayed at {}, {:.1} s after its commit on the source",
                confirmed.name,
                wal::format_lsn(confirmed.lsn),
                confirmed.latency.as_secs_f64()
            ));
            self.markers_confirmed += 1;
            let epoch = confirmed.replayed_at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            self.last_marker = Some(metrics::LastMarker {
                latency: confirmed.latency.as_secs_f64(),
                replayed_at: epoch.as_secs_f64(),
            });
        }
        self.faults.set("marker", self.markers.late(), &|line| say(line));
        self.faults.set("source", self.markers.source(), &|line| say(line));
        Ok(())
    }

    /// Lists the archive: the segments archived since go to the feed; a gap, a later timeline or
    /// a store that cannot be listed are faults; the proof lag is measured; `follow.prom` written.
    async fn look(&mut self, say: &(dyn Fn(String) + Send + Sync)) -> Result<(), FollowError> {
        let (store, gap, timeline) = match self.source.look(&self.archive).await {
            Err(e) => (Some(Fault::Store { problem: crate::secret::error_text(&e) }), None, None),
            Ok(look) => {
                if let Some(last) = look.next.last().and_then(|a| Segment::parse(&a.name, self.archive.segment_size)) {
                    self.archive.planned = last.number;
                    self.feeder.more(look.next);
                }
                self.lag = look
                    .oldest_waiting
                    .and_then(|(_, at)| SystemTime::now().duration_since(at).ok())
                    .unwrap_or_default();
                self.lag_max = self.lag_max.max(self.lag);
                self.receipts.note_lag(self.lag);
                let timeline = match look.later_timeline {
                    Some(_) => self.later_timeline(&look.timelines, say)?,
                    None => None,
                };
                (None, self.gap(look.gap), timeline)
            }
        };
        self.faults.set("store", store, &|line| say(line));
        self.faults.set("gap", gap, &|line| say(line));
        self.faults.set("timeline", timeline, &|line| say(line));
        self.looked = Some(Instant::now());
        self.write_metrics(say);
        Ok(())
    }

    /// A later timeline's history is in the archive: the follower goes on along it from its
    /// switch (recorded in the ledger), or it is a fault.
    fn later_timeline(
        &mut self,
        timelines: &std::collections::BTreeSet<u32>,
        say: &dyn Fn(String),
    ) -> Result<Option<Fault>, FollowError> {
        let (path, switch, histories) =
            match timeline::next(self.source.source().folder(), &self.archive.path, self.lsn, timelines) {
                timeline::Next::Stay => return Ok(None),
                timeline::Next::Cannot { later, problem } => return Ok(Some(Fault::Timeline { later, problem })),
                timeline::Next::Follow { path, switch, histories } => (path, switch, histories),
            };
        let (old, new) = (self.archive.path.target, path.target);
        let history = crate::source::physical::timeline::history_name(new);
        let sha256 = histories
            .iter()
            .find(|(t, _)| *t == new)
            .and_then(|(_, file)| std::fs::read(file).ok())
            .map(|bytes| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)))
            .unwrap_or_default();
        self.ledger.start(Line::Timeline {
            timeline: new,
            from: wal::format_lsn(switch),
            history: history.clone(),
            sha256,
            at: rfc3339(SystemTime::now()),
        })?;
        self.feeder.switch_timeline(switch, histories);
        let size = self.archive.segment_size;
        self.archive.planned = self.archive.planned.min((switch / size).saturating_sub(1));
        self.archive.path = path;
        say(format!(
            "following timeline {new} from {} ({history}: it leaves timeline {old} there)",
            wal::format_lsn(switch)
        ));
        Ok(None)
    }

    /// The gap fault, once a segment has been missing past the deadline.
    fn gap(&mut self, seen: Option<(String, String)>) -> Option<Fault> {
        let Some((missing, later)) = seen else {
            self.gap = None;
            return None;
        };
        let since = match &self.gap {
            Some((was, since)) if *was == missing => *since,
            _ => Instant::now(),
        };
        self.gap = Some((missing.clone(), since));
        let waited = since.elapsed();
        (waited >= self.options.gap_after).then_some(Fault::Gap { missing, later, waited })
    }

    fn write_metrics(&self, say: &dyn Fn(String)) {
        let epoch = |at: SystemTime| at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let text = metrics::render(&metrics::Figures {
            scenario: self.scenario,
            proof_lag: self.lag.as_secs_f64(),
            look_at: epoch(SystemTime::now()),
            replay_lsn: self.lsn,
            ledger_segments: self.ledger.segments(),
            last_replayed_at: self.last_recorded_at.map(epoch),
            faults: &self.faults,
            markers: self.markers_confirmed,
            last_marker: self.last_marker,
        });
        if let Err(e) = metrics::write(&self.options.state, &text) {
            say(format!("cannot write {} in `{}`: {e}", metrics::NAME, self.options.state.display()));
        }
    }
}

/// A ledger that cannot be added to for a full disk is a fault (the follower waits for room);
/// any other error stops the follower.
fn disk_full(error: FollowError) -> Result<Fault, FollowError> {
    match error {
        FollowError::Ledger(e) if e.is_disk_full() => Ok(Fault::Disk { problem: crate::secret::error_text(&e) }),
        other => Err(other),
    }
}

/// Whether the feed could not give a segment for a full disk.
fn is_disk_full(error: &crate::restore::physical::stage::StageError) -> bool {
    use std::error::Error;
    let mut cause: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull) {
            return true;
        }
        cause = e.source();
    }
    false
}
