//! A fleet of drills as `report merge` reads it: every drill folder under the folders given (a
//! complete one holds `drill.json`; one without, a partial upload, is incomplete), which of them
//! count (with `--newest`, each scenario's newest complete drill, as a fleet wants when a drill
//! retried after a crash left two folders; an incomplete folder only when its scenario has no
//! complete one), and each counted drill's evidence as `pgdrill verify` judges it.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::allowed_signers::AllowedSigners;
use crate::evidence::manifest;
use crate::evidence::statement::{SIGNATURE, STATEMENT};
use crate::evidence::test_result::{TEST_RESULT, TEST_RESULT_SIGNATURE};
use crate::evidence::verify::{Finding, Trust, Verification, verify};
use crate::outcome::DrillRecord;

/// The files a drill's folder holds: a folder holding any of them is a drill's, whole or not.
const DRILL_FILES: [&str; 14] = [
    "drill.json",
    super::flat::NAME,
    "junit.xml",
    "report.md",
    super::html::NAME,
    "timeline.svg",
    "recovery.svg",
    "backup-age.svg",
    super::metrics::NAME,
    manifest::NAME,
    STATEMENT,
    SIGNATURE,
    TEST_RESULT,
    TEST_RESULT_SIGNATURE,
];

/// Why the drills to merge cannot be read, or the merge written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// A folder or file of the drills cannot be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// A `drill.json` that does not read as a drill record.
    #[error("`{}` is not a pgdrill drill record: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the JSON reader said.
        message: String,
    },
    /// The inputs hold no drill's report folder.
    #[error("no drill's reports under {0}")]
    Nothing(String),
    /// A merged report cannot be written.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// The fleet's statement could not be written or signed.
    #[error(transparent)]
    Seal(#[from] super::ReportError),
}

/// A drill folder found.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// Its scenario: as drill.json says, else the folder's parent's name (`<scenario>/<time>/`).
    pub scenario: String,
    /// Where it is on this machine.
    pub local: PathBuf,
    /// How the merge names it: its path, or its `s3://` URL.
    pub shown: String,
    /// Its drill.json; `None` for an incomplete folder.
    pub record: Option<DrillRecord>,
}

impl Found {
    /// Newest last: by when the drill started, then by the folder's name (a UTC time).
    pub(crate) fn age(&self) -> (Option<OffsetDateTime>, &str) {
        (self.record.as_ref().map(|r| r.started_at), &self.shown)
    }
}

/// A folder to read the drills of, and how reports name it (its path, or the `s3://` prefix it
/// was downloaded from).
#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub local: PathBuf,
    pub shown: String,
}

/// Every drill folder under every input, in the inputs' order; none at all is an error.
pub(crate) fn find_all(inputs: &[Input]) -> Result<Vec<Found>, MergeError> {
    let mut found = Vec::new();
    for input in inputs {
        find(&input.local, &input.shown, &mut found)?;
    }
    if found.is_empty() {
        return Err(MergeError::Nothing(inputs.iter().map(|i| i.shown.clone()).collect::<Vec<_>>().join(", ")));
    }
    Ok(found)
}

/// Every drill folder under `dir` (whose name is `shown`), depth first, in name order. A merge's
/// own output (a folder holding `fleet.json` or `summary.md`) is none.
fn find(dir: &Path, shown: &str, out: &mut Vec<Found>) -> Result<(), MergeError> {
    let read = |source| MergeError::Read { path: dir.to_owned(), source };
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(read)?.flatten().map(|e| e.path()).collect();
    entries.sort();
    let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let files: Vec<String> = entries.iter().filter(|p| p.is_file()).map(name).collect();
    if files.iter().any(|f| f == "fleet.json" || f == "summary.md") {
        return Ok(());
    }
    if files.iter().any(|f| DRILL_FILES.contains(&f.as_str())) {
        out.push(found(dir, shown)?);
        return Ok(());
    }
    for sub in entries.iter().filter(|p| p.is_dir()) {
        find(sub, &format!("{}/{}", shown.trim_end_matches('/'), name(sub)), out)?;
    }
    Ok(())
}

