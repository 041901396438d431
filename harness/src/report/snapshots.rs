//! Snapshot tests of what a drill shows: report.md, junit.xml, metrics.prom and the console, for one fixed drill
//! record (a failing check, a skipped app, a sandboxed target), built through the same event
//! stream a real drill emits. `cargo insta review` (or `INSTA_UPDATE=always`) accepts a change.

use crate::outcome::{Isolation, Observed};
use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;
use time::macros::datetime;

use super::console::Console;
use crate::objectives::Objectives;
use crate::outcome::BackupInfo;
use crate::outcome::TargetInfo;
use crate::outcome::{CheckResult, Verdict};
use crate::outcome::{
    DrillRecord, Event, Events, Phase, PhaseRecord, PhaseStatus, ProcessUsage, RunnerInfo, ScenarioInfo,
};

use crate::outcome::PreflightReport;
use crate::outcome::RestoreStats;

fn check(
    kind: &str,
    object: &str,
    (verdict, code): (Verdict, &str),
    expected: &str,
    actual: &str,
    message: &str,
) -> CheckResult {
    CheckResult {
        id: format!("{kind}/{object}"),
        kind: crate::outcome::CheckKind::from_name(kind).expect("a check kind"),
        object: object.into(),
        expected: expected.into(),
        actual: actual.into(),
        verdict,
        code: code.into(),
        message: message.into(),
        evidence: "SELECT count(*) FROM public.users".into(),
        duration: Duration::from_millis(12),
        trail: None,
    }
}

/// PLUR's backup, as the verify phase reads it.
fn backup() -> BackupInfo {
    BackupInfo {
        location: "fixtures/backups/plur.sql.gz".into(),
        size_bytes: 35_635,
        sha256: "7516b6bd9380".repeat(5) + "abcd",
        modified: Some(datetime!(2026-11-21 23:00:00 UTC)),
        compression: "gzip".into(),
        format: "plain".into(),
        source_version: Some("17.11".into()),
        dumped_by: Some("17.11".into()),
        uncompressed_bytes: 188_500,
        taken_at: Some(datetime!(2026-11-21 23:00:00 UTC)),
        taken_at_from: Some("its modification time".into()),
        ..BackupInfo::default()
    }
}

/// The sandboxed container PLUR's backup is restored into.
fn target() -> TargetInfo {
    let isolation = Isolation {
        contained: true,
        network: "none: only the container's own loopback".into(),
        user: "uid 100, never root".into(),
        capabilities: "none: all dropped, no-new-privileges".into(),
        filesystem: "read-only root".into(),
        programs: "none but PostgreSQL's own".into(),
        limits: "memory 18079 MiB for the container".into(),
        observed: Some(Observed {
            interfaces: vec!["lo".into()],
            routes: 0,
            uid: 100,
            cap_eff: "0000000000000000".into(),
            no_new_privs: true,
            shell: false,
            noexec: vec!["/var/lib/pgdrill/data".into()],
            unwritable: vec!["/var/run/postgresql".into(), "/dev".into()],
            exec_writable: Vec::new(),
        }),
    };
    TargetInfo {
        kind: "container".into(),
        image: Some("pgdrill/postgres:17-r3".into()),
        image_packages: Some("postgresql-17=17.11-0+deb13u1".into()),
        image_extensions: Some("vector age".into()),
        container: Some("32139b7bcd2f".into()),
        address: "socket in /tmp/pgdrill-d4c1d4c1d4c1-target/socket".into(),
        server_version: "17.11".into(),
        server_version_num: 170_011,
        settings: BTreeMap::from([("fsync".into(), "off".into())]),
        isolation: Some(isolation),
        session: crate::session::shown(&crate::session::pins(
            crate::session::Pins { version_num: 170_011, superuser: true },
            "postgres",
        )),
        data_layer: None,
    }
}

/// The record as the drill starts: PLUR's scenario, run by CI.
fn started(started: OffsetDateTime) -> DrillRecord {
    let scenario = ScenarioInfo {
        name: "plur".into(),
        description: Some("PLUR Enterprise daily logical backup".into()),
        file: "scenarios/plur.toml".into(),
        sha256: "5f0c".repeat(16),
        tags: vec!["quarterly".into()],
        trusted: None,
        objectives: Objectives {
            rto: Some(Duration::from_secs(45 * 60)),
            rpo: Some(Duration::from_secs(26 * 3600)),
            cadence: None,
        },
        control: None,
    };
    let runner = RunnerInfo {
        user: "ci".into(),
        host: "runner-7".into(),
        pgdrill_version: "0.1.0".into(),
        os: "linux x86_64".into(),
        ci: None,
    };
    DrillRecord::new("d4c1".repeat(8), scenario, runner, started)
}

/// What the restore did: PLUR's dump into one database, its catalog audited.
fn restored() -> RestoreStats {
    RestoreStats {
        statements: 587,
        copy_blocks: 69,
        rows: 1885,
        bytes: 188_500,
        database: "plur_enterprise".into(),
        jobs: 2,
        recovery: None,
        catalog: Some(crate::outcome::CatalogAudit {
            rows: 10179,
            databases: vec!["plur_enterprise".into(), "postgres".into()],
            reference: "the target before the restore".into(),
            absent: Vec::new(),
            extra: Vec::new(),
        }),
    }
}

