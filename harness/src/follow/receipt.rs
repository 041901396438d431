//! A follower's receipts, in STATE/receipts/ (their format and verification:
//! `evidence::receipts`): at each `--receipt-every`, and once more when the follower stops, an
//! in-toto statement over the ledger's lines written since the last receipt (none when there are
//! none), signed as a drill's evidence is when a key was given. Here the window's bookkeeping:
//! where its lines start in the ledger's file, the longest proof lag measured and the faults found
//! since the last receipt. A restarted follower's first window starts after the last receipt
//! written, so that receipts cover the ledger one after the other, each line once.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::faults::{Fault, Faults};
use super::ledger::{Entry, Ledger, Line};
use crate::evidence::receipts::{self, Point, Predicate};
use crate::evidence::sign::Signer;
use crate::evidence::statement::{self, Statement, Subject};

/// Why a receipt cannot be written, or the receipts are not the ledger's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReceiptError {
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A receipt covers lines the ledger no longer has.
    #[error(
        "the receipt `{receipt}` covers the ledger's lines up to {last}, and the ledger `{ledger}` has {lines}: lines were removed from it after they were receipted (hint: it is evidence; start a new one in another --state folder and keep this one for whoever looks into it)"
    )]
    Truncated { receipt: String, last: u64, ledger: String, lines: u64 },
    /// The ledger's file is not what the follower wrote in it.
    #[error("the ledger `{ledger}` changed while the follower ran: line {line} {why}")]
    Changed { ledger: String, line: u64, why: String },
    #[error("cannot sign the receipt `{receipt}`")]
    Sign {
        receipt: String,
        #[source]
        source: ssh_key::Error,
    },
}

/// The receipts a follower writes, and its window since the last one.
pub(crate) struct Receipts {
    dir: PathBuf,
    ledger: PathBuf,
    scenario: String,
    every: Duration,
    signer: Option<Signer>,
    due: Instant,
    /// The window's first line, and where it starts in the ledger's file.
    first: u64,
    offset: u64,
    /// When the window started: the last receipt's end (before the first receipt, the time of
    /// the ledger's first line).
    started_at: Option<String>,
    /// The proof lag measured last, and the longest in the window.
    lag: Duration,
    lag_max: Duration,
    /// The faults found before the window, by kind.
    faults_before: BTreeMap<&'static str, u64>,
}

