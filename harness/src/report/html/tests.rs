//! report.html from a crafted record: what a hostile backup puts in names and messages shows as
//! text and breaks out of no table cell, code span or section, in report.md as in the page; the
//! page is self-contained, opens with the verdict, starts its chapters on new pages, and draws
//! the drill's own charts inline.

use std::time::{Duration, Instant};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::sanitize::safe_link;
use super::{CHAPTERS, CSP, render};
use crate::outcome::history::HistoryEntry;
use crate::outcome::{CheckKind, CheckResult, DrillRecord, DrillVerdict, Verdict};
use crate::report::console::Console;
use crate::report::{markdown, render_all};

const SCRIPT: &str = "<script>alert(1)</script>";
const BREAKOUT: &str = "</td></table><img src=x onerror=alert(1)>";
const LINK: &str = "[x](javascript:alert(1))";

/// The snapshot tests' drill (one check failing), with a check on a table a hostile backup
/// named, whose values and message are made to break out of the report.
fn hostile() -> DrillRecord {
    let (console, _) = Console::capturing(false);
    let mut record = crate::report::snapshots::drill(console);
    // A name with a run of two backticks: a code span of two would end inside it.
    let object = format!("public.{SCRIPT}``<b>x</b>``");
    record.checks.insert(
        0,
        CheckResult {
            id: format!("row_counts/{object}"),
            kind: CheckKind::from_name("row_counts").expect("a kind"),
            object: object.clone(),
            expected: format!("{LINK} | a\\|b ``x`` <b>bold</b>"),
            actual: format!("{BREAKOUT}\nsecond line"),
            verdict: Verdict::Fail,
            code: "row-counts.differs".into(),
            message: format!("{BREAKOUT}\n## Checks\n<iframe src=x></iframe>\r## Phases\n```\n{LINK}"),
            evidence: format!("SELECT count(*) FROM \"{SCRIPT}\" -- ```\n```\n# not a heading"),
            duration: Duration::from_millis(3),
            trail: None,
        },
    );
    record.scenario.description = Some(format!("<style>*{{display:none}}</style> `a|b` \\| {LINK}"));
    record
}

/// The rows of every table of `markdown` as GFM reads it: the number of cells of each.
fn table_rows(markdown: &str) -> Vec<Vec<usize>> {
    let mut tables = Vec::new();
    let mut cells = 0;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Table(_)) => tables.push(Vec::new()),
            Event::Start(Tag::TableHead | Tag::TableRow) => cells = 0,
            Event::Start(Tag::TableCell) => cells += 1,
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => tables.last_mut().expect("in a table").push(cells),
            _ => {}
        }
    }
    tables
}

/// report.md's tables keep their shape whatever the names hold: every row of a table has as
/// many cells as its header, and the hostile check is one row of the checks' table.
#[test]
fn hostile_text_breaks_out_of_no_table_cell_or_code_span_in_report_md() {
    let record = hostile();
    let md = markdown::render(&record, &[]);
    for (i, rows) in table_rows(&md).iter().enumerate() {
        assert!(rows.iter().all(|&n| n == rows[0]), "table {i} has rows of {rows:?} cells:\n{md}");
    }
    let checks = table_rows(&md).into_iter().find(|t| t[0] == 4 && t.len() == 1 + record.checks.len());
    assert!(checks.is_some(), "a checks table of one row per check:\n{md}");
    // The only top-level sections are report.md's own: a message's `## Checks` is in its item.
    let mut depth = 0;
    let mut sections = Vec::new();
    let mut parser = Parser::new_ext(&md, Options::ENABLE_TABLES);
    while let Some(event) = parser.next() {
        match event {
            Event::Start(Tag::Heading { level: pulldown_cmark::HeadingLevel::H2, .. }) if depth == 0 => {
                if let Some(Event::Text(t)) = parser.next() {
                    sections.push(t.to_string());
                }
                depth += 1;
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth -= 1,
            _ => {}
        }
    }
    assert_eq!(sections.iter().filter(|s| *s == "Checks").count(), 1, "{sections:?}\n{md}");
    assert_eq!(sections.iter().filter(|s| *s == "Phases").count(), 1, "{sections:?}\n{md}");
}

/// The same record's page: every hostile string is text (escaped), no element or link it
/// names exists, and the page's tables have as many cells in each row as in the Markdown.
#[test]
fn hostile_text_shows_as_text_in_report_html() {
    let mut record = hostile();
    let md = markdown::render(&record, &[]);
    record.scenario.name = format!("{SCRIPT} \"&");
    let page = render(&record, &md, &[]);
    assert!(page.contains("<title>Restore drill &lt;script&gt;alert(1)&lt;/script&gt; &quot;&amp;: FAIL</title>"));
    for tag in ["<script", "<img", "<iframe", "<style>*", "<b>", "href=\"javascript", "onerror=alert(1)>"] {
        assert!(!page.contains(tag), "`{tag}` is markup in the page:\n{page}");
    }
    for shown in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;/td&gt;&lt;/table&gt;&lt;img src=x onerror=alert(1)&gt;",
        "&lt;iframe src=x&gt;&lt;/iframe&gt;",
        "&lt;b&gt;bold&lt;/b&gt;",
        "&lt;style&gt;*{display:none}&lt;/style&gt;",
    ] {
        assert!(page.contains(shown), "`{shown}` is not shown as text:\n{page}");
    }
    // The link is its text; the line breaks report.md wrote in a cell are kept.
    assert!(page.contains("x | a\\|b") || page.contains(">x</"), "{page}");
    assert!(page.contains("<br>second line"), "{page}");
    // A name is one code span, whole; a backslash before a pipe is shown as written.
    let id = super::escape(&record.checks[0].id);
    let whole = page.replace("<wbr>", "");
    assert_eq!(whole.matches(&format!("<code>{id}</code>")).count(), 2, "{id} is not whole in both tables:\n{page}");
    assert!(page.contains("a\\|b"), "{page}");
    assert_eq!(page.matches("<table>").count(), table_rows(&md).len(), "{page}");
    assert_eq!(page.matches("<table>").count(), page.matches("</table>").count());
    assert_eq!(page.matches("<tr>").count(), table_rows(&md).iter().map(Vec::len).sum::<usize>(), "{page}");
}

