//! A follower's look at the archive: the segments archived since the last one planned, on the
//! timeline it follows, a gap (a segment missing while a later one is there), the oldest segment
//! still waiting for replay (the proof lag is its age), and a timeline it cannot follow.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;

use crate::source::physical::timeline::TimelinePath;
use crate::source::physical::wal::{self, Archived, Segment};

/// What one look found.
#[derive(Debug, Default)]
pub(crate) struct Look {
    /// The segments after the last one planned, in order, up to a gap.
    pub next: Vec<Archived>,
    /// The first segment missing before a later one that is there, and that later one.
    pub gap: Option<(String, String)>,
    /// The oldest segment archived and not yet replayed, and when it was archived.
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

/// Looks at the archive folder `dir`.
pub(crate) fn look(dir: &Path, at: &Position) -> std::io::Result<Look> {
    let listed = wal::list_archive(dir)?;
    let size = at.segment_size;
    let mut look = Look::default();
    let mut expected = at.planned + 1;
    for archived in &listed {
        let Some(segment) = Segment::parse(&archived.name, size) else { continue };
        look.timelines.insert(segment.timeline);
        let timeline = at.path.timeline_of(segment.number, size);
        if segment.timeline != timeline || segment.number < at.first {
            continue;
        }
        let waiting = at.replayed.is_none_or(|r| segment.number > r);
        if waiting
            && look.oldest_waiting.is_none()
            && let Ok(modified) = std::fs::metadata(&archived.path).and_then(|m| m.modified())
        {
            look.oldest_waiting = Some((archived.name.clone(), modified));
        }
        if segment.number < expected {
            continue;
        }
        if segment.number == expected && look.gap.is_none() {
            look.next.push(archived.clone());
            expected += 1;
        } else if look.gap.is_none() {
            let missing = Segment { timeline: at.path.timeline_of(expected, size), number: expected }.name(size);
            look.gap = Some((missing, archived.name.clone()));
        }
    }
    look.later_timeline = wal::list_histories(dir)?.into_keys().filter(|t| *t > at.path.target).max();
    Ok(look)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: u64 = 16 << 20;

    fn archive(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        dir
    }

    fn at(planned: u64, replayed: Option<u64>) -> Position {
        Position { path: TimelinePath::only(1), segment_size: SIZE, planned, replayed, first: 2 }
    }

    #[test]
    fn the_segments_after_the_planned_one_are_next_up_to_a_gap_which_is_named() {
        let dir = archive(&[
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000004",
            "000000010000000000000006",
            "000000020000000000000007",
        ]);
        let look = look(dir.path(), &at(2, Some(2))).unwrap();
        let next: Vec<&str> = look.next.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(next, ["000000010000000000000003", "000000010000000000000004"]);
        assert_eq!(look.gap, Some(("000000010000000000000005".to_owned(), "000000010000000000000006".to_owned())));
        assert_eq!(look.oldest_waiting.map(|(name, _)| name).as_deref(), Some("000000010000000000000003"));
        assert_eq!(look.later_timeline, None);
    }

    #[test]
    fn nothing_waits_once_all_is_replayed_and_a_later_timeline_is_seen() {
        let dir = archive(&["000000010000000000000002", "000000010000000000000003", "00000002.history"]);
        let look = look(dir.path(), &at(3, Some(3))).unwrap();
        assert!(look.next.is_empty() && look.gap.is_none() && look.oldest_waiting.is_none(), "{look:?}");
        assert_eq!(look.later_timeline, Some(2));
        // A missing segment with nothing after it is not archived yet: no gap.
        let look = super::look(dir.path(), &at(1, None)).unwrap();
        assert_eq!(look.gap, None);
    }
}
