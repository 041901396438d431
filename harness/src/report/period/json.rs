//! `period.json`: the period report for tools (`pgdrill.period.v1`): every database with its
//! counts, windows, drills and exceptions, each exception with the acknowledgements resolving it.

use serde::Serialize;
use serde_json::{Value, json};

use super::exceptions::Exception;
use super::{Database, Period, PeriodDrill};
use crate::evidence::ack::Ack;

/// The schema's name; a field removed or changed in meaning makes it `v2`.
pub(crate) const SCHEMA: &str = "pgdrill.period.v1";

pub(super) fn time(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn seconds(d: Option<std::time::Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64()))
}

/// The whole file.
pub(crate) fn document(period: &Period) -> Value {
    let (exceptions, resolved) = period.exception_counts();
    json!({
        "schema": SCHEMA,
        "from": time(period.from),
        "to": time(period.to),
        "judged_at": time(period.now),
        "pgdrill_version": env!("CARGO_PKG_VERSION"),
        "inputs": period.inputs,
        "inventory": period.inventory.display().to_string(),
        "allowed_signers": period.allowed_signers.as_ref().map(|p| p.display().to_string()),
        "unsigned_ok": period.unsigned_ok,
        "summary": {
            "databases": period.databases.len(),
            "expected": period.databases.iter().map(Database::expected).sum::<usize>(),
            "run": period.databases.iter().map(|d| d.drills.len()).sum::<usize>(),
            "passed": period.databases.iter().map(Database::passed).sum::<usize>(),
            "sampled": period.databases.iter().map(Database::sampled).sum::<usize>(),
            "missed": period.databases.iter().map(|d| d.count(super::windows::WindowState::Missed)).sum::<usize>(),
            "exceptions": exceptions,
            "resolved": resolved,
            "unresolved": exceptions - resolved,
        },
        "databases": period.databases.iter().map(database).collect::<Vec<_>>(),
        "unlisted": period.unlisted,
    })
}

fn database(db: &Database) -> Value {
    json!({
        "name": db.name,
        "listed": { "by": db.listed.0, "at": db.listed.1 },
        "cadence_seconds": seconds(db.cadence.every()),
        "cadence_from": db.cadence.source(),
        "negative_control": db.control,
        "expected": db.expected(),
        "run": db.drills.len(),
        "passed": db.passed(),
        "sampled": db.sampled(),
        "failed": db.drills.iter().filter(|d| !d.passed).count(),
        "missed": db.count(super::windows::WindowState::Missed),
        "windows": db.windows.iter().map(|w| json!({
            "start": time(w.start), "end": time(w.end), "state": w.state, "drills": w.drills,
        })).collect::<Vec<_>>(),
        "drills": db.drills.iter().map(drill).collect::<Vec<_>>(),
        "followed": db.followed.iter().map(|f| json!({
            "state": f.state,
            "segments": f.segments,
            "proof_lag_p50_seconds": seconds(f.lag(50)),
            "proof_lag_p99_seconds": seconds(f.lag(99)),
            "proof_lag_max_seconds": seconds(f.lag(100)),
            "receipts": f.receipts,
            "unreceipted_lines": f.unreceipted.map(|(a, b)| json!([a, b])),
            "receipts_hold": f.evidence.is_none(),
            "receipts_fault": f.evidence,
        })).collect::<Vec<_>>(),
        "exceptions": db.exceptions.iter().map(|e| exception(db, e)).collect::<Vec<_>>(),
    })
}

fn drill(d: &PeriodDrill) -> Value {
    let record = d.drill.record.as_deref();
    json!({
        "folder": d.drill.shown,
        "drill_id": record.map(|r| r.drill_id.clone()),
        "started_at": time(d.started_at),
        "verdict": d.drill.verdict,
        "passed": d.passed,
        "counts_as_proof": d.proves,
        "evidence": d.drill.evidence.status(),
        "backup": d.drill.backup,
        "backup_age_seconds": seconds(d.backup_age),
        "sampled": d.sampled,
        "recovery_seconds": seconds(d.drill.recovery),
        "rto_seconds": seconds(d.drill.rto),
        "rto_met": d.rto_met,
        "rpo_seconds": seconds(d.drill.rpo),
        "rpo_met": d.rpo_met,
        "failing_checks": failing(d),
        "acks": d.drill.acks.iter().map(ack).collect::<Vec<_>>(),
        "ack_faults": d.drill.ack_faults,
    })
}

fn exception(db: &Database, e: &Exception) -> Value {
    json!({
        "kind": e.kind.as_str(),
        "what": e.what,
        "drill": e.drill.map(|i| db.drills[i].drill.shown.clone()),
        "window": e.window.map(|i| json!({ "start": time(db.windows[i].start), "end": time(db.windows[i].end) })),
        "resolved": e.resolved(),
        "resolution": e.resolution.iter().map(ack).collect::<Vec<_>>(),
    })
}

#[derive(Serialize)]
struct AckJson<'a> {
    file: &'a str,
    by: &'a str,
    at: &'a str,
    note: &'a str,
    signed_by_key: Option<&'a str>,
    allowed_as: Option<&'a str>,
}

fn ack(a: &Ack) -> Value {
    let signed = a.signed.as_ref();
    serde_json::to_value(AckJson {
        file: &a.file,
        by: &a.by,
        at: &a.at,
        note: &a.note,
        signed_by_key: signed.map(|s| s.fingerprint.as_str()),
        allowed_as: signed.and_then(|s| s.allowed_by.as_ref()).map(|(_, p)| p.as_str()),
    })
    .unwrap_or(Value::Null)
}

/// The drill's checks that did not pass: id, finding code, message.
fn failing(d: &PeriodDrill) -> Vec<Value> {
    d.failed_checks().map(|c| json!({ "id": c.id, "code": c.code, "message": c.message })).collect()
}