/// The drill: PLUR's backup restored into a sandboxed container, one check failing.
pub(super) fn drill(console: Console) -> DrillRecord {
    let started = datetime!(2026-11-22 08:00:00 UTC);
    let events = Events::new(vec![Box::new(console)]);
    events.emit(Event::Started(Box::new(self::started(started))));
    let mut clock = started;
    let mut phase = |phase: Phase, status: PhaseStatus, millis: u64, summary: &str, error: Option<&str>| {
        // A phase the scenario does not ask for is recorded as skipped without having started.
        let ran = status != PhaseStatus::Skipped;
        if ran {
            events.emit(Event::PhaseStarted { phase, at: clock });
        }
        events.emit(Event::PhaseFinished(PhaseRecord {
            phase,
            status,
            started_at: ran.then_some(clock),
            duration: Duration::from_millis(millis),
            summary: summary.into(),
            error: error.map(str::to_owned),
            inconclusive: false,
        }));
        clock += Duration::from_millis(millis);
    };
    phase(Phase::Resolve, PhaseStatus::Passed, 2, "scenario `plur`: 2 checks configured", None);
    phase(Phase::Fetch, PhaseStatus::Passed, 1, "fixtures/backups/plur.sql.gz (34.8 KiB)", None);
    events.emit(Event::Backup(backup()));
    phase(Phase::Verify, PhaseStatus::Passed, 31, "sha256 7516b6bd9380…, gzip plain dump", None);
    events.emit(Event::Target(target()));
    phase(Phase::Provision, PhaseStatus::Passed, 925, "container 32139b7bcd2f; a sandbox", None);
    events.emit(Event::Preflight(PreflightReport {
        server_version: "17.11".into(),
        server_version_num: 170_011,
        extensions: BTreeMap::from([("vector".into(), "0.8.0".into())]),
        roles_created: vec!["plur_app".into()],
    }));
    phase(Phase::Preflight, PhaseStatus::Passed, 40, "PostgreSQL 17.11; roles created: plur_app", None);
    events.emit(Event::Restore(restored()));
    phase(Phase::Restore, PhaseStatus::Passed, 720, "587 statements, 69 COPY blocks, 1885 rows", None);
    events.emit(Event::Recovered { elapsed: Duration::from_millis(1720) });
    phase(Phase::Migrate, PhaseStatus::Skipped, 0, "", Some("no [migrate]: the checks run on the backup as restored"));
    events.emit(Event::Check(check(
        "schema_version",
        "public.schema_migrations",
        (Verdict::Pass, "schema-version.at-version"),
        "010",
        "010",
        "at 010",
    )));
    events.emit(Event::Check(check(
        "row_counts",
        "public.users",
        (Verdict::Fail, "row-counts.differs"),
        "40 rows",
        "39 rows",
        "public.users holds 39 rows, 40 expected",
    )));
    phase(Phase::Checks, PhaseStatus::Failed, 224, "", Some("1 of 2 checks did not pass"));
    phase(Phase::App, PhaseStatus::Skipped, 0, "", Some("the scenario boots no application ([app])"));
    events.emit(Event::ObjectivesJudged);
    phase(Phase::Teardown, PhaseStatus::Passed, 137, "removed 1 container", None);
    events.emit(Event::Finished { at: clock, interrupted: false });
    let mut record = events.record().expect("a record");
    record.usage = Some(ProcessUsage { cpu_ms: 310, peak_rss_bytes: 38 << 20, drills_at_once: None });
    record
}

#[test]
fn report_md() {
    let (console, _) = Console::capturing(false);
    insta::assert_snapshot!(super::markdown::render(&drill(console), &[]));
}

/// The page the docs' pictures of report.html are taken from (`pictures.rs` in the tests).
#[test]
fn report_html() {
    let (console, _) = Console::capturing(false);
    let rendered = super::render_all(&drill(console), &[]);
    let page = rendered.iter().find(|(name, _)| *name == super::html::NAME).map(|(_, page)| page.clone());
    insta::assert_snapshot!(page.expect("report.html"));
}

#[test]
fn junit_xml() {
    let (console, _) = Console::capturing(false);
    insta::assert_snapshot!(super::junit::render(&drill(console)));
}

#[test]
fn metrics_prom() {
    let (console, _) = Console::capturing(false);
    insta::assert_snapshot!(super::metrics::render(&drill(console), &[]));
}

#[test]
fn console() {
    let (console, lines) = Console::capturing(false);
    drill(console);
    let text = lines.lock().map(|l| l.clone()).unwrap_or_default();
    insta::assert_snapshot!(text);
}

#[test]
fn the_tally_counts_each_verdict_and_says_when_no_check_ran() {
    let (console, _) = Console::capturing(false);
    let mut record = drill(console);
    record.checks.truncate(2);
    assert_eq!(record.checks_tally(), "1 of 2 checks passed, 1 failed");
    record.checks[0].verdict = Verdict::Error;
    assert_eq!(record.checks_tally(), "0 of 2 checks passed, 1 failed, 1 could not run");
    for check in &mut record.checks {
        check.verdict = Verdict::Skipped;
    }
    assert_eq!(record.checks_tally(), "none of its 2 checks ran");
    record.checks.clear();
    assert_eq!(record.checks_tally(), "no checks");
}

#[test]
fn the_charts_draw_each_objective_as_a_line() {
    let (console, _) = Console::capturing(false);
    let record = drill(console);
    let recovery = super::svg::recovery(&[], &record);
    assert!(recovery.contains("stroke-dasharray") && recovery.contains(">RTO 45 min 00 s<"), "{recovery}");
    let age = super::svg::backup_age(&[], &record);
    assert!(age.contains(">RPO 26h<") && age.contains(">9h<"), "{age}");
}
