//! A finding per finding code that failed a drill of the period (`rls.unset-tenant-reads-rows`,
//! `row-counts.fewer`): which drills it failed, so an auditor reads the period by what went
//! wrong, not only by database. Each targets CP-10's objective (the system recovered to a
//! known, working state), not satisfied, its observations the drills it failed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{id, observed, prop};
use crate::report::period::Period;

/// The findings, by code in order.
pub(super) fn findings(key: &str, period: &Period) -> Vec<Value> {
    let mut by_code: BTreeMap<&str, Vec<(String, &str)>> = BTreeMap::new();
    for db in &period.databases {
        for d in &db.drills {
            let mut codes: Vec<&str> =
                d.failed_checks().filter(|c| !c.code.is_empty()).map(|c| c.code.as_str()).collect();
            codes.sort_unstable();
            codes.dedup();
            for code in codes {
                by_code.entry(code).or_default().push((observed(key, d), db.name.as_str()));
            }
        }
    }
    by_code
        .into_iter()
        .map(|(code, drills)| {
            let mut databases: Vec<&str> = drills.iter().map(|(_, db)| *db).collect();
            databases.dedup();
            json!({
                "uuid": id(&["finding", "code", key, code]),
                "title": format!("{code}: {} drills of {}", drills.len(), databases.join(", ")),
                "description": format!("Drills of the period failed with finding {code} (see the findings reference: what it means and what to do)."),
                "props": [prop("finding-code", code), prop("drills", drills.len())],
                "target": { "type": "objective-id", "target-id": "cp-10_obj", "status": { "state": "not-satisfied" } },
                "related-observations": drills.iter().map(|(o, _)| json!({ "observation-uuid": o })).collect::<Vec<_>>(),
            })
        })
        .collect()
}
