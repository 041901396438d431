//! `[source]`: where the backup is and how it is read.

use std::path::Path;
use std::time::Duration;

use crate::field::{FieldError, Spanned, normalize, parse_duration};
use crate::secret::{Secret, SecretSource};
use crate::source::decrypt::KeySpec;
use crate::source::http::HttpSpec;
use crate::source::kind::{IntendedChange, KindPart};
use crate::source::newest::NamePattern;
use crate::source::s3::S3Spec;
use crate::source::sample::{self, SampleSpec};
use crate::source::{SourceLocation, SourceSpec, Tablespaces, WalArchiveLocation};

use super::raw;

pub(super) fn resolve_source(
    raw: &Spanned<raw::RawSource>,
    base: &Path,
    scenario: &str,
) -> Result<SourceSpec, FieldError> {
    let source = raw.get_ref();
    let location = location(raw, base)?;
    let sample = sample(source, &location, scenario)?;
    if !matches!(location, SourceLocation::Url(_))
        && let Some(token) = source.token_env.as_ref().or(source.token_file.as_ref())
    {
        return Err(FieldError::new(token.span(), "a token is only sent to an http(s):// source (`url`)"));
    }
    let expected_sha256 = match &source.sha256 {
        Some(digest) => {
            let d = digest.get_ref().trim().to_ascii_lowercase();
            if d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(FieldError::new(digest.span(), "`sha256` must be 64 hexadecimal characters"));
            }
            Some(d)
        }
        None => None,
    };
    let min_size_ratio = match &source.min_size_ratio {
        Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
            return Err(FieldError::new(r.span(), "`min_size_ratio` is a fraction between 0 and 1 (0.1 = 10%)"));
        }
        Some(r) => *r.get_ref(),
        None => 0.1,
    };
    let trusted = match &source.trusted {
        Some(why) if why.get_ref().trim().is_empty() => {
            return Err(FieldError::new(why.span(), "`trusted` says why the backup is trusted; it cannot be empty")
                .with_help(
                    "for example: trusted = \"written only by the nightly backup job; the bucket is write-once\"",
                ));
        }
        Some(why) => Some(why.get_ref().trim().to_owned()),
        None => None,
    };
    let wal_archive = wal_archive(source, base)?;
    let stanza = plain_name(&source.stanza, "stanza's name")?;
    let set = plain_name(&source.set, "backup set's label")?;
    let tablespaces = tablespaces(source, base)?;
    // Never inline: a passphrase in the scenario file would travel with it.
    let cipher_pass = secret_source("cipher_pass", &None, &source.cipher_pass_env, &source.cipher_pass_file, base)
        .map_err(|e| {
            let span = source.cipher_pass_env.as_ref().or(source.cipher_pass_file.as_ref()).map(|s| s.span());
            FieldError::new(span.unwrap_or_default(), e.to_string())
        })?;
    let decrypt = decrypt_keys(source, base)?;
    if let (Some(_), Some(keys)) = (&cipher_pass, &source.decrypt) {
        let span = keys.first().map(|k| k.span()).unwrap_or_default();
        return Err(FieldError::new(
            span,
            "`cipher_pass_env` (or `cipher_pass_file`) and `decrypt` both give the backup's keys: give them in one place",
        )
        .with_help("an encrypted pgBackRest repository's several passphrases: decrypt = [{ passphrase_env = \"PASS_A\" }, { passphrase_file = \"escrow/pass-b\" }]"));
    }
    let changed = changed(source)?;
    let (verify_first, one_pass) = verify_when(source)?;
    Ok(SourceSpec {
        verify_first,
        one_pass,
        decrypt,
        changed,
        location,
        expected_sha256,
        min_size_ratio,
        trusted,
        wal_archive,
        stanza,
        set,
        tablespaces,
        cipher_pass,
        given: false,
        sample,
    })
}

