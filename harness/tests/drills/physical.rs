//! Physical backups made by PostgreSQL's own tools, the material the physical-restore drills
//! (issue 15) restore: a server of the project's image with `archive_mode` on and data checksums,
//! a `pg_basebackup -F t -z -X stream` with its manifest (and one in plain format), then rows
//! written before and after a recorded target time (in database `books`), every WAL segment of
//! it in the archive. Proven sound by `pg_verifybackup` and complete by the archive itself,
//! before any drill relies on it. [`SourceServer`] is shared with pgBackRest's material.

use std::path::{Path, PathBuf};

use crate::source_server::{SourceServer, wait_archived};

/// pg_basebackup's material on a [`SourceServer`]: `backup/` (base.tar.gz, pg_wal.tar.gz,
/// backup_manifest), `plain/` (the same moment's backup in plain format) and `archive/` (WAL
/// segments, as `archive_command` copied them).
pub(crate) struct PhysicalSource {
    pub server: SourceServer,
    /// The moment between the two batches of rows: a recovery to it holds `before` only.
    pub target_time: String,
    /// The WAL location between the batches, a restore point made there (`between`), and the
    /// transaction that wrote the `after` batch.
    pub target_lsn: String,
    pub after_xid: String,
    /// Rows of `public.ledger` written before and after `target_time`.
    pub before: i64,
    pub after: i64,
}

impl PhysicalSource {
    pub(crate) fn backup(&self) -> PathBuf {
        self.server.dir.path().join("backup")
    }

    pub(crate) fn archive(&self) -> PathBuf {
        self.server.dir.path().join("archive")
    }

    /// A connection string to the source's database `books` from this machine, as its superuser.
    pub(crate) fn dsn(&self) -> String {
        format!("host={} dbname=books user=postgres", self.server.dir.path().join("sockets").display())
    }

    /// The backup in plain format, taken right after the tar one.
    pub(crate) fn plain(&self) -> PathBuf {
        self.server.dir.path().join("plain")
    }

    /// [`PhysicalSource::make_on`] PostgreSQL 17.
    pub(crate) fn make() -> Self {
        Self::make_on(17, &[])
    }

    /// As [`PhysicalSource::make`], running `before_backup` (statements in `books`, as the
    /// superuser, once `public.ledger` exists and is still empty) before the base backup: what
    /// a broken variant's source did to itself.
    pub(crate) fn make_with(before_backup: &[&str]) -> Self {
        Self::make_on(17, before_backup)
    }

