//! The WAL feed's tests: a segment given only when it is what its name says, the window kept
//! ahead of replay, an archive's faults found before anything starts, the feeder following replay.

use super::*;
use crate::source::physical::timeline::TimelinePath;
use std::time::Duration;

fn segment_bytes(system_id: u64, page_address: u64, size: u64) -> Vec<u8> {
    let mut page = vec![0u8; size as usize];
    page[0..2].copy_from_slice(&0xD116u16.to_le_bytes());
    page[2..4].copy_from_slice(&0x0002u16.to_le_bytes());
    page[4..8].copy_from_slice(&1u32.to_le_bytes());
    page[8..16].copy_from_slice(&page_address.to_le_bytes());
    page[24..32].copy_from_slice(&system_id.to_le_bytes());
    page[32..36].copy_from_slice(&(size as u32).to_le_bytes());
    page[36..40].copy_from_slice(&8192u32.to_le_bytes());
    page
}

/// A segment whose header is right but that goes on past a segment's length, compressed (a
/// small file that inflates to many segments) or not: refused as too long, having read no more
/// than a segment and a byte of it, and nothing left in pg_wal.
#[test]
fn a_segment_longer_than_a_segment_is_refused_without_reading_it_all() {
    use std::io::Write;
    let size = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let pg_wal = dir.path().join("pg_wal");
    std::fs::create_dir(&pg_wal).unwrap();
    let name = "000000010000000000000003";
    let mut bytes = segment_bytes(42, 3 * size, size);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&bytes).unwrap();
    let zeros = vec![0u8; size as usize];
    // 64 segments' worth of zeros after it: about 64 KiB compressed.
    for _ in 0..64 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = dir.path().join(format!("{name}.gz"));
    std::fs::write(&bomb, encoder.finish().unwrap()).unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < size, "a small file");
    let inflating = Archived { name: name.to_owned(), path: bomb, sha1: None };
    let error = give_segment(&inflating, &pg_wal, 42, size, None).unwrap_err().to_string();
    let too_long =
        format!("is {} bytes long or more; a segment of this cluster is {size} (not a segment of it)", size + 1);
    assert!(error.contains(&too_long), "{error}");
    bytes.extend_from_slice(&zeros);
    let plain = dir.path().join(name);
    std::fs::write(&plain, &bytes).unwrap();
    let longer = Archived { name: name.to_owned(), path: plain, sha1: None };
    let error = give_segment(&longer, &pg_wal, 42, size, None).unwrap_err().to_string();
    assert!(error.contains(&too_long), "{error}");
    assert_eq!(std::fs::read_dir(&pg_wal).unwrap().count(), 0, "nothing given, no partial file left");
}

#[test]
fn a_segment_is_given_only_if_it_is_what_its_name_says() {
    let size = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let pg_wal = dir.path().join("pg_wal");
    std::fs::create_dir(&pg_wal).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        Archived { name: name.to_owned(), path, sha1: None }
    };
    let name = "000000010000000000000003";
    let good = write(name, &segment_bytes(42, 3 * size, size));
    assert_eq!(give_segment(&good, &pg_wal, 42, size, None).unwrap(), size);
    assert_eq!(std::fs::read(pg_wal.join(name)).unwrap(), segment_bytes(42, 3 * size, size), "copied whole");
    // Compressed, it is read through its decompression: the same segment given.
    let gzipped = {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&segment_bytes(42, 3 * size, size)).unwrap();
        write(&format!("{name}.gz"), &encoder.finish().unwrap())
    };
    let gzipped = Archived { name: name.to_owned(), ..gzipped };
    std::fs::remove_file(pg_wal.join(name)).unwrap();
    assert_eq!(give_segment(&gzipped, &pg_wal, 42, size, None).unwrap(), size);
    assert_eq!(std::fs::read(pg_wal.join(name)).unwrap(), segment_bytes(42, 3 * size, size), "decompressed");

    let other = give_segment(&good, &pg_wal, 41, size, None).unwrap_err().to_string();
    assert!(other.contains("belongs to database system 42, and the backup to 41"), "{other}");
    let recorded = |sha1: &str| Archived { sha1: Some(sha1.to_owned()), ..good.clone() };
    let sha1 = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(segment_bytes(42, 3 * size, size)))
    };
    assert_eq!(give_segment(&recorded(&sha1), &pg_wal, 42, size, None).unwrap(), size);
    let changed = give_segment(&recorded(&"0".repeat(40)), &pg_wal, 42, size, None).unwrap_err().to_string();
    assert!(changed.contains(&format!("has SHA-1 {sha1}, and the repository recorded 0000")), "{changed}");
    let renamed = write(name, &segment_bytes(42, 5 * size, size));
    let error = give_segment(&renamed, &pg_wal, 42, size, None).unwrap_err().to_string();
    assert!(error.contains("holds the WAL of segment 000000010000000000000005"), "{error}");
    let short = write(name, &segment_bytes(42, 3 * size, size)[..4096]);
    let error = give_segment(&short, &pg_wal, 42, size, None).unwrap_err().to_string();
    assert!(error.contains("is 4096 bytes long"), "{error}");
    let zeroed = write(name, &vec![0u8; size as usize]);
    let error = give_segment(&zeroed, &pg_wal, 42, size, None).unwrap_err().to_string();
    assert!(error.contains("is not a WAL segment"), "{error}");
    let left: Vec<String> =
        std::fs::read_dir(&pg_wal).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, [name], "a segment refused leaves no partial file");
}

