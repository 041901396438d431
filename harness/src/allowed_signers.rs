//! OpenSSH's allowed signers file (ssh-keygen(1), "ALLOWED SIGNERS"), as `ssh-keygen -Y verify -f`
//! reads it: one key a line, `principals [options] keytype base64-key [comment]`, with the
//! options `namespaces="..."`, `valid-after=`, `valid-before=` honoured and `cert-authority`
//! lines kept aside (pgdrill verifies signatures by plain keys, not by certificates).

use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey, SshSig};
use time::OffsetDateTime;

/// One line: who may sign with which key, for what and when.
#[derive(Debug, Clone)]
pub(crate) struct AllowedSigner {
    /// The line's number in the file, from 1.
    pub line: usize,
    /// The principals, a comma-separated pattern list (`*@example.com`, `!mallory`).
    pub principals: String,
    /// The namespaces the key may sign for (a pattern list); any when `None`.
    pub namespaces: Option<String>,
    pub valid_after: Option<OffsetDateTime>,
    pub valid_before: Option<OffsetDateTime>,
    /// The key is a certificate authority's: it vouches for certificates, which pgdrill does not
    /// verify, and is never taken as a signer's own key.
    pub cert_authority: bool,
    pub key: PublicKey,
}

/// Why a line of an allowed signers file cannot be read; each says its line's number, from 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ParseError {
    /// The line names principals and no key.
    #[error("line {line}: no key: expected `principals [options] keytype base64-key`")]
    NoKey { line: usize },
    /// The key's text is not an OpenSSH public key.
    #[error("line {line}: `{key}` is not an OpenSSH public key ({source})")]
    NotAKey {
        line: usize,
        key: String,
        #[source]
        source: ssh_key::Error,
    },
    /// A field opens a quote it never closes.
    #[error("line {line}: `{text}` lacks its closing quote")]
    UnclosedQuote { line: usize, text: String },
    /// A quote inside a field that does not start with one.
    #[error("line {line}: `{text}` has a stray quote")]
    StrayQuote { line: usize, text: String },
    /// An option ssh-keygen does not read in an allowed signers file.
    #[error(
        "line {line}: `{option}` is not an option of allowed signers (cert-authority, namespaces=\"...\", valid-after=\"...\", valid-before=\"...\")"
    )]
    UnknownOption { line: usize, option: String },
    /// A `valid-after`/`valid-before` time not written as ssh-keygen reads it.
    #[error("line {line}: `{text}` is not a time as YYYYMMDD[HHMM[SS]][Z]")]
    BadTime { line: usize, text: String },
}

/// Why a detached signature proves nothing, as `verify_detached` finds it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignatureError {
    /// The signature file is not an armored SSHSIG.
    #[error("it is not an armored SSH signature ({source})")]
    NotArmored {
        #[source]
        source: ssh_key::Error,
    },
    /// The signature was made for another namespace.
    #[error("it was made for the namespace `{made_for}`, not `{namespace}`")]
    OtherNamespace { made_for: String, namespace: String },
    /// The signature does not match the message: the file changed after it was signed.
    #[error("it does not match the file: the file was changed after {fingerprint} signed it")]
    Altered { fingerprint: String },
    /// No line of the allowed signers holds the signing key.
    #[error("it was made by {fingerprint}, a key the allowed signers do not list")]
    UnknownKey { fingerprint: String },
    /// The key is allowed, for other principals.
    #[error("{fingerprint} may sign as `{principals}` (line {line}), not as `{identity}`")]
    Identity { fingerprint: String, principals: String, line: usize, identity: String },
    /// The key is allowed, for other namespaces.
    #[error("{fingerprint} may sign only for `{namespaces}` (line {line})")]
    Namespace { fingerprint: String, namespaces: String, line: usize },
    /// The key's line is not valid now.
    #[error("{fingerprint}'s line {line}: {why}")]
    Expired { fingerprint: String, line: usize, why: String },
}

