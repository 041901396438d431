//! A target's private folder on this machine: its data directory and socket folder.

use crate::tree::Ids;
use std::path::{Path, PathBuf};

/// The target's private folder on this machine, `<tmp>/pgdrill-<drill>-target` (0700, this
/// process's user): `data/`, the cluster (a copy of the image's), and `socket/`, where the server
/// makes its socket. Only this user (and root) can pass the folder; the container sees the two
/// inside it and nothing else of this machine.
pub(super) struct RunDir {
    pub(super) outer: PathBuf,
}

impl RunDir {
    pub(super) fn path_for(drill_id: &str) -> PathBuf {
        // Short: a socket's whole path must fit in 107 bytes.
        let short: String = drill_id.chars().take(12).collect();
        std::env::temp_dir().join(format!("pgdrill-{short}-target"))
    }

    /// Creates the folder with a copy of `template` (an initialised data directory) owned by
    /// `owner`.
    pub(super) fn create(drill_id: &str, template: &Path, owner: Ids) -> std::io::Result<RunDir> {
        let dir = Self::empty(drill_id)?;
        crate::tree::copy(template, &dir.data(), owner)?;
        Ok(dir)
    }

    /// The folder with an empty socket folder, marked with its owner; the data directory is
    /// the caller's to make.
    pub(super) fn empty(drill_id: &str) -> std::io::Result<RunDir> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let outer = Self::path_for(drill_id);
        let socket_path = outer.join("socket/.s.PGSQL.5432");
        if socket_path.as_os_str().len() > 107 {
            return Err(std::io::Error::other(format!(
                "`{}` is longer than a Unix socket's path may be (hint: point TMPDIR at a shorter folder)",
                socket_path.display()
            )));
        }
        std::fs::DirBuilder::new().mode(0o700).create(&outer)?;
        crate::provision::owner::mark_owner(&outer)?;
        let dir = RunDir { outer };
        std::fs::create_dir(dir.socket())?;
        // The server makes its socket here, then the folder is sealed (see `seal`).
        std::fs::set_permissions(dir.socket(), std::fs::Permissions::from_mode(0o777))?;
        Ok(dir)
    }

    /// Creates the folder around a data directory staged from a base backup (moved in), made
    /// a standby of nothing ([`crate::provision::standby_of_nothing`]).
    #[expect(clippy::disallowed_methods, reason = "it runs on the blocking pool (spawn_blocking)")]
    pub(super) fn create_physical(
        drill_id: &str,
        physical: &crate::provision::PhysicalData,
        owner: Ids,
    ) -> std::io::Result<RunDir> {
        use std::os::unix::fs::PermissionsExt;
        let dir = Self::empty(drill_id)?;
        let data = dir.data();
        if std::fs::rename(&physical.data, &data).is_err() {
            // Another file system: copied instead.
            crate::tree::copy(&physical.data, &data, owner)?;
            std::fs::remove_dir_all(&physical.data)?;
        }
        crate::provision::standby_of_nothing(&data, owner)?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
        Ok(dir)
    }

    pub(super) fn data(&self) -> PathBuf {
        self.outer.join("data")
    }

    pub(super) fn socket(&self) -> PathBuf {
        self.outer.join("socket")
    }

    /// Once the socket exists, its folder is made read-only: the server's user cannot write
    /// there any more (when it is not this process's user, it cannot undo that either).
    pub(super) fn seal(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.socket(), std::fs::Permissions::from_mode(0o555))
    }

    /// Removes a target's private folder, unless it was kept (`pgdrill clean` removes that one).
    pub(super) async fn remove(path: &Path) {
        if path.exists()
            && !path.join(crate::provision::kept::MARKER).exists()
            && let Err(e) = crate::tree::remove(path).await
        {
            tracing::warn!("cannot remove `{}`: {e}", path.display());
        }
    }
}
