//! `backup_label`: where a base backup's recovery starts, on which timeline, since when.

use time::OffsetDateTime;

/// What `backup_label` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupLabel {
    /// `START WAL LOCATION`'s LSN, as PostgreSQL prints one (`0/2000028`).
    pub start_lsn: String,
    /// The WAL segment recovery starts in (`START WAL LOCATION: ... (file <segment>)`).
    pub start_segment: String,
    pub timeline: u32,
    /// `START TIME`, when its zone can be read (pg_basebackup writes the server's
    /// `log_timezone`; see [`super::history::parse_time`]).
    pub start_time: Option<OffsetDateTime>,
    /// `LABEL`.
    pub label: String,
    /// An incremental backup (PostgreSQL 17): the start (LSN, timeline) of the backup it was
    /// taken from (`INCREMENTAL FROM LSN`, `INCREMENTAL FROM TLI`).
    pub incremental_from: Option<(u64, u32)>,
}

/// What in a `backup_label` (or what stands for one) does not read as PostgreSQL writes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LabelError {
    /// The line every label has is missing.
    #[error("backup_label has no START WAL LOCATION")]
    NoStart,
    /// A field whose value is not what PostgreSQL writes there.
    #[error("backup_label's {field} reads `{value}`")]
    Field { field: &'static str, value: String },
    /// An incremental backup's start given half.
    #[error("backup_label has one of INCREMENTAL FROM LSN and INCREMENTAL FROM TLI without the other")]
    HalfIncremental,
    /// A pgBackRest set's first segment (its label's START WAL LOCATION) names no timeline.
    #[error("backup-archive-start reads `{value}`")]
    ArchiveStart { value: String },
}

/// Parses `backup_label`.
pub(crate) fn parse(text: &str) -> Result<BackupLabel, LabelError> {
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
    let bad = |field: &'static str, value: &str| LabelError::Field { field, value: value.to_owned() };
    let location = field("START WAL LOCATION:").ok_or(LabelError::NoStart)?;
    let malformed = || bad("START WAL LOCATION", location);
    let (lsn, rest) = location.split_once(" (file ").ok_or_else(malformed)?;
    let start_segment =
        rest.strip_suffix(')').filter(|s| super::wal::is_segment_name(s)).ok_or_else(malformed)?.to_owned();
    super::wal::parse_lsn(lsn).ok_or_else(malformed)?;
    let timeline = match field("START TIMELINE:") {
        Some(t) => t.parse().map_err(|_| bad("START TIMELINE", t))?,
        None => u32::from_str_radix(&start_segment[..8], 16).unwrap_or(1),
    };
    let start_time = field("START TIME:").and_then(super::history::parse_time);
    let incremental_from = match (field("INCREMENTAL FROM LSN:"), field("INCREMENTAL FROM TLI:")) {
        (None, None) => None,
        (Some(lsn), Some(tli)) => Some((
            super::wal::parse_lsn(lsn).ok_or_else(|| bad("INCREMENTAL FROM LSN", lsn))?,
            tli.parse().map_err(|_| bad("INCREMENTAL FROM TLI", tli))?,
        )),
        _ => return Err(LabelError::HalfIncremental),
    };
    Ok(BackupLabel {
        start_lsn: lsn.trim().to_owned(),
        start_segment,
        timeline,
        start_time,
        label: field("LABEL:").unwrap_or("").to_owned(),
        incremental_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const LABEL: &str = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
        CHECKPOINT LOCATION: 0/2000080\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n\
        START TIME: 2026-11-22 23:30:05 UTC\nLABEL: pg_basebackup base backup\nSTART TIMELINE: 1\n";

    #[test]
    fn a_backup_label_says_where_recovery_starts_and_since_when() {
        let label = parse(LABEL).unwrap();
        assert_eq!(label.start_lsn, "0/2000028");
        assert_eq!(label.start_segment, "000000010000000000000002");
        assert_eq!(label.timeline, 1);
        assert_eq!(label.start_time, Some(time::macros::datetime!(2026-11-22 23:30:05 UTC)));
        assert_eq!(label.label, "pg_basebackup base backup");
        let other_zone = parse(&LABEL.replace(" UTC", " CET")).unwrap();
        assert_eq!(other_zone.start_time, None, "a zone abbreviation is not an offset");
        assert_eq!(parse("LABEL: x\n"), Err(LabelError::NoStart));
        let bad = parse(&LABEL.replace("0/2000028", "nowhere")).unwrap_err().to_string();
        assert!(bad.contains("START WAL LOCATION reads `nowhere (file"), "{bad}");
        assert_eq!(label.incremental_from, None);
        let incremental = parse(&format!("{LABEL}INCREMENTAL FROM LSN: 0/4000028\nINCREMENTAL FROM TLI: 1\n")).unwrap();
        assert_eq!(incremental.incremental_from, Some((0x400_0028, 1)));
        assert_eq!(parse(&format!("{LABEL}INCREMENTAL FROM LSN: 0/4000028\n")), Err(LabelError::HalfIncremental));
    }
}