fn found(dir: &Path, shown: &str) -> Result<Found, MergeError> {
    let file = dir.join("drill.json");
    let record = match std::fs::read_to_string(&file) {
        Ok(text) => Some(
            serde_json::from_str::<DrillRecord>(&text)
                .map_err(|e| MergeError::Malformed { path: file.clone(), message: e.to_string() })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(MergeError::Read { path: file, source }),
    };
    let parent = dir.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
    Ok(Found {
        scenario: record.as_ref().map(|r| r.scenario.name.clone()).or(parent).unwrap_or_default(),
        local: dir.to_owned(),
        shown: format!("{}/", shown.trim_end_matches('/')),
        record,
    })
}

/// Whether a drill folder counts toward the merge's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Standing {
    Counted,
    /// `--newest`: a newer complete drill of its scenario (this folder) counts instead.
    Superseded {
        by: String,
    },
    /// No drill.json (a partial upload), and a complete drill of its scenario counts.
    Incomplete,
}

/// Each found drill's standing, in the order found. Per scenario: its complete drills count
/// (with `newest`, only the newest of them), its incomplete folders are set aside; a scenario
/// with no complete drill counts its incomplete folders (with `newest`, the newest), which fail.
pub(crate) fn select(found: &[Found], newest: bool) -> Vec<Standing> {
    let mut standing = vec![Standing::Counted; found.len()];
    let mut scenarios: Vec<&str> = found.iter().map(|f| f.scenario.as_str()).collect();
    scenarios.sort();
    scenarios.dedup();
    for scenario in scenarios {
        let of: Vec<usize> = (0..found.len()).filter(|&i| found[i].scenario == scenario).collect();
        let complete: Vec<usize> = of.iter().copied().filter(|&i| found[i].record.is_some()).collect();
        let contenders = if complete.is_empty() {
            of.clone()
        } else {
            for &i in of.iter().filter(|i| !complete.contains(i)) {
                standing[i] = Standing::Incomplete;
            }
            complete
        };
        if !newest {
            continue;
        }
        let Some(&best) = contenders.iter().max_by(|&&a, &&b| found[a].age().cmp(&found[b].age())) else {
            continue;
        };
        for &i in contenders.iter().filter(|&&i| i != best) {
            standing[i] = Standing::Superseded { by: found[best].shown.clone() };
        }
    }
    standing
}

/// A drill's evidence, as the merge found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Evidence {
    /// Verified against the allowed signers: every file as signed, by a key they allow for
    /// these principals.
    Verified { principals: String, key: String },
    /// No allowed signers were given: whether its files match their digests (and signature), and
    /// the key that signed it, which nothing here vouches for.
    Unchecked { files_match: bool, key: Option<String> },
    /// Neither a manifest nor a signed statement.
    Missing,
    /// A manifest, and no signature.
    Unsigned,
    /// What is wrong with it, as `pgdrill verify` says.
    DoesNotVerify { findings: Vec<String> },
}

