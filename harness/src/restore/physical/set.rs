//! A pgBackRest set restored into the (empty) data directory by pgBackRest itself, in the
//! toolbox: no configuration file (the image's is not the repository's), the repository
//! read-only, `--type=none` (no recovery settings: pgdrill writes its own), locks in the
//! toolbox's `/tmp`. pgBackRest checks every file it restores against the set's manifest (whose
//! names `source::physical::pgbackrest` checked first).
//!
//! A set's tablespaces are restored inside the drill's folder, never where the manifest says the
//! source kept them: pgBackRest restores each at the place `--tablespace-map=<oid>=<place>` names
//! (never inside the data directory: it refuses that), here a folder of the drill's work folder
//! the toolbox sees at [`toolbox::WORK`], and links `pg_tblspc/<oid>` to it; pgdrill then puts
//! the folder itself in the link's place, an in-place tablespace as a tar-format base backup's
//! (`stage`), which the server reads with `allow_in_place_tablespaces`.

use std::path::{Path, PathBuf};

use super::encrypted;
use super::stage::{self, StageError};
use super::{PrepareError, blocking};
use crate::provision::toolbox::{self, Toolbox};
use crate::provision::tools::Invocation;
use crate::secret::Redactor;
use crate::source::physical::pgbackrest::Set;

/// Where, in the drill's work folder, pgBackRest restores a set's tablespaces.
const TABLESPACES: &str = "tablespaces";

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StageError + 'a {
    move |source| StageError::Io { action, path: path.display().to_string(), source }
}

/// The empty folder (0700) of the drill's work folder `work` that pgBackRest restores the
/// tablespaces of `set` into, when it has any: the toolbox sees it at [`toolbox::WORK`].
pub(crate) fn tablespace_folder(set: &Set, work: &Path) -> Result<Option<PathBuf>, StageError> {
    use std::os::unix::fs::DirBuilderExt;
    if set.tablespaces.is_empty() {
        return Ok(None);
    }
    let folder = work.join(TABLESPACES);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&folder).map_err(io("create", &folder))?;
    Ok(Some(folder))
}

/// What [`restore`] restores, and with what.
pub(crate) struct Restore<'a> {
    pub set: &'a Set,
    /// The data directory, empty.
    pub data: &'a Path,
    /// [`tablespace_folder`]'s, when the set has tablespaces.
    pub tablespaces: Option<&'a Path>,
    pub encrypted: Option<&'a encrypted::Repository>,
}

/// pgBackRest restores the set into the data directory, its tablespaces into
/// `pg_tblspc/<oid>` (see the module's documentation).
pub(crate) async fn restore(tools: &Toolbox, what: Restore<'_>, redactor: &Redactor) -> Result<(), PrepareError> {
    let (set, owner) = (what.set, tools.user);
    let given: Vec<PathBuf> = [Some(what.data), what.tablespaces].into_iter().flatten().map(Path::to_owned).collect();
    blocking(move || given.iter().try_for_each(|folder| stage::give(folder, owner)).map_err(PrepareError::from))
        .await?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let mut args: Vec<String> = [
        "--no-config".to_owned(),
        format!("--stanza={}", set.stanza),
        format!("--repo1-path={}", toolbox::BACKUP),
        format!("--pg1-path={}", toolbox::DATA),
        "--log-level-file=off".to_owned(),
        "--log-level-console=warn".to_owned(),
        "--lock-path=/tmp/pgbackrest".to_owned(),
        format!("--process-max={jobs}"),
        "restore".to_owned(),
        format!("--set={}", set.label),
        "--type=none".to_owned(),
    ]
    .to_vec();
    // Every tablespace mapped, always: one left to the manifest's place would be restored there.
    args.extend(set.tablespaces.iter().map(|oid| format!("--tablespace-map={oid}={}/{oid}", toolbox::WORK)));
    let env = match what.encrypted {
        Some(repository) => {
            let (env, cipher) = repository.env();
            args.push(cipher);
            env.to_vec()
        }
        None => Vec::new(),
    };
    let (output, stdout) =
        tools.run_with(Invocation { program: "pgbackrest", args: &args, env: &env }, redactor).await?;
    if !output.success() {
        return Err(PrepareError::PgBackRest {
            set: set.label.clone(),
            status: output.status,
            stderr: format!("{}{}", stdout.trim(), output.stderr.trim()),
        });
    }
    match what.tablespaces {
        Some(folder) => {
            let (data, folder, oids) = (what.data.to_owned(), folder.to_owned(), set.tablespaces.clone());
            blocking(move || Ok(place(&data, &folder, &oids)?)).await
        }
        None => Ok(()),
    }
}

/// Puts each tablespace pgBackRest restored into `restored/<oid>` in the place of its link
/// `pg_tblspc/<oid>` of the data directory `data` (the link is removed, never followed).
fn place(data: &Path, restored: &Path, oids: &[u32]) -> Result<(), StageError> {
    let pg_tblspc = data.join("pg_tblspc");
    if !std::fs::symlink_metadata(&pg_tblspc).map_err(io("read", &pg_tblspc))?.is_dir() {
        return Err(StageError::NotAFile { what: "a link", path: "pg_tblspc".into(), hint: "" });
    }
    for oid in oids {
        let (link, folder) = (pg_tblspc.join(oid.to_string()), restored.join(oid.to_string()));
        if !std::fs::symlink_metadata(&folder).is_ok_and(|meta| meta.is_dir()) {
            return Err(StageError::SetTablespace {
                oid: *oid,
                problem: "pgBackRest restored no folder for it where it was mapped",
            });
        }
        match std::fs::symlink_metadata(&link) {
            Ok(meta) if meta.file_type().is_symlink() => std::fs::remove_file(&link).map_err(io("remove", &link))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(_) => {
                return Err(StageError::SetTablespace {
                    oid: *oid,
                    problem: "pgBackRest left something other than its link in `pg_tblspc`",
                });
            }
            Err(e) => return Err(io("read", &link)(e)),
        }
        std::fs::rename(&folder, &link).map_err(io("move", &folder))?;
    }
    std::fs::remove_dir(restored).map_err(io("remove", restored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tablespace_takes_its_links_place_in_pg_tblspc() {
        let work = tempfile::tempdir().unwrap();
        let (data, restored) = (work.path().join("data"), work.path().join(TABLESPACES));
        std::fs::create_dir_all(data.join("pg_tblspc")).unwrap();
        std::fs::create_dir_all(restored.join("16385/PG_17_202406281/5")).unwrap();
        std::fs::write(restored.join("16385/PG_17_202406281/5/16386"), b"page").unwrap();
        // As pgBackRest leaves it: a link to where the toolbox saw the folder.
        std::os::unix::fs::symlink("/pgdrill/work/16385", data.join("pg_tblspc/16385")).unwrap();
        place(&data, &restored, &[16385]).unwrap();
        let placed = data.join("pg_tblspc/16385");
        assert!(std::fs::symlink_metadata(&placed).unwrap().is_dir(), "a folder, not a link");
        assert_eq!(std::fs::read(placed.join("PG_17_202406281/5/16386")).unwrap(), b"page");
        assert!(!restored.exists());

        // A tablespace pgBackRest did not restore where it was mapped.
        std::fs::create_dir(&restored).unwrap();
        let error = place(&data, &restored, &[16390]).unwrap_err().to_string();
        assert!(error.contains("tablespace 16390 of the pgBackRest set: pgBackRest restored no folder"), "{error}");
    }
}
