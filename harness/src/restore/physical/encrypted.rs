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
//!
//! A scenario may give several copies of the passphrase (`[source] decrypt`, one
//! `passphrase_env` or `passphrase_file` each: those kept in escrow): the first is the drill's,
//! and each is proven to open the repository, `repo-get` decrypting with it alone the same
//! `backup.info` and `archive.info` (the passphrase opens these; they hold the keys of the sets
//! and of the archive) and the set's manifest (opened through `backup.info`'s key) as the first
//! did, byte for byte. One that does not is named, by where it is and its place in the list,
//! never by its value (nor a digest of it: a short passphrase's digest gives it away).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::feed::Decrypt;
use super::stage::StageError;
use super::{PrepareError, Request, Where};
use crate::provision::toolbox::{self, Toolbox};
use crate::provision::tools::Invocation;
use crate::secret::{Redactor, Secret};
use crate::source::decrypt;
use crate::source::physical::pgbackrest::{self, Choice};
use crate::source::physical::wal::Archived;

/// The cipher pgBackRest encrypts a repository with.
const CIPHER: &str = "aes-256-cbc";

/// The encryption of a repository, as the reports name it.
pub(crate) const ENCRYPTION: &str = "pgBackRest repository cipher (aes-256-cbc)";

/// A passphrase of the repository, read.
struct Passphrase {
    /// How the reports name it: where it is, and its place in the scenario's list.
    public: String,
    /// `PGBACKREST_REPO1_CIPHER_PASS=...`, for each command's environment alone.
    env: Vec<String>,
}

/// An encrypted repository, readable through its toolbox.
pub(crate) struct Repository {
    tools: Toolbox,
    /// The repository on this machine.
    dir: PathBuf,
    /// The scenario's passphrases, the drill's first.
    passphrases: Vec<Passphrase>,
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

/// The passphrases of the repository, from where the scenario says they are: `[source]
/// cipher_pass_env` or `cipher_pass_file` (one), or the passphrases `[source] decrypt` lists
/// (read by the fetch phase).
fn passphrases(request: &Request<'_>) -> Result<Vec<Passphrase>, PrepareError> {
    let env = |secret: &Secret| vec![format!("PGBACKREST_REPO1_CIPHER_PASS={}", secret.expose())];
    if let Some(source) = request.cipher_pass {
        let secret = source.resolve().map_err(PrepareError::CipherPass)?;
        request.redactor.register(&secret);
        let public = format!("the passphrase from {}", decrypt::origin(source));
        return Ok(vec![Passphrase { public, env: env(&secret) }]);
    }
    if request.keys.is_empty() {
        return Err(PrepareError::Scenario(format!(
            "`{}` is an encrypted pgBackRest repository: give its passphrase with `[source] cipher_pass_env` (an environment variable) or `cipher_pass_file` (a file), or its copies in `decrypt = [{{ passphrase_env = \"...\" }}, ...]`, never in the scenario",
            request.backup_dir.display()
        )));
    }
    let total = request.keys.len();
    request
        .keys
        .iter()
        .enumerate()
        .map(|(i, key)| match key.passphrase() {
            Some(secret) => {
                let public = if total == 1 { key.public.clone() } else { format!("{} ({} of {total})", key.public, i + 1) };
                Ok(Passphrase { public, env: env(secret) })
            }
            None => Err(PrepareError::Scenario(format!(
                "`[source] decrypt` gives {}, and an encrypted pgBackRest repository opens with its passphrase (repo1-cipher-pass) alone: give each copy as `{{ passphrase_env = \"...\" }}` or `{{ passphrase_file = \"...\" }}`",
                key.public
            ))),
        })
        .collect()
}

impl Repository {
    /// Opens the repository in `dir` (see the module's documentation): a toolbox of the project's
    /// image, whose pgBackRest reads any set.
    pub(crate) async fn open(request: &Request<'_>) -> Result<Repository, PrepareError> {
        let passphrases = passphrases(request)?;
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
        Ok(Repository { tools, dir: request.backup_dir.to_owned(), passphrases, redactor: request.redactor.clone() })
    }

    /// The drill's passphrase and the cipher, for a pgBackRest command of another toolbox.
    pub(crate) fn env(&self) -> (&[String], String) {
        (&self.passphrases[0].env, format!("--repo1-cipher-type={CIPHER}"))
    }

    /// How the reports name each passphrase, the drill's first.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.passphrases.iter().map(|p| p.public.clone()).collect()
    }

