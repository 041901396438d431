//! The image's own PostgreSQL tools without a container: the few programs a physical backup's
//! verify runs (`pg_controldata`, `pg_verifybackup` and the `pg_waldump` and `/bin/sh` it
//! starts) and the libraries they load, copied out of the image once into this machine's cache
//! (`$TMPDIR/pgdrill-tools-<uid>/<image id>-<major>`, where the server's user, which runs them,
//! can reach them), owned by root and read-only. A toolbox of them runs each
//! tool in a bubblewrap sandbox whose only folders are these and the data directory: the
//! image's binaries of the backup's major, as a container of it would run them, without the
//! Docker engine's container start (0.6-0.9 s of both cores on a 2-core machine, beside the
//! unpack it slowed by about as much: BENCHMARKS.md, issue 43).

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{ContainerCreateBody, HostConfig};
use testcontainers::bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions, WaitContainerOptions};

use super::docker::OWNER_LABEL;
use super::image::ImageInfo;
use super::owner::owner;

/// The tools copied, from the image's `/usr/lib/postgresql/<major>/bin`.
pub(crate) const TOOLS: [&str; 3] = ["pg_controldata", "pg_verifybackup", "pg_waldump"];

/// How long copying the tools out of an image may take.
const COPY_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the image's tools could not be copied out (the drill then runs them in a container).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ToolsError {
    #[error("cannot prepare `{path}`: {source}")]
    Folder { path: PathBuf, source: std::io::Error },
    #[error("the Docker engine could not {action}: {source}")]
    Docker { action: &'static str, source: testcontainers::bollard::errors::Error },
    #[error("copying the tools out of the image ended with exit code {code}")]
    Copy { code: i64 },
    #[error("copying the tools out of the image took more than {} s", COPY_LIMIT.as_secs())]
    Slow,
}

/// Where the copy of the image's tools for `major` is, copied out of it first when it is not
/// yet: a folder holding `usr`, `lib`, ... as the image has them (the libraries' links
/// followed), never writable by the tools.
pub(crate) async fn root(docker: &Docker, image: &str, info: &ImageInfo, major: u32) -> Result<PathBuf, ToolsError> {
    let short = info.id.trim_start_matches("sha256:").chars().take(16).collect::<String>();
    let cache = cache(&std::env::temp_dir())?;
    let done = cache.join(format!("{short}-{major}"));
    if complete(&done, major) {
        return Ok(done);
    }
    let copying = cache.join(format!(".{short}-{major}-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    std::fs::DirBuilder::new().mode(0o700).create(&copying).map_err(folder(&copying))?;
    let copied = copy(docker, image, major, &copying).await;
    let sealed = copied.and_then(|()| seal(&copying).map_err(folder(&copying)));
    if let Err(e) = sealed {
        let _ = tokio::fs::remove_dir_all(&copying).await;
        return Err(e);
    }
    // Another drill may have finished first: its copy is as good as this one.
    if std::fs::rename(&copying, &done).is_err() {
        let _ = tokio::fs::remove_dir_all(&copying).await;
    }
    Ok(done)
}

fn folder(path: &Path) -> impl FnOnce(std::io::Error) -> ToolsError {
    let path = path.to_owned();
    move |source| ToolsError::Folder { path, source }
}

/// `$TMPDIR/pgdrill-tools-<uid>`: made by this user, or refused when anyone else could have
/// made it or could write into it (a copy planted there would be what the drills run).
fn cache(base: &Path) -> Result<PathBuf, ToolsError> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_err(folder(Path::new("/proc/self")))?.uid();
    let cache = base.join(format!("pgdrill-tools-{uid}"));
    match std::fs::DirBuilder::new().mode(0o755).create(&cache) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(folder(&cache)(e)),
    }
    let meta = std::fs::symlink_metadata(&cache).map_err(folder(&cache))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        let why = "not a folder of this user's that only it may write into";
        return Err(folder(&cache)(std::io::Error::other(why)));
    }
    Ok(cache)
}

/// Whether `root` holds every tool of `major` (a copy is renamed into place only once whole).
fn complete(root: &Path, major: u32) -> bool {
    let bin = root.join(format!("usr/lib/postgresql/{major}/bin"));
    TOOLS.iter().all(|tool| bin.join(tool).is_file()) && root.join("bin/sh").is_file()
}

