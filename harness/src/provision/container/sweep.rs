//! Removing a drill's containers: by its id, and those of drills whose process is gone.

use std::collections::HashMap;

use testcontainers::bollard::Docker;
use testcontainers::bollard::errors::Error as DockerError;
use testcontainers::bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};

use super::RunDir;
use crate::provision::TargetError;
use crate::provision::docker::{DRILL_LABEL, OWNER_LABEL};
use crate::provision::owner::orphaned;

/// Removes the containers (targets and apps) of drills on this machine whose process is gone,
/// with their private folders.
pub(super) async fn remove_orphans(docker: &Docker) -> Result<usize, TargetError> {
    let removed = remove_where(docker, OWNER_LABEL.to_owned(), |labels| {
        orphaned(labels.get(OWNER_LABEL).map(String::as_str).unwrap_or_default())
    })
    .await?;
    for drill in removed.iter().filter_map(|labels| labels.get(DRILL_LABEL)) {
        super::layer::remove(docker, drill, &RunDir::path_for(drill)).await;
        RunDir::remove(&RunDir::path_for(drill)).await;
    }
    super::layer::orphan_volumes(docker, false).await;
    Ok(removed.len())
}

/// The containers (targets and apps) of drills on this machine whose process is gone: their
/// names, removed with their private folders unless `dry_run`.
pub(crate) async fn orphans(docker: &Docker, dry_run: bool) -> Result<Vec<String>, TargetError> {
    let filters = HashMap::from([("label".to_owned(), vec![OWNER_LABEL.to_owned()])]);
    let list = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: Some(filters), ..Default::default() }))
        .await
        .map_err(|source| TargetError::Docker { action: "list pgdrill's containers", source })?;
    let mut names = Vec::new();
    for summary in list {
        let labels = summary.labels.unwrap_or_default();
        if !orphaned(labels.get(OWNER_LABEL).map(String::as_str).unwrap_or_default()) {
            continue;
        }
        let name = summary.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_owned());
        if !dry_run && let Some(id) = &summary.id {
            let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            match docker.remove_container(id, Some(options)).await {
                Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
                // Another pgdrill (a drill's own sweep) is removing it: said removed once it is.
                Err(DockerError::DockerResponseServerError { status_code: 409, .. }) => gone(docker, id).await,
                Err(source) => return Err(TargetError::Docker { action: "remove a pgdrill container", source }),
            }
            if let Some(drill) = labels.get(DRILL_LABEL) {
                super::layer::remove(docker, drill, &RunDir::path_for(drill)).await;
                RunDir::remove(&RunDir::path_for(drill)).await;
            }
        }
        names.push(name.unwrap_or_else(|| summary.id.unwrap_or_default()));
    }
    Ok(names)
}

/// Waits (up to 30 s) until container `id`, whose removal another process started, is gone.
async fn gone(docker: &Docker, id: &str) {
    for _ in 0..150 {
        if docker.inspect_container(id, None).await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Removes every container labelled with `drill_id`, and the drill's socket folder; returns how
/// many containers there were.
pub(crate) async fn remove_labelled(docker: &Docker, drill_id: &str) -> Result<usize, TargetError> {
    let removed = remove_where(docker, format!("{DRILL_LABEL}={drill_id}"), |_| true).await?.len();
    super::layer::remove(docker, drill_id, &RunDir::path_for(drill_id)).await;
    RunDir::remove(&RunDir::path_for(drill_id)).await;
    Ok(removed)
}

/// Removes the containers matching the `label` filter (`key` or `key=value`) whose labels
/// `doomed` picks; returns the labels of those it removed.
async fn remove_where(
    docker: &Docker,
    label: String,
    doomed: impl Fn(&HashMap<String, String>) -> bool,
) -> Result<Vec<HashMap<String, String>>, TargetError> {
    let filters = HashMap::from([("label".to_owned(), vec![label])]);
    let list = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: Some(filters), ..Default::default() }))
        .await
        .map_err(|source| TargetError::Docker { action: "list pgdrill's containers", source })?;
    let mut removed = Vec::new();
    for summary in list {
        let labels = summary.labels.unwrap_or_default();
        if let (true, Some(id)) = (doomed(&labels), summary.id) {
            let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
            match docker.remove_container(&id, Some(options)).await {
                Ok(()) => removed.push(labels),
                // Already gone, or being removed by testcontainers' own drop.
                Err(DockerError::DockerResponseServerError { status_code: 404 | 409, .. }) => {}
                Err(source) => return Err(TargetError::Docker { action: "remove a pgdrill container", source }),
            }
        }
    }
    Ok(removed)
}
