//! The restore as the record keeps it: what preflight found, what the restore did, where a
//! physical backup's recovery stopped, and the catalog audit. `restore` fills them in.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What preflight found on the target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PreflightReport {
    /// The target's version, as `server_version` shows it (`17.2 (Debian 17.2-1.pgdg120+1)`).
    pub server_version: String,
    /// The same as a number, as `server_version_num` shows it (`170002`).
    pub server_version_num: u32,
    /// Available extensions the drill needs, with the version `CREATE EXTENSION` installs.
    pub extensions: BTreeMap<String, String>,
    /// Roles created from the scenario.
    pub roles_created: Vec<String>,
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreStats {
    /// SQL statements run (each COPY one of them); an archive's as its scan counted them. Zero
    /// for a physical backup's recovery, as are the two below.
    pub statements: u64,
    /// COPY blocks loaded.
    pub copy_blocks: u64,
    /// Rows those COPY blocks loaded.
    pub rows: u64,
    /// Bytes of SQL and data sent (after decompression).
    pub bytes: u64,
    /// The database the restore ended in: where checks run.
    pub database: String,
    /// Connections that loaded data and built indexes side by side (1: one, like psql).
    #[serde(default)]
    pub jobs: usize,
    /// A physical backup's recovery: the target asked for, the point reached, the WAL replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovered>,
    /// The catalog audit: PostgreSQL's built-ins as the restore left them, compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogAudit>,
}

/// Where recovery ended, as the reports record it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Recovered {
    /// The target asked for, in words.
    pub target: String,
    /// Where replay started: the backup's start (an LSN, `0/2000028`).
    pub start_lsn: String,
    /// The last location it replayed.
    pub end_lsn: String,
    /// The commit time of the last transaction replayed, when one was.
    pub last_transaction: Option<String>,
    /// What the server's log says recovery reached: the record it stopped at, where the
    /// database became consistent, where redo ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<Reach>,
    /// WAL replayed, in bytes from the backup's start.
    pub wal_bytes: u64,
    /// The WAL segments those bytes span.
    pub segments_replayed: u64,
    /// Archived segments recovery could read.
    pub segments_available: usize,
    /// The archive's last segment, when it lies past the backup's end and a recovery to the
    /// archive's end replayed into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_last: Option<String>,
    /// The most archived segments `pg_wal` held at once (they are given as replay needs them).
    #[serde(default)]
    pub segments_held_peak: usize,
    /// The timeline the promoted server writes on.
    pub timeline: u32,
    /// From the server's start to its promotion (as its clock says; within a poll of it).
    #[serde(rename = "took_ms", with = "crate::units::duration_ms")]
    pub took: Duration,
}

/// The record a recovery stopped at, as the server logged it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stop {
    /// `before` (the record not replayed), `after` (replayed), `at` (a restore point).
    pub position: String,
    /// What the record is: `commit of transaction 751`, `abort of transaction 751`,
    /// `restore point "between"`, `WAL location 0/3000060`, `consistency`.
    pub record: String,
    /// The transaction, for the commit or abort of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xid: Option<u64>,
    /// The record's time, as the server printed it (`2026-11-23 13:00:00.123456+00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The WAL location, for a stop at one (`recovery_target_lsn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsn: Option<String>,
    /// The restore point's name, for a stop at one (`recovery_target_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What the server's log says its recovery reached.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reach {
    /// The record recovery stopped at, when the log names one (`recovery stopping ...`: at a
    /// target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// The commit (or abort) time of the last transaction replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed: Option<String>,
    /// Where the database became consistent (the backup's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_at: Option<String>,
    /// Where redo ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redo_done_at: Option<String>,
    /// PostgreSQL's refusal of the recovery (a FATAL about the recovery target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// What the audit found: how many built-in rows it compared, in which databases, against what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogAudit {
    /// Built-in rows compared in each database.
    pub rows: usize,
    /// The databases audited.
    pub databases: Vec<String>,
    /// What they were compared with.
    pub reference: String,
    /// Built-ins of the reference the backup lacks, and nothing else differing: the backup's
    /// cluster was made by another minor release (one that had not added them yet). A missing
    /// built-in cannot make pgdrill's queries lie (a query that needs it fails); it is said.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
    /// Functions the backup's cluster has in pg_catalog with initdb's OIDs, under names none of
    /// the reference's functions has, and nothing else differing: the cluster was made by a newer
    /// minor release (one that added them). No query of pgdrill's names them, and nothing else
    /// in the audited catalogs refers to them (a cast, an operator or a type that did would
    /// differ itself); they are said.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
}
