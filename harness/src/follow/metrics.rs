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

/// Writes `text` as `follow.prom` in `dir`, whole (a reader never sees half of it).
pub(crate) fn write(dir: &Path, text: &str) -> std::io::Result<()> {
    let partial = dir.join(format!(".{NAME}.partial"));
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, dir.join(NAME))
}
