//! A directory-format archive verified: `toc.dat`'s header and every data file, with one digest
//! over them all.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Verified, VerifyError, archive_summary, check_digest, verified};
use crate::dump::archive::ArchiveError;
use crate::dump::{Compression, Format, toc};
use crate::source::Backup;
use crate::source::read::{self, OpenError};

/// A directory-format archive: `toc.dat`'s header, every data file read to its end (compressed
/// ones decompressed, so a damaged one is found now), and one digest over all files: the sha256
/// of the sorted `sha256  name` lines, as `sha256sum * | sort -k2` would print them.
pub(super) fn verify_directory(backup: &Backup, expected_sha256: Option<&str>) -> Result<Verified, VerifyError> {
    let dir = &backup.path;
    let toc = dir.join("toc.dat");
    if !toc.is_file() {
        return Err(VerifyError::NotAnArchiveFolder { path: dir.display().to_string() });
    }
    let (header, kinds) = toc::read_header_and_kinds(std::io::BufReader::new(
        std::fs::File::open(&toc)
            .map_err(ArchiveError::Io)
            .map_err(|error| VerifyError::Archive { format: "directory", error })?,
    ))
    .map_err(|error| VerifyError::Archive { format: "directory", error })?;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| VerifyError::Archive { format: "directory", error: ArchiveError::Io(e) })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut listing = String::new();
    for name in &names {
        let path = dir.join(name);
        let digest = check_data_file(&path, name)?;
        listing.push_str(&format!("{digest}  {name}\n"));
    }
    let sha256 = hex::encode(Sha256::digest(listing.as_bytes()));
    check_digest(expected_sha256, &sha256)?;
    let summary = archive_summary(&header, kinds);
    Ok(verified(backup, sha256, Compression::None, Format::Directory, summary, Some(header)))
}

/// The sha256 of one file of a directory archive, decompressing gzip and zstd data files to their
/// end (lz4 ones are hashed as they are).
fn check_data_file(path: &Path, name: &str) -> Result<String, VerifyError> {
    let file = || name.to_owned();
    let mut opened = match read::open(path, true) {
        Ok(opened) => opened,
        Err(OpenError::UnsupportedCompression { .. }) => {
            return read::sha256_file(path).map_err(|source| VerifyError::DataFileRead { file: file(), source });
        }
        Err(source) => return Err(VerifyError::DataFileOpen { file: file(), source }),
    };
    opened.drain().map_err(|source| VerifyError::DataFileDamaged { file: file(), source })?;
    Ok(opened.sha256().unwrap_or_default())
}
