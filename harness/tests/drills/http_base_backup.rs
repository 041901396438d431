//! A pg_basebackup folder on a web server (a URL ending in `/`), fetched by its own
//! `backup_manifest` since a web server lists no folder: tar and plain formats recover, a file
//! damaged on the server fails in verify, a hostile manifest and a folder without one fail in
//! fetch.

use std::path::Path;

use pgdrill::outcome::{Phase, PhaseStatus};

use crate::physical::PhysicalSource;
use crate::servers::FolderServer;
use crate::util::Scratch;

/// A scenario drilling the base backup at `url`, with `extra` (a WAL archive, a recovery
/// target) and checks of how many rows of each batch it holds.
fn scenario(scratch: &Scratch, url: &str, extra: &str, before: i64, after: i64) -> std::path::PathBuf {
    scratch.scenario(
        &format!("http-{}.toml", crate::util::rand_suffix()),
        &format!(
            "[source]\nurl = \"{url}\"\n{extra}\n\n[target]\ndatabase = \"books\"\n\n\
             [[checks.sql]]\nname = \"rows written before the target\"\n\
             query = \"SELECT count(*) FROM public.ledger WHERE batch = 'before'\"\nexpect = {before}\n\n\
             [[checks.sql]]\nname = \"no row written after the target\"\n\
             query = \"SELECT count(*) FROM public.ledger WHERE batch = 'after'\"\nexpect = {after}\n"
        ),
    )
}

fn copy_tree(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp").arg("-r").arg(from).arg(to).status().unwrap();
    assert!(status.success(), "cp -r {} {}", from.display(), to.display());
}

#[test]
fn a_base_backup_folder_over_http_recovers_by_its_manifest_and_a_damaged_hostile_or_unlisted_one_fails() {
    let source = PhysicalSource::make();
    let scratch = Scratch::new();
    let web = scratch.path("web");
    std::fs::create_dir_all(&web).unwrap();
    std::os::unix::fs::symlink(source.backup(), web.join("tar")).unwrap();
    std::os::unix::fs::symlink(source.plain(), web.join("plain")).unwrap();
    let server = FolderServer::start(&web);

    // Tar format (base.tar.gz, pg_wal.tar.gz), through a local archive to the target time.
    let archive = format!(
        "wal_archive = \"{}\"\n\n[recovery]\ntarget_time = \"{}\"",
        source.archive().display(),
        source.target_time
    );
    let drill = scratch.drill(&scenario(&scratch, &server.url("tar/"), &archive, source.before, 0));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_eq!(drill.record().backup.as_ref().unwrap().location, server.url("tar/"));
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.starts_with("base backup (tar, `base.tar.gz`) of PostgreSQL 17"), "{verify}");
    assert!(drill.phase_summary(Phase::Restore).starts_with("recovered to recovery_target_time "), "{drill:?}");
    drill.assert_reports_and_no_leftovers();
    let asked = server.requested.lock().unwrap().clone();
    assert!(asked.contains(&"tar/pg_wal.tar.gz".to_owned()), "{asked:?}");

    // Plain format, every file its manifest lists, and its own WAL (-X stream, in pg_wal/): no
    // archive, so it recovers to its end, before either batch.
    let drill = scratch.drill(&scenario(&scratch, &server.url("plain/"), "", 0, 0));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.starts_with("base backup (plain) of PostgreSQL 17"), "{verify}");
    assert!(verify.contains("with its own WAL"), "{verify}");
    drill.assert_reports_and_no_leftovers();

    // A file changed on the server (its size kept): pg_verifybackup names it.
    copy_tree(&source.plain(), &web.join("damaged"));
    let victim = web.join("damaged/global/1262");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[4000] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let drill = scratch.drill(&scenario(&scratch, &server.url("damaged/"), "", 0, 0));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("global/1262"), "{error}");

    // A manifest leading out of the folder: refused before anything but it is downloaded.
    std::fs::create_dir(web.join("hostile")).unwrap();
    std::fs::write(
        web.join("hostile/backup_manifest"),
        r#"{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [{"Path": "PG_VERSION", "Size": 3}, {"Path": "../x", "Size": 5}]}"#,
    )
    .unwrap();
    std::fs::write(web.join("x"), "owned").unwrap();
    server.requested.lock().unwrap().clear();
    let drill = scratch.drill(&scenario(&scratch, &server.url("hostile/"), "", 0, 0));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Fetch), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Fetch);
    assert!(error.contains("the backup_manifest lists `../x`, which leads out of the backup's folder"), "{error}");
    assert_eq!(*server.requested.lock().unwrap(), ["hostile/backup_manifest"], "nothing else was fetched");

    // A folder without a manifest (a --no-manifest backup, or a dump's folder).
    std::fs::create_dir(web.join("dumps")).unwrap();
    std::fs::write(web.join("dumps/plur.sql.gz"), "not fetched").unwrap();
    let drill = scratch.drill(&scenario(&scratch, &server.url("dumps/"), "", 0, 0));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Fetch), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Fetch);
    for part in
        ["dumps/` has no backup_manifest (404)", "pg_basebackup --no-manifest", "a dump is named by its file's URL"]
    {
        assert!(error.contains(part), "{part}: {error}");
    }
}
