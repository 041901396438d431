//! The objectives a business sets down (`[objectives]`): the recovery time objective (RTO), the
//! recovery point objective (RPO) and how often a drill proves them (its cadence), and how the
//! reports write a span of time. A leaf: the
//! drill's outcome judges them (`outcome::objectives`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the scenario's `[objectives]` sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objectives {
    /// The longest the recovery may take: from the drill's start until the restored database
    /// is ready for its checks.
    #[serde(with = "crate::units::duration_ms::option", rename = "rto_ms", default)]
    pub rto: Option<Duration>,
    /// The oldest the drilled backup may be when the drill starts: the data a restore now loses.
    #[serde(with = "crate::units::duration_ms::option", rename = "rpo_ms", default)]
    pub rpo: Option<Duration>,
    /// How often the scenario is drilled: a drill ending no later than this (and a quarter more)
    /// after the last is expected, and its absence alerts (`PgdrillDrillOverdue`). Not judged
    /// by a drill, which cannot see the next one.
    #[serde(
        with = "crate::units::duration_ms::option",
        rename = "cadence_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cadence: Option<Duration>,
}

impl Objectives {
    /// Whether it sets nothing a drill judges (the cadence is judged by the alerts, over
    /// drills).
    pub(crate) fn is_empty(&self) -> bool {
        self.rto.is_none() && self.rpo.is_none()
    }
}

/// A span of time in hours and minutes, as objectives are written (seconds under a minute,
/// milliseconds under a second): `26h`, `5h 3m`, `45m`, `42s`, `5ms`.
pub(crate) fn span(d: Duration) -> String {
    let secs = d.as_secs();
    let (hours, minutes) = (secs / 3600, secs % 3600 / 60);
    match (hours, minutes) {
        (0, 0) if secs == 0 => format!("{}ms", d.as_millis()),
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}
