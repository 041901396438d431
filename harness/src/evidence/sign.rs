//! Signing a drill's evidence with an OpenSSH key, as `ssh-keygen -Y sign` does (SSHSIG, sha512),
//! so that `ssh-keygen -Y verify` checks it on any auditor's machine.
//!
//! The key comes from the environment (`PGDRILL_SIGNING_KEY`, the private key's text, as CI
//! secrets are; or `PGDRILL_SIGNING_KEY_FILE`, a path) or from `--signing-key FILE`; never from a
//! scenario. It is never shown or written: errors name where the key was read from, and the
//! reports only its public fingerprint.

use std::path::{Path, PathBuf};

use ssh_key::private::KeypairData;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

use crate::outcome::SignatureInfo;
use crate::secret::Secret;

/// The SSHSIG namespace of a drill's evidence: a signature made for something else (a git
/// commit, a file) does not verify as one.
pub(crate) const NAMESPACE: &str = "pgdrill-evidence@pgdrill.dev";
/// The private key's text.
pub(crate) const KEY_ENV: &str = crate::secret::NOT_INHERITED[0];
/// A path to the private key.
pub(crate) const KEY_FILE_ENV: &str = "PGDRILL_SIGNING_KEY_FILE";
/// The passphrase of an encrypted key.
pub(crate) const PASSPHRASE_ENV: &str = crate::secret::NOT_INHERITED[1];

/// The signing key's variables, once [`take_env`] has moved them out of the environment.
static TAKEN: std::sync::OnceLock<[Option<Secret>; 2]> = std::sync::OnceLock::new();

/// Moves the key's text and passphrase out of the process's environment (keeping them for
/// [`Signer::from_env`]), so that no program pgdrill starts inherits them.
///
/// # Safety
/// No other thread may read or write the environment meanwhile: call it before any starts.
pub(crate) unsafe fn take_env() {
    let taken = crate::secret::NOT_INHERITED.map(|name| std::env::var(name).ok().map(Secret::new));
    for name in crate::secret::NOT_INHERITED {
        // SAFETY: the caller guarantees that this thread is the only one.
        unsafe { std::env::remove_var(name) };
    }
    let _ = TAKEN.set(taken);
}

/// A signing variable: as [`take_env`] kept it, else from the environment.
fn secret_var(name: &str) -> Option<Secret> {
    match (TAKEN.get(), crate::secret::NOT_INHERITED.iter().position(|n| *n == name)) {
        (Some(taken), Some(i)) => taken[i].clone(),
        _ => std::env::var(name).ok().map(Secret::new),
    }
}

/// A key that signs drill evidence. Its `Debug` shows the public fingerprint only.
#[derive(Clone)]
pub(crate) struct Signer {
    key: PrivateKey,
    fingerprint: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} {})", self.key.algorithm(), self.fingerprint)
    }
}

/// Where the signing key was to be read from, for errors (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyOrigin {
    Flag(PathBuf),
    FileEnv(PathBuf),
    Env,
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyOrigin::Flag(path) => write!(f, "the signing key `{}` (--signing-key)", path.display()),
            KeyOrigin::FileEnv(path) => write!(f, "the signing key `{}` ({KEY_FILE_ENV})", path.display()),
            KeyOrigin::Env => write!(f, "the signing key in {KEY_ENV}"),
        }
    }
}

