//! `pgdrill report merge`: the reports of several drills (CI shards, a folder of past runs, a
//! fleet's prefix in an object store once downloaded) as one junit.xml (a test suite per drill),
//! one summary.md and one fleet.json, from their drill.json files (`fleet` finds them and says
//! which count). With allowed signers, each drill's evidence is verified as `pgdrill verify`
//! does, and a drill whose evidence does not verify fails the merge whatever its verdict; the
//! merged folder gets its own MANIFEST.sha256 and, with a signing key, its own signed in-toto
//! statement, so that `pgdrill verify` proves the fleet summary itself.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use junit_report::TestCase;
use serde::Serialize;

pub(crate) use super::fleet::Input;
pub use super::fleet::MergeError;
use super::fleet::{self, Evidence, Found, Standing};
use super::junit;
use crate::allowed_signers::AllowedSigners;
use crate::evidence::{manifest, sign, statement};
use crate::outcome::{DrillRecord, DrillVerdict, RunnerInfo, ScenarioInfo};
use crate::units::human_duration;

/// What a merge wrote, and how it came out.
#[derive(Debug)]
#[non_exhaustive]
pub struct Merged {
    /// The drills that count.
    pub drills: usize,
    /// Of them, those whose verdict is pass.
    pub passed: usize,
    /// Of them, those whose evidence holds (all, when no allowed signers were given).
    pub verified: usize,
    /// The merged `junit.xml`: the counted drills' checks.
    pub junit: PathBuf,
    /// `summary.md`: the verdict, a row per counted drill, what was set aside and why.
    pub markdown: PathBuf,
    /// `fleet.html`: the fleet's page.
    pub fleet: PathBuf,
    /// The signed statement over the merged folder, when signed.
    pub evidence: Option<PathBuf>,
    /// What the merge has to say: drills set aside, evidence that does not verify.
    pub notes: Vec<String>,
    /// The drills that fail the merge, each with why, in a line.
    pub failing: Vec<String>,
}

impl Merged {
    /// Every drill that counts passed, and its evidence holds.
    pub fn passed_all(&self) -> bool {
        self.passed == self.drills && self.verified == self.drills
    }
}

/// How to merge: against which allowed signers, whether only each scenario's newest drill
/// counts, signed by which key.
#[derive(Debug, Default)]
pub(crate) struct MergeOptions<'a> {
    pub allowed_signers: Option<(&'a AllowedSigners, &'a Path)>,
    pub newest: bool,
    pub signer: Option<&'a sign::Signer>,
}

/// A drill found, with what the merge made of it.
struct Row {
    found: Found,
    standing: Standing,
    /// Its record, or one saying it is incomplete.
    record: DrillRecord,
    /// Its evidence, for a drill that counts.
    evidence: Option<Evidence>,
}

impl Row {
    fn counted(&self) -> bool {
        self.standing == Standing::Counted
    }
}

/// Reads every drill under `dirs` and writes `junit.xml`, `summary.md` and `fleet.json` into
/// `output`; every drill counts, its evidence shown and not required.
pub fn merge(dirs: &[PathBuf], output: &Path) -> Result<Merged, MergeError> {
    let inputs: Vec<Input> = dirs.iter().map(|d| Input { local: d.clone(), shown: d.display().to_string() }).collect();
    merge_inputs(&inputs, output, &MergeOptions::default())
}

