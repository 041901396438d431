//! `drill.json`: the whole [`DrillRecord`], for machines (history, dashboards, `report merge`);
//! and a sampled drill's `plan.json`, the draw of its backup on its own for an auditor.

use crate::outcome::DrillRecord;

/// The record as pretty-printed JSON, ending with a newline.
pub fn render(record: &DrillRecord) -> String {
    let mut text = serde_json::to_string_pretty(record).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// A sampled drill's plan file.
pub const PLAN: &str = crate::outcome::PLAN_FILE;

/// The plan of a sampled drill's draw as pretty-printed JSON, with the sha256 of the backup
/// drawn once the drill read it; `None` for a drill of the newest backup.
pub fn plan(record: &DrillRecord) -> Option<String> {
    let mut plan = record.sample.clone()?;
    plan.sha256 = record
        .backup
        .as_ref()
        .filter(|b| b.location == plan.location && !b.sha256.is_empty())
        .map(|b| b.sha256.clone());
    let mut text = serde_json::to_string_pretty(&plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    Some(text)
}
