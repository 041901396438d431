//! pgBackRest repositories: the material the pgBackRest drills restore ([`PgBackRestSource`]: a
//! source backed up by pgBackRest into a posix repository of this machine, a full set and an
//! incremental one, rows before and after a target time), and how pgdrill must run pgBackRest in
//! its sandbox, found by doing it: the test at the bottom runs every step below for real, on
//! both images (pgBackRest 2.55 on 17, 2.60 on 18).
//!
//! # Running pgBackRest in the sandbox
//!
//! Every pgBackRest command runs in a fresh container of the set's image, sandboxed as the target:
//!
//! ```text
//! docker run --rm --network none --user <uid>:<gid> --group-add <the repository's gid> \
//!   --cap-drop ALL --security-opt no-new-privileges --read-only \
//!   --tmpfs /usr/bin:ro,size=4k --tmpfs /usr/sbin:ro,size=4k \
//!   --tmpfs /usr/local/bin:ro,size=4k --tmpfs /usr/local/sbin:ro,size=4k \
//!   [--tmpfs /tmp:size=1m] \
//!   --mount type=bind,src=<pgBackRest copied out of the image>,dst=/usr/lib/pgdrill/pgbackrest,readonly \
//!   --mount type=bind,src=<repository>,dst=/repo,readonly \
//!   [--mount type=bind,src=<private folder>/data,dst=/var/lib/pgdrill/data] \
//!   --entrypoint /usr/lib/pgdrill/pgbackrest <image> \
//!   --no-config --stanza=<stanza> --repo1-path=/repo --log-level-file=off --log-level-console=warn \
//!   [--pg1-path=/var/lib/pgdrill/data] <command> <options> <arguments>
//! ```
//!
//! - The user is the target's: the image's postgres (labels `org.pgdrill.uid`/`gid`) when pgdrill
//!   runs as root, else pgdrill's own. pgBackRest writes the repository 0640/0750 as its own user:
//!   a repository of another machine (or fetched from S3) must be readable by that user or group
//!   through the whole tree (pgdrill's `backup_group` looks one level deep today).
//! - No program folder is needed: pgBackRest runs no shell and no other program, only itself for
//!   its local processes (`process-max`, archive-get:async), by the path it was started from
//!   (`--cmd`'s default), so the copy works where it is mounted. pgdrill copies
//!   `/usr/bin/pgbackrest` out of the image once (`docker create` + `docker cp`, as it copies the
//!   cluster template); its libraries live in /usr/lib, which stays.
//! - `--no-config`: the image carries `/etc/pgbackrest.conf` (`repo1-path=/var/lib/pgbackrest`),
//!   nothing of it is wanted. pgBackRest refuses secrets on the command line (`option
//!   'repo1-cipher-pass' is not allowed on the command-line`): an encrypted (or S3) repository's
//!   passphrase goes in a 0600 file of the private folder, mounted read-only and named by
//!   `--config=` instead of `--no-config` (`PGBACKREST_REPO1_CIPHER_PASS` works too, but
//!   `docker inspect` shows it).
//! - An option a command does not take is an error on the command line (a configuration file
//!   ignores it): `--pg1-path` only for restore and archive-get (2.60 also refuses `--cmd` for
//!   info, which 2.55 took).
//! - Writable, the minimal set: the data folder (restore, archive-get), pg_wal alone
//!   (archive-get:async), and a tmpfs at /tmp for pgBackRest's lock (lock-path `/tmp/pgbackrest`)
//!   where it takes one: restore in 2.60 (not in 2.55) and archive-get:async in both. info and
//!   verify write nothing, archive-get only its destination. No log-path (`--log-level-file=off`:
//!   the console is enough), no spool but archive-get:async's.
//!
//! # The drill, step by step
//!
//! 1. Choose the set, reading the repository (no container): `backup/<stanza>/backup.info`
//!    `[backup:current]` holds a line per set, `<label>={"backup-type":"full|diff|incr",
//!    "backup-timestamp-start"/"-stop":<unix time>, "backup-archive-start"/"-stop":<segment>,
//!    "backup-prior", "backup-reference", "db-id", ...}` in label (time) order: the newest is the
//!    last one, never the `latest` link (a hostile repository points it anywhere). For a target
//!    time T: the newest set whose `backup-timestamp-stop` is before T, as pgBackRest chooses for
//!    `--type=time` without `--set`. `pgbackrest --output=json info` says the same in a container.
//!    An S3 repository fetched first needs `backup.info`, the set's folder and those its
//!    `backup-reference` names (an incremental set's files live in its full set's folder), and
//!    `archive/<stanza>/archive.info`, which restore reads too (since 2.55 it checks the recovery
//!    timeline against the archive's history files).
//! 2. Restore into an empty 0700 folder of the private folder, owned by the sandbox's user (it
//!    refuses a folder with files, without `--delta`/`--force`, and one with `postmaster.pid`):
//!    `--pg1-path=/var/lib/pgdrill/data [--process-max=N] restore --set=<label> --type=none`.
//! 3. List the WAL, reading the repository: the set's `backup/<stanza>/<label>/backup.manifest`
//!    `[backup]` `backup-archive-start`/`-stop` (the first segment recovery reads, the last it needs
//!    to be consistent), `backup-timestamp-start`/`-stop`, `backup-lsn-start`/`-stop`; `[backup:db]`
//!    `db-system-id`, `db-version`, `db-id`. `archive/<stanza>/archive.info` `[db:history]` has
//!    `<n>={"db-id":<system id>,"db-version":"17"}`: the archive id is `<db-version>-<n>` of the
//!    (newest) entry with the set's system id and version. Segments are
//!    `archive/<stanza>/<archive id>/<first 16 hex digits>/<segment>-<sha1 of it>[.gz|.bz2|.lz4|.zst]`,
//!    beside `<segment>.<offset>.backup` files; `<timeline>.history` files in the archive id's
//!    folder. Recovery needs the gapless run from `backup-archive-start` on its timeline, through
//!    `-stop` at least: pgdrill checks it before anything starts and fetches it to its end (which
//!    segment holds the target time is not knowable without reading WAL). The segment size is in
//!    pg_control, not in the manifest (16 MiB by default: 256 segments to a log id).
//! 4. Fetch that run into the restored pg_wal, with one container for all of it:
//!    `--pg1-path=/var/lib/pgdrill/data --archive-async --spool-path=/spool --process-max=N
//!    archive-get:async <segment>...`, the data folder mounted read-only, its pg_wal mounted
//!    writable at `/spool/archive/<stanza>/in` (the queue where pgBackRest puts what it fetched:
//!    each segment lands in pg_wal under its own name), a tmpfs at /tmp. Then every segment asked
//!    for must be in pg_wal; `<segment>.ok` (not found, or found with a warning), `<segment>.error`
//!    and `global.error` (the message) and `*.pgbackrest.tmp` are removed; the exit code is 0 even
//!    when a segment failed. The stanza name becomes a path here: pgdrill checks it is a plain name.
//! 5. Make the folder pgdrill's, as for a base backup (`RunDir::create_physical`): the source's
//!    `postgresql.conf`, `postgresql.auto.conf`, `pg_hba.conf`, `pg_ident.conf` kept as `*.source`
//!    and replaced; `recovery.signal`, `standby.signal`, `postmaster.pid` removed; `standby.signal`
//!    written. Then the server: `-c hot_standby=on -c recovery_target_time=<T>
//!    -c recovery_target_action=promote` and no restore_command: a standby of nothing replays
//!    pg_wal, stops before the first commit after T, promotes (timeline 2). Past the archive's end
//!    it waits for ever (`waiting for WAL to become available at ...`), as for a base backup.
//!
//! # What pgBackRest writes into the data folder
//!
//! - `--type=none` writes no recovery setting and no signal file; it still rewrites
//!   `postgresql.auto.conf` (created when the set has none): the source's lines kept but
//!   `recovery_target*`, which it comments out (`# Removed by pgBackRest restore on ...`), so a
//!   source's own `restore_command`, `archive_command`, `shared_preload_libraries` stay: pgdrill
//!   replaces the file. Every other type writes more to remove: `restore_command = '<--cmd>
//!   <the restore's own options> archive-get %f "%p"'`, `recovery_target_*` from `--target*`, and
//!   `recovery.signal` (default, time, lsn, xid, name, immediate) or `standby.signal` (standby);
//!   `--type=preserve` keeps the source's recovery settings as they are;
//!   `--archive-mode=off` adds `archive_mode = 'off'`.
//! - `backup_label` (pg_backup_stop's), which recovery starts from: it stays.
//! - The source's configuration files as they were (above), `pg_wal` empty but `archive_status/`
//!   and (17+) `summaries/` (unless the set was taken with `archive-copy`), no `tablespace_map`
//!   without tablespaces. Files 0600 and folders 0700 (the manifest's modes), owned by the
//!   sandbox's user: pgBackRest gives them the manifest's owner only when it runs as root.
//!
//! # A hostile repository
//!
//! - Manifest paths: pgBackRest joins the manifest's names to the data directory unchecked. A set
//!   whose manifest names `pg_data/../canary/owned` (its checksum recomputed: it is a SHA-1 of the
//!   content, no signature) has pgBackRest write `/var/lib/pgdrill/canary/owned`, outside
//!   pg1-path: the test proves it on 2.55 and 2.60. In the sandbox that reaches only what is
//!   mounted writable; with the data folder the only one, the read-only root refuses the write
//!   and the restore fails. So: mount nothing writable but the data folder (never its parent,
//!   the private folder, nor the socket folder), and refuse a manifest whose names are not
//!   `pg_data` or `pg_data/...` without `.`, `..` or empty parts before starting anything
//!   ([`manifest_stays_inside`]).
//! - Tablespaces (not tested: this source has none): `[backup:target]`
//!   `pg_tblspc/<oid>={"path":"<absolute>","tablespace-id":..,"tablespace-name":..,"type":"link"}`
//!   is restored at that absolute path, and `pg_tblspc/<oid>` made a link to it, unless
//!   `--tablespace-map`/`--tablespace-map-all=<folder>` (then `<folder>/<tablespace-name>`, a name
//!   from the manifest, which may hold `../`). pgdrill either refuses sets with tablespaces or
//!   passes `--tablespace-map-all` to a folder of the private folder mounted at the same path in
//!   the restore and the server's containers, after checking the names are plain.
//! - Other links (a pg_wal or a file linked elsewhere): with `--link-all` off (the default) they
//!   are restored as plain folders and files in place, with a warning. Never pass `--link-all` or
//!   `--link-map`.
//! - The restored folder is the repository's to shape: links (pg_tblspc) point at any path and
//!   modes come from the manifest (a setuid file of the sandbox's user is possible; the 0700
//!   private folder and no-new-privileges contain it). pgdrill, root on this machine, never
//!   follows a link in it (lstat, lchown, no copy through links).
//! - Archive files: only `<24 hex>-<40 hex>[.gz|.bz2|.lz4|.zst]` names are segments; pgdrill
//!   validates every name it passes to a container. archive-get takes WAL only from the archive
//!   id whose system id and version are the restored pg_control's: it catches a mix-up, not an
//!   attack (the repository writes both). Every cluster started from the project's image shares
//!   the image's system identifier (initdb ran at build time), so it cannot tell two sources made
//!   from it apart either.
//!
//! # Fetching WAL: one container of `archive-get:async`
//!
//! pgdrill lists and checks the segments itself (step 3: it must, to find a gap before anything
//! starts) and has pgBackRest fetch them all in one container (step 4), because:
//! - a container costs ~0.5-1 s here: a `docker run` per segment cost 0.61 s a segment, a
//!   `docker exec` per segment into a long-lived sandbox 0.24 s (1,000 segments, 16 GB of WAL,
//!   would take 10 or 4 minutes); one container for all of them, ~0.1 s a segment, the work
//!   itself (decompression and fsync): under 2 minutes, less with `process-max` on more cores;
//! - pgBackRest decompresses (gz, bz2, lz4, zst), decrypts (aes-256-cbc: archive.info, itself
//!   encrypted with the repository's passphrase, holds the archive's) and checks the archive id
//!   against pg_control (it does not check a segment's SHA-1: `verify` does, in a container with
//!   nothing writable, and replay checks every record's CRC). Reading the files directly works
//!   for an unencrypted repository (zcat of 12 segments: 2.4 s, no faster) but would make pgdrill
//!   own four codecs, pgBackRest's cipher format and that check;
//! - it needs no shell and runs `process-max` segments side by side.
//!
//! The cost: `archive-get:async` is the internal command `archive-get --archive-async` starts; its
//! command line and spool contract are not documented, and this test pins them on 2.55 and 2.60.
//! The fallback, documented and as fast but serial, needs /usr/bin visible for its shell: one
//! container of `sh -c 'for s do pgbackrest <options> archive-get "$s" "$PGDATA/pg_wal/$s" || exit;
//! done' sh <segment>...` (12 segments: 1.9 s against 2.0 s). History files (timelines past the
//! first) go through the documented `archive-get <name>.history <destination>`.
//!
//! # Timings (this machine: 2 cores shared, a disk where fsync costs ~3 ms)
//!
//! From the test, seven runs on both images: source made (two sets) 14-19 s, of which the full
//! backup 5-8.5 s (fsync per repository file: 1,284 files; with `repo1-bundle=y`, 22 files and
//! 3.2 s); info in a container 0.9-1.2 s (a `docker run` ~0.5 s of it); verify 1.6-2.6 s; restore
//! of the full set (1,296 files, 30 MB) 2.3-6.3 s, fsync per file (1.2 s into a tmpfs; pgBackRest
//! has no switch to skip it); archive-get of one segment in its own container 0.52-0.92 s;
//! archive-get:async of 6 segments in one 1.1-2.5 s; a `docker exec` 0.08-0.15 s; recovery to
//! promotion 0.5-0.9 s; the test 25-36 s, plus ~10 s removing ~5,000 files. By hand, 12 segments
//! of real data (7.4 MB gzipped each): a `docker run` each 7.4 s, a `docker exec` each 2.8 s, one
//! container looping 1.9 s, one container of archive-get:async 2.0 s (process-max=1) and 1.9 s
//! (2, on 2 busy cores).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::physical::{SourceFile, SourceServer, text, wait_for};

