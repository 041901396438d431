//! The verify phase: reads the whole backup once before anything is restored. A truncated or
//! corrupt archive fails here, not halfway through a restore. On the way it records the
//! backup's sha256 and size, reads the dump header, and learns what the dump needs from its
//! target (see [`crate::dump::scan`]).

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Backup;
use super::decrypt::{self, DecryptError, StreamError};
use super::read::{self, OpenError};
use crate::dump::archive::{ArchiveError, ArchiveHeader};
use crate::dump::toc;
use crate::dump::{
    Compression, DumpComments, DumpSummary, Format, Item, NotADump, Scanner, SplitError, Splitter, detect_format,
};
use crate::outcome::BackupInfo;

/// A backup that read cleanly to its end.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub info: BackupInfo,
    pub format: Format,
    /// What a plain dump needs from its target (for archives, learnt later from pg_restore).
    pub summary: DumpSummary,
    /// An archive's header.
    pub archive: Option<ArchiveHeader>,
    /// A custom archive whose data verify read and counted: pg_restore's list (`-L`) of its
    /// other entries, whose SQL preflight still reads through the target's pg_restore.
    pub sql_list: Option<String>,
}

impl Verified {
    /// The verify phase's summary: the digest, and what the backup is.
    pub(crate) fn summary_line(&self) -> String {
        let s = &self.summary;
        let mut summary = format!("sha256 {}…, ", &self.info.sha256[..12]);
        if let Some(envelope) = &self.info.encryption {
            let keys = self.info.keys.len();
            let proven = if keys == 1 { "its key".to_owned() } else { format!("each of its {keys} keys") };
            summary.push_str(&format!("{envelope}-encrypted, decrypted as read by {proven}; "));
        }
        match &self.archive {
            Some(archive) => summary.push_str(&format!(
                "{} archive (version {}, {}) of database `{}` from PostgreSQL {}, by pg_dump {}",
                archive.format,
                archive.version,
                match archive.compression.as_str() {
                    "none" => "its data not compressed".to_owned(),
                    compression => format!("{compression} inside"),
                },
                archive.database,
                archive.source_version,
                archive.pg_dump_version
            )),
            None => {
                // An uncompressed dump is a "plain dump", not a "none plain dump".
                match self.info.compression.as_str() {
                    "none" => summary.push_str(&format!("{} dump", self.info.format)),
                    compression => summary.push_str(&format!("{compression} {} dump", self.info.format)),
                }
                if let Some(v) = &s.comments.source_version {
                    summary.push_str(&format!(" from PostgreSQL {v}"));
                }
                summary.push_str(&format!(
                    ": {} statements, {} rows in {} COPY blocks",
                    s.statements,
                    s.total_rows(),
                    s.copy_blocks
                ));
            }
        }
        match self.sql_list {
            Some(_) if s.copy_blocks == 0 => {
                summary.push_str("; its data read (none of it COPY rows: pg_restore writes it as SQL)")
            }
            Some(_) => {
                summary.push_str(&format!("; its data read: {} rows in {} COPY blocks", s.total_rows(), s.copy_blocks))
            }
            None => {}
        }
        summary
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum VerifyError {
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The file has no bytes at all.
    #[error("the backup is empty (0 bytes)")]
    Empty,
    /// The compressed stream ends before its end: the file was cut short.
    /// (The decompressor's error is shown where the message always showed it.)
    #[error(
        "the {compression} archive is truncated: its {size} bytes end before the compressed stream does ({source}; at dump line {line})"
    )]
    Truncated {
        compression: &'static str,
        size: u64,
        line: u64,
        #[source]
        source: std::io::Error,
    },
    /// The compressed data is damaged.
    #[error(
        "the {compression} archive is corrupt: {source} (after reading {offset} of {size} bytes, at dump line {line})"
    )]
    Corrupt {
        compression: &'static str,
        offset: u64,
        size: u64,
        line: u64,
        #[source]
        source: std::io::Error,
    },
    /// The content is not a dump.
    #[error("the backup is not a pg_dump backup: {0}")]
    NotADump(#[from] NotADump),
    /// A pg_dump archive that is itself compressed: pg_restore cannot read it.
    #[error(
        "the {format}-format archive is wrapped in {compression}: pg_restore reads archives as pg_dump wrote them (decompress it, or let pg_dump compress: -Z)"
    )]
    WrappedArchive { format: &'static str, compression: &'static str },
    /// An archive's header or structure is damaged.
    #[error("the {format}-format archive is damaged: {error}")]
    Archive { format: &'static str, error: ArchiveError },
    /// A directory that is not a directory-format archive.
    #[error("`{path}` is a folder without pg_dump's `toc.dat`: not a directory-format archive")]
    NotAnArchiveFolder { path: String },
    /// A data file of a directory-format archive cannot be opened.
    #[error("`{file}` of the directory-format archive is {source}")]
    DataFileOpen {
        file: String,
        #[source]
        source: OpenError,
    },
    /// A data file of a directory-format archive cannot be read.
    #[error("`{file}` of the directory-format archive is {source}")]
    DataFileRead {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A data file of a directory-format archive does not decompress to its end.
    #[error("`{file}` of the directory-format archive is truncated or corrupt ({source})")]
    DataFileDamaged {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The dump asks for something a restore must never do: found before anything runs.
    #[error(
        "dump line {line}: {what} is refused: a dump is untrusted input, and pgdrill follows only `\\connect`, `\\restrict` and `\\unrestrict`"
    )]
    Refused { line: u64, what: String },
    /// The plain dump is malformed.
    #[error("the dump is malformed: {0}")]
    Malformed(SplitError),
    /// pg_dump's completion marker is missing: the dump was cut short.
    #[error(
        "the dump ends at line {lines} without pg_dump's `-- PostgreSQL database dump complete` marker: it was cut short (disk full, or pg_dump killed?)"
    )]
    Incomplete { lines: u64 },
    /// The encrypted stream does not authenticate: the file was changed or cut short.
    #[error("the {envelope}-encrypted backup is damaged: {error} (read {offset} of its {size} bytes)")]
    Encrypted { envelope: &'static str, offset: u64, size: u64, error: StreamError },
    /// A key does not open the backup (gpg says so once it read the file's key packets).
    #[error(transparent)]
    Key(DecryptError),
    /// Some of the keys the scenario lists do not open the backup.
    #[error("{} of the {total} keys {} not open the backup: {}{}", failed.len(), if failed.len() == 1 { "does" } else { "do" }, failed.join("; "), opened_by(opened))]
    Keys { total: usize, failed: Vec<String>, opened: Vec<String> },
    /// A backup read in one pass with its restore is no longer a plain dump (it changed on disk
    /// since its head was read).
    #[error(
        "the backup changed while the drill read it: it began as a plain dump, it is now a {format}-format archive"
    )]
    NotPlain { format: &'static str },
    /// An archive read in one pass with its restore is no longer one (it changed on disk since
    /// its head was read).
    #[error("the backup changed while the drill read it: it began as an archive, it is now a {now}")]
    NotArchive { now: String },
    /// The target's pg_restore could not read an archive to its end (pgdrill reads only its
    /// header and structure; pg_restore reads its data).
    #[error("the archive cannot be read to its end: pg_restore exited with {status}:\n{stderr}")]
    Unreadable { status: i64, stderr: String },
    /// Verification was stopped because the drill cannot go on anyway.
    #[error("stopped")]
    Stopped,
    /// The digest differs from the one the scenario requires.
    #[error("sha256 mismatch: expected {expected}, the backup has {actual}")]
    Checksum { expected: String, actual: String },
}

