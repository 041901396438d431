//! `pgdrill fingerprint`: the content fingerprints of a source database's tables, taken in the
//! snapshot a dump was (or is being) made in, for a drill to compare its restore with.

use std::path::PathBuf;
use std::time::Instant;

use sqlx::{Connection, PgConnection};

use crate::conninfo::ConninfoError;
use crate::evidence::sign::{Signer, SigningKeyError};
use crate::fingerprint::{self, FingerprintError, FingerprintFile, Readers, RowText, TableFingerprint};
use crate::pg::{QualifiedName, SqlError};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The source database (read only: a replica will do).
    #[arg(long, value_name = "URL", env = "PGDRILL_FINGERPRINT_DSN", hide_env_values = true)]
    dsn: String,
    /// The fingerprint file to write (JSON), to keep beside the backup.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Tables to fingerprint (repeat, or separate with commas) [default: every table but
    /// extensions' and partitions', which their parent covers].
    #[arg(long = "table", value_name = "TABLE", value_delimiter = ',')]
    tables: Vec<String>,
    /// Hash only these columns of a table: `TABLE=COLUMN,COLUMN` (repeat) [default: all].
    #[arg(long = "columns", value_name = "TABLE=COLUMNS")]
    columns: Vec<String>,
    /// Split a table by ranges of a key column: `TABLE=COLUMN` (repeat). Differences are then
    /// named by range, and a table too large to sort at once is taken range by range.
    #[arg(long = "key", value_name = "TABLE=COLUMN")]
    keys: Vec<String>,
    /// How many ranges a keyed table is split into.
    #[arg(long, value_name = "N", default_value_t = 16)]
    ranges: u32,
    /// Fingerprint only K of a keyed table's ranges, spread evenly: a sample, for tables too
    /// large to read whole.
    #[arg(long, value_name = "K")]
    sample: Option<u32>,
    /// Take the fingerprints in this exported snapshot (from `pg_export_snapshot()`, in a
    /// transaction still open): the one `pg_dump --snapshot` dumps.
    #[arg(long, value_name = "ID", conflicts_with = "dump")]
    snapshot: Option<String>,
    /// Also make the dump, in the very snapshot the fingerprints are taken in.
    #[arg(long, value_name = "FILE")]
    dump: Option<PathBuf>,
    /// The dump's format: custom, plain, directory or tar.
    #[arg(long, value_name = "FORMAT", default_value = "custom", requires = "dump")]
    dump_format: String,
    /// The pg_dump to run (its major at least the server's) [default: pg_dump on PATH].
    #[arg(long, value_name = "PROGRAM", requires = "dump")]
    pg_dump: Option<PathBuf>,
    /// Sessions that read rows at once, each with a thread that hashes them [default: the
    /// machine's cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Memory each reading session sorts its rows' digests in before it writes them to a
    /// temporary file (PostgreSQL's units: `64MB`, `512kB`) [default: 16MB].
    #[arg(long, value_name = "SIZE", value_parser = sort_memory)]
    sort_memory: Option<usize>,
    /// Sign the file with this OpenSSH private key (else $PGDRILL_SIGNING_KEY_FILE, or the key's
    /// text in $PGDRILL_SIGNING_KEY), into FILE.sig: a drill with `allowed_signers` then trusts
    /// it even when it is kept beside the backup.
    #[arg(long, value_name = "KEY")]
    signing_key: Option<PathBuf>,
}

/// A live source's connection string that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("`{shown}` is not a connection string")]
pub(super) struct DsnError {
    /// The string as it may be shown (no password).
    shown: String,
    /// May hold the password: show the chain through [`crate::secret::error_text`].
    #[source]
    source: ConninfoError,
}

