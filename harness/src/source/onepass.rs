//! One read of a plain dump for both its verification and its restore.
//!
//! Before the restore, only the dump's head is read: what comes before its first rows (the
//! extensions, settings, roles and databases preflight needs, and pg_dump's header). The
//! restore's reader then verifies the whole dump as it reads it ([`super::verify::verify_into`]
//! with a sink): each item reaches the restore only once it passed (a refused meta-command or
//! `COPY ... PROGRAM` never runs), and the verdict (integrity, digest, pg_dump's end marker) is
//! the whole read's. The drill gives no verdict on the restore before it.

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::oneshot;

use super::Backup;
use super::verify::{self, Damage, Verified, VerifyError};
use crate::dump::{Compression, Format, Item, Scanner, SplitError, Splitter, detect_format};

/// A plain dump's read shared by its verification and its restore: what the restore's reader
/// verifies as it reads, and where it sends the verdict.
#[derive(Debug)]
pub(crate) struct OnePass {
    pub backup: Backup,
    pub expected_sha256: Option<String>,
    /// Set when the drill stops: the read ends with [`VerifyError::Stopped`].
    pub stop: Arc<AtomicBool>,
    pub verdict: oneshot::Sender<Result<Verified, VerifyError>>,
}

impl OnePass {
    /// Reads the dump to its end, verifying it, and hands each item that passed to `sink`;
    /// sends the verdict, and returns it as an error to stop the restore when it failed.
    /// Blocking: run it on the restore's reading thread.
    pub(crate) fn read(self, progress: &dyn Fn(u64), sink: verify::Sink<'_>) -> Result<(), Unverified> {
        let OnePass { backup, expected_sha256, stop, verdict } = self;
        let result = verify::verify_into(&backup, expected_sha256.as_deref(), (progress, &stop), Some(sink));
        let failed = result.as_ref().err().map(|_| Unverified);
        let _ = verdict.send(result);
        failed.map_or(Ok(()), Err)
    }
}

/// What stops a restore read in one pass with its verification: the backup does not verify
/// (the verify phase's error says why).
#[derive(Debug, thiserror::Error)]
#[error(
    "the dump does not verify (the verify phase says why): the restore stopped, and nothing restored from it is trusted"
)]
pub(crate) struct Unverified;

/// What the head of a backup is.
#[derive(Debug)]
pub(crate) enum Head {
    /// A plain dump's head, read to its first rows: its summary is what preflight needs; its
    /// digest is not known yet.
    Plain(Box<Verified>),
    /// An archive, or a folder: verified whole before its restore.
    Archive,
}