    /// [`PhysicalSource::make_from`] a server of `major` running `before_backup`.
    pub(crate) fn make_on(major: u32, before_backup: &[&str]) -> Self {
        Self::make_from(major, &|server| {
            for sql in before_backup {
                server.psql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        })
    }

    /// Starts a server of the project's image of `major`, lets `before_backup` do what a broken
    /// variant's source did to itself, takes the base backups, writes the two batches around
    /// the target time and waits until the segment holding the last of them is archived.
    pub(crate) fn make_from(major: u32, before_backup: &dyn Fn(&SourceServer)) -> Self {
        let server =
            SourceServer::for_basebackup("physical", &pgdrill::scenario::project_image(major), &["backup", "plain"]);
        before_backup(&server);
        // Whatever the source's pages hold is copied as it is, as a backup tool that does not
        // read them (a snapshot, `--no-verify-checksums`) copies a disk's corruption.
        let basebackup = ["pg_basebackup", "--no-verify-checksums", "-U", "postgres", "-X", "stream", "-c", "fast"];
        server.exec(&[&basebackup[..], &["-D", "/backup", "-F", "t", "-z"]].concat());
        server.exec(&[&basebackup[..], &["-D", "/plain", "-F", "p"]].concat());
        let (before, after) = (40, 25);
        let around = server.write_around_target(before, after);
        wait_archived(&server.dir.path().join("archive"), &around.last_segment);
        PhysicalSource {
            server,
            target_time: around.target_time,
            target_lsn: around.target_lsn,
            after_xid: around.after_xid,
            before,
            after,
        }
    }

    /// SQL in the source's database `books`.
    pub(crate) fn psql(&self, sql: &str) -> Result<String, String> {
        self.server.psql(sql)
    }

    /// A command in the source's container, which must succeed.
    pub(crate) fn exec(&self, args: &[&str]) -> String {
        self.server.exec(args)
    }
}

pub(crate) fn wal_segments(archive: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(archive)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    names.sort();
    names
}

#[test]
fn a_base_backup_and_its_wal_archive_are_sound_by_postgresqls_own_tools() {
    let source = PhysicalSource::make();
    let backup = source.backup();
    for file in ["base.tar.gz", "pg_wal.tar.gz", "backup_manifest"] {
        assert!(backup.join(file).is_file(), "{file} in {}", backup.display());
    }
    // PostgreSQL 17's pg_verifybackup reads a plain backup: unpacked as a restore would, it
    // checks every file against the manifest's checksums and parses the WAL the backup needs.
    let verified = source.exec(&[
        "sh",
        "-c",
        "rm -rf /tmp/plain && mkdir -m 0700 /tmp/plain && tar -xzf /backup/base.tar.gz -C /tmp/plain \
         && tar -xzf /backup/pg_wal.tar.gz -C /tmp/plain/pg_wal \
         && pg_verifybackup -m /backup/backup_manifest /tmp/plain",
    ]);
    assert!(verified.contains("backup successfully verified"), "{verified}");
    // The archive holds a gapless run of segments from the backup's start to the switch after
    // the last row, on one timeline.
    let segments = wal_segments(&source.archive());
    assert!(segments.len() >= 4, "{segments:?}");
    let numbers: Vec<u64> = segments.iter().map(|s| u64::from_str_radix(&s[8..], 16).unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "a gap in {segments:?}");
    assert!(segments.iter().all(|s| s[..8] == segments[0][..8]), "one timeline: {segments:?}");
    // The target time falls between the batches.
    let split = source
        .psql(&format!(
            "SELECT count(*) FILTER (WHERE at <= '{0}'), count(*) FILTER (WHERE at > '{0}') FROM public.ledger",
            source.target_time
        ))
        .unwrap();
    assert_eq!(split.trim(), format!("{}|{}", source.before, source.after));
}

/// A scenario drilling the source's base backup through its archive, with the two sides of the
/// point in time: the rows written before the target are there, those written after are not.
fn pitr_scenario(scratch: &crate::util::Scratch, source: &PhysicalSource, recovery: &str) -> PathBuf {
    scenario_of(scratch, &source.backup(), &source.archive(), source.before, 0, recovery)
}

/// A scenario drilling the base backup in `backup` through `archive`, expecting `before` and
/// `after` rows of each batch.
pub(crate) fn scenario_of(
    scratch: &crate::util::Scratch,
    backup: &Path,
    archive: &Path,
    before: i64,
    after: i64,
    recovery: &str,
) -> PathBuf {
    scratch.scenario(
        &format!("pitr-{}.toml", crate::util::rand_suffix()),
        &format!(
            "[source]\npath = \"{}\"\nwal_archive = \"{}\"\n\n[target]\ndatabase = \"books\"\n\n{recovery}\n\n\
             [[checks.sql]]\nname = \"rows written before the target\"\n\
             query = \"SELECT count(*) FROM public.ledger WHERE batch = 'before'\"\nexpect = {before}\n\n\
             [[checks.sql]]\nname = \"no row written after the target\"\n\
             query = \"SELECT count(*) FROM public.ledger WHERE batch = 'after'\"\nexpect = {after}\n",
            backup.display(),
            archive.display(),
        ),
    )
}

/// A copy of `from` (a backup or an archive folder) in the scratch folder, to break.
pub(crate) fn copy_folder(scratch: &crate::util::Scratch, from: &Path, name: &str) -> PathBuf {
    let to = scratch.path(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    to
}

#[test]
fn a_base_backup_recovers_to_a_chosen_time_and_a_wal_gap_or_a_target_past_the_archive_fails() {
    use pgdrill::Verdict;
    use pgdrill::outcome::{Phase, PhaseStatus};

    let source = PhysicalSource::make();
    let scratch = crate::util::Scratch::new();

    // To the target time: the rows before it, none after; a new timeline.
    let at = format!("[recovery]\ntarget_time = \"{}\"", source.target_time);
    let log = [("PGDRILL_LOG".to_owned(), "warn,pgdrill=debug".to_owned())];
    let drill = scratch.drill_env(&pitr_scenario(&scratch, &source, &at), &[], &log);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    // Asked for, pgdrill's log times verify's steps: the seconds since it started, in order.
    let steps = ["the base backup unpacked", "pg_controldata read the staged cluster", "pg_verifybackup passed"];
    let timed: Vec<f64> = steps
        .iter()
        .map(|step| {
            let line = drill.stderr.lines().find(|l| l.contains(step)).unwrap_or_else(|| panic!("{step}: {drill:?}"));
            let seconds = line.split_whitespace().next().and_then(|t| t.strip_suffix('s')?.parse().ok());
            seconds.unwrap_or_else(|| panic!("no time on `{line}`"))
        })
        .collect();
    assert!(timed.windows(2).all(|w| w[0] <= w[1]) && timed[0] > 0.0, "{timed:?}");
    let restore = drill.phase_summary(Phase::Restore);
    assert!(restore.starts_with("recovered to recovery_target_time "), "{restore}");
    assert!(restore.contains("promoted on timeline 2"), "{restore}");
    // The point reached is the server's own: the commit of the `after` batch, not replayed.
    let stopped = format!("stopped before the commit of transaction {} (at ", source.after_xid);
    assert!(restore.contains(&stopped), "{restore}");
    assert!(restore.contains("the last transaction replayed ended at "), "{restore}");
    let preflight = drill.phase_summary(Phase::Preflight);
    assert!(preflight.contains("is not before the end of the base backup, which ended at "), "{preflight}");
    // A tar backup's files summed as they were unpacked: pg_verifybackup checks the rest.
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.contains("match backup_manifest (their checksums summed as they were unpacked)"), "{verify}");
    let report = drill.report("report.md");
    let section = report.split("## Recovery").nth(1).expect("a Recovery section");
    let row =
        |name: &str| section.lines().find(|l| l.starts_with(&format!("| {name} "))).unwrap_or_default().to_owned();
    assert!(row("Point reached").contains(&format!("| {stopped}")), "{section}");
    assert!(row("Consistent from").contains("| WAL location `"), "{section}");
    let recovered = drill.record().restore.clone().and_then(|r| r.recovery).expect("a recovery record");
    let stop = recovered.reached.as_ref().and_then(|r| r.stop.clone()).expect("the stop in drill.json");
    assert_eq!((stop.position.as_str(), stop.xid.map(|x| x.to_string())), ("before", Some(source.after_xid.clone())));
    // A container's server paused at the target and pgdrill promoted it (no end-of-recovery
    // checkpoint waited for): a pause it did not end would have failed the drill.
    let settings = drill.record().target.clone().expect("a target").settings;
    assert_eq!(settings.get("recovery_target_action").map(String::as_str), Some("pause"), "{settings:?}");
    drill.assert_reports_and_no_leftovers();

    // A target before the base backup's end (given in another zone): refused before the server
    // starts, naming both times; its end is the STOP TIME of the backup history file the source
    // archived.
    let history = std::fs::read_dir(source.archive())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "backup"))
        .min()
        .expect("a backup history file in the archive");
    let history_text = std::fs::read_to_string(&history).unwrap();
    let stop_time = history_text.lines().find_map(|l| l.strip_prefix("STOP TIME: ")).unwrap().trim().to_owned();
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    let end = time::PrimitiveDateTime::parse(&stop_time, &format).unwrap().assume_utc();
    let early = (end - time::Duration::seconds(1)).to_offset(time::macros::offset!(+01:00));
    let early_text = early.format(&time::format_description::well_known::Rfc3339).unwrap();
    let drill =
        scratch.drill(&pitr_scenario(&scratch, &source, &format!("[recovery]\ntarget_time = \"{early_text}\"")));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Preflight), PhaseStatus::Failed, "{drill:?}");
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Skipped, "no server started: {drill:?}");
    let error = drill.phase_error(Phase::Preflight);
    let target_utc = (end - time::Duration::seconds(1)).format(&format).unwrap().replace(" UTC", ".000000+00");
    let end_rfc = end.format(&time::format_description::well_known::Rfc3339).unwrap();
    assert!(
        error
            .contains(&format!("recovery_target_time {target_utc} is before the end of the base backup, at {end_rfc}")),
        "{error}"
    );
    assert!(error.contains("use an older backup taken before the target"), "{error}");
    assert!(!drill.report("report.md").contains("recovered to"), "never reported as recovered");

    // Through the whole archive: the rows after the target are there too, and the check that
    // none is fails, so it tells the two apart.
    let drill = scratch.drill(&pitr_scenario(&scratch, &source, ""));
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let after = drill.record().checks.iter().find(|c| c.id == "sql/no row written after the target").unwrap().clone();
    assert_eq!((after.verdict, after.actual.as_str()), (Verdict::Fail, source.after.to_string().as_str()), "{after:?}");

    // A target past the archive's end: recovery runs out of WAL before it.
    let later = "[recovery]\ntarget_time = \"2999-01-01T00:00:00Z\"";
    let drill = scratch.drill(&pitr_scenario(&scratch, &source, later));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains("recovery ended before the target was reached"), "{error}");
    assert!(
        error.contains("recovery_target_time 2999-01-01 00:00:00.000000+00 is later than the WAL holds"),
        "{error}"
    );
    assert!(error.contains("the last point reached: WAL replayed to "), "{error}");
    assert!(error.contains(", the last transaction replayed committed at 20"), "{error}");
    assert!(!drill.report("report.md").contains("recovered to"), "never reported as recovered");

    // A segment missing from the archive: verify names it before anything starts.
    let segments = wal_segments(&source.archive());
    let label = source.exec(&["sh", "-c", "tar -xzOf /backup/base.tar.gz backup_label"]);
    let start = label.split("(file ").nth(1).unwrap()[..24].to_owned();
    let gap = segments.iter().position(|s| *s == start).unwrap() + 1;
    assert!(gap < segments.len(), "the archive goes past the backup's start: {segments:?}");
    source.exec(&["rm", &format!("/archive/{}", segments[gap])]);
    let drill = scratch.drill(&pitr_scenario(&scratch, &source, &at));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("has no segment {}", segments[gap])), "{error}");
}

