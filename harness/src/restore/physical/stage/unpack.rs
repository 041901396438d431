//! Unpacking a base backup's tar file (plain, gzip or zstd) into a folder: files and folders
//! only, each inside the folder, each file once. A base backup is a thousand and more small
//! files, and creating a file is the slow part of unpacking on many machines (a millisecond or
//! two each on a busy VM, mostly waiting): this thread reads and decompresses the archive and
//! hands the small files to a few writer threads, which create them side by side, and a large
//! file (a table's segment) in pieces to a writer of its own, which writes one while this thread
//! decompresses the next. Each writer sums the files its manifest gives a checksum as it writes
//! them (`digest`).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;

use super::StageError;
use super::digest::{Expected, Summing};

/// Files up to this size are read whole and written by a writer thread; larger ones here.
const SMALL: u64 = 256 << 10;
/// Writer threads.
const WRITERS: usize = 4;
/// Files queued per writer: with [`SMALL`], at most 4 MiB in flight.
const QUEUED: usize = 4;
/// A large file's pieces: read whole from the archive, and [`QUEUED`] of them in flight.
const PIECE: usize = 1 << 20;

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StageError + 'a {
    move |source| StageError::Io { action, path: path.display().to_string(), source }
}

/// A small file for a writer: where, its content, and its checksum to compute.
struct Job {
    path: PathBuf,
    data: Vec<u8>,
    summing: Option<Summing>,
}

/// What the large files' writer is given, in order: a file created (it writes there next, and
/// sums it when its manifest gives it a checksum), or the next piece of it: the first `len`
/// bytes of a buffer of [`PIECE`], which the writer hands back to be filled again.
enum Piece {
    File(PathBuf, std::fs::File, Option<Box<Summing>>),
    Data(Vec<u8>, usize),
}

/// The files a writer summed: each one's path in the data directory and its digest in hex.
pub(crate) type Sums = Vec<(String, String)>;

/// Where the files of a tar file are in the data directory, for the checksums its manifest
/// gives them: the manifest's checksums, and the tar's place (`""` for the data directory's
/// own, `pg_tblspc/<oid>/` for a tablespace's).
#[derive(Clone, Copy)]
pub(crate) struct Summed<'a> {
    pub expected: &'a Expected,
    pub prefix: &'a str,
}

/// The writer threads: the small files' (by turns) and the large files', with the buffers the
/// large files' writer has written and hands back.
struct Writers {
    small: Vec<mpsc::SyncSender<Job>>,
    large: mpsc::SyncSender<Piece>,
    written: mpsc::Receiver<Vec<u8>>,
}

/// Unpacks `tar_file` into `into` (see the module's documentation), with the checksums of the
/// files `summed` gives one.
pub(crate) fn unpack(tar_file: &Path, into: &Path, summed: Option<Summed<'_>>) -> Result<Sums, StageError> {
    let opened = crate::source::read::open(tar_file, false)
        .map_err(|source| StageError::Open { path: tar_file.display().to_string(), source })?;
    let mut archive = tar::Archive::new(opened.reader);
    std::thread::scope(|scope| {
        let (small, mut writers): (Vec<_>, Vec<_>) = (0..WRITERS)
            .map(|_| {
                let (tx, rx) = mpsc::sync_channel::<Job>(QUEUED);
                (tx, scope.spawn(move || write_all(rx)))
            })
            .unzip();
        let (large, pieces) = mpsc::sync_channel::<Piece>(QUEUED);
        let (spare, written) = mpsc::channel();
        writers.push(scope.spawn(move || write_large(pieces, spare)));
        let senders = Writers { small, large, written };
        let read = read_entries(&mut archive, tar_file, into, summed, &senders);
        drop(senders);
        // Every writer ends once its queue is empty; the first error found is the one said.
        let mut sums = Vec::new();
        for writer in writers {
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(io("unpack into", into)(std::io::Error::other("a writer panicked"))));
            match (&read, written) {
                (Ok(()), Ok(summed)) => sums.extend(summed),
                (Ok(()), Err(e)) => return Err(e),
                (Err(_), _) => {}
            }
        }
        read.map(|()| sums)
    })
}

