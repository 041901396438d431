//! The pod's agent, as pgdrill's container speaks to it: a request per connection on the Unix
//! socket `agent.sock` in the folder both containers mount, one JSON line each way.
//!
//! The agent (`pgdrill pod-server`, [`super::serve`]) runs in the server's container, the
//! sandbox, and does only what that container could do anyway: start PostgreSQL's server over a
//! data directory of the shared volume, stop it, and run one of PostgreSQL's own programs (a
//! tool over a stopped cluster). It holds no secret and no power beyond the sandbox, so a
//! backup's code that reaches its socket (it runs in the same container) gains nothing: pgdrill
//! treats whatever comes from that container as the backup's, as it treats the server's answers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

pub(crate) use super::super::error::AgentError;

/// The agent's socket, in the folder both containers mount.
pub(crate) const SOCKET: &str = "agent.sock";

/// The most of a program's output the agent sends back (each of stdout and stderr).
pub(crate) const OUTPUT_CAP: usize = 1 << 20;

/// What pgdrill asks of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Request {
    /// Start the server `name`: PostgreSQL's `postgres` with `args`, its output appended to
    /// `log`, each of its processes limited to `data_limit` bytes of data (so that one query
    /// meets PostgreSQL's own `out of memory` before the container's limit kills the server).
    /// Answered once it was started (not once it is ready).
    Start { name: String, args: Vec<String>, log: PathBuf, data_limit: Option<u64> },
    /// Stop the server `name`: a fast shutdown (clean: a checkpoint) or an immediate one, and
    /// wait until it exited.
    Stop { name: String, clean: bool },
    /// Whether the server `name` still runs.
    Status { name: String },
    /// Run one of PostgreSQL's programs (a file name in the agent's binaries) to its end.
    Run { program: String, args: Vec<String>, timeout_secs: u64 },
    /// The server container's limits, as its cgroup says (asked before any backup ran there).
    Limits,
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Response {
    Started {
        pid: u32,
    },
    /// How the server ended (`code` none: by a signal).
    Stopped {
        code: Option<i32>,
        success: bool,
    },
    Status {
        running: bool,
        code: Option<i32>,
    },
    Ran {
        code: Option<i32>,
        success: bool,
        stdout: String,
        stderr: String,
    },
    /// Bytes of memory and processes the container may use (none: unlimited, or unknown).
    Limits {
        memory: Option<u64>,
        processes: Option<u64>,
    },
    /// The request could not be done, and why.
    Refused {
        message: String,
    },
}

/// pgdrill's side: the agent of a folder.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    socket: PathBuf,
}

impl Agent {
    pub(crate) fn of(dir: &Path) -> Agent {
        Agent { socket: dir.join(SOCKET) }
    }

    /// Waits until the agent answers (its container may start after this one), at most `wait`.
    pub(crate) async fn reach(&self, wait: Duration) -> Result<(), AgentError> {
        let started = Instant::now();
        loop {
            match UnixStream::connect(&self.socket).await {
                Ok(_) => return Ok(()),
                Err(source) if started.elapsed() >= wait => {
                    return Err(AgentError::Absent { path: self.socket.clone(), waited: wait, source });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Asks, and reads the answer; a refusal is an error.
    pub(crate) async fn ask(&self, request: &Request) -> Result<Response, AgentError> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|source| AgentError::Absent {
            path: self.socket.clone(),
            waited: Duration::ZERO,
            source,
        })?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_string(request).expect("a request serializes");
        line.push('\n');
        write.write_all(line.as_bytes()).await.map_err(AgentError::Io)?;
        write.shutdown().await.map_err(AgentError::Io)?;
        let mut answer = String::new();
        BufReader::new(read).read_line(&mut answer).await.map_err(AgentError::Io)?;
        match serde_json::from_str(answer.trim_end()) {
            Ok(Response::Refused { message }) => Err(AgentError::Refused(message)),
            Ok(response) => Ok(response),
            Err(source) => Err(AgentError::Garbled { line: answer.chars().take(200).collect(), source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_are_one_json_object_each_named_by_its_operation() {
        let args = vec!["-D".into(), "/x".into()];
        let start = Request::Start { name: "d1".into(), args, log: "/l".into(), data_limit: Some(1024) };
        let text = serde_json::to_string(&start).unwrap();
        assert_eq!(text, r#"{"op":"start","name":"d1","args":["-D","/x"],"log":"/l","data_limit":1024}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), start);
        let stopped = Response::Stopped { code: Some(0), success: true };
        assert_eq!(serde_json::to_string(&stopped).unwrap(), r#"{"answer":"stopped","code":0,"success":true}"#);
        assert!(serde_json::from_str::<Request>(r#"{"op":"exec","cmd":"sh"}"#).is_err(), "no other operation");
        assert!(serde_json::from_str::<Request>(r#"{"op":"status","name":"a","extra":1}"#).is_err());
    }
}
