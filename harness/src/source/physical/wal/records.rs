//! The restore points in WAL, read page by page as a segment is given to recovery: a follower
//! confirms the markers its source wrote (`pg_create_restore_point`) by finding each in the WAL
//! it replayed, since a standby has no SQL that names the restore points it passed.
//!
//! Only what finding them needs is read: each page's header (its place, and how much of a record
//! begun on an earlier page it carries first), each record's length, to step to the next, and a
//! record of the XLOG resource manager with `XLOG_RESTORE_POINT` in full, its CRC-32C checked
//! as PostgreSQL checks it. Records go on across pages and segments; pages that are not WAL of
//! the place they are read at (the zeroes after a WAL switch, a recycled segment's old pages)
//! end the walk until a page whose header says where a record begins.

use std::time::{Duration, SystemTime};

/// `XLP_FIRST_IS_CONTRECORD`: the page starts with the rest of a record begun before it.
const XLP_FIRST_IS_CONTRECORD: u16 = 0x0001;
/// `XLP_LONG_HEADER`: the page (a segment's first) carries the long header.
const XLP_LONG_HEADER: u16 = 0x0002;
/// The short and the long page header's lengths (`MAXALIGN`ed).
const SHORT_HEADER: usize = 24;
const LONG_HEADER: usize = 40;
/// `SizeOfXLogRecord`: a record's header.
const RECORD_HEADER: usize = 24;
/// `RM_XLOG_ID` and `XLOG_RESTORE_POINT`.
const RM_XLOG: u8 = 0;
const RESTORE_POINT: u8 = 0x70;
/// `XLR_BLOCK_ID_DATA_SHORT`, `_DATA_LONG`, `_ORIGIN` and `_TOPLEVEL_XID`.
const DATA_SHORT: u8 = 255;
const DATA_LONG: u8 = 254;
const ORIGIN: u8 = 253;
const TOPLEVEL_XID: u8 = 252;
/// A record longer than this is not one (`XLogRecordMaxSize` is 1020 MB).
const MAX_RECORD: usize = 1020 << 20;
/// `MAXFNAMELEN`: a restore point's name is at most 63 bytes and its terminator.
const NAME_LEN: usize = 64;
/// PostgreSQL's epoch (2000-01-01 UTC), in Unix seconds.
const PG_EPOCH: u64 = 946_684_800;

/// A restore point found in WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestorePoint {
    /// Its name, as `pg_create_restore_point` was given it.
    pub name: String,
    /// Where its record starts, and where it ends: replay at or past `end` replayed it.
    pub lsn: u64,
    pub end: u64,
    /// When the source wrote it (its own clock).
    pub time: SystemTime,
}

/// A record being read across pages.
struct Partial {
    lsn: u64,
    length: usize,
    bytes: Vec<u8>,
}

/// Walks the records of consecutive WAL pages, keeping the restore points found.
#[derive(Default)]
pub(crate) struct Walker {
    /// The LSN the next page must be at for the walk to go on.
    next_page: Option<u64>,
    partial: Option<Partial>,
    found: Vec<RestorePoint>,
}

impl Walker {
    /// Reads the page at `lsn` (a whole page of the segment's block size).
    pub(crate) fn page(&mut self, lsn: u64, page: &[u8]) {
        if self.next_page != Some(lsn) {
            self.partial = None;
        }
        self.next_page = Some(lsn + page.len() as u64);
        let Some((info, header, remaining)) = page_header(lsn, page) else {
            self.partial = None;
            return;
        };
        let mut at = header;
        if info & XLP_FIRST_IS_CONTRECORD != 0 {
            let here = remaining.min(page.len() - header);
            // The rest of the record begun before (when its start was read: else it is skipped).
            if let Some(mut partial) = self.partial.take()
                && partial.length - partial.bytes.len() == remaining
            {
                partial.bytes.extend_from_slice(&page[header..header + here]);
                match here == remaining {
                    true => self.gathered(partial, lsn + (header + here) as u64),
                    false => self.partial = Some(partial),
                }
            }
            if here < remaining {
                return;
            }
            at = maxalign(header + here);
        } else {
            self.partial = None;
        }
        self.records(lsn, page, at);
    }

