//! The preflight and restore phases' bodies, with their summaries.

use crate::catalog::{CatalogError, Fingerprint};
use crate::dump::{DumpSummary, Format};
use crate::error::error_chain;
use crate::outcome::{PreflightReport, RestoreStats};
use crate::provision::{AuditError, Target};
use crate::scenario::RestoreSpec;
use crate::secret::Redactor;
use crate::source::Backup;
use crate::source::onepass::OnePass;
use crate::source::verify::Verified;
use crate::units::human_size;

use super::archive::Scan;
use super::plain::Roles;
use super::preflight::{self, PreflightError};
use super::reader::Read;
use super::{RestoreError, archive, archive_once, audit, plain};

/// Why the preflight or the restore phase failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PhaseError {
    /// Reading the archive, or restoring the backup, failed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The target lacks what the backup needs.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// The connection was lost mid-restore; `why` says whether the target went away.
    #[error("{}\n{why}", error_chain(.error))]
    Lost { error: RestoreError, why: String },
    /// The restored backup changed the server's configuration, or it could not be read.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The restored backup changed PostgreSQL's built-ins, or they could not be read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The dump, read in one pass with its restore, did not verify to its end.
    #[error(
        "the backup did not verify (the verify phase says why): what was restored from it is not trusted, and no check runs on it"
    )]
    Unverified,
}

/// What preflight is asked about: a verified backup and the target it is to be restored into.
pub(crate) struct Preflight<'a> {
    pub target: &'a Target,
    pub backup: &'a Backup,
    /// Whether its restore reads it once (an archive's entries after its data are not read here).
    pub read_once: bool,
    pub verified: &'a Verified,
    /// The extensions the scenario's checks need beside the dump's own.
    pub required_extensions: &'a [String],
    pub spec: &'a RestoreSpec,
    pub redactor: &'a Redactor,
}

/// Preflight: what the backup needs, and whether the target has it. An archive is first read
/// through the target's pg_restore, which says what it needs (a plain dump said so during
/// verify): whole, or its entries before its data when its restore reads it once (`read_once`).
/// Returns the report, what the dump needs, and the phase's summary.
pub(crate) async fn preflight(
    asked: Preflight<'_>,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(PreflightReport, DumpSummary, String), PhaseError> {
    let Preflight { target, backup, read_once, verified, required_extensions, spec: restore, redactor } = asked;
    let mut read_by_list = false;
    let dump = if verified.format == Format::Plain {
        verified.summary.clone()
    } else {
        progress("reading the archive with the target's pg_restore");
        let pg_dump = verified.archive.as_ref().map(|a| a.pg_dump_version.clone()).unwrap_or_default();
        let how = match &verified.sql_list {
            _ if read_once => Scan::Head,
            Some(list) => Scan::Sql { list, copies: &verified.summary },
            None => Scan::Whole,
        };
        let (mut scanned, how) = archive::scan(target, backup, &pg_dump, how, redactor).await?;
        read_by_list = matches!(how, Scan::Sql { .. });
        // The header (read on this machine) names the versions even if pg_restore's SQL does not.
        scanned.comments.source_version = verified.summary.comments.source_version.clone();
        scanned.comments.dumped_by = verified.summary.comments.dumped_by.clone();
        scanned
    };
    let report = preflight::preflight(target, &dump, required_extensions, restore, redactor).await?;
    let mut summary = format!("PostgreSQL {}", report.server_version);
    if !report.extensions.is_empty() {
        let list: Vec<String> = report.extensions.iter().map(|(n, v)| format!("{n} {v}")).collect();
        summary.push_str(&format!("; extensions available: {}", list.join(", ")));
    }
    if !report.roles_created.is_empty() {
        summary.push_str(&format!("; roles created: {}", report.roles_created.join(", ")));
    }
    if verified.format != Format::Plain && read_once {
        summary.push_str(&format!(
            "; archive's entries before its data read: {} statements (its restore reads the rest once)",
            dump.statements
        ));
    } else if read_by_list {
        summary.push_str(&format!(
            "; archive's SQL read but for its tables' rows, which verify read: {} statements, {} rows in {} COPY blocks",
            dump.statements,
            dump.total_rows(),
            dump.copy_blocks
        ));
    } else if verified.format != Format::Plain {
        summary.push_str(&format!(
            "; archive read whole: {} statements, {} rows in {} COPY blocks",
            dump.statements,
            dump.total_rows(),
            dump.copy_blocks
        ));
    }
    Ok((report, dump, summary))
}

