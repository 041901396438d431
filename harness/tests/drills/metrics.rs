//! `metrics.prom` read by real parsers: the Python reference client's Prometheus text parser
//! (the format node_exporter's textfile collector reads) and its strict OpenMetrics parser,
//! each value matching drill.json, for a drill that passed and one that failed a check, and a
//! scenario name that needs escaping.

use std::process::Command;

use pgdrill::Verdict;
use pgdrill::outcome::{DrillRecord, DrillVerdict};
use serde_json::Value;

use crate::util::{Scratch, fixture};

/// Parses `metrics.prom` with both of prometheus_client's parsers: for each format, the
/// families by name with their type, unit and samples.
const PARSE: &str = r#"
import json, sys
try:
    from prometheus_client.parser import text_string_to_metric_families as prometheus
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
except ImportError as e:
    sys.exit("prometheus_client is missing (python3 -m pip install 'prometheus-client==0.26.0'): %s" % e)
text = open(sys.argv[1]).read()
out = {}
for fmt, parse in (("prometheus", prometheus), ("openmetrics", openmetrics)):
    out[fmt] = {
        f.name: {"type": f.type, "unit": f.unit, "samples": [[s.name, s.labels, s.value, s.timestamp] for s in f.samples]}
        for f in parse(text)
    }
print(json.dumps(out))
"#;