    /// Writes the decrypted repository file `relative` into `into`, decrypted with the passphrase
    /// `which` (the drill's is 0).
    async fn get(&self, which: usize, relative: &str, into: &Path) -> Result<(), PrepareError> {
        let mut args = options();
        args.extend(["repo-get".to_owned(), relative.to_owned()]);
        let env = &self.passphrases[which].env;
        let output =
            self.tools.run_into(Invocation { program: "pgbackrest", args: &args, env }, into, &self.redactor).await?;
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
    /// in the repository, with the drill's passphrase; and with each other passphrase into a
    /// folder beside it, which must hold the same bytes (see the module's documentation).
    pub(crate) async fn decrypt_texts(&self, choice: &Choice<'_>, texts: &Path) -> Result<(), PrepareError> {
        if self.passphrases.len() == 1 {
            return self.texts_with(0, choice, texts).await;
        }
        let (mut opened, mut failed) = (Vec::new(), Vec::new());
        let mut reference: Option<(PathBuf, &str)> = None;
        for (which, passphrase) in self.passphrases.iter().enumerate() {
            let into = match which {
                0 => texts.to_owned(),
                _ => texts.with_file_name(format!("texts-of-passphrase-{}", which + 1)),
            };
            match self.texts_with(which, choice, &into).await {
                Err(PrepareError::Decrypt { file, status, said }) => failed.push(format!(
                    "{} does not open it: pgBackRest cannot decrypt `{file}` with it (exit {status}): {said}",
                    passphrase.public
                )),
                Err(other) => return Err(other),
                Ok(()) => match &reference {
                    Some((first, by)) if !same_files(first, &into) => {
                        failed.push(format!("{} decrypts it to other files than {by}", passphrase.public))
                    }
                    _ => {
                        reference.get_or_insert((into, &passphrase.public));
                        opened.push(passphrase.public.clone());
                    }
                },
            }
        }
        match failed.is_empty() {
            true => Ok(()),
            false => Err(PrepareError::Passphrases { total: self.passphrases.len(), failed, opened }),
        }
    }

    /// [`Repository::decrypt_texts`] with the passphrase `which` alone.
    async fn texts_with(&self, which: usize, choice: &Choice<'_>, texts: &Path) -> Result<(), PrepareError> {
        let stanzas = pgbackrest::stanzas(&self.dir).map_err(|e| StageError::Io {
            action: "list",
            path: self.dir.display().to_string(),
            source: e,
        })?;
        let mut wanted: Vec<String> = stanzas
            .iter()
            .flat_map(|s| [format!("backup/{s}/backup.info"), format!("archive/{s}/archive.info")])
            .collect();
        for relative in &wanted {
            self.get_into(which, relative, texts).await?;
        }
        let chosen = pgbackrest::choose(texts, choice)?;
        wanted.push(format!("backup/{}/{}/backup.manifest", chosen.stanza, chosen.label));
        self.get_into(which, wanted.last().expect("pushed"), texts).await
    }

    /// [`Repository::get`] into the file `relative` of the folder `texts`.
    async fn get_into(&self, which: usize, relative: &str, texts: &Path) -> Result<(), PrepareError> {
        let into = texts.join(relative);
        if let Some(parent) = into.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|source| StageError::Io {
                action: "create",
                path: parent.display().to_string(),
                source,
            })?;
        }
        self.get(which, relative, &into).await
    }

    /// How the feed reads an archived segment of this repository: decrypted by `repo-get` into
    /// a file of `scratch` (still compressed), which the feed removes once it gave it.
    pub(crate) fn decrypt(self: &Arc<Self>, scratch: PathBuf) -> Decrypt {
        let repository = self.clone();
        let handle = tokio::runtime::Handle::current();
        Arc::new(move |segment: &Archived| {
            let relative = segment.path.strip_prefix(&repository.dir).unwrap_or(&segment.path).to_string_lossy();
            let into = scratch.join(segment.path.file_name().unwrap_or_default());
            handle
                .block_on(repository.get(0, &relative, &into))
                .map_err(|e| StageError::Undecrypted { name: segment.name.clone(), source: Box::new(e) })?;
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

/// Whether the folders `a` and `b` hold the same files, byte for byte.
fn same_files(a: &Path, b: &Path) -> bool {
    let files = |root: &Path| {
        let mut found = std::collections::BTreeMap::new();
        let mut pending = vec![root.to_owned()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                match entry.file_type() {
                    Ok(t) if t.is_dir() => pending.push(entry.path()),
                    _ => {
                        let relative = entry.path().strip_prefix(root).map(Path::to_owned).unwrap_or_default();
                        found.insert(relative, std::fs::read(entry.path()).ok());
                    }
                }
            }
        }
        found
    };
    files(a) == files(b)
}
