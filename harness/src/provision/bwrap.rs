//! bubblewrap (`bwrap`, Debian's `bubblewrap`): the sandbox of a local target's server, of a
//! local toolbox and of a container target's verify tools copied out of its image. A process in
//! it has its own namespaces (a network of its own with only loopback), no capabilities, a
//! read-only view of /usr with no programs but PostgreSQL's own (or of the image's copy alone),
//! and nothing else of the machine but the folders bound into it; it dies with pgdrill, with
//! rlimits on memory per process and on processes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::tree::Ids;
use rustix::fs::StatVfsMountFlags;
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::thread::UnshareFlags;

/// Folders of programs the sandbox hides (PostgreSQL's own live elsewhere, or are bound back).
pub(crate) const NO_PROGRAMS: [&str; 3] = ["/usr/bin", "/usr/sbin", "/usr/local"];

/// A folder of this machine bound into the sandbox, at `inside`.
#[derive(Debug, Clone)]
pub(crate) struct Bind {
    pub host: PathBuf,
    pub inside: PathBuf,
    pub writable: bool,
}

impl Bind {
    /// `path`, writable, at the same path inside.
    pub(crate) fn writable(path: &Path) -> Bind {
        Bind { host: path.to_owned(), inside: path.to_owned(), writable: true }
    }
}

/// The uid and gid to run PostgreSQL as, when this process is root.
pub(crate) fn unprivileged_user() -> Option<Ids> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    if uid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let find = |wanted: &str| {
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == wanted)
                .then(|| Some(Ids { uid: f[2].parse().ok()?, gid: f[3].parse().ok()? }))
                .flatten()
        })
    };
    find("postgres").or_else(|| find("nobody"))
}

/// `bwrap` on the PATH.
pub(crate) fn find_bwrap() -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("bwrap")).find(|p| p.is_file())
}

/// Whether the sandbox hides the machine's programs: a server (SQL can start programs) does; a
/// toolbox, whose PostgreSQL tools start each other through a shell (pg_verifybackup runs
/// `pg_waldump`) and run nothing of the backup's, does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Programs {
    Hidden,
    Shown,
}

/// bubblewrap's arguments for a program of `bin_dir` that sees the machine's folders `binds`
/// (and /usr, read-only, without its programs when `programs` says so) and starts in `chdir`.
pub(crate) fn args(bin_dir: &Path, binds: &[Bind], chdir: &Path, programs: Programs) -> Vec<OsString> {
    let mut args = head();
    let mut push = |parts: &[&dyn AsRef<std::ffi::OsStr>]| args.extend(parts.iter().map(|p| p.as_ref().to_owned()));
    push(&[&"--ro-bind", &"/usr", &"/usr"]);
    // The top-level folders of a merged /usr are links into it; elsewhere they are bound as they are.
    for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        match std::fs::read_link(top) {
            Ok(link) => push(&[&"--symlink", &link, &top]),
            Err(_) if Path::new(top).is_dir() => push(&[&"--ro-bind", &top, &top]),
            Err(_) => {}
        }
    }
    // The PostgreSQL installation (bin, lib, share), when it is not under /usr.
    let install = bin_dir.parent().unwrap_or(bin_dir);
    if !install.starts_with("/usr") {
        push(&[&"--ro-bind", &install, &install]);
    }
    args.extend(system_and(binds));
    let mut push = |parts: &[&dyn AsRef<std::ffi::OsStr>]| args.extend(parts.iter().map(|p| p.as_ref().to_owned()));
    if programs == Programs::Hidden {
        for hidden in NO_PROGRAMS {
            push(&[&"--tmpfs", &hidden]);
        }
        // The server itself, when it lives in a hidden folder (/usr/bin on some systems).
        let postgres = bin_dir.join("postgres");
        if NO_PROGRAMS.iter().any(|h| bin_dir.starts_with(h)) {
            push(&[&"--ro-bind", &postgres, &postgres]);
        }
        for hidden in NO_PROGRAMS {
            push(&[&"--remount-ro", &hidden]);
        }
    }
    args.extend(tail(chdir));
    args
}

