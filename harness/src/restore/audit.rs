//! The catalog audit of a restore ([`crate::catalog`]): what the restored cluster's built-ins are
//! compared with. A dump restores into a fresh cluster, whose maintenance database is
//! fingerprinted before the restore; a base backup brings its whole cluster, which is compared
//! with a fresh cluster of the same image, fingerprinted once and kept in this machine's cache
//! (keyed by the image's id, not its tag).

use crate::outcome::CatalogAudit;
use std::future::Future;

use crate::catalog::{self, CatalogError, Derived, Fingerprint};
use crate::provision::tools::Tools;
use crate::provision::{Target, TargetError, Teardown};

/// The reference of a dump's restore: the target's maintenance database before the restore.
pub(crate) async fn before_restore(target: &Target) -> Result<Fingerprint, CatalogError> {
    catalog::fingerprint(&target.connect_options(&target.maintenance_db), &target.maintenance_db).await
}

/// Compares the database the checks will read and the maintenance database (a dump can
/// `\connect` to it) with `reference`.
pub(crate) async fn after_restore(
    target: &Target,
    reference: &Fingerprint,
    reference_name: &str,
    database: &str,
) -> Result<CatalogAudit, CatalogError> {
    let databases = [database.to_owned(), target.maintenance_db.clone()];
    catalog::audit(&target.connect_options(&target.maintenance_db), reference, reference_name, &databases).await
}

/// The catalog PostgreSQL acts on against the one the checks read: database `database`'s
/// derived flags against its own objects' DDL, and, with `members` (a dump's restore, whose
/// extensions were created by its own `CREATE EXTENSION`), each extension's members against a
/// fresh `CREATE EXTENSION`'s. `None` when the database is not there (the checks say so).
/// The members are compared on pgdrill's own servers only (container, local, pod): on a shared
/// server the drill's role may not create the scratch database, and its extensions are the
/// server's, not the backup's.
pub(crate) async fn derived(target: &Target, database: &str, members: bool) -> Result<Option<Derived>, CatalogError> {
    let members = members && target.offline.is_some();
    let options = target.connect_options(&target.maintenance_db);
    match catalog::derived(&options, database, &target.maintenance_db, members).await {
        Err(CatalogError::Missing { .. }) => Ok(None),
        read => read.map(Some),
    }
}

/// Why the reference of a fresh cluster could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReferenceError {
    #[error("cannot start a fresh cluster of the target's image to compare the catalogs with")]
    Start(#[source] TargetError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The fresh cluster runs another image than the target: no reference at all.
    #[error("the fresh cluster runs image {fresh}, and the target {target}: its catalogs are no reference")]
    OtherImage { fresh: String, target: String },
}

/// The reference of a base backup's recovery on `target`: a fresh cluster of its image, from
/// the cache, or fingerprinted on a target that `fresh` starts (and removed after). Returns
/// the fingerprint and how the report names it.
pub(crate) async fn fresh_cluster<F>(target: &Target, fresh: F) -> Result<(Fingerprint, String), ReferenceError>
where
    F: Future<Output = Result<(Target, Teardown), TargetError>>,
{
    let image = image_id(target).await.map_err(ReferenceError::Start)?;
    let short: String = image.trim_start_matches("sha256:").chars().take(12).collect();
    let name = format!("a fresh cluster of image {short}");
    let path = catalog::cache_path(&image);
    if let Some(cached) = catalog::load(&path)? {
        return Ok((cached, name));
    }
    let (fresh, teardown) = fresh.await.map_err(ReferenceError::Start)?;
    // Cached under the target's image: taken from any other would be the wrong reference for
    // every later drill of it.
    let fresh_image = image_id(&fresh).await;
    let taken = match fresh_image {
        Ok(id) if id == image => {
            catalog::fingerprint(&fresh.connect_options(&fresh.maintenance_db), &fresh.maintenance_db)
                .await
                .map_err(ReferenceError::from)
        }
        other => {
            Err(ReferenceError::OtherImage { fresh: other.unwrap_or_else(|e| e.to_string()), target: image.clone() })
        }
    };
    let removed = teardown.run().await;
    let fingerprint = taken?;
    removed.map_err(ReferenceError::Start)?;
    catalog::save(&path, &fingerprint)?;
    Ok((fingerprint, name))
}

/// What the target runs, as the reference's cache knows it: the image's id for a container
/// target, the binaries' folder and version for a local one.
async fn image_id(target: &Target) -> Result<String, TargetError> {
    match &target.tools {
        Tools::Container { docker, container, .. } => {
            let inspected = docker
                .inspect_container(container, None)
                .await
                .map_err(|source| TargetError::Docker { action: "inspect the target container", source })?;
            inspected.image.ok_or_else(|| TargetError::Tool { message: "the target container names no image".into() })
        }
        Tools::Local { bin_dir, .. } => {
            let out = tokio::process::Command::new(bin_dir.join("postgres"))
                .arg("--version")
                .output()
                .await
                .map_err(|e| TargetError::Tool { message: format!("cannot run `postgres --version`: {e}") })?;
            Ok(format!("local {} {}", bin_dir.display(), String::from_utf8_lossy(&out.stdout).trim()))
        }
        Tools::Unavailable { reason } => Err(TargetError::Tool { message: reason.clone() }),
    }
}
