//! `report.md`: the drill report an auditor reads. The verdict comes first, then who ran the
//! drill, when and where, what was restored onto what, how long each phase took (the measured
//! recovery time), and every check with what was expected against what was found.

mod results;
mod setup;
mod trend;

use results::{application, checks, evidence, migration, objectives, phases, restore, usage};
use setup::{backup, cloned, isolation, recovery, target};
use trend::since_previous;

use std::fmt::Write;

use tabled::builder::Builder;
use tabled::settings::Style;
use time::OffsetDateTime;

use crate::outcome::Verdict;
use crate::outcome::history::HistoryEntry;
use crate::outcome::{DrillRecord, DrillVerdict, PhaseStatus};
use crate::units::human_duration;

/// The raw HTML this renderer writes itself, which `report.html` keeps as HTML (every other
/// raw HTML in the Markdown is shown there as text): the line break in a table cell, and the
/// folds around the evidence and the application's output.
pub(crate) const BREAK: &str = "<br>";
pub(crate) const EVIDENCE_FOLD: &str = "<details><summary>Evidence: the query behind each check</summary>";
pub(crate) const OUTPUT_FOLD: &str = "<details><summary>Its last output</summary>";
pub(crate) const FOLD_END: &str = "</details>";

/// Each pipe escaped for a table row, with the backslashes right before it doubled: a table
/// row takes a pipe after any backslash as escaped, and the inline text then reads `a\\|b` as
/// an escaped backslash, so that `a\|b` escaped once would show as `a|b`.
fn escape_pipes(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut backslashes = 0;
    for c in text.chars() {
        if c == '\\' {
            backslashes += 1;
            continue;
        }
        let pipe = c == '|';
        out.push_str(&"\\".repeat(if pipe { backslashes * 2 + 1 } else { backslashes }));
        out.push(c);
        backslashes = 0;
    }
    out.push_str(&"\\".repeat(backslashes));
    out
}

/// A table cell: no pipes or newlines that would break the row.
fn cell(text: &str) -> String {
    escape_pipes(text).replace("\r\n", BREAK).replace(['\r', '\n'], BREAK)
}

/// `text` as a code span, whatever backticks it holds: fenced by one more backtick than its
/// longest run of them (and padded when it starts or ends with one), so that no name in it can
/// end the span early.
fn code(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let text = escape_pipes(&text.replace("\r\n", " ").replace(['\r', '\n'], " "));
    let ticks = "`".repeat(longest_run(&text, '`') + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// The longest run of `c` in `text`.
fn longest_run(text: &str, c: char) -> usize {
    text.split(|x| x != c).map(str::len).max().unwrap_or(0)
}

/// A fenced code block of `text` (its lines indented by `indent`), fenced by more backticks
/// than any run of them in `text`, so that no line of it ends the block early.
fn fenced(info: &str, text: &str, indent: &str) -> String {
    let fence = "`".repeat(longest_run(text, '`').max(2) + 1);
    let body = indented(text, indent);
    format!("{indent}{fence}{info}\n{indent}{body}\n{indent}{fence}")
}

/// `text`'s lines after the first indented by `indent`, whichever line ending each has (a lone
/// `\r` ends a Markdown line too): none of them can leave the block the first line opened.
fn indented(text: &str, indent: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n").replace('\n', &format!("\n{indent}"))
}

fn table(header: Option<&[&str]>, rows: Vec<Vec<String>>) -> String {
    let mut builder = Builder::default();
    match header {
        Some(h) => builder.push_record(h.iter().map(|s| s.to_string())),
        None => builder.push_record(["", ""].map(String::from)),
    }
    for row in rows {
        // A newline left in a cell would end the row.
        builder.push_record(row.into_iter().map(|c| c.replace("\r\n", BREAK).replace(['\r', '\n'], BREAK)));
    }
    let mut table = builder.build();
    table.with(Style::markdown());
    table.to_string()
}

fn stamp(t: &OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.format(&format).unwrap_or_default()
}

fn clock(t: &OffsetDateTime) -> String {
    let format = time::macros::format_description!("[hour]:[minute]:[second].[subsecond digits:3]");
    t.format(&format).unwrap_or_default()
}

fn verdict_badge(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅ pass",
        Verdict::Fail => "❌ fail",
        Verdict::Error => "❌ error",
        Verdict::Skipped => "⏭ skipped",
    }
}

fn phase_badge(status: PhaseStatus) -> &'static str {
    match status {
        PhaseStatus::Passed => "✅ passed",
        PhaseStatus::Failed => "❌ failed",
        PhaseStatus::Skipped => "⏭ skipped",
        PhaseStatus::Interrupted => "⛔ interrupted",
        PhaseStatus::Running => "… running",
    }
}