fn opened_by(opened: &[String]) -> String {
    if opened.is_empty() { String::new() } else { format!(" (it opens with {})", opened.join(", ")) }
}

impl VerifyError {
    /// The error a failed decrypted stream means: a key that does not open the file, or damage.
    fn of_stream(
        error: std::io::Error,
        envelope: decrypt::Envelope,
        offset: u64,
        size: u64,
    ) -> Result<Self, std::io::Error> {
        if StreamError::of(&error).is_none() {
            return Err(error);
        }
        let stream = error.into_inner().and_then(|inner| inner.downcast::<StreamError>().ok()).map(|b| *b);
        Ok(match stream {
            Some(StreamError::Key(key)) => VerifyError::Key(key),
            Some(error) => VerifyError::Encrypted { envelope: envelope.name(), offset, size, error },
            None => VerifyError::Stopped,
        })
    }

    /// Whether this says a key does not open the file (rather than the file being damaged).
    fn is_key_failure(&self) -> bool {
        matches!(
            self,
            VerifyError::Key(_)
                | VerifyError::Open(OpenError::Decrypt(
                    DecryptError::NotForKey { .. } | DecryptError::WrongKind { .. }
                ))
        )
    }
}

/// The meta-commands a restore follows; psql would run any other, `\\!` a shell command among them.
pub(crate) const ALLOWED_META: [&str; 4] = ["connect", "c", "restrict", "unrestrict"];

