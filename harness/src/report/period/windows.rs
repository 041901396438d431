//! The windows a database's cadence divides a period into, and what each held: a drill is
//! expected in each. Windows start at the period's start, one cadence long; a last window
//! shorter than the cadence joins the one before it (a weekly drill is not expected in a
//! period's last two days), and a period shorter than its cadence is one window.

use std::time::Duration;

use time::OffsetDateTime;

/// What a window held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WindowState {
    /// A drill in it passed, and its evidence holds.
    Passed,
    /// Drills ran in it, and none passed.
    Failed,
    /// It has ended with no drill: an exception.
    Missed,
    /// It has not ended yet, and no drill in it passed so far.
    Open,
}

impl WindowState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WindowState::Passed => "passed",
            WindowState::Failed => "failed",
            WindowState::Missed => "missed",
            WindowState::Open => "open",
        }
    }
}

/// A span of the period in which a drill is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub state: WindowState,
    /// The drills that started in it (indices into the database's drills of the period).
    pub drills: Vec<usize>,
}

/// The windows of `cadence` in `[from, to)`, empty when the period is.
pub(crate) fn split(
    from: OffsetDateTime,
    to: OffsetDateTime,
    cadence: Duration,
) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    let mut windows: Vec<(OffsetDateTime, OffsetDateTime)> = Vec::new();
    let Ok(step) = time::Duration::try_from(cadence) else { return windows };
    if step.is_zero() {
        return windows;
    }
    let mut start = from;
    while start < to {
        let end = (start + step).min(to);
        match windows.last_mut() {
            Some(last) if end - start < step => last.1 = end,
            _ => windows.push((start, end)),
        }
        start = end;
    }
    windows
}

/// Each window with the drills that started in it (`drills`: each one's start and whether it
/// passed with its evidence holding), judged as of `now`.
pub(crate) fn judge(
    spans: &[(OffsetDateTime, OffsetDateTime)],
    drills: &[(OffsetDateTime, bool)],
    now: OffsetDateTime,
) -> Vec<Window> {
    spans
        .iter()
        .map(|&(start, end)| {
            let mine: Vec<usize> = (0..drills.len()).filter(|&i| drills[i].0 >= start && drills[i].0 < end).collect();
            let state = if mine.iter().any(|&i| drills[i].1) {
                WindowState::Passed
            } else if end > now {
                WindowState::Open
            } else if mine.is_empty() {
                WindowState::Missed
            } else {
                WindowState::Failed
            };
            Window { start, end, state, drills: mine }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn day(n: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_767_225_600 + n * DAY).unwrap()
    }

    fn days(n: u64) -> Duration {
        Duration::from_secs(n * DAY as u64)
    }

    #[test]
    fn a_period_is_split_in_cadences_its_short_tail_joining_the_last() {
        assert_eq!(
            split(day(0), day(28), days(7)),
            vec![(day(0), day(7)), (day(7), day(14)), (day(14), day(21)), (day(21), day(28))]
        );
        // 30 days of a weekly cadence: the last two days join the fourth week.
        assert_eq!(split(day(0), day(30), days(7)).last(), Some(&(day(21), day(30))));
        assert_eq!(split(day(0), day(30), days(7)).len(), 4);
        // A period shorter than the cadence is one window; an empty one none.
        assert_eq!(split(day(0), day(30), days(92)), vec![(day(0), day(30))]);
        assert!(split(day(3), day(3), days(7)).is_empty());
        assert!(split(day(0), day(9), Duration::ZERO).is_empty());
    }

    #[test]
    fn a_window_passes_by_a_passing_drill_fails_by_failed_ones_and_is_missed_empty() {
        let spans = split(day(0), day(28), days(7));
        let drills = [(day(1), false), (day(2), true), (day(9), false), (day(27), false)];
        let windows = judge(&spans, &drills, day(25));
        let states: Vec<WindowState> = windows.iter().map(|w| w.state).collect();
        assert_eq!(states, [WindowState::Passed, WindowState::Failed, WindowState::Missed, WindowState::Open]);
        assert_eq!(windows[0].drills, [0, 1]);
        assert_eq!(windows[3].drills, [3]);
        // Once the last window has ended, its failed drill fails it; a drill at a window's end
        // is the next window's.
        assert_eq!(judge(&spans, &drills, day(28))[3].state, WindowState::Failed);
        assert_eq!(judge(&spans, &[(day(7), true)], day(28))[1].drills, [0]);
    }
}
