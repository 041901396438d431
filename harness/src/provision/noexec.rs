//! Native code a backup writes never runs in the server, proven from inside: every folder the
//! server writes is on a `noexec` mount, or refuses its writes.
//!
//! A superuser can write any bytes into a folder the server writes (`lo_export`, `COPY ... TO`)
//! and load them as a library (`LOAD`, `CREATE FUNCTION ... LANGUAGE C`, whose constructors and
//! `_PG_init` run at load), and code inside the server can make every later answer lie. On a
//! `noexec` mount the kernel refuses to map the file executable: the load fails before any of
//! the library's code runs.
//!
//! Proven from inside, as the server sees it: its data directory and socket folders, found in
//! `/proc/self/mountinfo` ([`plan`]); then each of them that is not on a `noexec` mount, and the
//! root of every other mount that is neither read-only nor `noexec`, is written to by the server
//! itself, which must be refused ([`prove`]).

use sqlx::postgres::PgConnection;

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Where it is mounted, as the server sees it.
    pub point: String,
    pub fstype: String,
    pub read_only: bool,
    pub noexec: bool,
}

/// Reads `/proc/self/mountinfo` (`id parent dev root point options [tags] - type source super`).
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let (point, options) = (fields.get(4)?, fields.get(5)?.split(',').collect::<Vec<_>>());
            let mut right = right.split(' ');
            let fstype = right.next()?.to_owned();
            let superblock = right.nth(1).unwrap_or_default();
            Some(Mount {
                point: unescape(point),
                fstype,
                read_only: options.contains(&"ro") || superblock.split(',').any(|o| o == "ro"),
                noexec: options.contains(&"noexec"),
            })
        })
        .collect()
}

/// A mount point as mountinfo writes it: space, tab, newline and backslash in octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount `path` is on: the longest mount point it lies under, the last mounted of equals.
fn mount_of<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let under = |point: &str| {
        point == "/" || path == point || path.strip_prefix(point).is_some_and(|rest| rest.starts_with('/'))
    };
    mounts.iter().filter(|m| under(&m.point)).max_by_key(|m| m.point.len())
}

/// Kernel file systems where the server can create no file of its own.
const PSEUDO: [&str; 14] = [
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "binfmt_misc",
];

/// What is known before any write, and what a write must prove.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The folders the server writes that are on a `noexec` mount.
    pub noexec: Vec<String>,
    /// Where the server could map a file executable, if it can write there.
    pub to_prove: Vec<String>,
}

/// The plan for a server that writes `written` (its data directory, its socket folders) and
/// sees `mounts`.
pub(crate) fn plan(mounts: &[Mount], written: &[String]) -> Plan {
    let mut plan = Plan::default();
    for folder in written {
        match mount_of(mounts, folder) {
            Some(m) if m.noexec => plan.noexec.push(folder.clone()),
            _ => plan.to_prove.push(folder.clone()),
        }
    }
    let kernel = |m: &Mount| {
        PSEUDO.contains(&m.fstype.as_str())
            || ["/proc", "/sys"].iter().any(|k| m.point == *k || m.point.starts_with(&format!("{k}/")))
    };
    for m in mounts.iter().filter(|m| !m.read_only && !m.noexec && !kernel(m)) {
        if !plan.to_prove.contains(&m.point) && !plan.noexec.contains(&m.point) {
            plan.to_prove.push(m.point.clone());
        }
    }
    plan
}

/// The folders the server writes, from its settings: `data_directory` and each of
/// `unix_socket_directories` (an abstract socket, `@name`, is no folder).
pub(crate) fn written(data_directory: &str, socket_directories: &str) -> Vec<String> {
    let mut folders = vec![data_directory.trim_end_matches('/').to_owned()];
    for dir in socket_directories.split(',').map(|d| d.trim().trim_matches('"')) {
        if !dir.is_empty() && !dir.starts_with('@') && !folders.iter().any(|f| f == dir) {
            folders.push(dir.trim_end_matches('/').to_owned());
        }
    }
    folders
}

/// What the writes found: the folders of [`Plan::to_prove`] that refused them, and those that
/// did not (where a backup could write a library and load it).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Proven {
    pub refused: Vec<String>,
    pub exec_writable: Vec<String>,
}

