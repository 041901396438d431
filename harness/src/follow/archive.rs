//! A follower's look at the archive: the segments archived since the last one planned, each on
//! the timeline the way followed gives it, a gap (a segment missing while a later one is there),
//! the oldest segment still waiting for replay (the proof lag is its age), and the timelines of
//! the segments and histories listed (a later one may be followed: `timeline`).
//!
//! The archive is a folder (flat, or a folder per log as Barman keeps it), a pgBackRest
//! repository's archive folder (`<segment>-<sha1>.gz` under a folder per log: the feed checks
//! the SHA-1 its name records), or a prefix of an S3 bucket: listed from the last segment planned
//! on (the store's `start-after`), its new segments copied into the drill's mirror of it before
//! they are given to the feed, and its later timelines' histories before they are read; a
//! pgBackRest repository or a barman-cloud server in S3 a folder per log at a time (`store`).
//!
//! When a segment was archived is what the store says (a file's time, an object's
//! `LastModified`), and whoever writes the archive sets that: a time in the past would make a
//! segment just archived look long overdue, one in the future would hide a segment replay never
//! reaches. A follower knows a segment has waited since the later of the store's time and the
//! moment it first listed it; and a store's time after that moment is impossible (an object
//! listed was written before), so it is that moment: the proof lag counts from when the follower
//! first listed the segment (kept in memory; after a restart, what the ledger holds is proven and
//! the rest is seen anew). The ledger records the store's time as the store says it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::secret::Redactor;
use crate::source::SourceError;
use crate::source::physical::timeline::TimelinePath;
use crate::source::physical::wal::{self, Archived, Segment};
use crate::source::physical::{PhysicalError, pgbackrest};
use crate::source::s3::S3Spec;

mod store;
use store::Store;
pub(crate) use store::StoreLayout;

/// How often a folder is listed again.
const FOLDER_EVERY: Duration = Duration::from_secs(1);

/// How often a store is: each look is a request or three (billed, and rate-limited by some
/// stores).
const STORE_EVERY: Duration = Duration::from_secs(5);

/// The most segments one look copies from a store (the rest at the next look).
const FETCH_AT_ONCE: usize = 16;

/// Where a follower's archive is.
pub(crate) enum Source {
    /// A folder on this machine.
    Folder(PathBuf),
    /// A pgBackRest repository's archive folder of the cluster (`archive/<stanza>/<id>`).
    PgBackRest(PathBuf),
    /// A prefix of an S3 bucket laid out as `layout` says, whose new segments are copied into
    /// the folder `mirror` (of the same layout).
    S3 { spec: S3Spec, redactor: Redactor, mirror: PathBuf, layout: StoreLayout },
}

impl Source {
    /// Where it is, in words.
    pub(crate) fn shown(&self) -> String {
        match self {
            Source::Folder(dir) | Source::PgBackRest(dir) => dir.display().to_string(),
            Source::S3 { spec, .. } => spec.location(),
        }
    }

    /// The folder on this machine that holds it (for S3, the drill's copy): history files are
    /// read there.
    pub(crate) fn folder(&self) -> &Path {
        match self {
            Source::Folder(dir) | Source::PgBackRest(dir) | Source::S3 { mirror: dir, .. } => dir,
        }
    }

    /// How often it is listed again.
    pub(crate) fn every(&self) -> Duration {
        match self {
            Source::Folder(_) | Source::PgBackRest(_) => FOLDER_EVERY,
            Source::S3 { .. } => STORE_EVERY,
        }
    }
}

/// Why the archive could not be looked at: the store's reason.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LookError {
    #[error("cannot list the archive folder `{path}`")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Repository(#[from] PhysicalError),
    #[error(transparent)]
    Store(#[from] SourceError),
    #[error("{location} did not answer within {} s", .waited.as_secs())]
    Silent { location: String, waited: Duration },
    /// An object under a segment's name larger than any segment: not copied (whoever writes the
    /// bucket could fill the follower's disk).
    #[error(
        "`{location}` is {size} bytes, and a segment of this cluster {segment_size}: not copied (not a segment of it)"
    )]
    TooLarge { location: String, size: u64, segment_size: u64 },
}

/// What one look found.
#[derive(Debug, Default)]
pub(crate) struct Look {
    /// The segments after the last one planned, in order, up to a gap.
    pub next: Vec<Archived>,
    /// The first segment missing before a later one that is there, and that later one.
    pub gap: Option<(String, String)>,
    /// The segment archived and not yet replayed that has waited longest, and since when.
    pub oldest_waiting: Option<(String, SystemTime)>,
    /// A timeline later than the one followed, whose history file is in the archive.
    pub later_timeline: Option<u32>,
    /// The timelines of the segments listed.
    pub timelines: BTreeSet<u32>,
}

/// Where the follower is: what it follows and how far.
pub(crate) struct Position {
    /// The way along the timelines: each segment is read from the timeline it gives it.
    pub path: TimelinePath,
    pub segment_size: u64,
    /// The last segment planned for the feed.
    pub planned: u64,
    /// The last segment replayed whole (none yet: every segment from the start waits).
    pub replayed: Option<u64>,
    /// The first segment the follower replays.
    pub first: u64,
}

