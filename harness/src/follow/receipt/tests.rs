use std::cell::RefCell;

use super::*;
use crate::allowed_signers::AllowedSigners;
use crate::evidence::receipts::{Found, ReceiptFinding, verify};
use crate::evidence::sign::KeyOrigin;
use crate::evidence::verify::Trust;
use crate::restore::physical::feed::Given;
use crate::secret::Secret;

const SIZE: u64 = 16 << 20;

fn given(number: u64) -> Given {
    Given {
        number,
        name: crate::source::physical::wal::Segment { timeline: 1, number }.name(SIZE),
        bytes: SIZE,
        sha256: format!("{number:064x}"),
        archived_at: Some(SystemTime::UNIX_EPOCH),
        restore_points: Vec::new(),
    }
}

fn key(seed: u8) -> ssh_key::PrivateKey {
    ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]))
}

fn signer(seed: u8) -> Signer {
    let text = Secret::new(key(seed).to_openssh(ssh_key::LineEnding::LF).unwrap().as_str());
    Signer::parse(&text, None, KeyOrigin::Env).unwrap()
}

fn allowed(seed: u8) -> AllowedSigners {
    AllowedSigners::parse(&format!("drills@example.com {}\n", key(seed).public_key().to_openssh().unwrap())).unwrap()
}

/// A ledger in `state`: a start line and segments 2 to 4.
fn ledger(state: &Path) -> Ledger {
    let mut ledger = Ledger::open(&state.join("ledger.jsonl"), SIZE).unwrap();
    ledger
        .start(Line::Start {
            at: "2026-11-29T00:00:00Z".into(),
            backup: "b".into(),
            system: "42".into(),
            from: "x".into(),
        })
        .unwrap();
    for n in 2..5 {
        ledger.record(&given(n), "2026-11-29T00:01:00Z".into(), format!("0/{n}000000")).unwrap();
    }
    ledger
}

fn read(state: &Path, first: u64, last: u64) -> (Statement, Predicate) {
    let text = std::fs::read_to_string(state.join("receipts").join(receipts::name(first, last))).unwrap();
    receipts::parse(&text).unwrap()
}

fn check(state: &Path, signers: Option<&AllowedSigners>) -> crate::evidence::receipts::Verified {
    let found = receipts::find(state).unwrap().unwrap();
    verify(&found, &Trust { allowed_signers: signers.map(|s| (s, Path::new("allowed_signers"))), identity: None })
        .unwrap()
}

#[test]
fn a_window_s_receipt_covers_its_lines_with_their_digest_the_longest_lag_and_the_faults_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = ledger(dir.path());
    let said = RefCell::new(Vec::new());
    let say = |line: String| said.borrow_mut().push(line);
    let mut receipts =
        Receipts::open(dir.path(), Duration::from_secs(3600), Some(signer(1)), &ledger, "books", &say).unwrap();
    assert!(said.borrow()[0].contains(&format!("signed by key {}", signer(1).fingerprint())), "{said:?}");
    for lag in [2, 5, 1] {
        receipts.note_lag(Duration::from_secs(lag));
    }
    let mut faults = Faults::default();
    let gap = Fault::Gap { missing: "a".into(), later: "b".into(), waited: Duration::from_secs(61) };
    faults.set("gap", Some(gap), &say);
    receipts.close(&ledger, &faults, &say);
    let (statement, predicate) = read(dir.path(), 1, 4);
    let whole = std::fs::read(ledger.path()).unwrap();
    assert_eq!(statement.subject[0].name, "ledger.jsonl#L1-L4");
    assert_eq!(statement.subject[0].sha256(), Some(hex::encode(Sha256::digest(&whole)).as_str()));
    assert_eq!((predicate.first_seq, predicate.last_seq, predicate.prev.as_str(), predicate.segments), (1, 4, "", 3));
    let point = |n: u64| Some(Point { segment: given(n).name, lsn: format!("0/{n}000000") });
    assert_eq!((predicate.first_segment, predicate.last_segment), (point(2), point(4)));
    assert_eq!(predicate.proof_lag_max_seconds, 5.0);
    assert_eq!((predicate.faults, predicate.faults_standing), ([("gap".into(), 1)].into(), vec!["gap".to_owned()]));
    assert_eq!((predicate.scenario.as_str(), predicate.started_at.as_str()), ("books", "2026-11-29T00:00:00Z"));
    assert!(predicate.markers.is_empty());
    assert!(said.borrow().last().unwrap().contains("receipt of ledger lines 1-4 (3 segments)"), "{said:?}");

    // Nothing new: no receipt. Then the next window: its lines only, chained to the last one.
    receipts.close(&ledger, &faults, &say);
    assert_eq!(std::fs::read_dir(dir.path().join("receipts")).unwrap().count(), 2);
    ledger.record(&given(5), "t".into(), "0/5000000".into()).unwrap();
    faults.set("gap", None, &say);
    receipts.close(&ledger, &faults, &say);
    let (_, next) = read(dir.path(), 5, 5);
    let line4 = whole.split(|b| *b == b'\n').nth(3).unwrap();
    assert_eq!(next.prev, hex::encode(Sha256::digest(line4)));
    assert_eq!((next.proof_lag_max_seconds, next.faults.len(), next.faults_standing.len()), (1.0, 0, 0));
    let (_, first) = read(dir.path(), 1, 4);
    assert_eq!(next.started_at, first.ended_at);

    // A follower started again goes on after the last receipt.
    drop(receipts);
    let mut ledger = Ledger::open(ledger.path(), SIZE).unwrap();
    let mut receipts = Receipts::open(dir.path(), Duration::from_millis(10), None, &ledger, "books", &say).unwrap();
    assert!(said.borrow().last().unwrap().contains("unsigned: no signing key was given"), "{said:?}");
    ledger.record(&given(6), "t".into(), "0/6000000".into()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    receipts.tick(&ledger, &faults, &say);
    let (statement, again) = read(dir.path(), 6, 6);
    let line6 = std::fs::read(ledger.path()).unwrap().split_inclusive(|b| *b == b'\n').nth(5).unwrap().to_vec();
    assert_eq!(statement.subject[0].sha256(), Some(hex::encode(Sha256::digest(&line6)).as_str()));
    assert_eq!(again.started_at, next.ended_at);
    assert!(!dir.path().join("receipts").join(receipts::signature_name(&receipts::name(6, 6))).exists());
}

