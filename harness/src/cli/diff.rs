//! `pgdrill report diff A B`: exits 1 when drill B of a scenario proves less than drill A did
//! (`outcome::diff`), 0 when it does not, 2 when either cannot be read, they are of different
//! scenarios, or B is not the later. With `--allowed-signers` both drills' evidence is verified
//! first, as `pgdrill verify` does: a record edited to look better is not compared.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::Exit;
use super::verify::read_signers;
use crate::evidence::verify::{Trust, verify};
use crate::outcome::DrillRecord;
use crate::outcome::diff::{Difference, Slower, compare};

/// What `report diff` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    /// The earlier drill: its report folder, or its drill.json.
    #[arg(value_name = "A")]
    a: PathBuf,
    /// The later drill of the same scenario.
    #[arg(value_name = "B")]
    b: PathBuf,
    /// B's recovery is worse when it takes this much longer than A's (`25%`), and longer by more
    /// than --slower-by.
    #[arg(long, value_name = "PERCENT", default_value = "25%", value_parser = percent)]
    slower: f64,
    /// How much longer B's recovery may take whatever the percentage (the machine's load).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    slower_by: Duration,
    /// OpenSSH allowed signers: both drills' evidence must verify against them (each report
    /// folder's signed statement covering its drill.json) before they are compared.
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
    /// Print the differences as JSON (`{"worse": bool, "differences": [...]}`) instead of lines.
    #[arg(long)]
    json: bool,
}

/// A percentage that is not one (clap shows it).
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a percentage of zero or more (`25%`)")]
struct NotAPercentage(String);

fn percent(text: &str) -> Result<f64, NotAPercentage> {
    let number = text.strip_suffix('%').unwrap_or(text);
    match number.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p / 100.0),
        _ => Err(NotAPercentage(text.to_owned())),
    }
}

/// Runs `report diff`.
pub(super) fn run(args: &DiffArgs) -> ExitCode {
    match read_both(args) {
        Ok((a, b)) => say(args, &a, &b),
        Err(why) => {
            eprintln!("error: {why}");
            why.exit().into()
        }
    }
}

/// Why two drills are not compared.
#[derive(Debug, thiserror::Error)]
enum DiffError {
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a pgdrill drill record", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot read the allowed signers `{}`", path.display())]
    Signers {
        path: PathBuf,
        #[source]
        source: super::verify::SignersError,
    },
    #[error("the evidence of `{}` does not verify against the allowed signers: {findings}", dir.display())]
    Unverified { dir: PathBuf, findings: String },
    #[error("A is a drill of `{a}` and B of `{b}`: diff compares two drills of one scenario")]
    Scenarios { a: String, b: String },
    #[error("B (drill {b}) started before A (drill {a}): give the earlier drill first")]
    Order { a: String, b: String },
}

impl DiffError {
    fn exit(&self) -> Exit {
        match self {
            DiffError::Unverified { .. } => Exit::Fail,
            _ => Exit::Usage,
        }
    }
}

/// Both records, verified when asked, of one scenario, A the earlier.
fn read_both(args: &DiffArgs) -> Result<(DrillRecord, DrillRecord), DiffError> {
    let (a, b) = (read(&args.a)?, read(&args.b)?);
    if let Some(path) = &args.allowed_signers {
        let signers = read_signers(path).map_err(|source| DiffError::Signers { path: path.clone(), source })?;
        let trust = Trust { allowed_signers: Some((&signers, path)), identity: None };
        for given in [&args.a, &args.b] {
            verified(&folder(given), &trust)?;
        }
    }
    if a.scenario.name != b.scenario.name {
        return Err(DiffError::Scenarios { a: a.scenario.name, b: b.scenario.name });
    }
    if b.started_at < a.started_at {
        return Err(DiffError::Order { a: a.drill_id, b: b.drill_id });
    }
    Ok((a, b))
}

/// The report folder of a path given: itself, or the folder of its drill.json.
fn folder(given: &Path) -> PathBuf {
    match given.is_dir() {
        true => given.to_owned(),
        false => given.parent().map(Path::to_owned).unwrap_or_default(),
    }
}

fn read(given: &Path) -> Result<DrillRecord, DiffError> {
    let path = if given.is_dir() { given.join("drill.json") } else { given.to_owned() };
    let text = std::fs::read_to_string(&path).map_err(|source| DiffError::Read { path: path.clone(), source })?;
    serde_json::from_str(&text).map_err(|source| DiffError::Malformed { path, source })
}

fn verified(dir: &Path, trust: &Trust<'_>) -> Result<(), DiffError> {
    let verification = verify(dir, trust).map_err(|source| DiffError::Read { path: dir.to_owned(), source })?;
    match verification.passed() {
        true => Ok(()),
        false => {
            let findings = verification.findings.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            Err(DiffError::Unverified { dir: dir.to_owned(), findings })
        }
    }
}

fn say(args: &DiffArgs, a: &DrillRecord, b: &DrillRecord) -> ExitCode {
    let differences = compare(a, b, Slower { ratio: args.slower, floor: args.slower_by });
    let worse: Vec<&Difference> = differences.iter().filter(|d| d.worse).collect();
    if args.json {
        let json = serde_json::json!({
            "scenario": a.scenario.name, "a": a.drill_id, "b": b.drill_id,
            "worse": !worse.is_empty(), "differences": differences,
        });
        outln!("{json:#}");
    } else {
        for difference in &differences {
            let kind = if difference.worse { "worse" } else { "better" };
            outln!("{kind}: {}", difference.said);
        }
        let (scenario, ids) = (&a.scenario.name, format!("drill {} (B) against drill {} (A)", b.drill_id, a.drill_id));
        match worse.len() {
            0 => outln!("ok: {ids} of `{scenario}`: B proves no less than A"),
            n => outln!(
                "worse: {ids} of `{scenario}`: B proves less than A, in {n} way{}",
                if n == 1 { "" } else { "s" }
            ),
        }
        if args.allowed_signers.is_none() {
            outln!(
                "note: the drills' evidence was not verified: pass --allowed-signers to compare only records their signers vouch for"
            );
        }
    }
    Exit::pass_if(worse.is_empty()).into()
}