#[test]
fn a_base_backup_recovers_to_an_lsn_a_transaction_or_a_restore_point_and_from_plain_format() {
    use pgdrill::outcome::Phase;

    let source = PhysicalSource::make();
    let scratch = crate::util::Scratch::new();
    let (before, after) = (source.before, source.after);
    let xid = &source.after_xid;
    for (recovery, expect_after, what) in [
        (format!("target_lsn = \"{}\"", source.target_lsn), 0, "recovery_target_lsn"),
        (format!("target_xid = {xid}\ninclusive = false"), 0, "recovery_target_xid"),
        // Inclusive (PostgreSQL's default): the transaction itself is replayed, so the two
        // transaction drills tell its commit apart.
        (format!("target_xid = {xid}"), after, "recovery_target_xid"),
        ("target_name = \"between\"".to_owned(), 0, "recovery_target_name between"),
    ] {
        let scenario = scenario_of(
            &scratch,
            &source.backup(),
            &source.archive(),
            before,
            expect_after,
            &format!("[recovery]\n{recovery}"),
        );
        let drill = scratch.drill(&scenario);
        assert_eq!(drill.code, Some(0), "{recovery}: {drill:?}");
        let restore = drill.phase_summary(Phase::Restore);
        assert!(restore.starts_with(&format!("recovered to {what}")), "{restore}");
        let recovered = drill.record().restore.as_ref().and_then(|r| r.recovery.clone()).expect("a recovery record");
        assert_eq!(recovered.timeline, 2, "{recovered:?}");
        assert!(recovered.wal_bytes > 0 && recovered.segments_replayed >= 1, "{recovered:?}");
        drill.assert_reports_and_no_leftovers();
    }

    // The same moment's backup in plain format recovers alike, and every page of it has its
    // checksum (the server stopped cleanly for pg_checksums and started again for the checks
    // after it).
    let at = format!("[recovery]\ntarget_time = \"{}\"\n\n[checks.checksums]", source.target_time);
    let drill = scratch.drill(&scenario_of(&scratch, &source.plain(), &source.archive(), before, 0, &at));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let checksums = drill.record().checks.iter().find(|c| c.kind.as_str() == "checksums").unwrap().clone();
    assert!(checksums.actual.ends_with("blocks scanned, no bad checksum"), "{checksums:?}");
    assert_eq!(drill.record().checks.last().map(|c| c.kind.as_str()), Some("checksums"), "it runs last");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.starts_with("base backup (plain) of PostgreSQL 17"), "{drill:?}");
    assert!(verify.contains("WAL they need match backup_manifest;"), "pg_verifybackup read them: {verify}");
    assert!(drill.report("report.md").contains("## Recovery"), "{drill:?}");

    // An LSN past the archive's last segment is known unreachable before anything starts.
    let far = "[recovery]\ntarget_lsn = \"FF/0\"";
    let drill = scratch.drill(&scenario_of(&scratch, &source.backup(), &source.archive(), before, 0, far));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("before recovery_target_lsn FF/0 (in segment 00000001000000FF00000000)"), "{error}");
    assert_eq!(drill.phase(Phase::Provision), pgdrill::outcome::PhaseStatus::Skipped, "{drill:?}");

    // A server on the backup's own data not ready by provision's deadline: the data can be what
    // held it (a recovery that never ends), so the drill fails; it does not say "could not run"
    // night after night. (A dump's target is the machine's: limits.rs.)
    let scenario = scenario_of(&scratch, &source.plain(), &source.archive(), before, 0, "");
    let text = std::fs::read_to_string(&scenario).unwrap();
    std::fs::write(&scenario, text.replace("[target]\n", "[target]\nprovision_timeout = \"1ms\"\n")).unwrap();
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    assert_eq!(drill.code, Some(1), "a FAIL, not could-not-run (3): {drill:?}");
    let error = drill.phase_error(Phase::Provision);
    assert!(error.starts_with("the server was starting on the backup's own data"), "{error}");
    assert!(error.contains("the provision phase passed its deadline of 1ms"), "{error}");
}