#[test]
fn receipts_verify_against_their_signer_and_the_ledger_and_each_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = ledger(dir.path());
    let mut receipts =
        Receipts::open(dir.path(), Duration::from_secs(3600), Some(signer(1)), &ledger, "books", &|_| {}).unwrap();
    receipts.close(&ledger, &Faults::default(), &|_| {});
    for n in 5..8 {
        ledger.record(&given(n), "t".into(), "0/1".into()).unwrap();
        receipts.close(&ledger, &Faults::default(), &|_| {});
    }
    ledger.record(&given(8), "t".into(), "0/1".into()).unwrap();
    let good = check(dir.path(), Some(&allowed(1)));
    assert!(good.passed(), "{:?}", good.findings);
    assert_eq!((good.receipts.len(), good.after_last), (4, Some((8, 8))));
    assert!(good.receipts.iter().all(|r| r.signed.as_ref().is_some_and(|s| s.allowed_by.is_some())));

    let stranger = check(dir.path(), Some(&allowed(2)));
    assert_eq!(stranger.findings.len(), 4);
    let text = stranger.findings[0].to_string();
    assert!(text.starts_with("receipt-000001-000004.intoto.json is signed by key SHA256:"), "{text}");
    assert!(text.contains("which is not in the allowed signers"), "{text}");

    // A line edited inside a window: that receipt, its lines, and where the chain breaks.
    let path = ledger.path().to_owned();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen(&format!("{:064x}", 3), &format!("{:064x}", 9), 1)).unwrap();
    let edited = check(dir.path(), Some(&allowed(1)));
    let said: Vec<String> = edited.findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        said,
        [
            "ledger.jsonl lines 1-4 were changed after receipt-000001-000004.intoto.json was written: they no longer have the sha256 it gives (the chain breaks at line 4: it does not carry the sha256 of line 3)"
        ]
    );

    // Lines removed; a receipt removed; a receipt unsigned.
    std::fs::write(&path, text.lines().take(5).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let folder = dir.path().join("receipts");
    std::fs::remove_file(folder.join(receipts::name(6, 6))).unwrap();
    std::fs::remove_file(folder.join(receipts::signature_name(&receipts::name(5, 5)))).unwrap();
    let cut = check(&folder, Some(&allowed(1)));
    assert_eq!(
        cut.findings,
        [
            ReceiptFinding::Unsigned { receipt: receipts::name(5, 5) },
            ReceiptFinding::Gone { receipt: receipts::name(7, 7), first: 7, last: 7, lines: 5 },
            ReceiptFinding::Uncovered { first: 6, last: 6, before: receipts::name(7, 7) },
        ]
    );
    // Without allowed signers, an unsigned receipt is said, not a finding.
    let one = receipts::find(&folder.join(receipts::name(5, 5))).unwrap().unwrap();
    assert!(matches!(&one, Found { folder: None, ledger: Some(_), .. }));
    assert!(verify(&one, &Trust::default()).unwrap().passed());
    // And a follower started on a ledger shorter than its receipts refuses to go on.
    let ledger = Ledger::open(&path, SIZE).unwrap();
    let refused = Receipts::open(dir.path(), Duration::from_secs(1), None, &ledger, "books", &|_| {}).err().unwrap();
    assert!(refused.to_string().contains("covers the ledger's lines up to 7, and the ledger"), "{refused}");
}

#[test]
fn what_a_kill_left_while_a_receipt_was_written_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    // A state folder without a ledger yet.
    let fresh = Ledger::open(&dir.path().join("ledger.jsonl"), SIZE).unwrap();
    Receipts::open(dir.path(), Duration::from_secs(1), None, &fresh, "books", &|_| {}).unwrap();
    let ledger = ledger(dir.path());
    let folder = dir.path().join("receipts");
    std::fs::create_dir_all(&folder).unwrap();
    let orphan = receipts::signature_name(&receipts::name(1, 2));
    std::fs::write(folder.join(&orphan), "sig").unwrap();
    std::fs::write(folder.join(".receipt-000001-000002.intoto.json.partial"), "{").unwrap();
    let said = RefCell::new(Vec::new());
    Receipts::open(dir.path(), Duration::from_secs(1), None, &ledger, "books", &|l| said.borrow_mut().push(l)).unwrap();
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    assert!(said.borrow().iter().any(|l| l.contains(&format!("removed `{orphan}`"))), "{said:?}");
}
