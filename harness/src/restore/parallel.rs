//! Parallel restore of a plain dump, which `psql` cannot do and `pg_restore` does only for
//! archives. The plain restore stays the single reader of the dump and sends the pre-data
//! section itself; this pool of connections takes what can run side by side:
//!
//! - the data section: each COPY block in batches of rows, each batch a `COPY ... FROM stdin`
//!   of its own on whichever connection is free, so that even one large table loads on every
//!   connection;
//! - the post-data section: index and constraint builds side by side, then the foreign keys
//!   side by side (retried when two of them deadlock on the tables they share).
//!
//! Anything else waits for the pool to be idle first ([`Pool::barrier`]), so every statement
//! still sees all that came before it in the dump. Memory holds at most `2 × jobs` batches.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::RestoreError;
use super::failure::statement_error;
use crate::dump::Statement;
use crate::secret::Redactor;

/// Rows of one COPY block sent as one batch: large enough that a batch's round trip is noise,
/// small enough that `2 × jobs` of them in memory stay a few MiB.
pub(super) const COPY_BATCH: usize = 2 * 1024 * 1024;

/// SQLSTATE `deadlock_detected`: two foreign keys locking the same pair of tables.
const DEADLOCK: &str = "40P01";

/// What can run beside other work of the same group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Group {
    /// COPY batches of the data section.
    Data,
    /// Indexes, primary keys, unique and check constraints.
    Build,
    /// Foreign keys, which need the builds (their referenced keys) done.
    ForeignKeys,
}

impl Group {
    /// The group a post-data statement belongs to, from its dump entry's type.
    pub(super) fn of(statement: &Statement) -> Option<Group> {
        match statement.entry.as_ref()?.kind.as_str() {
            "INDEX" | "CONSTRAINT" => Some(Group::Build),
            "FK CONSTRAINT" => Some(Group::ForeignKeys),
            _ => None,
        }
    }
}

pub(super) enum Job {
    /// Rows of a COPY block; `first_row` rows of the block came before them.
    Copy { statement: Arc<Statement>, first_row: u64, data: Vec<Vec<u8>> },
    /// Statements run in order on one connection: a build and what belongs to it (a comment
    /// on the index, `CLUSTER ON` in the same entry).
    Sql(Vec<Statement>),
}

struct Message {
    job: Job,
    /// The session settings in force at this point of the dump.
    settings: Arc<Vec<String>>,
}

/// Connections restoring side by side.
pub(super) struct Pool {
    tx: Option<mpsc::Sender<Message>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// The group of the jobs in flight; another group waits for them.
    group: Option<Group>,
}

struct Shared {
    pending: AtomicUsize,
    idle: Notify,
    /// A job failed: the jobs after it are dropped unrun.
    failed: AtomicBool,
    failure: Mutex<Option<RestoreError>>,
}

impl Pool {
    /// Opens `jobs` connections to `database`.
    pub(super) async fn open(
        options: PgConnectOptions,
        jobs: usize,
        redactor: &Redactor,
    ) -> Result<Pool, RestoreError> {
        let database = options.get_database().unwrap_or_default().to_owned();
        let (tx, rx) = mpsc::channel::<Message>(jobs);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let shared = Arc::new(Shared {
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
        });
        let mut workers = Vec::with_capacity(jobs);
        for _ in 0..jobs {
            let conn = PgConnection::connect_with(&options)
                .await
                .map_err(|source| RestoreError::Connect { database: database.clone(), source })?;
            workers.push(tokio::spawn(work(conn, rx.clone(), shared.clone(), redactor.clone())));
        }
        Ok(Pool { tx: Some(tx), workers, shared, group: None })
    }

    /// Queues `job` of `group`; jobs of another group in flight finish first.
    pub(super) async fn submit(
        &mut self,
        group: Group,
        job: Job,
        settings: &Arc<Vec<String>>,
    ) -> Result<(), RestoreError> {
        if self.group.is_some_and(|g| g != group) {
            self.barrier().await?;
        }
        self.failed()?;
        self.group = Some(group);
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        let message = Message { job, settings: settings.clone() };
        if let Some(tx) = &self.tx
            && tx.send(message).await.is_ok()
        {
            return Ok(());
        }
        self.shared.pending.fetch_sub(1, Ordering::SeqCst);
        self.failed()?;
        Err(RestoreError::Read("the restore's connections stopped".into()))
    }

    /// Waits until every queued job is done; the first error any of them met.
    pub(super) async fn barrier(&mut self) -> Result<(), RestoreError> {
        loop {
            let idle = self.shared.idle.notified();
            if self.shared.pending.load(Ordering::SeqCst) == 0 {
                break;
            }
            idle.await;
        }
        self.group = None;
        self.failed()
    }

    /// The first error a job met, if any (the jobs after it are dropped).
    pub(super) fn failed(&self) -> Result<(), RestoreError> {
        if !self.shared.failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        match self.shared.failure.lock().ok().and_then(|mut f| f.take()) {
            Some(error) => Err(error),
            // Taken already: the caller stopped at it.
            None => Err(RestoreError::Read("the restore stopped at an earlier error".into())),
        }
    }

    /// Waits for the jobs in flight and closes the connections.
    pub(super) async fn close(mut self) -> Result<(), RestoreError> {
        let result = self.barrier().await;
        self.tx = None;
        for worker in self.workers.drain(..) {
            let _ = worker.await;
        }
        result
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Dropped without close (an error, a timeout): stop at once; the server rolls back
        // whatever was in flight when the connections go.
        for worker in &self.workers {
            worker.abort();
        }
    }
}

