//! The follow soak's S3 arm: the source's archive mirrored into an S3-compatible store on
//! loopback (moto), each segment put there about half a second after it lands in the folder, as
//! an archiver that uploads does, and a second follower that follows the S3 prefix.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::servers::S3Server;

/// The bucket and the prefix the archive is mirrored to.
pub(crate) const BUCKET: &str = "soak";
pub(crate) const PREFIX: &str = "wal";

/// The store and the thread that mirrors the archive into it, until dropped.
pub(crate) struct Mirror {
    pub store: S3Server,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the store with the archive as it is, and mirrors the segments archived later. While
/// `archive/.hold` exists (the soak's faults), nothing is put: what is there once it is gone is.
pub(crate) fn mirror(archive: &Path) -> Mirror {
    let store = S3Server::start();
    let mut put = BTreeSet::new();
    let now = crate::soak_events::held(archive);
    let objects: Vec<(String, Vec<u8>)> =
        now.iter().map(|n| (key(n), std::fs::read(archive.join(n)).unwrap())).collect();
    store.put(BUCKET, &objects.iter().map(|(k, v)| (k.as_str(), v.clone())).collect::<Vec<_>>());
    put.extend(now);
    let stop = Arc::new(AtomicBool::new(false));
    let (archive, endpoint, stopped) = (archive.to_owned(), store.endpoint.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
        while !stopped.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(500));
            if archive.join(".hold").exists() {
                continue;
            }
            for name in crate::soak_events::held(&archive) {
                if put.insert(name.clone()) {
                    let bytes = std::fs::read(archive.join(&name)).unwrap();
                    crate::servers::put_objects(&endpoint, BUCKET, &[(&key(&name), bytes)]);
                }
            }
        }
    });
    Mirror { store, stop, thread: Some(thread) }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn key(name: &str) -> String {
    format!("{PREFIX}/{name}")
}

/// The scenario of the S3 follower: the same base backup, its archive the mirror at `endpoint`.
pub(crate) fn scenario(backup: &Path, dir: &Path, name: &str, endpoint: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "name = \"{name}\"\n\n[source]\npath = \"{}\"\nwal_archive = \"s3://{BUCKET}/{PREFIX}/\"\n\
         endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\n[target]\ndatabase = \"books\"\n",
        backup.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}
