//! Staging a base backup: its data directory unpacked (tar, by `unpack`) or copied (plain) into
//! a private folder of the drill, with the WAL it carries itself in `pg_wal` (the archive's
//! segments are given as recovery reads them: `feed`). A backup is hostile input: only files and
//! folders are restored, never a link or a device, and nothing is written outside the folder.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::source::physical::{BaseBackup, Layout, manifest};
use crate::tree::Ids;
use digest::Expected;
use unpack::{Summed, unpack};

mod digest;
mod unpack;

#[derive(Debug, thiserror::Error)]
pub(crate) enum StageError {
    /// A file or folder cannot be read, written or made.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file of the backup cannot be opened, or its compression read.
    #[error("cannot read `{path}`")]
    Open {
        path: String,
        #[source]
        source: crate::source::read::OpenError,
    },
    /// The backup holds something other than files and folders.
    #[error(
        "the base backup holds {what} `{path}`: pgdrill restores only files and folders (a backup's links could reach outside its folder){hint}"
    )]
    NotAFile { what: &'static str, path: String, hint: &'static str },
    /// The backup's archive names a file twice.
    #[error(
        "the base backup's archive holds `{path}` twice: pgdrill restores each file once (which copy a server would read is not for a drill to guess)"
    )]
    Twice { path: String },
    /// A tablespace the scenario names that the backup cannot take.
    #[error("`[source] tablespaces` {oid}: {problem}")]
    Tablespace { oid: u32, problem: String },
    /// A member of a chain that cannot be staged.
    #[error("`{member}` of the chain")]
    Member {
        member: String,
        #[source]
        source: Box<StageError>,
    },
    /// A file unpacked whose content is not what the backup's manifest says.
    #[error(
        "the base backup does not match its manifest: `{path}` is not the file it lists ({algorithm} checksum mismatch, summed as it was unpacked): the backup is damaged, or was altered after it was taken"
    )]
    Checksum { path: String, algorithm: String },
    /// A tablespace pgBackRest did not restore where it was told.
    #[error("tablespace {oid} of the pgBackRest set: {problem}")]
    SetTablespace { oid: u32, problem: &'static str },
    /// An archived segment is not the segment its name says, or not of this backup's system.
    #[error("the WAL archive's segment {name} {problem}")]
    Segment { name: String, problem: String },
    /// An archived segment of an encrypted repository that pgBackRest could not decrypt.
    #[error("the WAL archive's segment {name} cannot be decrypted")]
    Undecrypted {
        name: String,
        #[source]
        source: Box<super::PrepareError>,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StageError + 'a {
    move |source| StageError::Io { action, path: path.display().to_string(), source }
}

/// What staging put in place.
#[derive(Debug, Clone, Default)]
pub(crate) struct Staged {
    /// The system identifier in the restored `global/pg_control`.
    pub system_id: u64,
    /// Whether every file the manifest gives a checksum was summed as it was unpacked, and
    /// matched (pg_verifybackup need not read them again).
    pub checksums_read: bool,
}

/// Stages `backup` into `data`, an empty folder: its data directory and the WAL it carries
/// itself (the archive's segments are given as recovery reads them, by [`super::feed`]);
/// [`give`] then hands it to the server's user.
pub(crate) fn stage(
    backup: &BaseBackup,
    data: &Path,
    tablespaces: &BTreeMap<u32, PathBuf>,
) -> Result<Staged, StageError> {
    use std::os::unix::fs::DirBuilderExt;
    let mut checksums_read = false;
    match &backup.layout {
        Layout::Tar { base, wal, tablespaces } => {
            // The manifest read once: its checksums judge the files as they are unpacked, and the
            // same bytes are the copy pg_verifybackup reads (below).
            let manifest = match &backup.manifest {
                Some((manifest, _)) => Some(std::fs::read(manifest).map_err(io("read", manifest))?),
                None => None,
            };
            let expected = manifest.as_deref().and_then(expected);
            let mut sums = unpack(base, data, expected.as_ref().map(|expected| Summed { expected, prefix: "" }))?;
            let pg_wal = data.join("pg_wal");
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&pg_wal).map_err(io("create", &pg_wal))?;
            if let Some(wal) = wal {
                unpack(wal, &pg_wal, None)?;
            }
            // Each tablespace in the data directory itself (an in-place tablespace: a folder in
            // pg_tblspc, not a link to where the source kept it), never outside the staging
            // folder; `tablespace_map`, which names the source's places, goes before the
            // server starts (see `settle`).
            for (oid, tar) in tablespaces {
                let into = data.join("pg_tblspc").join(oid.to_string());
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&into).map_err(io("create", &into))?;
                let prefix = format!("pg_tblspc/{oid}/");
                let summed = expected.as_ref().map(|expected| Summed { expected, prefix: &prefix });
                sums.extend(unpack(tar, &into, summed)?);
            }
            checksums_read = match &expected {
                Some(expected) => expected.judge(&sums)?,
                None => false,
            };
            // pg_verifybackup finds the manifest in the data directory, as a plain backup has it:
            // written after the tars, over any `backup_manifest` one of them held.
            if let Some(manifest) = &manifest {
                let to = data.join("backup_manifest");
                std::fs::write(&to, manifest).map_err(io("write", &to))?;
            }
        }
        Layout::Plain => copy_plain(&backup.dir, data, tablespaces)?,
        // pgBackRest restored it already, or pg_combinebackup combined it (in the toolbox).
        Layout::PgBackRest(_) | Layout::Chain(_) => {
            let pg_wal = data.join("pg_wal");
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&pg_wal).map_err(io("create", &pg_wal))?;
        }
    }
    let control = data.join("global/pg_control");
    let system_id = read_system_id(&control).map_err(io("read", &control))?;
    Ok(Staged { system_id, checksums_read })
}

