//! Timelines: which one a recovery follows (`[recovery] timeline`, PostgreSQL's
//! `recovery_target_timeline`) and the way to it from the backup's, read from the archive's
//! timeline history files before anything starts, as PostgreSQL's own recovery reads them: the
//! newest timeline is the last of an unbroken run of history files after the backup's; a
//! timeline's history lists where each of its ancestors was left. Each segment is then read from
//! the newest timeline of the way that had begun by it, so a segment of a timeline the history
//! does not lead to is never used. What PostgreSQL would find only half-way (a history that
//! forks before the backup is consistent, one that does not lead through the backup's timeline)
//! or would pass over in silence (segments of a later timeline whose history file is missing:
//! recovery would stay on the old one) fails here, naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::history;
use super::wal;

/// Which timeline recovery follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum TimelineChoice {
    /// The newest the archive's history files lead to (PostgreSQL's default).
    #[default]
    Latest,
    /// The backup's own.
    Current,
    /// This one.
    Number(u32),
}

impl std::fmt::Display for TimelineChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimelineChoice::Latest => f.write_str("latest"),
            TimelineChoice::Current => f.write_str("current"),
            TimelineChoice::Number(n) => write!(f, "{n}"),
        }
    }
}

/// The way recovery goes from the backup's timeline to the one it follows to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimelinePath {
    /// The timeline recovery follows to its end.
    pub target: u32,
    /// Each timeline of the way, from the backup's, with the LSN it begins at (0 for the
    /// backup's own).
    pub stretches: Vec<(u32, u64)>,
    /// The history files of the way (the target's, and the others the archive holds), which
    /// the server reads from `pg_wal`.
    pub histories: Vec<(u32, PathBuf)>,
}

impl TimelinePath {
    /// The backup's own timeline alone.
    pub(crate) fn only(timeline: u32) -> TimelinePath {
        TimelinePath { target: timeline, stretches: vec![(timeline, 0)], histories: Vec::new() }
    }

    /// The timeline segment `number` is read from: the newest of the way that began by it (the
    /// segment holding a switch is the new timeline's), as PostgreSQL reads it.
    pub(crate) fn timeline_of(&self, number: u64, segment_size: u64) -> u32 {
        self.stretches
            .iter()
            .rev()
            .find(|(_, begin)| begin / segment_size.max(1) <= number)
            .or(self.stretches.first())
            .map_or(self.target, |(timeline, _)| *timeline)
    }

    /// The way in words: `timeline 1, then timeline 2 from 0/5000060 (00000002.history)`.
    pub(crate) fn describe(&self) -> String {
        self.stretches
            .iter()
            .enumerate()
            .map(|(i, (timeline, begin))| match i {
                0 => format!("timeline {timeline}"),
                _ => format!("then timeline {timeline} from {}", wal::format_lsn(*begin)),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A timeline history that cannot take this backup where the scenario asks.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TimelineError {
    /// Segments of a later timeline, and no unbroken run of history files to it.
    #[error(
        "the WAL archive `{archive}` holds segments of timeline {timeline}, and not the history file {name} that leads there: PostgreSQL would recover along timeline {stays} and leave them unread (hint: put {name} back in the archive, or recover along timeline {stays} with `[recovery] timeline = {stays}`)"
    )]
    MissingHistory { archive: String, timeline: u32, name: String, stays: u32 },
    /// The timeline named has no history file.
    #[error("`[recovery] timeline = {timeline}`: the WAL archive `{archive}` has no {name}")]
    NoHistory { archive: String, timeline: u32, name: String },
    /// The timeline named is older than the backup's.
    #[error(
        "`[recovery] timeline = {timeline}` is older than the backup's own timeline {backup}: a backup recovers along its timeline or a later one"
    )]
    Older { timeline: u32, backup: u32 },
    /// The history leaves the backup's timeline before the backup is consistent.
    #[error(
        "{name} says timeline {timeline} left timeline {backup} at {switch}, before this backup is consistent, at {needed} ({from}): timeline {timeline} does not continue this backup (hint: recover along timeline {backup} with `[recovery] timeline = \"current\"`, or use a backup taken on timeline {timeline})"
    )]
    ForkedBefore { name: String, timeline: u32, backup: u32, switch: String, needed: String, from: String },
    /// The history does not pass through the backup's timeline.
    #[error(
        "{name} does not lead through timeline {backup}, the backup's (it leads through {through}): timeline {timeline} is another history's (hint: `[recovery] timeline = \"current\"`)"
    )]
    NotDescendant { name: String, timeline: u32, backup: u32, through: String },
    /// A history file that cannot be opened (decompressed).
    #[error("`{path}`")]
    Open {
        path: String,
        #[source]
        source: crate::source::read::OpenError,
    },
    /// A history file that cannot be read.
    #[error("`{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A history file with a line of another shape.
    #[error("`{path}`")]
    History {
        path: String,
        #[source]
        source: history::HistoryError,
    },
    /// A history file whose timelines or switch points go backwards.
    #[error("`{path}`: its timelines and switch points are not in order")]
    Disordered { path: String },
}

