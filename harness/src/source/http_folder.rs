//! A pg_basebackup folder behind an HTTP(S) URL ending in `/`. A web server lists no folder, so
//! the backup's own `backup_manifest` is the listing: a plain-format backup's files are the ones
//! it lists, each downloaded to its place (a path leading out of the folder refused before
//! anything is written); a tar-format backup's are `base.tar*`, `pg_wal.tar*` and the `<oid>.tar*`
//! of each tablespace the manifest lists, probed (a 404 meaning absent). Each file is downloaded
//! as one backup file is ([`http::get_into`]: retries, resume, token, redaction); verify then
//! checks them all against the manifest.

use std::path::Path;

use time::OffsetDateTime;

use super::http::{self, Prepared};
use super::physical::{TAR_SUFFIXES, manifest, wal};
use super::{Backup, Progress, SourceError};

const MANIFEST: &str = "backup_manifest";

/// A plain backup's folders that may be empty, which its manifest (files only) cannot list and
/// a server does not start without.
const EMPTY_FOLDERS: [&str; 20] = [
    "global",
    "base",
    "pg_wal/archive_status",
    "pg_wal/summaries",
    "pg_commit_ts",
    "pg_dynshmem",
    "pg_notify",
    "pg_serial",
    "pg_snapshots",
    "pg_subtrans",
    "pg_twophase",
    "pg_multixact/members",
    "pg_multixact/offsets",
    "pg_replslot",
    "pg_tblspc",
    "pg_stat",
    "pg_stat_tmp",
    "pg_xact",
    "pg_logical/snapshots",
    "pg_logical/mappings",
];

/// The bytes downloaded so far, across files.
struct Counter<'a> {
    done: u64,
    total: Option<u64>,
    newest: Option<OffsetDateTime>,
    progress: Progress<'a>,
}

/// Downloads the base backup in the folder `folder` names into `work/backup`.
pub(crate) async fn fetch(
    folder: &Prepared,
    retries: u32,
    work: &Path,
    progress: Progress<'_>,
) -> Result<Backup, SourceError> {
    let location = folder.location().to_owned();
    let into = work.join("backup");
    make_dir(&into)?;
    let mut counter = Counter { done: 0, total: None, newest: None, progress };
    let manifest_path = into.join(MANIFEST);
    if !get(folder, MANIFEST, retries, &manifest_path, &mut counter).await? {
        return Err(SourceError::NoManifest { location });
    }
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|source| SourceError::Unreadable { path: manifest_path.display().to_string(), source })?;
    let files =
        manifest::listed(&text).map_err(|source| SourceError::FolderManifest { location: location.clone(), source })?;
    // Every path checked before any is written.
    if let Some(outside) = files.iter().find(|f| !stays_inside(&f.path)) {
        return Err(SourceError::OutsideFolder { location, path: outside.path.clone() });
    }
    if let Some(base) = first_present(folder, "base.tar", retries, &into, &mut counter).await? {
        tar_rest(folder, &base, &files, retries, &into, &mut counter).await?;
    } else {
        plain(folder, &files, &manifest_path, retries, &into, &mut counter).await?;
    }
    Ok(Backup {
        location,
        path: into,
        size: counter.done,
        modified: counter.newest,
        previous: None,
        wal_archive: None,
        keys: Vec::new(),
        remote: None,
    })
}

