//! The target image: present locally, or built from Debian's packages when it is the project's
//! own tag (no registry is needed; see `ci/image/build`); and its initialised cluster, copied
//! out once per image into this machine's cache, so that each target starts from a copy of it
//! instead of running initdb (or having Docker copy it into a volume, which costs more than the
//! rest of the start).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use testcontainers::bollard::Docker;
use testcontainers::bollard::errors::Error as DockerError;

use super::TargetError;
use super::docker::OWNER_LABEL;
use super::error::TemplateError;
use super::owner::owner;
use super::spec::{
    ContainerSpec, DUMP_MAJOR_FLOOR, IMAGE_MAJORS, default_image, image_majors_in_words, project_image,
    project_image_major,
};
use crate::tree::Ids;

const BUILD_SCRIPT: &str = include_str!("../../../ci/image/build");
/// The sandbox's client authentication: the socket only (see the file).
pub(crate) const PG_HBA: &str = include_str!("../../../ci/image/pg_hba.conf");

/// What pgdrill reads from an image: its id and labels (the offline build records its package
/// versions, data directory and the user it belongs to there).
pub(crate) struct ImageInfo {
    pub id: String,
    pub labels: HashMap<String, String>,
    /// The user the initialised data directory belongs to (`org.pgdrill.uid`, `org.pgdrill.gid`).
    pub owner: Option<Ids>,
    /// The initialised data directory (`org.pgdrill.pgdata`).
    pub pgdata: Option<String>,
}

/// The image a container target runs: the one the scenario names; else the project's image of
/// the major it pins; else of the backup's major, or of the oldest major pgdrill builds when
/// the backup is older (a dump restores into a newer server; that is how PostgreSQL upgrades)
/// or says nothing. A backup newer than every image fails here, before anything starts.
pub(crate) fn choose(spec: &ContainerSpec, backup_major: Option<u32>, physical: bool) -> Result<String, TargetError> {
    if let Some(image) = &spec.image {
        return Ok(image.clone());
    }
    let major = match (spec.version, backup_major) {
        (Some(pinned), _) => pinned,
        (None, None) => DUMP_MAJOR_FLOOR,
        // A dump of an older major: the oldest image with pgvector and AGE.
        (None, Some(major)) if !physical && major <= DUMP_MAJOR_FLOOR => DUMP_MAJOR_FLOOR,
        (None, Some(major)) if IMAGE_MAJORS.contains(&major) => major,
        (None, Some(major)) => {
            return Err(TargetError::NoImageForMajor { major, built: image_majors_in_words() });
        }
    };
    Ok(project_image(major))
}

/// Makes sure `image` exists locally, building the project's own image when it is missing.
/// `building` is told before a build starts (it takes under a minute).
pub(crate) async fn ensure(docker: &Docker, image: &str, building: impl FnOnce()) -> Result<ImageInfo, TargetError> {
    match inspect(docker, image).await? {
        Some(labels) => Ok(labels),
        None if project_image_major(image).is_some() => {
            building();
            build(docker, image).await?;
            inspect(docker, image).await?.ok_or_else(|| TargetError::ImageBuild {
                image: image.to_owned(),
                output: "the build finished but the image is still missing".into(),
            })
        }
        None => Err(TargetError::ImageMissing { image: image.to_owned() }),
    }
}

async fn inspect(docker: &Docker, image: &str) -> Result<Option<ImageInfo>, TargetError> {
    match docker.inspect_image(image).await {
        Ok(info) => {
            let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
            let id = |key: &str| labels.get(key).and_then(|v| v.parse::<u32>().ok());
            Ok(Some(ImageInfo {
                id: info.id.unwrap_or_default(),
                owner: id("org.pgdrill.uid").zip(id("org.pgdrill.gid")).map(|(uid, gid)| Ids { uid, gid }),
                pgdata: labels.get("org.pgdrill.pgdata").cloned(),
                labels,
            }))
        }
        Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
        Err(source) => Err(TargetError::Docker { action: "inspect the image", source }),
    }
}

/// Runs the offline builder (embedded in the binary, so an installed `pgdrill` can build too).
/// A lock file keeps concurrent drills from building twice: one that waited for it finds the
/// image another drill built meanwhile, and builds nothing.
async fn build(docker: &Docker, image: &str) -> Result<(), TargetError> {
    let image = image.to_owned();
    let lock_path = std::env::temp_dir().join("pgdrill-image-build.lock");
    let work = std::env::temp_dir().join(format!("pgdrill-image-{}", std::process::id()));
    let fail = |action| {
        let image = image.clone();
        move |source| TargetError::ImageBuildIo { image, action, source }
    };
    let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::File::create(&lock_path)?;
        file.lock()?;
        Ok(file)
    })
    .await?
    .map_err(fail("cannot take the build lock"))?;
    if inspect(docker, &image).await?.is_some() {
        return Ok(());
    }

    let result = async {
        write_builder(&work).map_err(fail("cannot write the builder"))?;
        let output = tokio::process::Command::new("bash")
            .arg(work.join("build"))
            .env("PGDRILL_IMAGE", &image)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(fail("cannot run bash"))?;
        if output.status.success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let output = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            Err(TargetError::ImageBuild { image: image.clone(), output })
        }
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    drop(lock);
    result
}

