//! Physical backups made by PostgreSQL's own tools, the material the physical-restore drills
//! (issue 15) restore: a server of the project's image with `archive_mode` on, a
//! `pg_basebackup -F t -z -X stream` with its manifest, then rows written before and after a
//! recorded target time (in database `books`), every WAL segment of it in the archive. Proven sound by
//! `pg_verifybackup` and complete by the archive itself, before any drill relies on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A source server of the project's image for physical backups: no network, `wal_level=replica`
/// and `archive_mode` on, `fsync` off, database `books` with an empty `public.ledger`; its
/// container runs until this is dropped. pg_basebackup's source and pgBackRest's are made on it.
pub struct SourceServer {
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
pub struct SourceFile<'a> {
    pub name: &'a str,
    pub text: &'a str,
    /// Where the container reads it.
    pub inside: &'a str,
}

impl SourceServer {
    /// Starts a server of `image` (`kind` names its container) with the folders `writable` of
    /// its folder mounted at `/<name>`, `files` mounted read-only, and `settings` (`name=value`)
    /// after the common ones; waits until it answers and makes `books.public.ledger`.
    pub fn start(kind: &str, image: &str, writable: &[&str], files: &[SourceFile], settings: &[&str]) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let name = format!("pgdrill-test-{kind}-{}-{}", std::process::id(), crate::util::rand_suffix());
        let mut run = Command::new("docker");
        run.args(["run", "-d", "--rm", "--network", "none", "--name", &name]);
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
        run.arg(image).args(["-c", "wal_level=replica", "-c", "archive_mode=on", "-c", "fsync=off"]);
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

    /// Writes `before` rows of `public.ledger`, records the time, writes `after` more, then
    /// closes three segments (a switch closes a segment only when something was written into
    /// it): the archive has a middle to lose past the batches. Returns the recorded time and
    /// the last segment closed, which the caller waits for in its archive.
    pub fn write_around_target(&self, before: i64, after: i64) -> (String, String) {
        self.psql(&format!(
            "INSERT INTO public.ledger (id, batch) SELECT g, 'before' FROM generate_series(1, {before}) g"
        ))
        .unwrap();
        let target_time = self.psql("SELECT clock_timestamp()").unwrap().trim().to_owned();
        std::thread::sleep(Duration::from_millis(50));
        let last = before + after;
        self.psql(&format!(
            "INSERT INTO public.ledger (id, batch) SELECT g, 'after' FROM generate_series({}, {last}) g",
            before + 1
        ))
        .unwrap();
        self.psql("SELECT pg_switch_wal()").unwrap();
        self.psql("CREATE TABLE public.tail (x int)").unwrap();
        self.psql("SELECT pg_switch_wal()").unwrap();
        self.psql("INSERT INTO public.tail VALUES (1)").unwrap();
        let segment = self.psql("SELECT pg_walfile_name(pg_switch_wal())").unwrap().trim().to_owned();
        (target_time, segment)
    }

    /// SQL as the source's superuser in its database `books`; psql's unaligned output.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_in("books", sql)
    }

    pub fn psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("docker")
            .args(["exec", &self.name, "psql", "-X", "-U", "postgres", "-d", database, "-Atqc", sql])
            .output()
            .unwrap();
        if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).into_owned()) } else { Err(text(&out)) }
    }

    /// A command in the source's container, which must succeed.
    pub fn exec(&self, args: &[&str]) -> String {
        let out = Command::new("docker").arg("exec").arg(&self.name).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    }
}

impl Drop for SourceServer {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.name]).stdout(Stdio::null()).status();
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
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// pg_basebackup's material on a [`SourceServer`]: `backup/` (base.tar.gz, pg_wal.tar.gz,
/// backup_manifest) and `archive/` (WAL segments, as `archive_command` copied them).
pub struct PhysicalSource {
    pub server: SourceServer,
    /// The moment between the two batches of rows: a recovery to it holds `before` only.
    pub target_time: String,
    /// Rows of `public.ledger` written before and after `target_time`.
    pub before: i64,
    pub after: i64,
}

impl PhysicalSource {
    pub fn backup(&self) -> PathBuf {
        self.server.dir.path().join("backup")
    }

    pub fn archive(&self) -> PathBuf {
        self.server.dir.path().join("archive")
    }

    /// Starts the server, takes the base backup, writes the two batches around the target time
    /// and waits until the segment holding the last of them is archived.
    pub fn make() -> Self {
        // The image's client authentication has no replication line; the source, as a real
        // one, lets pg_basebackup in (on its socket only: it has no network).
        let hba = SourceFile {
            name: "pg_hba.conf",
            text: "local all all trust\nlocal replication all trust\n",
            inside: "/etc/pgdrill-test-hba.conf",
        };
        let server = SourceServer::start(
            "physical",
            pgdrill::scenario::default_image(),
            &["backup", "archive"],
            &[hba],
            &["hba_file=/etc/pgdrill-test-hba.conf", "archive_command=test ! -f /archive/%f && cp %p /archive/%f"],
        );
        server.exec(&[
            "pg_basebackup",
            "-U",
            "postgres",
            "-D",
            "/backup",
            "-F",
            "t",
            "-z",
            "-X",
            "stream",
            "-c",
            "fast",
        ]);
        let (before, after) = (40, 25);
        let (target_time, last) = server.write_around_target(before, after);
        let archived = server.dir.path().join("archive").join(&last);
        wait_for(&format!("segment {last} to be archived"), || archived.is_file());
        PhysicalSource { server, target_time, before, after }
    }

