//! A follower's receipts (`pgdrill follow`, in STATE/receipts/): each an in-toto statement whose
//! subject is a window of the ledger's lines (`ledger.jsonl#L12-L40`, with the sha256 of exactly
//! those lines' bytes) and whose predicate says what they prove, signed as a drill's evidence is
//! (`receipt-000012-000040.intoto.json.sig`). Here: their names, their predicate, and how
//! `pgdrill verify` checks them (one receipt, a folder of them, or a state folder): each
//! signature against the allowed signers and, when the ledger is beside them, that the lines each
//! covers are unchanged, and that no receipt is missing between line 1 and the last one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::statement::{STATEMENT_TYPE, Statement};
use super::verify::{Finding, Signed, Trust, signature};

/// What a receipt's predicate is: a follower's receipt, version 1.
pub(crate) const PREDICATE_TYPE: &str = "https://pgdrill.dev/follow-receipt/v1";
/// The receipts' folder in a follower's state folder.
pub(crate) const FOLDER: &str = "receipts";
/// The ledger's name in the state folder, and in a receipt's subject.
pub(crate) const LEDGER: &str = "ledger.jsonl";
const PREFIX: &str = "receipt-";
const SUFFIX: &str = ".intoto.json";

/// The file name of the receipt of the ledger's lines `first` to `last`.
pub(crate) fn name(first: u64, last: u64) -> String {
    format!("{PREFIX}{first:06}-{last:06}{SUFFIX}")
}

/// The file name of a receipt's signature.
pub(crate) fn signature_name(receipt: &str) -> String {
    format!("{receipt}.sig")
}

/// The subject's name of the receipt of lines `first` to `last`.
pub(crate) fn subject(first: u64, last: u64) -> String {
    format!("{LEDGER}#L{first}-L{last}")
}

/// Lines `first` to `last` of the ledger, as said: `line 7`, `lines 1-9`.
pub(crate) fn lines(first: u64, last: u64) -> String {
    match first == last {
        true => format!("line {first}"),
        false => format!("lines {first}-{last}"),
    }
}

/// The lines a receipt's file name says it covers.
pub(crate) fn lines_of(name: &str) -> Option<(u64, u64)> {
    let (first, last) = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.split_once('-')?;
    range(first.parse().ok()?, last.parse().ok()?)
}

/// The lines a subject's name covers.
fn subject_lines(name: &str) -> Option<(u64, u64)> {
    let (first, last) = name.strip_prefix(LEDGER)?.strip_prefix("#L")?.split_once("-L")?;
    range(first.parse().ok()?, last.parse().ok()?)
}

fn range(first: u64, last: u64) -> Option<(u64, u64)> {
    (first >= 1 && first <= last).then_some((first, last))
}

/// What a receipt says of its window of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Predicate {
    /// The scenario followed.
    pub scenario: String,
    /// The ledger's lines covered (their `seq`), and the digest the first carries of the line
    /// before it (`prev`): the receipt's place in the ledger's chain.
    pub first_seq: u64,
    pub last_seq: u64,
    pub prev: String,
    /// How many segments the lines record, and the first and the last with where replay was.
    pub segments: u64,
    pub first_segment: Option<Point>,
    pub last_segment: Option<Point>,
    /// The longest proof lag the follower measured in the window, in seconds.
    pub proof_lag_max_seconds: f64,
    /// The faults found in the window, by kind, and the kinds standing when it ended.
    pub faults: BTreeMap<String, u64>,
    pub faults_standing: Vec<String>,
    /// The markers confirmed in the window, in the order replay passed them.
    pub markers: Vec<Marker>,
    /// When the window started (the previous receipt's end, or the ledger's first line) and
    /// ended (RFC 3339).
    pub started_at: String,
    pub ended_at: String,
    pub pgdrill_version: String,
}

/// A marker the ledger records: the restore point the source wrote, where, and how long it took
/// from its commit to its replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Marker {
    pub name: String,
    pub lsn: String,
    pub written_at: String,
    pub replayed_at: String,
    pub latency_seconds: f64,
}