/// Reads every entry, creating folders and large files here and queueing small files to the
/// writers (by turns); stops at the first entry that is not a file or folder inside `into`.
fn read_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    tar_file: &Path,
    into: &Path,
    summed: Option<Summed<'_>>,
    writers: &Writers,
) -> Result<(), StageError> {
    let mut folders: HashSet<PathBuf> = HashSet::from([into.to_owned()]);
    let mut files: HashSet<PathBuf> = HashSet::new();
    for (n, entry) in archive.entries().map_err(io("read", tar_file))?.enumerate() {
        let mut entry = entry.map_err(io("read", tar_file))?;
        let relative = entry.path().map_err(io("read", tar_file))?.into_owned();
        let kind = entry.header().entry_type();
        let what = if kind.is_file() || kind.is_dir() || kind.is_gnu_sparse() {
            None
        } else if kind.is_symlink() || kind.is_hard_link() {
            Some("a link")
        } else {
            Some("a special file")
        };
        if let Some(what) = what {
            return Err(super::not_a_file(what, &relative));
        }
        if relative.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(StageError::NotAFile {
                what: "a path outside its folder",
                path: relative.display().to_string(),
                hint: "",
            });
        }
        let inside: PathBuf = relative.components().filter(|c| *c != Component::CurDir).collect();
        let path = into.join(&inside);
        if kind.is_dir() {
            folder(&path, &mut folders)?;
            continue;
        }
        if !files.insert(path.clone()) {
            return Err(StageError::Twice { path: relative.display().to_string() });
        }
        if let Some(parent) = path.parent() {
            folder(parent, &mut folders)?;
        }
        let summing = summed.and_then(|s| s.expected.summing(&format!("{}{}", s.prefix, inside.to_string_lossy())));
        // A writer that stopped (on an error) has dropped its queue: the error is its own.
        let sent = if entry.size() > SMALL {
            let file = create(&path)?;
            writers.large.send(Piece::File(path, file, summing.map(Box::new))).is_ok()
                && send_pieces(&mut entry, tar_file, writers)?
        } else {
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data).map_err(io("read", tar_file))?;
            writers.small[n % writers.small.len()].send(Job { path, data, summing }).is_ok()
        };
        if !sent {
            return Ok(());
        }
    }
    Ok(())
}

/// Reads a large file's content in pieces of [`PIECE`] for its writer, each into a buffer the
/// writer has written and handed back when there is one (the serial path neither allocates nor
/// clears a MiB for each MiB); false when the writer stopped.
fn send_pieces(entry: &mut impl Read, tar_file: &Path, writers: &Writers) -> Result<bool, StageError> {
    loop {
        let mut piece = writers.written.try_recv().unwrap_or_else(|_| vec![0; PIECE]);
        let mut len = 0;
        while len < PIECE {
            match entry.read(&mut piece[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io("read", tar_file)(e)),
            }
        }
        if len == 0 {
            return Ok(true);
        }
        if writers.large.send(Piece::Data(piece, len)).is_err() {
            return Ok(false);
        }
    }
}

/// Makes folder `path` (0700) and those above it, once.
fn folder(path: &Path, made: &mut HashSet<PathBuf>) -> Result<(), StageError> {
    use std::os::unix::fs::DirBuilderExt;
    if made.contains(path) {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(io("create", path))?;
    made.insert(path.to_owned());
    Ok(())
}

/// Creates (or empties) file `path`, 0600, never through a link.
fn create(path: &Path) -> Result<std::fs::File, StageError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(io("create", path))
}

/// The large files' writer: writes each piece into the file last given (and sums it), and hands
/// its buffer back to be filled again, until the queue closes or a write fails.
fn write_large(pieces: mpsc::Receiver<Piece>, spare: mpsc::Sender<Vec<u8>>) -> Result<Sums, StageError> {
    let mut sums = Vec::new();
    let mut current: Option<(PathBuf, std::fs::File, Option<Box<Summing>>)> = None;
    for piece in pieces {
        match (piece, &mut current) {
            (Piece::File(path, file, summing), _) => {
                if let Some(summing) = current.replace((path, file, summing)).and_then(|(_, _, s)| s) {
                    sums.push(summing.finish());
                }
            }
            (Piece::Data(buffer, len), Some((path, file, summing))) => {
                file.write_all(&buffer[..len]).map_err(io("unpack into", path))?;
                if let Some(summing) = summing {
                    summing.hasher.update(&buffer[..len]);
                }
                // The reader has ended when nobody takes it back.
                let _ = spare.send(buffer);
            }
            // [`read_entries`] sends a file before its pieces.
            (Piece::Data(..), None) => {
                return Err(io("unpack", Path::new("?"))(std::io::ErrorKind::InvalidInput.into()));
            }
        }
    }
    sums.extend(current.and_then(|(_, _, s)| s).map(|s| s.finish()));
    Ok(sums)
}

