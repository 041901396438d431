//! Custom, directory and tar archives, read and restored by the target's own pg_restore.
//!
//! Verified first (a directory-format archive, or on request), an archive is read whole before
//! the restore: `pg_restore -f -` turns it into SQL on the target's side and streams it back
//! through the same splitter and scanner as a plain dump: every data block is read (a truncated
//! or damaged archive fails here), meta-commands are refused as in a plain dump, and the drill
//! learns the extensions, roles and settings the archive needs and the rows of each table. A
//! custom archive whose data verify read and counted ([`crate::dump::blocks`]) has pg_restore
//! write every entry but its tables' COPY rows ([`Scan::Sql`]). The
//! restore is then `pg_restore --exit-on-error`, with `-j` for the formats that allow it. An
//! encrypted archive is decrypted by pgdrill as pg_restore reads it on its stdin (one job:
//! pg_restore reads a pipe in order), never written in the clear. A custom or tar file read once
//! has only its head read here (its entries before its data), and its restore is
//! [`super::archive_once`]'s.

use crate::outcome::RestoreStats;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::RestoreError;
use crate::dump::{DumpSummary, Format, Item, Scanner, SplitError, Splitter};
use crate::pg::major_of_version_text;
use crate::provision::Target;
use crate::provision::tools::{ChannelReader, Input};
use crate::secret::Redactor;
use crate::source::Backup;
use crate::source::decrypt::Key;
use crate::source::verify::{item_line, refused};

/// The task decrypting an archive into pg_restore's stdin: its error, if decryption failed.
type Feeder = tokio::task::JoinHandle<std::io::Result<()>>;

/// pg_restore's stdin and the task feeding it.
type Fed = (Input, Feeder);

/// How pg_restore reads an archive: its path as the target sees it, or its stdin, fed by
/// pgdrill: an encrypted archive (`key` given) as it is decrypted, never written in the clear,
/// and an archive file the target's server may not read (root's 0600, say: a container's server
/// is given no capability to read it) as it is.
fn archive_input(
    target: &Target,
    path: &std::path::Path,
    key: Option<&Key>,
) -> Result<(Option<String>, Option<Fed>), RestoreError> {
    let open = || crate::source::read::open_keyed(path, false, key).map_err(RestoreError::reread);
    // A directory-format archive is never encrypted (nor fed: pg_restore reads it as a folder).
    let opened = if key.is_some() && path.is_file() { Some(open()?) } else { None };
    if opened.as_ref().is_none_or(|o| o.envelope.is_none()) {
        match target.tools.path_of(path) {
            Ok(inside) => return Ok((Some(inside), None)),
            Err(_) if path.is_file() => {}
            Err(e) => return Err(RestoreError::reread(e)),
        }
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let mut reader = match opened {
        Some(opened) => opened.reader,
        None => open()?.reader,
    };
    let feeder = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = std::io::Read::read(&mut reader, &mut buf)?;
            if n == 0 || tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                return Ok(());
            }
        }
    });
    Ok((None, Some((rx, feeder))))
}

/// The feeder's failure to read (decrypt) the archive it gives pg_restore.
#[derive(Debug, thiserror::Error)]
#[error("reading the archive for pg_restore")]
struct Feeding {
    #[source]
    source: std::io::Error,
}

/// Waits for the feeder of an encrypted archive: its decryption error, if any.
async fn fed(feeder: Option<Feeder>) -> Result<(), RestoreError> {
    match feeder {
        None => Ok(()),
        Some(task) => match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(RestoreError::reread(Feeding { source })),
            Err(e) => Err(RestoreError::reread(e)),
        },
    }
}

/// How much of an archive preflight reads through pg_restore.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scan<'a> {
    /// Every entry and data block: what it needs, and that it reads to its end.
    Whole,
    /// Every entry but the tables' COPY data that verify read and counted (`copies`): the entries
    /// of `list`, pg_restore's `-L` list. The archive must be readable where pg_restore runs
    /// (the list is its input); else it is read whole.
    Sql { list: &'a str, copies: &'a DumpSummary },
    /// Its entries before its data (`--section=pre-data`): what it needs to start; the restore
    /// reads the rest once (see [`super::archive_once`]).
    Head,
}

