//! What runs on the restored (or recovered) database: the pending migrations, then the checks
//! (or a baseline's capture, or `init`'s reading), then the application.

use std::sync::atomic::Ordering;

use super::{Cleanup, Drill, PhaseError, PhaseResult, Restored, RestoredDatabase};
use crate::app;
use crate::check::{self, CheckResult};
use crate::migrate;
use crate::outcome::{Event, Phase};

impl Drill<'_> {
    /// Migrations, checks and the application on the restored or recovered database.
    pub(super) async fn after_restore(&self, cleanup: &mut Cleanup, restored: &RestoredDatabase) {
        let RestoredDatabase { target, database, dump } = restored;
        let database = database.to_owned();
        let capturing = self.baseline_out.is_some() || self.inspect.is_some();
        match (&self.scenario.migrate, capturing) {
            (Some(spec), false) => {
                // Checks on a half-migrated database prove nothing: a failed migration stops here.
                let migrate = async {
                    let (info, summary) =
                        migrate::run(target, &database, spec, &self.redactor).await.map_err(PhaseError::error)?;
                    self.events.emit(Event::Migrate(info));
                    Ok(((), summary))
                };
                if self.phase(Phase::Migrate, migrate).await.is_none() {
                    return;
                }
            }
            (None, _) => self.not_configured(Phase::Migrate, "no [migrate]: the checks run on the backup as restored"),
            (Some(_), true) => self.not_configured(Phase::Migrate, "not run while capturing a baseline"),
        }
        match (&self.baseline_out, &self.inspect) {
            (Some(out), _) => {
                let source = format!("drill of scenario `{}` ({})", self.scenario.name, self.scenario.file.display());
                let capture = crate::baseline::capture_restored(target, &database, &source, out);
                self.phase(Phase::Checks, async { Ok(((), capture.await.map_err(PhaseError::error)?)) }).await
            }
            (None, Some(inspect)) => {
                let roles_created =
                    self.events.record().and_then(|r| r.preflight).map(|p| p.roles_created).unwrap_or_default();
                let restored = Restored { target, database: &database, dump, redactor: &self.redactor, roles_created };
                self.phase(Phase::Checks, async {
                    Ok(((), inspect.inspect(restored).await.map_err(PhaseError::Failed)?))
                })
                .await
            }
            (None, None) => self.phase(Phase::Checks, self.checks(restored)).await,
        };
        // The application runs whatever the checks found: an auditor wants both answers.
        match (&self.scenario.app, capturing) {
            (Some(app), false) => {
                let progress = |message: &str| self.progress(Phase::App, message, None, None);
                let on_result = |result: CheckResult| {
                    self.events.emit(Event::Check(result));
                    self.api_done.fetch_add(1, Ordering::Relaxed);
                };
                let run = app::run(app::phase::Run {
                    target,
                    database: &database,
                    spec: app,
                    drill_id: &self.drill_id,
                    redactor: &self.redactor,
                    slot: &mut cleanup.app,
                    progress: &progress,
                    on_result: &on_result,
                });
                self.phase(Phase::App, async {
                    let (info, result) = run.await;
                    if let Some(info) = info {
                        self.events.emit(Event::App(info));
                    }
                    Ok(((), result.map_err(PhaseError::error)?))
                })
                .await;
            }
            (None, _) => self.not_configured(Phase::App, "the scenario boots no application ([app])"),
            (Some(_), true) => self.not_configured(Phase::App, "not run while capturing a baseline"),
        }
    }

    /// The scenario's checks on the restored database, side by side, each reported as it ends.
    pub(super) async fn checks(&self, restored: &RestoredDatabase) -> PhaseResult<()> {
        let RestoredDatabase { target, database, dump } = restored;
        let on_result = |mut result: CheckResult| {
            result.message = self.redactor.redact(&result.message);
            result.actual = self.redactor.redact(&result.actual);
            result.expected = self.redactor.redact(&result.expected);
            result.evidence = self.redactor.redact(&result.evidence);
            self.events.emit(Event::Check(result));
        };
        let on_done = || {
            self.checks_done.fetch_add(1, Ordering::Relaxed);
        };
        let inputs = check::Inputs {
            target,
            database,
            dump,
            redactor: &self.redactor,
            trails: &self.trails,
            login: &self.scenario.login,
        };
        let summary =
            check::run_all(&self.scenario.checks, inputs, &on_result, &on_done).await.map_err(PhaseError::error)?;
        Ok(((), summary))
    }
}
