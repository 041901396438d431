//! Reports: the drill's record ([`crate::outcome`]) rendered for people, CI and machines, each
//! renderer deciding nothing: `junit.xml`, `report.md`, `drill.json`, `record.json` (the drill
//! as one flat object, for evidence tools), the pictures,
//! `report.html` (report.md as a web page, the pictures inline) and `metrics.prom`, written once at the end, whatever happened (a drill that failed or was
//! interrupted still leaves its reports), with the evidence (`crate::evidence`) over them.

pub mod console;
mod controls;
pub mod flat;
pub(crate) mod fleet;
pub(crate) mod fleet_view;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod metrics;
pub(crate) mod period;
pub(crate) mod publish;
pub mod svg;

#[cfg(test)]
mod snapshots;

use std::path::{Path, PathBuf};

use crate::evidence::{manifest, sign, statement, test_result};
use crate::outcome::DrillRecord;
use crate::outcome::history;

/// Where the reports of a drill were written.
#[derive(Debug, Clone)]
pub struct ReportPaths {
    /// The drill's report folder, which holds every file below.
    pub dir: PathBuf,
    /// `junit.xml`: the checks as test cases, for CI.
    pub junit: PathBuf,
    /// `report.md`: the drill for people and auditors.
    pub markdown: PathBuf,
    /// report.md as a self-contained web page, to read or print to PDF.
    pub html: PathBuf,
    /// `drill.json`: the whole record, for machines.
    pub json: PathBuf,
    /// The manifest of the reports' SHA-256 digests, which the evidence signs.
    pub manifest: PathBuf,
    /// The history file this drill's line was appended to (beside the report folders).
    pub history: PathBuf,
    /// The signed in-toto statement, when the drill was signed.
    pub evidence: Option<PathBuf>,
}

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error("cannot write report `{}`", path.display())]
pub struct ReportError {
    /// The file.
    pub path: PathBuf,
    /// Why: the file system's error, or the signer's for a signature.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// `reports/<scenario>/<UTC timestamp>` under `root`, made unique if a drill of the same
/// scenario started in the same second.
///
/// The folder is made here, by `create_dir`, which fails when it exists: two drills of one
/// scenario run at once (`--jobs`) never take the same folder. When it cannot be made (no room,
/// no permission) the name is returned all the same, and writing the reports says why.
pub(crate) fn drill_dir(root: &Path, record: &DrillRecord) -> PathBuf {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = record.started_at.format(&format).unwrap_or_else(|_| "unknown".into());
    let base = root.join(&record.scenario.name).join(&stamp);
    let _ = std::fs::create_dir_all(root.join(&record.scenario.name));
    let mut dir = base.clone();
    let mut n = 2;
    loop {
        match std::fs::create_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                dir = PathBuf::from(format!("{}-{n}", base.display()));
                n += 1;
            }
            _ => return dir,
        }
    }
}

/// Writes the reports into `dir`: drill.json, record.json, junit.xml, report.md with its three pictures,
/// report.html, metrics.prom, and the manifest of their digests; with a `signer`, the in-toto statement of
/// them all (the manifest too) and its SSH signature; then appends the drill to the scenario's
/// history `history_path`, which report.md compared it with.
pub(crate) fn write_all(
    record: &DrillRecord,
    dir: &Path,
    history_path: &Path,
    signer: Option<&sign::Signer>,
) -> Result<ReportPaths, ReportError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| ReportError { path, source: source.into() }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let past = history::of_scenario(history_path, &record.scenario.name);
    let mut paths = ReportPaths {
        dir: dir.to_owned(),
        junit: dir.join("junit.xml"),
        markdown: dir.join("report.md"),
        html: dir.join(html::NAME),
        json: dir.join("drill.json"),
        manifest: dir.join(manifest::NAME),
        history: history_path.to_owned(),
        evidence: None,
    };
    let files = render_all(record, &past);
    if record.sample.is_none() {
        // A drill of the newest written over a sampled one's folder leaves no stale plan.
        let _ = std::fs::remove_file(dir.join(json::PLAN));
    }
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(err(&path))?;
    }
    let mut names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    if let Some(signer) = signer {
        // The test result signed on its own (a policy engine reads it alone), and covered by
        // the evidence too.
        let text = &files.iter().find(|(n, _)| *n == test_result::TEST_RESULT).expect("rendered").1;
        let path = dir.join(test_result::TEST_RESULT_SIGNATURE);
        let armored =
            signer.sign(text.as_bytes()).map_err(|source| ReportError { path: path.clone(), source: source.into() })?;
        std::fs::write(&path, armored).map_err(err(&path))?;
        names.push(test_result::TEST_RESULT_SIGNATURE);
    }
    let manifest_sha = manifest::write(dir, &names).map_err(err(&paths.manifest))?;
    if let Some(signer) = signer {
        names.push(manifest::NAME);
        paths.evidence = Some(sign_evidence(record, dir, &names, signer)?);
    } else {
        // An unsigned drill written over a signed one's folder leaves no stale evidence.
        for stale in [statement::STATEMENT, statement::SIGNATURE, test_result::TEST_RESULT_SIGNATURE] {
            let _ = std::fs::remove_file(dir.join(stale));
        }
    }
    history::append(history_path, &history::HistoryEntry::of(record, dir, manifest_sha)).map_err(err(history_path))?;
    Ok(paths)
}

