//! gzip streams inflated by zlib-rs (flate2). ISA-L's inflate (an optional build until stop 80)
//! was about twice as fast on x86 but made no difference a drill could measure (BENCHMARKS.md,
//! issue 43: 0.64 against 0.66 of the manual way at 300 MB), and its build and tests cost CI
//! two minutes a run: it was removed.

use std::io::{BufRead, Read};

/// A reader of the gzip stream `inner` (members one after another read as one stream, as
/// `gzip -d` reads them), each member's CRC32 and length checked against its trailer.
pub(crate) fn gzip(inner: Box<dyn BufRead + Send>) -> Box<dyn Read + Send> {
    Box::new(flate2::bufread::MultiGzDecoder::new(inner))
}

/// Reads `reader` to its end: the bytes, or the error.
#[cfg(test)]
fn inflate_all(reader: impl BufRead + Send + 'static) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    gzip(Box::new(reader)).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
