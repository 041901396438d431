//! Pictures for the Markdown report, as SVG files beside it (and inline in report.html, scaled
//! to the page by their `viewBox`): the phases of a drill on a time line (`timeline.svg`), and
//! the recovery time of the scenario's past drills (`recovery.svg`).

use std::fmt::Write;

use crate::outcome::history::HistoryEntry;
use crate::outcome::{DrillRecord, PhaseStatus};
use crate::report::html::escape;
use crate::units::human_duration;

fn color(status: PhaseStatus) -> &'static str {
    match status {
        PhaseStatus::Passed => "#2e8540",
        PhaseStatus::Failed => "#d83933",
        PhaseStatus::Interrupted => "#e5a000",
        PhaseStatus::Skipped | PhaseStatus::Running => "#aeb0b5",
    }
}

/// The drill's phases as bars on a time line, from the drill's start.
pub fn timeline(record: &DrillRecord) -> String {
    let total_ms = record.duration.as_millis().max(1) as f64;
    let (left, width, row) = (110.0, 560.0, 26.0);
    let phases: Vec<_> = record.phases.iter().filter(|p| p.started_at.is_some()).collect();
    let height = 40.0 + row * phases.len() as f64 + 30.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="720" height="{height}" viewBox="0 0 720 {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        out,
        r#"<text x="10" y="20" font-weight="bold">Drill “{}”: {} in {}</text>"#,
        escape(&record.scenario.name),
        record.verdict.as_str(),
        human_duration(record.duration)
    );
    for (i, p) in phases.iter().enumerate() {
        let y = 35.0 + row * i as f64;
        let start = p.started_at.map(|s| (s - record.started_at).whole_milliseconds().max(0) as f64).unwrap_or(0.0);
        let x = left + width * start / total_ms;
        let w = (width * p.duration.as_millis() as f64 / total_ms).max(1.5);
        // The duration beside its bar: after it, or before it when the bar reaches the end.
        let (tx, anchor) = if x + w + 60.0 <= 715.0 { (x + w + 4.0, "start") } else { (x - 4.0, "end") };
        let _ = write!(
            out,
            r##"<text x="10" y="{ty}">{name}</text><rect x="{x:.1}" y="{y}" width="{w:.1}" height="18" fill="{fill}"><title>{name}: {status}, {dur}</title></rect><text x="{tx:.1}" y="{ty}" fill="#333" text-anchor="{anchor}">{dur}</text>"##,
            ty = y + 13.0,
            name = p.phase.as_str(),
            fill = color(p.status),
            status = p.status.as_str(),
            dur = human_duration(p.duration),
        );
    }
    let axis = 35.0 + row * phases.len() as f64 + 10.0;
    let _ = write!(
        out,
        r##"<line x1="{left}" y1="{axis}" x2="{right}" y2="{axis}" stroke="#666"/><text x="{left}" y="{label}">0</text><text x="{right}" y="{label}" text-anchor="end">{total}</text></svg>"##,
        right = left + width,
        label = axis + 14.0,
        total = human_duration(record.duration),
    );
    out.push('\n');
    out
}

fn label(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[month]-[day] [hour]:[minute]");
    t.format(&format).unwrap_or_default()
}

/// The recovery time of past drills and this one, as bars (failed drills in red), against the
/// RTO when the scenario sets one.
pub fn recovery(history: &[HistoryEntry], record: &DrillRecord) -> String {
    let points = points(history, record, |h| h.recovery_ms, record.recovery.map(|r| r.as_millis() as u64));
    let rto = record.scenario.objectives.rto.map(|d| d.as_millis() as u64);
    let title = format!("Recovery time of the last {} drills of “{}”", points.len(), record.scenario.name);
    bars(&title, &points, rto.map(|ms| (ms, "RTO")), human_duration)
}

