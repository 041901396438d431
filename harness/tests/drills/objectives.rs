//! The objectives a business sets: RTO judged on the measured recovery, RPO on the backup's age
//! at drill time (here from the date in its name), each met on a fresh backup and missed on a
//! stale one or an impossible budget, in every report. A negative control succeeds only by
//! failing where it must.

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

/// A negative control (`[control] fails_in`): its drill exits 0 only by failing in the phase it
/// names, its reports still saying FAIL; passing, or failing elsewhere, breaks it (exit 1). Its
/// metrics say which, for the alerts that treat it apart from the drills.
#[test]
fn a_negative_control_exits_0_only_by_failing_where_it_must() {
    let scratch = Scratch::new();
    scratch.write(
        "small.sql",
        crate::util::pg15_dump(
            "CREATE TABLE public.ledger (id integer PRIMARY KEY);\nINSERT INTO public.ledger VALUES (1), (2), (3);\n",
        ),
    );
    let control = |expect: u32, fails_in: &str| {
        scratch.scenario(
            &format!("control-{expect}-{fails_in}.toml"),
            &format!(
                "name = \"control\"\n[source]\npath = \"small.sql\"\n[target]\n[control]\nfails_in = \"{fails_in}\"\n\
                 [[checks.sql]]\nname = \"ledger\"\nquery = \"SELECT count(*) FROM public.ledger\"\nexpect = {expect}\n"
            ),
        )
    };
    let metric = |drill: &crate::util::Drill, line: &str| {
        let metrics = drill.report("metrics.prom");
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in metrics.prom:\n{metrics}");
    };
    let held = scratch.drill(&control(4, "checks"));
    assert_eq!(held.code, Some(0), "{held:?}");
    assert_eq!(held.record().verdict, DrillVerdict::Fail, "the reports tell the truth");
    assert!(held.stdout.contains("a negative control: it failed in checks, where it must"), "{held:?}");
    metric(&held, "pgdrill_control_held{scenario=\"control\"} 1");
    metric(&held, "pgdrill_drill_passed{scenario=\"control\"} 0");

    let passed = scratch.drill(&control(3, "checks"));
    assert_eq!(passed.code, Some(1), "{passed:?}");
    assert!(passed.stdout.contains("it must fail in checks, and did not"), "{passed:?}");
    metric(&passed, "pgdrill_control_held{scenario=\"control\"} 0");

    let elsewhere = scratch.drill(&control(4, "preflight"));
    assert_eq!(elsewhere.code, Some(1), "failed in checks, not preflight: {elsewhere:?}");
    metric(&elsewhere, "pgdrill_control_held{scenario=\"control\"} 0");

    let unknown = scratch.drill(&control(4, "teardown"));
    assert_eq!(unknown.code, Some(2), "{unknown:?}");
    assert!(unknown.stderr.contains("`teardown` is not a phase a negative control can fail in"), "{unknown:?}");
}
