//! Acknowledgements (`pgdrill ack DIR --by NAME --note TEXT`): how an exception was resolved (a
//! failed drill looked into, its cause mended), as a statement beside the drill that never
//! changes its verdict. Each is an in-toto statement in the drill's folder, `acks/ack-<UTC
//! time>.intoto.json` (signed beside it as `.sig` when a key is given), whose subject is the
//! drill's `drill.json` by its sha256: an acknowledgement moved to another drill, or of a record
//! edited since, does not verify. `pgdrill verify` checks each and says who acknowledged what.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::sign::Signer;
use super::statement::{self, STATEMENT_TYPE, Statement, Subject};
use super::verify::{ACKS as FOLDER, Finding, Signed, Trust, signature};
use crate::outcome::DrillRecord;

/// What an acknowledgement's predicate is.
pub(crate) const ACK_TYPE: &str = "https://pgdrill.dev/drill-ack/v1";
/// The drill's record, the acknowledgement's subject.
const RECORD: &str = "drill.json";

/// Why an acknowledgement cannot be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AckError {
    #[error("cannot read `{}`: is it a drill's report folder?", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a pgdrill drill record", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot sign `{}`", path.display())]
    Sign {
        path: PathBuf,
        #[source]
        source: ssh_key::Error,
    },
}

/// Why an acknowledgement does not hold.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AckFault {
    #[error("cannot read it: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("it is not an in-toto statement: {0}")]
    NotAStatement(#[source] serde_json::Error),
    #[error("it is not a pgdrill acknowledgement (`{0}`)")]
    NotAnAck(String),
    #[error("it is about another {RECORD} than this folder's (another drill's, or one changed since)")]
    AnotherRecord,
    #[error("it is not signed: nothing proves who wrote it")]
    Unsigned,
    #[error("{0}")]
    Signature(String),
}

/// An acknowledgement read back: its file, who, when, what they said, and who signed it.
#[derive(Debug, Clone)]
pub(crate) struct Ack {
    pub file: String,
    pub by: String,
    pub at: String,
    pub note: String,
    pub signed: Option<Signed>,
}

/// Acknowledges the drill whose report folder is `dir`: writes the statement (and its
/// signature with `signer`) into `dir/acks`; returns its path and the drill's record.
pub(crate) fn write(
    dir: &Path,
    by: &str,
    note: &str,
    at: OffsetDateTime,
    signer: Option<&Signer>,
) -> Result<(PathBuf, DrillRecord), AckError> {
    let path = dir.join(RECORD);
    let bytes = std::fs::read(&path).map_err(|source| AckError::Read { path: path.clone(), source })?;
    let record: DrillRecord =
        serde_json::from_slice(&bytes).map_err(|source| AckError::Record { path: path.clone(), source })?;
    let at = at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let made = Statement {
        type_: STATEMENT_TYPE.to_owned(),
        subject: vec![Subject {
            name: RECORD.to_owned(),
            digest: BTreeMap::from([("sha256".to_owned(), hex::encode(Sha256::digest(&bytes)))]),
        }],
        predicate_type: ACK_TYPE.to_owned(),
        predicate: json!({
            "drill_id": record.drill_id, "scenario": record.scenario.name,
            "verdict": record.verdict.as_str(), "by": by, "note": note, "at": at,
        }),
    };
    let folder = dir.join(FOLDER);
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| AckError::Write { path, source }
    };
    std::fs::create_dir_all(&folder).map_err(write_err(&folder))?;
    let stamp: String = at.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let mut file = folder.join(format!("ack-{stamp}.intoto.json"));
    for n in 2.. {
        if !file.exists() {
            break;
        }
        file = folder.join(format!("ack-{stamp}-{n}.intoto.json"));
    }
    let text = statement::render(&made);
    std::fs::write(&file, &text).map_err(write_err(&file))?;
    if let Some(signer) = signer {
        let sig = PathBuf::from(format!("{}.sig", file.display()));
        let armored = signer.sign(text.as_bytes()).map_err(|source| AckError::Sign { path: sig.clone(), source })?;
        std::fs::write(&sig, armored).map_err(write_err(&sig))?;
    }
    Ok((file, record))
}

/// Reads and checks the acknowledgements of the drill in `dir`: each must be about the folder's
/// `drill.json` as it is now and, with allowed signers, be signed by one of them. What does not
/// hold is a finding (named by the acknowledgement's file); none at all is no finding.
pub(crate) fn verify_all(dir: &Path, trust: &Trust<'_>) -> (Vec<Ack>, Vec<Finding>) {
    let (mut acks, mut findings) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(dir.join(FOLDER)) else { return (acks, findings) };
    let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let record = std::fs::read(dir.join(RECORD)).map(|b| hex::encode(Sha256::digest(&b))).unwrap_or_default();
    for name in names.iter().filter(|n| n.ends_with(".intoto.json")) {
        let file = format!("{FOLDER}/{name}");
        match check(dir, &file, &record, trust) {
            Ok(ack) => acks.push(ack),
            Err(fault) => findings.push(Finding::Ack { file, why: fault.to_string() }),
        }
    }
    // A signature with no acknowledgement, or any other file there, is not evidence.
    for name in names.iter().filter(|n| !n.ends_with(".intoto.json")) {
        let stem = name.strip_suffix(".sig").filter(|stem| names.iter().any(|n| n == stem));
        if stem.is_none() {
            findings.push(Finding::Uncovered { name: format!("{FOLDER}/{name}") });
        }
    }
    (acks, findings)
}

/// One acknowledgement, checked against the record's sha256 `record` and the trust.
fn check(dir: &Path, file: &str, record: &str, trust: &Trust<'_>) -> Result<Ack, AckFault> {
    let bytes = std::fs::read(dir.join(file)).map_err(AckFault::Unreadable)?;
    let made: Statement = serde_json::from_slice(&bytes).map_err(AckFault::NotAStatement)?;
    if made.type_ != STATEMENT_TYPE || made.predicate_type != ACK_TYPE {
        return Err(AckFault::NotAnAck(made.predicate_type));
    }
    let about = made.subject.iter().find(|s| s.name == RECORD).and_then(Subject::sha256);
    if about != Some(record) {
        return Err(AckFault::AnotherRecord);
    }
    let signed = match std::fs::read(dir.join(format!("{file}.sig"))) {
        Ok(pem) => Some(signature(&pem, file, &bytes, trust).map_err(|f| AckFault::Signature(f.of(file).to_string()))?),
        Err(_) if trust.allowed_signers.is_some() => return Err(AckFault::Unsigned),
        Err(_) => None,
    };
    let text = |key: &str| made.predicate[key].as_str().unwrap_or_default().to_owned();
    Ok(Ack { file: file.to_owned(), by: text("by"), at: text("at"), note: text("note"), signed })
}
