//! The source's tests: a local backup located (a file, a directory-format archive, the newest
//! in a folder), its size against the previous one, and what the fetch phase says of it.

use super::*;

fn spec(location: SourceLocation) -> SourceSpec {
    SourceSpec {
        location,
        expected_sha256: None,
        min_size_ratio: 0.1,
        trusted: None,
        wal_archive: None,
        stanza: None,
        set: None,
        tablespaces: Tablespaces::default(),
        cipher_pass: None,
        decrypt: Vec::new(),
        changed: Vec::new(),
        verify_first: false,
        one_pass: false,
        given: false,
        sample: None,
    }
}

async fn fetched(spec: &SourceSpec, work: &Path) -> Result<Backup, SourceError> {
    fetch(spec, work, &Default::default(), &Redactor::new(), &|_, _| {}).await.map(|(backup, _)| backup)
}

fn backup(size: u64, previous: Option<(&str, u64)>) -> Backup {
    Backup {
        location: "/backups/orders-2026-03-02.sql.gz".into(),
        path: "/backups/orders-2026-03-02.sql.gz".into(),
        size,
        modified: None,
        previous: previous.map(|(name, size)| (name.to_owned(), size)),
        wal_archive: None,
        keys: Vec::new(),
        remote: None,
    }
}

#[test]
fn the_fetch_summary_says_where_how_big_and_the_previous_backup() {
    assert_eq!(backup(3 << 20, None).summary(), "/backups/orders-2026-03-02.sql.gz (3.0 MiB)");
    assert_eq!(
        backup(3 << 20, Some(("orders-2026-03-01.sql.gz", 2048))).summary(),
        "/backups/orders-2026-03-02.sql.gz (3.0 MiB); the previous backup, orders-2026-03-01.sql.gz, was 2.0 KiB"
    );
}

#[test]
fn a_backup_under_the_ratio_of_the_previous_one_is_suspect() {
    assert!(check_size(&backup(10, None), 0.1).is_ok(), "nothing to compare with");
    assert!(check_size(&backup(100, Some(("before", 1000))), 0.1).is_ok(), "exactly at the ratio");
    assert!(check_size(&backup(5000, Some(("before", 1000))), 0.1).is_ok(), "a backup may grow");
    let error = check_size(&backup(99, Some(("orders-2026-03-01.sql.gz", 1000))), 0.1).unwrap_err();
    assert_eq!(
        error.to_string(),
        "`/backups/orders-2026-03-02.sql.gz` is 99 B (99 bytes), under 10% of the previous backup \
         `orders-2026-03-01.sql.gz` (1000 B, 1000 bytes): a backup that shrank this much is suspect \
         (hint: set `source.min_size_ratio` if the drop is expected)"
    );
}

#[test]
fn tablespaces_are_empty_only_without_the_backups_and_the_members() {
    let mut tablespaces = Tablespaces::default();
    assert!(tablespaces.is_empty());
    tablespaces.members.insert("incr2".into(), [(16384, PathBuf::from("/ts"))].into());
    assert!(!tablespaces.is_empty());
}

#[tokio::test]
async fn a_file_is_the_backup_and_its_wal_archive_comes_along() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.dump");
    std::fs::write(&file, b"PGDMP and more").unwrap();
    let mut spec = spec(SourceLocation::File(file.clone()));
    spec.wal_archive = Some(WalArchiveLocation::Dir(dir.path().join("wal")));
    let backup = fetched(&spec, &dir.path().join("work")).await.unwrap();
    assert_eq!((backup.location, backup.path.as_path(), backup.size), (file.display().to_string(), &*file, 14));
    assert!(backup.modified.is_some() && backup.previous.is_none() && backup.keys.is_empty());
    assert_eq!(backup.wal_archive, Some(dir.path().join("wal")));
    assert!(!dir.path().join("work").exists(), "a local file is read where it is");
}