impl Receipts {
    /// The receipts in `state`'s folder, a receipt every `every` (signed by `signer`) over the
    /// lines of `ledger` after the last one. Says once where they go and how they are signed.
    pub(crate) fn open(
        state: &Path,
        every: Duration,
        signer: Option<Signer>,
        ledger: &Ledger,
        scenario: &str,
        say: &dyn Fn(String),
    ) -> Result<Receipts, ReceiptError> {
        let dir = state.join(receipts::FOLDER);
        let io = |action, path: &Path| {
            let path = path.display().to_string();
            move |source| ReceiptError::Io { action, path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let last = last_receipt(&dir, say).map_err(io("read", &dir))?;
        let (first, started_at) = match &last {
            None => (1, None),
            Some((name, covered)) if *covered > ledger.lines() => {
                return Err(ReceiptError::Truncated {
                    receipt: dir.join(name).display().to_string(),
                    last: *covered,
                    ledger: ledger.path().display().to_string(),
                    lines: ledger.lines(),
                });
            }
            Some((name, covered)) => (covered + 1, ended_at(&dir.join(name))),
        };
        let text = match std::fs::read(ledger.path()) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            read => read.map_err(io("read", ledger.path()))?,
        };
        let offset = text.split_inclusive(|b| *b == b'\n').take(first as usize - 1).map(<[u8]>::len).sum::<usize>();
        say(format!(
            "a receipt every {} in `{}`, {}",
            humantime::format_duration(every),
            dir.display(),
            match &signer {
                Some(signer) => format!("signed by key {}", signer.fingerprint()),
                None => format!(
                    "unsigned: no signing key was given (--signing-key, {} or {}), so nothing proves who wrote them",
                    crate::evidence::sign::KEY_FILE_ENV,
                    crate::evidence::sign::KEY_ENV
                ),
            }
        ));
        Ok(Receipts {
            dir,
            ledger: ledger.path().to_owned(),
            scenario: scenario.to_owned(),
            every,
            signer,
            due: Instant::now() + every,
            first,
            offset: offset as u64,
            started_at,
            lag: Duration::ZERO,
            lag_max: Duration::ZERO,
            faults_before: BTreeMap::new(),
        })
    }

    /// The proof lag was measured.
    pub(crate) fn note_lag(&mut self, lag: Duration) {
        self.lag = lag;
        self.lag_max = self.lag_max.max(lag);
    }

    /// Writes the window's receipt when one is due.
    pub(crate) fn tick(&mut self, ledger: &Ledger, faults: &Faults, say: &dyn Fn(String)) {
        if Instant::now() >= self.due {
            self.due = Instant::now() + self.every;
            self.close(ledger, faults, say);
        }
    }

    /// Writes the window's receipt now (the follower stops), when it holds a line; says what it
    /// wrote, or why it could not (its lines are then in the next window).
    pub(crate) fn close(&mut self, ledger: &Ledger, faults: &Faults, say: &dyn Fn(String)) {
        match self.write(ledger, faults) {
            Ok(Some(line)) => say(line),
            Ok(None) => {}
            Err(e) => say(format!(
                "cannot write a receipt (the next one covers its lines): {}",
                crate::error::error_chain(&e)
            )),
        }
    }

    /// Writes the receipt of the lines since the last one, its signature first (a receipt is
    /// there only once it is signed), each whole; what to say of it.
    fn write(&mut self, ledger: &Ledger, faults: &Faults) -> Result<Option<String>, ReceiptError> {
        let (first, last) = (self.first, ledger.lines());
        if last < first {
            return Ok(None);
        }
        let lines = self.read_window(last - first + 1)?;
        let predicate = self.predicate(&lines, first, faults)?;
        let digest = hex::encode(Sha256::digest(&lines));
        let statement = Statement {
            type_: statement::STATEMENT_TYPE.to_owned(),
            subject: vec![Subject {
                name: receipts::subject(first, last),
                digest: BTreeMap::from([("sha256".to_owned(), digest)]),
            }],
            predicate_type: receipts::PREDICATE_TYPE.to_owned(),
            predicate: serde_json::to_value(&predicate).expect("a receipt's predicate serializes"),
        };
        let text = statement::render(&statement);
        let name = receipts::name(first, last);
        let signed_by = match &self.signer {
            None => String::new(),
            Some(signer) => {
                let pem = signer
                    .sign(text.as_bytes())
                    .map_err(|source| ReceiptError::Sign { receipt: name.clone(), source })?;
                self.put(&receipts::signature_name(&name), pem.as_bytes())?;
                format!(", signed by key {}", signer.fingerprint())
            }
        };
        self.put(&name, text.as_bytes())?;
        self.first = last + 1;
        self.offset += lines.len() as u64;
        self.started_at = Some(predicate.ended_at);
        self.lag_max = self.lag;
        self.faults_before = faults.found_by_kind.clone();
        Ok(Some(format!(
            "receipt of ledger {} ({} segment{}): `{}`{signed_by}",
            receipts::lines(first, last),
            predicate.segments,
            if predicate.segments == 1 { "" } else { "s" },
            self.dir.join(&name).display()
        )))
    }

    /// The next `count` lines of the ledger's file from the window's start, line breaks kept.
    fn read_window(&self, count: u64) -> Result<Vec<u8>, ReceiptError> {
        let io = |action| {
            let path = self.ledger.display().to_string();
            move |source| ReceiptError::Io { action, path, source }
        };
        let mut file = std::fs::File::open(&self.ledger).map_err(io("open"))?;
        file.seek(std::io::SeekFrom::Start(self.offset)).map_err(io("read"))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(io("read"))?;
        let ends: Vec<usize> = text.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1).collect();
        match ends.get(count as usize - 1) {
            Some(end) => {
                text.truncate(*end);
                Ok(text)
            }
            None => Err(ReceiptError::Changed {
                ledger: self.ledger.display().to_string(),
                line: self.first + ends.len() as u64,
                why: "is missing".into(),
            }),
        }
    }

