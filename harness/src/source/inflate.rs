//! gzip streams inflated: by zlib-rs (flate2) by default, by ISA-L's inflate with the `isal`
//! feature, about twice as fast on x86 (BENCHMARKS.md, issue 43). ISA-L builds with nasm and
//! autotools, which a machine that only builds Rust may lack: the feature is the build's choice.
//!
//! `isal-rs`'s own reader is not used: it gives up after two inflate calls that wrote nothing and
//! never counts the input they consumed, so a good file read through a source of short reads (a
//! pipe, a decrypting reader, an HTTP body) failed as corrupt. The loop here counts both.

use std::io::{BufRead, Read};

/// A reader of the gzip stream `inner` (members one after another read as one stream, as
/// `gzip -d` reads them), each member's CRC32 and length checked against its trailer.
pub(crate) fn gzip(inner: Box<dyn BufRead + Send>) -> Box<dyn Read + Send> {
    #[cfg(feature = "isal")]
    {
        Box::new(isal::Inflate::new(inner))
    }
    #[cfg(not(feature = "isal"))]
    {
        Box::new(flate2::bufread::MultiGzDecoder::new(inner))
    }
}

#[cfg(feature = "isal")]
mod isal {
    use std::io::{self, BufRead, Read};

    use isal_sys::igzip_lib as ffi;

    /// ISA-L's stateful inflate over a buffered reader.
    pub(super) struct Inflate {
        inner: Box<dyn BufRead + Send>,
        state: State,
        /// The current member ended (its trailer checked); the next bytes, if any, start another.
        member_done: bool,
    }

    /// ISA-L's state, on the heap (its pointers point into buffers it does not own, set for each
    /// call only).
    struct State(Box<ffi::inflate_state>);

    // SAFETY: the state is owned by one `Inflate` and only used through `&mut self`; the raw
    // pointers in it are set before each call to the buffers of that call and never read after.
    unsafe impl Send for State {}

    impl State {
        fn new() -> State {
            // SAFETY: inflate_state is a plain C struct for which all zeroes is a valid value;
            // isal_inflate_init then sets what inflate needs.
            let mut state: Box<ffi::inflate_state> = Box::new(unsafe { std::mem::zeroed() });
            // SAFETY: a valid, exclusively borrowed state.
            unsafe { ffi::isal_inflate_init(&mut *state) };
            state.crc_flag = ffi::ISAL_GZIP;
            State(state)
        }

        fn reset(&mut self) {
            // SAFETY: a valid, exclusively borrowed state.
            unsafe { ffi::isal_inflate_reset(&mut *self.0) };
            self.0.crc_flag = ffi::ISAL_GZIP;
        }

        fn finished(&self) -> bool {
            self.0.block_state == ffi::isal_block_state_ISAL_BLOCK_FINISH
        }
    }

    impl Inflate {
        pub(super) fn new(inner: Box<dyn BufRead + Send>) -> Inflate {
            Inflate { inner, state: State::new(), member_done: false }
        }

        /// One call of inflate on what `inner` has buffered into `out`: (input given, input
        /// consumed, output written).
        fn step(&mut self, out: &mut [u8]) -> io::Result<(usize, usize, usize)> {
            let input = self.inner.fill_buf()?;
            let state = &mut *self.state.0;
            state.next_in = input.as_ptr().cast_mut();
            state.avail_in = u32::try_from(input.len()).unwrap_or(u32::MAX);
            state.next_out = out.as_mut_ptr();
            state.avail_out = u32::try_from(out.len()).unwrap_or(u32::MAX);
            let (given_in, given_out) = (state.avail_in, state.avail_out);
            // SAFETY: next_in/avail_in describe `input` (borrowed from `inner`'s buffer, which
            // inflate only reads) and next_out/avail_out describe `out`; both outlive the call,
            // and ISA-L keeps what it needs of them in its own state, not these pointers.
            let code = unsafe { ffi::isal_inflate(state) };
            let (consumed, written) = ((given_in - state.avail_in) as usize, (given_out - state.avail_out) as usize);
            state.next_in = std::ptr::null_mut();
            state.next_out = std::ptr::null_mut();
            self.inner.consume(consumed);
            if code != ffi::ISAL_DECOMP_OK as i32 {
                return Err(corrupt(code));
            }
            Ok((given_in as usize, consumed, written))
        }
    }

    impl Read for Inflate {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if out.is_empty() {
                return Ok(0);
            }
            loop {
                if self.member_done {
                    // Another member, or the end: anything but a gzip header is refused by
                    // inflate once it is given.
                    if self.inner.fill_buf()?.is_empty() {
                        return Ok(0);
                    }
                    self.state.reset();
                    self.member_done = false;
                }
                let (given, consumed, written) = self.step(out)?;
                if self.state.finished() {
                    self.member_done = true;
                }
                if written > 0 {
                    return Ok(written);
                }
                if self.member_done {
                    continue;
                }
                if given == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the gzip stream ends before its last member's end: the file was cut short",
                    ));
                }
                if consumed == 0 {
                    // Input given and room to write, and inflate took nothing and wrote
                    // nothing: it will not move on.
                    return Err(corrupt(ffi::ISAL_INVALID_BLOCK));
                }
            }
        }
    }

    /// What ISA-L's return code `code` says of the stream.
    fn corrupt(code: i32) -> io::Error {
        let why = match code {
            ffi::ISAL_INVALID_WRAPPER => "not a gzip header where a member starts",
            ffi::ISAL_UNSUPPORTED_METHOD => "a member not compressed with deflate",
            ffi::ISAL_INCORRECT_CHECKSUM => "a member's CRC32 or length does not match its trailer",
            ffi::ISAL_INVALID_SYMBOL | ffi::ISAL_INVALID_LOOKBACK | ffi::ISAL_INVALID_BLOCK => "corrupt deflate data",
            _ => "inflate failed",
        };
        io::Error::new(io::ErrorKind::InvalidData, format!("{why} (ISA-L code {code})"))
    }
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