/// A segment the ledger records, and where replay was when it recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Point {
    pub segment: String,
    pub lsn: String,
}

/// Why a file is not a receipt.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotAReceipt {
    #[error("it is not JSON of an in-toto statement")]
    Json(#[source] serde_json::Error),
    #[error("it is of type `{0}`, not an in-toto Statement v1")]
    Type(String),
    #[error("it is about `{0}`, not a follower's receipt (`{PREDICATE_TYPE}`)")]
    Predicate(String),
    #[error("it has {0} subjects, not one (the ledger's lines)")]
    Subjects(usize),
    #[error("its subject `{0}` is not a window of {LEDGER} (`{LEDGER}#L1-L9`)")]
    Subject(String),
    #[error("it gives no sha256 for `{0}`")]
    Digest(String),
    #[error("its predicate is not a receipt's")]
    Body(#[source] serde_json::Error),
    #[error("its predicate says {said}, its subject {subject}")]
    Lines { said: String, subject: String },
}

/// Reads a receipt: an in-toto Statement v1 with the receipt's predicate and one subject, the
/// ledger's lines it covers with their sha256.
pub(crate) fn parse(text: &str) -> Result<(Statement, Predicate), NotAReceipt> {
    let statement: Statement = serde_json::from_str(text).map_err(NotAReceipt::Json)?;
    if statement.type_ != STATEMENT_TYPE {
        return Err(NotAReceipt::Type(statement.type_));
    }
    if statement.predicate_type != PREDICATE_TYPE {
        return Err(NotAReceipt::Predicate(statement.predicate_type));
    }
    let [subject] = statement.subject.as_slice() else {
        return Err(NotAReceipt::Subjects(statement.subject.len()));
    };
    let Some((first, last)) = subject_lines(&subject.name) else {
        return Err(NotAReceipt::Subject(subject.name.clone()));
    };
    if subject.sha256().is_none_or(|d| d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(NotAReceipt::Digest(subject.name.clone()));
    }
    let predicate: Predicate = serde_json::from_value(statement.predicate.clone()).map_err(NotAReceipt::Body)?;
    if (predicate.first_seq, predicate.last_seq) != (first, last) {
        let said = lines(predicate.first_seq, predicate.last_seq);
        return Err(NotAReceipt::Lines { said, subject: lines(first, last) });
    }
    Ok((statement, predicate))
}

/// Receipts to verify, and the ledger beside them.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The folder they are in, when it was given (all of it verified), not one receipt.
    pub folder: Option<PathBuf>,
    /// By the lines their names say they cover.
    pub receipts: Vec<PathBuf>,
    pub ledger: Option<PathBuf>,
}

/// The receipts `path` names: a receipt's file, a folder of receipts (a state folder's
/// `receipts`, even empty), or a state folder. `None` when it is none of them (a drill's
/// report folder).
pub(crate) fn find(path: &Path) -> std::io::Result<Option<Found>> {
    if std::fs::metadata(path)?.is_file() {
        let folder = path.parent().unwrap_or(Path::new("."));
        return Ok(Some(Found { folder: None, receipts: vec![path.to_owned()], ledger: ledger_beside(folder) }));
    }
    if [super::statement::STATEMENT, super::manifest::NAME].iter().any(|n| path.join(n).exists()) {
        return Ok(None);
    }
    // A state folder, or its `receipts` (beside the ledger), even without a receipt yet.
    let state = path.join(FOLDER);
    let known = state.is_dir() || path.with_file_name(LEDGER).is_file();
    let folder = if state.is_dir() { state } else { path.to_owned() };
    let mut receipts = Vec::new();
    for entry in std::fs::read_dir(&folder)? {
        let entry = entry?;
        if let Some(lines) = entry.file_name().to_str().and_then(lines_of) {
            receipts.push((lines, entry.path()));
        }
    }
    if receipts.is_empty() && !known {
        return Ok(None);
    }
    receipts.sort();
    let ledger = ledger_beside(&folder);
    Ok(Some(Found { folder: Some(folder), receipts: receipts.into_iter().map(|(_, p)| p).collect(), ledger }))
}

