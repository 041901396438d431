//! pgBackRest repositories drilled by pgdrill: the material ([`PgBackRestSource`]: a source
//! backed up by pgBackRest into a posix repository of this machine, a full set and an
//! incremental one, rows before and after a target time) and the drills on it, on both images
//! (pgBackRest 2.55 on 17, 2.60 on 18).
//!
//! How pgdrill runs pgBackRest was found by doing it (the first version of this file ran every
//! step by hand): `restore --type=none` into an empty 0700 folder, in a toolbox sandboxed as the
//! target (no network, never root, no capability, read-only root, the repository read-only, the
//! data directory and a `/tmp` for its lock the only things it may write), configured on its
//! command line alone (`--no-config`: the image's `/etc/pgbackrest.conf` is not the
//! repository's). `--type=none` writes no recovery setting and no signal file, but keeps the
//! source's `postgresql.auto.conf` (its `restore_command`, `archive_command`,
//! `shared_preload_libraries`): pgdrill replaces it, as it does a base backup's. pgdrill reads
//! `backup.info` itself to choose the set (never the `latest` link: a repository points it
//! anywhere), the set's manifest for where recovery starts and which system and major it is of,
//! `archive.info` for the archive of that system, and copies the archived segments into pg_wal
//! itself, checking each one's SHA-1 (in its name), header and size: pgBackRest's `archive-get`
//! checks none of them, and its way of fetching many at once (`archive-get:async`) is an
//! undocumented internal command.
//!
//! A hostile repository: pgBackRest joins the manifest's names to the data directory unchecked.
//! A set whose manifest names `pg_data/../canary/owned` (its checksum recomputed: a SHA-1 of the
//! content, no signature) has pgBackRest 2.55 and 2.60 write beside the data directory, where a
//! writable folder is mounted there; pgdrill refuses such a manifest before anything starts (and
//! the toolbox mounts nothing writable but the data directory). Links are refused too.
//!
//! The source keeps `public.ledger` in a tablespace (`ts1`, at `/tmp/ts1`): pgBackRest restores a
//! tablespace at whatever absolute path the manifest gives unless `--tablespace-map` says
//! otherwise, and refuses a place inside the data directory; pgdrill maps it into a folder of its
//! own and moves it into `pg_tblspc/<oid>`, so every drill here reads the ledger from an in-place
//! tablespace (`pg_tablespace_location` says `pg_tblspc/<oid>`), on both pgBackRest releases.
//!
//! Timings here (2 shared cores, fsync ~3 ms): the source with two sets 14-19 s (pgBackRest
//! fsyncs each of the repository's ~1,300 files); a restore of the full set 2-6 s.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::source_server::{SourceFile, SourceServer, text, wait_for};
use crate::util::Scratch;

/// The stanza of every repository made here.
pub(crate) const STANZA: &str = "drill";

/// The source's pgBackRest configuration (read by `archive_command` too): a posix repository at
/// `/repo`, a folder of this machine.
const SOURCE_CONFIG: &str = "[global]\nrepo1-path=/repo\nrepo1-retention-full=9\nlog-level-console=warn\n\
                             log-level-file=off\nstart-fast=y\n\n[drill]\npg1-path=/var/lib/pgdrill/data\n\
                             pg1-socket-path=/var/run/postgresql\n";

/// A source server backed up by pgBackRest into a posix repository of this machine (`repo/`):
/// a full set, then an incremental one on it (the newest), then rows written before and after a
/// recorded target time in database `books`, every WAL segment of it archived by pgBackRest's
/// `archive_command`.
pub(crate) struct PgBackRestSource {
    pub server: SourceServer,
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
    /// The OID of tablespace `ts1`, which holds `public.ledger`.
    pub oid: String,
}

impl PgBackRestSource {
    /// The repository (`repo1-path`), a folder of this machine.
    pub(crate) fn repo(&self) -> PathBuf {
        self.server.dir.path().join("repo")
    }

    pub(crate) fn make() -> Self {
        Self::make_on(pgdrill::scenario::default_image())
    }

    /// Starts a server of `image`, makes the stanza, takes the two sets, writes the batches
    /// around the target time and waits until pgBackRest has archived the segment after them.
    pub(crate) fn make_on(image: &str) -> Self {
        Self::make_with(image, "")
    }

