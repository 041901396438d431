//! `pgdrill follow-status`: whether a follower is proving its archive now, read from the
//! `follow.prom` it writes at each look (`metrics`): ready when the file is there, its look is
//! recent, its proof lag within the bound and no fault stands. A missing or stale file is not
//! ready: a follower that stopped writing is found by its silence. A pod's readiness probe and a
//! monitor's check (systemd, cron) run it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use prometheus_parse::{Scrape, Value};

use super::metrics::NAME;

/// What a follower is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// The proof lag allowed.
    pub max_lag: Duration,
    /// How old its last look may be.
    pub max_age: Duration,
}

/// What `follow.prom` says, and when it was read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Status {
    pub scenario: String,
    /// Seconds.
    pub proof_lag: f64,
    /// Seconds since the follower's last look (0 when its clock is ahead of this one's).
    pub look_age: f64,
    /// The kinds of the faults standing.
    pub faults: Vec<String>,
    pub ledger_segments: u64,
}

/// Why `follow.prom` says nothing of the follower.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StatusError {
    #[error(
        "no {NAME} in `{dir}`: no follower has looked at an archive there (not started, still restoring its base backup, or given another --state)"
    )]
    Missing {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` has no gauge `{gauge}`: it is not a follower's {NAME}")]
    Gauge { path: String, gauge: &'static str },
}

/// The gauges read.
const PROOF_LAG: &str = "pgdrill_follow_proof_lag_seconds";
const LOOK: &str = "pgdrill_follow_look_timestamp_seconds";
const SEGMENTS: &str = "pgdrill_follow_ledger_segments";
const FAULT: &str = "pgdrill_follow_fault";

/// Reads `follow.prom` in the state folder `dir`, its look's age taken at `now`.
pub(crate) fn read(dir: &Path, now: SystemTime) -> Result<Status, StatusError> {
    let path = dir.join(NAME);
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => StatusError::Missing { dir: dir.display().to_string(), source },
        _ => StatusError::Read { path: shown.clone(), source },
    })?;
    let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .map_err(|source| StatusError::Read { path: shown.clone(), source })?;
    let gauge = |name: &'static str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .and_then(|s| match s.value {
                Value::Gauge(v) | Value::Untyped(v) => Some(v),
                _ => None,
            })
            .ok_or_else(|| StatusError::Gauge { path: shown.clone(), gauge: name })
    };
    let (proof_lag, look, segments) = (gauge(PROOF_LAG)?, gauge(LOOK)?, gauge(SEGMENTS)?);
    let epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let faults = scrape
        .samples
        .iter()
        .filter(|s| s.metric == FAULT && matches!(s.value, Value::Gauge(v) | Value::Untyped(v) if v != 0.0))
        .map(|s| s.labels.get("kind").unwrap_or("unnamed").to_owned())
        .collect();
    let scenario = scrape.samples.first().and_then(|s| s.labels.get("scenario")).unwrap_or_default().to_owned();
    Ok(Status {
        scenario,
        proof_lag,
        look_age: (epoch - look).max(0.0),
        faults,
        ledger_segments: segments.max(0.0) as u64,
    })
}

impl Status {
    /// What keeps the follower from being ready, each said with its bound; none: ready.
    pub(crate) fn problems(&self, bounds: &Bounds) -> Vec<String> {
        let mut problems = Vec::new();
        if self.look_age > bounds.max_age.as_secs_f64() {
            problems.push(format!(
                "its last look at the archive is {:.0} s old, over --max-age {} (the follower stopped, or hangs)",
                self.look_age,
                humantime::format_duration(bounds.max_age)
            ));
        }
        if self.proof_lag > bounds.max_lag.as_secs_f64() {
            problems.push(format!(
                "proof lag {:.0} s, over --max-lag {}",
                self.proof_lag,
                humantime::format_duration(bounds.max_lag)
            ));
        }
        if !self.faults.is_empty() {
            problems.push(format!(
                "{} standing: {} (its log names it)",
                if self.faults.len() == 1 { "a fault" } else { "faults" },
                self.faults.join(", ")
            ));
        }
        problems
    }

    /// The follower in a line: its proof lag, its look's age, the faults standing and what the
    /// ledger holds.
    pub(crate) fn line(&self) -> String {
        format!(
            "scenario {}: proof lag {:.1} s, last look {:.1} s ago, {}, {} segment{} in the ledger",
            self.scenario,
            self.proof_lag,
            self.look_age,
            match self.faults.len() {
                0 => "no fault standing".to_owned(),
                _ => format!("faults standing: {}", self.faults.join(", ")),
            },
            self.ledger_segments,
            if self.ledger_segments == 1 { "" } else { "s" },
        )
    }
}

/// The line `follow-status` prints, and whether the follower is ready.
pub(crate) fn check(dir: &Path, bounds: &Bounds, now: SystemTime) -> (bool, String) {
    match read(dir, now) {
        Err(e) => (false, format!("not ready: {}", crate::error::error_chain(&e))),
        Ok(status) => match status.problems(bounds) {
            problems if problems.is_empty() => (true, format!("ready: {}", status.line())),
            problems => (false, format!("not ready: {} ({})", problems.join("; "), status.line())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::faults::{Fault, Faults};
    use super::super::metrics::{self, Figures};
    use super::*;

    const BOUNDS: Bounds = Bounds { max_lag: Duration::from_secs(60), max_age: Duration::from_secs(30) };

    /// A state folder whose `follow.prom` the follower's own writer wrote, looked `age` seconds
    /// before `now`, with `lag` and `faults`.
    fn written(now: SystemTime, age: f64, lag: f64, faults: &Faults) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
        let text = metrics::render(&Figures {
            scenario: "orders",
            proof_lag: lag,
            look_at: epoch - age,
            replay_lsn: 0x0300_0060,
            ledger_segments: 37,
            last_replayed_at: Some(epoch - 3.0),
            faults,
            markers: 0,
            last_marker: None,
        });
        metrics::write(dir.path(), &text).unwrap();
        dir
    }

    #[test]
    fn a_fresh_follower_within_its_lag_and_with_no_fault_is_ready() {
        let now = SystemTime::now();
        let dir = written(now, 0.4, 2.25, &Faults::default());
        let status = read(dir.path(), now).unwrap();
        assert_eq!(status.scenario, "orders");
        assert!((status.look_age - 0.4).abs() < 0.01 && status.proof_lag == 2.25, "{status:?}");
        let (ready, line) = check(dir.path(), &BOUNDS, now);
        assert!(ready, "{line}");
        assert_eq!(
            line,
            "ready: scenario orders: proof lag 2.2 s, last look 0.4 s ago, no fault standing, 37 segments in the ledger"
        );
    }

    #[test]
    fn a_stale_look_is_not_ready() {
        let now = SystemTime::now();
        let dir = written(now, 45.0, 0.0, &Faults::default());
        let (ready, line) = check(dir.path(), &BOUNDS, now);
        assert!(!ready, "{line}");
        assert!(line.starts_with("not ready: its last look at the archive is 45 s old, over --max-age 30s"), "{line}");
    }

    #[test]
    fn a_proof_lag_over_the_bound_is_not_ready() {
        let now = SystemTime::now();
        let dir = written(now, 1.0, 90.0, &Faults::default());
        let (ready, line) = check(dir.path(), &BOUNDS, now);
        assert!(!ready, "{line}");
        assert!(
            line.starts_with("not ready: proof lag 90 s, over --max-lag 1m (scenario orders: proof lag 90.0 s"),
            "{line}"
        );
        let (ready, _) = check(dir.path(), &Bounds { max_lag: Duration::from_secs(120), ..BOUNDS }, now);
        assert!(ready, "within a larger bound");
    }

    #[test]
    fn a_fault_standing_is_not_ready() {
        let now = SystemTime::now();
        let mut faults = Faults::default();
        let gap = Fault::Gap {
            missing: "000000010000000000000007".into(),
            later: "000000010000000000000008".into(),
            waited: Duration::from_secs(61),
        };
        faults.set("gap", Some(gap), &|_| {});
        let dir = written(now, 1.0, 5.0, &faults);
        let (ready, line) = check(dir.path(), &BOUNDS, now);
        assert!(!ready, "{line}");
        assert!(line.starts_with("not ready: a fault standing: gap (its log names it)"), "{line}");
        assert!(line.ends_with("faults standing: gap, 37 segments in the ledger)"), "{line}");
    }

    /// Absence is a failure, not silence: no file, or a file that is not a follower's.
    #[test]
    fn a_missing_or_foreign_file_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let (ready, line) = check(dir.path(), &BOUNDS, SystemTime::now());
        assert!(!ready, "{line}");
        assert!(line.starts_with("not ready: no follow.prom in `"), "{line}");
        assert!(line.contains("no follower has looked at an archive there"), "{line}");
        std::fs::write(dir.path().join(NAME), "# TYPE pgdrill_drill_passed gauge\npgdrill_drill_passed 1\n").unwrap();
        let (ready, line) = check(dir.path(), &BOUNDS, SystemTime::now());
        assert!(!ready, "{line}");
        assert!(line.contains("has no gauge `pgdrill_follow_proof_lag_seconds`"), "{line}");
    }
}
