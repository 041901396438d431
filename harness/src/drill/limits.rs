//! What keeps a drill from hanging or filling the disk: each phase runs against its deadline
//! (`[source] fetch_timeout` ... `[app] timeout`), against the RTO until the database is
//! restored (past it, the restore cannot end in time: the drill stops, and the RTO is missed),
//! and, once the target is there, against its disk limit (the watchdog).

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{PhaseError, PhaseResult};
use crate::deadline::{self, Deadline};
use crate::disk::{DiskError, Watchdog};
use crate::dump::Format;
use crate::objectives::span;
use crate::outcome::Phase;
use crate::provision::Target;
use crate::scenario::Deadlines;
use crate::units::human_size;

/// The RTO passed before the database was restored.
#[derive(Debug, thiserror::Error)]
#[error(
    "the RTO of {rto} passed during the {phase} phase: the database could no longer be restored in time, so the drill stopped"
)]
pub(super) struct RtoPassed {
    rto: String,
    phase: Phase,
}

/// Provision passed its deadline while it started a server on the backup's own data.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server was starting on the backup's own data, and that data can be what held it (a recovery that is long or never ends), so this is a finding, not the machine's"
)]
pub(super) struct HeldOnBackupData {
    #[source]
    passed: deadline::DeadlinePassed,
}

pub(super) struct Limits {
    deadlines: Deadlines,
    rto: Option<Duration>,
    started: Instant,
    /// Set once the database is restored: the RTO no longer stops anything.
    recovered: AtomicBool,
    /// Set when a dump's restore reads it for its verification too: the verify phase then lasts
    /// as long as that read.
    read_once: AtomicBool,
    /// Set when provision starts a server on the backup's own data (a physical backup, a
    /// snapshot's clone): past its deadline, the backup may be the cause.
    on_backup_data: AtomicBool,
    watchdog: Mutex<Option<std::sync::Arc<Watchdog>>>,
}

/// How a guarded phase was stopped.
pub(super) enum Stop {
    /// The RTO passed (the caller records that it did).
    Rto(RtoPassed),
    Other(PhaseError),
}

impl Limits {
    pub(super) fn new(deadlines: Deadlines, rto: Option<Duration>, started: Instant) -> Limits {
        let (recovered, read_once) = (AtomicBool::new(false), AtomicBool::new(false));
        let on_backup_data = AtomicBool::new(false);
        Limits { deadlines, rto, started, recovered, read_once, on_backup_data, watchdog: Mutex::new(None) }
    }

    /// Provision starts the server on the backup's own data.
    pub(super) fn on_backup_data(&self) {
        self.on_backup_data.store(true, Ordering::Relaxed);
    }

    /// The dump's restore reads it for its verification too: the verify phase's deadline is
    /// then its own and the restore's together.
    pub(super) fn read_once(&self) {
        self.read_once.store(true, Ordering::Relaxed);
    }

    /// The database is restored: from now on the RTO stops nothing.
    pub(super) fn recovered(&self) {
        self.recovered.store(true, Ordering::Relaxed);
    }

    /// Starts measuring the target's data against its disk limit, for the rest of the drill.
    pub(super) fn watch(&self, target: &Target) {
        if let (Some(disk), Ok(mut slot)) = (&target.disk, self.watchdog.lock()) {
            *slot = Some(std::sync::Arc::new(Watchdog::start(disk.dir.clone(), disk.limit.clone())));
        }
    }

    fn deadline(&self, phase: Phase) -> Option<Deadline> {
        let d = &self.deadlines;
        match phase {
            Phase::Fetch => Some(d.fetch),
            Phase::Verify if self.read_once.load(Ordering::Relaxed) => Some(Deadline::new(
                d.verify.limit + d.restore.limit,
                "[source] verify_timeout and [restore] timeout together",
            )),
            Phase::Verify => Some(d.verify),
            Phase::Provision => Some(d.provision),
            Phase::Preflight => Some(d.preflight),
            Phase::Restore => Some(d.restore),
            Phase::Checks => Some(d.checks),
            Phase::App => Some(d.app),
            // Migrations have their own (`[migrate] timeout`); resolving and teardown always end.
            _ => None,
        }
    }

    /// Runs `work` until it ends, its deadline passes, the RTO passes (before the database is
    /// restored) or the target's data passes its disk limit. Teardown is never stopped.
    pub(super) async fn guard<T>(
        &self,
        phase: Phase,
        work: impl Future<Output = PhaseResult<T>>,
    ) -> Result<(T, String), Stop> {
        if phase == Phase::Teardown {
            return work.await.map_err(Stop::Other);
        }
        let deadline = self.deadline(phase);
        let rto_left = match self.rto {
            Some(rto) if !self.recovered.load(Ordering::Relaxed) => {
                Some((rto, rto.saturating_sub(self.started.elapsed())))
            }
            _ => None,
        };
        let watchdog = self.watchdog.lock().ok().and_then(|w| w.clone());
        let bounded = async {
            match deadline {
                // Past fetch's or provision's deadline, the backup was not reached or the target
                // not started in time: that says nothing about the backup, unless the server was
                // starting on the backup's own data.
                Some(deadline) => deadline::within(phase, deadline, work).await.unwrap_or_else(|passed| {
                    Err(match phase {
                        Phase::Provision if self.on_backup_data.load(Ordering::Relaxed) => {
                            PhaseError::error(HeldOnBackupData { passed })
                        }
                        Phase::Fetch | Phase::Provision => PhaseError::could_not_run(passed),
                        _ => PhaseError::error(passed),
                    })
                }),
                None => work.await,
            }
        };
        let rto_passed = async {
            match rto_left {
                Some((_, left)) => tokio::time::sleep(left).await,
                None => std::future::pending().await,
            }
        };
        let disk_full = async {
            match &watchdog {
                Some(w) => w.passed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            result = bounded => {
                if result.is_ok()
                    && let Some(passed) = match &watchdog {
                        Some(w) => w.check_now().await,
                        None => None,
                    }
                {
                    return Err(Stop::Other(PhaseError::error(passed)));
                }
                result.map_err(Stop::Other)
            }
            error = disk_full => Err(Stop::Other(PhaseError::error(error))),
            () = rto_passed => {
                let rto = rto_left.map(|(rto, _)| span(rto)).unwrap_or_default();
                Err(Stop::Rto(RtoPassed { rto, phase }))
            }
        }
    }

    /// Refuses, before the restore, a plain dump that clearly cannot fit: its text is more than
    /// twice the target's disk limit (a table's rows rarely take less room restored than as
    /// COPY text; an archive's compressed size says too little to judge, so it is left to the
    /// watchdog).
    pub(super) fn fits(target: &Target, format: Format, dump_bytes: u64) -> Result<(), DiskError> {
        let Some(disk) = &target.disk else { return Ok(()) };
        if format == Format::Plain && dump_bytes / 2 > disk.limit.bytes {
            return Err(DiskError::WontFit {
                limit: disk.limit.shown.clone(),
                what: format!("the dump holds {} of SQL and data", human_size(dump_bytes)),
            });
        }
        Ok(())
    }
}
