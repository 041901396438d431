//! Restores a plain-format dump: one reader thread decompresses and splits the dump, the
//! restore sends each statement and streams COPY data to the server. Memory holds a few chunks
//! in flight, whatever the dump's size. Like `psql -v ON_ERROR_STOP=1`, the first error stops it.
//! With more than one job, COPY data and index builds go to a pool of connections
//! ([`super::parallel`]); the result is the same database.

use crate::outcome::RestoreStats;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use tokio::sync::mpsc;

use super::RestoreError;
use super::failure::statement_error;
use super::parallel::{self, COPY_BATCH, Group, Job, Pool, Settings};
use super::reader::{self, Read};
use super::statements::{copy_table, role_statement, without_grantor};
use crate::dump::{Item, Statement};
use crate::provision::Target;
use crate::secret::Redactor;
use crate::source::verify;

/// Items in flight between the reader thread and the restore (each at most one COPY chunk).
const IN_FLIGHT: usize = 16;

/// What the reader thread hands the restore: the dump's items, or why it could not read on.
type Items = mpsc::Receiver<Result<Item, RestoreError>>;

/// Restore progress: raw bytes of the backup read so far.
pub(crate) type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// Restores the dump at `path` into `database` on `target`, on `jobs` connections. A dump that
/// creates roles (`pg_dumpall` of a whole cluster: its roles, then each database) has them
/// applied as a globals file's are (see [`restore_globals`]): the superuser the drill connects
/// as is left as it is, and a role that exists already is kept.
pub(crate) async fn restore(
    target: &Target,
    database: &str,
    path: &Path,
    redactor: &Redactor,
    progress: Progress<'_>,
    jobs: usize,
    creates_roles: bool,
) -> Result<RestoreStats, RestoreError> {
    run(target, database, Read::Plain(path, None), redactor, progress, Roles::of_dump(target, creates_roles), jobs)
        .await
}

/// The roles a restore leaves alone (`protect`: statements about them are skipped, and a
/// `CREATE ROLE` of one that exists is kept), and whether the file is a globals file only.
pub(super) struct Roles {
    protect: Option<Vec<String>>,
    globals_file: bool,
}

impl Roles {
    /// A dump's: one that creates roles (`pg_dumpall` of a whole cluster) leaves the superuser
    /// the drill connects as alone.
    pub(super) fn of_dump(target: &Target, creates_roles: bool) -> Roles {
        Roles { protect: creates_roles.then(|| vec![target.user.clone()]), globals_file: false }
    }
}

/// Applies a `pg_dumpall --globals-only` file: roles (and their memberships and settings)
/// before the dump that grants to them. Roles that already exist are kept, and the statements
/// about the superuser the drill connects as are skipped: a production globals file would
/// otherwise set its password, and lock the drill out of its own target.
/// `protect` lists more roles to leave as they are (on a shared server, every role that was
/// there before the drill).
pub(crate) async fn restore_globals(
    target: &Target,
    path: &Path,
    redactor: &Redactor,
    protect: &[String],
) -> Result<RestoreStats, RestoreError> {
    let mut protected = protect.to_vec();
    protected.push(target.user.clone());
    let roles = Roles { protect: Some(protected), globals_file: true };
    run(target, &target.maintenance_db, Read::Plain(path, None), redactor, &|_| {}, roles, 1).await
}

