//! The files of this machine a scenario names, by what they are to a drill that runs elsewhere
//! (`pgdrill kube` carries a scenario and its inputs in a ConfigMap): inputs that travel with
//! it, the backup itself, secrets, and the programs it runs. The target's own (a local target's
//! binaries, a server's URL) are left out: a drill elsewhere runs on a target of its own.

use std::path::PathBuf;

use super::Scenario;
use crate::secret::SecretSource;
use crate::source::decrypt::KeySpec;
use crate::source::{SourceLocation, WalArchiveLocation};

/// What a file a scenario names is to a drill that runs elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Read by the drill: it travels with the scenario (a baseline, a globals file, a
    /// fingerprint file, a migrations folder).
    Input,
    /// The backup itself, its WAL archive or its tablespaces.
    Backup,
    /// A secret read from a file (a URL, a token, a key, a passphrase).
    Secret,
}

/// A file or folder of this machine that a scenario names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalFile {
    /// The key that names it, as the scenario writes it (`[restore] globals`).
    pub key: String,
    /// Where it is (a folder is read whole).
    pub path: PathBuf,
    pub role: Role,
}

impl LocalFile {
    fn new(key: impl Into<String>, path: &std::path::Path, role: Role) -> LocalFile {
        LocalFile { key: key.into(), path: path.to_owned(), role }
    }
}

impl Scenario {
    /// Every file and folder of this machine the scenario names, but its target's, in the order
    /// of the file's sections.
    pub(crate) fn local_files(&self) -> Vec<LocalFile> {
        let mut files = self.source_files();
        if let Some(baseline) = &self.baseline_file {
            files.push(LocalFile::new("baseline", baseline, Role::Input));
        }
        if let Some(globals) = &self.restore.globals {
            files.push(LocalFile::new("[restore] globals", globals, Role::Input));
        }
        for check in &self.checks {
            for path in check.files() {
                files.push(LocalFile::new(format!("[checks.{}]", check.kind()), &path, Role::Input));
            }
        }
        if let Some(crate::migrate::Runner::Folder { dir, .. }) = self.migrate.as_ref().map(|m| &m.runner) {
            files.push(LocalFile::new("[migrate] dir", dir, Role::Input));
        }
        if let Some(SecretSource::File(path)) = self.notify.as_ref().map(|n| &n.url) {
            files.push(LocalFile::new("[notify] url_file", path, Role::Secret));
        }
        files
    }

    /// What the scenario runs beside the drill, by its key: the application (a program or a
    /// container) and a migration command.
    pub(crate) fn programs(&self) -> Vec<&'static str> {
        let mut programs = Vec::new();
        if self.app.is_some() {
            programs.push("[app]");
        }
        if let Some(crate::migrate::Runner::Command { .. }) = self.migrate.as_ref().map(|m| &m.runner) {
            programs.push("[migrate] command");
        }
        programs
    }

    fn source_files(&self) -> Vec<LocalFile> {
        let source = &self.source;
        let mut files = Vec::new();
        let secret = |files: &mut Vec<LocalFile>, key: &str, from: Option<&SecretSource>| {
            if let Some(SecretSource::File(path)) = from {
                files.push(LocalFile::new(format!("[source] {key}"), path, Role::Secret));
            }
        };
        match &source.location {
            SourceLocation::File(path) => files.push(LocalFile::new("[source] path", path, Role::Backup)),
            SourceLocation::Newest { dir, .. } => files.push(LocalFile::new("[source] dir", dir, Role::Backup)),
            SourceLocation::Url(http) => {
                secret(&mut files, "url_file", Some(&http.url));
                secret(&mut files, "token_file", http.token.as_ref());
            }
            SourceLocation::S3(_) => {}
        }
        if let Some(WalArchiveLocation::Dir(dir)) = &source.wal_archive {
            files.push(LocalFile::new("[source] wal_archive", dir, Role::Backup));
        }
        let members = source.tablespaces.members.values().flat_map(|t| t.values());
        for folder in source.tablespaces.backup.values().chain(members) {
            files.push(LocalFile::new("[source] tablespaces", folder, Role::Backup));
        }
        secret(&mut files, "cipher_pass_file", source.cipher_pass.as_ref());
        for key in &source.decrypt {
            match key {
                KeySpec::Identity { key, unlock } => {
                    secret(&mut files, "decrypt identity_file", Some(key));
                    secret(&mut files, "decrypt key_passphrase_file", unlock.as_ref());
                }
                KeySpec::Passphrase(passphrase) => secret(&mut files, "decrypt passphrase_file", Some(passphrase)),
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(dir: &std::path::Path, text: &str) -> Scenario {
        let path = dir.join("s.toml");
        std::fs::write(&path, text).unwrap();
        Scenario::load(&path).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn a_scenario_names_its_inputs_its_backup_and_its_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/baselines/plur.json");
        std::fs::copy(fixture, d.join("baseline.json")).unwrap();
        std::fs::create_dir_all(d.join("migrations")).unwrap();
        std::fs::write(d.join("migrations/001_init.sql"), "CREATE TABLE t ();").unwrap();
        let scenario = loaded(
            d,
            "baseline = \"baseline.json\"\n\
             [source]\ns3 = \"s3://backups/orders.dump\"\n\
             decrypt = [{ identity_file = \"keys/escrow.key\" }, { passphrase_env = \"P\" }]\n\
             [restore]\nglobals = \"globals.sql\"\n\
             [checks.row_counts]\nbaseline = true\n\
             [checks.schema_version]\nexpected_from = \"migrations\"\n\
             [migrate]\ndir = \"migrations\"\n",
        );
        let named: Vec<(String, PathBuf, Role)> =
            scenario.local_files().into_iter().map(|f| (f.key, f.path, f.role)).collect();
        assert_eq!(
            named,
            [
                ("[source] decrypt identity_file".to_owned(), d.join("keys/escrow.key"), Role::Secret),
                ("baseline".to_owned(), d.join("baseline.json"), Role::Input),
                ("[restore] globals".to_owned(), d.join("globals.sql"), Role::Input),
                ("[checks.schema_version]".to_owned(), d.join("migrations"), Role::Input),
                ("[migrate] dir".to_owned(), d.join("migrations"), Role::Input),
            ]
        );
        assert!(scenario.programs().is_empty());

        let local =
            loaded(d, "[source]\npath = \"orders.dump\"\nwal_archive = \"wal\"\n[notify]\nurl_file = \"hook\"\n");
        let named: Vec<(String, Role)> = local.local_files().into_iter().map(|f| (f.key, f.role)).collect();
        let expected = [
            ("[source] path", Role::Backup),
            ("[source] wal_archive", Role::Backup),
            ("[notify] url_file", Role::Secret),
        ];
        assert_eq!(named, expected.map(|(key, role)| (key.to_owned(), role)));
    }

    #[test]
    fn a_scenario_names_the_programs_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = loaded(
            dir.path(),
            "[source]\npath = \"b.sql\"\n[migrate]\ncommand = [\"npx\", \"prisma\", \"migrate\", \"deploy\"]\n\
             [app]\ncommand = [\"node\", \"server.js\"]\nready = { path = \"/health\" }\n",
        );
        assert_eq!(scenario.programs(), ["[app]", "[migrate] command"]);
    }
}