/// What a dump's restore is asked to do.
pub(crate) struct Restore<'a> {
    pub target: &'a Target,
    pub backup: &'a Backup,
    /// Set when the restore's read verifies the dump too (a dump file read once).
    pub one_pass: Option<OnePass>,
    pub format: Format,
    /// What verify and preflight read of the dump.
    pub dump: &'a DumpSummary,
    pub spec: &'a RestoreSpec,
    /// The scenario's database.
    pub into: &'a str,
    pub redactor: &'a Redactor,
}

/// Restores the backup into the scenario's database `into` (or, for a dump that creates its own
/// databases, from the maintenance database); then audits a sandbox's configuration, and the
/// built-ins of the restored and the maintenance database against `reference` (the target's
/// catalog before the restore, [`audit::before_restore`]). With `one_pass`, a dump file's read
/// verifies it too. Returns what was restored and the phase's summary. The restored database's
/// derived flags and extension members are audited after ([`audit::derived`]).
pub(crate) async fn restore(
    asked: Restore<'_>,
    reference: &Fingerprint,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<(RestoreStats, String), PhaseError> {
    let Restore { target, backup, one_pass, format, dump, spec: restore, into, redactor } = asked;
    let database = &target.database_for(into);
    let start = if dump.databases_created.is_empty() {
        preflight::create_database(target, database).await?;
        database.clone()
    } else {
        target.maintenance_db.clone()
    };
    let roles = Roles::of_dump(target, !dump.roles_created.is_empty());
    let work = async {
        match format {
            Format::Plain => {
                let read = match one_pass {
                    Some(one_pass) => Read::Verifying(one_pass),
                    None => Read::Plain(&backup.path, backup.keys.first()),
                };
                plain::run(target, &start, read, redactor, progress, roles, restore.jobs).await
            }
            _ => match one_pass {
                Some(one_pass) => {
                    archive_once::restore(target, &start, one_pass, restore.jobs, roles, redactor, progress).await
                }
                None => archive::restore(target, &start, backup, format, restore.jobs, dump, redactor).await,
            },
        }
    };
    // Its deadline (`[restore] timeout`) is the drill's, around the whole phase.
    let stats = match work.await {
        Ok(stats) => stats,
        Err(e @ RestoreError::Connection { .. }) => {
            let why = target.went_away(database).await.unwrap_or_else(|| {
                "the target still accepts connections: this one was cut (by an administrator, a proxy or the network)"
                    .into()
            });
            return Err(PhaseError::Lost { error: e, why });
        }
        Err(e) => return Err(e.into()),
    };
    target.audit().await?;
    let checked = checks_database(target, dump, into, &stats);
    let catalog = audit::after_restore(target, reference, "the target before the restore", &checked).await?;
    let mut summary = format!(
        "{} statements, {} COPY blocks, {} rows ({}) into database `{}`{}",
        stats.statements,
        stats.copy_blocks,
        stats.rows,
        human_size(stats.bytes),
        checked,
        if stats.jobs > 1 { format!(" on {} connections", stats.jobs) } else { String::new() }
    );
    summary.push_str(&format!("; {}", catalog.summary()));
    let stats = RestoreStats { catalog: Some(catalog), ..stats };
    Ok((stats, summary))
}

/// Where the checks run after a dump's restore: the scenario's database `into`; for a dump
/// that creates its own databases (`pg_dump --create`, `pg_dumpall`), `into` if the dump creates
/// it or loads rows into it (`postgres`, which pg_dumpall fills without creating it), else the
/// only database the dump creates, else the last one it creates.
pub(crate) fn checks_database(target: &Target, dump: &DumpSummary, into: &str, stats: &RestoreStats) -> String {
    let created = &dump.databases_created;
    if created.is_empty() || created.iter().any(|d| d == into) || dump.rows_by_database.contains_key(into) {
        return target.database_for(into);
    }
    created.last().cloned().unwrap_or_else(|| stats.database.clone())
}
