//! A follower's faults told to the scenario's webhook (`[notify]`): a message when a fault is
//! found (a failure) and one when it clears (a recovery), each once, as the console says them
//! (never at each look); with `on = "always"`, one more when the follower starts following (a
//! pass: it is back). The messages go out in order from a task of their own, so a webhook that
//! is slow or down never holds up the follower; one that cannot be told is a warning, said once
//! until a message gets through again, and changes nothing of what the follower does. The URL
//! is a secret: `notify::send` masks it, and names the webhook by its origin only.

use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::notify::{self, FaultMessage, Kind, Spec, When};
use crate::secret::Redactor;

/// Tells the scenario's webhook of the follower's faults.
#[derive(Debug)]
pub(crate) struct Teller {
    scenario: String,
    state: String,
    queue: mpsc::UnboundedSender<FaultMessage>,
}

impl Teller {
    /// A teller of the webhook `spec` names (none without `[notify]`), its sender task started
    /// (so in a Tokio runtime); with `on = "always"`, told at once that the follower follows.
    pub(crate) fn start(spec: Option<&Spec>, scenario: &str, state: &Path) -> Option<Teller> {
        let spec = spec.filter(|s| s.on != When::Never)?.clone();
        let (queue, mut asked) = mpsc::unbounded_channel::<FaultMessage>();
        tokio::spawn(async move {
            let mut warned = false;
            while let Some(message) = asked.recv().await {
                let body = notify::body(spec.format, &message);
                let what = what(&message);
                match notify::send(&spec.url, &body, &Redactor::new()).await {
                    Ok(sent) => {
                        warned = false;
                        say(format!("notified: {} ({what})", sent.to));
                    }
                    Err(e) if !warned => {
                        warned = true;
                        say(format!(
                            "warning: {} ({what}; the follower goes on as it was, and says this again only after a message gets through)",
                            crate::secret::error_text(&e)
                        ));
                    }
                    Err(_) => {}
                }
            }
        });
        let state = std::path::absolute(state).unwrap_or_else(|_| state.to_owned()).display().to_string();
        let teller = Teller { scenario: scenario.to_owned(), state, queue };
        if spec.on == When::Always {
            let text =
                "the follower restored its base backup and follows the archive; it tells each fault found and cleared";
            teller.tell(Kind::Pass, None, text.to_owned(), None);
        }
        Some(teller)
    }

    /// A fault of `kind` was found (or changed): `text` names it.
    pub(crate) fn raised(&self, kind: &str, text: String) {
        self.tell(Kind::Failure, Some(kind), text, None);
    }

    /// The fault of `kind` (`text`) that stood for `stood` cleared.
    pub(crate) fn cleared(&self, kind: &str, text: String, stood: Duration) {
        self.tell(Kind::Recovery, Some(kind), text, Some(stood));
    }

    fn tell(&self, kind: Kind, fault: Option<&str>, text: String, stood: Option<Duration>) {
        let message = FaultMessage {
            kind,
            scenario: self.scenario.clone(),
            fault: fault.map(str::to_owned),
            text,
            stood,
            state: self.state.clone(),
            at: super::rfc3339(SystemTime::now()),
        };
        // The task ends only with the runtime: nothing to do when it is gone.
        let _ = self.queue.send(message);
    }
}

/// What a message told, for the console.
fn what(message: &FaultMessage) -> String {
    let fault = message.fault.as_deref().unwrap_or_default();
    match message.kind {
        Kind::Failure => format!("the {fault} fault found"),
        Kind::Recovery => format!("the {fault} fault cleared"),
        Kind::Pass => "the follower follows".to_owned(),
    }
}

/// A line on stderr, as the follower's own lines are.
fn say(line: String) {
    eprintln!("{} pgdrill follow: {line}", super::rfc3339(SystemTime::now()));
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::secret::{Secret, SecretSource};

    /// A webhook on 127.0.0.1 that answers `200` and hands over each body it receives.
    pub(crate) fn webhook() -> (u16, std::sync::mpsc::Receiver<serde_json::Value>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut bytes = Vec::new();
                let mut buffer = [0u8; 8192];
                let body = loop {
                    let Ok(n) = stream.read(&mut buffer) else { break None };
                    if n == 0 {
                        break None;
                    }
                    bytes.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&bytes);
                    let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break serde_json::from_str(body).ok();
                    }
                };
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                if let Some(body) = body {
                    let _ = tx.send(body);
                }
            }
        });
        (port, rx)
    }

    pub(crate) fn spec(port: u16, on: When) -> Spec {
        let url = SecretSource::Inline(Secret::new(format!("http://127.0.0.1:{port}/hooks/t0ken-t0ken-t0ken")));
        Spec { url, on, ..Spec::default() }
    }

    pub(crate) fn next(rx: &std::sync::mpsc::Receiver<serde_json::Value>) -> serde_json::Value {
        rx.recv_timeout(Duration::from_secs(20)).expect("a message")
    }

    // The sender task runs while the test waits on the webhook's channel.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn always_tells_that_the_follower_follows_and_never_or_none_tells_nothing() {
        let (port, rx) = webhook();
        let _teller = Teller::start(Some(&spec(port, When::Always)), "books", Path::new("state"));
        let pass = next(&rx);
        assert!(pass["text"].as_str().unwrap().starts_with("pgdrill: the follower of `books` follows its archive"));
        assert_eq!(pass["pgdrill"]["kind"], "pass");
        assert!(Teller::start(Some(&spec(port, When::Never)), "books", Path::new("state")).is_none());
        assert!(Teller::start(None, "books", Path::new("state")).is_none());
    }
}
