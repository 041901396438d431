//! What `init` hands the drill in place of the checks: it reads the restore (`inventory`),
//! builds the scenario's blocks (`checks`), runs each block's check on that same restore, one
//! at a time, and writes the scenario's text with those that did not pass commented out.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::StreamExt;

use super::block::{self, Block};
use super::checks::{self, DumpRows};
use super::write::{self, Header};
use super::{InitError, inventory};
use crate::drill::{Inspect, Restored};
use crate::scenario::Scenario;

/// What `init` hands the drill: reads the restore, writes the scenario's text.
#[derive(Debug)]
pub(super) struct Inspector {
    pub header: Header,
    /// Roles the globals file makes.
    pub globals_roles: Vec<String>,
    /// Where the scenario goes (its relative paths start at its folder).
    pub output: PathBuf,
    /// `init`'s own folder: the baseline of the restore is written there first, under the name
    /// it takes beside the scenario, and the blocks are proven against it there.
    pub work: PathBuf,
    /// The baseline's file name beside the scenario.
    pub baseline_name: String,
    /// The checks `--like` copies, proven as `init`'s own are.
    pub like: Vec<Block>,
    /// The text, with how many checks run and those written commented out.
    pub written: Mutex<Option<(String, usize, Vec<String>)>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Inspect for Inspector {
    fn inspect<'a>(&'a self, restored: Restored<'a>) -> futures_util::future::BoxFuture<'a, Result<String, BoxError>> {
        Box::pin(async move {
            let mut header = self.header.clone();
            let target = restored.target;
            let mut database = restored.database.to_owned();
            if header.physical {
                // A cluster: the largest of its own databases.
                let pool = target.pool(&target.maintenance_db, 1).await?;
                let mut databases = inventory::databases(&pool).await?;
                pool.close().await;
                if databases.is_empty() {
                    return Err(InitError::NoDatabase.into());
                }
                database = databases.remove(0);
                header.other_databases = databases;
            } else {
                header.restore_roles =
                    restored.roles_created.iter().filter(|r| !self.globals_roles.contains(r)).cloned().collect();
                header.restore_roles.sort();
            }
            header.database = database.clone();
            let pool = target.pool(&database, 4).await?;
            let source = format!("the restore `pgdrill init` drilled of {}", header.file_name);
            let baseline = crate::baseline::capture::capture_of(&pool, &source, false).await?;
            baseline.save(&self.work.join(&self.baseline_name))?;
            let mut found = inventory::read(&pool).await?;
            found.row_counts = baseline.row_counts;
            // A baseline of no table or index is refused where a check compares with it.
            header.baseline = Some(self.baseline_name.clone());
            let dump = (!header.physical)
                .then(|| DumpRows { tables: restored.dump.copy_rows.len(), rows: restored.dump.total_rows() });
            let mut blocks = checks::blocks(&found, dump);
            // Before the closing note of what is left to the owner.
            let at = blocks.len().saturating_sub(1);
            blocks.splice(at..at, self.like.iter().cloned());
            // Proven where the baseline is, as the scenario will read it beside itself.
            let proving = self.work.join(self.output.file_name().unwrap_or_default());
            let ctx = crate::check::CheckContext {
                pool: &pool,
                dump: restored.dump,
                target,
                database: &database,
                redactor: restored.redactor,
                trails: &Default::default(),
                login: &Default::default(),
                names: &Default::default(),
            };
            // One block at a time: a probe commits probe rows and lifts a NOLOGIN while it
            // connects, which a block proven beside it would read.
            let mut pending = Vec::new();
            for (i, block) in blocks.iter().enumerate() {
                if block.is_check() {
                    pending.push(prove(i, block, &header, &proving, &ctx));
                }
            }
            let proofs: Vec<(usize, Result<Proven, BoxError>)> =
                futures_util::stream::iter(pending).then(|proof| proof).collect().await;
            for (i, proof) in proofs {
                (blocks[i].disabled, blocks[i].optional_disabled) = proof?;
            }
            pool.close().await;
            let text = write::render(&header, &blocks);
            Scenario::parse(text.as_bytes(), &proving).map_err(|source| InitError::Invalid { source })?;
            let (checks, disabled) = tally(&blocks);
            let summary = format!(
                "{checks} checks proven on the restore of `{database}`{}",
                if disabled.is_empty() {
                    String::new()
                } else {
                    format!(", {} written commented out (they did not pass)", disabled.len())
                }
            );
            if let Ok(mut slot) = self.written.lock() {
                *slot = Some((text, checks, disabled));
            }
            Ok(summary)
        })
    }
}

/// How many checks are written to run, and each block or optional line written commented out
/// with the first line of why.
fn tally(blocks: &[Block]) -> (usize, Vec<String>) {
    let checks = blocks.iter().filter(|b| b.is_check() && b.disabled.is_none()).count();
    let mut disabled: Vec<String> = blocks
        .iter()
        .filter_map(|b| Some(format!("{}: {}", b.body.first()?, b.disabled.as_deref()?.lines().next()?)))
        .collect();
    disabled.extend(blocks.iter().filter_map(|b| {
        let key = b.optional.first()?.split(" = ").next()?;
        Some(format!("{} {key}: {}", b.body.first()?, b.optional_disabled.as_deref()?.lines().next()?))
    }));
    (checks, disabled)
}

/// Why a block is written commented out, and why its optional lines are: `None` for each
/// that passed.
type Proven = (Option<String>, Option<String>);

/// Runs a block's check on the restore (`index` is handed back): with its optional lines
/// first; when that fails, without them, which then decides alone.
async fn prove(
    index: usize,
    block: &Block,
    header: &Header,
    output: &Path,
    ctx: &crate::check::CheckContext<'_>,
) -> (usize, Result<Proven, BoxError>) {
    let proven = async {
        let with = proof(&block.lines(true), header, output, ctx).await?;
        if with.is_none() || block.optional.is_empty() {
            return Ok((with, None));
        }
        Ok(match proof(&block.body, header, output, ctx).await? {
            None => (None, with),
            without => (without, None),
        })
    };
    (index, proven.await)
}

async fn proof(
    lines: &[String],
    header: &Header,
    output: &Path,
    ctx: &crate::check::CheckContext<'_>,
) -> Result<Option<String>, BoxError> {
    let baseline = header.baseline.as_deref().map(|b| format!("baseline = {}\n", block::string(b)));
    let text = format!(
        "name = \"init\"\n{}[source]\npath = \"backup\"\n[target]\ndatabase = {}\n{}\n",
        baseline.unwrap_or_default(),
        block::string(&header.database),
        lines.join("\n")
    );
    let scenario = Scenario::parse(text.as_bytes(), output).map_err(|source| InitError::Invalid { source })?;
    let mut failed: Vec<String> = Vec::new();
    for spec in &scenario.checks {
        for result in spec.run(ctx).await {
            if result.verdict != crate::outcome::Verdict::Pass {
                failed.push(format!("{}: {}", result.id, result.message));
            }
        }
    }
    Ok((!failed.is_empty()).then(|| crate::listing::and_more(failed.iter().take(5), failed.len(), "\n")))
}
