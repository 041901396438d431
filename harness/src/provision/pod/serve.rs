//! `pgdrill pod-server`: the agent in the server's container of a pod. It listens on
//! `agent.sock` in the folder both containers mount and starts, stops and watches PostgreSQL's
//! servers there as pgdrill's container asks ([`super::agent`]); on SIGTERM (the pod ending) it
//! stops them and exits. It runs nothing but PostgreSQL's own programs, from its image's
//! binaries, with an empty environment but `LANG`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::Child;
use tokio::sync::Mutex;

use super::agent::{OUTPUT_CAP, Request, Response, SOCKET};

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error("no PostgreSQL binaries found (looked for /usr/lib/postgresql/*/bin/postgres; give --bin-dir)")]
    NoBinaries,
    #[error("cannot listen on `{}`", path.display())]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The servers the agent started, by name.
type Servers = Arc<Mutex<HashMap<String, Child>>>;

/// Serves until SIGTERM or SIGINT, then stops every server it started.
pub(crate) async fn serve(dir: &Path, bin_dir: Option<PathBuf>) -> Result<(), ServeError> {
    let bin_dir = bin_dir.or_else(find_bin_dir).ok_or(ServeError::NoBinaries)?;
    let path = dir.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|source| ServeError::Listen { path: path.clone(), source })?;
    eprintln!("pgdrill pod-server: listening on {} with {}", path.display(), bin_dir.display());
    let servers: Servers = Arc::default();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| ServeError::Listen { path: path.clone(), source })?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (servers, bin_dir) = (servers.clone(), bin_dir.clone());
                tokio::spawn(async move { answer(stream, &servers, &bin_dir).await });
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let names: Vec<String> = servers.lock().await.keys().cloned().collect();
    for name in names {
        stop(&servers, &name, true).await;
    }
    let _ = std::fs::remove_file(&path);
    eprintln!("pgdrill pod-server: stopped");
    Ok(())
}

/// Debian's binaries of the one major the image carries.
fn find_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("postgres").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// Reads one request, does it, writes the answer.
async fn answer(stream: UnixStream, servers: &Servers, bin_dir: &Path) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // A request is small: a line of at most 1 MiB.
    let read = BufReader::new(read.take(1 << 20)).read_line(&mut line).await;
    let response = match read.map(|_| serde_json::from_str::<Request>(line.trim_end())) {
        Ok(Ok(request)) => handle(request, servers, bin_dir).await,
        Ok(Err(e)) => Response::Refused { message: format!("not a request: {e}") },
        Err(e) => Response::Refused { message: format!("cannot read the request: {e}") },
    };
    let mut text = serde_json::to_string(&response).expect("a response serializes");
    text.push('\n');
    let _ = write.write_all(text.as_bytes()).await;
}

async fn handle(request: Request, servers: &Servers, bin_dir: &Path) -> Response {
    match request {
        Request::Start { name, args, log, data_limit } => start(servers, bin_dir, name, &args, &log, data_limit).await,
        Request::Stop { name, clean } => stop(servers, &name, clean).await,
        Request::Status { name } => match servers.lock().await.get_mut(&name) {
            Some(child) => match child.try_wait() {
                Ok(None) => Response::Status { running: true, code: None },
                Ok(Some(status)) => Response::Status { running: false, code: status.code() },
                Err(e) => Response::Refused { message: format!("cannot look at `{name}`: {e}") },
            },
            None => Response::Status { running: false, code: None },
        },
        Request::Run { program, args, timeout_secs } => run(bin_dir, &program, &args, timeout_secs).await,
        Request::Limits => Response::Limits {
            memory: cgroup_limit(&["memory.max", "memory/memory.limit_in_bytes"]),
            processes: cgroup_limit(&["pids.max", "pids/pids.max"]),
        },
    }
}

/// A limit of this container's cgroup: the first of `files` (cgroup v2's name, then v1's) that
/// holds a number; none when unlimited (`max`, or v1's page-rounded `i64::MAX`).
fn cgroup_limit(files: &[&str]) -> Option<u64> {
    let read = |file: &&str| std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(file)).ok();
    let value = files.iter().find_map(read)?.trim().parse::<u64>().ok()?;
    (value < 1 << 60).then_some(value)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// PostgreSQL's program `program` of `bin_dir`, if it is one (a plain file name there).
fn program_path(bin_dir: &Path, program: &str) -> Option<PathBuf> {
    let plain = !program.is_empty() && program.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    Some(bin_dir.join(program)).filter(|path| plain && path.is_file())
}

/// A command with nothing of the agent's environment but `LANG`.
fn command(program: &Path, args: &[String]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command.args(args).env_clear().stdin(Stdio::null()).kill_on_drop(true);
    command.env("LANG", std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()));
    command
}

