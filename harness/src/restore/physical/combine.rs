//! A chain of incremental backups combined into the data directory (PostgreSQL 17's
//! `pg_combinebackup`, in the toolbox of the chain's major): the members in tar format unpacked
//! into the drill's work folder first (`pg_combinebackup` reads plain folders only), and those in
//! plain format with a tablespace copied there (their links lead where the source put it), each
//! tablespace in place in `pg_tblspc/<oid>` (which pg_combinebackup combines into the same place
//! of the data directory: an in-place tablespace, as a single backup's), every member
//! checked against its own manifest by `pg_verifybackup` (the chain's links were checked in
//! `source::physical::chain`; `pg_combinebackup` checks them again, not that each member is
//! intact), then combined. When every member was unpacked here (throwaway copies, on one mount
//! with the output), `pg_combinebackup` links (PostgreSQL 18, `--link`) or clones
//! (`--copy-file-range`) their files instead of copying them; members read from the backup's
//! own folder are copied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::stage::{self, StageError};
use super::{PrepareError, blocking};
use crate::provision::toolbox::{self, Toolbox};
use crate::secret::Redactor;
use crate::source::physical::chain::Chain;
use crate::source::physical::{BaseBackup, Layout};

/// Where a chain's members in tar format are unpacked, in the drill's work folder.
const MEMBERS: &str = "members";

/// How pg_combinebackup made the data directory, in the verify summary's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combined {
    /// Files linked from the unpacked members (`--link`).
    Linked,
    /// Files cloned or copied by the kernel (`--copy-file-range`).
    Cloned,
    /// Files copied.
    Copied,
}

impl Combined {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Combined::Linked => "pg_combinebackup --link (the members unpacked here, linked into it)",
            Combined::Cloned => "pg_combinebackup --copy-file-range (the members unpacked here)",
            Combined::Copied => "pg_combinebackup",
        }
    }
}

/// The tablespaces of a chain's plain members, by member and OID: the folder of each.
pub(crate) type MemberTablespaces = BTreeMap<String, BTreeMap<u32, PathBuf>>;

/// Whether pgdrill stages `member` in its work folder before pg_combinebackup reads it: in tar
/// format (pg_combinebackup reads folders only), or plain with a tablespace (its link in
/// `pg_tblspc` leads to where the source's `--tablespace-mapping` put it, which the toolbox
/// never sees: the member is copied with the tablespace in place, from the folder the scenario
/// names for it).
fn staged_here(member: &BaseBackup) -> bool {
    match member.layout {
        Layout::Tar { .. } => true,
        Layout::Plain => std::fs::read_dir(member.dir.join("pg_tblspc"))
            .is_ok_and(|entries| entries.flatten().any(|e| e.file_type().is_ok_and(|t| t.is_symlink()))),
        _ => false,
    }
}

/// Stages the chain's members that pg_combinebackup cannot read where they are into
/// `work`/members/<name> (see [`staged_here`]), each with its pg_wal, its manifest and its
/// tablespaces in `pg_tblspc/<oid>`, as pg_basebackup's plain format lays them out with
/// in-place tablespaces.
pub(crate) fn unpack(chain: &Chain, work: &Path, tablespaces: &MemberTablespaces) -> Result<(), StageError> {
    use std::os::unix::fs::DirBuilderExt;
    let present: Vec<&String> = chain.members.iter().map(|(name, _)| name).chain(&chain.left_out).collect();
    if let Some(unknown) = tablespaces.keys().find(|name| !present.contains(name)) {
        let oid = tablespaces[unknown].keys().next().copied().unwrap_or_default();
        let problem = format!("the chain's folder holds no backup `{unknown}` (`\"{unknown}/{oid}\"`)");
        return Err(StageError::Tablespace { oid, problem });
    }
    for (name, member) in &chain.members {
        let in_member = |source| StageError::Member { member: name.clone(), source: Box::new(source) };
        if let Some(oid) = tablespaces.get(name).and_then(|named| named.keys().next()) {
            let problem = match member.layout {
                Layout::Tar { .. } => Some("the backup is in tar format, and carries its tablespaces as `<oid>.tar`"),
                _ if !staged_here(member) => Some("the backup has no link for it in pg_tblspc"),
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(in_member(StageError::Tablespace { oid: *oid, problem: problem.into() }));
            }
        }
        if !staged_here(member) {
            continue;
        }
        let into = work.join(MEMBERS).join(name);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&into).map_err(|source| StageError::Io {
            action: "create",
            path: into.display().to_string(),
            source,
        })?;
        let named = tablespaces.get(name).cloned().unwrap_or_default();
        stage::stage(member, &into, &named).map_err(in_member)?;
    }
    Ok(())
}