/// The stanza of every repository made here.
pub const STANZA: &str = "drill";

/// The data directory of the image, where pgBackRest restores and the server recovers.
const PGDATA: &str = "/var/lib/pgdrill/data";

/// pgBackRest's option naming it, for the commands that take one (an option a command does not
/// take is an error on the command line).
const PG1_PATH: &str = "--pg1-path=/var/lib/pgdrill/data";

/// The source's pgBackRest configuration (read by `archive_command` too): a posix repository at
/// `/repo`, a folder of this machine.
const SOURCE_CONFIG: &str = "[global]\nrepo1-path=/repo\nrepo1-retention-full=9\nlog-level-console=warn\n\
                             log-level-file=off\nstart-fast=y\n\n[drill]\npg1-path=/var/lib/pgdrill/data\n\
                             pg1-socket-path=/var/run/postgresql\n";

/// A source server backed up by pgBackRest into a posix repository of this machine (`repo/`):
/// a full set, then an incremental one on it (the newest), then rows written before and after a
/// recorded target time in database `books`, every WAL segment of it archived by pgBackRest's
/// `archive_command`.
pub struct PgBackRestSource {
    pub server: SourceServer,
    pub stanza: &'static str,
    /// The backup sets, oldest first (as `pgbackrest info` lists them): the full one, then the
    /// incremental one on it.
    pub labels: Vec<String>,
    /// The moment between the two batches of rows: a recovery to it holds `before` only.
    pub target_time: String,
    /// Rows of `public.ledger` written before and after `target_time`.
    pub before: i64,
    pub after: i64,
    /// The last segment archived, closed after the batches.
    pub last_segment: String,
}

