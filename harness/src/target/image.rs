//! The target image: present locally, or built from Debian's packages when it is the project's
//! own tag (no registry is needed; see `ci/image/build`).

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use testcontainers::bollard::Docker;
use testcontainers::bollard::errors::Error as DockerError;

use super::TargetError;
use crate::scenario::default_image;

const BUILD_SCRIPT: &str = include_str!("../../../ci/image/build");
const ENTRYPOINT: &str = include_str!("../../../ci/image/entrypoint.sh");

/// Labels of the image (the offline build records its package versions there).
pub type Labels = HashMap<String, String>;

/// Makes sure `image` exists locally, building the project's own image when it is missing.
/// `building` is told before a build starts (it takes about a minute).
pub async fn ensure(docker: &Docker, image: &str, building: impl FnOnce()) -> Result<Labels, TargetError> {
    match inspect(docker, image).await? {
        Some(labels) => Ok(labels),
        None if image == default_image() => {
            building();
            build(image).await?;
            inspect(docker, image).await?.ok_or_else(|| TargetError::ImageBuild {
                image: image.to_owned(),
                output: "the build finished but the image is still missing".into(),
            })
        }
        None => Err(TargetError::ImageMissing { image: image.to_owned() }),
    }
}

async fn inspect(docker: &Docker, image: &str) -> Result<Option<Labels>, TargetError> {
    match docker.inspect_image(image).await {
        Ok(info) => Ok(Some(info.config.and_then(|c| c.labels).unwrap_or_default())),
        Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
        Err(source) => Err(TargetError::Docker { action: "inspect the image", source }),
    }
}

/// Runs the offline builder (embedded in the binary, so an installed `pgdrill` can build too).
/// A lock file keeps concurrent drills from building twice.
async fn build(image: &str) -> Result<(), TargetError> {
    let image = image.to_owned();
    let lock_path = std::env::temp_dir().join("pgdrill-image-build.lock");
    let work = std::env::temp_dir().join(format!("pgdrill-image-{}", std::process::id()));
    let fail = |output: String| TargetError::ImageBuild { image: image.clone(), output };
    let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::File::create(&lock_path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| fail(e.to_string()))?
    .map_err(|e| fail(format!("cannot take the build lock: {e}")))?;

    let result = async {
        write_builder(&work).map_err(|e| fail(format!("cannot write the builder: {e}")))?;
        let output = tokio::process::Command::new("bash")
            .arg(work.join("build"))
            .env("PGDRILL_IMAGE", &image)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| fail(format!("cannot run bash: {e}")))?;
        if output.status.success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            Err(fail(tail.into_iter().rev().collect::<Vec<_>>().join("\n")))
        }
    }
    .await;
    let _ = std::fs::remove_dir_all(&work);
    drop(lock);
    result
}

fn write_builder(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    for (name, text) in [("build", BUILD_SCRIPT), ("entrypoint.sh", ENTRYPOINT), ("TAG", default_image())] {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
