//! pgBackRest repositories (posix; an S3 one copied to a folder first: `mirror`), read as
//! pgBackRest writes them, before anything starts: `backup/<stanza>/backup.info` lists the sets
//! (the newest last; the `latest` link is never followed: a repository points it anywhere), the
//! chosen set's `backup.manifest` says where its recovery starts, which major and system it is of
//! and every path it restores (`targets`: each inside the data directory or one of its
//! tablespaces), `archive/<stanza>/archive.info` names the archive of that system, whose
//! segments are `<16 hex>/<segment>-<sha1>[.gz|.zst]`. Restoring the set's files is pgBackRest's
//! own work, in the toolbox (`restore::physical`); its manifest's paths are checked here first,
//! because pgBackRest writes wherever they lead (`pg_data/../x` lands beside the data directory).

use std::path::{Path, PathBuf};

use serde_json::Value;
use time::OffsetDateTime;

mod mirror;
mod targets;

pub(crate) use mirror::mirror;
pub(crate) use targets::TargetsError;

use super::label::LabelError;
use super::wal::{Archived, is_segment_name};
use super::{BackupLabel, PhysicalError};

/// A backup set chosen in a repository, and what its manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Set {
    pub stanza: String,
    pub label: String,
    /// `full`, `diff` or `incr`.
    pub kind: String,
    pub major: u32,
    pub system_id: u64,
    /// `backup-archive-start` and `-stop`: the segments it needs to be consistent.
    pub archive_start: String,
    pub archive_stop: String,
    pub lsn_start: String,
    /// `backup-lsn-stop`: where the set is consistent.
    pub lsn_stop: String,
    pub started: Option<OffsetDateTime>,
    pub stopped: Option<OffsetDateTime>,
    /// The archive of its cluster: `<major>-<n>`.
    pub archive_id: String,
    /// Files the set restores.
    pub files: usize,
    /// Its tablespaces' OIDs: pgdrill restores each into `pg_tblspc/<oid>`.
    pub tablespaces: Vec<u32>,
    /// How many sets the stanza holds, and whether this is the oldest of them.
    pub sets: usize,
    pub oldest: bool,
}

impl Set {
    /// The set as a backup_label would say it.
    pub(crate) fn label(&self) -> Result<BackupLabel, LabelError> {
        let timeline = u32::from_str_radix(&self.archive_start[..8], 16)
            .map_err(|_| LabelError::ArchiveStart { value: self.archive_start.clone() })?;
        Ok(BackupLabel {
            start_lsn: self.lsn_start.clone(),
            start_segment: self.archive_start.clone(),
            timeline,
            start_time: self.started,
            label: self.label.clone(),
            incremental_from: None,
        })
    }
}

/// An INI file as pgBackRest writes them: sections in file order, each key's value as written
/// (JSON).
type Ini = Vec<(String, Vec<(String, String)>)>;

fn parse_ini(text: &str) -> Ini {
    let mut sections: Ini = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.to_owned(), Vec::new()));
        } else if let (Some((key, value)), Some(section)) = (line.split_once('='), sections.last_mut()) {
            section.1.push((key.to_owned(), value.to_owned()));
        }
    }
    sections
}

fn section<'a>(ini: &'a Ini, name: &str) -> impl Iterator<Item = &'a (String, String)> {
    ini.iter().filter(move |(n, _)| n == name).flat_map(|(_, keys)| keys)
}

fn value(ini: &Ini, name: &str, key: &str) -> Option<Value> {
    section(ini, name).find(|(k, _)| k == key).and_then(|(_, v)| serde_json::from_str(v).ok())
}

/// Whether `dir` is a pgBackRest repository: `backup/<stanza>/backup.info`.
pub(crate) fn is_repository(dir: &Path) -> bool {
    stanzas(dir).is_ok_and(|s| !s.is_empty())
}

