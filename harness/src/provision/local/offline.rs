//! Running one of PostgreSQL's tools over a local target's stopped cluster (`pg_checksums`
//! reads a cluster only when it is shut down), and starting the server again as it first was.
//!
//! In its sandbox the server is not pgdrill's child: bubblewrap is, with the server below it in
//! a process namespace of its own, whose `postmaster.pid` holds an id that means nothing here.
//! The postmaster is found as the shallowest `postgres` below bubblewrap's process (reading
//! `/proc`, nothing the backup can write) and asked for a fast shutdown (SIGINT: sessions end,
//! a checkpoint, a clean state), as a container's server is.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::TargetError;
use super::super::toolbox::{Data, On, Toolbox};
use super::super::tools::ToolOutput;
use super::launch::Launch;
use crate::secret::Redactor;

/// The server's process, shared by the target's teardown and its [`Offline`] handle; `None`
/// once it was stopped for good.
pub(crate) type Server = Arc<tokio::sync::Mutex<Option<tokio::process::Child>>>;

/// What a local target needs to stop its server cleanly, run a tool over its data directory in
/// a toolbox of the same binaries, and start the server again.
#[derive(Clone)]
pub(crate) struct Offline {
    pub(super) launch: Launch,
    pub(super) server: Server,
    pub(super) drill_id: String,
}

impl Offline {
    /// Stops the server (a fast shutdown), runs `program args` in a toolbox that sees the data
    /// directory at [`crate::provision::toolbox::DATA`], and starts the server again, ready for connections.
    /// Returns how the program ended and its stdout.
    pub(crate) async fn run_stopped(
        &self,
        program: &str,
        args: &[String],
        redactor: &Redactor,
    ) -> Result<(ToolOutput, String), TargetError> {
        let mut server = self.server.lock().await;
        let Some(mut child) = server.take() else {
            return Err(TargetError::Tool { message: "the target's server is no longer running".into() });
        };
        stop_cleanly(&mut child, self.launch.bwrap.is_some()).await?;
        let data = self.launch.data();
        let on = On::Local(&self.launch.bin_dir);
        let ran = Toolbox::run_once(&self.drill_id, on, Data::Folder(&data), program, args, redactor).await;
        // Started again whatever the tool found: later checks and the app need the server.
        let mut child = self.launch.spawn()?;
        let ready = self.launch.wait_ready(&mut child, redactor).await;
        *server = Some(child);
        ready?;
        ran
    }
}

/// Stops the server with a fast shutdown and waits until it has exited; an error when it did
/// not exit cleanly.
async fn stop_cleanly(child: &mut tokio::process::Child, sandboxed: bool) -> Result<(), TargetError> {
    let stop_err = |message: String| TargetError::Tool { message };
    let pid = child.id().ok_or_else(|| stop_err("the target's server has already exited".into()))?;
    let postmaster = if sandboxed {
        postmaster_below(pid).ok_or_else(|| stop_err("cannot find the target's postmaster in its sandbox".into()))?
    } else {
        pid
    };
    let pid = i32::try_from(postmaster)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| stop_err(format!("the target's postmaster has a pid out of range ({postmaster})")))?;
    rustix::process::kill_process(pid, rustix::process::Signal::INT)
        .map_err(|e| TargetError::io("cannot stop the target's server")(e.into()))?;
    let status = child.wait().await.map_err(TargetError::io("cannot wait for the target's server"))?;
    if !status.success() {
        return Err(stop_err(format!("the target's server did not shut down cleanly ({status})")));
    }
    Ok(())
}

/// The postmaster below bubblewrap's process `root`: the shallowest process named `postgres`
/// among its descendants (bubblewrap's own init is between them; backends are deeper).
fn postmaster_below(root: u32) -> Option<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(parent) = parent_of(pid) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut level = vec![root];
    while !level.is_empty() {
        let mut next = Vec::new();
        for pid in level {
            for child in children.get(&pid).into_iter().flatten() {
                if std::fs::read_to_string(format!("/proc/{child}/comm")).is_ok_and(|c| c.trim_end() == "postgres") {
                    return Some(*child);
                }
                next.push(*child);
            }
        }
        level = next;
    }
    None
}

/// A process's parent, from `/proc/<pid>/stat` (its fourth field, after the name in brackets).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn the_shallowest_postgres_below_a_process_is_its_postmaster_and_nothing_outside_it_is() {
        // A stand-in tree: sh (as bubblewrap) -> sh (as its init) -> `postgres` (sleep under
        // that name) -> sh -> `postgres` (as a backend would be, deeper).
        let dir = tempfile::tempdir().unwrap();
        let postgres = dir.path().join("postgres");
        std::fs::copy("/bin/sleep", &postgres).unwrap();
        let inner = format!("{0} 30 & sh -c '{0} 30 & wait' & wait", postgres.display());
        let mut root = std::process::Command::new("sh")
            .args(["-c", &format!("sh -c \"{inner}\" & wait")])
            .process_group(0)
            .spawn()
            .unwrap();
        // Both stand-ins running (their exec done), so the deeper one is there to be passed over.
        let stand_ins = || {
            let entries = std::fs::read_dir("/proc").unwrap().flatten();
            entries.filter(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|x| x == postgres)).count()
        };
        let started = std::time::Instant::now();
        while stand_ins() < 2 && started.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let found = postmaster_below(root.id());
        let found = found.expect("the stand-in postmaster");
        let grandparent = parent_of(found).and_then(parent_of);
        assert_eq!(grandparent, Some(root.id()), "the shallowest one, two levels down");
        // Nothing below a process without children.
        assert_eq!(postmaster_below(found), None);
        let group = rustix::process::Pid::from_raw(root.id() as i32).expect("a pid");
        rustix::process::kill_process_group(group, rustix::process::Signal::KILL).expect("the stand-in's group killed");
        root.wait().ok();
    }
}
