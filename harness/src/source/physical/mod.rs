//! Physical backups: a `pg_basebackup` in tar format (`base.tar[.gz|.zst]`, `pg_wal.tar...`,
//! `backup_manifest`) and, for a recovery past its end, a folder of archived WAL segments. What
//! they are is read from their content: `PG_VERSION` and `backup_label` inside `base.tar`, the
//! segments' names in the archive.

use std::io::Read;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

/// A base backup in tar format, and what its own files say about it.
#[derive(Debug, Clone)]
pub(crate) struct BaseBackup {
    /// `base.tar`, `base.tar.gz` or `base.tar.zst`.
    pub base: PathBuf,
    /// The WAL pg_basebackup streamed beside it (`-X stream`), when it did.
    pub wal: Option<PathBuf>,
    /// The PostgreSQL major that wrote it (`PG_VERSION`).
    pub major: u32,
    pub label: BackupLabel,
}

/// What `backup_label` says: where recovery starts, on which timeline, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupLabel {
    /// The WAL segment recovery starts in (`START WAL LOCATION: ... (file <segment>)`).
    pub start_segment: String,
    pub timeline: u32,
    /// `START TIME`, when its zone is UTC (pg_basebackup writes the server's zone).
    pub start_time: Option<OffsetDateTime>,
    /// `LABEL`.
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PhysicalError {
    #[error("cannot read `{path}`: {message}")]
    Read { path: String, message: String },
    #[error("`{path}` holds no {what}: it is not a base backup made by pg_basebackup")]
    Missing { path: String, what: &'static str },
    #[error("`{path}`: {message}")]
    Malformed { path: String, message: String },
    #[error(
        "the WAL archive `{archive}` has no segment {missing}{after}: recovery from the backup's start ({start}) cannot pass it"
    )]
    Gap { archive: String, missing: String, after: String, start: String },
}

/// The base backup in `dir`, if `dir` is a pg_basebackup folder in tar format.
pub(crate) fn detect(dir: &Path) -> Option<PathBuf> {
    if !dir.is_dir() {
        return None;
    }
    ["base.tar", "base.tar.gz", "base.tar.zst"].iter().map(|name| dir.join(name)).find(|p| p.is_file())
}

/// Reads what the backup in `dir` is: its major version and its label.
pub(crate) fn inspect(dir: &Path) -> Result<BaseBackup, PhysicalError> {
    let base =
        detect(dir).ok_or_else(|| PhysicalError::Missing { path: dir.display().to_string(), what: "base.tar" })?;
    let wal = ["pg_wal.tar", "pg_wal.tar.gz", "pg_wal.tar.zst"].iter().map(|n| dir.join(n)).find(|p| p.is_file());
    let path = base.display().to_string();
    let read_err = |e: std::io::Error| PhysicalError::Read { path: path.clone(), message: e.to_string() };
    let opened = super::read::open(&base, false)
        .map_err(|e| PhysicalError::Read { path: path.clone(), message: e.to_string() })?;
    let mut archive = tar::Archive::new(opened.reader);
    let (mut version, mut label) = (None, None);
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let name = entry.path().map_err(read_err)?.to_string_lossy().trim_start_matches("./").to_owned();
        match name.as_str() {
            "PG_VERSION" | "backup_label" => {
                let mut text = String::new();
                entry.read_to_string(&mut text).map_err(read_err)?;
                if name == "PG_VERSION" { version = Some(text) } else { label = Some(text) }
            }
            _ => {}
        }
        if version.is_some() && label.is_some() {
            break;
        }
    }
    let version = version.ok_or_else(|| PhysicalError::Missing { path: path.clone(), what: "PG_VERSION" })?;
    let major = crate::pg::major_of_version_text(&version).ok_or_else(|| PhysicalError::Malformed {
        path: path.clone(),
        message: format!("PG_VERSION reads `{}`", version.trim()),
    })?;
    let label = label.ok_or_else(|| PhysicalError::Missing { path: path.clone(), what: "backup_label" })?;
    let label = parse_label(&label).map_err(|message| PhysicalError::Malformed { path: path.clone(), message })?;
    Ok(BaseBackup { base, wal, major, label })
}

