//! A follower's look at an archive in S3: what is there after the last segment planned, in as
//! few requests as a look every few seconds can afford, and the new segments copied into the
//! drill's copy of the archive (`mirror`) before the feed is given them.
//!
//! A prefix of segments (`wal_archive`) is listed from the last segment planned on (the store's
//! `start-after`). A pgBackRest repository (`repo1-type=s3`) or a barman-cloud server keeps a
//! folder per log (`0000000100000004/`) and its timelines' histories at the top: a look lists
//! the top (the histories and the logs there are), the planned segment's log after it, and the
//! first log after that one on the timeline the next segment is on. A log missing whole is then
//! a gap the follower names, not a silence.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use super::{Listing, LookError, Position};
use crate::secret::Redactor;
use crate::source::SourceError;
use crate::source::physical::pgbackrest;
use crate::source::physical::wal::{self, Archived};
use crate::source::s3::{Bucket, Listed, S3Spec};

/// How long a store's look may take, its retries included, before the store is said not to
/// answer (the follower waits for nothing else meanwhile).
const PATIENCE: Duration = Duration::from_secs(20);

/// How an archive in a store lays out its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreLayout {
    /// Each segment (compressed or not) and history directly under the prefix.
    Flat,
    /// A pgBackRest repository's archive of one cluster (`archive/<stanza>/<id>`): a folder per
    /// log of `<segment>-<sha1>[.gz|.zst|.lz4|.bz2]`, the SHA-1 checked by the feed.
    PgBackRest,
    /// A barman-cloud server's `wals`: a folder per log of `<segment>[.gz|.lz4|...]`.
    Barman,
}

/// An archive in a store, and the drill's copy of it on this machine.
pub(super) struct Store<'a> {
    pub spec: &'a S3Spec,
    pub redactor: &'a Redactor,
    pub mirror: &'a Path,
    pub layout: StoreLayout,
}

impl Store<'_> {
    /// Lists what is there after the last segment planned (the histories of timelines later
    /// than the one followed copied into the mirror, to be read there).
    pub(super) async fn list(&self, bucket: &Bucket<'_>, at: &Position) -> Result<Listing, LookError> {
        let after = at.segment(at.planned).name(at.segment_size);
        let mut listing = Listing::default();
        if self.layout == StoreLayout::Flat {
            let listed = self.patiently(bucket.list_after("", &after)).await?;
            self.histories(bucket, &listed, at, &mut listing).await?;
            self.segments("", listed, &mut listing);
        } else {
            let top = self.patiently(bucket.top()).await?;
            let files: Vec<Listed> =
                top.files.iter().map(|name| Listed { name: name.clone(), key: self.key(name), size: 0 }).collect();
            self.histories(bucket, &files, at, &mut listing).await?;
            listing.timelines = logs_timelines(&top.folders);
            for (log, after) in logs_to_list(&top.folders, at) {
                let listed = self.patiently(bucket.list_after(&log, &after)).await?;
                self.segments(&log, listed, &mut listing);
            }
        }
        listing.segments.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listing)
    }

    /// Copies the segments `next` into the mirror, each refused when larger than any segment
    /// (whoever writes the bucket could fill the follower's disk).
    pub(super) async fn fetch(
        &self,
        bucket: &Bucket<'_>,
        listing: &Listing,
        next: &[Archived],
        at: &Position,
    ) -> Result<(), LookError> {
        for archived in next {
            let (key, size) = &listing.keys[&archived.name];
            // A compressed segment is hardly larger than the segment itself.
            if *size > at.segment_size + (1 << 20) {
                let location = format!("s3://{}/{key}", self.spec.bucket);
                return Err(LookError::TooLarge { location, size: *size, segment_size: at.segment_size });
            }
            if let Some(log) = archived.path.parent() {
                std::fs::create_dir_all(log)
                    .map_err(|source| LookError::Folder { path: log.display().to_string(), source })?;
            }
            self.patiently(bucket.fetch(key, &archived.path)).await?;
        }
        Ok(())
    }

    /// The store's bucket, opened once for a look.
    pub(super) fn open(&self) -> Result<Bucket<'_>, LookError> {
        Bucket::open(self.spec, self.redactor).map_err(steady)
    }

    /// The key of `name` directly under the prefix.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.spec.key)
    }

    /// A request, given up on (the store said silent) after [`PATIENCE`].
    async fn patiently<T>(&self, request: impl Future<Output = Result<T, SourceError>>) -> Result<T, LookError> {
        let silent = || LookError::Silent { location: self.spec.location(), waited: PATIENCE };
        tokio::time::timeout(PATIENCE, request).await.map_err(|_| silent())?.map_err(steady)
    }

    /// Notes the histories among `listed` (at the top), each of a timeline later than the one
    /// followed copied into the mirror unless it is there.
    async fn histories(
        &self,
        bucket: &Bucket<'_>,
        listed: &[Listed],
        at: &Position,
        listing: &mut Listing,
    ) -> Result<(), LookError> {
        for object in listed {
            let Some(timeline) = wal::history_file_timeline(&object.name) else { continue };
            let path = self.mirror.join(&object.name);
            if timeline > at.path.target && !path.exists() {
                self.patiently(bucket.fetch(&object.key, &path)).await?;
            }
            listing.histories.push(timeline);
        }
        Ok(())
    }

    /// Notes the segments among `listed` (in the folder `log` under the prefix, or at its top),
    /// each by name once: a file in a log's folder is one of that log's.
    fn segments(&self, log: &str, listed: Vec<Listed>, listing: &mut Listing) {
        for object in listed {
            let (name, sha1) = match self.layout {
                StoreLayout::PgBackRest => match pgbackrest::segment_of(&object.name) {
                    Some((segment, sha1)) => (segment.to_owned(), Some(sha1.to_owned())),
                    None => continue,
                },
                StoreLayout::Flat | StoreLayout::Barman => match wal::segment_file_name(&object.name) {
                    Some(name) => (name, None),
                    None => continue,
                },
            };
            if !name.starts_with(log) || listing.keys.contains_key(&name) {
                continue;
            }
            let path = self.mirror.join(log).join(&object.name);
            listing.segments.push(Archived { name: name.clone(), path, sha1 });
            listing.keys.insert(name, (object.key, object.size));
        }
    }
}

