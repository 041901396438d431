//! A source PostgreSQL server for physical backups, shared by the drills (`tests/drills/`, as
//! `crate::source_server`) and the recovery benchmark (`benches/recovery.rs`), which include
//! this file with `#[path]`: a container of the project's image archiving its WAL, with data
//! checksums on, that the caller backs up with pg_basebackup or pgBackRest.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A number unique within this process, for container names.
fn next_number() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A source server of the project's image for physical backups: no network, `wal_level=replica`
/// and `archive_mode` on, data checksums on (as PostgreSQL 18 makes them by default, and the
/// project's images since r7), `fsync` off, database `books` with an empty
/// `public.ledger`; its container runs until this is dropped. pg_basebackup's source and
/// pgBackRest's are made on it.
pub(crate) struct SourceServer {
    /// Holds the folders the server writes into and the files it reads.
    pub dir: tempfile::TempDir,
    /// The server's container.
    pub name: String,
    /// The image it runs, whose postgres user owns what the server wrote.
    pub image: String,
    /// Folders of `dir` the server's user writes into (removed from inside on drop).
    writable: Vec<String>,
}

/// A file the source server reads: written into its folder, mounted read-only.
pub(crate) struct SourceFile<'a> {
    pub name: &'a str,
    pub text: &'a str,
    /// Where the container reads it.
    pub inside: &'a str,
}

/// What [`SourceServer::write_around_target`] recorded between the two batches of rows.
pub(crate) struct Around {
    /// The moment between the batches: a recovery to it holds `before` only.
    pub target_time: String,
    /// The WAL location between them (a restore point `between` is made there too).
    pub target_lsn: String,
    /// The transaction that wrote the `after` batch.
    pub after_xid: String,
    /// The last segment closed after them, which the caller waits for in its archive.
    pub last_segment: String,
}

impl SourceServer {
    /// Starts a server of `image` (`kind` names its container) with the folders `writable` of
    /// its folder mounted at `/<name>`, `files` mounted read-only, and `settings` (`name=value`)
    /// after the common ones; waits until it answers and makes `books.public.ledger`.
    pub(crate) fn start(kind: &str, image: &str, writable: &[&str], files: &[SourceFile], settings: &[&str]) -> Self {
        Self::start_in(kind, image, (writable, files, settings), &["--network", "none"])
    }

    /// [`SourceServer::start`] with `docker run` options instead of no network at all (the
    /// host's network, for a program of the source that talks to a server on loopback, and the
    /// environment it needs).
    pub(crate) fn start_in(
        kind: &str,
        image: &str,
        (writable, files, settings): (&[&str], &[SourceFile], &[&str]),
        options: &[&str],
    ) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let name = format!("pgdrill-test-{kind}-{}-{}", std::process::id(), next_number());
        let mut run = Command::new("docker");
        run.args(["run", "-d", "--rm", "--name", &name]).args(options);
        for sub in writable {
            let path = dir.path().join(sub);
            std::fs::create_dir(&path).unwrap();
            // The server runs as the image's postgres user, not this machine's.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
            run.arg("-v").arg(format!("{}:/{sub}", path.display()));
        }
        for file in files {
            let path = dir.path().join(file.name);
            std::fs::write(&path, file.text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            run.arg("-v").arg(format!("{}:{}:ro", path.display(), file.inside));
        }
        // PostgreSQL 18's initdb enabled them already, and pg_checksums says so and fails.
        let start = "pg_controldata \"$PGDATA\" | grep -q 'checksum version: *[1-9]' \
                     || pg_checksums --enable --pgdata \"$PGDATA\" >/dev/null; exec postgres -D \"$PGDATA\" \"$@\"";
        run.args(["--entrypoint", "/bin/sh", image, "-c", start, "sh"]);
        run.args(["-c", "wal_level=replica", "-c", "archive_mode=on", "-c", "fsync=off"]);
        for setting in settings {
            run.args(["-c", setting]);
        }
        assert!(run.stdout(Stdio::null()).status().unwrap().success(), "docker run");
        let server = SourceServer {
            dir,
            name,
            image: image.to_owned(),
            writable: writable.iter().map(|s| s.to_string()).collect(),
        };
        wait_for("the source server to start", || server.psql_in("postgres", "SELECT 1").is_ok());
        server.psql_in("postgres", "CREATE DATABASE books").unwrap();
        server.psql("CREATE TABLE public.ledger (id int PRIMARY KEY, batch text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())").unwrap();
        server
    }

