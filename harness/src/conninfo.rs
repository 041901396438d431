//! Connection strings as libpq reads them, for the commands that connect to a live source
//! (`baseline --dsn`, `fingerprint --dsn`): a URI (`postgresql://user@/db?host=/var/run/postgresql`,
//! a host given percent-encoded or in the query, an IPv6 address in brackets) or `key=value`
//! pairs (`host=/var/run/postgresql dbname=shop user=app`, values in single quotes with `\'`
//! and `\\` escapes). Either is read into libpq's keywords, then handed to sqlx as the URL its
//! own parser takes (sqlx's parser reads URIs only, and refuses an empty host before a path),
//! so that its defaults (`PGHOST`, `PGPORT`, `PGUSER`, the default socket folder) and its
//! `.pgpass` lookup apply as they do to any connection pgdrill makes.
//!
//! Not `tokio_postgres::Config`, though it reads both forms: it refuses `sslmode=verify-ca` and
//! `verify-full` (it knows disable, prefer and require), and `sslrootcert`, `sslcert`, `sslkey`,
//! `gssencmode`, `client_encoding`, `require_auth` and a dozen other keywords libpq takes
//! ([`PASSED_ON`], [`ACCEPTED`]), so a live source's usual string (`sslmode=verify-full
//! sslrootcert=...`) would not parse, and filtering them out first needs this reader anyway.

use sqlx::postgres::PgConnectOptions;

/// Why a connection string cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConninfoError {
    /// A URI's IPv6 host without its closing bracket.
    #[error("an IPv6 address without its `]`: `{hostspec}`")]
    UnclosedIpv6 { hostspec: String },
    /// A URI's query parameter without its value.
    #[error("missing `=` after `{key}` in the URI's query")]
    QueryWithoutValue { key: String },
    /// A `%` not followed by two hexadecimal digits.
    #[error("invalid percent-encoded token in `{text}`")]
    BadPercent { text: String },
    /// Percent-decoded bytes that are not UTF-8.
    #[error("a percent-encoded value is not UTF-8")]
    NotUtf8,
    /// A `key=value` pair without its `=`.
    #[error("missing \"=\" after \"{key}\" in connection info string")]
    KeyWithoutValue { key: String },
    /// A single-quoted value without its closing quote.
    #[error("unterminated quoted string in connection info string")]
    UnterminatedQuote,
    /// A keyword libpq does not know.
    #[error("invalid connection option \"{keyword}\"")]
    UnknownOption { keyword: String },
    /// A keyword that takes the connection's settings from elsewhere (`service`, `passfile`).
    #[error("`{keyword}` is not supported: pgdrill needs the connection's own host, user and database in the string")]
    Unsupported { keyword: String },
    /// More than one host.
    #[error("several hosts (`{hosts}`): libpq tries each in turn; pgdrill connects to one, so name the one to read")]
    SeveralHosts { hosts: String },
    /// sqlx's parser refused the URL made of the string's settings. That URL holds the
    /// password: show this error's chain through [`crate::secret::redact_url_passwords`].
    #[error("sqlx refused the connection settings")]
    Sqlx {
        #[source]
        source: sqlx::Error,
    },
}

/// libpq's keywords that say where and as whom to connect, passed on to sqlx as they are.
const PASSED_ON: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "options",
];

/// libpq's keywords about how the connection behaves (timeouts, keepalives, protocol details),
/// accepted and left to sqlx's defaults.
const ACCEPTED: &[&str] = &[
    "connect_timeout",
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "target_session_attrs",
    "load_balance_hosts",
    "gssencmode",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
    "channel_binding",
    "require_auth",
    "requirepeer",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslnegotiation",
    "sslcertmode",
    "sslpassword",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
];

/// Reads `dsn` as libpq does, into sqlx's options.
pub(crate) fn options(dsn: &str) -> Result<PgConnectOptions, ConninfoError> {
    let pairs = keywords(dsn)?;
    let url = sqlx_url(&pairs)?;
    url.parse().map_err(|source| ConninfoError::Sqlx { source })
}