/// Reads the archive through the target's pg_restore, as `how` says; returns what it needs, and
/// how it was read (an archive pg_restore reads on its input is read whole instead of by a list).
/// The backup's key decrypts an encrypted one as it is read; `pg_dump_version` is the archive's
/// (a pg_restore older than it cannot read it).
pub(crate) async fn scan<'a>(
    target: &Target,
    backup: &Backup,
    pg_dump_version: &str,
    how: Scan<'a>,
    redactor: &Redactor,
) -> Result<(DumpSummary, Scan<'a>), RestoreError> {
    let (inside, stdin) = archive_input(target, &backup.path, backup.keys.first())?;
    let how = match how {
        Scan::Sql { .. } if inside.is_none() => Scan::Whole,
        how => how,
    };
    check_tool_version(target, pg_dump_version, redactor).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let reader = tokio::task::spawn_blocking(move || -> Result<DumpSummary, RestoreError> {
        let mut splitter = Splitter::new(std::io::BufReader::with_capacity(256 * 1024, ChannelReader::new(rx)));
        let mut scanner = Scanner::new();
        loop {
            match splitter.next_item() {
                Ok(Some(item)) => {
                    if let Some(refused) = refusal(&item) {
                        return Err(refused);
                    }
                    scanner.note(&item);
                }
                Ok(None) => break,
                Err(SplitError::UnterminatedCopy { .. }) => break, // pg_restore failed mid-table: its exit says why
                Err(e) => return Err(RestoreError::reread(e)),
            }
        }
        Ok(scanner.finish(splitter.comments(), splitter.lines_read(), splitter.bytes_read()))
    });
    let mut args = vec!["-f".to_owned(), "-".to_owned()];
    let (stdin, feeder) = match how {
        Scan::Head => {
            args.push("--section=pre-data".to_owned());
            stdin.unzip()
        }
        Scan::Sql { list, .. } => {
            // The list on pg_restore's input: the archive is read from where it is.
            args.extend(["-L".to_owned(), "/dev/stdin".to_owned()]);
            let (tx, rx) = mpsc::channel::<Bytes>(1);
            tx.try_send(Bytes::copy_from_slice(list.as_bytes())).expect("an empty channel");
            (Some(rx), None)
        }
        Scan::Whole => stdin.unzip(),
    };
    args.extend(inside);
    let output =
        target.tools.run_fed("pg_restore", &args, stdin, Some(tx), redactor).await.map_err(RestoreError::reread)?;
    let mut summary = reader.await.map_err(RestoreError::reread)?;
    fed(feeder).await?;
    if !output.success() {
        return Err(RestoreError::Archive { status: output.status, stderr: output.stderr });
    }
    if let (Ok(summary), Scan::Sql { copies, .. }) = (&mut summary, how) {
        summary.add_copies(copies);
    }
    summary.map(|summary| (summary, how))
}

/// Why an item of the SQL pg_restore writes of an archive must not run, if it must not (what a
/// plain dump's verify refuses: the archive is as untrusted).
pub(super) fn refusal(item: &Item) -> Option<RestoreError> {
    let what = refused(item)?;
    Some(RestoreError::Read(format!(
        "line {} of the archive's SQL: {what} is refused: a dump is untrusted input",
        item_line(item)
    )))
}

/// pg_restore reads archives of its own and older pg_dump versions only.
async fn check_tool_version(target: &Target, pg_dump_version: &str, redactor: &Redactor) -> Result<(), RestoreError> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let output = target
        .tools
        .run("pg_restore", &["--version".to_owned()], Some(tx), redactor)
        .await
        .map_err(RestoreError::reread)?;
    let mut text = String::new();
    while let Ok(chunk) = rx.try_recv() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    // `pg_restore (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`
    let tool =
        text.split("(PostgreSQL)").nth(1).and_then(|v| v.split_whitespace().next()).unwrap_or_default().to_owned();
    let (Some(tool_major), Some(dump_major)) = (major_of_version_text(&tool), major_of_version_text(pg_dump_version))
    else {
        return Ok(());
    };
    if output.success() && tool_major < dump_major {
        return Err(RestoreError::OldTool { tool: tool.clone(), archive: pg_dump_version.to_owned(), dump_major });
    }
    Ok(())
}

/// Restores the archive into `database` with pg_restore, `-j jobs` where the format allows (an
/// encrypted archive, read from a pipe, on one).
pub(crate) async fn restore(
    target: &Target,
    database: &str,
    backup: &Backup,
    format: Format,
    jobs: usize,
    dump: &DumpSummary,
    redactor: &Redactor,
) -> Result<RestoreStats, RestoreError> {
    let (inside, stdin) = archive_input(target, &backup.path, backup.keys.first())?;
    let jobs = if stdin.is_some() { 1 } else { jobs };
    let mut args = vec!["--exit-on-error".to_owned(), "--no-password".to_owned()];
    if matches!(format, Format::Custom | Format::Directory) && jobs > 1 {
        args.push(format!("--jobs={jobs}"));
    }
    args.extend(target.tools.connection_args(database));
    args.extend(inside);
    let (stdin, feeder) = stdin.unzip();
    let output =
        target.tools.run_fed("pg_restore", &args, stdin, None, redactor).await.map_err(RestoreError::reread)?;
    fed(feeder).await?;
    if !output.success() {
        let mut stderr = output.stderr;
        // `pg_restore: error: could not execute query: ERROR:  could not execute command "id": ...`
        let tried = stderr.lines().find_map(|line| {
            let message = line.split_once("ERROR:")?.1.trim();
            crate::provision::sandbox::explain(None, message)
        });
        if let Some(tried) = tried {
            stderr.push_str(&format!("\npgdrill: {tried}"));
        }
        return Err(RestoreError::Tool { tool: "pg_restore", status: output.status, stderr });
    }
    Ok(RestoreStats {
        statements: dump.statements,
        copy_blocks: dump.copy_blocks,
        rows: dump.total_rows(),
        bytes: dump.bytes,
        database: database.to_owned(),
        jobs: if matches!(format, Format::Custom | Format::Directory) { jobs.max(1) } else { 1 },
        recovery: None,
        catalog: None,
    })
}
