//! Running the app: a command in its own process group (so that `cargo run` and its child stop
//! together), or a container on the host's network; its output kept (the last lines, for the
//! reports); readiness by polling an HTTP path; stopping it, always.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::program::{ProgramError, group_command, signal_group};
use crate::secret::Redactor;

/// Lines of output kept.
const KEEP: usize = 200;

/// Why a command or the app's container did not run as asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProcessError {
    /// The program could not be started, or waited for, or it failed.
    #[error(transparent)]
    Program {
        #[from]
        source: ProgramError,
    },
    /// The app's image is named without a tag.
    #[error("image `{image}` has no tag")]
    NoTag { image: String },
    /// The app's container did not start, or could not be removed.
    #[error("cannot {action} the app container `{image}`")]
    Container {
        action: &'static str,
        image: String,
        #[source]
        source: Box<testcontainers::TestcontainersError>,
    },
    /// The app exited before it answered on its ready path.
    #[error("the app exited ({status}) before it was ready")]
    Exited { status: String },
    /// The app did not answer on its ready path in time.
    #[error("the app was not ready within {} ({last})", humantime::format_duration(*limit))]
    NotReady { limit: Duration, last: LastTry },
    /// The app listens beyond loopback.
    #[error(
        "the app also listens on {address}, beyond loopback: a restored copy of production data must not be reachable from the network (bind it to 127.0.0.1)"
    )]
    Exposed { address: String },
}

/// How the last try of the app's ready path went: said inside [`ProcessError::NotReady`]'s
/// message, in parentheses.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LastTry {
    /// The app answered, with a status that is not a success.
    #[error("it answered {status}")]
    Answered { status: reqwest::StatusCode },
    /// Nothing listens on the app's port yet.
    #[error("connection refused")]
    Refused,
    /// The request failed otherwise.
    #[error("{error}")]
    Failed { error: reqwest::Error },
}

type Output = Arc<Mutex<VecDeque<String>>>;

/// A running app.
pub(crate) struct AppHandle {
    kind: Kind,
    output: Output,
    pub launched: String,
}

enum Kind {
    Process(tokio::process::Child),
    Container(Box<ContainerAsync<GenericImage>>),
    Stopped,
}

