//! A backup is hostile until proven otherwise: whatever SQL it holds runs on the target as the
//! restore's role. This module says how a target holds it, for the reports (auditors ask for
//! restore tests on systems segregated from the source), proves it from inside the server, and
//! explains the errors a contained attempt leaves behind.
//!
//! Facts are fetched in one query ([`OBSERVE_SQL`], run by [`observe`]) and judged without I/O
//! ([`Observed::judge`], [`explain`]), so both are tested by tables.

use crate::outcome::Observed;

use sqlx::postgres::PgConnectOptions;

use super::error::{Breach, TargetError};
use super::noexec;

/// Reads, as the server's own process, what [`Observed`] holds: its status, network, shell, the
/// mounts it sees and the folders it writes (then [`super::noexec`] proves what it must).
pub(crate) const OBSERVE_SQL: &str = "SELECT pg_catalog.pg_read_file('/proc/self/status'), pg_catalog.pg_read_file('/proc/net/dev'), \
     coalesce(pg_catalog.pg_read_file('/proc/net/route', 0, 1048576, true), ''), \
     (pg_catalog.pg_stat_file('/bin/sh', true)).size IS NOT NULL, \
     coalesce(pg_catalog.pg_read_file('/proc/self/mountinfo', 0, 4194304, true), ''), \
     pg_catalog.current_setting('data_directory'), pg_catalog.current_setting('unix_socket_directories')";

impl Observed {
    /// Parses what `OBSERVE_SQL` returned.
    pub fn parse(status: &str, net_dev: &str, routes: &str, shell: bool) -> Observed {
        let field = |name: &str| {
            status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned()).unwrap_or_default()
        };
        let uid = field("Uid:").split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
        let interfaces =
            net_dev.lines().skip(2).filter_map(|l| l.split_once(':')).map(|(name, _)| name.trim().to_owned()).collect();
        Observed {
            interfaces,
            routes: routes.lines().skip(1).filter(|l| !l.trim().is_empty()).count(),
            uid,
            cap_eff: field("CapEff:"),
            no_new_privs: field("NoNewPrivs:") == "1",
            shell,
            ..Observed::default()
        }
    }

    /// Whether this is what a sandbox must look like from inside; if not, what is wrong.
    pub(crate) fn judge(&self) -> Result<(), Breach> {
        let mut wrong = Vec::new();
        if let Some(other) = self.interfaces.iter().find(|i| *i != "lo") {
            wrong.push(format!("it has the network interface `{other}`"));
        }
        if self.routes > 0 {
            wrong.push(format!("it has {} network route(s)", self.routes));
        }
        if self.uid == 0 {
            wrong.push("it runs as root".to_owned());
        }
        if !self.cap_eff.trim_start_matches('0').is_empty() {
            wrong.push(format!("it holds capabilities (CapEff {})", self.cap_eff));
        }
        if !self.no_new_privs {
            wrong.push("it may gain privileges (no_new_privs is off)".to_owned());
        }
        if self.shell {
            wrong.push("it has a shell (`/bin/sh`)".to_owned());
        }
        if self.noexec.is_empty() {
            wrong.push("its data directory is not on a `noexec` mount, so a backup could write a library there and load it as native code".to_owned());
        }
        if !self.exec_writable.is_empty() {
            wrong.push(format!(
                "it can write files it could load as native code in `{}` (neither `noexec` nor read-only)",
                self.exec_writable.join("`, `")
            ));
        }
        if wrong.is_empty() { Ok(()) } else { Err(Breach { wrong }) }
    }

    /// One line for the reports.
    pub fn summary(&self) -> String {
        let list = |folders: &[String]| if folders.is_empty() { "none".to_owned() } else { folders.join(", ") };
        let mut line = format!(
            "interfaces: {}; routes: {}; uid {}; CapEff {}; no_new_privs {}; /bin/sh {}; noexec: {}; a write refused: {}",
            self.interfaces.join(", "),
            self.routes,
            self.uid,
            self.cap_eff,
            if self.no_new_privs { "on" } else { "off" },
            if self.shell { "present" } else { "absent" },
            list(&self.noexec),
            list(&self.unwritable),
        );
        if !self.exec_writable.is_empty() {
            line.push_str(&format!("; writable and executable: {}", self.exec_writable.join(", ")));
        }
        line
    }
}

