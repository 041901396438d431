//! `metrics.prom`: the drill's outcome as gauges, for monitoring to alert on a drill that failed
//! or a backup grown too old. One text serves both readers: node_exporter's textfile collector
//! (the Prometheus text format, copy the file into its folder) and OpenMetrics parsers. What
//! keeps both happy: every family a gauge with `# HELP` and `# TYPE`, `# UNIT` only where the
//! name ends with the unit (OpenMetrics requires it; the Prometheus format reads it as a
//! comment), no `_total`/`_count`/`_created` suffixes (a counter's or a summary's in OpenMetrics),
//! no sample timestamps (the textfile collector refuses them), and `# EOF` last (a comment to
//! the Prometheus format). A value the drill did not measure is left out, never written as 0.
//!
//! prometheus-client's OpenMetrics text encoder writes it: it escapes the scenario label's value
//! (`\`, `"` and a line feed, as both formats read them), but writes HELP as given, so no help
//! text here holds one of them (a test keeps it so).
//!
//! The alerting rules and the dashboard shipped in `monitoring/` read these names; a test there
//! fails when one of them is not a name this file writes.

use std::borrow::Cow;

use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::outcome::Verdict;
use crate::outcome::history::HistoryEntry;
use crate::outcome::{DrillRecord, DrillVerdict};

/// The file's name in a drill's report folder.
pub const NAME: &str = "metrics.prom";

/// One gauge: name, help, value (`None` when the drill did not measure it).
struct Gauge {
    name: &'static str,
    help: &'static str,
    value: Option<Value>,
}

/// A count or a yes (1) and no (0), written as an integer; or a time, in seconds to the
/// millisecond, whose gauge's name ends with `_seconds` and has `# UNIT`.
enum Value {
    Count(i64),
    Seconds(f64),
}

