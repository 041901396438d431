//! `report.md`: the drill report an auditor reads. The verdict comes first, then who ran the
//! drill, when and where, what was restored onto what, how long each phase took (the measured
//! recovery time), and every check with what was expected against what was found.

use std::fmt::Write;

use tabled::builder::Builder;
use tabled::settings::Style;
use time::OffsetDateTime;

use super::history::HistoryEntry;
use crate::outcome::Verdict;
use crate::outcome::{DrillRecord, DrillVerdict, PhaseStatus};
use crate::units::human_duration;
use crate::units::human_size;

/// A table cell: no pipes or newlines that would break the row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace("\r\n", "<br>").replace('\n', "<br>")
}

fn code(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let ticks = if text.contains('`') { "``" } else { "`" };
    format!("{ticks}{}{ticks}", text.replace('|', "\\|").replace('\n', " "))
}

fn table(header: Option<&[&str]>, rows: Vec<Vec<String>>) -> String {
    let mut builder = Builder::default();
    match header {
        Some(h) => builder.push_record(h.iter().map(|s| s.to_string())),
        None => builder.push_record(["", ""].map(String::from)),
    }
    for row in rows {
        builder.push_record(row);
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

/// A database that is a clone of a snapshot: whose restore it is, so that the reader knows
/// which drill proved the restore and that this one proves the checks.
fn cloned(out: &mut String, r: &DrillRecord) {
    let Some(of) = &r.clone_of else { return };
    out.push_str(
        "## A clone, not a restore

",
    );
    let _ = writeln!(
        out,
        "This drill did not restore the backup: its database is a private copy-on-write clone of snapshot {}, the restore that drill {} made of the same backup (sha256 {}) on the same image with the same options, and which passed, at {}. That drill's report proves the restore and the recovery time; this one proves the checks below on a copy of it. The RTO is not judged here.\n",
        code(&of.snapshot),
        code(&of.drill_id),
        code(&short_sha(&of.backup_sha256)),
        stamp(&of.made_at),
    );
    let mut rows = vec![
        vec!["That drill's report".into(), cell(&of.report)],
        vec!["Data checksums when the snapshot was made".into(), cell(&of.checksums)],
    ];
    if let Some(layer) = r.target.as_ref().and_then(|t| t.data_layer.as_deref()) {
        rows.push(vec!["How the clone was made".into(), cell(layer)]);
    }
    if let Some(bytes) = of.layer_bytes {
        rows.push(vec!["Disk the clone's own layer took".into(), human_size(bytes)]);
    }
    out.push_str(&table(None, rows));
    out.push_str("\n\n");
}

/// A physical backup's recovery: the target asked for, the point reached, the WAL replayed.
fn recovery(out: &mut String, r: &DrillRecord) {
    let Some(rec) = r.restore.as_ref().and_then(|s| s.recovery.as_ref()) else { return };
    out.push_str("## Recovery\n\n");
    let rows = vec![
        vec!["Target asked for".into(), cell(&rec.target)],
        // What the server's log says it stopped at, never the target merely asked for.
        vec!["Point reached".into(), format!("{}; WAL replayed to {}", cell(&rec.point()), code(&rec.end_lsn))],
        vec![
            "Consistent from".into(),
            rec.reached
                .as_ref()
                .and_then(|r| r.consistent_at.as_deref())
                .map(|lsn| format!("WAL location {} (the base backup's end)", code(lsn)))
                .unwrap_or_else(|| "not in the server's log".into()),
        ],
        vec![
            "WAL replayed".into(),
            format!(
                "{} from {} ({} segment{} of the {} archived) in {}",
                human_size(rec.wal_bytes),
                code(&rec.start_lsn),
                rec.segments_replayed,
                if rec.segments_replayed == 1 { "" } else { "s" },
                rec.segments_available,
                human_duration(rec.took)
            ),
        ],
        vec!["New timeline".into(), format!("{} (the server was promoted)", rec.timeline)],
    ];
    out.push_str(&table(None, rows));
    out.push_str("\n\n");
}

/// How the target was isolated from the machine that ran the drill (DORA art. 12(3) asks that
/// restore tests run on systems segregated from the source).
fn isolation(out: &mut String, r: &DrillRecord) {
    let Some(i) = r.target.as_ref().and_then(|t| t.isolation.as_ref()) else { return };
    out.push_str("## Isolation\n\n");
    let verdict = match (i.contained, i.observed.is_some()) {
        (true, true) => "✅ a sandbox: SQL in the backup could reach nothing beyond the target",
        (true, false) => "✅ an existing server, restored into by a role with no power over its machine",
        (false, _) => "⚠️ not a sandbox: the drill ran because the scenario trusts its backup",
    };
    let mut rows = vec![
        vec!["Held".into(), verdict.into()],
        vec!["Network".into(), cell(&i.network)],
        vec!["User".into(), cell(&i.user)],
        vec!["Capabilities".into(), cell(&i.capabilities)],
        vec!["File system".into(), cell(&i.filesystem)],
        vec!["Programs".into(), cell(&i.programs)],
        vec!["Limits".into(), cell(&i.limits)],
    ];
    if let Some(seen) = &i.observed {
        rows.push(vec!["Seen from inside".into(), code(&seen.summary())]);
    }
    if let Some(target) = r.target.as_ref().filter(|t| !t.session.is_empty()) {
        rows.push(vec!["pgdrill's sessions".into(), cell(&crate::session::summary(&target.session))]);
    }
    out.push_str(&table(None, rows));
    out.push_str("\n\n");
}

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
    let _ = writeln!(
        out,
        "---\nWritten by pgdrill {}. The same drill is recorded in `drill.json` (machine-readable), `junit.xml` (for CI) and `metrics.prom` (gauges for Prometheus: node_exporter's textfile collector, OpenMetrics). `MANIFEST.sha256` holds the sha256 of every report file: `sha256sum -c MANIFEST.sha256` (or `pgdrill report verify` on this folder) confirms none was changed after the drill. Passwords, keys and tokens are never written to these reports.",
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
    for line in headline.lines() {
        let _ = writeln!(out, "> {line}");
    }
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
    if let Some(signature) = &r.signature {
        facts.push(vec!["Signed".into(), signed(signature)]);
    }
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
        let mut kinds: Vec<&str> = Vec::new();
        for c in &r.checks {
            if !kinds.contains(&c.kind.as_str()) {
                kinds.push(&c.kind);
            }
        }
        let rows = kinds
            .into_iter()
            .map(|kind| {
                let of_kind: Vec<_> = r.checks.iter().filter(|c| c.kind == kind).collect();
                let passed = of_kind.iter().filter(|c| c.verdict == Verdict::Pass).count();
                let badge = if passed == of_kind.len() { "✅" } else { "❌" };
                vec![
                    code(kind),
                    crate::check::purpose(kind)
                        .or((kind == crate::app::request::KIND).then_some(crate::app::request::PROVES))
                        .or((kind == crate::objectives::KIND).then_some(crate::objectives::PROVES))
                        .unwrap_or_default()
                        .to_owned(),
                    format!("{badge} {passed} of {} passed", of_kind.len()),
                ]
            })
            .collect();
        out.push_str(&table(Some(&["Kind", "Proves that", "Result"]), rows));
        out.push_str("\n\n");
    }
}

/// The backup: where, how big, its checksum, format and the server it came from.
fn backup(out: &mut String, r: &DrillRecord) {
    out.push_str("## Backup\n\n");
    match &r.backup {
        Some(b) => {
            let mut rows = vec![vec!["Location".into(), code(&b.location)]];
            let mut size = format!("{} ({} bytes)", human_size(b.size_bytes), b.size_bytes);
            if b.uncompressed_bytes > 0 && b.compression != "none" {
                size.push_str(&format!(", {} uncompressed", human_size(b.uncompressed_bytes)));
            }
            rows.push(vec!["Size".into(), size]);
            let physical = b.format.starts_with("base backup") || b.format.starts_with("pgBackRest set");
            rows.push(vec![
                "sha256".into(),
                match (b.sha256.is_empty(), physical) {
                    (false, _) => code(&b.sha256),
                    (true, true) => "a folder, not one file: each file is checked against its manifest's checksums (pg_verifybackup, or pgBackRest as it restores), each WAL segment against the backup's system and place".into(),
                    (true, false) => "not computed: the backup did not read to its end".into(),
                },
            ]);
            if let Some(m) = &b.modified {
                rows.push(vec!["Modified".into(), stamp(m)]);
            }
            if !b.format.is_empty() {
                rows.push(vec!["Format".into(), format!("{} ({} compression)", b.format, b.compression)]);
            }
            if let Some(envelope) = &b.encryption {
                let keys: Vec<String> = b.keys.iter().map(|k| cell(k)).collect();
                let proven =
                    format!("{}; decrypted as read, each key proven to open it: {}", cell(envelope), keys.join("; "));
                rows.push(vec!["Encryption".into(), proven]);
            }
            rows.push(vec![
                if physical { "Taken from" } else { "Dumped from" }.into(),
                b.source_version
                    .as_ref()
                    .map(|v| format!("PostgreSQL {}", cell(v)))
                    .unwrap_or_else(|| "unknown".into()),
            ]);
            if !physical {
                rows.push(vec![
                    "Dumped by".into(),
                    b.dumped_by.as_deref().map(cell).unwrap_or_else(|| "unknown".into()),
                ]);
            }
            if let (Some(at), Some(from)) = (&b.taken_at, &b.taken_at_from) {
                rows.push(vec!["Data as of".into(), format!("{} ({})", stamp(at), cell(from))]);
            }
            out.push_str(&table(None, rows));
        }
        None => out.push_str("The backup was not located."),
    }
    out.push_str("\n\n");
}

/// The throwaway target: kind, image, server, extensions, roles, settings, and whether it was kept.
fn target(out: &mut String, r: &DrillRecord) {
    out.push_str("## Target\n\n");
    match &r.target {
        Some(t) => {
            let mut rows = vec![vec![
                "Kind".into(),
                format!(
                    "{}{}{}",
                    t.kind,
                    t.container.as_ref().map(|c| format!(" {}", code(c))).unwrap_or_default(),
                    t.image.as_ref().map(|i| format!(", image {}", code(i))).unwrap_or_default()
                ),
            ]];
            if let Some(p) = &t.image_packages {
                rows.push(vec!["Image packages".into(), code(p)]);
            }
            if let Some(p) = &r.preflight {
                rows.push(vec!["PostgreSQL".into(), cell(&p.server_version)]);
                if !p.extensions.is_empty() {
                    let list: Vec<String> = p.extensions.iter().map(|(n, v)| format!("{n} {v}")).collect();
                    rows.push(vec!["Extensions needed (available)".into(), list.join(", ")]);
                }
                if !p.roles_created.is_empty() {
                    rows.push(vec![
                        "Roles created before the restore".into(),
                        p.roles_created.iter().map(|r| code(r)).collect::<Vec<_>>().join(", "),
                    ]);
                }
            }
            rows.push(vec!["Address".into(), code(&t.address)]);
            if !t.settings.is_empty() {
                let list: Vec<String> = t.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                rows.push(vec!["Throwaway settings".into(), code(&list.join(" "))]);
            }
            if let Some(k) = &r.kept {
                rows.push(vec![
                    "Kept after the drill".into(),
                    format!(
                        "yes: target {}{} with database {}, still running for someone to look into (`pgdrill clean {}` removes it); how to log in is in a file only its user can read, on the machine that ran the drill, never in these reports",
                        code(&k.name),
                        k.container.as_ref().map(|c| format!(" (container {})", code(c))).unwrap_or_default(),
                        code(&k.database),
                        cell(&k.name)
                    ),
                ]);
            }
            out.push_str(&table(None, rows));
        }
        None => out.push_str("No target was provisioned."),
    }
    out.push_str("\n\n");
}

/// Each phase: its status, when it started, how long it took, what it found.
fn phases(out: &mut String, r: &DrillRecord) {
    out.push_str("## Phases\n\n");
    let rows = r
        .phases
        .iter()
        .map(|p| {
            let details = match (&p.error, p.summary.is_empty()) {
                (Some(e), _) => cell(e),
                (None, false) => cell(&p.summary),
                (None, true) => String::new(),
            };
            vec![
                format!("{} — {}", p.phase, p.phase.purpose()),
                phase_badge(p.status).into(),
                p.started_at.as_ref().map(clock).unwrap_or_default(),
                if p.started_at.is_some() { human_duration(p.duration) } else { String::new() },
                details,
            ]
        })
        .collect();
    out.push_str(&table(Some(&["Phase", "Status", "Started (UTC)", "Duration", "Details"]), rows));
    out.push_str("\n\n![The drill's phases on a time line](timeline.svg)\n\n");
}

/// Each check's verdict, the ones that did not pass with their evidence, and the query behind each.
fn checks(out: &mut String, r: &DrillRecord) {
    out.push_str("## Checks\n\n");
    if r.checks.is_empty() {
        let _ = writeln!(out, "No checks were configured or run. {}\n", crate::outcome::NO_CHECKS);
    } else {
        let _ = writeln!(out, "{}.\n", upper_first(&r.checks_tally()));
        let rows = r
            .checks
            .iter()
            .map(|c| vec![code(&c.id), cell(&c.expected), cell(&c.actual), verdict_badge(c.verdict).into()])
            .collect();
        out.push_str(&table(Some(&["Check", "Expected", "Actual", "Verdict"]), rows));
        out.push_str("\n\n");
        let failures: Vec<_> = r.checks.iter().filter(|c| c.verdict != Verdict::Pass).collect();
        if !failures.is_empty() {
            out.push_str("### Checks that did not pass\n\n");
            for c in failures {
                let _ = writeln!(out, "- **{}** ({}): {}", c.id, c.verdict, c.message);
                if !c.evidence.is_empty() {
                    let _ = writeln!(out, "\n  ```sql\n  {}\n  ```\n", c.evidence.replace('\n', "\n  "));
                }
            }
            out.push('\n');
        }
        out.push_str("<details><summary>Evidence: the query behind each check</summary>\n\n");
        let rows = r.checks.iter().map(|c| vec![code(&c.id), code(&c.evidence), human_duration(c.duration)]).collect();
        out.push_str(&table(Some(&["Check", "SQL", "Took"]), rows));
        out.push_str("\n\n</details>\n\n");
    }
}

/// The pending migrations a pre-migration safety check applied.
fn migration(out: &mut String, r: &DrillRecord) {
    if let Some(m) = &r.migrate {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        let _ = writeln!(
            out,
            "## Migration\n\nA pre-migration safety check: after the restore, the journal went from version {} to {}.\n",
            code(&show(&m.version_before)),
            code(&show(&m.version_after))
        );
        if !m.applied.is_empty() {
            let _ = writeln!(
                out,
                "Applied, in order: {}.\n",
                m.applied.iter().map(|a| code(a)).collect::<Vec<_>>().join(", ")
            );
        }
    }
}

/// The application booted against the restored database, and its last output.
fn application(out: &mut String, r: &DrillRecord) {
    if let Some(app) = &r.app {
        let failed = r.phase(crate::outcome::Phase::App).is_some_and(|p| p.status != PhaseStatus::Passed);
        let _ = writeln!(
            out,
            "## Application\n\n{} was booted against the restored database at {}.\n",
            code(&app.launched),
            code(&app.url)
        );
        if !app.output_tail.is_empty() {
            let (open, close) =
                if failed { ("", "") } else { ("<details><summary>Its last output</summary>\n\n", "\n</details>\n") };
            if failed {
                out.push_str("Its last output:\n\n");
            }
            let _ = writeln!(out, "{open}```text\n{}\n```\n{close}", app.output_tail.join("\n"));
        }
    }
}

/// What the restore wrote, and the catalog audit's finding.
fn restore(out: &mut String, r: &DrillRecord) {
    if let Some(stats) = &r.restore {
        let _ = writeln!(
            out,
            "## Restore\n\n{} statements and {} COPY blocks ({} rows, {}) restored into database {}{}.\n",
            stats.statements,
            stats.copy_blocks,
            stats.rows,
            human_size(stats.bytes),
            code(&stats.database),
            if stats.jobs > 1 { format!(" on {} connections side by side", stats.jobs) } else { String::new() }
        );
        if let Some(audit) = &stats.catalog {
            let list: Vec<String> = audit.databases.iter().map(|d| code(d)).collect();
            let _ = writeln!(
                out,
                "Catalog audit: ✅ PostgreSQL's built-ins are as in {}: {} built-in catalog rows (functions, operators, casts, types, access methods, views' rules, ...) compared in {}, and nothing that could stand in for one added. pgdrill's own queries read what they say.\n",
                audit.reference,
                audit.rows,
                list.join(" and ")
            );
        }
    }
}

/// The CPU and memory pgdrill itself used.
fn usage(out: &mut String, r: &DrillRecord) {
    if let Some(usage) = &r.usage {
        let share = if r.duration.is_zero() {
            String::new()
        } else {
            format!(
                " ({:.1}% of the drill's {:.1} s)",
                usage.cpu_ms as f64 / r.duration.as_millis() as f64 * 100.0,
                r.duration.as_secs_f64()
            )
        };
        let _ = writeln!(
            out,
            "pgdrill itself used {:.2} s of CPU{share} and at most {} of memory.\n",
            usage.cpu_ms as f64 / 1000.0,
            human_size(usage.peak_rss_bytes)
        );
    }
}

/// How this drill compares with the previous one of the same scenario.
fn since_previous(out: &mut String, r: &DrillRecord, previous: Option<&HistoryEntry>) {
    out.push_str("## Since the previous drill\n\n");
    let Some(p) = previous else {
        out.push_str("This is the first drill of this scenario in this report folder.\n\n");
        return;
    };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let _ = writeln!(
        out,
        "The previous drill ran {} (`{}`) and {}.\n",
        p.started_at.format(&format).unwrap_or_default(),
        p.drill_id,
        if p.verdict == "pass" { "passed" } else { "did not pass" }
    );
    let ms = |v: u64| human_duration(std::time::Duration::from_millis(v));
    let change = |now: i128, before: i128, unit: &dyn Fn(u64) -> String| {
        let diff = now - before;
        match diff.cmp(&0) {
            std::cmp::Ordering::Equal => "same".to_owned(),
            std::cmp::Ordering::Greater => format!("+{}", unit(diff as u64)),
            std::cmp::Ordering::Less => format!("-{}", unit((-diff) as u64)),
        }
    };
    let count = |v: u64| v.to_string();
    let mut rows = vec![vec![
        "Duration".to_owned(),
        ms(p.duration_ms),
        human_duration(r.duration),
        change(r.duration.as_millis() as i128, p.duration_ms as i128, &ms),
    ]];
    if let (Some(before), Some(now)) = (p.recovery_ms, r.recovery) {
        rows.push(vec![
            "Recovery time".into(),
            ms(before),
            human_duration(now),
            change(now.as_millis() as i128, before as i128, &ms),
        ]);
    }
    if let (Some(before), Some(now)) = (p.rows_restored, r.restore.as_ref().map(|s| s.rows)) {
        rows.push(vec![
            "Rows restored".into(),
            before.to_string(),
            now.to_string(),
            change(now as i128, before as i128, &count),
        ]);
    }
    if let Some(b) = &r.backup {
        rows.push(vec![
            "Backup size".into(),
            human_size(p.backup_size),
            human_size(b.size_bytes),
            change(b.size_bytes as i128, p.backup_size as i128, &|v| human_size(v)),
        ]);
    }
    let (passed, not) = r.check_counts();
    rows.push(vec![
        "Checks passed".into(),
        format!("{} of {}", p.checks_passed, p.checks_total),
        format!("{passed} of {}", passed + not),
        change(passed as i128, p.checks_passed as i128, &count),
    ]);
    out.push_str(&table(Some(&["", "Previous", "This drill", "Change"]), rows));
    out.push_str("\n\n");
    let now_failing: Vec<&str> =
        r.checks.iter().filter(|c| c.verdict != Verdict::Pass).map(|c| c.id.as_str()).collect();
    let newly: Vec<&str> = now_failing.iter().copied().filter(|id| !p.not_passed.iter().any(|x| x == id)).collect();
    let fixed: Vec<&str> = p.not_passed.iter().map(String::as_str).filter(|id| !now_failing.contains(id)).collect();
    if !newly.is_empty() {
        let _ = writeln!(out, "Newly not passing: {}.\n", newly.iter().map(|i| code(i)).collect::<Vec<_>>().join(", "));
    }
    if !fixed.is_empty() {
        let _ = writeln!(out, "Passing again: {}.\n", fixed.iter().map(|i| code(i)).collect::<Vec<_>>().join(", "));
    }
    if p.scenario_sha256 != r.scenario.sha256 {
        let short = |sha: &str| sha.get(..12).unwrap_or(sha).to_owned();
        let _ = writeln!(
            out,
            "The scenario file changed since the previous drill (sha256 `{}…` then, `{}…` now): the two drills may not check the same things.\n",
            short(&p.scenario_sha256),
            short(&r.scenario.sha256)
        );
    }
    if !p.backup_sha256.is_empty() && r.backup.as_ref().is_some_and(|b| b.sha256 == p.backup_sha256) {
        out.push_str("The backup is the same file as last time (same sha256): no newer backup was drilled.\n\n");
    }
    out.push_str("![Recovery time over past drills](recovery.svg)\n\n");
    out.push_str("![Age of the backup drilled, over past drills](backup-age.svg)\n\n");
}

/// The objectives the business set, each measured against its line, right under the verdict.
fn objectives(out: &mut String, r: &DrillRecord) {
    let set = &r.scenario.objectives;
    let rows: Vec<Vec<String>> = [("rto", "RTO: recovery time", set.rto), ("rpo", "RPO: backup age", set.rpo)]
        .into_iter()
        .filter_map(|(object, name, limit)| {
            let limit = limit?;
            let result = r.checks.iter().find(|c| c.kind == crate::objectives::KIND && c.object == object);
            let (measured, verdict) = match result {
                Some(c) if c.actual.is_empty() => (cell(&c.message), objective_badge(c.verdict)),
                Some(c) => {
                    let from = r.backup.as_ref().and_then(|b| b.taken_at_from.as_deref()).filter(|_| object == "rpo");
                    (
                        format!(
                            "{}{}",
                            cell(&c.actual),
                            from.map(|f| format!(" (from {})", cell(f))).unwrap_or_default()
                        ),
                        objective_badge(c.verdict),
                    )
                }
                None if object == "rto" && r.clone_of.is_some() => (
                    "not judged here: the database is a clone, and the drill that restored it was judged".into(),
                    objective_badge(Verdict::Skipped),
                ),
                None => ("not measured".into(), objective_badge(Verdict::Skipped)),
            };
            Some(vec![name.into(), crate::objectives::span(limit), measured, verdict.into()])
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str(&table(Some(&["Objective", "Set", "Measured", "Verdict"]), rows));
    out.push_str("\n\n");
}

fn objective_badge(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅ met",
        Verdict::Fail => "❌ missed",
        Verdict::Error => "⚠️ unknown",
        Verdict::Skipped => "⏭ not measured",
    }
}

/// `text` with its first letter upper-case (a sentence made of a tally).
fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