/// Why no fingerprint file was written. Its chain may hold the source's connection string:
/// shown through [`crate::secret::error_text`].
#[derive(Debug, thiserror::Error)]
enum TakeError {
    /// The signing key cannot be used (read first: a file that cannot be signed is not taken).
    #[error(transparent)]
    Signing {
        #[from]
        source: SigningKeyError,
    },
    /// `--dsn` cannot be read.
    #[error(transparent)]
    Dsn {
        #[from]
        source: DsnError,
    },
    /// The source does not take the connection.
    #[error("cannot connect to `{shown}`")]
    Connect {
        shown: String,
        #[source]
        source: sqlx::Error,
    },
    /// A statement of the transaction the fingerprints are taken in failed (`what` it was for).
    #[error("{what}")]
    Sql {
        what: &'static str,
        #[source]
        source: SqlError,
    },
    /// A table's fingerprint cannot be taken.
    #[error(transparent)]
    Fingerprint {
        #[from]
        source: FingerprintError,
    },
    /// `--table`, `--columns` or `--key` names no table.
    #[error("{message}")]
    Name { message: String },
    /// A `--columns` or `--key` option without its `=`.
    #[error("`{option}` is not TABLE=VALUE")]
    NotTableValue { option: String },
    /// The database has no table to fingerprint.
    #[error("`{database}` has no table to fingerprint")]
    NoTables { database: String },
    /// The dump or the fingerprint file cannot be read back.
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The fingerprint file or its signature cannot be written.
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key did not sign the file.
    #[error("cannot sign `{}`", path.display())]
    Sign {
        path: PathBuf,
        #[source]
        source: ssh_key::Error,
    },
    /// `--dump-format` names no format of pg_dump's.
    #[error("`{format}` is not a pg_dump format (custom, plain, directory or tar)")]
    DumpFormat { format: String },
    /// `--dsn` cannot be made into pg_dump's `--dbname`.
    #[error(transparent)]
    Conninfo {
        #[from]
        source: ConninfoError,
    },
    /// pg_dump cannot be run.
    #[error("cannot run `{}`", program.display())]
    Run {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// pg_dump failed; what it wrote on its standard error.
    #[error("`{}` failed ({status}): {stderr}", program.display())]
    DumpFailed { program: PathBuf, status: std::process::ExitStatus, stderr: String },
}

/// A `--sort-memory` that is not a size pgdrill can sort in.
#[derive(Debug, thiserror::Error)]
enum SizeError {
    /// Not in PostgreSQL's units.
    #[error("not a size (such as 64MB or 512kB)")]
    Unreadable,
    /// Below a kilobyte, or beyond what this machine addresses.
    #[error("out of range: from 1kB to this machine's address space")]
    Range,
}

/// `--sort-memory`: a size in PostgreSQL's units, at least a kilobyte.
fn sort_memory(text: &str) -> Result<usize, SizeError> {
    let bytes = crate::pg::parse_size(text).ok_or(SizeError::Unreadable)?;
    usize::try_from(bytes).ok().filter(|b| *b >= 1024).ok_or(SizeError::Range)
}

/// A failed statement's error, said as `what` it was for.
fn sql(what: &'static str) -> impl Fn(sqlx::Error) -> TakeError {
    move |e| TakeError::Sql { what, source: e.into() }
}

/// A table's name as written in an option.
fn table_name(text: &str) -> Result<QualifiedName, TakeError> {
    QualifiedName::parse(text).map_err(|e| TakeError::Name { message: e.to_string() })
}

/// Runs it; prints what it wrote, or why not.
pub(super) async fn run(args: Args) -> bool {
    match take(&args).await {
        Ok(file) => {
            let rows: u64 = file.tables.iter().map(|t| t.rows).sum();
            outln!(
                "fingerprints of {} tables ({rows} rows) of `{}` written to {}{}",
                file.tables.len(),
                file.database,
                args.output.display(),
                file.dump.as_ref().map(|d| format!(", in the snapshot of the dump {}", d.file)).unwrap_or_default()
            );
            true
        }
        Err(e) => {
            eprintln!("error: {}", crate::secret::error_text(&e));
            false
        }
    }
}

async fn take(args: &Args) -> Result<FingerprintFile, TakeError> {
    // The key is read first: a fingerprint that cannot be signed as asked is not taken.
    let signer = Signer::from_env(args.signing_key.as_deref())?;
    let (options, shown) = source_options(&args.dsn)?;
    let mut conn = PgConnection::connect_with(&options).await.map_err(|source| TakeError::Connect { shown, source })?;
    let mut tx = conn.begin().await.map_err(sql("cannot begin a transaction"))?;
    let (snapshot, dump) = in_snapshot(args, &mut tx).await?;
    fingerprint::in_settings(&mut tx).await?;
    let (database, server_version): (String, String) =
        sqlx::query_as("SELECT pg_catalog.current_database()::text, pg_catalog.current_setting('server_version')")
            .fetch_one(&mut *tx)
            .await
            .map_err(sql("cannot read the server"))?;
    let memory = args.sort_memory.unwrap_or(fingerprint::MEMORY);
    let mut readers =
        Readers::new(&mut tx, options, snapshot.clone(), args.jobs.map_or(0, usize::from), memory).await?;
    let tables = every_fingerprint(args, &mut tx, &mut readers).await;
    readers.close().await;
    let tables = tables?;
    let _ = tx.commit().await;
    if tables.is_empty() {
        return Err(TakeError::NoTables { database });
    }
    let file = FingerprintFile {
        schema: fingerprint::SCHEMA.into(),
        taken_at: time::OffsetDateTime::now_utc(),
        database,
        server_version,
        snapshot,
        dump,
        tables,
    };
    save(args, &file, signer)?;
    Ok(file)
}

/// Makes the transaction `conn` the one the fingerprints are taken in: repeatable read, in the
/// snapshot `--snapshot` names, or in the one `--dump`'s pg_dump is then run in. The snapshot,
/// and the dump made.
async fn in_snapshot(
    args: &Args,
    conn: &mut PgConnection,
) -> Result<(Option<String>, Option<fingerprint::DumpMade>), TakeError> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *conn)
        .await
        .map_err(sql("cannot set the transaction's isolation"))?;
    if let Some(id) = &args.snapshot {
        sqlx::query(&format!("SET TRANSACTION SNAPSHOT {}", crate::pg::quote_literal(id)))
            .execute(&mut *conn)
            .await
            .map_err(sql("cannot take the snapshot (is the transaction that exported it still open?)"))?;
    }
    let Some(file) = &args.dump else { return Ok((args.snapshot.clone(), None)) };
    let id: String = sqlx::query_scalar("SELECT pg_catalog.pg_export_snapshot()")
        .fetch_one(&mut *conn)
        .await
        .map_err(sql("cannot export a snapshot"))?;
    run_pg_dump(args, file, &id).await?;
    // A directory-format dump is named by its table of contents.
    let hashed = if file.is_dir() { file.join("toc.dat") } else { file.clone() };
    let sha256 =
        crate::source::read::sha256_file(&hashed).map_err(|source| TakeError::Read { path: hashed, source })?;
    Ok((Some(id), Some(fingerprint::DumpMade { file: file.display().to_string(), sha256 })))
}