    /// SQL in the source's database `books`.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.server.psql(sql)
    }

    /// A command in the source's container, which must succeed.
    pub fn exec(&self, args: &[&str]) -> String {
        self.server.exec(args)
    }
}

pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn wal_segments(archive: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(archive)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    names.sort();
    names
}

#[test]
fn a_base_backup_and_its_wal_archive_are_sound_by_postgresqls_own_tools() {
    let source = PhysicalSource::make();
    let backup = source.backup();
    for file in ["base.tar.gz", "pg_wal.tar.gz", "backup_manifest"] {
        assert!(backup.join(file).is_file(), "{file} in {}", backup.display());
    }
    // PostgreSQL 17's pg_verifybackup reads a plain backup: unpacked as a restore would, it
    // checks every file against the manifest's checksums and parses the WAL the backup needs.
    let verified = source.exec(&[
        "sh",
        "-c",
        "rm -rf /tmp/plain && mkdir -m 0700 /tmp/plain && tar -xzf /backup/base.tar.gz -C /tmp/plain \
         && tar -xzf /backup/pg_wal.tar.gz -C /tmp/plain/pg_wal \
         && pg_verifybackup -m /backup/backup_manifest /tmp/plain",
    ]);
    assert!(verified.contains("backup successfully verified"), "{verified}");
    // The archive holds a gapless run of segments from the backup's start to the switch after
    // the last row, on one timeline.
    let segments = wal_segments(&source.archive());
    assert!(segments.len() >= 4, "{segments:?}");
    let numbers: Vec<u64> = segments.iter().map(|s| u64::from_str_radix(&s[8..], 16).unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "a gap in {segments:?}");
    assert!(segments.iter().all(|s| s[..8] == segments[0][..8]), "one timeline: {segments:?}");
    // The target time falls between the batches.
    let split = source
        .psql(&format!(
            "SELECT count(*) FILTER (WHERE at <= '{0}'), count(*) FILTER (WHERE at > '{0}') FROM public.ledger",
            source.target_time
        ))
        .unwrap();
    assert_eq!(split.trim(), format!("{}|{}", source.before, source.after));
}

/// A scenario drilling the source's base backup through its archive, with the two sides of the
/// point in time: the rows written before the target are there, those written after are not.
fn pitr_scenario(scratch: &crate::util::Scratch, source: &PhysicalSource, recovery: &str) -> PathBuf {
    scratch.scenario(
        "pitr.toml",
        &format!(
            "[source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n[target]\ndatabase = \"books\"\n\n{recovery}\n\n\
             [[checks.sql]]\nname = \"rows written before the target\"\n\
             query = \"SELECT count(*) FROM public.ledger WHERE batch = 'before'\"\nexpect = {}\n\n\
             [[checks.sql]]\nname = \"no row written after the target\"\n\
             query = \"SELECT count(*) FROM public.ledger WHERE batch = 'after'\"\nexpect = 0\n",
            source.backup().display(),
            source.archive().display(),
            source.before,
        ),
    )
}

#[test]
fn a_base_backup_recovers_to_a_chosen_time_and_a_wal_gap_or_a_target_past_the_archive_fails() {
    use pgdrill::Verdict;
    use pgdrill::report::{Phase, PhaseStatus};

    let source = PhysicalSource::make();
    let scratch = crate::util::Scratch::new();

    // To the target time: the rows before it, none after; a new timeline.
    let at = format!("[recovery]\ntarget_time = \"{}\"", source.target_time);
    let drill = scratch.drill(&pitr_scenario(&scratch, &source, &at));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let restore = drill.phase_summary(Phase::Restore);
    assert!(restore.starts_with("recovered to recovery_target_time "), "{restore}");
    assert!(restore.contains("promoted on timeline 2"), "{restore}");
    drill.assert_reports_and_no_leftovers();

    // Through the whole archive: the rows after the target are there too, and the check that
    // none is fails, so it tells the two apart.
    let drill = scratch.drill(&pitr_scenario(&scratch, &source, ""));
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let after = drill.record().checks.iter().find(|c| c.id == "sql/no row written after the target").unwrap().clone();
    assert_eq!((after.verdict, after.actual.as_str()), (Verdict::Fail, source.after.to_string().as_str()), "{after:?}");

    // A target past the archive's end: recovery runs out of WAL before it.
    let later = "[recovery]\ntarget_time = \"2999-01-01T00:00:00Z\"";
    let drill = scratch.drill(&pitr_scenario(&scratch, &source, later));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains("recovery ended before the target was reached"), "{error}");

    // A segment missing from the archive: verify names it before anything starts.
    let segments = wal_segments(&source.archive());
    let label = source.exec(&["sh", "-c", "tar -xzOf /backup/base.tar.gz backup_label"]);
    let start = label.split("(file ").nth(1).unwrap()[..24].to_owned();
    let gap = segments.iter().position(|s| *s == start).unwrap() + 1;
    assert!(gap < segments.len(), "the archive goes past the backup's start: {segments:?}");
    source.exec(&["rm", &format!("/archive/{}", segments[gap])]);
    let drill = scratch.drill(&pitr_scenario(&scratch, &source, &at));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("has no segment {}", segments[gap])), "{error}");
}
