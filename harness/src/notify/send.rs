//! One POST of the body, with a deadline of [`TIMEOUT`] and one retry after a timeout, a refused
//! or dropped connection, a 5xx or a 429. The webhook's URL is a secret: before anything is done
//! with it, it is registered with the [`Redactor`] (whole, as parsed, its path, its long path
//! segments and its query values, which is where Slack, Discord, Mattermost and Teams keep their
//! tokens and signatures), reqwest's errors are taken without their URL and redacted anyway (by
//! the caller, with that redactor, as the error is shown), and the only form of it ever shown is
//! its origin (`https://hooks.slack.com/…`).

use std::time::Duration;

use serde_json::Value;

use crate::secret::{Redactor, Secret, SecretSource};

/// The longest one attempt may take, connection included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts in all: the first and one retry.
const ATTEMPTS: u32 = 2;

/// A notification that was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    /// The webhook's origin, the only part of its URL that may be shown.
    pub to: String,
    pub attempts: u32,
}

/// Why a notification was not sent. It names the webhook by its origin only; what the webhook
/// answered may still hold its token: redact it with the [`Redactor`] given to [`send`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The webhook's URL cannot be read.
    #[error("cannot send the notification: no webhook URL")]
    NoUrl {
        #[source]
        source: crate::secret::SecretError,
    },
    /// The webhook's URL is not an http(s):// URL (`whence` says where it was read).
    #[error("cannot send the notification: the webhook URL in {whence} is not an http(s):// URL")]
    NotHttp { whence: String },
    /// No HTTP client (its TLS configuration).
    #[error("cannot send the notification to {to}")]
    Client {
        to: String,
        #[source]
        source: reqwest::Error,
    },
    /// The last attempt got an answer that is not a success.
    #[error("cannot send the notification to {to}: the webhook answered {status}{} ({})", said(text), tries(*attempts))]
    Answered { to: String, status: reqwest::StatusCode, text: String, attempts: u32 },
    /// The last attempt got no answer within [`TIMEOUT`].
    #[error("cannot send the notification to {to}: no answer within {}s ({})", TIMEOUT.as_secs(), tries(*attempts))]
    NoAnswer { to: String, attempts: u32 },
    /// The last attempt failed otherwise (said with its causes, then how many attempts were made).
    #[error("cannot send the notification to {to}: {} ({})", crate::error::error_chain(source), tries(*attempts))]
    Request {
        to: String,
        attempts: u32,
        /// Without its URL.
        #[source]
        source: reqwest::Error,
    },
}

/// What a webhook said with its status, when it said anything.
fn said(text: &str) -> String {
    if text.is_empty() { String::new() } else { format!(": {text}") }
}

fn tries(attempts: u32) -> String {
    if attempts == 1 { "1 attempt".to_owned() } else { format!("{attempts} attempts") }
}

/// Posts `body` to the webhook whose URL `source` holds. The error names the webhook by its
/// origin only; redact it with `redactor`, which now knows every form of the URL, before it is
/// shown.
pub(crate) async fn send(source: &SecretSource, body: &Value, redactor: &Redactor) -> Result<Sent, SendError> {
    let whence = match source {
        SecretSource::Env(var) => format!("the environment variable `{var}`"),
        SecretSource::File(path) => format!("`{}`", path.display()),
        SecretSource::Inline(_) => "the scenario".to_owned(),
    };
    let url = source.resolve().map_err(|source| SendError::NoUrl { source })?;
    let url = url.expose().trim();
    register(url, redactor);
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or(SendError::NotHttp { whence })?;
    let to = format!("{}/…", parsed.origin().ascii_serialization());
    let attempts = post(parsed, body, &to).await?;
    Ok(Sent { to, attempts })
}