/// Reads, from inside the server, what its sandbox looks like.
pub(crate) async fn observe(options: &PgConnectOptions) -> Result<Observed, TargetError> {
    use sqlx::Connection;
    let fail = |source: sqlx::Error| TargetError::Unobservable { source };
    // A physical backup's cluster is the backup's: the probe pins what any role may.
    let options = crate::session::pinned(options.clone(), crate::session::Pins::default());
    let mut conn = sqlx::PgConnection::connect_with(&options).await.map_err(fail)?;
    let row: (String, String, String, bool, String, String, String) =
        sqlx::query_as(OBSERVE_SQL).fetch_one(&mut conn).await.map_err(fail)?;
    let (status, net_dev, routes, shell, mountinfo, data, sockets) = row;
    let plan = noexec::plan(&noexec::parse_mountinfo(&mountinfo), &noexec::written(&data, &sockets));
    let proven = noexec::prove(&mut conn, &plan.to_prove).await.map_err(fail)?;
    conn.close().await.ok();
    Ok(Observed {
        noexec: plan.noexec,
        unwritable: proven.refused,
        exec_writable: proven.exec_writable,
        ..Observed::parse(&status, &net_dev, &routes, shell)
    })
}

/// Settings a backup wrote with `ALTER SYSTEM` (pg_dump never writes it): the query that finds
/// them in a target whose `postgresql.auto.conf` started empty.
pub(crate) const ALTERED_SETTINGS_SQL: &str = "SELECT name || ' = ' || coalesce(setting, '') FROM pg_file_settings \
     WHERE sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno";