/// Why the signing key cannot be used. Names where the key came from, never its content.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SigningKeyError {
    #[error("both {KEY_ENV} and {KEY_FILE_ENV} are set: set one")]
    Ambiguous,
    #[error("cannot read {origin}")]
    Unreadable {
        origin: KeyOrigin,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{origin} is not an OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`, as `ssh-keygen -t ed25519` writes){hint}"
    )]
    NotAKey { origin: KeyOrigin, hint: &'static str },
    #[error("{origin} is encrypted: set {PASSPHRASE_ENV} to its passphrase, or give a key without one")]
    Encrypted { origin: KeyOrigin },
    #[error("cannot decrypt {origin} with the passphrase in {PASSPHRASE_ENV}: is it the right one?")]
    Passphrase { origin: KeyOrigin },
    #[error("{origin} is a {algorithm} key, which cannot sign here: use an ed25519, ECDSA or RSA key")]
    Algorithm { origin: KeyOrigin, algorithm: String },
}

/// The drill's signing, as the command line set it up: a key, or why the key it was given
/// cannot be used (the drill still runs, and its reports say they are unsigned, and why).
#[derive(Debug, Clone)]
pub(crate) enum Signing {
    Key(Box<Signer>),
    Broken(String),
}

impl Signing {
    /// The signing the environment and `--signing-key` ask for; `None` when they name no key.
    pub(crate) fn from_env(flag: Option<&Path>) -> Option<Signing> {
        match Signer::from_env(flag) {
            Ok(None) => None,
            Ok(Some(signer)) => Some(Signing::Key(Box::new(signer))),
            Err(e) => Some(Signing::Broken(crate::error::error_chain(&e))),
        }
    }

    pub(crate) fn signer(&self) -> Option<&Signer> {
        match self {
            Signing::Key(signer) => Some(signer),
            Signing::Broken(_) => None,
        }
    }

    /// What `drill.json` records about it.
    pub(crate) fn info(&self) -> SignatureInfo {
        match self {
            Signing::Key(signer) => SignatureInfo {
                signed_by: Some(signer.fingerprint.clone()),
                algorithm: Some(signer.key.algorithm().to_string()),
                namespace: NAMESPACE.to_owned(),
                statement: super::statement::STATEMENT.to_owned(),
                signature: Some(super::statement::SIGNATURE.to_owned()),
                unsigned: None,
            },
            Signing::Broken(why) => SignatureInfo {
                signed_by: None,
                algorithm: None,
                namespace: NAMESPACE.to_owned(),
                statement: super::statement::STATEMENT.to_owned(),
                signature: None,
                unsigned: Some(why.clone()),
            },
        }
    }
}

impl Signer {
    /// The key `--signing-key`, `PGDRILL_SIGNING_KEY_FILE` or `PGDRILL_SIGNING_KEY` names, in
    /// that order; `None` when none does.
    pub(crate) fn from_env(flag: Option<&Path>) -> Result<Option<Signer>, SigningKeyError> {
        let file = std::env::var(KEY_FILE_ENV).ok().filter(|v| !v.trim().is_empty());
        let text = secret_var(KEY_ENV).filter(|v| !v.expose().trim().is_empty());
        let (origin, text) = match (flag, file, text) {
            (Some(path), _, _) => (KeyOrigin::Flag(path.to_owned()), None),
            (None, Some(_), Some(_)) => return Err(SigningKeyError::Ambiguous),
            (None, Some(path), None) => (KeyOrigin::FileEnv(path.into()), None),
            (None, None, Some(text)) => (KeyOrigin::Env, Some(text)),
            (None, None, None) => return Ok(None),
        };
        let text = match (text, &origin) {
            (Some(text), _) => text,
            (None, KeyOrigin::Flag(path) | KeyOrigin::FileEnv(path)) => std::fs::read_to_string(path)
                .map(Secret::new)
                .map_err(|source| SigningKeyError::Unreadable { origin: origin.clone(), source })?,
            (None, KeyOrigin::Env) => unreachable!("the environment variable's text was read"),
        };
        let passphrase = secret_var(PASSPHRASE_ENV);
        Signer::parse(&text, passphrase.as_ref(), origin).map(Some)
    }

    /// The OpenSSH private key `text`, decrypted with `passphrase` when it is encrypted.
    pub(crate) fn parse(
        text: &Secret,
        passphrase: Option<&Secret>,
        origin: KeyOrigin,
    ) -> Result<Signer, SigningKeyError> {
        // CI secrets pasted into a variable often lose their line breaks' `\r` or gain `\r\n`.
        let text = text.expose().replace("\r\n", "\n");
        let key = PrivateKey::from_openssh(text.trim())
            .map_err(|_| SigningKeyError::NotAKey { hint: not_a_key_hint(&text), origin: origin.clone() })?;
        let key = if key.is_encrypted() {
            let Some(passphrase) = passphrase else {
                return Err(SigningKeyError::Encrypted { origin });
            };
            key.decrypt(passphrase.expose()).map_err(|_| SigningKeyError::Passphrase { origin: origin.clone() })?
        } else {
            key
        };
        let algorithm = key.algorithm();
        if !matches!(algorithm, Algorithm::Ed25519 | Algorithm::Ecdsa { .. } | Algorithm::Rsa { .. }) {
            return Err(SigningKeyError::Algorithm { origin, algorithm: algorithm.to_string() });
        }
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        Ok(Signer { key, fingerprint })
    }

    /// The public key's fingerprint, `SHA256:...` as `ssh-keygen -l` prints it.
    pub(crate) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// An armored SSH signature of `message` in pgdrill's namespace, as `ssh-keygen -Y sign -n
    /// NAMESPACE` writes it.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<String, ssh_key::Error> {
        self.sign_in(NAMESPACE, message)
    }

    /// The same, in another namespace (a fingerprint file's: what the signature is for).
    pub(crate) fn sign_in(&self, namespace: &str, message: &[u8]) -> Result<String, ssh_key::Error> {
        let sig = match self.key.key_data() {
            KeypairData::Rsa(rsa) => sign_rsa(rsa, self.key.public_key().key_data(), namespace, message)?,
            _ => self.key.sign(namespace, HashAlg::Sha512, message)?,
        };
        sig.to_pem(LineEnding::LF)
    }
}

