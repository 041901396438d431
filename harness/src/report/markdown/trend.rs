//! How a drill compares with the previous one of its scenario, from the history.

use std::fmt::Write;

use super::{code, table};
use crate::outcome::history::HistoryEntry;
use crate::outcome::{DrillRecord, Verdict};
use crate::units::{human_duration, human_size};

/// How this drill compares with the previous one of the same scenario.
pub(super) fn since_previous(out: &mut String, r: &DrillRecord, previous: Option<&HistoryEntry>) {
    out.push_str("## Since the previous drill\n\n");
    let Some(p) = previous else {
        out.push_str("This is the first drill of this scenario in this report folder.\n\n");
        return;
    };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let _ = writeln!(
        out,
        "The previous drill ran {} (`{}`) and {}.\n",
        p.started_at.format(&format).unwrap_or_default(),
        p.drill_id,
        if p.verdict == "pass" { "passed" } else { "did not pass" }
    );
    let rows = compared(r, p);
    out.push_str(&table(Some(&["", "Previous", "This drill", "Change"]), rows));
    out.push_str("\n\n");
    what_changed(out, r, p);
    out.push_str("![Recovery time over past drills](recovery.svg)\n\n");
    out.push_str("![Age of the backup drilled, over past drills](backup-age.svg)\n\n");
}

/// The table's rows: each figure then and now, and its change.
fn compared(r: &DrillRecord, p: &HistoryEntry) -> Vec<Vec<String>> {
    let ms = |v: u64| human_duration(std::time::Duration::from_millis(v));
    let change = |now: i128, before: i128, unit: &dyn Fn(u64) -> String| {
        let diff = now - before;
        match diff.cmp(&0) {
            std::cmp::Ordering::Equal => "same".to_owned(),
            std::cmp::Ordering::Greater => format!("+{}", unit(diff as u64)),
            std::cmp::Ordering::Less => format!("-{}", unit((-diff) as u64)),
        }
    };
    let count = |v: u64| v.to_string();
    let mut rows = vec![vec![
        "Duration".to_owned(),
        ms(p.duration_ms),
        human_duration(r.duration),
        change(r.duration.as_millis() as i128, p.duration_ms as i128, &ms),
    ]];
    if let (Some(before), Some(now)) = (p.recovery_ms, r.recovery) {
        rows.push(vec![
            "Recovery time".into(),
            ms(before),
            human_duration(now),
            change(now.as_millis() as i128, before as i128, &ms),
        ]);
    }
    if let (Some(before), Some(now)) = (p.rows_restored, r.restore.as_ref().map(|s| s.rows)) {
        rows.push(vec![
            "Rows restored".into(),
            before.to_string(),
            now.to_string(),
            change(now as i128, before as i128, &count),
        ]);
    }
    if let Some(b) = &r.backup {
        rows.push(vec![
            "Backup size".into(),
            human_size(p.backup_size),
            human_size(b.size_bytes),
            change(b.size_bytes as i128, p.backup_size as i128, &|v| human_size(v)),
        ]);
    }
    let (passed, not) = r.check_counts();
    rows.push(vec![
        "Checks passed".into(),
        format!("{} of {}", p.checks_passed, p.checks_total),
        format!("{passed} of {}", passed + not),
        change(passed as i128, p.checks_passed as i128, &count),
    ]);
    rows
}

/// The checks that changed verdict, and what makes the two drills hard to compare.
fn what_changed(out: &mut String, r: &DrillRecord, p: &HistoryEntry) {
    let now_failing: Vec<&str> =
        r.checks.iter().filter(|c| c.verdict != Verdict::Pass).map(|c| c.id.as_str()).collect();
    let newly: Vec<&str> = now_failing.iter().copied().filter(|id| !p.not_passed.iter().any(|x| x == id)).collect();
    let fixed: Vec<&str> = p.not_passed.iter().map(String::as_str).filter(|id| !now_failing.contains(id)).collect();
    if !newly.is_empty() {
        let _ = writeln!(out, "Newly not passing: {}.\n", newly.iter().map(|i| code(i)).collect::<Vec<_>>().join(", "));
    }
    if !fixed.is_empty() {
        let _ = writeln!(out, "Passing again: {}.\n", fixed.iter().map(|i| code(i)).collect::<Vec<_>>().join(", "));
    }
    if p.scenario_sha256 != r.scenario.sha256 {
        let short = |sha: &str| sha.get(..12).unwrap_or(sha).to_owned();
        let _ = writeln!(
            out,
            "The scenario file changed since the previous drill (sha256 `{}…` then, `{}…` now): the two drills may not check the same things.\n",
            short(&p.scenario_sha256),
            short(&r.scenario.sha256)
        );
    }
    if !p.backup_sha256.is_empty() && r.backup.as_ref().is_some_and(|b| b.sha256 == p.backup_sha256) {
        out.push_str("The backup is the same file as last time (same sha256): no newer backup was drilled.\n\n");
    }
}
