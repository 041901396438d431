//! `checksums`: every data page of the restored cluster has the checksum it was written with, as
//! PostgreSQL's own `pg_checksums --check` judges it after a clean shutdown. A physical backup
//! copies the source's pages as they are on disk: a page the source's disk corrupted restores
//! without an error and fails only when it is read; this reads them all, every relation of every
//! database, free-space and visibility maps included. It stops the target's server (a fast,
//! clean shutdown), so it runs after every other check, and starts it again for the app.
//! Data checksums must be on in the cluster (`initdb --data-checksums`, PostgreSQL 18's default,
//! or `pg_checksums --enable`): where they are off there is nothing to prove, and it fails saying
//! so. Container and local targets only (pgdrill stops no server of yours).
//!
//! ```toml
//! [checks.checksums]
//! # timeout = "30m"                # the time budget (default 30m)
//! ```

use std::time::{Duration, Instant};

use crate::field::Spanned;
use crate::outcome::CheckKind;
use serde::Deserialize;

use super::{CheckContext, CheckError, CheckResult, CheckResultBuilder, Kind, ResolveContext};
use crate::field::{FieldError, parse_duration};
use crate::provision::toolbox;

crate::outcome::findings! {
    /// What `checksums` finds.
    pub(crate) enum Found for Checksums {
        Match = Pass "checksums.match"
            "Every data page's checksum matches, as pg_checksums reads the whole cluster."
            "Nothing.",
        Bad = Fail "checksums.bad"
            "Pages whose checksum differs: the data on disk is not what was written."
            "Find where the pages were damaged (the backup's storage, its copy, the source's disk); restore an older backup.",
        Disabled = Fail "checksums.disabled"
            "Data checksums are off in the restored cluster, so pg_checksums cannot prove its pages."
            "Enable them on the source (initdb --data-checksums, or pg_checksums --enable while it is stopped).",
        Failed = Error "checksums.failed"
            "pg_checksums failed without naming a bad page."
            "Read its error in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Checksums;

/// Bad blocks named in the message; the rest are counted.
const LISTED: usize = 10;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ChecksumsCheck")]
pub(crate) struct Config {
    /// The time budget.
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub timeout: Duration,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    const OFFLINE: bool = true;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        let timeout = config.timeout.as_ref().map(parse_duration).transpose()?.unwrap_or(Duration::from_secs(1800));
        Ok(Spec { timeout })
    }

    fn label(&self) -> String {
        "the whole cluster".into()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let args = ["--check".to_owned(), "--pgdata".to_owned(), toolbox::DATA.to_owned()];
        let expected = "no page whose checksum differs";
        let evidence = format!("pg_checksums {} (the server stopped cleanly, then started again)", args.join(" "));
        let error = |message: String| CheckError::new(message).expected(expected).evidence(evidence.clone());
        let Some(offline) = &ctx.target.offline else {
            return Err(error(
                "pg_checksums reads a cluster only while its server is stopped, which pgdrill does on container, local and pod targets only (a server target's server is not pgdrill's to stop)".into(),
            ));
        };
        let ran = tokio::time::timeout(self.timeout, offline.run_stopped("pg_checksums", &args, ctx.redactor)).await;
        let (output, stdout) = match ran {
            Err(_) => {
                return Err(error(format!(
                    "pg_checksums did not finish within {} (raise `timeout`)",
                    humantime::format_duration(self.timeout)
                )));
            }
            Ok(Err(e)) => {
                return Err(error(format!("pg_checksums could not run: {}", crate::error::error_chain(&e))));
            }
            Ok(Ok(ran)) => ran,
        };
        let result = CheckResult::build(KIND, self.label(), started).expected(expected).evidence(evidence.clone());
        let report = Report::parse(&stdout, &output.stderr);
        let mut named = Vec::new();
        for bad in report.bad.iter().take(LISTED) {
            named.push(describe(ctx, bad).await);
        }
        Ok(vec![judge(result, output.status, &report, &named, &output.stderr)])
    }
}

/// What pg_checksums reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    pub files: Option<u64>,
    pub blocks: Option<u64>,
    pub bad_count: Option<u64>,
    /// `checksum verification failed in file "...", block N: ...`, each as (file, block, text).
    pub bad: Vec<BadBlock>,
    /// `data checksums are not enabled in cluster`.
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadBlock {
    /// The file, relative to the data directory (`base/5/16393`).
    pub file: String,
    pub block: u64,
    pub detail: String,
}

impl Report {
    pub(crate) fn parse(stdout: &str, stderr: &str) -> Report {
        let field = |key: &str| {
            stdout.lines().find_map(|l| l.trim().strip_prefix(key)).and_then(|v| v.trim().parse::<u64>().ok())
        };
        let bad = stderr
            .lines()
            .filter_map(|line| {
                let rest = line.split_once("checksum verification failed in file \"")?.1;
                let (file, rest) = rest.split_once('"')?;
                let rest = rest.trim_start_matches(", block ");
                let (block, detail) = rest.split_once(':')?;
                let file = file.strip_prefix(toolbox::DATA).unwrap_or(file).trim_start_matches('/').to_owned();
                Some(BadBlock { file, block: block.trim().parse().ok()?, detail: detail.trim().to_owned() })
            })
            .collect();
        Report {
            files: field("Files scanned:"),
            blocks: field("Blocks scanned:"),
            bad_count: field("Bad checksums:"),
            bad,
            disabled: stderr.contains("data checksums are not enabled"),
        }
    }
}

/// A relation file's database and relation, as the restored cluster names them
/// (`base/<database oid>/<filenode>[_fsm|_vm][.<segment>]`, `global/<filenode>`).
async fn describe(ctx: &CheckContext<'_>, bad: &BadBlock) -> String {
    let parts: Vec<&str> = bad.file.split('/').collect();
    let node = |text: &str| text.split(['.', '_']).next().and_then(|n| n.parse::<i64>().ok());
    let (database, filenode, tablespace) = match parts.as_slice() {
        ["base", db, file] => (db.parse::<i64>().ok(), node(file), 0),
        ["global", file] => (None, node(file), 1664),
        _ => (None, None, 0),
    };
    let name = async {
        let filenode = filenode?;
        let datname: String = match database {
            Some(oid) => sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE oid = $1::oid")
                .bind(oid)
                .fetch_optional(ctx.pool)
                .await
                .ok()??,
            None => ctx.database.to_owned(),
        };
        let pool = ctx.target.pool(&datname, 1).await.ok()?;
        let relation: Option<String> = sqlx::query_scalar(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_filenode_relation($1::oid, $2::oid)",
        )
        .bind(tablespace)
        .bind(filenode)
        .fetch_one(&pool)
        .await
        .ok()?;
        pool.close().await;
        Some(format!("{} in database {datname}", relation?))
    }
    .await;
    let fork = if bad.file.contains("_fsm") {
        " (free space map)"
    } else if bad.file.contains("_vm") {
        " (visibility map)"
    } else {
        ""
    };
    format!(
        "{}{fork}, block {} (`{}`): {}",
        name.unwrap_or_else(|| format!("`{}`", bad.file)),
        bad.block,
        bad.file,
        bad.detail
    )
}

/// From pg_checksums' exit and report to the verdict; `named` describes the first bad blocks.
fn judge(result: CheckResultBuilder, status: i64, report: &Report, named: &[String], stderr: &str) -> CheckResult {
    if report.disabled {
        return result.actual("data checksums are off in this cluster").found(
            Found::Disabled,
            "data checksums are off in the restored cluster, so pg_checksums cannot prove its pages (hint: enable them on the source: initdb --data-checksums, or pg_checksums --enable while it is stopped; PostgreSQL 18 enables them by default)",
        );
    }
    let bad = report.bad_count.unwrap_or(report.bad.len() as u64);
    let scanned = format!(
        "{} files, {} blocks scanned",
        report.files.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
        report.blocks.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
    );
    match (status, bad) {
        (0, 0) => {
            result.actual(format!("{scanned}, no bad checksum")).found(Found::Match, "every page's checksum matches")
        }
        (_, 0) => result.found(Found::Failed, format!("pg_checksums failed (exit {status}): {}", stderr.trim())),
        (_, bad) => {
            let named = crate::listing::and_more(named, (bad as usize).max(named.len()), "; ");
            result
                .actual(format!("{scanned}, {bad} bad checksum(s)"))
                .found(Found::Bad, format!("pages whose checksum differs: {named}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Verdict;

    const STDOUT: &str = "Checksum operation completed\nFiles scanned:   1003\nBlocks scanned:  3242\nBad checksums:  1\nData checksum version: 1\n";
    const STDERR: &str = "pg_checksums: error: checksum verification failed in file \"/pgdrill/data/base/16384/16397\", block 0: calculated checksum 4E3B but block contains 6A1F\n";

    fn builder() -> CheckResultBuilder {
        CheckResult::build(KIND, "the whole cluster", Instant::now())
    }

    #[test]
    fn pg_checksums_report_is_read_block_by_block() {
        let report = Report::parse(STDOUT, STDERR);
        assert_eq!((report.files, report.blocks, report.bad_count), (Some(1003), Some(3242), Some(1)));
        assert_eq!(
            report.bad,
            [BadBlock {
                file: "base/16384/16397".into(),
                block: 0,
                detail: "calculated checksum 4E3B but block contains 6A1F".into()
            }]
        );
        assert!(!report.disabled);
    }

    #[test]
    fn a_bad_page_fails_naming_it_and_off_checksums_prove_nothing() {
        let report = Report::parse(STDOUT, STDERR);
        let named = ["public.victim in database books, block 0 (`base/16384/16397`): calculated...".to_owned()];
        let failed = judge(builder(), 1, &report, &named, STDERR);
        assert_eq!(failed.code, "checksums.bad");
        assert_eq!(failed.actual, "1003 files, 3242 blocks scanned, 1 bad checksum(s)");
        assert!(failed.message.contains("public.victim in database books, block 0"), "{}", failed.message);

        let clean = Report::parse(&STDOUT.replace("Bad checksums:  1", "Bad checksums:  0"), "");
        assert_eq!(judge(builder(), 0, &clean, &[], "").code, "checksums.match");

        let off = "pg_checksums: error: data checksums are not enabled in cluster\n";
        let disabled = judge(builder(), 1, &Report::parse("", off), &[], off);
        assert_eq!(disabled.code, "checksums.disabled", "a check that cannot prove anything does not pass");

        let broken = "pg_checksums: error: cluster must be shut down\n";
        let result = judge(builder(), 1, &Report::parse("", broken), &[], broken);
        assert_eq!((result.verdict, result.code.as_str()), (Verdict::Error, "checksums.failed"));
    }
}
