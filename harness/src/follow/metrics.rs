//! `follow.prom` in the follower's state folder, written again at each look: the proof lag, where
//! replay is, what the ledger holds and the faults standing, for node_exporter's textfile
//! collector (and OpenMetrics parsers). The time of the look is a gauge too: a follower that
//! stopped writing is found by its age (absence is a failure, not silence), and the alerting
//! rules in `monitoring/` say so.

use std::borrow::Cow;
use std::path::Path;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};

use super::faults::{Fault, Faults};

/// The file's name in the state folder.
pub(crate) const NAME: &str = "follow.prom";

/// What the gauges say.
pub(crate) struct Figures<'a> {
    pub scenario: &'a str,
    pub proof_lag: f64,
    pub look_at: f64,
    pub replay_lsn: u64,
    pub ledger_segments: usize,
    pub last_replayed_at: Option<f64>,
    pub faults: &'a Faults,
    /// The markers confirmed since the follower started, and the last one (none: no marker yet).
    pub markers: u64,
    pub last_marker: Option<LastMarker>,
}

/// The last marker confirmed: its latency and when replay passed it (seconds since the epoch).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastMarker {
    pub latency: f64,
    pub replayed_at: f64,
}

/// The text of `follow.prom`.
pub(crate) fn render(figures: &Figures<'_>) -> String {
    let scenario = (Cow::Borrowed("scenario"), Cow::Owned(figures.scenario.to_owned()));
    let mut registry = Registry::with_labels(std::iter::once(scenario));
    let seconds = |registry: &mut Registry, name: &str, help: &str, value: f64| {
        registry.register_with_unit(name, help, Unit::Seconds, ConstGauge::new(value));
    };
    seconds(
        &mut registry,
        "pgdrill_follow_proof_lag",
        "How long the oldest archived segment not yet replayed has waited (0 when all the archive held at the last look is replayed)",
        figures.proof_lag,
    );
    seconds(
        &mut registry,
        "pgdrill_follow_look_timestamp",
        "When the follower last looked at the archive and the standby, in seconds since the epoch",
        figures.look_at,
    );
    if let Some(at) = figures.last_replayed_at {
        seconds(
            &mut registry,
            "pgdrill_follow_last_segment_replayed_timestamp",
            "When the ledger last recorded a segment replayed, in seconds since the epoch",
            at,
        );
    }
    registry.register(
        "pgdrill_follow_replay_lsn",
        "Where replay is: the WAL location of the end of the last record replayed, as a number",
        ConstGauge::new(figures.replay_lsn as i64),
    );
    registry.register(
        "pgdrill_follow_ledger_segments",
        "Segments the ledger records as replayed",
        ConstGauge::new(figures.ledger_segments as i64),
    );
    markers(&mut registry, figures);
    let faults = Family::<Vec<(String, String)>, Gauge>::default();
    for kind in Fault::KINDS {
        let standing = i64::from(figures.faults.stands(kind));
        faults.get_or_create(&vec![("kind".to_owned(), kind.to_owned())]).set(standing);
    }
    registry.register("pgdrill_follow_fault", "Whether a fault of the kind stands (1) or not (0)", faults);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("a String takes any text");
    out
}

/// The markers' gauges.
fn markers(registry: &mut Registry, figures: &Figures<'_>) {
    registry.register(
        "pgdrill_follow_markers_confirmed",
        "Markers from the source confirmed replayed since the follower started",
        ConstGauge::new(figures.markers as i64),
    );
    let Some(last) = figures.last_marker else { return };
    registry.register_with_unit(
        "pgdrill_follow_marker_latency",
        "From the last marker's commit on the source to its replay on the follower",
        Unit::Seconds,
        ConstGauge::new(last.latency),
    );
    registry.register_with_unit(
        "pgdrill_follow_last_marker_timestamp",
        "When replay passed the last marker confirmed, in seconds since the epoch",
        Unit::Seconds,
        ConstGauge::new(last.replayed_at),
    );
}

