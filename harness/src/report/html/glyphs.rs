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

/// A word longer than this, in a table cell, gets a place to break after every this many
/// characters.
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

/// Text without badges: in a cell, a word longer than [`LONG_WORD`] characters is given a
/// `<wbr>` after every [`LONG_WORD`] of them.
fn plain(text: &str, in_cell: bool, out: &mut Vec<Event<'_>>) {
    if text.is_empty() {
        return;
    }
    if !in_cell || text.split_whitespace().all(|w| w.chars().count() <= LONG_WORD) {
        out.push(Event::Text(CowStr::from(text.to_owned())));
        return;
    }
    let mut piece = String::new();
    let mut run = 0;
    for c in text.chars() {
        if c.is_whitespace() {
            run = 0;
        } else if run == LONG_WORD {
            out.push(Event::Text(std::mem::take(&mut piece).into()));
            out.push(Event::InlineHtml("<wbr>".into()));
            run = 1;
        } else {
            run += 1;
        }
        piece.push(c);
    }
    out.push(Event::Text(piece.into()));
}