/// Why no line of the file allows a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No line holds the key (some may hold it as a certificate authority: their numbers).
    UnknownKey { cert_authorities: Vec<usize> },
    /// The key is there, for other principals.
    Identity { identity: String, principals: String, line: usize },
    /// The key is there, for other namespaces.
    Namespace { namespaces: String, line: usize },
    /// The key is there, not valid now.
    Expired { line: usize, why: String },
}

/// An allowed signers file.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedSigners {
    pub signers: Vec<AllowedSigner>,
}

impl AllowedSigners {
    pub(crate) fn parse(text: &str) -> Result<AllowedSigners, ParseError> {
        let mut signers = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            signers.push(parse_line(n + 1, line)?);
        }
        Ok(AllowedSigners { signers })
    }

    /// The line that allows `key` to sign for `namespace` at `now` (as `identity`, when given),
    /// or why none does.
    pub(crate) fn allow(
        &self,
        key: &KeyData,
        identity: Option<&str>,
        namespace: &str,
        now: OffsetDateTime,
    ) -> Result<&AllowedSigner, Refusal> {
        let mut refusal = None;
        for s in self.signers.iter().filter(|s| !s.cert_authority && s.key.key_data() == key) {
            let why = if let Some(id) = identity.filter(|id| !matches_list(&s.principals, id)) {
                Refusal::Identity { identity: id.to_owned(), principals: s.principals.clone(), line: s.line }
            } else if let Some(ns) = s.namespaces.as_ref().filter(|ns| !matches_list(ns, namespace)) {
                Refusal::Namespace { namespaces: ns.clone(), line: s.line }
            } else if let Some(after) = s.valid_after.filter(|a| now < *a) {
                Refusal::Expired { line: s.line, why: format!("it is valid only after {after}") }
            } else if let Some(before) = s.valid_before.filter(|b| now >= *b) {
                Refusal::Expired { line: s.line, why: format!("it was valid only before {before}") }
            } else {
                return Ok(s);
            };
            refusal.get_or_insert(why);
        }
        Err(refusal.unwrap_or_else(|| Refusal::UnknownKey {
            cert_authorities: self.signers.iter().filter(|s| s.cert_authority).map(|s| s.line).collect(),
        }))
    }
}

/// Verifies the armored SSH signature `pem` of `message` in `namespace` by a key `signers`
/// allow (as `identity`, when given), as `ssh-keygen -Y verify` does: the key's fingerprint and
/// the line that allows it, or why the signature proves nothing.
pub(crate) fn verify_detached(
    signers: &AllowedSigners,
    identity: Option<&str>,
    namespace: &str,
    message: &[u8],
    pem: &str,
) -> Result<String, SignatureError> {
    let sig: SshSig = pem.trim().parse().map_err(|source| SignatureError::NotArmored { source })?;
    let key = PublicKey::from(sig.public_key().clone());
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    if sig.namespace() != namespace {
        return Err(SignatureError::OtherNamespace {
            made_for: sig.namespace().to_owned(),
            namespace: namespace.to_owned(),
        });
    }
    if key.verify(namespace, message, &sig).is_err() {
        return Err(SignatureError::Altered { fingerprint });
    }
    match signers.allow(key.key_data(), identity, namespace, OffsetDateTime::now_utc()) {
        Ok(line) => Ok(format!("{fingerprint} (line {} of the allowed signers: {})", line.line, line.principals)),
        Err(Refusal::UnknownKey { .. }) => Err(SignatureError::UnknownKey { fingerprint }),
        Err(Refusal::Identity { identity, principals, line }) => {
            Err(SignatureError::Identity { fingerprint, principals, line, identity })
        }
        Err(Refusal::Namespace { namespaces, line }) => {
            Err(SignatureError::Namespace { fingerprint, namespaces, line })
        }
        Err(Refusal::Expired { line, why }) => Err(SignatureError::Expired { fingerprint, line, why }),
    }
}

/// Splits on whitespace (or `sep`) outside double quotes, keeping the quotes.
fn split_outside_quotes(text: &str, is_sep: impl Fn(char) -> bool) -> Vec<&str> {
    let (mut parts, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && is_sep(c) {
            if i > start {
                parts.push(&text[start..i]);
            }
            start = i + c.len_utf8();
        }
    }
    if start < text.len() {
        parts.push(&text[start..]);
    }
    parts
}

