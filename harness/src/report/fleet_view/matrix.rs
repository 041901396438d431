//! The controls matrix: for each database, what its last drill evidences of each control that
//! `report.md` maps a drill to (`report/controls.rs`): met, partly (the drill passed, and lacks
//! something the control asks: content compared, objectives set, a recent test), or not.

use super::{State, Subject};
use crate::report::controls::{CONTROLS, Content, Coverage};

/// How far a control is evidenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Met {
    Yes,
    Partly,
    No,
}

impl Met {
    pub(super) fn class(self) -> &'static str {
        match self {
            Met::Yes => "yes",
            Met::Partly => "partly",
            Met::No => "no",
        }
    }

    pub(super) fn mark(self) -> &'static str {
        match self {
            Met::Yes => "✓",
            Met::Partly => "◐",
            Met::No => "✗",
        }
    }
}

/// The short names of the controls, as the matrix's columns (the legend has them whole).
pub(super) const SHORT: [&str; 5] = ["ISO 27001 A.8.13", "SOC 2 A1.3", "NIST CP-4", "NIST CP-9 (1)", "DORA art. 12"];

/// The controls, whole: (name, what it asks).
pub(super) fn controls() -> &'static [(&'static str, &'static str); 5] {
    &CONTROLS
}

/// What the database's last drill evidences of each control, with why in a few words.
pub(super) fn row(subject: &Subject) -> [(Met, String); 5] {
    let Some(c) = subject.last().and_then(|d| d.coverage) else {
        let none = || (Met::No, if subject.drills.is_empty() { "no drill" } else { "incomplete drill" }.to_owned());
        return [none(), none(), none(), none(), none()];
    };
    let failed = || (Met::No, "last drill not passed".to_owned());
    let content = |c: &Coverage| match c.content {
        Content::Fingerprinted => (Met::Yes, "content fingerprinted".to_owned()),
        Content::Counted => (Met::Partly, "row counts only".to_owned()),
        Content::Unchecked => (Met::Partly, "no content check".to_owned()),
    };
    let objectives = |c: &Coverage| match c.objectives {
        true => (Met::Yes, "RTO/RPO judged".to_owned()),
        false => (Met::Partly, "no RTO or RPO set".to_owned()),
    };
    if !c.passed {
        return [failed(), failed(), (Met::Partly, "tested, not passed".into()), failed(), failed()];
    }
    let integrity = match content(&c) {
        (Met::Yes, why) if c.audit => (Met::Yes, format!("{why}, audit trails")),
        other => other,
    };
    let periodic = match subject.state {
        State::Stale => (Met::Partly, "last passing test too old".to_owned()),
        _ => objectives(&c),
    };
    [content(&c), objectives(&c), (Met::Yes, "tested, passed".into()), integrity, periodic]
}