/// Reads every drill under `inputs`, as `options` says, and writes the merged folder `output`.
pub(crate) fn merge_inputs(inputs: &[Input], output: &Path, options: &MergeOptions<'_>) -> Result<Merged, MergeError> {
    let found = fleet::find_all(inputs)?;
    let standings = fleet::select(&found, options.newest);
    let trusted = options.allowed_signers.is_some();
    let mut rows: Vec<Row> = found
        .into_iter()
        .zip(standings)
        .map(|(found, standing)| {
            let evidence =
                (standing == Standing::Counted).then(|| fleet::evidence(&found.local, options.allowed_signers));
            let record = found.record.clone().unwrap_or_else(|| incomplete(&found));
            Row { found, standing, record, evidence }
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.found.scenario.as_str(), a.record.started_at, a.found.shown.as_str()).cmp(&(
            b.found.scenario.as_str(),
            b.record.started_at,
            b.found.shown.as_str(),
        ))
    });
    std::fs::create_dir_all(output).map_err(|source| MergeError::Write { path: output.to_owned(), source })?;
    let counted: Vec<&Row> = rows.iter().filter(|r| r.counted()).collect();
    let passed = counted.iter().filter(|r| r.record.verdict == DrillVerdict::Pass).count();
    let verified = counted.iter().filter(|r| r.evidence.as_ref().is_some_and(|e| e.holds(trusted))).count();
    let write = |name: &str, text: String| {
        let path = output.join(name);
        std::fs::write(&path, text).map_err(|source| MergeError::Write { path: path.clone(), source })?;
        Ok::<PathBuf, MergeError>(path)
    };
    let junit_path = write("junit.xml", junit_xml(&counted, trusted))?;
    let markdown = write("summary.md", summary(&rows, options.allowed_signers.map(|(_, p)| p)))?;
    let fleet_json = fleet_file(&rows, trusted);
    let fleet = write("fleet.json", serde_json::to_string_pretty(&fleet_json).expect("fleet.json serializes") + "\n")?;
    let evidence = seal(output, &fleet_json, options.signer)?;
    Ok(Merged {
        drills: counted.len(),
        passed,
        verified,
        junit: junit_path,
        markdown,
        fleet,
        evidence,
        notes: rows.iter().filter_map(set_aside).collect(),
        failing: counted.iter().filter_map(|r| failing(r, trusted)).collect(),
    })
}

/// The record of an incomplete folder: a drill that failed, saying so.
fn incomplete(found: &Found) -> DrillRecord {
    let info = ScenarioInfo { name: found.scenario.clone(), ..ScenarioInfo::default() };
    let mut record = DrillRecord::new(String::new(), info, RunnerInfo::default(), time::OffsetDateTime::UNIX_EPOCH);
    record.verdict = DrillVerdict::Fail;
    record.failure = Some(format!(
        "incomplete: no drill.json in {} (a partial upload, or a drill killed before it wrote its reports)",
        found.shown
    ));
    record
}

/// Why a drill is set aside, in a line; `None` for one that counts.
fn set_aside(row: &Row) -> Option<String> {
    let what = format!("drill of `{}` in {}", row.found.scenario, row.found.shown);
    match &row.standing {
        Standing::Counted => None,
        Standing::Superseded { by } => Some(format!("{what} is superseded by the newer {by} (--newest)")),
        Standing::Incomplete => Some(format!(
            "{what} is incomplete (no drill.json: a partial upload) and ignored: a complete drill of the scenario counts"
        )),
    }
}

/// Why a counted drill fails the merge, in a line; `None` when it does not.
fn failing(row: &Row, trusted: bool) -> Option<String> {
    let what = format!("drill of `{}` in {}", row.found.scenario, row.found.shown);
    let evidence = row.evidence.as_ref().filter(|e| !e.holds(trusted)).map(Evidence::describe);
    let verdict = (row.record.verdict != DrillVerdict::Pass).then(|| match &row.record.failure {
        Some(why) => format!("did not pass: {why}"),
        None => "did not pass".to_owned(),
    });
    match (verdict, evidence) {
        (None, None) => None,
        (Some(v), None) => Some(format!("{what} {v}")),
        (None, Some(e)) => Some(format!("{what}: evidence {e}")),
        (Some(v), Some(e)) => Some(format!("{what} {v}; evidence {e}")),
    }
}