/// `[source] sample`: a window of a folder's or an S3 prefix's backups to draw the drilled one
/// from.
fn sample(
    source: &raw::RawSource,
    location: &SourceLocation,
    scenario: &str,
) -> Result<Option<SampleSpec>, FieldError> {
    let Some(sample) = &source.sample else { return Ok(None) };
    if !sample::samples(location) {
        return Err(FieldError::new(sample.span(), sample::NOT_A_FOLDER));
    }
    let within = &sample.get_ref().within;
    let within = sample::parse_within(within.get_ref().trim()).map_err(|e| {
        FieldError::new(within.span(), e.to_string()).with_help("for example: sample = { within = \"30d\" }")
    })?;
    Ok(Some(SampleSpec {
        within,
        seed: None,
        scenario: scenario.to_owned(),
        day: time::OffsetDateTime::now_utc().date(),
    }))
}

/// `[source] verify`: (verify first, read once as written).
fn verify_when(source: &raw::RawSource) -> Result<(bool, bool), FieldError> {
    match source.verify.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
        None => Ok((false, false)),
        Some(("one-pass", _)) => Ok((false, true)),
        Some(("first", _)) => Ok((true, false)),
        Some((_, span)) => Err(FieldError::new(
            span,
            "`verify` is \"one-pass\" (the restore's read verifies the dump: the default for a plain dump and an encrypted archive) or \"first\" (read whole before any of its SQL runs)",
        )),
    }
}

/// `[source] decrypt`: each key's file or environment variable, never its value.
fn decrypt_keys(source: &raw::RawSource, base: &Path) -> Result<Vec<KeySpec>, FieldError> {
    let Some(keys) = &source.decrypt else { return Ok(Vec::new()) };
    if keys.is_empty() {
        return Err(FieldError::new(Default::default(), "`decrypt` lists no key: give at least one, or remove it"));
    }
    keys.iter()
        .map(|key| {
            let raw = key.get_ref();
            let given = [
                (&raw.identity_file, true, true),
                (&raw.identity_env, true, false),
                (&raw.passphrase_file, false, true),
                (&raw.passphrase_env, false, false),
            ];
            let mut set = given.iter().filter(|(value, ..)| value.is_some());
            let (Some((value, identity, file)), None) = (set.next(), set.next()) else {
                return Err(FieldError::new(
                    key.span(),
                    "a key is exactly one of identity_file, identity_env, passphrase_file or passphrase_env",
                ));
            };
            let source = |value: &String, file: bool| {
                if file { SecretSource::File(normalize(&base.join(value))) } else { SecretSource::Env(value.clone()) }
            };
            let secret = source(value.as_ref().expect("filtered").get_ref(), *file);
            let unlock = match (&raw.key_passphrase_file, &raw.key_passphrase_env) {
                (Some(_), Some(_)) => {
                    return Err(FieldError::new(key.span(), "a key's passphrase is one of key_passphrase_file or key_passphrase_env"));
                }
                (Some(path), None) => Some(source(path.get_ref(), true)),
                (None, Some(var)) => Some(source(var.get_ref(), false)),
                (None, None) => None,
            };
            if unlock.is_some() && !*identity {
                return Err(FieldError::new(
                    key.span(),
                    "key_passphrase_file and key_passphrase_env unlock a key (identity_file, identity_env); a passphrase_* is the passphrase itself",
                ));
            }
            Ok(if *identity { KeySpec::Identity { key: secret, unlock } } else { KeySpec::Passphrase(secret) })
        })
        .collect()
}