/// Every report file of the drill `record`, compared with the `past` drills of its scenario: its
/// name and its text. report.html is report.md's Markdown with the three pictures inline;
/// test-result.intoto.json the drill as in-toto's standard Test Result; plan.json, a sampled
/// drill's draw.
pub(crate) fn render_all(record: &DrillRecord, past: &[history::HistoryEntry]) -> Vec<(&'static str, String)> {
    let report = markdown::render(record, past);
    let timeline = svg::timeline(record);
    let recovery = svg::recovery(past, record);
    let backup_age = svg::backup_age(past, record);
    let charts = [
        html::Chart { name: "timeline.svg", svg: &timeline },
        html::Chart { name: "recovery.svg", svg: &recovery },
        html::Chart { name: "backup-age.svg", svg: &backup_age },
    ];
    let page = html::render(record, &report, &charts);
    let mut files = vec![
        ("drill.json", json::render(record)),
        (flat::NAME, flat::render(record)),
        ("junit.xml", junit::render(record)),
        ("report.md", report),
        (html::NAME, page),
        ("timeline.svg", timeline),
        ("recovery.svg", recovery),
        ("backup-age.svg", backup_age),
        (metrics::NAME, metrics::render(record, past)),
        (test_result::TEST_RESULT, statement::render(&test_result::statement(record))),
    ];
    files.extend(json::plan(record).map(|plan| (json::PLAN, plan)));
    files
}

/// Writes the in-toto statement about `files` and its SSH signature; returns the statement's path.
fn sign_evidence(
    record: &DrillRecord,
    dir: &Path,
    files: &[&str],
    signer: &sign::Signer,
) -> Result<PathBuf, ReportError> {
    let made = statement::statement(record, dir, files)
        .map_err(|source| ReportError { path: dir.to_owned(), source: source.into() })?;
    seal(dir, &made, signer)
}

/// Writes `made` into `dir` as the in-toto statement, and its SSH signature beside it; returns
/// the statement's path.
pub(crate) fn seal(dir: &Path, made: &statement::Statement, signer: &sign::Signer) -> Result<PathBuf, ReportError> {
    let path = dir.join(statement::STATEMENT);
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| ReportError { path, source: source.into() }
    };
    let text = statement::render(made);
    std::fs::write(&path, &text).map_err(err(&path))?;
    let sig_path = dir.join(statement::SIGNATURE);
    let armored =
        signer.sign(text.as_bytes()).map_err(|source| ReportError { path: sig_path.clone(), source: source.into() })?;
    std::fs::write(&sig_path, armored).map_err(err(&sig_path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::{history, write_all};
    use crate::outcome::history::tests::drill;

    /// Drills of two scenarios written to sibling folders with one history file (`--history`);
    /// each compares itself only with its own scenario's drills, and says when its file changed.
    #[test]
    fn a_drill_compares_only_with_drills_of_its_own_scenario() {
        let root = tempfile::tempdir().unwrap();
        let report = |name: &str| std::fs::read_to_string(root.path().join(name).join("report.md")).unwrap();
        let shared = root.path().join(history::NAME);
        write_all(&drill("big", "a"), &root.path().join("big"), &shared, None).unwrap();
        write_all(&drill("pitr", "b"), &root.path().join("pitr"), &shared, None).unwrap();
        assert!(report("pitr").contains("This is the first drill of this scenario"), "{}", report("pitr"));
        write_all(&drill("pitr", "c"), &root.path().join("pitr-2"), &shared, None).unwrap();
        let second = report("pitr-2");
        assert!(second.contains("(`pitr-b`)") && !second.contains("big-a"), "{second}");
        assert!(
            second.contains(
                "The scenario file changed since the previous drill (sha256 `bbbbbbbbbbbb…` then, `cccccccccccc…` now)"
            ),
            "{second}"
        );
        let history = history::read(&root.path().join("history.jsonl"));
        let named: Vec<&str> = history.iter().map(|e| e.scenario.as_str()).collect();
        assert_eq!(named, ["big", "pitr", "pitr"]);
        assert_eq!(history::of_scenario(&root.path().join("history.jsonl"), "big").len(), 1);
    }
}
