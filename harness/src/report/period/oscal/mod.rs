//! `assessment-results.json`: the period as OSCAL Assessment Results (NIST OSCAL 1.1.3), what
//! FedRAMP and GRC tools ingest. The plan is the inventory (a back-matter resource); pgdrill and
//! each database are components; one result spans the period; each drill is an observation
//! (method TEST, its report folder's files the relevant evidence); each database is a finding on
//! CP-4's objective (contingency plan testing: a drill at its cadence, every exception named),
//! satisfied only with none; each exception is a risk (`risk`), closed by the acknowledgements
//! that resolve it. UUIDs are version 5, derived from what they name, so the same period gives
//! the same document.

mod codes;
mod risk;

use serde_json::{Value, json};
use uuid::Uuid;

use super::json::time;
use super::{Database, Period, PeriodDrill};

/// The OSCAL version the document is written to (compliance-trestle 3.12's models).
pub(crate) const OSCAL_VERSION: &str = "1.1.3";
/// The namespace of pgdrill's own property names, and of its UUIDs.
const NS: &str = "https://pgdrill.dev/ns/oscal";
/// The controls a restore drill tests (NIST SP 800-53 rev. 5): contingency plan testing, system
/// backup and its testing for reliability and integrity, recovery.
const CONTROLS: [&str; 4] = ["cp-4", "cp-9", "cp-9.1", "cp-10"];

/// The UUID of what `parts` name.
pub(super) fn id(parts: &[&str]) -> String {
    let ns = Uuid::new_v5(&Uuid::NAMESPACE_URL, NS.as_bytes());
    Uuid::new_v5(&ns, parts.join("/").as_bytes()).to_string()
}

pub(super) fn prop(name: &str, value: impl ToString) -> Value {
    json!({ "name": name, "ns": NS, "value": value.to_string() })
}

/// The document.
pub(crate) fn document(period: &Period) -> Value {
    let key = [time(period.from), time(period.to), period.inventory.display().to_string()].join("/");
    let key = key.as_str();
    let title = period.title();
    let plan = id(&["plan", key]);
    let mut result = json!({
        "uuid": id(&["result", key]),
        "title": title,
        "description": format!("Each database of the inventory {} drilled at its cadence: its backup restored on a throwaway target and checked by pgdrill.", period.inventory.display()),
        "start": time(period.from),
        "end": time(period.to),
        "props": [prop("judged-at", time(period.now))],
        "local-definitions": { "components": components(period) },
        "reviewed-controls": {
            "description": "The contingency controls a restore drill tests.",
            "control-selections": [{ "include-controls": CONTROLS.iter().map(|c| json!({ "control-id": c })).collect::<Vec<_>>() }],
        },
        "findings": period.databases.iter().map(|db| finding(key, db)).chain(codes::findings(key, period)).collect::<Vec<_>>(),
    });
    let observations: Vec<Value> =
        period.databases.iter().flat_map(|db| db.drills.iter().map(move |d| observation(key, db, d))).collect();
    if !observations.is_empty() {
        result["observations"] = Value::Array(observations);
    }
    let risks: Vec<Value> =
        period.databases.iter().flat_map(|db| (0..db.exceptions.len()).map(move |i| risk::risk(key, db, i))).collect();
    if !risks.is_empty() {
        result["risks"] = Value::Array(risks);
    }
    let mut metadata = json!({
        "title": title,
        "last-modified": time(period.now),
        "version": "1",
        "oscal-version": OSCAL_VERSION,
        "props": [prop("generator", format!("pgdrill {}", env!("CARGO_PKG_VERSION")))],
    });
    let parties = risk::parties(period);
    if !parties.is_empty() {
        metadata["parties"] = Value::Array(parties);
    }
    json!({
        "assessment-results": {
            "uuid": id(&["assessment-results", key]),
            "metadata": metadata,
            "import-ap": {
                "href": format!("#{plan}"),
                "remarks": "pgdrill keeps no OSCAL assessment plan: the plan is the inventory, in back-matter.",
            },
            "results": [result],
            "back-matter": { "resources": [{
                "uuid": plan,
                "title": "The inventory of databases that must be drilled",
                "description": "Each database with its cadence; pgdrill's scenarios drill them.",
                "rlinks": [{ "href": period.inventory.display().to_string(), "media-type": "application/toml" }],
            }] },
        }
    })
}

