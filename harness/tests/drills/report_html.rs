//! report.html in a real browser: a backup whose tables a hostile author named with markup is
//! drilled twice (the second drill has a previous one, so its charts have two points), one of
//! its checks failing; the second drill's report.html is opened in headless Chromium with no
//! network, and printed to PDF. The PDF says the verdict, every check with its result, the
//! charts' labels, puts its details and its evidence on pages of their own (none holding a
//! sentence or two), loses no word beyond the page's
//! width, and shows the hostile names as the text they are. The screenshot and the PDF stay
//! in `target/browser/report-html/` for a person to look at.

use pgdrill::Verdict;
use pgdrill::outcome::DrillVerdict;

use crate::browser::{Printed, print};
use crate::util::{Scratch, root};

const SCRIPT: &str = "<script>alert(1)</script>";
const BREAKOUT: &str = "</td></table><img src=x onerror=alert(1)>";
const LINK: &str = "[x](javascript:alert(1))";

/// A dump of four tables, three of them named to break out of a report.
fn dump() -> String {
    let table = |name: &str, rows: usize| {
        let name = format!("public.\"{name}\"");
        format!("CREATE TABLE {name} (id integer);\nINSERT INTO {name} SELECT generate_series(1, {rows});\n")
    };
    [table(SCRIPT, 3), table(BREAKOUT, 2), table(LINK, 1), table("accounts", 2)].concat()
}

/// The tables' counts, the breakout's wrong (5 expected, 2 found); an RTO, drawn on the chart.
const SCENARIO: &str = r#"
name = "hostile-names"
description = "a backup whose table names are markup"

[source]
path = "hostile-names.sql"

[objectives]
rto = "30m"

[checks.row_counts]
tables = { 'public."<script>alert(1)</script>"' = 3, 'public."</td></table><img src=x onerror=alert(1)>"' = 5, 'public."[x](javascript:alert(1))"' = 1, "public.accounts" = 2 }
"#;

/// The text of each page of the PDF.
fn pages(printed: &Printed) -> Vec<&str> {
    printed.text.split('\u{c}').filter(|p| !p.trim().is_empty()).collect()
}

/// `text` with all its white space removed: a cell wrapped on several lines reads whole.
fn joined(text: &str) -> String {
    text.split_whitespace().collect()
}

#[test]
fn a_drills_report_html_prints_its_verdict_checks_charts_and_hostile_names_as_text() {
    let scratch = Scratch::new();
    scratch.write("hostile-names.sql", dump());
    let scenario = scratch.scenario("hostile-names.toml", SCENARIO);
    let first = scratch.drill(&scenario);
    assert_eq!(first.code, Some(1), "{first:?}");
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let record = drill.record();
    assert_eq!(record.verdict, DrillVerdict::Fail);
    let html = drill.out.join("report.html");
    assert!(drill.report("MANIFEST.sha256").lines().any(|l| l.ends_with("  report.html")), "in the manifest");

    let printed = print(&html, &root().join("target/browser/report-html"));
    let text = &printed.text;
    let all = joined(text);
    // The verdict, at the top.
    let first_page = pages(&printed)[0];
    assert!(joined(first_page).contains("Restoredrillhostile-names:FAIL"), "{first_page}");
    assert!(joined(first_page).contains("FAIL.1of"), "{first_page}");
    // Every check, with its result.
    assert!(record.checks.len() >= 5, "{drill:?}");
    for check in &record.checks {
        let result = match check.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
        };
        let row = joined(&format!("{} {}", check.id, check.expected));
        assert!(all.contains(&row), "check `{}` is not printed whole:\n{text}", check.id);
        let shown = all.split(&row).nth(1).unwrap_or_default();
        // Then what was found, the verdict's badge (an emoji, text or not in a PDF) and result.
        let verdict = shown.strip_prefix(&joined(&check.actual)).map(|v| v.trim_start_matches(|c: char| !c.is_ascii()));
        assert!(
            verdict.is_some_and(|v| v.starts_with(result)),
            "check `{}` is not printed with its result `{result}`: {}",
            check.id,
            &shown[..shown.len().min(200)]
        );
    }
    // The charts' labels: SVG text prints as text.
    for label in [
        "Drill “hostile-names”: fail in",
        "Recovery time of the last 2 drills of “hostile-names”",
        "Age of the backup drilled, last 2 drills of “hostile-names”",
        "RTO 30m",
    ] {
        assert!(all.contains(&joined(label)), "chart label `{label}` is not printed:\n{text}");
    }
    // The summary first, the details from a new page, the evidence (each check's query) last
    // from another; no page holding a sentence or two.
    assert!(printed.pages > 1, "{} pages", printed.pages);
    let starts = |chapter: &str| pages(&printed).iter().position(|p| p.trim_start().starts_with(chapter));
    let (details, evidence) = (starts("Backup"), starts("Evidence"));
    assert!(details.is_some_and(|d| d > 0) && evidence > details, "{details:?} {evidence:?}:\n{text}");
    assert_eq!(evidence, Some(pages(&printed).len() - 1), "the evidence is the last page:\n{text}");
    for (n, page) in pages(&printed).iter().enumerate() {
        let lines = page.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(lines >= 6, "page {} holds {lines} lines:\n{page}", n + 1);
    }
    assert!(printed.lost.is_empty(), "words of the page not printed (wider than the page?): {:?}", printed.lost);
    // The hostile names are text, whole.
    for name in [SCRIPT, BREAKOUT, LINK] {
        assert!(all.contains(&joined(name)), "`{name}` is not shown as text:\n{text}");
    }
    assert!(printed.png.is_file() && printed.pdf.is_file());
}

/// The browser helper itself, both ways: a table too wide for the page loses words beyond its
/// width, and `lost` names them (the same table in the report's styles fits: none); and
/// Chromium reaches nothing, not even a listener on this machine's loopback that the page asks
/// for an image.
#[test]
fn the_browser_sees_a_table_too_wide_for_the_page_and_reaches_no_network() {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reached = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        loop {
            if listener.accept().is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let scratch = Scratch::new();
    let cells = format!(
        "<td>{}</td><td>{}</td><td>cccccccccccccc LOSTWORD {}</td>",
        "a".repeat(48),
        "b".repeat(60),
        "c".repeat(26)
    );
    let page = |style: &str| {
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>@page {{ size: A4; margin: 15mm }} {style}</style></head>\
             <body><h1>Wide</h1><img src=\"http://127.0.0.1:{port}/x.png\"><table><tr>{cells}</tr></table></body></html>"
        )
    };
    let wide = scratch.write("wide.html", page("td { white-space: nowrap; }"));
    let printed = print(&wide, &root().join("target/browser/wide"));
    assert!(printed.lost.iter().any(|w| w == "LOSTWORD"), "{:?}\n{}", printed.lost, printed.text);
    assert!(!printed.text.contains("LOSTWORD"), "{}", printed.text);
    let fits = scratch.write("fits.html", page("td { overflow-wrap: anywhere; }"));
    let printed = print(&fits, &root().join("target/browser/wide"));
    assert!(printed.lost.is_empty(), "{:?}", printed.lost);
    assert!(printed.text.contains("LOSTWORD") && printed.pages == 1, "{}", printed.text);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(reached.load(Ordering::SeqCst), 0, "chromium reached this machine's loopback");
}
