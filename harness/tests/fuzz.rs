//! Fuzzing the parsers that read untrusted input: the plain-dump splitter, the archive header
//! reader and format detection, and the scenario parser. Each target generates inputs (random
//! bytes, and mutations of real dumps and scenarios, which reach deeper) for a bounded time and
//! requires that nothing panics or hangs. `PGDRILL_FUZZ_SECONDS` sets the time per target
//! (default 3: a smoke run in every test run); `ci/fuzz` runs them for minutes. A failure
//! prints the shrunk input: add it to `REGRESSIONS` below.

use std::path::Path;
use std::time::{Duration, Instant};

use pgdrill::dump::{Item, Splitter, archive, detect_format, toc};
use pgdrill::scenario::Scenario;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};

/// Inputs that once broke a parser (none yet); each runs through every target.
const REGRESSIONS: &[&[u8]] = &[b"", b"\\", b"COPY t FROM stdin;\n", b"$$", b"PGDMP", b"[source]\npath = \"\xff\"\n"];

fn fuzz_seconds() -> Duration {
    let seconds = std::env::var("PGDRILL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3u64);
    Duration::from_secs(seconds)
}

/// Runs `check` on inputs from `strategy` for `share` of the target's time; a failure panics
/// with the smallest failing input proptest found.
fn fuzz<S: Strategy<Value = Vec<u8>>>(name: &str, share: f64, strategy: S, check: impl Fn(&[u8])) {
    for input in REGRESSIONS {
        check(input);
    }
    let deadline = Instant::now() + fuzz_seconds().mul_f64(share);
    let (mut rounds, mut cases) = (0u64, 0u64);
    while Instant::now() < deadline {
        let config = Config { cases: 256, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&strategy, |input| {
            check(&input);
            Ok(())
        });
        if let Err(TestError::Fail(reason, input)) = result {
            panic!(
                "{name}: {reason}\nsmallest failing input ({} bytes): {:?}",
                input.len(),
                String::from_utf8_lossy(&input)
            );
        }
        rounds += 1;
        cases += 256;
    }
    eprintln!("{name}: {cases} inputs in {rounds} rounds, no panic");
}

/// Bytes made of the tokens that steer a SQL lexer, so that inputs reach its states.
fn sql_like() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(&b"'"[..]),
        Just(&b"\""[..]),
        Just(&b"$$"[..]),
        Just(&b"$tag$"[..]),
        Just(&b"E'"[..]),
        Just(&b"\\"[..]),
        Just(&b"\\."[..]),
        Just(&b"\\connect db\n"[..]),
        Just(&b"\\restrict k\n"[..]),
        Just(&b"\\unrestrict k\n"[..]),
        Just(&b"/*"[..]),
        Just(&b"*/"[..]),
        Just(&b"--"[..]),
        Just(&b"\n"[..]),
        Just(&b";"[..]),
        Just(&b"("[..]),
        Just(&b")"[..]),
        Just(&b"COPY public.t (a) FROM stdin;\n"[..]),
        Just(&b"COPY t TO PROGRAM 'x';"[..]),
        Just(&b"CREATE FUNCTION f() BEGIN ATOMIC "[..]),
        Just(&b"END"[..]),
        Just(&b"SET standard_conforming_strings = off;\n"[..]),
        Just(&b"-- Name: t; Type: TABLE; Schema: public; Owner: o\n"[..]),
        Just(&b"1\tx\n"[..]),
        Just(&b"select 1"[..]),
        Just(&b" "[..]),
        Just(&b"\xc3"[..]),
        Just(&b"\xff"[..]),
    ];
    prop::collection::vec(token, 0..64).prop_map(|tokens| tokens.concat())
}

/// A real input with a few bytes changed, cut or repeated.
fn mutated(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), any::<u8>(), 0u8..4);
    prop::collection::vec(edit, 1..8).prop_map(move |edits| {
        let mut bytes = seed.to_vec();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                2 => bytes.insert(i, byte),
                _ => {
                    let piece = bytes[i..bytes.len().min(i + 16)].to_vec();
                    bytes.splice(i..i, piece);
                }
            }
        }
        bytes
    })
}