/// Parses `backup_label`.
pub(crate) fn parse_label(text: &str) -> Result<BackupLabel, String> {
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
    let location = field("START WAL LOCATION:").ok_or("backup_label has no START WAL LOCATION")?;
    let start_segment = location
        .split_once("(file ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .filter(|s| is_segment(s))
        .ok_or_else(|| format!("backup_label's START WAL LOCATION reads `{location}`"))?
        .to_owned();
    let timeline = match field("START TIMELINE:") {
        Some(t) => t.parse().map_err(|_| format!("backup_label's START TIMELINE reads `{t}`"))?,
        None => u32::from_str_radix(&start_segment[..8], 16).unwrap_or(1),
    };
    let start_time = field("START TIME:").and_then(|t| {
        let utc = t.strip_suffix(" UTC").or_else(|| t.strip_suffix(" GMT"))?;
        let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        time::PrimitiveDateTime::parse(utc, &format).ok().map(|t| t.assume_utc())
    });
    Ok(BackupLabel { start_segment, timeline, start_time, label: field("LABEL:").unwrap_or("").to_owned() })
}

/// Whether `name` is a WAL segment file's name: 24 hexadecimal digits.
fn is_segment(name: &str) -> bool {
    name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A segment's position on its timeline, for 16 MB segments (PostgreSQL's default: 256 per
/// "log" number).
fn position(segment: &str) -> Option<u64> {
    let log = u64::from_str_radix(&segment[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&segment[16..24], 16).ok()?;
    Some(log * 0x100 + seg)
}

/// The archive's segments recovery reads, from the backup's start segment on its timeline to the
/// last one without a gap; a gap before a later segment fails, naming the segment missing.
pub(crate) fn segments_from(archive: &Path, start: &str) -> Result<Vec<String>, PhysicalError> {
    let read = std::fs::read_dir(archive)
        .map_err(|e| PhysicalError::Read { path: archive.display().to_string(), message: e.to_string() })?;
    let names: Vec<String> =
        read.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    run_from(&names, start).map_err(|(missing, after)| PhysicalError::Gap {
        archive: archive.display().to_string(),
        missing,
        after: after.map(|a| format!(" (after {a})")).unwrap_or_default(),
        start: start.to_owned(),
    })
}

/// The segments of `names` on `start`'s timeline from `start` on, in order; or the first one
/// missing (and the one before it) when a later segment shows the run has a gap.
pub(crate) fn run_from(names: &[String], start: &str) -> Result<Vec<String>, (String, Option<String>)> {
    let timeline = &start[..8];
    let first = position(start).unwrap_or(0);
    let mut on_timeline: Vec<(u64, &String)> = names
        .iter()
        .filter(|n| is_segment(n) && n[..8].eq_ignore_ascii_case(timeline))
        .filter_map(|n| position(n).map(|p| (p, n)))
        // Segments before the start (the archive holds them too) are not read.
        .filter(|(p, _)| *p >= first)
        .collect();
    on_timeline.sort();
    let mut run = Vec::new();
    for (expected, (p, name)) in (first..).zip(on_timeline) {
        if p != expected {
            let missing = format!("{timeline}{:08X}{:08X}", expected / 0x100, expected % 0x100);
            return Err((missing, run.last().cloned()));
        }
        run.push(name.clone());
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL: &str = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
        CHECKPOINT LOCATION: 0/2000080\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n\
        START TIME: 2026-11-22 23:30:05 UTC\nLABEL: pg_basebackup base backup\nSTART TIMELINE: 1\n";

    #[test]
    fn a_backup_label_says_where_recovery_starts_and_since_when() {
        let label = parse_label(LABEL).unwrap();
        assert_eq!(label.start_segment, "000000010000000000000002");
        assert_eq!(label.timeline, 1);
        assert_eq!(label.start_time, Some(time::macros::datetime!(2026-11-22 23:30:05 UTC)));
        assert_eq!(label.label, "pg_basebackup base backup");
        let other_zone = parse_label(&LABEL.replace(" UTC", " CET")).unwrap();
        assert_eq!(other_zone.start_time, None, "a zone abbreviation is not an offset");
        assert!(parse_label("LABEL: x\n").unwrap_err().contains("START WAL LOCATION"));
    }

    #[test]
    fn the_archive_is_read_from_the_start_segment_and_a_gap_is_named() {
        let names: Vec<String> = [
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000003",
            "0000000100000000000000FF",
            "000000010000000100000000",
            "000000010000000000000002.00000028.backup",
            "00000002.history",
            "000000020000000000000004",
        ]
        .map(String::from)
        .to_vec();
        let contiguous: Vec<String> = names[..3].to_vec();
        assert_eq!(run_from(&contiguous, "000000010000000000000002").unwrap(), names[1..3].to_vec());
        // 04 to FE are missing before FF.
        assert_eq!(
            run_from(&names, "000000010000000000000002").unwrap_err(),
            ("000000010000000000000004".to_owned(), Some("000000010000000000000003".to_owned()))
        );
        // A log number's last segment is followed by the next log number's first.
        let across: Vec<String> = names[3..5].to_vec();
        assert_eq!(run_from(&across, "0000000100000000000000FF").unwrap(), across);
        assert_eq!(
            run_from(&across, "000000010000000000000003").unwrap_err(),
            ("000000010000000000000003".to_owned(), None)
        );
    }
}