fn short_sha(sha: &str) -> String {
    sha.get(..12).unwrap_or(sha).to_owned()
}

/// `report.md` for `r`; `history` is the drills of the scenario before it (the trends).
pub fn render(r: &DrillRecord, history: &[HistoryEntry]) -> String {
    let mut out = String::new();
    headline(&mut out, r);
    objectives(&mut out, r);
    super::controls::render(&mut out, r);
    facts(&mut out, r);
    proves(&mut out, r);
    backup(&mut out, r);
    target(&mut out, r);
    cloned(&mut out, r);
    recovery(&mut out, r);
    isolation(&mut out, r);
    since_previous(&mut out, r, history.last());
    phases(&mut out, r);
    checks(&mut out, r);
    migration(&mut out, r);
    application(&mut out, r);
    restore(&mut out, r);
    usage(&mut out, r);
    evidence(&mut out, r);
    let _ = writeln!(
        out,
        "---\nWritten by pgdrill {}. The same drill is recorded in `drill.json` (machine-readable), `junit.xml` (for CI), `metrics.prom` (gauges for Prometheus: node_exporter's textfile collector, OpenMetrics) and `report.html` (this report as a web page, to read or print to PDF). `MANIFEST.sha256` holds the sha256 of every report file: `sha256sum -c MANIFEST.sha256` (or `pgdrill report verify` on this folder) confirms none was changed after the drill. Passwords, keys and tokens are never written to these reports.",
        r.runner.pgdrill_version
    );
    out
}

/// Whether and by which key the drill's evidence is signed, and how to verify it.
fn signed(s: &crate::outcome::SignatureInfo) -> String {
    match (&s.signed_by, &s.unsigned) {
        (Some(key), _) => format!(
            "by key {} ({}): `{}` and its signature `{}` (namespace `{}`); verify with `ssh-keygen -Y verify` or `pgdrill verify`",
            code(key),
            s.algorithm.as_deref().unwrap_or("ssh"),
            s.statement,
            s.signature.as_deref().unwrap_or_default(),
            s.namespace
        ),
        (None, why) => format!("**not signed**: {}", cell(why.as_deref().unwrap_or("no signing key"))),
    }
}

