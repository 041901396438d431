//! `period.html`: the period report for people, one self-contained page that prints on A4 (the
//! fleet page's shell and style). Everything taken from drill records or acknowledgements is
//! text, escaped.

use maud::{Markup, PreEscaped, html};

use super::exceptions::{Exception, day};
use super::windows::WindowState;
use super::{Database, Followed, Period, PeriodDrill};
use crate::report::fleet_view::html::{STYLE, prose, when};
use crate::report::fleet_view::span;
use crate::report::html::page as shell;
use crate::units::human_duration;

/// The period's own rules, after the fleet page's.
const MORE_STYLE: &str = "\
.passed{background:var(--pass)}.failed,.missed{background:var(--fail)}.open{background:var(--muted)}
td.num{text-align:right}.exception.resolved{border-left:4px solid var(--pass)}.exception{border-left:4px solid var(--fail);padding-left:.6em;margin:.5em 0}
ol.windows{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:3px}ol.windows li{font-size:.8em}
";

/// The page.
pub(super) fn page(period: &Period) -> String {
    let title = period.title();
    let body = html! {
        (header(period, &title))
        h2 { "Each database" } "\n"
        (table(period))
        h2 { "Exceptions" } "\n"
        (exceptions(period))
        @for db in &period.databases { (database(db)) }
    };
    let style = format!("{STYLE}{MORE_STYLE}");
    shell(&title, PreEscaped(&style), body)
}

fn header(period: &Period, title: &str) -> Markup {
    let (all, resolved) = period.exception_counts();
    let sum = |f: fn(&Database) -> usize| period.databases.iter().map(f).sum::<usize>();
    html! {
        header {
            "\n" h1 { (title) } "\n"
            dl {
                dt { "Period" } dd { (day(period.from)) " to " (day(period.to)) " (the end excluded)" } "\n"
                dt { "Judged" } dd { (when(Some(period.now))) } "\n"
                dt { "Population" } dd { "the " (period.databases.len()) " databases of the inventory " code { (period.inventory.display()) } } "\n"
                dt { "Read from" } dd { @for (i, input) in period.inputs.iter().enumerate() { @if i > 0 { ", " } code { (input) } } } "\n"
                dt { "Evidence" }
                dd {
                    @match &period.allowed_signers {
                        Some(file) => { "each drill and acknowledgement verified against the allowed signers " code { (file.display()) } },
                        None if period.unsigned_ok => span.meh { "not checked against allowed signers (--unsigned-ok): evidence no one vouches for is counted, and no acknowledgement resolves an exception" },
                        None => span.bad { "not checked: no allowed signers were given, so each drill's evidence is an exception and no acknowledgement resolves one" },
                    }
                } "\n"
            } "\n"
            div.summary {
                div { b { (sum(Database::expected)) } "drills expected" }
                div { b { (sum(|d| d.drills.len())) } "run" }
                div.tile.fresh { b { (sum(Database::passed)) } "passed" }
                div class={ "tile " @if sum(|d| d.count(WindowState::Missed)) > 0 { "failing" } } { b { (sum(|d| d.count(WindowState::Missed))) } "windows missed" }
                div class={ "tile " @if all > resolved { "failing" } } { b { (all) } "exceptions" }
                div { b { (resolved) } "resolved" }
            } "\n"
            @if !period.unlisted.is_empty() {
                p.muted { "Drilled in the period and not in the inventory (not counted): "
                    @for (i, name) in period.unlisted.iter().enumerate() { @if i > 0 { ", " } code { (name) } } }
            }
        } "\n"
    }
}

fn table(period: &Period) -> Markup {
    html! {
        table {
            thead { tr { th { "Database" } th { "Cadence" } th { "Expected" } th { "Run" } th { "Passed" } th { "Failed" } th { "Missed" } th { "Backup age" } th { "RTO met" } th { "RPO met" } th { "Exceptions" } } }
            tbody {
                @for db in &period.databases {
                    tr {
                        td { (db.name) @if db.control { span.state-note { "negative control" } } }
                        td { @match db.cadence.every() { Some(c) => { (span(c)) span.state-note { (db.cadence.source()) } }, None => span.bad { "unknown" } } }
                        td.num { (db.expected()) } td.num { (db.drills.len()) }
                        td.num { (db.passed()) @if db.sampled() > 0 { span.state-note { (db.sampled()) " of an older backup, sampled" } } }
                        td.num { (db.drills.iter().filter(|d| !d.passed).count()) } td.num { (db.count(WindowState::Missed)) }
                        td { (ages(db)) }
                        td { (met(db, |d| d.rto_met)) } td { (met(db, |d| d.rpo_met)) }
                        td.num { (db.exceptions.len()) " (" (db.exceptions.iter().filter(|e| e.resolved()).count()) " resolved)" }
                    } "\n"
                }
            }
        } "\n"
    }
}