/// The counted drills as JUnit: a suite each, with a case for its evidence when verified.
fn junit_xml(counted: &[&Row], trusted: bool) -> String {
    let suites = counted
        .iter()
        .map(|row| {
            let mut suite = junit::suite(&row.record);
            if let (true, Some(evidence)) = (trusted, &row.evidence) {
                let mut case = match evidence.holds(true) {
                    true => TestCase::success("evidence", time::Duration::ZERO),
                    false => {
                        TestCase::failure("evidence", time::Duration::ZERO, evidence.status(), &evidence.describe())
                    }
                };
                case.set_classname(&format!("pgdrill.{}.evidence", row.found.scenario));
                case.set_system_out(&format!("{}: {}", row.found.shown, evidence.describe()));
                suite.add_testcase(case);
            }
            suite
        })
        .collect();
    junit::render_suites(suites)
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The evidence column: whether it verified, and by whom it was signed.
fn evidence_cell(evidence: Option<&Evidence>) -> String {
    match evidence {
        Some(Evidence::Verified { principals, .. }) => format!("✅ verified, signed by `{principals}`"),
        Some(Evidence::Unchecked { files_match: true, key: Some(key) }) => {
            format!("not checked (signed by key `{key}`)")
        }
        Some(Evidence::Unchecked { files_match: true, key: None }) => "not checked (unsigned)".into(),
        Some(Evidence::Unchecked { files_match: false, .. }) => "⚠️ files do not match their digests".into(),
        Some(Evidence::Missing) => "❌ missing".into(),
        Some(Evidence::Unsigned) => "❌ unsigned".into(),
        Some(Evidence::DoesNotVerify { .. }) => "❌ does not verify".into(),
        None => "-".into(),
    }
}

/// summary.md: the verdict, a row per counted drill, what was set aside and why.
fn summary(rows: &[Row], allowed_signers: Option<&Path>) -> String {
    let trusted = allowed_signers.is_some();
    let counted: Vec<&Row> = rows.iter().filter(|r| r.counted()).collect();
    let passed = counted.iter().filter(|r| r.record.verdict == DrillVerdict::Pass).count();
    let holding = counted.iter().filter(|r| r.evidence.as_ref().is_some_and(|e| e.holds(trusted))).count();
    let all = passed == counted.len() && holding == counted.len();
    let mut md = format!(
        "# Restore drills: {}\n\n{passed} of {} drills passed",
        if all { "PASS" } else { "FAIL" },
        counted.len()
    );
    let _ = match allowed_signers {
        Some(file) => writeln!(md, "; the evidence of {holding} verified against `{}`.\n", file.display()),
        None => writeln!(md, ".\nTheir evidence was not checked against allowed signers (`--allowed-signers`).\n"),
    };
    md.push_str(
        "| Scenario | Verdict | Evidence | Started (UTC) | Took | Recovery | Checks | Why it failed | Report |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|---|---|\n");
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    for row in &counted {
        let r = &row.record;
        let (ok, not) = r.check_counts();
        let started =
            if row.found.record.is_some() { r.started_at.format(&format).unwrap_or_default() } else { "-".into() };
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {started} | {} | {} | {ok}/{} | {} | `{}` |",
            r.scenario.name,
            if r.verdict == DrillVerdict::Pass { "✅ pass" } else { "❌ fail" },
            evidence_cell(row.evidence.as_ref()),
            human_duration(r.duration),
            r.recovery.map(human_duration).unwrap_or_else(|| "-".into()),
            ok + not,
            cell(r.failure.as_deref().unwrap_or("")),
            row.found.shown
        );
    }
    let wrong: Vec<String> = counted
        .iter()
        .filter_map(|r| {
            let e = r.evidence.as_ref().filter(|e| !e.holds(trusted))?;
            Some(format!("- `{}` in `{}`: {}", r.found.scenario, r.found.shown, cell(&e.describe())))
        })
        .collect();
    if !wrong.is_empty() {
        let _ = write!(md, "\n## Evidence that does not hold\n\n{}\n", wrong.join("\n"));
    }
    let aside: Vec<String> = rows.iter().filter_map(set_aside).map(|n| format!("- {}", cell(&n))).collect();
    if !aside.is_empty() {
        let _ = write!(md, "\n## Not counted\n\n{}\n", aside.join("\n"));
    }
    md
}

/// fleet.json: every drill found, counted or not.
#[derive(Debug, Serialize)]
struct FleetFile {
    schema: &'static str,
    verdict: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    merged_at: time::OffsetDateTime,
    pgdrill_version: &'static str,
    /// Whether each counted drill's evidence was verified against allowed signers.
    verified_against_allowed_signers: bool,
    counted: usize,
    passed: usize,
    verified: usize,
    drills: Vec<FleetDrill>,
}

