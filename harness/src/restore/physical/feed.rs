//! The archived WAL a recovery reads, given to the target as replay needs it: each segment is
//! decompressed and checked on the way (the system it belongs to, the place it holds, its size,
//! the SHA-1 a repository recorded) and renamed into the target's `pg_wal`, where the standby
//! reads it; segments replay has passed are removed. `pg_wal` holds the data directory's own WAL
//! and a bounded window of the archive, never the whole archive (a week of WAL behind a weekly
//! base backup is hundreds of gigabytes).
//!
//! Before the server starts, [`Feed::fill`] gives everything up to the backup's end (recovery is
//! consistent, and its server answers, only past it) and a window beyond; once it answers, a
//! [`Feeder`] thread keeps the window ahead of the replay position the recovery's wait reads.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use super::stage::StageError;
use crate::source::physical::WalArchive;
use crate::source::physical::wal::{self, Archived, Segment, SegmentHeader, records};
use crate::tree::Ids;

/// Reads an archived segment that cannot be read as it lies (an encrypted repository's): a copy
/// the feed reads instead (and removes once given), with the segment's name and recorded SHA-1.
pub(crate) type Decrypt = Arc<dyn Fn(&Archived) -> Result<Archived, StageError> + Send + Sync>;

/// The segments of an archive still to give to a recovery, and those given and not yet passed.
pub(crate) struct Feed {
    /// The segments recovery reads, in replay order, with their numbers.
    plan: Vec<(u64, Archived)>,
    /// The first not given yet.
    next: usize,
    /// Given and not yet removed: number, file in `pg_wal`.
    given: VecDeque<(u64, String)>,
    system_id: u64,
    segment_size: u64,
    /// Segments kept ahead of the one replay is in.
    window: u64,
    /// Who the server runs as, when the files must be given to it.
    owner: Option<Ids>,
    stats: FeedStats,
    decrypt: Option<Decrypt>,
    /// Given segments from this one on are kept whatever replay passed (a follower's: the WAL
    /// from its last restartpoint's redo, which a copy of its cluster recovers from).
    keep_from: Option<u64>,
    /// What was given since last taken, with its digest (a follower's ledger records it), when
    /// asked for ([`Feed::keep_digests`]).
    digests: Option<Vec<Given>>,
    /// Reads the restore points in what is given, with the digests.
    walker: records::Walker,
}

/// What a feed gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FeedStats {
    /// Segments given to recovery, and their bytes (decompressed).
    pub segments: usize,
    pub bytes: u64,
    /// The most archived segments `pg_wal` held at once.
    pub peak: usize,
}

impl Feed {
    /// The feed of `archive`'s segments for a cluster of `system_id`, `window` bytes ahead of
    /// the segment replay is in (at least one segment; `None`: the whole archive at once).
    pub(crate) fn new(
        archive: &WalArchive,
        system_id: u64,
        window: Option<u64>,
        owner: Option<Ids>,
        decrypt: Option<Decrypt>,
    ) -> Feed {
        let size = archive.segment_size;
        let plan = archive
            .segments
            .iter()
            .filter_map(|a| Segment::parse(&a.name, size).map(|s| (s.number, a.clone())))
            .collect();
        let window = window.map_or(u64::MAX, |bytes| (bytes / size.max(1)).max(1));
        Feed {
            plan,
            next: 0,
            given: VecDeque::new(),
            system_id,
            segment_size: size,
            window,
            owner,
            stats: FeedStats::default(),
            decrypt,
            keep_from: None,
            digests: None,
            walker: records::Walker::default(),
        }
    }

    /// From now on, each segment given is kept with its SHA-256, when it was archived and the
    /// restore points in it, until taken ([`Feed::take_given`]).
    pub(crate) fn keep_digests(&mut self) {
        self.digests.get_or_insert_with(Vec::new);
    }