    /// What the receipt of `lines` (from line `first`) says.
    fn predicate(&self, lines: &[u8], first: u64, faults: &Faults) -> Result<Predicate, ReceiptError> {
        let mut window = Window::default();
        for (i, raw) in lines.split_inclusive(|b| *b == b'\n').enumerate() {
            let line = first + i as u64;
            let changed = |why: String| ReceiptError::Changed { ledger: self.ledger.display().to_string(), line, why };
            let entry: Entry =
                serde_json::from_slice(raw).map_err(|e| changed(format!("is not a ledger line ({e})")))?;
            if entry.seq != line {
                return Err(changed(format!("is numbered {}", entry.seq)));
            }
            window.take(entry);
        }
        let found = faults.found_by_kind.iter().map(|(kind, n)| (kind, n - self.faults_before.get(kind).unwrap_or(&0)));
        Ok(Predicate {
            scenario: self.scenario.clone(),
            first_seq: first,
            last_seq: first + window.lines - 1,
            prev: window.prev,
            segments: window.segments,
            first_segment: window.first_segment,
            last_segment: window.last_segment,
            proof_lag_max_seconds: (self.lag_max.as_secs_f64() * 1000.0).round() / 1000.0,
            faults: found.filter(|(_, n)| *n > 0).map(|(kind, n)| ((*kind).to_owned(), n)).collect(),
            faults_standing: Fault::KINDS.iter().filter(|k| faults.stands(k)).map(|k| (*k).to_owned()).collect(),
            markers: window.markers,
            started_at: self.started_at.clone().unwrap_or(window.first_at),
            ended_at: super::rfc3339(SystemTime::now()),
            pgdrill_version: env!("CARGO_PKG_VERSION").to_owned(),
        })
    }

    /// Writes `bytes` as `name` in the receipts' folder, whole and synced.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), ReceiptError> {
        let path = self.dir.join(name);
        let partial = self.dir.join(format!(".{name}.partial"));
        let io = |action, path: &Path| {
            let path = path.display().to_string();
            move |source| ReceiptError::Io { action, path, source }
        };
        let mut file = std::fs::File::create(&partial).map_err(io("write", &partial))?;
        file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io("write", &partial))?;
        std::fs::rename(&partial, &path).map_err(io("write", &path))
    }
}

/// What a window's lines record.
#[derive(Default)]
struct Window {
    lines: u64,
    prev: String,
    first_at: String,
    segments: u64,
    first_segment: Option<Point>,
    last_segment: Option<Point>,
    markers: Vec<receipts::Marker>,
}

impl Window {
    fn take(&mut self, entry: Entry) {
        if self.lines == 0 {
            self.prev = entry.prev;
            self.first_at = match &entry.line {
                Line::Start { at, .. } | Line::Timeline { at, .. } => at.clone(),
                Line::Segment { replayed_at, .. } | Line::Marker { replayed_at, .. } => replayed_at.clone(),
            };
        }
        self.lines += 1;
        match entry.line {
            Line::Segment { segment, lsn, .. } => {
                self.segments += 1;
                let point = Point { segment, lsn };
                self.first_segment.get_or_insert_with(|| point.clone());
                self.last_segment = Some(point);
            }
            Line::Marker { name, lsn, written_at, replayed_at, latency_ms } => {
                let latency_seconds = latency_ms as f64 / 1000.0;
                self.markers.push(receipts::Marker { name, lsn, written_at, replayed_at, latency_seconds });
            }
            Line::Start { .. } | Line::Timeline { .. } => {}
        }
    }
}

/// The last receipt in `dir` (its name, and its last line); leftovers of a follower killed while
/// it wrote one are removed: a partial file, and a signature whose receipt was never written.
fn last_receipt(dir: &Path, say: &dyn Fn(String)) -> std::io::Result<Option<(String, u64)>> {
    let mut last: Option<(String, u64)> = None;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let orphan =
            name.strip_suffix(".sig").is_some_and(|r| receipts::lines_of(r).is_some() && !dir.join(r).exists());
        if orphan || (name.starts_with('.') && name.ends_with(".partial")) {
            std::fs::remove_file(dir.join(&name))?;
            say(format!("removed `{name}` from the receipts: a follower killed while it wrote a receipt left it"));
        } else if let Some((_, covered)) = receipts::lines_of(&name)
            && last.as_ref().is_none_or(|(_, l)| covered > *l)
        {
            last = Some((name, covered));
        }
    }
    Ok(last)
}

/// When the receipt at `path` says its window ended, when it reads.
fn ended_at(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    receipts::parse(&text).ok().map(|(_, predicate)| predicate.ended_at)
}

#[cfg(test)]
mod tests;
