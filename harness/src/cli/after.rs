//! What `run` and `gate` do once a drill's reports are written: tell the scenario's webhook
//! (`[notify]`, `--notify`), and copy `metrics.prom` where node_exporter's textfile collector
//! reads it (`--metrics-dir`). Neither changes the drill's verdict or the exit code: what goes
//! wrong is a warning on stderr, redacted.

use std::path::{Path, PathBuf};

use crate::drill::{DrillOptions, DrillOutcome};
use crate::notify::{self, FailedCheck, Kind, Message, When};
use crate::outcome::history;
use crate::outcome::{DrillRecord, DrillVerdict};
use crate::report::metrics;
use crate::scenario::Scenario;
use crate::secret::Redactor;

/// `--notify WHEN`: when to tell the webhook, over the scenario's `[notify] on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum NotifyWhen {
    /// A drill that did not pass, and the first pass after one.
    Failure,
    /// After every drill.
    Always,
    /// Never (a drill run by hand).
    Never,
}

impl From<NotifyWhen> for When {
    fn from(when: NotifyWhen) -> When {
        match when {
            NotifyWhen::Failure => When::Failure,
            NotifyWhen::Always => When::Always,
            NotifyWhen::Never => When::Never,
        }
    }
}

/// What follows a drill once its reports are written: its webhook told, its metrics copied.
/// (`--notify`, `--metrics-dir`).
pub(super) async fn told(
    outcome: &DrillOutcome,
    loaded: Option<&Scenario>,
    when: Option<NotifyWhen>,
    metrics_dir: Option<&Path>,
    options: &DrillOptions,
) {
    // A baseline's capture is no drill to be told about.
    let notify = spec(loaded.and_then(|s| s.notify.as_ref()), when);
    if let Some(spec) = notify.filter(|_| options.baseline_out.is_none()) {
        self::notify(&spec, outcome).await;
    }
    if let Some(dir) = metrics_dir {
        copy_metrics(dir, outcome);
    }
}

/// The webhook a drill tells, and when: the scenario's `[notify]` with `--notify` over its
/// `on`; without `[notify]`, `--notify failure|always` tells the URL in `PGDRILL_WEBHOOK_URL`.
pub(super) fn spec(scenario: Option<&notify::Spec>, cli: Option<NotifyWhen>) -> Option<notify::Spec> {
    match (scenario, cli) {
        (Some(spec), None) => Some(spec.clone()),
        (Some(spec), Some(when)) => Some(notify::Spec { on: when.into(), ..spec.clone() }),
        (None, Some(NotifyWhen::Never)) | (None, None) => None,
        (None, Some(when)) => Some(notify::Spec { on: when.into(), ..notify::Spec::default() }),
    }
}

/// Tells the webhook about the drill, if `spec` says so; prints what became of it.
pub(super) async fn notify(spec: &notify::Spec, outcome: &DrillOutcome) {
    let record = &outcome.record;
    let passed = outcome.passed();
    let previous = match &outcome.reports {
        Ok(paths) if passed => previous_passed(&history::read(&paths.history), record),
        _ => None,
    };
    let Some(kind) = notify::decide(spec.on, passed, previous) else { return };
    let mut message = message(kind, outcome);
    if let (Some(template), Ok(paths)) = (&spec.report_url, &outcome.reports) {
        let report = notify::Report {
            scenario: record.scenario.name.clone(),
            folder: paths.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            drill_id: record.drill_id.clone(),
        };
        match notify::report_url(template, &report) {
            Ok(url) => message.report = url,
            Err(why) => eprintln!("warning: [notify] report_url: {why}; the message names the report's path"),
        }
    }
    let body = notify::body(spec.format, &message);
    let redactor = Redactor::new();
    match notify::send(&spec.url, &body, &redactor).await {
        Ok(sent) => outln!("notified: {} ({})", sent.to, kind_word(kind)),
        Err(e) => {
            eprintln!("warning: {} (the drill's verdict stands)", crate::secret::error_text(&e))
        }
    }
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Failure => "the failure",
        Kind::Recovery => "the recovery",
        Kind::Pass => "the pass",
    }
}