/// An archive of `count` good segments from segment 2, of system 42.
fn archive(dir: &Path, count: u64, size: u64) -> WalArchive {
    let folder = dir.join("archive");
    std::fs::create_dir(&folder).unwrap();
    let segments = (2..2 + count)
        .map(|n| {
            let name = Segment { timeline: 1, number: n }.name(size);
            let path = folder.join(&name);
            std::fs::write(&path, segment_bytes(42, n * size, size)).unwrap();
            Archived { name, path, sha1: None }
        })
        .collect();
    WalArchive { dir: folder, segments, segment_size: size, path: TimelinePath::only(1) }
}

fn in_pg_wal(pg_wal: &Path) -> Vec<u64> {
    let mut numbers: Vec<u64> = std::fs::read_dir(pg_wal)
        .unwrap()
        .filter_map(|e| Segment::parse(&e.unwrap().file_name().to_string_lossy(), 1 << 20).map(|s| s.number))
        .collect();
    numbers.sort();
    numbers
}

#[test]
fn the_feed_keeps_a_window_ahead_of_replay_and_gives_through_the_backups_end_at_once() {
    let size = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 10, size);
    check_headers(&archive, 42).unwrap();
    let pg_wal = dir.path().join("pg_wal");
    std::fs::create_dir(&pg_wal).unwrap();
    let mut feed = Feed::new(&archive, 42, Some(3 * size), None, None);
    // What pg_verifybackup reads first: through the backup's end (segment 3) only.
    feed.fill_through(&pg_wal, Some(3)).unwrap();
    assert_eq!(in_pg_wal(&pg_wal), [2, 3]);
    // Before the server starts: through the backup's end (segment 6), whatever the window.
    feed.fill(&pg_wal, None, Some(6)).unwrap();
    assert_eq!(in_pg_wal(&pg_wal), [2, 3, 4, 5, 6]);
    // Replay in segment 5: 2 to 4 go; 5, and the window of 3 after it.
    feed.fill(&pg_wal, Some(5), None).unwrap();
    assert_eq!(in_pg_wal(&pg_wal), [5, 6, 7, 8]);
    feed.fill(&pg_wal, Some(7), None).unwrap();
    assert_eq!(in_pg_wal(&pg_wal), [7, 8, 9, 10]);
    feed.fill(&pg_wal, Some(8), None).unwrap();
    assert_eq!(in_pg_wal(&pg_wal), [8, 9, 10, 11]);
    assert!(feed.done());
    assert_eq!((feed.stats().segments, feed.stats().peak), (10, 5));
    // The whole archive at once: today's way, kept for comparison.
    let all = dir.path().join("all");
    std::fs::create_dir(&all).unwrap();
    let mut whole = Feed::new(&archive, 42, None, None, None);
    whole.fill(&all, None, None).unwrap();
    assert_eq!(in_pg_wal(&all).len(), 10);
}

#[test]
fn an_archive_of_another_cluster_or_a_short_segment_is_found_before_anything_starts() {
    let size = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 3, size);
    let other = check_headers(&archive, 41).unwrap_err().to_string();
    assert!(other.contains("000000010000000000000002 belongs to database system 42"), "{other}");
    std::fs::write(&archive.segments[1].path, &segment_bytes(42, 3 * size, size)[..8192]).unwrap();
    let short = check_headers(&archive, 42).unwrap_err().to_string();
    assert!(short.contains("000000010000000000000003 is 8192 bytes long"), "{short}");
}

#[test]
fn the_feeder_follows_replay_and_says_when_it_gave_everything() {
    let size = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 4, size);
    let pg_wal = dir.path().join("pg_wal");
    std::fs::create_dir(&pg_wal).unwrap();
    let feeder = Feeder::start(Feed::new(&archive, 42, Some(size), None, None), pg_wal.clone()).unwrap();
    feeder.replayed(2 * size);
    feeder.replayed(5 * size + 100);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !feeder.done() {
        assert!(std::time::Instant::now() < deadline, "the feeder did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(feeder.failed().is_none());
    let stats = feeder.stop();
    assert_eq!(stats.segments, 3, "the first and the one after it, then the one replay is in (4 it passed)");
    assert_eq!(in_pg_wal(&pg_wal), [5]);
}
