//! A throwaway target and a plain restore into it, driven by pgdrill's own tests (the parallel
//! restore against the serial one) and benchmarks (how fast a target starts), through opaque
//! handles: no phase type is reachable from here.

use std::error::Error;
use std::path::Path;

use sqlx::postgres::PgConnectOptions;

use crate::provision::spec::{ContainerSpec, TargetKind, TargetSpec};
use crate::provision::{ProvisionContext, Target, Teardown};
use crate::secret::Redactor;

/// An error of a phase, as its text (with its causes) and its chain.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// A container target of the project's `image`, started as a drill starts one.
pub struct TestTarget {
    target: Target,
    teardown: Option<Teardown>,
    redactor: Redactor,
}

/// What one restore did.
#[derive(Debug, Clone, Copy)]
pub struct Restored {
    /// Rows loaded.
    pub rows: u64,
    /// Connections that loaded data side by side.
    pub jobs: usize,
}

impl TestTarget {
    /// Starts a container target of `image` for drill `drill_id` of scenario `scenario`.
    pub async fn start(image: &str, drill_id: &str, scenario: &str) -> Result<TestTarget, BoxError> {
        let spec = TargetSpec {
            database: scenario.to_owned(),
            kind: TargetKind::Container(ContainerSpec {
                image: Some(image.to_owned()),
                version: None,
                startup_timeout: std::time::Duration::from_secs(60),
                settings: Default::default(),
                memory: None,
                processes: None,
                disk: None,
                share: None,
            }),
        };
        let redactor = Redactor::new();
        let ctx = ProvisionContext {
            drill_id,
            scenario,
            redactor: &redactor,
            progress: &|_| {},
            backup: None,
            trusted: None,
            backup_major: None,
            physical: None,
            clone: None,
            restarts: true,
        };
        let (target, teardown) = crate::provision::start(&spec, &ctx).await?;
        Ok(TestTarget { target, teardown: Some(teardown), redactor })
    }

    /// How pgdrill connects to `database` on it.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        self.target.connect_options(database)
    }

    /// Creates `database` and restores the plain dump at `dump` into it on `jobs` connections.
    pub async fn restore_plain(&self, database: &str, dump: &Path, jobs: usize) -> Result<Restored, BoxError> {
        crate::restore::preflight::create_database(&self.target, database).await?;
        let stats =
            crate::restore::plain::restore(&self.target, database, dump, &self.redactor, &|_| {}, jobs, false).await?;
        Ok(Restored { rows: stats.rows, jobs: stats.jobs })
    }

    /// Applies a globals file (`pg_dumpall --globals-only`), as a drill's preflight does.
    pub async fn restore_globals(&self, globals: &Path) -> Result<(), BoxError> {
        crate::restore::plain::restore_globals(&self.target, globals, &self.redactor, &[]).await?;
        Ok(())
    }

    /// Removes it.
    pub async fn remove(mut self) -> Result<(), BoxError> {
        match self.teardown.take() {
            Some(teardown) => teardown.run().await.map(drop).map_err(Into::into),
            None => Ok(()),
        }
    }
}

/// Whether pgdrill's allow-list holds the built-in `name` whose overloads have the volatilities
/// `volatilities` (`pg_proc.provolatile`, e.g. `"sv"`): each must be allowed.
pub fn allowed_builtin(name: &str, volatilities: &str) -> bool {
    volatilities.chars().all(|v| crate::check::loophole::allowed::allowed(name, &v.to_string()))
}