/// An SSHSIG by an RSA key (rsa-sha2-512), as `ssh-keygen -Y sign` makes it. ssh-key 0.6.7 cannot:
/// it builds the private key from its first prime twice, which the rsa crate refuses.
fn sign_rsa(
    key: &ssh_key::private::RsaKeypair,
    public: &ssh_key::public::KeyData,
    namespace: &str,
    message: &[u8],
) -> Result<ssh_key::SshSig, ssh_key::Error> {
    use rsa::signature::{SignatureEncoding, Signer as _};
    let big = |m: &ssh_key::Mpint| m.as_positive_bytes().map(rsa::BigUint::from_bytes_be).ok_or(ssh_key::Error::Crypto);
    let private = rsa::RsaPrivateKey::from_components(
        big(&key.public.n)?,
        big(&key.public.e)?,
        big(&key.private.d)?,
        vec![big(&key.private.p)?, big(&key.private.q)?],
    )
    .map_err(|_| ssh_key::Error::Crypto)?;
    let data = ssh_key::SshSig::signed_data(namespace, HashAlg::Sha512, message)?;
    let signature =
        rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(private).try_sign(&data).map_err(|_| ssh_key::Error::Crypto)?;
    let signature = ssh_key::Signature::new(Algorithm::Rsa { hash: Some(HashAlg::Sha512) }, signature.to_vec())?;
    ssh_key::SshSig::new(public.clone(), namespace, HashAlg::Sha512, signature)
}

/// What to do about text that is not an OpenSSH private key, when its first line says what it is.
fn not_a_key_hint(text: &str) -> &'static str {
    let first = text.trim_start().lines().next().unwrap_or_default();
    if first.starts_with("-----BEGIN") && first.contains("PRIVATE KEY") {
        ": it is a PEM key; `ssh-keygen -p -f FILE` rewrites it in OpenSSH's format"
    } else if first.starts_with("ssh-") || first.starts_with("ecdsa-") || first.starts_with("sk-") {
        ": it is a public key; give the private key"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ed25519 key made from a fixed seed, in OpenSSH's format.
    pub(crate) fn ed25519(seed: u8) -> Secret {
        let key = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]));
        Secret::new(key.to_openssh(LineEnding::LF).unwrap().as_str())
    }

    #[test]
    fn an_openssh_key_signs_in_pgdrills_namespace_and_shows_only_its_fingerprint() {
        let signer = Signer::parse(&ed25519(7), None, KeyOrigin::Env).unwrap();
        assert!(signer.fingerprint().starts_with("SHA256:"), "{}", signer.fingerprint());
        let pem = signer.sign(b"evidence").unwrap();
        assert!(pem.starts_with("-----BEGIN SSH SIGNATURE-----\n"), "{pem}");
        let sig: ssh_key::SshSig = pem.parse().unwrap();
        assert_eq!(sig.namespace(), NAMESPACE);
        assert_eq!(sig.hash_alg(), HashAlg::Sha512);
        signer.key.public_key().verify(NAMESPACE, b"evidence", &sig).unwrap();
        assert!(signer.key.public_key().verify(NAMESPACE, b"evidence, edited", &sig).is_err());
        let debug = format!("{signer:?} {:?}", Signing::Key(Box::new(signer.clone())));
        let body = ed25519(7).expose().lines().nth(1).unwrap().to_owned();
        assert!(!debug.contains(&body) && debug.contains("SHA256:"), "{debug}");
        // With Windows line breaks, as some CI secret stores keep them.
        assert!(Signer::parse(&Secret::new(ed25519(7).expose().replace('\n', "\r\n")), None, KeyOrigin::Env).is_ok());
    }

    #[test]
    fn garbage_a_public_key_or_an_unreadable_file_is_a_clear_error_that_never_shows_the_key() {
        let garbage = Signer::parse(&Secret::new("hunter2-not-a-key"), None, KeyOrigin::Env).unwrap_err();
        let text = crate::error::error_chain(&garbage);
        assert!(text.contains("the signing key in PGDRILL_SIGNING_KEY is not an OpenSSH private key"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let public = Signer::parse(&Secret::new("ssh-ed25519 AAAAC3Nza me"), None, KeyOrigin::Env).unwrap_err();
        assert!(public.to_string().ends_with("it is a public key; give the private key"), "{public}");
        let missing = Signer::from_env(Some(Path::new("/nonexistent/key"))).unwrap_err();
        assert!(missing.to_string().contains("cannot read the signing key `/nonexistent/key` (--signing-key)"));
        let info = Signing::Broken(missing.to_string()).info();
        assert_eq!((info.signed_by, info.signature), (None, None));
    }
}