    /// What was given since the last call (with [`Feed::keep_digests`]).
    pub(crate) fn take_given(&mut self) -> Vec<Given> {
        self.digests.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Segments archived since the feed was planned, to give after those it holds: each must
    /// follow the last one planned (a follower lists the archive again and again).
    pub(crate) fn extend(&mut self, more: Vec<Archived>) {
        for archived in more {
            let Some(segment) = Segment::parse(&archived.name, self.segment_size) else { continue };
            if self.plan.last().is_none_or(|(last, _)| segment.number == last + 1) {
                self.plan.push((segment.number, archived));
            }
        }
    }

    /// A follower goes on along a later timeline, which left the one it replays at `switch`:
    /// the histories of the way there are given to `pg_wal`; the old timeline's segments past
    /// the switch (WAL the new timeline does not continue) are taken out of `pg_wal` and of the
    /// plan, which the new timeline's segments extend from the one holding the switch on.
    pub(crate) fn switch_timeline(
        &mut self,
        pg_wal: &Path,
        switch: u64,
        histories: &[(u32, std::path::PathBuf)],
    ) -> Result<(), StageError> {
        for (timeline, path) in histories {
            give_history(*timeline, path, pg_wal, self.owner)?;
        }
        let size = self.segment_size.max(1);
        let first_new = switch / size;
        let past = |n: u64| n > first_new || (n == first_new && switch.is_multiple_of(size));
        for (_, name) in self.given.iter().filter(|(n, _)| past(*n)) {
            let path = pg_wal.join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StageError::Io { action: "remove", path: path.display().to_string(), source: e });
                }
                _ => {}
            }
        }
        self.given.retain(|(n, _)| !past(*n));
        let keep = self.plan.iter().position(|(n, _)| *n >= first_new).unwrap_or(self.plan.len());
        self.plan.truncate(keep);
        self.next = self.next.min(keep);
        Ok(())
    }

    /// Keeps the segments given from `number` on, whatever replay passed.
    pub(crate) fn keep_from(&mut self, number: u64) {
        self.keep_from = Some(number);
    }

    /// The last segment planned (given, or to give), if any.
    pub(crate) fn planned_through(&self) -> Option<&Archived> {
        self.plan.last().map(|(_, a)| a)
    }

    /// Whether every segment was given.
    pub(crate) fn done(&self) -> bool {
        self.next >= self.plan.len()
    }

    /// The number of the last segment given so far.
    fn given_through(&self) -> Option<u64> {
        self.next.checked_sub(1).and_then(|i| self.plan.get(i)).map(|(n, _)| *n)
    }

    pub(crate) fn stats(&self) -> FeedStats {
        self.stats
    }

    /// Removes the segments given before `replaying` (the number of the segment replay is in),
    /// then gives segments into `pg_wal` until the window past it is full, and at least through
    /// `through`.
    pub(crate) fn fill(
        &mut self,
        pg_wal: &Path,
        replaying: Option<u64>,
        through: Option<u64>,
    ) -> Result<(), StageError> {
        if let Some(replaying) = replaying {
            let keep = self.keep_from.map_or(replaying, |kept| kept.min(replaying));
            while let Some((number, name)) = self.given.front() {
                if *number >= keep {
                    break;
                }
                let path = pg_wal.join(name);
                match std::fs::remove_file(&path) {
                    // The server removes what a restartpoint no longer needs, too.
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(StageError::Io { action: "remove", path: path.display().to_string(), source: e });
                    }
                    _ => {}
                }
                self.given.pop_front();
            }
        }
        let from = replaying.or_else(|| self.plan.first().map(|(n, _)| *n)).unwrap_or(0);
        while let Some((number, segment)) = self.plan.get(self.next) {
            if replaying.is_some_and(|r| *number < r) {
                // Replay is past it (the backup's own WAL held it).
                self.next += 1;
                continue;
            }
            let beyond = number.saturating_sub(from) > self.window;
            if beyond && through.is_none_or(|t| *number > t) {
                break;
            }
            let bytes = match &self.decrypt {
                None => give_segment(segment, pg_wal, self.system_id, self.segment_size, self.owner)?,
                Some(decrypt) => {
                    let readable = decrypt(segment)?;
                    let given = give_segment(&readable, pg_wal, self.system_id, self.segment_size, self.owner);
                    let _ = std::fs::remove_file(&readable.path);
                    given?
                }
            };
            if let Some(digests) = self.digests.as_mut() {
                let start = number * self.segment_size;
                digests.push(Given::of(*number, segment, &pg_wal.join(&segment.name), bytes, start, &mut self.walker)?);
            }
            self.given.push_back((*number, segment.name.clone()));
            self.stats.segments += 1;
            self.stats.bytes += bytes;
            self.stats.peak = self.stats.peak.max(self.given.len());
            self.next += 1;
        }
        Ok(())
    }
}

