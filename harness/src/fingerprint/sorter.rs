//! The sort a fingerprint needs, done by pgdrill within a fixed memory: every row's digest,
//! tagged with the key range it falls in, in byte order, so that each range's digest is the
//! sha256 of its rows' digests in that order ([`super`]), whatever the order rows arrive in and
//! however many there are.
//!
//! Each reader fills a buffer of its own ([`Runs`]); a full buffer is sorted and written to an
//! anonymous temporary file (a run), so memory holds at most one buffer per reader whatever the
//! table's size. [`finish`] merges every run (at most [`FAN_IN`] at once: more are first merged
//! into longer runs) and hashes each range's digests as they come out in order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

use sha2::{Digest, Sha256};

/// A row's place in the sort: its range's index (big-endian, so that byte order sorts ranges
/// first), then its sha256.
pub(crate) type Item = [u8; ITEM];

/// The bytes of an [`Item`].
pub(crate) const ITEM: usize = 36;

/// Runs merged at once: each has a read buffer of [`READ_BUFFER`] while they merge.
pub(crate) const FAN_IN: usize = 64;

/// Each run's read buffer while runs merge.
const READ_BUFFER: usize = 256 * 1024;

/// The item of a row of range `span` whose digest is `digest`.
pub(crate) fn item(span: u32, digest: &[u8; 32]) -> Item {
    let mut item = [0u8; ITEM];
    item[..4].copy_from_slice(&span.to_be_bytes());
    item[4..].copy_from_slice(digest);
    item
}

/// One reader's digests: a buffer of at most `capacity` items, sorted and spilled to a
/// temporary file as a run whenever it is full.
pub(crate) struct Runs {
    buffer: Vec<Item>,
    capacity: usize,
    spilled: Vec<File>,
}

impl Runs {
    /// Runs whose buffer takes at most `memory` bytes (at least one item).
    pub(crate) fn new(memory: usize) -> Runs {
        let capacity = (memory / ITEM).max(1);
        Runs { buffer: Vec::new(), capacity, spilled: Vec::new() }
    }

    /// Adds a row's item; a full buffer is written out as a run first.
    pub(crate) fn push(&mut self, item: Item) -> io::Result<()> {
        if self.buffer.len() >= self.capacity {
            self.spill()?;
        }
        if self.buffer.len() == self.buffer.capacity() {
            // Grown as rows come (a small table never takes the whole budget), never past it.
            let more = self.buffer.len().max(64 * 1024).min(self.capacity - self.buffer.len());
            self.buffer.reserve_exact(more);
        }
        self.buffer.push(item);
        Ok(())
    }

    /// How many runs went to disk.
    pub(crate) fn spilled(&self) -> usize {
        self.spilled.len()
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buffer.sort_unstable();
        let mut file = BufWriter::with_capacity(READ_BUFFER, tempfile::tempfile()?);
        for item in &self.buffer {
            file.write_all(item)?;
        }
        let mut file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.rewind()?;
        self.spilled.push(file);
        self.buffer.clear();
        Ok(())
    }

    /// The runs to merge: the spilled ones, and what the buffer holds, sorted.
    fn into_sources(mut self) -> Vec<Source> {
        self.buffer.sort_unstable();
        let mut sources: Vec<Source> = self.spilled.into_iter().map(Source::file).collect();
        if !self.buffer.is_empty() {
            sources.push(Source::Memory(self.buffer.into_iter()));
        }
        sources
    }
}

/// A sorted run being read.
enum Source {
    Memory(std::vec::IntoIter<Item>),
    File(BufReader<File>),
}

impl Source {
    fn file(file: File) -> Source {
        Source::File(BufReader::with_capacity(READ_BUFFER, file))
    }