fn parse(path: &std::path::Path) -> Value {
    let output = Command::new("python3").arg("-c").arg(PARSE).arg(path).output().expect("run python3");
    assert!(
        output.status.success(),
        "prometheus_client could not read {}:\n{}\n--- the file\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    serde_json::from_slice(&output.stdout).expect("the parser's JSON")
}

/// Asserts every family of both formats against the drill's record.
fn assert_matches(parsed: &Value, record: &DrillRecord) {
    let seconds = |d: std::time::Duration| d.as_secs_f64();
    let count = |wanted: &[Verdict]| record.checks.iter().filter(|c| wanted.contains(&c.verdict)).count() as f64;
    let finished = record.finished_at.expect("finished");
    let expected: Vec<(&str, Option<f64>)> = vec![
        ("pgdrill_drill_passed", Some(if record.verdict == DrillVerdict::Pass { 1.0 } else { 0.0 })),
        // Both drills ran to a verdict on their backup.
        ("pgdrill_drill_ran", Some(1.0)),
        ("pgdrill_drill_recovery_seconds", record.recovery.map(seconds)),
        ("pgdrill_backup_age_seconds", record.backup_age().map(seconds)),
        ("pgdrill_drill_checks", Some(record.checks.len() as f64)),
        ("pgdrill_drill_checks_passed", Some(count(&[Verdict::Pass]))),
        ("pgdrill_drill_checks_failed", Some(count(&[Verdict::Fail, Verdict::Error]))),
        ("pgdrill_drill_duration_seconds", Some(seconds(record.duration))),
        ("pgdrill_drill_end_timestamp_seconds", Some(finished.unix_timestamp_nanos() as f64 / 1e9)),
        // Each test drills in a scratch folder of its own: no earlier pass in its history.
        (
            "pgdrill_last_pass_timestamp_seconds",
            (record.verdict == DrillVerdict::Pass).then(|| finished.unix_timestamp_nanos() as f64 / 1e9),
        ),
        ("pgdrill_objective_rto_seconds", record.scenario.objectives.rto.map(seconds)),
        ("pgdrill_objective_rpo_seconds", record.scenario.objectives.rpo.map(seconds)),
    ];
    for format in ["prometheus", "openmetrics"] {
        let families = parsed[format].as_object().unwrap_or_else(|| panic!("no {format} families: {parsed}"));
        let present = expected.iter().filter(|(_, v)| v.is_some()).count();
        assert_eq!(families.len(), present, "{format}: {families:?}");
        for (name, value) in &expected {
            let Some(value) = value else {
                assert!(!families.contains_key(*name), "{format}: {name} was not measured");
                continue;
            };
            let family = &families[*name];
            assert_eq!(family["type"], "gauge", "{format} {name}");
            if format == "openmetrics" {
                let unit = if name.ends_with("_seconds") { "seconds" } else { "" };
                assert_eq!(family["unit"], unit, "{format} {name}");
            }
            let samples = family["samples"].as_array().expect("samples");
            assert_eq!(samples.len(), 1, "{format} {name}: {samples:?}");
            let [sample_name, labels, got, timestamp] = &samples[0].as_array().expect("a sample")[..] else {
                panic!("{format} {name}: {samples:?}")
            };
            assert_eq!(sample_name, name);
            assert_eq!(labels, &serde_json::json!({ "scenario": record.scenario.name }), "{format} {name}");
            assert!(timestamp.is_null(), "{format} {name}: no timestamps (node_exporter refuses them)");
            let got = got.as_f64().expect("a number");
            assert!((got - value).abs() <= 0.001, "{format} {name}: {got} in the file, {value} in drill.json");
        }
    }
}

/// A drill of PLUR's backup, named with today's date (so its age is known), whose row counts
/// expect `tables`.
fn drill(tables: &str) -> (Scratch, crate::util::Drill) {
    let scratch = Scratch::new();
    let today = time::OffsetDateTime::now_utc().date();
    let name = format!("plur-{today}.sql.gz");
    scratch.write(&name, std::fs::read(fixture("plur.sql.gz")).expect("the fixture"));
    let scenario = scratch.scenario(
        "metrics.toml",
        &format!(
            "[source]\npath = \"{name}\"\n[restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n[objectives]\nrto = \"45m\"\nrpo = \"26h\"\n[checks.row_counts]\ntables = {{ {tables} }}\n"
        ),
    );
    let drill = scratch.drill(&scenario);
    (scratch, drill)
}

#[test]
fn a_passed_drills_metrics_read_the_same_in_both_formats_as_its_record() {
    let (_scratch, drill) = drill("\"public.users\" = 40");
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let record = drill.record();
    assert!(record.recovery.is_some() && record.backup_age().is_some(), "{drill:?}");
    let path = drill.out.join("metrics.prom");
    assert_matches(&parse(&path), record);
    let text = drill.report("metrics.prom");
    assert!(text.contains(&format!("pgdrill_drill_passed{{scenario=\"{}\"}} 1\n", record.scenario.name)), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    // In the manifest like every other report file.
    assert!(drill.report("MANIFEST.sha256").lines().any(|l| l.ends_with("  metrics.prom")));
    let verified = Command::new("sha256sum").args(["-c", "MANIFEST.sha256"]).current_dir(&drill.out).output();
    assert!(verified.expect("sha256sum").status.success());
}

#[test]
fn a_failed_drills_metrics_say_it_failed_and_how_many_checks_did() {
    let (_scratch, drill) = drill("\"public.users\" = 41, \"public.audit_events_2024_11\" = 999999");
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let record = drill.record();
    let failed = record.checks.iter().filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error)).count();
    assert_eq!(failed, 2, "{drill:?}");
    assert_matches(&parse(&drill.out.join("metrics.prom")), record);
    let text = drill.report("metrics.prom");
    let name = &record.scenario.name;
    assert!(text.contains(&format!("pgdrill_drill_passed{{scenario=\"{name}\"}} 0\n")), "{text}");
    assert!(text.contains(&format!("pgdrill_drill_checks_failed{{scenario=\"{name}\"}} 2\n")), "{text}");
}

/// A scenario's name is the user's: quotes, a backslash and a line feed in it read back the same
/// in both formats (no drill run: a record rendered as a drill's end renders it).
#[test]
fn a_hostile_scenario_name_reads_back_the_same_in_both_formats() {
    let scenario = pgdrill::outcome::ScenarioInfo { name: "a\"b\\c\nd} e{x=\"1".into(), ..Default::default() };
    let now = time::OffsetDateTime::now_utc();
    let mut record = DrillRecord::new("d".repeat(32), scenario, Default::default(), now);
    (record.verdict, record.finished_at) = (DrillVerdict::Pass, Some(now));
    let scratch = Scratch::new();
    let path = scratch.write("metrics.prom", pgdrill::report::metrics::render(&record, &[]));
    assert_matches(&parse(&path), &record);
}
