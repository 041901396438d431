//! A [`Feed`] on a thread of its own: it keeps its window ahead of the replay position it is
//! told. A drill's stops on the first segment it cannot give (the recovery's wait then fails
//! with it); a follower's ([`Feeder::follow`]) says why and tries again, since a store may
//! answer again or an archiver upload the segment once more, and takes segments archived since
//! it started ([`Feeder::more`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::{Feed, FeedStats, Given};
use crate::restore::physical::stage::StageError;
use crate::source::physical::wal::Archived;

/// How often a follower's feed tries again a segment it could not give.
const RETRY: Duration = Duration::from_secs(2);

/// What the thread is told.
enum Told {
    /// Replay is in this segment.
    Replaying(u64),
    /// Segments archived since, to give after the planned ones.
    More(Vec<Archived>),
    /// Keep the segments given from this one on.
    KeepFrom(u64),
    /// Go on along a later timeline, which left the one replayed at this LSN, its histories
    /// given.
    Switch(u64, Vec<(u32, PathBuf)>),
}

/// See the module's documentation.
pub(crate) struct Feeder {
    told: Option<mpsc::Sender<Told>>,
    shared: Arc<Mutex<Shared>>,
    thread: Option<std::thread::JoinHandle<()>>,
    segment_size: u64,
}

#[derive(Debug, Default)]
struct Shared {
    done: bool,
    through: Option<u64>,
    error: Option<StageError>,
    stats: FeedStats,
    /// Given since last taken, with digests (a follower's).
    given: Vec<Given>,
}

impl Feeder {
    /// Starts feeding `pg_wal` for a drill's recovery.
    pub(crate) fn start(feed: Feed, pg_wal: PathBuf) -> std::io::Result<Feeder> {
        Feeder::spawn(feed, pg_wal, false)
    }

    /// Starts feeding `pg_wal` for a follower: each segment given is kept with its digest
    /// ([`Feeder::take_given`]), and one that cannot be given is tried again.
    pub(crate) fn follow(mut feed: Feed, pg_wal: PathBuf) -> std::io::Result<Feeder> {
        feed.keep_digests();
        Feeder::spawn(feed, pg_wal, true)
    }

    fn spawn(mut feed: Feed, pg_wal: PathBuf, retries: bool) -> std::io::Result<Feeder> {
        let (tx, rx) = mpsc::channel::<Told>();
        let shared = Arc::new(Mutex::new(Shared {
            done: feed.done(),
            through: feed.given_through(),
            error: None,
            stats: feed.stats(),
            given: Vec::new(),
        }));
        let segment_size = feed.segment_size;
        let state = shared.clone();
        let thread = std::thread::Builder::new().name("pgdrill-wal-feed".into()).spawn(move || {
            let mut replaying = None;
            let mut failed_at: Option<Instant> = None;
            loop {
                if failed_at.is_none_or(|at| at.elapsed() >= RETRY) {
                    let filled = feed.fill(&pg_wal, replaying, None);
                    failed_at = filled.is_err().then(Instant::now);
                    let Ok(mut state) = state.lock() else { return };
                    state.stats = feed.stats();
                    state.done = feed.done();
                    state.through = feed.given_through();
                    state.given.extend(feed.take_given());
                    if let Err(e) = filled {
                        state.error = Some(e);
                        if !retries {
                            return;
                        }
                    }
                }
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(told) => {
                        for told in std::iter::once(told).chain(rx.try_iter()) {
                            match told {
                                Told::Replaying(number) => replaying = Some(number),
                                Told::More(more) => feed.extend(more),
                                Told::KeepFrom(number) => feed.keep_from(number),
                                Told::Switch(switch, histories) => {
                                    if let Err(e) = feed.switch_timeline(&pg_wal, switch, &histories)
                                        && let Ok(mut state) = state.lock()
                                    {
                                        state.error = Some(e);
                                    }
                                }
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        })?;
        Ok(Feeder { told: Some(tx), shared, thread: Some(thread), segment_size })
    }

    /// Replay is at `lsn` (the end of the last record replayed): the segment that record ends in
    /// is kept, and the window counted from it. When the record is a switch, `lsn` is the next
    /// segment's start, and the server still reads the record again when it is promoted (its
    /// end of recovery finds where WAL ends from it): removed, that segment fails the promotion.
    pub(crate) fn replayed(&self, lsn: u64) {
        if let Some(tx) = &self.told {
            let _ = tx.send(Told::Replaying(lsn.saturating_sub(1) / self.segment_size.max(1)));
        }
    }

    /// Segments archived since the feed was planned, each following the last planned.
    pub(crate) fn more(&self, more: Vec<Archived>) {
        if let (Some(tx), false) = (&self.told, more.is_empty()) {
            let _ = tx.send(Told::More(more));
        }
    }

    /// Goes on along a later timeline, which left the one replayed at `switch`, its `histories`
    /// given to `pg_wal` first ([`Feed::switch_timeline`]); the segments given after this are
    /// the new timeline's, from the one holding the switch.
    pub(crate) fn switch_timeline(&self, switch: u64, histories: Vec<(u32, PathBuf)>) {
        if let Some(tx) = &self.told {
            let _ = tx.send(Told::Switch(switch, histories));
        }
    }

    /// Keeps the segment holding `lsn` and those after it, whatever replay passed: a follower's
    /// last restartpoint's redo, from which a copy of its cluster recovers.
    pub(crate) fn keep_from(&self, lsn: u64) {
        if let Some(tx) = &self.told {
            let _ = tx.send(Told::KeepFrom(lsn / self.segment_size.max(1)));
        }
    }

    /// What was given since the last call, with digests (a follower's feed).
    pub(crate) fn take_given(&self) -> Vec<Given> {
        self.shared.lock().map(|mut s| std::mem::take(&mut s.given)).unwrap_or_default()
    }

    /// Why it could not give a segment, once (taken).
    pub(crate) fn failed(&self) -> Option<StageError> {
        self.shared.lock().ok()?.error.take()
    }

    /// Whether every segment was given.
    pub(crate) fn done(&self) -> bool {
        self.shared.lock().is_ok_and(|s| s.done)
    }

    /// Whether segment `number` was given (a follower's feed is never done: its plan grows).
    pub(crate) fn gave(&self, number: u64) -> bool {
        self.shared.lock().is_ok_and(|s| s.through.is_some_and(|t| t >= number))
    }

    /// Whether the segment after the one holding `lsn` was given (or every segment was): a
    /// standby waiting for WAL there is not waiting for the feed.
    pub(crate) fn gave_past(&self, lsn: u64) -> bool {
        let segment = lsn / self.segment_size.max(1);
        self.shared.lock().is_ok_and(|s| s.done || s.through.is_some_and(|t| t > segment))
    }

    /// Stops the thread (it finishes the segment it is giving) and returns what it gave.
    pub(crate) fn stop(mut self) -> FeedStats {
        self.told = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.lock().map(|s| s.stats).unwrap_or_default()
    }
}