    /// [`PgBackRestSource::make_on`] with more `[global]` options of the source's configuration
    /// (`name=value` lines).
    pub(crate) fn make_with(image: &str, options: &str) -> Self {
        let text = SOURCE_CONFIG.replacen("[global]\n", &format!("[global]\n{options}"), 1);
        let config = SourceFile { name: "pgbackrest.conf", text: &text, inside: "/etc/pgbackrest/pgbackrest.conf" };
        let archive_command = format!("archive_command=pgbackrest --stanza={STANZA} archive-push %p");
        let server = SourceServer::start("pgbackrest", image, &["repo"], &[config], &[&archive_command]);
        server.exec(&["mkdir", "-p", "/tmp/ts1"]);
        server.psql_in("postgres", "CREATE TABLESPACE ts1 LOCATION '/tmp/ts1'").unwrap();
        server.psql("ALTER TABLE public.ledger SET TABLESPACE ts1").unwrap();
        let oid = server.psql_in("postgres", "SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'").unwrap();
        let oid = oid.trim().to_owned();
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
        let mut source = PgBackRestSource { server, labels: Vec::new(), target_time, before, after, last_segment, oid };
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
    pub(crate) fn info(&self) -> serde_json::Value {
        let out = self.server.exec(&["pgbackrest", &format!("--stanza={STANZA}"), "--output=json", "info"]);
        let stanzas: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        stanzas[0].clone()
    }
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

/// A scenario drilling `repo` into database `books`, the ledger's two sides checked, and the
/// tablespace `oid` that holds it in the data directory.
pub(crate) fn scenario(
    scratch: &Scratch,
    repo: &Path,
    source_keys: &str,
    recovery: &str,
    rows: (i64, i64),
    oid: &str,
) -> PathBuf {
    located(scratch, &format!("path = \"{}\"", repo.display()), source_keys, recovery, rows, oid)
}

/// [`scenario`] of a repository wherever `location` (its `[source]` line) says.
pub(crate) fn located(
    scratch: &Scratch,
    location: &str,
    source_keys: &str,
    recovery: &str,
    rows: (i64, i64),
    oid: &str,
) -> PathBuf {
    let (before, after) = rows;
    scratch.scenario(
        &format!("pgbackrest-{}.toml", crate::util::rand_suffix()),
        &format!(
            "[source]\n{location}\n{source_keys}\n\n[target]\ndatabase = \"books\"\n\n{recovery}\n\n\
             [[checks.sql]]\nname = \"rows written before the target\"\n\
             query = \"SELECT count(*) FROM public.ledger WHERE batch = 'before'\"\nexpect = {before}\n\n\
             [[checks.sql]]\nname = \"rows written after it\"\n\
             query = \"SELECT count(*) FROM public.ledger WHERE batch = 'after'\"\nexpect = {after}\n\n\
             {}",
            in_place(oid)
        ),
    )
}

/// The check that tablespace `ts1` (`oid`) is in the data directory, in place, and holds the
/// ledger.
pub(crate) fn in_place(oid: &str) -> String {
    format!(
        "[[checks.sql]]\nname = \"the tablespace is in the data directory\"\n\
         query = \"SELECT pg_catalog.pg_tablespace_location(t.oid), c.relname FROM pg_catalog.pg_tablespace t JOIN pg_catalog.pg_class c ON c.reltablespace = t.oid WHERE t.spcname = 'ts1' AND c.relkind = 'r'\"\n\
         expect_rows = [[\"pg_tblspc/{oid}\", \"ledger\"]]\n"
    )
}

/// A copy of the repository (owners and modes kept, so that the toolbox's user reads it), to
/// break.
pub(crate) fn copy_repo(scratch: &Scratch, repo: &Path, name: &str) -> PathBuf {
    let to = scratch.path(name);
    let out = Command::new("cp").arg("-a").arg(repo).arg(&to).output().unwrap();
    assert!(out.status.success(), "cp: {}", text(&out));
    to
}

/// On both images: pgBackRest 2.55 (17, the default) and 2.60 (18).
#[rstest::rstest]
#[case::pg17(PgBackRestSource::make)]
#[case::pg18(|| PgBackRestSource::make_on(&pgdrill::scenario::project_image(18)))]
fn a_pgbackrest_set_recovers_to_a_chosen_time_from_the_newest_set_before_it(#[case] make: fn() -> PgBackRestSource) {
    use pgdrill::outcome::Phase;

    let source = make();
    let scratch = Scratch::new();
    let [_, incr] = &source.labels[..] else { panic!("two sets: {:?}", source.labels) };
    let at = format!(
        "[recovery]\ntarget_time = \"{}\"\n\n[checks.checksums]\n\n[[checks.point_in_time]]\n\
         present = \"SELECT count(*) = {} FROM public.ledger WHERE batch = 'before'\"\n\
         absent = \"SELECT EXISTS (SELECT 1 FROM public.ledger WHERE batch = 'after')\"",
        source.target_time, source.before
    );
    // Kept as a snapshot, then cloned by the next drill: on the image of the set's own major.
    let store = vec![("PGDRILL_SNAPSHOTS".to_owned(), scratch.path("snapshots").display().to_string())];
    let pitr = scenario(&scratch, &source.repo(), "", &at, (source.before, 0), &source.oid);
    let drill = scratch.drill_env(&pitr, &["--snapshot".into()], &store);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.starts_with(&format!("pgBackRest set {incr} (incr, stanza `drill`")), "{verify}");
    assert!(verify.contains("each of system"), "every archived segment checked: {verify}");
    let restore = drill.phase_summary(Phase::Restore);
    assert!(restore.starts_with("recovered to recovery_target_time"), "{restore}");
    drill.assert_reports_and_no_leftovers();
    let clone = scratch.drill_env(&pitr, &["--reuse".into()], &store);
    assert_eq!(clone.code, Some(0), "{clone:?}");
    assert!(clone.record().clone_of.is_some(), "{clone:?}");
    assert_eq!(
        clone.record().target.as_ref().and_then(|t| t.image.clone()),
        drill.record().target.as_ref().and_then(|t| t.image.clone())
    );
    assert!(clone.phase_summary(Phase::Verify).contains("known: the backup's "), "{clone:?}");
    clone.assert_reports_and_no_leftovers();

    // On the pod, whose image is 17's (after the clone: the pod's run opens the scratch folder,
    // snapshot included, to its containers' user): pgBackRest restores the set in pgdrill's
    // container, its tablespace in place; the checksums check runs through the agent.
    if source.server.image != pgdrill::scenario::project_image(17) {
        return;
    }
    let drill = scratch.pod_drill_passes(&pitr, source.server.dir.path());
    assert!(drill.phase_summary(Phase::Verify).starts_with(&format!("pgBackRest set {incr} (incr")), "{drill:?}");
}

#[test]
fn a_pgbackrest_set_by_label_and_a_hostile_manifest_a_changed_segment_or_an_unknown_set() {
    use pgdrill::outcome::{Phase, PhaseStatus};

    let source = PgBackRestSource::make();
    let scratch = Scratch::new();
    let [full, _] = &source.labels[..] else { panic!("two sets: {:?}", source.labels) };

    // The full set, named, recovered through the whole archive: the rows after the target too.
    let by_label = format!("set = \"{full}\"\nstanza = \"drill\"");
    let drill =
        scratch.drill(&scenario(&scratch, &source.repo(), &by_label, "", (source.before, source.after), &source.oid));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(drill.phase_summary(Phase::Verify).starts_with(&format!("pgBackRest set {full} (full")), "{drill:?}");

    // The repository as root keeps it (folders 0700, files 0600, owned by root): the toolbox
    // reads it with read access alone, nothing changed in place.
    let private = copy_repo(&scratch, &source.repo(), "root-only-repo");
    if crate::util::as_root_keeps_it(&private) {
        let drill =
            scratch.drill(&scenario(&scratch, &private, &by_label, "", (source.before, source.after), &source.oid));
        assert_eq!(drill.code, Some(0), "{drill:?}");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&private).unwrap().permissions());
        assert_eq!(mode & 0o7777, 0o700, "the repository is left as it was");
    }

    // The same repository in S3 (pgBackRest's repo1-type=s3 keeps the same layout under its
    // path): only the set and the WAL from its start are copied.
    let s3 = crate::servers::S3Server::start();
    s3.put_folders("pgbackrest", &[("repo", &source.repo())]);
    let in_s3 = scratch.scenario(
        "pgbackrest-s3.toml",
        &format!(
            "[source]\ns3 = \"s3://pgbackrest/repo/\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\nset = \"{full}\"\n\n\
             [target]\ndatabase = \"books\"\n\n[[checks.sql]]\nname = \"every row\"\nquery = \"SELECT count(*) FROM public.ledger\"\nexpect = {}\n\n{}",
            s3.endpoint,
            source.before + source.after,
            in_place(&source.oid)
        ),
    );
    let drill = scratch.drill_env(&in_s3, &[], &s3.env());
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(drill.phase_summary(Phase::Verify).starts_with(&format!("pgBackRest set {full} (full")), "{drill:?}");
    // A target before every set's end: the oldest set is taken, and the preflight refuses it
    // before any server starts, naming the target, the set's end and what to do.
    let early = "[recovery]\ntarget_time = \"2001-02-03T04:05:06+01:00\"";
    let drill = scratch.drill(&scenario(&scratch, &source.repo(), "", early, (0, 0), &source.oid));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Skipped, "{drill:?}");
    let error = drill.phase_error(Phase::Preflight);
    let expected = format!(
        "recovery_target_time 2001-02-03 03:05:06.000000+00 is before the end of pgBackRest set {full}, the oldest of the stanza's 2 sets, at 20"
    );
    assert!(error.contains(&expected), "{error}");
    assert!(
        error.contains("(its backup-timestamp-stop)") && error.contains("use an older backup taken before the target"),
        "{error}"
    );

    // A set that is not in the repository.
    let drill =
        scratch.drill(&scenario(&scratch, &source.repo(), "set = \"20990101-000000F\"", "", (0, 0), &source.oid));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("lists no backup set `20990101-000000F` (it lists: {full}")), "{error}");

    // A manifest that leads out of the data directory: refused before any container starts.
    let (hostile, _) = hostile_repo(&source.repo(), full, scratch.dir.path());
    let hostile_scenario = scenario(&scratch, &hostile, &format!("set = \"{full}\""), "", (0, 0), &source.oid);
    let drill = scratch.drill(&hostile_scenario);
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("`pg_data/../canary/owned` leads out of the data directory"), "{error}");
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Skipped, "{drill:?}");
    // On the pod, pgBackRest would run in pgdrill's own container, which writes the reports and
    // holds the credentials, with no sandbox of its own around it: refused there too, before
    // pgBackRest runs (nothing is written beside the data directory, in that container's /tmp).
    let drill = scratch.pod_drill(&hostile_scenario, &[], &[]);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Skipped, "no server started: {drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("`pg_data/../canary/owned` leads out of the data directory"), "{error}");

    // An archived segment whose content changed after pgBackRest archived it (its SHA-1 is in
    // its name): the copy into pg_wal stops at it.
    let changed = copy_repo(&scratch, &source.repo(), "changed-repo");
    let folder =
        std::fs::read_dir(changed.join("archive/drill")).unwrap().flatten().find(|e| e.path().is_dir()).unwrap().path();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|log| std::fs::read_dir(log.path()).unwrap().flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "gz"))
        .collect();
    files.sort();
    let victim = files.last().unwrap();
    std::fs::write(victim, flip_gzipped(&std::fs::read(victim).unwrap(), 100_000)).unwrap();
    let segment = victim.file_name().unwrap().to_string_lossy()[..24].to_owned();
    let drill = scratch.drill(&scenario(&scratch, &changed, "", "", (0, 0), &source.oid));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("segment {segment} has SHA-1")), "{error}");
    assert!(error.contains("the file changed since"), "{error}");

    // A file of the tablespace changed in the repository: pgBackRest checks each file it
    // restores against the set's manifest, and verify names the file (one lost from an
    // encrypted repository: `pgbackrest_encrypted.rs`).
    let damaged = copy_repo(&scratch, &source.repo(), "changed-tablespace");
    let victim = largest_file_of_tablespace(&damaged, full, &source.oid);
    std::fs::write(&victim, flip_gzipped(&std::fs::read(&victim).unwrap(), 100)).unwrap();
    let drill = scratch.drill(&scenario(&scratch, &damaged, &by_label, "", (0, 0), &source.oid));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("pgBackRest could not restore set {full}")), "{error}");
    assert!(error.contains(&format!("pg_tblspc/{}/", source.oid)), "{error}");

    // Followed (`pgdrill follow`): a copy of the repository, segment by segment; then the
    // repository in S3, listed there a log's folder at a time.
    crate::follow::a_follower_of_a_pgbackrest_repository(&source, &scratch);
    crate::follow::a_follower_of_a_pgbackrest_repository_in_s3(&source, &scratch, &s3);
}

/// The largest file of tablespace `oid` in set `label` of the repository `repo` (the ledger's).
pub(crate) fn largest_file_of_tablespace(repo: &Path, label: &str, oid: &str) -> PathBuf {
    let files = crate::util::files_under(&repo.join(format!("backup/{STANZA}/{label}/pg_tblspc/{oid}")));
    files.into_iter().max_by_key(|f| std::fs::metadata(f).unwrap().len()).expect("the tablespace's files")
}

/// `gzipped` decompressed, its byte `at` flipped, compressed again.
fn flip_gzipped(gzipped: &[u8], at: usize) -> Vec<u8> {
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzipped), &mut content).unwrap();
    content[at] ^= 0xFF;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &content).unwrap();
    encoder.finish().unwrap()
}