fn keep(output: &Output, line: String) {
    if let Ok(mut lines) = output.lock() {
        if lines.len() == KEEP {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

/// Keeps the lines an app writes to one of its outputs.
async fn keep_lines(stream: impl tokio::io::AsyncRead + Unpin, output: Output) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        keep(&output, line);
    }
}

impl AppHandle {
    /// Starts `argv` in `workdir` with `env` added, in a process group of its own.
    pub(crate) fn spawn(argv: &[String], workdir: &Path, env: &[(String, String)]) -> Result<AppHandle, ProcessError> {
        let mut child = group_command(argv, workdir, env).spawn().map_err(|source| ProgramError::Spawn {
            verb: "start",
            command: argv.join(" "),
            source,
        })?;
        let output: Output = Arc::default();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(keep_lines(stdout, output.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(keep_lines(stderr, output.clone()));
        }
        Ok(AppHandle { kind: Kind::Process(child), output, launched: argv.join(" ") })
    }

    /// Starts a container of `image` on the host's network (it reaches the target on loopback
    /// and listens on the app port there), labelled with the drill's id for teardown.
    pub(crate) async fn container(
        image: &str,
        args: &[String],
        env: &[(String, String)],
        drill_id: &str,
    ) -> Result<AppHandle, ProcessError> {
        let (name, tag) = image.rsplit_once(':').ok_or_else(|| ProcessError::NoTag { image: image.to_owned() })?;
        let mut request = GenericImage::new(name, tag)
            .with_wait_for(WaitFor::Nothing)
            .with_network("host")
            .with_label(crate::provision::docker::DRILL_LABEL, drill_id)
            .with_label(crate::provision::docker::OWNER_LABEL, crate::provision::owner::owner())
            .with_label("org.pgdrill.role", "app");
        for (k, v) in env {
            request = request.with_env_var(k, v);
        }
        if !args.is_empty() {
            request = request.with_cmd(args.to_vec());
        }
        let container = request.start().await.map_err(|source| ProcessError::Container {
            action: "start",
            image: image.to_owned(),
            source: Box::new(source),
        })?;
        Ok(AppHandle { kind: Kind::Container(Box::new(container)), output: Arc::default(), launched: image.to_owned() })
    }

    /// Polls `url` until it answers 2xx, the app exits, or `timeout` passes.
    pub(crate) async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        url: &str,
        timeout: Duration,
    ) -> Result<Duration, ProcessError> {
        let started = Instant::now();
        loop {
            let last = match client.get(url).timeout(Duration::from_secs(2)).send().await {
                Ok(r) if r.status().is_success() => return Ok(started.elapsed()),
                Ok(r) => LastTry::Answered { status: r.status() },
                Err(e) if e.is_connect() => LastTry::Refused,
                Err(error) => LastTry::Failed { error },
            };
            if let Some(status) = self.exited().await {
                return Err(ProcessError::Exited { status });
            }
            if started.elapsed() >= timeout {
                return Err(ProcessError::NotReady { limit: timeout, last });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn exited(&mut self) -> Option<String> {
        match &mut self.kind {
            Kind::Process(child) => child.try_wait().ok().flatten().map(|s| s.to_string()),
            Kind::Container(c) => (!c.is_running().await.unwrap_or(true)).then(|| "container stopped".to_owned()),
            Kind::Stopped => Some("stopped".into()),
        }
    }

    /// The last lines the app wrote, redacted.
    pub(crate) async fn output_tail(&self, lines: usize, redactor: &Redactor) -> Vec<String> {
        if let Kind::Container(c) = &self.kind {
            let mut text = String::from_utf8_lossy(&c.stdout_to_vec().await.unwrap_or_default()).into_owned();
            text.push_str(&String::from_utf8_lossy(&c.stderr_to_vec().await.unwrap_or_default()));
            for line in text.lines() {
                keep(&self.output, line.to_owned());
            }
        }
        let kept = self.output.lock().map(|l| l.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
        kept[kept.len().saturating_sub(lines)..].iter().map(|l| redactor.redact(l)).collect()
    }

    /// Stops the app: SIGTERM to its process group, SIGKILL after 5 s; or removes its container.
    pub(crate) async fn stop(&mut self) -> Result<String, ProcessError> {
        match std::mem::replace(&mut self.kind, Kind::Stopped) {
            Kind::Process(mut child) => {
                let Some(pid) = child.id() else { return Ok("the app had already exited".into()) };
                signal_group(pid, "TERM");
                if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                    signal_group(pid, "KILL");
                    let _ = child.wait().await;
                }
                // Whatever else is left in its group (the app under `cargo run`).
                signal_group(pid, "KILL");
                Ok("stopped the app".into())
            }
            Kind::Container(container) => {
                let image = self.launched.clone();
                container.rm().await.map_err(|source| ProcessError::Container {
                    action: "remove",
                    image,
                    source: Box::new(source),
                })?;
                Ok("removed the app container".into())
            }
            Kind::Stopped => Ok("the app was stopped".into()),
        }
    }
}

/// The address beyond loopback on which something listens on `port` (the app serves a restored
/// copy of production data, which must not be reachable from the network): read from the
/// kernel's tables of listening sockets, so that nothing is sent anywhere to find out.
pub(crate) fn reachable_beyond_loopback(port: u16) -> Option<std::net::SocketAddr> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .find_map(|text| exposed_listener(&text, port))
}

/// In a `/proc/net/tcp{,6}` table, a socket listening on `port` at an address that is not
/// loopback (the wildcard included).
fn exposed_listener(table: &str, port: u16) -> Option<std::net::SocketAddr> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (local, _remote, state) = (fields.next()?, fields.next()?, fields.next()?);
        let (address, local_port) = local.split_once(':')?;
        // State 0A is LISTEN; each 32-bit word of the address is printed in the host's order.
        if state != "0A" || u16::from_str_radix(local_port, 16).ok()? != port {
            return None;
        }
        let mut bytes = Vec::with_capacity(16);
        for word in address.as_bytes().chunks(8) {
            bytes.extend(u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?.to_ne_bytes());
        }
        let ip = match bytes.len() {
            4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
            16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_canonical(),
            _ => return None,
        };
        (!ip.is_loopback()).then_some(std::net::SocketAddr::new(ip, port))
    })
}

#[cfg(test)]
mod tests {
    use super::exposed_listener;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F92 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A
   1: 00000000000000000000000000000000:1F93 00000000000000000000000000000000:0000 0A
   2: 0000000000000000FFFF00000100007F:1F94 00000000000000000000000000000000:0000 0A
";

    #[test]
    fn only_listeners_beyond_loopback_count() {
        assert_eq!(exposed_listener(TCP, 0x1F90), None, "127.0.0.1 is loopback");
        assert_eq!(exposed_listener(TCP, 0x1F91).map(|a| a.to_string()), Some("0.0.0.0:8081".into()));
        assert_eq!(exposed_listener(TCP, 0x1F92), None, "an established connection is not a listener");
        assert_eq!(exposed_listener(TCP6, 0x1F90), None, "::1 is loopback");
        assert_eq!(exposed_listener(TCP6, 0x1F93).map(|a| a.to_string()), Some("[::]:8083".into()));
        assert_eq!(exposed_listener(TCP6, 0x1F94), None, "::ffff:127.0.0.1 is loopback");
        assert_eq!(exposed_listener(TCP, 9), None);
    }
}
