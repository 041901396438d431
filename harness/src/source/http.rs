//! Backups on a web server: streamed to the drill's work folder, retried on 5xx answers and on
//! timeouts or dropped connections (resuming with a Range request where the server allows it),
//! with clear errors for 401, 403 and 404. A page saved in place of a backup is caught by the
//! verify phase, which reads what was downloaded.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, ETAG, LAST_MODIFIED, RANGE};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use super::{Backup, Progress, SourceError};
use crate::secret::{Redactor, Secret, SecretSource};

/// How an HTTP download behaves.
#[derive(Debug, Clone)]
pub(crate) struct HttpSpec {
    /// The URL: inline, or from the environment or a file when it carries a password or a
    /// presigned signature.
    pub url: SecretSource,
    /// A bearer token sent with each request.
    pub token: Option<SecretSource>,
    /// Attempts after the first.
    pub retries: u32,
    /// Longest wait for a response or for the next bytes.
    pub timeout: Duration,
}

pub(crate) fn is_http(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// Remembers every secret part of a URL: its password and its query values (a presigned URL's
/// signature, a `?token=`).
fn register_url_secrets(url: &str, redactor: &Redactor) {
    let Ok(parsed) = reqwest::Url::parse(url) else { return };
    if let Some(password) = parsed.password() {
        redactor.register(&Secret::new(password));
        redactor.register(&Secret::new(crate::secret::percent_decode(password)));
    }
    for (_, value) in parsed.query_pairs() {
        redactor.register(&Secret::new(value.into_owned()));
    }
    if let Some(query) = parsed.query() {
        for pair in query.split('&') {
            redactor.register(&Secret::new(pair.split_once('=').map_or(pair, |(_, v)| v)));
        }
    }
}

/// The URL as reports show it: no password, no query string (presigned URLs carry their
/// signature there).
pub(crate) fn shown(url: &str) -> String {
    let without_query = match url.find(['?', '#']) {
        Some(i) => format!("{}?…", &url[..i]),
        None => url.to_owned(),
    };
    crate::secret::redact_url_passwords(&without_query)
}

/// What the responses of a download said of the object.
#[derive(Default)]
struct Seen {
    modified: Option<OffsetDateTime>,
    /// Its identity (without its size), from the first response.
    identity: Option<String>,
    /// A later response gave another identity, or none.
    changed: bool,
}

impl Seen {
    fn saw(&mut self, identity: Option<String>) {
        match (&self.identity, identity) {
            (None, Some(first)) if !self.changed => self.identity = Some(first),
            (Some(first), Some(now)) if *first == now => {}
            _ => self.changed = true,
        }
    }
}

enum Attempt {
    Done,
    /// Worth another try: a 5xx, a timeout, a dropped connection.
    Retry(String),
}

/// The URL (its secrets registered), how the reports show it, its bearer token and a client.
pub(crate) struct Prepared {
    url: String,
    location: String,
    token: Option<Secret>,
    client: reqwest::Client,
}

impl Prepared {
    /// How the reports show the URL.
    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// Whether the URL names a folder (its path ends in `/`).
    pub(crate) fn is_folder(&self) -> bool {
        reqwest::Url::parse(&self.url).is_ok_and(|u| u.path().ends_with('/'))
    }

    /// The file at `relative` (`base/1/1259`) under this folder URL, with its query, its token
    /// and its client.
    pub(crate) fn under(&self, relative: &str) -> Result<Prepared, SourceError> {
        let mut url = reqwest::Url::parse(&self.url)
            .map_err(|source| SourceError::Url { location: self.location.clone(), source })?;
        url.path_segments_mut()
            .map_err(|()| SourceError::Http { location: self.location.clone(), message: "not a folder URL".into() })?
            .pop_if_empty()
            .extend(relative.split('/'));
        let url = url.to_string();
        Ok(Prepared { location: shown(&url), url, token: self.token.clone(), client: self.client.clone() })
    }
}

pub(crate) fn prepare(spec: &HttpSpec, redactor: &Redactor) -> Result<Prepared, SourceError> {
    let url = spec.url.resolve().map_err(|source| SourceError::Credential { what: "URL", source })?;
    register_url_secrets(url.expose(), redactor);
    let url = url.expose().trim().to_owned();
    let location = shown(&url);
    if !is_http(&url) {
        return Err(SourceError::Http { location, message: "not an http(s):// URL".into() });
    }
    let token = match &spec.token {
        Some(source) => {
            let token = source.resolve().map_err(|source| SourceError::Credential { what: "token", source })?;
            redactor.register(&token);
            Some(token)
        }
        None => None,
    };
    crate::tls::install();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(spec.timeout)
        .user_agent(concat!("pgdrill/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| SourceError::Client { location: location.clone(), source })?;
    Ok(Prepared { url, location, token, client })
}

/// An object's identity as the server states it: a strong ETag (a weak one, `W/`, promises no
/// byte-for-byte sameness) and its Last-Modified; `None` without a strong ETag. Its size is
/// added by [`sized`].
fn identity(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let etag = headers.get(ETAG)?.to_str().ok()?.trim();
    if etag.is_empty() || etag.starts_with("W/") {
        return None;
    }
    let modified = headers.get(LAST_MODIFIED).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
    Some(format!("ETag {etag}, Last-Modified {modified}"))
}

fn sized(identity: String, size: u64) -> String {
    format!("{identity}, {size} bytes")
}

/// What `spec.url` is now, from a HEAD request: `None` when the server gives no strong ETag
/// and length (it is downloaded then).
pub(crate) async fn probe(spec: &HttpSpec, redactor: &Redactor) -> Result<Option<super::Remote>, SourceError> {
    let prepared = prepare(spec, redactor)?;
    if prepared.is_folder() {
        // A base backup's folder: many files, no one identity.
        return Ok(None);
    }
    let Prepared { url, location, token, client } = prepared;
    let mut request = client.head(&url);
    if let Some(token) = &token {
        request = request.bearer_auth(token.expose());
    }
    let Ok(response) = request.send().await else { return Ok(None) };
    if response.status() != StatusCode::OK {
        return Ok(None);
    }
    let headers = response.headers();
    let Some(size) = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()) else {
        return Ok(None);
    };
    let modified = headers.get(LAST_MODIFIED).and_then(|v| v.to_str().ok()).and_then(httpdate);
    Ok(identity(headers).map(|identity| super::Remote { location, identity: sized(identity, size), size, modified }))
}

/// Downloads the prepared URL into `dir`, trying `retries` times more.
pub(crate) async fn download(
    prepared: &Prepared,
    retries: u32,
    dir: &Path,
    progress: Progress<'_>,
) -> Result<Backup, SourceError> {
    let name = reqwest::Url::parse(&prepared.url)
        .ok()
        .and_then(|u| u.path_segments().and_then(|mut s| s.next_back().map(str::to_owned)))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "backup".into());
    let path = dir.join(format!("download-{name}"));
    let got = get_into(prepared, retries, &path, progress).await?;
    Ok(Backup {
        location: prepared.location.clone(),
        path,
        size: got.size,
        modified: got.modified,
        previous: None,
        wal_archive: None,
        keys: Vec::new(),
        remote: got.remote,
    })
}

/// What a download wrote.
pub(crate) struct Got {
    pub size: u64,
    pub modified: Option<OffsetDateTime>,
    /// Its identity, when every response gave the same one.
    pub remote: Option<String>,
}

/// Downloads the prepared URL to `path` (created, or emptied), trying `retries` times more.
pub(crate) async fn get_into(
    prepared: &Prepared,
    retries: u32,
    path: &Path,
    progress: Progress<'_>,
) -> Result<Got, SourceError> {
    let Prepared { url, location, token, client } = prepared;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|source| SourceError::Unreadable { path: path.display().to_string(), source })?;
    let mut received: u64 = 0;
    let mut resumable = false;
    let mut seen = Seen::default();
    let mut last_error = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(attempt.min(5)))).await;
        }
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        match fetch_once(request, location, &mut file, &mut received, &mut resumable, &mut seen, progress).await? {
            Attempt::Done => {
                file.flush()
                    .await
                    .map_err(|source| SourceError::Unreadable { path: path.display().to_string(), source })?;
                return Ok(Got {
                    size: received,
                    modified: seen.modified,
                    // Every part of a resumed download came from the same object.
                    remote: seen.identity.filter(|_| !seen.changed).map(|identity| sized(identity, received)),
                });
            }
            Attempt::Retry(why) => last_error = why,
        }
    }
    Err(SourceError::GaveUp { location: location.clone(), attempts: retries + 1, last: last_error })
}

