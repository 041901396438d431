//! age files (<https://age-encryption.org/v1>), binary or armored, opened by the `age` crate with
//! X25519 identities or a passphrase (scrypt).

use std::io::{self, BufRead, BufReader, Read};
use std::str::FromStr;

use age::secrecy::SecretString;

use super::BUFFER;
use super::{DecryptError, Key, Material, StreamError};

/// The most scrypt work a passphrase file may ask for: 2^22 (about 4 GiB·s of work; `age`'s
/// own default is 2^18). A file asking more is refused rather than tying the drill up.
const MAX_WORK_FACTOR: u8 = 22;

/// The X25519 identities in `text` (an identity file: one `AGE-SECRET-KEY-1...` a line, `#`
/// comments), or `None` when it is not one.
pub(super) fn identities(text: &str) -> Option<Vec<age::x25519::Identity>> {
    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let identities: Option<Vec<_>> = lines.map(|line| age::x25519::Identity::from_str(line).ok()).collect();
    identities.filter(|all| !all.is_empty())
}

/// Why an age identity file encrypted with a passphrase did not open with it.
#[derive(Debug, thiserror::Error)]
pub(super) enum UnlockError {
    /// The file is encrypted to a recipient's key: no passphrase opens it.
    #[error("it is encrypted to a recipient, not with a passphrase")]
    NotPassphrase,
    /// age refused the file or the passphrase, in its own words.
    #[error(transparent)]
    Age(#[from] age::DecryptError),
    /// The decrypted identity file cannot be read as text.
    #[error(transparent)]
    Read(#[from] io::Error),
}

/// The text of an age identity file encrypted with a passphrase (`age -p`, armored or not),
/// decrypted in memory with `passphrase`; why not, in age's words.
pub(super) fn unlock(
    bytes: &[u8],
    armored: bool,
    passphrase: &crate::secret::Secret,
) -> Result<crate::secret::Secret, UnlockError> {
    let input: Box<dyn BufRead + Send + '_> =
        if armored { Box::new(BufReader::new(age::armor::ArmoredReader::new(bytes))) } else { Box::new(bytes) };
    let decryptor = age::Decryptor::new_buffered(input)?;
    if !decryptor.is_scrypt() {
        return Err(UnlockError::NotPassphrase);
    }
    let mut identity = age::scrypt::Identity::new(SecretString::from(passphrase.expose().to_owned()));
    identity.set_max_work_factor(MAX_WORK_FACTOR);
    let mut reader = decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))?;
    let mut text = String::new();
    reader.read_to_string(&mut text)?;
    Ok(crate::secret::Secret::new(text))
}

/// The recipients' kinds an age header names (`-> X25519 ...`), as a phrase: "2 recipients
/// (X25519)", "a passphrase (scrypt)".
fn stanzas(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head);
    let mut tags: Vec<&str> = text
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("---"))
        .filter_map(|l| l.strip_prefix("-> ")?.split_whitespace().next())
        .collect();
    if tags.contains(&"scrypt") {
        return "a passphrase (scrypt)".into();
    }
    let count = tags.len();
    tags.sort_unstable();
    tags.dedup();
    let kinds = tags.join(", ");
    if count == 1 { format!("1 recipient ({kinds})") } else { format!("{count} recipients ({kinds})") }
}

