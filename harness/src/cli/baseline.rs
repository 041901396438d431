//! `pgdrill baseline --dsn`: a baseline captured from a live database (the production source,
//! read-only), in the session a restore's capture is made in.

use std::process::ExitCode;

use super::Exit;
use super::fingerprint::{self, DsnError};

/// Why no baseline was written. Its chain may hold the connection string: shown through
/// [`crate::secret::error_text`].
#[derive(Debug, thiserror::Error)]
enum FromDsnError {
    /// `--dsn` cannot be read.
    #[error(transparent)]
    Dsn {
        #[from]
        source: DsnError,
    },
    /// The database does not take the connection.
    #[error("cannot connect to `{shown}`")]
    Connect {
        shown: String,
        #[source]
        source: sqlx::Error,
    },
    /// A catalog read failed.
    #[error("cannot capture the baseline")]
    Capture {
        #[source]
        source: sqlx::Error,
    },
    /// The baseline file cannot be written.
    #[error(transparent)]
    Save {
        #[from]
        source: crate::baseline::BaselineError,
    },
}

/// Captures the baseline of `dsn` into `output`; prints what it wrote, or why not.
pub(super) async fn from_dsn(dsn: &str, output: &std::path::Path) -> ExitCode {
    match capture(dsn, output).await {
        Ok(b) => {
            if let Some(note) = b.invalid_indexes_note() {
                outln!("note: {note}");
            }
            outln!(
                "baseline of `{}` written to {}: {} tables, {} indexes, {} policies, {} graphs, {} schemas",
                b.database,
                output.display(),
                b.row_counts.len(),
                b.indexes.len(),
                b.policies.len(),
                b.graphs.len(),
                b.schemas.len()
            );
            Exit::Pass.into()
        }
        Err(e) => {
            eprintln!("error: {}", crate::secret::error_text(&e));
            Exit::Fail.into()
        }
    }
}

/// Captures and writes the baseline: what it holds.
async fn capture(dsn: &str, output: &std::path::Path) -> Result<crate::baseline::Baseline, FromDsnError> {
    // As pgdrill's sessions on a restored database read it: what any role may pin, pinned.
    let (options, shown) = fingerprint::source_options(dsn)?;
    let pool = match sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(options).await {
        Ok(pool) => pool,
        Err(source) => return Err(FromDsnError::Connect { shown, source }),
    };
    let baseline =
        crate::baseline::capture::capture(&pool, &shown).await.map_err(|source| FromDsnError::Capture { source })?;
    pool.close().await;
    baseline.save(output)?;
    Ok(baseline)
}
