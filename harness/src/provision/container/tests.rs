//! The container target's tests: the container it asks Docker for (sandboxed, labelled, its
//! mounts), the server's arguments and settings, the backup's mount, and what the reports say of
//! its isolation.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::Duration;

use testcontainers::Image;
use testcontainers::bollard::models::HostConfig;
use testcontainers::core::AccessMode;

use super::*;
use crate::disk::DiskLimit;
use crate::provision::PhysicalData;
use crate::secret::Redactor;

const DRILL: &str = "0123abcd4567ef89";
/// A user that owns none of the test's files.
const SERVER: Ids = Ids { uid: 70_001, gid: 70_002 };

fn limits() -> Limits {
    Limits { memory: 8 << 30, data_per_process: 4 << 30, processes: 200, cpus: 4, shared: None }
}

fn spec() -> ContainerSpec {
    ContainerSpec {
        image: None,
        version: None,
        startup_timeout: Duration::from_secs(60),
        settings: [("work_mem", "64MB"), ("max_wal_size", "1GB")].map(|(k, v)| (k.into(), v.into())).into(),
        memory: None,
        processes: None,
        disk: None,
        share: None,
    }
}

fn context<'a>(
    redactor: &'a Redactor,
    backup: Option<&'a Path>,
    physical: Option<&'a PhysicalData>,
) -> ProvisionContext<'a> {
    ProvisionContext {
        drill_id: DRILL,
        scenario: "orders",
        redactor,
        progress: &|_| {},
        backup,
        trusted: None,
        backup_major: Some(17),
        physical,
        clone: None,
        restarts: true,
    }
}

fn file(dir: &Path, name: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, b"PGDMP").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// The server listens on its socket, and on the container's own loopback only where the image
/// carries the relay: the arguments that say so come after the scenario's settings, so that the
/// last `-c` of each, which PostgreSQL takes, is pgdrill's.
#[test]
fn the_servers_arguments_end_with_loopback_or_no_tcp_and_the_mounted_socket() {
    let settings: BTreeMap<String, String> =
        [("listen_addresses", "*"), ("work_mem", "64MB")].map(|(k, v)| (k.into(), v.into())).into();
    let tuning = tuning::Tuning { settings, shm_size_bytes: 0 };
    for (relay, listen) in [(None, "listen_addresses="), (Some("/usr/lib/pgdrill/socat"), "listen_addresses=127.0.0.1")]
    {
        assert_eq!(
            server_args(&tuning, relay),
            [
                "-c",
                "listen_addresses=*",
                "-c",
                "work_mem=64MB",
                "-c",
                listen,
                "-c",
                "unix_socket_directories=/var/run/postgresql"
            ]
        );
    }
}

#[test]
fn a_standbys_settings_win_over_the_scenarios_within_the_disk_limit() {
    let redactor = Redactor::new();
    let disk = DiskLimit { bytes: 10 << 30, shown: "10GB".into() };
    let fresh = tuning_for(&spec(), &context(&redactor, None, None), &limits(), &disk);
    assert_eq!(fresh.settings["work_mem"], "64MB");
    assert_eq!(fresh.settings["max_wal_size"], "1GB", "the scenario's over the throwaway's");
    assert_eq!(fresh.settings["temp_file_limit"], format!("{}kB", (10u64 << 30) / 1024));
    assert_eq!(fresh.settings["fsync"], "off");

    let physical = PhysicalData {
        major: 17,
        data: PathBuf::from("/nowhere"),
        settings: vec![("max_wal_size".into(), "2GB".into()), ("recovery_target_lsn".into(), "0/3000060".into())],
    };
    let standby = tuning_for(&spec(), &context(&redactor, None, Some(&physical)), &limits(), &disk);
    assert_eq!(standby.settings["max_wal_size"], "2GB");
    assert_eq!(standby.settings["recovery_target_lsn"], "0/3000060");
    assert_eq!(standby.settings["work_mem"], "64MB");
}

