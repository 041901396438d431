//! WAL: segment names and positions (for any segment size), LSNs, the long header on a segment's
//! first page (which system and which position it belongs to), and the run of archived segments
//! a recovery reads, checked for gaps before anything starts.

pub(crate) mod records;

use std::io::Read;
use std::path::{Path, PathBuf};

/// PostgreSQL's default WAL segment size; `initdb --wal-segsize` picks another power of two
/// from 1 MB to 1 GB.
pub(crate) const DEFAULT_SEGMENT_SIZE: u64 = 16 << 20;

/// Suffixes an archived segment may carry when `archive_command` compressed it.
pub(crate) const COMPRESSED: [&str; 5] = [".gz", ".zst", ".lz4", ".bz2", ".bzip2"];

/// Whether `name` is a WAL segment file's name: 24 hexadecimal digits.
pub(crate) fn is_segment_name(name: &str) -> bool {
    name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An LSN as PostgreSQL prints it (`16/B374D848`).
pub(crate) fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    let valid = |s: &str| !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid(high) || !valid(low) {
        return None;
    }
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

pub(crate) fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// A segment's place: its timeline and its number (the LSN of its start over the segment size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Segment {
    pub timeline: u32,
    pub number: u64,
}

impl Segment {
    /// Reads a segment file's name, for segments of `size` bytes.
    pub(crate) fn parse(name: &str, size: u64) -> Option<Segment> {
        if !is_segment_name(name) {
            return None;
        }
        let part = |range: std::ops::Range<usize>| u64::from_str_radix(&name[range], 16).ok();
        let (timeline, log, seg) = (part(0..8)?, part(8..16)?, part(16..24)?);
        let per_log = per_log(size);
        (seg < per_log).then(|| Segment { timeline: timeline as u32, number: log * per_log + seg })
    }

    /// The segment holding `lsn` on `timeline`.
    pub(crate) fn of_lsn(timeline: u32, lsn: u64, size: u64) -> Segment {
        Segment { timeline, number: lsn / size }
    }

    pub(crate) fn name(&self, size: u64) -> String {
        let per_log = per_log(size);
        format!("{:08X}{:08X}{:08X}", self.timeline, self.number / per_log, self.number % per_log)
    }

    #[cfg(test)]
    fn next(self) -> Segment {
        Segment { number: self.number + 1, ..self }
    }
}

/// Segments per "log" number (the middle eight digits of a name): 4 GiB of WAL.
fn per_log(size: u64) -> u64 {
    0x1_0000_0000 / size.max(1)
}

/// What the long header on a segment's first page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub timeline: u32,
    /// The LSN the segment starts at.
    pub page_address: u64,
    pub system_id: u64,
    pub segment_size: u32,
    pub block_size: u32,
}

/// `XLP_LONG_HEADER`: the first page of a segment carries the long header.
const XLP_LONG_HEADER: u16 = 0x0002;

impl SegmentHeader {
    /// `XLogLongPageHeaderData`'s length: the bytes [`SegmentHeader::parse`] reads.
    pub(crate) const LENGTH: usize = 40;

    /// Reads `XLogLongPageHeaderData` from the first bytes of a segment (little-endian, as the
    /// machines PostgreSQL runs on write it): magic, info, timeline, page address, remaining
    /// length, padding, then system identifier, segment size and block size.
    pub(crate) fn parse(head: &[u8]) -> Option<SegmentHeader> {
        if head.len() < Self::LENGTH {
            return None;
        }
        let u16_at = |at: usize| u16::from_le_bytes([head[at], head[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
        let (magic, info) = (u16_at(0), u16_at(2));
        // Every release's magic is 0xD0xx or 0xD1xx.
        if magic & 0xFE00 != 0xD000 || info & XLP_LONG_HEADER == 0 {
            return None;
        }
        let header = SegmentHeader {
            timeline: u32_at(4),
            page_address: u64_at(8),
            system_id: u64_at(24),
            segment_size: u32_at(32),
            block_size: u32_at(36),
        };
        let size = u64::from(header.segment_size);
        (size.is_power_of_two() && (1 << 20..=1 << 30).contains(&size)).then_some(header)
    }
}

/// One archived segment: its name (without a compression suffix) and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Archived {
    pub name: String,
    pub path: PathBuf,
    /// The SHA-1 of its content, where the archive records one (pgBackRest, in the file's name).
    pub sha1: Option<String>,
}

/// Lists the segments in an archive folder, sorted by name (which is their order on a
/// timeline); compressed ones (`.gz`, `.zst`, ...) by the name they decompress to. Segments in
/// a folder per log (`0000000100000000/`, as Barman and barman-cloud keep them) are listed too.
pub(crate) fn list_archive(dir: &Path) -> std::io::Result<Vec<Archived>> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type()?;
            if kind.is_dir() && folder == dir && file.len() == 16 && file.bytes().all(|b| b.is_ascii_hexdigit()) {
                folders.push(entry.path());
                continue;
            }
            if let Some(name) = segment_file_name(&file)
                && kind.is_file()
            {
                found.push(Archived { name, path: entry.path(), sha1: None });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.dedup_by(|a, b| a.name == b.name);
    Ok(found)
}

/// The timeline a history file's name (`00000002.history`) is of.
pub(crate) fn timeline_of_history_name(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".history")?;
    (stem.len() == 8 && stem.bytes().all(|b| b.is_ascii_hexdigit())).then(|| u32::from_str_radix(stem, 16).ok())?
}

/// The segment an archive's file of this name holds (compressed or not), by its name.
pub(crate) fn segment_file_name(file: &str) -> Option<String> {
    let name = COMPRESSED.iter().find_map(|s| file.strip_suffix(s)).unwrap_or(file);
    is_segment_name(name).then(|| name.to_ascii_uppercase())
}

/// The timeline whose history an archive's file of this name holds (compressed or not).
pub(crate) fn history_file_timeline(file: &str) -> Option<u32> {
    let name = COMPRESSED.iter().find_map(|s| file.strip_suffix(s)).unwrap_or(file);
    timeline_of_history_name(&name.to_ascii_uppercase().replace(".HISTORY", ".history"))
}

/// Lists the timeline history files in an archive folder (`00000002.history`, or compressed as
/// segments may be), by timeline.
pub(crate) fn list_histories(dir: &Path) -> std::io::Result<std::collections::BTreeMap<u32, PathBuf>> {
    let mut found = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(timeline) = history_file_timeline(&file)
            && entry.file_type()?.is_file()
        {
            found.entry(timeline).or_insert_with(|| entry.path());
        }
    }
    Ok(found)
}

