//! What was drilled, onto what: the backup, the target and its sandbox, the recovery, and the
//! snapshot a clone came from.

use std::fmt::Write;

use super::{cell, code, short_sha, stamp, table};
use crate::outcome::DrillRecord;
use crate::units::{human_duration, human_size};

/// A database that is a clone of a snapshot: whose restore it is, so that the reader knows
/// which drill proved the restore and that this one proves the checks.
pub(super) fn cloned(out: &mut String, r: &DrillRecord) {
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
pub(super) fn recovery(out: &mut String, r: &DrillRecord) {
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
pub(super) fn isolation(out: &mut String, r: &DrillRecord) {
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
        rows.push(vec!["pgdrill's sessions".into(), cell(&target.session_summary())]);
    }
    out.push_str(&table(None, rows));
    out.push_str("\n\n");
}

/// The backup: where, how big, its checksum, format and the server it came from.
pub(super) fn backup(out: &mut String, r: &DrillRecord) {
    out.push_str("## Backup\n\n");
    match &r.backup {
        Some(b) => {
            let mut rows = vec![vec!["Location".into(), code(&b.location)]];
            if let Some(plan) = &r.sample {
                rows.push(vec![
                    "Sampled".into(),
                    format!(
                        "drawn from the {} backups at most {} older than the newest, {} (their list, the seed and the draw in `plan.json`: `pgdrill verify` re-derives it); not the newest, so its age is not judged against the RPO",
                        plan.candidates.len(),
                        cell(&plan.within),
                        code(&plan.newest.name)
                    ),
                ]);
            }
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
pub(super) fn target(out: &mut String, r: &DrillRecord) {
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
