//! A custom or tar archive file read once for its verification and its restore (see
//! [`crate::source::onepass`]): pgdrill reads the file, verifying its structure and digest, into
//! the target's `pg_restore -f -`, and the SQL pg_restore writes takes a plain dump's way to the
//! server (the splitter, the refusals, the pool of connections). The file is read once, and its
//! data decompressed once; a statement a dump must not run is refused before it reaches the
//! server. The verdict is the read's and pg_restore's: the archive verified only when pgdrill
//! read it whole, with the digest expected, and pg_restore read every data block to its end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::RestoreError;
use super::plain::{self, Progress, Roles};
use super::reader::{Read, Stream};
use crate::dump::DumpSummary;
use crate::outcome::RestoreStats;
use crate::provision::Target;
use crate::provision::tools::ToolOutput;
use crate::secret::Redactor;
use crate::source::onepass::{self, OnePass, Unverified};
use crate::source::verify::{Verified, VerifyError};

/// Restores the archive `one_pass` reads into `database`, on `jobs` connections, and sends the
/// read's verdict. A restore that failed before pg_restore's SQL ended sends none: the verify
/// phase then reads the archive on its own.
pub(crate) async fn restore(
    target: &Target,
    database: &str,
    one_pass: OnePass,
    jobs: usize,
    roles: Roles,
    redactor: &Redactor,
    progress: Progress<'_>,
) -> Result<RestoreStats, RestoreError> {
    let OnePass { backup, expected_sha256, stop, verdict } = one_pass;
    let (input_tx, input) = mpsc::channel::<Bytes>(16);
    let (sql_tx, sql) = mpsc::channel::<Bytes>(16);
    let raw_bytes = Arc::new(AtomicU64::new(0));
    // Set when the restore failed: the read stops, and the verify phase reads on its own (the
    // drill's `stop` is for a drill that cannot go on).
    let quit = Arc::new(AtomicBool::new(false));
    let read = {
        let (raw, quit) = (raw_bytes.clone(), quit.clone());
        tokio::task::spawn_blocking(move || {
            let progress = |done: u64| raw.store(done, Ordering::Relaxed);
            let stopped = || stop.load(Ordering::Relaxed) || quit.load(Ordering::Relaxed);
            let mut forward = |piece: Vec<u8>| input_tx.blocking_send(Bytes::from(piece)).is_ok();
            onepass::read_archive(&backup, expected_sha256.as_deref(), (&progress, &stopped), &mut forward)
        })
    };
    let args = ["-f".to_owned(), "-".to_owned()];
    let pg_restore = target.tools.run_fed("pg_restore", &args, Some(input), Some(sql_tx), redactor);
    let (summary_tx, summary) = oneshot::channel();
    let stream = Stream { sql, raw_bytes, summary: summary_tx };
    let restored = async {
        let restored = plain::run(target, database, Read::Stream(stream), redactor, progress, roles, jobs).await;
        if restored.is_err() {
            quit.store(true, Ordering::Relaxed);
        }
        restored
    };
    let (ran, restored) = tokio::join!(pg_restore, restored);
    let read = read.await.map_err(RestoreError::reread)?;
    let ran = ran.map_err(RestoreError::reread)?;
    let (outcome, judged) = judge(ran, restored, read, summary.await.ok());
    if let Some(judged) = judged {
        let _ = verdict.send(judged);
    }
    outcome
}

/// The restore's outcome, and the verdict on the archive when the read and pg_restore's SQL
/// both ended.
fn judge(
    ran: ToolOutput,
    restored: Result<RestoreStats, RestoreError>,
    read: Result<Verified, VerifyError>,
    summary: Option<DumpSummary>,
) -> (Result<RestoreStats, RestoreError>, Option<Result<Verified, VerifyError>>) {
    let unverified = || RestoreError::reread(Unverified);
    // A statement failed, or was refused, before pg_restore's SQL ended (a cut-short SQL is
    // pg_restore's failure, judged below).
    if let Err(error) = restored.as_ref()
        && !matches!(error, RestoreError::CutShort)
    {
        let verdict = match read {
            Err(VerifyError::Stopped) | Ok(_) => None,
            Err(failed) => Some(Err(failed)),
        };
        return (restored, verdict);
    }
    let mut verified = match read {
        Ok(verified) => verified,
        Err(VerifyError::Stopped) => return (restored.and(Err(unverified())), None),
        Err(failed) => return (Err(unverified()), Some(Err(failed))),
    };
    if !ran.success() {
        let (status, stderr) = (ran.status, ran.stderr);
        let verdict = VerifyError::Unreadable { status, stderr: stderr.clone() };
        return (Err(RestoreError::Archive { status, stderr }), Some(Err(verdict)));
    }
    let (stats, Some(mut whole)) = (restored, summary) else {
        return (Err(RestoreError::CutShort), None);
    };
    let Ok(stats) = stats else { return (stats, None) };
    // The header (read by pgdrill) names the versions, and the table of contents the kinds.
    let comments = &verified.summary.comments;
    whole.comments.source_version = comments.source_version.clone();
    whole.comments.dumped_by = comments.dumped_by.clone();
    if !verified.summary.entry_kinds.is_empty() {
        whole.entry_kinds = std::mem::take(&mut verified.summary.entry_kinds);
    }
    verified.summary = whole;
    (Ok(stats), Some(Ok(verified)))
}
