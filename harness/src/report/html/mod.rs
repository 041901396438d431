//! `report.html`: report.md as one self-contained web page, to read in a browser or print to
//! PDF for an auditor. It is made from report.md's own Markdown (so the two never say different
//! things), parsed by pulldown-cmark with GFM tables and sanitised (`sanitize`: the Markdown
//! carries text a hostile backup controls), inside a page of ours (`page`, a maud template
//! that fleet.html shares, text escaped by default): the styles inline (`style.css`), the drill's
//! three charts drawn inline from their SVG text, no script and nothing to load, under a
//! Content-Security-Policy that would stop anything that slipped through. The verdict is a green
//! or red banner at the top; the main sections start new pages in print; the badges are symbols
//! any font has (`glyphs`).

mod glyphs;
mod sanitize;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::outcome::{DrillRecord, DrillVerdict};
pub use sanitize::Chart;

/// The file's name in a drill's folder.
pub const NAME: &str = "report.html";

/// What the page may load and run: nothing but its own inline styles, and images only as data.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = include_str!("style.css");

/// The main sections of report.md that start a new page in print (after the first page, which
/// holds the verdict, the objectives, the controls and what the drill proves): what was drilled
/// onto what, the comparison with the previous drill, the phases, the checks.
pub(crate) const CHAPTERS: [&str; 2] = ["Backup", "Evidence"];

/// `text` escaped for HTML text and attribute values, as maud escapes what a template splices.
pub(crate) fn escape(text: &str) -> String {
    html! { (text) }.into_string()
}

/// The page of the drill `record`, whose report.md is `markdown`, with its `charts`.
pub fn render(record: &DrillRecord, markdown: &str, charts: &[Chart<'_>]) -> String {
    let events = sanitize::sanitize(Parser::new_ext(markdown, Options::ENABLE_TABLES), charts);
    let events = glyphs::dress(chapters(events));
    let (banner, body) = events.split_at(banner_end(&events));
    let (class, verdict) = match record.verdict {
        DrillVerdict::Pass => ("pass", "PASS"),
        DrillVerdict::Fail => ("fail", "FAIL"),
        DrillVerdict::Interrupted => ("fail", "INTERRUPTED"),
        DrillVerdict::Running => ("fail", "INCOMPLETE"),
    };
    let content = html! {
        main {
            "\n"
            header class={ "verdict " (class) } { "\n" (sanitized_html(banner)) }
            "\n" (sanitized_html(body))
        } "\n"
    };
    // Our own stylesheet, compiled in (style.css): no drill's text is in it.
    page(&format!("Restore drill {}: {verdict}", record.scenario.name), PreEscaped(STYLE), content)
}

/// A page of pgdrill's (report.html, fleet.html): `title`, `style` and `body` in the shell that
/// loads and runs nothing ([`CSP`]).
pub(crate) fn page(title: &str, style: PreEscaped<&str>, body: Markup) -> String {
    html! {
        (DOCTYPE) "\n"
        html lang="en" {
            "\n"
            head {
                "\n" meta charset="utf-8"; "\n"
                meta http-equiv="Content-Security-Policy" content=(CSP); "\n"
                meta name="viewport" content="width=device-width, initial-scale=1"; "\n"
                meta name="generator" content="pgdrill"; "\n"
                title { (title) } "\n"
                style { "\n" (style) } "\n"
            } "\n"
            body { "\n" (body) } "\n"
        } "\n"
    }
    .into_string()
}

/// Sanitised Markdown events as HTML, by pulldown-cmark's writer.
fn sanitized_html(events: &[Event<'_>]) -> PreEscaped<String> {
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events.iter().cloned());
    // Safe HTML: pulldown-cmark escapes the text, and `sanitize` let through only the markup
    // report.md's own renderer writes, safe links and the drill's own charts.
    PreEscaped(out)
}

/// Where the banner ends: after the headline's quote (the verdict in a sentence), when it comes
/// before the first section; else after the title.
fn banner_end(events: &[Event<'_>]) -> usize {
    let mut title_end = 0;
    let mut depth = 0usize;
    for (i, event) in events.iter().enumerate() {
        match event {
            Event::Start(Tag::Heading { level: HeadingLevel::H2, .. }) if depth == 0 => break,
            Event::End(TagEnd::Heading(HeadingLevel::H1)) if depth == 0 && title_end == 0 => title_end = i + 1,
            Event::Start(Tag::BlockQuote(_)) => depth += 1,
            Event::End(TagEnd::BlockQuote(_)) => {
                depth -= 1;
                if depth == 0 && title_end > 0 {
                    return i + 1;
                }
            }
            Event::Start(_) if depth == 0 && title_end > 0 => break,
            _ => {}
        }
    }
    title_end
}

/// The top-level headings of [`CHAPTERS`] marked to start a new page in print. Only headings
/// of the document itself: a heading inside a list or a quote (text a message brought) is none.
fn chapters(events: Vec<Event<'_>>) -> Vec<Event<'_>> {
    let mut depth = 0usize;
    let mut out = Vec::with_capacity(events.len());
    let mut events = events.into_iter().peekable();
    while let Some(event) = events.next() {
        match event {
            Event::Start(Tag::Heading { level: HeadingLevel::H2, id, mut classes, attrs }) if depth == 0 => {
                if let Some(Event::Text(title)) = events.peek()
                    && CHAPTERS.contains(&&**title)
                {
                    classes.push("chapter".into());
                }
                depth += 1;
                out.push(Event::Start(Tag::Heading { level: HeadingLevel::H2, id, classes, attrs }));
            }
            Event::Start(_) => {
                depth += 1;
                out.push(event);
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                out.push(event);
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests;