/// bubblewrap's arguments for a program of a copy of an image's files (`root`: its `usr`,
/// `lib`, ... bound read-only where the image has them, nothing of this machine's) that sees
/// `binds` and starts in `chdir`.
pub(crate) fn image_args(root: &Path, binds: &[Bind], chdir: &Path) -> std::io::Result<Vec<OsString>> {
    let mut args = head();
    let mut tops: Vec<PathBuf> = std::fs::read_dir(root)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    tops.sort();
    // Folders only: a link there would be followed on this machine, outside the copy.
    tops.retain(|top| std::fs::symlink_metadata(top).is_ok_and(|m| m.is_dir()));
    for top in tops {
        let inside = Path::new("/").join(top.file_name().unwrap_or_default());
        args.extend(["--ro-bind".into(), top.into_os_string(), inside.into_os_string()]);
    }
    args.extend(system_and(binds));
    args.extend(tail(chdir));
    Ok(args)
}

/// What every sandbox starts with: namespaces of its own, dying with pgdrill, no capabilities.
fn head() -> Vec<OsString> {
    ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"].map(OsString::from).to_vec()
}

/// /proc and /dev of the sandbox's own, then `binds`.
fn system_and(binds: &[Bind]) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--proc", "/proc", "--dev", "/dev"].map(OsString::from).to_vec();
    for bind in binds {
        let how = if bind.writable { "--bind" } else { "--ro-bind" };
        args.extend([how.into(), bind.host.clone().into_os_string(), bind.inside.clone().into_os_string()]);
    }
    args
}

/// What every sandbox ends with: /dev and its root read-only, the folder it starts in.
fn tail(chdir: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir"].map(OsString::from).to_vec();
    args.extend([chdir.as_os_str().to_owned(), "--".into()]);
    args
}

/// What [`noexec_folder`] does in the server's process before bubblewrap starts, prepared
/// beforehand (nothing is allocated between fork and exec).
struct NoexecMount {
    folder: std::ffi::CString,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    /// The folder's mount's flags that an unprivileged namespace may not drop (`ro`, `nosuid`,
    /// `nodev`), and `noexec`.
    flags: MountFlags,
}

