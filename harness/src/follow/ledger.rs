//! The ledger of what a follower proved: one JSON line per segment replayed (its name, size,
//! SHA-256, when it was archived and replayed, the LSN replay reached), and one line each time a
//! follower starts on a base backup. Append-only: each line carries the SHA-256 of the line
//! before it (`prev`), so a line changed, removed or inserted later breaks the chain, and a
//! restarted follower reads it whole before it adds a line. A segment it replays again (it
//! restored the base backup again) must have the digest recorded for it, and is not recorded
//! twice; a line cut short by a kill is the only damage repaired (it recorded nothing).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::restore::physical::feed::Given;

/// The ledger's file name in the follower's state folder.
pub(crate) const NAME: &str = "ledger.jsonl";

/// A line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Its place in the ledger, from 1.
    pub seq: u64,
    /// The SHA-256 of the line before it, as written (empty for the first line).
    pub prev: String,
    #[serde(flatten)]
    pub line: Line,
}

/// What a line records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Line {
    /// A follower started on a base backup: the segments after it are replayed from there.
    Start {
        /// When (RFC 3339).
        at: String,
        /// The base backup, as the scenario names it.
        backup: String,
        /// The database system it belongs to.
        system: String,
        /// The segment its recovery starts in.
        from: String,
    },
    /// A segment replayed whole.
    Segment {
        segment: String,
        bytes: u64,
        /// The SHA-256 of the segment as recovery read it (decompressed).
        sha256: String,
        /// When the store says it was archived (its file's time), RFC 3339.
        archived_at: Option<String>,
        /// When replay passed its end, RFC 3339.
        replayed_at: String,
        /// Where replay was then.
        lsn: String,
    },
    /// The follower goes on along a later timeline, which left the one followed at `from`.
    Timeline {
        timeline: u32,
        from: String,
        /// Its history file, and the SHA-256 of it as the archive held it.
        history: String,
        sha256: String,
        /// When (RFC 3339).
        at: String,
    },
    /// A marker confirmed: replay passed the restore point the source wrote.
    Marker {
        name: String,
        /// Where its record starts.
        lsn: String,
        /// When the source wrote it (its clock) and when replay passed it, RFC 3339.
        written_at: String,
        replayed_at: String,
        /// From its commit to its replay, in milliseconds.
        latency_ms: u64,
    },
}

/// Why the ledger cannot be read or added to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LedgerError {
    #[error("cannot {action} the ledger `{path}`")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not the ledger's, or out of its chain: the ledger was changed.
    #[error(
        "the ledger `{path}` was changed after it was written: line {line} {why} (hint: it is evidence; start a new one in another --state folder and keep this one for whoever looks into it)"
    )]
    Broken { path: String, line: usize, why: String },
    /// A segment replayed again is not the one proven before.
    #[error(
        "segment {segment} in the archive now has SHA-256 {now}; the ledger recorded {recorded} when it was replayed at {replayed_at}: the archive's segment changed after it was proven"
    )]
    Changed { segment: String, now: String, recorded: String, replayed_at: String },
    /// A segment out of order: one before it was not recorded.
    #[error("segment {segment} follows {last} in the ledger: the segments between were not replayed")]
    Skipped { segment: String, last: String },
}

/// How a line read is out of the ledger's chain.
#[derive(Debug, thiserror::Error)]
enum OutOfPlace {
    #[error("is numbered {seq}, after {after}")]
    Numbered { seq: u64, after: u64 },
    #[error("does not carry the digest of the line before it")]
    Unchained,
    #[error("records a segment out of order: {0}")]
    Order(#[source] Box<LedgerError>),
}

/// What [`Ledger::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// A new line.
    New,
    /// The segment was recorded before, with this digest.
    Again,
}

/// The ledger file, read and chained.
pub(crate) struct Ledger {
    path: PathBuf,
    /// The last line's number and digest.
    seq: u64,
    last_digest: String,
    /// Each segment recorded: its digest and when it was replayed.
    recorded: std::collections::HashMap<String, (String, String)>,
    /// The last segment line since the last start, by number (segments must follow it).
    last_segment: Option<(u64, String)>,
    /// The newest segment recorded, by number, whatever the runs.
    newest: Option<u64>,
    /// The markers recorded.
    markers: std::collections::HashSet<String>,
    segment_size: u64,
    /// What was repaired when it was opened (a line cut short), said once.
    pub repaired: Option<String>,
}

