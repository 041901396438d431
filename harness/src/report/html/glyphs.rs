//! What the page changes in report.md's text so that it prints well anywhere: the badges' emoji
//! (✅ ❌ ⚠️ ⏭ ⛔) become symbols that common fonts have (a machine without an emoji font, a CI
//! runner printing the PDF, would print empty boxes), coloured by what they say; and a long
//! word in a table cell (a path, a name without spaces) gets places to break, so that a table
//! fits the page's width without squeezing its short columns.

use pulldown_cmark::{CowStr, Event, Tag, TagEnd};

/// Each badge's emoji, the symbol shown instead and its class.
const BADGES: [(&str, &str, &str); 6] = [
    ("✅", "✓", "ok"),
    ("❌", "✗", "bad"),
    ("⚠\u{fe0f}", "⚠", "warn"),
    ("⚠", "⚠", "warn"),
    ("⏭", "»", "skip"),
    ("⛔", "■", "bad"),
];

/// A word longer than this, in a table cell, gets places to break: after a `/` or `.`, and
/// after every this many characters without one.
const LONG_WORD: usize = 20;

/// `events` with the badges as symbols and long words in table cells breakable.
pub(super) fn dress(events: Vec<Event<'_>>) -> Vec<Event<'_>> {
    let mut out = Vec::with_capacity(events.len());
    let mut in_cell = false;
    for event in events {
        match event {
            Event::Start(Tag::TableCell) => {
                in_cell = true;
                out.push(event);
            }
            Event::End(TagEnd::TableCell) => {
                in_cell = false;
                out.push(event);
            }
            Event::Text(text) => text_of(&text, in_cell, &mut out),
            Event::Code(text) if in_cell => out.push(code(&text)),
            other => out.push(other),
        }
    }
    out
}

/// `text` as events: the badges as marked-up symbols, the rest as text (broken where long
/// when `in_cell`).
fn text_of(text: &str, in_cell: bool, out: &mut Vec<Event<'_>>) {
    let mut rest = text;
    while !rest.is_empty() {
        let next = BADGES.iter().filter_map(|b| rest.find(b.0).map(|at| (at, b))).min_by_key(|(at, _)| *at);
        let Some((at, (emoji, symbol, class))) = next else { break };
        plain(&rest[..at], in_cell, out);
        out.push(Event::InlineHtml(format!("<span class=\"badge {class}\">{symbol}</span>").into()));
        rest = &rest[at + emoji.len()..];
        // The badge and its first word stay on one line (`✓ passed` in a narrow column).
        if let Some(after) = rest.strip_prefix(' ') {
            out.push(Event::Text("\u{a0}".into()));
            rest = after;
        }
    }
    plain(rest, in_cell, out);
}

/// Text without badges: in a cell, a long word is given places to break ([`breaks`]).
fn plain(text: &str, in_cell: bool, out: &mut Vec<Event<'_>>) {
    if text.is_empty() {
        return;
    }
    if !in_cell {
        out.push(Event::Text(CowStr::from(text.to_owned())));
        return;
    }
    for (i, piece) in breaks(text).into_iter().enumerate() {
        if i > 0 {
            out.push(Event::InlineHtml("<wbr>".into()));
        }
        out.push(Event::Text(piece.into()));
    }
}

/// A code span in a cell, as HTML with places to break ([`breaks`]): a long name wraps at a
/// `/` or `.`, or after [`LONG_WORD`] characters, and a column of names keeps a readable width.
fn code(text: &str) -> Event<'static> {
    let pieces: Vec<String> = breaks(text).iter().map(|p| super::escape(p)).collect();
    Event::InlineHtml(format!("<code>{}</code>", pieces.join("<wbr>")).into())
}

/// `text` cut where a word longer than [`LONG_WORD`] characters may break: after each `/` or
/// `.` in it, and after every [`LONG_WORD`] characters without one.
fn breaks(text: &str) -> Vec<String> {
    let long = |w: &str| w.chars().count() > LONG_WORD;
    if !text.split_whitespace().any(long) {
        return vec![text.to_owned()];
    }
    let mut pieces = vec![String::new()];
    let mut run = 0;
    for c in text.chars() {
        if run == LONG_WORD && !c.is_whitespace() {
            pieces.push(String::new());
            run = 0;
        }
        let piece = pieces.last_mut().expect("a piece");
        piece.push(c);
        run = if c.is_whitespace() { 0 } else { run + 1 };
        if matches!(c, '/' | '.') && run > 1 {
            pieces.push(String::new());
            run = 0;
        }
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}
