//! One read of a dump file for both its verification and its restore.
//!
//! Before the restore, only the dump's head is read: a plain dump's statements before its first
//! rows (the extensions, settings, roles and databases preflight needs, and pg_dump's header);
//! a custom or tar archive's header and table of contents. The restore's reader then verifies
//! the whole dump as it reads it: a plain dump's with [`super::verify::verify_into`] and a sink,
//! each item reaching the restore only once it passed (a refused meta-command or `COPY ...
//! PROGRAM` never runs); an archive's with [`read_archive`], its bytes handed to the target's
//! pg_restore as they are read. The verdict (integrity, digest, pg_dump's end marker) is the
//! whole read's, and the drill gives none on the restore before it.

use std::io::{BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::oneshot;

use super::Backup;
use super::read::Opened;
use super::verify::{self, Damage, Verified, VerifyError};
use crate::dump::archive::ArchiveError;
use crate::dump::{Compression, Format, Item, Scanner, SplitError, Splitter, detect_format, toc};

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
    /// A custom or tar archive's head, its header and table of contents: the restore's read
    /// (pg_restore's) says what it needs; its digest is not known yet.
    Archive(Box<Verified>),
    /// A directory-format archive, or an archive compressed whole: verified whole before its
    /// restore.
    Whole,
}