/// Whether the repository is encrypted (`repo1-cipher-type`): its `backup.info` is OpenSSL's
/// salted format, as every file pgBackRest writes there then is.
pub(crate) fn is_encrypted(repo: &Path) -> bool {
    use std::io::Read;
    stanzas(repo).unwrap_or_default().iter().any(|stanza| {
        let mut head = [0u8; 8];
        std::fs::File::open(repo.join(format!("backup/{stanza}/backup.info")))
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok_and(|()| &head == b"Salted__")
    })
}

/// The stanzas a repository holds.
pub(crate) fn stanzas(repo: &Path) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(repo.join("backup"))? {
        let entry = entry?;
        if entry.path().join("backup.info").is_file() {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found.sort();
    Ok(found)
}

/// A file of the repository, which must be pgBackRest's INI text (an encrypted repository's are
/// not).
fn read_ini(path: &Path) -> Result<Ini, PhysicalError> {
    let bytes =
        std::fs::read(path).map_err(|source| PhysicalError::Read { path: path.display().to_string(), source })?;
    match String::from_utf8(bytes) {
        Ok(text) if text.starts_with('[') => Ok(parse_ini(&text)),
        _ => Err(PhysicalError::Malformed {
            path: path.display().to_string(),
            message: "is not pgBackRest's text: a damaged file, or one of an encrypted repository (repo1-cipher-type) read without its passphrase".into(),
        }),
    }
}

/// Which set to restore.
#[derive(Debug, Clone, Default)]
pub(crate) struct Choice<'a> {
    pub stanza: Option<&'a str>,
    /// A set's label.
    pub set: Option<&'a str>,
    /// A recovery target time: the newest set that finished before it (else the oldest set,
    /// which the restore's preflight then refuses, naming its end).
    pub before: Option<OffsetDateTime>,
}

/// The set `choice` names in the repository at `repo` (the newest by default), read from
/// `backup.info` alone: its stanza, its entry there, and the sets it is built on (an
/// incremental or differential set's files live partly in its prior sets), itself first.
pub(crate) struct Chosen {
    pub stanza: String,
    pub label: String,
    pub info: Value,
    pub chain: Vec<String>,
    /// How many sets the stanza holds, and whether the chosen one is the oldest.
    pub sets: usize,
    pub oldest: bool,
}

pub(crate) fn choose(repo: &Path, choice: &Choice) -> Result<Chosen, PhysicalError> {
    let shown = repo.display().to_string();
    let malformed =
        |path: &Path, message: String| PhysicalError::Malformed { path: path.display().to_string(), message };
    let stanzas = stanzas(repo).map_err(|source| PhysicalError::Read { path: shown.clone(), source })?;
    let stanza = match (choice.stanza, stanzas.as_slice()) {
        (Some(s), _) if stanzas.iter().any(|have| have == s) => s.to_owned(),
        (Some(s), _) => {
            return Err(malformed(repo, format!("holds no stanza `{s}` (it holds: {})", stanzas.join(", "))));
        }
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(malformed(
                repo,
                format!("holds stanzas {}: name one with `[source] stanza`", stanzas.join(", ")),
            ));
        }
    };
    let info_path = repo.join(format!("backup/{stanza}/backup.info"));
    let info = read_ini(&info_path)?;
    let sets: Vec<(String, Value)> = section(&info, "backup:current")
        .filter_map(|(label, v)| Some((label.clone(), serde_json::from_str(v).ok()?)))
        .collect();
    let chosen = match (choice.set, choice.before) {
        (Some(label), _) => sets.iter().find(|(l, _)| l == label).ok_or_else(|| {
            let labels: Vec<&str> = sets.iter().map(|(l, _)| l.as_str()).collect();
            malformed(&info_path, format!("lists no backup set `{label}` (it lists: {})", labels.join(", ")))
        })?,
        // None finished before the target: the oldest, which preflight refuses naming its end.
        (None, Some(before)) => sets
            .iter()
            .rev()
            .find(|(_, v)| stamp(v, "backup-timestamp-stop").is_some_and(|t| t < before))
            .or(sets.first())
            .ok_or_else(|| malformed(&info_path, "lists no backup set".into()))?,
        (None, None) => sets.last().ok_or_else(|| malformed(&info_path, "lists no backup set".into()))?,
    };
    let is_label =
        |label: &str| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let mut chain = vec![chosen.0.clone()];
    let mut at = &chosen.1;
    while let Some(prior) = at["backup-prior"].as_str() {
        let Some((label, entry)) = sets.iter().find(|(l, _)| l == prior) else {
            return Err(malformed(
                &info_path,
                format!("lists set {} on `{prior}`, which it does not list", chain.last().unwrap_or(&chosen.0)),
            ));
        };
        if chain.contains(label) {
            break;
        }
        chain.push(label.clone());
        at = entry;
    }
    if let Some(bad) = chain.iter().find(|l| !is_label(l)) {
        return Err(malformed(&info_path, format!("names a set `{bad}`, which is no set's label")));
    }
    let oldest = sets.first().is_some_and(|(l, _)| *l == chosen.0);
    Ok(Chosen { stanza, label: chosen.0.clone(), info: chosen.1.clone(), chain, sets: sets.len(), oldest })
}

