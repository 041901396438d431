//! `pgdrill clean`: removes kept targets ([`super::kept`]) and what drills killed outright left
//! behind (their containers and private folders), and removes one recorded kept target
//! ([`remove_record`]) for a drill that could not record it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use testcontainers::bollard::Docker;

use super::kept::{
    KEEPER_LABEL, KEPT_LABEL, KeptError, MARKER, NAME_LABEL, RECORD_LABEL, Record, ServerRecord, connection_path,
    record_path, state_dir, stop_forwarder,
};
use super::owner::{OWNER_FILE, running};
use super::{container, docker};

/// What `pgdrill clean` found, and did or would do.
#[derive(Debug, Default)]
pub(crate) struct Cleaned {
    /// A line per thing removed (or to remove, on a dry run).
    pub lines: Vec<String>,
    /// Things that could not be removed.
    pub errors: Vec<String>,
}

/// Why a recorded kept target could not be removed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoveError {
    /// Its container is on a Docker engine that cannot be reached.
    #[error("the Docker engine cannot be reached")]
    NoDocker,
    /// Its container could not be removed, or the state folder not found.
    #[error(transparent)]
    Kept {
        #[from]
        source: KeptError,
    },
    /// Its private folder, record or connection file could not be removed.
    #[error("cannot remove `{}`", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Its database or roles on the server could not be dropped.
    #[error(transparent)]
    Server {
        #[from]
        source: DropError,
    },
}

/// Why a kept database (and the roles the drill made) could not be dropped on its server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DropError {
    /// The admin connection string could not be resolved.
    #[error(transparent)]
    Secret {
        #[from]
        source: crate::secret::SecretError,
    },
    /// The admin connection string is not one sqlx reads.
    #[error("the server's admin connection string cannot be read")]
    Url {
        #[source]
        source: sqlx::Error,
    },
    /// The server did not take the admin's connection.
    #[error("cannot connect to the server as its admin")]
    Connect {
        #[source]
        source: sqlx::Error,
    },
    /// A `DROP` failed.
    #[error("cannot drop {what}")]
    Drop {
        what: String,
        #[source]
        source: sqlx::Error,
    },
}

/// An error of cleaning on one line, any password in a connection string masked.
fn said(error: &dyn std::error::Error) -> String {
    crate::secret::redact_url_passwords(&crate::error::error_chain(error))
}

/// A kept container found by its label.
struct Labelled {
    id: String,
    name: String,
    kept_name: String,
    record: Option<PathBuf>,
    keeper: Option<String>,
}

impl Labelled {
    /// Whether `pgdrill clean` (without a name) removes it though no record here names it: its
    /// record is gone, and no drill of this machine is still keeping it.
    fn stray(&self) -> bool {
        self.record.as_deref().is_none_or(lost) && !self.keeper.as_deref().is_some_and(running)
    }
}

async fn labelled(docker: &Docker, label: &str) -> Result<Vec<Labelled>, KeptError> {
    use testcontainers::bollard::query_parameters::ListContainersOptions;
    let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
    let list = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: Some(filters), ..Default::default() }))
        .await
        .map_err(|source| KeptError::Docker { action: "list pgdrill's containers", source })?;
    Ok(list
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            Labelled {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                kept_name: labels.get(NAME_LABEL).cloned().unwrap_or_default(),
                record: labels.get(RECORD_LABEL).map(PathBuf::from),
                keeper: labels.get(KEEPER_LABEL).cloned(),
            }
        })
        .collect())
}

/// Whether a record's file is known to be gone (one that cannot be looked at is not).
fn lost(path: &Path) -> bool {
    matches!(path.try_exists(), Ok(false))
}