async fn start(
    servers: &Servers,
    bin_dir: &Path,
    name: String,
    args: &[String],
    log: &Path,
    data_limit: Option<u64>,
) -> Response {
    if !valid_name(&name) {
        return Response::Refused { message: format!("`{name}` is not a server's name") };
    }
    let mut servers = servers.lock().await;
    if let Some(child) = servers.get_mut(&name)
        && matches!(child.try_wait(), Ok(None))
    {
        return Response::Refused { message: format!("`{name}` is running already") };
    }
    let log = match std::fs::OpenOptions::new().create(true).append(true).open(log) {
        Ok(log) => log,
        Err(e) => return Response::Refused { message: format!("cannot open the log `{}`: {e}", log.display()) },
    };
    let Ok(err) = log.try_clone() else { return Response::Refused { message: "cannot share the log".into() } };
    let mut postgres = command(&bin_dir.join("postgres"), args);
    postgres.stdout(log).stderr(err);
    if let Some(limit) = data_limit {
        let limit = rustix::process::Rlimit { current: Some(limit), maximum: Some(limit) };
        // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
        unsafe {
            postgres.pre_exec(move || Ok(rustix::process::setrlimit(rustix::process::Resource::Data, limit)?));
        }
    }
    match postgres.spawn() {
        Ok(child) => {
            let pid = child.id().unwrap_or(0);
            servers.insert(name, child);
            Response::Started { pid }
        }
        Err(e) => Response::Refused { message: format!("cannot start postgres: {e}") },
    }
}

/// Stops a server: SIGINT (a fast shutdown, clean) or SIGQUIT (immediate), SIGKILL after a
/// minute.
async fn stop(servers: &Servers, name: &str, clean: bool) -> Response {
    let Some(mut child) = servers.lock().await.remove(name) else {
        return Response::Refused { message: format!("no server `{name}`") };
    };
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()).and_then(rustix::process::Pid::from_raw) {
        use rustix::process::Signal;
        let _ = rustix::process::kill_process(pid, if clean { Signal::INT } else { Signal::QUIT });
    }
    let status = match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
        Ok(Ok(status)) => status,
        _ => {
            let _ = child.kill().await;
            return Response::Stopped { code: None, success: false };
        }
    };
    Response::Stopped { code: status.code(), success: status.success() }
}

async fn run(bin_dir: &Path, program: &str, args: &[String], timeout_secs: u64) -> Response {
    let Some(path) = program_path(bin_dir, program) else {
        return Response::Refused { message: format!("`{program}` is not one of PostgreSQL's programs here") };
    };
    let mut command = command(&path, args);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let ran = tokio::time::timeout(Duration::from_secs(timeout_secs.max(1)), command.output()).await;
    let cap = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes[..bytes.len().min(OUTPUT_CAP)]).into_owned();
    match ran {
        Ok(Ok(out)) => Response::Ran {
            code: out.status.code(),
            success: out.status.success(),
            stdout: cap(out.stdout),
            stderr: cap(out.stderr),
        },
        Ok(Err(e)) => Response::Refused { message: format!("cannot run `{program}`: {e}") },
        Err(_) => Response::Refused { message: format!("`{program}` did not end within {timeout_secs} s") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_postgresqls_own_programs_run_and_servers_have_plain_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pg_checksums"), "").unwrap();
        assert!(program_path(dir.path(), "pg_checksums").is_some());
        assert!(program_path(dir.path(), "../../bin/sh").is_none(), "no path");
        assert!(program_path(dir.path(), "/bin/sh").is_none());
        assert!(program_path(dir.path(), "pg_dump").is_none(), "not there");
        assert!(valid_name("pgdrill-1a2b_c"));
        assert!(!valid_name("../x") && !valid_name(""));
    }

    /// The agent as pgdrill's container meets it: a program run, one refused, a request it
    /// cannot read, a server it does not know.
    #[tokio::test]
    async fn the_agent_answers_on_its_socket() {
        let (dir, bin) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::os::unix::fs::symlink("/bin/echo", bin.path().join("pg_controldata")).unwrap();
        let served = tokio::spawn({
            let (dir, bin) = (dir.path().to_owned(), bin.path().to_owned());
            async move { serve(&dir, Some(bin)).await }
        });
        let agent = super::super::agent::Agent::of(dir.path());
        agent.reach(Duration::from_secs(10)).await.unwrap();
        let ran =
            Request::Run { program: "pg_controldata".into(), args: vec!["-D".into(), "x".into()], timeout_secs: 5 };
        assert_eq!(
            agent.ask(&ran).await.unwrap(),
            Response::Ran { code: Some(0), success: true, stdout: "-D x\n".into(), stderr: String::new() }
        );
        let sh = Request::Run { program: "sh".into(), args: vec![], timeout_secs: 5 };
        assert!(agent.ask(&sh).await.unwrap_err().to_string().contains("is not one of PostgreSQL's programs"));
        let unknown = Request::Stop { name: "nobody".into(), clean: true };
        assert_eq!(agent.ask(&unknown).await.unwrap_err().to_string(), "the agent refused: no server `nobody`");
        assert_eq!(
            agent.ask(&Request::Status { name: "nobody".into() }).await.unwrap(),
            Response::Status { running: false, code: None }
        );
        let mut raw = UnixStream::connect(dir.path().join(SOCKET)).await.unwrap();
        raw.write_all(b"{\"op\":\"exec\"}\n").await.unwrap();
        let mut answer = String::new();
        raw.read_to_string(&mut answer).await.unwrap();
        assert!(answer.contains("not a request"), "{answer}");
        served.abort();
    }
}