/// The offset of a WAL location (`0/3000060`) in its 16 MB segment, and the segment's name on
/// timeline 1.
fn in_segment(lsn: &str) -> (u64, String) {
    let (high, low) = lsn.trim().split_once('/').unwrap();
    let lsn = (u64::from_str_radix(high, 16).unwrap() << 32) | u64::from_str_radix(low, 16).unwrap();
    let size = 16u64 << 20;
    let number = lsn / size;
    (lsn % size, format!("00000001{:08X}{:08X}", number / 256, number % 256))
}

#[test]
fn archived_wal_is_given_as_replay_reads_it_and_a_damaged_record_stops_the_drill() {
    use pgdrill::outcome::{Phase, PhaseStatus};

    let source = PhysicalSource::make();
    let scratch = crate::util::Scratch::new();
    // One segment ahead of replay: the rest of the archive is given while the server recovers.
    let window = format!("[recovery]\ntarget_time = \"{}\"\nwal_window = \"16MB\"", source.target_time);
    let drill = scratch.drill(&pitr_scenario(&scratch, &source, &window));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.contains("given to recovery as it replays, 16.0 MiB ahead"), "{verify}");
    let recovered = drill.record().restore.clone().and_then(|r| r.recovery).expect("a recovery record");
    let segments = wal_segments(&source.archive()).len();
    assert!(
        (1..=3).contains(&recovered.segments_held_peak) && recovered.segments_held_peak < segments,
        "at most a window's segments in pg_wal at once, of {segments}: {recovered:?}"
    );
    assert!(drill.phase_summary(Phase::Restore).contains(" in pg_wal at once)"), "{drill:?}");
    drill.assert_reports_and_no_leftovers();

    // The whole archive before the server starts, as a scenario may still ask.
    let all = format!("[recovery]\ntarget_time = \"{}\"\nwal_window = \"all\"", source.target_time);
    let drill = scratch.drill(&pitr_scenario(&scratch, &source, &all));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(drill.phase_summary(Phase::Verify).contains("given before recovery starts"), "{drill:?}");

    // A record damaged in the segment after the target, which is not the archive's last: its
    // header and length are whole, and PostgreSQL's own checksum of the record refuses it.
    // Replay stops there and waits for WAL; a drill to the archive's end must not promote it
    // as if the archive ended there (which would pass: no `after` row replayed).
    let (offset, name) = in_segment(&source.target_lsn);
    let damaged = copy_folder(&scratch, &source.archive(), "damaged-archive");
    let path = damaged.join(&name);
    let mut bytes = std::fs::read(&path).unwrap();
    for byte in &mut bytes[offset as usize + 2048..offset as usize + 2304] {
        *byte ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    assert!(wal_segments(&damaged).last().unwrap() > &name, "the damaged segment is not the last");
    for window in ["16MB", "all"] {
        let recovery = format!("[recovery]\nwal_window = \"{window}\"");
        let scenario = scenario_of(&scratch, &source.backup(), &damaged, source.before, 0, &recovery);
        let drill = scratch.drill(&scenario);
        drill.assert_failed_cleanly();
        assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{window}: {drill:?}");
        let error = drill.phase_error(Phase::Restore);
        assert!(error.contains("recovery stopped reading WAL at "), "{error}");
        assert!(error.contains(&format!(", in segment {name}, short of the archive's last segment ")), "{error}");
        assert!(error.contains("PostgreSQL: "), "the server's own words: {error}");
        assert!(error.contains("the archive past the backup's end (segment "), "{error}");
        assert!(!drill.report("report.md").contains("recovered to"), "never reported as recovered");
    }
    archive_past_the_backups_end_is_tested(&scratch, &source);
}

