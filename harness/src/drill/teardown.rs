//! Teardown: the target and the app are removed (or the target kept, `--keep`), whatever
//! happened before.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Cleanup, Drill, PhaseError};
use crate::error::error_chain;
use crate::outcome::{Event, Phase};
use crate::provision::{self, Teardown};
use crate::scenario::TargetKind;

impl Drill<'_> {
    /// Removes the target and the app; with `keep`, keeps the target running instead (what it
    /// cannot keep it still removes) and returns how to reach it. A teardown that fails says
    /// nothing about the backup: the drill could not run.
    pub(super) async fn teardown(&self, cleanup: Cleanup, keep: bool) -> Option<provision::kept::Kept> {
        let mut kept = None;
        self.phase(Phase::Teardown, async {
            let mut lines = Vec::new();
            // What was being removed beside the drill is gone before the drill ends (a failed
            // removal leaves its container to the sweep below).
            for removal in cleanup.removals {
                let _ = removal.await;
            }
            tracing::debug!("teardown: what was removed beside the drill is gone");
            if let Some(mut app) = cleanup.app {
                lines.push(app.stop().await.map_err(PhaseError::could_not_run)?);
            }
            let cut_off = cleanup.teardown.is_none();
            if keep && cut_off {
                lines.push("nothing to keep: no target was started".into());
            }
            if let Some(mut handle) = cleanup.teardown {
                let database = cleanup.database.unwrap_or_else(|| self.scenario.target.database.clone());
                match self.keep(&mut handle, &database, keep).await {
                    Some(Ok(target)) => {
                        lines.push(target.summary.clone());
                        self.events.emit(Event::Kept(target.info.clone()));
                        kept = Some(target);
                    }
                    not_kept => {
                        if let Some(Err(e)) = not_kept {
                            lines.push(format!("{}; removed it instead", error_chain(&*e)));
                        }
                        lines.push(handle.run().await.map_err(PhaseError::could_not_run)?);
                        tracing::debug!("teardown: the target removed");
                    }
                }
            }
            // Anything else labelled with this drill: a start cut off before it handed its
            // container over may still be creating one, so look twice.
            let container = matches!(self.scenario.target.kind, TargetKind::Container(_));
            let mut swept = 0;
            if container {
                swept += provision::sweep(&self.drill_id).await.map_err(PhaseError::could_not_run)?;
            }
            if cut_off && container {
                tokio::time::sleep(Duration::from_secs(2)).await;
                swept += provision::sweep(&self.drill_id).await.map_err(PhaseError::could_not_run)?;
            }
            tracing::debug!("teardown: swept");
            if swept > 0 {
                lines.push(format!(
                    "removed {swept} container{} found by the drill's label",
                    if swept == 1 { "" } else { "s" }
                ));
            }
            if lines.is_empty() {
                lines.push("nothing to remove".into());
            }
            Ok(((), lines.join("; ")))
        })
        .await;
        kept
    }

    /// Keeps the target, when asked to, as `<scenario>-<first 8 of the drill id>`.
    async fn keep(
        &self,
        handle: &mut Teardown,
        database: &str,
        keep: bool,
    ) -> Option<Result<provision::kept::Kept, Box<dyn std::error::Error + Send + Sync>>> {
        if !keep {
            return None;
        }
        let short: String = self.drill_id.chars().take(8).collect();
        let name = format!("{}-{short}", self.scenario.name);
        let dir = match provision::kept::state_dir() {
            Ok(dir) => dir,
            Err(e) => return Some(Err(Box::new(e))),
        };
        let record = provision::kept::record_path(&dir, &name);
        let kept_at =
            OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let request = provision::kept::Request {
            name: &name,
            scenario: &self.scenario.name,
            drill_id: &self.drill_id,
            database,
            record: &record,
            kept_at: &kept_at,
            redactor: &self.redactor,
        };
        Some(handle.keep(&request).await.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>))
    }
}