fn stamp(v: &Value, key: &str) -> Option<OffsetDateTime> {
    v[key].as_i64().and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
}

/// Reads the repository at `repo` and the set `choice` names (the newest by default).
pub(crate) fn read(repo: &Path, choice: &Choice) -> Result<Set, PhysicalError> {
    let malformed =
        |path: &Path, message: String| PhysicalError::Malformed { path: path.display().to_string(), message };
    let Chosen { stanza, label, info: entry, sets, oldest, .. } = choose(repo, choice)?;
    let manifest_path = repo.join(format!("backup/{stanza}/{label}/backup.manifest"));
    let manifest = read_ini(&manifest_path)?;
    let targets = targets::read(&manifest)
        .map_err(|source| PhysicalError::Targets { path: manifest_path.display().to_string(), source })?;
    let text = |section: &str, key: &str| {
        value(&manifest, section, key)
            .and_then(|v| v.as_str().map(str::to_owned))
            .ok_or_else(|| malformed(&manifest_path, format!("has no [{section}] {key}")))
    };
    let version = text("backup:db", "db-version")?;
    let major = crate::pg::major_of_version_text(&version)
        .ok_or_else(|| malformed(&manifest_path, format!("[backup:db] db-version reads `{version}`")))?;
    let system_id = value(&manifest, "backup:db", "db-system-id")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| malformed(&manifest_path, "has no [backup:db] db-system-id".into()))?;
    let (archive_start, archive_stop) =
        (text("backup", "backup-archive-start")?, text("backup", "backup-archive-stop")?);
    for segment in [&archive_start, &archive_stop] {
        if !is_segment_name(segment) {
            return Err(malformed(&manifest_path, format!("names a segment `{segment}`")));
        }
    }
    let backup = |key: &str| value(&manifest, "backup", key);
    let archive_info_path = repo.join(format!("archive/{stanza}/archive.info"));
    let archive_info = read_ini(&archive_info_path)?;
    // The archive of the set's cluster: the newest entry of its system and major.
    let number = section(&archive_info, "db:history")
        .filter(|(_, db)| {
            serde_json::from_str::<Value>(db).is_ok_and(|db| {
                db["db-id"].as_u64() == Some(system_id) && db["db-version"].as_str() == Some(version.as_str())
            })
        })
        .filter_map(|(n, _)| n.parse::<u32>().ok())
        .max()
        .ok_or_else(|| {
            malformed(
                &archive_info_path,
                format!("holds no archive of database system {system_id}, PostgreSQL {version}"),
            )
        })?;
    Ok(Set {
        stanza,
        kind: entry["backup-type"].as_str().unwrap_or_default().to_owned(),
        label,
        major,
        system_id,
        archive_start,
        archive_stop,
        lsn_start: backup("backup-lsn-start").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        lsn_stop: backup("backup-lsn-stop").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        started: backup("backup-timestamp-start")
            .and_then(|v| v.as_i64())
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .or_else(|| stamp(&entry, "backup-timestamp-start")),
        stopped: stamp(&entry, "backup-timestamp-stop"),
        archive_id: format!("{version}-{number}"),
        files: targets.files,
        tablespaces: targets.tablespaces,
        sets,
        oldest,
    })
}

