//! The rows of `COPY (SELECT span, row) TO STDOUT (FORMAT binary)`, as a fingerprint's reader
//! streams them: PostgreSQL's binary COPY format (its header, then each tuple's fields, each
//! length-prefixed, then the trailer), read from chunks cut anywhere. Binary, so that a row's
//! bytes arrive as the server made them, with no escaping to undo.

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
