//! `run` and `gate` with `--reports s3://bucket/prefix/`: the reports of each drill written in a
//! local folder and uploaded when they are complete, the scenario's history read from the store
//! before the drill and appended after (`report::publish`). A failed upload is an error that makes
//! the exit code 1, the drill's verdict as it was; the local copy is kept and its path printed.

use std::path::Path;

use super::Exit;
use crate::drill::DrillOutcome;
use crate::report::publish::Remote;
use crate::scenario::Scenario;

/// The store `--reports` names, or `None` for a folder; `Err` (said) when it cannot be used: 2
/// for a URL or configuration that is none, 1 for a store that does not answer (no drill runs).
pub(super) async fn open(reports: &Path) -> Result<Option<Remote>, Exit> {
    let remote = Remote::for_reports(reports).map_err(|e| {
        eprintln!("error: {}", crate::secret::error_text(&e));
        Exit::Usage
    })?;
    let Some(remote) = remote else { return Ok(None) };
    if let Err(e) = remote.probe().await {
        eprintln!("error: {}: no drill runs", crate::secret::error_text(&e));
        return Err(Exit::Fail);
    }
    outln!("reports: to {}, each drill's written in {} first", remote.url(), remote.local_root().display());
    Ok(Some(remote))
}

/// Reads the scenario's history from the store before its drill; `Err` (said) when it cannot be
/// read: the drill would compare itself with nothing, and the backup's kind with none.
pub(super) async fn before(remote: Option<&mut Remote>, loaded: Option<&Scenario>) -> Result<(), Exit> {
    let (Some(remote), Some(scenario)) = (remote, loaded) else { return Ok(()) };
    match remote.before(&scenario.name).await {
        Ok(_) => Ok(()),
        Err(e) => {
            eprintln!(
                "error: {}: the drill of `{}` does not run (it compares itself and its backup's kind with the previous drill's)",
                crate::secret::error_text(&e),
                scenario.name
            );
            Err(Exit::Fail)
        }
    }
}

/// Uploads the drill's reports; says where they went, or why not and where the local copy is.
pub(super) async fn after(remote: Option<&mut Remote>, outcome: &DrillOutcome) -> Exit {
    let (Some(remote), Ok(paths)) = (remote, &outcome.reports) else { return Exit::Pass };
    match remote.publish(&paths.dir, &paths.history, &outcome.record).await {
        Ok(published) => {
            for warning in &published.warnings {
                eprintln!("warning: {warning}");
            }
            outln!(
                "uploaded: {} ({} files; the local copy removed), appended to {}",
                published.folder,
                published.files,
                published.history
            );
            remote.forget(&paths.dir).await;
            Exit::Pass
        }
        Err(e) => {
            eprintln!(
                "error: {} (the drill's verdict stands); its reports are kept at {}",
                crate::secret::error_text(&e),
                paths.dir.display()
            );
            Exit::Fail
        }
    }
}

/// Ends the run: the local folder goes, unless an upload failed.
pub(super) fn finish(remote: Option<Remote>) {
    if let Some(kept) = remote.and_then(Remote::finish) {
        eprintln!("note: the reports that did not reach the store are kept under {}", kept.display());
    }
}