/// `text` without its double quotes, on line `n`.
fn unquote(n: usize, text: &str) -> Result<&str, ParseError> {
    match text.strip_prefix('"') {
        Some(rest) => {
            rest.strip_suffix('"').ok_or_else(|| ParseError::UnclosedQuote { line: n, text: text.to_owned() })
        }
        None if text.contains('"') => Err(ParseError::StrayQuote { line: n, text: text.to_owned() }),
        None => Ok(text),
    }
}

fn parse_line(n: usize, line: &str) -> Result<AllowedSigner, ParseError> {
    let fields = split_outside_quotes(line, char::is_whitespace);
    let principals = unquote(n, fields.first().copied().unwrap_or_default())?.to_owned();
    // A key type pgdrill knows: `Algorithm::new` takes any `name@domain`, as an option can be.
    let is_key_type =
        |f: &&str| matches!(ssh_key::Algorithm::new(f), Ok(a) if !matches!(a, ssh_key::Algorithm::Other(_)));
    let (options, key_at) = match fields.get(1) {
        Some(f) if is_key_type(f) => (None, 1),
        Some(f) => (Some(*f), 2),
        None => return Err(ParseError::NoKey { line: n }),
    };
    let (Some(kind), Some(base64)) = (fields.get(key_at), fields.get(key_at + 1)) else {
        return Err(ParseError::NoKey { line: n });
    };
    let text = format!("{kind} {base64}");
    let key = PublicKey::from_openssh(&text).map_err(|source| ParseError::NotAKey { line: n, key: text, source })?;
    let mut signer = AllowedSigner {
        line: n,
        principals,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        cert_authority: false,
        key,
    };
    for option in options.map(|o| split_outside_quotes(o, |c| c == ',')).unwrap_or_default() {
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name, Some(unquote(n, value)?)),
            None => (option, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("cert-authority", None) => signer.cert_authority = true,
            ("namespaces", Some(v)) => signer.namespaces = Some(v.to_owned()),
            ("valid-after", Some(v)) => signer.valid_after = Some(timestamp(n, v)?),
            ("valid-before", Some(v)) => signer.valid_before = Some(timestamp(n, v)?),
            _ => return Err(ParseError::UnknownOption { line: n, option: option.to_owned() }),
        }
    }
    Ok(signer)
}

/// `YYYYMMDD[HHMM[SS]][Z]`: UTC with `Z`, else this machine's local time (as ssh-keygen reads it).
fn timestamp(n: usize, text: &str) -> Result<OffsetDateTime, ParseError> {
    let bad = || ParseError::BadTime { line: n, text: text.to_owned() };
    let (digits, utc) = match text.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (text, false),
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| digits.get(range).map_or(Ok(0), |d| d.parse::<u32>().map_err(|_| bad()));
    let month = time::Month::try_from(num(4..6)? as u8).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(num(0..4)? as i32, month, num(6..8)? as u8).map_err(|_| bad())?;
    let at = date.with_hms(num(8..10)? as u8, num(10..12)? as u8, num(12..14)? as u8).map_err(|_| bad())?;
    let offset = if utc {
        time::UtcOffset::UTC
    } else {
        time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC)
    };
    Ok(at.assume_offset(offset))
}

