//! The objectives a business sets: RTO judged on the measured recovery, RPO on the backup's age
//! at drill time (here from the date in its name), each met on a fresh backup and missed on a
//! stale one or an impossible budget, in every report.

use pgdrill::Verdict;
use pgdrill::outcome::DrillVerdict;

use crate::util::{Scratch, fixture};

/// A drill of PLUR's backup, copied under `name`, against `objectives`.
fn drill(name: &str, objectives: &str) -> (Scratch, crate::util::Drill) {
    let scratch = Scratch::new();
    scratch.write(name, std::fs::read(fixture("plur.sql.gz")).expect("the fixture"));
    let scenario = scratch.scenario(
        "objectives.toml",
        &format!(
            "[source]\npath = \"{name}\"\n[restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n[objectives]\n{objectives}\n"
        ),
    );
    let drill = scratch.drill(&scenario);
    (scratch, drill)
}

fn result<'a>(drill: &'a crate::util::Drill, id: &str) -> &'a pgdrill::CheckResult {
    drill.record().checks.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no {id}: {drill:?}"))
}

#[test]
fn a_fresh_backup_restored_in_time_meets_both_objectives() {
    let today = time::OffsetDateTime::now_utc().date();
    let name = format!("plur-{}.sql.gz", today);
    let (_scratch, drill) = drill(&name, "rto = \"45m\"\nrpo = \"26h\"");
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let (rto, rpo) = (result(&drill, "objectives/rto"), result(&drill, "objectives/rpo"));
    assert_eq!((rto.verdict, rpo.verdict), (Verdict::Pass, Verdict::Pass), "{drill:?}");
    assert!(rto.message.contains("within the RTO of 45m"), "{}", rto.message);
    assert!(rpo.message.contains("within the RPO of 26h (the date in its name (read as UTC))"), "{}", rpo.message);
    let backup = drill.record().backup.as_ref().expect("backup");
    assert_eq!(backup.taken_at_from.as_deref(), Some("the date in its name (read as UTC)"));
    let markdown = drill.report("report.md");
    let row =
        |name: &str| markdown.lines().find(|l| l.starts_with(&format!("| {name}"))).unwrap_or_default().to_owned();
    let (rto_row, rpo_row) = (row("RTO: recovery time"), row("RPO: backup age"));
    assert!(rto_row.contains("45m") && rto_row.contains("✅ met"), "{markdown}");
    assert!(rpo_row.contains("26h") && rpo_row.contains("from the date in its name") && rpo_row.contains("✅ met"));
}

#[test]
fn a_stale_backup_and_a_slow_recovery_each_fail_the_drill() {
    // A stale backup restored in time: the RPO alone is missed.
    let (_scratch, drill) = drill("plur-2020-01-01.sql.gz", "rto = \"45m\"\nrpo = \"26h\"");
    assert_eq!(drill.code, Some(1), "{drill:?}");
    assert_eq!(drill.record().verdict, DrillVerdict::Fail);
    let (rto, rpo) = (result(&drill, "objectives/rto"), result(&drill, "objectives/rpo"));
    assert_eq!((rto.verdict, rpo.verdict), (Verdict::Pass, Verdict::Fail), "{drill:?}");
    assert!(
        rpo.message.contains("over the RPO of 26h by") && rpo.message.contains("would lose up to"),
        "{}",
        rpo.message
    );
    assert!(rpo.evidence.starts_with("taken at 2020-01-01T00:00:00Z"), "{}", rpo.evidence);
    let failure = drill.record().failure.clone().unwrap_or_default();
    assert!(failure.contains("objectives/rpo"), "{failure}");
    let junit = drill.report("junit.xml");
    assert!(junit.contains("objectives/rpo") && junit.contains("<failure"), "{junit}");
    assert!(drill.report("report.md").contains("❌ missed"));

    // An RTO no recovery can meet: the drill stops as soon as it has passed, and the RTO is
    // missed by at least itself (tests/drills/limits.rs stops a restore that never ends).
    let (_scratch, drill) = self::drill("plur-2020-01-01.sql.gz", "rto = \"1ms\"");
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let rto = result(&drill, "objectives/rto");
    assert_eq!((rto.verdict, rto.actual.as_str()), (Verdict::Fail, "at least 1ms"), "{drill:?}");
    assert!(drill.record().rto_passed, "{drill:?}");
    let failure = drill.record().failure.clone().unwrap_or_default();
    assert!(failure.contains("the RTO of 1ms passed during the"), "{failure}");
    assert!(drill.report("report.md").contains("❌ missed"));
    drill.assert_failed_cleanly();
}