/// The ledger in `folder`, or in the folder above it (a state folder's `receipts`).
fn ledger_beside(folder: &Path) -> Option<PathBuf> {
    let here = folder.join(LEDGER);
    let above = folder.parent().map(|p| p.join(LEDGER));
    [Some(here), above].into_iter().flatten().find(|p| p.is_file())
}

/// A receipt verified.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub name: String,
    /// What it says, when it reads as a receipt.
    pub predicate: Option<Predicate>,
    /// Its signature, when it checked out.
    pub signed: Option<Signed>,
}

/// Something wrong with a receipt, or between receipts. Each fails the verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReceiptFinding {
    /// It cannot be read, or is not a receipt.
    NotAReceipt { receipt: String, why: String },
    /// Its signature does not check out.
    Signature { receipt: String, finding: Finding },
    /// Allowed signers were given and it is not signed.
    Unsigned { receipt: String },
    /// The ledger beside it ends before the lines it covers.
    Gone { receipt: String, first: u64, last: u64, lines: u64 },
    /// The lines it covers are not the ones it gives the digest of; where the chain breaks.
    Changed { receipt: String, first: u64, last: u64, breaks_at: Option<u64> },
    /// Lines of the ledger before `receipt` that no receipt covers.
    Uncovered { first: u64, last: u64, before: String },
    /// A folder with no receipt at all.
    Empty { folder: PathBuf },
}

impl ReceiptFinding {
    /// The receipt it is about, when it is about one.
    pub(crate) fn receipt(&self) -> Option<&str> {
        match self {
            ReceiptFinding::NotAReceipt { receipt, .. }
            | ReceiptFinding::Signature { receipt, .. }
            | ReceiptFinding::Unsigned { receipt }
            | ReceiptFinding::Gone { receipt, .. }
            | ReceiptFinding::Changed { receipt, .. } => Some(receipt),
            ReceiptFinding::Uncovered { .. } | ReceiptFinding::Empty { .. } => None,
        }
    }
}

impl std::fmt::Display for ReceiptFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiptFinding::NotAReceipt { receipt, why } => write!(f, "{receipt} is not a follower's receipt: {why}"),
            ReceiptFinding::Signature { receipt, finding } => write!(f, "{}", finding.of(receipt)),
            ReceiptFinding::Unsigned { receipt } => write!(
                f,
                "{receipt} is not signed ({} is missing): nothing proves who wrote it",
                signature_name(receipt)
            ),
            ReceiptFinding::Gone { receipt, first, last, lines: count } => write!(
                f,
                "{receipt} covers {LEDGER} {}, and the ledger beside it has {count} lines: lines it covers were removed after it was written",
                lines(*first, *last)
            ),
            ReceiptFinding::Changed { receipt, first, last, breaks_at } => {
                write!(
                    f,
                    "{LEDGER} {} {} changed after {receipt} was written: {} no longer {} the sha256 it gives",
                    lines(*first, *last),
                    if first == last { "was" } else { "were" },
                    if first == last { "it" } else { "they" },
                    if first == last { "has" } else { "have" },
                )?;
                match breaks_at {
                    Some(line) if line == first => write!(
                        f,
                        " (line {line} does not carry the digest of the line before it that {receipt} records)"
                    ),
                    Some(line) => write!(
                        f,
                        " (the chain breaks at line {line}: it does not carry the sha256 of line {})",
                        line - 1
                    ),
                    None => Ok(()),
                }
            }
            ReceiptFinding::Uncovered { first, last, before } => {
                write!(f, "no receipt covers {LEDGER} {}, before {before}: a receipt was removed", lines(*first, *last))
            }
            ReceiptFinding::Empty { folder } => write!(
                f,
                "{} holds no receipt (the follower writes one at each --receipt-every, and when it stops)",
                folder.display()
            ),
        }
    }
}

