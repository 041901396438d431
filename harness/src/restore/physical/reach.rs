//! What a recovery actually reached, as the recovering server's own log says it: the record it
//! stopped at (`recovery stopping before commit of transaction 751, time ...`, `... at restore
//! point "x"`, `... after WAL location (LSN) "0/3000060"`, `... after reaching consistency`),
//! the last transaction it replayed (`last completed transaction was at log time ...`), where
//! the database became consistent (`consistent recovery state reached at 0/2000158`), where
//! redo ended (`redo done at 0/30036C8`), and PostgreSQL's own verdict when it refused
//! (`recovery ended before configured recovery target was reached`, `requested recovery stop
//! point is before consistent recovery point`). Pure: the log is read by [`super::recovery`].

use crate::outcome::{Reach, Stop};

use crate::scenario::RecoveryTarget;
use crate::source::physical::history::parse_time;

impl Stop {
    /// `before the commit of transaction 751 (at 2026-...)`.
    pub fn describe(&self) -> String {
        let what = if self.record == "consistency" {
            "reaching consistency".to_owned()
        } else {
            format!("the {}", self.record)
        };
        let time = self.time.as_ref().map(|t| format!(" (at {t})")).unwrap_or_default();
        format!("{} {what}{time}", self.position)
    }
}

/// PostgreSQL's FATAL messages about a recovery target, and what they mean in a drill's words.
const REFUSALS: [(&str, &str); 2] = [
    (
        "recovery ended before configured recovery target was reached",
        "the WAL ended before the target: the target is later than the archive holds",
    ),
    (
        "requested recovery stop point is before consistent recovery point",
        "the target comes before the base backup's end, where its database is first consistent",
    ),
];

/// Reads a recovering server's log (any `log_line_prefix`; the last recovery in it counts).
pub(crate) fn parse(log: &str) -> Reach {
    let mut reach = Reach::default();
    for line in log.lines() {
        if line.contains("redo starts at ") {
            // A later start (the server started again) begins another recovery.
            if reach.redo_done_at.is_some() || reach.stop.is_some() {
                reach = Reach::default();
            }
        } else if let Some(rest) = after(line, "recovery stopping ") {
            reach.stop = parse_stop(rest);
        } else if let Some(rest) = after(line, "last completed transaction was at log time ") {
            reach.last_completed = Some(rest.trim().to_owned());
        } else if let Some(rest) = after(line, "consistent recovery state reached at ") {
            reach.consistent_at = Some(lsn_word(rest));
        } else if let Some(rest) = after(line, "redo done at ") {
            reach.redo_done_at = Some(lsn_word(rest));
        } else if let Some((message, _)) = REFUSALS.iter().find(|(m, _)| line.contains(m)) {
            reach.refused = Some((*message).to_owned());
        }
    }
    reach
}

/// What PostgreSQL's refusal means, in a drill's words.
pub(crate) fn refusal_meaning(refused: &str) -> &'static str {
    REFUSALS.iter().find(|(m, _)| *m == refused).map_or("", |(_, meaning)| meaning)
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| &line[i + marker.len()..])
}

/// The LSN a message starts with (`0/30036C8 system usage: ...`, `"0/3000060"`).
fn lsn_word(text: &str) -> String {
    text.split_whitespace().next().unwrap_or_default().trim_matches(['"', ',']).to_owned()
}

/// `before commit of transaction 751, time 2026-...`, `at restore point "between", time ...`,
/// `after WAL location (LSN) "0/3000060"`, `after reaching consistency`.
fn parse_stop(text: &str) -> Option<Stop> {
    let (position, rest) = text.split_once(' ')?;
    if !["before", "after", "at"].contains(&position) {
        return None;
    }
    let (body, time) = match rest.rsplit_once(", time ") {
        Some((body, time)) => (body, Some(time.trim().to_owned())),
        None => (rest.trim(), None),
    };
    let mut stop = Stop { position: position.to_owned(), time, ..Stop::default() };
    if let Some(lsn) = body.strip_prefix("WAL location (LSN) ").or_else(|| body.strip_prefix("WAL location ")) {
        let lsn = lsn_word(lsn);
        stop.record = format!("WAL location {lsn}");
        stop.lsn = Some(lsn);
    } else if let Some(name) = body.strip_prefix("restore point ") {
        let name = name.trim().trim_matches('"').to_owned();
        stop.record = format!("restore point \"{name}\"");
        stop.name = Some(name);
    } else if body == "reaching consistency" {
        stop.record = "consistency".into();
    } else {
        // `commit of transaction 751`, `abort of transaction 751`, and the prepared ones.
        stop.xid = body.rsplit(' ').next().and_then(|x| x.parse().ok());
        stop.xid?;
        stop.record = body.to_owned();
    }
    Some(stop)
}