/// `[source] changed`: the changes of the backup's kind the scenario intended, each a part of the
/// kind pgdrill knows, to a value that part can take (when given), with a reason.
fn changed(source: &raw::RawSource) -> Result<Vec<IntendedChange>, FieldError> {
    let Some(changes) = &source.changed else { return Ok(Vec::new()) };
    changes
        .iter()
        .map(|change| {
            let raw = change.get_ref();
            let what = KindPart::parse(raw.what.get_ref().trim()).ok_or_else(|| {
                let parts: Vec<&str> = KindPart::ALL.iter().map(|p| p.name()).collect();
                FieldError::new(raw.what.span(), format!("`{}` is no part of a backup's kind", raw.what.get_ref()))
                    .with_help(format!("`what` is one of {}", parts.join(", ")))
            })?;
            let to = match &raw.to {
                None => None,
                Some(to) => Some(change_to(what, to)?),
            };
            let reason = raw.reason.get_ref().trim();
            if reason.is_empty() {
                return Err(FieldError::new(
                    raw.reason.span(),
                    "`reason` says why the backup's kind changed; it cannot be empty",
                ));
            }
            Ok(IntendedChange { what, to, reason: reason.to_owned() })
        })
        .collect()
}

/// A `changed` entry's `to`: a value `what` can take.
fn change_to(what: KindPart, to: &Spanned<raw::RawChangeTo>) -> Result<String, FieldError> {
    let text = match to.get_ref() {
        raw::RawChangeTo::Name(name) => name.trim().to_owned(),
        raw::RawChangeTo::Number(number) => number.to_string(),
    };
    let known = match what.values() {
        Some(values) => values.iter().any(|v| v.eq_ignore_ascii_case(&text)),
        None if what == KindPart::Major => text.parse::<u32>().is_ok_and(|m| m >= 9),
        None => !text.is_empty(),
    };
    if known {
        return Ok(text);
    }
    let help = match what.values() {
        Some(values) => format!("a {} is one of {}", what.name(), values.join(", ")),
        None if what == KindPart::Major => "a major is PostgreSQL's major version, e.g. `17`".to_owned(),
        None => "a database's name".to_owned(),
    };
    Err(FieldError::new(to.span(), format!("`{text}` is no {} a backup can have", what.name())).with_help(help))
}