/// What verifying receipts found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verified {
    pub receipts: Vec<Checked>,
    pub findings: Vec<ReceiptFinding>,
    /// The ledger's lines, when it was beside the receipts.
    pub ledger_lines: Option<u64>,
    /// Lines of the ledger after the last receipt (a follower still running covers them later).
    pub after_last: Option<(u64, u64)>,
}

impl Verified {
    pub(crate) fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Verifies the receipts `found`: each one's signature against `trust`, the lines each covers
/// against the ledger beside them, and (a folder) that every line up to the last receipt's is
/// covered. `Err` when the ledger cannot be read.
pub(crate) fn verify(found: &Found, trust: &Trust<'_>) -> std::io::Result<Verified> {
    let ledger = found.ledger.as_deref().map(Lines::read).transpose()?;
    let mut v = Verified { ledger_lines: ledger.as_ref().map(Lines::count), ..Verified::default() };
    let mut next = 1;
    for path in &found.receipts {
        let checked = check(path, ledger.as_ref(), trust, &mut v.findings);
        if let (Some(_), Some(p)) = (&found.folder, &checked.predicate) {
            if p.first_seq > next {
                v.findings.push(ReceiptFinding::Uncovered {
                    first: next,
                    last: p.first_seq - 1,
                    before: checked.name.clone(),
                });
            }
            next = next.max(p.last_seq + 1);
        }
        v.receipts.push(checked);
    }
    match &found.folder {
        Some(folder) if found.receipts.is_empty() => v.findings.push(ReceiptFinding::Empty { folder: folder.clone() }),
        Some(_) => v.after_last = v.ledger_lines.filter(|count| *count >= next).map(|count| (next, count)),
        None => {}
    }
    Ok(v)
}

/// Verifies the receipt at `path`, each finding into `findings`.
fn check(path: &Path, ledger: Option<&Lines>, trust: &Trust<'_>, findings: &mut Vec<ReceiptFinding>) -> Checked {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut checked = Checked { name: name.clone(), predicate: None, signed: None };
    let not = |why: String| ReceiptFinding::NotAReceipt { receipt: name.clone(), why };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            findings.push(not(e.to_string()));
            return checked;
        }
    };
    let (statement, predicate) = match parse(&String::from_utf8_lossy(&bytes)) {
        Ok(read) => read,
        Err(e) => {
            findings.push(not(crate::error::error_chain(&e)));
            return checked;
        }
    };
    match std::fs::read(path.with_file_name(signature_name(&name))) {
        Ok(pem) => match signature(&pem, &signature_name(&name), &bytes, trust) {
            Ok(signed) => checked.signed = Some(signed),
            Err(finding) => findings.push(ReceiptFinding::Signature { receipt: name.clone(), finding }),
        },
        Err(_) if trust.allowed_signers.is_some() => findings.push(ReceiptFinding::Unsigned { receipt: name.clone() }),
        Err(_) => {}
    }
    if let Some(ledger) = ledger {
        let (first, last) = (predicate.first_seq, predicate.last_seq);
        let digest = statement.subject[0].sha256().unwrap_or_default();
        match ledger.window(first, last) {
            None => findings.push(ReceiptFinding::Gone { receipt: name.clone(), first, last, lines: ledger.count() }),
            Some(bytes) if !hex::encode(Sha256::digest(bytes)).eq_ignore_ascii_case(digest) => {
                let breaks_at = ledger.breaks(first, last, &predicate.prev);
                findings.push(ReceiptFinding::Changed { receipt: name.clone(), first, last, breaks_at });
            }
            Some(_) => {}
        }
    }
    checked.predicate = Some(predicate);
    checked
}

/// A ledger's whole lines, as written.
struct Lines {
    bytes: Vec<u8>,
    /// Where each line starts, and where the last one ends.
    starts: Vec<usize>,
}

