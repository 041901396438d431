//! Encrypted dumps: an age or OpenPGP envelope around a dump (`pg_dump | gzip | age -r ...`,
//! `pg_dump -Fc | gpg --encrypt`), opened as a stream so that the plaintext never lands on disk.
//!
//! The envelope is told by its first bytes ([`detect`]); a key is given by the scenario as the
//! environment variable or the file that holds it ([`KeySpec`]), read once ([`Key`]) and named
//! by its public identity only (an age recipient `age1...`, an OpenPGP key's fingerprint, "the
//! passphrase from `$VAR`"). The cryptography is the `age` crate's and GnuPG's (`gpg`, run in a
//! private home of its own): none is written here.

/// How much of the file a decryption reads at a time.
const BUFFER: usize = 256 * 1024;

mod with_age;
mod with_gpg;

use std::io::{BufRead, Read};
use std::path::PathBuf;

use crate::secret::{Redactor, Secret, SecretError, SecretSource};

/// A decryption key as the scenario gives it (`[source] decrypt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySpec {
    /// A secret key: age X25519 identities (`AGE-SECRET-KEY-1...`, one or more lines of an
    /// identity file, or that file encrypted with `age -p`) or an armored OpenPGP secret key;
    /// `unlock`, the passphrase the key itself is protected with.
    Identity { key: SecretSource, unlock: Option<SecretSource> },
    /// A passphrase: age's scrypt recipient, or OpenPGP's symmetric encryption.
    Passphrase(SecretSource),
}

/// What a key is, read.
#[derive(Clone)]
enum Material {
    Age(Vec<age::x25519::Identity>),
    /// An armored OpenPGP secret key, and the passphrase that unlocks it when it has one.
    OpenPgp {
        key: Secret,
        unlock: Option<Secret>,
    },
    Passphrase(Secret),
    /// A key that could not be opened itself (an age identity file whose passphrase is missing
    /// or wrong): it opens no backup, and verify says why.
    Unopened(String),
}

/// A key read from where the scenario says, named by its public identity.
#[derive(Clone)]
pub(crate) struct Key {
    /// How the reports name it: never the secret.
    pub public: String,
    material: Material,
}

impl Key {
    /// The passphrase this key is, when it is one (not an age or OpenPGP secret key).
    pub(crate) fn passphrase(&self) -> Option<&Secret> {
        match &self.material {
            Material::Passphrase(secret) => Some(secret),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.public)
    }
}

/// The envelope a backup is in, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Envelope {
    Age { armored: bool },
    OpenPgp { armored: bool },
}

impl Envelope {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Envelope::Age { armored: false } => "age",
            Envelope::Age { armored: true } => "age (armored)",
            Envelope::OpenPgp { armored: false } => "OpenPGP",
            Envelope::OpenPgp { armored: true } => "OpenPGP (armored)",
        }
    }
}

/// Why a key could not be read or named.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    /// The environment variable or file is not there.
    #[error("the decryption key could not be read")]
    Unreadable(#[source] SecretError),
    /// The text is no key pgdrill reads.
    #[error(
        "the {from} holds no key pgdrill reads: an age identity (`AGE-SECRET-KEY-1...`, or its file encrypted with `age -p`) or an armored OpenPGP secret key (`-----BEGIN PGP PRIVATE KEY BLOCK-----`)"
    )]
    NotAKey { from: String },
    /// gpg could not read the OpenPGP key.
    #[error("gpg cannot read the OpenPGP key from the {from}: {said}")]
    OpenPgp { from: String, said: String },
    /// gpg could not be run.
    #[error("cannot run gpg (install GnuPG: the Debian package `gnupg`)")]
    Gpg(#[source] std::io::Error),
}