/// The segments a recovery from `start` reads: those of `archived` on the timeline `path` gives
/// each segment number (the backup's own, or the later ones a timeline history leads to), from
/// the first one it needs on, in order, up to the last before a gap. The backup's own WAL (`own`:
/// segments it carries itself, through its end) may stand in for the archive's first ones. A
/// gap before a later segment is an error naming the segment missing and the one before it.
pub(crate) fn run_from<'a>(
    archived: &'a [Archived],
    start: Segment,
    own: Option<Segment>,
    size: u64,
    path: &dyn Fn(u64) -> u32,
) -> Result<Vec<&'a Archived>, (String, Option<String>)> {
    let on = |number: u64| Segment { timeline: path(number), number };
    let mut on_path: Vec<(Segment, &'a Archived)> = archived
        .iter()
        .filter_map(|a| Segment::parse(&a.name, size).map(|s| (s, a)))
        .filter(|(s, _)| s.number >= start.number && s.timeline == path(s.number))
        .collect();
    on_path.sort_by_key(|(s, _)| s.number);
    // The first segment the archive must hold: the start, or the one after the backup's own.
    let first_needed = match own {
        Some(own) if own.timeline == start.timeline && own.number >= start.number => on(own.number + 1),
        _ => start,
    };
    let mut expected = start.number;
    let mut run: Vec<&'a Archived> = Vec::new();
    for (segment, archived) in on_path {
        // Before the first it must hold, the archive may begin anywhere (the backup has those).
        let may_skip = run.is_empty() && segment.number <= first_needed.number;
        if segment.number != expected && !may_skip {
            let missing = if run.is_empty() { first_needed } else { on(expected) };
            let before = run.last().map(|a| a.name.clone());
            let before = before.or_else(|| (missing.number > start.number).then(|| on(missing.number - 1).name(size)));
            return Err((missing.name(size), before));
        }
        run.push(archived);
        expected = segment.number + 1;
    }
    Ok(run)
}

/// Whether `path` is encrypted as pgBackRest encrypts a repository's files (OpenSSL's salted
/// format).
pub(crate) fn is_encrypted(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok_and(|()| &head == b"Salted__")
}