impl PgBackRestSource {
    /// The repository (`repo1-path`), a folder of this machine.
    pub fn repo(&self) -> PathBuf {
        self.server.dir.path().join("repo")
    }

    pub fn make() -> Self {
        Self::make_on(pgdrill::scenario::default_image())
    }

    /// Starts a server of `image`, makes the stanza, takes the two sets, writes the batches
    /// around the target time and waits until pgBackRest has archived the segment after them.
    pub fn make_on(image: &str) -> Self {
        let config =
            SourceFile { name: "pgbackrest.conf", text: SOURCE_CONFIG, inside: "/etc/pgbackrest/pgbackrest.conf" };
        let archive_command = format!("archive_command=pgbackrest --stanza={STANZA} archive-push %p");
        let server = SourceServer::start("pgbackrest", image, &["repo"], &[config], &[&archive_command]);
        let stanza = format!("--stanza={STANZA}");
        let pgbackrest = |args: &[&str]| server.exec(&[&["pgbackrest", stanza.as_str()], args].concat());
        pgbackrest(&["stanza-create"]);
        pgbackrest(&["check"]);
        pgbackrest(&["--type=full", "backup"]);
        // Something of the incremental set's own.
        server.psql("CREATE TABLE public.between_sets AS SELECT 1 AS x").unwrap();
        pgbackrest(&["--type=incr", "backup"]);
        let (before, after) = (40, 25);
        let around = server.write_around_target(before, after);
        let (target_time, last_segment) = (around.target_time, around.last_segment);
        let mut source =
            PgBackRestSource { server, stanza: STANZA, labels: Vec::new(), target_time, before, after, last_segment };
        let info = source.info();
        source.labels =
            info["backup"].as_array().unwrap().iter().map(|b| b["label"].as_str().unwrap().to_owned()).collect();
        let archive_id = info["archive"][0]["id"].as_str().unwrap().to_owned();
        let folder = source.repo().join(format!("archive/{STANZA}/{archive_id}/{}", &source.last_segment[..16]));
        let prefix = format!("{}-", source.last_segment);
        wait_for(&format!("pgBackRest to archive {}", source.last_segment), || {
            std::fs::read_dir(&folder)
                .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with(&prefix)))
                .unwrap_or(false)
        });
        source
    }

    /// `pgbackrest info --output=json` of the stanza, run by the source.
    pub fn info(&self) -> serde_json::Value {
        let out = self.server.exec(&["pgbackrest", &format!("--stanza={STANZA}"), "--output=json", "info"]);
        let stanzas: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        stanzas[0].clone()
    }
}