#[tokio::test]
async fn a_missing_backup_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.sql");
    let error = fetched(&spec(SourceLocation::File(missing.clone())), dir.path()).await.unwrap_err();
    assert_eq!(error.to_string(), format!("backup `{}` cannot be read", missing.display()));
    assert!(matches!(error, SourceError::Unreadable { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
}

#[tokio::test]
async fn a_folder_backup_is_as_big_as_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("orders.dir");
    std::fs::create_dir_all(archive.join("nested")).unwrap();
    std::fs::write(archive.join("toc.dat"), [0u8; 100]).unwrap();
    std::fs::write(archive.join("3456.dat.gz"), [0u8; 20]).unwrap();
    std::fs::write(archive.join("nested").join("file"), [0u8; 3]).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", archive.join("link")).unwrap();
    let backup = fetched(&spec(SourceLocation::File(archive)), dir.path()).await.unwrap();
    assert_eq!(backup.size, 123, "files in its folders counted, links not followed");
}

/// The newest of a folder's backups (a file, or a directory-format archive's folder: any other
/// folder is not a backup), with the one before it for the size check, which fails the fetch.
#[tokio::test]
async fn the_newest_in_a_folder_is_chosen_and_compared_with_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path();
    std::fs::write(folder.join("orders-2026-03-01.sql"), [0u8; 1000]).unwrap();
    std::fs::write(folder.join("orders-2026-03-02.sql"), [0u8; 2000]).unwrap();
    std::fs::create_dir(folder.join("orders-2026-03-09.sql")).unwrap();
    let pattern = Some(NamePattern::parse("orders-{date}.sql").unwrap());
    let spec = spec(SourceLocation::Newest { dir: folder.to_owned(), pattern });
    let backup = fetched(&spec, &folder.join("work")).await.unwrap();
    assert_eq!(backup.path, folder.join("orders-2026-03-02.sql"));
    assert_eq!(backup.previous, Some(("orders-2026-03-01.sql".to_owned(), 1000)));

    let archive = folder.join("orders-2026-03-03.sql");
    std::fs::create_dir(&archive).unwrap();
    std::fs::write(archive.join("toc.dat"), [0u8; 10]).unwrap();
    let error = fetched(&spec, &folder.join("work")).await.unwrap_err();
    assert!(matches!(&error, SourceError::Shrunk { size: 10, previous_size: 2000, .. }), "{error:?}");
}

#[tokio::test]
async fn a_folder_without_a_matching_backup_has_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
    let pattern = Some(NamePattern::parse("orders-{date}.sql").unwrap());
    let spec = spec(SourceLocation::Newest { dir: dir.path().to_owned(), pattern });
    let error = fetched(&spec, dir.path()).await.unwrap_err();
    assert_eq!(error.to_string(), format!("no backup found in `{}`", dir.path().display()));
}

#[tokio::test]
async fn only_a_remote_object_has_an_identity_to_probe() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(SourceLocation::File(dir.path().join("orders.sql")));
    assert!(probe(&spec, &Redactor::new()).await.unwrap().is_none());
}

/// A fetch that could not reach the backup says nothing about it (the drill could not run); a
/// backup that is missing, shrunk or hostile is a finding.
#[test]
fn a_fetch_says_whether_its_failure_is_about_the_backup() {
    let location = || "s3://backups/orders.dump".to_owned();
    let unreached = [
        SourceError::Denied { location: location(), status: 403 },
        SourceError::GaveUp { location: location(), attempts: 4, last: "connection reset".into() },
        SourceError::Http { location: location(), message: "the server answered 400".into() },
        SourceError::MissingSecret { variable: "AWS_SECRET_ACCESS_KEY".into() },
    ];
    for error in unreached {
        assert!(error.says_nothing_of_the_backup(), "{error}");
    }
    let findings = [
        SourceError::NotFound { location: location() },
        SourceError::NoBackup { location: location() },
        SourceError::KeyOutside { location: location() },
        SourceError::Shrunk { location: location(), size: 1, previous: "x".into(), previous_size: 100, ratio: 0.1 },
    ];
    for error in findings {
        assert!(!error.says_nothing_of_the_backup(), "{error}");
    }
}