/// The fingerprint of each table asked (by default every table), each said as it is taken.
async fn every_fingerprint(
    args: &Args,
    conn: &mut PgConnection,
    readers: &mut Readers,
) -> Result<Vec<TableFingerprint>, TakeError> {
    let names = match args.tables.is_empty() {
        false => args.tables.iter().map(|t| table_name(t)).collect::<Result<Vec<_>, _>>()?,
        true => every_table(conn).await?,
    };
    let mut tables = Vec::new();
    for table in &names {
        let started = Instant::now();
        let fp = table_fingerprint(args, conn, readers, table).await?;
        eprintln!("{table}: {} ({:.1} s; {})", fp.summary(), started.elapsed().as_secs_f64(), readers.last());
        tables.push(fp);
    }
    Ok(tables)
}

/// Writes the file, and its signature when a key is given (else removes a signature left from
/// an earlier file, which would not match this one).
fn save(args: &Args, file: &FingerprintFile, signer: Option<Signer>) -> Result<(), TakeError> {
    let output = &args.output;
    file.save(output).map_err(|source| TakeError::Write { path: output.clone(), source })?;
    let signature = fingerprint::signature_path(output);
    let Some(signer) = signer else {
        let _ = std::fs::remove_file(&signature);
        return Ok(());
    };
    let bytes = std::fs::read(output).map_err(|source| TakeError::Read { path: output.clone(), source })?;
    let pem = signer
        .sign_in(fingerprint::SIGNATURE_NAMESPACE, &bytes)
        .map_err(|source| TakeError::Sign { path: output.clone(), source })?;
    std::fs::write(&signature, pem).map_err(|source| TakeError::Write { path: signature.clone(), source })?;
    eprintln!("signed by {} into {}", signer.fingerprint(), signature.display());
    Ok(())
}

