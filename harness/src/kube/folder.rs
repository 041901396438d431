//! The scenarios and every file they read, as one folder a ConfigMap carries into the drill's
//! pod: each file at its place relative to the others (a scenario's `../baselines/x.json` still
//! resolves there), proven by loading each scenario again from a copy of that folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::KubeError;
use crate::field::normalize;
use crate::scenario::{FileRole, Scenario};

/// What a ConfigMap may hold: its keys and values together (Kubernetes' `MaxSecretSize`).
pub(crate) const CONFIG_MAP_LIMIT: usize = 1024 * 1024;

/// The folder the pod reads its scenarios from.
#[derive(Debug)]
pub(crate) struct Folder {
    /// Each scenario's name and its path in the folder, in the order the pod drills them (its
    /// index in the Job).
    pub scenarios: Vec<(String, PathBuf)>,
    /// Every file's path in the folder, and its bytes, sorted by path.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    /// The globals files whose role passwords were left out, with how many (none: not listed).
    pub passwords: Vec<(PathBuf, usize)>,
    /// How long the longest of the scenarios may take: its phases' deadlines added up, and
    /// [`TEARDOWN`] for its teardown, reports and upload.
    pub deadline: std::time::Duration,
}

/// What a drill takes after its last phase's deadline: teardown, the reports, their upload.
pub(crate) const TEARDOWN: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Folder {
    /// What a ConfigMap of these files takes against its limit, with the keys it names them by.
    pub(crate) fn size(&self) -> usize {
        self.keyed().map(|(key, _, bytes)| key.len() + bytes.len()).sum()
    }

    /// Each file with its ConfigMap key (keys hold no `/`: a number and the file's name).
    pub(crate) fn keyed(&self) -> impl Iterator<Item = (String, &Path, &[u8])> {
        self.files.iter().enumerate().map(|(n, (path, bytes))| {
            let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            let safe: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || "-._".contains(c) { c } else { '_' })
                .take(240)
                .collect();
            (format!("{n:03}-{safe}"), path.as_path(), bytes.as_slice())
        })
    }
}

/// A file to carry, and who named it (for errors).
struct Wanted {
    path: PathBuf,
    scenario: String,
    key: String,
}

/// The folder holding `scenarios` and the files they read; refused when a scenario drills a
/// backup on this machine (but under `mounted`, the folder a claim is mounted at in the pod, at
/// the same path), reads a secret from a file or runs a program, when a file cannot be read,
/// when they outgrow a ConfigMap, or when a scenario would not load from the folder.
pub(crate) fn gather(scenarios: &[Scenario], mounted: Option<&Path>) -> Result<Folder, KubeError> {
    let mut wanted = Vec::new();
    for scenario in scenarios {
        let name = scenario.name().to_owned();
        if let Some(program) = scenario.programs().first() {
            return Err(KubeError::Program { scenario: name, key: program });
        }
        wanted.push(Wanted { path: absolute(scenario.file())?, scenario: name.clone(), key: "the scenario".into() });
        for file in scenario.local_files() {
            let (scenario, key) = (name.clone(), file.key.clone());
            match file.role {
                FileRole::Backup => match mounted {
                    Some(mount) if absolute(&file.path)?.starts_with(mount) => {}
                    Some(mount) => {
                        let mount = mount.to_owned();
                        return Err(KubeError::NotMounted { scenario, key, path: file.path, mount });
                    }
                    None => return Err(KubeError::LocalBackup { scenario, key, path: file.path }),
                },
                FileRole::Secret => return Err(KubeError::SecretFile { scenario, key, path: file.path }),
                FileRole::Input => {
                    wanted.extend(files_of(&absolute(&file.path)?, &scenario, &key)?.into_iter().map(|path| Wanted {
                        path,
                        scenario: scenario.clone(),
                        key: key.clone(),
                    }))
                }
            }
        }
    }
    let root = common_root(wanted.iter().map(|w| w.path.as_path()));
    let mut files = BTreeMap::new();
    let mut passwords = Vec::new();
    for w in &wanted {
        if files.contains_key(w.path.strip_prefix(&root).unwrap_or(&w.path)) {
            continue;
        }
        let bytes = std::fs::read(&w.path).map_err(|source| KubeError::Read {
            path: w.path.clone(),
            scenario: w.scenario.clone(),
            key: w.key.clone(),
            source,
        })?;
        let place = w.path.strip_prefix(&root).unwrap_or(&w.path).to_owned();
        let bytes = match w.key == GLOBALS_KEY {
            true => without_passwords(bytes, w, &place, &mut passwords)?,
            false => bytes,
        };
        files.insert(place, bytes);
    }
    let mut placed: Vec<(String, PathBuf)> = scenarios
        .iter()
        .map(|s| Ok((s.name().to_owned(), absolute(s.file())?.strip_prefix(&root).unwrap_or(s.file()).to_owned())))
        .collect::<Result<_, KubeError>>()?;
    placed.sort_by(|a, b| a.1.cmp(&b.1));
    let deadline = scenarios.iter().map(|s| s.deadlines.total()).max().unwrap_or_default() + TEARDOWN;
    let folder = Folder { scenarios: placed, files, passwords, deadline };
    let size = folder.size();
    if size > CONFIG_MAP_LIMIT {
        return Err(KubeError::TooBig { size, largest: largest(&folder) });
    }
    prove(&folder, mounted)?;
    Ok(folder)
}