/// Why a backup did not decrypt with a key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecryptError {
    /// The backup is encrypted and the scenario gives no key.
    #[error(
        "the backup is encrypted with {what}; give its key: [source] decrypt = {{ identity_file = \"...\" }} (or identity_env, passphrase_env, passphrase_file)"
    )]
    NoKey { what: String },
    /// The key is not one the backup was encrypted to.
    #[error("{key} does not open the backup: {why}")]
    NotForKey { key: String, why: String },
    /// The key is of another kind than the envelope needs.
    #[error("{key} cannot open the backup: it is {envelope}")]
    WrongKind { key: String, envelope: String },
    /// The envelope's header is damaged or was changed.
    #[error("the {envelope} header is damaged or was changed: {why}")]
    Header { envelope: &'static str, why: String },
    /// The envelope's header cannot be read.
    #[error("the {envelope} header is damaged or was changed")]
    HeaderUnread {
        envelope: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// age refused the header, in its own words.
    #[error("the age header is damaged or was changed")]
    Age(#[source] age::DecryptError),
    /// gpg could not be run.
    #[error("cannot run gpg (install GnuPG: the Debian package `gnupg`)")]
    Gpg(#[source] std::io::Error),
}

/// Why the encrypted stream failed after it opened: carried inside an `io::Error` through the
/// decompressors, and told apart by [`StreamError::of`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    /// Authenticated decryption failed: the ciphertext was changed or cut short.
    #[error("authenticated decryption failed{} ({why}): the file was changed or cut short", at_plaintext(*.plaintext))]
    Damaged { why: String, plaintext: u64 },
    /// age's STREAM refused a chunk: the ciphertext was changed or cut short (age's error is
    /// shown where the message always showed it).
    #[error("authenticated decryption failed{} ({source}): the file was changed or cut short", at_plaintext(*.plaintext))]
    Unauthenticated {
        #[source]
        source: std::io::Error,
        plaintext: u64,
    },
    /// The stream ended before its end marker.
    #[error("the encrypted stream ends before its last chunk: the file was cut short")]
    Truncated,
    /// gpg said the key does not open the file, once it read the file's key packets.
    #[error(transparent)]
    Key(DecryptError),
}

fn at_plaintext(bytes: u64) -> String {
    if bytes == 0 { String::new() } else { format!(" after {bytes} bytes of plaintext") }
}

impl StreamError {
    /// The stream error inside `error`, when it is one.
    pub(crate) fn of(error: &std::io::Error) -> Option<&StreamError> {
        error.get_ref()?.downcast_ref::<StreamError>()
    }

    fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }
}

/// The envelope `head` (a file's first bytes) starts, if any: age's `age-encryption.org/v1`
/// or its armor, an OpenPGP message's armor or its first packet (a public-key or symmetric
/// session key packet, old or new format).
pub(crate) fn detect(head: &[u8]) -> Option<Envelope> {
    let trimmed = head.trim_ascii_start();
    if head.starts_with(b"age-encryption.org/v1\n") {
        Some(Envelope::Age { armored: false })
    } else if trimmed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----") {
        Some(Envelope::Age { armored: true })
    } else if trimmed.starts_with(b"-----BEGIN PGP MESSAGE-----") {
        Some(Envelope::OpenPgp { armored: true })
    } else {
        // Tag 1 (public-key encrypted session key) and 3 (symmetric-key encrypted session key):
        // old format 0b10tttt_ll, new format 0b11tttttt. No compressor's magic nor a dump's first
        // byte is one of these.
        matches!(head.first(), Some(0x84..=0x87 | 0x8c..=0x8f | 0xc1 | 0xc3))
            .then_some(Envelope::OpenPgp { armored: false })
    }
}

/// What the scenario's keys are, read and named: every secret is registered with `redactor`.
pub(crate) fn load(specs: &[KeySpec], redactor: &Redactor) -> Result<Vec<Key>, KeyError> {
    specs.iter().map(|spec| load_one(spec, redactor)).collect()
}

fn load_one(spec: &KeySpec, redactor: &Redactor) -> Result<Key, KeyError> {
    let read = |source: &SecretSource| {
        let secret = source.resolve().map_err(KeyError::Unreadable)?;
        redactor.register(&secret);
        Ok::<_, KeyError>(secret)
    };
    let (source, unlock) = match spec {
        KeySpec::Passphrase(source) => {
            let public = format!("the passphrase from {}", origin(source));
            return Ok(Key { public, material: Material::Passphrase(read(source)?) });
        }
        KeySpec::Identity { key, unlock } => (key, unlock.as_ref().map(read).transpose()?),
    };
    let from = origin(source);
    let bytes = raw_bytes(source)?;
    // An age identity file encrypted with a passphrase (`age -p`), opened in memory.
    let secret = match detect(&bytes) {
        Some(Envelope::Age { armored }) => {
            let unlocked = match &unlock {
                None => Err("it is encrypted with a passphrase (`age -p`): give it as key_passphrase_env or key_passphrase_file".to_owned()),
                Some(unlock) => with_age::unlock(&bytes, armored, unlock).map_err(|why| {
                    format!("it does not open with its key passphrase ({})", crate::error::error_chain(&why))
                }),
            };
            match unlocked {
                Ok(secret) => secret,
                Err(why) => {
                    return Ok(Key {
                        public: format!("the age identity in {from}"),
                        material: Material::Unopened(why),
                    });
                }
            }
        }
        _ => Secret::new(String::from_utf8_lossy(&bytes).trim_end_matches(['\n', '\r'])),
    };
    redactor.register(&secret);
    if let Some(identities) = with_age::identities(secret.expose()) {
        for identity in &identities {
            redactor.register(&Secret::new(age::secrecy::ExposeSecret::expose_secret(&identity.to_string())));
        }
        let recipients: Vec<String> = identities.iter().map(|i| i.to_public().to_string()).collect();
        return Ok(Key {
            public: format!("age identity {}", recipients.join(", ")),
            material: Material::Age(identities),
        });
    }
    if secret.expose().trim_start().starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
        let fingerprints = with_gpg::fingerprints(&secret, &from)?;
        return Ok(Key {
            public: format!("OpenPGP key {}", fingerprints.join(", ")),
            material: Material::OpenPgp { key: secret, unlock },
        });
    }
    Err(KeyError::NotAKey { from })
}

