//! `metrics.prom`: the drill's outcome as gauges, for monitoring to alert on a drill that failed
//! or a backup grown too old. One text serves both readers: node_exporter's textfile collector
//! (the Prometheus text format, copy the file into its folder) and OpenMetrics parsers. What
//! keeps both happy: every family a gauge with `# HELP` and `# TYPE`, `# UNIT` only where the
//! name ends with the unit (OpenMetrics requires it; the Prometheus format reads it as a
//! comment), no `_total`/`_count`/`_created` suffixes (a counter's or a summary's in OpenMetrics),
//! no sample timestamps (the textfile collector refuses them), and `# EOF` last (a comment to
//! the Prometheus format). A value the drill did not measure is left out, never written as 0.
//!
//! The alerting rules and the dashboard shipped in `monitoring/` read these names; a test there
//! fails when one of them is not a name this file writes.

use std::fmt::Write;

use crate::outcome::Verdict;
use crate::outcome::history::HistoryEntry;
use crate::outcome::{DrillRecord, DrillVerdict};

/// The file's name in a drill's report folder.
pub const NAME: &str = "metrics.prom";

/// One gauge: name, unit (when its name ends with it), help, value.
struct Gauge {
    name: &'static str,
    unit: Option<&'static str>,
    help: &'static str,
    value: Option<f64>,
}

/// The text of `metrics.prom` for `record`; `past` is the history before it (for the last
/// pass of its scenario).
pub fn render(record: &DrillRecord, past: &[HistoryEntry]) -> String {
    let gauges = drill_gauges(record, past).into_iter().chain(time_gauges(record, past));
    let labels = format!("{{scenario=\"{}\"}}", escape_label_value(&record.scenario.name));
    let mut out = String::new();
    for gauge in gauges {
        let Some(value) = gauge.value else { continue };
        let _ = writeln!(out, "# HELP {} {}", gauge.name, gauge.help);
        let _ = writeln!(out, "# TYPE {} gauge", gauge.name);
        if let Some(unit) = gauge.unit {
            let _ = writeln!(out, "# UNIT {} {unit}", gauge.name);
        }
        let _ = writeln!(out, "{}{labels} {}", gauge.name, number(value));
    }
    out.push_str("# EOF\n");
    out
}