#[test]
fn a_link_is_kept_only_when_relative_or_http() {
    for kept in
        ["timeline.svg", "../history.jsonl", "#checks", "https://example.org/a:b", "HTTP://x", "a/b:c", "?q=a:b"]
    {
        assert!(safe_link(kept), "{kept}");
    }
    for dropped in [
        "javascript:alert(1)",
        "JavaScript:x",
        "java\tscript:x",
        " javascript:x",
        "data:text/html,x",
        "file:///etc/passwd",
        "vbscript:x",
        "mailto:a@b",
    ] {
        assert!(!safe_link(dropped), "{dropped}");
    }
    let page = render(&hostile(), "[ok](https://example.org/) [bad](javascript:alert(1)) <javascript:alert(2)>", &[]);
    assert!(page.contains("<a href=\"https://example.org/\">ok</a>"), "{page}");
    assert!(page.contains("bad") && !page.contains("href=\"javascript"), "{page}");
    assert!(page.contains("javascript:alert(2)"), "an autolink is its text: {page}");
}

/// The page of a drill with a previous one: one file with its styles and the three charts
/// inline, under the policy that loads and runs nothing, no script, nothing fetched.
#[test]
fn the_page_is_self_contained_and_draws_the_three_charts_inline() {
    let (console, _) = Console::capturing(false);
    let record = crate::report::snapshots::drill(console);
    let past = [HistoryEntry::of(&record, std::path::Path::new("r"), "0".repeat(64))];
    let files = render_all(&record, &past);
    let page = &files.iter().find(|(n, _)| *n == super::NAME).expect("report.html").1;
    assert!(page.contains(&format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">")), "{page}");
    assert!(!page.contains("<script") && !page.contains("<link") && !page.contains(" src="), "{page}");
    assert!(!page.contains("<img"), "the charts are inline, not images: {page}");
    for chart in ["timeline.svg", "recovery.svg", "backup-age.svg"] {
        let svg = &files.iter().find(|(n, _)| *n == chart).expect("a chart").1;
        assert!(page.contains(svg.trim_end()), "{chart} is not inline:\n{page}");
    }
    assert_eq!(page.matches("<figure class=\"chart\"><svg ").count(), 3, "{page}");
    assert!(page.contains("@page") && page.contains("@media print"), "the styles are inline");
    // The evidence's fold is open, so that it prints.
    assert!(page.contains("<details><summary>Evidence: the query behind each check</summary>"), "folded: {page}");
    assert!(page.contains("details::details-content { content-visibility: visible;"), "printed whole");
}

