//! The rows of a fingerprint's COPY, as its reader streams them, from chunks cut anywhere: each
//! row's range and the text its digest hashes ([`super::RowText`]).
//!
//! - `COPY (SELECT span, c1, c2, ...) TO STDOUT` ([`Lines`]): a line per row, the range's number
//!   before the first tab, the row's COPY line after it, exactly as COPY wrote it.
//! - `COPY (SELECT span, ROW(...)::text) TO STDOUT (FORMAT binary)` ([`Rows`]): PostgreSQL's
//!   binary COPY format (its header, then each tuple's fields, each length-prefixed, then the
//!   trailer), so that the record's text arrives as the server made it, with no escaping to undo.

use super::RowText;

/// The binary COPY format's signature.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Why a COPY stream does not read as a fingerprint's rows.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum CopyError {
    #[error("the COPY stream does not start with the binary format's signature")]
    Signature,
    #[error("a COPY row has {fields} fields, not the 2 asked for (its range, its text)")]
    Fields { fields: i16 },
    #[error("a COPY row's range is {length} bytes, not an int4")]
    Span { length: i32 },
    #[error("a COPY row's text is NULL")]
    Null,
    #[error("the COPY stream goes on after its trailer")]
    AfterTrailer,
    #[error("the COPY stream ends without its trailer")]
    NoTrailer,
    #[error("a COPY line does not start with its range's number and a tab")]
    Line,
    #[error("the COPY stream ends within a line")]
    Unterminated,
}

/// The rows of either kind of COPY.
pub(crate) enum Stream {
    Binary(Rows),
    Text(Lines),
}

impl Stream {
    /// The stream a COPY of `row_text` sends.
    pub(crate) fn new(row_text: RowText) -> Stream {
        match row_text {
            RowText::Record => Stream::Binary(Rows::default()),
            RowText::Copy => Stream::Text(Lines::default()),
        }
    }

    /// Reads `chunk`, handing each whole row's range and text to `each`.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        each: &mut dyn FnMut(u32, &[u8]) -> std::io::Result<()>,
    ) -> Result<(), FeedError> {
        match self {
            Stream::Binary(rows) => rows.feed(chunk, each),
            Stream::Text(lines) => lines.feed(chunk, each),
        }
    }

    /// That the stream ended where it should.
    pub(crate) fn end(&self) -> Result<(), CopyError> {
        match self {
            Stream::Binary(rows) => rows.end(),
            Stream::Text(lines) => lines.end(),
        }
    }
}

/// The lines of a COPY in text format, fed as they arrive.
#[derive(Default)]
pub(crate) struct Lines {
    /// The start of a line cut between two chunks.
    carry: Vec<u8>,
}

impl Lines {
    /// Reads `chunk`, handing each whole line's range and the rest of the line to `each`.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        each: &mut dyn FnMut(u32, &[u8]) -> std::io::Result<()>,
    ) -> Result<(), FeedError> {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            let Some(end) = memchr::memchr(b'\n', rest) else {
                self.carry.extend_from_slice(rest);
                return Ok(());
            };
            self.carry.extend_from_slice(&rest[..end]);
            let line = std::mem::take(&mut self.carry);
            line_of(&line, each)?;
            rest = &rest[end + 1..];
        }
        while let Some(end) = memchr::memchr(b'\n', rest) {
            line_of(&rest[..end], each)?;
            rest = &rest[end + 1..];
        }
        self.carry.extend_from_slice(rest);
        Ok(())
    }

    /// That the stream ended after a whole line.
    pub(crate) fn end(&self) -> Result<(), CopyError> {
        if self.carry.is_empty() { Ok(()) } else { Err(CopyError::Unterminated) }
    }
}

/// A line: its range's number, a tab, the row's own line.
fn line_of(line: &[u8], each: &mut dyn FnMut(u32, &[u8]) -> std::io::Result<()>) -> Result<(), FeedError> {
    let tab = memchr::memchr(b'\t', line).ok_or(CopyError::Line)?;
    let span = std::str::from_utf8(&line[..tab]).ok().and_then(|n| n.parse().ok()).ok_or(CopyError::Line)?;
    each(span, &line[tab + 1..]).map_err(FeedError::Consumer)
}

