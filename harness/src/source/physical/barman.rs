//! Barman's backups: a server's folder as Barman keeps it (`<barman_home>/<server>/`: each
//! backup in `base/<id>/data/`, a pg_basebackup folder in plain or tar format, its
//! `backup.info` in `meta/<id>-backup.info` (Barman 3.13.2 and later) or `base/<id>/`, and the
//! archived WAL in `wals/<log>/<segment>`, compressed in place under the segment's own name) or
//! as `barman-cloud-backup` lays it out in object storage (`base/<id>/backup.info` and
//! `data.tar[.gz|.bz2]`, without a manifest; `wals/<log>/<segment>.<compression>`). The backup
//! drilled is the newest that Barman finished (`status=DONE`), the one `set` names, or for a
//! target time the newest that ended before it; its own `backup.info` is read, never trusted
//! further than what PostgreSQL's tools and the WAL then prove.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{Layout, PhysicalError};

/// The backup of a Barman server chosen for the drill.
#[derive(Debug, Clone)]
pub(crate) struct BarmanBackup {
    /// The server's folder.
    pub server: PathBuf,
    /// Its id (`20261124T094426`).
    pub id: String,
    /// Laid out by `barman-cloud-backup` (a tar without a manifest) rather than Barman.
    pub cloud: bool,
    /// The backup's data: a pg_basebackup folder (Barman), or the tar (barman-cloud).
    pub data: PathBuf,
    /// The database system its backup.info says it is of.
    pub system_id: Option<u64>,
    /// How many finished backups the server holds.
    pub backups: usize,
}

impl BarmanBackup {
    /// The server's WAL archive.
    pub(crate) fn wals(&self) -> PathBuf {
        self.server.join("wals")
    }

    /// The backup in words.
    pub(crate) fn describe(&self, layout: &Layout) -> String {
        let name = self.server.file_name().unwrap_or_default().to_string_lossy();
        let format = match layout {
            Layout::Tar { base, .. } => format!("tar, `{}`", base.file_name().unwrap_or_default().to_string_lossy()),
            _ => "plain".into(),
        };
        let kind = if self.cloud { "barman-cloud backup" } else { "Barman backup" };
        format!("{kind} {} of server `{name}` ({format}; 1 of {} finished)", self.id, self.backups)
    }
}

/// Whether `dir` is a Barman server's folder, as Barman or barman-cloud lays it out.
pub(crate) fn is_server(dir: &Path) -> bool {
    dir.join("base").is_dir() && dir.join("wals").is_dir() && !backups(dir).is_empty()
}

/// The ids of the backups in `dir/base`, oldest first.
fn backups(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("base")) else { return Vec::new() };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|id| is_backup_id(id))
        .collect();
    ids.sort();
    ids
}

/// `YYYYMMDDTHHMMSS`, as Barman names its backups.
fn is_backup_id(id: &str) -> bool {
    id.len() == 15 && id.as_bytes()[8] == b'T' && id.bytes().enumerate().all(|(i, b)| i == 8 || b.is_ascii_digit())
}

/// What `backup.info` says: `key=value` lines, values as Python writes them (`None`, quoted
/// strings with escapes, numbers).
pub(crate) fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .filter_map(|(key, value)| {
            let value = value.trim();
            let value = match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                Some(quoted) => unescape(quoted),
                None if value == "None" => return None,
                None => value.to_owned(),
            };
            Some((key.trim().to_owned(), value))
        })
        .collect()
}

fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            },
            (c, false) => out.push(c),
        }
    }
    out
}

