use std::time::{Duration, SystemTime};

use super::*;

const SIZE: u64 = 16 << 20;

fn archive(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    dir
}

fn at(planned: u64, replayed: Option<u64>) -> Position {
    Position { path: TimelinePath::only(1), segment_size: SIZE, planned, replayed, first: 2 }
}

async fn look(source: Source, at: &Position) -> Look {
    Archive::new(source, at).look(at).await.unwrap()
}

fn folder(dir: &tempfile::TempDir) -> Source {
    Source::Folder(dir.path().to_owned())
}

#[tokio::test]
async fn the_segments_after_the_planned_one_are_next_up_to_a_gap_which_is_named() {
    let dir = archive(&[
        "000000010000000000000002",
        "000000010000000000000003",
        "000000010000000000000004",
        "000000010000000000000006",
        "000000020000000000000007",
    ]);
    let look = look(folder(&dir), &at(2, Some(2))).await;
    let next: Vec<&str> = look.next.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(next, ["000000010000000000000003", "000000010000000000000004"]);
    assert_eq!(look.gap, Some(("000000010000000000000005".to_owned(), "000000010000000000000006".to_owned())));
    assert_eq!(look.oldest_waiting.map(|(name, _)| name).as_deref(), Some("000000010000000000000003"));
    assert_eq!(look.later_timeline, None);
}

#[tokio::test]
async fn nothing_waits_once_all_is_replayed_and_a_later_timeline_is_seen() {
    let dir = archive(&["000000010000000000000002", "000000010000000000000003", "00000002.history"]);
    let look = super::tests::look(folder(&dir), &at(3, Some(3))).await;
    assert!(look.next.is_empty() && look.gap.is_none() && look.oldest_waiting.is_none(), "{look:?}");
    assert_eq!(look.later_timeline, Some(2));
    // A missing segment with nothing after it is not archived yet: no gap.
    let look = super::tests::look(folder(&dir), &at(1, None)).await;
    assert_eq!(look.gap, None);
}

/// Whoever writes the archive sets a file's time: one from long ago does not make a segment
/// listed now look overdue, and one in the future does not hide a segment that waits (its wait
/// counts from when the follower first listed it, whatever the file says).
#[tokio::test]
async fn a_segments_wait_counts_from_when_it_was_first_listed_whatever_time_its_file_says() {
    let dir = archive(&["000000010000000000000002", "000000010000000000000003"]);
    let day = Duration::from_secs(86_400);
    let set = |name: &str, at: SystemTime| {
        let file = std::fs::File::options().write(true).open(dir.path().join(name)).unwrap();
        file.set_modified(at).unwrap();
    };
    set("000000010000000000000002", SystemTime::now() - 365 * day);
    set("000000010000000000000003", SystemTime::now() + 365 * day);
    let before = SystemTime::now();
    let position = at(1, Some(1));
    let mut archive = Archive::new(folder(&dir), &position);
    let (name, since) = archive.look(&position).await.unwrap().oldest_waiting.unwrap();
    assert_eq!(name, "000000010000000000000002");
    assert!(since >= before && since <= SystemTime::now(), "not the file's time a year ago: {since:?}");
    // Still waiting at the next look: since the same moment, so the lag grows.
    std::thread::sleep(Duration::from_millis(50));
    let (_, again) = archive.look(&position).await.unwrap().oldest_waiting.unwrap();
    assert_eq!(again, since);
    // The first replayed, the one whose file says a year from now waits since it was listed,
    // not since a time to come.
    let position = at(3, Some(2));
    let (name, since) = archive.look(&position).await.unwrap().oldest_waiting.unwrap();
    assert_eq!(name, "000000010000000000000003");
    assert!(since >= before && since <= SystemTime::now(), "not the file's time a year on: {since:?}");
    assert!(SystemTime::now().duration_since(since).unwrap() >= Duration::from_millis(50));
}

