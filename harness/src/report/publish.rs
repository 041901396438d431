//! Reports in an object store (`run|gate --reports s3://bucket/prefix/`), for drills in pods with
//! no storage of their own: each drill writes its folder into a local temporary folder exactly
//! as it would anywhere, then uploads it whole to `prefix/<scenario>/<time>/` (every file, its
//! bytes unchanged, so that MANIFEST.sha256 and the signature still verify; `drill.json` last, so
//! that a folder holding it is whole). The scenario's history is read from
//! `prefix/<scenario>/history.jsonl` before the drill (none: the first drill) and the drill's line
//! appended after: read, append, write back only if the object is still as read (`If-Match` on
//! its ETag), again on a conflict; a store that takes no conditional write is written over, and
//! said. Two drills of one scenario at once are not supported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::outcome::DrillRecord;
use crate::outcome::history::HistoryEntry;
use crate::secret::Redactor;
use crate::store::{self, Bucket, S3UrlError, StoreError};

/// How many times an append is tried again after another writer came first.
const CONFLICT_RETRIES: usize = 4;

/// Why the reports cannot go to the store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    #[error("--reports: {0}")]
    Url(#[from] S3UrlError),
    #[error("cannot make a local folder for the reports")]
    Local(#[source] std::io::Error),
    #[error("cannot write the reports to {location}")]
    Probe {
        location: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot read the history of `{scenario}`")]
    History {
        scenario: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot upload the reports to {location}")]
    Upload {
        location: String,
        #[source]
        source: StoreError,
    },
    #[error("the reports are uploaded to {folder}, and the drill cannot be appended to its history")]
    Append {
        folder: String,
        #[source]
        source: StoreError,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Published {
    /// The drill's folder in the store.
    pub folder: String,
    pub files: usize,
    /// The history appended to.
    pub history: String,
    /// What to say besides (a store that took no conditional write).
    pub warnings: Vec<String>,
}

/// The store the reports of a run go to, and the local folder they are written in first.
/// The object, under the prefix, that proves the store writable before a drill.
const PROBE: &str = ".pgdrill-write-probe";

#[derive(Debug)]
pub(crate) struct Remote {
    bucket: Bucket,
    /// The prefix, without its slashes at either end (empty: the bucket's top).
    prefix: String,
    local: tempfile::TempDir,
    /// For each scenario whose history was read: how many lines it had.
    read: HashMap<String, usize>,
    /// Whether an upload failed: the local folder is then kept.
    failed: bool,
}

impl Remote {
    /// The store `--reports` names, when it names one (`None` for a local folder).
    pub(crate) fn for_reports(reports: &Path) -> Result<Option<Remote>, PublishError> {
        let text = reports.to_string_lossy();
        if !store::is_url(&text) {
            return Ok(None);
        }
        let (bucket, prefix) = store::parse_url(&text)?;
        let bucket = Bucket::from_env(&bucket, &Redactor::new())?;
        let local = tempfile::Builder::new().prefix("pgdrill-reports-").tempdir().map_err(PublishError::Local)?;
        let prefix = prefix.trim_matches('/').to_owned();
        Ok(Some(Remote { bucket, prefix, local, read: HashMap::new(), failed: false }))
    }

    /// Whether the store answers, lets the prefix be listed and written, before any drill: a
    /// missing bucket, wrong credentials or a read-only policy would otherwise be found only at
    /// the first upload, after a drill. The object written to prove it is removed; a store that
    /// refuses the removal keeps it (one object, always the same key).
    pub(crate) async fn probe(&self) -> Result<(), PublishError> {
        let failed = |source| PublishError::Probe { location: self.url(), source };
        self.bucket.probe(&self.prefix).await.map_err(failed)?;
        let key = self.key(PROBE);
        let text = "pgdrill proves it may write its reports here before a drill; this object is removed after.\n";
        self.bucket.write(&key, text.as_bytes().to_vec()).await.map_err(failed)?;
        let _ = self.bucket.remove(&key).await;
        Ok(())
    }

    /// Where the drills write their reports before they are uploaded.
    pub(crate) fn local_root(&self) -> &Path {
        self.local.path()
    }

    /// The store's URL of the reports.
    pub(crate) fn url(&self) -> String {
        self.bucket.url(&self.key(""))
    }

    /// The key of `relative` under the prefix.
    fn key(&self, relative: &str) -> String {
        match self.prefix.as_str() {
            "" => relative.to_owned(),
            prefix => format!("{prefix}/{relative}"),
        }
    }

    /// Reads the history of `scenario` from the store into the local folder, where the drill
    /// reads it (none there: its first drill); returns how many past drills it holds.
    pub(crate) async fn before(&mut self, scenario: &str) -> Result<usize, PublishError> {
        let key = self.key(&format!("{scenario}/history.jsonl"));
        let read = self
            .bucket
            .read(&key)
            .await
            .map_err(|source| PublishError::History { scenario: scenario.to_owned(), source })?;
        let folder = self.local.path().join(scenario);
        let path = crate::outcome::history::under_root(self.local.path(), scenario);
        let write = |source| PublishError::Write { path: path.clone(), source };
        std::fs::create_dir_all(&folder).map_err(write)?;
        let mut bytes = read.map(|(bytes, _)| bytes).unwrap_or_default();
        // The drill appends a line: the last one read must end.
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        std::fs::write(&path, &bytes).map_err(write)?;
        let lines = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
        self.read.insert(scenario.to_owned(), lines);
        Ok(lines)
    }

    /// Uploads the drill's folder `dir` (under the local folder) and appends the lines it added
    /// to the local copy `history` to the scenario's history in the store.
    pub(crate) async fn publish(
        &mut self,
        dir: &Path,
        history: &Path,
        record: &DrillRecord,
    ) -> Result<Published, PublishError> {
        let result = self.upload(dir, history, record).await;
        self.failed |= result.is_err();
        result
    }

    async fn upload(&self, dir: &Path, history: &Path, record: &DrillRecord) -> Result<Published, PublishError> {
        let scenario = &record.scenario.name;
        let stamp = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let folder_key = self.free_folder(scenario, &stamp).await?;
        let folder = self.bucket.url(&format!("{folder_key}/"));
        let files = self
            .bucket
            .upload_folder(dir, &folder_key, "drill.json")
            .await
            .map_err(|source| PublishError::Upload { location: folder.clone(), source })?;
        let history_key = self.key(&format!("{scenario}/history.jsonl"));
        let lines = self.new_lines(history, scenario, &folder)?;
        let append = |source| PublishError::Append { folder: folder.clone(), source };
        let warnings = append_lines(&self.bucket, &history_key, &lines).await.map_err(append)?;
        Ok(Published { folder, files, history: self.bucket.url(&history_key), warnings })
    }

    /// `scenario/stamp` under the prefix, or `scenario/stamp-2`, ... when a drill of the same
    /// scenario that started in the same second is there already.
    async fn free_folder(&self, scenario: &str, stamp: &str) -> Result<String, PublishError> {
        let mut n = 1;
        loop {
            let name = if n == 1 { stamp.to_owned() } else { format!("{stamp}-{n}") };
            let key = self.key(&format!("{scenario}/{name}"));
            let taken = self
                .bucket
                .list(&key)
                .await
                .map_err(|source| PublishError::Upload { location: self.bucket.url(&format!("{key}/")), source })?;
            if taken.is_empty() {
                return Ok(key);
            }
            n += 1;
        }
    }

    /// The lines the drill appended to the local history (those after the ones read from the
    /// store), each naming the drill's folder in the store rather than the local one.
    fn new_lines(&self, history: &Path, scenario: &str, folder: &str) -> Result<Vec<String>, PublishError> {
        let text = match std::fs::read_to_string(history) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(PublishError::Write { path: history.to_owned(), source }),
        };
        let past = self.read.get(scenario).copied().unwrap_or(0);
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .skip(past)
            .map(|line| match serde_json::from_str::<HistoryEntry>(line) {
                Ok(entry) => {
                    let entry = HistoryEntry { report_dir: folder.to_owned(), ..entry };
                    serde_json::to_string(&entry).unwrap_or_else(|_| line.to_owned())
                }
                Err(_) => line.to_owned(),
            })
            .collect())
    }

    /// Removes the local copy of a drill's folder that is safely in the store.
    pub(crate) async fn forget(&self, dir: &Path) {
        if dir.starts_with(self.local.path()) {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
    }

    /// Ends the run: the local folder is removed, unless an upload failed (its path returned:
    /// the reports that did not reach the store are there).
    pub(crate) fn finish(self) -> Option<PathBuf> {
        self.failed.then(|| self.local.keep())
    }
}

/// Appends `lines` to the object `key`: read, append, write back only if it is still as read;
/// again when another writer came first. Returns the warnings: a store that takes no conditional
/// write is written over, and said.
pub(crate) async fn append_lines(bucket: &Bucket, key: &str, lines: &[String]) -> Result<Vec<String>, StoreError> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let mut tries = 0;
    loop {
        let (mut bytes, read) = match bucket.read(key).await? {
            Some((bytes, read)) => (bytes, Some(read)),
            None => (Vec::new(), None),
        };
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        for line in lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        match bucket.write_if(key, bytes.clone(), read).await {
            Ok(()) => return Ok(Vec::new()),
            Err(StoreError::Conflict { .. }) if tries < CONFLICT_RETRIES => tries += 1,
            Err(StoreError::NoConditional { message, .. }) => {
                bucket.write(key, bytes).await?;
                return Ok(vec![format!(
                    "{} was written over without checking that no other drill wrote it meanwhile: the store takes no conditional write ({message}); two drills of one scenario at once are not supported",
                    bucket.url(key)
                )]);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::*;

    /// The drill's line goes at the end of the history in the store, naming its folder there;
    /// a history the store does not have yet is made.
    #[tokio::test]
    async fn a_drill_appends_its_line_to_the_history_in_the_store() {
        let bucket = Bucket::over(Arc::new(InMemory::new()), "fleet");
        let key = "drills/orders/history.jsonl";
        assert_eq!(append_lines(&bucket, key, &["{\"a\":1}".into()]).await.unwrap(), Vec::<String>::new());
        bucket.write(key, b"{\"a\":1}".to_vec()).await.unwrap();
        append_lines(&bucket, key, &["{\"b\":2}".into()]).await.unwrap();
        assert_eq!(bucket.read(key).await.unwrap().unwrap().0, b"{\"a\":1}\n{\"b\":2}\n");
        assert!(append_lines(&bucket, key, &[]).await.unwrap().is_empty());

        let local = tempfile::tempdir().unwrap();
        let remote = Remote {
            bucket: bucket.clone(),
            prefix: "drills".into(),
            local,
            read: HashMap::from([("orders".to_owned(), 1)]),
            failed: false,
        };
        let history = remote.local_root().join("history.jsonl");
        let (a, b) = (
            crate::outcome::history::tests::drill("orders", "a"),
            crate::outcome::history::tests::drill("orders", "b"),
        );
        let line = |record: &DrillRecord, dir: &str| {
            serde_json::to_string(&HistoryEntry::of(record, Path::new(dir), "m".into())).unwrap()
        };
        std::fs::write(&history, format!("{}\n{}\n", line(&a, "old"), line(&b, "/tmp/x/orders/t"))).unwrap();
        let lines = remote.new_lines(&history, "orders", "s3://fleet/drills/orders/t/").unwrap();
        assert_eq!(
            lines,
            [line(&b, "s3://fleet/drills/orders/t/")],
            "the drill's line only, naming its folder in the store"
        );
        assert_eq!(remote.url(), "s3://fleet/drills/");
        assert_eq!(remote.finish(), None, "nothing failed: the local folder goes");
    }

    /// Before a drill, its scenario's history comes down where the drill reads and appends it
    /// (its last line ended, so that the next one is a line of its own); none is an empty one.
    #[tokio::test]
    async fn the_history_comes_down_before_the_drill() {
        let bucket = Bucket::over(Arc::new(InMemory::new()), "fleet");
        bucket.write("p/orders/history.jsonl", b"{}\n{\"last\":1}".to_vec()).await.unwrap();
        let mut remote = Remote {
            bucket,
            prefix: "p".into(),
            local: tempfile::tempdir().unwrap(),
            read: HashMap::new(),
            failed: false,
        };
        assert_eq!(remote.before("orders").await.unwrap(), 2);
        let local = std::fs::read_to_string(remote.local_root().join("orders/history.jsonl")).unwrap();
        assert_eq!(local, "{}\n{\"last\":1}\n");
        assert_eq!(remote.before("billing").await.unwrap(), 0, "its first drill");
        assert!(remote.local_root().join("billing/history.jsonl").is_file());
        remote.failed = true;
        let kept = remote.finish().expect("a failed upload keeps the local folder");
        assert!(kept.join("orders/history.jsonl").is_file());
        tokio::fs::remove_dir_all(kept).await.unwrap();
    }
}
