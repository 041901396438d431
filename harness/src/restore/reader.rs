//! The restore's reader of a plain dump: a thread that decompresses (and decrypts) it and splits
//! it into the items the restore applies, a few in flight; or, read once with its verification,
//! one that verifies each item before handing it on (see [`OnePass`]); or one that splits the
//! SQL pg_restore writes of an archive, refusing what a dump must not do as verify would.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{AtLine, RestoreError};
use crate::dump::{DumpSummary, Item, Scanner, SplitError, Splitter};
use crate::provision::tools::ChannelReader;
use crate::source::decrypt::Key;
use crate::source::onepass::OnePass;
use crate::source::read;

/// How the restore reads the dump: as it is (it verified before), verifying it as it goes, or
/// the SQL pg_restore writes of an archive.
pub(super) enum Read<'a> {
    Plain(&'a Path, Option<&'a Key>),
    Verifying(OnePass),
    Stream(Stream),
}

/// The SQL a program writes (pg_restore's of an archive), and what its reader reports.
pub(super) struct Stream {
    pub sql: mpsc::Receiver<Bytes>,
    /// The archive's raw bytes read so far (by whoever feeds the program).
    pub raw_bytes: Arc<AtomicU64>,
    /// What the SQL held, once it was read to its end.
    pub summary: oneshot::Sender<DumpSummary>,
}

/// Starts the thread reading the dump into `tx`; `raw_bytes` counts the backup's bytes read.
pub(super) fn spawn(
    read: Read<'_>,
    tx: mpsc::Sender<Result<Item, RestoreError>>,
    raw_bytes: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    match read {
        Read::Plain(path, key) => spawn_reader(path.to_owned(), key.cloned(), tx, raw_bytes),
        Read::Verifying(one_pass) => spawn_verifying_reader(one_pass, tx, raw_bytes),
        Read::Stream(stream) => spawn_stream_reader(stream, tx, raw_bytes),
    }
}

fn spawn_reader(
    path: std::path::PathBuf,
    key: Option<Key>,
    tx: mpsc::Sender<Result<Item, RestoreError>>,
    raw_bytes: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let mut opened = match read::open_keyed(&path, false, key.as_ref()) {
            Ok(o) => o,
            Err(e) => {
                let _ = tx.blocking_send(Err(RestoreError::reread(e)));
                return;
            }
        };
        let counter = opened.raw_bytes.clone();
        let mut splitter = Splitter::new(&mut opened.reader);
        loop {
            let next = splitter.next_item();
            raw_bytes.store(counter.load(Ordering::Relaxed), Ordering::Relaxed);
            let message = match next {
                Ok(Some(item)) => Ok(item),
                Ok(None) => return,
                Err(SplitError::Read { line, source }) => Err(RestoreError::reread(AtLine { line, source })),
                Err(other) => Err(RestoreError::reread(other)),
            };
            let stop = message.is_err();
            if tx.blocking_send(message).is_err() || stop {
                return;
            }
        }
    })
}

/// The reader of a dump that verifies it as it reads (see [`OnePass`]): each item that passed
/// goes to the restore while it takes them, and a failed verification stops it.
fn spawn_verifying_reader(
    one_pass: OnePass,
    tx: mpsc::Sender<Result<Item, RestoreError>>,
    raw_bytes: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let mut taken = true;
        let mut sink = |item: Item| taken = taken && tx.blocking_send(Ok(item)).is_ok();
        let progress = |done: u64| raw_bytes.store(done, Ordering::Relaxed);
        if let Err(unverified) = one_pass.read(&progress, &mut sink) {
            let _ = tx.blocking_send(Err(RestoreError::reread(unverified)));
        }
    })
}

/// The reader of the SQL pg_restore writes of an archive: each item a plain dump's verify would
/// refuse stops the restore before it runs (pg_restore's SQL is the archive's, and as untrusted);
/// the others go to the restore, noted for the summary sent once the SQL ended.
fn spawn_stream_reader(
    Stream { sql, raw_bytes: read, summary }: Stream,
    tx: mpsc::Sender<Result<Item, RestoreError>>,
    raw_bytes: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let mut splitter = Splitter::new(std::io::BufReader::with_capacity(read::BUFFER, ChannelReader::new(sql)));
        let mut scanner = Scanner::new();
        loop {
            let next = splitter.next_item();
            raw_bytes.store(read.load(Ordering::Relaxed), Ordering::Relaxed);
            let message = match next {
                Ok(Some(item)) => match super::archive::refusal(&item) {
                    Some(refused) => Err(refused),
                    None => {
                        scanner.note(&item);
                        Ok(item)
                    }
                },
                Ok(None) => {
                    let (lines, bytes) = (splitter.lines_read(), splitter.bytes_read());
                    let _ = summary.send(scanner.finish(splitter.comments(), lines, bytes));
                    return;
                }
                Err(SplitError::UnterminatedCopy { .. }) => Err(RestoreError::CutShort),
                Err(other) => Err(RestoreError::reread(other)),
            };
            let stop = message.is_err();
            if tx.blocking_send(message).is_err() || stop {
                return;
            }
        }
    })
}
