//! Reading a backup file as a stream: counted (for progress), optionally hashed, and
//! decompressed according to its first bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::decrypt::{self, DecryptError, Envelope, Key, StreamError};
use crate::dump::Compression;

/// Buffer size for reading backups and their decompressed text.
pub(crate) const BUFFER: usize = 256 * 1024;

/// Counts (and optionally hashes) the raw bytes read through it.
pub(crate) struct Tap<R> {
    inner: R,
    count: Arc<AtomicU64>,
    hasher: Option<Arc<Mutex<Sha256>>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(hasher) = &self.hasher
            && let Ok(mut h) = hasher.lock()
        {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// A backup opened for reading.
pub(crate) struct Opened {
    pub compression: Compression,
    /// The decompressed content.
    pub reader: Box<dyn BufRead + Send>,
    /// Raw (compressed) bytes read so far.
    pub raw_bytes: Arc<AtomicU64>,
    /// sha256 of the raw bytes, when asked for.
    pub hasher: Option<Arc<Mutex<Sha256>>>,
    /// The envelope the file is in, when it is encrypted.
    pub envelope: Option<Envelope>,
    /// sha256 of the decrypted (still compressed) bytes of an encrypted file, when asked for:
    /// what each key's proof compares with.
    pub plaintext: Option<Arc<Mutex<Sha256>>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("cannot open `{path}`")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the backup is {name}-compressed, which pgdrill does not read (use gzip, zstd, lz4 or bzip2, or none)")]
    UnsupportedCompression { name: &'static str },
    /// The file is encrypted and does not open with the key given (or none is).
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// The decrypted stream failed at its first bytes (a key gpg refused, a damaged file).
    #[error(transparent)]
    Stream(io::Error),
}

/// Whether `path` is an archive that only pg_restore reads (custom, tar, or a directory-format
/// folder), by its first bytes: the target then needs to see it. Plain SQL is read by pgdrill.
pub(crate) fn is_archive(path: &Path, key: Option<&Key>) -> bool {
    if path.is_dir() {
        return true;
    }
    let Ok(mut opened) = open_keyed(path, false, key) else { return false };
    let Ok(head) = opened.reader.fill_buf() else { return false };
    head.starts_with(b"PGDMP") || head.get(257..262) == Some(b"ustar".as_slice())
}

/// The PostgreSQL major a backup comes from, as its first bytes say: an archive's header
/// (custom, tar, or a directory's `toc.dat`) or a plain dump's `-- Dumped from database version`
/// line. `None` when they do not say (verify reads the whole backup and tells why).
pub(crate) fn source_major(path: &Path, key: Option<&Key>) -> Option<u32> {
    let header = if path.is_dir() {
        crate::dump::archive::read_header(BufReader::new(File::open(path.join("toc.dat")).ok()?)).ok()?
    } else {
        let mut opened = open_keyed(path, false, key).ok()?;
        let head = opened.reader.fill_buf().ok()?;
        if head.starts_with(b"PGDMP") {
            crate::dump::archive::read_header(&mut opened.reader).ok()?
        } else if head.get(257..262) == Some(b"ustar".as_slice()) {
            // A tar archive's first member is toc.dat, after its 512-byte header.
            io::copy(&mut (&mut opened.reader).take(512), &mut io::sink()).ok()?;
            crate::dump::archive::read_header(&mut opened.reader).ok()?
        } else {
            let text = String::from_utf8_lossy(head);
            let line = text.lines().take(64).find_map(|l| l.strip_prefix("-- Dumped from database version "))?;
            return crate::pg::major_of_version_text(line);
        }
    };
    crate::pg::major_of_version_text(&header.source_version)
}

/// Opens `path`, detects its compression and returns the decompressed stream. An encrypted file
/// fails (naming what it is encrypted for): see [`open_keyed`].
pub(crate) fn open(path: &Path, hash: bool) -> Result<Opened, OpenError> {
    open_keyed(path, hash, None)
}

/// Opens `path`: decrypts it with `key` as it is read when it is encrypted (the plaintext never
/// touches the disk), detects its compression and returns the decompressed stream.
pub(crate) fn open_keyed(path: &Path, hash: bool, key: Option<&Key>) -> Result<Opened, OpenError> {
    let io_err = |source| OpenError::Io { path: path.display().to_string(), source };
    let stream_err = |source: io::Error| match StreamError::of(&source) {
        Some(_) => OpenError::Stream(source),
        None => io_err(source),
    };
    let file = File::open(path).map_err(io_err)?;
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let hasher = hash.then(|| Arc::new(Mutex::new(Sha256::new())));
    let tap = Tap { inner: file, count: raw_bytes.clone(), hasher: hasher.clone() };
    let mut raw: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(BUFFER, tap));
    let envelope = decrypt::detect(raw.fill_buf().map_err(io_err)?);
    let mut plaintext = None;
    if let Some(envelope) = envelope {
        let decrypted = decrypt::open(raw, envelope, key)?;
        plaintext = hash.then(|| Arc::new(Mutex::new(Sha256::new())));
        let tap = Tap { inner: decrypted, count: Arc::new(AtomicU64::new(0)), hasher: plaintext.clone() };
        raw = Box::new(BufReader::with_capacity(BUFFER, tap));
    }
    let magic = raw.fill_buf().map_err(stream_err)?.to_vec();
    let compression = Compression::detect(&magic).map_err(|name| OpenError::UnsupportedCompression { name })?;
    let reader: Box<dyn BufRead + Send> = match compression {
        Compression::None => raw,
        Compression::Gzip => Box::new(BufReader::with_capacity(BUFFER, super::inflate::gzip(raw))),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(raw).map_err(io_err)?;
            Box::new(BufReader::with_capacity(BUFFER, decoder))
        }
        Compression::Bzip2 => Box::new(BufReader::with_capacity(BUFFER, bzip2::bufread::MultiBzDecoder::new(raw))),
        Compression::Lz4 => Box::new(BufReader::with_capacity(BUFFER, lz4_flex::frame::FrameDecoder::new(raw))),
    };
    Ok(Opened { compression, reader, raw_bytes, hasher, envelope, plaintext })
}

/// The hex sha256 of a whole file.
pub(crate) fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut BufReader::with_capacity(BUFFER, File::open(path)?), &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

impl Opened {
    /// The hex sha256 of the raw bytes read so far.
    pub(crate) fn sha256(&self) -> Option<String> {
        let hasher = self.hasher.as_ref()?.lock().ok()?.clone();
        Some(hex::encode(hasher.finalize()))
    }