fn split_all(input: &[u8]) {
    let mut splitter = Splitter::new(input);
    // Each call consumes input or ends: a bound on calls catches a splitter that loops.
    for _ in 0..=input.len() * 2 + 8 {
        match splitter.next_item() {
            Ok(Some(Item::CopyData(data))) => assert!(data.ends_with(b"\n"), "COPY data is whole lines"),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
    panic!("the splitter did not finish");
}

const DUMP: &[u8] = b"--\n-- PostgreSQL database dump\n--\n\\restrict abc\n-- Dumped from database version 17.2\n\
SET standard_conforming_strings = on;\nSELECT pg_catalog.set_config('search_path', '', false);\n\
--\n-- Name: t; Type: TABLE; Schema: public; Owner: app\n--\n\nCREATE TABLE public.t (a int, b text DEFAULT 'x;y');\n\
CREATE FUNCTION public.f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n\
DO $body$ BEGIN RAISE NOTICE 'a;b'; END $body$;\n\
COPY public.t (a, b) FROM stdin;\n1\tone\n2\t\\N\n\\.\n\n\\unrestrict abc\n--\n-- PostgreSQL database dump complete\n--\n";

#[test]
fn the_splitter_never_panics() {
    fuzz("splitter (bytes)", 0.2, prop::collection::vec(any::<u8>(), 0..512), split_all);
    fuzz("splitter (SQL tokens)", 0.4, sql_like(), split_all);
    fuzz("splitter (a mutated dump)", 0.4, mutated(DUMP), split_all);
}

/// The start of a real custom-format archive (pg_dump 17), as far as the header reader reads.
const ARCHIVE: &[u8] = b"PGDMP\x01\x10\x00\x04\x08\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\
bench\x00\x04\x00\x00\x0017.2\x00\x04\x00\x00\x0017.2";

/// A whole custom-format archive (pg_dump 17's, the bundled fixture): its table of contents.
const WHOLE_ARCHIVE: &[u8] = include_bytes!("../../fixtures/backups/prismeai.dump");

fn read_header(input: &[u8]) {
    let _ = detect_format(input);
    let _ = archive::read_header(input);
    let _ = archive::check_tar(input, |_| {});
    let _ = toc::read_header_and_kinds(input);
}

#[test]
fn the_archive_header_reader_never_panics() {
    fuzz("archive header (bytes)", 0.4, prop::collection::vec(any::<u8>(), 0..1024), read_header);
    fuzz("archive header (a mutated archive)", 0.3, mutated(ARCHIVE), read_header);
    fuzz("table of contents (a mutated archive)", 0.3, mutated(WHOLE_ARCHIVE), |input| {
        let _ = toc::read_header_and_kinds(input);
    });
}

const SCENARIO: &[u8] = br#"name = "plur"
tags = ["quarterly"]
[source]
path = "../fixtures/backups/plur.sql.gz"
min_size_ratio = 0.1
[target]
database = "plur_enterprise"
settings = { maintenance_work_mem = "1GB" }
[restore]
jobs = 2
timeout = "10m"
[[restore.roles]]
name = "plur_app"
[checks.extensions]
vector = "0.8.0"
[[checks.schema_version]]
table = "public.schema_migrations"
expected = "010"
[checks.row_counts]
tables = { "public.users" = 40 }
tolerance = "2%"
[[checks.sql]]
name = "one"
query = "SELECT 1"
expect = 1
"#;

fn parse_scenario(input: &[u8]) {
    if let Err(error) = Scenario::parse(input, Path::new("/nonexistent/pgdrill-fuzz/scenario.toml")) {
        // Rendering the error (with its source excerpt and span) must not panic either.
        let _ = format!("{error}");
        let _ = format!("{:?}", miette::Report::new(error));
    }
}

#[test]
fn the_scenario_parser_never_panics() {
    fuzz("scenario (bytes)", 0.3, prop::collection::vec(any::<u8>(), 0..256), parse_scenario);
    fuzz("scenario (a mutated scenario)", 0.7, mutated(SCENARIO), parse_scenario);
}
