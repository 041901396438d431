//! The reference page of findings: every code a check can give ([`crate::outcome::Finding`]),
//! by kind, with its verdict, what it means and what to do; the codes an acceptance may name are
//! marked so.

use std::fmt::Write;

use super::{GENERATED, cell};
use crate::outcome::{About, Finding};

/// Every enum of findings: the drill's own and each check kind's ([`crate::check::findings`]),
/// the application's requests' and the objectives'.
pub(crate) fn all() -> Vec<&'static [About]> {
    let mut all = crate::check::findings();
    all.push(<crate::app::request::Found as Finding>::ALL);
    all.push(<crate::outcome::ObjectiveFinding as Finding>::ALL);
    all
}

pub(super) fn page() -> String {
    let mut out = format!("{GENERATED}\n\n# Findings: every code a check can give\n\n");
    out.push_str(
        "Every result of a check carries a stable code: `drill.json` and `record.json` record it,\n\
         `junit.xml` gives it as the failure's `type`, and `report.md` shows it beside the\n\
         message. A code is `<kind>.<words>`, the kind as the scenario writes it with `-` for\n\
         `_`; it never changes meaning. Search for a code here, not for a message's words.\n\n\
         A code marked *acceptable* is one a scenario's acceptance (`trusted`, `accept`) may\n\
         name with its `finding` key: a failure that holds by design where the scenario says why.\n\
         The kinds' [reference](checks.md) says what a PASS of each proves.\n",
    );
    for list in all() {
        let Some(first) = list.first() else { continue };
        let title = match first.kind {
            Some(kind) => format!("`{kind}`"),
            None => "Any check".to_owned(),
        };
        let _ = write!(out, "\n## {title}\n\n| code | verdict | what it means | what to do |\n|---|---|---|---|\n");
        for about in list.iter() {
            let verdict =
                if about.acceptable { format!("{}, acceptable", about.verdict) } else { about.verdict.to_string() };
            let _ =
                writeln!(out, "| `{}` | {verdict} | {} | {} |", about.code, cell(about.meaning), cell(about.remedy));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CheckKind, malformed};

    #[test]
    fn every_code_is_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for about in all().into_iter().flatten() {
            assert_eq!(malformed(about), None);
            assert!(seen.insert(about.code), "`{}` is declared twice", about.code);
        }
    }

    #[test]
    fn every_kind_has_its_findings_and_each_a_pass() {
        let all = all();
        for kind in CheckKind::ALL {
            let found: Vec<&About> = all.iter().flat_map(|l| l.iter()).filter(|a| a.kind == Some(kind)).collect();
            assert!(
                found.iter().any(|a| a.verdict == crate::outcome::Verdict::Pass),
                "`{kind}` declares no finding that passes"
            );
        }
    }

    #[test]
    fn the_page_lists_every_code() {
        let page = page();
        for about in all().into_iter().flatten() {
            assert!(page.contains(&format!("| `{}` |", about.code)), "`{}` is not on the page", about.code);
        }
    }
}
