//! When a backup was taken, for its age against the recovery point objective: from the best
//! evidence the backup carries, which the reports name.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::dump::DumpComments;
use crate::dump::archive::ArchiveHeader;

/// When the backup was taken, and from what that is known; None when nothing says.
///
/// In order: an archive's own header; a plain dump's `Started on` line (`pg_dump --verbose`);
/// a date in the file's name, as backup jobs write them; the file's modification time (which a
/// copy may have moved later, so it comes last).
pub(crate) fn taken_at(
    archive: Option<&ArchiveHeader>,
    comments: &DumpComments,
    location: &str,
    modified: Option<OffsetDateTime>,
) -> Option<(OffsetDateTime, &'static str)> {
    archive
        .and_then(|a| a.created)
        .map(|t| (t, "the archive's header (pg_dump's clock, read as UTC)"))
        .or_else(|| comments.started_on.as_deref().and_then(started_on).map(|t| (t, "the dump's `Started on` line")))
        .or_else(|| date_in_name(location).map(|t| (t, "the date in its name (read as UTC)")))
        .or_else(|| modified.map(|t| (t, "its modification time")))
}

/// `2026-11-22 03:00:07 UTC` (pg_dump's `%Y-%m-%d %H:%M:%S %Z`): a zone of UTC, GMT, Z or a
/// numeric offset; a named local zone (`CET`) is ambiguous, and gives nothing.
fn started_on(text: &str) -> Option<OffsetDateTime> {
    let mut parts = text.split_whitespace();
    let (day, clock, zone) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = format!("{day}{clock}").chars().filter(char::is_ascii_digit).collect::<String>();
    let at = from_digits(&digits)?;
    let offset = match zone {
        "UTC" | "GMT" | "Z" => UtcOffset::UTC,
        _ => {
            let sign = match zone.chars().next()? {
                '+' => 1,
                '-' => -1,
                _ => return None,
            };
            let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
            let (hours, minutes) = match digits.len() {
                1 | 2 => (digits.parse::<i8>().ok()?, 0),
                4 => (digits[..2].parse::<i8>().ok()?, digits[2..].parse::<i8>().ok()?),
                _ => return None,
            };
            UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?
        }
    };
    Some(at.replace_offset(offset))
}

/// The first date in the last segment of `location` with at least a day: `20261122`,
/// `2026-11-22`, `2026-11-22T0300Z`, `2026_11_22_03_00_07`.
fn date_in_name(location: &str) -> Option<OffsetDateTime> {
    let name = location.trim_end_matches('/').rsplit(['/', '\\']).next()?;
    let is_date_char = |c: char| c.is_ascii_digit() || matches!(c, '-' | '_' | 'T' | ':' | 'Z');
    let mut rest = name;
    while !rest.is_empty() {
        let start = rest.find(|c: char| c.is_ascii_digit())?;
        let run = &rest[start..];
        let end = run.find(|c: char| !is_date_char(c)).unwrap_or(run.len());
        let digits: String = run[..end].chars().filter(char::is_ascii_digit).collect();
        if let Some(at) = from_digits(&digits) {
            return Some(at);
        }
        rest = &run[end.max(1)..];
    }
    None
}

/// `YYYYMMDD[HH[MM[SS]]]` (more digits are ignored) as a UTC time, for a year from 2000.
pub(crate) fn from_digits(digits: &str) -> Option<OffsetDateTime> {
    if digits.len() < 8 || !digits.starts_with("20") {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range).and_then(|d| d.parse::<u8>().ok());
    let year: i32 = digits[..4].parse().ok()?;
    let date = Date::from_calendar_date(year, Month::try_from(number(4..6)?).ok()?, number(6..8)?).ok()?;
    let clock =
        Time::from_hms(number(8..10).unwrap_or(0), number(10..12).unwrap_or(0), number(12..14).unwrap_or(0)).ok()?;
    Some(PrimitiveDateTime::new(date, clock).assume_utc())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn dates_in_names() {
        let cases = [
            ("s3://b/plur-2026-11-21.sql.gz", Some(datetime!(2026-11-21 00:00 UTC))),
            ("/backups/powernode_20261121T0300Z.sql.gz", Some(datetime!(2026-11-21 03:00 UTC))),
            ("db_2026_11_21_03_15_07.dump", Some(datetime!(2026-11-21 03:15:07 UTC))),
            ("v17-backup-20261121.dump", Some(datetime!(2026-11-21 00:00 UTC))),
            ("/2026-11-20/plur.sql.gz", None),
            ("plur.sql.gz", None),
            ("dump-12345678.sql", None),
            ("dump-20261399.sql", None),
        ];
        for (name, want) in cases {
            assert_eq!(date_in_name(name), want, "{name}");
        }
    }

    #[test]
    fn started_on_lines() {
        assert_eq!(started_on("2026-11-22 03:00:07 UTC"), Some(datetime!(2026-11-22 03:00:07 UTC)));
        assert_eq!(started_on("2026-11-22 04:00:07 +01"), Some(datetime!(2026-11-22 03:00:07 UTC)));
        assert_eq!(started_on("2026-11-22 04:00:07 CET"), None, "a named local zone is ambiguous");
    }

    #[test]
    fn the_best_evidence_wins_and_is_named() {
        let comments = DumpComments { started_on: Some("2026-11-22 03:00:00 UTC".into()), ..Default::default() };
        let modified = Some(datetime!(2026-11-23 00:00 UTC));
        let (at, from) = taken_at(None, &comments, "plur-20261120.sql", modified).unwrap();
        assert_eq!((at, from), (datetime!(2026-11-22 03:00 UTC), "the dump's `Started on` line"));
        let (at, from) = taken_at(None, &DumpComments::default(), "plur-20261120.sql", modified).unwrap();
        assert_eq!((at, from), (datetime!(2026-11-20 00:00 UTC), "the date in its name (read as UTC)"));
        let (_, from) = taken_at(None, &DumpComments::default(), "plur.sql", modified).unwrap();
        assert_eq!(from, "its modification time");
        assert_eq!(taken_at(None, &DumpComments::default(), "plur.sql", None), None);
    }
}