/// Whole milliseconds, as drill.json records durations.
fn seconds(d: std::time::Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// Whether the drill ran to a verdict on the backup: passed, or failed for what it found (not
/// interrupted, and not a drill that could not run: exit code 3).
fn ran(record: &DrillRecord) -> bool {
    crate::outcome::ran_to_a_verdict(record.verdict.as_str(), crate::outcome::could_not_run(record))
}

/// The verdict on the backup: this drill's when it ran to one, else that of the newest drill of
/// the scenario in `past` that did (a drill that could not run hides no failure before it).
fn passed(record: &DrillRecord, past: &[HistoryEntry]) -> Option<f64> {
    let pass = DrillVerdict::Pass.as_str();
    let verdict = match ran(record) {
        true => Some(record.verdict == DrillVerdict::Pass),
        false => past.iter().rev().find(|e| e.scenario == record.scenario.name && e.ran()).map(|e| e.verdict == pass),
    };
    verdict.map(|passed| if passed { 1.0 } else { 0.0 })
}

/// What the drill measured: its verdict, recovery time, the backup's age, its checks, its length.
fn drill_gauges(record: &DrillRecord, past: &[HistoryEntry]) -> [Gauge; 8] {
    let count = |wanted: &[Verdict]| record.checks.iter().filter(|c| wanted.contains(&c.verdict)).count() as f64;
    [
        Gauge {
            name: "pgdrill_drill_passed",
            unit: None,
            help: "The verdict on the backup of the latest drill that ran to one: 1 when every phase and check passed, 0 when it failed. A drill that could not run or was interrupted leaves the verdict before it.",
            value: passed(record, past),
        },
        Gauge {
            name: "pgdrill_drill_ran",
            unit: None,
            help: "Whether this drill ran to a verdict on the backup: 1 when it passed or failed, 0 when it could not run (exit code 3: the backup unreachable, the target did not start) or was interrupted.",
            value: Some(if ran(record) { 1.0 } else { 0.0 }),
        },
        Gauge {
            name: "pgdrill_drill_recovery_seconds",
            unit: Some("seconds"),
            help: "Measured recovery time, judged against the RTO: from the drill's start until the restored database was ready for its checks.",
            value: record.recovery.map(seconds),
        },
        Gauge {
            name: "pgdrill_backup_age_seconds",
            unit: Some("seconds"),
            help: "Age of the drilled backup when the drill started, judged against the RPO.",
            value: record.backup_age().map(seconds),
        },
        Gauge {
            name: "pgdrill_drill_checks",
            unit: None,
            help: "Checks in the drill, objectives included, whatever their verdict.",
            value: Some(record.checks.len() as f64),
        },
        Gauge {
            name: "pgdrill_drill_checks_passed",
            unit: None,
            help: "Checks that passed.",
            value: Some(count(&[Verdict::Pass])),
        },
        Gauge {
            name: "pgdrill_drill_checks_failed",
            unit: None,
            help: "Checks that failed or could not run (verdict fail or error); skipped ones are not counted.",
            value: Some(count(&[Verdict::Fail, Verdict::Error])),
        },
        Gauge {
            name: "pgdrill_drill_duration_seconds",
            unit: Some("seconds"),
            help: "How long the whole drill took, teardown included.",
            value: record.finished_at.map(|_| seconds(record.duration)),
        },
    ]
}

/// When it ended and when its scenario last passed, and the objectives it is judged against.
fn time_gauges(record: &DrillRecord, past: &[HistoryEntry]) -> [Gauge; 4] {
    [
        Gauge {
            name: "pgdrill_drill_end_timestamp_seconds",
            unit: Some("seconds"),
            help: "When the drill ended, in seconds since the Unix epoch.",
            value: record.finished_at.map(|t| t.unix_timestamp_nanos() as f64 / 1e9),
        },
        Gauge {
            name: "pgdrill_last_pass_timestamp_seconds",
            unit: Some("seconds"),
            help: "When the latest passed drill of the scenario ended (this one or one before it in the history), in seconds since the Unix epoch: alert when it grows old.",
            value: last_pass(record, past),
        },
        Gauge {
            name: "pgdrill_objective_rto_seconds",
            unit: Some("seconds"),
            help: "The scenario's recovery time objective (RTO), which the recovery time is judged against.",
            value: record.scenario.objectives.rto.map(seconds),
        },
        Gauge {
            name: "pgdrill_objective_rpo_seconds",
            unit: Some("seconds"),
            help: "The scenario's recovery point objective (RPO), which the backup's age is judged against.",
            value: record.scenario.objectives.rpo.map(seconds),
        },
    ]
}

/// When the latest passed drill of `record`'s scenario ended, in seconds since the epoch: this
/// drill's end when it passed, else the newest pass of the same scenario in `past` (lines that
/// do not name their scenario are not counted: they may be another's).
fn last_pass(record: &DrillRecord, past: &[HistoryEntry]) -> Option<f64> {
    let epoch = |t: time::OffsetDateTime| t.unix_timestamp_nanos() as f64 / 1e9;
    if record.verdict == DrillVerdict::Pass
        && let Some(finished) = record.finished_at
    {
        return Some(epoch(finished));
    }
    past.iter()
        .filter(|e| e.scenario == record.scenario.name && e.verdict == DrillVerdict::Pass.as_str())
        .map(|e| epoch(e.started_at + std::time::Duration::from_millis(e.duration_ms)))
        .max_by(f64::total_cmp)
        .map(|t| (t * 1000.0).round() / 1000.0)
}

/// A label value as both formats write it: `\` as `\\`, `"` as `\"`, a line feed as `\n`.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A number both formats read: integers without a fraction, others to the millisecond.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;
    use crate::outcome::CheckResult;
    use crate::outcome::{RunnerInfo, ScenarioInfo};

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("plur"), "plur");
        assert_eq!(escape_label_value(r#"a"b"#), r#"a\"b"#);
        assert_eq!(escape_label_value(r"a\b"), r"a\\b");
        assert_eq!(escape_label_value("a\nb"), r"a\nb");
        assert_eq!(escape_label_value("\\\"\n"), r#"\\\"\n"#);
        // Other characters, tabs and non-ASCII included, are written as they are.
        assert_eq!(escape_label_value("é\tx{}=,"), "é\tx{}=,");
    }

    #[test]
    fn numbers_are_plain() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(2.71871), "2.719");
        assert_eq!(number(1_790_000_000.25), "1790000000.25");
    }

    fn record(name: &str) -> DrillRecord {
        let scenario = ScenarioInfo { name: name.into(), ..ScenarioInfo::default() };
        let mut r =
            DrillRecord::new("d".repeat(32), scenario, RunnerInfo::default(), datetime!(2026-11-22 08:00:00 UTC));
        r.finished_at = Some(datetime!(2026-11-22 08:00:42.5 UTC));
        r.duration = Duration::from_millis(42_500);
        r
    }

    #[test]
    fn a_failed_drill_says_so_and_leaves_out_what_it_did_not_measure() {
        let mut r = record("pl\"ur");
        r.verdict = DrillVerdict::Fail;
        let check =
            |verdict| CheckResult { verdict, ..CheckResult::skipped(crate::outcome::CheckKind::Sql, "q", "why") };
        r.checks = vec![check(Verdict::Pass), check(Verdict::Fail), check(Verdict::Error), check(Verdict::Skipped)];
        let text = render(&r, &[]);
        assert!(text.contains("pgdrill_drill_passed{scenario=\"pl\\\"ur\"} 0\n"), "{text}");
        assert!(text.contains("pgdrill_drill_checks{scenario=\"pl\\\"ur\"} 4\n"), "{text}");
        assert!(text.contains("pgdrill_drill_checks_passed{scenario=\"pl\\\"ur\"} 1\n"), "{text}");
        assert!(text.contains("pgdrill_drill_checks_failed{scenario=\"pl\\\"ur\"} 2\n"), "{text}");
        assert!(text.contains("pgdrill_drill_end_timestamp_seconds{scenario=\"pl\\\"ur\"} 1795334442.5\n"), "{text}");
        assert!(!text.contains("pgdrill_drill_recovery_seconds"), "not measured: {text}");
        assert!(!text.contains("pgdrill_backup_age_seconds"), "not measured: {text}");
        assert!(text.ends_with("\n# EOF\n"), "{text}");
    }

    #[test]
    fn a_passed_drill_has_its_recovery_time_and_backup_age() {
        let mut r = record("plur");
        r.verdict = DrillVerdict::Pass;
        r.recovery = Some(Duration::from_millis(3_250));
        r.backup = Some(crate::outcome::BackupInfo {
            taken_at: Some(datetime!(2026-11-22 03:00:00 UTC)),
            ..Default::default()
        });
        let text = render(&r, &[]);
        assert!(text.contains("# TYPE pgdrill_drill_recovery_seconds gauge\n# UNIT pgdrill_drill_recovery_seconds seconds\npgdrill_drill_recovery_seconds{scenario=\"plur\"} 3.25\n"), "{text}");
        assert!(text.contains("pgdrill_backup_age_seconds{scenario=\"plur\"} 18000\n"), "{text}");
        assert!(text.contains("pgdrill_drill_passed{scenario=\"plur\"} 1\n"), "{text}");
    }

    fn entry(scenario: &str, verdict: &str, started_at: time::OffsetDateTime, duration_ms: u64) -> HistoryEntry {
        let line = serde_json::json!({
            "drill_id": "p", "scenario": scenario, "started_at": started_at.format(&time::format_description::well_known::Rfc3339).unwrap(),
            "verdict": verdict, "duration_ms": duration_ms, "recovery_ms": null, "phases": {}, "rows_restored": null,
            "checks_passed": 0, "checks_total": 0, "not_passed": [], "backup_sha256": "", "backup_size": 0,
            "scenario_sha256": "", "report_dir": "", "manifest_sha256": "",
        });
        serde_json::from_value(line).expect("a history line")
    }

    #[test]
    fn the_last_pass_is_this_drill_or_the_newest_pass_of_the_same_scenario() {
        let past = [
            entry("plur", "pass", datetime!(2026-11-20 08:00:00 UTC), 60_500),
            entry("plur", "pass", datetime!(2026-11-21 08:00:00 UTC), 30_000),
            entry("plur", "fail", datetime!(2026-11-21 20:00:00 UTC), 1_000),
            entry("other", "pass", datetime!(2026-11-22 07:00:00 UTC), 1_000),
            entry("", "pass", datetime!(2026-11-22 07:30:00 UTC), 1_000),
        ];
        let mut r = record("plur");
        r.verdict = DrillVerdict::Fail;
        let text = render(&r, &past);
        let at = datetime!(2026-11-21 08:00:30 UTC).unix_timestamp();
        assert!(text.contains(&format!("pgdrill_last_pass_timestamp_seconds{{scenario=\"plur\"}} {at}\n")), "{text}");
        r.verdict = DrillVerdict::Pass;
        let text = render(&r, &past);
        assert!(text.contains("pgdrill_last_pass_timestamp_seconds{scenario=\"plur\"} 1795334442.5\n"), "{text}");
        r.verdict = DrillVerdict::Fail;
        let text = render(&r, &past[2..]);
        assert!(!text.contains("pgdrill_last_pass_timestamp_seconds"), "never passed: left out\n{text}");
    }

    /// A drill that could not run (the target did not start) or was interrupted says so
    /// (`pgdrill_drill_ran 0`), and leaves the verdict of the last drill that ran: it hides no
    /// failure, and fires no failure of its own.
    #[test]
    fn a_drill_that_could_not_run_leaves_the_verdict_before_it() {
        let mut cannot = record("plur");
        cannot.verdict = DrillVerdict::Fail;
        cannot.phases = vec![crate::outcome::PhaseRecord {
            phase: crate::outcome::Phase::Provision,
            status: crate::outcome::PhaseStatus::Failed,
            started_at: None,
            duration: Duration::ZERO,
            summary: String::new(),
            error: Some("the container did not start".into()),
            inconclusive: true,
        }];
        assert!(crate::outcome::could_not_run(&cannot));
        let mut interrupted = record("plur");
        interrupted.verdict = DrillVerdict::Interrupted;
        let failed = entry("plur", "fail", datetime!(2026-11-20 08:00:00 UTC), 1_000);
        let mut unreached = entry("plur", "fail", datetime!(2026-11-21 08:00:00 UTC), 1_000);
        unreached.could_not_run = true;
        let passed = entry("plur", "pass", datetime!(2026-11-19 08:00:00 UTC), 1_000);
        for r in [&cannot, &interrupted] {
            let text = render(r, &[passed.clone(), failed.clone(), unreached.clone()]);
            assert!(text.contains("pgdrill_drill_ran{scenario=\"plur\"} 0\n"), "{text}");
            assert!(text.contains("pgdrill_drill_passed{scenario=\"plur\"} 0\n"), "the failure before it: {text}");
            let text = render(r, &[failed.clone(), passed.clone(), unreached.clone()]);
            assert!(text.contains("pgdrill_drill_passed{scenario=\"plur\"} 1\n"), "the pass before it: {text}");
            let text = render(r, &[unreached.clone()]);
            assert!(!text.contains("pgdrill_drill_passed"), "no verdict yet: left out\n{text}");
        }
        let mut failing = record("plur");
        failing.verdict = DrillVerdict::Fail;
        let text = render(&failing, std::slice::from_ref(&passed));
        assert!(text.contains("pgdrill_drill_passed{scenario=\"plur\"} 0\n"), "{text}");
        assert!(text.contains("pgdrill_drill_ran{scenario=\"plur\"} 1\n"), "{text}");
    }

    /// Every metric name in `text`: the words that start with `pgdrill_`.
    fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
        let word = regex::Regex::new(r"\bpgdrill_[a-z0-9_]+").expect("a regex");
        word.find_iter(text).map(|m| m.as_str().to_owned()).collect()
    }

    #[test]
    fn the_shipped_rules_and_dashboard_read_only_names_this_file_writes() {
        // A drill with everything measured, its objectives set, after a pass.
        let mut r = record("plur");
        r.verdict = DrillVerdict::Pass;
        r.recovery = Some(Duration::from_secs(3));
        r.backup = Some(crate::outcome::BackupInfo {
            taken_at: Some(datetime!(2026-11-22 03:00:00 UTC)),
            ..Default::default()
        });
        r.scenario.objectives = crate::objectives::Objectives {
            rto: Some(Duration::from_secs(45 * 60)),
            rpo: Some(Duration::from_secs(26 * 3600)),
        };
        let written = metric_names(&render(&r, &[]));
        assert!(written.contains("pgdrill_objective_rpo_seconds"), "{written:?}");
        for (file, text) in [
            ("monitoring/pgdrill.rules.yml", include_str!("../../../monitoring/pgdrill.rules.yml")),
            ("monitoring/pgdrill.rules.test.yml", include_str!("../../../monitoring/pgdrill.rules.test.yml")),
            ("monitoring/grafana-dashboard.json", include_str!("../../../monitoring/grafana-dashboard.json")),
        ] {
            let read = metric_names(text);
            assert!(!read.is_empty(), "{file} reads no pgdrill metric");
            let unknown: Vec<&String> = read.difference(&written).collect();
            assert!(unknown.is_empty(), "{file} reads {unknown:?}, which metrics.prom does not write ({written:?})");
        }
    }
}