/// Whether a manifest's path stays inside the backup's folder: relative, without `..` (or `.`,
/// or an empty part, or a backslash).
fn stays_inside(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && !Path::new(path).is_absolute()
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

fn make_dir(dir: &Path) -> Result<(), SourceError> {
    std::fs::create_dir_all(dir).map_err(|source| SourceError::Unreadable { path: dir.display().to_string(), source })
}

/// Downloads `relative` under the folder to `to`: `false` when the server has no such file.
async fn get(
    folder: &Prepared,
    relative: &str,
    retries: u32,
    to: &Path,
    counter: &mut Counter<'_>,
) -> Result<bool, SourceError> {
    let file = folder.under(relative)?;
    let (done, total, progress) = (counter.done, counter.total, counter.progress);
    let each = move |bytes: u64, _: Option<u64>| progress(done + bytes, total);
    match http::get_into(&file, retries, to, &each).await {
        Ok(got) => {
            counter.done += got.size;
            counter.newest = counter.newest.max(got.modified);
            Ok(true)
        }
        Err(SourceError::NotFound { .. }) => {
            std::fs::remove_file(to).ok();
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The first of `stem`'s tar names (`base.tar`, `base.tar.gz`, ...) the server has, downloaded.
async fn first_present(
    folder: &Prepared,
    stem: &str,
    retries: u32,
    into: &Path,
    counter: &mut Counter<'_>,
) -> Result<Option<String>, SourceError> {
    for suffix in TAR_SUFFIXES {
        let name = format!("{stem}{suffix}");
        if get(folder, &name, retries, &into.join(&name), counter).await? {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// A tar-format backup's other tars: its WAL's and each tablespace's the manifest lists, with
/// the compression of `base` first.
async fn tar_rest(
    folder: &Prepared,
    base: &str,
    files: &[manifest::Listed],
    retries: u32,
    into: &Path,
    counter: &mut Counter<'_>,
) -> Result<(), SourceError> {
    let mut oids: Vec<&str> = files
        .iter()
        .filter_map(|f| f.path.strip_prefix("pg_tblspc/")?.split('/').next())
        .filter(|oid| !oid.is_empty() && oid.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    oids.sort_unstable();
    oids.dedup();
    let suffix = base.strip_prefix("base.tar").unwrap_or_default();
    for stem in std::iter::once("pg_wal".to_owned()).chain(oids.iter().map(|oid| (*oid).to_owned())) {
        let same = format!("{stem}.tar{suffix}");
        if !get(folder, &same, retries, &into.join(&same), counter).await? {
            // Absent, or compressed otherwise: verify says what a missing tablespace lacks.
            first_present(folder, &format!("{stem}.tar"), retries, into, counter).await?;
        }
    }
    Ok(())
}

/// A plain-format backup: each file the manifest lists, its empty folders, and the WAL
/// segments of the manifest's range that the server has in `pg_wal/` (`-X stream`).
async fn plain(
    folder: &Prepared,
    files: &[manifest::Listed],
    manifest_path: &Path,
    retries: u32,
    into: &Path,
    counter: &mut Counter<'_>,
) -> Result<(), SourceError> {
    if let Some(file) = files.iter().find(|f| f.path.starts_with("pg_tblspc/")) {
        return Err(SourceError::FolderTablespace { location: folder.location().to_owned(), path: file.path.clone() });
    }
    for empty in EMPTY_FOLDERS {
        make_dir(&into.join(empty))?;
    }
    counter.total = Some(counter.done + files.iter().map(|f| f.size).sum::<u64>());
    for file in files.iter().filter(|f| f.path != MANIFEST) {
        let to = into.join(&file.path);
        if let Some(parent) = to.parent() {
            make_dir(parent)?;
        }
        if !get(folder, &file.path, retries, &to, counter).await? {
            return Err(SourceError::NotFound { location: folder.under(&file.path)?.location().to_owned() });
        }
    }
    counter.total = None;
    let Some((timeline, start, end)) = manifest::read(manifest_path).ok().and_then(|m| m.wal_range) else {
        return Ok(());
    };
    // pg_basebackup's default segment size; a segment of another size is absent here and
    // recovery reads the WAL archive.
    const SEGMENT: u64 = 16 * 1024 * 1024;
    let (first, last) = (wal::Segment::of_lsn(timeline, start, SEGMENT), wal::Segment::of_lsn(timeline, end, SEGMENT));
    let history = (timeline > 1).then(|| format!("{timeline:08X}.history"));
    let segments = (first.number..=last.number).map(|number| wal::Segment { timeline, number }.name(SEGMENT));
    for name in history.into_iter().chain(segments) {
        let relative = format!("pg_wal/{name}");
        get(folder, &relative, retries, &into.join(&relative), counter).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifests_path_must_stay_inside_the_folder() {
        for inside in ["PG_VERSION", "base/1/1259", "global/pg_control", "pg_tblspc/16384/PG_17/5/1"] {
            assert!(stays_inside(inside), "{inside}");
        }
        for outside in ["../x", "/etc/passwd", "base/../../x", "", "base//1", "./x", "a\\..\\x", "base/.."] {
            assert!(!stays_inside(outside), "{outside}");
        }
    }
}