/// Where a backup's `backup.info` is: `meta/<id>-backup.info` (Barman 3.13.2 and later) before
/// `base/<id>/backup.info` (older Barman, and barman-cloud), as Barman itself reads them.
fn info_path(server: &Path, id: &str) -> Option<PathBuf> {
    [server.join(format!("meta/{id}-backup.info")), server.join(format!("base/{id}/backup.info"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// A time as backup.info writes it (`2026-11-24 09:41:51.593525+00:00`).
fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let iso = text.trim().replacen(' ', "T", 1);
    OffsetDateTime::parse(&iso, &time::format_description::well_known::Rfc3339).ok()
}

/// Which backup of the server to drill.
pub(crate) struct Choice<'a> {
    pub id: Option<&'a str>,
    pub before: Option<OffsetDateTime>,
}

/// The id and `backup.info` of the backup of the server in `dir` that `choice` names (see the
/// module's documentation).
fn choose(dir: &Path, choice: &Choice<'_>) -> Result<(String, BTreeMap<String, String>), PhysicalError> {
    let shown = dir.display().to_string();
    let malformed = |message: String| PhysicalError::Malformed { path: shown.clone(), message };
    let mut finished = Vec::new();
    let mut others = Vec::new();
    for id in backups(dir) {
        let info = match info_path(dir, &id) {
            Some(path) => parse_info(
                &std::fs::read_to_string(&path)
                    .map_err(|source| PhysicalError::Read { path: path.display().to_string(), source })?,
            ),
            None => BTreeMap::new(),
        };
        match info.get("status").map(String::as_str) {
            Some("DONE") => finished.push((id, info)),
            status => others.push((id, status.unwrap_or("without a backup.info").to_owned(), info)),
        }
    }
    let count = finished.len();
    let chosen = match (choice.id, choice.before) {
        (Some(wanted), _) => match finished.iter().find(|(id, _)| id == wanted) {
            Some(found) => found.clone(),
            None => {
                let why = match others.iter().find(|(id, ..)| id == wanted) {
                    Some((_, status, info)) => format!(
                        "is {status}{}: Barman did not finish it",
                        info.get("error").map(|e| format!(" ({e})")).unwrap_or_default()
                    ),
                    None => format!(
                        "is not one of its backups ({})",
                        finished.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                };
                return Err(malformed(format!("`[source] set = \"{wanted}\"`: backup {wanted} {why}")));
            }
        },
        (None, before) => {
            let ended_before = |info: &BTreeMap<String, String>| {
                before.is_none_or(|t| info.get("end_time").and_then(|e| parse_time(e)).is_some_and(|e| e < t))
            };
            match finished.iter().rev().find(|(_, info)| ended_before(info)).or(finished.first()) {
                Some(found) => found.clone(),
                None => {
                    let listed: Vec<String> = others.iter().map(|(id, status, _)| format!("{id} {status}")).collect();
                    return Err(malformed(format!(
                        "the Barman server holds no finished backup (status DONE): {}",
                        if listed.is_empty() { "none at all".to_owned() } else { listed.join(", ") }
                    )));
                }
            }
        }
    };
    let (id, mut info) = chosen;
    info.insert(FINISHED.into(), count.to_string());
    Ok((id, info))
}

/// The key [`choose`] adds to a `backup.info`: how many backups of the server are finished.
const FINISHED: &str = "pgdrill finished backups";

/// Reads the backup of the server in `dir` that `choice` names (see the module's
/// documentation).
pub(crate) fn read(dir: &Path, choice: &Choice<'_>) -> Result<BarmanBackup, PhysicalError> {
    let shown = dir.display().to_string();
    let malformed = |message: String| PhysicalError::Malformed { path: shown.clone(), message };
    let (id, info) = choose(dir, choice)?;
    let base = dir.join("base").join(&id);
    let (data, cloud) = match (base.join("data"), ["data.tar", "data.tar.gz", "data.tar.bz2"].map(|n| base.join(n))) {
        (plain, _) if plain.is_dir() => (plain, false),
        (_, tars) => match tars.into_iter().find(|t| t.is_file()) {
            Some(tar) => (tar, true),
            None => return Err(malformed(format!("backup {id} has neither a `data` folder nor a `data.tar`"))),
        },
    };
    Ok(BarmanBackup {
        server: dir.to_owned(),
        id,
        cloud,
        data,
        system_id: info.get("systemid").and_then(|s| s.parse().ok()),
        backups: info.get(FINISHED).and_then(|n| n.parse().ok()).unwrap_or(1),
    })
}

/// Copies what a drill of the backup `choice` names needs of a barman-cloud server in object
/// storage into the folder `into`: every backup's `backup.info`, the chosen backup's folder, and
/// the server's WAL from the backup's first segment on (with the timelines' history files).
pub(crate) async fn mirror(
    bucket: &crate::source::s3::Bucket<'_>,
    into: &Path,
    choice: &Choice<'_>,
    progress: crate::source::Progress<'_>,
) -> Result<crate::source::s3::Mirrored, crate::source::SourceError> {
    let infos = |relative: &str| {
        relative.starts_with("base/") && relative.ends_with("/backup.info") && relative.split('/').count() == 3
    };
    let mut total = bucket.mirror("", into, &infos, progress).await?;
    let (id, info) = choose(into, choice)?;
    let mut add = |more: crate::source::s3::Mirrored| {
        total.files += more.files;
        total.bytes += more.bytes;
        total.newest = total.newest.max(more.newest);
    };
    add(bucket.mirror(&format!("base/{id}"), into, &|_| true, progress).await?);
    let first = info.get("begin_wal").cloned().unwrap_or_default();
    let from_first = |relative: &str| {
        let name = relative.rsplit('/').next().unwrap_or_default();
        let segment = name.get(..24).unwrap_or_default();
        name.contains(".history")
            || (super::wal::is_segment_name(segment) && segment.get(..8) == first.get(..8) && segment >= first.as_str())
    };
    add(bucket.mirror("wals", into, &from_first, progress).await?);
    Ok(total)
}

/// The layout of a barman-cloud backup's data: its tar, and a tar per tablespace beside it
/// (`<oid>.tar[.gz|.bz2]`).
pub(crate) fn cloud_layout(backup: &BarmanBackup) -> Layout {
    let base = backup.data.clone();
    let folder = base.parent().map(Path::to_owned).unwrap_or_default();
    let mut tablespaces: Vec<(u32, PathBuf)> = std::fs::read_dir(&folder)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = [".tar", ".tar.gz", ".tar.bz2"].iter().find_map(|s| name.strip_suffix(s))?;
            Some((stem.parse().ok()?, e.path()))
        })
        .collect();
    tablespaces.sort();
    Layout::Tar { base, wal: None, tablespaces }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_info_is_read_as_barman_writes_it() {
        let text = "backup_label='START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\\nSTART TIMELINE: 1\\n'\n\
                    begin_time=2026-11-24 09:41:34.257846+00:00\nend_time=2026-11-24 09:41:51.593525+00:00\n\
                    error=None\nstatus=DONE\nsystemid=7711670695105838109\ntimeline=1\n";
        let info = parse_info(text);
        assert_eq!(info["status"], "DONE");
        assert!(!info.contains_key("error"), "None is no value");
        assert!(info["backup_label"].contains("(file 000000010000000000000003)\nSTART TIMELINE: 1\n"));
        assert_eq!(parse_time(&info["end_time"]), Some(time::macros::datetime!(2026-11-24 09:41:51.593525 UTC)));
        assert!(is_backup_id("20261124T094426"));
        assert!(!is_backup_id("20261124-094426") && !is_backup_id("latest"));
    }

    fn server(backups: &[(&str, &str, bool)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("wals")).unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        for (id, status, meta) in backups {
            std::fs::create_dir_all(dir.path().join(format!("base/{id}/data"))).unwrap();
            let info = format!("status={status}\nend_time=2026-11-24 {}:00:00+00:00\nsystemid=42\n", &id[9..11]);
            let path = if *meta { format!("meta/{id}-backup.info") } else { format!("base/{id}/backup.info") };
            std::fs::write(dir.path().join(path), info).unwrap();
        }
        dir
    }

    #[test]
    fn the_newest_finished_backup_or_the_one_named_or_the_newest_before_a_target() {
        let dir = server(&[
            ("20261124T010000", "DONE", false),
            ("20261124T030000", "DONE", true),
            ("20261124T050000", "FAILED", true),
        ]);
        assert!(is_server(dir.path()));
        let read = |id: Option<&str>, before| read(dir.path(), &Choice { id, before }).map(|b| b.id);
        assert_eq!(read(None, None).unwrap(), "20261124T030000", "the failed one is not drilled");
        assert_eq!(read(Some("20261124T010000"), None).unwrap(), "20261124T010000");
        let at_two = Some(time::macros::datetime!(2026-11-24 02:00 UTC));
        assert_eq!(read(None, at_two).unwrap(), "20261124T010000");
        let failed = read(Some("20261124T050000"), None).unwrap_err().to_string();
        assert!(failed.contains("backup 20261124T050000 is FAILED: Barman did not finish it"), "{failed}");
        let unknown = read(Some("20261124T060000"), None).unwrap_err().to_string();
        assert!(unknown.contains("is not one of its backups (20261124T010000, 20261124T030000)"), "{unknown}");
        let none = server(&[("20261124T010000", "WAITING_FOR_WALS", true)]);
        let error = super::read(none.path(), &Choice { id: None, before: None }).unwrap_err().to_string();
        assert!(error.contains("holds no finished backup (status DONE): 20261124T010000 WAITING_FOR_WALS"), "{error}");
    }
}