/// Writes a file of a fresh name into each folder to prove, as the server (a superuser's
/// `COPY ... TO`): proven when the system refuses it (a file error); anything else (the write
/// done, or refused by privileges rather than by the file system) leaves the folder writable.
/// A folder that is no directory is skipped (nothing can be created in it).
pub(crate) async fn prove(conn: &mut PgConnection, to_prove: &[String]) -> Result<Proven, sqlx::Error> {
    use sqlx::Executor;
    let mut proven = Proven::default();
    for folder in to_prove {
        let quoted = crate::pg::quote_literal(folder);
        let is_dir: Option<bool> =
            sqlx::query_scalar(&format!("SELECT (pg_catalog.pg_stat_file({quoted}, true)).isdir"))
                .fetch_one(&mut *conn)
                .await?;
        if is_dir != Some(true) {
            continue;
        }
        let probe = format!("{}/.pgdrill-write-probe-{:016x}", folder.trim_end_matches('/'), rand::random::<u64>());
        let copy = format!("COPY (SELECT 1) TO {}", crate::pg::quote_literal(&probe));
        match conn.execute(sqlx::raw_sql(&copy)).await {
            Err(sqlx::Error::Database(e)) if refused_by_files(e.message()) => proven.refused.push(folder.clone()),
            Err(sqlx::Error::Database(_)) | Ok(_) => proven.exec_writable.push(folder.clone()),
            Err(other) => return Err(other),
        }
    }
    Ok(proven)
}

/// Whether a `COPY ... TO` file failed because the file system refused it (permissions, a
/// read-only mount, no such folder), not for want of privileges.
fn refused_by_files(message: &str) -> bool {
    message.starts_with("could not open file")
        && ["Permission denied", "Read-only file system", "No such file or directory", "Not a directory"]
            .iter()
            .any(|why| message.contains(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a container target's server sees (Docker 20.10, the data on an overlay volume).
    const CONTAINER: &str = "\
69 45 0:39 / / ro,noatime master:2 - fuse.fuse-overlayfs fuse-overlayfs rw,user_id=0
70 69 0:41 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
71 69 0:42 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
72 71 0:43 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5
73 69 0:44 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
74 73 0:45 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
85 71 0:46 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
86 69 254:0 /var/lib/docker/containers/x/hosts /etc/hosts ro,relatime - ext4 /dev/vda rw
89 69 0:40 / /var/lib/pgdrill/data rw,nosuid,nodev,noexec,relatime - overlay overlay rw,lowerdir=/t/lower
90 69 254:0 /tmp/pgdrill-x-target/socket /run/postgresql rw,relatime - ext4 /dev/vda rw
91 69 0:47 / /usr/bin ro,relatime - tmpfs tmpfs ro,size=4k
51 70 0:42 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
";

    #[test]
    fn mountinfo_is_read_as_the_kernel_writes_it() {
        let mounts = parse_mountinfo(CONTAINER);
        assert_eq!(mounts.len(), 12);
        let data = mount_of(&mounts, "/var/lib/pgdrill/data/base/1").unwrap();
        assert_eq!((data.point.as_str(), data.noexec, data.read_only), ("/var/lib/pgdrill/data", true, false));
        assert!(mount_of(&mounts, "/etc/hosts").unwrap().read_only);
        assert_eq!(mount_of(&mounts, "/var/lib/pgdrill/database").unwrap().point, "/", "a prefix is not a folder");
        let odd = parse_mountinfo("1 0 8:1 / /mnt/with\\040space\\134x rw,noexec - ext4 /dev/sda1 rw\n");
        assert_eq!(odd[0].point, "/mnt/with space\\x");
        let ro_super = parse_mountinfo("1 0 8:1 / /m rw - ext4 /dev/sda1 ro,relatime\n");
        assert!(ro_super[0].read_only, "a read-only superblock is read-only");
    }

    #[test]
    fn the_folders_the_server_writes_are_noexec_or_must_refuse_a_write() {
        let mounts = parse_mountinfo(CONTAINER);
        let written = written("/var/lib/pgdrill/data", "/var/run/postgresql");
        let plan = plan(&mounts, &written);
        assert_eq!(plan.noexec, ["/var/lib/pgdrill/data"]);
        // The socket folder's path leads through a link (/var/run): it is proven by a write, as
        // are the writable mounts that let files be mapped executable (/dev, the socket's).
        assert_eq!(plan.to_prove, ["/var/run/postgresql", "/dev", "/run/postgresql"]);

        let exec_data = CONTAINER.replace("rw,nosuid,nodev,noexec,relatime - overlay", "rw,relatime - overlay");
        let plan = super::plan(&parse_mountinfo(&exec_data), &written);
        assert!(plan.noexec.is_empty());
        assert_eq!(plan.to_prove[0], "/var/lib/pgdrill/data");

        assert_eq!(super::plan(&[], &written).to_prove, written, "nothing seen: nothing is proven");
    }

    #[test]
    fn socket_folders_are_read_from_the_setting() {
        assert_eq!(written("/d/", "/tmp/x, \"/run/y\", @abstract, /d"), ["/d", "/tmp/x", "/run/y"]);
    }

    #[test]
    fn only_a_file_error_proves_a_folder_unwritable() {
        for refused in [
            "could not open file \"/run/postgresql/.p\" for writing: Permission denied",
            "could not open file \"/x/.p\" for writing: Read-only file system",
        ] {
            assert!(refused_by_files(refused), "{refused}");
        }
        assert!(!refused_by_files(
            "must be superuser or have privileges of the pg_write_server_files role to COPY to a file"
        ));
    }
}