impl Lines {
    fn read(path: &Path) -> std::io::Result<Lines> {
        let bytes = std::fs::read(path)?;
        let mut starts = vec![0];
        starts.extend(bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1));
        Ok(Lines { bytes, starts })
    }

    fn count(&self) -> u64 {
        self.starts.len() as u64 - 1
    }

    /// Lines `first` to `last` (from 1), their line breaks included; `None` past the end.
    fn window(&self, first: u64, last: u64) -> Option<&[u8]> {
        let end = *self.starts.get(usize::try_from(last).ok()?)?;
        Some(&self.bytes[self.starts[first as usize - 1]..end])
    }

    /// The first line from `first` to the one after `last` that does not carry the sha256 of
    /// the line before it (for `first`, `prev`, as its receipt records it).
    fn breaks(&self, first: u64, last: u64, prev: &str) -> Option<u64> {
        let mut want = prev.to_owned();
        for line in first..=(last + 1).min(self.count()) {
            let text = self.window(line, line)?;
            let carries = serde_json::from_slice::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v["prev"].as_str().map(String::from));
            if carries.as_deref() != Some(want.as_str()) {
                return Some(line);
            }
            want = hex::encode(Sha256::digest(text.strip_suffix(b"\n").unwrap_or(text)));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_is_named_by_its_lines_and_anything_else_is_refused() {
        assert_eq!(
            (name(12, 40), subject(12, 40)),
            ("receipt-000012-000040.intoto.json".into(), "ledger.jsonl#L12-L40".into())
        );
        assert_eq!((lines_of(&name(12, 40)), subject_lines(&subject(12, 40))), (Some((12, 40)), Some((12, 40))));
        assert_eq!((lines_of("receipt-000040-000012.intoto.json"), lines_of("evidence.intoto.json")), (None, None));
        let statement = |subject: &str, predicate: serde_json::Value| {
            let digest = [("sha256".to_owned(), "ab".repeat(32))].into();
            let subject = vec![super::super::statement::Subject { name: subject.into(), digest }];
            let predicate_type = PREDICATE_TYPE.to_owned();
            super::super::statement::render(&Statement {
                type_: STATEMENT_TYPE.into(),
                subject,
                predicate_type,
                predicate,
            })
        };
        let predicate = serde_json::json!({
            "scenario": "books", "first_seq": 1, "last_seq": 2, "prev": "", "segments": 0, "first_segment": null,
            "last_segment": null, "proof_lag_max_seconds": 0.0, "faults": {}, "faults_standing": [], "markers": [],
            "started_at": "a", "ended_at": "b", "pgdrill_version": "0"
        });
        assert!(parse(&statement("ledger.jsonl#L1-L2", predicate.clone())).is_ok());
        let other = parse(&statement("report.md", predicate.clone())).unwrap_err().to_string();
        assert!(other.contains("`report.md` is not a window of ledger.jsonl"), "{other}");
        let wrong = parse(&statement("ledger.jsonl#L1-L3", predicate)).unwrap_err();
        assert_eq!(wrong.to_string(), "its predicate says lines 1-2, its subject lines 1-3");
    }

    #[test]
    fn receipts_are_found_in_a_state_folder_its_receipts_or_one_file_never_in_a_drill_folder() {
        let state = tempfile::tempdir().unwrap();
        let folder = state.path().join(FOLDER);
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(state.path().join(LEDGER), "").unwrap();
        std::fs::write(folder.join(name(3, 4)), "").unwrap();
        std::fs::write(folder.join(name(1, 2)), "").unwrap();
        let found = find(state.path()).unwrap().unwrap();
        assert_eq!(found.receipts, [folder.join(name(1, 2)), folder.join(name(3, 4))]);
        assert_eq!((found.folder.as_deref(), found.ledger), (Some(folder.as_path()), Some(state.path().join(LEDGER))));
        assert_eq!(find(&folder).unwrap().unwrap().receipts.len(), 2);
        assert_eq!(find(&folder.join(name(1, 2))).unwrap().unwrap().folder, None);
        std::fs::write(folder.join(super::super::manifest::NAME), "").unwrap();
        assert!(find(&folder).unwrap().is_none());
    }
}
