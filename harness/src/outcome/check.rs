//! What a check found: its verdict, expected against actual, and the evidence. A leaf: the check
//! kinds and the app's API requests both produce these, and every report shows them.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// The check could not run; the drill fails.
    Error,
    /// The check did not run because an earlier phase failed.
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check's result, as every report shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// Unique within a drill: `<kind>/<object>`.
    pub id: String,
    pub kind: String,
    /// What was checked: a table, an extension, a migration journal.
    pub object: String,
    pub expected: String,
    pub actual: String,
    pub verdict: Verdict,
    /// One sentence on the outcome, naming expected against actual when they differ.
    pub message: String,
    /// The SQL (or request) whose answer is `actual`.
    pub evidence: String,
    #[serde(with = "crate::units::duration_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// An append-only table's key ranges, fingerprinted, for the history to keep and the next
    /// drill to compare (`check::append_only` with `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail: Option<crate::fingerprint::TableFingerprint>,
}

impl CheckResult {
    /// A result for `object` of `kind`, timed from `started`.
    pub fn build(kind: &str, object: impl Into<String>, started: Instant) -> CheckResultBuilder {
        let object = object.into();
        CheckResultBuilder {
            result: CheckResult {
                id: format!("{kind}/{object}"),
                kind: kind.to_owned(),
                object,
                expected: String::new(),
                actual: String::new(),
                verdict: Verdict::Error,
                message: String::new(),
                evidence: String::new(),
                duration: Duration::ZERO,
                trail: None,
            },
            started,
        }
    }

    /// Marks a configured check as not run, with the reason.
    pub fn skipped(kind: &str, object: &str, reason: &str) -> Self {
        CheckResult {
            id: format!("{kind}/{object}"),
            kind: kind.to_owned(),
            object: object.to_owned(),
            expected: String::new(),
            actual: String::new(),
            verdict: Verdict::Skipped,
            message: format!("not run: {reason}"),
            evidence: String::new(),
            duration: Duration::ZERO,
            trail: None,
        }
    }
}

/// Fills in a [`CheckResult`]; finishing it records the duration.
pub struct CheckResultBuilder {
    result: CheckResult,
    started: Instant,
}

impl CheckResultBuilder {
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.result.expected = expected.into();
        self
    }

    pub fn actual(mut self, actual: impl Into<String>) -> Self {
        self.result.actual = actual.into();
        self
    }

    pub fn evidence(mut self, evidence: impl Into<String>) -> Self {
        self.result.evidence = evidence.into();
        self
    }

    /// Pass when `ok`, fail otherwise; `message` explains either way.
    pub fn verdict(self, ok: bool, message: impl Into<String>) -> CheckResult {
        self.finish(if ok { Verdict::Pass } else { Verdict::Fail }, message)
    }

    /// The check was not run, or could not be measured, for a reason outside it.
    pub fn skip(self, message: impl Into<String>) -> CheckResult {
        self.finish(Verdict::Skipped, message)
    }

    /// The check could not run.
    pub fn error(self, message: impl Into<String>) -> CheckResult {
        self.finish(Verdict::Error, message)
    }

    fn finish(mut self, verdict: Verdict, message: impl Into<String>) -> CheckResult {
        self.result.verdict = verdict;
        self.result.message = message.into();
        self.result.duration = self.started.elapsed();
        self.result
    }
}

/// What a drill that ran no check proves, said beside its verdict.
pub(crate) const NO_CHECKS: &str =
    "No check ran: this proves only that the backup restores, not that it holds the data the application needs.";