/// libpq's keywords and values in `dsn`, in order (a later one replaces an earlier one).
pub(crate) fn keywords(dsn: &str) -> Result<Vec<(String, String)>, ConninfoError> {
    let trimmed = dsn.trim();
    let pairs = match ["postgresql://", "postgres://"].iter().find_map(|s| trimmed.strip_prefix(s)) {
        Some(rest) => uri(rest)?,
        None => key_values(trimmed)?,
    };
    for (key, _) in &pairs {
        match key.as_str() {
            "service" | "passfile" => return Err(ConninfoError::Unsupported { keyword: key.clone() }),
            k if PASSED_ON.contains(&k) || ACCEPTED.contains(&k) => {}
            "application_name" | "fallback_application_name" | "requiressl" | "replication" | "ssl" => {}
            _ => return Err(ConninfoError::UnknownOption { keyword: key.clone() }),
        }
    }
    Ok(pairs)
}

/// The string as it may be shown: its keywords, the password left out.
pub(crate) fn shown(dsn: &str) -> String {
    match keywords(dsn) {
        Ok(pairs) => pairs
            .iter()
            .filter(|(k, _)| k != "password" && k != "sslpassword")
            .map(|(k, v)| format!("{k}={}", quote_value(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => crate::secret::redact_url_passwords(dsn),
    }
}

/// `dsn` as `key=value` pairs for libpq's own programs (pg_dump's `--dbname`) without its
/// password, and the password apart, to go by the environment (`PGPASSWORD`), never a command line.
pub(crate) fn without_password(dsn: &str) -> Result<(String, Option<String>), ConninfoError> {
    let pairs = keywords(dsn)?;
    let password = pairs.iter().rev().find(|(k, _)| k == "password").map(|(_, v)| v.clone());
    let rest: Vec<String> =
        pairs.iter().filter(|(k, _)| k != "password").map(|(k, v)| format!("{k}={}", quote_value(v))).collect();
    Ok((rest.join(" "), password))
}

fn quote_value(value: &str) -> String {
    if !value.is_empty() && !value.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `postgresql://[user[:password]@][host][:port][,...][/dbname][?key=value&...]`, after the scheme.
fn uri(rest: &str) -> Result<Vec<(String, String)>, ConninfoError> {
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = main.split_once('/').unwrap_or((main, ""));
    let mut pairs = Vec::new();
    let hostspec = match authority.rsplit_once('@') {
        Some((userinfo, hostspec)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                pairs.push(("user".to_owned(), decode(user)?));
            }
            if let Some(password) = password {
                pairs.push(("password".to_owned(), decode(password)?));
            }
            hostspec
        }
        None => authority,
    };
    if hostspec.contains(',') {
        return Err(ConninfoError::SeveralHosts { hosts: decode(hostspec)? });
    }
    let (host, port) = match hostspec.strip_prefix('[') {
        Some(v6) => {
            let (address, after) =
                v6.split_once(']').ok_or_else(|| ConninfoError::UnclosedIpv6 { hostspec: hostspec.to_owned() })?;
            (address, after.strip_prefix(':').unwrap_or(""))
        }
        None => hostspec.split_once(':').unwrap_or((hostspec, "")),
    };
    if !host.is_empty() {
        pairs.push(("host".to_owned(), decode(host)?));
    }
    if !port.is_empty() {
        pairs.push(("port".to_owned(), decode(port)?));
    }
    if !path.is_empty() {
        pairs.push(("dbname".to_owned(), decode(path)?));
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| ConninfoError::QueryWithoutValue { key: decode(pair).unwrap_or_default() })?;
        let key = match decode(key)?.as_str() {
            // libpq's URI spelling of `requiressl`'s successor.
            "ssl" if value == "true" => ("sslmode".to_owned(), "require".to_owned()),
            other => (other.to_owned(), decode(value)?),
        };
        pairs.push(key);
    }
    Ok(pairs)
}

/// Percent-decoding as libpq does it (`+` stays a plus).
fn decode(text: &str) -> Result<String, ConninfoError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let byte = hex.ok_or_else(|| ConninfoError::BadPercent { text: text.to_owned() })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ConninfoError::NotUtf8)
}