/// How pgdrill connects to a live source (`baseline --dsn`, `fingerprint --dsn`): its sessions
/// pinned as on a restore, and the connection string as it may be shown (no password).
pub(super) fn source_options(dsn: &str) -> Result<(sqlx::postgres::PgConnectOptions, String), DsnError> {
    // Every form libpq reads: a URI or key=value pairs, a socket folder as the host.
    let shown = crate::conninfo::shown(dsn);
    let options = match crate::conninfo::options(dsn) {
        Ok(options) => options,
        Err(source) => return Err(DsnError { shown, source }),
    };
    Ok((crate::session::pinned(options, crate::session::Pins::default()), shown))
}

/// `TABLE=VALUE` options that name `table`.
fn option_for<'a>(options: &'a [String], table: &QualifiedName) -> Result<Option<&'a str>, TakeError> {
    for option in options {
        let (name, value) =
            option.split_once('=').ok_or_else(|| TakeError::NotTableValue { option: option.clone() })?;
        if table_name(name)? == *table {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

async fn table_fingerprint(
    args: &Args,
    conn: &mut PgConnection,
    readers: &mut Readers,
    table: &QualifiedName,
) -> Result<TableFingerprint, TakeError> {
    let columns: Option<Vec<String>> =
        option_for(&args.columns, table)?.map(|c| c.split(',').map(|s| s.trim().to_owned()).collect());
    let key = option_for(&args.keys, table)?;
    let described = fingerprint::describe(conn, table, columns.as_deref(), key).await?;
    let mut spans: Vec<fingerprint::Span> = vec![(None, None)];
    let mut sampled_of = None;
    if key.is_some() {
        let bounds = fingerprint::bounds(conn, &described, args.ranges).await?;
        // The last range is open: rows past the largest key read now still belong to it.
        if !bounds.is_empty() {
            spans = fingerprint::spans(&bounds, true);
        }
        if let Some(k) = args.sample.filter(|k| (*k as usize) < spans.len()) {
            let n = spans.len();
            sampled_of = Some(n);
            spans = (0..k as usize).map(|i| spans[i * n / k as usize].clone()).collect();
        }
    }
    let ranges = readers.fingerprint(conn, &described, &spans, RowText::Copy).await?;
    let key = key.map(str::to_owned);
    Ok(TableFingerprint::new(table.clone(), described.columns, RowText::Copy, key, ranges, sampled_of))
}

/// Every table of the database but the catalogs', extensions' and partitions' (their parent
/// covers their rows).
async fn every_table(conn: &mut PgConnection) -> Result<Vec<QualifiedName>, TakeError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname <> 'information_schema' \
         AND n.nspname !~ '^pg_' AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d \
           WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e') \
         ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(sql("cannot list the tables"))?;
    Ok(rows.into_iter().map(|(schema, name)| QualifiedName::new(schema, name)).collect())
}

/// pg_dump of the same database in snapshot `id`; the password goes by the environment, never
/// the command line.
async fn run_pg_dump(args: &Args, file: &std::path::Path, id: &str) -> Result<(), TakeError> {
    let format = match args.dump_format.as_str() {
        "c" | "custom" => "custom",
        "p" | "plain" => "plain",
        "d" | "directory" => "directory",
        "t" | "tar" => "tar",
        other => return Err(TakeError::DumpFormat { format: other.to_owned() }),
    };
    // Any form libpq reads; its password goes by the environment, off pg_dump's command line.
    let (conninfo, password) = crate::conninfo::without_password(&args.dsn)?;
    let program = args.pg_dump.clone().unwrap_or_else(|| "pg_dump".into());
    let mut command = tokio::process::Command::new(&program);
    command
        .arg(format!("--snapshot={id}"))
        .arg(format!("--format={format}"))
        .arg(format!("--file={}", file.display()))
        .arg("--no-password")
        .arg(format!("--dbname={conninfo}"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let started = Instant::now();
    let out = match command.output().await {
        Ok(out) => out,
        Err(source) => return Err(TakeError::Run { program, source }),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(TakeError::DumpFailed { program, status: out.status, stderr });
    }
    eprintln!("dumped to {} in snapshot {id} ({:.1} s)", file.display(), started.elapsed().as_secs_f64());
    Ok(())
}