/// Makes `folder` (the local cluster's private folder: data, socket, log) `noexec`, `nosuid`
/// and `nodev` for the server: the process that becomes bubblewrap first enters a user and
/// mount namespace of its own (as its user `ids`, the only one mapped), binds the folder over
/// itself there and remounts the bind with those flags. bubblewrap's binds keep their source's
/// flags, and the flags of mounts inherited from a more privileged namespace are locked, so
/// nothing in the sandbox can lift them: the kernel refuses to map a file there executable.
/// Needs unprivileged user namespaces, as bubblewrap itself does.
pub(crate) fn noexec_folder(command: &mut tokio::process::Command, folder: &Path, ids: Ids) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c_folder = std::ffi::CString::new(folder.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let held = rustix::fs::statvfs(c_folder.as_c_str())?.f_flag;
    let kept = [
        (StatVfsMountFlags::RDONLY, MountFlags::RDONLY),
        (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
        (StatVfsMountFlags::NODEV, MountFlags::NODEV),
    ];
    let flags = kept.iter().filter(|(st, _)| held.contains(*st)).fold(MountFlags::empty(), |f, (_, ms)| f | *ms);
    let mount = NoexecMount {
        folder: c_folder,
        uid_map: format!("{0} {0} 1\n", ids.uid).into_bytes(),
        gid_map: format!("{0} {0} 1\n", ids.gid).into_bytes(),
        flags: flags | MountFlags::NOEXEC | MountFlags::NOSUID | MountFlags::NODEV,
    };
    // SAFETY: only prctl, unshare, open, write, close and mount, which are async-signal-safe
    // system calls, run between fork and exec, on data prepared before the fork (rustix passes
    // C strings as they are, without allocating).
    unsafe {
        command.pre_exec(move || mount.apply());
    }
    Ok(())
}

impl NoexecMount {
    /// In the child, between fork and exec.
    fn apply(&self) -> std::io::Result<()> {
        // A process that changed its user (pgdrill as root, the server as `postgres`) is not
        // dumpable, and its /proc files are root's: it could not write its own maps. exec sets
        // this again for bubblewrap.
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)?;
        // SAFETY: new user and mount namespaces, not a file table of its own: the one thread of
        // a forked child keeps every descriptor it had.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS)? };
        write_proc(c"/proc/self/setgroups", b"deny")?;
        write_proc(c"/proc/self/uid_map", &self.uid_map)?;
        write_proc(c"/proc/self/gid_map", &self.gid_map)?;
        rustix::mount::mount_change(c"/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)?;
        rustix::mount::mount_bind(self.folder.as_c_str(), self.folder.as_c_str())?;
        Ok(rustix::mount::mount_remount(self.folder.as_c_str(), MountFlags::BIND | self.flags, c"")?)
    }
}

/// Writes `bytes` to a file of /proc, between fork and exec: system calls only.
fn write_proc(path: &std::ffi::CStr, bytes: &[u8]) -> std::io::Result<()> {
    let file =
        rustix::fs::open(path, rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())?;
    let written = rustix::io::write(&file, bytes)?;
    if written == bytes.len() { Ok(()) } else { Err(std::io::ErrorKind::WriteZero.into()) }
}

/// A resource limit [`die_with_pgdrill`] leaves as it is (`RLIM_INFINITY`).
pub(crate) const UNLIMITED: u64 = u64::MAX;

/// The server dies with pgdrill, even when pgdrill is killed outright; in the sandbox, with
/// `limited` (data bytes and processes) as its resource limits (either [`UNLIMITED`]: the limit
/// left as it is, which the unprivileged user could not raise).
pub(crate) fn die_with_pgdrill(postgres: &mut tokio::process::Command, limited: Option<(u64, u64)>) {
    use rustix::process::{Resource, Rlimit, Signal};
    // SAFETY: only prctl and setrlimit, which are async-signal-safe, run between fork and exec.
    unsafe {
        postgres.pre_exec(move || {
            // The server dies with pgdrill, even when pgdrill is killed outright.
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            for (resource, value) in limited
                .into_iter()
                .flat_map(|(data, processes)| [(Resource::Data, data), (Resource::Nproc, processes)])
                .filter(|&(_, value)| value != UNLIMITED)
            {
                rustix::process::setrlimit(resource, Rlimit { current: Some(value), maximum: Some(value) })?;
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_hides_programs_and_binds_the_server_back_when_it_lives_among_them() {
        let args = |bin: &str| -> Vec<String> {
            args(
                Path::new(bin),
                &[Bind::writable(Path::new("/tmp/pgdrill-local-x"))],
                Path::new("/tmp/pgdrill-local-x"),
                Programs::Hidden,
            )
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
        };
        let debian = args("/usr/lib/postgresql/17/bin");
        let joined = debian.join(" ");
        assert!(joined.starts_with("--unshare-all --die-with-parent --new-session --cap-drop ALL"), "{joined}");
        assert!(joined.contains("--tmpfs /usr/bin") && joined.contains("--remount-ro /usr/bin"), "{joined}");
        assert!(joined.contains("--bind /tmp/pgdrill-local-x /tmp/pgdrill-local-x"), "{joined}");
        assert!(joined.ends_with("--remount-ro / --chdir /tmp/pgdrill-local-x --"), "{joined}");
        assert!(!joined.contains("/etc") && !joined.contains("/home"), "{joined}");

        let fedora = args("/usr/bin").join(" ");
        let hidden = fedora.find("--tmpfs /usr/bin").unwrap();
        let bound = fedora.find("--ro-bind /usr/bin/postgres /usr/bin/postgres").unwrap();
        let sealed = fedora.find("--remount-ro /usr/bin").unwrap();
        assert!(hidden < bound && bound < sealed, "{fedora}");

        let opt = args("/opt/pg17/bin").join(" ");
        assert!(opt.contains("--ro-bind /opt/pg17 /opt/pg17"), "{opt}");
    }

    /// A copy of an image's tools is the sandbox's only system: its folders, bound where the
    /// image has them; a link among them (which this machine would follow) is not.
    #[test]
    fn an_images_copy_is_bound_folder_by_folder_and_nothing_of_the_machine() {
        let root = tempfile::tempdir().unwrap();
        for top in ["usr", "lib64", "bin"] {
            std::fs::create_dir(root.path().join(top)).unwrap();
        }
        std::os::unix::fs::symlink("/etc", root.path().join("etc")).unwrap();
        let data = Bind { host: "/tmp/w/data".into(), inside: "/pgdrill/data".into(), writable: true };
        let args = image_args(root.path(), &[data], Path::new("/")).unwrap();
        let joined = args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
        let r = root.path().display();
        let expected = format!(
            "--unshare-all --die-with-parent --new-session --cap-drop ALL --ro-bind {r}/bin /bin --ro-bind {r}/lib64 /lib64 \
             --ro-bind {r}/usr /usr --proc /proc --dev /dev --bind /tmp/w/data /pgdrill/data --remount-ro /dev --remount-ro / \
             --chdir / --"
        );
        assert_eq!(joined, expected);
    }
}
