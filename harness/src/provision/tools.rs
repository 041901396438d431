//! The target's own PostgreSQL client programs (pg_restore), so that an archive is read by the
//! version that matches the server: inside the target container, or from a folder of binaries on
//! this machine ([`find_bin_dir`] finds them). Output streams back chunk by chunk; only a tail
//! of stderr is kept.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bytes::Bytes;
use futures_util::StreamExt;
use testcontainers::bollard::Docker;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::TargetError;
use crate::secret::{Redactor, Secret};
use crate::tree::Ids;

/// Where the backup is mounted in a target container.
pub(crate) const CONTAINER_BACKUP_DIR: &str = "/pgdrill/backup";

/// PostgreSQL's programs on this machine: `pg_config --bindir`, else the newest
/// /usr/lib/postgresql/<major>/bin.
pub(crate) fn find_bin_dir() -> Option<PathBuf> {
    if let Ok(out) = std::process::Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("pg_restore").is_file() && dir.join("initdb").is_file() {
            return Some(dir);
        }
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("pg_restore").is_file())
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin)
}

/// How the target's client programs run.
#[derive(Clone)]
pub(crate) enum Tools {
    /// Inside the target container, as its unprivileged user, over its socket as `postgres`.
    Container {
        docker: Docker,
        container: String,
        /// A host path mounted read-only into the container, and where.
        mount: Option<(PathBuf, String)>,
    },
    /// Programs of a folder on this machine, connecting with libpq's environment variables.
    Local {
        bin_dir: PathBuf,
        host: String,
        port: u16,
        user: String,
        /// None over a socket that trusts pgdrill.
        password: Option<Secret>,
        ssl_mode: String,
        /// Run as this uid/gid (when pgdrill runs as root).
        run_as: Option<Ids>,
    },
    /// No suitable programs: archives cannot be restored on this target.
    Unavailable { reason: String },
}

/// How a program ended.
#[derive(Debug, Clone)]
pub(crate) struct ToolOutput {
    pub status: i64,
    /// The last lines it wrote to stderr (redacted).
    pub stderr: String,
}

impl ToolOutput {
    pub(crate) fn success(&self) -> bool {
        self.status == 0
    }
}

impl Tools {
    /// The path under which the program sees a backup at `host`.
    pub(crate) fn path_of(&self, host: &Path) -> Result<String, TargetError> {
        match self {
            Tools::Container { mount: Some((mounted, inside)), .. } if mounted == host => Ok(inside.clone()),
            Tools::Container { .. } => Err(TargetError::Tool {
                message: format!("`{}` is not mounted in the target container", host.display()),
            }),
            Tools::Local { .. } => Ok(host.display().to_string()),
            Tools::Unavailable { reason } => Err(TargetError::Tool { message: reason.clone() }),
        }
    }

    /// `-d`/`-h`/`-U` arguments that connect to `database` (the password, when any, travels in
    /// the environment, never on a command line).
    pub(crate) fn connection_args(&self, database: &str) -> Vec<String> {
        match self {
            Tools::Container { .. } => {
                ["-h", "/var/run/postgresql", "-U", "postgres", "-d", database].map(String::from).to_vec()
            }
            Tools::Local { .. } | Tools::Unavailable { .. } => vec!["-d".into(), database.into()],
        }
    }

    /// Runs `program args`, sending stdout to `stdout` (or discarding it).
    pub(crate) async fn run(
        &self,
        program: &str,
        args: &[String],
        stdout: Option<mpsc::Sender<Bytes>>,
        redactor: &Redactor,
    ) -> Result<ToolOutput, TargetError> {
        self.run_fed(program, args, None, stdout, redactor).await
    }

