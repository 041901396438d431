//! The history files a WAL archive holds beside its segments, read only as far as a drill
//! explains what its recovery could reach: a backup history file
//! (`<segment>.<offset>.backup`, written when a base backup ends: where and when it ended) and
//! a timeline history file (`<timeline>.history`, written when a server was promoted: where
//! each earlier timeline was left). Also the times PostgreSQL prints in them and in its log.

use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::wal;

/// What a backup history file says of the backup's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupHistory {
    /// `STOP WAL LOCATION`: the backup is consistent once recovery has replayed to here.
    pub stop_lsn: Option<u64>,
    /// `STOP TIME`, as written (the server's `log_timezone`).
    pub stop_time_text: Option<String>,
    /// `STOP TIME`, when its zone can be read (see [`parse_time`]).
    pub stop_time: Option<OffsetDateTime>,
}

/// Parses a backup history file (`STOP WAL LOCATION: 0/2000158 (file ...)`, `STOP TIME: ...`).
pub(crate) fn parse_backup_history(text: &str) -> BackupHistory {
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
    let stop_lsn = field("STOP WAL LOCATION:").and_then(|v| wal::parse_lsn(v.split(' ').next().unwrap_or_default()));
    let stop_time_text = field("STOP TIME:").map(str::to_owned);
    let stop_time = stop_time_text.as_deref().and_then(parse_time);
    BackupHistory { stop_lsn, stop_time_text, stop_time }
}

/// The name of the backup history file of a backup that started at `start_lsn` in segment
/// `start_segment`: `<segment>.<offset in it, 8 hex digits>.backup`.
pub(crate) fn backup_history_name(start_segment: &str, start_lsn: u64, segment_size: u64) -> String {
    format!("{start_segment}.{:08X}.backup", start_lsn % segment_size.max(1))
}

/// One line of a timeline history file: the timeline `parent` was left at `switch_lsn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Branch {
    pub parent: u32,
    pub switch_lsn: u64,
    /// Why (`no recovery target specified`, `before transaction 751`, ...).
    pub reason: String,
}

/// A line of a timeline history file that is not `<parent timeline> <switch LSN> <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a timeline history line reads `{line}`")]
pub(crate) struct HistoryError {
    pub line: String,
}

/// Parses a timeline history file: `<parent timeline>\t<switch LSN>\t<reason>` lines, `#`
/// comments and blank lines skipped; a line of another shape is an error naming it.
pub(crate) fn parse_timeline_history(text: &str) -> Result<Vec<Branch>, HistoryError> {
    let mut branches = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut fields = line.split_whitespace();
        let bad = || HistoryError { line: line.to_owned() };
        let parent = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
        let switch_lsn = fields.next().and_then(wal::parse_lsn).ok_or_else(bad)?;
        let reason = fields.collect::<Vec<_>>().join(" ");
        branches.push(Branch { parent, switch_lsn, reason });
    }
    Ok(branches)
}

/// A time as PostgreSQL prints one: `2026-11-23 13:00:00[.123456]` then its zone, a numeric
/// offset (`+00`, `+05:30`, `-0330`, as `timestamptz` output and the recovery messages write
/// it) or the abbreviation `UTC`/`GMT`/`Z` (as `log_timezone` UTC writes it). Another
/// abbreviation (`CET`, `EST`, `IST`, ...) is not read: an abbreviation is not an offset, and
/// several mean different ones.
pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    let (clock, mut rest) = (text.get(..19)?, text.get(19..)?);
    let format = time::format_description::parse_borrowed::<2>("[year]-[month]-[day] [hour]:[minute]:[second]").ok()?;
    let mut at = PrimitiveDateTime::parse(clock, &format).ok()?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let (given, after) = fraction.split_at(digits);
        let nanos: u32 = format!("{:0<9}", &given[..given.len().min(9)]).parse().ok()?;
        at = at.replace_nanosecond(nanos).ok()?;
        rest = after;
    }
    let zone = rest.trim();
    let offset = match zone {
        "UTC" | "GMT" | "Z" | "+00" | "-00" => UtcOffset::UTC,
        _ => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
            if !digits.bytes().all(|b| b.is_ascii_digit()) || ![2, 4, 6].contains(&digits.len()) {
                return None;
            }
            let part = |i: usize| digits.get(i..i + 2).map_or(Some(0), |d| d.parse::<i8>().ok());
            UtcOffset::from_hms(sign * part(0)?, sign * part(2)?, sign * part(4)?).ok()?
        }
    };
    Some(at.assume_offset(offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_as_postgresql_prints_them_with_their_zone() {
        let at = |t: &str| parse_time(t);
        assert_eq!(at("2026-11-23 13:00:00.123456+00"), Some(datetime!(2026-11-23 13:00:00.123456 UTC)));
        assert_eq!(at("2026-11-23 13:00:00 UTC"), Some(datetime!(2026-11-23 13:00:00 UTC)));
        assert_eq!(at("2026-11-23 14:00:00+01"), Some(datetime!(2026-11-23 13:00:00 UTC)), "same instant");
        assert_eq!(at("2026-11-23 18:30:00.5+05:30"), Some(datetime!(2026-11-23 13:00:00.5 UTC)));
        assert_eq!(at("2026-11-23 09:30:00-0330"), Some(datetime!(2026-11-23 13:00:00 UTC)));
        assert_eq!(at("2026-11-23 13:00:00 GMT").map(|t| t.offset()), Some(UtcOffset::UTC));
        for unreadable in ["2026-11-23 14:00:00 CET", "2026-11-23 13:00:00", "2026-11-23 13:00:00 +1x", "13:00"] {
            assert_eq!(at(unreadable), None, "{unreadable}");
        }
    }

    #[test]
    fn a_backup_history_file_says_where_and_when_the_backup_ended() {
        let text = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
            STOP WAL LOCATION: 0/2000158 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000080\n\
            BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-23 12:59:58 UTC\n\
            LABEL: pg_basebackup base backup\nSTART TIMELINE: 1\nSTOP TIME: 2026-11-23 13:00:01 UTC\nSTOP TIMELINE: 1\n";
        let history = parse_backup_history(text);
        assert_eq!(history.stop_lsn, Some(0x200_0158));
        assert_eq!(history.stop_time, Some(datetime!(2026-11-23 13:00:01 UTC)));
        assert_eq!(history.stop_time_text.as_deref(), Some("2026-11-23 13:00:01 UTC"));
        let elsewhere = parse_backup_history(&text.replace("13:00:01 UTC", "14:00:01 CET"));
        assert_eq!((elsewhere.stop_time, elsewhere.stop_time_text.as_deref()), (None, Some("2026-11-23 14:00:01 CET")));
        assert_eq!(
            backup_history_name("000000010000000000000002", 0x200_0028, 16 << 20),
            "000000010000000000000002.00000028.backup"
        );
    }

    #[test]
    fn a_timeline_history_file_says_where_each_timeline_was_left() {
        let text = "1\t0/3000158\tno recovery target specified\n\n# a comment\n2\t0/5000060\tbefore transaction 751 at 2026-11-23 13:00:00.1+00\n";
        let branches = parse_timeline_history(text).unwrap();
        assert_eq!(branches.len(), 2);
        assert_eq!(
            branches[0],
            Branch { parent: 1, switch_lsn: 0x300_0158, reason: "no recovery target specified".into() }
        );
        assert_eq!((branches[1].parent, branches[1].switch_lsn), (2, 0x500_0060));
        assert_eq!(parse_timeline_history("1 nowhere\n"), Err(HistoryError { line: "1 nowhere".into() }));
    }
}