/// What in `item` a restore must refuse, if anything.
pub(crate) fn refused(item: &Item) -> Option<String> {
    match item {
        Item::Meta { command, .. } if !ALLOWED_META.contains(&command.as_str()) => {
            Some(format!("the meta-command `\\{command}`"))
        }
        Item::Statement(s) if s.copy_program => {
            Some("`COPY ... PROGRAM` (it runs a shell command on the server)".into())
        }
        _ => None,
    }
}

/// A statement that begins as no SQL command does: the text is not SQL from there (the splitter
/// took prose up to its next `;` for a statement).
fn not_sql(item: &Item) -> Option<NotADump> {
    let Item::Statement(statement) = item else { return None };
    let (line, begins) = crate::dump::commands::not_a_command(&statement.sql)?;
    Some(NotADump::Text { line: statement.line + line - 1, begins })
}

/// The dump line an item starts on (0 for COPY data, which has no single line).
pub(crate) fn item_line(item: &Item) -> u64 {
    match item {
        Item::Statement(s) => s.line,
        Item::Meta { line, .. } | Item::CopyEnd { line, .. } => *line,
        Item::CopyData(_) => 0,
    }
}

/// How often (in raw bytes) progress is reported.
const PROGRESS_EVERY: u64 = 4 * 1024 * 1024;

/// Reads `backup` to its end. Blocking: run it on a blocking thread. Setting `stop` ends it early
/// with [`VerifyError::Stopped`]. An encrypted backup is read decrypted with its first key, and
/// each other key is proven to open it too (see [`super::decrypt::prove`]).
pub(crate) fn verify(
    backup: &Backup,
    expected_sha256: Option<&str>,
    progress: &dyn Fn(u64),
    stop: &AtomicBool,
) -> Result<Verified, VerifyError> {
    verify_into(backup, expected_sha256, (progress, stop), None)
}

/// Where a read of a plain dump hands each item once it is verified: the restore, when one read
/// serves both (see [`super::onepass`]).
pub(crate) type Sink<'a> = &'a mut dyn FnMut(Item);

