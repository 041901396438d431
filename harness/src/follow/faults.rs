//! What keeps a follower from proving the archive, named: each fault is said when it is found
//! and when it clears (on the console, and to the scenario's webhook: `told`), counted in the
//! metrics by kind, and the follower stays at the last good point meanwhile (it never gives
//! replay a segment past one it could not).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A fault, by what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A segment is missing while a later one was archived, for longer than the deadline.
    Gap { missing: String, later: String, waited: Duration },
    /// A segment could not be given to replay (not a segment of this cluster, truncated, changed
    /// since a repository recorded it, unreadable).
    Refused { problem: String },
    /// Replay stopped inside a segment it was given, the next one given too: what follows does
    /// not read as WAL records.
    Unreadable { segment: String, lsn: String },
    /// A later timeline's history is in the archive, and it cannot be followed.
    Timeline { later: u32, problem: String },
    /// The archive cannot be listed.
    Store { problem: String },
    /// A marker written on the source has not replayed by the deadline.
    Marker { name: String, lsn: String, waited: Duration },
    /// No marker can be written on the source.
    Source { problem: String },
}

impl Fault {
    /// Every kind, for metrics that say 0 of each kind not standing.
    pub(crate) const KINDS: [&'static str; 7] =
        ["gap", "refused", "unreadable", "timeline", "store", "marker", "source"];
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Gap { missing, later, waited } => write!(
                f,
                "gap: segment {missing} is not in the archive {} s after {later} was (the follower waits before it; hint: a lost upload? the archive can be restored only to the segment before)",
                waited.as_secs()
            ),
            Fault::Refused { problem } => write!(f, "refused: {problem} (the follower waits before it)"),
            Fault::Unreadable { segment, lsn } => write!(
                f,
                "unreadable: replay stopped at {lsn} in segment {segment}, and the segment after it was given: the WAL there does not read as valid records (a damaged segment? the follower waits before it; once the archive's copy is mended, start the follower again)"
            ),
            Fault::Timeline { later, problem } => write!(
                f,
                "timeline: the archive holds timeline {later}'s history, and the follower cannot go on along it: {problem}"
            ),
            Fault::Store { problem } => write!(f, "store: the archive cannot be listed: {problem}"),
            Fault::Marker { name, lsn, waited } => write!(
                f,
                "marker: `{name}`, written on the source at {lsn}, has not replayed {} s later (its WAL did not reach the archive, or the follower waits before it)",
                waited.as_secs()
            ),
            Fault::Source { problem } => write!(f, "source: no marker can be written on the source: {problem}"),
        }
    }
}

/// The faults standing, each with when it was first found.
#[derive(Default)]
pub(crate) struct Faults {
    standing: BTreeMap<&'static str, (Fault, Instant)>,
    /// Every fault found since the follower started, and how many of each kind.
    pub found: usize,
    pub found_by_kind: BTreeMap<&'static str, u64>,
    /// Tells the scenario's webhook of each fault found and cleared.
    teller: Option<super::told::Teller>,
}

impl Faults {
    /// Sets the fault of `kind` standing now: `Some` raises it (said when it is new or
    /// different), `None` clears it (said when it stood). `say` gets each line.
    pub(crate) fn set(&mut self, kind: &'static str, now: Option<Fault>, say: &dyn Fn(String)) {
        match (now, self.standing.get(kind)) {
            (Some(fault), Some((standing, _))) if same(&fault, standing) => {}
            (Some(fault), _) => {
                say(format!("FAULT {fault}"));
                if let Some(teller) = &self.teller {
                    teller.raised(kind, fault.to_string());
                }
                self.found += 1;
                *self.found_by_kind.entry(kind).or_default() += 1;
                self.standing.insert(kind, (fault, Instant::now()));
            }
            (None, Some((standing, since))) => {
                say(format!("cleared after {} s: {standing}", since.elapsed().as_secs()));
                if let Some(teller) = &self.teller {
                    teller.cleared(kind, standing.to_string(), since.elapsed());
                }
                self.standing.remove(kind);
            }
            (None, None) => {}
        }
    }

    /// From now on, each fault found and cleared is told to `teller`'s webhook too.
    pub(crate) fn telling(&mut self, teller: Option<super::told::Teller>) {
        self.teller = teller;
    }

    /// The faults standing.
    pub(crate) fn standing(&self) -> impl Iterator<Item = &Fault> {
        self.standing.values().map(|(f, _)| f)
    }

    /// Whether a fault of `kind` stands.
    pub(crate) fn stands(&self, kind: &str) -> bool {
        self.standing.contains_key(kind)
    }
}

/// The same fault, but for how long it has been waited for.
fn same(a: &Fault, b: &Fault) -> bool {
    match (a, b) {
        (Fault::Gap { missing, later, .. }, Fault::Gap { missing: m, later: l, .. }) => missing == m && later == l,
        (Fault::Marker { name, .. }, Fault::Marker { name: n, .. }) => name == n,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::told::Teller;
    use super::super::told::tests::{next, spec, webhook};
    use super::*;
    use crate::notify::When;

    // The sender task runs while the test waits on the webhook's channel.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fault_is_told_once_when_found_and_once_when_cleared_and_nothing_else() {
        let (port, rx) = webhook();
        let teller = Teller::start(Some(&spec(port, When::Failure)), "books", Path::new("/var/lib/f/books"));
        let mut faults = Faults::default();
        faults.telling(teller);
        let gap = |waited| Fault::Gap {
            missing: "000000010000000000000007".into(),
            later: "000000010000000000000008".into(),
            waited: Duration::from_secs(waited),
        };
        faults.set("store", None, &|_| {});
        for waited in [61, 62, 63] {
            faults.set("gap", Some(gap(waited)), &|_| {});
        }
        faults.set("gap", None, &|_| {});
        faults.set("gap", None, &|_| {});
        let found = next(&rx);
        assert!(
            found["text"].as_str().unwrap().starts_with(
                "pgdrill: the follower of `books` found a fault: gap\nsays: `gap: segment 000000010000000000000007 is not in the archive 61 s after 000000010000000000000008 was"
            ),
            "{found}"
        );
        assert_eq!(found["pgdrill"]["kind"], "failure");
        assert_eq!(found["pgdrill"]["follower"]["fault"], "gap");
        assert_eq!(found["pgdrill"]["follower"]["state"], "/var/lib/f/books");
        let cleared = next(&rx);
        assert!(
            cleared["text"]
                .as_str()
                .unwrap()
                .starts_with("pgdrill: the follower of `books`: the gap fault cleared after 0 s\n"),
            "{cleared}"
        );
        assert_eq!(cleared["pgdrill"]["kind"], "recovery");
        assert!(rx.recv_timeout(Duration::from_secs(2)).is_err(), "one message for each raise and clear");
    }

    /// A webhook that is down: the faults are set as ever, nothing waits on it.
    #[tokio::test]
    async fn a_webhook_down_holds_nothing_up() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut faults = Faults::default();
        faults.telling(Teller::start(Some(&spec(port, When::Failure)), "books", Path::new("state")));
        let started = std::time::Instant::now();
        for _ in 0..3 {
            faults.set("store", Some(Fault::Store { problem: "gone".into() }), &|_| {});
            faults.set("store", None, &|_| {});
        }
        assert!(started.elapsed() < Duration::from_millis(100), "{:?}", started.elapsed());
        assert_eq!(faults.found, 3);
    }
}