/// Reads a backup's head: a plain dump's statements up to its first rows (refused ones fail
/// here, before anything runs), or the first bytes that say it is an archive. Blocking.
pub(crate) fn head(backup: &Backup, stop: &AtomicBool) -> Result<Head, VerifyError> {
    if backup.path.is_dir() {
        return Ok(Head::Archive);
    }
    if backup.size == 0 {
        return Err(VerifyError::Empty);
    }
    let mut opened = verify::open_backup(backup, false)?;
    let (compression, envelope) = (opened.compression, opened.envelope);
    let damage = Damage { backup, compression, envelope, raw_bytes: opened.raw_bytes.clone() };
    let first = opened.reader.fill_buf().map_err(|e| damage.at(1, e))?;
    if detect_format(first)? != Format::Plain {
        return Ok(Head::Archive);
    }
    let mut splitter = Splitter::new(&mut opened.reader);
    let mut scanner = Scanner::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(VerifyError::Stopped);
        }
        match splitter.next_item() {
            Ok(Some(item)) => {
                if let Some(what) = verify::refused(&item) {
                    return Err(VerifyError::Refused { line: verify::item_line(&item), what });
                }
                scanner.note(&item);
                if matches!(&item, Item::Statement(s) if s.copy_from_stdin) {
                    break;
                }
            }
            Ok(None) => break,
            Err(SplitError::Read { line, source }) => return Err(damage.at(line, source)),
            Err(other) => return Err(VerifyError::Malformed(other)),
        }
    }
    let (lines, bytes) = (splitter.lines_read(), splitter.bytes_read());
    let mut summary = scanner.finish(splitter.comments(), lines, bytes);
    // What the restore will write, as far as the head can tell: an uncompressed, unencrypted
    // dump's own size (a compressed one's is left to the disk watchdog).
    if compression == Compression::None && envelope.is_none() {
        summary.bytes = summary.bytes.max(backup.size);
    }
    let mut verified = verify::verified(backup, String::new(), compression, Format::Plain, summary, None);
    if let Some(envelope) = envelope {
        verified.info.encryption = Some(envelope.name().to_owned());
        verified.info.keys = backup.keys.iter().map(|k| k.public.clone()).collect();
    }
    Ok(Head::Plain(Box::new(verified)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    use super::{Head, head};
    use crate::dump::Item;
    use crate::source::Backup;
    use crate::source::verify::{VerifyError, verify_into};

    const DUMP: &str = "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 17.2\n\n\
        CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\n\
        CREATE TABLE public.t (id integer);\nALTER TABLE public.t OWNER TO app;\n\
        COPY public.t (id) FROM stdin;\n1\n2\n\\.\n\n";

    fn backup(dir: &Path, text: &str) -> Backup {
        let path = dir.join("dump.sql");
        std::fs::write(&path, text).unwrap();
        Backup {
            location: path.display().to_string(),
            size: text.len() as u64,
            path,
            modified: None,
            previous: None,
            wal_archive: None,
            keys: Vec::new(),
            remote: None,
        }
    }

    /// The head ends at the first rows: what preflight needs is in it, the tail is left to the
    /// restore's read, which refuses what the head did not see and never hands it on.
    #[test]
    fn the_head_is_read_to_the_first_rows_and_the_restores_read_verifies_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let tail = "GRANT SELECT ON public.t TO reader;\n\\! touch /tmp/x\n";
        let backup = backup(dir.path(), &format!("{DUMP}{tail}--\n-- PostgreSQL database dump complete\n--\n"));
        let Head::Plain(head) = head(&backup, &AtomicBool::new(false)).unwrap() else { panic!("a plain dump") };
        assert!(head.summary.extensions.contains("vector"), "{:?}", head.summary);
        assert!(head.summary.roles_referenced.contains("app"), "{:?}", head.summary);
        assert!(!head.summary.roles_referenced.contains("reader"), "the tail is not the head's");
        assert!(head.info.sha256.is_empty(), "no digest before the whole read");

        let mut handed = Vec::new();
        let mut sink = |item: Item| handed.push(item);
        let read = verify_into(&backup, None, (&|_| {}, &AtomicBool::new(false)), Some(&mut sink));
        assert!(matches!(read, Err(VerifyError::Refused { ref what, .. }) if what.contains("\\!")), "{read:?}");
        assert!(handed.iter().any(|i| matches!(i, Item::Statement(s) if s.sql.contains("GRANT"))));
        assert!(!handed.iter().any(|i| matches!(i, Item::Meta { .. })), "a refused item never reaches the restore");
    }

    #[test]
    fn a_refusal_in_the_head_fails_before_anything_runs_and_an_archive_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let refused = backup(dir.path(), &DUMP.replace("CREATE TABLE", "\\! id\nCREATE TABLE"));
        let error = head(&refused, &AtomicBool::new(false)).unwrap_err();
        assert!(matches!(error, VerifyError::Refused { line: 8, .. }), "{error:?}");
        let archive = backup(dir.path(), "PGDMP\x01\x10\x00\x04\x08\x01\x01");
        assert!(matches!(head(&archive, &AtomicBool::new(false)), Ok(Head::Archive)));
        let mut sink = |_: Item| {};
        let read = verify_into(&archive, None, (&|_| {}, &AtomicBool::new(false)), Some(&mut sink));
        assert!(matches!(read, Err(VerifyError::NotPlain { format: "custom" })), "{read:?}");
    }
}