/// The text of `metrics.prom` for `record`; `past` is the history before it (for the last
/// pass of its scenario).
pub fn render(record: &DrillRecord, past: &[HistoryEntry]) -> String {
    let scenario = (Cow::Borrowed("scenario"), Cow::Owned(record.scenario.name.clone()));
    let mut registry = Registry::with_labels(std::iter::once(scenario));
    for Gauge { name, help, value } in drill_gauges(record, past).into_iter().chain(time_gauges(record, past)) {
        // The registry ends the help with a full stop of its own.
        let help = help.trim_end_matches('.');
        match value {
            Some(Value::Count(n)) => registry.register(name, help, ConstGauge::new(n)),
            // The registry appends the unit to the name, and writes `# UNIT`.
            Some(Value::Seconds(s)) => {
                registry.register_with_unit(name.trim_end_matches("_seconds"), help, Unit::Seconds, ConstGauge::new(s))
            }
            None => {}
        }
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("a String takes any text");
    out
}

/// Whole milliseconds, as drill.json records durations.
fn seconds(d: std::time::Duration) -> Value {
    Value::Seconds(d.as_millis() as f64 / 1000.0)
}

/// An instant in seconds since the Unix epoch, to the millisecond.
fn epoch(t: time::OffsetDateTime) -> Value {
    Value::Seconds((t.unix_timestamp_nanos() as f64 / 1e6).round() / 1000.0)
}

/// Whether the drill ran to a verdict on the backup: passed, or failed for what it found (not
/// interrupted, and not a drill that could not run: exit code 3).
fn ran(record: &DrillRecord) -> bool {
    crate::outcome::ran_to_a_verdict(record.verdict.as_str(), crate::outcome::could_not_run(record))
}

/// The verdict on the backup: this drill's when it ran to one, else that of the newest drill of
/// the scenario in `past` that did (a drill that could not run hides no failure before it).
fn passed(record: &DrillRecord, past: &[HistoryEntry]) -> Option<Value> {
    let pass = DrillVerdict::Pass.as_str();
    let verdict = match ran(record) {
        true => Some(record.verdict == DrillVerdict::Pass),
        false => past.iter().rev().find(|e| e.scenario == record.scenario.name && e.ran()).map(|e| e.verdict == pass),
    };
    verdict.map(|passed| Value::Count(passed.into()))
}

/// What the drill measured: its verdict, recovery time, the backup's age, its checks, its length.
fn drill_gauges(record: &DrillRecord, past: &[HistoryEntry]) -> [Gauge; 8] {
    let count = |wanted: &[Verdict]| record.checks.iter().filter(|c| wanted.contains(&c.verdict)).count() as i64;
    [
        Gauge {
            name: "pgdrill_drill_passed",
            help: "The verdict on the backup of the latest drill that ran to one: 1 when every phase and check passed, 0 when it failed. A drill that could not run or was interrupted leaves the verdict before it.",
            value: passed(record, past),
        },
        Gauge {
            name: "pgdrill_drill_ran",
            help: "Whether this drill ran to a verdict on the backup: 1 when it passed or failed, 0 when it could not run (exit code 3: the backup unreachable, the target did not start) or was interrupted.",
            value: Some(Value::Count(ran(record).into())),
        },
        Gauge {
            name: "pgdrill_drill_recovery_seconds",
            help: "Measured recovery time, judged against the RTO: from the drill's start until the restored database was ready for its checks.",
            value: record.recovery.map(seconds),
        },
        Gauge {
            name: "pgdrill_backup_age_seconds",
            help: "Age of the drilled backup when the drill started, judged against the RPO.",
            // Not of an older backup sampled on purpose (`--sample`): the RPO is the newest's.
            value: record.backup_age().filter(|_| record.sample.is_none()).map(seconds),
        },
        Gauge {
            name: "pgdrill_drill_checks",
            help: "Checks in the drill, objectives included, whatever their verdict.",
            value: Some(Value::Count(record.checks.len() as i64)),
        },
        Gauge {
            name: "pgdrill_drill_checks_passed",
            help: "Checks that passed.",
            value: Some(Value::Count(count(&[Verdict::Pass]))),
        },
        Gauge {
            name: "pgdrill_drill_checks_failed",
            help: "Checks that failed or could not run (verdict fail or error); skipped ones are not counted.",
            value: Some(Value::Count(count(&[Verdict::Fail, Verdict::Error]))),
        },
        Gauge {
            name: "pgdrill_drill_duration_seconds",
            help: "How long the whole drill took, teardown included.",
            value: record.finished_at.map(|_| seconds(record.duration)),
        },
    ]
}

/// When it ended and when its scenario last passed, and the objectives it is judged against.
fn time_gauges(record: &DrillRecord, past: &[HistoryEntry]) -> [Gauge; 6] {
    [
        Gauge {
            name: "pgdrill_drill_end_timestamp_seconds",
            help: "When the drill ended, in seconds since the Unix epoch.",
            value: record.finished_at.map(epoch),
        },
        Gauge {
            name: "pgdrill_last_pass_timestamp_seconds",
            help: "When the latest passed drill of the scenario ended (this one or one before it in the history), in seconds since the Unix epoch: alert when it grows old.",
            value: last_pass(record, past),
        },
        Gauge {
            name: "pgdrill_objective_rto_seconds",
            help: "The scenario's recovery time objective (RTO), which the recovery time is judged against.",
            value: record.scenario.objectives.rto.map(seconds),
        },
        Gauge {
            name: "pgdrill_objective_rpo_seconds",
            help: "The scenario's recovery point objective (RPO), which the backup's age is judged against.",
            value: record.scenario.objectives.rpo.map(seconds),
        },
        Gauge {
            name: "pgdrill_objective_cadence_seconds",
            help: "How often the scenario is drilled ([objectives] cadence): alert when no drill ended for that long and a quarter more.",
            value: record.scenario.objectives.cadence.map(seconds),
        },
        Gauge {
            name: "pgdrill_control_held",
            help: "A negative control's drill ([control] fails_in): 1 when it failed in the phase it must, 0 when it passed or failed elsewhere. Only for a control.",
            value: crate::outcome::control_held(record).map(|held| Value::Count(held.into())),
        },
    ]
}

/// When the latest passed drill of `record`'s scenario ended, in seconds since the epoch: this
/// drill's end when it passed, else the newest pass of the same scenario in `past` (lines that
/// do not name their scenario are not counted: they may be another's).
fn last_pass(record: &DrillRecord, past: &[HistoryEntry]) -> Option<Value> {
    if record.verdict == DrillVerdict::Pass
        && let Some(finished) = record.finished_at
    {
        return Some(epoch(finished));
    }
    past.iter()
        .filter(|e| e.scenario == record.scenario.name && e.verdict == DrillVerdict::Pass.as_str())
        .map(|e| e.started_at + std::time::Duration::from_millis(e.duration_ms))
        .max()
        .map(epoch)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;
    use crate::outcome::CheckResult;
    use crate::outcome::{RunnerInfo, ScenarioInfo};

    fn record(name: &str) -> DrillRecord {
        let scenario = ScenarioInfo { name: name.into(), ..ScenarioInfo::default() };
        let mut r =
            DrillRecord::new("d".repeat(32), scenario, RunnerInfo::default(), datetime!(2026-11-22 08:00:00 UTC));
        r.finished_at = Some(datetime!(2026-11-22 08:00:42.5 UTC));
        r.duration = Duration::from_millis(42_500);
        r
    }

    /// A scenario's name is the user's: its quotes, backslashes and line feeds are escaped as
    /// both formats read them (tests/drills/metrics.rs parses it), on every sample, which has one
    /// number and no timestamp.
    #[test]
    fn a_hostile_scenario_name_is_escaped_on_every_sample() {
        let text = render(&record("a\"b\\c\nd} e{x=\"1"), &[]);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 6, "{text}");
        for line in samples {
            let value = line.split_once(r#"{scenario="a\"b\\c\nd} e{x=\"1"} "#).map(|(_, value)| value);
            assert!(value.is_some_and(|v| v.parse::<f64>().is_ok()), "{line}\n{text}");
        }
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
        assert!(text.contains("pgdrill_backup_age_seconds{scenario=\"plur\"} 18000.0\n"), "{text}");
        assert!(text.contains("pgdrill_drill_passed{scenario=\"plur\"} 1\n"), "{text}");
        // An older backup sampled on purpose: its age would page as a missed RPO.
        r.sample = Some(crate::outcome::example_plan());
        let text = render(&r, &[]);
        assert!(!text.contains("pgdrill_backup_age_seconds"), "{text}");
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
        assert!(text.contains(&format!("pgdrill_last_pass_timestamp_seconds{{scenario=\"plur\"}} {at}.0\n")), "{text}");
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

    /// Every metric name in `text`: the words that start with `pgdrill_`, but a follower's
    /// (`pgdrill_follow_`, written to follow.prom: `follow::metrics`' unit tests check those).
    fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
        let word = regex::Regex::new(r"\bpgdrill_[a-z0-9_]+").expect("a regex");
        word.find_iter(text)
            .map(|m| m.as_str().to_owned())
            .filter(|name| !name.starts_with("pgdrill_follow_"))
            .collect()
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
            cadence: Some(Duration::from_secs(86400)),
        };
        // And a negative control (which writes whether it held).
        r.scenario.control = Some(crate::outcome::Phase::Checks);
        let written = metric_names(&render(&r, &[]));
        // The encoder writes HELP as given: nothing in it to escape (a backslash, a quote, a line feed).
        for Gauge { help, .. } in drill_gauges(&r, &[]).into_iter().chain(time_gauges(&r, &[])) {
            assert!(!help.contains(['\\', '"', '\n']), "{help}");
        }
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