/// A drill to the archive's end replays into the archive's last segment, or fails. The honest
/// archive's last segment holds the `tail` row, written after a switch; the lying one keeps that
/// segment's valid first page and zeroes the rest: every segment is named, sized and headed as
/// PostgreSQL wrote it, the segment before ends in a switch, and replay stops at the lying
/// segment's very start, having read nothing of it, which a drill that promoted there would pass
/// (every check of the ledger holds) and date by that segment.
fn archive_past_the_backups_end_is_tested(scratch: &crate::util::Scratch, source: &PhysicalSource) {
    use pgdrill::outcome::{Phase, PhaseStatus};

    let segments = wal_segments(&source.archive());
    let last = segments.last().unwrap().clone();
    let tail =
        "[[checks.sql]]\nname = \"the last segment's row\"\nquery = \"SELECT count(*) FROM public.tail\"\nexpect = 1";
    let honest = scenario_of(scratch, &source.backup(), &source.archive(), source.before, source.after, tail);
    let drill = scratch.drill(&honest);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let restore = drill.phase_summary(Phase::Restore);
    assert!(restore.starts_with("recovered to the end of the WAL archive"), "{restore}");
    assert!(restore.contains(&format!(", into the last, {last}) from ")), "{restore}");
    let recovered = drill.record().restore.clone().and_then(|r| r.recovery).expect("a recovery record");
    assert_eq!(recovered.archive_last.as_deref(), Some(last.as_str()), "{recovered:?}");
    assert_eq!(recovered.segments_replayed as usize, recovered.segments_available, "{recovered:?}");
    // The same through a window of one segment, the archive given as replay reads it: the last
    // segment ends in a switch, so replay is at the next segment's start when it runs out of
    // WAL, and the server reads the last record again when it is promoted: its segment stays.
    let window = format!("[recovery]\nwal_window = \"16MB\"\n\n{tail}");
    let drill =
        scratch.drill(&scenario_of(scratch, &source.backup(), &source.archive(), source.before, source.after, &window));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(
        drill.phase_summary(Phase::Verify).contains("given to recovery as it replays, 16.0 MiB ahead"),
        "{drill:?}"
    );
    assert!(drill.phase_summary(Phase::Restore).contains(&format!(", into the last, {last}) from ")), "{drill:?}");

    let lying = copy_folder(scratch, &source.archive(), "lying-archive");
    let mut bytes = std::fs::read(lying.join(&last)).unwrap();
    bytes[40..].fill(0);
    std::fs::write(lying.join(&last), &bytes).unwrap();
    let drill = scratch.drill(&scenario_of(scratch, &source.backup(), &lying, source.before, source.after, ""));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Passed, "every segment reads as one: {drill:?}");
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Restore);
    let (number, before_last) = (u64::from_str_radix(&last[16..], 16).unwrap(), segments[segments.len() - 2].clone());
    let stopped = format!(
        "recovery stopped reading WAL at 0/{number:X}000000, in segment {before_last}, short of the archive's last segment {last} (from 0/{number:X}000000)"
    );
    assert!(error.contains(&stopped), "{error}");
    assert!(error.contains("; PostgreSQL: invalid record length at "), "the server's own words: {error}");
    assert!(error.contains("the archive past the backup's end (segment 00000001"), "{error}");
    assert!(error.contains(") went untested from there"), "{error}");
    assert!(error.contains("a damaged, zeroed or truncated segment, or an invalid record"), "{error}");
    assert!(!drill.report("report.md").contains("recovered to"), "never reported as recovered");
}