    /// Runs `program args` with what `stdin` carries on its stdin (an encrypted archive,
    /// decrypted by pgdrill as pg_restore reads it), sending stdout to `stdout`.
    pub(crate) async fn run_fed(
        &self,
        program: &str,
        args: &[String],
        stdin: Option<Input>,
        stdout: Option<mpsc::Sender<Bytes>>,
        redactor: &Redactor,
    ) -> Result<ToolOutput, TargetError> {
        match self {
            Tools::Container { docker, container, .. } => {
                let invocation = Invocation { program, args, env: &[] };
                exec(docker, container, invocation, stdin, stdout, redactor).await
            }
            Tools::Unavailable { reason } => Err(TargetError::Tool { message: reason.clone() }),
            Tools::Local { bin_dir, host, port, user, password, ssl_mode, run_as } => {
                let mut command = tokio::process::Command::new(bin_dir.join(program));
                command
                    .args(args)
                    .env("PGHOST", host)
                    .env("PGPORT", port.to_string())
                    .env("PGUSER", user)
                    .env("PGSSLMODE", ssl_mode);
                if let Some(password) = password {
                    command.env("PGPASSWORD", password.expose());
                }
                if let Some(Ids { uid, gid }) = run_as {
                    command.uid(*uid).gid(*gid);
                }
                run_process(command, &bin_dir.join(program), stdin, stdout, redactor).await
            }
        }
    }
}

/// What a program reads on its stdin, chunk by chunk; closed at the end.
pub(crate) type Input = mpsc::Receiver<Bytes>;

/// Writes what `input` carries into `sink`, then closes it (the program's end of input). Abort
/// the task once the program has ended: what is left of its input is not read.
fn feed(
    mut input: Input,
    mut sink: impl tokio::io::AsyncWrite + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(chunk) = input.recv().await {
            if sink.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = sink.shutdown().await;
    })
}

/// Runs `command` (the program `shown`), `stdin` on its stdin, streaming its stdout to
/// `stdout`; how it ended, with the last lines of its stderr.
pub(super) async fn run_process(
    mut command: tokio::process::Command,
    shown: &Path,
    stdin: Option<Input>,
    stdout: Option<mpsc::Sender<Bytes>>,
    redactor: &Redactor,
) -> Result<ToolOutput, TargetError> {
    let input = if stdin.is_some() { Stdio::piped() } else { Stdio::null() };
    command.stdin(input).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().map_err(TargetError::io(format!("cannot run `{}`", shown.display())))?;
    let feeding = match (stdin, child.stdin.take()) {
        (Some(stdin), Some(sink)) => Some(feed(stdin, sink)),
        _ => None,
    };
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let stderr_task = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = err.read_to_end(&mut text).await;
        text
    });
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = out.read(&mut buf).await.map_err(|source| TargetError::Io {
            action: format!("cannot read what `{}` wrote", shown.display()),
            source,
        })?;
        if n == 0 {
            break;
        }
        if let Some(tx) = &stdout
            && tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err()
        {
            break;
        }
    }
    drop(out);
    let status = child.wait().await.map_err(TargetError::io(format!("cannot wait for `{}`", shown.display())))?;
    feeding.inspect(tokio::task::JoinHandle::abort);
    let stderr = stderr_task.await.unwrap_or_default();
    Ok(ToolOutput { status: status.code().map(i64::from).unwrap_or(-1), stderr: tail(&stderr, redactor) })
}

/// A program to run: its name, its arguments and its environment (`NAME=value`, given to it
/// alone: never on a command line, nor in a container's configuration).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Invocation<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a [String],
}

/// Runs `invocation` in `container`, `stdin` on its stdin, streaming its stdout to `stdout`.
pub(super) async fn exec(
    docker: &Docker,
    container: &str,
    invocation: Invocation<'_>,
    stdin: Option<Input>,
    stdout: Option<mpsc::Sender<Bytes>>,
    redactor: &Redactor,
) -> Result<ToolOutput, TargetError> {
    let Invocation { program, args, env } = invocation;
    let docker_err = |source| TargetError::Docker { action: "run a program in the target container", source };
    let mut cmd = vec![program.to_owned()];
    cmd.extend(args.iter().cloned());
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd),
                env: (!env.is_empty()).then(|| env.to_vec()),
                attach_stdin: Some(stdin.is_some()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(docker_err)?;
    let mut stderr = Vec::new();
    if let StartExecResults::Attached { mut output, input } =
        docker.start_exec(&exec.id, None).await.map_err(docker_err)?
    {
        // The engine takes a program's input even once it has ended (a program that reads only
        // the head of its input, as `pg_restore --section=pre-data` does): the feeding stops
        // when its output ends, or the rest of a large input would go through the engine.
        let feeding = stdin.map(|stdin| feed(stdin, input));
        let mut open = true;
        while let Some(chunk) = output.next().await {
            match chunk.map_err(docker_err)? {
                LogOutput::StdOut { message } => {
                    if let (true, Some(tx)) = (open, &stdout) {
                        open = tx.send(message).await.is_ok();
                    }
                }
                LogOutput::StdErr { message } => {
                    stderr.extend_from_slice(&message);
                    if stderr.len() > 64 * 1024 {
                        stderr.drain(..stderr.len() - 32 * 1024);
                    }
                }
                _ => {}
            }
        }
        feeding.inspect(tokio::task::JoinHandle::abort);
    }
    let inspect = docker.inspect_exec(&exec.id).await.map_err(docker_err)?;
    Ok(ToolOutput { status: inspect.exit_code.unwrap_or(-1), stderr: tail(&stderr, redactor) })
}