/// What Docker is asked for: the server as an unprivileged user with nothing to gain, a
/// read-only root, labels teardown finds it by, the socket folder, the data (its noexec volume)
/// and the backup (read-only) mounted, and a host configuration with no network, its limits and
/// no programs.
#[test]
fn the_container_asked_for_is_a_labelled_sandbox() {
    let redactor = Redactor::new();
    let backup = Path::new("/srv/backups/orders.dump");
    let ctx = context(&redactor, Some(backup), None);
    let run_dir = RunDir { outer: PathBuf::from("/tmp/pgdrill-0123abcd4567-target") };
    let sandbox = Sandbox {
        user: SERVER,
        limits: limits(),
        group: Some(4242),
        shm_size: 1 << 30,
        data: Mount::volume_mount("pgdrill-data-0123abcd4567", "/var/lib/postgresql/data"),
        backup: Some((backup, "/pgdrill/backup/orders.dump")),
    };
    let cmd = vec!["-c".to_owned(), "listen_addresses=".to_owned()];
    let request = request(&spec(), &ctx, "pgdrill/postgres:17", cmd.clone(), sandbox, &run_dir);

    assert_eq!((request.image().name(), request.image().tag()), ("pgdrill/postgres", "17"));
    assert_eq!(request.cmd().collect::<Vec<_>>(), cmd);
    assert_eq!(request.container_name().as_deref(), Some("pgdrill-orders-0123abcd"));
    assert_eq!(request.user(), Some("70001:70002"));
    assert!(request.readonly_rootfs());
    assert_eq!(request.cap_drop(), Some(&vec!["ALL".to_owned()]));
    assert_eq!(request.security_opts(), Some(&vec!["no-new-privileges".to_owned()]));
    assert_eq!(request.shm_size(), Some(1 << 30));
    assert_eq!(request.labels().get(DRILL_LABEL).map(String::as_str), Some(DRILL));
    assert_eq!(request.labels().get("org.pgdrill.scenario").map(String::as_str), Some("orders"));
    assert!(request.labels().contains_key(OWNER_LABEL));
    let mounts: Vec<(Option<&str>, Option<&str>, AccessMode)> =
        request.mounts().map(|m| (m.source(), m.target(), m.access_mode())).collect();
    assert_eq!(
        mounts,
        [
            (Some("/tmp/pgdrill-0123abcd4567-target/socket"), Some(SOCKET_DIR), AccessMode::ReadWrite),
            (Some("pgdrill-data-0123abcd4567"), Some("/var/lib/postgresql/data"), AccessMode::ReadWrite),
            (Some("/srv/backups/orders.dump"), Some("/pgdrill/backup/orders.dump"), AccessMode::ReadOnly),
        ]
    );

    let mut host = HostConfig::default();
    (request.host_config_modifier().expect("the sandbox's host configuration"))(&mut host);
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!((host.publish_all_ports, host.port_bindings), (Some(false), None));
    assert_eq!((host.memory, host.memory_swap, host.pids_limit), (Some(8 << 30), Some(8 << 30), Some(200)));
    assert_eq!(host.group_add, Some(vec!["4242".to_owned()]));
    let tmpfs = host.tmpfs.unwrap();
    assert_eq!(tmpfs.len(), NO_PROGRAMS.len());
    assert!(NO_PROGRAMS.iter().all(|p| tmpfs[*p] == "ro,size=4k"), "{tmpfs:?}");
    let log = host.log_config.unwrap().config.unwrap();
    assert_eq!((log["max-size"].as_str(), log["max-file"].as_str()), ("10m", "2"));
}

#[test]
fn no_backup_is_mounted_when_there_is_none_to_read() {
    let redactor = Redactor::new();
    assert!(matches!(backup_mount(&context(&redactor, None, None), SERVER), Ok((None, None))));
}

/// A dump readable by anyone is mounted as it is; one its group may read gives the server that
/// group; one only its owner reads is not mounted (pgdrill feeds it to pg_restore's stdin).
#[test]
fn a_dump_is_mounted_read_only_with_the_group_that_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let redactor = Redactor::new();
    let open = file(dir.path(), "open.dump", 0o644);
    let (mount, group) = backup_mount(&context(&redactor, Some(&open), None), SERVER).unwrap();
    let inside = "/pgdrill/backup/open.dump".to_owned();
    assert_eq!(mount, Some((open.clone(), std::fs::canonicalize(&open).unwrap(), inside)));
    assert_eq!(group, None);

    let grouped = file(dir.path(), "grouped.dump", 0o640);
    let (mount, group) = backup_mount(&context(&redactor, Some(&grouped), None), SERVER).unwrap();
    assert!(mount.is_some());
    assert_eq!(group, Some(std::fs::metadata(&grouped).unwrap().gid()));

    let private = file(dir.path(), "private.dump", 0o600);
    assert!(matches!(backup_mount(&context(&redactor, Some(&private), None), SERVER), Ok((None, None))));
}

#[test]
fn a_folder_the_server_cannot_read_is_refused_with_its_owner_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let redactor = Redactor::new();
    let folder = dir.path().join("orders.dir");
    std::fs::create_dir(&folder).unwrap();
    file(&folder, "toc.dat", 0o600);
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let meta = std::fs::metadata(&folder).unwrap();
    let error = backup_mount(&context(&redactor, Some(&folder), None), SERVER).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "the target runs as an unprivileged user and cannot read `{}` (owner uid {}, group {}, mode 0700) (hint: make it readable by its group or by others; the container is given the file's group)",
            std::fs::canonicalize(&folder).unwrap().display(),
            meta.uid(),
            meta.gid()
        )
    );

    let missing = dir.path().join("gone.dump");
    let error = backup_mount(&context(&redactor, Some(&missing), None), SERVER).unwrap_err();
    assert_eq!(error.to_string(), format!("cannot resolve `{}` to mount it", missing.display()));
}

#[test]
fn the_reports_describe_the_isolation_asked_for_and_observed() {
    let observed = Observed { uid: 999, no_new_privs: true, cap_eff: "0000000000000000".into(), ..Observed::default() };
    let tuning = tuning::Tuning { settings: BTreeMap::new(), shm_size_bytes: 512 << 20 };
    let with_backup = isolation(observed.clone(), &tuning, &limits(), true);
    assert!(with_backup.contained);
    assert_eq!(with_backup.user, "uid 999, never root");
    assert!(
        with_backup
            .filesystem
            .contains("/dev/shm (512 MiB); the data directory is an overlay mount over that folder, mounted noexec")
    );
    assert!(with_backup.filesystem.ends_with("nothing else of this machine mounted but the backup, read-only"));
    assert_eq!(
        with_backup.programs,
        "none but PostgreSQL's own: /usr/bin, /usr/sbin, /usr/local/bin, /usr/local/sbin are empty and read-only, so there is no shell"
    );
    assert_eq!(with_backup.limits, limits().describe("the container"));
    assert_eq!(with_backup.observed, Some(observed.clone()));
    let without = isolation(observed, &tuning, &limits(), false);
    assert!(without.filesystem.ends_with("nothing else of this machine mounted"), "{}", without.filesystem);
}