#[derive(Debug, Serialize)]
struct FleetDrill {
    scenario: String,
    folder: String,
    drill_id: Option<String>,
    /// `pass`, `fail`, or `incomplete` (no drill.json).
    verdict: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    started: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    ended: Option<time::OffsetDateTime>,
    counted: bool,
    /// Why it does not count.
    note: Option<String>,
    /// `verified`, `not checked`, `missing`, `unsigned`, `does not verify`; none when not counted.
    evidence: Option<&'static str>,
    /// The principals the allowed signers allow its key for.
    signer: Option<String>,
    /// Its key's fingerprint, when its signature checked out.
    key: Option<String>,
    findings: Vec<String>,
    /// The sha256 of its in-toto statement, binding the summary to the very statement verified.
    statement_sha256: Option<String>,
}

fn fleet_file(rows: &[Row], trusted: bool) -> FleetFile {
    let drills: Vec<FleetDrill> = rows
        .iter()
        .map(|row| {
            let record = row.found.record.as_ref();
            let evidence = row.evidence.as_ref();
            FleetDrill {
                scenario: row.found.scenario.clone(),
                folder: row.found.shown.clone(),
                drill_id: record.map(|r| r.drill_id.clone()),
                verdict: match record {
                    None => "incomplete",
                    Some(r) => r.verdict.as_str(),
                },
                started: record.map(|r| r.started_at),
                ended: record.and_then(|r| r.finished_at),
                counted: row.counted(),
                note: set_aside(row),
                evidence: evidence.map(Evidence::status),
                signer: evidence.and_then(Evidence::signer).map(str::to_owned),
                key: evidence.and_then(Evidence::key).map(str::to_owned),
                findings: match evidence {
                    Some(Evidence::DoesNotVerify { findings }) => findings.clone(),
                    _ => Vec::new(),
                },
                statement_sha256: manifest::sha256_of(&row.found.local.join(statement::STATEMENT)).ok(),
            }
        })
        .collect();
    let counted: Vec<&FleetDrill> = drills.iter().filter(|d| d.counted).collect();
    let passed = counted.iter().filter(|d| d.verdict == "pass").count();
    let verified = rows.iter().filter(|r| r.counted() && r.evidence.as_ref().is_some_and(|e| e.holds(trusted))).count();
    FleetFile {
        schema: "pgdrill.fleet.v1",
        verdict: if passed == counted.len() && verified == counted.len() { "pass" } else { "fail" },
        merged_at: time::OffsetDateTime::now_utc(),
        pgdrill_version: env!("CARGO_PKG_VERSION"),
        verified_against_allowed_signers: trusted,
        counted: counted.len(),
        passed,
        verified,
        drills,
    }
}

/// The merged folder's MANIFEST.sha256, and with a `signer` its in-toto statement (predicate: the
/// fleet's verdict and its counted drills) and signature; returns the statement's path.
fn seal(output: &Path, fleet: &FleetFile, signer: Option<&sign::Signer>) -> Result<Option<PathBuf>, MergeError> {
    let files = ["junit.xml", "summary.md", "fleet.json"];
    let err = |path: PathBuf| move |source| MergeError::Write { path, source };
    for stale in [statement::STATEMENT, statement::SIGNATURE] {
        let _ = std::fs::remove_file(output.join(stale));
    }
    manifest::write(output, &files).map_err(err(output.join(manifest::NAME)))?;
    let Some(signer) = signer else { return Ok(None) };
    let shards: Vec<&FleetDrill> = fleet.drills.iter().filter(|d| d.counted).collect();
    let predicate = serde_json::json!({
        "verdict": fleet.verdict,
        "drills": fleet.counted,
        "passed": fleet.passed,
        "verified": fleet.verified,
        "verified_against_allowed_signers": fleet.verified_against_allowed_signers,
        "merged_at": fleet.merged_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "pgdrill_version": fleet.pgdrill_version,
        "shards": shards.iter().map(|d| serde_json::json!({
            "scenario": d.scenario, "folder": d.folder, "drill_id": d.drill_id, "verdict": d.verdict,
            "evidence": d.evidence, "signer": d.signer, "key": d.key, "statement_sha256": d.statement_sha256,
        })).collect::<Vec<_>>(),
    });
    let mut subjects = files.to_vec();
    subjects.push(manifest::NAME);
    let made = statement::fleet_statement(predicate, output, &subjects).map_err(err(output.to_owned()))?;
    let sealed = super::seal(output, &made, signer)?;
    Ok(Some(sealed))
}
