//! `report period --follow-state DIR`: each follower's proof over the period, read from its
//! state folder (`report::period::Followed`): the segments its ledger says were replayed in the
//! period with their proof lags, and its signed receipts verified as `pgdrill verify` verifies
//! them. The ledger's own chain is the receipts' to prove: a line edited after its receipt is a
//! fault of the receipts.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Exit;
use super::fleet_follow::state_folders;
use crate::evidence::receipts;
use crate::evidence::verify::Trust;
use crate::follow::ledger::{self, Entry, Line};
use crate::follow::status;
use crate::report::period::Followed;

/// What the followers are read against: the period, and the trust their receipts need.
pub(super) struct Against<'a> {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub trust: Trust<'a>,
    /// `--unsigned-ok`: without allowed signers, receipts no one vouches for are no exception.
    pub unsigned_ok: bool,
}

/// The followers whose state is in `dirs` (each a state folder or a folder of them); a folder
/// that is not there is unusable input (exit 2).
pub(super) fn read(dirs: &[PathBuf], against: &Against<'_>) -> Result<Vec<Followed>, Exit> {
    let mut followed = Vec::new();
    for dir in dirs {
        let folders = state_folders(dir).map_err(|e| {
            eprintln!("error: cannot read the follower's state folder `{}` (--follow-state): {e}", dir.display());
            Exit::Usage
        })?;
        followed.extend(folders.iter().map(|folder| one(folder, against)));
    }
    Ok(followed)
}

/// The follower whose state is in `dir`.
fn one(dir: &Path, against: &Against<'_>) -> Followed {
    let folder_name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    let scenario =
        status::read(dir, SystemTime::now()).ok().map(|s| s.scenario).filter(|s| !s.is_empty()).unwrap_or(folder_name);
    let (segments, mut lags) = replayed(&dir.join(ledger::NAME), against.from, against.to);
    lags.sort_unstable();
    let (receipts, unreceipted, evidence) = receipts_of(dir, against);
    Followed { state: dir.display().to_string(), scenario, segments, lags, receipts, unreceipted, evidence }
}

/// How many segments the ledger at `path` says were replayed in `[from, to)`, and the proof lag
/// of each whose archiving time is known.
fn replayed(path: &Path, from: OffsetDateTime, to: OffsetDateTime) -> (usize, Vec<Duration>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let parse = |t: &str| OffsetDateTime::parse(t, &Rfc3339).ok();
    let mut count = 0;
    let mut lags = Vec::new();
    for entry in text.lines().filter_map(|l| serde_json::from_str::<Entry>(l).ok()) {
        let Line::Segment { archived_at, replayed_at, .. } = entry.line else { continue };
        let Some(replayed) = parse(&replayed_at).filter(|t| *t >= from && *t < to) else { continue };
        count += 1;
        if let Some(archived) = archived_at.as_deref().and_then(parse) {
            lags.push(Duration::try_from(replayed - archived).unwrap_or(Duration::ZERO));
        }
    }
    (count, lags)
}

/// The receipts of the follower in `dir`: how many, the ledger's lines none covers yet, and what
/// is wrong with them (against allowed signers, anything `pgdrill verify` finds; without, that
/// they were not checked, unless `--unsigned-ok`).
fn receipts_of(dir: &Path, against: &Against<'_>) -> (usize, Option<(u64, u64)>, Option<String>) {
    let found = match receipts::find(&dir.join(receipts::FOLDER)) {
        Ok(Some(found)) => found,
        Ok(None) | Err(_) => return (0, None, Some("it has no receipts: nothing signed covers its ledger".into())),
    };
    let verified = match receipts::verify(&found, &against.trust) {
        Ok(verified) => verified,
        Err(e) => return (found.receipts.len(), None, Some(format!("its ledger cannot be read: {e}"))),
    };
    let fault = if !verified.passed() {
        Some(verified.findings.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
    } else if verified.receipts.is_empty() {
        Some("it has no receipts: nothing signed covers its ledger".into())
    } else if against.trust.allowed_signers.is_none() && !against.unsigned_ok {
        Some("not checked: no --allowed-signers (--unsigned-ok accepts receipts no one vouches for)".into())
    } else {
        None
    };
    (verified.receipts.len(), verified.after_last, fault)
}