/// Segments planned before the first look (the drill's own listing) wait from the start too.
#[tokio::test]
async fn the_segments_planned_before_any_look_wait_from_the_start() {
    let dir = archive(&[]);
    let position = at(4, Some(2));
    let look = look(folder(&dir), &position).await;
    assert_eq!(look.oldest_waiting.map(|(name, _)| name).as_deref(), Some("000000010000000000000003"));
}

#[tokio::test]
async fn a_pgbackrest_archive_is_listed_with_each_segments_sha1_from_the_log_of_the_replayed_one_on() {
    let dir = tempfile::tempdir().unwrap();
    let sha1 = "0123456789abcdef0123456789abcdef01234567";
    for (log, segment) in [
        ("0000000100000000", "0000000100000000000000FE"),
        ("0000000100000001", "000000010000000100000000"),
        ("0000000100000001", "000000010000000100000001"),
    ] {
        std::fs::create_dir_all(dir.path().join(log)).unwrap();
        std::fs::write(dir.path().join(log).join(format!("{segment}-{sha1}.gz")), b"x").unwrap();
    }
    std::fs::write(dir.path().join("00000002.history"), b"1\t0/0\tno reason\n").unwrap();
    let position =
        Position { path: TimelinePath::only(1), segment_size: SIZE, planned: 0x100, replayed: Some(0x100), first: 2 };
    let look = look(Source::PgBackRest(dir.path().to_owned()), &position).await;
    let next: Vec<(&str, Option<&str>)> = look.next.iter().map(|a| (a.name.as_str(), a.sha1.as_deref())).collect();
    assert_eq!(next, [("000000010000000100000001", Some(sha1))]);
    assert_eq!(look.later_timeline, Some(2));
}

#[tokio::test]
async fn a_folder_that_cannot_be_listed_is_named() {
    let dir = archive(&[]);
    let gone = dir.path().join("gone");
    let position = at(1, None);
    let error = Archive::new(Source::Folder(gone.clone()), &position).look(&position).await.unwrap_err();
    let text = crate::error::error_chain(&error);
    assert!(text.starts_with(&format!("cannot list the archive folder `{}`", gone.display())), "{text}");
}

#[test]
fn a_stores_reason_is_the_same_at_each_look_whatever_its_requests_took() {
    let said = |took: &str| {
        let message = format!("Error performing GET http://127.0.0.1:9/pitr in {took}, after 3 retries - closed");
        store::steady(SourceError::Http { location: "s3://pitr/wal/".into(), message }).to_string()
    };
    assert_eq!(said("417.958757ms"), said("1.2s"));
    assert_eq!(
        said("850µs"),
        "`s3://pitr/wal/`: Error performing GET http://127.0.0.1:9/pitr, after 3 retries - closed"
    );
}

#[test]
fn a_stores_copy_of_a_segment_replayed_is_removed_and_a_folders_own_file_never() {
    let copy = archive(&["000000010000000000000003.gz", "000000010000000000000004", "000000010000000000000005"]);
    let spec = S3Spec {
        bucket: "pitr".into(),
        key: "wal/".into(),
        region: None,
        endpoint: None,
        pattern: None,
        access_key_env: None,
        secret_key_env: None,
        retries: 0,
    };
    let store = Archive::new(
        Source::S3 { spec, redactor: Redactor::new(), mirror: copy.path().to_owned(), layout: StoreLayout::Flat },
        &at(5, Some(2)),
    );
    store.replayed("000000010000000000000003");
    store.replayed("000000010000000000000004");
    let left: Vec<String> =
        std::fs::read_dir(copy.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(left, ["000000010000000000000005"], "only what waits for replay is kept");
    // The archive folder itself is the source's: nothing in it is removed.
    let own = archive(&["000000010000000000000003"]);
    Archive::new(folder(&own), &at(3, Some(2))).replayed("000000010000000000000003");
    assert!(own.path().join("000000010000000000000003").exists());
}