/// Why the stop a recovering server's log names is not its target's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Missed {
    /// The log names a stop of another kind, or at another point.
    #[error("the server's log says recovery stopped {}", .stop.describe())]
    Elsewhere { stop: Box<Stop> },
    /// The log names no stop.
    #[error("the server's log names no stop at the target")]
    NoStop,
}

/// Whether the stop the log names is the scenario's target (the record PostgreSQL stops at for
/// it); a stop of another kind, or none, means the target was not reached. `End` is reached
/// when redo ended.
pub(crate) fn reached(target: &RecoveryTarget, reach: &Reach) -> Result<(), Missed> {
    let stop = reach.stop.as_ref();
    let ok = match target {
        RecoveryTarget::End => reach.redo_done_at.is_some() || stop.is_none(),
        RecoveryTarget::Immediate => stop.is_some_and(|s| s.record == "consistency"),
        RecoveryTarget::Time(at) => stop.is_some_and(|s| {
            // PostgreSQL stops before the first transaction that ended after the target, or
            // after the last one that ended at it.
            s.xid.is_some()
                && s.time.as_deref().and_then(parse_time).is_none_or(|t| match s.position.as_str() {
                    "before" => t >= *at,
                    _ => t <= *at,
                })
        }),
        RecoveryTarget::Xid(xid) => stop.is_some_and(|s| s.xid.is_some_and(|x| x == (*xid & 0xFFFF_FFFF))),
        RecoveryTarget::Lsn(_) => stop.is_some_and(|s| s.lsn.is_some()),
        RecoveryTarget::Name(name) => stop.is_some_and(|s| s.name.as_deref() == Some(name.as_str())),
    };
    match (ok, stop) {
        (true, _) => Ok(()),
        (false, Some(stop)) => Err(Missed::Elsewhere { stop: Box::new(stop.clone()) }),
        (false, None) => Err(Missed::NoStop),
    }
}