/// Where a folder of this machine is mounted in a sandboxed container, and whether it may write.
struct Mount<'a> {
    host: &'a Path,
    inside: &'a str,
    writable: bool,
}

/// Folders of programs hidden under empty read-only mounts, as in pgdrill's target.
const NO_PROGRAMS: [&str; 4] = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];

/// Where the sandbox finds pgBackRest's program, a copy of the image's own: its folder, /usr/bin,
/// is hidden there. pgBackRest starts its local processes by this path.
const PROGRAM: &str = "/usr/lib/pgdrill/pgbackrest";

/// pgBackRest run as pgdrill runs its target: no network, never root, no capability,
/// no-new-privileges, a read-only root with every program folder hidden, the repository
/// read-only, nothing written but the folders given.
struct Sandbox {
    image: String,
    /// uid and gid the containers run as: the image's postgres when this process is root (it
    /// gives them the folders), else this process's own user (as pgdrill's target).
    user: (u32, u32),
    /// The repository's group, added so that its files (0640) can be read by a user that does
    /// not own them.
    group: u32,
    repo: PathBuf,
    /// Holds the copy of pgBackRest's program and the restore's target folder.
    work: tempfile::TempDir,
}

impl Sandbox {
    fn new(source: &PgBackRestSource) -> Self {
        let image = source.server.image.clone();
        let labels = docker(&[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"org.pgdrill.uid\"}} {{index .Config.Labels \"org.pgdrill.gid\"}}",
            &image,
        ]);
        let me = std::fs::metadata("/proc/self").unwrap();
        let user = match labels.split_whitespace().map(|n| n.parse().unwrap()).collect::<Vec<u32>>()[..] {
            [uid, gid] if me.uid() == 0 => (uid, gid),
            _ => (me.uid(), me.gid()),
        };
        let work = tempfile::Builder::new().prefix("pgdrill-test-pgbackrest-").tempdir().unwrap();
        let created = docker(&["create", &image]);
        let id = created.trim();
        docker(&["cp", &format!("{id}:/usr/bin/pgbackrest"), &work.path().join("pgbackrest").display().to_string()]);
        docker(&["rm", id]);
        let repo = source.repo();
        let group = std::fs::metadata(repo.join("backup")).unwrap().gid();
        Sandbox { image, user, group, repo, work }
    }

    /// An empty folder of this machine for the container's user, `0700`: a data directory.
    fn private_folder(&self, name: &str) -> PathBuf {
        use std::os::unix::fs::DirBuilderExt;
        let path = self.work.path().join(name);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&path).unwrap();
        self.give(&path);
        path
    }

    /// Gives `path` to the containers' user.
    fn give(&self, path: &Path) {
        std::os::unix::fs::lchown(path, Some(self.user.0), Some(self.user.1)).unwrap();
    }

    /// The sandbox's `docker run` up to the image, with `mounts` and, when `lock`, a tmpfs at
    /// /tmp (pgBackRest's lock-path).
    fn docker_run(&self, mounts: &[&Mount], lock: bool) -> Command {
        let mut run = Command::new("docker");
        run.args(["run", "--rm", "--network", "none", "--user", &format!("{}:{}", self.user.0, self.user.1)]);
        run.args(["--group-add", &self.group.to_string(), "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]);
        run.arg("--read-only");
        for folder in NO_PROGRAMS {
            run.args(["--tmpfs", &format!("{folder}:ro,size=4k")]);
        }
        if lock {
            run.args(["--tmpfs", "/tmp:size=1m"]);
        }
        for mount in mounts {
            let access = if mount.writable { "" } else { ",readonly" };
            run.arg("--mount").arg(format!("type=bind,src={},dst={}{access}", mount.host.display(), mount.inside));
        }
        run
    }

    /// `pgbackrest <args>` in the sandbox on the repository, configured on its command line
    /// alone (console logging at `warn` unless `args` say otherwise); its output and how long the
    /// container took, start to end.
    fn pgbackrest(&self, mounts: &[Mount], lock: bool, args: &[&str]) -> (Output, Duration) {
        self.pgbackrest_on(&self.repo, mounts, lock, args)
    }

    fn pgbackrest_on(&self, repo: &Path, mounts: &[Mount], lock: bool, args: &[&str]) -> (Output, Duration) {
        let program = self.work.path().join("pgbackrest");
        let fixed = [
            Mount { host: &program, inside: PROGRAM, writable: false },
            Mount { host: repo, inside: "/repo", writable: false },
        ];
        let mounts: Vec<&Mount> = fixed.iter().chain(mounts).collect();
        let mut run = self.docker_run(&mounts, lock);
        run.args(["--entrypoint", PROGRAM, &self.image]);
        run.args(["--no-config", &format!("--stanza={STANZA}"), "--repo1-path=/repo"]);
        run.arg("--log-level-file=off");
        if !args.iter().any(|a| a.starts_with("--log-level-console")) {
            run.arg("--log-level-console=warn");
        }
        run.args(args);
        let started = Instant::now();
        let out = run.output().unwrap();
        (out, started.elapsed())
    }

    /// Like [`Sandbox::pgbackrest`], which must succeed.
    fn pgbackrest_ok(&self, mounts: &[Mount], lock: bool, args: &[&str]) -> (String, Duration) {
        let (out, took) = self.pgbackrest(mounts, lock, args);
        assert!(out.status.success(), "pgbackrest {args:?}: {}", text(&out));
        (text(&out), took)
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An INI file as pgBackRest writes them (`backup.info`, `archive.info`, `backup.manifest`):
/// sections in file order, each key's value as written (JSON).
fn ini(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.to_owned(), Vec::new()));
        } else if let (Some((key, value)), Some(section)) = (line.split_once('='), sections.last_mut()) {
            section.1.push((key.to_owned(), value.to_owned()));
        }
    }
    sections
}

