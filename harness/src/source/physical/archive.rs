//! The WAL archive a base backup's recovery reads: its segments from the backup's start (a
//! pgBackRest set's in its repository, a Barman backup's in its server's `wals`, else a
//! folder's), the segment size their first header says, and the timeline the scenario chooses;
//! a gap after the backup's start, or before a target LSN, fails here, naming the segment.

use std::path::{Path, PathBuf};

use super::timeline::{self, TimelineChoice, TimelinePath};
use super::wal::{self, Archived, Segment};
use super::{BaseBackup, Layout, PhysicalError, pgbackrest};

/// The WAL a recovery of `backup` reads from an archive folder.
#[derive(Debug, Clone)]
pub(crate) struct WalArchive {
    pub dir: PathBuf,
    /// From the first segment recovery needs of it on, without a gap.
    pub segments: Vec<Archived>,
    /// The segment size, from the first segment's header (16 MB unless initdb was told).
    pub segment_size: u64,
    /// The timelines recovery follows, and their history files.
    pub path: TimelinePath,
}

/// The archive of `backup` and every segment in it: a pgBackRest set's in its repository, a
/// Barman backup's in its server's `wals`, else those of the folder `dir` (none without one).
fn listed(dir: Option<&Path>, backup: &BaseBackup) -> Result<Option<(PathBuf, Vec<Archived>)>, PhysicalError> {
    let list = |dir: &Path| {
        wal::list_archive(dir)
            .map(|listed| Some((dir.to_owned(), listed)))
            .map_err(|source| PhysicalError::Read { path: dir.display().to_string(), source })
    };
    match (&backup.layout, dir, &backup.barman) {
        (Layout::PgBackRest(set), _, _) => pgbackrest::archive(&backup.dir, set).map(Some),
        (_, None, Some(barman)) => list(&barman.wals()),
        (_, Some(dir), _) => list(dir),
        (_, None, None) => Ok(None),
    }
}

/// The archive's segment size, as its first segment's header says (PostgreSQL's default when
/// it has none from the backup's start, or it is encrypted: pgBackRest decrypts it only as
/// recovery reads it, and pg_control's size is compared with this one).
fn segment_size(first: Option<&Archived>) -> Result<u64, PhysicalError> {
    let Some(first) = first.filter(|f| !wal::is_encrypted(&f.path)) else { return Ok(wal::DEFAULT_SEGMENT_SIZE) };
    let header = wal::read_header(&first.path)
        .map_err(|source| PhysicalError::Read { path: first.path.display().to_string(), source })?
        .ok_or_else(|| PhysicalError::Malformed {
            path: first.path.display().to_string(),
            message: "is not a WAL segment: its first page has no WAL header (a zeroed or truncated file?)".into(),
        })?;
    Ok(u64::from(header.segment_size))
}

/// Lists the archive's segments recovery of `backup` reads (a pgBackRest set's in its
/// repository, else those of the folder `dir`), and fails on a gap after the backup's start (or
/// before `target_lsn`, when recovery must reach one). Reads only names and the first page of
/// one segment: the rest is checked as the segments are copied.
pub(crate) fn archive(
    dir: Option<&Path>,
    backup: &BaseBackup,
    target_lsn: Option<u64>,
    timeline: TimelineChoice,
) -> Result<Option<WalArchive>, PhysicalError> {
    let Some((dir, listed)) = listed(dir, backup)? else { return Ok(None) };
    let shown = dir.display().to_string();
    let start_name = &backup.label.start_segment;
    // The segment size is what the segments say; a name read with the wrong size would be
    // another segment.
    let first = listed.iter().find(|a| a.name[..8] == start_name[..8] && a.name.as_str() >= start_name.as_str());
    let segment_size = segment_size(first)?;
    let start = Segment::parse(start_name, segment_size).ok_or_else(|| PhysicalError::Malformed {
        path: shown.clone(),
        message: format!("the backup starts in segment {start_name}, which is no segment of {segment_size}-byte WAL"),
    })?;
    let histories =
        wal::list_histories(&dir).map_err(|source| PhysicalError::Read { path: dir.display().to_string(), source })?;
    let segments_of = listed
        .iter()
        .filter_map(|a| Segment::parse(&a.name, segment_size))
        .filter(|s| s.number >= start.number)
        .map(|s| s.timeline)
        .collect();
    let known = timeline::Known {
        archive: &shown,
        histories: &histories,
        segments_of: &segments_of,
        backup: start.timeline,
        consistent: backup.consistent(),
    };
    let path = timeline::plan(&known, timeline)?;
    let on_path = |number: u64| path.timeline_of(number, segment_size);
    let own = if backup.carries_wal() { backup.end_segment(segment_size) } else { None };
    let run =
        wal::run_from(&listed, start, own, segment_size, &on_path).map_err(|(missing, after)| PhysicalError::Gap {
            archive: shown.clone(),
            missing,
            after: after.map(|a| format!(" (after {a})")).unwrap_or_default(),
            start: start_name.clone(),
        })?;
    let segments: Vec<Archived> = run.into_iter().cloned().collect();
    // A backup without its own WAL is consistent only once the archive took it to its end.
    if !backup.carries_wal()
        && let Some(end) = backup.end_segment(segment_size)
    {
        let last = segments.last().and_then(|a| Segment::parse(&a.name, segment_size));
        if last.is_none_or(|last| last.number < end.number) {
            let missing = last.map_or(start, |l| Segment { number: l.number + 1, timeline: on_path(l.number + 1) });
            return Err(PhysicalError::Gap {
                archive: shown,
                missing: missing.name(segment_size),
                after: last.map(|l| format!(" (after {})", l.name(segment_size))).unwrap_or_default(),
                start: start_name.clone(),
            });
        }
    }
    if let Some(lsn) = target_lsn {
        let needed = Segment::of_lsn(on_path(lsn / segment_size), lsn, segment_size);
        let last = segments.last().and_then(|a| Segment::parse(&a.name, segment_size)).or(own).unwrap_or(start);
        if last.number < needed.number {
            return Err(PhysicalError::ShortOfTarget {
                archive: shown,
                last: last.name(segment_size),
                lsn: wal::format_lsn(lsn),
                needed: needed.name(segment_size),
            });
        }
    }
    Ok(Some(WalArchive { dir, segments, segment_size, path }))
}
