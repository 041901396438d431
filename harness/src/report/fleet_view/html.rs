//! `fleet.html`: one self-contained page (inline styles and SVG, no script, a CSP that allows
//! nothing else) that prints on A4. A maud template: everything taken from drill records is
//! text, escaped (it comes from the backup's world); what was written for Markdown (report.md,
//! gaps.md) shows its code spans as code, not backticks ([`prose`]).

use maud::{Markup, PreEscaped, html};

use super::follower::{self, Follower, Standing};
use super::matrix;
use super::state::span;
use super::{Drill, Fleet, State, Subject, chart};
use crate::report::fleet::Evidence;
use crate::report::html::page as shell;
use crate::units::human_duration;

pub(crate) const STYLE: &str = "\
:root{--pass:#1e6b34;--fail:#b3261e;--warn:#8a5300;--muted:#555;--line:#c9c9c9}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1b1b;margin:0 auto;max-width:1120px;padding:18px 22px;overflow-wrap:break-word}
h1{font-size:1.6em;margin:0 0 .3em}h2{font-size:1.25em;margin:1.4em 0 .5em;border-bottom:2px solid #333;padding-bottom:.15em}
h3{font-size:1.1em;margin:0 0 .3em}
table{border-collapse:collapse;width:100%;table-layout:fixed;margin:.4em 0}
th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}
td .path,td code,dd{overflow-wrap:anywhere}
th{background:#f0f0f0;font-weight:600}
code,.path{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.86em}
.path{color:var(--muted);display:block}
.badge{display:inline-block;border-radius:3px;padding:0 .45em;font-weight:700;color:#fff;white-space:nowrap}
.fresh,.pass{background:var(--pass)}.stale{background:var(--warn)}.failing,.fail,.incomplete,.interrupted{background:var(--fail)}
.summary .tile.fresh,.summary .tile.stale,.summary .tile.failing{color:#fff}
td.yes{background:#e2f2e6;color:var(--pass)}td.partly{background:#fcf0d6;color:var(--warn)}td.no{background:#fbe3e1;color:var(--fail)}
.state-note{display:block;color:var(--muted);font-size:.92em;margin-top:.15em}
.ok{color:var(--pass);font-weight:600}.bad{color:var(--fail);font-weight:600}.meh{color:var(--warn);font-weight:600}
.muted{color:var(--muted)}
ul{margin:.2em 0;padding-left:1.2em}
.summary{display:flex;gap:.8em;flex-wrap:wrap;margin:.6em 0}
.summary div{border:1px solid var(--line);border-radius:4px;padding:.35em .8em}
.summary b{font-size:1.3em;display:block}
section.db{border:1px solid var(--line);border-radius:4px;padding:10px 12px;margin:0 0 14px}
.chart{width:100%;max-width:720px;height:auto;display:block;margin:.4em 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15em .8em;margin:.3em 0}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
.gaps li{margin:.15em 0}
@page{size:A4;margin:12mm 11mm}
@media print{body{max-width:none;padding:0;font-size:9pt}h2{break-after:avoid}section.db,section.matrix{break-inside:avoid}
thead{display:table-header-group}tr{break-inside:avoid}.chart{max-width:100%}
.badge,td.yes,td.partly,td.no,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
";

/// The page.
pub(super) fn page(fleet: &Fleet) -> String {
    let body = html! {
        (header(fleet))
        (overview(fleet))
        @if fleet.inventory.is_some() { (gaps(fleet)) }
        (controls(fleet))
        h2 { "Each database" } "\n"
        @for subject in &fleet.subjects { (database(fleet, subject)) }
    };
    // Our own stylesheet, a constant: no drill's text is in it.
    shell("Restore drills of the fleet", PreEscaped(STYLE), body)
}

pub(crate) fn when(at: Option<time::OffsetDateTime>) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok()).unwrap_or_else(|| "unknown".into())
}

/// Text written for Markdown (report.md, gaps.md) as HTML: what its backticks quote as code, the
/// rest as text. Text with an odd number of backticks (a name that holds one) shows as written.
pub(crate) fn prose(text: &str) -> Markup {
    let pieces: Vec<&str> = text.split('`').collect();
    if pieces.len().is_multiple_of(2) {
        return html! { (text) };
    }
    html! {
        @for (i, piece) in pieces.into_iter().enumerate() { @if i % 2 == 1 { code { (piece) } } @else { (piece) } }
    }
}

fn header(fleet: &Fleet) -> Markup {
    let max_age = fleet.max_age.map_or("none given (each database's own, else its RPO)".into(), span);
    html! {
        header {
            "\n" h1 { "Restore drills of the fleet" } "\n"
            dl {
                "\n" dt { "As of" } dd { (when(Some(fleet.now))) } "\n"
                dt { "Read from" }
                dd { @for (i, input) in fleet.inputs.iter().enumerate() { @if i > 0 { ", " } code { (input) } } } "\n"
                dt { "Evidence" }
                dd {
                    @match (&fleet.allowed_signers, fleet.unsigned_ok) {
                        (Some(file), _) => { "verified against the allowed signers " code { (file.display()) } },
                        (None, true) => span.meh { "not checked against allowed signers (--unsigned-ok)" },
                        (None, false) => span.bad { "not checked: no allowed signers were given" },
                    }
                } "\n"
                @if let Some(inventory) = &fleet.inventory {
                    dt { "Inventory" } dd { code { (inventory.display()) } } "\n"
                }
                dt { "Max age" } dd { (max_age) } "\n"
            } "\n"
            div.summary {
                div { b { (fleet.subjects.len()) } "databases" }
                @for state in State::ALL {
                    @let count = fleet.count(state);
                    @let class = if count == 0 { "" } else { state_class(state) };
                    div class={ "tile " (class) } { b { (count) } (state.as_str()) }
                }
                @if fleet.inventory.is_some() { div { b { (fleet.gaps().len()) } "gaps" } }
                @if let Some(bounds) = &fleet.follow {
                    @let followers: Vec<&Follower> = fleet.subjects.iter().flat_map(|s| &s.followers).collect();
                    @let proving = followers.iter().filter(|f| f.judge(bounds).0 == Standing::Proving).count();
                    @let class = if proving == followers.len() { "fresh" } else { "failing" };
                    div class={ "tile " (class) } { b { (proving) " of " (followers.len()) } "followers proving" }
                }
            } "\n"
        } "\n"
    }
}

fn badge(state: State) -> Markup {
    html! { span class={ "badge " (state_class(state)) } { (state.as_str()) } }
}

/// A state's colour: green only for fresh, red where no backup is proven to restore, amber
/// where one is but the proof is old, undated or unsigned.
fn state_class(state: State) -> &'static str {
    match state {
        State::Fresh => "fresh",
        State::Failing | State::NeverVerified => "failing",
        State::Stale | State::Undated | State::Unsigned => "stale",
    }
}

fn verdict(drill: &Drill) -> Markup {
    html! { span class={ "badge " (drill.verdict) } { (drill.verdict) } }
}

/// Whether a drill's evidence is signed and verifies, in a few words.
fn evidence(e: &Evidence) -> Markup {
    html! {
        @match e {
            Evidence::Verified { principals, .. } => { span.ok { "✓ signed, verifies" } " (" (principals) ")" },
            Evidence::Unchecked { files_match: true, key: Some(key) } => {
                span.meh { "signed, not checked" } " " span.path { (key) }
            },
            Evidence::Unchecked { files_match: true, key: None } => span.meh { "unsigned, not checked" },
            Evidence::Unchecked { files_match: false, .. } => span.bad { "✗ files do not match their digests" },
            Evidence::Missing => span.bad { "✗ no evidence" },
            Evidence::Unsigned => span.bad { "✗ unsigned" },
            Evidence::DoesNotVerify { .. } => span.bad { "✗ does not verify" },
        }
    }
}

fn age_line(subject: &Subject) -> String {
    let Some(age) = subject.age else { return "no passing drill".into() };
    let age = format!("last pass {} ago", span(age));
    let max =
        subject.rule.max().map_or("no max age".into(), |m| format!("max {} ({})", span(m), subject.rule.source()));
    format!("{age}; {max}")
}

/// A table of `class`: its first columns' widths (in percent), its columns' heads, its rows.
fn table<'a>(class: &str, widths: &[u8], heads: impl IntoIterator<Item = &'a str>, rows: Markup) -> Markup {
    html! {
        table class=(class) {
            "\n" colgroup { @for w in widths { col style={ "width:" (w) "%" }; } } "\n"
            thead { tr { @for head in heads { th { (head) } } } } "\n"
            tbody { "\n" (rows) } "\n"
        } "\n"
    }
}

fn overview(fleet: &Fleet) -> Markup {
    let rows = html! {
        @for s in &fleet.subjects {
            tr {
                td {
                    b { (s.name) }
                    span.path { @match &s.listed { Some((by, _)) => (prose(by)), None => "not in the inventory" } }
                }
                td { (badge(s.state)) span.state-note { (age_line(s)) } }
                @match s.last() {
                    None => { td { span.bad { "no drill found" } } td { "-" } td { "-" } td { "-" } },
                    Some(d) => {
                        td { (when(d.started_at)) span.path { (d.shown) } }
                        td { (verdict(d)) } td { (evidence(&d.evidence)) } td { (failing_list(d)) }
                    },
                }
                @if let Some(bounds) = &fleet.follow { td { (follower_cell(s, bounds)) } }
            } "\n"
        }
    };
    let heads = ["Database", "State", "Last drill", "Verdict", "Evidence", "Failing checks"];
    match fleet.follow {
        None => html! { h2 { "Databases" } "\n" (table("overview", &[16, 16, 21, 10, 17, 20], heads, rows)) },
        Some(_) => {
            let heads = heads.into_iter().chain(["Proof lag"]);
            html! { h2 { "Databases" } "\n" (table("overview", &[14, 14, 17, 9, 15, 15, 16], heads, rows)) }
        }
    }
}

/// A follower's standing as a badge: green only when it proves its archive now.
fn standing_badge(standing: Standing) -> Markup {
    let class = match standing {
        Standing::Proving => "fresh",
        Standing::Behind => "stale",
        Standing::Faulted | Standing::NotFollowing => "failing",
    };
    html! { span class={ "badge " (class) } { (standing.as_str()) } }
}

/// The overview's cell of a database's followers: each one's standing and proof lag.
fn follower_cell(s: &Subject, bounds: &follower::Bounds) -> Markup {
    html! {
        @if s.followers.is_empty() { span.muted { "not followed" } }
        @for f in &s.followers {
            @let (standing, says) = f.judge(bounds);
            div {
                (standing_badge(standing))
                @match f.proof_lag(bounds) {
                    Some(lag) => { " " b { (follower::seconds(lag)) } },
                    None => { " " span.bad { "unknown" } },
                }
                span.state-note { (says) }
            }
        }
    }
}

/// A database's followers, in its section.
fn followers(s: &Subject, bounds: &follower::Bounds) -> Markup {
    html! {
        @for f in &s.followers {
            @let (standing, says) = f.judge(bounds);
            @let said = f.said.as_ref().ok();
            dt { "Follower" } dd { (standing_badge(standing)) " " (says) span.path { (f.state) } } "\n"
            dt { "Proof lag" }
            dd { @match f.proof_lag(bounds) { Some(lag) => (follower::seconds(lag)), None => span.bad { "unknown" } } } "\n"
            dt { "Last look" }
            dd {
                @match said {
                    Some(said) => { (follower::seconds(said.look_age)) " ago" },
                    None => span.bad { (prose(f.said.as_ref().err().map_or("", String::as_str))) },
                }
            } "\n"
            dt { "Last proven" }
            dd {
                @match &f.last {
                    Some((segment, at, lsn)) => { code { (segment) } ", replayed " (at) " (LSN " (lsn) ")" },
                    None => span.muted { "no segment in its ledger" },
                }
                @if let Some(said) = said { " · " (said.ledger_segments) " segments in its ledger" }
            } "\n"
            @if let Some(said) = said.filter(|s| !s.faults.is_empty()) {
                dt { "Faults" } dd.bad { (said.faults.join(", ")) } "\n"
            }
        }
    }
}

fn failing_list(drill: &Drill) -> Markup {
    html! {
        @match (drill.failing.is_empty(), &drill.failure) {
            (true, None) => "none",
            (true, Some(why)) => (prose(why)),
            (false, _) => ul { @for (id, _) in &drill.failing { li { code { (id) } } } },
        }
    }
}

fn gaps(fleet: &Fleet) -> Markup {
    let gaps = fleet.gaps();
    html! {
        h2 { "What the evidence gate finds missing" } "\n"
        @if gaps.is_empty() {
            p.ok {
                "Nothing: every database the inventory lists has a passing, recent drill whose evidence holds."
            } "\n"
        } @else {
            ul.gaps {
                "\n" @for (subject, gap) in gaps { li { b { (subject.name) } ": " (prose(&gap.describe())) } "\n" }
            } "\n"
        }
    }
}

fn controls(fleet: &Fleet) -> Markup {
    let rows = html! {
        @for s in &fleet.subjects {
            tr {
                td { b { (s.name) } }
                @for (met, why) in matrix::row(s) { td class=(met.class()) { (met.mark()) " " (why) } }
            } "\n"
        }
    };
    html! {
        section.matrix {
            "\n" h2 { "Controls matrix" } "\n"
            p.muted { "What each database's last drill evidences of each control (✓ met, ◐ partly, ✗ not)." } "\n"
            (table("matrix", &[20], std::iter::once("Database").chain(matrix::SHORT), rows))
            ul.muted { "\n" @for (name, asks) in matrix::controls() { li { b { (name) } ": " (asks) } "\n" } } "\n"
        } "\n"
    }
}

fn database(fleet: &Fleet, s: &Subject) -> Markup {
    let age = s.age.map_or("none: no drill of it passed".into(), |a| format!("{} ago", span(a)));
    html! {
        section.db {
            "\n" h3 { (s.name) " " (badge(s.state)) } "\n"
            dl {
                "\n"
                @if let Some((by, at)) = &s.listed { dt { "Listed" } dd { "by " (prose(by)) " (" (at) ")" } "\n" }
                dt { "Last pass" } dd { (age) } "\n"
                dt { "Max age" } dd { (prose(&s.rule.describe())) } "\n"
                @if let Some(last) = s.last() {
                    dt { "Last drill" }
                    dd { (verdict(last)) " " (when(last.started_at)) span.path { (last.shown) } } "\n"
                    @if let Some(backup) = &last.backup { dt { "Backup" } dd { code { (backup) } } "\n" }
                    dt { "Evidence" }
                    dd { (evidence(&last.evidence)) br; span.muted { (prose(&last.evidence.describe())) } } "\n"
                }
                @if let Some(bounds) = &fleet.follow { (followers(s, bounds)) }
            } "\n"
            @if fleet.inventory.is_some() && s.listed.is_some() {
                @for gap in &s.gaps { p.bad { "Gap: " (prose(&gap.describe())) } "\n" }
            }
            @if let Some(last) = s.last() {
                @for a in &last.acks { p { b { "Acknowledged" } " by " (a.by) " at " (a.at) ": " (a.note) span.muted { " (its verdict stands)" } } "\n" }
            }
            @if let Some(last) = s.last().filter(|d| !d.failing.is_empty()) {
                p { b { "Failing checks of its last drill" } } "\n"
                ul { "\n" @for (id, message) in &last.failing { li { code { (id) } ": " (prose(message)) } "\n" } } "\n"
            }
            @match chart::recovery(s) {
                // Safe HTML: SVG that pgdrill drew (report/svg.rs), the database's name in it escaped.
                Some(svg) => (PreEscaped(svg)),
                None => { p.muted { "No complete drill to chart." } "\n" },
            }
            (drills(s))
        } "\n"
    }
}

fn drills(s: &Subject) -> Markup {
    if s.drills.is_empty() {
        return html! { p.bad { "No drill of it was found." } "\n" };
    }
    let rows = html! {
        @for d in s.drills.iter().rev() {
            tr {
                td { (when(d.started_at)) } td { (verdict(d)) }
                td { (d.recovery.map_or("-".into(), human_duration)) } td { (d.rto.map_or("-".into(), span)) }
                td { (evidence(&d.evidence)) } td { span.path { (d.shown) } }
            } "\n"
        }
    };
    let heads = ["Started", "Verdict", "Recovery", "RTO", "Evidence", "Folder"];
    table("drills", &[16, 10, 12, 8, 22, 32], heads, rows)
}