#[test]
fn a_backup_unlike_its_manifest_or_an_archive_of_another_cluster_fails_in_verify() {
    use pgdrill::outcome::{Phase, PhaseStatus};

    let source = PhysicalSource::make();
    let scratch = crate::util::Scratch::new();
    let at = format!("[recovery]\ntarget_time = \"{}\"", source.target_time);

    // The manifest of another backup (the plain one, taken a moment later) beside this one's files.
    let mixed = copy_folder(&scratch, &source.backup(), "mixed");
    std::fs::copy(source.plain().join("backup_manifest"), mixed.join("backup_manifest")).unwrap();
    let drill = scratch.drill(&scenario_of(&scratch, &mixed, &source.archive(), source.before, 0, &at));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    // Its checksums, summed as the files were unpacked, say so before pg_verifybackup runs.
    assert!(error.starts_with("the base backup does not match its manifest: `backup_label`"), "{error}");
    assert!(error.contains("(CRC32C checksum mismatch, summed as it was unpacked)"), "{error}");
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Skipped, "{drill:?}");

    // A segment of the archive written by another cluster (its header's system identifier).
    let archive = copy_folder(&scratch, &source.archive(), "foreign");
    let segments = wal_segments(&archive);
    let last = archive.join(segments.last().unwrap());
    let mut bytes = std::fs::read(&last).unwrap();
    let system = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
    bytes[24..32].copy_from_slice(&(system ^ 0xFFFF).to_le_bytes());
    std::fs::write(&last, bytes).unwrap();
    let drill = scratch.drill(&scenario_of(&scratch, &source.backup(), &archive, source.before, 0, &at));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    let expected = format!(
        "the WAL archive's segment {} belongs to database system {}, and the backup to {system}",
        segments.last().unwrap(),
        system ^ 0xFFFF
    );
    assert!(error.contains(&expected), "{error}");

    // base.tar.gz carrying a file of its own and a `backup_manifest` forged to list it (its
    // manifest checksum recomputed): the manifest beside the tars is the one pg_verifybackup
    // reads, so the file is found unlisted.
    let forged = copy_folder(&scratch, &source.backup(), "forged");
    let manifest = std::fs::read_to_string(forged.join("backup_manifest")).unwrap();
    let listed = manifest.replacen(
        "\"Files\": [\n",
        "\"Files\": [\n{ \"Path\": \"planted\", \"Size\": 5, \"Last-Modified\": \"2026-11-26 00:00:00 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"00000000\" },\n",
        1,
    );
    let body = &listed[..listed.find("\"Manifest-Checksum\"").unwrap()];
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
    let forged_manifest = format!("{body}\"Manifest-Checksum\": \"{digest}\"}}\n");
    let base = std::fs::read(forged.join("base.tar.gz")).unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(base.as_slice()), &mut tar).unwrap();
    tar.truncate(tar.len() - 1024); // its two zero blocks
    let mut builder = tar::Builder::new(tar);
    for (name, body) in [("planted", b"owned".as_slice()), ("backup_manifest", forged_manifest.as_bytes())] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        builder.append_data(&mut header, name, body).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
    std::fs::write(forged.join("base.tar.gz"), gz.finish().unwrap()).unwrap();
    let drill = scratch.drill(&scenario_of(&scratch, &forged, &source.archive(), source.before, 0, &at));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    assert!(error.starts_with("pg_verifybackup: the backup does not match its manifest"), "{error}");
    assert!(error.contains("\"planted\" is present on disk but not in the manifest"), "{error}");
}