/// The value of `key` in `section`, parsed as JSON.
fn ini_value(ini: &[(String, Vec<(String, String)>)], section: &str, key: &str) -> serde_json::Value {
    let raw = ini
        .iter()
        .filter(|(name, _)| name == section)
        .flat_map(|(_, keys)| keys)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in [{section}]"));
    serde_json::from_str(raw).unwrap_or_else(|e| panic!("[{section}] {key}={raw}: {e}"))
}

/// The WAL segment a file of the archive holds: `<24 hex>-<sha1 of its content>[.gz|.bz2|.lz4|.zst]`
/// (anything else, `.backup` and `.history` files or a hostile name, is not a segment).
fn segment_of(file_name: &str) -> Option<&str> {
    let (segment, rest) = (file_name.get(..24)?, file_name.get(24..)?);
    let rest = rest.strip_prefix('-')?;
    let (sha1, extension) = (rest.get(..40)?, rest.get(40..)?);
    let hex = |s: &str, upper: bool| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || if upper { (b'A'..=b'F').contains(&b) } else { (b'a'..=b'f').contains(&b) })
    };
    (hex(segment, true) && hex(sha1, false) && ["", ".gz", ".bz2", ".lz4", ".zst"].contains(&extension))
        .then_some(segment)
}

/// The segment after `segment` on its timeline, for 16 MiB segments (256 to a log id).
fn next_segment(segment: &str) -> String {
    let number = |range: std::ops::Range<usize>| u32::from_str_radix(&segment[range], 16).unwrap();
    let (timeline, log, seg) = (number(0..8), number(8..16), number(16..24));
    let (log, seg) = if seg == 0xFF { (log + 1, 0) } else { (log, seg + 1) };
    format!("{timeline:08X}{log:08X}{seg:08X}")
}

/// What recovery from a backup set needs of the archive, read from the repository's own files
/// as pgdrill can read them, without pgBackRest: the archive id of the set's cluster and the
/// gapless run of segments from the set's start.
#[derive(Debug)]
struct WalPlan {
    archive_id: String,
    /// `backup-archive-start` and `-stop`: the segments the set needs to be consistent.
    start: String,
    stop: String,
    /// From `start` on its timeline, up to the first missing one.
    segments: Vec<String>,
}

impl WalPlan {
    fn read(repo: &Path, label: &str) -> Self {
        let manifest =
            ini(&std::fs::read_to_string(repo.join(format!("backup/{STANZA}/{label}/backup.manifest"))).unwrap());
        let start = ini_value(&manifest, "backup", "backup-archive-start").as_str().unwrap().to_owned();
        let stop = ini_value(&manifest, "backup", "backup-archive-stop").as_str().unwrap().to_owned();
        let system_id = ini_value(&manifest, "backup:db", "db-system-id");
        let version = ini_value(&manifest, "backup:db", "db-version");
        // archive.info's history names each cluster the stanza archived for (system id and
        // major); the archive id is `<major>-<its number>`; the newest matching one, as pgBackRest.
        let archive_info = ini(&std::fs::read_to_string(repo.join(format!("archive/{STANZA}/archive.info"))).unwrap());
        let history = &archive_info.iter().find(|(name, _)| name == "db:history").expect("[db:history]").1;
        let number = history
            .iter()
            .filter(|(_, db)| {
                let db: serde_json::Value = serde_json::from_str(db).unwrap();
                db["db-id"] == system_id && db["db-version"] == version
            })
            .map(|(n, _)| n.parse::<u32>().unwrap())
            .max()
            .expect("the archive holds the set's cluster");
        let archive_id = format!("{}-{number}", version.as_str().unwrap());
        let folder = repo.join(format!("archive/{STANZA}/{archive_id}"));
        let mut archived = BTreeSet::new();
        for log in std::fs::read_dir(&folder).unwrap().flatten() {
            let name = log.file_name().to_string_lossy().into_owned();
            if name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()) && log.file_type().unwrap().is_dir() {
                for file in std::fs::read_dir(log.path()).unwrap().flatten() {
                    let file = file.file_name().to_string_lossy().into_owned();
                    if let Some(segment) = segment_of(&file).filter(|s| s.starts_with(&name)) {
                        archived.insert(segment.to_owned());
                    }
                }
            }
        }
        let mut segments = Vec::new();
        let mut next = start.clone();
        while archived.contains(&next) {
            segments.push(next.clone());
            next = next_segment(&next);
        }
        WalPlan { archive_id, start, stop, segments }
    }
}