/// Reads a backup's head: a plain dump's statements up to its first rows (refused ones fail
/// here, before anything runs), or an archive's header and table of contents. Blocking.
pub(crate) fn head(backup: &Backup, stop: &AtomicBool) -> Result<Head, VerifyError> {
    if backup.path.is_dir() {
        return Ok(Head::Whole);
    }
    if backup.size == 0 {
        return Err(VerifyError::Empty);
    }
    let mut opened = verify::open_backup(backup, false)?;
    let (compression, envelope) = (opened.compression, opened.envelope);
    let damage = Damage { backup, compression, envelope, raw_bytes: opened.raw_bytes.clone() };
    let first = opened.reader.fill_buf().map_err(|e| damage.at(1, e))?;
    let format = detect_format(first)?;
    if format != Format::Plain {
        return archive_head(backup, format, &mut opened, &damage);
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
    verify::encrypted(&mut verified, backup, envelope);
    Ok(Head::Plain(Box::new(verified)))
}

/// The head of an archive file: its header and table of contents. An archive compressed whole
/// (which pg_restore cannot read) is left to the whole read, which says so.
fn archive_head(
    backup: &Backup,
    format: Format,
    opened: &mut Opened,
    damage: &Damage<'_>,
) -> Result<Head, VerifyError> {
    if opened.compression != Compression::None {
        return Ok(Head::Whole);
    }
    let read = match format {
        Format::Tar => toc::read_tar_head(&mut opened.reader),
        _ => toc::read_header_and_kinds(&mut opened.reader),
    };
    let (header, kinds) = read.map_err(|error| archive_error(format, error, damage))?;
    let summary = verify::archive_summary(&header, kinds);
    let mut verified = verify::verified(backup, String::new(), Compression::None, format, summary, Some(header));
    verify::encrypted(&mut verified, backup, opened.envelope);
    Ok(Head::Archive(Box::new(verified)))
}

/// What an archive's failed read means: the decryption's error (a damaged or cut envelope), or
/// the archive's own damage.
fn archive_error(format: Format, error: ArchiveError, damage: &Damage<'_>) -> VerifyError {
    match error {
        ArchiveError::Io(e) => damage.at(0, e),
        error => VerifyError::Archive { format: format.as_str(), error },
    }
}

/// Where a read of an archive hands its bytes as they are read (pg_restore's input); `false`
/// once it takes no more.
pub(crate) type Forward<'a> = &'a mut dyn FnMut(Vec<u8>) -> bool;

/// Reads a custom or tar archive to its end as the verify phase does (its header and table of
/// contents, a tar's members whole, its digest), handing its bytes to `forward` as they are
/// read; its data is pg_restore's to read, and the restore judges the whole read with
/// pg_restore's exit. Once `stopped` says so, it ends with [`VerifyError::Stopped`]; `progress`
/// gets the raw bytes read so far. Blocking.
pub(crate) fn read_archive(
    backup: &Backup,
    expected_sha256: Option<&str>,
    (progress, stopped): (&dyn Fn(u64), &dyn Fn() -> bool),
    forward: Forward<'_>,
) -> Result<Verified, VerifyError> {
    let mut opened = verify::open_backup(backup, true)?;
    let (compression, envelope, raw) = (opened.compression, opened.envelope, opened.raw_bytes.clone());
    let damage = Damage { backup, compression, envelope, raw_bytes: raw.clone() };
    let format = detect_format(opened.reader.fill_buf().map_err(|e| damage.at(0, e))?)?;
    if !matches!(format, Format::Custom | Format::Tar) || compression != Compression::None {
        let now = match format {
            Format::Plain => "plain dump".to_owned(),
            _ => format!("{}-format archive compressed with {}", format.as_str(), compression.as_str()),
        };
        return Err(VerifyError::NotArchive { now });
    }
    let stop = |error| if stopped() { VerifyError::Stopped } else { error };
    let mut tee =
        Tee { inner: &mut opened.reader, forward, pending: Vec::new(), open: true, stopped, progress, raw, shown: 0 };
    let (header, kinds) =
        toc::read_structure(format, &mut tee).map_err(|error| stop(archive_error(format, error, &damage)))?;
    std::io::copy(&mut tee, &mut std::io::sink()).map_err(|e| stop(damage.at(0, e)))?;
    tee.flush();
    progress(tee.raw.load(Ordering::Relaxed));
    let sha256 = opened.sha256().unwrap_or_default();
    verify::check_digest(expected_sha256, &sha256)?;
    let summary = verify::archive_summary(&header, kinds);
    let mut verified = verify::verified(backup, sha256, compression, format, summary, Some(header));
    verify::encrypted(&mut verified, backup, envelope);
    Ok(verified)
}

/// The bytes a [`Tee`] hands on at once.
const PIECE: usize = 256 * 1024;

/// How often a [`Tee`] reports its progress, in raw bytes.
const PROGRESS_EVERY: u64 = 4 << 20;

/// A reader that hands what it reads to `forward`, in pieces of [`PIECE`] bytes (pg_restore's
/// input; the header's reader reads it a byte at a time), and stops once `stopped` says so.
struct Tee<'a, R> {
    inner: R,
    forward: Forward<'a>,
    pending: Vec<u8>,
    /// Whether `forward` still takes bytes.
    open: bool,
    stopped: &'a dyn Fn() -> bool,
    progress: &'a dyn Fn(u64),
    raw: Arc<AtomicU64>,
    shown: u64,
}

impl<R> Tee<'_, R> {
    /// Hands on what is pending.
    fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if self.open && !pending.is_empty() {
            self.open = (self.forward)(pending);
        }
    }
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if (self.stopped)() {
            return Err(std::io::Error::other("the drill stopped"));
        }
        let n = self.inner.read(buf)?;
        if self.open {
            self.pending.extend_from_slice(&buf[..n]);
            if self.pending.len() >= PIECE {
                self.flush();
            }
        }
        let done = self.raw.load(Ordering::Relaxed);
        if done >= self.shown + PROGRESS_EVERY {
            (self.progress)(done);
            self.shown = done;
        }
        Ok(n)
    }
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
        assert!(matches!(head(&archive, &AtomicBool::new(false)), Err(VerifyError::Archive { format: "custom", .. })));
        let mut sink = |_: Item| {};
        let read = verify_into(&archive, None, (&|_| {}, &AtomicBool::new(false)), Some(&mut sink));
        assert!(matches!(read, Err(VerifyError::NotPlain { format: "custom" })), "{read:?}");
    }
}