/// Removes kept targets and what drills killed outright left behind: `name` alone, or every
/// target kept in this user's state folder, kept containers whose record is gone, and the
/// containers and private folders of drills whose process no longer runs. Never a container
/// without pgdrill's labels. On a dry run, only says what it would remove.
pub(crate) async fn clean(name: Option<&str>, dry_run: bool) -> Result<Cleaned, KeptError> {
    let mut cleaned = Cleaned::default();
    let mut records = read_records(&state_dir()?, &mut cleaned)?;
    // A name may be given as the kept name or as its container's name.
    let wanted = |kept: &str, container: Option<&str>| name.is_none_or(|n| n == kept || container == Some(n));
    records.retain(|r| wanted(&r.name, r.container_name.as_deref()));

    let needs_docker = name.is_none() || records.iter().any(|r| r.kind == "container") || records.is_empty();
    let docker = if needs_docker && !docker::engine_elsewhere() { docker::docker().ok() } else { None };
    let mut containers = Vec::new();
    if let Some(docker) = &docker {
        match labelled(docker, KEPT_LABEL).await {
            Ok(found) => containers = found,
            Err(e) if name.is_none() && records.is_empty() => return Err(e),
            Err(e) => cleaned.errors.push(said(&e)),
        }
    }
    let strays = strays(&containers, &records, name);
    if let Some(n) = name
        && records.is_empty()
        && strays.is_empty()
    {
        return Err(KeptError::NotFound { name: n.to_owned() });
    }
    remove_records(&records, docker.as_ref(), dry_run, &mut cleaned).await;
    remove_strays(&strays, docker.as_ref(), dry_run, &mut cleaned).await;
    if name.is_none() {
        remove_orphans(docker.as_ref(), dry_run, &mut cleaned).await;
    }
    Ok(cleaned)
}

/// The records of kept targets in the state folder `dir`, by name; a file that is not one is
/// one of `cleaned`'s errors.
fn read_records(dir: &Path, cleaned: &mut Cleaned) -> Result<Vec<Record>, KeptError> {
    let mut records: Vec<Record> = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|source| KeptError::Io { path: dir.to_owned(), source })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            match std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<Record>(&t).ok()) {
                Some(record) => records.push(record),
                None => cleaned.errors.push(format!("`{}` is not a record of a kept target", path.display())),
            }
        }
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(records)
}

/// Kept containers without a record here: `name`d, or (without one) whose record is gone.
fn strays<'a>(containers: &'a [Labelled], records: &[Record], name: Option<&str>) -> Vec<&'a Labelled> {
    let recorded: Vec<&str> = records.iter().filter_map(|r| r.container.as_deref()).collect();
    containers
        .iter()
        .filter(|c| !recorded.iter().any(|id| c.id.starts_with(id) || id.starts_with(c.id.as_str())))
        .filter(|c| match name {
            Some(n) => n == c.kept_name || n == c.name,
            None => c.stray(),
        })
        .collect()
}

/// How a line of `pgdrill clean` says what it did.
fn verb(dry_run: bool) -> &'static str {
    if dry_run { "would remove" } else { "removed" }
}

/// Removes each recorded kept target (unless `dry_run`), saying so.
async fn remove_records(records: &[Record], docker: Option<&Docker>, dry_run: bool, cleaned: &mut Cleaned) {
    for record in records {
        let what = match (&record.kind[..], &record.container_name) {
            ("server", _) => format!("its database `{}` on {}", record.database, record.address),
            (_, Some(c)) => format!("container {c}, its private folder"),
            _ => "its private folder".to_owned(),
        };
        if !dry_run && let Err(e) = remove_record(record, docker).await {
            cleaned.errors.push(format!("kept target `{}`: {}", record.name, said(&e)));
            continue;
        }
        cleaned.lines.push(format!("{} kept target `{}` ({what} and its connection file)", verb(dry_run), record.name));
    }
}

/// Removes kept containers whose record is gone, and their folders (unless `dry_run`).
async fn remove_strays(strays: &[&Labelled], docker: Option<&Docker>, dry_run: bool, cleaned: &mut Cleaned) {
    for stray in strays {
        if !dry_run && let Some(docker) = docker {
            if let Err(e) = remove_container(docker, &stray.id).await {
                cleaned.errors.push(format!("container {}: {}", stray.name, said(&e)));
                continue;
            }
            remove_folders_kept_for(stray.record.as_deref()).await;
        }
        cleaned.lines.push(format!("{} kept container {} (its record is gone)", verb(dry_run), stray.name));
    }
}

/// Removes what drills killed outright left: containers and folders whose owner no longer runs
/// (unless `dry_run`), and the folders of kept containers whose record is gone.
async fn remove_orphans(docker: Option<&Docker>, dry_run: bool, cleaned: &mut Cleaned) {
    if let Some(docker) = docker {
        match container::orphans(docker, dry_run).await {
            Ok(names) => {
                for n in names {
                    cleaned
                        .lines
                        .push(format!("{} container {n}, left by a drill whose process is gone", verb(dry_run)));
                }
            }
            Err(e) => cleaned.errors.push(said(&e)),
        }
        for volume in container::orphan_volumes(docker, dry_run).await {
            cleaned.lines.push(format!("{} volume {volume}, left by a drill whose process is gone", verb(dry_run)));
        }
    }
    for folder in super::owner::orphan_folders(dry_run).await {
        cleaned.lines.push(format!("{} `{}`, left by a drill whose process is gone", verb(dry_run), folder.display()));
    }
    if !dry_run {
        remove_folders_kept_for(None).await;
    }
}

