//! A throwaway cluster of PostgreSQL binaries on this machine: `initdb` into a temporary folder,
//! a server on a free loopback port with a fresh password, run as an unprivileged user when
//! pgdrill runs as root (PostgreSQL refuses root), all removed afterwards.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

use super::tools::Tools;
use super::tuning::{self, Resources};
use super::{Created, ProvisionContext, Target, TargetError, TargetInfo, find_bin_dir};
use crate::scenario::LocalSpec;
use crate::secret::Secret;

const SUPERUSER: &str = "postgres";

/// The running cluster, stopped and removed by [`Running::remove`].
pub struct Running {
    child: Option<tokio::process::Child>,
    dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<(u32, u32)>,
}

/// The uid and gid to run PostgreSQL as, when this process is root.
fn unprivileged_user() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    if uid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let find = |wanted: &str| {
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == wanted).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?))).flatten()
        })
    };
    find("postgres").or_else(|| find("nobody"))
}

fn chown_all(path: &Path, (uid, gid): (u32, u32)) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_all(&entry?.path(), (uid, gid))?;
        }
    }
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub async fn provision(spec: &LocalSpec, ctx: &ProvisionContext<'_>) -> Result<(Target, Running), TargetError> {
    let bin_dir = spec.bin_dir.clone().or_else(find_bin_dir).ok_or_else(|| TargetError::Config {
        message: "no PostgreSQL binaries found (hint: install the server package, or set target.bin_dir)".into(),
    })?;
    for program in ["initdb", "postgres", "pg_ctl", "pg_restore"] {
        if !bin_dir.join(program).is_file() {
            return Err(TargetError::Config { message: format!("`{}` has no `{program}`", bin_dir.display()) });
        }
    }
    let dir = std::env::temp_dir().join(format!("pgdrill-local-{}", ctx.drill_id));
    let data = dir.join("data");
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| TargetError::Config { message: format!("{what}: {e}") }
    };
    std::fs::create_dir_all(&dir).map_err(io("cannot create the cluster folder"))?;
    let run_as = unprivileged_user();
    let mut running = Running { child: None, dir: dir.clone(), bin_dir: bin_dir.clone(), run_as };
    match start(spec, ctx, &bin_dir, &dir, &data, run_as, &mut running).await {
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
    dir: &Path,
    data: &Path,
    run_as: Option<(u32, u32)>,
    running: &mut Running,
) -> Result<Target, TargetError> {
    let io = |what: &'static str| move |e: std::io::Error| TargetError::Config { message: format!("{what}: {e}") };
    let password = Secret::random_password();
    ctx.redactor.register(&password);
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, password.expose()).map_err(io("cannot write the password file"))?;
    if let Some(ids) = run_as {
        chown_all(dir, ids).map_err(io("cannot hand the cluster folder to an unprivileged user"))?;
    }
    (ctx.progress)("initdb");
    let mut initdb = tokio::process::Command::new(bin_dir.join("initdb"));
    initdb
        .arg("-D")
        .arg(data)
        .args(["-U", SUPERUSER, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .stdin(Stdio::null());
    if let Some((uid, gid)) = run_as {
        initdb.uid(uid).gid(gid);
    }
    let out = initdb.output().await.map_err(io("cannot run initdb"))?;
    let _ = std::fs::remove_file(&pwfile);
    if !out.status.success() {
        return Err(TargetError::Start {
            image: bin_dir.display().to_string(),
            message: format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }

    let port = free_port().map_err(io("cannot find a free port"))?;
    let mut overrides = spec.settings.clone();
    overrides.entry("shared_buffers".into()).or_insert_with(|| "128MB".into());
    let tuning = tuning::throwaway(Resources::detect(), &overrides);
    let log = std::fs::File::create(dir.join("postgres.log")).map_err(io("cannot create the server log"))?;
    if let Some(ids) = run_as {
        chown_all(&dir.join("postgres.log"), ids).ok();
    }
    let mut postgres = tokio::process::Command::new(bin_dir.join("postgres"));
    postgres
        .arg("-D")
        .arg(data)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io("cannot share the server log"))?)
        .stderr(log)
        .kill_on_drop(true);
    for (key, value) in &tuning.settings {
        postgres.arg("-c").arg(format!("{key}={value}"));
    }
    if let Some((uid, gid)) = run_as {
        postgres.uid(uid).gid(gid);
    }
    (ctx.progress)(&format!("starting PostgreSQL on 127.0.0.1:{port}"));
    running.child = Some(postgres.spawn().map_err(io("cannot start postgres"))?);

    let options = PgConnectOptions::new_without_pgpass()
        .host("127.0.0.1")
        .port(port)
        .username(SUPERUSER)
        .password(password.expose())
        .database("postgres")
        .ssl_mode(PgSslMode::Disable);
    let started = Instant::now();
    loop {
        if let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options)).await {
            conn.close().await.ok();
            break;
        }
        let exited = running.child.as_mut().and_then(|c| c.try_wait().ok().flatten()).is_some();
        let log = || {
            let text = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            ctx.redactor.redact(&lines[lines.len().saturating_sub(15)..].join("\n"))
        };
        if exited {
            return Err(TargetError::Exited { logs: log() });
        }
        if started.elapsed() >= spec.startup_timeout {
            return Err(TargetError::NotReady {
                timeout: spec.startup_timeout,
                last_error: "no connection".into(),
                logs: log(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Target {
        host: "127.0.0.1".into(),
        port,
        user: SUPERUSER.into(),
        password: password.clone(),
        maintenance_db: "postgres".into(),
        ssl_mode: PgSslMode::Disable,
        info: TargetInfo {
            kind: "local".into(),
            image: Some(bin_dir.display().to_string()),
            address: format!("127.0.0.1:{port}"),
            settings: tuning.settings,
            ..TargetInfo::default()
        },
        tools: Tools::Local {
            bin_dir: bin_dir.to_owned(),
            host: "127.0.0.1".into(),
            port,
            user: SUPERUSER.into(),
            password,
            ssl_mode: "disable".into(),
            run_as,
        },
        database_suffix: None,
        created: Arc::new(Mutex::new(Created::default())),
    })
}

impl Running {
    /// Stops the server (immediately: nothing in it must survive) and removes its folder.
    pub async fn remove(&mut self) -> Result<String, TargetError> {
        if let Some(mut child) = self.child.take() {
            let mut stop = tokio::process::Command::new(self.bin_dir.join("pg_ctl"));
            stop.arg("stop")
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "-w"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some((uid, gid)) = self.run_as {
                stop.uid(uid).gid(gid);
            }
            let stopped = tokio::time::timeout(Duration::from_secs(20), stop.status()).await;
            if !matches!(stopped, Ok(Ok(s)) if s.success()) {
                let _ = child.kill().await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
        std::fs::remove_dir_all(&self.dir)
            .map_err(|e| TargetError::Teardown { message: format!("cannot remove `{}`: {e}", self.dir.display()) })?;
        Ok(format!("stopped the local server and removed {}", self.dir.display()))
    }
}
