//! Waiting for a server that is starting: real connections, tried until one succeeds, the
//! server is seen to have exited, or time is up. Every target's start (and start again after an
//! offline tool) waits the same way; each says how to see its server exit and reads its own logs.

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::TargetError;
use crate::secret::Redactor;

/// Why a server never answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotReady {
    /// Its process (or container) ended first.
    Exited,
    /// Time was up; the last connection attempt's error, redacted.
    TimedOut { last_error: String },
}

impl NotReady {
    /// The target's error, with the last lines the server logged (`logs`, redacted).
    pub(crate) fn into_error(self, timeout: Duration, logs: String) -> TargetError {
        match self {
            NotReady::Exited => TargetError::Exited { logs },
            NotReady::TimedOut { last_error } => TargetError::NotReady { timeout, last_error, logs },
        }
    }
}

/// Tries a connection with `options` every 25 ms until one succeeds (closed at once), `exited`
/// says the server is gone, or `timeout` has passed.
pub(crate) async fn until_ready<F, Fut>(
    options: &PgConnectOptions,
    timeout: Duration,
    redactor: &Redactor,
    mut exited: F,
) -> Result<(), NotReady>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        let last_error = match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(options)).await {
            Ok(Ok(conn)) => {
                conn.close().await.ok();
                return Ok(());
            }
            Ok(Err(e)) => redactor.redact(&e.to_string()),
            Err(_) => "connection attempt timed out".into(),
        };
        if exited().await {
            return Err(NotReady::Exited);
        }
        if started.elapsed() >= timeout {
            return Err(NotReady::TimedOut { last_error });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing listens on the socket: the wait ends when the server is said to have exited, or
    /// with the connection's own error when time is up.
    #[tokio::test]
    async fn a_server_that_never_answers_is_exited_or_timed_out() {
        let dir = tempfile::tempdir().unwrap();
        let options = PgConnectOptions::new_without_pgpass().socket(dir.path()).username("postgres");
        let redactor = Redactor::default();
        let mut asked = 0;
        let exited = until_ready(&options, Duration::from_secs(60), &redactor, || {
            asked += 1;
            std::future::ready(asked == 3)
        })
        .await;
        assert_eq!((exited, asked), (Err(NotReady::Exited), 3));
        let timed_out = until_ready(&options, Duration::ZERO, &redactor, || std::future::ready(false)).await;
        let Err(NotReady::TimedOut { last_error }) = timed_out else { panic!("{timed_out:?}") };
        assert!(last_error.contains("No such file or directory"), "{last_error}");
    }
}
