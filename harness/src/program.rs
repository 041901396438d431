//! A program pgdrill runs for a scenario (the app's build, the app itself, a migration command):
//! in its own process group (so that `cargo run` and its children stop together), without
//! pgdrill's own secrets in its environment, and run to its end with a timeout, the tail of its
//! output kept on failure. `app` and `migrate` share it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::secret::Redactor;

/// Why a program did not run as asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProgramError {
    /// The program could not be started, or waited for.
    #[error("cannot {verb} `{command}`")]
    Spawn {
        verb: &'static str,
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The command ran longer than its timeout (its process group was killed).
    #[error("`{command}` did not finish within {}", humantime::format_duration(*limit))]
    Timeout { command: String, limit: Duration },
    /// The command exited with a failure; the tail of its output, redacted.
    #[error("`{command}` failed ({status}):\n{tail}")]
    Failed { command: String, status: std::process::ExitStatus, tail: String },
}

/// `argv` in `workdir` with `env` added, output piped, in a process group of its own (so that
/// a script's or `cargo run`'s children stop with it), killed if dropped.
pub(crate) fn group_command(argv: &[String], workdir: &Path, env: &[(String, String)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(&argv[0]);
    for name in crate::secret::NOT_INHERITED {
        command.env_remove(name);
    }
    command
        .args(&argv[1..])
        .current_dir(workdir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    command
}

/// Runs a command (a build, a migration runner) to its end; its output's tail on failure.
pub(crate) async fn run_to_end(
    argv: &[String],
    workdir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    redactor: &Redactor,
) -> Result<(), ProgramError> {
    let command = || argv.join(" ");
    let child = group_command(argv, workdir, env).spawn().map_err(|source| ProgramError::Spawn {
        verb: "run",
        command: command(),
        source,
    })?;
    // A timeout, a failure or a cancelled drill stops the whole group: a script's children too.
    let group = GroupGuard(child.id());
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| ProgramError::Timeout { command: command(), limit: timeout })?
        .map_err(|source| ProgramError::Spawn { verb: "run", command: command(), source })?;
    drop(group);
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    Err(ProgramError::Failed {
        command: command(),
        status: output.status,
        tail: redactor.redact(&lines[lines.len().saturating_sub(15)..].join("\n")),
    })
}

/// Kills a process group when dropped (also when the future holding it is dropped).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            signal_group(pgid, "KILL");
        }
    }
}

/// Sends `signal` (`TERM`, `KILL`) to the process group `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
