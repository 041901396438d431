//! Followers of the archives of repositories and servers, each run at the end of its own test on
//! the source that test made (`pgbackrest.rs`, `barman.rs`): a pgBackRest repository in a folder
//! and in S3, a Barman server in a folder, and a barman-cloud server in S3 that barman-cloud
//! itself archives to.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Follower, ledger_segments, stop, switch};
use crate::pgbackrest::{PgBackRestSource, STANZA, copy_repo};
use crate::source_server::{SourceServer, wait_for};
use crate::util::{Scratch, pgdrill_bin};

/// A follower of a pgBackRest repository in a folder (a copy of `source`'s, into which the test
/// copies each segment pgBackRest archives, as `<segment>-<sha1>.gz` in its log's folder): see
/// [`follows_a_copied_archive`]. Run by the repository's test (`pgbackrest.rs`), on its source.
pub(crate) fn a_follower_of_a_pgbackrest_repository(source: &PgBackRestSource, scratch: &Scratch) {
    let followed = copy_repo(scratch, &source.repo(), "followed-repo");
    let archive = followed.join(pgbackrest_archive(source));
    let copied = Copied {
        name: "pgbackrest",
        source: format!("path = \"{}\"", followed.display()),
        env: Vec::new(),
        shown: archive.display().to_string(),
        upload: &|file: &Path| upload_into(&archive, file),
    };
    let follower = follows_a_copied_archive(scratch, &copied, &|| pgbackrest_advance(source));
    a_folder_that_cannot_be_listed_is_a_store_fault(follower, &archive);
}

/// The same of the repository in S3 (`s3`'s bucket `pgbackrest`, under `repo/`, as
/// `repo1-type=s3` keeps it), its archive listed a log's folder at a time, each new segment put
/// there as pgBackRest would; `scenario` drills it (its `[source]` names the bucket).
pub(crate) fn a_follower_of_a_pgbackrest_repository_in_s3(
    source: &PgBackRestSource,
    scratch: &Scratch,
    s3: &crate::servers::S3Server,
) {
    // What the source archived since the repository was put there too.
    s3.put_folders("pgbackrest", &[("repo", &source.repo())]);
    let archive = pgbackrest_archive(source);
    let upload = |file: &Path| {
        let log = file.parent().unwrap().file_name().unwrap().to_string_lossy();
        let key = format!("repo/{archive}/{log}/{}", file.file_name().unwrap().to_string_lossy());
        s3.put_objects("pgbackrest", &[(&key, std::fs::read(file).unwrap())]);
    };
    let copied = Copied {
        name: "pgbackrest-s3",
        source: format!("s3 = \"s3://pgbackrest/repo/\"\nendpoint = \"{}\"\nregion = \"us-east-1\"", s3.endpoint),
        env: s3.env(),
        shown: format!("s3://pgbackrest/repo/{archive}/"),
        upload: &upload,
    };
    let mut follower = follows_a_copied_archive(scratch, &copied, &|| pgbackrest_advance(source));
    assert_eq!(stop(&mut follower), Some(0), "{}", follower.said());
    assert!(!follower.said().contains(crate::servers::S3_SECRET_KEY));
}

/// The archive folder of `source`'s cluster in its repository, relative to it.
fn pgbackrest_archive(source: &PgBackRestSource) -> String {
    let archive_id = source.info()["archive"][0]["id"].as_str().unwrap().to_owned();
    format!("archive/{STANZA}/{archive_id}")
}

/// Switches WAL on `source` and waits until pgBackRest archived the segment closed: its name,
/// and its file in the repository.
fn pgbackrest_advance(source: &PgBackRestSource) -> (String, PathBuf) {
    let name = switch(&source.server);
    let folder = source.repo().join(pgbackrest_archive(source)).join(&name[..16]);
    let archived = || {
        let entries = std::fs::read_dir(&folder).ok()?;
        // Not its temporary file (`.gz.pgbackrest.tmp`), before pgBackRest renames it.
        let done = |file: &str| file.starts_with(&name) && file.ends_with(".gz");
        entries.flatten().map(|e| e.path()).find(|p| done(&p.file_name().unwrap().to_string_lossy()))
    };
    wait_for(&format!("pgBackRest to archive {name}"), || archived().is_some());
    let file = archived().unwrap();
    (name, file)
}

/// A follower of a Barman server in a folder (a copy of the server's, into which the test copies
/// each segment Barman moved into its `wals/`, compressed as Barman keeps it): see
/// [`follows_a_copied_archive`]. Run by Barman's test (`barman.rs`), on its source.
pub(crate) fn a_follower_of_a_barman_server(
    scratch: &Scratch,
    followed: &Path,
    advance: &dyn Fn() -> (String, PathBuf),
) {
    let archive = followed.join("wals");
    let copied = Copied {
        name: "barman",
        source: format!("path = \"{}\"", followed.display()),
        env: Vec::new(),
        shown: archive.display().to_string(),
        upload: &|file: &Path| upload_into(&archive, file),
    };
    let follower = follows_a_copied_archive(scratch, &copied, advance);
    a_folder_that_cannot_be_listed_is_a_store_fault(follower, &archive);
}