/// Whether the drill of the same scenario before this one passed: the last line of the history
/// that names the scenario and is not this drill.
fn previous_passed(past: &[history::HistoryEntry], record: &DrillRecord) -> Option<bool> {
    past.iter()
        .rev()
        .find(|e| !e.scenario.is_empty() && e.scenario == record.scenario.name && e.drill_id != record.drill_id)
        .map(|e| e.verdict == DrillVerdict::Pass.as_str())
}

/// The message for a drill's outcome.
fn message(kind: Kind, outcome: &DrillOutcome) -> Message {
    let record = &outcome.record;
    let report = match &outcome.reports {
        Ok(paths) => absolute(&paths.markdown).display().to_string(),
        Err(e) => format!("none: {}", crate::secret::error_text(e)),
    };
    Message {
        kind,
        scenario: record.scenario.name.clone(),
        verdict: record.verdict.as_str().to_owned(),
        failure: record.failure.clone().filter(|_| kind == Kind::Failure),
        failed: record
            .checks
            .iter()
            .filter(|c| matches!(c.verdict, crate::check::Verdict::Fail | crate::check::Verdict::Error))
            .map(|c| FailedCheck {
                id: c.id.clone(),
                verdict: c.verdict.as_str().to_owned(),
                expected: c.expected.clone(),
                actual: c.actual.clone(),
            })
            .collect(),
        report,
        drill_id: record.drill_id.clone(),
        started_at: record.started_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Copies the drill's `metrics.prom` to `dir/pgdrill-<scenario>.prom`, atomically (a file of
/// its own, then renamed: the collector never reads half a file, and reads only `*.prom`).
pub(super) fn copy_metrics(dir: &Path, outcome: &DrillOutcome) {
    let Ok(paths) = &outcome.reports else { return };
    let name = &outcome.record.scenario.name;
    let target = dir.join(format!("pgdrill-{name}.prom"));
    // Drills run at once (`--jobs`) may be of scenarios of one name: each writes its own aside.
    let temporary = dir.join(format!(".pgdrill-{name}.prom.{}.{}.tmp", std::process::id(), outcome.record.drill_id));
    let copied = std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::copy(paths.dir.join(metrics::NAME), &temporary))
        .and_then(|_| std::fs::rename(&temporary, &target))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        });
    if let Err(e) = copied {
        eprintln!("warning: cannot write `{}`: {e} (the drill's verdict stands)", target.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_says_when_over_the_scenario() {
        let scenario = notify::Spec { on: When::Always, ..notify::Spec::default() };
        assert_eq!(spec(Some(&scenario), None), Some(scenario.clone()));
        assert_eq!(spec(Some(&scenario), Some(NotifyWhen::Never)).map(|s| s.on), Some(When::Never));
        assert_eq!(spec(None, None), None);
        assert_eq!(spec(None, Some(NotifyWhen::Never)), None);
        assert_eq!(spec(None, Some(NotifyWhen::Failure)), Some(notify::Spec::default()));
    }

    #[test]
    fn the_previous_drill_is_the_last_of_the_same_scenario_but_this_one() {
        let line = |id: &str, scenario: &str, verdict: &str| -> history::HistoryEntry {
            serde_json::from_value(serde_json::json!({
                "drill_id": id, "scenario": scenario, "started_at": "2026-11-22T03:00:00Z", "verdict": verdict,
                "duration_ms": 1, "recovery_ms": null, "phases": {}, "rows_restored": null, "checks_passed": 0,
                "checks_total": 0, "not_passed": [], "backup_sha256": "", "backup_size": 0, "scenario_sha256": "",
                "report_dir": "", "manifest_sha256": "",
            }))
            .unwrap()
        };
        let record = DrillRecord::new(
            "now".into(),
            crate::outcome::ScenarioInfo { name: "plur".into(), ..Default::default() },
            crate::outcome::RunnerInfo::default(),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let past =
            [line("a", "plur", "fail"), line("b", "other", "pass"), line("c", "", "pass"), line("now", "plur", "pass")];
        assert_eq!(previous_passed(&past, &record), Some(false));
        assert_eq!(previous_passed(&past[1..], &record), None, "no earlier drill of plur");
        let past = [line("a", "plur", "fail"), line("b", "plur", "pass")];
        assert_eq!(previous_passed(&past, &record), Some(true));
    }
}