fn components(period: &Period) -> Vec<Value> {
    let mut components = vec![json!({
        "uuid": id(&["component", "pgdrill"]),
        "type": "software",
        "title": "pgdrill",
        "description": "The restore drill tool that ran the drills, wrote their evidence and this report.",
        "props": [prop("version", env!("CARGO_PKG_VERSION"))],
        "status": { "state": "operational" },
    })];
    components.extend(period.databases.iter().map(|db| {
        json!({
            "uuid": id(&["component", "database", &db.name]),
            "type": "service",
            "title": format!("PostgreSQL database {}", db.name),
            "description": format!("The database the inventory lists as {}.", db.listed.0),
            "props": [prop("database", &db.name)],
            "status": { "state": "operational" },
        })
    }));
    components
}

/// The UUID of the observation of drill `d`.
pub(super) fn observed(key: &str, d: &PeriodDrill) -> String {
    id(&["observation", key, &d.drill.shown])
}

fn observation(key: &str, db: &Database, d: &PeriodDrill) -> Value {
    let evidence: Vec<Value> = [
        ("drill.json", "The drill's record: its backup, phases, checks and verdict."),
        ("report.html", "The drill's report, for a person."),
        ("test-result.intoto.json", "The drill as an in-toto Test Result, signed beside it as .sig."),
    ]
    .iter()
    .map(|(file, description)| json!({ "href": format!("{}{file}", d.drill.shown), "description": description }))
    .collect();
    let backup = d.drill.backup.clone().unwrap_or_else(|| "its backup".into());
    json!({
        "uuid": observed(key, d),
        "title": format!("Restore drill of {} at {}", db.name, time(d.started_at)),
        "description": format!("pgdrill restored {backup} on a throwaway target and checked it: verdict {}, evidence {}.", d.drill.verdict, d.drill.evidence.status()),
        "props": [prop("database", &db.name), prop("verdict", &d.drill.verdict), prop("counts-as-proof", d.proves)],
        "methods": ["TEST"],
        "types": ["control-objective"],
        "origins": [{ "actors": [{ "type": "tool", "actor-uuid": id(&["component", "pgdrill"]) }] }],
        "subjects": [{ "subject-uuid": id(&["component", "database", &db.name]), "type": "component", "title": format!("PostgreSQL database {}", db.name) }],
        "relevant-evidence": evidence,
        "collected": time(d.started_at),
    })
}

fn finding(key: &str, db: &Database) -> Value {
    let satisfied = db.exceptions.is_empty();
    let failed = db.drills.iter().filter(|d| !d.passed).count();
    let missed = db.count(super::windows::WindowState::Missed);
    let mut finding = json!({
        "uuid": id(&["finding", "database", key, &db.name]),
        "title": format!("Drills of {}: {} expected, {} run, {} passed, {failed} failed, {missed} missed", db.name, db.expected(), db.drills.len(), db.passed()),
        "description": format!("{} must be drilled every {}; its exceptions in the period: {}.", db.name, db.cadence.every().map_or("(no cadence given)".into(), crate::report::fleet_view::span), db.exceptions.len()),
        "props": [
            prop("database", &db.name), prop("drills-expected", db.expected()), prop("drills-run", db.drills.len()),
            prop("drills-passed", db.passed()), prop("drills-failed", failed), prop("drills-missed", missed),
        ],
        "target": {
            "type": "objective-id",
            "target-id": "cp-4_obj",
            "status": { "state": if satisfied { "satisfied" } else { "not-satisfied" } },
        },
    });
    for f in &db.followed {
        let props = finding["props"].as_array_mut().expect("props");
        props.push(prop("followed-segments", f.segments));
        if let Some(lag) = f.lag(99) {
            props.push(prop("proof-lag-p99-seconds", lag.as_secs_f64()));
        }
    }
    let observations: Vec<Value> = db.drills.iter().map(|d| json!({ "observation-uuid": observed(key, d) })).collect();
    if !observations.is_empty() {
        finding["related-observations"] = Value::Array(observations);
    }
    let risks: Vec<Value> =
        (0..db.exceptions.len()).map(|i| json!({ "risk-uuid": risk::risk_id(key, db, i) })).collect();
    if !risks.is_empty() {
        finding["related-risks"] = Value::Array(risks);
    }
    finding
}
