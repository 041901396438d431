//! The readers a fingerprint is taken with: sessions of pgdrill's own, each in the same snapshot
//! (one exported by the session that describes the tables, or the one `--snapshot` names) with
//! [`super::SETTINGS`] pinned, streaming the rows' text with COPY while a thread of each hashes them
//! and sorts the digests ([`super::sorter`]): the server only reads rows out, and every core
//! works, whatever the size of the table.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::mpsc;

use super::copy::{FeedError, Stream};
use super::error::{FingerprintError, ReadError, sql_error};
use super::plan;
use super::sorter::{self, Runs};
use super::take::{Described, Span, in_settings};
use super::{RangeFingerprint, RowText};
use crate::pg::describe_sql_error;

/// Sort memory per reader by default: what its buffer of digests holds before it is written out.
pub(crate) const MEMORY: usize = 16 * 1024 * 1024;

/// What a reader's thread hands on: bytes of a COPY, in batches of about this many.
const BATCH: usize = 256 * 1024;

/// The sessions a fingerprint reads rows with, kept open from table to table.
pub(crate) struct Readers {
    options: PgConnectOptions,
    /// The snapshot each session reads in.
    snapshot: String,
    /// Sessions at most.
    count: usize,
    /// Sort memory per session.
    memory: usize,
    version_num: u32,
    idle: Vec<PgConnection>,
    /// How the last table was read.
    last: Took,
}

/// How a table was read: in how many reads (parts of it, or key ranges), on how many sessions,
/// and how many runs of digests went to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Took {
    pub reads: usize,
    pub sessions: usize,
    pub spilled: usize,
}

impl std::fmt::Display for Took {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |n: usize| if n == 1 { "" } else { "s" };
        write!(f, "read in {} part{} on {} session{}", self.reads, s(self.reads), self.sessions, s(self.sessions))?;
        if self.spilled > 0 {
            write!(f, ", {} run{} of digests sorted on disk", self.spilled, s(self.spilled))?;
        }
        Ok(())
    }
}

impl Readers {
    /// Readers of `leader`'s snapshot: `snapshot` when the transaction imported one, else one it
    /// exports (the transaction is repeatable read, and has read nothing yet but the catalog).
    /// `count` sessions at most (the machine's cores when 0), each sorting in `memory` bytes.
    pub(crate) async fn new(
        leader: &mut PgConnection,
        options: PgConnectOptions,
        snapshot: Option<String>,
        count: usize,
        memory: usize,
    ) -> Result<Readers, FingerprintError> {
        let snapshot = match snapshot {
            Some(id) => id,
            None => sqlx::query_scalar("SELECT pg_catalog.pg_export_snapshot()")
                .fetch_one(&mut *leader)
                .await
                .map_err(sql_error("cannot export the snapshot the readers share"))?,
        };
        let version_num: i32 =
            sqlx::query_scalar("SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4")
                .fetch_one(&mut *leader)
                .await
                .map_err(sql_error("cannot read the server's version"))?;
        let count = if count == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { count };
        Ok(Readers {
            options,
            snapshot,
            count,
            memory,
            version_num: version_num as u32,
            idle: Vec::new(),
            last: Took::default(),
        })
    }