/// Removes a recorded kept target: its forwarder, container and folder, or its database; then
/// its record and connection file.
pub(crate) async fn remove_record(record: &Record, docker: Option<&Docker>) -> Result<(), RemoveError> {
    if let Some(forwarder) = &record.forwarder {
        stop_forwarder(forwarder);
    }
    if let Some(id) = &record.container {
        let docker = docker.ok_or(RemoveError::NoDocker)?;
        remove_container(docker, id).await?;
    }
    if let Some(run_dir) = &record.run_dir
        && run_dir.exists()
    {
        tokio::fs::remove_dir_all(run_dir)
            .await
            .map_err(|source| RemoveError::File { path: run_dir.clone(), source })?;
    }
    if let Some(server) = &record.server {
        drop_on_server(server).await?;
    }
    let dir = state_dir()?;
    for path in [record_path(&dir, &record.name), connection_path(&dir, &record.name)] {
        if let Err(source) = std::fs::remove_file(&path)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            return Err(RemoveError::File { path, source });
        }
    }
    Ok(())
}

/// Removes a kept container and its data volume.
async fn remove_container(docker: &Docker, id: &str) -> Result<(), KeptError> {
    use testcontainers::bollard::errors::Error as DockerError;
    use testcontainers::bollard::query_parameters::RemoveContainerOptions;
    let volumes = container::data_volumes_of(docker, id).await;
    let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(source) => return Err(KeptError::Docker { action: "remove a kept container", source }),
    }
    container::remove_volumes(docker, &volumes).await;
    Ok(())
}

/// Removes the private folders of kept containers whose record is `record` (a stray), or, with
/// none, whose record is gone.
async fn remove_folders_kept_for(record: Option<&Path>) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("pgdrill-") && name.ends_with("-target")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path().join(MARKER)) else { continue };
        let of = Path::new(text.trim());
        let doomed = match record {
            Some(record) => of == record,
            // Not while the drill keeping it has yet to write its record.
            None => lost(of) && !std::fs::read_to_string(entry.path().join(OWNER_FILE)).is_ok_and(|o| running(&o)),
        };
        if doomed {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

/// Drops a kept server database and the roles the drill made, as the scenario's admin.
async fn drop_on_server(server: &ServerRecord) -> Result<(), DropError> {
    use sqlx::{Connection, Executor};
    let url = server.url.resolve()?;
    let options: sqlx::postgres::PgConnectOptions = url.expose().parse().map_err(|source| DropError::Url { source })?;
    let mut conn = sqlx::PgConnection::connect_with(&options).await.map_err(|source| DropError::Connect { source })?;
    for db in &server.databases {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", crate::pg::quote_ident(db));
        let fail = |source| DropError::Drop { what: format!("database `{db}`"), source };
        conn.execute(sqlx::raw_sql(&sql)).await.map_err(fail)?;
    }
    for role in &server.roles {
        let sql = format!("DROP ROLE IF EXISTS {}", crate::pg::quote_ident(role));
        let fail = |source| DropError::Drop { what: format!("role `{role}`"), source };
        conn.execute(sqlx::raw_sql(&sql)).await.map_err(fail)?;
    }
    conn.close().await.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::owner::owner;

    #[test]
    fn a_container_whose_record_is_not_written_yet_is_a_stray_only_once_its_keeper_is_gone() {
        let gone = std::env::temp_dir().join("pgdrill-no-such-record.json");
        let labelled = |keeper: Option<String>| Labelled {
            id: "c0ffee".into(),
            name: "pgdrill-x".into(),
            kept_name: "x".into(),
            record: Some(gone.clone()),
            keeper,
        };
        // Being kept by a drill that runs (this test): a `pgdrill clean` beside it leaves it.
        assert!(!labelled(Some(owner())).stray());
        // Its keeper gone (pid 0 never runs), or never named: its record is all that counts.
        let host = owner().split('/').next().unwrap_or_default().to_owned();
        assert!(labelled(Some(format!("{host}/0/1"))).stray());
        assert!(labelled(None).stray());
        let here = Labelled { record: Some(std::env::current_exe().expect("exe")), ..labelled(None) };
        assert!(!here.stray(), "its record is there");
    }
}