/// What a backup tried, read from the error PostgreSQL gave when the sandbox held (or the
/// restore role's privileges refused) it; `None` for ordinary errors.
pub(crate) fn explain(code: Option<&str>, message: &str) -> Option<&'static str> {
    let m = message;
    let denied = code == Some("42501")
        && (m.contains("pg_execute_server_program")
            || m.contains("pg_read_server_files")
            || m.contains("pg_write_server_files")
            || m.contains("must be superuser")
            || m.starts_with("permission denied for function")
            || m.starts_with("permission denied to COPY")
            || m.starts_with("permission denied to create extension")
            || m.starts_with("permission denied to set parameter"));
    let tried = if denied {
        "the backup tried something only a superuser may do; the restore's role is not one, so it was refused"
    } else if m.starts_with("could not execute command") || m.contains("program \"") && m.contains("failed") {
        "the backup tried to run a program on the target; the target has no shell and no programs but PostgreSQL's own, so nothing ran"
    } else if m.contains("for writing")
        || m.starts_with("could not create server file")
        || m.contains("Read-only file system")
    {
        "the backup tried to write a file outside the data directory; there the target's file system is read-only or not there, so nothing was written"
    } else if m.starts_with("could not open file")
        || m.starts_with("could not stat file")
        || m.starts_with("could not open directory")
        || m.starts_with("could not open server file")
    {
        "the backup tried to read a file of the machine; the target sees only its own files"
    } else if code == Some("53200") || m.starts_with("out of memory") {
        "the backup asked for more memory than the target may use; the limit stopped it"
    } else if m.starts_with("could not fork") || m.contains("Resource temporarily unavailable") {
        "the backup started more processes than the target may run; the limit stopped it"
    } else if m.starts_with("could not establish connection") || m.starts_with("could not connect to") {
        "the backup tried to open a network connection; the target has no network, so it reached nothing"
    } else if m.starts_with("could not load library") && m.contains("failed to map segment") {
        "the backup tried to load native code it wrote (a library in a folder the server writes); that folder is mounted noexec, so the kernel refused to map it and none of its code ran"
    } else {
        return None;
    };
    Some(tried)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tpostgres\nUid:\t100\t100\t100\t100\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n";
    const NET_LO: &str = "Inter-|   Receive\n face |bytes\n    lo:       0       0\n";
    const ROUTE_HEADER: &str = "Iface\tDestination\tGateway\n";

    fn sandbox() -> Observed {
        Observed {
            noexec: vec!["/var/lib/pgdrill/data".into()],
            ..Observed::parse(STATUS, NET_LO, ROUTE_HEADER, false)
        }
    }

    #[test]
    fn a_sandbox_seen_from_inside() {
        let seen = sandbox();
        assert_eq!(seen.interfaces, ["lo"]);
        assert_eq!((seen.uid, seen.routes, seen.no_new_privs), (100, 0, true));
        assert_eq!(seen.judge(), Ok(()));
        let parsed =
            Observed::parse(STATUS, &format!("{NET_LO}  eth0: 1 2\n"), &format!("{ROUTE_HEADER}eth0\t0\t0\n"), true);
        assert_eq!((parsed.interfaces.len(), parsed.routes, parsed.shell), (2, 1, true));
        assert!(
            parsed.judge().unwrap_err().to_string().contains("not on a `noexec` mount"),
            "nothing proven: not a sandbox"
        );
        let line = Observed { unwritable: vec!["/run/postgresql".into()], ..sandbox() }.summary();
        assert!(line.ends_with("noexec: /var/lib/pgdrill/data; a write refused: /run/postgresql"), "{line}");
    }

    #[test]
    fn what_breaks_a_sandbox_is_named() {
        let cases: [(&str, Observed); 8] = [
            ("network interface `eth0`", Observed { interfaces: vec!["lo".into(), "eth0".into()], ..sandbox() }),
            ("1 network route(s)", Observed { routes: 1, ..sandbox() }),
            ("its data directory is not on a `noexec` mount", Observed { noexec: Vec::new(), ..sandbox() }),
            ("load as native code in `/dev/shm`", Observed { exec_writable: vec!["/dev/shm".into()], ..sandbox() }),
            ("runs as root", Observed { uid: 0, ..sandbox() }),
            ("CapEff 00000000a80425fb", Observed { cap_eff: "00000000a80425fb".into(), ..sandbox() }),
            ("no_new_privs is off", Observed { no_new_privs: false, ..sandbox() }),
            ("has a shell", Observed { shell: true, ..sandbox() }),
        ];
        for (expected, seen) in cases {
            let err = seen.judge().expect_err(expected).to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn contained_attempts_are_explained() {
        let cases = [
            (None, "could not execute command \"id\": No such file or directory", Some("run a program")),
            (None, "could not open file \"/tmp/x\" for writing: Read-only file system", Some("write a file")),
            (None, "could not open file \"/home/ci/x\" for writing: No such file or directory", Some("write a file")),
            (None, "could not create server file \"/tmp/lo\": Read-only file system", Some("write a file")),
            (None, "could not open file \"/home/ci/.aws/credentials\" for reading: No such file", Some("read a file")),
            (Some("53200"), "out of memory", Some("more memory")),
            (None, "could not fork new process for connection: Resource temporarily unavailable", Some("processes")),
            (Some("08001"), "could not establish connection", Some("network connection")),
            (
                Some("58P01"),
                "could not load library \"/var/lib/pgdrill/data/x.so\": /var/lib/pgdrill/data/x.so: failed to map segment from shared object",
                Some("mounted noexec"),
            ),
            (Some("58P01"), "could not load library \"/x.so\": /x.so: invalid ELF header", None),
            (Some("42501"), "permission denied to COPY to or from an external program", Some("only a superuser")),
            (
                Some("42501"),
                "must be superuser or have privileges of the pg_execute_server_program role to COPY to or from an external program",
                Some("only a superuser"),
            ),
            (Some("42501"), "permission denied for function pg_read_file", Some("only a superuser")),
            (Some("42501"), "permission denied to create extension \"dblink\"", Some("only a superuser")),
            (Some("42501"), "permission denied to set parameter \"archive_command\"", Some("only a superuser")),
            (Some("42501"), "permission denied for table users", None),
            (Some("42P01"), "relation \"public.nowhere\" does not exist", None),
        ];
        for (code, message, expected) in cases {
            let got = explain(code, message);
            match expected {
                Some(part) => assert!(got.is_some_and(|g| g.contains(part)), "{message}: {got:?}"),
                None => assert_eq!(got, None, "{message}"),
            }
        }
    }
}
