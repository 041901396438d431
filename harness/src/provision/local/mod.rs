//! A throwaway cluster of PostgreSQL binaries on this machine: `initdb` into a private folder
//! (0700), a server that listens on its Unix socket only, run as an unprivileged user when
//! pgdrill runs as root (PostgreSQL refuses root), all removed afterwards.
//!
//! The server runs in a bubblewrap sandbox (`bwrap`, Debian's `bubblewrap`): its own network
//! namespace with only loopback, no capabilities, a read-only view of /usr with no programs but
//! its own, nothing else of the machine but its folder, and rlimits on memory per process and on
//! processes. Without bubblewrap the server would run with the machine's network and files, so
//! pgdrill refuses an untrusted backup there.

mod launch;
mod offline;

use crate::outcome::{Isolation, Observed, TargetInfo};
use crate::tree::Ids;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgSslMode;

use super::bwrap::{NO_PROGRAMS, find_bwrap, unprivileged_user};
use super::image::PG_HBA;
use super::sandbox::observe;

use super::spec::LocalSpec;
use super::tools::Tools;
use super::tools::find_bin_dir;
use super::tuning::{self, Limits};
use super::{Created, Programs, ProvisionContext, Target, TargetError};
pub(crate) use launch::last_lines;
use launch::{Launch, PORT, SUPERUSER};
pub(crate) use offline::Offline;

/// The running cluster, stopped and removed by [`Running::remove`].
pub(crate) struct Running {
    /// The server's process (bubblewrap's, in the sandbox), shared with the target's
    /// [`Offline`] handle, which stops and starts it again.
    server: offline::Server,
    dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<Ids>,
    sandboxed: bool,
}

fn chown_all(path: &Path, ids: Ids) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(ids.uid), Some(ids.gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_all(&entry?.path(), ids)?;
        }
    }
    Ok(())
}

/// The major of the PostgreSQL binaries in `bin_dir` (`postgres --version`).
fn major_of(bin_dir: &Path) -> Option<u32> {
    let out = std::process::Command::new(bin_dir.join("postgres")).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    crate::pg::major_of_version_text(text.rsplit(") ").next().unwrap_or(&text))
}

/// The binaries a physical backup of PostgreSQL `major` recovers with: the scenario's
/// `bin_dir` (which must be of that major), else Debian's `/usr/lib/postgresql/<major>/bin`,
/// else `pg_config`'s when it is of that major.
pub(crate) fn bin_dir_for(spec: &LocalSpec, major: u32) -> Result<PathBuf, TargetError> {
    bin_dir_of_major(spec.bin_dir.as_deref(), major)
}

