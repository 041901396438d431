//! Barman's backups, made by Debian's Barman (in the project's image) against a source server of
//! the image: `backup_method = postgres` (pg_basebackup), WAL archived by the server's
//! `archive_command` into Barman's `incoming/` and moved into `wals/` by `barman archive-wal`,
//! compressed by Barman in place (lz4 first, then bzip2: `pybzip2`). Two backups: the first in
//! plain format, the second in tar format compressed with gzip; then the rows around a target
//! time. A drill recovers from the newest finished backup (or the one `set` names) through the
//! server's `wals/`; a backup Barman did not finish, or a segment lost from `wals/`, fails in
//! verify.
//!
//! How Barman is run here was found by running it (no ssh: Barman and the server share the
//! container; no `barman cron` or receive-wal in the background, whose orphans the server, as
//! the container's first process, would reap as crashed children): `barman backup` without
//! `--wait` (its last segment arrives with the next switch), `barman switch-wal --force
//! --archive`, then `barman check-backup` to mark it DONE.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgdrill::outcome::{Phase, PhaseStatus};

use crate::source_server::{SourceFile, SourceServer, text, wait_for};
use crate::util::Scratch;

/// The server's name in Barman's configuration, and so its folder.
const SERVER: &str = "pg";

struct BarmanSource {
    server: SourceServer,
    /// The backups, oldest first: plain, then tar + gzip.
    ids: Vec<String>,
    target_time: String,
    before: i64,
}