/// Writes `text` as `follow.prom` in `dir`, whole (a reader never sees half of it).
pub(crate) fn write(dir: &Path, text: &str) -> std::io::Result<()> {
    let partial = dir.join(format!(".{NAME}.partial"));
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, dir.join(NAME))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;

    /// Every follower metric name in `text`: the words that start with `pgdrill_follow_`.
    fn names(text: &str) -> BTreeSet<String> {
        let word = regex::Regex::new(r"\bpgdrill_follow_[a-z0-9_]+").expect("a regex");
        word.find_iter(text).map(|m| m.as_str().to_owned()).collect()
    }

    fn rendered(faults: &Faults) -> String {
        render(&Figures {
            scenario: "books",
            proof_lag: 2.5,
            look_at: 1_795_000_000.25,
            replay_lsn: 0x0300_0060,
            ledger_segments: 3,
            last_replayed_at: Some(1_794_999_999.0),
            faults,
            markers: 4,
            last_marker: Some(LastMarker { latency: 3.25, replayed_at: 1_794_999_998.0 }),
        })
    }

    #[test]
    fn each_fault_kind_is_a_gauge_of_its_own_and_the_file_is_openmetrics() {
        let mut faults = Faults::default();
        let gap = Fault::Gap { missing: "a".into(), later: "b".into(), waited: Duration::from_secs(61) };
        faults.set("gap", Some(gap), &|_| {});
        let text = rendered(&faults);
        assert!(text.contains("pgdrill_follow_fault{scenario=\"books\",kind=\"gap\"} 1\n"), "{text}");
        let others = Fault::KINDS.iter().filter(|k| **k != "gap");
        for kind in others {
            assert!(
                text.contains(&format!("pgdrill_follow_fault{{scenario=\"books\",kind=\"{kind}\"}} 0\n")),
                "{text}"
            );
        }
        assert!(text.contains("pgdrill_follow_proof_lag_seconds{scenario=\"books\"} 2.5\n"), "{text}");
        assert!(text.contains("pgdrill_follow_replay_lsn{scenario=\"books\"} 50331744\n"), "{text}");
        assert!(text.contains("pgdrill_follow_marker_latency_seconds{scenario=\"books\"} 3.25\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        let none = rendered(&Faults::default());
        for kind in Fault::KINDS {
            assert!(
                none.contains(&format!("pgdrill_follow_fault{{scenario=\"books\",kind=\"{kind}\"}} 0\n")),
                "{none}"
            );
        }
    }

    /// What `monitoring/` and the docs read of the follower is what this file writes; the fault
    /// runbook has a section for each kind, which the alert links by its `kind` label.
    #[test]
    fn the_shipped_rules_dashboard_and_docs_read_only_names_this_file_writes() {
        let written = names(&rendered(&Faults::default()));
        assert!(written.contains("pgdrill_follow_last_segment_replayed_timestamp_seconds"), "{written:?}");
        for (file, text) in [
            ("monitoring/pgdrill.rules.yml", include_str!("../../../monitoring/pgdrill.rules.yml")),
            ("monitoring/pgdrill.rules.test.yml", include_str!("../../../monitoring/pgdrill.rules.test.yml")),
            ("monitoring/grafana-dashboard.json", include_str!("../../../monitoring/grafana-dashboard.json")),
            ("docs/src/guide/continuous.md", include_str!("../../../docs/src/guide/continuous.md")),
        ] {
            let read = names(text);
            assert!(!read.is_empty(), "{file} reads no follower metric");
            let unknown: Vec<&String> = read.difference(&written).collect();
            assert!(unknown.is_empty(), "{file} reads {unknown:?}, which follow.prom does not write ({written:?})");
        }
        let runbook = include_str!("../../../docs/src/runbooks/follow-fault.md");
        for kind in Fault::KINDS {
            assert!(runbook.contains(&format!(" {{#{kind}}}\n")), "follow-fault.md has no section `{{#{kind}}}`");
        }
        let rules = include_str!("../../../monitoring/pgdrill.rules.yml");
        assert!(rules.contains("follow-fault.md#{{ $labels.kind }}\""), "the fault alert links each kind's section");
    }
}