    /// The hex sha256 of the decrypted bytes read so far (an encrypted file's).
    pub(crate) fn plaintext_sha256(&self) -> Option<String> {
        let hasher = self.plaintext.as_ref()?.lock().ok()?.clone();
        Some(hex::encode(hasher.finalize()))
    }

    /// Reads the rest of the stream to its end (the decoders read the raw file to its end, so
    /// the count and hash then cover the whole file); returns the decompressed bytes skipped.
    pub(crate) fn drain(&mut self) -> io::Result<u64> {
        io::copy(&mut self.reader, &mut io::sink())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::is_archive;

    #[test]
    fn archives_are_told_from_plain_dumps_by_their_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"--\n-- PostgreSQL database dump\n--\nSELECT 1;\n").unwrap();
        assert!(!is_archive(&write("plain.sql.gz", &gz.finish().unwrap()), None));
        assert!(!is_archive(&write("plain.sql", b"SET statement_timeout = 0;\n"), None));
        assert!(is_archive(&write("custom.dump", b"PGDMP\x01\x10\x00\x04\x08\x01\x01"), None));
        let mut tar = vec![0u8; 512];
        tar[..7].copy_from_slice(b"toc.dat");
        tar[257..262].copy_from_slice(b"ustar");
        assert!(is_archive(&write("backup.tar", &tar), None));
        assert!(is_archive(dir.path(), None), "a directory-format archive");
    }

    /// Each compression as its own command-line tool writes it (gzip, zstd, bzip2, lz4's frame
    /// format) reads back whole; one pgdrill does not read is named.
    #[test]
    fn each_compression_its_tool_writes_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..200_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, &text).unwrap();
        for (tool, args, name) in [
            ("gzip", &["-c"][..], "gzip"),
            ("zstd", &["-q", "-c"][..], "zstd"),
            ("bzip2", &["-c"][..], "bzip2"),
            ("lz4", &["-q", "-c"][..], "lz4"),
        ] {
            let out = std::process::Command::new(tool).args(args).arg(&plain).output().unwrap();
            assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
            let packed = dir.path().join(format!("packed.{tool}"));
            std::fs::write(&packed, &out.stdout).unwrap();
            let mut opened = super::open(&packed, false).unwrap();
            assert_eq!(opened.compression.as_str(), name);
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut opened.reader, &mut back).unwrap();
            assert!(back == text, "{tool}: {} bytes back of {}", back.len(), text.len());
        }
        let xz = std::process::Command::new("xz").args(["-c"]).arg(&plain).output().unwrap();
        let packed = dir.path().join("packed.xz");
        std::fs::write(&packed, &xz.stdout).unwrap();
        let error = super::open(&packed, false).err().unwrap().to_string();
        assert!(error.contains("xz-compressed"), "{error}");
    }
}