impl Evidence {
    /// What fleet.json says of it.
    pub(crate) fn status(&self) -> &'static str {
        match self {
            Evidence::Verified { .. } => "verified",
            Evidence::Unchecked { .. } => "not checked",
            Evidence::Missing => "missing",
            Evidence::Unsigned => "unsigned",
            Evidence::DoesNotVerify { .. } => "does not verify",
        }
    }

    /// Whether the merge may trust the drill: verified against the allowed signers, or none
    /// were given (`trusted` false: the evidence is shown, and fails nothing).
    pub(crate) fn holds(&self, trusted: bool) -> bool {
        !trusted || matches!(self, Evidence::Verified { .. })
    }

    /// The principals the allowed signers allow the key for, when verified.
    pub(crate) fn signer(&self) -> Option<&str> {
        match self {
            Evidence::Verified { principals, .. } => Some(principals),
            _ => None,
        }
    }

    /// The signing key's fingerprint, when a signature checked out.
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Evidence::Verified { key, .. } | Evidence::Unchecked { key: Some(key), .. } => Some(key),
            _ => None,
        }
    }

    /// What it is, in a line.
    pub(crate) fn describe(&self) -> String {
        match self {
            Evidence::Verified { principals, key } => format!("verified: signed by `{principals}` (key {key})"),
            Evidence::Unchecked { files_match, key } => format!(
                "not checked against allowed signers: {}{}",
                if *files_match { "its files match their digests" } else { "its files do not match their digests" },
                key.as_ref()
                    .map(|k| format!(", signed by key {k}, which nothing here vouches for"))
                    .unwrap_or_default()
            ),
            Evidence::Missing => format!("missing: neither {} nor a signed {STATEMENT}", manifest::NAME),
            Evidence::Unsigned => "unsigned: nothing proves who wrote it".into(),
            Evidence::DoesNotVerify { findings } => format!("does not verify: {}", findings.join("; ")),
        }
    }
}

/// The evidence of the drill folder `dir`, verified as `pgdrill verify` does (against the
/// allowed signers when given).
pub(crate) fn evidence(dir: &Path, allowed: Option<(&AllowedSigners, &Path)>) -> Evidence {
    match verify(dir, &Trust { allowed_signers: allowed, identity: None }) {
        Ok(verification) => judge(&verification, allowed.is_some()),
        Err(e) => Evidence::DoesNotVerify { findings: vec![format!("cannot read the folder: {e}")] },
    }
}