impl Feed {
    /// Gives segments into `pg_wal` through `through` only, whatever the window (at least the
    /// first): what must be there before anything reads it; [`Feed::fill`] gives the window.
    pub(crate) fn fill_through(&mut self, pg_wal: &Path, through: Option<u64>) -> Result<(), StageError> {
        let window = std::mem::replace(&mut self.window, 0);
        let filled = self.fill(pg_wal, None, through);
        self.window = window;
        filled
    }
}

/// A segment given to recovery, as a follower's ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Given {
    pub number: u64,
    pub name: String,
    /// Its length, decompressed (a segment's).
    pub bytes: u64,
    /// The SHA-256 of what recovery was given (the segment decompressed).
    pub sha256: String,
    /// When the archive's file was last written (the store's time): when it was archived.
    pub archived_at: Option<std::time::SystemTime>,
    /// The restore points whose records end in it (one begun in the segment before included).
    pub restore_points: Vec<records::RestorePoint>,
}

impl Given {
    /// `segment` as given into `file` (in `pg_wal`, not yet replayed: the server removes no
    /// segment ahead of replay), starting at LSN `start`, its pages read by `walker`.
    fn of(
        number: u64,
        segment: &Archived,
        file: &Path,
        bytes: u64,
        start: u64,
        walker: &mut records::Walker,
    ) -> Result<Given, StageError> {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        let mut read = std::io::BufReader::new(std::fs::File::open(file).map_err(io("read", file))?);
        let mut page = vec![0u8; SegmentHeader::LENGTH];
        read.read_exact(&mut page).map_err(io("read", file))?;
        // The feed checked the header when it gave the segment: its block size is the page's.
        let block = SegmentHeader::parse(&page).map_or(8192, |h| h.block_size as usize);
        page.resize(block, 0);
        read.read_exact(&mut page[SegmentHeader::LENGTH..]).map_err(io("read", file))?;
        let mut at = start;
        loop {
            hasher.update(&page);
            walker.page(at, &page);
            at += block as u64;
            match read.read_exact(&mut page) {
                Ok(()) => {}
                // The feed gave it whole: a segment is a whole number of pages.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(io("read", file)(e)),
            }
        }
        let archived_at = std::fs::metadata(&segment.path).and_then(|m| m.modified()).ok();
        Ok(Given {
            number,
            name: segment.name.clone(),
            bytes,
            sha256: hex::encode(hasher.finalize()),
            archived_at,
            restore_points: walker.take(),
        })
    }
}

/// Gives `pg_wal` the history files of the timelines recovery follows (decompressed), where the
/// server reads them.
pub(crate) fn give_histories(archive: &WalArchive, pg_wal: &Path, owner: Option<Ids>) -> Result<(), StageError> {
    for (timeline, path) in &archive.path.histories {
        give_history(*timeline, path, pg_wal, owner)?;
    }
    Ok(())
}

/// Gives `pg_wal` timeline `timeline`'s history file `path` (decompressed); one given before is
/// left as it is.
fn give_history(timeline: u32, path: &Path, pg_wal: &Path, owner: Option<Ids>) -> Result<(), StageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = crate::source::physical::timeline::history_name(timeline);
    let opened = crate::source::read::open(path, false)
        .map_err(|source| StageError::Open { path: path.display().to_string(), source })?;
    let to = pg_wal.join(&name);
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&to) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        opened => opened.map_err(io("create", &to))?,
    };
    // A history file is a few lines per timeline; a huge one is not PostgreSQL's.
    std::io::copy(&mut opened.reader.take(1 << 20), &mut file).map_err(io("copy", path))?;
    if let Some(Ids { uid, gid }) = owner {
        std::os::unix::fs::lchown(&to, Some(uid), Some(gid)).map_err(io("give", &to))?;
    }
    Ok(())
}

