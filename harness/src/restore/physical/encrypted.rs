//! Encrypted pgBackRest repositories (`repo1-cipher-type = aes-256-cbc`): every file pgBackRest
//! writes there is encrypted, its metadata with the repository's passphrase and its data and WAL
//! with keys that metadata holds. pgBackRest itself decrypts them, in a toolbox that sees the
//! repository read-only and gets the passphrase in its environment for each command alone
//! (never on a command line, in a scenario, a container's configuration or a report): `repo-get`
//! hands pgdrill the decrypted `backup.info`, `archive.info` and the set's manifest (read as a
//! plain repository's, with their checks: the set's files stay in its data directory), and each
//! archived segment as recovery needs it (decrypted, still compressed: pgdrill decompresses it
//! and checks it as any segment, its SHA-1 against its name included). `pgbackrest restore`
//! restores the set with the same passphrase.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::feed::Decrypt;
use super::stage::StageError;
use super::{PrepareError, Request, Where};
use crate::provision::toolbox::{self, Toolbox};
use crate::secret::{Redactor, Secret};
use crate::source::physical::pgbackrest::{self, Choice};
use crate::source::physical::wal::Archived;

/// The cipher pgBackRest encrypts a repository with.
const CIPHER: &str = "aes-256-cbc";

/// An encrypted repository, readable through its toolbox.
pub(crate) struct Repository {
    tools: Toolbox,
    /// The repository on this machine.
    dir: PathBuf,
    /// `PGBACKREST_REPO1_CIPHER_PASS=...`, for each command's environment alone.
    env: Vec<String>,
    redactor: Redactor,
}

/// pgBackRest's options for reading the repository the toolbox sees, with no configuration file
/// (and nothing on its console but errors, on stderr).
fn options() -> Vec<String> {
    [
        "--no-config".to_owned(),
        format!("--repo1-path={}", toolbox::BACKUP),
        format!("--repo1-cipher-type={CIPHER}"),
        "--log-level-console=off".to_owned(),
        "--log-level-stderr=warn".to_owned(),
        "--log-level-file=off".to_owned(),
    ]
    .to_vec()
}

/// The passphrase of the repository in `dir`, from where the scenario says it is.
fn passphrase(request: &Request<'_>) -> Result<Secret, PrepareError> {
    let Some(source) = request.cipher_pass else {
        return Err(PrepareError::Scenario(format!(
            "`{}` is an encrypted pgBackRest repository: give its passphrase with `[source] cipher_pass_env` (an environment variable) or `cipher_pass_file` (a file), never in the scenario",
            request.backup_dir.display()
        )));
    };
    let secret = source.resolve().map_err(|e| {
        PrepareError::Scenario(format!("the repository's passphrase: {}", crate::error::error_chain(&e)))
    })?;
    request.redactor.register(&secret);
    Ok(secret)
}

impl Repository {
    /// Opens the repository in `dir` (see the module's documentation): a toolbox of the project's
    /// image, whose pgBackRest reads any set.
    pub(crate) async fn open(request: &Request<'_>) -> Result<Repository, PrepareError> {
        let pass = passphrase(request)?;
        let Where::Container(spec) = request.target else {
            return Err(PrepareError::Scenario(
                "an encrypted pgBackRest repository recovers on a container target: pgBackRest decrypts it in a toolbox of the target's image".into(),
            ));
        };
        let work = request.work.join("decrypted");
        tokio::fs::create_dir_all(&work).await.map_err(|source| StageError::Io {
            action: "create",
            path: work.display().to_string(),
            source,
        })?;
        let tools = Toolbox::start(toolbox::Request {
            drill_id: request.drill_id,
            on: toolbox::On::Container(spec),
            major: None,
            data: toolbox::Data::Folder(&work),
            backup: Some(request.backup_dir),
            work: None,
            progress: request.progress,
        })
        .await?;
        Ok(Repository {
            tools,
            dir: request.backup_dir.to_owned(),
            env: vec![format!("PGBACKREST_REPO1_CIPHER_PASS={}", pass.expose())],
            redactor: request.redactor.clone(),
        })
    }

    /// The passphrase and cipher, for a pgBackRest command of another toolbox.
    pub(crate) fn env(&self) -> (&[String], String) {
        (&self.env, format!("--repo1-cipher-type={CIPHER}"))
    }

    /// Writes the decrypted repository file `relative` into `into`.
    async fn get(&self, relative: &str, into: &Path) -> Result<(), PrepareError> {
        let mut args = options();
        args.extend(["repo-get".to_owned(), relative.to_owned()]);
        let output = self.tools.run_into(("pgbackrest", &args, &self.env), into, &self.redactor).await?;
        if output.success() {
            return Ok(());
        }
        let _ = tokio::fs::remove_file(into).await;
        Err(PrepareError::Decrypt {
            file: relative.to_owned(),
            status: output.status,
            said: output.stderr.trim().to_owned(),
        })
    }

    /// Decrypts what choosing and reading the set `choice` names takes (every stanza's
    /// `backup.info` and `archive.info`, the chosen set's manifest) into `texts`, laid out as
    /// in the repository.
    pub(crate) async fn decrypt_texts(&self, choice: &Choice<'_>, texts: &Path) -> Result<(), PrepareError> {
        let stanzas = pgbackrest::stanzas(&self.dir).map_err(|e| StageError::Io {
            action: "list",
            path: self.dir.display().to_string(),
            source: e,
        })?;
        for stanza in &stanzas {
            for relative in [format!("backup/{stanza}/backup.info"), format!("archive/{stanza}/archive.info")] {
                let into = texts.join(&relative);
                if let Some(parent) = into.parent() {
                    tokio::fs::create_dir_all(parent).await.map_err(|source| StageError::Io {
                        action: "create",
                        path: parent.display().to_string(),
                        source,
                    })?;
                }
                self.get(&relative, &into).await?;
            }
        }
        let chosen = pgbackrest::choose(texts, choice)?;
        let relative = format!("backup/{}/{}/backup.manifest", chosen.stanza, chosen.label);
        let into = texts.join(&relative);
        if let Some(parent) = into.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|source| StageError::Io {
                action: "create",
                path: parent.display().to_string(),
                source,
            })?;
        }
        self.get(&relative, &into).await
    }

    /// How the feed reads an archived segment of this repository: decrypted by `repo-get` into
    /// a file of `scratch` (still compressed), which the feed removes once it gave it.
    pub(crate) fn decrypt(self: &Arc<Self>, scratch: PathBuf) -> Decrypt {
        let repository = self.clone();
        let handle = tokio::runtime::Handle::current();
        Arc::new(move |segment: &Archived| {
            let relative = segment.path.strip_prefix(&repository.dir).unwrap_or(&segment.path).to_string_lossy();
            let into = scratch.join(segment.path.file_name().unwrap_or_default());
            handle.block_on(repository.get(&relative, &into)).map_err(|e| StageError::Segment {
                name: segment.name.clone(),
                problem: format!("cannot be decrypted: {}", crate::error::error_chain(&e)),
            })?;
            Ok(Archived { path: into, ..segment.clone() })
        })
    }

    /// Removes its toolbox, once nothing else holds the repository (teardown's sweep removes it
    /// otherwise).
    pub(crate) async fn close(repository: Arc<Self>) {
        if let Ok(repository) = Arc::try_unwrap(repository) {
            let _ = repository.tools.remove().await;
        }
    }
}