/// What a listing found: the segments (by name, each once), and the timelines of the
/// histories.
#[derive(Default)]
struct Listing {
    segments: Vec<Archived>,
    /// The object each segment is in, and its size (a store's).
    keys: HashMap<String, (String, u64)>,
    histories: Vec<u32>,
    /// Timelines the archive holds segments of, beyond those of the segments listed (a store's
    /// logs' folders say theirs).
    timelines: BTreeSet<u32>,
}

impl Position {
    /// Segment `number` on the timeline the way gives it.
    fn segment(&self, number: u64) -> Segment {
        Segment { timeline: self.path.timeline_of(number, self.segment_size), number }
    }
}

/// A follower's archive: where it is, and when it first listed each segment not yet replayed
/// (by number and timeline).
pub(crate) struct Archive {
    source: Source,
    seen: BTreeMap<(u64, u32), SystemTime>,
}

impl Archive {
    /// The archive at `source`, its segments after the last replayed through the last planned
    /// (planned before any look) seen now.
    pub(crate) fn new(source: Source, at: &Position) -> Archive {
        let now = SystemTime::now();
        let from = at.replayed.map_or(at.first, |r| r + 1);
        Archive { source, seen: (from..=at.planned).map(|n| ((n, at.segment(n).timeline), now)).collect() }
    }

    pub(crate) fn source(&self) -> &Source {
        &self.source
    }

    /// Segment `name` was replayed whole: a store's copy of it on this machine is no longer
    /// needed (the feed gave it to `pg_wal`; a follower started again copies the archive again),
    /// and is removed, so that the copy holds what waits for replay, not the whole archive.
    pub(crate) fn replayed(&self, name: &str) {
        let Source::S3 { mirror, layout, .. } = &self.source else { return };
        let folder = match layout {
            StoreLayout::Flat => mirror.clone(),
            StoreLayout::PgBackRest | StoreLayout::Barman => mirror.join(name.get(..16).unwrap_or_default()),
        };
        // Its file, whatever its compression (and a pgBackRest one's SHA-1) in its name.
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Lists the archive: see [`Look`].
    pub(crate) async fn look(&mut self, at: &Position) -> Result<Look, LookError> {
        let size = at.segment_size;
        let listing = match &self.source {
            Source::Folder(dir) => {
                let failed = |source| LookError::Folder { path: dir.display().to_string(), source };
                let mut listing = Listing { segments: wal::list_archive(dir).map_err(failed)?, ..Listing::default() };
                listing.histories = wal::list_histories(dir).map_err(failed)?.into_keys().collect();
                listing
            }
            Source::PgBackRest(dir) => {
                let from = at.segment(at.replayed.unwrap_or(at.first)).name(size);
                let segments = pgbackrest::list_archive(dir, Some(&from))?;
                let failed = |source| LookError::Folder { path: dir.display().to_string(), source };
                let histories = wal::list_histories(dir).map_err(failed)?.into_keys().collect();
                Listing { segments, histories, ..Listing::default() }
            }
            Source::S3 { spec, redactor, mirror, layout } => {
                let store = Store { spec, redactor, mirror, layout: *layout };
                let bucket = store.open()?;
                let listing = store.list(&bucket, at).await?;
                let mut look = note(&mut self.seen, plan(&listing, at), &listing, at);
                look.next.truncate(FETCH_AT_ONCE);
                store.fetch(&bucket, &listing, &look.next, at).await?;
                return Ok(look);
            }
        };
        Ok(note(&mut self.seen, plan(&listing, at), &listing, at))
    }
}

/// Notes in `seen` the segments `listing` holds that wait for replay, forgets those replayed,
/// and says which has waited longest, and since when (see the module's documentation).
fn note(seen: &mut BTreeMap<(u64, u32), SystemTime>, mut look: Look, listing: &Listing, at: &Position) -> Look {
    let now = SystemTime::now();
    let waiting = |number: u64| number >= at.first && at.replayed.is_none_or(|r| number > r);
    for archived in &listing.segments {
        let Some(segment) = Segment::parse(&archived.name, at.segment_size) else { continue };
        if segment.timeline == at.segment(segment.number).timeline && waiting(segment.number) {
            seen.entry((segment.number, segment.timeline)).or_insert(now);
        }
    }
    // Forgotten once replayed, or off the way (a timeline followed since leaves it).
    seen.retain(|(number, timeline), _| waiting(*number) && *timeline == at.segment(*number).timeline);
    let longest = seen.iter().min_by_key(|(key, since)| (**since, **key));
    look.oldest_waiting = longest.map(|((number, timeline), since)| {
        (Segment { timeline: *timeline, number: *number }.name(at.segment_size), *since)
    });
    look.later_timeline = listing.histories.iter().copied().filter(|t| *t > at.path.target).max();
    look
}

/// The segments after the last one planned, up to a gap, and the gap.
fn plan(listing: &Listing, at: &Position) -> Look {
    let size = at.segment_size;
    let mut look = Look { timelines: listing.timelines.clone(), ..Look::default() };
    let mut expected = at.planned + 1;
    for archived in &listing.segments {
        let Some(segment) = Segment::parse(&archived.name, size) else { continue };
        look.timelines.insert(segment.timeline);
        if segment.timeline != at.segment(segment.number).timeline || segment.number < expected {
            continue;
        }
        if segment.number == expected && look.gap.is_none() {
            look.next.push(archived.clone());
            expected += 1;
        } else if look.gap.is_none() {
            let missing = at.segment(expected).name(size);
            look.gap = Some((missing, archived.name.clone()));
        }
    }
    look
}

#[cfg(test)]
mod tests;
