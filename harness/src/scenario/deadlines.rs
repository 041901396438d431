//! How long each phase may take: every phase of a drill has a deadline, so that a drill ends
//! whether or not the scenario sets objectives. A phase past its deadline fails the drill.

use std::time::Duration;

use crate::deadline::Deadline;
use crate::field::{FieldError, Spanned, parse_duration};

const HOUR: Duration = Duration::from_secs(3600);

/// One deadline per phase that can take long, each with the key that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadlines {
    /// `[source] fetch_timeout`: downloading or locating the backup (default 6h).
    pub fetch: Deadline,
    /// `[source] verify_timeout`: reading it whole (default 6h).
    pub verify: Deadline,
    /// `[target] provision_timeout`: starting the target, building its image the first time
    /// (default 1h).
    pub provision: Deadline,
    /// `[restore] preflight_timeout`: preparing the target, reading an archive's list (default 2h).
    pub preflight: Deadline,
    /// `[restore] timeout`: the restore, or a base backup's recovery (default 12h).
    pub restore: Deadline,
    /// `[checks] timeout`: every check together (default 2h).
    pub checks: Deadline,
    /// `[app] timeout`: booting the application and its requests (default 1h).
    pub app: Deadline,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            fetch: Deadline::new(6 * HOUR, "[source] fetch_timeout"),
            verify: Deadline::new(6 * HOUR, "[source] verify_timeout"),
            provision: Deadline::new(HOUR, "[target] provision_timeout"),
            preflight: Deadline::new(2 * HOUR, "[restore] preflight_timeout"),
            restore: Deadline::new(12 * HOUR, "[restore] timeout"),
            checks: Deadline::new(2 * HOUR, "[checks] timeout"),
            app: Deadline::new(HOUR, "[app] timeout"),
        }
    }
}

impl Deadlines {
    /// These, for a follower (`pgdrill follow`): its restore phase lasts until it is stopped (a
    /// hundred years stands for no deadline).
    pub(crate) fn following(self) -> Deadlines {
        let forever = Duration::from_secs(100 * 365 * 24 * 3600);
        Deadlines { restore: Deadline::new(forever, "pgdrill follow --for"), ..self }
    }

    /// Every phase's deadline added up: the longest a drill of the scenario may take before its
    /// teardown.
    pub(crate) fn total(&self) -> std::time::Duration {
        [self.fetch, self.verify, self.provision, self.preflight, self.restore, self.checks, self.app]
            .iter()
            .map(|d| d.limit)
            .sum()
    }
}

/// The keys as written, each optional.
#[derive(Default)]
pub(super) struct Given<'a> {
    pub fetch: Option<&'a Spanned<String>>,
    pub verify: Option<&'a Spanned<String>>,
    pub provision: Option<&'a Spanned<String>>,
    pub preflight: Option<&'a Spanned<String>>,
    pub restore: Option<&'a Spanned<String>>,
    pub checks: Option<&'a Spanned<String>>,
    pub app: Option<&'a Spanned<String>>,
}

pub(super) fn resolve(given: Given) -> Result<Deadlines, FieldError> {
    let mut deadlines = Deadlines::default();
    for (value, deadline) in [
        (given.fetch, &mut deadlines.fetch),
        (given.verify, &mut deadlines.verify),
        (given.provision, &mut deadlines.provision),
        (given.preflight, &mut deadlines.preflight),
        (given.restore, &mut deadlines.restore),
        (given.checks, &mut deadlines.checks),
        (given.app, &mut deadlines.app),
    ] {
        let Some(value) = value else { continue };
        let limit = parse_duration(value)?;
        if limit.is_zero() {
            return Err(FieldError::new(value.span(), format!("`{}` must be longer than 0s", deadline.key)));
        }
        deadline.limit = limit;
    }
    Ok(deadlines)
}
