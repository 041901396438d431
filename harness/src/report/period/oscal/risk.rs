//! Each exception of the period as an OSCAL risk: open, or closed by the acknowledgements that
//! resolve it, each a completed remediation by its party, logged when it was made.

use serde_json::{Value, json};

use super::{id, observed, prop};
use crate::evidence::ack::Ack;
use crate::report::period::exceptions::Exception;
use crate::report::period::{Database, Period};

/// The UUID of the risk of `db`'s exception `i`.
pub(super) fn risk_id(key: &str, db: &Database, i: usize) -> String {
    id(&["risk", key, &db.name, &i.to_string()])
}

fn party(by: &str) -> String {
    id(&["party", by])
}

/// Everyone whose acknowledgement resolves an exception, once each.
pub(super) fn parties(period: &Period) -> Vec<Value> {
    let mut names: Vec<&str> =
        period.exceptions().flat_map(|(_, e)| e.resolution.iter().map(|a| a.by.as_str())).collect();
    names.sort_unstable();
    names.dedup();
    names.into_iter().map(|by| json!({ "uuid": party(by), "type": "person", "name": by })).collect()
}

/// The risk of `db`'s exception `i`.
pub(super) fn risk(key: &str, db: &Database, i: usize) -> Value {
    let e = &db.exceptions[i];
    let uuid = risk_id(key, db, i);
    let mut risk = json!({
        "uuid": uuid,
        "title": format!("Exception ({}) of {}", e.kind.as_str(), db.name),
        "description": e.what,
        "statement": format!("Until it is resolved, a restore of {} is not shown to work as its drills expect.", db.name),
        "props": [prop("exception", e.kind.as_str()), prop("database", &db.name)],
        "status": if e.resolved() { "closed" } else { "open" },
    });
    if e.resolved() {
        let remediations: Vec<Value> = e.resolution.iter().map(|a| remediation(&uuid, db, e, a)).collect();
        let entries: Vec<Value> = e
            .resolution
            .iter()
            .map(|a| {
                let response = id(&["response", &uuid, &a.file]);
                json!({
                    "uuid": id(&["risk-log", &uuid, &a.file]),
                    "title": "Acknowledged",
                    "start": a.at,
                    "logged-by": [{ "party-uuid": party(&a.by) }],
                    "status-change": "closed",
                    "related-responses": [{ "response-uuid": response }],
                })
            })
            .collect();
        risk["remediations"] = Value::Array(remediations);
        risk["risk-log"] = json!({ "entries": entries });
    }
    if let Some(d) = e.drill {
        risk["related-observations"] = json!([{ "observation-uuid": observed(key, &db.drills[d]) }]);
    }
    risk
}

fn remediation(risk: &str, db: &Database, e: &Exception, a: &Ack) -> Value {
    let folder = e.drill.map(|d| db.drills[d].drill.shown.clone()).unwrap_or_default();
    json!({
        "uuid": id(&["response", risk, &a.file]),
        "lifecycle": "completed",
        "title": format!("Acknowledged by {}", a.by),
        "description": a.note,
        "props": [prop("acknowledged-at", &a.at), prop("signed", a.signed.is_some())],
        "links": [{ "href": format!("{folder}{}", a.file), "rel": "reference", "text": "The signed acknowledgement (pgdrill ack)" }],
        "origins": [{ "actors": [{ "type": "party", "actor-uuid": party(&a.by) }] }],
    })
}
