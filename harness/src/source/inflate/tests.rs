//! The inflater reads good streams whole through readers of any read size (a pipe, a decrypting
//! reader, an HTTP body), and refuses every damaged one.

use std::io::{BufReader, Write};

use super::inflate_all;

/// A text of `lines` numbered lines: compressible, and long enough for many deflate blocks.
fn text(lines: u32) -> Vec<u8> {
    (0..lines).flat_map(|i| format!("{i}\tline {i} of the dump, {}\n", i * 7919 % 104729).into_bytes()).collect()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// `bytes` read through a buffer of `capacity`: its reads are at most that long.
fn through(bytes: Vec<u8>, capacity: usize) -> std::io::Result<Vec<u8>> {
    inflate_all(BufReader::with_capacity(capacity, std::io::Cursor::new(bytes)))
}

#[test]
fn a_stream_reads_whole_through_reads_of_any_size() {
    let plain = text(60_000);
    for capacity in [1, 2, 7, 64, 1000, 16 << 10, 256 << 10] {
        let read = through(gz(&plain), capacity).unwrap_or_else(|e| panic!("reads of {capacity}: {e}"));
        assert!(read == plain, "reads of {capacity}: {} bytes, not the {} written", read.len(), plain.len());
    }
}

#[test]
fn members_one_after_another_are_one_stream_and_an_empty_member_is_nothing() {
    let (a, b) = (text(5_000), b"the second member\n".to_vec());
    let mut both = gz(&a);
    both.extend(gz(b""));
    both.extend(gz(&b));
    for capacity in [1, 3, 4096] {
        assert_eq!(through(both.clone(), capacity).unwrap(), [a.clone(), b.clone()].concat(), "reads of {capacity}");
    }
}

/// `good` with its trailer's CRC32 changed, and with bytes after its last member.
fn bad_crc_and_trailing(good: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut crc = good.to_vec();
    crc[good.len() - 6] ^= 0x01;
    (crc, [good, b"not a member"].concat())
}

#[test]
fn a_damaged_trailer_a_cut_a_flipped_block_or_trailing_bytes_fail() {
    let good = gz(&text(20_000));
    let n = good.len();
    let (crc, trailing) = bad_crc_and_trailing(&good);
    let mut length = good.clone();
    length[n - 2] ^= 0x01;
    let mut flipped = good.clone();
    flipped[n / 2..n / 2 + 32].iter_mut().for_each(|b| *b = !*b);
    let cases = [
        ("a changed CRC32", crc),
        ("a changed length", length),
        ("flipped bytes", flipped),
        ("bytes after the last member", trailing),
        ("cut in its trailer", good[..n - 3].to_vec()),
        ("cut in the middle", good[..n / 2].to_vec()),
        ("cut in its header", good[..5].to_vec()),
    ];
    for (what, bytes) in cases {
        for capacity in [1, 64 << 10] {
            assert!(through(bytes.clone(), capacity).is_err(), "{what}, reads of {capacity}: read as good");
        }
    }
}

#[test]
fn mutated_streams_fail_or_read_what_was_written_never_something_else() {
    let plain = text(3_000);
    let good = gz(&plain);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..500 {
        let mut bytes = good.clone();
        for _ in 0..1 + round % 4 {
            let at = (next() as usize) % bytes.len();
            bytes[at] ^= 1 << (next() % 8);
        }
        let capacity = [1, 100, 8192][round % 3];
        if let Ok(read) = through(bytes, capacity) {
            assert!(read == plain, "round {round}: a mutated stream read as other data");
        }
    }
}
