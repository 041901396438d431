//! The controls a drill's evidence supports, at the top of `report.md`: each framework's control
//! for backups and their restore tests, what it asks, and the part of the report (or the file
//! beside it) that evidences it, so an auditor maps the report without asking.

use std::fmt::Write;

use crate::outcome::Verdict;
use crate::outcome::{DrillRecord, DrillVerdict};

/// Renders the section.
pub(super) fn render(out: &mut String, r: &DrillRecord) {
    out.push_str("## Controls this evidence supports\n\n");
    let tested = match r.verdict {
        DrillVerdict::Pass => "a restore test performed, and passed",
        _ => "a restore test performed, and not passed: evidence of the test, not of a recoverable backup",
    };
    let _ = writeln!(out, "This drill is {tested}.\n");
    let kinds =
        |wanted: &[&str]| r.checks.iter().any(|c| wanted.contains(&c.kind.as_str()) && c.verdict != Verdict::Skipped);
    let content = if kinds(&["fingerprints", "canary"]) {
        "*Checks* (`fingerprints`: every table's content against the source's in the backup's snapshot; `canary`)"
    } else if kinds(&["row_counts"]) {
        "*Checks* (`row_counts`; no content fingerprint: values are not compared)"
    } else {
        "*Checks* (no row count or content fingerprint was checked)"
    };
    let objectives = match (r.scenario.objectives.rto, r.scenario.objectives.rpo) {
        (None, None) => "*Recovery* (the measured recovery time; no RTO or RPO was set to judge it)",
        _ => "*Objectives* (RTO and RPO measured against the business's lines) and *Recovery*",
    };
    let audit = if kinds(&["append_only"]) {
        "; *Checks* `append_only`: audit trails refuse changes and, with `key`, kept every row of the previous backup"
    } else {
        ""
    };
    let rows: [(&str, &str, String); 5] = [
        (
            "ISO/IEC 27001:2022 A.8.13",
            "Information backup: backups kept and regularly tested",
            format!("*Backup* (what was drilled: location, sha256, age); the verdict above; {content}"),
        ),
        (
            "SOC 2 (TSC 2017) A1.3",
            "Recovery plan procedures supporting system recovery are tested",
            format!("*Phases* (each step of the restore, timed); {objectives}"),
        ),
        (
            "NIST SP 800-53 Rev. 5 CP-4",
            "Contingency plan testing: the plan is tested and the results reviewed",
            "the verdict above, *Phases*, *Since the previous drill* (results over time), `history.jsonl`".into(),
        ),
        (
            "NIST SP 800-53 Rev. 5 CP-9 (1)",
            "System backup: test backup information for reliability and integrity",
            format!("*Backup* (integrity read whole, sha256), {content}{audit}"),
        ),
        (
            "DORA (EU 2022/2554) art. 12",
            "Backup policies, restoration and recovery procedures, periodically tested",
            format!("{objectives}; *Isolation* (restored apart from production); `history.jsonl` (the tests' cadence)"),
        ),
    ];
    out.push_str("| Control | What it asks | Evidenced by |\n|---|---|---|\n");
    for (control, asks, by) in rows {
        let _ = writeln!(out, "| {control} | {asks} | {by} |");
    }
    out.push_str(
        "\nThat these files are as the drill wrote them: `MANIFEST.sha256` (and, when the drill was signed, `evidence.intoto.json` with its SSH signature; `pgdrill verify`).\n\n",
    );
}
