//! `pgdrill follow-status`: whether a follower is proving its archive now, read from the
//! `follow.prom` it writes at each look (`metrics`): ready when the file is there, its look is
//! recent, its proof lag within the bound and no fault stands. A missing or stale file is not
//! ready: a follower that stopped writing is found by its silence. A pod's readiness probe and a
//! monitor's check (systemd, cron) run it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use prometheus_parse::{Scrape, Value};

use super::metrics::NAME;
/// The name of the file a follower writes its figures to, in its state folder.
pub(crate) use super::metrics::NAME as FOLLOW_PROM;

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

/// The last segment a ledger records as proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proven {
    pub segment: String,
    /// When replay passed its end (RFC 3339), and where replay was then.
    pub replayed_at: String,
    pub lsn: String,
}

/// How much of the ledger is read at a time, from its end.
const TAIL: u64 = 64 * 1024;

/// The last segment line of the ledger in the state folder `dir` (none: no ledger, or no
/// segment in it yet). Read from the end, a block at a time: a ledger grows for months, and its
/// last segment line is near its end. Lines that do not read as the ledger's are passed over:
/// this is a view; the follower and `pgdrill verify` check the chain.
pub(crate) fn last_proven(dir: &Path) -> Result<Option<Proven>, StatusError> {
    use std::io::{Read, Seek, SeekFrom};
    let path = dir.join(super::ledger::NAME);
    let shown = path.display().to_string();
    let failed = |source| StatusError::Read { path: shown.clone(), source };
    let mut file = match std::fs::File::open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other.map_err(failed)?,
    };
    let mut end = file.metadata().map_err(failed)?.len();
    // The bytes after `end` not yet read as whole lines: the start of a line cut by a block.
    let mut carry: Vec<u8> = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(TAIL);
        let mut block = vec![0; (end - start) as usize];
        file.seek(SeekFrom::Start(start)).and_then(|_| file.read_exact(&mut block)).map_err(failed)?;
        block.extend_from_slice(&carry);
        let mut lines: Vec<&[u8]> = block.split(|b| *b == b'\n').collect();
        // The first piece may be the end of a line whose start is in the block before.
        let first = if start > 0 { lines.remove(0).to_vec() } else { Vec::new() };
        for line in lines.iter().rev() {
            if let Ok(super::ledger::Entry {
                line: super::ledger::Line::Segment { segment, replayed_at, lsn, .. },
                ..
            }) = serde_json::from_slice(line)
            {
                return Ok(Some(Proven { segment, replayed_at, lsn }));
            }
        }
        carry = first;
        end = start;
    }
    Ok(None)
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

    /// The last segment proven, read from the ledger's end past lines of other kinds (a block
    /// and more of them), a line cut short, and a line that is not the ledger's.
    #[test]
    fn the_last_segment_proven_is_read_from_the_ledgers_end() {
        use super::super::ledger::{Ledger, Line};
        const SIZE: u64 = 16 << 20;
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_proven(dir.path()).unwrap(), None, "no ledger");
        let mut ledger = Ledger::open(&dir.path().join(super::super::ledger::NAME), SIZE).unwrap();
        let start = || Line::Start {
            at: "2026-11-29T00:00:00Z".into(),
            backup: "b".into(),
            system: "42".into(),
            from: "x".into(),
        };
        ledger.start(start()).unwrap();
        assert_eq!(last_proven(dir.path()).unwrap(), None, "no segment yet");
        for number in 2..5 {
            let given = crate::restore::physical::feed::Given {
                number,
                name: crate::source::physical::wal::Segment { timeline: 1, number }.name(SIZE),
                bytes: SIZE,
                sha256: "a".repeat(64),
                archived_at: None,
                restore_points: Vec::new(),
            };
            ledger.record(&given, format!("2026-11-29T00:0{number}:00Z"), format!("0/{number}000000")).unwrap();
        }
        let proven = Proven {
            segment: "000000010000000000000004".into(),
            replayed_at: "2026-11-29T00:04:00Z".into(),
            lsn: "0/4000000".into(),
        };
        assert_eq!(last_proven(dir.path()).unwrap(), Some(proven.clone()));
        // Starts after it, more than a block of them, then a foreign line and one cut short.
        for _ in 0..800 {
            ledger.start(start()).unwrap();
        }
        let path = dir.path().join(super::super::ledger::NAME);
        assert!(std::fs::metadata(&path).unwrap().len() > 2 * TAIL);
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"not json\n{\"seq\":999,\"prev\":\"ab");
        std::fs::write(&path, text).unwrap();
        assert_eq!(last_proven(dir.path()).unwrap(), Some(proven));
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
