//! Helpers every benchmark uses (included with `#[path]`): commands that must succeed.

use std::process::Command;

/// Runs `program args`, which must succeed.
pub(crate) fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// Runs `program args`, which must succeed; its stdout.
pub(crate) fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// What a child cost: its wall time, peak resident memory and CPU time (of it alone).
#[allow(dead_code, reason = "not every benchmark measures its children")]
pub(crate) struct Cost {
    pub(crate) wall: std::time::Duration,
    pub(crate) max_rss_kib: i64,
    pub(crate) cpu: std::time::Duration,
}

/// Runs `command` to its end, which must succeed; what it cost, from `wait4`.
#[allow(dead_code, reason = "not every benchmark measures its children")]
pub(crate) fn measured(command: &mut Command) -> Cost {
    let started = std::time::Instant::now();
    #[allow(clippy::zombie_processes, reason = "reaped by wait4, for its own resource usage")]
    let child = command.spawn().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it and the status for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let wall = started.elapsed();
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{command:?} failed ({status})");
    let cpu = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec as u64) + std::time::Duration::from_micros(t.tv_usec as u64)
    };
    Cost { wall, max_rss_kib: usage.ru_maxrss, cpu: cpu(usage.ru_utime) + cpu(usage.ru_stime) }
}
