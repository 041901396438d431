//! A container target's data directory: an overlay volume mounted `noexec`, over the private
//! folder's copy of a cluster or over a snapshot (a clone).
//!
//! Every container target's data directory is an overlay mount the Docker engine makes, mounted
//! `noexec` (and `nosuid`, `nodev`): the kernel refuses to map a file there executable, so a
//! library a backup writes into it cannot be loaded (see `provision/noexec.rs`). Docker's bind
//! mounts take no `noexec`, and its `local` volumes apply it to a new mount only (a bind gets it
//! when read-only, which a data directory cannot be), so the overlay is that new mount: its
//! upper layer the private folder's `data/`, its lower an empty folder.
//! Where the server is never stopped and started again, the overlay is also `volatile`: never
//! synced, so that its removal does not wait for the whole file system's writes (`options`).
//!
//! A clone is a private, writable copy of a snapshot's cluster that costs next to nothing to
//! make and never writes the snapshot. Where the snapshot's file system shares blocks (XFS,
//! btrfs) and the target's private folder is on it, a reflinked copy (block-level copy-on-write);
//! else the overlay's lower layer is the snapshot itself (the clone's writes in the private
//! folder's `upper/`); a plain copy only when neither can.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use testcontainers::bollard::Docker;
use testcontainers::bollard::models::VolumeCreateRequest;

use super::rundir::RunDir;
use crate::provision::docker::{DRILL_LABEL, OWNER_LABEL};
use crate::provision::{CloneFrom, OverlayError, TargetError};
use crate::tree::Ids;

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
    user: Ids,
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

async fn copy(from: PathBuf, to: PathBuf, user: Ids) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || crate::tree::copy(&from, &to, user)).await.map_err(std::io::Error::other)?
}

fn same_device(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

/// The clone's overlay volume: lower the snapshot, upper and work in the private folder (the
/// upper layer's root the data directory's: the server's user's, 0700).
async fn overlay(
    docker: &Docker,
    snapshot: &Path,
    run_dir: &RunDir,
    drill_id: &str,
    user: Ids,
) -> Result<String, OverlayError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let (upper, work) = (run_dir.outer.join("upper"), run_dir.outer.join("work"));
    let folder = |path: &Path| {
        let path = path.to_owned();
        move |source| OverlayError::Folder { path, source }
    };
    for dir in [&upper, &work] {
        std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(folder(dir))?;
    }
    std::os::unix::fs::chown(&upper, Some(user.uid), Some(user.gid)).map_err(folder(&upper))?;
    std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(0o700)).map_err(folder(&upper))?;
    create(docker, drill_id, [snapshot, &upper, &work], false).await
}

/// The data directory's `noexec` volume over the private folder's `data/` (its upper layer,
/// the files as they are), with an empty lower layer: the Docker volume's name. `volatile`: an
/// overlay that is never synced (see [`options`]).
pub(super) async fn noexec_data(
    docker: &Docker,
    run_dir: &RunDir,
    drill_id: &str,
    volatile: bool,
) -> Result<String, OverlayError> {
    use std::os::unix::fs::DirBuilderExt;
    let (lower, work) = (run_dir.outer.join("lower"), run_dir.outer.join("work"));
    for dir in [&lower, &work] {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|source| OverlayError::Folder { path: dir.clone(), source })?;
    }
    create(docker, drill_id, [&lower, &run_dir.data(), &work], volatile).await
}

/// Creates drill `drill_id`'s overlay volume of `[lower, upper, work]`, mounted `noexec`,
/// `nosuid` and `nodev`.
async fn create(
    docker: &Docker,
    drill_id: &str,
    [lower, upper, work]: [&Path; 3],
    volatile: bool,
) -> Result<String, OverlayError> {
    // The mount's options are a comma-separated list: a path holding a comma or colon would
    // be read as more options.
    if let Some(odd) = [lower, upper, work].iter().find(|p| p.to_string_lossy().contains([',', ':', '\\'])) {
        return Err(OverlayError::OddPath { path: odd.to_path_buf() });
    }
    let name = volume_name(drill_id);
    let options = options([lower, upper, work], volatile);
    let request = VolumeCreateRequest {
        name: Some(name.clone()),
        driver: Some("local".into()),
        driver_opts: Some(HashMap::from([
            ("type".into(), "overlay".into()),
            ("device".into(), "overlay".into()),
            ("o".into(), options),
        ])),
        labels: Some(HashMap::from([
            (DRILL_LABEL.into(), drill_id.into()),
            (OWNER_LABEL.into(), crate::provision::owner::owner()),
        ])),
        ..Default::default()
    };
    docker.create_volume(request).await.map_err(|source| OverlayError::Volume { source })?;
    Ok(name)
}

