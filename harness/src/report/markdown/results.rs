//! What the drill found: each phase, each check, the migrations, the application, the restore's
//! own figures, pgdrill's footprint, and the objectives the business set.

use std::fmt::Write;

use super::{
    EVIDENCE_FOLD, FOLD_END, OUTPUT_FOLD, cell, clock, code, fenced, indented, phase_badge, table, upper_first,
    verdict_badge,
};
use crate::outcome::{DrillRecord, Objective, PhaseStatus, Verdict};
use crate::units::{human_duration, human_size};

/// Each phase: its status, when it started, how long it took, what it found.
pub(super) fn phases(out: &mut String, r: &DrillRecord) {
    out.push_str("## Phases\n\n");
    let rows = r
        .phases
        .iter()
        .map(|p| {
            let details = match (&p.error, p.summary.is_empty()) {
                (Some(e), _) => cell(e),
                (None, false) => cell(&p.summary),
                (None, true) => String::new(),
            };
            vec![
                format!("{} — {}", p.phase, p.phase.purpose()),
                phase_badge(p.status).into(),
                p.started_at.as_ref().map(clock).unwrap_or_default(),
                if p.started_at.is_some() { human_duration(p.duration) } else { String::new() },
                details,
            ]
        })
        .collect();
    out.push_str(&table(Some(&["Phase", "Status", "Started (UTC)", "Duration", "Details"]), rows));
    out.push_str("\n\n![The drill's phases on a time line](timeline.svg)\n\n");
}

/// Each check's verdict, the ones that did not pass with their evidence, and the query behind each.
pub(super) fn checks(out: &mut String, r: &DrillRecord) {
    out.push_str("## Checks\n\n");
    if r.checks.is_empty() {
        let _ = writeln!(out, "No checks were configured or run. {}\n", crate::outcome::NO_CHECKS);
    } else {
        let _ = writeln!(out, "{}.\n", upper_first(&r.checks_tally()));
        let rows = r
            .checks
            .iter()
            .map(|c| vec![code(&c.id), cell(&c.expected), cell(&c.actual), verdict_badge(c.verdict).into()])
            .collect();
        out.push_str(&table(Some(&["Check", "Expected", "Actual", "Verdict"]), rows));
        out.push_str("\n\n");
        let failures: Vec<_> = r.checks.iter().filter(|c| c.verdict != Verdict::Pass).collect();
        if !failures.is_empty() {
            out.push_str("### Checks that did not pass\n\n");
            for c in failures {
                // Its lines indented: a message's own line cannot end the item or start a block.
                let id = c.id.replace(['\r', '\n'], " ");
                // The finding's code beside the verdict: what an acceptance or a search names.
                let found = if c.code.is_empty() { String::new() } else { format!(", {}", code(&c.code)) };
                let _ = writeln!(out, "- **{id}** ({}{found}): {}", c.verdict, indented(&c.message, "  "));
                if !c.evidence.is_empty() {
                    let _ = writeln!(out, "\n{}\n", fenced("sql", &c.evidence, "  "));
                }
            }
            out.push('\n');
        }
        out.push_str("The query behind each check is under *Evidence*, at the end.\n\n");
    }
}

/// The query behind each check, and how long it took: last, an appendix for whoever checks the
/// checks (folded on screen, printed whole).
pub(super) fn evidence(out: &mut String, r: &DrillRecord) {
    if r.checks.is_empty() {
        return;
    }
    out.push_str("## Evidence\n\n");
    let _ = writeln!(out, "{EVIDENCE_FOLD}\n");
    let rows = r.checks.iter().map(|c| vec![code(&c.id), code(&c.evidence), human_duration(c.duration)]).collect();
    out.push_str(&table(Some(&["Check", "SQL", "Took"]), rows));
    let _ = writeln!(out, "\n\n{FOLD_END}\n");
}

/// The pending migrations a pre-migration safety check applied.
pub(super) fn migration(out: &mut String, r: &DrillRecord) {
    if let Some(m) = &r.migrate {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        let _ = writeln!(
            out,
            "## Migration\n\nA pre-migration safety check: after the restore, the journal went from version {} to {}.\n",
            code(&show(&m.version_before)),
            code(&show(&m.version_after))
        );
        if !m.applied.is_empty() {
            let _ = writeln!(
                out,
                "Applied, in order: {}.\n",
                m.applied.iter().map(|a| code(a)).collect::<Vec<_>>().join(", ")
            );
        }
    }
}

/// The application booted against the restored database, and its last output.
pub(super) fn application(out: &mut String, r: &DrillRecord) {
    if let Some(app) = &r.app {
        let failed = r.phase(crate::outcome::Phase::App).is_some_and(|p| p.status != PhaseStatus::Passed);
        let _ = writeln!(
            out,
            "## Application\n\n{} was booted against the restored database at {}.\n",
            code(&app.launched),
            code(&app.url)
        );
        if !app.output_tail.is_empty() {
            let (open, close) = if failed {
                (String::new(), String::new())
            } else {
                (format!("{OUTPUT_FOLD}\n\n"), format!("\n{FOLD_END}\n"))
            };
            if failed {
                out.push_str("Its last output:\n\n");
            }
            let _ = writeln!(out, "{open}{}\n{close}", fenced("text", &app.output_tail.join("\n"), ""));
        }
    }
}