/// Reads the first page of every segment `archive` gives recovery, before anything starts: each
/// must be a WAL segment of `system_id`, of the archive's segment size, holding the place its name
/// says (a file that is not is found here, not half-way through the recovery); an uncompressed
/// one must be a whole segment long. The rest of each is checked as it is given.
pub(crate) fn check_headers(archive: &WalArchive, system_id: u64) -> Result<(), StageError> {
    for segment in &archive.segments {
        let (mut reader, compressed) = open(segment)?;
        let mut head = [0u8; 40];
        reader.read_exact(&mut head).map_err(|_| short(segment))?;
        check_header(segment, &head, system_id, archive.segment_size)?;
        if !compressed {
            let len = std::fs::metadata(&segment.path).map_err(io("read", &segment.path))?.len();
            if len != archive.segment_size {
                return Err(bad(segment, truncated(len, archive.segment_size)));
            }
        }
    }
    Ok(())
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StageError + 'a {
    move |source| StageError::Io { action, path: path.display().to_string(), source }
}

fn bad(segment: &Archived, problem: String) -> StageError {
    StageError::Segment { name: segment.name.clone(), problem }
}

fn short(segment: &Archived) -> StageError {
    bad(segment, format!("is shorter than a WAL page header (`{}`)", segment.path.display()))
}

fn truncated(len: u64, size: u64) -> String {
    match len > size {
        true => format!("is {len} bytes long or more; a segment of this cluster is {size} (not a segment of it)"),
        false => format!("is {len} bytes long; a segment of this cluster is {size} (a truncated copy?)"),
    }
}

/// The segment's decompressed content, and whether it was compressed.
fn open(segment: &Archived) -> Result<(Box<dyn std::io::BufRead + Send>, bool), StageError> {
    let opened = crate::source::read::open(&segment.path, false)
        .map_err(|source| StageError::Open { path: segment.path.display().to_string(), source })?;
    Ok((opened.reader, opened.compression != crate::dump::Compression::None))
}

/// A segment's long header must say it is this cluster's, of its segment size, at the place its
/// name says.
fn check_header(segment: &Archived, head: &[u8; 40], system_id: u64, size: u64) -> Result<SegmentHeader, StageError> {
    let header = SegmentHeader::parse(head).ok_or_else(|| {
        bad(segment, "is not a WAL segment: its first page has no WAL header (a zeroed or damaged file?)".into())
    })?;
    if header.system_id != system_id {
        return Err(bad(
            segment,
            format!(
                "belongs to database system {}, and the backup to {system_id}: the archive holds another cluster's WAL",
                header.system_id
            ),
        ));
    }
    if u64::from(header.segment_size) != size {
        return Err(bad(
            segment,
            format!("holds {}-byte segments, the archive's first one {size}-byte", header.segment_size),
        ));
    }
    let named = Segment::parse(&segment.name, size).map(|s| s.number * size);
    if named != Some(header.page_address) {
        let holds = Segment::of_lsn(header.timeline, header.page_address, size).name(size);
        return Err(bad(
            segment,
            format!(
                "holds the WAL of segment {holds} (from {}): it was renamed or copied to the wrong name",
                wal::format_lsn(header.page_address)
            ),
        ));
    }
    Ok(header)
}