/// Where the toolbox sees `member` of the chain.
fn inside(name: &str, member: &BaseBackup) -> String {
    match staged_here(member) {
        true => format!("{}/{MEMBERS}/{name}", toolbox::WORK),
        false => format!("{}/{name}", toolbox::BACKUP),
    }
}

/// Verifies every member of `chain` and combines them into the data directory (`work`/data,
/// empty): see the module's documentation.
pub(crate) async fn combine(
    tools: &Toolbox,
    chain: &Chain,
    work: &Path,
    major: u32,
    redactor: &Redactor,
) -> Result<Combined, PrepareError> {
    let owner = tools.user;
    let (members, data) = (work.join(MEMBERS), work.join("data"));
    blocking(move || {
        if members.exists() {
            stage::give(&members, owner)?;
        }
        Ok(stage::give(&data, owner)?)
    })
    .await?;
    for (name, member) in &chain.members {
        let mut args = vec!["--quiet".to_owned()];
        // The WAL a member needs is checked when it carries it; the combined data directory's
        // (the last member's) is checked again there.
        if !member.carries_wal() {
            args.push("--no-parse-wal".into());
        }
        args.push(inside(name, member));
        let (output, _) = tools.run("pg_verifybackup", &args, redactor).await?;
        if !output.success() {
            return Err(PrepareError::Member {
                member: name.clone(),
                status: output.status,
                problems: super::verify::verifybackup_problems(&output.stderr),
            });
        }
    }
    let unpacked_here = chain.members.iter().all(|(_, m)| staged_here(m));
    let how = match (unpacked_here, major) {
        (true, 18..) => Combined::Linked,
        (true, _) => Combined::Cloned,
        (false, _) => Combined::Copied,
    };
    match run(tools, chain, how, redactor).await {
        // A file system that neither links nor clones here: copied (pg_combinebackup emptied the
        // data directory it had begun).
        Err(_) if how != Combined::Copied => {
            run(tools, chain, Combined::Copied, redactor).await.map(|()| Combined::Copied)
        }
        ran => ran.map(|()| how),
    }
}

/// Runs pg_combinebackup over the chain's members into the data directory, as `how` says.
async fn run(tools: &Toolbox, chain: &Chain, how: Combined, redactor: &Redactor) -> Result<(), PrepareError> {
    let mut args: Vec<String> = chain.members.iter().map(|(name, member)| inside(name, member)).collect();
    match how {
        // The output on the work folder's mount, where the members are: a link or a clone
        // cannot cross mounts.
        Combined::Linked => args.extend(["--link".into(), "-o".into(), format!("{}/data", toolbox::WORK)]),
        Combined::Cloned => args.extend(["--copy-file-range".into(), "-o".into(), format!("{}/data", toolbox::WORK)]),
        Combined::Copied => args.extend(["-o".into(), toolbox::DATA.into()]),
    }
    let (output, stdout) = tools.run("pg_combinebackup", &args, redactor).await?;
    match output.success() {
        true => Ok(()),
        false => Err(PrepareError::Combine {
            status: output.status,
            stderr: format!("{}{}", stdout.trim(), output.stderr.trim()),
        }),
    }
}
