//! Drills as tests in any Rust repository: a folder of scenarios as libtest-mimic trials, one
//! per file, so that `cargo test` and `cargo nextest run` drill them with their own filters,
//! `--list`, `--ignored` and nextest's partitions. A user's `tests/drills.rs`, declared with
//! `harness = false`:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     pgdrill::trials::Drills::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).main()
//! }
//! ```
//!
//! Each scenario is a trial named `drill::<path>` (`scenarios/billing/eu-west.toml` is
//! `drill::billing::eu_west`), so `cargo nextest run -E 'test(/billing/)'` or
//! `cargo test --test drills -- drill::billing` picks drills by name. The environment overrides
//! what the code sets: `PGDRILL_SCENARIOS` (the folder), `PGDRILL_TAGS` (comma-separated:
//! scenarios with none of them are listed but ignored), `PGDRILL_REPORTS` (where drills write;
//! by default `pgdrill-reports` in the build's target folder).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use tokio_util::sync::CancellationToken;

use crate::drill::{self, DrillOptions};
use crate::error::error_chain;
use crate::scenario::{Scenario, discover, selected};

/// A folder of scenarios to drill as tests.
#[derive(Debug, Clone)]
pub struct Drills {
    root: PathBuf,
    reports: Option<PathBuf>,
    tags: Vec<String>,
}

impl Drills {
    /// The scenarios (`*.toml`, searched recursively) under `root`. A relative path is taken
    /// from the working directory, which `cargo test` and nextest set to the package's folder.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Drills { root: root.into(), reports: None, tags: Vec::new() }
    }

    /// Where the drills write their reports (`<dir>/<scenario>/<UTC timestamp>/`).
    pub fn reports(mut self, dir: impl Into<PathBuf>) -> Self {
        self.reports = Some(dir.into());
        self
    }

    /// Drills only scenarios carrying one of `tags`; the others are listed as ignored.
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// With what the environment says over what the code set.
    fn with_env(mut self) -> Self {
        if let Some(root) = std::env::var_os("PGDRILL_SCENARIOS") {
            self.root = root.into();
        }
        if let Some(reports) = std::env::var_os("PGDRILL_REPORTS") {
            self.reports = Some(reports.into());
        }
        if let Ok(tags) = std::env::var("PGDRILL_TAGS") {
            self.tags = tags.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
        }
        self
    }

    /// One trial per scenario file, sorted by path. A scenario that cannot be read still gets
    /// its trial, which fails and says why.
    pub fn trials(&self) -> std::io::Result<Vec<Trial>> {
        let reports = self.reports.clone().unwrap_or_else(default_reports);
        let files = discover(std::slice::from_ref(&self.root))?;
        Ok(files
            .into_iter()
            .map(|file| {
                let name = trial_name(&self.root, &file);
                let ignored = !selected(&Scenario::load(&file).map(|s| s.tags).unwrap_or_default(), &self.tags);
                let reports = reports.clone();
                Trial::test(name, move || drill(&file, &reports)).with_ignored_flag(ignored)
            })
            .collect())
    }

    /// Parses the test runner's arguments, runs the trials and returns the exit code: the
    /// whole `main` of a `harness = false` test. An empty or unreadable folder fails, since a
    /// drill suite that finds nothing must not pass.
    pub fn main(self) -> ExitCode {
        let args = Arguments::from_args();
        let drills = self.with_env();
        match drills.trials() {
            Ok(trials) if !trials.is_empty() => libtest_mimic::run(&args, trials).exit_code(),
            Ok(_) => {
                eprintln!("error: no scenario (*.toml) under `{}`: nothing to drill", drills.root.display());
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: cannot read scenarios from `{}`: {e}", drills.root.display());
                ExitCode::FAILURE
            }
        }
    }
}

/// `drill::` and the file's path under `root` without its extension, `::`-separated, with
/// dashes as underscores: a name test filters can take apart.
fn trial_name(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).unwrap_or(file).with_extension("");
    let parts: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().replace('-', "_")).collect();
    format!("drill::{}", parts.join("::"))
}

/// `pgdrill-reports` in the target folder the test binary was built in (it lives in
/// `<target>/<profile>/deps/`), else in the working directory.
fn default_reports() -> PathBuf {
    let exe = std::env::current_exe().ok();
    let target = exe.as_deref().and_then(|e| e.parent()).filter(|deps| deps.ends_with("deps")).and_then(|deps| {
        let target = deps.parent()?.parent()?;
        Some(target.to_owned())
    });
    target.unwrap_or_default().join("pgdrill-reports")
}

/// The stack a drill runs on: a test harness's threads have 2 MiB, which a drill's futures
/// outgrow in a debug build.
const DRILL_STACK: usize = 64 << 20;

fn drill(file: &Path, reports: &Path) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(DRILL_STACK).build()?;
    // Signed as `pgdrill run` signs, with the key PGDRILL_SIGNING_KEY(_FILE) names.
    let signing = crate::evidence::sign::Signing::from_env(None);
    let options = DrillOptions { reports_root: reports.to_owned(), signing, ..DrillOptions::default() };
    let file_owned = file.to_owned();
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("pgdrill-trial".into())
            .stack_size(DRILL_STACK)
            .spawn_scoped(scope, || {
                runtime.block_on(Box::pin(drill::run(&file_owned, &options, Vec::new(), CancellationToken::new())))
            })
            .map_err(Failed::from)?
            .join()
            .map_err(|_| Failed::from("the drill's thread panicked"))
    })?;
    let where_ = match &outcome.reports {
        Ok(paths) => format!("\n  reports: {}", paths.dir.display()),
        Err(e) => format!("\n  reports could not be written: {}", error_chain(e)),
    };
    if let Some(crate::evidence::sign::Signing::Broken(why)) = &options.signing {
        return Err(format!("{why}: the reports are not signed{where_}").into());
    }
    if outcome.succeeded() { Ok(()) } else { Err(format!("{}{where_}", outcome.record.failure_summary()).into()) }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::trial_name;

    #[test]
    fn trial_names_follow_the_folders() {
        let root = Path::new("/repo/scenarios");
        assert_eq!(trial_name(root, &root.join("plur.toml")), "drill::plur");
        assert_eq!(trial_name(root, &root.join("billing/eu-west.toml")), "drill::billing::eu_west");
    }
}