    fn next(&mut self) -> io::Result<Option<Item>> {
        match self {
            Source::Memory(items) => Ok(items.next()),
            Source::File(reader) => {
                let mut item = [0u8; ITEM];
                match reader.read_exact(&mut item) {
                    Ok(()) => Ok(Some(item)),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// Every item of `sources`, in order, handed to `each`.
fn merge(mut sources: Vec<Source>, each: &mut dyn FnMut(&Item) -> io::Result<()>) -> io::Result<()> {
    if let [only] = sources.as_mut_slice() {
        while let Some(item) = only.next()? {
            each(&item)?;
        }
        return Ok(());
    }
    let mut heap = BinaryHeap::with_capacity(sources.len());
    for (i, source) in sources.iter_mut().enumerate() {
        if let Some(item) = source.next()? {
            heap.push(Reverse((item, i)));
        }
    }
    while let Some(Reverse((item, i))) = heap.pop() {
        each(&item)?;
        if let Some(next) = sources[i].next()? {
            heap.push(Reverse((next, i)));
        }
    }
    Ok(())
}

/// At most [`FAN_IN`] sources: groups of the first ones merged into longer runs until so.
fn narrow(mut sources: Vec<Source>) -> io::Result<Vec<Source>> {
    while sources.len() > FAN_IN {
        let group: Vec<Source> = sources.drain(..FAN_IN).collect();
        let mut out = BufWriter::with_capacity(READ_BUFFER, tempfile::tempfile()?);
        merge(group, &mut |item| out.write_all(item))?;
        let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.rewind()?;
        sources.push(Source::file(file));
    }
    Ok(sources)
}

/// Each of `spans` ranges' rows and the sha256 of their digests in byte order (of nothing, for a
/// range without rows), from every reader's runs.
pub(crate) fn finish(runs: Vec<Runs>, spans: usize) -> io::Result<Vec<(u64, [u8; 32])>> {
    let sources = narrow(runs.into_iter().flat_map(Runs::into_sources).collect())?;
    let mut hashers: Vec<(u64, Sha256)> = (0..spans).map(|_| (0, Sha256::new())).collect();
    let mut current: Option<(usize, u64, Sha256)> = None;
    merge(sources, &mut |item| {
        let span = u32::from_be_bytes([item[0], item[1], item[2], item[3]]) as usize;
        if current.as_ref().is_none_or(|(s, ..)| *s != span) {
            if let Some((s, rows, hasher)) = current.take() {
                hashers[s] = (rows, hasher);
            }
            if span >= spans {
                return Err(io::Error::other(format!("a row of range {span}, of {spans} ranges")));
            }
            current = Some((span, 0, Sha256::new()));
        }
        let (_, rows, hasher) = current.as_mut().expect("set above");
        *rows += 1;
        hasher.update(&item[4..]);
        Ok(())
    })?;
    if let Some((s, rows, hasher)) = current {
        hashers[s] = (rows, hasher);
    }
    Ok(hashers.into_iter().map(|(rows, hasher)| (rows, hasher.finalize().into())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the server computes: each range's digests sorted, concatenated, hashed.
    fn expected(items: &[(u32, [u8; 32])], spans: usize) -> Vec<(u64, [u8; 32])> {
        (0..spans as u32)
            .map(|s| {
                let mut digests: Vec<[u8; 32]> = items.iter().filter(|(i, _)| *i == s).map(|(_, d)| *d).collect();
                digests.sort();
                (digests.len() as u64, Sha256::digest(digests.concat()).into())
            })
            .collect()
    }

    fn rows(n: usize, spans: u32, duplicates: bool) -> Vec<(u32, [u8; 32])> {
        (0..n)
            .map(|i| {
                let row = if duplicates { i % 7 } else { i };
                ((i as u32).wrapping_mul(2654435761u32) % spans, Sha256::digest(row.to_string()).into())
            })
            .collect()
    }

    fn sorted(items: &[(u32, [u8; 32])], readers: usize, memory: usize, spans: usize) -> (Vec<(u64, [u8; 32])>, usize) {
        let mut runs: Vec<Runs> = (0..readers).map(|_| Runs::new(memory)).collect();
        for (i, (span, digest)) in items.iter().enumerate() {
            runs[i % readers].push(item(*span, digest)).unwrap();
        }
        let spilled = runs.iter().map(Runs::spilled).sum();
        (finish(runs, spans).unwrap(), spilled)
    }

    #[test]
    fn in_memory_or_spilled_the_digests_are_the_servers() {
        let items = rows(5000, 3, false);
        let (in_memory, none) = sorted(&items, 2, 1 << 20, 3);
        assert_eq!(none, 0);
        assert_eq!(in_memory, expected(&items, 3));
        // 10 items a run: hundreds of runs, merged FAN_IN at a time first.
        let (spilled, runs) = sorted(&items, 3, 10 * ITEM, 3);
        assert!(runs > FAN_IN * 2, "{runs} runs");
        assert_eq!(spilled, in_memory);
    }

    #[test]
    fn duplicates_count_and_an_empty_range_is_the_digest_of_nothing() {
        let items = rows(1000, 2, true);
        let (found, _) = sorted(&items, 2, 64 * ITEM, 4);
        assert_eq!(found, expected(&items, 4));
        assert_eq!(found[3], (0, Sha256::digest(b"").into()));
        let once = rows(7, 1, true);
        let (fewer, _) = sorted(&once, 1, 1 << 20, 1);
        assert_ne!(fewer[0].1, sorted(&rows(14, 1, true), 1, 1 << 20, 1).0[0].1, "a row twice is not a row once");
    }

    #[test]
    fn a_row_of_a_range_past_the_last_is_an_error() {
        let mut runs = Runs::new(1 << 20);
        runs.push(item(5, &[0; 32])).unwrap();
        assert!(finish(vec![runs], 2).is_err());
    }
}