/// What the restore wrote, and the catalog audit's finding.
pub(super) fn restore(out: &mut String, r: &DrillRecord) {
    if let Some(stats) = &r.restore {
        let _ = writeln!(
            out,
            "## Restore\n\n{} statements and {} COPY blocks ({} rows, {}) restored into database {}{}.\n",
            stats.statements,
            stats.copy_blocks,
            stats.rows,
            human_size(stats.bytes),
            code(&stats.database),
            if stats.jobs > 1 { format!(" on {} connections side by side", stats.jobs) } else { String::new() }
        );
        if let Some(audit) = &stats.catalog {
            let list: Vec<String> = audit.databases.iter().map(|d| code(d)).collect();
            let _ = writeln!(
                out,
                "Catalog audit: ✅ PostgreSQL's built-ins are as in {}: {} built-in catalog rows (functions, operators, casts, types, access methods, views' rules, ...) compared in {}, and nothing that could stand in for one added. pgdrill's own queries read what they say.\n",
                audit.reference,
                audit.rows,
                list.join(" and ")
            );
        }
    }
}

/// The CPU and memory pgdrill itself used.
pub(super) fn usage(out: &mut String, r: &DrillRecord) {
    if let Some(usage) = &r.usage {
        if let Some(drills) = usage.drills_at_once {
            let _ = writeln!(
                out,
                "The pgdrill process, running {drills} drills at once (`--jobs`), used {:.2} s of CPU for them all and at most {} of memory.\n",
                usage.cpu_ms as f64 / 1000.0,
                human_size(usage.peak_rss_bytes)
            );
            return;
        }
        let share = if r.duration.is_zero() {
            String::new()
        } else {
            format!(
                " ({:.1}% of the drill's {:.1} s)",
                usage.cpu_ms as f64 / r.duration.as_millis() as f64 * 100.0,
                r.duration.as_secs_f64()
            )
        };
        let _ = writeln!(
            out,
            "pgdrill itself used {:.2} s of CPU{share} and at most {} of memory.\n",
            usage.cpu_ms as f64 / 1000.0,
            human_size(usage.peak_rss_bytes)
        );
    }
}

/// The objectives the business set, each measured against its line, right under the verdict.
pub(super) fn objectives(out: &mut String, r: &DrillRecord) {
    let set = &r.scenario.objectives;
    let set = [(Objective::Rto, "RTO: recovery time", set.rto), (Objective::Rpo, "RPO: backup age", set.rpo)];
    let rows: Vec<Vec<String>> = set
        .into_iter()
        .filter_map(|(objective, name, limit)| {
            let limit = limit?;
            let result = r.objective(objective);
            let (measured, verdict) = match result {
                Some(c) if c.actual.is_empty() => (cell(&c.message), objective_badge(c.verdict)),
                Some(c) => {
                    let from = r
                        .backup
                        .as_ref()
                        .and_then(|b| b.taken_at_from.as_deref())
                        .filter(|_| objective == Objective::Rpo);
                    (
                        format!(
                            "{}{}",
                            cell(&c.actual),
                            from.map(|f| format!(" (from {})", cell(f))).unwrap_or_default()
                        ),
                        objective_badge(c.verdict),
                    )
                }
                None if objective == Objective::Rto && r.clone_of.is_some() => (
                    "not judged here: the database is a clone, and the drill that restored it was judged".into(),
                    objective_badge(Verdict::Skipped),
                ),
                None => ("not measured".into(), objective_badge(Verdict::Skipped)),
            };
            Some(vec![name.into(), crate::objectives::span(limit), measured, verdict.into()])
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str(&table(Some(&["Objective", "Set", "Measured", "Verdict"]), rows));
    out.push_str("\n\n");
}

pub(super) fn objective_badge(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅ met",
        Verdict::Fail => "❌ missed",
        Verdict::Error => "⚠️ unknown",
        Verdict::Skipped => "⏭ not measured",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::{ProcessUsage, RunnerInfo, ScenarioInfo};

    #[test]
    fn the_process_usage_is_no_share_of_a_drill_run_beside_others() {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let mut record = DrillRecord::new("d".into(), ScenarioInfo::default(), RunnerInfo::default(), at);
        record.duration = Duration::from_secs(10);
        record.usage = Some(ProcessUsage { cpu_ms: 2000, peak_rss_bytes: 40 << 20, drills_at_once: None });
        let mut alone = String::new();
        usage(&mut alone, &record);
        assert!(alone.starts_with("pgdrill itself used 2.00 s of CPU (20.0% of the drill's 10.0 s)"), "{alone}");
        record.usage = Some(ProcessUsage { drills_at_once: Some(2), ..record.usage.clone().unwrap() });
        let mut shared = String::new();
        usage(&mut shared, &record);
        assert!(
            shared.starts_with("The pgdrill process, running 2 drills at once (`--jobs`), used 2.00 s"),
            "{shared}"
        );
        assert!(!shared.contains('%'), "{shared}");
    }
}
