//! `fleet.html`: one self-contained page (inline styles and SVG, no script, a CSP that allows
//! nothing else) that prints on A4. Everything taken from drill records is escaped: it comes
//! from the backup's world.

use std::fmt::Write;

use super::matrix;
use super::state::span;
use super::{Drill, Fleet, State, Subject, chart};
use crate::report::fleet::Evidence;
use crate::units::human_duration;

/// Text made safe for HTML, in an element or a quoted attribute: as report.html escapes it.
pub(super) use crate::report::html::escape as esc;

const STYLE: &str = "\
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
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Restore drills of the fleet</title>\n<style>\n",
    );
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n");
    header(&mut out, fleet);
    overview(&mut out, fleet);
    if fleet.inventory.is_some() {
        gaps(&mut out, fleet);
    }
    controls(&mut out, fleet);
    out.push_str("<h2>Each database</h2>\n");
    for subject in &fleet.subjects {
        database(&mut out, fleet, subject);
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn when(at: Option<time::OffsetDateTime>) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok()).unwrap_or_else(|| "unknown".into())
}

fn header(out: &mut String, fleet: &Fleet) {
    out.push_str("<header>\n<h1>Restore drills of the fleet</h1>\n<dl>\n");
    let _ = writeln!(out, "<dt>As of</dt><dd>{}</dd>", when(Some(fleet.now)));
    let inputs: Vec<String> = fleet.inputs.iter().map(|i| format!("<code>{}</code>", esc(i))).collect();
    let _ = writeln!(out, "<dt>Read from</dt><dd>{}</dd>", inputs.join(", "));
    let evidence = match (&fleet.allowed_signers, fleet.unsigned_ok) {
        (Some(file), _) => {
            format!("verified against the allowed signers <code>{}</code>", esc(&file.display().to_string()))
        }
        (None, true) => "<span class=\"meh\">not checked against allowed signers (--unsigned-ok)</span>".into(),
        (None, false) => "<span class=\"bad\">not checked: no allowed signers were given</span>".into(),
    };
    let _ = writeln!(out, "<dt>Evidence</dt><dd>{evidence}</dd>");
    if let Some(inventory) = &fleet.inventory {
        let _ = writeln!(out, "<dt>Inventory</dt><dd><code>{}</code></dd>", esc(&inventory.display().to_string()));
    }
    let max_age = fleet.max_age.map_or("none given (each database's own, else its RPO)".into(), span);
    let _ = writeln!(out, "<dt>Max age</dt><dd>{}</dd>\n</dl>", esc(&max_age));
    out.push_str("<div class=\"summary\">");
    let _ = write!(out, "<div><b>{}</b>databases</div>", fleet.subjects.len());
    for state in State::ALL {
        let count = fleet.count(state);
        let class = if count == 0 { "" } else { state_class(state) };
        let _ = write!(out, "<div class=\"tile {class}\"><b>{count}</b>{}</div>", state.as_str());
    }
    if fleet.inventory.is_some() {
        let _ = write!(out, "<div><b>{}</b>gaps</div>", fleet.gaps().len());
    }
    out.push_str("</div>\n</header>\n");
}