/// [`bin_dir_for`] with the scenario's `bin_dir`, if any, given alone (a pod's).
pub(crate) fn bin_dir_of_major(bin_dir: Option<&Path>, major: u32) -> Result<PathBuf, TargetError> {
    let found = match bin_dir {
        Some(dir) => Some(dir.to_owned()),
        None => [PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"))]
            .into_iter()
            .chain(find_bin_dir())
            .find(|dir| dir.join("postgres").is_file() && major_of(dir) == Some(major)),
    };
    match found {
        Some(dir) if major_of(&dir) == Some(major) => Ok(dir),
        Some(dir) => Err(TargetError::Config {
            message: format!(
                "`{}` holds PostgreSQL {} binaries, and the backup is of PostgreSQL {major}: a physical backup recovers on its own major only",
                dir.display(),
                major_of(&dir).map_or("unknown".to_owned(), |m| m.to_string())
            ),
        }),
        None => Err(TargetError::Config {
            message: format!(
                "no PostgreSQL {major} binaries on this machine: a physical backup recovers on its own major only (hint: install postgresql-{major}, or set `[target] bin_dir`)"
            ),
        }),
    }
}

pub(crate) async fn provision(spec: &LocalSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Running), TargetError> {
    let bin_dir = match ctx.physical {
        Some(physical) => bin_dir_for(spec, physical.major)?,
        None => spec.bin_dir.clone().or_else(find_bin_dir).ok_or_else(|| TargetError::Config {
            message: "no PostgreSQL binaries found (hint: install the server package, or set target.bin_dir)".into(),
        })?,
    };
    for program in ["initdb", "postgres", "pg_restore"] {
        if !bin_dir.join(program).is_file() {
            return Err(TargetError::Config { message: format!("`{}` has no `{program}`", bin_dir.display()) });
        }
    }
    super::owner::remove_orphan_folders().await;
    let bwrap = find_bwrap();
    if bwrap.is_none() && ctx.trusted.is_none() {
        return Err(TargetError::Untrusted {
            what: "a local target without bubblewrap".into(),
            why: "`bwrap` is not on the PATH, and the server would run on this machine with its network and files"
                .into(),
        });
    }
    let dir = std::env::temp_dir().join(format!("pgdrill-local-{}", ctx.drill_id));
    let io = TargetError::io;
    let dir = {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(io("cannot create the cluster folder"))?;
        super::owner::mark_owner(&dir).map_err(io("cannot mark the cluster folder"))?;
        // Its path without links: the server finds its mount (noexec) by it.
        std::fs::canonicalize(&dir).map_err(io("cannot resolve the cluster folder"))?
    };
    let run_as = unprivileged_user();
    let mut running = Running {
        server: Default::default(),
        dir: dir.clone(),
        bin_dir: bin_dir.clone(),
        run_as,
        sandboxed: bwrap.is_some(),
    };
    match start(spec, ctx, &bin_dir, bwrap.as_deref(), &running).await {
        Ok(target) => Ok((target, running)),
        Err(e) => {
            running.remove().await.ok();
            Err(e)
        }
    }
}

async fn start(
    spec: &LocalSpec,
    ctx: &ProvisionContext<'_>,
    bin_dir: &Path,
    bwrap: Option<&Path>,
    running: &Running,
) -> Result<Target, TargetError> {
    let (dir, data, run_as) = (running.dir.clone(), running.dir.join("data"), running.run_as);
    match ctx.physical {
        Some(physical) => physical_cluster(physical, &dir, &data, run_as).await?,
        None => init_cluster(bin_dir, &dir, &data, run_as, ctx).await?,
    }

    let limits = Limits::of(spec.memory, spec.processes, spec.share.as_ref());
    let disk = crate::disk::limit_for(spec.disk.as_ref(), &dir, spec.share.as_ref())?;
    let tuning = server_tuning(spec, ctx, &limits, disk.bytes, bwrap.is_some());
    let launch = Launch {
        bwrap: bwrap.map(Path::to_owned),
        bin_dir: bin_dir.to_owned(),
        dir: dir.clone(),
        settings: tuning.settings.clone(),
        run_as,
        limits: (limits.data_per_process, u64::from(limits.processes)),
        startup_timeout: spec.startup_timeout,
    };
    (ctx.progress)(&format!("starting PostgreSQL{}", if bwrap.is_some() { " in a bubblewrap sandbox" } else { "" }));
    {
        let mut server = running.server.lock().await;
        let child = server.insert(launch.spawn()?);
        launch.wait_ready(child, ctx.redactor).await?;
    }
    let observed = observe(&launch.options()).await?;
    let isolation = isolation(observed, run_as, bwrap.is_some(), &limits, &disk)?;
    Ok(Target {
        host: dir.display().to_string(),
        port: PORT,
        user: SUPERUSER.into(),
        password: None,
        maintenance_db: "postgres".into(),
        ssl_mode: PgSslMode::Disable,
        info: TargetInfo {
            kind: "local".into(),
            image: Some(bin_dir.display().to_string()),
            address: format!("socket in {}", dir.display()),
            settings: tuning.settings,
            isolation: Some(isolation),
            ..TargetInfo::default()
        },
        tools: Tools::Local {
            bin_dir: bin_dir.to_owned(),
            host: dir.display().to_string(),
            port: PORT,
            user: SUPERUSER.into(),
            password: None,
            ssl_mode: "disable".into(),
            run_as,
        },
        database_suffix: None,
        created: Arc::new(Mutex::new(Created::default())),
        programs: Programs::bridged(ctx.drill_id),
        offline: Some(super::Offline::Local(Offline {
            launch,
            server: running.server.clone(),
            drill_id: ctx.drill_id.to_owned(),
        })),
        disk: Some(super::DataDisk { dir: dir.clone(), limit: disk, live: dir.join("data") }),
        pins: Default::default(),
        logins: Default::default(),
        ssl_root_cert: None,
        tcp_relay: None,
    })
}

/// The server's settings: the throwaway's, within the disk limit, as the sandbox needs them, and
/// a recovering standby's when it is a physical backup's.
fn server_tuning(
    spec: &LocalSpec,
    ctx: &ProvisionContext<'_>,
    limits: &Limits,
    disk: u64,
    sandboxed: bool,
) -> tuning::Tuning {
    let mut overrides = tuning::disk_bounded(&spec.settings, disk);
    overrides.entry("shared_buffers".into()).or_insert_with(|| "128MB".into());
    if sandboxed {
        // /dev is read-only in the sandbox: shared memory segments are files in the data folder.
        overrides.insert("dynamic_shared_memory_type".into(), "mmap".into());
    }
    let mut tuning = tuning::throwaway(limits.resources(), &overrides);
    // A recovering standby's settings (the scenario's own already yielded to them).
    for (key, value) in ctx.physical.map(|p| p.settings.as_slice()).unwrap_or_default() {
        tuning.settings.insert(key.clone(), value.clone());
    }
    tuning
}

/// The cluster of a physical backup: its data directory, staged and verified (owned by the
/// server's user already), moved in and made a standby of nothing.
async fn physical_cluster(
    physical: &super::PhysicalData,
    dir: &Path,
    data: &Path,
    run_as: Option<Ids>,
) -> Result<(), TargetError> {
    let io = TargetError::io;
    let owner = run_as.unwrap_or_else(Ids::current);
    if let Some(Ids { uid, gid }) = run_as {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .map_err(io("cannot hand the cluster folder to an unprivileged user"))?;
    }
    let (from, to) = (physical.data.clone(), data.to_owned());
    tokio::task::spawn_blocking(move || {
        std::fs::rename(&from, &to)?;
        super::standby::standby_of_nothing(&to, owner)
    })
    .await?
    .map_err(io("cannot move the backup's data directory into the cluster folder"))
}

/// The cluster, made by initdb outside the sandbox (it reads nothing from the backup, and needs
/// a shell), owned by the user the server runs as, with pgdrill's pg_hba.conf.
async fn init_cluster(
    bin_dir: &Path,
    dir: &Path,
    data: &Path,
    run_as: Option<Ids>,
    ctx: &ProvisionContext<'_>,
) -> Result<(), TargetError> {
    let io = TargetError::io;
    if let Some(ids) = run_as {
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || chown_all(&dir, ids))
            .await?
            .map_err(io("cannot hand the cluster folder to an unprivileged user"))?;
    }
    // initdb reads nothing from the backup: it runs outside the sandbox (it needs a shell).
    (ctx.progress)("initdb");
    let mut initdb = tokio::process::Command::new(bin_dir.join("initdb"));
    initdb
        .arg("-D")
        .arg(data)
        .args(["-U", SUPERUSER, "--auth-local=trust", "--auth-host=reject", "-E", "UTF8", "--locale=C"])
        // As the project's images are: `checksums` can prove what the restore wrote.
        .args(["--data-checksums", "--no-sync"])
        .stdin(Stdio::null());
    if let Some(Ids { uid, gid }) = run_as {
        initdb.uid(uid).gid(gid);
    }
    let out = initdb.output().await.map_err(io("cannot run initdb"))?;
    if !out.status.success() {
        return Err(TargetError::Start {
            image: bin_dir.display().to_string(),
            message: format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    std::fs::write(data.join("pg_hba.conf"), PG_HBA).map_err(io("cannot write pg_hba.conf"))?;
    Ok(())
}

/// What the reports say of the cluster's isolation: a sandbox under bubblewrap (proven from
/// inside), else this machine's as the user the server runs as.
fn isolation(
    observed: Observed,
    run_as: Option<Ids>,
    sandboxed: bool,
    limits: &Limits,
    disk: &crate::disk::DiskLimit,
) -> Result<Isolation, TargetError> {
    let user = match run_as {
        Some(_) => format!("`postgres` of this machine (uid {}), never root", observed.uid),
        None => format!("the user running pgdrill (uid {}), never root", observed.uid),
    };
    Ok(if sandboxed {
        observed.judge()?;
        Isolation {
            contained: true,
            network: "none: a network namespace of its own with only loopback (bubblewrap); the server listens on no TCP address, pgdrill reaches it through its Unix socket in the cluster's private folder".into(),
            user,
            capabilities: "none: all dropped, no-new-privileges (bubblewrap)".into(),
            filesystem: "a read-only view of /usr; the cluster's private folder writable, mounted noexec (nosuid, nodev) in a mount namespace of its own, so no library a backup writes can be loaded; nothing else of this machine (no /etc, /home, /tmp, /var)".into(),
            programs: format!("none but PostgreSQL's own: {} are empty, so there is no shell", NO_PROGRAMS.join(", ")),
            limits: format!(
                "{}; disk {} for the cluster's folder (`[target] disk`)",
                limits.describe("each process (no cgroup: that part is per process)"),
                disk.shown
            ),
            observed: Some(observed),
        }
    } else {
        Isolation {
            contained: false,
            network: "this machine's: the server listens on no TCP address, but SQL it runs can open connections"
                .into(),
            user,
            capabilities: "those of that user".into(),
            filesystem: "this machine's, as that user".into(),
            programs: "this machine's (COPY ... PROGRAM runs a shell)".into(),
            limits: "none".into(),
            observed: Some(observed),
        }
    })
}

impl Running {
    /// Stops the server (immediately: nothing in it must survive) and removes its folder.
    pub(crate) async fn remove(&mut self) -> Result<String, TargetError> {
        if let Some(mut child) = self.server.lock().await.take() {
            // In the sandbox, killing bubblewrap ends its process namespace, and every process in
            // it. Outside, pg_ctl stops the server the way `-m immediate` does.
            let stopped = !self.sandboxed && self.pg_ctl_stop().await;
            if !stopped {
                let _ = child.kill().await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            // bubblewrap's process reaped, the namespace it watched may still be ending: its
            // processes are killed by the kernel, not waited for by pgdrill.
            let dir = self.dir.display().to_string();
            for _ in 0..200 {
                if !any_process_names(&dir) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::fs::remove_dir_all(&self.dir)
            .await
            .map_err(|source| TargetError::RemoveFolder { path: self.dir.clone(), source })?;
        Ok(format!("stopped the local server and removed {}", self.dir.display()))
    }

    async fn pg_ctl_stop(&self) -> bool {
        let mut stop = tokio::process::Command::new(self.bin_dir.join("pg_ctl"));
        stop.arg("stop")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(Ids { uid, gid }) = self.run_as {
            stop.uid(uid).gid(gid);
        }
        matches!(tokio::time::timeout(Duration::from_secs(20), stop.status()).await, Ok(Ok(s)) if s.success())
    }
}

/// Whether a process of this machine has `needle` in its command line (a sandboxed server's
/// postmaster names its cluster folder).
fn any_process_names(needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))).any(
        |entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            cmdline.split(|b| *b == 0).any(|arg| arg.windows(needle.len()).any(|w| w == needle.as_bytes()))
        },
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::disk::DiskLimit;
    use crate::provision::PhysicalData;
    use crate::secret::Redactor;

    fn spec(bin_dir: Option<PathBuf>) -> LocalSpec {
        LocalSpec {
            bin_dir,
            startup_timeout: Duration::from_secs(60),
            settings: Default::default(),
            memory: None,
            processes: None,
            disk: None,
            share: None,
        }
    }

    /// A folder whose `postgres` says it is of `version`, as Debian's does.
    fn binaries(dir: &Path, version: &str) -> PathBuf {
        let bin = dir.join(format!("pg-{version}"));
        std::fs::create_dir(&bin).unwrap();
        let postgres = bin.join("postgres");
        let script = format!("#!/bin/sh\necho 'postgres (PostgreSQL) {version} (Debian {version}-1.pgdg120+1)'\n");
        std::fs::write(&postgres, script).unwrap();
        std::fs::set_permissions(&postgres, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    #[test]
    fn a_physical_backup_recovers_with_binaries_of_its_own_major() {
        let dir = tempfile::tempdir().unwrap();
        let sixteen = binaries(dir.path(), "16.4");
        assert_eq!(bin_dir_for(&spec(Some(sixteen.clone())), 16).unwrap(), sixteen);
        assert_eq!(
            bin_dir_for(&spec(Some(sixteen.clone())), 17).unwrap_err().to_string(),
            format!(
                "`{}` holds PostgreSQL 16 binaries, and the backup is of PostgreSQL 17: a physical backup recovers on its own major only",
                sixteen.display()
            )
        );
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(
            bin_dir_for(&spec(Some(empty)), 17).unwrap_err().to_string().contains("holds PostgreSQL unknown binaries"),
            "a folder without `postgres`"
        );
        assert_eq!(
            bin_dir_for(&spec(None), 99).unwrap_err().to_string(),
            "no PostgreSQL 99 binaries on this machine: a physical backup recovers on its own major only (hint: install postgresql-99, or set `[target] bin_dir`)"
        );
    }

    fn limits() -> Limits {
        Limits { memory: 4 << 30, data_per_process: 2 << 30, processes: 100, cpus: 2, shared: None }
    }

    fn disk() -> DiskLimit {
        DiskLimit { bytes: 8 << 30, shown: "8GB".into() }
    }

    fn sandboxed() -> Observed {
        Observed {
            interfaces: vec!["lo".into()],
            uid: 999,
            cap_eff: "0".repeat(16),
            no_new_privs: true,
            noexec: vec!["/tmp/pgdrill-local-d1".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_sandboxed_cluster_is_contained_once_proven_from_inside() {
        let isolation = isolation(sandboxed(), Some(Ids { uid: 999, gid: 999 }), true, &limits(), &disk()).unwrap();
        assert!(isolation.contained);
        assert_eq!(isolation.user, "`postgres` of this machine (uid 999), never root");
        assert_eq!(
            isolation.limits,
            format!(
                "{}; disk 8GB for the cluster's folder (`[target] disk`)",
                limits().describe("each process (no cgroup: that part is per process)")
            )
        );
        let as_me = isolation_of(Observed { uid: 1000, ..sandboxed() }, None, true);
        assert_eq!(as_me.unwrap().user, "the user running pgdrill (uid 1000), never root");

        let shell =
            isolation_of(Observed { shell: true, ..sandboxed() }, Some(Ids { uid: 999, gid: 999 }), true).unwrap_err();
        assert!(shell.to_string().contains("it has a shell (`/bin/sh`)"), "{shell}");
    }

    fn isolation_of(observed: Observed, run_as: Option<Ids>, sandbox: bool) -> Result<Isolation, TargetError> {
        isolation(observed, run_as, sandbox, &limits(), &disk())
    }

    /// Without bubblewrap the server is this machine's: the reports say so, and nothing is
    /// judged a breach (a trusted backup is the reason it may run there).
    #[test]
    fn a_cluster_without_bubblewrap_is_reported_as_not_contained() {
        let open = Observed { interfaces: vec!["lo".into(), "eth0".into()], shell: true, ..sandboxed() };
        let isolation = isolation_of(open.clone(), Some(Ids { uid: 999, gid: 999 }), false).unwrap();
        assert!(!isolation.contained);
        assert_eq!(isolation.programs, "this machine's (COPY ... PROGRAM runs a shell)");
        assert_eq!(isolation.limits, "none");
        assert_eq!(isolation.observed, Some(open));
    }

    #[test]
    fn the_servers_settings_fit_the_sandbox_and_yield_to_a_standby() {
        let redactor = Redactor::new();
        let ctx = |physical| ProvisionContext {
            drill_id: "d1",
            scenario: "orders",
            redactor: &redactor,
            progress: &|_| {},
            backup: None,
            trusted: None,
            backup_major: None,
            physical,
            clone: None,
            restarts: true,
        };
        let plain = server_tuning(&spec(None), &ctx(None), &limits(), 8 << 30, false);
        assert_eq!(plain.settings["shared_buffers"], "128MB");
        assert!(!plain.settings.contains_key("dynamic_shared_memory_type"));
        assert_eq!(plain.settings["temp_file_limit"], format!("{}kB", (8u64 << 30) / 1024));

        let mut own = spec(None);
        own.settings.insert("shared_buffers".into(), "1GB".into());
        let physical = PhysicalData {
            major: 17,
            data: PathBuf::from("/nowhere"),
            settings: vec![("hot_standby".into(), "on".into())],
        };
        let standby = server_tuning(&own, &ctx(Some(&physical)), &limits(), 8 << 30, true);
        assert_eq!(standby.settings["shared_buffers"], "1GB", "the scenario's own");
        assert_eq!(standby.settings["dynamic_shared_memory_type"], "mmap", "/dev is read-only in the sandbox");
        assert_eq!(standby.settings["hot_standby"], "on");
    }
}