/// The project's PostgreSQL 17 image with Barman in it (`ci/image/build` makes it for a tag
/// ending in `-barman`; a drill's image carries no Barman): built here when missing, once for
/// all the tests that ask at the same time (the builder waits on a lock of the tag's).
fn barman_image() -> String {
    let image = format!("{}-barman", pgdrill::scenario::project_image(17));
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/image/build");
    let output = Command::new("bash").arg(build).env("PGDRILL_IMAGE", &image).output().expect("run ci/image/build");
    assert!(
        output.status.success(),
        "building {image}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    image
}

fn config(compression: &str, tar: bool) -> String {
    let tar = if tar { "backup_compression = gzip\nbackup_compression_format = tar\n" } else { "" };
    format!(
        "[barman]\nbarman_home = /barman/home\nbarman_user = postgres\nlog_file = /barman/barman.log\n\n\
         [{SERVER}]\ndescription = \"pgdrill's drills\"\nconninfo = host=/var/run/postgresql user=postgres dbname=postgres\n\
         streaming_conninfo = host=/var/run/postgresql user=postgres\nbackup_method = postgres\narchiver = on\n\
         compression = {compression}\nimmediate_checkpoint = true\n{tar}"
    )
}

impl BarmanSource {
    /// The server's folder, as Barman keeps it.
    fn folder(&self) -> PathBuf {
        self.server.dir.path().join(format!("barman/home/{SERVER}"))
    }

    fn barman(&self, args: &[&str]) -> String {
        self.server.exec(&[&["barman", "-c", "/barman/barman.conf"], args].concat())
    }

    fn configure(&self, compression: &str, tar: bool) {
        let path = self.server.dir.path().join("barman/barman.conf");
        std::fs::write(&path, config(compression, tar)).unwrap();
    }

    fn make() -> Self {
        let hba = SourceFile {
            name: "pg_hba.conf",
            text: "local all all trust\nlocal replication all trust\n",
            inside: "/etc/pgdrill-test-hba.conf",
        };
        let incoming = format!("/barman/home/{SERVER}/incoming");
        let archive_command = format!("archive_command=cp %p {incoming}/%f.tmp && mv {incoming}/%f.tmp {incoming}/%f");
        let server = SourceServer::start(
            "barman",
            &barman_image(),
            &["barman"],
            &[hba],
            &["hba_file=/etc/pgdrill-test-hba.conf", &archive_command],
        );
        server.exec(&["mkdir", "-p", &incoming]);
        let mut source = BarmanSource { server, ids: Vec::new(), target_time: String::new(), before: 40 };
        source.configure("lz4", false);
        source.barman(&["switch-wal", "--force", "--archive", "--archive-timeout", "60", SERVER]);
        source.barman(&["check", SERVER]);
        for tar in [false, true] {
            source.configure("lz4", tar);
            source.barman(&["backup", SERVER]);
            let newest = source.barman(&["list-backups", "--minimal", SERVER]);
            source.ids.push(newest.lines().next().unwrap().trim().to_owned());
        }
        // The WAL after the backups, bzip2-compressed: one archive, two compressions.
        source.configure("pybzip2", true);
        let around = source.server.write_around_target(source.before, 25);
        source.target_time = around.target_time;
        source.barman(&["switch-wal", "--force", "--archive", "--archive-timeout", "60", SERVER]);
        let last = source.folder().join(format!("wals/{}/{}", &around.last_segment[..16], around.last_segment));
        wait_for(&format!("Barman to archive {}", around.last_segment), || {
            source.barman(&["archive-wal", SERVER]);
            last.is_file()
        });
        for id in source.ids.clone() {
            source.barman(&["check-backup", SERVER, &id]);
            let info = std::fs::read_to_string(source.folder().join(format!("meta/{id}-backup.info"))).unwrap();
            assert!(info.contains("status=DONE"), "backup {id}: {info}");
        }
        // Barman's files are its user's, 0600: readable here for the copies the tests break.
        source.server.exec(&["chmod", "-R", "go+rX", "/barman/home"]);
        source
    }
}

fn scenario(scratch: &Scratch, source: &BarmanSource, server: &Path, extra: &str) -> PathBuf {
    scratch.scenario(
        &format!("barman-{}.toml", crate::util::rand_suffix()),
        &format!(
            "[source]\npath = \"{}\"\n{extra}\n\n[target]\ndatabase = \"books\"\n\n[recovery]\ntarget_time = \"{}\"\n\n\
             [[checks.point_in_time]]\npresent = \"SELECT count(*) = {} FROM public.ledger WHERE batch = 'before'\"\n\
             absent = \"SELECT EXISTS (SELECT 1 FROM public.ledger WHERE batch = 'after')\"\n\n[checks.amcheck]\n",
            server.display(),
            source.target_time,
            source.before,
        ),
    )
}

/// A copy of the server's folder, its files still Barman's user's.
fn copy_server(scratch: &Scratch, source: &BarmanSource, name: &str) -> PathBuf {
    let to = scratch.path(name);
    let out = Command::new("cp").arg("-a").arg(source.folder()).arg(&to).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    to
}

#[test]
fn a_barman_backup_recovers_through_its_compressed_wals_and_an_unfinished_backup_or_a_lost_segment_fails() {
    let source = BarmanSource::make();
    let scratch = Scratch::new();
    let (plain, tar) = (&source.ids[0], &source.ids[1]);
    // Barman compressed its WAL in place, under the segments' own names: lz4 then bzip2.
    let magics: Vec<Vec<u8>> = std::fs::read_dir(source.folder().join("wals/0000000100000000"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().len() == 24)
        .map(|p| std::fs::read(p).unwrap()[..4].to_vec())
        .collect();
    assert!(magics.iter().any(|m| m == &[0x04, 0x22, 0x4d, 0x18]), "an lz4 segment");
    assert!(magics.iter().any(|m| m.starts_with(b"BZh")), "a bzip2 segment");

    // The newest finished backup: tar format, gzip; its WAL lz4 then bzip2, as Barman wrote it.
    // Kept as a snapshot, then cloned by the next drill (the server's `wals/` is not part of
    // the backup's files: the segments recovery replayed are).
    let store = vec![("PGDRILL_SNAPSHOTS".to_owned(), scratch.path("snapshots").display().to_string())];
    let everything = scenario(&scratch, &source, &source.folder(), "");
    let drill = scratch.drill_env(&everything, &["--snapshot".into()], &store);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(
        verify.contains(&format!("Barman backup {tar} of server `pg` (tar, `base.tar.gz`; 1 of 2 finished)")),
        "{verify}"
    );
    assert!(verify.contains("pg_verifybackup: ") && verify.contains("match backup_manifest"), "{verify}");
    drill.assert_reports_and_no_leftovers();
    let clone = scratch.drill_env(&everything, &["--reuse".into()], &store);
    assert_eq!(clone.code, Some(0), "{clone:?}");
    assert!(clone.record().clone_of.is_some(), "{clone:?}");
    clone.assert_reports_and_no_leftovers();

    // On the pod (after the clone: its run opens the scratch folder, snapshot included, to its
    // containers' user): the same backup, its WAL decompressed by pgdrill in its container.
    let drill = scratch.pod_drill_passes(&everything, source.server.dir.path());
    assert!(drill.phase_summary(Phase::Verify).contains(&format!("Barman backup {tar} of server `pg`")), "{drill:?}");

    // The server's folder as root keeps it (folders 0700, files 0600, owned by root): drilled
    // as it is, nothing changed in place.
    let private = copy_server(&scratch, &source, "root-only");
    if crate::util::as_root_keeps_it(&private) {
        let drill = scratch.drill(&scenario(&scratch, &source, &private, ""));
        assert_eq!(drill.code, Some(0), "{drill:?}");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&private).unwrap().permissions());
        assert_eq!(mode & 0o7777, 0o700, "the folder is left as it was");
    }

    // The one named: plain format.
    let drill = scratch.drill(&scenario(&scratch, &source, &source.folder(), &format!("set = \"{plain}\"")));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(
        drill.phase_summary(Phase::Verify).contains(&format!("Barman backup {plain} of server `pg` (plain;")),
        "{drill:?}"
    );

    // A backup Barman did not finish, named: refused before anything starts.
    let unfinished = copy_server(&scratch, &source, "unfinished");
    let info = unfinished.join(format!("meta/{tar}-backup.info"));
    let text_of = std::fs::read_to_string(&info).unwrap().replace("status=DONE", "status=FAILED");
    std::fs::write(&info, text_of).unwrap();
    let drill = scratch.drill(&scenario(&scratch, &source, &unfinished, &format!("set = \"{tar}\"")));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("backup {tar} is FAILED: Barman did not finish it")), "{error}");

    // A segment lost from the server's wals: the gap is named.
    let lost = copy_server(&scratch, &source, "lost-segment");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(lost.join("wals/0000000100000000"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().len() == 24)
        .collect();
    segments.sort();
    let gone = segments[segments.len() - 2].clone();
    std::fs::remove_file(&gone).unwrap();
    let drill = scratch.drill(&scenario(&scratch, &source, &lost, ""));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    let name = gone.file_name().unwrap().to_string_lossy().into_owned();
    assert!(error.contains(&format!("has no segment {name}")), "{error}");

    // Followed (`pgdrill follow`): a copy of the server's folder, segment by segment as Barman
    // moves each into its `wals/`.
    let followed = copy_server(&scratch, &source, "followed");
    let advance = || {
        let closed = source
            .server
            .psql("INSERT INTO public.ledger (id, batch) SELECT max(id) + 1, 'followed' FROM public.ledger; SELECT pg_walfile_name(pg_switch_wal())")
            .unwrap();
        let segment = closed.lines().last().unwrap().trim().to_owned();
        let file = source.folder().join(format!("wals/{}/{segment}", &segment[..16]));
        wait_for(&format!("Barman to archive {segment}"), || {
            source.barman(&["archive-wal", SERVER]);
            file.is_file()
        });
        source.server.exec(&["chmod", "-R", "go+rX", "/barman/home"]);
        (segment, file)
    };
    crate::follow::a_follower_of_a_barman_server(&scratch, &followed, &advance);
}

