//! What of report.md's Markdown reaches report.html as markup. report.md carries text a hostile
//! backup controls (names of tables, roles and policies, the server's messages, values read):
//! GitHub sanitises it when it shows the file, and this does the same for our page. Raw HTML is
//! shown as the text it is, except the few tags report.md's renderer writes itself
//! ([`crate::report::markdown::BREAK`] and the folds); a link is kept only when it is relative
//! (no scheme) or `http(s)`, else it becomes its text; an image is one of the drill's own charts,
//! drawn inline from the SVG text the report wrote, or else its alt text.

use pulldown_cmark::{CowStr, Event, Tag, TagEnd};

use crate::report::markdown::{BREAK, EVIDENCE_FOLD, FOLD_END, OUTPUT_FOLD};

/// A chart of the drill's own: the file name report.md links it by, and its SVG text.
pub struct Chart<'a> {
    /// The file name, as report.md's image link names it (`timeline.svg`).
    pub name: &'a str,
    /// The SVG, as pgdrill drew it.
    pub svg: &'a str,
}

/// `events` made safe to write as HTML (see the module's documentation).
pub(super) fn sanitize<'a>(events: impl Iterator<Item = Event<'a>>, charts: &[Chart<'_>]) -> Vec<Event<'a>> {
    let mut out = Vec::new();
    // For each open link, whether it was kept.
    let mut links: Vec<bool> = Vec::new();
    // An image being read: its destination, its alt text so far, and how deep in images.
    let mut image: Option<(CowStr<'a>, String, usize)> = None;
    // The raw HTML of the block being read.
    let mut block: Option<String> = None;
    for event in events {
        if let Some((dest, alt, depth)) = &mut image {
            match event {
                Event::Start(Tag::Image { .. }) => *depth += 1,
                Event::End(TagEnd::Image) if *depth > 0 => *depth -= 1,
                Event::End(TagEnd::Image) => {
                    out.push(picture(dest, alt, charts));
                    image = None;
                }
                Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => alt.push_str(&t),
                Event::SoftBreak | Event::HardBreak => alt.push(' '),
                _ => {}
            }
            continue;
        }
        if let Some(raw) = &mut block {
            match event {
                Event::End(TagEnd::HtmlBlock) => out.extend(html_block(&std::mem::take(raw))),
                Event::Html(t) | Event::Text(t) => {
                    raw.push_str(&t);
                    continue;
                }
                _ => continue,
            }
            block = None;
            continue;
        }
        match event {
            Event::Start(Tag::HtmlBlock) => block = Some(String::new()),
            Event::Start(Tag::Image { dest_url, .. }) => image = Some((dest_url, String::new(), 0)),
            Event::Start(Tag::Link { ref dest_url, .. }) => {
                let kept = safe_link(dest_url);
                links.push(kept);
                if kept {
                    out.push(event);
                }
            }
            Event::End(TagEnd::Link) => {
                if links.pop().unwrap_or(false) {
                    out.push(event);
                }
            }
            Event::InlineHtml(t) if &*t == BREAK => out.push(Event::InlineHtml(t)),
            Event::Html(t) | Event::InlineHtml(t) => out.push(Event::Text(t)),
            other => out.push(other),
        }
    }
    out
}

/// A block of raw HTML: one of report.md's own folds (closed on screen; the print styles show
/// what it holds), or its text in a paragraph.
fn html_block<'a>(raw: &str) -> Vec<Event<'a>> {
    let kept = match raw.trim() {
        fold @ (EVIDENCE_FOLD | OUTPUT_FOLD) => Some(fold.to_owned()),
        FOLD_END => Some(FOLD_END.to_owned()),
        _ => None,
    };
    match kept {
        Some(html) => vec![Event::Html(format!("{html}\n").into())],
        None => vec![
            Event::Start(Tag::Paragraph),
            Event::Text(raw.trim_end().to_owned().into()),
            Event::End(TagEnd::Paragraph),
        ],
    }
}

/// The image `dest`: the chart of that name drawn inline, with its alt text as the caption, or
/// only its alt text.
fn picture<'a>(dest: &str, alt: &str, charts: &[Chart<'_>]) -> Event<'a> {
    match charts.iter().find(|c| c.name == dest) {
        Some(chart) => Event::Html(
            format!(
                "<figure class=\"chart\">{}<figcaption>{}</figcaption></figure>\n",
                chart.svg.trim_end(),
                super::escape(alt)
            )
            .into(),
        ),
        None => Event::Text(alt.to_owned().into()),
    }
}

/// Whether a link to `url` is kept: relative (no scheme before its first `/`, `?` or `#`), or
/// `http`/`https`. Whitespace and control characters are ignored first, as a browser does
/// (`java\tscript:` is `javascript:` to it).
pub(super) fn safe_link(url: &str) -> bool {
    let url: String = url.chars().filter(|c| !c.is_ascii_whitespace() && !c.is_control()).collect();
    let head = url.split(['/', '?', '#']).next().unwrap_or_default();
    match head.split_once(':') {
        None => true,
        Some((scheme, _)) => scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"),
    }
}
