//! The machine-readable files: `fleet-status.json` (every database, its state, its last drill,
//! every drill found and its followers), and the gate's `gaps.json` and `gaps.md`.

use std::fmt::Write;

use serde_json::{Value, json};

use super::follower::Standing;
use super::{Bounds, Drill, Fleet, Subject};

fn rfc3339(at: Option<time::OffsetDateTime>) -> Value {
    at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()).map_or(Value::Null, Value::String)
}

fn drill(d: &Drill) -> Value {
    json!({
        "folder": d.shown,
        "scenario": d.scenario,
        "started_at": rfc3339(d.started_at),
        "verdict": d.verdict,
        "recovery_ms": d.recovery.map(|r| r.as_millis() as u64),
        "rto_ms": d.rto.map(|r| r.as_millis() as u64),
        "failing_checks": d.failing.iter().map(|(id, message)| json!({"id": id, "message": message})).collect::<Vec<_>>(),
        "failure": d.failure,
        "backup": d.backup,
        "acks": d.acks.iter().map(|a| json!({
            "file": a.file, "by": a.by, "at": a.at, "note": a.note,
            "signed_by_key": a.signed.as_ref().map(|s| s.fingerprint.clone()),
        })).collect::<Vec<_>>(),
        "evidence": {
            "status": d.evidence.status(),
            "signed": d.evidence.key().is_some(),
            "verified": d.evidence.signer().is_some(),
            "signer": d.evidence.signer(),
            "key": d.evidence.key(),
            "says": d.evidence.describe(),
        },
    })
}

fn subject(s: &Subject, bounds: Option<&Bounds>) -> Value {
    json!({
        "name": s.name,
        "listed": s.listed.as_ref().map(|(by, at)| json!({"by": by, "at": at})),
        "state": s.state.as_str(),
        "max_age": {
            "source": s.rule.source(),
            "seconds": s.rule.max().map(|d| d.as_secs()),
            "says": s.rule.describe(),
        },
        "last_passing_age_seconds": s.age.map(|a| a.as_secs()),
        "last_drill": s.last().map(drill),
        "last_passing_drill": s.last_passing().map(|d| d.shown.clone()),
        "drills": s.drills.iter().map(drill).collect::<Vec<_>>(),
        "gaps": s.gaps.iter().map(|g| json!({"kind": g.kind(), "message": g.describe()})).collect::<Vec<_>>(),
        "followers": bounds.map_or(Vec::new(), |b| s.followers.iter().map(|f| f.json(b)).collect()),
    })
}

/// fleet-status.json.
pub(super) fn json(fleet: &Fleet) -> String {
    let value = json!({
        "schema": "pgdrill.fleet-status/v1",
        "now": rfc3339(Some(fleet.now)),
        "inputs": fleet.inputs,
        "allowed_signers": fleet.allowed_signers.as_ref().map(|p| p.display().to_string()),
        "inventory": fleet.inventory.as_ref().map(|p| p.display().to_string()),
        "max_age_seconds": fleet.max_age.map(|d| d.as_secs()),
        "follow": fleet.follow.map(|b| json!({
            "max_lag_seconds": b.max_lag.as_secs(),
            "max_age_seconds": b.max_age.as_secs(),
        })),
        "counts": counts(fleet),
        "databases": fleet.subjects.iter().map(|s| subject(s, fleet.follow.as_ref())).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&value).expect("a JSON value serializes") + "\n"
}

/// How many databases there are, and how many are in each state.
fn counts(fleet: &Fleet) -> serde_json::Value {
    let mut counts = serde_json::Map::new();
    counts.insert("databases".into(), fleet.subjects.len().into());
    for state in super::State::ALL {
        counts.insert(state.key(), fleet.count(state).into());
    }
    let followers = fleet.subjects.iter().flat_map(|s| &s.followers);
    let proving = |f: &&super::Follower| fleet.follow.is_some_and(|b| f.judge(&b).0 == Standing::Proving);
    counts.insert("followers".into(), followers.clone().count().into());
    counts.insert("followers_proving".into(), followers.filter(proving).count().into());
    serde_json::Value::Object(counts)
}

/// gaps.json: whether every database the inventory lists is proven, and what is missing.
pub(super) fn gaps_json(fleet: &Fleet) -> String {
    let gaps = fleet.gaps();
    let value = json!({
        "schema": "pgdrill.gaps/v1",
        "now": rfc3339(Some(fleet.now)),
        "inventory": fleet.inventory.as_ref().map(|p| p.display().to_string()),
        "allowed_signers": fleet.allowed_signers.as_ref().map(|p| p.display().to_string()),
        "proven": gaps.is_empty(),
        "gaps": gaps.iter().map(|(s, g)| json!({
            "database": s.name,
            "listed": s.listed.as_ref().map(|(by, at)| json!({"by": by, "at": at})),
            "kind": g.kind(),
            "message": g.describe(),
        })).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&value).expect("a JSON value serializes") + "\n"
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ").replace('<', "&lt;").replace('>', "&gt;")
}

/// gaps.md: the same, for people.
pub(super) fn gaps_markdown(fleet: &Fleet) -> String {
    let gaps = fleet.gaps();
    let listed = fleet.subjects.iter().filter(|s| s.listed.is_some()).count();
    let mut md =
        format!("# Evidence gate: {}\n\n", if gaps.is_empty() { "every database proven" } else { "gaps found" });
    let _ = writeln!(
        md,
        "{listed} databases listed in `{}`, as of {}; evidence {}.\n",
        fleet.inventory.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        rfc3339(Some(fleet.now)).as_str().unwrap_or_default(),
        match (&fleet.allowed_signers, fleet.unsigned_ok) {
            (Some(file), _) => format!("verified against `{}`", file.display()),
            (None, true) => "not checked against allowed signers (--unsigned-ok)".into(),
            (None, false) => "not checked: no allowed signers were given".into(),
        }
    );
    if gaps.is_empty() {
        md.push_str("Every database listed has a passing, recent drill whose evidence holds.\n");
        return md;
    }
    md.push_str("| Database | Gap | What is missing |\n|---|---|---|\n");
    for (s, g) in gaps {
        let _ = writeln!(md, "| {} | {} | {} |", cell(&s.name), g.kind(), cell(&g.describe()));
    }
    md
}