/// What a verification makes of a drill's evidence (`trusted`: against allowed signers).
pub(crate) fn judge(v: &Verification, trusted: bool) -> Evidence {
    let none = v.manifest_files.is_none() && v.statement_files.is_none() && v.signed.is_none();
    if !trusted {
        return match none {
            true => Evidence::Missing,
            false => {
                Evidence::Unchecked { files_match: v.passed(), key: v.signed.as_ref().map(|s| s.fingerprint.clone()) }
            }
        };
    }
    if v.passed()
        && let Some(signed) = &v.signed
        && let Some((_, principals)) = &signed.allowed_by
    {
        return Evidence::Verified { principals: principals.clone(), key: signed.fingerprint.clone() };
    }
    let unsigned = v.findings.iter().any(|f| matches!(f, Finding::Unsigned { .. }));
    match (unsigned, none) {
        (true, true) => Evidence::Missing,
        (true, false) if v.statement_files.is_none() => Evidence::Unsigned,
        _ => Evidence::DoesNotVerify { findings: v.findings.iter().map(ToString::to_string).collect() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::verify::Signed;
    use crate::outcome::{DrillVerdict, RunnerInfo, ScenarioInfo};

    fn drill(scenario: &str, folder: &str, started: i64) -> Found {
        let info = ScenarioInfo { name: scenario.into(), ..ScenarioInfo::default() };
        let at = OffsetDateTime::from_unix_timestamp(started).unwrap();
        let mut record = DrillRecord::new(format!("{scenario}-{started}"), info, RunnerInfo::default(), at);
        record.verdict = DrillVerdict::Pass;
        Found {
            scenario: scenario.into(),
            local: folder.into(),
            shown: format!("s3://f/{folder}/"),
            record: Some(record),
        }
    }

    fn partial(scenario: &str, folder: &str) -> Found {
        Found { scenario: scenario.into(), local: folder.into(), shown: format!("s3://f/{folder}/"), record: None }
    }

    /// With `--newest`, each scenario's newest complete drill counts and the others are
    /// superseded by it; without, every complete drill counts. A partial folder is set aside
    /// beside a complete drill, newer or not, and counts (failing) when it is all there is.
    #[test]
    fn the_newest_complete_drill_of_each_scenario_counts() {
        let found = [
            drill("orders", "orders/20260101T030000Z", 100),
            drill("orders", "orders/20260101T040000Z", 200),
            partial("orders", "orders/20260101T050000Z"),
            drill("billing", "billing/20260101T030000Z", 150),
            partial("audit", "audit/20260101T030000Z"),
            partial("audit", "audit/20260101T040000Z"),
        ];
        let newer = Standing::Superseded { by: "s3://f/orders/20260101T040000Z/".into() };
        assert_eq!(
            select(&found, true),
            [
                newer,
                Standing::Counted,
                Standing::Incomplete,
                Standing::Counted,
                Standing::Superseded { by: "s3://f/audit/20260101T040000Z/".into() },
                Standing::Counted,
            ]
        );
        assert_eq!(
            select(&found, false),
            [
                Standing::Counted,
                Standing::Counted,
                Standing::Incomplete,
                Standing::Counted,
                Standing::Counted,
                Standing::Counted
            ]
        );
        // The same start: the later folder's name decides.
        let tie = [drill("s", "s/b", 5), drill("s", "s/a", 5)];
        assert_eq!(select(&tie, true), [Standing::Counted, Standing::Superseded { by: "s3://f/s/b/".into() }]);
    }

    fn signed(allowed: bool) -> Option<Signed> {
        Some(Signed {
            fingerprint: "SHA256:abc".into(),
            algorithm: "ssh-ed25519".into(),
            allowed_by: allowed.then(|| (1, "drills@example.com".into())),
        })
    }

    /// Each way a drill's evidence stands, against allowed signers and without them.
    #[test]
    fn each_evidence_has_its_status() {
        let good = Verification {
            signed: signed(true),
            statement_files: Some(9),
            manifest_files: Some(8),
            strict: true,
            ..Verification::default()
        };
        let verified = judge(&good, true);
        assert_eq!(verified, Evidence::Verified { principals: "drills@example.com".into(), key: "SHA256:abc".into() });
        assert!(verified.holds(true) && verified.signer() == Some("drills@example.com"));
        assert_eq!(verified.describe(), "verified: signed by `drills@example.com` (key SHA256:abc)");

        let changed = Verification {
            findings: vec![Finding::Changed { name: "report.md".into(), signed: true }],
            signed: None,
            ..good.clone()
        };
        let tampered = judge(&changed, true);
        assert_eq!(tampered.describe(), "does not verify: report.md was changed after the drill was signed");
        assert!(!tampered.holds(true) && tampered.status() == "does not verify");

        let stranger = Verification {
            findings: vec![Finding::UnknownKey {
                fingerprint: "SHA256:other".into(),
                algorithm: "ssh-ed25519".into(),
                file: "allowed_signers".into(),
                cert_authorities: vec![],
            }],
            signed: None,
            ..good.clone()
        };
        assert!(judge(&stranger, true).describe().contains("SHA256:other"), "{:?}", judge(&stranger, true));

        let manifest_only = Verification {
            findings: vec![Finding::Unsigned { statement: false }],
            manifest_files: Some(8),
            strict: true,
            ..Verification::default()
        };
        assert_eq!(judge(&manifest_only, true), Evidence::Unsigned);
        let nothing = Verification {
            findings: vec![
                Finding::Unsigned { statement: false },
                Finding::Manifest("MANIFEST.sha256 is missing".into()),
            ],
            strict: true,
            ..Verification::default()
        };
        assert_eq!(judge(&nothing, true), Evidence::Missing);
        assert!(!Evidence::Missing.holds(true) && !Evidence::Unsigned.holds(true));

        // Without allowed signers nothing is vouched for, and nothing fails the merge.
        let unchecked = judge(&Verification { signed: signed(false), strict: false, ..good }, false);
        assert_eq!(unchecked, Evidence::Unchecked { files_match: true, key: Some("SHA256:abc".into()) });
        assert!(unchecked.holds(false) && unchecked.signer().is_none());
        assert!(Evidence::Missing.holds(false), "shown, and fails nothing");
        assert_eq!(judge(&Verification::default(), false), Evidence::Missing);
    }
}
