//! One read of a dump file for its verify and its restore (see [`crate::source::onepass`]):
//! the verify phase reads the dump's head beside provision (a plain dump's statements before
//! its rows, an archive's table of contents), preflight works from it, and the restore's read
//! verifies the rest. The verify phase ends with that read's verdict, and the restore phase
//! waits for it: a restore of a dump that did not verify ends in FAIL, and no check runs on it.
//! A directory-format archive, and one the target's pg_restore reads itself (unless the scenario
//! asks `verify = "one-pass"`), is verified whole first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::oneshot;

use super::steps::{ReadOnce, StopOnDrop, digest_of};
use super::{Cleanup, Drill, PhaseError, PhaseResult, RestoredDatabase};
use crate::outcome::Phase;
use crate::provision::spec::TargetKind;
use crate::source::Backup;
use crate::source::onepass::{self, Head, OnePass};
use crate::source::verify::{Verified, VerifyError};

/// What the verify phase hands the restore once it can start: a plain dump's head (the restore's
/// read verifies the rest), or a backup verified whole.
enum Ready {
    Head(Verified),
    Whole(Verified),
}

/// The verify phase's side of a dump read once: it hands the restore what it may start from,
/// waits for the verdict of the restore's read, and sends the restore its trust.
struct Verifying {
    stop: Arc<AtomicBool>,
    ready: oneshot::Sender<Ready>,
    verdict: oneshot::Receiver<Result<Verified, VerifyError>>,
    trust: oneshot::Sender<Verified>,
}

/// The restore's side: what verify handed it, the read it makes ([`ReadOnce`]).
struct Restoring {
    stop: Arc<AtomicBool>,
    ready: oneshot::Receiver<Ready>,
    verdict: oneshot::Sender<Result<Verified, VerifyError>>,
    trust: oneshot::Receiver<Verified>,
}

/// The two sides of one read's handshake, sharing one stop flag: set when either side cannot go
/// on (the target did not start, the verify phase was stopped), it ends the read.
fn handshake() -> (Verifying, Restoring) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = oneshot::channel();
    let (verdict_tx, verdict_rx) = oneshot::channel();
    let (trust_tx, trust_rx) = oneshot::channel();
    (
        Verifying { stop: stop.clone(), ready: ready_tx, verdict: verdict_rx, trust: trust_tx },
        Restoring { stop, ready: ready_rx, verdict: verdict_tx, trust: trust_rx },
    )
}

impl Drill<'_> {
    /// Whether a dump is verified by its restore's read: unless the scenario or the command asks
    /// for verify first, for a backup file with at most one key restored into a sandbox (a
    /// shared server runs no SQL of a dump that has not verified whole). `pgdrill init` reads it
    /// whole first: its preflight creates every role the dump names, the last `GRANT`'s too.
    pub(super) fn one_pass(&self, backup: &Backup) -> bool {
        !self.verify_first
            && !self.scenario.restore.create_missing_roles
            && backup.path.is_file()
            && backup.keys.len() <= 1
            && !matches!(self.scenario.target.kind, TargetKind::Server(_))
    }

    /// Whether an archive file is read once too: an encrypted one (verified first, it would be
    /// decrypted three times, and restored on one job from pg_restore's stdin), or any with
    /// `verify = "one-pass"`. Another is verified first: the target's `pg_restore -j` restores it
    /// faster than its SQL goes through pgdrill's restore (BENCHMARKS.md), and verify reads
    /// the file without decompressing it.
    fn archive_once(&self, backup: &Backup) -> bool {
        self.scenario.source.one_pass || !backup.keys.is_empty()
    }

    /// Verify (its head beside provision), preflight, and the restore that verifies the rest.
    pub(super) async fn restore_one_pass(&self, cleanup: &mut Cleanup, backup: &Backup) -> Option<RestoredDatabase> {
        self.limits.read_once();
        let (verifying, restoring) = handshake();
        let verify = self.phase(Phase::Verify, self.verify_one_pass(backup, verifying));
        let rest = async {
            let target = self.phase(Phase::Provision, self.provision(cleanup, backup, None, None)).await;
            let Some(target) = target else {
                restoring.stop.store(true, Ordering::Relaxed);
                return None;
            };
            // A backup that failed to verify has its phase say why.
            let Restoring { stop, ready, verdict, trust } = restoring;
            match ready.await.ok()? {
                Ready::Whole(verified) => self.restore_into(target, backup, verified, None).await,
                Ready::Head(head) => {
                    let expected_sha256 = self.scenario.source.expected_sha256.clone();
                    let read = OnePass { backup: backup.clone(), expected_sha256, stop, verdict };
                    self.restore_into(target, backup, head, Some(ReadOnce { read, trust })).await
                }
            }
        };
        let (_, restored) = tokio::join!(verify, rest);
        restored
    }

    /// The verify phase of a dump read once: its head, then the verdict of the restore's read
    /// (or, when no restore read it, a read of its own). An archive is read whole here.
    async fn verify_one_pass(&self, backup: &Backup, verifying: Verifying) -> PhaseResult<Verified> {
        let Verifying { stop, ready, verdict, trust } = verifying;
        let _stop = StopOnDrop(stop.clone());
        let (to_read, stopped) = (backup.clone(), stop.clone());
        let head =
            tokio::task::spawn_blocking(move || onepass::head(&to_read, &stopped)).await.map_err(PhaseError::error)?;
        let head = match head {
            Ok(Head::Plain(head)) => *head,
            Ok(Head::Archive(head)) if self.archive_once(backup) => *head,
            Ok(Head::Archive(_) | Head::Whole) => {
                let (verified, summary) = self.verify(backup, stop).await?;
                let _ = ready.send(Ready::Whole(verified.clone()));
                return Ok((verified, format!("{summary} (an archive)")));
            }
            Err(error) => return Err(self.judge_verified(backup, Err(error)).await.expect_err("an error")),
        };
        // What kind of backup it is shows in its head: a change the scenario did not intend
        // fails before anything runs.
        let mut head = head;
        head.info.kind = Some(crate::outcome::BackupKind::of_dump(&head));
        if let Err(changed) = self.judge_kind(head.info.kind.as_ref().expect("just set")) {
            head.info.sha256 = digest_of(backup).await;
            self.events.emit(crate::outcome::Event::Backup(head.info));
            return Err(changed);
        }
        let _ = ready.send(Ready::Head(head));
        let verified = match verdict.await {
            Ok(result) => self.judge_verified(backup, result).await?,
            Err(_) if stop.load(Ordering::Relaxed) => {
                return Err(PhaseError::Stopped("the target could not be provisioned".into()));
            }
            // No read of the restore's gave a verdict (preflight failed, or its reader died): the
            // backup still has one, but no restore is trusted on it.
            Err(_) => {
                let (verified, summary) = self.verify(backup, stop).await?;
                return Ok((verified, format!("{summary} (no restore read it)")));
            }
        };
        let kind = self.judge_kind(verified.info.kind.as_ref().expect("judged"))?;
        // Only the restore's own read, verified, makes its restore trusted.
        let _ = trust.send(verified.clone());
        let summary = format!("{}{kind}; read once, by its restore", verified.summary_line());
        Ok((verified, summary))
    }
}