async fn fetch_once(
    mut request: reqwest::RequestBuilder,
    location: &str,
    file: &mut tokio::fs::File,
    received: &mut u64,
    resumable: &mut bool,
    seen: &mut Seen,
    progress: Progress<'_>,
) -> Result<Attempt, SourceError> {
    if *received > 0 && *resumable {
        request = request.header(RANGE, format!("bytes={received}-"));
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => return Ok(Attempt::Retry(error_text(&e))),
        Err(e) => return Err(SourceError::Http { location: location.to_owned(), message: error_text(&e) }),
    };
    let status = response.status();
    if let Some(retry) = answered(status, location, file, received).await? {
        return Ok(retry);
    }
    let headers = response.headers();
    *resumable =
        headers.get(ACCEPT_RANGES).is_some_and(|v| v.as_bytes() == b"bytes") || headers.contains_key(CONTENT_RANGE);
    if let Some(date) = headers.get(LAST_MODIFIED).and_then(|v| v.to_str().ok()) {
        seen.modified = httpdate(date);
    }
    seen.saw(identity(headers));
    let expected_total = expected_total(status, headers);
    receive(response, location, file, received, expected_total, progress).await
}

/// What the response's status means for the download: go on (`None`; a fresh copy empties the
/// file first), try again, or give up with an error.
async fn answered(
    status: StatusCode,
    location: &str,
    file: &mut tokio::fs::File,
    received: &mut u64,
) -> Result<Option<Attempt>, SourceError> {
    match status {
        StatusCode::OK => {
            // A fresh copy: start over, even if the server ignored a Range.
            *received = 0;
            file.set_len(0).await.map_err(|source| SourceError::Write { location: location.to_owned(), source })?;
            use tokio::io::AsyncSeekExt;
            file.seek(std::io::SeekFrom::Start(0)).await.ok();
            Ok(None)
        }
        StatusCode::PARTIAL_CONTENT => Ok(None),
        StatusCode::UNAUTHORIZED => Err(SourceError::Denied { location: location.to_owned(), status: 401 }),
        StatusCode::FORBIDDEN => Err(SourceError::Denied { location: location.to_owned(), status: 403 }),
        StatusCode::NOT_FOUND => Err(SourceError::NotFound { location: location.to_owned() }),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            Ok(Some(Attempt::Retry(format!("the server answered {s}"))))
        }
        s => Err(SourceError::Http { location: location.to_owned(), message: format!("the server answered {s}") }),
    }
}