/// The plaintext of an age file read from `raw`, decrypted with `key`.
pub(super) fn open(
    raw: Box<dyn BufRead + Send>,
    armored: bool,
    key: Option<&Key>,
) -> Result<Box<dyn Read + Send>, DecryptError> {
    let mut input: Box<dyn BufRead + Send> =
        if armored { Box::new(BufReader::with_capacity(BUFFER, age::armor::ArmoredReader::new(raw))) } else { raw };
    let head = input.fill_buf().map_err(|source| DecryptError::HeaderUnread { envelope: "age", source })?;
    let to = stanzas(head);
    let Some(key) = key else { return Err(DecryptError::NoKey { what: format!("age for {to}") }) };
    let decryptor = age::Decryptor::new_buffered(input).map_err(DecryptError::Age)?;
    let scrypt = decryptor.is_scrypt();
    let wrong_kind = |envelope: &str| DecryptError::WrongKind { key: key.public.clone(), envelope: envelope.into() };
    let opened = match (&key.material, scrypt) {
        (Material::Unopened(why), _) => {
            return Err(DecryptError::NotForKey { key: key.public.clone(), why: why.clone() });
        }
        (Material::Age(identities), false) => decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity)),
        (Material::Passphrase(secret), true) => {
            let mut identity = age::scrypt::Identity::new(SecretString::from(secret.expose().to_owned()));
            identity.set_max_work_factor(MAX_WORK_FACTOR);
            decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
        }
        (Material::Passphrase(_), false) => {
            return Err(wrong_kind(&format!(
                "encrypted with age for {to}, not to a passphrase: give the identity (identity_file or identity_env)"
            )));
        }
        (Material::Age(_), true) | (Material::OpenPgp { .. }, true) => {
            return Err(wrong_kind(
                "encrypted with age for a passphrase (scrypt): give it as passphrase_env or passphrase_file",
            ));
        }
        (Material::OpenPgp { .. }, false) => return Err(wrong_kind(&format!("an age file, for {to}"))),
    };
    let stream = opened.map_err(|error| refused(key, &to, error))?;
    Ok(Box::new(Authenticated { inner: stream, plaintext: 0 }))
}

/// What age's refusal means for `key`.
fn refused(key: &Key, to: &str, error: age::DecryptError) -> DecryptError {
    let not_for = |why: String| DecryptError::NotForKey { key: key.public.clone(), why };
    match error {
        age::DecryptError::NoMatchingKeys => not_for(format!(
            "the file is encrypted for {to}, and none of its stanzas opens with this identity (it is for another recipient)"
        )),
        age::DecryptError::DecryptionFailed | age::DecryptError::KeyDecryptionFailed
            if matches!(key.material, Material::Passphrase(_)) =>
        {
            not_for("wrong passphrase (its scrypt stanza does not open with it)".into())
        }
        age::DecryptError::ExcessiveWork { required, .. } => not_for(format!(
            "the file asks for scrypt work factor 2^{required}, over the 2^{MAX_WORK_FACTOR} pgdrill accepts"
        )),
        age::DecryptError::InvalidMac => DecryptError::Header {
            envelope: "age",
            why: "its MAC does not match the file key this key unwrapped: the header was changed".into(),
        },
        other => DecryptError::Age(other),
    }
}

/// age's STREAM, its errors told apart: a chunk that does not authenticate, and a stream that
/// ends before its last chunk.
struct Authenticated<R> {
    inner: R,
    plaintext: u64,
}

impl<R: Read> Read for Authenticated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.plaintext += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(StreamError::Truncated.into_io()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                Err(StreamError::Unauthenticated { source: e, plaintext: self.plaintext }.into_io())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_identity_file_is_its_keys_lines() {
        let identity = age::x25519::Identity::generate();
        let secret = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_owned();
        let file = format!("# created: 2026-01-01\n# public key: {}\n{secret}\n", identity.to_public());
        let read = super::identities(&file).unwrap();
        assert_eq!(read[0].to_public().to_string(), identity.to_public().to_string());
        assert!(super::identities("-----BEGIN PGP PRIVATE KEY BLOCK-----\n").is_none());
        assert!(super::identities("# nothing\n").is_none());
    }

    #[test]
    fn a_header_says_what_it_is_for() {
        let head = b"age-encryption.org/v1\n-> X25519 abc\nbody\n-> X25519 def\nbody\n--- mac\n";
        assert_eq!(super::stanzas(head), "2 recipients (X25519)");
        assert_eq!(
            super::stanzas(b"age-encryption.org/v1\n-> scrypt salt 18\nbody\n--- mac\n"),
            "a passphrase (scrypt)"
        );
    }
}
