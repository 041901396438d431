//! Pages written as PostgreSQL writes them (a real server's WAL is read in the follower's tests).

use super::*;

const BLOCK: usize = 8192;
const SEGMENT_START: u64 = 0x0300_0000;

/// A page at `lsn`: its header (long for a segment's first), carrying `remaining` bytes of a
/// record begun before it.
fn page(lsn: u64, remaining: u32) -> Vec<u8> {
    let mut page = vec![0u8; BLOCK];
    let long = lsn.is_multiple_of(16 << 20);
    let mut info: u16 = if long { XLP_LONG_HEADER } else { 0 };
    if remaining > 0 {
        info |= XLP_FIRST_IS_CONTRECORD;
    }
    page[0..2].copy_from_slice(&0xD116u16.to_le_bytes());
    page[2..4].copy_from_slice(&info.to_le_bytes());
    page[4..8].copy_from_slice(&1u32.to_le_bytes());
    page[8..16].copy_from_slice(&lsn.to_le_bytes());
    page[16..20].copy_from_slice(&remaining.to_le_bytes());
    page
}

/// A restore point's record, as `pg_create_restore_point(name)` writes it at `micros` past
/// PostgreSQL's epoch.
fn restore_point_record(name: &str, micros: i64) -> Vec<u8> {
    let mut data = vec![DATA_SHORT, (8 + NAME_LEN) as u8];
    data.extend_from_slice(&micros.to_le_bytes());
    let mut named = [0u8; NAME_LEN];
    named[..name.len()].copy_from_slice(name.as_bytes());
    data.extend_from_slice(&named);
    record(RESTORE_POINT, &data)
}

fn record(info: u8, data: &[u8]) -> Vec<u8> {
    let mut record = vec![0u8; RECORD_HEADER];
    record[..4].copy_from_slice(&((RECORD_HEADER + data.len()) as u32).to_le_bytes());
    record[16] = info;
    record[17] = RM_XLOG;
    record.extend_from_slice(data);
    let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    crc.update(&record[RECORD_HEADER..]);
    crc.update(&record[..20]);
    let crc = crc.finalize() as u32;
    record[20..24].copy_from_slice(&crc.to_le_bytes());
    record
}

fn put(page: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    page[at..at + bytes.len()].copy_from_slice(bytes);
    maxalign(at + bytes.len())
}

#[test]
fn a_restore_point_on_a_page_is_found_with_its_name_time_and_place() {
    let mut first = page(SEGMENT_START, 0);
    let at = put(&mut first, LONG_HEADER, &record(0x20, &[DATA_SHORT, 4, 1, 2, 3, 4]));
    let point = restore_point_record("pgdrill-marker-1", 1_000_000);
    let end = at + point.len();
    put(&mut first, at, &point);
    let mut walker = Walker::default();
    walker.page(SEGMENT_START, &first);
    let found = walker.take();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].name, "pgdrill-marker-1");
    assert_eq!((found[0].lsn, found[0].end), (SEGMENT_START + at as u64, SEGMENT_START + end as u64));
    assert_eq!(found[0].time, SystemTime::UNIX_EPOCH + Duration::from_secs(PG_EPOCH + 1));
    assert!(walker.take().is_empty(), "each is taken once");
}

#[test]
fn a_restore_point_across_pages_is_read_whole_and_ends_past_the_next_pages_header() {
    let point = restore_point_record("across", 0);
    let at = BLOCK - 40;
    let mut first = page(SEGMENT_START, 0);
    // A record fills the page up to where the restore point starts.
    let filler = record(0x20, &vec![0u8; at - LONG_HEADER - RECORD_HEADER]);
    assert_eq!(put(&mut first, LONG_HEADER, &filler), at, "the filler ends where the point starts");
    first[at..].copy_from_slice(&point[..40]);
    let mut second = page(SEGMENT_START + BLOCK as u64, (point.len() - 40) as u32);
    put(&mut second, SHORT_HEADER, &point[40..]);
    let mut walker = Walker::default();
    walker.page(SEGMENT_START, &first);
    assert!(walker.take().is_empty(), "not whole yet");
    walker.page(SEGMENT_START + BLOCK as u64, &second);
    let found = walker.take();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].lsn, SEGMENT_START + at as u64);
    assert_eq!(found[0].end, SEGMENT_START + (BLOCK + SHORT_HEADER + point.len() - 40) as u64);
}

#[test]
fn a_damaged_restore_point_an_unknown_start_and_a_page_out_of_place_find_nothing_false() {
    let mut damaged = restore_point_record("damaged", 0);
    damaged[40] ^= 1;
    let mut first = page(SEGMENT_START, 0);
    put(&mut first, LONG_HEADER, &damaged);
    let mut walker = Walker::default();
    walker.page(SEGMENT_START, &first);
    assert!(walker.take().is_empty(), "a CRC that does not hold is no restore point");

    // A walk that begins inside a record skips its rest, then reads on.
    let lsn = SEGMENT_START + BLOCK as u64;
    let mut middle = page(lsn, 100);
    put(&mut middle, maxalign(SHORT_HEADER + 100), &restore_point_record("after", 0));
    let mut walker = Walker::default();
    walker.page(lsn, &middle);
    assert_eq!(walker.take().iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["after"]);

    // A page whose header names another place (a recycled segment's) is not read.
    let mut walker = Walker::default();
    walker.page(lsn + BLOCK as u64, &middle);
    assert!(walker.take().is_empty());
}
