use super::*;

const SIZE: u64 = 16 << 20;

fn given(number: u64, digest: &str) -> Given {
    Given {
        number,
        name: crate::source::physical::wal::Segment { timeline: 1, number }.name(SIZE),
        bytes: SIZE,
        sha256: digest.repeat(64 / digest.len()),
        archived_at: Some(std::time::SystemTime::UNIX_EPOCH),
        restore_points: Vec::new(),
    }
}

fn start() -> Line {
    Line::Start { at: "2026-11-29T00:00:00Z".into(), backup: "b".into(), system: "42".into(), from: "x".into() }
}

#[test]
fn a_restarted_follower_reads_the_chain_confirms_what_it_replays_again_and_records_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = Ledger::open(&path, SIZE).unwrap();
    ledger.start(start()).unwrap();
    for n in 2..5 {
        assert_eq!(ledger.record(&given(n, "a"), "t".into(), "0/1".into()).unwrap(), Recorded::New);
    }
    let mut again = Ledger::open(&path, SIZE).unwrap();
    assert_eq!((again.lines(), again.segments(), again.repaired.is_none()), (4, 3, true));
    again.start(start()).unwrap();
    assert_eq!(again.record(&given(3, "a"), "t".into(), "0/1".into()).unwrap(), Recorded::Again);
    assert_eq!(again.record(&given(5, "a"), "t".into(), "0/1".into()).unwrap(), Recorded::New);
    let text = std::fs::read_to_string(&path).unwrap();
    let segments: Vec<&str> = text.lines().filter(|l| l.contains("\"kind\":\"segment\"")).collect();
    assert_eq!(segments.len(), 4, "each segment once:\n{text}");
    // The same segment with other content is not the one proven.
    let error = again.record(&given(4, "b"), "t".into(), "0/1".into()).unwrap_err().to_string();
    assert!(error.contains("000000010000000000000004") && error.contains("changed after it was proven"), "{error}");
    // A segment after one that was never recorded.
    let error = again.record(&given(7, "a"), "t".into(), "0/1".into()).unwrap_err().to_string();
    assert!(error.contains("the segments between were not replayed"), "{error}");
}

#[test]
fn a_line_cut_short_by_a_kill_is_removed_and_a_line_changed_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = Ledger::open(&path, SIZE).unwrap();
    ledger.start(start()).unwrap();
    ledger.record(&given(2, "a"), "t".into(), "0/1".into()).unwrap();
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, [whole.as_slice(), b"{\"seq\":3,\"prev\":\"ab"].concat()).unwrap();
    let mut opened = Ledger::open(&path, SIZE).unwrap();
    assert!(opened.repaired.take().is_some_and(|r| r.contains("cut short")));
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    assert_eq!(opened.record(&given(3, "a"), "t".into(), "0/1".into()).unwrap(), Recorded::New);
    // An edited digest: the next line's `prev` no longer matches.
    let text = std::fs::read_to_string(&path).unwrap().replacen(&"a".repeat(64), &"c".repeat(64), 1);
    std::fs::write(&path, text).unwrap();
    let error = Ledger::open(&path, SIZE).err().unwrap().to_string();
    assert!(error.contains("line 3 does not carry the digest of the line before it"), "{error}");
}
