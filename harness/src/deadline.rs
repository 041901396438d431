//! Phase deadlines: every phase of a drill ends, whether or not the scenario sets objectives.
//! A leaf.

use std::future::Future;
use std::time::Duration;

/// How long a phase may take, and the scenario key that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline {
    pub limit: Duration,
    /// `[restore] timeout`.
    pub key: &'static str,
}

impl Deadline {
    pub(crate) const fn new(limit: Duration, key: &'static str) -> Deadline {
        Deadline { limit, key }
    }
}

/// A phase ran past its deadline and was stopped.
#[derive(Debug, thiserror::Error)]
#[error("the {phase} phase passed its deadline of {limit} and was stopped (hint: raise `{key}` if it needs longer)")]
pub(crate) struct DeadlinePassed {
    pub phase: String,
    pub limit: String,
    pub key: &'static str,
}

/// A duration as a scenario writes it: `12h`, `20s`, `1h 30m`.
pub(crate) fn written(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

/// Runs `work` until it ends or `deadline` passes.
pub(crate) async fn within<T>(
    phase: impl std::fmt::Display,
    deadline: Deadline,
    work: impl Future<Output = T>,
) -> Result<T, DeadlinePassed> {
    tokio::time::timeout(deadline.limit, work).await.map_err(|_| DeadlinePassed {
        phase: phase.to_string(),
        limit: written(deadline.limit),
        key: deadline.key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_phase_past_its_deadline_is_stopped_naming_the_phase_and_the_limit() {
        let deadline = Deadline::new(Duration::from_millis(50), "[restore] timeout");
        assert_eq!(within("restore", deadline, async { 7 }).await.unwrap(), 7);
        let e = within("restore", deadline, std::future::pending::<()>()).await.unwrap_err();
        assert!(e.to_string().starts_with("the restore phase passed its deadline of 50ms"), "{e}");
        assert!(e.to_string().contains("`[restore] timeout`"), "{e}");
        assert_eq!(written(Duration::from_secs(12 * 3600)), "12h");
        assert_eq!(written(Duration::from_secs(90)), "1m 30s");
    }
}