/// A writer thread: writes (and sums) each queued file until the queue closes or a write fails.
fn write_all(jobs: mpsc::Receiver<Job>) -> Result<Sums, StageError> {
    let mut sums = Vec::new();
    for Job { path, data, summing } in jobs {
        create(&path)?.write_all(&data).map_err(io("unpack into", &path))?;
        if let Some(mut summing) = summing {
            summing.hasher.update(&data);
            sums.push(summing.finish());
        }
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `count` files of various sizes in nested folders (some larger than [`SMALL`], some
    /// than [`PIECE`]),
    /// gzip-compressed as pg_basebackup -z writes it.
    fn backup_like(count: usize) -> (tempfile::NamedTempFile, Vec<(String, Vec<u8>)>) {
        let mut builder = tar::Builder::new(Vec::new());
        let mut files = Vec::new();
        for i in 0..count {
            let path = format!("base/{}/{}", i % 7, 16384 + i);
            let size = match i {
                _ if i % 100 == 0 => PIECE * 2 + SMALL as usize + i,
                _ if i % 50 == 0 => SMALL as usize * 3 + i,
                _ => (i * 37) % 9000,
            };
            let body: Vec<u8> = (0..size).map(|b| (b * 31 + i) as u8).collect();
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, &path, body.as_slice()).unwrap();
            files.push((path, body));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&builder.into_inner().unwrap()).unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&gz.finish().unwrap()).unwrap();
        (file, files)
    }

    #[test]
    fn every_file_is_unpacked_whole_by_the_writers_and_here() {
        let (tar, files) = backup_like(300);
        let dir = tempfile::tempdir().unwrap();
        unpack(tar.path(), dir.path(), None).unwrap();
        for (path, body) in &files {
            assert_eq!(&std::fs::read(dir.path().join(path)).unwrap(), body, "{path}");
        }
        let count = walk(dir.path());
        assert_eq!(count, files.len(), "nothing else");
    }

    /// Each file is summed by the writer that writes it, small or large, whole: the sums are
    /// those of the files' content, and the manifest's checksums judge them.
    #[test]
    fn every_file_a_manifest_gives_a_checksum_is_summed_as_it_is_written() {
        use crate::source::physical::manifest::Listed;
        use sha2::Digest;
        let (tar, files) = backup_like(300);
        let sha = |body: &[u8]| hex::encode(sha2::Sha256::digest(body));
        let listed = |skip: usize| {
            let summed = files.iter().enumerate().filter(|(i, _)| skip == 0 || i % skip != 1);
            let listed = summed.map(|(_, (path, body))| Listed {
                path: format!("pg_tblspc/1/{path}"),
                size: body.len() as u64,
                checksum: Some(("SHA256".into(), sha(body))),
            });
            Expected::new(listed.collect()).unwrap()
        };
        let expected = listed(0);
        let dir = tempfile::tempdir().unwrap();
        let sums =
            unpack(tar.path(), dir.path(), Some(Summed { expected: &expected, prefix: "pg_tblspc/1/" })).unwrap();
        assert_eq!(sums.len(), files.len(), "each file summed once");
        assert!(expected.judge(&sums).unwrap(), "every file as its manifest says");
        let fewer = listed(3);
        let dir = tempfile::tempdir().unwrap();
        let sums = unpack(tar.path(), dir.path(), Some(Summed { expected: &fewer, prefix: "pg_tblspc/1/" })).unwrap();
        assert_eq!(sums.len(), files.len() - files.len() / 3, "only the files the manifest gives a checksum");
        let mut other = files.clone();
        other[100].1[7] ^= 1;
        let listed = other.iter().map(|(path, body)| Listed {
            path: path.clone(),
            size: body.len() as u64,
            checksum: Some(("SHA256".into(), sha(body))),
        });
        let altered = Expected::new(listed.collect()).unwrap();
        let sums =
            unpack(tar.path(), tempfile::tempdir().unwrap().path(), Some(Summed { expected: &altered, prefix: "" }));
        let error = altered.judge(&sums.unwrap()).unwrap_err().to_string();
        assert!(error.contains(&format!("`{}`", files[100].0)), "a large file changed: {error}");
    }

    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).map(|p| if p.is_dir() { walk(&p) } else { 1 }).sum()
    }

    /// A hostile archive naming one file twice (the second would win in tar) is refused: which
    /// of the two a writer wrote last would be chance.
    #[test]
    fn a_file_named_twice_is_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        for body in [b"first".as_slice(), b"second".as_slice()] {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, "global/pg_control", body).unwrap();
        }
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&builder.into_inner().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let error = unpack(file.path(), dir.path(), None).unwrap_err().to_string();
        assert!(error.contains("holds `global/pg_control` twice"), "{error}");
    }
}
