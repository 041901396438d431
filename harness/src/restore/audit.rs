//! The catalog audit of a restore ([`crate::catalog`]): what the restored cluster's built-ins are
//! compared with. A dump restores into a fresh cluster, whose maintenance database is
//! fingerprinted before the restore; a base backup brings its whole cluster, which is compared
//! with a fresh cluster of the same image, fingerprinted once and kept in this machine's cache
//! (keyed by the image's id, not its tag).

use crate::outcome::CatalogAudit;
use std::future::Future;

use crate::catalog::{self, CatalogError, Derived, Extension, Fingerprint, Kept, Members};
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

/// Database `database`'s derived flags against its own objects' DDL (a base backup's recovery:
/// its extensions' members are its cluster's own). `None` when the database is not there (the
/// checks say so).
pub(crate) async fn derived_flags(target: &Target, database: &str) -> Result<Option<Derived>, CatalogError> {
    let options = target.connect_options(&target.maintenance_db);
    match catalog::read(&options, database, false).await {
        Err(CatalogError::Missing { .. }) => Ok(None),
        read => read?.judge(None).map(Some),
    }
}

/// A dump's restore, whose extensions its own `CREATE EXTENSION` made: database `database`'s
/// derived flags, and each extension's members against those a fresh `CREATE EXTENSION` makes on
/// a fresh cluster of the target's image ([`members_reference`]). On a shared server the members
/// are not compared: its extensions are the server's, not the backup's, and the drill's role may
/// create nothing there. `None` when the database is not there.
pub(crate) async fn derived<F>(target: &Target, database: &str, fresh: F) -> Result<Option<Derived>, ReferenceError>
where
    F: Future<Output = Result<(Target, Teardown), TargetError>>,
{
    let members = target.offline.is_some();
    let options = target.connect_options(&target.maintenance_db);
    let read = match catalog::read(&options, database, members).await {
        Err(CatalogError::Missing { .. }) => return Ok(None),
        read => read?,
    };
    let reference = match members {
        true => Some(members_reference(target, read.extensions(), fresh).await?),
        false => None,
    };
    Ok(Some(read.judge(reference.as_ref())?))
}

/// The members of `extensions` as `CREATE EXTENSION` makes them on a cluster of the target's
/// image that no backup touched: from this machine's cache, or made on a fresh cluster that
/// `fresh` starts (and removed after), then kept.
async fn members_reference<F>(target: &Target, extensions: &[Extension], fresh: F) -> Result<Members, ReferenceError>
where
    F: Future<Output = Result<(Target, Teardown), TargetError>>,
{
    if extensions.is_empty() {
        return Ok(Members::new());
    }
    let image = image_id(target).await.map_err(ReferenceError::Start)?;
    let path = catalog::members_path(&image);
    let mut kept: Kept = catalog::load(&path)?.unwrap_or_default();
    if let Some(members) = kept.members_of(extensions) {
        return Ok(members);
    }
    let made = on_fresh_cluster(&image, fresh, async |fresh: &Target| {
        let options = fresh.connect_options(&fresh.maintenance_db);
        catalog::fresh_members(&options, &fresh.maintenance_db, extensions).await
    })
    .await?;
    // Merged with what another drill kept meanwhile.
    kept.add(extensions, &made, catalog::load(&path).ok().flatten());
    catalog::save(&path, &kept)?;
    Ok(made)
}

/// Why the reference of a fresh cluster could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReferenceError {
    #[error("cannot start a fresh cluster of the target's image to compare the catalog with")]
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
    let fingerprint = on_fresh_cluster(&image, fresh, async |fresh: &Target| {
        catalog::fingerprint(&fresh.connect_options(&fresh.maintenance_db), &fresh.maintenance_db).await
    })
    .await?;
    catalog::save(&path, &fingerprint)?;
    Ok((fingerprint, name))
}

/// What `read` finds on the fresh cluster that `fresh` starts, which must run image `image` (a
/// reference taken on any other would be the wrong one for every later drill of it); the
/// cluster is removed after.
async fn on_fresh_cluster<F, T>(
    image: &str,
    fresh: F,
    read: impl AsyncFnOnce(&Target) -> Result<T, CatalogError>,
) -> Result<T, ReferenceError>
where
    F: Future<Output = Result<(Target, Teardown), TargetError>>,
{
    let (fresh, teardown) = fresh.await.map_err(ReferenceError::Start)?;
    let taken = match image_id(&fresh).await {
        Ok(id) if id == image => read(&fresh).await.map_err(ReferenceError::from),
        other => {
            Err(ReferenceError::OtherImage { fresh: other.unwrap_or_else(|e| e.to_string()), target: image.to_owned() })
        }
    };
    let removed = teardown.run().await;
    let taken = taken?;
    removed.map_err(ReferenceError::Start)?;
    Ok(taken)
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