/// A key's bytes as its file holds them (an identity file encrypted with `age -p` is binary),
/// or its environment variable's text.
fn raw_bytes(source: &SecretSource) -> Result<Vec<u8>, KeyError> {
    match source {
        SecretSource::File(path) => std::fs::read(path)
            .map_err(|source| KeyError::Unreadable(SecretError::Unreadable { path: path.clone(), source })),
        _ => source.resolve().map(|s| s.expose().as_bytes().to_vec()).map_err(KeyError::Unreadable),
    }
}

/// Where a secret came from, as the reports say it: `$VAR` or the file's path.
pub(crate) fn origin(source: &SecretSource) -> String {
    match source {
        SecretSource::Env(var) => format!("${var}"),
        SecretSource::File(path) => format!("file {}", path.display()),
        SecretSource::Inline(_) => "the scenario".into(),
    }
}

/// The plaintext of `raw` (a file in `envelope`, read from its first byte), decrypted with
/// `key` as it is read. Without a key, the error says what the file is encrypted for.
pub(crate) fn open(
    raw: Box<dyn BufRead + Send>,
    envelope: Envelope,
    key: Option<&Key>,
) -> Result<Box<dyn Read + Send>, DecryptError> {
    match envelope {
        Envelope::Age { armored } => with_age::open(raw, armored, key),
        Envelope::OpenPgp { .. } => match key {
            Some(key) => with_gpg::open(raw, key),
            None => Err(DecryptError::NoKey { what: with_gpg::describe(raw) }),
        },
    }
}

/// The sha256 of the whole plaintext of `path` decrypted with `key` alone: the proof that the
/// key opens the backup. Blocking.
pub(crate) fn prove(path: &std::path::Path, key: &Key) -> Result<String, ProveError> {
    use sha2::Digest;
    let file = std::fs::File::open(path).map_err(|source| ProveError::Io { path: path.to_owned(), source })?;
    let mut raw = std::io::BufReader::with_capacity(BUFFER, file);
    let head = raw.fill_buf().map_err(|source| ProveError::Io { path: path.to_owned(), source })?;
    let Some(envelope) = detect(head) else { return Err(ProveError::NotEncrypted) };
    let mut plain = open(Box::new(raw), envelope, Some(key)).map_err(ProveError::Decrypt)?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut plain, &mut hasher).map_err(|source| match StreamError::of(&source) {
        Some(_) => ProveError::Stream(source),
        None => ProveError::Io { path: path.to_owned(), source },
    })?;
    Ok(hex::encode(hasher.finalize()))
}

/// Why a key's proof failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProveError {
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the backup is not encrypted")]
    NotEncrypted,
    #[error(transparent)]
    Decrypt(DecryptError),
    #[error(transparent)]
    Stream(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::{Envelope, detect};

    #[test]
    fn envelopes_are_told_by_their_first_bytes() {
        assert_eq!(detect(b"age-encryption.org/v1\n-> X25519 abc\n"), Some(Envelope::Age { armored: false }));
        assert_eq!(detect(b"-----BEGIN AGE ENCRYPTED FILE-----\n"), Some(Envelope::Age { armored: true }));
        assert_eq!(detect(b"-----BEGIN PGP MESSAGE-----\n"), Some(Envelope::OpenPgp { armored: true }));
        assert_eq!(detect(&[0x85, 0x01, 0x8c]), Some(Envelope::OpenPgp { armored: false }));
        assert_eq!(detect(&[0xc1, 0x5e]), Some(Envelope::OpenPgp { armored: false }));
        assert_eq!(detect(&[0x8c, 0x0d]), Some(Envelope::OpenPgp { armored: false }));
        for plain in
            [&b"--\n-- PostgreSQL database dump"[..], b"PGDMP\x01", &[0x1f, 0x8b, 8], &[0x28, 0xb5, 0x2f, 0xfd]]
        {
            assert_eq!(detect(plain), None);
        }
    }
}
