//! A chain of PostgreSQL 17's incremental backups (`pg_basebackup --incremental`): a folder
//! holding a full backup and the incremental backups taken from it and from each other, each a
//! pg_basebackup folder of its own (tar or plain, with its `backup_manifest`). An incremental
//! backup's `backup_label` names the backup it was taken from by where that one started
//! (`INCREMENTAL FROM LSN`, `INCREMENTAL FROM TLI`): the chain that recovers to the newest (or
//! the one the scenario names as `set`) is walked back to its full backup from those links,
//! before anything starts. A member missing from the chain, or one of another cluster, fails
//! here naming it; `pg_combinebackup` checks that the chain links up, not that each member is
//! intact (`pg_verifybackup` does that, member by member: `restore::physical::combine`).

use std::path::Path;

use super::{BaseBackup, PhysicalError, pgbackrest};

/// The members of a chain, the full backup first and the one recovered last.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    /// Each member's folder name in the chain's folder, and what it is.
    pub members: Vec<(String, BaseBackup)>,
    /// The backups of the folder that are not on this chain (another chain, an older one).
    pub left_out: Vec<String>,
}

impl Chain {
    /// The member recovered last.
    pub(crate) fn last(&self) -> &BaseBackup {
        &self.members.last().expect("a chain has a member").1
    }

    /// The chain in words: `full` then incremental `incr1`, `incr2`.
    pub(crate) fn describe(&self) -> String {
        let names: Vec<String> = self.members.iter().map(|(name, b)| format!("`{name}` ({})", b.format())).collect();
        let mut text = format!("full {}", names[0]);
        if names.len() > 1 {
            text.push_str(&format!(" then incremental {}", names[1..].join(", ")));
        }
        if !self.left_out.is_empty() {
            let left: Vec<String> = self.left_out.iter().map(|n| format!("`{n}`")).collect();
            text.push_str(&format!(" (not on this chain: {})", left.join(", ")));
        }
        text
    }
}

/// Why a folder of backups is not a chain that recovers.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChainError {
    /// A member's predecessor is not in the folder.
    #[error(
        "`{member}` is an incremental backup taken from the backup that started at {lsn} on timeline {timeline} (its backup_label's INCREMENTAL FROM), and no backup in `{dir}` starts there: the chain is broken (hint: put that backup back in the folder; its backups: {present})"
    )]
    Broken { member: String, lsn: String, timeline: u32, dir: String, present: String },
    /// A backup of another cluster in the chain's folder.
    #[error(
        "`{member}` is a backup of database system {system}, and `{first}` of {expected}: a chain's folder holds one cluster's backups (hint: move `{member}` out of `{dir}`)"
    )]
    Foreign { member: String, system: u64, first: String, expected: u64, dir: String },
    /// A member without its manifest.
    #[error(
        "`{member}` has no backup_manifest: a chain's members are combined and verified by their manifests (pg_basebackup writes one unless told `--no-manifest`)"
    )]
    NoManifest { member: String },
    /// A member of another major.
    #[error("`{member}` is a backup of PostgreSQL {major}, and `{first}` of {expected}: a chain is one major's")]
    Major { member: String, major: u32, first: String, expected: u32 },
    /// The member the scenario names is not in the folder.
    #[error("`[source] set = \"{name}\"`: `{dir}` holds no backup `{name}` (its backups: {present})")]
    Unknown { name: String, dir: String, present: String },
}

/// The member backups directly in `dir`, by name: pg_basebackup folders, tar or plain.
fn backups_in(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(String, std::path::PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(_, path)| super::tar_files(path).is_some() || super::is_plain(path))
        .collect();
    found.sort();
    found
}

/// Whether `dir` holds a chain: it is no backup itself, and one of its folders is an
/// incremental backup.
pub(crate) fn is_chain(dir: &Path) -> bool {
    if super::tar_files(dir).is_some() || super::is_plain(dir) || pgbackrest::is_repository(dir) {
        return false;
    }
    backups_in(dir).iter().any(|(_, path)| {
        super::inspect(path, &pgbackrest::Choice::default()).is_ok_and(|b| b.label.incremental_from.is_some())
    })
}

/// Reads the chain in `dir` that recovers to the member `set` names (the one that started last
/// by default), walked back to its full backup.
pub(crate) fn read(dir: &Path, set: Option<&str>) -> Result<Chain, PhysicalError> {
    let shown = dir.display().to_string();
    let mut backups = Vec::new();
    for (name, path) in backups_in(dir) {
        backups.push((name, super::inspect(&path, &pgbackrest::Choice::default())?));
    }
    let present = backups.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let start = |b: &BaseBackup| super::wal::parse_lsn(&b.label.start_lsn).unwrap_or_default();
    let last = match set {
        Some(name) => backups.iter().position(|(n, _)| n == name).ok_or_else(|| ChainError::Unknown {
            name: name.to_owned(),
            dir: shown.clone(),
            present: present.clone(),
        })?,
        None => (0..backups.len()).max_by_key(|&i| (start(&backups[i].1), backups[i].1.label.timeline)).unwrap_or(0),
    };
    // One cluster's backups: a foreign one is named whether or not it would be on the chain.
    let system = |b: &BaseBackup| b.manifest.as_ref().and_then(|(_, m)| m.system_id);
    if let Some(ours) = system(&backups[last].1)
        && let Some((member, theirs)) =
            backups.iter().find_map(|(n, b)| system(b).filter(|s| *s != ours).map(|s| (n, s)))
    {
        return Err(ChainError::Foreign {
            member: member.clone(),
            system: theirs,
            first: backups[last].0.clone(),
            expected: ours,
            dir: shown,
        }
        .into());
    }
    let mut chain = vec![last];
    while let Some((lsn, timeline)) = backups[*chain.last().expect("not empty")].1.label.incremental_from {
        let member = &backups[*chain.last().expect("not empty")].0;
        let from = backups.iter().position(|(_, b)| start(b) == lsn && b.label.timeline == timeline);
        let Some(from) = from.filter(|f| !chain.contains(f)) else {
            return Err(ChainError::Broken {
                member: member.clone(),
                lsn: super::wal::format_lsn(lsn),
                timeline,
                dir: shown,
                present,
            }
            .into());
        };
        chain.push(from);
    }
    chain.reverse();
    let left_out = (0..backups.len()).filter(|i| !chain.contains(i)).map(|i| backups[i].0.clone()).collect();
    let members: Vec<(String, BaseBackup)> = chain.iter().map(|&i| backups[i].clone()).collect();
    judge(&members)?;
    Ok(Chain { members, left_out })
}

/// Every member has its manifest, and all are of the first one's major.
fn judge(members: &[(String, BaseBackup)]) -> Result<(), ChainError> {
    let (first, full) = &members[0];
    for (name, member) in members {
        if member.manifest.is_none() {
            return Err(ChainError::NoManifest { member: name.clone() });
        }
        if member.major != full.major {
            return Err(ChainError::Major {
                member: name.clone(),
                major: member.major,
                first: first.clone(),
                expected: full.major,
            });
        }
    }
    Ok(())
}

impl From<ChainError> for PhysicalError {
    fn from(error: ChainError) -> Self {
        PhysicalError::Chain(Box::new(error))
    }
}
