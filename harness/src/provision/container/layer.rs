//! A clone's data directory: a private, writable copy of a snapshot's cluster that costs next
//! to nothing to make and never writes the snapshot. Where the snapshot's file system shares
//! blocks (XFS, btrfs) and the target's private folder is on it, a reflinked copy (block-level
//! copy-on-write); else an overlay mount the Docker engine makes (the snapshot its read-only
//! lower layer, the clone's writes in the private folder); a plain copy only when neither can.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use testcontainers::bollard::Docker;
use testcontainers::bollard::models::VolumeCreateRequest;

use super::rundir::RunDir;
use crate::provision::docker::DRILL_LABEL;
use crate::provision::{CloneFrom, TargetError};

/// How a clone was made, for the reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layer {
    /// Block-level copy-on-write: the clone shares the snapshot's blocks until it writes them.
    Reflink,
    /// An overlay mount, this Docker volume: a file is copied up whole when the server first
    /// opens it for writing (PostgreSQL opens a relation's files so even to read them).
    Overlay { volume: String },
    /// A plain copy of every file.
    Copy { why: String },
}

impl Layer {
    /// What the reports say of it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Layer::Reflink => "reflinks: the clone shares the snapshot's blocks and takes disk only for the blocks it writes".into(),
            Layer::Overlay { .. } => "an overlay mount: the snapshot is its read-only lower layer; a file is copied into the clone's own layer when the server first opens it for writing (PostgreSQL opens the files of each table it reads so), so the clone takes disk for the files it touches".into(),
            Layer::Copy { why } => format!("a plain copy of the snapshot ({why})"),
        }
    }

    /// The Docker volume to mount as the data directory, for an overlay.
    pub(crate) fn volume(&self) -> Option<&str> {
        match self {
            Layer::Overlay { volume } => Some(volume),
            _ => None,
        }
    }
}

/// Makes the clone's data in `run_dir` (its `data/`, or the overlay's `upper/` and `work/`
/// with a volume over them), owned by `user`.
pub(super) async fn make(
    docker: &Docker,
    from: &CloneFrom,
    run_dir: &RunDir,
    drill_id: &str,
    user: (u32, u32),
) -> Result<Layer, TargetError> {
    let fail = TargetError::io("cannot make the clone");
    let (snapshot, data) = (from.data.clone(), run_dir.data());
    let shares = tokio::task::spawn_blocking({
        let (snapshot, outer) = (snapshot.clone(), run_dir.outer.clone());
        move || same_device(&snapshot, &outer) && crate::tree::reflinks(&outer)
    })
    .await
    .unwrap_or(false);
    if shares {
        copy(snapshot, data, user).await.map_err(fail)?;
        return Ok(Layer::Reflink);
    }
    match overlay(docker, &snapshot, run_dir, drill_id, user).await {
        Ok(volume) => Ok(Layer::Overlay { volume }),
        Err(e) => {
            let why = crate::error::error_chain(&e);
            tracing::warn!("no overlay for the clone ({why}): copying the snapshot");
            copy(snapshot, data, user).await.map_err(fail)?;
            Ok(Layer::Copy { why: format!("the Docker engine could not mount an overlay: {why}") })
        }
    }
}

async fn copy(from: PathBuf, to: PathBuf, user: (u32, u32)) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || crate::tree::copy(&from, &to, user)).await.map_err(std::io::Error::other)?
}

fn same_device(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

/// The overlay's volume: lower the snapshot, upper and work in the private folder (the upper
/// layer's root the data directory's: the server's user's, 0700).
async fn overlay(
    docker: &Docker,
    snapshot: &Path,
    run_dir: &RunDir,
    drill_id: &str,
    user: (u32, u32),
) -> Result<String, OverlayError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let (upper, work) = (run_dir.outer.join("upper"), run_dir.outer.join("work"));
    let paths = [snapshot, upper.as_path(), work.as_path()];
    // The mount's options are a comma-separated list: a path holding a comma or colon would
    // be read as more options.
    if let Some(odd) = paths.iter().find(|p| p.to_string_lossy().contains([',', ':', '\\'])) {
        return Err(OverlayError::OddPath { path: odd.to_path_buf() });
    }
    let folder = |path: &Path| {
        let path = path.to_owned();
        move |source| OverlayError::Folder { path, source }
    };
    for dir in [&upper, &work] {
        std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(folder(dir))?;
    }
    std::os::unix::fs::chown(&upper, Some(user.0), Some(user.1)).map_err(folder(&upper))?;
    std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(0o700)).map_err(folder(&upper))?;
    let name = volume_name(drill_id);
    let options = format!("lowerdir={},upperdir={},workdir={}", snapshot.display(), upper.display(), work.display());
    let request = VolumeCreateRequest {
        name: Some(name.clone()),
        driver: Some("local".into()),
        driver_opts: Some(HashMap::from([
            ("type".into(), "overlay".into()),
            ("device".into(), "overlay".into()),
            ("o".into(), options),
        ])),
        labels: Some(HashMap::from([(DRILL_LABEL.into(), drill_id.into())])),
        ..Default::default()
    };
    docker.create_volume(request).await.map_err(|source| OverlayError::Volume { source })?;
    Ok(name)
}

/// Why the Docker engine could not mount an overlay for a clone (it is copied instead).
#[derive(Debug, thiserror::Error)]
enum OverlayError {
    /// A path the mount's options would read as more options.
    #[error("`{}` holds a comma, colon or backslash", path.display())]
    OddPath { path: PathBuf },
    /// The overlay's upper or work folder could not be made ready.
    #[error("cannot make `{}` ready", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The engine did not create the overlay's volume.
    #[error("cannot create the overlay's volume")]
    Volume {
        #[source]
        source: testcontainers::bollard::errors::Error,
    },
}

/// The name of drill `drill_id`'s clone volume.
fn volume_name(drill_id: &str) -> String {
    let short: String = drill_id.chars().take(12).collect();
    format!("pgdrill-clone-{short}")
}

/// Removes drill `drill_id`'s clone volume, if it made one (once no container uses it, which
/// unmounts it), and empties the overlay's work folder in `outer`.
pub(super) async fn remove(docker: &Docker, drill_id: &str, outer: &Path) {
    use testcontainers::bollard::errors::Error as DockerError;
    use testcontainers::bollard::query_parameters::RemoveVolumeOptions;
    match docker.remove_volume(&volume_name(drill_id), None::<RemoveVolumeOptions>).await {
        Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => tracing::warn!("cannot remove the clone's volume `{}`: {e}", volume_name(drill_id)),
    }
    // The kernel's work folder is root's and unreadable: emptied by the unmount, it goes by
    // name even where pgdrill is not root.
    let work = outer.join("work");
    for inner in ["work", "index"] {
        let _ = std::fs::remove_dir(work.join(inner));
    }
}