/// What the start of a buffer holds.
enum Parsed<'a> {
    /// Not enough bytes yet.
    More,
    /// The header, of so many bytes.
    Header(usize),
    /// A row: its bytes in all, its range and its text.
    Row(usize, u32, &'a [u8]),
    /// The trailer.
    Trailer,
}

fn i16_at(buf: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

fn i32_at(buf: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// The rows of one COPY's output, fed as it arrives.
#[derive(Default)]
pub(crate) struct Rows {
    /// The bytes of a frame cut between two chunks.
    carry: Vec<u8>,
    header: bool,
    trailer: bool,
}

impl Rows {
    /// Reads `chunk`, handing each whole row's range and text to `each`.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        each: &mut dyn FnMut(u32, &[u8]) -> std::io::Result<()>,
    ) -> Result<(), FeedError> {
        if self.carry.is_empty() {
            let used = self.frames(chunk, each)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            self.carry.extend_from_slice(chunk);
            let carry = std::mem::take(&mut self.carry);
            let used = self.frames(&carry, each)?;
            self.carry = carry;
            self.carry.drain(..used);
        }
        Ok(())
    }

    /// That the stream ended where it should: after its trailer, nothing left.
    pub(crate) fn end(&self) -> Result<(), CopyError> {
        if self.trailer && self.carry.is_empty() { Ok(()) } else { Err(CopyError::NoTrailer) }
    }

    /// Every whole frame at the start of `buf`; the bytes they took.
    fn frames(
        &mut self,
        buf: &[u8],
        each: &mut dyn FnMut(u32, &[u8]) -> std::io::Result<()>,
    ) -> Result<usize, FeedError> {
        let mut at = 0;
        loop {
            if self.trailer {
                return if at == buf.len() { Ok(at) } else { Err(CopyError::AfterTrailer.into()) };
            }
            match self.parse(&buf[at..])? {
                Parsed::More => return Ok(at),
                Parsed::Header(n) => {
                    self.header = true;
                    at += n;
                }
                Parsed::Row(n, span, row) => {
                    each(span, row).map_err(FeedError::Consumer)?;
                    at += n;
                }
                Parsed::Trailer => {
                    self.trailer = true;
                    at += 2;
                }
            }
        }
    }

    fn parse<'a>(&self, buf: &'a [u8]) -> Result<Parsed<'a>, CopyError> {
        if !self.header {
            let (Some(signature), Some(extension)) = (buf.get(..11), i32_at(buf, 15)) else {
                return Ok(Parsed::More);
            };
            if signature != SIGNATURE || extension < 0 {
                return Err(CopyError::Signature);
            }
            let n = 19 + extension as usize;
            return Ok(if buf.len() >= n { Parsed::Header(n) } else { Parsed::More });
        }
        let Some(fields) = i16_at(buf, 0) else { return Ok(Parsed::More) };
        match fields {
            -1 => return Ok(Parsed::Trailer),
            2 => {}
            fields => return Err(CopyError::Fields { fields }),
        }
        let Some(length) = i32_at(buf, 2) else { return Ok(Parsed::More) };
        if length != 4 {
            return Err(CopyError::Span { length });
        }
        let (Some(span), Some(text)) = (i32_at(buf, 6), i32_at(buf, 10)) else { return Ok(Parsed::More) };
        if text < 0 {
            return Err(CopyError::Null);
        }
        let end = 14 + text as usize;
        match buf.get(14..end) {
            Some(row) => Ok(Parsed::Row(end, span as u32, row)),
            None => Ok(Parsed::More),
        }
    }
}

