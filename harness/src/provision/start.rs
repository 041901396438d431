//! Starting the scenario's target, whichever its kind, and what comes with it: the pins of
//! pgdrill's own sessions, the image a snapshot is of, and the sweep of what an interrupted
//! drill left.

use super::spec::{TargetKind, TargetSpec};
use super::{ProvisionContext, Target, TargetError, Teardown, container, docker, image, local, pod, server};

/// Starts the scenario's target, and reads what pgdrill's sessions on it can pin.
pub(crate) async fn start(spec: &TargetSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Teardown), TargetError> {
    let (mut target, teardown) = match &spec.kind {
        TargetKind::Container(container_spec) => {
            let (target, running) = container::start(container_spec, ctx).await?;
            (target, Teardown::Container(Box::new(running)))
        }
        TargetKind::Server(_) if ctx.physical.is_some() => {
            return Err(TargetError::Tool {
                message: "a physical backup recovers on a container or local target only (its data directory is the backup's, a server's is its own)".into(),
            });
        }
        TargetKind::Server(server_spec) => {
            let (target, running) = server::provision(server_spec, ctx).await?;
            (target, Teardown::Server(Box::new(running)))
        }
        TargetKind::Local(local_spec) => {
            let (target, running) = local::provision(local_spec, ctx).await?;
            (target, Teardown::Local(Box::new(running)))
        }
        TargetKind::Pod(pod_spec) => {
            let (target, running) = pod::provision(pod_spec, ctx).await?;
            (target, Teardown::Pod(Box::new(running)))
        }
    };
    match read_pins(&target).await {
        Ok(pins) => {
            target.pins = pins;
            // Known from the start, a clone's too (whose preflight does not run).
            target.info.server_version_num = pins.version_num;
        }
        Err(e) => {
            if let Err(also) = teardown.run().await {
                tracing::warn!("cannot remove the target: {}", crate::error::error_chain(&also));
            }
            return Err(e);
        }
    }
    target.info.session = crate::session::shown(&crate::session::pins(target.pins, &target.user));
    Ok((target, teardown))
}

/// The id of the image a container target of `spec` runs for a backup of `major` (built
/// first if missing): a snapshot is of that image only. `None` for the other targets, which
/// have no snapshots.
pub(crate) async fn image_id(
    spec: &TargetSpec,
    major: Option<u32>,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Option<String>, TargetError> {
    let TargetKind::Container(container_spec) = &spec.kind else { return Ok(None) };
    if let Some(host) = docker::remote_engine_now() {
        return Err(TargetError::RemoteEngine { host });
    }
    let docker = docker::docker()?;
    let name = image::choose(container_spec, major, false)?;
    let info = image::ensure(&docker, &name, || {
        progress(&format!("building image {name} from Debian packages (first run only)"))
    })
    .await?;
    Ok(Some(info.id))
}

/// What pgdrill's sessions on `target` can pin: read before the restore, on a connection that
/// pins what any role may.
pub(crate) async fn read_pins(target: &Target) -> Result<crate::session::Pins, TargetError> {
    use sqlx::Connection;
    let database = target.maintenance_db.clone();
    let fail = |source: sqlx::Error| TargetError::Database { database: database.clone(), source };
    let mut conn =
        sqlx::PgConnection::connect_with(&target.connect_options(&target.maintenance_db)).await.map_err(fail)?;
    let (version_num, superuser): (i32, bool) =
        sqlx::query_as(crate::session::READ_SQL).fetch_one(&mut conn).await.map_err(fail)?;
    conn.close().await.ok();
    Ok(crate::session::Pins { version_num: u32::try_from(version_num).unwrap_or(0), superuser })
}

/// Removes anything a drill may have left behind, found by its id (used when a drill is
/// interrupted before provisioning handed over its teardown).
pub(crate) async fn sweep(drill_id: &str) -> Result<usize, TargetError> {
    if docker::engine_elsewhere() {
        return Ok(0); // no target was started there
    }
    let docker = docker::docker()?;
    container::remove_labelled(&docker, drill_id).await
}
