//! `test-result.intoto.json`: the drill as in-toto's standard Test Result predicate
//! (<https://github.com/in-toto/attestation/blob/main/spec/predicates/test-result.md>), which
//! policy engines read without knowing pgdrill. Its subject is what was tested: the backup, by
//! its sha256 (the scenario file when the drill never read a backup); its configuration the
//! scenario file; its tests each phase that ran (`phase/restore`) and each check (`sql/ledger`),
//! by whether it passed or failed. A check or phase that did not run is in no list: a policy
//! that requires a test finds it missing. Signed as `evidence.intoto.json` is, and covered by it.

use std::collections::BTreeMap;

use serde_json::json;

use super::statement::{STATEMENT_TYPE, Statement, Subject};
use crate::outcome::{DrillRecord, DrillVerdict, PhaseStatus, Verdict};

/// The statement's file name.
pub(crate) const TEST_RESULT: &str = "test-result.intoto.json";
/// Its signature's file name (armored SSHSIG, the evidence's namespace).
pub(crate) const TEST_RESULT_SIGNATURE: &str = "test-result.intoto.json.sig";
/// in-toto's Test Result predicate, version 0.1.
pub(crate) const TEST_RESULT_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// The Test Result statement of the drill `record`.
pub(crate) fn statement(record: &DrillRecord) -> Statement {
    let sha256 = |hex: &str| BTreeMap::from([("sha256".to_owned(), hex.to_owned())]);
    let scenario = Subject { name: record.scenario.file.clone(), digest: sha256(&record.scenario.sha256) };
    let subject = match record.backup.as_ref().filter(|b| !b.sha256.is_empty()) {
        Some(backup) => Subject { name: backup.location.clone(), digest: sha256(&backup.sha256) },
        None => scenario.clone(),
    };
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for phase in &record.phases {
        let name = format!("phase/{}", phase.phase.as_str());
        match phase.status {
            PhaseStatus::Passed => passed.push(name),
            PhaseStatus::Failed | PhaseStatus::Interrupted => failed.push(name),
            PhaseStatus::Skipped | PhaseStatus::Running => {}
        }
    }
    for check in &record.checks {
        match check.verdict {
            Verdict::Pass => passed.push(check.id.clone()),
            Verdict::Fail | Verdict::Error => failed.push(check.id.clone()),
            Verdict::Skipped => {}
        }
    }
    let result = match record.verdict {
        DrillVerdict::Pass => "PASSED",
        DrillVerdict::Fail | DrillVerdict::Interrupted | DrillVerdict::Running => "FAILED",
    };
    let predicate = json!({
        "result": result,
        "configuration": [{ "name": scenario.name, "digest": scenario.digest }],
        "passedTests": passed,
        "warnedTests": [],
        "failedTests": failed,
    });
    Statement {
        type_: STATEMENT_TYPE.to_owned(),
        subject: vec![subject],
        predicate_type: TEST_RESULT_TYPE.to_owned(),
        predicate,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::outcome::history::tests::drill;
    use crate::outcome::{BackupInfo, CheckKind, CheckResult};

    #[test]
    fn a_drill_is_a_test_result_of_its_backup_each_check_passed_or_failed_and_a_skipped_one_in_neither() {
        let mut record = drill("books", "a");
        record.verdict = DrillVerdict::Fail;
        record.backup =
            Some(BackupInfo { location: "/srv/books.dump".into(), sha256: "ab".repeat(32), ..BackupInfo::default() });
        let check = |object: &str| CheckResult::build(CheckKind::Sql, object, Instant::now());
        record.checks = vec![
            check("ledger").verdict(true, "3 rows"),
            check("orders").verdict(false, "0 rows"),
            check("audit").skip("an earlier check failed"),
        ];
        let made = statement(&record);
        let json = serde_json::to_value(&made).unwrap();
        assert_eq!(json["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(json["predicateType"], TEST_RESULT_TYPE);
        assert_eq!(json["subject"][0]["name"], "/srv/books.dump");
        assert_eq!(json["subject"][0]["digest"]["sha256"], "ab".repeat(32));
        let predicate = &json["predicate"];
        assert_eq!(predicate["result"], "FAILED");
        assert_eq!(predicate["passedTests"], json!(["sql/ledger"]));
        assert_eq!(predicate["failedTests"], json!(["sql/orders"]));
        assert_eq!(predicate["configuration"][0]["digest"]["sha256"], "a".repeat(64));
        // With no backup read, what was tested is the scenario.
        record.backup = None;
        assert_eq!(statement(&record).subject[0].sha256(), Some("a".repeat(64).as_str()));
    }
}