/// `key = value key2='quoted \' value'`, libpq's conninfo syntax.
fn key_values(text: &str) -> Result<Vec<(String, String)>, ConninfoError> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(ConninfoError::KeyWithoutValue { key });
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(ConninfoError::UnterminatedQuote);
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// The URL sqlx's parser reads for `pairs`: every setting in the query, the host always named
/// (libpq's default, as sqlx finds it, when the string names none).
fn sqlx_url(pairs: &[(String, String)]) -> Result<String, ConninfoError> {
    let get = |key: &str| pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let mut query: Vec<(&str, String)> = Vec::new();
    for key in PASSED_ON {
        if let Some(value) = get(key) {
            query.push((key, value.to_owned()));
        }
    }
    if let Some(host) = get("host").filter(|h| h.contains(',')) {
        return Err(ConninfoError::SeveralHosts { hosts: host.to_owned() });
    }
    if get("host").is_none_or(str::is_empty) && get("hostaddr").is_none() {
        let defaults = PgConnectOptions::new_without_pgpass();
        let host = match defaults.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => defaults.get_host().to_owned(),
        };
        query.retain(|(k, _)| *k != "host");
        query.push(("host", host));
    }
    if let Some(name) = get("application_name").or(get("fallback_application_name")) {
        query.push(("application_name", name.to_owned()));
    }
    if get("sslmode").is_none() && matches!(get("requiressl"), Some("1")) {
        query.push(("sslmode", "require".to_owned()));
    }
    let encoded: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    Ok(format!("postgres://localhost/?{}", encoded.join("&")))
}

fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket_of(dsn: &str) -> (Option<String>, String, Option<String>) {
        let o = options(dsn).unwrap_or_else(|e| panic!("{dsn}: {e}"));
        (
            o.get_socket().map(|s| s.display().to_string()),
            o.get_username().to_owned(),
            o.get_database().map(str::to_owned),
        )
    }

    #[test]
    fn the_socket_forms_libpq_takes() {
        let want = (Some("/var/run/postgresql".to_owned()), "app".to_owned(), Some("shop".to_owned()));
        assert_eq!(socket_of("postgresql://app@/shop?host=/var/run/postgresql"), want);
        assert_eq!(socket_of("postgresql://app@%2Fvar%2Frun%2Fpostgresql/shop"), want);
        assert_eq!(socket_of("host=/var/run/postgresql dbname=shop user=app"), want);
        assert_eq!(socket_of("host = '/var/run/postgresql' dbname='shop' user=app connect_timeout=5"), want);
        assert_eq!(socket_of("postgres:///shop?user=app&host=%2Fvar%2Frun%2Fpostgresql"), want);
    }

    #[test]
    fn tcp_forms_and_quoting() {
        let o = options("postgresql://u%40x:p%20w@[::1]:6543/my%20db?sslmode=require&application_name=drill").unwrap();
        assert_eq!((o.get_host(), o.get_port(), o.get_username()), ("::1", 6543, "u@x"));
        assert_eq!(o.get_database(), Some("my db"));
        assert_eq!(o.get_application_name(), Some("drill"));
        let o = options("host=db.example port=5433 dbname='it\\'s' user=app password='a b'").unwrap();
        assert_eq!((o.get_host(), o.get_port(), o.get_database()), ("db.example", 5433, Some("it's")));
        assert!(options("postgres://u:secret@h:5432/d?sslmode=verify-full").is_ok());
    }

    #[test]
    fn what_libpq_refuses_or_pgdrill_cannot_follow() {
        assert!(matches!(
            options("host=/tmp dbnam=x").unwrap_err(),
            ConninfoError::UnknownOption { keyword } if keyword == "dbnam"
        ));
        assert_eq!(
            options("host=/tmp dbname").unwrap_err().to_string(),
            "missing \"=\" after \"dbname\" in connection info string"
        );
        assert!(matches!(options("dbname='x").unwrap_err(), ConninfoError::UnterminatedQuote));
        assert!(matches!(options("postgresql://[::1/db").unwrap_err(), ConninfoError::UnclosedIpv6 { .. }));
        assert!(matches!(options("postgresql://a,b/db").unwrap_err(), ConninfoError::SeveralHosts { .. }));
        assert!(matches!(options("service=prod").unwrap_err(), ConninfoError::Unsupported { .. }));
    }

    #[test]
    fn for_pg_dump_without_the_password() {
        let (conninfo, password) = without_password("postgresql://app:p%27w@/shop?host=/var/run/postgresql").unwrap();
        assert_eq!(conninfo, "user=app dbname=shop host=/var/run/postgresql");
        assert_eq!(password.as_deref(), Some("p'w"));
        let (conninfo, password) = without_password("host=/tmp dbname='my db'").unwrap();
        assert_eq!((conninfo.as_str(), password), ("host=/tmp dbname='my db'", None));
    }

    #[test]
    fn shown_without_the_password() {
        assert_eq!(shown("host=/tmp user=app password='s3cr et' dbname=x"), "host=/tmp user=app dbname=x");
        assert!(!shown("postgresql://app:s3cret@h/db").contains("s3cret"));
    }
}
