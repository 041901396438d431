//! What must be undone after a drill: the target's own handle, which removes it (or keeps it,
//! `--keep`).

use super::owner::OWNER_FILE;
use super::{TargetError, clean, container, docker, kept, local, pod, server};

/// What must be undone after a drill.
pub(crate) enum Teardown {
    Container(Box<container::Running>),
    Server(Box<server::Running>),
    Local(Box<local::Running>),
    Pod(Box<pod::Running>),
}

impl Teardown {
    /// Keeps the target running after the drill instead of removing it (`--keep`), and records
    /// how to reach it in a file only its user can read. On an error, nothing is recorded and the
    /// target is still this handle's to remove with [`Teardown::run`].
    pub(crate) async fn keep(&mut self, request: &kept::Request<'_>) -> Result<kept::Kept, TargetError> {
        let (record, services, summary) = match self {
            Teardown::Container(running) => running.keep(request).await?,
            Teardown::Server(running) => running.keep(request)?,
            Teardown::Local(_) => {
                return Err(TargetError::Keep {
                    message: "a local target's server runs in bubblewrap as pgdrill's own child and ends with it (keep a container target instead)".into(),
                });
            }
            Teardown::Pod(_) => {
                return Err(TargetError::Keep {
                    message: "a pod target's server ends with its pod (keep a container target instead)".into(),
                });
            }
        };
        match kept::register(&record, &services, summary) {
            Ok(kept) => {
                // Recorded: from now on the kept marker, not this process, speaks for the folder.
                if let Some(dir) = &record.run_dir {
                    let _ = std::fs::remove_file(dir.join(OWNER_FILE));
                }
                Ok(kept)
            }
            Err(e) => {
                let message = crate::error::error_chain(&e);
                // Kept, but not recorded: nobody could reach it.
                if let Err(also) = clean::remove_record(&record, docker::docker().ok().as_ref()).await {
                    let also = crate::secret::redact_url_passwords(&crate::error::error_chain(&also));
                    tracing::warn!("cannot remove the target that could not be recorded: {also}");
                }
                Err(TargetError::Keep { message })
            }
        }
    }

    /// Removes what the drill created; returns a line for the reports.
    pub(crate) async fn run(mut self) -> Result<String, TargetError> {
        match &mut self {
            Teardown::Container(running) => {
                let removed = running.remove().await?;
                Ok(format!("removed {removed} container{}", if removed == 1 { "" } else { "s" }))
            }
            Teardown::Server(running) => running.remove().await,
            Teardown::Local(running) => running.remove().await,
            Teardown::Pod(running) => running.remove().await,
        }
    }
}
