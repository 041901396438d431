//! Whether a recovery to the archive's end tested the archive. PostgreSQL ends replay at the
//! first record it cannot read (a segment zeroed, damaged or cut short after a valid first page,
//! a record of another cluster, or one whose checksum or link to the record before fails) and,
//! recovering to the end of the WAL, takes that for the end: an archive whose segments past the
//! backup's end do not read is replayed as far as they do, and a drill that promoted there would
//! pass on WAL it never read (and date the backup, for its RPO, by a segment it never replayed).
//! So a recovery to the archive's end (`[recovery] target` unset) whose archive holds segments
//! past the segment the backup ends in must have replayed into the archive's last segment: a
//! record of it, at least. `target = "immediate"` asks for the backup's end and reads nothing
//! past it; a time, an LSN, a transaction or a restore point is judged by what the server's log
//! says it stopped at (`reach`), and a target past what replay could read is not reached.

use crate::scenario::RecoveryTarget;
use crate::source::physical::timeline::TimelinePath;
use crate::source::physical::wal::{self, Segment};

/// The archive's last segment recovery is given, and the segment the backup ends in.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveEnd {
    /// The number of the archive's last segment on the way recovery follows.
    pub last: u64,
    /// The number of the segment the backup ends in (where its recovery is first consistent).
    pub backup_end: u64,
    pub segment_size: u64,
    /// The timelines recovery follows, which name the segments.
    pub path: TimelinePath,
}

impl ArchiveEnd {
    /// Whether the archive holds segments past the one the backup ends in: WAL a recovery to the
    /// archive's end must read.
    pub(crate) fn past_backup(&self) -> bool {
        self.last > self.backup_end
    }

    /// Whether replay that ended at `lsn` read into the archive's last segment (a record ending
    /// past its start); replay stopped at its very start read nothing of it.
    pub(crate) fn reached(&self, lsn: u64) -> bool {
        lsn > self.last.saturating_mul(self.segment_size)
    }

    /// The name of segment `number` on the way recovery follows.
    fn name(&self, number: u64) -> String {
        let size = self.segment_size.max(1);
        Segment { timeline: self.path.timeline_of(number, size), number }.name(size)
    }

    /// The archive's last segment's name.
    pub(crate) fn last_name(&self) -> String {
        self.name(self.last)
    }

    /// The segment holding the last byte replay read when it ended at `lsn`.
    pub(crate) fn segment_of(&self, lsn: u64) -> String {
        self.name(lsn.saturating_sub(1) / self.segment_size.max(1))
    }

    /// What a recovery to `target` that ended at `lsn` left of the archive untested, if anything
    /// (only a recovery to the archive's end is judged here); `server` is what the server's log
    /// says of the WAL it could not read (`; PostgreSQL: ...`), if anything.
    pub(crate) fn untested(&self, target: &RecoveryTarget, lsn: u64, server: String) -> Result<(), Untested> {
        if *target != RecoveryTarget::End || !self.past_backup() || self.reached(lsn) {
            return Ok(());
        }
        Err(Untested {
            lsn,
            segment: self.segment_of(lsn),
            last: self.last_name(),
            last_start: self.last.saturating_mul(self.segment_size),
            backup_end: self.name(self.backup_end),
            server,
        })
    }
}

/// A recovery to the archive's end that did not replay into the archive's last segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "recovery stopped reading WAL at {}, in segment {segment}, short of the archive's last segment {last} (from {}): the WAL after it does not read as valid records{server}; the archive past the backup's end (segment {backup_end}) went untested from there, and a drill to the archive's end proves nothing of WAL it did not replay (hint: PostgreSQL ends replay at the first record it cannot read: a damaged, zeroed or truncated segment, or an invalid record (another cluster's, or one whose checksum or link to the record before fails); see the target's log; the database is not the one the archive holds)",
    wal::format_lsn(*lsn),
    wal::format_lsn(*last_start)
)]
pub(crate) struct Untested {
    /// Where replay ended.
    pub lsn: u64,
    /// The segment it read last, the archive's last and where that begins, the segment the
    /// backup ends in.
    pub segment: String,
    pub last: String,
    pub last_start: u64,
    pub backup_end: String,
    /// What the server's log says of the WAL it could not read (`; PostgreSQL: ...`), if anything.
    pub server: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: u64 = 16 << 20;

    fn end(last: u64, backup_end: u64) -> ArchiveEnd {
        ArchiveEnd { last, backup_end, segment_size: SIZE, path: TimelinePath::only(1) }
    }

    #[test]
    fn a_recovery_to_the_end_must_read_into_the_archives_last_segment() {
        let archive = end(7, 3);
        // Replay read a record of the last segment, or ended past it (its last record a switch).
        assert_eq!(archive.untested(&RecoveryTarget::End, 7 * SIZE + 0x28 + 0x30, String::new()), Ok(()));
        assert_eq!(archive.untested(&RecoveryTarget::End, 8 * SIZE, String::new()), Ok(()));
        // A switch ended segment 6 and nothing of segment 7 read: its header is valid, its
        // records are not.
        let error = archive.untested(&RecoveryTarget::End, 7 * SIZE, "; PostgreSQL: invalid record length".into());
        let error = error.unwrap_err();
        assert_eq!(error.segment, "000000010000000000000006", "the segment replay read last");
        assert_eq!((error.last.as_str(), error.last_start), ("000000010000000000000007", 7 * SIZE));
        assert_eq!(error.backup_end, "000000010000000000000003");
        let text = error.to_string();
        assert!(text.starts_with("recovery stopped reading WAL at 0/7000000, in segment 000000010000000000000006, short of the archive's last segment 000000010000000000000007 (from 0/7000000): the WAL after it does not read as valid records; PostgreSQL: invalid record length; the archive past the backup's end (segment 000000010000000000000003) went untested from there"), "{text}");
        assert!(text.contains("a damaged, zeroed or truncated segment, or an invalid record"), "{text}");
        // Replay stopped in the middle of the archive.
        assert!(archive.untested(&RecoveryTarget::End, 5 * SIZE + 0x4000, String::new()).is_err());
    }

    #[test]
    fn the_backups_end_or_another_target_asks_nothing_of_the_archive() {
        let archive = end(7, 3);
        for target in [RecoveryTarget::Immediate, RecoveryTarget::Lsn(0x500_0000), RecoveryTarget::Name("p".into())] {
            assert_eq!(archive.untested(&target, 4 * SIZE, String::new()), Ok(()), "{target}");
        }
        // An archive that ends where the backup does holds nothing past it.
        assert_eq!(end(3, 3).untested(&RecoveryTarget::End, 3 * SIZE + 0x100, String::new()), Ok(()));
        assert!(!end(3, 3).past_backup());
    }

    #[test]
    fn segments_are_named_on_the_timeline_recovery_follows_there() {
        let path = TimelinePath { target: 2, stretches: vec![(1, 0), (2, 5 * SIZE + 0x60)], histories: Vec::new() };
        let archive = ArchiveEnd { last: 7, backup_end: 3, segment_size: SIZE, path };
        assert_eq!(archive.last_name(), "000000020000000000000007");
        assert_eq!(archive.segment_of(5 * SIZE), "000000010000000000000004");
        assert_eq!(archive.segment_of(5 * SIZE + 1), "000000020000000000000005");
    }
}
