//! The fleet page in a real browser: headless Chromium prints `fleet.html` of a fleet made of
//! the shared real drills (`fleet_gate`) to PDF and a screenshot (kept under
//! `target/browser/fleet/`); the printed text shows every database, its state, its last
//! drill's verdict, its failing checks and whether its evidence is signed and verifies, names
//! taken from drill records show as text, and every word of the page is printed (none lost beyond
//! its margin).

use crate::browser;
use crate::fleet_gate::{HOSTILE_CHECK, material, pgdrill, text};
use crate::util::{Scratch, root};

/// A scenario's name as a hostile backup's drill record could carry it.
const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)>";

/// `needle` in `haystack`, whitespace aside (pdftotext breaks lines inside table cells).
fn printed(haystack: &str, needle: &str) -> bool {
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    squeeze(haystack).contains(&squeeze(needle))
}

#[test]
fn the_fleet_page_prints_every_database_its_state_and_its_evidence_with_names_as_text() {
    let m = material();
    let scratch = Scratch::new();
    let fleet = m.fleet(&scratch, &[("ledger", &m.good), ("lost-rows", &m.bad), ("hostile", &m.bad)]);
    // A drill record naming its scenario like markup (edited after signing: it does not verify).
    let hostile = fleet.join("hostile/20260102T030000Z/drill.json");
    let record = std::fs::read_to_string(&hostile).unwrap();
    std::fs::write(&hostile, record.replacen("\"name\": \"lost-rows\"", &format!("\"name\": {HOSTILE_NAME:?}"), 1))
        .unwrap();
    assert!(std::fs::read_to_string(&hostile).unwrap().contains("onerror"), "the record's name was edited");
    let inventory = scratch.write(
        "inventory.toml",
        format!(
            "[[database]]\nscenario = \"ledger\"\nmax_age = \"92d\"\n\n[[database]]\nname = \"ledger, hourly\"\nbackup = {:?}\nmax_age = \"1h\"\n\n\
             [[database]]\nscenario = \"lost-rows\"\n\n[[database]]\nscenario = \"billing\"\n",
            m.backup
        ),
    );
    let out = scratch.path("view");
    let now = m.days_later(1);
    let args = [
        "report",
        "fleet",
        fleet.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--now",
        &now,
        "--inventory",
        inventory.to_str().unwrap(),
        "--allowed-signers",
        m.allowed.to_str().unwrap(),
    ];
    let output = pgdrill(&args, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    let kept = root().join("target/browser/fleet");
    std::fs::create_dir_all(&kept).unwrap();
    let page = kept.join("fleet.html");
    std::fs::copy(out.join("fleet.html"), &page).unwrap();
    let shown = browser::print(&page, &kept);
    let said = &shown.text;
    for name in ["ledger", "ledger, hourly", "lost-rows", "billing", HOSTILE_NAME] {
        assert!(printed(said, name), "no database `{name}` in the printed page:\n{said}");
    }
    for state in ["fresh", "stale", "never verified", "failing", "unsigned", "no max age"] {
        assert!(printed(said, state), "no state `{state}`:\n{said}");
    }
    for mark in ["pass", "fail", "✓ signed, verifies", "✗ does not verify", "no drill found", "Controls matrix"] {
        assert!(printed(said, mark), "no `{mark}`:\n{said}");
    }
    assert!(printed(said, &format!("sql/{HOSTILE_CHECK}")), "the failing check, as text:\n{said}");
    assert!(printed(said, "Gap:"), "the gaps of the inventory's databases:\n{said}");
    assert!(shown.lost.is_empty(), "words of the page not printed (wider than the page?): {:?}", shown.lost);
    assert!(shown.pages >= 1 && shown.pdf.is_file() && shown.png.is_file(), "{:?} {:?}", shown.pdf, shown.png);
}
