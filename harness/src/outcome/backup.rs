//! The backup as the record keeps it: where it was, what it is (its identity and digest), and
//! its kind (format, content, database, major, encryption), which drills compare drill after
//! drill. `source` fills them in.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The backup's identity, as the reports record it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackupInfo {
    /// Where it was: a path, an object store's URL or an HTTPS URL, never with a password or a
    /// signature.
    pub location: String,
    /// Its size as stored, in bytes: before decryption and decompression.
    pub size_bytes: u64,
    /// The sha256 of its bytes as stored, in hex; empty until verify read it. A physical
    /// backup's is empty, or, when the database is a clone of a snapshot of it, the digest of
    /// its files.
    pub sha256: String,
    /// When it was last written, as its file system or its store says; none when neither says.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub modified: Option<OffsetDateTime>,
    /// How it is compressed: `none`, `gzip`, `zstd`, `bzip2` or `lz4`; an archive's is its data
    /// blocks' (`gzip (inside the archive)`), a physical backup's its files'. Empty until verify
    /// read it.
    pub compression: String,
    /// What it is: pg_dump's format (`plain`, `custom`, `directory`, `tar`), or a physical
    /// backup in words (`base backup (plain)`, a pgBackRest set, a Barman backup). Empty until
    /// verify read it.
    pub format: String,
    /// `Dumped from database version ...`; a physical backup's PostgreSQL major.
    pub source_version: Option<String>,
    /// `Dumped by pg_dump version ...`.
    pub dumped_by: Option<String>,
    /// Bytes after decompression.
    pub uncompressed_bytes: u64,
    /// When the backup was taken, as well as it is known (its age is judged against the RPO).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub taken_at: Option<OffsetDateTime>,
    /// What `taken_at` was read from.
    #[serde(default)]
    pub taken_at_from: Option<String>,
    /// The envelope an encrypted dump was in (`age`, `OpenPGP`), decrypted as it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    /// Each key proven to open the encrypted dump, by its public identity (an age recipient,
    /// an OpenPGP fingerprint, the passphrase's variable or file): never the secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// What kind of backup it is (its format, content, database, major, encryption), compared
    /// with the scenario's previous drill's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<BackupKind>,
    /// Named on the command line (`run --backup`) in place of the scenario's source: its kind
    /// was not compared with the scenario's previous drills, and is not kept for the next.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub given: bool,
}

/// What kind of backup a drill drilled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupKind {
    /// `custom`, `directory`, `tar`, `plain` (pg_dump), `pg_dumpall`, `basebackup-tar`,
    /// `basebackup-plain`, `chain`, `pgbackrest`, `barman`, `barman-cloud`.
    pub format: String,
    /// `full`, `schema-only`, `data-only`; none when the dump does not tell (no pg_dump entries),
    /// and for a physical backup, always whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The database a dump is of (an archive's header, a plain dump's `CREATE DATABASE`); none
    /// for a cluster (pg_dumpall, a physical backup) or a plain dump that does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The PostgreSQL major it was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<u32>,
    /// `age`, `openpgp`, `pgbackrest`; none when it is not encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
}