/// Why a chunk could not be read: the stream, or what was done with a row.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FeedError {
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error("cannot keep a row's digest")]
    Consumer(#[source] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A binary COPY stream of `rows`, as the server writes it.
    fn stream(rows: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend(0i32.to_be_bytes());
        out.extend(3i32.to_be_bytes());
        out.extend(b"ext");
        for (span, row) in rows {
            out.extend(2i16.to_be_bytes());
            out.extend(4i32.to_be_bytes());
            out.extend(span.to_be_bytes());
            out.extend((row.len() as i32).to_be_bytes());
            out.extend(row);
        }
        out.extend((-1i16).to_be_bytes());
        out
    }

    fn read(chunks: &[&[u8]]) -> Result<Vec<(u32, Vec<u8>)>, String> {
        let mut rows = Rows::default();
        let mut found = Vec::new();
        for chunk in chunks {
            rows.feed(chunk, &mut |span, row| {
                found.push((span, row.to_vec()));
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        }
        rows.end().map_err(|e| e.to_string())?;
        Ok(found)
    }

    proptest! {
        #[test]
        fn rows_read_the_same_wherever_the_chunks_are_cut(
            rows in proptest::collection::vec((0u32..20, proptest::collection::vec(any::<u8>(), 0..40)), 0..30),
            cuts in proptest::collection::vec(0usize..2000, 0..12),
        ) {
            let bytes = stream(&rows);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort();
            let mut chunks = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                chunks.push(&bytes[from..cut]);
                from = cut;
            }
            prop_assert_eq!(read(&chunks), Ok(rows));
        }
    }

    fn read_lines(chunks: &[&[u8]]) -> Result<Vec<(u32, Vec<u8>)>, String> {
        let mut lines = Stream::new(RowText::Copy);
        let mut found = Vec::new();
        for chunk in chunks {
            lines
                .feed(chunk, &mut |span, row| {
                    found.push((span, row.to_vec()));
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
        }
        lines.end().map_err(|e| e.to_string())?;
        Ok(found)
    }

    proptest! {
        #[test]
        fn lines_read_the_same_wherever_the_chunks_are_cut(
            rows in proptest::collection::vec((0u32..20, proptest::collection::vec(any::<u8>().prop_filter("not a newline", |b| *b != b'\n'), 0..40)), 0..30),
            cuts in proptest::collection::vec(0usize..2000, 0..12),
        ) {
            let mut bytes = Vec::new();
            for (span, row) in &rows {
                bytes.extend(format!("{span}\t").into_bytes());
                bytes.extend(row);
                bytes.push(b'\n');
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort();
            let mut chunks = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                chunks.push(&bytes[from..cut]);
                from = cut;
            }
            prop_assert_eq!(read_lines(&chunks), Ok(rows));
        }
    }

    #[test]
    fn a_line_cut_short_or_without_its_range_is_an_error() {
        assert_eq!(read_lines(&[b"3\t1\tx\\ty\n"]).unwrap(), vec![(3, b"1\tx\\ty".to_vec())]);
        assert_eq!(read_lines(&[b"3\t1\tx\n", b"4\t2"]).unwrap_err(), CopyError::Unterminated.to_string());
        assert_eq!(read_lines(&[b"x\t1\n"]).unwrap_err(), CopyError::Line.to_string());
        assert_eq!(read_lines(&[b"12\n"]).unwrap_err(), CopyError::Line.to_string());
    }

    #[test]
    fn a_stream_cut_short_or_not_of_this_shape_is_an_error() {
        let bytes = stream(&[(0, b"(1,a)".to_vec())]);
        assert_eq!(read(&[&bytes[..bytes.len() - 2]]).unwrap_err(), CopyError::NoTrailer.to_string());
        assert_eq!(read(&[&bytes[..bytes.len() - 5]]).unwrap_err(), CopyError::NoTrailer.to_string());
        let mut after = bytes.clone();
        after.push(0);
        assert_eq!(read(&[&after]).unwrap_err(), CopyError::AfterTrailer.to_string());
        assert_eq!(read(&[b"PGCOPY\n\xff\r\n\x01\0\0\0\0\0\0\0\0"]).unwrap_err(), CopyError::Signature.to_string());
        let mut one_field = bytes.clone();
        one_field[23] = 1;
        assert_eq!(read(&[&one_field]).unwrap_err(), CopyError::Fields { fields: 1 }.to_string());
        let mut null = bytes.clone();
        null[32..36].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(read(&[&null[..36]]).unwrap_err(), CopyError::Null.to_string());
    }
}