/// barman-cloud: the same source's backup and WAL written by `barman-cloud-backup` (a tar with
/// gzip, no manifest) and `barman-cloud-wal-archive` (lz4, each segment under its name and
/// `.lz4`) into an S3-compatible server on loopback (the source on the host's network to reach
/// it), drilled from there: the chosen backup and the WAL from its start on are copied; then
/// followed there.
#[test]
fn a_barman_cloud_backup_in_object_storage_recovers_to_a_time() {
    let s3 = crate::servers::S3Server::start();
    s3.put("barman", &[]);
    let hba = SourceFile {
        name: "pg_hba.conf",
        text: "local all all trust\nlocal replication all trust\n",
        inside: "/etc/pgdrill-test-hba.conf",
    };
    let cloud = format!("--endpoint-url {} s3://barman/cloud", s3.endpoint);
    let archive_command = format!("archive_command=barman-cloud-wal-archive --lz4 {cloud} main %p");
    let env: Vec<String> = [
        format!("AWS_ACCESS_KEY_ID={}", crate::servers::S3_ACCESS_KEY),
        format!("AWS_SECRET_ACCESS_KEY={}", crate::servers::S3_SECRET_KEY),
        "AWS_DEFAULT_REGION=us-east-1".to_owned(),
    ]
    .to_vec();
    let mut options = vec!["--network", "host"];
    for pair in &env {
        options.extend(["-e", pair.as_str()]);
    }
    let server = SourceServer::start_in(
        "barman-cloud",
        &barman_image(),
        (&[], &[hba], &["hba_file=/etc/pgdrill-test-hba.conf", &archive_command]),
        &options,
    );
    let backup = format!(
        "barman-cloud-backup --endpoint-url {} -h /var/run/postgresql -U postgres --immediate-checkpoint -z s3://barman/cloud main",
        s3.endpoint
    );
    server.exec(&["sh", "-c", &backup]);
    let before = 40;
    let around = server.write_around_target(before, 25);
    // Restored for real (into /dev/null): `--test` only tries the connection, and the drill raced
    // the archiver on a busy machine.
    let listing = format!("barman-cloud-wal-restore {cloud} main {} /dev/null", around.last_segment);
    wait_for(&format!("barman-cloud to archive {}", around.last_segment), || {
        Command::new("docker").args(["exec", &server.name, "sh", "-c", &listing]).status().is_ok_and(|s| s.success())
    });

    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "barman-cloud.toml",
        &format!(
            "[source]\ns3 = \"s3://barman/cloud/main/\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\n\
             [target]\ndatabase = \"books\"\n\n[recovery]\ntarget_time = \"{}\"\n\n\
             [[checks.point_in_time]]\npresent = \"SELECT count(*) = {before} FROM public.ledger WHERE batch = 'before'\"\n\
             absent = \"SELECT EXISTS (SELECT 1 FROM public.ledger WHERE batch = 'after')\"\n",
            s3.endpoint, around.target_time
        ),
    );
    let drill = scratch.drill_env(&scenario, &[], &s3.env());
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(
        verify.contains("barman-cloud backup ") && verify.contains("of server `main` (tar, `data.tar.gz`"),
        "{verify}"
    );
    assert!(verify.contains("barman-cloud writes no manifest"), "{verify}");
    drill.assert_reports_and_no_leftovers();

    // Followed (`pgdrill follow`) in the bucket, as barman-cloud uploads each segment.
    crate::follow::a_follower_of_a_barman_cloud_server(&scratch, &s3, &server);
}