/// The checksums a manifest gives the files: None when one has an algorithm pgdrill does not
/// compute, or the list cannot be read (pg_verifybackup then reads every file, and says what is
/// wrong with the manifest).
fn expected(bytes: &[u8]) -> Option<Expected> {
    std::str::from_utf8(bytes).ok().and_then(|text| manifest::listed(text).ok()).and_then(Expected::new)
}

/// Makes a staged data directory ready for its server, once PostgreSQL's tools have read it:
/// without `tablespace_map` (its tablespaces are folders in `pg_tblspc` already: with the map,
/// the server would replace them with links to the places the source kept them).
pub(crate) fn settle(data: &Path) -> Result<(), StageError> {
    let map = data.join("tablespace_map");
    match std::fs::remove_file(&map) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &map)(e)),
        _ => Ok(()),
    }
}

/// `ControlFileData` starts with the system identifier, in every release.
fn read_system_id(control: &Path) -> std::io::Result<u64> {
    let mut head = [0u8; 8];
    std::fs::File::open(control)?.read_exact(&mut head)?;
    Ok(u64::from_le_bytes(head))
}

/// The error of a backup holding `what` (a link, a special file) at `path`.
fn not_a_file(what: &'static str, path: &Path) -> StageError {
    let shown = path.display().to_string();
    let tablespace = shown.trim_start_matches("./").starts_with("pg_tblspc/");
    StageError::NotAFile {
        what,
        path: shown,
        hint: if tablespace {
            " (hint: it is a tablespace; pgdrill restores a tar-format backup's `<oid>.tar` tablespaces, or a plain one's named in `[source] tablespaces`, a chain member's as `\"<member>/<oid>\" = \"<folder>\"`)"
        } else {
            ""
        },
    }
}

/// Copies a plain-format backup's folder: files and folders only; a tablespace's link in
/// `pg_tblspc` becomes a folder there, with the content of the folder `tablespaces` names for it.
fn copy_plain(from: &Path, to: &Path, tablespaces: &BTreeMap<u32, PathBuf>) -> Result<(), StageError> {
    let links: Vec<u32> = match std::fs::read_dir(from.join("pg_tblspc")) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    if let Some(oid) = tablespaces.keys().find(|oid| !links.contains(oid)) {
        return Err(StageError::Tablespace { oid: *oid, problem: "the backup has no link for it in pg_tblspc".into() });
    }
    copy_tree(from, to, Some((from, tablespaces)))
}