/// Reads the long header of a segment file (decompressing a `.gz` or `.zst` one).
pub(crate) fn read_header(path: &Path) -> std::io::Result<Option<SegmentHeader>> {
    let opened = super::super::read::open(path, false).map_err(std::io::Error::other)?;
    let mut head = Vec::with_capacity(40);
    opened.reader.take(40).read_to_end(&mut head)?;
    Ok(SegmentHeader::parse(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archived(names: &[&str]) -> Vec<Archived> {
        names.iter().map(|n| Archived { name: (*n).to_owned(), path: PathBuf::from(n), sha1: None }).collect()
    }

    fn names(run: &[&Archived]) -> Vec<String> {
        run.iter().map(|a| a.name.clone()).collect()
    }

    const MB16: u64 = DEFAULT_SEGMENT_SIZE;

    #[test]
    fn lsns_and_segment_names_for_any_segment_size() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        for bad in ["", "0", "0/", "/1", "G/1", "1/123456789", "1/2/3"] {
            assert_eq!(parse_lsn(bad), None, "{bad}");
        }
        let s = Segment::parse("0000000100000001000000FF", MB16).unwrap();
        assert_eq!((s.timeline, s.number), (1, 0x1FF));
        assert_eq!(s.next().name(MB16), "000000010000000200000000");
        assert_eq!(Segment::of_lsn(1, 0x2_0000_0028, MB16).name(MB16), "000000010000000200000000");
        // 1 GB segments: four per log number; 1 MB: 4096.
        let gb = 1 << 30;
        assert_eq!(Segment::parse("000000010000000000000003", gb).unwrap().next().name(gb), "000000010000000100000000");
        assert_eq!(Segment::parse("000000010000000000000004", gb), None, "a 1 GB log holds four segments");
        assert_eq!(
            Segment::parse("000000010000000000000FFF", 1 << 20).unwrap().next().name(1 << 20),
            "000000010000000100000000"
        );
    }

    #[test]
    fn a_history_files_name_says_its_timeline() {
        assert_eq!(timeline_of_history_name("0000000A.history"), Some(10));
        assert_eq!(timeline_of_history_name("00000002.backup"), None);
        assert_eq!(timeline_of_history_name("2.history"), None);
    }

    #[test]
    fn the_archive_is_read_from_the_start_segment_and_a_gap_is_named() {
        let all = archived(&[
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000003",
            "0000000100000000000000FF",
            "000000010000000100000000",
            "000000020000000000000004",
        ]);
        let seg = |n: &str| Segment::parse(n, MB16).unwrap();
        let one = |_: u64| 1;
        let start = seg("000000010000000000000002");
        assert_eq!(
            names(&run_from(&all[..3], start, None, MB16, &one).unwrap()),
            ["000000010000000000000002", "000000010000000000000003"]
        );
        // 04 to FE are missing before FF.
        assert_eq!(
            run_from(&all, start, None, MB16, &one).unwrap_err(),
            ("000000010000000000000004".to_owned(), Some("000000010000000000000003".to_owned()))
        );
        // A log number's last segment is followed by the next log number's first.
        let across = &all[3..5];
        assert_eq!(run_from(across, seg("0000000100000000000000FF"), None, MB16, &one).unwrap().len(), 2);
        // The start segment itself missing, with nothing of the backup's own to stand in.
        assert_eq!(
            run_from(across, seg("000000010000000000000003"), None, MB16, &one).unwrap_err(),
            ("000000010000000000000003".to_owned(), None)
        );
        // The backup's own WAL (through 03) stands in for the archive's first segments.
        let late = archived(&["000000010000000000000003", "000000010000000000000004"]);
        let own = Some(seg("000000010000000000000003"));
        assert_eq!(run_from(&late, seg("000000010000000000000002"), own, MB16, &one).unwrap().len(), 2);
        let later = archived(&["000000010000000000000005"]);
        assert_eq!(
            run_from(&later, seg("000000010000000000000002"), own, MB16, &one).unwrap_err().0,
            "000000010000000000000004"
        );
        // An empty archive is an empty run: recovery ends where the backup does.
        assert!(run_from(&[], start, None, MB16, &one).unwrap().is_empty());
        // Along a timeline history: timeline 1 to segment 03, timeline 2 from 04 (its 04 and on;
        // timeline 1's 04 and timeline 2's 03 are another history's).
        let forked = archived(&[
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000004",
            "000000020000000000000003",
            "000000020000000000000004",
            "000000020000000000000005",
        ]);
        let path = |n: u64| if n >= 4 { 2 } else { 1 };
        assert_eq!(
            names(&run_from(&forked, start, None, MB16, &path).unwrap()),
            [
                "000000010000000000000002",
                "000000010000000000000003",
                "000000020000000000000004",
                "000000020000000000000005"
            ]
        );
        assert_eq!(
            run_from(&forked[..3], start, None, MB16, &path).unwrap().len(),
            2,
            "timeline 1's 04 is not on the path: the run ends at 03"
        );
        let lost = [&forked[..2], &forked[5..]].concat();
        assert_eq!(
            run_from(&lost, start, None, MB16, &path).unwrap_err(),
            ("000000020000000000000004".to_owned(), Some("000000010000000000000003".to_owned()))
        );
    }

    #[test]
    fn a_segments_long_header_names_its_system_and_place() {
        let mut page = vec![0u8; 64];
        page[0..2].copy_from_slice(&0xD116u16.to_le_bytes());
        page[2..4].copy_from_slice(&0x0006u16.to_le_bytes());
        page[4..8].copy_from_slice(&1u32.to_le_bytes());
        page[8..16].copy_from_slice(&0x0300_0000u64.to_le_bytes());
        page[24..32].copy_from_slice(&7_441_234_567_890_123_456u64.to_le_bytes());
        page[32..36].copy_from_slice(&(16u32 << 20).to_le_bytes());
        page[36..40].copy_from_slice(&8192u32.to_le_bytes());
        let header = SegmentHeader::parse(&page).unwrap();
        assert_eq!(header.page_address, 0x0300_0000);
        assert_eq!(header.system_id, 7_441_234_567_890_123_456);
        assert_eq!(header.segment_size, 16 << 20);
        assert_eq!(SegmentHeader::parse(&[0u8; 64]), None, "a zeroed file is no segment");
        let mut short = page.clone();
        short[2..4].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(SegmentHeader::parse(&short), None, "a segment's first page has the long header");
        assert_eq!(SegmentHeader::parse(&page[..39]), None);
    }
}
