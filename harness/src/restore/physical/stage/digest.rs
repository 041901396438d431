//! Each file's checksum computed as it is unpacked, against the one `backup_manifest` gives it.
//! pg_verifybackup then checks everything else (every file there and of its size, nothing more,
//! the manifest's own checksum, the WAL the backup needs) without reading the data directory a
//! second time (`--skip-checksums`): the bytes summed are those written, by the thread writing
//! them. The checksums are PostgreSQL's own algorithms (`CRC32C`, the default, and `SHA224` to
//! `SHA512`), from crc-fast and sha2.

use std::collections::HashMap;

use sha2::Digest as _;

use super::StageError;
use crate::source::physical::manifest::Listed;

/// A running checksum of one file.
pub(crate) enum Hasher {
    Crc32c(crc_fast::Digest),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A checksum of the algorithm a manifest names; None for one pgdrill does not know.
    fn of(algorithm: &str) -> Option<Self> {
        Some(match algorithm {
            "CRC32C" => Self::Crc32c(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi)),
            "SHA224" => Self::Sha224(sha2::Sha224::new()),
            "SHA256" => Self::Sha256(sha2::Sha256::new()),
            "SHA384" => Self::Sha384(sha2::Sha384::new()),
            "SHA512" => Self::Sha512(sha2::Sha512::new()),
            _ => return None,
        })
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc32c(d) => d.update(data),
            Self::Sha224(d) => d.update(data),
            Self::Sha256(d) => d.update(data),
            Self::Sha384(d) => d.update(data),
            Self::Sha512(d) => d.update(data),
        }
    }

    /// The digest in hex, as a manifest writes it: a CRC32C's four bytes in the order the
    /// server that wrote the manifest held them in memory (PostgreSQL copies the integer out
    /// as it is), little-endian on every machine PostgreSQL's images run on.
    pub(crate) fn finish(self) -> String {
        match self {
            Self::Crc32c(d) => hex::encode((d.finalize() as u32).to_le_bytes()),
            Self::Sha224(d) => hex::encode(d.finalize()),
            Self::Sha256(d) => hex::encode(d.finalize()),
            Self::Sha384(d) => hex::encode(d.finalize()),
            Self::Sha512(d) => hex::encode(d.finalize()),
        }
    }
}

/// A file to sum as it is written: its path in the data directory (the manifest's), and its
/// checksum so far.
pub(crate) struct Summing {
    pub path: String,
    pub hasher: Hasher,
}

impl Summing {
    pub(crate) fn finish(self) -> (String, String) {
        (self.path, self.hasher.finish())
    }
}

/// The checksums a manifest gives its files, by path.
#[derive(Debug, Default)]
pub(crate) struct Expected {
    files: HashMap<String, (String, String)>,
}

impl Expected {
    /// From the files a manifest lists; None when one has a checksum pgdrill cannot compute
    /// (pg_verifybackup then reads every file, as it would alone).
    pub(crate) fn new(listed: Vec<Listed>) -> Option<Self> {
        let mut files = HashMap::with_capacity(listed.len());
        for Listed { path, checksum, .. } in listed {
            if let Some((algorithm, hex)) = checksum {
                Hasher::of(&algorithm)?;
                files.insert(path, (algorithm, hex.to_ascii_lowercase()));
            }
        }
        Some(Self { files })
    }

    /// What to sum file `path` (of the data directory) with, when its manifest gives it a
    /// checksum.
    pub(crate) fn summing(&self, path: &str) -> Option<Summing> {
        let (algorithm, _) = self.files.get(path)?;
        Some(Summing { path: path.to_owned(), hasher: Hasher::of(algorithm)? })
    }

    /// Judges the sums of the files unpacked: a file whose content is not what its manifest
    /// says fails; true when every file the manifest gives a checksum was summed (else
    /// pg_verifybackup must read the rest itself).
    pub(crate) fn judge(&self, summed: &[(String, String)]) -> Result<bool, StageError> {
        let mut seen = 0;
        for (path, hex) in summed {
            let Some((algorithm, expected)) = self.files.get(path) else { continue };
            if hex != expected {
                return Err(StageError::Checksum { path: path.clone(), algorithm: algorithm.clone() });
            }
            seen += 1;
        }
        Ok(seen == self.files.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(path: &str, algorithm: &str, hex: &str) -> Listed {
        Listed { path: path.into(), size: 0, checksum: Some((algorithm.into(), hex.into())) }
    }

    /// The digests in the form PostgreSQL writes them (the drill tests compare them with real
    /// manifests).
    #[test]
    fn each_algorithm_gives_postgresqls_hex() {
        let sum = |algorithm: &str, data: &[u8]| {
            let mut hasher = Hasher::of(algorithm).unwrap();
            hasher.update(data);
            hasher.finish()
        };
        // CRC-32C of "123456789" is 0xe3069283 (its check value), written little-endian.
        assert_eq!(sum("CRC32C", b"123456789"), "839206e3");
        assert_eq!(sum("SHA256", b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(sum("SHA224", b"").len(), 56);
        assert_eq!(sum("SHA384", b"").len(), 96);
        assert_eq!(sum("SHA512", b"").len(), 128);
        assert!(Hasher::of("MD5").is_none());
    }

    #[test]
    fn a_file_unlike_its_manifest_fails_and_a_file_not_summed_leaves_it_to_pg_verifybackup() {
        let expected =
            Expected::new(vec![listed("PG_VERSION", "CRC32C", "839206E3"), listed("global/1262", "SHA256", "00")])
                .unwrap();
        assert!(expected.summing("base/1/1259").is_none(), "not in the manifest");
        let mut summing = expected.summing("PG_VERSION").unwrap();
        summing.hasher.update(b"123456789");
        let good = summing.finish();
        assert!(!expected.judge(std::slice::from_ref(&good)).unwrap(), "global/1262 was not summed");
        let all = [good.clone(), ("global/1262".to_owned(), "00".to_owned())];
        assert!(expected.judge(&all).unwrap(), "every file summed and alike");
        let bad = [good, ("global/1262".to_owned(), "01".to_owned())];
        let error = expected.judge(&bad).unwrap_err().to_string();
        assert!(error.contains("`global/1262`") && error.contains("SHA256"), "{error}");
        assert!(Expected::new(vec![listed("PG_VERSION", "MD5", "00")]).is_none(), "an algorithm pgdrill lacks");
    }
}
