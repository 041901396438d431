//! Secrets: passwords, keys and tokens that must never reach the console, a log or a report.
//!
//! A [`Secret`] prints as `***`. [`Redactor`] scrubs the values it knows, and the password part
//! of any connection string, out of free text (error messages from servers and tools) before
//! that text is shown or written anywhere.

use std::fmt;
use std::sync::{Arc, RwLock};

/// What a redacted value is replaced with.
pub const MASK: &str = "***";

/// Environment variables that hold pgdrill's own secrets (the key that signs drill evidence and
/// its passphrase): no program a drill starts (the application, a migration command) inherits
/// them.
pub const NOT_INHERITED: [&str; 2] = ["PGDRILL_SIGNING_KEY", "PGDRILL_SIGNING_KEY_PASSPHRASE"];

/// A value that must not be shown: `Debug` and `Display` print [`MASK`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A fresh random password: 32 hexadecimal characters (128 bits) from the OS generator.
    pub fn random_password() -> Self {
        let bytes: [u8; 16] = rand::random();
        Self(hex::encode(bytes))
    }

    /// The value itself, for the one place that must hand it to a connection or process.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Where a scenario keeps a secret: inline (discouraged), in an environment variable, or in a
/// file (a mounted secret).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum SecretSource {
    Inline(Secret),
    Env(String),
    File(std::path::PathBuf),
}

/// Why a secret could not be read. It names where the secret should have been, never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SecretError {
    /// The environment variable that should hold it is not set (or is not UTF-8).
    #[error("the environment variable `{var}` is not set")]
    Unset { var: String },
    /// The file that should hold it could not be read.
    #[error("cannot read `{}`", path.display())]
    Unreadable {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SecretSource {
    /// The secret's value (a file's without its final line break).
    pub(crate) fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Inline(secret) => Ok(secret.clone()),
            SecretSource::Env(var) => {
                std::env::var(var).map(Secret::new).map_err(|_| SecretError::Unset { var: var.clone() })
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|text| Secret::new(text.trim_end_matches(['\n', '\r'])))
                .map_err(|source| SecretError::Unreadable { path: path.clone(), source }),
        }
    }
}

/// Scrubs known secret values and connection-string passwords out of text.
///
/// Cheap to clone; every clone shares the same set of known secrets, so a secret registered by
/// one phase (the target's password) is scrubbed from what any later phase reports.
#[derive(Clone, Default)]
pub struct Redactor {
    known: Arc<RwLock<Vec<String>>>,
}

impl Redactor {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Remember a secret so that [`Redactor::redact`] removes it from any text, and the log
    /// (see [`LogWriter`]) too.
    pub fn register(&self, secret: &Secret) {
        self.add(secret);
        let log = log_redactor();
        if !Arc::ptr_eq(&log.known, &self.known) {
            log.add(secret);
        }
    }

    fn add(&self, secret: &Secret) {
        // Very short values would mask unrelated text and protect nothing.
        if secret.0.len() < 4 {
            return;
        }
        if let Ok(mut known) = self.known.write()
            && !known.contains(&secret.0)
        {
            known.push(secret.0.clone());
            // Longest first, so a secret that contains another is masked whole.
            known.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// The text with every known secret and every URL password replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = redact_url_passwords(text);
        if let Ok(known) = self.known.read() {
            for secret in known.iter() {
                if out.contains(secret.as_str()) {
                    out = out.replace(secret.as_str(), MASK);
                }
            }
        }
        out
    }
}

/// Every secret any drill of this process registered: what the log is scrubbed with.
fn log_redactor() -> &'static Redactor {
    static LOG: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    LOG.get_or_init(Redactor::new)
}

/// How an error is shown: with its causes on one line ([`crate::error::error_chain`]), every
/// secret any drill of this process registered and every connection-string password masked.
/// Errors keep their causes whole until here.
pub fn error_text(error: &(dyn std::error::Error + '_)) -> String {
    log_redactor().redact(&crate::error::error_chain(error))
}

/// Writes log lines to stderr with every known secret and connection-string password masked
/// (a library's debug log may print a statement or a URL holding one).
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = log_redactor().redact(&String::from_utf8_lossy(buf));
        std::io::stderr().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.known.read().map(|k| k.len()).unwrap_or(0);
        write!(f, "Redactor({n} secrets)")
    }
}

/// `%XX` escapes decoded (a connection string's user and password); anything else kept as is.
pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Masks the password of every `scheme://user:password@host` in `text`, and the value of
/// `password=...` key/value pairs (libpq keyword form).
pub fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; userinfo ends at its last '@'.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'' || c == '`')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon + 1]);
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    redact_keyword_passwords(&out)
}

fn redact_keyword_passwords(text: &str) -> String {
    const KEY: &str = "password=";
    let lower = text.to_ascii_lowercase();
    if !lower.contains(KEY) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(KEY) {
        let start = search + found + KEY.len();
        let value_end = if text[start..].starts_with('\'') {
            text[start + 1..].find('\'').map(|e| start + e + 2).unwrap_or(text.len())
        } else {
            text[start..]
                .find(|c: char| c.is_whitespace() || c == '&' || c == ';')
                .map(|e| start + e)
                .unwrap_or(text.len())
        };
        out.push_str(&text[last..start]);
        out.push_str(MASK);
        last = value_end;
        search = value_end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("p%40ss%2Fw"), "p@ss/w");
        assert_eq!(percent_decode("plain%"), "plain%");
        assert_eq!(percent_decode("%aé%zz"), "%aé%zz", "no escape is read across a character");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter22");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter22");
    }

    #[test]
    fn random_passwords_differ_and_are_long() {
        let a = Secret::random_password();
        let b = Secret::random_password();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 32);
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            redact_url_passwords("connect postgres://app:s3cr%40t@db:5432/x?sslmode=require failed"),
            "connect postgres://app:***@db:5432/x?sslmode=require failed"
        );
        assert_eq!(
            redact_url_passwords("https://example.com/a@b and s3://bucket/key"),
            "https://example.com/a@b and s3://bucket/key"
        );
        assert_eq!(
            redact_url_passwords("host=db password='a b' user=x password=plain"),
            "host=db password=*** user=x password=***"
        );
    }

    #[test]
    fn known_secrets_are_masked_everywhere() {
        let r = Redactor::new();
        r.register(&Secret::new("tok-123456"));
        r.register(&Secret::new("ab"));
        assert_eq!(r.redact("bearer tok-123456, ab"), "bearer ***, ab");
        let clone = r.clone();
        clone.register(&Secret::new("later-secret"));
        assert_eq!(r.redact("later-secret"), "***");
    }
}