/// Posts to the webhook (its origin `to`, to say), retrying once: the attempts made, or why the
/// last one failed.
async fn post(url: reqwest::Url, body: &Value, to: &str) -> Result<u32, SendError> {
    crate::tls::install();
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        // A webhook answers where it is; a redirect would take the body (and a POST's meaning)
        // elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pgdrill/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SendError::Client { to: to.to_owned(), source: e.without_url() })?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let to = to.to_owned();
        let (retry, failure) = match client.post(url.clone()).json(body).send().await {
            Ok(response) if response.status().is_success() => return Ok(attempts),
            Ok(response) => {
                let status = response.status();
                let retry = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(200).collect::<String>().replace(['\n', '\r'], " ");
                (retry, SendError::Answered { to, status, text: text.trim().to_owned(), attempts })
            }
            Err(e) => {
                let retry = e.is_timeout() || e.is_connect() || e.is_request();
                let failure = if e.is_timeout() {
                    SendError::NoAnswer { to, attempts }
                } else {
                    SendError::Request { to, attempts, source: e.without_url() }
                };
                (retry, failure)
            }
        };
        if !retry || attempts >= ATTEMPTS {
            return Err(failure);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Remembers every form in which the URL's secret could show.
fn register(url: &str, redactor: &Redactor) {
    redactor.register(&Secret::new(url));
    let Ok(parsed) = reqwest::Url::parse(url) else { return };
    redactor.register(&Secret::new(parsed.as_str()));
    let path = parsed.path();
    if path.len() > 1 {
        redactor.register(&Secret::new(path));
        redactor.register(&Secret::new(crate::secret::percent_decode(path)));
    }
    // Tokens are long; `services`, `hooks` and `webhooks` are not, and stay readable in logs.
    for segment in path.split('/').filter(|s| s.len() >= 12) {
        redactor.register(&Secret::new(segment));
    }
    if let Some(password) = parsed.password() {
        redactor.register(&Secret::new(password));
    }
    if let Some(query) = parsed.query() {
        redactor.register(&Secret::new(query));
        for (_, value) in parsed.query_pairs() {
            redactor.register(&Secret::new(value.into_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_the_token_is_masked() {
        let redactor = Redactor::new();
        let token = "0123456789abcdef0123456789abcdef";
        let url = format!("https://hooks.example.com/services/T0/B0/{token}?sig=s1gnatur3&x=1");
        register(&url, &redactor);
        for text in [
            url.clone(),
            format!("error sending request for url ({url})"),
            format!("POST /services/T0/B0/{token} failed"),
            format!("token {token}"),
            "signature s1gnatur3".to_owned(),
        ] {
            let redacted = redactor.redact(&text);
            assert!(!redacted.contains(token) && !redacted.contains("s1gnatur3"), "{redacted}");
        }
        assert_eq!(redactor.redact("the services are fine"), "the services are fine");
    }

    #[tokio::test]
    async fn an_unset_variable_or_a_url_that_is_not_http_is_said_without_the_value() {
        let redactor = Redactor::new();
        let body = serde_json::json!({});
        let unset = SecretSource::Env("PGDRILL_TEST_UNSET_WEBHOOK_VARIABLE".into());
        let e = crate::error::error_chain(&send(&unset, &body, &redactor).await.unwrap_err());
        assert!(e.contains("`PGDRILL_TEST_UNSET_WEBHOOK_VARIABLE` is not set"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hook");
        std::fs::write(&file, "ftp://files.example/s3cr3t-t0ken-value\n").unwrap();
        let e = send(&SecretSource::File(file), &body, &redactor).await.unwrap_err().to_string();
        assert!(e.contains("is not an http(s):// URL") && !e.contains("s3cr3t"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_once_and_told_without_the_path() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let redactor = Redactor::new();
        let source =
            SecretSource::Inline(Secret::new(format!("http://127.0.0.1:{port}/hooks/t0ken-t0ken-t0ken-t0ken")));
        let e = send(&source, &serde_json::json!({"text": "x"}), &redactor).await.unwrap_err();
        let e = redactor.redact(&crate::error::error_chain(&e));
        assert!(e.starts_with(&format!("cannot send the notification to http://127.0.0.1:{port}/…: ")), "{e}");
        assert!(e.ends_with("(2 attempts)") && !e.contains("t0ken"), "{e}");
    }
}