#[test]
fn a_base_backup_of_postgresql_18_recovers_on_an_18_target() {
    use pgdrill::outcome::Phase;

    let source = PhysicalSource::make_on(18, &[]);
    let scratch = crate::util::Scratch::new();
    let drill =
        scratch.drill(&scenario_of(&scratch, &source.backup(), &source.archive(), source.before, source.after, ""));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(drill.phase_summary(Phase::Verify).contains("of PostgreSQL 18"), "{drill:?}");
    let target = drill.record().target.clone().expect("a target");
    assert_eq!(target.image.as_deref(), Some(pgdrill::scenario::project_image(18).as_str()));
    assert!(drill.phase_summary(Phase::Restore).starts_with("recovered to the end of the WAL archive"), "{drill:?}");
}

/// PostgreSQL 15 (Debian 12's): its image has neither pgvector nor AGE, and a base backup of it
/// recovers there to a target time, proven from both sides and by the integrity checks; and on
/// this machine's PostgreSQL 15 binaries.
#[test]
fn a_base_backup_of_postgresql_15_recovers_to_a_time_on_a_15_container_and_on_local_binaries() {
    use pgdrill::Verdict;
    use pgdrill::outcome::Phase;

    let source = PhysicalSource::make_on(15, &[]);
    let scratch = crate::util::Scratch::new();
    let checks = format!(
        "[recovery]\ntarget_time = \"{}\"\n\n[[checks.point_in_time]]\n\
         present = \"SELECT count(*) = {} FROM public.ledger WHERE batch = 'before'\"\n\
         absent = \"SELECT EXISTS (SELECT 1 FROM public.ledger WHERE batch = 'after')\"\n\n\
         [checks.amcheck]\n[checks.collations]\n[checks.checksums]",
        source.target_time, source.before
    );
    let drill = scratch.drill(&scenario_of(&scratch, &source.backup(), &source.archive(), source.before, 0, &checks));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(drill.phase_summary(Phase::Verify).contains("of PostgreSQL 15"), "{drill:?}");
    let target = drill.record().target.clone().expect("a target");
    assert_eq!(target.image.as_deref(), Some(pgdrill::scenario::project_image(15).as_str()));
    let provision = drill.phase_summary(Phase::Provision);
    assert!(provision.contains("without pgvector and Apache AGE"), "the image says what it lacks: {provision}");
    for kind in ["point_in_time", "amcheck", "collations", "checksums"] {
        let results: Vec<_> = drill.record().checks.iter().filter(|c| c.kind.as_str() == kind).collect();
        assert!(!results.is_empty() && results.iter().all(|c| c.verdict == Verdict::Pass), "{kind}: {results:?}");
    }

    // On another major, pinned: refused before anything starts.
    let pinned = scenario_of(&scratch, &source.backup(), &source.archive(), source.before, 0, &checks);
    let text = std::fs::read_to_string(&pinned).unwrap().replace("[target]\n", "[target]\nversion = 17\n");
    std::fs::write(&pinned, text).unwrap();
    let drill = scratch.drill(&pinned);
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("the backup is of PostgreSQL 15, and `[target] version` pins 17"), "{error}");

    // The same backup on a local target: this machine's PostgreSQL 15 binaries (Debian 12's
    // postgresql-15), its tools and its server in bubblewrap sandboxes; `checksums` stops the
    // sandboxed server, reads the cluster with this machine's pg_checksums and starts it again.
    let scenario = scenario_of(&scratch, &source.backup(), &source.archive(), source.before, 0, &checks);
    let text = std::fs::read_to_string(&scenario).unwrap().replace("[target]\n", "[target]\nkind = \"local\"\n");
    std::fs::write(&scenario, text).unwrap();
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let target = drill.record().target.clone().expect("a target");
    assert_eq!((target.kind.as_str(), target.image.as_deref()), ("local", Some("/usr/lib/postgresql/15/bin")));
    assert!(drill.phase_summary(Phase::Provision).contains("a sandbox"), "{drill:?}");
    assert!(drill.phase_summary(Phase::Restore).starts_with("recovered to recovery_target_time "), "{drill:?}");
    // Its log is not read as a container's: its server promotes itself at the target.
    assert_eq!(target.settings.get("recovery_target_action").map(String::as_str), Some("promote"), "{target:?}");
    for kind in ["point_in_time", "amcheck", "collations", "checksums"] {
        let results: Vec<_> = drill.record().checks.iter().filter(|c| c.kind.as_str() == kind).collect();
        assert!(!results.is_empty() && results.iter().all(|c| c.verdict == Verdict::Pass), "{kind}: {results:?}");
    }
    let checksums = drill.record().checks.iter().find(|c| c.kind.as_str() == "checksums").unwrap();
    assert!(checksums.actual.contains("no bad checksum"), "{checksums:?}");
    // (A server that did not answer again after pg_checksums would have failed the check.)
    drill.assert_reports_and_no_leftovers();
}