/// The whole object's size, as a full response's length or a partial one's range says.
fn expected_total(status: StatusCode, headers: &reqwest::header::HeaderMap) -> Option<u64> {
    match status {
        StatusCode::PARTIAL_CONTENT => headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit('/').next())
            .and_then(|t| t.parse::<u64>().ok()),
        _ => headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()),
    }
}

/// Writes the response's body to `file`; a connection that drops, or a body shorter than
/// `expected_total`, is worth another try.
async fn receive(
    response: reqwest::Response,
    location: &str,
    file: &mut tokio::fs::File,
    received: &mut u64,
    expected_total: Option<u64>,
    progress: Progress<'_>,
) -> Result<Attempt, SourceError> {
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                file.write_all(&bytes)
                    .await
                    .map_err(|source| SourceError::Write { location: location.to_owned(), source })?;
                *received += bytes.len() as u64;
                progress(*received, expected_total);
            }
            Err(e) => {
                file.flush().await.ok();
                return Ok(Attempt::Retry(format!(
                    "the connection dropped after {received} bytes: {}",
                    error_text(&e)
                )));
            }
        }
    }
    if let Some(total) = expected_total
        && *received != total
    {
        return Ok(Attempt::Retry(format!("the server sent {received} of {total} bytes")));
    }
    Ok(Attempt::Done)
}

/// An HTTP error with its causes, URL query strings stripped.
fn error_text(e: &reqwest::Error) -> String {
    let text = crate::error::error_chain(e);
    match e.url() {
        Some(url) => text.replace(url.as_str(), &shown(url.as_str())),
        None => text,
    }
}

/// An RFC 7231 date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(text: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text, &format).ok().map(|t| t.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(shown("https://u:pw@h/b.sql.gz?X-Amz-Signature=abc"), "https://u:***@h/b.sql.gz?…");
        assert_eq!(shown("https://h/b.sql.gz"), "https://h/b.sql.gz");
    }

    #[test]
    fn http_dates() {
        assert!(httpdate("Sun, 06 Nov 1994 08:49:37 GMT").is_some());
        assert!(httpdate("yesterday").is_none());
    }

    #[test]
    fn only_a_strong_etag_the_same_in_every_response_identifies_a_download() {
        let headers = |etag: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(ETAG, etag.parse().unwrap());
            headers.insert(LAST_MODIFIED, "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
            headers
        };
        let strong = identity(&headers("\"abc\"")).unwrap();
        assert_eq!(sized(strong.clone(), 3), "ETag \"abc\", Last-Modified Sun, 06 Nov 1994 08:49:37 GMT, 3 bytes");
        assert_eq!(identity(&headers("W/\"abc\"")), None, "a weak ETag promises no sameness of bytes");
        assert_eq!(identity(&reqwest::header::HeaderMap::new()), None);
        let mut seen = Seen::default();
        seen.saw(Some(strong.clone()));
        seen.saw(Some(strong.clone()));
        assert!(!seen.changed && seen.identity.is_some());
        seen.saw(Some("ETag \"other\"".into()));
        assert!(seen.changed, "a resumed part of another object");
        let mut seen = Seen::default();
        seen.saw(Some(strong));
        seen.saw(None);
        assert!(seen.changed);
    }
}
