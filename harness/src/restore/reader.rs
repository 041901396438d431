//! The restore's reader of a plain dump: a thread that decompresses (and decrypts) it and splits
//! it into the items the restore applies, a few in flight; or, read once with its verification,
//! one that verifies each item before handing it on (see [`OnePass`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::{AtLine, RestoreError};
use crate::dump::{Item, SplitError, Splitter};
use crate::source::decrypt::Key;
use crate::source::onepass::OnePass;
use crate::source::read;

/// How the restore reads the dump: as it is (it verified before), or verifying it as it goes.
pub(super) enum Read<'a> {
    Plain(&'a Path, Option<&'a Key>),
    Verifying(OnePass),
}

/// Starts the thread reading the dump into `tx`; `raw_bytes` counts the backup's bytes read.
pub(super) fn spawn(
    read: Read<'_>,
    tx: mpsc::Sender<Result<Item, RestoreError>>,
    raw_bytes: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    match read {
        Read::Plain(path, key) => spawn_reader((path.to_owned(), key.cloned()), tx, raw_bytes),
        Read::Verifying(one_pass) => spawn_verifying_reader(one_pass, tx, raw_bytes),
    }
}

fn spawn_reader(
    (path, key): (std::path::PathBuf, Option<Key>),
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
