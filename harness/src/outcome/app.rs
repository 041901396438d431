//! The migrations and the application as the record keeps them. `migrate` and `app` fill them in.

use serde::{Deserialize, Serialize};

/// What the reports say about the migration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MigrateInfo {
    pub version_before: Option<String>,
    pub version_after: Option<String>,
    /// The files applied, or the command run.
    pub applied: Vec<String>,
}

/// What the reports say about the app.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppInfo {
    /// The command or image (no secrets: env values are not shown).
    pub launched: String,
    pub url: String,
    /// The app's last lines of output, redacted.
    pub output_tail: Vec<String>,
}