/// The youngest and oldest backup drilled, by age at its drill.
fn ages(db: &Database) -> String {
    let ages: Vec<std::time::Duration> = db.drills.iter().filter_map(|d| d.backup_age).collect();
    match (ages.iter().min(), ages.iter().max()) {
        (Some(min), Some(max)) if min == max => span(*min),
        (Some(min), Some(max)) => format!("{} to {}", span(*min), span(*max)),
        _ => "unknown".into(),
    }
}

/// In how many of the drills judged against an objective it was met.
fn met(db: &Database, of: fn(&PeriodDrill) -> Option<bool>) -> Markup {
    let judged: Vec<bool> = db.drills.iter().filter_map(of).collect();
    let yes = judged.iter().filter(|m| **m).count();
    html! {
        @if judged.is_empty() { span.muted { "not set" } }
        @else { span class=(if yes == judged.len() { "ok" } else { "bad" }) { (yes) " of " (judged.len()) } }
    }
}

fn exceptions(period: &Period) -> Markup {
    html! {
        @if period.exceptions().next().is_none() { p.ok { "None: every window expected had a drill that passed, and its evidence holds." } }
        @for (db, e) in period.exceptions() { (exception(db, e)) }
    }
}

fn exception(db: &Database, e: &Exception) -> Markup {
    html! {
        div class={ "exception" @if e.resolved() { " resolved" } } {
            b { (db.name) } ": " (prose(&e.what))
            @if let Some(d) = e.drill { span.path { (db.drills[d].drill.shown) } }
            @if e.resolution.is_empty() { div.bad { "Unresolved." } }
            @for ack in &e.resolution {
                div { span.ok { "Resolved" } " by " b { (ack.by) } " at " (ack.at) ": " (ack.note)
                    @if let Some((_, who)) = ack.signed.as_ref().and_then(|s| s.allowed_by.as_ref()) { span.state-note { "signed, allowed as " code { (who) } } } }
            }
            @if let Some(d) = e.drill {
                @for fault in &db.drills[d].drill.ack_faults { div.meh { "An acknowledgement does not hold: " (fault) } }
            }
        } "\n"
    }
}

fn database(db: &Database) -> Markup {
    html! {
        section.db {
            h3 { (db.name) } span.path { (db.listed.0) ", " (db.listed.1) }
            @if !db.windows.is_empty() {
                ol.windows { @for w in &db.windows { li { span class={ "badge " (w.state.as_str()) } title={ (day(w.start)) " to " (day(w.end)) } { (w.start.date()) " " (w.state.as_str()) } } } }
            }
            @for f in &db.followed { (followed(f)) }
            @if db.drills.is_empty() { p.bad { "No drill in the period." } }
            @else {
                table {
                    thead { tr { th { "Started" } th { "Verdict" } th { "Recovery" } th { "Backup" } th { "Evidence" } } }
                    tbody { @for d in &db.drills {
                        tr {
                            td { (day(d.started_at)) span.path { (d.drill.shown) } }
                            td { span class={ "badge " (d.drill.verdict) } { (d.drill.verdict) } }
                            td { (d.drill.recovery.map(human_duration).unwrap_or_else(|| "-".into())) }
                            td { (d.drill.backup.clone().unwrap_or_default()) @if let Some(age) = d.backup_age { span.state-note { (span(age)) " old" } } }
                            td { (d.drill.evidence.status()) }
                        } "\n"
                    } }
                }
            }
        } "\n"
    }
}

/// A follower of the database over the period, in a line.
fn followed(f: &Followed) -> Markup {
    let lag = |p: usize| f.lag(p).map_or_else(|| "unknown".into(), human_duration);
    html! {
        p {
            "Followed by " code { (f.state) } ": " (f.segments) " segments proven in the period, proof lag median "
            (lag(50)) ", p99 " (lag(99)) ", longest " (lag(100)) "; " (f.receipts) " signed receipts"
            @match &f.evidence { None => span.ok { ", which hold" }, Some(why) => span.bad { ", which do not hold: " (why) } }
            @if let Some((first, last)) = f.unreceipted { span.muted { " (ledger lines " (first) " to " (last) " not yet receipted)" } }
            "."
        }
    }
}