/// Gives one archived segment to recovery: decompressed into a hidden file of `pg_wal`, checked
/// on the way (its header, its length, the SHA-1 a repository recorded), then renamed to its
/// name, so the server never reads half a segment. Returns its bytes.
fn give_segment(
    segment: &Archived,
    pg_wal: &Path,
    system_id: u64,
    size: u64,
    owner: Option<Ids>,
) -> Result<u64, StageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let partial = pg_wal.join(format!(".pgdrill-{}.partial", segment.name));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(io("create", &partial))?;
    let copied = match plain(segment, system_id, size) {
        // Uncompressed, and no SHA-1 to compute: copied by the kernel, a byte past a segment at
        // most (a longer file is no segment of this cluster).
        Ok(Some(from)) => std::io::copy(&mut from.take(size + 1), &mut { file }).map_err(io("copy", &segment.path)),
        Ok(None) => copy_read(segment, file, system_id, size),
        Err(e) => Err(e),
    }
    .and_then(|copied| if copied == size { Ok(copied) } else { Err(bad(segment, truncated(copied, size))) });
    let copied = match copied {
        Ok(copied) => copied,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    if let Some(Ids { uid, gid }) = owner {
        std::os::unix::fs::lchown(&partial, Some(uid), Some(gid)).map_err(io("give", &partial))?;
    }
    let to = pg_wal.join(&segment.name);
    std::fs::rename(&partial, &to).map_err(io("rename", &partial))?;
    Ok(copied)
}

/// The segment's file, its header checked and read from its start again, when it is a WAL
/// segment as it lies (uncompressed) and no SHA-1 was recorded for it; `None` otherwise (read
/// through [`copy_read`]).
fn plain(segment: &Archived, system_id: u64, size: u64) -> Result<Option<std::fs::File>, StageError> {
    use std::io::Seek;
    if segment.sha1.is_some() {
        return Ok(None);
    }
    let mut file = std::fs::File::open(&segment.path).map_err(io("read", &segment.path))?;
    let mut head = [0u8; 40];
    if file.read_exact(&mut head).is_err() || SegmentHeader::parse(&head).is_none() {
        return Ok(None);
    }
    check_header(segment, &head, system_id, size)?;
    file.rewind().map_err(io("read", &segment.path))?;
    Ok(Some(file))
}

/// Copies the segment into `file` as read (decompressed), its header checked first and the
/// SHA-1 a repository recorded for it compared at the end: the bytes copied. At most a byte more
/// than a segment is decompressed: a small file that inflates without end (a compression bomb
/// in a hostile archive) is found too long there, not after it has filled the disk.
fn copy_read(segment: &Archived, file: std::fs::File, system_id: u64, size: u64) -> Result<u64, StageError> {
    let (mut reader, _) = open(segment)?;
    let mut head = [0u8; 40];
    reader.read_exact(&mut head).map_err(|_| short(segment))?;
    check_header(segment, &head, system_id, size)?;
    let mut out = Sha1Writer {
        inner: std::io::BufWriter::new(file),
        hasher: segment.sha1.as_ref().map(|_| sha1::Sha1::default()),
    };
    let copied = (|| {
        out.write_all(&head)?;
        let rest = size.saturating_sub(head.len() as u64) + 1;
        let copied = std::io::copy(&mut (&mut reader).take(rest), &mut out)? + head.len() as u64;
        out.inner.flush()?;
        Ok::<_, std::io::Error>(copied)
    })()
    .map_err(io("copy", &segment.path))?;
    if copied != size {
        return Err(bad(segment, truncated(copied, size)));
    }
    if let (Some(recorded), Some(hasher)) = (&segment.sha1, out.hasher.take()) {
        use sha1::Digest;
        let actual = hex::encode(hasher.finalize());
        if &actual != recorded {
            return Err(bad(
                segment,
                format!(
                    "has SHA-1 {actual}, and the repository recorded {recorded} when it archived it: the file changed since"
                ),
            ));
        }
    }
    Ok(copied)
}

/// Writes through, hashing what it writes when asked to.
struct Sha1Writer<W> {
    inner: W,
    hasher: Option<sha1::Sha1>,
}

impl<W: Write> Write for Sha1Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            sha1::Digest::update(hasher, &buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

mod feeder;

pub(crate) use feeder::Feeder;

#[cfg(test)]
mod tests;