/// [`verify`], handing each item of a plain dump to `sink` once it passed (a refused one never
/// reaches it). With a sink, the backup must be a plain dump: an archive fails.
pub(crate) fn verify_into(
    backup: &Backup,
    expected_sha256: Option<&str>,
    (progress, stop): (&dyn Fn(u64), &AtomicBool),
    sink: Option<Sink<'_>>,
) -> Result<Verified, VerifyError> {
    if backup.path.is_dir() {
        return match sink {
            Some(_) => Err(VerifyError::NotPlain { format: "directory" }),
            None => directory::verify_directory(backup, expected_sha256),
        };
    }
    if backup.size == 0 {
        return Err(VerifyError::Empty);
    }
    let read = read_whole(backup, expected_sha256, (progress, stop), sink);
    if backup.keys.len() <= 1 {
        return read.map(|(verified, _)| verified);
    }
    let (first, others) = backup.keys.split_first().expect("two keys or more");
    let mut failed = Vec::new();
    let read = match read {
        Err(e) if e.is_key_failure() => {
            failed.push(e.to_string());
            None
        }
        Err(e) => return Err(e),
        Ok(read) => Some(read),
    };
    let mut opened: Vec<String> = read.as_ref().map(|_| first.public.clone()).into_iter().collect();
    for key in others {
        if stop.load(Ordering::Relaxed) {
            return Err(VerifyError::Stopped);
        }
        match decrypt::prove(&backup.path, key) {
            Ok(digest) => match read.as_ref().and_then(|(_, main)| main.as_ref()) {
                Some(main) if *main != digest => {
                    failed.push(format!("{} decrypts it to other bytes than {}", key.public, first.public))
                }
                _ => opened.push(key.public.clone()),
            },
            Err(decrypt::ProveError::Decrypt(e)) => failed.push(crate::error::error_chain(&e)),
            Err(e) => failed.push(format!("{}: {}", key.public, crate::error::error_chain(&e))),
        }
    }
    match read {
        Some((verified, _)) if failed.is_empty() => Ok(verified),
        _ => Err(VerifyError::Keys { total: backup.keys.len(), failed, opened }),
    }
}

/// Reads a backup file to its end (decrypted with its first key): what it is, and the sha256 of
/// its plaintext when it is encrypted.
fn read_whole(
    backup: &Backup,
    expected_sha256: Option<&str>,
    (progress, stop): (&dyn Fn(u64), &AtomicBool),
    sink: Option<Sink<'_>>,
) -> Result<(Verified, Option<String>), VerifyError> {
    let mut opened = open_backup(backup, true)?;
    let compression = opened.compression;
    let envelope = opened.envelope;
    let raw_bytes = opened.raw_bytes.clone();
    let damage = Damage { backup, compression, envelope, raw_bytes: raw_bytes.clone() };
    let corrupt = |line: u64, err: std::io::Error| damage.at(line, err);

    let head = opened.reader.fill_buf().map_err(|e| corrupt(1, e))?;
    let format = detect_format(head)?;
    let mut sql_list = None;
    let (summary, archive) = match format {
        Format::Plain => {
            let summary = scan_plain(&mut opened, &corrupt, (progress, stop), sink)?;
            (summary, None)
        }
        _ if sink.is_some() => return Err(VerifyError::NotPlain { format: format.as_str() }),
        Format::Custom | Format::Tar | Format::Directory if compression != Compression::None => {
            return Err(VerifyError::WrappedArchive { format: format.as_str(), compression: compression.as_str() });
        }
        Format::Custom => {
            // A damaged file (a decryption that fails, a stream cut short) shows as damaged data
            // before it fails itself: that is the error to report.
            let (header, summary, list) = match custom::read(&mut opened.reader) {
                Ok(read) => read,
                Err(found) => {
                    opened.drain().map_err(|e| corrupt(0, e))?;
                    return Err(found);
                }
            };
            sql_list = list;
            progress(raw_bytes.load(Ordering::Relaxed));
            (summary, Some(header))
        }
        Format::Tar | Format::Directory => {
            let (header, kinds) = toc::read_structure(format, &mut opened.reader)
                .map_err(|error| VerifyError::Archive { format: format.as_str(), error })?;
            opened.drain().map_err(|e| corrupt(0, e))?;
            progress(raw_bytes.load(Ordering::Relaxed));
            (archive_summary(&header, kinds), Some(header))
        }
    };

    let sha256 = opened.sha256().unwrap_or_default();
    check_digest(expected_sha256, &sha256)?;
    let mut verified = verified(backup, sha256, compression, format, summary, archive);
    verified.sql_list = sql_list;
    encrypted(&mut verified, backup, envelope);
    Ok((verified, opened.plaintext_sha256()))
}