/// Restores the dump `read` says (decrypted with its key as it is read when it is encrypted;
/// verified by the same read when it is read once).
pub(super) async fn run(
    target: &Target,
    database: &str,
    read: Read<'_>,
    redactor: &Redactor,
    progress: Progress<'_>,
    roles: Roles,
    jobs: usize,
) -> Result<RestoreStats, RestoreError> {
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::channel::<Result<Item, RestoreError>>(IN_FLIGHT);
    let verifying = matches!(read, Read::Verifying(_) | Read::Stream(_));
    let reader = reader::spawn(read, tx, raw_bytes.clone());

    let mut session = Session {
        target,
        redactor,
        conn: connect(target, database).await?,
        database: database.to_owned(),
        restricted: None,
        stats: RestoreStats { jobs: jobs.max(1), ..RestoreStats::default() },
        globals: roles.protect,
        globals_file: roles.globals_file,
        pool: None,
        settings: Settings::default(),
        held: None,
        keyed_tables: None,
    };
    let mut last_report = Instant::now();
    let result = async {
        while let Some(item) = rx.recv().await {
            let item = item?;
            session.apply(item, &mut rx).await?;
            if let Some(pool) = &session.pool {
                pool.failed()?;
            }
            if last_report.elapsed() >= Duration::from_millis(200) {
                progress(raw_bytes.load(Ordering::Relaxed));
                last_report = Instant::now();
            }
        }
        session.flush_held().await?;
        match session.pool.take() {
            Some(pool) => pool.close().await,
            None => Ok(()),
        }
    }
    .await;
    // Stop the reader whatever happened (it ends when the channel closes); one that verifies
    // reads on to its verdict, which the drill waits for, not the restore (and one of a
    // program's SQL ends with the program).
    drop(rx);
    if result.is_ok() || !verifying {
        let _ = reader.await;
    }
    progress(raw_bytes.load(Ordering::Relaxed));
    result?;
    let Session { conn, database, stats, .. } = session;
    conn.close().await.ok();
    Ok(RestoreStats { database, ..stats })
}

async fn connect(target: &Target, database: &str) -> Result<PgConnection, RestoreError> {
    PgConnection::connect_with(&target.restore_options(database))
        .await
        .map_err(|source| RestoreError::Connect { database: database.to_owned(), source })
}

struct Session<'a> {
    target: &'a Target,
    redactor: &'a Redactor,
    conn: PgConnection,
    database: String,
    /// The `\restrict` key in force: no meta-command but `\unrestrict key` is allowed.
    restricted: Option<String>,
    stats: RestoreStats,
    /// Applying roles, of a globals file (see [`restore_globals`]) or a cluster dump: the roles
    /// to leave alone.
    globals: Option<Vec<String>>,
    /// A globals file: one connection, whatever the jobs.
    globals_file: bool,
    /// The connections working beside this one (with more than one job, once data starts).
    pool: Option<Pool>,
    /// The session settings made so far, for the pool's connections.
    settings: Settings,
    /// A build statement not yet queued: what follows may belong to it (a comment on the
    /// index it creates), to run after it on the same connection.
    held: Option<(Group, Vec<Statement>, Arc<Vec<String>>)>,
    /// Tables a foreign key already binds when the data starts (extension tables, such as
    /// Apache AGE's catalog, or a hand-written dump): their COPY blocks load in dump order.
    keyed_tables: Option<std::collections::HashSet<u32>>,
}

/// Dump entries that load data: they run beside the COPY batches in flight.
fn is_data(statement: &Statement) -> bool {
    statement.entry.as_ref().is_some_and(|e| matches!(e.kind.as_str(), "TABLE DATA" | "SEQUENCE SET"))
}

/// Rows in a chunk of COPY data (whole lines; text format escapes newlines in values).
/// A piece of a COPY block as the reader hands it over.
enum CopyPiece {
    Data(Vec<u8>),
    /// The block's end, with its row count.
    End(u64),
}

/// The next piece of the COPY block being read; anything else there is a read error.
async fn next_copy_piece(rx: &mut Items) -> Result<CopyPiece, RestoreError> {
    match rx.recv().await {
        Some(Ok(Item::CopyData(data))) => Ok(CopyPiece::Data(data)),
        Some(Ok(Item::CopyEnd { rows, .. })) => Ok(CopyPiece::End(rows)),
        Some(Ok(_)) => Err(RestoreError::Read("a statement appeared inside COPY data".into())),
        Some(Err(error)) => Err(error),
        None => Err(RestoreError::Read("the dump ended inside COPY data".into())),
    }
}