/// The overlay's mount options: its layers, `noexec`, `nosuid` and `nodev`, and `volatile` for a
/// data directory whose server is never stopped and started again: unmounting an overlay syncs
/// its upper file system, all of it, with every other program's unwritten data (seconds on a
/// busy machine, at teardown); a volatile one skips that sync, and everything it wrote is thrown
/// away anyway. A volatile overlay cannot be mounted again (the kernel leaves a mark in its work
/// folder, root's), so a drill that restarts its server never gets one, and neither does a
/// pgdrill that is not root (it could not remove that mark).
fn options([lower, upper, work]: [&Path; 3], volatile: bool) -> String {
    format!(
        "lowerdir={},upperdir={},workdir={},noexec,nosuid,nodev{}",
        lower.display(),
        upper.display(),
        work.display(),
        if volatile { ",volatile" } else { "" }
    )
}

/// Whether a target's data directory is a volatile overlay (see [`options`]): its server is
/// never restarted, and this process is root.
pub(super) fn volatile(restarts: bool) -> bool {
    !restarts && rustix::process::geteuid().is_root()
}

/// The name of drill `drill_id`'s data volume.
fn volume_name(drill_id: &str) -> String {
    let short: String = drill_id.chars().take(12).collect();
    format!("{VOLUME_PREFIX}{short}")
}

const VOLUME_PREFIX: &str = "pgdrill-data-";

/// The start of the drill id a data volume is named by.
pub(super) fn drill_of(volume: &str) -> Option<&str> {
    volume.strip_prefix(VOLUME_PREFIX).filter(|short| !short.is_empty())
}

/// Deletes the files of the overlay's upper layer in the private folder (`data/`, or a clone's
/// `upper/`) while the overlay is still mounted, before the container goes: unmounting an
/// overlay syncs its upper file system, which would write back every page the server left
/// dirty (its throwaway settings never flush them); unlinked first, they are dropped instead.
/// A snapshot under a clone is never touched.
pub(super) async fn discard_writes(run_dir: &RunDir) {
    for upper in [run_dir.data(), run_dir.outer.join("upper")] {
        if upper.is_dir()
            && let Err(e) = crate::tree::remove(&upper).await
        {
            tracing::warn!("cannot empty `{}` before the target goes: {e}", upper.display());
        }
    }
}

/// The data volumes of drills on this machine whose process is gone (whatever removed their
/// containers, or did not: a drill killed outright, a start interrupted before its container
/// was made): their names, removed with their overlays' work folders unless `dry_run`. One a
/// container still uses stays (the engine refuses it).
pub(super) async fn orphan_volumes(docker: &Docker, dry_run: bool) -> Vec<String> {
    use testcontainers::bollard::query_parameters::ListVolumesOptions;
    let filters = HashMap::from([("label".to_owned(), vec![OWNER_LABEL.to_owned()])]);
    let listed = docker.list_volumes(Some(ListVolumesOptions { filters: Some(filters) })).await;
    let volumes = listed.ok().and_then(|l| l.volumes).unwrap_or_default();
    let mut names = Vec::new();
    for volume in volumes {
        let owner = volume.labels.get(OWNER_LABEL).map(String::as_str).unwrap_or_default();
        let Some(drill) = drill_of(&volume.name).filter(|_| crate::provision::owner::orphaned(owner)) else { continue };
        if !dry_run {
            remove(docker, drill, &RunDir::path_for(drill)).await;
        }
        names.push(volume.name.clone());
    }
    names
}

/// Removes drill `drill_id`'s data volume, if it made one (once no container uses it, which
/// unmounts it), and empties the overlay's work folder in `outer`.
pub(super) async fn remove(docker: &Docker, drill_id: &str, outer: &Path) {
    use testcontainers::bollard::errors::Error as DockerError;
    use testcontainers::bollard::query_parameters::RemoveVolumeOptions;
    match docker.remove_volume(&volume_name(drill_id), None::<RemoveVolumeOptions>).await {
        Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => tracing::warn!("cannot remove the data volume `{}`: {e}", volume_name(drill_id)),
    }
    // The kernel's work folder is root's and unreadable: emptied by the unmount, it goes by
    // name even where pgdrill is not root.
    let work = outer.join("work");
    for inner in ["work", "index"] {
        let _ = std::fs::remove_dir(work.join(inner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory whose server is restarted (a tool on its stopped server, a snapshot) must
    /// be mounted again: never volatile; one that is not is, where pgdrill can remove the mark.
    #[test]
    fn only_a_data_directory_never_mounted_again_is_volatile() {
        let (lower, upper, work) = (Path::new("/t/lower"), Path::new("/t/data"), Path::new("/t/work"));
        assert_eq!(
            options([lower, upper, work], false),
            "lowerdir=/t/lower,upperdir=/t/data,workdir=/t/work,noexec,nosuid,nodev"
        );
        assert!(options([lower, upper, work], true).ends_with(",noexec,nosuid,nodev,volatile"));
        assert!(!volatile(true), "a server started again mounts its data again");
        // SAFETY: geteuid has no preconditions and cannot fail.
        assert_eq!(volatile(false), rustix::process::geteuid().is_root(), "root removes the kernel's mark");
    }
}