async fn work(
    mut conn: PgConnection,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Message>>>,
    shared: Arc<Shared>,
    redactor: Redactor,
) {
    let mut applied: Option<Arc<Vec<String>>> = None;
    loop {
        let Some(message) = rx.lock().await.recv().await else { break };
        if !shared.failed.load(Ordering::SeqCst)
            && let Err(error) = run(&mut conn, &mut applied, message, &redactor).await
            && let Ok(mut failure) = shared.failure.lock()
            && !shared.failed.swap(true, Ordering::SeqCst)
        {
            *failure = Some(error);
        }
        if shared.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            shared.idle.notify_waiters();
        }
    }
    conn.close().await.ok();
}

async fn run(
    conn: &mut PgConnection,
    applied: &mut Option<Arc<Vec<String>>>,
    message: Message,
    redactor: &Redactor,
) -> Result<(), RestoreError> {
    if !applied.as_ref().is_some_and(|a| Arc::ptr_eq(a, &message.settings)) {
        for setting in message.settings.iter() {
            conn.execute(sqlx::raw_sql(setting))
                .await
                .map_err(|source| RestoreError::Setting { setting: setting.to_string(), source })?;
        }
        *applied = Some(message.settings.clone());
    }
    match message.job {
        Job::Copy { statement, first_row, data } => {
            let located = |e: sqlx::Error| {
                let mut error = statement_error(redactor, &statement, e);
                if let RestoreError::Statement(failure) = &mut error
                    && failure.line > statement.line
                {
                    failure.line += first_row;
                }
                error
            };
            let mut copy = conn.copy_in_raw(&statement.sql).await.map_err(located)?;
            for chunk in data {
                if let Err(e) = copy.send(chunk).await {
                    return Err(located(e));
                }
            }
            copy.finish().await.map_err(located)?;
            Ok(())
        }
        Job::Sql(statements) => {
            for statement in statements {
                let mut attempts = 0;
                loop {
                    match conn.execute(sqlx::raw_sql(&statement.sql)).await {
                        Ok(_) => break,
                        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(DEADLOCK) && attempts < 5 => {
                            attempts += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(50 * attempts)).await;
                        }
                        Err(e) => return Err(statement_error(redactor, &statement, e)),
                    }
                }
            }
            Ok(())
        }
    }
}

/// The session settings a dump makes as it goes (`SET search_path ...`,
/// `set_config('search_path', '', false)`, `SET default_tablespace = ''`), kept so that every
/// connection of the pool works under the same ones as the main connection at that point.
#[derive(Default)]
pub(super) struct Settings {
    by_name: Vec<(String, String)>,
    current: Arc<Vec<String>>,
}

impl Settings {
    /// Records `sql` when it changes a session setting.
    pub(super) fn observe(&mut self, sql: &str) {
        let Some(name) = setting_name(sql) else { return };
        match self.by_name.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = sql.to_owned(),
            None => self.by_name.push((name, sql.to_owned())),
        }
        self.current = Arc::new(self.by_name.iter().map(|(_, sql)| sql.clone()).collect());
    }

    pub(super) fn current(&self) -> &Arc<Vec<String>> {
        &self.current
    }
}

/// The setting a session-level `SET`/`RESET`/`set_config(..., false)` statement changes.
pub(super) fn setting_name(sql: &str) -> Option<String> {
    let words: Vec<String> = sql.split_whitespace().take(3).map(|w| w.to_ascii_lowercase()).collect();
    let first = words.first()?.as_str();
    if first == "set" || first == "reset" {
        let second = words.get(1)?.trim_end_matches(';');
        return match second {
            "local" | "transaction" | "constraints" => None,
            "session" => match words.get(2).map(|w| w.trim_end_matches(';')) {
                Some("authorization") => Some("session authorization".into()),
                _ => None,
            },
            name => Some(name.split('=').next().unwrap_or(name).to_owned()),
        };
    }
    let lower = sql.to_ascii_lowercase();
    let call =
        lower.strip_prefix("select pg_catalog.set_config(").or_else(|| lower.strip_prefix("select set_config("))?;
    if !call.trim_end().trim_end_matches(';').trim_end().ends_with("false)") {
        return None;
    }
    let name = call.trim_start().strip_prefix('\'')?.split('\'').next()?;
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_settings_are_tracked_by_name() {
        let mut settings = Settings::default();
        settings.observe("SET statement_timeout = 0;");
        settings.observe("SELECT pg_catalog.set_config('search_path', '', false);");
        settings.observe("SET default_tablespace = '';");
        settings.observe("SET LOCAL work_mem = '1GB';");
        settings.observe("SELECT pg_catalog.set_config('x.y', 'z', true);");
        settings.observe("CREATE TABLE t (a int);");
        settings.observe("SET default_tablespace = fast;");
        settings.observe("SET SESSION AUTHORIZATION app;");
        settings.observe("RESET SESSION AUTHORIZATION;");
        assert_eq!(
            settings.current().as_slice(),
            [
                "SET statement_timeout = 0;",
                "SELECT pg_catalog.set_config('search_path', '', false);",
                "SET default_tablespace = fast;",
                "RESET SESSION AUTHORIZATION;",
            ]
        );
    }
}