/// The title, the verdict in one sentence, and a warning when the drill trusted its backup.
fn headline(out: &mut String, r: &DrillRecord) {
    let (passed, not_passed) = r.check_counts();
    let total = passed + not_passed;
    let verdict = match r.verdict {
        DrillVerdict::Pass => "PASS",
        DrillVerdict::Fail => "FAIL",
        DrillVerdict::Interrupted => "INTERRUPTED",
        DrillVerdict::Running => "INCOMPLETE",
    };
    let _ = writeln!(out, "# Restore drill `{}`: {verdict}\n", r.scenario.name);

    let location = r.backup.as_ref().map(|b| b.location.as_str()).unwrap_or("(unknown)");
    let server = r
        .preflight
        .as_ref()
        .map(|p| p.server_version.clone())
        .or_else(|| r.target.as_ref().map(|t| t.server_version.clone()))
        .filter(|v| !v.is_empty());
    let headline = match r.verdict {
        DrillVerdict::Pass if total == 0 => format!(
            "**PASS.** The backup {} restored{}. {} Recovery took {}.",
            code(location),
            server.as_ref().map(|s| format!(" into PostgreSQL {s}")).unwrap_or_default(),
            crate::outcome::NO_CHECKS,
            r.recovery.map(human_duration).unwrap_or_else(|| "an unknown time".into()),
        ),
        DrillVerdict::Pass => format!(
            "**PASS.** The backup {} restored{} and {passed} of {total} checks passed. Recovery took {}.",
            code(location),
            server.as_ref().map(|s| format!(" into PostgreSQL {s}")).unwrap_or_default(),
            r.recovery.map(human_duration).unwrap_or_else(|| "an unknown time".into()),
        ),
        _ => format!("**{verdict}.** {}", r.failure.clone().unwrap_or_else(|| "the drill did not complete".into())),
    };
    let _ = writeln!(out, "> {}", indented(&headline, "> "));
    out.push('\n');
    if let Some(why) = &r.scenario.trusted {
        let target = match r.target.as_ref().and_then(|t| t.isolation.as_ref()) {
            Some(i) if !i.contained => format!(
                " The target was not a sandbox ({}): SQL in the backup ran with the powers of {}.",
                r.target.as_ref().map(|t| t.kind.as_str()).unwrap_or_default(),
                i.user
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "> ⚠️ **This drill trusted its backup**, because: {}.{target}\n",
            cell(why.trim_end_matches('.'))
        );
    }
}

/// What was drilled, by whom and when, and how long recovery took.
fn facts(out: &mut String, r: &DrillRecord) {
    let mut facts = vec![vec![
        "Scenario".into(),
        format!(
            "{}{} — file {} (sha256 {})",
            code(&r.scenario.name),
            r.scenario.description.as_ref().map(|d| format!(": {}", cell(d))).unwrap_or_default(),
            code(&r.scenario.file),
            code(&short_sha(&r.scenario.sha256)),
        ),
    ]];
    if !r.scenario.tags.is_empty() {
        facts.push(vec!["Tags".into(), r.scenario.tags.iter().map(|t| code(t)).collect::<Vec<_>>().join(", ")]);
    }
    facts.push(vec!["Drill id".into(), code(&r.drill_id)]);
    facts.push(vec![
        "Run by".into(),
        format!(
            "{} on {}, pgdrill {} ({}){}",
            code(&r.runner.user),
            code(&r.runner.host),
            r.runner.pgdrill_version,
            r.runner.os,
            r.runner.ci.as_ref().map(|c| format!(", {}", cell(c))).unwrap_or_default()
        ),
    ]);
    facts.push(vec![
        "Signed".into(),
        match &r.signature {
            Some(signature) => signed(signature),
            None => "**unsigned**: no signing key was given (`--signing-key`, or `PGDRILL_SIGNING_KEY`), so nothing but `MANIFEST.sha256` vouches for these files".into(),
        },
    ]);
    facts.push(vec!["Started".into(), stamp(&r.started_at)]);
    if let Some(finished) = &r.finished_at {
        facts.push(vec!["Finished".into(), format!("{} (took {})", stamp(finished), human_duration(r.duration))]);
    }
    facts.push(vec![
        "Recovery time".into(),
        match r.recovery {
            Some(d) => format!("{} (from the drill's start until the restored database was ready)", human_duration(d)),
            None => "not reached: the database was not restored".into(),
        },
    ]);
    out.push_str(&table(None, facts));
    out.push_str("\n\n");
}

/// What each kind of check proves, and how many of its checks passed.
fn proves(out: &mut String, r: &DrillRecord) {
    if !r.checks.is_empty() {
        out.push_str("## What this drill proves\n\n");
        let mut kinds = Vec::new();
        for c in &r.checks {
            if !kinds.contains(&c.kind) {
                kinds.push(c.kind);
            }
        }
        let rows = kinds
            .into_iter()
            .map(|kind| {
                let of_kind: Vec<_> = r.checks.iter().filter(|c| c.kind == kind).collect();
                let passed = of_kind.iter().filter(|c| c.verdict == Verdict::Pass).count();
                let badge = if passed == of_kind.len() { "✅" } else { "❌" };
                vec![
                    code(kind.as_str()),
                    kind.proves().to_owned(),
                    kind.does_not_prove().to_owned(),
                    format!("{badge} {passed} of {} passed", of_kind.len()),
                ]
            })
            .collect();
        out.push_str(&table(Some(&["Kind", "Proves that", "Does not prove", "Result"]), rows));
        out.push_str("\n\n");
    }
}

/// `text` with its first letter upper-case (a sentence made of a tally).
fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