/// A channel for a program's stdout and the task collecting what it carries, up to 4 MiB (a
/// report longer than that is cut; its judges read its first findings).
pub(crate) fn stdout_collector() -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<String>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let collect = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            if out.len() < 4 << 20 {
                out.extend_from_slice(&chunk);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    (tx, collect)
}

/// The last 20 lines of a program's stderr, redacted.
fn tail(bytes: &[u8], redactor: &Redactor) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    redactor.redact(&lines[lines.len().saturating_sub(20)..].join("\n"))
}

/// Reads what a channel of chunks carries, for the blocking splitter.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    pub(crate) fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChannelReader { rx, current: Bytes::new() }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::secret::MASK;

    /// A container's tools, with a client of an engine that is never reached (the client
    /// connects only when used; its socket need only exist).
    fn container(mount: Option<(PathBuf, String)>) -> Tools {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        std::fs::write(&socket, b"").unwrap();
        let api = testcontainers::bollard::API_DEFAULT_VERSION;
        let docker = Docker::connect_with_unix(&socket.display().to_string(), 5, api).unwrap();
        Tools::Container { docker, container: "c0ffee".into(), mount }
    }

    fn local(bin_dir: &Path, password: Option<&str>) -> Tools {
        Tools::Local {
            bin_dir: bin_dir.to_owned(),
            host: "/tmp/pgdrill-d1-target/socket".into(),
            port: 5432,
            user: "postgres".into(),
            password: password.map(Secret::new),
            ssl_mode: "disable".into(),
            run_as: None,
        }
    }

    #[test]
    fn a_backup_is_seen_where_the_target_mounted_it() {
        let host = Path::new("/srv/backups/orders.dump");
        let mounted = container(Some((host.to_owned(), "/pgdrill/backup/orders.dump".into())));
        assert_eq!(mounted.path_of(host).unwrap(), "/pgdrill/backup/orders.dump");
        assert_eq!(
            mounted.path_of(Path::new("/srv/backups/other.dump")).unwrap_err().to_string(),
            "`/srv/backups/other.dump` is not mounted in the target container"
        );
        assert!(container(None).path_of(host).is_err());
        assert_eq!(
            local(Path::new("/usr/lib/postgresql/17/bin"), None).path_of(host).unwrap(),
            host.display().to_string()
        );
        let none = Tools::Unavailable { reason: "no pg_restore of PostgreSQL 17 on this machine".into() };
        assert_eq!(none.path_of(host).unwrap_err().to_string(), "no pg_restore of PostgreSQL 17 on this machine");
    }

    #[test]
    fn a_program_connects_by_arguments_and_never_carries_a_password_in_them() {
        assert_eq!(
            container(None).connection_args("orders"),
            ["-h", "/var/run/postgresql", "-U", "postgres", "-d", "orders"]
        );
        assert_eq!(local(Path::new("/bin"), Some("s3cret-pw")).connection_args("orders"), ["-d", "orders"]);
    }

    /// A local program connects through libpq's environment (its password there, never on its
    /// command line), reads what it is fed on stdin, streams its stdout, and ends with its status
    /// and the last 20 lines of its stderr, with the password masked.
    #[tokio::test]
    async fn a_local_program_gets_the_connection_in_its_environment_and_its_stderr_is_kept_short() {
        let dir = tempfile::tempdir().unwrap();
        let script = "#!/bin/sh\n\
                      echo \"args: $*\"\n\
                      echo \"PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER PGSSLMODE=$PGSSLMODE\"\n\
                      cat\n\
                      i=1; while [ $i -le 25 ]; do echo \"warning $i\" >&2; i=$((i+1)); done\n\
                      echo \"authenticating with $PGPASSWORD\" >&2\n\
                      exit 3\n";
        let program = dir.path().join("pg_restore");
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let redactor = Redactor::new();
        redactor.register(&Secret::new("s3cret-pw-9f1c".to_owned()));
        let tools = local(dir.path(), Some("s3cret-pw-9f1c"));
        let (stdin, input) = mpsc::channel(4);
        stdin.send(Bytes::from_static(b"fed on stdin\n")).await.unwrap();
        drop(stdin);
        let (stdout, collect) = stdout_collector();
        let args = tools.connection_args("orders");
        let output = tools.run_fed("pg_restore", &args, Some(input), Some(stdout), &redactor).await.unwrap();
        assert_eq!(output.status, 3);
        assert!(!output.success());
        assert_eq!(
            collect.await.unwrap(),
            "args: -d orders\n\
             PGHOST=/tmp/pgdrill-d1-target/socket PGPORT=5432 PGUSER=postgres PGSSLMODE=disable\n\
             fed on stdin\n"
        );
        let kept: Vec<&str> = output.stderr.lines().collect();
        assert_eq!(kept.len(), 20);
        assert_eq!(kept[0], "warning 7");
        assert_eq!(kept[19], format!("authenticating with {MASK}"));
    }

    #[tokio::test]
    async fn a_missing_program_and_unavailable_tools_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let error = local(dir.path(), None).run("pg_restore", &[], None, &Redactor::new()).await.unwrap_err();
        assert_eq!(error.to_string(), format!("cannot run `{}`", dir.path().join("pg_restore").display()));
        let none = Tools::Unavailable { reason: "no pg_restore here".into() };
        assert_eq!(
            none.run("pg_restore", &[], None, &Redactor::new()).await.unwrap_err().to_string(),
            "no pg_restore here"
        );
    }

    #[tokio::test]
    async fn a_programs_stdout_is_collected_up_to_4_mib() {
        let (tx, collect) = stdout_collector();
        for _ in 0..6 {
            tx.send(Bytes::from(vec![b'x'; 1 << 20])).await.unwrap();
        }
        drop(tx);
        assert_eq!(collect.await.unwrap().len(), 4 << 20);
    }

    #[test]
    fn the_tail_of_stderr_is_its_last_20_lines_redacted() {
        let redactor = Redactor::new();
        let text: String = (1..=30).map(|i| format!("line {i} postgres://app:pw@db/x\n")).collect();
        let tail = tail(text.as_bytes(), &redactor);
        assert_eq!(tail.lines().count(), 20);
        assert!(tail.starts_with("line 11 "), "{tail}");
        assert!(!tail.contains(":pw@"), "a connection string's password is masked: {tail}");
        assert_eq!(super::tail(b"one\ntwo", &redactor), "one\ntwo");
    }

    /// The blocking splitter reads a program's stdout as it arrives, across chunks, to its end.
    #[tokio::test]
    async fn a_channel_of_chunks_reads_as_one_stream() {
        let (tx, rx) = mpsc::channel(4);
        for chunk in [&b"SELECT "[..], b"", b"1;\nSELECT 2;\n"] {
            tx.send(Bytes::from_static(chunk)).await.unwrap();
        }
        drop(tx);
        let read = tokio::task::spawn_blocking(move || {
            let mut reader = ChannelReader::new(rx);
            let mut small = [0u8; 4];
            let first = reader.read(&mut small).unwrap();
            let mut rest = String::new();
            reader.read_to_string(&mut rest).unwrap();
            (String::from_utf8_lossy(&small[..first]).into_owned(), rest)
        });
        let (first, rest) = read.await.unwrap();
        assert_eq!(format!("{first}{rest}"), "SELECT 1;\nSELECT 2;\n");
        assert_eq!(first, "SELE");
    }
}
