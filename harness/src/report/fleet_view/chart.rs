//! A database's recovery time over all its drills found, against its RTO: the bars
//! `report/svg.rs` draws for a drill's `recovery.svg`, sized to the page (a `viewBox`, so that
//! it shrinks to the column and to A4 in print).

use super::Subject;
use crate::report::svg::bars;
use crate::units::human_duration;

/// The chart, or `None` when the database has no complete drill.
pub(super) fn recovery(subject: &Subject) -> Option<String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let points: Vec<(String, Option<u64>, bool)> = subject
        .drills
        .iter()
        .filter_map(|d| {
            let at = d.started_at?.format(&format).unwrap_or_default();
            Some((at, d.recovery.map(|r| r.as_millis() as u64), d.passed()))
        })
        .collect();
    if points.is_empty() {
        return None;
    }
    let rto = subject.drills.iter().rev().find_map(|d| d.rto).map(|d| d.as_millis() as u64);
    let title = format!(
        "Recovery time of {} drill{} of “{}”{}",
        points.len(),
        if points.len() == 1 { "" } else { "s" },
        subject.name,
        if rto.is_some() { ", against its RTO" } else { " (no RTO set)" }
    );
    let svg = bars(&title, &points, rto.map(|ms| (ms, "RTO")), human_duration);
    // The same picture, scaled to its box; described for screen readers.
    let sized = svg.replacen(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="720" height="230" viewBox="0 0 720 230""#,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 720 230" role="img" class="chart""#,
        1,
    );
    Some(sized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fleet::Evidence;
    use crate::report::fleet_view::{AgeRule, Drill, State};

    fn drill(day: i64, recovery_s: u64, verdict: &str) -> Drill {
        Drill {
            scenario: "<b>orders</b>".into(),
            shown: "reports/orders/x/".into(),
            started_at: Some(time::OffsetDateTime::from_unix_timestamp(day * 86400).unwrap()),
            verdict: verdict.into(),
            recovery: Some(std::time::Duration::from_secs(recovery_s)),
            rto: Some(std::time::Duration::from_secs(60)),
            rpo: None,
            failing: vec![],
            failure: None,
            evidence: Evidence::Unsigned,
            coverage: None,
            backup: None,
            record: None,
            acks: vec![],
            ack_faults: vec![],
        }
    }

    #[test]
    fn a_databases_drills_are_bars_against_its_rto_and_its_name_is_text() {
        let subject = crate::report::fleet_view::Subject {
            name: "<b>orders</b>".into(),
            listed: None,
            drills: vec![drill(1, 30, "pass"), drill(2, 90, "fail")],
            state: State::Fresh,
            rule: AgeRule::None,
            age: None,
            gaps: vec![],
            followers: vec![],
            cadence: None,
        };
        let svg = recovery(&subject).expect("a chart");
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 720 230" role"#), "{svg}");
        assert_eq!(svg.matches("viewBox").count(), 1, "{svg}");
        assert!(svg.contains("Recovery time of 2 drills of “&lt;b&gt;orders&lt;/b&gt;”, against its RTO"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(svg.contains("#d83933") && svg.contains("RTO 1 min 00 s"), "a failed drill in red; the RTO: {svg}");
        let none = crate::report::fleet_view::Subject { drills: vec![], ..subject };
        assert!(recovery(&none).is_none());
    }
}
