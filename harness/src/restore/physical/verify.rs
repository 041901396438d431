//! PostgreSQL's own tools over a staged base backup, in the toolbox of its major, before any
//! server starts: `pg_controldata` (whose system the backup is, its segment size, whether data
//! checksums are on, the settings a standby of it needs) and `pg_verifybackup` (every file against
//! the manifest's sizes and checksums, and the WAL the backup needs parsed).

use std::collections::BTreeMap;

/// What `pg_controldata` says of the staged cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ControlData {
    pub system_id: u64,
    pub segment_size: u64,
    /// `Data page checksum version`: 0 when checksums are off.
    pub checksum_version: u32,
    pub state: String,
    /// `max_connections setting` and the like: a hot standby needs at least these.
    pub standby_floors: BTreeMap<String, u64>,
    /// `Latest checkpoint's oldestActiveXID`: every transaction before it had ended when that
    /// checkpoint (one before the backup's end) was written.
    pub oldest_active_xid: Option<u32>,
}

/// pg_controldata's names of the settings a hot standby must match, and the server's.
const FLOORS: [(&str, &str); 5] = [
    ("max_connections setting", "max_connections"),
    ("max_worker_processes setting", "max_worker_processes"),
    ("max_wal_senders setting", "max_wal_senders"),
    ("max_prepared_xacts setting", "max_prepared_transactions"),
    ("max_locks_per_xact setting", "max_locks_per_transaction"),
];

/// What is wrong with pg_controldata's report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ControlError {
    /// pg_controldata warned about the file it read.
    #[error(
        "pg_controldata: {warning} (pg_control is damaged, or written by another PostgreSQL major than PG_VERSION says)"
    )]
    Damaged { warning: String },
    /// A field every report has is not there.
    #[error("pg_controldata did not report `{key}`")]
    Missing { key: String },
    /// A field that must be a number is not one.
    #[error("pg_controldata reports `{key}` as `{value}`")]
    NotANumber { key: String, value: String },
}

/// Reads pg_controldata's report; an error says what is wrong with it.
pub(crate) fn parse_control(stdout: &str) -> Result<ControlData, ControlError> {
    if let Some(warning) = stdout.lines().find(|l| l.starts_with("WARNING")) {
        return Err(ControlError::Damaged { warning: warning.trim().to_owned() });
    }
    let fields: BTreeMap<&str, &str> =
        stdout.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
    let number = |key: &str| -> Result<u64, ControlError> {
        let value = fields.get(key).ok_or_else(|| ControlError::Missing { key: key.to_owned() })?;
        value.parse().map_err(|_| ControlError::NotANumber { key: key.to_owned(), value: (*value).to_owned() })
    };
    let mut standby_floors = BTreeMap::new();
    for (key, setting) in FLOORS {
        if fields.contains_key(key) {
            standby_floors.insert(setting.to_owned(), number(key)?);
        }
    }
    Ok(ControlData {
        system_id: number("Database system identifier")?,
        segment_size: number("Bytes per WAL segment")?,
        checksum_version: number("Data page checksum version")? as u32,
        state: fields.get("Database cluster state").copied().unwrap_or_default().to_owned(),
        standby_floors,
        oldest_active_xid: fields.get("Latest checkpoint's oldestActiveXID").and_then(|v| v.parse().ok()),
    })
}

/// What pg_verifybackup found wrong, from its stderr (`pg_verifybackup: error: ...`), at most
/// ten lines.
pub(crate) fn verifybackup_problems(stderr: &str) -> Vec<String> {
    let problems: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("pg_verifybackup: error: ").or_else(|| l.strip_prefix("pg_verifybackup: ")))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with("hint:") && !l.starts_with("detail:"))
        .take(10)
        .collect();
    if problems.is_empty() && !stderr.trim().is_empty() { vec![stderr.trim().to_owned()] } else { problems }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROL: &str = "pg_control version number:            1700
Catalog version number:               202406281
Database system identifier:           7441234567890123456
Database cluster state:               in production
Latest checkpoint's TimeLineID:       1
Latest checkpoint's oldestActiveXID:  745
max_connections setting:              100
max_worker_processes setting:         8
max_wal_senders setting:              10
max_prepared_xacts setting:           0
max_locks_per_xact setting:           64
Bytes per WAL segment:                16777216
Data page checksum version:           1
";

    #[test]
    fn pg_controldata_says_the_system_the_segment_size_and_the_standbys_floors() {
        let control = parse_control(CONTROL).unwrap();
        assert_eq!(control.system_id, 7_441_234_567_890_123_456);
        assert_eq!(control.segment_size, 16 << 20);
        assert_eq!(control.checksum_version, 1);
        assert_eq!(control.state, "in production");
        assert_eq!(control.standby_floors["max_connections"], 100);
        assert_eq!(control.standby_floors["max_prepared_transactions"], 0);
        assert_eq!(control.oldest_active_xid, Some(745));
        let damaged = format!("WARNING: Calculated CRC checksum does not match value stored in file.\n{CONTROL}");
        assert!(parse_control(&damaged).unwrap_err().to_string().contains("pg_control is damaged"));
        assert_eq!(
            parse_control("Database system identifier: x\n"),
            Err(ControlError::NotANumber { key: "Database system identifier".into(), value: "x".into() })
        );
    }

    #[test]
    fn pg_verifybackups_errors_are_listed() {
        let stderr = "pg_verifybackup: error: \"base/5/16384\" has size 16384 on disk but size 8192 in the manifest\n\
            pg_verifybackup: error: checksum mismatch for file \"global/1262\"\n";
        assert_eq!(
            verifybackup_problems(stderr),
            [
                "\"base/5/16384\" has size 16384 on disk but size 8192 in the manifest",
                "checksum mismatch for file \"global/1262\""
            ]
        );
        assert_eq!(verifybackup_problems("something else\n"), ["something else"]);
    }
}