/// The archived segments of `set`'s cluster in the repository, sorted, with the SHA-1 pgBackRest
/// recorded in each file's name.
pub(crate) fn archive(repo: &Path, set: &Set) -> Result<(PathBuf, Vec<Archived>), PhysicalError> {
    let dir = repo.join(format!("archive/{}/{}", set.stanza, set.archive_id));
    let found = list_archive(&dir, None)?;
    Ok((dir, found))
}

/// Lists the segments of a repository's archive folder of one cluster (`archive/<stanza>/<id>`),
/// sorted by name, each with the SHA-1 its file's name records; from the folder of segment
/// `from`'s log on only, when given (a follower's look reads no older folder).
pub(crate) fn list_archive(dir: &Path, from: Option<&str>) -> Result<Vec<Archived>, PhysicalError> {
    let read_err =
        |path: &Path, source: std::io::Error| PhysicalError::Read { path: path.display().to_string(), source };
    let mut found = Vec::new();
    for log in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
        let log = log.map_err(|e| read_err(dir, e))?;
        let name = log.file_name().to_string_lossy().into_owned();
        if name.len() != 16
            || !name.bytes().all(|b| b.is_ascii_hexdigit())
            || from.is_some_and(|from| name.as_str() < from.get(..16).unwrap_or(from))
            || !log.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        for file in std::fs::read_dir(log.path()).map_err(|e| read_err(&log.path(), e))? {
            let file = file.map_err(|e| read_err(&log.path(), e))?;
            let file_name = file.file_name().to_string_lossy().into_owned();
            if let Some((segment, sha1)) = segment_of(&file_name).filter(|(s, _)| s.starts_with(&name))
                && file.file_type().is_ok_and(|t| t.is_file())
            {
                found.push(Archived { name: segment.to_owned(), path: file.path(), sha1: Some(sha1.to_owned()) });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.dedup_by(|a, b| a.name == b.name);
    Ok(found)
}

/// The segment and SHA-1 a file of the archive holds: `<24 hex>-<40 hex>[.gz|.zst|.lz4|.bz2]`
/// (`.backup` and `.history` files, or any other name, are not segments).
pub(crate) fn segment_of(file_name: &str) -> Option<(&str, &str)> {
    let (segment, rest) = (file_name.get(..24)?, file_name.get(24..)?);
    let rest = rest.strip_prefix('-')?;
    let (sha1, extension) = (rest.get(..40)?, rest.get(40..)?);
    let lower_hex = sha1.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (is_segment_name(segment) && lower_hex && ["", ".gz", ".zst", ".lz4", ".bz2"].contains(&extension))
        .then_some((segment, sha1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"[backup]
backup-archive-start="000000010000000000000004"
backup-archive-stop="000000010000000000000004"
backup-lsn-start="0/4000028"
backup-lsn-stop="0/4000138"
backup-timestamp-start=1795000000

[backup:db]
db-id=1
db-system-id=7441234567890123456
db-version="17"

[backup:target]
pg_data={"path":"/var/lib/pgdrill/data","type":"path"}

[target:file]
pg_data/PG_VERSION={"checksum":"a","size":3,"timestamp":1}
pg_data/global/pg_control={"checksum":"b","size":8192,"timestamp":1}

[target:path]
pg_data={}
pg_data/global={}
"#;

    #[test]
    fn archive_file_names_carry_their_segment_and_sha1() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            segment_of(&format!("000000010000000000000004-{sha1}.gz")),
            Some(("000000010000000000000004", sha1))
        );
        assert_eq!(
            segment_of(&format!("000000010000000000000004-{sha1}")).map(|s| s.0),
            Some("000000010000000000000004")
        );
        for other in [
            "000000010000000000000004.00000028.backup".to_owned(),
            "00000002.history".to_owned(),
            format!("000000010000000000000004-{}.gz", sha1.to_uppercase()),
            format!("000000010000000000000004-{sha1}.rar"),
            format!("../00000001000000000000-{sha1}"),
        ] {
            assert_eq!(segment_of(&other), None, "{other}");
        }
    }

    fn repo_with(info: &str) -> tempfile::TempDir {
        let repo = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = repo.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("backup/main/backup.info", info);
        for label in ["20261120-010000F", "20261121-010000F_20261121-020000I"] {
            write(&format!("backup/main/{label}/backup.manifest"), MANIFEST);
        }
        write("archive/main/archive.info", "[db:history]\n1={\"db-id\":7441234567890123456,\"db-version\":\"17\"}\n");
        repo
    }

    const INFO: &str = "[backup:current]\n\
        20261120-010000F={\"backup-timestamp-start\":1795000000,\"backup-timestamp-stop\":1795000100,\"backup-type\":\"full\"}\n\
        20261121-010000F_20261121-020000I={\"backup-timestamp-start\":1795090000,\"backup-timestamp-stop\":1795090100,\"backup-type\":\"incr\"}\n";

    #[test]
    fn the_newest_set_or_the_one_named_or_the_newest_before_a_time() {
        let repo = repo_with(INFO);
        let chosen =
            |choice: Choice| read(repo.path(), &choice).map(|s| s.label).map_err(|e| crate::error::error_chain(&e));
        assert_eq!(chosen(Choice::default()), Ok("20261121-010000F_20261121-020000I".into()));
        assert_eq!(
            chosen(Choice { set: Some("20261120-010000F"), ..Choice::default() }),
            Ok("20261120-010000F".into())
        );
        let before = OffsetDateTime::from_unix_timestamp(1795050000).unwrap();
        assert_eq!(chosen(Choice { before: Some(before), ..Choice::default() }), Ok("20261120-010000F".into()));
        // Before every set's end: the oldest, which the restore's preflight refuses.
        let early = OffsetDateTime::from_unix_timestamp(1794000000).unwrap();
        assert_eq!(chosen(Choice { before: Some(early), ..Choice::default() }), Ok("20261120-010000F".into()));
        let oldest = read(repo.path(), &Choice { before: Some(early), ..Choice::default() }).unwrap();
        assert_eq!((oldest.sets, oldest.oldest), (2, true));
        assert!(
            chosen(Choice { set: Some("nope"), ..Choice::default() })
                .unwrap_err()
                .contains("lists no backup set `nope`")
        );
        assert!(
            chosen(Choice { stanza: Some("other"), ..Choice::default() })
                .unwrap_err()
                .contains("holds no stanza `other`")
        );
        let set = read(repo.path(), &Choice::default()).unwrap();
        assert_eq!((set.major, set.system_id, set.archive_id.as_str()), (17, 7_441_234_567_890_123_456, "17-1"));
        assert_eq!(set.label().unwrap().start_segment, "000000010000000000000004");
        assert_eq!((set.lsn_stop.as_str(), set.oldest), ("0/4000138", false));
        // An encrypted repository's files are not text.
        std::fs::write(repo.path().join("backup/main/backup.info"), b"Salted__\x01\x02").unwrap();
        assert!(chosen(Choice::default()).unwrap_err().contains("encrypted"));
    }
}
