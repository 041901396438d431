//! The migrations and the application as the record keeps them. `migrate` and `app` fill them in.

use serde::{Deserialize, Serialize};

/// What the reports say about the migration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MigrateInfo {
    /// The newest version the migration journal (`[migrate] journal`) recorded before they
    /// were applied; none without a journal, or when it recorded none.
    pub version_before: Option<String>,
    /// The newest version it recorded after.
    pub version_after: Option<String>,
    /// The files applied, or the command run.
    pub applied: Vec<String>,
}

/// What the reports say about the app.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppInfo {
    /// The command or image (no secrets: env values are not shown).
    pub launched: String,
    /// Where it listened: `http://127.0.0.1:PORT`, which its requests were sent to.
    pub url: String,
    /// The app's last lines of output, redacted.
    pub output_tail: Vec<String>,
}