/// OpenSSH's pattern lists (ssh_config(5), PATTERNS): comma-separated patterns with `*` and `?`;
/// one that starts with `!` and matches refuses, whatever else matches.
pub(crate) fn matches_list(list: &str, text: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated.as_bytes(), text.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= glob(pattern.as_bytes(), text.as_bytes()),
        }
    }
    matched
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32])).public_key().clone()
    }

    #[test]
    fn lines_with_and_without_options_comments_and_quotes_are_read() {
        let (a, b, c) = (key(1).to_openssh().unwrap(), key(2).to_openssh().unwrap(), key(3).to_openssh().unwrap());
        let text = format!(
            "# auditors' list\n\n\
             drills@example.com {a} the CI key\n\
             \"ops@example.com,!mallory@example.com\" namespaces=\"pgdrill-evidence@pgdrill.dev,file\",valid-before=\"20990101Z\" {b}\n\
             *@example.com cert-authority {c}\n\
             audit@example.com namespaces=\"pgdrill-evidence@pgdrill.dev\" {a}\n"
        );
        let mut signers = AllowedSigners::parse(&text).unwrap();
        assert_eq!(signers.signers[3].namespaces.as_deref(), Some("pgdrill-evidence@pgdrill.dev"));
        signers.signers.truncate(3);
        let lines: Vec<_> = signers.signers.iter().map(|s| (s.line, s.principals.as_str(), s.cert_authority)).collect();
        assert_eq!(
            lines,
            [
                (3, "drills@example.com", false),
                (4, "ops@example.com,!mallory@example.com", false),
                (5, "*@example.com", true)
            ]
        );
        let second = &signers.signers[1];
        assert_eq!(second.namespaces.as_deref(), Some("pgdrill-evidence@pgdrill.dev,file"));
        assert_eq!(second.valid_before, Some(time::macros::datetime!(2099-01-01 00:00 UTC)));
        assert_eq!(second.key.key_data(), key(2).key_data());
    }

    #[test]
    fn a_key_is_allowed_only_for_its_principals_namespaces_and_time() {
        let (a, b, c) = (key(1).to_openssh().unwrap(), key(2).to_openssh().unwrap(), key(3).to_openssh().unwrap());
        let text = format!(
            "drills@example.com {a}\n\
             ops@example.com namespaces=\"git\" {b}\n\
             *@example.com cert-authority {c}\n\
             old@example.com valid-before=\"20200101\" {c}\n"
        );
        let signers = AllowedSigners::parse(&text).unwrap();
        let now = OffsetDateTime::now_utc();
        let ns = "pgdrill-evidence@pgdrill.dev";
        assert_eq!(signers.allow(key(1).key_data(), None, ns, now).unwrap().line, 1);
        assert_eq!(signers.allow(key(1).key_data(), Some("drills@example.com"), ns, now).unwrap().line, 1);
        assert!(matches!(
            signers.allow(key(1).key_data(), Some("eve@example.com"), ns, now),
            Err(Refusal::Identity { line: 1, .. })
        ));
        assert!(matches!(
            signers.allow(key(2).key_data(), None, ns, now),
            Err(Refusal::Namespace { namespaces, line: 2 }) if namespaces == "git"
        ));
        // A certificate authority's key is never a signer's own; the expired line does not count.
        assert!(matches!(signers.allow(key(3).key_data(), None, ns, now), Err(Refusal::Expired { line: 4, .. })));
        assert_eq!(
            signers.allow(key(9).key_data(), None, ns, now).unwrap_err(),
            Refusal::UnknownKey { cert_authorities: vec![3] }
        );
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        let a = key(1).to_openssh().unwrap();
        for (text, says) in [
            ("drills@example.com\n".to_owned(), "line 1: no key"),
            (format!("\nx restrict {a}\n"), "line 2: `restrict` is not an option"),
            (
                "x ssh-ed25519 AAAAnotbase64!\n".to_owned(),
                "line 1: `ssh-ed25519 AAAAnotbase64!` is not an OpenSSH public key",
            ),
            (format!("x valid-after=\"2024\" {a}\n"), "line 1: `2024` is not a time"),
            (format!("\"x {a}\n"), "lacks its closing quote"),
        ] {
            let error = AllowedSigners::parse(&text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn pattern_lists_match_as_openssh_does() {
        assert!(matches_list("*@example.com", "drills@example.com"));
        assert!(matches_list("a@x,b@x", "b@x"));
        assert!(!matches_list("*@example.com,!mallory@example.com", "mallory@example.com"));
        assert!(matches_list("pgdrill-*", "pgdrill-evidence@pgdrill.dev"));
        assert!(matches_list("d?ills", "drills") && !matches_list("d?ills", "dills"));
        assert!(!matches_list("", "anything") && !matches_list("!x", "y"));
    }
}
