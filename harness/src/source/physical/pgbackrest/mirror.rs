//! A pgBackRest repository in S3 (`repo1-type=s3` keeps the layout of a posix one under its
//! path), copied into a folder of the drill before anything reads it: what the drill of the
//! chosen set needs, and no more when `backup.info` says what that is. An encrypted
//! repository's `backup.info` is read only by pgBackRest, in verify's toolbox
//! (`restore::physical::encrypted`), after the copy: its stanza is copied whole (every set and
//! its whole archive), as the set chosen and the WAL it needs cannot be known before.

use std::path::Path;

use super::{Choice, choose, is_encrypted, read, segment_of, stanzas};
use crate::source::s3::{Bucket, Mirrored};
use crate::source::{Progress, SourceError};

/// Copies what a drill of the set `choice` names needs of a pgBackRest repository in S3 into
/// the folder `into`: the stanzas' `backup.info` and `archive.info`, the set's folder and those
/// of the sets it is built on, and its cluster's archive from the set's start on (an encrypted
/// repository's stanza whole).
pub(crate) async fn mirror(
    bucket: &Bucket<'_>,
    into: &Path,
    choice: &Choice<'_>,
    progress: Progress<'_>,
) -> Result<Mirrored, SourceError> {
    let depth = |relative: &str| relative.split('/').count();
    let infos = |relative: &str| {
        depth(relative) == 3
            && (relative.starts_with("backup/") && relative.ends_with("/backup.info")
                || relative.starts_with("archive/") && relative.ends_with("/archive.info"))
    };
    let mut total = bucket.mirror("", into, &infos, progress).await?;
    let mut add = |more: Mirrored| {
        total.files += more.files;
        total.bytes += more.bytes;
        total.newest = total.newest.max(more.newest);
    };
    if is_encrypted(into) {
        let stanza = encrypted_stanza(into, choice)?;
        let (backup, archive) = (format!("backup/{stanza}/"), format!("archive/{stanza}/"));
        let rest = |relative: &str| !infos(relative);
        add(bucket.mirror(&backup, into, &rest, progress).await?);
        add(bucket.mirror(&archive, into, &rest, progress).await?);
        return Ok(total);
    }
    let chosen = choose(into, choice)?;
    for label in &chosen.chain {
        add(bucket.mirror(&format!("backup/{}/{label}", chosen.stanza), into, &|_| true, progress).await?);
    }
    let set = read(into, &Choice { set: Some(&chosen.label), stanza: Some(&chosen.stanza), before: None })?;
    let start = set.archive_start.clone();
    let from_start = |relative: &str| {
        let name = relative.rsplit('/').next().unwrap_or_default();
        segment_of(name).is_some_and(|(segment, _)| segment[..8] == start[..8] && segment >= start.as_str())
    };
    add(bucket.mirror(&format!("archive/{}/{}", set.stanza, set.archive_id), into, &from_start, progress).await?);
    Ok(total)
}

/// The stanza of an encrypted repository a drill reads: the one the scenario names, or its only
/// one (its names are the folders', readable before anything is decrypted).
fn encrypted_stanza(into: &Path, choice: &Choice<'_>) -> Result<String, SourceError> {
    let found = stanzas(into).map_err(|source| SourceError::Unreadable { path: into.display().to_string(), source })?;
    let malformed = |message: String| super::PhysicalError::Malformed { path: into.display().to_string(), message };
    match (choice.stanza, found.as_slice()) {
        (Some(named), _) if found.iter().any(|s| s == named) => Ok(named.to_owned()),
        (Some(named), _) => {
            Err(malformed(format!("holds no stanza `{named}` (it holds: {})", found.join(", "))).into())
        }
        (None, [only]) => Ok(only.clone()),
        (None, _) => {
            Err(malformed(format!("holds stanzas {}: name one with `[source] stanza`", found.join(", "))).into())
        }
    }
}