/// The source's disk flips bytes of a table's page after a checkpoint wrote it, and the base
/// backup copies the page as it is: its manifest matches, recovery succeeds, only the page's
/// checksum tells, on a container target and on this machine's binaries alike.
#[test]
fn a_page_the_sources_disk_corrupted_restores_and_fails_the_checksums() {
    use pgdrill::Verdict;

    // PostgreSQL 15: the major this machine has binaries of, for the local target.
    let source = PhysicalSource::make_from(15, &|server| {
        server
            .psql("CREATE TABLE public.victim AS SELECT g AS id, repeat('v', 64) AS pad FROM generate_series(1, 50) g")
            .unwrap();
        server.psql("VACUUM FREEZE public.victim").unwrap();
        server.psql("CHECKPOINT").unwrap();
        let file = server.psql("SELECT pg_relation_filepath('public.victim')").unwrap().trim().to_owned();
        server.exec(&[
            "sh",
            "-c",
            &format!("printf 'rot!rot!' | dd of=\"$PGDATA/{file}\" bs=1 seek=4000 conv=notrunc status=none"),
        ]);
    });
    let scratch = crate::util::Scratch::new();
    let scenario =
        scenario_of(&scratch, &source.backup(), &source.archive(), source.before, source.after, "[checks.checksums]");
    let text = std::fs::read_to_string(&scenario).unwrap();
    let local = scratch.scenario("local.toml", &text.replace("[target]\n", "[target]\nkind = \"local\"\n"));
    for (scenario, kind) in [(scenario, "container"), (local, "local")] {
        let drill = scratch.drill(&scenario);
        drill.assert_failed_cleanly();
        assert_eq!(drill.record().target.as_ref().map(|t| t.kind.as_str()), Some(kind), "{drill:?}");
        let checks = &drill.record().checks;
        let sql: Vec<Verdict> = checks.iter().filter(|c| c.kind.as_str() == "sql").map(|c| c.verdict).collect();
        assert_eq!(sql, [Verdict::Pass, Verdict::Pass], "the restore itself looks fine: {drill:?}");
        let checksums = checks.iter().find(|c| c.kind.as_str() == "checksums").unwrap();
        assert_eq!(checksums.verdict, Verdict::Fail, "{checksums:?}");
        assert!(checksums.actual.ends_with("1 bad checksum(s)"), "{kind}: {checksums:?}");
        assert!(checksums.message.contains("public.victim in database books, block 0"), "{}", checksums.message);
    }
}

#[test]
fn a_base_backup_and_its_wal_archive_recover_from_s3_prefixes() {
    use pgdrill::outcome::Phase;

    let source = PhysicalSource::make();
    let s3 = crate::servers::S3Server::start();
    // The archive holds segments from before the backup's start too, which are not needed.
    s3.put_folders("pitr", &[("base/2026-11-23", &source.backup()), ("wal", &source.archive())]);
    let scratch = crate::util::Scratch::new();
    let scenario = scratch.scenario(
        "s3-pitr.toml",
        &format!(
            "[source]\ns3 = \"s3://pitr/base/2026-11-23/\"\nwal_archive = \"s3://pitr/wal/\"\nendpoint = \"{}\"\n\
             region = \"us-east-1\"\n\n[target]\ndatabase = \"books\"\n\n[recovery]\ntarget_time = \"{}\"\n\n\
             [[checks.point_in_time]]\npresent = \"SELECT count(*) = {} FROM public.ledger WHERE batch = 'before'\"\n\
             absent = \"SELECT EXISTS (SELECT 1 FROM public.ledger WHERE batch = 'after')\"\n",
            s3.endpoint, source.target_time, source.before
        ),
    );
    let drill = scratch.drill_env(&scenario, &[], &s3.env());
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_eq!(drill.record().backup.as_ref().unwrap().location, "s3://pitr/base/2026-11-23/");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.starts_with("base backup (tar, `base.tar.gz`) of PostgreSQL 17"), "{verify}");
    let before_start = wal_segments(&source.archive()).len();
    let archived: usize =
        verify.split(" archived segment").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(archived < before_start, "only the segments from the backup's start were fetched: {verify}");
    assert!(!drill.all_reports().contains(crate::servers::S3_SECRET_KEY));
    drill.assert_reports_and_no_leftovers();
}