/// The point a recovery reached, in words: the stop record, else where redo ended; and the last
/// transaction replayed.
pub(crate) fn describe(reach: &Reach, replayed_to: &str) -> String {
    let mut point = match (&reach.stop, &reach.redo_done_at) {
        (Some(stop), _) => format!("stopped {}", stop.describe()),
        (None, Some(done)) => format!("the end of the WAL, redo done at {done}"),
        (None, None) => format!("WAL replayed to {replayed_to}"),
    };
    match &reach.last_completed {
        Some(t) => point.push_str(&format!("; the last transaction replayed ended at {t}")),
        None => point.push_str("; no transaction replayed"),
    }
    point
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// A PostgreSQL 17 target's log of a recovery to a time, as the container writes it.
    const TO_TIME: &str = "\
2026-11-23 13:01:10.201 UTC [1] LOG:  starting PostgreSQL 17.7 (Debian 17.7-1) on x86_64-pc-linux-gnu
2026-11-23 13:01:10.215 UTC [7] LOG:  database system was interrupted; last known up at 2026-11-23 13:00:58 UTC
2026-11-23 13:01:10.230 UTC [7] LOG:  starting point-in-time recovery to 2026-11-23 13:01:02.512345+00
2026-11-23 13:01:10.241 UTC [7] LOG:  starting backup recovery with redo LSN 0/2000028, checkpoint LSN 0/2000080, on timeline ID 1
2026-11-23 13:01:10.243 UTC [7] LOG:  redo starts at 0/2000028
2026-11-23 13:01:10.250 UTC [7] LOG:  completed backup recovery with redo LSN 0/2000028 and end LSN 0/2000158
2026-11-23 13:01:10.250 UTC [7] LOG:  consistent recovery state reached at 0/2000158
2026-11-23 13:01:10.251 UTC [1] LOG:  database system is ready to accept read-only connections
2026-11-23 13:01:10.262 UTC [7] LOG:  recovery stopping before commit of transaction 751, time 2026-11-23 13:01:02.571829+00
2026-11-23 13:01:10.262 UTC [7] LOG:  redo done at 0/3014A20 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.01 s
2026-11-23 13:01:10.262 UTC [7] LOG:  last completed transaction was at log time 2026-11-23 13:01:02.501122+00
2026-11-23 13:01:10.266 UTC [7] LOG:  selected new timeline ID: 2
2026-11-23 13:01:10.302 UTC [7] LOG:  archive recovery complete
";

    #[test]
    fn a_recovery_to_a_time_stopped_before_the_first_commit_after_it() {
        let reach = parse(TO_TIME);
        let stop = reach.stop.clone().unwrap();
        assert_eq!((stop.position.as_str(), stop.record.as_str()), ("before", "commit of transaction 751"));
        assert_eq!((stop.xid, stop.time.as_deref()), (Some(751), Some("2026-11-23 13:01:02.571829+00")));
        assert_eq!(reach.last_completed.as_deref(), Some("2026-11-23 13:01:02.501122+00"));
        assert_eq!(reach.consistent_at.as_deref(), Some("0/2000158"));
        assert_eq!(reach.redo_done_at.as_deref(), Some("0/3014A20"));
        assert_eq!(reach.refused, None);
        let target = RecoveryTarget::Time(datetime!(2026-11-23 13:01:02.512345 UTC));
        assert_eq!(reached(&target, &reach), Ok(()));
        // The same instant in another zone: the scenario's offset and the log's are compared as times.
        let elsewhere = RecoveryTarget::Time(datetime!(2026-11-23 14:01:02.512345 +01:00));
        assert_eq!(reached(&elsewhere, &reach), Ok(()));
        // A stop before a commit earlier than the target is not a stop at it.
        let later = RecoveryTarget::Time(datetime!(2026-11-23 13:05:00 UTC));
        assert!(
            reached(&later, &reach).unwrap_err().to_string().contains("stopped before the commit of transaction 751")
        );
        assert!(reached(&RecoveryTarget::Name("between".into()), &reach).is_err());
        assert_eq!(
            describe(&reach, "0/3014A20"),
            "stopped before the commit of transaction 751 (at 2026-11-23 13:01:02.571829+00); \
             the last transaction replayed ended at 2026-11-23 13:01:02.501122+00"
        );
    }

    #[test]
    fn stops_at_a_transaction_a_location_a_restore_point_or_consistency() {
        let line = |text: &str| parse(&format!("2026-11-23 13:01:10.262 UTC [7] LOG:  {text}\n"));
        let xid = line("recovery stopping after commit of transaction 751, time 2026-11-23 13:01:02.571829+00");
        assert_eq!(reached(&RecoveryTarget::Xid(751), &xid), Ok(()));
        assert_eq!(reached(&RecoveryTarget::Xid((1 << 32) + 751), &xid), Ok(()), "an epoch is not part of the xid");
        assert!(reached(&RecoveryTarget::Xid(752), &xid).is_err());
        let abort = line("recovery stopping before abort of transaction 760, time 2026-11-23 13:01:03+00");
        assert_eq!(abort.stop.unwrap().record, "abort of transaction 760");
        let lsn = line("recovery stopping after WAL location (LSN) \"0/3000060\"");
        assert_eq!(lsn.stop.as_ref().unwrap().lsn.as_deref(), Some("0/3000060"));
        assert_eq!(reached(&RecoveryTarget::Lsn(0x300_0060), &lsn), Ok(()));
        assert_eq!(lsn.stop.unwrap().describe(), "after the WAL location 0/3000060");
        let point = line("recovery stopping at restore point \"between\", time 2026-11-23 13:01:02.52+00");
        assert_eq!(reached(&RecoveryTarget::Name("between".into()), &point), Ok(()));
        assert!(reached(&RecoveryTarget::Name("other".into()), &point).is_err());
        let consistent = line("recovery stopping after reaching consistency");
        assert_eq!(reached(&RecoveryTarget::Immediate, &consistent), Ok(()));
        assert_eq!(consistent.stop.unwrap().describe(), "after reaching consistency");
        assert_eq!(line("recovery stopping somewhere else").stop, None);
    }

    #[test]
    fn the_end_of_the_wal_and_postgresqls_refusals() {
        let end = parse(
            "LOG:  redo starts at 0/2000028\nLOG:  consistent recovery state reached at 0/2000158\n\
             LOG:  received promote request\nLOG:  redo done at 0/30036C8 system usage: CPU: user: 0.00 s\n\
             LOG:  last completed transaction was at log time 2026-11-23 13:01:03.1+00\n",
        );
        assert_eq!(reached(&RecoveryTarget::End, &end), Ok(()));
        assert_eq!(
            describe(&end, "0/30036C8"),
            "the end of the WAL, redo done at 0/30036C8; the last transaction replayed ended at 2026-11-23 13:01:03.1+00"
        );
        let target = RecoveryTarget::Time(datetime!(2999-01-01 0:00 UTC));
        assert_eq!(reached(&target, &end), Err(Missed::NoStop));
        assert_eq!(Missed::NoStop.to_string(), "the server's log names no stop at the target");
        let short = parse(&format!(
            "{}2026-11-23 13:01:10.262 UTC [7] FATAL:  recovery ended before configured recovery target was reached\n",
            "LOG:  redo done at 0/30036C8 system usage: x\n"
        ));
        let refused = short.refused.as_deref().unwrap();
        assert!(refusal_meaning(refused).contains("later than the archive holds"));
        let early = parse(
            "LOG:  recovery stopping before commit of transaction 740, time 2026-11-23 12:59:59+00\n\
             FATAL:  requested recovery stop point is before consistent recovery point\n",
        );
        assert!(refusal_meaning(early.refused.as_deref().unwrap()).contains("before the base backup's end"));
        // A server started again recovers again: only the last recovery counts.
        let twice =
            parse(&format!("{TO_TIME}LOG:  redo starts at 0/4000028\nLOG:  redo done at 0/4000100 system usage: x\n"));
        assert_eq!((twice.stop, twice.redo_done_at.as_deref()), (None, Some("0/4000100")));
    }
}