/// The tools and, by the image's own `ldd`, every library they load, copied by a container of
/// the image (no network, no capabilities, a read-only root) into `into`.
async fn copy(docker: &Docker, image: &str, major: u32, into: &Path) -> Result<(), ToolsError> {
    let script = format!(
        "set -eu; cd /pgdrill/tools; b=/usr/lib/postgresql/{major}/bin; \
         files=\"$b/{} /bin/sh\"; \
         libs=$(ldd $files | awk '$2 == \"=>\" && $3 ~ /^\\// {{print $3}} $1 ~ /^\\// && $1 !~ /:$/ {{print $1}}' | sort -u); \
         cp -L --parents $files $libs .",
        TOOLS.join(" $b/")
    );
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), script]),
        cmd: Some(vec![]),
        user: Some("0:0".into()),
        network_disabled: Some(true),
        labels: Some(HashMap::from([(OWNER_LABEL.to_owned(), owner())])),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:/pgdrill/tools", into.display())]),
            network_mode: Some("none".into()),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
        .map_err(|source| ToolsError::Docker { action: "create a container to copy the tools out", source })?;
    // Copying a few files takes a second; one that hangs leaves the tools to a container.
    let ran = tokio::time::timeout(COPY_LIMIT, run(docker, &created.id)).await.unwrap_or(Err(ToolsError::Slow));
    let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
    let _ = docker.remove_container(&created.id, Some(options)).await;
    match ran? {
        0 => Ok(()),
        code => Err(ToolsError::Copy { code }),
    }
}

/// Starts the container `id` and waits for its exit code.
async fn run(docker: &Docker, id: &str) -> Result<i64, ToolsError> {
    use futures_util::StreamExt;
    docker
        .start_container(id, None::<testcontainers::bollard::query_parameters::StartContainerOptions>)
        .await
        .map_err(|source| ToolsError::Docker { action: "start the container copying the tools out", source })?;
    let mut waited = docker.wait_container(id, Some(WaitContainerOptions { condition: "not-running".into() }));
    match waited.next().await {
        Some(Ok(response)) => Ok(response.status_code),
        // A non-zero exit comes back as an error carrying its code.
        Some(Err(testcontainers::bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(source)) => Err(ToolsError::Docker { action: "wait for the container copying the tools out", source }),
        None => Ok(-1),
    }
}

/// The copy made root's and read-only: nothing a tool runs can change what later drills run.
fn seal(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir(root)? {
        let meta = std::fs::symlink_metadata(&entry)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        std::os::unix::fs::lchown(&entry, Some(0), Some(0))?;
        let mode = if meta.is_dir() || meta.permissions().mode() & 0o111 != 0 { 0o555 } else { 0o444 };
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Every path under `root` (itself included), children before their folder is sealed.
fn walkdir(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        if std::fs::symlink_metadata(&path)?.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
        found.push(path);
    }
    found.reverse();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// The copies live in a folder of this user's that nobody else may write into: one someone
    /// else could have made or filled (open to all, or a link to elsewhere) is refused.
    #[test]
    fn a_cache_folder_others_could_write_into_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let made = cache(base.path()).unwrap();
        let meta = std::fs::symlink_metadata(&made).unwrap();
        assert!(meta.is_dir() && meta.mode() & 0o022 == 0, "{:o}", meta.mode());
        assert_eq!(cache(base.path()).unwrap(), made, "found again");

        std::fs::set_permissions(&made, std::fs::Permissions::from_mode(0o777)).unwrap();
        let open = cache(base.path()).unwrap_err().to_string();
        assert!(open.contains("only it may write into") && open.contains(&made.display().to_string()), "{open}");

        std::fs::remove_dir(&made).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), &made).unwrap();
        let link = cache(base.path()).unwrap_err().to_string();
        assert!(link.contains("only it may write into"), "{link}");
    }

    /// An image without the tools of that major (here: of none it has) is not copied, nothing of
    /// the attempt is left, and the toolbox falls back to a container.
    #[tokio::test]
    async fn an_image_without_the_majors_tools_leaves_no_copy() {
        let docker = super::super::docker::docker().unwrap();
        let spec = crate::provision::spec::ContainerSpec {
            image: None,
            version: None,
            startup_timeout: std::time::Duration::from_secs(60),
            settings: Default::default(),
            memory: None,
            processes: None,
            disk: None,
            share: None,
        };
        let image = super::super::image::choose(&spec, Some(17), true).unwrap();
        let info = super::super::image::ensure(&docker, &image, || {}).await.unwrap();
        let error = root(&docker, &image, &info, 99).await.unwrap_err().to_string();
        assert!(error.starts_with("copying the tools out of the image ended with exit code"), "{error}");
        let cache = cache(&std::env::temp_dir()).unwrap();
        let left: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("-99"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// Sealed, the copy is root's and nothing in it may be written (links left as they are).
    #[test]
    fn a_sealed_copy_is_roots_and_read_only() {
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("tool"), "#!").unwrap();
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(root.path().join("usr/lib.so"), "").unwrap();
        std::fs::set_permissions(root.path().join("usr/lib.so"), std::fs::Permissions::from_mode(0o666)).unwrap();
        std::os::unix::fs::symlink("tool", bin.join("link")).unwrap();
        seal(root.path()).unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&bin.join("tool")), 0o555);
        assert_eq!(mode(&root.path().join("usr/lib.so")), 0o444);
        assert_eq!(mode(&bin), 0o555);
        assert_eq!(mode(root.path()), 0o555);
        assert!(std::fs::symlink_metadata(bin.join("link")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::metadata(bin.join("tool")).unwrap().uid(), 0);
        // The temporary folder may be removed again.
        for p in [root.path().to_owned(), root.path().join("usr"), bin] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}