/// Whether a folder's name is a log's (`<timeline><log>`, 16 hexadecimal digits).
fn is_log(name: &str) -> bool {
    name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The timelines of the logs' folders: those the archive holds segments of.
fn logs_timelines(folders: &[String]) -> BTreeSet<u32> {
    folders.iter().filter(|f| is_log(f)).filter_map(|f| u32::from_str_radix(&f[..8], 16).ok()).collect()
}

/// The logs a look lists, each with the name its listing starts after: the last planned
/// segment's log after it, and the first log after that one on the next segment's timeline (the
/// next log when the planned segment is its log's last; a later one when logs are missing, so
/// that a missing log is a gap).
fn logs_to_list(folders: &[String], at: &Position) -> Vec<(String, String)> {
    let planned = at.segment(at.planned).name(at.segment_size);
    let next = at.segment(at.planned + 1).name(at.segment_size);
    let (current, timeline) = (planned[..16].to_ascii_uppercase(), &next[..8]);
    let mut logs = Vec::new();
    let found = |log: &str| folders.iter().find(|f| f.eq_ignore_ascii_case(log)).cloned();
    if let Some(log) = found(&current) {
        logs.push((log, planned.clone()));
    }
    let later = folders
        .iter()
        .filter(|f| is_log(f) && f[..8].eq_ignore_ascii_case(timeline))
        .filter(|f| f.to_ascii_uppercase() > current && f.to_ascii_uppercase() >= next[..16].to_ascii_uppercase())
        .min_by_key(|f| f.to_ascii_uppercase());
    logs.extend(later.map(|log| (log.clone(), String::new())));
    logs
}

/// A store's error as a fault says it: without how long its requests took (`in 417.9ms`), so
/// that the same reason at each look is the same fault, said once.
pub(super) fn steady(error: SourceError) -> LookError {
    static TOOK: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r" in [0-9.]+(ns|µs|ms|s)\b").expect("valid"));
    LookError::Store(match error {
        SourceError::Http { location, message } => {
            SourceError::Http { location, message: TOOK.replace_all(&message, "").into_owned() }
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::physical::timeline::TimelinePath;

    const SIZE: u64 = 16 << 20;

    fn at(planned: u64) -> Position {
        Position { path: TimelinePath::only(1), segment_size: SIZE, planned, replayed: Some(planned), first: 2 }
    }

    fn folders(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_look_lists_the_planned_segments_log_after_it_and_the_next_log_on_its_timeline() {
        let logs = folders(&["0000000100000000", "0000000100000001", "0000000100000002", "0000000200000002"]);
        assert_eq!(
            logs_to_list(&logs, &at(0x110)),
            [
                ("0000000100000001".to_owned(), "000000010000000100000010".to_owned()),
                ("0000000100000002".to_owned(), String::new())
            ]
        );
        assert_eq!(logs_timelines(&logs), BTreeSet::from([1, 2]));
    }

    #[test]
    fn a_log_missing_whole_is_passed_over_to_the_next_there_so_that_its_gap_is_seen() {
        let logs = folders(&["0000000100000000", "0000000100000003", "00000002000000FF", "not-a-log"]);
        // The planned segment is its log's last; logs 1 and 2 are missing.
        assert_eq!(
            logs_to_list(&logs, &at(0xFF)),
            [
                ("0000000100000000".to_owned(), "0000000100000000000000FF".to_owned()),
                ("0000000100000003".to_owned(), String::new())
            ]
        );
        // No log of the planned segment yet, nor any after it.
        assert!(logs_to_list(&folders(&["0000000100000000"]), &at(0x1FF)).is_empty());
    }

    #[test]
    fn after_a_timeline_switch_the_next_log_is_the_new_timelines() {
        let mut position = at(0x1FF);
        position.path = TimelinePath::only(2);
        position.path.stretches = vec![(1, 0), (2, 0x2_0000_0000)];
        let logs = folders(&["0000000100000001", "0000000100000002", "0000000200000002"]);
        let listed = logs_to_list(&logs, &position);
        assert_eq!(listed.last().map(|(log, _)| log.as_str()), Some("0000000200000002"), "{listed:?}");
    }
}