fn write_builder(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    for (name, text) in [("build", BUILD_SCRIPT), ("pg_hba.conf", PG_HBA), ("TAG", default_image())] {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Where pgdrill keeps what it caches on this machine: `$XDG_CACHE_HOME/pgdrill`, else
/// `~/.cache/pgdrill`, else the temporary folder.
fn cache_root() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("pgdrill")
}

/// The image's initialised data directory, copied out of it once into this machine's cache
/// (`<cache>/clusters/<image id>/data`). Two drills that copy it at once each unpack their own
/// and the first to finish is kept.
pub(crate) async fn cluster_template(docker: &Docker, image: &str, info: &ImageInfo) -> Result<PathBuf, TargetError> {
    use std::os::unix::fs::DirBuilderExt;
    let fail = |source: TemplateError| TargetError::Template { image: image.to_owned(), source };
    let pgdata = info.pgdata.as_deref().ok_or_else(|| fail(TemplateError::NoPgdata))?;
    let short = info.id.trim_start_matches("sha256:").chars().take(16).collect::<String>();
    let clusters = cache_root().join("clusters");
    let done = clusters.join(&short);
    if done.join("data/PG_VERSION").is_file() {
        return Ok(done.join("data"));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&clusters)
        .map_err(|source| fail(TemplateError::Folder { path: clusters.clone(), source }))?;
    let unpacking = clusters.join(format!(".{short}-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    let result = copy_out(docker, image, pgdata, &unpacking).await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_dir_all(&unpacking).await;
        return Err(fail(e));
    }
    // Another drill may have finished first: its copy is as good as this one.
    if std::fs::rename(&unpacking, &done).is_err() {
        let _ = tokio::fs::remove_dir_all(&unpacking).await;
    }
    if done.join("data/PG_VERSION").is_file() {
        Ok(done.join("data"))
    } else {
        Err(fail(TemplateError::Empty { path: done }))
    }
}

/// Unpacks `path` of `image` into `into` (as `into/<last part of path>`), from a container that
/// is created for it and never started.
async fn copy_out(docker: &Docker, image: &str, path: &str, into: &Path) -> Result<(), TemplateError> {
    use futures_util::TryStreamExt;
    use testcontainers::bollard::query_parameters::{
        CreateContainerOptions, DownloadFromContainerOptions, RemoveContainerOptions,
    };
    let body = testcontainers::bollard::models::ContainerCreateBody {
        image: Some(image.to_owned()),
        network_disabled: Some(true),
        labels: Some(HashMap::from([(OWNER_LABEL.to_owned(), owner())])),
        ..Default::default()
    };
    let created = docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
        .map_err(|source| TemplateError::Create { source })?;
    let unpacked = async {
        let stream = docker
            .download_from_container(&created.id, Some(DownloadFromContainerOptions { path: path.to_owned() }))
            .map_err(std::io::Error::other);
        let reader = tokio_util::io::StreamReader::new(stream);
        tokio_tar::ArchiveBuilder::new(reader)
            .set_preserve_permissions(true)
            .set_allow_external_symlinks(false)
            .build()
            .unpack(into)
            .await
            .map_err(|source| TemplateError::Unpack { source })
    }
    .await;
    let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
    let _ = docker.remove_container(&created.id, Some(options)).await;
    unpacked
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(image: Option<&str>, version: Option<u32>) -> ContainerSpec {
        ContainerSpec {
            image: image.map(str::to_owned),
            version,
            startup_timeout: Duration::from_secs(60),
            settings: Default::default(),
            memory: None,
            processes: None,
            disk: None,
            share: None,
        }
    }

    #[test]
    fn the_image_follows_the_backups_major_unless_the_scenario_names_one() {
        let chosen = |image, version, backup| choose(&spec(image, version), backup, false).map_err(|e| e.to_string());
        assert_eq!(chosen(None, None, Some(18)), Ok(project_image(18)));
        assert_eq!(chosen(None, None, Some(17)), Ok(default_image().to_owned()));
        // Older dumps restore into the oldest major with pgvector and AGE (15's has neither);
        // so does one that says nothing.
        assert_eq!(chosen(None, None, Some(12)), Ok(project_image(17)));
        assert_eq!(chosen(None, None, Some(15)), Ok(project_image(17)));
        assert_eq!(chosen(None, None, None), Ok(project_image(17)));
        assert_eq!(chosen(None, Some(15), Some(15)), Ok(project_image(15)), "pinned");
        // A physical backup recovers on its own major only.
        let physical = |backup| choose(&spec(None, None), Some(backup), true).map_err(|e| e.to_string());
        assert_eq!(physical(15), Ok(project_image(15)));
        assert!(physical(16).unwrap_err().contains("builds images of PostgreSQL 15, 17 and 18 only"));
        // A pinned version or image wins over the backup.
        assert_eq!(chosen(None, Some(17), Some(18)), Ok(project_image(17)));
        assert_eq!(chosen(Some("mine/pg:16-a"), None, Some(18)), Ok("mine/pg:16-a".to_owned()));
        let newer = chosen(None, None, Some(19)).unwrap_err();
        assert!(
            newer.starts_with(
                "the backup comes from PostgreSQL 19, and pgdrill builds images of PostgreSQL 15, 17 and 18 only"
            ),
            "{newer}"
        );
        assert_eq!(project_image_major(&project_image(18)), Some(18));
        assert_eq!(project_image_major("postgres:18"), None);
    }
}