/// The scenario key that names a globals file.
const GLOBALS_KEY: &str = "[restore] globals";

/// A globals file's text without its role passwords (`passwords` notes how many there were),
/// or refused when it holds one written so that it cannot be left out.
fn without_passwords(
    bytes: Vec<u8>,
    wanted: &Wanted,
    place: &Path,
    passwords: &mut Vec<(PathBuf, usize)>,
) -> Result<Vec<u8>, KubeError> {
    let (stripped, count) = super::passwords::strip(&bytes).map_err(|line| KubeError::Password {
        scenario: wanted.scenario.clone(),
        path: wanted.path.clone(),
        line,
    })?;
    if count == 0 {
        return Ok(bytes);
    }
    passwords.push((place.to_owned(), count));
    Ok(stripped)
}

/// The path as the scenario loader resolves it, from the current folder.
fn absolute(path: &Path) -> Result<PathBuf, KubeError> {
    std::path::absolute(path).map(|p| normalize(&p)).map_err(|source| KubeError::Read {
        path: path.to_owned(),
        scenario: String::new(),
        key: String::new(),
        source,
    })
}

/// A file as itself, a folder as every file under it.
fn files_of(path: &Path, scenario: &str, key: &str) -> Result<Vec<PathBuf>, KubeError> {
    let read = |path: &Path, source| KubeError::Read {
        path: path.to_owned(),
        scenario: scenario.to_owned(),
        key: key.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(|e| read(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut found = Vec::new();
    let mut pending = vec![path.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| read(&dir, e))? {
            let entry = entry.map_err(|e| read(&dir, e))?.path();
            match std::fs::metadata(&entry).map_err(|e| read(&entry, e))? {
                m if m.is_dir() => pending.push(entry),
                m if m.is_file() => found.push(entry),
                _ => {}
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The deepest folder holding every path.
fn common_root<'a>(paths: impl Iterator<Item = &'a Path>) -> PathBuf {
    let mut root: Option<PathBuf> = None;
    for path in paths {
        let parent = path.parent().unwrap_or(Path::new("/"));
        root = Some(match root {
            None => parent.to_owned(),
            Some(root) => {
                root.components().zip(parent.components()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect()
            }
        });
    }
    root.unwrap_or_else(|| PathBuf::from("/"))
}

/// The largest files, for the error that says the folder is too big.
fn largest(folder: &Folder) -> Vec<(PathBuf, usize)> {
    let mut sizes: Vec<(PathBuf, usize)> = folder.files.iter().map(|(p, b)| (p.clone(), b.len())).collect();
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sizes.truncate(5);
    sizes
}

/// Each scenario loads from a copy of the folder elsewhere, naming no file outside it (but its
/// backup under `mounted`): nothing it reads was left behind, and nothing is named by a path the
/// pod would not have.
fn prove(folder: &Folder, mounted: Option<&Path>) -> Result<(), KubeError> {
    let copy = tempfile::tempdir().map_err(|source| KubeError::Copy { source })?;
    let root = normalize(&std::path::absolute(copy.path()).map_err(|source| KubeError::Copy { source })?);
    for (path, bytes) in &folder.files {
        let at = root.join(path);
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).map_err(|source| KubeError::Copy { source })?;
        }
        std::fs::write(&at, bytes).map_err(|source| KubeError::Copy { source })?;
    }
    for (name, path) in &folder.scenarios {
        let loaded = Scenario::load(&root.join(path))
            .map_err(|e| KubeError::NotCarried { scenario: name.clone(), why: crate::error::error_chain(&e) })?;
        let outside = loaded.local_files().into_iter().find(|f| {
            let on_the_claim = f.role == FileRole::Backup && mounted.is_some_and(|mount| f.path.starts_with(mount));
            !f.path.starts_with(&root) && !on_the_claim
        });
        if let Some(outside) = outside {
            return Err(KubeError::Absolute { scenario: name.clone(), key: outside.key, path: outside.path });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) -> PathBuf {
        let at = root.join(path);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(&at, text).unwrap();
        at
    }

    fn baseline(root: &Path, path: &str) {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/baselines/plur.json");
        write(root, path, &std::fs::read_to_string(fixture).unwrap());
    }

    const S3: &str = "[source]\ns3 = \"s3://backups/orders/\"\n";

    #[test]
    fn the_folder_keeps_each_file_where_the_scenarios_find_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        baseline(d, "fixtures/baselines/orders.json");
        write(d, "fixtures/globals.sql", "CREATE ROLE app;\n");
        write(d, "app/migrations/001_init.sql", "CREATE TABLE t ();\n");
        write(d, "app/migrations/nested/002_more.sql", "ALTER TABLE t ADD c int;\n");
        let orders = write(
            d,
            "drills/orders.toml",
            &format!(
                "baseline = \"../fixtures/baselines/orders.json\"\n{S3}[restore]\nglobals = \"../fixtures/globals.sql\"\n\
                 [checks.row_counts]\nbaseline = true\n[migrate]\ndir = \"../app/migrations\"\n"
            ),
        );
        let billing =
            write(d, "drills/eu/billing.toml", &format!("{S3}[restore]\nglobals = \"../../fixtures/globals.sql\"\n"));
        let scenarios = [Scenario::load(&orders).unwrap(), Scenario::load(&billing).unwrap()];
        let folder = gather(&scenarios, None).unwrap();
        let paths: Vec<&str> = folder.files.keys().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "app/migrations/001_init.sql",
                "app/migrations/nested/002_more.sql",
                "drills/eu/billing.toml",
                "drills/orders.toml",
                "fixtures/baselines/orders.json",
                "fixtures/globals.sql",
            ]
        );
        let placed: Vec<(&str, &str)> =
            folder.scenarios.iter().map(|(n, p)| (n.as_str(), p.to_str().unwrap())).collect();
        assert_eq!(placed, [("billing", "drills/eu/billing.toml"), ("orders", "drills/orders.toml")], "sorted by path");
        let keys: Vec<String> = folder.keyed().map(|(key, _, _)| key).collect();
        assert_eq!(keys[0], "000-001_init.sql");
        assert_eq!(keys[4], "004-orders.json");
        assert_eq!(folder.size(), folder.keyed().map(|(k, _, b)| k.len() + b.len()).sum::<usize>());
    }

    #[test]
    fn what_cannot_travel_is_refused_saying_why() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let refused = |toml: &str| {
            let path = write(d, "s.toml", toml);
            gather(&[Scenario::load(&path).unwrap()], None).unwrap_err().to_string()
        };
        let local = refused("[source]\npath = \"/var/backups/orders.dump\"\n");
        assert!(
            local.contains("drills a backup on this machine (`[source] path` = `/var/backups/orders.dump`)"),
            "{local}"
        );
        let secret = refused("[source]\nurl_file = \"/run/secrets/url\"\n");
        assert!(secret.contains("reads a secret from a file (`[source] url_file`"), "{secret}");
        assert!(secret.contains("--secret-env"), "{secret}");
        let app =
            refused(&format!("{S3}[app]\ncommand = [\"node\", \"server.js\"]\nready = {{ path = \"/health\" }}\n"));
        assert!(app.contains("runs `[app]` beside the drill"), "{app}");
        let missing = refused(&format!("{S3}[restore]\nglobals = \"globals.sql\"\n"));
        assert!(
            missing.contains("cannot read")
                && missing.contains("globals.sql")
                && missing.contains("`[restore] globals`"),
            "{missing}"
        );
        write(d, "elsewhere/globals.sql", "CREATE ROLE app;\n");
        let absolute =
            refused(&format!("{S3}[restore]\nglobals = \"{}\"\n", d.join("elsewhere/globals.sql").display()));
        assert!(absolute.contains("by an absolute path"), "{absolute}");
    }

    #[test]
    fn a_folder_over_a_config_maps_limit_is_refused_naming_its_largest_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "big/globals.sql", &"-- padding\n".repeat(CONFIG_MAP_LIMIT / 11 + 1));
        let path = write(d, "s.toml", &format!("{S3}[restore]\nglobals = \"big/globals.sql\"\n"));
        let error = gather(&[Scenario::load(&path).unwrap()], None).unwrap_err().to_string();
        assert!(error.contains("over a ConfigMap's 1 MiB"), "{error}");
        assert!(error.contains("big/globals.sql (1.0 MiB)"), "{error}");
    }
}