/// A follower of a barman-cloud server in S3 (`s3`'s bucket `barman`, server `main` under
/// `cloud/`), which `server`'s `archive_command` (`barman-cloud-wal-archive`) writes to: each
/// segment the source closes is uploaded by barman-cloud itself, listed in the server's `wals`
/// a log's folder at a time, replayed and recorded in order. Run by barman-cloud's test.
pub(crate) fn a_follower_of_a_barman_cloud_server(
    scratch: &Scratch,
    s3: &crate::servers::S3Server,
    server: &SourceServer,
) {
    let scenario = scratch.scenario(
        "follow-barman-cloud.toml",
        &format!(
            "name = \"books-barman-cloud\"\n[source]\ns3 = \"s3://barman/cloud/main/\"\nendpoint = \"{}\"\n\
             region = \"us-east-1\"\n\n[target]\ndatabase = \"books\"\n",
            s3.endpoint
        ),
    );
    let state = scratch.path("state-barman-cloud");
    let mut command = Command::new(pgdrill_bin());
    command.arg("follow").arg(&scenario).args(["--look-every", "1s"]).envs(s3.env());
    let mut follower = Follower::spawn(scratch, command, &state, "barman-cloud");
    follower.wait_said("following `s3://barman/cloud/main/wals/`");
    let (one, two) = (switch(server), switch(server));
    follower.wait_said(&format!("replayed {two}"));
    assert!(ledger_segments(&state).ends_with(&[one, two]), "{}", follower.said());
    assert_eq!(stop(&mut follower), Some(0), "{}", follower.said());
    assert!(!follower.said().contains(crate::servers::S3_SECRET_KEY));
}

/// A followed archive the test copies the source's segments into.
struct Copied<'a> {
    name: &'a str,
    /// The scenario's `[source]` table.
    source: String,
    /// The follower's environment.
    env: Vec<(String, String)>,
    /// The archive, as the follower says it follows it.
    shown: String,
    /// Copies a file of the source's archive into the followed archive's folder of the same log.
    upload: &'a dyn Fn(&Path),
}

/// Copies `file` (in its log's folder) into the archive folder `archive`'s folder of the same
/// log, under a hidden name renamed once whole.
fn upload_into(archive: &Path, file: &Path) {
    let into = archive.join(file.parent().unwrap().file_name().unwrap());
    std::fs::create_dir_all(&into).unwrap();
    let partial = into.join(".partial");
    std::fs::copy(file, &partial).unwrap();
    std::fs::rename(partial, into.join(file.file_name().unwrap())).unwrap();
}

/// Follows the backup `copied` names, `advance` archiving a segment at the source and saying its
/// name and file there: new segments are replayed, and one missing is a gap until it is there.
fn follows_a_copied_archive(scratch: &Scratch, copied: &Copied, advance: &dyn Fn() -> (String, PathBuf)) -> Follower {
    let name = copied.name;
    let scenario = scratch.scenario(
        &format!("follow-{name}.toml"),
        &format!("name = \"books-{name}\"\n[source]\n{}\n\n[target]\ndatabase = \"books\"\n", copied.source),
    );
    let state = scratch.path(&format!("state-{name}"));
    let mut command = Command::new(pgdrill_bin());
    // A store listed each second (not every five, as by default), for a short test.
    command.arg("follow").arg(&scenario).args(["--look-every", "1s"]).envs(copied.env.clone());
    let follower = Follower::spawn(scratch, command, &state, name);
    follower.wait_said(&format!("following `{}`", copied.shown));
    let (one, file) = advance();
    (copied.upload)(&file);
    follower.wait_said(&format!("replayed {one}"));

    let ((two, missing), (three, later)) = (advance(), advance());
    (copied.upload)(&later);
    follower.wait_said(&format!("FAULT gap: segment {two} is not in the archive"));
    (copied.upload)(&missing);
    follower.wait_said(&format!("replayed {three}"));
    assert!(ledger_segments(&state).ends_with(&[one, two, three]), "{}", follower.said());
    follower
}

/// An archive folder that cannot be listed is the `store` fault until it can; then the
/// follower stops cleanly.
fn a_folder_that_cannot_be_listed_is_a_store_fault(mut follower: Follower, archive: &Path) {
    let away = archive.with_extension("away");
    std::fs::rename(archive, &away).unwrap();
    follower.wait_said("FAULT store: the archive cannot be listed: ");
    assert!(follower.said().contains(&format!("`{}`", archive.display())), "{}", follower.said());
    std::fs::rename(&away, archive).unwrap();
    follower.wait_line(&["cleared after", " s: store: the archive cannot be listed"]);
    assert_eq!(stop(&mut follower), Some(0), "{}", follower.said());
}