fn rows_in(chunk: &[u8]) -> u64 {
    chunk.iter().filter(|&&b| b == b'\n').count() as u64
}

impl Session<'_> {
    async fn apply(&mut self, item: Item, rx: &mut Items) -> Result<(), RestoreError> {
        // Verify refused these already; the file is read again here, so refuse them again.
        if let Some(what) = verify::refused(&item) {
            return Err(RestoreError::Refused { line: verify::item_line(&item), what });
        }
        let parallel = self.stats.jobs > 1 && !self.globals_file;
        let joins_held = matches!(&item, Item::Statement(s) if parallel && self.belongs_to_held(s));
        match item {
            Item::Statement(statement) if statement.copy_from_stdin && parallel => {
                if self.keyed(&statement).await? {
                    // Its rows must be in before the next table's: load it alone, in order.
                    self.flush_held().await?;
                    if let Some(pool) = &mut self.pool {
                        pool.barrier().await?;
                    }
                    return self.copy(statement, rx).await;
                }
                self.copy_parallel(statement, rx).await
            }
            Item::Statement(statement) if statement.copy_from_stdin => self.copy(statement, rx).await,
            Item::Statement(statement) if joins_held || (parallel && Group::of(&statement).is_some()) => {
                if !joins_held {
                    self.flush_held().await?;
                    let group = Group::of(&statement).expect("a build statement");
                    self.held = Some((group, Vec::new(), self.settings.current().clone()));
                }
                self.stats.statements += 1;
                self.stats.bytes += statement.sql.len() as u64;
                if let Some((_, statements, _)) = &mut self.held {
                    statements.push(statement);
                }
                Ok(())
            }
            Item::Statement(statement) => self.execute(statement).await,
            Item::Meta { command, args, line } => {
                if matches!(command.as_str(), "connect" | "c") {
                    // The pool's connections are to the database being left.
                    self.flush_held().await?;
                    if let Some(pool) = self.pool.take() {
                        pool.close().await?;
                    }
                    self.settings = Settings::default();
                    self.keyed_tables = None;
                }
                self.meta(&command, &args, line).await
            }
            Item::CopyData(_) | Item::CopyEnd { .. } => {
                Err(RestoreError::Read("COPY data without a COPY statement".into()))
            }
        }
    }

    /// Runs a statement on the restore's own connection, once the pool is idle (unless it loads
    /// data or makes a setting); a statement about a protected role is skipped, and a role that
    /// exists already is kept.
    async fn execute(&mut self, statement: Statement) -> Result<(), RestoreError> {
        self.flush_held().await?;
        if let Some(pool) = &mut self.pool
            && !is_data(&statement)
            && parallel::setting_name(&statement.sql).is_none()
        {
            pool.barrier().await?;
        }
        self.settings.observe(&statement.sql);
        let about_role = self.globals.as_ref().and_then(|_| role_statement(&statement.sql));
        if let (Some(protected), Some((_, role))) = (&self.globals, &about_role)
            && protected.contains(role)
        {
            return Ok(());
        }
        self.stats.statements += 1;
        self.stats.bytes += statement.sql.len() as u64;
        let redactor = self.redactor;
        match self.conn.execute(sqlx::raw_sql(&statement.sql)).await {
            Ok(_) => Ok(()),
            // The role exists already (declared in the scenario, or built in): keep it.
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("42710")
                    && about_role.as_ref().is_some_and(|(verb, _)| verb == "create") =>
            {
                Ok(())
            }
            // A membership a globals file grants as another role (`GRANTED BY supabase_admin`,
            // PostgreSQL 16's pg_dumpall): that role is the source's bootstrap superuser, here an
            // ordinary one, which may not grant as it. Granted by the drill's superuser instead,
            // as PostgreSQL records any superuser's grant: the membership is the same.
            Err(sqlx::Error::Database(db))
                if self.globals_file
                    && db.code().as_deref() == Some("42501")
                    && without_grantor(&statement.sql).is_some() =>
            {
                let sql = without_grantor(&statement.sql).expect("checked above");
                match self.conn.execute(sqlx::raw_sql(&sql)).await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(statement_error(redactor, &statement, e)),
                }
            }
            Err(e) => Err(statement_error(redactor, &statement, e)),
        }
    }

    async fn copy(&mut self, statement: Statement, rx: &mut Items) -> Result<(), RestoreError> {
        self.stats.statements += 1;
        self.stats.copy_blocks += 1;
        let redactor = self.redactor;
        let mut copy = match self.conn.copy_in_raw(&statement.sql).await {
            Ok(copy) => copy,
            Err(e) => return Err(statement_error(redactor, &statement, e)),
        };
        let mut sent = 0u64;
        loop {
            match next_copy_piece(rx).await {
                Ok(CopyPiece::Data(data)) => {
                    sent += data.len() as u64;
                    if let Err(e) = copy.send(data).await {
                        drop(copy);
                        return Err(statement_error(redactor, &statement, e));
                    }
                }
                Ok(CopyPiece::End(rows)) => {
                    return match copy.finish().await {
                        Ok(_) => {
                            self.stats.rows += rows;
                            self.stats.bytes += sent + statement.sql.len() as u64;
                            Ok(())
                        }
                        Err(e) => Err(statement_error(redactor, &statement, e)),
                    };
                }
                Err(e) => {
                    let _ = copy.abort("the dump could not be read to the end of the COPY data").await;
                    return Err(e);
                }
            }
        }
    }

    /// Whether `statement` belongs to the held build job: the same dump entry (`CLUSTER ON`
    /// after its index), or a comment right after it.
    fn belongs_to_held(&self, statement: &Statement) -> bool {
        if let Some((_, statements, _)) = &self.held {
            let last = statements.last().and_then(|s| s.entry.as_ref());
            let same_entry = matches!((last, &statement.entry), (Some(a), Some(b)) if Arc::ptr_eq(a, b));
            let comment = statement.entry.as_ref().is_some_and(|e| e.kind == "COMMENT");
            if same_entry || comment {
                return true;
            }
        }
        false
    }

    /// Whether the COPY's table is bound by a foreign key already (see `keyed_tables`).
    async fn keyed(&mut self, statement: &Statement) -> Result<bool, RestoreError> {
        let redactor = self.redactor;
        let failed = |e: sqlx::Error| statement_error(redactor, statement, e);
        if self.keyed_tables.is_none() {
            let oids: Vec<sqlx::postgres::types::Oid> = sqlx::query_scalar(
                "SELECT DISTINCT unnest(ARRAY[conrelid, confrelid]) FROM pg_catalog.pg_constraint WHERE contype = 'f'",
            )
            .fetch_all(&mut self.conn)
            .await
            .map_err(failed)?;
            self.keyed_tables = Some(oids.into_iter().map(|o| o.0).collect());
        }
        if self.keyed_tables.as_ref().is_some_and(|k| k.is_empty()) {
            return Ok(false);
        }
        let Some(table) = copy_table(&statement.sql) else { return Ok(true) };
        let oid: Option<sqlx::postgres::types::Oid> = sqlx::query_scalar("SELECT pg_catalog.to_regclass($1)::oid")
            .bind(table)
            .fetch_one(&mut self.conn)
            .await
            .map_err(failed)?;
        Ok(oid.is_some_and(|oid| self.keyed_tables.as_ref().is_some_and(|k| k.contains(&oid.0))))
    }

    /// Queues the held build job.
    async fn flush_held(&mut self) -> Result<(), RestoreError> {
        if let Some((group, statements, settings)) = self.held.take() {
            self.pool().await?.submit(group, Job::Sql(statements), &settings).await?;
        }
        Ok(())
    }

    /// The pool, opened on first use.
    async fn pool(&mut self) -> Result<&mut Pool, RestoreError> {
        if self.pool.is_none() {
            let options = self.target.restore_options(&self.database);
            self.pool = Some(Pool::open(options, self.stats.jobs, self.redactor).await?);
        }
        Ok(self.pool.as_mut().expect("opened above"))
    }

    /// A COPY block in batches of rows, each loaded by whichever pool connection is free.
    async fn copy_parallel(&mut self, statement: Statement, rx: &mut Items) -> Result<(), RestoreError> {
        self.flush_held().await?;
        self.stats.statements += 1;
        self.stats.copy_blocks += 1;
        let statement = Arc::new(statement);
        let settings = self.settings.current().clone();
        let (mut batch, mut size, mut first_row, mut batch_rows, mut sent) = (Vec::new(), 0, 0, 0, 0u64);
        loop {
            match next_copy_piece(rx).await? {
                CopyPiece::Data(data) => {
                    size += data.len();
                    sent += data.len() as u64;
                    batch_rows += rows_in(&data);
                    batch.push(data);
                    if size >= COPY_BATCH {
                        let job =
                            Job::Copy { statement: statement.clone(), first_row, data: std::mem::take(&mut batch) };
                        self.pool().await?.submit(Group::Data, job, &settings).await?;
                        first_row += batch_rows;
                        (size, batch_rows) = (0, 0);
                    }
                }
                CopyPiece::End(rows) => {
                    // An empty block still runs its COPY: the table must exist.
                    if !batch.is_empty() || first_row == 0 {
                        let job = Job::Copy { statement: statement.clone(), first_row, data: batch };
                        self.pool().await?.submit(Group::Data, job, &settings).await?;
                    }
                    self.stats.rows += rows;
                    self.stats.bytes += sent + statement.sql.len() as u64;
                    return Ok(());
                }
            }
        }
    }

    async fn meta(&mut self, command: &str, args: &str, line: u64) -> Result<(), RestoreError> {
        let meta_err = |message: String| RestoreError::Meta { line, message };
        match command {
            "restrict" => {
                if self.restricted.is_some() {
                    return Err(meta_err("`\\restrict` while already restricted".into()));
                }
                let key = args.split_whitespace().next().unwrap_or_default();
                if key.is_empty() {
                    return Err(meta_err("`\\restrict` needs a key".into()));
                }
                self.restricted = Some(key.to_owned());
                Ok(())
            }
            "unrestrict" => {
                let key = args.split_whitespace().next().unwrap_or_default();
                match &self.restricted {
                    Some(current) if current == key => {
                        self.restricted = None;
                        Ok(())
                    }
                    Some(_) => Err(meta_err("`\\unrestrict` with a key that does not match `\\restrict`".into())),
                    None => Err(meta_err("`\\unrestrict` without `\\restrict`".into())),
                }
            }
            _ if self.restricted.is_some() => {
                Err(RestoreError::Refused { line, what: format!("`\\{command}` inside a `\\restrict` section") })
            }
            "connect" | "c" => {
                let database = crate::dump::scan::connect_database(args)
                    .ok_or_else(|| meta_err(format!("cannot read the database in `\\{command} {args}`")))?;
                let conn = connect(self.target, &database).await?;
                let old = std::mem::replace(&mut self.conn, conn);
                old.close().await.ok();
                self.database = database;
                Ok(())
            }
            other => Err(RestoreError::Refused { line, what: format!("the meta-command `\\{other}`") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::dump::scan::connect_database;

    #[test]
    fn connect_targets() {
        assert_eq!(connect_database("plur").as_deref(), Some("plur"));
        assert_eq!(
            connect_database("-reuse-previous=on \"dbname='plur enterprise'\"").as_deref(),
            Some("plur enterprise")
        );
        assert_eq!(connect_database("\"We\"\"ird\"").as_deref(), Some("We\"ird"));
        assert_eq!(connect_database(""), None);
    }
}