/// Copies the folder `from` into `to`: files and folders only; in a base backup (`backup`: its
/// root and its tablespaces), a tablespace's link is copied from the folder named for it.
fn copy_tree(from: &Path, to: &Path, backup: Option<(&Path, &BTreeMap<u32, PathBuf>)>) -> Result<(), StageError> {
    let mut folders = vec![(from.to_owned(), to.to_owned())];
    while let Some((source, target)) = folders.pop() {
        if target != to {
            std::fs::create_dir(&target).map_err(io("create", &target))?;
        }
        for entry in std::fs::read_dir(&source).map_err(io("list", &source))? {
            let entry = entry.map_err(io("list", &source))?;
            let kind = entry.file_type().map_err(io("read", &entry.path()))?;
            let pair = (entry.path(), target.join(entry.file_name()));
            if kind.is_dir() {
                folders.push(pair);
            } else if kind.is_file() {
                std::fs::copy(&pair.0, &pair.1).map_err(io("copy", &pair.0))?;
            } else if let Some(folder) = backup.and_then(|(root, named)| tablespace_of(root, &pair.0, named)) {
                if !folder.is_dir() {
                    let oid = pair.1.file_name().and_then(|n| n.to_str()?.parse().ok()).unwrap_or(0);
                    let problem = format!("`{}` is not a folder", folder.display());
                    return Err(StageError::Tablespace { oid, problem });
                }
                std::fs::create_dir(&pair.1).map_err(io("create", &pair.1))?;
                copy_tree(folder, &pair.1, None)?;
            } else {
                let relative = pair.0.strip_prefix(from).unwrap_or(&pair.0).to_owned();
                return Err(not_a_file(if kind.is_symlink() { "a link" } else { "a special file" }, &relative));
            }
        }
    }
    Ok(())
}

/// The folder the scenario names for the tablespace whose link in `root`'s `pg_tblspc` is `link`.
fn tablespace_of<'a>(root: &Path, link: &Path, named: &'a BTreeMap<u32, PathBuf>) -> Option<&'a PathBuf> {
    let relative = link.strip_prefix(root).ok()?;
    let mut parts = relative.components();
    (parts.next()?.as_os_str() == "pg_tblspc").then_some(())?;
    let oid: u32 = parts.next()?.as_os_str().to_str()?.parse().ok()?;
    parts.next().is_none().then(|| named.get(&oid)).flatten()
}