/// The checksum pgBackRest keeps in an info file or a manifest (`[backrest]
/// backrest-checksum`): the SHA-1 of its sections and keys rendered as JSON in file order, the
/// checksum left out. Whoever can write the repository can recompute it: it finds corruption,
/// not tampering.
fn info_checksum(text: &str) -> String {
    use sha1::Digest;
    let mut json = String::from("{");
    let mut last: Option<String> = None;
    for (section, keys) in ini(text) {
        for (key, value) in keys.iter().filter(|(k, _)| !(section == "backrest" && k == "backrest-checksum")) {
            if last.as_deref() == Some(section.as_str()) {
                json.push(',');
            } else {
                if last.is_some() {
                    json.push_str("},");
                }
                json.push_str(&format!("\"{section}\":{{"));
                last = Some(section.clone());
            }
            json.push_str(&format!("{}:{value}", serde_json::to_string(key).unwrap()));
        }
    }
    json.push_str("}}");
    hex::encode(sha1::Sha1::digest(json.as_bytes()))
}

/// Whether every path a backup set's manifest names stays inside the data directory, and it
/// has no link or tablespace to restore elsewhere: what pgdrill must check before pgBackRest
/// restores a set, since pgBackRest does not (see the findings above).
fn manifest_stays_inside(text: &str) -> Result<(), String> {
    for (section, keys) in ini(text) {
        for (name, value) in keys {
            let inside = match section.as_str() {
                "backup:target" => name == "pg_data" && value.contains(r#""type":"path""#),
                "target:link" => false,
                "target:file" | "target:path" => {
                    name == "pg_data"
                        || name
                            .strip_prefix("pg_data/")
                            .is_some_and(|rest| rest.split('/').all(|part| !["", ".", ".."].contains(&part)))
                }
                _ => true,
            };
            if !inside {
                return Err(format!("[{section}] {name} leads out of the data directory"));
            }
        }
    }
    Ok(())
}

/// A copy of the repository's stanza whose `label` set is hostile: its manifest names a folder
/// `pg_data/../canary` and a file in it (and PG_VERSION, and the folder `global` pgBackRest syncs last), with its content in the repository and the
/// manifest's checksum recomputed. Returns the copy and the hostile manifest's text.
fn hostile_repo(repo: &Path, label: &str, into: &Path) -> (PathBuf, String) {
    let hostile = into.join("hostile-repo");
    let set = hostile.join(format!("backup/{STANZA}/{label}"));
    std::fs::create_dir_all(set.join("pg_data")).unwrap();
    std::fs::create_dir_all(set.join("canary")).unwrap();
    std::fs::create_dir_all(hostile.join(format!("archive/{STANZA}"))).unwrap();
    for file in [
        "backup/drill/backup.info",
        "archive/drill/archive.info",
        &format!("backup/drill/{label}/pg_data/PG_VERSION.gz"),
    ] {
        std::fs::copy(repo.join(file), hostile.join(file)).unwrap();
        // The copy keeps the mode (0640), not the owner: let the sandbox's user read it.
        std::fs::set_permissions(hostile.join(file), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    std::fs::write(set.join("canary/owned.gz"), crate::util::gzip("owned\n")).unwrap();
    let manifest = std::fs::read_to_string(repo.join(format!("backup/{STANZA}/{label}/backup.manifest"))).unwrap();
    let owned = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(b"owned\n"))
    };
    let mut text = String::new();
    let mut section = "";
    for line in manifest.lines() {
        if line.starts_with('[') {
            section = line;
        }
        let keep = match section {
            "[target:file]" => line == section || line.starts_with("pg_data/PG_VERSION="),
            "[target:path]" => line == section || line.starts_with("pg_data=") || line.starts_with("pg_data/global="),
            _ => true,
        };
        if keep {
            text.push_str(line);
            text.push('\n');
        }
        // Keys stay sorted, as pgBackRest writes them.
        if line == "[target:file]" {
            text.push_str(&format!(
                "pg_data/../canary/owned={{\"checksum\":\"{owned}\",\"size\":6,\"timestamp\":1700000000}}\n"
            ));
        }
        if section == "[target:path]" && line.starts_with("pg_data=") {
            text.push_str("pg_data/../canary={}\n");
        }
    }
    let checksum = info_checksum(&text);
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("backrest-checksum=") {
                format!("backrest-checksum=\"{checksum}\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(set.join("backup.manifest"), &text).unwrap();
    (hostile, text)
}

/// Every entry under `root`, as paths relative to it, without following links.
fn tree(root: &Path) -> BTreeMap<PathBuf, std::fs::Metadata> {
    let mut entries = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
        entries.insert(path.strip_prefix(root).unwrap().to_owned(), meta);
    }
    entries
}

/// A recovering server of the image on a restored data directory, as pgdrill runs its target
/// (without the socket folder shared with this machine: SQL goes through `docker exec`).
struct Recovered {
    name: String,
}

impl Recovered {
    /// Makes the restored folder pgdrill's, as it does a base backup's (the source's
    /// configuration kept beside it as `*.source`, never read; `standby.signal`), and starts a
    /// server on it recovering to `target_time` and promoting there, with no restore_command:
    /// WAL comes from pg_wal alone. Returns once it is promoted.
    fn start(sandbox: &Sandbox, data: &Path, target_time: &str) -> Self {
        for (name, text) in [
            ("postgresql.conf", "# pgdrill: the sandbox's settings are on the command line\n"),
            ("postgresql.auto.conf", ""),
            ("pg_hba.conf", "local all all trust\n"),
            ("pg_ident.conf", ""),
        ] {
            let path = data.join(name);
            if path.exists() {
                std::fs::rename(&path, data.join(format!("{name}.source"))).unwrap();
            }
            std::fs::write(&path, text).unwrap();
            sandbox.give(&path);
        }
        for signal in ["recovery.signal", "standby.signal", "postmaster.pid"] {
            let _ = std::fs::remove_file(data.join(signal));
        }
        std::fs::write(data.join("standby.signal"), "").unwrap();
        sandbox.give(&data.join("standby.signal"));

        let name = format!("pgdrill-test-pgbackrest-recovered-{}-{}", std::process::id(), crate::util::rand_suffix());
        let mut run = sandbox.docker_run(&[&Mount { host: data, inside: PGDATA, writable: true }], false);
        let (uid, gid) = sandbox.user;
        run.args(["-d", "--name", &name, "--tmpfs", &format!("/var/run/postgresql:uid={uid},gid={gid},mode=0700")]);
        run.arg(&sandbox.image);
        for setting in [
            "listen_addresses=",
            "fsync=off",
            "hot_standby=on",
            &format!("recovery_target_time={target_time}"),
            "recovery_target_action=promote",
        ] {
            run.args(["-c", setting]);
        }
        let out = run.stdout(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "docker run: {}", text(&out));
        let server = Recovered { name };
        wait_for("the restored server to recover and promote", || {
            let running = docker(&["inspect", "--format", "{{.State.Running}}", &server.name]);
            assert_eq!(running.trim(), "true", "the server stopped: {}", server.logs());
            server.psql("SELECT pg_is_in_recovery()").is_ok_and(|r| r.trim() == "f")
        });
        server
    }

    fn psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("docker")
            .args(["exec", &self.name, "psql", "-X", "-U", "postgres", "-d", "books", "-Atqc", sql])
            .output()
            .unwrap();
        if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).into_owned()) } else { Err(text(&out)) }
    }

    fn logs(&self) -> String {
        let out = Command::new("docker").args(["logs", &self.name]).output().unwrap();
        text(&out)
    }
}

