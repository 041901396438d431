//! A later timeline in the archive (a failover, a restore archiving here): the follower goes on
//! along it when its history leaves the timeline followed at or after where replay is, as a
//! standby with `recovery_target_timeline = 'latest'` does; the way is read from the history
//! files as a drill's recovery reads it before it starts (`timeline::plan`). A timeline that
//! left before replay's point (replay went on along WAL the new timeline does not continue), or
//! does not lead through the timeline followed, cannot be followed: a new base backup is needed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::source::physical::timeline::{self, Known, TimelineChoice, TimelineError, TimelinePath};
use crate::source::physical::wal;

/// What a later timeline's history means for the follower.
#[derive(Debug)]
pub(crate) enum Next {
    /// Nothing to follow yet (its segments are there and its history is not, or no later one).
    Stay,
    /// Go on along it: the whole way from the base backup's timeline, the LSN it leaves the
    /// timeline followed at, and the history files of the new stretch.
    Follow { path: TimelinePath, switch: u64, histories: Vec<(u32, PathBuf)> },
    /// It cannot be followed, and why.
    Cannot { later: u32, problem: String },
}

/// What the archive in `dir` offers after `current` (the way followed so far), replay at
/// `replay`, the segments listed being of `timelines`.
pub(crate) fn next(dir: &Path, current: &TimelinePath, replay: u64, timelines: &BTreeSet<u32>) -> Next {
    let histories = match wal::list_histories(dir) {
        Ok(histories) => histories,
        Err(e) => {
            return Next::Cannot { later: current.target + 1, problem: format!("cannot list its histories: {e}") };
        }
    };
    let known = Known {
        archive: &dir.display().to_string(),
        histories: &histories,
        segments_of: timelines,
        backup: current.target,
        consistent: (replay, "where the follower's replay is".to_owned()),
    };
    match timeline::plan(&known, TimelineChoice::Latest) {
        Ok(way) if way.target == current.target => Next::Stay,
        Ok(way) => {
            let switch = way.stretches.get(1).map_or(0, |(_, at)| *at);
            let mut path = current.clone();
            path.target = way.target;
            path.stretches.extend(way.stretches.into_iter().skip(1));
            path.histories.extend(way.histories.iter().cloned());
            Next::Follow { path, switch, histories: way.histories }
        }
        // The new timeline's segments came first: its history is uploaded after them.
        Err(TimelineError::MissingHistory { .. }) => Next::Stay,
        Err(TimelineError::ForkedBefore { timeline, switch, needed, .. }) => Next::Cannot {
            later: timeline,
            problem: format!(
                "timeline {timeline} left timeline {} at {switch}, and replay is at {needed}, past it: this follower replayed WAL that timeline {timeline} does not continue (hint: follow a base backup taken on timeline {timeline})",
                current.target
            ),
        },
        Err(e) => Next::Cannot { later: current.target + 1, problem: crate::secret::error_text(&e) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: u64 = 16 << 20;

    fn archive(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn timelines(t: &[u32]) -> BTreeSet<u32> {
        t.iter().copied().collect()
    }

    #[test]
    fn a_timeline_that_leaves_at_or_after_replay_is_followed_from_its_switch() {
        let dir = archive(&[("00000002.history", "1\t0/5000000\tno recovery target specified\n")]);
        let current = TimelinePath::only(1);
        let Next::Follow { path, switch, histories } = next(dir.path(), &current, 0x500_0000, &timelines(&[1, 2]))
        else {
            panic!("not followed");
        };
        assert_eq!(switch, 0x500_0000);
        assert_eq!(path.target, 2);
        assert_eq!(path.stretches, [(1, 0), (2, 0x500_0000)]);
        assert_eq!(path.timeline_of(4, SIZE), 1);
        assert_eq!(path.timeline_of(5, SIZE), 2);
        assert_eq!(histories.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [2]);
        // Once on it, nothing later: stay.
        assert!(matches!(next(dir.path(), &path, 0x600_0000, &timelines(&[1, 2])), Next::Stay));
    }

    #[test]
    fn a_timeline_that_left_before_replay_or_not_from_the_followed_one_cannot_be_followed() {
        let dir = archive(&[("00000002.history", "1\t0/5000000\tno recovery target specified\n")]);
        let Next::Cannot { later, problem } = next(dir.path(), &TimelinePath::only(1), 0x500_0100, &timelines(&[1]))
        else {
            panic!("followed");
        };
        assert_eq!(later, 2);
        assert!(problem.contains("timeline 2 left timeline 1 at 0/5000000, and replay is at 0/5000100"), "{problem}");
        let other = archive(&[
            ("00000003.history", "2\t0/5000000\tno recovery target specified\n"),
            ("00000002.history", "3\t0/4000000\tnot a history\n"),
        ]);
        assert!(matches!(next(other.path(), &TimelinePath::only(1), 0, &timelines(&[])), Next::Cannot { .. }));
        // Segments of timeline 2 and no history yet: not followed, no fault.
        let early = archive(&[]);
        assert!(matches!(next(early.path(), &TimelinePath::only(1), 0, &timelines(&[1, 2])), Next::Stay));
    }
}
