//! The controls a drill's evidence supports, at the top of `report.md`: each framework's control
//! for backups and their restore tests, what it asks, and the part of the report (or the file
//! beside it) that evidences it, so an auditor maps the report without asking.

use std::fmt::Write;

use crate::outcome::Verdict;
use crate::outcome::{DrillRecord, DrillVerdict};

/// What a drill evidences of the controls: whether it passed, how its content was checked,
/// whether objectives judged it, whether audit trails were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Coverage {
    pub passed: bool,
    pub content: Content,
    pub objectives: bool,
    pub audit: bool,
}

/// How a drill checked the restored content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// `fingerprints` or `canary`: values compared.
    Fingerprinted,
    /// `row_counts` only.
    Counted,
    /// Neither.
    Unchecked,
}

/// The controls, each with what it asks.
pub(crate) const CONTROLS: [(&str, &str); 5] = [
    ("ISO/IEC 27001:2022 A.8.13", "Information backup: backups kept and regularly tested"),
    ("SOC 2 (TSC 2017) A1.3", "Recovery plan procedures supporting system recovery are tested"),
    ("NIST SP 800-53 Rev. 5 CP-4", "Contingency plan testing: the plan is tested and the results reviewed"),
    ("NIST SP 800-53 Rev. 5 CP-9 (1)", "System backup: test backup information for reliability and integrity"),
    ("DORA (EU 2022/2554) art. 12", "Backup policies, restoration and recovery procedures, periodically tested"),
];

/// What the drill `r` evidences.
pub(crate) fn coverage(r: &DrillRecord) -> Coverage {
    let kinds =
        |wanted: &[&str]| r.checks.iter().any(|c| wanted.contains(&c.kind.as_str()) && c.verdict != Verdict::Skipped);
    Coverage {
        passed: r.verdict == DrillVerdict::Pass,
        content: if kinds(&["fingerprints", "canary"]) {
            Content::Fingerprinted
        } else if kinds(&["row_counts"]) {
            Content::Counted
        } else {
            Content::Unchecked
        },
        objectives: r.scenario.objectives.rto.is_some() || r.scenario.objectives.rpo.is_some(),
        audit: kinds(&["append_only"]),
    }
}

/// Renders the section.
pub(super) fn render(out: &mut String, r: &DrillRecord) {
    out.push_str("## Controls this evidence supports\n\n");
    let tested = match r.verdict {
        DrillVerdict::Pass => "a restore test performed, and passed",
        _ => "a restore test performed, and not passed: evidence of the test, not of a recoverable backup",
    };
    let _ = writeln!(out, "This drill is {tested}.\n");
    let covered = coverage(r);
    let content = match covered.content {
        Content::Fingerprinted => {
            "*Checks* (`fingerprints`: every table's content against the source's in the backup's snapshot; `canary`)"
        }
        Content::Counted => "*Checks* (`row_counts`; no content fingerprint: values are not compared)",
        Content::Unchecked => "*Checks* (no row count or content fingerprint was checked)",
    };
    let objectives = match covered.objectives {
        false => "*Recovery* (the measured recovery time; no RTO or RPO was set to judge it)",
        true => "*Objectives* (RTO and RPO measured against the business's lines) and *Recovery*",
    };
    let audit = if covered.audit {
        "; *Checks* `append_only`: audit trails refuse changes and, with `key`, kept every row of the previous backup"
    } else {
        ""
    };
    let by: [String; 5] = [
        format!("*Backup* (what was drilled: location, sha256, age); the verdict above; {content}"),
        format!("*Phases* (each step of the restore, timed); {objectives}"),
        "the verdict above, *Phases*, *Since the previous drill* (results over time), `history.jsonl`".into(),
        format!("*Backup* (integrity read whole, sha256), {content}{audit}"),
        format!("{objectives}; *Isolation* (restored apart from production); `history.jsonl` (the tests' cadence)"),
    ];
    out.push_str("| Control | What it asks | Evidenced by |\n|---|---|---|\n");
    for ((control, asks), by) in CONTROLS.iter().zip(by) {
        let _ = writeln!(out, "| {control} | {asks} | {by} |");
    }
    out.push_str(
        "\nThat these files are as the drill wrote them: `MANIFEST.sha256` (and, when the drill was signed, `evidence.intoto.json` with its SSH signature; `pgdrill verify`).\n\n",
    );
}