    /// Reads the records that begin on `page` from `at` on.
    fn records(&mut self, lsn: u64, page: &[u8], mut at: usize) {
        while at + 4 <= page.len() {
            let length = u32::from_le_bytes(page[at..at + 4].try_into().expect("4 bytes")) as usize;
            if !(RECORD_HEADER..=MAX_RECORD).contains(&length) {
                // The end of the WAL written on this page (zeroes after it).
                return;
            }
            let here = length.min(page.len() - at);
            let partial = Partial { lsn: lsn + at as u64, length, bytes: page[at..at + here].to_vec() };
            if here < length {
                self.partial = Some(partial);
                return;
            }
            self.gathered(partial, lsn + (at + length) as u64);
            at = maxalign(at + length);
        }
    }

    /// A record read whole, ending at `end`.
    fn gathered(&mut self, partial: Partial, end: u64) {
        if let Some((name, time)) = restore_point(&partial.bytes) {
            self.found.push(RestorePoint { name, lsn: partial.lsn, end, time });
        }
    }

    /// The restore points found since the last call.
    pub(crate) fn take(&mut self) -> Vec<RestorePoint> {
        std::mem::take(&mut self.found)
    }
}

/// A page's header at `lsn`: its info bits, its length, and how much of a record begun before
/// it the page carries first; none when the page is not WAL written at `lsn`.
fn page_header(lsn: u64, page: &[u8]) -> Option<(u16, usize, usize)> {
    if page.len() < LONG_HEADER {
        return None;
    }
    let magic = u16::from_le_bytes([page[0], page[1]]);
    let info = u16::from_le_bytes([page[2], page[3]]);
    let address = u64::from_le_bytes(page[8..16].try_into().expect("8 bytes"));
    let remaining = u32::from_le_bytes(page[16..20].try_into().expect("4 bytes")) as usize;
    // Every release's magic is 0xD0xx or 0xD1xx.
    if magic & 0xFE00 != 0xD000 || address != lsn {
        return None;
    }
    let header = if info & XLP_LONG_HEADER != 0 { LONG_HEADER } else { SHORT_HEADER };
    Some((info, header, remaining))
}

fn maxalign(at: usize) -> usize {
    at.div_ceil(8) * 8
}

/// The name and time of `record` when it is a restore point whose CRC holds.
fn restore_point(record: &[u8]) -> Option<(String, SystemTime)> {
    let (info, rmid) = (record[16], record[17]);
    if rmid != RM_XLOG || info & 0xF0 != RESTORE_POINT {
        return None;
    }
    let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    crc.update(&record[RECORD_HEADER..]);
    crc.update(&record[..20]);
    if crc.finalize() as u32 != u32::from_le_bytes(record[20..24].try_into().expect("4 bytes")) {
        return None;
    }
    let data = main_data(&record[RECORD_HEADER..])?;
    if data.len() < 8 + NAME_LEN {
        return None;
    }
    let micros = i64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    let name = &data[8..8 + NAME_LEN];
    let name = &name[..name.iter().position(|b| *b == 0)?];
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(PG_EPOCH);
    let time = match u64::try_from(micros) {
        Ok(after) => time + Duration::from_micros(after),
        Err(_) => time - Duration::from_micros(micros.unsigned_abs()),
    };
    Some((String::from_utf8_lossy(name).into_owned(), time))
}

/// A record's main data (after its header): the block headers a restore point may carry are
/// the origin's and the top-level transaction's; a block reference means it is not one.
fn main_data(mut rest: &[u8]) -> Option<&[u8]> {
    let length = loop {
        let (&id, after) = rest.split_first()?;
        rest = after;
        match id {
            DATA_SHORT => {
                let (&length, after) = rest.split_first()?;
                rest = after;
                break usize::from(length);
            }
            DATA_LONG => {
                let length = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
                rest = &rest[4..];
                break length;
            }
            ORIGIN => rest = rest.get(2..)?,
            TOPLEVEL_XID => rest = rest.get(4..)?,
            _ => return None,
        }
    };
    rest.get(..length)
}

#[cfg(test)]
mod tests;
