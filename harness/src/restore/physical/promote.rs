//! How a recovery to a target ends: the server pauses there (`recovery_target_action = 'pause'`)
//! and pgdrill promotes it (`pg_promote()`), where PostgreSQL's own promotion at the target
//! (`'promote'`) would first write a whole end-of-recovery checkpoint and make the drill wait
//! for it: a promotion asked for writes an end-of-recovery record instead and leaves the
//! checkpoint to the checkpointer, spread over `checkpoint_timeout`. A server pauses for another
//! reason too (a setting lower than the source's): only its log tells the two apart, so a
//! target pauses only where pgdrill reads the log (a container's), and a pause the log does not
//! say is at the target fails the recovery as before.
//!
//! A paused startup process looks for a promotion only when it wakes, once a second: pgdrill
//! wakes it (see [`WAKE_THE_STARTUP_PROCESS`]) until it is promoted.

use std::collections::BTreeMap;

use crate::scenario::{RecoverySpec, RecoveryTarget};

/// What the server logs when it pauses at its target (PostgreSQL 14 and later,
/// `recoveryPausesHere`): a pause for any other reason says `recovery has paused`.
const PAUSED_AT_TARGET: &str = "pausing at the end of recovery";

/// Wakes a paused startup process so that it finds the promotion asked for (`pg_promote()`) at
/// once instead of at its next wake-up, a second later: the promotion's signal sets a latch it
/// does not wait on while paused, and only the end of the pause wakes it. So the pause is ended
/// and asked for again in one statement: woken, the process finds itself still asked to pause,
/// looks for a promotion, and is promoted (without the end-of-recovery checkpoint). Should it
/// run between the two, it leaves the pause and promotes itself (with the checkpoint) instead:
/// slower, never wrong.
pub(crate) const WAKE_THE_STARTUP_PROCESS: &str = "SELECT pg_wal_replay_resume(), pg_wal_replay_pause()";

/// Whether the server of this recovery pauses at its target for pgdrill to promote it: a target
/// short of the archive's end (there pgdrill promotes anyway), a log pgdrill reads
/// (`log_read`), and no `recovery_target_action` of the scenario's own (`given`).
pub(crate) fn pauses_at_target(spec: &RecoverySpec, given: &BTreeMap<String, String>, log_read: bool) -> bool {
    log_read && spec.target != RecoveryTarget::End && !given.contains_key("recovery_target_action")
}

/// The `recovery_target_action` of a server that pauses (or not) at its target.
pub(crate) fn action(pauses: bool) -> &'static str {
    if pauses { "pause" } else { "promote" }
}

/// Whether the server's log says its last recovery paused at its target.
pub(crate) fn paused_at_target(log: &str) -> bool {
    let last = log.rfind("redo starts at ").map_or(log, |at| &log[at..]);
    last.contains(PAUSED_AT_TARGET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_target_short_of_the_end_whose_log_is_read_pauses_there() {
        let at_time = RecoverySpec {
            target: RecoveryTarget::Time(time::macros::datetime!(2026-11-23 13:01:02 UTC)),
            ..RecoverySpec::default()
        };
        let none = BTreeMap::new();
        assert!(pauses_at_target(&at_time, &none, true));
        assert!(!pauses_at_target(&at_time, &none, false), "a log pgdrill cannot read tells no pause apart");
        let end = RecoverySpec { target: RecoveryTarget::End, ..RecoverySpec::default() };
        assert!(!pauses_at_target(&end, &none, true), "at the archive's end pgdrill promotes");
        let own: BTreeMap<String, String> = [("recovery_target_action".to_owned(), "shutdown".to_owned())].into();
        assert!(!pauses_at_target(&at_time, &own, true), "the scenario's own action is its own");
        assert_eq!((action(true), action(false)), ("pause", "promote"));
    }

    /// PostgreSQL 17's words at each pause: at the target, and for a setting lower than the
    /// source's, which is no target reached.
    #[test]
    fn the_log_tells_a_pause_at_the_target_from_a_pause_for_a_setting() {
        let at_target = "\
LOG:  redo starts at 0/2000028
LOG:  consistent recovery state reached at 0/2000158
LOG:  recovery stopping before commit of transaction 751, time 2026-11-23 13:01:02.571829+00
LOG:  pausing at the end of recovery
HINT:  Execute pg_wal_replay_resume() to promote.
";
        assert!(paused_at_target(at_target));
        let for_a_setting = "\
LOG:  redo starts at 0/2000028
WARNING:  hot standby is not possible because of insufficient parameter settings
DETAIL:  max_connections = 100 is a lower setting than on the primary server, where its value was 500.
LOG:  recovery has paused
DETAIL:  If recovery is unpaused, the server will shut down.
";
        assert!(!paused_at_target(for_a_setting));
        // A server started again recovers again: an earlier recovery's pause is not this one's.
        assert!(!paused_at_target(&format!("{at_target}{for_a_setting}")));
        assert!(!paused_at_target(""));
    }
}