/// Opens a backup file to read it decrypted (with its first key) and decompressed; `hash` keeps
/// the sha256 of its bytes.
pub(super) fn open_backup(backup: &Backup, hash: bool) -> Result<read::Opened, VerifyError> {
    match read::open_keyed(&backup.path, hash, backup.keys.first()) {
        Ok(opened) => Ok(opened),
        Err(OpenError::Stream(e)) => {
            let envelope = envelope_of(&backup.path).unwrap_or(decrypt::Envelope::OpenPgp { armored: false });
            let shown = backup.path.display().to_string();
            Err(VerifyError::of_stream(e, envelope, 0, backup.size)
                .unwrap_or_else(|source| OpenError::Io { path: shown, source }.into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// What a failure to read an opened backup means: a key that does not open it, an encrypted
/// stream that does not authenticate, or compressed data cut short or damaged.
pub(super) struct Damage<'a> {
    pub backup: &'a Backup,
    pub compression: Compression,
    pub envelope: Option<decrypt::Envelope>,
    pub raw_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Damage<'_> {
    /// The error `err` at dump line `line` means.
    pub(super) fn at(&self, line: u64, err: std::io::Error) -> VerifyError {
        let (backup, compression) = (self.backup, self.compression);
        let offset = self.raw_bytes.load(Ordering::Relaxed);
        let err = match self.envelope {
            Some(envelope) => match VerifyError::of_stream(err, envelope, offset, backup.size) {
                Ok(decrypted) => return decrypted,
                Err(err) => err,
            },
            None => err,
        };
        let detail = err.to_string();
        let truncated = err.kind() == std::io::ErrorKind::UnexpectedEof
            || detail.contains("incomplete")
            || detail.contains("unexpected end");
        if truncated {
            VerifyError::Truncated { compression: compression.as_str(), size: backup.size, line, source: err }
        } else {
            VerifyError::Corrupt { compression: compression.as_str(), offset, size: backup.size, line, source: err }
        }
    }
}

/// The envelope of the file at `path`, by its first bytes.
fn envelope_of(path: &Path) -> Option<decrypt::Envelope> {
    let mut head = [0u8; 64];
    let n = std::io::Read::read(&mut std::fs::File::open(path).ok()?, &mut head).ok()?;
    decrypt::detect(&head[..n])
}

/// Streams a plain dump through the splitter: structure, refusals, and what it needs.
fn scan_plain(
    opened: &mut read::Opened,
    corrupt: &dyn Fn(u64, std::io::Error) -> VerifyError,
    (progress, stop): (&dyn Fn(u64), &AtomicBool),
    mut sink: Option<Sink<'_>>,
) -> Result<DumpSummary, VerifyError> {
    let compression = opened.compression;
    let raw_bytes = opened.raw_bytes.clone();
    let mut splitter = Splitter::new(&mut opened.reader);
    let mut scanner = Scanner::new();
    let mut next_report = PROGRESS_EVERY;
    loop {
        let found = match splitter.next_item() {
            Ok(Some(item)) => {
                let refusal = refused(&item)
                    .map(|what| VerifyError::Refused { line: item_line(&item), what })
                    .or_else(|| not_sql(&item).map(VerifyError::NotADump));
                if refusal.is_none() {
                    scanner.note(&item);
                    if let Some(sink) = sink.as_mut() {
                        sink(item);
                    }
                }
                refusal
            }
            Ok(None) => break,
            Err(SplitError::Read { line, source }) => return Err(corrupt(line, source)),
            Err(other) => Some(VerifyError::Malformed(other)),
        };
        if let Some(found) = found {
            // Damaged compressed data decodes to garbage (a stray `\.`, a broken statement)
            // before its checksum fails, and gpg gives out a tampered message's plaintext before
            // its integrity check at the end fails: when the file itself is damaged, that is the
            // error to report, not the garbage.
            let line = splitter.lines_read();
            drop(splitter);
            if compression != Compression::None || opened.envelope.is_some() {
                opened.drain().map_err(|e| corrupt(line, e))?;
            }
            return Err(found);
        }
        let done = raw_bytes.load(Ordering::Relaxed);
        if done >= next_report {
            if stop.load(Ordering::Relaxed) {
                return Err(VerifyError::Stopped);
            }
            progress(done);
            next_report = done + PROGRESS_EVERY;
        }
    }
    let lines = splitter.lines_read();
    let bytes = splitter.bytes_read();
    let comments = splitter.comments().clone();
    drop(splitter);
    opened.drain().map_err(|e| corrupt(lines, e))?;
    progress(raw_bytes.load(Ordering::Relaxed));
    if comments.title.is_some() && !comments.complete {
        return Err(VerifyError::Incomplete { lines });
    }
    Ok(scanner.finish(&comments, lines, bytes))
}

/// What an archive's header and table of contents (the kinds of its entries, when it read
/// whole) tell before pg_restore has read it.
pub(super) fn archive_summary(
    header: &ArchiveHeader,
    kinds: Option<std::collections::BTreeSet<String>>,
) -> DumpSummary {
    DumpSummary {
        entry_kinds: kinds.unwrap_or_default(),
        comments: DumpComments {
            title: Some("PostgreSQL database dump".into()),
            source_version: Some(header.source_version.clone()),
            dumped_by: Some(format!("pg_dump {}", header.pg_dump_version)),
            complete: true,
            started_on: None,
        },
        ..DumpSummary::default()
    }
}

pub(super) fn check_digest(expected: Option<&str>, actual: &str) -> Result<(), VerifyError> {
    match expected {
        Some(expected) if expected != actual => {
            Err(VerifyError::Checksum { expected: expected.to_owned(), actual: actual.to_owned() })
        }
        _ => Ok(()),
    }
}

/// Records the envelope an encrypted backup was read from, and its keys.
pub(super) fn encrypted(verified: &mut Verified, backup: &Backup, envelope: Option<decrypt::Envelope>) {
    if let Some(envelope) = envelope {
        verified.info.encryption = Some(envelope.name().to_owned());
        verified.info.keys = backup.keys.iter().map(|k| k.public.clone()).collect();
    }
}

pub(super) fn verified(
    backup: &Backup,
    sha256: String,
    compression: Compression,
    format: Format,
    summary: DumpSummary,
    archive: Option<ArchiveHeader>,
) -> Verified {
    let compression_text = match &archive {
        Some(header) => format!("{} (inside the archive)", header.compression),
        None => compression.as_str().to_owned(),
    };
    let taken = super::taken::taken_at(archive.as_ref(), &summary.comments, &backup.location, backup.modified);
    let info = BackupInfo {
        taken_at: taken.map(|(at, _)| at),
        taken_at_from: taken.map(|(_, from)| from.to_owned()),
        location: backup.location.clone(),
        size_bytes: backup.size,
        sha256,
        modified: backup.modified,
        compression: compression_text,
        format: format.as_str().to_owned(),
        source_version: summary.comments.source_version.clone(),
        dumped_by: summary.comments.dumped_by.clone(),
        uncompressed_bytes: summary.bytes,
        encryption: None,
        keys: Vec::new(),
        kind: None,
        given: false,
    };
    Verified { info, format, summary, archive, sql_list: None }
}

mod custom;
mod directory;
#[cfg(test)]
mod tests;
