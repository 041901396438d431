//! The followers of the fleet's databases (`report fleet --follow-state`): each follower's proof
//! lag beside its database's last drill, when it last looked at its archive, the last segment
//! it proved and the faults standing. What a follower's state folder says is read by the
//! command line with the follower's own reader (`follow::status`) and handed here as figures;
//! here they are judged. A follower that says nothing (no `follow.prom`) or stopped saying it
//! (its last look older than the bound) is **not following**: absence is a failure, never
//! shown as fine, and its last proof lag is not shown as its proof lag.

use std::time::Duration;

use serde_json::{Value, json};

/// A follower, as its state folder says it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Follower {
    /// Its state folder, as given or found.
    pub state: String,
    /// The scenario its `follow.prom` names; without one, its folder's name.
    pub scenario: String,
    /// What its `follow.prom` says, or why it says nothing.
    pub said: Result<Said, String>,
    /// The last segment its ledger records as proven: name, when replay passed it, the LSN.
    pub last: Option<(String, String, String)>,
}

/// The figures of a follower's `follow.prom`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Said {
    /// Seconds.
    pub proof_lag: f64,
    /// Seconds since its last look at the archive, as of the fleet's "now".
    pub look_age: f64,
    /// The kinds of the faults standing.
    pub faults: Vec<String>,
    pub ledger_segments: u64,
}

/// What a follower is held to (`--follow-max-lag`, `--follow-max-age`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub max_lag: Duration,
    pub max_age: Duration,
}

/// A follower's standing, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// No `follow.prom`, one that cannot be read, or a last look older than the bound.
    NotFollowing,
    /// A fault stands.
    Faulted,
    /// Its proof lag is over the bound.
    Behind,
    /// Fresh, within its lag, no fault.
    Proving,
}

impl Standing {
    /// Its word, in the page and `fleet-status.json`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Standing::NotFollowing => "not following",
            Standing::Faulted => "faulted",
            Standing::Behind => "behind",
            Standing::Proving => "proving",
        }
    }
}

impl Follower {
    /// Its standing, and why, in a line.
    pub(crate) fn judge(&self, bounds: &Bounds) -> (Standing, String) {
        let said = match &self.said {
            Err(why) => return (Standing::NotFollowing, why.clone()),
            Ok(said) => said,
        };
        let age = humantime::format_duration(bounds.max_age);
        if said.look_age > bounds.max_age.as_secs_f64() {
            let why = format!(
                "its last look at the archive is {} old, over {age}: it stopped, or hangs (its proof lag is unknown)",
                seconds(said.look_age)
            );
            return (Standing::NotFollowing, why);
        }
        if !said.faults.is_empty() {
            let kinds = said.faults.join(", ");
            return (Standing::Faulted, format!("a fault stands: {kinds} (its log and its webhook name it)"));
        }
        if said.proof_lag > bounds.max_lag.as_secs_f64() {
            let lag = humantime::format_duration(bounds.max_lag);
            return (Standing::Behind, format!("proof lag {}, over {lag}", seconds(said.proof_lag)));
        }
        (
            Standing::Proving,
            format!("proof lag {}, within {}", seconds(said.proof_lag), humantime::format_duration(bounds.max_lag)),
        )
    }

    /// Its proof lag, when it is known: the follower looked recently.
    pub(crate) fn proof_lag(&self, bounds: &Bounds) -> Option<f64> {
        self.said.as_ref().ok().filter(|s| s.look_age <= bounds.max_age.as_secs_f64()).map(|s| s.proof_lag)
    }

    /// `fleet-status.json`'s entry.
    pub(crate) fn json(&self, bounds: &Bounds) -> Value {
        let (standing, says) = self.judge(bounds);
        let said = self.said.as_ref().ok();
        json!({
            "state_dir": self.state,
            "scenario": self.scenario,
            "status": standing.as_str(),
            "says": says,
            "proof_lag_seconds": self.proof_lag(bounds),
            "look_age_seconds": said.map(|s| s.look_age),
            "faults": said.map(|s| s.faults.clone()),
            "ledger_segments": said.map(|s| s.ledger_segments),
            "last_segment": self.last.as_ref().map(|(segment, replayed_at, lsn)| json!({
                "segment": segment, "replayed_at": replayed_at, "lsn": lsn,
            })),
        })
    }
}

/// Seconds as the page says them: `0.4 s`, `12 s`, `3m 20s`.
pub(crate) fn seconds(value: f64) -> String {
    match value {
        v if v < 10.0 => format!("{v:.1} s"),
        v if v < 120.0 => format!("{v:.0} s"),
        v => humantime::format_duration(Duration::from_secs(v as u64)).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds { max_lag: Duration::from_secs(120), max_age: Duration::from_secs(120) };

    fn follower(said: Result<Said, String>) -> Follower {
        Follower {
            state: "/var/lib/pgdrill/follow/books".into(),
            scenario: "books".into(),
            said,
            last: Some(("000000010000000000000009".into(), "2026-11-28T05:59:58Z".into(), "0/A000000".into())),
        }
    }

    fn said(look_age: f64, proof_lag: f64, faults: &[&str]) -> Said {
        Said { proof_lag, look_age, faults: faults.iter().map(|f| f.to_string()).collect(), ledger_segments: 9 }
    }

    #[test]
    fn a_fresh_follower_within_its_lag_is_proving_and_shows_its_lag() {
        let f = follower(Ok(said(0.4, 2.25, &[])));
        assert_eq!(f.judge(&BOUNDS), (Standing::Proving, "proof lag 2.2 s, within 2m".into()));
        let json = f.json(&BOUNDS);
        assert_eq!(json["status"], "proving");
        assert_eq!(json["proof_lag_seconds"], 2.25);
        assert_eq!(json["last_segment"]["segment"], "000000010000000000000009");
    }

    /// Absence is a failure, not silence: a stale or missing `follow.prom` is not following,
    /// and its last proof lag is not shown as its proof lag.
    #[test]
    fn a_stale_or_missing_follow_prom_is_not_following_and_its_lag_unknown() {
        let stale = follower(Ok(said(600.0, 0.0, &[])));
        let (standing, why) = stale.judge(&BOUNDS);
        assert_eq!(standing, Standing::NotFollowing);
        assert_eq!(
            why,
            "its last look at the archive is 10m old, over 2m: it stopped, or hangs (its proof lag is unknown)"
        );
        assert_eq!(stale.json(&BOUNDS)["proof_lag_seconds"], Value::Null);
        assert_eq!(stale.json(&BOUNDS)["look_age_seconds"], 600.0);
        let missing = follower(Err("no follow.prom in `/var/lib/pgdrill/follow/books`".into()));
        assert_eq!(missing.judge(&BOUNDS).0, Standing::NotFollowing);
        let json = missing.json(&BOUNDS);
        assert_eq!((&json["status"], &json["proof_lag_seconds"]), (&json!("not following"), &Value::Null));
    }

    #[test]
    fn a_fault_or_a_lag_over_the_bound_is_not_proving() {
        let faulted = follower(Ok(said(1.0, 3.0, &["gap"])));
        assert_eq!(faulted.judge(&BOUNDS).0, Standing::Faulted);
        assert!(faulted.judge(&BOUNDS).1.contains("a fault stands: gap"));
        let behind = follower(Ok(said(1.0, 300.0, &[])));
        assert_eq!(behind.judge(&BOUNDS), (Standing::Behind, "proof lag 5m, over 2m".into()));
        assert_eq!(behind.proof_lag(&BOUNDS), Some(300.0), "known, and over");
    }
}