/// The verdict is the banner: red for a drill that did not pass, green for one that did; the
/// title is in it, the first section after it.
#[test]
fn the_verdict_is_a_banner_of_its_colour() {
    let (console, _) = Console::capturing(false);
    let mut record = crate::report::snapshots::drill(console);
    let page = render(&record, &markdown::render(&record, &[]), &[]);
    let banner = page.split("<header class=\"verdict fail\">").nth(1).expect("a red banner").split("</header>").next();
    let banner = banner.expect("a closed banner");
    assert!(banner.contains("<h1>Restore drill <code>plur</code>: FAIL</h1>"), "{banner}");
    assert!(banner.contains("<strong>FAIL.</strong> 1 of 4 checks did not pass"), "{banner}");
    assert!(!banner.contains("<h2"), "{banner}");
    record.verdict = DrillVerdict::Pass;
    let page = render(&record, &markdown::render(&record, &[]), &[]);
    assert!(
        page.contains("<header class=\"verdict pass\">")
            && page.contains("<h1>Restore drill <code>plur</code>: PASS</h1>")
    );
}

/// Each chapter is a section report.md writes, at the top of the document, marked to start a
/// new page in print; no other section is.
#[test]
fn the_chapters_start_new_pages() {
    let record = hostile();
    let page = render(&record, &markdown::render(&record, &[]), &[]);
    for chapter in CHAPTERS {
        assert_eq!(page.matches(&format!("<h2 class=\"chapter\">{chapter}</h2>")).count(), 1, "{chapter}:\n{page}");
    }
    assert_eq!(page.matches("<h2 class=\"chapter\">").count(), CHAPTERS.len(), "{page}");
    assert!(page.contains("h2.chapter { break-before: page;"), "the print style breaks before them");
}

/// How long report.html takes to render, and how big it is, against report.md, for a drill
/// of many checks (`cargo test -p pgdrill --lib html::tests::figures -- --nocapture`).
#[test]
fn figures_of_a_drill_with_many_checks() {
    let (console, _) = Console::capturing(false);
    let mut record = crate::report::snapshots::drill(console);
    let (md, page) = (markdown::render(&record, &[]), render(&record, &markdown::render(&record, &[]), &[]));
    println!("{} checks: report.md {} bytes, report.html {} bytes", record.checks.len(), md.len(), page.len());
    let model = record.checks[1].clone();
    record.checks = (0..2000)
        .map(|i| CheckResult {
            id: format!("row_counts/public.table_{i}"),
            object: format!("public.table_{i}"),
            ..model.clone()
        })
        .collect();
    let runs = 5;
    let started = Instant::now();
    let mut md = String::new();
    for _ in 0..runs {
        md = markdown::render(&record, &[]);
    }
    let md_time = started.elapsed() / runs;
    let started = Instant::now();
    let mut page = String::new();
    for _ in 0..runs {
        page = render(&record, &markdown::render(&record, &[]), &[]);
    }
    let html_time = started.elapsed() / runs;
    println!(
        "{} checks: report.md {} bytes in {md_time:?}; report.html {} bytes in {html_time:?} (report.md's render included)",
        record.checks.len(),
        md.len(),
        page.len()
    );
    assert_eq!(
        page.replace("<wbr>", "").matches("public.table_1999").count(),
        3,
        "the check is in both tables and the failures"
    );
    assert!(page.len() < md.len() * 3, "report.html {} bytes, report.md {}", page.len(), md.len());
}

/// The badges print in any font: symbols, coloured by what they say, never an emoji a machine
/// without an emoji font prints as an empty box; a long word in a cell gets places to break,
/// a short one none.
#[test]
fn badges_are_symbols_and_long_words_in_cells_break() {
    let record = hostile();
    let page = render(&record, &markdown::render(&record, &[]), &[]);
    assert!(page.contains("<td><span class=\"badge ok\">✓</span>\u{a0}pass</td>"), "{page}");
    assert!(page.contains("<td><span class=\"badge bad\">✗</span>\u{a0}fail</td>"), "{page}");
    assert!(page.contains("<span class=\"badge skip\">»</span>\u{a0}skipped"), "{page}");
    for emoji in ["✅", "❌", "⏭", "⛔"] {
        assert!(!page.contains(emoji), "{emoji} is in the page");
    }
    let md = "| a | b |\n|---|---|\n| /tmp/pgdrill-test-fC5RmX/hostile-names.sql (552 B) | short words only |\n";
    let page = render(&record, md, &[]);
    assert!(page.contains("<td>/tmp/<wbr>pgdrill-test-fC5RmX/<wbr>hostile-names.<wbr>sql (552 B)</td>"), "{page}");
    assert!(page.contains("<td>short words only</td>"), "{page}");
    let md = "| a | b |\n|---|---|\n| `row_counts/public.a_very_long_table_name_indeed<b>` | `short` |\n";
    let page = render(&record, md, &[]);
    let code = "<code>row_counts/<wbr>public.<wbr>a_very_long_table_na<wbr>me_indeed&lt;b&gt;</code>";
    assert!(page.contains(&format!("<td>{code}</td><td><code>short</code></td>")), "{page}");
}