/// The name of timeline `timeline`'s history file.
pub(crate) fn history_name(timeline: u32) -> String {
    format!("{timeline:08X}.history")
}

/// What the plan reads of the backup and the archive.
pub(crate) struct Known<'a> {
    /// The archive, as the errors show it.
    pub archive: &'a str,
    /// Its history files by timeline.
    pub histories: &'a BTreeMap<u32, PathBuf>,
    /// The timelines its segments (past the backup's start) are of.
    pub segments_of: &'a BTreeSet<u32>,
    /// The backup's timeline.
    pub backup: u32,
    /// Where the backup is consistent, and what says so: its timeline must reach there.
    pub consistent: (u64, String),
}

/// The way recovery goes for `choice` (see the module's documentation).
pub(crate) fn plan(known: &Known<'_>, choice: TimelineChoice) -> Result<TimelinePath, TimelineError> {
    let backup = known.backup;
    let target = match choice {
        TimelineChoice::Current => backup,
        TimelineChoice::Number(n) if n < backup => return Err(TimelineError::Older { timeline: n, backup }),
        TimelineChoice::Number(n) => n,
        TimelineChoice::Latest => {
            let mut newest = backup;
            while known.histories.contains_key(&(newest + 1)) {
                newest += 1;
            }
            if let Some(&later) = known.segments_of.range(newest + 1..).next() {
                return Err(TimelineError::MissingHistory {
                    archive: known.archive.to_owned(),
                    timeline: later,
                    name: history_name(newest + 1),
                    stays: newest,
                });
            }
            newest
        }
    };
    if target == backup {
        return Ok(TimelinePath::only(backup));
    }
    let name = history_name(target);
    let path = known.histories.get(&target).ok_or_else(|| TimelineError::NoHistory {
        archive: known.archive.to_owned(),
        timeline: target,
        name: name.clone(),
    })?;
    let shown = path.display().to_string();
    let mut text = String::new();
    let mut opened =
        crate::source::read::open(path, false).map_err(|source| TimelineError::Open { path: shown.clone(), source })?;
    std::io::Read::read_to_string(&mut std::io::Read::take(&mut opened.reader, 1 << 20), &mut text)
        .map_err(|source| TimelineError::Read { path: shown.clone(), source })?;
    let branches = history::parse_timeline_history(&text)
        .map_err(|source| TimelineError::History { path: shown.clone(), source })?;
    let ordered = branches.windows(2).all(|w| w[0].parent < w[1].parent && w[0].switch_lsn <= w[1].switch_lsn);
    if !ordered || branches.last().is_some_and(|b| b.parent >= target) {
        return Err(TimelineError::Disordered { path: shown });
    }
    let Some(at) = branches.iter().position(|b| b.parent == backup) else {
        let through: Vec<String> = branches.iter().map(|b| b.parent.to_string()).collect();
        return Err(TimelineError::NotDescendant {
            name,
            timeline: target,
            backup,
            through: if through.is_empty() { "no earlier timeline".into() } else { through.join(", ") },
        });
    };
    let (needed, from) = &known.consistent;
    if branches[at].switch_lsn < *needed {
        return Err(TimelineError::ForkedBefore {
            name,
            timeline: target,
            backup,
            switch: wal::format_lsn(branches[at].switch_lsn),
            needed: wal::format_lsn(*needed),
            from: from.clone(),
        });
    }
    let mut stretches = vec![(backup, 0)];
    for k in at + 1..branches.len() {
        stretches.push((branches[k].parent, branches[k - 1].switch_lsn));
    }
    stretches.push((target, branches.last().map_or(0, |b| b.switch_lsn)));
    let histories =
        stretches[1..].iter().filter_map(|(t, _)| known.histories.get(t).map(|p| (*t, p.clone()))).collect();
    Ok(TimelinePath { target, stretches, histories })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Archive {
        dir: tempfile::TempDir,
        histories: BTreeMap<u32, PathBuf>,
        segments_of: BTreeSet<u32>,
    }

    impl Archive {
        fn new(histories: &[(u32, &str)], segments_of: &[u32]) -> Archive {
            let dir = tempfile::tempdir().unwrap();
            let histories = histories
                .iter()
                .map(|(t, text)| {
                    let path = dir.path().join(history_name(*t));
                    std::fs::write(&path, text).unwrap();
                    (*t, path)
                })
                .collect();
            Archive { dir, histories, segments_of: segments_of.iter().copied().collect() }
        }

        fn plan(&self, backup: u32, consistent: u64, choice: TimelineChoice) -> Result<TimelinePath, TimelineError> {
            let shown = self.dir.path().display().to_string();
            let known = Known {
                archive: &shown,
                histories: &self.histories,
                segments_of: &self.segments_of,
                backup,
                consistent: (consistent, "the manifest's WAL-Ranges".into()),
            };
            plan(&known, choice)
        }
    }

    const TWO: &str = "1\t0/5000060\tbefore 2026-11-23 13:00:00+00\n";
    const THREE: &str = "1\t0/5000060\tbefore 2026-11-23 13:00:00+00\n2\t0/7000000\tno recovery target specified\n";

    #[test]
    fn the_latest_timeline_is_the_last_of_an_unbroken_run_of_history_files() {
        let archive = Archive::new(&[(2, TWO), (3, THREE)], &[1, 2, 3]);
        let path = archive.plan(1, 0x300_0000, TimelineChoice::Latest).unwrap();
        assert_eq!(path.target, 3);
        assert_eq!(path.stretches, [(1, 0), (2, 0x500_0060), (3, 0x700_0000)]);
        assert_eq!(path.histories.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(path.describe(), "timeline 1, then timeline 2 from 0/5000060, then timeline 3 from 0/7000000");
        let mb16 = 16 << 20;
        // The segment holding a switch is the new timeline's.
        assert_eq!([4, 5, 6, 7, 8].map(|n| path.timeline_of(n, mb16)), [1, 2, 2, 3, 3]);
        // The backup's own, or one named.
        assert_eq!(archive.plan(1, 0x300_0000, TimelineChoice::Current).unwrap(), TimelinePath::only(1));
        let two = archive.plan(1, 0x300_0000, TimelineChoice::Number(2)).unwrap();
        assert_eq!((two.target, two.stretches.len()), (2, 2));
        // A backup of timeline 2 after the fork goes on to 3.
        assert_eq!(archive.plan(2, 0x600_0000, TimelineChoice::Latest).unwrap().stretches, [(2, 0), (3, 0x700_0000)]);
    }

    #[test]
    fn a_missing_or_lying_history_is_named_before_anything_starts() {
        // Segments of timeline 2, and no 00000002.history: PostgreSQL would stay on 1.
        let missing = Archive::new(&[], &[1, 2]);
        let error = missing.plan(1, 0x300_0000, TimelineChoice::Latest).unwrap_err().to_string();
        assert!(error.contains("holds segments of timeline 2, and not the history file 00000002.history"), "{error}");
        assert!(error.contains("`[recovery] timeline = 1`"), "{error}");
        // Named, the old timeline is fine: timeline 2's segments are not on its way.
        assert_eq!(missing.plan(1, 0x300_0000, TimelineChoice::Number(1)).unwrap().target, 1);
        // A hole in the run: 3's history is there, 2's is not.
        let hole = Archive::new(&[(3, THREE)], &[1, 3]);
        let error = hole.plan(1, 0x300_0000, TimelineChoice::Latest).unwrap_err().to_string();
        assert!(error.contains("segments of timeline 3, and not the history file 00000002.history"), "{error}");
        // Forked before the backup is consistent.
        let early = Archive::new(&[(2, TWO)], &[1, 2]);
        let error = early.plan(1, 0x600_0000, TimelineChoice::Latest).unwrap_err().to_string();
        assert!(
            error.contains(
                "00000002.history says timeline 2 left timeline 1 at 0/5000060, before this backup is consistent, at 0/6000000 (the manifest's WAL-Ranges)"
            ),
            "{error}"
        );
        // Another branch: timeline 3 came from 1, the backup is on 2.
        let other = Archive::new(&[(3, "1\t0/5000060\tx\n")], &[3]);
        let error = other.plan(2, 0x300_0000, TimelineChoice::Number(3)).unwrap_err().to_string();
        assert!(error.contains("does not lead through timeline 2, the backup's (it leads through 1)"), "{error}");
        let error = other.plan(2, 0x300_0000, TimelineChoice::Number(5)).unwrap_err().to_string();
        assert!(error.contains("has no 00000005.history"), "{error}");
        assert!(other.plan(2, 0, TimelineChoice::Number(1)).unwrap_err().to_string().contains("is older than"));
        let garbled = Archive::new(&[(2, "2\t0/5000060\tx\n")], &[2]);
        let error = garbled.plan(1, 0, TimelineChoice::Latest).unwrap_err().to_string();
        assert!(error.contains("not in order"), "{error}");
    }
}
