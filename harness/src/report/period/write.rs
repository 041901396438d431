//! Writes the period report's files into its folder and seals them as a fleet summary is: a
//! `MANIFEST.sha256`, and with a key an in-toto statement (pgdrill's fleet predicate, `kind`
//! `period`) signed beside it, which `pgdrill verify` checks.

use std::path::{Path, PathBuf};

use super::{Period, html, json, oscal};
use crate::evidence::{manifest, sign, statement};
use crate::report::fleet::MergeError;

/// The files written, in the order written.
pub(crate) const FILES: [&str; 3] = ["period.html", "period.json", "assessment-results.json"];

/// Writes the report into `out` (signed with `signer`); returns the files written.
pub(crate) fn write(period: &Period, out: &Path, signer: Option<&sign::Signer>) -> Result<Vec<PathBuf>, MergeError> {
    let err = |path: PathBuf| move |source| MergeError::Write { path, source };
    std::fs::create_dir_all(out).map_err(err(out.to_owned()))?;
    let pretty = |value: serde_json::Value| serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
    let texts = [html::page(period), pretty(json::document(period)), pretty(oscal::document(period))];
    let mut written = Vec::new();
    for (name, text) in FILES.iter().zip(texts) {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(err(path.clone()))?;
        written.push(path);
    }
    for stale in [statement::STATEMENT, statement::SIGNATURE] {
        let _ = std::fs::remove_file(out.join(stale));
    }
    manifest::write(out, &FILES).map_err(err(out.join(manifest::NAME)))?;
    written.push(out.join(manifest::NAME));
    let Some(signer) = signer else { return Ok(written) };
    let (exceptions, resolved) = period.exception_counts();
    let predicate = serde_json::json!({
        "kind": "period",
        "verdict": if exceptions == resolved { "pass" } else { "fail" },
        "drills": period.databases.iter().map(|d| d.drills.len()).sum::<usize>(),
        "databases": period.databases.len(),
        "from": json::time(period.from),
        "to": json::time(period.to),
        "exceptions": exceptions,
        "resolved": resolved,
        "pgdrill_version": env!("CARGO_PKG_VERSION"),
    });
    let mut subjects = FILES.to_vec();
    subjects.push(manifest::NAME);
    let made = statement::fleet_statement(predicate, out, &subjects).map_err(err(out.to_owned()))?;
    written.push(crate::report::seal(out, &made, signer)?);
    written.push(out.join(statement::SIGNATURE));
    Ok(written)
}
