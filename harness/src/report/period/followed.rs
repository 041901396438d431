//! A follower's proof over the period, where a database is followed (`--follow-state`): the
//! segments its ledger says were replayed in the period, each one's proof lag (replayed less
//! archived), and whether the signed receipts covering its ledger hold. Read by the command
//! (`cli/period_follow.rs`) and handed here as figures.

use std::time::Duration;

/// A follower of a database, over the period.
#[derive(Debug, Clone)]
pub(crate) struct Followed {
    /// Its state folder.
    pub state: String,
    /// The scenario it follows.
    pub scenario: String,
    /// The segments replayed in the period.
    pub segments: usize,
    /// Their proof lags, where the store said when each was archived, smallest first.
    pub lags: Vec<Duration>,
    /// How many receipts cover its ledger.
    pub receipts: usize,
    /// Lines of its ledger no receipt covers yet (a running follower covers them later).
    pub unreceipted: Option<(u64, u64)>,
    /// What is wrong with its receipts, when anything is: an exception of its database.
    pub evidence: Option<String>,
}

impl Followed {
    /// The lag `percent` of the way through the sorted lags: 50 the median, 100 the largest.
    pub(crate) fn lag(&self, percent: usize) -> Option<Duration> {
        let last = self.lags.len().checked_sub(1)?;
        self.lags.get((last * percent.min(100)).div_ceil(100)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lags_are_read_at_their_rank() {
        let secs = |s: &[u64]| s.iter().map(|&s| Duration::from_secs(s)).collect::<Vec<_>>();
        let followed = Followed {
            state: "s".into(),
            scenario: "books".into(),
            segments: 5,
            lags: secs(&[1, 2, 3, 4, 60]),
            receipts: 1,
            unreceipted: None,
            evidence: None,
        };
        assert_eq!(followed.lag(50), Some(Duration::from_secs(3)));
        assert_eq!(followed.lag(99), Some(Duration::from_secs(60)));
        assert_eq!(followed.lag(100), Some(Duration::from_secs(60)));
        assert_eq!(Followed { lags: vec![], ..followed }.lag(50), None);
    }
}