    /// The fingerprint of each of `spans` of `described`, in order. `leader` reads the table's
    /// size; the rows are read by the readers.
    pub(crate) async fn fingerprint(
        &mut self,
        leader: &mut PgConnection,
        described: &Described,
        spans: &[Span],
        row_text: RowText,
    ) -> Result<Vec<RangeFingerprint>, FingerprintError> {
        let layout = match spans.len() {
            0 => return Ok(Vec::new()),
            _ => plan::layout(leader, described, self.version_num).await?,
        };
        let reads = plan::reads(described, spans, row_text, layout, self.count);
        let sessions = reads.len().min(self.count);
        self.last = Took { reads: reads.len(), sessions, spilled: 0 };
        while self.idle.len() < sessions {
            let session = self.session().await?;
            self.idle.push(session);
        }
        let started = std::time::Instant::now();
        let queue = Arc::new(Mutex::new(reads.into_iter().collect::<VecDeque<_>>()));
        let mut tasks = tokio::task::JoinSet::new();
        for conn in self.idle.drain(..sessions) {
            tasks.spawn(read(conn, queue.clone(), row_text, self.memory));
        }
        let what = || format!("cannot fingerprint `{}`", described.table);
        let mut runs = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (conn, found) =
                done.map_err(|e| FingerprintError::Read { what: what(), source: ReadError::Stopped(e) })?;
            match found {
                Ok(found) => runs.push(found),
                Err(Failure::Sql(e)) => {
                    return Err(FingerprintError::Sql { what: what(), message: describe_sql_error(&e) });
                }
                Err(Failure::Read(source)) => return Err(FingerprintError::Read { what: what(), source }),
            }
            self.idle.extend(conn);
        }
        self.last.spilled = runs.iter().map(Runs::spilled).sum();
        let read = started.elapsed();
        let count = spans.len();
        let sorted = tokio::task::spawn_blocking(move || sorter::finish(runs, count))
            .await
            .map_err(|e| FingerprintError::Read { what: what(), source: ReadError::Stopped(e) })?
            .map_err(|e| FingerprintError::Read { what: what(), source: ReadError::Sort(e) })?;
        tracing::debug!("{}: {} in {read:?}, merged in {:?}", described.table, self.last, started.elapsed() - read);
        Ok(spans
            .iter()
            .zip(sorted)
            .map(|((after, upto), (rows, digest))| RangeFingerprint {
                after: after.clone(),
                upto: upto.clone(),
                rows,
                sha256: hex::encode(digest),
            })
            .collect())
    }

    /// How the last table was read.
    pub(crate) fn last(&self) -> Took {
        self.last
    }

    /// A session of the readers: pgdrill's own, in their snapshot, its settings pinned.
    async fn session(&self) -> Result<PgConnection, FingerprintError> {
        let mut conn = PgConnection::connect_with(&self.options)
            .await
            .map_err(sql_error("cannot open a session to read the rows in"))?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(sql_error("cannot begin a reader's transaction"))?;
        sqlx::query(&format!("SET TRANSACTION SNAPSHOT {}", crate::pg::quote_literal(&self.snapshot)))
            .execute(&mut conn)
            .await
            .map_err(sql_error("cannot read in the fingerprints' snapshot (is its transaction still open?)"))?;
        in_settings(&mut conn).await?;
        // A part is read by its blocks, whatever the database's planner settings say.
        sqlx::query("SELECT pg_catalog.set_config('enable_tidscan', 'on', true)")
            .execute(&mut conn)
            .await
            .map_err(sql_error("cannot set `enable_tidscan`"))?;
        Ok(conn)
    }

    /// Ends the readers' sessions.
    pub(crate) async fn close(self) {
        for conn in self.idle {
            let _ = conn.close().await;
        }
    }
}

/// What a reader met: the server's error, or its stream's.
enum Failure {
    Sql(sqlx::Error),
    Read(ReadError),
}

/// A reader: takes reads from `queue` until none is left, streaming each to a thread that hashes
/// its rows into runs of `memory` bytes. Its session back (unless it failed), and its runs.
async fn read(
    mut conn: PgConnection,
    queue: Arc<Mutex<VecDeque<String>>>,
    row_text: RowText,
    memory: usize,
) -> (Option<PgConnection>, Result<Runs, Failure>) {
    let (tx, rx) = mpsc::channel::<Message>(8);
    let hasher = tokio::task::spawn_blocking(move || hash(rx, row_text, memory));
    let streamed = async {
        loop {
            let Some(sql) = queue.lock().ok().and_then(|mut q| q.pop_front()) else { return Ok(()) };
            let mut stream = conn.copy_out_raw(&sql).await?;
            let mut batch = Vec::new();
            let mut bytes = 0;
            while let Some(chunk) = stream.try_next().await? {
                bytes += chunk.len();
                batch.push(chunk);
                if bytes >= BATCH {
                    bytes = 0;
                    if tx.send(Message::Chunks(std::mem::take(&mut batch))).await.is_err() {
                        return Ok(()); // the hasher failed: it says why
                    }
                }
            }
            if tx.send(Message::Chunks(batch)).await.is_err() || tx.send(Message::End).await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    drop(tx);
    let hashed = hasher.await;
    match (streamed, hashed) {
        (Err(e), _) => (None, Err(Failure::Sql(e))),
        (Ok(()), Err(e)) => (None, Err(Failure::Read(ReadError::Stopped(e)))),
        (Ok(()), Ok(Err(e))) => (None, Err(Failure::Read(e))),
        (Ok(()), Ok(Ok(runs))) => (Some(conn), Ok(runs)),
    }
}

/// What a reader's task hands its thread.
enum Message {
    /// The next bytes of the current COPY.
    Chunks(Vec<Bytes>),
    /// The current COPY ended: the next bytes are another's.
    End,
}

/// A reader's thread: each row's text hashed into the runs, COPY by COPY.
fn hash(mut rx: mpsc::Receiver<Message>, row_text: RowText, memory: usize) -> Result<Runs, ReadError> {
    let mut runs = Runs::new(memory);
    let mut rows = Stream::new(row_text);
    let mut keep = |span: u32, text: &[u8]| runs.push(sorter::item(span, &Sha256::digest(text).into()));
    while let Some(message) = rx.blocking_recv() {
        match message {
            Message::Chunks(chunks) => {
                for chunk in chunks {
                    rows.feed(&chunk, &mut keep)?;
                }
            }
            Message::End => {
                rows.end().map_err(FeedError::from)?;
                rows = Stream::new(row_text);
            }
        }
    }
    Ok(runs)
}