/// The age of the backup each drill restored, against the RPO when the scenario sets one: a
/// backup job that stopped shows as a rising line of bars.
pub fn backup_age(history: &[HistoryEntry], record: &DrillRecord) -> String {
    let age = record.backup_age().map(|a| a.as_millis() as u64);
    let points = points(history, record, |h| h.backup_age_ms, age);
    let rpo = record.scenario.objectives.rpo.map(|d| d.as_millis() as u64);
    let title = format!("Age of the backup drilled, last {} drills of “{}”", points.len(), record.scenario.name);
    bars(&title, &points, rpo.map(|ms| (ms, "RPO")), crate::objectives::span)
}

/// The last 19 past drills and this one: (label, value in ms, passed).
fn points(
    history: &[HistoryEntry],
    record: &DrillRecord,
    value: impl Fn(&HistoryEntry) -> Option<u64>,
    now: Option<u64>,
) -> Vec<(String, Option<u64>, bool)> {
    let mut points: Vec<(String, Option<u64>, bool)> =
        history.iter().rev().take(19).rev().map(|h| (label(h.started_at), value(h), h.verdict == "pass")).collect();
    points.push((label(record.started_at), now, record.verdict == crate::outcome::DrillVerdict::Pass));
    points
}

/// A bar per drill (missing values as a red cross), with a dashed objective line (the fleet
/// view draws each database's recovery times with it too).
pub(crate) fn bars(
    title: &str,
    points: &[(String, Option<u64>, bool)],
    line: Option<(u64, &str)>,
    show: fn(std::time::Duration) -> String,
) -> String {
    let max = points.iter().filter_map(|p| p.1).chain(line.map(|l| l.0)).max().unwrap_or(1).max(1) as f64;
    let (left, bottom, plot_h) = (60.0, 190.0, 150.0);
    let step = 640.0 / points.len().max(1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="720" height="230" viewBox="0 0 720 230" font-family="sans-serif" font-size="11"><text x="10" y="20" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (i, (date, ms, passed)) in points.iter().enumerate() {
        let w = (step - 8.0).clamp(2.0, 48.0);
        let x = left + step * i as f64 + (step - w) / 2.0;
        match ms {
            Some(ms) => {
                let h = (plot_h * *ms as f64 / max).max(1.0);
                let fill = if *passed { "#2e8540" } else { "#d83933" };
                let value = show(std::time::Duration::from_millis(*ms));
                let _ = write!(
                    out,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}"><title>{date}: {value}</title></rect><text x="{cx:.1}" y="{vy:.1}" text-anchor="middle" font-size="9">{value}</text>"#,
                    y = bottom - h,
                    cx = x + w / 2.0,
                    vy = bottom - h - 3.0,
                );
            }
            None => {
                let _ = write!(out, r##"<text x="{x:.1}" y="{y}" fill="#d83933">✗</text>"##, y = bottom - 4.0);
            }
        }
        if points.len() <= 10 || i % 2 == 0 {
            let _ = write!(
                out,
                r#"<text x="{cx:.1}" y="{ty}" font-size="9" text-anchor="middle">{date}</text>"#,
                cx = x + w / 2.0,
                ty = bottom + 14.0
            );
        }
    }
    if let Some((ms, name)) = line {
        let y = bottom - plot_h * ms as f64 / max;
        let value = show(std::time::Duration::from_millis(ms));
        let _ = write!(
            out,
            r##"<line x1="{left}" y1="{y:.1}" x2="700" y2="{y:.1}" stroke="#b05e00" stroke-dasharray="6 4"/><text x="700" y="{ty:.1}" text-anchor="end" fill="#b05e00">{name} {value}</text>"##,
            ty = y - 3.0
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{left}" y1="{bottom}" x2="700" y2="{bottom}" stroke="#666"/><text x="{lx}" y="{ty}" text-anchor="end">{top}</text></svg>"##,
        lx = left - 4.0,
        ty = bottom - plot_h + 4.0,
        top = show(std::time::Duration::from_millis(max as u64))
    );
    out.push('\n');
    out
}