fn badge(state: State) -> String {
    format!("<span class=\"badge {}\">{}</span>", state_class(state), state.as_str())
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

fn verdict(drill: &Drill) -> String {
    format!("<span class=\"badge {0}\">{0}</span>", esc(&drill.verdict))
}

/// Whether a drill's evidence is signed and verifies, in a few words.
pub(super) fn evidence(e: &Evidence) -> String {
    match e {
        Evidence::Verified { principals, .. } => {
            format!("<span class=\"ok\">✓ signed, verifies</span> ({})", esc(principals))
        }
        Evidence::Unchecked { files_match: true, key: Some(key) } => {
            format!("<span class=\"meh\">signed, not checked</span> <span class=\"path\">{}</span>", esc(key))
        }
        Evidence::Unchecked { files_match: true, key: None } => {
            "<span class=\"meh\">unsigned, not checked</span>".into()
        }
        Evidence::Unchecked { files_match: false, .. } => {
            "<span class=\"bad\">✗ files do not match their digests</span>".into()
        }
        Evidence::Missing => "<span class=\"bad\">✗ no evidence</span>".into(),
        Evidence::Unsigned => "<span class=\"bad\">✗ unsigned</span>".into(),
        Evidence::DoesNotVerify { .. } => "<span class=\"bad\">✗ does not verify</span>".into(),
    }
}

fn age_line(subject: &Subject) -> String {
    let Some(age) = subject.age else { return "no passing drill".into() };
    let age = format!("last pass {} ago", span(age));
    let max =
        subject.rule.max().map_or("no max age".into(), |m| format!("max {} ({})", span(m), subject.rule.source()));
    format!("{age}; {max}")
}

fn overview(out: &mut String, fleet: &Fleet) {
    out.push_str(
        "<h2>Databases</h2>\n<table class=\"overview\">\n<colgroup><col style=\"width:16%\"><col style=\"width:16%\">\
         <col style=\"width:21%\"><col style=\"width:10%\"><col style=\"width:17%\"><col style=\"width:20%\"></colgroup>\n\
         <thead><tr><th>Database</th><th>State</th><th>Last drill</th><th>Verdict</th><th>Evidence</th><th>Failing checks</th></tr></thead>\n<tbody>\n",
    );
    for s in &fleet.subjects {
        let listed =
            s.listed.as_ref().map_or("<span class=\"path\">not in the inventory</span>".to_owned(), |(by, _)| {
                format!("<span class=\"path\">{}</span>", esc(by))
            });
        let (last, verdict_cell, evidence_cell, failing) = match s.last() {
            None => {
                ("<span class=\"bad\">no drill found</span>".to_owned(), "-".to_owned(), "-".to_owned(), "-".into())
            }
            Some(d) => (
                format!("{}<span class=\"path\">{}</span>", when(d.started_at), esc(&d.shown)),
                verdict(d),
                evidence(&d.evidence),
                failing_list(d),
            ),
        };
        let _ = writeln!(
            out,
            "<tr><td><b>{}</b>{listed}</td><td>{}<span class=\"state-note\">{}</span></td><td>{last}</td><td>{verdict_cell}</td><td>{evidence_cell}</td><td>{failing}</td></tr>",
            esc(&s.name),
            badge(s.state),
            esc(&age_line(s)),
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn failing_list(drill: &Drill) -> String {
    match (drill.failing.is_empty(), &drill.failure) {
        (true, None) => "none".into(),
        (true, Some(why)) => esc(why),
        (false, _) => {
            let items: Vec<String> =
                drill.failing.iter().map(|(id, _)| format!("<li><code>{}</code></li>", esc(id))).collect();
            format!("<ul>{}</ul>", items.concat())
        }
    }
}

fn gaps(out: &mut String, fleet: &Fleet) {
    let gaps = fleet.gaps();
    out.push_str("<h2>What the evidence gate finds missing</h2>\n");
    if gaps.is_empty() {
        out.push_str("<p class=\"ok\">Nothing: every database the inventory lists has a passing, recent drill whose evidence holds.</p>\n");
        return;
    }
    out.push_str("<ul class=\"gaps\">\n");
    for (subject, gap) in gaps {
        let _ = writeln!(out, "<li><b>{}</b>: {}</li>", esc(&subject.name), esc(&gap.describe()));
    }
    out.push_str("</ul>\n");
}

fn controls(out: &mut String, fleet: &Fleet) {
    out.push_str(
        "<section class=\"matrix\">\n<h2>Controls matrix</h2>\n<p class=\"muted\">What each database's last drill evidences of each control \
         (✓ met, ◐ partly, ✗ not).</p>\n<table class=\"matrix\">\n<colgroup><col style=\"width:20%\"></colgroup>\n<thead><tr><th>Database</th>",
    );
    for short in matrix::SHORT {
        let _ = write!(out, "<th>{short}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for s in &fleet.subjects {
        let _ = write!(out, "<tr><td><b>{}</b></td>", esc(&s.name));
        for (met, why) in matrix::row(s) {
            let _ = write!(out, "<td class=\"{}\">{} {}</td>", met.class(), met.mark(), esc(&why));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n<ul class=\"muted\">\n");
    for (name, asks) in matrix::controls() {
        let _ = writeln!(out, "<li><b>{name}</b>: {asks}</li>");
    }
    out.push_str("</ul>\n</section>\n");
}

fn database(out: &mut String, fleet: &Fleet, s: &Subject) {
    let _ = writeln!(out, "<section class=\"db\">\n<h3>{} {}</h3>\n<dl>", esc(&s.name), badge(s.state));
    if let Some((by, at)) = &s.listed {
        let _ = writeln!(out, "<dt>Listed</dt><dd>by {} ({})</dd>", esc(by), esc(at));
    }
    let age = s.age.map_or("none: no drill of it passed".into(), |a| format!("{} ago", span(a)));
    let _ = writeln!(out, "<dt>Last pass</dt><dd>{}</dd>", esc(&age));
    let _ = writeln!(out, "<dt>Max age</dt><dd>{}</dd>", esc(&s.rule.describe()));
    if let Some(last) = s.last() {
        let _ = writeln!(
            out,
            "<dt>Last drill</dt><dd>{} {}<span class=\"path\">{}</span></dd>",
            verdict(last),
            when(last.started_at),
            esc(&last.shown)
        );
        if let Some(backup) = &last.backup {
            let _ = writeln!(out, "<dt>Backup</dt><dd><code>{}</code></dd>", esc(backup));
        }
        let _ = writeln!(
            out,
            "<dt>Evidence</dt><dd>{}<br><span class=\"muted\">{}</span></dd>",
            evidence(&last.evidence),
            esc(&last.evidence.describe())
        );
    }
    out.push_str("</dl>\n");
    if fleet.inventory.is_some() && s.listed.is_some() {
        for gap in &s.gaps {
            let _ = writeln!(out, "<p class=\"bad\">Gap: {}</p>", esc(&gap.describe()));
        }
    }
    if let Some(last) = s.last().filter(|d| !d.failing.is_empty()) {
        out.push_str("<p><b>Failing checks of its last drill</b></p>\n<ul>\n");
        for (id, message) in &last.failing {
            let _ = writeln!(out, "<li><code>{}</code>: {}</li>", esc(id), esc(message));
        }
        out.push_str("</ul>\n");
    }
    match chart::recovery(s) {
        Some(svg) => out.push_str(&svg),
        None => out.push_str("<p class=\"muted\">No complete drill to chart.</p>\n"),
    }
    drills(out, s);
    out.push_str("</section>\n");
}

fn drills(out: &mut String, s: &Subject) {
    if s.drills.is_empty() {
        out.push_str("<p class=\"bad\">No drill of it was found.</p>\n");
        return;
    }
    out.push_str(
        "<table class=\"drills\">\n<colgroup><col style=\"width:16%\"><col style=\"width:10%\"><col style=\"width:12%\">\
         <col style=\"width:8%\"><col style=\"width:22%\"><col style=\"width:32%\"></colgroup>\n\
         <thead><tr><th>Started</th><th>Verdict</th><th>Recovery</th><th>RTO</th><th>Evidence</th><th>Folder</th></tr></thead>\n<tbody>\n",
    );
    for d in s.drills.iter().rev() {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"path\">{}</span></td></tr>",
            when(d.started_at),
            verdict(d),
            d.recovery.map_or("-".into(), human_duration),
            d.rto.map_or("-".into(), span),
            evidence(&d.evidence),
            esc(&d.shown)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}
