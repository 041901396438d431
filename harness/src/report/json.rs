//! `drill.json`: the whole [`DrillRecord`], for machines (history, dashboards, `report merge`).

use crate::outcome::DrillRecord;

/// The record as pretty-printed JSON, ending with a newline.
pub fn render(record: &DrillRecord) -> String {
    let mut text = serde_json::to_string_pretty(record).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