/// Gives everything under `root` to `owner`, folders 0700 and files 0600 (as PostgreSQL wants its
/// data directory, whatever modes the backup carried).
pub(crate) fn give(root: &Path, owner: Ids) -> Result<(), StageError> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack: Vec<PathBuf> = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        owner.own(&path).map_err(io("give", &path))?;
        let meta = std::fs::symlink_metadata(&path).map_err(io("read", &path))?;
        let mode = if meta.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(io("set the mode of", &path))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io("list", &path))? {
                stack.push(entry.map_err(io("list", &path))?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn tar_with(entries: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> tempfile::NamedTempFile {
        let mut builder = tar::Builder::new(Vec::new());
        entries(&mut builder);
        let bytes = builder.into_inner().unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        file
    }

    fn file_entry(builder: &mut tar::Builder<Vec<u8>>, path: &str, body: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, body).unwrap();
    }

    fn link_entry(builder: &mut tar::Builder<Vec<u8>>, path: &str, to: &str) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, path, to).unwrap();
    }

    #[test]
    fn only_files_and_folders_are_unpacked_and_nothing_outside() {
        let dir = tempfile::tempdir().unwrap();
        let good = tar_with(|b| file_entry(b, "global/pg_control", b"12345678"));
        unpack(good.path(), dir.path(), None).unwrap();
        assert_eq!(std::fs::read(dir.path().join("global/pg_control")).unwrap(), b"12345678");

        // A link named pg_wal would send pg_wal.tar and the archive's segments elsewhere.
        let linked = tar_with(|b| link_entry(b, "pg_wal", "/etc"));
        let error = unpack(linked.path(), dir.path(), None).unwrap_err().to_string();
        assert!(error.contains("holds a link `pg_wal`"), "{error}");
        assert!(!dir.path().join("pg_wal").exists());

        let tablespace = tar_with(|b| link_entry(b, "pg_tblspc/16385", "/srv/space"));
        let error = unpack(tablespace.path(), dir.path(), None).unwrap_err().to_string();
        assert!(error.contains("it is a tablespace"), "{error}");

        // tar's own builder refuses `..`; a hostile archive is written by hand.
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        header.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"../escape.tx");
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(&[b'x'; 512]);
        bytes.extend_from_slice(&[0; 1024]);
        let escaping = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(escaping.path(), &bytes).unwrap();
        let inner = dir.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        let error = unpack(escaping.path(), &inner, None).unwrap_err().to_string();
        assert!(error.contains("a path outside its folder"), "{error}");
        assert!(!dir.path().join("escape.tx").exists());
    }

    #[test]
    fn a_plain_backup_with_a_link_is_refused() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir(from.path().join("global")).unwrap();
        std::fs::write(from.path().join("global/pg_control"), b"12345678").unwrap();
        let to = tempfile::tempdir().unwrap();
        let copy = to.path().join("a");
        std::fs::create_dir(&copy).unwrap();
        copy_plain(from.path(), &copy, &BTreeMap::new()).unwrap();
        assert!(copy.join("global/pg_control").is_file());
        std::os::unix::fs::symlink("/etc/hostname", from.path().join("global/secret")).unwrap();
        let again = to.path().join("b");
        std::fs::create_dir(&again).unwrap();
        let error = copy_plain(from.path(), &again, &BTreeMap::new()).unwrap_err().to_string();
        assert!(error.contains("holds a link `global/secret`"), "{error}");
    }

    #[test]
    fn a_plain_backups_tablespace_is_copied_from_the_folder_the_scenario_names_into_pg_tblspc() {
        let from = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(elsewhere.path().join("PG_17_202406281/5")).unwrap();
        std::fs::write(elsewhere.path().join("PG_17_202406281/5/16386"), b"page").unwrap();
        std::fs::create_dir(from.path().join("pg_tblspc")).unwrap();
        // Where the source's pg_basebackup put it; pgdrill never follows the link itself.
        std::os::unix::fs::symlink("/etc", from.path().join("pg_tblspc/16384")).unwrap();
        let to = tempfile::tempdir().unwrap();
        let named: BTreeMap<u32, PathBuf> = [(16384, elsewhere.path().to_owned())].into();
        let copy = to.path().join("a");
        std::fs::create_dir(&copy).unwrap();
        copy_plain(from.path(), &copy, &named).unwrap();
        let staged = copy.join("pg_tblspc/16384");
        assert!(std::fs::symlink_metadata(&staged).unwrap().is_dir(), "a folder, not a link");
        assert_eq!(std::fs::read(staged.join("PG_17_202406281/5/16386")).unwrap(), b"page");
        let other: BTreeMap<u32, PathBuf> = [(16390, elsewhere.path().to_owned())].into();
        let again = to.path().join("b");
        std::fs::create_dir(&again).unwrap();
        let error = copy_plain(from.path(), &again, &other).unwrap_err().to_string();
        assert!(error.contains("`[source] tablespaces` 16390: the backup has no link for it in pg_tblspc"), "{error}");
        let data = to.path().join("settled");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("tablespace_map"), "16384 /etc\n").unwrap();
        settle(&data).unwrap();
        assert!(!data.join("tablespace_map").exists(), "the source's places are never the server's");
    }
}