impl Drop for Recovered {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.name]).stdout(Stdio::null()).status();
    }
}

/// On both images: pgBackRest 2.55 (17, the default) and 2.60 (18) take the same recipe.
#[rstest::rstest]
#[case::pg17(PgBackRestSource::make)]
#[case::pg18(|| PgBackRestSource::make_on(&pgdrill::scenario::project_image(18)))]
fn a_pgbackrest_repository_is_sound_and_restores_in_the_sandbox_to_a_chosen_time(
    #[case] make: fn() -> PgBackRestSource,
) {
    let started = Instant::now();
    let source = make();
    let made = started.elapsed();
    let sandbox = Sandbox::new(&source);
    let [full, incr] = &source.labels[..] else { panic!("two sets: {:?}", source.labels) };

    // Sound by pgBackRest's own tools, run in the sandbox on the read-only repository (neither
    // needs a writable folder): both sets listed, the incremental one on the full one, the
    // newest; every file of both sets and every segment of the archive verified.
    let (info, run_took) = sandbox.pgbackrest_ok(&[], false, &["--output=json", "info"]);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let stanza = &info[0];
    assert_eq!(stanza["status"]["code"], 0, "{stanza}");
    let sets = stanza["backup"].as_array().unwrap();
    assert_eq!(sets.iter().map(|s| s["label"].as_str().unwrap()).collect::<Vec<_>>(), [full, incr], "{stanza}");
    assert_eq!((sets[0]["type"].as_str(), sets[1]["type"].as_str()), (Some("full"), Some("incr")));
    assert_eq!(sets[1]["prior"].as_str(), Some(full.as_str()));
    let (verified, verify_took) = sandbox.pgbackrest_ok(&[], false, &["--log-level-console=info", "verify"]);
    assert!(verified.contains("verify command end: completed successfully"), "{verified}");

    // The archive, read as pgdrill reads it: gapless from the full set's start through the
    // segment closed after the batches, on one timeline.
    let plan = WalPlan::read(&source.repo(), full);
    assert_eq!(plan.archive_id, stanza["archive"][0]["id"].as_str().unwrap(), "{plan:?}");
    assert_eq!(plan.start, sets[0]["archive"]["start"].as_str().unwrap());
    assert!(plan.segments.contains(&plan.stop), "{plan:?}");
    assert_eq!(plan.segments.last(), Some(&source.last_segment), "a gap before the last segment: {plan:?}");
    assert!(plan.segments.len() >= 5, "{plan:?}");
    // The target time falls between the batches.
    let split = source
        .server
        .psql(&format!(
            "SELECT count(*) FILTER (WHERE at <= '{0}'), count(*) FILTER (WHERE at > '{0}') FROM public.ledger",
            source.target_time
        ))
        .unwrap();
    assert_eq!(split.trim(), format!("{}|{}", source.before, source.after));

    // The full set, chosen by its label (not the newest), restored by pgBackRest into an empty
    // 0700 folder, the only writable one: --type=none writes no recovery settings.
    let data = sandbox.private_folder("target/data");
    let (_, restore_took) = sandbox.pgbackrest_ok(
        &[Mount { host: &data, inside: PGDATA, writable: true }],
        true,
        &[PG1_PATH, "--process-max=2", "restore", &format!("--set={full}"), "--type=none"],
    );
    assert_eq!(tree(&sandbox.work.path().join("target")).len(), tree(&data).len() + 1, "only data/ in its folder");
    let restored = tree(&data);
    assert!(restored.contains_key(Path::new("backup_label")) && restored.contains_key(Path::new("global/pg_control")));
    for signal in ["recovery.signal", "standby.signal", "postmaster.pid", "tablespace_map"] {
        assert!(!restored.contains_key(Path::new(signal)), "{signal} restored");
    }
    let auto = std::fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("restore_command") && !auto.contains("recovery_target"), "{auto}");
    for (path, meta) in &restored {
        assert!(!meta.file_type().is_symlink(), "a link restored: {}", path.display());
        assert_eq!((meta.uid(), meta.gid()), sandbox.user, "{} is not the sandbox user's", path.display());
        assert!(!path.starts_with("pg_wal") || meta.is_dir(), "{} restored", path.display());
    }

    // The WAL recovery needs, fetched into the restored pg_wal: the first segment by the
    // documented `archive-get <segment> <destination>` (one container for one segment), the rest
    // by one container of `archive-get:async <segments...>`, whose spool's queue is pg_wal itself.
    // Both read the restored pg_control and take WAL only from the archive of its system id.
    let pg_wal = data.join("pg_wal");
    let (first, rest) = plan.segments.split_first().unwrap();
    let destination = format!("{PGDATA}/pg_wal/{first}");
    let (_, get_took) = sandbox.pgbackrest_ok(
        &[Mount { host: &data, inside: PGDATA, writable: true }],
        false,
        &[PG1_PATH, "archive-get", first, &destination],
    );
    let queue = format!("/spool/archive/{STANZA}/in");
    let mut args = vec![PG1_PATH, "--archive-async", "--spool-path=/spool", "--process-max=2", "archive-get:async"];
    args.extend(rest.iter().map(String::as_str));
    let (_, async_took) = sandbox.pgbackrest_ok(
        &[
            Mount { host: &data, inside: PGDATA, writable: false },
            Mount { host: &pg_wal, inside: &queue, writable: true },
        ],
        true,
        &args,
    );
    let mut in_pg_wal: Vec<String> = std::fs::read_dir(&pg_wal)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    in_pg_wal.sort();
    assert_eq!(in_pg_wal, plan.segments, "pg_wal holds the segments and nothing else (no .ok, .error)");
    for segment in &plan.segments {
        assert_eq!(std::fs::metadata(pg_wal.join(segment)).unwrap().len(), 16 << 20, "{segment}");
    }

    // A hostile repository: the full set's manifest names `pg_data/../canary/owned`, its checksum
    // recomputed. pgBackRest restores that file outside pg1-path, wherever the container can
    // write: into a writable folder mounted beside the data directory; with the data directory
    // the only one, the read-only root refuses it and the restore fails. pgdrill's own check of
    // the manifest refuses it before any container starts.
    let real = std::fs::read_to_string(source.repo().join(format!("backup/{}/{full}/backup.manifest", source.stanza)))
        .unwrap();
    assert_eq!(info_checksum(&real), ini_value(&ini(&real), "backrest", "backrest-checksum").as_str().unwrap());
    assert_eq!(manifest_stays_inside(&real), Ok(()));
    let (hostile, manifest) = hostile_repo(&source.repo(), full, sandbox.work.path());
    let refused = manifest_stays_inside(&manifest).unwrap_err();
    assert!(refused.contains("pg_data/../canary/owned"), "{refused}");
    let escaped = sandbox.private_folder("escape/data");
    let beside = sandbox.private_folder("escape/canary");
    let restore = [PG1_PATH, "restore", &format!("--set={full}"), "--type=none"];
    let mounts = [
        Mount { host: &escaped, inside: PGDATA, writable: true },
        Mount { host: &beside, inside: "/var/lib/pgdrill/canary", writable: true },
    ];
    let (out, _) = sandbox.pgbackrest_on(&hostile, &mounts, true, &restore);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(beside.join("owned")).unwrap(), "owned\n", "pgBackRest wrote beside pg1-path");
    let alone = sandbox.private_folder("confined/data");
    let (out, _) =
        sandbox.pgbackrest_on(&hostile, &[Mount { host: &alone, inside: PGDATA, writable: true }], true, &restore);
    assert!(!out.status.success() && text(&out).contains("Read-only file system"), "{}", text(&out));
    assert!(!tree(&sandbox.work.path().join("confined")).keys().any(|p| p.ends_with("owned")));

    // The cost of an exec, without pgBackRest's work (a container's: `info`'s, above).
    let exec_started = Instant::now();
    source.server.exec(&["pgbackrest", "version"]);
    let exec_took = exec_started.elapsed();

    // Recovered by a server of the image in the sandbox, as a standby reading pg_wal, to the
    // target time, promoted: the rows written before it, none after, on a new timeline.
    let recovery_started = Instant::now();
    let server = Recovered::start(&sandbox, &data, &source.target_time);
    let recovery_took = recovery_started.elapsed();
    let rows = server
        .psql("SELECT count(*) FILTER (WHERE batch = 'before'), count(*) FILTER (WHERE batch = 'after') FROM public.ledger")
        .unwrap();
    assert_eq!(rows.trim(), format!("{}|0", source.before));
    assert_eq!(server.psql("SELECT timeline_id FROM pg_control_checkpoint()").unwrap().trim(), "2");
    let logs = server.logs();
    assert!(logs.contains("recovery stopping before commit"), "{logs}");

    eprintln!(
        "pgBackRest drill timings on {}: source made (2 sets) {made:.1?}; verify {verify_took:.1?}; restore of {full} {restore_took:.1?} \
         ({} files); archive-get of one segment, one container {get_took:.1?}; archive-get:async of {} segments, one \
         container {async_took:.1?}; a container of `pgbackrest info` {run_took:.1?}; a docker exec of `pgbackrest version` {exec_took:.1?}; \
         recovery to promotion {recovery_took:.1?}; the whole test {:.1?}",
        source.server.image,
        restored.len(),
        rest.len(),
        started.elapsed()
    );
}