/// `[source] tablespaces`: OIDs (as in `pg_tblspc`) to folders, relative to the scenario file; a
/// chain's members' as `"<member>/<oid>"`.
fn tablespaces(source: &raw::RawSource, base: &Path) -> Result<Tablespaces, FieldError> {
    let Some(given) = &source.tablespaces else { return Ok(Tablespaces::default()) };
    let mut tablespaces = Tablespaces::default();
    for (key, folder) in given.get_ref() {
        let (member, oid) = match key.rsplit_once('/') {
            Some((member, oid)) => (Some(member), oid),
            None => (None, key.as_str()),
        };
        let oid = oid.parse::<u32>().ok().filter(|n| *n > 0 && oid.bytes().all(|b| b.is_ascii_digit()));
        let member_ok = member.is_none_or(|m| {
            !m.is_empty()
                && !m.starts_with('.')
                && m.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
        let (Some(oid), true) = (oid, member_ok) else {
            return Err(FieldError::new(
                given.span(),
                format!(
                    "`{key}` is not a tablespace's OID: name each by the number of its link in pg_tblspc (a chain's member's as \"<member>/<oid>\")"
                ),
            ));
        };
        let folder = normalize(&base.join(folder));
        match member {
            Some(member) => tablespaces.members.entry(member.to_owned()).or_default().insert(oid, folder),
            None => tablespaces.backup.insert(oid, folder),
        };
    }
    Ok(tablespaces)
}

/// Where the backup is: exactly one of a file, the newest in a folder, a URL or S3.
fn location(raw: &Spanned<raw::RawSource>, base: &Path) -> Result<SourceLocation, FieldError> {
    let source = raw.get_ref();
    let given: Vec<&str> = [
        ("path", source.path.is_some()),
        ("dir", source.dir.is_some()),
        ("url", source.url.is_some() || source.url_env.is_some() || source.url_file.is_some()),
        ("s3", source.s3.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| k)
    .collect();
    if given.len() != 1 {
        let message = if given.is_empty() {
            "`[source]` names no backup".to_owned()
        } else {
            format!("`[source]` names its backup {} ways ({}); give one", given.len(), given.join(", "))
        };
        return Err(FieldError::new(raw.span(), message)
            .with_help("set one of `path` (a file), `dir` (the newest in a folder), `url` (https://) or `s3` (s3://bucket/key or prefix/)"));
    }
    let pattern = match &source.pattern {
        Some(p) => Some(NamePattern::parse(p.get_ref()).map_err(|m| FieldError::new(p.span(), m))?),
        None => None,
    };
    let timeout = match &source.timeout {
        Some(t) => parse_duration(t)?,
        None => Duration::from_secs(60),
    };
    let location = if let Some(path) = &source.path {
        SourceLocation::File(normalize(&base.join(path.get_ref())))
    } else if let Some(dir) = &source.dir {
        SourceLocation::Newest { dir: normalize(&base.join(dir.get_ref())), pattern }
    } else if source.url.is_some() || source.url_env.is_some() || source.url_file.is_some() {
        let url = secret_source("url", &source.url, &source.url_env, &source.url_file, base)
            .map_err(|e| FieldError::new(raw.span(), e.to_string()))?
            .expect("a URL was given");
        if let (Some(inline), SecretSource::Inline(text)) = (&source.url, &url)
            && !crate::source::http::is_http(text.expose())
        {
            return Err(FieldError::new(
                inline.span(),
                format!("`{}` is not an http(s):// URL", crate::source::http::shown(text.expose())),
            ));
        }
        let token = secret_source("token", &None, &source.token_env, &source.token_file, base)
            .map_err(|e| FieldError::new(raw.span(), e.to_string()))?;
        SourceLocation::Url(HttpSpec { url, token, retries: source.retries.unwrap_or(3), timeout })
    } else if let Some(s3) = &source.s3 {
        let (bucket, key) = crate::store::parse_url(s3.get_ref()).map_err(|m| FieldError::new(s3.span(), m))?;
        SourceLocation::S3(S3Spec {
            bucket,
            key,
            region: source.region.clone(),
            endpoint: source.endpoint.clone(),
            pattern,
            access_key_env: source.access_key_env.clone(),
            secret_key_env: source.secret_key_env.clone(),
            retries: source.retries.unwrap_or(3),
        })
    } else {
        unreachable!("exactly one location was given")
    };
    Ok(location)
}

/// The WAL archive: a folder, or a prefix in the backup's S3 store.
fn wal_archive(source: &raw::RawSource, base: &Path) -> Result<Option<WalArchiveLocation>, FieldError> {
    let wal_archive = match &source.wal_archive {
        Some(archive) if archive.get_ref().starts_with("s3://") => {
            let (bucket, mut key) =
                crate::store::parse_url(archive.get_ref()).map_err(|m| FieldError::new(archive.span(), m))?;
            if !key.is_empty() && !key.ends_with('/') {
                key.push('/');
            }
            // The same store as the backup's: its endpoint, region and keys.
            Some(WalArchiveLocation::S3(S3Spec {
                bucket,
                key,
                region: source.region.clone(),
                endpoint: source.endpoint.clone(),
                pattern: None,
                access_key_env: source.access_key_env.clone(),
                secret_key_env: source.secret_key_env.clone(),
                retries: source.retries.unwrap_or(3),
            }))
        }
        Some(dir) => Some(WalArchiveLocation::Dir(normalize(&base.join(dir.get_ref())))),
        None => None,
    };
    Ok(wal_archive)
}

/// A stanza's name or a set's label: both become paths in the repository, so plain names only.
fn plain_name(value: &Option<Spanned<String>>, what: &str) -> Result<Option<String>, FieldError> {
    match value {
        Some(v)
            if v.get_ref().is_empty()
                || !v.get_ref().bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                || v.get_ref().starts_with('.') =>
        {
            Err(FieldError::new(v.span(), format!("`{}` is not a pgBackRest {what}", v.get_ref())))
        }
        Some(v) => Ok(Some(v.get_ref().clone())),
        None => Ok(None),
    }
}

/// A secret given in more than one of its keys (`url`, `url_env`, `url_file`).
#[derive(Debug, thiserror::Error)]
#[error("{} give the same {key} twice: keep one", given.join(" and "))]
pub(super) struct TwiceError {
    /// The secret's key (`url`).
    key: String,
    /// The keys given, quoted (`` `url` ``, `` `url_file` ``).
    given: Vec<String>,
}

/// A secret (`key`) given inline, by the environment variable holding it (`key_env`), or by the
/// file holding it (`key_file`, relative to the scenario): at most one of the three.
pub(super) fn secret_source(
    key: &str,
    inline: &Option<Spanned<String>>,
    env: &Option<Spanned<String>>,
    file: &Option<Spanned<String>>,
    base: &Path,
) -> Result<Option<SecretSource>, TwiceError> {
    match (inline, env, file) {
        (None, None, None) => Ok(None),
        (Some(value), None, None) => Ok(Some(SecretSource::Inline(Secret::new(value.get_ref().clone())))),
        (None, Some(var), None) => Ok(Some(SecretSource::Env(var.get_ref().clone()))),
        (None, None, Some(path)) => Ok(Some(SecretSource::File(normalize(&base.join(path.get_ref()))))),
        _ => {
            let given: Vec<String> =
                [(key.to_owned(), inline), (format!("{key}_env"), env), (format!("{key}_file"), file)]
                    .into_iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(k, _)| format!("`{k}`"))
                    .collect();
            Err(TwiceError { key: key.to_owned(), given })
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Scenario, ScenarioError};
    use crate::secret::SecretSource;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text.as_bytes(), std::path::Path::new("/scenarios/demo.toml"))
    }

    #[test]
    fn decryption_keys_name_where_each_secret_is_never_the_secret() {
        use crate::source::decrypt::KeySpec;
        let s = parse(
            "[source]\npath = \"b.sql.age\"\ndecrypt = [{ identity_file = \"keys/a.txt\" }, { identity_env = \"B\" }, { passphrase_env = \"P\" }]\n",
        )
        .unwrap();
        let [
            KeySpec::Identity { key: SecretSource::File(a), unlock: None },
            KeySpec::Identity { key: SecretSource::Env(b), unlock: None },
            KeySpec::Passphrase(SecretSource::Env(p)),
        ] = &s.source.decrypt[..]
        else {
            panic!("{:?}", s.source.decrypt)
        };
        assert!(a.ends_with("keys/a.txt") && a.is_absolute(), "{a:?}");
        assert_eq!((b.as_str(), p.as_str()), ("B", "P"));
        let two = parse("[source]\npath = \"b\"\ndecrypt = [{ identity_env = \"A\", passphrase_env = \"P\" }]\n");
        let Err(two) = two else { panic!("two secrets in one key are refused") };
        let two = format!("{two:?}");
        assert!(two.contains("exactly one of identity_file"), "{two}");
        let inline = parse("[source]\npath = \"b\"\ndecrypt = [{ identity = \"AGE-SECRET-KEY-1X\" }]\n");
        assert!(inline.is_err(), "a key written in the scenario is refused");
        let unlocked = parse(
            "[source]\npath = \"b.gpg\"\ndecrypt = [{ identity_file = \"escrow/b.asc\", key_passphrase_env = \"B_PASS\" }]\n",
        )
        .unwrap();
        let [KeySpec::Identity { unlock: Some(SecretSource::Env(var)), .. }] = &unlocked.source.decrypt[..] else {
            panic!("{:?}", unlocked.source.decrypt)
        };
        assert_eq!(var, "B_PASS");
        let lone =
            parse("[source]\npath = \"b\"\ndecrypt = [{ passphrase_env = \"P\", key_passphrase_env = \"Q\" }]\n");
        let Err(lone) = lone else { panic!("a passphrase has no passphrase of its own") };
        assert!(format!("{lone:?}").contains("unlock a key"), "{lone:?}");
    }

    #[test]
    fn tablespaces_are_named_by_oid_and_a_chains_by_member_and_oid() {
        let s = parse(
            "[source]\npath = \"chain\"\ntablespaces = { 16384 = \"ts\", \"incr2/16384\" = \"incr2-ts\", \"full.1/16390\" = \"f\" }\n",
        )
        .unwrap();
        let ts = &s.source.tablespaces;
        assert_eq!(ts.backup.get(&16384).map(|p| p.ends_with("scenarios/ts")), Some(true), "{ts:?}");
        assert!(ts.members["incr2"][&16384].ends_with("scenarios/incr2-ts"), "{ts:?}");
        assert!(ts.members["full.1"].contains_key(&16390), "{ts:?}");
        for bad in ["\"../x/16384\"", "\"incr2/x\"", "\"/16384\"", "\"a/b/16384\"", "0"] {
            let text = format!("[source]\npath = \"chain\"\ntablespaces = {{ {bad} = \"ts\" }}\n");
            let Err(error) = parse(&text) else { panic!("{bad} is refused") };
            assert!(format!("{error:?}").contains("is not a tablespace's OID"), "{bad}: {error:?}");
        }
    }

    #[test]
    fn a_repositorys_passphrases_are_given_in_one_place() {
        let both =
            parse("[source]\npath = \"repo\"\ncipher_pass_env = \"P\"\ndecrypt = [{ passphrase_env = \"Q\" }]\n");
        let Err(error) = both else { panic!("two places are refused") };
        assert!(format!("{error:?}").contains("both give the backup's keys"), "{error:?}");
        let several =
            parse("[source]\npath = \"repo\"\ndecrypt = [{ passphrase_env = \"P\" }, { passphrase_file = \"q\" }]\n");
        assert_eq!(several.unwrap().source.decrypt.len(), 2);
    }

    #[test]
    fn intended_changes_name_a_part_of_the_kind_a_value_it_can_take_and_why() {
        use crate::source::kind::{IntendedChange, KindPart};
        let s = parse(concat!(
            "[source]\npath = \"b.dump\"\nchanged = [",
            "{ what = \"major\", to = 17, reason = \"upgraded on 2026-11-01\" }, ",
            "{ what = \"format\", to = \"Plain\", reason = \"r\" }, { what = \"database\", reason = \"renamed\" }]\n"
        ))
        .unwrap();
        let change = |what, to: Option<&str>, reason: &str| IntendedChange {
            what,
            to: to.map(str::to_owned),
            reason: reason.into(),
        };
        assert_eq!(
            s.source.changed,
            [
                change(KindPart::Major, Some("17"), "upgraded on 2026-11-01"),
                change(KindPart::Format, Some("Plain"), "r"),
                change(KindPart::Database, None, "renamed"),
            ]
        );
        let refused = |text: &str, says: &str| {
            let Err(error) = parse(&format!("[source]\npath = \"b\"\nchanged = [{text}]\n")) else {
                panic!("{text} is refused")
            };
            let error = format!("{error:?}");
            assert!(error.contains(says), "{text}: {error}");
        };
        let unknown = "{ what = \"version\", reason = \"r\" }";
        refused(unknown, "`version` is no part of a backup's kind");
        refused(unknown, "`what` is one of format, content, database, major, encryption");
        refused("{ what = \"format\", to = \"zip\", reason = \"r\" }", "a format is one of custom, directory");
        refused("{ what = \"major\", to = \"latest\", reason = \"r\" }", "`latest` is no major a backup can have");
        refused("{ what = \"encryption\", to = \"none\", reason = \" \" }", "`reason` says why");
        refused("{ what = \"major\" }", "reason");
        refused("{ what = \"major\", reason = \"r\", because = \"x\" }", "because");
    }
}