    /// A server pg_basebackup backs up: the image's client authentication has no replication
    /// line, so the source, as a real one, lets pg_basebackup in (on its socket only: it has no
    /// network, and `sockets/` holds its socket for this machine); `archive/` takes every
    /// segment, as `archive_command` copies them; `folders`
    /// (besides `archive`) are where the backups go.
    pub(crate) fn for_basebackup(kind: &str, image: &str, folders: &[&str]) -> Self {
        Self::for_basebackup_with(kind, image, folders, &[])
    }

    /// [`SourceServer::for_basebackup`] with more settings (`name=value`).
    pub(crate) fn for_basebackup_with(kind: &str, image: &str, folders: &[&str], settings: &[&str]) -> Self {
        let hba = SourceFile {
            name: "pg_hba.conf",
            text: "local all all trust\nlocal replication all trust\n",
            inside: "/etc/pgdrill-test-hba.conf",
        };
        let writable: Vec<&str> = folders.iter().copied().chain(["archive", "sockets"]).collect();
        // A socket in `sockets/` too: a program on this machine connects to the source there.
        let common = [
            "hba_file=/etc/pgdrill-test-hba.conf",
            "archive_command=test ! -f /archive/%f && cp %p /archive/%f",
            "unix_socket_directories=/var/run/postgresql,/sockets",
        ];
        let all: Vec<&str> = common.iter().chain(settings).copied().collect();
        Self::start(kind, image, &writable, &[hba], &all)
    }

    /// Writes `before` rows of `public.ledger`, records the time, the WAL location and a
    /// restore point (`between`), writes `after` more in one transaction, then closes three
    /// segments (a switch closes a segment only when something was written into it): the
    /// archive has a middle to lose past the batches.
    pub(crate) fn write_around_target(&self, before: i64, after: i64) -> Around {
        self.psql(&format!(
            "INSERT INTO public.ledger (id, batch) SELECT g, 'before' FROM generate_series(1, {before}) g"
        ))
        .unwrap();
        let target_time = self.psql("SELECT clock_timestamp()").unwrap().trim().to_owned();
        let target_lsn = self.psql("SELECT pg_current_wal_insert_lsn()").unwrap().trim().to_owned();
        self.psql("SELECT pg_create_restore_point('between')").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let after_xid = self
            .psql(&format!(
                "BEGIN; INSERT INTO public.ledger (id, batch) SELECT g, 'after' FROM generate_series({}, {}) g; \
                 SELECT txid_current(); COMMIT;",
                before + 1,
                before + after
            ))
            .unwrap()
            .trim()
            .to_owned();
        self.psql("SELECT pg_switch_wal()").unwrap();
        self.psql("CREATE TABLE public.tail (x int)").unwrap();
        self.psql("SELECT pg_switch_wal()").unwrap();
        self.psql("INSERT INTO public.tail VALUES (1)").unwrap();
        let last_segment = self.psql("SELECT pg_walfile_name(pg_switch_wal())").unwrap().trim().to_owned();
        Around { target_time, target_lsn, after_xid, last_segment }
    }

    /// SQL as the source's superuser in its database `books`; psql's unaligned output.
    pub(crate) fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_in("books", sql)
    }

    pub(crate) fn psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("docker")
            .args(["exec", &self.name, "psql", "-X", "-U", "postgres", "-d", database, "-Atqc", sql])
            .output()
            .unwrap();
        if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).into_owned()) } else { Err(text(&out)) }
    }

    /// A command in the source's container, which must succeed.
    pub(crate) fn exec(&self, args: &[&str]) -> String {
        let out = Command::new("docker").arg("exec").arg(&self.name).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    }
}

impl Drop for SourceServer {
    fn drop(&mut self) {
        // Gone already when its user stopped it (it runs with --rm).
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Files the server's user wrote: removed from inside, where they belong to it.
        let _ = Command::new("docker")
            .args(["run", "--rm", "--network", "none", "--entrypoint", "rm", "-v"])
            .arg(format!("{}:/work", self.dir.path().display()))
            .args([self.image.as_str(), "-rf"])
            .args(self.writable.iter().map(|sub| format!("/work/{sub}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Polls `done` until it holds; fails naming `what` after a minute.
pub(crate) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the archived segment at `path` is whole: `cp` in an archive command writes it in
/// place, so it exists, short, while it is copied (a drill that read it then would rightly call
/// it truncated).
pub(crate) fn whole_segment(path: &std::path::Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == 16 << 20)
}

/// Waits until `segment` is [whole](whole_segment) in `archive`.
pub(crate) fn wait_archived(archive: &std::path::Path, segment: &str) {
    let path = archive.join(segment);
    wait_for(&format!("segment {segment} to be archived"), || whole_segment(&path));
}

pub(crate) fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