impl Ledger {
    /// Opens the ledger at `path` (made when missing), checking every line's chain.
    pub(crate) fn open(path: &Path, segment_size: u64) -> Result<Ledger, LedgerError> {
        let shown = path.display().to_string();
        let io = |action| move |source| LedgerError::Io { action, path: path.display().to_string(), source };
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("read")(e)),
        };
        let mut ledger = Ledger {
            path: path.to_owned(),
            seq: 0,
            last_digest: String::new(),
            recorded: Default::default(),
            last_segment: None,
            newest: None,
            markers: Default::default(),
            segment_size,
            repaired: None,
        };
        let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for (index, raw) in text[..whole].split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let broken = |why: String| LedgerError::Broken { path: shown.clone(), line: index + 1, why };
            let entry: Entry =
                serde_json::from_slice(raw).map_err(|e| broken(format!("is not a ledger line ({e})")))?;
            ledger.take(entry, raw).map_err(|e| broken(e.to_string()))?;
        }
        if whole < text.len() {
            // A kill while a line was written: that line recorded nothing.
            let file = std::fs::OpenOptions::new().write(true).open(path).map_err(io("repair"))?;
            file.set_len(whole as u64).map_err(io("repair"))?;
            file.sync_all().map_err(io("repair"))?;
            ledger.repaired = Some(format!(
                "the ledger's last line was cut short ({} bytes, written when the follower was killed): removed, it recorded nothing",
                text.len() - whole
            ));
        }
        Ok(ledger)
    }

    /// Takes a line read from the file: its place and chain must be right.
    fn take(&mut self, entry: Entry, raw: &[u8]) -> Result<(), OutOfPlace> {
        if entry.seq != self.seq + 1 {
            return Err(OutOfPlace::Numbered { seq: entry.seq, after: self.seq });
        }
        if entry.prev != self.last_digest {
            return Err(OutOfPlace::Unchained);
        }
        self.note(&entry.line).map_err(|e| OutOfPlace::Order(Box::new(e)))?;
        self.seq = entry.seq;
        self.last_digest = hex::encode(Sha256::digest(raw));
        Ok(())
    }

    /// Notes what `line` records, refusing a segment out of order.
    fn note(&mut self, line: &Line) -> Result<(), LedgerError> {
        match line {
            Line::Start { .. } => self.last_segment = None,
            Line::Segment { segment, sha256, replayed_at, .. } => {
                let number =
                    crate::source::physical::wal::Segment::parse(segment, self.segment_size).map_or(0, |s| s.number);
                if let Some((last, name)) = &self.last_segment
                    && number != last + 1
                {
                    return Err(LedgerError::Skipped { segment: segment.clone(), last: name.clone() });
                }
                self.recorded.insert(segment.clone(), (sha256.clone(), replayed_at.clone()));
                self.last_segment = Some((number, segment.clone()));
                self.newest = self.newest.max(Some(number));
            }
            Line::Marker { name, .. } => {
                self.markers.insert(name.clone());
            }
            Line::Timeline { .. } => {}
        }
        Ok(())
    }

    /// How many lines it holds.
    pub(crate) fn lines(&self) -> u64 {
        self.seq
    }

    /// Its file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// How many segments it records.
    pub(crate) fn segments(&self) -> usize {
        self.recorded.len()
    }

    /// The number of the newest segment recorded (in any run), if any.
    pub(crate) fn newest_segment(&self) -> Option<u64> {
        self.newest
    }

    /// A follower starts on a base backup, or goes on along a later timeline.
    pub(crate) fn start(&mut self, line: Line) -> Result<(), LedgerError> {
        self.append(line)
    }

    /// Records `given` as replayed at `replayed_at` with replay at `lsn`, or confirms it was
    /// recorded before with the same digest.
    pub(crate) fn record(&mut self, given: &Given, replayed_at: String, lsn: String) -> Result<Recorded, LedgerError> {
        if let Some((recorded, at)) = self.recorded.get(&given.name) {
            if *recorded != given.sha256 {
                return Err(LedgerError::Changed {
                    segment: given.name.clone(),
                    now: given.sha256.clone(),
                    recorded: recorded.clone(),
                    replayed_at: at.clone(),
                });
            }
            return Ok(Recorded::Again);
        }
        self.append(Line::Segment {
            segment: given.name.clone(),
            bytes: given.bytes,
            sha256: given.sha256.clone(),
            archived_at: given.archived_at.map(crate::follow::rfc3339),
            replayed_at,
            lsn,
        })?;
        Ok(Recorded::New)
    }

    /// Records a confirmed marker, unless it was recorded before (a restarted follower replays
    /// its WAL again): whether it is new.
    pub(crate) fn marker(&mut self, confirmed: &crate::follow::markers::Confirmed) -> Result<bool, LedgerError> {
        if self.markers.contains(&confirmed.name) {
            return Ok(false);
        }
        self.append(Line::Marker {
            name: confirmed.name.clone(),
            lsn: crate::source::physical::wal::format_lsn(confirmed.lsn),
            written_at: crate::follow::rfc3339(confirmed.written_at),
            replayed_at: crate::follow::rfc3339(confirmed.replayed_at),
            latency_ms: u64::try_from(confirmed.latency.as_millis()).unwrap_or(u64::MAX),
        })?;
        Ok(true)
    }

    /// Appends `line`, chained, and syncs it to disk before anything says it was recorded.
    fn append(&mut self, line: Line) -> Result<(), LedgerError> {
        self.note(&line)?;
        let entry = Entry { seq: self.seq + 1, prev: self.last_digest.clone(), line };
        let raw = serde_json::to_vec(&entry).expect("a ledger line serializes");
        let io = |action| {
            let path = self.path.display().to_string();
            move |source| LedgerError::Io { action, path, source }
        };
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io("open"))?;
        file.write_all(&[raw.as_slice(), b"\n"].concat()).map_err(io("append to"))?;
        file.sync_data().map_err(io("sync"))?;
        self.seq = entry.seq;
        self.last_digest = hex::encode(Sha256::digest(&raw));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
