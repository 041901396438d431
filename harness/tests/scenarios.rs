//! Every scenario under `scenarios/` as a test: one trial per file, sorted, named
//! `drill::<path>` (`drill::plur`, `drill::examples::plur_pre_migration`) so that filters work:
//! `cargo nextest run -E 'test(/plur/)'`, `cargo test --test scenarios -- drill::caracal`.
//! Works with `cargo test` and `cargo nextest run` (`--list`, `--partition count:K/N`).
//!
//! Environment: `PGDRILL_SCENARIOS` (the folder to search, default the workspace's
//! `scenarios/`), `PGDRILL_TAGS` (comma-separated: scenarios without any of them are listed but
//! ignored), `PGDRILL_REPORTS` (where drills write, default `target/pgdrill-reports`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use pgdrill::drill::{self, DrillOptions};
use pgdrill::scenario::{Scenario, discover, selected};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_owned();
    let root = std::env::var_os("PGDRILL_SCENARIOS").map(PathBuf::from).unwrap_or_else(|| workspace.join("scenarios"));
    let reports = std::env::var_os("PGDRILL_REPORTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target/pgdrill-reports"));
    let tags: Vec<String> = std::env::var("PGDRILL_TAGS")
        .unwrap_or_default()
        .split(',')
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let files = match discover(std::slice::from_ref(&root)) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => {
            eprintln!("error: no scenario (*.toml) under `{}`: nothing to drill", root.display());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: cannot read scenarios from `{}`: {e}", root.display());
            return ExitCode::FAILURE;
        }
    };
    let trials = files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&root).unwrap_or(&file).with_extension("");
            let name = format!(
                "drill::{}",
                relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().replace('-', "_"))
                    .collect::<Vec<_>>()
                    .join("::")
            );
            // An unreadable scenario still gets its trial, which fails and says why.
            let scenario_tags = Scenario::load(&file).map(|s| s.tags).unwrap_or_default();
            let ignored = !selected(&scenario_tags, &tags);
            let reports = reports.clone();
            Trial::test(name, move || run(&file, &reports)).with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn run(file: &Path, reports: &Path) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let options = DrillOptions { reports_root: reports.to_owned(), ..DrillOptions::default() };
    let outcome = runtime.block_on(drill::run(file, &options, Vec::new(), tokio_util::sync::CancellationToken::new()));
    let where_ = match &outcome.reports {
        Ok(paths) => format!("\n  reports: {}", paths.dir.display()),
        Err(e) => format!("\n  reports could not be written: {}", pgdrill::error::error_chain(e)),
    };
    if outcome.passed() { Ok(()) } else { Err(format!("{}{where_}", outcome.record.failure_summary()).into()) }
}
